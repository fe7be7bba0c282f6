/*
 * whsig.c - Standard Webhooks secrets and signatures (whsig.h).
 */
#include "base/whsig.h"

#include <bearssl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/mem.h"
#include "base/rand.h"

#define PREFIX "whsec_"

int whsig_secret_parse(const char *s, uint8_t key[WHSIG_KEY_MAX], size_t *keylen)
{
  size_t pl = sizeof PREFIX - 1;
  if (s == NULL || strncmp(s, PREFIX, pl) != 0)
    return GRANTD_EINVALID;
  buf_t b = {0};
  int rc = b64_decode(&b, s + pl, strlen(s + pl));
  if (rc == 0 && (b.len < WHSIG_KEY_MIN || b.len > WHSIG_KEY_MAX))
    rc = GRANTD_EINVALID;
  if (rc == 0) {
    memcpy(key, b.data, b.len);
    *keylen = b.len;
  } else {
    mem_wipe(key, WHSIG_KEY_MAX);
  }
  if (b.data)
    mem_wipe(b.data, b.len);
  buf_free(&b);
  return rc;
}

void whsig_secret_new(char out[WHSIG_SECRET_MAX])
{
  uint8_t k[WHSIG_KEY_NEW];
  rand_bytes(k, sizeof k);
  buf_t b = {0};
  buf_puts(&b, PREFIX);
  b64_encode(&b, k, sizeof k);
  memcpy(out, b.data, b.len);
  out[b.len] = '\0';
  mem_wipe(k, sizeof k);
  mem_wipe(b.data, b.len);
  buf_free(&b);
}

void whsig_sign(const uint8_t *key, size_t keylen, const char *id, int64_t ts, const void *body,
                size_t n, buf_t *out)
{
  br_hmac_key_context kc;
  br_hmac_context hc;
  br_hmac_key_init(&kc, &br_sha256_vtable, key, keylen);
  br_hmac_init(&hc, &kc, 0);
  char tsb[24];
  int tl = snprintf(tsb, sizeof tsb, "%" PRId64, ts);
  br_hmac_update(&hc, id, strlen(id));
  br_hmac_update(&hc, ".", 1);
  br_hmac_update(&hc, tsb, (size_t)tl);
  br_hmac_update(&hc, ".", 1);
  br_hmac_update(&hc, body, n);
  uint8_t mac[32];
  br_hmac_out(&hc, mac);
  buf_puts(out, "v1,");
  b64_encode(out, mac, sizeof mac);
  mem_wipe(&kc, sizeof kc);
  mem_wipe(&hc, sizeof hc);
}
