/*
 * Unit tests for the TLS stream layer (src/net/tls_*.c): a TLS server and a
 * TLS client over 127.0.0.1 in one uv loop. Certificates are generated at
 * test time with the openssl CLI in a fresh temporary directory: a test CA
 * (P-256), ECDSA and RSA leaves for "localhost" / 127.0.0.1, a leaf valid
 * for one day (the client's validation time is moved 3 days ahead to make
 * it expired), a leaf from a second, untrusted CA and a leaf for the wrong
 * host name. Every test ends with all handles closed and the loop drained.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/mem.h"
#include "net/tls.h"
#include "net/x509_ip.h"
#include "support.h"

static char g_dir[512];
/* The address fx_init() listens on. */
static const char *g_listen_ip = "127.0.0.1";

/* Paths in, and shell commands run from, the certificate directory. */
#define path_of(name) test_path(g_dir, (name))
#define sh(...) test_sh(g_dir, __VA_ARGS__)

static const char openssl_cnf[] =
  "[req]\n"
  "distinguished_name = dn\n"
  "prompt = no\n"
  "[dn]\n"
  "CN = unused\n"
  "[ca_ext]\n"
  "basicConstraints = critical,CA:TRUE\n"
  "keyUsage = critical,keyCertSign,cRLSign\n"
  "subjectKeyIdentifier = hash\n"
  "[leaf_ext]\n"
  "basicConstraints = CA:FALSE\n"
  "keyUsage = critical,digitalSignature,keyEncipherment\n"
  "extendedKeyUsage = serverAuth\n"
  "subjectAltName = DNS:localhost,IP:127.0.0.1\n"
  "[wrong_ext]\n"
  "basicConstraints = CA:FALSE\n"
  "keyUsage = critical,digitalSignature\n"
  "extendedKeyUsage = serverAuth\n"
  "subjectAltName = DNS:wrong.example\n"
  /* For IP-address hosts: */
  "[ip4_ext]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n"
  "subjectAltName = IP:127.0.0.1\n"
  "[ip6_ext]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n"
  "subjectAltName = DNS:localhost,IP:::1\n"
  "[ip2_ext]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n"
  "subjectAltName = DNS:localhost,IP:127.0.0.2,IP:::2\n"
  "[dnsip_ext]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n"
  "subjectAltName = DNS:127.0.0.1,DNS:::1\n"
  "[mapped_ext]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n"
  "subjectAltName = IP:::ffff:127.0.0.1\n"
  "[nosan_ext]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n";

#define EC_KEY "-newkey ec -pkeyopt ec_paramgen_curve:P-256"

static void make_ca(const char *name)
{
  sh("openssl req -x509 -new " EC_KEY " -nodes -keyout %s.key -out %s.pem"
     " -days 3650 -subj '/CN=grantd test %s' -config openssl.cnf"
     " -extensions ca_ext",
     name, name, name);
}

static void make_leaf(const char *name, const char *ca, const char *keyopt, const char *cn,
                      const char *ext, int days)
{
  sh("openssl req -new %s -nodes -keyout %s.key -out %s.csr -subj '/CN=%s'"
     " -config openssl.cnf",
     keyopt, name, name, cn);
  sh("openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial"
     " -out %s.pem -days %d -extfile openssl.cnf -extensions %s",
     name, ca, ca, name, days, ext);
}

static int group_setup(void **state)
{
  (void)state;
  snprintf(g_dir, sizeof g_dir, "%s", test_mkdtemp());
  FILE *f = fopen(path_of("openssl.cnf"), "w");
  assert_non_null(f);
  fputs(openssl_cnf, f);
  fclose(f);
  make_ca("ca");
  make_ca("ca2");
  make_leaf("ec", "ca", EC_KEY, "localhost", "leaf_ext", 30);
  make_leaf("rsa", "ca", "-newkey rsa:2048", "localhost", "leaf_ext", 30);
  make_leaf("short", "ca", EC_KEY, "localhost", "leaf_ext", 1);
  make_leaf("other", "ca2", EC_KEY, "localhost", "leaf_ext", 30);
  make_leaf("wrong", "ca", EC_KEY, "wrong.example", "wrong_ext", 30);
  make_leaf("ip4", "ca", EC_KEY, "127.0.0.1", "ip4_ext", 30);
  make_leaf("ip6", "ca", EC_KEY, "::1", "ip6_ext", 30);
  make_leaf("ip2", "ca", EC_KEY, "127.0.0.1", "ip2_ext", 30);
  make_leaf("dnsip", "ca", EC_KEY, "127.0.0.1", "dnsip_ext", 30);
  make_leaf("mapped", "ca", EC_KEY, "127.0.0.1", "mapped_ext", 30);
  make_leaf("nosan", "ca", EC_KEY, "127.0.0.1", "nosan_ext", 30);
  sh("openssl x509 -in ec.pem -outform DER -out ec.der");
  sh("openssl x509 -in nosan.pem -outform DER -out nosan.der");
  sh("openssl x509 -in ip6.pem -outform DER -out ip6.der");
  f = fopen(path_of("empty.pem"), "w");
  assert_non_null(f);
  fputs("no PEM objects here\n", f);
  fclose(f);
  return 0;
}

static int group_teardown(void **state)
{
  (void)state;
  test_rmdir(g_dir);
  return 0;
}

/* ---- a pass-through stream that can refuse writes ------------------------ */

/* Sits between the server's TLS stream and its TCP stream so a test can make
 * the server vanish without a close_notify (writes fail with UV_EPIPE). */
typedef struct {
  stream_t s;
  stream_t *inner;
  stream_read_cb rcb;
  stream_close_cb ccb;
  int fail_writes;     /* writes fail with UV_EPIPE */
  int fail_read_start; /* read_start fails with UV_ENOTCONN */
  int corrupt;         /* flip a bit in every write (a bad record MAC) */
} shim_t;

typedef struct {
  shim_t *sh;
  stream_write_cb cb;
  void *arg;
} shim_wr_t;

