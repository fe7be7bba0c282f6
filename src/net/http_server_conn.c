/*
 * http_server_conn.c - one inbound HTTP/1.1 connection: driving llhttp,
 * the ordered response queue, timeouts and back-pressure (see
 * http_server.h for the contract, http_server_int.h for the structures;
 * the request objects and llhttp's callbacks are in http_server_parse.c).
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
 * holds back the responses of later pipelined requests. The head's
 * response is first offered to stream_try_write(): when the socket takes
 * it whole (the usual case on plain TCP) the request leaves the queue at
 * once, without a write request or a pass through the loop.
 *
 * Back-pressure: while max_pipelined requests sit in the queue, the rest of
 * the input is kept (copied) and reading stops; writes completing resume it.
 * A streamed body's sink may also pause reading (body_paused): reading
 * stops at once, the bytes already read are still parsed and handed over,
 * and nothing more is read until http_req_resume_body() or the end of the
 * body; the request timer is off meanwhile.
 *
 * Timer: one uv_timer per connection with a role (http__timer_t) derived
 * from the state: a request arriving (request timeout -> 408), waiting for
 * nothing but the client (idle timeout -> close), handlers running (off),
 * lingering after a final error response (drain input, then close). The
 * uv timer is re-armed lazily: it may be due before the role's deadline
 * (then it only re-arms itself for the rest), never after it, so a
 * keep-alive request costs one uv_timer_start instead of a start, a stop
 * and a start.
 *
 * Memory: nothing is freed before the stream's and the timer's close
 * callbacks have both run; requests still pending in a handler when the
 * connection closes are detached (req->conn = NULL) and freed by
 * http_respond().
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "net/http_server_int.h"

/* How long input is drained after a server-initiated close, at most. */
#define LINGER_MS 2000

static void conn_fail(http__conn_t *c, int status);
static void conn_send_final(http__conn_t *c, http_req_t *r);
static void conn_flush(http__conn_t *c);
static void on_timer(uv_timer_t *t);

/* Sets the current role's deadline ms from now; restarts the uv timer only
 * when it is not armed or due later than that. */
static void timer_arm(http__conn_t *c, uint64_t ms)
{
  c->tdeadline = uv_now(c->srv->loop) + ms;
  if (c->tdue != 0 && c->tdue <= c->tdeadline)
    return;
  uv_timer_start(&c->timer, on_timer, ms, 0);
  c->tdue = c->tdeadline;
}

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
      if (c->cur != NULL && c->cur->rejected)
        conn_send_final(c, c->cur);
      else
        conn_fail(c, c->parse_status != 0 ? c->parse_status : 400);
      return;
    }
    const char *pos = llhttp_get_error_pos(&c->parser);
    llhttp_resume(&c->parser);
    len -= (size_t)(pos - data);
    data = pos;
    http_req_t *r = c->completed;
    c->completed = NULL;
    if (c->body_paused) {
      /* A streamed body paused at its last piece: the body is complete,
       * so the connection reads on (the handler takes over). */
      c->body_paused = 0;
      conn_read_start(c); /* on failure r is detached; its handler still runs */
    }
    http__conn_arm(c);
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
  if (c->saved.len == 0 && !c->body_paused)
    conn_read_start(c);
}

void http__conn_pause(http__conn_t *c)
{
  if (c->body_paused || c->state != HTTP__C_OPEN)
    return;
  c->body_paused = 1;
  conn_read_stop(c);
  http__conn_arm(c);
}

void http__conn_unpause(http__conn_t *c)
{
  if (!c->body_paused || c->state != HTTP__C_OPEN)
    return;
  c->body_paused = 0;
  http__conn_arm(c);
  conn_resume(c);
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
  unsigned ms = c->srv->o.request_timeout_ms < LINGER_MS ? c->srv->o.request_timeout_ms : LINGER_MS;
  timer_arm(c, ms);
  conn_read_start(c);
}

/* After responses left the queue: close once drained for shutdown, else
 * parse input held back by back-pressure and read on. */
static void conn_written(http__conn_t *c)
{
  if (c->srv->closing && c->qhead == NULL) {
    http__conn_close(c); /* drained for shutdown */
    return;
  }
  conn_resume(c);
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
  conn_written(c);
}

/* Writes the head response r at once if the socket takes all of it
 * (plain TCP: stream_try_write): r leaves the queue and is released here,
 * with no write request, no completion callback and no epoll_ctl for
 * POLLOUT. @return how many bytes were written (r is gone when that is
 * all of them), or 0. Final responses (close_after) keep the write
 * callback that starts the linger. */
static size_t conn_write_now(http__conn_t *c, http_req_t *r)
{
  if (r != c->qhead || r->close_after)
    return 0;
  uv_buf_t b = uv_buf_init(r->resp, (unsigned)r->resp_len);
  int n = stream_try_write(c->s, &b, 1);
  if (n <= 0)
    return 0; /* EAGAIN (or no try_write), or an error stream_write reports */
  if ((size_t)n < r->resp_len)
    return (size_t)n;
  c->qhead = r->next;
  if (c->qhead == NULL)
    c->qtail = NULL;
  c->nqueued--;
  http__req_release(c, r);
  return (size_t)n;
}

