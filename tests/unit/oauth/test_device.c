/* Unit tests for oauth/device (RFC 8628): the device authorization
 * response of section 3.2 (the RFC's example, Google's verification_url,
 * the default interval, bounds), error answers classified as token
 * answers, what a poll's answer means (section 3.5), and the two requests
 * grant.h builds, checked against the examples of sections 3.1 and 3.4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "oauth/device.h"
#include "oauth/grant.h"

#define NOW 1700000000000LL
/* RFC 8628 section 3.2. */
#define RFC_RESPONSE \
  "{\"device_code\":\"GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS\",\"user_code\":\"WDJB-MJHT\"," \
  "\"verification_uri\":\"https://example.com/device\",\"verification_uri_complete\":" \
  "\"https://example.com/device?user_code=WDJB-MJHT\",\"expires_in\":1800,\"interval\":5}"

static token_outcome_t parse(int status, const char *body, device_auth_t *d, token_result_t *e)
{
  token_input_t in = {
    .status = status,
    .content_type = "application/json",
    .body = body,
    .body_len = strlen(body),
    .now_ms = NOW,
  };
  return device_auth_parse(&in, d, e);
}

static void test_rfc_example(void **state)
{
  (void)state;
  device_auth_t d;
  token_result_t e;
  assert_int_equal(parse(200, RFC_RESPONSE, &d, &e), TOKEN_OK);
  assert_string_equal(d.device_code, "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS");
  assert_string_equal(d.user_code, "WDJB-MJHT");
  assert_string_equal(d.verification_uri, "https://example.com/device");
  assert_string_equal(d.verification_uri_complete,
                      "https://example.com/device?user_code=WDJB-MJHT");
  assert_int_equal(d.expires_at, NOW + 1800 * 1000);
  assert_int_equal(d.interval, 5);
  device_auth_free(&d);
  token_result_free(&e);
}

static void test_defaults_and_spellings(void **state)
{
  (void)state;
  device_auth_t d;
  token_result_t e;
  /* Google: verification_url; no interval = 5 (section 3.2); a string
   * number for expires_in. */
  assert_int_equal(parse(200,
                         "{\"device_code\":\"AH-1Ng\",\"user_code\":\"GQVQ-JKEC\","
                         "\"verification_url\":\"https://www.google.com/device\","
                         "\"expires_in\":\"1800\"}",
                         &d, &e),
                   TOKEN_OK);
  assert_string_equal(d.verification_uri, "https://www.google.com/device");
  assert_null(d.verification_uri_complete);
  assert_int_equal(d.interval, DEVICE_DEFAULT_INTERVAL_S);
  device_auth_free(&d);
  token_result_free(&e);
  /* An interval past the cap is clamped. */
  assert_int_equal(parse(200,
                         "{\"device_code\":\"x\",\"user_code\":\"U\",\"verification_uri\":"
                         "\"https://e.com/d\",\"expires_in\":60,\"interval\":99999}",
                         &d, &e),
                   TOKEN_OK);
  assert_int_equal(d.interval, DEVICE_MAX_INTERVAL_S);
  device_auth_free(&d);
  token_result_free(&e);
}

