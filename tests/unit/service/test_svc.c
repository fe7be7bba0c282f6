/*
 * test_svc.c - the connection service in-process: a real store in a temp
 * dir, the real HTTP client, and a tiny plain-HTTP token endpoint served by
 * net/http_server on the same loop (the provider allows http:// for it).
 *
 * Only correctness is asserted, never timing: tests that need a scheduled
 * refresh use lifetimes of a couple of seconds and run the loop until the
 * expected state is reached (ctest's timeout catches a hang).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lmdb.h>
#include <uv.h>

#include "support.h"

#include "base/clock.h"
#include "base/err.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "base/url.h"
#include "net/addr_policy.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "service/internal.h"
#include "store/store.h"

/* The connect-flow hooks live in files another helper writes; weak
 * stand-ins keep this test linkable either way (a strong definition in
 * the service library wins when it is linked in). */
__attribute__((weak)) void svc__discover(svc_t *svc, provider_t *p, svc__discover_cb done,
                                         void *arg)
{
  (void)svc;
  done(arg, GRANTD_EDISCOVERY, p);
}

__attribute__((weak)) void svc__revoke(svc_t *svc, const conn_t *c, svc_prov_t *prov,
                                       svc__revoke_cb done, void *arg)
{
  (void)svc;
  (void)c;
  (void)prov;
  svc_revoke_report_t rep = {0};
  done(arg, &rep);
}

/* ---- the mock token endpoint ----------------------------------------------- */

enum { MOCK_OK, MOCK_500, MOCK_INVALID_GRANT, MOCK_INVALID_CLIENT, MOCK_HOLD, MOCK_429 };

typedef struct {
  int mode;
  int expires_in;
  int rotate;   /* issue a new refresh token on each refresh */
  int requests; /* token requests received */
  int refresh_grants;
  int cc_grants;
  int replays;           /* refresh tokens presented that were not current */
  int issued;            /* tokens issued so far (names them) */
  char current_rt[64];   /* the refresh token the mock accepts */
  http_req_t *held;      /* MOCK_HOLD: the first request waiting */
  http_req_t *queue[16]; /* MOCK_HOLD: every request waiting, in order */
  int nheld;
  int outstanding;     /* held and not released yet */
  int max_outstanding; /* most requests held at once */
} mock_t;

static mock_t mock;

static void mock_answer_ok(http_req_t *req, const char *grant)
{
  char body[512];
  mock.issued++;
  char rt[128] = "";
  if (strcmp(grant, "refresh_token") == 0 && mock.rotate) {
    snprintf(mock.current_rt, sizeof mock.current_rt, "rt%d", mock.issued);
    snprintf(rt, sizeof rt, ",\"refresh_token\":\"%s\"", mock.current_rt);
  }
  snprintf(body, sizeof body,
           "{\"access_token\":\"at%d\",\"token_type\":\"bearer\",\"expires_in\":%d%s}", mock.issued,
           mock.expires_in, rt);
  http_respond(req, 200, "application/json", body, strlen(body));
}

static void mock_handler(http_req_t *req, void *arg)
{
  (void)arg;
  size_t n;
  const char *b = http_req_body(req, &n);
  form_t f = FORM_INIT;
  form_parse(b, n, &f);
  const char *grant = form_get(&f, "grant_type");
  mock.requests++;
  if (grant && strcmp(grant, "refresh_token") == 0) {
    mock.refresh_grants++;
    const char *rt = form_get(&f, "refresh_token");
    if (rt == NULL || strcmp(rt, mock.current_rt) != 0)
      mock.replays++;
  } else if (grant && strcmp(grant, "client_credentials") == 0) {
    mock.cc_grants++;
  }
  char g[32];
  snprintf(g, sizeof g, "%s", grant ? grant : "");
  form_free(&f);
  const char *e = NULL;
  switch (mock.mode) {
  case MOCK_500: http_respond(req, 500, "text/plain", "oops", 4); return;
  case MOCK_INVALID_GRANT:
    e = "{\"error\":\"invalid_grant\",\"error_description\":\"revoked\"}";
    http_respond(req, 400, "application/json", e, strlen(e));
    return;
  case MOCK_INVALID_CLIENT:
    e = "{\"error\":\"invalid_client\"}";
    http_respond(req, 401, "application/json", e, strlen(e));
    return;
  case MOCK_HOLD:
    if (mock.held == NULL)
      mock.held = req;
    mock.queue[mock.nheld++] = req;
    if (++mock.outstanding > mock.max_outstanding)
      mock.max_outstanding = mock.outstanding;
    return;
  case MOCK_429:
    e = "{\"error\":\"slow_down\"}";
    http_respond_ex(req, 429, "application/json", e, strlen(e), "Retry-After: 30\r\n");
    return;
  default: mock_answer_ok(req, g);
  }
}

/* ---- fixture ----------------------------------------------------------------- */

typedef struct {
  uv_loop_t loop;
  const char *dir;
  seal_keyring_t *kr;
  store_t *store;
  http_client_t *http;
  http_server_t *srv;
  svc_t *svc;
  char token_url[64];
} fx_t;

static fx_t fx;
static addr_policy_t *fx_policy;

static void run_until(int *flag)
{
  while (!*flag)
    uv_run(&fx.loop, UV_RUN_ONCE);
}

static int store_open_fx(void)
{
  store_opts_t so = {.loop = &fx.loop, .path = fx.dir, .keyring = fx.kr};
  return store_open(&fx.store, &so);
}

static int svc_open_fx(void)
{
  svc_opts_t o = {
    .loop = &fx.loop,
    .store = fx.store,
    .http = fx.http,
    .public_url = "http://127.0.0.1:1",
    .max_inflight = 4,
    .max_inflight_per_host = 2,
    .ramp_per_s = 100,
    .batch_per_tick = 8,
  };
  return svc_open(&fx.svc, &o);
}

static void flag_cb(void *arg)
{
  *(int *)arg = 1;
}

static void store_flag_cb(void *arg, int status)
{
  assert_int_equal(status, 0);
  *(int *)arg = 1;
}

static void svc_close_fx(void)
{
  int done = 0;
  svc_close(fx.svc, flag_cb, &done);
  run_until(&done);
  svc_free(fx.svc);
  fx.svc = NULL;
}

static void store_close_fx(void)
{
  int done = 0;
  store_close(fx.store, flag_cb, &done);
  run_until(&done);
  fx.store = NULL;
}

