/* Unit test: which connections the reaper deletes (reaper_due). */
#include "support.h"

#include <string.h>

#include "service/reaper.h"

static conn_t at(conn_status_t st, int64_t created, int64_t updated, int64_t err_at)
{
  conn_t c;
  memset(&c, 0, sizeof c);
  c.status = st;
  c.created_at = created;
  c.updated_at = updated;
  c.last_error_at = err_at;
  return c;
}

static void test_statuses(void **state)
{
  (void)state;
  const int64_t now = 10000000, age = 1000;
  static const struct {
    conn_status_t st;
    bool due;
  } cases[] = {
    {CONN_PENDING, true}, {CONN_NEEDS_REAUTH, true}, {CONN_ERROR, true},
    {CONN_ACTIVE, false}, {CONN_REVOKED, false},     {CONN_REFRESH_FAILING, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    conn_t c = at(cases[i].st, 1, 1, 0);
    if (reaper_due(&c, now, age, NULL) != cases[i].due)
      fail_msg("status %s: due should be %d", conn_status_name(cases[i].st), cases[i].due);
  }
}

static void test_age(void **state)
{
  (void)state;
  const int64_t now = 10000000, age = 1000;
  int64_t since = -1;
  conn_t c = at(CONN_PENDING, now - 1000, 0, 0);
  assert_true(reaper_due(&c, now, age, &since)); /* exactly the age: due */
  assert_int_equal(since, now - 1000);
  c = at(CONN_PENDING, now - 999, 0, 0);
  assert_false(reaper_due(&c, now, age, NULL));
  /* The latest of created, updated and last error counts. */
  c = at(CONN_NEEDS_REAUTH, 1, now - 10, 0);
  assert_false(reaper_due(&c, now, age, &since));
  assert_int_equal(since, now - 10);
  c = at(CONN_ERROR, 1, 2, now - 5);
  assert_false(reaper_due(&c, now, age, &since));
  assert_int_equal(since, now - 5);
  c = at(CONN_ERROR, 1, 2, 3);
  assert_true(reaper_due(&c, now, age, NULL));
  /* Age 0 (off) never reaps. */
  assert_false(reaper_due(&c, now, 0, NULL));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_statuses),
    cmocka_unit_test(test_age),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
