/*
 * reaper.c - the connection reaper; see reaper.h.
 */
#include "service/reaper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"

typedef enum { REAPER_RUNNING, REAPER_CLOSING } reaper_state_t;

struct reaper {
  uv_timer_t timer;
  reaper_opts_t o;
  reaper_state_t state;
  char *cursor;      /* listing position; NULL = from the first id */
  unsigned inflight; /* deletions not yet called back */
  bool timer_open;   /* until uv_close's callback */
};

/* One deletion in flight, with what its log line needs. */
typedef struct {
  reaper_t *r;
  char *id;
  conn_status_t status;
} reap_op_t;

bool reaper_due(const conn_t *c, int64_t now_ms, int64_t age_ms, int64_t *since_ms)
{
  int64_t since = c->created_at;
  if (c->updated_at > since)
    since = c->updated_at;
  if (c->last_error_at > since)
    since = c->last_error_at;
  if (since_ms)
    *since_ms = since;
  if (age_ms <= 0)
    return false;
  if (c->status != CONN_NEEDS_REAUTH && c->status != CONN_ERROR && c->status != CONN_PENDING)
    return false;
  return now_ms - since >= age_ms;
}

static void maybe_free(reaper_t *r)
{
  if (r->state == REAPER_CLOSING && r->inflight == 0 && !r->timer_open) {
    free(r->cursor);
    free(r);
  }
}

static void status_label(char *out, size_t n, conn_status_t s)
{
  snprintf(out, n, "status=\"%s\"", conn_status_name(s));
}

static void on_deleted(void *arg, int err, const svc_revoke_report_t *rep)
{
  reap_op_t *op = arg;
  reaper_t *r = op->r;
  r->inflight--;
  if (err == 0) {
    char labels[48];
    status_label(labels, sizeof labels, op->status);
    metrics_counter_inc("grantd_reaped_total", labels);
    log_info("reaped", "id", op->id, "status", conn_status_name(op->status), "?revoke_attempted",
             rep != NULL && rep->attempted);
  } else {
    log_warn("reap_failed", "id", op->id, "error", err_name(err));
  }
  free(op->id);
  free(op);
  maybe_free(r);
}

static void consider(reaper_t *r, const conn_t *c, int64_t now)
{
  int64_t since;
  if (!reaper_due(c, now, r->o.age_ms, &since))
    return;
  char labels[48];
  status_label(labels, sizeof labels, c->status);
  int64_t age_s = (now - since) / 1000;
  if (r->o.dry_run) {
    metrics_counter_inc("grantd_reap_candidates_total", labels);
    log_info("reap_candidate", "id", c->id, "tenant", c->tenant, "provider", c->provider, "status",
             conn_status_name(c->status), "#age_s", LOG_I64(age_s));
    return;
  }
  reap_op_t *op = xcalloc(1, sizeof *op);
  op->r = r;
  op->id = xstrdup(c->id);
  op->status = c->status;
  log_info("reaping", "id", c->id, "tenant", c->tenant, "provider", c->provider, "status",
           conn_status_name(c->status), "#age_s", LOG_I64(age_s), "?revoke", r->o.revoke);
  r->inflight++;
  int rc = svc_conn_delete(r->o.svc, c->id, r->o.revoke, on_deleted, op);
  if (rc != 0) {
    r->inflight--;
    log_warn("reap_failed", "id", c->id, "error", err_name(rc));
    free(op->id);
    free(op);
  }
}

void reaper_step(reaper_t *r)
{
  if (r->state != REAPER_RUNNING)
    return;
  conn_t *page = NULL;
  size_t n = 0;
  char *next = NULL;
  int rc = store_conn_list(r->o.store, NULL, -1, r->cursor, r->o.batch, &page, &n, &next);
  if (rc != 0) {
    log_warn("reap_step_failed", "error", err_name(rc));
    return; /* same cursor next time */
  }
  int64_t now = clock_now_ms();
  for (size_t i = 0; i < n; i++) {
    consider(r, &page[i], now);
    conn_free(&page[i]);
  }
  free(page);
  free(r->cursor);
  r->cursor = next; /* NULL at the end: round again from the first */
}

static void on_tick(uv_timer_t *t)
{
  reaper_step(t->data);
}

reaper_t *reaper_new(const reaper_opts_t *o)
{
  reaper_t *r = xcalloc(1, sizeof *r);
  r->o = *o;
  if (r->o.interval_ms <= 0)
    r->o.interval_ms = 60000;
  if (r->o.batch == 0)
    r->o.batch = 256;
  metrics_help("grantd_reaped_total", "connections deleted by the reaper, by status",
               METRIC_COUNTER);
  metrics_help("grantd_reap_candidates_total",
               "connections the reaper would delete (dry run), by status", METRIC_COUNTER);
  uv_timer_init(o->loop, &r->timer);
  r->timer.data = r;
  r->timer_open = true;
  uv_timer_start(&r->timer, on_tick, (uint64_t)r->o.interval_ms, (uint64_t)r->o.interval_ms);
  uv_unref((uv_handle_t *)&r->timer);
  log_info("reaper_on", "#after_s", LOG_I64(r->o.age_ms / 1000), "?revoke", r->o.revoke, "?dry_run",
           r->o.dry_run);
  return r;
}

static void on_timer_closed(uv_handle_t *h)
{
  reaper_t *r = h->data;
  r->timer_open = false;
  maybe_free(r);
}

void reaper_close(reaper_t *r)
{
  if (r == NULL || r->state == REAPER_CLOSING)
    return;
  r->state = REAPER_CLOSING;
  uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}
