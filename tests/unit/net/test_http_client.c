/*
 * Unit tests for the outbound HTTP client (src/net/http_client*.c,
 * dns_cache.c). Each test runs one uv loop holding the client and small
 * scripted servers on 127.0.0.1:0 built on stream_t (plain TCP, or TLS via
 * tls_server_wrap with certificates made by the openssl CLI at group
 * setup). A server counts the connections it accepts and the complete
 * requests it reads, and answers request i with script[i] (the last entry
 * repeats): bytes to send, SRV_CLOSE (close without answering) or SRV_HANG
 * (never answer). Waits are conditions polled from a 1 ms timer, never
 * timed assertions. Every test ends with the loop drained and closed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/mem.h"
#include "net/dns_cache.h"
#include "net/http_client.h"
#include "net/http_client_int.h" /* white-box: poison a pooled stream */
#include "net/tls.h"
#include "support.h"

static const char SRV_CLOSE[] = "<close>";
static const char SRV_HANG[] = "<hang>";

/* ---- scripted server ----------------------------------------------------- */

#define SRV_MAX_CONNS 32

typedef struct srv_s srv_t;

typedef struct {
  srv_t *srv;
  stream_t *s;
  int slot;
  buf_t in;
} sconn_t;

struct srv_s {
  uv_loop_t *loop;
  uv_tcp_t lis;
  int port;
  tls_server_ctx_t *tls;
  const char *const *script;
  int nscript;
  int close_after; /* close each connection after its response */
  int accepted;
  int requests;
  int eofs; /* connections the client closed */
  buf_t last_req;
  sconn_t *held; /* the connection of the last SRV_HANG request */
  sconn_t *conns[SRV_MAX_CONNS];
  int closing;
};

typedef struct {
  sconn_t *sc;
  char *data;
} swrite_t;

static void on_sconn_closed(stream_t *s)
{
  sconn_t *sc = s->data;
  buf_free(&sc->in);
  free(sc);
}

static void sconn_close(sconn_t *sc)
{
  if (sc->srv->conns[sc->slot] != sc)
    return;
  sc->srv->conns[sc->slot] = NULL;
  stream_close(sc->s, on_sconn_closed);
}

static void on_swrite(stream_t *s, int status, void *arg)
{
  swrite_t *w = arg;
  (void)s;
  (void)status;
  if (w->sc->srv->close_after)
    sconn_close(w->sc);
  free(w->data);
  free(w);
}

/* Length of the first complete request in buf, or 0. */
static size_t request_len(const buf_t *b)
{
  if (b->len == 0)
    return 0;
  const char *end = strstr(b->data, "\r\n\r\n");
  if (end == NULL)
    return 0;
  size_t head = (size_t)(end - b->data) + 4;
  size_t cl = 0;
  for (const char *p = b->data; p < end; p++) {
    if ((p == b->data || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0)
      cl = strtoul(p + 15, NULL, 10);
  }
  return b->len >= head + cl ? head + cl : 0;
}

static void on_sread(stream_t *s, ssize_t nread, const char *data)
{
  sconn_t *sc = s->data;
  srv_t *srv = sc->srv;
  if (nread < 0) {
    srv->eofs++;
    sconn_close(sc);
    return;
  }
  buf_append(&sc->in, data, (size_t)nread);
  size_t n;
  while ((n = request_len(&sc->in)) > 0) {
    buf_reset(&srv->last_req);
    buf_append(&srv->last_req, sc->in.data, n);
    memmove(sc->in.data, sc->in.data + n, sc->in.len - n);
    sc->in.len -= n;
    sc->in.data[sc->in.len] = '\0';
    int i = srv->requests++;
    const char *ans = srv->script[i < srv->nscript ? i : srv->nscript - 1];
    if (ans == SRV_HANG) {
      srv->held = sc;
      return;
    }
    if (ans == SRV_CLOSE) {
      sconn_close(sc);
      return;
    }
    swrite_t *w = xcalloc(1, sizeof(*w));
    w->sc = sc;
    w->data = xstrdup(ans);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)strlen(ans));
    assert_int_equal(stream_write(s, &b, 1, on_swrite, w), 0);
  }
}

/* Answers the request held by SRV_HANG (its connection must be open). */
static void srv_answer_held(srv_t *srv, const char *ans)
{
  sconn_t *sc = srv->held;
  assert_non_null(sc);
  assert_ptr_equal(srv->conns[sc->slot], sc);
  swrite_t *w = xcalloc(1, sizeof(*w));
  w->sc = sc;
  w->data = xstrdup(ans);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)strlen(ans));
  assert_int_equal(stream_write(sc->s, &b, 1, on_swrite, w), 0);
}

static void on_accept(uv_stream_t *lis, int status)
{
  srv_t *srv = lis->data;
  assert_int_equal(status, 0);
  stream_t *tcp = stream_tcp_new(srv->loop);
  assert_int_equal(uv_accept(lis, (uv_stream_t *)stream_tcp_handle(tcp)), 0);
  sconn_t *sc = xcalloc(1, sizeof(*sc));
  sc->srv = srv;
  sc->s = srv->tls ? tls_server_wrap(srv->tls, tcp) : tcp;
  sc->s->data = sc;
  srv->accepted++;
  int slot = 0;
  while (slot < SRV_MAX_CONNS && srv->conns[slot] != NULL)
    slot++;
  assert_true(slot < SRV_MAX_CONNS);
  sc->slot = slot;
  srv->conns[slot] = sc;
  assert_int_equal(stream_read_start(sc->s, on_sread), 0);
}

/* A server on ip:port (port 0 = ephemeral; IPv4 or IPv6 text). */
static void srv_start_at(srv_t *srv, uv_loop_t *loop, const char *ip, int port,
                         const char *const *script, int n)
{
  memset(srv, 0, sizeof(*srv));
  srv->loop = loop;
  srv->script = script;
  srv->nscript = n;
  struct sockaddr_storage a;
  memset(&a, 0, sizeof(a));
  if (uv_ip4_addr(ip, port, (struct sockaddr_in *)&a) != 0)
    assert_int_equal(uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&a), 0);
  assert_int_equal(uv_tcp_init(loop, &srv->lis), 0);
  srv->lis.data = srv;
  assert_int_equal(uv_tcp_bind(&srv->lis, (const struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&srv->lis, 64, on_accept), 0);
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  uv_tcp_getsockname(&srv->lis, (struct sockaddr *)&ss, &len);
  srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port); /* same offset in sockaddr_in6 */
}

static void srv_start(srv_t *srv, uv_loop_t *loop, const char *const *script, int n)
{
  srv_start_at(srv, loop, "127.0.0.1", 0, script, n);
}

static void srv_close(srv_t *srv)
{
  if (srv->closing)
    return;
  srv->closing = 1;
  for (int i = 0; i < SRV_MAX_CONNS; i++)
    if (srv->conns[i] != NULL)
      sconn_close(srv->conns[i]);
  uv_close((uv_handle_t *)&srv->lis, NULL);
  buf_free(&srv->last_req);
}

/* ---- test context --------------------------------------------------------- */

#define MAXREQ 24

typedef struct tctx_s tctx_t;

typedef struct {
  tctx_t *t;
  int i;
  int done;
  int err;
  int status;
  int sent;
  int reused;
  char body[256];
  size_t body_len;
  char ctype[64];
  char line[64]; /* the request line the server saw (seq mode) */
} result_t;

