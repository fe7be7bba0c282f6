/*
 * api_json.c - request-body parsing and record rendering for the v1 API;
 * see api_json.h.
 *
 * Every accepted field is listed in one table per record type, so an
 * unknown field is rejected with its name (422) before anything is copied,
 * and a wrong type names the field too (the typed readers are in
 * api_json_field.c). Secrets are copied in but never
 * rendered out.
 */
#include "api/api_json.h"
#include "api/api_json_field.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/b64.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/url.h"
#include "net/tls.h"
#include "oauth/client_assertion.h"
#include "oauth/jwt_bearer.h"
#include "oauth/token.h"

static const char *const provider_fields[] = {
  "issuer",
  "authorize_url",
  "token_url",
  "revoke_url",
  "client_id",
  "client_secret",
  "client_auth",
  "scopes",
  "scope_separator",
  "pkce",
  "redirect_uri",
  "authorize_params",
  "token_params",
  "refresh_params",
  "default_expires_in",
  "refresh_lead_min",
  "refresh_lead_max",
  "keepalive_interval",
  "rate_limit_count",
  "rate_limit_window",
  "timeout_ms",
  "ca_file",
  "allow_insecure_http",
  "authorization_response_iss_parameter_supported",
  "grants",
  "token_member",
  "token_body",
  "refresh_url",
  "revoke_query",
  "signing_key",
  "signing_key_id",
  "signing_alg",
  "client_cert",
  "client_cert_key",
  "mtls_token_url",
  "mtls_revoke_url",
  "device_authorization_url",
  "assertion_claims",
  "assertion_scope_claim",
  NULL,
};

#define GRANT_NAMES \
  "authorization_code, client_credentials, password, refresh_token, device_code, jwt_bearer or " \
  "token_exchange"

/* Mutual TLS (RFC 8705): tls_client_auth and self_signed_tls_client_auth
 * need client_cert and client_cert_key; either field needs the other, and
 * the pair must pass tls_client_cert_check() (parsable PEM, key of the
 * certificate, right type and size). */
static int client_cert_check(const provider_t *p, const char **why)
{
  bool cert = p->client_cert != NULL, key = p->client_cert_key != NULL;
  if (client_auth_is_mtls(p->client_auth) && (!cert || !key)) {
    *why = "tls_client_auth and self_signed_tls_client_auth need client_cert and client_cert_key";
    return -1;
  }
  if (cert != key) {
    *why = cert ? "client_cert needs its client_cert_key" : "client_cert_key needs its client_cert";
    return -1;
  }
  if (!cert)
    return 0;
  return tls_client_cert_check(p->client_cert, strlen(p->client_cert), p->client_cert_key,
                               strlen(p->client_cert_key), NULL, why) == 0
           ? 0
           : -1;
}

/* has_client_cert, and the certificate's RFC 8705 section 3.1 thumbprint
 * (x5t#S256: base64url SHA-256 of the DER leaf); the key is never shown. */
static void client_cert_json(json_t *o, const provider_t *p)
{
  unsigned char id[32];
  const char *why;
  bool ok = p->client_cert != NULL && p->client_cert_key != NULL &&
            tls_client_cert_check(p->client_cert, strlen(p->client_cert), p->client_cert_key,
                                  strlen(p->client_cert_key), id, &why) == 0;
  json_object_set_new(o, "has_client_cert", json_boolean(p->client_cert != NULL));
  if (ok) {
    buf_t t = BUF_INIT;
    b64url_encode(&t, id, sizeof id);
    json_object_set_new(o, "client_cert_sha256", json_stringn(t.data, t.len));
    buf_free(&t);
  } else {
    json_object_set_new(o, "client_cert_sha256", json_null());
  }
}

/* A member name as token_member takes it: [a-z0-9_]{1,64}. */
static bool api_member_name_ok(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > 64)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= '0' && s[i] <= '9') && s[i] != '_')
      return false;
  return true;
}

