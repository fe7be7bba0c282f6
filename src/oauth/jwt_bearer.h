/*
 * jwt_bearer.h - the assertion of the JWT bearer authorization grant
 * (RFC 7523 section 2.1, claims section 3), without I/O.
 *
 * Claims, later sources replacing earlier ones member by member:
 *   1. grantd's defaults: iss = the client_id in use (when there is one),
 *      aud = the token endpoint URL (RFC 7523 section 3 point 3), and with
 *      the provider's assertion_scope_claim the joined scopes as "scope";
 *   2. the provider's assertion_claims (Salesforce: {"aud":
 *      "https://login.salesforce.com"}; DocuSign: {"aud":
 *      "account-d.docusign.com"});
 *   3. the connection's assertion_claims (the subject: {"sub":
 *      "user@example.com"}, a Google service account's {"iss":
 *      client_email} ...);
 *   4. always grantd's: iat = now, exp = iat + JWT_BEARER_LIFETIME_S
 *      (within Salesforce's 3 minutes and Google's and DocuSign's hour),
 *      jti = 128 random bits (base64url), so no two assertions repeat and
 *      a renewal is always a fresh assertion. Configured iat, exp and jti
 *      are refused when saved.
 * RFC 7523 requires iss, sub and aud; grantd requires iss and aud (a
 * Google service account without domain-wide delegation has no sub).
 *
 * Key: the connection's signing_key (with its signing_key_id and
 * signing_alg) when it has one, else the provider's. RSA (RS256) or EC
 * (ES256); the JWS header has alg, typ "JWT" and kid (signing_key_id, else
 * the key's RFC 7638 thumbprint).
 */
#ifndef GRANTD_OAUTH_JWT_BEARER_H
#define GRANTD_OAUTH_JWT_BEARER_H

#include <stdint.h>

#include "base/buf.h"
#include "model/connection.h"
#include "model/provider.h"

#define JWT_BEARER_GRANT_TYPE "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define JWT_BEARER_LIFETIME_S 120

/* Checks a signing key and algorithm as saved for the jwt_bearer grant
 * (connection or provider): key must parse (PEM or JWK) and be an RSA or
 * EC private key; alg (NULL = the key's default) must fit it.
 * @return 0, or GRANTD_EINVALID with *why a static sentence. */
int jwt_bearer_check_key(const char *key, const char *alg, const char **why);

/* Checks assertion_claims text as saved: a JSON object (or NULL) without
 * iat, exp or jti. @return 0, or GRANTD_EINVALID with *why. */
int jwt_bearer_check_claims(const char *claims, const char **why);

/* Appends a signed assertion for connection c at provider p.
 * @param client_id the client_id in use, or NULL.
 * @param aud       the token endpoint URL (placeholders expanded).
 * @param scope     the joined scopes, or NULL (used only with
 *                  p->assertion_scope_claim).
 * @return 0; GRANTD_ECONFIG when there is no usable key, no iss or no aud
 *         (out unchanged). */
int jwt_bearer_assertion(const provider_t *p, const conn_t *c, const char *client_id,
                         const char *aud, const char *scope, int64_t now_ms, buf_t *out);

#endif
