/*
 * http_server.c - listener, server life cycle, request accessors and
 * response building of the inbound HTTP/1.1 server (see http_server.h).
 *
 * One connection's state machine (parsing, response ordering, timeouts,
 * back-pressure) lives in http_server_conn.c. This file owns what is shared
 * by every connection: the listening socket, the option defaults, the
 * shutdown sequence and the wire format of responses.
 *
 * Shutdown counts open handles (listener, shutdown timer, connections) and
 * calls the user's callback when the last one has closed, so the callback
 * always runs from a libuv close callback and never from inside
 * http_server_close().
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/mem.h"
#include "net/http_server_int.h"

#define DEF_MAX_HEADER (16 * 1024)
#define DEF_MAX_BODY (64 * 1024)
#define DEF_MAX_CONNS 1024
#define DEF_IDLE_MS 60000
#define DEF_REQUEST_MS 10000
#define DEF_PIPELINED 64
#define DEF_MAX_BUFFERED ((size_t)256 << 20)

/* Connections being refused (503) beyond this many are closed without a
 * response: refusing costs a little memory for a short while, and an
 * overload must not turn into unbounded refusals. */
#define REFUSED_MIN 16

/* ---- accessors ---------------------------------------------------------- */

const char *http_req_method(const http_req_t *req)
{
  return req->method;
}
const char *http_req_path(const http_req_t *req)
{
  return req->path;
}
const char *http_req_query(const http_req_t *req)
{
  return req->query;
}
int http_req_minor_version(const http_req_t *req)
{
  return req->minor;
}
int http_req_keep_alive(const http_req_t *req)
{
  return req->keep_alive;
}
int http_req_is_gone(const http_req_t *req)
{
  return req->gone;
}
uint64_t http_req_start_ns(const http_req_t *req)
{
  return req->start_ns;
}
stream_t *http_req_stream(const http_req_t *req)
{
  return req->conn != NULL ? req->conn->s : NULL;
}
arena_t *http_req_arena(http_req_t *req)
{
  return &req->arena;
}
void *http_req_data(const http_req_t *req)
{
  return req->data;
}
void http_req_set_data(http_req_t *req, void *data)
{
  req->data = data;
}
void http_req_set_body_limit(http_req_t *req, size_t limit)
{
  req->body_limit = limit;
}
int http_req_has_body(const http_req_t *req)
{
  return req->has_body;
}
void http_req_stream_body(http_req_t *req, http_body_cb cb, void *arg)
{
  req->sink = cb;
  req->sink_arg = arg;
}
void http_req_pause_body(http_req_t *req)
{
  http__conn_t *c = req->conn;
  if (c != NULL && c->cur == req && req->sink != NULL)
    http__conn_pause(c);
}
void http_req_resume_body(http_req_t *req)
{
  http__conn_t *c = req->conn;
  if (c != NULL && c->cur == req && req->sink != NULL)
    http__conn_unpause(c);
}
int http_req_hold(http_req_t *req, size_t n)
{
  if (req->conn == NULL || n == 0)
    return 0; /* detached: nothing is counted any more */
  return http__req_hold(req, n);
}
void http_req_end_body(http_req_t *req, int status)
{
  http__conn_t *c = req->conn;
  if (c == NULL || c->cur != req || req->sink == NULL)
    return;
  if (req->in_sink)
    req->end_status = status; /* on_body stops the parser after the sink */
  else
    http__conn_fail_cur(c, status);
}
size_t http_server_buffered_bytes(const http_server_t *srv)
{
  return srv->buffered;
}

void http_req_reject(http_req_t *req, int status, const char *content_type, const char *body,
                     size_t len, const char *extra_headers)
{
  /* Sent by the connection once on_headers returns (http_server_conn.c). */
  http__build_response(req, status, content_type, body, len, extra_headers, 1);
  req->rejected = 1;
}

const http_header_t *http_req_headers(const http_req_t *req, size_t *n)
{
  *n = req->nheaders;
  return req->headers;
}

const char *http_req_header(const http_req_t *req, const char *name)
{
  size_t n = strlen(name);
  for (size_t i = 0; i < req->nheaders; i++) {
    const http_header_t *h = &req->headers[i];
    if (h->name_len == n && strncasecmp(h->name, name, n) == 0)
      return h->value;
  }
  return NULL;
}

const char *http_req_body(const http_req_t *req, size_t *len)
{
  if (len != NULL)
    *len = req->body.len;
  return req->body.len > 0 ? req->body.data : "";
}

/* ---- responses ----------------------------------------------------------- */

const char *http_status_text(int status)
{
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Payload Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 417: return "Expectation Failed";
  case 422: return "Unprocessable Entity";
  case 425: return "Too Early";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Unknown";
  }
}

static char *put(char *p, const char *s, size_t n)
{
  memcpy(p, s, n);
  return p + n;
}

