/* Unit tests for oauth/client_assertion through the grant builders:
 * private_key_jwt (ES256 JWK, RS256 PEM) and client_secret_jwt (HS256)
 * token, refresh and revocation requests carry client_id,
 * client_assertion_type and a client_assertion whose signature verifies
 * and whose claims are RFC 7523's (iss = sub = client_id, aud = token
 * endpoint, unique jti, iat = now, exp = iat + 60), never the secret;
 * configuration errors refused at save time and at request time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/b64.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "jws_fixtures.h"
#include "oauth/client_assertion.h"
#include "oauth/grant.h"
#include "oauth/jws.h"

#define TOKEN_URL "https://auth.example.com/token"
#define NOW_MS 1700000000123LL
#define EC_JWK \
  "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\"," \
  "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"," \
  "\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}"
#define LONG_SECRET "0123456789abcdef0123456789abcdef-long-enough"
#define ASSERTION_PREFIX \
  "client_id=client&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3A" \
  "jwt-bearer&client_assertion="

static provider_t provider(client_auth_t auth, char *key)
{
  provider_t p;
  memset(&p, 0, sizeof p);
  p.name = "acme";
  p.token_url = TOKEN_URL;
  p.revoke_url = "https://auth.example.com/revoke";
  p.client_id = "client";
  p.client_secret = LONG_SECRET;
  p.client_auth = auth;
  p.signing_key = key;
  return p;
}

/* Checks r's body ends with the assertion parameters, verifies the
 * assertion with k and alg, checks its header and claims; copies its jti
 * into jti (>= 64 bytes). */
static void check_assertion(const oauth_request_t *r, const jws_key_t *k, jws_alg_t alg,
                            const char *kid, const char *body_prefix, char *jti)
{
  assert_null(r->authorization);
  assert_null(strstr(r->body, "client_secret"));
  assert_null(strstr(r->body, LONG_SECRET));
  size_t pl = strlen(body_prefix);
  assert_int_equal(strncmp(r->body, body_prefix, pl), 0);
  assert_int_equal(strncmp(r->body + pl, ASSERTION_PREFIX, strlen(ASSERTION_PREFIX)), 0);
  const char *jws = r->body + pl + strlen(ASSERTION_PREFIX);
  buf_t payload = BUF_INIT, hb = BUF_INIT;
  assert_int_equal(jws_verify_compact(k, alg, jws, strlen(jws), &payload), 0);
  const char *dot = strchr(jws, '.');
  assert_int_equal(b64url_decode(&hb, jws, (size_t)(dot - jws)), 0);
  json_t *h = NULL, *c = NULL;
  assert_int_equal(json_parse(hb.data, hb.len, &h), 0);
  assert_string_equal(json_get_str(h, "alg"), jws_alg_name(alg));
  assert_string_equal(json_get_str(h, "typ"), "JWT");
  if (kid)
    assert_string_equal(json_get_str(h, "kid"), kid);
  else
    assert_null(json_object_get(h, "kid"));
  assert_int_equal(json_parse(payload.data, payload.len, &c), 0);
  assert_string_equal(json_get_str(c, "iss"), "client");
  assert_string_equal(json_get_str(c, "sub"), "client");
  assert_string_equal(json_get_str(c, "aud"), TOKEN_URL);
  int64_t iat = 0, exp = 0;
  assert_int_equal(json_get_int(c, "iat", &iat), 0);
  assert_int_equal(json_get_int(c, "exp", &exp), 0);
  assert_int_equal(iat, NOW_MS / 1000);
  assert_int_equal(exp, iat + 60);
  const char *j = json_get_str(c, "jti");
  assert_non_null(j);
  assert_int_equal(strlen(j), 22); /* 128 bits, base64url */
  strcpy(jti, j);
  json_decref(h);
  json_decref(c);
  buf_free(&payload);
  buf_free(&hb);
}

static jws_key_t *key_of(const char *text)
{
  jws_key_t *k = NULL;
  assert_int_equal(jws_key_parse(text, strlen(text), &k, NULL), 0);
  return k;
}

static void test_private_key_jwt_es256(void **state)
{
  (void)state;
  clock_set_fake(NOW_MS);
  provider_t p = provider(CLIENT_AUTH_PRIVATE_KEY_JWT, EC_JWK);
  jws_key_t *k = key_of(EC_JWK);
  buf_t thumb = BUF_INIT;
  assert_int_equal(jws_key_thumbprint(k, &thumb), 0);
  oauth_request_t r;
  char jti1[64], jti2[64];
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), 0);
  assert_string_equal(r.url, TOKEN_URL);
  check_assertion(&r, k, JWS_ES256, buf_cstr(&thumb), "grant_type=client_credentials&", jti1);
  oauth_request_free(&r);
  /* A second request: a fresh jti. */
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), 0);
  check_assertion(&r, k, JWS_ES256, buf_cstr(&thumb), "grant_type=client_credentials&", jti2);
  assert_string_not_equal(jti1, jti2);
  oauth_request_free(&r);
  /* Revocation: sent to revoke_url, the assertion still names the token
   * endpoint. */
  p.signing_key_id = "key-2024";
  assert_int_equal(grant_revoke_request(&p, NULL, "tok", "access_token", &r), 0);
  assert_string_equal(r.url, "https://auth.example.com/revoke");
  check_assertion(&r, k, JWS_ES256, "key-2024", "token=tok&token_type_hint=access_token&", jti1);
  oauth_request_free(&r);
  /* Revocation without a token endpoint has no audience. */
  p.token_url = NULL;
  assert_int_equal(grant_revoke_request(&p, NULL, "tok", NULL, &r), GRANTD_ECONFIG);
  assert_null(r.body);
  buf_free(&thumb);
  jws_key_free(k);
  clock_clear_fake();
}

