/* Unit tests for base/log: lines captured through a pipe are valid JSON
 * (checked with jansson), escaped, redacted and filtered by level. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <cmocka.h>

#include <jansson.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"

static int fds[2];

static int setup(void **state)
{
  (void)state;
  if (pipe(fds) != 0)
    return -1;
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  log_set_fd(fds[1]);
  log_init(LOGL_DEBUG);
  clock_set_fake(1795923600123LL);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  log_set_fd(-1);
  close(fds[0]);
  close(fds[1]);
  clock_clear_fake();
  return 0;
}

/* Everything written so far (the pipe is non-blocking; writes are done). */
static char *drain(void)
{
  static char out[1 << 16];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof out - 1 && (r = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
    n += (size_t)r;
  out[n] = '\0';
  return out;
}

/* Reads exactly one line and parses it. */
static json_t *one_line(void)
{
  char *s = drain();
  size_t len = strlen(s);
  assert_true(len > 0);
  assert_int_equal(s[len - 1], '\n');
  assert_null(memchr(s, '\n', len - 1));
  json_error_t err;
  json_t *v = json_loadb(s, len, 0, &err);
  if (v == NULL)
    fail_msg("invalid JSON: %s", err.text);
  return v;
}

static void test_levels(void **state)
{
  (void)state;
  int lvl = -1;
  assert_int_equal(log_parse_level("debug", &lvl), 0);
  assert_int_equal(lvl, LOGL_DEBUG);
  assert_int_equal(log_parse_level("info", &lvl), 0);
  assert_int_equal(lvl, LOGL_INFO);
  assert_int_equal(log_parse_level("warn", &lvl), 0);
  assert_int_equal(lvl, LOGL_WARN);
  assert_int_equal(log_parse_level("error", &lvl), 0);
  assert_int_equal(lvl, LOGL_ERROR);
  assert_int_equal(log_parse_level("INFO", &lvl), GRANTD_EINVALID);
  assert_int_equal(log_parse_level("warning", &lvl), GRANTD_EINVALID);
  assert_int_equal(log_parse_level("", &lvl), GRANTD_EINVALID);
  assert_int_equal(log_parse_level(NULL, &lvl), GRANTD_EINVALID);
  assert_int_equal(lvl, LOGL_ERROR);
  assert_string_equal(log_level_name(LOGL_WARN), "warn");
  assert_string_equal(log_level_name(9), "unknown");

  log_init(LOGL_WARN);
  assert_false(log_enabled(LOGL_INFO));
  assert_true(log_enabled(LOGL_ERROR));
  log_debug("d");
  log_info("i");
  assert_string_equal(drain(), "");
  log_warn("w");
  json_t *v = one_line();
  assert_string_equal(json_string_value(json_object_get(v, "level")), "warn");
  json_decref(v);
  log_error("e");
  v = one_line();
  assert_string_equal(json_string_value(json_object_get(v, "level")), "error");
  json_decref(v);
  log_init(99); /* clamped to error */
  log_warn("w");
  assert_string_equal(drain(), "");
  log_init(-5); /* clamped to debug */
  log_debug("d");
  v = one_line();
  assert_string_equal(json_string_value(json_object_get(v, "level")), "debug");
  json_decref(v);
}

static void test_fields(void **state)
{
  (void)state;
  log_kv(LOGL_INFO, "refresh_ok", "id", "c1", "#status", LOG_I64(200), "#neg",
         LOG_I64(-9000000000LL), "?ok", 1, "?bad", 0, "~ms", 1.5, "~nan", 0.0 / 0.0, "none",
         (const char *)NULL, (const char *)NULL);
  char *line = drain();
  assert_string_equal(line, "{\"ts\":\"2026-11-29T03:40:00.123Z\",\"level\":\"info\",\"event\":"
                            "\"refresh_ok\",\"id\":\"c1\",\"status\":200,\"neg\":-9000000000,"
                            "\"ok\":true,\"bad\":false,\"ms\":1.5,\"nan\":null,\"none\":null}\n");
  log_info("bare");
  json_t *v = one_line();
  assert_string_equal(json_string_value(json_object_get(v, "event")), "bare");
  assert_int_equal(json_object_size(v), 3);
  json_decref(v);
}

static void test_escaping(void **state)
{
  (void)state;
  log_info("ev\"il\n", "k\\", "quote\" back\\ nl\n cr\r tab\t bell\x07 del\x7f", "utf8",
           "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "bad",
           "a\xff"
           "b\xc3(c\xed\xa0\x80"
           "d\xc0\xaf"
           "e\xe2\x82");
  json_t *v = one_line();
  assert_non_null(json_object_get(v, "k\\"));
  assert_string_equal(json_string_value(json_object_get(v, "event")), "ev\"il\n");
  assert_string_equal(json_string_value(json_object_get(v, "k\\")),
                      "quote\" back\\ nl\n cr\r tab\t bell\x07 del\x7f");
  assert_string_equal(json_string_value(json_object_get(v, "utf8")),
                      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  /* Each invalid byte (stray, truncated, surrogate, overlong) -> U+FFFD. */
  const char *bad = json_string_value(json_object_get(v, "bad"));
  assert_string_equal(bad, "a\xef\xbf\xbd"
                           "b\xef\xbf\xbd(c"
                           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                           "d\xef\xbf\xbd\xef\xbf\xbd"
                           "e\xef\xbf\xbd\xef\xbf\xbd");
  json_decref(v);

  /* Long values are cut. */
  char big[LOG_VALUE_MAX * 2 + 1];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  log_info("big", "v", big);
  v = one_line();
  const char *s = json_string_value(json_object_get(v, "v"));
  assert_int_equal(strlen(s), LOG_VALUE_MAX + 3);
  assert_string_equal(s + LOG_VALUE_MAX, "...");
  json_decref(v);
}

static void test_redaction(void **state)
{
  (void)state;
  static const char *secret_keys[] = {
    "client_secret",    "password",      "Password",      "code_verifier", "api_key",  "master_key",
    "access_token",     "refresh_token", "id_token",      "token",         "TOKEN",    "code",
    "auth_code",        "device_code",   "authorization", "cookie",        "x_apikey", "passwd",
    "client_assertion", "private_key",   "credentials"};
  static const char *plain_keys[] = {"token_type", "token_url",   "id",    "status",
                                     "error_code", "status_code", "event", "provider",
                                     "scope",      "expires_at",  "codec", "tokens_refreshed"};
  for (size_t i = 0; i < sizeof secret_keys / sizeof *secret_keys; i++)
    if (!log_redact_key(secret_keys[i]))
      fail_msg("not redacted: %s", secret_keys[i]);
  for (size_t i = 0; i < sizeof plain_keys / sizeof *plain_keys; i++)
    if (log_redact_key(plain_keys[i]))
      fail_msg("redacted: %s", plain_keys[i]);
  assert_true(log_redact_key("#refresh_token"));
  assert_false(log_redact_key(NULL));

  log_info("oops", "access_token", "SENSITIVE1", "#client_secret", LOG_I64(12345), "?password", 1,
           "~code", 2.5, "id", "c9");
  char *line = drain();
  assert_null(strstr(line, "SENSITIVE1"));
  assert_null(strstr(line, "12345"));
  assert_null(strstr(line, "2.5"));
  json_error_t err;
  json_t *v = json_loads(line, 0, &err);
  assert_non_null(v);
  assert_string_equal(json_string_value(json_object_get(v, "access_token")), "[redacted]");
  assert_string_equal(json_string_value(json_object_get(v, "client_secret")), "[redacted]");
  assert_string_equal(json_string_value(json_object_get(v, "password")), "[redacted]");
  assert_string_equal(json_string_value(json_object_get(v, "code")), "[redacted]");
  /* Pairs after the redacted typed values stay aligned. */
  assert_string_equal(json_string_value(json_object_get(v, "id")), "c9");
  json_decref(v);
}

static void test_set_fd(void **state)
{
  (void)state;
  int prev = log_set_fd(-1);
  assert_int_equal(prev, fds[1]);
  assert_int_equal(log_set_fd(fds[1]), 2);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
    cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
    cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
    cmocka_unit_test_setup_teardown(test_redaction, setup, teardown),
    cmocka_unit_test_setup_teardown(test_set_fd, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