typedef int (*cond_fn)(tctx_t *t);
typedef void (*step_fn)(tctx_t *t);

struct tctx_s {
  uv_loop_t loop;
  srv_t srv;
  http_client_t *c;
  char url[160];
  char (*urls)[160]; /* when set: request i goes to urls[i % nurls] */
  int nurls;
  http_request_t req;
  result_t res[MAXREQ];
  int issued;
  int ndone;
  int total;       /* requests in the test */
  int seq;         /* issue the next one from the previous callback */
  cond_fn between; /* in seq mode: wait for this before the next request */
  step_fn after;   /* runs (instead of finishing) when all are done */
  uv_timer_t poll;
  cond_fn wait_cond;
  step_fn wait_then;
  int client_closed;
  int finished;
};

static void on_client_closed(void *arg)
{
  tctx_t *t = arg;
  t->client_closed = 1;
}

static void finish(tctx_t *t)
{
  if (t->finished)
    return;
  t->finished = 1;
  http_client_close(t->c, on_client_closed, t);
  srv_close(&t->srv);
  uv_close((uv_handle_t *)&t->poll, NULL);
}

static void on_poll(uv_timer_t *tm)
{
  tctx_t *t = tm->data;
  if (t->wait_cond == NULL || !t->wait_cond(t))
    return;
  uv_timer_stop(tm);
  t->wait_cond = NULL;
  t->wait_then(t);
}

/* Runs `then` once cond holds (checked every millisecond). */
static void wait_for(tctx_t *t, cond_fn cond, step_fn then)
{
  t->wait_cond = cond;
  t->wait_then = then;
  uv_timer_start(&t->poll, on_poll, 1, 1);
}

static void issue(tctx_t *t);

static void on_resp(const http_response_t *resp, int err, void *arg)
{
  result_t *r = arg;
  tctx_t *t = r->t;
  assert_non_null(resp);
  assert_false(r->done);
  r->done = 1;
  r->err = err;
  r->status = resp->status;
  r->sent = resp->may_have_been_sent;
  r->reused = resp->reused;
  assert_non_null(resp->body);
  assert_int_equal(strlen(resp->body), resp->body_len);
  if (resp->body_len < sizeof(r->body)) {
    memcpy(r->body, resp->body, resp->body_len + 1);
  }
  r->body_len = resp->body_len;
  const char *ct = http_response_header(resp, "content-TYPE");
  if (ct != NULL)
    snprintf(r->ctype, sizeof(r->ctype), "%s", ct);
  if (t->seq && t->srv.last_req.data != NULL) {
    const char *eol = strstr(t->srv.last_req.data, "\r\n");
    int n = eol ? (int)(eol - t->srv.last_req.data) : 0;
    snprintf(r->line, sizeof(r->line), "%.*s", n, t->srv.last_req.data);
  }
  if (err != 0) {
    assert_int_equal(resp->status, 0);
    assert_int_equal(resp->nheaders, 0);
  }
  t->ndone++;
  if (t->ndone == t->total) {
    if (t->after != NULL)
      t->after(t);
    else
      finish(t);
  } else if (t->seq) {
    if (t->between != NULL)
      wait_for(t, t->between, issue);
    else
      issue(t);
  }
}

static void issue(tctx_t *t)
{
  result_t *r = &t->res[t->issued++];
  r->t = t;
  r->i = t->issued - 1;
  if (t->urls != NULL)
    t->req.url = t->urls[r->i % t->nurls];
  assert_int_equal(http_client_request(t->c, &t->req, on_resp, r, NULL), 0);
}

/* The servers listen on loopback, so the tests opt in as an operator
 * would (--allow-endpoint-cidr 127.0.0.0/8,::1/128) unless a test brings
 * its own policy, or sets g_no_policy to run with the default. */
static addr_policy_t *g_loopback;
static int g_no_policy;

static addr_policy_t *policy_of(const char *cidrs, int allow_private)
{
  char err[256];
  addr_policy_t *p = addr_policy_new();
  addr_policy_allow_private(p, allow_private);
  if (cidrs != NULL)
    assert_int_equal(addr_policy_add_cidrs(p, cidrs, err, sizeof err), 0);
  return p;
}

static void ctx_init(tctx_t *t, const http_client_opts_t *opts, const char *const *script, int n)
{
  memset(t, 0, sizeof(*t));
  assert_int_equal(uv_loop_init(&t->loop), 0);
  srv_start(&t->srv, &t->loop, script, n);
  http_client_opts_t o;
  memset(&o, 0, sizeof(o));
  if (opts != NULL)
    o = *opts;
  if (o.endpoint_policy == NULL && !g_no_policy)
    o.endpoint_policy = g_loopback;
  o.allow_insecure_http = 1;
  t->c = http_client_new(&t->loop, &o);
  snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d/token?x=1", t->srv.port);
  t->req.url = t->url;
  uv_timer_init(&t->loop, &t->poll);
  t->poll.data = t;
}

static void ctx_run(tctx_t *t)
{
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_true(t->finished);
  assert_true(t->client_closed);
  assert_int_equal(uv_loop_close(&t->loop), 0);
}

static http_client_stats_t stats(tctx_t *t)
{
  http_client_stats_t s;
  http_client_get_stats(t->c, &s);
  return s;
}

/* Stats are read in `after` hooks (the client is freed once closed). */
static http_client_stats_t g_st;
static void snap_finish(tctx_t *t)
{
  g_st = stats(t);
  finish(t);
}

#define OK_HELLO "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"

/* ---- basic exchanges ------------------------------------------------------ */

static void test_get_content_length(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[0].status, 200);
  assert_string_equal(t.res[0].body, "hello");
  assert_string_equal(t.res[0].ctype, "text/plain");
  assert_int_equal(t.res[0].sent, 1);
  assert_int_equal(t.res[0].reused, 0);
  assert_int_equal(g_st.ok, 1);
  assert_int_equal(g_st.idle, 1);
  assert_int_equal(t.srv.accepted, 1);
}

static const char *g_last_req;
static void keep_req_finish(tctx_t *t)
{
  g_last_req = xstrdup(t->srv.last_req.data);
  finish(t);
}

static void test_post_body_and_headers(void **state)
{
  (void)state;
  static const char *const script[] = {
    "HTTP/1.1 201 Created\r\nX-Empty:\r\nRetry-After:  7  \r\nContent-Length: 2\r\n\r\nok"};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  http_client_header_t h[] = {{"Content-Type", "application/x-www-form-urlencoded"},
                              {"Authorization", "Basic abc"},
                              {"User-Agent", "tester/1"}};
  t.req.method = "POST";
  t.req.headers = h;
  t.req.nheaders = 3;
  t.req.body = "grant_type=refresh_token";
  t.req.body_len = strlen("grant_type=refresh_token");
  t.total = 1;
  t.after = keep_req_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[0].status, 201);
  assert_string_equal(t.res[0].body, "ok");
  const char *q = g_last_req;
  assert_non_null(strstr(q, "POST /token?x=1 HTTP/1.1\r\n"));
  assert_non_null(strstr(q, "\r\nHost: 127.0.0.1:"));
  assert_non_null(strstr(q, "\r\nContent-Length: 24\r\n"));
  assert_non_null(strstr(q, "\r\nAuthorization: Basic abc\r\n"));
  assert_non_null(strstr(q, "\r\nUser-Agent: tester/1\r\n"));
  assert_null(strstr(q, "grantd"));
  assert_non_null(strstr(q, "\r\n\r\ngrant_type=refresh_token"));
  free((void *)g_last_req);
}

