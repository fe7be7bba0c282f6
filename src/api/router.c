/*
 * router.c - the route table walk, API-key check, JSON body parsing, the
 * error envelope and the one table that maps error codes to HTTP statuses;
 * see api.h and api_int.h.
 *
 * Routes are data (api_route_t rows in each handler file). A path matches a
 * pattern segment by segment; "{}" captures one percent-decoded segment.
 * When a path matches some route but not its method, the answer is 405 with
 * an Allow header; when nothing matches, 404.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "base/url.h"

static const api_route_t *const tables[] = {
  api_ops_routes,   api_provider_routes, api_catalog_routes, api_connection_routes,
  api_oauth_routes, api_event_routes,    api_webhook_routes,
};

static const double latency_bounds[] = {0.1, 0.25, 0.5, 1,   2.5, 5,    10,
                                        25,  50,   100, 250, 500, 1000, 5000};

api_t *api_new(const api_opts_t *o)
{
  api_t *a = xcalloc(1, sizeof *a);
  a->svc = o->svc;
  a->keys = o->keys;
  a->callback_max_query = o->callback_max_query ? o->callback_max_query : 4096;
  a->import_max_body = o->import_max_body ? o->import_max_body : 64u << 20;
  a->import_max_line = o->import_max_line ? o->import_max_line : 64u << 10;
  a->endpoint_policy = o->endpoint_policy;
  a->catalog = o->catalog;
  a->allow_insecure_http = o->allow_insecure_http;
  metrics_help("grantd_http_requests_total", "API requests by route and status", METRIC_COUNTER);
  metrics_histogram_define("grantd_http_request_ms", "API request latency (ms) by route",
                           latency_bounds, ARRAY_SIZE(latency_bounds));
  return a;
}

void api_free(api_t *a)
{
  if (a == NULL)
    return;
  api_keyset_free(a->keys);
  free(a);
}

void api_set_keys(api_t *a, api_keyset_t *ks)
{
  api_keyset_free(a->keys);
  a->keys = ks;
}

void api_set_svc(api_t *a, svc_t *svc)
{
  a->svc = svc;
}

void api_set_ready(api_t *a, int ready)
{
  /* Ready once after start-up; cleared only when draining for shutdown. */
  if (ready)
    a->ready = true;
  else
    a->shutting_down = true;
}

/* ---- the error table ---- */

typedef struct {
  int err;
  int status;
} err_status_t;

static const err_status_t err_table[] = {
  {GRANTD_ENOT_FOUND, 404},
  {GRANTD_EEXISTS, 409},
  {GRANTD_ECONFLICT, 409},
  {GRANTD_EINVALID, 422},
  {GRANTD_ECONFIG, 422},
  {GRANTD_EREAUTH, 409},
  {GRANTD_EPROVIDER_CONFIG, 409},
  {GRANTD_EUPSTREAM, 502},
  {GRANTD_EBAD_STATE, 400},
  {GRANTD_EDISCOVERY, 502},
  {GRANTD_EMAP_FULL, 507},
  {GRANTD_EDISK_FULL, 507},
  {GRANTD_ESTORE_IO, 503},
  {GRANTD_ESTORE_DECODE, 500},
  {GRANTD_ESTORE_AUTH, 500},
  {GRANTD_ESTORE_VERSION, 500},
  {GRANTD_ESTORE_KEY, 500},
  {GRANTD_ESHUTDOWN, 503},
  {GRANTD_EOVERLOADED, 503},
  {GRANTD_EINSECURE_URL, 422},
  {GRANTD_EENDPOINT_FORBIDDEN, 422},
  {GRANTD_EBAD_URL, 422},
  {GRANTD_EPROVIDER_UNKNOWN, 422},
  {GRANTD_EFILE_NOT_REGULAR, 422},
  {GRANTD_EFILE_TOO_LARGE, 422},
  {GRANTD_EFILE_UNREADABLE, 422},
  {GRANTD_ELIMIT, 409},
};

