/*
 * connections.c - the connection half of svc.h: put (import, pending, or a
 * client_credentials/password grant run at once), get, list, token reads,
 * forced refreshes and deletes (with revocation, revocation.c). The
 * machinery behind them: refresh.c (a refresh), op.c (single flight,
 * commits, waiters), index.c (the entries), answer.c (deferred answers).
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/rand.h"
#include "service/answer.h"
#include "service/exchange.h"
#include "service/index.h"
#include "service/lifecycle.h"
#include "service/op.h"
#include "service/providers.h"
#include "service/refresh.h"
#include "service/revocation.h"
#include "store/store.h"

/* ---- deferred behind a refresh in flight ----------------------------------------
 *
 * A refresh that has gone out (REQUEST) or is being stored (COMMIT) may be
 * rotating the refresh token at the provider. Two requests must not cut it
 * off: a put that re-imports the very tokens the refresh started from (to
 * change tenant or metadata: detaching would drop the rotated token and
 * store the dead one), and a delete with revocation (it would revoke the
 * pre-rotation tokens and leave the new ones alive). They wait for the
 * refresh as an internal waiter and then run; such a put takes the tokens
 * the refresh stored instead of the ones it brought. */

typedef struct {
  svc_t *svc;
  conn_t *put;  /* a deferred put (owned), or NULL */
  char *del_id; /* a deferred delete (with revocation) */
  svc_conn_cb put_cb;
  svc_delete_cb del_cb;
  void *arg;
} deferred_t;

static int put_impl(svc_t *svc, conn_t *c, svc_conn_cb cb, void *arg, bool after_refresh);
static int delete_impl(svc_t *svc, const char *id, bool revoke, svc_delete_cb cb, void *arg);

/* A refresh whose outcome may change the tokens at the provider. */
static bool refresh_outstanding(const svc_op_t *op)
{
  return op && op->kind == SVC_OP_REFRESH && op->state != SVC_OP_NEW && op->state != SVC_OP_QUEUED;
}

static void on_deferred(void *arg, int err, const conn_t *rec)
{
  (void)rec;
  deferred_t *d = arg;
  svc_t *svc = d->svc;
  /* Superseded (a later put or delete detached the refresh) or closing:
   * the deferred request is answered, not run. */
  int rc = err == GRANTD_ESHUTDOWN                               ? GRANTD_ESHUTDOWN
           : err == GRANTD_ECONFLICT || err == GRANTD_ENOT_FOUND ? GRANTD_ECONFLICT
                                                                 : 0;
  if (d->put) {
    conn_t *c = d->put;
    if (rc == 0)
      rc = put_impl(svc, c, d->put_cb, d->arg, true); /* takes c */
    else {
      conn_free(c);
      free(c);
    }
    if (rc != 0)
      d->put_cb(d->arg, rc, NULL);
  } else {
    if (rc == 0)
      rc = delete_impl(svc, d->del_id, true, d->del_cb, d->arg);
    if (rc != 0) {
      svc_revoke_report_t rep = {0};
      d->del_cb(d->arg, rc, &rep);
    }
  }
  free(d->del_id);
  free(d);
}

/* Replaces c's tokens with the stored ones (which a refresh renewed). */
static void take_tokens(conn_t *c, conn_t *stored)
{
  free_secret(c->access_token);
  free_secret(c->refresh_token);
  free(c->token_type);
  c->access_token = stored->access_token;
  c->refresh_token = stored->refresh_token;
  c->token_type = stored->token_type;
  stored->access_token = stored->refresh_token = stored->token_type = NULL;
  c->expires_at = stored->expires_at;
  c->refresh_token_expires_at = stored->refresh_token_expires_at;
  c->refreshed_at = stored->refreshed_at;
}

/* ---- connections --------------------------------------------------------------- */

int svc_conn_put(svc_t *svc, conn_t *c, svc_conn_cb cb, void *arg)
{
  return put_impl(svc, c, cb, arg, false);
}