/* Content-Length on requests: 0 for a POST without a body, the exact
 * decimal length otherwise, none for a GET. */
static void test_request_content_length(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  static char big[123457];
  memset(big, 'b', sizeof big);
  const struct {
    const char *method;
    const char *body;
    size_t len;
    const char *want;
  } cases[] = {{"POST", NULL, 0, "\r\nContent-Length: 0\r\n"},
               {"POST", big, sizeof big, "\r\nContent-Length: 123457\r\n"},
               {"POST", "x", 1, "\r\nContent-Length: 1\r\n"},
               {"GET", NULL, 0, NULL}};
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    tctx_t t;
    ctx_init(&t, NULL, script, 1);
    t.req.method = cases[i].method;
    t.req.body = cases[i].body;
    t.req.body_len = cases[i].len;
    t.total = 1;
    t.after = keep_req_finish;
    issue(&t);
    ctx_run(&t);
    assert_int_equal(t.res[0].err, 0);
    if (cases[i].want != NULL)
      assert_non_null(strstr(g_last_req, cases[i].want));
    else
      assert_null(strstr(g_last_req, "Content-Length"));
    assert_non_null(strstr(g_last_req, "\r\nUser-Agent: "));
    free((void *)g_last_req);
  }
}

/* Header values: trimmed, empty ones kept, lookups case-insensitive. */
static http_response_t g_hdr_seen;
static char g_retry[16];
static int g_has_empty;
static void on_hdr_resp(const http_response_t *resp, int err, void *arg)
{
  tctx_t *t = arg;
  assert_int_equal(err, 0);
  g_hdr_seen.nheaders = resp->nheaders;
  snprintf(g_retry, sizeof(g_retry), "%s", http_response_header(resp, "retry-after"));
  const char *e = http_response_header(resp, "X-EMPTY");
  g_has_empty = e != NULL && *e == '\0';
  assert_null(http_response_header(resp, "X-Missing"));
  assert_null(http_response_header(NULL, "X"));
  finish(t);
}

static void test_response_headers(void **state)
{
  (void)state;
  static const char *const script[] = {
    "HTTP/1.1 429 Too Many\r\nX-Empty:\r\nRetry-After:  7  \r\nContent-Length: 0\r\n\r\n"};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  assert_int_equal(http_client_request(t.c, &t.req, on_hdr_resp, &t, NULL), 0);
  ctx_run(&t);
  assert_int_equal(g_hdr_seen.nheaders, 3);
  assert_string_equal(g_retry, "7");
  assert_true(g_has_empty);
}

static void test_chunked(void **state)
{
  (void)state;
  static const char *const script[] = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                       "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_string_equal(t.res[0].body, "hello world");
  assert_int_equal(g_st.idle, 1); /* chunked keeps the connection */
}

static void test_body_until_close(void **state)
{
  (void)state;
  static const char *const script[] = {"HTTP/1.1 200 OK\r\n\r\nstream body"};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.srv.close_after = 1;
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_string_equal(t.res[0].body, "stream body");
  assert_int_equal(g_st.idle, 0);
  assert_int_equal(g_st.conns, 0);
}

static void test_interim_100_continue(void **state)
{
  (void)state;
  static const char *const script[] = {
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 1;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[0].status, 200);
  assert_string_equal(t.res[0].body, "hello");
}

static void test_head_has_no_body(void **state)
{
  (void)state;
  static const char *const script[] = {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", OK_HELLO};
  tctx_t t;
  ctx_init(&t, NULL, script, 2);
  t.req.method = "HEAD";
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[0].body_len, 0);
  assert_int_equal(g_st.idle, 1);
}

/* ---- pooling -------------------------------------------------------------- */

static void test_keepalive_reuse(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 5;
  t.seq = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(t.res[i].err, 0);
    assert_int_equal(t.res[i].reused, i > 0);
  }
  assert_int_equal(t.srv.accepted, 1);
  assert_int_equal(t.srv.requests, 5);
  assert_int_equal(g_st.conns_opened, 1);
  assert_int_equal(g_st.reused, 4);
  assert_int_equal(g_st.retried, 0);
}

/* More distinct URLs than the client's parsed-URL cache holds, in turns:
 * every request still goes to its own path (evicted entries are parsed
 * again, kept ones reused). */
static void test_url_cache_rotation(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  char urls[7][160];
  for (int i = 0; i < 7; i++)
    snprintf(urls[i], sizeof urls[i], "http://127.0.0.1:%d/p%d?q=%d", t.srv.port, i, i);
  t.urls = urls;
  t.nurls = 7;
  t.total = 21;
  t.seq = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  for (int i = 0; i < 21; i++) {
    char want[64];
    snprintf(want, sizeof want, "GET /p%d?q=%d HTTP/1.1", i % 7, i % 7);
    assert_int_equal(t.res[i].err, 0);
    assert_string_equal(t.res[i].line, want);
  }
  assert_int_equal(t.srv.accepted, 1);
}

static void test_pool_limit_queueing(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  http_client_opts_t o = {.max_per_origin = 2};
  tctx_t t;
  ctx_init(&t, &o, script, 1);
  t.total = 5;
  t.after = snap_finish;
  for (int i = 0; i < 5; i++)
    issue(&t);
  http_origin_stats_t os;
  assert_int_equal(http_client_origin_stats(t.c, t.url, &os), 0);
  assert_int_equal(os.queued, 5);
  assert_int_equal(os.conns, 2);
  assert_int_equal(os.inflight, 0);
  char other[64];
  snprintf(other, sizeof(other), "http://127.0.0.1:%d/",
           t.srv.port + 1 == 65536 ? 1 : t.srv.port + 1);
  assert_int_equal(http_client_origin_stats(t.c, other, &os), GRANTD_ENOT_FOUND);
  assert_int_equal(http_client_origin_stats(t.c, "nope", &os), GRANTD_EBAD_URL);
  ctx_run(&t);
  for (int i = 0; i < 5; i++)
    assert_int_equal(t.res[i].err, 0);
  assert_int_equal(t.srv.accepted, 2);
  assert_int_equal(t.srv.requests, 5);
  assert_int_equal(g_st.conns_opened, 2);
  assert_int_equal(g_st.reused, 3);
}

/* max_total = 1 across two origins: the second origin's request waits, then
 * the first origin's idle connection is closed to make room. */
static srv_t g_srv2;
static void close_srv2(tctx_t *t)
{
  g_st = stats(t);
  srv_close(&g_srv2);
  finish(t);
}

static void test_global_limit_evicts_idle(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  http_client_opts_t o = {.max_total = 1};
  tctx_t t;
  ctx_init(&t, &o, script, 1);
  srv_start(&g_srv2, &t.loop, script, 1);
  char url2[64];
  snprintf(url2, sizeof(url2), "http://127.0.0.1:%d/", g_srv2.port);
  t.total = 2;
  t.after = close_srv2;
  issue(&t);
  t.req.url = url2;
  issue(&t);
  assert_int_equal(stats(&t).queued, 2);
  assert_int_equal(stats(&t).conns, 1);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[1].err, 0);
  assert_int_equal(t.srv.accepted, 1);
  assert_int_equal(g_srv2.accepted, 1);
  assert_int_equal(g_st.conns_opened, 2);
  assert_int_equal(g_st.conns, 1);
}

