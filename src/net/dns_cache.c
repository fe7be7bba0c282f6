/*
 * dns_cache.c - uv_getaddrinfo behind a short-TTL cache (see dns_cache.h).
 *
 * The cache holds a handful of token-endpoint hosts, so entries live in a
 * plain list searched linearly. A resolution in progress is a `pending_t`
 * that owns its uv_getaddrinfo_t and outlives the cache if need be: freeing
 * the cache detaches it (cache = NULL) and the completion callback then
 * only frees it, because a running getaddrinfo cannot be stopped.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "net/dns_cache.h"

typedef struct entry_s {
  struct entry_s *next;
  char *host;
  uint64_t expires; /* uv_now() ms */
  dns_addrs_t addrs;
} entry_t;

typedef struct pending_s pending_t;

struct dns_query_s {
  dns_query_t *next, *prev;
  pending_t *p;
  uint16_t port;
  dns_cb cb;
  void *arg;
};

struct pending_s {
  uv_getaddrinfo_t req;
  pending_t *next;
  dns_cache_t *cache; /* NULL once the cache was freed */
  char *host;
  dns_query_t *waiters; /* doubly linked, head insert */
};

struct dns_cache_s {
  uv_loop_t *loop;
  uint64_t ttl_ms;
  entry_t *entries;
  unsigned nentries;
  pending_t *pending;
  dns_stats_t stats;
};

dns_cache_t *dns_cache_new(uv_loop_t *loop, uint64_t ttl_ms)
{
  dns_cache_t *c = xcalloc(1, sizeof(*c));
  c->loop = loop;
  c->ttl_ms = ttl_ms;
  return c;
}

static void entry_free(entry_t *e)
{
  free(e->host);
  free(e);
}

static void drop_waiters(pending_t *p)
{
  while (p->waiters != NULL) {
    dns_query_t *q = p->waiters;
    p->waiters = q->next;
    free(q);
  }
}

void dns_cache_free(dns_cache_t *c)
{
  if (c == NULL)
    return;
  while (c->entries != NULL) {
    entry_t *e = c->entries;
    c->entries = e->next;
    entry_free(e);
  }
  for (pending_t *p = c->pending; p != NULL; p = p->next) {
    p->cache = NULL;
    drop_waiters(p);
    /* Succeeds only while the request still waits for a worker thread;
     * either way the callback runs and frees p. */
    uv_cancel((uv_req_t *)&p->req);
  }
  free(c);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
  else if (ss->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static void with_port(const dns_addrs_t *in, uint16_t port, dns_addrs_t *out)
{
  out->n = in->n;
  for (unsigned i = 0; i < in->n; i++) {
    out->addr[i] = in->addr[i];
    set_port(&out->addr[i], port);
  }
}

/* Literal addresses bypass the resolver (and the cache). */
static int parse_literal(const char *host, uint16_t port, dns_addrs_t *out)
{
  memset(out, 0, sizeof(*out));
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&out->addr[0]) == 0 ||
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&out->addr[0]) == 0) {
    out->n = 1;
    return 0;
  }
  return GRANTD_ENOT_FOUND;
}

static entry_t *find_entry(dns_cache_t *c, const char *host, entry_t ***link)
{
  for (entry_t **pp = &c->entries; *pp != NULL; pp = &(*pp)->next) {
    if (strcmp((*pp)->host, host) == 0) {
      if (link != NULL)
        *link = pp;
      return *pp;
    }
  }
  return NULL;
}

int dns_cache_lookup(dns_cache_t *c, const char *host, uint16_t port, dns_addrs_t *out)
{
  if (parse_literal(host, port, out) == 0)
    return 0;
  entry_t **link = NULL;
  entry_t *e = find_entry(c, host, &link);
  if (e == NULL)
    return GRANTD_ENOT_FOUND;
  if (uv_now(c->loop) >= e->expires) {
    *link = e->next;
    c->nentries--;
    entry_free(e);
    return GRANTD_ENOT_FOUND;
  }
  with_port(&e->addrs, port, out);
  c->stats.hits++;
  return 0;
}