static int setup(void **state)
{
  (void)state;
  memset(&mock, 0, sizeof mock);
  mock.expires_in = 3600;
  strcpy(mock.current_rt, "rt0");
  memset(&fx, 0, sizeof fx);
  assert_int_equal(uv_loop_init(&fx.loop), 0);
  fx.dir = xstrdup(test_mkdtemp());
  fx.kr = seal_keyring_new();
  uint8_t key[SEAL_KEY_LEN];
  memset(key, 7, sizeof key);
  assert_int_equal(seal_keyring_add(fx.kr, 1, key), 0);
  assert_int_equal(store_open_fx(), 0);
  http_server_opts_t so = {.handler = mock_handler};
  assert_int_equal(http_server_start(&fx.loop, &so, &fx.srv), 0);
  snprintf(fx.token_url, sizeof fx.token_url, "http://127.0.0.1:%u/token",
           http_server_port(fx.srv));
  /* The mock listens on loopback: opt in exactly as an operator would
   * (--allow-endpoint-cidr 127.0.0.0/8,::1/128). */
  char perr[256];
  fx_policy = addr_policy_new();
  assert_int_equal(addr_policy_add_cidrs(fx_policy, "127.0.0.0/8,::1/128", perr, sizeof perr), 0);
  http_client_opts_t co = {.allow_insecure_http = 1, .endpoint_policy = fx_policy};
  fx.http = http_client_new(&fx.loop, &co);
  assert_int_equal(svc_open_fx(), 0);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  for (int i = 0; i < mock.nheld; i++)
    if (mock.queue[i])
      http_respond(mock.queue[i], 500, NULL, NULL, 0);
  mock.nheld = 0;
  mock.held = NULL;
  if (fx.svc)
    svc_close_fx();
  int done = 0;
  http_client_close(fx.http, flag_cb, &done);
  run_until(&done);
  addr_policy_free(fx_policy);
  fx_policy = NULL;
  done = 0;
  http_server_close(fx.srv, 0, flag_cb, &done);
  run_until(&done);
  store_close_fx();
  uv_run(&fx.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&fx.loop), 0);
  seal_keyring_free(fx.kr);
  test_rmdir(fx.dir);
  free((void *)fx.dir);
  return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

typedef struct {
  int done;
  int err;
  conn_t rec;
  bool has_rec;
} res_t;

static void conn_cb(void *arg, int err, const conn_t *c)
{
  res_t *r = arg;
  r->done++;
  r->err = err;
  if (c) {
    if (r->has_rec)
      conn_free(&r->rec);
    conn_copy(&r->rec, c);
    r->has_rec = true;
  }
}

static void res_free(res_t *r)
{
  if (r->has_rec)
    conn_free(&r->rec);
  memset(r, 0, sizeof *r);
}

static void prov_cb(void *arg, int err, const provider_t *p)
{
  (void)p;
  res_t *r = arg;
  r->done++;
  r->err = err;
}

/* Adjusts the next provider put_provider() stores (then reset). */
static void (*prov_tweak)(provider_t *p);

static void put_provider(const char *name)
{
  provider_t *p = xcalloc(1, sizeof *p);
  p->name = xstrdup(name);
  p->token_url = xstrdup(fx.token_url);
  p->client_id = xstrdup("cid");
  p->client_secret = xstrdup("csecret");
  p->allow_insecure_http = true;
  p->refresh_lead_min = 1;
  if (prov_tweak)
    prov_tweak(p);
  prov_tweak = NULL;
  res_t r = {0};
  assert_int_equal(svc_provider_put(fx.svc, p, prov_cb, &r), 0);
  while (!r.done)
    uv_run(&fx.loop, UV_RUN_ONCE);
  assert_int_equal(r.err, 0);
}

static conn_t *new_conn(const char *id, grant_t g)
{
  conn_t *c = xcalloc(1, sizeof *c);
  c->id = xstrdup(id);
  c->tenant = xstrdup("t1");
  c->provider = xstrdup("acme");
  c->grant = g;
  return c;
}

/* Imports a connection with tokens expiring in expires_ms. */
static void import(const char *id, int64_t expires_ms)
{
  conn_t *c = new_conn(id, GRANT_REFRESH_TOKEN);
  c->access_token = xstrdup("at0");
  c->refresh_token = xstrdup("rt0");
  c->expires_at = clock_now_ms() + expires_ms;
  res_t r = {0};
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.rec.status, CONN_ACTIVE);
  res_free(&r);
}

static void get(const char *id, conn_t *out)
{
  assert_int_equal(svc_conn_get(fx.svc, id, out), 0);
}

