/*
 * refresh.c - the refresh of one connection, as an op: record -> token
 * request (through treq.c) -> outcome (outcome.c) -> next record ->
 * commit (op.c). Also the two refreshes that need no request (a token
 * without a refresh token, expired or not) and the grant a
 * client_credentials/password/jwt_bearer/device_code put runs at once
 * (the steps of a device flow are device.c's).
 *
 * Entry points: svc__refresh (a token read, a forced refresh, or the
 * schedule's svc->on_due hook), svc__expire_no_rt, svc__refresh_with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "base/rand.h"
#include "service/device.h"
#include "service/exchange.h"
#include "service/index.h"
#include "service/op.h"
#include "service/outcome.h"
#include "service/refresh.h"
#include "service/schedule.h"
#include "service/treq.h"
#include "store/store.h"

int (*svc__conn_get)(store_t *s, const char *id, conn_t *out) = store_conn_get;

/* Builds the next record from a result and commits it. */
static void refresh_finish(svc_t *svc, svc_op_t *op, token_result_t *tok, int neterr, bool unknown)
{
  int64_t now = clock_now_ms();
  op->outcome = unknown ? TOKEN_TRANSIENT : tok->outcome;
  svc__next_record(svc, &op->rec, op->entry->prov, tok, neterr, unknown, now, &op->next);
  if (op->kind == SVC_OP_GRANT)
    op->next.revision = op->rec.revision; /* a put's record: not yet stored */
  svc__restart_outcome(op->entry, &op->next, op->kind == SVC_OP_GRANT, tok, unknown);
  if (op->next.status == CONN_NEEDS_REAUTH)
    op->outcome = TOKEN_REAUTH;
  else if (op->next.status == CONN_REFRESH_FAILING)
    op->outcome = TOKEN_TRANSIENT;
  svc__op_commit(svc, op);
}

static void synthetic(svc_t *svc, svc_op_t *op, token_outcome_t o, const char *code,
                      const char *msg)
{
  token_result_t tok;
  memset(&tok, 0, sizeof tok);
  tok.outcome = o;
  tok.error = xstrdup(code);
  tok.error_description = xstrdup(msg);
  svc__count_outcome(svc, o, false);
  refresh_finish(svc, op, &tok, 0, false);
  token_result_free(&tok);
}

static int refresh_start(svc_treq_t *t, oauth_request_t *req)
{
  svc_op_t *op = container_of(t, svc_op_t, treq);
  svc_t *svc = op->svc;
  conn_entry_t *e = op->entry;
  if (op->state == SVC_OP_ORPHANED) {
    svc__op_free(svc, op); /* detached while queued: nothing to do */
    return 1;
  }
  /* A token exchange that waited for its subject connection comes back
   * SENDING, its record loaded (exchange.c). */
  bool resumed = op->state == SVC_OP_SENDING;
  if (op->kind == SVC_OP_REFRESH && !resumed) {
    int rc = svc__conn_get(svc->store, e->id, &op->rec);
    if (rc != 0) {
      log_error("refresh_read_failed", "id", e->id, "error", err_name(rc));
      svc__op_end(svc, op, rc, NULL, 0);
      if (rc == GRANTD_ENOT_FOUND) {
        svc__entry_resync(svc, e->id); /* gone underneath: drop the entry */
      } else if (rc != GRANTD_ESTORE_DECODE && rc != GRANTD_ESTORE_AUTH &&
                 rc != GRANTD_ESTORE_VERSION && rc != GRANTD_ESTORE_KEY) {
        /* A passing failure (I/O, a full reader table ...): the entry was
         * unlinked when the op attached; keep it scheduled, or it would
         * never be refreshed again. Unreadable records stay unscheduled on
         * purpose (svc__entry_resync). */
        int64_t now = clock_now_ms();
        svc__schedule(
          svc, e, policy_backoff(e->failures + 1, 0, e->expires_at, now, rand_fast_u64(&svc->rnd)));
      }
      return 1;
    }
  }
  if (!resumed)
    svc__op_set(op, SVC_OP_SENDING);
  int64_t now = clock_now_ms();
  const conn_t *c = &op->rec;
  svc_prov_t *pv = e->prov;
  if (!pv->present) {
    synthetic(svc, op, TOKEN_CONFIG, "provider_unknown",
              "the connection's provider does not exist");
    return 1;
  }
  int rc;
  bool has_rt = c->refresh_token && c->refresh_token[0];
  if (svc__device_step(op)) {
    rc = svc__device_start(svc, op, req, now);
    if (rc == 1)
      return 1;
  } else if (c->grant == GRANT_TOKEN_EXCHANGE) {
    /* Renewal repeats the exchange (with a fresh subject token). */
    rc = svc__exchange_start(svc, op, req, now);
    if (rc == SVC_EXCHANGE_WAIT)
      return 1;
    if (rc == SVC_EXCHANGE_NO_SOURCE) {
      synthetic(svc, op, TOKEN_REAUTH, "subject_connection_unavailable",
                "the subject connection is gone or has no valid token");
      return 1;
    }
    if (rc == SVC_EXCHANGE_SOURCE_DOWN) {
      synthetic(svc, op, TOKEN_TRANSIENT, "subject_token_unavailable",
                "the subject connection's token expired and its refresh failed");
      return 1;
    }
  } else if (c->grant == GRANT_JWT_BEARER) {
    /* Renewal is a fresh assertion, whatever the provider answered. */
    rc = grant_jwt_bearer_request(&pv->p, c, req);
  } else if (has_rt) {
    rc = grant_refresh_request(&pv->p, c, req);
  } else if (c->grant == GRANT_CLIENT_CREDENTIALS) {
    rc = grant_client_credentials_request(&pv->p, c, req);
  } else if (c->grant == GRANT_PASSWORD) {
    rc = grant_password_request(&pv->p, c, req);
  } else if (c->access_token && (c->expires_at == 0 || c->expires_at > now)) {
    /* Nothing to refresh with, but the token still works: serve it until
     * it expires, then give up as needs_reauth. */
    int64_t at = c->expires_at;
    conn_t rec = *c;
    memset(&op->rec, 0, sizeof op->rec);
    svc__op_end(svc, op, 0, &rec, now);
    conn_free(&rec);
    svc__schedule(svc, e, at);
    return 1;
  } else {
    synthetic(svc, op, TOKEN_REAUTH, "no_refresh_token",
              "the access token expired and there is no refresh token");
    return 1;
  }
  if (rc != 0) {
    char m[160];
    snprintf(m, sizeof m, "the token request cannot be built: %s", err_str(rc));
    synthetic(svc, op, TOKEN_CONFIG, err_name(rc), m);
    return 1;
  }
  return 0;
}

