/*
 * api_json_field.h - typed readers of request-body fields, shared by the
 * record parsers in api_json.c; internal to the api layer.
 *
 * Contract of every reader: the field `k` of object `o` is optional;
 * absent or JSON null leaves *dst untouched and returns 0. A present field
 * of the wrong type or out of bounds fills `e` (422 invalid_field, the
 * message naming the field) and returns -1; *dst is then unchanged, except
 * for the list readers, which may have appended the items before the bad
 * one (the caller frees the whole record). Strings are copied (xstrdup):
 * the record owns them.
 */
#ifndef GRANTD_API_JSON_FIELD_H
#define GRANTD_API_JSON_FIELD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/api_json.h"

#define API_FIELD_MAX_STR 16384 /* any single string field */
#define API_FIELD_MAX_LIST 256  /* scopes and parameter maps */

/* Fills e with status, code and fmt (one %s: field) and returns -1. A
 * message longer than e->message is cut at a UTF-8 boundary. */
int api_field_fail(api_err_t *e, int status, const char *code, const char *fmt, const char *field);

/* 400 invalid_json unless obj is an object; 422 unknown_field naming the
 * first key not in `allowed` (NULL-terminated). */
int api_field_check(const json_t *obj, const char *const *allowed, api_err_t *e);

/* A string of 1..API_FIELD_MAX_STR bytes without NUL ("unset" has one
 * spelling: absent or null). */
int api_field_str(const json_t *o, const char *k, char **dst, api_err_t *e);

/* An absolute http(s) URL as url_parse() takes it (a host, a valid port),
 * without spaces or fragment; the field "issuer" also without query
 * (RFC 8414 section 2), so that a malformed URL is a 422 before any request
 * is made with it. "{name}" placeholders of template variables
 * ([a-z_]{1,32}) are allowed and kept; any other '{' or '}' is a 422. */
int api_field_url(const json_t *o, const char *k, char **dst, api_err_t *e);

/* A JSON integer in [min, max]. */
int api_field_int(const json_t *o, const char *k, int64_t *dst, int64_t min, int64_t max,
                  api_err_t *e);

/* A lifetime in seconds read as a token endpoint answer is (token_seconds:
 * number or numeric string, fractions cut, clamped at 10 years), but never
 * negative: an import states it on purpose. */
int api_field_lifetime(const json_t *o, const char *k, int64_t *dst, api_err_t *e);

/* true or false. */
int api_field_bool(const json_t *o, const char *k, bool *dst, api_err_t *e);

/* An array of at most API_FIELD_MAX_LIST non-empty strings without
 * whitespace, appended to *dst. */
int api_field_strlist(const json_t *o, const char *k, strlist_t *dst, api_err_t *e);

/* An object of at most API_FIELD_MAX_LIST string values with non-empty
 * keys, appended to *dst. */
int api_field_kv(const json_t *o, const char *k, kvlist_t *dst, api_err_t *e);

/* Any JSON object, kept as compact text with sorted keys (extra, metadata). */
int api_field_obj_text(const json_t *o, const char *k, char **dst, api_err_t *e);

/* An absolute time, RFC 3339 or epoch seconds, as epoch ms > 0. */
int api_field_time(const json_t *o, const char *k, int64_t *dst, api_err_t *e);

#endif
