/* Unit tests for model/lists: pushes (whole and counted), deep copies,
 * frees back to empty, the name-table lookup. The records' copies and
 * frees are covered with the codecs in tests/unit/store/test_record.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "model/lists.h"

static void test_strlist(void **state)
{
  (void)state;
  strlist_t l = {0}, c;
  strlist_push(&l, "read");
  strlist_push_n(&l, "write,admin", 5); /* not NUL-terminated at 5 */
  strlist_push_n(&l, "", 0);
  assert_int_equal(l.n, 3);
  assert_string_equal(l.items[0], "read");
  assert_string_equal(l.items[1], "write");
  assert_string_equal(l.items[2], "");
  strlist_copy(&c, &l);
  assert_int_equal(c.n, 3);
  for (size_t i = 0; i < c.n; i++) {
    assert_ptr_not_equal(c.items[i], l.items[i]);
    assert_string_equal(c.items[i], l.items[i]);
  }
  strlist_free(&l);
  assert_null(l.items);
  assert_int_equal(l.n, 0);
  assert_string_equal(c.items[1], "write"); /* the copy owns its strings */
  strlist_free(&c);
  strlist_t empty = {0}, e2;
  strlist_copy(&e2, &empty);
  assert_null(e2.items);
  assert_int_equal(e2.n, 0);
  strlist_free(&empty);
}

static void test_kvlist(void **state)
{
  (void)state;
  kvlist_t l = {0}, c;
  kvlist_push(&l, "prompt", "consent");
  kvlist_push(&l, "access_type", "offline");
  kvlist_push(&l, "prompt", "login"); /* the first wins on lookup */
  assert_string_equal(kvlist_get(&l, "prompt"), "consent");
  assert_string_equal(kvlist_get(&l, "access_type"), "offline");
  assert_null(kvlist_get(&l, "PROMPT"));
  kvlist_copy(&c, &l);
  kvlist_free(&l);
  assert_int_equal(l.n, 0);
  assert_int_equal(c.n, 3);
  assert_string_equal(kvlist_get(&c, "access_type"), "offline");
  assert_string_equal(c.items[2].value, "login");
  kvlist_free(&c);
}

static void test_names_find(void **state)
{
  (void)state;
  static const char *const names[] = {"basic", "post"};
  assert_int_equal(names_find(names, 2, "basic"), 0);
  assert_int_equal(names_find(names, 2, "post"), 1);
  assert_int_equal(names_find(names, 2, "Post"), -1);
  assert_int_equal(names_find(names, 2, ""), -1);
  assert_int_equal(names_find(names, 2, NULL), -1);
  assert_int_equal(names_find(names, 0, "basic"), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_strlist),
    cmocka_unit_test(test_kvlist),
    cmocka_unit_test(test_names_find),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
