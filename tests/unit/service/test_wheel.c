/* Unit tests for service/wheel: targeted cases (FIFO on equal deadlines
 * across cascades, past deadlines clamped to the wheel's time, far-future
 * deadlines, the per-run limit, re-linking and unlinking from inside a fire
 * callback, a clock that goes backwards, validate/dump), a randomized
 * comparison against a reference model (a binary heap ordered by (clamped
 * deadline, link sequence)) over millions of operations with deadlines from
 * 0 ms to decades, and bounds on the work per operation counted in list
 * steps (wheel_steps), never in time. Deterministic: fixed seeds, no real
 * clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/mem.h"
#include "service/wheel.h"

typedef struct {
  wheel_entry_t e;
  uint32_t id;
} item_t;

static uint64_t rng_next(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static void check_valid(const wheel_t *w)
{
  const char *why = NULL;
  int rc = wheel_validate(w, &why);
  if (rc != 0) {
    fprintf(stderr, "wheel invalid: %s\n", why ? why : "?");
    wheel_dump(w, stderr);
  }
  assert_int_equal(rc, 0);
}

/* ---- a recorder used by the targeted tests ---- */

typedef struct {
  wheel_t *w;
  uint64_t now;
  uint32_t order[256];
  size_t n;
  /* optional actions performed when a given id fires */
  uint32_t trigger_id;
  void (*action)(void *rec, item_t *fired);
  item_t *items;
} rec_t;

static void rec_fire(void *arg, wheel_entry_t *e)
{
  rec_t *r = arg;
  item_t *it = container_of(e, item_t, e);
  assert_false(wheel_is_linked(e));
  assert_true(wheel_entry_at(e) <= r->now); /* never early */
  assert_true(r->n < ARRAY_SIZE(r->order));
  r->order[r->n++] = it->id;
  if (r->action && it->id == r->trigger_id)
    r->action(r, it);
}

static size_t run(rec_t *r, uint64_t now, size_t max)
{
  r->now = now;
  size_t n = wheel_run(r->w, now, max, rec_fire, r);
  check_valid(r->w);
  return n;
}

/* Advances (firing nothing) through the cascade-only wake-ups that
 * wheel_next_wake may answer for an outer slot, and returns the first
 * wake-up that is stable, i.e. the exact earliest deadline. There are at
 * most WHEEL_LEVELS - 1 such steps. */
static uint64_t settled_wake(rec_t *r)
{
  for (unsigned i = 0; i < WHEEL_LEVELS; i++) {
    uint64_t wake = wheel_next_wake(r->w);
    if (wake == UINT64_MAX)
      return wake;
    assert_int_equal(run(r, wake, 0), 0);
    if (wheel_next_wake(r->w) == wake)
      return wake;
  }
  fail_msg("wheel_next_wake did not settle within %u steps", WHEEL_LEVELS);
  return 0;
}

static void init_items(item_t *items, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    wheel_entry_init(&items[i].e);
    items[i].id = (uint32_t)i;
  }
}

static void test_sizes(void **state)
{
  (void)state;
  assert_true(sizeof(wheel_entry_t) <= 48);
  if (sizeof(void *) == 8)
    assert_int_equal(sizeof(wheel_entry_t), 32);
  wheel_entry_t z;
  memset(&z, 0, sizeof z);
  assert_false(wheel_is_linked(&z)); /* zeroed = unlinked */
}

static void test_basic(void **state)
{
  (void)state;
  static wheel_t w;
  item_t it[3];
  init_items(it, 3);
  wheel_init(&w, 1000);
  rec_t r = {.w = &w};
  assert_int_equal(wheel_next_wake(&w), UINT64_MAX);
  assert_int_equal(run(&r, 5000, SIZE_MAX), 0);

  wheel_link(&w, &it[0].e, 6000);
  wheel_link(&w, &it[1].e, 5001);
  wheel_link(&w, &it[2].e, 1u << 20);
  assert_int_equal(wheel_count(&w), 3);
  assert_true(wheel_is_linked(&it[0].e));
  assert_int_equal(wheel_entry_at(&it[0].e), 6000);
  assert_int_equal(wheel_next_wake(&w), 5001);
  check_valid(&w);

  assert_int_equal(run(&r, 5000, SIZE_MAX), 0); /* nothing early */
  assert_int_equal(run(&r, 5001, SIZE_MAX), 1);
  assert_int_equal(r.order[0], 1);
  /* 6000 sits in a level-1 slot: the wake-up may be its start, never later */
  uint64_t wake = wheel_next_wake(&w);
  assert_true(wake > 5001 && wake <= 6000);
  assert_int_equal(settled_wake(&r), 6000);
  assert_int_equal(run(&r, 5999, SIZE_MAX), 0);
  assert_int_equal(run(&r, 6000, SIZE_MAX), 1);
  assert_true(wheel_next_wake(&w) <= 1u << 20);
  assert_int_equal(settled_wake(&r), 1u << 20); /* exact once cascaded */

  wheel_unlink(&it[2].e);
  wheel_unlink(&it[2].e); /* no-op */
  assert_false(wheel_is_linked(&it[2].e));
  assert_int_equal(wheel_count(&w), 0);
  assert_int_equal(wheel_next_wake(&w), UINT64_MAX);
  assert_int_equal(run(&r, UINT64_MAX, SIZE_MAX), 0);
  check_valid(&w);
}

