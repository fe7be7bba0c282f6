/*
 * op.c - ops, the single-flight unit per connection: at most one svc_op_t
 * runs per index entry (entry->op). An op is a refresh (a token request,
 * then a commit), the grant of a client_credentials/password put, or a
 * plain commit (put, connect-flow result). Token reads, forced refreshes
 * and put callbacks are waiters on the op.
 *
 * State. op->state is the op's one state (ctx.h draws the machine); it
 * moves only through svc__op_set, which refuses a move the table below
 * does not allow.
 *
 * Waiters. When an op ends (committed, abandoned without a commit, or
 * replaced/deleted), one function, waiter_fate(), decides for each waiter
 * what it receives: an answer (error + record), a move to the op that
 * replaces this one, or a new forced refresh. They are answered after the
 * store commit completed, so a rotated refresh token is durable before any
 * reader sees the new access token and before it is used again.
 *
 * Detach. A new put / commit / delete "detaches" the running op: it
 * becomes ORPHANED (op->entry = NULL), its result is dropped (never
 * committed, or if its commit was already queued, committed but not
 * applied to the entry), and its waiters move to the new op (or are
 * answered).
 *
 * Commit retries of rotated refresh tokens. When a refresh succeeded and
 * the provider rotated the refresh token, the old token is dead at the
 * provider and op->next holds the only copy of the new one. If its commit
 * fails, dropping op->next would lose the grant, so the op stays the
 * entry's running op (RETRY_WAIT: nothing else refreshes with the dead
 * token meanwhile) and its commit is retried after a backoff. Readers are
 * never answered from the uncommitted record: a token read is served from
 * the stored record while that qualifies, and otherwise waits for the
 * retried commit. svc_close makes every waiting retry run at once, as the
 * last attempt.
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
#include "service/answer.h"
#include "service/index.h"
#include "service/lifecycle.h"
#include "service/op.h"
#include "service/schedule.h"
#include "service/treq.h"
#include "store/store.h"

/* ---- the state machine ----------------------------------------------------- */

static const char *const state_names[] = {
  "new", "queued", "sending", "committing", "retry_wait", "orphaned",
};

/* allowed[from] has bit `to` set when from -> to is a valid move */
#define B(s) (1u << (s))
static const unsigned allowed[] = {
  [SVC_OP_NEW] = B(SVC_OP_QUEUED) | B(SVC_OP_SENDING) | B(SVC_OP_COMMITTING),
  [SVC_OP_QUEUED] = B(SVC_OP_SENDING) | B(SVC_OP_ORPHANED),
  [SVC_OP_SENDING] = B(SVC_OP_COMMITTING) | B(SVC_OP_ORPHANED),
  [SVC_OP_COMMITTING] = B(SVC_OP_RETRY_WAIT) | B(SVC_OP_ORPHANED),
  [SVC_OP_RETRY_WAIT] = B(SVC_OP_COMMITTING),
  [SVC_OP_ORPHANED] = 0,
};
#undef B

void svc__op_set(svc_op_t *op, svc_op_state_t to)
{
  if (!(allowed[op->state] & (1u << to))) {
    /* A bug in the service, not an input error: stop before an op in an
     * impossible state commits or answers something wrong. */
    fprintf(stderr, "grantd: op state %s -> %s is not a valid move\n", state_names[op->state],
            state_names[to]);
    abort();
  }
  op->state = to;
}

/* ---- waiters ------------------------------------------------------------------ */

/* How an op ended, for waiter_fate. */
typedef enum {
  END_COMMITTED, /* its commit completed with `err` (store status); rec is
                    the committed record (err 0) or the one still stored
                    (a failed refresh commit), else NULL */
  END_ABANDONED, /* ended without a commit: err says why (0: nothing was
                    needed); rec is the stored record or NULL */
  END_REPLACED,  /* detached: `to` takes over, or (to NULL) the connection
                    was deleted and waiters get err */
} end_how_t;

