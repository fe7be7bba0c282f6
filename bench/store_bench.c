/*
 * store_bench.c - figures for the LMDB store (prints, never asserts):
 *
 *   - durable puts/s with group commit, the caller keeping 1, 100 or 1000
 *     writes in flight (each round queues a batch in one loop turn and waits
 *     for its callbacks, so every commit is one synced LMDB txn);
 *   - gets/s (read txn renew + overlay check + msgpack decode + unsealing
 *     two tokens) and scheduling-view scan rate (the start-up path);
 *   - bytes per connection: the encoded value, and data.mdb size / records
 *     after inserting N records.
 *
 * Records are realistic connections: 200-byte access token and 100-byte
 * refresh token (both sealed), tenant, provider, scopes, times.
 *
 * Usage: store_bench [records (default 100000)] [dir (default: a new
 * directory under $TMPDIR or /tmp, removed afterwards)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/mem.h"
#include "store/store.h"

static uv_loop_t loop;
static store_t *st;
static seal_keyring_t *kr;
static char dir[512];
static long done_ops, failed_ops;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_done(void *arg, int status)
{
  (void)arg;
  done_ops++;
  if (status != 0)
    failed_ops++;
}

static void make_conn(conn_t *c, long i)
{
  static char at[201], rt[101];
  if (at[0] == 0) {
    for (int k = 0; k < 200; k++)
      at[k] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[k % 64];
    for (int k = 0; k < 100; k++)
      rt[k] = "abcdefghijklmnopqrstuvwxyz"[k % 26];
  }
  char id[32], tenant[32];
  snprintf(id, sizeof(id), "conn-%08ld", i);
  snprintf(tenant, sizeof(tenant), "tenant-%04ld", i % 1000);
  memset(c, 0, sizeof(*c));
  c->id = xstrdup(id);
  c->tenant = xstrdup(tenant);
  c->provider = xstrdup("google");
  c->grant = GRANT_AUTHORIZATION_CODE;
  c->status = CONN_ACTIVE;
  strlist_push(&c->scopes, "openid");
  strlist_push(&c->scopes, "email");
  c->access_token = xstrdup(at);
  c->refresh_token = xstrdup(rt);
  c->token_type = xstrdup("Bearer");
  c->expires_at = 1767225600000 + i;
  c->next_refresh_at = 1767225000000 + i;
  c->refreshed_at = c->created_at = c->updated_at = 1767222000000;
  c->revision = 1;
}

static void drain(void)
{
  while (store_pending(st) > 0)
    uv_run(&loop, UV_RUN_ONCE);
}

/* Inserts ids [from, from + n) in rounds of `batch` queued writes. */
static double put_rounds(long from, long n, long batch)
{
  double t0 = now_s();
  for (long i = 0; i < n; i += batch) {
    for (long j = i; j < i + batch && j < n; j++) {
      conn_t c;
      make_conn(&c, from + j);
      if (store_conn_put(st, &c, on_done, NULL) != 0)
        abort();
      conn_free(&c);
    }
    drain();
  }
  return now_s() - t0;
}

static int count_sched(void *arg, const conn_sched_t *c)
{
  (void)c;
  (*(long *)arg)++;
  return 0;
}

static int count_full(void *arg, const conn_t *c)
{
  (void)c;
  (*(long *)arg)++;
  return 0;
}

static void open_store(void)
{
  store_opts_t o = {.loop = &loop, .path = dir, .map_size = (size_t)4 << 30, .keyring = kr};
  if (store_open(&st, &o) != 0) {
    fprintf(stderr, "store_open failed\n");
    exit(1);
  }
}

static void closed(void *arg)
{
  *(int *)arg = 1;
}

static void close_store(void)
{
  int done = 0;
  store_close(st, closed, &done);
  while (!done)
    uv_run(&loop, UV_RUN_ONCE);
}

