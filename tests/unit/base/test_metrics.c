/* Unit tests for base/metrics: exact exposition text for counters, gauges,
 * gauge callbacks and histograms, type conflicts and reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/metrics.h"

static int teardown(void **state)
{
  (void)state;
  metrics_reset();
  return 0;
}

static void expect_render(const char *want)
{
  buf_t b = BUF_INIT;
  metrics_render(&b);
  assert_string_equal(buf_cstr(&b), want);
  buf_free(&b);
}

static void test_counters_gauges(void **state)
{
  (void)state;
  assert_int_equal(
    metrics_help("grantd_requests_total", "HTTP requests\nby route\\status", METRIC_COUNTER), 0);
  metrics_counter_inc("grantd_requests_total", "route=\"/v1/x\",status=\"200\"");
  metrics_counter_add("grantd_requests_total", "route=\"/v1/x\",status=\"200\"", 2);
  metrics_counter_inc("grantd_requests_total", "route=\"/v1/y\",status=\"404\"");
  metrics_counter_add("grantd_requests_total", "route=\"/v1/y\",status=\"404\"", -5); /* ignored */
  metrics_counter_add("grantd_requests_total", NULL, 0.25);
  metrics_gauge_set("grantd_connections", "status=\"active\"", 10);
  metrics_gauge_add("grantd_connections", "status=\"active\"", -3);
  metrics_gauge_set("grantd_connections", "", 1e20);
  metrics_gauge_set("grantd_ratio", NULL, 0.1);
  expect_render("# HELP grantd_requests_total HTTP requests\\nby route\\\\status\n"
                "# TYPE grantd_requests_total counter\n"
                "grantd_requests_total{route=\"/v1/x\",status=\"200\"} 3\n"
                "grantd_requests_total{route=\"/v1/y\",status=\"404\"} 1\n"
                "grantd_requests_total 0.25\n"
                "# TYPE grantd_connections gauge\n"
                "grantd_connections{status=\"active\"} 7\n"
                "grantd_connections 1e+20\n"
                "# TYPE grantd_ratio gauge\n"
                "grantd_ratio 0.1\n");
  assert_true(metrics_get("grantd_requests_total", "route=\"/v1/x\",status=\"200\"") == 3);
  assert_true(metrics_get("grantd_connections", "status=\"active\"") == 7);
  assert_true(metrics_get("grantd_connections", "nope=\"1\"") == 0);
  assert_true(metrics_get("nope", NULL) == 0);
  assert_true(metrics_get(NULL, NULL) == 0);
}

static void test_conflicts(void **state)
{
  (void)state;
  metrics_counter_inc("c_total", NULL);
  metrics_gauge_set("c_total", NULL, 100);      /* wrong type: ignored */
  metrics_gauge_set("c_total", "a=\"1\"", 100); /* new series, wrong type */
  assert_int_equal(metrics_help("c_total", "x", METRIC_GAUGE), GRANTD_EINVALID);
  assert_int_equal(metrics_help("c_total", "help", METRIC_COUNTER), 0);
  assert_int_equal(metrics_help("bad name", "x", METRIC_COUNTER), GRANTD_EINVALID);
  assert_int_equal(metrics_help("9lives", "x", METRIC_COUNTER), GRANTD_EINVALID);
  assert_int_equal(metrics_help("", "x", METRIC_COUNTER), GRANTD_EINVALID);
  assert_int_equal(metrics_help(NULL, "x", METRIC_COUNTER), GRANTD_EINVALID);
  assert_int_equal(metrics_help("h", "x", METRIC_HISTOGRAM), GRANTD_EINVALID);
  assert_int_equal(metrics_help("x", "x", (metric_type_t)0), GRANTD_EINVALID);
  metrics_counter_inc("bad-name", NULL); /* ignored */
  metrics_counter_inc(NULL, NULL);
  metrics_histogram_observe("undefined_ms", NULL, 1); /* ignored */
  expect_render("# HELP c_total help\n"
                "# TYPE c_total counter\n"
                "c_total 1\n");
}