static int idle_timed_out(tctx_t *t)
{
  return stats(t).idle_timeouts == 1 && t->srv.eofs == 1;
}

static void wait_idle_timeout(tctx_t *t)
{
  wait_for(t, idle_timed_out, snap_finish);
}

static void test_idle_timeout(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  http_client_opts_t o = {.idle_timeout_ms = 20};
  tctx_t t;
  ctx_init(&t, &o, script, 1);
  t.total = 1;
  t.after = wait_idle_timeout;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(g_st.idle, 0);
  assert_int_equal(g_st.conns, 0);
  assert_int_equal(g_st.idle_dropped, 0);
}

static int idle_dropped(tctx_t *t)
{
  return stats(t).idle_dropped == 1 && stats(t).conns == 0;
}

/* The server closes a pooled connection while it is idle: the client sees
 * it, drops it, and the next request goes on a fresh connection without
 * anything being sent twice. */
static void test_server_closes_idle(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.srv.close_after = 1;
  t.total = 2;
  t.seq = 1;
  t.between = idle_dropped;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[1].err, 0);
  assert_int_equal(t.res[1].reused, 0);
  assert_int_equal(t.srv.accepted, 2);
  assert_int_equal(t.srv.requests, 2);
  assert_int_equal(g_st.conns_opened, 2);
  assert_int_equal(g_st.retried, 0);
  assert_int_equal(g_st.reused, 0);
}

static void test_connection_close_not_pooled(void **state)
{
  (void)state;
  static const char *const script[] = {
    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 2;
  t.seq = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[1].err, 0);
  assert_int_equal(t.srv.accepted, 2);
  assert_int_equal(g_st.reused, 0);
  assert_int_equal(g_st.idle, 0);
  assert_int_equal(g_st.idle_dropped, 0);
}

static void test_http10_not_pooled(void **state)
{
  (void)state;
  static const char *const script[] = {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 2;
  t.seq = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[1].err, 0);
  assert_int_equal(t.srv.accepted, 2);
  assert_int_equal(g_st.reused, 0);
  assert_int_equal(g_st.idle, 0);
}

/* ---- failures ------------------------------------------------------------- */

static void test_closed_after_request_not_resent(void **state)
{
  (void)state;
  static const char *const script[] = {SRV_CLOSE};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, GRANTD_ECONN_CLOSED);
  assert_int_equal(t.res[0].sent, 1);
  assert_int_equal(t.srv.requests, 1);
  assert_int_equal(t.srv.accepted, 1);
  assert_int_equal(g_st.retried, 0);
  assert_int_equal(g_st.failed, 1);
}

/* Closed on the second request of a reused connection: still not resent. */
static void test_reused_closed_after_request(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO, SRV_CLOSE};
  tctx_t t;
  ctx_init(&t, NULL, script, 2);
  t.total = 2;
  t.seq = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[1].err, GRANTD_ECONN_CLOSED);
  assert_int_equal(t.res[1].sent, 1);
  assert_int_equal(t.res[1].reused, 0); /* failures carry no response fields */
  assert_int_equal(t.srv.requests, 2);
  assert_int_equal(t.srv.accepted, 1);
  assert_int_equal(g_st.retried, 0);
}

/* A pooled connection whose transport refuses the write synchronously
 * (nothing was handed to it): the request provably never left, so it goes
 * out once more on a fresh connection, and is counted as retried. The
 * refusal is injected by swapping the pooled stream's write method. */
static stream_vtbl_t g_fail_vt;
static int refuse_write(stream_t *s, const uv_buf_t *bufs, unsigned n, stream_write_cb cb,
                        void *arg)
{
  (void)s;
  (void)bufs;
  (void)n;
  (void)cb;
  (void)arg;
  return UV_EPIPE;
}

static hc_conn_t *the_idle_conn(tctx_t *t)
{
  hc_origin_t *o = container_of(t->c->origins.next, hc_origin_t, link);
  assert_int_equal(o->nidle, 1);
  return container_of(o->idle.next, hc_conn_t, idle_link);
}

static int poison_idle(tctx_t *t)
{
  hc_conn_t *k = the_idle_conn(t);
  g_fail_vt = *k->s->vt;
  g_fail_vt.write = refuse_write;
  k->s->vt = &g_fail_vt;
  return 1;
}

static void test_unsent_request_retried_once(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 2;
  t.seq = 1;
  t.between = poison_idle;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[1].err, 0);
  assert_int_equal(t.res[1].reused, 0);
  assert_int_equal(t.srv.accepted, 2);
  assert_int_equal(t.srv.requests, 2); /* each request reached it once */
  assert_int_equal(g_st.retried, 1);
  assert_int_equal(g_st.conns_opened, 2);
}

/* A response can overtake its request's write callback. The connection
 * must still be pooled once the callback comes. The write callback is
 * held back by swapping the stream's write method for one that parks it. */
static const stream_vtbl_t *g_orig_vt;
static stream_t *g_held_s;
static stream_write_cb g_held_cb;
static void *g_held_arg;
static int g_held_status;
static int g_held_done;

static void on_parked_write(stream_t *s, int status, void *arg)
{
  (void)arg;
  g_held_s = s;
  g_held_status = status;
  g_held_done = 1;
}

static int parking_write(stream_t *s, const uv_buf_t *bufs, unsigned n, stream_write_cb cb,
                         void *arg)
{
  g_held_cb = cb;
  g_held_arg = arg;
  g_held_done = 0;
  return g_orig_vt->write(s, bufs, n, on_parked_write, NULL);
}

static int park_then_release(tctx_t *t)
{
  if (t->ndone == 1) { /* before the 2nd request: park its write callback */
    hc_conn_t *k = the_idle_conn(t);
    g_orig_vt = k->s->vt;
    g_fail_vt = *g_orig_vt;
    g_fail_vt.write = parking_write;
    k->s->vt = &g_fail_vt;
    return 1;
  }
  /* Before the 3rd: the 2nd response is in; its connection is not pooled
   * until the parked callback runs. */
  if (g_held_cb != NULL) {
    assert_true(g_held_done);
    assert_int_equal(stats(t).idle, 0);
    assert_int_equal(stats(t).conns, 1);
    stream_write_cb cb = g_held_cb;
    g_held_cb = NULL;
    g_held_s->vt = g_orig_vt;
    cb(g_held_s, g_held_status, g_held_arg);
  }
  return stats(t).idle == 1;
}

static void test_response_before_write_callback(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 3;
  t.seq = 1;
  t.between = park_then_release;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  for (int i = 0; i < 3; i++)
    assert_int_equal(t.res[i].err, 0);
  assert_int_equal(t.res[2].reused, 1);
  assert_int_equal(t.srv.accepted, 1);
  assert_int_equal(g_st.reused, 2);
}

/* The server closes a pooled connection and the FIN is already in the
 * client's socket, but the loop has not read it yet when the next request
 * is dispatched: the pre-write check sees the EOF, drops the connection
 * and uses a new one; nothing is sent on the dead one. */
static int close_server_side_now(tctx_t *t)
{
  hc_conn_t *k = the_idle_conn(t);
  for (int i = 0; i < SRV_MAX_CONNS; i++)
    if (t->srv.conns[i] != NULL)
      sconn_close(t->srv.conns[i]);
  uv_os_fd_t fd;
  assert_int_equal(uv_fileno((uv_handle_t *)stream_tcp_handle(k->tcp), &fd), 0);
  char b;
  while (recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) != 0)
    uv_sleep(1); /* wait for the FIN to land */
  return 1;
}

