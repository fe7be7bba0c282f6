/*
 * Unit tests for streamed request bodies of the inbound HTTP server
 * (http_req_stream_body, http_req_pause_body, http_req_resume_body): the
 * body reaches the sink piece by piece and never the request's buffer,
 * the sink can stop and restart reading, a body that ends early (client
 * gone, 413 mid-body) is reported to the sink once, and a sink paused at
 * the last piece does not stall the connection. The server and a raw
 * client (stream_tcp) share the test's uv loop; waits are "run the loop
 * until X happened".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "net/http_server.h"
#include "net/stream.h"
#include "support.h"

typedef struct {
  uv_loop_t loop;
  http_server_t *srv;
  int srv_closed;
  /* the sink */
  size_t got;         /* body bytes received by the sink */
  unsigned pieces;    /* sink calls with data */
  unsigned aborts;    /* sink calls with NULL */
  size_t pause_at;    /* pause once got >= pause_at (0 = never) */
  int pause_last;     /* pause at the piece that completes the body */
  size_t declared;    /* Content-Length of the streamed request */
  http_req_t *paused; /* the request paused by the sink */
  size_t got_at_pause;
  int hold;         /* count each piece with http_req_hold(); over: end 503 */
  int hold_refused; /* http_req_hold() said no */
  /* the handler */
  int handled;
  size_t body_len_seen; /* http_req_body() length in the handler */
  /* the client */
  stream_t *cs;
  buf_t in;
  int connected, closed, writes_done;
} fx_t;

