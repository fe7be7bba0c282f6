/* Unit tests for service/policy: lead clamping (table), jitter bounds and
 * spread, the unknown-expiry rules, backoff growth/cap/Retry-After/expiry,
 * refresh-on-read, and the sliding-window rate limiter (exact admission
 * counts per window, exact waits, reconfiguration keeping history, a
 * brute-force model, a clock going backwards). Randomness comes from a fixed-seed
 * generator, so every run is identical. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "service/policy.h"

#define S 1000LL           /* ms per second */
#define T0 1700000000000LL /* a plausible "now" */

static uint64_t rng_next(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static size_t distinct(int64_t *v, size_t n)
{
  qsort(v, n, sizeof *v, cmp_i64);
  size_t d = n ? 1 : 0;
  for (size_t i = 1; i < n; i++)
    d += v[i] != v[i - 1];
  return d;
}

static void test_lead_table(void **state)
{
  (void)state;
  static const struct {
    int64_t lead_min_s, lead_max_s; /* provider settings, 0 = default */
    int64_t lifetime_ms, want_ms;
  } cases[] = {
    {0, 0, 3600 * S, 900 * S}, /* lifetime/4 == max */
    {0, 0, 7200 * S, 900 * S}, /* capped at max */
    {0, 0, 86400 * S, 900 * S},
    {0, 0, 1200 * S, 300 * S}, /* lifetime/4 in range */
    {0, 0, 240 * S, 60 * S},   /* lifetime/4 == min */
    {0, 0, 200 * S, 60 * S},   /* raised to min */
    {0, 0, 120 * S, 60 * S},   /* boundary: 2 * min, both rules agree */
    {0, 0, 119 * S, 59500},    /* tiny: half-life */
    {0, 0, 10 * S, 5 * S},
    {0, 0, 1, 0},
    {0, 0, 0, 0},
    {0, 0, -5, 0},
    {10, 100, 1000 * S, 100 * S},
    {10, 100, 200 * S, 50 * S},
    {10, 100, 30 * S, 10 * S},
    {10, 100, 15 * S, 7500},
    {300, 100, 3600 * S, 300 * S},              /* max < min: min wins */
    {-1, -1, 3600 * S, 900 * S},                /* negative = default */
    {INT64_MAX, INT64_MAX, 3600 * S, 1800 * S}, /* clamped, no overflow */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    provider_t p;
    memset(&p, 0, sizeof p);
    p.refresh_lead_min = cases[i].lead_min_s;
    p.refresh_lead_max = cases[i].lead_max_s;
    int64_t got = policy_refresh_lead(cases[i].lifetime_ms, &p);
    if (got != cases[i].want_ms)
      print_error("case %zu: lead %lld, want %lld\n", i, (long long)got,
                  (long long)cases[i].want_ms);
    assert_int_equal(got, cases[i].want_ms);
  }
  assert_int_equal(policy_refresh_lead(3600 * S, NULL), 900 * S);
}

static void test_next_refresh_known_expiry(void **state)
{
  (void)state;
  provider_t p;
  memset(&p, 0, sizeof p);
  int64_t now = T0, exp = T0 + 3600 * S;
  /* rnd 0 = no jitter */
  assert_int_equal(policy_next_refresh(now, now, exp, true, &p, 0), exp - 900 * S);
  /* the largest jitter is a tenth of the lead, always earlier */
  assert_int_equal(policy_next_refresh(now, now, exp, true, &p, 90 * S), exp - 990 * S);
  assert_int_equal(policy_next_refresh(now, now, exp, true, &p, 90 * S + 1), exp - 900 * S);
  /* has_refresh_token does not matter with a known expiry */
  assert_int_equal(policy_next_refresh(now, now, exp, false, &p, 0), exp - 900 * S);
  /* lifetime from issued_at, evaluated later */
  assert_int_equal(policy_next_refresh(now + 600 * S, now, exp, true, &p, 0), exp - 900 * S);
  /* unknown issued_at: lifetime measured from now (1200 s -> lead 300 s) */
  assert_int_equal(policy_next_refresh(now + 2400 * S, 0, exp, true, &p, 0), exp - 300 * S);
  /* bogus issued_at (after expiry) is treated as unknown */
  assert_int_equal(policy_next_refresh(now + 2400 * S, exp + 1, exp, true, &p, 0), exp - 300 * S);
  /* never before now: issued long ago, expiring in 10 s */
  assert_int_equal(policy_next_refresh(now, now - 36000 * S, now + 10 * S, true, &p, 0), now);
  /* already expired */
  assert_int_equal(policy_next_refresh(now, now - 3600 * S, now - 1, true, &p, 12345), now);
  assert_int_equal(policy_next_refresh(now, 0, now, true, &p, 0), now);
  /* tiny lifetime: 60 s token refreshed at 30 s (minus up to 3 s) */
  assert_int_equal(policy_next_refresh(now, now, now + 60 * S, true, &p, 0), now + 30 * S);
  assert_int_equal(policy_next_refresh(now, now, now + 60 * S, true, &p, 3 * S), now + 27 * S);
  /* NULL provider = defaults */
  assert_int_equal(policy_next_refresh(now, now, exp, true, NULL, 0), exp - 900 * S);
}

static void test_jitter_spread(void **state)
{
  (void)state;
  provider_t p;
  memset(&p, 0, sizeof p);
  enum { N = 1000 };
  int64_t at[N];
  uint64_t rs = 42;
  int64_t now = T0, exp = T0 + 3600 * S, lead = 900 * S;
  for (int i = 0; i < N; i++) {
    at[i] = policy_next_refresh(now, now, exp, true, &p, rng_next(&rs));
    assert_true(at[i] <= exp - lead);
    assert_true(at[i] >= exp - lead - lead / POLICY_JITTER_DIV);
  }
  /* 90,001 possible values, 1000 draws: ~995 distinct expected */
  assert_true(distinct(at, N) >= 950);
  /* spread covers most of the range */
  assert_true(at[N - 1] - at[0] > lead / POLICY_JITTER_DIV * 9 / 10);

  /* keep-alive refreshes spread too */
  for (int i = 0; i < N; i++)
    at[i] = policy_next_refresh(now, now, 0, true, &p, rng_next(&rs));
  assert_true(distinct(at, N) >= 950);
  assert_true(at[0] >= now + 86400 * S - 8640 * S);
  assert_true(at[N - 1] <= now + 86400 * S);
}

static void test_unknown_expiry(void **state)
{
  (void)state;
  provider_t p;
  memset(&p, 0, sizeof p);
  int64_t now = T0;
  /* no default, no refresh token: nothing to schedule */
  assert_int_equal(policy_next_refresh(now, now, 0, false, &p, 0), 0);
  assert_int_equal(policy_next_refresh(now, now, 0, false, NULL, 0), 0);
  /* no default, refresh token: keep-alive (default one day) */
  assert_int_equal(policy_next_refresh(now, now, 0, true, &p, 0), now + 86400 * S);
  assert_int_equal(policy_next_refresh(now, now, 0, true, &p, 8640 * S), now + 77760 * S);
  assert_int_equal(policy_next_refresh(now, 0, 0, true, &p, 0), now + 86400 * S);
  p.keepalive_interval = 3600;
  assert_int_equal(policy_next_refresh(now, now - 600 * S, 0, true, &p, 0), now + 3000 * S);
  /* keep-alive overdue: now */
  assert_int_equal(policy_next_refresh(now, now - 7200 * S, 0, true, &p, 0), now);
  /* default_expires_in: as if the token said so, with or without RT */
  p.default_expires_in = 3600;
  assert_int_equal(policy_next_refresh(now, now, 0, false, &p, 0),
                   policy_next_refresh(now, now, now + 3600 * S, false, &p, 0));
  assert_int_equal(policy_next_refresh(now, now, 0, true, &p, 0), now + 2700 * S);
  assert_int_equal(policy_next_refresh(now + 10 * S, 0, 0, true, &p, 0), now + 2710 * S);
  /* default expiry long past: now */
  assert_int_equal(policy_next_refresh(now, now - 7200 * S, 0, true, &p, 0), now);
}

static void test_backoff_growth_and_cap(void **state)
{
  (void)state;
  int64_t now = T0;
  int64_t prev_min = 0;
  for (uint32_t f = 1; f <= 40; f++) {
    int64_t base = f - 1 >= 20 ? POLICY_BACKOFF_CAP_MS : 1000LL << (f - 1);
    if (base > POLICY_BACKOFF_CAP_MS)
      base = POLICY_BACKOFF_CAP_MS;
    int64_t lo = policy_backoff(f, 0, 0, now, 0);
    int64_t hi = policy_backoff(f, 0, 0, now, (uint64_t)(base - base / 2));
    assert_int_equal(lo, now + base / 2);
    assert_int_equal(hi, now + base);
    assert_true(lo - now >= prev_min);
    prev_min = lo - now;
  }
  assert_int_equal(policy_backoff(1, 0, 0, now, 0), now + 500);
  assert_int_equal(policy_backoff(0, 0, 0, now, 0), now + 500); /* 0 = first */
  assert_int_equal(policy_backoff(2, 0, 0, now, 0), now + 1000);
  assert_int_equal(policy_backoff(9, 0, 0, now, 0), now + 128000);
  assert_int_equal(policy_backoff(10, 0, 0, now, 0), now + 150000); /* capped */
  assert_int_equal(policy_backoff(UINT32_MAX, 0, 0, now, UINT64_MAX),
                   policy_backoff(10, 0, 0, now, UINT64_MAX));

  /* random draws stay in [base/2, base] and spread */
  enum { N = 1000 };
  int64_t at[N];
  uint64_t rs = 7;
  for (int i = 0; i < N; i++) {
    at[i] = policy_backoff(12, 0, 0, now, rng_next(&rs));
    assert_true(at[i] >= now + POLICY_BACKOFF_CAP_MS / 2);
    assert_true(at[i] <= now + POLICY_BACKOFF_CAP_MS);
  }
  assert_true(distinct(at, N) >= 950);
}

static void test_backoff_retry_after_and_expiry(void **state)
{
  (void)state;
  int64_t now = T0;
  /* Retry-After is a floor ... */
  assert_int_equal(policy_backoff(1, 10 * S, 0, now, 0), now + 10 * S);
  /* ... that does not lower a longer backoff ... */
  assert_int_equal(policy_backoff(10, 10 * S, 0, now, 0), now + 150 * S);
  /* ... and is capped at one hour */
  assert_int_equal(policy_backoff(1, 7200 * S, 0, now, 0), now + 3600 * S);
  assert_int_equal(policy_backoff(1, -5, 0, now, 0), now + 500);

  /* pulled in to try once more before expiry */
  assert_int_equal(policy_backoff(10, 0, now + 60 * S, now, 0), now + 55 * S);
  assert_int_equal(policy_backoff(10, 0, now + 6 * S + 1, now, 0), now + 1001);
  /* not possible any more: plain backoff */
  assert_int_equal(policy_backoff(10, 0, now + 6 * S, now, 0), now + 150 * S);
  assert_int_equal(policy_backoff(10, 0, now + 3 * S, now, 0), now + 150 * S);
  assert_int_equal(policy_backoff(10, 0, now - 1, now, 0), now + 150 * S);
  /* a backoff that ends before the last try is left alone */
  assert_int_equal(policy_backoff(1, 0, now + 60 * S, now, 0), now + 500);
  /* the provider's Retry-After wins over the expiry squeeze */
  assert_int_equal(policy_backoff(10, 120 * S, now + 60 * S, now, 0), now + 120 * S);
}

static void test_refresh_on_read(void **state)
{
  (void)state;
  static const struct {
    int64_t now, expires_at, min_ttl;
    bool want;
  } cases[] = {
    {T0, 0, 0, false}, /* unknown expiry */
    {T0, 0, 3600 * S, false},
    {T0, T0 + 60 * S, 0, false},
    {T0, T0 + 60 * S, 30 * S, false},
    {T0, T0 + 60 * S, 60 * S, false}, /* exactly enough */
    {T0, T0 + 60 * S, 60 * S + 1, true},
    {T0, T0, 0, true},         /* expires now */
    {T0, T0 - 1, 0, true},     /* expired */
    {T0, T0 + 1, -100, false}, /* negative min_ttl = 0 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_int_equal(
      policy_should_refresh_on_read(cases[i].now, cases[i].expires_at, cases[i].min_ttl),
      cases[i].want);
}

static void test_ratelimit_init(void **state)
{
  (void)state;
  ratelimit_t rl;
  assert_int_equal(ratelimit_init(&rl, -1, 1000), GRANTD_EINVALID);
  assert_int_equal(ratelimit_take(&rl, T0), 0); /* unlimited after an error */
  assert_int_equal(ratelimit_init(&rl, RATELIMIT_MAX_COUNT + 1, 1000), GRANTD_EINVALID);
  assert_int_equal(ratelimit_init(&rl, 5, 0), GRANTD_EINVALID);
  assert_int_equal(ratelimit_init(&rl, 5, RATELIMIT_MAX_WINDOW_MS + 1), GRANTD_EINVALID);
  assert_int_equal(ratelimit_init(&rl, RATELIMIT_MAX_COUNT, RATELIMIT_MAX_WINDOW_MS), 0);
  assert_null(rl.ring); /* nothing allocated before the first admission */
  assert_int_equal(ratelimit_take(&rl, T0), 0);
  assert_non_null(rl.ring);
  assert_true(rl.cap < 64); /* sized to the traffic, not to the count */
  ratelimit_free(&rl);
  assert_null(rl.ring);
  assert_int_equal(ratelimit_take(&rl, T0), 0); /* freed = unlimited */
  assert_int_equal(ratelimit_init(&rl, 0, 0), 0);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(ratelimit_take(&rl, T0), 0);
  assert_null(rl.ring);
  ratelimit_free(&rl);
  ratelimit_free(NULL);

  /* a zeroed limiter is unlimited; reconfig errors leave it unlimited */
  memset(&rl, 0, sizeof rl);
  assert_int_equal(ratelimit_take(&rl, T0), 0);
  assert_int_equal(ratelimit_reconfig(&rl, 2, 1000), 0);
  assert_int_equal(ratelimit_take(&rl, T0), 0);
  assert_int_equal(ratelimit_reconfig(&rl, 2, 0), GRANTD_EINVALID);
  assert_null(rl.ring);
  for (int i = 0; i < 10; i++)
    assert_int_equal(ratelimit_take(&rl, T0), 0);
}

static void test_ratelimit_exact_window(void **state)
{
  (void)state;
  ratelimit_t rl;
  /* 3 per 1000 ms: a burst of 3, then nothing until the first one leaves
   * the window (admissions at t count during [t, t + 1000)). */
  assert_int_equal(ratelimit_init(&rl, 3, 1000), 0);
  assert_int_equal(ratelimit_take(&rl, T0), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 10), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 20), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 20), 980);
  assert_int_equal(ratelimit_take(&rl, T0 + 999), 1);
  assert_int_equal(ratelimit_take(&rl, T0 + 1000), 0);  /* T0 left */
  assert_int_equal(ratelimit_take(&rl, T0 + 1000), 10); /* T0+10 leaves at +1010 */
  assert_int_equal(ratelimit_take(&rl, T0 + 1010), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 1015), 5);
  assert_int_equal(ratelimit_take(&rl, T0 + 1020), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 1020), 980);
  /* after a quiet window the full count is available again, no more */
  assert_int_equal(ratelimit_take(&rl, T0 + 5000), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 5000), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 5000), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 5000), 1000);
  ratelimit_free(&rl);

  /* the integration test's provider: 3 per 5 s, requests every 100 ms */
  assert_int_equal(ratelimit_init(&rl, 3, 5000), 0);
  int admitted = 0;
  for (int64_t t = T0; t < T0 + 5000; t += 100)
    admitted += ratelimit_take(&rl, t) == 0;
  assert_int_equal(admitted, 3);
  ratelimit_free(&rl);

  /* 10 per 10 minutes (a real provider's limit): never 11 in a window */
  assert_int_equal(ratelimit_init(&rl, 10, 600000), 0);
  for (int i = 0; i < 10; i++)
    assert_int_equal(ratelimit_take(&rl, T0 + i * 1000), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 10000), 590000);
  assert_int_equal(ratelimit_take(&rl, T0 + 599999), 1);
  assert_int_equal(ratelimit_take(&rl, T0 + 600000), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 600000), 1000);
  ratelimit_free(&rl);

  assert_int_equal(ratelimit_init(&rl, 1, 60000), 0);
  assert_int_equal(ratelimit_take(&rl, T0), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 1), 59999);
  assert_int_equal(ratelimit_take(&rl, T0 + 60000), 0);
  /* idle time banks nothing */
  assert_int_equal(ratelimit_take(&rl, T0 + 10000000), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 10000000), 60000);
  ratelimit_free(&rl);
}

