/* Unit tests for oauth/catalog: every built-in template validates; the
 * validator names the file and the field for unknown members, bad URLs,
 * undeclared placeholders and broken variable definitions; overrides
 * replace by name; close names; the variable rules refuse every value
 * that could move a URL to another host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "base/err.h"
#include "oauth/catalog.h"

#define GOOD \
  "\"name\":\"acme\",\"display_name\":\"Acme\",\"version\":1,\"docs\":\"https://acme.example/" \
  "docs\",\"grants\":[\"authorization_code\"],\"authorize_url\":\"https://acme.example/a\"," \
  "\"token_url\":\"https://acme.example/t\""

static int add(catalog_t *cat, const char *file, const char *text, char *err)
{
  return catalog_add(cat, file, text, strlen(text), err, 300);
}

static void builtin_all_valid(void **state)
{
  (void)state;
  catalog_t *cat = catalog_new();
  char err[300] = "";
  int rc = catalog_add_builtin(cat, err, sizeof err);
  if (rc != 0)
    fail_msg("%s", err);
  assert_int_equal(catalog_count(cat), catalog_builtin_count);
  assert_true(catalog_count(cat) >= 40);
  /* Every provider the issue names has a template. */
  static const char *const required[] = {
    "google",
    "microsoft",
    "salesforce",
    "salesforce-sandbox",
    "salesforce-mydomain",
    "slack",
    "slack-user",
    "hubspot",
    "quickbooks",
    "xero",
    "github",
    "github-app",
    "gitlab",
    "gitlab-self-managed",
    "dropbox",
    "box",
    "zoom",
    "atlassian",
    "shopify",
    "zendesk",
    "notion",
    "asana",
    "linear",
    "docusign",
    "pipedrive",
    "zoho",
    "calendly",
    "airtable",
    "monday",
    "mailchimp",
    "intercom",
    "linkedin",
    "x",
    "discord",
    "spotify",
    "stripe-connect",
    "okta",
    "keycloak",
    "auth0",
    "freshworks",
    "servicenow",
    "smartsheet",
    "webflow",
    "figma",
    "miro",
  };
  for (size_t i = 0; i < sizeof required / sizeof *required; i++)
    if (catalog_get(cat, required[i]) == NULL)
      fail_msg("no template %s", required[i]);
  /* Sorted by name. */
  for (size_t i = 1; i < catalog_count(cat); i++)
    assert_true(strcmp(json_string_value(json_object_get(catalog_at(cat, i - 1), "name")),
                       json_string_value(json_object_get(catalog_at(cat, i), "name"))) < 0);
  catalog_free(cat);
}

static void expect_err(const char *body, const char *want)
{
  catalog_t *cat = catalog_new();
  char err[300] = "";
  char text[2048];
  snprintf(text, sizeof text, "{%s}", body);
  assert_int_equal(add(cat, "dir/acme.json", text, err), -1);
  if (strstr(err, want) == NULL)
    fail_msg("error '%s' lacks '%s'", err, want);
  assert_int_equal(catalog_count(cat), 0);
  catalog_free(cat);
}

