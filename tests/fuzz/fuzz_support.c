/*
 * fuzz_support.c - see fuzz_support.h.
 */
#include "fuzz_support.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include "base/rand.h"
#include "base/log.h"
#include "net/addr_policy.h"
#include "net/http_client.h"
#include "service/svc.h"
#include "store/seal.h"
#include "store/store.h"

/* ---- no network ---- */

int uv_getaddrinfo(uv_loop_t *loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb cb, const char *node,
                   const char *service, const struct addrinfo *hints)
{
  (void)loop;
  (void)req;
  (void)cb;
  (void)node;
  (void)service;
  (void)hints;
  return UV_EAI_NONAME;
}

static unsigned peer_port;

int uv_tcp_connect(uv_connect_t *req, uv_tcp_t *handle, const struct sockaddr *addr,
                   uv_connect_cb cb)
{
  const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
  if (peer_port != 0 && addr->sa_family == AF_INET && ntohs(in->sin_port) == peer_port &&
      ntohl(in->sin_addr.s_addr) == INADDR_LOOPBACK) {
    typedef int (*connect_fn)(uv_connect_t *, uv_tcp_t *, const struct sockaddr *, uv_connect_cb);
    static connect_fn real;
    if (real == NULL)
      real = (connect_fn)dlsym(RTLD_NEXT, "uv_tcp_connect");
    return real(req, handle, addr, cb);
  }
  return UV_ECONNREFUSED;
}

/* ---- loopback peer ---- */

typedef struct {
  uv_tcp_t tcp;
  uv_write_t wr;
  uv_shutdown_t sh;
  buf_t in;
  int answered;
} peer_conn_t;

static uv_tcp_t peer_listener;
static const char *const *peer_answers;
static const size_t *peer_lens;
static size_t peer_n;
static unsigned peer_count;

static void peer_closed(uv_handle_t *h)
{
  peer_conn_t *c = h->data;
  buf_free(&c->in);
  free(c);
}

static void peer_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
  (void)h;
  (void)hint;
  static char space[65536];
  *b = uv_buf_init(space, sizeof space);
}

static void peer_shut(uv_shutdown_t *r, int status)
{
  (void)status;
  uv_close((uv_handle_t *)r->handle, peer_closed);
}

static void peer_written(uv_write_t *w, int status)
{
  peer_conn_t *c = w->data;
  if (status != 0 || uv_shutdown(&c->sh, (uv_stream_t *)&c->tcp, peer_shut) != 0)
    uv_close((uv_handle_t *)&c->tcp, peer_closed);
}

/* A request is complete when its head is, plus Content-Length bytes. */
static int peer_complete(const buf_t *in)
{
  const char *eoh = in->len ? memmem(in->data, in->len, "\r\n\r\n", 4) : NULL;
  if (eoh == NULL)
    return 0;
  size_t head = (size_t)(eoh + 4 - in->data), body = 0;
  const char *cl = memmem(in->data, head, "Content-Length: ", 16);
  if (cl != NULL)
    body = (size_t)strtoull(cl + 16, NULL, 10);
  return in->len >= head + body;
}

static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
  peer_conn_t *c = s->data;
  if (n < 0) {
    uv_close((uv_handle_t *)s, peer_closed);
    return;
  }
  if (c->answered)
    return;
  buf_append(&c->in, b->base, (size_t)n);
  if (!peer_complete(&c->in))
    return;
  c->answered = 1;
  size_t i = peer_count < peer_n ? peer_count : peer_n - 1;
  peer_count++;
  uv_buf_t out =
    uv_buf_init((char *)(peer_n ? peer_answers[i] : ""), (unsigned)(peer_n ? peer_lens[i] : 0));
  c->wr.data = c;
  if (out.len == 0 || uv_write(&c->wr, s, &out, 1, peer_written) != 0)
    uv_close((uv_handle_t *)s, peer_closed);
}

static void peer_accept(uv_stream_t *l, int status)
{
  if (status != 0)
    return;
  peer_conn_t *c = calloc(1, sizeof *c);
  uv_tcp_init(l->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, peer_alloc, peer_read) != 0)
    uv_close((uv_handle_t *)&c->tcp, peer_closed);
}

unsigned fuzz_peer_start(uv_loop_t *loop)
{
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  if (uv_tcp_init(loop, &peer_listener) != 0 ||
      uv_tcp_bind(&peer_listener, (const struct sockaddr *)&a, 0) != 0 ||
      uv_listen((uv_stream_t *)&peer_listener, 64, peer_accept) != 0)
    abort();
  struct sockaddr_in b;
  int len = sizeof b;
  uv_tcp_getsockname(&peer_listener, (struct sockaddr *)&b, &len);
  peer_port = ntohs(b.sin_port);
  return peer_port;
}

void fuzz_peer_answers(const char *const *answers, const size_t *lens, size_t n)
{
  peer_answers = answers;
  peer_lens = lens;
  peer_n = n;
  peer_count = 0;
}

