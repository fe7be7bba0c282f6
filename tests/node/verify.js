// Independent check of grantd's webhook signatures with the official
// Standard Webhooks library (npm "standardwebhooks", installed here by
// deps/install.sh). Used by tests/integration/test_webhooks.py.
//
//   node verify.js FILE
// FILE holds one JSON object per line: {"secrets": ["whsec_..."],
// "headers": {"webhook-id": ..., "webhook-timestamp": ..., "webhook-signature": ...},
// "body": "<request body as received>"}. A line passes when the library
// accepts the request under EVERY listed secret (during a rotation overlap
// each of the old and the new secret must verify on its own).
// Prints {"verified": N, "failed": [{"line": i, "secret": j, "error": "..."}]}.
"use strict";
const fs = require("fs");
const { Webhook } = require("standardwebhooks");

const lines = fs.readFileSync(process.argv[2], "utf8").split("\n").filter((l) => l.trim());
let verified = 0;
const failed = [];
lines.forEach((l, i) => {
  const m = JSON.parse(l);
  let ok = true;
  m.secrets.forEach((s, j) => {
    try {
      new Webhook(s).verify(m.body, m.headers);
    } catch (e) {
      ok = false;
      failed.push({ line: i, secret: j, error: String(e.message || e) });
    }
  });
  if (ok) verified++;
});
process.stdout.write(JSON.stringify({ verified, failed }) + "\n");
