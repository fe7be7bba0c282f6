/* Unit tests for base/url: percent and form encoding, strict decoding,
 * form iteration and parsing, url_parse, url_append_query. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/url.h"

static const char *enc(const char *s, int mode, buf_t *b)
{
  buf_reset(b);
  url_encode(b, s, strlen(s), mode);
  return buf_cstr(b);
}

static void test_encode(void **state)
{
  (void)state;
  buf_t b = BUF_INIT;
  assert_string_equal(enc("", URL_ENC_STRICT, &b), "");
  assert_string_equal(enc("AZaz09-._~", URL_ENC_STRICT, &b), "AZaz09-._~");
  assert_string_equal(enc("a b", URL_ENC_STRICT, &b), "a%20b");
  assert_string_equal(enc("a b", URL_ENC_FORM, &b), "a+b");
  assert_string_equal(enc("a+b", URL_ENC_FORM, &b), "a%2Bb");
  /* Every RFC 3986 reserved character is encoded (upper-case hex). */
  assert_string_equal(enc(":/?#[]@!$&'()*+,;=", URL_ENC_STRICT, &b),
                      "%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D");
  assert_string_equal(enc("%", URL_ENC_FORM, &b), "%25");
  assert_string_equal(enc("\xc3\xa9\x01\x7f\xff", URL_ENC_STRICT, &b), "%C3%A9%01%7F%FF");
  /* Binary with an embedded NUL is encodable by length. */
  buf_reset(&b);
  url_encode(&b, "a\0b", 3, URL_ENC_STRICT);
  assert_string_equal(buf_cstr(&b), "a%00b");
  buf_free(&b);
}

static void test_decode(void **state)
{
  (void)state;
  buf_t b = BUF_INIT;
  assert_int_equal(url_decode(&b, "a%20b+c", 7, URL_DEC_STRICT), 0);
  assert_string_equal(buf_cstr(&b), "a b+c");
  buf_reset(&b);
  assert_int_equal(url_decode(&b, "a%20b+c", 7, URL_DEC_FORM), 0);
  assert_string_equal(buf_cstr(&b), "a b c");
  buf_reset(&b);
  assert_int_equal(url_decode(&b, "%2b%2B%c3%A9", 12, URL_DEC_FORM), 0);
  assert_string_equal(buf_cstr(&b), "++\xc3\xa9");
  buf_reset(&b);
  assert_int_equal(url_decode(&b, "", 0, URL_DEC_FORM), 0);
  assert_string_equal(buf_cstr(&b), "");

  static const char *bad[] = {"%", "%2", "a%", "%zz", "%2g", "%g2", "%00", "a%00b", "%%20"};
  buf_reset(&b);
  buf_puts(&b, "pre");
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(url_decode(&b, bad[i], strlen(bad[i]), URL_DEC_FORM), GRANTD_EINVALID);
    assert_string_equal(buf_cstr(&b), "pre");
    assert_int_equal(b.len, 3);
  }
  /* A raw NUL byte inside the given length. */
  assert_int_equal(url_decode(&b, "a\0b", 3, URL_DEC_STRICT), GRANTD_EINVALID);
  assert_string_equal(buf_cstr(&b), "pre");
  buf_free(&b);
}

static void test_roundtrip(void **state)
{
  (void)state;
  char all[256];
  for (int i = 1; i < 256; i++)
    all[i - 1] = (char)i;
  all[255] = '\0';
  for (int mode = 0; mode < 2; mode++) {
    buf_t e = BUF_INIT, d = BUF_INIT;
    url_encode(&e, all, 255, mode);
    assert_int_equal(url_decode(&d, e.data, e.len, mode), 0);
    assert_int_equal(d.len, 255);
    assert_memory_equal(d.data, all, 255);
    buf_free(&e);
    buf_free(&d);
  }
  /* A form-encoded '+' survives, a strict %20 decodes under form rules. */
  buf_t d = BUF_INIT;
  assert_int_equal(url_decode(&d, "x%20y", 5, URL_DEC_FORM), 0);
  assert_string_equal(buf_cstr(&d), "x y");
  buf_free(&d);
}

static void test_form_next(void **state)
{
  (void)state;
  const char *s = "a=1&&b=&c&=v&d=x=y&";
  const char *p = s, *end = s + strlen(s);
  slice_t k, v;
  const char *want[][2] = {{"a", "1"}, {"b", ""}, {"c", ""}, {"", "v"}, {"d", "x=y"}};
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(form_next(&p, end, &k, &v), 1);
    assert_int_equal(k.n, strlen(want[i][0]));
    assert_memory_equal(k.p, want[i][0], k.n);
    assert_int_equal(v.n, strlen(want[i][1]));
    assert_memory_equal(v.p, want[i][1], v.n);
  }
  assert_int_equal(form_next(&p, end, &k, &v), 0);
  assert_ptr_equal(p, end);
  p = "";
  assert_int_equal(form_next(&p, p, &k, &v), 0);
  p = "&&&";
  assert_int_equal(form_next(&p, p + 3, &k, &v), 0);
  /* The end bound is honoured. */
  p = "a=1&b=2";
  end = p + 3;
  assert_int_equal(form_next(&p, end, &k, &v), 1);
  assert_int_equal(v.n, 1);
  assert_int_equal(form_next(&p, end, &k, &v), 0);
}

