/*
 * schedule.h - the refresh schedule (schedule.c): the wheel timer, planned
 * refresh times of index entries, start-up ramp-in.
 */
#ifndef GRANTD_SERVICE_SCHEDULE_H
#define GRANTD_SERVICE_SCHEDULE_H

#include "service/ctx.h"

/* Whether a connection of this status and grant gets proactive refreshes
 * (active, refresh_failing) or, a pending device_code flow, its polls. */
bool svc__schedulable(int status, int grant);

/* Schedules e's refresh at `at` (wall ms; 0 = unschedule; also
 * unscheduled when e's status is not schedulable) and re-arms the wheel
 * timer if needed. Also sets e->next_refresh_at. */
void svc__schedule(svc_t *svc, conn_entry_t *e, int64_t at);

/* Re-arms the wheel timer at wheel_next_wake (nothing while draining,
 * closing or throttled). Also svc->on_room. */
void svc__arm(svc_t *svc);

/* Links n overdue entries at start-up, most overdue first, spread over
 * n / opts.ramp_per_s seconds from now (next_refresh_at is kept as the
 * planned time; overdue is reordered in place). */
void svc__ramp(svc_t *svc, conn_entry_t **overdue, size_t n, int64_t now);

#endif