static void shim_on_read(stream_t *inner, ssize_t n, const char *data)
{
  shim_t *sh = inner->data;
  sh->rcb(&sh->s, n, data);
}

static int shim_read_start(stream_t *s, stream_read_cb cb)
{
  shim_t *sh = (shim_t *)s;
  if (sh->fail_read_start)
    return UV_ENOTCONN;
  sh->rcb = cb;
  return stream_read_start(sh->inner, shim_on_read);
}

static int shim_read_stop(stream_t *s)
{
  return stream_read_stop(((shim_t *)s)->inner);
}

static void shim_on_write(stream_t *inner, int status, void *arg)
{
  shim_wr_t *w = arg;
  (void)inner;
  w->cb(&w->sh->s, status, w->arg);
  free(w);
}

static int shim_write(stream_t *s, const uv_buf_t *bufs, unsigned n, stream_write_cb cb, void *arg)
{
  shim_t *sh = (shim_t *)s;
  if (sh->fail_writes)
    return UV_EPIPE;
  shim_wr_t *w = xmalloc(sizeof *w);
  w->sh = sh;
  w->cb = cb;
  w->arg = arg;
  if (sh->corrupt && n > 0 && bufs[0].len > 0)
    bufs[0].base[bufs[0].len - 1] ^= 0x01; /* the TLS layer's own copy */
  int r = stream_write(sh->inner, bufs, n, shim_on_write, w);
  if (r < 0)
    free(w);
  return r;
}

static void shim_on_closed(stream_t *inner)
{
  shim_t *sh = inner->data;
  if (sh->ccb)
    sh->ccb(&sh->s);
  free(sh);
}

static void shim_close(stream_t *s, stream_close_cb cb)
{
  shim_t *sh = (shim_t *)s;
  sh->ccb = cb;
  stream_close(sh->inner, shim_on_closed);
}

static const stream_vtbl_t shim_vtbl = {
  shim_read_start, shim_read_stop, shim_write, shim_close, NULL,
};

static shim_t *shim_new(stream_t *inner)
{
  shim_t *sh = xcalloc(1, sizeof *sh);
  sh->s.vt = &shim_vtbl;
  sh->s.loop = inner->loop;
  sh->inner = inner;
  inner->data = sh;
  return sh;
}

/* ---- fixture: one loop, a listener, a TLS server, TLS clients ------------ */

enum srv_mode {
  SRV_ECHO,     /* echo every byte back */
  SRV_NOTIFY,   /* once the payload is in: close (sends close_notify) */
  SRV_TRUNCATE, /* once the payload is in: vanish without close_notify */
  SRV_PLAIN,    /* no TLS: answer the ClientHello with plain text */
  SRV_PIPELINE, /* like http_server's back-pressure: per MSG_LEN message,
                   stop reading, echo it, read again only once the echo is
                   written (from a timer) */
};

/* SRV_PIPELINE's message size: odd, so messages straddle records. */
#define MSG_LEN 37

typedef struct {
  uv_loop_t loop;
  uv_tcp_t listener;
  struct sockaddr_storage addr; /* the listener's (IPv4 or IPv6) */
  enum srv_mode mode;
  tls_server_ctx_t *sctx;
  shim_t *srv_shim; /* the latest server connection's shim */
  int srv_status;   /* terminal status the server's reader saw */
  size_t srv_bytes;
  int srv_open;
  buf_t srv_in; /* SRV_PIPELINE: input not echoed yet */
  size_t srv_in_off;
  uv_timer_t srv_timer;
  int srv_resumes; /* read_start calls from srv_timer */
  int srv_peer;    /* tls_stream_peer_cert() at the first bytes */
  int srv_peer_trusted;
  unsigned char srv_peer_id[32];

  tls_client_ctx_t *cctx;
  const char *server_name;
  int total, conns_left, idx;
  size_t payload_len;
  unsigned char *payload;
  int write_after_hs; /* write in the handshake callback, not at once */
  int close_early;    /* close right after wrapping */
  int forget_between; /* forget cached sessions before each connection */
  int pause_reads;    /* stop reading after the handshake, resume later */
  int write_on_timer; /* write from a timer callback (outside TLS callbacks) */
  int cli_shim;       /* 1: client inner read_start fails; 2: writes fail */
  int srv_corrupt;    /* server corrupts its records after the handshake */
  uv_timer_t resume_timer;
  stream_t *cli;
  int hs_status[4];
  int hs_calls;
  int resumed[4];
  int echoed[4];
  buf_t got;
  int cli_status; /* terminal status the client's reader saw */
  int write_status[2];
  int write_calls;
  int late_write; /* what a write returns after the stream ended */
  int closed;
} fx_t;

static fx_t *fx_of(stream_t *s)
{
  return s->data;
}

/* -- server -- */

static void srv_on_write(stream_t *s, int status, void *arg)
{
  (void)s;
  (void)status;
  free(arg);
}

static void srv_on_closed(stream_t *s)
{
  fx_of(s)->srv_open--;
}

static void srv_on_read(stream_t *s, ssize_t n, const char *data);

static void srv_on_timer(uv_timer_t *t)
{
  stream_t *s = t->data;
  fx_of(s)->srv_resumes++;
  assert_int_equal(stream_read_start(s, srv_on_read), 0);
}

/* SRV_PIPELINE: echoes the oldest complete message, if any (the reader is
 * stopped meanwhile); otherwise reads again from a timer callback, i.e.
 * outside every TLS callback, like http_server resuming after a write. */
static void pipe_next(fx_t *fx, stream_t *s);

static void pipe_on_write(stream_t *s, int status, void *arg)
{
  (void)arg;
  assert_int_equal(status, 0);
  fx_t *fx = fx_of(s);
  fx->srv_in_off += MSG_LEN;
  pipe_next(fx, s);
}

static void pipe_next(fx_t *fx, stream_t *s)
{
  if (fx->srv_in.len - fx->srv_in_off < MSG_LEN) {
    assert_int_equal(uv_timer_start(&fx->srv_timer, srv_on_timer, 0, 0), 0);
    return;
  }
  uv_buf_t b = uv_buf_init(fx->srv_in.data + fx->srv_in_off, MSG_LEN);
  assert_int_equal(stream_write(s, &b, 1, pipe_on_write, NULL), 0);
}

