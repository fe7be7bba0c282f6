/* Unit tests for oauth/jws: the RFC 7515 appendix A.1 (HS256) and A.2
 * (RS256) examples signed to exactly the RFC's JWS, A.3 (ES256) signed and
 * checked with BearSSL's verifier against the RFC's public key (and the
 * RFC's own signature verified), the RFC 7638 thumbprint example, PEM
 * forms (PKCS#1, PKCS#8, SEC1) of the same keys, and refused keys/inputs.
 * PS256: Wycheproof's RSASSA-PSS SHA-256/MGF1/salt-32 vectors through the
 * verifier, signatures of an independent signer (Python cryptography)
 * verified, grantd's own signatures verified (2048 and 2057 bits), and the
 * EMSA-PSS encoding's structure checked with an MGF1 written here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <bearssl.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "jws_fixtures.h"
#include "oauth/jws.h"
#include "oauth/jws_int.h"
#include "pss_fixtures.h"

/* RFC 7515 A.1 and A.2/A.3 share this payload (with its CR LF line breaks). */
#define RFC_PAYLOAD_B64 \
  "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
#define A1_HEADER_B64 "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
#define A1_SIG "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define A1_KEY \
  "{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-" \
  "1qS0gZH75aKtMN3Yj0iPS4hcg" \
  "UuTwjAzZr1Z9CAow\"}"
#define A2_HEADER_B64 "eyJhbGciOiJSUzI1NiJ9"
#define A2_SIG \
  "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_" \
  "O8W2Fp5jujG" \
  "bds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_" \
  "nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K" \
  "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-" \
  "eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6" \
  "LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
#define A2_N \
  "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-" \
  "4qPCJrcS2mJPMEzP1Pt0Bm4d4Q" \
  "lL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-" \
  "bSf63kpaSHSXndS5z5rexMdbBY" \
  "UsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-" \
  "DWNm" \
  "oudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
#define A2_D \
  "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-" \
  "7YwVol2NXOoAJ" \
  "e46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_" \
  "V51gfpRLI" \
  "9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_" \
  "jTj3ccPDVZFD9p" \
  "IuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ"
#define A2_P \
  "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_" \
  "Py5PJdT" \
  "JNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc"
#define A2_Q \
  "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_" \
  "Y" \
  "wD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc"
#define A2_DP \
  "BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-" \
  "FOKnu1R6Hs" \
  "JeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0"
#define A2_DQ \
  "h_96-mK1R_" \
  "7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-" \
  "NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU"
#define A2_QI \
  "IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_" \
  "QJQ3ydy5cY7YIBi" \
  "87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"
#define A3_HEADER_B64 "eyJhbGciOiJFUzI1NiJ9"
#define A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define A3_D "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
#define A3_SIG \
  "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"

/* A.2's JWK; `drop` names one member to leave out, `swap` one member
 * whose value is replaced by `with`. */
