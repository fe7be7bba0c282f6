/*
 * JWS signing keys: PEM and JWK parsing, size rules, public JWKs; see jws.h.
 *
 * A key is one allocation: the struct, then every component's bytes, so a
 * single wipe + free releases it. BearSSL's key structs hold pointers into
 * that tail. An RSA key keeps the CRT form BearSSL signs with (p, q, dp, dq,
 * iq) plus the modulus and public exponent recomputed from it, so the
 * public JWK never trusts a value the private key does not imply; a JWK's
 * own n and e must match them. An EC key keeps its scalar and the public
 * point computed from it (again compared with a JWK's x and y).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <bearssl.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "oauth/jws_int.h"

#define PEM_MAX (64 * 1024)

const char *jws_alg_name(jws_alg_t alg)
{
  switch (alg) {
  case JWS_RS256: return "RS256";
  case JWS_ES256: return "ES256";
  case JWS_HS256: return "HS256";
  case JWS_PS256: return "PS256";
  case JWS_ALG_NONE: break;
  }
  return NULL;
}

int jws_alg_parse(const char *name, jws_alg_t *out)
{
  static const jws_alg_t all[] = {JWS_RS256, JWS_ES256, JWS_HS256, JWS_PS256};
  if (name == NULL)
    return GRANTD_EINVALID;
  for (size_t i = 0; i < ARRAY_SIZE(all); i++)
    if (strcmp(name, jws_alg_name(all[i])) == 0) {
      *out = all[i];
      return 0;
    }
  return GRANTD_EINVALID;
}

/* Lays out a key: the struct followed by `extra` bytes for components. */
static jws_key_t *key_alloc(jws_kty_t kty, size_t extra)
{
  jws_key_t *k = xcalloc(1, sizeof(*k) + extra);
  k->kty = kty;
  k->size = sizeof(*k) + extra;
  k->tail = (unsigned char *)(k + 1);
  return k;
}

static unsigned char *key_put(jws_key_t *k, size_t *used, const void *p, size_t n)
{
  unsigned char *dst = k->tail + *used;
  if (n)
    memcpy(dst, p, n);
  *used += n;
  return dst;
}

void jws_key_free(jws_key_t *k)
{
  if (k == NULL)
    return;
  mem_wipe(k, k->size);
  free(k);
}

jws_kty_t jws_key_type(const jws_key_t *k)
{
  return k->kty;
}

unsigned jws_key_bits(const jws_key_t *k)
{
  switch (k->kty) {
  case JWS_KTY_RSA: return k->rsa.n_bitlen;
  case JWS_KTY_EC: return k->ec.curve == BR_EC_secp256r1 ? 256 : 0;
  case JWS_KTY_OCT: return (unsigned)(k->oct_len * 8);
  }
  return 0;
}

jws_alg_t jws_key_default_alg(const jws_key_t *k)
{
  switch (k->kty) {
  case JWS_KTY_RSA: return JWS_RS256;
  case JWS_KTY_EC: return JWS_ES256;
  case JWS_KTY_OCT: return JWS_HS256;
  }
  return JWS_ALG_NONE;
}

int jws_key_check_alg(const jws_key_t *k, jws_alg_t alg, const char **why)
{
  const char *w = NULL;
  switch (alg) {
  case JWS_RS256:
    if (k->kty != JWS_KTY_RSA)
      w = "RS256 needs an RSA key";
    else if (k->rsa.n_bitlen < 2048)
      w = "RS256 needs an RSA key of at least 2048 bits (RFC 7518 section 3.3)";
    break;
  case JWS_ES256:
    if (k->kty != JWS_KTY_EC)
      w = "ES256 needs an EC key";
    else if (k->ec.curve != BR_EC_secp256r1)
      w = "ES256 needs an EC key on the P-256 curve";
    break;
  case JWS_HS256:
    if (k->kty != JWS_KTY_OCT)
      w = "HS256 needs a shared secret, not an RSA or EC key";
    else if (k->oct_len < 32)
      w = "HS256 needs a secret of at least 32 bytes (RFC 7518 section 3.2)";
    break;
  case JWS_PS256:
    w = "PS256 (RSASSA-PSS) is not available: the BearSSL 0.6 grantd is built with has no "
        "RSA-PSS; use RS256 or ES256";
    break;
  case JWS_ALG_NONE: w = "no signing algorithm"; break;
  }
  if (w && why)
    *why = w;
  return w ? GRANTD_EINVALID : 0;
}

