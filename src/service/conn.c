/*
 * conn.c - the connection index and life cycle: the hash table of compact
 * entries, status bookkeeping (counts, status_change logs and counters),
 * ops as the single-flight unit per connection, their commits and waiters,
 * and the deferred-answer queue.
 *
 * Memory. An idle connection costs one malloc'd conn_entry_t (88 bytes of
 * fields + the id + malloc's 8-16 bytes) and one bucket pointer (the table
 * doubles at load factor 1, so 8-16 bytes per entry): ~130-200 bytes with
 * typical ids, well inside the 512-byte budget. Nothing else is kept per
 * connection; tokens stay sealed in the store until a read or refresh.
 *
 * Answers. Callbacks of the public API never run from inside the call that
 * took them: they go through one queue drained by a uv_idle handle (started
 * only while the queue is non-empty, so an idle service does not spin). One
 * handle for all answers costs a list append per answer instead of a timer
 * or async handle per request.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "base/rand.h"
#include "service/svc_int.h"
#include "store/store.h"

/* ---- hashing ------------------------------------------------------------ */

static uint32_t hash_id(const svc_t *svc, const char *id)
{
  /* FNV-1a with a random per-process seed, then a murmur3 finaliser for
   * good low bits (buckets are a power of two). */
  uint64_t h = 0xcbf29ce484222325ULL ^ svc->hseed;
  for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
    h ^= *p;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return (uint32_t)h;
}

static void table_grow(svc_t *svc)
{
  size_t n = svc->nbuckets ? svc->nbuckets * 2 : 1024;
  conn_entry_t **b = xcalloc(n, sizeof *b);
  for (size_t i = 0; i < svc->nbuckets; i++) {
    conn_entry_t *e = svc->buckets[i];
    while (e) {
      conn_entry_t *next = e->hnext;
      size_t k = e->hash & (n - 1);
      e->hnext = b[k];
      b[k] = e;
      e = next;
    }
  }
  free(svc->buckets);
  svc->buckets = b;
  svc->nbuckets = n;
}

conn_entry_t *svc__entry_find(svc_t *svc, const char *id)
{
  if (svc->nbuckets == 0 || id == NULL)
    return NULL;
  uint32_t h = hash_id(svc, id);
  for (conn_entry_t *e = svc->buckets[h & (svc->nbuckets - 1)]; e; e = e->hnext)
    if (e->hash == h && strcmp(e->id, id) == 0)
      return e;
  return NULL;
}

static bool schedulable(int status)
{
  return status == CONN_ACTIVE || status == CONN_REFRESH_FAILING;
}

conn_entry_t *svc__entry_add_raw(svc_t *svc, const char *id, size_t idlen, const char *prov,
                                 size_t provlen, conn_status_t status, grant_t grant,
                                 int64_t expires_at, uint32_t failures)
{
  conn_entry_t *e = xmalloc(offsetof(conn_entry_t, id) + idlen + 1);
  memset(e, 0, offsetof(conn_entry_t, id));
  memcpy(e->id, id, idlen);
  e->id[idlen] = '\0';
  wheel_entry_init(&e->wheel);
  e->hash = hash_id(svc, e->id);
  e->prov = svc__prov_get_n(svc, prov, provlen);
  e->prov->uses++;
  e->status = (uint8_t)status;
  e->grant = (uint8_t)grant;
  e->expires_at = expires_at;
  e->failures = failures;
  if (svc->count + 1 > svc->nbuckets)
    table_grow(svc);
  size_t k = e->hash & (svc->nbuckets - 1);
  e->hnext = svc->buckets[k];
  svc->buckets[k] = e;
  svc->count++;
  svc->by_status[e->status]++;
  return e;
}

conn_entry_t *svc__entry_add(svc_t *svc, const conn_t *c)
{
  const char *p = c->provider ? c->provider : "";
  return svc__entry_add_raw(svc, c->id, strlen(c->id), p, strlen(p), c->status, c->grant,
                            c->expires_at, c->failures);
}

