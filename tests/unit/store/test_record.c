/*
 * test_record.c - msgpack codecs of providers, connections and states:
 * round trips with every field set and with none, every truncation, random
 * byte flips, wrong versions and wrong types at every position (all must
 * fail cleanly: run under ASan), sealed fields bound to their key, and the
 * in-memory helpers (names, lists, copy, free).
 */
#include "support.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "store/record.h"

static seal_keyring_t *kr;

static int setup(void **state)
{
  (void)state;
  uint8_t key[SEAL_KEY_LEN];
  memset(key, 0x5a, sizeof(key));
  kr = seal_keyring_new();
  seal_keyring_add(kr, 3, key);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  seal_keyring_free(kr);
  return 0;
}

static void str_eq(const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    assert_ptr_equal(a, b);
  else
    assert_string_equal(a, b);
}

static void sl_eq(const strlist_t *a, const strlist_t *b)
{
  assert_int_equal(a->n, b->n);
  for (size_t i = 0; i < a->n; i++)
    assert_string_equal(a->items[i], b->items[i]);
}

static void kv_eq(const kvlist_t *a, const kvlist_t *b)
{
  assert_int_equal(a->n, b->n);
  for (size_t i = 0; i < a->n; i++) {
    assert_string_equal(a->items[i].key, b->items[i].key);
    assert_string_equal(a->items[i].value, b->items[i].value);
  }
}

static void fill_provider(provider_t *p)
{
  memset(p, 0, sizeof(*p));
  p->name = xstrdup("acme");
  p->issuer = xstrdup("https://id.acme.test");
  p->authorize_url = xstrdup("https://id.acme.test/authorize");
  p->token_url = xstrdup("https://id.acme.test/token");
  p->revoke_url = xstrdup("https://id.acme.test/revoke");
  p->client_id = xstrdup("client-1");
  p->client_secret = xstrdup("s3cret-client");
  p->client_auth = CLIENT_AUTH_POST;
  strlist_push(&p->scopes, "read");
  strlist_push(&p->scopes, "write");
  p->scope_separator = xstrdup(",");
  p->pkce = true;
  p->redirect_uri = xstrdup("https://grantd.test/oauth/callback");
  kvlist_push(&p->authorize_params, "prompt", "consent");
  kvlist_push(&p->token_params, "audience", "api");
  kvlist_push(&p->refresh_params, "a", "");
  kvlist_push(&p->refresh_params, "b", "2");
  p->default_expires_in = 3600;
  p->refresh_lead_min = 60;
  p->refresh_lead_max = 900;
  p->keepalive_interval = 86400;
  p->rate_limit_count = 10;
  p->rate_limit_window = 1;
  p->timeout_ms = 5000;
  p->ca_file = xstrdup("/etc/acme.pem");
  p->allow_insecure_http = true;
  p->iss_param_supported = true;
  p->template_name = xstrdup("acme");
  p->template_version = 3;
  strlist_push(&p->template_fields, "token_url");
  strlist_push(&p->grants, "authorization_code");
  kvlist_push(&p->vars, "shop", "dns_label");
  p->token_member = xstrdup("authed_user");
  p->json_body = true;
  p->refresh_url = xstrdup("https://{shop}.example/refresh");
  p->revoke_query = true;
  p->signing_key = xstrdup("-----BEGIN PRIVATE KEY-----\nsealed-signing-key\n");
  p->signing_key_id = xstrdup("kid-1");
  p->signing_alg = xstrdup("ES256");
  strlist_push(&p->pkce_methods, "S256");
  strlist_push(&p->auth_methods, "client_secret_post");
  p->created_at = 1700000000000;
  p->updated_at = 1700000000001;
}

static void provider_eq(const provider_t *a, const provider_t *b)
{
  str_eq(a->name, b->name);
  str_eq(a->issuer, b->issuer);
  str_eq(a->authorize_url, b->authorize_url);
  str_eq(a->token_url, b->token_url);
  str_eq(a->revoke_url, b->revoke_url);
  str_eq(a->client_id, b->client_id);
  str_eq(a->client_secret, b->client_secret);
  assert_int_equal(a->client_auth, b->client_auth);
  sl_eq(&a->scopes, &b->scopes);
  str_eq(a->scope_separator, b->scope_separator);
  assert_int_equal(a->pkce, b->pkce);
  str_eq(a->redirect_uri, b->redirect_uri);
  kv_eq(&a->authorize_params, &b->authorize_params);
  kv_eq(&a->token_params, &b->token_params);
  kv_eq(&a->refresh_params, &b->refresh_params);
  assert_int_equal(a->default_expires_in, b->default_expires_in);
  assert_int_equal(a->refresh_lead_min, b->refresh_lead_min);
  assert_int_equal(a->refresh_lead_max, b->refresh_lead_max);
  assert_int_equal(a->keepalive_interval, b->keepalive_interval);
  assert_int_equal(a->rate_limit_count, b->rate_limit_count);
  assert_int_equal(a->rate_limit_window, b->rate_limit_window);
  assert_int_equal(a->timeout_ms, b->timeout_ms);
  str_eq(a->ca_file, b->ca_file);
  assert_int_equal(a->allow_insecure_http, b->allow_insecure_http);
  assert_int_equal(a->iss_param_supported, b->iss_param_supported);
  str_eq(a->template_name, b->template_name);
  assert_int_equal(a->template_version, b->template_version);
  sl_eq(&a->template_fields, &b->template_fields);
  sl_eq(&a->grants, &b->grants);
  kv_eq(&a->vars, &b->vars);
  str_eq(a->token_member, b->token_member);
  assert_int_equal(a->json_body, b->json_body);
  str_eq(a->refresh_url, b->refresh_url);
  assert_int_equal(a->revoke_query, b->revoke_query);
  str_eq(a->signing_key, b->signing_key);
  str_eq(a->signing_key_id, b->signing_key_id);
  str_eq(a->signing_alg, b->signing_alg);
  sl_eq(&a->pkce_methods, &b->pkce_methods);
  sl_eq(&a->auth_methods, &b->auth_methods);
  assert_int_equal(a->created_at, b->created_at);
  assert_int_equal(a->updated_at, b->updated_at);
}