static void validator_errors(void **state)
{
  (void)state;
  expect_err(GOOD ",\"colour\":\"red\"", "dir/acme.json: field 'colour': unknown field");
  expect_err(GOOD ",\"revoke_url\":\"http://acme.example/r\"", "field 'revoke_url': must be https");
  expect_err(GOOD ",\"revoke_url\":\"https:///r\"", "field 'revoke_url'");
  expect_err(GOOD ",\"revoke_url\":\"https://a.example/r#x\"", "must not have a fragment");
  expect_err(GOOD ",\"issuer\":\"https://{shop}.example\"",
             "field 'issuer': placeholder '{shop}' is not a declared variable");
  expect_err(GOOD ",\"vars\":{\"shop\":{\"rule\":\"dns_label\",\"description\":\"d\","
                  "\"example\":\"a.b\"}}",
             "field 'vars.shop': example is required and must follow the rule");
  expect_err(GOOD ",\"vars\":{\"shop\":{\"rule\":\"regex\",\"description\":\"d\","
                  "\"example\":\"a\"}}",
             "field 'vars.shop': rule must be");
  expect_err(GOOD ",\"vars\":{\"shop\":{\"rule\":\"dns_label\",\"description\":\"d\","
                  "\"example\":\"a\"}}",
             "field 'vars.shop': is not used in any URL");
  expect_err(GOOD ",\"vars\":{\"shop\":{\"rule\":\"dns_label\",\"description\":\"d\","
                  "\"example\":\"a\",\"pattern\":\".*\"}}",
             "field 'vars.shop.pattern': unknown field");
  expect_err(GOOD ",\"refresh_url\":\"http://acme.example/r\"",
             "field 'refresh_url': must be https");
  expect_err(GOOD ",\"refresh_url\":\"https://{shop}.example/r\"",
             "field 'refresh_url': placeholder '{shop}' is not a declared variable");
  expect_err(GOOD ",\"revoke_query\":true", "field 'revoke_query': needs a revoke_url");
  expect_err(GOOD ",\"revoke_url\":\"https://acme.example/r\",\"revoke_query\":1",
             "field 'revoke_query': must be a boolean");
  /* GOOD has only authorization_code: a refresh endpoint would never be used. */
  expect_err(GOOD ",\"refresh_url\":\"https://acme.example/r\"",
             "field 'refresh_url': needs the refresh_token grant");
  expect_err(GOOD ",\"client_auth\":\"jwt\"", "field 'client_auth'");
  expect_err(GOOD ",\"scopes\":[\"a b\"]", "field 'scopes'");
  expect_err(GOOD ",\"pkce\":\"yes\"", "field 'pkce'");
  expect_err(GOOD ",\"rate_limit_count\":5", "field 'rate_limit_count'");
  expect_err(GOOD ",\"authorize_params\":{\"a\":1}", "field 'authorize_params'");
  expect_err(
    "\"name\":\"other\",\"display_name\":\"A\",\"version\":1,\"docs\":\"https://a.example/\","
    "\"grants\":[\"client_credentials\"],\"token_url\":\"https://a.example/t\"",
    "field 'name': must be the file name without .json");
  expect_err("\"name\":\"acme\",\"display_name\":\"A\",\"version\":1,\"docs\":\"https://a.example/"
             "\",\"grants\":[\"client_credentials\"]",
             "field 'token_url': is required");
  expect_err("\"name\":\"acme\",\"display_name\":\"A\",\"version\":1,\"docs\":\"https://a.example/"
             "\",\"grants\":[\"implicit\"],\"token_url\":\"https://a.example/t\"",
             "field 'grants'");
  expect_err(GOOD ",\"version\":0", "duplicate object key"); /* a JSON error */

  catalog_t *cat = catalog_new();
  char err[300];
  assert_int_equal(add(cat, "acme.json", "{\"name\": ", err), -1);
  assert_non_null(strstr(err, "acme.json: line 1"));
  catalog_free(cat);
}

static void override_and_close_names(void **state)
{
  (void)state;
  catalog_t *cat = catalog_new();
  char err[300];
  assert_int_equal(catalog_add_builtin(cat, err, sizeof err), 0);
  size_t n = catalog_count(cat);
  const char *text = "{\"name\":\"google\",\"display_name\":\"Mine\",\"version\":7,\"docs\":"
                     "\"https://x.example/\",\"grants\":[\"client_credentials\"],"
                     "\"token_url\":\"https://x.example/t\"}";
  assert_int_equal(add(cat, "google.json", text, err), 0);
  assert_int_equal(catalog_count(cat), n);
  assert_string_equal(
    json_string_value(json_object_get(catalog_get(cat, "google"), "display_name")), "Mine");
  buf_t b = BUF_INIT;
  assert_int_equal(catalog_close_names(cat, "gogle", 5, &b), 1);
  assert_string_equal(buf_cstr(&b), "google");
  buf_reset(&b);
  assert_true(catalog_close_names(cat, "salesforc", 5, &b) >= 1);
  assert_non_null(strstr(buf_cstr(&b), "salesforce"));
  assert_int_equal(strncmp(buf_cstr(&b), "salesforce", 10), 0); /* best first */
  buf_reset(&b);
  assert_int_equal(catalog_close_names(cat, "qqqqqqqqqqqq", 5, &b), 0);
  buf_free(&b);
  catalog_free(cat);
}