/* A provider update keeps the admissions of the current window. */
static void test_ratelimit_reconfig(void **state)
{
  (void)state;
  ratelimit_t rl;
  assert_int_equal(ratelimit_init(&rl, 3, 1000), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(ratelimit_take(&rl, T0 + i), 0);
  assert_int_equal(ratelimit_reconfig(&rl, 3, 1000), 0); /* same limits: no new burst */
  assert_int_equal(ratelimit_take(&rl, T0 + 3), 997);
  assert_int_equal(ratelimit_reconfig(&rl, 5, 1000), 0); /* raised: 2 more */
  assert_int_equal(ratelimit_take(&rl, T0 + 3), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 4), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 5), 995);
  assert_int_equal(ratelimit_reconfig(&rl, 2, 1000), 0); /* lowered: wait for 4 to leave */
  assert_int_equal(ratelimit_take(&rl, T0 + 5), 998);    /* T0+3 leaves at +1003 */
  assert_int_equal(ratelimit_take(&rl, T0 + 1002), 1);
  assert_int_equal(ratelimit_take(&rl, T0 + 1003), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 1003), 1);  /* T0+4 leaves at +1004 */
  assert_int_equal(ratelimit_reconfig(&rl, 2, 100), 0); /* shorter window */
  assert_int_equal(ratelimit_take(&rl, T0 + 1004), 0);  /* only T0+1003 in it */
  assert_int_equal(ratelimit_take(&rl, T0 + 1004), 99);
  assert_int_equal(ratelimit_reconfig(&rl, 0, 0), 0); /* unlimited */
  assert_null(rl.ring);
  assert_int_equal(ratelimit_take(&rl, T0 + 1104), 0);
  ratelimit_free(&rl);
}

