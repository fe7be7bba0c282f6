/*
 * Token endpoint response parsing and failure classification; see token.h.
 *
 * The parser normalises whatever arrived (JSON object, form body, HTML,
 * nothing) into one JSON object or none, so every field rule below is written
 * once. The decision transient/permanent lives in one table, `rules`, read
 * top to bottom: status rows first, because a server in trouble may say
 * anything in its body and a wrong "permanent" verdict forces users to
 * reconnect, while a wrong "transient" one only costs capped retries.
 *
 * Everything read from the provider is bounded and sanitised here, because
 * it flows on into HTTP headers (tokens), logs and JSON API answers (error
 * codes and descriptions).
 */
#include "oauth/token.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/url.h"

/* Longest accepted lifetime (10 years) and Retry-After (7 days), so that
 * arithmetic on them can never overflow and a silly value cannot park a
 * connection forever. */
#define MAX_LIFETIME_S (10LL * 365 * 24 * 3600)
#define MAX_RETRY_AFTER_S (7LL * 24 * 3600)
#define MAX_SCOPES 1024
/* Numbers are clamped here first: large enough for epoch milliseconds, small
 * enough that multiplying by 1000 cannot overflow int64. */
#define MAX_NUMBER 1000000000000000LL

/* ---- the classification table ------------------------------------------ */

/* How a rule matches the response's error code. */
enum {
  C_NONE, /* the response has no error code */
  C_ANY,  /* whatever the code, or none */
  C_SOME, /* any code */
  C_IS,   /* exactly `code` (case-insensitive) */
};

typedef struct {
  int lo, hi;        /* HTTP status range, inclusive */
  int match;         /* C_* */
  const char *code;  /* for C_IS */
  bool need_token;   /* also requires a usable access token */
  token_outcome_t outcome;
} rule_t;

#define ANY_STATUS 0, 999
#define CODE(c, o) {ANY_STATUS, C_IS, c, false, o}

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
  CODE("consent_required", TOKEN_REAUTH),      /* OpenID Connect */
  CODE("interaction_required", TOKEN_REAUTH),
  CODE("login_required", TOKEN_REAUTH),
  /* The client configuration is rejected: an operator has to act. */
  CODE("invalid_client", TOKEN_CONFIG),
  CODE("unauthorized_client", TOKEN_CONFIG),
  CODE("unsupported_grant_type", TOKEN_CONFIG),
  CODE("invalid_scope", TOKEN_CONFIG),
  CODE("unsupported_response_type", TOKEN_CONFIG),
  CODE("incorrect_client_credentials", TOKEN_CONFIG), /* GitHub */
  CODE("redirect_uri_mismatch", TOKEN_CONFIG),        /* GitHub */
  CODE("invalid_request", TOKEN_CONFIG), /* malformed as configured */
  /* The provider asks us to come back later. */
  CODE("temporarily_unavailable", TOKEN_TRANSIENT),
  CODE("server_error", TOKEN_TRANSIENT),
  CODE("slow_down", TOKEN_TRANSIENT),
  CODE("authorization_pending", TOKEN_TRANSIENT),
  /* An error code we do not know, on a 2xx or a 4xx. */
  {ANY_STATUS, C_SOME, NULL, false, TOKEN_CONFIG},
  /* No error code at all. */
  {200, 299, C_NONE, NULL, true, TOKEN_OK},
  {200, 299, C_NONE, NULL, false, TOKEN_TRANSIENT}, /* malformed success */
  {401, 401, C_NONE, NULL, false, TOKEN_CONFIG},    /* client auth failed */
  {400, 400, C_NONE, NULL, false, TOKEN_TRANSIENT}, /* caller caps retries */
  {403, 403, C_NONE, NULL, false, TOKEN_TRANSIENT},
  {300, 499, C_NONE, NULL, false, TOKEN_CONFIG},    /* wrong URL, proxy */
  {ANY_STATUS, C_ANY, NULL, false, TOKEN_TRANSIENT},
};