void svc__entry_apply(svc_t *svc, conn_entry_t *e, const conn_t *c)
{
  if (e->status != (uint8_t)c->status) {
    const char *from = conn_status_name((conn_status_t)e->status);
    const char *to = conn_status_name(c->status);
    svc->by_status[e->status]--;
    svc->by_status[c->status]++;
    log_info("status_change", "id", e->id, "from", from, "to", to, "reason",
             c->last_error_code);
    char labels[96];
    snprintf(labels, sizeof labels, "from=\"%s\",to=\"%s\"", from, to);
    metrics_counter_inc("grantd_status_changes_total", labels);
    e->status = (uint8_t)c->status;
  }
  const char *pname = c->provider ? c->provider : "";
  if (strcmp(e->prov->p.name, pname) != 0) {
    e->prov->uses--;
    e->prov = svc__prov_get(svc, pname);
    e->prov->uses++;
  }
  e->grant = (uint8_t)c->grant;
  e->expires_at = c->expires_at;
  e->failures = c->failures;
}

void svc__schedule(svc_t *svc, conn_entry_t *e, int64_t at)
{
  e->next_refresh_at = at;
  if (at <= 0 || !schedulable(e->status)) {
    wheel_unlink(&e->wheel);
    return;
  }
  wheel_link(&svc->wheel, &e->wheel, (uint64_t)at);
  if ((uint64_t)at < svc->armed_at && !svc->throttled && !svc->closing)
    svc__arm(svc);
}

/* Detaches a running op from its entry. Waiters of an op whose commit is
 * already queued stay with it (they get the record it commits). Otherwise
 * token and forced waiters move to `to` (or are answered `err` when there
 * is none), and record waiters (an earlier put's callback) are answered
 * GRANTD_ECONFLICT or `err`: that put was superseded before it was stored.
 * A queued op is withdrawn and freed here; one with a request in flight is
 * freed when the response comes (and its result dropped). */
static void retry_cancel(svc_op_t *op);

static void op_detach(svc_t *svc, svc_op_t *op, svc_op_t *to, int err)
{
  conn_entry_t *e = op->entry;
  if (e)
    e->op = NULL;
  op->entry = NULL;
  bool retrying = op->commit_retry;
  if (op->phase != SVC_PHASE_COMMIT || retrying) {
    svc_waiter_t *w = op->waiters;
    op->waiters = NULL;
    op->wtail = &op->waiters;
    while (w) {
      svc_waiter_t *next = w->next;
      if (to && w->kind != SVC_WAIT_RECORD) {
        w->next = NULL;
        *to->wtail = w;
        to->wtail = &w->next;
      } else {
        int code = to ? GRANTD_ECONFLICT : err;
        svc__answer(svc, w->cb, w->arg, code, NULL);
        free(w);
      }
      w = next;
    }
  }
  if (retrying) {
    /* Replaced or deleted while its commit waited for a retry: the rotated
     * refresh token must not overwrite what replaced it. */
    retry_cancel(op);
    log_error("rotated_token_unsaved", "id", op->next.id, "reason", "connection replaced or deleted",
              "#attempts", LOG_I64(op->commit_attempts));
    metrics_counter_inc("grantd_rotated_token_unsaved_total", NULL);
    svc__op_free(svc, op);
    return;
  }
  if (op->phase == SVC_PHASE_QUEUED && svc__treq_cancel(&op->treq))
    svc__op_free(svc, op);
}

void svc__entry_remove(svc_t *svc, conn_entry_t *e, int err)
{
  wheel_unlink(&e->wheel);
  if (e->op)
    op_detach(svc, e->op, NULL, err);
  size_t k = e->hash & (svc->nbuckets - 1);
  conn_entry_t **pp = &svc->buckets[k];
  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
  e->prov->uses--;
  svc->by_status[e->status]--;
  svc->count--;
  free(e);
}

void svc__entry_resync(svc_t *svc, const char *id)
{
  conn_t c;
  conn_entry_t *e = svc__entry_find(svc, id);
  int rc = store_conn_get(svc->store, id, &c);
  if (rc == GRANTD_ENOT_FOUND) {
    if (e && e->op == NULL)
      svc__entry_remove(svc, e, GRANTD_ENOT_FOUND);
    return;
  }
  if (rc != 0) {
    /* Undecodable: keep whatever the entry says, unscheduled. */
    if (e)
      wheel_unlink(&e->wheel);
    return;
  }
  if (e == NULL)
    e = svc__entry_add(svc, &c);
  else
    svc__entry_apply(svc, e, &c);
  if (e->op == NULL)
    svc__schedule(svc, e, c.next_refresh_at);
  conn_free(&c);
}

