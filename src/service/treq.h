/*
 * treq.h - the token-request scheduler (treq.c): global, per-host and
 * per-provider limits, deadline order, dispatch, shutdown. The request
 * type, svc_treq_t, and its callbacks are in ctx.h.
 */
#ifndef GRANTD_SERVICE_TREQ_H
#define GRANTD_SERVICE_TREQ_H

#include "service/ctx.h"

/* Queues t (see svc_treq_t); the done or start callback runs later (start
 * may run before this returns, when a slot is free). While the service is
 * draining or closing, done runs (later) with neterr GRANTD_ESHUTDOWN. */
void svc__treq_submit(svc_t *svc, svc_treq_t *t);
/* Withdraws a queued request: returns 1 and neither start nor done will
 * run; returns 0 when it is already sending (done will run) or idle. */
int svc__treq_cancel(svc_treq_t *t);

/* svc_drain / svc_close: every queued request ends with GRANTD_ESHUTDOWN
 * (later). */
void svc__treq_shutdown_all(svc_t *svc);
/* svc_drain: cancels every request in flight (their done callbacks run
 * before this returns): one that may have been sent ends with neterr
 * GRANTD_ECANCELLED and unknown set, one that was not with
 * GRANTD_ESHUTDOWN. */
void svc__treq_cancel_sending(svc_t *svc);

#endif
