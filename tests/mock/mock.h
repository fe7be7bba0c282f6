/*
 * mock.h - what the files of the mock OAuth 2.0 provider share.
 *
 * The mock (executable `mock_provider`) is a test and benchmark fixture, not
 * part of grantd. Its files:
 *   mock_main.c   command line, loop, signals, HTTP server, routing,
 *                 latency and hang handling, shutdown
 *   mock_tap.c    a stream_t layer over each accepted connection: counts
 *                 connections/requests and rewrites marked responses into
 *                 what http_server cannot send (chunked, cut-off bodies)
 *   mock_oauth.c  /token and /revoke as pure functions of (request) -> response
 *   mock_authz.c  /authorize, /resource, /introspect (the same way)
 *   mock_knobs.c  run-time knobs (JSON and flags), counters, metadata
 *   mock_store.c  codes, access and refresh tokens and their families
 * Everything runs on one loop thread; nothing here is thread-safe.
 */
#ifndef GRANTD_TESTS_MOCK_H
#define GRANTD_TESTS_MOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/url.h"
#include "net/stream.h"
#include "net/tls.h"

/* ---- store (mock_store.c) ------------------------------------------------ */

/* A token is MOCK_TOKEN_RAW random bytes, shown as MOCK_TOKEN_LEN base64url
 * characters (240 bits: no padding, no unused bits, so the text <-> bytes
 * mapping is one to one). */
#define MOCK_TOKEN_RAW 30
#define MOCK_TOKEN_LEN 40
#define MOCK_NONE UINT32_MAX
/* Access tokens kept valid per grant: the newest two (a caller still using
 * the previous one after a refresh is served). */
#define MOCK_ACCESS_PER_FAMILY 2
/* Upper bound of the keep_rotated knob (family lists are walked). */
#define MOCK_MAX_ROTATED 64

typedef enum {
  MOCK_TOK_FREE = 0,
  MOCK_TOK_ACCESS,
  MOCK_TOK_REFRESH,
  MOCK_TOK_CODE,
} mock_tok_kind_t;

typedef enum {
  MOCK_TS_ACTIVE = 0,
  MOCK_TS_ROTATED, /* refresh token replaced by rotation; t = when */
  MOCK_TS_USED,    /* code already exchanged */
} mock_tok_state_t;

/* One code or token: 56 bytes plus ~8 bytes of hash index. */
typedef struct {
  uint8_t raw[MOCK_TOKEN_RAW];
  uint8_t kind;      /* mock_tok_kind_t */
  uint8_t state;     /* mock_tok_state_t */
  uint32_t next;     /* hash chain, or free list when FREE */
  uint32_t fam;      /* owning family */
  uint32_t fam_next; /* family's token list, newest first */
  int64_t t;         /* ACCESS/CODE: expiry; ROTATED refresh: rotation time
                        (monotonic ms) */
} mock_tok_t;

/* What /authorize stored for its code until the exchange. */
typedef struct {
  char *redirect_uri; /* NULL when /authorize had none */
  char *challenge;    /* NULL without PKCE */
  int method_s256;    /* 1 = S256, 0 = plain */
} mock_code_t;

/* A grant: every token descending from one authorization (one code, one
 * password or client_credentials request). Replay detection revokes a whole
 * family. */
typedef struct {
  uint32_t client;    /* index into mock_t.clients */
  uint32_t user;      /* index into mock_t.users, or MOCK_NONE */
  const char *scope;  /* interned (store-owned), NULL = none */
  uint32_t toks;      /* token list head */
  uint32_t refresh;   /* current refresh token, or MOCK_NONE */
  uint32_t next_free; /* free list when not live */
  uint8_t live;
  mock_code_t *code; /* while the code is unused */
} mock_fam_t;

typedef struct mock_store_s mock_store_t;

mock_store_t *mock_store_new(void);
/* Frees everything (token bytes wiped). NULL is ignored. */
void mock_store_free(mock_store_t *st);
/* Forgets every token and family (memory is kept for reuse). */
void mock_store_clear(mock_store_t *st);

/* A new live family; returns its index. `scope` is copied (interned). */
uint32_t mock_store_family_new(mock_store_t *st, uint32_t client, uint32_t user, const char *scope);
mock_fam_t *mock_store_fam(mock_store_t *st, uint32_t fam);
/* Frees a family and all its tokens (revocation). */
void mock_store_family_free(mock_store_t *st, uint32_t fam);

