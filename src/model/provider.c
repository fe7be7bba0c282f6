/*
 * provider.c - provider names, copies and frees (provider.h).
 */
#include "model/provider.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static const char *const auth_names[] = {"basic",           "post",
                                         "private_key_jwt", "client_secret_jwt",
                                         "tls_client_auth", "self_signed_tls_client_auth"};

const char *client_auth_name(client_auth_t a)
{
  return (unsigned)a < ARRAY_SIZE(auth_names) ? auth_names[a] : "unknown";
}

int client_auth_parse(const char *s, client_auth_t *out)
{
  int v = names_find(auth_names, ARRAY_SIZE(auth_names), s);
  if (v < 0)
    return -1;
  *out = (client_auth_t)v;
  return 0;
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
  free(p->template_name);
  strlist_free(&p->template_fields);
  strlist_free(&p->grants);
  kvlist_free(&p->vars);
  free(p->token_member);
  free(p->refresh_url);
  free_secret(p->signing_key);
  free(p->signing_key_id);
  free(p->signing_alg);
  free(p->client_cert);
  free_secret(p->client_cert_key);
  free(p->mtls_token_url);
  free(p->mtls_revoke_url);
  free(p->device_authorization_url);
  free(p->assertion_claims);
  memset(p, 0, sizeof(*p));
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
  dst->template_name = xstrdup(src->template_name);
  strlist_copy(&dst->template_fields, &src->template_fields);
  strlist_copy(&dst->grants, &src->grants);
  kvlist_copy(&dst->vars, &src->vars);
  dst->token_member = xstrdup(src->token_member);
  dst->refresh_url = xstrdup(src->refresh_url);
  dst->signing_key = xstrdup(src->signing_key);
  dst->signing_key_id = xstrdup(src->signing_key_id);
  dst->signing_alg = xstrdup(src->signing_alg);
  dst->client_cert = xstrdup(src->client_cert);
  dst->client_cert_key = xstrdup(src->client_cert_key);
  dst->mtls_token_url = xstrdup(src->mtls_token_url);
  dst->mtls_revoke_url = xstrdup(src->mtls_revoke_url);
  dst->device_authorization_url = xstrdup(src->device_authorization_url);
  dst->assertion_claims = xstrdup(src->assertion_claims);
}
