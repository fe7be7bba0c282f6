/*
 * url.h - absolute http(s) URL parsing, percent-encoding and
 * application/x-www-form-urlencoded bodies and queries.
 *
 * Encoders append to a buf_t (aborting on OOM like every x*() allocation).
 * Decoders are strict: a '%' not followed by two hex digits, and any NUL byte
 * (raw or as %00), is an error, so a decoded value is always a clean C string.
 * On error a decoder leaves the output buffer as it found it.
 */
#ifndef GRANTD_BASE_URL_H
#define GRANTD_BASE_URL_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* A parsed absolute URL. Every string is an owned, NUL-terminated copy
 * released by url_free(). */
typedef struct {
  char *scheme;      /* "http" or "https", lower-cased */
  char *host;        /* lower-cased; an IPv6 literal without its brackets */
  uint16_t port;     /* explicit port, else 80 (http) or 443 (https) */
  int port_explicit; /* 1 when the URL spelled a port */
  int is_ipv6;       /* 1 when host was a [bracketed] IPv6 literal */
  char *path;        /* raw (still percent-encoded); "/" when the URL had none */
  char *query;       /* raw text after '?' (without it), or NULL if absent */
  char *fragment;    /* raw text after '#' (without it), or NULL if absent */
} url_t;

/* Parses an absolute http:// or https:// URL (scheme case-insensitive).
 * Rejects: other schemes, userinfo ("user@"), empty hosts, bad or zero ports,
 * malformed IPv6 literals, a '%' not followed by two hex digits, control
 * characters, spaces, non-ASCII bytes, and '\' '"' '<' '>'.
 * @param s   NUL-terminated input.
 * @param out filled on success (caller releases it with url_free()); zeroed
 *            on failure, so url_free() is always safe.
 * @return 0, or GRANTD_EBAD_URL. */
int url_parse(const char *s, url_t *out);

/* Releases the strings of a url_t and zeroes it. NULL-safe; idempotent. */
void url_free(url_t *u);

/* Appends the Host header value: host (bracketed when IPv6) plus ":port"
 * unless the port is the scheme's default. */
void url_host_header(const url_t *u, buf_t *out);

/* Appends the HTTP/1.1 request target: path, then "?query" if present. */
void url_request_target(const url_t *u, buf_t *out);

/* Encoding modes for url_encode(). Both keep only RFC 3986 unreserved bytes
 * (A-Z a-z 0-9 - . _ ~) and write %XX (upper-case hex) for everything else;
 * they differ only in how a space is written. */
enum {
  URL_ENC_STRICT = 0, /* space -> %20 (query components, RFC 3986) */
  URL_ENC_FORM = 1    /* space -> '+' (x-www-form-urlencoded, RFC 6749 App. B) */
};

/* Appends the percent-encoding of s[0..n) to out. */
void url_encode(buf_t *out, const char *s, size_t n, int mode);

/* Decoding flags for url_decode(). */
enum {
  URL_DEC_STRICT = 0, /* '+' stays '+' */
  URL_DEC_FORM = 1    /* '+' decodes to a space (form bodies and queries) */
};

/* Appends the percent-decoding of s[0..n) to out.
 * @return 0, or GRANTD_EINVALID on a malformed %XX escape or a NUL byte
 *         (raw or %00); out is then restored to its previous length. */
int url_decode(buf_t *out, const char *s, size_t n, int flags);

/* Iterates "k=v&k2=v2" pairs between *p and end without decoding them.
 * Empty segments ("a=1&&b=2") are skipped; a segment without '=' yields an
 * empty value. key/val borrow from the input.
 * @return 1 when a pair was produced (and *p advanced past it), 0 at end. */
int form_next(const char **p, const char *end, slice_t *key, slice_t *val);

/* One decoded pair: owned NUL-terminated copies. */
typedef struct {
  char *key;
  char *val;
} form_pair_t;

/* A decoded form (or query string), in input order, duplicates kept. */
typedef struct {
  form_pair_t *items;
  size_t n;
  size_t cap;
} form_t;

// clang-format off
#define FORM_INIT {NULL, 0, 0}
// clang-format on

/* Parses and form-decodes ('+' is a space) s[0..n) into out, which must be
 * FORM_INIT or previously form_free()d. On error out is left empty.
 * @return 0, or GRANTD_EINVALID (bad escape or NUL byte in a key or value). */
int form_parse(const char *s, size_t n, form_t *out);

/* The value of the first pair named key, or NULL. Borrowed from f. */
const char *form_get(const form_t *f, const char *key);

/* Looks key up insisting it occurs at most once (RFC 6749 section 3.1:
 * parameters MUST NOT be repeated).
 * @return 0 and *val set; GRANTD_ENOT_FOUND (*val = NULL); or
 *         GRANTD_EINVALID when the key is repeated (*val = NULL). */
int form_get_unique(const form_t *f, const char *key, const char **val);

/* Wipes (values may be codes or tokens) and frees all pairs; f becomes
 * FORM_INIT. NULL-safe. */
void form_free(form_t *f);

/* Appends "key=value" to a form body, form-encoded (space -> '+'),
 * preceded by '&' when the body is not empty. */
void form_add(buf_t *body, const char *key, const char *value);

/* Adds a strictly encoded (space -> %20) "key=value" query parameter to a
 * URL held in url: '?' when it has no query yet, nothing when it already
 * ends in '?' or '&', '&' otherwise. A "#fragment" stays at the end: the
 * parameter is inserted before it. */
void url_append_query(buf_t *url, const char *key, const char *value);

/* Value of one hexadecimal digit (either case), or -1. */
int url_hexval(int c);

#endif
