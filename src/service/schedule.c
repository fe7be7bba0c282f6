/*
 * schedule.c - when refreshes start: one wheel (wheel.h) of every
 * connection with a planned refresh, driven by one uv_timer, and the
 * start-up ramp-in of overdue connections.
 *
 * Ticks. The timer is armed at wheel_next_wake(). A tick fires at most
 * opts.batch_per_tick entries and re-arms at 0 ms when more are due, so a
 * refresh storm is cut into slices between which the loop serves the API.
 * Each fired entry observes its lag (now - planned time) into
 * grantd_scheduler_lag_ms and, unless it has a running op, is handed to
 * svc->on_due (refresh.c starts its refresh).
 *
 * Back-pressure. Fired refreshes become queued token requests; when
 * svc->queue_cap of them wait for a slot, the wheel stops firing (due
 * entries simply stay in the wheel, costing nothing) until the scheduler
 * has drained the queue to half and calls svc->on_room (svc__arm), so a
 * storm never allocates per-connection state beyond the index.
 */
#include <stdlib.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "service/schedule.h"

bool svc__schedulable(int status, int grant)
{
  /* A pending device flow is scheduled too: its polls (device.c). */
  return status == CONN_ACTIVE || status == CONN_REFRESH_FAILING ||
         (status == CONN_PENDING && grant == GRANT_DEVICE_CODE);
}

static void on_tick(uv_timer_t *t);

void svc__arm(svc_t *svc)
{
  if (svc->closing || svc->draining || svc->throttled)
    return;
  uint64_t wake = wheel_next_wake(&svc->wheel);
  if (wake == UINT64_MAX) {
    uv_timer_stop(&svc->timer);
    svc->armed_at = UINT64_MAX;
    return;
  }
  int64_t now = clock_now_ms();
  uint64_t delay = wake > (uint64_t)now ? wake - (uint64_t)now : 0;
  uv_timer_start(&svc->timer, on_tick, delay, 0);
  svc->armed_at = wake;
}

static void fire(void *arg, wheel_entry_t *w)
{
  svc_t *svc = arg;
  conn_entry_t *e = container_of(w, conn_entry_t, wheel);
  int64_t now = clock_now_ms();
  /* wheel_unlink keeps the deadline readable (see wheel.c). */
  int64_t planned = (int64_t)wheel_entry_at(w);
  metrics_histogram_observe("grantd_scheduler_lag_ms", NULL,
                            (double)(now > planned ? now - planned : 0));
  if (e->op)
    return; /* the running op reschedules when it ends */
  svc->on_due(svc, e);
}

static void on_tick(uv_timer_t *t)
{
  svc_t *svc = t->data;
  svc->armed_at = UINT64_MAX;
  if (svc->closing || svc->draining)
    return;
  size_t max = (size_t)svc->opts.batch_per_tick;
  if (svc->queued >= svc->queue_cap) {
    svc->throttled = true;
    return;
  }
  if (svc->queue_cap - svc->queued < max)
    max = svc->queue_cap - svc->queued;
  wheel_run(&svc->wheel, (uint64_t)clock_now_ms(), max, fire, svc);
  if (svc->queued >= svc->queue_cap) {
    svc->throttled = true;
    return;
  }
  svc__arm(svc);
}

void svc__schedule(svc_t *svc, conn_entry_t *e, int64_t at)
{
  e->next_refresh_at = at;
  if (at <= 0 || !svc__schedulable(e->status, e->grant)) {
    wheel_unlink(&e->wheel);
    return;
  }
  wheel_link(&svc->wheel, &e->wheel, (uint64_t)at);
  if ((uint64_t)at < svc->armed_at && !svc->throttled && !svc->closing)
    svc__arm(svc);
}

/* ---- start-up ramp-in --------------------------------------------------------- */

static int cmp_due(const void *a, const void *b)
{
  const conn_entry_t *x = *(conn_entry_t *const *)a, *y = *(conn_entry_t *const *)b;
  return (x->next_refresh_at > y->next_refresh_at) - (x->next_refresh_at < y->next_refresh_at);
}

void svc__ramp(svc_t *svc, conn_entry_t **overdue, size_t n, int64_t now)
{
  /* Most overdue first; spread over n / ramp_per_s seconds so the start
   * does not open thousands of connections and requests at once. */
  if (n == 0)
    return;
  qsort(overdue, n, sizeof *overdue, cmp_due);
  int64_t rate = svc->opts.ramp_per_s;
  for (size_t i = 0; i < n; i++) {
    int64_t at = now + (int64_t)((uint64_t)i * 1000 / (uint64_t)rate);
    conn_entry_t *e = overdue[i];
    int64_t planned = e->next_refresh_at;
    wheel_link(&svc->wheel, &e->wheel, (uint64_t)at);
    e->next_refresh_at = planned;
  }
  log_info("ramp_in", "#overdue", LOG_I64(n), "#seconds", LOG_I64((int64_t)n / rate));
}