static void fill_conn(conn_t *c)
{
  memset(c, 0, sizeof(*c));
  c->id = xstrdup("conn-0001");
  c->tenant = xstrdup("tenant-a");
  c->provider = xstrdup("acme");
  c->grant = GRANT_REFRESH_TOKEN;
  c->status = CONN_REVOKED;
  strlist_push(&c->scopes, "read");
  c->access_token = xstrdup("at-abcdefghijklmnopqrstuvwxyz");
  c->refresh_token = xstrdup("rt-0123456789");
  c->token_type = xstrdup("Bearer");
  c->expires_at = 1700000360000;
  c->refresh_token_expires_at = -5; /* negative values survive */
  c->extra_json = xstrdup("{\"instance_url\":\"https://x.test\"}");
  c->client_id = xstrdup("override-id");
  c->client_secret = xstrdup("override-secret");
  c->username = xstrdup("alice");
  c->password = xstrdup("pa55");
  c->metadata_json = xstrdup("{\"k\":1}");
  kvlist_push(&c->vars, "shop", "acme-store");
  c->token_member = xstrdup("authed_user");
  c->last_error_code = xstrdup("invalid_grant");
  c->last_error_message = xstrdup("token revoked");
  c->last_error_http = 400;
  c->last_error_at = 1700000000123;
  c->failures = 4000000000u;
  c->refreshed_at = 1700000000200;
  c->next_refresh_at = 1700000300000;
  c->created_at = 1600000000000;
  c->updated_at = 1700000000300;
  c->revision = UINT64_MAX;
}

static void conn_eq(const conn_t *a, const conn_t *b)
{
  str_eq(a->id, b->id);
  str_eq(a->tenant, b->tenant);
  str_eq(a->provider, b->provider);
  assert_int_equal(a->grant, b->grant);
  assert_int_equal(a->status, b->status);
  sl_eq(&a->scopes, &b->scopes);
  str_eq(a->access_token, b->access_token);
  str_eq(a->refresh_token, b->refresh_token);
  str_eq(a->token_type, b->token_type);
  assert_int_equal(a->expires_at, b->expires_at);
  assert_int_equal(a->refresh_token_expires_at, b->refresh_token_expires_at);
  str_eq(a->extra_json, b->extra_json);
  str_eq(a->client_id, b->client_id);
  str_eq(a->client_secret, b->client_secret);
  str_eq(a->username, b->username);
  str_eq(a->password, b->password);
  str_eq(a->metadata_json, b->metadata_json);
  kv_eq(&a->vars, &b->vars);
  str_eq(a->token_member, b->token_member);
  str_eq(a->last_error_code, b->last_error_code);
  str_eq(a->last_error_message, b->last_error_message);
  assert_int_equal(a->last_error_http, b->last_error_http);
  assert_int_equal(a->last_error_at, b->last_error_at);
  assert_int_equal(a->failures, b->failures);
  assert_int_equal(a->refreshed_at, b->refreshed_at);
  assert_int_equal(a->next_refresh_at, b->next_refresh_at);
  assert_int_equal(a->created_at, b->created_at);
  assert_int_equal(a->updated_at, b->updated_at);
  assert_true(a->revision == b->revision);
}

static void fill_state(state_rec_t *s)
{
  memset(s, 0, sizeof(*s));
  s->state = xstrdup("st4te-value");
  s->conn_id = xstrdup("conn-0001");
  s->code_verifier = xstrdup("verifier-0123456789-0123456789-0123456789");
  s->redirect_after = xstrdup("https://app.test/done");
  strlist_push(&s->scopes, "a");
  strlist_push(&s->scopes, "");
  s->redirect_uri = xstrdup("https://grantd.test/oauth/callback");
  s->expires_at = 1700000600000;
}

static void state_eq(const state_rec_t *a, const state_rec_t *b)
{
  str_eq(a->state, b->state);
  str_eq(a->conn_id, b->conn_id);
  str_eq(a->code_verifier, b->code_verifier);
  str_eq(a->redirect_after, b->redirect_after);
  sl_eq(&a->scopes, &b->scopes);
  str_eq(a->redirect_uri, b->redirect_uri);
  assert_int_equal(a->expires_at, b->expires_at);
}

/* ---- generic drivers over the three record types ---- */

typedef union {
  provider_t p;
  conn_t c;
  state_rec_t s;
} rec_u;

