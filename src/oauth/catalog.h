/*
 * catalog.h - the provider catalog: templates that hold what a provider's
 * own documentation says about its OAuth endpoints and behaviour, so that
 * an operator configures "salesforce" plus a client id and secret instead
 * of reading the provider's OAuth pages. No I/O: the caller hands in the
 * text of each template file (the built-in ones are compiled into the
 * binary, catalog_builtin[]; app/ reads --catalog-dir at start-up).
 *
 * A template is one JSON object (catalog/<name>.json) with these members;
 * any other member is an error naming it:
 *   name          required; [a-z0-9-], 1..64, equal to the file's stem
 *   display_name  required; non-empty string
 *   version       required; integer >= 1 (stored with every provider made
 *                 from the template)
 *   docs          required; the https URL of the provider's documentation
 *                 the template was checked against
 *   notes         optional string: what the docs say that grantd does not
 *                 model, and what could not be verified
 *   grants        required; non-empty array of authorization_code,
 *                 client_credentials, password, refresh_token
 *   vars          optional; per-connection variables, an object
 *                 name -> {rule, description, example, values}; name is
 *                 [a-z_]{1,32}; rule is one of catalog_var_rule_names
 *                 (enum needs `values`, a non-empty array of
 *                 [a-z0-9.-] strings); example is required and must
 *                 follow the rule; every variable must be used in a URL
 *   issuer, authorize_url, token_url, revoke_url, refresh_url
 *                 https URLs; "{var}" placeholders of declared variables
 *                 may appear; with every placeholder replaced by its
 *                 example the URL must parse (host, port), have no
 *                 fragment, and issuer no query. token_url or issuer is
 *                 required. refresh_url: where refreshes go instead of
 *                 token_url; needs the refresh_token grant.
 *   revoke_query  boolean; revocation parameters in revoke_url's query
 *                 string (needs revoke_url)
 *   client_auth   "basic" | "post"
 *   scopes        array of non-empty strings without whitespace
 *   scope_separator  1..8 bytes
 *   pkce          boolean
 *   authorize_params, token_params, refresh_params
 *                 objects of string values
 *   token_member  the member of the token answer that holds the token to
 *                 serve when it has one ([a-z0-9_]{1,64}; Slack's
 *                 "authed_user" user token), see oauth/token.h
 *   token_body    "form" (default) or "json": how token and revocation
 *                 request bodies are encoded (oauth/grant.h)
 *   default_expires_in, refresh_lead_min, refresh_lead_max,
 *   rate_limit_count, rate_limit_window
 *                 positive integers (as the provider API takes them)
 *
 * The members from issuer on are "provider fields": exactly the fields of
 * PUT /v1/providers with the same meaning (catalog_provider_fields[]).
 *
 * Ownership: a catalog owns its templates (jansson objects); pointers
 * handed out are borrowed until the catalog is freed or the entry is
 * replaced by catalog_add() of the same name.
 */
#ifndef GRANTD_OAUTH_CATALOG_H
#define GRANTD_OAUTH_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "model/lists.h"

struct json_t;

/* One built-in template file (generated from the catalog folder at build). */
typedef struct {
  const char *file; /* "google.json" */
  const char *text; /* the file's bytes, NUL-terminated */
  size_t len;
} catalog_builtin_t;

extern const catalog_builtin_t catalog_builtin[];
extern const size_t catalog_builtin_count;

/* Largest template file accepted (also the --catalog-dir read limit). */
#define CATALOG_FILE_MAX (64 * 1024)

/* The provider fields a template may set, NULL-terminated. */
extern const char *const catalog_provider_fields[];

typedef struct catalog catalog_t;

catalog_t *catalog_new(void);
void catalog_free(catalog_t *cat);

/* Validates one template file and adds it, replacing a template of the
 * same name (so --catalog-dir overrides the built-in ones).
 * @param file  the file name, for messages and the name check ("x.json")
 * @param text  the bytes (need not be NUL-terminated)
 * @param err   on failure: "FILE: field 'F': what is wrong" (or without
 *              the field for JSON syntax), NUL-terminated, cut to cap
 * @return 0, or -1 with err set; the catalog is unchanged on failure. */
int catalog_add(catalog_t *cat, const char *file, const char *text, size_t len, char *err,
                size_t cap);

/* Adds every built-in template; -1 with err as catalog_add (a broken
 * built-in file is a build defect, caught by the catalog unit test). */
int catalog_add_builtin(catalog_t *cat, char *err, size_t cap);

/* Number of templates, and the i-th in name order. */
size_t catalog_count(const catalog_t *cat);
const struct json_t *catalog_at(const catalog_t *cat, size_t i);

/* The template called name, or NULL. */
const struct json_t *catalog_get(const catalog_t *cat, const char *name);

/* Appends to out up to `max` template names close to name (edit distance
 * at most 3, or one contains the other), comma-separated, best first.
 * Returns how many were appended. */
size_t catalog_close_names(const catalog_t *cat, const char *name, size_t max, buf_t *out);

/* ---- per-connection variables ------------------------------------------ */

/* Rule names, NULL-terminated: "dns_label", "hostname", "tenant", "guid",
 * "enum". */
extern const char *const catalog_var_rule_names[];

/* True when value follows the rule. `values` is the enum's list (an array
 * of strings) and is only read for "enum". Every rule admits only
 * [A-Za-z0-9.-] (no '/', '@', ':', '%', '?', '#', no "..", no leading or
 * trailing '.' or '-' in a label), so that a value cannot move a URL to
 * another host or out of its path segment. */
bool catalog_var_ok(const char *rule, const struct json_t *values, const char *value);

/* The rule in words, for 422 messages ("a DNS label: 1-63 letters, ..."). */
const char *catalog_var_rule_text(const char *rule);

/* A provider keeps its variables as name -> spec: the rule name, or for an
 * enum "enum:" followed by the values joined with '|'. catalog_spec_ok()
 * is catalog_var_ok() for such a spec; catalog_spec_text() the rule in
 * words into out (an enum lists its values). */
bool catalog_spec_ok(const char *spec, const char *value);
void catalog_spec_text(const char *spec, buf_t *out);

/* Expands the "{name}" placeholders of url with vals into out (appended).
 * Every placeholder must be a variable of `specs` with a value in vals
 * that follows its spec (checked again here, whatever checked it before),
 * so an expanded URL has the template's host or a host the rule admits.
 * A URL without placeholders is copied as is (specs and vals may then be
 * NULL or empty).
 * @return 0; GRANTD_ECONFIG when url is NULL, a placeholder is malformed
 *         (a '{' or '}' that does not enclose [a-z_]{1,32}), undeclared,
 *         has no value or a value outside its rule (out unchanged). */
int catalog_expand(const char *url, const kvlist_t *specs, const kvlist_t *vals, buf_t *out);

/* As catalog_expand(), but a placeholder without a value in vals is kept
 * as it is (a provider fixes some variables, its connections the rest). */
int catalog_expand_some(const char *url, const kvlist_t *specs, const kvlist_t *vals, buf_t *out);

/* Appends to out the names of url's placeholders, each once, in order.
 * @return 0, or -1 when a placeholder is malformed (out may have grown). */
int catalog_placeholders(const char *url, strlist_t *out);

#endif
