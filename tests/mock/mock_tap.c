/*
 * mock_tap.c - a thin stream_t layer the mock puts over every accepted
 * connection (http_server's wrap hook), above TLS.
 *
 * Two jobs. It counts: connections accepted (TLS or not), responses per
 * connection (a histogram when the connection closes), so the counters
 * show whether clients keep connections alive. And it lets the mock send
 * what http_server's API deliberately cannot: http_respond() always writes
 * one complete response with a Content-Length in a single stream write. A
 * response carrying the header "X-Mock-Raw: chunked" is rewritten here
 * into Transfer-Encoding: chunked (two data chunks); one carrying
 * "X-Mock-Raw: close_mid_response" goes out with its head and only the
 * first half of its body, after which the write is reported failed, so
 * http_server closes the connection (with TLS: a close_notify, then FIN) -
 * a response cut off mid-body. Everything else passes through untouched;
 * the marker search only looks inside the response head.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "mock.h"

struct mock_tap_s {
  stream_t s; /* first: the stream http_server sees */
  stream_t *inner;
  mock_t *m;
  stream_read_cb rcb;
  stream_close_cb ccb;
  mock_tap_t *prev, *next;
  uint64_t responses;
  int mtls; /* accepted by the mTLS listener */
};

typedef struct wreq_s {
  struct wreq_s *next_free;
  mock_tap_t *t;
  stream_write_cb cb;
  void *arg;
  char *owned; /* rewritten bytes, or NULL */
  int kill;    /* report failure once written (close_mid_response) */
} wreq_t;

static wreq_t *wfree; /* recycled write requests */
static void *g_tls;   /* tls_server_ctx_t *, NULL = plain */
static void *g_mtls;  /* the mTLS listener's context */

void mock_tap_set_tls(void *tls_server_ctx)
{
  g_tls = tls_server_ctx;
}

void mock_tap_cleanup(void)
{
  while (wfree != NULL) {
    wreq_t *w = wfree;
    wfree = w->next_free;
    free(w);
  }
}

int mock_conn_bucket(uint64_t n)
{
  if (n == 0)
    return -1;
  if (n == 1)
    return 0;
  if (n <= 10)
    return 1;
  if (n <= 100)
    return 2;
  if (n <= 1000)
    return 3;
  return 4;
}

void mock_tap_fold_open(const mock_t *m, uint64_t hist[5], uint64_t *max, uint64_t *open)
{
  for (const mock_tap_t *t = m->taps; t != NULL; t = t->next) {
    int b = mock_conn_bucket(t->responses);
    if (b >= 0)
      hist[b]++;
    if (t->responses > *max)
      *max = t->responses;
    (*open)++;
  }
}

void mock_tap_reset(mock_t *m)
{
  for (mock_tap_t *t = m->taps; t != NULL; t = t->next)
    t->responses = 0;
}

/* ---- rewriting ----------------------------------------------------------- */

/* Finds "\r\n<name>: " inside head[0..n); returns the line's start (after
 * the CRLF) and its length including its CRLF, or NULL. */
static const char *find_line(const char *head, size_t n, const char *name, size_t *line_len)
{
  char pat[64];
  int pn = snprintf(pat, sizeof pat, "\r\n%s: ", name);
  const char *p = memmem(head, n, pat, (size_t)pn);
  if (p == NULL)
    return NULL;
  p += 2;
  const char *e = memmem(p, n - (size_t)(p - head), "\r\n", 2);
  if (e == NULL)
    return NULL;
  *line_len = (size_t)(e + 2 - p);
  return p;
}

/* Appends head[0..n) minus the lines starting at cut[i] (length cutn[i]),
 * which are in increasing order. */
static void copy_without(buf_t *out, const char *head, size_t n, const char *cut[2],
                         const size_t cutn[2])
{
  const char *p = head;
  for (int i = 0; i < 2; i++) {
    if (cut[i] == NULL)
      continue;
    buf_append(out, p, (size_t)(cut[i] - p));
    p = cut[i] + cutn[i];
  }
  buf_append(out, p, (size_t)(head + n - p));
}

/* Rewrites a marked response into w->owned; returns 1 with *out set, or 0
 * when the response is not marked. */
static int rewrite(const uv_buf_t *in, wreq_t *w, uv_buf_t *out)
{
  const char *base = in->base;
  const char *he = memmem(base, in->len, "\r\n\r\n", 4);
  if (he == NULL)
    return 0;
  size_t head_n = (size_t)(he - base) + 2; /* through the last header's CRLF */
  size_t mlen, clen = 0;
  const char *mark = find_line(base, head_n, MOCK_RAW_HEADER, &mlen);
  if (mark == NULL)
    return 0;
  const char *mode = mark + sizeof(MOCK_RAW_HEADER) + 1;
  const char *body = base + head_n + 2;
  size_t body_n = in->len - head_n - 2;
  buf_t b = BUF_INIT;
  if (strncmp(mode, "chunked\r\n", 9) == 0) {
    const char *cl = find_line(base, head_n, "Content-Length", &clen);
    const char *cut[2] = {mark, NULL};
    size_t cutn[2] = {mlen, 0};
    if (cl != NULL && cl < mark) {
      cut[0] = cl, cutn[0] = clen;
      cut[1] = mark, cutn[1] = mlen;
    } else if (cl != NULL) {
      cut[1] = cl, cutn[1] = clen;
    }
    copy_without(&b, base, head_n, cut, cutn);
    buf_puts(&b, "Transfer-Encoding: chunked\r\n\r\n");
    /* Two chunks, so a client must really reassemble. */
    size_t half = body_n / 2;
    const char *part[2] = {body, body + half};
    size_t partn[2] = {half, body_n - half};
    for (int i = 0; i < 2; i++) {
      if (partn[i] == 0)
        continue;
      buf_printf(&b, "%zx\r\n", partn[i]);
      buf_append(&b, part[i], partn[i]);
      buf_puts(&b, "\r\n");
    }
    buf_puts(&b, "0\r\n\r\n");
  } else if (strncmp(mode, "close_mid_response\r\n", 20) == 0) {
    const char *cut[2] = {mark, NULL};
    size_t cutn[2] = {mlen, 0};
    copy_without(&b, base, head_n, cut, cutn);
    buf_puts(&b, "\r\n");
    buf_append(&b, body, body_n / 2);
    w->kill = 1;
  } else {
    return 0;
  }
  *out = uv_buf_init(b.data, (unsigned)b.len);
  w->owned = buf_steal(&b);
  return 1;
}