static int status_for(int err)
{
  for (size_t i = 0; i < ARRAY_SIZE(err_table); i++)
    if (err_table[i].err == err)
      return err_table[i].status;
  /* Anything else is the network or TLS failing towards a provider. */
  return err < 0 ? 502 : 500;
}

/* ---- replies ---- */

static void ctx_free(api_ctx_t *ctx)
{
  free(ctx->params[0]);
  free(ctx->params[1]);
  json_decref(ctx->body);
  if (ctx->query_parsed)
    kvlist_free(&ctx->query);
  free(ctx);
}

/* route="NAME",status="NNN" without printf: this runs on every request. */
static size_t route_labels(char *out, size_t cap, const char *route, int status)
{
  size_t n = strlen(route);
  if (n + 32 > cap)
    n = cap - 32;
  memcpy(out, "route=\"", 7);
  memcpy(out + 7, route, n);
  size_t k = 7 + n;
  if (status > 0) {
    memcpy(out + k, "\",status=\"", 10);
    k += 10;
    out[k++] = (char)('0' + status / 100 % 10);
    out[k++] = (char)('0' + status / 10 % 10);
    out[k++] = (char)('0' + status % 10);
  }
  out[k++] = '"';
  out[k] = '\0';
  return k;
}

void api_reply_raw(api_ctx_t *ctx, int status, const char *content_type, const char *body,
                   size_t len, const char *extra_headers)
{
  char labels[192];
  const char *route = ctx->route ? ctx->route->name : "unmatched";
  const char *method = http_req_method(ctx->req);
  if (ctx->key_name[0] != '\0' && strcmp(method, "GET") != 0)
    log_info("api_write", "method", method, "route", route, "#status", LOG_I64(status), "key_name",
             ctx->key_name);
  route_labels(labels, sizeof labels, route, status);
  metrics_counter_inc("grantd_http_requests_total", labels);
  route_labels(labels, sizeof labels, route, 0);
  metrics_histogram_observe("grantd_http_request_ms", labels,
                            (double)(clock_mono_us() - ctx->start_us) / 1000.0);
  http_respond_ex(ctx->req, status, content_type, body, len, extra_headers);
  ctx_free(ctx);
}

void api_reply_json(api_ctx_t *ctx, int status, json_t *json)
{
  buf_t b = BUF_INIT;
  json_dump_buf(json, &b);
  buf_putc(&b, '\n');
  json_decref(json);
  api_reply_raw(ctx, status, "application/json", b.data, b.len, "Cache-Control: no-store\r\n");
  buf_free(&b);
}

void api_reply_deleted(api_ctx_t *ctx, int err)
{
  if (err != 0) {
    api_reply_err(ctx, err, NULL);
    return;
  }
  json_t *o = json_object();
  json_object_set_new(o, "deleted", json_true());
  json_object_set_new(o, "name", json_string(ctx->params[0]));
  api_reply_json(ctx, 200, o);
}

static json_t *error_body(const char *code, const char *msg)
{
  json_t *o = json_object();
  json_object_set_new(o, "error", json_string(code));
  json_object_set_new(o, "message", json_string(msg));
  return o;
}

void api_reply_error(api_ctx_t *ctx, int status, const char *code, const char *msg)
{
  api_reply_json(ctx, status, error_body(code, msg));
}

void api_reply_api_err(api_ctx_t *ctx, const api_err_t *e)
{
  api_reply_error(ctx, e->status, e->code, e->message);
}

void api_reply_err(api_ctx_t *ctx, int err, const conn_t *c)
{
  int status = status_for(err);
  json_t *o = error_body(err_name(err), err_str(err));
  if (c != NULL) {
    json_t *cj = api_conn_to_json(c);
    json_object_set(o, "status", json_object_get(cj, "status"));
    json_object_set(o, "last_error", json_object_get(cj, "last_error"));
    json_decref(cj);
    if (c->last_error_message &&
        (err == GRANTD_EUPSTREAM || err == GRANTD_EREAUTH || err == GRANTD_EPROVIDER_CONFIG)) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s: %s", err_str(err), c->last_error_message);
      json_object_set_new(o, "message", json_string(msg));
    }
  }
  if (status >= 500 && status != 502)
    log_warn("api_error", "route", ctx->route ? ctx->route->name : "", "code", err_name(err));
  api_reply_json(ctx, status, o);
}