typedef struct {
  end_how_t how;
  int err;
  const conn_t *rec;
  svc_op_t *to;
  int64_t now;
} op_end_t;

typedef enum {
  FATE_ANSWER,  /* answer (*err, *rec) */
  FATE_MOVE,    /* move the waiter to end->to */
  FATE_REFRESH, /* start a forced refresh of *again for it */
} fate_t;

/* The error a forced refresh reports for a refresh outcome. */
static int forced_err(token_outcome_t o)
{
  switch (o) {
  case TOKEN_OK: return 0;
  case TOKEN_REAUTH: return GRANTD_EREAUTH;
  case TOKEN_CONFIG: return GRANTD_EPROVIDER_CONFIG;
  default: return GRANTD_EUPSTREAM;
  }
}

/* What waiter w of op receives now that the op ended as `end`. The one
 * place that decides it. */
static fate_t waiter_fate(svc_t *svc, const svc_op_t *op, const op_end_t *end,
                          const svc_waiter_t *w, int *err, const conn_t **rec, conn_entry_t **again)
{
  *rec = end->rec;
  switch (end->how) {
  case END_REPLACED:
    /* Token reads and forced refreshes want the connection, whatever op
     * runs it; a put's callback wanted its record stored, and it was
     * superseded before it was. */
    if (end->to && w->kind != SVC_WAIT_RECORD)
      return FATE_MOVE;
    *err = end->to ? GRANTD_ECONFLICT : end->err;
    *rec = NULL;
    return FATE_ANSWER;

  case END_ABANDONED:
    *err = end->err;
    if (end->rec && w->kind == SVC_WAIT_TOKEN) {
      /* A still-valid stored token is served even when the refresh could
       * not run (shutdown). */
      int v = svc__token_verdict(end->rec, end->now);
      if (*err == 0 || v == 0)
        *err = v;
    } else if (*err == 0 && end->rec) {
      *err = w->kind == SVC_WAIT_FORCED ? GRANTD_EREAUTH : 0;
    }
    return FATE_ANSWER;

  case END_COMMITTED: break;
  }
  int status = end->err;
  switch (w->kind) {
  case SVC_WAIT_TOKEN:
    *err = end->rec ? svc__token_verdict(end->rec, end->now) : status;
    return FATE_ANSWER;
  case SVC_WAIT_FORCED:
    if (op->kind == SVC_OP_COMMIT && status == 0) {
      /* A forced refresh that arrived while a put was being stored: it
       * asked for a refresh of the connection as it is now. */
      conn_entry_t *cur = svc__entry_find(svc, op->next.id);
      if (cur && !svc->closing && svc__schedulable(cur->status, cur->grant)) {
        *again = cur;
        return FATE_REFRESH;
      }
      *err = cur ? svc__token_verdict(end->rec, end->now) : GRANTD_ENOT_FOUND;
    } else {
      *err = status != 0 ? status : forced_err(op->outcome);
    }
    return FATE_ANSWER;
  case SVC_WAIT_RECORD:
    *err = status;
    if (status != 0)
      *rec = NULL;
    return FATE_ANSWER;
  }
  return FATE_ANSWER;
}

/* Hands every waiter of op its fate, in order; op keeps none. */
static void settle_waiters(svc_t *svc, svc_op_t *op, const op_end_t *end)
{
  svc_waiter_t *w = op->waiters;
  op->waiters = NULL;
  op->wtail = &op->waiters;
  while (w) {
    svc_waiter_t *next = w->next;
    int err = 0;
    const conn_t *rec = NULL;
    conn_entry_t *again = NULL;
    switch (waiter_fate(svc, op, end, w, &err, &rec, &again)) {
    case FATE_MOVE:
      w->next = NULL;
      *end->to->wtail = w;
      end->to->wtail = &w->next;
      w = next;
      continue;
    case FATE_REFRESH: svc->on_forced(svc, again, w->cb, w->arg); break;
    case FATE_ANSWER: svc__answer(svc, w->cb, w->arg, err, rec); break;
    }
    free(w);
    w = next;
  }
}