static token_outcome_t classify(int status, const char *code, bool token_ok)
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
  case 0:
    return TOKEN_OK;
  case GRANTD_ETLS_UNTRUSTED:
  case GRANTD_ETLS_HOSTNAME:
  case GRANTD_ETLS_EXPIRED:
  case GRANTD_EINSECURE_URL:
  case GRANTD_EBAD_URL:
  case GRANTD_ECONFIG:
  case GRANTD_EINVALID:
    return TOKEN_CONFIG;
  default:
    return TOKEN_TRANSIENT;
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
  static const char *const names[] = {"Jan", "Feb", "Mar", "Apr",
                                      "May", "Jun", "Jul", "Aug",
                                      "Sep", "Oct", "Nov", "Dec"};
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
  if (sscanf(s, "%15[A-Za-z], %2d %3s %4d %2d:%2d:%2d GMT%n", wk, &d, mon,
             &y, &H, &M, &S, &n) == 7 && n > 0 && s[n] == '\0') {
    /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
  } else if (n = 0, sscanf(s, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT%n",
                           wk, &d, mon, &y, &H, &M, &S, &n) == 7 &&
             n > 0 && s[n] == '\0') {
    /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT; a two-digit year is in
     * 1970..2069 (RFC 9110 says: no more than 50 years in the future). */
    y += y < 70 ? 2000 : 1900;
  } else if (n = 0, sscanf(s, "%15[A-Za-z] %3s %2d %2d:%2d:%2d %4d%n", wk,
                           mon, &d, &H, &M, &S, &y, &n) == 7 &&
             n > 0 && s[n] == '\0') {
    /* asctime: Sun Nov  6 08:49:37 1994 */
  } else {
    return GRANTD_EINVALID;
  }
  int m = month_index(mon);
  if (m == 0 || d < 1 || d > 31 || y < 1970 || y > 9999 || H < 0 ||
      H > 23 || M < 0 || M > 59 || S < 0 || S > 60)
    return GRANTD_EINVALID;
  int64_t days = days_from_civil(y, m, d);
  *out_ms = ((days * 24 + H) * 60 + M) * 60000LL + S * 1000LL;
  return 0;
}

/* Retry-After as a delay in ms from now, capped; 0 when absent or invalid. */
static int64_t parse_retry_after(const char *v, int64_t now_ms)
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
  return delay_ms > MAX_RETRY_AFTER_S * 1000 ? MAX_RETRY_AFTER_S * 1000
                                             : delay_ms;
}

/* ---- body parsing -------------------------------------------------------- */

enum { KIND_OTHER, KIND_JSON, KIND_FORM };

static int content_kind(const char *ct)
{
  if (ct == NULL)
    return KIND_OTHER;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  size_t n = strcspn(ct, ";");
  while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
    n--;
  if ((n == 16 && strncasecmp(ct, "application/json", n) == 0) ||
      (n == 9 && strncasecmp(ct, "text/json", n) == 0) ||
      (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0))
    return KIND_JSON;
  if (n == 33 && strncasecmp(ct, "application/x-www-form-urlencoded", n) == 0)
    return KIND_FORM;
  return KIND_OTHER;
}

/* First byte after leading whitespace, or 0 for a blank body. */
static char first_byte(const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!isspace((unsigned char)p[i]))
      return p[i];
  return 0;
}

/* A form body: visible ASCII only (after trimming trailing whitespace),
 * at least one '=', and not starting like markup or JSON. */
static bool looks_like_form(const char *p, size_t n)
{
  while (n > 0 && isspace((unsigned char)p[n - 1]))
    n--;
  if (n == 0 || p[0] == '<' || p[0] == '{' || p[0] == '[' || p[0] == '=')
    return false;
  bool eq = false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c <= 0x20 || c >= 0x7f)
      return false;
    eq |= c == '=';
  }
  return eq;
}

static json_t *parse_json_object(const char *p, size_t n)
{
  json_t *v = NULL;
  if (json_parse(p, n, &v) != 0)
    return NULL;
  if (!json_is_object(v)) {
    json_decref(v);
    return NULL;
  }
  return v;
}

/* A form body as a JSON object of strings. Repeated keys make it invalid
 * (RFC 6749 section 3.2); pairs that are not valid UTF-8 are dropped. */
static json_t *parse_form_object(const char *p, size_t n)
{
  while (n > 0 && isspace((unsigned char)p[n - 1]))
    n--;
  form_t f = FORM_INIT;
  if (form_parse(p, n, &f) != 0)
    return NULL;
  json_t *obj = json_object();
  for (size_t i = 0; i < f.n && obj != NULL; i++) {
    if (json_object_get(obj, f.items[i].key) != NULL) {
      json_decref(obj);
      obj = NULL;
      break;
    }
    /* json_string() refuses invalid UTF-8 and json_object_set_new() an
     * invalid key (releasing the value): such pairs are dropped. */
    json_t *s = json_string(f.items[i].val);
    if (s != NULL)
      json_object_set_new(obj, f.items[i].key, s);
  }
  form_free(&f);
  if (obj != NULL && json_object_size(obj) == 0) {
    json_decref(obj);
    obj = NULL;
  }
  return obj;
}

