/* Unit tests for oauth/jwt_bearer through grant_jwt_bearer_request (RFC
 * 7523 section 2.1): the assertion verifies with the key's public half
 * and carries the documented claim sets of Google service accounts
 * (iss = client_email, scope claim, aud = the token endpoint, no sub),
 * Salesforce (iss = consumer key, sub = username, aud =
 * https://login.salesforce.com) and DocuSign (iss = integration key, sub =
 * user id, aud = account-d.docusign.com, scope "signature
 * impersonation"); the connection's key and claims win over the
 * provider's; every assertion has a fresh jti; the request carries client
 * authentication only when the client has some; bad keys and claims are
 * refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "base/url.h"
#include "jws_fixtures.h"
#include "oauth/grant.h"
#include "oauth/jws.h"
#include "oauth/jwt_bearer.h"

#define NOW_MS 1700000000123LL
#define PREFIX "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
#define EC_JWK \
  "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\"," \
  "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"," \
  "\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}"

static provider_t provider(const char *token_url, const char *client_id, const char *key)
{
  provider_t p;
  memset(&p, 0, sizeof p);
  p.name = "p";
  p.token_url = (char *)token_url;
  p.client_id = (char *)client_id;
  p.signing_key = (char *)key;
  return p;
}

/* The assertion in r's body (it must start PREFIX), verified with key;
 * the claims and the rest of the body (after the assertion). */
static json_t *claims_of(const oauth_request_t *r, const char *key, jws_alg_t alg, char *rest,
                         size_t rest_n)
{
  assert_int_equal(strncmp(r->body, PREFIX, strlen(PREFIX)), 0);
  const char *jws = r->body + strlen(PREFIX);
  size_t n = strcspn(jws, "&");
  snprintf(rest, rest_n, "%s", jws + n);
  jws_key_t *k = NULL;
  assert_int_equal(jws_key_parse(key, strlen(key), &k, NULL), 0);
  buf_t payload = BUF_INIT;
  assert_int_equal(jws_verify_compact(k, alg, jws, n, &payload), 0);
  json_t *c = NULL;
  assert_int_equal(json_parse(payload.data, payload.len, &c), 0);
  int64_t iat = 0, exp = 0;
  assert_int_equal(json_get_int(c, "iat", &iat), 0);
  assert_int_equal(json_get_int(c, "exp", &exp), 0);
  assert_int_equal(iat, NOW_MS / 1000);
  assert_int_equal(exp, iat + JWT_BEARER_LIFETIME_S);
  assert_int_equal(strlen(json_get_str(c, "jti")), 22);
  buf_free(&payload);
  jws_key_free(k);
  return c;
}

static void test_google(void **state)
{
  (void)state;
  clock_set_fake(NOW_MS);
  provider_t p = provider("https://oauth2.googleapis.com/token",
                          "sa@project.iam.gserviceaccount.com", RSA_OPENSSL);
  p.assertion_scope_claim = true;
  char *scopes[] = {"https://www.googleapis.com/auth/devstorage.read_only"};
  p.scopes.items = scopes;
  p.scopes.n = 1;
  oauth_request_t r;
  char rest[256], jti[64];
  assert_int_equal(grant_jwt_bearer_request(&p, NULL, &r), 0);
  assert_string_equal(r.url, "https://oauth2.googleapis.com/token");
  assert_null(r.authorization);
  json_t *c = claims_of(&r, RSA_OPENSSL, JWS_RS256, rest, sizeof rest);
  /* No client credentials and no scope parameter: only the assertion. */
  assert_string_equal(rest, "");
  assert_string_equal(json_get_str(c, "iss"), "sa@project.iam.gserviceaccount.com");
  assert_string_equal(json_get_str(c, "aud"), "https://oauth2.googleapis.com/token");
  assert_string_equal(json_get_str(c, "scope"),
                      "https://www.googleapis.com/auth/devstorage.read_only");
  assert_null(json_object_get(c, "sub"));
  strcpy(jti, json_get_str(c, "jti"));
  json_decref(c);
  oauth_request_free(&r);
  /* Domain-wide delegation: the connection names the user. A renewal is
   * a fresh assertion. */
  conn_t cn;
  memset(&cn, 0, sizeof cn);
  cn.assertion_claims = "{\"sub\":\"user@example.com\"}";
  assert_int_equal(grant_jwt_bearer_request(&p, &cn, &r), 0);
  c = claims_of(&r, RSA_OPENSSL, JWS_RS256, rest, sizeof rest);
  assert_string_equal(json_get_str(c, "sub"), "user@example.com");
  assert_string_not_equal(json_get_str(c, "jti"), jti);
  json_decref(c);
  oauth_request_free(&r);
  clock_clear_fake();
}

