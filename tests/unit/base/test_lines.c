/*
 * Unit tests for the line splitter (src/base/lines.c): lines across
 * pieces, the last line without '\n', the length bound (reported once,
 * bytes dropped up to the '\n', in one piece or across many), and a
 * consumer that stops taking lines while more is fed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/buf.h"
#include "base/lines.h"

/* Takes every event into `out` as "L<line>|" or "T|". */
static void drain(lines_t *l, bool end, buf_t *out)
{
  const char *p;
  size_t n;
  lines_event_t e;
  while ((e = lines_next(l, end, &p, &n)) != LINES_NONE) {
    if (e == LINES_LINE) {
      buf_putc(out, 'L');
      buf_append(out, p, n);
      buf_putc(out, '|');
    } else {
      buf_puts(out, "T|");
    }
  }
}

/* Feeds `in` in pieces of `step` bytes, draining after each. */
static void split(const char *in, size_t step, size_t max_line, buf_t *out)
{
  lines_t l;
  lines_init(&l, max_line);
  size_t len = strlen(in);
  for (size_t i = 0; i < len; i += step) {
    lines_feed(&l, in + i, len - i < step ? len - i : step);
    drain(&l, false, out);
  }
  drain(&l, true, out);
  assert_int_equal(lines_held(&l), 0);
  lines_free(&l);
}

static void test_pieces(void **state)
{
  (void)state;
  static const char in[] = "one\ntwo\n\nthree\r\nlast";
  for (size_t step = 1; step <= sizeof in; step++) {
    buf_t out = BUF_INIT;
    split(in, step, 100, &out);
    assert_string_equal(buf_cstr(&out), "Lone|Ltwo|L|Lthree\r|Llast|");
    buf_free(&out);
  }
  buf_t out = BUF_INIT;
  split("a\n", 1, 100, &out);
  assert_string_equal(buf_cstr(&out), "La|"); /* no empty line after the last '\n' */
  buf_free(&out);
}

static void test_too_long(void **state)
{
  (void)state;
  static const char in[] = "12345\n123456\n1234567890123\nok\n123456";
  for (size_t step = 1; step <= sizeof in; step++) {
    buf_t out = BUF_INIT;
    split(in, step, 5, &out);
    assert_string_equal(buf_cstr(&out), "L12345|T|T|Lok|T|");
    buf_free(&out);
  }
}

static void test_bounded_hold(void **state)
{
  (void)state;
  /* An endless line is dropped as it arrives: nothing piles up. */
  lines_t l;
  lines_init(&l, 8);
  buf_t out = BUF_INIT;
  for (int i = 0; i < 1000; i++) {
    lines_feed(&l, "xxxxxxxxxxxxxxxx", 16);
    drain(&l, false, &out);
    assert_true(lines_held(&l) <= 16);
  }
  lines_feed(&l, "x\nnext\n", 7);
  drain(&l, true, &out);
  assert_string_equal(buf_cstr(&out), "T|Lnext|");
  lines_free(&l);
  buf_free(&out);
}

static void test_consumer_stops(void **state)
{
  (void)state;
  /* Taking one line per feed: the rest waits, in order. */
  lines_t l;
  lines_init(&l, 0); /* taken as 1 */
  buf_t out = BUF_INIT;
  const char *p;
  size_t n;
  lines_feed(&l, "a\nb\nc", 5);
  assert_int_equal(lines_next(&l, false, &p, &n), LINES_LINE);
  lines_feed(&l, "\nd\n", 3);
  drain(&l, true, &out);
  assert_string_equal(buf_cstr(&out), "Lb|Lc|Ld|");
  assert_int_equal(lines_next(&l, true, &p, &n), LINES_NONE);
  lines_free(&l);
  buf_free(&out);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pieces),
    cmocka_unit_test(test_too_long),
    cmocka_unit_test(test_bounded_hold),
    cmocka_unit_test(test_consumer_stops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