static void test_private_key_jwt_rs256_pem(void **state)
{
  (void)state;
  clock_set_fake(NOW_MS);
  provider_t p = provider(CLIENT_AUTH_PRIVATE_KEY_JWT, (char *)RSA_PKCS8);
  p.signing_key_id = "rsa-1";
  p.signing_alg = "RS256";
  conn_t c;
  memset(&c, 0, sizeof c);
  c.id = "c1";
  c.refresh_token = "rt-1";
  jws_key_t *k = key_of(RSA_PKCS1);
  oauth_request_t r;
  char jti[64];
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  check_assertion(&r, k, JWS_RS256, "rsa-1", "grant_type=refresh_token&refresh_token=rt-1&", jti);
  oauth_request_free(&r);
  /* PS256 with the same key (RSASSA-PSS, oauth/jws_pss.c). */
  p.signing_alg = "PS256";
  assert_int_equal(grant_refresh_request(&p, &c, &r), 0);
  check_assertion(&r, k, JWS_PS256, "rsa-1", "grant_type=refresh_token&refresh_token=rt-1&", jti);
  oauth_request_free(&r);
  jws_key_free(k);
  clock_clear_fake();
}

static void test_client_secret_jwt(void **state)
{
  (void)state;
  clock_set_fake(NOW_MS);
  provider_t p = provider(CLIENT_AUTH_SECRET_JWT, NULL);
  jws_key_t *k = NULL;
  assert_int_equal(jws_key_from_secret(LONG_SECRET, strlen(LONG_SECRET), &k, NULL), 0);
  oauth_request_t r;
  char jti[64];
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), 0);
  check_assertion(&r, k, JWS_HS256, NULL, "grant_type=client_credentials&", jti);
  oauth_request_free(&r);
  jws_key_free(k);
  /* A connection's own secret is the key then. */
  conn_t c;
  memset(&c, 0, sizeof c);
  c.id = "c1";
  c.client_secret = "another-secret-of-32-bytes-or-more!!";
  assert_int_equal(jws_key_from_secret(c.client_secret, strlen(c.client_secret), &k, NULL), 0);
  assert_int_equal(grant_client_credentials_request(&p, &c, &r), 0);
  check_assertion(&r, k, JWS_HS256, NULL, "grant_type=client_credentials&", jti);
  oauth_request_free(&r);
  jws_key_free(k);
  /* No secret, or one shorter than HS256's 32 bytes: nothing is sent. */
  p.client_secret = NULL;
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), GRANTD_ECONFIG);
  assert_null(r.body);
  p.client_secret = "short";
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), GRANTD_ECONFIG);
  assert_null(r.body);
  clock_clear_fake();
}

static void test_request_time_errors(void **state)
{
  (void)state;
  oauth_request_t r;
  provider_t p = provider(CLIENT_AUTH_PRIVATE_KEY_JWT, NULL);
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), GRANTD_ECONFIG);
  p.signing_key = "not a key";
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), GRANTD_ECONFIG);
  p.signing_key = EC_JWK;
  p.signing_alg = "PS256";
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), GRANTD_ECONFIG);
  p.signing_alg = "RS256"; /* an EC key */
  assert_int_equal(grant_client_credentials_request(&p, NULL, &r), GRANTD_ECONFIG);
  assert_null(r.body);
}

static void save_check(const provider_t *p, const char *reason)
{
  const char *why = NULL;
  if (reason == NULL) {
    assert_int_equal(client_assertion_check(p, &why), 0);
    return;
  }
  assert_int_equal(client_assertion_check(p, &why), GRANTD_EINVALID);
  if (why == NULL || strstr(why, reason) == NULL)
    fail_msg("reason \"%s\" does not contain \"%s\"", why ? why : "(null)", reason);
}

static void test_check_at_save(void **state)
{
  (void)state;
  provider_t p = provider(CLIENT_AUTH_BASIC, NULL);
  save_check(&p, NULL);
  p.client_auth = CLIENT_AUTH_PRIVATE_KEY_JWT;
  save_check(&p, "needs a signing_key");
  p.signing_key = EC_JWK;
  save_check(&p, NULL);
  p.signing_alg = "ES256";
  save_check(&p, NULL);
  p.signing_alg = "PS256";
  save_check(&p, "PS256 needs an RSA key");
  p.signing_key = (char *)RSA_PKCS8;
  save_check(&p, NULL);
  p.signing_key = EC_JWK;
  p.signing_alg = "HS256";
  save_check(&p, "HS256 needs a shared secret");
  p.signing_alg = "none";
  save_check(&p, "signing_alg must be");
  p.signing_alg = NULL;
  p.signing_key = (char *)RSA_PUBLIC;
  save_check(&p, "not a public key");
  p.signing_key = (char *)RSA_1024;
  save_check(&p, "2048");
  p.signing_key = "{\"kty\":\"oct\",\"k\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"}";
  save_check(&p, "RSA or EC");
  /* A key given with another client_auth is still checked (the JWT bearer
   * grant signs with it). */
  p.client_auth = CLIENT_AUTH_POST;
  save_check(&p, "RSA or EC");
  p.signing_key = NULL;
  p.client_auth = CLIENT_AUTH_SECRET_JWT;
  save_check(&p, NULL);
  p.signing_alg = "RS256";
  save_check(&p, "HS256 only");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_private_key_jwt_es256), cmocka_unit_test(test_private_key_jwt_rs256_pem),
    cmocka_unit_test(test_client_secret_jwt),     cmocka_unit_test(test_request_time_errors),
    cmocka_unit_test(test_check_at_save),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
