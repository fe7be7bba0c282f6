/*
 * addr_policy.c - address classes and the dial policy (see addr_policy.h).
 *
 * Classification is a short table of prefixes per family, checked in
 * order (the first match wins, so the narrower special cases come before
 * the ranges that contain them). Every address is reduced to 16 bytes:
 * IPv4 as the IPv4-mapped IPv6 address, so one prefix matcher serves both
 * families and allowed CIDRs. grantd talks to tens of endpoints, so the
 * allowed CIDRs are a plain array scanned linearly.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "base/url.h"
#include "net/addr_policy.h"

/* A network: 16 address bytes (IPv4 as ::ffff:a.b.c.d) and a prefix
 * length over those 128 bits. */
typedef struct {
  uint8_t a[16];
  unsigned bits;
} net_t;

struct addr_policy_s {
  int allow_private;
  net_t *nets;
  size_t nnets;
};

static const uint8_t MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* clang-format off */
const char *addr_class_name(addr_class_t c)
{
  switch (c) {
  case ADDR_PUBLIC: return "public";
  case ADDR_LOOPBACK: return "loopback";
  case ADDR_PRIVATE: return "private";
  case ADDR_LINK_LOCAL: return "link_local";
  case ADDR_SHARED: return "shared";
  case ADDR_UNIQUE_LOCAL: return "unique_local";
  case ADDR_RESERVED: return "reserved";
  case ADDR_MULTICAST: return "multicast";
  case ADDR_BROADCAST: return "broadcast";
  case ADDR_UNSPECIFIED: return "unspecified";
  }
  return "unknown";
}
/* clang-format on */

/* 1 when the first `bits` bits of a and b agree. */
static int prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
  unsigned full = bits / 8, rest = bits % 8;
  if (memcmp(a, b, full) != 0)
    return 0;
  if (rest == 0)
    return 1;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

typedef struct {
  uint8_t a[16];
  unsigned bits;
  addr_class_t cls;
} range_t;

typedef struct {
  uint8_t a[4];
  unsigned bits;
  addr_class_t cls;
} range4_t;

/* clang-format off */
static const range4_t ranges4[] = {
  {{255, 255, 255, 255}, 32, ADDR_BROADCAST},
  {{0, 0, 0, 0}, 8, ADDR_UNSPECIFIED},
  {{127, 0, 0, 0}, 8, ADDR_LOOPBACK},
  {{10, 0, 0, 0}, 8, ADDR_PRIVATE},
  {{172, 16, 0, 0}, 12, ADDR_PRIVATE},
  {{192, 168, 0, 0}, 16, ADDR_PRIVATE},
  {{169, 254, 0, 0}, 16, ADDR_LINK_LOCAL},
  {{100, 64, 0, 0}, 10, ADDR_SHARED},
  {{224, 0, 0, 0}, 4, ADDR_MULTICAST},
  {{192, 0, 0, 0}, 24, ADDR_RESERVED},
  {{192, 0, 2, 0}, 24, ADDR_RESERVED},
  {{198, 18, 0, 0}, 15, ADDR_RESERVED},
  {{198, 51, 100, 0}, 24, ADDR_RESERVED},
  {{203, 0, 113, 0}, 24, ADDR_RESERVED},
  {{240, 0, 0, 0}, 4, ADDR_RESERVED},
};
/* clang-format on */

addr_class_t addr_classify_v4(const uint8_t a[4])
{
  for (size_t i = 0; i < ARRAY_SIZE(ranges4); i++)
    if (prefix_eq(a, ranges4[i].a, ranges4[i].bits))
      return ranges4[i].cls;
  return ADDR_PUBLIC;
}

/* IPv6 prefixes that are classes of their own. The forms embedding an
 * IPv4 address are handled before this table. */
/* clang-format off */
static const range_t ranges6[] = {
  {{0}, 128, ADDR_UNSPECIFIED},
  {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, ADDR_LOOPBACK},
  {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, ADDR_PRIVATE},  /* 64:ff9b:1::/48 */
  {{0xfe, 0xc0}, 10, ADDR_PRIVATE},                          /* site-local */
  {{0xfe, 0x80}, 10, ADDR_LINK_LOCAL},
  {{0xfc, 0x00}, 7, ADDR_UNIQUE_LOCAL},
  {{0xff, 0x00}, 8, ADDR_MULTICAST},
  {{0x01, 0x00}, 64, ADDR_RESERVED},                         /* 100::/64 discard */
  {{0x20, 0x01, 0x0d, 0xb8}, 32, ADDR_RESERVED},             /* documentation */
  {{0x20, 0x01, 0x00, 0x00}, 32, ADDR_RESERVED},             /* Teredo */
  {{0x3f, 0xff, 0x00, 0x00}, 20, ADDR_RESERVED},             /* documentation */
};
/* clang-format on */

