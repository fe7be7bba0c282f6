/*
 * api_providers.c - PUT/GET/DELETE /v1/providers/{name} and GET /v1/providers.
 *
 * client_secret is write-only: accepted on PUT, rendered as has_client_secret.
 * A PUT replaces the whole provider; when the body names an issuer but no
 * token_url, the service discovers the endpoints first (RFC 8414).
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "base/mem.h"

static void put_done(void *arg, int err, const provider_t *p)
{
  api_ctx_t *ctx = arg;
  if (err != 0) {
    api_reply_err(ctx, err, NULL);
    return;
  }
  api_reply_json(ctx, 200, api_provider_to_json(p));
}

static void provider_put(api_ctx_t *ctx)
{
  const char *name = ctx->params[0];
  api_err_t e;
  provider_t *p = xcalloc(1, sizeof *p);
  if (api_provider_from_json(ctx->body, name, p, &e) != 0) {
    free(p);
    api_reply_api_err(ctx, &e);
    return;
  }
  int rc = svc_provider_put(ctx->api->svc, p, put_done, ctx);
  if (rc != 0)
    api_reply_err(ctx, rc, NULL);
}

static void provider_get(api_ctx_t *ctx)
{
  provider_t p;
  int rc = svc_provider_get(ctx->api->svc, ctx->params[0], &p);
  if (rc != 0) {
    api_reply_err(ctx, rc, NULL);
    return;
  }
  json_t *j = api_provider_to_json(&p);
  provider_free(&p);
  api_reply_json(ctx, 200, j);
}

static void list_one(void *arg, const provider_t *p)
{
  json_array_append_new((json_t *)arg, api_provider_to_json(p));
}

static void provider_list(api_ctx_t *ctx)
{
  json_t *arr = json_array();
  int rc = svc_provider_each(ctx->api->svc, list_one, arr);
  if (rc != 0) {
    json_decref(arr);
    api_reply_err(ctx, rc, NULL);
    return;
  }
  json_t *o = json_object();
  json_object_set_new(o, "providers", arr);
  api_reply_json(ctx, 200, o);
}

static void delete_done(void *arg, int err, const provider_t *p)
{
  (void)p;
  api_ctx_t *ctx = arg;
  if (err != 0) {
    api_reply_err(ctx, err, NULL);
    return;
  }
  json_t *o = json_object();
  json_object_set_new(o, "deleted", json_true());
  json_object_set_new(o, "name", json_string(ctx->params[0]));
  api_reply_json(ctx, 200, o);
}

static void provider_delete(api_ctx_t *ctx)
{
  int rc = svc_provider_delete(ctx->api->svc, ctx->params[0], delete_done, ctx);
  if (rc != 0)
    api_reply_err(ctx, rc, NULL);
}

const api_route_t api_provider_routes[] = {
  {"PUT", "/v1/providers/{}", true, 1, 0, provider_put, "/v1/providers/{name}"},
  {"GET", "/v1/providers/{}", true, 0, 0, provider_get, "/v1/providers/{name}"},
  {"DELETE", "/v1/providers/{}", true, 0, 0, provider_delete, "/v1/providers/{name}"},
  {"GET", "/v1/providers", true, 0, 0, provider_list, "/v1/providers"},
  {NULL, NULL, false, 0, 0, NULL, NULL},
};
