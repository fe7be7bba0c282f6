/*
 * tls_stream.c - the TLS stream_t: pumps a BearSSL engine between an inner
 * stream (ciphertext) and the stream's user (plaintext). Shared by the
 * client (tls_client.c) and server (tls_server.c) sides.
 *
 * The engine is a pure state machine with four buffers (sendapp, recvapp,
 * sendrec, recvrec); pump() moves bytes between them and the two streams
 * until nothing moves: records the engine produced are copied into a fresh
 * inner write (one in flight at a time, so the engine's single half-duplex
 * buffer is freed at once and memory stays bounded), received ciphertext is
 * pushed into recvrec (leftovers the engine cannot take yet are kept in
 * c->in, and inner reads pause when that grows), plaintext goes to the read
 * callback, and queued user writes are pushed into sendapp and flushed as a
 * record once the queue is empty (so back-to-back writes share a record).
 *
 * The buffer is half-duplex (MONO): while it holds received plaintext or a
 * partial record, nothing can be sent. So once established, ciphertext is
 * fed only while the user reads, and queued writes go before more input:
 * a user that stops reading until its responses are written (http_server's
 * back-pressure) must not deadlock.
 *
 * Re-entrancy: every user callback runs from pump(), which is only entered
 * from loop callbacks (inner read/write callbacks and the idle handle).
 * API calls (write, read_start, close) never call back synchronously: write
 * only pushes data out (pump_out), and anything that needs a callback is
 * deferred to the idle handle. A callback may call any stream function,
 * including close: pump() notices and starts the close only once it has
 * unwound, so the engine is never torn down under its own feet.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "net/tls_int.h"

/* Inner reads pause when this much ciphertext is waiting for the engine
 * (the user is not reading), and resume below TLS_IN_LOW. */
#define TLS_IN_HIGH (64 * 1024)
#define TLS_IN_LOW (16 * 1024)

/* A user write: a copy of the uv_buf_t array (the bytes stay the user's
 * until the callback) and how far the engine has taken it. */
struct tls__wreq_s {
  tls__wreq_t *next;
  stream_write_cb cb;
  void *arg;
  int status;
  unsigned nbufs, idx;
  size_t off;
  uv_buf_t bufs[];
};

/* One inner write: records copied out of the engine, and the user writes
 * that complete with it. */
typedef struct {
  tls__conn_t *c;
  tls__wreq_t *done;
  uv_buf_t buf;
  unsigned char data[];
} tls_iw_t;

static void pump(tls__conn_t *c);
static void start_close(tls__conn_t *c);

static void on_inner_read(stream_t *inner, ssize_t nread, const char *data);

/* ---- small helpers ------------------------------------------------------- */

static void on_idle(uv_idle_t *h)
{
  tls__conn_t *c = h->data;
  uv_idle_stop(h);
  c->idle_on = 0;
  pump(c);
}

/* Runs pump() from the next loop iteration (used by API calls). */
static void schedule(tls__conn_t *c)
{
  if (!c->idle_on && !c->closing) {
    uv_idle_start(&c->idle, on_idle);
    c->idle_on = 1;
  }
}

/* Maps the engine's final error to grantd's codes (see tls.h). */
static int closed_error(tls__conn_t *c)
{
  int e = br_ssl_engine_last_error(c->eng);
  if (e == BR_ERR_OK)
    return c->hs_done ? UV_EOF : GRANTD_ETLS_CLOSED;
  if (c->hs_done)
    return GRANTD_ETLS_PROTOCOL;
  if (e == BR_ERR_X509_BAD_SERVER_NAME)
    return GRANTD_ETLS_HOSTNAME;
  if (e == BR_ERR_X509_EXPIRED)
    return GRANTD_ETLS_EXPIRED;
  if (e > BR_ERR_X509_OK && e < BR_ERR_X509_OK + 32)
    return GRANTD_ETLS_UNTRUSTED;
  return GRANTD_ETLS_HANDSHAKE;
}

/* Records the first error; it is sticky. */
static void set_error(tls__conn_t *c, int err)
{
  if (c->s.error != 0)
    return;
  c->s.error = err;
  if (!c->hs_done)
    c->side->hs_failed(c, err);
}

static size_t input_avail(const tls__conn_t *c)
{
  return (c->in.len - c->in_off) + c->bin_len;
}

static void append_list(tls__wreq_t **head, tls__wreq_t *list)
{
  while (*head != NULL)
    head = &(*head)->next;
  *head = list;
}

/* ---- moving bytes -------------------------------------------------------- */

