/*
 * outbox.h - the connection events of the durable outbox: which lifecycle
 * change makes which event, and the byte layout of an event value in the
 * store's `events` database. Pure functions, no LMDB (store_write.c
 * applies them inside the write txn of the change, store_events.c reads).
 *
 * An event value is a 12-byte header and the event's data object:
 *   byte 0      OUTBOX_VERSION
 *   byte 1      outbox_type_t
 *   byte 2      status after the change (conn_status_t, or
 *               OUTBOX_STATUS_DELETED)
 *   byte 3      status before it (conn_status_t, or OUTBOX_STATUS_NONE for
 *               a new connection)
 *   bytes 4-11  commit time, Unix milliseconds, big-endian
 *   bytes 12-   JSON object text: connection, tenant, provider,
 *               last_error, metadata (built on the loop from the record;
 *               never a token or secret)
 * Keys are the event's sequence number, a big-endian uint64 (so LMDB's
 * byte order is commit order); the first event is 1 and numbers have no
 * gaps: the commit worker numbers the events of a batch in its txn.
 */
#ifndef GRANTD_STORE_OUTBOX_H
#define GRANTD_STORE_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/connection.h"

typedef enum {
  OUTBOX_NONE = 0,
  OUTBOX_CREATED,
  OUTBOX_AUTHORIZED,
  OUTBOX_REFRESH_FAILING,
  OUTBOX_RECOVERED,
  OUTBOX_NEEDS_REAUTH,
  OUTBOX_ERROR,
  OUTBOX_REVOKED,
  OUTBOX_DELETED,
  OUTBOX_RT_LOST, /* connection.refresh_token_lost_in_restart */
  OUTBOX_TYPE_COUNT
} outbox_type_t;

#define OUTBOX_VERSION 1
#define OUTBOX_HDR 12
#define OUTBOX_STATUS_DELETED 6
#define OUTBOX_STATUS_NONE 0xff
#define OUTBOX_MAX_PER_CHANGE 3

/* Flags of a change, given by the loop with the write. */
#define OUTBOX_F_RT_LOST 1u /* last_error is refresh_token_lost_in_restart */
#define OUTBOX_F_REVOKED 2u /* a delete after revoking at the provider */

/* "connection.created" ...; NULL for OUTBOX_NONE or out of range. */
const char *outbox_type_name(outbox_type_t t);
/* Status name of a header status byte ("active" ..., "deleted"); NULL for
 * OUTBOX_STATUS_NONE or an unknown byte. */
const char *outbox_status_name(uint8_t st);

/* The events of a put that replaces a record with status `prev` (existed
 * false: there was none) by one with status `next` and grant `grant`:
 *   new record        connection.created, then what PENDING -> next makes,
 *                     except that an import made active is only created;
 *   same status       nothing (routine refreshes are not events);
 *   -> active         from pending: authorized; otherwise recovered;
 *   -> refresh_failing / needs_reauth / error / revoked: that event
 *                     (needs_reauth with OUTBOX_F_RT_LOST:
 *                     refresh_token_lost_in_restart);
 *   -> pending        nothing.
 * Writes the types, in order, to out and returns their number (0..3). */
size_t outbox_put_events(bool existed, conn_status_t prev, conn_status_t next, grant_t grant,
                         unsigned flags, outbox_type_t out[OUTBOX_MAX_PER_CHANGE]);

/* The events of deleting a record with status prev: connection.revoked
 * (with OUTBOX_F_REVOKED, unless already revoked) then connection.deleted;
 * nothing when there was no record. */
size_t outbox_delete_events(bool existed, conn_status_t prev, unsigned flags,
                            outbox_type_t out[OUTBOX_MAX_PER_CHANGE]);

/* Writes the 12-byte header. */
void outbox_hdr_write(uint8_t hdr[OUTBOX_HDR], outbox_type_t t, uint8_t status, uint8_t prev,
                      int64_t ts_ms);

/* A decoded event value (data borrowed from the value bytes). */
typedef struct {
  outbox_type_t type;
  uint8_t status, prev;
  int64_t ts_ms;
  const char *data;
  size_t data_len;
} outbox_ev_t;

/* Decodes a value. @return 0, or -1 when it is too short, of another
 * version or of an unknown type. */
int outbox_decode(const void *val, size_t n, outbox_ev_t *out);

/* Sequence number keys. */
void outbox_key(uint8_t k[8], uint64_t seq);
uint64_t outbox_key_seq(const void *k);

#endif
