/*
 * http_client_int.h - internals shared by http_client.c (API, requests),
 * http_client_pool.c (origins, queueing, dispatch) and http_client_conn.c
 * (the connection state machine and response parser). Not a public header.
 *
 * Ownership: the client owns its origins (kept until the client is freed:
 * there are only as many as token endpoints); an origin lists its open
 * connections and queued requests. A connection is freed from the last of
 * its handle close callbacks (stream + timer), a request from its timer's
 * close callback, and the client once none of those is left, so nothing is
 * freed on a stack that still uses it.
 */
#ifndef GRANTD_NET_HTTP_CLIENT_INT_H
#define GRANTD_NET_HTTP_CLIENT_INT_H

#include <llhttp.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/url.h"
#include "net/addr_policy.h"
#include "net/dns_cache.h"
#include "net/http_client.h"

#define HC_MAX_HEADERS 100 /* response headers kept; more is ETOO_LARGE */
/* Bytes reserved for an answer's headers: one 488-byte buffer (see
 * buf_reserve's sizes), enough for most answers, grown only by long ones. */
#define HC_HBUF_INITIAL 480
/* Header offsets are 16-bit: hbuf never grows past the header cap. */
_Static_assert(HTTP_CLIENT_MAX_HEADER_BYTES <= 65536, "hoff[] holds 16-bit offsets");

/* Intrusive circular doubly-linked list. */
typedef struct hc_link_s {
  struct hc_link_s *prev, *next;
} hc_link_t;

static inline void hc_list_init(hc_link_t *l)
{
  l->prev = l->next = l;
}
static inline int hc_list_empty(const hc_link_t *l)
{
  return l->next == l;
}
static inline void hc_list_unlink(hc_link_t *e)
{
  e->prev->next = e->next;
  e->next->prev = e->prev;
  e->prev = e->next = e;
}
static inline void hc_list_insert_after(hc_link_t *at, hc_link_t *e)
{
  e->prev = at;
  e->next = at->next;
  at->next->prev = e;
  at->next = e;
}
static inline void hc_list_push_front(hc_link_t *l, hc_link_t *e)
{
  hc_list_insert_after(l, e);
}
static inline void hc_list_push_back(hc_link_t *l, hc_link_t *e)
{
  hc_list_insert_after(l->prev, e);
}

typedef struct hc_origin_s hc_origin_t;
typedef struct hc_conn_s hc_conn_t;
typedef struct http_client_handle_s hc_req_t;

typedef enum {
  HC_REQ_QUEUED, /* in origin->queue */
  HC_REQ_ACTIVE, /* bound to a connection (written or being written) */
  HC_REQ_DONE    /* callback ran; waiting for the timer to close */
} hc_req_state_t;

struct http_client_handle_s {
  hc_link_t link; /* origin->queue while queued */
  http_client_t *c;
  hc_origin_t *o;
  hc_conn_t *conn;
  hc_req_state_t state;
  http_client_cb cb;
  void *arg;
  uv_timer_t timer; /* the request's deadline */
  buf_t out;        /* serialized request (secrets: wiped) */
  int is_head;      /* HEAD: the response has no body */
  int sent;         /* the write was issued: may have reached the server */
  int retried;      /* queued again once, provably unsent */
  int need_fresh;   /* must go on a new connection */
  int reused;
  /* Response being parsed. */
  int status;
  int minor;
  buf_t hbuf;                        /* "name\0value\0" pairs */
  uint16_t hoff[2 * HC_MAX_HEADERS]; /* offsets into hbuf (headers are capped at 64 KiB) */
  unsigned nh;                       /* complete headers */
  int hstate;                        /* 0 none, 1 in name, 2 in value */
  buf_t body;
};

typedef enum {
  HC_CONN_START, /* waiting for the kick timer */
  HC_CONN_RESOLVING,
  HC_CONN_CONNECTING,
  HC_CONN_HANDSHAKE,
  HC_CONN_IDLE, /* pooled, reading to notice a close */
  HC_CONN_BUSY, /* serving conn->req */
  HC_CONN_CLOSING
} hc_conn_state_t;

