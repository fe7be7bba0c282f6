/*
 * cmd_export.c - `grantd export [--tenant T]`: every connection as one
 * NDJSON import line, secrets included; never onto a terminal.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_json.h"
#include "app/admin.h"
#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"

typedef struct {
  const char *tenant;
  unsigned long n, bad;
  bool write_failed;
} export_t;

static int export_one(void *arg, const conn_t *c)
{
  export_t *x = arg;
  if (x->tenant && (c->tenant == NULL || strcmp(c->tenant, x->tenant)))
    return 0;
  json_t *o = api_conn_to_import_json(c);
  char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_wipe_strings(o); /* it holds the tokens and secrets */
  json_decref(o);
  size_t len = strlen(line);
  if (fwrite(line, 1, len, stdout) != len || fputc('\n', stdout) == EOF)
    x->write_failed = true;
  free_secret(line);
  x->n++;
  return x->write_failed ? 1 : 0;
}

static void export_bad(void *arg, const char *db, const char *key, size_t keylen, int err)
{
  export_t *x = arg;
  x->bad++;
  admin_warn_bad(db, key, keylen, err, "not exported");
}

int cmd_export(admin_t *a)
{
  if (isatty(STDOUT_FILENO))
    return admin_fail(2, "export writes secrets: refusing to write to a terminal "
                         "(redirect it: grantd export > FILE)");
  export_t x = {a->tenant, 0, 0, false};
  int rc = store_ro_conn_scan(a->ro, export_one, export_bad, &x);
  if (fflush(stdout) != 0)
    x.write_failed = true;
  if (x.write_failed)
    return admin_fail(1, "export: cannot write the output");
  if (rc != 0)
    return admin_fail(1, "cannot read connections: %s", err_str(rc));
  fprintf(stderr, "grantd: exported %lu connection(s)\n", x.n);
  if (x.bad)
    return admin_fail(1, "%lu connection(s) could not be read and were left out (run grantd check)",
                      x.bad);
  return 0;
}
