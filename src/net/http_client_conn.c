/*
 * http_client_conn.c - one outbound connection: an explicit state machine
 *   START -> RESOLVING -> CONNECTING -> [HANDSHAKE] -> IDLE <-> BUSY
 * with CLOSING reachable from everywhere, plus the llhttp response parser.
 *
 * Timers: conn->timer bounds setup (connect_timeout_ms over DNS and the
 * TCP connects, then handshake_timeout_ms) and idleness; while busy the
 * request's own deadline applies (http_client.c).
 *
 * Sending rule (http_client.h): a request counts as possibly sent as soon
 * as its write is issued. Only a synchronous write failure - nothing was
 * handed to the transport - lets it be queued again, once, for a fresh
 * connection. Idle connections keep reading so a server's close is noticed
 * (and the connection dropped) before reuse.
 *
 * The parser callbacks only record; the response is completed outside
 * llhttp_execute (on_message_complete pauses the parser), because the
 * user's callback may reuse this very connection for its next request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "net/http_client_int.h"

static const llhttp_settings_t *parser_settings(void);

/* ---- life cycle -------------------------------------------------------- */

static void conn_unref(hc_conn_t *k)
{
  if (--k->pending > 0)
    return;
  http_client_t *c = k->o->c;
  buf_wipe_free(&k->out);
  free(k);
  hc__client_unref(c);
}

static void on_timer_closed(uv_handle_t *h)
{
  conn_unref(h->data);
}

static void on_stream_closed(stream_t *s)
{
  conn_unref(s->data);
}

void hc__conn_close(hc_conn_t *k)
{
  if (k->state == HC_CONN_CLOSING)
    return;
  hc_origin_t *o = k->o;
  http_client_t *c = o->c;
  if (k->state == HC_CONN_IDLE)
    hc__idle_remove(k);
  if (k->connecting) {
    k->connecting = 0;
    o->nconnecting--;
  }
  k->state = HC_CONN_CLOSING;
  hc_list_unlink(&k->link);
  o->nconns--;
  c->nconns--;
  if (k->dnsq != NULL) {
    dns_query_cancel(k->dnsq);
    k->dnsq = NULL;
  }
  uv_close((uv_handle_t *)&k->timer, on_timer_closed);
  if (k->s != NULL) {
    k->s->data = k;
    stream_close(k->s, on_stream_closed);
    k->s = NULL;
  }
}

/* Setup failed: the request at the head of the queue (if any) gets err;
 * the others keep waiting for new connections (hc__dispatch). */
static void conn_setup_failed(hc_conn_t *k, int err)
{
  hc_origin_t *o = k->o;
  http_client_t *c = o->c;
  c->st.conns_failed++;
  hc__conn_close(k);
  if (!hc_list_empty(&o->queue)) {
    hc_req_t *r = container_of(o->queue.next, hc_req_t, link);
    hc__dequeue(r);
    hc__req_finish(r, err);
  }
  hc__dispatch_all(c);
}

/* The request failed on this connection, which is not reused. */
static void conn_busy_failed(hc_conn_t *k, int err)
{
  hc_req_t *r = k->req;
  http_client_t *c = k->o->c;
  k->req = NULL;
  if (r != NULL) {
    k->o->ninflight--;
    c->st.inflight--;
  }
  hc__conn_close(k);
  if (r != NULL)
    hc__req_finish(r, err);
  hc__dispatch_all(c);
}

static void on_idle_timeout(uv_timer_t *t)
{
  hc_conn_t *k = t->data;
  http_client_t *c = k->o->c;
  c->st.idle_timeouts++;
  hc__conn_close(k);
  hc__dispatch_all(c);
}

static void go_idle(hc_conn_t *k)
{
  k->state = HC_CONN_IDLE;
  hc__idle_push(k);
  uv_timer_start(&k->timer, on_idle_timeout, k->o->c->opts.idle_timeout_ms, 0);
}

/* ---- reading and parsing ----------------------------------------------- */

