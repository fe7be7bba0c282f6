/*
 * events_wait.c - the service's hook on the store's connection events:
 * setting the data callback (events.c) and waking the feed's long-polls
 * (svc.h, "event feed waiters") when a batch with events commits.
 */
#include "service/events.h"
#include "service/lifecycle.h"

static void unlink_w(svc_ev_wait_t *w)
{
  if (w->pprev == NULL)
    return;
  *w->pprev = w->next;
  if (w->next)
    w->next->pprev = w->pprev;
  w->next = NULL;
  w->pprev = NULL;
}

static void wake(svc_t *svc, uint64_t last, bool all)
{
  /* Unlink the woken ones first: a callback may start another wait. */
  svc_ev_wait_t *ready = NULL;
  for (svc_ev_wait_t *w = svc->ev_waiters, *nx; w; w = nx) {
    nx = w->next;
    if (all || w->after < last) {
      unlink_w(w);
      w->next = ready;
      ready = w;
    }
  }
  while (ready) {
    svc_ev_wait_t *w = ready;
    ready = w->next;
    w->next = NULL;
    w->cb(w->arg);
  }
}

static void on_committed(void *arg, uint64_t last_seq)
{
  svc_t *svc = arg;
  wake(svc, last_seq, false);
  if (svc->on_events)
    svc->on_events(svc);
}

void svc__events_setup(svc_t *svc)
{
  store_set_events(svc->store, svc_events_data, on_committed, svc);
}

void svc__events_teardown(svc_t *svc)
{
  store_set_events(svc->store, svc_events_data, NULL, NULL);
  wake(svc, 0, true);
}

void svc__events_wake_all(svc_t *svc)
{
  wake(svc, 0, true);
}

int svc_events_wait(svc_t *svc, svc_ev_wait_t *w, uint64_t after, void (*cb)(void *arg), void *arg)
{
  uint64_t first, last;
  store_events_bounds(svc->store, &first, &last);
  if (last > after || svc->closing || svc->draining)
    return 1;
  w->after = after;
  w->cb = cb;
  w->arg = arg;
  w->next = svc->ev_waiters;
  if (w->next)
    w->next->pprev = &w->next;
  w->pprev = &svc->ev_waiters;
  svc->ev_waiters = w;
  return 0;
}

void svc_events_unwait(svc_ev_wait_t *w)
{
  unlink_w(w);
}

int svc_events_read(svc_t *svc, uint64_t after, size_t limit, store_event_t **out, size_t *n)
{
  return store_events_read(svc->store, after, limit, out, n);
}

void svc_events_bounds(const svc_t *svc, uint64_t *first, uint64_t *last)
{
  store_events_bounds(svc->store, first, last);
}

uv_loop_t *svc_loop(const svc_t *svc)
{
  return svc->loop;
}
