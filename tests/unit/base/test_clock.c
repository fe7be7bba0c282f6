/* Unit tests for base/clock: RFC 3339 formatting/parsing and the fake
 * clock. No real-time assertions beyond monotonicity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "base/clock.h"
#include "base/err.h"

static int64_t parse(const char *s)
{
  int64_t v = -1;
  assert_int_equal(clock_parse_rfc3339(s, strlen(s), &v), 0);
  return v;
}

static void test_format(void **state)
{
  (void)state;
  char out[32];
  assert_int_equal(clock_format_rfc3339(0, out), 20);
  assert_string_equal(out, "1970-01-01T00:00:00Z");
  /* 2026-11-29T03:40:00Z */
  assert_int_equal(clock_format_rfc3339(1795923600000LL, out), 20);
  assert_string_equal(out, "2026-11-29T03:40:00Z");
  assert_int_equal(clock_format_rfc3339(1795923600123LL, out), 24);
  assert_string_equal(out, "2026-11-29T03:40:00.123Z");
  assert_int_equal(clock_format_rfc3339_ms(1795923600000LL, out), 24);
  assert_string_equal(out, "2026-11-29T03:40:00.000Z");
  /* Leap day and the end of a century leap year. */
  clock_format_rfc3339(951782400000LL, out);
  assert_string_equal(out, "2000-02-29T00:00:00Z");
  clock_format_rfc3339(978307199999LL, out);
  assert_string_equal(out, "2000-12-31T23:59:59.999Z");
  /* Before the epoch: floor, not truncation. */
  clock_format_rfc3339(-1, out);
  assert_string_equal(out, "1969-12-31T23:59:59.999Z");
  clock_format_rfc3339(-86400000LL, out);
  assert_string_equal(out, "1969-12-31T00:00:00Z");
  /* Clamped at the ends of four-digit years. */
  clock_format_rfc3339(INT64_MAX, out);
  assert_string_equal(out, "9999-12-31T23:59:59.999Z");
  clock_format_rfc3339(INT64_MIN, out);
  assert_string_equal(out, "0000-01-01T00:00:00Z");
}

/* The formatter agrees with gmtime_r + snprintf over a spread of instants
 * from year 1 to 9999 (the digit writer replaced snprintf). */
static void test_format_matches_gmtime(void **state)
{
  (void)state;
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  const int64_t lo = -62135596800000LL, span = 253402300799999LL - lo;
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    int64_t ms = lo + (int64_t)(x % (uint64_t)span);
    if (i % 3 == 0)
      ms -= ms % 1000; /* whole seconds take the short form */
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
    int frac = (int)(ms - (int64_t)t * 1000);
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    char want[48], got[32];
    int n =
      frac ? snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac)
           : snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    assert_int_equal(clock_format_rfc3339(ms, got), n);
    assert_string_equal(got, want);
  }
}

static void test_parse(void **state)
{
  (void)state;
  assert_int_equal(parse("1970-01-01T00:00:00Z"), 0);
  assert_int_equal(parse("2026-11-29T03:40:00Z"), 1795923600000LL);
  assert_int_equal(parse("2026-11-29t03:40:00z"), 1795923600000LL);
  assert_int_equal(parse("2026-11-29 03:40:00Z"), 1795923600000LL);
  assert_int_equal(parse("2026-11-29T03:40:00.123Z"), 1795923600123LL);
  assert_int_equal(parse("2026-11-29T03:40:00.1Z"), 1795923600100LL);
  assert_int_equal(parse("2026-11-29T03:40:00.123999999Z"), 1795923600123LL);
  /* Offsets: local time minus the offset is UTC. */
  assert_int_equal(parse("2026-11-29T05:40:00+02:00"), 1795923600000LL);
  assert_int_equal(parse("2026-11-28T22:10:00-05:30"), 1795923600000LL);
  assert_int_equal(parse("2026-11-29T03:40:00+00:00"), 1795923600000LL);
  assert_int_equal(parse("2026-11-29T03:40:00-00:00"), 1795923600000LL);
  /* Leap second lands on the next second. */
  assert_int_equal(parse("2016-12-31T23:59:60Z"), parse("2017-01-01T00:00:00Z"));
  assert_int_equal(parse("1969-12-31T23:59:59.999Z"), -1);
  assert_int_equal(parse("2000-02-29T00:00:00Z"), 951782400000LL);
}

