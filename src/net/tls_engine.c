/*
 * tls_engine.c - what every BearSSL engine of grantd is configured with,
 * client and server alike: the TLS 1.2 cipher suites (ECDHE with AES-GCM
 * or ChaCha20-Poly1305 only), the SHA-2 PRFs, and the fastest
 * implementations of each algorithm the CPU supports, chosen once.
 */
#include "net/tls_int.h"

const uint16_t tls__suites[] = {
  BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,       BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
  BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,       BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
  BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
};
const size_t tls__nsuites = sizeof tls__suites / sizeof tls__suites[0];

const tls__impls_t *tls__impls(void)
{
  static tls__impls_t im;
  static int done;
  if (done)
    return &im;
  im.aes_ctr = br_aes_x86ni_ctr_get_vtable();
  if (im.aes_ctr == NULL)
    im.aes_ctr = &br_aes_ct64_ctr_vtable;
  im.ghash = br_ghash_pclmul_get();
  if (im.ghash == 0)
    im.ghash = br_ghash_ctmul64;
  im.chacha20 = br_chacha20_sse2_get();
  if (im.chacha20 == 0)
    im.chacha20 = br_chacha20_ct_run;
  im.poly1305 = br_poly1305_ctmulq_get();
  if (im.poly1305 == 0)
    im.poly1305 = br_poly1305_ctmul_run;
  im.rsa_vrfy = br_rsa_pkcs1_vrfy_get_default();
  im.ec = br_ec_get_default();
  im.ecdsa_vrfy = br_ecdsa_vrfy_asn1_get_default();
  im.rsa_priv = br_rsa_private_get_default();
  im.rsa_sign = br_rsa_pkcs1_sign_get_default();
  im.ecdsa_sign = br_ecdsa_sign_asn1_get_default();
  done = 1;
  return &im;
}

void tls__engine_setup(tls__conn_t *c)
{
  const tls__impls_t *im = tls__impls();
  br_ssl_engine_context *eng = c->eng;
  br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
  br_ssl_engine_set_suites(eng, tls__suites, tls__nsuites);
  br_ssl_engine_set_prf_sha256(eng, &br_tls12_sha256_prf);
  br_ssl_engine_set_prf_sha384(eng, &br_tls12_sha384_prf);
  br_ssl_engine_set_gcm(eng, &br_sslrec_in_gcm_vtable, &br_sslrec_out_gcm_vtable);
  br_ssl_engine_set_aes_ctr(eng, im->aes_ctr);
  br_ssl_engine_set_ghash(eng, im->ghash);
  br_ssl_engine_set_chapol(eng, &br_sslrec_in_chapol_vtable, &br_sslrec_out_chapol_vtable);
  br_ssl_engine_set_chacha20(eng, im->chacha20);
  br_ssl_engine_set_poly1305(eng, im->poly1305);
  br_ssl_engine_set_buffer(eng, c->iobuf, sizeof c->iobuf, 0);
}
