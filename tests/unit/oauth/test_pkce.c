/* Unit tests for oauth/pkce: the RFC 7636 appendix B known answer, verifier
 * and state lengths and alphabet, uniqueness, verifier validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "oauth/pkce.h"

static void test_rfc7636_appendix_b(void **state)
{
  (void)state;
  buf_t b = BUF_INIT;
  assert_int_equal(pkce_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", &b), 0);
  assert_string_equal(buf_cstr(&b), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  assert_int_equal(b.len, PKCE_CHALLENGE_LEN);
  /* The challenge appends: a prefix already in the buffer is kept. */
  buf_reset(&b);
  buf_puts(&b, "x=");
  assert_int_equal(pkce_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", &b), 0);
  assert_string_equal(buf_cstr(&b), "x=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  buf_free(&b);
}

static void test_challenge_128_chars(void **state)
{
  (void)state;
  /* A maximal verifier using every unreserved punctuation character; the
   * expected value was computed independently (sha256 | base64url). */
  char v[129];
  for (int i = 0; i < 128; i++)
    v[i] = "abc-._~XYZ019"[i % 13];
  v[128] = '\0';
  buf_t b = BUF_INIT;
  assert_int_equal(pkce_challenge_s256(v, &b), 0);
  assert_int_equal(b.len, PKCE_CHALLENGE_LEN);
  assert_string_equal(buf_cstr(&b), "TbPi2pSdB3RjzQuTZwHXLUkupT_azj0EyURSaQ9tguI");
  buf_free(&b);
}

static void check_b64url_charset(const char *s)
{
  for (; *s; s++)
    assert_true((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                *s == '-' || *s == '_');
}

static void test_verifier_shape(void **state)
{
  (void)state;
  buf_t prev = BUF_INIT;
  for (int i = 0; i < 200; i++) {
    buf_t v = BUF_INIT;
    pkce_verifier(&v);
    assert_int_equal(v.len, 43);
    check_b64url_charset(buf_cstr(&v));
    assert_true(pkce_verifier_valid(buf_cstr(&v)));
    /* 256 random bits: two equal verifiers mean a broken generator. */
    assert_string_not_equal(buf_cstr(&v), buf_cstr(&prev));
    buf_t c = BUF_INIT;
    assert_int_equal(pkce_challenge_s256(buf_cstr(&v), &c), 0);
    assert_int_equal(c.len, 43);
    check_b64url_charset(buf_cstr(&c));
    buf_free(&c);
    buf_free(&prev);
    prev = v;
  }
  buf_wipe_free(&prev);
}

static void test_state_shape(void **state)
{
  (void)state;
  buf_t a = BUF_INIT, b = BUF_INIT;
  pkce_state(&a);
  pkce_state(&b);
  /* >= 128 bits: 32 bytes encode to 43 characters. */
  assert_int_equal(a.len, 43);
  assert_int_equal(b.len, 43);
  check_b64url_charset(buf_cstr(&a));
  assert_string_not_equal(buf_cstr(&a), buf_cstr(&b));
  /* Appends to what is there. */
  pkce_state(&a);
  assert_int_equal(a.len, 86);
  buf_free(&a);
  buf_free(&b);
}

static void test_verifier_valid(void **state)
{
  (void)state;
  char v[200];
  memset(v, 'a', sizeof v);
  v[42] = '\0';
  assert_false(pkce_verifier_valid(v)); /* 42: too short */
  v[42] = 'a';
  v[43] = '\0';
  assert_true(pkce_verifier_valid(v));
  v[43] = 'a';
  v[128] = '\0';
  assert_true(pkce_verifier_valid(v));
  v[128] = 'a';
  v[129] = '\0';
  assert_false(pkce_verifier_valid(v)); /* 129: too long */
  assert_false(pkce_verifier_valid(NULL));
  assert_false(pkce_verifier_valid(""));

  /* Characters outside the unreserved set. */
  const char bad[] = {'+', '/', '=', ' ', '%', '\x7f', '\x01', '\xc3'};
  for (size_t i = 0; i < sizeof bad; i++) {
    memset(v, 'a', 50);
    v[50] = '\0';
    v[20] = bad[i];
    assert_false(pkce_verifier_valid(v));
    buf_t b = BUF_INIT;
    buf_puts(&b, "keep");
    assert_int_equal(pkce_challenge_s256(v, &b), GRANTD_EINVALID);
    assert_string_equal(buf_cstr(&b), "keep");
    buf_free(&b);
  }
  memset(v, 'a', 50);
  v[0] = '-';
  v[1] = '.';
  v[2] = '_';
  v[3] = '~';
  v[4] = 'Z';
  v[5] = '9';
  assert_true(pkce_verifier_valid(v));

  buf_t b = BUF_INIT;
  assert_int_equal(pkce_challenge_s256(NULL, &b), GRANTD_EINVALID);
  assert_int_equal(pkce_challenge_s256("short", &b), GRANTD_EINVALID);
  assert_int_equal(b.len, 0);
  buf_free(&b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rfc7636_appendix_b), cmocka_unit_test(test_challenge_128_chars),
    cmocka_unit_test(test_verifier_shape),     cmocka_unit_test(test_state_shape),
    cmocka_unit_test(test_verifier_valid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
