/*
 * fuzz_token.c - the token-endpoint response parser (oauth/token.h) on
 * arbitrary responses: status, Content-Type, Retry-After, the provider's
 * default lifetime and the body (JSON, form or anything else).
 *
 * Input: four lines (status, Content-Type, Retry-After, default
 * expires_in; an empty line means "absent"), then the body bytes.
 *
 * Properties:
 * - the outcome is one of the four, and the result follows token.h: an
 *   accepted response has a bounded printable access token (refresh token
 *   likewise), a token type, no error; a refused one has no token and a
 *   bounded, sanitised error code and description; Retry-After is capped at
 *   7 days; extra is a JSON object within TOKEN_EXTRA_MAX;
 * - an accepted token survives the store: sealed into a connection record,
 *   encoded and decoded, it comes back byte for byte (and so do the refresh
 *   token, type, scopes, expiry and extra);
 * - the revocation parser never yields token fields;
 * - nothing logged while parsing contains a token from the input.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_support.h"
#include "oauth/token.h"
#include "store/record.h"
#include "store/seal.h"

#define NOW 1700000000000LL
#define WEEK_MS (7LL * 24 * 3600 * 1000)

static seal_keyring_t *kr;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  kr = fuzz_keyring(0x5a);
  fuzz_log_capture();
  return 0;
}

/* The next line of [*p, end) as a NUL-terminated copy (NULL when empty). */
static char *line(const char **p, const char *end)
{
  const char *nl = memchr(*p, '\n', (size_t)(end - *p));
  const char *le = nl ? nl : end;
  size_t n = (size_t)(le - *p);
  char *s = NULL;
  if (n > 0) {
    s = malloc(n + 1);
    memcpy(s, *p, n);
    s[n] = '\0';
  }
  *p = nl ? nl + 1 : end;
  return s;
}

static int printable(const char *s, size_t max)
{
  size_t n = strlen(s);
  if (n == 0 || n > max)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
      return 0;
  return 1;
}

static int error_charset(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > TOKEN_ERROR_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
      return 0;
  }
  return 1;
}

static int clean_utf8(const char *s, size_t max)
{
  size_t n = strlen(s);
  if (n > max)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return 0;
  json_t *j = json_stringn(s, n); /* NULL when not valid UTF-8 */
  int ok = j != NULL;
  json_decref(j);
  return ok;
}

static int same(const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static void check_roundtrip(token_result_t *r)
{
  conn_t c;
  memset(&c, 0, sizeof c);
  c.id = "conn-1";
  c.tenant = "t";
  c.provider = "p";
  c.grant = GRANT_REFRESH_TOKEN;
  c.status = CONN_ACTIVE;
  c.access_token = r->access_token;
  c.refresh_token = r->refresh_token;
  c.token_type = r->token_type;
  c.expires_at = r->expires_at;
  c.refresh_token_expires_at = r->refresh_token_expires_at;
  c.scopes = r->scopes;
  c.extra_json = r->extra_json;
  buf_t b = BUF_INIT;
  fuzz_check(conn_encode(&c, kr, &b) == 0, "an accepted token encodes");
  conn_t d;
  fuzz_check(conn_decode(b.data, b.len, "conn-1", 6, kr, &d) == 0, "and decodes");
  fuzz_check(same(d.access_token, c.access_token) && same(d.refresh_token, c.refresh_token) &&
               same(d.token_type, c.token_type) && same(d.extra_json, c.extra_json) &&
               d.expires_at == c.expires_at &&
               d.refresh_token_expires_at == c.refresh_token_expires_at && d.scopes.n == c.scopes.n,
             "the stored token comes back unchanged");
  for (size_t i = 0; i < d.scopes.n; i++)
    fuzz_check(strcmp(d.scopes.items[i], c.scopes.items[i]) == 0, "scopes come back");
  /* Sealed: the token's bytes are not in the value, unless the same text
   * is also in a field stored in clear (an extra member named like it). */
  size_t atn = strlen(c.access_token);
  int elsewhere = (c.extra_json && strstr(c.extra_json, c.access_token)) ||
                  (c.token_type && strstr(c.token_type, c.access_token));
  for (size_t i = 0; i < c.scopes.n; i++)
    elsewhere |= strstr(c.scopes.items[i], c.access_token) != NULL;
  fuzz_check(atn < 8 || elsewhere || !fuzz_contains(b.data, b.len, c.access_token, atn),
             "the access token is not stored in clear");
  conn_free(&d);
  buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *p = (const char *)data, *end = p + size;
  char *status = line(&p, end), *ct = line(&p, end), *ra = line(&p, end);
  char *dexp = line(&p, end);
  token_input_t in;
  memset(&in, 0, sizeof in);
  in.status = status ? atoi(status) : 200;
  in.content_type = ct;
  in.retry_after = ra;
  in.default_expires_in = dexp ? strtoll(dexp, NULL, 10) : 0;
  in.now_ms = NOW;
  in.body = p;
  in.body_len = (size_t)(end - p);

  token_result_t r;
  token_outcome_t o = token_parse(&in, &r);
  fuzz_check(o == r.outcome && (unsigned)o < TOKEN_OUTCOME_COUNT, "outcome");
  fuzz_check(r.retry_after_ms >= 0 && r.retry_after_ms <= WEEK_MS, "Retry-After bounds");
  if (o == TOKEN_OK) {
    fuzz_check(r.access_token && printable(r.access_token, TOKEN_MAX_LEN), "access token");
    fuzz_check(!r.refresh_token || printable(r.refresh_token, TOKEN_MAX_LEN), "refresh token");
    fuzz_check(r.token_type != NULL && r.error == NULL, "type, no error");
    if (r.extra_json != NULL) {
      json_t *x = json_loads(r.extra_json, 0, NULL);
      fuzz_check(x != NULL && json_is_object(x) && strlen(r.extra_json) <= TOKEN_EXTRA_MAX,
                 "extra is a bounded JSON object");
      json_decref(x);
    }
    check_roundtrip(&r);
  } else {
    fuzz_check(r.access_token == NULL && r.refresh_token == NULL, "no token on failure");
    fuzz_check(r.error && error_charset(r.error), "error code bounded and sanitised");
    fuzz_check(!r.error_description || clean_utf8(r.error_description, TOKEN_DESC_MAX),
               "description bounded and clean");
  }
  buf_t log = BUF_INIT;
  fuzz_log_take(&log);
  if (r.access_token && strlen(r.access_token) >= 8)
    fuzz_check(!fuzz_contains(log.data, log.len, r.access_token, strlen(r.access_token)),
               "the access token is never logged");
  if (r.refresh_token && strlen(r.refresh_token) >= 8)
    fuzz_check(!fuzz_contains(log.data, log.len, r.refresh_token, strlen(r.refresh_token)),
               "the refresh token is never logged");
  buf_free(&log);
  token_result_free(&r);

  token_outcome_t ro = token_parse_revocation(&in, &r);
  fuzz_check((unsigned)ro < TOKEN_OUTCOME_COUNT && r.access_token == NULL &&
               r.refresh_token == NULL,
             "revocation yields no token");
  token_result_free(&r);
  free(status);
  free(ct);
  free(ra);
  free(dexp);
  return 0;
}
