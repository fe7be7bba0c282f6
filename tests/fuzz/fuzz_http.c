/*
 * fuzz_http.c - the inbound HTTP request path as a whole: bytes from a
 * client go through the real http_server connection code (llhttp
 * callbacks, header and body limits, pipelining, back-pressure) into the
 * real router (routing, method check, API-key auth, path and query
 * decoding, JSON bodies) and handlers, backed by a real service and store
 * (in a temporary directory; the network is stubbed out by
 * fuzz_support.c, so handlers that would call a provider fail fast).
 *
 * The client side is a fake stream_t (net/stream.h seam): input is handed
 * to the server in chunks (the chunk size derives from the input length),
 * writes are collected and completed from a later loop iteration, then the
 * client "hangs up" (EOF) once every request read has been answered (or
 * after 2 s, which detaches what is still pending).
 *
 * State persists across inputs (the store keeps what earlier inputs
 * created), like a long-running server. At start-up a provider "acme", an
 * imported connection "c1" and a pending authorization of "c2" exist; the
 * random stream is fixed during that set-up, so the state value is the same
 * in every run (see the callback corpus).
 *
 * Properties:
 * - the output is a sequence of well-formed responses (status line,
 *   Content-Length matching the body), none a 500, every JSON error body
 *   carrying string "error" and "message" members;
 * - nothing logged contains the API key, or a token, client secret or
 *   password that appears once in the input as a JSON member value.
 *
 * With FUZZ_CALLBACK defined (fuzz_callback.c), the input is the query of
 * GET /oauth/callback instead of a whole request.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api/api.h"
#include "base/mem.h"
#include "fuzz_support.h"
#include "net/http_server_int.h"
#include "service/svc.h"
#include "store/seal.h"
#include "store/store.h"

#define API_KEY "fuzz-api-key-0123456789abcdef"

/* ---- a client as a fake stream ---- */

typedef struct {
  stream_write_cb cb;
  void *arg;
} wreq_t;

typedef struct {
  stream_t base;
  stream_read_cb rcb;
  int reading;
  int closing;
  stream_close_cb close_cb;
  wreq_t *w;
  size_t nw, capw;
  buf_t out;
} fake_t;

static fuzz_svc_t fs;

static uv_timer_t kick;  /* completes writes and closes from the loop */
static uv_timer_t watch; /* wakes the loop while handlers are waited for */
static fake_t *cur;      /* the stream of the current input */
static int closed_flag;
static buf_t last_out;

static void on_kick(uv_timer_t *t)
{
  (void)t;
  fake_t *f = cur;
  if (f == NULL)
    return;
  while (f->nw > 0) {
    wreq_t w = f->w[0];
    memmove(f->w, f->w + 1, (f->nw - 1) * sizeof *f->w);
    f->nw--;
    w.cb(&f->base, f->closing ? UV_ECANCELED : 0, w.arg);
  }
  if (f->closing) {
    stream_close_cb cb = f->close_cb;
    if (cb != NULL)
      cb(&f->base);
    buf_free(&last_out);
    last_out = f->out;
    free(f->w);
    free(f);
    cur = NULL;
    closed_flag = 1;
  }
}

static int f_read_start(stream_t *s, stream_read_cb cb)
{
  fake_t *f = (fake_t *)s;
  f->rcb = cb;
  f->reading = 1;
  return 0;
}

static int f_read_stop(stream_t *s)
{
  ((fake_t *)s)->reading = 0;
  return 0;
}

static int f_write(stream_t *s, const uv_buf_t *bufs, unsigned n, stream_write_cb cb, void *arg)
{
  fake_t *f = (fake_t *)s;
  if (f->closing)
    return UV_ECANCELED;
  for (unsigned i = 0; i < n; i++)
    buf_append(&f->out, bufs[i].base, bufs[i].len);
  if (f->nw == f->capw) {
    f->capw = f->capw ? f->capw * 2 : 8;
    f->w = xrealloc(f->w, f->capw * sizeof *f->w);
  }
  f->w[f->nw].cb = cb;
  f->w[f->nw].arg = arg;
  f->nw++;
  uv_timer_start(&kick, on_kick, 0, 0);
  return 0;
}

static void f_close(stream_t *s, stream_close_cb cb)
{
  fake_t *f = (fake_t *)s;
  f->closing = 1;
  f->reading = 0;
  f->close_cb = cb;
  uv_timer_start(&kick, on_kick, 0, 0);
}

static const stream_vtbl_t fake_vt = {f_read_start, f_read_stop, f_write, f_close, NULL};

/* ---- the server under test ---- */

static svc_t *svc;
static api_t *api;
static http_server_t *srv;

static void on_watch(uv_timer_t *t)
{
  (void)t;
}

/* Runs one client session: feeds `data` in chunks, waits for the answers,
 * hangs up, and leaves what the server wrote in last_out. */
