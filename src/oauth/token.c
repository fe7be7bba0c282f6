/*
 * Token endpoint response parsing and failure classification; see token.h.
 *
 * The parser normalises whatever arrived (JSON object, form body, HTML,
 * nothing) into one JSON object or none, so every field rule below is written
 * once; the verdict transient/permanent comes from the table in
 * token_classify.c.
 *
 * Everything read from the provider is bounded and sanitised here, because
 * it flows on into HTTP headers (tokens), logs and JSON API answers (error
 * codes and descriptions).
 */
#include "oauth/token_int.h"

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

/* Longest accepted lifetime (10 years), so that arithmetic on it can never
 * overflow. */
#define MAX_LIFETIME_S TOKEN_MAX_LIFETIME_S
#define MAX_SCOPES 1024
/* Numbers are clamped here first: large enough for epoch milliseconds, small
 * enough that multiplying by 1000 cannot overflow int64. */
#define MAX_NUMBER 1000000000000000LL

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

/* A JSON number's text: -?digits(.digits)?([eE][+-]?digits)? (leading
 * zeros tolerated). */
static bool is_number_text(const char *s, size_t n)
{
  size_t i = 0, d;
  if (i < n && s[i] == '-')
    i++;
  for (d = i; i < n && isdigit((unsigned char)s[i]); i++)
    ;
  if (i == d)
    return false;
  if (i < n && s[i] == '.') {
    for (d = ++i; i < n && isdigit((unsigned char)s[i]); i++)
      ;
    if (i == d)
      return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    for (d = i; i < n && isdigit((unsigned char)s[i]); i++)
      ;
    if (i == d)
      return false;
  }
  return i == n;
}

int token_seconds(const json_t *v, int64_t *out)
{
  double d;
  *out = 0;
  if (v == NULL || json_is_null(v))
    return 0;
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    *out = i > MAX_NUMBER ? MAX_NUMBER : i < -MAX_NUMBER ? -MAX_NUMBER : (int64_t)i;
    return 0;
  }
  if (json_is_real(v)) {
    d = json_real_value(v);
  } else if (json_is_string(v)) {
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    while (n > 0 && *s == ' ')
      s++, n--;
    while (n > 0 && s[n - 1] == ' ')
      n--;
    if (n == 0 || n > 32 || !is_number_text(s, n))
      return -1;
    char tmp[33];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    d = strtod(tmp, NULL); /* overflow gives +-HUGE_VAL: clamped below */
  } else {
    return -1;
  }
  if (isnan(d))
    return -1;
  *out = d >= (double)MAX_NUMBER ? MAX_NUMBER : d <= -(double)MAX_NUMBER ? -MAX_NUMBER : (int64_t)d;
  return 0;
}

/* A relative lifetime member (seconds) as an absolute time in ms in *at;
 * 0 when absent, null or not positive. Returns -1 when the member is
 * present but not a number of seconds. */
static int lifetime_at(const json_t *obj, const char *key, int64_t now, int64_t *at)
{
  int64_t s;
  *at = 0;
  if (token_seconds(json_object_get(obj, key), &s) != 0)
    return -1;
  if (s > 0)
    *at = now + (s > MAX_LIFETIME_S ? MAX_LIFETIME_S : s) * 1000;
  return 0;
}

/* An absolute expires_at: epoch seconds (or ms when it is that large) as a
 * number or numeric string, or an RFC 3339 string. *at is 0 when absent,
 * null, not positive or already past; -1 when present but none of these. */
static int absolute_at(const json_t *obj, int64_t now, int64_t *at)
{
  json_t *v = json_object_get(obj, "expires_at");
  int64_t t = 0, ms;
  *at = 0;
  if (token_seconds(v, &t) == 0) {
    if (t <= 0)
      return 0;
    ms = t > 100000000000LL ? t : t * 1000; /* > year 5138 in s: it is ms */
  } else if (json_is_string(v) &&
             clock_parse_rfc3339(json_string_value(v), json_string_length(v), &ms) == 0) {
    /* parsed */
  } else {
    return -1;
  }
  if (ms > now)
    *at = ms > now + MAX_LIFETIME_S * 1000 ? now + MAX_LIFETIME_S * 1000 : ms;
  return 0;
}

/* The relative lifetime members, in order of preference per field. */
static const char *const access_lifetimes[] = {
  "expires_in",
  "expires",
  /* legacy Facebook */ NULL,
};
static const char *const refresh_lifetimes[] = {
  "refresh_token_expires_in",
  "x_refresh_token_expires_in", /* QuickBooks */
  "refresh_expires_in",         /* Keycloak */
  NULL,
};

/* The first usable member of `keys` (0 = none). Every member is checked:
 * one that is present but unusable is written into why (naming it) and
 * makes the response malformed, even when an earlier one would do. */
static int first_lifetime(const json_t *obj, const char *const *keys, int64_t now, int64_t *at,
                          char *why, size_t cap)
{
  *at = 0;
  for (; *keys; keys++) {
    int64_t t;
    if (lifetime_at(obj, *keys, now, &t) != 0) {
      snprintf(why, cap, "%s is not a number of seconds or null", *keys);
      return -1;
    }
    if (*at == 0)
      *at = t;
  }
  return 0;
}

/* Both expiry times of a success response; see token_result_t. Returns -1
 * with why set when a lifetime member is present but unusable. */