int api_provider_from_json(const json_t *b, const char *name, provider_t *p, api_err_t *e)
{
  memset(p, 0, sizeof *p);
  p->pkce = true;
  if (api_field_check(b, provider_fields, e) != 0)
    return -1;
  p->name = xstrdup(name);
  char *auth = NULL, *body_fmt = NULL;
  const int64_t day = 86400 * 366;
  int rc = api_field_url(b, "issuer", &p->issuer, e) ||
           api_field_url(b, "authorize_url", &p->authorize_url, e) ||
           api_field_url(b, "token_url", &p->token_url, e) ||
           api_field_url(b, "revoke_url", &p->revoke_url, e) ||
           api_field_str(b, "client_id", &p->client_id, e) ||
           api_field_str(b, "client_secret", &p->client_secret, e) ||
           api_field_str(b, "client_auth", &auth, e) ||
           api_field_strlist(b, "scopes", &p->scopes, e) ||
           api_field_bool(b, "pkce", &p->pkce, e) ||
           api_field_url(b, "redirect_uri", &p->redirect_uri, e) ||
           api_field_kv(b, "authorize_params", &p->authorize_params, e) ||
           api_field_kv(b, "token_params", &p->token_params, e) ||
           api_field_kv(b, "refresh_params", &p->refresh_params, e) ||
           api_field_int(b, "default_expires_in", &p->default_expires_in, 1, day * 10, e) ||
           api_field_int(b, "refresh_lead_min", &p->refresh_lead_min, 1, day, e) ||
           api_field_int(b, "refresh_lead_max", &p->refresh_lead_max, 1, day, e) ||
           api_field_int(b, "keepalive_interval", &p->keepalive_interval, 60, day, e) ||
           api_field_int(b, "rate_limit_count", &p->rate_limit_count, 1, 1000000, e) ||
           api_field_int(b, "rate_limit_window", &p->rate_limit_window, 1, day, e) ||
           api_field_int(b, "timeout_ms", &p->timeout_ms, 100, 600000, e) ||
           api_field_str(b, "ca_file", &p->ca_file, e) ||
           api_field_bool(b, "allow_insecure_http", &p->allow_insecure_http, e) ||
           api_field_bool(b, "authorization_response_iss_parameter_supported",
                          &p->iss_param_supported, e) ||
           api_field_str(b, "token_member", &p->token_member, e) ||
           api_field_str(b, "token_body", &body_fmt, e) ||
           api_field_url(b, "refresh_url", &p->refresh_url, e) ||
           api_field_bool(b, "revoke_query", &p->revoke_query, e) ||
           api_field_str(b, "signing_key", &p->signing_key, e) ||
           api_field_str(b, "signing_key_id", &p->signing_key_id, e) ||
           api_field_str(b, "signing_alg", &p->signing_alg, e) ||
           api_field_str(b, "client_cert", &p->client_cert, e) ||
           api_field_str(b, "client_cert_key", &p->client_cert_key, e) ||
           api_field_url(b, "mtls_token_url", &p->mtls_token_url, e) ||
           api_field_url(b, "mtls_revoke_url", &p->mtls_revoke_url, e) ||
           api_field_url(b, "device_authorization_url", &p->device_authorization_url, e) ||
           api_field_obj_text(b, "assertion_claims", &p->assertion_claims, e) ||
           api_field_bool(b, "assertion_scope_claim", &p->assertion_scope_claim, e);
  if (rc)
    goto bad;
  /* scope_separator may be a single space, so it bypasses get_str's rules. */
  json_t *sep = json_object_get(b, "scope_separator");
  if (sep != NULL && !json_is_null(sep)) {
    if (!json_is_string(sep) || json_string_length(sep) == 0 || json_string_length(sep) > 8) {
      api_field_fail(e, 422, "invalid_field", "field '%s' must be a short string",
                     "scope_separator");
      goto bad;
    }
    p->scope_separator = xstrdup(json_string_value(sep));
  }
  if (auth != NULL) {
    client_auth_t a;
    const char *s = auth;
    if (!strcmp(s, "client_secret_basic"))
      s = "basic";
    else if (!strcmp(s, "client_secret_post"))
      s = "post";
    if (client_auth_parse(s, &a) != 0) {
      api_field_fail(e, 422, "invalid_field",
                     "field '%s' must be basic, post, private_key_jwt, client_secret_jwt, "
                     "tls_client_auth or self_signed_tls_client_auth",
                     "client_auth");
      goto bad;
    }
    p->client_auth = a;
  }
  const char *why = NULL;
  if (client_assertion_check(p, &why) != 0) {
    /* why is a static sentence: it never quotes the key. */
    api_field_fail(e, 422, "invalid_signing_key", "%s", why);
    goto bad;
  }
  if (client_cert_check(p, &why) != 0) {
    api_field_fail(e, 422, "invalid_client_cert", "%s", why);
    goto bad;
  }
  if (jwt_bearer_check_claims(p->assertion_claims, &why) != 0) {
    api_field_fail(e, 422, "invalid_field", "%s", why);
    goto bad;
  }
  if (api_field_strlist(b, "grants", &p->grants, e) != 0)
    goto bad;
  for (size_t i = 0; i < p->grants.n; i++) {
    grant_t g;
    if (grant_parse(p->grants.items[i], &g) != 0) {
      api_field_fail(e, 422, "invalid_field", "field '%s' lists " GRANT_NAMES, "grants");
      goto bad;
    }
  }
  if (body_fmt != NULL && strcmp(body_fmt, "form") != 0 && strcmp(body_fmt, "json") != 0) {
    api_field_fail(e, 422, "invalid_field", "field '%s' must be form or json", "token_body");
    goto bad;
  }
  p->json_body = body_fmt != NULL && strcmp(body_fmt, "json") == 0;
  if (p->token_member != NULL && !api_member_name_ok(p->token_member)) {
    api_field_fail(e, 422, "invalid_field", "field '%s' must be 1-64 characters of a-z 0-9 _",
                   "token_member");
    goto bad;
  }
  if (p->token_url == NULL && p->issuer == NULL) {
    api_field_fail(e, 422, "missing_field",
                   "field '%s' is required (or give 'issuer' for discovery)", "token_url");
    goto bad;
  }
  if ((p->rate_limit_count > 0) != (p->rate_limit_window > 0)) {
    api_field_fail(e, 422, "invalid_field", "fields '%s' and rate_limit_window go together",
                   "rate_limit_count");
    goto bad;
  }
  if (p->refresh_lead_min && p->refresh_lead_max && p->refresh_lead_min > p->refresh_lead_max) {
    api_field_fail(e, 422, "invalid_field", "field '%s' must not exceed refresh_lead_max",
                   "refresh_lead_min");
    goto bad;
  }
  const char *urls[] = {p->issuer,     p->authorize_url, p->token_url,
                        p->revoke_url, p->refresh_url,   p->device_authorization_url};
  for (size_t i = 0; i < ARRAY_SIZE(urls); i++) {
    if (urls[i] && !strncmp(urls[i], "http://", 7) && !p->allow_insecure_http) {
      api_field_fail(e, 422, "insecure_url", "%s: plain http:// endpoints need allow_insecure_http",
                     p->name);
      goto bad;
    }
  }
  free(auth);
  free(body_fmt);
  return 0;
bad:
  free(auth);
  free(body_fmt);
  provider_free(p);
  return -1;
}

