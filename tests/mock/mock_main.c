/*
 * mock_main.c - the mock OAuth 2.0 provider used by grantd's integration
 * tests and benchmarks: command line, loop, HTTP(S) server, routing,
 * latency and hang handling, and orderly shutdown on SIGTERM/SIGINT.
 *
 *   mock_provider --cert CHAIN.pem --key KEY.pem --port-file F [options]
 *
 * It serves TLS (or plain HTTP with --plain) on 127.0.0.1, port 0 by
 * default, and writes the bound port to --port-file (atomically: a reader
 * never sees a partial number). Endpoints: /authorize, /token, /revoke,
 * /introspect, /resource, /jwks, /.well-known/oauth-authorization-server,
 * /.well-known/openid-configuration, and the control endpoints
 * GET /_mock/counters, GET|POST /_mock/config, POST /_mock/reset,
 * GET /_mock/last_auth.
 * See print_usage() for options; the knobs are listed in mock_knobs.c.
 *
 * One response buffer is reused for every request (http_respond copies
 * it), and requests are not logged unless --verbose, so the token path
 * costs little beyond TLS and the form parse.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "mock.h"
#include "net/http_server.h"
#include "net/tls.h"

#define SWEEP_MS 1000
#define SWEEP_BUDGET 65536

typedef struct delay_s {
  uv_timer_t timer;
  http_req_t *req;
  struct delay_s *prev, *next;
} delay_t;

typedef struct {
  mock_t m;
  uv_loop_t loop;
  http_server_t *srv;
  tls_server_ctx_t *tls;
  http_server_t *msrv;    /* the mTLS listener, or NULL */
  tls_server_ctx_t *mtls; /* its context (requests client certificates) */
  uv_signal_t sigterm, sigint;
  uv_timer_t sweep;
  delay_t *delays;   /* requests waiting for latency_ms */
  http_req_t **hung; /* requests the hang fault never answers */
  size_t nhung, cap_hung;
  mock_resp_t resp;
  buf_t base;           /* scratch: this request's base URL */
  const char *base_url; /* --base-url */
  int stopping;
} app_t;

static void print_usage(FILE *f)
{
  fputs("usage: mock_provider (--cert CHAIN.pem --key KEY.pem | --plain) [options]\n"
        "  --port-file F        write the bound port to F\n"
        "  --port N             listen port (default 0 = ephemeral)\n"
        "  --host ADDR          listen address (default 127.0.0.1)\n"
        "  --client ID:SECRET   a client (repeatable; ID: = public client);\n"
        "                       default test-client:test-secret\n"
        "  --user NAME:PASS     a password-grant user (repeatable); default alice:wonderland\n"
        "  --base-url URL       issuer/endpoint base (default: scheme://<Host header>)\n"
        "  --config JSON        knobs as a JSON object (as POST /_mock/config)\n"
        "  --KNOB VALUE         one knob, e.g. --reuse-grace-s 30 --fault 500\n"
        "                       (VALUE is JSON when it parses, else a string)\n"
        "  --client-ca FILE     also listen for mutual TLS (RFC 8705): client\n"
        "                       certificates are requested and checked against FILE\n"
        "  --mtls-port-file F   write that listener's port to F\n"
        "  --verbose            log every request to stderr\n",
        f);
}

/* ---- responses ----------------------------------------------------------- */

static const char *raw_name(int raw)
{
  switch (raw) {
  case MOCK_RAW_CHUNKED: return "chunked";
  case MOCK_RAW_CLOSE_MID: return "close_mid_response";
  case MOCK_RAW_HANG: return "hang";
  default: return NULL;
  }
}

static void send_resp(app_t *a, http_req_t *req)
{
  mock_resp_t *r = &a->resp;
  if (a->m.verbose)
    log_info("request", "method", http_req_method(req), "path", http_req_path(req), "#status",
             LOG_I64(r->status), "raw", raw_name(r->raw));
  if (r->raw == MOCK_RAW_HANG) {
    if (a->nhung == a->cap_hung) {
      a->cap_hung = a->cap_hung ? 2 * a->cap_hung : 16;
      a->hung = xrealloc(a->hung, a->cap_hung * sizeof *a->hung);
    }
    a->hung[a->nhung++] = req;
    return;
  }
  if (r->raw != MOCK_RAW_NONE)
    buf_printf(&r->hdrs, MOCK_RAW_HEADER ": %s\r\n", raw_name(r->raw));
  http_respond_ex(req, r->status, r->ctype, r->body.data, r->body.len,
                  r->hdrs.len ? buf_cstr(&r->hdrs) : NULL);
}