/* Issues a fresh unique random token of `kind` in family `fam` with time t,
 * writes its MOCK_TOKEN_LEN characters plus a NUL to out, returns its index.
 * An access token beyond MOCK_ACCESS_PER_FAMILY evicts the family's oldest
 * one. */
uint32_t mock_store_token_new(mock_store_t *st, uint32_t fam, mock_tok_kind_t kind, int64_t t,
                              char out[MOCK_TOKEN_LEN + 1]);
/* The token spelled s[0..n), or MOCK_NONE. */
uint32_t mock_store_lookup(mock_store_t *st, const char *s, size_t n);
mock_tok_t *mock_store_tok(mock_store_t *st, uint32_t idx);
/* Text of a token (MOCK_TOKEN_LEN characters plus NUL). */
void mock_store_token_text(const mock_store_t *st, uint32_t idx, char out[MOCK_TOKEN_LEN + 1]);
/* Frees one token; a family left without tokens (and without a code being
 * waited for) is freed too. */
void mock_store_token_free(mock_store_t *st, uint32_t idx);
/* Marks a refresh token rotated at `now` and frees the family's oldest
 * rotated ones beyond `keep`. */
void mock_store_rotate(mock_store_t *st, uint32_t idx, int64_t now, unsigned keep);
/* Reclaims expired access tokens and codes, visiting at most `budget` slots
 * per call (incremental: the cursor wraps around). Returns the number
 * freed. */
size_t mock_store_sweep(mock_store_t *st, int64_t now, size_t budget);
size_t mock_store_live_tokens(const mock_store_t *st);
size_t mock_store_live_families(const mock_store_t *st);
/* Bytes held by the tables (for the counters document). */
size_t mock_store_bytes(const mock_store_t *st);

/* ---- knobs and counters (mock_knobs.c) ----------------------------------- */

typedef enum {
  MOCK_FAULT_NONE = 0,
  MOCK_FAULT_INVALID_GRANT,
  MOCK_FAULT_INVALID_CLIENT,
  MOCK_FAULT_429,
  MOCK_FAULT_500,
  MOCK_FAULT_HANG,
  MOCK_FAULT_CLOSE_MID,
  MOCK_FAULT_MALFORMED_JSON,
  MOCK_FAULT_FORM_ENCODED,
  MOCK_FAULT_CHUNKED,
  MOCK_FAULT_EXPIRES_MISSING,
  MOCK_FAULT_EMPTY_400,
  MOCK_FAULT_EMPTY_403,
  MOCK_FAULT_ERROR_200,
  MOCK_FAULT_COUNT_
} mock_fault_t;

/* Which endpoints the fault applies to. */
enum { MOCK_FAULT_ON_TOKEN = 1, MOCK_FAULT_ON_REVOKE = 2 };
/* Client authentication methods accepted. */
enum {
  MOCK_AUTH_ANY = 0,
  MOCK_AUTH_BASIC,
  MOCK_AUTH_POST,
  MOCK_AUTH_PRIVATE_KEY_JWT, /* a client_assertion signed with client_assertion_key */
  MOCK_AUTH_SECRET_JWT,      /* a client_assertion signed with the client secret */
  MOCK_AUTH_TLS,             /* RFC 8705 tls_client_auth: a client CA's certificate */
  MOCK_AUTH_SELF_SIGNED_TLS, /* self_signed_tls_client_auth: the registered certificate */
};

