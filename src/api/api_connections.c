/*
 * api_connections.c - the connection endpoints of the v1 API: create or
 * replace, read, list, delete (optionally revoking), read the token, refresh
 * now; the route of the NDJSON bulk import (api_import.c).
 *
 * Secrets go in (tokens on import, client secret, password) but only the
 * token endpoint ever returns one: the access token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "base/buf.h"
#include "base/json.h"
#include "base/mem.h"

static void conn_done(void *arg, int err, const conn_t *c)
{
  api_ctx_t *ctx = arg;
  if (err != 0) {
    api_reply_err(ctx, err, c);
    return;
  }
  api_reply_json(ctx, 200, api_conn_to_json(c));
}

/* A provider that lists its grants (one made from a catalog template)
 * takes only those; an import (refresh_token) also when it supports the
 * authorization_code grant, whose tokens are what gets imported. Returns
 * -1 with *e set (422 grant_not_supported). */
static int check_grant(api_ctx_t *ctx, const conn_t *c, api_err_t *e)
{
  provider_t p;
  if (svc_provider_get(ctx->api->svc, c->provider, &p) != 0)
    return 0; /* an unknown provider is the service's answer */
  bool ok = p.grants.n == 0;
  for (size_t i = 0; i < p.grants.n && !ok; i++) {
    grant_t g;
    ok = grant_parse(p.grants.items[i], &g) == 0 &&
         (g == c->grant || (c->grant == GRANT_REFRESH_TOKEN && g == GRANT_AUTHORIZATION_CODE));
  }
  if (!ok) {
    e->status = 422;
    e->code = "grant_not_supported";
    snprintf(e->message, sizeof e->message, "provider '%.64s' does not support the grant %s",
             c->provider, grant_name(c->grant));
  } else if (c->grant == GRANT_DEVICE_CODE &&
             (p.device_authorization_url == NULL || p.device_authorization_url[0] == '\0')) {
    ok = false;
    e->status = 422;
    e->code = "missing_device_endpoint";
    snprintf(e->message, sizeof e->message,
             "provider '%.64s' has no device_authorization_url (nor a discovered "
             "device_authorization_endpoint): the device_code grant needs one",
             c->provider);
  } else if (c->grant == GRANT_JWT_BEARER && c->signing_key == NULL && p.signing_key == NULL) {
    ok = false;
    e->status = 422;
    e->code = "invalid_signing_key";
    snprintf(e->message, sizeof e->message,
             "the jwt_bearer grant needs a signing_key, on the connection or on provider '%.64s'",
             c->provider);
  }
  provider_free(&p);
  return ok ? 0 : -1;
}

int api_conn_exchange_check(const api_t *api, const json_t *body, const conn_t *c, api_err_t *e)
{
  if (c->grant != GRANT_TOKEN_EXCHANGE || c->subject_connection == NULL)
    return 0;
  conn_t s;
  const char *code = NULL, *why = NULL;
  if (svc_conn_get(api->svc, c->subject_connection, &s) != 0) {
    e->status = 422;
    e->code = "unknown_subject_connection";
    snprintf(e->message, sizeof e->message, "field 'subject_connection' names no connection");
    return -1;
  }
  if (s.tenant && c->tenant && strcmp(s.tenant, c->tenant) != 0 &&
      !json_is_true(json_object_get(body, "allow_cross_tenant"))) {
    code = "cross_tenant_source";
    why = "the subject connection belongs to another tenant (set allow_cross_tenant to allow it)";
  } else if (s.grant == GRANT_TOKEN_EXCHANGE && s.subject_connection != NULL) {
    code = "invalid_field";
    why = "the subject connection takes its own subject token from a connection (no chains)";
  }
  conn_free(&s);
  if (code == NULL)
    return 0;
  e->status = 422;
  e->code = code;
  snprintf(e->message, sizeof e->message, "%s", why);
  return -1;
}

static void conn_put(api_ctx_t *ctx)
{
  api_err_t e;
  conn_t *c = xcalloc(1, sizeof *c);
  if (api_conn_from_json(ctx->body, ctx->params[0], c, &e) != 0) {
    free(c);
    api_reply_api_err(ctx, &e);
    return;
  }
  if (check_grant(ctx, c, &e) != 0 || api_conn_vars_check(ctx->api, ctx->body, c, &e) != 0 ||
      api_conn_exchange_check(ctx->api, ctx->body, c, &e) != 0) {
    conn_free(c);
    free(c);
    api_reply_api_err(ctx, &e);
    return;
  }
  int rc = svc_conn_put(ctx->api->svc, c, conn_done, ctx);
  if (rc != 0)
    api_reply_err(ctx, rc, NULL);
}

static void conn_get(api_ctx_t *ctx)
{
  conn_t c;
  int rc = svc_conn_get(ctx->api->svc, ctx->params[0], &c);
  if (rc != 0) {
    api_reply_err(ctx, rc, NULL);
    return;
  }
  json_t *j = api_conn_to_json(&c);
  conn_free(&c);
  api_reply_json(ctx, 200, j);
}

static int parse_uint(const char *s, int64_t max, int64_t *out)
{
  if (s == NULL || *s == '\0' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 12)
    return -1;
  long long v = strtoll(s, NULL, 10);
  if (v > max)
    return -1;
  *out = v;
  return 0;
}

