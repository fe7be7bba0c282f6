/*
 * fuzz_discovery.c - provider metadata discovery (RFC 8414, then OpenID
 * Connect Discovery) on arbitrary documents, through the real service:
 * svc_provider_put() of a provider with only an issuer fetches the
 * documents over loopback from the harness's peer, which serves the input.
 *
 * Input: the first document, optionally followed by "\n--next--\n" and
 * the second (served for the OpenID location). An empty document is
 * answered 404. "$ISSUER" anywhere in the input is replaced by the
 * configured issuer (its port is ephemeral), so documents can match it.
 *
 * Properties:
 * - the callback runs exactly once, with 0 or GRANTD_EDISCOVERY;
 * - at most the two documents are fetched;
 * - on success the stored provider has a token_url, every endpoint is an
 *   absolute http(s) URL without fragment, and reading the provider back
 *   from the service gives the same endpoints;
 * - on failure nothing is stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "base/url.h"
#include "fuzz_support.h"
#include "service/svc.h"

static fuzz_svc_t fs;
static char issuer[64];
static int sanity_ok; /* the last discovery succeeded */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_log_capture();
  fuzz_svc_open(&fs);
  unsigned port = fuzz_peer_start(&fs.loop);
  snprintf(issuer, sizeof issuer, "http://127.0.0.1:%u/tenant", port);
  return 0;
}

static int LLVMFuzzerTestOneInput_(const uint8_t *data, size_t size);

/* One good document first: a harness whose requests cannot reach the peer
 * (endpoint policy ...) would fuzz nothing, so it stops here. */
static void sanity(void)
{
  static int done;
  if (done++)
    return;
  static const char doc[] = "{\"issuer\":\"$ISSUER\",\"token_endpoint\":\"http://127.0.0.1:1/t\"}";
  LLVMFuzzerTestOneInput_((const uint8_t *)doc, sizeof doc - 1);
  if (!sanity_ok) {
    fprintf(stderr, "fuzz_discovery: the sanity discovery failed\n");
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  sanity();
  return LLVMFuzzerTestOneInput_(data, size);
}

typedef struct {
  int calls;
  int err;
  char *token_url, *authorize_url, *revoke_url;
} res_t;

static void on_put(void *arg, int err, const provider_t *p)
{
  res_t *r = arg;
  r->calls++;
  r->err = err;
  if (err == 0 && p != NULL) {
    r->token_url = p->token_url ? xstrdup(p->token_url) : NULL;
    r->authorize_url = p->authorize_url ? xstrdup(p->authorize_url) : NULL;
    r->revoke_url = p->revoke_url ? xstrdup(p->revoke_url) : NULL;
  }
}

static void on_deleted(void *arg, int err, const provider_t *p)
{
  (void)p;
  fuzz_check(err == 0, "the discovered provider is deleted again");
  *(int *)arg = 1;
}

static void check_endpoint(const char *s, int required)
{
  if (s == NULL) {
    fuzz_check(!required, "a discovered provider has a token_url");
    return;
  }
  url_t u;
  fuzz_check(url_parse(s, &u) == 0 && u.fragment == NULL, "endpoints are absolute URLs");
  url_free(&u);
}

static int same(const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

/* The HTTP answer carrying document d (404 when empty). */
static char *answer(const char *d, size_t n, size_t *len)
{
  buf_t b = BUF_INIT;
  buf_t doc = BUF_INIT;
  for (size_t i = 0; i < n; i++) {
    if (n - i >= 7 && memcmp(d + i, "$ISSUER", 7) == 0) {
      buf_puts(&doc, issuer);
      i += 6;
    } else {
      buf_putc(&doc, d[i]);
    }
  }
  if (doc.len == 0)
    buf_puts(&b, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  else
    buf_printf(&b,
               "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
               doc.len);
  buf_append(&b, doc.data ? doc.data : "", doc.len);
  buf_free(&doc);
  *len = b.len;
  return buf_steal(&b);
}

static int LLVMFuzzerTestOneInput_(const uint8_t *data, size_t size)
{
  const char *in = (const char *)data;
  const char *sep = memmem(in, size, "\n--next--\n", 10);
  size_t n1 = sep ? (size_t)(sep - in) : size;
  const char *d2 = sep ? sep + 10 : in;
  size_t n2 = sep ? size - n1 - 10 : size;
  size_t lens[2];
  char *ans[2];
  ans[0] = answer(in, n1, &lens[0]);
  ans[1] = answer(d2, n2, &lens[1]);
  fuzz_peer_answers((const char *const *)ans, lens, 2);

  provider_t *p = xcalloc(1, sizeof *p);
  p->name = xstrdup("d1");
  p->issuer = xstrdup(issuer);
  p->client_id = xstrdup("cid");
  p->allow_insecure_http = true;
  res_t r;
  memset(&r, 0, sizeof r);
  int rc = svc_provider_put(fs.svc, p, on_put, &r);
  fuzz_check(rc == 0, "svc_provider_put accepts the provider");
  while (r.calls == 0)
    uv_run(&fs.loop, UV_RUN_ONCE);
  uv_run(&fs.loop, UV_RUN_NOWAIT);
  fuzz_check(r.calls == 1, "the callback runs once");
  fuzz_check(fuzz_peer_requests() <= 2, "at most two documents are fetched");
  provider_t got;
  int grc = svc_provider_get(fs.svc, "d1", &got);
  sanity_ok = r.err == 0;
  if (r.err == 0) {
    check_endpoint(r.token_url, 1);
    check_endpoint(r.authorize_url, 0);
    check_endpoint(r.revoke_url, 0);
    fuzz_check(grc == 0 && same(got.token_url, r.token_url) &&
                 same(got.authorize_url, r.authorize_url) && same(got.revoke_url, r.revoke_url),
               "the stored provider has the discovered endpoints");
  } else {
    fuzz_check(r.err == GRANTD_EDISCOVERY, "a failed discovery is GRANTD_EDISCOVERY");
    fuzz_check(grc == GRANTD_ENOT_FOUND, "a failed discovery stores nothing");
  }
  if (grc == 0) {
    provider_free(&got);
    int done = 0;
    fuzz_check(svc_provider_delete(fs.svc, "d1", on_deleted, &done) == 0, "delete");
    fuzz_run_until(&fs, &done);
  }
  free(r.token_url);
  free(r.authorize_url);
  free(r.revoke_url);
  free(ans[0]);
  free(ans[1]);
  buf_t log = BUF_INIT;
  fuzz_log_take(&log);
  buf_free(&log);
  return 0;
}
