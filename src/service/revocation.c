/*
 * revocation.c - token revocation (RFC 7009) before a connection is deleted:
 * the refresh token first (hint refresh_token), then the access token
 * (hint access_token), at the provider's revoke_url with the same client
 * authentication as the token endpoint.
 *
 * Why this order: revoking the refresh token invalidates the grant (RFC
 * 7009 section 2.1: the server SHOULD then also invalidate its access
 * tokens), so an access token revoked first could be replaced by a refresh
 * racing in between; the access token is still revoked explicitly because
 * many servers do not cascade.
 *
 * Both requests go through svc_treq_t, so they count against the
 * provider's limits and the token host's in-flight slots like refreshes.
 * Nothing here is fatal: each outcome lands in the report and the caller
 * deletes the connection whatever it says. Report codes per token:
 *   0                        revoked (any 2xx), or the provider says the
 *                            token is already invalid (invalid_token,
 *                            invalid_grant ...: nothing is left to revoke)
 *   GRANTD_ENOT_FOUND        the connection holds no such token
 *   GRANTD_EPROVIDER_CONFIG  refused as a configuration problem
 *                            (unsupported_token_type, invalid_client ...)
 *   GRANTD_EUPSTREAM         5xx, 429, an unusable answer
 *   a network / TLS code     no answer (http status 0)
 *   GRANTD_ECONFIG           the request cannot be built (no client_id)
 *   GRANTD_ESHUTDOWN         grantd is closing
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "oauth/grant.h"
#include "oauth/token.h"
#include "service/answer.h"
#include "service/lifecycle.h"
#include "service/revocation.h"
#include "service/treq.h"

typedef struct {
  svc_t *svc;
  svc__revoke_cb done;
  void *arg;
  svc_prov_t *prov;
  conn_t conn; /* copy: tokens and client overrides */
  int step;    /* 0 refresh token, 1 access token, 2 done */
  svc_revoke_report_t rep;
  oauth_request_t req; /* prepared for the request in flight */
  svc_treq_t treq;
} rv_ctx_t;

static void step(rv_ctx_t *x);

/* svc__answer trampoline: every step starts from a later loop iteration,
 * never from inside the token-request machinery's own callbacks. */
static void on_next(void *arg, int err, const conn_t *c)
{
  (void)err;
  (void)c;
  step(arg);
}

static void later(rv_ctx_t *x)
{
  svc__answer(x->svc, on_next, x, 0, NULL);
}

static void set_outcome(rv_ctx_t *x, int which, int err, int http)
{
  if (which == 0) {
    x->rep.refresh_err = err;
    x->rep.refresh_http = http;
  } else {
    x->rep.access_err = err;
    x->rep.access_http = http;
  }
}

static int start(svc_treq_t *t, oauth_request_t *req)
{
  rv_ctx_t *x = container_of(t, rv_ctx_t, treq);
  *req = x->req;
  memset(&x->req, 0, sizeof x->req);
  return 0;
}

static void done(svc_treq_t *t, svc_tresult_t *r)
{
  rv_ctx_t *x = container_of(t, rv_ctx_t, treq);
  const char *hint = x->step == 0 ? "refresh_token" : "access_token";
  int err;
  if (r->neterr != 0) {
    err = r->neterr;
  } else {
    switch (r->tok.outcome) {
    case TOKEN_OK:
    case TOKEN_REAUTH: /* the token is already invalid there */ err = 0; break;
    case TOKEN_CONFIG: err = GRANTD_EPROVIDER_CONFIG; break;
    default: err = GRANTD_EUPSTREAM; break;
    }
  }
  int http = r->neterr ? 0 : r->tok.http_status;
  set_outcome(x, x->step, err, http);
  log_info("revoke", "id", x->conn.id, "hint", hint, "result", err_name(err), "#http",
           LOG_I64(http), "error", r->tok.error);
  metrics_counter_inc("grantd_revocations_total",
                      err == 0 ? "outcome=\"ok\"" : "outcome=\"error\"");
  if (r->neterr == GRANTD_ESHUTDOWN && x->step == 0)
    set_outcome(x, 1, GRANTD_ESHUTDOWN, 0);
  x->step = r->neterr == GRANTD_ESHUTDOWN ? 2 : x->step + 1;
  later(x);
}

static void step(rv_ctx_t *x)
{
  while (x->step < 2) {
    const char *token = x->step == 0 ? x->conn.refresh_token : x->conn.access_token;
    const char *hint = x->step == 0 ? "refresh_token" : "access_token";
    if (token == NULL || token[0] == '\0') {
      set_outcome(x, x->step, GRANTD_ENOT_FOUND, 0);
      x->step++;
      continue;
    }
    if (x->svc->closing) {
      set_outcome(x, x->step, GRANTD_ESHUTDOWN, 0);
      x->step++;
      continue;
    }
    int rc = grant_revoke_request(&x->prov->p, &x->conn, token, hint, &x->req);
    if (rc != 0) {
      log_warn("revoke", "id", x->conn.id, "hint", hint, "result", err_name(rc));
      set_outcome(x, x->step, rc, 0);
      x->step++;
      continue;
    }
    memset(&x->treq, 0, sizeof x->treq);
    x->treq.prov = x->prov;
    x->treq.deadline = clock_now_ms();
    x->treq.revocation = true;
    x->treq.start = start;
    x->treq.done = done;
    svc__treq_submit(x->svc, &x->treq);
    return;
  }
  svc_t *svc = x->svc;
  x->done(x->arg, &x->rep);
  conn_free(&x->conn);
  oauth_request_free(&x->req);
  free(x);
  svc__work_end(svc);
}

void svc__revoke(svc_t *svc, const conn_t *c, svc_prov_t *prov, svc__revoke_cb cb, void *arg)
{
  rv_ctx_t *x = xcalloc(1, sizeof *x);
  x->svc = svc;
  x->done = cb;
  x->arg = arg;
  x->prov = prov;
  bool has_rt = c->refresh_token && c->refresh_token[0];
  bool has_at = c->access_token && c->access_token[0];
  x->rep.attempted =
    prov && prov->present && prov->p.revoke_url && prov->p.revoke_url[0] && (has_rt || has_at);
  if (x->rep.attempted)
    conn_copy(&x->conn, c);
  else
    x->step = 2; /* nothing to do: just answer later */
  svc__work_begin(svc);
  later(x);
}