static void test_form_parse(void **state)
{
  (void)state;
  form_t f = FORM_INIT;
  const char *s = "grant_type=authorization_code&code=a%2Fb+c&redirect_uri="
                  "https%3A%2F%2Fx.test%2Fcb&scope=a+b&scope=c&empty=";
  assert_int_equal(form_parse(s, strlen(s), &f), 0);
  assert_int_equal(f.n, 6);
  assert_string_equal(form_get(&f, "grant_type"), "authorization_code");
  assert_string_equal(form_get(&f, "code"), "a/b c");
  assert_string_equal(form_get(&f, "redirect_uri"), "https://x.test/cb");
  assert_string_equal(form_get(&f, "scope"), "a b"); /* first */
  assert_string_equal(form_get(&f, "empty"), "");
  assert_null(form_get(&f, "missing"));
  const char *v;
  assert_int_equal(form_get_unique(&f, "code", &v), 0);
  assert_string_equal(v, "a/b c");
  assert_int_equal(form_get_unique(&f, "scope", &v), GRANTD_EINVALID);
  assert_null(v);
  assert_int_equal(form_get_unique(&f, "nope", &v), GRANTD_ENOT_FOUND);
  assert_null(v);
  form_free(&f);
  assert_int_equal(f.n, 0);
  form_free(&f);
  form_free(NULL);

  /* Many pairs force growth. */
  buf_t body = BUF_INIT;
  for (int i = 0; i < 50; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%d", i);
    form_add(&body, k, "v v&=");
  }
  assert_int_equal(form_parse(body.data, body.len, &f), 0);
  assert_int_equal(f.n, 50);
  assert_string_equal(form_get(&f, "k49"), "v v&=");
  form_free(&f);
  buf_free(&body);

  /* Bad escapes and NULs, in keys or values, fail and leave f empty. */
  static const char *bad[] = {"a=%zz", "a%0=1", "a=1&b=%00", "a=%", "%00=1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(form_parse(bad[i], strlen(bad[i]), &f), GRANTD_EINVALID);
    assert_int_equal(f.n, 0);
    assert_null(f.items);
  }
  assert_int_equal(form_parse("", 0, &f), 0);
  assert_int_equal(f.n, 0);
  form_free(&f);
}

static void test_form_add(void **state)
{
  (void)state;
  buf_t b = BUF_INIT;
  form_add(&b, "grant_type", "refresh_token");
  form_add(&b, "scope", "read write");
  form_add(&b, "x", "a+b&c=d/é");
  assert_string_equal(buf_cstr(&b), "grant_type=refresh_token&scope=read+write"
                                    "&x=a%2Bb%26c%3Dd%2F%C3%A9");
  buf_free(&b);
}

static void test_parse_ok(void **state)
{
  (void)state;
  url_t u;
  assert_int_equal(url_parse("https://Auth.Example.COM/oauth/token", &u), 0);
  assert_string_equal(u.scheme, "https");
  assert_string_equal(u.host, "auth.example.com");
  assert_int_equal(u.port, 443);
  assert_int_equal(u.port_explicit, 0);
  assert_int_equal(u.is_ipv6, 0);
  assert_string_equal(u.path, "/oauth/token");
  assert_null(u.query);
  assert_null(u.fragment);
  buf_t b = BUF_INIT;
  url_host_header(&u, &b);
  assert_string_equal(buf_cstr(&b), "auth.example.com");
  url_free(&u);

  assert_int_equal(url_parse("HTTP://127.0.0.1:8080", &u), 0);
  assert_string_equal(u.scheme, "http");
  assert_string_equal(u.host, "127.0.0.1");
  assert_int_equal(u.port, 8080);
  assert_int_equal(u.port_explicit, 1);
  assert_string_equal(u.path, "/");
  buf_reset(&b);
  url_host_header(&u, &b);
  assert_string_equal(buf_cstr(&b), "127.0.0.1:8080");
  buf_reset(&b);
  url_request_target(&u, &b);
  assert_string_equal(buf_cstr(&b), "/");
  url_free(&u);

  assert_int_equal(url_parse("https://[::1]:8443/a%20b?x=1&y=%2F#frag", &u), 0);
  assert_string_equal(u.host, "::1");
  assert_int_equal(u.is_ipv6, 1);
  assert_int_equal(u.port, 8443);
  assert_string_equal(u.path, "/a%20b");
  assert_string_equal(u.query, "x=1&y=%2F");
  assert_string_equal(u.fragment, "frag");
  buf_reset(&b);
  url_host_header(&u, &b);
  assert_string_equal(buf_cstr(&b), "[::1]:8443");
  buf_reset(&b);
  url_request_target(&u, &b);
  assert_string_equal(buf_cstr(&b), "/a%20b?x=1&y=%2F");
  url_free(&u);

  assert_int_equal(url_parse("https://[2001:DB8::ffff:1.2.3.4]", &u), 0);
  assert_string_equal(u.host, "2001:db8::ffff:1.2.3.4");
  assert_int_equal(u.port, 443);
  buf_reset(&b);
  url_host_header(&u, &b);
  assert_string_equal(buf_cstr(&b), "[2001:db8::ffff:1.2.3.4]");
  url_free(&u);

  assert_int_equal(url_parse("http://h?", &u), 0);
  assert_string_equal(u.path, "/");
  assert_string_equal(u.query, "");
  url_free(&u);
  assert_int_equal(url_parse("http://h#", &u), 0);
  assert_null(u.query);
  assert_string_equal(u.fragment, "");
  url_free(&u);
  assert_int_equal(url_parse("https://h:443/", &u), 0);
  buf_reset(&b);
  url_host_header(&u, &b);
  assert_string_equal(buf_cstr(&b), "h"); /* default port omitted */
  url_free(&u);
  assert_int_equal(url_parse("http://h:65535/p?q#f?g", &u), 0);
  assert_int_equal(u.port, 65535);
  assert_string_equal(u.query, "q");
  assert_string_equal(u.fragment, "f?g");
  url_free(&u);
  buf_free(&b);
}

