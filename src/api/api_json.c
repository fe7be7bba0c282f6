/*
 * api_json.c - request-body parsing and record rendering for the v1 API;
 * see api_json.h.
 *
 * Every accepted field is listed in one table per record type, so an
 * unknown field is rejected with its name (422) before anything is copied,
 * and a wrong type names the field too. Secrets are copied in but never
 * rendered out.
 */
#include "api/api_json.h"

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"

#define MAX_STR 16384      /* any single string field */
#define MAX_LIST 256       /* scopes and parameter maps */

static int fail(api_err_t *e, int status, const char *code, const char *fmt, const char *field)
{
  e->status = status;
  e->code = code;
  snprintf(e->message, sizeof e->message, fmt, field);
  return -1;
}

bool api_valid_id(const char *s)
{
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 128)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '~' || c == '@' || c == ':' || c == '-'))
      return false;
  }
  return true;
}

static bool in_list(const char *k, const char *const *allowed)
{
  for (; *allowed; allowed++)
    if (!strcmp(k, *allowed))
      return true;
  return false;
}

static int check_fields(const json_t *obj, const char *const *allowed, api_err_t *e)
{
  const char *k;
  json_t *v;
  if (!json_is_object(obj))
    return fail(e, 400, "invalid_json", "%s", "the request body must be a JSON object");
  json_object_foreach((json_t *)obj, k, v) {
    (void)v;
    if (!in_list(k, allowed))
      return fail(e, 422, "unknown_field", "unknown field '%s'", k);
  }
  return 0;
}

/* Optional string: absent or null leaves *dst NULL; empty strings are
 * rejected so "unset" has one spelling. */
static int get_str(const json_t *o, const char *k, char **dst, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return fail(e, 422, "invalid_field", "field '%s' must be a string", k);
  size_t n = json_string_length(v);
  if (n == 0)
    return fail(e, 422, "invalid_field", "field '%s' must not be empty", k);
  if (n > MAX_STR)
    return fail(e, 422, "invalid_field", "field '%s' is too long", k);
  if (memchr(json_string_value(v), '\0', n) != NULL)
    return fail(e, 422, "invalid_field", "field '%s' must not contain NUL", k);
  *dst = xstrndup(json_string_value(v), n);
  return 0;
}

static int get_url(const json_t *o, const char *k, char **dst, api_err_t *e)
{
  if (get_str(o, k, dst, e) != 0)
    return -1;
  if (*dst && strncmp(*dst, "https://", 8) != 0 && strncmp(*dst, "http://", 7) != 0)
    return fail(e, 422, "invalid_field", "field '%s' must be an http(s) URL", k);
  if (*dst && strpbrk(*dst, " \t\r\n#") != NULL)
    return fail(e, 422, "invalid_field", "field '%s' must be a URL without spaces or fragment", k);
  return 0;
}

static int get_int(const json_t *o, const char *k, int64_t *dst, int64_t min, int64_t max, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_integer(v))
    return fail(e, 422, "invalid_field", "field '%s' must be an integer", k);
  json_int_t n = json_integer_value(v);
  if (n < min || n > max)
    return fail(e, 422, "invalid_field", "field '%s' is out of range", k);
  *dst = n;
  return 0;
}

static int get_bool(const json_t *o, const char *k, bool *dst, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_boolean(v))
    return fail(e, 422, "invalid_field", "field '%s' must be true or false", k);
  *dst = json_is_true(v);
  return 0;
}

static int get_strlist(const json_t *o, const char *k, strlist_t *dst, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_array(v) || json_array_size(v) > MAX_LIST)
    return fail(e, 422, "invalid_field", "field '%s' must be an array of strings", k);
  size_t i;
  json_t *it;
  json_array_foreach(v, i, it) {
    if (!json_is_string(it) || json_string_length(it) == 0 || json_string_length(it) > MAX_STR ||
        strpbrk(json_string_value(it), " \t\r\n") != NULL)
      return fail(e, 422, "invalid_field", "field '%s' must hold non-empty strings without spaces", k);
    strlist_push(dst, json_string_value(it));
  }
  return 0;
}

static int get_kv(const json_t *o, const char *k, kvlist_t *dst, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_object(v) || json_object_size(v) > MAX_LIST)
    return fail(e, 422, "invalid_field", "field '%s' must be an object of strings", k);
  const char *key;
  json_t *it;
  json_object_foreach(v, key, it) {
    if (!json_is_string(it) || json_string_length(it) > MAX_STR || key[0] == '\0')
      return fail(e, 422, "invalid_field", "field '%s' must be an object of strings", k);
    kvlist_push(dst, key, json_string_value(it));
  }
  return 0;
}

