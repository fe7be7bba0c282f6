/*
 * device.h - the device authorization grant (RFC 8628) without I/O: the
 * device authorization response (section 3.2) and what a poll's token
 * answer means (section 3.5).
 *
 * The request itself is built by grant.h (grant_device_authorization_request,
 * grant_device_code_request).
 */
#ifndef GRANTD_OAUTH_DEVICE_H
#define GRANTD_OAUTH_DEVICE_H

#include <stdint.h>

#include "oauth/token.h"

#define DEVICE_GRANT_TYPE "urn:ietf:params:oauth:grant-type:device_code"
/* RFC 8628 section 3.2: "If no value is provided, clients MUST use 5 as
 * the default"; section 3.5: slow_down adds 5 seconds. */
#define DEVICE_DEFAULT_INTERVAL_S 5
#define DEVICE_SLOW_DOWN_S 5
#define DEVICE_MAX_INTERVAL_S 3600
#define DEVICE_URI_MAX 2048
#define DEVICE_USER_CODE_MAX 64

/* A parsed device authorization response. Strings are owned (free with
 * device_auth_free(); the device code is wiped). */
typedef struct {
  char *device_code;
  char *user_code;
  char *verification_uri;          /* "verification_url" (Google) is read too */
  char *verification_uri_complete; /* NULL when not given */
  int64_t expires_at;              /* ms: now + expires_in */
  int32_t interval;                /* seconds, DEVICE_DEFAULT_INTERVAL_S when absent,
                                      clamped to 1..DEVICE_MAX_INTERVAL_S */
} device_auth_t;

/* Parses a device authorization response. A 2xx JSON object without an
 * "error" member must carry device_code (printable ASCII, at most
 * TOKEN_MAX_LEN), user_code (printable ASCII, at most
 * DEVICE_USER_CODE_MAX), verification_uri (an absolute http(s) URL of
 * printable ASCII, at most DEVICE_URI_MAX; so must
 * verification_uri_complete when present) and a positive expires_in;
 * interval is optional. Anything else is classified as token_parse() does
 * (err->outcome; a 2xx without those members is TOKEN_TRANSIENT,
 * TOKEN_ERR_INVALID_RESPONSE, naming the member).
 * @param out  filled on TOKEN_OK, zeroed otherwise.
 * @param err  filled when the outcome is not TOKEN_OK (token_result_free()
 *             it in every case).
 * @return the outcome. */
token_outcome_t device_auth_parse(const token_input_t *in, device_auth_t *out, token_result_t *err);

void device_auth_free(device_auth_t *d);

/* What a poll's parsed token answer (token_parse) means for the flow. */
typedef enum {
  DEVICE_POLL_TOKENS = 0, /* TOKEN_OK: the user approved */
  DEVICE_POLL_PENDING,    /* authorization_pending: poll again at the interval */
  DEVICE_POLL_SLOW_DOWN,  /* slow_down: interval + 5 s, then poll again */
  DEVICE_POLL_DENIED,     /* access_denied: the user said no */
  DEVICE_POLL_EXPIRED,    /* expired_token: the device code expired */
  DEVICE_POLL_OTHER,      /* anything else: the outcome decides */
} device_poll_t;

device_poll_t device_poll_classify(const token_result_t *tok);

#endif