static void var_rules(void **state)
{
  (void)state;
  static const char *const bad_values[] = {
    "evil.com/", "a@evil.com", "a..b", "%2e%2e", "a%2fb", "a/b", "-a", "a-",   "a:443",
    "a?x",       "a#x",        "",     "a b",    "a\\b",  "..",  ".a", "évil", "a\nb",
  };
  for (size_t i = 0; i < sizeof bad_values / sizeof *bad_values; i++) {
    assert_false(catalog_var_ok("dns_label", NULL, bad_values[i]));
    assert_false(catalog_var_ok("hostname", NULL, bad_values[i]));
    assert_false(catalog_var_ok("tenant", NULL, bad_values[i]));
    assert_false(catalog_var_ok("guid", NULL, bad_values[i]));
  }
  assert_true(catalog_var_ok("dns_label", NULL, "acme-store"));
  assert_false(catalog_var_ok("dns_label", NULL, "acme.store"));
  char longlabel[70];
  memset(longlabel, 'a', 64);
  longlabel[64] = '\0';
  assert_false(catalog_var_ok("dns_label", NULL, longlabel));
  longlabel[63] = '\0';
  assert_true(catalog_var_ok("dns_label", NULL, longlabel));
  assert_true(catalog_var_ok("hostname", NULL, "gitlab.example.com"));
  assert_false(catalog_var_ok("hostname", NULL, "localhost"));
  assert_false(catalog_var_ok("hostname", NULL, "gitlab.example.com."));
  assert_true(catalog_var_ok("tenant", NULL, "common"));
  assert_true(catalog_var_ok("tenant", NULL, "contoso.onmicrosoft.com"));
  assert_true(catalog_var_ok("tenant", NULL, "72f988bf-86f1-41af-91ab-2d7cd011db47"));
  assert_true(catalog_var_ok("guid", NULL, "72F988BF-86F1-41AF-91AB-2D7CD011DB47"));
  assert_false(catalog_var_ok("guid", NULL, "72f988bf-86f1-41af-91ab-2d7cd011db4"));
  json_t *vals = json_pack("[ss]", "com", "eu");
  assert_true(catalog_var_ok("enum", vals, "eu"));
  assert_false(catalog_var_ok("enum", vals, "evil.com/"));
  assert_false(catalog_var_ok("enum", vals, "EU"));
  json_decref(vals);
  assert_false(catalog_var_ok("nope", NULL, "a"));
  assert_false(catalog_var_ok(NULL, NULL, "a"));
}

/* catalog_expand(): placeholders replaced by values that follow their
 * spec; a missing, undeclared or bad value, or a malformed placeholder,
 * leaves out unchanged. */
