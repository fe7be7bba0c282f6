/*
 * api_json.h - JSON <-> record conversion and validation for the v1 API.
 *
 * Parsers take a request body already decoded by jansson and fill a record,
 * or fail with an HTTP-ready error: status (400/422), an `error` code and a
 * message naming the offending field. Renderers never include secrets
 * (client_secret, tokens, passwords); they expose `has_*` booleans instead.
 */
#ifndef GRANTD_API_JSON_H
#define GRANTD_API_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "base/buf.h"
#include "model/connection.h"
#include "model/provider.h"

/* An API error ready for the envelope {"error": code, "message": msg}. */
typedef struct {
  int status;
  const char *code;
  char message[256];
} api_err_t;

/* True when `s` is a valid id or provider name: 1..128 bytes of
 * [A-Za-z0-9._~@:-], and not "." or "..": HTTP clients resolve those path
 * segments away (RFC 3986 section 5.2.4, also when percent-encoded), so
 * such a record could never be addressed again. Every other id in the
 * alphabet is sent by clients as is (unreserved characters only). */
bool api_valid_id(const char *s);
/* The rule above in words, for error messages. */
#define API_ID_RULE \
  "ids and names must be 1-128 characters of A-Z a-z 0-9 . _ ~ @ : - and not '.' or '..'"

/* Fills *p from a PUT /v1/providers/{name} body. Returns 0, or -1 with *e
 * set (422 unknown_field / invalid_field / missing_field). */
int api_provider_from_json(const json_t *body, const char *name, provider_t *p, api_err_t *e);
/* Renders a provider without its secret. New reference. */
json_t *api_provider_to_json(const provider_t *p);

/* Fills *c from a PUT /v1/connections/{id} body (also one NDJSON import
 * line, where the id comes from the body's "id" field when id is NULL). */
int api_conn_from_json(const json_t *body, const char *id, conn_t *c, api_err_t *e);
/* Renders a connection's status and metadata, never its secrets. */
json_t *api_conn_to_json(const conn_t *c);
/* Renders a connection as one line of POST /v1/connections:import accepts,
 * secrets included (grantd export). An authorization-code or imported
 * connection holding tokens becomes an import (grant refresh_token);
 * client-credentials and password connections keep their grant and what
 * fetches a token again (client secret, username and password). Status, errors and timestamps
 * other than token expiry are not part of the import format. */
json_t *api_conn_to_import_json(const conn_t *c);
/* Renders the token answer: access_token, token_type, expires_at, scopes, extra. */
json_t *api_token_to_json(const conn_t *c);
/* The same answer written straight into b as JSON text (the hot path of
 * token reads: no intermediate jansson tree). */
void api_token_render(const conn_t *c, buf_t *b);

/* RFC 3339 string for ms since the epoch, or JSON null for 0. */
json_t *api_time(int64_t ms);

#endif