/* Entries with one deadline, linked at very different times (so they sit at
 * different levels before cascading), fire in link order; a re-link counts as
 * a new link; links into the past are clamped to the wheel's time and queue
 * behind what is already due. */
static void test_fifo_across_cascades(void **state)
{
  (void)state;
  static wheel_t w;
  item_t it[50];
  init_items(it, 50);
  const uint64_t D = 10000000; /* ~2.8 h after 0: level 3 at first */
  wheel_init(&w, 0);
  rec_t r = {.w = &w};
  for (uint32_t i = 0; i < 10; i++)
    wheel_link(&w, &it[i].e, D);
  assert_int_equal(run(&r, D - 200000, SIZE_MAX), 0);
  for (uint32_t i = 10; i < 20; i++)
    wheel_link(&w, &it[i].e, D);
  assert_int_equal(run(&r, D - 3000, SIZE_MAX), 0);
  for (uint32_t i = 20; i < 30; i++)
    wheel_link(&w, &it[i].e, D);
  wheel_link(&w, &it[5].e, D); /* re-link: now after 29 */
  assert_int_equal(run(&r, D - 1, SIZE_MAX), 0);
  for (uint32_t i = 30; i < 40; i++)
    wheel_link(&w, &it[i].e, D);
  /* earlier deadlines linked last still fire first; D - 1 is the wheel's
   * time, so both of these are due now, in link order */
  wheel_link(&w, &it[40].e, D - 1);
  wheel_link(&w, &it[41].e, 5); /* in the past: clamped to D - 1 */
  assert_int_equal(wheel_entry_at(&it[41].e), D - 1);
  assert_int_equal(wheel_next_wake(&w), D - 1);
  assert_int_equal(run(&r, D, 12), 12);
  /* links into the past after the cursor passed D queue behind the rest */
  wheel_link(&w, &it[42].e, D);
  wheel_link(&w, &it[43].e, D - 7);
  assert_int_equal(wheel_entry_at(&it[43].e), D);
  assert_int_equal(run(&r, D + 100, SIZE_MAX), 32);
  uint32_t want[44], n = 0;
  want[n++] = 40;
  want[n++] = 41;
  for (uint32_t i = 0; i < 10; i++)
    if (i != 5)
      want[n++] = i;
  for (uint32_t i = 10; i < 30; i++)
    want[n++] = i;
  want[n++] = 5;
  for (uint32_t i = 30; i < 40; i++)
    want[n++] = i;
  want[n++] = 42;
  want[n++] = 43;
  assert_int_equal(n, 44);
  assert_int_equal(r.n, 44);
  for (uint32_t i = 0; i < n; i++)
    assert_int_equal(r.order[i], want[i]);
  assert_int_equal(wheel_count(&w), 0);
}

static void test_past_deadlines(void **state)
{
  (void)state;
  static wheel_t w;
  item_t it[5];
  init_items(it, 5);
  wheel_init(&w, 1000);
  rec_t r = {.w = &w};
  wheel_link(&w, &it[0].e, 5);
  wheel_link(&w, &it[1].e, 0);
  wheel_link(&w, &it[2].e, 999);
  wheel_link(&w, &it[3].e, 1000);
  wheel_link(&w, &it[4].e, 5);
  check_valid(&w);
  /* all clamped to the wheel's time, in link order */
  for (int i = 0; i < 5; i++)
    assert_int_equal(wheel_entry_at(&it[i].e), 1000);
  assert_int_equal(wheel_next_wake(&w), 1000);
  /* A caller clock behind the wheel's: nothing is due at that time. */
  assert_int_equal(run(&r, 5, SIZE_MAX), 0);
  assert_int_equal(run(&r, 1000, 2), 2);
  /* linked behind the three still due, although its deadline is earlier */
  wheel_link(&w, &it[0].e, 1);
  assert_int_equal(run(&r, 1000, SIZE_MAX), 4);
  uint32_t want[6] = {0, 1, 2, 3, 4, 0};
  assert_int_equal(r.n, 6);
  assert_memory_equal(r.order, want, sizeof want);
}