void svc__op_wait(svc_op_t *op, svc_wait_kind_t kind, svc_conn_cb cb, void *arg)
{
  if (cb == NULL)
    return;
  svc_waiter_t *w = xmalloc(sizeof *w);
  w->next = NULL;
  w->cb = cb;
  w->arg = arg;
  w->kind = kind;
  *op->wtail = w;
  op->wtail = &w->next;
}

/* ---- life of an op ------------------------------------------------------------ */

/* Freed ops kept for reuse, at most: an op is 1 KiB, past glibc's
 * per-thread cache, and one is made and freed per refresh. */
#define OP_SPARE_MAX 256

svc_op_t *svc__op_new(svc_t *svc, svc_op_kind_t kind)
{
  svc_op_t *op = svc->op_spare;
  if (op != NULL) {
    svc->op_spare = op->spare_next;
    svc->nop_spare--;
    memset(op, 0, sizeof *op);
  } else {
    op = xcalloc(1, sizeof *op);
  }
  op->svc = svc;
  op->kind = kind;
  op->state = SVC_OP_NEW;
  op->wtail = &op->waiters;
  svc->ops++;
  return op;
}

void svc__op_free(svc_t *svc, svc_op_t *op)
{
  conn_free(&op->rec);
  conn_free(&op->next);
  if (svc->nop_spare < OP_SPARE_MAX && !svc->closing) {
    op->spare_next = svc->op_spare;
    svc->op_spare = op;
    svc->nop_spare++;
  } else {
    free(op);
  }
  svc->ops--;
  svc__maybe_closed(svc);
}

void svc__op_spares_free(svc_t *svc)
{
  while (svc->op_spare != NULL) {
    svc_op_t *op = svc->op_spare;
    svc->op_spare = op->spare_next;
    free(op);
  }
  svc->nop_spare = 0;
}

void svc__op_end(svc_t *svc, svc_op_t *op, int err, const conn_t *rec, int64_t now)
{
  if (op->entry)
    op->entry->op = NULL;
  op_end_t end = {.how = END_ABANDONED, .err = err, .rec = rec, .now = now};
  settle_waiters(svc, op, &end);
  svc__op_free(svc, op);
}

static void retry_cancel(svc_op_t *op);

/* Detaches a running op from its entry (see the top of this file). The
 * waiters of an op whose commit is already queued stay with it (they get
 * the record it commits). A queued op is withdrawn and freed here; one
 * with a request in flight is freed when the response comes. */
static void op_detach(svc_t *svc, svc_op_t *op, svc_op_t *to, int err)
{
  conn_entry_t *e = op->entry;
  if (e)
    e->op = NULL;
  op->entry = NULL;
  if (op->state != SVC_OP_COMMITTING) {
    op_end_t end = {.how = END_REPLACED, .err = err, .to = to, .now = clock_now_ms()};
    settle_waiters(svc, op, &end);
  }
  switch (op->state) {
  case SVC_OP_RETRY_WAIT:
    /* Replaced or deleted while its commit waited for a retry: the rotated
     * refresh token must not overwrite what replaced it. */
    retry_cancel(op);
    log_error("rotated_token_unsaved", "id", op->next.id, "reason",
              "connection replaced or deleted", "#attempts", LOG_I64(op->commit_attempts));
    metrics_counter_inc("grantd_rotated_token_unsaved_total", NULL);
    svc__op_free(svc, op);
    return;
  case SVC_OP_QUEUED:
    if (svc__treq_cancel(&op->treq)) {
      svc__op_free(svc, op);
      return;
    }
    break;
  default: break;
  }
  svc__op_set(op, SVC_OP_ORPHANED);
}

