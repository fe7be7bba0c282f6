/*
 * seal.h - AES-256-GCM sealing of secret fields, with key ids for rotation.
 *
 * A sealed value ("blob") is self-describing:
 *
 *   format (1 byte) | key id (1 or 4 bytes) | nonce (12) | ciphertext | tag (16)
 *
 * format 0x01 = key id in 1 byte (ids 0..255), 0x02 = key id in 4 bytes big
 * endian (ids >= 256). The nonce is 96 random bits from getrandom(2)
 * (base/rand.h), so one key can seal about 2^32 values before the birthday
 * bound matters (NIST SP 800-38D 8.3). The associated data binds a blob to
 * its place: database name, one 0x00 byte, record key. A blob copied to
 * another record, database or key slot fails to open with GRANTD_ESTORE_AUTH.
 * Overhead: 30 bytes for ids < 256, 33 otherwise (SEAL_OVERHEAD_MAX).
 *
 * A keyring holds several 32-byte keys, each with an id; one of them is
 * "current" and seals new values, while opening picks the key named by the
 * blob, so old values stay readable after a new key is made current.
 *
 * The AES implementation is BearSSL's AES-NI one when the CPU has it
 * (br_aes_x86ni_ctr_get_vtable()), else the constant-time ct64 one; GHASH
 * likewise uses PCLMUL when available, else ctmul64.
 *
 * Threading: a keyring is read-only after set-up; sealing and opening only
 * read it, so they may run on any thread once the keys are added. Adding
 * keys or changing the current one must not race with their use.
 */
#ifndef GRANTD_STORE_SEAL_H
#define GRANTD_STORE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define SEAL_KEY_LEN 32
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
/* Most keys a keyring holds. */
#define SEAL_MAX_KEYS 16
/* Largest fixed overhead of a blob (4-byte key id). */
#define SEAL_OVERHEAD_MAX (1 + 4 + SEAL_NONCE_LEN + SEAL_TAG_LEN)

typedef struct seal_keyring seal_keyring_t;

/* Creates an empty keyring (no current key). Never NULL (aborts on OOM). */
seal_keyring_t *seal_keyring_new(void);

/* Wipes every key (and derived key schedule) and frees the keyring. NULL is
 * ignored. */
void seal_keyring_free(seal_keyring_t *kr);

/* Adds a key with the given id (the 32 bytes are copied; the caller should
 * wipe its own copy). The first key added becomes current.
 * @return 0; GRANTD_EEXISTS when the id is already present; GRANTD_EINVALID
 *         when the keyring already holds SEAL_MAX_KEYS keys. */
int seal_keyring_add(seal_keyring_t *kr, uint32_t id, const uint8_t key[SEAL_KEY_LEN]);

/* Makes key `id` the one that seals new values.
 * @return 0, or GRANTD_ESTORE_KEY when no key has that id. */
int seal_keyring_set_current(seal_keyring_t *kr, uint32_t id);

/* Id of the current key; *id is untouched and -1 returned when the keyring
 * is empty, else 0. */
int seal_keyring_current(const seal_keyring_t *kr, uint32_t *id);

/* Number of keys, and the id of the i-th key (in the order added), for
 * callers that enumerate them (the store records a check value per id). */
size_t seal_keyring_count(const seal_keyring_t *kr);
uint32_t seal_keyring_id_at(const seal_keyring_t *kr, size_t i);

/* True when the keyring holds a key with this id. */
int seal_keyring_has(const seal_keyring_t *kr, uint32_t id);

/* Parses a master key given as 64 hex digits, or as base64 / base64url
 * (padded or not) of exactly 32 bytes. Leading/trailing whitespace is
 * ignored (keys read from files end in a newline).
 * @return 0 with out filled, or GRANTD_EINVALID (out wiped). */
int seal_key_parse(const char *s, uint8_t out[SEAL_KEY_LEN]);

/* Largest key id a keyring text may name. */
#define SEAL_KEY_ID_MAX 65535u

/* Builds a keyring from text listing `ID:KEY` entries separated by commas
 * or new lines (GRANTD_MASTER_KEYS, or a --master-keys-file); white space
 * around entries is ignored, `#` starts a comment running to the end of
 * the line, empty entries are skipped. ID is a decimal 1..SEAL_KEY_ID_MAX
 * (no sign, no leading zero), KEY as seal_key_parse(). The first entry is
 * the current key (seals new values); all of them open. At least one and
 * at most SEAL_MAX_KEYS entries, ids unique.
 * @return 0 with *out (free with seal_keyring_free); GRANTD_EINVALID with
 *         a one-line message in err naming the entry by its position
 *         ("entry 2: ...") and never quoting key material; *out untouched
 *         and every parsed key wiped. */
int seal_keyring_parse(const char *text, size_t n, seal_keyring_t **out, char *err, size_t errlen);

/* Seals pt[0..n) with the current key and appends the blob to out.
 * Associated data: db, 0x00, key[0..keylen).
 * @return 0, or GRANTD_ESTORE_KEY when the keyring has no current key
 *         (out unchanged). */
int seal_seal(const seal_keyring_t *kr, const char *db, const void *key, size_t keylen,
              const void *pt, size_t n, buf_t *out);

/* Like seal_seal(), but with the key `id` instead of the current one (the
 * store seals a check value per key id).
 * @return 0, or GRANTD_ESTORE_KEY when no key has that id. */
int seal_seal_with(const seal_keyring_t *kr, uint32_t id, const char *db, const void *key,
                   size_t keylen, const void *pt, size_t n, buf_t *out);

/* Length of the blob seal_seal() produces for n plaintext bytes with the
 * current key (0 when there is no current key). */
size_t seal_sealed_len(const seal_keyring_t *kr, size_t n);

/* Opens a blob, checking the tag over the ciphertext and the associated
 * data (db, 0x00, key), and appends the plaintext to out. The caller owns
 * the plaintext: wipe it (buf_wipe_free / mem_wipe) when done.
 * @return 0;
 *         GRANTD_ESTORE_DECODE: blob truncated or of an unknown format;
 *         GRANTD_ESTORE_KEY: the blob names a key id the keyring lacks;
 *         GRANTD_ESTORE_AUTH: tag mismatch (tampered blob, wrong associated
 *         data, or a different key under the same id).
 *         On error out keeps its previous length and no plaintext remains
 *         in its memory. */
int seal_open(const seal_keyring_t *kr, const char *db, const void *key, size_t keylen,
              const void *blob, size_t n, buf_t *out);

/* seal_open() with the associated data given as one run of bytes instead
 * of (db, 0x00, key): for known-answer tests against published GCM vectors,
 * whose associated data need not have that shape. */
int seal_open_aad(const seal_keyring_t *kr, const void *aad, size_t aadlen, const void *blob,
                  size_t n, buf_t *out);

/* The plaintext length of a blob, read from its size and header without
 * opening it (the tag is not checked).
 * @return 0, or GRANTD_ESTORE_DECODE when the blob is malformed. */
int seal_blob_plain_len(const void *blob, size_t n, size_t *len);

/* Reads the key id of a blob without opening it.
 * @return 0, or GRANTD_ESTORE_DECODE when the blob is malformed. */
int seal_blob_key_id(const void *blob, size_t n, uint32_t *id);

#endif