static void srv_on_read(stream_t *s, ssize_t n, const char *data)
{
  fx_t *fx = fx_of(s);
  if (n < 0) {
    fx->srv_status = (int)n;
    if (fx->mode == SRV_PIPELINE)
      uv_close((uv_handle_t *)&fx->srv_timer, NULL);
    stream_close(s, srv_on_closed);
    return;
  }
  if (fx->srv_bytes == 0)
    fx->srv_peer = tls_stream_peer_cert(s, fx->srv_peer_id, &fx->srv_peer_trusted);
  fx->srv_bytes += (size_t)n;
  if (fx->mode == SRV_PIPELINE) {
    /* The bytes are only appended (the echo writes borrow them, so the
     * buffer must not move while one is in flight: reading is stopped
     * until the echoes of everything complete are written). */
    buf_append(&fx->srv_in, data, (size_t)n);
    if (fx->srv_in.len - fx->srv_in_off >= MSG_LEN) {
      assert_int_equal(stream_read_stop(s), 0);
      pipe_next(fx, s);
    }
    return;
  }
  if (fx->srv_corrupt)
    fx->srv_shim->corrupt = 1;
  switch (fx->mode) {
  case SRV_ECHO: {
    char *copy = xmemdup(data, (size_t)n);
    uv_buf_t b = uv_buf_init(copy, (unsigned)n);
    assert_int_equal(stream_write(s, &b, 1, srv_on_write, copy), 0);
    break;
  }
  case SRV_TRUNCATE:
    fx->srv_shim->fail_writes = 1; /* the close_notify never leaves */
    /* fall through */
  case SRV_NOTIFY:
    /* Only once everything was read: closing a socket with unread input
     * would send a reset instead of a clean FIN. */
    if (fx->srv_bytes >= fx->payload_len)
      stream_close(s, srv_on_closed);
    break;
  default: break;
  }
}

static void plain_on_write(stream_t *s, int status, void *arg)
{
  (void)status;
  (void)arg;
  stream_close(s, srv_on_closed);
}

static void plain_on_read(stream_t *s, ssize_t n, const char *data)
{
  static char reply[] = "HTTP/1.1 400 Bad Request\r\n\r\nnot TLS, sorry\n";
  (void)data;
  if (n < 0) {
    stream_close(s, srv_on_closed);
    return;
  }
  stream_read_stop(s);
  uv_buf_t b = uv_buf_init(reply, sizeof reply - 1);
  assert_int_equal(stream_write(s, &b, 1, plain_on_write, NULL), 0);
}

static void on_connection(uv_stream_t *listener, int status)
{
  fx_t *fx = listener->data;
  assert_int_equal(status, 0);
  stream_t *tcp = stream_tcp_new(&fx->loop);
  assert_int_equal(uv_accept(listener, (uv_stream_t *)stream_tcp_handle(tcp)), 0);
  fx->srv_open++;
  if (fx->mode == SRV_PLAIN) {
    tcp->data = fx;
    assert_int_equal(stream_read_start(tcp, plain_on_read), 0);
    return;
  }
  fx->srv_shim = shim_new(tcp);
  stream_t *s = tls_server_wrap_hook(fx->sctx, &fx->srv_shim->s);
  assert_non_null(s);
  assert_true(tls_stream_is_tls(s));
  s->data = fx;
  assert_int_equal(stream_read_start(s, srv_on_read), 0);
  if (fx->mode == SRV_PIPELINE) {
    assert_int_equal(uv_timer_init(&fx->loop, &fx->srv_timer), 0);
    fx->srv_timer.data = s;
  }
}

/* -- client -- */

static void start_client(fx_t *fx);

static void cli_on_closed(stream_t *s)
{
  fx_t *fx = fx_of(s);
  fx->closed++;
  if (fx->conns_left > 0)
    start_client(fx);
  else
    uv_close((uv_handle_t *)&fx->listener, NULL);
}

static void cli_on_write(stream_t *s, int status, void *arg)
{
  fx_t *fx = arg;
  (void)s;
  if (fx->write_calls < 2)
    fx->write_status[fx->write_calls] = status;
  fx->write_calls++;
}

static void cli_send(fx_t *fx, stream_t *s)
{
  /* Two writes, the first with two buffers. */
  size_t a = fx->payload_len / 3, b = fx->payload_len / 3;
  uv_buf_t w1[2] = {
    uv_buf_init((char *)fx->payload, (unsigned)a),
    uv_buf_init((char *)fx->payload + a, (unsigned)b),
  };
  uv_buf_t w2 = uv_buf_init((char *)fx->payload + a + b, (unsigned)(fx->payload_len - a - b));
  int r1 = stream_write(s, w1, 2, cli_on_write, fx);
  int r2 = stream_write(s, &w2, 1, cli_on_write, fx);
  /* A write fails at once only when the stream already failed (the error
   * is sticky); count it as a completion with that status. */
  if (r1 < 0) {
    assert_int_equal(r1, s->error);
    cli_on_write(s, r1, fx);
  }
  if (r2 < 0) {
    assert_int_equal(r2, s->error);
    cli_on_write(s, r2, fx);
  }
}

static void cli_on_read(stream_t *s, ssize_t n, const char *data)
{
  fx_t *fx = fx_of(s);
  if (n < 0) {
    fx->cli_status = (int)n;
    assert_int_equal(s->error, (int)n); /* sticky */
    uv_buf_t b = uv_buf_init((char *)fx->payload, 1);
    fx->late_write = stream_write(s, &b, 1, cli_on_write, fx);
    assert_int_equal(stream_read_start(s, cli_on_read), (int)n); /* reported */
    stream_close(s, cli_on_closed);
    assert_int_equal(stream_write(s, &b, 1, cli_on_write, fx), UV_EPIPE);
    assert_int_equal(stream_read_start(s, cli_on_read), UV_EINVAL);
    stream_close(s, cli_on_closed); /* a second close is ignored */
    return;
  }
  buf_append(&fx->got, data, (size_t)n);
  if (fx->got.len == fx->payload_len) {
    fx->echoed[fx->idx] = memcmp(fx->got.data, fx->payload, fx->payload_len) == 0;
    stream_close(s, cli_on_closed);
  }
}

