/*
 * lifecycle.h - outstanding-work accounting and the end of svc_close
 * (lifecycle.c). Bottom of the service: includes only ctx.h.
 */
#ifndef GRANTD_SERVICE_LIFECYCLE_H
#define GRANTD_SERVICE_LIFECYCLE_H

#include "service/ctx.h"

/* Count outstanding asynchronous work that is not an op or token request
 * (e.g. a discovery fetch, a revocation sequence, a state commit); close
 * waits until every begin has its end. */
void svc__work_begin(svc_t *svc);
void svc__work_end(svc_t *svc);

/* Called whenever an op, request, answer or work item ends: once the
 * service is closing and nothing is outstanding, closes its handles; the
 * last handle's close freezes the metrics and runs svc->close_cb. */
void svc__maybe_closed(svc_t *svc);

/* Defines the service's metrics; the gauges read svc until close. */
void svc__metrics_setup(svc_t *svc);
/* Connects the store's connection events to the service (events_wait.c):
 * the data object of every change, and the wake-up of feed waiters.
 * Teardown (the last handle closed) wakes every waiter and leaves the
 * store recording events without the service. */
void svc__events_setup(svc_t *svc);
void svc__events_teardown(svc_t *svc);
/* Wakes every feed waiter (draining: long-polls answer at once, so they
 * do not hold the HTTP server's shutdown). */
void svc__events_wake_all(svc_t *svc);

#endif
