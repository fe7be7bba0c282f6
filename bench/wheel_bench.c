/* wheel_bench: cost of the timing wheel against a binary heap of the same
 * entries and against libuv timers (the heap-based uv_timer_t).
 *
 * 1,000,000 entries with random deadlines spread over one hour are linked,
 * unlinked, linked again, then fired by advancing the clock the way the
 * service does: run at wheel_next_wake() until nothing is left. Prints ns
 * per operation, bytes per entry and the heap/wheel ratios; asserts nothing
 * about time.
 *
 * A second scenario replays an import: the entries are linked one at a time
 * in random deadline order (uniform over 200 000 s) with wheel_next_wake()
 * after each link and wheel_run() as the clock advances 1 ms per 100 links,
 * which is how the service schedules a bulk import. It prints ns per link
 * including those calls, and stops early (saying so) after 60 s.
 * Usage: wheel_bench [entries] [seed]. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "base/heap.h"
#include "base/mem.h"
#include "service/wheel.h"

static uint64_t rng_next(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- the wheel ---- */

typedef struct {
  wheel_entry_t e;
} wtimer_t;

static uint64_t fired_sum;

static void on_fire(void *arg, wheel_entry_t *e)
{
  uint64_t *last = arg;
  /* keep the work observable and check the order on the way */
  if (e->at < *last)
    abort();
  *last = e->at;
  fired_sum += e->at;
}

static void on_fire_any(void *arg, wheel_entry_t *e)
{
  (void)arg;
  fired_sum += e->at;
}

/* The import replay described at the top; returns ns per link. */
static double import_replay(size_t n, uint64_t *seed, size_t *done)
{
  static wheel_t w;
  const uint64_t t0 = 1700000000000ULL, span = 200000ULL * 1000;
  wtimer_t *wt = xcalloc(n, sizeof *wt);
  uint64_t now = t0;
  wheel_init(&w, now);
  double a = now_ns(), limit = 60e9;
  size_t i;
  for (i = 0; i < n; i++) {
    wheel_link(&w, &wt[i].e, t0 + 1 + rng_next(seed) % span);
    uint64_t wake = wheel_next_wake(&w);
    if (i % 100 == 99) {
      now++;
      if (wake <= now)
        wheel_run(&w, now, SIZE_MAX, on_fire_any, NULL);
      if (now_ns() - a > limit) {
        i++;
        break;
      }
    }
  }
  double per = (now_ns() - a) / (double)i;
  *done = i;
  for (size_t k = 0; k < i; k++)
    wheel_unlink(&wt[k].e);
  free(wt);
  return per;
}

/* ---- the binary heap (base/heap.h) for comparison ---- */

typedef struct {
  uint64_t at, seq; /* seq keeps equal deadlines FIFO, as in libuv */
  size_t idx;
} htimer_t;

static bool h_less(const void *a, const void *b)
{
  const htimer_t *x = a, *y = b;
  return x->at < y->at || (x->at == y->at && x->seq < y->seq);
}

static uint64_t h_seq;

static void h_push(heap_t *h, htimer_t *t, uint64_t at)
{
  t->at = at;
  t->seq = h_seq++;
  heap_push(h, t);
}

/* ---- libuv timers (link/unlink only: firing needs the real clock) ---- */

static void uv_noop(uv_timer_t *t)
{
  (void)t;
}