static void json_resp(mock_resp_t *r, int status, json_t *doc)
{
  r->status = status;
  r->ctype = "application/json";
  json_dump_buf(doc, &r->body);
  json_decref(doc);
}

/* ---- routing ------------------------------------------------------------- */

static bool host_ok(const char *h)
{
  size_t n = strlen(h);
  return n > 0 && n < 256 &&
         strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == n;
}

/* The base URL of this request: --base-url, else scheme://Host. */
static const char *base_of(app_t *a, http_req_t *req)
{
  if (a->base_url != NULL)
    return a->base_url;
  const char *host = http_req_header(req, "Host");
  buf_reset(&a->base);
  buf_printf(&a->base, "%s://", a->m.tls ? "https" : "http");
  if (host != NULL && host_ok(host))
    buf_puts(&a->base, host);
  else
    buf_printf(&a->base, "127.0.0.1:%u", a->m.port);
  return buf_cstr(&a->base);
}

static void mock_config(app_t *a, const mock_req_t *q, mock_resp_t *r)
{
  if (strcmp(q->method, "POST") == 0) {
    json_t *doc = NULL;
    char err[160];
    if (json_parse(q->body, q->body_len, &doc) != 0) {
      json_resp(
        r, 400,
        json_pack("{ss ss}", "error", "invalid_json", "message", "the body must be a JSON object"));
      return;
    }
    int e = mock_knobs_apply(&a->m.knobs, doc, err, sizeof err);
    json_decref(doc);
    if (e != 0) {
      json_resp(r, 400, json_pack("{ss ss}", "error", "invalid_knob", "message", err));
      return;
    }
  }
  json_resp(r, 200, mock_knobs_json(&a->m.knobs));
}

static void mock_reset(app_t *a, mock_resp_t *r)
{
  mock_store_clear(a->m.store);
  mock_device_clear();
  memset(&a->m.c, 0, sizeof a->m.c);
  if (a->m.tls_stats != NULL)
    a->m.tls_base = *a->m.tls_stats;
  mock_tap_reset(&a->m);
  mock_knobs_free(&a->m.knobs);
  mock_knobs_copy(&a->m.knobs, &a->m.start_knobs);
  json_resp(r, 200, json_pack("{sb}", "ok", 1));
}

static void not_allowed(mock_resp_t *r, const char *allow)
{
  mock_oauth_error(r, 405, "method_not_allowed", "method not allowed");
  buf_printf(&r->hdrs, "Allow: %s\r\n", allow);
}

/* "/s/acme/token" -> "/token", counted under "acme/token". */
static const char *strip_prefix(mock_t *m, const char *path)
{
  if (strncmp(path, "/s/", 3) != 0)
    return path;
  const char *seg = path + 3, *sl = strchr(seg, '/');
  if (sl == NULL || sl == seg)
    return path;
  char key[96];
  snprintf(key, sizeof key, "%.*s%s", (int)(sl - seg), seg, sl);
  mock_counters_t *c = &m->c;
  for (size_t i = 0; i < c->n_prefixed; i++)
    if (strcmp(c->prefixed[i].key, key) == 0) {
      c->prefixed[i].n++;
      return sl;
    }
  if (c->n_prefixed < sizeof c->prefixed / sizeof c->prefixed[0]) {
    snprintf(c->prefixed[c->n_prefixed].key, sizeof c->prefixed[0].key, "%s", key);
    c->prefixed[c->n_prefixed++].n = 1;
  }
  return sl;
}