addr_class_t addr_classify_v6(const uint8_t a[16])
{
  static const uint8_t translated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
  static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
  static const uint8_t zero[12] = {0};
  static const uint8_t six_to_four[2] = {0x20, 0x02};
  if (memcmp(a, MAPPED, 12) == 0 || memcmp(a, translated, 12) == 0 || memcmp(a, nat64, 12) == 0)
    return addr_classify_v4(a + 12);
  if (memcmp(a, zero, 12) == 0) {
    /* :: and ::1 are themselves; the rest of ::/96 is IPv4-compatible. */
    if (memcmp(a + 12, zero, 3) == 0 && a[15] <= 1)
      return a[15] == 0 ? ADDR_UNSPECIFIED : ADDR_LOOPBACK;
    return addr_classify_v4(a + 12);
  }
  if (memcmp(a, six_to_four, 2) == 0)
    return addr_classify_v4(a + 2);
  for (size_t i = 0; i < ARRAY_SIZE(ranges6); i++)
    if (prefix_eq(a, ranges6[i].a, ranges6[i].bits))
      return ranges6[i].cls;
  return ADDR_PUBLIC;
}

/* The 16-byte form of a socket address (IPv4 as IPv4-mapped); 0 or -1. */
static int to16(const struct sockaddr *sa, uint8_t out[16])
{
  if (sa->sa_family == AF_INET) {
    memcpy(out, MAPPED, 12);
    memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    return 0;
  }
  return -1;
}

addr_class_t addr_classify(const struct sockaddr *sa)
{
  uint8_t a[16];
  if (to16(sa, a) != 0)
    return ADDR_RESERVED;
  if (sa->sa_family == AF_INET)
    return addr_classify_v4(a + 12);
  return addr_classify_v6(a);
}

static int never_dialled(addr_class_t c)
{
  return c == ADDR_UNSPECIFIED || c == ADDR_MULTICAST || c == ADDR_BROADCAST;
}

addr_policy_t *addr_policy_new(void)
{
  return xcalloc(1, sizeof(addr_policy_t));
}

void addr_policy_free(addr_policy_t *p)
{
  if (p == NULL)
    return;
  free(p->nets);
  free(p);
}

void addr_policy_allow_private(addr_policy_t *p, int on)
{
  p->allow_private = on != 0;
}

size_t addr_policy_ncidrs(const addr_policy_t *p)
{
  return p->nnets;
}

int addr_policy_relaxed(const addr_policy_t *p)
{
  return p != NULL && (p->allow_private || p->nnets > 0);
}

/* Parses one CIDR item s[0..n) into *out. @return 0, or -1 with err. */
static int parse_net(const char *s, size_t n, net_t *out, char *err, size_t errlen)
{
  char buf[64];
  if (n == 0) {
    snprintf(err, errlen, "empty item");
    return -1;
  }
  if (n >= sizeof buf) {
    snprintf(err, errlen, "'%.*s...' is too long for an address/prefix", 20, s);
    return -1;
  }
  memcpy(buf, s, n);
  buf[n] = '\0';
  char *slash = strchr(buf, '/');
  if (slash != NULL)
    *slash = '\0';
  memset(out, 0, sizeof *out);
  unsigned max;
  unsigned base = 0;
  if (inet_pton(AF_INET, buf, out->a + 12) == 1) {
    memcpy(out->a, MAPPED, 12);
    max = 32;
    base = 96;
  } else if (inet_pton(AF_INET6, buf, out->a) == 1) {
    max = 128;
  } else {
    snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address", buf);
    return -1;
  }
  unsigned len = max;
  if (slash != NULL) {
    const char *d = slash + 1;
    size_t dl = strlen(d);
    if (dl == 0 || dl > 3 || strspn(d, "0123456789") != dl || (dl > 1 && d[0] == '0')) {
      snprintf(err, errlen, "'%.*s': the prefix length must be a number 0-%u", (int)n, s, max);
      return -1;
    }
    len = (unsigned)atoi(d);
    if (len > max) {
      snprintf(err, errlen, "'%.*s': the prefix length must be a number 0-%u", (int)n, s, max);
      return -1;
    }
  }
  out->bits = base + len;
  /* No host bits below the prefix: 10.0.3.7/24 is most likely a typo. */
  for (unsigned b = out->bits; b < 128; b++) {
    if (out->a[b / 8] & (0x80 >> (b % 8))) {
      snprintf(err, errlen, "'%.*s' has host bits set below the /%u prefix", (int)n, s, len);
      return -1;
    }
  }
  return 0;
}

