/*
 * exchange.c - the token exchange grant (RFC 8693); see exchange.h.
 *
 * A token_exchange connection is renewed like a client_credentials one:
 * each renewal repeats the exchange. Its subject token is either its own
 * (given at put, sealed) or the current access token of another
 * connection, its source. The source's token is read from the store at
 * request time; when it is about to expire the source is refreshed first
 * through the normal single-flight path (a forced-refresh waiter on the
 * source's op, through svc->on_forced), and
 * the dependent op, which holds no token-request slot meanwhile, is
 * resubmitted when that refresh ends. The API refuses a source that itself
 * takes its subject from a connection, so waits never form a cycle.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "service/exchange.h"
#include "service/index.h"
#include "service/op.h"
#include "service/treq.h"
#include "store/store.h"

static bool serving(conn_status_t s)
{
  return s == CONN_ACTIVE || s == CONN_REFRESH_FAILING;
}

static void on_source(void *arg, int err, const conn_t *rec)
{
  (void)rec;
  svc_op_t *op = arg;
  svc_t *svc = op->svc;
  if (op->state == SVC_OP_ORPHANED) {
    svc__op_free(svc, op); /* deleted or replaced while it waited */
    return;
  }
  if (err == GRANTD_ESHUTDOWN || svc->closing || svc->draining) {
    svc__op_end(svc, op, GRANTD_ESHUTDOWN, NULL, clock_now_ms());
    return;
  }
  /* Whatever the source's refresh gave: the exchange looks again (and
   * now takes any still-valid token). */
  op->exchange_waited = true;
  svc__treq_submit(svc, &op->treq);
}

int svc__exchange_start(svc_t *svc, svc_op_t *op, oauth_request_t *req, int64_t now)
{
  const conn_t *c = &op->rec;
  const provider_t *p = &op->entry->prov->p;
  if (c->subject_connection == NULL)
    return grant_token_exchange_request(p, c, c->subject_token, req);
  conn_entry_t *src = svc__entry_find(svc, c->subject_connection);
  conn_t s;
  if (src == NULL || store_conn_get(svc->store, c->subject_connection, &s) != 0)
    return SVC_EXCHANGE_NO_SOURCE;
  int rc;
  bool valid = s.access_token && s.access_token[0] && (s.expires_at == 0 || s.expires_at > now);
  bool fresh = valid && (s.expires_at == 0 || s.expires_at - now > SVC_EXCHANGE_MIN_TTL_MS);
  if (serving(s.status) && (fresh || (valid && op->exchange_waited))) {
    rc = grant_token_exchange_request(p, c, s.access_token, req);
  } else if (!serving(s.status)) {
    rc = SVC_EXCHANGE_NO_SOURCE;
  } else if (op->exchange_waited) {
    rc = SVC_EXCHANGE_SOURCE_DOWN; /* refreshed, and still no token */
  } else {
    log_debug("exchange_source_refresh", "id", op->entry->id, "source", src->id);
    /* refresh.c through the hook (it calls this file): a forced refresh
     * of the source, joined when one runs. */
    svc->on_forced(svc, src, on_source, op);
    rc = SVC_EXCHANGE_WAIT;
  }
  conn_free(&s);
  return rc;
}

void svc__exchange_source_gone(svc_t *svc, const char *id)
{
  int64_t now = clock_now_ms();
  for (size_t b = 0; b < svc->nbuckets; b++) {
    for (conn_entry_t *e = svc->buckets[b]; e; e = e->hnext) {
      if (e->grant != GRANT_TOKEN_EXCHANGE || e->op != NULL || e->status == CONN_NEEDS_REAUTH)
        continue;
      conn_t c;
      if (store_conn_get(svc->store, e->id, &c) != 0)
        continue;
      if (c.subject_connection == NULL || strcmp(c.subject_connection, id) != 0) {
        conn_free(&c);
        continue;
      }
      c.status = CONN_NEEDS_REAUTH;
      free(c.last_error_code);
      free(c.last_error_message);
      c.last_error_code = xstrdup("subject_connection_deleted");
      c.last_error_message = xstrdup("the connection this one exchanges the token of was deleted");
      c.last_error_http = 0;
      c.last_error_at = now;
      c.next_refresh_at = 0;
      c.revision++;
      c.updated_at = now;
      conn_t *rec = xmalloc(sizeof *rec);
      *rec = c;
      log_info("exchange_source_gone", "id", e->id, "source", id);
      if (svc__conn_commit(svc, rec, NULL, NULL) != 0)
        log_warn("exchange_source_gone_unsaved", "id", e->id);
      free(rec);
    }
  }
}
