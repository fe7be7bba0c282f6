/*
 * connection.h - a connection in memory: one tenant's grant at one
 * provider, with its tokens, status and refresh bookkeeping. A
 * zero-initialised conn_t is empty; conn_copy() deep-copies, conn_free()
 * releases and wipes.
 *
 * Strings are owned NUL-terminated heap copies, NULL = unset. Times are
 * int64 milliseconds since the Unix epoch (UTC); 0 = unset. Fields marked
 * "secret" are stored only sealed (store/seal.h) and wiped when freed.
 */
#ifndef GRANTD_MODEL_CONNECTION_H
#define GRANTD_MODEL_CONNECTION_H

#include <stdint.h>

#include "model/lists.h"

typedef enum {
  GRANT_AUTHORIZATION_CODE = 0,
  GRANT_CLIENT_CREDENTIALS = 1,
  GRANT_PASSWORD = 2,
  GRANT_REFRESH_TOKEN = 3,  /* imported tokens */
  GRANT_DEVICE_CODE = 4,    /* RFC 8628 device authorization grant */
  GRANT_JWT_BEARER = 5,     /* RFC 7523 section 2.1 */
  GRANT_TOKEN_EXCHANGE = 6, /* RFC 8693 */
} grant_t;
#define GRANT_LAST GRANT_TOKEN_EXCHANGE

typedef enum {
  CONN_PENDING = 0,
  CONN_ACTIVE = 1,
  CONN_REFRESH_FAILING = 2,
  CONN_NEEDS_REAUTH = 3,
  CONN_ERROR = 4,
  CONN_REVOKED = 5,
} conn_status_t;
#define CONN_STATUS_COUNT 6

/* clang-format off */
typedef struct {
  char *id;
  char *tenant;
  char *provider;
  grant_t grant;
  conn_status_t status;
  strlist_t scopes;
  char *access_token;        /* secret */
  char *refresh_token;       /* secret */
  char *token_type;
  int64_t expires_at;        /* 0 = unknown */
  int64_t refresh_token_expires_at;
  char *extra_json;          /* secret: JSON object text (instance_url, id_token ...) */
  char *client_id;           /* override */
  char *client_secret;       /* secret, override */
  char *username;
  char *password;            /* secret */
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
  kvlist_t vars;             /* per-connection URL variables (provider's vars) */
  char *token_member;        /* nested token to serve (Slack "authed_user"),
                                NULL = the provider's token_member */
  /* device_code grant (RFC 8628), while the flow runs: the device code
   * (never shown), what the user is shown, when the code expires and the
   * polling interval in seconds (slow_down adds 5). Cleared when it ends. */
  char *device_code;         /* secret */
  char *user_code;
  char *verification_uri;
  char *verification_uri_complete;
  int64_t device_expires_at;
  int32_t device_interval;
  /* jwt_bearer grant (RFC 7523 section 2.1): the connection's own signing
   * key (PEM or JWK, oauth/jws.h; NULL = the provider's), its kid and
   * JWA name, and claims (JSON object text) over the provider's
   * assertion_claims ("sub": the user, ...). */
  char *signing_key;         /* secret */
  char *signing_key_id;
  char *signing_alg;
  char *assertion_claims;
  /* token_exchange grant (RFC 8693): the subject token given (secret), or
   * the id of the connection whose access token is the subject (that
   * connection is refreshed first when its token is about to expire), the
   * token types and the request's optional parameters. */
  char *subject_token;       /* secret */
  char *subject_token_type;
  char *subject_connection;
  char *actor_token;         /* secret */
  char *actor_token_type;
  strlist_t audience;
  strlist_t resource;
  char *requested_token_type;
} conn_t;
/* clang-format on */

/* Names as used in JSON ("authorization_code", "active", ...); the
 * parsers return 0, or -1 for an unknown name. */
const char *grant_name(grant_t g);
int grant_parse(const char *s, grant_t *out);
const char *conn_status_name(conn_status_t s);
int conn_status_parse(const char *s, conn_status_t *out);

/* Releases everything c owns, wiping secrets; c is zeroed afterwards. */
void conn_free(conn_t *c);
/* Deep copy; dst is overwritten, not freed first. */
void conn_copy(conn_t *dst, const conn_t *src);

#endif
