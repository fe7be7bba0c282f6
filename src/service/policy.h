/*
 * policy.h - refresh-policy arithmetic: when to refresh a token, when to
 * retry after a failure, whether a read must refresh first, and a
 * per-provider rate limiter.
 *
 * Pure functions (apart from the rate limiter's own ring buffer): no
 * clock, no I/O, no global state. Times
 * are int64 milliseconds (the same clock as conn_t: wall ms since the
 * epoch); provider settings are in seconds as stored in provider_t. Where a
 * function needs randomness it takes `rnd`, one uniformly random 64-bit
 * value (e.g. rand_fast_u64(&state) from base/rand.h), so tests can pin it.
 */
#ifndef GRANTD_SERVICE_POLICY_H
#define GRANTD_SERVICE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "model/connection.h"
#include "model/provider.h"

#define POLICY_LEAD_MIN_DEFAULT_S 60      /* provider_t.refresh_lead_min == 0 */
#define POLICY_LEAD_MAX_DEFAULT_S 900     /* provider_t.refresh_lead_max == 0 */
#define POLICY_KEEPALIVE_DEFAULT_S 86400  /* provider_t.keepalive_interval == 0 */
#define POLICY_JITTER_DIV 10              /* jitter is up to 1/10 of the lead */
#define POLICY_BACKOFF_BASE_MS 1000       /* first retry after 0.5..1 s */
#define POLICY_BACKOFF_CAP_MS 300000      /* backoff stops doubling at 5 min */
#define POLICY_RETRY_AFTER_CAP_MS 3600000 /* Retry-After honoured up to 1 h */
#define POLICY_EXPIRY_MARGIN_MS 5000      /* last retry this long before expiry */

/* The lead (ms before expiry) for a token of the given lifetime, before
 * jitter: clamp(lifetime / 4, lead_min, lead_max), except that a lifetime
 * shorter than 2 * lead_min gets lifetime / 2 (refresh at half-life: with
 * a lead of lead_min it would be refreshed at once, or continually). The
 * two rules meet at lifetime == 2 * lead_min. Settings <= 0 take the
 * defaults; lead_max < lead_min is treated as lead_min. p may be NULL
 * (all defaults). Returns 0 for lifetime <= 0. */
int64_t policy_refresh_lead(int64_t lifetime_ms, const provider_t *p);

/* When to refresh a connection's token proactively.
 * @param now         current time.
 * @param issued_at   when the token was obtained (conn_t.refreshed_at);
 *                    <= 0 or not before expires_at = unknown, and the
 *                    lifetime is then measured from now.
 * @param expires_at  token expiry, 0 = unknown.
 * @param has_refresh_token  only consulted when the expiry is unknown.
 * @param p           provider settings (NULL = defaults).
 * @param rnd         a random value for the jitter.
 * @return the refresh time, never before now:
 *   - known expiry: expires_at - lead - jitter, jitter uniform in
 *     [0, lead / POLICY_JITTER_DIV]. The jitter moves refreshes *earlier*
 *     so the configured minimum lead is always kept while tokens issued
 *     together spread over a tenth of the lead;
 *   - unknown expiry and p->default_expires_in > 0: as if the token
 *     expired default_expires_in seconds after issued_at (or now);
 *   - unknown expiry, no default, refresh token: a keep-alive refresh at
 *     issued_at (or now) + keepalive_interval - jitter (up to a tenth), so
 *     idle refresh tokens do not lapse;
 *   - unknown expiry, no default, no refresh token: 0 = do not schedule. */
int64_t policy_next_refresh(int64_t now, int64_t issued_at, int64_t expires_at,
                            bool has_refresh_token, const provider_t *p, uint64_t rnd);

