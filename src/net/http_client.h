/*
 * http_client.h - outbound HTTP/1.1 client with a per-origin keep-alive pool.
 *
 * One http_client_t runs on the caller's loop. A request names an absolute
 * URL; the client resolves the host (uv_getaddrinfo behind a small TTL cache,
 * dns_cache.h; literal IPs skip DNS), connects (trying the resolved addresses
 * in order), wraps the connection in TLS for https (tls.h), writes the
 * request, and parses the response with llhttp (Content-Length, chunked, or
 * delimited by the connection closing). The callback gets the status, the
 * headers and the whole body as one NUL-terminated copy.
 *
 * Pool. Connections are pooled per origin = (scheme, host, port, TLS
 * context, client certificate): a connection that presented one client
 * certificate (mutual TLS, tls_client_ctx_derive_cert) is never reused for
 * a request that needs another or none. An idle connection is reused LIFO; at most max_per_origin
 * connections (idle + busy + connecting) exist per origin and max_total in
 * all; requests beyond that wait in a per-origin FIFO queue. A connection
 * serves one request at a time (no pipelining). Idle connections keep
 * reading, so a server closing one while idle is noticed (and the
 * connection dropped) before it is reused; they close after
 * idle_timeout_ms. A response with "Connection: close", an HTTP/1.0
 * response without keep-alive, a body delimited by close, or any error
 * closes the connection instead of pooling it. When a new connection is
 * needed but max_total is reached, an idle connection of another origin is
 * closed to make room.
 *
 * Redirects are never followed: a 3xx response is handed to the callback
 * like any other, so a server cannot steer a request (and its credentials)
 * to another host, or past the endpoint policy.
 *
 * Endpoint policy (SSRF guard). Each resolved address is checked against
 * opts.endpoint_policy immediately before it is dialled - on every new
 * connection, whether the addresses came from the DNS cache or a fresh
 * resolution - so a name that re-resolves to a forbidden address is
 * refused as well. Pooled connections were checked when they were dialled.
 *
 * Never resend what may have reached the server. Token requests are not
 * idempotent (a refresh may rotate the token at the server), so a request
 * is sent at most once: only a request that provably never left (the write
 * to a pooled connection failed synchronously, before any byte was handed
 * to the transport) is queued again, once, for a fresh connection. Once the
 * request's write was issued, any failure is reported with
 * resp->may_have_been_sent = 1 and the request is never retried. A pooled
 * connection the server closed is normally dropped before reuse: idle
 * connections keep reading (EOF seen by the loop), and right before a
 * pooled connection is written to, its socket is peeked (an EOF, error or
 * stray byte already received drops it). Neither counts as a retry. Only a
 * close whose FIN is still on the wire when the request is written is
 * missed; that request fails with GRANTD_ECONN_CLOSED,
 * may_have_been_sent = 1, as the client cannot prove the bytes were lost.
 *
 * Timeouts. Each request has one deadline, timeout_ms (default
 * response_timeout_ms), measured from http_client_request() until its
 * response is complete: queueing, DNS, connecting, handshake, writing and
 * reading all count. Reaching it fails the request with GRANTD_ETIMEOUT
 * and closes its connection (never reused) if it had one. Connections have
 * their own bounds: connect_timeout_ms covers DNS plus the TCP connects,
 * handshake_timeout_ms the TLS handshake; exceeding either fails the
 * request at the head of the origin's queue with GRANTD_ECONNECT_TIMEOUT.
 *
 * Errors delivered to callbacks (err != 0):
 *   GRANTD_EDNS             the host did not resolve
 *   GRANTD_EENDPOINT_FORBIDDEN every address of the host is one the
 *                           endpoint policy forbids (loopback, private,
 *                           link-local ...: addr_policy.h); nothing was
 *                           dialled. A host with allowed addresses too
 *                           dials only those (failing with ECONNECT if
 *                           none answers).
 *   GRANTD_ECONNECT         every resolved address refused or was
 *                           unreachable (the libuv cause is logged at debug
 *                           level; one code so callers need not list
 *                           UV_ECONNREFUSED, UV_ENETUNREACH, ...)
 *   GRANTD_ECONNECT_TIMEOUT connect or TLS handshake took too long
 *   GRANTD_ETLS_*           TLS handshake / record errors (tls.h)
 *   GRANTD_ETIMEOUT         the request's deadline passed
 *   GRANTD_ECONN_CLOSED     the connection closed (EOF, reset, TLS
 *                           truncation) after the request was written and
 *                           before the response was complete
 *   GRANTD_EHTTP_PARSE      malformed response
 *   GRANTD_ETOO_LARGE       body over max_body, or headers over 64 KiB
 *   GRANTD_ESHUTDOWN        http_client_close() failed a queued request
 *   GRANTD_ECANCELLED       http_client_cancel()
 *   other libuv codes       unexpected transport errors, passed through
 *
 * Everything runs on the loop thread; nothing here is thread-safe.
 */
