/*
 * policy.c - refresh-policy arithmetic; the rules are stated in policy.h.
 *
 * Everything here is integer arithmetic on int64 ms. Provider settings are
 * clamped before they are multiplied so that no configured value can
 * overflow a time: seconds are limited to POLICY_MAX_SETTING_S (100 years).
 * The rate limiter is the one part with state: a ring of recent admission
 * times (see policy.h).
 */
#include "service/policy.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"

#define POLICY_MAX_SETTING_S (100LL * 366 * 86400)

/* A provider setting in seconds as ms: `def` when unset (<= 0). */
static int64_t setting_ms(int64_t v, int64_t def)
{
  if (v <= 0)
    v = def;
  if (v > POLICY_MAX_SETTING_S)
    v = POLICY_MAX_SETTING_S;
  return v * 1000;
}

static int64_t max64(int64_t a, int64_t b)
{
  return a > b ? a : b;
}

/* Uniform in [0, range] (range >= 0). The modulo bias is below 2^-40 for
 * any range we use, irrelevant for jitter. */
static int64_t jitter(uint64_t rnd, int64_t range)
{
  return (int64_t)(rnd % ((uint64_t)range + 1));
}

int64_t policy_refresh_lead(int64_t lifetime_ms, const provider_t *p)
{
  if (lifetime_ms <= 0)
    return 0;
  int64_t lead_min = setting_ms(p ? p->refresh_lead_min : 0, POLICY_LEAD_MIN_DEFAULT_S);
  int64_t lead_max = setting_ms(p ? p->refresh_lead_max : 0, POLICY_LEAD_MAX_DEFAULT_S);
  if (lead_max < lead_min)
    lead_max = lead_min;
  if (lifetime_ms / 2 < lead_min)
    return lifetime_ms / 2;
  int64_t lead = lifetime_ms / 4;
  if (lead < lead_min)
    lead = lead_min;
  if (lead > lead_max)
    lead = lead_max;
  return lead;
}

int64_t policy_next_refresh(int64_t now, int64_t issued_at, int64_t expires_at,
                            bool has_refresh_token, const provider_t *p, uint64_t rnd)
{
  int64_t base = issued_at > 0 ? issued_at : now;
  if (expires_at <= 0) {
    int64_t def_s = p ? p->default_expires_in : 0;
    if (def_s > 0) {
      expires_at = base + setting_ms(def_s, 0);
    } else if (has_refresh_token) {
      int64_t ka = setting_ms(p ? p->keepalive_interval : 0, POLICY_KEEPALIVE_DEFAULT_S);
      return max64(now, base + ka - jitter(rnd, ka / POLICY_JITTER_DIV));
    } else {
      return 0;
    }
  }
  if (issued_at <= 0 || issued_at >= expires_at)
    base = now;
  int64_t lifetime = expires_at - base;
  if (lifetime <= 0)
    return now;
  int64_t lead = policy_refresh_lead(lifetime, p);
  return max64(now, expires_at - lead - jitter(rnd, lead / POLICY_JITTER_DIV));
}

int64_t policy_backoff(uint32_t failures, int64_t retry_after_ms, int64_t expires_at, int64_t now,
                       uint64_t rnd)
{
  if (failures == 0)
    failures = 1;
  /* 1 s << 9 already exceeds the 5 min cap; stop shifting long before. */
  unsigned shift = failures - 1 > 20 ? 20 : failures - 1;
  int64_t base = (int64_t)POLICY_BACKOFF_BASE_MS << shift;
  if (base > POLICY_BACKOFF_CAP_MS)
    base = POLICY_BACKOFF_CAP_MS;
  int64_t at = now + base / 2 + jitter(rnd, base - base / 2);

  if (expires_at > 0) {
    int64_t last_try = expires_at - POLICY_EXPIRY_MARGIN_MS;
    if (last_try > now + POLICY_BACKOFF_BASE_MS && at > last_try)
      at = last_try;
  }
  if (retry_after_ms > 0) {
    if (retry_after_ms > POLICY_RETRY_AFTER_CAP_MS)
      retry_after_ms = POLICY_RETRY_AFTER_CAP_MS;
    at = max64(at, now + retry_after_ms);
  }
  return at;
}