static void dispatch(app_t *a, http_req_t *req)
{
  mock_t *m = &a->m;
  mock_resp_t *r = &a->resp;
  mock_resp_reset(r);
  const char *path = http_req_path(req), *method = http_req_method(req);
  bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
  mock_req_t q = {
    .method = method,
    .query = http_req_query(req),
    .ctype = http_req_header(req, "Content-Type"),
    .authz = http_req_header(req, "Authorization"),
    .base = base_of(a, req),
    .now = clock_mono_ms(),
    .wall = clock_now_ms(),
  };
  q.body = http_req_body(req, &q.body_len);
  unsigned char cert[32];
  q.has_cert = mock_tap_peer_cert(http_req_stream(req), &q.mtls, cert, &q.cert_trusted);
  if (q.has_cert) {
    for (int i = 0; i < 32; i++)
      snprintf(q.cert_sha256 + 2 * i, 3, "%02x", cert[i]);
  }
  if (q.mtls)
    memcpy(m->last_cert, q.cert_sha256, sizeof m->last_cert);
  path = strip_prefix(m, path);

  if (strcmp(path, "/token") == 0) {
    if (post)
      mock_token(m, &q, r);
    else
      not_allowed(r, "POST");
  } else if (strcmp(path, "/device_authorization") == 0) {
    if (post)
      mock_device_authorization(m, &q, r);
    else
      not_allowed(r, "POST");
  } else if (strcmp(path, "/authorize") == 0) {
    if (get)
      mock_authorize(m, &q, r);
    else
      not_allowed(r, "GET");
  } else if (strcmp(path, "/revoke") == 0) {
    if (post)
      mock_revoke(m, &q, r);
    else
      not_allowed(r, "POST");
  } else if (strcmp(path, "/introspect") == 0) {
    if (post)
      mock_introspect(m, &q, r);
    else
      not_allowed(r, "POST");
  } else if (strcmp(path, "/resource") == 0) {
    if (get || post)
      mock_resource(m, &q, r);
    else
      not_allowed(r, "GET, POST");
  } else if (strcmp(path, "/.well-known/oauth-authorization-server") == 0 ||
             strcmp(path, "/.well-known/openid-configuration") == 0) {
    m->c.req_metadata++;
    if (get)
      json_resp(r, 200, mock_metadata_json(m, q.base, path[13] == 'o' && path[14] == 'p'));
    else
      not_allowed(r, "GET");
  } else if (strcmp(path, "/jwks") == 0) {
    m->c.req_metadata++;
    json_resp(r, 200, json_pack("{s[]}", "keys"));
  } else if (strncmp(path, "/_mock/", 7) == 0) {
    m->c.req_mock++;
    if (strcmp(path, "/_mock/counters") == 0 && get)
      json_resp(r, 200, mock_counters_json(m));
    else if (strcmp(path, "/_mock/config") == 0 && (get || post))
      mock_config(a, &q, r);
    else if (strcmp(path, "/_mock/reset") == 0 && post)
      mock_reset(a, r);
    else if (strcmp(path, "/_mock/last_auth") == 0 && get)
      json_resp(r, 200,
                json_pack("{s:s?, s:s?}", "client_assertion", m->last_assertion,
                          "client_cert_sha256", m->last_cert[0] ? m->last_cert : NULL));
    else if (strcmp(path, "/_mock/device") == 0 && post)
      mock_device_decide(m, &q, r);
    else if (strcmp(path, "/_mock/assertion") == 0 && get)
      json_resp(r, 200, mock_last_assertion_json());
    else if (strcmp(path, "/_mock/exchange") == 0 && get)
      json_resp(r, 200, mock_last_exchange_json());
    else
      mock_oauth_error(r, 404, "not_found", "unknown control endpoint or method");
  } else {
    m->c.req_other++;
    mock_oauth_error(r, 404, "not_found", "no such endpoint");
  }
  send_resp(a, req);
}

static void delay_closed(uv_handle_t *h)
{
  free(h->data);
}

static void delay_unlink(app_t *a, delay_t *d)
{
  if (d->prev != NULL)
    d->prev->next = d->next;
  else
    a->delays = d->next;
  if (d->next != NULL)
    d->next->prev = d->prev;
}

