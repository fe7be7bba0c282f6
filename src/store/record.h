/*
 * record.h - grantd's data model in memory, and its msgpack codecs.
 *
 * Every stored value is a msgpack array whose first element is the schema
 * version (RECORD_VERSION). Fields marked "sealed" are stored only as
 * AES-256-GCM ciphertext (seal.h) with associated data = database name +
 * record key; the structs here always hold them in plaintext, and
 * *_free() wipes them.
 *
 * Times are int64 milliseconds since the Unix epoch (UTC); 0 = unset.
 * Strings are owned NUL-terminated heap copies, NULL = unset.
 */
#ifndef GRANTD_STORE_RECORD_H
#define GRANTD_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "store/seal.h"

#define RECORD_VERSION 1

typedef struct {
  char **items;
  size_t n;
} strlist_t;

typedef struct {
  char *key;
  char *value;
} kv_t;

typedef struct {
  kv_t *items;
  size_t n;
} kvlist_t;

typedef enum {
  CLIENT_AUTH_BASIC = 0, /* client_secret_basic (RFC 6749 2.3.1) */
  CLIENT_AUTH_POST = 1,  /* client_secret_post */
} client_auth_t;

typedef struct {
  char *name;
  char *issuer;              /* RFC 8414 / RFC 9207 issuer, optional */
  char *authorize_url;
  char *token_url;           /* required */
  char *revoke_url;
  char *client_id;
  char *client_secret;       /* sealed */
  client_auth_t client_auth;
  strlist_t scopes;          /* default scopes */
  char *scope_separator;     /* NULL = " " */
  bool pkce;                 /* default true */
  char *redirect_uri;        /* NULL = public URL + /oauth/callback */
  kvlist_t authorize_params;
  kvlist_t token_params;
  kvlist_t refresh_params;
  int64_t default_expires_in;   /* seconds; 0 = none */
  int64_t refresh_lead_min;     /* seconds; 0 = default 60 */
  int64_t refresh_lead_max;     /* seconds; 0 = default 900 */
  int64_t keepalive_interval;   /* seconds; 0 = default 86400 */
  int64_t rate_limit_count;     /* token requests per window; 0 = none */
  int64_t rate_limit_window;    /* seconds */
  int64_t timeout_ms;           /* token request timeout; 0 = default */
  char *ca_file;                /* extra trust anchors for this provider */
  bool allow_insecure_http;     /* permit http:// endpoints (local testing) */
  strlist_t pkce_methods;       /* from discovery: code_challenge_methods_supported */
  strlist_t auth_methods;       /* from discovery: token_endpoint_auth_methods_supported */
  int64_t created_at;
  int64_t updated_at;
} provider_t;

typedef enum {
  GRANT_AUTHORIZATION_CODE = 0,
  GRANT_CLIENT_CREDENTIALS = 1,
  GRANT_PASSWORD = 2,
  GRANT_REFRESH_TOKEN = 3, /* imported tokens */
} grant_t;

typedef enum {
  CONN_PENDING = 0,
  CONN_ACTIVE = 1,
  CONN_REFRESH_FAILING = 2,
  CONN_NEEDS_REAUTH = 3,
  CONN_ERROR = 4,
  CONN_REVOKED = 5,
} conn_status_t;
#define CONN_STATUS_COUNT 6

typedef struct {
  char *id;
  char *tenant;
  char *provider;
  grant_t grant;
  conn_status_t status;
  strlist_t scopes;
  char *access_token;        /* sealed */
  char *refresh_token;       /* sealed */
  char *token_type;
  int64_t expires_at;        /* 0 = unknown */
  int64_t refresh_token_expires_at;
  char *extra_json;          /* JSON object text (instance_url, id_token, realmId ...) or NULL */
  char *client_id;           /* override */
  char *client_secret;       /* sealed, override */
  char *username;
  char *password;            /* sealed */
  char *metadata_json;       /* JSON object text or NULL */
  char *last_error_code;
  char *last_error_message;
  int32_t last_error_http;   /* HTTP status of the failing answer, 0 = none */
  int64_t last_error_at;
  uint32_t failures;
  int64_t refreshed_at;
  int64_t next_refresh_at;
  int64_t created_at;
  int64_t updated_at;
  uint64_t revision;
} conn_t;

typedef struct {
  char *state;
  char *conn_id;
  char *code_verifier;       /* sealed */
  char *redirect_after;
  strlist_t scopes;
  char *redirect_uri;        /* the redirect_uri sent on the authorize URL */
  int64_t expires_at;
} state_rec_t;

/* Names of enum values as used in JSON ("authorization_code", "active", ...)
 * and their parsers (0 on success, -1 for an unknown name). */
const char *grant_name(grant_t g);
int grant_parse(const char *s, grant_t *out);
const char *conn_status_name(conn_status_t s);
int conn_status_parse(const char *s, conn_status_t *out);
const char *client_auth_name(client_auth_t a);
int client_auth_parse(const char *s, client_auth_t *out);

void strlist_free(strlist_t *l);
void strlist_push(strlist_t *l, const char *s);
void kvlist_free(kvlist_t *l);
void kvlist_push(kvlist_t *l, const char *k, const char *v);
/* Value of key k, or NULL. */
const char *kvlist_get(const kvlist_t *l, const char *k);

/* Release everything a record owns, wiping sealed fields; the struct is
 * zeroed afterwards. */
void provider_free(provider_t *p);
void conn_free(conn_t *c);
void state_rec_free(state_rec_t *s);

/* Deep copies (dst is overwritten, not freed first). */
void provider_copy(provider_t *dst, const provider_t *src);
void conn_copy(conn_t *dst, const conn_t *src);
void state_rec_copy(state_rec_t *dst, const state_rec_t *src);

/* ---- msgpack codecs (record.c) ----
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
int conn_decode(const void *data, size_t n, const char *id, size_t id_len,
                const seal_keyring_t *kr, conn_t *out);

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
int conn_decode_sched(const void *data, size_t n, const char *id, size_t id_len,
                      conn_sched_t *out);

#endif
