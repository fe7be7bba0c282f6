/*
 * fuzz_url.c - the URL, percent/form and base64 helpers (base/url.h,
 * base/b64.h) on arbitrary bytes.
 *
 * Properties, beyond not crashing:
 * - a URL that parses is rebuilt from its parts (scheme, Host header value,
 *   request target, fragment) into a URL that parses to the same parts;
 * - whatever url_decode() accepts, url_encode() of the result decodes back
 *   to the same bytes (both modes);
 * - a form that parses, re-encoded with form_add(), parses to the same
 *   pairs in the same order;
 * - base64 and base64url: decode(encode(decode(s))) == decode(s), and an
 *   encoding always decodes.
 */
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/url.h"
#include "fuzz_support.h"

static int same_str(const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static void check_url(const char *s)
{
  url_t u;
  if (url_parse(s, &u) != 0) {
    url_t z;
    memset(&z, 0, sizeof z);
    fuzz_check(memcmp(&u, &z, sizeof u) == 0, "a failed url_parse leaves the url zeroed");
    url_free(&u);
    return;
  }
  fuzz_check(strcmp(u.scheme, "http") == 0 || strcmp(u.scheme, "https") == 0, "scheme");
  fuzz_check(u.host[0] != '\0' && u.port != 0, "host and port");
  buf_t b = BUF_INIT;
  buf_puts(&b, u.scheme);
  buf_puts(&b, "://");
  url_host_header(&u, &b);
  url_request_target(&u, &b);
  if (u.fragment != NULL) {
    buf_putc(&b, '#');
    buf_puts(&b, u.fragment);
  }
  url_t v;
  fuzz_check(url_parse(buf_cstr(&b), &v) == 0, "a rebuilt URL parses");
  fuzz_check(same_str(u.scheme, v.scheme) && same_str(u.host, v.host) && u.port == v.port &&
               u.is_ipv6 == v.is_ipv6 && same_str(u.path, v.path) && same_str(u.query, v.query) &&
               same_str(u.fragment, v.fragment),
             "a rebuilt URL has the same parts");
  url_free(&v);
  url_free(&u);
  buf_free(&b);
}

static void check_decode(const char *s, size_t n, int dec, int enc)
{
  buf_t d = BUF_INIT, e = BUF_INIT, d2 = BUF_INIT;
  buf_puts(&d, "x");
  if (url_decode(&d, s, n, dec) != 0) {
    fuzz_check(d.len == 1, "a failed decode restores the buffer");
  } else {
    url_encode(&e, d.data + 1, d.len - 1, enc);
    fuzz_check(url_decode(&d2, e.data ? e.data : "", e.len, dec) == 0, "an encoding decodes");
    fuzz_check(d2.len == d.len - 1 && memcmp(d2.data ? d2.data : "", d.data + 1, d2.len) == 0,
               "decode(encode(x)) == x");
  }
  buf_free(&d);
  buf_free(&e);
  buf_free(&d2);
}

static void check_form(const char *s, size_t n)
{
  form_t f = FORM_INIT, g = FORM_INIT;
  if (form_parse(s, n, &f) != 0) {
    fuzz_check(f.n == 0, "a failed form_parse leaves the form empty");
    form_free(&f);
    return;
  }
  buf_t b = BUF_INIT;
  for (size_t i = 0; i < f.n; i++) {
    if (f.items[i].key[0] == '\0')
      goto out; /* "=v" has no key to re-encode */
    form_add(&b, f.items[i].key, f.items[i].val);
  }
  fuzz_check(form_parse(b.data ? b.data : "", b.len, &g) == 0, "a re-encoded form parses");
  fuzz_check(g.n == f.n, "same number of pairs");
  for (size_t i = 0; i < f.n; i++)
    fuzz_check(strcmp(f.items[i].key, g.items[i].key) == 0 &&
                 strcmp(f.items[i].val, g.items[i].val) == 0,
               "same pairs in the same order");
  const char *v;
  int rc = form_get_unique(&f, f.n ? f.items[0].key : "a", &v);
  (void)rc;
out:
  buf_free(&b);
  form_free(&f);
  form_free(&g);
}

static void check_b64(const char *s, size_t n, int url)
{
  int (*dec)(buf_t *, const char *, size_t) = url ? b64url_decode : b64_decode;
  void (*enc)(buf_t *, const void *, size_t) = url ? b64url_encode : b64_encode;
  buf_t d = BUF_INIT, e = BUF_INIT, d2 = BUF_INIT;
  if (dec(&d, s, n) == 0) {
    enc(&e, d.data ? d.data : "", d.len);
    fuzz_check(e.len == (url ? b64url_encoded_len(d.len) : b64_encoded_len(d.len)),
               "encoded length as announced");
    fuzz_check(dec(&d2, e.data ? e.data : "", e.len) == 0, "an encoding decodes");
    fuzz_check(d2.len == d.len && (d.len == 0 || memcmp(d.data, d2.data, d.len) == 0),
               "decode(encode(decode(s))) == decode(s)");
  }
  buf_free(&d);
  buf_free(&e);
  buf_free(&d2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *s = (const char *)data;
  char *z = malloc(size + 1);
  memcpy(z, data, size);
  z[size] = '\0';
  check_url(z);
  free(z);
  check_decode(s, size, URL_DEC_STRICT, URL_ENC_STRICT);
  check_decode(s, size, URL_DEC_FORM, URL_ENC_FORM);
  check_form(s, size);
  check_b64(s, size, 0);
  check_b64(s, size, 1);
  return 0;
}