static void on_delay(uv_timer_t *t)
{
  delay_t *d = t->data;
  app_t *a = t->loop->data;
  delay_unlink(a, d);
  dispatch(a, d->req);
  uv_close((uv_handle_t *)&d->timer, delay_closed);
}

static void on_request(http_req_t *req, void *arg)
{
  app_t *a = arg;
  const char *path = http_req_path(req);
  if (a->m.knobs.latency_ms > 0 && strncmp(path, "/_mock/", 7) != 0) {
    /* The answer is computed when the delay ends, so knob changes made
     * meanwhile apply (as on a slow real server). */
    delay_t *d = xcalloc(1, sizeof *d);
    d->req = req;
    uv_timer_init(&a->loop, &d->timer);
    d->timer.data = d;
    d->next = a->delays;
    if (a->delays != NULL)
      a->delays->prev = d;
    a->delays = d;
    uv_timer_start(&d->timer, on_delay, (uint64_t)a->m.knobs.latency_ms, 0);
    return;
  }
  dispatch(a, req);
}

/* ---- housekeeping and shutdown ------------------------------------------- */

static void on_sweep(uv_timer_t *t)
{
  app_t *a = t->data;
  mock_store_sweep(a->m.store, clock_mono_ms(), SWEEP_BUDGET);
  /* Hung requests whose client gave up are answered (the answer is
   * dropped) so their memory is released. */
  size_t w = 0;
  for (size_t i = 0; i < a->nhung; i++) {
    if (http_req_is_gone(a->hung[i]))
      http_respond(a->hung[i], 503, NULL, NULL, 0);
    else
      a->hung[w++] = a->hung[i];
  }
  a->nhung = w;
}

static void on_signal(uv_signal_t *s, int signum)
{
  app_t *a = s->data;
  (void)signum;
  if (a->stopping)
    return;
  a->stopping = 1;
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sweep, NULL);
  while (a->delays != NULL) {
    delay_t *d = a->delays;
    delay_unlink(a, d);
    http_respond(d->req, 503, NULL, NULL, 0);
    uv_close((uv_handle_t *)&d->timer, delay_closed);
  }
  for (size_t i = 0; i < a->nhung; i++)
    http_respond(a->hung[i], 503, NULL, NULL, 0);
  a->nhung = 0;
  http_server_close(a->srv, 0, NULL, NULL);
  a->srv = NULL;
  if (a->msrv != NULL)
    http_server_close(a->msrv, 0, NULL, NULL);
  a->msrv = NULL;
}

/* ---- start-up ------------------------------------------------------------ */

static int write_port_file(const char *path, unsigned port)
{
  buf_t tmp = BUF_INIT;
  buf_printf(&tmp, "%s.tmp", path);
  FILE *f = fopen(buf_cstr(&tmp), "w");
  int ok = f != NULL && fprintf(f, "%u\n", port) > 0;
  if (f != NULL)
    ok = (fclose(f) == 0) && ok;
  ok = ok && rename(buf_cstr(&tmp), path) == 0;
  buf_free(&tmp);
  return ok ? 0 : -1;
}

/* "A:B" -> a = "A", b = "B" (copies); -1 without ':' or with an empty A. */
static int split_pair(const char *s, char **a, char **b)
{
  const char *c = strchr(s, ':');
  if (c == NULL || c == s)
    return -1;
  *a = xstrndup(s, (size_t)(c - s));
  *b = xstrdup(c + 1);
  return 0;
}

typedef struct {
  const char *cert, *key, *port_file, *host, *client_ca, *mtls_port_file;
  unsigned port;
  int plain;
} opts_t;