int main(int argc, char **argv)
{
  long records = argc > 1 ? atol(argv[1]) : 100000;
  int own_dir = argc <= 2;
  if (own_dir) {
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof(dir), "%s/store_bench-XXXXXX", tmp);
    if (mkdtemp(dir) == NULL) {
      perror("mkdtemp");
      return 1;
    }
  } else {
    snprintf(dir, sizeof(dir), "%s", argv[2]);
  }
  uv_loop_init(&loop);
  uint8_t key[SEAL_KEY_LEN];
  memset(key, 0x42, sizeof(key));
  kr = seal_keyring_new();
  seal_keyring_add(kr, 1, key);
  open_store();

  conn_t c;
  make_conn(&c, 0);
  buf_t v = BUF_INIT;
  conn_encode(&c, kr, &v);
  printf("store_bench: dir %s, records %ld\n", dir, records);
  printf("conn value bytes (200 B access + 100 B refresh token, sealed): %zu\n", v.len);
  printf("  key bytes: %zu; by_tenant index key bytes: %zu\n", strlen(c.id),
         strlen(c.tenant) + 1 + strlen(c.id));
  buf_free(&v);
  conn_free(&c);

  /* Durable puts at 1, 100, 1000 writes in flight. */
  const long batches[] = {1, 100, 1000};
  const long counts[] = {1000, 20000, 50000};
  long next_id = 10000000;
  for (int b = 0; b < 3; b++) {
    store_stats_t s0, s1;
    store_stats(st, &s0);
    double t = put_rounds(next_id, counts[b], batches[b]);
    next_id += counts[b];
    store_stats(st, &s1);
    uint64_t commits = s1.commits - s0.commits;
    printf("durable puts, batch %4ld: %8.0f puts/s  (%ld puts, %llu commits, "
           "avg commit %.2f ms, %.3f s)\n",
           batches[b], (double)counts[b] / t, counts[b], (unsigned long long)commits,
           commits ? (s1.commit_ms_total - s0.commit_ms_total) / (double)commits : 0.0, t);
  }

  /* Bulk insert for the size and read figures. */
  double t = put_rounds(0, records, 1000);
  printf("bulk insert %ld records (batch 1000): %.2f s, %.0f puts/s\n", records, t,
         (double)records / t);
  long total = records + counts[0] + counts[1] + counts[2];
  close_store(); /* flushes, so data.mdb has its final size */
  char path[600];
  snprintf(path, sizeof(path), "%s/data.mdb", dir);
  struct stat sb;
  if (stat(path, &sb) == 0) {
    printf("data.mdb: %lld bytes allocated on disk (%lld apparent), %ld records: "
           "%.0f bytes/connection (incl. by_tenant index)\n",
           (long long)sb.st_blocks * 512, (long long)sb.st_size, total,
           (double)sb.st_blocks * 512 / (double)total);
  }
  open_store();
  store_stats_t ss;
  store_stats(st, &ss);
  printf("pages in use: %zu bytes: %.0f bytes/connection\n", ss.used_bytes,
         (double)ss.used_bytes / (double)total);

  /* Gets: random existing ids, full decode with unsealing. */
  long gets = 200000, hits = 0;
  uint64_t x = 88172645463325252ull;
  t = now_s();
  for (long i = 0; i < gets; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    char id[32];
    snprintf(id, sizeof(id), "conn-%08ld", (long)(x % (uint64_t)records));
    conn_t g;
    if (store_conn_get(st, id, &g) == 0) {
      hits++;
      conn_free(&g);
    }
  }
  t = now_s() - t;
  printf("gets (decode + unseal 2 tokens): %.0f gets/s (%.2f us each, %ld/%ld found)\n",
         (double)gets / t, t / (double)gets * 1e6, hits, gets);

  long n = 0;
  t = now_s();
  store_conn_scan_sched(st, count_sched, NULL, &n);
  t = now_s() - t;
  printf("scheduling scan: %ld records in %.3f s (%.0f records/s; 1M would take ~%.2f s)\n", n, t,
         (double)n / t, t / (double)n * 1e6);
  n = 0;
  t = now_s();
  store_conn_scan(st, count_full, NULL, &n);
  t = now_s() - t;
  printf("full scan (with unsealing): %ld records in %.3f s (%.0f records/s)\n", n, t,
         (double)n / t);

  conn_t *page;
  size_t np;
  char *cur;
  t = now_s();
  for (int i = 0; i < 1000; i++) {
    store_conn_list(st, "tenant-0042", -1, NULL, 50, &page, &np, &cur);
    for (size_t j = 0; j < np; j++)
      conn_free(&page[j]);
    free(page);
    free(cur);
  }
  t = now_s() - t;
  printf("list by tenant (page of 50): %.0f pages/s\n", 1000 / t);

  close_store();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  seal_keyring_free(kr);
  if (failed_ops)
    printf("failed ops: %ld of %ld\n", failed_ops, done_ops);
  if (own_dir) {
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", dir);
  }
  return 0;
}