/* ---- stream_t ------------------------------------------------------------ */

static void tap_on_read(stream_t *inner, ssize_t nread, const char *data)
{
  mock_tap_t *t = inner->data;
  if (nread < 0 && t->s.error == 0)
    t->s.error = (int)nread;
  t->rcb(&t->s, nread, data);
}

static int tap_read_start(stream_t *s, stream_read_cb cb)
{
  mock_tap_t *t = (mock_tap_t *)s;
  t->rcb = cb;
  return stream_read_start(t->inner, tap_on_read);
}

static int tap_read_stop(stream_t *s)
{
  return stream_read_stop(((mock_tap_t *)s)->inner);
}

static void tap_written(stream_t *inner, int status, void *arg)
{
  wreq_t *w = arg;
  mock_tap_t *t = inner->data;
  stream_write_cb cb = w->cb;
  void *cb_arg = w->arg;
  if (w->kill && status == 0)
    status = UV_ECONNRESET; /* makes http_server close the connection */
  if (status < 0 && t->s.error == 0)
    t->s.error = status;
  free(w->owned);
  w->next_free = wfree;
  wfree = w;
  cb(&t->s, status, cb_arg);
}

static int tap_write(stream_t *s, const uv_buf_t *bufs, unsigned n, stream_write_cb cb, void *arg)
{
  mock_tap_t *t = (mock_tap_t *)s;
  if (s->error != 0)
    return s->error;
  wreq_t *w = wfree;
  if (w != NULL)
    wfree = w->next_free;
  else
    w = xmalloc(sizeof *w);
  *w = (wreq_t){NULL, t, cb, arg, NULL, 0};
  uv_buf_t one;
  const uv_buf_t *out = bufs;
  if (n == 1 && bufs[0].len > 13 && memcmp(bufs[0].base, "HTTP/1.1 ", 9) == 0) {
    if (memcmp(bufs[0].base + 9, "100 ", 4) != 0)
      t->responses++;
    if (rewrite(&bufs[0], w, &one))
      out = &one;
  }
  int e = stream_write(t->inner, out, n, tap_written, w);
  if (e != 0) {
    free(w->owned);
    w->next_free = wfree;
    wfree = w;
  }
  return e;
}

static void tap_inner_closed(stream_t *inner)
{
  mock_tap_t *t = inner->data;
  if (t->ccb != NULL)
    t->ccb(&t->s);
  free(t);
}

static void tap_close(stream_t *s, stream_close_cb cb)
{
  mock_tap_t *t = (mock_tap_t *)s;
  mock_counters_t *c = &t->m->c;
  t->ccb = cb;
  if (t->prev != NULL)
    t->prev->next = t->next;
  else
    t->m->taps = t->next;
  if (t->next != NULL)
    t->next->prev = t->prev;
  c->conns_closed++;
  c->conn_requests_closed += t->responses;
  int b = mock_conn_bucket(t->responses);
  if (b >= 0)
    c->conn_hist[b]++;
  if (t->responses > c->conn_requests_max)
    c->conn_requests_max = t->responses;
  stream_close(t->inner, tap_inner_closed);
}

static const stream_vtbl_t tap_vt = {tap_read_start, tap_read_stop, tap_write, tap_close, NULL};

void mock_tap_set_mtls(void *tls_server_ctx)
{
  g_mtls = tls_server_ctx;
}

int mock_tap_peer_cert(stream_t *s, int *mtls, unsigned char sha256[32], int *trusted)
{
  *mtls = 0;
  if (s == NULL || s->vt != &tap_vt)
    return 0;
  mock_tap_t *t = (mock_tap_t *)s;
  *mtls = t->mtls;
  return t->mtls ? tls_stream_peer_cert(t->inner, sha256, trusted) : 0;
}

static stream_t *wrap_with(mock_t *m, void *tls, stream_t *tcp);

stream_t *mock_tap_wrap(void *arg, stream_t *tcp)
{
  return wrap_with(arg, g_tls, tcp);
}

stream_t *mock_tap_wrap_mtls(void *arg, stream_t *tcp)
{
  return wrap_with(arg, g_mtls, tcp);
}

static stream_t *wrap_with(mock_t *m, void *tls, stream_t *tcp)
{
  stream_t *inner = tls != NULL ? tls_server_wrap(tls, tcp) : tcp;
  mock_tap_t *t = xcalloc(1, sizeof *t);
  t->mtls = tls != NULL && tls == g_mtls;
  t->s.vt = &tap_vt;
  t->s.loop = inner->loop;
  t->inner = inner;
  t->m = m;
  inner->data = t;
  t->next = m->taps;
  if (m->taps != NULL)
    m->taps->prev = t;
  m->taps = t;
  m->c.conns_accepted++;
  if (tls != NULL)
    m->c.conns_tls++;
  return &t->s;
}
