/*
 * Failure classification and Retry-After for token endpoint answers; see
 * token.h for the outcomes and token_int.h for the two entry points.
 *
 * The decision transient/permanent lives in one table, `rules`, read top to
 * bottom: status rows first, because a server in trouble may say anything in
 * its body and a wrong "permanent" verdict forces users to reconnect, while a
 * wrong "transient" one only costs capped retries.
 */
#include "oauth/token_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/mem.h"

/* Longest accepted Retry-After (7 days), so that a silly value cannot park a
 * connection forever. */
#define MAX_RETRY_AFTER_S (7LL * 24 * 3600)

/* ---- the classification table ------------------------------------------ */

/* How a rule matches the response's error code. */
enum {
  C_NONE, /* the response has no error code */
  C_ANY,  /* whatever the code, or none */
  C_SOME, /* any code */
  C_IS,   /* exactly `code` (case-insensitive) */
};

typedef struct {
  int lo, hi;       /* HTTP status range, inclusive */
  int match;        /* C_* */
  const char *code; /* for C_IS */
  bool need_token;  /* also requires a usable access token */
  token_outcome_t outcome;
} rule_t;

#define ANY_STATUS 0, 999
// clang-format off
#define CODE(c, o) {ANY_STATUS, C_IS, c, false, o}
// clang-format on

static const rule_t rules[] = {
  /* A server in trouble: retry, whatever the body says. */
  {408, 408, C_ANY, NULL, false, TOKEN_TRANSIENT},
  {425, 425, C_ANY, NULL, false, TOKEN_TRANSIENT},
  {429, 429, C_ANY, NULL, false, TOKEN_TRANSIENT},
  {500, 599, C_ANY, NULL, false, TOKEN_TRANSIENT},
  /* The grant is gone: the user has to authorize again. */
  CODE("invalid_grant", TOKEN_REAUTH),
  CODE("bad_verification_code", TOKEN_REAUTH), /* GitHub, code exchange */
  CODE("bad_refresh_token", TOKEN_REAUTH),     /* GitHub */
  CODE("invalid_refresh_token", TOKEN_REAUTH),
  CODE("expired_token", TOKEN_REAUTH),
  CODE("token_expired", TOKEN_REAUTH),
  CODE("invalid_token", TOKEN_REAUTH),
  CODE("access_denied", TOKEN_REAUTH),
  CODE("consent_required", TOKEN_REAUTH), /* OpenID Connect */
  CODE("interaction_required", TOKEN_REAUTH),
  CODE("login_required", TOKEN_REAUTH),
  CODE("invalid_code", TOKEN_REAUTH),            /* Slack, code exchange */
  CODE("token_revoked", TOKEN_REAUTH),           /* Slack */
  CODE("authorization_not_found", TOKEN_REAUTH), /* Slack */
  /* The client configuration is rejected: an operator has to act. */
  CODE("invalid_client", TOKEN_CONFIG),
  CODE("unauthorized_client", TOKEN_CONFIG),
  CODE("unsupported_grant_type", TOKEN_CONFIG),
  CODE("invalid_scope", TOKEN_CONFIG),
  CODE("unsupported_response_type", TOKEN_CONFIG),
  CODE("incorrect_client_credentials", TOKEN_CONFIG), /* GitHub */
  CODE("redirect_uri_mismatch", TOKEN_CONFIG),        /* GitHub */
  CODE("invalid_request", TOKEN_CONFIG),              /* malformed as configured */
  /* The provider asks us to come back later. */
  CODE("temporarily_unavailable", TOKEN_TRANSIENT),
  CODE("server_error", TOKEN_TRANSIENT),
  CODE("slow_down", TOKEN_TRANSIENT),
  CODE("authorization_pending", TOKEN_TRANSIENT),
  CODE("internal_error", TOKEN_TRANSIENT), /* Slack, answered with HTTP 200 */
  CODE("fatal_error", TOKEN_TRANSIENT),
  CODE("ratelimited", TOKEN_TRANSIENT),
  CODE("request_timeout", TOKEN_TRANSIENT),
  CODE("service_unavailable", TOKEN_TRANSIENT),
  /* An error code we do not know, on a 2xx or a 4xx. */
  {ANY_STATUS, C_SOME, NULL, false, TOKEN_CONFIG},
  /* No error code at all. */
  {200, 299, C_NONE, NULL, true, TOKEN_OK},
  {200, 299, C_NONE, NULL, false, TOKEN_TRANSIENT}, /* malformed success */
  {401, 401, C_NONE, NULL, false, TOKEN_CONFIG},    /* client auth failed */
  {400, 400, C_NONE, NULL, false, TOKEN_TRANSIENT}, /* caller caps retries */
  {403, 403, C_NONE, NULL, false, TOKEN_TRANSIENT},
  {300, 499, C_NONE, NULL, false, TOKEN_CONFIG}, /* wrong URL, proxy */
  {ANY_STATUS, C_ANY, NULL, false, TOKEN_TRANSIENT},
};