/* Writes v in decimal at p (at most 20 digits); returns the end. */
static char *put_dec(char *p, uint64_t v)
{
  char t[20];
  int n = 0;
  do {
    t[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0)
    *p++ = t[--n];
  return p;
}

void http__build_response(http_req_t *req, int status, const char *content_type, const char *body,
                          size_t len, const char *extra_headers, int close)
{
  if (status < 100 || status > 999)
    status = 500;
  const char *reason = http_status_text(status);
  size_t ctlen = content_type != NULL ? strlen(content_type) : 0;
  size_t xlen = extra_headers != NULL ? strlen(extra_headers) : 0;
  /* HTTP/1.0 clients only keep the connection when told so explicitly. */
  const char *conn_hdr = close             ? "Connection: close\r\n"
                         : req->minor == 0 ? "Connection: keep-alive\r\n"
                                           : "";
  /* Built without snprintf (it showed in the token-read profile). */
  char head[16] = "HTTP/1.1 ";
  int hn = 9 + (int)(put_dec(head + 9, (uint64_t)status) - (head + 9));
  head[hn++] = ' ';
  char cl[48] = "Content-Length: ";
  char *ce = put_dec(cl + 16, (uint64_t)len);
  *ce++ = '\r';
  *ce++ = '\n';
  int cln = (int)(ce - cl);
  size_t total = (size_t)hn + strlen(reason) + 2 + (ctlen ? 14 + ctlen + 2 : 0) + (size_t)cln +
                 strlen(conn_hdr) + xlen + 2 + len;
  char *p = arena_alloc(&req->arena, total);
  char *w = p;
  w = put(w, head, (size_t)hn);
  w = put(w, reason, strlen(reason));
  w = put(w, "\r\n", 2);
  if (ctlen) {
    w = put(w, "Content-Type: ", 14);
    w = put(w, content_type, ctlen);
    w = put(w, "\r\n", 2);
  }
  w = put(w, cl, (size_t)cln);
  w = put(w, conn_hdr, strlen(conn_hdr));
  if (xlen)
    w = put(w, extra_headers, xlen);
  w = put(w, "\r\n", 2);
  if (len)
    w = put(w, body, len);
  req->resp = p;
  req->resp_len = (size_t)(w - p);
  req->status = status;
}

void http__report(http_server_t *srv, const http_req_t *req, int status)
{
  if (srv->o.on_response == NULL)
    return;
  uint64_t lat = 0;
  if (req != NULL) {
    uint64_t now = uv_hrtime();
    lat = now > req->start_ns ? (now - req->start_ns) / 1000 : 0;
  }
  srv->o.on_response(req, status, lat, srv->o.handler_arg);
}

void http_respond_ex(http_req_t *req, int status, const char *content_type, const char *body,
                     size_t len, const char *extra_headers)
{
  http__conn_t *c = req->conn;
  if (c == NULL) {
    /* The client went away while the handler ran: drop the answer. */
    http__req_release(NULL, req);
    return;
  }
  /* When shutting down, only the last request already read closes the
   * connection, so pipelined requests ahead of it are still answered. */
  int close = !req->keep_alive || (c->srv->closing && req->next == NULL);
  http__build_response(req, status, content_type, body, len, extra_headers, close);
  req->close_after = close;
  http__report(c->srv, req, req->status);
  http__conn_responded(c, req);
}

void http_respond(http_req_t *req, int status, const char *content_type, const char *body,
                  size_t len)
{
  http_respond_ex(req, status, content_type, body, len, NULL);
}

/* ---- listener ------------------------------------------------------------ */

static void maybe_finish(http_server_t *srv)
{
  if (!srv->closing || srv->handles_pending > 0 || srv->conns != NULL)
    return;
  http_server_close_cb cb = srv->close_cb;
  void *arg = srv->close_arg;
  free(srv);
  if (cb != NULL)
    cb(arg);
}

static void on_handle_closed(uv_handle_t *h)
{
  http_server_t *srv = h->data;
  srv->handles_pending--;
  maybe_finish(srv);
}

void http__server_conn_gone(http_server_t *srv, http__conn_t *c)
{
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  srv->nconns--;
  if (c->refused)
    srv->nrefused--;
  free(c);
  if (srv->closing && srv->conns == NULL && srv->close_timer_open) {
    /* Every connection finished before the deadline. */
    srv->close_timer_open = 0;
    uv_close((uv_handle_t *)&srv->close_timer, on_handle_closed);
  }
  maybe_finish(srv);
}

static void on_connection(uv_stream_t *server, int status)
{
  http_server_t *srv = server->data;
  if (status < 0 || srv->closing)
    return; /* e.g. EMFILE: libuv retries on the next readiness */
  stream_t *tcp = stream_tcp_new(srv->loop);
  if (tcp == NULL)
    return;
  if (uv_accept(server, (uv_stream_t *)stream_tcp_handle(tcp)) != 0) {
    stream_close(tcp, NULL);
    return;
  }
  uv_tcp_nodelay(stream_tcp_handle(tcp), 1);
  int refuse = srv->nconns - srv->nrefused >= srv->o.max_connections;
  unsigned refused_cap = srv->o.max_connections / 4;
  if (refused_cap < REFUSED_MIN)
    refused_cap = REFUSED_MIN;
  if (refuse && srv->nrefused >= refused_cap) {
    stream_close(tcp, NULL);
    return;
  }
  stream_t *s = tcp;
  if (srv->o.wrap != NULL) {
    s = srv->o.wrap(srv->o.wrap_arg, tcp);
    if (s == NULL) {
      stream_close(tcp, NULL);
      return;
    }
  }
  http__conn_start(srv, s, refuse);
}

int http_server_start(uv_loop_t *loop, const http_server_opts_t *opts, http_server_t **out)
{
  if (opts == NULL || opts->handler == NULL)
    return GRANTD_EINVALID;
  const char *host = opts->host != NULL ? opts->host : "127.0.0.1";
  struct sockaddr_storage ss;
  if (uv_ip4_addr(host, (int)opts->port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, (int)opts->port, (struct sockaddr_in6 *)&ss) != 0)
    return GRANTD_EINVALID;
  if (opts->port > 65535)
    return GRANTD_EINVALID;

  http_server_t *srv = xcalloc(1, sizeof(*srv));
  srv->loop = loop;
  srv->o = *opts;
  srv->o.host = NULL; /* not needed after bind; the caller's string */
  if (srv->o.max_header_bytes == 0)
    srv->o.max_header_bytes = DEF_MAX_HEADER;
  if (srv->o.max_body_bytes == 0)
    srv->o.max_body_bytes = DEF_MAX_BODY;
  if (srv->o.max_connections == 0)
    srv->o.max_connections = DEF_MAX_CONNS;
  if (srv->o.idle_timeout_ms == 0)
    srv->o.idle_timeout_ms = DEF_IDLE_MS;
  if (srv->o.request_timeout_ms == 0)
    srv->o.request_timeout_ms = DEF_REQUEST_MS;
  if (srv->o.max_pipelined == 0)
    srv->o.max_pipelined = DEF_PIPELINED;
  if (srv->o.max_buffered_bytes == 0)
    srv->o.max_buffered_bytes = DEF_MAX_BUFFERED;

  int r = uv_tcp_init(loop, &srv->listener);
  if (r != 0)
    goto fail_free;
  srv->listener.data = srv;
  r = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
  if (r != 0)
    goto fail_close;
  r = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
  if (r != 0)
    goto fail_close;
  struct sockaddr_storage bound;
  int blen = sizeof(bound);
  r = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen);
  if (r != 0)
    goto fail_close;
  srv->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  srv->listening = 1;
  srv->handles_pending = 1;
  *out = srv;
  return 0;

fail_close:
  /* The handle is registered with the loop: it must be closed, and srv
   * freed only once libuv is done with it. closing makes maybe_finish()
   * free it without calling any user callback. */
  srv->closing = 1;
  srv->handles_pending = 1;
  uv_close((uv_handle_t *)&srv->listener, on_handle_closed);
  return r;
fail_free:
  free(srv);
  return r;
}

