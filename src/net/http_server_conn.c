/*
 * http_server_conn.c - one inbound HTTP/1.1 connection: llhttp parsing,
 * the ordered response queue, timeouts and back-pressure (see
 * http_server.h for the contract, http_server_int.h for the structures).
 *
 * Parsing: llhttp's on_message_complete returns HPE_PAUSED, so each
 * llhttp_execute() stops right after one request; the handler is then called
 * outside the parser and parsing resumes at llhttp_get_error_pos(). User
 * code therefore never runs inside llhttp (except the documented, read-only
 * on_headers hook), and a handler that responds at once, or makes the
 * connection close, cannot pull the parser's state from under it.
 *
 * Ordering: every complete request is appended to the connection's queue
 * and leaves it only once its response has been written. Responses are
 * handed to the stream strictly from the head, so a late first handler
 * holds back the responses of later pipelined requests.
 *
 * Back-pressure: while max_pipelined requests sit in the queue, the rest of
 * the input is kept (copied) and reading stops; writes completing resume it.
 *
 * Timer: one uv_timer per connection with a role (http__timer_t) derived
 * from the state: a request arriving (request timeout -> 408), waiting for
 * nothing but the client (idle timeout -> close), handlers running (off),
 * lingering after a final error response (drain input, then close).
 *
 * Memory: nothing is freed before the stream's and the timer's close
 * callbacks have both run; requests still pending in a handler when the
 * connection closes are detached (req->conn = NULL) and freed by
 * http_respond().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "net/http_server_int.h"

/* Headers per request; more is answered 431 like an oversized block. */
#define MAX_HEADERS 128
/* How long input is drained after a server-initiated close, at most. */
#define LINGER_MS 2000
/* A recycled request keeps body buffers up to this size. */
#define SPARE_BODY_MAX (64 * 1024)

static void conn_arm(http__conn_t *c);
static void conn_fail(http__conn_t *c, int status);
static void conn_flush(http__conn_t *c);
static void on_timer(uv_timer_t *t);

/* ---- requests ------------------------------------------------------------ */

static http_req_t *req_new(http__conn_t *c)
{
  http_req_t *r = c->spare;
  if (r != NULL)
    c->spare = NULL;
  else
    r = xcalloc(1, sizeof(*r));
  r->conn = c;
  r->st = HTTP__R_PARSING;
  r->body_limit = c->srv->o.max_body_bytes;
  r->start_ns = uv_hrtime();
  r->method = "";
  r->path = "";
  return r;
}

void http__req_release(http__conn_t *c, http_req_t *r)
{
  if (r == NULL)
    return;
  /* Bodies hold secrets (client credentials, tokens): wipe what was used. */
  if (r->body.data != NULL)
    mem_wipe(r->body.data, r->body.len);
  if (c != NULL && c->state == HTTP__C_OPEN && c->spare == NULL &&
      r->body.cap <= SPARE_BODY_MAX) {
    arena_reset(&r->arena);
    arena_t arena = r->arena;
    buf_t body = r->body;
    buf_reset(&body);
    memset(r, 0, sizeof(*r));
    r->arena = arena;
    r->body = body;
    c->spare = r;
    return;
  }
  buf_free(&r->body);
  arena_free(&r->arena);
  free(r);
}

static const char *req_dup(http_req_t *r, const char *p, size_t n)
{
  return n > 0 ? arena_strndup(&r->arena, p, n) : "";
}

static void queue_push(http__conn_t *c, http_req_t *r)
{
  r->next = NULL;
  if (c->qtail != NULL)
    c->qtail->next = r;
  else
    c->qhead = r;
  c->qtail = r;
  c->nqueued++;
}

/* ---- llhttp callbacks ---------------------------------------------------- */

static int header_budget(http__conn_t *c, size_t n)
{
  c->header_bytes += n;
  if (c->header_bytes > c->srv->o.max_header_bytes) {
    c->parse_status = 431;
    return HPE_USER;
  }
  return 0;
}

