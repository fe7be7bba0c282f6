/*
 * keys.h - where grantd's two secrets come from.
 *
 * The API key and the 32-byte master (sealing) key are taken, in order, from
 * the option (GRANTD_API_KEY / GRANTD_MASTER_KEY or the flag), from the file
 * named by *_FILE, or from `api-key` / `master-key` in the data directory,
 * which are generated (CSPRNG, mode 0600, O_EXCL) on first start: the
 * master key only while the directory holds no store yet. With an API keys
 * file (--api-keys-file, app/apikeys.h) the single API key is optional: it
 * is taken only from the option or *_FILE, and DIR/api-key is neither read
 * nor generated. Only the file's path is ever logged, never a key. When
 * the master key is DIR/master-key (generated or found there), keys_load()
 * logs the warning "master_key_beside_data" saying why that is weak and
 * how to pass the key from a secret.
 */
#ifndef GRANTD_APP_KEYS_H
#define GRANTD_APP_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/config.h"
#include "store/seal.h"

#define MASTER_KEY_LEN 32

/* Creates the data directory (0700, parents too) if needed.
 * Returns 0 or -1 with a message in err. */
int keys_prepare_dir(const char *dir, char *err, size_t errlen);

/* Loads or generates both keys. store_exists (store_exists() of the data
 * directory) says whether a store is already there: then the master key is
 * never generated, since a new key cannot open it. *api_key is a heap string
 * (free_secret), or NULL when an API keys file is set and no single key is
 * given.
 * Returns 0; -1 with a one-line message in err (no key material) when a
 * file cannot be read or written; -2 when a key is malformed, or when a
 * store exists and no master key is given (no option, no *_FILE, no
 * master-key file): invalid configuration, and nothing has been written. */
int keys_load(const config_t *cfg, bool store_exists, char **api_key,
              uint8_t master[MASTER_KEY_LEN], char *err, size_t errlen);

/* Loads the master key only, for the read-only admin commands: as
 * keys_load() but never generates a key file (a missing one is an error).
 * Returns 0, -1 (message in err) or -2 (malformed key). */
int keys_load_master(const config_t *cfg, uint8_t master[MASTER_KEY_LEN], char *err, size_t errlen);

/* ---- the keyring ----
 * GRANTD_MASTER_KEYS (--master-keys) or a --master-keys-file gives several
 * master keys with ids (seal_keyring_parse: `ID:KEY` entries, the first
 * seals new writes, all of them open). Without them the single master key
 * above is key id 1, so an existing store moves to a keyring by listing
 * `2:NEW,1:OLD`. The two forms exclude each other (config_load refuses
 * both). With a keyring, keys_load() and keys_load_master() leave the
 * single key alone (master zeroed, nothing generated or read). */
#define KEYS_KEYRING_FILE_MAX ((size_t)64 << 10)

bool keys_keyring_configured(const config_t *cfg);

/* The keyring of the configuration: parsed from GRANTD_MASTER_KEYS, read
 * (blocking: start-up) from the master keys file (a regular file of at
 * most KEYS_KEYRING_FILE_MAX bytes), or else made of `master` (from
 * keys_load) as key id 1.
 * @return 0 with *out (seal_keyring_free); -1 when the file cannot be read,
 *         -2 when the keyring is malformed; a one-line message without key
 *         material in err either way. */
int keys_keyring(const config_t *cfg, const uint8_t master[MASTER_KEY_LEN], seal_keyring_t **out,
                 char *err, size_t errlen);

/* Parses keyring text (a reloaded file); the message starts with src.
 * @return 0 with *out, or -1. */
int keys_keyring_text(const char *src, const char *text, size_t n, seal_keyring_t **out, char *err,
                      size_t errlen);

#endif