json_t *api_time(int64_t ms)
{
  if (ms <= 0)
    return json_null();
  char s[40];
  clock_format_rfc3339(ms, s);
  return json_string(s);
}

static json_t *strlist_json(const strlist_t *l)
{
  json_t *a = json_array();
  for (size_t i = 0; i < l->n; i++)
    json_array_append_new(a, json_string(l->items[i]));
  return a;
}

static json_t *kv_json(const kvlist_t *l)
{
  json_t *o = json_object();
  for (size_t i = 0; i < l->n; i++)
    json_object_set_new(o, l->items[i].key, json_string(l->items[i].value));
  return o;
}

static void set_str(json_t *o, const char *k, const char *v)
{
  json_object_set_new(o, k, v ? json_string(v) : json_null());
}

json_t *api_provider_to_json(const provider_t *p)
{
  json_t *o = json_object();
  set_str(o, "name", p->name);
  set_str(o, "issuer", p->issuer);
  set_str(o, "authorize_url", p->authorize_url);
  set_str(o, "token_url", p->token_url);
  set_str(o, "revoke_url", p->revoke_url);
  set_str(o, "client_id", p->client_id);
  json_object_set_new(o, "has_client_secret", json_boolean(p->client_secret != NULL));
  set_str(o, "client_auth", client_auth_name(p->client_auth));
  json_object_set_new(o, "has_signing_key", json_boolean(p->signing_key != NULL));
  set_str(o, "signing_key_id", p->signing_key_id);
  set_str(o, "signing_alg", p->signing_alg);
  client_cert_json(o, p);
  set_str(o, "mtls_token_url", p->mtls_token_url);
  set_str(o, "mtls_revoke_url", p->mtls_revoke_url);
  json_object_set_new(o, "scopes", strlist_json(&p->scopes));
  set_str(o, "scope_separator", p->scope_separator ? p->scope_separator : " ");
  json_object_set_new(o, "pkce", json_boolean(p->pkce));
  set_str(o, "redirect_uri", p->redirect_uri);
  json_object_set_new(o, "authorize_params", kv_json(&p->authorize_params));
  json_object_set_new(o, "token_params", kv_json(&p->token_params));
  json_object_set_new(o, "refresh_params", kv_json(&p->refresh_params));
#define INT_OR_NULL(k, v) json_object_set_new(o, k, (v) ? json_integer(v) : json_null())
  INT_OR_NULL("default_expires_in", p->default_expires_in);
  INT_OR_NULL("refresh_lead_min", p->refresh_lead_min);
  INT_OR_NULL("refresh_lead_max", p->refresh_lead_max);
  INT_OR_NULL("keepalive_interval", p->keepalive_interval);
  INT_OR_NULL("rate_limit_count", p->rate_limit_count);
  INT_OR_NULL("rate_limit_window", p->rate_limit_window);
  INT_OR_NULL("timeout_ms", p->timeout_ms);
#undef INT_OR_NULL
  set_str(o, "ca_file", p->ca_file);
  json_object_set_new(o, "allow_insecure_http", json_boolean(p->allow_insecure_http));
  json_object_set_new(o, "authorization_response_iss_parameter_supported",
                      json_boolean(p->iss_param_supported));
  if (p->pkce_methods.n)
    json_object_set_new(o, "code_challenge_methods_supported", strlist_json(&p->pkce_methods));
  if (p->auth_methods.n)
    json_object_set_new(o, "token_endpoint_auth_methods_supported", strlist_json(&p->auth_methods));
  json_object_set_new(o, "grants", strlist_json(&p->grants));
  set_str(o, "token_member", p->token_member);
  set_str(o, "token_body", p->json_body ? "json" : "form");
  set_str(o, "refresh_url", p->refresh_url);
  json_object_set_new(o, "revoke_query", json_boolean(p->revoke_query));
  set_str(o, "device_authorization_url", p->device_authorization_url);
  json_object_set_new(o, "assertion_claims",
                      p->assertion_claims ? json_loads(p->assertion_claims, 0, NULL) : json_null());
  json_object_set_new(o, "assertion_scope_claim", json_boolean(p->assertion_scope_claim));
  if (p->template_name != NULL) {
    json_t *t = json_object();
    set_str(t, "name", p->template_name);
    json_object_set_new(t, "version", json_integer(p->template_version));
    json_object_set_new(t, "fields", strlist_json(&p->template_fields));
    json_object_set_new(t, "vars", kv_json(&p->vars));
    json_object_set_new(o, "template", t);
  } else {
    json_object_set_new(o, "template", json_null());
  }
  json_object_set_new(o, "created_at", api_time(p->created_at));
  json_object_set_new(o, "updated_at", api_time(p->updated_at));
  return o;
}

