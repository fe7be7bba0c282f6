/*
 * metrics.h - a process-wide registry rendered as Prometheus text (0.0.4).
 *
 * A family is a metric name with a type (counter, gauge, histogram) and an
 * optional help text; a series is a family plus a label string written
 * verbatim between the braces, e.g. `route="/v1/x",status="200"` (NULL or ""
 * means no labels). Label values must already be escaped: use
 * metrics_label_escape() for anything not a compile-time constant.
 *
 * Series are found by a hash of name + labels in an open-addressing table;
 * the name and labels are copied on first use, so updating an existing
 * series allocates nothing. A family's type is fixed by its first use
 * (metrics_help, metrics_histogram_define or an update); an update of the
 * wrong type is ignored. Histogram observations need a prior
 * metrics_histogram_define() and are ignored otherwise.
 *
 * Not thread-safe: call from the loop thread only.
 */
#ifndef GRANTD_BASE_METRICS_H
#define GRANTD_BASE_METRICS_H

#include <stddef.h>

#include "base/buf.h"

typedef enum { METRIC_COUNTER = 1, METRIC_GAUGE = 2, METRIC_HISTOGRAM = 3 } metric_type_t;

/* Declares a family's help text and type (copied). Families render in the
 * order they were first seen. Idempotent.
 * @return 0, or GRANTD_EINVALID when the name is not a valid metric name or
 *         the family already has another type. */
int metrics_help(const char *name, const char *help, metric_type_t type);

/* Adds v (>= 0; negative values are ignored) to a counter series. */
void metrics_counter_add(const char *name, const char *labels, double v);
/* Adds 1 to a counter series. */
void metrics_counter_inc(const char *name, const char *labels);

/* Sets / adjusts a gauge series. */
void metrics_gauge_set(const char *name, const char *labels, double v);
void metrics_gauge_add(const char *name, const char *labels, double delta);

/* Registers a gauge series whose value is fn(arg), evaluated at each
 * metrics_render(); fn runs synchronously inside metrics_render() and must
 * stay valid (with arg) until metrics_reset(). Replaces any earlier value or
 * function of that series. */
void metrics_gauge_fn(const char *name, const char *labels, double (*fn)(void *arg), void *arg);

/* Defines a histogram family with bucket upper bounds (strictly increasing,
 * finite, 1..64 of them; "+Inf" is implicit). bounds are copied.
 * @return 0 (also when redefined with the same bounds), or GRANTD_EINVALID
 *         (bad name/bounds, or the family exists with another type or
 *         other bounds). */
int metrics_histogram_define(const char *name, const char *help, const double *bounds, size_t n);
/* Records one observation in a histogram series. */
void metrics_histogram_observe(const char *name, const char *labels, double v);

/* Current value of a counter or gauge series (the function's value for a
 * gauge_fn), or of a histogram series' count; 0 when the series is unknown.
 * For tests and /healthz. */
double metrics_get(const char *name, const char *labels);

/* Appends the exposition text: per family "# HELP" (if any) and "# TYPE"
 * once, then its series; histograms as cumulative name_bucket{...,le="b"},
 * name_bucket{...,le="+Inf"}, name_sum and name_count. */
void metrics_render(buf_t *out);

/* Appends s escaped for a label value (backslash, quote, newline). */
void metrics_label_escape(buf_t *out, const char *s);

/* Drops every family and series (tests, shutdown). */
void metrics_reset(void);

#endif