static void test_parse_bad(void **state)
{
  (void)state;
  static const char *bad[] = {
    "",
    "ftp://h/",
    "https:/h/",
    "https//h",
    "h/path",
    "/relative",
    "https://",
    "https:///path",
    "https://:443/",
    "https://user:pw@h/",
    "https://@h/",
    "https://h:/",
    "https://h:0/",
    "https://h:65536/",
    "https://h:123456/",
    "https://h:12a/",
    "https://h:-1/",
    "https://[::1/",
    "https://[]/",
    "https://[zz::1]/",
    "https://[::1]x/",
    "https://[::1]:/",
    "https://[fe80::1%25eth0]/",
    "https://h h/",
    "https://h/a b",
    "https://h/\tx",
    "https://h/\x7f",
    "https://h\xc3\xa9/",
    "https://h/\xc3\xa9",
    "https://h\\@evil/",
    "https://h/\"",
    "https://h/<",
    "https://ho%41st/",
    "https://h!/",
    "https://h/%zz",
    "https://h/a?b=%2",
    "https://h/a#%",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    url_t u;
    int rc = url_parse(bad[i], &u);
    if (rc != GRANTD_EBAD_URL)
      fail_msg("accepted bad URL #%zu", i);
    assert_null(u.host);
    assert_null(u.scheme);
    url_free(&u);
  }
  url_t u;
  assert_int_equal(url_parse(NULL, &u), GRANTD_EBAD_URL);
  url_free(&u);
  url_free(NULL);
}

static void append(const char *base, const char *k, const char *v, const char *want)
{
  buf_t b = BUF_INIT;
  buf_puts(&b, base);
  url_append_query(&b, k, v);
  assert_string_equal(buf_cstr(&b), want);
  buf_free(&b);
}

static void test_append_query(void **state)
{
  (void)state;
  append("https://a.test/auth", "client_id", "abc", "https://a.test/auth?client_id=abc");
  append("https://a.test/auth?", "k", "v", "https://a.test/auth?k=v");
  append("https://a.test/auth?x=1", "k", "v", "https://a.test/auth?x=1&k=v");
  append("https://a.test/auth?x=1&", "k", "v", "https://a.test/auth?x=1&k=v");
  append("https://a.test/auth#f", "k", "v", "https://a.test/auth?k=v#f");
  append("https://a.test/auth?x=1#f?g", "k", "v", "https://a.test/auth?x=1&k=v#f?g");
  append("https://a.test/a?#", "k", "v", "https://a.test/a?k=v#");
  append("https://a.test/", "scope", "read write+x", "https://a.test/?scope=read%20write%2Bx");
  append("https://a.test/", "redirect_uri", "https://c.test/cb?a=1",
         "https://a.test/?redirect_uri=https%3A%2F%2Fc.test%2Fcb%3Fa%3D1");
  append("", "k", "", "?k=");
  /* Repeated appends. */
  buf_t b = BUF_INIT;
  buf_puts(&b, "https://a.test/x");
  url_append_query(&b, "a", "1");
  url_append_query(&b, "b", "2");
  url_append_query(&b, "c", "3");
  assert_string_equal(buf_cstr(&b), "https://a.test/x?a=1&b=2&c=3");
  buf_free(&b);
  /* On an empty, never-allocated buffer. */
  buf_t e = BUF_INIT;
  url_append_query(&e, "k", "v");
  assert_string_equal(buf_cstr(&e), "?k=v");
  buf_free(&e);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_encode),       cmocka_unit_test(test_decode),
    cmocka_unit_test(test_roundtrip),    cmocka_unit_test(test_form_next),
    cmocka_unit_test(test_form_parse),   cmocka_unit_test(test_form_add),
    cmocka_unit_test(test_parse_ok),     cmocka_unit_test(test_parse_bad),
    cmocka_unit_test(test_append_query),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