/* A JSON object kept as text (extra, metadata). */
static int get_obj_text(const json_t *o, const char *k, char **dst, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_object(v))
    return fail(e, 422, "invalid_field", "field '%s' must be an object", k);
  *dst = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
  if (*dst == NULL)
    return fail(e, 422, "invalid_field", "field '%s' could not be encoded", k);
  char *copy = xstrdup(*dst);
  free(*dst);
  *dst = copy;
  return 0;
}

/* Absolute time: RFC 3339 string or seconds since the epoch. */
static int get_time(const json_t *o, const char *k, int64_t *dst, api_err_t *e)
{
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < 253402300800LL) {
    *dst = (int64_t)json_integer_value(v) * 1000;
    return 0;
  }
  if (json_is_string(v) && clock_parse_rfc3339(json_string_value(v), json_string_length(v), dst) == 0 && *dst > 0)
    return 0;
  return fail(e, 422, "invalid_field", "field '%s' must be an RFC 3339 time or epoch seconds", k);
}

static const char *const provider_fields[] = {
  "issuer", "authorize_url", "token_url", "revoke_url", "client_id", "client_secret",
  "client_auth", "scopes", "scope_separator", "pkce", "redirect_uri", "authorize_params",
  "token_params", "refresh_params", "default_expires_in", "refresh_lead_min",
  "refresh_lead_max", "keepalive_interval", "rate_limit_count", "rate_limit_window",
  "timeout_ms", "ca_file", "allow_insecure_http", NULL,
};

int api_provider_from_json(const json_t *b, const char *name, provider_t *p, api_err_t *e)
{
  memset(p, 0, sizeof *p);
  p->pkce = true;
  if (check_fields(b, provider_fields, e) != 0)
    return -1;
  p->name = xstrdup(name);
  char *auth = NULL;
  const int64_t day = 86400 * 366;
  int rc = get_url(b, "issuer", &p->issuer, e) || get_url(b, "authorize_url", &p->authorize_url, e) ||
           get_url(b, "token_url", &p->token_url, e) || get_url(b, "revoke_url", &p->revoke_url, e) ||
           get_str(b, "client_id", &p->client_id, e) || get_str(b, "client_secret", &p->client_secret, e) ||
           get_str(b, "client_auth", &auth, e) || get_strlist(b, "scopes", &p->scopes, e) ||
           get_bool(b, "pkce", &p->pkce, e) || get_url(b, "redirect_uri", &p->redirect_uri, e) ||
           get_kv(b, "authorize_params", &p->authorize_params, e) ||
           get_kv(b, "token_params", &p->token_params, e) ||
           get_kv(b, "refresh_params", &p->refresh_params, e) ||
           get_int(b, "default_expires_in", &p->default_expires_in, 1, day * 10, e) ||
           get_int(b, "refresh_lead_min", &p->refresh_lead_min, 1, day, e) ||
           get_int(b, "refresh_lead_max", &p->refresh_lead_max, 1, day, e) ||
           get_int(b, "keepalive_interval", &p->keepalive_interval, 60, day, e) ||
           get_int(b, "rate_limit_count", &p->rate_limit_count, 1, 1000000, e) ||
           get_int(b, "rate_limit_window", &p->rate_limit_window, 1, day, e) ||
           get_int(b, "timeout_ms", &p->timeout_ms, 100, 600000, e) ||
           get_str(b, "ca_file", &p->ca_file, e) ||
           get_bool(b, "allow_insecure_http", &p->allow_insecure_http, e);
  if (rc)
    goto bad;
  /* scope_separator may be a single space, so it bypasses get_str's rules. */
  json_t *sep = json_object_get(b, "scope_separator");
  if (sep != NULL && !json_is_null(sep)) {
    if (!json_is_string(sep) || json_string_length(sep) == 0 || json_string_length(sep) > 8) {
      fail(e, 422, "invalid_field", "field '%s' must be a short string", "scope_separator");
      goto bad;
    }
    p->scope_separator = xstrdup(json_string_value(sep));
  }
  if (auth != NULL) {
    client_auth_t a;
    const char *s = auth;
    if (!strcmp(s, "client_secret_basic"))
      s = "basic";
    else if (!strcmp(s, "client_secret_post"))
      s = "post";
    if (client_auth_parse(s, &a) != 0) {
      fail(e, 422, "invalid_field", "field '%s' must be basic or post", "client_auth");
      goto bad;
    }
    p->client_auth = a;
  }
  if (p->token_url == NULL && p->issuer == NULL) {
    fail(e, 422, "missing_field", "field '%s' is required (or give 'issuer' for discovery)", "token_url");
    goto bad;
  }
  if ((p->rate_limit_count > 0) != (p->rate_limit_window > 0)) {
    fail(e, 422, "invalid_field", "fields '%s' and rate_limit_window go together", "rate_limit_count");
    goto bad;
  }
  if (p->refresh_lead_min && p->refresh_lead_max && p->refresh_lead_min > p->refresh_lead_max) {
    fail(e, 422, "invalid_field", "field '%s' must not exceed refresh_lead_max", "refresh_lead_min");
    goto bad;
  }
  const char *urls[] = {p->issuer, p->authorize_url, p->token_url, p->revoke_url};
  for (size_t i = 0; i < ARRAY_SIZE(urls); i++) {
    if (urls[i] && !strncmp(urls[i], "http://", 7) && !p->allow_insecure_http) {
      fail(e, 422, "insecure_url", "%s: plain http:// endpoints need allow_insecure_http", p->name);
      goto bad;
    }
  }
  free(auth);
  return 0;
bad:
  free(auth);
  provider_free(p);
  return -1;
}

