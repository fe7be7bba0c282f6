/*
 * stream_tcp.c - the plain TCP implementation of stream_t (see stream.h).
 *
 * A thin adapter over uv_tcp_t. Reads land in one thread-local 64 KiB
 * buffer: libuv calls alloc_cb and read_cb back to back for one stream, and
 * stream.h lends `data` to the reader only for the duration of the call, so
 * a buffer per connection (64 KiB x connections) would buy nothing. Each
 * write allocates a small request that carries the user's callback; libuv
 * copies the uv_buf_t array itself, so callers may pass it on the stack.
 */
#include <stdlib.h>

#include "base/mem.h"
#include "net/stream.h"

#define TCP_READ_BUF 65536

typedef struct {
  stream_t base;
  uv_tcp_t tcp;
  stream_read_cb read_cb;
  stream_close_cb close_cb;
  stream_connect_cb connect_cb;
  void *connect_arg;
  uv_connect_t connect_req;
  int closing;
  int connecting;
} tcp_stream_t;

typedef struct {
  uv_write_t req;
  stream_t *s;
  stream_write_cb cb;
  void *arg;
} tcp_write_t;

static _Thread_local char read_buf[TCP_READ_BUF];

static tcp_stream_t *from_base(stream_t *s)
{
  return container_of(s, tcp_stream_t, base);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
  tcp_stream_t *t = h->data;
  (void)buf;
  if (nread == 0 || t->closing)
    return; /* EAGAIN; or a read that raced with close */
  if (nread < 0) {
    /* End of stream or error: reported once, then no more reads. */
    uv_read_stop(h);
    if (t->base.error == 0 && nread != UV_EOF)
      t->base.error = (int)nread;
  }
  stream_read_cb cb = t->read_cb;
  if (nread < 0)
    t->read_cb = NULL;
  if (cb != NULL)
    cb(&t->base, nread, read_buf);
}

static int tcp_read_start(stream_t *s, stream_read_cb cb)
{
  tcp_stream_t *t = from_base(s);
  if (t->closing)
    return UV_ECANCELED;
  if (cb == NULL)
    return UV_EINVAL;
  t->read_cb = cb;
  int r = uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read);
  if (r == UV_EALREADY)
    r = 0; /* restarting with a new callback is fine */
  if (r != 0)
    t->read_cb = NULL;
  return r;
}

static int tcp_read_stop(stream_t *s)
{
  tcp_stream_t *t = from_base(s);
  if (t->closing)
    return 0;
  return uv_read_stop((uv_stream_t *)&t->tcp);
}

static void on_write(uv_write_t *req, int status)
{
  tcp_write_t *w = container_of(req, tcp_write_t, req);
  if (status < 0 && status != UV_ECANCELED && w->s->error == 0)
    w->s->error = status;
  if (w->cb != NULL)
    w->cb(w->s, status, w->arg);
  free(w);
}

static int tcp_write(stream_t *s, const uv_buf_t *bufs, unsigned nbufs, stream_write_cb cb,
                     void *arg)
{
  tcp_stream_t *t = from_base(s);
  if (t->closing)
    return UV_ECANCELED;
  /* A failed read or write poisons later writes. An orderly EOF is not an
   * error here (the peer may only have half-closed), so it is not sticky. */
  if (s->error != 0)
    return s->error;
  tcp_write_t *w = xmalloc(sizeof(*w));
  w->s = s;
  w->cb = cb;
  w->arg = arg;
  int r = uv_write(&w->req, (uv_stream_t *)&t->tcp, bufs, nbufs, on_write);
  if (r != 0) {
    free(w);
    s->error = r;
  }
  return r;
}

/* uv_try_write: no request, so no completion pass through the loop and no
 * epoll_ctl to drop POLLOUT again afterwards. */
static int tcp_try_write(stream_t *s, const uv_buf_t *bufs, unsigned nbufs)
{
  tcp_stream_t *t = from_base(s);
  if (t->closing)
    return UV_ECANCELED;
  if (s->error != 0)
    return s->error;
  int r = uv_try_write((uv_stream_t *)&t->tcp, bufs, nbufs);
  if (r < 0 && r != UV_EAGAIN)
    s->error = r;
  return r;
}

static void on_closed(uv_handle_t *h)
{
  tcp_stream_t *t = h->data;
  if (t->close_cb != NULL)
    t->close_cb(&t->base);
  free(t);
}

static void tcp_close(stream_t *s, stream_close_cb cb)
{
  tcp_stream_t *t = from_base(s);
  if (t->closing)
    return;
  t->closing = 1;
  t->close_cb = cb;
  t->read_cb = NULL;
  uv_close((uv_handle_t *)&t->tcp, on_closed);
}

static const stream_vtbl_t tcp_vtbl = {
  .read_start = tcp_read_start,
  .read_stop = tcp_read_stop,
  .write = tcp_write,
  .close = tcp_close,
  .try_write = tcp_try_write,
};

stream_t *stream_tcp_new(uv_loop_t *loop)
{
  tcp_stream_t *t = xcalloc(1, sizeof(*t));
  int r = uv_tcp_init(loop, &t->tcp);
  if (r != 0) {
    /* uv_tcp_init only fails for bad flags; the handle is not registered. */
    free(t);
    return NULL;
  }
  t->tcp.data = t;
  t->base.vt = &tcp_vtbl;
  t->base.loop = loop;
  return &t->base;
}

uv_tcp_t *stream_tcp_handle(stream_t *s)
{
  return &from_base(s)->tcp;
}

static void on_connect(uv_connect_t *req, int status)
{
  tcp_stream_t *t = container_of(req, tcp_stream_t, connect_req);
  if (status < 0 && t->base.error == 0 && status != UV_ECANCELED)
    t->base.error = status;
  stream_connect_cb cb = t->connect_cb;
  t->connect_cb = NULL;
  t->connecting = 0;
  if (cb != NULL)
    cb(&t->base, status, t->connect_arg);
}

int stream_tcp_connect(stream_t *s, const struct sockaddr *addr, stream_connect_cb cb, void *arg)
{
  tcp_stream_t *t = from_base(s);
  if (t->closing)
    return UV_ECANCELED;
  if (t->connecting)
    return UV_EALREADY;
  t->connect_cb = cb;
  t->connect_arg = arg;
  int r = uv_tcp_connect(&t->connect_req, &t->tcp, addr, on_connect);
  if (r != 0)
    t->connect_cb = NULL;
  else
    t->connecting = 1;
  return r;
}