static int parse_args(app_t *a, opts_t *o, int argc, char **argv)
{
  mock_t *m = &a->m;
  char err[160];
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      print_usage(stdout);
      exit(0);
    } else if (strcmp(arg, "--plain") == 0) {
      o->plain = 1;
      continue;
    } else if (strcmp(arg, "--verbose") == 0) {
      m->verbose = true;
      continue;
    }
    if (strncmp(arg, "--", 2) != 0 || val == NULL) {
      fprintf(stderr, "mock_provider: %s: %s\n", arg,
              val == NULL ? "missing value or unknown option" : "unexpected argument");
      return -1;
    }
    i++;
    if (strcmp(arg, "--cert") == 0) {
      o->cert = val;
    } else if (strcmp(arg, "--key") == 0) {
      o->key = val;
    } else if (strcmp(arg, "--port-file") == 0) {
      o->port_file = val;
    } else if (strcmp(arg, "--client-ca") == 0) {
      o->client_ca = val;
    } else if (strcmp(arg, "--mtls-port-file") == 0) {
      o->mtls_port_file = val;
    } else if (strcmp(arg, "--host") == 0) {
      o->host = val;
    } else if (strcmp(arg, "--port") == 0) {
      char *end;
      unsigned long p = strtoul(val, &end, 10);
      if (*end != '\0' || p > 65535) {
        fprintf(stderr, "mock_provider: --port: bad port %s\n", val);
        return -1;
      }
      o->port = (unsigned)p;
    } else if (strcmp(arg, "--base-url") == 0) {
      a->base_url = val;
    } else if (strcmp(arg, "--client") == 0 || strcmp(arg, "--user") == 0) {
      char *x, *y;
      if (split_pair(val, &x, &y) != 0) {
        fprintf(stderr, "mock_provider: %s: expected NAME:SECRET\n", arg);
        return -1;
      }
      if (arg[2] == 'c') {
        m->clients = xrealloc(m->clients, (m->nclients + 1) * sizeof *m->clients);
        m->clients[m->nclients++] = (mock_client_t){x, y};
      } else {
        m->users = xrealloc(m->users, (m->nusers + 1) * sizeof *m->users);
        m->users[m->nusers++] = (mock_user_t){x, y};
      }
    } else if (strcmp(arg, "--config") == 0) {
      json_t *doc = NULL;
      if (json_parse(val, strlen(val), &doc) != 0 ||
          mock_knobs_apply(&m->start_knobs, doc, err, sizeof err) != 0) {
        fprintf(stderr, "mock_provider: --config: %s\n", doc == NULL ? "not a JSON object" : err);
        json_decref(doc);
        return -1;
      }
      json_decref(doc);
    } else if (mock_knobs_apply_flag(&m->start_knobs, arg + 2, val, err, sizeof err) != 0) {
      fprintf(stderr, "mock_provider: %s: %s\n", arg, err);
      return -1;
    }
  }
  if (!o->plain && (o->cert == NULL || o->key == NULL)) {
    fprintf(stderr, "mock_provider: --cert and --key are required (or --plain)\n");
    return -1;
  }
  if (m->nclients == 0) {
    m->clients = xmalloc(sizeof *m->clients);
    m->clients[0] = (mock_client_t){xstrdup("test-client"), xstrdup("test-secret")};
    m->nclients = 1;
  }
  if (m->nusers == 0) {
    m->users = xmalloc(sizeof *m->users);
    m->users[0] = (mock_user_t){xstrdup("alice"), xstrdup("wonderland")};
    m->nusers = 1;
  }
  return 0;
}

static void app_free(app_t *a)
{
  mock_t *m = &a->m;
  for (size_t i = 0; i < m->nclients; i++) {
    free(m->clients[i].id);
    free_secret(m->clients[i].secret);
  }
  free(m->clients);
  for (size_t i = 0; i < m->nusers; i++) {
    free(m->users[i].name);
    free_secret(m->users[i].pass);
  }
  free(m->users);
  mock_knobs_free(&m->knobs);
  mock_knobs_free(&m->start_knobs);
  free(m->last_assertion);
  free(m->mtls_base);
  mock_store_free(m->store);
  mock_resp_free(&a->resp);
  buf_free(&a->base);
  free(a->hung);
  tls_server_ctx_free(a->tls);
  tls_server_ctx_free(a->mtls);
  mock_tap_cleanup();
  mock_device_clear();
}

