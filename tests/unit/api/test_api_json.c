/* Unit tests for api_json.c: request-body validation (every rejection names
 * its field and picks the right status) and rendering without secrets. */
#include "support.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_json.h"

static json_t *parse(const char *s)
{
  json_error_t je;
  json_t *j = json_loads(s, 0, &je);
  assert_non_null(j);
  return j;
}

static void expect_provider_err(const char *body, int status, const char *code, const char *needle)
{
  json_t *j = parse(body);
  provider_t p;
  api_err_t e;
  assert_int_equal(api_provider_from_json(j, "acme", &p, &e), -1);
  assert_int_equal(e.status, status);
  assert_string_equal(e.code, code);
  if (needle && strstr(e.message, needle) == NULL)
    fail_msg("message '%s' does not name '%s'", e.message, needle);
  json_decref(j);
}

static void test_provider_ok(void **state)
{
  (void)state;
  json_t *j = parse("{\"token_url\":\"https://p.example/token\",\"client_id\":\"id\","
                    "\"client_secret\":\"s3cr3t\",\"client_auth\":\"client_secret_post\","
                    "\"scopes\":[\"a\",\"b\"],\"scope_separator\":\",\",\"pkce\":false,"
                    "\"token_params\":{\"audience\":\"x\"},\"default_expires_in\":3600,"
                    "\"rate_limit_count\":10,\"rate_limit_window\":600}");
  provider_t p;
  api_err_t e;
  assert_int_equal(api_provider_from_json(j, "acme", &p, &e), 0);
  assert_string_equal(p.name, "acme");
  assert_string_equal(p.client_secret, "s3cr3t");
  assert_int_equal(p.client_auth, CLIENT_AUTH_POST);
  assert_int_equal(p.scopes.n, 2);
  assert_string_equal(p.scope_separator, ",");
  assert_false(p.pkce);
  assert_string_equal(kvlist_get(&p.token_params, "audience"), "x");
  assert_int_equal(p.default_expires_in, 3600);
  json_t *out = api_provider_to_json(&p);
  char *txt = json_dumps(out, 0);
  assert_null(strstr(txt, "s3cr3t"));
  assert_true(json_is_true(json_object_get(out, "has_client_secret")));
  free(txt);
  json_decref(out);
  provider_free(&p);
  json_decref(j);
}

static void test_provider_errors(void **state)
{
  (void)state;
  expect_provider_err("{\"token_url\":\"https://x/t\",\"bogus\":1}", 422, "unknown_field", "bogus");
  expect_provider_err("{\"client_id\":\"x\"}", 422, "missing_field", "token_url");
  expect_provider_err("{\"token_url\":5}", 422, "invalid_field", "token_url");
  expect_provider_err("{\"token_url\":\"ftp://x/t\"}", 422, "invalid_field", "token_url");
  expect_provider_err("{\"token_url\":\"http://x/t\"}", 422, "insecure_url", NULL);
  expect_provider_err("{\"token_url\":\"https://x/t\",\"client_auth\":\"jwt\"}", 422, "invalid_field",
                      "client_auth");
  expect_provider_err("{\"token_url\":\"https://x/t\",\"scopes\":\"a b\"}", 422, "invalid_field",
                      "scopes");
  expect_provider_err("{\"token_url\":\"https://x/t\",\"rate_limit_count\":3}", 422, "invalid_field",
                      "rate_limit_count");
  expect_provider_err("{\"token_url\":\"https://x/t\",\"refresh_lead_min\":100,\"refresh_lead_max\":10}",
                      422, "invalid_field", "refresh_lead_min");
  expect_provider_err("{\"token_url\":\"https://x/t\",\"pkce\":\"yes\"}", 422, "invalid_field", "pkce");
  expect_provider_err("{\"token_url\":\"\"}", 422, "invalid_field", "token_url");
  expect_provider_err("[1,2]", 400, "invalid_json", NULL);
  /* http:// is accepted when the provider opts in for local testing. */
  json_t *j = parse("{\"token_url\":\"http://127.0.0.1:1/t\",\"allow_insecure_http\":true}");
  provider_t p;
  api_err_t e;
  assert_int_equal(api_provider_from_json(j, "local", &p, &e), 0);
  provider_free(&p);
  json_decref(j);
}

static void expect_conn_err(const char *body, const char *id, int status, const char *code,
                            const char *needle)
{
  json_t *j = parse(body);
  conn_t c;
  api_err_t e;
  assert_int_equal(api_conn_from_json(j, id, &c, &e), -1);
  assert_int_equal(e.status, status);
  assert_string_equal(e.code, code);
  if (needle && strstr(e.message, needle) == NULL)
    fail_msg("message '%s' does not name '%s'", e.message, needle);
  json_decref(j);
}

