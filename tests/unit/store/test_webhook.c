/*
 * test_webhook.c - the codecs of the stored webhook endpoints and their
 * delivery progress (store/webhook.h): round trips of every field (old
 * secret and its expiry, event patterns, the status fields, the disabled
 * flag, the entries), the byte layout the header documents (secrets only
 * sealed, the cursor where retention reads it), and the rejection of
 * truncated, mistyped, foreign and garbage values, and the entry limit.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/mem.h"
#include "model/lists.h"
#include "store/seal.h"
#include "store/webhook.h"

static uint64_t rng_next(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static seal_keyring_t *new_kr(uint32_t id, uint8_t fill)
{
  seal_keyring_t *kr = seal_keyring_new();
  uint8_t key[SEAL_KEY_LEN];
  memset(key, fill, sizeof key);
  assert_int_equal(seal_keyring_add(kr, id, key), 0);
  return kr;
}

static void add_key(seal_keyring_t *kr, uint32_t id, uint8_t fill)
{
  uint8_t key[SEAL_KEY_LEN];
  memset(key, fill, sizeof key);
  assert_int_equal(seal_keyring_add(kr, id, key), 0);
}

static void fill_rec(wh_rec_t *r)
{
  memset(r, 0, sizeof *r);
  r->name = xstrdup("billing-sync");
  r->url = xstrdup("https://hooks.example.com/grantd?x=1&y=\"q\"\\/\xc3\xa9");
  strlist_push(&r->events, "connection.*");
  strlist_push(&r->events, "webhook.test");
  strlist_push(&r->events, "connection.needs_reauth");
  r->secret = xstrdup("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  r->old_secret = xstrdup("whsec_OLDOLDOLD9r8GKYqrTwjUPD8ILPZIo2La");
  r->old_until = 1700000123456LL;
  r->created_at = 1600000000001LL;
  r->updated_at = 1700000000002LL;
}

static void assert_str_or_null(const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    assert_ptr_equal(a, b);
  else
    assert_string_equal(a, b);
}

static void assert_rec_equal(const wh_rec_t *a, const wh_rec_t *b)
{
  assert_str_or_null(a->name, b->name);
  assert_str_or_null(a->url, b->url);
  assert_int_equal(a->events.n, b->events.n);
  for (size_t i = 0; i < a->events.n; i++)
    assert_string_equal(a->events.items[i], b->events.items[i]);
  assert_str_or_null(a->secret, b->secret);
  assert_str_or_null(a->old_secret, b->old_secret);
  assert_int_equal(a->old_until, b->old_until);
  assert_int_equal(a->created_at, b->created_at);
  assert_int_equal(a->updated_at, b->updated_at);
}

static void assert_rec_zero(const wh_rec_t *r)
{
  wh_rec_t z;
  memset(&z, 0, sizeof z);
  assert_memory_equal(r, &z, sizeof z);
}

static int decode(const buf_t *v, const char *name, const seal_keyring_t *kr, wh_rec_t *out)
{
  return wh_rec_decode(v->data, v->len, name, strlen(name), kr, out);
}

static bool contains(const buf_t *b, const char *s)
{
  size_t n = strlen(s);
  for (size_t i = 0; i + n <= b->len; i++)
    if (memcmp(b->data + i, s, n) == 0)
      return true;
  return false;
}

/* ---- endpoint records ---- */