/* Transport ends that mean "the server hung up". */
static int map_close_err(int err)
{
  switch (err) {
  case UV_EOF:
  case UV_ECONNRESET:
  case UV_EPIPE:
  case UV_ECONNABORTED:
  case GRANTD_ETLS_CLOSED: return GRANTD_ECONN_CLOSED;
  default: return err;
  }
}

static void complete(hc_conn_t *k, int leftover)
{
  hc_req_t *r = k->req;
  hc_origin_t *o = k->o;
  http_client_t *c = o->c;
  k->req = NULL;
  o->ninflight--;
  c->st.inflight--;
  /* Bytes after the response leave the connection in an unknown state:
   * do not pool it. A response may also overtake its write's callback
   * (the callback comes a loop iteration later); the connection then
   * stays busy, without a request, until on_write pools it. */
  if (!k->keep || leftover || c->closing)
    hc__conn_close(k);
  else if (!k->writing)
    go_idle(k);
  hc__req_finish(r, 0);
  hc__dispatch_all(c);
}

static void on_read(stream_t *s, ssize_t nread, const char *data)
{
  hc_conn_t *k = s->data;
  http_client_t *c = k->o->c;
  if (k->state == HC_CONN_IDLE || (k->state == HC_CONN_BUSY && k->req == NULL)) {
    /* A pooled connection has nothing to say: an EOF or error means the
     * server dropped it; stray bytes make it unusable. */
    c->st.idle_dropped++;
    hc__conn_close(k);
    hc__dispatch_all(c);
    return;
  }
  if (k->state != HC_CONN_BUSY || k->req == NULL)
    return;
  if (nread < 0) {
    if (nread == UV_EOF && llhttp_message_needs_eof(&k->parser)) {
      /* A body delimited by the connection's close ends here. */
      llhttp_finish(&k->parser);
      if (k->complete) {
        k->keep = 0;
        complete(k, 0);
        return;
      }
    }
    conn_busy_failed(k, map_close_err((int)nread));
    return;
  }
  llhttp_errno_t e = llhttp_execute(&k->parser, data, (size_t)nread);
  if (e == HPE_OK)
    return;
  if (e == HPE_PAUSED && k->complete) {
    const char *pos = llhttp_get_error_pos(&k->parser);
    complete(k, pos != NULL && pos < data + nread);
    return;
  }
  int err = k->perr ? k->perr : GRANTD_EHTTP_PARSE;
  conn_busy_failed(k, err);
}

static hc_conn_t *conn_of(llhttp_t *p)
{
  return p->data;
}

static int on_message_begin(llhttp_t *p)
{
  hc_req_t *r = conn_of(p)->req;
  /* Also after an interim 1xx response: start over. */
  buf_reset(&r->hbuf);
  buf_reset(&r->body);
  /* Most answers' headers fit in 488 bytes: one allocation instead of a
   * doubling series from 64 bytes. */
  buf_reserve(&r->hbuf, HC_HBUF_INITIAL);
  r->nh = 0;
  r->hstate = 0;
  return 0;
}

static int fail_cb(llhttp_t *p, int err)
{
  conn_of(p)->perr = err;
  return HPE_USER;
}

static int hbuf_add(llhttp_t *p, hc_req_t *r, const char *at, size_t n)
{
  /* + 2: the NUL that ends this name or value must fit too, so every
   * offset stays below 65536 (hoff[] is 16-bit). */
  if (r->hbuf.len + n + 2 > HTTP_CLIENT_MAX_HEADER_BYTES)
    return fail_cb(p, GRANTD_ETOO_LARGE);
  buf_append(&r->hbuf, at, n);
  return 0;
}