static void on_resume(uv_timer_t *t)
{
  fx_t *fx = t->data;
  assert_int_equal(stream_read_start(fx->cli, cli_on_read), 0);
  uv_close((uv_handle_t *)t, NULL);
}

static void on_write_timer(uv_timer_t *t)
{
  fx_t *fx = t->data;
  cli_send(fx, fx->cli);
  uv_close((uv_handle_t *)t, NULL);
}

static void cli_on_hs(stream_t *s, int status, void *arg)
{
  fx_t *fx = arg;
  fx->hs_status[fx->idx] = status;
  fx->hs_calls++;
  if (status < 0) {
    assert_int_equal(s->error == 0 ? status : s->error, status);
    stream_close(s, cli_on_closed);
    return;
  }
  fx->resumed[fx->idx] = tls_stream_resumed(s);
  uv_buf_t empty = uv_buf_init(NULL, 0);
  assert_int_equal(stream_write(s, &empty, 1, cli_on_write, fx), UV_EINVAL);
  if (fx->write_on_timer) {
    fx->cli = s;
    assert_int_equal(uv_timer_init(&fx->loop, &fx->resume_timer), 0);
    fx->resume_timer.data = fx;
    assert_int_equal(uv_timer_start(&fx->resume_timer, on_write_timer, 0, 0), 0);
  } else if (fx->write_after_hs) {
    cli_send(fx, s);
  }
  if (fx->pause_reads) {
    /* Nothing is read for a while: the echo backs up into the client's
     * engine, its input buffer and TCP, and must all come out later. */
    assert_int_equal(stream_read_stop(s), 0);
    fx->cli = s;
    assert_int_equal(uv_timer_init(&fx->loop, &fx->resume_timer), 0);
    fx->resume_timer.data = fx;
    assert_int_equal(uv_timer_start(&fx->resume_timer, on_resume, 200, 0), 0);
  }
}

static unsigned fx_port(const fx_t *fx)
{
  if (fx->addr.ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)&fx->addr)->sin6_port);
  return ntohs(((const struct sockaddr_in *)&fx->addr)->sin_port);
}

static void on_connect(stream_t *tcp, int status, void *arg)
{
  fx_t *fx = arg;
  assert_int_equal(status, 0);
  if (fx->cli_shim) {
    shim_t *sh = shim_new(tcp);
    sh->fail_read_start = fx->cli_shim == 1;
    sh->fail_writes = fx->cli_shim == 2;
    tcp = &sh->s;
  }
  stream_t *s = tls_client_wrap(fx->cctx, tcp, fx->server_name, fx_port(fx), cli_on_hs, fx);
  assert_non_null(s);
  s->data = fx;
  assert_int_equal(stream_read_start(s, cli_on_read), 0);
  if (!fx->write_after_hs)
    cli_send(fx, s); /* queued until the handshake is done */
  if (fx->close_early)
    stream_close(s, cli_on_closed);
}

static void start_client(fx_t *fx)
{
  fx->idx = fx->total - fx->conns_left--;
  buf_reset(&fx->got);
  if (fx->forget_between)
    tls_client_ctx_forget_sessions(fx->cctx);
  stream_t *tcp = stream_tcp_new(&fx->loop);
  assert_non_null(tcp);
  assert_int_equal(stream_tcp_connect(tcp, (struct sockaddr *)&fx->addr, on_connect, fx), 0);
}

static void fx_init(fx_t *fx, const char *chain, const char *key, enum srv_mode mode)
{
  memset(fx, 0, sizeof *fx);
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  assert_int_equal(uv_tcp_init(&fx->loop, &fx->listener), 0);
  if (uv_ip4_addr(g_listen_ip, 0, (struct sockaddr_in *)&fx->addr) != 0)
    assert_int_equal(uv_ip6_addr(g_listen_ip, 0, (struct sockaddr_in6 *)&fx->addr), 0);
  assert_int_equal(uv_tcp_bind(&fx->listener, (struct sockaddr *)&fx->addr, 0), 0);
  int len = sizeof fx->addr;
  assert_int_equal(uv_tcp_getsockname(&fx->listener, (struct sockaddr *)&fx->addr, &len), 0);
  fx->listener.data = fx;
  assert_int_equal(uv_listen((uv_stream_t *)&fx->listener, 16, on_connection), 0);
  fx->mode = mode;
  if (chain != NULL)
    assert_int_equal(tls_server_ctx_new(&fx->sctx, path_of(chain), path_of(key)), 0);
  assert_int_equal(tls_client_ctx_new(&fx->cctx, path_of("ca.pem"), NULL), 0);
  fx->server_name = "localhost";
  fx->payload_len = 600;
  fx->srv_status = 1;
  fx->cli_status = 1;
}

static void fx_run(fx_t *fx, int conns)
{
  fx->payload = xmalloc(fx->payload_len);
  for (size_t i = 0; i < fx->payload_len; i++)
    fx->payload[i] = (unsigned char)(i * 7 + i / 251);
  fx->total = fx->conns_left = conns;
  start_client(fx);
  assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(fx->closed, conns);
  assert_int_equal(fx->srv_open, 0);
}

static void fx_done(fx_t *fx)
{
  tls_server_ctx_free(fx->sctx);
  tls_client_ctx_free(fx->cctx);
  free(fx->payload);
  buf_free(&fx->got);
  buf_free(&fx->srv_in);
  assert_int_equal(uv_loop_close(&fx->loop), 0);
}

/* ---- tests --------------------------------------------------------------- */

