/*
 * json.h - small helpers over jansson shared by api and oauth.
 *
 * Include as "base/json.h"; it includes <jansson.h> itself. Nothing here
 * takes or drops references unless stated: borrowed values live as long as
 * their parent object.
 */
#ifndef GRANTD_BASE_JSON_H
#define GRANTD_BASE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/buf.h"

/* Parses p[0..n) as one JSON object or array, rejecting duplicate object
 * keys, NUL bytes in strings and trailing garbage.
 * @param out new reference on success (json_decref() it), NULL on failure.
 * @return 0, or GRANTD_EINVALID. */
int json_parse(const char *p, size_t n, json_t **out);

/* Appends the compact encoding of any JSON value (keys in insertion order).
 * @return 0, or GRANTD_EINVALID when jansson cannot encode it (out is then
 *         restored to its previous length). */
int json_dump_buf(const json_t *v, buf_t *out);

/* The string value of obj[key], or NULL if obj is not an object, the key is
 * absent, or its value is not a string. Borrowed from obj. */
const char *json_get_str(const json_t *obj, const char *key);

/* Reads obj[key] as an integer (a JSON integer, not a real or string).
 * @return 0 and *out set; GRANTD_ENOT_FOUND when absent or null;
 *         GRANTD_EINVALID for another type. */
int json_get_int(const json_t *obj, const char *key, int64_t *out);

/* Reads obj[key] as a boolean.
 * @return 0 and *out set to 0/1; GRANTD_ENOT_FOUND when absent or null;
 *         GRANTD_EINVALID for another type. */
int json_get_bool(const json_t *obj, const char *key, int *out);

/* Checks that every key of obj is in allowed (a NULL-terminated list).
 * @param bad_key set to the first unknown key (borrowed from obj), or NULL.
 * @return 0; GRANTD_EINVALID when a key is unknown or obj is not an object
 *         (then *bad_key is NULL). */
int json_check_fields(const json_t *obj, const char *const *allowed,
                      const char **bad_key);

#endif
