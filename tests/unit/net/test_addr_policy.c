/*
 * Unit tests for the address classifier and the endpoint policy
 * (src/net/addr_policy.c): every range with its first and last address and
 * the neighbours just outside, the IPv6 forms embedding an IPv4 address,
 * the CIDR list parser (good and bad input), policy decisions and the URL
 * literal check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "net/addr_policy.h"

static void to_sa(const char *ip, struct sockaddr_storage *ss)
{
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    return;
  }
  assert_int_equal(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
  a6->sin6_family = AF_INET6;
}

static addr_class_t cls_of(const char *ip)
{
  struct sockaddr_storage ss;
  to_sa(ip, &ss);
  return addr_classify((const struct sockaddr *)&ss);
}

typedef struct {
  const char *ip;
  addr_class_t cls;
} case_t;

static void check_cases(const case_t *c, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    addr_class_t got = cls_of(c[i].ip);
    if (got != c[i].cls)
      fail_msg("%s: expected %s, got %s", c[i].ip, addr_class_name(c[i].cls), addr_class_name(got));
  }
}

static void test_classify_v4(void **state)
{
  (void)state;
  static const case_t cases[] = {
    {"0.0.0.0", ADDR_UNSPECIFIED},
    {"0.255.255.255", ADDR_UNSPECIFIED},
    {"1.0.0.0", ADDR_PUBLIC},
    {"9.255.255.255", ADDR_PUBLIC},
    {"10.0.0.0", ADDR_PRIVATE},
    {"10.255.255.255", ADDR_PRIVATE},
    {"11.0.0.0", ADDR_PUBLIC},
    {"100.63.255.255", ADDR_PUBLIC},
    {"100.64.0.0", ADDR_SHARED},
    {"100.127.255.255", ADDR_SHARED},
    {"100.128.0.0", ADDR_PUBLIC},
    {"126.255.255.255", ADDR_PUBLIC},
    {"127.0.0.0", ADDR_LOOPBACK},
    {"127.0.0.1", ADDR_LOOPBACK},
    {"127.255.255.255", ADDR_LOOPBACK},
    {"128.0.0.0", ADDR_PUBLIC},
    {"169.253.255.255", ADDR_PUBLIC},
    {"169.254.0.0", ADDR_LINK_LOCAL},
    {"169.254.169.254", ADDR_LINK_LOCAL},
    {"169.254.255.255", ADDR_LINK_LOCAL},
    {"169.255.0.0", ADDR_PUBLIC},
    {"172.15.255.255", ADDR_PUBLIC},
    {"172.16.0.0", ADDR_PRIVATE},
    {"172.31.255.255", ADDR_PRIVATE},
    {"172.32.0.0", ADDR_PUBLIC},
    {"192.0.0.0", ADDR_RESERVED},
    {"192.0.0.255", ADDR_RESERVED},
    {"192.0.1.0", ADDR_PUBLIC},
    {"192.0.2.0", ADDR_RESERVED},
    {"192.0.2.255", ADDR_RESERVED},
    {"192.0.3.0", ADDR_PUBLIC},
    {"192.167.255.255", ADDR_PUBLIC},
    {"192.168.0.0", ADDR_PRIVATE},
    {"192.168.255.255", ADDR_PRIVATE},
    {"192.169.0.0", ADDR_PUBLIC},
    {"198.17.255.255", ADDR_PUBLIC},
    {"198.18.0.0", ADDR_RESERVED},
    {"198.19.255.255", ADDR_RESERVED},
    {"198.20.0.0", ADDR_PUBLIC},
    {"198.51.100.7", ADDR_RESERVED},
    {"203.0.113.9", ADDR_RESERVED},
    {"203.0.114.0", ADDR_PUBLIC},
    {"223.255.255.255", ADDR_PUBLIC},
    {"224.0.0.0", ADDR_MULTICAST},
    {"239.255.255.255", ADDR_MULTICAST},
    {"240.0.0.0", ADDR_RESERVED},
    {"255.255.255.254", ADDR_RESERVED},
    {"255.255.255.255", ADDR_BROADCAST},
    {"8.8.8.8", ADDR_PUBLIC},
    {"93.184.216.34", ADDR_PUBLIC},
  };
  check_cases(cases, ARRAY_SIZE(cases));
}

static void test_classify_v6(void **state)
{
  (void)state;
  static const case_t cases[] = {
    {"::", ADDR_UNSPECIFIED},
    {"::1", ADDR_LOOPBACK},
    {"::2", ADDR_UNSPECIFIED}, /* IPv4-compatible 0.0.0.2 */
    {"2606:4700::1111", ADDR_PUBLIC},
    {"2001:4860:4860::8888", ADDR_PUBLIC},
    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ADDR_PUBLIC},
    {"fc00::", ADDR_UNIQUE_LOCAL},
    {"fd12:3456::1", ADDR_UNIQUE_LOCAL},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ADDR_UNIQUE_LOCAL},
    {"fe00::", ADDR_PUBLIC},
    {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ADDR_PUBLIC},
    {"fe80::", ADDR_LINK_LOCAL},
    {"fe80::1", ADDR_LINK_LOCAL},
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ADDR_LINK_LOCAL},
    {"fec0::1", ADDR_PRIVATE},
    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ADDR_PRIVATE},
    {"ff00::", ADDR_MULTICAST},
    {"ff02::1", ADDR_MULTICAST},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ADDR_MULTICAST},
    {"100::1", ADDR_RESERVED},
    {"100:0:0:1::", ADDR_PUBLIC},
    {"2001:db8::1", ADDR_RESERVED},
    {"2001:db9::1", ADDR_PUBLIC},
    {"2001::1", ADDR_RESERVED}, /* Teredo */
    {"2001:1::1", ADDR_PUBLIC},
    {"3fff::1", ADDR_RESERVED},
    {"3fff:fff::1", ADDR_RESERVED},
    {"3fff:1000::1", ADDR_PUBLIC},
    /* The local-use NAT64 prefix is operator-defined. */
    {"64:ff9b:1::a00:1", ADDR_PRIVATE},
  };
  check_cases(cases, ARRAY_SIZE(cases));
}