#ifndef GRANTD_NET_HTTP_CLIENT_H
#define GRANTD_NET_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net/addr_policy.h"
#include "net/tls.h"

typedef struct http_client_s http_client_t;
/* One request in flight; valid from http_client_request() until its
 * callback starts. */
typedef struct http_client_handle_s http_client_handle_t;

/* Defaults applied to zero-valued options. */
#define HTTP_CLIENT_MAX_PER_ORIGIN 8
#define HTTP_CLIENT_MAX_TOTAL 256
/* Pooled connections idle longer than this are closed: 30 s is below the
 * keep-alive timeouts servers commonly use (nginx 75 s, many load balancers
 * 60 s), so the client normally closes first and rarely meets a connection
 * the server is closing. */
#define HTTP_CLIENT_IDLE_TIMEOUT_MS 30000
#define HTTP_CLIENT_CONNECT_TIMEOUT_MS 10000
#define HTTP_CLIENT_HANDSHAKE_TIMEOUT_MS 10000
#define HTTP_CLIENT_RESPONSE_TIMEOUT_MS 30000
#define HTTP_CLIENT_MAX_BODY (1024 * 1024)
#define HTTP_CLIENT_MAX_HEADER_BYTES (64 * 1024)
#define HTTP_CLIENT_DNS_TTL_MS 30000

/* Client options; zero means "the default above". */
typedef struct {
  /* Trust for https:// URLs (borrowed: must outlive the client). NULL: an
   * https request without its own req->tls is refused (GRANTD_ECONFIG). */
  tls_client_ctx_t *tls;
  /* Allow plain http:// URLs (local testing). Otherwise they are refused
   * with GRANTD_EINSECURE_URL. */
  int allow_insecure_http;
  /* Which addresses may be dialled (borrowed: must outlive the client).
   * NULL: the default policy, public unicast addresses only. Every
   * resolved address is checked right before its connect; forbidden ones
   * are skipped (see addr_policy.h). */
  const addr_policy_t *endpoint_policy;
  unsigned max_per_origin;
  unsigned max_total;
  uint64_t idle_timeout_ms;
  uint64_t connect_timeout_ms;
  uint64_t handshake_timeout_ms;
  uint64_t response_timeout_ms; /* default per-request deadline */
  size_t max_body;              /* response body cap */
  uint64_t dns_ttl_ms;          /* how long a resolution is reused */
  const char *user_agent;       /* default "grantd"; copied */
} http_client_opts_t;

/* A header: NUL-terminated name and value. */
typedef struct {
  const char *name;
  const char *value;
} http_client_header_t;

/* A request. Everything is copied by http_client_request(); the caller may
 * free it as soon as the call returns. */
typedef struct {
  const char *method; /* "GET", "POST", ...; NULL = "GET" */
  const char *url;    /* absolute http(s) URL (base/url.h rules) */
  /* Extra headers, sent in order. Host, Content-Length and
   * Transfer-Encoding are set by the client and may not be given; a
   * User-Agent given here replaces the default. Names and values may not
   * contain CR, LF or NUL (GRANTD_EINVALID). */
  const http_client_header_t *headers;
  size_t nheaders;
  /* Body (may hold secrets: the client wipes its copy). With body_len 0 a
   * "Content-Length: 0" is still sent for POST, PUT and PATCH. */
  const void *body;
  size_t body_len;
  uint64_t timeout_ms; /* 0 = opts.response_timeout_ms */
  /* Trust for this request (e.g. a provider's own CA file, see
   * tls_client_ctx_derive()); NULL = the client's. Borrowed: must stay
   * alive until the callback ran and until http_client_close() completes
   * (pooled connections hold a reference through the TLS layer). */
  tls_client_ctx_t *tls;
} http_request_t;

/* The outcome handed to the callback. Every pointer is valid only for the
 * duration of the callback (copy what you keep). */
