/*
 * catalog.c - provider templates: validation, lookup, close names and the
 * per-connection variable rules; see catalog.h.
 *
 * Validation is a table of members, each with one checker; the first
 * problem found is reported with the file and the member's name, so an
 * operator's broken --catalog-dir file is one readable start-up line.
 * Templates are kept as the validated jansson objects (the API renders
 * them as they are), in an array sorted by name.
 */
#include "oauth/catalog.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/url.h"

struct catalog {
  json_t **items; /* sorted by "name" */
  size_t n;
  size_t cap;
};

const char *const catalog_provider_fields[] = {
  "issuer",
  "authorize_url",
  "token_url",
  "revoke_url",
  "client_auth",
  "scopes",
  "scope_separator",
  "pkce",
  "authorize_params",
  "token_params",
  "refresh_params",
  "default_expires_in",
  "refresh_lead_min",
  "refresh_lead_max",
  "rate_limit_count",
  "rate_limit_window",
  "token_member",
  "token_body",
  "refresh_url",
  "revoke_query",
  NULL,
};

static const char *const meta_fields[] = {
  "name", "display_name", "version", "docs", "notes", "grants", "vars", NULL,
};

const char *const catalog_var_rule_names[] = {
  "dns_label", "hostname", "tenant", "guid", "enum", NULL,
};

static const char *const grant_names[] = {
  "authorization_code", "client_credentials", "password",       "refresh_token",
  "device_code",        "jwt_bearer",         "token_exchange", NULL,
};

/* Whether the JSON array a holds the string s. */
static bool json_str_in(const json_t *a, const char *s)
{
  size_t i;
  json_t *e;
  json_array_foreach(a, i, e)
  {
    if (json_is_string(e) && strcmp(json_string_value(e), s) == 0)
      return true;
  }
  return false;
}

static bool in_list(const char *const *l, const char *s)
{
  for (; *l; l++)
    if (strcmp(*l, s) == 0)
      return true;
  return false;
}

/* ---- variable rules ------------------------------------------------------ */

static bool label_ok(const char *s, size_t n)
{
  if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '-')
      return false;
  return true;
}

/* Two or more DNS labels joined by single dots, at most 253 bytes. */
static bool hostname_ok(const char *s)
{
  size_t len = strlen(s), labels = 0;
  if (len == 0 || len > 253)
    return false;
  const char *p = s;
  for (;;) {
    size_t n = strcspn(p, ".");
    if (!label_ok(p, n))
      return false;
    labels++;
    if (p[n] == '\0')
      break;
    p += n + 1;
  }
  return labels >= 2;
}

static bool guid_ok(const char *s)
{
  if (strlen(s) != 36)
    return false;
  for (size_t i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
      return false;
  }
  return true;
}

static bool enum_value_ok(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > 63 || s[0] == '.' || s[n - 1] == '.' || strstr(s, "..") != NULL)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '.' &&
        s[i] != '-')
      return false;
  return true;
}

bool catalog_var_ok(const char *rule, const json_t *values, const char *v)
{
  if (rule == NULL || v == NULL)
    return false;
  if (strcmp(rule, "dns_label") == 0)
    return label_ok(v, strlen(v));
  if (strcmp(rule, "hostname") == 0)
    return hostname_ok(v);
  if (strcmp(rule, "guid") == 0)
    return guid_ok(v);
  if (strcmp(rule, "tenant") == 0)
    return guid_ok(v) || hostname_ok(v) || strcmp(v, "common") == 0 ||
           strcmp(v, "organizations") == 0 || strcmp(v, "consumers") == 0;
  if (strcmp(rule, "enum") == 0) {
    size_t i;
    json_t *e;
    json_array_foreach(values, i, e)
    {
      if (json_is_string(e) && strcmp(json_string_value(e), v) == 0)
        return enum_value_ok(v);
    }
  }
  return false;
}