static void session(const char *data, size_t size, size_t chunk)
{
  fake_t *f = xcalloc(1, sizeof *f);
  f->base.vt = &fake_vt;
  f->base.loop = &fs.loop;
  cur = f;
  closed_flag = 0;
  http__conn_start(srv, &f->base, 0);
  size_t pos = 0;
  uint64_t deadline = uv_hrtime() + 2000000000ULL;
  uv_timer_start(&watch, on_watch, 20, 20);
  /* f is freed once closed_flag is set: test that first. */
  while (pos < size && !closed_flag && !f->closing && uv_hrtime() < deadline) {
    if (!f->reading) {
      uv_run(&fs.loop, UV_RUN_ONCE); /* back-pressure: wait for writes */
      continue;
    }
    size_t n = size - pos < chunk ? size - pos : chunk;
    f->rcb(&f->base, (ssize_t)n, data + pos);
    pos += n;
    uv_run(&fs.loop, UV_RUN_NOWAIT);
  }
  /* Wait until every request read has its answer written. */
  while (!closed_flag && !f->closing && uv_hrtime() < deadline) {
    http__conn_t *c = f->base.data;
    if (c->npending == 0 && c->nqueued == 0 && f->nw == 0 && c->saved.len == 0)
      break;
    uv_run(&fs.loop, UV_RUN_ONCE);
  }
  if (!closed_flag && !f->closing && f->rcb != NULL)
    f->rcb(&f->base, UV_EOF, NULL);
  while (!closed_flag)
    uv_run(&fs.loop, UV_RUN_ONCE);
  uv_timer_stop(&watch);
  /* Let answers of detached requests (and their commits) finish. */
  uv_run(&fs.loop, UV_RUN_NOWAIT);
}

static void setup_request(const char *method, const char *path, const char *body)
{
  char req[2048];
  int n = snprintf(req, sizeof req,
                   "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " API_KEY
                   "\r\nContent-Length: %zu\r\n\r\n%s",
                   method, path, strlen(body), body);
  session(req, (size_t)n, (size_t)n);
  if (getenv("GRANTD_FUZZ_VERBOSE"))
    fprintf(stderr, "setup %s %s -> %.*s\n", method, path, (int)last_out.len,
            last_out.data ? last_out.data : "");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_log_capture();
  fuzz_rand_fixed(1, 15);
  fuzz_svc_open(&fs);
  svc = fs.svc;
  uv_timer_init(&fs.loop, &kick);
  uv_timer_init(&fs.loop, &watch);
  uint8_t kh[API_KEY_HASH_LEN];
  api_key_hash(API_KEY, strlen(API_KEY), kh);
  api_keyset_t *ks = NULL;
  char kerr[200];
  if (api_keyset_parse(NULL, 0, kh, &ks, kerr, sizeof kerr) != 0)
    abort();
  api_opts_t ao = {.keys = ks, .callback_max_query = 4096, .import_max_body = 1u << 20};
  api = api_new(&ao);
  http_server_opts_t hs = {.handler = api_handle,
                           .handler_arg = api,
                           .on_headers = api_on_headers,
                           .request_timeout_ms = 1000};
  if (http_server_start(&fs.loop, &hs, &srv) != 0)
    abort();
  api_set_svc(api, svc);
  api_set_ready(api, 1);
  setup_request("PUT", "/v1/providers/acme",
                "{\"authorize_url\":\"https://acme.example/authorize\","
                "\"token_url\":\"https://acme.example/token\",\"client_id\":\"cid\","
                "\"client_secret\":\"provider-secret-1\",\"scopes\":[\"read\"]}");
  setup_request("PUT", "/v1/connections/c1",
                "{\"tenant\":\"t1\",\"provider\":\"acme\",\"grant\":\"refresh_token\","
                "\"access_token\":\"setup-access-token\",\"refresh_token\":\"setup-refresh-token\","
                "\"expires_in\":86400}");
  setup_request("PUT", "/v1/connections/c2",
                "{\"tenant\":\"t1\",\"provider\":\"acme\",\"grant\":\"authorization_code\"}");
  setup_request("POST", "/v1/connections/c2/authorize", "");
  fuzz_rand_fixed(0, 0);
  buf_t log = BUF_INIT;
  fuzz_log_take(&log);
  buf_free(&log);
  return 0;
}

/* ---- properties ---- */

