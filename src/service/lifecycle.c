/*
 * lifecycle.c - what the service's life needs below everything else: the
 * count of outstanding work that svc_close waits for, the step that
 * closes the service's handles once nothing is outstanding, and the
 * metrics that point into the service (defined at open, frozen at close).
 */
#include <stdio.h>

#include "base/mem.h"
#include "base/metrics.h"
#include "service/lifecycle.h"

/* ---- metrics ---------------------------------------------------------------- */

static double gauge_u64(void *arg)
{
  return (double)*(const uint64_t *)arg;
}

static double gauge_scheduled(void *arg)
{
  return (double)wheel_count(&((svc_t *)arg)->wheel);
}

void svc__metrics_setup(svc_t *svc)
{
  static const double lat[] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};
  static const double lag[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000};
  metrics_help("grantd_refreshes_total", "token refreshes by outcome", METRIC_COUNTER);
  metrics_help("grantd_rotated_token_unsaved_total",
               "rotated refresh tokens given up after failed commits", METRIC_COUNTER);
  metrics_help("grantd_rotation_lost_on_restart_total",
               "refresh tokens rejected (invalid_grant) at the first refresh after start-up "
               "of a connection that was due at start-up (refresh_token_lost_in_restart)",
               METRIC_COUNTER);
  metrics_histogram_define("grantd_refresh_latency_ms", "token request round trip (ms)", lat,
                           ARRAY_SIZE(lat));
  metrics_histogram_define("grantd_scheduler_lag_ms", "actual minus planned refresh start (ms)",
                           lag, ARRAY_SIZE(lag));
  metrics_help("grantd_refresh_inflight", "token requests in flight per host", METRIC_GAUGE);
  metrics_help("grantd_refresh_queued", "token requests waiting for a slot", METRIC_GAUGE);
  metrics_help("grantd_scheduled", "connections with a scheduled refresh", METRIC_GAUGE);
  metrics_help("grantd_connections", "connections by status", METRIC_GAUGE);
  metrics_help("grantd_status_changes_total", "connection status changes", METRIC_COUNTER);
  metrics_gauge_set("grantd_refresh_queued", NULL, 0);
  metrics_gauge_fn("grantd_scheduled", NULL, gauge_scheduled, svc);
  for (int s = 0; s < CONN_STATUS_COUNT; s++) {
    char labels[64];
    snprintf(labels, sizeof labels, "status=\"%s\"", conn_status_name((conn_status_t)s));
    metrics_gauge_fn("grantd_connections", labels, gauge_u64, &svc->by_status[s]);
  }
}

/* The gauges must not keep pointing into a freed service. */
static void metrics_freeze(svc_t *svc)
{
  metrics_gauge_set("grantd_scheduled", NULL, (double)wheel_count(&svc->wheel));
  for (int s = 0; s < CONN_STATUS_COUNT; s++) {
    char labels[64];
    snprintf(labels, sizeof labels, "status=\"%s\"", conn_status_name((conn_status_t)s));
    metrics_gauge_set("grantd_connections", labels, (double)svc->by_status[s]);
  }
}

static void on_handle_closed(uv_handle_t *h)
{
  svc_t *svc = h->data;
  if (--svc->handles_open == 0) {
    metrics_freeze(svc);
    svc__events_teardown(svc);
    if (svc->close_cb)
      svc->close_cb(svc->close_arg);
  }
}

void svc__work_begin(svc_t *svc)
{
  svc->work++;
}

void svc__work_end(svc_t *svc)
{
  svc->work--;
  svc__maybe_closed(svc);
}

void svc__maybe_closed(svc_t *svc)
{
  if (!svc->closing || svc->handles_open <= 0 || svc->close_cb == NULL)
    return;
  if (svc->ops || svc->sending || svc->work || svc->queued || svc->ans_head)
    return;
  if (uv_is_closing((uv_handle_t *)&svc->idle))
    return;
  uv_close((uv_handle_t *)&svc->timer, on_handle_closed);
  uv_close((uv_handle_t *)&svc->rl_timer, on_handle_closed);
  uv_close((uv_handle_t *)&svc->idle, on_handle_closed);
  uv_close((uv_handle_t *)&svc->sweep_timer, on_handle_closed);
  uv_close((uv_handle_t *)&svc->wh_timer, on_handle_closed);
}
