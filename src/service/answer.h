/*
 * answer.h - deferred answers and what a token read gets (answer.c).
 */
#ifndef GRANTD_SERVICE_ANSWER_H
#define GRANTD_SERVICE_ANSWER_H

#include "service/ctx.h"

/* Queues cb(arg, err, c) to run from the next loop iteration (a uv_idle
 * handle drains one shared queue, in order). c may be NULL; it is copied.
 * cb NULL: nothing. */
void svc__answer(svc_t *svc, svc_conn_cb cb, void *arg, int err, const conn_t *c);
/* Same, taking ownership of *c (moved; *c is zeroed; freed when cb is
 * NULL). */
void svc__answer_move(svc_t *svc, svc_conn_cb cb, void *arg, int err, conn_t *c);

/* The answer a token read gets for a record at time now: 0 when the
 * status serves tokens and the access token has not expired; else
 * GRANTD_EREAUTH (needs_reauth, revoked), GRANTD_EPROVIDER_CONFIG (error),
 * GRANTD_ECONFLICT (pending), GRANTD_EUPSTREAM (expired or missing). */
int svc__token_verdict(const conn_t *c, int64_t now);

#endif
