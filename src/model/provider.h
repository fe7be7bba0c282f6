/*
 * provider.h - a provider configuration in memory (one OAuth client at one
 * authorization server), with its constructor-free lifecycle: a
 * zero-initialised provider_t is empty, provider_copy() deep-copies,
 * provider_free() releases and wipes.
 *
 * Strings are owned NUL-terminated heap copies, NULL = unset. Times are
 * int64 milliseconds since the Unix epoch (UTC); 0 = unset. Fields marked
 * "secret" are stored only sealed (store/seal.h) and wiped when freed.
 */
#ifndef GRANTD_MODEL_PROVIDER_H
#define GRANTD_MODEL_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "model/lists.h"

typedef enum {
  CLIENT_AUTH_BASIC = 0, /* client_secret_basic (RFC 6749 2.3.1) */
  CLIENT_AUTH_POST = 1,  /* client_secret_post */
  /* RFC 7523 section 2.2 / OpenID Connect Core section 9: a signed JWT
   * client assertion, with signing_key (RS256/ES256) or with the client
   * secret as an HS256 key. */
  CLIENT_AUTH_PRIVATE_KEY_JWT = 2,
  CLIENT_AUTH_SECRET_JWT = 3,
  /* RFC 8705 section 2: mutual TLS with client_cert / client_cert_key;
   * the request carries client_id and no secret. tls_client_auth: a
   * certificate from a CA the server trusts, bound to the client by its
   * subject; self_signed_tls_client_auth: a certificate registered with
   * the server (e.g. as the x5c of a JWK). */
  CLIENT_AUTH_TLS = 4,
  CLIENT_AUTH_SELF_SIGNED_TLS = 5,
} client_auth_t;

/* Whether a is one of the mutual-TLS methods. */
static inline bool client_auth_is_mtls(client_auth_t a)
{
  return a == CLIENT_AUTH_TLS || a == CLIENT_AUTH_SELF_SIGNED_TLS;
}

/* clang-format off */
typedef struct {
  char *name;
  char *issuer;              /* RFC 8414 / RFC 9207 issuer, optional */
  char *authorize_url;
  char *token_url;           /* required */
  char *revoke_url;
  char *client_id;
  char *client_secret;       /* secret */
  client_auth_t client_auth;
  strlist_t scopes;          /* default scopes */
  char *scope_separator;     /* NULL = " " */
  bool pkce;                 /* default true */
  char *redirect_uri;        /* NULL = public URL + /oauth/callback */
  kvlist_t authorize_params;
  kvlist_t token_params;
  kvlist_t refresh_params;
  int64_t default_expires_in;   /* seconds; 0 = none */
  int64_t refresh_lead_min;     /* seconds; 0 = default 60 */
  int64_t refresh_lead_max;     /* seconds; 0 = default 900 */
  int64_t keepalive_interval;   /* seconds; 0 = default 86400 */
  int64_t rate_limit_count;     /* token requests per window; 0 = none */
  int64_t rate_limit_window;    /* seconds */
  int64_t timeout_ms;           /* token request timeout; 0 = default */
  char *ca_file;                /* extra trust anchors for this provider */
  bool allow_insecure_http;     /* permit http:// endpoints (local testing) */
  strlist_t pkce_methods;       /* from discovery: code_challenge_methods_supported */
  strlist_t auth_methods;       /* from discovery: token_endpoint_auth_methods_supported */
  int64_t created_at;
  int64_t updated_at;
  /* RFC 9207: the provider's metadata advertises (or the API set)
   * authorization_response_iss_parameter_supported, so every
   * authorization response must carry iss. */
  bool iss_param_supported;
  /* Made from a catalog template (oauth/catalog.h): its name and version,
   * and which provider fields took the template's value (the others were
   * given explicitly). NULL / 0 / empty when not from a template. */
  char *template_name;
  int64_t template_version;
  strlist_t template_fields;
  strlist_t grants;             /* grants the provider supports; empty = any */
  kvlist_t vars;                /* per-connection variables: name -> rule (see catalog.h) */
  /* A member of the token answer holding the token to serve when it has
   * one (Slack's user token under "authed_user"); NULL = top level. */
  char *token_member;
  /* Token and revocation request bodies as a JSON object of strings
   * (Content-Type application/json) instead of a form; "token_body":
   * "json" in the API and templates. */
  bool json_body;
  /* Where refresh requests go, for a provider with a refresh endpoint of
   * its own (Figma); NULL = token_url. The code exchange and the other
   * grants always use token_url. Same rules as token_url: https unless
   * allow_insecure_http, endpoint policy, {name} placeholders. */
  char *refresh_url;
  /* Revocation parameters (token, token_type_hint) in revoke_url's query
   * string instead of the body, as Zoho and ServiceNow document it; the
   * client authentication stays as client_auth says. "revoke_query": true
   * in the API and templates. */
  bool revoke_query;
  /* private_key_jwt: the private key (PEM or JWK text, oauth/jws.h), the
   * JWS "kid" (NULL = the key's RFC 7638 thumbprint) and the JWA name
   * (NULL = the key's default: RS256 for RSA, ES256 for EC). */
  char *signing_key;            /* secret */
  char *signing_key_id;
  char *signing_alg;
  /* Mutual TLS (RFC 8705): the client certificate chain (PEM, leaf first)
   * and its private key (PEM), presented on the token, refresh and
   * revocation connections (net/tls.h tls_client_ctx_derive_cert); and the
   * mtls_endpoint_aliases (section 5) used instead of token_url /
   * revoke_url when client_auth is a mutual-TLS method (NULL = none). */
  char *client_cert;
  char *client_cert_key;        /* secret */
  char *mtls_token_url;
  char *mtls_revoke_url;
  /* RFC 8628 device authorization endpoint (discovery:
   * device_authorization_endpoint); the device_code grant needs it. */
  char *device_authorization_url;
  /* jwt_bearer grant (RFC 7523 section 2.1): claims (JSON object text)
   * every assertion of this provider carries over grantd's defaults
   * (Salesforce's "aud": "https://login.salesforce.com"), and whether the
   * scope goes in the assertion's "scope" claim (Google service accounts,
   * DocuSign) instead of the request's scope parameter. */
  char *assertion_claims;
  bool assertion_scope_claim;
} provider_t;
/* clang-format on */

/* "basic", "post", "private_key_jwt", "client_secret_jwt", "tls_client_auth",
 * "self_signed_tls_client_auth"; parse returns 0, or -1 for an unknown name. */
const char *client_auth_name(client_auth_t a);
int client_auth_parse(const char *s, client_auth_t *out);

/* Releases everything p owns, wiping the secret; p is zeroed afterwards. */
void provider_free(provider_t *p);
/* Deep copy; dst is overwritten, not freed first. */
void provider_copy(provider_t *dst, const provider_t *src);

#endif
