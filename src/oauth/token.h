/*
 * token.h - parsing token endpoint (and revocation endpoint) responses and
 * classifying failures as transient or permanent, without I/O.
 *
 * Bodies may be JSON (RFC 6749 section 5.1) or form-urlencoded (GitHub
 * without an Accept header, legacy Facebook): the Content-Type decides, and
 * when it is missing, wrong or the body does not parse as declared, the body
 * is sniffed ('{' = JSON; key=value&... = form). An "error" member means
 * failure whatever the HTTP status (GitHub answers 200 with
 * error=bad_verification_code), and so does a body-level success flag
 * "ok": false (Slack answers HTTP 200 {"ok": false, "error": "invalid_code"});
 * without an error member that is the code "ok_false".
 *
 * Nested tokens: with token_input_t.token_member set (Slack's user token
 * under "authed_user"), when the answer has an object of that name with a
 * non-empty string access_token, the token members (access_token,
 * refresh_token, token_type, the lifetimes, scope) are read from that
 * object instead of the top level; otherwise (a refresh answer, which is
 * flat) from the top level. Errors and `extra` are always read from the
 * top level.
 *
 * Classification (one table in token.c; first matching row wins):
 *   status 408, 425, 429, 5xx (any body, any error code) -> TRANSIENT
 *       (misreading an outage as permanent would force users to reconnect;
 *       misreading a permanent error as transient costs capped retries)
 *   error = invalid_grant, bad_verification_code, bad_refresh_token,
 *       invalid_refresh_token, expired_token, token_expired, invalid_token,
 *       access_denied, consent_required, interaction_required,
 *       login_required                                  -> REAUTH
 *   error = invalid_client, unauthorized_client, unsupported_grant_type,
 *       invalid_scope, unsupported_response_type, incorrect_client_credentials,
 *       redirect_uri_mismatch                           -> CONFIG
 *   error = invalid_request                             -> CONFIG
 *       (the request as configured is malformed; repeating it cannot help and
 *       no user action fixes it: an operator has to)
 *   error = invalid_code, token_revoked, authorization_not_found
 *       (Slack)                                         -> REAUTH
 *   error = temporarily_unavailable, server_error, slow_down,
 *       authorization_pending; Slack's internal_error, fatal_error,
 *       ratelimited, request_timeout, service_unavailable -> TRANSIENT
 *   any other error code (2xx or 4xx)                   -> CONFIG
 *   2xx with a usable access_token                      -> OK
 *   2xx without one (missing, empty, too long, bad characters), with a
 *       lifetime member that is present but unusable (see below), or an
 *       unparseable 2xx body                            -> TRANSIENT
 *   401 without an error code                           -> CONFIG
 *       (RFC 6749 section 5.2: 401 means client authentication failed)
 *   400 or 403 without an error code (empty, HTML)      -> TRANSIENT
 *       (some providers answer a revoked grant or a WAF hiccup this way; the
 *       caller caps how many such retries it makes before giving up)
 *   3xx and other 4xx without an error code (404, 405, 415 ...) -> CONFIG
 *       (wrong token_url or a proxy in the way)
 *   anything else (1xx, out-of-range status)            -> TRANSIENT
 *
 * Bounds: access and refresh tokens over TOKEN_MAX_LEN bytes, or with bytes
 * outside %x20-7E (RFC 6749 appendix A.12, and they end up in HTTP headers),
 * make a 2xx response malformed. Error codes are cut to 64 bytes and
 * restricted to the RFC 6749 charset; descriptions to 512 bytes of valid
 * UTF-8 without control characters; `extra` to TOKEN_EXTRA_MAX bytes (whole
 * members that do not fit are dropped). The caller bounds the body (1 MiB).
 *
 * Lifetimes: expires_in, expires (legacy Facebook), refresh_token_expires_in,
 * x_refresh_token_expires_in (QuickBooks) and refresh_expires_in (Keycloak)
 * must each be absent, null, a JSON number or a string holding one (PayPal
 * sends "32400"), as golang.org/x/oauth2 requires of expires_in; fractions
 * are cut, values <= 0 mean "not given", values past 10 years (2^31 and
 * beyond included) are clamped to 10 years. expires_at may also be an
 * RFC 3339 string. A member that is present but none of these (false, {},
 * "1h", "") makes a 2xx response malformed, like a missing access_token:
 * TOKEN_TRANSIENT, error TOKEN_ERR_INVALID_RESPONSE, and a description that
 * names the member. A response that would otherwise be stored as "never
 * expires" is not trusted.
 */
#ifndef GRANTD_OAUTH_TOKEN_H
#define GRANTD_OAUTH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "model/lists.h"

struct json_t;

#define TOKEN_MAX_LEN (16 * 1024)
#define TOKEN_EXTRA_MAX (64 * 1024)
#define TOKEN_ERROR_MAX 64
#define TOKEN_DESC_MAX 512
/* Longest lifetime taken from a response (10 years); longer ones are cut. */
#define TOKEN_MAX_LIFETIME_S (10LL * 365 * 24 * 3600)