/* Every IPv6 form carrying an IPv4 address takes that address's class. */
static void test_classify_embedded_v4(void **state)
{
  (void)state;
  static const case_t cases[] = {
    /* IPv4-mapped */
    {"::ffff:127.0.0.1", ADDR_LOOPBACK},
    {"::ffff:7f00:1", ADDR_LOOPBACK},
    {"::ffff:10.1.2.3", ADDR_PRIVATE},
    {"::ffff:169.254.169.254", ADDR_LINK_LOCAL},
    {"::ffff:100.64.0.1", ADDR_SHARED},
    {"::ffff:0.0.0.0", ADDR_UNSPECIFIED},
    {"::ffff:224.0.0.1", ADDR_MULTICAST},
    {"::ffff:255.255.255.255", ADDR_BROADCAST},
    {"::ffff:8.8.8.8", ADDR_PUBLIC},
    /* IPv4-translated (SIIT) */
    {"::ffff:0:127.0.0.1", ADDR_LOOPBACK},
    {"::ffff:0:8.8.8.8", ADDR_PUBLIC},
    /* IPv4-compatible (deprecated) */
    {"::127.0.0.1", ADDR_LOOPBACK},
    {"::192.168.1.1", ADDR_PRIVATE},
    {"::8.8.8.8", ADDR_PUBLIC},
    /* NAT64 well-known prefix */
    {"64:ff9b::169.254.169.254", ADDR_LINK_LOCAL},
    {"64:ff9b::a9fe:a9fe", ADDR_LINK_LOCAL},
    {"64:ff9b::7f00:1", ADDR_LOOPBACK},
    {"64:ff9b::10.0.0.1", ADDR_PRIVATE},
    {"64:ff9b::8.8.8.8", ADDR_PUBLIC},
    /* 6to4 */
    {"2002:7f00:1::1", ADDR_LOOPBACK},
    {"2002:a9fe:a9fe::", ADDR_LINK_LOCAL},
    {"2002:c0a8:101::1", ADDR_PRIVATE},
    {"2002:808:808::1", ADDR_PUBLIC},
  };
  check_cases(cases, ARRAY_SIZE(cases));
  assert_int_equal(addr_classify_v4((const uint8_t[]){169, 254, 169, 254}), ADDR_LINK_LOCAL);
}

