/*
 * Unit tests for the inbound HTTP/1.1 server (src/net/http_server*.c) and
 * the plain TCP stream (src/net/stream_tcp.c). The server listens on
 * 127.0.0.1:0 in the test's own uv loop; clients are stream_tcp streams in
 * the same loop that send a script of raw request bytes (the next piece
 * after each complete response) and parse what comes back. Waits are
 * "run the loop until X happened", never timed assertions; every test ends
 * with the server closed and uv_loop_close() == 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/mem.h"
#include "net/http_server.h"
#include "net/stream.h"
#include "support.h"

/* ---- fixture: loop, server, handler -------------------------------------- */

#define MAX_HELD 16
#define MAX_STATUS 64

typedef struct {
  uv_loop_t loop;
  http_server_t *srv;
  http_server_opts_t opts;
  int srv_closed;
  int handled;
  http_req_t *held[MAX_HELD];
  int nheld;
  int outstanding; /* handlers that have not responded */
  int max_outstanding;
  int statuses[MAX_STATUS];
  int nstatuses;
  int wraps;
  int refuse_wrap;
  int hello_done;
  uv_timer_t timer;
  int timer_used;
} fx_t;

static fx_t *F;

static void respond(http_req_t *req, int status, const char *body)
{
  F->outstanding--;
  http_respond(req, status, "text/plain", body, strlen(body));
}

static void handler(http_req_t *req, void *arg)
{
  fx_t *f = arg;
  f->handled++;
  f->outstanding++;
  if (f->outstanding > f->max_outstanding)
    f->max_outstanding = f->outstanding;
  const char *path = http_req_path(req);
  if (strcmp(path, "/hello") == 0) {
    f->hello_done = 1;
    respond(req, 200, "hello");
  } else if (strcmp(path, "/echo") == 0) {
    size_t blen;
    const char *body = http_req_body(req, &blen);
    const char *q = http_req_query(req);
    arena_t *a = http_req_arena(req);
    size_t cap = blen + 128;
    char *out = arena_alloc(a, cap);
    int n =
      snprintf(out, cap, "%s %s %s|%s", http_req_method(req), path, q != NULL ? q : "-", body);
    f->outstanding--;
    http_respond(req, 200, "text/plain", out, (size_t)n);
  } else if (strcmp(path, "/hold") == 0) {
    assert_true(f->nheld < MAX_HELD);
    f->held[f->nheld++] = req;
  } else if (strcmp(path, "/huge") == 0) {
    size_t n = 32u << 20; /* more than loopback socket buffers hold */
    char *big = xmalloc(n);
    memset(big, 'h', n);
    f->outstanding--;
    http_respond(req, 200, "text/plain", big, n);
    free(big); /* the response is a copy */
  } else if (strcmp(path, "/weird") == 0) {
    respond(req, 42, "");
  } else if (strcmp(path, "/redirect") == 0) {
    f->outstanding--;
    http_respond_ex(req, 302, NULL, NULL, 0, "Location: /x\r\nCache-Control: no-store\r\n");
  } else if (strcmp(path, "/big") == 0 || strcmp(path, "/small") == 0) {
    char out[32];
    size_t blen;
    http_req_body(req, &blen);
    snprintf(out, sizeof(out), "%zu", blen);
    assert_string_equal(http_req_data(req), "routed");
    respond(req, 200, out);
  } else if (strcmp(path, "/hdr") == 0) {
    const char *v = http_req_header(req, "x-test");
    size_t n;
    const http_header_t *h = http_req_headers(req, &n);
    if (n > 0)
      assert_int_equal(strlen(h[0].name), h[0].name_len);
    char out[256];
    snprintf(out, sizeof(out), "%s|%zu|%d", v != NULL ? v : "none", n, http_req_minor_version(req));
    respond(req, 200, out);
  } else {
    respond(req, 404, "nope");
  }
}

static void on_headers(http_req_t *req, void *arg)
{
  (void)arg;
  const char *path = http_req_path(req);
  if (strcmp(path, "/big") == 0) {
    http_req_set_body_limit(req, 300000);
    http_req_set_data(req, "routed");
  } else if (strcmp(path, "/small") == 0) {
    http_req_set_body_limit(req, 4);
    http_req_set_data(req, "routed");
  } else if (strcmp(path, "/reject") == 0) {
    static const char b[] = "{\"error\":\"unauthorized\",\"message\":\"no\"}";
    http_req_reject(req, 401, "application/json", b, sizeof b - 1, "WWW-Authenticate: Bearer\r\n");
  }
}

static void on_response(const http_req_t *req, int status, uint64_t latency_us, void *arg)
{
  fx_t *f = arg;
  (void)req;
  (void)latency_us;
  if (f->nstatuses < MAX_STATUS)
    f->statuses[f->nstatuses++] = status;
}

static stream_t *wrap(void *arg, stream_t *tcp)
{
  fx_t *f = arg;
  f->wraps++;
  return f->refuse_wrap ? NULL : tcp;
}

static void fx_init(fx_t *f)
{
  memset(f, 0, sizeof(*f));
  F = f;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->opts.host = "127.0.0.1";
  f->opts.port = 0;
  f->opts.handler = handler;
  f->opts.handler_arg = f;
  f->opts.on_headers = on_headers;
  f->opts.on_response = on_response;
  f->opts.wrap = wrap;
  f->opts.wrap_arg = f;
}

static void fx_start(fx_t *f)
{
  assert_int_equal(http_server_start(&f->loop, &f->opts, &f->srv), 0);
  assert_true(http_server_port(f->srv) > 0);
}

