/*
 * webhooks.h - the webhook delivery engine's hooks into the service
 * (webhooks.c; the public calls are svc_webhook_* in svc.h).
 */
#ifndef GRANTD_SERVICE_WEBHOOKS_H
#define GRANTD_SERVICE_WEBHOOKS_H

#include "service/ctx.h"

/* At svc_open: loads the endpoints and their progress (one store scan) and
 * starts delivering what is pending. @return 0 or a store error. */
int svc__wh_open(svc_t *svc);
/* A batch with events committed: read the new ones and send. */
void svc__wh_kick(svc_t *svc);
/* Drain: stop the retry timer, cancel requests in flight (their events are
 * sent again after a restart) and write every endpoint's progress. Progress
 * writes count as service work (svc__work_begin), so close waits for
 * them. */
void svc__wh_drain(svc_t *svc);
/* svc_free: frees the endpoints. */
void svc__wh_free(svc_t *svc);

#endif