static unsigned bitlen(const unsigned char *p, size_t n)
{
  while (n && *p == 0)
    p++, n--;
  if (n == 0)
    return 0;
  unsigned bits = (unsigned)(n - 1) * 8;
  for (unsigned c = *p; c; c >>= 1)
    bits++;
  return bits;
}

/* Signs a fixed digest and verifies it with the public half: CRT members
 * that do not belong together (a wrong dp, dq or qi) sign garbage, and a
 * key is refused rather than kept to fail at the provider. */
static bool rsa_self_test(const jws_key_t *k)
{
  static const unsigned char h[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                      12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                      23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  unsigned char sig[JWS_SIG_MAX], got[32];
  bool ok = br_rsa_pkcs1_sign_get_default()(BR_HASH_OID_SHA256, h, sizeof(h), &k->rsa, sig) == 1 &&
            br_rsa_pkcs1_vrfy_get_default()(sig, k->pub.rsa.nlen, BR_HASH_OID_SHA256, sizeof(got),
                                            &k->pub.rsa, got) == 1 &&
            memcmp(got, h, sizeof(h)) == 0;
  mem_wipe(sig, sizeof(sig));
  return ok;
}

/* Finishes an RSA key from BearSSL's CRT components: recomputes n and e,
 * checks the size and that the members fit together. */
static int rsa_from_crt(const br_rsa_private_key *src, jws_key_t **out, const char **why)
{
  if (src->n_bitlen > JWS_RSA_MAX_BITS || src->n_bitlen < JWS_RSA_MIN_BITS || src->plen == 0 ||
      src->qlen == 0 || src->dplen == 0 || src->dqlen == 0 || src->iqlen == 0 ||
      src->plen > JWS_SIG_MAX || src->qlen > JWS_SIG_MAX || src->dplen > JWS_SIG_MAX ||
      src->dqlen > JWS_SIG_MAX || src->iqlen > JWS_SIG_MAX) {
    *why = "RSA keys must have 2048 to 4096 bits (RFC 7518 section 3.3)";
    return GRANTD_EINVALID;
  }
  br_rsa_compute_modulus modulus = br_rsa_compute_modulus_get_default();
  size_t nlen = (src->n_bitlen + 7) / 8;
  /* The modulus is p * q: its length must be the one the key claims
   * (asked first, with no buffer, so nothing is written past the tail). */
  if (modulus(NULL, src) != nlen) {
    *why = "the RSA private key is inconsistent (p * q is not the modulus)";
    return GRANTD_EINVALID;
  }
  size_t extra = src->plen + src->qlen + src->dplen + src->dqlen + src->iqlen + nlen + 4;
  jws_key_t *k = key_alloc(JWS_KTY_RSA, extra);
  size_t used = 0;
  k->rsa.n_bitlen = src->n_bitlen;
  k->rsa.p = key_put(k, &used, src->p, src->plen);
  k->rsa.plen = src->plen;
  k->rsa.q = key_put(k, &used, src->q, src->qlen);
  k->rsa.qlen = src->qlen;
  k->rsa.dp = key_put(k, &used, src->dp, src->dplen);
  k->rsa.dplen = src->dplen;
  k->rsa.dq = key_put(k, &used, src->dq, src->dqlen);
  k->rsa.dqlen = src->dqlen;
  k->rsa.iq = key_put(k, &used, src->iq, src->iqlen);
  k->rsa.iqlen = src->iqlen;
  k->pub.rsa.n = k->tail + used;
  k->pub.rsa.nlen = modulus(k->pub.rsa.n, &k->rsa);
  used += nlen;
  uint32_t e = br_rsa_compute_pubexp_get_default()(&k->rsa);
  /* BearSSL 0.6's compute_pubexp gives 0 for many ordinary keys (most
   * OpenSSL 2048-bit keys with e = 65537): then take the usual exponent,
   * which the self-test below confirms (a wrong e cannot verify). */
  if (e == 0)
    e = 65537;
  if (k->pub.rsa.nlen != nlen || bitlen(k->pub.rsa.n, nlen) != src->n_bitlen) {
    jws_key_free(k);
    *why = "the RSA private key is inconsistent";
    return GRANTD_EINVALID;
  }
  unsigned char eb[4] = {(unsigned char)(e >> 24), (unsigned char)(e >> 16),
                         (unsigned char)(e >> 8), (unsigned char)e};
  size_t skip = 0;
  while (skip < 3 && eb[skip] == 0)
    skip++;
  k->pub.rsa.e = key_put(k, &used, eb + skip, 4 - skip);
  k->pub.rsa.elen = 4 - skip;
  if (!rsa_self_test(k)) {
    jws_key_free(k);
    *why = "the RSA private key is inconsistent (its CRT members do not sign)";
    return GRANTD_EINVALID;
  }
  *out = k;
  return 0;
}

/* 1 <= x < n, the P-256 subgroup order (BearSSL's multipliers must be
 * below it, and a zero scalar is no key). Big-endian, leading zeros
 * allowed. */
static bool scalar_in_range(const unsigned char *x, size_t xlen)
{
  size_t olen = 0;
  const unsigned char *order = br_ec_get_default()->order(BR_EC_secp256r1, &olen);
  while (xlen && *x == 0)
    x++, xlen--;
  if (xlen == 0 || xlen > olen)
    return false;
  if (xlen < olen)
    return true;
  return memcmp(x, order, olen) < 0;
}

static int ec_from_priv(const br_ec_private_key *src, jws_key_t **out, const char **why)
{
  if (src->curve != BR_EC_secp256r1) {
    *why = "EC keys must be on the P-256 curve (ES256)";
    return GRANTD_EINVALID;
  }
  if (!scalar_in_range(src->x, src->xlen)) {
    *why = "the EC private key is not a valid P-256 scalar";
    return GRANTD_EINVALID;
  }
  jws_key_t *k = key_alloc(JWS_KTY_EC, src->xlen + BR_EC_KBUF_PUB_MAX_SIZE);
  size_t used = 0;
  k->ec.curve = src->curve;
  k->ec.x = key_put(k, &used, src->x, src->xlen);
  k->ec.xlen = src->xlen;
  size_t publen = br_ec_compute_pub(br_ec_get_default(), &k->pub.ec, k->tail + used, &k->ec);
  if (publen != 65) {
    jws_key_free(k);
    *why = "the EC private key is not a valid P-256 scalar";
    return GRANTD_EINVALID;
  }
  *out = k;
  return 0;
}

/* ---- PEM ---- */

static void pem_collect(void *ctx, const void *p, size_t n)
{
  buf_append(ctx, p, n);
}

static int parse_pem(const char *text, size_t len, jws_key_t **out, const char **why)
{
  br_pem_decoder_context pc;
  br_pem_decoder_init(&pc);
  buf_t der = BUF_INIT;
  bool in_key = false, in_obj = false, done = false;
  int rc = GRANTD_EINVALID;
  *why = "no PEM private key (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY) found";
  const char *p = text;
  size_t left = len;
  bool tail = false;
  /* One extra "\n" after the text lets an END line without a final
   * newline finish. */
  while (!done) {
    if (left == 0) {
      if (tail)
        break;
      p = "\n";
      left = 1;
      tail = true;
    }
    size_t used = br_pem_decoder_push(&pc, p, left);
    p += used;
    left -= used;
    int ev = br_pem_decoder_event(&pc);
    if (used == 0 && ev == 0)
      break;
    switch (ev) {
    case BR_PEM_BEGIN_OBJ: {
      const char *name = br_pem_decoder_name(&pc);
      in_obj = true;
      in_key = strcmp(name, "RSA PRIVATE KEY") == 0 || strcmp(name, "EC PRIVATE KEY") == 0 ||
               strcmp(name, "PRIVATE KEY") == 0;
      if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0) {
        *why = "encrypted private keys are not supported: give the key unencrypted (it is "
               "sealed at rest)";
        done = true;
      } else if (strcmp(name, "PUBLIC KEY") == 0 || strcmp(name, "RSA PUBLIC KEY") == 0 ||
                 strcmp(name, "CERTIFICATE") == 0) {
        *why = "a private key is needed, not a public key or certificate";
        done = true;
      }
      buf_wipe_free(&der);
      br_pem_decoder_setdest(&pc, in_key ? pem_collect : NULL, &der);
      break;
    }
    case BR_PEM_END_OBJ:
      in_obj = false;
      if (in_key)
        done = true;
      break;
    case BR_PEM_ERROR:
      *why = "the PEM text is malformed";
      done = true;
      in_key = false;
      break;
    default: break;
    }
  }
  if (in_key && in_obj)
    *why = "the PEM private key is truncated (no END line)";
  if (in_key && !in_obj && der.len > 0) {
    br_skey_decoder_context *sk = xmalloc(sizeof(*sk));
    br_skey_decoder_init(sk);
    br_skey_decoder_push(sk, der.data, der.len);
    if (br_skey_decoder_last_error(sk) != 0) {
      *why = "the PEM private key is not a valid PKCS#1, SEC1 or PKCS#8 RSA or EC key";
    } else if (br_skey_decoder_key_type(sk) == BR_KEYTYPE_RSA) {
      rc = rsa_from_crt(br_skey_decoder_get_rsa(sk), out, why);
    } else if (br_skey_decoder_key_type(sk) == BR_KEYTYPE_EC) {
      rc = ec_from_priv(br_skey_decoder_get_ec(sk), out, why);
    }
    mem_wipe(sk, sizeof(*sk));
    free(sk);
  }
  mem_wipe(&pc, sizeof(pc));
  buf_wipe_free(&der);
  return rc;
}

