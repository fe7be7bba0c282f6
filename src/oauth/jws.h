/*
 * jws.h - JSON Web Signature (RFC 7515) compact serialization with the
 * algorithms of RFC 7518 section 3 that grantd signs with, on BearSSL:
 *
 *  - RS256: RSASSA-PKCS1-v1_5 with SHA-256 (section 3.3); RSA keys of 2048
 *    to 4096 bits ("A key of size 2048 bits or larger MUST be used");
 *  - ES256: ECDSA P-256 with SHA-256 (section 3.4); the signature is the
 *    raw 64-byte R || S, never DER. BearSSL derives the nonce
 *    deterministically (RFC 6979), so a signature never depends on a
 *    weak random source;
 *  - HS256: HMAC SHA-256 (section 3.2) with a secret of at least 32 bytes
 *    ("A key of the same size as the hash output ... or larger MUST be
 *    used").
 *
 *  - PS256: RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt
 *    (section 3.5), RSA keys of 2048 to 4096 bits. The BearSSL 0.6 of
 *    Debian 12 has no PSS padding: oauth/jws_pss.c encodes EMSA-PSS (RFC
 *    8017 section 9.1) over BearSSL's raw RSA operations. The salt is
 *    random (base/rand), so two signatures of one input differ.
 *
 * Keys are parsed from PEM -- "RSA PRIVATE KEY" (PKCS#1), "EC PRIVATE KEY"
 * (SEC1 / RFC 5915, an "EC PARAMETERS" block before it is skipped) and
 * "PRIVATE KEY" (PKCS#8) -- or from one JWK (RFC 7517/7518 section 6:
 * kty RSA with n, e, d, p, q, dp, dq, qi; kty EC with crv P-256, x, y, d;
 * kty oct with k). Encrypted keys, public keys, certificates and key sets
 * are refused with a reason. A jws_key_t owns all its bytes and wipes them
 * when freed. Nothing here does I/O.
 */
#ifndef GRANTD_OAUTH_JWS_H
#define GRANTD_OAUTH_JWS_H

#include <stddef.h>

#include <jansson.h>

#include "base/buf.h"

typedef enum {
  JWS_ALG_NONE = 0, /* not an algorithm: "unset" */
  JWS_RS256,
  JWS_ES256,
  JWS_HS256,
  JWS_PS256,
} jws_alg_t;

typedef enum {
  JWS_KTY_RSA = 1,
  JWS_KTY_EC,
  JWS_KTY_OCT,
} jws_kty_t;

typedef struct jws_key jws_key_t;

/* The JWA name of alg ("RS256" ...), or NULL for JWS_ALG_NONE. */
const char *jws_alg_name(jws_alg_t alg);

/* Parses a JWA name. @return 0 and *out set, or GRANTD_EINVALID for any
 * other name (including "none"). */
int jws_alg_parse(const char *name, jws_alg_t *out);

/* Parses a private key from PEM or JWK text (the first non-space byte
 * decides: '{' = JWK, else PEM).
 * @param out  set to a new key on success (jws_key_free() it), NULL on error.
 * @param why  on error, set to a static sentence saying what is wrong.
 * @return 0, or GRANTD_EINVALID. */
int jws_key_parse(const char *text, size_t len, jws_key_t **out, const char **why);

/* Makes an HS256 key from a shared secret (client_secret_jwt); the bytes
 * are copied. @return 0, or GRANTD_EINVALID (with *why) when n is 0. */
int jws_key_from_secret(const void *secret, size_t n, jws_key_t **out, const char **why);

/* Wipes and frees k. NULL-safe. */
void jws_key_free(jws_key_t *k);

jws_kty_t jws_key_type(const jws_key_t *k);

/* The bits of an RSA modulus, of an EC curve order, or of an oct secret. */
unsigned jws_key_bits(const jws_key_t *k);

/* The algorithm a key signs with when none is configured: RS256 for RSA
 * (PS256 only when configured),
 * ES256 for EC P-256, HS256 for oct. */
jws_alg_t jws_key_default_alg(const jws_key_t *k);

/* Checks that k can sign with alg under RFC 7518's size rules.
 * @return 0, or GRANTD_EINVALID with *why set (wrong key type, too small,
 *         no algorithm). */
int jws_key_check_alg(const jws_key_t *k, jws_alg_t alg, const char **why);

/* Appends the compact JWS BASE64URL(header) "." BASE64URL(payload) "."
 * BASE64URL(signature) of the given header and payload bytes, exactly as
 * given (the test vectors of RFC 7515 sign headers with line breaks).
 * @return 0; GRANTD_EINVALID when jws_key_check_alg() refuses (out is then
 *         restored to its previous length). */
int jws_sign_compact(const jws_key_t *k, jws_alg_t alg, const void *header, size_t header_len,
                     const void *payload, size_t payload_len, buf_t *out);

/* Builds the header {"alg", "typ" (when non-NULL), "kid" (when non-NULL)}
 * and signs the compact JSON of claims (an object) with it.
 * @return as jws_sign_compact(). */
int jws_sign_claims(const jws_key_t *k, jws_alg_t alg, const char *kid, const char *typ,
                    const json_t *claims, buf_t *out);

/* Verifies a compact JWS against k (its public half for RSA/EC) and alg:
 * the header's "alg" must be alg, and the signature must verify. When
 * payload is non-NULL the decoded payload is appended to it.
 * @return 0, or GRANTD_EINVALID (malformed, other alg, bad signature). */
int jws_verify_compact(const jws_key_t *k, jws_alg_t alg, const char *jws, size_t n,
                       buf_t *payload);

/* Makes the public JWK of k (RFC 7517 section 4, RFC 7518 section 6):
 * {"kty","n","e"} or {"kty","crv","x","y"}, then "kid" (kid when non-NULL,
 * else the RFC 7638 thumbprint of the key), "alg" (when not JWS_ALG_NONE)
 * and "use": "sig". Never any private member.
 * @return a new reference, or NULL for an oct key (nothing public). */
json_t *jws_key_public_jwk(const jws_key_t *k, const char *kid, jws_alg_t alg);

/* Appends the RFC 7638 JWK thumbprint (SHA-256, base64url, 43 characters)
 * of the JWK object jwk: the hash of its required members only (RSA: e,
 * kty, n; EC: crv, kty, x, y; oct: k, kty) in lexicographic order with no
 * whitespace; other members do not change it.
 * @return 0; GRANTD_EINVALID (out unchanged) for another kty or a required
 *         member missing or not a string. */
int jws_jwk_thumbprint(const json_t *jwk, buf_t *out);

/* Appends the RFC 7638 thumbprint of k's public JWK (the default "kid").
 * @return 0, or GRANTD_EINVALID for an oct key. */
int jws_key_thumbprint(const jws_key_t *k, buf_t *out);

#endif