static const char *const conn_fields[] = {
  "id",
  "tenant",
  "provider",
  "grant",
  "scopes",
  "access_token",
  "refresh_token",
  "token_type",
  "expires_in",
  "expires_at",
  "refresh_token_expires_at",
  "extra",
  "client_id",
  "client_secret",
  "username",
  "password",
  "metadata",
  "vars", /* read by api_conn_vars_check(), which knows the provider */
  "token_member",
  "signing_key",
  "signing_key_id",
  "signing_alg",
  "assertion_claims",
  "subject_token",
  "subject_token_type",
  "subject_connection",
  "actor_token",
  "actor_token_type",
  "audience",
  "resource",
  "requested_token_type",
  "allow_cross_tenant", /* read by api_conn_exchange_check() */
  NULL,
};

int api_conn_from_json(const json_t *b, const char *id, conn_t *c, api_err_t *e)
{
  memset(c, 0, sizeof *c);
  if (api_field_check(b, conn_fields, e) != 0)
    return -1;
  char *grant = NULL, *body_id = NULL;
  int64_t expires_in = 0;
  if (api_field_str(b, "id", &body_id, e))
    goto bad;
  if (id == NULL) {
    if (body_id == NULL) {
      api_field_fail(e, 422, "missing_field", "field '%s' is required", "id");
      goto bad;
    }
    id = body_id;
  } else if (body_id != NULL && strcmp(body_id, id) != 0) {
    api_field_fail(e, 422, "invalid_field", "field '%s' does not match the id in the path", "id");
    goto bad;
  }
  if (!api_valid_id(id)) {
    api_field_fail(e, 400, "invalid_id", "%s", API_ID_RULE);
    goto bad;
  }
  c->id = xstrdup(id);
  int rc = api_field_str(b, "tenant", &c->tenant, e) ||
           api_field_str(b, "provider", &c->provider, e) || api_field_str(b, "grant", &grant, e) ||
           api_field_strlist(b, "scopes", &c->scopes, e) ||
           api_field_str(b, "access_token", &c->access_token, e) ||
           api_field_str(b, "refresh_token", &c->refresh_token, e) ||
           api_field_str(b, "token_type", &c->token_type, e) ||
           api_field_lifetime(b, "expires_in", &expires_in, e) ||
           api_field_time(b, "expires_at", &c->expires_at, e) ||
           api_field_time(b, "refresh_token_expires_at", &c->refresh_token_expires_at, e) ||
           api_field_obj_text(b, "extra", &c->extra_json, e) ||
           api_field_str(b, "client_id", &c->client_id, e) ||
           api_field_str(b, "client_secret", &c->client_secret, e) ||
           api_field_str(b, "username", &c->username, e) ||
           api_field_str(b, "password", &c->password, e) ||
           api_field_obj_text(b, "metadata", &c->metadata_json, e) ||
           api_field_str(b, "token_member", &c->token_member, e) ||
           api_field_str(b, "signing_key", &c->signing_key, e) ||
           api_field_str(b, "signing_key_id", &c->signing_key_id, e) ||
           api_field_str(b, "signing_alg", &c->signing_alg, e) ||
           api_field_obj_text(b, "assertion_claims", &c->assertion_claims, e) ||
           api_field_str(b, "subject_token", &c->subject_token, e) ||
           api_field_str(b, "subject_token_type", &c->subject_token_type, e) ||
           api_field_str(b, "subject_connection", &c->subject_connection, e) ||
           api_field_str(b, "actor_token", &c->actor_token, e) ||
           api_field_str(b, "actor_token_type", &c->actor_token_type, e) ||
           api_field_strlist(b, "audience", &c->audience, e) ||
           api_field_strlist(b, "resource", &c->resource, e) ||
           api_field_str(b, "requested_token_type", &c->requested_token_type, e);
  if (rc)
    goto bad;
  if (c->token_member != NULL && !api_member_name_ok(c->token_member)) {
    api_field_fail(e, 422, "invalid_field", "field '%s' must be 1-64 characters of a-z 0-9 _",
                   "token_member");
    goto bad;
  }
  const char *req[] = {"tenant", "provider", "grant"};
  const char *vals[] = {c->tenant, c->provider, grant};
  for (size_t i = 0; i < 3; i++)
    if (vals[i] == NULL) {
      api_field_fail(e, 422, "missing_field", "field '%s' is required", req[i]);
      goto bad;
    }
  if (!api_valid_id(c->provider)) {
    api_field_fail(e, 422, "invalid_field", "field '%s' is not a valid provider name", "provider");
    goto bad;
  }
  if (strlen(c->tenant) > 256) {
    api_field_fail(e, 422, "invalid_field", "field '%s' is too long", "tenant");
    goto bad;
  }
  if (grant_parse(grant, &c->grant) != 0) {
    api_field_fail(e, 422, "invalid_field", "field '%s' must be " GRANT_NAMES, "grant");
    goto bad;
  }
  if (json_object_get(b, "expires_in") && json_object_get(b, "expires_at")) {
    api_field_fail(e, 422, "invalid_field", "give either '%s' or expires_at, not both",
                   "expires_in");
    goto bad;
  }
  if (expires_in > 0)
    c->expires_at = clock_now_ms() + expires_in * 1000;
  bool has_tokens = c->access_token || c->refresh_token || c->expires_at;
  switch (c->grant) {
  case GRANT_REFRESH_TOKEN:
    if (c->access_token == NULL && c->refresh_token == NULL) {
      api_field_fail(e, 422, "missing_field",
                     "field '%s' is required to import tokens (or access_token)", "refresh_token");
      goto bad;
    }
    break;
  case GRANT_PASSWORD:
    if (c->username == NULL || c->password == NULL) {
      api_field_fail(e, 422, "missing_field",
                     "field '%s' and password are required for the password grant", "username");
      goto bad;
    }
    /* fall through */
  default:
    if (has_tokens) {
      api_field_fail(e, 422, "invalid_field", "tokens can only be imported with grant '%s'",
                     "refresh_token");
      goto bad;
    }
  }
  if (c->grant != GRANT_PASSWORD && (c->username || c->password)) {
    api_field_fail(e, 422, "invalid_field", "field '%s' is only used by the password grant",
                   c->username ? "username" : "password");
    goto bad;
  }
  if (c->grant != GRANT_JWT_BEARER &&
      (c->signing_key || c->signing_key_id || c->signing_alg || c->assertion_claims)) {
    api_field_fail(e, 422, "invalid_field", "field '%s' is only used by the jwt_bearer grant",
                   c->signing_key      ? "signing_key"
                   : c->signing_key_id ? "signing_key_id"
                   : c->signing_alg    ? "signing_alg"
                                       : "assertion_claims");
    goto bad;
  }
  const char *why = NULL;
  if ((c->signing_key || c->signing_alg) &&
      jwt_bearer_check_key(c->signing_key, c->signing_alg, &why) != 0) {
    /* why is a static sentence: it never quotes the key. */
    api_field_fail(e, 422, "invalid_signing_key", "%s", why);
    goto bad;
  }
  if (jwt_bearer_check_claims(c->assertion_claims, &why) != 0) {
    api_field_fail(e, 422, "invalid_field", "%s", why);
    goto bad;
  }
  bool exch = c->subject_token || c->subject_token_type || c->subject_connection ||
              c->actor_token || c->actor_token_type || c->audience.n || c->resource.n ||
              c->requested_token_type || json_object_get(b, "allow_cross_tenant");
  if (c->grant != GRANT_TOKEN_EXCHANGE && exch) {
    api_field_fail(e, 422, "invalid_field", "field '%s' is only used by the token_exchange grant",
                   c->subject_token        ? "subject_token"
                   : c->subject_connection ? "subject_connection"
                   : c->actor_token        ? "actor_token"
                                           : "audience, resource or a token type");
    goto bad;
  }
  if (c->grant == GRANT_TOKEN_EXCHANGE) {
    if ((c->subject_token == NULL) == (c->subject_connection == NULL)) {
      api_field_fail(e, 422, "missing_field",
                     "the token_exchange grant needs exactly one of '%s' and subject_connection",
                     "subject_token");
      goto bad;
    }
    if ((c->actor_token == NULL) != (c->actor_token_type == NULL)) {
      /* RFC 8693 section 2.1: actor_token_type is REQUIRED with an
       * actor_token and MUST NOT be sent without one. */
      api_field_fail(e, 422, "invalid_field", "fields '%s' and actor_token_type go together",
                     "actor_token");
      goto bad;
    }
    if (c->subject_connection && strcmp(c->subject_connection, c->id) == 0) {
      api_field_fail(e, 422, "invalid_field", "field '%s' cannot name the connection itself",
                     "subject_connection");
      goto bad;
    }
  }
  free(grant);
  free(body_id);
  return 0;
bad:
  free(grant);
  free(body_id);
  conn_free(c);
  return -1;
}

