/*
 * seal.c - AES-256-GCM sealing with a keyring of ids; see seal.h.
 *
 * Each key keeps its AES key schedule (the BearSSL CTR context) next to the
 * raw key, so sealing costs one GCM run and no re-keying. The GCM context is
 * on the stack of each call and wiped afterwards, which makes sealing and
 * opening re-entrant and usable from any thread. The implementation choice
 * (AES-NI or ct64, PCLMUL or ctmul64) is made once per keyring.
 */
#include "store/seal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <bearssl.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/mem.h"
#include "base/rand.h"
#include "base/url.h"

#define FMT_ID8 0x01
#define FMT_ID32 0x02

typedef struct {
  uint32_t id;
  uint8_t key[SEAL_KEY_LEN];
  br_aes_gen_ctr_keys ctr; /* key schedule; its vtable pointer is the handle */
} seal_key_t;

struct seal_keyring {
  seal_key_t keys[SEAL_MAX_KEYS];
  size_t n;
  int current; /* index into keys, -1 = none */
  const br_block_ctr_class *ctr_impl;
  br_ghash ghash;
};

seal_keyring_t *seal_keyring_new(void)
{
  seal_keyring_t *kr = xcalloc(1, sizeof(*kr));
  kr->current = -1;
  kr->ctr_impl = br_aes_x86ni_ctr_get_vtable();
  if (kr->ctr_impl == NULL)
    kr->ctr_impl = &br_aes_ct64_ctr_vtable;
  kr->ghash = br_ghash_pclmul_get();
  if (kr->ghash == 0)
    kr->ghash = &br_ghash_ctmul64;
  return kr;
}

void seal_keyring_free(seal_keyring_t *kr)
{
  if (kr == NULL)
    return;
  mem_wipe(kr, sizeof(*kr));
  free(kr);
}

static const seal_key_t *find_key(const seal_keyring_t *kr, uint32_t id)
{
  for (size_t i = 0; i < kr->n; i++)
    if (kr->keys[i].id == id)
      return &kr->keys[i];
  return NULL;
}

int seal_keyring_add(seal_keyring_t *kr, uint32_t id, const uint8_t key[SEAL_KEY_LEN])
{
  if (find_key(kr, id) != NULL)
    return GRANTD_EEXISTS;
  if (kr->n == SEAL_MAX_KEYS)
    return GRANTD_EINVALID;
  seal_key_t *k = &kr->keys[kr->n];
  k->id = id;
  memcpy(k->key, key, SEAL_KEY_LEN);
  kr->ctr_impl->init(&k->ctr.vtable, k->key, SEAL_KEY_LEN);
  if (kr->current < 0)
    kr->current = (int)kr->n;
  kr->n++;
  return 0;
}

int seal_keyring_set_current(seal_keyring_t *kr, uint32_t id)
{
  for (size_t i = 0; i < kr->n; i++) {
    if (kr->keys[i].id == id) {
      kr->current = (int)i;
      return 0;
    }
  }
  return GRANTD_ESTORE_KEY;
}

int seal_keyring_current(const seal_keyring_t *kr, uint32_t *id)
{
  if (kr->current < 0)
    return -1;
  *id = kr->keys[kr->current].id;
  return 0;
}

size_t seal_keyring_count(const seal_keyring_t *kr)
{
  return kr->n;
}

uint32_t seal_keyring_id_at(const seal_keyring_t *kr, size_t i)
{
  return i < kr->n ? kr->keys[i].id : 0;
}

int seal_keyring_has(const seal_keyring_t *kr, uint32_t id)
{
  return find_key(kr, id) != NULL;
}