typedef struct {
  int64_t expires_in;        /* 0 = omit expires_in (tokens still live 3600 s) */
  bool expires_in_as_string; /* "3600" instead of 3600 */
  char *token_type;          /* "Bearer" */
  bool rotate_refresh_tokens;
  int64_t reuse_grace_s;   /* rotated refresh token still accepted this long */
  int64_t keep_rotated;    /* rotated refresh tokens remembered per grant */
  bool echo_refresh_token; /* without rotation: repeat the refresh token */
  int64_t latency_ms;      /* added before answering any OAuth endpoint */
  mock_fault_t fault;
  int64_t fault_count;    /* remaining faulty requests; 0 = all */
  int64_t fault_every;    /* > 0: only every fault_every-th request is faulty */
  uint64_t fault_tick;    /* requests fault_every counted */
  int64_t retry_after;    /* seconds, for fault 429 */
  char *fault_error;      /* error code of error_with_200 */
  bool fault_after_grant; /* process the grant, then answer the fault */
  int fault_on;           /* MOCK_FAULT_ON_* bits */
  json_t *extra;          /* object merged into token responses */
  char *extra_json;       /* its members as JSON text (",\"k\":v..." or "") */
  char *realm_id;         /* realmId added to /authorize redirects */
  char *issuer;           /* NULL = the base URL */
  bool send_iss;          /* iss in /authorize redirects (RFC 9207) */
  bool deny;              /* /authorize answers error=access_denied */
  bool require_pkce;
  int client_auth; /* MOCK_AUTH_* */
  /* The key registered for private_key_jwt (PEM or JWK, oauth/jws.h; only
   * its public half is used), NULL = none: RS256/ES256 assertions fail. */
  char *client_assertion_key;
  /* mutual TLS (RFC 8705): the SHA-256 (hex) of the client certificate
   * registered for the client (self_signed_tls_client_auth: required;
   * tls_client_auth: checked when set, standing in for the registered
   * subject), NULL = none. */
  char *client_cert_sha256;
  int64_t code_ttl_s;
  int64_t access_ttl_s; /* validity when expires_in is 0 (omitted) */
  /* RFC 8628 (mock_grants.c): the interval and lifetime of device codes,
   * and how many polls (from now on) get slow_down whatever their pace. */
  int64_t device_interval;
  int64_t device_expires_in;
  int64_t device_slow_down;
  /* RFC 7523 section 2.1 (mock_grants.c): the key registered for
   * jwt-bearer assertions (PEM or JWK; its public half verifies), and an
   * extra audience accepted besides the issuer and <base>/token. */
  char *assertion_key;
  char *assertion_aud;
} mock_knobs_t;

typedef struct {
  uint64_t req_authorize, req_token, req_revoke, req_resource, req_introspect, req_metadata,
    req_mock, req_other;
  uint64_t grant_code, grant_refresh, grant_cc, grant_password, grant_other;
  uint64_t issued_access, issued_refresh, issued_codes;
  uint64_t refreshes, rotations, grace_reuses, replays, families_revoked, revocations, faults;
  uint64_t err_invalid_request, err_invalid_client, err_invalid_grant, err_unsupported_grant,
    err_invalid_scope, err_unauthorized_client;
  uint64_t conns_accepted, conns_tls, conns_closed, conn_requests_closed, conn_requests_max;
  uint64_t conn_hist[5]; /* 1, 2-10, 11-100, 101-1000, >1000 requests */
  /* Requests to /s/SEGMENT/ENDPOINT (a URL with a per-connection variable
   * in its path), counted as "SEGMENT/ENDPOINT"; the first 16 keys. */
  struct {
    char key[96];
    uint64_t n;
  } prefixed[16];
  size_t n_prefixed;
  uint64_t json_bodies;  /* /token and /revoke requests with a JSON body */
  uint64_t revoke_query; /* /revoke requests with parameters in the query */
  /* mock_grants.c */
  uint64_t device_authorizations, device_polls, device_pending, device_slow_down, device_approved,
    device_denied, device_expired;
  uint64_t jwt_bearer_ok, jwt_bearer_rejected, jwt_bearer_replays;
  uint64_t token_exchanges, token_exchanges_rejected;
} mock_counters_t;

/* ---- the whole mock ------------------------------------------------------ */

typedef struct {
  char *id;
  char *secret; /* "" = public client */
} mock_client_t;

typedef struct {
  char *name;
  char *pass;
} mock_user_t;

typedef struct mock_tap_s mock_tap_t;

typedef struct {
  mock_knobs_t knobs;       /* in effect */
  mock_knobs_t start_knobs; /* what /_mock/reset returns to */
  mock_counters_t c;
  mock_store_t *store;
  mock_client_t *clients;
  size_t nclients;
  mock_user_t *users;
  size_t nusers;
  int tls; /* 1 = https */
  unsigned port;
  const tls_stats_t *tls_stats; /* live, NULL with --plain */
  tls_stats_t tls_base;         /* tls_stats at the last /_mock/reset */
  mock_tap_t *taps;             /* open connections */
  char *last_assertion;         /* the last accepted client_assertion (owned), or NULL */
  char *mtls_base;              /* "https://host:port" of the mTLS listener, or NULL */
  char last_cert[65];           /* hex SHA-256 of the last client certificate seen, "" = none */
  bool verbose;
} mock_t;

