/*
 * state_sweep.h - the expired-state sweep (state_sweep.c). Includes only
 * ctx.h.
 */
#ifndef GRANTD_SERVICE_STATE_SWEEP_H
#define GRANTD_SERVICE_STATE_SWEEP_H

#include "service/ctx.h"

/* Starts the periodic sweep on svc->sweep_timer (initialised by svc_open,
 * closed with the service's other handles): every
 * opts.state_sweep_interval_ms one step. */
void svc__sweep_start(svc_t *svc);

/* One step: deletes the expired states among the next
 * opts.state_sweep_max ones, from where the previous step stopped
 * (svc->sweep_cursor). Does nothing while draining or closing. */
void svc__sweep_step(svc_t *svc);

#endif