typedef struct {
  const char *name;
  size_t size;
  void (*fill)(void *);
  void (*eq)(const void *, const void *);
  int (*enc)(const void *, buf_t *);
  int (*dec)(const void *, size_t, const char *, void *);
  void (*free_)(void *);
  const char *key;
} kind_t;

static void fill_p(void *r)
{
  fill_provider(r);
}
static void fill_c(void *r)
{
  fill_conn(r);
}
static void fill_s(void *r)
{
  fill_state(r);
}
static void eq_p(const void *a, const void *b)
{
  provider_eq(a, b);
}
static void eq_c(const void *a, const void *b)
{
  conn_eq(a, b);
}
static void eq_s(const void *a, const void *b)
{
  state_eq(a, b);
}
static int enc_p(const void *r, buf_t *o)
{
  return provider_encode(r, kr, o);
}
static int enc_c(const void *r, buf_t *o)
{
  return conn_encode(r, kr, o);
}
static int enc_s(const void *r, buf_t *o)
{
  return state_rec_encode(r, kr, o);
}
static int dec_p(const void *d, size_t n, const char *k, void *o)
{
  return provider_decode(d, n, k, strlen(k), kr, o);
}
static int dec_c(const void *d, size_t n, const char *k, void *o)
{
  return conn_decode(d, n, k, strlen(k), kr, o);
}
static int dec_s(const void *d, size_t n, const char *k, void *o)
{
  return state_rec_decode(d, n, k, strlen(k), kr, o);
}
static void free_p(void *r)
{
  provider_free(r);
}
static void free_c(void *r)
{
  conn_free(r);
}
static void free_s(void *r)
{
  state_rec_free(r);
}

static const kind_t kinds[] = {
  {"provider", sizeof(provider_t), fill_p, eq_p, enc_p, dec_p, free_p, "acme"},
  {"conn", sizeof(conn_t), fill_c, eq_c, enc_c, dec_c, free_c, "conn-0001"},
  {"state", sizeof(state_rec_t), fill_s, eq_s, enc_s, dec_s, free_s, "st4te-value"},
};

static int is_store_err(int rc)
{
  return rc == GRANTD_ESTORE_DECODE || rc == GRANTD_ESTORE_VERSION || rc == GRANTD_ESTORE_AUTH ||
         rc == GRANTD_ESTORE_KEY;
}

static void assert_zeroed(const void *r, size_t n)
{
  const unsigned char *p = r;
  for (size_t i = 0; i < n; i++)
    assert_int_equal(p[i], 0);
}

static void test_round_trip_full(void **state)
{
  (void)state;
  for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
    const kind_t *K = &kinds[k];
    rec_u a, b;
    K->fill(&a);
    buf_t v = BUF_INIT;
    assert_int_equal(K->enc(&a, &v), 0);
    assert_int_equal(K->dec(v.data, v.len, K->key, &b), 0);
    K->eq(&a, &b);
    /* Secrets are not in the value in clear. */
    assert_null(memmem(v.data, v.len, "s3cret", 6));
    assert_null(memmem(v.data, v.len, "at-abcdef", 9));
    assert_null(memmem(v.data, v.len, "verifier-", 9));
    assert_null(memmem(v.data, v.len, "instance_url", 12)); /* extra is sealed */
    assert_null(memmem(v.data, v.len, "sealed-signing-key", 18));
    K->free_(&a);
    K->free_(&b);
    assert_zeroed(&a, K->size);
    buf_free(&v);
  }
}

static void test_round_trip_empty(void **state)
{
  (void)state;
  for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
    const kind_t *K = &kinds[k];
    rec_u a, b;
    memset(&a, 0, sizeof(a));
    /* Only the key: the value is [RECORD_VERSION], two bytes. */
    char *key = xstrdup(K->key);
    memcpy(&a, &key, sizeof(key)); /* the key is the first member of each struct */
    buf_t v = BUF_INIT;
    assert_int_equal(K->enc(&a, &v), 0);
    assert_int_equal(v.len, 2);
    assert_int_equal((uint8_t)v.data[0], 0x91);
    assert_int_equal((uint8_t)v.data[1], RECORD_VERSION);
    assert_int_equal(K->dec(v.data, v.len, K->key, &b), 0);
    K->eq(&a, &b);
    K->free_(&a);
    K->free_(&b);
    buf_free(&v);
  }
  /* A record without its key cannot be encoded. */
  conn_t c;
  memset(&c, 0, sizeof(c));
  buf_t v = BUF_INIT;
  assert_int_equal(conn_encode(&c, kr, &v), GRANTD_EINVALID);
  assert_int_equal(v.len, 0);
  /* Sealing without a current key fails and leaves out as it was. */
  seal_keyring_t *none = seal_keyring_new();
  fill_conn(&c);
  buf_puts(&v, "pre");
  assert_int_equal(conn_encode(&c, none, &v), GRANTD_ESTORE_KEY);
  assert_int_equal(v.len, 3);
  conn_free(&c);
  buf_free(&v);
  seal_keyring_free(none);
}