static void on_inner_write(stream_t *inner, int status, void *arg);

/* Sends the pending records: as much as the socket takes at once straight
 * from the engine's buffer (no copy, no inner write request), the rest
 * copied into an inner write that the sealed user writes complete with.
 * Sealed writes whose records all went out at once complete now: they
 * join c->done, reported by the next step (or, outside pump(), from the
 * idle handle). @return 0 or the inner write's error (recorded as the
 * stream error; the sealed writes then fail with it). */
static int send_records(tls__conn_t *c)
{
  size_t len;
  unsigned char *src = br_ssl_engine_sendrec_buf(c->eng, &len);
  if (src == NULL || len == 0)
    return 0;
  uv_buf_t b = uv_buf_init((char *)src, (unsigned)len);
  int r = stream_try_write(c->inner, &b, 1);
  if (r < 0 && r != UV_EAGAIN) {
    set_error(c, r); /* the sealed writes stay queued and fail with it */
    return r;
  }
  size_t sent = r > 0 ? (size_t)r : 0;
  if (sent > 0)
    br_ssl_engine_sendrec_ack(c->eng, sent);
  if (sent == len) {
    /* Everything went out; the engine may hold more records than `len`
     * (the next step sends them). */
    append_list(&c->done, c->sealed);
    c->sealed = NULL;
    c->sealed_tail = &c->sealed;
    if (!c->in_pump)
      schedule(c);
    return 0;
  }
  len -= sent;
  tls_iw_t *iw = xmalloc(sizeof *iw + len);
  memcpy(iw->data, src + sent, len);
  br_ssl_engine_sendrec_ack(c->eng, len);
  iw->c = c;
  iw->done = c->sealed;
  iw->buf = uv_buf_init((char *)iw->data, (unsigned)len);
  r = stream_write(c->inner, &iw->buf, 1, on_inner_write, iw);
  if (r < 0) {
    free(iw); /* the sealed writes stay queued and fail with the error */
    set_error(c, r);
    return r;
  }
  c->sealed = NULL;
  c->sealed_tail = &c->sealed;
  c->inner_busy = 1;
  return 0;
}

/* Pushes queued user bytes into the engine; seals the writes it finished
 * and flushes a record once nothing more is queued. */
static void feed_app(tls__conn_t *c)
{
  size_t room, total = 0;
  unsigned char *dst = br_ssl_engine_sendapp_buf(c->eng, &room);
  if (dst == NULL)
    return;
  while (room > 0 && c->q_head != NULL) {
    tls__wreq_t *w = c->q_head;
    uv_buf_t *b = &w->bufs[w->idx];
    size_t n = b->len - w->off;
    if (n > room)
      n = room;
    memcpy(dst + total, b->base + w->off, n);
    total += n;
    room -= n;
    w->off += n;
    if (w->off < b->len)
      continue;
    w->off = 0;
    if (++w->idx < w->nbufs)
      continue;
    c->q_head = w->next;
    if (c->q_head == NULL)
      c->q_tail = &c->q_head;
    w->next = NULL;
    *c->sealed_tail = w;
    c->sealed_tail = &w->next;
  }
  br_ssl_engine_sendapp_ack(c->eng, total);
  if (c->q_head == NULL)
    br_ssl_engine_flush(c->eng, 0);
}

/* Pushes buffered, then borrowed, ciphertext into the engine. */
static void feed_records(tls__conn_t *c)
{
  size_t room;
  unsigned char *dst = br_ssl_engine_recvrec_buf(c->eng, &room);
  if (dst == NULL)
    return;
  size_t n;
  if (c->in.len > c->in_off) {
    n = c->in.len - c->in_off;
    if (n > room)
      n = room;
    memcpy(dst, c->in.data + c->in_off, n);
    c->in_off += n;
    if (c->in_off == c->in.len) {
      c->in_off = 0;
      if (c->in.cap > 2 * TLS_IN_LOW)
        buf_free(&c->in); /* do not keep a burst's buffer on an idle conn */
      else
        buf_reset(&c->in);
    }
  } else {
    n = c->bin_len < room ? c->bin_len : room;
    memcpy(dst, c->bin, n);
    c->bin += n;
    c->bin_len -= n;
  }
  br_ssl_engine_recvrec_ack(c->eng, n);
}