static void test_max_per_run(void **state)
{
  (void)state;
  static wheel_t w;
  item_t it[10];
  init_items(it, 10);
  wheel_init(&w, 0);
  rec_t r = {.w = &w};
  for (uint32_t i = 0; i < 10; i++)
    wheel_link(&w, &it[i].e, 100 + (i % 3)); /* 100,101,102,100,... */
  assert_int_equal(run(&r, 1000, 0), 0);     /* advances only */
  assert_int_equal(wheel_count(&w), 10);
  assert_int_equal(wheel_next_wake(&w), 100);
  assert_int_equal(run(&r, 1000, 3), 3);
  assert_int_equal(run(&r, 1000, 3), 3);
  assert_int_equal(run(&r, 1000, 3), 3);
  assert_int_equal(run(&r, 1000, 3), 1);
  assert_int_equal(run(&r, 1000, 3), 0);
  uint32_t want[10] = {0, 3, 6, 9, 1, 4, 7, 2, 5, 8};
  assert_memory_equal(r.order, want, sizeof want);
}

static void relink_self_now(void *arg, item_t *fired)
{
  rec_t *r = arg;
  wheel_link(r->w, &fired->e, r->now); /* due, but not in this pass */
  wheel_link(r->w, &r->items[9].e, r->now - 50);
  check_valid(r->w);
  /* the rest of the batch (id 2 at 100) is still due: next wake says so */
  assert_int_equal(wheel_next_wake(r->w), 100);
  check_valid(r->w);
}

static void test_relink_during_fire(void **state)
{
  (void)state;
  static wheel_t w;
  item_t it[10];
  init_items(it, 10);
  wheel_init(&w, 0);
  rec_t r = {.w = &w, .trigger_id = 1, .action = relink_self_now, .items = it};
  wheel_link(&w, &it[1].e, 100);
  wheel_link(&w, &it[2].e, 100);
  wheel_link(&w, &it[3].e, 900);
  assert_int_equal(run(&r, 500, SIZE_MAX), 2);
  assert_int_equal(r.order[0], 1);
  assert_int_equal(r.order[1], 2);
  assert_true(wheel_is_linked(&it[1].e));
  assert_int_equal(wheel_next_wake(&w), 500); /* both clamped to 500 */
  assert_int_equal(wheel_entry_at(&it[9].e), 500);
  r.action = NULL;
  assert_int_equal(run(&r, 500, SIZE_MAX), 2);
  assert_int_equal(r.order[2], 1); /* link order */
  assert_int_equal(r.order[3], 9);
  assert_int_equal(wheel_count(&w), 1);
}

static void unlink_other(void *arg, item_t *fired)
{
  rec_t *r = arg;
  (void)fired;
  wheel_unlink(&r->items[2].e);         /* due in this batch: must not fire */
  wheel_link(r->w, &r->items[3].e, 10); /* also in the batch: moved out */
  wheel_unlink(&r->items[4].e);         /* in a slot */
  check_valid(r->w);
}

static void test_unlink_during_fire(void **state)
{
  (void)state;
  static wheel_t w;
  item_t it[6];
  init_items(it, 6);
  wheel_init(&w, 0);
  rec_t r = {.w = &w, .trigger_id = 1, .action = unlink_other, .items = it};
  wheel_link(&w, &it[1].e, 100);
  wheel_link(&w, &it[2].e, 100);
  wheel_link(&w, &it[3].e, 150);
  wheel_link(&w, &it[5].e, 200);
  wheel_link(&w, &it[4].e, 5000);
  assert_int_equal(run(&r, 300, SIZE_MAX), 2);
  assert_int_equal(r.order[0], 1);
  assert_int_equal(r.order[1], 5);
  assert_false(wheel_is_linked(&it[2].e));
  assert_false(wheel_is_linked(&it[4].e));
  assert_int_equal(wheel_count(&w), 1);
  assert_int_equal(run(&r, 300, SIZE_MAX), 1);
  assert_int_equal(r.order[2], 3);
}

