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
  const char *pattern;   /* segments; "{}" captures one path segment */
  bool auth;             /* needs the API key */
  int json_body;         /* 0 = no JSON body; 1 = a JSON object is required; 2 = optional */
  size_t body_limit;     /* 0 = the server default; API_BODY_IMPORT = the import limit */
  api_handler_fn fn;
  const char *name;      /* route label for metrics */
} api_route_t;

struct api {
  svc_t *svc;
  char *api_key;
  size_t api_key_len;
  size_t callback_max_query;
  size_t import_max_body;
  bool ready;
  bool shutting_down;
  uint64_t requests;
};

struct api_ctx {
  api_t *api;
  http_req_t *req;
  const api_route_t *route;
  char *params[2];       /* decoded path captures */
  json_t *body;          /* parsed JSON body when route->json_body */
  int64_t start_us;
  kvlist_t query;        /* decoded query, parsed on first use */
  bool query_parsed;
  bool query_ok;
};

/* Decoded query parameter (first occurrence) or NULL. Memory lives as long
 * as the context. */
const char *api_query(api_ctx_t *ctx, const char *key);
/* Every decoded query parameter. */
const kvlist_t *api_query_all(api_ctx_t *ctx);

/* Replies and frees ctx. json is consumed. */
void api_reply_json(api_ctx_t *ctx, int status, json_t *json);
/* Replies {"error": code, "message": msg} and frees ctx. */
void api_reply_error(api_ctx_t *ctx, int status, const char *code, const char *msg);
/* Maps an error code through the one table (status + code + message) and
 * replies; with a connection record, its status and last_error are added. */
void api_reply_err(api_ctx_t *ctx, int err, const conn_t *c);
void api_reply_api_err(api_ctx_t *ctx, const api_err_t *e);
/* Replies with a raw body and optional extra header lines
 * ("Name: value\r\n" ...), then frees ctx. */
void api_reply_raw(api_ctx_t *ctx, int status, const char *content_type,
                   const char *body, size_t len, const char *extra_headers);

/* The route tables of each handler file. */
extern const api_route_t api_provider_routes[];
extern const api_route_t api_connection_routes[];
extern const api_route_t api_oauth_routes[];
extern const api_route_t api_ops_routes[];

#endif
