/* Unit test: the API keys file parser and the key match (api_keys.h). */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_keys.h"

static void hex_of(const char *key, char out[65])
{
  uint8_t h[API_KEY_HASH_LEN];
  api_key_hash(key, strlen(key), h);
  for (int i = 0; i < API_KEY_HASH_LEN; i++)
    sprintf(out + 2 * i, "%02x", h[i]);
}

static api_keyset_t *parse_ok(const char *text, const uint8_t *single)
{
  api_keyset_t *ks = NULL;
  char err[300] = "";
  if (api_keyset_parse(text, text ? strlen(text) : 0, single, &ks, err, sizeof err) != 0)
    fail_msg("parse failed: %s", err);
  return ks;
}

static void parse_err(const char *text, const uint8_t *single, const char *mentions)
{
  api_keyset_t *ks = (api_keyset_t *)0x1;
  char err[300] = "";
  assert_int_equal(api_keyset_parse(text, strlen(text), single, &ks, err, sizeof err), -1);
  assert_ptr_equal(ks, (api_keyset_t *)0x1);
  if (strstr(err, mentions) == NULL)
    fail_msg("error '%s' does not mention '%s'", err, mentions);
}

/* SHA-256("abc"), FIPS 180-2 B.1: the hash is the standard one. */
static void test_hash_known_answer(void **state)
{
  (void)state;
  char h[65];
  hex_of("abc", h);
  assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_parse_and_match(void **state)
{
  (void)state;
  char hw[65], hc[65], ha[65], text[1024];
  hex_of("worker-key-0123456789", hw);
  hex_of("connect-key-0123456789", hc);
  hex_of("admin-key-0123456789", ha);
  for (char *p = ha; *p; p++) /* either case of hex */
    if (*p >= 'a' && *p <= 'f')
      *p = (char)(*p - 32);
  snprintf(text, sizeof text,
           "# grantd API keys\n"
           "\n"
           "worker-1 tokens %s\r\n"
           "  ui.backend\tconnect   %s   # the Connect button\n"
           "ops_admin admin %s",
           hw, hc, ha);
  api_keyset_t *ks = parse_ok(text, NULL);
  assert_int_equal(api_keyset_count(ks), 3);
  const char *name = NULL;
  api_scope_t sc;
  assert_true(api_keyset_match(ks, "worker-key-0123456789", 21, &name, &sc));
  assert_string_equal(name, "worker-1");
  assert_int_equal(sc, API_SCOPE_TOKENS);
  assert_true(api_keyset_match(ks, "connect-key-0123456789", 22, &name, &sc));
  assert_string_equal(name, "ui.backend");
  assert_int_equal(sc, API_SCOPE_CONNECT);
  assert_true(api_keyset_match(ks, "admin-key-0123456789", 20, &name, &sc));
  assert_string_equal(name, "ops_admin");
  assert_int_equal(sc, API_SCOPE_ADMIN);
  /* Wrong keys: one byte off, a prefix, longer, empty, the hash itself. */
  name = "untouched";
  assert_false(api_keyset_match(ks, "worker-key-0123456780", 21, &name, &sc));
  assert_false(api_keyset_match(ks, "worker-key-012345678", 20, &name, &sc));
  assert_false(api_keyset_match(ks, "worker-key-0123456789x", 22, &name, &sc));
  assert_false(api_keyset_match(ks, "", 0, &name, &sc));
  assert_false(api_keyset_match(ks, hw, 64, &name, &sc));
  assert_string_equal(name, "untouched");
  api_keyset_free(ks);
}

static void test_single_key(void **state)
{
  (void)state;
  uint8_t single[API_KEY_HASH_LEN];
  api_key_hash("the-single-key-0123", 19, single);
  api_keyset_t *ks = parse_ok(NULL, single);
  assert_int_equal(api_keyset_count(ks), 1);
  const char *name;
  api_scope_t sc = API_SCOPE_TOKENS;
  assert_true(api_keyset_match(ks, "the-single-key-0123", 19, &name, &sc));
  assert_string_equal(name, API_KEY_SINGLE_NAME);
  assert_int_equal(sc, API_SCOPE_ADMIN);
  api_keyset_free(ks);
  /* With a file too: both match. */
  char hw[65], text[200];
  hex_of("worker-key-0123456789", hw);
  snprintf(text, sizeof text, "w tokens %s\n", hw);
  ks = parse_ok(text, single);
  assert_int_equal(api_keyset_count(ks), 2);
  assert_true(api_keyset_match(ks, "the-single-key-0123", 19, &name, &sc));
  assert_int_equal(sc, API_SCOPE_ADMIN);
  assert_true(api_keyset_match(ks, "worker-key-0123456789", 21, &name, &sc));
  assert_string_equal(name, "w");
  api_keyset_free(ks);
  /* The file may not take the single key's name, nor its hash. */
  char hs[65];
  hex_of("the-single-key-0123", hs);
  snprintf(text, sizeof text, "default tokens %s\n", hw);
  parse_err(text, single, "'default' is used twice");
  snprintf(text, sizeof text, "other tokens %s\n", hs);
  parse_err(text, single, "same key hash as 'other'");
}

static void test_parse_errors(void **state)
{
  (void)state;
  char h[65], h2[65], text[600];
  hex_of("k1-0123456789abcdef", h);
  hex_of("k2-0123456789abcdef", h2);
  parse_err("", NULL, "no API key");
  parse_err("# only a comment\n\n", NULL, "no API key");
  snprintf(text, sizeof text, "a tokens %s\nb root %s\n", h, h2);
  parse_err(text, NULL, "line 2: unknown scope 'root'");
  snprintf(text, sizeof text, "a Admin %s\n", h);
  parse_err(text, NULL, "unknown scope 'Admin'"); /* scopes are exact, lower case */
  snprintf(text, sizeof text, "a tokens\n");
  parse_err(text, NULL, "line 1: expected NAME SCOPE SHA256-HEX");
  snprintf(text, sizeof text, "a tokens %s extra\n", h);
  parse_err(text, NULL, "expected NAME SCOPE SHA256-HEX");
  snprintf(text, sizeof text, "a tokens %.63s\n", h);
  parse_err(text, NULL, "64 hex digits");
  snprintf(text, sizeof text, "a tokens %.63sg\n", h);
  parse_err(text, NULL, "64 hex digits");
  snprintf(text, sizeof text, "a tokens %s0\n", h);
  parse_err(text, NULL, "64 hex digits");
  snprintf(text, sizeof text, "bad/name tokens %s\n", h);
  parse_err(text, NULL, "line 1: the name must be");
  snprintf(text, sizeof text, "%065d tokens %s\n", 0, h);
  parse_err(text, NULL, "the name must be");
  snprintf(text, sizeof text, "a tokens %s\na connect %s\n", h, h2);
  parse_err(text, NULL, "line 2: the name 'a' is used twice");
  snprintf(text, sizeof text, "a tokens %s\nb connect %s\n", h, h);
  parse_err(text, NULL, "line 2: the same key hash as 'a'");
  snprintf(text, sizeof text, "a tokens %s\x01\n", h);
  parse_err(text, NULL, "line 1: a control character");
  /* An error message never quotes a hash. */
  api_keyset_t *ks;
  char err[300];
  snprintf(text, sizeof text, "a tokens %s\nb tokens %s\n", h, h);
  assert_int_equal(api_keyset_parse(text, strlen(text), NULL, &ks, err, sizeof err), -1);
  assert_null(strstr(err, h));
  /* A 64-name is fine, a NUL inside the text is a control character. */
  snprintf(text, sizeof text, "%064d tokens %s\n", 0, h);
  ks = parse_ok(text, NULL);
  api_keyset_free(ks);
  char nul[100] = "a tokens ";
  memcpy(nul + 9, h, 64);
  nul[73] = '\0';
  nul[74] = 'x';
  assert_int_equal(api_keyset_parse(nul, 75, NULL, &ks, err, sizeof err), -1);
}

static void test_scope_names(void **state)
{
  (void)state;
  assert_string_equal(api_scope_name(API_SCOPE_ADMIN), "admin");
  assert_string_equal(api_scope_name(API_SCOPE_TOKENS), "tokens");
  assert_string_equal(api_scope_name(API_SCOPE_CONNECT), "connect");
  assert_string_equal(api_scope_name((api_scope_t)7), "unknown");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_hash_known_answer), cmocka_unit_test(test_parse_and_match),
    cmocka_unit_test(test_single_key),        cmocka_unit_test(test_parse_errors),
    cmocka_unit_test(test_scope_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
