/*
 * tls_bench.c - client CPU cost of the TLS layer (src/net/tls_*.c).
 *
 * A TLS server (tests' usual kind: tls_server_wrap over stream_tcp) runs in a
 * forked child process, so getrusage(RUSAGE_SELF) in the parent measures the
 * client side only. Certificates are generated with the openssl CLI in a
 * temporary directory: a P-256 CA, an ECDSA (P-256) leaf and an RSA-2048
 * leaf. Figures (µs of client CPU, user+system, per operation):
 *   (a) a round trip on a kept-alive connection: 600 bytes up, 400 down;
 *   (b) a connection with a resumed handshake (TCP connect + TLS + close);
 *   (c) a connection with a full handshake, ECDSA chain and RSA chain;
 *   and, for reference, a plain TCP connect + close.
 * Prints figures; asserts nothing about time.
 *
 * Usage: tls_bench [scale [phases]]   scale multiplies the iteration counts
 * (default 1); phases picks some of "abcr" (default all), e.g. for perf.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/mem.h"
#include "net/tls.h"

#define REQ_BYTES 600
#define RESP_BYTES 400

static char g_dir[256];

static void sh(const char *cmd)
{
  char full[1024];
  snprintf(full, sizeof full, "cd '%s' && %s >/dev/null 2>&1", g_dir, cmd);
  if (system(full) != 0) {
    fprintf(stderr, "tls_bench: command failed: %s\n", cmd);
    exit(1);
  }
}

static const char *path_of(const char *name)
{
  static char bufs[4][400];
  static int next;
  char *p = bufs[next++ % 4];
  snprintf(p, sizeof bufs[0], "%s/%s", g_dir, name);
  return p;
}

static void make_certs(void)
{
  snprintf(g_dir, sizeof g_dir, "/tmp/tls_bench-XXXXXX");
  if (mkdtemp(g_dir) == NULL) {
    perror("mkdtemp");
    exit(1);
  }
  FILE *f = fopen(path_of("openssl.cnf"), "w");
  fputs("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n"
        "[ca_ext]\nbasicConstraints = critical,CA:TRUE\n"
        "keyUsage = critical,keyCertSign,cRLSign\n"
        "[leaf_ext]\nbasicConstraints = CA:FALSE\n"
        "keyUsage = critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost\n",
        f);
  fclose(f);
  sh("openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
     " -keyout ca.key -out ca.pem -days 30 -subj /CN=bench-ca -config openssl.cnf"
     " -extensions ca_ext");
  sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
     " -keyout ec.key -out ec.csr -subj /CN=localhost -config openssl.cnf");
  sh("openssl x509 -req -in ec.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
     " -out ec.pem -days 30 -extfile openssl.cnf -extensions leaf_ext");
  sh("openssl req -new -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.csr"
     " -subj /CN=localhost -config openssl.cnf");
  sh("openssl x509 -req -in rsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
     " -out rsa.pem -days 30 -extfile openssl.cnf -extensions leaf_ext");
}

/* ---- the server (child process) ------------------------------------------ */

typedef struct {
  uv_tcp_t tcp;
  tls_server_ctx_t *ctx;
} srv_listener_t;

typedef struct {
  size_t in; /* request bytes not yet answered */
} srv_conn_t;

static char g_resp[RESP_BYTES];

static void srv_closed(stream_t *s)
{
  free(s->data);
}

static void srv_read(stream_t *s, ssize_t n, const char *data)
{
  srv_conn_t *sc = s->data;
  (void)data;
  if (n < 0) {
    stream_close(s, srv_closed);
    return;
  }
  sc->in += (size_t)n;
  while (sc->in >= REQ_BYTES) {
    sc->in -= REQ_BYTES;
    uv_buf_t b = uv_buf_init(g_resp, RESP_BYTES);
    if (stream_write(s, &b, 1, NULL, NULL) < 0)
      break;
  }
}

