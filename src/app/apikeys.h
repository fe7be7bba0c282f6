/*
 * apikeys.h - the API keys in use, built at start-up and rebuilt on SIGHUP.
 *
 * The keys are the lines of the API keys file (--api-keys-file,
 * GRANTD_API_KEYS_FILE; format in api/api_keys.h) plus the single key of
 * the single-key settings (app/keys.h) as "default" with scope admin. Only
 * the single key's SHA-256 is kept here, never the key.
 *
 * The file must be a regular file of at most API_KEYS_FILE_MAX bytes
 * (base/file.h). At start-up it is read blocking and any error stops the
 * start. On reload it is read on libuv's thread pool, never on the loop;
 * a file that cannot be read or parsed leaves the keys in use unchanged
 * (logged: "api_keys_reload_failed" with the reason, which names a line
 * but never a hash); a good one replaces them at once (api_set_keys,
 * logged: "api_keys_reloaded" with the number of keys). Rotation is: add
 * the new key's line, SIGHUP, move the clients, remove the old line,
 * SIGHUP.
 *
 * State: IDLE -> READING on apikeys_reload(); a reload asked for while
 * READING sets READING_AGAIN, so the file is read once more when the
 * first read ends (the last edit always wins); both end in IDLE.
 */
#ifndef GRANTD_APP_APIKEYS_H
#define GRANTD_APP_APIKEYS_H

#include <stddef.h>
#include <uv.h>

#include "api/api.h"

typedef struct apikeys apikeys_t;

/* Builds the first keyset: path (NULL = no file) read now, single_key
 * (NULL = none) hashed. Returns 0 with *out (free with apikeys_free) and
 * *ks (give it to api_new); -1 with a one-line message in err ("API keys
 * file F: line 3: ..."). */
int apikeys_open(uv_loop_t *loop, const char *path, const char *single_key, apikeys_t **out,
                 api_keyset_t **ks, char *err, size_t errlen);

/* Re-reads the file off the loop and hands the new keyset to api (which
 * must outlive the read: it does when both are freed after uv_run()
 * returns). Without a file there is nothing to reload: logged, and 0.
 * Returns 0, or a libuv error when the read cannot be queued (logged). */
int apikeys_reload(apikeys_t *ak, api_t *api);

/* True when a keys file is configured. */
int apikeys_has_file(const apikeys_t *ak);

/* Frees ak. Only when no read is in flight (after uv_run() returns, none
 * is). NULL is ignored. */
void apikeys_free(apikeys_t *ak);

#endif
