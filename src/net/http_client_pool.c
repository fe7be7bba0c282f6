/*
 * http_client_pool.c - origins, their request queues and idle lists, and
 * the dispatch rule (see http_client.h, "Pool").
 *
 * A connection is not opened for a particular request: connections serve
 * their origin's FIFO queue. A new connection, once usable, takes the
 * request at the head of the queue; one that fails to connect fails the
 * head request. So the number of connections being set up tracks the
 * number of waiting requests, and a request whose deadline passes while a
 * connection is being set up does not waste it (it is pooled when ready).
 * Idle connections are reused most-recently-used first (LIFO), so the
 * least used ones age out through the idle timeout.
 *
 * An origin is (scheme, host, port, TLS context, client certificate): a
 * connection made presenting one client certificate (RFC 8705 mutual TLS,
 * tls_client_ctx_derive_cert) is never handed to a request that needs
 * another certificate or none, and a request never rides on a connection
 * whose certificate it did not ask for. The context already carries the
 * certificate; its identity (the leaf's SHA-256) is part of the key as
 * well, so the rule does not rest on contexts never being shared.
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "net/http_client_int.h"

/* Whether o presents the client certificate `id` (NULL = none). */
static int same_cert(const hc_origin_t *o, const unsigned char *id)
{
  if (id == NULL || !o->has_cert)
    return id == NULL && !o->has_cert;
  return memcmp(o->cert_id, id, sizeof o->cert_id) == 0;
}

hc_origin_t *hc__origin_find(http_client_t *c, const char *host, uint16_t port, int https,
                             tls_client_ctx_t *tls)
{
  const unsigned char *id = https ? tls_client_ctx_cert_id(tls) : NULL;
  for (hc_link_t *l = c->origins.next; l != &c->origins; l = l->next) {
    hc_origin_t *o = container_of(l, hc_origin_t, link);
    if (o->port == port && o->https == https && o->tls == tls && same_cert(o, id) &&
        strcmp(o->host, host) == 0)
      return o;
  }
  return NULL;
}

hc_origin_t *hc__origin_get(http_client_t *c, const char *host, uint16_t port, int https,
                            tls_client_ctx_t *tls)
{
  hc_origin_t *o = hc__origin_find(c, host, port, https, tls);
  if (o != NULL)
    return o;
  o = xcalloc(1, sizeof(*o));
  o->c = c;
  o->host = xstrdup(host);
  o->port = port;
  o->https = https;
  o->tls = tls;
  const unsigned char *id = https ? tls_client_ctx_cert_id(tls) : NULL;
  if (id != NULL) {
    memcpy(o->cert_id, id, sizeof o->cert_id);
    o->has_cert = 1;
  }
  hc_list_init(&o->conns);
  hc_list_init(&o->idle);
  hc_list_init(&o->queue);
  hc_list_push_back(&c->origins, &o->link);
  return o;
}

void hc__origin_free(hc_origin_t *o)
{
  free(o->host);
  free(o);
}

void hc__enqueue(hc_origin_t *o, hc_req_t *r, int front)
{
  r->state = HC_REQ_QUEUED;
  if (front)
    hc_list_push_front(&o->queue, &r->link);
  else
    hc_list_push_back(&o->queue, &r->link);
  o->nqueued++;
  o->c->st.queued++;
}

void hc__dequeue(hc_req_t *r)
{
  hc_list_unlink(&r->link);
  r->o->nqueued--;
  r->o->c->st.queued--;
}

void hc__idle_push(hc_conn_t *k)
{
  hc_origin_t *o = k->o;
  hc_list_push_front(&o->idle, &k->idle_link);
  o->nidle++;
  o->c->st.idle++;
}

void hc__idle_remove(hc_conn_t *k)
{
  hc_list_unlink(&k->idle_link);
  k->o->nidle--;
  k->o->c->st.idle--;
}

/* Frees a global connection slot for `o` by closing the least recently
 * used idle connection of another origin. */
static int evict_idle_elsewhere(http_client_t *c, hc_origin_t *o)
{
  for (hc_link_t *l = c->origins.next; l != &c->origins; l = l->next) {
    hc_origin_t *x = container_of(l, hc_origin_t, link);
    if (x == o || x->nidle == 0)
      continue;
    hc_conn_t *k = container_of(x->idle.prev, hc_conn_t, idle_link);
    hc__conn_close(k);
    return 1;
  }
  return 0;
}

/* The first queued request that may use a pooled connection. */
static hc_req_t *first_poolable(hc_origin_t *o)
{
  for (hc_link_t *l = o->queue.next; l != &o->queue; l = l->next) {
    hc_req_t *r = container_of(l, hc_req_t, link);
    if (!r->need_fresh)
      return r;
  }
  return NULL;
}

void hc__dispatch(hc_origin_t *o)
{
  http_client_t *c = o->c;
  /* hc__conn_send may run a callback (a retried request failing again),
   * which may change anything: every step re-reads the state. */
  while (!c->closing && o->nidle > 0) {
    hc_req_t *r = first_poolable(o);
    if (r == NULL)
      break;
    hc_conn_t *k = container_of(o->idle.next, hc_conn_t, idle_link);
    if (!hc__conn_alive(k)) {
      /* The server closed it after our last read callback: drop it now,
       * before anything is written to it. */
      c->st.idle_dropped++;
      hc__conn_close(k);
      continue;
    }
    hc__dequeue(r);
    hc__conn_send(k, r);
  }
  /* Requests still queued need new connections. Any idle connection left
   * here cannot serve them (they must go on a fresh one), so it may be
   * closed to make room. */
  while (!c->closing && o->nconnecting < o->nqueued) {
    int full = o->nconns >= c->opts.max_per_origin ||
               (c->nconns >= c->opts.max_total && !evict_idle_elsewhere(c, o));
    if (full) {
      if (o->nidle == 0)
        break;
      hc__conn_close(container_of(o->idle.prev, hc_conn_t, idle_link));
      continue;
    }
    hc__conn_open(o);
  }
}

void hc__dispatch_all(http_client_t *c)
{
  for (hc_link_t *l = c->origins.next; l != &c->origins && !c->closing; l = l->next) {
    hc_origin_t *o = container_of(l, hc_origin_t, link);
    if (o->nqueued > 0)
      hc__dispatch(o);
  }
}