/* ---- query ---- */

static int parse_query(api_ctx_t *ctx)
{
  if (ctx->query_parsed)
    return ctx->query_ok ? 0 : -1;
  ctx->query_parsed = true;
  ctx->query_ok = false;
  const char *q = http_req_query(ctx->req);
  if (q == NULL || *q == '\0') {
    ctx->query_ok = true;
    return 0;
  }
  form_t f = FORM_INIT;
  if (form_parse(q, strlen(q), &f) != 0)
    return -1;
  for (size_t i = 0; i < f.n; i++)
    kvlist_push(&ctx->query, f.items[i].key, f.items[i].val);
  form_free(&f);
  ctx->query_ok = true;
  return 0;
}

const char *api_query(api_ctx_t *ctx, const char *key)
{
  if (parse_query(ctx) != 0)
    return NULL;
  return kvlist_get(&ctx->query, key);
}

const kvlist_t *api_query_all(api_ctx_t *ctx)
{
  return parse_query(ctx) == 0 ? &ctx->query : NULL;
}

/* ---- matching ---- */

/* Matches path against pattern; on success fills up to two decoded
 * captures (heap strings). Literal segments are compared first and nothing
 * is allocated for patterns that do not match. */
static bool match(const char *pattern, const char *path, size_t plen, char **caps)
{
  const char *p = pattern, *s = path, *end = path + plen;
  slice_t span[2];
  int ncap = 0;
  while (*p && s < end) {
    if (p[0] == '{' && p[1] == '}') {
      const char *seg_end = s;
      while (seg_end < end && *seg_end != '/')
        seg_end++;
      if (seg_end == s || ncap >= 2)
        return false;
      span[ncap].p = s;
      span[ncap].n = (size_t)(seg_end - s);
      ncap++;
      s = seg_end;
      p += 2;
      continue;
    }
    if (*p != *s)
      return false;
    p++;
    s++;
  }
  if (*p != '\0' || s != end)
    return false;
  /* A capture that does not decode (bad %XX, NUL) is kept raw: the route
   * still matches and the handler's id check answers 400, not 404. */
  for (int i = 0; i < ncap; i++) {
    buf_t d = BUF_INIT;
    if (url_decode(&d, span[i].p, span[i].n, URL_DEC_STRICT) != 0) {
      buf_reset(&d);
      buf_append(&d, span[i].p, span[i].n);
    }
    caps[i] = buf_steal(&d);
  }
  return true;
}

/* The key of the Authorization header: true with *name and *scope of the
 * matching key (api_keys.h); false when there is none or none matches. */
static bool auth_key(const api_t *a, http_req_t *req, const char **name, api_scope_t *scope)
{
  const char *h = http_req_header(req, "authorization");
  if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
    return false;
  h += 7;
  while (*h == ' ')
    h++;
  return api_keyset_match(a->keys, h, strlen(h), name, scope);
}

/* "admin", "admin or tokens", "admin, tokens or connect": the scopes a
 * route takes. */
static void scopes_text(unsigned scopes, char *out, size_t cap)
{
  const char *v[API_SCOPE_COUNT];
  size_t n = 0;
  v[n++] = api_scope_name(API_SCOPE_ADMIN);
  for (int s = 1; s < API_SCOPE_COUNT; s++)
    if (scopes & API_SCOPE_BIT(s))
      v[n++] = api_scope_name((api_scope_t)s);
  size_t k = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
    k += (size_t)snprintf(out + k, k < cap ? cap - k : 0, "%s%s", sep, v[i]);
    if (k >= cap)
      break;
  }
}