int seal_key_parse(const char *s, uint8_t out[SEAL_KEY_LEN])
{
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    n--;
  while (n > 0 && isspace((unsigned char)*s)) {
    s++;
    n--;
  }
  if (n == 2 * SEAL_KEY_LEN) {
    int ok = 1;
    for (size_t i = 0; i < SEAL_KEY_LEN; i++) {
      int hi = url_hexval((unsigned char)s[2 * i]), lo = url_hexval((unsigned char)s[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        ok = 0;
        break;
      }
      out[i] = (uint8_t)(hi << 4 | lo);
    }
    if (ok)
      return 0;
  }
  /* base64 or base64url, padded or not: normalise to unpadded base64url. */
  buf_t norm = BUF_INIT, dec = BUF_INIT;
  int rc = GRANTD_EINVALID;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '+')
      c = '-';
    else if (c == '/')
      c = '_';
    else if (c == '=')
      continue;
    buf_putc(&norm, c);
  }
  if (norm.len > 0 && b64url_decode(&dec, norm.data, norm.len) == 0 && dec.len == SEAL_KEY_LEN) {
    memcpy(out, dec.data, SEAL_KEY_LEN);
    rc = 0;
  }
  buf_wipe_free(&norm);
  buf_wipe_free(&dec);
  if (rc != 0)
    mem_wipe(out, SEAL_KEY_LEN);
  return rc;
}

static size_t header_len(uint32_t id)
{
  return id < 256 ? 2 : 5;
}

size_t seal_sealed_len(const seal_keyring_t *kr, size_t n)
{
  if (kr->current < 0)
    return 0;
  return header_len(kr->keys[kr->current].id) + SEAL_NONCE_LEN + n + SEAL_TAG_LEN;
}

/* Associated data, given in up to three pieces (db, 0x00, key). */
typedef struct {
  const void *p[3];
  size_t n[3];
} aad_t;

static aad_t aad_of(const char *db, const void *key, size_t keylen)
{
  static const uint8_t zero = 0;
  aad_t a = {{db, &zero, key}, {strlen(db), 1, keylen}};
  return a;
}

/* Starts a GCM run for key k and nonce, and injects the associated data. */
static void gcm_start(const seal_keyring_t *kr, const seal_key_t *k, br_gcm_context *gc,
                      const uint8_t *nonce, const aad_t *aad)
{
  /* br_gcm_init takes a non-const handle but GCM only calls the CTR run
   * function, which takes its context as const: the schedule is never
   * written, so sharing it across calls and threads is safe. */
  br_gcm_init(gc, (const br_block_ctr_class **)(uintptr_t)&k->ctr.vtable, kr->ghash);
  br_gcm_reset(gc, nonce, SEAL_NONCE_LEN);
  for (int i = 0; i < 3; i++)
    if (aad->n[i] > 0)
      br_gcm_aad_inject(gc, aad->p[i], aad->n[i]);
  br_gcm_flip(gc);
}

int seal_seal(const seal_keyring_t *kr, const char *db, const void *key, size_t keylen,
              const void *pt, size_t n, buf_t *out)
{
  if (kr->current < 0)
    return GRANTD_ESTORE_KEY;
  return seal_seal_with(kr, kr->keys[kr->current].id, db, key, keylen, pt, n, out);
}

int seal_seal_with(const seal_keyring_t *kr, uint32_t id, const char *db, const void *key,
                   size_t keylen, const void *pt, size_t n, buf_t *out)
{
  const seal_key_t *k = find_key(kr, id);
  if (k == NULL)
    return GRANTD_ESTORE_KEY;
  size_t hl = header_len(k->id);
  buf_reserve(out, hl + SEAL_NONCE_LEN + n + SEAL_TAG_LEN);
  uint8_t *p = (uint8_t *)out->data + out->len;
  if (hl == 2) {
    p[0] = FMT_ID8;
    p[1] = (uint8_t)k->id;
  } else {
    p[0] = FMT_ID32;
    p[1] = (uint8_t)(k->id >> 24);
    p[2] = (uint8_t)(k->id >> 16);
    p[3] = (uint8_t)(k->id >> 8);
    p[4] = (uint8_t)k->id;
  }
  uint8_t *nonce = p + hl;
  rand_nonce(nonce, SEAL_NONCE_LEN);
  uint8_t *ct = nonce + SEAL_NONCE_LEN;
  if (n > 0)
    memcpy(ct, pt, n);
  br_gcm_context gc;
  aad_t aad = aad_of(db, key, keylen);
  gcm_start(kr, k, &gc, nonce, &aad);
  br_gcm_run(&gc, 1, ct, n);
  br_gcm_get_tag(&gc, ct + n);
  mem_wipe(&gc, sizeof(gc));
  out->len += hl + SEAL_NONCE_LEN + n + SEAL_TAG_LEN;
  out->data[out->len] = '\0';
  return 0;
}