static json_t *parse_body(const token_input_t *in)
{
  const char *p = in->body;
  size_t n = p ? in->body_len : 0;
  if (n == 0)
    return NULL;
  int kind = content_kind(in->content_type);
  char first = first_byte(p, n);
  json_t *obj = NULL;
  if (kind == KIND_FORM && first != '{' && first != '<') {
    obj = parse_form_object(p, n);
  } else if (kind == KIND_JSON || first == '{') {
    obj = parse_json_object(p, n);
    if (obj == NULL && looks_like_form(p, n))
      obj = parse_form_object(p, n);
  } else if (looks_like_form(p, n)) {
    obj = parse_form_object(p, n);
  }
  return obj;
}

/* Overwrites every top-level string value (tokens, id_token) before the
 * object is released; jansson itself frees without wiping. */
static void wipe_json_strings(json_t *obj)
{
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    if (json_is_string(v))
      mem_wipe((char *)json_string_value(v), json_string_length(v));
  }
}

/* ---- field helpers ------------------------------------------------------- */

/* The RFC 6749 appendix A charset for error codes is %x20-21 / %x23-5B /
 * %x5D-7E; anything else becomes '_', and the code is cut short. */
static char *sanitize_code(const char *s)
{
  size_t n = strlen(s);
  if (n > TOKEN_ERROR_MAX)
    n = TOKEN_ERROR_MAX;
  char *c = xstrndup(s, n);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)c[i];
    if (ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\')
      c[i] = '_';
  }
  return c;
}

/* Descriptions are valid UTF-8 already (they came through jansson); cut at
 * a character boundary and blank out control characters. */
static char *sanitize_desc(const char *s)
{
  size_t n = strlen(s);
  if (n > TOKEN_DESC_MAX) {
    n = TOKEN_DESC_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
      n--;
  }
  char *d = xstrndup(s, n);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)d[i] < 0x20 || d[i] == 0x7f)
      d[i] = ' ';
  return d;
}

/* Why a token string is unusable, or NULL when it is fine (VSCHAR only,
 * bounded: it will be put into Authorization headers verbatim). */
static const char *token_problem(const char *t)
{
  size_t n = strlen(t);
  if (n > TOKEN_MAX_LEN)
    return "longer than 16384 bytes";
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] > 0x7e)
      return "has characters outside %x20-7E";
  return NULL;
}

/* A non-negative number of seconds from a JSON integer, real or numeric
 * string ("3600", " 3600 ", "3600.5"). Returns 0 and *out, or -1. */
static int get_seconds(const json_t *v, int64_t *out)
{
  double d;
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    if (i < 0)
      return -1;
    *out = i > MAX_NUMBER ? MAX_NUMBER : (int64_t)i;
    return 0;
  }
  if (json_is_real(v)) {
    d = json_real_value(v);
  } else if (json_is_string(v)) {
    const char *s = json_string_value(v);
    while (*s == ' ')
      s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
      n--;
    if (n == 0 || n > 24)
      return -1;
    size_t dots = 0;
    for (size_t i = 0; i < n; i++) {
      if (s[i] == '.')
        dots++;
      else if (!isdigit((unsigned char)s[i]))
        return -1;
    }
    if (dots > 1 || s[0] == '.' || s[n - 1] == '.')
      return -1;
    char tmp[25];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    d = strtod(tmp, NULL);
  } else {
    return -1;
  }
  if (!isfinite(d) || d < 0)
    return -1;
  if (d > (double)MAX_NUMBER)
    d = (double)MAX_NUMBER;
  *out = (int64_t)d;
  return 0;
}

/* A relative lifetime member (seconds) as an absolute time in ms; 0 when
 * absent, invalid or not positive. */
static int64_t lifetime_at(const json_t *obj, const char *key, int64_t now)
{
  int64_t s;
  json_t *v = json_object_get(obj, key);
  if (v == NULL || get_seconds(v, &s) != 0 || s <= 0)
    return 0;
  if (s > MAX_LIFETIME_S)
    s = MAX_LIFETIME_S;
  return now + s * 1000;
}

/* An absolute expires_at: epoch seconds (or ms when it is that large) as a
 * number or numeric string, or an RFC 3339 string. 0 when unusable or
 * already past. */
