/* Unit tests for base/json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/json.h"

static json_t *parse(const char *s)
{
  json_t *v = NULL;
  assert_int_equal(json_parse(s, strlen(s), &v), 0);
  assert_non_null(v);
  return v;
}

static void test_parse(void **state)
{
  (void)state;
  json_t *v = parse("{\"a\":1,\"b\":[true,null]}");
  assert_true(json_is_object(v));
  json_decref(v);
  v = parse("[1,2]");
  json_decref(v);
  static const char *bad[] = {"",  "{",     "{\"a\":1,\"a\":2}",   "{} x",
                              "1", "\"s\"", "{\"a\":\"\\u0000\"}", "{'a':1}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    v = (json_t *)1;
    assert_int_equal(json_parse(bad[i], strlen(bad[i]), &v), GRANTD_EINVALID);
    assert_null(v);
  }
  /* Length-bounded: the bytes after n are not read. */
  assert_int_equal(json_parse("{}garbage", 2, &v), 0);
  json_decref(v);
}

static void test_dump(void **state)
{
  (void)state;
  json_t *v = parse("{ \"z\" : 1 , \"a\" : [ \"x\\\"y\", 2.5, null ] }");
  buf_t b = BUF_INIT;
  buf_puts(&b, ">");
  assert_int_equal(json_dump_buf(v, &b), 0);
  assert_string_equal(buf_cstr(&b), ">{\"z\":1,\"a\":[\"x\\\"y\",2.5,null]}");
  json_decref(v);
  buf_reset(&b);
  json_t *s = json_string("plain");
  assert_int_equal(json_dump_buf(s, &b), 0);
  assert_string_equal(buf_cstr(&b), "\"plain\"");
  json_decref(s);
  buf_reset(&b);
  buf_puts(&b, "keep");
  assert_int_equal(json_dump_buf(NULL, &b), GRANTD_EINVALID);
  assert_string_equal(buf_cstr(&b), "keep");
  buf_free(&b);
  buf_t e = BUF_INIT;
  assert_int_equal(json_dump_buf(NULL, &e), GRANTD_EINVALID);
  buf_free(&e);
}

static void test_getters(void **state)
{
  (void)state;
  json_t *v = parse("{\"s\":\"str\",\"i\":42,\"r\":1.5,\"n\":null,"
                    "\"t\":true,\"f\":false,\"si\":\"3600\"}");
  assert_string_equal(json_get_str(v, "s"), "str");
  assert_null(json_get_str(v, "i"));
  assert_null(json_get_str(v, "missing"));
  assert_null(json_get_str(v, "n"));
  assert_null(json_get_str(NULL, "s"));
  json_t *arr = json_array();
  assert_null(json_get_str(arr, "s"));

  int64_t i = 7;
  assert_int_equal(json_get_int(v, "i", &i), 0);
  assert_int_equal(i, 42);
  assert_int_equal(json_get_int(v, "r", &i), GRANTD_EINVALID);
  assert_int_equal(json_get_int(v, "si", &i), GRANTD_EINVALID);
  assert_int_equal(json_get_int(v, "n", &i), GRANTD_ENOT_FOUND);
  assert_int_equal(json_get_int(v, "missing", &i), GRANTD_ENOT_FOUND);
  assert_int_equal(json_get_int(arr, "i", &i), GRANTD_ENOT_FOUND);
  assert_int_equal(i, 42);

  int b = -1;
  assert_int_equal(json_get_bool(v, "t", &b), 0);
  assert_int_equal(b, 1);
  assert_int_equal(json_get_bool(v, "f", &b), 0);
  assert_int_equal(b, 0);
  assert_int_equal(json_get_bool(v, "i", &b), GRANTD_EINVALID);
  assert_int_equal(json_get_bool(v, "n", &b), GRANTD_ENOT_FOUND);
  assert_int_equal(json_get_bool(v, "x", &b), GRANTD_ENOT_FOUND);
  json_decref(arr);
  json_decref(v);
}