static void refresh(const char *id, res_t *r)
{
  assert_int_equal(svc_conn_refresh(fx.svc, id, conn_cb, r), 0);
  run_until(&r->done);
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_import_scheduled_refresh(void **state)
{
  (void)state;
  put_provider("acme");
  mock.expires_in = 60;
  import("c1", 2000); /* lead 1 s: the wheel fires about 1 s from now */
  svc_stats_t st;
  svc_stats(fx.svc, &st);
  assert_int_equal(st.scheduled, 1);
  while (mock.refresh_grants < 1 || fx.svc->st.refresh_ok < 1 ||
         svc__entry_find(fx.svc, "c1")->op != NULL)
    uv_run(&fx.loop, UV_RUN_ONCE);
  conn_t c;
  get("c1", &c);
  assert_string_equal(c.access_token, "at1");
  assert_string_equal(c.refresh_token, "rt0"); /* none came back: kept */
  assert_int_equal(c.status, CONN_ACTIVE);
  assert_int_equal(c.revision, 2);
  assert_true(c.next_refresh_at > clock_now_ms());
  assert_true(c.refreshed_at > 0);
  conn_free(&c);
  svc_stats(fx.svc, &st);
  assert_int_equal(st.scheduled, 1);
  assert_int_equal(mock.replays, 0);
}

static void test_single_flight(void **state)
{
  (void)state;
  put_provider("acme");
  import("c1", 3600 * 1000);
  res_t r[10];
  memset(r, 0, sizeof r);
  for (int i = 0; i < 10; i++)
    assert_int_equal(svc_conn_token(fx.svc, "c1", 7200 * 1000, conn_cb, &r[i]), 0);
  for (int i = 0; i < 10; i++) {
    run_until(&r[i].done);
    assert_int_equal(r[i].done, 1);
    assert_int_equal(r[i].err, 0);
    assert_string_equal(r[i].rec.access_token, "at1");
    res_free(&r[i]);
  }
  assert_int_equal(mock.requests, 1);
  /* A token with enough time left is served from the store. */
  res_t q = {0};
  assert_int_equal(svc_conn_token(fx.svc, "c1", 30 * 1000, conn_cb, &q), 0);
  run_until(&q.done);
  assert_int_equal(q.err, 0);
  assert_string_equal(q.rec.access_token, "at1");
  res_free(&q);
  assert_int_equal(mock.requests, 1);
  assert_int_equal(svc_conn_token(fx.svc, "nope", 0, conn_cb, &q), GRANTD_ENOT_FOUND);
}

static void test_forced_coalesce_and_rotation(void **state)
{
  (void)state;
  put_provider("acme");
  mock.rotate = 1;
  import("c1", 3600 * 1000);
  res_t a = {0}, b = {0};
  assert_int_equal(svc_conn_refresh(fx.svc, "c1", conn_cb, &a), 0);
  assert_int_equal(svc_conn_refresh(fx.svc, "c1", conn_cb, &b), 0);
  run_until(&a.done);
  run_until(&b.done);
  assert_int_equal(a.err, 0);
  assert_int_equal(b.err, 0);
  assert_int_equal(mock.requests, 1);
  assert_string_equal(b.rec.refresh_token, "rt1");
  res_free(&a);
  res_free(&b);
  /* The rotated token is durable and the next refresh presents it. */
  buf_t raw = BUF_INIT;
  assert_int_equal(store_committed_get(fx.store, "connections", "c1", 2, &raw), 0);
  buf_free(&raw);
  refresh("c1", &a);
  assert_int_equal(a.err, 0);
  assert_string_equal(a.rec.refresh_token, "rt2");
  assert_int_equal(a.rec.revision, 3);
  res_free(&a);
  assert_int_equal(mock.replays, 0);
  assert_int_equal(mock.refresh_grants, 2);
}

static void test_transient_then_recovery(void **state)
{
  (void)state;
  put_provider("acme");
  import("c1", 3600 * 1000);
  mock.mode = MOCK_500;
  res_t r = {0};
  refresh("c1", &r);
  assert_int_equal(r.err, GRANTD_EUPSTREAM);
  assert_int_equal(r.rec.status, CONN_REFRESH_FAILING);
  assert_int_equal(r.rec.failures, 1);
  assert_int_equal(r.rec.last_error_http, 500);
  assert_non_null(r.rec.last_error_code);
  assert_string_equal(r.rec.access_token, "at0"); /* old token kept */
  assert_true(r.rec.next_refresh_at > 0);
  res_free(&r);
  /* Still valid: readers get the old token without a new request. */
  int before = mock.requests;
  assert_int_equal(svc_conn_token(fx.svc, "c1", 7200 * 1000, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_string_equal(r.rec.access_token, "at0");
  res_free(&r);
  assert_int_equal(mock.requests, before);
  /* The backoff retry (0.5-1 s) recovers. */
  mock.mode = MOCK_OK;
  conn_t c;
  for (;;) {
    uv_run(&fx.loop, UV_RUN_ONCE);
    get("c1", &c);
    int st = c.status;
    conn_free(&c);
    if (st == CONN_ACTIVE)
      break;
  }
  get("c1", &c);
  assert_int_equal(c.failures, 0);
  assert_null(c.last_error_code);
  assert_string_equal(c.access_token, "at1");
  conn_free(&c);
}

static void test_invalid_grant_needs_reauth(void **state)
{
  (void)state;
  put_provider("acme");
  import("c1", 3600 * 1000);
  mock.mode = MOCK_INVALID_GRANT;
  res_t r = {0};
  refresh("c1", &r);
  assert_int_equal(r.err, GRANTD_EREAUTH);
  assert_int_equal(r.rec.status, CONN_NEEDS_REAUTH);
  assert_string_equal(r.rec.last_error_code, "invalid_grant");
  assert_int_equal(r.rec.next_refresh_at, 0);
  res_free(&r);
  svc_stats_t st;
  svc_stats(fx.svc, &st);
  assert_int_equal(st.scheduled, 0);
  assert_int_equal(st.by_status[CONN_NEEDS_REAUTH], 1);
  assert_int_equal(st.refresh_reauth, 1);
  assert_int_equal(svc_conn_token(fx.svc, "c1", 0, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, GRANTD_EREAUTH);
  res_free(&r);
  assert_int_equal(mock.requests, 1);
}

static void test_client_credentials_put(void **state)
{
  (void)state;
  put_provider("acme");
  conn_t *c = new_conn("cc1", GRANT_CLIENT_CREDENTIALS);
  res_t r = {0};
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.rec.status, CONN_ACTIVE);
  assert_string_equal(r.rec.access_token, "at1");
  assert_int_equal(r.rec.revision, 1);
  assert_true(r.rec.next_refresh_at > 0);
  res_free(&r);
  assert_int_equal(mock.cc_grants, 1);
  /* A rejected client: stored with status error, err 0 (it was stored). */
  mock.mode = MOCK_INVALID_CLIENT;
  c = new_conn("cc2", GRANT_CLIENT_CREDENTIALS);
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.rec.status, CONN_ERROR);
  assert_string_equal(r.rec.last_error_code, "invalid_client");
  res_free(&r);
  /* Unknown provider. */
  c = new_conn("cc3", GRANT_CLIENT_CREDENTIALS);
  free(c->provider);
  c->provider = xstrdup("nope");
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), GRANTD_EPROVIDER_UNKNOWN);
  /* A pending authorization_code connection. */
  c = new_conn("ac1", GRANT_AUTHORIZATION_CODE);
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.rec.status, CONN_PENDING);
  res_free(&r);
  assert_int_equal(svc_conn_refresh(fx.svc, "ac1", conn_cb, &r), GRANTD_ECONFLICT);
  assert_int_equal(svc_conn_token(fx.svc, "ac1", 0, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, GRANTD_ECONFLICT);
  res_free(&r);
}

static void test_reopen_restores_schedule(void **state)
{
  (void)state;
  put_provider("acme");
  import("c1", 3600 * 1000);
  import("c2", 3600 * 1000);
  conn_t *c = new_conn("p1", GRANT_AUTHORIZATION_CODE);
  res_t r = {0};
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  res_free(&r);
  svc_close_fx();
  /* Make c2 overdue behind the service's back: it must ramp in. */
  conn_t rec;
  assert_int_equal(store_conn_get(fx.store, "c2", &rec), 0);
  rec.next_refresh_at = clock_now_ms() - 1000;
  int done = 0;
  assert_int_equal(store_conn_put(fx.store, &rec, NULL, NULL), 0);
  assert_int_equal(store_flush(fx.store, store_flag_cb, &done), 0);
  conn_free(&rec);
  run_until(&done);
  assert_int_equal(svc_open_fx(), 0);
  svc_stats_t st;
  svc_stats(fx.svc, &st);
  assert_int_equal(st.connections, 3);
  assert_int_equal(st.scheduled, 2);
  assert_int_equal(st.by_status[CONN_PENDING], 1);
  assert_int_equal(st.by_status[CONN_ACTIVE], 2);
  while (fx.svc->st.refresh_ok < 1 || svc__entry_find(fx.svc, "c2")->op)
    uv_run(&fx.loop, UV_RUN_ONCE);
  get("c2", &rec);
  assert_string_equal(rec.access_token, "at1");
  conn_free(&rec);
  assert_int_equal(mock.requests, 1);
}

/* Rewrites a stored connection's next_refresh_at behind the service's
 * back (the service must be closed). */
static void make_overdue(const char *id)
{
  conn_t rec;
  assert_int_equal(store_conn_get(fx.store, id, &rec), 0);
  rec.next_refresh_at = clock_now_ms() - 1000;
  int done = 0;
  assert_int_equal(store_conn_put(fx.store, &rec, NULL, NULL), 0);
  assert_int_equal(store_flush(fx.store, store_flag_cb, &done), 0);
  conn_free(&rec);
  run_until(&done);
}

/* Crash safety: a connection that was due at start-up (a refresh
 * of it may have been in flight when the previous process died) whose
 * first refresh after the restart gets invalid_grant is reported as
 * refresh_token_lost_in_restart (the provider's words kept), also after a
 * transient failure first; a connection that was not due, or a later
 * invalid_grant, stays a plain invalid_grant; a put clears the mark. */