static void test_truncations(void **state)
{
  (void)state;
  for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
    const kind_t *K = &kinds[k];
    rec_u a, b;
    K->fill(&a);
    buf_t v = BUF_INIT;
    assert_int_equal(K->enc(&a, &v), 0);
    for (size_t n = 0; n < v.len; n++) {
      /* A fresh copy of exactly n bytes, so ASan sees any over-read. */
      char *t = xmemdup(v.data, n);
      memset(&b, 0x77, sizeof(b));
      int rc = K->dec(n ? t : NULL, n, K->key, &b);
      assert_int_equal(rc, GRANTD_ESTORE_DECODE);
      assert_zeroed(&b, K->size);
      if (k == 1) {
        conn_sched_t cs;
        assert_int_equal(conn_decode_sched(t, n, K->key, strlen(K->key), &cs),
                         GRANTD_ESTORE_DECODE);
      }
      free(t);
    }
    K->free_(&a);
    buf_free(&v);
  }
}

static void test_random_flips(void **state)
{
  (void)state;
  uint64_t seed = 12345;
  size_t fails = 0, oks = 0;
  for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
    const kind_t *K = &kinds[k];
    rec_u a, b;
    K->fill(&a);
    buf_t v = BUF_INIT;
    assert_int_equal(K->enc(&a, &v), 0);
    for (int round = 0; round < 3000; round++) {
      char *t = xmemdup(v.data, v.len);
      int flips = 1 + round % 3;
      for (int f = 0; f < flips; f++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t pos = (size_t)(seed >> 33) % v.len;
        if (round % 2)
          t[pos] = (char)(t[pos] ^ (1 << ((seed >> 20) & 7)));
        else
          t[pos] = (char)(seed >> 40);
      }
      int rc = K->dec(t, v.len, K->key, &b);
      if (rc == 0) {
        oks++; /* e.g. a changed letter in a plain string */
        K->free_(&b);
      } else {
        fails++;
        assert_true(is_store_err(rc));
      }
      if (k == 1) {
        conn_sched_t cs;
        rc = conn_decode_sched(t, v.len, K->key, strlen(K->key), &cs);
        assert_true(rc == 0 || is_store_err(rc));
      }
      free(t);
    }
    K->free_(&a);
    buf_free(&v);
  }
  assert_true(fails > oks);
}

/* Packs [version, nil x (pos-1), <wrong>] with a custom object at pos. */
typedef void (*packer_fn)(msgpack_packer *pk);
static int buf_cb(void *d, const char *p, size_t n)
{
  buf_append(d, p, n);
  return 0;
}
static void w_float(msgpack_packer *pk)
{
  msgpack_pack_double(pk, 1.5);
}
static void w_int(msgpack_packer *pk)
{
  msgpack_pack_int(pk, 5);
}
static void w_neg(msgpack_packer *pk)
{
  msgpack_pack_int(pk, -1);
}
static void w_big(msgpack_packer *pk)
{
  msgpack_pack_uint64(pk, UINT64_MAX);
}
static void w_str(msgpack_packer *pk)
{
  msgpack_pack_str_with_body(pk, "x", 1);
}
static void w_nulstr(msgpack_packer *pk)
{
  msgpack_pack_str_with_body(pk, "a\0b", 3);
}
static void w_bin(msgpack_packer *pk)
{
  msgpack_pack_bin_with_body(pk, "xyz", 3);
}
static void w_bool(msgpack_packer *pk)
{
  msgpack_pack_true(pk);
}
static void w_arr_int(msgpack_packer *pk)
{
  msgpack_pack_array(pk, 1);
  msgpack_pack_int(pk, 1);
}
static void w_map_int(msgpack_packer *pk)
{
  msgpack_pack_map(pk, 1);
  msgpack_pack_str_with_body(pk, "k", 1);
  msgpack_pack_int(pk, 1);
}
static void w_ext(msgpack_packer *pk)
{
  msgpack_pack_ext_with_body(pk, "ab", 2, 1);
}

static void pack_at(buf_t *out, size_t pos, packer_fn fn, size_t total)
{
  msgpack_packer pk;
  msgpack_packer_init(&pk, out, buf_cb);
  msgpack_pack_array(&pk, total);
  msgpack_pack_int(&pk, RECORD_VERSION);
  for (size_t i = 1; i < total; i++) {
    if (i == pos)
      fn(&pk);
    else
      msgpack_pack_nil(&pk);
  }
}

static void test_wrong_types(void **state)
{
  (void)state;
  const packer_fn always_wrong[] = {w_float, w_arr_int, w_map_int, w_ext, w_nulstr};
  const packer_fn sometimes[] = {w_int, w_neg, w_big, w_str, w_bin, w_bool};
  const size_t nfields[] = {47, 46, 6};
  for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
    const kind_t *K = &kinds[k];
    rec_u b;
    for (size_t pos = 1; pos <= nfields[k]; pos++) {
      for (size_t w = 0; w < ARRAY_SIZE(always_wrong); w++) {
        buf_t v = BUF_INIT;
        pack_at(&v, pos, always_wrong[w], nfields[k] + 1);
        assert_int_equal(K->dec(v.data, v.len, K->key, &b), GRANTD_ESTORE_DECODE);
        buf_free(&v);
      }
      /* Of these, at most two match the field's type (int and bool; big and
       * neg for signed/unsigned ints; str or bin), so most must fail. */
      size_t fails = 0;
      for (size_t w = 0; w < ARRAY_SIZE(sometimes); w++) {
        buf_t v = BUF_INIT;
        pack_at(&v, pos, sometimes[w], nfields[k] + 1);
        int rc = K->dec(v.data, v.len, K->key, &b);
        if (rc == 0)
          K->free_(&b);
        else
          fails++;
        assert_true(rc == 0 || rc == GRANTD_ESTORE_DECODE || rc == GRANTD_ESTORE_AUTH ||
                    rc == GRANTD_ESTORE_KEY);
        buf_free(&v);
      }
      assert_true(fails >= 3);
    }
    /* One field too many. */
    buf_t v = BUF_INIT;
    pack_at(&v, 0, w_int, nfields[k] + 2);
    assert_int_equal(K->dec(v.data, v.len, K->key, &b), GRANTD_ESTORE_DECODE);
    buf_free(&v);
    /* Every field nil: valid and empty. */
    pack_at(&v, 0, w_int, nfields[k] + 1);
    assert_int_equal(K->dec(v.data, v.len, K->key, &b), 0);
    K->free_(&b);
    buf_free(&v);
  }
}