static void test_far_future(void **state)
{
  (void)state;
  static wheel_t w;
  item_t it[6];
  init_items(it, 6);
  const uint64_t now = 1700000000000ULL; /* 2023 in epoch ms */
  const uint64_t year = 366ULL * 86400 * 1000;
  wheel_init(&w, now);
  rec_t r = {.w = &w};
  wheel_link(&w, &it[0].e, UINT64_MAX);
  wheel_link(&w, &it[1].e, UINT64_MAX - 1);
  wheel_link(&w, &it[2].e, now + 10 * year);
  wheel_link(&w, &it[3].e, now + 3 * year + 7);
  wheel_link(&w, &it[4].e, UINT64_MAX);
  wheel_link(&w, &it[5].e, (UINT64_C(1) << 63) + 1);
  check_valid(&w);
  assert_true(wheel_next_wake(&w) <= now + 3 * year + 7);
  assert_int_equal(settled_wake(&r), now + 3 * year + 7);
  assert_int_equal(run(&r, now + year, SIZE_MAX), 0);
  assert_int_equal(run(&r, now + 3 * year + 6, SIZE_MAX), 0);
  assert_int_equal(run(&r, now + 3 * year + 7, SIZE_MAX), 1);
  assert_int_equal(settled_wake(&r), now + 10 * year);
  assert_int_equal(run(&r, UINT64_MAX - 2, SIZE_MAX), 2);
  assert_int_equal(settled_wake(&r), UINT64_MAX - 1);
  assert_int_equal(run(&r, UINT64_MAX, SIZE_MAX), 3);
  uint32_t want[6] = {3, 2, 5, 1, 0, 4};
  assert_memory_equal(r.order, want, sizeof want);
  /* at the end of time, everything is in the past */
  wheel_link(&w, &it[0].e, 0);
  assert_int_equal(run(&r, UINT64_MAX, SIZE_MAX), 1);
}

static void test_two_wheels(void **state)
{
  (void)state;
  static wheel_t a, b;
  item_t it[1];
  init_items(it, 1);
  wheel_init(&a, 0);
  wheel_init(&b, 0);
  wheel_link(&a, &it[0].e, 70000);
  wheel_link(&b, &it[0].e, 80000); /* moves across wheels */
  assert_int_equal(wheel_count(&a), 0);
  assert_int_equal(wheel_count(&b), 1);
  check_valid(&a);
  check_valid(&b);
  wheel_unlink(&it[0].e);
  check_valid(&b);
}

static void test_validate_and_dump(void **state)
{
  (void)state;
  static wheel_t w;
  item_t it[3];
  init_items(it, 3);
  wheel_init(&w, 0);
  wheel_link(&w, &it[0].e, 10);
  wheel_link(&w, &it[1].e, 100000);
  wheel_link(&w, &it[2].e, 0);
  assert_int_equal(wheel_validate(&w, NULL), 0);

  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  wheel_dump(&w, f);
  fclose(f);
  assert_non_null(strstr(text, "count=3"));
  assert_non_null(strstr(text, "L0[10]: 10"));
  assert_non_null(strstr(text, "100000"));
  assert_non_null(strstr(text, "ready: 0"));
  free(text);

  const char *why = NULL;
  w.occupied[5] |= 1; /* a bit without entries */
  assert_int_equal(wheel_validate(&w, &why), -1);
  assert_non_null(why);
  w.occupied[5] &= ~UINT64_C(1);
  w.count++;
  assert_int_equal(wheel_validate(&w, &why), -1);
  assert_string_equal(why, "count disagrees with the lists");
  w.count--;
  it[0].e.at = 11; /* now in the wrong slot */
  assert_int_equal(wheel_validate(&w, &why), -1);
  assert_string_equal(why, "entry is in the wrong slot");
  it[0].e.at = 10;
  it[2].e.at = 5; /* a due entry after the cursor */
  assert_int_equal(wheel_validate(&w, &why), -1);
  it[2].e.at = 0;
  wheel_t *other = (wheel_t *)&it; /* any wrong pointer */
  it[1].e.wheel = other;
  assert_int_equal(wheel_validate(&w, &why), -1);
  assert_string_equal(why, "entry's wheel pointer is wrong");
  it[1].e.wheel = &w;
  wheel_link_t *saved = it[1].e.link.prev;
  it[1].e.link.prev = NULL;
  assert_int_equal(wheel_validate(&w, &why), -1);
  assert_string_equal(why, "broken list links");
  it[1].e.link.prev = saved;
  assert_int_equal(wheel_validate(&w, &why), 0);
  assert_null(why);
}

