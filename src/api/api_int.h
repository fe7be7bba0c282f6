/*
 * api_int.h - what the API handler files share: the per-request context,
 * reply helpers and the one error-mapping table (router.c).
 *
 * A request's context is allocated when the route matches and freed by the
 * reply helper, so each handler replies exactly once, now or from a service
 * callback later. When the client went away meanwhile, the reply is
 * dropped by the server but the context is still freed here.
 */
#ifndef GRANTD_API_INT_H
#define GRANTD_API_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "api/api_json.h"
#include "base/err.h"
#include "net/http_server.h"
#include "service/svc.h"

#define API_BODY_IMPORT ((size_t)-1)

typedef struct api_ctx api_ctx_t;
typedef void (*api_handler_fn)(api_ctx_t *ctx);

typedef struct {
  const char *method;
  const char *pattern; /* segments; "{}" captures one path segment */
  bool auth;           /* needs the API key */
  int json_body;       /* 0 = no JSON body; 1 = a JSON object is required; 2 = optional */
  size_t body_limit;   /* 0 = the server default; API_BODY_IMPORT = the import limit */
  api_handler_fn fn;
  const char *name; /* route label for metrics */
} api_route_t;

/* The scopes besides admin whose keys may use a route (API_SCOPE_BIT of
 * api_keys.h, OR-ed), from the one table in api_scopes.c keyed by method
 * and label; 0 = admin only, which every route not listed there gets. */
unsigned api_route_scopes(const api_route_t *r);

/* The rows of that table, for the test that each names a real route. */
typedef struct {
  const char *method;
  const char *name; /* api_route_t.name */
  unsigned scopes;
} api_scope_row_t;
const api_scope_row_t *api_scope_rows(size_t *n);

struct api {
  svc_t *svc;
  api_keyset_t *keys; /* owned; swapped by api_set_keys */
  size_t callback_max_query;
  size_t import_max_body;
  size_t import_max_line;
  const addr_policy_t *endpoint_policy; /* borrowed; NULL = public only */
  const catalog_t *catalog;             /* borrowed; NULL = empty */
  bool allow_insecure_http;             /* webhook URLs may be http:// */
  bool ready;
  bool shutting_down;
  uint64_t requests;
};

struct api_ctx {
  api_t *api;
  http_req_t *req;
  const api_route_t *route;
  char *params[2]; /* decoded path captures */
  json_t *body;    /* parsed JSON body when route->json_body */
  int64_t start_us;
  kvlist_t query; /* decoded query, parsed on first use */
  bool query_parsed;
  bool query_ok;
  char key_name[API_KEY_NAME_MAX + 1]; /* the API key's name; "" without auth */
};

/* Decoded query parameter (first occurrence) or NULL. Memory lives as long
 * as the context. */
const char *api_query(api_ctx_t *ctx, const char *key);
/* Every decoded query parameter. */
const kvlist_t *api_query_all(api_ctx_t *ctx);

/* Replies and frees ctx. json is consumed. */
void api_reply_json(api_ctx_t *ctx, int status, json_t *json);
/* The answer of a DELETE by name: err != 0 replies as api_reply_err,
 * else 200 {"deleted": true, "name": the path's first parameter}. Frees ctx. */
void api_reply_deleted(api_ctx_t *ctx, int err);
/* Replies {"error": code, "message": msg} and frees ctx. */
void api_reply_error(api_ctx_t *ctx, int status, const char *code, const char *msg);
/* Maps an error code through the one table (status + code + message) and
 * replies; with a connection record, its status and last_error are added. */
void api_reply_err(api_ctx_t *ctx, int err, const conn_t *c);
void api_reply_api_err(api_ctx_t *ctx, const api_err_t *e);
/* Replies with a raw body and optional extra header lines
 * ("Name: value\r\n" ...), then frees ctx. */
void api_reply_raw(api_ctx_t *ctx, int status, const char *content_type, const char *body,
                   size_t len, const char *extra_headers);

/* The route tables of each handler file. */
extern const api_route_t api_provider_routes[];
/* Every route table the router walks, in order; *n gets their number. */
const api_route_t *const *api_route_tables(size_t *n);
/* docs/openapi.yaml as compact JSON (generated at build time). */
extern const char api_openapi_json[];
extern const size_t api_openapi_json_len;
extern const api_route_t api_connection_routes[];
extern const api_route_t api_oauth_routes[];
extern const api_route_t api_ops_routes[];
extern const api_route_t api_catalog_routes[];
extern const api_route_t api_event_routes[];
extern const api_route_t api_webhook_routes[];

/* POST /v1/connections:import, streamed (api_import.c). From
 * api_on_headers, for an import whose route, method and key are good:
 * attaches the import to req (http_req_set_data) and takes its body as it
 * arrives (http_req_stream_body). api_import_handle is the route's handler
 * (the body is complete): it answers once every line's write finished;
 * without api_import_begin it reads the buffered body the same way. */
typedef struct api_import api_import_t;
void api_import_begin(api_t *a, http_req_t *req);
void api_import_handle(api_ctx_t *ctx);

/* The template half of PUT /v1/providers/{name} (api_catalog.c). Without a
 * "template" member: returns 0 with *merged NULL. With one: *merged (new
 * reference) is the template's provider fields and grants overlaid by the
 * body's other members (explicit fields win), *tpl the template (borrowed
 * from the catalog), and `from` gets the names of the fields that came
 * from the template. Returns -1 with *e set: 422 unknown_template (the
 * message lists close names), grant_conflict (an explicit grant the
 * template does not support) or invalid_field. */
int api_template_merge(const api_t *api, const json_t *body, json_t **merged, const json_t **tpl,
                       strlist_t *from, api_err_t *e);

/* Template URL variables (api_vars.c); each returns 0, or -1 with *e set
 * to a 422 that names the variable (and its rule).
 *
 * api_provider_vars_fix: the "vars" member of a provider PUT made from
 * template tpl (merged is api_template_merge()'s result) fixes those
 * variables for the whole provider: each must be a template variable
 * (unknown_variable) with a value its rule admits (invalid_variable); the
 * values are written into merged's URLs and "vars" is removed. No-op
 * without a template or a "vars" member.
 *
 * api_provider_vars_keep: after the provider is parsed, every placeholder
 * left in its URLs must be a variable of tpl (NULL = none: invalid_field),
 * the issuer must have none (it is needed at once for discovery:
 * missing_variable), and p->vars gets the spec of each variable still in a
 * URL, in the template's order: its connections must give those.
 *
 * api_conn_vars_check: the connection's "vars" member of body, checked
 * against its provider's variables (unknown_variable, invalid_variable,
 * missing_variable), go to c->vars; the expanded token and revocation
 * URLs must pass the endpoint policy (endpoint_forbidden). An unknown
 * provider passes (the service answers it). */
int api_provider_vars_fix(const json_t *tpl, json_t *merged, api_err_t *e);
int api_provider_vars_keep(const json_t *tpl, provider_t *p, api_err_t *e);
int api_conn_vars_check(const api_t *api, const json_t *body, conn_t *c, api_err_t *e);

/* api_connections.c: a token_exchange connection's subject_connection
 * must exist, be of the same tenant unless body has "allow_cross_tenant":
 * true (422 cross_tenant_source), and not take its own subject token from
 * a connection. Returns 0, or -1 with *e set (422). */
int api_conn_exchange_check(const api_t *api, const json_t *body, const conn_t *c, api_err_t *e);

#endif