/* An empty string decodes to "" wherever it is, also as the last byte of
 * the value (msgpack-c gives it a NULL pointer there), so a decoded record
 * re-encodes to the same bytes and list items are never NULL. (Found by
 * fuzz_record: [1, nil, ""] decoded provider "" before a trailing nil,
 * NULL without one.) */
static void test_empty_string_last(void **state)
{
  (void)state;
  static const unsigned char with_nil[] = {0x94, 0xcc, 0x01, 0xc0, 0xa0, 0xc0};
  static const unsigned char last[] = {0x93, RECORD_VERSION, 0xc0, 0xa0};
  static const unsigned char scope_last[] = {0x99, 0x01, 0xc0, 0xa1, 'p',  0xc0,
                                             0xc0, 0xc0, 0xc0, 0xc0, 0x91, 0xa0};
  conn_t c;
  assert_int_equal(conn_decode(with_nil, sizeof with_nil, "c1", 2, kr, &c), 0);
  assert_non_null(c.provider);
  assert_string_equal(c.provider, "");
  conn_free(&c);
  assert_int_equal(conn_decode(last, sizeof last, "c1", 2, kr, &c), 0);
  assert_non_null(c.provider);
  assert_string_equal(c.provider, "");
  buf_t b = BUF_INIT;
  assert_int_equal(conn_encode(&c, kr, &b), 0);
  assert_int_equal(b.len, sizeof last);
  assert_memory_equal(b.data, last, sizeof last);
  buf_free(&b);
  conn_free(&c);
  assert_int_equal(conn_decode(scope_last, sizeof scope_last, "c1", 2, kr, &c), 0);
  assert_int_equal(c.scopes.n, 1);
  assert_non_null(c.scopes.items[0]);
  assert_string_equal(c.scopes.items[0], "");
  conn_free(&c);
}

static void test_versions_and_shapes(void **state)
{
  (void)state;
  conn_t c;
  struct {
    const char *bytes;
    size_t n;
    int rc;
  } cases[] = {
    {"\x91\x03", 2, GRANTD_ESTORE_VERSION},                    /* [3] */
    {"\x92\x00\xc0", 3, GRANTD_ESTORE_VERSION},                /* [0, nil] */
    {"\x91\xa1v", 3, GRANTD_ESTORE_DECODE},                    /* ["v"] */
    {"\x91\xff", 2, GRANTD_ESTORE_DECODE},                     /* [-1] */
    {"\x90", 1, GRANTD_ESTORE_DECODE},                         /* [] */
    {"\x01", 1, GRANTD_ESTORE_DECODE},                         /* 1 */
    {"\x81\x01\x01", 3, GRANTD_ESTORE_DECODE},                 /* {1:1} */
    {"\x91\x01\x00", 3, GRANTD_ESTORE_DECODE},                 /* trailing byte */
    {"\xc1", 1, GRANTD_ESTORE_DECODE},                         /* reserved byte */
    {"\xdd\xff\xff\xff\xff\x01", 6, GRANTD_ESTORE_DECODE},     /* 4G-element array */
    {"\xdf\xff\xff\xff\xff\x01\x01", 7, GRANTD_ESTORE_DECODE}, /* 4G-entry map */
    {"\x92\x01\xdb\xff\xff\xff\xff", 7, GRANTD_ESTORE_DECODE}, /* 4 GB string */
    {"\x92\x01\xc6\xff\xff\xff\xff", 7, GRANTD_ESTORE_DECODE}, /* 4 GB bin */
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    char *t = xmemdup(cases[i].bytes, cases[i].n);
    assert_int_equal(conn_decode(t, cases[i].n, "id", 2, kr, &c), cases[i].rc);
    free(t);
  }
  /* Deep nesting is refused, not recursed into without bound. */
  buf_t deep = BUF_INIT;
  buf_append(&deep, "\x92\x01", 2);
  for (int i = 0; i < 5000; i++)
    buf_putc(&deep, (char)0x91);
  buf_putc(&deep, 0x01);
  assert_int_equal(conn_decode(deep.data, deep.len, "id", 2, kr, &c), GRANTD_ESTORE_DECODE);
  buf_free(&deep);
}

/* A version 1 connection, which held `extra` in clear: [1, tenant,
 * provider, grant, status, expires, next, failures, scopes, at, rt,
 * token_type, rt_expires, extra] with extra given as a str or a bin. */