static void srv_accept(uv_stream_t *l, int status)
{
  srv_listener_t *sl = l->data;
  if (status < 0)
    return;
  stream_t *tcp = stream_tcp_new(l->loop);
  if (uv_accept(l, (uv_stream_t *)stream_tcp_handle(tcp)) < 0) {
    stream_close(tcp, NULL);
    return;
  }
  uv_tcp_nodelay(stream_tcp_handle(tcp), 1);
  stream_t *s = tls_server_wrap(sl->ctx, tcp);
  s->data = xcalloc(1, sizeof(srv_conn_t));
  stream_read_start(s, srv_read);
}

static int srv_listen(uv_loop_t *loop, srv_listener_t *sl, const char *chain, const char *key)
{
  if (tls_server_ctx_new(&sl->ctx, path_of(chain), path_of(key)) < 0)
    exit(2);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(loop, &sl->tcp);
  sl->tcp.data = sl;
  if (uv_tcp_bind(&sl->tcp, (struct sockaddr *)&a, 0) < 0 ||
      uv_listen((uv_stream_t *)&sl->tcp, 128, srv_accept) < 0)
    exit(2);
  int len = sizeof a;
  uv_tcp_getsockname(&sl->tcp, (struct sockaddr *)&a, &len);
  return ntohs(a.sin_port);
}

static void run_server(int fd)
{
  uv_loop_t loop;
  srv_listener_t ec, rsa;
  uv_loop_init(&loop);
  memset(g_resp, 'r', sizeof g_resp);
  int ports[2] = {srv_listen(&loop, &ec, "ec.pem", "ec.key"),
                  srv_listen(&loop, &rsa, "rsa.pem", "rsa.key")};
  if (write(fd, ports, sizeof ports) != (ssize_t)sizeof ports)
    exit(2);
  close(fd);
  uv_run(&loop, UV_RUN_DEFAULT);
  exit(0);
}

/* ---- the client (parent process) ----------------------------------------- */

enum mode { RTT, HANDSHAKE, TCP_ONLY };

typedef struct {
  uv_loop_t *loop;
  tls_client_ctx_t *ctx;
  struct sockaddr_in addr;
  enum mode mode;
  int forget; /* full handshakes: forget sessions before each */
  long left;  /* operations still to do */
  size_t got;
  int err;
  char req[REQ_BYTES];
} cli_t;

static void cli_next(cli_t *c);

static void cli_closed(stream_t *s)
{
  cli_t *c = s->data;
  if (c->mode != RTT && c->left > 0 && c->err == 0)
    cli_next(c);
}

static void cli_send(cli_t *c, stream_t *s)
{
  uv_buf_t b = uv_buf_init(c->req, REQ_BYTES);
  int r = stream_write(s, &b, 1, NULL, NULL);
  if (r < 0) {
    c->err = r;
    stream_close(s, cli_closed);
  }
}

static void cli_read(stream_t *s, ssize_t n, const char *data)
{
  cli_t *c = s->data;
  (void)data;
  if (n < 0) {
    c->err = (int)n;
    stream_close(s, cli_closed);
    return;
  }
  c->got += (size_t)n;
  if (c->got < RESP_BYTES)
    return;
  c->got -= RESP_BYTES;
  if (--c->left > 0)
    cli_send(c, s);
  else
    stream_close(s, cli_closed);
}

static void cli_hs(stream_t *s, int status, void *arg)
{
  cli_t *c = arg;
  if (status < 0) {
    c->err = status;
    stream_close(s, cli_closed);
    return;
  }
  if (c->mode == HANDSHAKE) {
    c->left--;
    stream_close(s, cli_closed);
    return;
  }
  stream_read_start(s, cli_read);
  cli_send(c, s);
}

static void cli_connected(stream_t *tcp, int status, void *arg)
{
  cli_t *c = arg;
  if (status < 0) {
    c->err = status;
    stream_close(tcp, NULL);
    return;
  }
  uv_tcp_nodelay(stream_tcp_handle(tcp), 1);
  if (c->mode == TCP_ONLY) {
    c->left--;
    tcp->data = c;
    stream_close(tcp, cli_closed);
    return;
  }
  stream_t *s = tls_client_wrap(c->ctx, tcp, "localhost", ntohs(c->addr.sin_port), cli_hs, c);
  s->data = c;
}