static void conn_list(api_ctx_t *ctx)
{
  const char *tenant = api_query(ctx, "tenant");
  const char *status_s = api_query(ctx, "status");
  const char *limit_s = api_query(ctx, "limit");
  const char *cursor = api_query(ctx, "cursor");
  int status = -1;
  int64_t limit = 100;
  if (status_s != NULL) {
    conn_status_t st;
    if (conn_status_parse(status_s, &st) != 0) {
      api_reply_error(
        ctx, 400, "invalid_query",
        "status must be pending, active, refresh_failing, needs_reauth, error or revoked");
      return;
    }
    status = (int)st;
  }
  if (limit_s != NULL && (parse_uint(limit_s, 1000, &limit) != 0 || limit == 0)) {
    api_reply_error(ctx, 400, "invalid_query", "limit must be a whole number from 1 to 1000");
    return;
  }
  if (cursor != NULL && !api_valid_id(cursor)) {
    api_reply_error(ctx, 400, "invalid_query", "cursor is not valid");
    return;
  }
  conn_t *items = NULL;
  size_t n = 0;
  char *next = NULL;
  int rc = svc_conn_list(ctx->api->svc, tenant, status, cursor, (size_t)limit, &items, &n, &next);
  if (rc != 0) {
    api_reply_err(ctx, rc, NULL);
    return;
  }
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    json_array_append_new(arr, api_conn_to_json(&items[i]));
    conn_free(&items[i]);
  }
  free(items);
  json_t *o = json_object();
  json_object_set_new(o, "connections", arr);
  json_object_set_new(o, "next_cursor", next ? json_string(next) : json_null());
  free(next);
  api_reply_json(ctx, 200, o);
}

static json_t *revoke_part(int err, int http)
{
  json_t *o = json_object();
  json_object_set_new(o, "revoked", json_boolean(err == 0));
  if (err != 0) {
    json_object_set_new(o, "error", json_string(err_name(err)));
    json_object_set_new(o, "message", json_string(err_str(err)));
  }
  json_object_set_new(o, "http_status", http ? json_integer(http) : json_null());
  return o;
}

static void delete_done(void *arg, int err, const svc_revoke_report_t *rep)
{
  api_ctx_t *ctx = arg;
  if (err != 0) {
    api_reply_err(ctx, err, NULL);
    return;
  }
  json_t *o = json_object();
  json_object_set_new(o, "deleted", json_true());
  json_object_set_new(o, "id", json_string(ctx->params[0]));
  if (rep != NULL && rep->attempted) {
    json_t *r = json_object();
    json_object_set_new(r, "refresh_token", revoke_part(rep->refresh_err, rep->refresh_http));
    json_object_set_new(r, "access_token", revoke_part(rep->access_err, rep->access_http));
    json_object_set_new(o, "revocation", r);
  } else {
    json_object_set_new(o, "revocation", json_null());
  }
  api_reply_json(ctx, 200, o);
}

static void conn_delete(api_ctx_t *ctx)
{
  const char *rv = api_query(ctx, "revoke");
  bool revoke = false;
  if (rv != NULL) {
    if (!strcasecmp(rv, "true") || !strcmp(rv, "1"))
      revoke = true;
    else if (strcasecmp(rv, "false") && strcmp(rv, "0")) {
      api_reply_error(ctx, 400, "invalid_query", "revoke must be true or false");
      return;
    }
  }
  int rc = svc_conn_delete(ctx->api->svc, ctx->params[0], revoke, delete_done, ctx);
  if (rc != 0)
    api_reply_err(ctx, rc, NULL);
}

static void token_done(void *arg, int err, const conn_t *c)
{
  api_ctx_t *ctx = arg;
  if (err != 0) {
    api_reply_err(ctx, err, c);
    return;
  }
  buf_t b = BUF_INIT;
  api_token_render(c, &b);
  api_reply_raw(ctx, 200, "application/json", b.data, b.len, "Cache-Control: no-store\r\n");
  buf_wipe_free(&b);
}

static void conn_token(api_ctx_t *ctx)
{
  int64_t min_ttl = 30;
  const char *s = api_query(ctx, "min_ttl");
  if (s != NULL && parse_uint(s, 86400, &min_ttl) != 0) {
    api_reply_error(ctx, 400, "invalid_query", "min_ttl must be seconds from 0 to 86400");
    return;
  }
  int rc = svc_conn_token(ctx->api->svc, ctx->params[0], min_ttl * 1000, token_done, ctx);
  if (rc != 0)
    api_reply_err(ctx, rc, NULL);
}

static void conn_refresh(api_ctx_t *ctx)
{
  int rc = svc_conn_refresh(ctx->api->svc, ctx->params[0], conn_done, ctx);
  if (rc != 0)
    api_reply_err(ctx, rc, NULL);
}

const api_route_t api_connection_routes[] = {
  {"POST", "/v1/connections:import", true, 0, API_BODY_IMPORT, api_import_handle,
   "/v1/connections:import"},
  {"PUT", "/v1/connections/{}", true, 1, 0, conn_put, "/v1/connections/{id}"},
  {"GET", "/v1/connections/{}", true, 0, 0, conn_get, "/v1/connections/{id}"},
  {"DELETE", "/v1/connections/{}", true, 0, 0, conn_delete, "/v1/connections/{id}"},
  {"GET", "/v1/connections", true, 0, 0, conn_list, "/v1/connections"},
  {"GET", "/v1/connections/{}/token", true, 0, 0, conn_token, "/v1/connections/{id}/token"},
  {"POST", "/v1/connections/{}/refresh", true, 0, 0, conn_refresh, "/v1/connections/{id}/refresh"},
  {NULL, NULL, false, 0, 0, NULL, NULL},
};
