/*
 * webhook.h - the stored webhook endpoints and their delivery progress:
 * the records, and the byte layout of their values in the store's
 * `webhooks` and `webhook_progress` databases (store.h). Codecs only; the
 * store's reads and writes of them are in store.h ("webhook endpoints").
 *
 * Endpoint value (key = endpoint name):
 *   byte 0       WH_REC_VERSION
 *   bytes 1-4    length L of the clear part, big-endian
 *   bytes 5-5+L  JSON object: url, events (patterns), created_at,
 *                updated_at, old_until (Unix ms)
 *   the rest     a seal.h blob (associated data "webhooks" 0x00 name) of
 *                the JSON object {"secret": "whsec_...", "old_secret":
 *                "whsec_..." | absent}: secrets never reach disk in clear.
 *
 * Progress value (key = endpoint name), fixed-size fields, big-endian:
 *   byte 0       WH_PROG_VERSION
 *   bytes 1-8    cursor: every event with a sequence number <= cursor is
 *                finished for the endpoint (delivered, failed for good, or
 *                not matching its patterns). The store's retention reads
 *                this field (and only it) inside its write txn, so that
 *                events above the lowest cursor are not pruned.
 *   byte 9       flags (WH_PROG_*)
 *   then         last_ok_ms (8), last_err_ms (8), last_err_status (4),
 *                last_err_class (WH_CLASS_LEN, NUL-padded), delivered (8),
 *                failed (8), n (4), and n entries of WH_PROG_ENT_LEN bytes:
 *                seq (8), attempts (4), done (1), first_ms (8), next_ms (8)
 *                - the events above the cursor that were tried at least
 *                once or are finished (out of order).
 */
#ifndef GRANTD_STORE_WEBHOOK_H
#define GRANTD_STORE_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "model/lists.h"
#include "store/seal.h"

#define RECORD_DB_WEBHOOKS "webhooks"
#define RECORD_DB_WH_PROGRESS "webhook_progress"
#define WH_REC_VERSION 1
#define WH_PROG_VERSION 1
#define WH_CLASS_LEN 32
#define WH_PROG_HDR (1 + 8 + 1 + 8 + 8 + 4 + WH_CLASS_LEN + 8 + 8 + 4)
#define WH_PROG_ENT_LEN (8 + 4 + 1 + 8 + 8)
/* Most entries a progress value holds (the delivery window's bound). */
#define WH_PROG_MAX_ENT 4096

/* Progress flags. */
#define WH_PROG_DISABLED 1u /* the receiver answered 410 Gone */

/* An endpoint. Strings are owned (free with wh_rec_free); secret and
 * old_secret are "whsec_..." text, in memory only in clear. */
typedef struct {
  char *name;
  char *url;
  strlist_t events; /* patterns: "connection.needs_reauth", "connection.*" */
  char *secret;
  char *old_secret;  /* the previous secret while it stays valid, or NULL */
  int64_t old_until; /* ms: old_secret is signed with until then */
  int64_t created_at, updated_at;
} wh_rec_t;

typedef struct {
  uint64_t seq;
  uint32_t attempts;
  bool done;
  int64_t first_ms; /* first attempt */
  int64_t next_ms;  /* next attempt (0 = at once) */
} wh_prog_ent_t;

typedef struct {
  uint64_t cursor;
  unsigned flags;
  int64_t last_ok_ms, last_err_ms;
  int32_t last_err_status;           /* HTTP status of the last failure, 0 = none */
  char last_err_class[WH_CLASS_LEN]; /* "http_5xx", "timeout", ... */
  uint64_t delivered, failed;
  size_t n;
  wh_prog_ent_t *ent; /* xmalloc'd, n of them, by seq */
} wh_prog_t;

void wh_rec_free(wh_rec_t *r);
void wh_rec_copy(wh_rec_t *dst, const wh_rec_t *src);
void wh_prog_free(wh_prog_t *p);

/* Encodes r (r->name is the key) sealing its secrets with kr's current
 * key. @return 0 or GRANTD_ESTORE_KEY. */
int wh_rec_encode(const wh_rec_t *r, const seal_keyring_t *kr, buf_t *out);
/* Decodes a value of key name. @return 0 with *out filled (free with
 * wh_rec_free), GRANTD_ESTORE_DECODE / _VERSION, or seal_open()'s code;
 * *out zeroed on error. */
int wh_rec_decode(const void *v, size_t n, const char *name, size_t name_len,
                  const seal_keyring_t *kr, wh_rec_t *out);

/* The key id of the seal blob of an endpoint value (its secrets), read
 * from the blob's header only. @return 1 with *id set, or -1 when v is
 * not an endpoint value (store_ro_seal_ids). */
int wh_rec_seal_id(const void *v, size_t n, uint32_t *id);

/* Appends the progress value (at most WH_PROG_MAX_ENT entries: the first
 * ones, by seq). */
void wh_prog_encode(const wh_prog_t *p, buf_t *out);
/* @return 0 (free with wh_prog_free) or GRANTD_ESTORE_DECODE/_VERSION. */
int wh_prog_decode(const void *v, size_t n, wh_prog_t *out);
/* The cursor of a progress value; -1 when it is not one. */
int wh_prog_cursor(const void *v, size_t n, uint64_t *cursor);

#endif
