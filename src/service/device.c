/*
 * device.c - the device authorization grant (RFC 8628) on the refresh
 * engine; see device.h.
 *
 * A device_code put is an SVC_OP_GRANT like a client_credentials put: its
 * request goes through the same limits (treq.c), but to the device
 * authorization endpoint, and its answer is parsed by oauth/device.h. The
 * record is committed `pending` with the device code sealed and its next
 * refresh time at the first poll; from then on the wheel fires the entry
 * like any due refresh (svc__schedulable admits pending device flows), and
 * refresh.c hands the poll back here. So a flow waiting for its user is
 * one index entry linked in the wheel: no timer, no handle, no memory
 * beyond that, and a restart resumes it from the stored next refresh time.
 *
 * Outcomes of a poll (section 3.5):
 *   tokens                -> active (outcome.c), device fields cleared
 *   authorization_pending -> nothing stored; polled again after interval
 *   slow_down             -> interval + 5 s, stored; polled again
 *   access_denied         -> needs_reauth, last_error access_denied
 *   expired_token (or the code's expires_in passed: nothing sent)
 *                         -> needs_reauth, last_error expired_token
 *   transient failures    -> stays pending, backoff (at least the
 *                            interval), last_error; a poll whose outcome
 *                            is unknown is one of these: polling again is
 *                            what the RFC has clients do
 *   other permanent ones  -> needs_reauth / error as for any grant
 * A failed device authorization request ends the flow at once (needs_reauth
 * for transient failures, error for configuration ones): nobody has seen a
 * user code, so retrying it in the background would help no one; the
 * caller puts the connection again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "service/device.h"
#include "service/op.h"
#include "service/outcome.h"
#include "service/schedule.h"

bool svc__device_step(const svc_op_t *op)
{
  const conn_t *c = &op->rec;
  if (c->grant != GRANT_DEVICE_CODE)
    return false;
  if (op->kind == SVC_OP_GRANT)
    return true;
  return op->kind == SVC_OP_REFRESH && c->status == CONN_PENDING && c->device_code != NULL &&
         c->device_code[0] != '\0';
}

static void clear_device(conn_t *c)
{
  free_secret(c->device_code);
  free(c->user_code);
  free(c->verification_uri);
  free(c->verification_uri_complete);
  c->device_code = c->user_code = c->verification_uri = c->verification_uri_complete = NULL;
  c->device_expires_at = 0;
  c->device_interval = 0;
}

/* code and msg may be c's own current values. */
static void set_error(conn_t *c, const char *code, const char *msg, int http, int64_t now)
{
  char *nc = xstrdup(code), *nm = xstrdup(msg);
  free(c->last_error_code);
  free(c->last_error_message);
  c->last_error_code = nc;
  c->last_error_message = nm;
  c->last_error_http = http;
  c->last_error_at = now;
}

static int64_t interval_ms(const conn_t *c)
{
  return (int64_t)(c->device_interval > 0 ? c->device_interval : DEVICE_DEFAULT_INTERVAL_S) * 1000;
}

/* The next poll: `at`, but never past the code's expiry (that poll ends
 * the flow without a request). */
static int64_t poll_at(const conn_t *c, int64_t at)
{
  return c->device_expires_at > 0 && at > c->device_expires_at ? c->device_expires_at : at;
}

/* The flow ended (tokens or a permanent failure): the code goes. */
static void commit(svc_t *svc, svc_op_t *op)
{
  op->entry->flags &= (uint8_t)~CONN_ENTRY_RESTART_OVERDUE;
  svc__op_commit(svc, op);
}

static void auth_done(svc_t *svc, svc_op_t *op, svc_tresult_t *r, int64_t now)
{
  conn_t *n = &op->next;
  if (r->tok.outcome == TOKEN_OK && !r->unknown) {
    conn_copy(n, &op->rec);
    clear_device(n);
    n->device_code = r->dev.device_code;
    n->user_code = r->dev.user_code;
    n->verification_uri = r->dev.verification_uri;
    n->verification_uri_complete = r->dev.verification_uri_complete;
    n->device_expires_at = r->dev.expires_at;
    n->device_interval = r->dev.interval;
    memset(&r->dev, 0, sizeof r->dev);
    n->status = CONN_PENDING;
    n->updated_at = now;
    n->next_refresh_at = poll_at(n, now + interval_ms(n));
    op->outcome = TOKEN_OK;
    commit(svc, op);
    return;
  }
  svc__next_record(svc, &op->rec, op->entry->prov, &r->tok, r->neterr, r->unknown, now, n);
  n->revision = op->rec.revision; /* a put's record: not yet stored */
  clear_device(n);
  n->next_refresh_at = 0;
  char m[384];
  snprintf(m, sizeof m,
           "the device authorization request failed (%s%s%s); put the connection again",
           n->last_error_code ? n->last_error_code : "error", n->last_error_message ? ": " : "",
           n->last_error_message ? n->last_error_message : "");
  set_error(n, n->last_error_code ? n->last_error_code : "device_authorization_failed", m,
            n->last_error_http, now);
  if (n->status != CONN_ERROR)
    n->status = CONN_NEEDS_REAUTH;
  op->outcome = n->status == CONN_ERROR ? TOKEN_CONFIG : TOKEN_REAUTH;
  commit(svc, op);
}