struct hc_conn_s {
  hc_link_t link;      /* origin->conns */
  hc_link_t idle_link; /* origin->idle while idle (head = most recent) */
  hc_origin_t *o;
  hc_conn_state_t state;
  int connecting;   /* counted in origin->nconnecting */
  stream_t *s;      /* the stream in use (TCP or TLS over TCP) */
  stream_t *tcp;    /* the TCP stream under s once connected */
  uv_timer_t timer; /* kick, connect, handshake or idle timeout */
  unsigned pending; /* open handles: freed at 0 once closing */
  dns_query_t *dnsq;
  dns_addrs_t addrs;
  unsigned addr_i;
  int last_err;       /* the last connect error, for the log */
  unsigned dialled;   /* addresses connected to (attempts started) */
  unsigned forbidden; /* addresses the endpoint policy refused */
  hc_req_t *req;      /* while busy */
  llhttp_t parser;
  int perr;     /* error chosen by a parser callback */
  int complete; /* the response is complete */
  int keep;     /* llhttp_should_keep_alive() at completion */
  int used;     /* served a request before */
  int writing;  /* a write is in flight (conn->out) */
  buf_t out;    /* request bytes being written (wiped after) */
};

struct hc_origin_s {
  hc_link_t link; /* client->origins */
  http_client_t *c;
  char *host;
  uint16_t port;
  int https;
  tls_client_ctx_t *tls; /* NULL for http */
  /* The client certificate its connections present (SHA-256 of the DER
   * leaf, tls_client_ctx_cert_id), part of the pool key; has_cert 0 = none. */
  unsigned char cert_id[32];
  int has_cert;
  hc_link_t conns, idle, queue;
  unsigned nconns, nidle, nconnecting, ninflight, nqueued;
};

#define HC_URL_CACHE 4

struct http_client_s {
  uv_loop_t *loop;
  http_client_opts_t opts; /* defaults filled in */
  char *user_agent;
  dns_cache_t *dns;
  hc_link_t origins;
  unsigned nconns; /* all origins, for max_total */
  http_client_stats_t st;
  int closing;
  unsigned pending; /* own timer + live conns + live requests */
  uv_timer_t own;
  http_client_close_cb close_cb;
  void *close_arg;
  /* The last URLs parsed (a refresh storm sends the same token URL over
   * and over): text -> parsed form, replaced round-robin. */
  struct {
    char *text;
    url_t u;
  } urls[HC_URL_CACHE];
  unsigned url_next;
};

/* http_client.c */
/* Completes a request (unlinked from queue and connection): runs its
 * callback with err, then releases it. */
void hc__req_finish(hc_req_t *r, int err);
/* Drops one pending count; frees the client when closing and none is left. */
void hc__client_unref(http_client_t *c);

/* http_client_pool.c */
hc_origin_t *hc__origin_find(http_client_t *c, const char *host, uint16_t port, int https,
                             tls_client_ctx_t *tls);
hc_origin_t *hc__origin_get(http_client_t *c, const char *host, uint16_t port, int https,
                            tls_client_ctx_t *tls);
void hc__origin_free(hc_origin_t *o);
/* Queues r at the tail (or head when `front`). */
void hc__enqueue(hc_origin_t *o, hc_req_t *r, int front);
/* Takes r out of its origin's queue. */
void hc__dequeue(hc_req_t *r);
/* Hands queued requests to idle connections and opens connections for the
 * rest within the limits. Safe to call at any time. */
void hc__dispatch(hc_origin_t *o);
void hc__dispatch_all(http_client_t *c);
/* Moves a connection to / from the idle list. */
void hc__idle_push(hc_conn_t *k);
void hc__idle_remove(hc_conn_t *k);

/* http_client_conn.c */
/* Starts a new connection for origin o (asynchronously: the work starts
 * from a zero timer, so no callback runs inside the caller). */
void hc__conn_open(hc_origin_t *o);
/* Writes r on connection k (ready, not busy). May requeue r (provably
 * unsent) or complete it with an error. */
void hc__conn_send(hc_conn_t *k, hc_req_t *r);
/* 1 when an idle connection's socket shows nothing pending: no EOF, no
 * error and no unread bytes (which on an idle connection can only be a
 * close_notify or garbage). Catches a server's close that arrived after
 * the last read callback, before the request is written. */
int hc__conn_alive(hc_conn_t *k);
/* Closes a connection (idempotent), detaching nothing: callers detach and
 * complete its request first. */
void hc__conn_close(hc_conn_t *k);

#endif