/* Views of a connection carry no credential, decided by rule rather than by
 * a list of providers' field names. At every depth of `extra` (members of
 * objects, objects inside arrays), a member whose key log_redact_key() calls
 * a secret is dropped: access_token, refresh_token, id_token and any key
 * ending in "token" (bot_token, accessToken; not token_type), any key
 * containing secret, password, passwd, assertion, verifier, api_key,
 * private_key, credential, authorization or cookie, and code / device_code /
 * user_code. A value of true, false or null is kept (it holds no secret);
 * any other value (string, number, object, array) goes with its member. So
 * Slack's authed_user.access_token goes as a top-level id_token does. The
 * token answer (GET .../token) is the one place extra is returned whole. */
static void drop_credentials(json_t *v)
{
  const char *k;
  json_t *m;
  void *tmp;
  size_t i;
  if (json_is_object(v)) {
    json_object_foreach_safe(v, tmp, k, m)
    {
      if (log_redact_key(k) && !json_is_boolean(m) && !json_is_null(m)) {
        json_wipe_strings(m);
        json_object_del(v, k);
      } else {
        drop_credentials(m);
      }
    }
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, m) drop_credentials(m);
  }
}

static json_t *obj_from_text(const char *text, bool public_only)
{
  json_t *o = text ? json_loads(text, 0, NULL) : NULL;
  if (o == NULL || !json_is_object(o)) {
    json_decref(o);
    return json_object();
  }
  if (public_only)
    drop_credentials(o);
  return o;
}