static void test_histogram(void **state)
{
  (void)state;
  static const double bounds[] = {5, 10, 50.5};
  assert_int_equal(metrics_histogram_define("grantd_token_ms", "Token latency", bounds, 3), 0);
  /* Same definition again is fine; different bounds are not. */
  assert_int_equal(metrics_histogram_define("grantd_token_ms", NULL, bounds, 3), 0);
  assert_int_equal(metrics_histogram_define("grantd_token_ms", NULL, bounds, 2), GRANTD_EINVALID);
  static const double unsorted[] = {5, 5};
  assert_int_equal(metrics_histogram_define("h2", NULL, unsorted, 2), GRANTD_EINVALID);
  static const double inf[] = {1, 1.0 / 0.0};
  assert_int_equal(metrics_histogram_define("h3", NULL, inf, 2), GRANTD_EINVALID);
  assert_int_equal(metrics_histogram_define("h4", NULL, bounds, 0), GRANTD_EINVALID);
  assert_int_equal(metrics_histogram_define("h5", NULL, NULL, 1), GRANTD_EINVALID);
  metrics_counter_inc("cnt_total", NULL);
  assert_int_equal(metrics_histogram_define("cnt_total", NULL, bounds, 3), GRANTD_EINVALID);

  const char *l = "host=\"a.test\"";
  metrics_histogram_observe("grantd_token_ms", l, 1);
  metrics_histogram_observe("grantd_token_ms", l, 5); /* le is inclusive */
  metrics_histogram_observe("grantd_token_ms", l, 7.5);
  metrics_histogram_observe("grantd_token_ms", l, 1000);      /* +Inf only */
  metrics_histogram_observe("grantd_token_ms", l, 0.0 / 0.0); /* ignored */
  metrics_histogram_observe("grantd_token_ms", NULL, 20);
  metrics_counter_inc("grantd_token_ms", l); /* wrong type: ignored */
  assert_true(metrics_get("grantd_token_ms", l) == 4);
  expect_render("# HELP grantd_token_ms Token latency\n"
                "# TYPE grantd_token_ms histogram\n"
                "grantd_token_ms_bucket{host=\"a.test\",le=\"5\"} 2\n"
                "grantd_token_ms_bucket{host=\"a.test\",le=\"10\"} 3\n"
                "grantd_token_ms_bucket{host=\"a.test\",le=\"50.5\"} 3\n"
                "grantd_token_ms_bucket{host=\"a.test\",le=\"+Inf\"} 4\n"
                "grantd_token_ms_sum{host=\"a.test\"} 1013.5\n"
                "grantd_token_ms_count{host=\"a.test\"} 4\n"
                "grantd_token_ms_bucket{le=\"5\"} 0\n"
                "grantd_token_ms_bucket{le=\"10\"} 0\n"
                "grantd_token_ms_bucket{le=\"50.5\"} 1\n"
                "grantd_token_ms_bucket{le=\"+Inf\"} 1\n"
                "grantd_token_ms_sum 20\n"
                "grantd_token_ms_count 1\n"
                "# TYPE cnt_total counter\n"
                "cnt_total 1\n");
}

static double fn_value(void *arg)
{
  return *(double *)arg;
}

static void test_gauge_fn(void **state)
{
  (void)state;
  double v = 3;
  metrics_gauge_fn("grantd_store_bytes", NULL, fn_value, &v);
  expect_render("# TYPE grantd_store_bytes gauge\ngrantd_store_bytes 3\n");
  v = 4.5;
  expect_render("# TYPE grantd_store_bytes gauge\ngrantd_store_bytes 4.5\n");
  assert_true(metrics_get("grantd_store_bytes", NULL) == 4.5);
  metrics_gauge_add("grantd_store_bytes", NULL, 100); /* ignored while fn */
  metrics_gauge_set("grantd_store_bytes", NULL, 1);   /* replaces fn */
  v = 99;
  expect_render("# TYPE grantd_store_bytes gauge\ngrantd_store_bytes 1\n");
}

static void test_many_series(void **state)
{
  (void)state;
  char labels[64];
  for (int i = 0; i < 1000; i++) {
    snprintf(labels, sizeof labels, "id=\"%d\"", i);
    metrics_counter_add("many_total", labels, i);
  }
  for (int i = 0; i < 1000; i++) {
    snprintf(labels, sizeof labels, "id=\"%d\"", i);
    metrics_counter_inc("many_total", labels);
    assert_true(metrics_get("many_total", labels) == i + 1);
  }
  buf_t b = BUF_INIT;
  metrics_render(&b);
  assert_non_null(strstr(buf_cstr(&b), "many_total{id=\"999\"} 1000\n"));
  buf_free(&b);
  metrics_reset();
  expect_render("");
  metrics_reset(); /* idempotent */
  /* Usable again after a reset. */
  metrics_counter_inc("many_total", NULL);
  expect_render("# TYPE many_total counter\nmany_total 1\n");
}

static void test_label_escape(void **state)
{
  (void)state;
  buf_t b = BUF_INIT;
  buf_puts(&b, "route=\"");
  metrics_label_escape(&b, "a\"b\\c\nd");
  buf_putc(&b, '"');
  assert_string_equal(buf_cstr(&b), "route=\"a\\\"b\\\\c\\nd\"");
  metrics_label_escape(&b, NULL);
  buf_free(&b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(test_counters_gauges, teardown),
    cmocka_unit_test_teardown(test_conflicts, teardown),
    cmocka_unit_test_teardown(test_histogram, teardown),
    cmocka_unit_test_teardown(test_gauge_fn, teardown),
    cmocka_unit_test_teardown(test_many_series, teardown),
    cmocka_unit_test_teardown(test_label_escape, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