json_t *api_time(int64_t ms)
{
  if (ms <= 0)
    return json_null();
  char s[40];
  clock_format_rfc3339(ms, s);
  return json_string(s);
}

static json_t *strlist_json(const strlist_t *l)
{
  json_t *a = json_array();
  for (size_t i = 0; i < l->n; i++)
    json_array_append_new(a, json_string(l->items[i]));
  return a;
}

static json_t *kv_json(const kvlist_t *l)
{
  json_t *o = json_object();
  for (size_t i = 0; i < l->n; i++)
    json_object_set_new(o, l->items[i].key, json_string(l->items[i].value));
  return o;
}

static void set_str(json_t *o, const char *k, const char *v)
{
  json_object_set_new(o, k, v ? json_string(v) : json_null());
}

json_t *api_provider_to_json(const provider_t *p)
{
  json_t *o = json_object();
  set_str(o, "name", p->name);
  set_str(o, "issuer", p->issuer);
  set_str(o, "authorize_url", p->authorize_url);
  set_str(o, "token_url", p->token_url);
  set_str(o, "revoke_url", p->revoke_url);
  set_str(o, "client_id", p->client_id);
  json_object_set_new(o, "has_client_secret", json_boolean(p->client_secret != NULL));
  set_str(o, "client_auth", client_auth_name(p->client_auth));
  json_object_set_new(o, "scopes", strlist_json(&p->scopes));
  set_str(o, "scope_separator", p->scope_separator ? p->scope_separator : " ");
  json_object_set_new(o, "pkce", json_boolean(p->pkce));
  set_str(o, "redirect_uri", p->redirect_uri);
  json_object_set_new(o, "authorize_params", kv_json(&p->authorize_params));
  json_object_set_new(o, "token_params", kv_json(&p->token_params));
  json_object_set_new(o, "refresh_params", kv_json(&p->refresh_params));
#define INT_OR_NULL(k, v) json_object_set_new(o, k, (v) ? json_integer(v) : json_null())
  INT_OR_NULL("default_expires_in", p->default_expires_in);
  INT_OR_NULL("refresh_lead_min", p->refresh_lead_min);
  INT_OR_NULL("refresh_lead_max", p->refresh_lead_max);
  INT_OR_NULL("keepalive_interval", p->keepalive_interval);
  INT_OR_NULL("rate_limit_count", p->rate_limit_count);
  INT_OR_NULL("rate_limit_window", p->rate_limit_window);
  INT_OR_NULL("timeout_ms", p->timeout_ms);
#undef INT_OR_NULL
  set_str(o, "ca_file", p->ca_file);
  json_object_set_new(o, "allow_insecure_http", json_boolean(p->allow_insecure_http));
  if (p->pkce_methods.n)
    json_object_set_new(o, "code_challenge_methods_supported", strlist_json(&p->pkce_methods));
  if (p->auth_methods.n)
    json_object_set_new(o, "token_endpoint_auth_methods_supported", strlist_json(&p->auth_methods));
  json_object_set_new(o, "created_at", api_time(p->created_at));
  json_object_set_new(o, "updated_at", api_time(p->updated_at));
  return o;
}

static const char *const conn_fields[] = {
  "id", "tenant", "provider", "grant", "scopes", "access_token", "refresh_token", "token_type",
  "expires_in", "expires_at", "refresh_token_expires_at", "extra", "client_id", "client_secret",
  "username", "password", "metadata", NULL,
};