void svc__op_detach(svc_t *svc, conn_entry_t *e, int err)
{
  if (e->op)
    op_detach(svc, e->op, NULL, err);
}

void svc__op_attach(svc_t *svc, conn_entry_t *e, svc_op_t *op)
{
  if (e->op)
    op_detach(svc, e->op, op, GRANTD_ECONFLICT);
  wheel_unlink(&e->wheel);
  /* A record given by a caller (put, connect flow) brings its own tokens:
   * a later invalid_grant is not about a rotation lost in a restart. */
  if (op->kind != SVC_OP_REFRESH)
    e->flags &= (uint8_t)~CONN_ENTRY_RESTART_OVERDUE;
  e->op = op;
  op->entry = e;
}

/* ---- commit retries ------------------------------------------------------------ */

typedef struct {
  uv_timer_t h;
  svc_op_t *op;
} retry_timer_t;

static void on_retry_closed(uv_handle_t *h)
{
  free(h->data);
}

/* Stops the op's retry timer and takes it off svc->retry_ops. */
static void retry_cancel(svc_op_t *op)
{
  retry_timer_t *rt = op->retry_timer;
  op->retry_timer = NULL;
  *op->rprev = op->rnext;
  if (op->rnext)
    op->rnext->rprev = op->rprev;
  op->rnext = NULL;
  op->rprev = NULL;
  uv_timer_stop(&rt->h);
  uv_close((uv_handle_t *)&rt->h, on_retry_closed);
}

static void on_retry(uv_timer_t *h)
{
  retry_timer_t *rt = h->data;
  svc_op_t *op = rt->op;
  retry_cancel(op);
  svc__op_commit(op->svc, op); /* still attached: a detach cancels the retry */
}

static void retry_later(svc_t *svc, svc_op_t *op, int64_t now)
{
  retry_timer_t *rt = xcalloc(1, sizeof *rt);
  rt->op = op;
  uv_timer_init(svc->loop, &rt->h);
  rt->h.data = rt;
  op->retry_timer = rt;
  svc__op_set(op, SVC_OP_RETRY_WAIT);
  op->rnext = svc->retry_ops;
  if (op->rnext)
    op->rnext->rprev = &op->rnext;
  op->rprev = &svc->retry_ops;
  svc->retry_ops = op;
  int64_t at = policy_backoff(op->commit_attempts, 0, 0, now, rand_fast_u64(&svc->rnd));
  uint64_t delay = at > now ? (uint64_t)(at - now) : 0;
  log_warn("commit_retry", "id", op->next.id, "reason", "rotated refresh token not stored yet",
           "#attempt", LOG_I64(op->commit_attempts), "#in_ms", LOG_I64((int64_t)delay));
  uv_timer_start(&rt->h, on_retry, delay, 0);
}

void svc__commit_retry_now_all(svc_t *svc)
{
  for (svc_op_t *op = svc->retry_ops; op; op = op->rnext)
    uv_timer_start(&((retry_timer_t *)op->retry_timer)->h, on_retry, 0, 0);
}

/* ---- commits --------------------------------------------------------------------- */

/* A refresh whose provider sent a refresh token different from the one
 * presented (the old one is now dead there). */
static bool rotated(const svc_op_t *op)
{
  const char *o = op->rec.refresh_token, *n = op->next.refresh_token;
  if (op->kind != SVC_OP_REFRESH || op->outcome != TOKEN_OK || n == NULL || n[0] == '\0')
    return false;
  return o == NULL || strcmp(o, n) != 0;
}

/* A failed commit of a refresh: the old record is still the stored one.
 * Returns true when the op stays attached for a retry. */
