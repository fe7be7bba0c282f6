/* bare_server_bench: the baseline for HTTP server benchmarks - a minimal
 * keep-alive HTTP server on bare libuv, with no HTTP parser at all. Every
 * "\r\n\r\n" it reads ends a request and is answered with one fixed
 * 200 response (the same bytes bench/http_server_bench.c sends), so wrk
 * against this measures the loop, the syscalls and the kernel: what any
 * server on this machine can reach at best.
 *
 * Usage: bare_server_bench [--port N] [--port-file F]
 * Listens on 127.0.0.1 (port 0 = ephemeral by default), writes the bound
 * port to F, runs until SIGTERM/SIGINT. Not for production: requests with
 * bodies are not understood. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BODY "{\"ok\":true,\"token\":\"bench\"}"
static const char response[] =
  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
  "27\r\n\r\n" BODY;

typedef struct {
  uv_tcp_t tcp;
  int match; /* how much of "\r\n\r\n" ended the previous read */
} bconn_t;

typedef struct {
  uv_write_t req;
  uv_buf_t bufs[];
} bwrite_t;

static uv_loop_t *loop;
static uv_tcp_t listener;
static uv_signal_t sigterm, sigint;
static char rbuf[65536];
static unsigned long long served;

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
  (void)h;
  (void)sz;
  *b = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_closed(uv_handle_t *h)
{
  free(h->data);
}

static void on_written(uv_write_t *req, int status)
{
  (void)status;
  free(req);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  bconn_t *c = s->data;
  if (n < 0) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  static const char end[] = "\r\n\r\n";
  unsigned count = 0;
  for (ssize_t i = 0; i < n; i++) {
    char ch = buf->base[i];
    if (ch == end[c->match])
      c->match++;
    else
      c->match = ch == '\r' ? 1 : 0;
    if (c->match == 4) {
      count++;
      c->match = 0;
    }
  }
  while (count > 0) {
    unsigned k = count > 64 ? 64 : count;
    bwrite_t *w = malloc(sizeof(*w) + k * sizeof(uv_buf_t));
    for (unsigned i = 0; i < k; i++)
      w->bufs[i] = uv_buf_init((char *)response, sizeof(response) - 1);
    if (uv_write(&w->req, s, w->bufs, k, on_written) != 0) {
      free(w);
      uv_close((uv_handle_t *)s, on_closed);
      return;
    }
    served += k;
    count -= k;
  }
}

static void on_connection(uv_stream_t *server, int status)
{
  if (status < 0)
    return;
  bconn_t *c = calloc(1, sizeof(*c));
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t *h, int sig)
{
  (void)h;
  (void)sig;
  uv_stop(loop);
}

int main(int argc, char **argv)
{
  int port = 0;
  const char *port_file = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
      port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
      port_file = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--port N] [--port-file F]\n", argv[0]);
      return 2;
    }
  }
  loop = uv_default_loop();
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", port, &a);
  uv_tcp_init(loop, &listener);
  int r = uv_tcp_bind(&listener, (struct sockaddr *)&a, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&listener, 511, on_connection);
  if (r != 0) {
    fprintf(stderr, "listen: %s\n", uv_strerror(r));
    return 1;
  }
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  uv_tcp_getsockname(&listener, (struct sockaddr *)&ss, &len);
  port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (port_file != NULL) {
    FILE *f = fopen(port_file, "w");
    if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0) {
      fprintf(stderr, "cannot write %s\n", port_file);
      return 1;
    }
  }
  printf("bare_server_bench listening on 127.0.0.1:%d\n", port);
  fflush(stdout);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);
  printf("served %llu responses\n", served);
  return 0;
}