static int on_message_begin(llhttp_t *p)
{
  http__conn_t *c = p->data;
  c->cur = req_new(c);
  c->header_bytes = 0;
  buf_reset(&c->url);
  buf_reset(&c->field);
  buf_reset(&c->value);
  conn_arm(c);
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
  http__conn_t *c = p->data;
  if (header_budget(c, n))
    return HPE_USER;
  buf_append(&c->url, at, n);
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
  http__conn_t *c = p->data;
  if (header_budget(c, n))
    return HPE_USER;
  buf_append(&c->field, at, n);
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
  http__conn_t *c = p->data;
  if (header_budget(c, n))
    return HPE_USER;
  buf_append(&c->value, at, n);
  return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
  http__conn_t *c = p->data;
  http_req_t *r = c->cur;
  /* ": " and CRLF count towards the limit like the bytes around them. */
  if (header_budget(c, 4))
    return HPE_USER;
  if (r->nheaders == MAX_HEADERS) {
    c->parse_status = 431;
    return HPE_USER;
  }
  if (r->nheaders == r->cap_headers) {
    size_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
    http_header_t *h = arena_alloc(&r->arena, cap * sizeof(*h));
    if (r->nheaders > 0)
      memcpy(h, r->headers, r->nheaders * sizeof(*h));
    r->headers = h;
    r->cap_headers = cap;
  }
  size_t vn = c->value.len;
  while (vn > 0 && (c->value.data[vn - 1] == ' ' || c->value.data[vn - 1] == '\t'))
    vn--;
  http_header_t *h = &r->headers[r->nheaders++];
  h->name = req_dup(r, c->field.data, c->field.len);
  h->name_len = c->field.len;
  h->value = req_dup(r, c->value.data, vn);
  h->value_len = vn;
  buf_reset(&c->field);
  buf_reset(&c->value);
  return 0;
}

static void on_continue_written(stream_t *s, int status, void *arg)
{
  /* A failure shows up again on the next read or response write. */
  (void)s;
  (void)status;
  (void)arg;
}

