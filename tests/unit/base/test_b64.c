/* Unit tests for base/b64: RFC 4648 section 10 vectors, base64url, strict
 * rejection of malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/b64.h"
#include "base/err.h"

static const struct {
  const char *plain, *b64, *b64url;
} vectors[] = {
  {"", "", ""},
  {"f", "Zg==", "Zg"},
  {"fo", "Zm8=", "Zm8"},
  {"foo", "Zm9v", "Zm9v"},
  {"foob", "Zm9vYg==", "Zm9vYg"},
  {"fooba", "Zm9vYmE=", "Zm9vYmE"},
  {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
  (void)state;
  for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    buf_t b = BUF_INIT;
    size_t n = strlen(vectors[i].plain);
    b64_encode(&b, vectors[i].plain, n);
    assert_string_equal(buf_cstr(&b), vectors[i].b64);
    assert_int_equal(b.len, b64_encoded_len(n));
    buf_reset(&b);
    b64url_encode(&b, vectors[i].plain, n);
    assert_string_equal(buf_cstr(&b), vectors[i].b64url);
    assert_int_equal(b.len, b64url_encoded_len(n));
    buf_reset(&b);
    assert_int_equal(b64_decode(&b, vectors[i].b64, strlen(vectors[i].b64)), 0);
    assert_int_equal(b.len, n);
    assert_memory_equal(buf_cstr(&b), vectors[i].plain, n);
    buf_reset(&b);
    assert_int_equal(b64url_decode(&b, vectors[i].b64url, strlen(vectors[i].b64url)), 0);
    assert_int_equal(b.len, n);
    assert_memory_equal(buf_cstr(&b), vectors[i].plain, n);
    buf_free(&b);
  }
}

static void test_alphabets_differ(void **state)
{
  (void)state;
  const unsigned char bin[] = {0xfb, 0xff, 0xbf, 0xfe};
  buf_t b = BUF_INIT;
  b64_encode(&b, bin, sizeof bin);
  assert_string_equal(buf_cstr(&b), "+/+//g==");
  buf_reset(&b);
  b64url_encode(&b, bin, sizeof bin);
  assert_string_equal(buf_cstr(&b), "-_-__g");
  buf_reset(&b);
  /* Each decoder refuses the other's alphabet. */
  assert_int_equal(b64_decode(&b, "-_-__g==", 8), GRANTD_EINVALID);
  assert_int_equal(b64url_decode(&b, "+/+//g", 6), GRANTD_EINVALID);
  assert_int_equal(b64url_decode(&b, "-_-__g", 6), 0);
  assert_memory_equal(b.data, bin, sizeof bin);
  buf_free(&b);
}

static void test_roundtrip_all_lengths(void **state)
{
  (void)state;
  unsigned char bin[256];
  for (size_t i = 0; i < sizeof bin; i++)
    bin[i] = (unsigned char)(i * 37 + 11);
  for (size_t n = 0; n <= sizeof bin; n++) {
    buf_t e = BUF_INIT, d = BUF_INIT;
    b64_encode(&e, bin, n);
    assert_int_equal(b64_decode(&d, e.data, e.len), 0);
    assert_int_equal(d.len, n);
    if (n)
      assert_memory_equal(d.data, bin, n);
    buf_reset(&e);
    buf_reset(&d);
    b64url_encode(&e, bin, n);
    assert_null(memchr(buf_cstr(&e), '=', e.len));
    assert_int_equal(b64url_decode(&d, e.data, e.len), 0);
    assert_int_equal(d.len, n);
    if (n)
      assert_memory_equal(d.data, bin, n);
    buf_free(&e);
    buf_free(&d);
  }
}

static void test_invalid_input(void **state)
{
  (void)state;
  static const char *bad_std[] = {
    "Zg=",      /* length not a multiple of 4 */
    "Zg",       /* padding missing */
    "Z===",     /* too much padding */
    "Zh==",     /* non-zero unused bits */
    "Zm9=",     /* non-zero unused bits */
    "Zm 9v",    /* whitespace */
    "Zm9v\n",   /* newline */
    "Zg==Zg==", /* padding in the middle */
    "Zm9*",     /* bad char */
    "=Zm9",     /* leading padding */
  };
  static const char *bad_url[] = {"Zg==", "Z", "Zm9vY", "Zh", "Zm9", "Zm+v", "Zm/v", "Zm9 v"};
  buf_t b = BUF_INIT;
  buf_puts(&b, "keep");
  for (size_t i = 0; i < sizeof bad_std / sizeof *bad_std; i++) {
    assert_int_equal(b64_decode(&b, bad_std[i], strlen(bad_std[i])), GRANTD_EINVALID);
    assert_string_equal(buf_cstr(&b), "keep"); /* restored */
  }
  for (size_t i = 0; i < sizeof bad_url / sizeof *bad_url; i++) {
    assert_int_equal(b64url_decode(&b, bad_url[i], strlen(bad_url[i])), GRANTD_EINVALID);
    assert_string_equal(buf_cstr(&b), "keep");
  }
  /* An embedded NUL is not in the alphabet either. */
  assert_int_equal(b64url_decode(&b, "Zm\0v", 4), GRANTD_EINVALID);
  /* High bytes. */
  assert_int_equal(b64url_decode(&b, "Zm\xc3\xa9", 4), GRANTD_EINVALID);
  buf_free(&b);
}

static void test_appends(void **state)
{
  (void)state;
  buf_t b = BUF_INIT;
  buf_puts(&b, "Basic ");
  b64_encode(&b, "user:pass", 9);
  assert_string_equal(buf_cstr(&b), "Basic dXNlcjpwYXNz");
  buf_free(&b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rfc4648_vectors),
    cmocka_unit_test(test_alphabets_differ),
    cmocka_unit_test(test_roundtrip_all_lengths),
    cmocka_unit_test(test_invalid_input),
    cmocka_unit_test(test_appends),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