/* Like api_reply_error() with extra header lines. */
static void reply_error_ex(api_ctx_t *ctx, int status, const char *code, const char *msg,
                           const char *extra)
{
  json_t *o = error_body(code, msg);
  buf_t b = BUF_INIT;
  json_dump_buf(o, &b);
  buf_putc(&b, '\n');
  json_decref(o);
  api_reply_raw(ctx, status, "application/json", b.data, b.len, extra);
  buf_free(&b);
}

/* The route of method + path: the matching row (its captures decoded into
 * caps, heap strings), or NULL; then *path_known says whether some other
 * method matches the path, and `allow` lists those methods. */
static const api_route_t *route_find(const char *method, const char *path, char **caps,
                                     bool *path_known, char *allow, size_t allow_cap)
{
  size_t plen = strlen(path);
  *path_known = false;
  allow[0] = '\0';
  for (size_t t = 0; t < ARRAY_SIZE(tables); t++) {
    for (const api_route_t *r = tables[t]; r->method; r++) {
      if (!match(r->pattern, path, plen, caps))
        continue;
      if (!strcmp(r->method, method))
        return r;
      *path_known = true;
      if (strlen(allow) + strlen(r->method) + 3 < allow_cap) {
        if (allow[0])
          strcat(allow, ", ");
        strcat(allow, r->method);
      }
      free(caps[0]);
      free(caps[1]);
      caps[0] = caps[1] = NULL;
    }
  }
  return NULL;
}

/* The answers every request can get before its body is read: no route
 * (404), wrong method (405), missing or wrong API key (401), a key whose
 * scope the route does not take (403), a malformed id (400). Returns 0
 * when none applies, with key_name set (the key's name, "" for a route
 * without auth); otherwise fills the answer. */
typedef struct {
  int status;
  const char *code, *msg;
  char extra[96];
  char msgbuf[160];
} early_t;

static int early_answer(api_t *a, http_req_t *req, const api_route_t *found, bool path_known,
                        const char *allow, char *const *caps, early_t *e,
                        char key_name[API_KEY_NAME_MAX + 1])
{
  e->extra[0] = '\0';
  key_name[0] = '\0';
  if (found == NULL && path_known) {
    e->status = 405;
    e->code = "method_not_allowed";
    e->msg = "this method is not allowed on this path";
    snprintf(e->extra, sizeof e->extra, "Allow: %s\r\n", allow);
    return -1;
  }
  if (found == NULL) {
    e->status = 404;
    e->code = "not_found";
    e->msg = "no such route";
    return -1;
  }
  const char *name = NULL;
  api_scope_t scope = API_SCOPE_ADMIN;
  if (found->auth && !auth_key(a, req, &name, &scope)) {
    e->status = 401;
    e->code = "unauthorized";
    e->msg = "missing or wrong API key";
    snprintf(e->extra, sizeof e->extra, "WWW-Authenticate: Bearer realm=\"grantd\"\r\n");
    return -1;
  }
  if (found->auth && scope != API_SCOPE_ADMIN &&
      !(api_route_scopes(found) & API_SCOPE_BIT(scope))) {
    char want[64];
    scopes_text(api_route_scopes(found), want, sizeof want);
    snprintf(e->msgbuf, sizeof e->msgbuf,
             "this route needs an API key with scope %s; key '%s' has %s", want, name,
             api_scope_name(scope));
    log_warn("api_forbidden", "method", http_req_method(req), "route", found->name, "key_name",
             name, "scope", api_scope_name(scope));
    e->status = 403;
    e->code = "insufficient_scope";
    e->msg = e->msgbuf;
    snprintf(e->extra, sizeof e->extra,
             "WWW-Authenticate: Bearer realm=\"grantd\", error=\"insufficient_scope\"\r\n");
    return -1;
  }
  for (int i = 0; i < 2; i++) {
    if (caps[i] != NULL && !api_valid_id(caps[i])) {
      e->status = 400;
      e->code = "invalid_id";
      e->msg = API_ID_RULE;
      return -1;
    }
  }
  if (name != NULL)
    snprintf(key_name, API_KEY_NAME_MAX + 1, "%s", name);
  return 0;
}