static void test_salesforce(void **state)
{
  (void)state;
  clock_set_fake(NOW_MS);
  /* The provider has no key; the connection brings its own (ES256 here,
   * to show the connection's key is the one used). */
  provider_t p = provider("https://login.salesforce.com/services/oauth2/token",
                          "3MVG99OxTyEMCQ3gNp2PjkqeZKxnmAiG1xV4oHh9AKL", NULL);
  p.assertion_claims = "{\"aud\":\"https://login.salesforce.com\"}";
  conn_t cn;
  memset(&cn, 0, sizeof cn);
  cn.signing_key = (char *)RSA_PKCS1;
  cn.signing_key_id = "sf-1";
  cn.assertion_claims = "{\"sub\":\"my@email.com\"}";
  oauth_request_t r;
  char rest[256];
  assert_int_equal(grant_jwt_bearer_request(&p, &cn, &r), 0);
  json_t *c = claims_of(&r, RSA_PKCS1, JWS_RS256, rest, sizeof rest);
  assert_string_equal(json_get_str(c, "iss"), "3MVG99OxTyEMCQ3gNp2PjkqeZKxnmAiG1xV4oHh9AKL");
  assert_string_equal(json_get_str(c, "sub"), "my@email.com");
  assert_string_equal(json_get_str(c, "aud"), "https://login.salesforce.com");
  assert_null(json_object_get(c, "scope"));
  json_decref(c);
  oauth_request_free(&r);
  /* A key of the wrong kind for its configured algorithm: nothing. */
  cn.signing_alg = "ES256";
  assert_int_equal(grant_jwt_bearer_request(&p, &cn, &r), GRANTD_ECONFIG);
  assert_null(r.body);
  clock_clear_fake();
}

static void test_docusign(void **state)
{
  (void)state;
  clock_set_fake(NOW_MS);
  provider_t p = provider("https://account-d.docusign.com/oauth/token",
                          "6a1f0e2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", EC_JWK);
  p.assertion_claims = "{\"aud\":\"account-d.docusign.com\"}";
  p.assertion_scope_claim = true;
  char *scopes[] = {"signature", "impersonation"};
  conn_t cn;
  memset(&cn, 0, sizeof cn);
  cn.scopes.items = scopes;
  cn.scopes.n = 2;
  cn.assertion_claims = "{\"sub\":\"9b8a7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d\"}";
  oauth_request_t r;
  char rest[256];
  assert_int_equal(grant_jwt_bearer_request(&p, &cn, &r), 0);
  json_t *c = claims_of(&r, EC_JWK, JWS_ES256, rest, sizeof rest);
  assert_string_equal(json_get_str(c, "iss"), "6a1f0e2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b");
  assert_string_equal(json_get_str(c, "sub"), "9b8a7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d");
  assert_string_equal(json_get_str(c, "aud"), "account-d.docusign.com");
  assert_string_equal(json_get_str(c, "scope"), "signature impersonation");
  assert_string_equal(rest, "");
  json_decref(c);
  oauth_request_free(&r);
  clock_clear_fake();
}

