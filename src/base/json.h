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
int json_check_fields(const json_t *obj, const char *const *allowed, const char **bad_key);

/* Overwrites every string value in v, at any depth (members of objects,
 * elements of arrays), with zeros, in place: for values holding secrets
 * (token responses, extra) before they are released, since jansson frees
 * without wiping. Keys are not touched. NULL-safe. */
void json_wipe_strings(json_t *v);

/* Appends s as a quoted JSON string (RFC 8259), cut at `max` input bytes
 * (SIZE_MAX: whole; a cut string ends in "..." inside the quotes). The one
 * escaping rule of grantd's hand-written JSON (logs, token answers):
 * '"' and '\\' get a backslash; newline, tab and carriage return their
 * short escapes; every other control byte and DEL is \\u00XX; valid UTF-8
 * is copied as is; every byte of an invalid sequence (overlong, surrogate,
 * past U+10FFFF, truncated) becomes U+FFFD, so the output is always valid
 * JSON whatever the input. */
void json_put_str(buf_t *out, const char *s, size_t max);

#endif