static void test_parse_bad(void **state)
{
  (void)state;
  static const char *bad[] = {
    "",
    "2026-11-29",
    "2026-11-29T03:40:00",       /* no zone */
    "2026-11-29T03:40Z",         /* no seconds */
    "2026-11-29T03:40:00.Z",     /* empty fraction */
    "2026-11-29T03:40:00ZZ",     /* trailing */
    "2026-11-29T03:40:00+0200",  /* offset without colon */
    "2026-11-29T03:40:00+24:00", /* offset hours */
    "2026-11-29T03:40:00+02:60", /* offset minutes */
    "2026-13-29T03:40:00Z",      /* month */
    "2026-00-29T03:40:00Z",
    "2026-11-31T03:40:00Z", /* day past month end */
    "2026-02-29T03:40:00Z", /* not a leap year */
    "1900-02-29T03:40:00Z", /* century, not leap */
    "2026-11-00T03:40:00Z",
    "2026-11-29T24:00:00Z",
    "2026-11-29T03:60:00Z",
    "2026-11-29T03:40:61Z",
    "2026-1-29T03:40:00Z",
    "+2026-11-29T03:40:00Z",
    "2026-11-29X03:40:00Z",
    " 2026-11-29T03:40:00Z",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int64_t v = 42;
    assert_int_equal(clock_parse_rfc3339(bad[i], strlen(bad[i]), &v), GRANTD_EINVALID);
    assert_int_equal(v, 42);
  }
  int64_t v;
  /* Length is honoured: a valid prefix with n cut short fails. */
  assert_int_equal(clock_parse_rfc3339("2026-11-29T03:40:00Z", 19, &v), GRANTD_EINVALID);
  assert_int_equal(clock_parse_rfc3339(NULL, 0, &v), GRANTD_EINVALID);
}

static void test_roundtrip(void **state)
{
  (void)state;
  char out[32];
  /* Every ~37 days plus odd milliseconds, 1900..2100. */
  for (int64_t ms = -2208988800000LL; ms < 4102444800000LL; ms += 3196800000LL + 7919) {
    int n = clock_format_rfc3339(ms, out);
    int64_t back;
    assert_int_equal(clock_parse_rfc3339(out, (size_t)n, &back), 0);
    assert_int_equal(back, ms);
  }
}

static void test_fake(void **state)
{
  (void)state;
  int64_t m0 = clock_mono_ms();
  assert_true(clock_mono_ms() >= m0);
  assert_true(clock_mono_us() >= m0 * 1000);
  assert_true(clock_now_ms() > 1600000000000LL);

  clock_set_fake(1795923600000LL);
  assert_int_equal(clock_now_ms(), 1795923600000LL);
  int64_t mono = clock_mono_ms();
  assert_int_equal(clock_mono_ms(), mono); /* frozen */
  clock_advance_fake(1500);
  assert_int_equal(clock_now_ms(), 1795923601500LL);
  assert_int_equal(clock_mono_ms(), mono + 1500);
  assert_int_equal(clock_mono_us(), (mono + 1500) * 1000);
  clock_advance_fake(-5); /* ignored */
  assert_int_equal(clock_now_ms(), 1795923601500LL);
  clock_clear_fake();
  assert_true(clock_now_ms() != 1795923601500LL);
  clock_advance_fake(1000); /* no effect when not faked */
  assert_true(clock_now_ms() > 1600000000000LL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_format),    cmocka_unit_test(test_format_matches_gmtime),
    cmocka_unit_test(test_parse),     cmocka_unit_test(test_parse_bad),
    cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_fake),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
