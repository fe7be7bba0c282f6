/*
 * api_json_field.c - the typed field readers behind api_json.c: each takes
 * one optional field `k` of a request-body object, checks its type and
 * bounds, and copies it into the record being built; see api_json_field.h.
 */
#include "api/api_json_field.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/mem.h"
#include "base/url.h"
#include "oauth/catalog.h"
#include "oauth/token.h"

#define MAX_STR API_FIELD_MAX_STR
#define MAX_LIST API_FIELD_MAX_LIST

/* Cuts s (NUL-terminated, valid UTF-8 up to a truncation) before a
 * multi-byte sequence that the truncation left incomplete, so the message
 * stays valid UTF-8 for the JSON error envelope. */
static void cut_utf8(char *s)
{
  size_t n = strlen(s), i = n;
  while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
    i--;
  if (i == 0)
    return;
  unsigned char lead = (unsigned char)s[i - 1];
  size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (n - (i - 1) < need)
    s[i - 1] = '\0';
}

int api_field_fail(api_err_t *e, int status, const char *code, const char *fmt, const char *field)
{
  e->status = status;
  e->code = code;
  int n = snprintf(e->message, sizeof e->message, fmt, field);
  if (n >= (int)sizeof e->message)
    cut_utf8(e->message);
  return -1;
}

bool api_valid_id(const char *s)
{
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 128 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '~' || c == '@' || c == ':' || c == '-'))
      return false;
  }
  return true;
}

static bool in_list(const char *k, const char *const *allowed)
{
  for (; *allowed; allowed++)
    if (!strcmp(k, *allowed))
      return true;
  return false;
}

int api_field_check(const json_t *obj, const char *const *allowed, api_err_t *e)
{
  const char *k;
  json_t *v;
  if (!json_is_object(obj))
    return api_field_fail(e, 400, "invalid_json", "%s", "the request body must be a JSON object");
  json_object_foreach((json_t *)obj, k, v)
  {
    (void)v;
    if (!in_list(k, allowed))
      return api_field_fail(e, 422, "unknown_field", "unknown field '%s'", k);
  }
  return 0;
}

/* Optional string: absent or null leaves *dst NULL; empty strings are
 * rejected so "unset" has one spelling. */
int api_field_str(const json_t *o, const char *k, char **dst, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return api_field_fail(e, 422, "invalid_field", "field '%s' must be a string", k);
  size_t n = json_string_length(v);
  if (n == 0)
    return api_field_fail(e, 422, "invalid_field", "field '%s' must not be empty", k);
  if (n > MAX_STR)
    return api_field_fail(e, 422, "invalid_field", "field '%s' is too long", k);
  if (memchr(json_string_value(v), '\0', n) != NULL)
    return api_field_fail(e, 422, "invalid_field", "field '%s' must not contain NUL", k);
  *dst = xstrndup(json_string_value(v), n);
  return 0;
}

/* An absolute http(s) URL as url_parse() takes it (a host, a valid port),
 * without fragment; an issuer also without query (RFC 8414 section 2).
 * Checked here so that a malformed URL is a 422 before any request is
 * made with it (discovery, token requests). */
int api_field_url(const json_t *o, const char *k, char **dst, api_err_t *e)
{
  if (api_field_str(o, k, dst, e) != 0)
    return -1;
  if (*dst == NULL)
    return 0;
  if (strncmp(*dst, "https://", 8) != 0 && strncmp(*dst, "http://", 7) != 0)
    return api_field_fail(e, 422, "invalid_field", "field '%s' must be an http(s) URL", k);
  if (strpbrk(*dst, " \t\r\n#") != NULL)
    return api_field_fail(e, 422, "invalid_field",
                          "field '%s' must be a URL without spaces or fragment", k);
  /* "{name}" placeholders (template variables) are checked for their
   * shape here and parsed as a one-letter label; the provider checks that
   * each names one of its variables. */
  strlist_t names = {0};
  int ph = catalog_placeholders(*dst, &names);
  buf_t shape = BUF_INIT;
  for (const char *p = *dst; ph == 0 && *p; p++) {
    if (*p == '{')
      p = strchr(p, '}');
    buf_putc(&shape, *p == '}' ? 'x' : *p);
  }
  strlist_free(&names);
  url_t u;
  int rc = ph != 0 ? -1 : url_parse(buf_cstr(&shape), &u);
  buf_free(&shape);
  if (ph != 0)
    return api_field_fail(e, 422, "invalid_field",
                          "field '%s' has a '{' or '}' that does not enclose a variable name", k);
  if (rc != 0)
    return api_field_fail(
      e, 422, "invalid_field",
      "field '%s' must be an absolute http(s) URL with a host (and a valid port)", k);
  bool query = u.query != NULL;
  url_free(&u);
  if (query && strcmp(k, "issuer") == 0)
    return api_field_fail(e, 422, "invalid_field",
                          "field '%s' must not have a query (RFC 8414 section 2)", k);
  return 0;
}