static void echo_test(const char *chain, const char *key, size_t len, int write_on_timer)
{
  fx_t fx;
  fx_init(&fx, chain, key, SRV_ECHO);
  fx.payload_len = len;
  fx.write_on_timer = write_on_timer;
  fx.write_after_hs = write_on_timer; /* not also before the handshake */
  fx_run(&fx, 1);
  assert_int_equal(fx.hs_calls, 1);
  assert_int_equal(fx.hs_status[0], 0);
  assert_int_equal(fx.resumed[0], 0);
  assert_true(fx.echoed[0]);
  assert_int_equal(fx.write_calls, 2);
  assert_int_equal(fx.write_status[0], 0);
  assert_int_equal(fx.write_status[1], 0);
  assert_int_equal(fx.srv_bytes, len);
  assert_int_equal(fx.srv_status, UV_EOF); /* the client's close_notify */
  assert_int_equal(tls_client_ctx_stats(fx.cctx)->full, 1);
  assert_int_equal(tls_server_ctx_stats(fx.sctx)->full, 1);
  fx_done(&fx);
}

static void test_echo_ecdsa(void **state)
{
  (void)state;
  echo_test("ec.pem", "ec.key", 600, 0);
}

static void test_echo_rsa(void **state)
{
  (void)state;
  echo_test("rsa.pem", "rsa.key", 600, 1);
}

static void test_large_payload(void **state)
{
  (void)state;
  /* Several 16 KiB records each way, and more than the inner-read
   * high-water mark in flight. */
  echo_test("ec.pem", "ec.key", 300 * 1024 + 17, 0);
}

static void test_paused_reader(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "ec.pem", "ec.key", SRV_ECHO);
  fx.payload_len = 400 * 1024;
  fx.write_after_hs = 1;
  fx.pause_reads = 1;
  fx_run(&fx, 1);
  assert_int_equal(fx.hs_status[0], 0);
  assert_true(fx.echoed[0]);
  assert_int_equal(fx.write_calls, 2);
  assert_int_equal(fx.write_status[1], 0);
  fx_done(&fx);
}

static void test_pipelined_backpressure(void **state)
{
  (void)state;
  /* Thousands of small messages written at once (several records, more
   * than the inner-read high-water mark); the server stops reading after
   * each one and reads again only once its echo is written. The engine's
   * buffer is half-duplex: if it took in the next record while the
   * server was not reading, the echo could not be sent and both sides
   * would wait forever (mock_provider answered only ~74 pipelined
   * requests over TLS). */
  fx_t fx;
  fx_init(&fx, "ec.pem", "ec.key", SRV_PIPELINE);
  fx.payload_len = 3000 * MSG_LEN;
  fx.write_after_hs = 1;
  fx_run(&fx, 1);
  assert_int_equal(fx.hs_status[0], 0);
  assert_true(fx.echoed[0]); /* every byte, in order */
  assert_int_equal(fx.write_calls, 2);
  assert_int_equal(fx.write_status[0], 0);
  assert_int_equal(fx.write_status[1], 0);
  assert_int_equal(fx.srv_bytes, fx.payload_len);
  assert_int_equal(fx.srv_in.len, fx.payload_len);
  assert_int_equal(fx.srv_in_off, fx.payload_len);
  assert_true(fx.srv_resumes > 0);
  assert_int_equal(fx.srv_status, UV_EOF);
  fx_done(&fx);
}

static void test_resumption(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "ec.pem", "ec.key", SRV_ECHO);
  fx.write_after_hs = 1;
  fx_run(&fx, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(fx.hs_status[i], 0);
    assert_true(fx.echoed[i]);
  }
  assert_int_equal(fx.resumed[0], 0);
  assert_int_equal(fx.resumed[1], 1);
  assert_int_equal(fx.resumed[2], 1);
  const tls_stats_t *cs = tls_client_ctx_stats(fx.cctx);
  const tls_stats_t *ss = tls_server_ctx_stats(fx.sctx);
  assert_int_equal(cs->full, 1);
  assert_int_equal(cs->resumed, 2);
  assert_int_equal(ss->full, 1);
  assert_int_equal(ss->resumed, 2);

  fx_done(&fx);
}

static void test_forget_sessions(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "rsa.pem", "rsa.key", SRV_ECHO);
  fx.forget_between = 1;
  fx_run(&fx, 2);
  assert_int_equal(fx.hs_status[1], 0);
  assert_int_equal(fx.resumed[1], 0);
  assert_int_equal(tls_client_ctx_stats(fx.cctx)->full, 2);
  assert_int_equal(tls_server_ctx_stats(fx.sctx)->full, 2);
  fx_done(&fx);
}

/* A handshake that must fail with `want` on the client. */
static void fail_test(fx_t *fx, int want)
{
  fx_run(fx, 1);
  assert_int_equal(fx->hs_calls, 1);
  assert_int_equal(fx->hs_status[0], want);
  assert_int_equal(fx->write_calls, 2); /* queued writes fail too */
  assert_int_equal(fx->write_status[0], want);
  assert_int_equal(fx->write_status[1], want);
  assert_int_equal(fx->cli_status, 1); /* closed in the handshake cb */
  assert_int_equal(tls_client_ctx_stats(fx->cctx)->failed, 1);
  assert_int_equal(tls_client_ctx_stats(fx->cctx)->full, 0);
}

static void test_untrusted(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "other.pem", "other.key", SRV_ECHO);
  fail_test(&fx, GRANTD_ETLS_UNTRUSTED);
  /* The server's reader learns that the handshake failed. */
  assert_true(fx.srv_status < 0);
  assert_int_equal(tls_server_ctx_stats(fx.sctx)->failed, 1);
  fx_done(&fx);
}

static void test_hostname(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "wrong.pem", "wrong.key", SRV_ECHO);
  fail_test(&fx, GRANTD_ETLS_HOSTNAME);
  fx_done(&fx);
}

/* ---- IP-address hosts ------------------------------------------------- */

/* One handshake to server_name over g_listen_ip, against chain; want is the
 * client's handshake status. */