/* Ends the header value being collected: trailing whitespace goes. */
static void end_value(hc_req_t *r)
{
  size_t start = r->hoff[2 * r->nh + 1];
  while (r->hbuf.len > start &&
         (r->hbuf.data[r->hbuf.len - 1] == ' ' || r->hbuf.data[r->hbuf.len - 1] == '\t'))
    r->hbuf.len--;
  buf_putc(&r->hbuf, '\0');
  r->nh++;
  r->hstate = 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
  hc_req_t *r = conn_of(p)->req;
  if (r->hstate == 2)
    end_value(r);
  if (r->hstate == 0) {
    if (r->nh >= HC_MAX_HEADERS)
      return fail_cb(p, GRANTD_ETOO_LARGE);
    r->hoff[2 * r->nh] = (uint16_t)r->hbuf.len;
    r->hstate = 1;
  }
  return hbuf_add(p, r, at, n);
}

static int on_header_field_complete(llhttp_t *p)
{
  hc_req_t *r = conn_of(p)->req;
  if (r->hstate != 1)
    return 0;
  buf_putc(&r->hbuf, '\0');
  r->hoff[2 * r->nh + 1] = (uint16_t)r->hbuf.len;
  r->hstate = 2;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
  hc_req_t *r = conn_of(p)->req;
  if (r->hstate != 2)
    return 0;
  return hbuf_add(p, r, at, n);
}

static int on_header_value_complete(llhttp_t *p)
{
  hc_req_t *r = conn_of(p)->req;
  if (r->hstate == 2)
    end_value(r);
  return 0;
}

static int on_headers_complete(llhttp_t *p)
{
  hc_conn_t *k = conn_of(p);
  hc_req_t *r = k->req;
  if (r->hstate == 2)
    end_value(r);
  r->status = p->status_code;
  r->minor = p->http_minor;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > (uint64_t)k->o->c->opts.max_body) {
    k->perr = GRANTD_ETOO_LARGE;
    return -1;
  }
  /* A declared length is allocated once (bounded by max_body above). */
  if ((p->flags & F_CONTENT_LENGTH) && !r->is_head && p->content_length > 0)
    buf_reserve(&r->body, (size_t)p->content_length);
  return r->is_head && p->status_code >= 200 ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
  hc_conn_t *k = conn_of(p);
  hc_req_t *r = k->req;
  if (r->body.len + n > k->o->c->opts.max_body)
    return fail_cb(p, GRANTD_ETOO_LARGE);
  buf_append(&r->body, at, n);
  return 0;
}

static int on_message_complete(llhttp_t *p)
{
  hc_conn_t *k = conn_of(p);
  /* Interim responses (100 Continue, 103 Early Hints) precede the real
   * one; 101 is never asked for, so it counts as final. */
  if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101)
    return 0;
  k->keep = llhttp_should_keep_alive(p);
  k->complete = 1;
  return HPE_PAUSED;
}

static const llhttp_settings_t *parser_settings(void)
{
  static llhttp_settings_t s;
  static int ready;
  if (!ready) {
    llhttp_settings_init(&s);
    s.on_message_begin = on_message_begin;
    s.on_header_field = on_header_field;
    s.on_header_field_complete = on_header_field_complete;
    s.on_header_value = on_header_value;
    s.on_header_value_complete = on_header_value_complete;
    s.on_headers_complete = on_headers_complete;
    s.on_body = on_body;
    s.on_message_complete = on_message_complete;
    ready = 1;
  }
  return &s;
}

/* ---- writing ----------------------------------------------------------- */

static void on_write(stream_t *s, int status, void *arg)
{
  hc_conn_t *k = arg;
  (void)s;
  k->writing = 0;
  buf_wipe_free(&k->out);
  if (k->state != HC_CONN_BUSY)
    return; /* closing */
  if (k->req != NULL) {
    if (status != 0)
      conn_busy_failed(k, map_close_err(status));
    return;
  }
  /* The response came before this callback (see complete()). */
  http_client_t *c = k->o->c;
  if (status != 0 || c->closing) {
    hc__conn_close(k);
  } else {
    go_idle(k);
    hc__dispatch(k->o);
  }
}