/* Parses the header: key id and header length. */
static int parse_header(const uint8_t *b, size_t n, uint32_t *id, size_t *hl)
{
  if (n < 1)
    return GRANTD_ESTORE_DECODE;
  if (b[0] == FMT_ID8) {
    *hl = 2;
  } else if (b[0] == FMT_ID32) {
    *hl = 5;
  } else {
    return GRANTD_ESTORE_DECODE;
  }
  if (n < *hl + SEAL_NONCE_LEN + SEAL_TAG_LEN)
    return GRANTD_ESTORE_DECODE;
  if (*hl == 2)
    *id = b[1];
  else
    *id = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
  return 0;
}

int seal_blob_key_id(const void *blob, size_t n, uint32_t *id)
{
  size_t hl;
  return parse_header(blob, n, id, &hl);
}

int seal_blob_plain_len(const void *blob, size_t n, size_t *len)
{
  size_t hl;
  uint32_t id;
  int rc = parse_header(blob, n, &id, &hl);
  if (rc == 0)
    *len = n - hl - SEAL_NONCE_LEN - SEAL_TAG_LEN;
  return rc;
}

static int open_core(const seal_keyring_t *kr, const aad_t *aad, const void *blob, size_t n,
                     buf_t *out);

int seal_open(const seal_keyring_t *kr, const char *db, const void *key, size_t keylen,
              const void *blob, size_t n, buf_t *out)
{
  aad_t aad = aad_of(db, key, keylen);
  return open_core(kr, &aad, blob, n, out);
}

int seal_open_aad(const seal_keyring_t *kr, const void *aad, size_t aadlen, const void *blob,
                  size_t n, buf_t *out)
{
  aad_t a = {{aad, NULL, NULL}, {aadlen, 0, 0}};
  return open_core(kr, &a, blob, n, out);
}

static int open_core(const seal_keyring_t *kr, const aad_t *aad, const void *blob, size_t n,
                     buf_t *out)
{
  const uint8_t *b = blob;
  uint32_t id;
  size_t hl;
  int rc = parse_header(b, n, &id, &hl);
  if (rc != 0)
    return rc;
  const seal_key_t *k = find_key(kr, id);
  if (k == NULL)
    return GRANTD_ESTORE_KEY;
  const uint8_t *nonce = b + hl;
  const uint8_t *ct = nonce + SEAL_NONCE_LEN;
  size_t ctlen = n - hl - SEAL_NONCE_LEN - SEAL_TAG_LEN;
  buf_reserve(out, ctlen);
  uint8_t *pt = (uint8_t *)out->data + out->len;
  if (ctlen > 0)
    memcpy(pt, ct, ctlen);
  br_gcm_context gc;
  gcm_start(kr, k, &gc, nonce, aad);
  br_gcm_run(&gc, 0, pt, ctlen);
  uint32_t ok = br_gcm_check_tag(&gc, ct + ctlen);
  mem_wipe(&gc, sizeof(gc));
  if (!ok) {
    /* Unauthenticated plaintext never leaves this function. */
    mem_wipe(pt, ctlen);
    out->data[out->len] = '\0';
    return GRANTD_ESTORE_AUTH;
  }
  out->len += ctlen;
  out->data[out->len] = '\0';
  return 0;
}