static void conn_flush(http__conn_t *c)
{
  bool wrote_now = false;
  http_req_t *r = c->qhead;
  while (r != NULL) {
    if (r->st == HTTP__R_WRITING) {
      r = r->next;
      continue;
    }
    if (r->st != HTTP__R_READY)
      break;
    size_t len = r->resp_len, done = conn_write_now(c, r);
    if (done == len) {
      wrote_now = true;
      r = c->qhead; /* r was released; the next one is the head now */
      continue;
    }
    r->st = HTTP__R_WRITING;
    uv_buf_t b = uv_buf_init(r->resp + done, (unsigned)(len - done));
    if (stream_write(c->s, &b, 1, on_written, r) != 0) {
      r->st = HTTP__R_READY; /* no callback will come: freed by close */
      http__conn_close(c);
      return;
    }
    if (r->close_after)
      return;
    r = r->next;
  }
  if (wrote_now && c->state == HTTP__C_OPEN)
    conn_written(c);
}

void http__conn_responded(http__conn_t *c, http_req_t *r)
{
  r->st = HTTP__R_READY;
  c->npending--;
  if (r->close_after)
    c->stop_parsing = 1;
  conn_flush(c);
  http__conn_arm(c);
}

/* Queues r's built response as the connection's last: nothing more is
 * parsed, input is drained after it is written, then the connection
 * closes. r is c->cur or a fresh request. */
static void conn_send_final(http__conn_t *c, http_req_t *r)
{
  if (c->cur == r)
    c->cur = NULL;
  http__req_stream_abort(r); /* its body will never be complete */
  c->body_paused = 0;
  c->stop_parsing = 1;
  c->linger = 1;
  http__req_unhold(r); /* its body will never be read */
  r->close_after = 1;
  r->st = HTTP__R_READY;
  http__report(c->srv, r->headers_done ? r : NULL, r->status);
  http__queue_push(c, r);
  buf_wipe_free(&c->saved);
  conn_flush(c);
  http__conn_arm(c);
}

static void conn_fail(http__conn_t *c, int status)
{
  const char *code, *msg, *extra = NULL;
  switch (status) {
  case 408:
    code = "request_timeout";
    msg = "the request was not received in time";
    break;
  case 413:
    code = "payload_too_large";
    msg = "the request body is too large";
    break;
  case 431:
    code = "headers_too_large";
    msg = "the request headers are too large";
    break;
  case 503:
    if (c->cur != NULL && c->cur->headers_done) {
      /* Refused at a request's body: the server holds too many bytes. */
      code = "server_busy";
      msg = "too many request bytes are being held; retry later";
      extra = "Retry-After: 1\r\n";
    } else {
      code = "too_many_connections";
      msg = "too many open connections";
    }
    break;
  default:
    status = 400;
    code = "bad_request";
    msg = "malformed HTTP request";
    break;
  }
  http_req_t *r = c->cur;
  if (r == NULL)
    r = http__req_new(c);
  char body[160];
  int n = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"message\":\"%s\"}", code, msg);
  http__build_response(r, status, "application/json", body, (size_t)n, extra, 1);
  conn_send_final(c, r);
}

void http__conn_fail_cur(http__conn_t *c, int status)
{
  if (c->state == HTTP__C_OPEN && c->cur != NULL)
    conn_fail(c, status);
}

/* ---- timer --------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
  http__conn_t *c = t->data;
  c->tdue = 0;
  http__timer_t k = c->tkind;
  if (k == HTTP__T_NONE)
    return; /* the role ended (handlers running): nothing to do */
  uint64_t now = uv_now(c->srv->loop);
  if (now < c->tdeadline) {
    /* Armed for an earlier deadline of another role: wait for the rest. */
    uv_timer_start(&c->timer, on_timer, c->tdeadline - now, 0);
    c->tdue = c->tdeadline;
    return;
  }
  c->tkind = HTTP__T_NONE;
  if (k == HTTP__T_REQUEST)
    conn_fail(c, 408);
  else
    http__conn_close(c);
}

void http__conn_arm(http__conn_t *c)
{
  if (c->state != HTTP__C_OPEN)
    return;
  http__timer_t k;
  uint64_t ms = 0;
  if (c->cur != NULL && c->body_paused) {
    k = HTTP__T_NONE; /* waiting for the server, not for the client */
  } else if (c->cur != NULL) {
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
  if (k != HTTP__T_NONE)
    timer_arm(c, ms); /* for NONE an armed timer just finds nothing to do */
}

void http__conn_progress(http__conn_t *c)
{
  if (c->state == HTTP__C_OPEN && c->tkind == HTTP__T_REQUEST)
    timer_arm(c, c->srv->o.request_timeout_ms);
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

static void on_stream_closed(stream_t *s)
{
  conn_part_closed(s->data);
}
static void on_timer_closed(uv_handle_t *h)
{
  conn_part_closed(h->data);
}

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
    http__conn_arm(c);
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
  http__conn_arm(c);
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
      http__req_unhold(r); /* the server may be freed before r */
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
  c->tdue = 0;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
  stream_close(c->s, on_stream_closed);
}
