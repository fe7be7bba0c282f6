/*
 * api_webhooks.c - PUT/GET/DELETE /v1/webhooks/{name}, GET /v1/webhooks
 * and POST /v1/webhooks/{name}/test: webhook endpoints (svc.h, "webhook
 * endpoints"). Admin scope only (no row in api_scopes.c).
 *
 * PUT body: {"url": "https://...", "secret": "whsec_<base64 of 24-64
 * bytes>" (optional), "events": ["connection.needs_reauth",
 * "connection.*", ...]}. The secret is write-only: a generated one is
 * answered once (member "secret" of the create's answer), never again.
 * Bad input is answered 422 with nothing stored: invalid_url (not an
 * absolute http(s) URL), insecure_url (http:// without
 * --allow-insecure-http), endpoint_forbidden (an IP literal the SSRF
 * policy refuses), invalid_secret, invalid_event_type, invalid_field;
 * 409 too_many_webhooks past --webhook-max-endpoints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/url.h"
#include "base/whsig.h"

#define WH_MAX_PATTERNS 32

static json_t *view_to_json(const svc_wh_view_t *v)
{
  json_t *o = json_object();
  json_object_set_new(o, "name", json_string(v->rec.name));
  json_object_set_new(o, "url", json_string(v->rec.url));
  json_t *ev = json_array();
  for (size_t i = 0; i < v->rec.events.n; i++)
    json_array_append_new(ev, json_string(v->rec.events.items[i]));
  json_object_set_new(o, "events", ev);
  if (v->new_secret)
    json_object_set_new(o, "secret", json_string(v->new_secret));
  json_object_set_new(o, "previous_secret_valid_until",
                      v->has_old_secret ? api_time(v->rec.old_until) : json_null());
  json_object_set_new(o, "created_at", api_time(v->rec.created_at));
  json_object_set_new(o, "updated_at", api_time(v->rec.updated_at));
  json_t *st = json_object();
  json_object_set_new(st, "state", json_string(v->disabled ? "disabled" : "active"));
  json_object_set_new(st, "cursor", json_integer((json_int_t)v->cursor));
  json_object_set_new(st, "backlog", json_integer((json_int_t)v->backlog));
  json_object_set_new(st, "inflight", json_integer((json_int_t)v->inflight));
  json_object_set_new(st, "delivered", json_integer((json_int_t)v->delivered));
  json_object_set_new(st, "failed", json_integer((json_int_t)v->failed));
  json_object_set_new(st, "last_delivery_at", api_time(v->last_ok_ms));
  json_object_set_new(st, "oldest_undelivered_at", api_time(v->oldest_ms));
  if (v->last_err_ms > 0) {
    json_t *le = json_object();
    json_object_set_new(le, "at", api_time(v->last_err_ms));
    json_object_set_new(le, "http_status",
                        v->last_err_status ? json_integer(v->last_err_status) : json_null());
    json_object_set_new(le, "class", json_string(v->last_err_class));
    json_object_set_new(st, "last_error", le);
  } else {
    json_object_set_new(st, "last_error", json_null());
  }
  json_object_set_new(o, "status", st);
  return o;
}

static void put_done(void *arg, int err, const svc_wh_view_t *v)
{
  api_ctx_t *ctx = arg;
  if (err != 0) {
    api_reply_err(ctx, err, NULL);
    return;
  }
  api_reply_json(ctx, v->created ? 201 : 200, view_to_json(v));
}

static int check_url(api_ctx_t *ctx, const char *s)
{
  url_t u;
  if (url_parse(s, &u) != 0) {
    api_reply_error(ctx, 422, "invalid_url", "field 'url' must be an absolute http(s) URL");
    return -1;
  }
  bool http = strcmp(u.scheme, "http") == 0;
  url_free(&u);
  if (http && !ctx->api->allow_insecure_http) {
    api_reply_error(ctx, 422, "insecure_url",
                    "field 'url': plain http:// is allowed only with --allow-insecure-http");
    return -1;
  }
  char why[200], msg[400];
  if (addr_policy_check_url(ctx->api->endpoint_policy, s, why, sizeof why) ==
      GRANTD_EENDPOINT_FORBIDDEN) {
    snprintf(msg, sizeof msg,
             "field 'url': %s; grantd does not connect to such addresses unless the operator "
             "allows them (--allow-endpoint-cidr, --allow-private-endpoints)",
             why);
    api_reply_error(ctx, 422, "endpoint_forbidden", msg);
    return -1;
  }
  return 0;
}

static int parse_events(api_ctx_t *ctx, const json_t *ev, strlist_t *out)
{
  if (!json_is_array(ev) || json_array_size(ev) == 0 || json_array_size(ev) > WH_MAX_PATTERNS) {
    api_reply_error(ctx, 422, "invalid_field",
                    "field 'events' must be an array of 1 to 32 event type patterns");
    return -1;
  }
  size_t i;
  json_t *e;
  json_array_foreach(ev, i, e)
  {
    const char *p = json_string_value(e);
    if (p == NULL || !svc_webhook_pattern_ok(p)) {
      char msg[200];
      snprintf(msg, sizeof msg,
               "unknown event type pattern '%.80s' (a type such as connection.needs_reauth, or "
               "connection.*)",
               p ? p : "(not a string)");
      api_reply_error(ctx, 422, "invalid_event_type", msg);
      strlist_free(out);
      return -1;
    }
    strlist_push(out, p);
  }
  return 0;
}

static void webhook_put(api_ctx_t *ctx)
{
  static const char *const allowed[] = {"url", "secret", "events", NULL};
  const char *bad = NULL;
  if (json_check_fields(ctx->body, allowed, &bad) != 0) {
    char msg[200];
    snprintf(msg, sizeof msg, "unknown field '%.80s' (allowed: url, secret, events)",
             bad ? bad : "?");
    api_reply_error(ctx, 422, "invalid_field", msg);
    return;
  }
  const char *url = json_get_str(ctx->body, "url");
  if (url == NULL) {
    api_reply_error(ctx, 422, "invalid_field", "field 'url' (string) is required");
    return;
  }
  if (check_url(ctx, url) != 0)
    return;
  json_t *sj = json_object_get(ctx->body, "secret");
  const char *secret = NULL;
  if (sj != NULL && !json_is_null(sj)) {
    secret = json_string_value(sj);
    uint8_t k[WHSIG_KEY_MAX];
    size_t kl;
    if (secret == NULL || whsig_secret_parse(secret, k, &kl) != 0) {
      api_reply_error(ctx, 422, "invalid_secret",
                      "field 'secret' must be \"whsec_\" followed by the standard base64 of 24 "
                      "to 64 random bytes");
      return;
    }
    mem_wipe(k, sizeof k);
  }
  wh_rec_t r = {0};
  if (parse_events(ctx, json_object_get(ctx->body, "events"), &r.events) != 0)
    return;
  r.name = xstrdup(ctx->params[0]);
  r.url = xstrdup(url);
  r.secret = secret ? xstrdup(secret) : NULL;
  int rc = svc_webhook_put(ctx->api->svc, &r, put_done, ctx);
  if (rc == GRANTD_ELIMIT)
    api_reply_error(ctx, 409, "too_many_webhooks",
                    "the number of webhook endpoints is at its limit (--webhook-max-endpoints); "
                    "delete one first");
  else if (rc != 0)
    api_reply_err(ctx, rc, NULL);
}

static void webhook_get(api_ctx_t *ctx)
{
  svc_wh_view_t v;
  int rc = svc_webhook_get(ctx->api->svc, ctx->params[0], &v);
  if (rc != 0) {
    api_reply_err(ctx, rc, NULL);
    return;
  }
  json_t *j = view_to_json(&v);
  svc_wh_view_free(&v);
  api_reply_json(ctx, 200, j);
}

static void list_one(void *arg, const svc_wh_view_t *v)
{
  json_array_append_new((json_t *)arg, view_to_json(v));
}

static void webhook_list(api_ctx_t *ctx)
{
  json_t *arr = json_array();
  svc_webhook_each(ctx->api->svc, list_one, arr);
  json_t *o = json_object();
  json_object_set_new(o, "webhooks", arr);
  api_reply_json(ctx, 200, o);
}

static void delete_done(void *arg, int err, const svc_wh_view_t *v)
{
  (void)v;
  api_reply_deleted(arg, err);
}

static void webhook_delete(api_ctx_t *ctx)
{
  int rc = svc_webhook_delete(ctx->api->svc, ctx->params[0], delete_done, ctx);
  if (rc != 0)
    api_reply_err(ctx, rc, NULL);
}

static void test_done(void *arg, int err, const svc_wh_test_t *t)
{
  api_ctx_t *ctx = arg;
  if (err != 0) {
    api_reply_err(ctx, err, NULL);
    return;
  }
  json_t *o = json_object();
  json_object_set_new(o, "id", json_string(t->id));
  json_object_set_new(o, "type", json_string("webhook.test"));
  json_object_set_new(o, "delivered", json_boolean(t->delivered));
  json_object_set_new(o, "http_status", t->status ? json_integer(t->status) : json_null());
  json_object_set_new(o, "error", t->error ? json_string(t->error) : json_null());
  json_object_set_new(o, "duration_ms", json_integer(t->ms));
  api_reply_json(ctx, 200, o);
}

static void webhook_test(api_ctx_t *ctx)
{
  int rc = svc_webhook_test(ctx->api->svc, ctx->params[0], test_done, ctx);
  if (rc != 0)
    api_reply_err(ctx, rc, NULL);
}

const api_route_t api_webhook_routes[] = {
  {"PUT", "/v1/webhooks/{}", true, 1, 0, webhook_put, "/v1/webhooks/{name}"},
  {"GET", "/v1/webhooks/{}", true, 0, 0, webhook_get, "/v1/webhooks/{name}"},
  {"DELETE", "/v1/webhooks/{}", true, 0, 0, webhook_delete, "/v1/webhooks/{name}"},
  {"POST", "/v1/webhooks/{}/test", true, 0, 0, webhook_test, "/v1/webhooks/{name}/test"},
  {"GET", "/v1/webhooks", true, 0, 0, webhook_list, "/v1/webhooks"},
  {NULL, NULL, false, 0, 0, NULL, NULL},
};
