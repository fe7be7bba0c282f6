/* Unit tests for base/rand: ranges, token shape and uniqueness, the fast
 * generator's determinism. Statistical checks are loose enough never to
 * flake (bounds many standard deviations wide). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/b64.h"
#include "base/rand.h"

static void test_bytes(void **state)
{
  (void)state;
  unsigned char a[64] = {0}, b[64] = {0};
  rand_bytes(a, sizeof a);
  rand_bytes(b, sizeof b);
  assert_memory_not_equal(a, b, sizeof a);
  rand_bytes(a, 0); /* no-op */
  /* A large request spans several getrandom calls' worth on old kernels. */
  size_t big = 1 << 20;
  unsigned char *p = calloc(1, big);
  rand_bytes(p, big);
  size_t zeros = 0;
  for (size_t i = 0; i < big; i++)
    zeros += p[i] == 0;
  assert_true(zeros > big / 256 / 2 && zeros < big / 256 * 2);
  free(p);
}

static int cmp12(const void *a, const void *b)
{
  return memcmp(a, b, 12);
}

/* Nonces from the per-thread buffer: all distinct over many refills, byte
 * values balanced, and sizes the buffer does not serve (0, large) work. */
static void test_nonce(void **state)
{
  (void)state;
  enum { N = 20000 };
  unsigned char(*v)[12] = calloc(N, 12);
  for (size_t i = 0; i < N; i++)
    rand_nonce(v[i], 12);
  qsort(v, N, 12, cmp12);
  for (size_t i = 1; i < N; i++)
    assert_true(memcmp(v[i - 1], v[i], 12) != 0);
  size_t zeros = 0;
  for (size_t i = 0; i < N * 12; i++)
    zeros += ((unsigned char *)v)[i] == 0;
  assert_true(zeros > N * 12 / 256 / 2 && zeros < N * 12 / 256 * 2);
  free(v);
  unsigned char big[1024] = {0}, z[1024] = {0};
  rand_nonce(big, sizeof big);
  assert_memory_not_equal(big, z, sizeof big);
  rand_nonce(big, 0);
}

static void test_range(void **state)
{
  (void)state;
  assert_int_equal(rand_range(0), 0);
  assert_int_equal(rand_range(1), 0);
  int seen[10] = {0};
  for (int i = 0; i < 10000; i++) {
    uint64_t v = rand_range(10);
    assert_true(v < 10);
    seen[v]++;
  }
  for (int i = 0; i < 10; i++)
    assert_true(seen[i] > 700 && seen[i] < 1300);
  uint64_t n = (UINT64_MAX / 3) * 2 + 1; /* the worst case for rejection */
  for (int i = 0; i < 1000; i++)
    assert_true(rand_range(n) < n);
  for (int i = 0; i < 1000; i++)
    assert_true(rand_range(UINT64_MAX) < UINT64_MAX);
  assert_true(rand_u64() != rand_u64() || rand_u64() != rand_u64());
}

static void test_token(void **state)
{
  (void)state;
  enum { N = 200 };
  char *toks[N];
  for (int i = 0; i < N; i++) {
    buf_t b = BUF_INIT;
    rand_token(&b, 32);
    assert_int_equal(b.len, 43);
    assert_int_equal(b.len, b64url_encoded_len(32));
    for (size_t k = 0; k < b.len; k++) {
      char c = b.data[k];
      assert_true((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_');
    }
    buf_t d = BUF_INIT;
    assert_int_equal(b64url_decode(&d, b.data, b.len), 0);
    assert_int_equal(d.len, 32);
    buf_free(&d);
    toks[i] = buf_steal(&b);
  }
  for (int i = 0; i < N; i++)
    for (int j = i + 1; j < N; j++)
      assert_string_not_equal(toks[i], toks[j]);
  for (int i = 0; i < N; i++)
    free(toks[i]);
  /* Other sizes, including the heap path and appending. */
  buf_t b = BUF_INIT;
  buf_puts(&b, "x.");
  rand_token(&b, 100);
  assert_int_equal(b.len, 2 + b64url_encoded_len(100));
  buf_reset(&b);
  rand_token(&b, 16);
  assert_int_equal(b.len, 22);
  buf_reset(&b);
  rand_token(&b, 0);
  assert_int_equal(b.len, 0);
  buf_free(&b);
}

static void test_fast(void **state)
{
  (void)state;
  uint64_t s1 = 12345, s2 = 12345, z = 0;
  for (int i = 0; i < 100; i++)
    assert_true(rand_fast_u64(&s1) == rand_fast_u64(&s2));
  assert_true(rand_fast_u64(&z) != rand_fast_u64(&z)); /* seed 0 works */
  uint64_t s = rand_u64();
  int seen[7] = {0};
  for (int i = 0; i < 7000; i++) {
    uint64_t v = rand_fast_range(&s, 7);
    assert_true(v < 7);
    seen[v]++;
  }
  for (int i = 0; i < 7; i++)
    assert_true(seen[i] > 700 && seen[i] < 1300);
  assert_int_equal(rand_fast_range(&s, 0), 0);
  assert_int_equal(rand_fast_range(&s, 1), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_bytes), cmocka_unit_test(test_nonce), cmocka_unit_test(test_range),
    cmocka_unit_test(test_token), cmocka_unit_test(test_fast),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
