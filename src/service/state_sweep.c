/*
 * state_sweep.c - deletes expired authorization states.
 *
 * A state is consumed by its callback; one whose user never came back
 * would otherwise stay in the store forever (a user abandoning the consent
 * page is common). Every opts.state_sweep_interval_ms (default 60 s) one
 * bounded step runs: store_state_sweep() looks at the next
 * opts.state_sweep_max (default 256) states in key order, from where the
 * previous step stopped, and queues the deletion of the expired ones, so a
 * step costs at most that many decodes on the loop however many states are
 * stored, and the whole database is walked round and round. States are
 * random strings, so each step sees a random sample of ages.
 *
 * Racing a callback is harmless: the callback consumes its state
 * atomically (store_state_consume) and checks expires_at itself; deleting
 * a state that was just consumed deletes nothing. The sweep never runs
 * while the service drains or closes.
 */
#include <stdlib.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/metrics.h"
#include "service/state_sweep.h"

void svc__sweep_step(svc_t *svc)
{
  if (svc->draining || svc->closing)
    return;
  char *next = NULL;
  size_t examined = 0, deleted = 0;
  int rc = store_state_sweep(svc->store, clock_now_ms(), svc->sweep_cursor,
                             (size_t)svc->opts.state_sweep_max, &next, &examined, &deleted);
  if (rc != 0) {
    log_warn("state_sweep_failed", "error", err_name(rc));
    return; /* same cursor next time */
  }
  free(svc->sweep_cursor);
  svc->sweep_cursor = next;
  if (deleted > 0) {
    metrics_counter_add("grantd_states_expired_deleted_total", NULL, (double)deleted);
    log_info("states_swept", "#examined", LOG_I64(examined), "#deleted", LOG_I64(deleted));
  }
}

static void on_sweep(uv_timer_t *t)
{
  svc__sweep_step(t->data);
}

void svc__sweep_start(svc_t *svc)
{
  metrics_help("grantd_states_expired_deleted_total",
               "expired authorization states deleted by the sweep", METRIC_COUNTER);
  uint64_t every = (uint64_t)svc->opts.state_sweep_interval_ms;
  uv_timer_start(&svc->sweep_timer, on_sweep, every, every);
  /* Not a reason to keep the loop alive by itself. */
  uv_unref((uv_handle_t *)&svc->sweep_timer);
}