int svc__device_start(svc_t *svc, svc_op_t *op, oauth_request_t *req, int64_t now)
{
  const provider_t *p = &op->entry->prov->p;
  if (op->kind == SVC_OP_GRANT) {
    op->treq.device_auth = true;
    return grant_device_authorization_request(p, &op->rec, req);
  }
  if (op->rec.device_expires_at > 0 && now >= op->rec.device_expires_at) {
    svc_tresult_t r;
    memset(&r, 0, sizeof r);
    r.tok.outcome = TOKEN_REAUTH;
    r.tok.error = xstrdup("expired_token");
    r.tok.error_description = xstrdup("the device code expired before the user approved");
    op->device_poll = true;
    svc__device_done(svc, op, &r);
    token_result_free(&r.tok);
    return 1;
  }
  op->device_poll = true;
  return grant_device_code_request(p, &op->rec, req);
}

void svc__device_done(svc_t *svc, svc_op_t *op, svc_tresult_t *r)
{
  int64_t now = clock_now_ms();
  if (!op->device_poll) {
    auth_done(svc, op, r, now);
    return;
  }
  conn_entry_t *e = op->entry;
  conn_t *n = &op->next;
  const conn_t *old = &op->rec;
  device_poll_t kind = r->unknown ? DEVICE_POLL_OTHER : device_poll_classify(&r->tok);
  switch (kind) {
  case DEVICE_POLL_PENDING:
    if (old->failures == 0) {
      /* The usual answer: nothing changed, nothing is written. */
      int64_t at = poll_at(old, now + interval_ms(old));
      conn_t rec = op->rec;
      memset(&op->rec, 0, sizeof op->rec);
      svc__op_end(svc, op, 0, &rec, now);
      conn_free(&rec);
      svc__schedule(svc, e, at);
      return;
    }
    /* The provider answers again: clear the failures. */
    /* fall through */
  case DEVICE_POLL_SLOW_DOWN:
    conn_copy(n, old);
    n->revision = old->revision + 1;
    n->updated_at = now;
    n->failures = 0;
    free(n->last_error_code);
    free(n->last_error_message);
    n->last_error_code = n->last_error_message = NULL;
    n->last_error_http = 0;
    n->last_error_at = 0;
    if (kind == DEVICE_POLL_SLOW_DOWN) {
      int32_t iv = (int32_t)(interval_ms(old) / 1000) + DEVICE_SLOW_DOWN_S;
      n->device_interval = iv > DEVICE_MAX_INTERVAL_S ? DEVICE_MAX_INTERVAL_S : iv;
    }
    n->next_refresh_at = poll_at(n, now + interval_ms(n));
    op->outcome = TOKEN_TRANSIENT;
    commit(svc, op);
    return;
  default: break;
  }
  svc__next_record(svc, old, e->prov, &r->tok, r->neterr, r->unknown, now, n);
  if (kind == DEVICE_POLL_TOKENS) {
    clear_device(n);
    op->outcome = TOKEN_OK;
    log_info("device_flow_approved", "id", e->id);
  } else if (kind == DEVICE_POLL_DENIED || kind == DEVICE_POLL_EXPIRED) {
    char m[384];
    const char *d = r->tok.error_description;
    snprintf(m, sizeof m, "%s%s%s",
             kind == DEVICE_POLL_DENIED ? "the user denied the device authorization request"
                                        : "the device code expired before the user approved",
             d ? ": " : "", d ? d : "");
    set_error(n, kind == DEVICE_POLL_DENIED ? "access_denied" : "expired_token", m,
              r->tok.http_status, now);
    n->status = CONN_NEEDS_REAUTH;
    n->next_refresh_at = 0;
    clear_device(n);
    op->outcome = TOKEN_REAUTH;
  } else if (n->status == CONN_REFRESH_FAILING) {
    /* Transient: no token to serve, so the flow stays pending and polls
     * again after the backoff, never sooner than the interval. */
    n->status = CONN_PENDING;
    int64_t at = now + interval_ms(old);
    n->next_refresh_at = poll_at(old, n->next_refresh_at > at ? n->next_refresh_at : at);
    op->outcome = TOKEN_TRANSIENT;
  } else {
    clear_device(n);
    op->outcome = n->status == CONN_ERROR ? TOKEN_CONFIG : TOKEN_REAUTH;
  }
  commit(svc, op);
}