int api_field_int(const json_t *o, const char *k, int64_t *dst, int64_t min, int64_t max,
                  api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_integer(v))
    return api_field_fail(e, 422, "invalid_field", "field '%s' must be an integer", k);
  json_int_t n = json_integer_value(v);
  if (n < min || n > max)
    return api_field_fail(e, 422, "invalid_field", "field '%s' is out of range", k);
  *dst = n;
  return 0;
}

/* A lifetime in seconds, read as a token endpoint answer is (oauth/token.h:
 * number, numeric string or null; fractions cut; past 10 years clamped),
 * but a negative value is refused: an import states it on purpose. */
int api_field_lifetime(const json_t *o, const char *k, int64_t *dst, api_err_t *e)
{
  int64_t s;
  if (token_seconds(json_object_get(o, k), &s) != 0)
    return api_field_fail(e, 422, "invalid_field",
                          "field '%s' must be a number of seconds (or a numeric string)", k);
  if (s < 0)
    return api_field_fail(e, 422, "invalid_field", "field '%s' must not be negative", k);
  *dst = s > TOKEN_MAX_LIFETIME_S ? TOKEN_MAX_LIFETIME_S : s;
  return 0;
}

int api_field_bool(const json_t *o, const char *k, bool *dst, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_boolean(v))
    return api_field_fail(e, 422, "invalid_field", "field '%s' must be true or false", k);
  *dst = json_is_true(v);
  return 0;
}

int api_field_strlist(const json_t *o, const char *k, strlist_t *dst, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_array(v) || json_array_size(v) > MAX_LIST)
    return api_field_fail(e, 422, "invalid_field", "field '%s' must be an array of strings", k);
  size_t i;
  json_t *it;
  json_array_foreach(v, i, it)
  {
    if (!json_is_string(it) || json_string_length(it) == 0 || json_string_length(it) > MAX_STR ||
        strpbrk(json_string_value(it), " \t\r\n") != NULL)
      return api_field_fail(e, 422, "invalid_field",
                            "field '%s' must hold non-empty strings without spaces", k);
    strlist_push(dst, json_string_value(it));
  }
  return 0;
}

int api_field_kv(const json_t *o, const char *k, kvlist_t *dst, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_object(v) || json_object_size(v) > MAX_LIST)
    return api_field_fail(e, 422, "invalid_field", "field '%s' must be an object of strings", k);
  const char *key;
  json_t *it;
  json_object_foreach(v, key, it)
  {
    if (!json_is_string(it) || json_string_length(it) > MAX_STR || key[0] == '\0')
      return api_field_fail(e, 422, "invalid_field", "field '%s' must be an object of strings", k);
    kvlist_push(dst, key, json_string_value(it));
  }
  return 0;
}

/* A JSON object kept as text (extra, metadata). */
int api_field_obj_text(const json_t *o, const char *k, char **dst, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_object(v))
    return api_field_fail(e, 422, "invalid_field", "field '%s' must be an object", k);
  *dst = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
  if (*dst == NULL)
    return api_field_fail(e, 422, "invalid_field", "field '%s' could not be encoded", k);
  char *copy = xstrdup(*dst);
  free(*dst);
  *dst = copy;
  return 0;
}

/* Absolute time: RFC 3339 string or seconds since the epoch. */
int api_field_time(const json_t *o, const char *k, int64_t *dst, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < 253402300800LL) {
    *dst = (int64_t)json_integer_value(v) * 1000;
    return 0;
  }
  if (json_is_string(v) &&
      clock_parse_rfc3339(json_string_value(v), json_string_length(v), dst) == 0 && *dst > 0)
    return 0;
  return api_field_fail(e, 422, "invalid_field",
                        "field '%s' must be an RFC 3339 time or epoch seconds", k);
}
