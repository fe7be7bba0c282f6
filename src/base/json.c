/*
 * jansson helpers; see json.h.
 *
 * Parsing rejects duplicate keys because a body like
 * {"client_secret":"a","client_secret":"b"} would otherwise mean whatever
 * the last reader decides; unknown-field checks exist for the same reason:
 * a misspelt option should fail loudly instead of being ignored.
 */
#include "base/json.h"

#include <string.h>

#include "base/err.h"
#include "base/mem.h"

int json_parse(const char *p, size_t n, json_t **out)
{
  json_error_t err;
  *out = json_loadb(p, n, JSON_REJECT_DUPLICATES, &err);
  return *out ? 0 : GRANTD_EINVALID;
}

static int dump_cb(const char *p, size_t n, void *data)
{
  buf_append(data, p, n);
  return 0;
}

int json_dump_buf(const json_t *v, buf_t *out)
{
  size_t start = out->len;
  if (v == NULL || json_dump_callback(v, dump_cb, out, JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
    out->len = start;
    if (out->data)
      out->data[start] = '\0';
    return GRANTD_EINVALID;
  }
  return 0;
}

const char *json_get_str(const json_t *obj, const char *key)
{
  if (!json_is_object(obj))
    return NULL;
  json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

int json_get_int(const json_t *obj, const char *key, int64_t *out)
{
  json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
  if (v == NULL || json_is_null(v))
    return GRANTD_ENOT_FOUND;
  if (!json_is_integer(v))
    return GRANTD_EINVALID;
  *out = (int64_t)json_integer_value(v);
  return 0;
}

int json_get_bool(const json_t *obj, const char *key, int *out)
{
  json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
  if (v == NULL || json_is_null(v))
    return GRANTD_ENOT_FOUND;
  if (!json_is_boolean(v))
    return GRANTD_EINVALID;
  *out = json_is_true(v);
  return 0;
}

int json_check_fields(const json_t *obj, const char *const *allowed, const char **bad_key)
{
  const char *key;
  json_t *v;
  *bad_key = NULL;
  if (!json_is_object(obj))
    return GRANTD_EINVALID;
  /* json_object_foreach wants a non-const object; it does not modify it. */
  json_t *o = (json_t *)obj;
  json_object_foreach(o, key, v)
  {
    int ok = 0;
    for (size_t i = 0; allowed != NULL && allowed[i] != NULL && !ok; i++)
      ok = strcmp(key, allowed[i]) == 0;
    if (!ok) {
      *bad_key = key;
      return GRANTD_EINVALID;
    }
  }
  return 0;
}

void json_wipe_strings(json_t *v)
{
  const char *k;
  json_t *m;
  size_t i;
  if (json_is_string(v)) {
    mem_wipe((char *)json_string_value(v), json_string_length(v));
  } else if (json_is_object(v)) {
    json_object_foreach(v, k, m) json_wipe_strings(m);
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, m) json_wipe_strings(m);
  }
}

/* ---- the string escaper ---- */

/* Length of the valid UTF-8 sequence at s (of at most n bytes), or 0 when
 * it is invalid: overlong forms, surrogates and values past U+10FFFF are
 * all rejected (RFC 3629). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
  unsigned c = s[0];
  size_t len;
  unsigned min;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  unsigned cp = c & (0x3F >> (len - 1));
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

void json_put_str(buf_t *b, const char *s, size_t max)
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s), i = 0;
  int cut = 0;
  if (n > max) {
    n = max;
    cut = 1;
  }
  buf_putc(b, '"');
  while (i < n) {
    unsigned char c = p[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      buf_append(b, e, 2);
      i++;
    } else if (c == '\n') {
      buf_append(b, "\\n", 2);
      i++;
    } else if (c == '\t') {
      buf_append(b, "\\t", 2);
      i++;
    } else if (c == '\r') {
      buf_append(b, "\\r", 2);
      i++;
    } else if (c < 0x20 || c == 0x7F) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      buf_append(b, e, 6);
      i++;
    } else if (c < 0x80) {
      size_t j = i + 1;
      while (j < n && p[j] >= 0x20 && p[j] < 0x7F && p[j] != '"' && p[j] != '\\')
        j++;
      buf_append(b, p + i, j - i);
      i = j;
    } else {
      size_t len = utf8_len(p + i, n - i);
      if (len == 0) {
        buf_append(b, "\xEF\xBF\xBD", 3); /* U+FFFD */
        i++;
      } else {
        buf_append(b, p + i, len);
        i += len;
      }
    }
  }
  if (cut)
    buf_append(b, "...", 3);
  buf_putc(b, '"');
}