static int64_t absolute_at(const json_t *obj, int64_t now)
{
  json_t *v = json_object_get(obj, "expires_at");
  int64_t t = 0, ms;
  if (v == NULL)
    return 0;
  if (get_seconds(v, &t) == 0) {
    ms = t > 100000000000LL ? t : t * 1000; /* > year 5138 in s: it is ms */
  } else if (json_is_string(v) &&
             clock_parse_rfc3339(json_string_value(v), json_string_length(v),
                                 &ms) == 0) {
    /* parsed */
  } else {
    return 0;
  }
  if (ms <= now)
    return 0;
  return ms > now + MAX_LIFETIME_S * 1000 ? now + MAX_LIFETIME_S * 1000 : ms;
}

static void scopes_push(strlist_t *l, const char *s, size_t n)
{
  if (n == 0 || l->n >= MAX_SCOPES)
    return;
  l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
  l->items[l->n++] = xstrndup(s, n);
}

static void scopes_split(strlist_t *l, const char *s)
{
  while (*s) {
    size_t n = strcspn(s, " ,");
    scopes_push(l, s, n);
    s += n;
    if (*s)
      s++;
  }
}

/* scope as a string ("a b", "a,b") or an array of strings. */
static void read_scopes(const json_t *obj, token_result_t *out)
{
  json_t *v = json_object_get(obj, "scope");
  if (json_is_string(v)) {
    if (json_string_length(v) > TOKEN_MAX_LEN)
      return;
    out->has_scope = true;
    scopes_split(&out->scopes, json_string_value(v));
  } else if (json_is_array(v)) {
    size_t i;
    json_t *e;
    out->has_scope = true;
    json_array_foreach(v, i, e) {
      if (json_is_string(e) && json_string_length(e) <= TOKEN_MAX_LEN)
        scopes_split(&out->scopes, json_string_value(e));
    }
  }
}

/* Members the parser consumes; everything else goes to extra. */
static const char *const consumed[] = {
  "access_token", "refresh_token", "token_type", "expires_in", "expires",
  "expires_at", "refresh_token_expires_in", "x_refresh_token_expires_in",
  "refresh_expires_in", "scope", "error", "error_description", "error_uri",
  NULL,
};

static bool is_consumed(const char *k)
{
  for (const char *const *c = consumed; *c; c++)
    if (strcmp(*c, k) == 0)
      return true;
  return false;
}

/* JSON text of the unconsumed members, at most TOKEN_EXTRA_MAX bytes:
 * members are taken in order and one that would not fit is skipped. */
static char *build_extra(const json_t *obj)
{
  json_t *extra = json_object();
  buf_t tmp = BUF_INIT;
  size_t total = 2; /* the braces */
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) {
    if (is_consumed(k))
      continue;
    /* Compact encoding of one member: "key":value plus a comma. */
    json_t *ks = json_string(k);
    buf_reset(&tmp);
    int rc = json_dump_buf(ks, &tmp);
    json_decref(ks);
    if (rc != 0 || json_dump_buf(v, &tmp) != 0)
      continue;
    size_t add = tmp.len + 1 + (json_object_size(extra) > 0 ? 1 : 0);
    if (total + add > TOKEN_EXTRA_MAX)
      continue;
    total += add;
    json_object_set(extra, k, v);
  }
  buf_wipe_free(&tmp);
  char *text = NULL;
  if (json_object_size(extra) > 0) {
    buf_t b = BUF_INIT;
    if (json_dump_buf(extra, &b) == 0)
      text = buf_steal(&b);
    buf_free(&b);
  }
  json_decref(extra);
  return text;
}

/* ---- the parser ---------------------------------------------------------- */

static void fail(token_result_t *out, const char *code, bool from_provider,
                 const char *desc)
{
  out->error = from_provider ? sanitize_code(code) : xstrdup(code);
  out->error_from_provider = from_provider;
  out->error_description = desc ? sanitize_desc(desc) : NULL;
}

/* Describes a body that carried no error code, for the synthesized error. */
static void describe_body(const token_input_t *in, const json_t *obj,
                          char *buf, size_t cap)
{
  const char *what;
  if (obj != NULL)
    what = "a body without an error code";
  else if (in->body == NULL || first_byte(in->body, in->body_len) == 0)
    what = "an empty body";
  else if (first_byte(in->body, in->body_len) == '<')
    what = "an HTML body";
  else
    what = "a body that is neither a JSON object nor a form";
  snprintf(buf, cap, "HTTP %d with %s", in->status, what);
}