static char *rsa_jwk(const char *drop, const char *swap, const char *with)
{
  static const char *const names[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
  static const char *const values[] = {A2_N, "AQAB", A2_D, A2_P, A2_Q, A2_DP, A2_DQ, A2_QI};
  json_t *o = json_object();
  json_object_set_new(o, "kty", json_string("RSA"));
  for (size_t i = 0; i < 8; i++) {
    if (drop && strcmp(drop, names[i]) == 0)
      continue;
    const char *v = swap && strcmp(swap, names[i]) == 0 ? with : values[i];
    json_object_set_new(o, names[i], json_string(v));
  }
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

static char *ec_jwk(const char *crv, const char *x, const char *y, const char *d)
{
  json_t *o = json_object();
  json_object_set_new(o, "kty", json_string("EC"));
  json_object_set_new(o, "crv", json_string(crv));
  json_object_set_new(o, "x", json_string(x));
  json_object_set_new(o, "y", json_string(y));
  if (d)
    json_object_set_new(o, "d", json_string(d));
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

static jws_key_t *parse_ok(const char *text)
{
  jws_key_t *k = NULL;
  const char *why = NULL;
  int rc = jws_key_parse(text, strlen(text), &k, &why);
  if (rc != 0)
    fail_msg("key refused: %s", why);
  assert_non_null(k);
  return k;
}

/* Parses text, expects a refusal whose reason contains `reason`. */
static void parse_refused(const char *text, const char *reason)
{
  jws_key_t *k = (jws_key_t *)1;
  const char *why = NULL;
  assert_int_equal(jws_key_parse(text, strlen(text), &k, &why), GRANTD_EINVALID);
  assert_null(k);
  assert_non_null(why);
  if (strstr(why, reason) == NULL)
    fail_msg("reason \"%s\" does not contain \"%s\"", why, reason);
}

static void b64d(buf_t *out, const char *s)
{
  assert_int_equal(b64url_decode(out, s, strlen(s)), 0);
}

/* Signs the RFC's header and payload bytes (decoded from their base64url
 * forms) and compares the whole compact JWS with the RFC's. */
static void sign_rfc(const jws_key_t *k, jws_alg_t alg, const char *header_b64,
                     const char *expect_sig)
{
  buf_t h = BUF_INIT, p = BUF_INIT, out = BUF_INIT, want = BUF_INIT;
  b64d(&h, header_b64);
  b64d(&p, RFC_PAYLOAD_B64);
  buf_puts(&out, "prefix:");
  assert_int_equal(jws_sign_compact(k, alg, h.data, h.len, p.data, p.len, &out), 0);
  buf_printf(&want, "prefix:%s.%s.%s", header_b64, RFC_PAYLOAD_B64, expect_sig);
  assert_string_equal(buf_cstr(&out), buf_cstr(&want));
  /* ...and the result verifies, giving the payload back. */
  buf_t got = BUF_INIT;
  assert_int_equal(jws_verify_compact(k, alg, out.data + 7, out.len - 7, &got), 0);
  assert_int_equal(got.len, p.len);
  assert_memory_equal(got.data, p.data, p.len);
  buf_free(&got);
  buf_free(&h);
  buf_free(&p);
  buf_free(&out);
  buf_free(&want);
}

static void test_rfc7515_a1_hs256(void **state)
{
  (void)state;
  jws_key_t *k = parse_ok(A1_KEY);
  assert_int_equal(jws_key_type(k), JWS_KTY_OCT);
  assert_int_equal(jws_key_default_alg(k), JWS_HS256);
  assert_int_equal(jws_key_bits(k), 512);
  sign_rfc(k, JWS_HS256, A1_HEADER_B64, A1_SIG);
  /* An oct key has nothing public. */
  assert_null(jws_key_public_jwk(k, NULL, JWS_HS256));
  jws_key_free(k);

  /* The same secret given as raw bytes (client_secret_jwt). */
  buf_t raw = BUF_INIT;
  b64d(&raw,
       "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
  assert_int_equal(jws_key_from_secret(raw.data, raw.len, &k, NULL), 0);
  sign_rfc(k, JWS_HS256, A1_HEADER_B64, A1_SIG);
  jws_key_free(k);
  buf_free(&raw);
}

static void test_rfc7515_a2_rs256_jwk_and_pem(void **state)
{
  (void)state;
  char *jwk = rsa_jwk(NULL, NULL, NULL);
  const char *const texts[] = {jwk, RSA_PKCS1, RSA_PKCS8};
  for (size_t i = 0; i < 3; i++) {
    jws_key_t *k = parse_ok(texts[i]);
    assert_int_equal(jws_key_type(k), JWS_KTY_RSA);
    assert_int_equal(jws_key_bits(k), 2048);
    assert_int_equal(jws_key_default_alg(k), JWS_RS256);
    sign_rfc(k, JWS_RS256, A2_HEADER_B64, A2_SIG);
    /* The public JWK carries n and e, never a private member. */
    json_t *pub = jws_key_public_jwk(k, "2011-04-29", JWS_RS256);
    assert_string_equal(json_get_str(pub, "kty"), "RSA");
    assert_string_equal(json_get_str(pub, "n"), A2_N);
    assert_string_equal(json_get_str(pub, "e"), "AQAB");
    assert_string_equal(json_get_str(pub, "kid"), "2011-04-29");
    assert_string_equal(json_get_str(pub, "alg"), "RS256");
    assert_string_equal(json_get_str(pub, "use"), "sig");
    static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "k"};
    for (size_t j = 0; j < 7; j++)
      assert_null(json_object_get(pub, priv[j]));
    json_decref(pub);
    jws_key_free(k);
  }
  free(jwk);
}

/* An ordinary OpenSSL key whose e BearSSL cannot recompute from the CRT
 * members: it parses (e = 65537, confirmed by the self-signature), signs
 * RS256 and verifies with its own public half. */
static void test_rsa_openssl_key(void **state)
{
  (void)state;
  jws_key_t *k = parse_ok(RSA_OPENSSL);
  assert_int_equal(jws_key_type(k), JWS_KTY_RSA);
  assert_int_equal(jws_key_bits(k), 2048);
  json_t *pub = jws_key_public_jwk(k, NULL, JWS_RS256);
  assert_string_equal(json_get_str(pub, "e"), "AQAB");
  json_decref(pub);
  buf_t out = BUF_INIT;
  assert_int_equal(jws_sign_compact(k, JWS_RS256, "{\"alg\":\"RS256\"}", 15, "{}", 2, &out), 0);
  assert_int_equal(jws_verify_compact(k, JWS_RS256, out.data, out.len, NULL), 0);
  buf_free(&out);
  jws_key_free(k);
}

static void test_rfc7515_a3_es256(void **state)
{
  (void)state;
  char *jwk = ec_jwk("P-256", A3_X, A3_Y, A3_D);
  /* The RFC's public key, as BearSSL takes it: 04 || x || y. */
  buf_t q = BUF_INIT;
  buf_putc(&q, 4);
  b64d(&q, A3_X);
  b64d(&q, A3_Y);
  assert_int_equal(q.len, 65);
  br_ec_public_key pk = {BR_EC_secp256r1, (unsigned char *)q.data, q.len};
  br_ecdsa_vrfy vrfy = br_ecdsa_vrfy_raw_get_default();

  const char *const texts[] = {jwk, EC_SEC1, EC_PKCS8};
  for (size_t i = 0; i < 3; i++) {
    jws_key_t *k = parse_ok(texts[i]);
    assert_int_equal(jws_key_type(k), JWS_KTY_EC);
    assert_int_equal(jws_key_default_alg(k), JWS_ES256);
    buf_t h = BUF_INIT, p = BUF_INIT, out = BUF_INIT;
    b64d(&h, A3_HEADER_B64);
    b64d(&p, RFC_PAYLOAD_B64);
    assert_int_equal(jws_sign_compact(k, JWS_ES256, h.data, h.len, p.data, p.len, &out), 0);
    const char *prefix = A3_HEADER_B64 "." RFC_PAYLOAD_B64 ".";
    assert_int_equal(strncmp(buf_cstr(&out), prefix, strlen(prefix)), 0);
    /* The signature is raw R || S (64 bytes), not DER. */
    buf_t sig = BUF_INIT;
    b64d(&sig, out.data + strlen(prefix));
    assert_int_equal(sig.len, 64);
    unsigned char hash[32];
    br_sha256_context c;
    br_sha256_init(&c);
    br_sha256_update(&c, out.data, strlen(prefix) - 1);
    br_sha256_out(&c, hash);
    assert_int_equal(vrfy(br_ec_get_default(), hash, sizeof(hash), &pk, sig.data, sig.len), 1);
    /* One flipped bit and BearSSL refuses it. */
    sig.data[10] ^= 1;
    assert_int_equal(vrfy(br_ec_get_default(), hash, sizeof(hash), &pk, sig.data, sig.len), 0);
    assert_int_equal(jws_verify_compact(k, JWS_ES256, out.data, out.len, NULL), 0);

    /* The RFC's own signature verifies, with BearSSL and with jws. */
    buf_t rsig = BUF_INIT;
    b64d(&rsig, A3_SIG);
    assert_int_equal(vrfy(br_ec_get_default(), hash, sizeof(hash), &pk, rsig.data, rsig.len), 1);
    const char *rfc = A3_HEADER_B64 "." RFC_PAYLOAD_B64 "." A3_SIG;
    assert_int_equal(jws_verify_compact(k, JWS_ES256, rfc, strlen(rfc), NULL), 0);

    json_t *pub = jws_key_public_jwk(k, NULL, JWS_ES256);
    assert_string_equal(json_get_str(pub, "crv"), "P-256");
    assert_string_equal(json_get_str(pub, "x"), A3_X);
    assert_string_equal(json_get_str(pub, "y"), A3_Y);
    assert_null(json_object_get(pub, "d"));
    /* Without a configured kid, the kid is the RFC 7638 thumbprint. */
    buf_t t = BUF_INIT;
    assert_int_equal(jws_key_thumbprint(k, &t), 0);
    assert_int_equal(t.len, 43);
    assert_string_equal(json_get_str(pub, "kid"), buf_cstr(&t));
    json_decref(pub);
    buf_free(&t);
    buf_free(&rsig);
    buf_free(&sig);
    buf_free(&h);
    buf_free(&p);
    buf_free(&out);
    jws_key_free(k);
  }
  /* An "EC PARAMETERS" block before the key (openssl ecparam -genkey). */
  buf_t both = BUF_INIT;
  buf_puts(&both, EC_PARAMS);
  buf_puts(&both, EC_SEC1);
  jws_key_t *k = parse_ok(buf_cstr(&both));
  jws_key_free(k);
  buf_free(&both);
  buf_free(&q);
  free(jwk);
}

static void test_rfc7638_thumbprint(void **state)
{
  (void)state;
  const char *rfc = "{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4"
                    "cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsG"
                    "Y4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnY"
                    "b9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2N"
                    "cRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\",\"e\":\"AQAB\","
                    "\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
  json_t *o = NULL;
  assert_int_equal(json_parse(rfc, strlen(rfc), &o), 0);
  buf_t t = BUF_INIT;
  assert_int_equal(jws_jwk_thumbprint(o, &t), 0);
  assert_string_equal(buf_cstr(&t), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  /* Members outside the required set do not change it. */
  json_object_del(o, "alg");
  json_object_del(o, "kid");
  json_object_set_new(o, "use", json_string("sig"));
  buf_reset(&t);
  assert_int_equal(jws_jwk_thumbprint(o, &t), 0);
  assert_string_equal(buf_cstr(&t), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  /* A required member missing or not a string: refused, nothing appended. */
  buf_reset(&t);
  json_object_set_new(o, "e", json_integer(65537));
  assert_int_equal(jws_jwk_thumbprint(o, &t), GRANTD_EINVALID);
  json_object_del(o, "e");
  assert_int_equal(jws_jwk_thumbprint(o, &t), GRANTD_EINVALID);
  json_object_set_new(o, "kty", json_string("OKP"));
  assert_int_equal(jws_jwk_thumbprint(o, &t), GRANTD_EINVALID);
  assert_int_equal(t.len, 0);
  json_decref(o);
  buf_free(&t);
}

static void test_sign_claims(void **state)
{
  (void)state;
  char *jwk = ec_jwk("P-256", A3_X, A3_Y, A3_D);
  jws_key_t *k = parse_ok(jwk);
  json_t *claims = json_pack("{s:s, s:s, s:I}", "iss", "client-1", "aud",
                             "https://as.example/token", "exp", (json_int_t)1300819380);
  buf_t out = BUF_INIT, payload = BUF_INIT, hb = BUF_INIT;
  assert_int_equal(jws_sign_claims(k, JWS_ES256, "key-1", "JWT", claims, &out), 0);
  const char *dot = strchr(buf_cstr(&out), '.');
  assert_non_null(dot);
  assert_int_equal(b64url_decode(&hb, out.data, (size_t)(dot - out.data)), 0);
  assert_string_equal(buf_cstr(&hb), "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"key-1\"}");
  assert_int_equal(jws_verify_compact(k, JWS_ES256, out.data, out.len, &payload), 0);
  assert_string_equal(
    buf_cstr(&payload),
    "{\"iss\":\"client-1\",\"aud\":\"https://as.example/token\",\"exp\":1300819380}");
  /* Verified under another algorithm name: refused. */
  assert_int_equal(jws_verify_compact(k, JWS_RS256, out.data, out.len, NULL), GRANTD_EINVALID);
  /* Claims that are not an object: refused, out unchanged. */
  size_t len = out.len;
  json_t *arr = json_array();
  assert_int_equal(jws_sign_claims(k, JWS_ES256, NULL, NULL, arr, &out), GRANTD_EINVALID);
  assert_int_equal(out.len, len);
  json_decref(arr);
  json_decref(claims);
  buf_free(&out);
  buf_free(&payload);
  buf_free(&hb);
  jws_key_free(k);
  free(jwk);
}

static void test_verify_refuses_malformed(void **state)
{
  (void)state;
  jws_key_t *k = parse_ok(A1_KEY);
  const char *good = A1_HEADER_B64 "." RFC_PAYLOAD_B64 "." A1_SIG;
  assert_int_equal(jws_verify_compact(k, JWS_HS256, good, strlen(good), NULL), 0);
  const char *const bad[] = {
    "",
    "abc",
    A1_HEADER_B64 "." RFC_PAYLOAD_B64,
    A1_HEADER_B64 "." RFC_PAYLOAD_B64 "." A1_SIG ".x",
    A1_HEADER_B64 "." RFC_PAYLOAD_B64 ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
    A1_HEADER_B64 "." RFC_PAYLOAD_B64 ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEj",
    A1_HEADER_B64 "." RFC_PAYLOAD_B64 "x." A1_SIG,
    "eyJhbGciOiJub25lIn0." RFC_PAYLOAD_B64 ".",
    "e30." RFC_PAYLOAD_B64 "." A1_SIG,
    "!!!." RFC_PAYLOAD_B64 "." A1_SIG,
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (jws_verify_compact(k, JWS_HS256, bad[i], strlen(bad[i]), NULL) != GRANTD_EINVALID)
      fail_msg("accepted bad[%zu]", i);
  jws_key_free(k);
}

static void test_alg_rules(void **state)
{
  (void)state;
  jws_alg_t a = JWS_ALG_NONE;
  assert_int_equal(jws_alg_parse("RS256", &a), 0);
  assert_int_equal(a, JWS_RS256);
  assert_int_equal(jws_alg_parse("PS256", &a), 0);
  assert_int_equal(a, JWS_PS256);
  assert_int_equal(jws_alg_parse("none", &a), GRANTD_EINVALID);
  assert_int_equal(jws_alg_parse("rs256", &a), GRANTD_EINVALID);
  assert_int_equal(jws_alg_parse(NULL, &a), GRANTD_EINVALID);
  assert_null(jws_alg_name(JWS_ALG_NONE));

  jws_key_t *rsa = parse_ok(RSA_PKCS8);
  jws_key_t *ec = parse_ok(EC_PKCS8);
  const char *why = NULL;
  buf_t out = BUF_INIT;
  /* PS256 takes an RSA key of 2048 bits or more, like RS256. */
  assert_int_equal(jws_key_check_alg(rsa, JWS_PS256, &why), 0);
  assert_int_equal(jws_key_check_alg(ec, JWS_PS256, &why), GRANTD_EINVALID);
  assert_non_null(strstr(why, "PS256 needs an RSA key"));
  assert_int_equal(jws_sign_compact(ec, JWS_PS256, "{}", 2, "{}", 2, &out), GRANTD_EINVALID);
  assert_int_equal(out.len, 0);
  /* Wrong key type for the algorithm. */
  assert_int_equal(jws_key_check_alg(ec, JWS_RS256, &why), GRANTD_EINVALID);
  assert_non_null(strstr(why, "RSA"));
  assert_int_equal(jws_key_check_alg(rsa, JWS_ES256, &why), GRANTD_EINVALID);
  assert_int_equal(jws_key_check_alg(rsa, JWS_HS256, &why), GRANTD_EINVALID);
  assert_int_equal(jws_key_check_alg(rsa, JWS_ALG_NONE, &why), GRANTD_EINVALID);
  assert_int_equal(jws_sign_compact(ec, JWS_RS256, "{}", 2, "{}", 2, &out), GRANTD_EINVALID);
  assert_int_equal(out.len, 0);
  assert_int_equal(jws_key_check_alg(rsa, JWS_RS256, &why), 0);
  assert_int_equal(jws_key_check_alg(ec, JWS_ES256, &why), 0);
  /* HS256 wants a secret of at least 32 bytes (RFC 7518 section 3.2). */
  jws_key_t *oct = NULL;
  assert_int_equal(jws_key_from_secret("0123456789abcdef", 16, &oct, &why), 0);
  assert_int_equal(jws_key_check_alg(oct, JWS_HS256, &why), GRANTD_EINVALID);
  assert_non_null(strstr(why, "32 bytes"));
  jws_key_free(oct);
  assert_int_equal(jws_key_from_secret("", 0, &oct, &why), GRANTD_EINVALID);
  assert_null(oct);
  buf_free(&out);
  jws_key_free(rsa);
  jws_key_free(ec);
}

static void test_pem_refused(void **state)
{
  (void)state;
  parse_refused("", "empty");
  parse_refused(" \n\t", "empty");
  parse_refused("hello", "no PEM private key");
  parse_refused(RSA_PUBLIC, "not a public key");
  parse_refused(RSA_ENCRYPTED, "encrypted");
  parse_refused(EC_P384, "P-256");
  parse_refused(RSA_1024, "2048");
  parse_refused(EC_PARAMS, "no PEM private key");
  /* Truncated: no END line. */
  char cut[600];
  memcpy(cut, RSA_PKCS8, sizeof(cut) - 1);
  cut[sizeof(cut) - 1] = '\0';
  parse_refused(cut, "PEM text is malformed");
  *(strrchr(cut, '\n') + 1) = '\0';
  parse_refused(cut, "truncated");
  /* Base64 garbage inside the armour, and a body that is not a key. */
  parse_refused("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n", "PEM");
  parse_refused("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "PKCS#8");
  /* A.2's key with one character of p changed (about byte 560 of the
   * DER): p * q no longer has the key's length, or the CRT members no
   * longer sign. (BearSSL's decoder does not keep n: grantd recomputes it
   * from p and q, so n itself cannot disagree.) */
  for (size_t off = 740; off < 760; off++) {
    char bent[sizeof(RSA_PKCS1)];
    memcpy(bent, RSA_PKCS1, sizeof(bent));
    char *body = strchr(bent, '\n') + 1;
    if (body[off] == '\n')
      continue;
    body[off] = body[off] == 'A' ? 'B' : 'A';
    jws_key_t *k = NULL;
    const char *why = NULL;
    if (jws_key_parse(bent, strlen(bent), &k, &why) != GRANTD_EINVALID)
      fail_msg("bent key at %zu accepted", off);
    assert_null(k);
  }
  /* The unbent text parses: the loop above tests the bend, not the copy. */
  jws_key_free(parse_ok(RSA_PKCS1));
}

static void test_jwk_refused(void **state)
{
  (void)state;
  parse_refused("{", "not a JSON object");
  parse_refused("{}", "no kty");
  parse_refused("{\"kty\":\"OKP\",\"crv\":\"Ed25519\"}", "kty");
  parse_refused("{\"keys\":[]}", "key set");
  parse_refused("{\"kty\":\"oct\"}", "needs k");
  parse_refused("{\"kty\":\"oct\",\"k\":\"a=b\"}", "needs k");
  char *j = rsa_jwk("d", NULL, NULL);
  parse_refused(j, "private key is needed");
  free(j);
  j = rsa_jwk("qi", NULL, NULL);
  parse_refused(j, "CRT");
  free(j);
  /* n from another key (RFC 7638's): does not match the private members. */
  j = rsa_jwk(NULL, "n",
              "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
              "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5"
              "v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD0"
              "8qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU"
              "8awapJzKnqDKgw");
  parse_refused(j, "do not match");
  free(j);
  /* n shorter than p * q: the modulus length is checked before use. */
  j = rsa_jwk(NULL, "n", "AQAB");
  parse_refused(j, "2048");
  free(j);
  /* A wrong e. */
  j = rsa_jwk(NULL, "e", "Aw");
  parse_refused(j, "do not match");
  free(j);
  /* dp from another member: the CRT members do not sign. */
  j = rsa_jwk(NULL, "dp", A2_DQ);
  parse_refused(j, "inconsistent");
  free(j);
  j = rsa_jwk(NULL, "p", "!!");
  parse_refused(j, "CRT");
  free(j);

  j = ec_jwk("P-384", A3_X, A3_Y, A3_D);
  parse_refused(j, "P-256");
  free(j);
  j = ec_jwk("P-256", A3_X, A3_Y, NULL);
  parse_refused(j, "private key is needed");
  free(j);
  j = ec_jwk("P-256", A3_Y, A3_X, A3_D);
  parse_refused(j, "do not match");
  free(j);
  j = ec_jwk("P-256", A3_X, A3_Y, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  parse_refused(j, "not a valid P-256 scalar");
  free(j);
  /* d = n, the subgroup order: out of range. */
  j = ec_jwk("P-256", A3_X, A3_Y, "_____wAAAAD__________7zm-q2nF56E87nKwvxjJVE");
  parse_refused(j, "not a valid P-256 scalar");
  free(j);
  j = ec_jwk("P-256", A3_X, A3_Y, "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9A");
  parse_refused(j, "32 bytes");
  free(j);
}

static void sha256_of(const void *p, size_t n, unsigned char out[32])
{
  br_sha256_context c;
  br_sha256_init(&c);
  br_sha256_update(&c, p, n);
  br_sha256_out(&c, out);
}

static void test_ps256_wycheproof(void **state)
{
  (void)state;
  static const unsigned char e[] = {1, 0, 1};
  br_rsa_public_key pk = {(unsigned char *)WP_N, sizeof(WP_N), (unsigned char *)e, sizeof(e)};
  for (size_t i = 0; i < sizeof(WP_VECTORS) / sizeof(WP_VECTORS[0]); i++) {
    const struct wp_vector *v = &WP_VECTORS[i];
    unsigned char h[32];
    sha256_of(v->msg, v->msg_len, h);
    if (jws_pss_verify(&pk, h, v->sig, 256) != (v->valid != 0))
      fail_msg("Wycheproof tcId %d (%s): expected %s", v->tc_id, v->comment,
               v->valid ? "valid" : "invalid");
    /* A signature of another length never verifies. */
    assert_false(jws_pss_verify(&pk, h, v->sig, 255));
  }
}

/* Signs with PS256 twice, checks both verify and differ (random salt), and
 * that tampering or another algorithm fails. */
static void ps256_roundtrip(const char *pem, unsigned bits)
{
  jws_key_t *k = parse_ok(pem);
  assert_int_equal(jws_key_bits(k), bits);
  assert_int_equal(jws_key_check_alg(k, JWS_PS256, NULL), 0);
  static const char hdr[] = "{\"alg\":\"PS256\"}", pay[] = "{\"iss\":\"joe\"}";
  buf_t a = BUF_INIT, b = BUF_INIT, sig = BUF_INIT;
  assert_int_equal(jws_sign_compact(k, JWS_PS256, hdr, strlen(hdr), pay, strlen(pay), &a), 0);
  assert_int_equal(jws_sign_compact(k, JWS_PS256, hdr, strlen(hdr), pay, strlen(pay), &b), 0);
  assert_string_not_equal(a.data, b.data);
  buf_t got = BUF_INIT;
  assert_int_equal(jws_verify_compact(k, JWS_PS256, a.data, a.len, &got), 0);
  assert_int_equal(got.len, strlen(pay));
  assert_memory_equal(got.data, pay, got.len);
  assert_int_equal(jws_verify_compact(k, JWS_PS256, b.data, b.len, NULL), 0);
  /* The signature is the modulus length (a leading zero byte included). */
  const char *dot = strrchr(a.data, '.');
  b64d(&sig, dot + 1);
  assert_int_equal(sig.len, (bits + 7) / 8);
  /* Not an RS256 signature, and the header says PS256 anyway. */
  assert_int_equal(jws_verify_compact(k, JWS_RS256, a.data, a.len, NULL), GRANTD_EINVALID);
  /* One signature bit flipped, or one payload character changed. */
  unsigned char h[32];
  sha256_of(a.data, (size_t)(dot - a.data), h);
  assert_true(jws_pss_verify(&k->pub.rsa, h, (unsigned char *)sig.data, sig.len));
  sig.data[sig.len - 1] ^= 1;
  assert_false(jws_pss_verify(&k->pub.rsa, h, (unsigned char *)sig.data, sig.len));
  a.data[strlen(hdr) + 2] ^= 1;
  assert_int_equal(jws_verify_compact(k, JWS_PS256, a.data, a.len, NULL), GRANTD_EINVALID);
  buf_free(&a);
  buf_free(&b);
  buf_free(&got);
  buf_free(&sig);
  jws_key_free(k);
}

static void test_ps256_sign_verify(void **state)
{
  (void)state;
  ps256_roundtrip(RSA_PKCS8, 2048);
  ps256_roundtrip(RSA_2057, 2057);
  ps256_roundtrip(RSA_1MOD4_PKCS8, 2048);
}

/* A key BearSSL cannot recompute e of (q = 1 mod 4): e comes from the PEM
 * (PKCS#1 or PKCS#8) or the JWK, and the key signs and verifies. */
static void test_rsa_key_with_q_1_mod_4(void **state)
{
  (void)state;
  const char *const texts[] = {RSA_1MOD4_PKCS8, RSA_1MOD4_PKCS1, RSA_1MOD4_JWK};
  char *n0 = NULL;
  for (size_t i = 0; i < 3; i++) {
    jws_key_t *k = parse_ok(texts[i]);
    assert_int_equal(jws_key_bits(k), 2048);
    json_t *pub = jws_key_public_jwk(k, NULL, JWS_RS256);
    assert_string_equal(json_get_str(pub, "e"), "AQAB");
    if (n0 == NULL)
      n0 = xstrdup(json_get_str(pub, "n"));
    else
      assert_string_equal(json_get_str(pub, "n"), n0);
    buf_t out = BUF_INIT;
    assert_int_equal(jws_sign_compact(k, JWS_RS256, "{\"alg\":\"RS256\"}", 15, "{}", 2, &out), 0);
    assert_int_equal(jws_verify_compact(k, JWS_RS256, out.data, out.len, NULL), 0);
    buf_free(&out);
    json_decref(pub);
    jws_key_free(k);
  }
  free(n0);
}

/* Signatures made by Python cryptography (OpenSSL) verify here. */
static void test_ps256_independent_signer(void **state)
{
  (void)state;
  unsigned char h[32];
  sha256_of(INTEROP_MSG, strlen(INTEROP_MSG), h);
  jws_key_t *a2 = parse_ok(RSA_PKCS1), *k57 = parse_ok(RSA_2057);
  assert_true(jws_pss_verify(&a2->pub.rsa, h, CRYPTO_SIG_A2, sizeof(CRYPTO_SIG_A2)));
  assert_int_equal(sizeof(CRYPTO_SIG_2057), 258);
  assert_true(jws_pss_verify(&k57->pub.rsa, h, CRYPTO_SIG_2057, sizeof(CRYPTO_SIG_2057)));
  /* Each with the other's key, and the wrong digest: refused. */
  assert_false(jws_pss_verify(&k57->pub.rsa, h, CRYPTO_SIG_A2, sizeof(CRYPTO_SIG_A2)));
  h[0] ^= 0x80;
  assert_false(jws_pss_verify(&a2->pub.rsa, h, CRYPTO_SIG_A2, sizeof(CRYPTO_SIG_A2)));
  jws_key_free(a2);
  jws_key_free(k57);
}

/* MGF1-SHA-256 written again here, to unmask DB independently. */
static void test_mgf1(const unsigned char *seed, unsigned char *out, size_t n)
{
  for (unsigned c = 0; n; c++) {
    unsigned char in[36], t[32];
    memcpy(in, seed, 32);
    in[32] = (unsigned char)(c >> 24), in[33] = (unsigned char)(c >> 16);
    in[34] = (unsigned char)(c >> 8), in[35] = (unsigned char)c;
    sha256_of(in, sizeof(in), t);
    size_t k = n < 32 ? n : 32;
    for (size_t i = 0; i < k; i++)
      *out++ ^= t[i];
    n -= k;
  }
}

/* EMSA-PSS-ENCODE (RFC 8017 section 9.1.1) with a fixed salt: the encoded
 * message is maskedDB || H || 0xbc with the top 8 * emLen - emBits bits
 * clear, H = SHA-256(0^8 || mHash || salt), and DB = MGF1(H) xor maskedDB
 * = 0...0 || 0x01 || salt; every field tampered with is refused. */
static void test_pss_encode_structure(void **state)
{
  (void)state;
  static const unsigned bits[] = {521, 528, 1031, 2047, 2048, 2056, 4095};
  unsigned char mhash[32], salt[32];
  sha256_of("abc", 3, mhash);
  for (size_t i = 0; i < 32; i++)
    salt[i] = (unsigned char)(0xA0 + i);
  unsigned char em[JWS_SIG_MAX];
  assert_int_equal(jws_pss_encode(mhash, salt, 520, em), 0); /* emLen < hLen + sLen + 2 */
  for (size_t t = 0; t < sizeof(bits) / sizeof(bits[0]); t++) {
    unsigned eb = bits[t];
    size_t len = (eb + 7) / 8, db_len = len - 33;
    unsigned zbits = (unsigned)(8 * len - eb);
    assert_int_equal(jws_pss_encode(mhash, salt, eb, em), len);
    assert_int_equal(em[len - 1], 0xBC);
    assert_int_equal(em[0] & (0xFF00u >> zbits) & 0xFF, 0);
    assert_true(jws_pss_check(mhash, em, len, eb));
    /* H over M'. */
    unsigned char mp[72], h[32];
    memset(mp, 0, 8);
    memcpy(mp + 8, mhash, 32);
    memcpy(mp + 40, salt, 32);
    sha256_of(mp, sizeof(mp), h);
    assert_memory_equal(em + db_len, h, 32);
    /* DB. */
    unsigned char db[JWS_SIG_MAX];
    memcpy(db, em, db_len);
    test_mgf1(h, db, db_len);
    db[0] &= (unsigned char)(0xFFu >> zbits);
    for (size_t j = 0; j < db_len - 33; j++)
      assert_int_equal(db[j], 0);
    assert_int_equal(db[db_len - 33], 0x01);
    assert_memory_equal(db + db_len - 32, salt, 32);
    /* Tampering: each region, the trailer, a set top bit, another digest,
     * another emBits. */
    const size_t at[] = {0, db_len - 33, db_len - 1, db_len, len - 2, len - 1};
    for (size_t j = 0; j < sizeof(at) / sizeof(at[0]); j++) {
      em[at[j]] ^= 0x01;
      assert_false(jws_pss_check(mhash, em, len, eb));
      em[at[j]] ^= 0x01;
    }
    if (zbits) {
      em[0] ^= 0x80;
      assert_false(jws_pss_check(mhash, em, len, eb));
      em[0] ^= 0x80;
    }
    mhash[5] ^= 1;
    assert_false(jws_pss_check(mhash, em, len, eb));
    mhash[5] ^= 1;
    assert_false(jws_pss_check(mhash, em, len - 1, eb));
    assert_true(jws_pss_check(mhash, em, len, eb));
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rfc7515_a1_hs256),
    cmocka_unit_test(test_rfc7515_a2_rs256_jwk_and_pem),
    cmocka_unit_test(test_rfc7515_a3_es256),
    cmocka_unit_test(test_rfc7638_thumbprint),
    cmocka_unit_test(test_sign_claims),
    cmocka_unit_test(test_verify_refuses_malformed),
    cmocka_unit_test(test_alg_rules),
    cmocka_unit_test(test_pem_refused),
    cmocka_unit_test(test_jwk_refused),
    cmocka_unit_test(test_ps256_wycheproof),
    cmocka_unit_test(test_ps256_sign_verify),
    cmocka_unit_test(test_ps256_independent_signer),
    cmocka_unit_test(test_pss_encode_structure),
    cmocka_unit_test(test_rsa_key_with_q_1_mod_4),
    cmocka_unit_test(test_rsa_openssl_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