static void ip_case(const char *listen, const char *server_name, const char *leaf, int want)
{
  char chain[64], key[64];
  snprintf(chain, sizeof chain, "%s.pem", leaf);
  snprintf(key, sizeof key, "%s.key", leaf);
  g_listen_ip = listen;
  fx_t fx;
  fx_init(&fx, chain, key, SRV_ECHO);
  g_listen_ip = "127.0.0.1";
  fx.server_name = server_name;
  if (want == 0) {
    fx_run(&fx, 1);
    assert_int_equal(fx.hs_status[0], 0);
    assert_true(fx.echoed[0]);
  } else {
    fail_test(&fx, want);
  }
  fx_done(&fx);
}

static void test_ip_san_v4(void **state)
{
  (void)state;
  ip_case("127.0.0.1", "127.0.0.1", "ip4", 0); /* IP:127.0.0.1 only */
  ip_case("127.0.0.1", "127.0.0.1", "ec", 0);  /* DNS:localhost + IP:127.0.0.1 */
  ip_case("127.0.0.1", "localhost", "ec", 0);  /* names still by DNS SAN */
  ip_case("127.0.0.1", "localhost", "ip4", GRANTD_ETLS_HOSTNAME);
  /* Same strictness as names: no other address, no CN or dNSName spelling
   * the address, no IPv4-mapped form, no SAN at all -> tls_hostname. */
  ip_case("127.0.0.1", "127.0.0.1", "ip2", GRANTD_ETLS_HOSTNAME);
  ip_case("127.0.0.1", "127.0.0.1", "dnsip", GRANTD_ETLS_HOSTNAME);
  ip_case("127.0.0.1", "127.0.0.1", "mapped", GRANTD_ETLS_HOSTNAME);
  ip_case("127.0.0.1", "127.0.0.1", "nosan", GRANTD_ETLS_HOSTNAME);
  ip_case("127.0.0.1", "127.0.0.1", "ip6", GRANTD_ETLS_HOSTNAME);
}

static void test_ip_san_v6(void **state)
{
  (void)state;
  ip_case("::1", "::1", "ip6", 0);
  ip_case("::1", "0:0:0:0:0:0:0:1", "ip6", 0); /* any spelling of ::1 */
  ip_case("::1", "::1", "ec", GRANTD_ETLS_HOSTNAME);
  ip_case("::1", "::1", "ip2", GRANTD_ETLS_HOSTNAME);
  ip_case("::1", "::1", "dnsip", GRANTD_ETLS_HOSTNAME);
}

/* The chain is still validated in full for IP hosts. */
static void test_ip_chain_still_validated(void **state)
{
  (void)state;
  ip_case("127.0.0.1", "127.0.0.1", "other", GRANTD_ETLS_UNTRUSTED);
  fx_t fx;
  fx_init(&fx, "short.pem", "short.key", SRV_ECHO);
  fx.server_name = "127.0.0.1";
  tls_client_ctx_set_time(fx.cctx, (int64_t)time(NULL) + 3 * 86400);
  fail_test(&fx, GRANTD_ETLS_EXPIRED);
  fx_done(&fx);
  /* Resumption works for IP hosts too (the session key is address:port). */
  fx_init(&fx, "ip4.pem", "ip4.key", SRV_ECHO);
  fx.server_name = "127.0.0.1";
  fx.write_after_hs = 1;
  fx_run(&fx, 2);
  assert_int_equal(fx.hs_status[1], 0);
  assert_int_equal(fx.resumed[1], 1);
  fx_done(&fx);
}

static unsigned char *read_der(const char *name, size_t *len)
{
  FILE *f = fopen(path_of(name), "rb");
  assert_non_null(f);
  unsigned char *b = xmalloc(8192);
  *len = fread(b, 1, 8192, f);
  fclose(f);
  assert_true(*len > 100 && *len < 8192);
  return b;
}

/* The DER reader on real certificates and on every truncation of one. */
static void test_ip_san_decoder(void **state)
{
  (void)state;
  static const uint8_t lo4[4] = {127, 0, 0, 1}, two4[4] = {127, 0, 0, 2};
  static const uint8_t lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  size_t n;
  unsigned char *der = read_der("ec.der", &n);
  assert_int_equal(x509_ip_san_match(der, n, lo4, 4), 1);
  assert_int_equal(x509_ip_san_match(der, n, two4, 4), 0);
  assert_int_equal(x509_ip_san_match(der, n, lo6, 16), 0);
  for (size_t cut = 0; cut < n; cut++)
    assert_int_equal(x509_ip_san_match(der, cut, lo4, 4), -1);
  /* A length byte claiming more than there is. */
  unsigned char saved = der[1];
  der[1] = 0x84;
  assert_int_equal(x509_ip_san_match(der, n, lo4, 4), -1);
  der[1] = saved;
  free(der);
  der = read_der("ip6.der", &n);
  assert_int_equal(x509_ip_san_match(der, n, lo6, 16), 1);
  assert_int_equal(x509_ip_san_match(der, n, lo4, 4), 0);
  free(der);
  der = read_der("nosan.der", &n);
  assert_int_equal(x509_ip_san_match(der, n, lo4, 4), 0);
  free(der);
  uint8_t ip[16];
  assert_int_equal(x509_ip_parse_host("10.0.3.7", ip), 4);
  assert_int_equal(x509_ip_parse_host("fe80::1", ip), 16);
  assert_int_equal(x509_ip_parse_host("localhost", ip), 0);
  assert_int_equal(x509_ip_parse_host("127.1", ip), 0);
  assert_int_equal(x509_ip_parse_host(NULL, ip), 0);
}

static void test_expired(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "short.pem", "short.key", SRV_ECHO);
  tls_client_ctx_set_time(fx.cctx, (int64_t)time(NULL) + 3 * 86400);
  fail_test(&fx, GRANTD_ETLS_EXPIRED);
  fx_done(&fx);
}

static void test_not_tls(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, NULL, NULL, SRV_PLAIN);
  fail_test(&fx, GRANTD_ETLS_HANDSHAKE);
  fx_done(&fx);
}

