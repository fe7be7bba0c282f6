/*
 * addr_policy.h - which addresses grantd may dial (the SSRF guard).
 *
 * grantd connects to URLs its API callers supply (token, revocation and
 * discovery endpoints). Left alone, a caller could point one at the cloud
 * metadata service (169.254.169.254) or at services inside the operator's
 * network. So by default only public unicast addresses are dialled; every
 * other class (addr_class_t) is forbidden unless the operator allows it:
 *
 *   - an allowed CIDR (--allow-endpoint-cidr) admits the addresses it
 *     covers, whatever their class;
 *   - allow_private (--allow-private-endpoints, for tests and local
 *     development) admits every class.
 *
 * Three classes are never dialled, whatever is allowed: unspecified
 * (0.0.0.0/8, ::), multicast and the limited broadcast address. They are not
 * unicast destinations; connecting to 0.0.0.0 reaches the local host on
 * Linux.
 *
 * Embedded IPv4 addresses. An IPv6 address that carries an IPv4 address is
 * classified by that IPv4 address: IPv4-mapped ::ffff:a.b.c.d, IPv4-
 * translated ::ffff:0:a.b.c.d, IPv4-compatible ::a.b.c.d (deprecated), the
 * NAT64 well-known prefix 64:ff9b::/96 (RFC 6052: a translator forwards it
 * to the embedded IPv4 address, so 64:ff9b::a9fe:a9fe reaches the metadata
 * service) and 6to4 2002:AABB:CCDD::/48. The local-use NAT64 prefix
 * 64:ff9b:1::/48 (RFC 8215) is operator-defined and counts as private.
 * For matching against allowed CIDRs, an IPv4-mapped address is the IPv4
 * address it maps (the kernel dials that IPv4 address); the other embedded
 * forms are matched as the IPv6 addresses they are.
 *
 * The check is applied by http_client to every address right before it is
 * dialled, after DNS resolution, so a name that resolves (or re-resolves)
 * to a forbidden address is refused too, and a name resolving to both
 * allowed and forbidden addresses only ever dials the allowed ones. The API
 * also refuses forbidden IP literals in provider URLs up front
 * (addr_policy_check_url()).
 *
 * A policy is immutable once built and used on the loop thread.
 */
#ifndef GRANTD_NET_ADDR_POLICY_H
#define GRANTD_NET_ADDR_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef enum {
  ADDR_PUBLIC = 0,   /* globally routable unicast */
  ADDR_LOOPBACK,     /* 127.0.0.0/8, ::1 */
  ADDR_PRIVATE,      /* RFC 1918, fec0::/10 (site-local), 64:ff9b:1::/48 */
  ADDR_LINK_LOCAL,   /* 169.254.0.0/16 (incl. the metadata service), fe80::/10 */
  ADDR_SHARED,       /* 100.64.0.0/10, carrier-grade NAT (RFC 6598) */
  ADDR_UNIQUE_LOCAL, /* fc00::/7 (RFC 4193) */
  /* Special-purpose, not globally reachable (IANA registries): 192.0.0.0/24,
   * 192.0.2.0/24, 198.18.0.0/15, 198.51.100.0/24, 203.0.113.0/24,
   * 240.0.0.0/4 (but 255.255.255.255), 100::/64, 2001::/32 (Teredo: the
   * tunnelled address cannot be checked), 2001:db8::/32, 3fff::/20. */
  ADDR_RESERVED,
  ADDR_MULTICAST,  /* 224.0.0.0/4, ff00::/8 - never dialled */
  ADDR_BROADCAST,  /* 255.255.255.255 - never dialled */
  ADDR_UNSPECIFIED /* 0.0.0.0/8, :: - never dialled */
} addr_class_t;

/* Stable snake_case name ("public", "loopback", "link_local", ...). */
const char *addr_class_name(addr_class_t c);

/* Class of an IPv4 address given as 4 bytes in network order. */
addr_class_t addr_classify_v4(const uint8_t a[4]);

/* Class of an IPv6 address given as 16 bytes (embedded IPv4 forms are
 * classified by their IPv4 address, see above). */
addr_class_t addr_classify_v6(const uint8_t a[16]);

/* Class of an AF_INET or AF_INET6 socket address; other families are
 * ADDR_RESERVED. */
addr_class_t addr_classify(const struct sockaddr *sa);

typedef struct addr_policy_s addr_policy_t;

/* A new policy forbidding every class but ADDR_PUBLIC. Never NULL. */
addr_policy_t *addr_policy_new(void);

/* Frees the policy. NULL is ignored. */
void addr_policy_free(addr_policy_t *p);

/* Admits every class (except the never-dialled ones) when on != 0. */
void addr_policy_allow_private(addr_policy_t *p, int on);

/* Adds allowed networks from a comma-separated list such as
 * "10.0.3.0/24, fd00::/8, 192.168.1.7": each item an IPv4 or IPv6 address
 * (strict dotted-quad or RFC 4291 text) with an optional /PREFIX (0-32 or
 * 0-128, decimal; none = a single host). Spaces around items are ignored.
 * Host bits set below the prefix (10.0.3.7/24), empty items and anything
 * else malformed are errors. An IPv4-mapped network (::ffff:10.0.0.0/104)
 * is stored as the IPv4 network it maps.
 * @return 0, or GRANTD_EINVALID with one line in err (size errlen) naming
 *   the bad item; the policy is then unchanged. */
int addr_policy_add_cidrs(addr_policy_t *p, const char *list, char *err, size_t errlen);

/* Number of allowed networks. */
size_t addr_policy_ncidrs(const addr_policy_t *p);

/* 1 when allow_private is on or at least one CIDR is allowed. */
int addr_policy_relaxed(const addr_policy_t *p);

/* Decides whether `sa` may be dialled. NULL p means the default policy.
 * @param cls if non-NULL, receives the address's class.
 * @return 0 (allowed) or GRANTD_EENDPOINT_FORBIDDEN. */
int addr_policy_check(const addr_policy_t *p, const struct sockaddr *sa, addr_class_t *cls);

/* Checks a URL's host when it is an IP literal. Besides strict literals,
 * the shorthand IPv4 forms the resolver accepts as numbers (127.1,
 * 0x7f000001, 2130706433, 017700000001) count as literals, since
 * getaddrinfo() would turn them into those addresses. Names are not
 * resolved here (the dial-time check covers them).
 * @param why if non-NULL, receives one line naming the host and its class
 *   when the answer is GRANTD_EENDPOINT_FORBIDDEN.
 * @return 0 (a name, or an allowed literal), GRANTD_EBAD_URL (url does not
 *   parse) or GRANTD_EENDPOINT_FORBIDDEN. */
int addr_policy_check_url(const addr_policy_t *p, const char *url, char *why, size_t whylen);

/* Formats the address of `sa` (no port) into out (at least 46 bytes). */
void addr_format(const struct sockaddr *sa, char *out, size_t outlen);

#endif
