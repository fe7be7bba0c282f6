/*
 * jws_int.h - the layout of jws_key_t, shared by jws_key.c (parsing) and
 * jws.c (signing and verifying). Not for other modules: they see only the
 * opaque type of jws.h.
 */
#ifndef GRANTD_OAUTH_JWS_INT_H
#define GRANTD_OAUTH_JWS_INT_H

#include <stddef.h>

#include <bearssl.h>

#include "oauth/jws.h"

/* RSA sizes grantd accepts (RFC 7518 section 3.3 sets the floor; BearSSL's
 * i31/i62 code stops at 4096), and the largest signature: 512 bytes. */
#define JWS_RSA_MIN_BITS 2048
#define JWS_RSA_MAX_BITS 4096
#define JWS_SIG_MAX (JWS_RSA_MAX_BITS / 8)

struct jws_key {
  jws_kty_t kty;
  size_t size;         /* bytes of this allocation, wiped by jws_key_free() */
  unsigned char *tail; /* component bytes, right after the struct */
  br_rsa_private_key rsa;
  br_ec_private_key ec;
  union {
    br_rsa_public_key rsa;
    br_ec_public_key ec;
  } pub;
  unsigned char *oct; /* HS256 secret */
  size_t oct_len;
};

#endif