static void test_close_notify_is_eof(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "ec.pem", "ec.key", SRV_NOTIFY);
  fx_run(&fx, 1);
  assert_int_equal(fx.hs_status[0], 0);
  assert_int_equal(fx.cli_status, UV_EOF);
  assert_int_equal(fx.late_write, UV_EOF);
  assert_int_equal(fx.write_calls, 2);
  assert_int_equal(fx.write_status[0], 0);
  assert_int_equal(fx.write_status[1], 0);
  fx_done(&fx);
}

static void test_truncation(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "ec.pem", "ec.key", SRV_TRUNCATE);
  fx_run(&fx, 1);
  assert_int_equal(fx.hs_status[0], 0);
  assert_int_equal(fx.cli_status, GRANTD_ETLS_CLOSED);
  assert_int_equal(fx.late_write, GRANTD_ETLS_CLOSED);
  fx_done(&fx);
}

static void test_protocol_error(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "ec.pem", "ec.key", SRV_ECHO);
  fx.srv_corrupt = 1;
  fx_run(&fx, 1);
  assert_int_equal(fx.hs_status[0], 0);
  assert_int_equal(fx.cli_status, GRANTD_ETLS_PROTOCOL);
  assert_int_equal(fx.late_write, GRANTD_ETLS_PROTOCOL);
  fx_done(&fx);
}

static void test_inner_read_start_fails(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "ec.pem", "ec.key", SRV_ECHO);
  fx.cli_shim = 1;
  fail_test(&fx, UV_ENOTCONN);
  fx_done(&fx);
}

static void test_inner_write_fails(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "ec.pem", "ec.key", SRV_ECHO);
  fx.cli_shim = 2;
  fail_test(&fx, UV_EPIPE);
  fx_done(&fx);
}

static void test_close_before_handshake(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "ec.pem", "ec.key", SRV_ECHO);
  fx.close_early = 1;
  fx_run(&fx, 1);
  assert_int_equal(fx.hs_calls, 1);
  assert_int_equal(fx.hs_status[0], UV_ECANCELED);
  assert_int_equal(fx.write_calls, 2);
  assert_int_equal(fx.write_status[0], UV_ECANCELED);
  assert_int_equal(fx.write_status[1], UV_ECANCELED);
  assert_int_equal(fx.cli_status, 1); /* no read callback after close */
  assert_true(fx.srv_status < 0);
  fx_done(&fx);
}

static void test_derived_ctx(void **state)
{
  (void)state;
  fx_t fx;
  fx_init(&fx, "ec.pem", "ec.key", SRV_ECHO);
  /* Base trusts only ca2; the derived context adds the provider's CA. */
  tls_client_ctx_t *base = NULL, *derived = NULL;
  assert_int_equal(tls_client_ctx_new(&base, path_of("ca2.pem"), NULL), 0);
  assert_int_equal(tls_client_ctx_derive(&derived, base, path_of("ca.pem")), 0);
  assert_int_equal(tls_client_ctx_anchor_count(derived), 2);
  tls_client_ctx_free(base); /* the derived context keeps it alive */
  tls_client_ctx_free(fx.cctx);
  fx.cctx = derived;
  fx_run(&fx, 1);
  assert_int_equal(fx.hs_status[0], 0);
  assert_true(fx.echoed[0]);
  fx_done(&fx);
}

static void test_ctx_errors(void **state)
{
  (void)state;
  tls_client_ctx_t *c = NULL;
  tls_server_ctx_t *s = NULL;
  assert_int_equal(tls_client_ctx_new(&c, path_of("missing.pem"), NULL), UV_ENOENT);
  assert_int_equal(tls_client_ctx_new(&c, path_of("empty.pem"), NULL), GRANTD_ECONFIG);
  assert_int_equal(tls_client_ctx_new(&c, path_of("ca.pem"), path_of("missing.pem")), UV_ENOENT);
  assert_int_equal(tls_client_ctx_new(&c, "", NULL), GRANTD_ECONFIG);
  assert_int_equal(tls_client_ctx_new(&c, path_of("ca.key"), NULL), GRANTD_ECONFIG);
  assert_int_equal(tls_client_ctx_new(&c, "", path_of("ca.pem")), 0);
  assert_int_equal(tls_client_ctx_anchor_count(c), 1);
  tls_client_ctx_t *d = NULL;
  assert_int_equal(tls_client_ctx_derive(&d, c, path_of("missing.pem")), UV_ENOENT);
  assert_int_equal(tls_client_ctx_derive(&d, c, NULL), 0);
  assert_int_equal(tls_client_ctx_anchor_count(d), 1);
  tls_client_ctx_free(d);
  /* A NULL or empty server name is refused before anything starts. */
  assert_null(tls_client_wrap(c, NULL, NULL, 443, NULL, NULL));
  assert_null(tls_client_wrap(c, NULL, "", 443, NULL, NULL));
  tls_client_ctx_free(c);
  tls_client_ctx_free(NULL);

  assert_int_equal(tls_server_ctx_new(&s, path_of("missing.pem"), path_of("ec.key")), UV_ENOENT);
  assert_int_equal(tls_server_ctx_new(&s, path_of("ec.pem"), path_of("missing.key")), UV_ENOENT);
  assert_int_equal(tls_server_ctx_new(&s, path_of("empty.pem"), path_of("ec.key")), GRANTD_ECONFIG);
  assert_int_equal(tls_server_ctx_new(&s, path_of("ec.pem"), path_of("ec.pem")), GRANTD_ECONFIG);
  assert_int_equal(tls_server_ctx_new(&s, path_of("ec.pem"), path_of("ec.key")), 0);
  assert_int_equal(tls_server_ctx_stats(s)->full, 0);
  tls_server_ctx_free(s);
  tls_server_ctx_free(NULL);
}

static char *slurp(const char *name)
{
  FILE *f = fopen(path_of(name), "rb");
  assert_non_null(f);
  buf_t b = BUF_INIT;
  char tmp[4096];
  size_t n;
  while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
    buf_append(&b, tmp, n);
  fclose(f);
  buf_putc(&b, '\0');
  return buf_steal(&b);
}

/* Runs one echo connection with client context cctx (borrowed) against a
 * server that requests client certificates from ca.pem's CA. */