static void test_malformed(void **state)
{
  (void)state;
  static const struct {
    const char *body, *member;
  } bad[] = {
    {"{\"user_code\":\"U\",\"verification_uri\":\"https://e.com/d\",\"expires_in\":60}",
     "device_code"},
    {"{\"device_code\":\"x\",\"verification_uri\":\"https://e.com/d\",\"expires_in\":60}",
     "user_code"},
    {"{\"device_code\":\"x\",\"user_code\":\"U\",\"expires_in\":60}", "verification_uri"},
    {"{\"device_code\":\"x\",\"user_code\":\"U\",\"verification_uri\":\"javascript:alert(1)\","
     "\"expires_in\":60}",
     "verification_uri"},
    {"{\"device_code\":\"x\",\"user_code\":\"U\",\"verification_uri\":\"https://e.com/d\","
     "\"verification_uri_complete\":\"https://e.com/d\\n\",\"expires_in\":60}",
     "verification_uri_complete"},
    {"{\"device_code\":\"x\",\"user_code\":\"U\",\"verification_uri\":\"https://e.com/d\"}",
     "expires_in"},
    {"{\"device_code\":\"x\",\"user_code\":\"U\",\"verification_uri\":\"https://e.com/d\","
     "\"expires_in\":60,\"interval\":\"soon\"}",
     "interval"},
    {"{\"device_code\":\"x\\u0001\",\"user_code\":\"U\",\"verification_uri\":\"https://e.com/d\","
     "\"expires_in\":60}",
     "device_code"},
    {"not json at all", "device_code"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    device_auth_t d;
    token_result_t e;
    assert_int_equal(parse(200, bad[i].body, &d, &e), TOKEN_TRANSIENT);
    assert_null(d.device_code);
    assert_string_equal(e.error, TOKEN_ERR_INVALID_RESPONSE);
    assert_non_null(strstr(e.error_description, bad[i].member));
    token_result_free(&e);
  }
}

static void test_errors_classified(void **state)
{
  (void)state;
  device_auth_t d;
  token_result_t e;
  assert_int_equal(parse(401, "{\"error\":\"invalid_client\"}", &d, &e), TOKEN_CONFIG);
  assert_string_equal(e.error, "invalid_client");
  token_result_free(&e);
  assert_int_equal(parse(503, "", &d, &e), TOKEN_TRANSIENT);
  token_result_free(&e);
  assert_int_equal(parse(400, "{\"error\":\"invalid_scope\"}", &d, &e), TOKEN_CONFIG);
  token_result_free(&e);
  /* An error member wins over a 200. */
  assert_int_equal(parse(200, "{\"error\":\"unauthorized_client\"}", &d, &e), TOKEN_CONFIG);
  token_result_free(&e);
}

static device_poll_t poll_of(int status, const char *body)
{
  token_input_t in = {
    .status = status,
    .content_type = "application/json",
    .body = body,
    .body_len = strlen(body),
    .now_ms = NOW,
  };
  token_result_t r;
  token_parse(&in, &r);
  device_poll_t p = device_poll_classify(&r);
  token_result_free(&r);
  return p;
}

static void test_poll_answers(void **state)
{
  (void)state;
  /* Section 3.5's error codes, as RFC 6749 section 5.2 answers (400). */
  assert_int_equal(poll_of(400, "{\"error\":\"authorization_pending\"}"), DEVICE_POLL_PENDING);
  assert_int_equal(poll_of(400, "{\"error\":\"slow_down\"}"), DEVICE_POLL_SLOW_DOWN);
  assert_int_equal(poll_of(400, "{\"error\":\"access_denied\"}"), DEVICE_POLL_DENIED);
  assert_int_equal(poll_of(400, "{\"error\":\"expired_token\"}"), DEVICE_POLL_EXPIRED);
  assert_int_equal(poll_of(400, "{\"error\":\"invalid_grant\"}"), DEVICE_POLL_OTHER);
  assert_int_equal(poll_of(502, "<html>"), DEVICE_POLL_OTHER);
  assert_int_equal(poll_of(200, "{\"access_token\":\"at\",\"token_type\":\"Bearer\","
                                "\"expires_in\":3600,\"refresh_token\":\"rt\"}"),
                   DEVICE_POLL_TOKENS);
}

static provider_t provider(void)
{
  provider_t p;
  memset(&p, 0, sizeof p);
  p.name = "ex";
  p.token_url = "https://server.example.com/token";
  p.device_authorization_url = "https://server.example.com/device_authorization";
  p.client_id = "1406020730";
  p.client_auth = CLIENT_AUTH_POST;
  return p;
}

static void test_requests(void **state)
{
  (void)state;
  provider_t p = provider();
  char *scope[] = {"example_scope"};
  conn_t c;
  memset(&c, 0, sizeof c);
  c.scopes.items = scope;
  c.scopes.n = 1;
  oauth_request_t r;
  /* Section 3.1: a public client, client_id and scope. */
  assert_int_equal(grant_device_authorization_request(&p, &c, &r), 0);
  assert_string_equal(r.url, "https://server.example.com/device_authorization");
  assert_string_equal(r.body, "scope=example_scope&client_id=1406020730");
  oauth_request_free(&r);
  /* token_params belong to the token endpoint only. */
  kv_t tp[] = {{"audience", "api"}};
  p.token_params.items = tp;
  p.token_params.n = 1;
  assert_int_equal(grant_device_authorization_request(&p, &c, &r), 0);
  assert_null(strstr(r.body, "audience"));
  oauth_request_free(&r);
  /* Section 3.4. */
  c.device_code = "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS";
  assert_int_equal(grant_device_code_request(&p, &c, &r), 0);
  assert_string_equal(r.url, "https://server.example.com/token");
  assert_string_equal(r.body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
                              "&device_code=GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS"
                              "&audience=api&client_id=1406020730");
  oauth_request_free(&r);
  /* A configured device_code parameter cannot replace the real one. */
  kv_t evil[] = {{"device_code", "other"}};
  p.token_params.items = evil;
  assert_int_equal(grant_device_code_request(&p, &c, &r), 0);
  assert_null(strstr(r.body, "other"));
  oauth_request_free(&r);
  /* Without an endpoint or a code: nothing is built. */
  c.device_code = NULL;
  assert_int_equal(grant_device_code_request(&p, &c, &r), GRANTD_EINVALID);
  p.device_authorization_url = NULL;
  assert_int_equal(grant_device_authorization_request(&p, &c, &r), GRANTD_ECONFIG);
  assert_null(r.body);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rfc_example),  cmocka_unit_test(test_defaults_and_spellings),
    cmocka_unit_test(test_malformed),    cmocka_unit_test(test_errors_classified),
    cmocka_unit_test(test_poll_answers), cmocka_unit_test(test_requests),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
