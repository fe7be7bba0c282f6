/*
 * cmd_healthcheck.c - `grantd healthcheck`: GET /healthz on the configured
 * listen address, for container HEALTHCHECKs (the image has no curl).
 * A short-lived blocking client with a 5 s send/receive timeout.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "app/admin.h"

#define HEALTH_TIMEOUT_S 5

/* The port: --listen's, or with port 0 the one in --port-file. */
static int target_port(const config_t *cfg)
{
  if (cfg->listen_port != 0 || cfg->port_file == NULL)
    return cfg->listen_port;
  FILE *f = fopen(cfg->port_file, "r");
  int port = 0;
  if (f != NULL) {
    if (fscanf(f, "%d", &port) != 1)
      port = 0;
    fclose(f);
  }
  return port;
}

int cmd_healthcheck(admin_t *a)
{
  const char *host = a->cfg.listen_host;
  if (!strcmp(host, "0.0.0.0"))
    host = "127.0.0.1";
  else if (!strcmp(host, "::"))
    host = "::1";
  int port = target_port(&a->cfg);
  if (port <= 0)
    return admin_fail(2, "healthcheck: no port to ask (--listen has port 0 and no --port-file)");
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%d", port);
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  int grc = getaddrinfo(host, portstr, &hints, &res);
  if (grc != 0)
    return admin_fail(1, "healthcheck: cannot resolve %s: %s", host, gai_strerror(grc));
  int fd = -1, err = 0;
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    struct timeval tv = {HEALTH_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* bounds connect too */
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
      break;
    err = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  bool v6 = strchr(host, ':') != NULL;
  if (fd < 0)
    return admin_fail(1, "healthcheck: cannot connect to %s%s%s:%d: %s", v6 ? "[" : "", host,
                      v6 ? "]" : "", port, strerror(err));
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET /healthz HTTP/1.1\r\nHost: %s%s%s:%d\r\nConnection: close\r\n\r\n",
                   v6 ? "[" : "", host, v6 ? "]" : "", port);
  char resp[256];
  size_t got = 0;
  if (send(fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
    ssize_t r;
    while (got < sizeof resp - 1 && (r = recv(fd, resp + got, sizeof resp - 1 - got, 0)) > 0)
      got += (size_t)r;
  }
  close(fd);
  resp[got] = '\0';
  int status = 0;
  if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
    return admin_fail(1, "healthcheck: no HTTP answer from port %d", port);
  if (status != 200)
    return admin_fail(1, "healthcheck: /healthz answered %d (starting or draining)", status);
  printf("healthy\n");
  return 0;
}