static void test_check_fields(void **state)
{
  (void)state;
  static const char *const allowed[] = {"name", "client_id", "scopes", NULL};
  const char *bad = "x";
  json_t *v = parse("{\"name\":1,\"scopes\":[]}");
  assert_int_equal(json_check_fields(v, allowed, &bad), 0);
  assert_null(bad);
  json_decref(v);
  v = parse("{\"name\":1,\"client_secert\":\"typo\",\"zzz\":2}");
  assert_int_equal(json_check_fields(v, allowed, &bad), GRANTD_EINVALID);
  assert_string_equal(bad, "client_secert"); /* the first one */
  json_decref(v);
  v = parse("{}");
  assert_int_equal(json_check_fields(v, allowed, &bad), 0);
  json_decref(v);
  v = parse("{\"a\":1}");
  static const char *const none[] = {NULL};
  assert_int_equal(json_check_fields(v, none, &bad), GRANTD_EINVALID);
  assert_string_equal(bad, "a");
  json_decref(v);
  v = parse("[1]");
  assert_int_equal(json_check_fields(v, allowed, &bad), GRANTD_EINVALID);
  assert_null(bad);
  json_decref(v);
  assert_int_equal(json_check_fields(NULL, allowed, &bad), GRANTD_EINVALID);
}

static bool all_zero(const json_t *s)
{
  const char *p = json_string_value(s);
  for (size_t i = 0; i < json_string_length(s); i++)
    if (p[i] != '\0')
      return false;
  return true;
}

static void test_wipe_strings(void **state)
{
  (void)state;
  json_t *v = NULL;
  const char *text =
    "{\"a\":\"top\",\"n\":5,\"o\":{\"b\":\"nested\",\"l\":[\"x1\",{\"c\":\"deep\"},true]}}";
  assert_int_equal(json_parse(text, strlen(text), &v), 0);
  json_wipe_strings(v);
  json_t *o = json_object_get(v, "o"), *l = json_object_get(o, "l");
  assert_true(all_zero(json_object_get(v, "a")));
  assert_int_equal(json_string_length(json_object_get(v, "a")), 3);
  assert_true(all_zero(json_object_get(o, "b")));
  assert_true(all_zero(json_array_get(l, 0)));
  assert_true(all_zero(json_object_get(json_array_get(l, 1), "c")));
  assert_int_equal(json_integer_value(json_object_get(v, "n")), 5);
  assert_true(json_is_true(json_array_get(l, 2)));
  assert_non_null(json_object_get(o, "b")); /* keys stay */
  json_wipe_strings(NULL);
  json_decref(v);
}

/* The one string escaper: short escapes for quote, backslash, \n \t \r;
 * \u00XX for other controls and DEL; valid UTF-8 as is; invalid bytes
 * U+FFFD; a cut adds "..." inside the quotes. Every output parses back. */
static void put_str_eq(const char *in, size_t max, const char *want)
{
  buf_t b = BUF_INIT;
  json_put_str(&b, in, max);
  buf_putc(&b, '\0');
  assert_string_equal(b.data, want);
  json_error_t e;
  json_t *v = json_loads(b.data, JSON_DECODE_ANY, &e);
  assert_non_null(v);
  json_decref(v);
  buf_free(&b);
}

static void test_put_str(void **state)
{
  (void)state;
  put_str_eq("", SIZE_MAX, "\"\"");
  put_str_eq("plain token-1.2_3~", SIZE_MAX, "\"plain token-1.2_3~\"");
  put_str_eq("a\"b\\c", SIZE_MAX, "\"a\\\"b\\\\c\"");
  put_str_eq("l1\nl2\tx\ry", SIZE_MAX, "\"l1\\nl2\\tx\\ry\"");
  put_str_eq("\x01\x1f\x7f", SIZE_MAX, "\"\\u0001\\u001f\\u007f\"");
  put_str_eq("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", SIZE_MAX,
             "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  /* overlong '/', a lone continuation byte, a surrogate, a truncated tail */
  put_str_eq("\xc0\xaf|\x80|\xed\xa0\x80|\xe2\x82", SIZE_MAX,
             "\"\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
             "\xef\xbf\xbd\xef\xbf\xbd\"");
  put_str_eq("abcdef", 3, "\"abc...\"");
  put_str_eq("abc", 3, "\"abc\"");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse),        cmocka_unit_test(test_dump),
    cmocka_unit_test(test_getters),      cmocka_unit_test(test_check_fields),
    cmocka_unit_test(test_wipe_strings), cmocka_unit_test(test_put_str),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
