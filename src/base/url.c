/*
 * URL parsing, percent-encoding and form bodies; see url.h.
 *
 * The parser accepts only what grantd needs to call: absolute http(s) URLs
 * with a host name, IPv4 address or bracketed IPv6 literal. It is strict
 * where leniency would let two readers disagree about the target (userinfo,
 * backslashes, spaces, control and non-ASCII bytes are refused), because the
 * URLs come from API callers and are later written into request lines and
 * Host headers.
 */
#include "base/url.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/mem.h"

static int is_unreserved(unsigned char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

static char lower(char c)
{
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Bytes refused anywhere in a URL: whitespace and controls, non-ASCII, and
 * characters that are never valid in a URI and that some parsers treat as
 * delimiters ('\\' as '/', quotes and angle brackets in headers). */
static int bad_url_byte(unsigned char c)
{
  return c <= 0x20 || c >= 0x7F || c == '\\' || c == '"' || c == '<' || c == '>';
}

int url_hexval(int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

void url_free(url_t *u)
{
  if (u == NULL)
    return;
  free(u->scheme);
  free(u->host);
  free(u->path);
  free(u->query);
  free(u->fragment);
  memset(u, 0, sizeof *u);
}

static int parse_port(const char *p, size_t n, uint16_t *out)
{
  unsigned v = 0;
  if (n == 0 || n > 5)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    v = v * 10 + (unsigned)(p[i] - '0');
  }
  if (v == 0 || v > 65535)
    return -1;
  *out = (uint16_t)v;
  return 0;
}

static int parse_authority(const char *a, size_t n, url_t *u)
{
  const char *port = NULL;
  size_t port_n = 0;
  if (memchr(a, '@', n) != NULL)
    return -1; /* userinfo: credentials do not belong in a URL */
  if (n > 0 && a[0] == '[') {
    const char *close = memchr(a, ']', n);
    char tmp[INET6_ADDRSTRLEN + 1];
    unsigned char addr[16];
    if (close == NULL)
      return -1;
    size_t hn = (size_t)(close - a - 1);
    if (hn == 0 || hn >= sizeof tmp)
      return -1;
    memcpy(tmp, a + 1, hn);
    tmp[hn] = '\0';
    if (inet_pton(AF_INET6, tmp, addr) != 1)
      return -1;
    const char *rest = close + 1;
    size_t rn = n - (size_t)(rest - a);
    if (rn > 0) {
      if (rest[0] != ':')
        return -1;
      port = rest + 1;
      port_n = rn - 1;
    }
    u->host = xstrndup(a + 1, hn);
    u->is_ipv6 = 1;
  } else {
    const char *colon = memchr(a, ':', n);
    size_t hn = colon ? (size_t)(colon - a) : n;
    if (hn == 0)
      return -1;
    for (size_t i = 0; i < hn; i++) {
      unsigned char c = (unsigned char)a[i];
      if (!is_unreserved(c))
        return -1;
    }
    if (colon) {
      port = colon + 1;
      port_n = n - hn - 1;
    }
    u->host = xstrndup(a, hn);
  }
  for (char *h = u->host; *h; h++)
    *h = lower(*h);
  if (port != NULL) {
    if (parse_port(port, port_n, &u->port) != 0)
      return -1;
    u->port_explicit = 1;
  }
  return 0;
}

int url_parse(const char *s, url_t *out)
{
  memset(out, 0, sizeof *out);
  if (s == NULL)
    return GRANTD_EBAD_URL;
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i++) {
    if (bad_url_byte((unsigned char)s[i]))
      return GRANTD_EBAD_URL;
    /* Every '%' must start an escape, so path and query re-encode and
     * decode unambiguously. */
    if (s[i] == '%' && (i + 2 >= n || url_hexval(s[i + 1]) < 0 || url_hexval(s[i + 2]) < 0))
      return GRANTD_EBAD_URL;
  }
  size_t skip;
  if (n >= 7 && strncasecmp(s, "http://", 7) == 0) {
    out->scheme = xstrdup("http");
    out->port = 80;
    skip = 7;
  } else if (n >= 8 && strncasecmp(s, "https://", 8) == 0) {
    out->scheme = xstrdup("https");
    out->port = 443;
    skip = 8;
  } else {
    return GRANTD_EBAD_URL;
  }
  const char *a = s + skip;
  size_t an = strcspn(a, "/?#");
  if (parse_authority(a, an, out) != 0)
    goto fail;
  const char *p = a + an;
  size_t pn = strcspn(p, "?#");
  out->path = pn > 0 ? xstrndup(p, pn) : xstrdup("/");
  p += pn;
  if (*p == '?') {
    p++;
    size_t qn = strcspn(p, "#");
    out->query = xstrndup(p, qn);
    p += qn;
  }
  if (*p == '#')
    out->fragment = xstrdup(p + 1);
  return 0;
fail:
  url_free(out);
  return GRANTD_EBAD_URL;
}

void url_host_header(const url_t *u, buf_t *out)
{
  int dflt = (u->port == 80 && strcmp(u->scheme, "http") == 0) ||
             (u->port == 443 && strcmp(u->scheme, "https") == 0);
  if (u->is_ipv6)
    buf_printf(out, "[%s]", u->host);
  else
    buf_puts(out, u->host);
  if (!dflt)
    buf_printf(out, ":%u", (unsigned)u->port);
}

void url_request_target(const url_t *u, buf_t *out)
{
  buf_puts(out, u->path);
  if (u->query != NULL) {
    buf_putc(out, '?');
    buf_puts(out, u->query);
  }
}

void url_encode(buf_t *out, const char *s, size_t n, int mode)
{
  static const char hex[] = "0123456789ABCDEF";
  buf_reserve(out, n);
  out->data[out->len] = '\0'; /* buf_reserve alone does not terminate */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (is_unreserved(c)) {
      buf_putc(out, (char)c);
    } else if (c == ' ' && mode == URL_ENC_FORM) {
      buf_putc(out, '+');
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      buf_append(out, e, 3);
    }
  }
}