static void expand_urls(void **state)
{
  (void)state;
  kvlist_t specs = {0}, vals = {0};
  kvlist_push(&specs, "shop", "dns_label");
  kvlist_push(&specs, "region", "enum:com|eu|com.au");
  kvlist_push(&vals, "shop", "acme-store");
  kvlist_push(&vals, "region", "com.au");
  buf_t b = BUF_INIT;
  assert_int_equal(
    catalog_expand("https://{shop}.myshopify.com/x/{region}/{shop}", &specs, &vals, &b), 0);
  assert_string_equal(buf_cstr(&b), "https://acme-store.myshopify.com/x/com.au/acme-store");
  buf_reset(&b);
  assert_int_equal(catalog_expand("https://plain.example/t", NULL, NULL, &b), 0);
  assert_string_equal(buf_cstr(&b), "https://plain.example/t");
  static const char *const broken[] = {
    "https://{nope}.example/",  /* undeclared */
    "https://{shop.example/",   /* unclosed */
    "https://x.example/}",      /* stray '}' */
    "https://{}.example/",      /* empty */
    "https://{Shop}.example/",  /* not a variable name */
    "https://{shop}.{tenant}/", /* tenant has no value */
  };
  kvlist_push(&specs, "tenant", "tenant");
  for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
    buf_reset(&b);
    buf_puts(&b, "keep");
    assert_int_equal(catalog_expand(broken[i], &specs, &vals, &b), GRANTD_ECONFIG);
    assert_string_equal(buf_cstr(&b), "keep");
  }
  assert_int_equal(catalog_expand(NULL, &specs, &vals, &b), GRANTD_ECONFIG);
  /* A value outside its rule is refused at expansion too. */
  static const char *const bad[] = {"evil.com/", "evil.com", "a@b", "a:1", "%2e", ""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    kvlist_t v = {0};
    kvlist_push(&v, "shop", bad[i]);
    buf_reset(&b);
    assert_int_equal(catalog_expand("https://{shop}.myshopify.com/", &specs, &v, &b),
                     GRANTD_ECONFIG);
    assert_int_equal(b.len, 0);
    kvlist_free(&v);
  }
  kvlist_t v = {0};
  kvlist_push(&v, "region", "de");
  assert_int_equal(catalog_expand("https://accounts.zoho.{region}/", &specs, &v, &b),
                   GRANTD_ECONFIG);
  /* catalog_expand_some keeps placeholders without a value. */
  buf_reset(&b);
  assert_int_equal(catalog_expand_some("https://{shop}.x.{region}/", &specs, &v, &b),
                   GRANTD_ECONFIG); /* "de" is not an allowed region */
  kvlist_free(&v);
  kvlist_push(&v, "region", "eu");
  assert_int_equal(catalog_expand_some("https://{shop}.x.{region}/", &specs, &v, &b), 0);
  assert_string_equal(buf_cstr(&b), "https://{shop}.x.eu/");
  kvlist_free(&v);
  /* Placeholders, each once. */
  strlist_t names = {0};
  assert_int_equal(catalog_placeholders("https://{a}.{b_c}/{a}", &names), 0);
  assert_int_equal(names.n, 2);
  assert_string_equal(names.items[0], "a");
  assert_string_equal(names.items[1], "b_c");
  assert_int_equal(catalog_placeholders(NULL, &names), 0);
  assert_int_equal(catalog_placeholders("https://{a/", &names), -1);
  assert_int_equal(catalog_placeholders("https://a}/", &names), -1);
  strlist_free(&names);
  /* Specs and their words. */
  assert_true(catalog_spec_ok("enum:com|eu", "eu"));
  assert_false(catalog_spec_ok("enum:com|eu", "e"));
  assert_false(catalog_spec_ok("enum:com|eu", "com|eu"));
  assert_false(catalog_spec_ok("enum", "eu"));
  assert_true(catalog_spec_ok("guid", "72f988bf-86f1-41af-91ab-2d7cd011db47"));
  buf_reset(&b);
  catalog_spec_text("enum:com|eu", &b);
  assert_string_equal(buf_cstr(&b), "one of: com, eu");
  buf_free(&b);
  kvlist_free(&specs);
  kvlist_free(&vals);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(builtin_all_valid),
    cmocka_unit_test(validator_errors),
    cmocka_unit_test(override_and_close_names),
    cmocka_unit_test(var_rules),
    cmocka_unit_test(expand_urls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