/* after_refresh: a put deferred behind a refresh (see above); it takes the
 * stored tokens. */
static int put_impl(svc_t *svc, conn_t *c, svc_conn_cb cb, void *arg, bool after_refresh)
{
  int rc = 0;
  if (svc->closing) {
    rc = GRANTD_ESHUTDOWN;
    goto fail;
  }
  if (c->id == NULL || c->provider == NULL) {
    rc = GRANTD_EINVALID;
    goto fail;
  }
  svc_prov_t *pv = svc__prov_find(svc, c->provider);
  if (pv == NULL || !pv->present) {
    rc = GRANTD_EPROVIDER_UNKNOWN;
    goto fail;
  }
  conn_entry_t *e0 = svc__entry_find(svc, c->id);
  if (e0 && refresh_outstanding(e0->op) && c->refresh_token && e0->op->rec.refresh_token &&
      strcmp(c->refresh_token, e0->op->rec.refresh_token) == 0) {
    deferred_t *d = xcalloc(1, sizeof *d);
    d->svc = svc;
    d->put = c;
    d->put_cb = cb;
    d->arg = arg;
    svc__op_wait(e0->op, SVC_WAIT_RECORD, on_deferred, d);
    return 0;
  }
  int64_t now = clock_now_ms();
  conn_t old;
  int grc = store_conn_get(svc->store, c->id, &old);
  if (grc == 0) {
    c->created_at = old.created_at ? old.created_at : now;
    c->revision = old.revision + 1;
    if (after_refresh && old.refresh_token && old.refresh_token[0])
      take_tokens(c, &old);
    conn_free(&old);
  } else {
    if (grc != GRANTD_ENOT_FOUND)
      log_warn("conn_replacing_unreadable", "id", c->id, "error", err_name(grc));
    c->created_at = now;
    c->revision = 1;
  }
  c->updated_at = now;
  c->failures = 0;
  free(c->last_error_code);
  free(c->last_error_message);
  c->last_error_code = c->last_error_message = NULL;
  c->last_error_http = 0;
  c->last_error_at = 0;
  c->next_refresh_at = 0;

  bool has_rt = c->refresh_token && c->refresh_token[0];
  bool has_at = c->access_token && c->access_token[0];
  switch (c->grant) {
  case GRANT_CLIENT_CREDENTIALS:
  case GRANT_PASSWORD:
  case GRANT_JWT_BEARER:
  case GRANT_TOKEN_EXCHANGE:
  case GRANT_DEVICE_CODE: {
    /* The grant runs at once; one commit stores its outcome. */
    /* The status stays what it was until the grant's outcome is stored
     * (one status change, not two). */
    conn_entry_t *e = svc__entry_find(svc, c->id);
    c->status = e ? (conn_status_t)e->status : CONN_PENDING;
    if (e)
      svc__entry_apply(svc, e, c);
    else
      e = svc__entry_add(svc, c);
    svc__refresh_with(svc, e, c, cb, arg);
    free(c);
    return 0;
  }
  case GRANT_REFRESH_TOKEN:
    if (has_at || has_rt) {
      c->status = CONN_ACTIVE;
      if (c->refreshed_at == 0)
        c->refreshed_at = now;
      c->next_refresh_at = has_at ? policy_next_refresh(now, c->refreshed_at, c->expires_at, has_rt,
                                                        &pv->p, rand_fast_u64(&svc->rnd))
                                  : now; /* only a refresh token: get an access token now */
    } else {
      c->status = CONN_NEEDS_REAUTH;
      c->last_error_code = xstrdup("no_tokens");
      c->last_error_message = xstrdup("imported without an access or refresh token");
      c->last_error_at = now;
    }
    break;
  default: c->status = CONN_PENDING; break;
  }
  rc = svc__conn_commit(svc, c, cb, arg);
  free(c);
  return rc;

fail:
  conn_free(c);
  free(c);
  return rc;
}

int svc_conn_get(svc_t *svc, const char *id, conn_t *out)
{
  return store_conn_get(svc->store, id, out);
}