/* ---- JWK ---- */

/* Decodes the base64url member key of o into b (wiped by the caller). */
static bool jwk_bytes(const json_t *o, const char *key, buf_t *b)
{
  const char *s = json_get_str(o, key);
  return s && *s && b64url_decode(b, s, strlen(s)) == 0;
}

static bool same_unsigned(const unsigned char *a, size_t an, const buf_t *b)
{
  const unsigned char *bp = (const unsigned char *)b->data;
  size_t bn = b->len;
  while (an && *a == 0)
    a++, an--;
  while (bn && *bp == 0)
    bp++, bn--;
  return an == bn && memcmp(a, bp, an) == 0;
}

static int jwk_rsa(const json_t *o, jws_key_t **out, const char **why)
{
  static const char *const names[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
  buf_t v[8];
  int rc = GRANTD_EINVALID;
  for (size_t i = 0; i < 8; i++)
    v[i] = (buf_t)BUF_INIT;
  for (size_t i = 0; i < 8; i++)
    if (!jwk_bytes(o, names[i], &v[i])) {
      *why = i < 3 ? "an RSA JWK needs n, e and d (base64url): a private key is needed"
                   : "an RSA JWK needs its CRT members p, q, dp, dq and qi";
      goto done;
    }
  br_rsa_private_key sk = {
    .n_bitlen = bitlen((unsigned char *)v[0].data, v[0].len),
    .p = (unsigned char *)v[3].data,
    .plen = v[3].len,
    .q = (unsigned char *)v[4].data,
    .qlen = v[4].len,
    .dp = (unsigned char *)v[5].data,
    .dplen = v[5].len,
    .dq = (unsigned char *)v[6].data,
    .dqlen = v[6].len,
    .iq = (unsigned char *)v[7].data,
    .iqlen = v[7].len,
  };
  rc = rsa_from_crt(&sk, out, why);
  if (rc == 0 && (!same_unsigned((*out)->pub.rsa.n, (*out)->pub.rsa.nlen, &v[0]) ||
                  !same_unsigned((*out)->pub.rsa.e, (*out)->pub.rsa.elen, &v[1]))) {
    jws_key_free(*out);
    *out = NULL;
    *why = "the RSA JWK's n and e do not match its private members";
    rc = GRANTD_EINVALID;
  }
done:
  for (size_t i = 0; i < 8; i++)
    buf_wipe_free(&v[i]);
  return rc;
}

static int jwk_ec(const json_t *o, jws_key_t **out, const char **why)
{
  const char *crv = json_get_str(o, "crv");
  if (crv == NULL || strcmp(crv, "P-256") != 0) {
    *why = "an EC JWK must have crv P-256 (ES256)";
    return GRANTD_EINVALID;
  }
  buf_t x = BUF_INIT, y = BUF_INIT, d = BUF_INIT;
  int rc = GRANTD_EINVALID;
  if (!jwk_bytes(o, "d", &d)) {
    *why = "an EC JWK needs d: a private key is needed";
  } else if (!jwk_bytes(o, "x", &x) || !jwk_bytes(o, "y", &y) || x.len != 32 || y.len != 32 ||
             d.len != 32) {
    *why = "an EC P-256 JWK needs x, y and d of 32 bytes each";
  } else {
    br_ec_private_key sk = {BR_EC_secp256r1, (unsigned char *)d.data, d.len};
    rc = ec_from_priv(&sk, out, why);
    if (rc == 0 && (memcmp((*out)->pub.ec.q + 1, x.data, 32) != 0 ||
                    memcmp((*out)->pub.ec.q + 33, y.data, 32) != 0)) {
      jws_key_free(*out);
      *out = NULL;
      *why = "the EC JWK's x and y do not match its d";
      rc = GRANTD_EINVALID;
    }
  }
  buf_wipe_free(&x);
  buf_wipe_free(&y);
  buf_wipe_free(&d);
  return rc;
}

static int parse_jwk(const char *text, size_t len, jws_key_t **out, const char **why)
{
  json_t *o = NULL;
  if (json_parse(text, len, &o) != 0 || !json_is_object(o)) {
    json_decref(o);
    *why = "the JWK is not a JSON object";
    return GRANTD_EINVALID;
  }
  int rc = GRANTD_EINVALID;
  const char *kty = json_get_str(o, "kty");
  if (json_object_get(o, "keys")) {
    *why = "give one JWK, not a key set";
  } else if (kty == NULL) {
    *why = "the JWK has no kty";
  } else if (strcmp(kty, "RSA") == 0) {
    rc = jwk_rsa(o, out, why);
  } else if (strcmp(kty, "EC") == 0) {
    rc = jwk_ec(o, out, why);
  } else if (strcmp(kty, "oct") == 0) {
    buf_t kb = BUF_INIT;
    if (jwk_bytes(o, "k", &kb))
      rc = jws_key_from_secret(kb.data, kb.len, out, why);
    else
      *why = "an oct JWK needs k (base64url)";
    buf_wipe_free(&kb);
  } else {
    *why = "the JWK's kty must be RSA, EC or oct";
  }
  json_wipe_strings(o);
  json_decref(o);
  return rc;
}

int jws_key_parse(const char *text, size_t len, jws_key_t **out, const char **why)
{
  const char *dummy;
  if (why == NULL)
    why = &dummy;
  *out = NULL;
  size_t i = 0;
  while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
    i++;
  if (i == len) {
    *why = "the key is empty";
    return GRANTD_EINVALID;
  }
  if (len > PEM_MAX) {
    *why = "the key is longer than 64 KiB";
    return GRANTD_EINVALID;
  }
  if (text[i] == '{')
    return parse_jwk(text, len, out, why);
  return parse_pem(text, len, out, why);
}

int jws_key_from_secret(const void *secret, size_t n, jws_key_t **out, const char **why)
{
  *out = NULL;
  if (n == 0) {
    if (why)
      *why = "the secret is empty";
    return GRANTD_EINVALID;
  }
  jws_key_t *k = key_alloc(JWS_KTY_OCT, n);
  size_t used = 0;
  k->oct = key_put(k, &used, secret, n);
  k->oct_len = n;
  *out = k;
  return 0;
}

static json_t *b64url_json(const unsigned char *p, size_t n)
{
  buf_t b = BUF_INIT;
  b64url_encode(&b, p, n);
  json_t *s = json_stringn(b.data, b.len);
  buf_free(&b);
  return s;
}

/* The public members of k as a JWK, in RFC 7638's lexicographic order
 * (jansson keeps insertion order), so the thumbprint is the compact dump. */
static json_t *public_members(const jws_key_t *k)
{
  json_t *o = json_object();
  if (k->kty == JWS_KTY_RSA) {
    json_object_set_new(o, "e", b64url_json(k->pub.rsa.e, k->pub.rsa.elen));
    json_object_set_new(o, "kty", json_string("RSA"));
    json_object_set_new(o, "n", b64url_json(k->pub.rsa.n, k->pub.rsa.nlen));
  } else if (k->kty == JWS_KTY_EC) {
    json_object_set_new(o, "crv", json_string("P-256"));
    json_object_set_new(o, "kty", json_string("EC"));
    json_object_set_new(o, "x", b64url_json(k->pub.ec.q + 1, 32));
    json_object_set_new(o, "y", b64url_json(k->pub.ec.q + 33, 32));
  } else {
    json_decref(o);
    return NULL;
  }
  return o;
}

int jws_jwk_thumbprint(const json_t *jwk, buf_t *out)
{
  static const char *const rsa[] = {"e", "kty", "n", NULL};
  static const char *const ec[] = {"crv", "kty", "x", "y", NULL};
  static const char *const oct[] = {"k", "kty", NULL};
  const char *kty = json_get_str(jwk, "kty");
  const char *const *names = NULL;
  if (kty && strcmp(kty, "RSA") == 0)
    names = rsa;
  else if (kty && strcmp(kty, "EC") == 0)
    names = ec;
  else if (kty && strcmp(kty, "oct") == 0)
    names = oct;
  if (names == NULL)
    return GRANTD_EINVALID;
  json_t *c = json_object();
  int rc = 0;
  for (size_t i = 0; names[i] && rc == 0; i++) {
    json_t *v = json_object_get(jwk, names[i]);
    if (!json_is_string(v))
      rc = GRANTD_EINVALID;
    else
      json_object_set(c, names[i], v);
  }
  buf_t b = BUF_INIT;
  if (rc == 0)
    rc = json_dump_buf(c, &b);
  if (rc == 0) {
    unsigned char h[32];
    br_sha256_context sc;
    br_sha256_init(&sc);
    br_sha256_update(&sc, b.data, b.len);
    br_sha256_out(&sc, h);
    b64url_encode(out, h, sizeof(h));
  }
  buf_wipe_free(&b);
  json_decref(c);
  return rc;
}

int jws_key_thumbprint(const jws_key_t *k, buf_t *out)
{
  json_t *o = public_members(k);
  if (o == NULL)
    return GRANTD_EINVALID;
  int rc = jws_jwk_thumbprint(o, out);
  json_decref(o);
  return rc;
}

json_t *jws_key_public_jwk(const jws_key_t *k, const char *kid, jws_alg_t alg)
{
  json_t *o = public_members(k);
  if (o == NULL)
    return NULL;
  if (kid) {
    json_object_set_new(o, "kid", json_string(kid));
  } else {
    buf_t t = BUF_INIT;
    if (jws_key_thumbprint(k, &t) == 0)
      json_object_set_new(o, "kid", json_stringn(t.data, t.len));
    buf_free(&t);
  }
  if (jws_alg_name(alg))
    json_object_set_new(o, "alg", json_string(jws_alg_name(alg)));
  json_object_set_new(o, "use", json_string("sig"));
  return o;
}