static void store_entry(dns_cache_t *c, const char *host, const dns_addrs_t *a)
{
  entry_t **link = NULL;
  entry_t *e = find_entry(c, host, &link);
  if (e == NULL) {
    if (c->nentries >= DNS_MAX_ENTRIES) {
      /* Evict the entry that expires first: the oldest resolution. */
      entry_t **victim = &c->entries;
      for (entry_t **pp = &c->entries; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->expires < (*victim)->expires)
          victim = pp;
      entry_t *v = *victim;
      *victim = v->next;
      entry_free(v);
      c->nentries--;
    }
    e = xcalloc(1, sizeof(*e));
    e->host = xstrdup(host);
    e->next = c->entries;
    c->entries = e;
    c->nentries++;
  }
  e->addrs = *a;
  e->expires = uv_now(c->loop) + c->ttl_ms;
}

void dns_cache_put(dns_cache_t *c, const char *host, const dns_addrs_t *addrs)
{
  dns_addrs_t a;
  memset(&a, 0, sizeof(a));
  with_port(addrs, 0, &a);
  store_entry(c, host, &a);
}

static void unlink_pending(dns_cache_t *c, pending_t *p)
{
  for (pending_t **pp = &c->pending; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == p) {
      *pp = p->next;
      return;
    }
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
  pending_t *p = container_of(req, pending_t, req);
  dns_addrs_t addrs;
  memset(&addrs, 0, sizeof(addrs));
  if (status == 0) {
    for (struct addrinfo *ai = res; ai != NULL && addrs.n < DNS_MAX_ADDRS; ai = ai->ai_next) {
      if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
          ai->ai_addrlen <= sizeof(addrs.addr[0]))
        memcpy(&addrs.addr[addrs.n++], ai->ai_addr, ai->ai_addrlen);
    }
  }
  uv_freeaddrinfo(res);
  int rc = addrs.n > 0 ? 0 : GRANTD_EDNS;
  dns_cache_t *c = p->cache;
  if (c != NULL) {
    /* Off the cache's list first: a waiter's callback may free the cache,
     * which must then leave this pending alone. */
    unlink_pending(c, p);
    if (rc == 0)
      store_entry(c, p->host, &addrs);
  }
  /* Waiters are taken one at a time, so a callback may cancel another
   * waiter of this same resolution. */
  while (p->waiters != NULL) {
    dns_query_t *q = p->waiters;
    p->waiters = q->next;
    if (p->waiters != NULL)
      p->waiters->prev = NULL;
    dns_addrs_t mine;
    memset(&mine, 0, sizeof(mine));
    with_port(&addrs, q->port, &mine);
    dns_cb cb = q->cb;
    void *arg = q->arg;
    free(q);
    cb(rc, &mine, arg);
  }
  free(p->host);
  free(p);
}

int dns_cache_resolve(dns_cache_t *c, const char *host, uint16_t port, dns_cb cb, void *arg,
                      dns_query_t **qout)
{
  pending_t *p = NULL;
  for (p = c->pending; p != NULL; p = p->next)
    if (strcmp(p->host, host) == 0)
      break;
  if (p == NULL) {
    p = xcalloc(1, sizeof(*p));
    p->cache = c;
    p->host = xstrdup(host);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int r = uv_getaddrinfo(c->loop, &p->req, on_resolved, host, NULL, &hints);
    if (r != 0) {
      free(p->host);
      free(p);
      return r;
    }
    c->stats.lookups++;
    p->next = c->pending;
    c->pending = p;
  }
  dns_query_t *q = xcalloc(1, sizeof(*q));
  q->p = p;
  q->port = port;
  q->cb = cb;
  q->arg = arg;
  q->next = p->waiters;
  if (p->waiters != NULL)
    p->waiters->prev = q;
  p->waiters = q;
  if (qout != NULL)
    *qout = q;
  return 0;
}

void dns_query_cancel(dns_query_t *q)
{
  if (q == NULL)
    return;
  if (q->prev != NULL)
    q->prev->next = q->next;
  else
    q->p->waiters = q->next;
  if (q->next != NULL)
    q->next->prev = q->prev;
  free(q);
}

const dns_stats_t *dns_cache_stats(const dns_cache_t *c)
{
  return &c->stats;
}