const char *catalog_var_rule_text(const char *rule)
{
  if (rule == NULL)
    return "unknown rule";
  if (strcmp(rule, "dns_label") == 0)
    return "a DNS label: 1-63 letters, digits and '-', not starting or ending with '-'";
  if (strcmp(rule, "hostname") == 0)
    return "a host name: two or more DNS labels joined by '.', at most 253 characters, no port";
  if (strcmp(rule, "guid") == 0)
    return "a GUID: 8-4-4-4-12 hexadecimal digits";
  if (strcmp(rule, "tenant") == 0)
    return "a tenant: a GUID, a verified domain name, or common, organizations or consumers";
  if (strcmp(rule, "enum") == 0)
    return "one of the values the template lists";
  return "unknown rule";
}

bool catalog_spec_ok(const char *spec, const char *value)
{
  if (spec == NULL || value == NULL)
    return false;
  if (strncmp(spec, "enum:", 5) != 0)
    return strcmp(spec, "enum") != 0 && catalog_var_ok(spec, NULL, value);
  if (!enum_value_ok(value))
    return false;
  size_t n = strlen(value);
  for (const char *p = spec + 5; *p;) {
    size_t m = strcspn(p, "|");
    if (m == n && strncmp(p, value, n) == 0)
      return true;
    p += m;
    if (*p)
      p++;
  }
  return false;
}

void catalog_spec_text(const char *spec, buf_t *out)
{
  if (spec != NULL && strncmp(spec, "enum:", 5) == 0) {
    buf_puts(out, "one of: ");
    for (const char *p = spec + 5; *p; p++) {
      if (*p == '|')
        buf_puts(out, ", ");
      else
        buf_putc(out, *p);
    }
    return;
  }
  buf_puts(out, catalog_var_rule_text(spec));
}

/* Reads the placeholder at p ('{'): its name into name (cap 40) and the
 * byte after '}' into *after. -1 when the braces do not hold a variable
 * name ([a-z_]{1,32}). */
static int placeholder(const char *p, char name[40], const char **after)
{
  const char *end = strchr(p, '}');
  size_t n = end ? (size_t)(end - p - 1) : 0;
  if (end == NULL || n == 0 || n > 32)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (!(p[1 + i] >= 'a' && p[1 + i] <= 'z') && p[1 + i] != '_')
      return -1;
  memcpy(name, p + 1, n);
  name[n] = '\0';
  *after = end + 1;
  return 0;
}

int catalog_placeholders(const char *url, strlist_t *out)
{
  for (const char *p = url ? url : ""; *p;) {
    if (*p == '}')
      return -1;
    if (*p != '{') {
      p++;
      continue;
    }
    char name[40];
    if (placeholder(p, name, &p) != 0)
      return -1;
    bool seen = false;
    for (size_t i = 0; i < out->n && !seen; i++)
      seen = strcmp(out->items[i], name) == 0;
    if (!seen)
      strlist_push(out, name);
  }
  return 0;
}

static int expand(const char *url, const kvlist_t *specs, const kvlist_t *vals, bool partial,
                  buf_t *out)
{
  if (url == NULL)
    return GRANTD_ECONFIG;
  buf_t tmp = BUF_INIT;
  for (const char *p = url; *p;) {
    if (*p == '}')
      goto bad;
    if (*p != '{') {
      buf_putc(&tmp, *p++);
      continue;
    }
    char name[40];
    const char *after;
    if (placeholder(p, name, &after) != 0)
      goto bad;
    const char *spec = specs ? kvlist_get(specs, name) : NULL;
    const char *v = vals ? kvlist_get(vals, name) : NULL;
    if (partial && v == NULL) {
      buf_append(&tmp, p, (size_t)(after - p));
    } else {
      if (spec == NULL || !catalog_spec_ok(spec, v))
        goto bad;
      buf_puts(&tmp, v);
    }
    p = after;
  }
  buf_append(out, tmp.data ? tmp.data : "", tmp.len);
  buf_free(&tmp);
  return 0;
bad:
  buf_free(&tmp);
  return GRANTD_ECONFIG;
}

int catalog_expand(const char *url, const kvlist_t *specs, const kvlist_t *vals, buf_t *out)
{
  return expand(url, specs, vals, false, out);
}

