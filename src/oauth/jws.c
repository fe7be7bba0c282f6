/*
 * JWS compact serialization: signing and verifying; see jws.h.
 *
 * The signing input is BASE64URL(header) "." BASE64URL(payload), built in
 * the output buffer itself, so the signature is computed over exactly the
 * bytes that are sent. Signatures are computed into a fixed stack buffer
 * (at most 512 bytes: RSA 4096) and appended base64url-encoded.
 */
#include <stdbool.h>
#include <string.h>

#include <bearssl.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "oauth/jws_int.h"

#define SIG_MAX JWS_SIG_MAX

static void sha256(const void *p, size_t n, unsigned char out[32])
{
  br_sha256_context c;
  br_sha256_init(&c);
  br_sha256_update(&c, p, n);
  br_sha256_out(&c, out);
}

static void hs256(const jws_key_t *k, const void *p, size_t n, unsigned char out[32])
{
  br_hmac_key_context kc;
  br_hmac_context hc;
  br_hmac_key_init(&kc, &br_sha256_vtable, k->oct, k->oct_len);
  br_hmac_init(&hc, &kc, 0);
  br_hmac_update(&hc, p, n);
  br_hmac_out(&hc, out);
  mem_wipe(&kc, sizeof(kc));
  mem_wipe(&hc, sizeof(hc));
}

/* Signs p[0..n) into sig; @return the signature length, 0 on failure. */
static size_t sign(const jws_key_t *k, jws_alg_t alg, const void *p, size_t n,
                   unsigned char sig[SIG_MAX])
{
  unsigned char h[32];
  size_t len = 0;
  switch (alg) {
  case JWS_RS256:
    sha256(p, n, h);
    if (br_rsa_pkcs1_sign_get_default()(BR_HASH_OID_SHA256, h, sizeof(h), &k->rsa, sig) == 1)
      len = (k->rsa.n_bitlen + 7) / 8;
    break;
  case JWS_PS256:
    sha256(p, n, h);
    len = jws_pss_sign(&k->rsa, h, sig);
    break;
  case JWS_ES256:
    sha256(p, n, h);
    len = br_ecdsa_sign_raw_get_default()(br_ec_get_default(), &br_sha256_vtable, h, &k->ec, sig);
    break;
  case JWS_HS256:
    hs256(k, p, n, sig);
    len = 32;
    break;
  default: break;
  }
  return len;
}

int jws_sign_compact(const jws_key_t *k, jws_alg_t alg, const void *header, size_t header_len,
                     const void *payload, size_t payload_len, buf_t *out)
{
  if (jws_key_check_alg(k, alg, NULL) != 0)
    return GRANTD_EINVALID;
  size_t start = out->len;
  b64url_encode(out, header, header_len);
  buf_putc(out, '.');
  b64url_encode(out, payload, payload_len);
  unsigned char sig[SIG_MAX];
  size_t n = sign(k, alg, out->data + start, out->len - start, sig);
  if (n == 0) {
    out->len = start;
    if (out->data)
      out->data[start] = '\0';
    return GRANTD_EINVALID;
  }
  buf_putc(out, '.');
  b64url_encode(out, sig, n);
  mem_wipe(sig, sizeof(sig));
  return 0;
}

int jws_sign_claims(const jws_key_t *k, jws_alg_t alg, const char *kid, const char *typ,
                    const json_t *claims, buf_t *out)
{
  if (!json_is_object(claims) || jws_alg_name(alg) == NULL)
    return GRANTD_EINVALID;
  json_t *h = json_object();
  json_object_set_new(h, "alg", json_string(jws_alg_name(alg)));
  if (typ)
    json_object_set_new(h, "typ", json_string(typ));
  if (kid)
    json_object_set_new(h, "kid", json_string(kid));
  buf_t hb = BUF_INIT, pb = BUF_INIT;
  int rc = json_dump_buf(h, &hb);
  if (rc == 0)
    rc = json_dump_buf(claims, &pb);
  if (rc == 0)
    rc = jws_sign_compact(k, alg, hb.data, hb.len, pb.data, pb.len, out);
  json_decref(h);
  buf_free(&hb);
  buf_wipe_free(&pb);
  return rc;
}

static bool verify(const jws_key_t *k, jws_alg_t alg, const char *input, size_t n,
                   const unsigned char *sig, size_t sig_len)
{
  unsigned char h[32], got[SIG_MAX];
  bool ok = false;
  switch (alg) {
  case JWS_RS256: {
    sha256(input, n, h);
    if (sig_len != (k->rsa.n_bitlen + 7) / 8)
      break;
    ok = br_rsa_pkcs1_vrfy_get_default()(sig, sig_len, BR_HASH_OID_SHA256, sizeof(h), &k->pub.rsa,
                                         got) == 1 &&
         memcmp(got, h, sizeof(h)) == 0;
    break;
  }
  case JWS_PS256:
    sha256(input, n, h);
    ok = jws_pss_verify(&k->pub.rsa, h, sig, sig_len);
    break;
  case JWS_ES256:
    sha256(input, n, h);
    ok = sig_len == 64 && br_ecdsa_vrfy_raw_get_default()(br_ec_get_default(), h, sizeof(h),
                                                          &k->pub.ec, sig, sig_len) == 1;
    break;
  case JWS_HS256: {
    hs256(k, input, n, got);
    unsigned diff = sig_len != 32;
    for (size_t i = 0; i < 32 && i < sig_len; i++)
      diff |= (unsigned)(got[i] ^ sig[i]);
    ok = diff == 0;
    break;
  }
  default: break;
  }
  mem_wipe(got, sizeof(got));
  return ok;
}

int jws_verify_compact(const jws_key_t *k, jws_alg_t alg, const char *jws, size_t n, buf_t *payload)
{
  if (jws_key_check_alg(k, alg, NULL) != 0)
    return GRANTD_EINVALID;
  const char *d1 = memchr(jws, '.', n);
  const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - jws)) : NULL;
  if (d2 == NULL || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - jws)) != NULL)
    return GRANTD_EINVALID;
  buf_t hb = BUF_INIT, sb = BUF_INIT, pb = BUF_INIT;
  json_t *h = NULL;
  int rc = GRANTD_EINVALID;
  if (b64url_decode(&hb, jws, (size_t)(d1 - jws)) != 0 || json_parse(hb.data, hb.len, &h) != 0)
    goto done;
  const char *a = json_get_str(h, "alg");
  if (a == NULL || strcmp(a, jws_alg_name(alg)) != 0)
    goto done;
  if (b64url_decode(&sb, d2 + 1, n - (size_t)(d2 + 1 - jws)) != 0 ||
      b64url_decode(&pb, d1 + 1, (size_t)(d2 - d1 - 1)) != 0)
    goto done;
  if (!verify(k, alg, jws, (size_t)(d2 - jws), (const unsigned char *)sb.data, sb.len))
    goto done;
  if (payload)
    buf_append(payload, pb.data, pb.len);
  rc = 0;
done:
  json_decref(h);
  buf_free(&hb);
  buf_free(&sb);
  buf_wipe_free(&pb);
  return rc;
}
