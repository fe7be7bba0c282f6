/*
 * reseal.h - the background job that re-seals records with the current
 * master key after a rotation (GRANTD_MASTER_KEYS=NEW,...,OLD).
 *
 * Rotation: the keyring's first key seals every new write; the others
 * still open what they sealed. This job walks providers, connections and
 * states in key order (store_reseal_step, store.h) and puts every record
 * that uses an older key again, which seals it with the current one. It
 * runs on the loop from a timer, a bounded number of records per tick
 * (rate / 20 every 50 ms, at most 256 per tick: higher rates tick more
 * often, at most once a millisecond), and skips a tick while the store's write
 * queue is long, so refreshes and reads are never paused for long. Each
 * record is replaced atomically; after a crash (kill -9) nothing is lost
 * and the next start walks again, skipping what is done (a record on the
 * current key costs a header read, no AES).
 *
 * Progress, in /metrics:
 *   grantd_store_records_by_key_id{key_id="N"}  records using key N, as
 *       counted at start-up and again by each finished pass
 *   grantd_reseal_records_total                records re-sealed
 *   grantd_reseal_running                      1 while a pass runs
 * and in the log: "reseal_started", "reseal_done" (with the counts),
 * "reseal_incomplete" when records remain that no key of the keyring
 * opens (each is also logged as store_record_bad).
 *
 * State: IDLE (nothing to do) -> RUNNING (a pass; back to IDLE at its
 * end) -> CLOSED (reseal_close: the timer is closed, the object freed once
 * libuv is done with it). Loop thread only.
 */
#ifndef GRANTD_SERVICE_RESEAL_H
#define GRANTD_SERVICE_RESEAL_H

#include <uv.h>

#include "store/store.h"

typedef struct reseal reseal_t;

typedef struct {
  uv_loop_t *loop;
  store_t *store;      /* borrowed; close the job before the store */
  unsigned per_second; /* records visited per second at most; 0 = 2000 */
} reseal_opts_t;

/* Publishes `start` (store_seal_census at start-up) as the by-key-id
 * gauges and starts a pass when it counts records on an older key. Never
 * NULL. */
reseal_t *reseal_new(const reseal_opts_t *o, const store_census_t *start);

/* The keyring's current key changed (a reload): starts a pass, or starts
 * the running one over. */
void reseal_kick(reseal_t *r);

/* The most recent full count: the start-up census, or the last finished
 * pass's. Borrowed. */
const store_census_t *reseal_census(const reseal_t *r);

/* Stops the job (a step in progress has finished: steps are synchronous)
 * and frees it after libuv closes the timer. NULL is ignored. */
void reseal_close(reseal_t *r);

#endif