json_t *api_conn_to_json(const conn_t *c)
{
  json_t *o = json_object();
  set_str(o, "id", c->id);
  set_str(o, "tenant", c->tenant);
  set_str(o, "provider", c->provider);
  set_str(o, "grant", grant_name(c->grant));
  set_str(o, "status", conn_status_name(c->status));
  json_object_set_new(o, "scopes", strlist_json(&c->scopes));
  set_str(o, "token_type", c->token_type);
  json_object_set_new(o, "vars", kv_json(&c->vars));
  set_str(o, "token_member", c->token_member);
  json_object_set_new(o, "has_access_token", json_boolean(c->access_token != NULL));
  json_object_set_new(o, "has_refresh_token", json_boolean(c->refresh_token != NULL));
  json_object_set_new(o, "expires_at", api_time(c->expires_at));
  json_object_set_new(o, "refresh_token_expires_at", api_time(c->refresh_token_expires_at));
  json_object_set_new(o, "extra", obj_from_text(c->extra_json, true));
  json_object_set_new(o, "metadata", obj_from_text(c->metadata_json, false));
  set_str(o, "client_id", c->client_id);
  json_object_set_new(o, "has_client_secret", json_boolean(c->client_secret != NULL));
  set_str(o, "username", c->username);
  if (c->last_error_code) {
    json_t *le = json_object();
    set_str(le, "code", c->last_error_code);
    set_str(le, "message", c->last_error_message);
    json_object_set_new(le, "http_status",
                        c->last_error_http ? json_integer(c->last_error_http) : json_null());
    json_object_set_new(le, "at", api_time(c->last_error_at));
    json_object_set_new(o, "last_error", le);
  } else {
    json_object_set_new(o, "last_error", json_null());
  }
  json_object_set_new(o, "failures", json_integer(c->failures));
  json_object_set_new(o, "refreshed_at", api_time(c->refreshed_at));
  json_object_set_new(o, "next_refresh_at", api_time(c->next_refresh_at));
  json_object_set_new(o, "created_at", api_time(c->created_at));
  json_object_set_new(o, "updated_at", api_time(c->updated_at));
  json_object_set_new(o, "revision", json_integer((json_int_t)c->revision));
  if (c->grant == GRANT_DEVICE_CODE) {
    /* RFC 8628 section 3.3: what the user is shown, while the flow runs;
     * never the device code. */
    json_t *d = json_null();
    if (c->status == CONN_PENDING && c->user_code != NULL) {
      d = json_object();
      set_str(d, "user_code", c->user_code);
      set_str(d, "verification_uri", c->verification_uri);
      set_str(d, "verification_uri_complete", c->verification_uri_complete);
      json_object_set_new(d, "expires_at", api_time(c->device_expires_at));
      json_object_set_new(d, "interval",
                          json_integer(c->device_interval > 0 ? c->device_interval : 5));
    }
    json_object_set_new(o, "device", d);
  }
  if (c->grant == GRANT_TOKEN_EXCHANGE) {
    set_str(o, "subject_connection", c->subject_connection);
    json_object_set_new(o, "has_subject_token", json_boolean(c->subject_token != NULL));
    set_str(o, "subject_token_type", c->subject_token_type);
    json_object_set_new(o, "has_actor_token", json_boolean(c->actor_token != NULL));
    set_str(o, "actor_token_type", c->actor_token_type);
    json_object_set_new(o, "audience", strlist_json(&c->audience));
    json_object_set_new(o, "resource", strlist_json(&c->resource));
    set_str(o, "requested_token_type", c->requested_token_type);
  }
  if (c->grant == GRANT_JWT_BEARER) {
    json_object_set_new(o, "has_signing_key", json_boolean(c->signing_key != NULL));
    set_str(o, "signing_key_id", c->signing_key_id);
    set_str(o, "signing_alg", c->signing_alg);
    json_object_set_new(o, "assertion_claims", obj_from_text(c->assertion_claims, false));
  }
  return o;
}