static bool refresh_commit_failed(svc_t *svc, svc_op_t *op, int status, int64_t now)
{
  conn_entry_t *e = op->entry;
  if (e && rotated(op) && !svc->closing) {
    e->op = op; /* keeps the dead refresh token from being used */
    retry_later(svc, op, now);
    return true;
  }
  if (rotated(op)) {
    log_error("rotated_token_unsaved", "id", op->next.id, "error", err_name(status), "#attempts",
              LOG_I64(op->commit_attempts));
    metrics_counter_inc("grantd_rotated_token_unsaved_total", NULL);
  }
  if (e) {
    uint32_t f = e->failures + 1;
    svc__schedule(svc, e, policy_backoff(f, 0, e->expires_at, now, rand_fast_u64(&svc->rnd)));
  }
  return false;
}

/* Store callback of an op's commit: apply to the entry, reschedule, settle
 * every waiter, free the op (or keep it for a commit retry). */
static void on_committed(void *arg, int status)
{
  svc_op_t *op = arg;
  svc_t *svc = op->svc;
  conn_entry_t *e = op->entry;
  int64_t now = clock_now_ms();
  const conn_t *rec = NULL;
  bool keep = false;

  if (e)
    e->op = NULL;
  if (status == 0) {
    rec = &op->next;
    if (op->commit_attempts > 0)
      log_info("rotated_token_saved", "id", op->next.id, "#attempts",
               LOG_I64(op->commit_attempts + 1));
    if (e) {
      svc__entry_apply(svc, e, rec);
      svc__schedule(svc, e, rec->next_refresh_at);
    }
  } else {
    log_error("commit_failed", "id", op->next.id, "error", err_name(status));
    metrics_counter_inc("grantd_refreshes_total", "outcome=\"commit_failed\"");
    op->commit_attempts++;
    if (op->kind == SVC_OP_REFRESH) {
      rec = &op->rec; /* still the stored one: keep serving it */
      keep = refresh_commit_failed(svc, op, status, now);
    } else if (e) {
      svc__entry_resync(svc, e->id);
    }
  }

  if (op->done_cb)
    op->done_cb(op->done_arg, status, rec);
  op_end_t end = {.how = END_COMMITTED, .err = status, .rec = rec, .now = now};
  settle_waiters(svc, op, &end);
  if (!keep)
    svc__op_free(svc, op);
}

int (*svc__conn_put)(store_t *s, const conn_t *c, const conn_t *prev, store_cb cb,
                     void *arg) = store_conn_replace;

void svc__op_commit(svc_t *svc, svc_op_t *op)
{
  svc__op_set(op, SVC_OP_COMMITTING);
  /* A refresh's op->rec is the stored record it started from, and nothing
   * else wrote the connection since (any other write detaches this op):
   * the store need not read it again to keep the tenant index in step. A
   * grant's op->rec is the put's record, not yet stored. */
  const conn_t *prev = op->kind == SVC_OP_REFRESH && op->rec.id ? &op->rec : NULL;
  int rc = svc__conn_put(svc->store, &op->next, prev, on_committed, op);
  if (rc != 0)
    on_committed(op, rc);
}

int svc__conn_commit(svc_t *svc, conn_t *rec, svc_conn_cb cb, void *arg)
{
  if (svc->closing) {
    conn_free(rec);
    return GRANTD_ESHUTDOWN;
  }
  svc_op_t *op = svc__op_new(svc, SVC_OP_COMMIT);
  op->next = *rec;
  memset(rec, 0, sizeof *rec);
  svc__op_set(op, SVC_OP_COMMITTING);
  int rc = store_conn_put(svc->store, &op->next, on_committed, op);
  if (rc != 0) {
    svc__op_free(svc, op);
    return rc;
  }
  conn_entry_t *e = svc__entry_find(svc, op->next.id);
  if (e)
    svc__entry_apply(svc, e, &op->next);
  else
    e = svc__entry_add(svc, &op->next);
  svc__op_attach(svc, e, op);
  svc__op_wait(op, SVC_WAIT_RECORD, cb, arg);
  return 0;
}
