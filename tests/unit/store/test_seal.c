/*
 * test_seal.c - AES-256-GCM sealing: the GCM specification's AES-256 test
 * cases (McGrew & Viega, "The Galois/Counter Mode of Operation", appendix B,
 * test cases 14 and 16) through the real open path, round trips, key
 * rotation, and every failure: tamper, wrong key, wrong associated data,
 * unknown key id, truncation.
 */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "store/seal.h"

static size_t unhex(const char *h, uint8_t *out)
{
  size_t n = strlen(h) / 2;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    sscanf(h + 2 * i, "%2x", &v);
    out[i] = (uint8_t)v;
  }
  return n;
}

static const uint8_t key_a[SEAL_KEY_LEN] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                            12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                            23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t key_b[SEAL_KEY_LEN] = {99};

typedef struct {
  const char *k, *p, *a, *iv, *c, *t;
} kat_t;

static const kat_t kats[] = {
  /* Test case 14: zero key, one zero block, no AAD. */
  {"0000000000000000000000000000000000000000000000000000000000000000",
   "00000000000000000000000000000000", "", "000000000000000000000000",
   "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
  /* Test case 16: 60-byte plaintext, 20-byte AAD. */
  {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
   "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
   "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
   "feedfacedeadbeeffeedfacedeadbeefabaddad2", "cafebabefacedbaddecaf888",
   "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
   "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
   "76fc6ece0f4e1768cddf8853bb2d551b"},
};

/* Builds a blob from a vector: format + id + iv + c + t. */
static size_t kat_blob(const kat_t *v, uint32_t id, uint8_t *blob)
{
  size_t n = 0;
  if (id < 256) {
    blob[n++] = 0x01;
    blob[n++] = (uint8_t)id;
  } else {
    blob[n++] = 0x02;
    blob[n++] = (uint8_t)(id >> 24);
    blob[n++] = (uint8_t)(id >> 16);
    blob[n++] = (uint8_t)(id >> 8);
    blob[n++] = (uint8_t)id;
  }
  n += unhex(v->iv, blob + n);
  n += unhex(v->c, blob + n);
  n += unhex(v->t, blob + n);
  return n;
}

static void test_kat(void **state)
{
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(kats); i++) {
    const kat_t *v = &kats[i];
    uint8_t key[32], p[128], a[64], blob[256];
    unhex(v->k, key);
    size_t pn = unhex(v->p, p), an = unhex(v->a, a);
    uint32_t ids[] = {7, 0x01020304};
    for (size_t j = 0; j < 2; j++) {
      seal_keyring_t *kr = seal_keyring_new();
      assert_int_equal(seal_keyring_add(kr, ids[j], key), 0);
      size_t bn = kat_blob(v, ids[j], blob);
      buf_t out = BUF_INIT;
      assert_int_equal(seal_open_aad(kr, a, an, blob, bn, &out), 0);
      assert_int_equal(out.len, pn);
      assert_memory_equal(out.data, p, pn);
      /* The tag covers the AAD: one bit off fails. */
      buf_reset(&out);
      a[0] ^= 1;
      assert_int_equal(seal_open_aad(kr, a, an ? an : 1, blob, bn, &out), GRANTD_ESTORE_AUTH);
      a[0] ^= 1;
      assert_int_equal(out.len, 0);
      /* Every single-bit flip of nonce, ciphertext or tag is caught. */
      size_t hl = ids[j] < 256 ? 2 : 5;
      for (size_t b = hl; b < bn; b++) {
        blob[b] ^= 0x10;
        assert_int_equal(seal_open_aad(kr, a, an, blob, bn, &out), GRANTD_ESTORE_AUTH);
        assert_int_equal(out.len, 0);
        blob[b] ^= 0x10;
      }
      buf_free(&out);
      seal_keyring_free(kr);
    }
  }
}

static seal_keyring_t *ring_a(void)
{
  seal_keyring_t *kr = seal_keyring_new();
  assert_int_equal(seal_keyring_add(kr, 1, key_a), 0);
  return kr;
}