void api_token_render(const conn_t *c, buf_t *b)
{
  buf_puts(b, "{\"access_token\":");
  if (c->access_token)
    json_put_str(b, c->access_token, SIZE_MAX);
  else
    buf_puts(b, "null");
  buf_puts(b, ",\"token_type\":");
  json_put_str(b, c->token_type ? c->token_type : "Bearer", SIZE_MAX);
  buf_puts(b, ",\"expires_at\":");
  if (c->expires_at > 0) {
    char t[40];
    clock_format_rfc3339(c->expires_at, t);
    json_put_str(b, t, SIZE_MAX);
  } else {
    buf_puts(b, "null");
  }
  buf_puts(b, ",\"scopes\":[");
  for (size_t i = 0; i < c->scopes.n; i++) {
    if (i)
      buf_putc(b, ',');
    json_put_str(b, c->scopes.items[i], SIZE_MAX);
  }
  /* extra_json is stored as compact JSON object text produced by jansson. */
  buf_puts(b, "],\"extra\":");
  buf_puts(b, c->extra_json && c->extra_json[0] == '{' ? c->extra_json : "{}");
  buf_puts(b, "}\n");
}

json_t *api_token_to_json(const conn_t *c)
{
  json_t *o = json_object();
  set_str(o, "access_token", c->access_token);
  set_str(o, "token_type", c->token_type ? c->token_type : "Bearer");
  json_object_set_new(o, "expires_at", api_time(c->expires_at));
  json_object_set_new(o, "scopes", strlist_json(&c->scopes));
  json_object_set_new(o, "extra", obj_from_text(c->extra_json, false));
  return o;
}