void hc__conn_send(hc_conn_t *k, hc_req_t *r)
{
  hc_origin_t *o = k->o;
  http_client_t *c = o->c;
  if (k->state == HC_CONN_IDLE) {
    hc__idle_remove(k);
    uv_timer_stop(&k->timer);
  }
  k->state = HC_CONN_BUSY;
  k->req = r;
  k->complete = 0;
  k->keep = 0;
  k->perr = 0;
  r->conn = k;
  r->state = HC_REQ_ACTIVE;
  llhttp_init(&k->parser, HTTP_RESPONSE, parser_settings());
  k->parser.data = k;
  /* The bytes move to the connection: a write callback may outlive the
   * request (a timeout closes the connection while the write is queued). */
  k->out = r->out;
  memset(&r->out, 0, sizeof(r->out));
  uv_buf_t b = uv_buf_init(k->out.data, (unsigned)k->out.len);
  int rc = stream_write(k->s, &b, 1, on_write, k);
  if (rc == 0) {
    k->writing = 1;
    r->sent = 1;
    o->ninflight++;
    c->st.inflight++;
    if (k->used) {
      r->reused = 1;
      c->st.reused++;
    }
    k->used = 1;
    return;
  }
  /* Nothing was handed to the transport: the request provably never
   * left, so it may go out once more, on a fresh connection. */
  r->out = k->out;
  memset(&k->out, 0, sizeof(k->out));
  k->req = NULL;
  r->conn = NULL;
  hc__conn_close(k);
  if (!r->retried) {
    r->retried = 1;
    r->need_fresh = 1;
    c->st.retried++;
    hc__enqueue(o, r, 1);
    hc__dispatch(o);
  } else {
    hc__req_finish(r, map_close_err(rc));
  }
}