/* ---- randomized comparison with a reference model ---- */

typedef struct {
  uint64_t at, seq;
  uint32_t id;
} node_t;

typedef struct {
  wheel_t w;
  item_t *items;
  uint32_t n;
  /* model */
  uint8_t *linked;
  uint64_t *at, *seq;
  uint64_t next_seq;
  size_t count;
  node_t *heap;
  size_t heap_n, heap_cap;
  node_t *pending; /* links made during a pass */
  size_t pending_n, pending_cap;
  node_t *batch;
  size_t batch_n, batch_cap, batch_pos;
  int in_pass;
  uint64_t now;
  uint64_t cursor; /* the wheel's time: latest now given to init/run */
  uint64_t rng;
  size_t fired_total;
  /* work accounting: operations made and the bound they allow */
  uint64_t links, unlinks, runs, wakes;
} sim_t;

static int node_less(const node_t *a, const node_t *b)
{
  return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void push_node(node_t **arr, size_t *n, size_t *cap, node_t v)
{
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 64;
    *arr = xrealloc(*arr, *cap * sizeof **arr);
  }
  (*arr)[(*n)++] = v;
}

static void heap_push(sim_t *s, node_t v)
{
  push_node(&s->heap, &s->heap_n, &s->heap_cap, v);
  size_t i = s->heap_n - 1;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!node_less(&s->heap[i], &s->heap[p]))
      break;
    node_t t = s->heap[i];
    s->heap[i] = s->heap[p];
    s->heap[p] = t;
    i = p;
  }
}

static void heap_sift_down(sim_t *s, size_t i)
{
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < s->heap_n && node_less(&s->heap[l], &s->heap[m]))
      m = l;
    if (l + 1 < s->heap_n && node_less(&s->heap[l + 1], &s->heap[m]))
      m = l + 1;
    if (m == i)
      return;
    node_t t = s->heap[i];
    s->heap[i] = s->heap[m];
    s->heap[m] = t;
    i = m;
  }
}

static void heap_pop(sim_t *s)
{
  s->heap[0] = s->heap[--s->heap_n];
  heap_sift_down(s, 0);
}

static int node_valid(const sim_t *s, const node_t *v)
{
  return s->linked[v->id] && s->seq[v->id] == v->seq;
}

/* Drops stale nodes from the top; returns the top or NULL. */
static const node_t *heap_top(sim_t *s)
{
  while (s->heap_n > 0 && !node_valid(s, &s->heap[0]))
    heap_pop(s);
  return s->heap_n ? &s->heap[0] : NULL;
}

static void heap_compact(sim_t *s)
{
  size_t k = 0;
  for (size_t i = 0; i < s->heap_n; i++)
    if (node_valid(s, &s->heap[i]))
      s->heap[k++] = s->heap[i];
  s->heap_n = k;
  for (size_t i = k / 2 + 1; i-- > 0;)
    heap_sift_down(s, i);
}

static uint64_t model_next_wake(sim_t *s)
{
  uint64_t min = UINT64_MAX;
  const node_t *t = heap_top(s);
  if (t)
    min = t->at;
  for (size_t i = 0; i < s->pending_n; i++)
    if (node_valid(s, &s->pending[i]) && s->pending[i].at < min)
      min = s->pending[i].at;
  for (size_t i = s->batch_pos; i < s->batch_n; i++)
    if (node_valid(s, &s->batch[i]) && s->batch[i].at < min)
      min = s->batch[i].at;
  return min;
}

static uint64_t rand_deadline(sim_t *s)
{
  uint64_t r = rng_next(&s->rng);
  unsigned kind = r & 15;
  uint64_t bits = (r >> 4) % 42; /* up to ~70 years */
  uint64_t delta = rng_next(&s->rng) & ((UINT64_C(1) << bits) - 1);
  if (kind == 0)
    return s->now;
  if (kind <= 2)
    return s->now > delta ? s->now - delta : 0;
  if (kind == 3)
    return s->now + (delta & 63); /* cluster: many equal deadlines */
  return s->now + delta;
}

/* The most list steps one link may cost from link to fire: its own link,
 * at most WHEEL_LEVELS - 1 cascade moves and as many slot visits, a level-0
 * slot visit, being taken for firing and unlinked when fired. */
#define STEPS_PER_LINK (2 * WHEEL_LEVELS + 2)

/* The work bound: every operation so far within its allowance. */
static void check_steps(const sim_t *s)
{
  uint64_t allowed = STEPS_PER_LINK * s->links + s->unlinks;
  assert_true(wheel_steps(&s->w) <= allowed);
}