/* A string field only when set (import lines leave unset fields out). */
static void opt_str(json_t *o, const char *k, const char *v)
{
  if (v != NULL)
    json_object_set_new(o, k, json_string(v));
}

json_t *api_conn_to_import_json(const conn_t *c)
{
  json_t *o = json_object();
  bool tokens = (c->grant == GRANT_AUTHORIZATION_CODE || c->grant == GRANT_REFRESH_TOKEN ||
                 c->grant == GRANT_DEVICE_CODE) &&
                (c->access_token != NULL || c->refresh_token != NULL);
  opt_str(o, "id", c->id);
  opt_str(o, "tenant", c->tenant);
  opt_str(o, "provider", c->provider);
  /* Tokens are accepted only as an import; client-credentials and password
   * connections carry what fetches their token again. */
  set_str(o, "grant", grant_name(tokens ? GRANT_REFRESH_TOKEN : c->grant));
  if (c->scopes.n > 0)
    json_object_set_new(o, "scopes", strlist_json(&c->scopes));
  if (tokens) {
    opt_str(o, "access_token", c->access_token);
    opt_str(o, "refresh_token", c->refresh_token);
    opt_str(o, "token_type", c->token_type);
    if (c->expires_at > 0)
      json_object_set_new(o, "expires_at", api_time(c->expires_at));
    if (c->refresh_token_expires_at > 0)
      json_object_set_new(o, "refresh_token_expires_at", api_time(c->refresh_token_expires_at));
    if (c->extra_json != NULL)
      json_object_set_new(o, "extra", obj_from_text(c->extra_json, false));
  }
  opt_str(o, "client_id", c->client_id);
  opt_str(o, "client_secret", c->client_secret);
  if (c->grant == GRANT_PASSWORD) {
    opt_str(o, "username", c->username);
    opt_str(o, "password", c->password);
  }
  if (c->metadata_json != NULL)
    json_object_set_new(o, "metadata", obj_from_text(c->metadata_json, false));
  if (c->vars.n > 0)
    json_object_set_new(o, "vars", kv_json(&c->vars));
  opt_str(o, "token_member", c->token_member);
  if (c->grant == GRANT_TOKEN_EXCHANGE) {
    opt_str(o, "subject_token", c->subject_token);
    opt_str(o, "subject_token_type", c->subject_token_type);
    opt_str(o, "subject_connection", c->subject_connection);
    opt_str(o, "actor_token", c->actor_token);
    opt_str(o, "actor_token_type", c->actor_token_type);
    if (c->audience.n)
      json_object_set_new(o, "audience", strlist_json(&c->audience));
    if (c->resource.n)
      json_object_set_new(o, "resource", strlist_json(&c->resource));
    opt_str(o, "requested_token_type", c->requested_token_type);
  }
  if (c->grant == GRANT_JWT_BEARER) {
    opt_str(o, "signing_key", c->signing_key);
    opt_str(o, "signing_key_id", c->signing_key_id);
    opt_str(o, "signing_alg", c->signing_alg);
    if (c->assertion_claims != NULL)
      json_object_set_new(o, "assertion_claims", obj_from_text(c->assertion_claims, false));
  }
  return o;
}
