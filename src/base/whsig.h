/*
 * whsig.h - Standard Webhooks signatures (standardwebhooks.com, the
 * "Signature scheme" section): secrets of the form "whsec_" + standard
 * base64 of the key bytes, and the `webhook-signature` value
 * "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
 * Receivers using the official Standard Webhooks / Svix libraries verify
 * these unchanged. Pure functions (BearSSL's HMAC), no I/O except
 * whsig_secret_new's getrandom.
 */
#ifndef GRANTD_BASE_WHSIG_H
#define GRANTD_BASE_WHSIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define WHSIG_KEY_MIN 24 /* key bytes a secret may hold */
#define WHSIG_KEY_MAX 64
#define WHSIG_KEY_NEW 32 /* bytes of a generated secret */
/* "whsec_" + base64 of WHSIG_KEY_MAX bytes + NUL. */
#define WHSIG_SECRET_MAX (6 + 88 + 1)

/* Decodes "whsec_<base64>" into key (WHSIG_KEY_MAX bytes of room).
 * @return 0 with *keylen set (WHSIG_KEY_MIN..WHSIG_KEY_MAX);
 *   GRANTD_EINVALID: no "whsec_" prefix, bad base64, or a key length out
 *   of range. key is wiped on failure. */
int whsig_secret_parse(const char *s, uint8_t key[WHSIG_KEY_MAX], size_t *keylen);

/* A new secret of WHSIG_KEY_NEW random bytes, as "whsec_..." text.
 * out is a secret: wipe it (mem_wipe) when done. */
void whsig_secret_new(char out[WHSIG_SECRET_MAX]);

/* Appends "v1,<base64 signature>" of (id, ts, body) under key to out.
 * ts is the webhook-timestamp value (Unix seconds). */
void whsig_sign(const uint8_t *key, size_t keylen, const char *id, int64_t ts, const void *body,
                size_t n, buf_t *out);

#endif