static void test_round_trip(void **state)
{
  (void)state;
  seal_keyring_t *kr = ring_a();
  const char *msgs[] = {"", "x", "a refresh token of some length 0123456789"};
  for (size_t i = 0; i < ARRAY_SIZE(msgs); i++) {
    size_t n = strlen(msgs[i]);
    buf_t blob = BUF_INIT, out = BUF_INIT;
    assert_int_equal(seal_seal(kr, "connections", "c1", 2, msgs[i], n, &blob), 0);
    assert_int_equal(blob.len, n + 30);
    assert_int_equal(blob.len, seal_sealed_len(kr, n));
    assert_int_equal((uint8_t)blob.data[0], 0x01);
    assert_int_equal((uint8_t)blob.data[1], 1);
    if (n > 4)
      assert_null(memmem(blob.data, blob.len, msgs[i], n));
    uint32_t id = 0;
    assert_int_equal(seal_blob_key_id(blob.data, blob.len, &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(seal_open(kr, "connections", "c1", 2, blob.data, blob.len, &out), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, msgs[i], n);
    buf_free(&blob);
    buf_wipe_free(&out);
  }
  /* Two seals of the same plaintext differ (random nonce). */
  buf_t b1 = BUF_INIT, b2 = BUF_INIT;
  seal_seal(kr, "d", "k", 1, "same", 4, &b1);
  seal_seal(kr, "d", "k", 1, "same", 4, &b2);
  assert_int_not_equal(memcmp(b1.data, b2.data, b1.len), 0);
  buf_free(&b1);
  buf_free(&b2);
  seal_keyring_free(kr);
}

/* The plaintext length read from a blob's size and header: exact for both
 * header forms, an error for anything shorter than a header, nonce and
 * tag or of an unknown format. */
static void test_blob_plain_len(void **state)
{
  (void)state;
  seal_keyring_t *kr = ring_a();
  const char *msgs[] = {"", "x", "a refresh token of some length 0123456789"};
  for (size_t i = 0; i < ARRAY_SIZE(msgs); i++) {
    size_t n = strlen(msgs[i]), got = 99;
    buf_t blob = BUF_INIT;
    assert_int_equal(seal_seal(kr, "connections", "c1", 2, msgs[i], n, &blob), 0);
    assert_int_equal(seal_blob_plain_len(blob.data, blob.len, &got), 0);
    assert_int_equal(got, n);
    for (size_t cut = 0; cut < 2 + SEAL_NONCE_LEN + SEAL_TAG_LEN; cut++)
      assert_int_equal(seal_blob_plain_len(blob.data, cut, &got), GRANTD_ESTORE_DECODE);
    blob.data[0] = 0x07; /* an unknown format */
    assert_int_equal(seal_blob_plain_len(blob.data, blob.len, &got), GRANTD_ESTORE_DECODE);
    buf_free(&blob);
  }
  seal_keyring_t *big = seal_keyring_new();
  uint8_t key[SEAL_KEY_LEN] = {9};
  assert_int_equal(seal_keyring_add(big, 300, key), 0); /* 4-byte key id form */
  buf_t blob = BUF_INIT;
  size_t got = 0;
  assert_int_equal(seal_seal(big, "d", "k", 1, "12345", 5, &blob), 0);
  assert_int_equal(seal_blob_plain_len(blob.data, blob.len, &got), 0);
  assert_int_equal(got, 5);
  buf_free(&blob);
  seal_keyring_free(big);
  seal_keyring_free(kr);
}

static void test_failures(void **state)
{
  (void)state;
  seal_keyring_t *kr = ring_a();
  const char *secret = "access-token-value";
  buf_t blob = BUF_INIT, out = BUF_INIT;
  assert_int_equal(seal_seal(kr, "connections", "id1", 3, secret, strlen(secret), &blob), 0);

  /* Wrong associated data: database, key, and the split between them. */
  assert_int_equal(seal_open(kr, "states", "id1", 3, blob.data, blob.len, &out),
                   GRANTD_ESTORE_AUTH);
  assert_int_equal(seal_open(kr, "connections", "id2", 3, blob.data, blob.len, &out),
                   GRANTD_ESTORE_AUTH);
  assert_int_equal(seal_open(kr, "connection", "sid1", 4, blob.data, blob.len, &out),
                   GRANTD_ESTORE_AUTH);
  assert_int_equal(out.len, 0);

  /* Wrong key under the same id. */
  seal_keyring_t *kb = seal_keyring_new();
  seal_keyring_add(kb, 1, key_b);
  assert_int_equal(seal_open(kb, "connections", "id1", 3, blob.data, blob.len, &out),
                   GRANTD_ESTORE_AUTH);
  seal_keyring_free(kb);

  /* Unknown key id. */
  seal_keyring_t *kc = seal_keyring_new();
  seal_keyring_add(kc, 2, key_a);
  assert_int_equal(seal_open(kc, "connections", "id1", 3, blob.data, blob.len, &out),
                   GRANTD_ESTORE_KEY);
  seal_keyring_free(kc);

  /* Tamper: every byte, every bit. */
  for (size_t i = 0; i < blob.len; i++) {
    for (int bit = 0; bit < 8; bit++) {
      blob.data[i] ^= (char)(1 << bit);
      int rc = seal_open(kr, "connections", "id1", 3, blob.data, blob.len, &out);
      if (i == 0)
        assert_int_equal(rc, GRANTD_ESTORE_DECODE);
      else if (i == 1)
        assert_int_equal(rc, GRANTD_ESTORE_KEY);
      else
        assert_int_equal(rc, GRANTD_ESTORE_AUTH);
      assert_int_equal(out.len, 0);
      blob.data[i] ^= (char)(1 << bit);
    }
  }

  /* Truncation: too short to hold header, nonce and tag -> decode error;
   * longer prefixes misplace the tag -> authentication error. */
  for (size_t n = 0; n < blob.len; n++) {
    int rc = seal_open(kr, "connections", "id1", 3, blob.data, n, &out);
    assert_int_equal(rc, n < 30 ? GRANTD_ESTORE_DECODE : GRANTD_ESTORE_AUTH);
    assert_int_equal(out.len, 0);
  }
  uint32_t id;
  assert_int_equal(seal_blob_key_id(blob.data, 3, &id), GRANTD_ESTORE_DECODE);

  /* Still fine untouched. */
  assert_int_equal(seal_open(kr, "connections", "id1", 3, blob.data, blob.len, &out), 0);
  assert_memory_equal(out.data, secret, strlen(secret));
  buf_wipe_free(&out);
  buf_free(&blob);
  seal_keyring_free(kr);
}

static void test_rotation(void **state)
{
  (void)state;
  seal_keyring_t *kr = ring_a();
  buf_t old = BUF_INIT, neu = BUF_INIT, out = BUF_INIT;
  assert_int_equal(seal_seal(kr, "d", "k", 1, "old", 3, &old), 0);
  assert_int_equal(seal_keyring_add(kr, 300, key_b), 0);
  uint32_t cur = 0;
  assert_int_equal(seal_keyring_current(kr, &cur), 0);
  assert_int_equal(cur, 1); /* the first key stays current */
  assert_int_equal(seal_keyring_set_current(kr, 300), 0);
  assert_int_equal(seal_seal(kr, "d", "k", 1, "new", 3, &neu), 0);
  assert_int_equal((uint8_t)neu.data[0], 0x02);
  assert_int_equal(neu.len, 3 + 33);
  uint32_t id;
  assert_int_equal(seal_blob_key_id(neu.data, neu.len, &id), 0);
  assert_int_equal(id, 300);
  assert_int_equal(seal_open(kr, "d", "k", 1, old.data, old.len, &out), 0);
  assert_int_equal(seal_open(kr, "d", "k", 1, neu.data, neu.len, &out), 0);
  assert_memory_equal(out.data, "oldnew", 6);
  /* Explicit key choice. */
  buf_t w = BUF_INIT;
  assert_int_equal(seal_seal_with(kr, 1, "d", "k", 1, "w", 1, &w), 0);
  assert_int_equal((uint8_t)w.data[1], 1);
  assert_int_equal(seal_seal_with(kr, 5, "d", "k", 1, "w", 1, &w), GRANTD_ESTORE_KEY);
  buf_free(&w);
  buf_free(&old);
  buf_free(&neu);
  buf_wipe_free(&out);
  seal_keyring_free(kr);
}

static void test_keyring_errors(void **state)
{
  (void)state;
  seal_keyring_t *kr = seal_keyring_new();
  uint32_t id = 42;
  buf_t b = BUF_INIT;
  assert_int_equal(seal_keyring_current(kr, &id), -1);
  assert_int_equal(id, 42);
  assert_int_equal(seal_sealed_len(kr, 10), 0);
  assert_int_equal(seal_seal(kr, "d", "k", 1, "x", 1, &b), GRANTD_ESTORE_KEY);
  assert_int_equal(b.len, 0);
  assert_int_equal(seal_keyring_set_current(kr, 1), GRANTD_ESTORE_KEY);
  for (uint32_t i = 0; i < SEAL_MAX_KEYS; i++)
    assert_int_equal(seal_keyring_add(kr, i, key_a), 0);
  assert_int_equal(seal_keyring_add(kr, 3, key_a), GRANTD_EEXISTS);
  assert_int_equal(seal_keyring_add(kr, 1000, key_a), GRANTD_EINVALID);
  assert_int_equal(seal_keyring_count(kr), SEAL_MAX_KEYS);
  assert_int_equal(seal_keyring_id_at(kr, 5), 5);
  assert_true(seal_keyring_has(kr, 15));
  assert_false(seal_keyring_has(kr, 16));
  seal_keyring_free(kr);
  seal_keyring_free(NULL);
}

static void test_key_parse(void **state)
{
  (void)state;
  uint8_t k[32], want[32];
  for (int i = 0; i < 32; i++)
    want[i] = (uint8_t)(0xf0 + (i & 0x0f));
  assert_int_equal(
    seal_key_parse("f0f1f2f3f4f5f6f7f8f9fafbfcfdfefff0f1f2f3f4f5f6f7f8f9FAFBFCFDFEFF\n", k), 0);
  assert_memory_equal(k, want, 32);
  /* base64 of the same 32 bytes: padded standard and unpadded url forms. */
  assert_int_equal(seal_key_parse("  8PHy8/T19vf4+fr7/P3+//Dx8vP09fb3+Pn6+/z9/v8=", k), 0);
  assert_memory_equal(k, want, 32);
  assert_int_equal(seal_key_parse("8PHy8_T19vf4-fr7_P3-__Dx8vP09fb3-Pn6-_z9_v8", k), 0);
  assert_memory_equal(k, want, 32);
  assert_int_equal(seal_key_parse("", k), GRANTD_EINVALID);
  assert_int_equal(seal_key_parse("f0f1", k), GRANTD_EINVALID);
  assert_int_equal(seal_key_parse("8PHy8/T19vf4+fr7/P3+//Dx8vP09fb3+Pn6+/z9/v8A", k),
                   GRANTD_EINVALID); /* 33 bytes */
  assert_int_equal(
    seal_key_parse("g0f1f2f3f4f5f6f7f8f9fafbfcfdfefff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", k),
    GRANTD_EINVALID);
  uint8_t zero[32] = {0};
  assert_memory_equal(k, zero, 32); /* wiped on failure */
}

static void parse_bad(const char *text, const char *mentions)
{
  seal_keyring_t *kr = (seal_keyring_t *)0x1;
  char err[300] = "";
  assert_int_equal(seal_keyring_parse(text, strlen(text), &kr, err, sizeof err), GRANTD_EINVALID);
  assert_ptr_equal(kr, (seal_keyring_t *)0x1);
  if (strstr(err, mentions) == NULL)
    fail_msg("error '%s' does not mention '%s'", err, mentions);
  assert_null(strstr(err, "1111111111"));
}

/* ID:KEY lists: commas or lines, comments, the first is current, hex and
 * base64 keys; and every malformed form refused without quoting a key. */
static void test_keyring_parse(void **state)
{
  (void)state;
  const char *hex1 = "1111111111111111111111111111111111111111111111111111111111111111";
  const char *b64_2 = "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI="; /* 32 x 0x22 */
  char text[1400];
  seal_keyring_t *kr = NULL;
  char err[300];
  snprintf(text, sizeof text, "2:%s,1:%s", b64_2, hex1);
  assert_int_equal(seal_keyring_parse(text, strlen(text), &kr, err, sizeof err), 0);
  uint32_t cur = 0;
  assert_int_equal(seal_keyring_current(kr, &cur), 0);
  assert_int_equal(cur, 2);
  assert_int_equal(seal_keyring_count(kr), 2);
  assert_true(seal_keyring_has(kr, 1));
  /* The key under id 1 is the hex one: a blob sealed with it opens with
   * a keyring made from the bytes. */
  buf_t blob = BUF_INIT, pt = BUF_INIT;
  assert_int_equal(seal_seal_with(kr, 1, "db", "k", 1, "hello", 5, &blob), 0);
  uint8_t k1[SEAL_KEY_LEN];
  memset(k1, 0x11, sizeof k1);
  seal_keyring_t *bytes = seal_keyring_new();
  seal_keyring_add(bytes, 1, k1);
  assert_int_equal(seal_open(bytes, "db", "k", 1, blob.data, blob.len, &pt), 0);
  assert_int_equal(pt.len, 5);
  buf_wipe_free(&pt);
  buf_free(&blob);
  seal_keyring_free(bytes);
  seal_keyring_free(kr);

  snprintf(text, sizeof text, "# grantd keyring\n  7:%s   # new\r\n\n1:%s\n", hex1, b64_2);
  assert_int_equal(seal_keyring_parse(text, strlen(text), &kr, err, sizeof err), 0);
  assert_int_equal(seal_keyring_current(kr, &cur), 0);
  assert_int_equal(cur, 7);
  assert_int_equal(seal_keyring_count(kr), 2);
  seal_keyring_free(kr);

  parse_bad("", "no key");
  parse_bad(" # nothing\n,,", "no key");
  snprintf(text, sizeof text, "%s", hex1);
  parse_bad(text, "entry 1: expected ID:KEY");
  snprintf(text, sizeof text, ":%s", hex1);
  parse_bad(text, "entry 1: expected ID:KEY");
  snprintf(text, sizeof text, "0:%s", hex1);
  parse_bad(text, "key id must be");
  snprintf(text, sizeof text, "01:%s", hex1);
  parse_bad(text, "key id must be");
  snprintf(text, sizeof text, "-1:%s", hex1);
  parse_bad(text, "key id must be");
  snprintf(text, sizeof text, "65536:%s", hex1);
  parse_bad(text, "key id must be");
  snprintf(text, sizeof text, "99999999999:%s", hex1);
  parse_bad(text, "key id must be");
  snprintf(text, sizeof text, "1:%s,2:%.63s", hex1, hex1);
  parse_bad(text, "entry 2 (key id 2): the key must be");
  snprintf(text, sizeof text, "1:%s,1:%s", hex1, b64_2);
  parse_bad(text, "entry 2: key id 1 is given twice");
  text[0] = '\0';
  for (int i = 1; i <= SEAL_MAX_KEYS + 1; i++)
    snprintf(text + strlen(text), sizeof text - strlen(text), "%d:%s,", i, b64_2);
  parse_bad(text, "more than");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_kat),           cmocka_unit_test(test_round_trip),
    cmocka_unit_test(test_failures),      cmocka_unit_test(test_rotation),
    cmocka_unit_test(test_keyring_parse), cmocka_unit_test(test_keyring_errors),
    cmocka_unit_test(test_key_parse),     cmocka_unit_test(test_blob_plain_len),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