int main(int argc, char **argv)
{
  size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
  uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
  const uint64_t t0 = 1700000000000ULL, span = 3600ULL * 1000;
  uint64_t *at = xmalloc(n * sizeof *at);
  for (size_t i = 0; i < n; i++)
    at[i] = t0 + 1 + rng_next(&seed) % span;

  /* wheel */
  static wheel_t w;
  wtimer_t *wt = xmalloc(n * sizeof *wt);
  memset(wt, 0, n * sizeof *wt); /* fault the pages in before timing */
  wheel_init(&w, t0);
  double a = now_ns();
  for (size_t i = 0; i < n; i++)
    wheel_link(&w, &wt[i].e, at[i]);
  double w_link = (now_ns() - a) / (double)n;
  a = now_ns();
  for (size_t i = 0; i < n; i++)
    wheel_unlink(&wt[i].e);
  double w_unlink = (now_ns() - a) / (double)n;
  for (size_t i = 0; i < n; i++)
    wheel_link(&w, &wt[i].e, at[i]);
  size_t fired = 0, runs = 0;
  uint64_t last = 0;
  a = now_ns();
  for (;;) {
    uint64_t wake = wheel_next_wake(&w);
    if (wake == UINT64_MAX)
      break;
    fired += wheel_run(&w, wake, SIZE_MAX, on_fire, &last);
    runs++;
  }
  double w_fire = (now_ns() - a) / (double)n;
  if (fired != n || wheel_count(&w) != 0) {
    fprintf(stderr, "wheel fired %zu of %zu\n", fired, n);
    return 1;
  }

  /* heap */
  heap_t h;
  heap_init(&h, h_less, offsetof(htimer_t, idx));
  heap_reserve(&h, n);
  htimer_t *ht = xmalloc(n * sizeof *ht);
  memset(h.items, 0, n * sizeof(void *));
  memset(ht, 0, n * sizeof *ht);
  a = now_ns();
  for (size_t i = 0; i < n; i++)
    h_push(&h, &ht[i], at[i]);
  double h_link = (now_ns() - a) / (double)n;
  a = now_ns();
  for (size_t i = 0; i < n; i++)
    heap_remove(&h, &ht[i]);
  double h_unlink = (now_ns() - a) / (double)n;
  for (size_t i = 0; i < n; i++)
    h_push(&h, &ht[i], at[i]);
  size_t hfired = 0;
  last = 0;
  a = now_ns();
  while (h.n > 0) {
    htimer_t *t = heap_top(&h);
    heap_remove(&h, t);
    if (t->at < last)
      abort();
    last = t->at;
    fired_sum += t->at;
    hfired++;
  }
  double h_fire = (now_ns() - a) / (double)n;

  /* libuv */
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_timer_t *ut = xcalloc(n, sizeof *ut);
  for (size_t i = 0; i < n; i++)
    uv_timer_init(&loop, &ut[i]);
  a = now_ns();
  for (size_t i = 0; i < n; i++)
    uv_timer_start(&ut[i], uv_noop, at[i] - t0, 0);
  double u_link = (now_ns() - a) / (double)n;
  a = now_ns();
  for (size_t i = 0; i < n; i++)
    uv_timer_stop(&ut[i]);
  double u_unlink = (now_ns() - a) / (double)n;
  for (size_t i = 0; i < n; i++)
    uv_close((uv_handle_t *)&ut[i], NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  printf("wheel_bench: %zu entries, deadlines uniform over 1 h (seed-driven)\n", n);
  printf("%-10s %10s %10s %10s %12s\n", "", "link ns", "unlink ns", "fire ns", "bytes/entry");
  printf("%-10s %10.1f %10.1f %10.1f %12zu  (+%zu B per wheel; %zu runs)\n", "wheel", w_link,
         w_unlink, w_fire, sizeof(wheel_entry_t), sizeof(wheel_t), runs);
  printf("%-10s %10.1f %10.1f %10.1f %12zu  (24 B node + 8 B array slot)\n", "heap", h_link,
         h_unlink, h_fire, sizeof(htimer_t) + sizeof(htimer_t *));
  printf("%-10s %10.1f %10.1f %10s %12zu  (uv_timer_t)\n", "libuv", u_link, u_unlink, "-",
         sizeof(uv_timer_t));
  printf("ratio heap/wheel:  link %.2fx  unlink %.2fx  fire %.2fx\n", h_link / w_link,
         h_unlink / w_unlink, h_fire / w_fire);
  printf("ratio libuv/wheel: link %.2fx  unlink %.2fx  memory %.2fx\n", u_link / w_link,
         u_unlink / w_unlink, (double)sizeof(uv_timer_t) / (double)sizeof(wheel_entry_t));
  size_t imported;
  double imp = import_replay(n, &seed, &imported);
  printf("import replay: %.1f ns per link (with next_wake, run) over %zu of %zu links%s\n", imp,
         imported, n, imported < n ? " (stopped at 60 s)" : "");
  printf("(checksum %" PRIu64 ", heap fired %zu)\n", fired_sum, hfired);

  free(at);
  free(wt);
  heap_free(&h);
  free(ht);
  free(ut);
  return 0;
}