/* next_wake is never later than the model's earliest (clamped) deadline;
 * when something is due it is exact; otherwise it is the deadline itself or
 * the start of an outer slot that contains it (a cascade-only wake-up). */
static void check_wake(sim_t *s)
{
  uint64_t steps = wheel_steps(&s->w);
  uint64_t wake = wheel_next_wake(&s->w), m = model_next_wake(s);
  s->wakes++;
  assert_int_equal(wheel_steps(&s->w), steps); /* no list work at all */
  if (m == UINT64_MAX || m <= s->cursor) {
    assert_int_equal(wake, m);
    return;
  }
  assert_true(wake > s->cursor && wake <= m);
  if (wake == m)
    return;
  int slot_start = 0;
  for (unsigned l = 1; l < WHEEL_LEVELS && !slot_start; l++) {
    unsigned sh = l * WHEEL_BITS;
    uint64_t low = sh >= 64 ? UINT64_MAX : (UINT64_C(1) << sh) - 1;
    slot_start = (wake & low) == 0 && (wake | low) >= m;
  }
  assert_true(slot_start);
}

static void sim_link(sim_t *s, uint32_t id, uint64_t at)
{
  if (!s->linked[id])
    s->count++;
  else
    s->unlinks++; /* a re-link unlinks first */
  s->links++;
  if (at <= s->cursor)
    at = s->cursor; /* clamped: due now, behind what is already due */
  s->linked[id] = 1;
  s->at[id] = at;
  s->seq[id] = s->next_seq++;
  node_t v = {at, s->seq[id], id};
  if (s->in_pass)
    push_node(&s->pending, &s->pending_n, &s->pending_cap, v);
  else
    heap_push(s, v);
  uint64_t steps = wheel_steps(&s->w);
  wheel_link(&s->w, &s->items[id].e, at);
  assert_true(wheel_steps(&s->w) - steps <= 2); /* O(1) */
}

static void sim_unlink(sim_t *s, uint32_t id)
{
  if (s->linked[id]) {
    s->count--;
    s->unlinks++;
  }
  s->linked[id] = 0;
  uint64_t steps = wheel_steps(&s->w);
  wheel_unlink(&s->items[id].e);
  assert_true(wheel_steps(&s->w) - steps <= 1); /* O(1) */
}

static void sim_fire(void *arg, wheel_entry_t *e)
{
  sim_t *s = arg;
  item_t *it = container_of(e, item_t, e);
  while (s->batch_pos < s->batch_n && !node_valid(s, &s->batch[s->batch_pos]))
    s->batch_pos++;
  assert_true(s->batch_pos < s->batch_n);
  assert_int_equal(it->id, s->batch[s->batch_pos].id);
  assert_int_equal(e->at, s->at[it->id]);
  assert_true(e->at <= s->now);
  assert_false(wheel_is_linked(e));
  s->batch_pos++;
  s->linked[it->id] = 0;
  s->count--;
  s->fired_total++;

  uint64_t r = rng_next(&s->rng);
  if ((r & 7) == 0)
    sim_link(s, it->id, rand_deadline(s));
  if (((r >> 3) & 7) == 0)
    sim_unlink(s, (uint32_t)((r >> 8) % s->n));
  if (((r >> 6) & 7) == 0)
    sim_link(s, (uint32_t)((r >> 24) % s->n), rand_deadline(s));
  if (((r >> 40) & 15) == 0)
    check_wake(s);
}

static void sim_run(sim_t *s, size_t max)
{
  /* Model: the batch is the first `max` linked entries due now in
   * (deadline, seq) order, fixed before any callback runs. */
  s->batch_n = s->batch_pos = 0;
  while (s->batch_n < max) {
    const node_t *t = heap_top(s);
    if (!t || t->at > s->now)
      break;
    push_node(&s->batch, &s->batch_n, &s->batch_cap, *t);
    heap_pop(s);
  }
  s->in_pass = 1;
  s->runs++;
  if (s->now > s->cursor)
    s->cursor = s->now;
  size_t fired = wheel_run(&s->w, s->now, max, sim_fire, s);
  s->in_pass = 0;
  while (s->batch_pos < s->batch_n && !node_valid(s, &s->batch[s->batch_pos]))
    s->batch_pos++;
  assert_int_equal(s->batch_pos, s->batch_n);
  assert_true(fired <= max);
  for (size_t i = 0; i < s->pending_n; i++)
    heap_push(s, s->pending[i]);
  s->pending_n = 0;
}

