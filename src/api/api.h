/*
 * api.h - the v1 HTTP API on top of the connection service.
 *
 * api_handle() is the http_server request handler: it matches the route
 * table (method, path pattern, auth, scopes, body limit), checks the API
 * key for /v1 (api_keys.h: 401 unauthorized when no key matches, 403
 * insufficient_scope naming the scopes the route takes when the key's scope
 * is not one of them), parses JSON bodies and dispatches to the handler
 * files (api_providers.c, api_connections.c, api_oauth.c, api_ops.c).
 * Errors are mapped to HTTP statuses in one table (router.c) and answered
 * as {"error": code, "message": text}.
 *
 * Every authenticated request that is not a GET is logged once answered
 * (event "api_write": method, route, status and the key's name, never the
 * key).
 */
#ifndef GRANTD_API_H
#define GRANTD_API_H

#include <stddef.h>

#include "api/api_keys.h"
#include "net/addr_policy.h"
#include "net/http_server.h"
#include "oauth/catalog.h"
#include "service/svc.h"

typedef struct api api_t;

typedef struct {
  svc_t *svc;                /* may be NULL until api_set_svc() */
  api_keyset_t *keys;        /* taken (freed by api_free); not NULL */
  size_t callback_max_query; /* bytes of query accepted on /oauth/callback */
  size_t import_max_body;    /* body limit of POST /v1/connections:import */
  size_t import_max_line;    /* longest import line; 0 = 64 KiB (longer: line_too_long) */
  /* The SSRF guard's policy (borrowed: must outlive the api): provider
   * URLs grantd dials whose host is a forbidden IP literal are refused
   * with 422 endpoint_forbidden. NULL = public addresses only. */
  const addr_policy_t *endpoint_policy;
  /* The provider catalog (borrowed: must outlive the api): GET
   * /v1/catalog and PUT /v1/providers with "template". NULL = empty. */
  const catalog_t *catalog;
  /* Webhook endpoint URLs may be plain http:// (--allow-insecure-http);
   * otherwise PUT /v1/webhooks refuses them with 422 insecure_url. */
  bool allow_insecure_http;
} api_opts_t;

api_t *api_new(const api_opts_t *opts);
void api_free(api_t *api);

/* Attaches the service (before the loop handles the first request). */
void api_set_svc(api_t *api, svc_t *svc);

/* Replaces the keys in use (SIGHUP reload), on the loop thread: requests
 * already authenticated finish under the old key's name; the next request
 * is checked against ks. ks is taken (not NULL); the old set is freed. */
void api_set_keys(api_t *api, api_keyset_t *ks);

/* Marks the service ready (/healthz answers 200) or draining (503). */
void api_set_ready(api_t *api, int ready);

/* The http_server handler; arg is the api_t. */
void api_handle(http_req_t *req, void *arg);

/* The http_server on_headers hook, for requests that announce a body:
 * answers 404/405/401/400 invalid_id at once, without reading the body
 * (http_req_reject: the connection closes after the answer), raises
 * the body limit of the routes that take large bodies, and streams the
 * NDJSON import's body (read and committed line by line, never buffered
 * whole; 503 shutting_down at once while draining). */
void api_on_headers(http_req_t *req, void *arg);

#endif