unsigned http_server_port(const http_server_t *srv)
{
  return srv->port;
}
unsigned http_server_connections(const http_server_t *srv)
{
  return srv->nconns;
}

void http_server_stop_accepting(http_server_t *srv)
{
  if (!srv->listening)
    return;
  srv->listening = 0;
  uv_close((uv_handle_t *)&srv->listener, on_handle_closed);
}

static void on_close_timeout(uv_timer_t *t)
{
  http_server_t *srv = t->data;
  srv->close_timer_open = 0;
  uv_close((uv_handle_t *)t, on_handle_closed);
  /* Closing a connection may unlink it, so always take the head. */
  for (http__conn_t *c = srv->conns, *next; c != NULL; c = next) {
    next = c->next;
    http__conn_close(c);
  }
}

void http_server_close(http_server_t *srv, unsigned timeout_ms, http_server_close_cb cb, void *arg)
{
  if (srv->closing)
    return;
  http_server_stop_accepting(srv);
  srv->closing = 1;
  srv->close_cb = cb;
  srv->close_arg = arg;
  /* Drain first: it may close connections, and the list may shrink. */
  for (http__conn_t *c = srv->conns, *next; c != NULL; c = next) {
    next = c->next;
    http__conn_drain(c);
  }
  if (srv->conns == NULL)
    return; /* the listener's close callback finishes */
  uv_timer_init(srv->loop, &srv->close_timer);
  srv->close_timer.data = srv;
  srv->close_timer_open = 1;
  srv->handles_pending++;
  uv_timer_start(&srv->close_timer, on_close_timeout, timeout_ms, 0);
}