token_outcome_t token__classify(int status, const char *code, bool token_ok)
{
  for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
    const rule_t *r = &rules[i];
    if (status < r->lo || status > r->hi)
      continue;
    if (r->match == C_NONE && code != NULL)
      continue;
    if (r->match == C_SOME && code == NULL)
      continue;
    if (r->match == C_IS && (code == NULL || strcasecmp(code, r->code) != 0))
      continue;
    if (r->need_token && !token_ok)
      continue;
    return r->outcome;
  }
  return TOKEN_TRANSIENT; /* unreachable: the last rule matches everything */
}

const char *token_outcome_name(token_outcome_t o)
{
  switch (o) {
  case TOKEN_OK: return "ok";
  case TOKEN_TRANSIENT: return "transient";
  case TOKEN_REAUTH: return "reauth";
  case TOKEN_CONFIG: return "config";
  }
  return "unknown";
}

token_outcome_t token_outcome_for_error(int neterr)
{
  switch (neterr) {
  case 0: return TOKEN_OK;
  case GRANTD_ETLS_UNTRUSTED:
  case GRANTD_ETLS_HOSTNAME:
  case GRANTD_ETLS_EXPIRED:
  case GRANTD_EINSECURE_URL:
  case GRANTD_EENDPOINT_FORBIDDEN:
  case GRANTD_EBAD_URL:
  case GRANTD_ECONFIG:
  case GRANTD_EINVALID: return TOKEN_CONFIG;
  default: return TOKEN_TRANSIENT;
  }
}

/* ---- Retry-After --------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so no time zone or libc state is involved. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int month_index(const char *m)
{
  static const char *const names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; i++)
    if (strcmp(m, names[i]) == 0)
      return i + 1;
  return 0;
}

/* Parses an HTTP-date (RFC 9110 section 5.6.7: IMF-fixdate, and the
 * obsolete RFC 850 and asctime forms recipients must accept). */
static int parse_http_date(const char *s, int64_t *out_ms)
{
  char wk[16], mon[4];
  int d, y, H, M, S, n = 0;
  if (sscanf(s, "%15[A-Za-z], %2d %3s %4d %2d:%2d:%2d GMT%n", wk, &d, mon, &y, &H, &M, &S, &n) ==
        7 &&
      n > 0 && s[n] == '\0') {
    /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
  } else if (n = 0, sscanf(s, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT%n", wk, &d, mon, &y, &H, &M,
                           &S, &n) == 7 &&
                      n > 0 && s[n] == '\0') {
    /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT; a two-digit year is in
     * 1970..2069 (RFC 9110 says: no more than 50 years in the future). */
    y += y < 70 ? 2000 : 1900;
  } else if (n = 0, sscanf(s, "%15[A-Za-z] %3s %2d %2d:%2d:%2d %4d%n", wk, mon, &d, &H, &M, &S, &y,
                           &n) == 7 &&
                      n > 0 && s[n] == '\0') {
    /* asctime: Sun Nov  6 08:49:37 1994 */
  } else {
    return GRANTD_EINVALID;
  }
  int m = month_index(mon);
  if (m == 0 || d < 1 || d > 31 || y < 1970 || y > 9999 || H < 0 || H > 23 || M < 0 || M > 59 ||
      S < 0 || S > 60)
    return GRANTD_EINVALID;
  int64_t days = days_from_civil(y, m, d);
  *out_ms = ((days * 24 + H) * 60 + M) * 60000LL + S * 1000LL;
  return 0;
}

/* Retry-After as a delay in ms from now, capped; 0 when absent or invalid. */
int64_t token__retry_after_ms(const char *v, int64_t now_ms)
{
  if (v == NULL)
    return 0;
  while (*v == ' ' || *v == '\t')
    v++;
  size_t n = strlen(v);
  while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    n--;
  if (n == 0 || n > 64)
    return 0;
  char tmp[65];
  memcpy(tmp, v, n);
  tmp[n] = '\0';
  int64_t delay_ms;
  if (isdigit((unsigned char)tmp[0])) {
    int64_t s = 0;
    for (size_t i = 0; i < n; i++) {
      if (!isdigit((unsigned char)tmp[i]))
        return 0;
      if (s <= MAX_RETRY_AFTER_S)
        s = s * 10 + (tmp[i] - '0');
    }
    delay_ms = (s > MAX_RETRY_AFTER_S ? MAX_RETRY_AFTER_S : s) * 1000;
  } else {
    int64_t at;
    if (parse_http_date(tmp, &at) != 0)
      return 0;
    delay_ms = at - now_ms;
  }
  if (delay_ms < 0)
    return 0;
  return delay_ms > MAX_RETRY_AFTER_S * 1000 ? MAX_RETRY_AFTER_S * 1000 : delay_ms;
}