static void test_client_auth_and_scope_param(void **state)
{
  (void)state;
  clock_set_fake(NOW_MS);
  provider_t p = provider("https://as.example.com/token", "client", EC_JWK);
  p.client_secret = "s3cret";
  p.client_auth = CLIENT_AUTH_POST;
  char *scopes[] = {"read"};
  p.scopes.items = scopes;
  p.scopes.n = 1;
  oauth_request_t r;
  char rest[256];
  /* A confidential client authenticates (RFC 7523 section 3.1 allows
   * it); the scope is a request parameter (RFC 7523 section 2.1). */
  assert_int_equal(grant_jwt_bearer_request(&p, NULL, &r), 0);
  json_t *c = claims_of(&r, EC_JWK, JWS_ES256, rest, sizeof rest);
  assert_string_equal(rest, "&scope=read&client_id=client&client_secret=s3cret");
  assert_null(json_object_get(c, "scope"));
  json_decref(c);
  oauth_request_free(&r);
  /* No client_id and no iss claim: no assertion. */
  p.client_id = NULL;
  p.client_secret = NULL;
  assert_int_equal(grant_jwt_bearer_request(&p, NULL, &r), GRANTD_ECONFIG);
  /* iss from the claims instead. */
  p.assertion_claims = "{\"iss\":\"someone\"}";
  assert_int_equal(grant_jwt_bearer_request(&p, NULL, &r), 0);
  c = claims_of(&r, EC_JWK, JWS_ES256, rest, sizeof rest);
  assert_string_equal(json_get_str(c, "iss"), "someone");
  json_decref(c);
  oauth_request_free(&r);
  /* No key at all. */
  p.signing_key = NULL;
  assert_int_equal(grant_jwt_bearer_request(&p, NULL, &r), GRANTD_ECONFIG);
  clock_clear_fake();
}

static void test_checks(void **state)
{
  (void)state;
  const char *why = NULL;
  assert_int_equal(jwt_bearer_check_key(EC_JWK, NULL, &why), 0);
  assert_int_equal(jwt_bearer_check_key(RSA_OPENSSL, "RS256", &why), 0);
  assert_int_equal(jwt_bearer_check_key(NULL, "RS256", &why), GRANTD_EINVALID);
  assert_int_equal(jwt_bearer_check_key("-----BEGIN PRIVATE KEY-----\nAAAA\n", NULL, &why),
                   GRANTD_EINVALID);
  assert_int_equal(jwt_bearer_check_key("{\"kty\":\"oct\",\"k\":\"c2VjcmV0LXNlY3JldC1zZWNyZXQt"
                                        "c2VjcmV0LXNlY3JldA\"}",
                                        NULL, &why),
                   GRANTD_EINVALID);
  assert_non_null(strstr(why, "RSA or EC"));
  assert_int_equal(jwt_bearer_check_key(EC_JWK, "RS256", &why), GRANTD_EINVALID);
  assert_int_equal(jwt_bearer_check_key(RSA_1024, NULL, &why), GRANTD_EINVALID);
  assert_int_equal(jwt_bearer_check_claims(NULL, &why), 0);
  assert_int_equal(jwt_bearer_check_claims("{\"sub\":\"x\",\"aud\":[\"a\",\"b\"]}", &why), 0);
  assert_int_equal(jwt_bearer_check_claims("{\"exp\":1}", &why), GRANTD_EINVALID);
  assert_int_equal(jwt_bearer_check_claims("{\"jti\":\"x\"}", &why), GRANTD_EINVALID);
  assert_int_equal(jwt_bearer_check_claims("[1]", &why), GRANTD_EINVALID);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_google),   cmocka_unit_test(test_salesforce),
    cmocka_unit_test(test_docusign), cmocka_unit_test(test_client_auth_and_scope_param),
    cmocka_unit_test(test_checks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