int hc__conn_alive(hc_conn_t *k)
{
  uv_os_fd_t fd;
  if (k->tcp == NULL || k->tcp->error != 0 || k->s->error != 0 ||
      uv_fileno((uv_handle_t *)stream_tcp_handle(k->tcp), &fd) != 0)
    return 0;
  char b;
  ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* ---- setup ------------------------------------------------------------- */

/* The connection is usable: serve the head of the queue or wait idle. */
static void conn_ready(hc_conn_t *k)
{
  hc_origin_t *o = k->o;
  k->connecting = 0;
  o->nconnecting--;
  uv_timer_stop(&k->timer);
  k->s->data = k;
  int rc = stream_read_start(k->s, on_read);
  if (rc != 0) {
    conn_setup_failed(k, rc);
    return;
  }
  if (hc_list_empty(&o->queue)) {
    go_idle(k);
    return;
  }
  hc_req_t *r = container_of(o->queue.next, hc_req_t, link);
  hc__dequeue(r);
  hc__conn_send(k, r);
}

static void on_setup_timeout(uv_timer_t *t)
{
  conn_setup_failed(t->data, GRANTD_ECONNECT_TIMEOUT);
}

static void on_handshake(stream_t *s, int status, void *arg)
{
  hc_conn_t *k = arg;
  (void)s;
  if (k->state != HC_CONN_HANDSHAKE)
    return; /* closed meanwhile (UV_ECANCELED) */
  if (status != 0) {
    conn_setup_failed(k, status);
    return;
  }
  if (tls_stream_resumed(k->s))
    k->o->c->st.tls_resumed++;
  else
    k->o->c->st.tls_full++;
  conn_ready(k);
}

static void connect_next(hc_conn_t *k);

static void on_connect(stream_t *s, int status, void *arg)
{
  hc_conn_t *k = arg;
  if (k->state != HC_CONN_CONNECTING)
    return; /* being closed (UV_ECANCELED) */
  hc_origin_t *o = k->o;
  if (status != 0) {
    k->last_err = status;
    k->s = NULL;
    stream_close(s, on_stream_closed);
    k->addr_i++;
    connect_next(k);
    return;
  }
  uv_tcp_nodelay(stream_tcp_handle(s), 1);
  k->tcp = s;
  if (!o->https) {
    conn_ready(k);
    return;
  }
  stream_t *t = tls_client_wrap(o->tls, s, o->host, o->port, on_handshake, k);
  if (t == NULL) {
    conn_setup_failed(k, GRANTD_ETLS_HANDSHAKE);
    return;
  }
  k->s = t;
  t->data = k;
  k->state = HC_CONN_HANDSHAKE;
  uv_timer_start(&k->timer, on_setup_timeout, o->c->opts.handshake_timeout_ms, 0);
}

/* Tries the resolved addresses in order; nothing has been sent yet, so
 * moving on to the next address is always safe. Each address is checked
 * against the endpoint policy right before it is dialled (addr_policy.h):
 * a forbidden one is skipped, never connected to. */
static void connect_next(hc_conn_t *k)
{
  hc_origin_t *o = k->o;
  k->state = HC_CONN_CONNECTING;
  while (k->addr_i < k->addrs.n) {
    const struct sockaddr *sa = (const struct sockaddr *)&k->addrs.addr[k->addr_i];
    addr_class_t cls;
    if (addr_policy_check(o->c->opts.endpoint_policy, sa, &cls) != 0) {
      char a[64];
      addr_format(sa, a, sizeof a);
      log_warn("endpoint_forbidden", "host", o->host, "address", a, "class", addr_class_name(cls));
      k->forbidden++;
      k->addr_i++;
      continue;
    }
    k->dialled++;
    stream_t *s = stream_tcp_new(o->c->loop);
    if (s == NULL) {
      k->last_err = UV_ENOMEM;
      k->addr_i++;
      continue;
    }
    s->data = k;
    k->pending++;
    int rc =
      stream_tcp_connect(s, (const struct sockaddr *)&k->addrs.addr[k->addr_i], on_connect, k);
    if (rc == 0) {
      k->s = s;
      return;
    }
    k->last_err = rc;
    stream_close(s, on_stream_closed);
    k->addr_i++;
  }
  if (k->dialled == 0 && k->forbidden > 0) {
    /* Every address the name has is forbidden: say so, not "connect
     * failed". (When allowed addresses were tried and failed, that
     * failure is the one to report; the skipped ones were logged.) */
    o->c->st.forbidden++;
    conn_setup_failed(k, GRANTD_EENDPOINT_FORBIDDEN);
    return;
  }
  log_debug("http_client_connect_failed", "host", o->host, "#port", LOG_I64(o->port), "cause",
            err_name(k->last_err));
  conn_setup_failed(k, GRANTD_ECONNECT);
}

static void on_resolved(int status, const dns_addrs_t *addrs, void *arg)
{
  hc_conn_t *k = arg;
  k->dnsq = NULL;
  if (status != 0) {
    conn_setup_failed(k, GRANTD_EDNS);
    return;
  }
  k->addrs = *addrs;
  k->addr_i = 0;
  connect_next(k);
}

/* The zero timer: setup starts outside the dispatching caller's stack. */
static void on_kick(uv_timer_t *t)
{
  hc_conn_t *k = t->data;
  hc_origin_t *o = k->o;
  http_client_t *c = o->c;
  uv_timer_start(&k->timer, on_setup_timeout, c->opts.connect_timeout_ms, 0);
  if (dns_cache_lookup(c->dns, o->host, o->port, &k->addrs) == 0) {
    k->addr_i = 0;
    connect_next(k);
    return;
  }
  k->state = HC_CONN_RESOLVING;
  int rc = dns_cache_resolve(c->dns, o->host, o->port, on_resolved, k, &k->dnsq);
  if (rc != 0) {
    k->dnsq = NULL;
    conn_setup_failed(k, GRANTD_EDNS);
  }
}

void hc__conn_open(hc_origin_t *o)
{
  http_client_t *c = o->c;
  hc_conn_t *k = xcalloc(1, sizeof(*k));
  k->o = o;
  k->state = HC_CONN_START;
  k->connecting = 1;
  hc_list_init(&k->idle_link);
  hc_list_push_back(&o->conns, &k->link);
  o->nconns++;
  o->nconnecting++;
  c->nconns++;
  c->pending++;
  c->st.conns_opened++;
  uv_timer_init(c->loop, &k->timer);
  k->timer.data = k;
  k->pending = 1;
  uv_timer_start(&k->timer, on_kick, 0, 0);
}
