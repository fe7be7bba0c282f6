/*
 * seal_parse.c - a keyring from its text form (`ID:KEY,ID:KEY` or one
 * entry per line); see seal_keyring_parse() in seal.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "store/seal.h"

static int fail(seal_keyring_t *kr, char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  seal_keyring_free(kr);
  return GRANTD_EINVALID;
}

static int is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\r';
}

/* Parses one trimmed entry [s, e). */
static int entry(seal_keyring_t *kr, const char *s, const char *e, int no, char *err, size_t errlen)
{
  const char *colon = memchr(s, ':', (size_t)(e - s));
  if (colon == NULL || colon == s)
    return fail(kr, err, errlen, "entry %d: expected ID:KEY", no);
  uint32_t id = 0;
  for (const char *p = s; p < colon; p++) {
    if (*p < '0' || *p > '9' || (p == s && *p == '0') || id > SEAL_KEY_ID_MAX)
      return fail(kr, err, errlen, "entry %d: the key id must be a whole number 1-%u", no,
                  SEAL_KEY_ID_MAX);
    id = id * 10 + (uint32_t)(*p - '0');
  }
  if (id < 1 || id > SEAL_KEY_ID_MAX)
    return fail(kr, err, errlen, "entry %d: the key id must be a whole number 1-%u", no,
                SEAL_KEY_ID_MAX);
  if (seal_keyring_has(kr, id))
    return fail(kr, err, errlen, "entry %d: key id %u is given twice", no, id);
  if (seal_keyring_count(kr) >= SEAL_MAX_KEYS)
    return fail(kr, err, errlen, "entry %d: more than %d keys", no, SEAL_MAX_KEYS);
  size_t klen = (size_t)(e - colon - 1);
  char *ks = xstrndup(colon + 1, klen);
  uint8_t key[SEAL_KEY_LEN];
  int rc = seal_key_parse(ks, key);
  mem_wipe(ks, klen);
  free(ks);
  if (rc != 0)
    return fail(kr, err, errlen,
                "entry %d (key id %u): the key must be 64 hex digits or base64 of 32 bytes", no,
                id);
  seal_keyring_add(kr, id, key);
  mem_wipe(key, sizeof key);
  return 0;
}

int seal_keyring_parse(const char *text, size_t n, seal_keyring_t **out, char *err, size_t errlen)
{
  seal_keyring_t *kr = seal_keyring_new();
  const char *p = text, *end = text + n;
  int no = 0;
  while (p < end) {
    const char *s = p;
    while (p < end && *p != ',' && *p != '\n' && *p != '#')
      p++;
    const char *e = p;
    /* A comment runs to the end of its line. */
    if (p < end && *p == '#') {
      while (p < end && *p != '\n')
        p++;
    }
    if (p < end)
      p++; /* the separator */
    while (s < e && is_space(*s))
      s++;
    while (e > s && is_space(e[-1]))
      e--;
    if (s == e)
      continue;
    if (entry(kr, s, e, ++no, err, errlen) != 0)
      return GRANTD_EINVALID;
  }
  if (seal_keyring_count(kr) == 0)
    return fail(kr, err, errlen, "no key: expected ID:KEY entries");
  *out = kr;
  return 0;
}