typedef struct {
  int status;                          /* HTTP status; 0 when err != 0 */
  int http_minor;                      /* 0 or 1 (HTTP/1.x) */
  const http_client_header_t *headers; /* in arrival order */
  size_t nheaders;
  const char *body; /* NUL-terminated ("" when empty; never NULL) */
  size_t body_len;
  /* Whether the request's bytes could have reached the server: 0 when the
   * request failed before its write was issued (DNS, connect, handshake,
   * queued, refused). With err = 0 it is 1. */
  int may_have_been_sent;
  int reused; /* 1 when served on a pooled (previously used) connection */
} http_response_t;

/* Runs exactly once per accepted request, from a loop callback (or from
 * inside http_client_close() / http_client_cancel(), see there). `resp` is
 * never NULL: on failure it has status 0, no headers, an empty body and a
 * meaningful may_have_been_sent. The callback may start new requests, cancel
 * others or close the client. */
typedef void (*http_client_cb)(const http_response_t *resp, int err, void *arg);

/* Creates a client. `opts` is copied (NULL = all defaults).
 * @return the client (free it with http_client_close()). Never NULL. */
http_client_t *http_client_new(uv_loop_t *loop, const http_client_opts_t *opts);

/* Starts a request.
 * @param handle if non-NULL, receives a handle for http_client_cancel(),
 *   valid until the callback starts.
 * @return 0 (cb will run exactly once), or, with no callback:
 *   GRANTD_EBAD_URL (url missing or malformed), GRANTD_EINSECURE_URL
 *   (http:// not allowed), GRANTD_ECONFIG (https without any TLS context),
 *   GRANTD_EINVALID (bad method or header), GRANTD_ESHUTDOWN (client
 *   closing). */
int http_client_request(http_client_t *c, const http_request_t *req, http_client_cb cb, void *arg,
                        http_client_handle_t **handle);

/* Cancels a request whose callback has not run yet: its callback runs
 * before this returns, with GRANTD_ECANCELLED (may_have_been_sent telling
 * whether it was written). A connection it was using is closed. */
void http_client_cancel(http_client_handle_t *h);

/* Case-insensitive lookup of a response header; the first match's value or
 * NULL. Valid for the callback's duration. */
const char *http_response_header(const http_response_t *resp, const char *name);

typedef void (*http_client_close_cb)(void *arg);

/* Shuts the client down: fails every queued request (its callback runs
 * before this returns) with GRANTD_ESHUTDOWN, closes idle and connecting
 * connections, and refuses new requests with GRANTD_ESHUTDOWN. Requests
 * already written are allowed to finish, bounded by their own deadline;
 * their connections then close. `cb` (may be NULL) runs from a later loop
 * callback once every connection and timer is closed; the client is freed
 * right after it. Call once. */
void http_client_close(http_client_t *c, http_client_close_cb cb, void *arg);

/* Client-wide counters (monotonic unless noted). */
typedef struct {
  uint64_t requests;      /* accepted by http_client_request() */
  uint64_t ok;            /* completed with err = 0 */
  uint64_t failed;        /* completed with err != 0 */
  uint64_t conns_opened;  /* connection attempts started */
  uint64_t conns_failed;  /* attempts that never became usable */
  uint64_t reused;        /* requests written on a pooled connection */
  uint64_t retried;       /* provably unsent requests queued again */
  uint64_t idle_timeouts; /* pooled connections closed for idleness */
  uint64_t idle_dropped;  /* pooled connections the server closed */
  uint64_t tls_full;      /* TLS handshakes, full */
  uint64_t tls_resumed;   /* TLS handshakes, resumed */
  uint64_t dns_lookups;   /* uv_getaddrinfo calls made */
  uint64_t dns_hits;      /* resolutions served from the cache */
  uint64_t forbidden;     /* connections refused: every address forbidden */
  unsigned conns;         /* gauge: open connections (any state) */
  unsigned idle;          /* gauge: pooled idle connections */
  unsigned inflight;      /* gauge: requests written, not yet complete */
  unsigned queued;        /* gauge: requests waiting for a connection */
} http_client_stats_t;

/* Copies the client's counters into *out. */
void http_client_get_stats(const http_client_t *c, http_client_stats_t *out);

/* Per-origin gauges. */
typedef struct {
  unsigned conns; /* open connections (idle + busy + connecting) */
  unsigned idle;
  unsigned inflight; /* requests written, not complete */
  unsigned queued;   /* requests waiting for a connection */
} http_origin_stats_t;

/* Gauges of the origin of `url` (with the client's TLS context).
 * @return 0, GRANTD_EBAD_URL, or GRANTD_ENOT_FOUND (no request went to that
 *   origin yet; *out zeroed). */
int http_client_origin_stats(const http_client_t *c, const char *url, http_origin_stats_t *out);

#endif
