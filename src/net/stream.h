/*
 * stream.h - the one transport seam shared by plain TCP and TLS.
 *
 * http_server and http_client talk to a stream_t only. stream_tcp.c
 * implements it over uv_tcp_t; tls.c implements it as a layer over another
 * stream (client or server side), so TLS code never touches a socket.
 *
 * Contract (libuv's async rules, docs/src/errors.rst):
 * - read_start: the callback gets plaintext bytes (nread > 0, `data` borrowed
 *   for the duration of the call) until an error or end of stream is
 *   reported once with nread < 0 (UV_EOF for an orderly close, a libuv code
 *   or a GRANTD_E* code such as GRANTD_ETLS_CLOSED); no reads follow that.
 * - write: the bytes in `bufs` must stay valid until `cb` runs; `cb` runs
 *   exactly once unless write returns an error. Writes complete in order.
 * - close: stops everything; pending write callbacks run with UV_ECANCELED;
 *   `cb` (may be NULL) runs once from a later loop iteration, after which
 *   the stream's memory is freed by the implementation. A stream layered
 *   over another closes (and frees) the inner one too.
 * - try_write (optional, NULL = none): writes what the transport takes at
 *   once, in order after every queued write, with no callback; returns the
 *   byte count taken (from 0 up), UV_EAGAIN when it takes nothing (a write
 *   is still queued, the socket is full, or there is no try_write), or an
 *   error, which is then sticky as for write.
 * - `error` is sticky: once set, every later write fails with it.
 */
#ifndef GRANTD_NET_STREAM_H
#define GRANTD_NET_STREAM_H

#include <sys/types.h>
#include <uv.h>

typedef struct stream_s stream_t;

typedef void (*stream_read_cb)(stream_t *s, ssize_t nread, const char *data);
typedef void (*stream_write_cb)(stream_t *s, int status, void *arg);
typedef void (*stream_close_cb)(stream_t *s);

typedef struct {
  int (*read_start)(stream_t *s, stream_read_cb cb);
  int (*read_stop)(stream_t *s);
  int (*write)(stream_t *s, const uv_buf_t *bufs, unsigned nbufs, stream_write_cb cb, void *arg);
  void (*close)(stream_t *s, stream_close_cb cb);
  int (*try_write)(stream_t *s, const uv_buf_t *bufs, unsigned nbufs);
} stream_vtbl_t;

struct stream_s {
  const stream_vtbl_t *vt;
  uv_loop_t *loop;
  void *data; /* the user's; never touched by implementations */
  int error;  /* sticky error, 0 while healthy */
};

static inline int stream_read_start(stream_t *s, stream_read_cb cb)
{
  return s->vt->read_start(s, cb);
}
static inline int stream_read_stop(stream_t *s)
{
  return s->vt->read_stop(s);
}
static inline int stream_write(stream_t *s, const uv_buf_t *bufs, unsigned n, stream_write_cb cb,
                               void *arg)
{
  return s->vt->write(s, bufs, n, cb, arg);
}
static inline int stream_try_write(stream_t *s, const uv_buf_t *bufs, unsigned n)
{
  return s->vt->try_write != NULL ? s->vt->try_write(s, bufs, n) : UV_EAGAIN;
}

static inline void stream_close(stream_t *s, stream_close_cb cb)
{
  s->vt->close(s, cb);
}

/* A plain TCP stream. stream_tcp_new() initialises the handle on `loop`
 * (uv_tcp_init), ready for uv_accept() into stream_tcp_handle() or for
 * stream_tcp_connect(). Freed by stream_close(). */
stream_t *stream_tcp_new(uv_loop_t *loop);
uv_tcp_t *stream_tcp_handle(stream_t *s);

typedef void (*stream_connect_cb)(stream_t *s, int status, void *arg);
/* Connects to `addr`; cb runs exactly once unless an error is returned. */
int stream_tcp_connect(stream_t *s, const struct sockaddr *addr, stream_connect_cb cb, void *arg);

#endif
