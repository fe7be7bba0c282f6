/*
 * api_catalog.c - GET /v1/catalog and GET /v1/catalog/{name}, and the
 * template half of PUT /v1/providers/{name} (api_template_merge).
 *
 * A provider made from a template is the template's provider fields with
 * the request's explicit fields laid over them, parsed by the same
 * api_provider_from_json as any other provider, so a template can never
 * set what a request could not. The stored provider remembers the
 * template's name and version and which fields came from it.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "api/api_json_field.h"
#include "base/mem.h"

/* The summary of one template in the listing. */
static json_t *summary(const json_t *t)
{
  json_t *o = json_object();
  static const char *const keys[] = {"name", "display_name", "version", "grants", "docs"};
  for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
    json_object_set(o, keys[i], json_object_get(t, keys[i]));
  json_t *vars = json_array(), *d;
  const char *k;
  json_object_foreach(json_object_get(t, "vars"), k, d) json_array_append_new(vars, json_string(k));
  json_object_set_new(o, "variables", vars);
  return o;
}

static void catalog_list(api_ctx_t *ctx)
{
  const catalog_t *cat = ctx->api->catalog;
  json_t *arr = json_array();
  for (size_t i = 0; i < catalog_count(cat); i++)
    json_array_append_new(arr, summary(catalog_at(cat, i)));
  json_t *o = json_object();
  json_object_set_new(o, "templates", arr);
  api_reply_json(ctx, 200, o);
}

/* "no template 'x' in the catalog (close: a, b)" */
static void unknown_message(const catalog_t *cat, const char *name, char *msg, size_t cap)
{
  buf_t close = BUF_INIT;
  size_t n = catalog_close_names(cat, name, 5, &close);
  snprintf(msg, cap, "no template '%.64s' in the catalog%s%s%s (GET /v1/catalog lists them)", name,
           n ? "; close names: " : "", n ? buf_cstr(&close) : "", "");
  buf_free(&close);
}

static void catalog_get_one(api_ctx_t *ctx)
{
  const json_t *t = catalog_get(ctx->api->catalog, ctx->params[0]);
  if (t == NULL) {
    char msg[400];
    unknown_message(ctx->api->catalog, ctx->params[0], msg, sizeof msg);
    api_reply_error(ctx, 404, "not_found", msg);
    return;
  }
  api_reply_json(ctx, 200, json_deep_copy(t));
}

static bool json_str_in(const json_t *arr, const char *s)
{
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e)
  {
    if (json_is_string(e) && strcmp(json_string_value(e), s) == 0)
      return true;
  }
  return false;
}

int api_template_merge(const api_t *api, const json_t *body, json_t **merged, const json_t **tpl,
                       strlist_t *from, api_err_t *e)
{
  *merged = NULL;
  *tpl = NULL;
  json_t *tv = json_object_get(body, "template");
  if (tv == NULL || json_is_null(tv))
    return 0;
  if (!json_is_string(tv) || json_string_length(tv) == 0)
    return api_field_fail(e, 422, "invalid_field", "field '%s' must be a template name",
                          "template");
  const char *name = json_string_value(tv);
  const json_t *t = catalog_get(api->catalog, name);
  if (t == NULL) {
    e->status = 422;
    e->code = "unknown_template";
    unknown_message(api->catalog, name, e->message, sizeof e->message);
    return -1;
  }
  /* Explicit grants must be ones the template supports. */
  json_t *g = json_object_get(body, "grants");
  if (json_is_array(g)) {
    size_t i;
    json_t *x;
    json_array_foreach(g, i, x)
    {
      if (json_is_string(x) && !json_str_in(json_object_get(t, "grants"), json_string_value(x))) {
        char msg[200];
        snprintf(msg, sizeof msg, "template '%.64s' does not support the grant %.40s", name,
                 json_string_value(x));
        e->status = 422;
        e->code = "grant_conflict";
        snprintf(e->message, sizeof e->message, "%s", msg);
        return -1;
      }
    }
  }
  json_t *m = json_object();
  for (const char *const *f = catalog_provider_fields; *f; f++) {
    json_t *v = json_object_get(t, *f);
    if (v != NULL && json_object_get(body, *f) == NULL) {
      json_object_set(m, *f, v);
      strlist_push(from, *f);
    }
  }
  if (json_object_get(body, "grants") == NULL)
    json_object_set(m, "grants", json_object_get(t, "grants"));
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)body, k, v)
  {
    if (strcmp(k, "template") != 0)
      json_object_set(m, k, v);
  }
  *merged = m;
  *tpl = t;
  return 0;
}

const api_route_t api_catalog_routes[] = {
  {"GET", "/v1/catalog/{}", true, 0, 0, catalog_get_one, "/v1/catalog/{name}"},
  {"GET", "/v1/catalog", true, 0, 0, catalog_list, "/v1/catalog"},
  {NULL, NULL, false, 0, 0, NULL, NULL},
};