/* Greedy client taking whenever allowed: every interval of one window
 * admits at most `count` (checked over all admissions), the long-run rate
 * is exactly count per window (a burst of count at T0, the next at T0 +
 * window, ...), and a returned wait is exact (one ms earlier is refused,
 * at the wait it is admitted). */
static void test_ratelimit_rate(void **state)
{
  (void)state;
  static const struct {
    int64_t count, window;
  } cases[] = {{3, 1000}, {7, 1000}, {100, 60000}, {1000, 1000}, {5, 3}, {1, 1}, {5000, 10}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    ratelimit_t rl;
    int64_t count = cases[c].count, window = cases[c].window;
    assert_int_equal(ratelimit_init(&rl, count, window), 0);
    int64_t horizon = window * 50;
    size_t cap = (size_t)(count * 52 + 16), n = 0;
    int64_t *times = malloc(cap * sizeof *times);
    int64_t t = T0;
    while (t < T0 + horizon) {
      int64_t wait = ratelimit_take(&rl, t);
      if (wait == 0) {
        assert_true(n < cap);
        times[n++] = t;
        continue;
      }
      assert_true(wait >= 1 && wait <= window);
      if (wait > 1)
        assert_true(ratelimit_take(&rl, t + wait - 1) > 0); /* refused: nothing counted */
      t += wait;
    }
    /* all `count` admissions at T0, T0 + window, ... : 50 windows */
    assert_int_equal(n, 50 * count);
    for (size_t i = 0; i < n; i++)
      assert_int_equal(times[i], T0 + (int64_t)(i / (size_t)count) * window);
    /* sliding window bound, at every admission */
    for (size_t i = 0, j = 0; i < n; i++) {
      while (times[i] - times[j] >= window)
        j++;
      assert_true((int64_t)(i - j + 1) <= count);
    }
    free(times);
    ratelimit_free(&rl);
  }
}

