/*
 * store_ro.h - a read-only snapshot of a store, for the admin commands
 * (grantd backup, check, list, inspect, export).
 *
 * Opens the LMDB environment of a data directory with MDB_RDONLY and holds
 * one read transaction for the life of the handle, so everything read
 * through it is one consistent snapshot, however a `grantd serve` on the
 * same directory goes on writing. Safe beside a running server: it never
 * writes data.mdb (LMDB registers the reader in lock.mdb, as any reader
 * does). Blocking file I/O: for short-lived command-line processes, never
 * on the server's loop.
 *
 * Errors: GRANTD_ENOT_FOUND (no store in the directory),
 * GRANTD_ESTORE_WRONG_KEY (the keyring does not open the store's key check
 * values), GRANTD_ESTORE_IO (LMDB failure; the text is in *why when given),
 * GRANTD_EEXISTS for a backup destination that exists; record decoders'
 * GRANTD_ESTORE_* codes per record.
 */
#ifndef GRANTD_STORE_STORE_RO_H
#define GRANTD_STORE_STORE_RO_H

#include <stddef.h>
#include <stdint.h>

#include "store/record.h"
#include "store/seal.h"

typedef struct store_ro store_ro_t;

/* Opens the store in directory path read-only. kr (borrowed, must outlive
 * the handle) opens sealed fields; with kr NULL no key check is made and
 * only store_ro_raw_scan() is useful. why (may be NULL) receives a static
 * description of an LMDB failure. */
int store_ro_open(store_ro_t **out, const char *path, const seal_keyring_t *kr, const char **why);
void store_ro_close(store_ro_t *ro);

/* Decodes and unseals one connection / provider into *out (free with
 * conn_free / provider_free). @return 0, GRANTD_ENOT_FOUND, a decode code. */
int store_ro_conn_get(store_ro_t *ro, const char *id, conn_t *out);
int store_ro_provider_get(store_ro_t *ro, const char *name, provider_t *out);

/* Every record of database db ("providers", "connections", "states",
 * "webhooks", ...) in key order, raw: fn(arg, key, keylen, value, vlen) with borrowed bytes;
 * a non-zero return stops the scan and is returned. @return 0,
 * GRANTD_EINVALID for an unknown db, GRANTD_ESTORE_IO. */
typedef int (*store_ro_raw_fn)(void *arg, const char *key, size_t keylen, const void *val,
                               size_t vlen);
int store_ro_raw_scan(store_ro_t *ro, const char *db, store_ro_raw_fn fn, void *arg);

/* Decodes every connection in id order: fn gets the decoded record
 * (borrowed) or, for a record that fails, bad gets its key and the code
 * and the scan goes on. A non-zero fn return stops the scan and is
 * returned. */
typedef int (*store_ro_conn_fn)(void *arg, const conn_t *c);
typedef void (*store_ro_bad_fn)(void *arg, const char *db, const char *key, size_t keylen, int err);
int store_ro_conn_scan(store_ro_t *ro, store_ro_conn_fn fn, store_ro_bad_fn bad, void *arg);

/* Decodes value bytes of database db (providers, connections, states or
 * webhooks) stored under key, without keeping the record: 0 or the
 * decoder's code (unsealing included). */
int store_ro_decode(store_ro_t *ro, const char *db, const char *key, size_t keylen, const void *val,
                    size_t vlen);

/* The sealing key ids of the sealed fields of a record value of database
 * db (a msgpack record, or a webhook endpoint with its one blob): up to
 * max ids (in field order, repeats kept) into ids; returns how many sealed
 * fields the value holds, or -1 when it is not such a value. */
int store_ro_seal_ids(const char *db, const void *val, size_t vlen, uint32_t *ids, int max);

/* Hot, consistent, compacted copy of the store in directory src into the
 * new directory dest (created 0700; it must not exist): LMDB's
 * mdb_env_copy2 with MDB_CP_COMPACT, which copies one read transaction's
 * snapshot while writers go on. On failure dest is removed again.
 * @return 0, GRANTD_EEXISTS, GRANTD_ENOT_FOUND (no store in src),
 * GRANTD_ESTORE_IO (*why tells). */
int store_ro_backup(const char *src, const char *dest, const char **why);

#endif