int svc_conn_list(svc_t *svc, const char *tenant, int status, const char *cursor, size_t limit,
                  conn_t **out, size_t *n, char **next)
{
  return store_conn_list(svc->store, tenant, status, cursor, limit, out, n, next);
}

int svc_conn_token(svc_t *svc, const char *id, int64_t min_ttl_ms, svc_conn_cb cb, void *arg)
{
  if (svc->closing)
    return GRANTD_ESHUTDOWN;
  conn_entry_t *e = svc__entry_find(svc, id);
  if (e == NULL)
    return GRANTD_ENOT_FOUND;
  svc_op_t *op = e->op;
  if (op && (op->kind != SVC_OP_REFRESH || op->state == SVC_OP_COMMITTING)) {
    /* A write whose record is not stored yet (put, connect-flow commit, a
     * client_credentials/password put's grant), or a refresh whose new
     * record is about to be durable: answer from what it commits. */
    svc__op_wait(op, SVC_WAIT_TOKEN, cb, arg);
    return 0;
  }
  /* Idle, or a refresh queued / in flight: the stored record is the
   * current one (also while a failed commit waits for its retry: readers
   * never see an uncommitted record). A token that qualifies is served at
   * once (a read never waits behind a refresh it does not need, so a slow
   * provider does not slow reads of valid tokens); otherwise the read
   * joins the refresh below (svc__refresh joins e->op). */
  /* The refresh token is not unsealed for a read (one AES-GCM open
   * less): c is only answered from, or written back (svc__expire_no_rt)
   * when it has no refresh token, so nothing is missing from it then. */
  conn_t c;
  bool has_rt;
  int rc = store_conn_get_token_view(svc->store, id, &c, &has_rt);
  if (rc != 0)
    return rc;
  int64_t now = clock_now_ms();
  int verdict = svc__token_verdict(&c, now);
  bool serving = c.status == CONN_ACTIVE || c.status == CONN_REFRESH_FAILING;
  if (!serving || (verdict == 0 && !policy_should_refresh_on_read(now, c.expires_at, min_ttl_ms))) {
    svc__answer_move(svc, cb, arg, verdict, &c);
    return 0;
  }
  if (op == NULL && c.failures > 0 && e->next_refresh_at > now) {
    /* Backing off after failures (maybe a Retry-After): do not hammer the
     * provider on behalf of readers. Serve the token while it is valid,
     * even with less than min_ttl left; else report the upstream error. */
    svc__answer_move(svc, cb, arg, verdict, &c);
    return 0;
  }
  if (!has_rt && (c.grant == GRANT_REFRESH_TOKEN || c.grant == GRANT_AUTHORIZATION_CODE ||
                  c.grant == GRANT_DEVICE_CODE)) {
    /* Nothing to refresh with: no token request, so no slot and no
     * rate-limit budget. A valid token is served as it is; an expired one
     * makes the connection needs_reauth at once. */
    if (verdict == 0) {
      svc__answer_move(svc, cb, arg, verdict, &c);
      return 0;
    }
    if (op == NULL || op->state == SVC_OP_QUEUED) {
      /* (a queued scheduled refresh is replaced: it could do no more) */
      svc__expire_no_rt(svc, e, &c, cb, arg);
      return 0;
    }
  }
  conn_free(&c);
  svc__refresh(svc, e, SVC_WAIT_TOKEN, cb, arg);
  return 0;
}

int svc_conn_refresh(svc_t *svc, const char *id, svc_conn_cb cb, void *arg)
{
  if (svc->closing)
    return GRANTD_ESHUTDOWN;
  conn_entry_t *e = svc__entry_find(svc, id);
  if (e == NULL)
    return GRANTD_ENOT_FOUND;
  if (e->op == NULL && e->status == CONN_PENDING)
    return GRANTD_ECONFLICT;
  if (e->op == NULL && e->status == CONN_REVOKED)
    return GRANTD_EREAUTH;
  svc__refresh(svc, e, SVC_WAIT_FORCED, cb, arg);
  return 0;
}