static void pack_v1_conn(buf_t *out, const char *extra, bool as_bin, uint32_t version)
{
  msgpack_packer pk;
  msgpack_packer_init(&pk, out, buf_cb);
  msgpack_pack_array(&pk, 14);
  msgpack_pack_uint32(&pk, version);
  msgpack_pack_str_with_body(&pk, "t1", 2);
  msgpack_pack_str_with_body(&pk, "acme", 4);
  msgpack_pack_int(&pk, GRANT_AUTHORIZATION_CODE);
  msgpack_pack_int(&pk, CONN_ACTIVE);
  for (int i = 0; i < 4; i++)
    msgpack_pack_nil(&pk); /* expires, next, failures, scopes */
  msgpack_pack_nil(&pk);   /* access token */
  msgpack_pack_nil(&pk);   /* refresh token */
  msgpack_pack_str_with_body(&pk, "Bearer", 6);
  msgpack_pack_nil(&pk);
  if (as_bin)
    msgpack_pack_bin_with_body(&pk, extra, strlen(extra));
  else
    msgpack_pack_str_with_body(&pk, extra, strlen(extra));
}

/* A provider stored before refresh_url and revoke_query were appended (its
 * value two rows shorter, so also without the signing rows after them)
 * decodes with all of them unset and every earlier row intact. */
static void test_provider_without_refresh_url(void **state)
{
  (void)state;
  provider_t a, b;
  fill_provider(&a);
  buf_t v = BUF_INIT, old = BUF_INIT;
  assert_int_equal(provider_encode(&a, kr, &v), 0);
  msgpack_zone z;
  msgpack_zone_init(&z, 2048);
  msgpack_object root;
  size_t off = 0;
  assert_int_equal(msgpack_unpack(v.data, v.len, &off, &z, &root), MSGPACK_UNPACK_SUCCESS);
  assert_int_equal(root.type, MSGPACK_OBJECT_ARRAY);
  const msgpack_object *rows = root.via.array.ptr;
  uint32_t n = root.via.array.size;
  const uint32_t after = 3; /* signing_key, signing_key_id, signing_alg */
  assert_int_equal(rows[n - after - 2].type, MSGPACK_OBJECT_STR); /* the refresh_url row */
  assert_memory_equal(rows[n - after - 2].via.str.ptr, "https://{shop}", 14);
  assert_int_equal(rows[n - after - 1].type, MSGPACK_OBJECT_BOOLEAN); /* revoke_query */
  assert_int_equal(rows[n - 2].type, MSGPACK_OBJECT_STR);             /* signing_key_id */
  assert_memory_equal(rows[n - 2].via.str.ptr, "kid-1", 5);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &old, buf_cb);
  msgpack_pack_array(&pk, n - after - 2);
  for (uint32_t i = 0; i + after + 2 < n; i++)
    msgpack_pack_object(&pk, rows[i]);
  msgpack_zone_destroy(&z);
  assert_int_equal(provider_decode(old.data, old.len, "acme", 4, kr, &b), 0);
  assert_null(b.refresh_url);
  assert_false(b.revoke_query);
  assert_null(b.signing_key);
  assert_null(b.signing_key_id);
  assert_null(b.signing_alg);
  free(a.refresh_url);
  a.refresh_url = NULL;
  a.revoke_query = false;
  free_secret(a.signing_key);
  free(a.signing_key_id);
  free(a.signing_alg);
  a.signing_key = a.signing_key_id = a.signing_alg = NULL;
  provider_eq(&a, &b);
  provider_free(&a);
  provider_free(&b);
  buf_free(&v);
  buf_free(&old);
}

static void test_v1_extra_in_clear(void **state)
{
  (void)state;
  const char *extra = "{\"id_token\":\"eyJ-v1-id-token\"}";
  conn_t c, d;
  buf_t v = BUF_INIT;
  pack_v1_conn(&v, extra, false, 1);
  assert_int_equal(conn_decode(v.data, v.len, "c1", 2, kr, &c), 0);
  str_eq(c.extra_json, extra);
  str_eq(c.tenant, "t1");
  conn_sched_t sc;
  assert_int_equal(conn_decode_sched(v.data, v.len, "c1", 2, &sc), 0);
  assert_int_equal(sc.status, CONN_ACTIVE);
  /* Written again, it is version 2 with `extra` sealed: the id_token's text
   * is not in the bytes, and it decodes to the same record. */
  buf_t w = BUF_INIT;
  assert_int_equal(conn_encode(&c, kr, &w), 0);
  assert_int_equal((uint8_t)w.data[1], 2);
  assert_null(memmem(w.data, w.len, "eyJ-v1-id-token", 15));
  assert_int_equal(conn_decode(w.data, w.len, "c1", 2, kr, &d), 0);
  str_eq(d.extra_json, extra);
  /* Bound to its record like every sealed field. */
  conn_t e;
  assert_int_equal(conn_decode(w.data, w.len, "c2", 2, kr, &e), GRANTD_ESTORE_AUTH);
  conn_free(&c);
  conn_free(&d);
  buf_free(&w);
  buf_free(&v);
  /* A version 2 value must hold it sealed (a str there is refused), and a
   * version 1 value in clear (a bin there is refused). */
  pack_v1_conn(&v, extra, false, 2);
  assert_int_equal(conn_decode(v.data, v.len, "c1", 2, kr, &c), GRANTD_ESTORE_DECODE);
  buf_free(&v);
  pack_v1_conn(&v, extra, true, 1);
  assert_int_equal(conn_decode(v.data, v.len, "c1", 2, kr, &c), GRANTD_ESTORE_DECODE);
  buf_free(&v);
}