static void test_idle_close_seen_before_write(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 2;
  t.seq = 1;
  t.between = close_server_side_now;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[1].err, 0);
  assert_int_equal(t.res[1].reused, 0);
  assert_int_equal(t.srv.accepted, 2);
  assert_int_equal(t.srv.requests, 2);
  assert_int_equal(g_st.idle_dropped, 1);
  assert_int_equal(g_st.retried, 0);
}

static void test_truncated_body(void **state)
{
  (void)state;
  static const char *const script[] = {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.srv.close_after = 1;
  t.total = 1;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, GRANTD_ECONN_CLOSED);
  assert_int_equal(t.res[0].sent, 1);
}

static int conns_zero(tctx_t *t)
{
  return stats(t).conns == 0 && t->srv.eofs == 1;
}

static void wait_conns_closed(tctx_t *t)
{
  wait_for(t, conns_zero, snap_finish);
}

/* The first request pools a connection; the second is written on it at
 * once (so it was certainly sent) and gets no answer. */
static int set_short_timeout(tctx_t *t)
{
  t->req.timeout_ms = 1;
  return 1;
}

static void test_response_timeout(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO, SRV_HANG};
  tctx_t t;
  ctx_init(&t, NULL, script, 2);
  t.total = 2;
  t.seq = 1;
  t.between = set_short_timeout;
  t.after = wait_conns_closed;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[1].err, GRANTD_ETIMEOUT);
  assert_int_equal(t.res[1].sent, 1);
  assert_int_equal(t.srv.requests, 2);
  assert_int_equal(g_st.inflight, 0);
  assert_int_equal(g_st.idle, 0);
}

static void test_connect_refused(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  /* A port that was just bound and closed: nothing listens there. */
  uv_tcp_t tmp;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(&t.loop, &tmp);
  assert_int_equal(uv_tcp_bind(&tmp, (const struct sockaddr *)&a, 0), 0);
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  uv_tcp_getsockname(&tmp, (struct sockaddr *)&ss, &len);
  int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  uv_close((uv_handle_t *)&tmp, NULL);
  snprintf(t.url, sizeof(t.url), "http://127.0.0.1:%d/", port);
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, GRANTD_ECONNECT);
  assert_int_equal(t.res[0].sent, 0);
  assert_int_equal(g_st.conns_failed, 1);
  assert_int_equal(g_st.conns, 0);
}

static void test_body_too_large(void **state)
{
  (void)state;
  static const char *const script[] = {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
                                       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                       "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"};
  http_client_opts_t o = {.max_body = 16};
  tctx_t t;
  ctx_init(&t, &o, script, 2);
  t.total = 2;
  t.seq = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, GRANTD_ETOO_LARGE);
  assert_int_equal(t.res[0].sent, 1);
  assert_int_equal(t.res[1].err, GRANTD_ETOO_LARGE);
  assert_int_equal(t.srv.accepted, 2); /* never reused after an error */
}

static char g_big_headers[HTTP_CLIENT_MAX_HEADER_BYTES + 256];

static void test_headers_too_large(void **state)
{
  (void)state;
  buf_t b = BUF_INIT;
  buf_puts(&b, "HTTP/1.1 200 OK\r\n");
  while (b.len < HTTP_CLIENT_MAX_HEADER_BYTES)
    buf_puts(&b, "X-Filler: 0123456789012345678901234567890123456789\r\n");
  buf_puts(&b, "Content-Length: 0\r\n\r\n");
  snprintf(g_big_headers, sizeof(g_big_headers), "%s", b.data);
  buf_free(&b);
  static const char *script[1];
  script[0] = g_big_headers;
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 1;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, GRANTD_ETOO_LARGE);
}

static void test_malformed_response(void **state)
{
  (void)state;
  static const char *const script[] = {"HTTP/1.1 2x0 OK\r\n\r\n", "garbage\r\n\r\n"};
  tctx_t t;
  ctx_init(&t, NULL, script, 2);
  t.total = 2;
  t.seq = 1;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, GRANTD_EHTTP_PARSE);
  assert_int_equal(t.res[0].sent, 1);
  assert_int_equal(t.res[1].err, GRANTD_EHTTP_PARSE);
}

/* Bytes after a complete response: the answer is used, the connection is
 * not pooled. */
static void test_trailing_garbage_not_pooled(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO "HTTP/1.1 200 OK\r\n"};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(g_st.idle, 0);
}

static void never_cb(const http_response_t *resp, int err, void *arg)
{
  (void)resp;
  (void)err;
  (void)arg;
  fail_msg("callback ran for a refused request");
}

static void test_refused_requests(void **state)
{
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  http_client_t *c = http_client_new(&loop, NULL);
  http_request_t r = {.url = "http://127.0.0.1:9/"};
  assert_int_equal(http_client_request(c, &r, never_cb, NULL, NULL), GRANTD_EINSECURE_URL);
  r.url = "ftp://example.com/";
  assert_int_equal(http_client_request(c, &r, never_cb, NULL, NULL), GRANTD_EBAD_URL);
  r.url = "https://";
  assert_int_equal(http_client_request(c, &r, never_cb, NULL, NULL), GRANTD_EBAD_URL);
  r.url = NULL;
  assert_int_equal(http_client_request(c, &r, never_cb, NULL, NULL), GRANTD_EBAD_URL);
  r.url = "https://example.com/"; /* no TLS context anywhere */
  assert_int_equal(http_client_request(c, &r, never_cb, NULL, NULL), GRANTD_ECONFIG);
  assert_int_equal(http_client_request(c, NULL, never_cb, NULL, NULL), GRANTD_EINVALID);
  http_client_stats_t s;
  http_client_get_stats(c, &s);
  assert_int_equal(s.requests, 0);
  http_client_close(c, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);

  /* With http allowed: bad methods and headers. */
  assert_int_equal(uv_loop_init(&loop), 0);
  http_client_opts_t o = {.allow_insecure_http = 1};
  c = http_client_new(&loop, &o);
  r.url = "http://127.0.0.1:9/";
  r.method = "GE T";
  assert_int_equal(http_client_request(c, &r, never_cb, NULL, NULL), GRANTD_EINVALID);
  r.method = "";
  assert_int_equal(http_client_request(c, &r, never_cb, NULL, NULL), GRANTD_EINVALID);
  r.method = "POST";
  http_client_header_t bad[][1] = {{{"X-A", "1\r\nX-Injected: 1"}},
                                   {{"Bad Name", "1"}},
                                   {{"Content-Length", "3"}},
                                   {{"host", "evil"}},
                                   {{"X-Null", NULL}}};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    r.headers = bad[i];
    r.nheaders = 1;
    assert_int_equal(http_client_request(c, &r, never_cb, NULL, NULL), GRANTD_EINVALID);
  }
  r.headers = NULL;
  r.nheaders = 0;
  r.body_len = 3; /* without a body pointer */
  assert_int_equal(http_client_request(c, &r, never_cb, NULL, NULL), GRANTD_EINVALID);
  http_client_close(c, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_dns_failure(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  snprintf(t.url, sizeof(t.url), "http://nonexistent.invalid/");
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, GRANTD_EDNS);
  assert_int_equal(t.res[0].sent, 0);
  assert_int_equal(g_st.dns_lookups, 1);
}

/* "localhost" goes through uv_getaddrinfo once; the second connection (the
 * first answer said Connection: close) uses the cached addresses. If the
 * resolver lists ::1 first, the IPv6 connect fails (the server listens on
 * 127.0.0.1 only) and the next address is tried. */