static void run_mtls(fx_t *fx, tls_client_ctx_t *cctx)
{
  fx_init(fx, "ec.pem", "ec.key", SRV_ECHO);
  assert_int_equal(tls_server_ctx_request_client_cert(fx->sctx, path_of("ca.pem")), 0);
  if (cctx != NULL) {
    tls_client_ctx_free(fx->cctx);
    fx->cctx = cctx;
  }
  fx_run(fx, 1);
  assert_int_equal(fx->hs_status[0], 0);
  assert_true(fx->echoed[0]);
}

/* Mutual TLS: a context made with a client certificate presents it (the
 * server sees that leaf, trusted by its client CA, and verified its
 * CertificateVerify); an untrusted one is presented and reported as such;
 * a context without one presents none. Bad pairs are refused. */
static void test_client_cert(void **state)
{
  (void)state;
  char *ec = slurp("ec.pem"), *eck = slurp("ec.key"), *rsa = slurp("rsa.pem"),
       *rsak = slurp("rsa.key"), *oth = slurp("other.pem"), *othk = slurp("other.key"),
       *cak = slurp("ca.key");
  const char *why = NULL;
  unsigned char id[32];
  tls_client_ctx_t *base = NULL, *withc = NULL;
  assert_int_equal(tls_client_ctx_new(&base, path_of("ca.pem"), NULL), 0);
  assert_null(tls_client_ctx_cert_id(base));
  assert_int_equal(tls_client_cert_check(ec, strlen(ec), eck, strlen(eck), id, &why), 0);
  static const struct {
    int chain, key;
    const char *why;
  } bad[] = {
    {0, 6, "does not match"},   /* the CA's EC key for the EC leaf */
    {0, 3, "RSA key but"},      /* the RSA key for the EC leaf */
    {2, 1, "EC key but"},       /* the EC key for the RSA leaf */
    {-1, 1, "client_cert is"},  /* not PEM */
    {0, -1, "client_cert_key"}, /* not a key */
  };
  const char *txt[] = {ec, eck, rsa, rsak, oth, othk, cak};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    const char *c = bad[i].chain < 0 ? "nope" : txt[bad[i].chain];
    const char *k = bad[i].key < 0 ? "nope" : txt[bad[i].key];
    why = NULL;
    assert_int_equal(tls_client_cert_check(c, strlen(c), k, strlen(k), NULL, &why),
                     GRANTD_EINVALID);
    if (why == NULL || strstr(why, bad[i].why) == NULL)
      fail_msg("bad[%zu]: \"%s\" lacks \"%s\"", i, why ? why : "(null)", bad[i].why);
    assert_int_equal(tls_client_ctx_derive_cert(&withc, base, c, strlen(c), k, strlen(k), NULL),
                     GRANTD_EINVALID);
  }

  fx_t fx;
  /* EC leaf of the client CA. */
  assert_int_equal(tls_client_ctx_derive_cert(&withc, base, ec, strlen(ec), eck, strlen(eck), &why),
                   0);
  assert_memory_equal(tls_client_ctx_cert_id(withc), id, 32);
  run_mtls(&fx, withc);
  assert_true(fx.srv_peer);
  assert_true(fx.srv_peer_trusted);
  assert_memory_equal(fx.srv_peer_id, id, 32);
  fx_done(&fx);
  /* RSA leaf, also of the client CA. */
  assert_int_equal(
    tls_client_ctx_derive_cert(&withc, base, rsa, strlen(rsa), rsak, strlen(rsak), &why), 0);
  run_mtls(&fx, withc);
  assert_true(fx.srv_peer);
  assert_true(fx.srv_peer_trusted);
  fx_done(&fx);
  /* A leaf of another CA: presented, not trusted. */
  assert_int_equal(
    tls_client_ctx_derive_cert(&withc, base, oth, strlen(oth), othk, strlen(othk), &why), 0);
  run_mtls(&fx, withc);
  assert_true(fx.srv_peer);
  assert_false(fx.srv_peer_trusted);
  fx_done(&fx);
  /* No certificate. */
  run_mtls(&fx, NULL);
  assert_false(fx.srv_peer);
  fx_done(&fx);

  tls_client_ctx_free(base);
  char *all[] = {ec, eck, rsa, rsak, oth, othk, cak};
  for (size_t i = 0; i < ARRAY_SIZE(all); i++)
    free(all[i]);
}

static void test_system_bundle(void **state)
{
  (void)state;
  FILE *f = fopen(TLS_DEFAULT_CA_BUNDLE, "r");
  if (f == NULL)
    skip();
  fclose(f);
  tls_client_ctx_t *c = NULL;
  assert_int_equal(tls_client_ctx_new(&c, NULL, path_of("ca.pem")), 0);
  assert_true(tls_client_ctx_anchor_count(c) > 50);
  tls_client_ctx_free(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ctx_errors),
    cmocka_unit_test(test_system_bundle),
    cmocka_unit_test(test_echo_ecdsa),
    cmocka_unit_test(test_echo_rsa),
    cmocka_unit_test(test_large_payload),
    cmocka_unit_test(test_paused_reader),
    cmocka_unit_test(test_pipelined_backpressure),
    cmocka_unit_test(test_resumption),
    cmocka_unit_test(test_forget_sessions),
    cmocka_unit_test(test_untrusted),
    cmocka_unit_test(test_hostname),
    cmocka_unit_test(test_expired),
    cmocka_unit_test(test_ip_san_v4),
    cmocka_unit_test(test_ip_san_v6),
    cmocka_unit_test(test_ip_chain_still_validated),
    cmocka_unit_test(test_ip_san_decoder),
    cmocka_unit_test(test_not_tls),
    cmocka_unit_test(test_close_notify_is_eof),
    cmocka_unit_test(test_truncation),
    cmocka_unit_test(test_protocol_error),
    cmocka_unit_test(test_inner_read_start_fails),
    cmocka_unit_test(test_inner_write_fails),
    cmocka_unit_test(test_close_before_handshake),
    cmocka_unit_test(test_derived_ctx),
    cmocka_unit_test(test_client_cert),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