static void test_rec_round_trip(void **state)
{
  (void)state;
  seal_keyring_t *kr = new_kr(1, 0x11);
  wh_rec_t r, d;
  fill_rec(&r);
  buf_t v = BUF_INIT;
  assert_int_equal(wh_rec_encode(&r, kr, &v), 0);
  /* layout: version, clear length, clear JSON, sealed secrets */
  assert_true(v.len > 5);
  assert_int_equal((uint8_t)v.data[0], WH_REC_VERSION);
  size_t cl = ((size_t)(uint8_t)v.data[1] << 24) | ((size_t)(uint8_t)v.data[2] << 16) |
              ((size_t)(uint8_t)v.data[3] << 8) | (uint8_t)v.data[4];
  assert_true(cl > 0 && cl < v.len - 5);
  assert_int_equal(v.data[5], '{');
  assert_int_equal(v.data[5 + cl - 1], '}');
  uint32_t kid = 0;
  assert_int_equal(seal_blob_key_id(v.data + 5 + cl, v.len - 5 - cl, &kid), 0);
  assert_int_equal(kid, 1);
  /* secrets never in clear, the rest is */
  assert_false(contains(&v, "whsec_"));
  assert_false(contains(&v, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
  assert_false(contains(&v, "secret"));
  assert_true(contains(&v, "hooks.example.com"));
  assert_true(contains(&v, "connection.needs_reauth"));
  assert_true(contains(&v, "1700000123456"));

  assert_int_equal(decode(&v, r.name, kr, &d), 0);
  assert_rec_equal(&r, &d);
  wh_rec_free(&d);

  /* no old secret, no events, extreme times */
  free_secret(r.old_secret);
  r.old_secret = NULL;
  r.old_until = 0;
  strlist_free(&r.events);
  r.created_at = INT64_MIN;
  r.updated_at = INT64_MAX;
  buf_reset(&v);
  assert_int_equal(wh_rec_encode(&r, kr, &v), 0);
  assert_int_equal(decode(&v, r.name, kr, &d), 0);
  assert_rec_equal(&r, &d);
  assert_null(d.old_secret);
  assert_int_equal(d.events.n, 0);
  wh_rec_free(&d);

  /* many patterns, and an old secret whose overlap is negative (expired) */
  char p[64];
  for (int i = 0; i < 300; i++) {
    snprintf(p, sizeof p, "connection.p%d", i);
    strlist_push(&r.events, p);
  }
  r.old_secret = xstrdup("whsec_x");
  r.old_until = -1;
  buf_reset(&v);
  assert_int_equal(wh_rec_encode(&r, kr, &v), 0);
  assert_int_equal(decode(&v, r.name, kr, &d), 0);
  assert_rec_equal(&r, &d);
  wh_rec_free(&d);

  /* NULL url and secret are stored as empty strings */
  free(r.url);
  r.url = NULL;
  free_secret(r.secret);
  r.secret = NULL;
  buf_reset(&v);
  assert_int_equal(wh_rec_encode(&r, kr, &v), 0);
  assert_int_equal(decode(&v, r.name, kr, &d), 0);
  assert_string_equal(d.url, "");
  assert_string_equal(d.secret, "");
  assert_string_equal(d.old_secret, "whsec_x");
  wh_rec_free(&d);

  wh_rec_free(&r);
  assert_rec_zero(&r);
  wh_rec_free(NULL);
  buf_free(&v);
  seal_keyring_free(kr);
}

/* The encoding appends; the key names the record (a value moved to
 * another name does not open); rotation keeps old values readable. */
static void test_rec_keys_and_names(void **state)
{
  (void)state;
  seal_keyring_t *kr = new_kr(1, 0x11);
  wh_rec_t r, d;
  fill_rec(&r);
  buf_t v = BUF_INIT;
  buf_puts(&v, "prefix");
  assert_int_equal(wh_rec_encode(&r, kr, &v), 0);
  assert_memory_equal(v.data, "prefix", 6);
  assert_int_equal(wh_rec_decode(v.data + 6, v.len - 6, r.name, strlen(r.name), kr, &d), 0);
  assert_rec_equal(&r, &d);
  wh_rec_free(&d);
  buf_t w = BUF_INIT;
  buf_append(&w, v.data + 6, v.len - 6);
  buf_free(&v);

  /* name bound by the seal; the decoded name is the key given */
  assert_int_equal(decode(&w, "billing-synd", kr, &d), GRANTD_ESTORE_AUTH);
  assert_rec_zero(&d);
  assert_int_equal(wh_rec_decode(w.data, w.len, "billing-sync-x", 12, kr, &d), 0);
  assert_string_equal(d.name, "billing-sync");
  wh_rec_free(&d);

  /* a key that is not there; a different key under the same id */
  seal_keyring_t *other = new_kr(2, 0x22);
  assert_int_equal(decode(&w, r.name, other, &d), GRANTD_ESTORE_KEY);
  assert_rec_zero(&d);
  seal_keyring_t *same_id = new_kr(1, 0x33);
  assert_int_equal(decode(&w, r.name, same_id, &d), GRANTD_ESTORE_AUTH);
  assert_rec_zero(&d);

  /* rotation: a new current key seals, the old one still opens */
  add_key(kr, 7, 0x77);
  assert_int_equal(seal_keyring_set_current(kr, 7), 0);
  buf_t v7 = BUF_INIT;
  assert_int_equal(wh_rec_encode(&r, kr, &v7), 0);
  size_t cl = ((size_t)(uint8_t)v7.data[3] << 8) | (uint8_t)v7.data[4];
  uint32_t kid = 0;
  assert_int_equal(seal_blob_key_id(v7.data + 5 + cl, v7.len - 5 - cl, &kid), 0);
  assert_int_equal(kid, 7);
  assert_int_equal(decode(&w, r.name, kr, &d), 0);
  assert_rec_equal(&r, &d);
  wh_rec_free(&d);
  assert_int_equal(decode(&v7, r.name, kr, &d), 0);
  assert_rec_equal(&r, &d);
  wh_rec_free(&d);

  /* no current key: nothing is appended */
  seal_keyring_t *empty = seal_keyring_new();
  buf_t e = BUF_INIT;
  buf_puts(&e, "keep");
  assert_int_equal(wh_rec_encode(&r, empty, &e), GRANTD_ESTORE_KEY);
  assert_int_equal(e.len, 4);
  assert_memory_equal(e.data, "keep", 4);
  buf_free(&e);

  seal_keyring_free(empty);
  seal_keyring_free(same_id);
  seal_keyring_free(other);
  buf_free(&v7);
  buf_free(&w);
  wh_rec_free(&r);
  seal_keyring_free(kr);
}

static void test_rec_copy(void **state)
{
  (void)state;
  wh_rec_t r, c;
  fill_rec(&r);
  wh_rec_copy(&c, &r);
  assert_rec_equal(&r, &c);
  assert_ptr_not_equal(c.name, r.name);
  assert_ptr_not_equal(c.secret, r.secret);
  assert_ptr_not_equal(c.old_secret, r.old_secret);
  assert_ptr_not_equal(c.events.items, r.events.items);
  wh_rec_free(&r); /* the copy is independent */
  assert_string_equal(c.secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  assert_string_equal(c.events.items[1], "webhook.test");
  wh_rec_free(&c);
  /* a copy of an empty record is empty */
  memset(&r, 0, sizeof r);
  wh_rec_copy(&c, &r);
  assert_rec_zero(&c);
  wh_rec_free(&c);
}

/* Every prefix of a valid value, and every single-byte change after the
 * version byte, is rejected with *out zeroed. */
static void test_rec_truncated_and_flipped(void **state)
{
  (void)state;
  seal_keyring_t *kr = new_kr(1, 0x11);
  wh_rec_t r, d;
  fill_rec(&r);
  buf_t v = BUF_INIT;
  assert_int_equal(wh_rec_encode(&r, kr, &v), 0);
  for (size_t n = 0; n < v.len; n++) {
    uint8_t *p = xmalloc(n ? n : 1); /* exact size: ASan sees over-reads */
    memcpy(p, v.data, n);
    memset(&d, 0xa5, sizeof d);
    int rc = wh_rec_decode(p, n, r.name, strlen(r.name), kr, &d);
    if (rc != GRANTD_ESTORE_DECODE && rc != GRANTD_ESTORE_AUTH)
      fail_msg("truncated to %zu of %zu: rc %d", n, v.len, rc);
    if (n < 5)
      assert_int_equal(rc, GRANTD_ESTORE_DECODE);
    assert_rec_zero(&d);
    free(p);
  }
  /* trailing bytes are part of the sealed blob: rejected */
  buf_t x = BUF_INIT;
  buf_append(&x, v.data, v.len);
  buf_putc(&x, 0);
  assert_int_equal(decode(&x, r.name, kr, &d), GRANTD_ESTORE_AUTH);
  assert_rec_zero(&d);
  buf_free(&x);
  /* one byte changed anywhere: the clear part no longer parses (it is
   * not authenticated: a change that kept it valid would decode), the
   * blob's format or key id is unknown, or its tag fails */
  size_t cl = ((size_t)(uint8_t)v.data[3] << 8) | (uint8_t)v.data[4];
  for (size_t i = 1; i < v.len; i++) {
    uint8_t *p = xmalloc(v.len);
    memcpy(p, v.data, v.len);
    p[i] ^= 0x80;
    int rc = wh_rec_decode(p, v.len, r.name, strlen(r.name), kr, &d);
    if (i == 5 + cl)
      assert_int_equal(rc, GRANTD_ESTORE_DECODE); /* format byte */
    else if (i == 5 + cl + 1)
      assert_int_equal(rc, GRANTD_ESTORE_KEY); /* key id 1 ^ 0x80 */
    else if (i > 5 + cl)
      assert_int_equal(rc, GRANTD_ESTORE_AUTH);
    else if (i < 5)
      assert_int_equal(rc, GRANTD_ESTORE_DECODE); /* length too big */
    else if (rc == 0)
      wh_rec_free(&d); /* a string byte changed, still valid JSON */
    else
      assert_int_equal(rc, GRANTD_ESTORE_DECODE);
    if (rc != 0)
      assert_rec_zero(&d);
    free(p);
  }
  buf_free(&v);
  wh_rec_free(&r);
  seal_keyring_free(kr);
}

/* The key id of an endpoint value's blob, read without opening it (the
 * census and re-seal passes): the sealing key's id, and -1 for a value of
 * another version, any truncation, or garbage. */
static void test_rec_seal_id(void **state)
{
  (void)state;
  seal_keyring_t *kr = new_kr(7, 0x11);
  wh_rec_t r;
  fill_rec(&r);
  buf_t v = BUF_INIT;
  assert_int_equal(wh_rec_encode(&r, kr, &v), 0);
  uint32_t id = 0;
  assert_int_equal(wh_rec_seal_id(v.data, v.len, &id), 1);
  assert_int_equal(id, 7);
  /* Cut anywhere before the end of the blob's header, nonce and tag. */
  const uint8_t *p = (const uint8_t *)v.data;
  size_t blob_at = 5 + ((size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4]);
  for (size_t n = 0; n < blob_at + 2 + SEAL_NONCE_LEN + SEAL_TAG_LEN; n++)
    assert_int_equal(wh_rec_seal_id(v.data, n, &id), -1);
  v.data[0] = WH_REC_VERSION + 1;
  assert_int_equal(wh_rec_seal_id(v.data, v.len, &id), -1);
  v.data[0] = WH_REC_VERSION;
  v.data[1] = (char)0xff; /* the clear part's length runs past the end */
  assert_int_equal(wh_rec_seal_id(v.data, v.len, &id), -1);
  buf_free(&v);
  wh_rec_free(&r);
  seal_keyring_free(kr);
}

static void test_rec_version_and_garbage(void **state)
{
  (void)state;
  seal_keyring_t *kr = new_kr(1, 0x11);
  wh_rec_t r, d;
  fill_rec(&r);
  buf_t v = BUF_INIT;
  assert_int_equal(wh_rec_encode(&r, kr, &v), 0);
  const uint8_t versions[] = {0, 2, 0x7f, 0x80, 0xff};
  for (size_t i = 0; i < sizeof versions; i++) {
    v.data[0] = (char)versions[i];
    memset(&d, 0xa5, sizeof d);
    assert_int_equal(decode(&v, r.name, kr, &d), GRANTD_ESTORE_VERSION);
    assert_rec_zero(&d);
  }
  v.data[0] = WH_REC_VERSION;
  assert_int_equal(decode(&v, r.name, kr, &d), 0);
  wh_rec_free(&d);
  /* a length field that runs past the end, or covers everything */
  for (int k = 1; k <= 4; k++) {
    buf_t x = BUF_INIT;
    buf_append(&x, v.data, v.len);
    x.data[k] = (char)0xff;
    assert_int_equal(decode(&x, r.name, kr, &d), GRANTD_ESTORE_DECODE);
    assert_rec_zero(&d);
    buf_free(&x);
  }
  uint8_t all[] = {WH_REC_VERSION, 0, 0, 0, 2, '{', '}'};
  assert_int_equal(wh_rec_decode(all, sizeof all, "n", 1, kr, &d), GRANTD_ESTORE_DECODE);
  uint8_t hdr_only[] = {WH_REC_VERSION, 0, 0, 0, 0};
  assert_int_equal(wh_rec_decode(hdr_only, sizeof hdr_only, "n", 1, kr, &d), GRANTD_ESTORE_DECODE);
  assert_rec_zero(&d);
  /* random bytes, with and without a valid version byte */
  uint64_t s = 99;
  for (int i = 0; i < 5000; i++) {
    size_t n = (size_t)(rng_next(&s) % 200);
    uint8_t *p = xmalloc(n ? n : 1);
    for (size_t k = 0; k < n; k++)
      p[k] = (uint8_t)rng_next(&s);
    if (n > 0 && (i & 1))
      p[0] = WH_REC_VERSION;
    if (n > 4 && (i & 2)) { /* a plausible length */
      size_t cl = n > 5 ? (size_t)(rng_next(&s) % (n - 5)) : 0;
      p[1] = p[2] = 0;
      p[3] = (uint8_t)(cl >> 8);
      p[4] = (uint8_t)cl;
    }
    memset(&d, 0xa5, sizeof d);
    int rc = wh_rec_decode(p, n, "n", 1, kr, &d);
    assert_int_not_equal(rc, 0);
    assert_rec_zero(&d);
    free(p);
  }
  buf_free(&v);
  wh_rec_free(&r);
  seal_keyring_free(kr);
}

/* A value built by hand: clear JSON and sealed JSON as given. */
static void craft(const seal_keyring_t *kr, const char *name, const char *clear, const char *sealed,
                  buf_t *out)
{
  buf_reset(out);
  size_t cl = strlen(clear);
  buf_putc(out, WH_REC_VERSION);
  buf_putc(out, (char)(cl >> 24));
  buf_putc(out, (char)(cl >> 16));
  buf_putc(out, (char)(cl >> 8));
  buf_putc(out, (char)cl);
  buf_append(out, clear, cl);
  assert_int_equal(
    seal_seal(kr, RECORD_DB_WEBHOOKS, name, strlen(name), sealed, strlen(sealed), out), 0);
}

#define GOOD_CLEAR \
  "{\"url\":\"https://h.example/x\",\"events\":[\"connection.*\"],\"created_at\":1," \
  "\"updated_at\":2,\"old_until\":3}"
#define GOOD_SEALED "{\"secret\":\"whsec_a\",\"old_secret\":\"whsec_b\"}"

static void test_rec_fields(void **state)
{
  (void)state;
  seal_keyring_t *kr = new_kr(1, 0x11);
  wh_rec_t d;
  buf_t v = BUF_INIT;
  craft(kr, "ep", GOOD_CLEAR, GOOD_SEALED, &v);
  assert_int_equal(decode(&v, "ep", kr, &d), 0);
  assert_string_equal(d.name, "ep");
  assert_string_equal(d.url, "https://h.example/x");
  assert_int_equal(d.events.n, 1);
  assert_string_equal(d.events.items[0], "connection.*");
  assert_int_equal(d.created_at, 1);
  assert_int_equal(d.updated_at, 2);
  assert_int_equal(d.old_until, 3);
  assert_string_equal(d.secret, "whsec_a");
  assert_string_equal(d.old_secret, "whsec_b");
  wh_rec_free(&d);
  /* unknown fields are ignored; old_secret is optional */
  craft(kr, "ep",
        "{\"url\":\"u\",\"events\":[],\"created_at\":1,\"updated_at\":2,\"old_until\":0,"
        "\"future\":{\"a\":[1]}}",
        "{\"secret\":\"s\",\"x\":1}", &v);
  assert_int_equal(decode(&v, "ep", kr, &d), 0);
  assert_null(d.old_secret);
  assert_int_equal(d.events.n, 0);
  wh_rec_free(&d);

  const char *bad_clear[] = {
    "",
    "{",
    "[]",
    "null",
    "\"x\"",
    "{}",
    /* url */
    "{\"events\":[],\"created_at\":1,\"updated_at\":2,\"old_until\":3}",
    "{\"url\":5,\"events\":[],\"created_at\":1,\"updated_at\":2,\"old_until\":3}",
    "{\"url\":null,\"events\":[],\"created_at\":1,\"updated_at\":2,\"old_until\":3}",
    /* events */
    "{\"url\":\"u\",\"created_at\":1,\"updated_at\":2,\"old_until\":3}",
    "{\"url\":\"u\",\"events\":\"connection.*\",\"created_at\":1,\"updated_at\":2,"
    "\"old_until\":3}",
    "{\"url\":\"u\",\"events\":{},\"created_at\":1,\"updated_at\":2,\"old_until\":3}",
    "{\"url\":\"u\",\"events\":[\"a\",1],\"created_at\":1,\"updated_at\":2,\"old_until\":3}",
    "{\"url\":\"u\",\"events\":[null],\"created_at\":1,\"updated_at\":2,\"old_until\":3}",
    /* times */
    "{\"url\":\"u\",\"events\":[],\"updated_at\":2,\"old_until\":3}",
    "{\"url\":\"u\",\"events\":[],\"created_at\":1,\"old_until\":3}",
    "{\"url\":\"u\",\"events\":[],\"created_at\":1,\"updated_at\":2}",
    "{\"url\":\"u\",\"events\":[],\"created_at\":\"1\",\"updated_at\":2,\"old_until\":3}",
    "{\"url\":\"u\",\"events\":[],\"created_at\":1.5,\"updated_at\":2,\"old_until\":3}",
    "{\"url\":\"u\",\"events\":[],\"created_at\":1,\"updated_at\":2,\"old_until\":null}",
    "{\"url\":\"u\",\"events\":[],\"created_at\":1,\"updated_at\":true,\"old_until\":3}",
    /* duplicate keys */
    "{\"url\":\"u\",\"url\":\"v\",\"events\":[],\"created_at\":1,\"updated_at\":2,"
    "\"old_until\":3}",
    /* trailing data */
    GOOD_CLEAR "x",
  };
  for (size_t i = 0; i < sizeof bad_clear / sizeof bad_clear[0]; i++) {
    craft(kr, "ep", bad_clear[i], GOOD_SEALED, &v);
    memset(&d, 0xa5, sizeof d);
    int rc = decode(&v, "ep", kr, &d);
    if (rc != GRANTD_ESTORE_DECODE)
      fail_msg("clear part %zu accepted (rc %d): %s", i, rc, bad_clear[i]);
    assert_rec_zero(&d);
  }
  const char *bad_sealed[] = {
    "",
    "{",
    "whsec_a",
    "[\"whsec_a\"]",
    "{}",
    "{\"old_secret\":\"whsec_b\"}",
    "{\"secret\":null}",
    "{\"secret\":5}",
    "{\"secret\":[\"whsec_a\"]}",
    "{\"secret\":\"a\",\"secret\":\"b\"}",
  };
  for (size_t i = 0; i < sizeof bad_sealed / sizeof bad_sealed[0]; i++) {
    craft(kr, "ep", GOOD_CLEAR, bad_sealed[i], &v);
    memset(&d, 0xa5, sizeof d);
    int rc = decode(&v, "ep", kr, &d);
    if (rc != GRANTD_ESTORE_DECODE)
      fail_msg("sealed part %zu accepted (rc %d): %s", i, rc, bad_sealed[i]);
    assert_rec_zero(&d);
  }
  /* a value sealed for another database does not open here */
  buf_reset(&v);
  buf_putc(&v, WH_REC_VERSION);
  size_t cl = strlen(GOOD_CLEAR);
  char len[4] = {0, 0, (char)(cl >> 8), (char)cl};
  buf_append(&v, len, 4);
  buf_puts(&v, GOOD_CLEAR);
  assert_int_equal(seal_seal(kr, "connections", "ep", 2, GOOD_SEALED, strlen(GOOD_SEALED), &v), 0);
  assert_int_equal(decode(&v, "ep", kr, &d), GRANTD_ESTORE_AUTH);
  assert_rec_zero(&d);
  buf_free(&v);
  seal_keyring_free(kr);
}

/* ---- delivery progress ---- */

static void fill_prog(wh_prog_t *p, size_t n)
{
  memset(p, 0, sizeof *p);
  p->cursor = 0x0102030405060708ULL;
  p->flags = WH_PROG_DISABLED;
  p->last_ok_ms = 1700000000111LL;
  p->last_err_ms = 1700000000222LL;
  p->last_err_status = 503;
  strcpy(p->last_err_class, "http_5xx");
  p->delivered = 123456789012ULL;
  p->failed = 42;
  p->n = n;
  p->ent = n ? xcalloc(n, sizeof *p->ent) : NULL;
  for (size_t i = 0; i < n; i++) {
    p->ent[i].seq = p->cursor + 1 + 2 * i;
    p->ent[i].attempts = (uint32_t)(i * 7 + 1);
    p->ent[i].done = i % 3 == 0;
    p->ent[i].first_ms = 1700000000000LL + (int64_t)i;
    p->ent[i].next_ms = i % 2 ? 0 : 1700000500000LL + (int64_t)i;
  }
}

static void assert_prog_equal(const wh_prog_t *a, const wh_prog_t *b, size_t n)
{
  assert_int_equal(a->cursor, b->cursor);
  assert_int_equal(a->flags, b->flags);
  assert_int_equal(a->last_ok_ms, b->last_ok_ms);
  assert_int_equal(a->last_err_ms, b->last_err_ms);
  assert_int_equal(a->last_err_status, b->last_err_status);
  assert_string_equal(a->last_err_class, b->last_err_class);
  assert_int_equal(a->delivered, b->delivered);
  assert_int_equal(a->failed, b->failed);
  assert_int_equal(b->n, n);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(a->ent[i].seq, b->ent[i].seq);
    assert_int_equal(a->ent[i].attempts, b->ent[i].attempts);
    assert_int_equal(a->ent[i].done, b->ent[i].done);
    assert_int_equal(a->ent[i].first_ms, b->ent[i].first_ms);
    assert_int_equal(a->ent[i].next_ms, b->ent[i].next_ms);
  }
}

static void assert_prog_zero(const wh_prog_t *p)
{
  wh_prog_t z;
  memset(&z, 0, sizeof z);
  assert_memory_equal(p, &z, sizeof z);
}

static void test_prog_round_trip(void **state)
{
  (void)state;
  static const size_t counts[] = {0, 1, 2, 17, WH_PROG_MAX_ENT};
  for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
    wh_prog_t p, d;
    fill_prog(&p, counts[c]);
    buf_t v = BUF_INIT;
    buf_puts(&v, "xy"); /* appends */
    wh_prog_encode(&p, &v);
    assert_memory_equal(v.data, "xy", 2);
    assert_int_equal(v.len, 2 + WH_PROG_HDR + counts[c] * WH_PROG_ENT_LEN);
    const uint8_t *b = (const uint8_t *)v.data + 2;
    /* the documented layout: version, cursor big-endian, flags */
    assert_int_equal(b[0], WH_PROG_VERSION);
    for (int i = 0; i < 8; i++)
      assert_int_equal(b[1 + i], i + 1);
    assert_int_equal(b[9], WH_PROG_DISABLED);
    uint64_t cur = 0;
    assert_int_equal(wh_prog_cursor(b, v.len - 2, &cur), 0);
    assert_int_equal(cur, p.cursor);
    assert_int_equal(wh_prog_decode(b, v.len - 2, &d), 0);
    assert_prog_equal(&p, &d, counts[c]);
    if (counts[c] == 0)
      assert_null(d.ent);
    wh_prog_free(&d);
    assert_prog_zero(&d);
    wh_prog_free(&p);
    buf_free(&v);
  }
  wh_prog_free(NULL);

  /* extreme values, not disabled, no error */
  wh_prog_t p, d;
  fill_prog(&p, 3);
  p.cursor = UINT64_MAX;
  p.flags = 0;
  p.last_ok_ms = INT64_MAX;
  p.last_err_ms = INT64_MIN;
  p.last_err_status = -1;
  p.last_err_class[0] = '\0';
  p.delivered = UINT64_MAX;
  p.failed = 0;
  p.ent[0].seq = UINT64_MAX;
  p.ent[0].attempts = UINT32_MAX;
  p.ent[1].first_ms = INT64_MIN;
  p.ent[1].next_ms = -1;
  p.ent[2].next_ms = INT64_MAX;
  buf_t v = BUF_INIT;
  wh_prog_encode(&p, &v);
  assert_int_equal(wh_prog_decode(v.data, v.len, &d), 0);
  assert_prog_equal(&p, &d, 3);
  assert_int_equal(d.flags & WH_PROG_DISABLED, 0);
  wh_prog_free(&d);
  wh_prog_free(&p);
  buf_free(&v);
}

/* The error class: NUL-padded on disk, at most WH_CLASS_LEN - 1 bytes. */
static void test_prog_class(void **state)
{
  (void)state;
  const size_t off = 1 + 8 + 1 + 8 + 8 + 4; /* of the class field */
  wh_prog_t p, d;
  fill_prog(&p, 0);
  buf_t v = BUF_INIT;
  wh_prog_encode(&p, &v);
  assert_memory_equal(v.data + off, "http_5xx", 8);
  for (size_t i = off + 8; i < off + WH_CLASS_LEN; i++)
    assert_int_equal(v.data[i], 0);
  /* the status field just before it */
  assert_memory_equal(v.data + off - 4, "\x00\x00\x01\xf7", 4);
  /* 31 bytes fit; a full buffer (no NUL) is cut to 31 */
  memset(p.last_err_class, 'c', WH_CLASS_LEN - 1);
  p.last_err_class[WH_CLASS_LEN - 1] = '\0';
  buf_reset(&v);
  wh_prog_encode(&p, &v);
  assert_int_equal(wh_prog_decode(v.data, v.len, &d), 0);
  assert_int_equal(strlen(d.last_err_class), WH_CLASS_LEN - 1);
  assert_string_equal(d.last_err_class, p.last_err_class);
  memset(p.last_err_class, 'z', WH_CLASS_LEN);
  buf_reset(&v);
  wh_prog_encode(&p, &v);
  assert_int_equal(v.data[off + WH_CLASS_LEN - 1], 0);
  assert_int_equal(wh_prog_decode(v.data, v.len, &d), 0);
  assert_int_equal(strlen(d.last_err_class), WH_CLASS_LEN - 1);
  /* a stored class without a NUL is cut when read */
  memset(v.data + off, 'q', WH_CLASS_LEN);
  assert_int_equal(wh_prog_decode(v.data, v.len, &d), 0);
  assert_int_equal(strlen(d.last_err_class), WH_CLASS_LEN - 1);
  assert_int_equal(d.last_err_class[0], 'q');
  wh_prog_free(&d);
  wh_prog_free(&p);
  buf_free(&v);
}

/* The entry limit: encoding keeps the first WH_PROG_MAX_ENT, decoding
 * rejects more. */
static void test_prog_limit(void **state)
{
  (void)state;
  wh_prog_t p, d;
  fill_prog(&p, WH_PROG_MAX_ENT + 10);
  buf_t v = BUF_INIT;
  wh_prog_encode(&p, &v);
  assert_int_equal(v.len, WH_PROG_HDR + (size_t)WH_PROG_MAX_ENT * WH_PROG_ENT_LEN);
  assert_int_equal(wh_prog_decode(v.data, v.len, &d), 0);
  assert_prog_equal(&p, &d, WH_PROG_MAX_ENT); /* the first ones */
  assert_int_equal(d.ent[WH_PROG_MAX_ENT - 1].seq, p.ent[WH_PROG_MAX_ENT - 1].seq);
  wh_prog_free(&d);
  /* one more, with a count and a length that agree: too many */
  const wh_prog_ent_t *e = &p.ent[WH_PROG_MAX_ENT];
  uint8_t ent[WH_PROG_ENT_LEN];
  memset(ent, 0, sizeof ent);
  for (int i = 0; i < 8; i++)
    ent[i] = (uint8_t)(e->seq >> (56 - 8 * i));
  buf_append(&v, ent, sizeof ent);
  uint32_t cnt = WH_PROG_MAX_ENT + 1;
  uint8_t *c = (uint8_t *)v.data + WH_PROG_HDR - 4;
  c[0] = (uint8_t)(cnt >> 24), c[1] = (uint8_t)(cnt >> 16), c[2] = (uint8_t)(cnt >> 8),
  c[3] = (uint8_t)cnt;
  memset(&d, 0xa5, sizeof d);
  assert_int_equal(wh_prog_decode(v.data, v.len, &d), GRANTD_ESTORE_DECODE);
  assert_prog_zero(&d);
  /* a huge count (the product must not wrap to the length) */
  c[0] = c[1] = c[2] = c[3] = 0xff;
  assert_int_equal(wh_prog_decode(v.data, v.len, &d), GRANTD_ESTORE_DECODE);
  assert_prog_zero(&d);
  wh_prog_free(&p);
  buf_free(&v);
}

static void test_prog_bad(void **state)
{
  (void)state;
  wh_prog_t p, d;
  fill_prog(&p, 3);
  buf_t v = BUF_INIT;
  wh_prog_encode(&p, &v);
  /* every prefix */
  for (size_t n = 0; n < v.len; n++) {
    uint8_t *b = xmalloc(n ? n : 1);
    memcpy(b, v.data, n);
    memset(&d, 0xa5, sizeof d);
    assert_int_equal(wh_prog_decode(b, n, &d), GRANTD_ESTORE_DECODE);
    assert_prog_zero(&d);
    uint64_t cur = 7;
    assert_int_equal(wh_prog_cursor(b, n, &cur), n < WH_PROG_HDR ? -1 : 0);
    if (n < WH_PROG_HDR)
      assert_int_equal(cur, 7);
    else
      assert_int_equal(cur, p.cursor);
    free(b);
  }
  /* a byte too many; a count that disagrees with the length */
  buf_t x = BUF_INIT;
  buf_append(&x, v.data, v.len);
  buf_putc(&x, 0);
  assert_int_equal(wh_prog_decode(x.data, x.len, &d), GRANTD_ESTORE_DECODE);
  x.len--;
  x.data[WH_PROG_HDR - 1] = 2;
  assert_int_equal(wh_prog_decode(x.data, x.len, &d), GRANTD_ESTORE_DECODE);
  x.data[WH_PROG_HDR - 1] = 4;
  assert_int_equal(wh_prog_decode(x.data, x.len, &d), GRANTD_ESTORE_DECODE);
  assert_prog_zero(&d);
  buf_free(&x);
  /* versions */
  const uint8_t versions[] = {0, 2, 0x80, 0xff};
  for (size_t i = 0; i < sizeof versions; i++) {
    v.data[0] = (char)versions[i];
    memset(&d, 0xa5, sizeof d);
    assert_int_equal(wh_prog_decode(v.data, v.len, &d), GRANTD_ESTORE_VERSION);
    assert_prog_zero(&d);
    uint64_t cur = 7;
    assert_int_equal(wh_prog_cursor(v.data, v.len, &cur), -1);
    assert_int_equal(cur, 7);
  }
  v.data[0] = WH_PROG_VERSION;
  assert_int_equal(wh_prog_decode(v.data, v.len, &d), 0);
  wh_prog_free(&d);
  /* garbage: random bytes of random lengths decode only when the count
   * matches the length, and never read out of bounds */
  uint64_t s = 7;
  size_t ok = 0;
  for (int i = 0; i < 20000; i++) {
    uint64_t r = rng_next(&s);
    size_t n = (i & 2) ? WH_PROG_HDR + (size_t)(r % 4) * WH_PROG_ENT_LEN
                       : (size_t)(r % (WH_PROG_HDR + 3 * WH_PROG_ENT_LEN + 2));
    uint8_t *b = xmalloc(n ? n : 1);
    for (size_t k = 0; k < n; k++)
      b[k] = (uint8_t)rng_next(&s);
    if (n > 0 && (i & 1))
      b[0] = WH_PROG_VERSION;
    bool fits = n >= WH_PROG_HDR && (n - WH_PROG_HDR) % WH_PROG_ENT_LEN == 0;
    if (fits && (i & 2)) { /* a matching count */
      size_t cnt = (n - WH_PROG_HDR) / WH_PROG_ENT_LEN;
      memset(b + WH_PROG_HDR - 4, 0, 3);
      b[WH_PROG_HDR - 1] = (uint8_t)cnt;
    }
    int rc = wh_prog_decode(b, n, &d);
    if (rc == 0) {
      assert_true(fits && b[0] == WH_PROG_VERSION);
      assert_int_equal(d.n, (n - WH_PROG_HDR) / WH_PROG_ENT_LEN);
      assert_true(strlen(d.last_err_class) < WH_CLASS_LEN);
      /* and encodes back to the same bytes, but for the class padding */
      buf_t e = BUF_INIT;
      wh_prog_encode(&d, &e);
      assert_int_equal(e.len, n);
      assert_memory_equal(e.data, b, 10); /* version, cursor, flags */
      wh_prog_free(&d);
      buf_free(&e);
      ok++;
    } else {
      assert_prog_zero(&d);
    }
    free(b);
  }
  assert_true(ok > 1000);
  wh_prog_free(&p);
  buf_free(&v);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rec_round_trip),
    cmocka_unit_test(test_rec_keys_and_names),
    cmocka_unit_test(test_rec_copy),
    cmocka_unit_test(test_rec_seal_id),
    cmocka_unit_test(test_rec_truncated_and_flipped),
    cmocka_unit_test(test_rec_version_and_garbage),
    cmocka_unit_test(test_rec_fields),
    cmocka_unit_test(test_prog_round_trip),
    cmocka_unit_test(test_prog_class),
    cmocka_unit_test(test_prog_limit),
    cmocka_unit_test(test_prog_bad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