static void on_srv_closed(void *arg)
{
  ((fx_t *)arg)->srv_closed = 1;
}

static void fx_finish(fx_t *f)
{
  if (f->srv != NULL && !f->srv_closed)
    http_server_close(f->srv, 0, on_srv_closed, f);
  if (f->timer_used)
    uv_close((uv_handle_t *)&f->timer, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_true(f->srv_closed || f->srv == NULL);
  for (int i = 0; i < f->nheld; i++)
    if (f->held[i] != NULL)
      http_respond(f->held[i], 200, NULL, NULL, 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* Runs the loop until `cond` holds; the server's listener keeps it alive,
 * so a missing event shows up as the test's CTest timeout. */
#define RUN_UNTIL(f, cond) \
  do { \
    while (!(cond)) { \
      if (uv_run(&(f)->loop, UV_RUN_ONCE) == 0 && !(cond)) \
        fail_msg("loop went idle before: %s", #cond); \
    } \
  } while (0)

/* ---- raw clients over stream_tcp ------------------------------------------ */

typedef struct {
  int status;
  char head[4096];
  char body[512];
  size_t body_len;
} resp_t;

typedef struct {
  fx_t *f;
  stream_t *s;
  buf_t in;
  const char **script;
  size_t *script_len; /* NULL = strlen */
  int nscript, sent;
  int byte_by_byte;
  int no_read;
  int connected, eof, closed, read_err;
  int nresp;
  resp_t resp[16];
} client_t;

static int parse_resps(client_t *c)
{
  size_t off = 0;
  int n = 0;
  while (n < (int)ARRAY_SIZE(c->resp)) {
    const char *start = c->in.data + off;
    size_t rem = c->in.len - off;
    if (rem == 0)
      break;
    const char *end = memmem(start, rem, "\r\n\r\n", 4);
    if (end == NULL)
      break;
    size_t hlen = (size_t)(end - start) + 4;
    size_t cl = 0;
    for (const char *p = start; p < end; p++)
      if (strncasecmp(p, "\r\nContent-Length:", 17) == 0)
        cl = strtoul(p + 17, NULL, 10);
    if (rem < hlen + cl)
      break;
    resp_t *r = &c->resp[n];
    r->status = atoi(start + 9);
    size_t hn = hlen < sizeof(r->head) - 1 ? hlen : sizeof(r->head) - 1;
    memcpy(r->head, start, hn);
    r->head[hn] = 0;
    size_t bn = cl < sizeof(r->body) - 1 ? cl : sizeof(r->body) - 1;
    memcpy(r->body, start + hlen, bn);
    r->body[bn] = 0;
    r->body_len = cl;
    off += hlen + cl;
    n++;
  }
  return n;
}

static void client_close(client_t *c);

static void client_send(client_t *c, int i)
{
  const char *p = c->script[i];
  size_t n = c->script_len != NULL ? c->script_len[i] : strlen(p);
  if (c->byte_by_byte) {
    for (size_t k = 0; k < n; k++) {
      uv_buf_t b = uv_buf_init((char *)p + k, 1);
      assert_int_equal(stream_write(c->s, &b, 1, NULL, NULL), 0);
    }
  } else if (n > 0) {
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    assert_int_equal(stream_write(c->s, &b, 1, NULL, NULL), 0);
  }
}

static void client_pump(client_t *c)
{
  while (c->sent < c->nscript && c->nresp >= c->sent && !c->closed && c->connected)
    client_send(c, c->sent++);
}

static void client_on_read(stream_t *s, ssize_t nread, const char *data)
{
  client_t *c = s->data;
  if (nread < 0) {
    if (nread == UV_EOF)
      c->eof = 1;
    else
      c->read_err = (int)nread;
    client_close(c);
    return;
  }
  buf_append(&c->in, data, (size_t)nread);
  c->nresp = parse_resps(c);
  client_pump(c);
}

static void client_on_connect(stream_t *s, int status, void *arg)
{
  client_t *c = arg;
  assert_ptr_equal(s, c->s);
  assert_int_equal(status, 0);
  c->connected = 1;
  if (!c->no_read) {
    assert_int_equal(stream_read_start(s, client_on_read), 0);
    /* Restarting is harmless. */
    assert_int_equal(stream_read_start(s, client_on_read), 0);
  }
  client_pump(c);
}

static void client_on_closed(stream_t *s)
{
  client_t *c = s->data;
  c->closed = 2;
}

static void client_close(client_t *c)
{
  if (c->closed)
    return;
  c->closed = 1;
  stream_close(c->s, client_on_closed);
}

static void client_start(client_t *c, fx_t *f, const char **script, int n)
{
  memset(c, 0, sizeof(*c));
  c->f = f;
  c->script = script;
  c->nscript = n;
  c->s = stream_tcp_new(&f->loop);
  assert_non_null(c->s);
  c->s->data = c;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", (int)http_server_port(f->srv), &a);
  assert_int_equal(stream_tcp_connect(c->s, (struct sockaddr *)&a, client_on_connect, c), 0);
}

static void client_done(client_t *c)
{
  client_close(c);
  RUN_UNTIL(c->f, c->closed == 2);
  buf_free(&c->in);
}

static int has_header(const resp_t *r, const char *line)
{
  return strstr(r->head, line) != NULL;
}

static void assert_json_error(const resp_t *r, int status, const char *code)
{
  assert_int_equal(r->status, status);
  assert_true(has_header(r, "Content-Type: application/json\r\n"));
  assert_true(has_header(r, "Connection: close\r\n"));
  char want[64];
  snprintf(want, sizeof(want), "{\"error\":\"%s\",", code);
  assert_true(strncmp(r->body, want, strlen(want)) == 0);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_simple_get(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;
  const char *script[] = {"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"};
  client_start(&c, &f, script, 1);
  RUN_UNTIL(&f, c.nresp == 1);
  assert_int_equal(c.resp[0].status, 200);
  assert_string_equal(c.resp[0].body, "hello");
  assert_true(has_header(&c.resp[0], "HTTP/1.1 200 OK\r\n"));
  assert_true(has_header(&c.resp[0], "Content-Length: 5\r\n"));
  assert_true(has_header(&c.resp[0], "Content-Type: text/plain\r\n"));
  assert_false(has_header(&c.resp[0], "Connection:"));
  assert_int_equal(f.wraps, 1);
  assert_int_equal(f.nstatuses, 1);
  assert_int_equal(f.statuses[0], 200);
  assert_int_equal(http_server_connections(f.srv), 1);
  client_done(&c);
  RUN_UNTIL(&f, http_server_connections(f.srv) == 0);
  fx_finish(&f);
}

static void test_post_body_query_headers(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;
  const char *script[] = {
    "POST /echo?a=1&b=%20 HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
    "GET /hdr HTTP/1.1\r\nhost: x\r\nX-TEST:   spaced value  \r\nX-Empty:\r\n\r\n",
    "GET /hdr HTTP/1.1\r\n\r\n",
    "GET /redirect HTTP/1.1\r\n\r\n",
    "GET /missing HTTP/1.1\r\n\r\n",
  };
  client_start(&c, &f, script, 5);
  RUN_UNTIL(&f, c.nresp == 5);
  assert_string_equal(c.resp[0].body, "POST /echo a=1&b=%20|hello world");
  assert_string_equal(c.resp[1].body, "spaced value|3|1");
  assert_string_equal(c.resp[2].body, "none|0|1");
  assert_int_equal(c.resp[3].status, 302);
  assert_true(has_header(&c.resp[3], "Location: /x\r\nCache-Control: no-store\r\n"));
  assert_true(has_header(&c.resp[3], "Content-Length: 0\r\n"));
  assert_false(has_header(&c.resp[3], "Content-Type"));
  assert_int_equal(c.resp[4].status, 404);
  client_done(&c);
  fx_finish(&f);
}

static void test_keep_alive_sequential(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;
  const char *req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
  const char *script[] = {req, req, req, req};
  client_start(&c, &f, script, 4);
  RUN_UNTIL(&f, c.nresp == 4);
  for (int i = 0; i < 4; i++)
    assert_string_equal(c.resp[i].body, "hello");
  assert_int_equal(f.wraps, 1); /* one connection */
  assert_false(c.eof);
  client_done(&c);
  fx_finish(&f);
}

static void release_first(uv_timer_t *t)
{
  fx_t *f = t->data;
  http_req_t *r = f->held[0];
  f->held[0] = NULL;
  respond(r, 200, "held");
}

static void test_pipelined_in_order(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;
  const char *script[] = {
    "GET /hold HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\nPOST /echo HTTP/1.1\r\n"
    "Content-Length: 3\r\n\r\nabc"};
  client_start(&c, &f, script, 1);
  /* The later requests are answered by their handlers first... */
  RUN_UNTIL(&f, f.handled == 3);
  assert_int_equal(f.nheld, 1);
  assert_true(f.hello_done);
  assert_int_equal(c.nresp, 0);
  /* ...but go out only after the first one, answered from a timer. */
  uv_timer_init(&f.loop, &f.timer);
  f.timer_used = 1;
  f.timer.data = &f;
  uv_timer_start(&f.timer, release_first, 20, 0);
  RUN_UNTIL(&f, c.nresp == 3);
  assert_string_equal(c.resp[0].body, "held");
  assert_string_equal(c.resp[1].body, "hello");
  assert_string_equal(c.resp[2].body, "POST /echo -|abc");
  client_done(&c);
  fx_finish(&f);
}

static void test_pipeline_backpressure(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  f.opts.max_pipelined = 2;
  fx_start(&f);
  client_t c;
  static char script0[8 * 32];
  script0[0] = 0;
  for (int i = 0; i < 6; i++)
    strcat(script0, "GET /hold HTTP/1.1\r\n\r\n");
  const char *script[] = {script0};
  client_start(&c, &f, script, 1);
  int released = 0;
  while (released < 6) {
    /* Wait for two owed answers (one at the end). */
    RUN_UNTIL(&f, f.nheld >= (released + 2 < 6 ? released + 2 : 6));
    /* Never more than max_pipelined requests owed at once. */
    assert_true(f.max_outstanding <= 2);
    http_req_t *r = f.held[released];
    f.held[released++] = NULL;
    respond(r, 200, "x");
  }
  RUN_UNTIL(&f, c.nresp == 6);
  assert_int_equal(f.max_outstanding, 2);
  client_done(&c);
  fx_finish(&f);
}

static void test_chunked_and_fragmented(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;
  const char *script[] = {
    "POST /echo?q HTTP/1.1\r\nHost: x\r\nX-Long-Header-Name: some value\r\n"
    "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"};
  client_start(&c, &f, script, 1);
  c.byte_by_byte = 1;
  RUN_UNTIL(&f, c.nresp == 1);
  assert_string_equal(c.resp[0].body, "POST /echo q|hello world");
  client_done(&c);
  fx_finish(&f);
}

static void test_body_limits(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);

  /* Declared length over the default 64 KiB. */
  client_t c;
  const char *s1[] = {"POST /echo HTTP/1.1\r\nContent-Length: 70000\r\n\r\nabc"};
  client_start(&c, &f, s1, 1);
  RUN_UNTIL(&f, c.nresp >= 1 || c.eof || c.read_err);
  assert_int_equal(c.nresp, 1);
  assert_json_error(&c.resp[0], 413, "payload_too_large");
  client_done(&c);

  /* Chunked body growing over a route's lowered limit. */
  const char *s2[] = {"POST /small HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"};
  client_start(&c, &f, s2, 1);
  RUN_UNTIL(&f, c.nresp >= 1 || c.eof || c.read_err);
  assert_int_equal(c.nresp, 1);
  assert_json_error(&c.resp[0], 413, "payload_too_large");
  client_done(&c);

  /* A route that raises the limit takes 200000 bytes. */
  size_t n = 200000;
  char *big = xmalloc(n + 128);
  int h = snprintf(big, 128, "POST /big HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
  memset(big + h, 'x', n);
  big[h + (int)n] = 0;
  const char *s3[] = {big};
  client_start(&c, &f, s3, 1);
  RUN_UNTIL(&f, c.nresp == 1);
  assert_int_equal(c.resp[0].status, 200);
  assert_string_equal(c.resp[0].body, "200000");
  client_done(&c);
  free(big);

  int n413 = 0;
  for (int i = 0; i < f.nstatuses; i++)
    n413 += f.statuses[i] == 413;
  assert_int_equal(n413, 2);
  fx_finish(&f);
}

static void test_header_limits(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;

  size_t n = 20000;
  char *big = xmalloc(n + 128);
  int h = snprintf(big, 128, "GET /hello HTTP/1.1\r\nX-Big: ");
  memset(big + h, 'y', n);
  strcpy(big + h + n, "\r\n\r\n");
  const char *s1[] = {big};
  client_start(&c, &f, s1, 1);
  RUN_UNTIL(&f, c.nresp >= 1 || c.eof || c.read_err);
  assert_int_equal(c.nresp, 1);
  assert_json_error(&c.resp[0], 431, "headers_too_large");
  client_done(&c);
  free(big);

  /* An oversized target or header name counts against the same limit. */
  buf_t url = BUF_INIT;
  buf_puts(&url, "GET /");
  for (int i = 0; i < 20000; i++)
    buf_putc(&url, 'u');
  buf_puts(&url, " HTTP/1.1\r\n\r\n");
  buf_t name = BUF_INIT;
  buf_puts(&name, "GET / HTTP/1.1\r\nX-");
  for (int i = 0; i < 20000; i++)
    buf_putc(&name, 'n');
  buf_puts(&name, ": v\r\n\r\n");
  const char *long_ones[] = {url.data, name.data};
  for (int i = 0; i < 2; i++) {
    const char *sx[] = {long_ones[i]};
    client_start(&c, &f, sx, 1);
    RUN_UNTIL(&f, c.nresp >= 1 || c.eof || c.read_err);
    assert_int_equal(c.nresp, 1);
    assert_json_error(&c.resp[0], 431, "headers_too_large");
    client_done(&c);
  }
  buf_free(&url);
  buf_free(&name);

  /* Too many (small) headers. */
  buf_t many = BUF_INIT;
  buf_puts(&many, "GET /hello HTTP/1.1\r\n");
  for (int i = 0; i < 200; i++)
    buf_printf(&many, "X-%d: v\r\n", i);
  buf_puts(&many, "\r\n");
  const char *s2[] = {many.data};
  client_start(&c, &f, s2, 1);
  RUN_UNTIL(&f, c.nresp >= 1 || c.eof || c.read_err);
  assert_int_equal(c.nresp, 1);
  assert_json_error(&c.resp[0], 431, "headers_too_large");
  client_done(&c);
  buf_free(&many);
  fx_finish(&f);
}

static void test_bad_requests(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;
  const char *garbage[] = {
    "BLAH\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
  };
  for (size_t i = 0; i < ARRAY_SIZE(garbage); i++) {
    const char *s[] = {garbage[i]};
    client_start(&c, &f, s, 1);
    RUN_UNTIL(&f, c.nresp >= 1 || c.eof || c.read_err);
    assert_int_equal(c.nresp, 1);
    assert_json_error(&c.resp[0], 400, "bad_request");
    client_done(&c);
  }
  /* An Upgrade offer is ignored, the request served. */
  const char *up[] = {"GET /hello HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                      "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
                      "GET /hello HTTP/1.1\r\n\r\n"};
  client_start(&c, &f, up, 2);
  RUN_UNTIL(&f, c.nresp == 2);
  assert_int_equal(c.resp[0].status, 200);
  assert_int_equal(c.resp[1].status, 200);
  client_done(&c);
  /* A pipelined good request before garbage is still answered first. */
  const char *mixed[] = {"GET /hold HTTP/1.1\r\n\r\nxyz\r\n\r\n"};
  client_start(&c, &f, mixed, 1);
  RUN_UNTIL(&f, f.nheld == 1);
  http_req_t *r = f.held[0];
  f.held[0] = NULL;
  respond(r, 200, "first");
  RUN_UNTIL(&f, c.nresp >= 2 || c.eof || c.read_err);
  assert_int_equal(c.nresp, 2);
  assert_string_equal(c.resp[0].body, "first");
  assert_json_error(&c.resp[1], 400, "bad_request");
  client_done(&c);
  fx_finish(&f);
}

static void test_timeouts(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  /* First server: short request timeout only, so an idle timer cannot
   * close a connection before its partial request arrives. */
  f.opts.request_timeout_ms = 50;
  f.opts.idle_timeout_ms = 600000;
  fx_start(&f);
  client_t c;
  /* Headers that never complete: 408. */
  const char *s1[] = {"GET /hello HTTP/1.1\r\nHost: x\r\n"};
  client_start(&c, &f, s1, 1);
  RUN_UNTIL(&f, c.eof || c.read_err);
  assert_int_equal(c.nresp, 1);
  assert_json_error(&c.resp[0], 408, "request_timeout");
  client_done(&c);
  /* A body that never completes: 408. */
  const char *s2[] = {"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"};
  client_start(&c, &f, s2, 1);
  RUN_UNTIL(&f, c.eof || c.read_err);
  assert_int_equal(c.nresp, 1);
  assert_json_error(&c.resp[0], 408, "request_timeout");
  client_done(&c);
  http_server_close(f.srv, 0, on_srv_closed, &f);
  RUN_UNTIL(&f, f.srv_closed);
  /* Second server: short idle timeout. An idle keep-alive connection is
   * closed without a response (had the loop stalled past the idle timeout
   * before the request was read, it would be closed before answering:
   * still silently). */
  f.srv_closed = 0;
  f.opts.request_timeout_ms = 600000;
  f.opts.idle_timeout_ms = 50;
  fx_start(&f);
  const char *s3[] = {"GET /hello HTTP/1.1\r\n\r\n"};
  client_start(&c, &f, s3, 1);
  RUN_UNTIL(&f, c.eof || c.read_err);
  assert_true(c.eof);
  assert_true(c.nresp <= 1);
  if (c.nresp == 1)
    assert_int_equal(c.resp[0].status, 200);
  client_done(&c);
  /* A connection that never sends anything. */
  client_start(&c, &f, NULL, 0);
  RUN_UNTIL(&f, c.eof || c.read_err);
  assert_int_equal(c.nresp, 0);
  client_done(&c);
  http_server_close(f.srv, 0, on_srv_closed, &f);
  RUN_UNTIL(&f, f.srv_closed);
  /* Third server: the request timeout shorter than the idle one. The
   * timer armed for the request's deadline fires first and only re-arms
   * itself: the idle connection is closed no earlier than the idle
   * timeout after its answer, so no earlier than that after the request
   * was sent (a lower bound: a loaded machine only makes it later). */
  f.srv_closed = 0;
  f.opts.request_timeout_ms = 40;
  f.opts.idle_timeout_ms = 400;
  fx_start(&f);
  const char *s4[] = {"GET /hello HTTP/1.1\r\n\r\n"};
  uv_update_time(&f.loop);
  uint64_t sent = uv_now(&f.loop); /* the answer, and its idle deadline, come later */
  client_start(&c, &f, s4, 1);
  RUN_UNTIL(&f, c.nresp == 1 || c.eof || c.read_err);
  assert_int_equal(c.nresp, 1);
  assert_int_equal(c.resp[0].status, 200);
  RUN_UNTIL(&f, c.eof || c.read_err);
  uv_update_time(&f.loop);
  assert_true(c.eof);
  assert_true(uv_now(&f.loop) - sent >= 400);
  client_done(&c);
  fx_finish(&f);
}

static void test_max_connections(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  f.opts.max_connections = 1;
  fx_start(&f);
  client_t a, b;
  client_start(&a, &f, NULL, 0);
  RUN_UNTIL(&f, http_server_connections(f.srv) == 1);
  const char *s[] = {"GET /hello HTTP/1.1\r\n\r\n"};
  client_start(&b, &f, s, 1);
  RUN_UNTIL(&f, b.nresp >= 1 || b.eof || b.read_err);
  assert_int_equal(b.nresp, 1);
  assert_json_error(&b.resp[0], 503, "too_many_connections");
  assert_int_equal(f.handled, 0);
  client_done(&b);
  client_done(&a);
  RUN_UNTIL(&f, http_server_connections(f.srv) == 0);
  /* A slot is free again. */
  client_start(&b, &f, s, 1);
  RUN_UNTIL(&f, b.nresp == 1);
  assert_int_equal(b.resp[0].status, 200);
  client_done(&b);
  fx_finish(&f);
}

static void test_wrap_refuses(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  f.refuse_wrap = 1;
  fx_start(&f);
  client_t c;
  client_start(&c, &f, NULL, 0);
  RUN_UNTIL(&f, c.eof || c.read_err);
  assert_int_equal(c.nresp, 0);
  assert_int_equal(f.wraps, 1);
  assert_int_equal(http_server_connections(f.srv), 0);
  client_done(&c);
  fx_finish(&f);
}

static void test_many_clients(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c[5];
  const char *s[] = {"GET /hello HTTP/1.1\r\n\r\n", "GET /weird HTTP/1.1\r\n\r\n"};
  for (int i = 0; i < 5; i++)
    client_start(&c[i], &f, s, 2);
  for (int i = 0; i < 5; i++)
    RUN_UNTIL(&f, c[i].nresp == 2);
  /* Oldest first, so connections leave the middle of the server's list. */
  for (int i = 0; i < 5; i++) {
    assert_string_equal(c[i].resp[0].body, "hello");
    assert_int_equal(c[i].resp[1].status, 500); /* status 42 is invalid */
    client_done(&c[i]);
    RUN_UNTIL(&f, http_server_connections(f.srv) == (unsigned)(4 - i));
  }
  fx_finish(&f);
}

/* A response larger than the socket takes at once: the part the socket
 * took directly and the queued rest arrive whole and in order, and the
 * pipelined answer behind it follows. */
static void test_partial_write_then_next(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;
  const char *s[] = {"GET /huge HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n"};
  client_start(&c, &f, s, 1);
  RUN_UNTIL(&f, c.nresp == 2);
  assert_int_equal(c.resp[0].status, 200);
  assert_int_equal(c.resp[0].body_len, 32u << 20);
  const char *body = memmem(c.in.data, c.in.len, "\r\n\r\n", 4) + 4;
  size_t bad = 0;
  for (size_t i = 0; i < c.resp[0].body_len; i++)
    bad += body[i] != 'h';
  assert_int_equal(bad, 0);
  assert_string_equal(c.resp[1].body, "hello");
  client_done(&c);
  fx_finish(&f);
}

static void test_close_while_writing(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;
  const char *s[] = {"GET /huge HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n"};
  client_start(&c, &f, s, 1);
  c.no_read = 1;
  RUN_UNTIL(&f, f.hello_done);
  /* The client reads nothing, so the huge write stays in flight and the
   * /hello answer queued behind it; the forced close cancels both. */
  http_server_close(f.srv, 10, on_srv_closed, &f);
  RUN_UNTIL(&f, f.srv_closed);
  client_done(&c);
  fx_finish(&f);
}

static void test_client_gone_while_pending(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;
  /* The /hello answer in the middle is built but waits behind the first
   * /hold: it is discarded with the connection. */
  const char *s[] = {"GET /hold HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n"
                     "GET /hold HTTP/1.1\r\n\r\n"};
  client_start(&c, &f, s, 1);
  RUN_UNTIL(&f, f.nheld == 2);
  assert_true(f.hello_done);
  assert_false(http_req_is_gone(f.held[0]));
  client_done(&c);
  RUN_UNTIL(&f, http_server_connections(f.srv) == 0);
  /* Still valid after the connection was freed. */
  for (int i = 0; i < 2; i++) {
    assert_true(http_req_is_gone(f.held[i]));
    assert_string_equal(http_req_path(f.held[i]), "/hold");
  }
  int before = f.nstatuses;
  respond(f.held[1], 200, "dropped");
  f.held[1] = NULL;
  fx_finish(&f); /* answers held[0] after the server is gone */
  assert_int_equal(f.nstatuses, before);
}

static void test_close_with_inflight(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t busy, busy2, idle;
  const char *s[] = {"GET /hold?a HTTP/1.1\r\n\r\nGET /hold?a HTTP/1.1\r\n\r\n"};
  const char *s2[] = {"GET /hold?b HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n"};
  client_start(&busy, &f, s, 1);
  client_start(&busy2, &f, s2, 1);
  client_start(&idle, &f, NULL, 0);
  RUN_UNTIL(&f, f.nheld == 3 && f.hello_done && http_server_connections(f.srv) == 3);
  /* Sort the held requests: the two of `busy` first, in order. */
  http_req_t *a[2], *b = NULL;
  int na = 0;
  for (int i = 0; i < 3; i++) {
    if (strcmp(http_req_query(f.held[i]), "a") == 0)
      a[na++] = f.held[i];
    else
      b = f.held[i];
    f.held[i] = NULL;
  }
  assert_int_equal(na, 2);
  assert_non_null(b);
  http_server_close(f.srv, 60000, on_srv_closed, &f);
  http_server_close(f.srv, 0, NULL, NULL); /* a second call is ignored */
  /* The idle connection is closed at once; the busy one waits. */
  RUN_UNTIL(&f, idle.eof || idle.read_err);
  assert_false(busy.eof);
  assert_false(f.srv_closed);
  /* Both requests already read are answered, in order; only the last
   * response announces the close. */
  respond(a[1], 200, "second");
  respond(a[0], 200, "first");
  RUN_UNTIL(&f, busy.eof || busy.read_err);
  assert_int_equal(busy.nresp, 2);
  assert_string_equal(busy.resp[0].body, "first");
  assert_false(has_header(&busy.resp[0], "Connection: close\r\n"));
  assert_string_equal(busy.resp[1].body, "second");
  assert_true(has_header(&busy.resp[1], "Connection: close\r\n"));
  assert_false(f.srv_closed);
  /* The /hello answer was built before the shutdown (no close announced);
   * the connection closes once it is written. */
  respond(b, 200, "b");
  RUN_UNTIL(&f, busy2.eof || busy2.read_err);
  assert_int_equal(busy2.nresp, 2);
  assert_string_equal(busy2.resp[0].body, "b");
  assert_string_equal(busy2.resp[1].body, "hello");
  RUN_UNTIL(&f, f.srv_closed);
  client_done(&busy);
  client_done(&busy2);
  client_done(&idle);
  fx_finish(&f);
}

static void test_close_timeout_detaches(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;
  const char *s[] = {"GET /hold HTTP/1.1\r\n\r\n"};
  client_start(&c, &f, s, 1);
  RUN_UNTIL(&f, f.nheld == 1);
  http_server_close(f.srv, 10, on_srv_closed, &f);
  RUN_UNTIL(&f, f.srv_closed);
  assert_true(http_req_is_gone(f.held[0]));
  RUN_UNTIL(&f, c.eof || c.read_err);
  assert_int_equal(c.nresp, 0);
  client_done(&c);
  fx_finish(&f); /* responds to the detached request */
}

static void test_http10_and_connection_close(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;
  const char *s1[] = {"GET /hdr HTTP/1.0\r\nX-Test: a\r\n\r\n"};
  client_start(&c, &f, s1, 1);
  RUN_UNTIL(&f, c.eof || c.read_err);
  assert_true(c.eof);
  assert_int_equal(c.nresp, 1);
  assert_string_equal(c.resp[0].body, "a|1|0");
  assert_true(has_header(&c.resp[0], "Connection: close\r\n"));
  client_done(&c);

  const char *ka = "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
  const char *s2[] = {ka, ka};
  client_start(&c, &f, s2, 2);
  RUN_UNTIL(&f, c.nresp == 2);
  assert_true(has_header(&c.resp[0], "Connection: keep-alive\r\n"));
  assert_false(c.eof);
  client_done(&c);

  /* HTTP/1.1 with Connection: close; a pipelined request after it is
   * ignored. */
  const char *s3[] = {"GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"
                      "GET /hello HTTP/1.1\r\n\r\n"};
  client_start(&c, &f, s3, 1);
  RUN_UNTIL(&f, c.eof || c.read_err);
  assert_int_equal(c.nresp, 1);
  assert_true(has_header(&c.resp[0], "Connection: close\r\n"));
  assert_int_equal(f.handled, 4);
  client_done(&c);
  fx_finish(&f);
}

static void test_expect_continue(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  client_t c;
  const char *s[] = {"POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
                     "data"};
  client_start(&c, &f, s, 2);
  RUN_UNTIL(&f, c.nresp == 2);
  assert_int_equal(c.resp[0].status, 100);
  assert_int_equal(c.resp[1].status, 200);
  assert_string_equal(c.resp[1].body, "POST /echo -|data");
  client_done(&c);
  /* Over the limit: 413 straight away. */
  const char *s2[] = {
    "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 99999\r\n\r\n"};
  client_start(&c, &f, s2, 1);
  RUN_UNTIL(&f, c.nresp >= 1 || c.eof || c.read_err);
  assert_int_equal(c.nresp, 1);
  assert_json_error(&c.resp[0], 413, "payload_too_large");
  client_done(&c);
  fx_finish(&f);
}

/* on_headers refuses a request before its body: the answer comes while the
 * body is still arriving, nothing of it is held, the handler never runs,
 * no 100 Continue is sent, and the connection closes after the answer. */
static void test_reject_before_body(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  size_t n = 256 * 1024;
  char *part = xmalloc(n + 1);
  memset(part, 'x', n);
  part[n] = 0;
  client_t c;
  const char *s[] = {"POST /reject HTTP/1.1\r\nExpect: 100-continue\r\n"
                     "Content-Length: 67108864\r\n\r\n",
                     part};
  client_start(&c, &f, s, 2);
  c.nresp = 1; /* send the body part without waiting for an answer */
  RUN_UNTIL(&f, c.sent == 2);
  c.nresp = 0;
  RUN_UNTIL(&f, parse_resps(&c) >= 1 || c.eof || c.read_err);
  c.nresp = parse_resps(&c);
  assert_int_equal(c.nresp, 1);
  assert_json_error(&c.resp[0], 401, "unauthorized");
  assert_true(has_header(&c.resp[0], "WWW-Authenticate: Bearer\r\n"));
  assert_int_equal(f.handled, 0);
  assert_int_equal(http_server_buffered_bytes(f.srv), 0);
  assert_int_equal(f.nstatuses, 1);
  assert_int_equal(f.statuses[0], 401);
  /* The server closes once the client stops sending (lingering close). */
  RUN_UNTIL(&f, c.eof || c.read_err || c.closed);
  client_done(&c);
  free(part);
  /* Without a body the same refusal is answered too. */
  const char *s2[] = {"GET /reject HTTP/1.1\r\n\r\n"};
  client_start(&c, &f, s2, 1);
  RUN_UNTIL(&f, c.nresp >= 1 || c.eof || c.read_err);
  assert_int_equal(c.resp[0].status, 401);
  assert_int_equal(f.handled, 0);
  client_done(&c);
  fx_finish(&f);
}

/* max_buffered_bytes bounds the body bytes held over all connections:
 * beyond it a request is answered 503 server_busy with Retry-After (a
 * declared length at once, a chunked body when it grows past the cap);
 * bytes are released when the response is written. */
static void test_buffered_cap(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  f.opts.max_buffered_bytes = 100000;
  f.opts.max_body_bytes = 200000;
  fx_start(&f);
  char *held = xmalloc(81000), *more = xmalloc(31000), *chunks = xmalloc(40000);
  int h = snprintf(held, 128, "POST /hold HTTP/1.1\r\nContent-Length: 80000\r\n\r\n");
  memset(held + h, 'a', 80000);
  held[h + 80000] = 0;
  client_t a;
  const char *sa[] = {held};
  client_start(&a, &f, sa, 1);
  RUN_UNTIL(&f, f.nheld == 1);
  assert_int_equal(http_server_buffered_bytes(f.srv), 80000);

  client_t b;
  const char *sb[] = {"POST /echo HTTP/1.1\r\nContent-Length: 30000\r\n\r\n"};
  client_start(&b, &f, sb, 1);
  RUN_UNTIL(&f, b.nresp >= 1 || b.eof || b.read_err);
  assert_int_equal(b.nresp, 1);
  assert_json_error(&b.resp[0], 503, "server_busy");
  assert_true(has_header(&b.resp[0], "Retry-After: 1\r\n"));
  client_done(&b);

  int k = snprintf(chunks, 128, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (int i = 0; i < 6; i++)
    k += snprintf(chunks + k, 40000 - (size_t)k, "1388\r\n%05000d\r\n", 0); /* 5000 bytes */
  snprintf(chunks + k, 40000 - (size_t)k, "0\r\n\r\n");
  const char *sc[] = {chunks};
  client_start(&b, &f, sc, 1);
  RUN_UNTIL(&f, b.nresp >= 1 || b.eof || b.read_err);
  assert_int_equal(b.nresp, 1);
  assert_json_error(&b.resp[0], 503, "server_busy");
  client_done(&b);
  assert_int_equal(http_server_buffered_bytes(f.srv), 80000);

  respond(f.held[0], 200, "ok");
  f.held[0] = NULL;
  RUN_UNTIL(&f, a.nresp == 1);
  RUN_UNTIL(&f, http_server_buffered_bytes(f.srv) == 0);
  client_done(&a);

  h = snprintf(more, 128, "POST /echo HTTP/1.1\r\nContent-Length: 30000\r\n\r\n");
  memset(more + h, 'b', 30000);
  more[h + 30000] = 0;
  const char *sd[] = {more};
  client_start(&b, &f, sd, 1);
  RUN_UNTIL(&f, b.nresp >= 1 || b.eof || b.read_err);
  assert_int_equal(b.resp[0].status, 200);
  client_done(&b);
  RUN_UNTIL(&f, http_server_buffered_bytes(f.srv) == 0);
  free(held);
  free(more);
  free(chunks);
  fx_finish(&f);
}

static void set_flag(void *arg)
{
  *(int *)arg = 1;
}

static void test_start_errors(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  http_server_t *srv = NULL;
  http_server_opts_t o = f.opts;
  o.handler = NULL;
  assert_int_equal(http_server_start(&f.loop, &o, &srv), GRANTD_EINVALID);
  o = f.opts;
  o.host = "not-an-address";
  assert_int_equal(http_server_start(&f.loop, &o, &srv), GRANTD_EINVALID);
  o.host = NULL; /* default 127.0.0.1 */
  o.port = 70000;
  assert_int_equal(http_server_start(&f.loop, &o, &srv), GRANTD_EINVALID);
  fx_start(&f);
  o = f.opts;
  o.port = http_server_port(f.srv);
  assert_int_equal(http_server_start(&f.loop, &o, &srv), UV_EADDRINUSE);
  /* IPv6 loopback, when the machine has it. */
  o.host = "::1";
  o.port = 0;
  if (http_server_start(&f.loop, &o, &srv) == 0) {
    assert_true(http_server_port(srv) > 0);
    http_server_stop_accepting(srv);
    http_server_stop_accepting(srv);
    int closed = 0;
    http_server_close(srv, 0, set_flag, &closed);
    RUN_UNTIL(&f, closed);
  }
  fx_finish(&f);
}

static void on_refused_connect(stream_t *s, int status, void *arg)
{
  int *st = arg;
  *st = status;
  stream_close(s, NULL);
}

static void test_stream_tcp_errors(void **state)
{
  (void)state;
  fx_t f;
  fx_init(&f);
  fx_start(&f);
  unsigned port = http_server_port(f.srv);
  /* Stop listening, then connecting is refused. */
  http_server_close(f.srv, 0, on_srv_closed, &f);
  RUN_UNTIL(&f, f.srv_closed);
  stream_t *s = stream_tcp_new(&f.loop);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", (int)port, &a);
  int st = 1;
  assert_int_equal(stream_tcp_connect(s, (struct sockaddr *)&a, on_refused_connect, &st), 0);
  assert_int_equal(stream_tcp_connect(s, (struct sockaddr *)&a, on_refused_connect, &st),
                   UV_EALREADY);
  RUN_UNTIL(&f, st != 1);
  assert_int_equal(st, UV_ECONNREFUSED);
  s = stream_tcp_new(&f.loop);
  assert_int_equal(stream_read_start(s, NULL), UV_EINVAL);
  stream_close(s, NULL);
  /* Calls on a closing stream fail without callbacks. */
  s = stream_tcp_new(&f.loop);
  stream_close(s, NULL);
  uv_buf_t b = uv_buf_init("x", 1);
  assert_int_equal(stream_write(s, &b, 1, NULL, NULL), UV_ECANCELED);
  assert_int_equal(stream_read_start(s, client_on_read), UV_ECANCELED);
  assert_int_equal(stream_read_stop(s), 0);
  stream_close(s, NULL); /* idempotent */
  fx_finish(&f);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_simple_get),
    cmocka_unit_test(test_post_body_query_headers),
    cmocka_unit_test(test_keep_alive_sequential),
    cmocka_unit_test(test_pipelined_in_order),
    cmocka_unit_test(test_pipeline_backpressure),
    cmocka_unit_test(test_chunked_and_fragmented),
    cmocka_unit_test(test_body_limits),
    cmocka_unit_test(test_header_limits),
    cmocka_unit_test(test_bad_requests),
    cmocka_unit_test(test_timeouts),
    cmocka_unit_test(test_max_connections),
    cmocka_unit_test(test_wrap_refuses),
    cmocka_unit_test(test_many_clients),
    cmocka_unit_test(test_partial_write_then_next),
    cmocka_unit_test(test_close_while_writing),
    cmocka_unit_test(test_client_gone_while_pending),
    cmocka_unit_test(test_close_with_inflight),
    cmocka_unit_test(test_close_timeout_detaches),
    cmocka_unit_test(test_http10_and_connection_close),
    cmocka_unit_test(test_expect_continue),
    cmocka_unit_test(test_reject_before_body),
    cmocka_unit_test(test_buffered_cap),
    cmocka_unit_test(test_start_errors),
    cmocka_unit_test(test_stream_tcp_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
