/*
 * api_keys.c - the keys file parser and the constant-time key match; see
 * api_keys.h.
 */
#include "api/api_keys.h"

#include <bearssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

typedef struct {
  char name[API_KEY_NAME_MAX + 1];
  api_scope_t scope;
  uint8_t hash[API_KEY_HASH_LEN];
} entry_t;

struct api_keyset {
  entry_t *v;
  size_t n, cap;
};

static const char *const scope_names[API_SCOPE_COUNT] = {"admin", "tokens", "connect"};

const char *api_scope_name(api_scope_t s)
{
  return (unsigned)s < API_SCOPE_COUNT ? scope_names[s] : "unknown";
}

void api_key_hash(const char *key, size_t n, uint8_t out[API_KEY_HASH_LEN])
{
  br_sha256_context c;
  br_sha256_init(&c);
  br_sha256_update(&c, key, n);
  br_sha256_out(&c, out);
  mem_wipe(&c, sizeof c);
}

void api_keyset_free(api_keyset_t *ks)
{
  if (ks == NULL)
    return;
  free(ks->v);
  free(ks);
}

size_t api_keyset_count(const api_keyset_t *ks)
{
  return ks ? ks->n : 0;
}

static int errf(char *err, size_t len, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
  return -1;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static bool name_ok(const char *s, size_t n)
{
  if (n == 0 || n > API_KEY_NAME_MAX)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return false;
  }
  return true;
}

/* Adds an entry, refusing a duplicate name or hash. Returns 0 or -1 with
 * the reason in err (prefixed by where). */
static int add(api_keyset_t *ks, const char *name, size_t nlen, api_scope_t scope,
               const uint8_t hash[API_KEY_HASH_LEN], const char *where, char *err, size_t errlen)
{
  for (size_t i = 0; i < ks->n; i++) {
    if (strlen(ks->v[i].name) == nlen && !memcmp(ks->v[i].name, name, nlen))
      return errf(err, errlen, "%s: the name '%.*s' is used twice", where, (int)nlen, name);
    if (!memcmp(ks->v[i].hash, hash, API_KEY_HASH_LEN))
      return errf(err, errlen, "%s: the same key hash as '%s'", where, ks->v[i].name);
  }
  if (ks->n == ks->cap) {
    ks->cap = ks->cap ? ks->cap * 2 : 8;
    ks->v = xrealloc(ks->v, ks->cap * sizeof *ks->v);
  }
  entry_t *e = &ks->v[ks->n++];
  memcpy(e->name, name, nlen);
  e->name[nlen] = '\0';
  e->scope = scope;
  memcpy(e->hash, hash, API_KEY_HASH_LEN);
  return 0;
}

/* The next field of [*p, end) separated by blanks; false at the end. */
static bool field(const char **p, const char *end, const char **f, size_t *flen)
{
  const char *s = *p;
  while (s < end && (*s == ' ' || *s == '\t'))
    s++;
  if (s == end)
    return false;
  const char *e = s;
  while (e < end && *e != ' ' && *e != '\t')
    e++;
  *f = s;
  *flen = (size_t)(e - s);
  *p = e;
  return true;
}

static int parse_line(api_keyset_t *ks, const char *s, const char *end, int lineno, char *err,
                      size_t errlen)
{
  char where[32];
  snprintf(where, sizeof where, "line %d", lineno);
  const char *f[4];
  size_t fl[4];
  int nf = 0;
  while (nf < 4 && field(&s, end, &f[nf], &fl[nf]))
    nf++;
  if (nf == 0)
    return 0;
  if (nf != 3)
    return errf(err, errlen, "%s: expected NAME SCOPE SHA256-HEX", where);
  if (!name_ok(f[0], fl[0]))
    return errf(err, errlen, "%s: the name must be 1 to %d of A-Z a-z 0-9 . _ -", where,
                API_KEY_NAME_MAX);
  int scope = -1;
  for (int i = 0; i < API_SCOPE_COUNT; i++)
    if (strlen(scope_names[i]) == fl[1] && !memcmp(scope_names[i], f[1], fl[1]))
      scope = i;
  if (scope < 0)
    return errf(err, errlen, "%s: unknown scope '%.*s' (admin, tokens or connect)", where,
                fl[1] > 32 ? 32 : (int)fl[1], f[1]);
  if (fl[2] != 2 * API_KEY_HASH_LEN)
    return errf(err, errlen, "%s: the key hash must be 64 hex digits (SHA-256 of the key)", where);
  uint8_t h[API_KEY_HASH_LEN];
  for (size_t i = 0; i < API_KEY_HASH_LEN; i++) {
    int hi = hexval(f[2][2 * i]), lo = hexval(f[2][2 * i + 1]);
    if (hi < 0 || lo < 0)
      return errf(err, errlen, "%s: the key hash must be 64 hex digits (SHA-256 of the key)",
                  where);
    h[i] = (uint8_t)(hi << 4 | lo);
  }
  return add(ks, f[0], fl[0], (api_scope_t)scope, h, where, err, errlen);
}

int api_keyset_parse(const char *text, size_t n, const uint8_t *single_hash, api_keyset_t **out,
                     char *err, size_t errlen)
{
  api_keyset_t *ks = xcalloc(1, sizeof *ks);
  const char *p = text, *end = text ? text + n : NULL;
  int lineno = 0;
  while (p != NULL && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    lineno++;
    const char *hash = memchr(p, '#', (size_t)(le - p));
    const char *ce = hash ? hash : le;
    if (ce > p && ce[-1] == '\r')
      ce--;
    for (const char *c = p; c < ce; c++) {
      if ((unsigned char)*c < 0x20 && *c != '\t') {
        api_keyset_free(ks);
        return errf(err, errlen, "line %d: a control character", lineno);
      }
    }
    if (parse_line(ks, p, ce, lineno, err, errlen) != 0) {
      api_keyset_free(ks);
      return -1;
    }
    p = nl ? nl + 1 : end;
  }
  if (single_hash != NULL &&
      add(ks, API_KEY_SINGLE_NAME, strlen(API_KEY_SINGLE_NAME), API_SCOPE_ADMIN, single_hash,
          "the single API key (GRANTD_API_KEY, named \"default\")", err, errlen) != 0) {
    api_keyset_free(ks);
    return -1;
  }
  if (ks->n == 0) {
    api_keyset_free(ks);
    return errf(err, errlen, "no API key: the file lists none");
  }
  *out = ks;
  return 0;
}

bool api_keyset_match(const api_keyset_t *ks, const char *key, size_t n, const char **name,
                      api_scope_t *scope)
{
  if (ks == NULL)
    return false;
  uint8_t h[API_KEY_HASH_LEN];
  api_key_hash(key, n, h);
  /* Every entry is compared in full; the matching index is selected with
   * masks, not a branch on the comparison. Hashes are unique, so at most
   * one entry matches. */
  size_t found = 0;
  unsigned any = 0;
  for (size_t i = 0; i < ks->n; i++) {
    unsigned diff = 0;
    for (size_t j = 0; j < API_KEY_HASH_LEN; j++)
      diff |= (unsigned)(ks->v[i].hash[j] ^ h[j]);
    unsigned eq = ((diff - 1u) >> 8) & 1u; /* 1 when diff == 0 (diff < 256) */
    size_t mask = (size_t)0 - (size_t)eq;
    found |= i & mask;
    any |= eq;
  }
  mem_wipe(h, sizeof h);
  if (!any)
    return false;
  *name = ks->v[found].name;
  *scope = ks->v[found].scope;
  return true;
}
