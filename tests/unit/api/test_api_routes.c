/* Unit test: the router's route tables and docs/openapi.yaml (compiled in as
 * api_openapi_json) list exactly the same routes, and every route with a
 * {} capture names it in the document's path. */
#include "support.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"

static const char *const methods[] = {"get", "put", "post", "delete", "patch", "head", "options"};

/* "METHOD path" for every operation of the document. */
static size_t doc_routes(json_t *doc, char out[][160], size_t max)
{
  json_t *paths = json_object_get(doc, "paths");
  assert_true(json_is_object(paths));
  size_t n = 0;
  const char *path;
  json_t *item;
  json_object_foreach(paths, path, item)
  {
    for (size_t m = 0; m < sizeof methods / sizeof *methods; m++) {
      if (json_object_get(item, methods[m]) == NULL)
        continue;
      assert_true(n < max);
      char up[16];
      size_t i;
      for (i = 0; methods[m][i]; i++)
        up[i] = (char)(methods[m][i] - 32);
      up[i] = '\0';
      snprintf(out[n++], 160, "%s %s", up, path);
    }
  }
  return n;
}

static bool in(char list[][160], size_t n, const char *s)
{
  for (size_t i = 0; i < n; i++)
    if (!strcmp(list[i], s))
      return true;
  return false;
}

/* The route's pattern with each {} replaced by the name in its label. */
static void check_label(const api_route_t *r)
{
  const char *p = r->pattern, *l = r->name;
  while (*p && *l) {
    if (p[0] == '{' && p[1] == '}') {
      if (*l != '{')
        fail_msg("route %s: label %s does not name its capture", r->pattern, r->name);
      while (*l && *l != '}')
        l++;
      if (*l == '}')
        l++;
      p += 2;
      continue;
    }
    if (*p++ != *l++)
      fail_msg("route %s: label %s differs from the pattern", r->pattern, r->name);
  }
  if (*p || *l)
    fail_msg("route %s: label %s differs from the pattern", r->pattern, r->name);
}

static void test_same_routes(void **state)
{
  (void)state;
  json_error_t je;
  json_t *doc = json_loadb(api_openapi_json, api_openapi_json_len, 0, &je);
  if (doc == NULL)
    fail_msg("api_openapi_json is not JSON: %s (line %d)", je.text, je.line);
  assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
  static char documented[64][160], routed[64][160];
  size_t nd = doc_routes(doc, documented, 64), nr = 0;
  size_t nt;
  const api_route_t *const *tables = api_route_tables(&nt);
  for (size_t t = 0; t < nt; t++) {
    for (const api_route_t *r = tables[t]; r->method; r++) {
      check_label(r);
      assert_true(nr < 64);
      snprintf(routed[nr++], 160, "%s %s", r->method, r->name);
    }
  }
  for (size_t i = 0; i < nr; i++)
    if (!in(documented, nd, routed[i]))
      fail_msg("route %s is not in docs/openapi.yaml", routed[i]);
  for (size_t i = 0; i < nd; i++)
    if (!in(routed, nr, documented[i]))
      fail_msg("docs/openapi.yaml documents %s, which the router does not have", documented[i]);
  assert_int_equal(nd, nr);
  json_decref(doc);
}

/* Every route without the API key says so in the document (security: []),
 * and every route with it does not. */
static void test_security_matches(void **state)
{
  (void)state;
  json_t *doc = json_loadb(api_openapi_json, api_openapi_json_len, 0, NULL);
  assert_non_null(doc);
  size_t nt;
  const api_route_t *const *tables = api_route_tables(&nt);
  for (size_t t = 0; t < nt; t++) {
    for (const api_route_t *r = tables[t]; r->method; r++) {
      char m[16];
      size_t i;
      for (i = 0; r->method[i] && i < sizeof m - 1; i++)
        m[i] = (char)(r->method[i] + 32);
      m[i] = '\0';
      json_t *op = json_object_get(json_object_get(json_object_get(doc, "paths"), r->name), m);
      assert_non_null(op);
      json_t *sec = json_object_get(op, "security");
      bool open = json_is_array(sec) && json_array_size(sec) == 0;
      if (open == r->auth)
        fail_msg("%s %s: document says %s, router %s", r->method, r->name,
                 open ? "no API key" : "API key", r->auth ? "API key" : "no API key");
    }
  }
  json_decref(doc);
}

/* Every row of the scope table names a route that takes the API key, and
 * each operation's x-scopes in the document lists exactly admin plus the
 * scopes the router lets through; 403 is documented wherever a key can be
 * outside the route's scopes (every route with the API key). */
static void test_scopes_match(void **state)
{
  (void)state;
  json_t *doc = json_loadb(api_openapi_json, api_openapi_json_len, 0, NULL);
  assert_non_null(doc);
  size_t nt, nrows;
  const api_route_t *const *tables = api_route_tables(&nt);
  const api_scope_row_t *rows = api_scope_rows(&nrows);
  for (size_t k = 0; k < nrows; k++) {
    bool found = false;
    for (size_t t = 0; t < nt; t++)
      for (const api_route_t *r = tables[t]; r->method; r++)
        if (!strcmp(r->method, rows[k].method) && !strcmp(r->name, rows[k].name)) {
          found = true;
          if (!r->auth)
            fail_msg("scope row %s %s: the route takes no API key", r->method, r->name);
        }
    if (!found)
      fail_msg("scope row %s %s names no route", rows[k].method, rows[k].name);
  }
  for (size_t t = 0; t < nt; t++) {
    for (const api_route_t *r = tables[t]; r->method; r++) {
      if (!r->auth)
        continue;
      char m[16];
      size_t i;
      for (i = 0; r->method[i] && i < sizeof m - 1; i++)
        m[i] = (char)(r->method[i] + 32);
      m[i] = '\0';
      json_t *op = json_object_get(json_object_get(json_object_get(doc, "paths"), r->name), m);
      assert_non_null(op);
      unsigned want = api_route_scopes(r), got = 0;
      bool admin = false;
      json_t *xs = json_object_get(op, "x-scopes");
      if (!json_is_array(xs))
        fail_msg("%s %s: no x-scopes in docs/openapi.yaml", r->method, r->name);
      size_t j;
      json_t *v;
      json_array_foreach(xs, j, v)
      {
        const char *sn = json_string_value(v);
        assert_non_null(sn);
        if (!strcmp(sn, "admin"))
          admin = true;
        else if (!strcmp(sn, "tokens"))
          got |= API_SCOPE_BIT(API_SCOPE_TOKENS);
        else if (!strcmp(sn, "connect"))
          got |= API_SCOPE_BIT(API_SCOPE_CONNECT);
        else
          fail_msg("%s %s: unknown scope %s in x-scopes", r->method, r->name, sn);
      }
      if (!admin || got != want)
        fail_msg("%s %s: x-scopes differ from the router's (bits %u, document %u%s)", r->method,
                 r->name, want, got, admin ? "" : ", admin missing");
      if (json_object_get(json_object_get(op, "responses"), "403") == NULL)
        fail_msg("%s %s: 403 is not documented", r->method, r->name);
    }
  }
  json_decref(doc);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_same_routes),
    cmocka_unit_test(test_security_matches),
    cmocka_unit_test(test_scopes_match),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
