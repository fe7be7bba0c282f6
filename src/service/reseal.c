/*
 * reseal.c - the re-seal job; see reseal.h.
 */
#include "service/reseal.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"

#define TICK_MS 50
#define TICKS_PER_S (1000 / TICK_MS)
/* Most records one tick (one loop turn) handles, whatever the rate: at
 * high rates the ticks come more often instead. */
#define MAX_PER_TICK 256
/* A tick is skipped while this many writes wait: the job's puts must not
 * crowd out the refreshes'. */
#define MAX_PENDING 4096
/* Passes run again for records deferred to their pending writes. */
#define MAX_EXTRA_PASSES 3

typedef enum { RESEAL_IDLE, RESEAL_RUNNING, RESEAL_CLOSED } reseal_state_t;

struct reseal {
  uv_timer_t timer;
  store_t *store;
  unsigned per_tick;
  uint64_t tick_ms;
  int extra_passes; /* of the current run */
  reseal_state_t state;
  store_reseal_t pass;
  store_census_t census;    /* latest full count */
  store_census_t published; /* ids whose gauges were set */
};

static void publish(reseal_t *r, const store_census_t *c)
{
  char labels[48];
  /* Ids no longer in use go to 0 rather than staying at their old value. */
  for (size_t i = 0; i < r->published.n; i++) {
    snprintf(labels, sizeof labels, "key_id=\"%u\"", r->published.id[i]);
    metrics_gauge_set("grantd_store_records_by_key_id", labels, 0);
  }
  for (size_t i = 0; i < c->n; i++) {
    snprintf(labels, sizeof labels, "key_id=\"%u\"", c->id[i]);
    metrics_gauge_set("grantd_store_records_by_key_id", labels, (double)c->records[i]);
  }
  r->census = *c;
  for (size_t i = 0; i < c->n && r->published.n < STORE_CENSUS_MAX_IDS; i++) {
    bool have = false;
    for (size_t j = 0; j < r->published.n; j++)
      have |= r->published.id[j] == c->id[i];
    if (!have)
      r->published.id[r->published.n++] = c->id[i];
  }
}

static void set_running(reseal_t *r, bool on)
{
  r->state = on ? RESEAL_RUNNING : RESEAL_IDLE;
  metrics_gauge_set("grantd_reseal_running", NULL, on ? 1 : 0);
}

static void on_tick(uv_timer_t *t)
{
  reseal_t *r = t->data;
  if (r->state != RESEAL_RUNNING || store_pending(r->store) > MAX_PENDING)
    return;
  uint64_t before = r->pass.resealed;
  int rc = store_reseal_step(r->store, &r->pass, r->per_tick);
  if (r->pass.resealed > before)
    metrics_counter_add("grantd_reseal_records_total", NULL, (double)(r->pass.resealed - before));
  if (rc == 0)
    return;
  if (rc != 1) {
    log_warn("reseal_step_failed", "error", err_name(rc));
    if (rc == GRANTD_ESHUTDOWN) {
      uv_timer_stop(&r->timer);
      set_running(r, false);
    }
    return; /* same position next tick */
  }
  /* Records left to a pending write were counted as old: another pass
   * (a few at most: such writes commit within milliseconds) sees them
   * committed. */
  if (r->pass.deferred > 0 && r->extra_passes < MAX_EXTRA_PASSES) {
    r->extra_passes++;
    uint64_t done = r->pass.resealed;
    store_reseal_reset(&r->pass);
    r->pass.resealed = done;
    return;
  }
  r->extra_passes = 0;
  publish(r, &r->pass.pass);
  if (r->pass.pass.old > 0)
    log_warn("reseal_incomplete", "#resealed", LOG_I64(r->pass.resealed), "#unreadable",
             LOG_I64(r->pass.unreadable), "#deferred", LOG_I64(r->pass.deferred), "#still_old",
             LOG_I64(r->pass.pass.old), "detail",
             "records remain on an older key: unreadable ones are logged as store_record_bad; "
             "deferred ones had writes pending through every pass (a reload or restart runs "
             "another)");
  else
    log_info("reseal_done", "#resealed", LOG_I64(r->pass.resealed), "#sealed_records",
             LOG_I64(r->pass.pass.sealed));
  store_reseal_reset(&r->pass);
  uv_timer_stop(&r->timer);
  set_running(r, false);
}

static void start_pass(reseal_t *r)
{
  store_reseal_reset(&r->pass);
  r->extra_passes = 0;
  set_running(r, true);
  uv_timer_start(&r->timer, on_tick, 0, r->tick_ms);
  log_info("reseal_started", "#old_records", LOG_I64(r->census.old), "#per_tick",
           LOG_I64(r->per_tick), "#tick_ms", LOG_I64(r->tick_ms));
}

reseal_t *reseal_new(const reseal_opts_t *o, const store_census_t *start)
{
  reseal_t *r = xcalloc(1, sizeof *r);
  r->store = o->store;
  unsigned ps = o->per_second ? o->per_second : 2000;
  r->per_tick = ps / TICKS_PER_S ? ps / TICKS_PER_S : 1;
  r->tick_ms = TICK_MS;
  if (r->per_tick > MAX_PER_TICK) {
    r->per_tick = MAX_PER_TICK;
    r->tick_ms = (uint64_t)MAX_PER_TICK * 1000 / ps;
    if (r->tick_ms == 0)
      r->tick_ms = 1;
  }
  uv_timer_init(o->loop, &r->timer);
  r->timer.data = r;
  metrics_help("grantd_store_records_by_key_id",
               "records using each master key id (start-up and each finished re-seal pass)",
               METRIC_GAUGE);
  metrics_help("grantd_reseal_records_total", "records re-sealed with the current master key",
               METRIC_COUNTER);
  metrics_help("grantd_reseal_running", "1 while a re-seal pass runs", METRIC_GAUGE);
  metrics_counter_add("grantd_reseal_records_total", NULL, 0);
  publish(r, start);
  set_running(r, false);
  if (start->old > 0)
    start_pass(r);
  return r;
}

void reseal_kick(reseal_t *r)
{
  if (r->state != RESEAL_CLOSED)
    start_pass(r);
}

const store_census_t *reseal_census(const reseal_t *r)
{
  return &r->census;
}

static void on_closed(uv_handle_t *h)
{
  reseal_t *r = h->data;
  store_reseal_reset(&r->pass);
  free(r);
}

void reseal_close(reseal_t *r)
{
  if (r == NULL || r->state == RESEAL_CLOSED)
    return;
  r->state = RESEAL_CLOSED;
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, on_closed);
}
