/*
 * policy.c - refresh-policy arithmetic; the rules are stated in policy.h.
 *
 * Everything here is integer arithmetic on int64 ms. Provider settings are
 * clamped before they are multiplied so that no configured value can
 * overflow a time: seconds are limited to POLICY_MAX_SETTING_S (100 years).
 */
#include "service/policy.h"

#include "base/err.h"

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

int64_t policy_backoff(uint32_t failures, int64_t retry_after_ms, int64_t expires_at,
                       int64_t now, uint64_t rnd)
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

int ratelimit_init(ratelimit_t *rl, int64_t count, int64_t window_ms)
{
  rl->count = 0;
  rl->window_ms = 0;
  rl->tat = 0;
  rl->frac = 0;
  if (count == 0)
    return 0;
  if (count < 0 || count > RATELIMIT_MAX_COUNT || window_ms < 1 ||
      window_ms > RATELIMIT_MAX_WINDOW_MS)
    return GRANTD_EINVALID;
  rl->count = count;
  rl->window_ms = window_ms;
  rl->tat = INT64_MIN;
  return 0;
}

/* GCRA in units of 1/count ms: each admission moves the theoretical arrival
 * time (tat + frac/count) forward by window/count; a request at `now` is
 * admitted while tat is at most (count - 1) intervals ahead of now, which is
 * a bucket of `count` tokens refilled at count per window. The products
 * stay below window * count <= 2^55, far from overflow. */
int64_t ratelimit_take(ratelimit_t *rl, int64_t now)
{
  int64_t count = rl->count, window = rl->window_ms;
  if (count == 0)
    return 0;
  if (rl->tat < now) {
    rl->tat = now;
    rl->frac = 0;
  } else if (rl->tat - now > window) {
    rl->tat = now + window; /* the clock went backwards: bound the damage */
  }
  int64_t ahead = (rl->tat - now) * count + rl->frac;
  int64_t tau = (count - 1) * window;
  if (ahead > tau)
    return (ahead - tau + count - 1) / count;
  rl->tat += window / count;
  rl->frac += window % count;
  if (rl->frac >= count) {
    rl->frac -= count;
    rl->tat++;
  }
  return 0;
}