/* Output only, no user callbacks: what a write() call may do at once. */
static void pump_out(tls__conn_t *c)
{
  if (c->in_pump) {
    c->again = 1;
    return;
  }
  while (!c->closing && c->s.error == 0) {
    unsigned st = br_ssl_engine_current_state(c->eng);
    if (st == BR_SSL_CLOSED) {
      schedule(c); /* the callbacks report it */
      return;
    }
    if ((st & BR_SSL_SENDAPP) && c->q_head != NULL && c->hs_done) {
      feed_app(c);
    } else if ((st & BR_SSL_SENDREC) && !c->inner_busy) {
      if (send_records(c) < 0) {
        schedule(c); /* the callbacks report it */
        return;
      }
      /* If this flight ended the handshake, the callback reports it from
       * the loop. */
      if (!c->hs_done && (br_ssl_engine_current_state(c->eng) & (BR_SSL_SENDAPP | BR_SSL_RECVAPP)))
        schedule(c);
    } else {
      return;
    }
  }
}

/* ---- the pump ------------------------------------------------------------ */

/* Reports the sticky error to whoever has not heard of it yet, one callback
 * per call. @return 1 if something was done. */
static int deliver_error(tls__conn_t *c)
{
  int err = c->s.error;
  /* Queued writes first, so they fail with the error even if the handshake
   * callback closes the stream (which would cancel them). */
  if (c->q_head != NULL || c->sealed != NULL) {
    tls__wreq_t *list = c->sealed;
    *c->sealed_tail = c->q_head;
    if (list == NULL)
      list = c->q_head;
    for (tls__wreq_t *w = list; w != NULL; w = w->next)
      w->status = err;
    c->q_head = c->sealed = NULL;
    c->q_tail = &c->q_head;
    c->sealed_tail = &c->sealed;
    append_list(&c->done, list);
    return 1;
  }
  if (!c->hs_reported) {
    c->hs_reported = 1;
    if (c->hs_cb != NULL) {
      c->hs_cb(&c->s, err == UV_EOF ? GRANTD_ETLS_CLOSED : err, c->hs_arg);
      return 1;
    }
  }
  if (c->reading && !c->read_reported) {
    c->read_reported = 1;
    c->reading = 0;
    c->read_cb(&c->s, err, NULL);
    return 1;
  }
  if (!c->inner_paused) {
    /* Nothing more will be read: let the inner stream rest. */
    c->inner_paused = 1;
    stream_read_stop(c->inner);
  }
  return 0;
}

/* One step of work. @return 1 if progress was made (maybe a callback ran),
 * 0 if the connection is waiting for an event. */
static int step(tls__conn_t *c)
{
  if (c->done != NULL) {
    tls__wreq_t *w = c->done;
    c->done = w->next;
    stream_write_cb cb = w->cb;
    void *arg = w->arg;
    int status = w->status;
    free(w);
    if (cb != NULL)
      cb(&c->s, status, arg);
    return 1;
  }
  if (c->s.error != 0)
    return deliver_error(c);

  unsigned st = br_ssl_engine_current_state(c->eng);
  if (st == BR_SSL_CLOSED) {
    set_error(c, closed_error(c));
    return 1;
  }
  if (!c->hs_done && (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP))) {
    c->hs_done = 1;
    c->side->hs_done(c);
    c->hs_reported = 1;
    if (c->hs_cb != NULL)
      c->hs_cb(&c->s, 0, c->hs_arg);
    return 1;
  }
  if ((st & BR_SSL_SENDREC) && !c->inner_busy) {
    send_records(c);
    /* A record that ends a close_notify exchange leaves the engine closed
     * with no error: the next step reports UV_EOF, even if the peer is
     * already gone and the inner write fails. */
    return 1;
  }
  if ((st & BR_SSL_RECVAPP) && c->reading) {
    size_t len;
    unsigned char *p = br_ssl_engine_recvapp_buf(c->eng, &len);
    c->read_cb(&c->s, (ssize_t)len, (const char *)p);
    /* Acknowledged only after the callback, which gets all of it: `p` is
     * valid during it. So the engine holds no plaintext once the user
     * stops reading (see the feed rule below). */
    br_ssl_engine_recvapp_ack(c->eng, len);
    return 1;
  }
  /* Writes go before more input: in half-duplex mode a record being
   * received blocks sending until it is complete and delivered. */
  if ((st & BR_SSL_SENDAPP) && c->q_head != NULL) {
    feed_app(c);
    return 1;
  }
  /* Once established, ciphertext is only decrypted for a reading user;
   * otherwise it waits in c->in (flow_control() bounds it), leaving the
   * engine's buffer free for writes: a user that stops reading until its
   * queued writes are done (http_server's back-pressure) would otherwise
   * wait forever for writes the engine cannot take while it holds the
   * next record's plaintext. */
  if ((st & BR_SSL_RECVREC) && input_avail(c) > 0 && (c->reading || !c->hs_done)) {
    feed_records(c);
    return 1;
  }
  if (c->in_status != 0 && input_avail(c) == 0 && !(st & BR_SSL_RECVAPP) &&
      !(st & BR_SSL_SENDREC)) {
    /* The inner stream ended and the engine was not closed by a
     * close_notify: truncation (or the inner error). */
    set_error(c, c->in_status == UV_EOF ? GRANTD_ETLS_CLOSED : c->in_status);
    return 1;
  }
  return 0;
}