int main(int argc, char **argv)
{
  static app_t app;
  app_t *a = &app;
  opts_t o = {0};
  int rc = 1;
  signal(SIGPIPE, SIG_IGN);
  mem_install_uv();
  mock_knobs_defaults(&a->m.start_knobs);
  a->m.store = mock_store_new();
  if (parse_args(a, &o, argc, argv) != 0) {
    print_usage(stderr);
    goto out_free;
  }
  mock_knobs_copy(&a->m.knobs, &a->m.start_knobs);
  if (!o.plain) {
    int e = tls_server_ctx_new(&a->tls, o.cert, o.key);
    if (e != 0) {
      fprintf(stderr, "mock_provider: cannot load %s / %s: %s\n", o.cert, o.key, err_str(e));
      goto out_free;
    }
    mock_tap_set_tls(a->tls);
    a->m.tls = 1;
    a->m.tls_stats = tls_server_ctx_stats(a->tls);
  }
  if (uv_loop_init(&a->loop) != 0)
    goto out_free;
  a->loop.data = a;
  http_server_opts_t so = {
    .host = o.host,
    .port = o.port,
    .max_connections = 8192,
    .max_body_bytes = 64 * 1024,
    .handler = on_request,
    .handler_arg = a,
    .wrap = mock_tap_wrap,
    .wrap_arg = &a->m,
  };
  int e = http_server_start(&a->loop, &so, &a->srv);
  if (e != 0) {
    fprintf(stderr, "mock_provider: cannot listen: %s\n", err_str(e));
    goto out_loop;
  }
  a->m.port = http_server_port(a->srv);
  if (o.client_ca != NULL && a->tls != NULL) {
    e = tls_server_ctx_new(&a->mtls, o.cert, o.key);
    if (e == 0)
      e = tls_server_ctx_request_client_cert(a->mtls, o.client_ca);
    if (e == 0) {
      mock_tap_set_mtls(a->mtls);
      so.port = 0;
      so.wrap = mock_tap_wrap_mtls;
      e = http_server_start(&a->loop, &so, &a->msrv);
    }
    if (e != 0) {
      fprintf(stderr, "mock_provider: cannot listen for mutual TLS: %s\n", err_str(e));
      http_server_close(a->srv, 0, NULL, NULL);
      a->srv = NULL;
      goto out_loop;
    }
    unsigned mp = http_server_port(a->msrv);
    buf_t mb = BUF_INIT;
    const char *h = o.host != NULL ? o.host : "127.0.0.1";
    buf_printf(&mb, strchr(h, ':') ? "https://[%s]:%u" : "https://%s:%u", h, mp);
    a->m.mtls_base = buf_steal(&mb);
    if (o.mtls_port_file != NULL && write_port_file(o.mtls_port_file, mp) != 0) {
      fprintf(stderr, "mock_provider: cannot write %s\n", o.mtls_port_file);
      http_server_close(a->srv, 0, NULL, NULL);
      http_server_close(a->msrv, 0, NULL, NULL);
      a->srv = a->msrv = NULL;
      goto out_loop;
    }
  }
  uv_signal_init(&a->loop, &a->sigterm);
  uv_signal_init(&a->loop, &a->sigint);
  a->sigterm.data = a->sigint.data = a;
  uv_signal_start(&a->sigterm, on_signal, SIGTERM);
  uv_signal_start(&a->sigint, on_signal, SIGINT);
  uv_timer_init(&a->loop, &a->sweep);
  a->sweep.data = a;
  uv_timer_start(&a->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
  if (o.port_file != NULL && write_port_file(o.port_file, a->m.port) != 0) {
    fprintf(stderr, "mock_provider: cannot write %s\n", o.port_file);
    uv_signal_t *s = &a->sigterm;
    on_signal(s, SIGTERM);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    goto out_loop;
  }
  log_info("mock_listening", "scheme", a->m.tls ? "https" : "http", "host",
           o.host != NULL ? o.host : "127.0.0.1", "#port", LOG_I64(a->m.port));
  uv_run(&a->loop, UV_RUN_DEFAULT);
  rc = 0;
out_loop:
  uv_run(&a->loop, UV_RUN_DEFAULT); /* close callbacks of anything left */
  if (uv_loop_close(&a->loop) != 0)
    fprintf(stderr, "mock_provider: loop not empty at exit\n");
out_free:
  app_free(a);
  return rc;
}
