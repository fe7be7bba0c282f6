/*
 * reaper.h - deletes connections left broken or unfinished, off by default.
 *
 * A connection is due when its status is needs_reauth, error or pending
 * (a user who never finished the consent) and it has not changed for at
 * least the configured age: its "since" is the latest of created_at,
 * updated_at and last_error_at (no refresh runs in those statuses, so that
 * is when it entered the status or was last touched). active,
 * refresh_failing and revoked connections are never reaped.
 *
 * The server's reaper (--reap-after S; --reap-revoke asks the provider to
 * revoke first, RFC 7009, through svc_conn_delete; --reap-dry-run only
 * logs) runs one bounded step per interval: it lists the next `batch`
 * connections in id order from where the previous step stopped (walking
 * the whole store round and round, never more than `batch` decodes per
 * step) and deletes the due ones. Each deletion is logged ("reaped": id,
 * tenant, provider, status, age) and counted in
 * grantd_reaped_total{status}; a dry run logs "reap_candidate" and counts
 * grantd_reap_candidates_total{status} instead. `grantd reap --dry-run`
 * lists the same candidates from a read-only snapshot.
 *
 * State: RUNNING -> CLOSING (reaper_close: no new step; deletions in
 * flight finish) -> freed when the last one has called back. Loop thread
 * only; close it before the service.
 */
#ifndef GRANTD_SERVICE_REAPER_H
#define GRANTD_SERVICE_REAPER_H

#include <stdbool.h>
#include <stdint.h>

#include "service/svc.h"

/* True when c is due at now_ms for age_ms (> 0); *since_ms (may be NULL)
 * gets the time its age counts from. */
bool reaper_due(const conn_t *c, int64_t now_ms, int64_t age_ms, int64_t *since_ms);

typedef struct reaper reaper_t;

typedef struct {
  uv_loop_t *loop;
  svc_t *svc;     /* borrowed: deletes go through the service */
  store_t *store; /* borrowed: the listing */
  int64_t age_ms; /* > 0 */
  bool revoke;
  bool dry_run;
  int64_t interval_ms; /* 0 = 60 s */
  size_t batch;        /* connections looked at per step; 0 = 256 */
} reaper_opts_t;

/* Starts the periodic steps (the first after one interval). Never NULL. */
reaper_t *reaper_new(const reaper_opts_t *o);

/* One step now (tests; the timer calls the same). */
void reaper_step(reaper_t *r);

/* See State above. NULL is ignored. */
void reaper_close(reaper_t *r);

#endif