/* Pauses/resumes inner reads around the buffered-input high/low marks. */
static void flow_control(tls__conn_t *c)
{
  size_t pending = c->in.len - c->in_off;
  if (c->s.error != 0 || c->in_status != 0)
    return;
  if (!c->inner_paused && pending > TLS_IN_HIGH) {
    c->inner_paused = 1;
    stream_read_stop(c->inner);
  } else if (c->inner_paused && pending < TLS_IN_LOW) {
    c->inner_paused = 0;
    int r = stream_read_start(c->inner, on_inner_read);
    if (r < 0) {
      set_error(c, r);
      schedule(c);
    }
  }
}

static void pump(tls__conn_t *c)
{
  if (c->in_pump) {
    c->again = 1;
    return;
  }
  c->in_pump = 1;
  while (!c->closing) {
    c->again = 0;
    if (!step(c) && !c->again)
      break;
  }
  c->in_pump = 0;
  if (c->closing) {
    if (!c->close_started)
      start_close(c);
    return;
  }
  flow_control(c);
}

/* ---- inner stream callbacks ---------------------------------------------- */

static void on_inner_read(stream_t *inner, ssize_t nread, const char *data)
{
  tls__conn_t *c = inner->data;
  if (c->closing || c->s.error != 0)
    return;
  if (nread < 0) {
    if (c->in_status == 0)
      c->in_status = (int)nread;
    pump(c);
    return;
  }
  if (nread == 0)
    return;
  if (c->in.len > c->in_off || c->in_pump) {
    buf_append(&c->in, data, (size_t)nread);
    pump(c);
    return;
  }
  /* Common case: feed the engine straight from the borrowed bytes and keep
   * only what it could not take yet. */
  c->bin = data;
  c->bin_len = (size_t)nread;
  pump(c);
  if (c->bin_len > 0 && !c->closing)
    buf_append(&c->in, c->bin, c->bin_len);
  c->bin = NULL;
  c->bin_len = 0;
  if (!c->closing)
    flow_control(c);
}

static void on_inner_write(stream_t *inner, int status, void *arg)
{
  tls_iw_t *iw = arg;
  tls__conn_t *c = iw->c;
  (void)inner;
  c->inner_busy = 0;
  for (tls__wreq_t *w = iw->done; w != NULL; w = w->next)
    w->status = status < 0 ? status : 0;
  append_list(&c->done, iw->done);
  free(iw);
  if (c->closing)
    return; /* finish() completes them */
  if (status < 0)
    set_error(c, status);
  pump(c);
}

/* ---- close --------------------------------------------------------------- */

static void finish(tls__conn_t *c)
{
  tls__wreq_t *lists[3] = {c->done, c->sealed, c->q_head};
  c->done = c->sealed = c->q_head = NULL;
  for (int i = 0; i < 3; i++) {
    tls__wreq_t *w = lists[i];
    while (w != NULL) {
      tls__wreq_t *next = w->next;
      if (w->cb != NULL)
        w->cb(&c->s, i == 0 ? w->status : UV_ECANCELED, w->arg);
      free(w);
      w = next;
    }
  }
  if (!c->hs_reported) {
    c->hs_reported = 1;
    if (c->hs_cb != NULL)
      c->hs_cb(&c->s, UV_ECANCELED, c->hs_arg);
  }
  if (c->close_cb != NULL)
    c->close_cb(&c->s);
  c->side->release(c);
  buf_free(&c->in);
  /* The engine holds the session's keys and the buffer the last plaintext. */
  mem_wipe(c, sizeof *c);
  free(c);
}

static void on_inner_closed(stream_t *inner)
{
  tls__conn_t *c = inner->data;
  c->inner = NULL;
  if (--c->pending_closes == 0)
    finish(c);
}

