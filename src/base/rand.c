/*
 * Randomness; see rand.h.
 *
 * getrandom(2) with flags 0 reads the kernel CSPRNG (blocking only until it
 * is first seeded). rand_range uses rejection sampling so every value in
 * [0, n) is equally likely; the fast generator is splitmix64 (a Weyl
 * sequence through a 64-bit finaliser), which passes BigCrush, needs one
 * word of state and accepts any seed.
 */
#include "base/rand.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/b64.h"
#include "base/mem.h"

void rand_bytes(void *p, size_t n)
{
  unsigned char *b = p;
  while (n > 0) {
    ssize_t r = getrandom(b, n, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      /* Written directly: the log module may itself want randomness one day
       * and this must not recurse. */
      fprintf(stderr,
              "{\"level\":\"error\",\"event\":\"getrandom_failed\","
              "\"errno\":%d}\n",
              errno);
      abort();
    }
    b += r;
    n -= (size_t)r;
  }
}

#define NONCE_POOL 512

static _Thread_local unsigned char pool[NONCE_POOL];
static _Thread_local size_t used = NONCE_POOL; /* empty */

void rand_nonce_flush(void)
{
  memset(pool, 0, sizeof pool);
  used = NONCE_POOL;
}

void rand_nonce(void *p, size_t n)
{
  if (n > NONCE_POOL / 4) {
    rand_bytes(p, n);
    return;
  }
  if (NONCE_POOL - used < n) {
    rand_bytes(pool, NONCE_POOL);
    used = 0;
  }
  memcpy(p, pool + used, n);
  memset(pool + used, 0, n);
  used += n;
}

uint64_t rand_u64(void)
{
  uint64_t v;
  rand_bytes(&v, sizeof v);
  return v;
}

uint64_t rand_range(uint64_t n)
{
  if (n == 0)
    return 0;
  /* Values below `lim` are a whole number of copies of [0, n);
   * (2^64 - n) % n == 2^64 % n, computed without overflow. */
  uint64_t reject = (0 - n) % n;
  uint64_t lim = UINT64_MAX - reject;
  uint64_t v;
  do {
    v = rand_u64();
  } while (v > lim);
  return v % n;
}

void rand_token(buf_t *out, size_t nbytes)
{
  unsigned char small[64] = {0}; /* zeroed: gcc cannot see rand_bytes fill it */
  unsigned char *p = nbytes <= sizeof small ? small : xmalloc(nbytes);
  rand_bytes(p, nbytes);
  b64url_encode(out, p, nbytes);
  mem_wipe(p, nbytes);
  if (p != small)
    free(p);
}

uint64_t rand_fast_u64(uint64_t *state)
{
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t rand_fast_range(uint64_t *state, uint64_t n)
{
  if (n == 0)
    return 0;
  /* Multiply-high maps a 64-bit value onto [0, n) without a division. */
  return (uint64_t)(((unsigned __int128)rand_fast_u64(state) * n) >> 64);
}