/* The token view: every field as conn_decode() gives it except a
 * non-empty refresh token, which stays sealed (NULL) and is reported by
 * has_rt; an empty or absent one reads as conn_decode() has it. A blob
 * the view does not open is not checked either. */
static void test_token_view(void **state)
{
  (void)state;
  conn_t a, full, view;
  bool has_rt = false;
  fill_conn(&a);
  buf_t v = BUF_INIT;
  const char *rts[] = {"rt-0123456789", "", NULL};
  for (size_t i = 0; i < ARRAY_SIZE(rts); i++) {
    free(a.refresh_token);
    a.refresh_token = rts[i] ? xstrdup(rts[i]) : NULL;
    buf_reset(&v);
    assert_int_equal(conn_encode(&a, kr, &v), 0);
    assert_int_equal(conn_decode(v.data, v.len, "conn-0001", 9, kr, &full), 0);
    assert_int_equal(conn_decode_token_view(v.data, v.len, "conn-0001", 9, kr, &view, &has_rt), 0);
    assert_int_equal(has_rt, full.refresh_token != NULL && full.refresh_token[0] != '\0');
    if (has_rt) {
      assert_null(view.refresh_token);
      view.refresh_token = xstrdup(full.refresh_token);
    }
    conn_eq(&full, &view);
    conn_free(&full);
    conn_free(&view);
  }
  /* One flipped bit at a time: wherever conn_decode still works the view
   * works and agrees; a flip inside the refresh token's blob fails only
   * conn_decode (the view does not check that tag). */
  free(a.refresh_token);
  a.refresh_token = xstrdup("rt-0123456789");
  buf_reset(&v);
  assert_int_equal(conn_encode(&a, kr, &v), 0);
  /* Flip each byte of the record in turn and compare the two decoders. */
  size_t view_only_ok = 0;
  for (size_t i = 0; i < v.len; i++) {
    v.data[i] ^= 0x01;
    int rf = conn_decode(v.data, v.len, "conn-0001", 9, kr, &full);
    int rv = conn_decode_token_view(v.data, v.len, "conn-0001", 9, kr, &view, &has_rt);
    if (rf == 0) {
      /* the view never fails where the full decode works, and agrees */
      assert_int_equal(rv, 0);
      assert_int_equal(has_rt, full.refresh_token != NULL && full.refresh_token[0] != '\0');
    }
    if (rf != 0 && rv == 0)
      view_only_ok++;
    if (rf == 0)
      conn_free(&full);
    if (rv == 0)
      conn_free(&view);
    v.data[i] ^= 0x01;
  }
  assert_true(view_only_ok > 0); /* flips inside the refresh token's ciphertext or tag */
  buf_free(&v);
  conn_free(&a);
}

static void test_sealed_binding(void **state)
{
  (void)state;
  conn_t a, b;
  fill_conn(&a);
  buf_t v = BUF_INIT;
  assert_int_equal(conn_encode(&a, kr, &v), 0);
  /* Under another key (a copied record), the seals do not open. */
  assert_int_equal(conn_decode(v.data, v.len, "conn-0002", 9, kr, &b), GRANTD_ESTORE_AUTH);
  assert_zeroed(&b, sizeof(b));
  /* Another master key under the same id; another id. */
  uint8_t other[SEAL_KEY_LEN] = {1};
  seal_keyring_t *k2 = seal_keyring_new();
  seal_keyring_add(k2, 3, other);
  assert_int_equal(conn_decode(v.data, v.len, "conn-0001", 9, k2, &b), GRANTD_ESTORE_AUTH);
  seal_keyring_free(k2);
  k2 = seal_keyring_new();
  seal_keyring_add(k2, 4, other);
  assert_int_equal(conn_decode(v.data, v.len, "conn-0001", 9, k2, &b), GRANTD_ESTORE_KEY);
  /* The scheduling view needs no key at all. */
  conn_sched_t cs;
  assert_int_equal(conn_decode_sched(v.data, v.len, "conn-0001", 9, &cs), 0);
  assert_int_equal(cs.id.n, 9);
  assert_memory_equal(cs.tenant.p, "tenant-a", cs.tenant.n);
  assert_memory_equal(cs.provider.p, "acme", cs.provider.n);
  assert_int_equal(cs.grant, GRANT_REFRESH_TOKEN);
  assert_int_equal(cs.status, CONN_REVOKED);
  assert_int_equal(cs.expires_at, a.expires_at);
  assert_int_equal(cs.next_refresh_at, a.next_refresh_at);
  assert_int_equal(cs.failures, a.failures);
  seal_keyring_free(k2);
  buf_free(&v);

  /* A sealed plaintext with a NUL byte is refused (it could not be a C
   * string): [1, nil x 8, bin(seal("a\0b"))] puts it in access_token. */
  buf_t blob = BUF_INIT;
  seal_seal(kr, RECORD_DB_CONNECTIONS, "c", 1, "a\0b", 3, &blob);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &v, buf_cb);
  msgpack_pack_array(&pk, 10);
  msgpack_pack_int(&pk, 1);
  for (int i = 0; i < 8; i++)
    msgpack_pack_nil(&pk);
  msgpack_pack_bin_with_body(&pk, blob.data, blob.len);
  assert_int_equal(conn_decode(v.data, v.len, "c", 1, kr, &b), GRANTD_ESTORE_DECODE);
  buf_free(&blob);
  buf_free(&v);
  conn_free(&a);
}

