/*
 * test_whsig.c - Standard Webhooks signatures: the specification's
 * published test vector (secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,
 * id msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330, body
 * {"test": 2432232314}), secret parsing limits, generated secrets.
 */
#include "support.h"

#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "base/whsig.h"

static void test_vector(void **state)
{
  (void)state;
  uint8_t key[WHSIG_KEY_MAX];
  size_t kl = 0;
  assert_int_equal(whsig_secret_parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, &kl), 0);
  assert_int_equal(kl, 24);
  const char *body = "{\"test\": 2432232314}";
  buf_t out = {0};
  whsig_sign(key, kl, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body), &out);
  assert_string_equal(buf_cstr(&out), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  /* Any change to id, timestamp or body changes the signature. */
  buf_reset(&out);
  whsig_sign(key, kl, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, strlen(body), &out);
  assert_string_not_equal(buf_cstr(&out), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  buf_free(&out);
}

static void test_secret_parse(void **state)
{
  (void)state;
  uint8_t key[WHSIG_KEY_MAX];
  size_t kl;
  /* No prefix, bad base64, too short (16 bytes), too long (65 bytes). */
  assert_int_equal(whsig_secret_parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, &kl),
                   GRANTD_EINVALID);
  assert_int_equal(whsig_secret_parse("whsec_!!!!", key, &kl), GRANTD_EINVALID);
  assert_int_equal(whsig_secret_parse("whsec_AAAAAAAAAAAAAAAAAAAAAA==", key, &kl), GRANTD_EINVALID);
  char big[6 + 88 + 1]; /* 88 base64 digits = 66 bytes */
  memcpy(big, "whsec_", 6);
  memset(big + 6, 'A', 88);
  big[6 + 88] = '\0';
  assert_int_equal(whsig_secret_parse(big, key, &kl), GRANTD_EINVALID);
  assert_int_equal(whsig_secret_parse(NULL, key, &kl), GRANTD_EINVALID);
}

static void test_secret_new(void **state)
{
  (void)state;
  char a[WHSIG_SECRET_MAX], b[WHSIG_SECRET_MAX];
  whsig_secret_new(a);
  whsig_secret_new(b);
  assert_int_equal(strncmp(a, "whsec_", 6), 0);
  assert_string_not_equal(a, b);
  uint8_t key[WHSIG_KEY_MAX];
  size_t kl;
  assert_int_equal(whsig_secret_parse(a, key, &kl), 0);
  assert_int_equal(kl, WHSIG_KEY_NEW);
  mem_wipe(a, sizeof a);
  mem_wipe(b, sizeof b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_vector),
    cmocka_unit_test(test_secret_parse),
    cmocka_unit_test(test_secret_new),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
