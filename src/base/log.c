/*
 * Structured JSON-lines logging; see log.h.
 *
 * A line is assembled in a buffer and written with one write(2): lines may
 * come from thread-pool workers too, and a single write of a pipe-sized line
 * is not interleaved with others. The line buffer is a fresh heap buf_t per
 * call (no shared state, so workers may log), which is cheap next to the
 * write(2) itself. Redaction is decided by the key alone, never by the value,
 * so a caller mistake ("token", tok) cannot leak a credential.
 */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"

static int log_level = LOGL_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(int level)
{
  if (level < LOGL_DEBUG)
    level = LOGL_DEBUG;
  if (level > LOGL_ERROR)
    level = LOGL_ERROR;
  log_level = level;
}

int log_parse_level(const char *s, int *level)
{
  for (int i = 0; s != NULL && i < (int)ARRAY_SIZE(level_names); i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *level = i;
      return 0;
    }
  }
  return GRANTD_EINVALID;
}

const char *log_level_name(int level)
{
  if (level < LOGL_DEBUG || level > LOGL_ERROR)
    return "unknown";
  return level_names[level];
}

int log_enabled(int level)
{
  return level >= log_level;
}

int log_set_fd(int fd)
{
  int prev = log_fd;
  log_fd = fd < 0 ? 2 : fd;
  return prev;
}

/* Case-insensitive "does key end with suffix" for ASCII. */
static int ends_with(const char *key, size_t n, const char *suffix)
{
  size_t m = strlen(suffix);
  return n >= m && strncasecmp(key + n - m, suffix, m) == 0;
}

static int contains(const char *key, size_t n, const char *needle)
{
  size_t m = strlen(needle);
  for (size_t i = 0; i + m <= n; i++)
    if (strncasecmp(key + i, needle, m) == 0)
      return 1;
  return 0;
}

int log_redact_key(const char *key)
{
  static const char *const subs[] = {"secret",     "password",      "passwd",     "verifier",
                                     "api_key",    "apikey",        "master_key", "private_key",
                                     "credential", "authorization", "cookie",     "assertion"};
  static const char *const exact[] = {"code", "auth_code", "device_code", "user_code"};
  if (key == NULL)
    return 0;
  if (*key == '#' || *key == '?' || *key == '~')
    key++;
  size_t n = strlen(key);
  for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
    if (contains(key, n, subs[i]))
      return 1;
  for (size_t i = 0; i < ARRAY_SIZE(exact); i++)
    if (strcasecmp(key, exact[i]) == 0)
      return 1;
  return ends_with(key, n, "token");
}

static void write_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return; /* Nowhere left to report a failing log. */
    }
    p += w;
    n -= (size_t)w;
  }
}

void log_kv(int level, const char *event, ...)
{
  if (!log_enabled(level))
    return;
  char ts[32];
  clock_format_rfc3339_ms(clock_now_ms(), ts);
  buf_t b = BUF_INIT;
  buf_reserve(&b, 256);
  buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", ts, log_level_name(level));
  json_put_str(&b, event ? event : "", LOG_VALUE_MAX);

  va_list ap;
  va_start(ap, event);
  const char *key;
  while ((key = va_arg(ap, const char *)) != NULL) {
    char type = (*key == '#' || *key == '?' || *key == '~') ? *key : 0;
    const char *name = type ? key + 1 : key;
    int redact = log_redact_key(key);
    buf_putc(&b, ',');
    json_put_str(&b, name, 128);
    buf_putc(&b, ':');
    /* Always consume the argument of the declared type, even when the value
     * is redacted, so the following pairs stay aligned. */
    if (type == '#') {
      int64_t v = va_arg(ap, int64_t);
      if (!redact)
        buf_printf(&b, "%lld", (long long)v);
    } else if (type == '?') {
      int v = va_arg(ap, int);
      if (!redact)
        buf_puts(&b, v ? "true" : "false");
    } else if (type == '~') {
      double v = va_arg(ap, double);
      if (!redact) {
        /* JSON has no NaN/Infinity. */
        if (v != v || v > 1e308 || v < -1e308)
          buf_puts(&b, "null");
        else
          buf_printf(&b, "%.15g", v);
      }
    } else {
      const char *v = va_arg(ap, const char *);
      if (!redact) {
        if (v == NULL)
          buf_puts(&b, "null");
        else
          json_put_str(&b, v, LOG_VALUE_MAX);
      }
    }
    if (redact)
      buf_puts(&b, "\"[redacted]\"");
  }
  va_end(ap);
  buf_append(&b, "}\n", 2);
  write_all(log_fd, b.data, b.len);
  buf_free(&b);
}