static void on_idle_closed(uv_handle_t *h)
{
  tls__conn_t *c = h->data;
  if (--c->pending_closes == 0)
    finish(c);
}

/* Best-effort close_notify, then close the inner stream and the idle
 * handle; finish() runs when both are closed. */
static void start_close(tls__conn_t *c)
{
  c->close_started = 1;
  if (c->s.error == 0 && c->hs_done && !c->inner_busy) {
    br_ssl_engine_close(c->eng);
    if (br_ssl_engine_current_state(c->eng) & BR_SSL_SENDREC)
      send_records(c); /* errors do not matter any more */
  }
  c->pending_closes = 2;
  uv_close((uv_handle_t *)&c->idle, on_idle_closed);
  stream_close(c->inner, on_inner_closed);
}

/* ---- stream_t methods ---------------------------------------------------- */

static int tls_read_start(stream_t *s, stream_read_cb cb)
{
  tls__conn_t *c = container_of(s, tls__conn_t, s);
  if (c->closing || cb == NULL)
    return UV_EINVAL;
  if (c->read_reported)
    return c->s.error;
  c->read_cb = cb;
  c->reading = 1;
  /* Input may be waiting in the engine or in c->in (not fed while the
   * user was not reading), and may never be followed by more: nothing
   * else would pump it. */
  if (c->s.error != 0 || input_avail(c) > 0 ||
      (br_ssl_engine_current_state(c->eng) & BR_SSL_RECVAPP))
    schedule(c);
  return 0;
}

static int tls_read_stop(stream_t *s)
{
  tls__conn_t *c = container_of(s, tls__conn_t, s);
  c->reading = 0;
  return 0;
}

static int tls_write(stream_t *s, const uv_buf_t *bufs, unsigned nbufs, stream_write_cb cb,
                     void *arg)
{
  tls__conn_t *c = container_of(s, tls__conn_t, s);
  if (c->closing)
    return UV_EPIPE;
  if (c->s.error != 0)
    return c->s.error;
  unsigned n = 0;
  for (unsigned i = 0; i < nbufs; i++)
    n += bufs[i].len > 0;
  if (n == 0)
    return UV_EINVAL;
  tls__wreq_t *w = xmalloc(sizeof *w + n * sizeof(uv_buf_t));
  w->next = NULL;
  w->cb = cb;
  w->arg = arg;
  w->status = 0;
  w->nbufs = n;
  w->idx = 0;
  w->off = 0;
  n = 0;
  for (unsigned i = 0; i < nbufs; i++)
    if (bufs[i].len > 0)
      w->bufs[n++] = bufs[i];
  *c->q_tail = w;
  c->q_tail = &w->next;
  pump_out(c);
  return 0;
}

static void tls_close(stream_t *s, stream_close_cb cb)
{
  tls__conn_t *c = container_of(s, tls__conn_t, s);
  if (c->closing)
    return;
  c->closing = 1;
  c->close_cb = cb;
  if (c->idle_on) {
    uv_idle_stop(&c->idle);
    c->idle_on = 0;
  }
  if (!c->in_pump)
    start_close(c);
}

static const stream_vtbl_t tls_vtbl = {
  tls_read_start, tls_read_stop, tls_write,
  tls_close,      NULL, /* no try_write: writes go through the engine */
};

/* ---- construction -------------------------------------------------------- */

tls__conn_t *tls__conn_new(stream_t *inner, const tls__side_t *side)
{
  tls__conn_t *c = xmalloc(sizeof *c);
  /* The engine contexts are zeroed by their init functions and the I/O
   * buffer needs no clearing. */
  memset(c, 0, offsetof(tls__conn_t, u));
  c->s.vt = &tls_vtbl;
  c->s.loop = inner->loop;
  c->inner = inner;
  inner->data = c;
  c->side = side;
  c->q_tail = &c->q_head;
  c->sealed_tail = &c->sealed;
  uv_idle_init(c->s.loop, &c->idle);
  c->idle.data = c;
  return c;
}

void tls__conn_start(tls__conn_t *c, int init_err)
{
  int r = init_err;
  if (r == 0)
    r = stream_read_start(c->inner, on_inner_read);
  if (r < 0) {
    set_error(c, r);
    schedule(c);
    return;
  }
  pump_out(c);
}

int tls_stream_resumed(const stream_t *s)
{
  const tls__conn_t *c = container_of(s, tls__conn_t, s);
  return tls_stream_is_tls(s) && c->resumed;
}

int tls_stream_is_tls(const stream_t *s)
{
  return s != NULL && s->vt == &tls_vtbl;
}