/* ---- delete ------------------------------------------------------------------------ */

typedef struct {
  svc_t *svc;
  char *id;
  svc_delete_cb cb;
  void *arg;
  svc_revoke_report_t rep;
} conn_del_t;

static void conn_del_done(void *arg, int status)
{
  conn_del_t *d = arg;
  svc_t *svc = d->svc;
  if (status != 0) {
    log_error("conn_delete_failed", "id", d->id, "error", err_name(status));
    svc__entry_resync(svc, d->id);
  } else {
    log_info("conn_deleted", "id", d->id, "?revoked", d->rep.attempted);
    svc__exchange_source_gone(svc, d->id);
  }
  d->cb(d->arg, status, &d->rep);
  free(d->id);
  free(d);
  svc__work_end(svc);
}

static int conn_del_store(conn_del_t *d)
{
  /* connection.revoked when the provider confirmed a revocation. */
  bool revoked = d->rep.attempted && (d->rep.refresh_err == 0 || d->rep.access_err == 0);
  return store_conn_delete_ev(d->svc->store, d->id, revoked ? OUTBOX_F_REVOKED : 0, conn_del_done,
                              d);
}

static void on_revoked(void *arg, const svc_revoke_report_t *rep)
{
  conn_del_t *d = arg;
  svc_t *svc = d->svc;
  if (rep)
    d->rep = *rep;
  int rc;
  if (svc__entry_find(svc, d->id) != NULL)
    rc = GRANTD_ECONFLICT; /* put again while revoking: the new one stays */
  else
    rc = conn_del_store(d);
  if (rc != 0) {
    d->cb(d->arg, rc, &d->rep);
    free(d->id);
    free(d);
    svc__work_end(svc);
  }
}

int svc_conn_delete(svc_t *svc, const char *id, bool revoke, svc_delete_cb cb, void *arg)
{
  return delete_impl(svc, id, revoke, cb, arg);
}

static int delete_impl(svc_t *svc, const char *id, bool revoke, svc_delete_cb cb, void *arg)
{
  if (svc->closing)
    return GRANTD_ESHUTDOWN;
  conn_entry_t *e = svc__entry_find(svc, id);
  if (e == NULL)
    return GRANTD_ENOT_FOUND;
  if (revoke && refresh_outstanding(e->op)) {
    /* Revoke the tokens the refresh ends with, not the ones it replaces. */
    deferred_t *w = xcalloc(1, sizeof *w);
    w->svc = svc;
    w->del_id = xstrdup(id);
    w->del_cb = cb;
    w->arg = arg;
    svc__op_wait(e->op, SVC_WAIT_RECORD, on_deferred, w);
    return 0;
  }
  conn_del_t *d = xcalloc(1, sizeof *d);
  d->svc = svc;
  d->id = xstrdup(id);
  d->cb = cb;
  d->arg = arg;
  if (!revoke) {
    int rc = conn_del_store(d);
    if (rc != 0) {
      free(d->id);
      free(d);
      return rc;
    }
    svc__op_detach(svc, e, GRANTD_ENOT_FOUND);
    svc__entry_remove(svc, e);
    svc__work_begin(svc);
    return 0;
  }
  conn_t c;
  int rc = store_conn_get(svc->store, id, &c);
  svc_prov_t *pv = e->prov;
  svc__op_detach(svc, e, GRANTD_ENOT_FOUND);
  svc__entry_remove(svc, e);
  svc__work_begin(svc);
  if (rc != 0) {
    /* Unreadable: nothing to revoke with, delete anyway. */
    log_warn("revoke_skipped", "id", id, "error", err_name(rc));
    rc = conn_del_store(d);
    if (rc != 0) {
      svc__entry_resync(svc, id);
      free(d->id);
      free(d);
      svc->work--;
    }
    return rc;
  }
  svc__revoke(svc, &c, pv, on_revoked, d);
  conn_free(&c);
  return 0;
}
