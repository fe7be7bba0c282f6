/* Unit tests for api_json.c: request-body validation (every rejection names
 * its field and picks the right status) and rendering without secrets. */
#include "support.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_json.h"
#include "base/clock.h"

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
  assert_null(p.refresh_url);
  json_t *out = api_provider_to_json(&p);
  assert_true(json_is_null(json_object_get(out, "refresh_url")));
  char *txt = json_dumps(out, 0);
  assert_null(strstr(txt, "s3cr3t"));
  assert_true(json_is_true(json_object_get(out, "has_client_secret")));
  free(txt);
  json_decref(out);
  provider_free(&p);
  json_decref(j);
}

/* refresh_url is read as a URL and rendered back. */
static void test_provider_refresh_url(void **state)
{
  (void)state;
  json_t *j = parse("{\"token_url\":\"https://p.example/v1/oauth/token\","
                    "\"refresh_url\":\"https://p.example/v1/oauth/refresh\"}");
  provider_t p;
  api_err_t e;
  assert_int_equal(api_provider_from_json(j, "acme", &p, &e), 0);
  assert_string_equal(p.refresh_url, "https://p.example/v1/oauth/refresh");
  json_t *out = api_provider_to_json(&p);
  assert_string_equal(json_string_value(json_object_get(out, "refresh_url")),
                      "https://p.example/v1/oauth/refresh");
  assert_string_equal(json_string_value(json_object_get(out, "token_url")),
                      "https://p.example/v1/oauth/token");
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
  /* Malformed URLs are refused here, before discovery or any request. */
  expect_provider_err("{\"issuer\":\"https://\"}", 422, "invalid_field", "issuer");
  expect_provider_err("{\"issuer\":\"https://:443/x\"}", 422, "invalid_field", "issuer");
  expect_provider_err("{\"issuer\":\"https://a.example:99999\"}", 422, "invalid_field", "issuer");
  expect_provider_err("{\"issuer\":\"https://user@a.example\"}", 422, "invalid_field", "issuer");
  expect_provider_err("{\"issuer\":\"https://a.example/t?x=1\"}", 422, "invalid_field", "issuer");
  expect_provider_err("{\"token_url\":\"https://\"}", 422, "invalid_field", "token_url");
  expect_provider_err("{\"token_url\":\"https://a.example/t\",\"revoke_url\":\"https:///r\"}", 422,
                      "invalid_field", "revoke_url");
  expect_provider_err("{\"token_url\":\"https://a.example/t\",\"refresh_url\":\"https:///r\"}", 422,
                      "invalid_field", "refresh_url");
  expect_provider_err("{\"token_url\":\"https://a.example/t\",\"refresh_url\":\"http://a/r\"}", 422,
                      "insecure_url", NULL);
  expect_provider_err("{\"token_url\":\"https://a.example/t\",\"refresh_url\":7}", 422,
                      "invalid_field", "refresh_url");
  expect_provider_err("{\"token_url\":\"https://a.example/t\",\"revoke_query\":\"yes\"}", 422,
                      "invalid_field", "revoke_query");
  expect_provider_err("{\"token_url\":\"https://x/t\",\"client_auth\":\"jwt\"}", 422,
                      "invalid_field", "client_auth");
  expect_provider_err("{\"token_url\":\"https://x/t\",\"scopes\":\"a b\"}", 422, "invalid_field",
                      "scopes");
  expect_provider_err("{\"token_url\":\"https://x/t\",\"rate_limit_count\":3}", 422,
                      "invalid_field", "rate_limit_count");
  expect_provider_err(
    "{\"token_url\":\"https://x/t\",\"refresh_lead_min\":100,\"refresh_lead_max\":10}", 422,
    "invalid_field", "refresh_lead_min");
  expect_provider_err("{\"token_url\":\"https://x/t\",\"pkce\":\"yes\"}", 422, "invalid_field",
                      "pkce");
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
  expect_conn_err("{\"provider\":\"acme\",\"grant\":\"password\"}", "c1", 422, "missing_field",
                  "tenant");
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
  snprintf(b, sizeof b,
           "{%s,\"grant\":\"refresh_token\",\"refresh_token\":\"r\",\"expires_at\":\"soon\"}",
           base);
  expect_conn_err(b, "c1", 422, "invalid_field", "expires_at");
  snprintf(
    b, sizeof b,
    "{%s,\"grant\":\"refresh_token\",\"refresh_token\":\"r\",\"expires_in\":5,\"expires_at\":5}",
    base);
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

/* Views never carry a credential from extra, at any depth; the token
 * answer carries extra whole. Shapes: Slack's documented oauth.v2.access
 * answer (the bot token consumed at the top, the user's in authed_user,
 * with token rotation), camelCase keys, arrays of objects. */
static void test_conn_view_redacts_extra(void **state)
{
  (void)state;
  static const char *const secrets[] = {
    "xoxp-1234-user-AT", "xoxe-1-user-RT", "IDT-x.y.z", "arr-AT-1",   "arr-AT-2",
    "camel-AT",          "deep-secret",    "pw-123",    "assert-jwt", "cv-verifier",
    "bot-tok",           "cred-val",       "key-123",
  };
  json_t *j = parse(
    "{\"tenant\":\"t\",\"provider\":\"slack\",\"grant\":\"refresh_token\",\"refresh_token\":\"r\","
    "\"extra\":{\"ok\":true,\"bot_user_id\":\"U0KRQLJ9H\",\"app_id\":\"A0KRD7HC3\","
    "\"team\":{\"name\":\"Slack Softball Team\",\"id\":\"T9TK3CUKW\"},"
    "\"enterprise\":{\"name\":\"slack-sports\",\"id\":\"E12345678\"},"
    "\"authed_user\":{\"id\":\"U1234\",\"scope\":\"chat:write\",\"access_token\":\"xoxp-1234-user-"
    "AT\","
    "\"token_type\":\"user\",\"refresh_token\":\"xoxe-1-user-RT\",\"expires_in\":43200},"
    "\"id_token\":\"IDT-x.y.z\","
    "\"accounts\":[{\"name\":\"a\",\"access_token\":\"arr-AT-1\"},[{\"AccessToken\":\"arr-AT-2\"}],"
    "7],"
    "\"profile\":{\"accessToken\":\"camel-AT\",\"nested\":{\"deeper\":{\"client_secret\":\"deep-"
    "secret\","
    "\"Password\":\"pw-123\",\"client_assertion\":\"assert-jwt\",\"code_verifier\":\"cv-verifier\"}"
    "}},"
    "\"bot\":{\"bot_token\":\"bot-tok\",\"has_token\":true,\"old_token\":null,\"credentials\":{"
    "\"v\":\"cred-val\"},"
    "\"api_key\":\"key-123\"}}}");
  conn_t c;
  api_err_t e;
  assert_int_equal(api_conn_from_json(j, "c-slack", &c, &e), 0);
  json_t *view = api_conn_to_json(&c);
  char *txt = json_dumps(view, JSON_COMPACT | JSON_SORT_KEYS);
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
    if (strstr(txt, secrets[i]) != NULL)
      fail_msg("the connection view shows credential #%zu", i);
  json_t *x = json_object_get(view, "extra");
  /* What is not a credential stays, at every depth. */
  assert_true(json_is_true(json_object_get(x, "ok")));
  assert_string_equal(json_string_value(json_object_get(x, "bot_user_id")), "U0KRQLJ9H");
  json_t *au = json_object_get(x, "authed_user");
  assert_string_equal(json_string_value(json_object_get(au, "id")), "U1234");
  assert_string_equal(json_string_value(json_object_get(au, "scope")), "chat:write");
  assert_string_equal(json_string_value(json_object_get(au, "token_type")), "user");
  assert_int_equal(json_integer_value(json_object_get(au, "expires_in")), 43200);
  assert_null(json_object_get(au, "access_token"));
  assert_null(json_object_get(au, "refresh_token"));
  assert_string_equal(json_string_value(json_object_get(json_object_get(x, "team"), "name")),
                      "Slack Softball Team");
  json_t *acc = json_object_get(x, "accounts");
  assert_int_equal(json_array_size(acc), 3);
  assert_string_equal(json_string_value(json_object_get(json_array_get(acc, 0), "name")), "a");
  assert_int_equal(json_object_size(json_array_get(json_array_get(acc, 1), 0)), 0);
  assert_int_equal(json_integer_value(json_array_get(acc, 2)), 7);
  assert_non_null(
    json_object_get(json_object_get(json_object_get(x, "profile"), "nested"), "deeper"));
  json_t *bot = json_object_get(x, "bot");
  assert_true(json_is_true(json_object_get(bot, "has_token")));
  assert_true(json_is_null(json_object_get(bot, "old_token")));
  assert_int_equal(json_object_size(bot), 2);
  free(txt);
  json_decref(view);
  /* The token answer keeps extra as stored, credentials included. */
  json_t *tok = api_token_to_json(&c);
  txt = json_dumps(tok, JSON_COMPACT);
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
    if (strstr(txt, secrets[i]) == NULL)
      fail_msg("the token answer lost extra member #%zu", i);
  free(txt);
  json_decref(tok);
  buf_t b = BUF_INIT;
  api_token_render(&c, &b);
  buf_putc(&b, '\0');
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
    if (strstr(b.data, secrets[i]) == NULL)
      fail_msg("the rendered token answer lost extra member #%zu", i);
  buf_free(&b);
  conn_free(&c);
  json_decref(j);
}

/* expires_in on import takes the spellings a token endpoint may send
 * (number, numeric string, null; huge values clamped to 10 years) and
 * refuses anything else with a 422 naming the field. */
static void test_conn_import_expires_in(void **state)
{
  (void)state;
  static const struct {
    const char *v;
    int64_t secs; /* expected lifetime; -1 = no expires_at */
  } ok[] = {
    {"3600", 3600},
    {"\"3600\"", 3600},
    {"\" 60 \"", 60},
    {"3599.9", 3599},
    {"null", -1},
    {"0", -1},
    {"2147483648", 315360000},
    {"\"99999999999999\"", 315360000},
  };
  static const char *const bad[] = {
    "false", "true", "{}", "[]", "\"zzz\"", "\"\"", "\"1h\"", "-5", "\"-5\"",
  };
  const char *base = "\"tenant\":\"t\",\"provider\":\"acme\",\"grant\":\"refresh_token\","
                     "\"refresh_token\":\"r\"";
  char b[512];
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    snprintf(b, sizeof b, "{%s,\"expires_in\":%s}", base, ok[i].v);
    json_t *j = parse(b);
    conn_t c;
    api_err_t e;
    int64_t t0 = clock_now_ms();
    if (api_conn_from_json(j, "c1", &c, &e) != 0)
      fail_msg("expires_in %s refused: %s", ok[i].v, e.message);
    int64_t t1 = clock_now_ms();
    if (ok[i].secs < 0) {
      assert_int_equal(c.expires_at, 0);
    } else {
      assert_in_range(c.expires_at, t0 + ok[i].secs * 1000, t1 + ok[i].secs * 1000);
    }
    conn_free(&c);
    json_decref(j);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(b, sizeof b, "{%s,\"expires_in\":%s}", base, bad[i]);
    expect_conn_err(b, "c1", 422, "invalid_field", "'expires_in'");
  }
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
  /* Clients resolve dot segments away: such ids could not be reached. */
  assert_false(api_valid_id("."));
  assert_false(api_valid_id(".."));
  assert_true(api_valid_id("..."));
  assert_true(api_valid_id(".a"));
  assert_true(api_valid_id("a.."));
}

