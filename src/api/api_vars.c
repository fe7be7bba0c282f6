/*
 * api_vars.c - template URL variables in the API: the values a PUT
 * /v1/providers/{name} fixes for the provider, the variables a provider
 * keeps for its connections, and the values a connection gives; see
 * api_int.h.
 *
 * Every value is checked against its rule (oauth/catalog.h) here, with a
 * 422 that names the variable and the rule, and again by the request
 * builders whenever a URL is expanded (oauth/grant.h), so a value that
 * could move a request to another host is refused twice.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "base/buf.h"
#include "base/mem.h"
#include "oauth/catalog.h"

static const char *const url_fields[] = {"issuer", "authorize_url", "token_url", "revoke_url",
                                         "refresh_url"};

static int fail(api_err_t *e, const char *code, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static int fail(api_err_t *e, const char *code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  e->status = 422;
  e->code = code;
  return -1;
}

/* The spec of template variable d: its rule, "enum:a|b" for an enum. */
static void spec_of(const json_t *d, buf_t *out)
{
  buf_puts(out, json_string_value(json_object_get(d, "rule")));
  json_t *vals = json_object_get(d, "values");
  for (size_t i = 0; i < json_array_size(vals); i++) {
    buf_putc(out, i == 0 ? ':' : '|');
    buf_puts(out, json_string_value(json_array_get(vals, i)));
  }
}

/* "shop, region" into out: the names of specs. */
static void names_of(const kvlist_t *specs, buf_t *out)
{
  for (size_t i = 0; i < specs->n; i++) {
    if (i > 0)
      buf_puts(out, ", ");
    buf_puts(out, specs->items[i].key);
  }
  if (specs->n == 0)
    buf_puts(out, "none");
}

/* Checks vals (an object of strings) against specs; on success vals are
 * pushed to out. `whose` names the owner for messages. */
static int check_values(const json_t *vals, const kvlist_t *specs, const char *whose, kvlist_t *out,
                        api_err_t *e)
{
  if (!json_is_object(vals))
    return fail(e, "invalid_field", "field 'vars' must be an object of strings");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)vals, k, v)
  {
    const char *spec = kvlist_get(specs, k);
    if (spec == NULL) {
      buf_t n = BUF_INIT;
      names_of(specs, &n);
      fail(e, "unknown_variable", "%.64s has no variable '%.40s' (its variables: %.120s)", whose, k,
           buf_cstr(&n));
      buf_free(&n);
      return -1;
    }
    if (!json_is_string(v) || !catalog_spec_ok(spec, json_string_value(v))) {
      buf_t r = BUF_INIT;
      catalog_spec_text(spec, &r);
      fail(e, "invalid_variable", "variable '%.40s' must be %.190s", k, buf_cstr(&r));
      buf_free(&r);
      return -1;
    }
    kvlist_push(out, k, json_string_value(v));
  }
  return 0;
}

int api_provider_vars_fix(const json_t *tpl, json_t *merged, api_err_t *e)
{
  json_t *vals = json_object_get(merged, "vars");
  if (tpl == NULL || vals == NULL)
    return 0; /* without a template, "vars" is an unknown field */
  kvlist_t specs = {0}, got = {0};
  const char *k;
  json_t *d;
  json_object_foreach(json_object_get(tpl, "vars"), k, d)
  {
    buf_t s = BUF_INIT;
    spec_of(d, &s);
    kvlist_push(&specs, k, buf_cstr(&s));
    buf_free(&s);
  }
  char whose[100];
  snprintf(whose, sizeof whose, "template '%.64s'",
           json_string_value(json_object_get(tpl, "name")));
  int rc = check_values(vals, &specs, whose, &got, e);
  for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(url_fields); i++) {
    const char *u = json_string_value(json_object_get(merged, url_fields[i]));
    if (u == NULL)
      continue;
    buf_t x = BUF_INIT;
    if (catalog_expand_some(u, &specs, &got, &x) == 0)
      json_object_set_new(merged, url_fields[i], json_string(buf_cstr(&x)));
    buf_free(&x);
  }
  if (rc == 0)
    json_object_del(merged, "vars");
  kvlist_free(&specs);
  kvlist_free(&got);
  return rc;
}