/* A response as the endpoint functions describe it. */
enum {
  MOCK_RAW_NONE = 0,
  MOCK_RAW_CHUNKED,   /* send with Transfer-Encoding: chunked */
  MOCK_RAW_CLOSE_MID, /* send the head and half the body, then close */
  MOCK_RAW_HANG,      /* never answer */
};

typedef struct {
  int status;
  const char *ctype; /* NULL = no Content-Type */
  buf_t body;
  buf_t hdrs; /* extra header lines, each ending in \r\n */
  int raw;    /* MOCK_RAW_* */
} mock_resp_t;

/* Empties r for the next response (memory kept). */
void mock_resp_reset(mock_resp_t *r);
void mock_resp_free(mock_resp_t *r);

/* A request as the endpoint functions see it (all borrowed). */
typedef struct {
  const char *method;
  const char *query; /* NULL = none */
  const char *body;
  size_t body_len;
  const char *ctype;    /* Content-Type header or NULL */
  const char *authz;    /* Authorization header or NULL */
  const char *base;     /* "https://host:port" of this request */
  int mtls;             /* arrived on the mTLS listener */
  int has_cert;         /* the client presented a certificate (mTLS listener) */
  int cert_trusted;     /* ... that chains to the client CA */
  char cert_sha256[65]; /* its SHA-256, hex */
  int64_t now;          /* monotonic ms */
  int64_t wall;         /* wall-clock ms */
} mock_req_t;

/* ---- endpoints (mock_oauth.c) -------------------------------------------- */

/* State of one /token or /revoke request (mock_oauth.c, mock_grants.c). */
typedef struct {
  mock_t *m;
  const mock_req_t *q;
  mock_resp_t *r;
  form_t form;
  mock_fault_t fmt; /* a format fault applied to the answer, or NONE */
} mock_tctx_t;

/* For mock_grants.c: mock_oauth.c's error answer, unique parameter read,
 * client authentication (MOCK_NONE after answering), the check of a
 * one-time jti (false = seen before), and token issuing (a new family of
 * `client` with `scope`; a refresh token when `refresh`). */
void mock_tc_fail(mock_tctx_t *tc, int status, const char *error, const char *desc);
int mock_tc_param(mock_tctx_t *tc, const char *key, const char **val);
uint32_t mock_tc_authenticate(mock_tctx_t *tc);
bool mock_tc_jti_fresh(const char *jti);
void mock_tc_issue_new(mock_tctx_t *tc, uint32_t client, const char *scope, bool refresh);

/* ---- more grants (mock_grants.c) ------------------------------------------ */

/* POST /device_authorization (RFC 8628 section 3.1). */
void mock_device_authorization(mock_t *m, const mock_req_t *q, mock_resp_t *r);
/* grant_type device_code (section 3.4/3.5), client authenticated. */
void mock_grant_device(mock_tctx_t *tc, uint32_t client);
/* grant_type jwt-bearer (RFC 7523 section 2.1); client MOCK_NONE when the
 * request carried no client authentication. */
void mock_grant_jwt_bearer(mock_tctx_t *tc, uint32_t client);
/* grant_type token-exchange (RFC 8693 section 2.1): subject_token (and
 * actor_token) must be live access tokens of this mock of type
 * urn:ietf:params:oauth:token-type:access_token; requested_token_type, if
 * any, that type too; answers a new access token with issued_token_type.
 * The last request's audience, resource and token types are kept for GET
 * /_mock/exchange. */
void mock_grant_token_exchange(mock_tctx_t *tc, uint32_t client);
json_t *mock_last_exchange_json(void);
/* POST /_mock/device {"user_code": "...", "action": "approve"|"deny"}:
 * the user's decision at the verification page. */
void mock_device_decide(mock_t *m, const mock_req_t *q, mock_resp_t *r);
/* Forgets every device flow and the last assertion (/_mock/reset, exit). */
void mock_device_clear(void);
/* GET /_mock/assertion: {"header", "claims", "client_authenticated",
 * "scope_param", "assertion"} of the last accepted jwt-bearer assertion
 * (the assertion itself, to test its replay), or null (new reference). */
json_t *mock_last_assertion_json(void);

void mock_authorize(mock_t *m, const mock_req_t *q, mock_resp_t *r);
void mock_token(mock_t *m, const mock_req_t *q, mock_resp_t *r);
void mock_revoke(mock_t *m, const mock_req_t *q, mock_resp_t *r);
/* A protected resource: 200 for a live access token in "Authorization:
 * Bearer", else 401 with WWW-Authenticate. */
