/*
 * http_server_parse.c - the request side of an inbound connection: request
 * objects (allocation, recycling, body accounting against the server's
 * max_buffered_bytes) and the llhttp callbacks that fill them. The
 * connection (http_server_conn.c) runs llhttp_execute and owns everything
 * else; see that file for how parsing pauses after each request.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "net/http_server_int.h"

/* Headers per request; more is answered 431 like an oversized block. */
#define MAX_HEADERS 128
/* A recycled request keeps body buffers up to this size. */
#define SPARE_BODY_MAX (64 * 1024)

/* ---- requests ------------------------------------------------------------ */

http_req_t *http__req_new(http__conn_t *c)
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

void http__req_unhold(http_req_t *r)
{
  if (r->held > 0 && r->conn != NULL)
    r->conn->srv->buffered -= r->held;
  r->held = 0;
}

int http__req_hold(http_req_t *r, size_t n)
{
  http_server_t *srv = r->conn->srv;
  if (n > srv->o.max_buffered_bytes - srv->buffered)
    return -1;
  srv->buffered += n;
  r->held += n;
  return 0;
}

void http__req_stream_abort(http_req_t *r)
{
  http_body_cb sink = r->sink;
  if (sink == NULL)
    return;
  r->sink = NULL;
  sink(r, NULL, 0, r->sink_arg);
}

void http__req_release(http__conn_t *c, http_req_t *r)
{
  if (r == NULL)
    return;
  http__req_stream_abort(r);
  http__req_unhold(r);
  /* Bodies hold secrets (client credentials, tokens): wipe what was used. */
  if (r->body.data != NULL)
    mem_wipe(r->body.data, r->body.len);
  if (c != NULL && c->state == HTTP__C_OPEN && c->spare == NULL && r->body.cap <= SPARE_BODY_MAX) {
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

void http__queue_push(http__conn_t *c, http_req_t *r)
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
  c->cur = http__req_new(c);
  c->header_bytes = 0;
  buf_reset(&c->url);
  buf_reset(&c->field);
  buf_reset(&c->value);
  http__conn_arm(c);
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
  int has_len = (p->flags & F_CONTENT_LENGTH) != 0 && !(p->flags & F_CHUNKED);
  int has_body = (p->flags & F_CHUNKED) || (has_len && p->content_length > 0);
  r->has_body = has_body;
  if (srv->o.on_headers != NULL)
    srv->o.on_headers(r, srv->o.handler_arg);
  if (r->rejected)
    return -1; /* answered from on_headers: conn_parse sends it */
  if (has_len && p->content_length > r->body_limit) {
    c->parse_status = 413;
    return -1;
  }
  if (has_len && p->content_length > 0 && r->sink == NULL) {
    /* The whole declared body is reserved now, so it counts now. */
    if (http__req_hold(r, (size_t)p->content_length) != 0) {
      c->parse_status = 503;
      return -1;
    }
    buf_reserve(&r->body, (size_t)p->content_length);
  }
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
  if (r->sink != NULL) {
    if (n > r->body_limit - r->streamed) {
      c->parse_status = 413;
      return HPE_USER;
    }
    r->streamed += n;
    http__conn_progress(c);
    r->in_sink = 1;
    r->sink(r, at, n, r->sink_arg);
    r->in_sink = 0;
    if (r->end_status != 0) {
      c->parse_status = r->end_status; /* http_req_end_body() from the sink */
      return HPE_USER;
    }
    return 0;
  }
  if (n > r->body_limit - r->body.len) {
    c->parse_status = 413;
    return HPE_USER;
  }
  /* A chunked body counts as it arrives. */
  if (r->body.len + n > r->held && http__req_hold(r, r->body.len + n - r->held) != 0) {
    c->parse_status = 503;
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
  r->sink = NULL; /* the body is complete: the handler takes over */
  r->st = HTTP__R_PENDING;
  http__queue_push(c, r);
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
