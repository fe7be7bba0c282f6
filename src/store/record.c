/*
 * record.c - the in-memory side of record.h: enum names, string lists,
 * freeing (with secrets wiped) and deep copies. The msgpack codecs live in
 * record_codec.c.
 */
#include "store/record.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static const char *const grant_names[] = {
  "authorization_code", "client_credentials", "password", "refresh_token",
};
static const char *const status_names[] = {
  "pending", "active", "refresh_failing", "needs_reauth", "error", "revoked",
};
static const char *const auth_names[] = {"basic", "post"};

static int parse_name(const char *const *names, size_t n, const char *s, int *out)
{
  if (s == NULL)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(names[i], s) == 0) {
      *out = (int)i;
      return 0;
    }
  }
  return -1;
}

const char *grant_name(grant_t g)
{
  return (unsigned)g < ARRAY_SIZE(grant_names) ? grant_names[g] : "unknown";
}

int grant_parse(const char *s, grant_t *out)
{
  int v;
  if (parse_name(grant_names, ARRAY_SIZE(grant_names), s, &v) != 0)
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
  int v;
  if (parse_name(status_names, ARRAY_SIZE(status_names), s, &v) != 0)
    return -1;
  *out = (conn_status_t)v;
  return 0;
}

const char *client_auth_name(client_auth_t a)
{
  return (unsigned)a < ARRAY_SIZE(auth_names) ? auth_names[a] : "unknown";
}

int client_auth_parse(const char *s, client_auth_t *out)
{
  int v;
  if (parse_name(auth_names, ARRAY_SIZE(auth_names), s, &v) != 0)
    return -1;
  *out = (client_auth_t)v;
  return 0;
}

void strlist_free(strlist_t *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->items[i]);
  free(l->items);
  l->items = NULL;
  l->n = 0;
}

void strlist_push(strlist_t *l, const char *s)
{
  l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
  l->items[l->n++] = xstrdup(s);
}

static void strlist_copy(strlist_t *dst, const strlist_t *src)
{
  dst->items = NULL;
  dst->n = 0;
  for (size_t i = 0; i < src->n; i++)
    strlist_push(dst, src->items[i]);
}

void kvlist_free(kvlist_t *l)
{
  for (size_t i = 0; i < l->n; i++) {
    free(l->items[i].key);
    free(l->items[i].value);
  }
  free(l->items);
  l->items = NULL;
  l->n = 0;
}

void kvlist_push(kvlist_t *l, const char *k, const char *v)
{
  l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
  l->items[l->n].key = xstrdup(k);
  l->items[l->n].value = xstrdup(v);
  l->n++;
}

const char *kvlist_get(const kvlist_t *l, const char *k)
{
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->items[i].key, k) == 0)
      return l->items[i].value;
  return NULL;
}

static void kvlist_copy(kvlist_t *dst, const kvlist_t *src)
{
  dst->items = NULL;
  dst->n = 0;
  for (size_t i = 0; i < src->n; i++)
    kvlist_push(dst, src->items[i].key, src->items[i].value);
}

void provider_free(provider_t *p)
{
  free(p->name);
  free(p->issuer);
  free(p->authorize_url);
  free(p->token_url);
  free(p->revoke_url);
  free(p->client_id);
  free_secret(p->client_secret);
  strlist_free(&p->scopes);
  free(p->scope_separator);
  free(p->redirect_uri);
  kvlist_free(&p->authorize_params);
  kvlist_free(&p->token_params);
  kvlist_free(&p->refresh_params);
  free(p->ca_file);
  strlist_free(&p->pkce_methods);
  strlist_free(&p->auth_methods);
  memset(p, 0, sizeof(*p));
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
  free(c->extra_json);
  free(c->client_id);
  free_secret(c->client_secret);
  free(c->username);
  free_secret(c->password);
  free(c->metadata_json);
  free(c->last_error_code);
  free(c->last_error_message);
  memset(c, 0, sizeof(*c));
}

void state_rec_free(state_rec_t *s)
{
  free(s->state);
  free(s->conn_id);
  free_secret(s->code_verifier);
  free(s->redirect_after);
  strlist_free(&s->scopes);
  free(s->redirect_uri);
  memset(s, 0, sizeof(*s));
}

void provider_copy(provider_t *dst, const provider_t *src)
{
  *dst = *src; /* scalars; every owned pointer is replaced below */
  dst->name = xstrdup(src->name);
  dst->issuer = xstrdup(src->issuer);
  dst->authorize_url = xstrdup(src->authorize_url);
  dst->token_url = xstrdup(src->token_url);
  dst->revoke_url = xstrdup(src->revoke_url);
  dst->client_id = xstrdup(src->client_id);
  dst->client_secret = xstrdup(src->client_secret);
  strlist_copy(&dst->scopes, &src->scopes);
  dst->scope_separator = xstrdup(src->scope_separator);
  dst->redirect_uri = xstrdup(src->redirect_uri);
  kvlist_copy(&dst->authorize_params, &src->authorize_params);
  kvlist_copy(&dst->token_params, &src->token_params);
  kvlist_copy(&dst->refresh_params, &src->refresh_params);
  dst->ca_file = xstrdup(src->ca_file);
  strlist_copy(&dst->pkce_methods, &src->pkce_methods);
  strlist_copy(&dst->auth_methods, &src->auth_methods);
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
  dst->last_error_code = xstrdup(src->last_error_code);
  dst->last_error_message = xstrdup(src->last_error_message);
}

void state_rec_copy(state_rec_t *dst, const state_rec_t *src)
{
  *dst = *src;
  dst->state = xstrdup(src->state);
  dst->conn_id = xstrdup(src->conn_id);
  dst->code_verifier = xstrdup(src->code_verifier);
  dst->redirect_after = xstrdup(src->redirect_after);
  strlist_copy(&dst->scopes, &src->scopes);
  dst->redirect_uri = xstrdup(src->redirect_uri);
}