int api_provider_vars_keep(const json_t *tpl, provider_t *p, api_err_t *e)
{
  const char *urls[] = {p->issuer, p->authorize_url, p->token_url, p->revoke_url, p->refresh_url};
  strlist_t used = {0};
  for (size_t i = 0; i < ARRAY_SIZE(urls); i++)
    if (catalog_placeholders(urls[i], &used) != 0) {
      strlist_free(&used);
      return fail(e, "invalid_field", "field '%s' has a malformed placeholder", url_fields[i]);
    }
  json_t *tv = json_object_get(tpl, "vars");
  for (size_t i = 0; i < used.n; i++) {
    if (json_object_get(tv, used.items[i]) == NULL) {
      fail(e, "invalid_field", "placeholder '{%.40s}' is not a variable of %s%.64s%s",
           used.items[i], tpl ? "template '" : "the provider (it has no template)",
           tpl ? json_string_value(json_object_get(tpl, "name")) : "", tpl ? "'" : "");
      strlist_free(&used);
      return -1;
    }
  }
  strlist_t in_issuer = {0};
  catalog_placeholders(p->issuer, &in_issuer);
  if (in_issuer.n > 0) {
    fail(e, "missing_variable",
         "template '%.64s' discovers its endpoints from its issuer, so variable '%.40s' is "
         "given with the provider: \"vars\": {\"%.40s\": \"...\"}",
         json_string_value(json_object_get(tpl, "name")), in_issuer.items[0], in_issuer.items[0]);
    strlist_free(&in_issuer);
    strlist_free(&used);
    return -1;
  }
  strlist_free(&in_issuer);
  /* The variables still in the URLs, in the template's order. */
  const char *k;
  json_t *d;
  json_object_foreach(tv, k, d)
  {
    bool in = false;
    for (size_t i = 0; i < used.n && !in; i++)
      in = strcmp(used.items[i], k) == 0;
    if (!in)
      continue;
    buf_t s = BUF_INIT;
    spec_of(d, &s);
    kvlist_push(&p->vars, k, buf_cstr(&s));
    buf_free(&s);
  }
  strlist_free(&used);
  return 0;
}

int api_conn_vars_check(const api_t *api, const json_t *body, conn_t *c, api_err_t *e)
{
  provider_t p;
  if (svc_provider_get(api->svc, c->provider, &p) != 0)
    return 0; /* an unknown provider is the service's answer */
  char whose[100];
  snprintf(whose, sizeof whose, "provider '%.64s'", c->provider);
  json_t *vals = json_object_get(body, "vars");
  int rc = 0;
  if (vals != NULL && !json_is_null(vals))
    rc = check_values(vals, &p.vars, whose, &c->vars, e);
  for (size_t i = 0; rc == 0 && i < p.vars.n; i++) {
    if (kvlist_get(&c->vars, p.vars.items[i].key) != NULL)
      continue;
    buf_t r = BUF_INIT;
    catalog_spec_text(p.vars.items[i].value, &r);
    rc = fail(e, "missing_variable", "%s needs variable '%.40s' in \"vars\": %.150s", whose,
              p.vars.items[i].key, buf_cstr(&r));
    buf_free(&r);
  }
  /* The SSRF guard's early half (as for a provider's URLs): an expanded
   * URL grantd dials must not be an address the endpoint policy forbids. */
  static const char *const dialled_names[] = {"token_url", "revoke_url", "refresh_url"};
  const char *dialled[] = {p.token_url, p.revoke_url, p.refresh_url};
  for (size_t i = 0; rc == 0 && p.vars.n > 0 && i < ARRAY_SIZE(dialled); i++) {
    buf_t u = BUF_INIT;
    char why[200];
    if (dialled[i] != NULL && catalog_expand(dialled[i], &p.vars, &c->vars, &u) == 0 &&
        addr_policy_check_url(api->endpoint_policy, buf_cstr(&u), why, sizeof why) ==
          GRANTD_EENDPOINT_FORBIDDEN)
      rc = fail(e, "endpoint_forbidden",
                "%s with these variables: %.150s; grantd does not connect to such addresses "
                "unless the operator allows them",
                dialled_names[i], why);
    buf_free(&u);
  }
  provider_free(&p);
  return rc;
}
