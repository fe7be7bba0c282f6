/* http_server_bench: a tiny server on src/net/http_server answering every
 * request with the fixed JSON body that bench/bare_server_bench.c sends, to
 * compare the HTTP layer's cost (llhttp, request arena, ordering queue,
 * timers) against the bare-libuv baseline under wrk.
 *
 * Usage: http_server_bench [--port N] [--port-file F]
 * Listens on 127.0.0.1 (port 0 = ephemeral by default), writes the bound
 * port to F, runs until SIGTERM/SIGINT, then closes the server gracefully
 * and prints how many responses it sent. Asserts nothing about time. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "net/http_server.h"

static const char body[] = "{\"ok\":true,\"token\":\"bench\"}";

static uv_loop_t *loop;
static http_server_t *srv;
static uv_signal_t sigterm, sigint;
static unsigned long long served;

static void handler(http_req_t *req, void *arg)
{
  (void)arg;
  served++;
  http_respond(req, 200, "application/json", body, sizeof(body) - 1);
}

static void on_server_closed(void *arg)
{
  (void)arg;
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_close((uv_handle_t *)&sigint, NULL);
}

static void on_signal(uv_signal_t *h, int sig)
{
  (void)h;
  (void)sig;
  if (srv != NULL)
    http_server_close(srv, 1000, on_server_closed, NULL);
  srv = NULL;
}

int main(int argc, char **argv)
{
  unsigned port = 0;
  const char *port_file = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
      port = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
      port_file = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--port N] [--port-file F]\n", argv[0]);
      return 2;
    }
  }
  loop = uv_default_loop();
  http_server_opts_t o = {0};
  o.host = "127.0.0.1";
  o.port = port;
  o.handler = handler;
  int r = http_server_start(loop, &o, &srv);
  if (r != 0) {
    fprintf(stderr, "http_server_start: %s\n", uv_strerror(r));
    return 1;
  }
  port = http_server_port(srv);
  if (port_file != NULL) {
    FILE *f = fopen(port_file, "w");
    if (f == NULL || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0) {
      fprintf(stderr, "cannot write %s\n", port_file);
      return 1;
    }
  }
  printf("http_server_bench listening on 127.0.0.1:%u\n", port);
  fflush(stdout);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);
  printf("served %llu responses\n", served);
  return uv_loop_close(loop) == 0 ? 0 : 1;
}