static void count_reply(const api_route_t *route, int status)
{
  char labels[192];
  route_labels(labels, sizeof labels, route ? route->name : "unmatched", status);
  metrics_counter_inc("grantd_http_requests_total", labels);
}

void api_on_headers(http_req_t *req, void *arg)
{
  api_t *a = arg;
  if (!http_req_has_body(req))
    return; /* nothing to hold back: api_handle does all (token reads) */
  char *caps[2] = {NULL, NULL};
  bool path_known;
  char allow[64];
  const api_route_t *found =
    route_find(http_req_method(req), http_req_path(req), caps, &path_known, allow, sizeof allow);
  early_t e;
  char key_name[API_KEY_NAME_MAX + 1];
  /* A request with a body that will be refused anyway is refused now,
   * before its body is read (an unauthenticated client must not make
   * grantd buffer an import); without a body, api_handle answers the
   * same way and the connection stays open. */
  if (early_answer(a, req, found, path_known, allow, caps, &e, key_name) != 0) {
    json_t *o = error_body(e.code, e.msg);
    buf_t b = BUF_INIT;
    json_dump_buf(o, &b);
    buf_putc(&b, '\n');
    json_decref(o);
    count_reply(found, e.status);
    http_req_reject(req, e.status, "application/json", b.data, b.len, e.extra[0] ? e.extra : NULL);
    buf_free(&b);
  } else if (found != NULL && found->body_limit == API_BODY_IMPORT) {
    if (a->shutting_down) {
      static const char busy[] =
        "{\"error\":\"shutting_down\",\"message\":\"grantd is shutting down\"}\n";
      count_reply(found, 503);
      http_req_reject(req, 503, "application/json", busy, sizeof busy - 1, NULL);
    } else {
      http_req_set_body_limit(req, a->import_max_body);
      api_import_begin(a, req); /* read and committed as it arrives */
    }
  } else if (found != NULL && found->body_limit != 0) {
    http_req_set_body_limit(req, found->body_limit);
  }
  free(caps[0]);
  free(caps[1]);
}

void api_handle(http_req_t *req, void *arg)
{
  api_t *a = arg;
  char *caps[2] = {NULL, NULL};
  bool path_known;
  char allow[64];

  a->requests++;
  const api_route_t *found =
    route_find(http_req_method(req), http_req_path(req), caps, &path_known, allow, sizeof allow);
  api_ctx_t *ctx = xcalloc(1, sizeof *ctx);
  ctx->api = a;
  ctx->req = req;
  ctx->route = found;
  ctx->params[0] = caps[0];
  ctx->params[1] = caps[1];
  ctx->start_us = clock_mono_us();
  early_t e;
  if (early_answer(a, req, found, path_known, allow, caps, &e, ctx->key_name) != 0) {
    reply_error_ex(ctx, e.status, e.code, e.msg, e.extra[0] ? e.extra : NULL);
    return;
  }
  /* A streamed import that began before the drain has committed lines:
   * it is answered with their results (api_import.c). */
  bool streamed = found->body_limit == API_BODY_IMPORT && http_req_data(req) != NULL;
  if (a->shutting_down && !streamed && found->fn != NULL && strcmp(found->name, "/healthz") != 0 &&
      strcmp(found->name, "/metrics") != 0) {
    api_reply_error(ctx, 503, "shutting_down", "grantd is shutting down");
    return;
  }
  if (found->json_body) {
    size_t len;
    const char *body = http_req_body(req, &len);
    if (len == 0 && found->json_body == 2) {
      ctx->body = NULL;
    } else if (len == 0) {
      api_reply_error(ctx, 400, "invalid_json", "a JSON object body is required");
      return;
    } else if (json_parse(body, len, &ctx->body) != 0 || !json_is_object(ctx->body)) {
      api_reply_error(ctx, 400, "invalid_json", "the request body is not a valid JSON object");
      return;
    }
  }
  found->fn(ctx);
}

const api_route_t *const *api_route_tables(size_t *n)
{
  *n = ARRAY_SIZE(tables);
  return tables;
}