/* ---- deferred answers --------------------------------------------------- */

struct svc_answer {
  svc_answer_t *next;
  svc_conn_cb cb;
  void *arg;
  int err;
  bool has_rec;
  conn_t rec;
};

static void on_idle(uv_idle_t *h)
{
  svc_t *svc = h->data;
  svc_answer_t *a = svc->ans_head;
  svc->ans_head = NULL;
  svc->ans_tail = &svc->ans_head;
  /* Answers queued by these callbacks run at the next iteration. */
  while (a) {
    svc_answer_t *next = a->next;
    a->cb(a->arg, a->err, a->has_rec ? &a->rec : NULL);
    if (a->has_rec)
      conn_free(&a->rec);
    free(a);
    a = next;
  }
  if (svc->ans_head == NULL) {
    uv_idle_stop(&svc->idle);
    svc__maybe_closed(svc);
  }
}

static svc_answer_t *answer_new(svc_t *svc, svc_conn_cb cb, void *arg, int err)
{
  svc_answer_t *a = xcalloc(1, sizeof *a);
  a->cb = cb;
  a->arg = arg;
  a->err = err;
  if (svc->ans_head == NULL)
    uv_idle_start(&svc->idle, on_idle);
  *svc->ans_tail = a;
  svc->ans_tail = &a->next;
  return a;
}

void svc__answer(svc_t *svc, svc_conn_cb cb, void *arg, int err, const conn_t *c)
{
  if (cb == NULL)
    return;
  svc_answer_t *a = answer_new(svc, cb, arg, err);
  if (c) {
    conn_copy(&a->rec, c);
    a->has_rec = true;
  }
}

void svc__answer_move(svc_t *svc, svc_conn_cb cb, void *arg, int err, conn_t *c)
{
  if (cb == NULL) {
    if (c)
      conn_free(c);
    return;
  }
  svc_answer_t *a = answer_new(svc, cb, arg, err);
  if (c) {
    a->rec = *c;
    memset(c, 0, sizeof *c);
    a->has_rec = true;
  }
}

int svc__token_verdict(const conn_t *c, int64_t now)
{
  switch (c->status) {
  case CONN_NEEDS_REAUTH:
  case CONN_REVOKED:
    return GRANTD_EREAUTH;
  case CONN_ERROR:
    return GRANTD_EPROVIDER_CONFIG;
  case CONN_PENDING:
    return GRANTD_ECONFLICT;
  default:
    break;
  }
  if (c->access_token == NULL || c->access_token[0] == '\0')
    return GRANTD_EUPSTREAM;
  if (c->expires_at != 0 && c->expires_at <= now)
    return GRANTD_EUPSTREAM;
  return 0;
}

/* ---- ops ------------------------------------------------------------------ */

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

void svc__op_free(svc_t *svc, svc_op_t *op)
{
  conn_free(&op->rec);
  conn_free(&op->next);
  free(op);
  svc->ops--;
  svc__maybe_closed(svc);
}

static int forced_err(token_outcome_t o)
{
  switch (o) {
  case TOKEN_OK:
    return 0;
  case TOKEN_REAUTH:
    return GRANTD_EREAUTH;
  case TOKEN_CONFIG:
    return GRANTD_EPROVIDER_CONFIG;
  default:
    return GRANTD_EUPSTREAM;
  }
}

/* ---- commit retries of rotated refresh tokens ----------------------------
 *
 * When a refresh succeeded and the provider rotated the refresh token, the
 * old token is dead at the provider and op->next holds the only copy of the
 * new one. If its commit fails, dropping op->next would lose the grant, so
 * the op stays the entry's running op (nothing else refreshes with the dead
 * token meanwhile) and its commit is retried after a backoff. Readers are
 * never answered from the uncommitted record: a token read is served from
 * the stored record while that qualifies, and otherwise waits for the
 * retried commit. svc_close makes every waiting retry run at once, as the
 * last attempt. */

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
  op->commit_retry = false;
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
  op->commit_retry = true;
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

/* A refresh whose provider sent a refresh token different from the one
 * presented (the old one is now dead there). */
static bool rotated(const svc_op_t *op)
{
  const char *o = op->rec.refresh_token, *n = op->next.refresh_token;
  if (op->kind != SVC_OP_REFRESH || op->outcome != TOKEN_OK || n == NULL || n[0] == '\0')
    return false;
  return o == NULL || strcmp(o, n) != 0;
}