static void test_restart_overdue_invalid_grant(void **state)
{
  (void)state;
  put_provider("acme");
  import("c1", 3600 * 1000);
  import("c2", 3600 * 1000);
  import("c3", 3600 * 1000);
  import("c4", 3600 * 1000);
  svc_close_fx();
  make_overdue("c1");
  make_overdue("c3");
  make_overdue("c4");
  mock.mode = MOCK_HOLD; /* nothing answered before the checks below */
  assert_int_equal(svc_open_fx(), 0);
  assert_true(svc__entry_find(fx.svc, "c1")->flags & CONN_ENTRY_RESTART_OVERDUE);
  assert_false(svc__entry_find(fx.svc, "c2")->flags & CONN_ENTRY_RESTART_OVERDUE);
  assert_true(svc__entry_find(fx.svc, "c4")->flags & CONN_ENTRY_RESTART_OVERDUE);
  /* c4 is put again (new tokens): its mark goes */
  conn_t *c = new_conn("c4", GRANT_REFRESH_TOKEN);
  c->access_token = xstrdup("at-new");
  c->refresh_token = xstrdup("rt-new");
  c->expires_at = clock_now_ms() + 3600 * 1000;
  res_t r = {0};
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  res_free(&r);
  assert_false(svc__entry_find(fx.svc, "c4")->flags & CONN_ENTRY_RESTART_OVERDUE);

  /* c1 and c3 ramp in; their first attempts fail transiently (the mark
   * stays), the retries get invalid_grant. */
  while (mock.nheld < 2)
    uv_run(&fx.loop, UV_RUN_ONCE);
  for (int i = 0; i < mock.nheld; i++)
    http_respond(mock.queue[i], 500, "text/plain", "oops", 4);
  mock.nheld = 0;
  mock.held = NULL;
  mock.outstanding = 0;
  mock.mode = MOCK_INVALID_GRANT;
  while (fx.svc->st.refresh_reauth < 2 || svc__entry_find(fx.svc, "c1")->op ||
         svc__entry_find(fx.svc, "c3")->op)
    uv_run(&fx.loop, UV_RUN_ONCE);
  conn_t rec;
  static const char *const lost[] = {"c1", "c3"};
  for (size_t i = 0; i < 2; i++) {
    get(lost[i], &rec);
    assert_int_equal(rec.status, CONN_NEEDS_REAUTH);
    assert_string_equal(rec.last_error_code, "refresh_token_lost_in_restart");
    assert_int_equal(rec.last_error_http, 400);
    assert_non_null(strstr(rec.last_error_message, "after a restart"));
    assert_non_null(strstr(rec.last_error_message, "invalid_grant: revoked"));
    assert_int_equal(rec.next_refresh_at, 0);
    assert_false(svc__entry_find(fx.svc, lost[i])->flags & CONN_ENTRY_RESTART_OVERDUE);
    conn_free(&rec);
  }
  assert_int_equal(mock.refresh_grants, 4);

  /* c2 was not due at start: a plain invalid_grant. */
  refresh("c2", &r);
  assert_int_equal(r.err, GRANTD_EREAUTH);
  res_free(&r);
  get("c2", &rec);
  assert_int_equal(rec.status, CONN_NEEDS_REAUTH);
  assert_string_equal(rec.last_error_code, "invalid_grant");
  assert_string_equal(rec.last_error_message, "revoked");
  conn_free(&rec);
  /* c4 (put after start) likewise. */
  refresh("c4", &r);
  res_free(&r);
  get("c4", &rec);
  assert_string_equal(rec.last_error_code, "invalid_grant");
  conn_free(&rec);

  /* The metric counted the two. */
  buf_t m = BUF_INIT;
  metrics_render(&m);
  assert_non_null(strstr(m.data, "grantd_rotation_lost_on_restart_total 2"));
  buf_free(&m);
}

static void del_cb(void *arg, int err, const svc_revoke_report_t *rep)
{
  (void)rep;
  res_t *r = arg;
  r->done++;
  r->err = err;
}

static void test_delete_during_refresh(void **state)
{
  (void)state;
  put_provider("acme");
  import("c1", 3600 * 1000);
  mock.mode = MOCK_HOLD;
  res_t r = {0}, d = {0};
  assert_int_equal(svc_conn_refresh(fx.svc, "c1", conn_cb, &r), 0);
  while (mock.held == NULL)
    uv_run(&fx.loop, UV_RUN_ONCE);
  assert_int_equal(svc_conn_delete(fx.svc, "c1", false, del_cb, &d), 0);
  run_until(&d.done);
  assert_int_equal(d.err, 0);
  run_until(&r.done);
  assert_int_equal(r.err, GRANTD_ENOT_FOUND);
  /* The provider answers now: the result is dropped, nothing stored. */
  mock.mode = MOCK_OK;
  http_req_t *h = mock.held;
  mock.held = NULL;
  mock.queue[0] = NULL;
  mock_answer_ok(h, "refresh_token");
  while (fx.svc->ops > 0 || fx.svc->sending > 0)
    uv_run(&fx.loop, UV_RUN_ONCE);
  int done = 0;
  assert_int_equal(store_flush(fx.store, store_flag_cb, &done), 0);
  run_until(&done);
  conn_t c;
  assert_int_equal(store_conn_get(fx.store, "c1", &c), GRANTD_ENOT_FOUND);
  assert_int_equal(svc_conn_get(fx.svc, "c1", &c), GRANTD_ENOT_FOUND);
  svc_stats_t st;
  svc_stats(fx.svc, &st);
  assert_int_equal(st.connections, 0);
  assert_int_equal(st.scheduled, 0);
  assert_int_equal(svc_conn_delete(fx.svc, "c1", false, del_cb, &d), GRANTD_ENOT_FOUND);
  res_free(&r);
}

