/*
 * Prometheus metrics registry; see metrics.h.
 *
 * Series live in an open-addressing hash table (linear probing, power-of-two
 * size, grown at 70% load) keyed by FNV-1a of name and labels; each series
 * also hangs off its family in creation order so rendering is stable. An
 * update hashes two short strings and compares them once: no allocation
 * after a series exists. Families are few and looked up linearly, which only
 * happens when a series is created or help is declared.
 */
#include "base/metrics.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"

#define MAX_BUCKETS 64

typedef struct series series_t;

typedef struct family {
  char *name;
  char *help;
  metric_type_t type;
  double *bounds;
  size_t nb;
  series_t *head, *tail;
  struct family *next;
} family_t;

struct series {
  family_t *fam;
  char *labels; /* "" when none */
  uint64_t hash;
  double value;
  double (*fn)(void *);
  void *arg;
  double sum;
  uint64_t count;
  uint64_t *buckets; /* per-bucket (not cumulative) counts, nb of them */
  series_t *next;    /* in family order */
};

static family_t *families, *families_tail;
static series_t **table;
static size_t table_cap, table_n;

static uint64_t hash_of(const char *name, const char *labels)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 0x100000001b3ULL;
  h = (h ^ 0xFF) * 0x100000001b3ULL; /* separator: never in a name */
  for (const unsigned char *p = (const unsigned char *)labels; *p; p++)
    h = (h ^ *p) * 0x100000001b3ULL;
  return h;
}

static int valid_name(const char *s)
{
  if (s == NULL || *s == '\0')
    return 0;
  for (const char *p = s; *p; p++) {
    char c = *p;
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(p != s && c >= '0' && c <= '9'))
      return 0;
  }
  return 1;
}

static family_t *family_find(const char *name)
{
  for (family_t *f = families; f; f = f->next)
    if (strcmp(f->name, name) == 0)
      return f;
  return NULL;
}

static family_t *family_new(const char *name, metric_type_t type)
{
  family_t *f = xcalloc(1, sizeof *f);
  f->name = xstrdup(name);
  f->type = type;
  if (families_tail)
    families_tail->next = f;
  else
    families = f;
  families_tail = f;
  return f;
}

static series_t *lookup(const char *name, const char *labels, uint64_t h)
{
  if (table_cap == 0)
    return NULL;
  for (size_t i = h & (table_cap - 1);; i = (i + 1) & (table_cap - 1)) {
    series_t *s = table[i];
    if (s == NULL)
      return NULL;
    if (s->hash == h && strcmp(s->fam->name, name) == 0 && strcmp(s->labels, labels) == 0)
      return s;
  }
}

static void table_put(series_t *s)
{
  size_t i = s->hash & (table_cap - 1);
  while (table[i] != NULL)
    i = (i + 1) & (table_cap - 1);
  table[i] = s;
}

static void table_grow(void)
{
  series_t **old = table;
  size_t old_cap = table_cap;
  table_cap = table_cap ? table_cap * 2 : 64;
  table = xcalloc(table_cap, sizeof *table);
  for (size_t i = 0; i < old_cap; i++)
    if (old[i])
      table_put(old[i]);
  free(old);
}

/* Finds or creates the series; NULL when the family has another type, the
 * name is invalid, or a histogram was not defined. */
static series_t *get(const char *name, const char *labels, metric_type_t type)
{
  if (name == NULL)
    return NULL;
  if (labels == NULL)
    labels = "";
  uint64_t h = hash_of(name, labels);
  series_t *s = lookup(name, labels, h);
  if (s != NULL)
    return s->fam->type == type ? s : NULL;
  family_t *f = family_find(name);
  if (f == NULL) {
    if (type == METRIC_HISTOGRAM || !valid_name(name))
      return NULL;
    f = family_new(name, type);
  } else if (f->type != type) {
    return NULL;
  }
  if ((table_n + 1) * 10 > table_cap * 7)
    table_grow();
  s = xcalloc(1, sizeof *s);
  s->fam = f;
  s->labels = xstrdup(labels);
  s->hash = h;
  if (type == METRIC_HISTOGRAM)
    s->buckets = xcalloc(f->nb, sizeof *s->buckets);
  if (f->tail)
    f->tail->next = s;
  else
    f->head = s;
  f->tail = s;
  table_put(s);
  table_n++;
  return s;
}

int metrics_help(const char *name, const char *help, metric_type_t type)
{
  if (!valid_name(name) || type < METRIC_COUNTER || type > METRIC_HISTOGRAM)
    return GRANTD_EINVALID;
  family_t *f = family_find(name);
  if (f != NULL && f->type != type)
    return GRANTD_EINVALID;
  if (f == NULL) {
    /* A histogram needs bounds: only metrics_histogram_define creates one. */
    if (type == METRIC_HISTOGRAM)
      return GRANTD_EINVALID;
    f = family_new(name, type);
  }
  if (help != NULL) {
    free(f->help);
    f->help = xstrdup(help);
  }
  return 0;
}

void metrics_counter_add(const char *name, const char *labels, double v)
{
  if (!(v >= 0))
    return;
  series_t *s = get(name, labels, METRIC_COUNTER);
  if (s)
    s->value += v;
}

void metrics_counter_inc(const char *name, const char *labels)
{
  metrics_counter_add(name, labels, 1);
}

void metrics_gauge_set(const char *name, const char *labels, double v)
{
  series_t *s = get(name, labels, METRIC_GAUGE);
  if (s) {
    s->fn = NULL;
    s->value = v;
  }
}

void metrics_gauge_add(const char *name, const char *labels, double delta)
{
  series_t *s = get(name, labels, METRIC_GAUGE);
  if (s && s->fn == NULL)
    s->value += delta;
}