static int read_times(const json_t *obj, const token_input_t *in, int64_t *exp, int64_t *rt_exp,
                      char *why, size_t cap)
{
  int64_t now = in->now_ms, abs_at;
  if (first_lifetime(obj, access_lifetimes, now, exp, why, cap) != 0 ||
      first_lifetime(obj, refresh_lifetimes, now, rt_exp, why, cap) != 0)
    return -1;
  if (absolute_at(obj, now, &abs_at) != 0) {
    snprintf(why, cap, "expires_at is not a time (epoch seconds or ms, RFC 3339) or null");
    return -1;
  }
  if (*exp == 0)
    *exp = abs_at;
  if (*exp == 0 && in->default_expires_in > 0) {
    int64_t d = in->default_expires_in;
    *exp = now + (d > MAX_LIFETIME_S ? MAX_LIFETIME_S : d) * 1000;
  }
  return 0;
}

static void scopes_push(strlist_t *l, const char *s, size_t n)
{
  if (n == 0 || l->n >= MAX_SCOPES)
    return;
  strlist_push_n(l, s, n);
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
    json_array_foreach(v, i, e)
    {
      if (json_is_string(e) && json_string_length(e) <= TOKEN_MAX_LEN)
        scopes_split(&out->scopes, json_string_value(e));
    }
  }
}

/* Members the parser consumes; everything else goes to extra. */
static const char *const consumed[] = {
  "access_token",
  "refresh_token",
  "token_type",
  "expires_in",
  "expires",
  "expires_at",
  "refresh_token_expires_in",
  "x_refresh_token_expires_in",
  "refresh_expires_in",
  "scope",
  "error",
  "error_description",
  "error_uri",
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
  json_object_foreach((json_t *)obj, k, v)
  {
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

static void fail(token_result_t *out, const char *code, bool from_provider, const char *desc)
{
  out->error = from_provider ? sanitize_code(code) : xstrdup(code);
  out->error_from_provider = from_provider;
  out->error_description = desc ? sanitize_desc(desc) : NULL;
}

/* Describes a body that carried no error code, for the synthesized error. */
static void describe_body(const token_input_t *in, const json_t *obj, char *buf, size_t cap)
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

static token_outcome_t parse(const token_input_t *in, token_result_t *out, bool revocation)
{
  memset(out, 0, sizeof(*out));
  out->http_status = in->status;
  out->retry_after_ms = token__retry_after_ms(in->retry_after, in->now_ms);
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
  } else if (ev != NULL && !json_is_null(ev) && !json_is_false(ev) && !json_is_string(ev)) {
    code = "unknown_error"; /* e.g. {"error": {"message": ...}} */
    has_error = true;
  }
  if (!has_error && obj != NULL && json_is_false(json_object_get(obj, "ok"))) {
    code = "ok_false"; /* a body-level success flag (Slack) */
    has_error = true;
  }
  const char *desc = obj ? json_get_str(obj, "error_description") : NULL;
  if (desc == NULL && json_is_object(ev))
    desc = json_get_str(ev, "message");

  /* Where the token is: a nested object (token_member) that holds one,
   * else the top level. */
  const json_t *src = obj;
  json_t *nested = obj && in->token_member ? json_object_get(obj, in->token_member) : NULL;
  const char *nat = json_is_object(nested) ? json_get_str(nested, "access_token") : NULL;
  if (nat != NULL && *nat != '\0')
    src = nested;

  /* Is there a usable access token (and, if sent, refresh token)? */
  const char *at = src ? json_get_str(src, "access_token") : NULL;
  const char *rt = src ? json_get_str(src, "refresh_token") : NULL;
  if (rt != NULL && *rt == '\0')
    rt = NULL;
  char why[128] = "";
  if (at == NULL || *at == '\0')
    snprintf(why, sizeof why, "HTTP %d without access_token", in->status);
  else if (token_problem(at))
    snprintf(why, sizeof why, "access_token %s", token_problem(at));
  else if (rt != NULL && token_problem(rt))
    snprintf(why, sizeof why, "refresh_token %s", token_problem(rt));
  int64_t exp = 0, rt_exp = 0;
  if (why[0] == '\0')
    read_times(src, in, &exp, &rt_exp, why, sizeof why);
  bool token_ok = why[0] == '\0';

  out->outcome = token__classify(in->status, code, token_ok);
  if (out->outcome != TOKEN_OK) {
    if (has_error) {
      fail(out, code, true, desc);
    } else {
      bool ok_status = in->status >= 200 && in->status <= 299;
      char what[128];
      describe_body(in, obj, what, sizeof what);
      fail(out, ok_status ? TOKEN_ERR_INVALID_RESPONSE : TOKEN_ERR_HTTP, false,
           ok_status && obj != NULL ? why : what);
    }
    goto done;
  }

  out->access_token = xstrdup(at);
  out->refresh_token = rt ? xstrdup(rt) : NULL;
  const char *tt = json_get_str(src, "token_type");
  if (tt == NULL || *tt == '\0' || strcasecmp(tt, "bearer") == 0)
    out->token_type = xstrdup("Bearer");
  else
    out->token_type = sanitize_code(tt);

  out->expires_at = exp;
  out->refresh_token_expires_at = rt_exp;
  read_scopes(src, out);
  out->extra_json = build_extra(obj);

done:
  if (obj != NULL) {
    json_wipe_strings(obj); /* tokens, id_token, nested credentials */
    json_decref(obj);
  }
  return out->outcome;
}

token_outcome_t token_parse(const token_input_t *in, token_result_t *out)
{
  return parse(in, out, false);
}

token_outcome_t token_parse_revocation(const token_input_t *in, token_result_t *out)
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
  strlist_free(&r->scopes);
  free(r->error);
  free(r->error_description);
  memset(r, 0, sizeof(*r));
}