static void cli_next(cli_t *c)
{
  if (c->forget)
    tls_client_ctx_forget_sessions(c->ctx);
  stream_t *tcp = stream_tcp_new(c->loop);
  int r = stream_tcp_connect(tcp, (struct sockaddr *)&c->addr, cli_connected, c);
  if (r < 0) {
    c->err = r;
    stream_close(tcp, NULL);
  }
}

static double cpu_us(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double wall_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void measure(const char *label, uv_loop_t *loop, tls_client_ctx_t *ctx, int port,
                    enum mode mode, int forget, long n)
{
  cli_t c;
  memset(&c, 0, sizeof c);
  c.loop = loop;
  c.ctx = ctx;
  c.mode = mode;
  c.forget = forget;
  c.left = n;
  memset(c.req, 'q', sizeof c.req);
  uv_ip4_addr("127.0.0.1", port, &c.addr);
  double cpu0 = cpu_us(), wall0 = wall_us();
  cli_next(&c);
  uv_run(loop, UV_RUN_DEFAULT);
  double cpu = cpu_us() - cpu0, wall = wall_us() - wall0;
  if (c.err != 0) {
    fprintf(stderr, "tls_bench: %s failed: %s\n", label, err_name(c.err));
    return;
  }
  printf("%-44s %8ld ops  client CPU %9.1f us/op  wall %9.1f us/op\n", label, n, cpu / (double)n,
         wall / (double)n);
}

int main(int argc, char **argv)
{
  long scale = argc > 1 ? atol(argv[1]) : 1;
  if (scale < 1)
    scale = 1;
  const char *phases = argc > 2 ? argv[2] : "abcr";
  mem_install_uv();
  make_certs();

  int fds[2];
  if (pipe(fds) < 0)
    return 1;
  pid_t pid = fork();
  if (pid < 0)
    return 1;
  if (pid == 0) {
    close(fds[0]);
    run_server(fds[1]);
  }
  close(fds[1]);
  int ports[2];
  if (read(fds[0], ports, sizeof ports) != (ssize_t)sizeof ports) {
    fprintf(stderr, "tls_bench: server did not start\n");
    return 1;
  }
  close(fds[0]);

  uv_loop_t loop;
  uv_loop_init(&loop);
  tls_client_ctx_t *ctx = NULL;
  if (tls_client_ctx_new(&ctx, path_of("ca.pem"), NULL) < 0)
    return 1;

  printf("tls_bench: TLS 1.2, client CPU only (server in child pid %d)\n", (int)pid);
  /* Warm up: first handshake caches the session used by (a) and (b). */
  measure("warm-up (full handshake, ECDSA)", &loop, ctx, ports[0], HANDSHAKE, 0, 1);
  if (strchr(phases, 'a'))
    measure("(a) kept-alive round trip 600 B up/400 B down", &loop, ctx, ports[0], RTT, 0,
            20000 * scale);
  if (strchr(phases, 'b'))
    measure("(b) resumed handshake (+TCP connect/close)", &loop, ctx, ports[0], HANDSHAKE, 0,
            2000 * scale);
  if (strchr(phases, 'c')) {
    measure("(c) full handshake ECDSA P-256 (+TCP)", &loop, ctx, ports[0], HANDSHAKE, 1,
            200 * scale);
    measure("(c) full handshake RSA-2048 (+TCP)", &loop, ctx, ports[1], HANDSHAKE, 1, 200 * scale);
  }
  if (strchr(phases, 'r'))
    measure("(ref) plain TCP connect + close", &loop, ctx, ports[0], TCP_ONLY, 0, 2000 * scale);
  const tls_stats_t *st = tls_client_ctx_stats(ctx);
  printf("client handshakes: full %llu, resumed %llu, failed %llu\n", (unsigned long long)st->full,
         (unsigned long long)st->resumed, (unsigned long long)st->failed);

  tls_client_ctx_free(ctx);
  uv_loop_close(&loop);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0)
    return 1;
  return 0;
}