static token_outcome_t parse(const token_input_t *in, token_result_t *out,
                             bool revocation)
{
  memset(out, 0, sizeof(*out));
  out->http_status = in->status;
  out->retry_after_ms = parse_retry_after(in->retry_after, in->now_ms);
  if (revocation && in->status >= 200 && in->status <= 299)
    return out->outcome = TOKEN_OK;

  json_t *obj = parse_body(in);

  /* An error member (non-empty, not null/false) means failure. */
  const char *code = NULL;
  bool has_error = false;
  json_t *ev = obj ? json_object_get(obj, "error") : NULL;
  if (json_is_string(ev) && json_string_length(ev) > 0) {
    code = json_string_value(ev);
    has_error = true;
  } else if (ev != NULL && !json_is_null(ev) && !json_is_false(ev) &&
             !json_is_string(ev)) {
    code = "unknown_error"; /* e.g. {"error": {"message": ...}} */
    has_error = true;
  }
  const char *desc = obj ? json_get_str(obj, "error_description") : NULL;
  if (desc == NULL && json_is_object(ev))
    desc = json_get_str(ev, "message");

  /* Is there a usable access token (and, if sent, refresh token)? */
  const char *at = obj ? json_get_str(obj, "access_token") : NULL;
  const char *rt = obj ? json_get_str(obj, "refresh_token") : NULL;
  if (rt != NULL && *rt == '\0')
    rt = NULL;
  char why[128] = "";
  if (at == NULL || *at == '\0')
    snprintf(why, sizeof why, "HTTP %d without access_token", in->status);
  else if (token_problem(at))
    snprintf(why, sizeof why, "access_token %s", token_problem(at));
  else if (rt != NULL && token_problem(rt))
    snprintf(why, sizeof why, "refresh_token %s", token_problem(rt));
  bool token_ok = why[0] == '\0';

  out->outcome = classify(in->status, code, token_ok);
  if (out->outcome != TOKEN_OK) {
    if (has_error) {
      fail(out, code, true, desc);
    } else {
      bool ok_status = in->status >= 200 && in->status <= 299;
      char what[128];
      describe_body(in, obj, what, sizeof what);
      fail(out, ok_status ? TOKEN_ERR_INVALID_RESPONSE : TOKEN_ERR_HTTP,
           false, ok_status && obj != NULL ? why : what);
    }
    goto done;
  }

  out->access_token = xstrdup(at);
  out->refresh_token = rt ? xstrdup(rt) : NULL;
  const char *tt = json_get_str(obj, "token_type");
  if (tt == NULL || *tt == '\0' || strcasecmp(tt, "bearer") == 0)
    out->token_type = xstrdup("Bearer");
  else
    out->token_type = sanitize_code(tt);

  int64_t now = in->now_ms;
  out->expires_at = lifetime_at(obj, "expires_in", now);
  if (out->expires_at == 0)
    out->expires_at = lifetime_at(obj, "expires", now); /* legacy Facebook */
  if (out->expires_at == 0)
    out->expires_at = absolute_at(obj, now);
  if (out->expires_at == 0 && in->default_expires_in > 0) {
    int64_t d = in->default_expires_in;
    out->expires_at = now + (d > MAX_LIFETIME_S ? MAX_LIFETIME_S : d) * 1000;
  }
  out->refresh_token_expires_at =
    lifetime_at(obj, "refresh_token_expires_in", now);
  if (out->refresh_token_expires_at == 0)
    out->refresh_token_expires_at =
      lifetime_at(obj, "x_refresh_token_expires_in", now); /* QuickBooks */
  if (out->refresh_token_expires_at == 0)
    out->refresh_token_expires_at =
      lifetime_at(obj, "refresh_expires_in", now); /* Keycloak */
  read_scopes(obj, out);
  out->extra_json = build_extra(obj);

done:
  if (obj != NULL) {
    wipe_json_strings(obj);
    json_decref(obj);
  }
  return out->outcome;
}

token_outcome_t token_parse(const token_input_t *in, token_result_t *out)
{
  return parse(in, out, false);
}

token_outcome_t token_parse_revocation(const token_input_t *in,
                                       token_result_t *out)
{
  return parse(in, out, true);
}

void token_result_free(token_result_t *r)
{
  if (r == NULL)
    return;
  free_secret(r->access_token);
  free_secret(r->refresh_token);
  free_secret(r->extra_json);
  free(r->token_type);
  for (size_t i = 0; i < r->scopes.n; i++)
    free(r->scopes.items[i]);
  free(r->scopes.items);
  free(r->error);
  free(r->error_description);
  memset(r, 0, sizeof(*r));
}