static void test_dns_cache_hit(void **state)
{
  (void)state;
  static const char *const script[] = {
    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  snprintf(t.url, sizeof(t.url), "http://localhost:%d/", t.srv.port);
  t.total = 2;
  t.seq = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[1].err, 0);
  assert_int_equal(g_st.dns_lookups, 1);
  assert_int_equal(g_st.dns_hits, 1);
  assert_int_equal(t.srv.accepted, 2);
}

/* Two connections set up together for "localhost" share one lookup. */
static void test_dns_shared_lookup(void **state)
{
  (void)state;
  static const char *const script[] = {SRV_HANG, OK_HELLO};
  tctx_t t;
  ctx_init(&t, NULL, script, 2);
  snprintf(t.url, sizeof(t.url), "http://localhost:%d/", t.srv.port);
  t.total = 2;
  t.after = snap_finish;
  issue(&t);
  issue(&t);
  while (t.srv.requests < 2)
    uv_run(&t.loop, UV_RUN_ONCE);
  srv_answer_held(&t.srv, OK_HELLO);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[1].err, 0);
  assert_int_equal(g_st.dns_lookups, 1);
  assert_int_equal(t.srv.accepted, 2);
}

/* dns_cache on its own: literals, TTL expiry, cancel, free while busy. */
static int g_dns_calls;
static int g_dns_status;
static dns_addrs_t g_dns_addrs;
static void on_dns(int status, const dns_addrs_t *a, void *arg)
{
  (void)arg;
  g_dns_calls++;
  g_dns_status = status;
  g_dns_addrs = *a;
}

static void test_dns_cache_unit(void **state)
{
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  dns_cache_t *d = dns_cache_new(&loop, 5);
  dns_addrs_t a;
  assert_int_equal(dns_cache_lookup(d, "127.0.0.1", 8080, &a), 0);
  assert_int_equal(a.n, 1);
  assert_int_equal(ntohs(((struct sockaddr_in *)&a.addr[0])->sin_port), 8080);
  assert_int_equal(dns_cache_lookup(d, "::1", 443, &a), 0);
  assert_int_equal(a.addr[0].ss_family, AF_INET6);
  assert_int_equal(dns_cache_lookup(d, "localhost", 80, &a), GRANTD_ENOT_FOUND);

  dns_query_t *q = NULL;
  assert_int_equal(dns_cache_resolve(d, "localhost", 81, on_dns, NULL, &q), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(g_dns_calls, 1);
  assert_int_equal(g_dns_status, 0);
  assert_true(g_dns_addrs.n >= 1);
  assert_int_equal(dns_cache_lookup(d, "localhost", 82, &a), 0);
  assert_int_equal(a.n, g_dns_addrs.n);
  assert_int_equal(dns_cache_stats(d)->hits, 1);
  /* Past the TTL the entry is gone. */
  uv_sleep(10);
  uv_update_time(&loop);
  assert_int_equal(dns_cache_lookup(d, "localhost", 82, &a), GRANTD_ENOT_FOUND);

  /* A cancelled query never calls back; the lookup still completes. */
  assert_int_equal(dns_cache_resolve(d, "localhost", 81, on_dns, NULL, &q), 0);
  dns_query_cancel(q);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(g_dns_calls, 1);
  assert_int_equal(dns_cache_stats(d)->lookups, 2);

  /* Freeing the cache with a query pending drops it quietly. */
  assert_int_equal(dns_cache_resolve(d, "nonexistent.invalid", 81, on_dns, NULL, &q), 0);
  dns_cache_free(d);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(g_dns_calls, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* A listener whose accept queue is full drops SYNs, so a connect hangs
 * until connect_timeout_ms. The queue (backlog 0 = one connection) is
 * filled by a blocking connect that is never accepted. */
static void test_connect_timeout(void **state)
{
  (void)state;
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(lfd >= 0);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(lfd, 0), 0);
  socklen_t alen = sizeof(a);
  getsockname(lfd, (struct sockaddr *)&a, &alen);
  int fill = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(fill, (struct sockaddr *)&a, sizeof(a)), 0);

  static const char *const script[] = {OK_HELLO};
  http_client_opts_t o = {.connect_timeout_ms = 50};
  tctx_t t;
  ctx_init(&t, &o, script, 1);
  snprintf(t.url, sizeof(t.url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  close(fill);
  close(lfd);
  assert_int_equal(t.res[0].err, GRANTD_ECONNECT_TIMEOUT);
  assert_int_equal(t.res[0].sent, 0);
  assert_int_equal(g_st.conns_failed, 1);
}

/* ---- cancel and shutdown --------------------------------------------------- */

static http_client_handle_t *g_h[2];

static int first_received(tctx_t *t)
{
  return t->srv.requests == 1;
}

static void cancel_both(tctx_t *t)
{
  http_client_cancel(g_h[1]); /* queued behind the first */
  assert_true(t->res[1].done);
  assert_int_equal(t->res[1].err, GRANTD_ECANCELLED);
  assert_int_equal(t->res[1].sent, 0);
  http_client_cancel(g_h[0]); /* written, waiting for the answer */
  assert_true(t->res[0].done);
  assert_int_equal(t->res[0].err, GRANTD_ECANCELLED);
  assert_int_equal(t->res[0].sent, 1);
}

static void test_cancel(void **state)
{
  (void)state;
  static const char *const script[] = {SRV_HANG};
  http_client_opts_t o = {.max_per_origin = 1};
  tctx_t t;
  ctx_init(&t, &o, script, 1);
  t.total = 2;
  t.after = wait_conns_closed;
  for (int i = 0; i < 2; i++) {
    result_t *r = &t.res[t.issued++];
    r->t = &t;
    assert_int_equal(http_client_request(t.c, &t.req, on_resp, r, &g_h[i]), 0);
  }
  wait_for(&t, first_received, cancel_both);
  ctx_run(&t);
  assert_int_equal(t.srv.requests, 1);
  assert_int_equal(g_st.conns, 0);
}

static void noop_step(tctx_t *t)
{
  (void)t;
}

/* Close with one request in flight and two queued: the queued ones fail at
 * once, new ones are refused, the in-flight one still gets its answer, and
 * the close callback runs after it. */
static void test_shutdown(void **state)
{
  (void)state;
  static const char *const script[] = {SRV_HANG};
  http_client_opts_t o = {.max_per_origin = 1};
  tctx_t t;
  ctx_init(&t, &o, script, 1);
  t.total = 3;
  t.after = noop_step;
  issue(&t);
  while (t.srv.requests == 0)
    uv_run(&t.loop, UV_RUN_ONCE);
  issue(&t);
  issue(&t);
  http_client_close(t.c, on_client_closed, &t);
  for (int i = 1; i < 3; i++) {
    assert_true(t.res[i].done);
    assert_int_equal(t.res[i].err, GRANTD_ESHUTDOWN);
    assert_int_equal(t.res[i].sent, 0);
  }
  assert_false(t.res[0].done);
  http_request_t r = {.url = t.url};
  assert_int_equal(http_client_request(t.c, &r, never_cb, NULL, NULL), GRANTD_ESHUTDOWN);
  srv_answer_held(&t.srv, OK_HELLO);
  while (!t.client_closed)
    uv_run(&t.loop, UV_RUN_ONCE);
  assert_true(t.res[0].done);
  assert_int_equal(t.res[0].err, 0);
  assert_string_equal(t.res[0].body, "hello");
  t.finished = 1;
  srv_close(&t.srv);
  uv_close((uv_handle_t *)&t.poll, NULL);
  uv_run(&t.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&t.loop), 0);
}

/* ---- endpoint policy (SSRF guard) ------------------------------------------ */

#define OK_CLOSE "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"

/* Makes `host` resolve to ips[0..n) (the client's DNS cache, as if
 * getaddrinfo had answered so). */
static void seed(tctx_t *t, const char *host, const char *const *ips, unsigned n)
{
  dns_addrs_t a;
  memset(&a, 0, sizeof(a));
  for (unsigned i = 0; i < n; i++) {
    if (uv_ip4_addr(ips[i], 0, (struct sockaddr_in *)&a.addr[i]) != 0)
      assert_int_equal(uv_ip6_addr(ips[i], 0, (struct sockaddr_in6 *)&a.addr[i]), 0);
  }
  a.n = n;
  dns_cache_put(t->c->dns, host, &a);
}

/* With no policy at all (the default), a loopback literal is never dialled. */
static void test_policy_default_refuses_loopback(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  tctx_t t;
  g_no_policy = 1;
  ctx_init(&t, NULL, script, 1);
  g_no_policy = 0;
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, GRANTD_EENDPOINT_FORBIDDEN);
  assert_string_equal(err_name(t.res[0].err), "endpoint_forbidden");
  assert_int_equal(t.res[0].sent, 0);
  assert_int_equal(t.srv.accepted, 0);
  assert_int_equal(g_st.forbidden, 1);
  assert_int_equal(g_st.conns_failed, 1);
}

/* A name that resolves to loopback only: refused after resolution, with
 * endpoint_forbidden rather than a network error; allowed by a CIDR or by
 * allow_private. */
static void test_policy_name_resolving_to_loopback(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  addr_policy_t *strict = policy_of("10.0.0.0/8", 0);
  addr_policy_t *open = policy_of(NULL, 1);
  const addr_policy_t *pols[] = {strict, g_loopback, open};
  const int want[] = {GRANTD_EENDPOINT_FORBIDDEN, 0, 0};
  for (int i = 0; i < 3; i++) {
    http_client_opts_t o = {.endpoint_policy = pols[i]};
    tctx_t t;
    ctx_init(&t, &o, script, 1);
    snprintf(t.url, sizeof(t.url), "http://localhost:%d/", t.srv.port);
    static const char *const lo[] = {"127.0.0.1"};
    seed(&t, "localhost", lo, 1);
    t.total = 1;
    t.after = snap_finish;
    issue(&t);
    ctx_run(&t);
    assert_int_equal(t.res[0].err, want[i]);
    assert_int_equal(t.srv.accepted, want[i] ? 0 : 1);
  }
  addr_policy_free(strict);
  addr_policy_free(open);
}

static srv_t *g_other;
static void close_srv2_finish(tctx_t *t)
{
  srv_close(g_other);
  snap_finish(t);
}

/* A name with a forbidden and an allowed address, forbidden first: only the
 * allowed one is ever dialled (a server listens on both). */
static void test_policy_mixed_addresses_dial_allowed_only(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  addr_policy_t *only1 = policy_of("127.0.0.1/32", 0);
  http_client_opts_t o = {.endpoint_policy = only1};
  tctx_t t;
  srv_t b;
  ctx_init(&t, &o, script, 1);
  srv_start_at(&b, &t.loop, "127.0.0.2", t.srv.port, script, 1);
  g_other = &b;
  snprintf(t.url, sizeof(t.url), "http://mixed.test:%d/", t.srv.port);
  static const char *const ips[] = {"127.0.0.2", "::1", "127.0.0.1"};
  seed(&t, "mixed.test", ips, 3);
  t.total = 1;
  t.after = close_srv2_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.srv.accepted, 1);
  assert_int_equal(b.accepted, 0);
  assert_int_equal(g_st.forbidden, 0);
  addr_policy_free(only1);
}

