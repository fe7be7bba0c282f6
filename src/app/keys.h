/*
 * keys.h - where grantd's two secrets come from.
 *
 * The API key and the 32-byte master (sealing) key are taken, in order, from
 * the option (GRANTD_API_KEY / GRANTD_MASTER_KEY or the flag), from the file
 * named by *_FILE, or from `api-key` / `master-key` in the data directory,
 * which are generated (CSPRNG, mode 0600, O_EXCL) on first start. Only the
 * file's path is ever logged, never a key.
 */
#ifndef GRANTD_APP_KEYS_H
#define GRANTD_APP_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "app/config.h"

#define MASTER_KEY_LEN 32

/* Creates the data directory (0700, parents too) if needed.
 * Returns 0 or -1 with a message in err. */
int keys_prepare_dir(const char *dir, char *err, size_t errlen);

/* Loads or generates both keys. *api_key is a heap string (free_secret).
 * Returns 0; -1 with a one-line message in err (no key material) when a
 * file cannot be read or written; -2 when a key is malformed (invalid
 * configuration). */
int keys_load(const config_t *cfg, char **api_key, uint8_t master[MASTER_KEY_LEN],
              char *err, size_t errlen);

#endif