/* Random arrivals against a brute-force model: admitted iff fewer than
 * count admissions in (now - window, now]; the wait is until the oldest of
 * them leaves. Exercises ring growth, wrap-around and shrinking. */
static void test_ratelimit_model(void **state)
{
  (void)state;
  uint64_t seed = 7;
  static const int64_t counts[] = {1, 2, 9, 40, 300};
  for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
    int64_t count = counts[c], window = 1 + (int64_t)(rng_next(&seed) % 500);
    ratelimit_t rl;
    assert_int_equal(ratelimit_init(&rl, count, window), 0);
    size_t cap = 200000, n = 0;
    int64_t *adm = malloc(cap * sizeof *adm);
    int64_t t = T0;
    for (int step = 0; step < 100000; step++) {
      uint64_t r = rng_next(&seed);
      /* bursts (same ms), small gaps, and now and then a quiet spell */
      if (r % 100 == 0)
        t += window * 3;
      else if (r % 3 == 0)
        t += (int64_t)(r >> 8) % (window / 8 + 1);
      int64_t in_window = 0, oldest = 0;
      for (size_t k = n; k-- > 0 && t - adm[k] < window;) {
        in_window++;
        oldest = adm[k];
      }
      int64_t want = 0;
      if (in_window >= count) {
        /* the count-th most recent admission */
        oldest = adm[n - (size_t)count];
        want = oldest + window - t;
      }
      int64_t got = ratelimit_take(&rl, t);
      assert_int_equal(got, want);
      if (got == 0) {
        assert_true(n < cap);
        adm[n++] = t;
      }
    }
    assert_true(rl.cap <= (uint32_t)count);
    free(adm);
    ratelimit_free(&rl);
  }
}