/* A message cut to fit its buffer must not end inside a UTF-8 sequence:
 * it goes into the JSON error envelope, which needs valid UTF-8. (Found
 * by fuzz_api_json: an unknown field of 237 'a' and then "é"s.) */
static void test_error_message_utf8(void **state)
{
  (void)state;
  for (int pad = 230; pad < 250; pad++) {
    char body[600];
    int n = snprintf(body, sizeof body, "{\"%.*s", pad,
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    snprintf(body + n, sizeof body - (size_t)n,
             "\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9\":1}");
    json_t *j = parse(body);
    provider_t p;
    api_err_t e;
    assert_int_equal(api_provider_from_json(j, "acme", &p, &e), -1);
    assert_string_equal(e.code, "unknown_field");
    json_t *m = json_string(e.message);
    if (m == NULL)
      fail_msg("pad %d: message is not valid UTF-8: %s", pad, e.message);
    json_decref(m);
    json_decref(j);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_provider_ok),
    cmocka_unit_test(test_provider_errors),
    cmocka_unit_test(test_provider_refresh_url),
    cmocka_unit_test(test_conn_import_ok),
    cmocka_unit_test(test_conn_errors),
    cmocka_unit_test(test_conn_import_expires_in),
    cmocka_unit_test(test_conn_view_redacts_extra),
    cmocka_unit_test(test_valid_id),
    cmocka_unit_test(test_error_message_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
