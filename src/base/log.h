/*
 * log.h - structured logs: one JSON object per line on stderr.
 *
 *   {"ts":"2026-11-29T03:40:00.123Z","level":"info","event":"refresh_ok","id":"c1","status":200}
 *
 * Fields after "event" come from NULL-terminated (key, value) pairs:
 *   log_kv(LOGL_INFO, "refresh_ok", "id", id, "#status", (int64_t)200, NULL);
 *   log_info("refresh_ok", "id", id, "#status", LOG_I64(200));  (adds NULL)
 * The first character of a key chooses the value's type and is not written:
 *   "#key"  value is an int64_t     (cast! a plain int in varargs is UB)
 *   "?key"  value is an int          written as true/false
 *   "~key"  value is a double
 *   other   value is a const char *  (NULL is written as null)
 * The LOG_I64() macro spells the cast. Strings are JSON-escaped (quotes,
 * backslash, control characters as \uXXXX; invalid UTF-8 bytes become
 * U+FFFD) and cut at LOG_VALUE_MAX bytes (a "..." marks the cut).
 *
 * Secrets: whatever the caller passes, a value whose key log_redact_key()
 * calls secret is written as "[redacted]" (for any value type).
 *
 * Each line is written with a single write(2) (retried on EINTR / partial
 * writes), so lines from the loop thread and from thread-pool workers never
 * interleave mid-line. Timestamps come from clock_now_ms(), so the fake
 * clock applies.
 */
#ifndef GRANTD_BASE_LOG_H
#define GRANTD_BASE_LOG_H

#include <stdint.h>

/* Levels, lowest first. (Not LOG_DEBUG/LOG_INFO: <syslog.h> owns those.) */
enum { LOGL_DEBUG = 0, LOGL_INFO = 1, LOGL_WARN = 2, LOGL_ERROR = 3 };

/* Longest string value written, in bytes, before it is cut. */
#define LOG_VALUE_MAX 2048

#define LOG_I64(x) ((int64_t)(x))

/* Sets the minimum level written (LOGL_*; values out of range are clamped).
 * The default before any call is LOGL_INFO. */
void log_init(int level);

/* Parses "debug", "info", "warn" or "error" (exact, lower case).
 * @return 0 and *level set, or GRANTD_EINVALID (*level untouched). */
int log_parse_level(const char *s, int *level);

/* Name of a level ("debug" ... "error"); "unknown" when out of range. */
const char *log_level_name(int level);

/* True when a line at `level` would be written (skip costly arguments). */
int log_enabled(int level);

/* Redirects output to fd (tests pass a pipe); -1 restores stderr.
 * Returns the previous fd. The fd is not closed by the log. */
int log_set_fd(int fd);

/* True when a key names a secret, case-insensitively: it contains secret,
 * password, passwd, verifier, api_key, apikey, master_key, private_key,
 * credential, authorization, cookie or assertion; or it is or ends in
 * "token" (token, access_token, id_token, refresh_token; not token_type or
 * token_url); or it is code, auth_code, device_code or user_code. The type
 * prefix (# ? ~) is ignored. */
int log_redact_key(const char *key);

/* Writes one line if level is enabled. The variadic part is (key, value)
 * pairs as described above, ended by a NULL key. */
void log_kv(int level, const char *event, ...) __attribute__((sentinel));

/* Shorthands that add the terminating NULL:
 *   log_info("started", "listen", addr);  log_warn("x");  */
#define log_debug(...) log_kv(LOGL_DEBUG, __VA_ARGS__, (const char *)0)
#define log_info(...) log_kv(LOGL_INFO, __VA_ARGS__, (const char *)0)
#define log_warn(...) log_kv(LOGL_WARN, __VA_ARGS__, (const char *)0)
#define log_error(...) log_kv(LOGL_ERROR, __VA_ARGS__, (const char *)0)

#endif
