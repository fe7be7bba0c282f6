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
#include "store/record.h"

/* An API error ready for the envelope {"error": code, "message": msg}. */
typedef struct {
  int status;
  const char *code;
  char message[256];
} api_err_t;

/* True when `s` is a valid id or provider name: 1..128 bytes of
 * [A-Za-z0-9._~@:-]. */
bool api_valid_id(const char *s);

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
/* Renders the token answer: access_token, token_type, expires_at, scopes, extra. */
json_t *api_token_to_json(const conn_t *c);
/* The same answer written straight into b as JSON text (the hot path of
 * token reads: no intermediate jansson tree). */
void api_token_render(const conn_t *c, buf_t *b);

/* RFC 3339 string for ms since the epoch, or JSON null for 0. */
json_t *api_time(int64_t ms);

#endif