typedef enum {
  TOKEN_OK = 0,        /* tokens received */
  TOKEN_TRANSIENT = 1, /* retry later (backoff, Retry-After); keep old token */
  TOKEN_REAUTH = 2,    /* permanent: the grant is gone; the user must
                          authorize again (status needs_reauth) */
  TOKEN_CONFIG = 3,    /* permanent: the client configuration is rejected
                          (status error) until an operator fixes it */
} token_outcome_t;
#define TOKEN_OUTCOME_COUNT 4

/* Stable lower-case name: "ok", "transient", "reauth", "config"; "unknown"
 * for values outside the enum. Never NULL. */
const char *token_outcome_name(token_outcome_t o);

/* Synthesized error codes, used when the provider gave none. */
#define TOKEN_ERR_INVALID_RESPONSE "invalid_response" /* 2xx, unusable body */
#define TOKEN_ERR_HTTP "http_error"                   /* non-2xx without an OAuth error code */

/* What the HTTP client received. Everything is borrowed for the call. */
typedef struct {
  int status;                 /* HTTP status code */
  const char *content_type;   /* Content-Type header value, or NULL */
  const char *body;           /* body bytes (need not be NUL-terminated); */
  size_t body_len;            /*   NULL allowed when body_len is 0 */
  const char *retry_after;    /* Retry-After header value, or NULL */
  int64_t now_ms;             /* current wall time, ms since the epoch */
  int64_t default_expires_in; /* provider default, seconds; 0 = none */
  const char *token_member;   /* nested token object ("authed_user"), or NULL */
} token_input_t;

/* The parsed outcome. Strings are owned; token_result_free() wipes and
 * frees them. A caller may take ownership of a field by setting it to NULL
 * (and likewise move `scopes` out by zeroing it). */
typedef struct {
  token_outcome_t outcome;
  int http_status;
  /* Set only when outcome == TOKEN_OK: */
  char *access_token;
  char *refresh_token;              /* NULL when the response has none: keep the old */
  char *token_type;                 /* "Bearer" (any case of bearer) or as sent;
                                       "Bearer" when absent */
  int64_t expires_at;               /* ms: now + expires_in, else absolute expires_at,
                                       else now + default_expires_in, else 0 = unknown */
  int64_t refresh_token_expires_at; /* ms from refresh_token_expires_in,
                           x_refresh_token_expires_in or refresh_expires_in;
                           0 = unknown/never */
  bool has_scope;                   /* the response carried a scope member */
  strlist_t scopes;                 /* granted scopes (split on spaces and commas) */
  char *extra_json;                 /* JSON object text of the unconsumed members
                                       (instance_url, id_token, realmId ...), or NULL */
  /* Set when outcome != TOKEN_OK: */
  char *error;              /* provider code (sanitised), "unknown_error"
                               when the error member is not a string (e.g.
                               an object), or TOKEN_ERR_* */
  char *error_description;  /* provider error_description (or
                               error.message), else a synthesized text such
                               as "HTTP 502 with an HTML body"; may be NULL */
  bool error_from_provider; /* error came from the response body */
  int64_t retry_after_ms;   /* from Retry-After (delta-seconds or HTTP-date),
                               relative to now_ms, capped at 7 days; 0 = none.
                               Parsed for every status. */
} token_result_t;

/* Parses a token endpoint response.
 * @param in  the response; in->body may contain any bytes.
 * @param out filled (overwritten, not freed first); release it with
 *            token_result_free() whatever the outcome.
 * @return out->outcome. */
token_outcome_t token_parse(const token_input_t *in, token_result_t *out);

/* Parses a revocation endpoint response (RFC 7009 section 2.2): any 2xx is
 * TOKEN_OK whatever the body (an invalid or already revoked token is also
 * answered 200); anything else is classified as by token_parse(), e.g. 503
 * -> TRANSIENT with Retry-After, unsupported_token_type -> CONFIG. No token
 * fields are ever set. */
token_outcome_t token_parse_revocation(const token_input_t *in, token_result_t *out);

/* Outcome for a request that got no HTTP response: a libuv or GRANTD_E*
 * code from net/. Certificate and URL problems (GRANTD_ETLS_UNTRUSTED,
 * _ETLS_HOSTNAME, _ETLS_EXPIRED, _EINSECURE_URL, _EENDPOINT_FORBIDDEN, _EBAD_URL, _ECONFIG,
 * _EINVALID) -> TOKEN_CONFIG: retrying cannot help. Everything else
 * (DNS, connect, timeouts, resets, other TLS failures to a host we trust,
 * oversized responses, cancellation) -> TOKEN_TRANSIENT. 0 -> TOKEN_OK. */
token_outcome_t token_outcome_for_error(int neterr);

/* Reads a lifetime value by the rule above: absent (v NULL) and null give
 * *out = 0; a number or numeric string gives its whole seconds, signed,
 * clamped to +-10^15. Returns 0, or -1 (*out = 0) for any other value.
 * Shared with the API's token import so both take the same spellings. */
int token_seconds(const struct json_t *v, int64_t *out);

/* Wipes the tokens and extra (it may hold an id_token), frees everything
 * and zeroes r. NULL-safe; idempotent. */
void token_result_free(token_result_t *r);

#endif