static int on_headers_complete(llhttp_t *p)
{
  http__conn_t *c = p->data;
  http_req_t *r = c->cur;
  http_server_t *srv = c->srv;
  if (header_budget(c, 2))
    return -1;
  r->method = llhttp_method_name((llhttp_method_t)p->method);
  r->minor = p->http_major == 1 ? p->http_minor : 0;
  r->keep_alive = llhttp_should_keep_alive(p);
  const char *u = c->url.data != NULL ? c->url.data : "";
  const char *q = memchr(u, '?', c->url.len);
  if (q != NULL) {
    r->path = req_dup(r, u, (size_t)(q - u));
    r->query = req_dup(r, q + 1, c->url.len - (size_t)(q - u) - 1);
  } else {
    r->path = req_dup(r, u, c->url.len);
    r->query = NULL;
  }
  r->headers_done = 1;
  if (p->upgrade) {
    if (p->method == HTTP_CONNECT) {
      c->parse_status = 400;
      return -1;
    }
    /* "Upgrade: h2c" and the like are offers a server may ignore (RFC 9110
     * 7.8); clearing the flag makes llhttp read the body normally. */
    p->upgrade = 0;
  }
  if (srv->o.on_headers != NULL)
    srv->o.on_headers(r, srv->o.handler_arg);
  int has_len = (p->flags & F_CONTENT_LENGTH) != 0 && !(p->flags & F_CHUNKED);
  if (has_len && p->content_length > r->body_limit) {
    c->parse_status = 413;
    return -1;
  }
  if (has_len && p->content_length > 0)
    buf_reserve(&r->body, (size_t)p->content_length);
  int has_body = (p->flags & F_CHUNKED) || (has_len && p->content_length > 0);
  const char *expect = http_req_header(r, "expect");
  if (expect != NULL && has_body && r->minor >= 1 && c->npending == 0 &&
      strcasecmp(expect, "100-continue") == 0) {
    /* No response is outstanding, so the interim one cannot overtake any.
     * With one outstanding we say nothing: the client sends the body after
     * its own delay. */
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
    stream_write(c->s, &b, 1, on_continue_written, NULL);
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
  http__conn_t *c = p->data;
  http_req_t *r = c->cur;
  if (n > r->body_limit - r->body.len) {
    c->parse_status = 413;
    return HPE_USER;
  }
  buf_append(&r->body, at, n);
  return 0;
}

static int on_message_complete(llhttp_t *p)
{
  http__conn_t *c = p->data;
  http_req_t *r = c->cur;
  c->cur = NULL;
  r->st = HTTP__R_PENDING;
  queue_push(c, r);
  c->npending++;
  if (!r->keep_alive || c->srv->closing)
    c->stop_parsing = 1;
  c->completed = r;
  return HPE_PAUSED;
}

const llhttp_settings_t http__settings = {
  .on_message_begin = on_message_begin,
  .on_url = on_url,
  .on_header_field = on_header_field,
  .on_header_value = on_header_value,
  .on_header_value_complete = on_header_value_complete,
  .on_headers_complete = on_headers_complete,
  .on_body = on_body,
  .on_message_complete = on_message_complete,
};

/* ---- reading and parsing ------------------------------------------------- */

static void on_read(stream_t *s, ssize_t nread, const char *data);

static void conn_read_start(http__conn_t *c)
{
  if (c->reading || c->state == HTTP__C_CLOSING)
    return;
  if (stream_read_start(c->s, on_read) != 0) {
    http__conn_close(c);
    return;
  }
  c->reading = 1;
}

static void conn_read_stop(http__conn_t *c)
{
  if (!c->reading)
    return;
  stream_read_stop(c->s);
  c->reading = 0;
}

static void conn_parse(http__conn_t *c, const char *data, size_t len)
{
  http_server_t *srv = c->srv;
  while (len > 0 && c->state == HTTP__C_OPEN && !c->stop_parsing) {
    if (c->cur == NULL && c->nqueued >= srv->o.max_pipelined) {
      /* Enough answers owed: keep the rest and stop reading until some
       * responses have been written. */
      buf_append(&c->saved, data, len);
      conn_read_stop(c);
      return;
    }
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    if (e == HPE_OK)
      return;
    if (e != HPE_PAUSED) {
      conn_fail(c, c->parse_status != 0 ? c->parse_status : 400);
      return;
    }
    const char *pos = llhttp_get_error_pos(&c->parser);
    llhttp_resume(&c->parser);
    len -= (size_t)(pos - data);
    data = pos;
    http_req_t *r = c->completed;
    c->completed = NULL;
    conn_arm(c);
    srv->o.handler(r, srv->o.handler_arg);
  }
}

/* Parses input held back by back-pressure, then reads again. */
static void conn_resume(http__conn_t *c)
{
  if (c->state != HTTP__C_OPEN || c->nqueued >= c->srv->o.max_pipelined)
    return;
  if (c->saved.len > 0) {
    buf_t in = c->saved;
    c->saved = (buf_t)BUF_INIT;
    if (!c->stop_parsing)
      conn_parse(c, in.data, in.len);
    buf_wipe_free(&in);
  }
  if (c->saved.len == 0)
    conn_read_start(c);
}

static void on_read(stream_t *s, ssize_t nread, const char *data)
{
  http__conn_t *c = s->data;
  if (nread < 0) {
    c->reading = 0;
    http__conn_close(c); /* EOF or error: the client is gone */
    return;
  }
  if (c->state != HTTP__C_OPEN || c->stop_parsing)
    return; /* lingering or finishing: input is discarded */
  conn_parse(c, data, (size_t)nread);
}

/* ---- responses ----------------------------------------------------------- */

static void conn_finish(http__conn_t *c)
{
  if (!c->linger || c->srv->closing) {
    http__conn_close(c);
    return;
  }
  /* Closing with unread input would make the kernel send a reset, which
   * can destroy the error response before the client reads it: drain
   * until the client closes, for a short while. */
  c->state = HTTP__C_LINGER;
  c->tkind = HTTP__T_LINGER;
  unsigned ms = c->srv->o.request_timeout_ms < LINGER_MS ? c->srv->o.request_timeout_ms
                                                         : LINGER_MS;
  uv_timer_start(&c->timer, on_timer, ms, 0);
  conn_read_start(c);
}

static void on_written(stream_t *s, int status, void *arg)
{
  http_req_t *r = arg;
  http__conn_t *c = s->data;
  (void)status;
  /* Writes complete in order, so r is the head of the queue. */
  c->qhead = r->next;
  if (c->qhead == NULL)
    c->qtail = NULL;
  c->nqueued--;
  int close_after = r->close_after;
  http__req_release(c, r);
  if (c->state == HTTP__C_CLOSING)
    return;
  if (status < 0) {
    http__conn_close(c);
    return;
  }
  if (close_after) {
    conn_finish(c);
    return;
  }
  if (c->srv->closing && c->qhead == NULL) {
    http__conn_close(c); /* drained for shutdown */
    return;
  }
  conn_resume(c);
}

static void conn_flush(http__conn_t *c)
{
  for (http_req_t *r = c->qhead; r != NULL; r = r->next) {
    if (r->st == HTTP__R_WRITING)
      continue;
    if (r->st != HTTP__R_READY)
      return;
    r->st = HTTP__R_WRITING;
    uv_buf_t b = uv_buf_init(r->resp, (unsigned)r->resp_len);
    if (stream_write(c->s, &b, 1, on_written, r) != 0) {
      r->st = HTTP__R_READY; /* no callback will come: freed by close */
      http__conn_close(c);
      return;
    }
    if (r->close_after)
      return;
  }
}

void http__conn_responded(http__conn_t *c, http_req_t *r)
{
  r->st = HTTP__R_READY;
  c->npending--;
  if (r->close_after)
    c->stop_parsing = 1;
  conn_flush(c);
  conn_arm(c);
}

static void conn_fail(http__conn_t *c, int status)
{
  const char *code, *msg;
  switch (status) {
  case 408: code = "request_timeout"; msg = "the request was not received in time"; break;
  case 413: code = "payload_too_large"; msg = "the request body is too large"; break;
  case 431: code = "headers_too_large"; msg = "the request headers are too large"; break;
  case 503: code = "too_many_connections"; msg = "too many open connections"; break;
  default: status = 400; code = "bad_request"; msg = "malformed HTTP request"; break;
  }
  c->stop_parsing = 1;
  c->linger = 1;
  http_req_t *r = c->cur;
  c->cur = NULL;
  if (r == NULL)
    r = req_new(c);
  char body[160];
  int n = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"message\":\"%s\"}", code, msg);
  http__build_response(r, status, "application/json", body, (size_t)n, NULL, 1);
  r->close_after = 1;
  r->st = HTTP__R_READY;
  http__report(c->srv, r->headers_done ? r : NULL, status);
  queue_push(c, r);
  buf_wipe_free(&c->saved);
  conn_flush(c);
  conn_arm(c);
}