int api_conn_from_json(const json_t *b, const char *id, conn_t *c, api_err_t *e)
{
  memset(c, 0, sizeof *c);
  if (check_fields(b, conn_fields, e) != 0)
    return -1;
  char *grant = NULL, *body_id = NULL;
  int64_t expires_in = 0;
  if (get_str(b, "id", &body_id, e))
    goto bad;
  if (id == NULL) {
    if (body_id == NULL) {
      fail(e, 422, "missing_field", "field '%s' is required", "id");
      goto bad;
    }
    id = body_id;
  } else if (body_id != NULL && strcmp(body_id, id) != 0) {
    fail(e, 422, "invalid_field", "field '%s' does not match the id in the path", "id");
    goto bad;
  }
  if (!api_valid_id(id)) {
    fail(e, 400, "invalid_id", "%s", "connection id must be 1-128 characters of A-Z a-z 0-9 . _ ~ @ : -");
    goto bad;
  }
  c->id = xstrdup(id);
  int rc = get_str(b, "tenant", &c->tenant, e) || get_str(b, "provider", &c->provider, e) ||
           get_str(b, "grant", &grant, e) || get_strlist(b, "scopes", &c->scopes, e) ||
           get_str(b, "access_token", &c->access_token, e) ||
           get_str(b, "refresh_token", &c->refresh_token, e) ||
           get_str(b, "token_type", &c->token_type, e) ||
           get_int(b, "expires_in", &expires_in, 0, 86400LL * 3650, e) ||
           get_time(b, "expires_at", &c->expires_at, e) ||
           get_time(b, "refresh_token_expires_at", &c->refresh_token_expires_at, e) ||
           get_obj_text(b, "extra", &c->extra_json, e) || get_str(b, "client_id", &c->client_id, e) ||
           get_str(b, "client_secret", &c->client_secret, e) ||
           get_str(b, "username", &c->username, e) || get_str(b, "password", &c->password, e) ||
           get_obj_text(b, "metadata", &c->metadata_json, e);
  if (rc)
    goto bad;
  const char *req[] = {"tenant", "provider", "grant"};
  const char *vals[] = {c->tenant, c->provider, grant};
  for (size_t i = 0; i < 3; i++)
    if (vals[i] == NULL) {
      fail(e, 422, "missing_field", "field '%s' is required", req[i]);
      goto bad;
    }
  if (!api_valid_id(c->provider)) {
    fail(e, 422, "invalid_field", "field '%s' is not a valid provider name", "provider");
    goto bad;
  }
  if (strlen(c->tenant) > 256) {
    fail(e, 422, "invalid_field", "field '%s' is too long", "tenant");
    goto bad;
  }
  if (grant_parse(grant, &c->grant) != 0) {
    fail(e, 422, "invalid_field", "field '%s' must be authorization_code, client_credentials, password or refresh_token", "grant");
    goto bad;
  }
  if (json_object_get(b, "expires_in") && json_object_get(b, "expires_at")) {
    fail(e, 422, "invalid_field", "give either '%s' or expires_at, not both", "expires_in");
    goto bad;
  }
  if (expires_in > 0)
    c->expires_at = clock_now_ms() + expires_in * 1000;
  bool has_tokens = c->access_token || c->refresh_token || c->expires_at;
  switch (c->grant) {
  case GRANT_REFRESH_TOKEN:
    if (c->access_token == NULL && c->refresh_token == NULL) {
      fail(e, 422, "missing_field", "field '%s' is required to import tokens (or access_token)", "refresh_token");
      goto bad;
    }
    break;
  case GRANT_PASSWORD:
    if (c->username == NULL || c->password == NULL) {
      fail(e, 422, "missing_field", "field '%s' and password are required for the password grant", "username");
      goto bad;
    }
    /* fall through */
  default:
    if (has_tokens) {
      fail(e, 422, "invalid_field", "tokens can only be imported with grant '%s'", "refresh_token");
      goto bad;
    }
  }
  if (c->grant != GRANT_PASSWORD && (c->username || c->password)) {
    fail(e, 422, "invalid_field", "field '%s' is only used by the password grant", c->username ? "username" : "password");
    goto bad;
  }
  free(grant);
  free(body_id);
  return 0;
bad:
  free(grant);
  free(body_id);
  conn_free(c);
  return -1;
}