/* DNS rebinding: the first resolution is allowed, the next one (a new
 * connection after the first closed) points at a forbidden address, which
 * is refused, not dialled. */
static int rebind_then_go(tctx_t *t)
{
  static const char *const ips[] = {"127.0.0.2"};
  seed(t, "rebind.test", ips, 1);
  return 1;
}

static void test_policy_rebinding_refused(void **state)
{
  (void)state;
  static const char *const script[] = {OK_CLOSE};
  addr_policy_t *only1 = policy_of("127.0.0.1/32", 0);
  http_client_opts_t o = {.endpoint_policy = only1};
  tctx_t t;
  srv_t b;
  ctx_init(&t, &o, script, 1);
  srv_start_at(&b, &t.loop, "127.0.0.2", t.srv.port, script, 1);
  g_other = &b;
  snprintf(t.url, sizeof(t.url), "http://rebind.test:%d/", t.srv.port);
  static const char *const first[] = {"127.0.0.1"};
  seed(&t, "rebind.test", first, 1);
  t.total = 2;
  t.seq = 1;
  t.between = rebind_then_go;
  t.after = close_srv2_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[1].err, GRANTD_EENDPOINT_FORBIDDEN);
  assert_int_equal(t.res[1].sent, 0);
  assert_int_equal(t.srv.accepted, 1);
  assert_int_equal(b.accepted, 0);
  assert_int_equal(g_st.forbidden, 1);
  addr_policy_free(only1);
}

/* IPv6 loopback: refused by a policy allowing only 127.0.0.0/8, dialled
 * with ::1/128. */
static void test_policy_ipv6_loopback(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  addr_policy_t *v4only = policy_of("127.0.0.0/8", 0);
  const addr_policy_t *pols[] = {v4only, g_loopback};
  for (int i = 0; i < 2; i++) {
    http_client_opts_t o = {.endpoint_policy = pols[i]};
    tctx_t t;
    srv_t b;
    ctx_init(&t, &o, script, 1);
    srv_start_at(&b, &t.loop, "::1", 0, script, 1);
    g_other = &b;
    snprintf(t.url, sizeof(t.url), "http://[::1]:%d/", b.port);
    t.total = 1;
    t.after = close_srv2_finish;
    issue(&t);
    ctx_run(&t);
    assert_int_equal(t.res[0].err, i == 0 ? GRANTD_EENDPOINT_FORBIDDEN : 0);
    assert_int_equal(b.accepted, i == 0 ? 0 : 1);
  }
  addr_policy_free(v4only);
}

/* Redirects are returned, never followed. */
static void test_redirect_not_followed(void **state)
{
  (void)state;
  static const char *const script[] = {
    "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n"};
  tctx_t t;
  ctx_init(&t, NULL, script, 1);
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, 0);
  assert_int_equal(t.res[0].status, 302);
  assert_int_equal(t.srv.requests, 1);
  assert_int_equal(g_st.requests, 1);
  assert_int_equal(g_st.conns_opened, 1);
}

/* ---- TLS ------------------------------------------------------------------ */

static char g_dir[512];

/* Paths in, and shell commands run from, the certificate directory. */
#define path_of(name) test_path(g_dir, (name))
#define sh(...) test_sh(g_dir, __VA_ARGS__)

static const char openssl_cnf[] =
  "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n"
  "[ca_ext]\nbasicConstraints = critical,CA:TRUE\n"
  "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
  "[leaf_ext]\nbasicConstraints = CA:FALSE\n"
  "keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n"
  "subjectAltName = DNS:127.0.0.1,IP:127.0.0.1\n";

