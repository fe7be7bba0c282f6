/*
 * device.h - the device authorization grant (RFC 8628) as ops (device.c):
 * the device authorization request a device_code put runs, and the polls
 * of the token endpoint that follow on the wheel.
 */
#ifndef GRANTD_SERVICE_DEVICE_H
#define GRANTD_SERVICE_DEVICE_H

#include "service/ctx.h"

/* Whether op (SENDING, record loaded) is a step of a device flow: the put
 * of a device_code connection (SVC_OP_GRANT), or a scheduled poll of a
 * pending one that still has its device code. */
bool svc__device_step(const svc_op_t *op);

/* Builds the request of such a step into *req (refresh.c's start
 * function). A poll of an expired device code sends nothing: the flow
 * ends needs_reauth ("expired_token") at once.
 * @return 0 = send req; 1 = the op was finished here; else the error of
 *         building the request (the caller ends the op as a
 *         configuration error). */
int svc__device_start(svc_t *svc, svc_op_t *op, oauth_request_t *req, int64_t now);

/* The result of such a step (refresh.c's done function, op not
 * ORPHANED): commits the next record, or, for authorization_pending,
 * just reschedules the poll at the interval (nothing written: an idle
 * flow costs a wheel entry and one request per interval). */
void svc__device_done(svc_t *svc, svc_op_t *op, svc_tresult_t *r);

#endif
