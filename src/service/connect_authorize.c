/*
 * connect_authorize.c - the first half of the authorization-code connect
 * flow: the authorization URL (svc_authorize). The browser's return is
 * connect_flow.c.
 *
 * A fresh state (256 CSPRNG bits, base64url) and, unless the provider
 * turns PKCE off, a verifier are stored in `states` (verifier sealed by
 * the store) with the connection id, redirect_after, the scopes and the
 * exact redirect_uri sent. The URL is answered only after that write is
 * committed: a browser must never be able to come back with a state
 * grantd could lose in a crash.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "oauth/grant.h"
#include "oauth/pkce.h"
#include "service/index.h"
#include "service/lifecycle.h"
#include "service/providers.h"
#include "store/store.h"

typedef struct {
  svc_t *svc;
  svc_authorize_cb cb;
  void *arg;
  char *url;
  char *state;
  int64_t expires_at;
} auth_ctx_t;

static void on_state_stored(void *arg, int status)
{
  auth_ctx_t *a = arg;
  if (status != 0) {
    log_error("authorize_state_store_failed", "error", err_name(status));
    a->cb(a->arg, status, NULL, NULL, 0);
  } else {
    a->cb(a->arg, 0, a->url, a->state, a->expires_at);
  }
  svc_t *svc = a->svc;
  free(a->url);
  free(a->state);
  free(a);
  svc__work_end(svc);
}

/* The redirect_uri: the provider's, else public_url + "/oauth/callback". */
static char *redirect_uri_for(const svc_t *svc, const provider_t *p)
{
  if (p->redirect_uri && p->redirect_uri[0])
    return xstrdup(p->redirect_uri);
  const char *pub = svc->opts.public_url;
  if (pub == NULL || pub[0] == '\0')
    return NULL;
  size_t n = strlen(pub);
  while (n > 0 && pub[n - 1] == '/')
    n--;
  buf_t b = BUF_INIT;
  buf_append(&b, pub, n);
  buf_puts(&b, "/oauth/callback");
  return buf_steal(&b);
}

int svc_authorize(svc_t *svc, const char *id, const svc_authorize_req_t *req, svc_authorize_cb cb,
                  void *arg)
{
  conn_t c;
  state_rec_t st;
  buf_t state = BUF_INIT, verifier = BUF_INIT, challenge = BUF_INIT, url = BUF_INIT;
  char *redirect_uri = NULL;
  int rc;

  if (svc->closing)
    return GRANTD_ESHUTDOWN;
  if (id == NULL || cb == NULL)
    return GRANTD_EINVALID;
  memset(&st, 0, sizeof st);
  if (svc__entry_find(svc, id) == NULL)
    return GRANTD_ENOT_FOUND;
  rc = store_conn_get(svc->store, id, &c);
  if (rc != 0)
    return rc;
  /* Only an authorization_code connection has a browser flow: the request
   * is fine, the connection's configuration makes it impossible (409). */
  if (c.grant != GRANT_AUTHORIZATION_CODE) {
    rc = GRANTD_ECONFLICT;
    goto fail_conn;
  }
  svc_prov_t *pv = svc__prov_find(svc, c.provider);
  if (pv == NULL || !pv->present || pv->p.authorize_url == NULL) {
    rc = GRANTD_ECONFIG;
    goto fail_conn;
  }
  const provider_t *p = &pv->p;
  redirect_uri = redirect_uri_for(svc, p);
  if (redirect_uri == NULL) {
    rc = GRANTD_ECONFIG;
    goto fail_conn;
  }

  pkce_state(&state);
  if (p->pkce) {
    pkce_verifier(&verifier);
    rc = pkce_challenge_s256(buf_cstr(&verifier), &challenge);
    if (rc != 0)
      goto fail_bufs;
  }
  /* Scopes: the request's, else the connection's, else the provider's. */
  const strlist_t *scopes = req && req->scopes && req->scopes->n ? req->scopes
                            : c.scopes.n                         ? &c.scopes
                                                                 : &p->scopes;
  rc = oauth_authorize_url(p, &c.vars, c.client_id, redirect_uri, scopes, buf_cstr(&state),
                           p->pkce ? buf_cstr(&challenge) : NULL, req ? req->params : NULL, &url);
  if (rc != 0)
    goto fail_bufs;

  int64_t now = clock_now_ms();
  st.state = buf_steal(&state);
  st.conn_id = xstrdup(c.id);
  st.code_verifier = p->pkce ? buf_steal(&verifier) : NULL;
  st.redirect_after = req && req->redirect_after ? xstrdup(req->redirect_after) : NULL;
  for (size_t i = 0; i < scopes->n; i++)
    strlist_push(&st.scopes, scopes->items[i]);
  st.redirect_uri = redirect_uri;
  redirect_uri = NULL;
  st.expires_at = now + svc->opts.state_ttl_ms;

  auth_ctx_t *a = xcalloc(1, sizeof *a);
  a->svc = svc;
  a->cb = cb;
  a->arg = arg;
  a->url = buf_steal(&url);
  a->state = xstrdup(st.state);
  a->expires_at = st.expires_at;
  buf_free(&challenge);
  rc = store_state_put(svc->store, &st, on_state_stored, a);
  state_rec_free(&st);
  if (rc != 0) {
    free(a->url);
    free(a->state);
    free(a);
    goto fail_conn;
  }
  svc__work_begin(svc);
  log_info("authorize", "id", c.id, "provider", c.provider, "?pkce", p->pkce ? 1 : 0);
  conn_free(&c);
  return 0;

fail_bufs:
  buf_free(&url);
  buf_free(&challenge);
  buf_wipe_free(&verifier);
  buf_wipe_free(&state);
fail_conn:
  free(redirect_uri);
  state_rec_free(&st);
  conn_free(&c);
  return rc;
}
