/*
 * jws_int.h - the layout of jws_key_t, shared by jws_key.c (parsing) and
 * jws.c (signing and verifying). Not for other modules: they see only the
 * opaque type of jws.h.
 */
#ifndef GRANTD_OAUTH_JWS_INT_H
#define GRANTD_OAUTH_JWS_INT_H

#include <stdbool.h>
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

/* RSASSA-PSS for PS256 (oauth/jws_pss.c): SHA-256, MGF1-SHA-256, salt of
 * JWS_PSS_SALT_LEN bytes (the hash length, as RFC 7518 section 3.5 asks). */
#define JWS_PSS_SALT_LEN 32

/* EMSA-PSS-ENCODE (RFC 8017 section 9.1.1) of the SHA-256 digest mhash with
 * the given salt into em[0..ceil(em_bits / 8)).
 * @return the encoded length, 0 when em_bits is too small (< 521). */
size_t jws_pss_encode(const unsigned char mhash[32], const unsigned char salt[32], unsigned em_bits,
                      unsigned char *em);

/* EMSA-PSS-VERIFY (RFC 8017 section 9.1.2): whether em[0..em_len) is a valid
 * encoding of mhash for em_bits (em_len must be ceil(em_bits / 8)). */
bool jws_pss_check(const unsigned char mhash[32], const unsigned char *em, size_t em_len,
                   unsigned em_bits);

/* RSASSA-PSS-SIGN (RFC 8017 section 8.1.1) of mhash with a fresh random
 * salt (base/rand) and emBits = modBits - 1.
 * @return the signature length (the modulus length), 0 on failure. */
size_t jws_pss_sign(const br_rsa_private_key *sk, const unsigned char mhash[32],
                    unsigned char sig[JWS_SIG_MAX]);

/* RSASSA-PSS-VERIFY (RFC 8017 section 8.1.2) of sig over mhash with pk. */
bool jws_pss_verify(const br_rsa_public_key *pk, const unsigned char mhash[32],
                    const unsigned char *sig, size_t sig_len);

#endif