/* ---- timer --------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
  http__conn_t *c = t->data;
  http__timer_t k = c->tkind;
  c->tkind = HTTP__T_NONE;
  if (k == HTTP__T_REQUEST)
    conn_fail(c, 408);
  else
    http__conn_close(c);
}

static void conn_arm(http__conn_t *c)
{
  if (c->state != HTTP__C_OPEN)
    return;
  http__timer_t k;
  uint64_t ms = 0;
  if (c->cur != NULL) {
    k = HTTP__T_REQUEST;
    ms = c->srv->o.request_timeout_ms;
  } else if (c->npending > 0) {
    k = HTTP__T_NONE;
  } else {
    k = HTTP__T_IDLE;
    ms = c->srv->o.idle_timeout_ms;
  }
  if (k == c->tkind)
    return;
  c->tkind = k;
  if (k == HTTP__T_NONE)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---- life cycle ---------------------------------------------------------- */

static void conn_part_closed(http__conn_t *c)
{
  if (--c->closes_pending > 0)
    return;
  buf_wipe_free(&c->url);
  buf_wipe_free(&c->field);
  buf_wipe_free(&c->value);
  buf_wipe_free(&c->saved);
  http__server_conn_gone(c->srv, c); /* frees c */
}

static void on_stream_closed(stream_t *s) { conn_part_closed(s->data); }
static void on_timer_closed(uv_handle_t *h) { conn_part_closed(h->data); }

void http__conn_start(http_server_t *srv, stream_t *s, int refuse)
{
  http__conn_t *c = xcalloc(1, sizeof(*c));
  c->srv = srv;
  c->s = s;
  s->data = c;
  c->next = srv->conns;
  if (srv->conns != NULL)
    srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  if (refuse) {
    c->refused = 1;
    srv->nrefused++;
  }
  uv_timer_init(srv->loop, &c->timer);
  c->timer.data = c;
  llhttp_init(&c->parser, HTTP_REQUEST, &http__settings);
  c->parser.data = c;
  c->state = HTTP__C_OPEN;
  conn_read_start(c);
  if (c->state != HTTP__C_OPEN)
    return;
  if (refuse)
    conn_fail(c, 503);
  else
    conn_arm(c);
}

void http__conn_drain(http__conn_t *c)
{
  if (c->state == HTTP__C_LINGER || c->nqueued == 0) {
    http__conn_close(c); /* idle, or only part of a request read */
    return;
  }
  if (c->state != HTTP__C_OPEN)
    return;
  c->stop_parsing = 1;
  http__req_release(NULL, c->cur);
  c->cur = NULL;
  buf_wipe_free(&c->saved);
  conn_arm(c);
}

void http__conn_close(http__conn_t *c)
{
  if (c->state == HTTP__C_CLOSING)
    return;
  c->state = HTTP__C_CLOSING;
  http__req_release(NULL, c->cur);
  c->cur = NULL;
  http__req_release(NULL, c->spare);
  c->spare = NULL;
  /* Keep only what the stream still owns (writes in flight, completed with
   * UV_ECANCELED by the close); detach what a handler still owns. */
  http_req_t *keep = NULL, **tail = &keep, *last = NULL;
  unsigned n = 0;
  for (http_req_t *r = c->qhead, *next; r != NULL; r = next) {
    next = r->next;
    r->next = NULL;
    if (r->st == HTTP__R_WRITING) {
      *tail = r;
      tail = &r->next;
      last = r;
      n++;
    } else if (r->st == HTTP__R_PENDING) {
      r->conn = NULL;
      r->gone = 1;
    } else {
      http__req_release(NULL, r);
    }
  }
  c->qhead = keep;
  c->qtail = last;
  c->nqueued = n;
  c->npending = 0;
  c->reading = 0;
  c->closes_pending = 2;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
  stream_close(c->s, on_stream_closed);
}
