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
  if (v == NULL ||
      json_dump_callback(v, dump_cb, out, JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
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

int json_check_fields(const json_t *obj, const char *const *allowed,
                      const char **bad_key)
{
  const char *key;
  json_t *v;
  *bad_key = NULL;
  if (!json_is_object(obj))
    return GRANTD_EINVALID;
  /* json_object_foreach wants a non-const object; it does not modify it. */
  json_t *o = (json_t *)obj;
  json_object_foreach(o, key, v) {
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