static void test_provider_crud(void **state)
{
  (void)state;
  put_provider("acme");
  provider_t p;
  assert_int_equal(svc_provider_get(fx.svc, "acme", &p), 0);
  assert_string_equal(p.token_url, fx.token_url);
  assert_true(p.created_at > 0);
  provider_free(&p);
  assert_int_equal(svc_provider_get(fx.svc, "nope", &p), GRANTD_ENOT_FOUND);
  import("c1", 3600 * 1000);
  res_t r = {0};
  assert_int_equal(svc_provider_delete(fx.svc, "acme", prov_cb, &r), GRANTD_ECONFLICT);
  res_t d = {0};
  assert_int_equal(svc_conn_delete(fx.svc, "c1", true, del_cb, &d), 0);
  run_until(&d.done);
  assert_int_equal(d.err, 0);
  assert_int_equal(svc_provider_delete(fx.svc, "acme", prov_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_int_equal(svc_provider_get(fx.svc, "acme", &p), GRANTD_ENOT_FOUND);
  assert_int_equal(svc_provider_delete(fx.svc, "acme", prov_cb, &r), GRANTD_ENOT_FOUND);
  /* Issuer-only providers go through discovery; issuer.example (RFC 2606)
   * never resolves, so discovery fails and nothing is stored. */
  provider_t *q = xcalloc(1, sizeof *q);
  q->name = xstrdup("disc");
  q->issuer = xstrdup("https://issuer.example");
  r.done = 0;
  assert_int_equal(svc_provider_put(fx.svc, q, prov_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, GRANTD_EDISCOVERY);
  assert_int_equal(svc_provider_get(fx.svc, "disc", &p), GRANTD_ENOT_FOUND);
}

static void test_replace_during_refresh(void **state)
{
  (void)state;
  put_provider("acme");
  import("c1", 3600 * 1000);
  mock.mode = MOCK_HOLD;
  res_t r = {0};
  assert_int_equal(svc_conn_token(fx.svc, "c1", 7200 * 1000, conn_cb, &r), 0);
  while (mock.held == NULL)
    uv_run(&fx.loop, UV_RUN_ONCE);
  /* Replace with new imported tokens: the waiting reader gets them. */
  conn_t *c = new_conn("c1", GRANT_REFRESH_TOKEN);
  c->access_token = xstrdup("new-at");
  c->refresh_token = xstrdup("new-rt");
  c->expires_at = clock_now_ms() + 3600 * 1000;
  res_t p = {0};
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &p), 0);
  run_until(&p.done);
  run_until(&r.done);
  assert_int_equal(p.err, 0);
  assert_int_equal(p.rec.revision, 2);
  assert_int_equal(r.err, 0);
  assert_string_equal(r.rec.access_token, "new-at");
  mock.mode = MOCK_OK;
  http_req_t *h = mock.held;
  mock.held = NULL;
  mock.queue[0] = NULL;
  mock_answer_ok(h, "refresh_token");
  while (fx.svc->ops > 0 || fx.svc->sending > 0)
    uv_run(&fx.loop, UV_RUN_ONCE);
  conn_t got;
  get("c1", &got);
  assert_string_equal(got.access_token, "new-at"); /* the old refresh's result was dropped */
  assert_int_equal(got.revision, 2);
  conn_free(&got);
  res_free(&r);
  res_free(&p);
}

static void test_limits(void **state)
{
  (void)state;
  put_provider("acme");
  char id[8];
  for (int i = 0; i < 5; i++) {
    snprintf(id, sizeof id, "c%d", i);
    import(id, 3600 * 1000);
  }
  mock.mode = MOCK_HOLD;
  res_t r[5];
  memset(r, 0, sizeof r);
  for (int i = 0; i < 5; i++) {
    snprintf(id, sizeof id, "c%d", i);
    assert_int_equal(svc_conn_refresh(fx.svc, id, conn_cb, &r[i]), 0);
  }
  /* max_inflight_per_host = 2: two go out, three wait in order. */
  svc_stats_t st;
  svc_stats(fx.svc, &st);
  assert_int_equal(st.inflight, 2);
  assert_int_equal(st.queued, 3);
  while (mock.nheld < 2)
    uv_run(&fx.loop, UV_RUN_ONCE);
  /* Release one at a time; each release lets the next one out. */
  int released = 0;
  while (released < 5) {
    while (mock.nheld <= released)
      uv_run(&fx.loop, UV_RUN_ONCE);
    http_req_t *h = mock.queue[released];
    mock.queue[released] = NULL;
    mock.outstanding--;
    released++;
    mock_answer_ok(h, "refresh_token");
    run_until(&r[released - 1].done);
    assert_int_equal(r[released - 1].err, 0);
    res_free(&r[released - 1]);
  }
  mock.held = NULL;
  assert_int_equal(mock.max_outstanding, 2); /* never more than the host limit */
  assert_int_equal(mock.requests, 5);
  svc_stats(fx.svc, &st);
  assert_int_equal(st.inflight, 0);
  assert_int_equal(st.queued, 0);
  assert_int_equal(st.refresh_ok, 5);
}

static void short_timeout(provider_t *p)
{
  p->timeout_ms = 300;
}

static void test_retry_after_and_unknown_outcome(void **state)
{
  (void)state;
  prov_tweak = short_timeout;
  put_provider("acme");
  import("c1", 3600 * 1000);
  mock.mode = MOCK_429;
  res_t r = {0};
  int64_t t0 = clock_now_ms();
  refresh("c1", &r);
  assert_int_equal(r.err, GRANTD_EUPSTREAM);
  assert_int_equal(r.rec.status, CONN_REFRESH_FAILING);
  assert_int_equal(r.rec.last_error_http, 429);
  assert_true(r.rec.next_refresh_at >= t0 + 30000); /* Retry-After honoured */
  res_free(&r);
  /* A request that timed out after it was written: outcome unknown. */
  mock.mode = MOCK_HOLD;
  refresh("c1", &r);
  assert_int_equal(r.err, GRANTD_EUPSTREAM);
  assert_string_equal(r.rec.last_error_code, "refresh_outcome_unknown");
  assert_int_equal(r.rec.failures, 2);
  assert_string_equal(r.rec.refresh_token, "rt0");
  res_free(&r);
  svc_stats_t st;
  svc_stats(fx.svc, &st);
  assert_int_equal(st.refresh_unknown, 1);
  assert_int_equal(st.refresh_transient, 1);
}

static void rate_limited(provider_t *p)
{
  p->rate_limit_count = 1;
  p->rate_limit_window = 3600;
}

static void test_rate_limit_then_close(void **state)
{
  (void)state;
  prov_tweak = rate_limited;
  put_provider("acme");
  import("c1", 3600 * 1000);
  import("c2", 3600 * 1000);
  res_t a = {0}, b = {0};
  refresh("c1", &a);
  assert_int_equal(a.err, 0);
  res_free(&a);
  /* The second request waits for the provider's window. */
  assert_int_equal(svc_conn_refresh(fx.svc, "c2", conn_cb, &b), 0);
  svc_stats_t st;
  svc_stats(fx.svc, &st);
  assert_int_equal(st.queued, 1);
  for (int i = 0; i < 5; i++)
    uv_run(&fx.loop, UV_RUN_NOWAIT);
  assert_int_equal(b.done, 0);
  assert_int_equal(mock.requests, 1);
  /* Closing ends waiting work with GRANTD_ESHUTDOWN; new work is refused. */
  int done = 0;
  svc_close(fx.svc, flag_cb, &done);
  assert_int_equal(svc_conn_token(fx.svc, "c1", 0, conn_cb, &a), GRANTD_ESHUTDOWN);
  run_until(&done);
  assert_int_equal(b.done, 1);
  assert_int_equal(b.err, GRANTD_ESHUTDOWN);
  res_free(&b);
  svc_free(fx.svc);
  fx.svc = NULL;
}

static void test_no_refresh_token(void **state)
{
  (void)state;
  put_provider("acme");
  /* Valid access token, no refresh token: served as is, no request. */
  conn_t *c = new_conn("c1", GRANT_REFRESH_TOKEN);
  c->access_token = xstrdup("only-at");
  c->expires_at = clock_now_ms() + 600 * 1000;
  res_t r = {0};
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  res_free(&r);
  assert_int_equal(svc_conn_token(fx.svc, "c1", 3600 * 1000, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_string_equal(r.rec.access_token, "only-at");
  res_free(&r);
  /* Expired, no refresh token: needs_reauth without asking the provider. */
  c = new_conn("c2", GRANT_REFRESH_TOKEN);
  c->access_token = xstrdup("old-at");
  c->expires_at = clock_now_ms() - 1000;
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  res_free(&r);
  assert_int_equal(svc_conn_token(fx.svc, "c2", 0, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, GRANTD_EREAUTH);
  assert_int_equal(r.rec.status, CONN_NEEDS_REAUTH);
  assert_string_equal(r.rec.last_error_code, "no_refresh_token");
  res_free(&r);
  assert_int_equal(mock.requests, 0);
  /* Listing goes through the store's by_tenant index. */
  conn_t *items = NULL;
  size_t n = 0;
  char *next = NULL;
  assert_int_equal(svc_conn_list(fx.svc, "t1", -1, NULL, 10, &items, &n, &next), 0);
  assert_int_equal(n, 2);
  for (size_t i = 0; i < n; i++)
    conn_free(&items[i]);
  free(items);
  free(next);
}

static void no_insecure(provider_t *p)
{
  p->allow_insecure_http = false;
}

static void test_insecure_url_is_config_error(void **state)
{
  (void)state;
  prov_tweak = no_insecure;
  put_provider("acme");
  conn_t *c = new_conn("cc1", GRANT_CLIENT_CREDENTIALS);
  res_t r = {0};
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.rec.status, CONN_ERROR);
  assert_string_equal(r.rec.last_error_code, "insecure_url");
  assert_int_equal(r.rec.next_refresh_at, 0);
  res_free(&r);
  assert_int_equal(mock.requests, 0);
  svc_stats_t st;
  svc_stats(fx.svc, &st);
  assert_int_equal(st.by_status[CONN_ERROR], 1);
  assert_int_equal(st.scheduled, 0);
}

/* Writes raw bytes under a key of the connections database, behind the
 * store's back (the store must be closed). */
static void raw_put(const char *key, const char *val)
{
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  assert_int_equal(mdb_env_create(&env), 0);
  assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
  assert_int_equal(mdb_env_open(env, fx.dir, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "connections", 0, &dbi), 0);
  MDB_val k = {strlen(key), (void *)key}, v = {strlen(val), (void *)val};
  assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

static void test_undecodable_record_kept(void **state)
{
  (void)state;
  put_provider("acme");
  import("c1", 3600 * 1000);
  svc_close_fx();
  store_close_fx();
  raw_put("bad", "\x91\xc1garbage");
  assert_int_equal(store_open_fx(), 0);
  assert_int_equal(svc_open_fx(), 0);
  svc_stats_t st;
  svc_stats(fx.svc, &st);
  assert_int_equal(st.decode_errors, 1);
  assert_int_equal(st.connections, 2); /* counted and kept, not dropped */
  assert_int_equal(st.scheduled, 1);
  conn_t c;
  int rc = svc_conn_get(fx.svc, "bad", &c);
  assert_true(rc == GRANTD_ESTORE_DECODE || rc == GRANTD_ESTORE_VERSION);
  res_t r = {0};
  assert_int_equal(svc_conn_token(fx.svc, "bad", 0, conn_cb, &r), rc);
  /* It can be replaced by a put ... */
  conn_t *n = new_conn("bad", GRANT_REFRESH_TOKEN);
  n->access_token = xstrdup("fresh");
  n->refresh_token = xstrdup("rt0");
  n->expires_at = clock_now_ms() + 3600 * 1000;
  assert_int_equal(svc_conn_put(fx.svc, n, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.rec.status, CONN_ACTIVE);
  res_free(&r);
  svc_stats(fx.svc, &st);
  assert_int_equal(st.connections, 2);
  assert_int_equal(st.by_status[CONN_ERROR], 0);
  assert_int_equal(st.by_status[CONN_ACTIVE], 2);
  /* ... and a delete of an unreadable one works too (after another
   * corruption). */
  svc_close_fx();
  store_close_fx();
  raw_put("bad", "\xc1");
  assert_int_equal(store_open_fx(), 0);
  assert_int_equal(svc_open_fx(), 0);
  assert_int_equal(svc_conn_delete(fx.svc, "bad", true, del_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_int_equal(svc_conn_get(fx.svc, "bad", &c), GRANTD_ENOT_FOUND);
}

static void test_commit_refused(void **state)
{
  (void)state;
  put_provider("acme");
  char id[600];
  memset(id, 'x', sizeof id - 1);
  id[sizeof id - 1] = '\0';
  /* The store refuses keys over 511 bytes: an import fails at once ... */
  conn_t *c = new_conn(id, GRANT_REFRESH_TOKEN);
  c->access_token = xstrdup("at");
  res_t r = {0};
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), GRANTD_EINVALID);
  svc_stats_t st;
  svc_stats(fx.svc, &st);
  assert_int_equal(st.connections, 0);
  /* ... and a client_credentials grant gets its token, then fails to
   * commit: the caller gets the error, nothing stays in the index. */
  c = new_conn(id, GRANT_CLIENT_CREDENTIALS);
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, GRANTD_EINVALID);
  assert_false(r.has_rec);
  assert_int_equal(mock.cc_grants, 1);
  svc_stats(fx.svc, &st);
  assert_int_equal(st.connections, 0);
  assert_int_equal(st.scheduled, 0);
}

/* Review fix 1: a read whose stored token qualifies never waits behind a
 * refresh in flight; one that needs a refresh joins it. */
static void test_read_not_blocked_by_refresh(void **state)
{
  (void)state;
  put_provider("acme");
  import("c1", 3600 * 1000);
  mock.mode = MOCK_HOLD;
  res_t f = {0};
  assert_int_equal(svc_conn_refresh(fx.svc, "c1", conn_cb, &f), 0);
  while (mock.held == NULL)
    uv_run(&fx.loop, UV_RUN_ONCE);
  assert_int_equal(svc__entry_find(fx.svc, "c1")->op->state, SVC_OP_SENDING);
  res_t r = {0}, j = {0};
  assert_int_equal(svc_conn_token(fx.svc, "c1", 0, conn_cb, &r), 0);
  assert_int_equal(svc_conn_token(fx.svc, "c1", 7200 * 1000, conn_cb, &j), 0);
  run_until(&r.done); /* the provider still holds the request */
  assert_int_equal(r.err, 0);
  assert_string_equal(r.rec.access_token, "at0");
  assert_int_equal(j.done, 0);
  assert_int_equal(f.done, 0);
  mock.mode = MOCK_OK;
  http_req_t *h = mock.held;
  mock.held = NULL;
  mock.queue[0] = NULL;
  mock_answer_ok(h, "refresh_token");
  run_until(&j.done);
  run_until(&f.done);
  assert_int_equal(j.err, 0);
  assert_string_equal(j.rec.access_token, "at1");
  assert_int_equal(f.err, 0);
  assert_int_equal(mock.requests, 1);
  res_free(&r);
  res_free(&j);
  res_free(&f);
}

static int read_fault; /* the error the next refresh read returns */

static int faulty_get(store_t *s, const char *id, conn_t *out)
{
  int rc = read_fault;
  read_fault = 0;
  svc__conn_get = store_conn_get;
  if (rc != 0) {
    memset(out, 0, sizeof *out);
    return rc;
  }
  return store_conn_get(s, id, out);
}

/* Review fix 2: a refresh that cannot read its record keeps the connection
 * scheduled after a passing failure; an unreadable record stays
 * unscheduled on purpose. */
static void test_read_failure_keeps_schedule(void **state)
{
  (void)state;
  put_provider("acme");
  import("c1", 3600 * 1000);
  svc_stats_t st;
  svc_stats(fx.svc, &st);
  assert_int_equal(st.scheduled, 1);
  read_fault = GRANTD_ESTORE_IO;
  svc__conn_get = faulty_get;
  res_t r = {0};
  refresh("c1", &r);
  assert_int_equal(r.err, GRANTD_ESTORE_IO);
  svc_stats(fx.svc, &st);
  assert_int_equal(st.scheduled, 1);
  conn_entry_t *e = svc__entry_find(fx.svc, "c1");
  assert_non_null(e);
  assert_null(e->op);
  assert_true(e->next_refresh_at > clock_now_ms());
  assert_int_equal(mock.requests, 0);
  res_free(&r);
  read_fault = GRANTD_ESTORE_DECODE;
  svc__conn_get = faulty_get;
  refresh("c1", &r);
  assert_int_equal(r.err, GRANTD_ESTORE_DECODE);
  svc_stats(fx.svc, &st);
  assert_int_equal(st.scheduled, 0);
  assert_int_equal(st.connections, 1);
  res_free(&r);
  /* The store is fine again: a refresh works. */
  refresh("c1", &r);
  assert_int_equal(r.err, 0);
  svc_stats(fx.svc, &st);
  assert_int_equal(st.scheduled, 1);
  res_free(&r);
}

static int put_faults;   /* commits that fail from now on (-1 = all) */
static int put_attempts; /* commits tried while the fault is installed */

static int faulty_put(store_t *s, const conn_t *c, const conn_t *prev, store_cb cb, void *arg)
{
  put_attempts++;
  if (put_faults != 0) {
    if (put_faults > 0)
      put_faults--;
    return GRANTD_ESTORE_IO;
  }
  return store_conn_replace(s, c, prev, cb, arg);
}

/* Review fix 3: a rotated refresh token whose commit fails is kept and its
 * commit retried; readers are served from the stored record meanwhile. */
static void test_rotated_token_commit_retry(void **state)
{
  (void)state;
  put_provider("acme");
  mock.rotate = 1;
  import("c1", 3600 * 1000);
  put_faults = 1;
  put_attempts = 0;
  svc__conn_put = faulty_put;
  res_t r = {0};
  refresh("c1", &r);
  assert_int_equal(r.err, GRANTD_ESTORE_IO);
  assert_string_equal(r.rec.refresh_token, "rt0"); /* the stored record, not the new one */
  res_free(&r);
  conn_entry_t *e = svc__entry_find(fx.svc, "c1");
  assert_non_null(e->op);
  assert_int_equal(e->op->state, SVC_OP_RETRY_WAIT);
  /* A read is served at once from the stored record. */
  assert_int_equal(svc_conn_token(fx.svc, "c1", 0, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_string_equal(r.rec.access_token, "at0");
  res_free(&r);
  /* A forced refresh joins the pending commit instead of replaying rt0. */
  assert_int_equal(svc_conn_refresh(fx.svc, "c1", conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_string_equal(r.rec.refresh_token, "rt1");
  res_free(&r);
  assert_int_equal(put_attempts, 2);
  svc__conn_put = store_conn_replace;
  conn_t c;
  get("c1", &c);
  assert_string_equal(c.refresh_token, "rt1");
  assert_string_equal(c.access_token, "at1");
  assert_int_equal(c.revision, 2);
  conn_free(&c);
  svc_stats_t st;
  svc_stats(fx.svc, &st);
  assert_int_equal(st.scheduled, 1);
  refresh("c1", &r);
  assert_int_equal(r.err, 0);
  assert_string_equal(r.rec.refresh_token, "rt2");
  res_free(&r);
  assert_int_equal(mock.replays, 0);
  assert_int_equal(mock.refresh_grants, 2);
  /* Failing for good: close makes one last attempt, then gives up. */
  put_faults = -1;
  put_attempts = 0;
  svc__conn_put = faulty_put;
  refresh("c1", &r);
  assert_int_equal(r.err, GRANTD_ESTORE_IO);
  res_free(&r);
  assert_int_equal(put_attempts, 1);
  svc_close_fx();
  assert_int_equal(put_attempts, 2);
  svc__conn_put = store_conn_replace;
  put_faults = 0;
}

/* Review fix 4: shutdown does not wait for a hung provider. A request
 * that was written is cancelled and committed as an unknown outcome; one
 * that was not is dropped; readers get the stored token while it is valid. */
static void test_close_cancels_inflight(void **state)
{
  (void)state;
  put_provider("acme");
  import("c1", 3600 * 1000);
  import("c2", 3600 * 1000);
  mock.mode = MOCK_HOLD;
  res_t r = {0}, f = {0};
  assert_int_equal(svc_conn_token(fx.svc, "c1", 7200 * 1000, conn_cb, &r), 0);
  while (mock.held == NULL)
    uv_run(&fx.loop, UV_RUN_ONCE);
  /* c2's request is handed to the http client but not written yet. */
  assert_int_equal(svc_conn_refresh(fx.svc, "c2", conn_cb, &f), 0);
  assert_int_equal(fx.svc->sending, 2);
  int done = 0;
  svc_close(fx.svc, flag_cb, &done);
  run_until(&done);
  assert_int_equal(mock.nheld, 1); /* the provider never answered */
  assert_int_equal(r.done, 1);
  assert_int_equal(r.err, 0);
  assert_string_equal(r.rec.access_token, "at0");
  assert_string_equal(r.rec.last_error_code, "refresh_outcome_unknown");
  assert_int_equal(f.done, 1);
  assert_int_equal(f.err, GRANTD_ESHUTDOWN);
  svc_free(fx.svc);
  fx.svc = NULL;
  conn_t c;
  assert_int_equal(store_conn_get(fx.store, "c1", &c), 0);
  assert_string_equal(c.last_error_code, "refresh_outcome_unknown");
  assert_int_equal(c.revision, 2);
  conn_free(&c);
  assert_int_equal(store_conn_get(fx.store, "c2", &c), 0);
  assert_null(c.last_error_code);
  assert_int_equal(c.revision, 1);
  conn_free(&c);
  res_free(&r);
  res_free(&f);
}

/* svc_drain: no token request goes out any more; valid tokens are still
 * served, also to a reader that asked for more time than is left. */
static void test_drain(void **state)
{
  (void)state;
  put_provider("acme");
  import("c1", 3600 * 1000);
  svc_drain(fx.svc);
  svc_drain(fx.svc);
  res_t r = {0};
  assert_int_equal(svc_conn_token(fx.svc, "c1", 7200 * 1000, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_string_equal(r.rec.access_token, "at0");
  res_free(&r);
  assert_int_equal(svc_conn_refresh(fx.svc, "c1", conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, GRANTD_ESHUTDOWN);
  res_free(&r);
  assert_int_equal(mock.requests, 0);
  conn_t c;
  get("c1", &c);
  assert_int_equal(c.revision, 1);
  conn_free(&c);
}

static void release_held(void)
{
  mock.mode = MOCK_OK;
  http_req_t *h = mock.held;
  mock.held = NULL;
  mock.queue[0] = NULL;
  mock.nheld = 0;
  mock_answer_ok(h, "refresh_token");
}

/* Review fix 5: a put re-importing the tokens a refresh in flight started
 * from waits for it and keeps the rotated refresh token; a delete with
 * revocation waits too (it revokes what the refresh ends with). */
static void test_put_and_revoke_wait_for_refresh(void **state)
{
  (void)state;
  put_provider("acme");
  mock.rotate = 1;
  import("c1", 3600 * 1000);
  mock.mode = MOCK_HOLD;
  res_t f = {0}, p = {0};
  assert_int_equal(svc_conn_refresh(fx.svc, "c1", conn_cb, &f), 0);
  while (mock.held == NULL)
    uv_run(&fx.loop, UV_RUN_ONCE);
  conn_t *c = new_conn("c1", GRANT_REFRESH_TOKEN);
  free(c->tenant);
  c->tenant = xstrdup("t2");
  c->access_token = xstrdup("at0");
  c->refresh_token = xstrdup("rt0");
  c->expires_at = clock_now_ms() + 3600 * 1000;
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &p), 0);
  for (int i = 0; i < 5; i++)
    uv_run(&fx.loop, UV_RUN_NOWAIT);
  assert_int_equal(p.done, 0); /* waits for the refresh */
  release_held();
  run_until(&f.done);
  run_until(&p.done);
  assert_int_equal(f.err, 0);
  assert_string_equal(f.rec.refresh_token, "rt1");
  assert_int_equal(p.err, 0);
  assert_string_equal(p.rec.tenant, "t2");
  assert_string_equal(p.rec.refresh_token, "rt1");
  assert_string_equal(p.rec.access_token, "at1");
  assert_int_equal(p.rec.revision, 3);
  res_free(&f);
  res_free(&p);
  refresh("c1", &f);
  assert_int_equal(f.err, 0);
  assert_string_equal(f.rec.refresh_token, "rt2");
  res_free(&f);
  assert_int_equal(mock.replays, 0);
  /* Delete with revocation during a refresh: the refresh completes and is
   * stored first, then the connection is deleted. */
  mock.mode = MOCK_HOLD;
  assert_int_equal(svc_conn_refresh(fx.svc, "c1", conn_cb, &f), 0);
  while (mock.held == NULL)
    uv_run(&fx.loop, UV_RUN_ONCE);
  res_t d = {0};
  assert_int_equal(svc_conn_delete(fx.svc, "c1", true, del_cb, &d), 0);
  for (int i = 0; i < 5; i++)
    uv_run(&fx.loop, UV_RUN_NOWAIT);
  assert_int_equal(d.done, 0);
  assert_int_equal(f.done, 0);
  release_held();
  run_until(&d.done);
  assert_int_equal(d.err, 0);
  assert_int_equal(f.err, 0);
  assert_string_equal(f.rec.refresh_token, "rt3");
  res_free(&f);
  conn_t got;
  assert_int_equal(svc_conn_get(fx.svc, "c1", &got), GRANTD_ENOT_FOUND);
  assert_int_equal(mock.replays, 0);
}

/* Review fix 6: reads of connections without a refresh token never wait
 * for a token-request slot or the provider's rate limit. */
static void test_no_refresh_token_skips_limits(void **state)
{
  (void)state;
  prov_tweak = rate_limited; /* 1 request per hour */
  put_provider("acme");
  import("c0", 3600 * 1000);
  res_t r = {0};
  refresh("c0", &r); /* uses the hour's budget */
  assert_int_equal(r.err, 0);
  res_free(&r);
  conn_t *c = new_conn("c1", GRANT_REFRESH_TOKEN);
  c->access_token = xstrdup("only-at");
  c->expires_at = clock_now_ms() + 600 * 1000;
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  res_free(&r);
  c = new_conn("c2", GRANT_REFRESH_TOKEN);
  c->access_token = xstrdup("old-at");
  c->expires_at = clock_now_ms() - 1000;
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  res_free(&r);
  res_t a = {0}, b = {0};
  assert_int_equal(svc_conn_token(fx.svc, "c1", 3600 * 1000, conn_cb, &a), 0);
  assert_int_equal(svc_conn_token(fx.svc, "c2", 0, conn_cb, &b), 0);
  assert_int_equal(fx.svc->queued, 0);
  run_until(&a.done);
  run_until(&b.done);
  assert_int_equal(a.err, 0);
  assert_string_equal(a.rec.access_token, "only-at");
  assert_int_equal(b.err, GRANTD_EREAUTH);
  assert_int_equal(b.rec.status, CONN_NEEDS_REAUTH);
  assert_string_equal(b.rec.last_error_code, "no_refresh_token");
  assert_int_equal(mock.requests, 1);
  res_free(&a);
  res_free(&b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_import_scheduled_refresh, setup, teardown),
    cmocka_unit_test_setup_teardown(test_single_flight, setup, teardown),
    cmocka_unit_test_setup_teardown(test_forced_coalesce_and_rotation, setup, teardown),
    cmocka_unit_test_setup_teardown(test_transient_then_recovery, setup, teardown),
    cmocka_unit_test_setup_teardown(test_invalid_grant_needs_reauth, setup, teardown),
    cmocka_unit_test_setup_teardown(test_client_credentials_put, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reopen_restores_schedule, setup, teardown),
    cmocka_unit_test_setup_teardown(test_restart_overdue_invalid_grant, setup, teardown),
    cmocka_unit_test_setup_teardown(test_delete_during_refresh, setup, teardown),
    cmocka_unit_test_setup_teardown(test_provider_crud, setup, teardown),
    cmocka_unit_test_setup_teardown(test_replace_during_refresh, setup, teardown),
    cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
    cmocka_unit_test_setup_teardown(test_retry_after_and_unknown_outcome, setup, teardown),
    cmocka_unit_test_setup_teardown(test_rate_limit_then_close, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_refresh_token, setup, teardown),
    cmocka_unit_test_setup_teardown(test_insecure_url_is_config_error, setup, teardown),
    cmocka_unit_test_setup_teardown(test_undecodable_record_kept, setup, teardown),
    cmocka_unit_test_setup_teardown(test_commit_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_read_not_blocked_by_refresh, setup, teardown),
    cmocka_unit_test_setup_teardown(test_read_failure_keeps_schedule, setup, teardown),
    cmocka_unit_test_setup_teardown(test_rotated_token_commit_retry, setup, teardown),
    cmocka_unit_test_setup_teardown(test_close_cancels_inflight, setup, teardown),
    cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
    cmocka_unit_test_setup_teardown(test_put_and_revoke_wait_for_refresh, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_refresh_token_skips_limits, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
