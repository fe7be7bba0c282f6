/*
 * connection.c - connection names, copies and frees (connection.h).
 */
#include "model/connection.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static const char *const grant_names[] = {
  "authorization_code", "client_credentials", "password",       "refresh_token",
  "device_code",        "jwt_bearer",         "token_exchange",
};
static const char *const status_names[] = {
  "pending", "active", "refresh_failing", "needs_reauth", "error", "revoked",
};

const char *grant_name(grant_t g)
{
  return (unsigned)g < ARRAY_SIZE(grant_names) ? grant_names[g] : "unknown";
}

int grant_parse(const char *s, grant_t *out)
{
  int v = names_find(grant_names, ARRAY_SIZE(grant_names), s);
  if (v < 0)
    return -1;
  *out = (grant_t)v;
  return 0;
}

const char *conn_status_name(conn_status_t s)
{
  return (unsigned)s < ARRAY_SIZE(status_names) ? status_names[s] : "unknown";
}

int conn_status_parse(const char *s, conn_status_t *out)
{
  int v = names_find(status_names, ARRAY_SIZE(status_names), s);
  if (v < 0)
    return -1;
  *out = (conn_status_t)v;
  return 0;
}

void conn_free(conn_t *c)
{
  free(c->id);
  free(c->tenant);
  free(c->provider);
  strlist_free(&c->scopes);
  free_secret(c->access_token);
  free_secret(c->refresh_token);
  free(c->token_type);
  free_secret(c->extra_json);
  free(c->client_id);
  free_secret(c->client_secret);
  free(c->username);
  free_secret(c->password);
  free(c->metadata_json);
  kvlist_free(&c->vars);
  free(c->token_member);
  free_secret(c->device_code);
  free(c->user_code);
  free(c->verification_uri);
  free(c->verification_uri_complete);
  free_secret(c->signing_key);
  free(c->signing_key_id);
  free(c->signing_alg);
  free(c->assertion_claims);
  free_secret(c->subject_token);
  free(c->subject_token_type);
  free(c->subject_connection);
  free_secret(c->actor_token);
  free(c->actor_token_type);
  strlist_free(&c->audience);
  strlist_free(&c->resource);
  free(c->requested_token_type);
  free(c->last_error_code);
  free(c->last_error_message);
  memset(c, 0, sizeof(*c));
}

void conn_copy(conn_t *dst, const conn_t *src)
{
  *dst = *src;
  dst->id = xstrdup(src->id);
  dst->tenant = xstrdup(src->tenant);
  dst->provider = xstrdup(src->provider);
  strlist_copy(&dst->scopes, &src->scopes);
  dst->access_token = xstrdup(src->access_token);
  dst->refresh_token = xstrdup(src->refresh_token);
  dst->token_type = xstrdup(src->token_type);
  dst->extra_json = xstrdup(src->extra_json);
  dst->client_id = xstrdup(src->client_id);
  dst->client_secret = xstrdup(src->client_secret);
  dst->username = xstrdup(src->username);
  dst->password = xstrdup(src->password);
  dst->metadata_json = xstrdup(src->metadata_json);
  kvlist_copy(&dst->vars, &src->vars);
  dst->token_member = xstrdup(src->token_member);
  dst->device_code = xstrdup(src->device_code);
  dst->user_code = xstrdup(src->user_code);
  dst->verification_uri = xstrdup(src->verification_uri);
  dst->verification_uri_complete = xstrdup(src->verification_uri_complete);
  dst->signing_key = xstrdup(src->signing_key);
  dst->signing_key_id = xstrdup(src->signing_key_id);
  dst->signing_alg = xstrdup(src->signing_alg);
  dst->assertion_claims = xstrdup(src->assertion_claims);
  dst->subject_token = xstrdup(src->subject_token);
  dst->subject_token_type = xstrdup(src->subject_token_type);
  dst->subject_connection = xstrdup(src->subject_connection);
  dst->actor_token = xstrdup(src->actor_token);
  dst->actor_token_type = xstrdup(src->actor_token_type);
  strlist_copy(&dst->audience, &src->audience);
  strlist_copy(&dst->resource, &src->resource);
  dst->requested_token_type = xstrdup(src->requested_token_type);
  dst->last_error_code = xstrdup(src->last_error_code);
  dst->last_error_message = xstrdup(src->last_error_message);
}
