/*
 * api.h - the v1 HTTP API on top of the connection service.
 *
 * api_handle() is the http_server request handler: it matches the route
 * table (method, path pattern, auth, body limit), checks the API key in
 * constant time for /v1, parses JSON bodies and dispatches to the handler
 * files (api_providers.c, api_connections.c, api_oauth.c, api_ops.c).
 * Errors are mapped to HTTP statuses in one table (router.c) and answered
 * as {"error": code, "message": text}.
 */
#ifndef GRANTD_API_H
#define GRANTD_API_H

#include <stddef.h>

#include "net/http_server.h"
#include "service/svc.h"

typedef struct api api_t;

typedef struct {
  svc_t *svc;                 /* may be NULL until api_set_svc() */
  const char *api_key;        /* copied */
  size_t callback_max_query;  /* bytes of query accepted on /oauth/callback */
  size_t import_max_body;     /* body limit of POST /v1/connections:import */
} api_opts_t;

api_t *api_new(const api_opts_t *opts);
void api_free(api_t *api);

/* Attaches the service (before the loop handles the first request). */
void api_set_svc(api_t *api, svc_t *svc);

/* Marks the service ready (/healthz answers 200) or draining (503). */
void api_set_ready(api_t *api, int ready);

/* The http_server handler; arg is the api_t. */
void api_handle(http_req_t *req, void *arg);

/* The http_server on_headers hook: raises the body limit of the routes
 * that take large bodies (the NDJSON import). */
void api_on_headers(http_req_t *req, void *arg);

#endif