static void test_ratelimit_clock_backwards(void **state)
{
  (void)state;
  ratelimit_t rl;
  assert_int_equal(ratelimit_init(&rl, 2, 1000), 0);
  assert_int_equal(ratelimit_take(&rl, T0), 0);
  assert_int_equal(ratelimit_take(&rl, T0), 0);
  /* far back: the remembered admissions count as made now */
  assert_int_equal(ratelimit_take(&rl, T0 - 1000000000), 1000);
  assert_int_equal(ratelimit_take(&rl, T0 - 1000000000 + 999), 1);
  /* and it recovers */
  assert_int_equal(ratelimit_take(&rl, T0 - 1000000000 + 1000), 0);
  assert_int_equal(ratelimit_take(&rl, T0 + 1000), 0);
  ratelimit_free(&rl);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_lead_table),
    cmocka_unit_test(test_next_refresh_known_expiry),
    cmocka_unit_test(test_jitter_spread),
    cmocka_unit_test(test_unknown_expiry),
    cmocka_unit_test(test_backoff_growth_and_cap),
    cmocka_unit_test(test_backoff_retry_after_and_expiry),
    cmocka_unit_test(test_refresh_on_read),
    cmocka_unit_test(test_ratelimit_init),
    cmocka_unit_test(test_ratelimit_exact_window),
    cmocka_unit_test(test_ratelimit_reconfig),
    cmocka_unit_test(test_ratelimit_rate),
    cmocka_unit_test(test_ratelimit_model),
    cmocka_unit_test(test_ratelimit_clock_backwards),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