static void test_conn_import_ok(void **state)
{
  (void)state;
  json_t *j = parse("{\"tenant\":\"t1\",\"provider\":\"acme\",\"grant\":\"refresh_token\","
                    "\"access_token\":\"AT-secret\",\"refresh_token\":\"RT-secret\","
                    "\"expires_at\":\"2030-01-02T03:04:05Z\",\"metadata\":{\"k\":1},"
                    "\"extra\":{\"instance_url\":\"https://i\",\"id_token\":\"IDT\"}}");
  conn_t c;
  api_err_t e;
  assert_int_equal(api_conn_from_json(j, "c-1", &c, &e), 0);
  assert_string_equal(c.id, "c-1");
  assert_int_equal(c.grant, GRANT_REFRESH_TOKEN);
  assert_int_equal(c.expires_at, 1893553445000LL);
  json_t *out = api_conn_to_json(&c);
  char *txt = json_dumps(out, 0);
  assert_null(strstr(txt, "AT-secret"));
  assert_null(strstr(txt, "RT-secret"));
  assert_null(strstr(txt, "IDT")); /* id_token only on the token endpoint */
  assert_non_null(strstr(txt, "\"expires_at\": \"2030-01-02T03:04:05Z\""));
  free(txt);
  json_decref(out);
  json_t *tok = api_token_to_json(&c);
  assert_string_equal(json_string_value(json_object_get(tok, "access_token")), "AT-secret");
  assert_string_equal(json_string_value(json_object_get(tok, "token_type")), "Bearer");
  json_decref(tok);
  conn_free(&c);
  json_decref(j);
}

static void test_conn_errors(void **state)
{
  (void)state;
  const char *base = "\"tenant\":\"t\",\"provider\":\"acme\"";
  char b[512];
  snprintf(b, sizeof b, "{%s,\"grant\":\"authorization_code\",\"x\":1}", base);
  expect_conn_err(b, "c1", 422, "unknown_field", "'x'");
  expect_conn_err("{\"provider\":\"acme\",\"grant\":\"password\"}", "c1", 422, "missing_field", "tenant");
  snprintf(b, sizeof b, "{%s,\"grant\":\"magic\"}", base);
  expect_conn_err(b, "c1", 422, "invalid_field", "grant");
  snprintf(b, sizeof b, "{%s,\"grant\":\"refresh_token\"}", base);
  expect_conn_err(b, "c1", 422, "missing_field", "refresh_token");
  snprintf(b, sizeof b, "{%s,\"grant\":\"password\",\"username\":\"u\"}", base);
  expect_conn_err(b, "c1", 422, "missing_field", "username");
  snprintf(b, sizeof b, "{%s,\"grant\":\"client_credentials\",\"access_token\":\"a\"}", base);
  expect_conn_err(b, "c1", 422, "invalid_field", "refresh_token");
  snprintf(b, sizeof b, "{%s,\"grant\":\"client_credentials\",\"username\":\"u\"}", base);
  expect_conn_err(b, "c1", 422, "invalid_field", "username");
  snprintf(b, sizeof b, "{%s,\"grant\":\"refresh_token\",\"refresh_token\":\"r\",\"expires_at\":\"soon\"}", base);
  expect_conn_err(b, "c1", 422, "invalid_field", "expires_at");
  snprintf(b, sizeof b, "{%s,\"grant\":\"refresh_token\",\"refresh_token\":\"r\",\"expires_in\":5,\"expires_at\":5}", base);
  expect_conn_err(b, "c1", 422, "invalid_field", "expires_in");
  snprintf(b, sizeof b, "{%s,\"grant\":\"authorization_code\",\"metadata\":[1]}", base);
  expect_conn_err(b, "c1", 422, "invalid_field", "metadata");
  snprintf(b, sizeof b, "{%s,\"grant\":\"authorization_code\"}", base);
  expect_conn_err(b, "bad id", 400, "invalid_id", NULL);
  snprintf(b, sizeof b, "{%s,\"grant\":\"authorization_code\",\"id\":\"other\"}", base);
  expect_conn_err(b, "c1", 422, "invalid_field", "id");
  /* Import lines carry the id in the body. */
  snprintf(b, sizeof b, "{%s,\"grant\":\"authorization_code\"}", base);
  expect_conn_err(b, NULL, 422, "missing_field", "id");
}

static void test_valid_id(void **state)
{
  (void)state;
  char longid[130];
  memset(longid, 'a', 129);
  longid[129] = '\0';
  assert_true(api_valid_id("a"));
  assert_true(api_valid_id("tenant-1:conn_2@x.y~z"));
  assert_false(api_valid_id(""));
  assert_false(api_valid_id(NULL));
  assert_false(api_valid_id("a/b"));
  assert_false(api_valid_id("a b"));
  assert_false(api_valid_id("\xc3\xa9"));
  assert_false(api_valid_id(longid));
  longid[128] = '\0';
  assert_true(api_valid_id(longid));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_provider_ok),
    cmocka_unit_test(test_provider_errors),
    cmocka_unit_test(test_conn_import_ok),
    cmocka_unit_test(test_conn_errors),
    cmocka_unit_test(test_valid_id),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