/* Drains the wheel the way the service does, running at each wake-up:
 * nothing is lost, and a wake-up that fires nothing (a cascade) is followed
 * by a firing one within WHEEL_LEVELS - 1 more. */
static void drain_at_wakes(sim_t *s)
{
  unsigned idle = 0;
  while (s->count) {
    uint64_t wake = wheel_next_wake(&s->w);
    assert_true(wake != UINT64_MAX);
    if (wake > s->now)
      s->now = wake;
    size_t before = s->fired_total;
    sim_run(s, SIZE_MAX);
    idle = s->fired_total == before ? idle + 1 : 0;
    assert_true(idle < WHEEL_LEVELS);
  }
}

static void simulate(uint64_t seed, uint32_t n, size_t ops, size_t validate_every)
{
  sim_t *s = xcalloc(1, sizeof *s);
  s->rng = seed;
  s->n = n;
  s->items = xcalloc(n, sizeof *s->items);
  init_items(s->items, n);
  s->linked = xcalloc(n, 1);
  s->at = xcalloc(n, sizeof *s->at);
  s->seq = xcalloc(n, sizeof *s->seq);
  s->now = 1700000000000ULL + (rng_next(&s->rng) % 1000000);
  s->cursor = s->now;
  wheel_init(&s->w, s->now);

  for (size_t op = 0; op < ops; op++) {
    uint64_t r = rng_next(&s->rng);
    uint32_t id = (uint32_t)((r >> 8) % n);
    switch (r & 15) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
    case 5: sim_link(s, id, rand_deadline(s)); break;
    case 6:
    case 7: sim_unlink(s, id); break;
    default: {
      /* advance: mostly small steps, sometimes hours, rarely years */
      uint64_t r2 = rng_next(&s->rng);
      unsigned bits = (r2 & 63) == 0 ? 40 : (r2 & 7) == 0 ? 24 : 12;
      uint64_t step = (r2 >> 8) & ((UINT64_C(1) << ((r2 >> 6) % bits)) - 1);
      if ((r & 0xf0) == 0)
        step = 0; /* same time again */
      s->now += step;
      size_t max = (r >> 40) % 3 == 0 ? SIZE_MAX : 1 + (r >> 44) % 8;
      sim_run(s, max);
      break;
    }
    }
    assert_int_equal(wheel_count(&s->w), s->count);
    if ((op & 7) == 0)
      check_wake(s);
    check_steps(s);
    if (validate_every && op % validate_every == 0)
      check_valid(&s->w);
    if (s->heap_n > 4 * (size_t)n + 1024)
      heap_compact(s);
  }
  /* Drain at the wake-ups for a while, then all at once: nothing is lost. */
  check_valid(&s->w);
  drain_at_wakes(s);
  check_steps(s);
  check_valid(&s->w);
  for (uint32_t id = 0; id < n; id += 3)
    sim_link(s, id, rand_deadline(s));
  s->now = UINT64_MAX;
  sim_run(s, SIZE_MAX);
  while (s->count) /* callbacks may have linked more */
    sim_run(s, SIZE_MAX);
  assert_int_equal(wheel_count(&s->w), 0);
  assert_int_equal(wheel_next_wake(&s->w), UINT64_MAX);
  check_valid(&s->w);
  assert_true(s->fired_total > ops / 20);

  free(s->items);
  free(s->linked);
  free(s->at);
  free(s->seq);
  free(s->heap);
  free(s->pending);
  free(s->batch);
  free(s);
}

static void test_random_small(void **state)
{
  (void)state;
  simulate(1, 16, 200000, 1);
  simulate(2, 64, 200000, 1);
}

static void test_random_large(void **state)
{
  (void)state;
  simulate(3, 20000, 1500000, 50000);
  simulate(4, 1000, 500000, 5000);
}

/* ---- work bounds in list steps, for the orders that hurt ---- */

static size_t noop_fired;

static void noop_fire(void *arg, wheel_entry_t *e)
{
  (void)arg;
  (void)e;
  noop_fired++;
}

/* A bulk import: a million links in random deadline order over 200 000 s,
 * wheel_next_wake after every link (as the service re-arms its timer) and a
 * run whenever the clock, advancing 1 ms per 100 links, reaches the wake-up.
 * Then the whole population fires at the wake-ups. Every link and the whole
 * drain stay within the per-link allowance. */
