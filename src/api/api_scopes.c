/*
 * api_scopes.c - which API-key scopes reach which route (api_keys.h).
 *
 * admin reaches every route. The rows below add the other scopes, by
 * method and route label (api_route_t.name), and agree with the x-scopes
 * of docs/openapi.yaml (the routes unit test checks both ways). A route
 * not listed is admin only, so a new route is closed until it is added.
 *
 *   tokens   what a worker needs: read a connection's token, force a
 *            refresh of it, read connection status (one or a list)
 *   connect  what a "Connect" button's backend needs: create a
 *            connection, get its authorization URL, read its status
 */
#include <string.h>

#include "api/api_int.h"
#include "base/mem.h"

#define TOK API_SCOPE_BIT(API_SCOPE_TOKENS)
#define CON API_SCOPE_BIT(API_SCOPE_CONNECT)

static const api_scope_row_t rows[] = {
  {"GET", "/v1/connections/{id}/token", TOK},
  {"POST", "/v1/connections/{id}/refresh", TOK},
  {"GET", "/v1/connections", TOK},
  {"GET", "/v1/connections/{id}", TOK | CON},
  {"PUT", "/v1/connections/{id}", CON},
  {"POST", "/v1/connections/{id}/authorize", CON},
};

unsigned api_route_scopes(const api_route_t *r)
{
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
    if (!strcmp(rows[i].name, r->name) && !strcmp(rows[i].method, r->method))
      return rows[i].scopes;
  return 0;
}

const api_scope_row_t *api_scope_rows(size_t *n)
{
  *n = ARRAY_SIZE(rows);
  return rows;
}