#define RUN_UNTIL(f, cond) \
  do { \
    while (!(cond)) { \
      if (uv_run(&(f)->loop, UV_RUN_ONCE) == 0 && !(cond)) \
        fail_msg("loop went idle before: %s", #cond); \
    } \
  } while (0)

static void sink(http_req_t *req, const char *data, size_t len, void *arg)
{
  fx_t *f = arg;
  if (data == NULL) {
    f->aborts++;
    return;
  }
  f->pieces++;
  f->got += len;
  if (f->hold && !f->hold_refused && http_req_hold(req, len) != 0) {
    f->hold_refused = 1;
    http_req_end_body(req, 503); /* from the sink: after it returns */
    return;
  }
  if ((f->pause_at != 0 && f->got >= f->pause_at && f->paused == NULL) ||
      (f->pause_last && f->got == f->declared)) {
    http_req_pause_body(req);
    f->paused = req;
    f->got_at_pause = f->got;
  }
}

static void on_headers(http_req_t *req, void *arg)
{
  fx_t *f = arg;
  if (strcmp(http_req_path(req), "/stream") == 0) {
    http_req_set_body_limit(req, 64u << 20);
    http_req_stream_body(req, sink, f);
  }
}

static void handler(http_req_t *req, void *arg)
{
  fx_t *f = arg;
  char out[64];
  f->handled++;
  http_req_body(req, &f->body_len_seen);
  int n = snprintf(out, sizeof out, "%zu", f->got);
  http_respond(req, 200, "text/plain", out, (size_t)n);
}

static void on_srv_closed(void *arg)
{
  ((fx_t *)arg)->srv_closed = 1;
}

static void fx_start(fx_t *f, unsigned request_timeout_ms)
{
  memset(f, 0, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  http_server_opts_t o = {
    .host = "127.0.0.1",
    .handler = handler,
    .handler_arg = f,
    .on_headers = on_headers,
    .max_buffered_bytes = 4096, /* a streamed body is not held */
    .request_timeout_ms = request_timeout_ms,
  };
  assert_int_equal(http_server_start(&f->loop, &o, &f->srv), 0);
}

static void fx_finish(fx_t *f)
{
  http_server_close(f->srv, 0, on_srv_closed, f);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_true(f->srv_closed);
  buf_free(&f->in);
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* ---- client ---------------------------------------------------------------- */

static void c_on_read(stream_t *s, ssize_t nread, const char *data)
{
  fx_t *f = s->data;
  if (nread < 0) {
    f->closed = 1;
    stream_close(s, NULL);
    return;
  }
  buf_append(&f->in, data, (size_t)nread);
}

static void c_on_connect(stream_t *s, int status, void *arg)
{
  fx_t *f = arg;
  assert_int_equal(status, 0);
  f->connected = 1;
  assert_int_equal(stream_read_start(s, c_on_read), 0);
}

static void c_connect(fx_t *f)
{
  f->cs = stream_tcp_new(&f->loop);
  f->cs->data = f;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", (int)http_server_port(f->srv), &a);
  assert_int_equal(stream_tcp_connect(f->cs, (struct sockaddr *)&a, c_on_connect, f), 0);
  RUN_UNTIL(f, f->connected);
}

static void c_written(stream_t *s, int status, void *arg)
{
  (void)s;
  (void)status;
  ((fx_t *)arg)->writes_done++;
}

/* Writes `data` (kept valid by the caller until the write completes). */
static void c_send(fx_t *f, const char *data, size_t n)
{
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
  assert_int_equal(stream_write(f->cs, &b, 1, c_written, f), 0);
}

static void c_close(fx_t *f)
{
  if (!f->closed) {
    f->closed = 1;
    stream_close(f->cs, NULL);
  }
}

/* Status lines received so far. */
static int responses(const fx_t *f)
{
  int n = 0;
  const char *p = f->in.data, *end = f->in.data + f->in.len;
  while (p != NULL && p < end && (p = memmem(p, (size_t)(end - p), "HTTP/1.1 ", 9)) != NULL) {
    n++;
    p += 9;
  }
  return n;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_stream_pieces(void **state)
{
  (void)state;
  fx_t f;
  fx_start(&f, 0);
  c_connect(&f);
  size_t n = 1u << 20; /* far above max_buffered_bytes */
  char head[128];
  int hn = snprintf(head, sizeof head, "POST /stream HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
  char *body = xmalloc(n);
  memset(body, 'b', n);
  f.declared = n;
  c_send(&f, head, (size_t)hn);
  c_send(&f, body, n);
  RUN_UNTIL(&f, f.handled == 1 && responses(&f) == 1);
  assert_int_equal(f.got, n);
  assert_true(f.pieces >= 1);
  assert_int_equal(f.aborts, 0);
  assert_int_equal(f.body_len_seen, 0); /* nothing was buffered */
  assert_int_equal(http_server_buffered_bytes(f.srv), 0);
  assert_non_null(memmem(f.in.data, f.in.len, "\r\n\r\n1048576", 11));
  RUN_UNTIL(&f, f.writes_done == 2);
  c_close(&f);
  free(body);
  fx_finish(&f);
}

static void on_spin(uv_timer_t *t)
{
  int *n = t->data;
  (*n)++;
}

static void test_pause_resume(void **state)
{
  (void)state;
  fx_t f;
  fx_start(&f, 0);
  c_connect(&f);
  /* More than loopback socket buffers hold, so the client's write cannot
   * complete while the server does not read. */
  size_t n = 32u << 20;
  char head[128];
  int hn = snprintf(head, sizeof head, "POST /stream HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
  char *body = xmalloc(n);
  memset(body, 'p', n);
  f.declared = n;
  f.pause_at = 1;
  c_send(&f, head, (size_t)hn);
  c_send(&f, body, n);
  RUN_UNTIL(&f, f.paused != NULL);
  size_t at_pause = f.got;
  /* Let the loop run a while: nothing more is read, so the sink gets
   * nothing beyond the read it paused in, and no handler runs. */
  uv_timer_t t;
  int spins = 0;
  uv_timer_init(&f.loop, &t);
  t.data = &spins;
  uv_timer_start(&t, on_spin, 20, 20);
  RUN_UNTIL(&f, spins >= 5);
  uv_timer_stop(&t);
  assert_int_equal(f.got, at_pause);
  assert_true(f.got < n);
  assert_int_equal(f.handled, 0);
  assert_int_equal(f.aborts, 0);
  http_req_resume_body(f.paused);
  RUN_UNTIL(&f, f.handled == 1 && responses(&f) == 1);
  assert_int_equal(f.got, n);
  uv_close((uv_handle_t *)&t, NULL);
  RUN_UNTIL(&f, f.writes_done == 2);
  c_close(&f);
  free(body);
  fx_finish(&f);
}

static void test_abort_on_disconnect(void **state)
{
  (void)state;
  fx_t f;
  fx_start(&f, 0);
  c_connect(&f);
  static const char req[] = "POST /stream HTTP/1.1\r\nContent-Length: 1000\r\n\r\nhalf of it";
  f.declared = 1000;
  c_send(&f, req, sizeof req - 1);
  RUN_UNTIL(&f, f.got == 10);
  c_close(&f);
  RUN_UNTIL(&f, f.aborts == 1);
  assert_int_equal(f.handled, 0);
  RUN_UNTIL(&f, http_server_connections(f.srv) == 0);
  assert_int_equal(f.aborts, 1);
  fx_finish(&f);
}

static void test_abort_paused_on_close(void **state)
{
  (void)state;
  fx_t f;
  fx_start(&f, 0);
  c_connect(&f);
  static const char req[] = "POST /stream HTTP/1.1\r\nContent-Length: 1000\r\n\r\nsome";
  f.declared = 1000;
  f.pause_at = 1;
  c_send(&f, req, sizeof req - 1);
  RUN_UNTIL(&f, f.paused != NULL);
  /* A paused request has no timer (it waits for the server): shutting the
   * server down still ends it, and the sink hears of it once. */
  http_server_close(f.srv, 0, on_srv_closed, &f);
  RUN_UNTIL(&f, f.srv_closed);
  assert_int_equal(f.aborts, 1);
  assert_int_equal(f.handled, 0);
  c_close(&f);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  buf_free(&f.in);
  assert_int_equal(uv_loop_close(&f.loop), 0);
}

static void test_chunked_over_limit(void **state)
{
  (void)state;
  fx_t f;
  fx_start(&f, 0);
  c_connect(&f);
  /* 64 MiB + a bit, chunked: 413 mid-body, reported to the sink. */
  size_t chunk = 1u << 20;
  char *body = xmalloc(chunk);
  memset(body, 'c', chunk);
  static const char head[] = "POST /stream HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  c_send(&f, head, sizeof head - 1);
  static const char size_line[] = "100000\r\n";
  static const char crlf[] = "\r\n";
  for (int i = 0; i < 65 && !f.closed; i++) {
    c_send(&f, size_line, sizeof size_line - 1);
    c_send(&f, body, chunk);
    c_send(&f, crlf, 2);
  }
  RUN_UNTIL(&f, f.aborts == 1 && responses(&f) == 1);
  assert_non_null(memmem(f.in.data, f.in.len, "413", 3));
  assert_int_equal(f.handled, 0);
  assert_true(f.got <= 64u << 20);
  c_close(&f);
  RUN_UNTIL(&f, http_server_connections(f.srv) == 0);
  free(body);
  fx_finish(&f);
}

static void test_paused_at_last_piece(void **state)
{
  (void)state;
  fx_t f;
  fx_start(&f, 0);
  c_connect(&f);
  /* The sink pauses at the piece that completes its body and never
   * resumes: the handler still runs, and the pipelined request after it is
   * read and answered. */
  static const char req[] = "POST /stream HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                            "GET /after HTTP/1.1\r\n\r\n";
  f.declared = 5;
  f.pause_last = 1;
  c_send(&f, req, sizeof req - 1);
  RUN_UNTIL(&f, f.handled == 2 && responses(&f) == 2);
  assert_non_null(f.paused);
  assert_int_equal(f.got, 5);
  assert_int_equal(f.aborts, 0);
  c_close(&f);
  fx_finish(&f);
}

static void test_hold_and_end_from_sink(void **state)
{
  (void)state;
  fx_t f;
  fx_start(&f, 0);
  c_connect(&f);
  /* The sink counts what it keeps: past max_buffered_bytes (4096) it ends
   * the request with 503 server_busy from inside the sink. */
  size_t n = 64u << 10;
  char head[128];
  int hn = snprintf(head, sizeof head, "POST /stream HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
  char *body = xmalloc(n);
  memset(body, 'h', n);
  f.declared = n;
  f.hold = 1;
  c_send(&f, head, (size_t)hn);
  c_send(&f, body, n);
  RUN_UNTIL(&f, f.aborts == 1 && responses(&f) == 1 && f.closed);
  assert_true(f.hold_refused);
  assert_int_equal(f.handled, 0);
  assert_non_null(memmem(f.in.data, f.in.len, "HTTP/1.1 503", 12));
  assert_non_null(memmem(f.in.data, f.in.len, "Retry-After: 1\r\n", 15));
  assert_non_null(memmem(f.in.data, f.in.len, "server_busy", 11));
  RUN_UNTIL(&f, http_server_connections(f.srv) == 0);
  assert_int_equal(http_server_buffered_bytes(f.srv), 0); /* released with the request */
  free(body);
  fx_finish(&f);
}

static void test_end_outside_sink(void **state)
{
  (void)state;
  fx_t f;
  fx_start(&f, 0);
  c_connect(&f);
  static const char req[] = "POST /stream HTTP/1.1\r\nContent-Length: 1000\r\n\r\nsome";
  f.declared = 1000;
  f.pause_at = 1;
  c_send(&f, req, sizeof req - 1);
  RUN_UNTIL(&f, f.paused != NULL);
  assert_int_equal(http_req_hold(f.paused, 100), 0);
  assert_int_equal(http_server_buffered_bytes(f.srv), 100);
  /* From a loop callback (not the sink): ends at once. */
  http_req_end_body(f.paused, 413);
  assert_int_equal(f.aborts, 1);
  RUN_UNTIL(&f, responses(&f) == 1 && f.closed);
  assert_non_null(memmem(f.in.data, f.in.len, "HTTP/1.1 413", 12));
  assert_int_equal(f.handled, 0);
  assert_int_equal(http_server_buffered_bytes(f.srv), 0);
  fx_finish(&f);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_stream_pieces),          cmocka_unit_test(test_pause_resume),
    cmocka_unit_test(test_abort_on_disconnect),    cmocka_unit_test(test_abort_paused_on_close),
    cmocka_unit_test(test_chunked_over_limit),     cmocka_unit_test(test_paused_at_last_piece),
    cmocka_unit_test(test_hold_and_end_from_sink), cmocka_unit_test(test_end_outside_sink),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
