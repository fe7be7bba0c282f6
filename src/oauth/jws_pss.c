/*
 * RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (JWA PS256, RFC
 * 7518 section 3.5), on BearSSL's raw RSA operations; see jws_int.h.
 *
 * BearSSL 0.6 (Debian 12) has PKCS#1 v1.5 padding only, so the EMSA-PSS
 * encoding (RFC 8017 section 9.1.1) and its verification (section 9.1.2)
 * are written here; the modular exponentiation is br_rsa_private (CRT) and
 * br_rsa_public. emBits = modBits - 1, so the encoded message is always
 * below the modulus; when modBits - 1 is a multiple of 8 the encoding is
 * one byte shorter than the modulus and is sent with a leading zero byte
 * (RFC 8017 section 8.1.1 step 2.c, I2OSP to k octets).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <bearssl.h>

#include "base/mem.h"
#include "base/rand.h"
#include "oauth/jws_int.h"

#define HLEN 32
#define SLEN JWS_PSS_SALT_LEN

/* XORs MGF1-SHA-256(seed, n) into out[0..n) (RFC 8017 appendix B.2.1). */
static void mgf1_xor(unsigned char *out, size_t n, const unsigned char *seed, size_t seed_len)
{
  unsigned char t[HLEN];
  for (uint32_t c = 0; n > 0; c++) {
    unsigned char cb[4] = {(unsigned char)(c >> 24), (unsigned char)(c >> 16),
                           (unsigned char)(c >> 8), (unsigned char)c};
    br_sha256_context h;
    br_sha256_init(&h);
    br_sha256_update(&h, seed, seed_len);
    br_sha256_update(&h, cb, sizeof(cb));
    br_sha256_out(&h, t);
    size_t k = n < HLEN ? n : HLEN;
    for (size_t i = 0; i < k; i++)
      out[i] ^= t[i];
    out += k;
    n -= k;
  }
}

/* H = SHA-256(0x00 * 8 || mHash || salt): the M' of steps 5 and 6. */
static void m_prime_hash(const unsigned char mhash[HLEN], const unsigned char *salt,
                         unsigned char out[HLEN])
{
  static const unsigned char zeros[8] = {0};
  br_sha256_context h;
  br_sha256_init(&h);
  br_sha256_update(&h, zeros, sizeof(zeros));
  br_sha256_update(&h, mhash, HLEN);
  br_sha256_update(&h, salt, SLEN);
  br_sha256_out(&h, out);
}

size_t jws_pss_encode(const unsigned char mhash[32], const unsigned char salt[32], unsigned em_bits,
                      unsigned char *em)
{
  size_t em_len = (em_bits + 7) / 8;
  if (em_bits == 0 || em_len < HLEN + SLEN + 2)
    return 0;
  size_t db_len = em_len - HLEN - 1;
  unsigned char *db = em, *h = em + db_len;
  /* DB = PS (zeros) || 0x01 || salt, then masked with MGF1(H). */
  m_prime_hash(mhash, salt, h);
  memset(db, 0, db_len - SLEN - 1);
  db[db_len - SLEN - 1] = 0x01;
  memcpy(db + db_len - SLEN, salt, SLEN);
  mgf1_xor(db, db_len, h, HLEN);
  db[0] &= (unsigned char)(0xFF >> (8 * em_len - em_bits));
  em[em_len - 1] = 0xBC;
  return em_len;
}

bool jws_pss_check(const unsigned char mhash[32], const unsigned char *em, size_t em_len,
                   unsigned em_bits)
{
  if (em_len != (em_bits + 7) / 8 || em_len < HLEN + SLEN + 2 || em[em_len - 1] != 0xBC)
    return false;
  size_t db_len = em_len - HLEN - 1;
  /* The leftmost 8 * emLen - emBits bits (0 to 7) must be zero. */
  unsigned char top = (unsigned char)(0xFF00u >> (8 * em_len - em_bits));
  if (em[0] & top)
    return false;
  unsigned char db[JWS_SIG_MAX];
  const unsigned char *h = em + db_len;
  memcpy(db, em, db_len);
  mgf1_xor(db, db_len, h, HLEN);
  db[0] &= (unsigned char)~top;
  /* The leftmost emLen - hLen - sLen - 2 octets are zero, then 0x01. */
  unsigned bad = 0;
  for (size_t i = 0; i < db_len - SLEN - 1; i++)
    bad |= db[i];
  bad |= (unsigned)(db[db_len - SLEN - 1] ^ 0x01);
  unsigned char h2[HLEN];
  m_prime_hash(mhash, db + db_len - SLEN, h2);
  for (size_t i = 0; i < HLEN; i++)
    bad |= (unsigned)(h2[i] ^ h[i]);
  mem_wipe(db, sizeof(db));
  return bad == 0;
}

size_t jws_pss_sign(const br_rsa_private_key *sk, const unsigned char mhash[32],
                    unsigned char sig[JWS_SIG_MAX])
{
  size_t k = (sk->n_bitlen + 7) / 8;
  unsigned em_bits = sk->n_bitlen - 1;
  size_t em_len = (em_bits + 7) / 8;
  if (k > JWS_SIG_MAX || k < em_len)
    return 0;
  unsigned char salt[SLEN];
  rand_bytes(salt, sizeof(salt));
  memset(sig, 0, k - em_len);
  size_t n = jws_pss_encode(mhash, salt, em_bits, sig + (k - em_len));
  mem_wipe(salt, sizeof(salt));
  if (n == 0 || br_rsa_private_get_default()(sig, sk) != 1) {
    mem_wipe(sig, k);
    return 0;
  }
  return k;
}

bool jws_pss_verify(const br_rsa_public_key *pk, const unsigned char mhash[32],
                    const unsigned char *sig, size_t sig_len)
{
  /* modBits from the modulus itself (leading zero bytes allowed). */
  const unsigned char *n = pk->n;
  size_t nlen = pk->nlen;
  while (nlen && *n == 0)
    n++, nlen--;
  if (nlen == 0 || sig_len != nlen || nlen > JWS_SIG_MAX)
    return false;
  unsigned bits = (unsigned)(nlen - 1) * 8;
  for (unsigned c = n[0]; c; c >>= 1)
    bits++;
  unsigned char m[JWS_SIG_MAX];
  memcpy(m, sig, sig_len);
  br_rsa_public_key key = {(unsigned char *)n, nlen, pk->e, pk->elen};
  if (br_rsa_public_get_default()(m, sig_len, &key) != 1)
    return false;
  unsigned em_bits = bits - 1;
  size_t em_len = (em_bits + 7) / 8;
  /* I2OSP(m, emLen): a leading byte beyond emLen must be zero. */
  if (em_len < sig_len && m[0] != 0)
    return false;
  return jws_pss_check(mhash, m + (sig_len - em_len), em_len, em_bits);
}
