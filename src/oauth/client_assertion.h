/*
 * client_assertion.h - JWT client authentication (RFC 7523 section 2.2,
 * OpenID Connect Core 1.0 section 9): the signed assertion a token,
 * refresh or revocation request carries for client_auth private_key_jwt
 * (the provider's signing_key, RS256, PS256 or ES256) and client_secret_jwt (the
 * client secret as an HS256 key).
 *
 * The assertion's claims (RFC 7523 section 3): iss = sub = the client_id,
 * aud = the token endpoint URL (RFC 7523 section 3 point 3: "the token
 * endpoint URL of the authorization server MAY be used"), jti = 128 random
 * bits (base64url) so that no two assertions repeat, iat = now, exp = iat
 * + 60 s. The JWS header has alg, typ "JWT" and kid (the provider's
 * signing_key_id, else for a private key its RFC 7638 thumbprint; an
 * HS256 assertion has a kid only when one is configured).
 *
 * The request then carries client_id, client_assertion_type
 * (CLIENT_ASSERTION_TYPE) and client_assertion; never client_secret.
 */
#ifndef GRANTD_OAUTH_CLIENT_ASSERTION_H
#define GRANTD_OAUTH_CLIENT_ASSERTION_H

#include <stdint.h>

#include "base/buf.h"
#include "model/provider.h"

#define CLIENT_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define CLIENT_ASSERTION_LIFETIME_S 60

/* Checks the signing configuration of p when it is saved: a signing_key
 * that is given must parse (PEM or JWK, oauth/jws.h) and be RSA or EC; a
 * signing_alg must be one grantd signs with and fit the key;
 * private_key_jwt needs a signing_key; client_secret_jwt takes only HS256.
 * @param why  set to a static sentence on error.
 * @return 0, or GRANTD_EINVALID. */
int client_assertion_check(const provider_t *p, const char **why);

/* Appends a signed assertion for p's client_auth to out.
 * @param client_id  the client_id in use (the connection's or provider's).
 * @param secret     the client secret in use (client_secret_jwt), or NULL.
 * @param aud        the token endpoint URL (placeholders expanded).
 * @param now_ms     the current time, ms since the epoch.
 * @return 0; GRANTD_ECONFIG when the key or secret is missing, does not
 *         parse or does not fit the algorithm (out is then unchanged). */
int client_assertion_make(const provider_t *p, const char *client_id, const char *secret,
                          const char *aud, int64_t now_ms, buf_t *out);

#endif