int catalog_expand_some(const char *url, const kvlist_t *specs, const kvlist_t *vals, buf_t *out)
{
  return expand(url, specs, vals, true, out);
}

/* ---- validation ---------------------------------------------------------- */

typedef struct {
  const char *file;
  char *err;
  size_t cap;
} vctx_t;

static int bad(vctx_t *v, const char *field, const char *fmt, ...)
{
  char what[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(v->err, v->cap, "%s: field '%s': %s", v->file, field, what);
  return -1;
}

static bool name_ok(const char *s, size_t max, bool underscore)
{
  size_t n = strlen(s);
  if (n == 0 || n > max)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != (underscore ? '_' : '-'))
      return false;
  }
  return true;
}

static int check_string(vctx_t *v, const json_t *t, const char *k, bool required)
{
  json_t *x = json_object_get(t, k);
  if (x == NULL)
    return required ? bad(v, k, "is required") : 0;
  if (!json_is_string(x) || json_string_length(x) == 0 || json_string_length(x) > 4096)
    return bad(v, k, "must be a non-empty string");
  return 0;
}

static int check_pos_int(vctx_t *v, const json_t *t, const char *k)
{
  json_t *x = json_object_get(t, k);
  if (x != NULL && (!json_is_integer(x) || json_integer_value(x) < 1 ||
                    json_integer_value(x) > 10LL * 366 * 86400))
    return bad(v, k, "must be a positive integer");
  return 0;
}

static int check_strmap(vctx_t *v, const json_t *t, const char *k)
{
  json_t *x = json_object_get(t, k), *e;
  const char *key;
  if (x == NULL)
    return 0;
  if (!json_is_object(x))
    return bad(v, k, "must be an object of strings");
  json_object_foreach(x, key, e)
  {
    if (*key == '\0' || !json_is_string(e))
      return bad(v, k, "member '%.64s' must be a string with a non-empty name", key);
  }
  return 0;
}

/* Replaces each {var} by the variable's example into out; -1 with the
 * variable name in *unknown when one is not declared. */
static int expand_examples(const char *url, const json_t *vars, buf_t *out, char *unknown,
                           size_t cap)
{
  for (const char *p = url; *p;) {
    if (*p != '{') {
      buf_putc(out, *p++);
      continue;
    }
    const char *end = strchr(p, '}');
    size_t n = end ? (size_t)(end - p - 1) : strlen(p + 1);
    snprintf(unknown, cap, "%.*s", (int)(n > 32 ? 32 : n), p + 1);
    if (end == NULL || n == 0)
      return -1;
    json_t *d = json_object_get(vars, unknown);
    const char *ex = json_get_str(d, "example");
    if (ex == NULL)
      return -1;
    buf_puts(out, ex);
    p = end + 1;
  }
  return 0;
}

static int check_url(vctx_t *v, const json_t *t, const char *k, const json_t *vars)
{
  json_t *x = json_object_get(t, k);
  if (x == NULL)
    return 0;
  if (!json_is_string(x) || json_string_length(x) == 0)
    return bad(v, k, "must be a URL string");
  const char *s = json_string_value(x);
  buf_t ex = BUF_INIT;
  char var[40];
  if (expand_examples(s, vars, &ex, var, sizeof var) != 0) {
    buf_free(&ex);
    return bad(v, k, "placeholder '{%s}' is not a declared variable", var);
  }
  url_t u;
  int rc = url_parse(buf_cstr(&ex), &u);
  const char *why = NULL;
  if (rc != 0)
    why = "is not an absolute URL with a host";
  else if (strcmp(u.scheme, "https") != 0)
    why = "must be https";
  else if (u.fragment != NULL)
    why = "must not have a fragment";
  else if (strcmp(k, "issuer") == 0 && u.query != NULL)
    why = "must not have a query";
  else if (strpbrk(buf_cstr(&ex), " \t\r\n") != NULL)
    why = "must not contain whitespace";
  if (rc == 0)
    url_free(&u);
  buf_free(&ex);
  return why ? bad(v, k, "%s", why) : 0;
}