unsigned fuzz_peer_requests(void)
{
  return peer_count;
}

/* ---- randomness ---- */

static int rand_fixed;
static uint64_t rand_state;

void fuzz_rand_fixed(int on, uint64_t seed)
{
  rand_fixed = on;
  rand_state = seed;
  rand_nonce_flush(); /* buffered nonces would not repeat */
}

ssize_t getrandom(void *buf, size_t n, unsigned flags)
{
  if (!rand_fixed)
    return syscall(SYS_getrandom, buf, n, flags);
  unsigned char *p = buf;
  for (size_t i = 0; i < n; i++) {
    /* splitmix64: any fixed stream will do, it only has to repeat. */
    uint64_t z = (rand_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    p[i] = (unsigned char)(z ^ (z >> 31));
  }
  return (ssize_t)n;
}

/* ---- log capture ---- */

static int log_fd = -1;

void fuzz_log_capture(void)
{
  if (log_fd >= 0)
    return;
  log_fd = memfd_create("grantd-fuzz-log", 0);
  if (log_fd < 0) {
    perror("memfd_create");
    abort();
  }
  log_set_fd(log_fd);
  log_init(LOGL_DEBUG);
}

void fuzz_log_take(buf_t *out)
{
  if (log_fd < 0)
    return;
  off_t end = lseek(log_fd, 0, SEEK_CUR);
  if (end > 0) {
    size_t at = out->len;
    buf_reserve(out, (size_t)end);
    ssize_t r = pread(log_fd, out->data + at, (size_t)end, 0);
    if (r > 0)
      out->len = at + (size_t)r;
  }
  if (ftruncate(log_fd, 0) != 0 || lseek(log_fd, 0, SEEK_SET) != 0)
    abort();
}

/* ---- misc ---- */

static char tmp_path[512];

static void tmp_remove(void)
{
  if (tmp_path[0] == '\0')
    return;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_path);
  if (system(cmd) != 0)
    fprintf(stderr, "fuzz: could not remove %s\n", tmp_path);
}

const char *fuzz_tmpdir(void)
{
  const char *base = getenv("GRANTD_FUZZ_TMP");
  if (base == NULL || *base == '\0')
    base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(tmp_path, sizeof tmp_path, "%s/grantd-fuzz-XXXXXX", base);
  if (mkdtemp(tmp_path) == NULL) {
    perror("mkdtemp");
    abort();
  }
  atexit(tmp_remove);
  return tmp_path;
}

int fuzz_contains(const void *hay, size_t hn, const void *needle, size_t n)
{
  return n > 0 && hn >= n && memmem(hay, hn, needle, n) != NULL;
}

void fuzz__check(int ok, const char *what, const char *file, int line)
{
  if (ok)
    return;
  fprintf(stderr, "%s:%d: property failed: %s\n", file, line, what);
  abort();
}

/* ---- a service ---- */

seal_keyring_t *fuzz_keyring(uint8_t fill)
{
  seal_keyring_t *kr = seal_keyring_new();
  uint8_t key[SEAL_KEY_LEN];
  memset(key, fill, sizeof key);
  if (seal_keyring_add(kr, 1, key) != 0 || seal_keyring_set_current(kr, 1) != 0)
    abort();
  return kr;
}

void fuzz_svc_open(fuzz_svc_t *f)
{
  memset(f, 0, sizeof *f);
  if (uv_loop_init(&f->loop) != 0)
    abort();
  f->kr = fuzz_keyring(0x42);
  store_opts_t so = {
    .loop = &f->loop, .path = fuzz_tmpdir(), .map_size = 256u << 20, .keyring = f->kr};
  if (store_open(&f->store, &so) != 0)
    abort();
  /* The endpoint policy refuses loopback by default: allow exactly the
   * address the peer listens on (as --allow-endpoint-cidr would). */
  char perr[128];
  f->policy = addr_policy_new();
  if (addr_policy_add_cidrs(f->policy, "127.0.0.1/32", perr, sizeof perr) != 0)
    abort();
  http_client_opts_t co = {
    .allow_insecure_http = 1, .response_timeout_ms = 2000, .endpoint_policy = f->policy};
  f->http = http_client_new(&f->loop, &co);
  svc_opts_t vo = {.loop = &f->loop,
                   .store = f->store,
                   .http = f->http,
                   .public_url = "http://127.0.0.1:8484",
                   .request_timeout_ms = 2000,
                   .state_ttl_ms = 30LL * 86400 * 1000,
                   .max_inflight = 8,
                   .max_inflight_per_host = 4,
                   .ramp_per_s = 100,
                   .batch_per_tick = 8};
  if (svc_open(&f->svc, &vo) != 0)
    abort();
}

void fuzz_run_until(fuzz_svc_t *f, const int *flag)
{
  while (!*flag)
    uv_run(&f->loop, UV_RUN_ONCE);
}
