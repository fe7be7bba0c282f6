/*
 * The JWT bearer grant's assertion (RFC 7523 section 2.1); see
 * jwt_bearer.h. Like client assertions (client_assertion.c), the key is
 * parsed from its (unsealed in memory) text for each assertion and freed
 * right after: no key outlives the request that used it.
 */
#include "oauth/jwt_bearer.h"

#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/rand.h"
#include "oauth/jws.h"

static bool nonempty(const char *s)
{
  return s != NULL && *s != '\0';
}

/* Parses key and picks the algorithm; *k NULL on error. */
static int load_key(const char *key, const char *alg_name, jws_key_t **k, jws_alg_t *alg,
                    const char **why)
{
  *k = NULL;
  if (!nonempty(key)) {
    *why = "the jwt_bearer grant needs a signing_key (the connection's or the provider's)";
    return GRANTD_EINVALID;
  }
  if (jws_key_parse(key, strlen(key), k, why) != 0)
    return GRANTD_EINVALID;
  if (jws_key_type(*k) == JWS_KTY_OCT) {
    *why = "signing_key must be an RSA or EC private key";
  } else if (alg_name != NULL && jws_alg_parse(alg_name, alg) != 0) {
    *why = "signing_alg must be RS256 or ES256";
  } else {
    if (alg_name == NULL)
      *alg = jws_key_default_alg(*k);
    if (jws_key_check_alg(*k, *alg, why) == 0)
      return 0;
  }
  jws_key_free(*k);
  *k = NULL;
  return GRANTD_EINVALID;
}

int jwt_bearer_check_key(const char *key, const char *alg, const char **why)
{
  jws_key_t *k;
  jws_alg_t a = JWS_ALG_NONE;
  int rc = load_key(key, alg, &k, &a, why);
  jws_key_free(k);
  return rc;
}

int jwt_bearer_check_claims(const char *claims, const char **why)
{
  if (claims == NULL)
    return 0;
  json_t *o = json_loads(claims, 0, NULL);
  int rc = 0;
  if (!json_is_object(o)) {
    *why = "assertion_claims must be a JSON object";
    rc = GRANTD_EINVALID;
  } else if (json_object_get(o, "iat") || json_object_get(o, "exp") || json_object_get(o, "jti")) {
    *why = "assertion_claims cannot set iat, exp or jti: grantd sets them for every assertion";
    rc = GRANTD_EINVALID;
  }
  json_decref(o);
  return rc;
}

/* Copies the members of the JSON object text src over dst. */
static void merge(json_t *dst, const char *src)
{
  if (src == NULL)
    return;
  json_t *o = json_loads(src, 0, NULL);
  if (json_is_object(o))
    json_object_update(dst, o);
  json_decref(o);
}

int jwt_bearer_assertion(const provider_t *p, const conn_t *c, const char *client_id,
                         const char *aud, const char *scope, int64_t now_ms, buf_t *out)
{
  bool own = c != NULL && nonempty(c->signing_key);
  const char *key = own ? c->signing_key : p->signing_key;
  const char *alg_name = own ? c->signing_alg : p->signing_alg;
  const char *kid_name = own ? c->signing_key_id : p->signing_key_id;
  const char *why = NULL;
  jws_key_t *k;
  jws_alg_t alg = JWS_ALG_NONE;
  if (load_key(key, alg_name, &k, &alg, &why) != 0)
    return GRANTD_ECONFIG;

  json_t *claims = json_object();
  if (nonempty(client_id))
    json_object_set_new(claims, "iss", json_string(client_id));
  if (nonempty(aud))
    json_object_set_new(claims, "aud", json_string(aud));
  if (p->assertion_scope_claim && nonempty(scope))
    json_object_set_new(claims, "scope", json_string(scope));
  merge(claims, p->assertion_claims);
  if (c != NULL)
    merge(claims, c->assertion_claims);
  unsigned char r[16];
  buf_t jti = BUF_INIT, kid = BUF_INIT;
  rand_bytes(r, sizeof(r));
  b64url_encode(&jti, r, sizeof(r));
  json_int_t iat = (json_int_t)(now_ms / 1000);
  json_object_set_new(claims, "iat", json_integer(iat));
  json_object_set_new(claims, "exp", json_integer(iat + JWT_BEARER_LIFETIME_S));
  json_object_set_new(claims, "jti", json_stringn(jti.data, jti.len));
  if (nonempty(kid_name))
    buf_puts(&kid, kid_name);
  else
    jws_key_thumbprint(k, &kid);

  int rc = GRANTD_ECONFIG;
  const json_t *iss = json_object_get(claims, "iss"), *au = json_object_get(claims, "aud");
  if (json_is_string(iss) && json_string_length(iss) > 0 && au != NULL && !json_is_null(au) &&
      jws_sign_claims(k, alg, kid.len ? buf_cstr(&kid) : NULL, "JWT", claims, out) == 0)
    rc = 0;
  json_decref(claims);
  buf_free(&jti);
  buf_free(&kid);
  jws_key_free(k);
  return rc;
}