static const char *const url_fields[] = {"issuer",     "authorize_url", "token_url",
                                         "revoke_url", "refresh_url",   NULL};

static int check_vars(vctx_t *v, const json_t *t)
{
  json_t *vars = json_object_get(t, "vars"), *d;
  const char *name;
  if (vars == NULL)
    return 0;
  if (!json_is_object(vars))
    return bad(v, "vars", "must be an object of variable definitions");
  json_object_foreach(vars, name, d)
  {
    static const char *const allowed[] = {"rule", "description", "example", "values", NULL};
    char f[64];
    snprintf(f, sizeof f, "vars.%.32s", name);
    if (!name_ok(name, 32, true))
      return bad(v, f, "variable names are 1-32 characters of a-z and _");
    if (!json_is_object(d))
      return bad(v, f, "must be an object");
    const char *badk = NULL;
    if (json_check_fields(d, allowed, &badk) != 0) {
      snprintf(f, sizeof f, "vars.%.32s.%.24s", name, badk ? badk : "?");
      return bad(v, f, "unknown field");
    }
    const char *rule = json_get_str(d, "rule");
    const char *ex = json_get_str(d, "example");
    json_t *vals = json_object_get(d, "values");
    if (rule == NULL || !in_list(catalog_var_rule_names, rule))
      return bad(v, f, "rule must be dns_label, hostname, tenant, guid or enum");
    if (json_get_str(d, "description") == NULL)
      return bad(v, f, "description is required");
    if ((strcmp(rule, "enum") == 0) != (vals != NULL))
      return bad(v, f, "values are given exactly when the rule is enum");
    if (vals != NULL) {
      size_t i;
      json_t *e;
      if (!json_is_array(vals) || json_array_size(vals) == 0)
        return bad(v, f, "values must be a non-empty array");
      json_array_foreach(vals, i, e)
      {
        if (!json_is_string(e) || !enum_value_ok(json_string_value(e)))
          return bad(v, f, "values must be strings of a-z 0-9 . -");
      }
    }
    if (ex == NULL || !catalog_var_ok(rule, vals, ex))
      return bad(v, f, "example is required and must follow the rule");
    /* Every variable is used somewhere. */
    char ph[40];
    snprintf(ph, sizeof ph, "{%s}", name);
    bool used = false;
    for (const char *const *u = url_fields; *u; u++) {
      const char *s = json_get_str(t, *u);
      used = used || (s != NULL && strstr(s, ph) != NULL);
    }
    if (!used)
      return bad(v, f, "is not used in any URL");
  }
  return 0;
}