int addr_policy_add_cidrs(addr_policy_t *p, const char *list, char *err, size_t errlen)
{
  char why[160];
  if (list == NULL) {
    snprintf(err, errlen, "no CIDR list given");
    return GRANTD_EINVALID;
  }
  size_t cap = 1;
  for (const char *c = list; *c; c++)
    cap += *c == ',';
  net_t *tmp = xcalloc(cap, sizeof *tmp);
  size_t n = 0;
  const char *s = list;
  for (;;) {
    const char *end = strchr(s, ',');
    if (end == NULL)
      end = s + strlen(s);
    const char *a = s, *b = end;
    while (a < b && (*a == ' ' || *a == '\t'))
      a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
      b--;
    if (parse_net(a, (size_t)(b - a), &tmp[n], why, sizeof why) != 0) {
      snprintf(err, errlen, "invalid CIDR list '%s': %s (expected ADDRESS[/PREFIX],...)", list,
               why);
      free(tmp);
      return GRANTD_EINVALID;
    }
    n++;
    if (*end == '\0')
      break;
    s = end + 1;
  }
  p->nets = xrealloc(p->nets, (p->nnets + n) * sizeof *p->nets);
  memcpy(p->nets + p->nnets, tmp, n * sizeof *tmp);
  p->nnets += n;
  free(tmp);
  return 0;
}

int addr_policy_check(const addr_policy_t *p, const struct sockaddr *sa, addr_class_t *cls)
{
  addr_class_t c = addr_classify(sa);
  if (cls != NULL)
    *cls = c;
  if (never_dialled(c))
    return GRANTD_EENDPOINT_FORBIDDEN;
  if (c == ADDR_PUBLIC)
    return 0;
  if (p == NULL)
    return GRANTD_EENDPOINT_FORBIDDEN;
  if (p->allow_private)
    return 0;
  uint8_t a[16];
  if (to16(sa, a) != 0)
    return GRANTD_EENDPOINT_FORBIDDEN;
  /* An IPv4-mapped IPv6 address is already in the form IPv4 networks are
   * stored in, so it matches them. */
  for (size_t i = 0; i < p->nnets; i++)
    if (prefix_eq(a, p->nets[i].a, p->nets[i].bits))
      return 0;
  return GRANTD_EENDPOINT_FORBIDDEN;
}

/* The address a URL host denotes when it is numeric: strict IPv6 or IPv4,
 * else the inet_aton() shorthand glibc's getaddrinfo() also accepts. */
static int host_literal(const char *host, struct sockaddr_storage *ss)
{
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    return 0;
  }
  if (inet_aton(host, &in4->sin_addr) != 0) {
    in4->sin_family = AF_INET;
    return 0;
  }
  return -1;
}

int addr_policy_check_url(const addr_policy_t *p, const char *url, char *why, size_t whylen)
{
  url_t u;
  int rc = url_parse(url, &u);
  if (rc != 0)
    return rc;
  struct sockaddr_storage ss;
  if (host_literal(u.host, &ss) == 0) {
    addr_class_t c;
    rc = addr_policy_check(p, (const struct sockaddr *)&ss, &c);
    if (rc != 0 && why != NULL) {
      char a[64];
      addr_format((const struct sockaddr *)&ss, a, sizeof a);
      snprintf(why, whylen, "%s%s%s is a %s address", u.host, strcmp(a, u.host) ? " = " : "",
               strcmp(a, u.host) ? a : "", addr_class_name(c));
    }
  }
  url_free(&u);
  return rc;
}

void addr_format(const struct sockaddr *sa, char *out, size_t outlen)
{
  const void *src = NULL;
  if (sa->sa_family == AF_INET)
    src = &((const struct sockaddr_in *)sa)->sin_addr;
  else if (sa->sa_family == AF_INET6)
    src = &((const struct sockaddr_in6 *)sa)->sin6_addr;
  if (src == NULL || inet_ntop(sa->sa_family, src, out, (socklen_t)outlen) == NULL)
    snprintf(out, outlen, "?");
}
