/*
 * tls_client_cert.c - client certificates for mutual TLS (RFC 8705): the
 * PEM chain and private key a provider configures, parsed and checked
 * once, when the provider is saved and when its TLS context is made.
 *
 * The checks: the chain is one or more CERTIFICATE objects that BearSSL
 * decodes (leaf first); the key is one RSA or EC private key (PKCS#1,
 * SEC1 or PKCS#8); the key's type is the leaf's; RSA keys have 2048 bits
 * or more (RFC 8705 itself sets no floor; grantd uses the one of its JWS
 * keys and of today's CAs); EC keys are on P-256, P-384 or P-521; and the
 * key is the leaf's: the RSA modulus p * q, or the EC point computed from
 * the scalar, equals the certificate's public key. The certificate's
 * validity dates are the server's business and are not checked.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "net/tls_int.h"

#define RSA_MIN_BITS 2048

static bool same_unsigned(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
  while (an && *a == 0)
    a++, an--;
  while (bn && *b == 0)
    b++, bn--;
  return an == bn && memcmp(a, b, an) == 0;
}

/* Whether key is the private half of the leaf's public key pk. */
static const char *key_matches(const tls__key_t *key, const br_x509_pkey *pk)
{
  if (key->type == BR_KEYTYPE_RSA) {
    if (pk->key_type != BR_KEYTYPE_RSA)
      return "client_cert_key is an RSA key but the certificate holds an EC key";
    if (key->rsa.n_bitlen < RSA_MIN_BITS)
      return "client_cert_key: RSA keys must have at least 2048 bits";
    br_rsa_compute_modulus modulus = br_rsa_compute_modulus_get_default();
    size_t nlen = modulus(NULL, &key->rsa);
    if (nlen == 0 || nlen > 1024)
      return "client_cert_key is not a usable RSA key";
    unsigned char n[1024];
    modulus(n, &key->rsa);
    if (!same_unsigned(n, nlen, pk->key.rsa.n, pk->key.rsa.nlen))
      return "client_cert_key does not match the certificate (another RSA key)";
    return NULL;
  }
  if (pk->key_type != BR_KEYTYPE_EC)
    return "client_cert_key is an EC key but the certificate holds an RSA key";
  int crv = key->ec.curve;
  if (crv != BR_EC_secp256r1 && crv != BR_EC_secp384r1 && crv != BR_EC_secp521r1)
    return "client_cert_key: EC keys must be on P-256, P-384 or P-521";
  if (pk->key.ec.curve != crv)
    return "client_cert_key does not match the certificate (another curve)";
  unsigned char q[BR_EC_KBUF_PUB_MAX_SIZE];
  br_ec_public_key pub;
  size_t qlen = br_ec_compute_pub(br_ec_get_default(), &pub, q, &key->ec);
  if (qlen == 0)
    return "client_cert_key is not a valid EC private key";
  if (qlen != pk->key.ec.qlen || memcmp(q, pk->key.ec.q, qlen) != 0)
    return "client_cert_key does not match the certificate (another EC key)";
  return NULL;
}

int tls__client_cert_load(const char *chain_pem, size_t chain_len, const char *key_pem,
                          size_t key_len, tls__chain_t *chain, tls__key_t *key,
                          unsigned char id[32], unsigned *issuer_key_type, const char **why)
{
  const char *w = NULL;
  memset(chain, 0, sizeof *chain);
  memset(key, 0, sizeof *key);
  if (chain_pem == NULL || chain_len == 0 || tls__chain_load_pem(chain, chain_pem, chain_len) != 0)
    w = "client_cert is not a PEM certificate chain (BEGIN CERTIFICATE)";
  else if (key_pem == NULL || key_len == 0 || tls__key_load_pem(key, key_pem, key_len) != 0)
    w = "client_cert_key is not a PEM RSA or EC private key (PKCS#1, SEC1 or PKCS#8, "
        "unencrypted)";
  br_x509_decoder_context *dc = NULL;
  for (size_t i = 0; w == NULL && i < chain->n; i++) {
    if (dc == NULL)
      dc = xmalloc(sizeof *dc);
    br_x509_decoder_init(dc, NULL, NULL);
    br_x509_decoder_push(dc, chain->v[i].data, chain->v[i].data_len);
    if (br_x509_decoder_last_error(dc) != 0 || br_x509_decoder_get_pkey(dc) == NULL) {
      w = "client_cert holds a certificate that cannot be decoded";
      break;
    }
    if (i == 0) {
      w = key_matches(key, br_x509_decoder_get_pkey(dc));
      *issuer_key_type = br_x509_decoder_get_signer_key_type(dc);
      if (*issuer_key_type == 0)
        *issuer_key_type = BR_KEYTYPE_EC;
    }
  }
  free(dc);
  if (w != NULL) {
    tls__chain_free(chain);
    tls__key_free(key);
    *why = w;
    return GRANTD_EINVALID;
  }
  br_sha256_context h;
  br_sha256_init(&h);
  br_sha256_update(&h, chain->v[0].data, chain->v[0].data_len);
  br_sha256_out(&h, id);
  return 0;
}

int tls_client_cert_check(const char *chain_pem, size_t chain_len, const char *key_pem,
                          size_t key_len, unsigned char id[32], const char **why)
{
  tls__chain_t chain;
  tls__key_t key;
  unsigned char got[32];
  unsigned ikt = 0;
  const char *dummy;
  int rc = tls__client_cert_load(chain_pem, chain_len, key_pem, key_len, &chain, &key, got, &ikt,
                                 why ? why : &dummy);
  if (rc != 0)
    return rc;
  if (id != NULL)
    memcpy(id, got, 32);
  tls__chain_free(&chain);
  tls__key_free(&key);
  return 0;
}