static int validate(vctx_t *v, const json_t *t)
{
  if (!json_is_object(t)) {
    snprintf(v->err, v->cap, "%s: not a JSON object", v->file);
    return -1;
  }
  const char *k;
  json_t *x;
  json_object_foreach((json_t *)t, k, x)
  {
    if (!in_list(meta_fields, k) && !in_list(catalog_provider_fields, k))
      return bad(v, k, "unknown field");
  }
  if (check_string(v, t, "name", true) || check_string(v, t, "display_name", true) ||
      check_string(v, t, "docs", true) || check_string(v, t, "notes", false))
    return -1;
  const char *name = json_get_str(t, "name");
  size_t fl = strlen(v->file), nl = strlen(name);
  if (!name_ok(name, 64, false))
    return bad(v, "name", "must be 1-64 characters of a-z 0-9 -");
  const char *base = strrchr(v->file, '/');
  base = base ? base + 1 : v->file;
  fl = strlen(base);
  if (fl != nl + 5 || strncmp(base, name, nl) != 0 || strcmp(base + nl, ".json") != 0)
    return bad(v, "name", "must be the file name without .json");
  json_t *ver = json_object_get(t, "version");
  if (ver == NULL || !json_is_integer(ver) || json_integer_value(ver) < 1 ||
      json_integer_value(ver) > 1000000)
    return bad(v, "version", "must be an integer from 1");
  json_t *g = json_object_get(t, "grants");
  if (!json_is_array(g) || json_array_size(g) == 0)
    return bad(v, "grants", "must be a non-empty array");
  size_t i;
  json_t *e;
  json_array_foreach(g, i, e)
  {
    if (!json_is_string(e) || !in_list(grant_names, json_string_value(e)))
      return bad(v, "grants",
                 "items must be authorization_code, client_credentials, password or "
                 "refresh_token");
  }
  if (check_vars(v, t) != 0)
    return -1;
  json_t *vars = json_object_get(t, "vars");
  json_t *docs = json_object_get(t, "docs");
  json_t *tmp = json_object();
  json_object_set(tmp, "docs", docs);
  int rc = check_url(v, tmp, "docs", NULL);
  json_decref(tmp);
  if (rc != 0)
    return -1;
  for (const char *const *u = url_fields; *u; u++)
    if (check_url(v, t, *u, vars) != 0)
      return -1;
  if (json_object_get(t, "token_url") == NULL && json_object_get(t, "issuer") == NULL)
    return bad(v, "token_url", "is required (or issuer, for discovery)");
  if (json_object_get(t, "refresh_url") != NULL && !json_str_in(g, "refresh_token"))
    return bad(v, "refresh_url", "needs the refresh_token grant");
  json_t *rq = json_object_get(t, "revoke_query");
  if (rq != NULL && !json_is_boolean(rq))
    return bad(v, "revoke_query", "must be a boolean");
  if (json_is_true(rq) && json_object_get(t, "revoke_url") == NULL)
    return bad(v, "revoke_query", "needs a revoke_url");
  if (json_array_size(g) == 1 && json_object_get(t, "authorize_url") == NULL &&
      strcmp(json_string_value(json_array_get(g, 0)), "authorization_code") == 0 &&
      json_object_get(t, "issuer") == NULL)
    return bad(v, "authorize_url", "is required for the authorization_code grant");
  const char *auth = json_get_str(t, "client_auth");
  if (json_object_get(t, "client_auth") != NULL &&
      (auth == NULL || (strcmp(auth, "basic") != 0 && strcmp(auth, "post") != 0)))
    return bad(v, "client_auth", "must be basic or post");
  json_t *sc = json_object_get(t, "scopes");
  if (sc != NULL) {
    if (!json_is_array(sc))
      return bad(v, "scopes", "must be an array of strings");
    json_array_foreach(sc, i, e)
    {
      if (!json_is_string(e) || json_string_length(e) == 0 ||
          strpbrk(json_string_value(e), " \t\r\n") != NULL)
        return bad(v, "scopes", "items must be non-empty strings without whitespace");
    }
  }
  json_t *sep = json_object_get(t, "scope_separator");
  if (sep != NULL &&
      (!json_is_string(sep) || json_string_length(sep) == 0 || json_string_length(sep) > 8))
    return bad(v, "scope_separator", "must be a string of 1-8 bytes");
  json_t *tm = json_object_get(t, "token_member");
  if (tm != NULL && (!json_is_string(tm) || !name_ok(json_string_value(tm), 64, true)))
    return bad(v, "token_member", "must be 1-64 characters of a-z 0-9 _");
  const char *tb = json_get_str(t, "token_body");
  if (json_object_get(t, "token_body") != NULL &&
      (tb == NULL || (strcmp(tb, "form") != 0 && strcmp(tb, "json") != 0)))
    return bad(v, "token_body", "must be form or json");
  json_t *pk = json_object_get(t, "pkce");
  if (pk != NULL && !json_is_boolean(pk))
    return bad(v, "pkce", "must be true or false");
  if (check_strmap(v, t, "authorize_params") || check_strmap(v, t, "token_params") ||
      check_strmap(v, t, "refresh_params"))
    return -1;
  static const char *const ints[] = {
    "default_expires_in", "refresh_lead_min",  "refresh_lead_max",
    "rate_limit_count",   "rate_limit_window", NULL,
  };
  for (const char *const *n = ints; *n; n++)
    if (check_pos_int(v, t, *n) != 0)
      return -1;
  if ((json_object_get(t, "rate_limit_count") != NULL) !=
      (json_object_get(t, "rate_limit_window") != NULL))
    return bad(v, "rate_limit_count", "goes together with rate_limit_window");
  return 0;
}

