/* Unit tests for base/heap: order against a sorted reference, removal from
 * the middle, ties, growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "base/heap.h"

typedef struct {
  uint64_t key;
  size_t hidx;
  int in;
} item_t;

static bool item_less(const void *a, const void *b)
{
  return ((const item_t *)a)->key < ((const item_t *)b)->key;
}

static uint64_t rng(uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Pops everything, checking the keys come out in order and the index
 * slots always name the element's position. */
static size_t drain(heap_t *h)
{
  size_t n = 0;
  uint64_t last = 0;
  while (heap_top(h)) {
    for (size_t i = 0; i < h->n; i++)
      assert_int_equal(((item_t *)h->items[i])->hidx, i);
    item_t *t = heap_top(h);
    assert_true(t->key >= last);
    last = t->key;
    heap_remove(h, t);
    t->in = 0;
    n++;
  }
  return n;
}

static void test_order_and_remove(void **state)
{
  (void)state;
  enum { N = 2000 };
  static item_t it[N];
  uint64_t seed = 88172645463325252ULL;
  heap_t h;
  heap_init(&h, item_less, offsetof(item_t, hidx));
  assert_null(heap_top(&h));
  for (size_t i = 0; i < N; i++) {
    it[i].key = rng(&seed) % 500; /* many ties */
    heap_push(&h, &it[i]);
    it[i].in = 1;
  }
  assert_int_equal(h.n, N);
  /* remove a third from the middle, by position in the array */
  size_t removed = 0;
  for (size_t i = 0; i < N; i += 3) {
    heap_remove(&h, &it[i]);
    it[i].in = 0;
    removed++;
  }
  assert_int_equal(h.n, N - removed);
  uint64_t min = UINT64_MAX;
  for (size_t i = 0; i < N; i++)
    if (it[i].in && it[i].key < min)
      min = it[i].key;
  assert_int_equal(((item_t *)heap_top(&h))->key, min);
  assert_int_equal(drain(&h), N - removed);
  heap_free(&h);
  assert_int_equal(h.n, 0);
}

static void test_reserve_and_reuse(void **state)
{
  (void)state;
  item_t a = {.key = 3}, b = {.key = 1}, c = {.key = 2};
  heap_t h;
  heap_init(&h, item_less, offsetof(item_t, hidx));
  heap_reserve(&h, 2);
  heap_push(&h, &a);
  heap_push(&h, &b);
  heap_push(&h, &c); /* grows past the reservation */
  assert_ptr_equal(heap_top(&h), &b);
  heap_remove(&h, &b);
  assert_ptr_equal(heap_top(&h), &c);
  heap_push(&h, &b);
  assert_ptr_equal(heap_top(&h), &b);
  assert_int_equal(drain(&h), 3);
  heap_free(&h);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_order_and_remove),
    cmocka_unit_test(test_reserve_and_reuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