static int check(const addr_policy_t *p, const char *ip)
{
  struct sockaddr_storage ss;
  to_sa(ip, &ss);
  return addr_policy_check(p, (const struct sockaddr *)&ss, NULL);
}

static void test_policy_default(void **state)
{
  (void)state;
  addr_policy_t *p = addr_policy_new();
  const addr_policy_t *pols[] = {p, NULL}; /* NULL = the same default */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(check(pols[i], "8.8.8.8"), 0);
    assert_int_equal(check(pols[i], "2606:4700::1111"), 0);
    assert_int_equal(check(pols[i], "::ffff:8.8.8.8"), 0);
    static const char *const refused[] = {
      "127.0.0.1",
      "10.0.3.7",
      "172.16.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "255.255.255.255",
      "240.0.0.1",
      "::1",
      "::",
      "fc00::1",
      "fd00::1",
      "fe80::1",
      "ff02::1",
      "::ffff:127.0.0.1",
      "::ffff:169.254.169.254",
      "::127.0.0.1",
      "64:ff9b::a9fe:a9fe",
      "2002:7f00:1::1",
    };
    for (size_t j = 0; j < ARRAY_SIZE(refused); j++)
      if (check(pols[i], refused[j]) != GRANTD_EENDPOINT_FORBIDDEN)
        fail_msg("%s was allowed by the default policy", refused[j]);
  }
  assert_false(addr_policy_relaxed(p));
  assert_false(addr_policy_relaxed(NULL));
  addr_class_t c;
  struct sockaddr_storage ss;
  to_sa("169.254.169.254", &ss);
  assert_int_equal(addr_policy_check(p, (const struct sockaddr *)&ss, &c),
                   GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(c, ADDR_LINK_LOCAL);
  assert_string_equal(addr_class_name(c), "link_local");
  addr_policy_free(p);
  addr_policy_free(NULL);
}

