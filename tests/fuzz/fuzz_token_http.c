/*
 * fuzz_token_http.c - a token endpoint's whole answer (status line,
 * headers, body, framing) through the real refresh path: the service's
 * http client reads it from the harness's loopback peer (raw input bytes,
 * then the peer closes), token.c classifies it, the service commits the
 * outcome.
 *
 * Each input forces one refresh of connection "tc" (imported at start-up
 * with a refresh token; a forced refresh runs whatever state the last
 * input left).
 *
 * Properties:
 * - the refresh callback runs exactly once, and the peer answered at most
 *   two requests for it (a provably unsent request is retried once);
 * - an accepted answer (err 0) leaves an active connection whose access
 *   token is printable and bounded, and the token read back from the store
 *   is the same (the store round-trips what the parser accepted);
 * - nothing logged contains the access or refresh token the connection
 *   holds afterwards, or the one it held before (unless the provider's
 *   answer itself repeats that text outside the token, e.g. as its error
 *   code, which is logged as the provider's words).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "fuzz_support.h"
#include "oauth/token.h"
#include "service/svc.h"

static fuzz_svc_t fs;

typedef struct {
  int calls;
  int err;
  char *at, *rt;
  int status;
} res_t;

static void on_conn(void *arg, int err, const conn_t *c)
{
  res_t *r = arg;
  r->calls++;
  r->err = err;
  if (c != NULL) {
    r->at = c->access_token ? xstrdup(c->access_token) : NULL;
    r->rt = c->refresh_token ? xstrdup(c->refresh_token) : NULL;
    r->status = (int)c->status;
  }
}

static void on_prov(void *arg, int err, const provider_t *p)
{
  (void)p;
  if (err != 0)
    abort();
  *(int *)arg = 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_log_capture();
  fuzz_svc_open(&fs);
  unsigned port = fuzz_peer_start(&fs.loop);
  provider_t *p = xcalloc(1, sizeof *p);
  p->name = xstrdup("tp");
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/token", port);
  p->token_url = xstrdup(url);
  p->client_id = xstrdup("cid");
  p->client_secret = xstrdup("provider-client-secret");
  p->allow_insecure_http = true;
  int done = 0;
  if (svc_provider_put(fs.svc, p, on_prov, &done) != 0)
    abort();
  fuzz_run_until(&fs, &done);
  conn_t *c = xcalloc(1, sizeof *c);
  c->id = xstrdup("tc");
  c->tenant = xstrdup("t");
  c->provider = xstrdup("tp");
  c->grant = GRANT_REFRESH_TOKEN;
  c->access_token = xstrdup("initial-access-token");
  c->refresh_token = xstrdup("initial-refresh-token");
  c->expires_at = 0;
  res_t r;
  memset(&r, 0, sizeof r);
  if (svc_conn_put(fs.svc, c, on_conn, &r) != 0)
    abort();
  fuzz_run_until(&fs, &r.calls);
  free(r.at);
  free(r.rt);
  /* One good answer first: a harness whose requests cannot reach the peer
   * (endpoint policy, TLS, ...) would fuzz nothing, so it stops here. */
  static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: 31\r\n\r\n{\"access_token\":\"sanity-token\"}";
  const char *ans = ok;
  size_t len = sizeof ok - 1;
  fuzz_peer_answers(&ans, &len, 1);
  memset(&r, 0, sizeof r);
  if (svc_conn_refresh(fs.svc, "tc", on_conn, &r) != 0)
    abort();
  fuzz_run_until(&fs, &r.calls);
  if (r.err != 0 || fuzz_peer_requests() != 1 || r.at == NULL ||
      strcmp(r.at, "sanity-token") != 0) {
    fprintf(stderr, "fuzz_token_http: the sanity refresh failed (%d, %u requests)\n", r.err,
            fuzz_peer_requests());
    abort();
  }
  free(r.at);
  free(r.rt);
  buf_t log = BUF_INIT;
  fuzz_log_take(&log);
  buf_free(&log);
  return 0;
}

static int same(const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static int printable(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > TOKEN_MAX_LEN)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
      return 0;
  return 1;
}

static const char *in_p;
static size_t in_n;

/* How often s occurs in this input (the provider's answer). */
static int occurrences(const char *s, size_t n)
{
  int k = 0;
  for (const char *p = in_p, *end = in_p + in_n; (p = memmem(p, (size_t)(end - p), s, n)) != NULL;
       p++)
    k++;
  return k;
}

/* A token must not be logged, unless the provider's answer itself carries
 * its text somewhere else than as the token (e.g. in an error code it
 * sent, which is logged as the provider's words): `allowed` occurrences
 * are the token's own. */
static void not_logged(const buf_t *log, const char *s, int allowed, const char *what)
{
  size_t n = s != NULL ? strlen(s) : 0;
  if (n >= 8 && occurrences(s, n) <= allowed)
    fuzz_check(!fuzz_contains(log->data, log->len, s, n), what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *ans = (const char *)data;
  in_p = ans;
  in_n = size;
  fuzz_peer_answers(&ans, &size, 1);
  conn_t before;
  fuzz_check(svc_conn_get(fs.svc, "tc", &before) == 0, "the connection exists");
  res_t r;
  memset(&r, 0, sizeof r);
  int rc = svc_conn_refresh(fs.svc, "tc", on_conn, &r);
  if (rc == 0) {
    while (r.calls == 0)
      uv_run(&fs.loop, UV_RUN_ONCE);
    uv_run(&fs.loop, UV_RUN_NOWAIT);
    fuzz_check(r.calls == 1, "the refresh callback runs once");
    /* The peer closes after each answer, so a pooled connection may be
     * found closed: the request then fails (it may have been sent), or is
     * sent again on a new connection when provably unsent. */
    fuzz_check(fuzz_peer_requests() <= 2, "at most one retry per refresh");
  } else {
    fuzz_check(rc == GRANTD_EREAUTH, "a forced refresh is refused only for a revoked connection");
  }
  conn_t after;
  fuzz_check(svc_conn_get(fs.svc, "tc", &after) == 0, "the connection is still there");
  if (rc == 0 && r.err == 0) {
    fuzz_check(r.status == CONN_ACTIVE, "an accepted answer leaves the connection active");
    fuzz_check(r.at != NULL && printable(r.at), "the new access token is printable, bounded");
    fuzz_check(after.access_token && strcmp(after.access_token, r.at) == 0,
               "the store gives back the token the parser accepted");
    fuzz_check((r.rt == NULL) == (after.refresh_token == NULL) &&
                 (r.rt == NULL || strcmp(r.rt, after.refresh_token) == 0),
               "and the refresh token");
  }
  buf_t log = BUF_INIT;
  fuzz_log_take(&log);
  int changed_at = !same(before.access_token, after.access_token);
  int changed_rt = !same(before.refresh_token, after.refresh_token);
  not_logged(&log, before.access_token, 0, "the old access token was logged");
  not_logged(&log, before.refresh_token, 0, "the old refresh token was logged");
  not_logged(&log, after.access_token, changed_at, "the new access token was logged");
  not_logged(&log, after.refresh_token, changed_rt, "the new refresh token was logged");
  not_logged(&log, "provider-client-secret", 0, "the client secret was logged");
  buf_free(&log);
  conn_free(&before);
  conn_free(&after);
  free(r.at);
  free(r.rt);
  return 0;
}