/* ---- the catalog --------------------------------------------------------- */

catalog_t *catalog_new(void)
{
  return xcalloc(1, sizeof(catalog_t));
}

void catalog_free(catalog_t *cat)
{
  if (cat == NULL)
    return;
  for (size_t i = 0; i < cat->n; i++)
    json_decref(cat->items[i]);
  free(cat->items);
  free(cat);
}

static const char *tpl_name(const json_t *t)
{
  return json_string_value(json_object_get(t, "name"));
}

/* Index of name, or where it would go (*found = false). */
static size_t find(const catalog_t *cat, const char *name, bool *found)
{
  size_t lo = 0, hi = cat->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(name, tpl_name(cat->items[mid]));
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  *found = false;
  return lo;
}

int catalog_add(catalog_t *cat, const char *file, const char *text, size_t len, char *err,
                size_t cap)
{
  vctx_t v = {file, err, cap};
  json_error_t je;
  json_t *t = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (t == NULL) {
    snprintf(err, cap, "%s: line %d: %s", file, je.line, je.text);
    return -1;
  }
  if (validate(&v, t) != 0) {
    json_decref(t);
    return -1;
  }
  bool found;
  size_t i = find(cat, tpl_name(t), &found);
  if (found) {
    json_decref(cat->items[i]);
    cat->items[i] = t;
    return 0;
  }
  if (cat->n == cat->cap) {
    cat->cap = cat->cap ? cat->cap * 2 : 64;
    cat->items = xrealloc(cat->items, cat->cap * sizeof *cat->items);
  }
  memmove(&cat->items[i + 1], &cat->items[i], (cat->n - i) * sizeof *cat->items);
  cat->items[i] = t;
  cat->n++;
  return 0;
}

int catalog_add_builtin(catalog_t *cat, char *err, size_t cap)
{
  for (size_t i = 0; i < catalog_builtin_count; i++)
    if (catalog_add(cat, catalog_builtin[i].file, catalog_builtin[i].text, catalog_builtin[i].len,
                    err, cap) != 0)
      return -1;
  return 0;
}

size_t catalog_count(const catalog_t *cat)
{
  return cat ? cat->n : 0;
}

const json_t *catalog_at(const catalog_t *cat, size_t i)
{
  return cat && i < cat->n ? cat->items[i] : NULL;
}

const json_t *catalog_get(const catalog_t *cat, const char *name)
{
  bool found;
  if (cat == NULL || name == NULL)
    return NULL;
  size_t i = find(cat, name, &found);
  return found ? cat->items[i] : NULL;
}

/* Levenshtein distance, capped: strings longer than 64 count as far. */
static size_t distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64)
    return 99;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t cur = row[j];
      size_t sub = prev + (tolower((unsigned char)a[i - 1]) != b[j - 1]);
      size_t best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
      row[j] = sub < best ? sub : best;
      prev = cur;
    }
  }
  return row[lb];
}

size_t catalog_close_names(const catalog_t *cat, const char *name, size_t max, buf_t *out)
{
  size_t got = 0;
  if (cat == NULL || name == NULL || *name == '\0')
    return 0;
  for (size_t d = 0; d <= 4 && got < max; d++) {
    for (size_t i = 0; i < cat->n && got < max; i++) {
      const char *n = tpl_name(cat->items[i]);
      size_t dist = distance(name, n);
      /* distance 4 stands for "one contains the other" */
      bool contains = strlen(name) >= 3 && (strstr(n, name) != NULL || strstr(name, n) != NULL);
      if (!(dist == d && d <= 3) && !(d == 4 && dist > 3 && contains))
        continue;
      if (got > 0)
        buf_puts(out, ", ");
      buf_puts(out, n);
      got++;
    }
  }
  return got;
}