int url_decode(buf_t *out, const char *s, size_t n, int flags)
{
  size_t start = out->len;
  buf_reserve(out, n);
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      int hi, lo;
      if (i + 2 >= n)
        goto fail;
      hi = url_hexval(s[i + 1]);
      lo = url_hexval(s[i + 2]);
      if (hi < 0 || lo < 0)
        goto fail;
      c = (char)(hi << 4 | lo);
      i += 2;
    } else if (c == '+' && (flags & URL_DEC_FORM)) {
      c = ' ';
    }
    if (c == '\0')
      goto fail;
    out->data[out->len++] = c;
  }
  out->data[out->len] = '\0';
  return 0;
fail:
  out->len = start;
  out->data[start] = '\0';
  return GRANTD_EINVALID;
}

int form_next(const char **p, const char *end, slice_t *key, slice_t *val)
{
  const char *s = *p;
  while (s < end) {
    const char *amp = memchr(s, '&', (size_t)(end - s));
    const char *seg_end = amp ? amp : end;
    if (seg_end == s) {
      s = seg_end + 1; /* empty segment */
      continue;
    }
    const char *eq = memchr(s, '=', (size_t)(seg_end - s));
    key->p = s;
    key->n = (size_t)((eq ? eq : seg_end) - s);
    val->p = eq ? eq + 1 : seg_end;
    val->n = (size_t)(seg_end - val->p);
    *p = amp ? amp + 1 : end;
    return 1;
  }
  *p = end;
  return 0;
}

int form_parse(const char *s, size_t n, form_t *out)
{
  const char *p = s, *end = s + n;
  slice_t k, v;
  buf_t kb = BUF_INIT, vb = BUF_INIT;
  out->items = NULL;
  out->n = out->cap = 0;
  while (form_next(&p, end, &k, &v)) {
    if (url_decode(&kb, k.p, k.n, URL_DEC_FORM) != 0 ||
        url_decode(&vb, v.p, v.n, URL_DEC_FORM) != 0)
      goto fail;
    if (out->n == out->cap) {
      out->cap = out->cap ? out->cap * 2 : 8;
      out->items = xrealloc(out->items, out->cap * sizeof *out->items);
    }
    out->items[out->n].key = buf_steal(&kb);
    out->items[out->n].val = buf_steal(&vb);
    out->n++;
  }
  return 0;
fail:
  buf_wipe_free(&kb);
  buf_wipe_free(&vb);
  form_free(out);
  return GRANTD_EINVALID;
}

const char *form_get(const form_t *f, const char *key)
{
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->items[i].key, key) == 0)
      return f->items[i].val;
  return NULL;
}

int form_get_unique(const form_t *f, const char *key, const char **val)
{
  const char *found = NULL;
  *val = NULL;
  for (size_t i = 0; i < f->n; i++) {
    if (strcmp(f->items[i].key, key) != 0)
      continue;
    if (found != NULL)
      return GRANTD_EINVALID;
    found = f->items[i].val;
  }
  if (found == NULL)
    return GRANTD_ENOT_FOUND;
  *val = found;
  return 0;
}

void form_free(form_t *f)
{
  if (f == NULL)
    return;
  for (size_t i = 0; i < f->n; i++) {
    free(f->items[i].key);
    free_secret(f->items[i].val);
  }
  free(f->items);
  f->items = NULL;
  f->n = f->cap = 0;
}

void form_add(buf_t *body, const char *key, const char *value)
{
  if (body->len > 0)
    buf_putc(body, '&');
  url_encode(body, key, strlen(key), URL_ENC_FORM);
  buf_putc(body, '=');
  url_encode(body, value, strlen(value), URL_ENC_FORM);
}

void url_append_query(buf_t *url, const char *key, const char *value)
{
  const char *hash = url->len ? memchr(url->data, '#', url->len) : NULL;
  size_t base = hash ? (size_t)(hash - url->data) : url->len;
  char *frag = hash ? xstrndup(hash, url->len - base) : NULL;
  url->len = base;
  if (url->data)
    url->data[base] = '\0';
  int has_q = base > 0 && memchr(url->data, '?', base) != NULL;
  char last = base > 0 ? url->data[base - 1] : '\0';
  if (!has_q)
    buf_putc(url, '?');
  else if (last != '?' && last != '&')
    buf_putc(url, '&');
  url_encode(url, key, strlen(key), URL_ENC_STRICT);
  buf_putc(url, '=');
  url_encode(url, value, strlen(value), URL_ENC_STRICT);
  if (frag) {
    buf_puts(url, frag);
    free(frag);
  }
}
