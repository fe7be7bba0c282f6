/*
 * Wall/monotonic clocks with a test fake, and RFC 3339 conversion; see
 * clock.h.
 *
 * Calendar arithmetic is done on integers (days from the civil date and
 * back, proleptic Gregorian) rather than through gmtime_r/timegm, so it is
 * independent of the TZ environment and of time_t's width, and handles
 * negative (pre-1970) instants by flooring.
 */
#include "base/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/err.h"

#define FAKE_MONO_START 1000000000LL

static int fake_on;
static int64_t fake_wall_ms;
static int64_t fake_mono_us;

static int64_t ts_us(clockid_t id)
{
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_now_ms(void)
{
  if (fake_on)
    return fake_wall_ms;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_us(void)
{
  return fake_on ? fake_mono_us : ts_us(CLOCK_MONOTONIC);
}

int64_t clock_mono_ms(void)
{
  return clock_mono_us() / 1000;
}

void clock_set_fake(int64_t wall_ms)
{
  fake_on = 1;
  fake_wall_ms = wall_ms;
  fake_mono_us = FAKE_MONO_START * 1000;
}

void clock_advance_fake(int64_t ms)
{
  if (!fake_on || ms < 0)
    return;
  fake_wall_ms += ms;
  fake_mono_us += ms * 1000;
}

void clock_clear_fake(void)
{
  fake_on = 0;
}

/* Floor division and modulo, so negative instants fall on the right day. */
static int64_t floor_div(int64_t a, int64_t b)
{
  int64_t q = a / b;
  if ((a % b) != 0 && ((a < 0) != (b < 0)))
    q--;
  return q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). Works in
 * 400-year eras starting on March 1st, so the leap day is the last day of
 * its year and needs no special case. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
  y -= m <= 2;
  int64_t era = floor_div(y, 400);
  int64_t yoe = y - era * 400;                                  /* 0..399 */
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* 0..365 */
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* 0..146096 */
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
  z += 719468;
  int64_t era = floor_div(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z. */
#define MIN_MS (-62167219200000LL)
#define MAX_MS (253402300799999LL)

/* Writes v (0 <= v < 10^n) as exactly n decimal digits. */
static char *digits(char *w, int v, int n)
{
  for (int k = n - 1; k >= 0; k--) {
    w[k] = (char)('0' + v % 10);
    v /= 10;
  }
  return w + n;
}

static int format(int64_t ms, char out[32], int with_ms)
{
  if (ms < MIN_MS)
    ms = MIN_MS;
  if (ms > MAX_MS)
    ms = MAX_MS;
  int64_t days = floor_div(ms, 86400000);
  int64_t rem = ms - days * 86400000;
  int64_t y;
  int m, d;
  civil_from_days(days, &y, &m, &d);
  int hh = (int)(rem / 3600000), mm = (int)(rem / 60000 % 60);
  int ss = (int)(rem / 1000 % 60), frac = (int)(rem % 1000);
  /* Written digit by digit: snprintf was most of a token read's render. */
  char *w = out;
  w = digits(w, (int)y, 4);
  *w++ = '-';
  w = digits(w, m, 2);
  *w++ = '-';
  w = digits(w, d, 2);
  *w++ = 'T';
  w = digits(w, hh, 2);
  *w++ = ':';
  w = digits(w, mm, 2);
  *w++ = ':';
  w = digits(w, ss, 2);
  if (with_ms || frac != 0) {
    *w++ = '.';
    w = digits(w, frac, 3);
  }
  *w++ = 'Z';
  *w = '\0';
  return (int)(w - out);
}

int clock_format_rfc3339(int64_t ms, char out[32])
{
  return format(ms, out, 0);
}

int clock_format_rfc3339_ms(int64_t ms, char out[32])
{
  return format(ms, out, 1);
}

/* Reads exactly `digits` decimal digits at s[*i]. */
static int num(const char *s, size_t n, size_t *i, int digits, int *out)
{
  int v = 0;
  for (int k = 0; k < digits; k++, (*i)++) {
    if (*i >= n || s[*i] < '0' || s[*i] > '9')
      return -1;
    v = v * 10 + (s[*i] - '0');
  }
  *out = v;
  return 0;
}

static int lit(const char *s, size_t n, size_t *i, char c)
{
  if (*i >= n || s[*i] != c)
    return -1;
  (*i)++;
  return 0;
}

static int days_in_month(int y, int m)
{
  static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return 29;
  return dm[m - 1];
}

int clock_parse_rfc3339(const char *s, size_t n, int64_t *out)
{
  size_t i = 0;
  int y, mo, d, hh, mi, ss, frac = 0;
  if (s == NULL)
    return GRANTD_EINVALID;
  if (num(s, n, &i, 4, &y) || lit(s, n, &i, '-') || num(s, n, &i, 2, &mo) || lit(s, n, &i, '-') ||
      num(s, n, &i, 2, &d))
    return GRANTD_EINVALID;
  if (i >= n || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
    return GRANTD_EINVALID;
  i++;
  if (num(s, n, &i, 2, &hh) || lit(s, n, &i, ':') || num(s, n, &i, 2, &mi) || lit(s, n, &i, ':') ||
      num(s, n, &i, 2, &ss))
    return GRANTD_EINVALID;
  if (i < n && s[i] == '.') {
    i++;
    int k = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      if (k < 3)
        frac = frac * 10 + (s[i] - '0');
      k++;
      i++;
    }
    if (k == 0)
      return GRANTD_EINVALID;
    for (; k < 3; k++)
      frac *= 10;
  }
  int off_min = 0;
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i < n && (s[i] == '+' || s[i] == '-')) {
    int sign = s[i] == '-' ? -1 : 1, oh, om;
    i++;
    if (num(s, n, &i, 2, &oh) || lit(s, n, &i, ':') || num(s, n, &i, 2, &om))
      return GRANTD_EINVALID;
    if (oh > 23 || om > 59)
      return GRANTD_EINVALID;
    off_min = sign * (oh * 60 + om);
  } else {
    return GRANTD_EINVALID;
  }
  if (i != n)
    return GRANTD_EINVALID;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || hh > 23 || mi > 59 || ss > 60)
    return GRANTD_EINVALID;
  int64_t days = days_from_civil(y, mo, d);
  int64_t secs = days * 86400 + hh * 3600 + mi * 60 + ss - (int64_t)off_min * 60;
  *out = secs * 1000 + frac;
  return 0;
}
