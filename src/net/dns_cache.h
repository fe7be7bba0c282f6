/*
 * dns_cache.h - asynchronous host resolution (uv_getaddrinfo) with a small
 * TTL cache, for http_client.
 *
 * getaddrinfo runs on libuv's thread pool and may take a while, so results
 * are kept for a short TTL (the resolver's own TTLs are not visible through
 * getaddrinfo). Concurrent resolutions of one host share one getaddrinfo
 * call. Failures are not cached. Literal IPv4/IPv6 addresses never reach
 * the resolver. Whatever the addresses, http_client checks each one against
 * its endpoint policy when it dials it (addr_policy.h), so neither the
 * cache nor a later re-resolution can smuggle in a forbidden address.
 */
#ifndef GRANTD_NET_DNS_CACHE_H
#define GRANTD_NET_DNS_CACHE_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define DNS_MAX_ADDRS 8     /* addresses kept per host, in resolver order */
#define DNS_MAX_ENTRIES 128 /* cached hosts; the soonest to expire goes first */

typedef struct dns_cache_s dns_cache_t;
typedef struct dns_query_s dns_query_t;

/* A resolution: up to DNS_MAX_ADDRS stream addresses with the port set. */
typedef struct {
  struct sockaddr_storage addr[DNS_MAX_ADDRS];
  unsigned n;
} dns_addrs_t;

/* Resolution result: status 0 with addrs->n >= 1, or GRANTD_EDNS (addrs
 * empty). `addrs` is borrowed for the duration of the call. */
typedef void (*dns_cb)(int status, const dns_addrs_t *addrs, void *arg);

typedef struct {
  uint64_t lookups; /* getaddrinfo calls started */
  uint64_t hits;    /* dns_cache_lookup() answers from the cache */
} dns_stats_t;

/* Creates a cache on `loop` keeping results for ttl_ms. Never NULL. */
dns_cache_t *dns_cache_new(uv_loop_t *loop, uint64_t ttl_ms);

/* Frees the cache. Queries still waiting are dropped (their callbacks never
 * run); getaddrinfo calls still running finish on their own and free
 * themselves (they keep the loop alive until then). */
void dns_cache_free(dns_cache_t *c);

/* Answers synchronously when possible: a literal IP, or a cached entry not
 * older than the TTL.
 * @return 0 with *out filled (port set), or GRANTD_ENOT_FOUND (ask
 *   dns_cache_resolve()). */
int dns_cache_lookup(dns_cache_t *c, const char *host, uint16_t port, dns_addrs_t *out);

/* Resolves `host` through uv_getaddrinfo (joining a call already running
 * for it) and caches a success.
 * @param q receives the query handle, valid until cb starts (for
 *   dns_query_cancel()).
 * @return 0 (cb runs exactly once from a loop callback, unless cancelled),
 *   or a libuv error from uv_getaddrinfo (cb never runs). */
int dns_cache_resolve(dns_cache_t *c, const char *host, uint16_t port, dns_cb cb, void *arg,
                      dns_query_t **q);

/* Stores `addrs` (ports ignored) as the resolution of `host`, exactly as a
 * getaddrinfo answer would be stored: it is served for ttl_ms, then
 * resolved again. For tests that need a name with particular addresses
 * (several families, a later re-resolution to different ones). */
void dns_cache_put(dns_cache_t *c, const char *host, const dns_addrs_t *addrs);

/* Drops a query before its callback ran; the callback never runs. */
void dns_query_cancel(dns_query_t *q);

/* Counters (live; owned by c). */
const dns_stats_t *dns_cache_stats(const dns_cache_t *c);

#endif
