/*
 * The device authorization grant's responses (RFC 8628); see device.h.
 * The failure path is token_parse()'s, so an error answer of the device
 * authorization endpoint is bounded, sanitised and classified exactly as
 * a token endpoint's.
 */
#include "oauth/device.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "base/mem.h"

void device_auth_free(device_auth_t *d)
{
  if (d == NULL)
    return;
  free_secret(d->device_code);
  free(d->user_code);
  free(d->verification_uri);
  free(d->verification_uri_complete);
  memset(d, 0, sizeof *d);
}

static bool printable(const char *s, size_t max)
{
  size_t n = strlen(s);
  if (n == 0 || n > max)
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
      return false;
  return true;
}

static bool http_url(const char *s)
{
  return printable(s, DEVICE_URI_MAX) && strchr(s, ' ') == NULL &&
         (strncasecmp(s, "https://", 8) == 0 || strncasecmp(s, "http://", 7) == 0);
}

static const char *str_member(const json_t *o, const char *k)
{
  const json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A whole number of seconds from a number or numeric string (token.h's
 * rule); -1 when absent or unusable. */
static int64_t seconds(const json_t *o, const char *k)
{
  const json_t *v = json_object_get(o, k);
  int64_t s = 0;
  if (v == NULL || token_seconds(v, &s) != 0 || s <= 0)
    return -1;
  return s;
}

static token_outcome_t malformed(const token_input_t *in, token_result_t *err, const char *member)
{
  memset(err, 0, sizeof *err);
  err->outcome = TOKEN_TRANSIENT;
  err->http_status = in->status;
  err->error = xstrdup(TOKEN_ERR_INVALID_RESPONSE);
  char m[128];
  snprintf(m, sizeof m, "the device authorization response has no usable %s", member);
  err->error_description = xstrdup(m);
  return TOKEN_TRANSIENT;
}

token_outcome_t device_auth_parse(const token_input_t *in, device_auth_t *out, token_result_t *err)
{
  memset(out, 0, sizeof *out);
  memset(err, 0, sizeof *err);
  json_t *o = NULL;
  if (in->status >= 200 && in->status < 300 && in->body != NULL && in->body_len > 0)
    o = json_loadb(in->body, in->body_len, 0, NULL);
  if (!json_is_object(o) || json_object_get(o, "error") != NULL) {
    json_decref(o);
    /* An error answer (or no JSON): classified as a token answer. A 2xx
     * without a provider error is this endpoint's malformed answer. */
    token_outcome_t oc = token_parse(in, err);
    if (oc == TOKEN_OK || (in->status >= 200 && in->status < 300 && !err->error_from_provider)) {
      token_result_free(err);
      return malformed(in, err, "device_code");
    }
    return oc;
  }
  const char *dc = str_member(o, "device_code"), *uc = str_member(o, "user_code");
  const char *vu = str_member(o, "verification_uri");
  if (vu == NULL)
    vu = str_member(o, "verification_url"); /* Google's spelling */
  const char *vc = str_member(o, "verification_uri_complete");
  int64_t exp = seconds(o, "expires_in"), iv = seconds(o, "interval");
  const char *bad = dc == NULL || !printable(dc, TOKEN_MAX_LEN)          ? "device_code"
                    : uc == NULL || !printable(uc, DEVICE_USER_CODE_MAX) ? "user_code"
                    : vu == NULL || !http_url(vu)                        ? "verification_uri"
                    : vc != NULL && !http_url(vc) ? "verification_uri_complete"
                    : exp <= 0                    ? "expires_in"
                    : json_object_get(o, "interval") != NULL && iv <= 0 ? "interval"
                                                                        : NULL;
  if (bad != NULL) {
    json_decref(o);
    return malformed(in, err, bad);
  }
  if (exp > TOKEN_MAX_LIFETIME_S)
    exp = TOKEN_MAX_LIFETIME_S;
  out->device_code = xstrdup(dc);
  out->user_code = xstrdup(uc);
  out->verification_uri = xstrdup(vu);
  out->verification_uri_complete = vc ? xstrdup(vc) : NULL;
  out->expires_at = in->now_ms + exp * 1000;
  out->interval = (int32_t)(iv <= 0                      ? DEVICE_DEFAULT_INTERVAL_S
                            : iv > DEVICE_MAX_INTERVAL_S ? DEVICE_MAX_INTERVAL_S
                                                         : iv);
  err->outcome = TOKEN_OK;
  err->http_status = in->status;
  json_decref(o);
  return TOKEN_OK;
}

device_poll_t device_poll_classify(const token_result_t *tok)
{
  if (tok->outcome == TOKEN_OK)
    return DEVICE_POLL_TOKENS;
  const char *e = tok->error_from_provider ? tok->error : NULL;
  if (e == NULL)
    return DEVICE_POLL_OTHER;
  if (strcmp(e, "authorization_pending") == 0)
    return DEVICE_POLL_PENDING;
  if (strcmp(e, "slow_down") == 0)
    return DEVICE_POLL_SLOW_DOWN;
  if (strcmp(e, "access_denied") == 0)
    return DEVICE_POLL_DENIED;
  if (strcmp(e, "expired_token") == 0)
    return DEVICE_POLL_EXPIRED;
  return DEVICE_POLL_OTHER;
}