static void test_policy_cidrs(void **state)
{
  (void)state;
  char err[256];
  addr_policy_t *p = addr_policy_new();
  assert_int_equal(
    addr_policy_add_cidrs(p, "10.0.3.0/24, fd00:1::/32,192.168.7.9,::1/128", err, sizeof err), 0);
  assert_int_equal(addr_policy_ncidrs(p), 4);
  assert_true(addr_policy_relaxed(p));
  /* Boundaries of 10.0.3.0/24. */
  assert_int_equal(check(p, "10.0.3.0"), 0);
  assert_int_equal(check(p, "10.0.3.255"), 0);
  assert_int_equal(check(p, "10.0.2.255"), GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(check(p, "10.0.4.0"), GRANTD_EENDPOINT_FORBIDDEN);
  /* A host entry is /32. */
  assert_int_equal(check(p, "192.168.7.9"), 0);
  assert_int_equal(check(p, "192.168.7.8"), GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(check(p, "192.168.7.10"), GRANTD_EENDPOINT_FORBIDDEN);
  /* IPv6 networks. */
  assert_int_equal(check(p, "fd00:1::"), 0);
  assert_int_equal(check(p, "fd00:1:ffff:ffff:ffff:ffff:ffff:ffff"), 0);
  assert_int_equal(check(p, "fd00:2::"), GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(check(p, "fd00:0:ffff:ffff:ffff:ffff:ffff:ffff"), GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(check(p, "::1"), 0);
  assert_int_equal(check(p, "127.0.0.1"), GRANTD_EENDPOINT_FORBIDDEN);
  /* An IPv4-mapped address matches the IPv4 network; the NAT64 form is a
   * different (IPv6) destination and does not. */
  assert_int_equal(check(p, "::ffff:10.0.3.7"), 0);
  assert_int_equal(check(p, "64:ff9b::10.0.3.7"), GRANTD_EENDPOINT_FORBIDDEN);
  /* Public addresses stay allowed; never-dialled classes stay refused even
   * inside an allowed network. */
  assert_int_equal(check(p, "8.8.8.8"), 0);
  assert_int_equal(addr_policy_add_cidrs(p, "0.0.0.0/0,::/0", err, sizeof err), 0);
  assert_int_equal(check(p, "172.16.0.1"), 0);
  assert_int_equal(check(p, "fe80::1"), 0);
  assert_int_equal(check(p, "0.0.0.0"), GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(check(p, "224.0.0.1"), GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(check(p, "255.255.255.255"), GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(check(p, "::"), GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(check(p, "ff02::1"), GRANTD_EENDPOINT_FORBIDDEN);
  addr_policy_free(p);

  /* A mapped network is stored as the IPv4 network it maps. */
  p = addr_policy_new();
  assert_int_equal(addr_policy_add_cidrs(p, "::ffff:10.0.0.0/104", err, sizeof err), 0);
  assert_int_equal(check(p, "10.200.0.1"), 0);
  assert_int_equal(check(p, "11.0.0.1"), 0); /* public anyway */
  assert_int_equal(check(p, "192.168.0.1"), GRANTD_EENDPOINT_FORBIDDEN);
  addr_policy_free(p);

  /* Prefix boundaries: /0 and the full length. */
  p = addr_policy_new();
  assert_int_equal(addr_policy_add_cidrs(p, "127.0.0.1/32,fe80::/10", err, sizeof err), 0);
  assert_int_equal(check(p, "127.0.0.1"), 0);
  assert_int_equal(check(p, "127.0.0.2"), GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(check(p, "febf::1"), 0);
  addr_policy_free(p);
}

static void test_policy_allow_private(void **state)
{
  (void)state;
  addr_policy_t *p = addr_policy_new();
  addr_policy_allow_private(p, 1);
  assert_true(addr_policy_relaxed(p));
  static const char *const ok[] = {"127.0.0.1", "10.0.0.1", "169.254.169.254", "100.64.0.1", "::1",
                                   "fd00::1",   "fe80::1",  "192.0.2.1",       "8.8.8.8"};
  for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
    if (check(p, ok[i]) != 0)
      fail_msg("%s refused with allow_private", ok[i]);
  assert_int_equal(check(p, "0.0.0.0"), GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(check(p, "239.1.1.1"), GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(check(p, "::"), GRANTD_EENDPOINT_FORBIDDEN);
  addr_policy_allow_private(p, 0);
  assert_int_equal(check(p, "127.0.0.1"), GRANTD_EENDPOINT_FORBIDDEN);
  addr_policy_free(p);
}

static void test_cidr_parser_errors(void **state)
{
  (void)state;
  static const struct {
    const char *in;
    const char *needle; /* in the message */
  } bad[] = {
    {"", "empty item"},
    {"10.0.0.0/8,", "empty item"},
    {",10.0.0.0/8", "empty item"},
    {"10.0.0.0/8,,::1", "empty item"},
    {"10.0.0.0/33", "prefix length must be a number 0-32"},
    {"::/129", "prefix length must be a number 0-128"},
    {"10.0.0.0/", "prefix length"},
    {"10.0.0.0/-1", "prefix length"},
    {"10.0.0.0/+8", "prefix length"},
    {"10.0.0.0/08", "prefix length"},
    {"10.0.0.0/8x", "prefix length"},
    {"10.0.0.0/1000", "prefix length"},
    {"10.0.3.7/24", "host bits set"},
    {"fd00::1/8", "host bits set"},
    {"10.0.0", "not an IPv4 or IPv6 address"},
    {"127.1", "not an IPv4 or IPv6 address"},
    {"localhost", "not an IPv4 or IPv6 address"},
    {"10.0.0.256/32", "not an IPv4 or IPv6 address"},
    {"fe80::1%eth0", "not an IPv4 or IPv6 address"},
    {"10.0.0.0/8/8", "prefix length"},
    {"1.2.3.4.5", "not an IPv4 or IPv6 address"},
    {"0123456789012345678901234567890123456789012345678901234567890123456789", "too long"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    char err[256] = "";
    addr_policy_t *p = addr_policy_new();
    assert_int_equal(addr_policy_add_cidrs(p, "192.168.0.0/16", err, sizeof err), 0);
    if (addr_policy_add_cidrs(p, bad[i].in, err, sizeof err) != GRANTD_EINVALID)
      fail_msg("'%s' was accepted", bad[i].in);
    if (strstr(err, bad[i].needle) == NULL || strchr(err, '\n') != NULL)
      fail_msg("'%s': message '%s' lacks '%s'", bad[i].in, err, bad[i].needle);
    /* A failed list changes nothing. */
    assert_int_equal(addr_policy_ncidrs(p), 1);
    addr_policy_free(p);
  }
  char err[64];
  addr_policy_t *p = addr_policy_new();
  assert_int_equal(addr_policy_add_cidrs(p, NULL, err, sizeof err), GRANTD_EINVALID);
  /* A message longer than the buffer is cut, still one line. */
  assert_int_equal(
    addr_policy_add_cidrs(p, "10.0.0.0/8,nonsense-and-more-nonsense", err, sizeof err),
    GRANTD_EINVALID);
  assert_true(strlen(err) < sizeof err);
  assert_int_equal(addr_policy_add_cidrs(p, " 10.0.0.0/8 ,\t::1 ", err, sizeof err), 0);
  assert_int_equal(addr_policy_ncidrs(p), 2);
  addr_policy_free(p);
}

static void test_check_url(void **state)
{
  (void)state;
  char why[200];
  addr_policy_t *p = addr_policy_new();
  static const char *const refused[] = {
    "https://127.0.0.1/token",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]:8443/",
    "https://[fe80::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://10.0.3.7:8443/token",
    /* Numeric shorthands getaddrinfo() would accept. */
    "https://127.1/",
    "https://0x7f000001/",
    "https://2130706433/",
    "https://017700000001/",
    "https://0177.0.0.1/",
    "https://0/",
  };
  for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
    why[0] = '\0';
    if (addr_policy_check_url(p, refused[i], why, sizeof why) != GRANTD_EENDPOINT_FORBIDDEN)
      fail_msg("%s was not refused", refused[i]);
    assert_true(why[0] != '\0');
  }
  assert_int_equal(addr_policy_check_url(p, "https://169.254.169.254/", why, sizeof why),
                   GRANTD_EENDPOINT_FORBIDDEN);
  assert_string_equal(why, "169.254.169.254 is a link_local address");
  assert_int_equal(addr_policy_check_url(p, "https://2130706433/", why, sizeof why),
                   GRANTD_EENDPOINT_FORBIDDEN);
  assert_string_equal(why, "2130706433 = 127.0.0.1 is a loopback address");
  /* Names are for the dial-time check; public literals pass. */
  assert_int_equal(addr_policy_check_url(p, "https://localhost/", why, sizeof why), 0);
  assert_int_equal(addr_policy_check_url(p, "https://idp.example.com/t", why, sizeof why), 0);
  assert_int_equal(addr_policy_check_url(p, "https://8.8.8.8/", why, sizeof why), 0);
  assert_int_equal(addr_policy_check_url(p, "https://[2606:4700::1111]/", NULL, 0), 0);
  assert_int_equal(addr_policy_check_url(p, "not a url", why, sizeof why), GRANTD_EBAD_URL);
  /* Allowed by the operator. */
  char err[128];
  assert_int_equal(addr_policy_add_cidrs(p, "10.0.3.0/24", err, sizeof err), 0);
  assert_int_equal(addr_policy_check_url(p, "https://10.0.3.7:8443/token", why, sizeof why), 0);
  assert_int_equal(addr_policy_check_url(p, "https://10.0.4.7/", NULL, 0),
                   GRANTD_EENDPOINT_FORBIDDEN);
  addr_policy_free(p);
}

static void test_format(void **state)
{
  (void)state;
  struct sockaddr_storage ss;
  char out[64];
  to_sa("fe80::1", &ss);
  addr_format((const struct sockaddr *)&ss, out, sizeof out);
  assert_string_equal(out, "fe80::1");
  to_sa("10.1.2.3", &ss);
  addr_format((const struct sockaddr *)&ss, out, sizeof out);
  assert_string_equal(out, "10.1.2.3");
  ss.ss_family = AF_UNIX;
  addr_format((const struct sockaddr *)&ss, out, sizeof out);
  assert_string_equal(out, "?");
  assert_int_equal(addr_classify((const struct sockaddr *)&ss), ADDR_RESERVED);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_classify_v4),
    cmocka_unit_test(test_classify_v6),
    cmocka_unit_test(test_classify_embedded_v4),
    cmocka_unit_test(test_policy_default),
    cmocka_unit_test(test_policy_cidrs),
    cmocka_unit_test(test_policy_allow_private),
    cmocka_unit_test(test_cidr_parser_errors),
    cmocka_unit_test(test_check_url),
    cmocka_unit_test(test_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