static void test_steps_import(void **state)
{
  (void)state;
  static wheel_t w;
  const size_t n = 1000000;
  const uint64_t t0 = 1700000000000ULL, span = 200000ULL * 1000;
  item_t *it = xcalloc(n, sizeof *it);
  uint64_t rng = 17, now = t0, wake = UINT64_MAX;
  wheel_init(&w, now);
  for (size_t i = 0; i < n; i++) {
    uint64_t before = wheel_steps(&w);
    wheel_link(&w, &it[i].e, t0 + 1 + rng_next(&rng) % span);
    assert_true(wheel_steps(&w) - before <= 1);
    before = wheel_steps(&w);
    wake = wheel_next_wake(&w);
    assert_int_equal(wheel_steps(&w), before);
    if (i % 100 == 99 && wake <= ++now)
      wheel_run(&w, now, SIZE_MAX, noop_fire, NULL);
    if ((i & 0xffff) == 0)
      assert_true(wheel_steps(&w) <= STEPS_PER_LINK * (i + 1));
  }
  check_valid(&w);
  size_t runs = 0;
  while ((wake = wheel_next_wake(&w)) != UINT64_MAX) {
    wheel_run(&w, wake, SIZE_MAX, noop_fire, NULL);
    runs++;
  }
  assert_int_equal(noop_fired, n);
  assert_true(wheel_steps(&w) <= STEPS_PER_LINK * n);
  print_message("import: %.2f list steps per entry from link to fire (bound %d), %zu runs\n",
                (double)wheel_steps(&w) / (double)n, STEPS_PER_LINK, runs);
  free(it);
  noop_fired = 0;
}

/* A backlog: half a million entries are due while the caller fires one per
 * run (its queue is full); meanwhile entries are linked into the past and
 * the future in random order with wheel_next_wake between every call. A past
 * link must not walk the backlog. */
static void test_steps_backlog(void **state)
{
  (void)state;
  static wheel_t w;
  const size_t n = 500000, extra = 200000;
  item_t *it = xcalloc(n + extra, sizeof *it);
  uint64_t rng = 23, now = 1000000;
  wheel_init(&w, 0);
  for (size_t i = 0; i < n; i++)
    wheel_link(&w, &it[i].e, 1 + rng_next(&rng) % now);
  assert_int_equal(wheel_run(&w, now, 1, noop_fire, NULL), 1); /* all due now */
  uint64_t links = n, unlinks = 0;
  for (size_t i = n; i < n + extra; i++) {
    uint64_t r = rng_next(&rng), before = wheel_steps(&w);
    uint64_t at = (r & 1) ? r % now : now + 1 + (r >> 8) % 100000; /* past or future */
    wheel_link(&w, &it[i].e, at);
    links++;
    assert_true(wheel_steps(&w) - before <= 1);
    if ((r & 0x70) == 0) {
      before = wheel_steps(&w);
      wheel_unlink(&it[(r >> 20) % i].e);
      unlinks++;
      assert_true(wheel_steps(&w) - before <= 1);
    }
    before = wheel_steps(&w);
    assert_true(wheel_next_wake(&w) <= now);
    assert_int_equal(wheel_steps(&w), before);
    before = wheel_steps(&w);
    wheel_run(&w, now, 1, noop_fire, NULL);
    /* one taken, one unlinked: the backlog costs nothing per run */
    assert_true(wheel_steps(&w) - before <= 2);
  }
  check_valid(&w);
  uint64_t wake;
  while ((wake = wheel_next_wake(&w)) != UINT64_MAX)
    wheel_run(&w, wake > now ? wake : now, SIZE_MAX, noop_fire, NULL);
  assert_int_equal(wheel_count(&w), 0);
  assert_true(wheel_steps(&w) <= STEPS_PER_LINK * links + unlinks);
  print_message("backlog: %.2f list steps per link (bound %d)\n",
                (double)wheel_steps(&w) / (double)links, STEPS_PER_LINK);
  free(it);
  noop_fired = 0;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sizes),
    cmocka_unit_test(test_basic),
    cmocka_unit_test(test_fifo_across_cascades),
    cmocka_unit_test(test_past_deadlines),
    cmocka_unit_test(test_max_per_run),
    cmocka_unit_test(test_relink_during_fire),
    cmocka_unit_test(test_unlink_during_fire),
    cmocka_unit_test(test_far_future),
    cmocka_unit_test(test_two_wheels),
    cmocka_unit_test(test_validate_and_dump),
    cmocka_unit_test(test_random_small),
    cmocka_unit_test(test_random_large),
    cmocka_unit_test(test_steps_import),
    cmocka_unit_test(test_steps_backlog),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
