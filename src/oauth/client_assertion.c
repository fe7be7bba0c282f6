/*
 * JWT client assertions (RFC 7523 section 2.2); see client_assertion.h.
 *
 * The key is parsed on every assertion from the provider's (unsealed in
 * memory) text: keys are not cached, so a key never outlives the request
 * that used it. An RSA parse costs a CRT self-signature (oauth/jws_key.c),
 * about as much as the assertion's own signature.
 */
#include "oauth/client_assertion.h"

#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/mem.h"
#include "base/rand.h"
#include "oauth/jws.h"

static bool nonempty(const char *s)
{
  return s != NULL && *s != '\0';
}

/* The key and algorithm for p's private key; *k NULL on error. */
static int private_key(const provider_t *p, jws_key_t **k, jws_alg_t *alg, const char **why)
{
  *k = NULL;
  if (!nonempty(p->signing_key)) {
    *why = "private_key_jwt needs a signing_key";
    return GRANTD_EINVALID;
  }
  if (jws_key_parse(p->signing_key, strlen(p->signing_key), k, why) != 0)
    return GRANTD_EINVALID;
  if (jws_key_type(*k) == JWS_KTY_OCT) {
    *why = "signing_key must be an RSA or EC private key (client_secret_jwt uses the client "
           "secret)";
  } else if (p->signing_alg != NULL && jws_alg_parse(p->signing_alg, alg) != 0) {
    *why = "signing_alg must be RS256, PS256 or ES256";
  } else {
    if (p->signing_alg == NULL)
      *alg = jws_key_default_alg(*k);
    if (jws_key_check_alg(*k, *alg, why) == 0)
      return 0;
  }
  jws_key_free(*k);
  *k = NULL;
  return GRANTD_EINVALID;
}

int client_assertion_check(const provider_t *p, const char **why)
{
  jws_key_t *k = NULL;
  jws_alg_t alg = JWS_ALG_NONE;
  if (p->client_auth == CLIENT_AUTH_SECRET_JWT && p->signing_alg != NULL &&
      strcmp(p->signing_alg, "HS256") != 0) {
    *why = "client_secret_jwt signs with HS256 only";
    return GRANTD_EINVALID;
  }
  if (p->client_auth != CLIENT_AUTH_PRIVATE_KEY_JWT && p->signing_key == NULL)
    return 0;
  int rc = private_key(p, &k, &alg, why);
  jws_key_free(k);
  return rc;
}

int client_assertion_make(const provider_t *p, const char *client_id, const char *secret,
                          const char *aud, int64_t now_ms, buf_t *out)
{
  const char *why = NULL;
  jws_key_t *k = NULL;
  jws_alg_t alg = JWS_HS256;
  buf_t kid = BUF_INIT;
  if (p->client_auth == CLIENT_AUTH_PRIVATE_KEY_JWT) {
    if (private_key(p, &k, &alg, &why) != 0)
      return GRANTD_ECONFIG;
    if (nonempty(p->signing_key_id))
      buf_puts(&kid, p->signing_key_id);
    else
      jws_key_thumbprint(k, &kid);
  } else if (p->client_auth == CLIENT_AUTH_SECRET_JWT && nonempty(secret)) {
    if (jws_key_from_secret(secret, strlen(secret), &k, &why) != 0)
      return GRANTD_ECONFIG;
    if (nonempty(p->signing_key_id))
      buf_puts(&kid, p->signing_key_id);
  } else {
    return GRANTD_ECONFIG;
  }
  unsigned char r[16];
  buf_t jti = BUF_INIT;
  rand_bytes(r, sizeof(r));
  b64url_encode(&jti, r, sizeof(r));
  json_int_t iat = (json_int_t)(now_ms / 1000);
  json_t *claims =
    json_pack("{s:s, s:s, s:s, s:s%, s:I, s:I}", "iss", client_id, "sub", client_id, "aud", aud,
              "jti", jti.data, jti.len, "iat", iat, "exp", iat + CLIENT_ASSERTION_LIFETIME_S);
  int rc = claims ? jws_sign_claims(k, alg, kid.len ? buf_cstr(&kid) : NULL, "JWT", claims, out)
                  : GRANTD_EINVALID;
  json_decref(claims);
  buf_free(&jti);
  buf_free(&kid);
  jws_key_free(k);
  return rc == 0 ? 0 : GRANTD_ECONFIG;
}