static void test_compact(void **state)
{
  (void)state;
  /* A realistic connection: 200-byte access token, 100-byte refresh token. */
  conn_t c;
  memset(&c, 0, sizeof(c));
  c.id = xstrdup("c-0000000001");
  c.tenant = xstrdup("tenant-0001");
  c.provider = xstrdup("google");
  c.grant = GRANT_AUTHORIZATION_CODE;
  c.status = CONN_ACTIVE;
  char at[201], rt[101];
  memset(at, 'a', 200);
  at[200] = 0;
  memset(rt, 'r', 100);
  rt[100] = 0;
  c.access_token = xstrdup(at);
  c.refresh_token = xstrdup(rt);
  c.token_type = xstrdup("Bearer");
  c.expires_at = 1700000360000;
  c.next_refresh_at = 1700000300000;
  c.refreshed_at = c.created_at = c.updated_at = 1700000000000;
  c.revision = 3;
  buf_t v = BUF_INIT;
  assert_int_equal(conn_encode(&c, kr, &v), 0);
  /* 300 bytes of tokens + 2 x 30 seal overhead + a few dozen of framing. */
  print_message("conn value: %zu bytes (tokens 300)\n", v.len);
  assert_true(v.len < 300 + 60 + 100);
  conn_free(&c);
  buf_free(&v);
}

static void test_helpers(void **state)
{
  (void)state;
  for (int g = 0; g <= GRANT_REFRESH_TOKEN; g++) {
    grant_t out;
    assert_int_equal(grant_parse(grant_name((grant_t)g), &out), 0);
    assert_int_equal(out, g);
  }
  for (int s = 0; s < CONN_STATUS_COUNT; s++) {
    conn_status_t out;
    assert_int_equal(conn_status_parse(conn_status_name((conn_status_t)s), &out), 0);
    assert_int_equal(out, s);
  }
  for (int a = 0; a <= CLIENT_AUTH_POST; a++) {
    client_auth_t out;
    assert_int_equal(client_auth_parse(client_auth_name((client_auth_t)a), &out), 0);
    assert_int_equal(out, a);
  }
  grant_t g = GRANT_PASSWORD;
  assert_int_equal(grant_parse("implicit", &g), -1);
  assert_int_equal(g, GRANT_PASSWORD);
  assert_int_equal(grant_parse(NULL, &g), -1);
  conn_status_t st;
  assert_int_equal(conn_status_parse("Active", &st), -1);
  client_auth_t ca;
  assert_int_equal(client_auth_parse("jwt", &ca), -1);
  assert_string_equal(grant_name((grant_t)99), "unknown");
  assert_string_equal(conn_status_name((conn_status_t)-1), "unknown");
  assert_string_equal(client_auth_name((client_auth_t)7), "unknown");
  assert_string_equal(conn_status_name(CONN_REFRESH_FAILING), "refresh_failing");

  kvlist_t kv = {0};
  kvlist_push(&kv, "a", "1");
  kvlist_push(&kv, "b", "2");
  assert_string_equal(kvlist_get(&kv, "b"), "2");
  assert_null(kvlist_get(&kv, "c"));
  kvlist_free(&kv);
  assert_int_equal(kv.n, 0);
  strlist_t sl = {0};
  strlist_push(&sl, "x");
  assert_int_equal(sl.n, 1);
  strlist_free(&sl);
  assert_null(sl.items);

  provider_t p, p2;
  fill_provider(&p);
  provider_copy(&p2, &p);
  provider_eq(&p, &p2);
  assert_ptr_not_equal(p.client_secret, p2.client_secret);
  provider_free(&p);
  provider_eq(&p2, &p2);
  provider_free(&p2);
  conn_t c, c2;
  fill_conn(&c);
  conn_copy(&c2, &c);
  conn_eq(&c, &c2);
  assert_ptr_not_equal(c.scopes.items, c2.scopes.items);
  conn_free(&c);
  conn_free(&c2);
  state_rec_t s, s2;
  fill_state(&s);
  state_rec_copy(&s2, &s);
  state_eq(&s, &s2);
  state_rec_free(&s);
  state_rec_free(&s2);
  assert_zeroed(&s2, sizeof(s2));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_round_trip_full),
    cmocka_unit_test(test_round_trip_empty),
    cmocka_unit_test(test_truncations),
    cmocka_unit_test(test_random_flips),
    cmocka_unit_test(test_wrong_types),
    cmocka_unit_test(test_empty_string_last),
    cmocka_unit_test(test_versions_and_shapes),
    cmocka_unit_test(test_v1_extra_in_clear),
    cmocka_unit_test(test_provider_without_refresh_url),
    cmocka_unit_test(test_sealed_binding),
    cmocka_unit_test(test_token_view),
    cmocka_unit_test(test_compact),
    cmocka_unit_test(test_helpers),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