#define EC_KEY "-newkey ec -pkeyopt ec_paramgen_curve:P-256"

static int group_setup(void **state)
{
  (void)state;
  snprintf(g_dir, sizeof g_dir, "%s", test_mkdtemp());
  FILE *f = fopen(path_of("openssl.cnf"), "w");
  assert_non_null(f);
  fputs(openssl_cnf, f);
  fclose(f);
  for (int i = 0; i < 2; i++) {
    const char *ca = i ? "ca2" : "ca";
    sh("openssl req -x509 -new " EC_KEY " -nodes -keyout %s.key -out %s.pem"
       " -days 3650 -subj '/CN=grantd test %s' -config openssl.cnf"
       " -extensions ca_ext",
       ca, ca, ca);
  }
  sh("openssl req -new " EC_KEY " -nodes -keyout leaf.key -out leaf.csr"
     " -subj '/CN=127.0.0.1' -config openssl.cnf");
  sh("openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
     " -out leaf.pem -days 30 -extfile openssl.cnf -extensions leaf_ext");
  return 0;
}

static int group_teardown(void **state)
{
  (void)state;
  test_rmdir(g_dir);
  return 0;
}

static tls_server_ctx_t *server_ctx(void)
{
  tls_server_ctx_t *s = NULL;
  assert_int_equal(tls_server_ctx_new(&s, path_of("leaf.pem"), path_of("leaf.key")), 0);
  return s;
}

static tls_client_ctx_t *client_ctx(const char *ca)
{
  tls_client_ctx_t *c = NULL;
  assert_int_equal(tls_client_ctx_new(&c, "", path_of(ca)), 0);
  return c;
}

/* Three requests: the first two share a connection (one full handshake),
 * the second answer closes it, and the third connection resumes the TLS
 * session. */
static void test_https(void **state)
{
  (void)state;
  static const char *const script[] = {
    OK_HELLO, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", OK_HELLO};
  tls_client_ctx_t *cc = client_ctx("ca.pem");
  http_client_opts_t o = {.tls = cc};
  tctx_t t;
  ctx_init(&t, &o, script, 3);
  t.srv.tls = server_ctx();
  snprintf(t.url, sizeof(t.url), "https://127.0.0.1:%d/token", t.srv.port);
  t.total = 3;
  t.seq = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  for (int i = 0; i < 3; i++)
    assert_int_equal(t.res[i].err, 0);
  assert_string_equal(t.res[0].body, "hello");
  assert_string_equal(t.res[1].body, "ok");
  assert_int_equal(t.res[1].reused, 1);
  assert_int_equal(t.srv.accepted, 2);
  assert_int_equal(g_st.tls_full, 1);
  assert_int_equal(g_st.tls_resumed, 1);
  assert_int_equal(g_st.reused, 1);
  tls_server_ctx_free(t.srv.tls);
  tls_client_ctx_free(cc);
}

/* A per-request context that does not trust the server's CA. */
static void test_https_untrusted(void **state)
{
  (void)state;
  static const char *const script[] = {OK_HELLO};
  tls_client_ctx_t *good = client_ctx("ca.pem");
  tls_client_ctx_t *other = client_ctx("ca2.pem");
  http_client_opts_t o = {.tls = good};
  tctx_t t;
  ctx_init(&t, &o, script, 1);
  t.srv.tls = server_ctx();
  snprintf(t.url, sizeof(t.url), "https://127.0.0.1:%d/", t.srv.port);
  t.req.tls = other;
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, GRANTD_ETLS_UNTRUSTED);
  assert_int_equal(t.res[0].sent, 0);
  assert_int_equal(t.srv.requests, 0);
  assert_int_equal(g_st.conns_failed, 1);
  tls_server_ctx_free(t.srv.tls);
  tls_client_ctx_free(good);
  tls_client_ctx_free(other);
}

/* A server that accepts but never speaks TLS: the handshake times out. */
static void test_https_handshake_timeout(void **state)
{
  (void)state;
  static const char *const script[] = {SRV_HANG};
  tls_client_ctx_t *cc = client_ctx("ca.pem");
  http_client_opts_t o = {.handshake_timeout_ms = 30};
  tctx_t t;
  ctx_init(&t, &o, script, 1);
  snprintf(t.url, sizeof(t.url), "https://127.0.0.1:%d/", t.srv.port);
  t.req.tls = cc;
  t.total = 1;
  t.after = snap_finish;
  issue(&t);
  ctx_run(&t);
  assert_int_equal(t.res[0].err, GRANTD_ECONNECT_TIMEOUT);
  assert_int_equal(t.res[0].sent, 0);
  assert_int_equal(t.srv.requests, 0);
  tls_client_ctx_free(cc);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_get_content_length),
    cmocka_unit_test(test_post_body_and_headers),
    cmocka_unit_test(test_request_content_length),
    cmocka_unit_test(test_response_headers),
    cmocka_unit_test(test_chunked),
    cmocka_unit_test(test_body_until_close),
    cmocka_unit_test(test_interim_100_continue),
    cmocka_unit_test(test_head_has_no_body),
    cmocka_unit_test(test_keepalive_reuse),
    cmocka_unit_test(test_url_cache_rotation),
    cmocka_unit_test(test_pool_limit_queueing),
    cmocka_unit_test(test_global_limit_evicts_idle),
    cmocka_unit_test(test_idle_timeout),
    cmocka_unit_test(test_server_closes_idle),
    cmocka_unit_test(test_connection_close_not_pooled),
    cmocka_unit_test(test_http10_not_pooled),
    cmocka_unit_test(test_closed_after_request_not_resent),
    cmocka_unit_test(test_reused_closed_after_request),
    cmocka_unit_test(test_unsent_request_retried_once),
    cmocka_unit_test(test_idle_close_seen_before_write),
    cmocka_unit_test(test_response_before_write_callback),
    cmocka_unit_test(test_truncated_body),
    cmocka_unit_test(test_response_timeout),
    cmocka_unit_test(test_connect_refused),
    cmocka_unit_test(test_body_too_large),
    cmocka_unit_test(test_headers_too_large),
    cmocka_unit_test(test_malformed_response),
    cmocka_unit_test(test_trailing_garbage_not_pooled),
    cmocka_unit_test(test_refused_requests),
    cmocka_unit_test(test_dns_failure),
    cmocka_unit_test(test_dns_cache_hit),
    cmocka_unit_test(test_dns_shared_lookup),
    cmocka_unit_test(test_dns_cache_unit),
    cmocka_unit_test(test_connect_timeout),
    cmocka_unit_test(test_cancel),
    cmocka_unit_test(test_shutdown),
    cmocka_unit_test(test_policy_default_refuses_loopback),
    cmocka_unit_test(test_policy_name_resolving_to_loopback),
    cmocka_unit_test(test_policy_mixed_addresses_dial_allowed_only),
    cmocka_unit_test(test_policy_rebinding_refused),
    cmocka_unit_test(test_policy_ipv6_loopback),
    cmocka_unit_test(test_redirect_not_followed),
    cmocka_unit_test(test_https),
    cmocka_unit_test(test_https_untrusted),
    cmocka_unit_test(test_https_handshake_timeout),
  };
  g_loopback = policy_of("127.0.0.0/8,::1/128", 0);
  int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
  addr_policy_free(g_loopback);
  return rc;
}
