/*
 * api_providers.c - PUT/GET/DELETE /v1/providers/{name} and GET /v1/providers.
 *
 * client_secret is write-only: accepted on PUT, rendered as has_client_secret.
 * A PUT replaces the whole provider; when the body names an issuer but no
 * token_url, the service discovers the endpoints first (RFC 8414).
 * GET /v1/providers/{name}/jwks publishes the public half of the provider's
 * signing_key as a JWK Set (RFC 7517 section 5), for registration at the
 * provider (private_key_jwt's jwks or jwks_uri).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "base/buf.h"
#include "base/mem.h"
#include "oauth/jws.h"

static void put_done(void *arg, int err, const provider_t *p)
{
  api_ctx_t *ctx = arg;
  const char *ca = json_string_value(json_object_get(ctx->body, "ca_file"));
  if (ca != NULL && (err == GRANTD_EFILE_NOT_REGULAR || err == GRANTD_EFILE_TOO_LARGE ||
                     err == GRANTD_EFILE_UNREADABLE || err == GRANTD_ECONFIG)) {
    /* The service could not use the provider's ca_file: say which problem. */
    char msg[400];
    snprintf(msg, sizeof msg, "ca_file '%.200s': %s", ca,
             err == GRANTD_ECONFIG           ? "holds no usable PEM certificate"
             : err == GRANTD_EFILE_TOO_LARGE ? "is larger than 1 MiB"
                                             : err_str(err));
    api_reply_error(ctx, 422, err == GRANTD_ECONFIG ? "invalid_ca_file" : err_name(err), msg);
    return;
  }
  if (err != 0) {
    api_reply_err(ctx, err, NULL);
    return;
  }
  api_reply_json(ctx, 200, api_provider_to_json(p));
}

/* The SSRF guard's early half: a URL grantd dials (token, revocation,
 * discovery) whose host is an IP literal the endpoint policy forbids is
 * refused now rather than at the first connect. Names are checked when
 * they are dialled (net/addr_policy.h). authorize_url and redirect_uri are
 * only ever opened by the user's browser, never by grantd, so they are not
 * checked: a provider on the operator's own network may well be meant. */
static int check_endpoints(api_ctx_t *ctx, const provider_t *p)
{
  const struct {
    const char *field, *url;
  } dialled[] = {
    {"token_url", p->token_url},
    {"revoke_url", p->revoke_url},
    {"refresh_url", p->refresh_url},
    {"device_authorization_url", p->device_authorization_url},
    {"issuer", p->issuer},
    {"mtls_token_url", p->mtls_token_url},
    {"mtls_revoke_url", p->mtls_revoke_url},
  };
  for (size_t i = 0; i < ARRAY_SIZE(dialled); i++) {
    char why[200], msg[400];
    if (dialled[i].url == NULL ||
        addr_policy_check_url(ctx->api->endpoint_policy, dialled[i].url, why, sizeof why) !=
          GRANTD_EENDPOINT_FORBIDDEN)
      continue;
    snprintf(msg, sizeof msg,
             "field '%s': %s; grantd does not connect to such addresses unless the "
             "operator allows them (--allow-endpoint-cidr, --allow-private-endpoints)",
             dialled[i].field, why);
    api_reply_error(ctx, 422, "endpoint_forbidden", msg);
    return -1;
  }
  return 0;
}

/* Copies what a provider keeps of its template: name, version and the
 * fields taken from it (its variables: api_provider_vars_keep). */
static void keep_template(provider_t *p, const json_t *tpl, strlist_t *from)
{
  p->template_name = xstrdup(json_string_value(json_object_get(tpl, "name")));
  p->template_version = (int64_t)json_integer_value(json_object_get(tpl, "version"));
  p->template_fields = *from;
  memset(from, 0, sizeof *from);
}

static void provider_put(api_ctx_t *ctx)
{
  const char *name = ctx->params[0];
  api_err_t e;
  json_t *merged = NULL;
  const json_t *tpl = NULL;
  strlist_t from = {0};
  if (api_template_merge(ctx->api, ctx->body, &merged, &tpl, &from, &e) != 0) {
    strlist_free(&from);
    api_reply_api_err(ctx, &e);
    return;
  }
  if (api_provider_vars_fix(tpl, merged, &e) != 0) {
    json_decref(merged);
    strlist_free(&from);
    api_reply_api_err(ctx, &e);
    return;
  }
  provider_t *p = xcalloc(1, sizeof *p);
  int rc = api_provider_from_json(merged ? merged : ctx->body, name, p, &e);
  json_decref(merged);
  if (rc != 0) {
    strlist_free(&from);
    free(p);
    api_reply_api_err(ctx, &e);
    return;
  }
  if (tpl != NULL)
    keep_template(p, tpl, &from);
  strlist_free(&from);
  if (api_provider_vars_keep(tpl, p, &e) != 0) {
    provider_free(p);
    free(p);
    api_reply_api_err(ctx, &e);
    return;
  }
  if (check_endpoints(ctx, p) != 0) {
    provider_free(p);
    free(p);
    return;
  }
  rc = svc_provider_put(ctx->api->svc, p, put_done, ctx);
  if (rc != 0)
    api_reply_err(ctx, rc, NULL);
}