void mock_resource(mock_t *m, const mock_req_t *q, mock_resp_t *r);
/* RFC 7662-like introspection of the form's `token` (no client auth). */
void mock_introspect(mock_t *m, const mock_req_t *q, mock_resp_t *r);

/* Helpers shared by mock_oauth.c and mock_authz.c: */
/* Content-Type is application/x-www-form-urlencoded (parameters allowed). */
bool mock_is_form(const char *ctype);
/* RFC 6749 section 3.3 scope syntax (so scopes go into JSON unescaped),
 * 1..1024 characters. */
bool mock_scope_valid(const char *s);
/* Index of the client called id, or MOCK_NONE. */
uint32_t mock_find_client(const mock_t *m, const char *id);

/* Appends a JSON OAuth error and sets the status. */
void mock_oauth_error(mock_resp_t *r, int status, const char *error, const char *description);

/* ---- knobs, counters, metadata (mock_knobs.c) ---------------------------- */

/* Default knob values (allocates the strings). */
void mock_knobs_defaults(mock_knobs_t *k);
void mock_knobs_free(mock_knobs_t *k);
/* Deep copy of src into dst (dst uninitialised). */
void mock_knobs_copy(mock_knobs_t *dst, const mock_knobs_t *src);
/* Applies the members of `obj` (names as in the knobs JSON) to k, all or
 * nothing. On error writes a one-line reason to err (naming the field) and
 * returns GRANTD_EINVALID, leaving k unchanged. */
int mock_knobs_apply(mock_knobs_t *k, const json_t *obj, char *err, size_t errlen);
/* Applies one knob from a command-line flag: value is parsed as JSON when it
 * is valid JSON, else taken as a string. */
int mock_knobs_apply_flag(mock_knobs_t *k, const char *name, const char *value, char *err,
                          size_t errlen);
/* The knobs as a JSON object (new reference). */
json_t *mock_knobs_json(const mock_knobs_t *k);
/* The counters document (new reference). */
json_t *mock_counters_json(const mock_t *m);
/* Metadata (RFC 8414, or OpenID discovery when oidc). */
json_t *mock_metadata_json(const mock_t *m, const char *base, bool oidc);
/* Name of a fault ("none", "invalid_grant" ...). */
const char *mock_fault_name(mock_fault_t f);
/* Takes the fault for a request to an endpoint (MOCK_FAULT_ON_*), counting
 * it down; MOCK_FAULT_NONE when none applies. */
mock_fault_t mock_fault_take(mock_t *m, int endpoint);
/* The issuer: the issuer knob, else the base URL. */
const char *mock_issuer(const mock_t *m, const char *base);

/* ---- connection layer (mock_tap.c) --------------------------------------- */

/* Header line a response carries to ask the tap for a raw rewrite. */
#define MOCK_RAW_HEADER "X-Mock-Raw"

/* Wraps an accepted TCP stream: TLS (when tls_ctx is not NULL) and the tap
 * on top. In http_server's wrap-hook shape with arg = the mock_t; the TLS
 * context is taken from mock_tap_set_tls(). */
stream_t *mock_tap_wrap(void *arg, stream_t *tcp);
/* The TLS server context used by mock_tap_wrap (NULL = plain). */
void mock_tap_set_tls(void *tls_server_ctx);
/* The same for the mTLS listener: mock_tap_wrap_mtls wraps with the
 * context set by mock_tap_set_mtls (one that requests client certs). */
stream_t *mock_tap_wrap_mtls(void *arg, stream_t *tcp);
void mock_tap_set_mtls(void *tls_server_ctx);
/* Of a stream made by either wrap: *mtls = whether the mTLS listener
 * accepted it; 1 with the client certificate's SHA-256 and whether it
 * chains to the client CA, 0 without one. */
int mock_tap_peer_cert(stream_t *s, int *mtls, unsigned char sha256[32], int *trusted);
/* Adds the request counts of open connections to the histogram view. */
void mock_tap_fold_open(const mock_t *m, uint64_t hist[5], uint64_t *max, uint64_t *open);
/* Histogram bucket of a per-connection request count. */
int mock_conn_bucket(uint64_t n);
/* Zeroes the request counts of open connections (/_mock/reset). */
void mock_tap_reset(mock_t *m);
/* Frees the write requests kept for reuse (at exit). */
void mock_tap_cleanup(void);

#endif
