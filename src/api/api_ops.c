/*
 * api_ops.c - GET /healthz (liveness and readiness), GET /metrics
 * (Prometheus text exposition) and GET /openapi.json (the API document,
 * compiled in from docs/openapi.yaml).
 *
 * All are unauthenticated, like most sidecar probes, and reveal no
 * secrets: only counts, statuses, latencies and the API's description.
 */
#include <stdio.h>

#include "api/api_int.h"
#include "base/buf.h"
#include "base/metrics.h"

static void healthz(api_ctx_t *ctx)
{
  json_t *o = json_object();
  if (!ctx->api->ready || ctx->api->shutting_down) {
    json_object_set_new(o, "status",
                        json_string(ctx->api->shutting_down ? "shutting_down" : "starting"));
    api_reply_json(ctx, 503, o);
    return;
  }
  svc_stats_t st;
  svc_stats(ctx->api->svc, &st);
  json_object_set_new(o, "status", json_string("ok"));
  json_object_set_new(o, "connections", json_integer((json_int_t)st.connections));
  json_object_set_new(o, "scheduled", json_integer((json_int_t)st.scheduled));
  api_reply_json(ctx, 200, o);
}

static void metrics(api_ctx_t *ctx)
{
  svc_stats_t st;
  svc_stats(ctx->api->svc, &st);
  for (int s = 0; s < CONN_STATUS_COUNT; s++) {
    char labels[64];
    snprintf(labels, sizeof labels, "status=\"%s\"", conn_status_name((conn_status_t)s));
    metrics_gauge_set("grantd_connections", labels, (double)st.by_status[s]);
  }
  metrics_gauge_set("grantd_connections_total", NULL, (double)st.connections);
  metrics_gauge_set("grantd_record_decode_errors", NULL, (double)st.decode_errors);
  buf_t b = BUF_INIT;
  metrics_render(&b);
  api_reply_raw(ctx, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
  buf_free(&b);
}

static void openapi(api_ctx_t *ctx)
{
  api_reply_raw(ctx, 200, "application/json", api_openapi_json, api_openapi_json_len, NULL);
}

const api_route_t api_ops_routes[] = {
  {"GET", "/healthz", false, 0, 0, healthz, "/healthz"},
  {"GET", "/metrics", false, 0, 0, metrics, "/metrics"},
  {"GET", "/openapi.json", false, 0, 0, openapi, "/openapi.json"},
  {NULL, NULL, false, 0, 0, NULL, NULL},
};