void metrics_gauge_fn(const char *name, const char *labels, double (*fn)(void *arg), void *arg)
{
  series_t *s = get(name, labels, METRIC_GAUGE);
  if (s) {
    s->fn = fn;
    s->arg = arg;
  }
}

int metrics_histogram_define(const char *name, const char *help, const double *bounds, size_t n)
{
  if (!valid_name(name) || bounds == NULL || n == 0 || n > MAX_BUCKETS)
    return GRANTD_EINVALID;
  for (size_t i = 0; i < n; i++) {
    if (!(bounds[i] > -1e308 && bounds[i] < 1e308))
      return GRANTD_EINVALID; /* NaN or infinite */
    if (i > 0 && !(bounds[i] > bounds[i - 1]))
      return GRANTD_EINVALID;
  }
  family_t *f = family_find(name);
  if (f != NULL) {
    if (f->type != METRIC_HISTOGRAM || f->nb != n ||
        memcmp(f->bounds, bounds, n * sizeof *bounds) != 0)
      return GRANTD_EINVALID;
  } else {
    f = family_new(name, METRIC_HISTOGRAM);
    f->bounds = xmemdup(bounds, n * sizeof *bounds);
    f->nb = n;
  }
  if (help != NULL) {
    free(f->help);
    f->help = xstrdup(help);
  }
  return 0;
}

void metrics_histogram_observe(const char *name, const char *labels, double v)
{
  series_t *s = get(name, labels, METRIC_HISTOGRAM);
  if (s == NULL || v != v)
    return;
  size_t i = 0;
  /* Few buckets (typically ~10): a linear scan beats a binary search. */
  while (i < s->fam->nb && v > s->fam->bounds[i])
    i++;
  if (i < s->fam->nb)
    s->buckets[i]++;
  s->sum += v;
  s->count++;
}

double metrics_get(const char *name, const char *labels)
{
  if (name == NULL)
    return 0;
  if (labels == NULL)
    labels = "";
  series_t *s = lookup(name, labels, hash_of(name, labels));
  if (s == NULL)
    return 0;
  if (s->fam->type == METRIC_HISTOGRAM)
    return (double)s->count;
  return s->fn ? s->fn(s->arg) : s->value;
}

/* Writes a sample value: integers exactly, others in the shortest %g form
 * that reads back to the same double. */
static void put_num(buf_t *out, double v)
{
  char tmp[40];
  if (v != v) {
    buf_puts(out, "NaN");
  } else if (v > 1.7976931348623157e308) {
    buf_puts(out, "+Inf");
  } else if (v < -1.7976931348623157e308) {
    buf_puts(out, "-Inf");
  } else if (v > -9e15 && v < 9e15 && (double)(int64_t)v == v) {
    buf_printf(out, "%lld", (long long)v);
  } else {
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v)
      snprintf(tmp, sizeof tmp, "%.17g", v);
    buf_puts(out, tmp);
  }
}

static void put_help(buf_t *out, const char *s)
{
  for (; *s; s++) {
    if (*s == '\\')
      buf_puts(out, "\\\\");
    else if (*s == '\n')
      buf_puts(out, "\\n");
    else
      buf_putc(out, *s);
  }
}

void metrics_label_escape(buf_t *out, const char *s)
{
  for (; s && *s; s++) {
    if (*s == '\\')
      buf_puts(out, "\\\\");
    else if (*s == '"')
      buf_puts(out, "\\\"");
    else if (*s == '\n')
      buf_puts(out, "\\n");
    else
      buf_putc(out, *s);
  }
}

static void put_bucket(buf_t *out, const series_t *s, const char *le, uint64_t cum)
{
  buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", s->fam->name, s->labels, *s->labels ? "," : "",
             le, (unsigned long long)cum);
}

static const char *type_name(metric_type_t t)
{
  return t == METRIC_COUNTER ? "counter" : t == METRIC_GAUGE ? "gauge" : "histogram";
}

void metrics_render(buf_t *out)
{
  for (const family_t *f = families; f; f = f->next) {
    if (f->help) {
      buf_printf(out, "# HELP %s ", f->name);
      put_help(out, f->help);
      buf_putc(out, '\n');
    }
    buf_printf(out, "# TYPE %s %s\n", f->name, type_name(f->type));
    for (const series_t *s = f->head; s; s = s->next) {
      const char *lo = *s->labels ? "{" : "", *lc = *s->labels ? "}" : "";
      if (f->type != METRIC_HISTOGRAM) {
        buf_printf(out, "%s%s%s%s ", f->name, lo, s->labels, lc);
        put_num(out, s->fn ? s->fn(s->arg) : s->value);
        buf_putc(out, '\n');
        continue;
      }
      uint64_t cum = 0;
      for (size_t i = 0; i < f->nb; i++) {
        buf_t le = BUF_INIT;
        cum += s->buckets[i];
        put_num(&le, f->bounds[i]);
        put_bucket(out, s, le.data, cum);
        buf_free(&le);
      }
      put_bucket(out, s, "+Inf", s->count);
      buf_printf(out, "%s_sum%s%s%s ", f->name, lo, s->labels, lc);
      put_num(out, s->sum);
      buf_printf(out, "\n%s_count%s%s%s %llu\n", f->name, lo, s->labels, lc,
                 (unsigned long long)s->count);
    }
  }
}

void metrics_reset(void)
{
  family_t *f = families;
  while (f) {
    family_t *fn = f->next;
    series_t *s = f->head;
    while (s) {
      series_t *sn = s->next;
      free(s->labels);
      free(s->buckets);
      free(s);
      s = sn;
    }
    free(f->name);
    free(f->help);
    free(f->bounds);
    free(f);
    f = fn;
  }
  families = families_tail = NULL;
  free(table);
  table = NULL;
  table_cap = table_n = 0;
}