static void provider_get(api_ctx_t *ctx)
{
  provider_t p;
  int rc = svc_provider_get(ctx->api->svc, ctx->params[0], &p);
  if (rc != 0) {
    api_reply_err(ctx, rc, NULL);
    return;
  }
  json_t *j = api_provider_to_json(&p);
  provider_free(&p);
  api_reply_json(ctx, 200, j);
}

/* {"keys": [the public JWK of p's signing_key]}: kid = signing_key_id (else
 * the RFC 7638 thumbprint, the kid the assertions carry), alg = signing_alg
 * (else the key's default), use = sig. NULL when p has no signing_key (or
 * a stored one no longer parses, which the PUT check makes impossible). */
static json_t *provider_jwks(const provider_t *p)
{
  if (p->signing_key == NULL || *p->signing_key == '\0')
    return NULL;
  jws_key_t *k = NULL;
  if (jws_key_parse(p->signing_key, strlen(p->signing_key), &k, NULL) != 0)
    return NULL;
  jws_alg_t alg = jws_key_default_alg(k);
  if (p->signing_alg != NULL && jws_alg_parse(p->signing_alg, &alg) != 0)
    alg = jws_key_default_alg(k);
  const char *kid = p->signing_key_id && *p->signing_key_id ? p->signing_key_id : NULL;
  json_t *jwk = jws_key_public_jwk(k, kid, alg);
  jws_key_free(k);
  if (jwk == NULL)
    return NULL;
  json_t *keys = json_array();
  json_array_append_new(keys, jwk);
  json_t *o = json_object();
  json_object_set_new(o, "keys", keys);
  return o;
}

static void provider_jwks_get(api_ctx_t *ctx)
{
  provider_t p;
  int rc = svc_provider_get(ctx->api->svc, ctx->params[0], &p);
  if (rc != 0) {
    api_reply_err(ctx, rc, NULL);
    return;
  }
  json_t *j = provider_jwks(&p);
  provider_free(&p);
  if (j == NULL) {
    api_reply_error(ctx, 404, "no_signing_key",
                    "this provider has no signing_key, so it has no public key to publish");
    return;
  }
  api_reply_json(ctx, 200, j);
}

static void list_one(void *arg, const provider_t *p)
{
  json_array_append_new((json_t *)arg, api_provider_to_json(p));
}

static void provider_list(api_ctx_t *ctx)
{
  json_t *arr = json_array();
  int rc = svc_provider_each(ctx->api->svc, list_one, arr);
  if (rc != 0) {
    json_decref(arr);
    api_reply_err(ctx, rc, NULL);
    return;
  }
  json_t *o = json_object();
  json_object_set_new(o, "providers", arr);
  api_reply_json(ctx, 200, o);
}

static void delete_done(void *arg, int err, const provider_t *p)
{
  (void)p;
  api_reply_deleted(arg, err);
}

static void provider_delete(api_ctx_t *ctx)
{
  int rc = svc_provider_delete(ctx->api->svc, ctx->params[0], delete_done, ctx);
  if (rc != 0)
    api_reply_err(ctx, rc, NULL);
}

const api_route_t api_provider_routes[] = {
  {"PUT", "/v1/providers/{}", true, 1, 0, provider_put, "/v1/providers/{name}"},
  {"GET", "/v1/providers/{}", true, 0, 0, provider_get, "/v1/providers/{name}"},
  {"GET", "/v1/providers/{}/jwks", true, 0, 0, provider_jwks_get, "/v1/providers/{name}/jwks"},
  {"DELETE", "/v1/providers/{}", true, 0, 0, provider_delete, "/v1/providers/{name}"},
  {"GET", "/v1/providers", true, 0, 0, provider_list, "/v1/providers"},
  {NULL, NULL, false, 0, 0, NULL, NULL},
};
