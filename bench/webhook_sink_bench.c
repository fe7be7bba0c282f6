/* webhook_sink_bench: the receiver of bench/webhook_bench.py - a keep-alive
 * HTTP/1.1 server on bare libuv that parses requests with llhttp (bodies
 * included) and answers each with an empty status line response, as a
 * fast webhook receiver would. It verifies nothing (the integration test
 * checks signatures); it counts.
 *
 * Usage: webhook_sink_bench [--port-file F] [--gone-first K]
 * Listens on 127.0.0.1 on an ephemeral port and writes it to F. The first
 * K requests are answered 410 Gone (so that grantd disables the endpoint
 * and events pile up in its outbox), every later one 204. Runs until
 * SIGTERM/SIGINT, then prints "requests N gone G" on stdout. SIGUSR1
 * prints the same line at once. */
#include <arpa/inet.h>
#include <llhttp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char ok_resp[] = "HTTP/1.1 204 No Content\r\n\r\n";
static const char gone_resp[] = "HTTP/1.1 410 Gone\r\nContent-Length: 0\r\n\r\n";

typedef struct {
  uv_tcp_t tcp;
  llhttp_t parser;
  unsigned done; /* requests completed by the last llhttp_execute */
} sconn_t;

static uv_loop_t *loop;
static uv_tcp_t listener;
static uv_signal_t sigterm, sigint, sigusr1;
static llhttp_settings_t settings;
static char rbuf[65536];
static unsigned long long requests, gone, gone_first;

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

static int on_message_complete(llhttp_t *p)
{
  ((sconn_t *)p->data)->done++;
  return 0;
}

static int answer(sconn_t *c, const char *resp, size_t len)
{
  uv_buf_t b = uv_buf_init((char *)resp, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == (int)len)
    return 0;
  if (n > 0)
    b = uv_buf_init((char *)resp + n, (unsigned)(len - (size_t)n));
  uv_write_t *w = malloc(sizeof(*w));
  if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
    free(w);
    return -1;
  }
  return 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  sconn_t *c = s->data;
  if (n < 0) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  c->done = 0;
  llhttp_errno_t e = llhttp_execute(&c->parser, buf->base, (size_t)n);
  for (; c->done > 0; c->done--) {
    requests++;
    int rc;
    if (gone < gone_first) {
      gone++;
      rc = answer(c, gone_resp, sizeof(gone_resp) - 1);
    } else {
      rc = answer(c, ok_resp, sizeof(ok_resp) - 1);
    }
    if (rc != 0) {
      uv_close((uv_handle_t *)s, on_closed);
      return;
    }
  }
  if (e != HPE_OK)
    uv_close((uv_handle_t *)s, on_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
  if (status < 0)
    return;
  sconn_t *c = calloc(1, sizeof(*c));
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void print_counts(void)
{
  printf("requests %llu gone %llu\n", requests, gone);
  fflush(stdout);
}

static void on_signal(uv_signal_t *h, int sig)
{
  (void)h;
  if (sig == SIGUSR1) {
    print_counts();
    return;
  }
  uv_stop(loop);
}

int main(int argc, char **argv)
{
  const char *port_file = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
      port_file = argv[++i];
    else if (strcmp(argv[i], "--gone-first") == 0 && i + 1 < argc)
      gone_first = strtoull(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: %s [--port-file F] [--gone-first K]\n", argv[0]);
      return 2;
    }
  }
  llhttp_settings_init(&settings);
  settings.on_message_complete = on_message_complete;
  loop = uv_default_loop();
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
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
  int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (port_file != NULL) {
    FILE *f = fopen(port_file, "w");
    if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0) {
      fprintf(stderr, "cannot write %s\n", port_file);
      return 1;
    }
  }
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_init(loop, &sigusr1);
  uv_signal_start(&sigusr1, on_signal, SIGUSR1);
  uv_run(loop, UV_RUN_DEFAULT);
  print_counts();
  return 0;
}