/* When to retry after a transient failure.
 * @param failures        consecutive failures including this one (0 is
 *                        taken as 1).
 * @param retry_after_ms  the provider's Retry-After as a delay from now,
 *                        <= 0 = none.
 * @param expires_at      expiry of the token still being served, 0 =
 *                        unknown.
 * @return the next attempt time: now + d, d = "equal jitter" over an
 *   exponential base (1 s doubling per failure, capped at 5 min): d is
 *   uniform in [base/2, base]. Full jitter could retry at once; equal
 *   jitter keeps a floor while still spreading a herd, and unlike
 *   decorrelated jitter needs no state beyond the failure count. If that
 *   would pass expires_at - POLICY_EXPIRY_MARGIN_MS while that point is
 *   more than POLICY_BACKOFF_BASE_MS away, the attempt is pulled in to it
 *   (one more try while the old token is still valid). A Retry-After is
 *   then a floor: never earlier than now + min(retry_after, 1 h). */
int64_t policy_backoff(uint32_t failures, int64_t retry_after_ms, int64_t expires_at, int64_t now,
                       uint64_t rnd);

/* True when a read asking for min_ttl_ms of validity must refresh first:
 * the token has expired (expires_at <= now) or less than min_ttl_ms
 * remains. An unknown expiry (0) never forces a refresh. */
bool policy_should_refresh_on_read(int64_t now, int64_t expires_at, int64_t min_ttl_ms);

/* A strict sliding-window rate limiter: at most `count` admissions in any
 * interval of window_ms (an admission at t counts until t + window_ms), as
 * providers state such limits ("10 token requests per 10 minutes"). A
 * token bucket would admit a full burst and then keep refilling, so one
 * window could see almost 2 * count requests.
 *
 * It keeps the times of the admissions still inside the window, oldest
 * first, in a ring that grows on demand (doubling, up to `count` entries)
 * and shrinks when mostly empty: memory follows the traffic actually
 * admitted in one window (8 bytes per admission), not the configured count
 * (up to RATELIMIT_MAX_COUNT), and nothing is allocated until the first
 * admission. Exact: no approximation at any count.
 *
 * A zeroed ratelimit_t is a valid unlimited limiter. Fields are private.
 * Not thread-safe (the service uses it on the loop thread only). */
typedef struct {
  int64_t count; /* 0 = unlimited */
  int64_t window_ms;
  int64_t *ring; /* admission times, oldest at ring[head]; NULL until used */
  uint32_t cap;  /* ring slots */
  uint32_t head; /* index of the oldest admission held */
  uint32_t n;    /* admissions held (all within the last window) */
} ratelimit_t;

#define RATELIMIT_MAX_COUNT 1000000
#define RATELIMIT_MAX_WINDOW_MS (1000LL * 86400 * 366)

/* Sets up a fresh limiter (rl's previous contents are ignored, not freed):
 * count in [0, RATELIMIT_MAX_COUNT] (0 = unlimited), window_ms in
 * [1, RATELIMIT_MAX_WINDOW_MS] when count > 0. Allocates nothing.
 * @return 0, or GRANTD_EINVALID (rl is then an unlimited limiter). Release
 *   with ratelimit_free(). */
int ratelimit_init(ratelimit_t *rl, int64_t count, int64_t window_ms);

/* Changes the limits of a live limiter (initialised or zeroed), keeping
 * the admissions it remembers: a provider update must not grant a fresh
 * burst. Those admissions count against the new limits (with a smaller
 * count, taking waits until enough of them left the window).
 * @return 0, or GRANTD_EINVALID (the arguments as for ratelimit_init; rl
 *   is then freed and unlimited). */
int ratelimit_reconfig(ratelimit_t *rl, int64_t count, int64_t window_ms);

/* Frees the ring; rl becomes an unlimited limiter (may be reused). NULL
 * is ignored. */
void ratelimit_free(ratelimit_t *rl);

/* Takes one request at time now.
 * @return 0 when admitted (and counted): fewer than `count` admissions
 *   happened in (now - window_ms, now]. Else the number of ms (>= 1,
 *   <= window_ms) until enough of them left the window (normally: the
 *   oldest), after which the request would be admitted (nothing counted). A clock that goes
 *   backwards is tolerated: remembered admissions later than now are taken
 *   as made at now (conservative), so the wait never exceeds one window. */
int64_t ratelimit_take(ratelimit_t *rl, int64_t now);

#endif