static json_t *obj_from_text(const char *text, bool public_only)
{
  json_t *o = text ? json_loads(text, 0, NULL) : NULL;
  if (o == NULL || !json_is_object(o)) {
    json_decref(o);
    return json_object();
  }
  if (public_only)
    json_object_del(o, "id_token"); /* a credential: only the token endpoint shows it */
  return o;
}

json_t *api_conn_to_json(const conn_t *c)
{
  json_t *o = json_object();
  set_str(o, "id", c->id);
  set_str(o, "tenant", c->tenant);
  set_str(o, "provider", c->provider);
  set_str(o, "grant", grant_name(c->grant));
  set_str(o, "status", conn_status_name(c->status));
  json_object_set_new(o, "scopes", strlist_json(&c->scopes));
  set_str(o, "token_type", c->token_type);
  json_object_set_new(o, "has_access_token", json_boolean(c->access_token != NULL));
  json_object_set_new(o, "has_refresh_token", json_boolean(c->refresh_token != NULL));
  json_object_set_new(o, "expires_at", api_time(c->expires_at));
  json_object_set_new(o, "refresh_token_expires_at", api_time(c->refresh_token_expires_at));
  json_object_set_new(o, "extra", obj_from_text(c->extra_json, true));
  json_object_set_new(o, "metadata", obj_from_text(c->metadata_json, false));
  set_str(o, "client_id", c->client_id);
  json_object_set_new(o, "has_client_secret", json_boolean(c->client_secret != NULL));
  set_str(o, "username", c->username);
  if (c->last_error_code) {
    json_t *le = json_object();
    set_str(le, "code", c->last_error_code);
    set_str(le, "message", c->last_error_message);
    json_object_set_new(le, "http_status", c->last_error_http ? json_integer(c->last_error_http) : json_null());
    json_object_set_new(le, "at", api_time(c->last_error_at));
    json_object_set_new(o, "last_error", le);
  } else {
    json_object_set_new(o, "last_error", json_null());
  }
  json_object_set_new(o, "failures", json_integer(c->failures));
  json_object_set_new(o, "refreshed_at", api_time(c->refreshed_at));
  json_object_set_new(o, "next_refresh_at", api_time(c->next_refresh_at));
  json_object_set_new(o, "created_at", api_time(c->created_at));
  json_object_set_new(o, "updated_at", api_time(c->updated_at));
  json_object_set_new(o, "revision", json_integer((json_int_t)c->revision));
  return o;
}

/* Appends s as a JSON string. Values came in through jansson (valid
 * UTF-8) or from providers' token responses (printable ASCII). */
static void put_json_str(buf_t *b, const char *s)
{
  static const char hex[] = "0123456789abcdef";
  buf_putc(b, '"');
  const char *run = s;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch >= 0x20 && ch != '"' && ch != '\\')
      continue;
    buf_append(b, run, (size_t)(s - run));
    char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
    if (ch == '"' || ch == '\\') {
      esc[1] = (char)ch;
      buf_append(b, esc, 2);
    } else {
      buf_append(b, esc, 6);
    }
    run = s + 1;
  }
  buf_append(b, run, (size_t)(s - run));
  buf_putc(b, '"');
}

void api_token_render(const conn_t *c, buf_t *b)
{
  buf_puts(b, "{\"access_token\":");
  if (c->access_token)
    put_json_str(b, c->access_token);
  else
    buf_puts(b, "null");
  buf_puts(b, ",\"token_type\":");
  put_json_str(b, c->token_type ? c->token_type : "Bearer");
  buf_puts(b, ",\"expires_at\":");
  if (c->expires_at > 0) {
    char t[40];
    clock_format_rfc3339(c->expires_at, t);
    put_json_str(b, t);
  } else {
    buf_puts(b, "null");
  }
  buf_puts(b, ",\"scopes\":[");
  for (size_t i = 0; i < c->scopes.n; i++) {
    if (i)
      buf_putc(b, ',');
    put_json_str(b, c->scopes.items[i]);
  }
  /* extra_json is stored as compact JSON object text produced by jansson. */
  buf_puts(b, "],\"extra\":");
  buf_puts(b, c->extra_json && c->extra_json[0] == '{' ? c->extra_json : "{}");
  buf_puts(b, "}\n");
}

json_t *api_token_to_json(const conn_t *c)
{
  json_t *o = json_object();
  set_str(o, "access_token", c->access_token);
  set_str(o, "token_type", c->token_type ? c->token_type : "Bearer");
  json_object_set_new(o, "expires_at", api_time(c->expires_at));
  json_object_set_new(o, "scopes", strlist_json(&c->scopes));
  json_object_set_new(o, "extra", obj_from_text(c->extra_json, false));
  return o;
}