static void check_responses(const char *p, size_t n)
{
  while (n > 0) {
    fuzz_check(n >= 13 && memcmp(p, "HTTP/1.1 ", 9) == 0, "a response starts with a status line");
    int st = atoi(p + 9);
    fuzz_check(st >= 100 && st <= 599, "status in range");
    const char *eoh = memmem(p, n, "\r\n\r\n", 4);
    fuzz_check(eoh != NULL, "a complete response head");
    size_t hl = (size_t)(eoh + 4 - p);
    if (st == 100) {
      p += hl;
      n -= hl;
      continue;
    }
    if (st == 500)
      fprintf(stderr, "500 response: %.*s\n", (int)(n < 600 ? n : 600), p);
    fuzz_check(st != 500, "no request makes grantd answer 500");
    const char *cl = memmem(p, hl, "\r\nContent-Length: ", 18);
    fuzz_check(cl != NULL, "every response has a Content-Length");
    size_t len = (size_t)strtoull(cl + 18, NULL, 10);
    fuzz_check(n >= hl + len, "the body is complete");
    if (st >= 400 && memmem(p, hl, "application/json", 16) != NULL) {
      json_t *j = json_loadb(eoh + 4, len, 0, NULL);
      fuzz_check(j != NULL && json_is_object(j) && json_is_string(json_object_get(j, "error")) &&
                   json_is_string(json_object_get(j, "message")),
                 "an error answer is {\"error\", \"message\"}");
      json_decref(j);
    }
    p += hl + len;
    n -= hl + len;
  }
}

static int value_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '~' || c == '-' || c == '+' || c == '/' || c == '=';
}

/* Whether the API key's text appears in LOG other than inside the value
 * of a member that names a connection ("id", "tenant", "provider"): the
 * harness keeps its store across inputs, so an input may create a
 * connection whose id contains the key's text, and every later refresh of
 * it logs that id as the id it is. */
static int key_logged(const buf_t *log)
{
  static const char *const names[] = {"\"id\":\"", "\"tenant\":\"", "\"provider\":\"", NULL};
  const char *d = log->data;
  size_t kl = strlen(API_KEY);
  for (size_t i = 0; i + kl <= log->len; i++) {
    if (memcmp(d + i, API_KEY, kl) != 0)
      continue;
    size_t j = i;
    while (j > 0 && !(d[j - 1] == '"' && (j < 2 || d[j - 2] != '\\')))
      j--;
    if (j == 0)
      return 1;
    int named = 0;
    for (int k = 0; names[k]; k++) {
      size_t nl = strlen(names[k]);
      if (j >= nl && memcmp(d + j - nl, names[k], nl) == 0)
        named = 1;
    }
    if (!named)
      return 1;
  }
  return 0;
}

/* Whether the secret S appears in LOG other than as the tail of a member
 * name (a secret "nes_failed" is not logged by "lines_failed":0). */
static int secret_logged(const buf_t *log, const char *s, size_t sl)
{
  const char *d = log->data;
  for (size_t i = 0; i + sl <= log->len; i++)
    if (memcmp(d + i, s, sl) == 0 &&
        !(i + sl + 2 <= log->len && d[i + sl] == '"' && d[i + sl + 1] == ':'))
      return 1;
  return 0;
}

/* Secrets (JSON member values of secret fields, written plainly, 8+
 * characters, appearing once in the input) must not reach the log; nor
 * the API key (see key_logged). */
static void check_log(const char *in, size_t n, const buf_t *log)
{
  if (key_logged(log))
    fprintf(stderr, "logged the API key in:\n%.*s\n", (int)log->len, log->data);
  fuzz_check(!key_logged(log), "the API key is never logged");
  static const char *const keys[] = {"\"access_token\"", "\"refresh_token\"", "\"client_secret\"",
                                     "\"password\"", NULL};
  for (int k = 0; keys[k]; k++) {
    size_t kl = strlen(keys[k]);
    const char *p = in, *end = in + n;
    while ((p = memmem(p, (size_t)(end - p), keys[k], kl)) != NULL) {
      p += kl;
      const char *v = p;
      while (v < end && (*v == ' ' || *v == ':'))
        v++;
      if (v >= end || *v != '"')
        continue;
      const char *s = ++v;
      while (v < end && value_char(*v))
        v++;
      size_t sl = (size_t)(v - s);
      if (v >= end || *v != '"' || sl < 8)
        continue;
      const char *first = memmem(in, n, s, sl);
      if (memmem(first + 1, (size_t)(end - first - 1), s, sl) != NULL)
        continue; /* also elsewhere in the input, e.g. as an id */
      if (secret_logged(log, s, sl))
        fprintf(stderr, "logged secret %.*s in:\n%.*s\n", (int)sl, s, (int)log->len, log->data);
      fuzz_check(!secret_logged(log, s, sl), "a secret from the input was logged");
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *in = (const char *)data;
  size_t n = size;
#ifdef FUZZ_CALLBACK
  buf_t req = BUF_INIT;
  buf_puts(&req, "GET /oauth/callback?");
  buf_append(&req, data, size);
  buf_puts(&req, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  in = req.data;
  n = req.len;
#endif
  size_t chunk = size % 7 == 3 ? 1 + size % 61 : n;
  session(in, n, chunk ? chunk : 1);
  check_responses(last_out.data ? last_out.data : "", last_out.len);
  buf_t log = BUF_INIT;
  fuzz_log_take(&log);
  check_log(in, n, &log);
  buf_free(&log);
#ifdef FUZZ_CALLBACK
  buf_free(&req);
#endif
  return 0;
}