static void refresh_done(svc_treq_t *t, svc_tresult_t *r)
{
  svc_op_t *op = container_of(t, svc_op_t, treq);
  svc_t *svc = op->svc;
  if (r->neterr == GRANTD_ESHUTDOWN) {
    /* Never sent: nothing changed at the provider. Token readers get the
     * stored token if it is still valid (op->rec once loaded at dispatch,
     * else read now). */
    conn_t cur;
    memset(&cur, 0, sizeof cur);
    bool have = false;
    if (op->state == SVC_OP_SENDING && op->kind == SVC_OP_REFRESH) {
      cur = op->rec;
      memset(&op->rec, 0, sizeof op->rec);
      have = true;
    } else if (op->entry && op->kind == SVC_OP_REFRESH && op->waiters) {
      have = store_conn_get(svc->store, op->entry->id, &cur) == 0;
    }
    svc__op_end(svc, op, GRANTD_ESHUTDOWN, have ? &cur : NULL, clock_now_ms());
    conn_free(&cur);
    return;
  }
  svc__count_outcome(svc, r->tok.outcome, r->unknown && r->tok.outcome == TOKEN_TRANSIENT);
  metrics_histogram_observe("grantd_refresh_latency_ms", NULL, (double)r->latency_ms);
  if (op->state == SVC_OP_ORPHANED) {
    /* Deleted or replaced meanwhile: the result must not be stored. */
    log_warn("refresh_dropped", "id", op->rec.id, "outcome", token_outcome_name(r->tok.outcome));
    svc__op_free(svc, op);
    return;
  }
  log_debug("refresh_done", "id", op->entry->id, "outcome", token_outcome_name(r->tok.outcome),
            "#http", LOG_I64(r->tok.http_status), "#ms", LOG_I64(r->latency_ms));
  if (op->treq.device_auth || op->device_poll) {
    svc__device_done(svc, op, r);
    return;
  }
  refresh_finish(svc, op, &r->tok, r->neterr, r->unknown && r->tok.outcome == TOKEN_TRANSIENT);
}

static void refresh_submit(svc_t *svc, svc_op_t *op, int64_t deadline)
{
  svc__op_set(op, SVC_OP_QUEUED);
  op->treq.prov = op->entry->prov;
  snprintf(op->treq.token_member, sizeof op->treq.token_member, "%s",
           op->rec.token_member ? op->rec.token_member : "");
  op->treq.deadline = deadline;
  op->treq.start = refresh_start;
  op->treq.done = refresh_done;
  svc__treq_submit(svc, &op->treq);
}

void svc__refresh(svc_t *svc, conn_entry_t *e, svc_wait_kind_t kind, svc_conn_cb cb, void *arg)
{
  if (e->op) {
    svc__op_wait(e->op, kind, cb, arg);
    return;
  }
  svc_op_t *op = svc__op_new(svc, SVC_OP_REFRESH);
  svc__op_attach(svc, e, op);
  svc__op_wait(op, kind, cb, arg);
  int64_t now = clock_now_ms();
  int64_t deadline = now;
  if (cb == NULL && e->expires_at != 0)
    deadline = e->expires_at;
  refresh_submit(svc, op, deadline);
}

void svc__expire_no_rt(svc_t *svc, conn_entry_t *e, conn_t *rec, svc_conn_cb cb, void *arg)
{
  svc_op_t *op = svc__op_new(svc, SVC_OP_REFRESH);
  op->rec = *rec;
  memset(rec, 0, sizeof *rec);
  svc__op_attach(svc, e, op);
  svc__op_wait(op, SVC_WAIT_TOKEN, cb, arg);
  svc__op_set(op, SVC_OP_SENDING); /* as refresh_start would, minus the slot */
  synthetic(svc, op, TOKEN_REAUTH, "no_refresh_token",
            "the access token expired and there is no refresh token");
}

/* Runs the grant of a client_credentials / password put: `rec` (moved) is
 * the record as put; it is refreshed and committed by the op. */
void svc__refresh_with(svc_t *svc, conn_entry_t *e, conn_t *rec, svc_conn_cb cb, void *arg)
{
  svc_op_t *op = svc__op_new(svc, SVC_OP_GRANT);
  op->rec = *rec;
  memset(rec, 0, sizeof *rec);
  svc__op_attach(svc, e, op);
  svc__op_wait(op, SVC_WAIT_RECORD, cb, arg);
  refresh_submit(svc, op, clock_now_ms());
}

void svc__refresh_due(svc_t *svc, conn_entry_t *e)
{
  svc__refresh(svc, e, SVC_WAIT_TOKEN, NULL, NULL);
}

void svc__refresh_forced(svc_t *svc, conn_entry_t *e, svc_conn_cb cb, void *arg)
{
  svc__refresh(svc, e, SVC_WAIT_FORCED, cb, arg);
}