/* Store callback of an op's commit: apply to the entry, reschedule, answer
 * every waiter in order, free the op (or keep it for a commit retry). */
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
    if (op->kind == SVC_OP_REFRESH && !op->have_rec) {
      /* The old record is still the stored one: keep serving it. */
      rec = &op->rec;
      if (e && rotated(op) && !svc->closing) {
        e->op = op; /* keeps the dead refresh token from being used */
        keep = true;
        retry_later(svc, op, now);
      } else {
        if (rotated(op)) {
          log_error("rotated_token_unsaved", "id", op->next.id, "error", err_name(status),
                    "#attempts", LOG_I64(op->commit_attempts));
          metrics_counter_inc("grantd_rotated_token_unsaved_total", NULL);
        }
        if (e) {
          uint32_t f = e->failures + 1;
          svc__schedule(svc, e, policy_backoff(f, 0, e->expires_at, now,
                                               rand_fast_u64(&svc->rnd)));
        }
      }
    } else if (e) {
      svc__entry_resync(svc, e->id);
    }
  }

  if (op->done_cb)
    op->done_cb(op->done_arg, status, rec);

  svc_waiter_t *w = op->waiters;
  op->waiters = NULL;
  while (w) {
    svc_waiter_t *next = w->next;
    switch (w->kind) {
    case SVC_WAIT_TOKEN:
      if (rec)
        svc__answer(svc, w->cb, w->arg, svc__token_verdict(rec, now), rec);
      else
        svc__answer(svc, w->cb, w->arg, status, NULL);
      break;
    case SVC_WAIT_FORCED:
      if (op->kind == SVC_OP_COMMIT && status == 0) {
        /* A forced refresh that arrived while a put was being stored: it
         * asked for a refresh of the connection as it is now. */
        conn_entry_t *cur = svc__entry_find(svc, op->next.id);
        if (cur && !svc->closing && schedulable(cur->status))
          svc__refresh(svc, cur, true, SVC_WAIT_FORCED, w->cb, w->arg);
        else
          svc__answer(svc, w->cb, w->arg, cur ? svc__token_verdict(rec, now) : GRANTD_ENOT_FOUND,
                      rec);
      } else if (status != 0) {
        svc__answer(svc, w->cb, w->arg, status, rec);
      } else {
        svc__answer(svc, w->cb, w->arg, forced_err(op->outcome), rec);
      }
      break;
    case SVC_WAIT_RECORD:
      svc__answer(svc, w->cb, w->arg, status, status == 0 ? rec : NULL);
      break;
    }
    free(w);
    w = next;
  }
  op->wtail = &op->waiters;
  if (!keep)
    svc__op_free(svc, op);
}

int (*svc__conn_put)(store_t *s, const conn_t *c, store_cb cb, void *arg) = store_conn_put;

/* Queues op->next for commit; on a synchronous store error completes the
 * op as a failed commit (answers still deferred). */
void svc__op_commit(svc_t *svc, svc_op_t *op)
{
  op->phase = SVC_PHASE_COMMIT;
  int rc = svc__conn_put(svc->store, &op->next, on_committed, op);
  if (rc != 0)
    on_committed(op, rc);
}

svc_op_t *svc__op_new(svc_t *svc, svc_op_kind_t kind)
{
  svc_op_t *op = xcalloc(1, sizeof *op);
  op->svc = svc;
  op->kind = kind;
  op->wtail = &op->waiters;
  svc->ops++;
  return op;
}

/* Makes `op` the running op of e, detaching the previous one. */
void svc__op_attach(svc_t *svc, conn_entry_t *e, svc_op_t *op)
{
  if (e->op)
    op_detach(svc, e->op, op, GRANTD_ECONFLICT);
  wheel_unlink(&e->wheel);
  /* A record given by a caller (put, connect flow) brings its own tokens:
   * a later invalid_grant is not about a rotation lost in a restart. */
  if (op->kind == SVC_OP_COMMIT || op->have_rec)
    e->flags &= (uint8_t)~CONN_ENTRY_RESTART_OVERDUE;
  e->op = op;
  op->entry = e;
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
  op->phase = SVC_PHASE_COMMIT;
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
