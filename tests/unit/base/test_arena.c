/* Unit tests for base/arena: alignment, growth, big blocks, reset keeping
 * the first chunk, duplication helpers. ASan checks the bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/arena.h"

static void test_basic(void **state)
{
  (void)state;
  arena_t a;
  arena_init(&a);
  assert_null(a.first); /* lazy */
  assert_int_equal(arena_used(&a), 0);
  char *p = arena_alloc(&a, 1);
  char *q = arena_alloc(&a, 0);
  char *r = arena_alloc(&a, 17);
  assert_non_null(a.first);
  assert_true(((uintptr_t)p % ARENA_ALIGN) == 0);
  assert_true(((uintptr_t)q % ARENA_ALIGN) == 0);
  assert_true(((uintptr_t)r % ARENA_ALIGN) == 0);
  assert_true(p != q && q != r);
  memset(r, 'x', 17);
  assert_int_equal(arena_used(&a), 16 + 16 + 32);
  arena_free(&a);
  assert_null(a.first);
  arena_free(&a); /* idempotent */
}

static void test_growth_and_reset(void **state)
{
  (void)state;
  arena_t a = ARENA_INIT;
  char *ptrs[1000];
  for (int i = 0; i < 1000; i++) {
    ptrs[i] = arena_alloc(&a, 40);
    assert_true(((uintptr_t)ptrs[i] % ARENA_ALIGN) == 0);
    memset(ptrs[i], i & 0xff, 40);
  }
  for (int i = 0; i < 1000; i++)
    assert_int_equal((unsigned char)ptrs[i][39], i & 0xff);
  assert_non_null(a.extra);
  void *first = a.first;
  arena_reset(&a);
  assert_ptr_equal(a.first, first); /* first chunk kept */
  assert_null(a.extra);
  assert_int_equal(arena_used(&a), 0);
  /* Reuse starts at the beginning of the kept chunk. */
  char *p = arena_alloc(&a, 8);
  assert_ptr_equal(p, ptrs[0]);
  arena_reset(&a);
  arena_reset(&a);
  arena_free(&a);
  arena_t b = ARENA_INIT;
  arena_reset(&b); /* never used */
  arena_free(&b);
}

static void test_big_blocks(void **state)
{
  (void)state;
  arena_t a = ARENA_INIT;
  char *small = arena_alloc(&a, 100);
  char *big = arena_alloc(&a, 100000);
  assert_true(((uintptr_t)big % ARENA_ALIGN) == 0);
  memset(big, 1, 100000);
  /* The current chunk keeps filling after a big block. */
  char *small2 = arena_alloc(&a, 100);
  assert_ptr_equal(small2, small + 112);
  char *edge = arena_alloc(&a, ARENA_CHUNK / 4 + 1);
  memset(edge, 2, ARENA_CHUNK / 4 + 1);
  char *exact = arena_alloc(&a, ARENA_CHUNK / 4);
  memset(exact, 3, ARENA_CHUNK / 4);
  arena_free(&a);
}

static void test_dups(void **state)
{
  (void)state;
  arena_t a = ARENA_INIT;
  char *s = arena_strdup(&a, "hello");
  assert_string_equal(s, "hello");
  char *t = arena_strndup(&a, "hello world", 5);
  assert_string_equal(t, "hello");
  assert_null(arena_strdup(&a, NULL));
  assert_null(arena_strndup(&a, NULL, 3));
  assert_null(arena_memdup(&a, NULL, 3));
  unsigned char bin[3] = {0, 1, 2};
  unsigned char *m = arena_memdup(&a, bin, 3);
  assert_memory_equal(m, bin, 3);
  unsigned char *z = arena_calloc(&a, 64);
  for (int i = 0; i < 64; i++)
    assert_int_equal(z[i], 0);
  char *e = arena_strdup(&a, "");
  assert_string_equal(e, "");
  arena_free(&a);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_basic),
    cmocka_unit_test(test_growth_and_reset),
    cmocka_unit_test(test_big_blocks),
    cmocka_unit_test(test_dups),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
