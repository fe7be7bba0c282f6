/*
 * record.h - the msgpack codecs of grantd's stored records. The records
 * themselves (provider_t, conn_t, state_rec_t and their lists, with their
 * copies and frees) are the data model in src/model/, included here.
 *
 * Every stored value is a msgpack array whose first element is the schema
 * version (RECORD_VERSION). Fields the model marks "secret" are stored only
 * as AES-256-GCM ciphertext (seal.h) with associated data = database name +
 * record key; the structs always hold them in plaintext.
 */
#ifndef GRANTD_STORE_RECORD_H
#define GRANTD_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "model/connection.h"
#include "model/lists.h"
#include "model/provider.h"
#include "model/state.h"
#include "store/seal.h"

/* Version 2 seals a connection's `extra` (provider fields besides the
 * standard ones, which may include an OpenID id_token); version 1 held it
 * in clear. Both decode; every write is version 2, so a version 1 record is
 * sealed at its next write (or by the re-seal job). */
#define RECORD_VERSION 2
#define RECORD_VERSION_OLDEST 1

/* ---- msgpack codecs (record_codec.c) ----
 *
 * A value is a positional msgpack array, without field names:
 *   [RECORD_VERSION, field1, field2, ...]
 * An unset field (NULL string, empty list, 0, false) is packed as nil or 0,
 * and unset fields at the end are left out, so the array may be shorter
 * than the full field list; decoders read missing trailing fields as unset.
 * The record's own key (provider name, connection id, state) is the LMDB key
 * and is not repeated in the value. A sealed field is a msgpack bin holding
 * a seal.h blob whose associated data is the database name below + 0x00 +
 * the record key.
 *
 * Decoders never crash on any input: a truncated or garbled value or a
 * field of the wrong type gives GRANTD_ESTORE_DECODE, an unknown version
 * GRANTD_ESTORE_VERSION, a sealed field that fails to open the seal_open()
 * code (GRANTD_ESTORE_AUTH / GRANTD_ESTORE_KEY / GRANTD_ESTORE_DECODE). On
 * error *out is left zeroed (nothing to free); on success the caller frees
 * it with the matching *_free(). Decoders are thread-safe. */

#define RECORD_DB_PROVIDERS "providers"
#define RECORD_DB_CONNECTIONS "connections"
#define RECORD_DB_STATES "states"

/* Appends the encoded provider (key = p->name, which must be set) to out.
 * @return 0; GRANTD_EINVALID when p->name is NULL; GRANTD_ESTORE_KEY when a
 *         secret must be sealed and the keyring has no current key (out is
 *         then restored to its previous length). */
int provider_encode(const provider_t *p, const seal_keyring_t *kr, buf_t *out);
/* Decodes a provider stored under key name[0..name_len) into *out (out->name
 * is set from the key). */
int provider_decode(const void *data, size_t n, const char *name, size_t name_len,
                    const seal_keyring_t *kr, provider_t *out);

/* The same for connections (key = c->id). */
int conn_encode(const conn_t *c, const seal_keyring_t *kr, buf_t *out);
int conn_decode(const void *data, size_t n, const char *id, size_t id_len, const seal_keyring_t *kr,
                conn_t *out);

/* conn_decode() for a token read: everything but a non-empty refresh
 * token, which is not unsealed (refresh_token stays NULL; its blob's tag is
 * not checked either). *has_rt says whether the record holds a non-empty
 * refresh token, exactly as `refresh_token && refresh_token[0]` after
 * conn_decode(). The record must not be written back when *has_rt is true
 * (its refresh token is missing). */
int conn_decode_token_view(const void *data, size_t n, const char *id, size_t id_len,
                           const seal_keyring_t *kr, conn_t *out, bool *has_rt);

/* The same for authorization states (key = s->state). */
int state_rec_encode(const state_rec_t *s, const seal_keyring_t *kr, buf_t *out);
int state_rec_decode(const void *data, size_t n, const char *state, size_t state_len,
                     const seal_keyring_t *kr, state_rec_t *out);

/* The scheduling view of a stored connection: only unsealed fields, so it
 * is decoded without a keyring and without any AES work (start-up scans of
 * millions of records). Slices are borrowed from the value bytes and the key
 * (not NUL-terminated) and live as long as those do. */
typedef struct {
  slice_t id;
  slice_t tenant;
  slice_t provider;
  grant_t grant;
  conn_status_t status;
  int64_t expires_at;
  int64_t next_refresh_at;
  uint32_t failures;
} conn_sched_t;

/* Decodes the scheduling view of a connection value stored under key
 * id[0..id_len). Sealed fields are not opened (a tampered secret is only
 * found by conn_decode()); everything else is checked as in conn_decode().
 * @return 0, GRANTD_ESTORE_DECODE or GRANTD_ESTORE_VERSION. */
int conn_decode_sched(const void *data, size_t n, const char *id, size_t id_len, conn_sched_t *out);

#endif