bool policy_should_refresh_on_read(int64_t now, int64_t expires_at, int64_t min_ttl_ms)
{
  if (expires_at <= 0)
    return false;
  int64_t remaining = expires_at - now;
  return remaining <= 0 || remaining < min_ttl_ms;
}

static int rl_valid(int64_t count, int64_t window_ms)
{
  return count == 0 || (count > 0 && count <= RATELIMIT_MAX_COUNT && window_ms >= 1 &&
                        window_ms <= RATELIMIT_MAX_WINDOW_MS);
}

int ratelimit_init(ratelimit_t *rl, int64_t count, int64_t window_ms)
{
  memset(rl, 0, sizeof *rl);
  return ratelimit_reconfig(rl, count, window_ms);
}

int ratelimit_reconfig(ratelimit_t *rl, int64_t count, int64_t window_ms)
{
  if (count == 0 || !rl_valid(count, window_ms)) {
    ratelimit_free(rl);
    return count == 0 ? 0 : GRANTD_EINVALID;
  }
  /* The ring may hold more than the new count (it never needs to grow
   * then: admissions wait until it drained below count). */
  rl->count = count;
  rl->window_ms = window_ms;
  return 0;
}

void ratelimit_free(ratelimit_t *rl)
{
  if (rl == NULL)
    return;
  free(rl->ring);
  memset(rl, 0, sizeof *rl);
}

/* Re-lays the ring out into `cap` slots, oldest first at index 0. */
static void rl_resize(ratelimit_t *rl, uint32_t cap)
{
  int64_t *ring = xmalloc((size_t)cap * sizeof *ring);
  for (uint32_t i = 0; i < rl->n; i++)
    ring[i] = rl->ring[(rl->head + i) % rl->cap];
  free(rl->ring);
  rl->ring = ring;
  rl->cap = cap;
  rl->head = 0;
}

#define RL_MIN_CAP 8

/* Ring of admission times: after dropping the ones that left the window
 * (t <= now - window), the ring holds exactly the admissions in the
 * current window, so the test is n < count, and the wait is until the
 * count-th most recent leaves. Times are kept non-decreasing (the clamp below), so the
 * oldest is always at head. */
int64_t ratelimit_take(ratelimit_t *rl, int64_t now)
{
  int64_t count = rl->count, window = rl->window_ms;
  if (count == 0)
    return 0;
  if (rl->n > 0) {
    uint32_t last = (rl->head + rl->n - 1) % rl->cap;
    if (rl->ring[last] > now) {
      /* The clock went backwards: move the future down to now. */
      for (uint32_t i = 0; i < rl->n; i++) {
        uint32_t k = (rl->head + i) % rl->cap;
        if (rl->ring[k] > now)
          rl->ring[k] = now;
      }
    }
  }
  while (rl->n > 0 && now - rl->ring[rl->head] >= window) {
    rl->head = (rl->head + 1) % rl->cap;
    rl->n--;
  }
  if (rl->n == 0)
    rl->head = 0;
  if ((int64_t)rl->n >= count) {
    /* Admitted once the count-th most recent leaves (the oldest, unless a
     * reconfig lowered the count below what the ring holds). */
    uint32_t k = (uint32_t)((rl->head + rl->n - (uint32_t)count) % rl->cap);
    return rl->ring[k] + window - now;
  }
  if (rl->n == rl->cap) {
    uint64_t cap = rl->cap ? (uint64_t)rl->cap * 2 : RL_MIN_CAP;
    if (cap > (uint64_t)count)
      cap = (uint64_t)count;
    rl_resize(rl, (uint32_t)cap);
  } else if (rl->cap > RL_MIN_CAP * 4 && rl->n < rl->cap / 4) {
    rl_resize(rl, rl->cap / 2); /* a burst is over: give memory back */
  }
  rl->ring[(rl->head + rl->n) % rl->cap] = now;
  rl->n++;
  return 0;
}
