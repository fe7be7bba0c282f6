/*
 * masterkeys.h - reloading the master-key keyring on SIGHUP.
 *
 * Only a keyring given as a file (--master-keys-file,
 * GRANTD_MASTER_KEYS_FILE) can change while grantd runs; the file is read
 * on libuv's thread pool (a regular file of at most KEYS_KEYRING_FILE_MAX
 * bytes, base/file.h), never on the loop. The new keyring replaces the one
 * in use only when
 *   - it parses (app/keys.h, seal_keyring_parse),
 *   - it still holds the current key in use (records sealed since the last
 *     count may need it) and every key id that the latest count
 *     (reseal_census: start-up, or the last finished re-seal pass) saw
 *     records for,
 *   - every key whose id the store knows opens the store's check value
 *     (store_set_keyring).
 * Otherwise it is refused ("master_keys_reload_failed" with the reason,
 * never key material) and the keyring in use stays. When accepted
 * ("master_keys_reloaded") and its first key differs from the one in use,
 * the re-seal job starts a pass (reseal_kick).
 *
 * State: IDLE -> READING (a reload asked for while READING sets
 * READING_AGAIN: read once more after) -> IDLE.
 */
#ifndef GRANTD_APP_MASTERKEYS_H
#define GRANTD_APP_MASTERKEYS_H

#include <uv.h>

#include "service/reseal.h"
#include "store/store.h"

typedef struct masterkeys masterkeys_t;

/* path: the keyring file, or NULL (nothing to reload). *slot is the
 * keyring in use (given to the store); on a reload it is replaced and the
 * old one freed. store, reseal and slot are borrowed and must outlive the
 * reads (they do when everything is freed after uv_run returns). */
masterkeys_t *masterkeys_new(uv_loop_t *loop, const char *path, store_t *store, reseal_t *reseal,
                             seal_keyring_t **slot);

/* Starts a reload (see above). Without a file: logged, nothing else. */
void masterkeys_reload(masterkeys_t *mk);

/* Shutdown has begun (before the store and the re-seal job close): a
 * read still in flight is dropped when it ends, later reloads do nothing. */
void masterkeys_stop(masterkeys_t *mk);

/* Only when no read is in flight (after uv_run returns). NULL ignored. */
void masterkeys_free(masterkeys_t *mk);

#endif
