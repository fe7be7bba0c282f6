/*
 * test_connect.c - the connect flow in-process: svc_authorize,
 * svc_callback, svc__discover and svc__revoke against a tiny plain-HTTP
 * provider (token, revocation and metadata endpoints) served by
 * net/http_server on the test's own loop, with a real store in a temp dir
 * and the real HTTP client. The provider allows http:// for it.
 *
 * Nothing is timed: each step runs the loop until its callback has run
 * (ctest's timeout catches a hang). Expiry uses the fake clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "support.h"

#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/url.h"
#include "net/addr_policy.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "oauth/pkce.h"
#include "service/internal.h"
#include "store/store.h"

#define ISSUER_PATH "/tenant"
#define PUBLIC_URL "http://grantd.test/"
#define CALLBACK_URL "http://grantd.test/oauth/callback"
#define AUTHZ_URL "https://auth.example.com/oauth/authorize?tenant=abc"

/* ---- the mock provider ------------------------------------------------------ */

enum { TOKEN_MODE_OK, TOKEN_MODE_INVALID_GRANT };
enum { REVOKE_MODE_OK, REVOKE_MODE_503_REFRESH };
enum { WK_OAUTH, WK_OIDC, WK_MISMATCH, WK_NONE, WK_HTML };

typedef struct {
  int token_mode;
  int token_calls;
  char token_body[2048]; /* the last token request's body */
  int revoke_mode;
  int revoke_calls;
  char revoke_hint[4][32];
  char revoke_token[4][32];
  int wk_mode;
  int wk_oauth_calls;
  int wk_oidc_calls;
  char base[64]; /* http://127.0.0.1:port */
} mock_t;

static mock_t mock;

static void respond_json(http_req_t *req, int status, const char *body)
{
  http_respond(req, status, "application/json", body, strlen(body));
}

static void serve_doc(http_req_t *req, const char *issuer, bool s256)
{
  char doc[1500];
  snprintf(doc, sizeof doc,
           "{\"issuer\":\"%s\",\"authorization_endpoint\":\"%s/authorize\","
           "\"token_endpoint\":\"%s/token\",\"revocation_endpoint\":\"%s/revoke\","
           "\"code_challenge_methods_supported\":[%s],"
           "\"token_endpoint_auth_methods_supported\":[%s],"
           "\"authorization_response_iss_parameter_supported\":%s}",
           issuer, mock.base, mock.base, mock.base, s256 ? "\"plain\",\"S256\"" : "\"plain\"",
           s256 ? "\"client_secret_basic\",\"client_secret_post\""
                : "\"client_secret_post\",\"private_key_jwt\"",
           /* A JSON string "true" is not the boolean: it does not count. */
           s256 ? "true" : "\"true\"");
  respond_json(req, 200, doc);
}

static void mock_handler(http_req_t *req, void *arg)
{
  (void)arg;
  const char *path = http_req_path(req);
  char issuer[128];
  snprintf(issuer, sizeof issuer, "%s%s", mock.base, ISSUER_PATH);
  size_t n;
  const char *b = http_req_body(req, &n);

  if (strcmp(path, "/token") == 0) {
    mock.token_calls++;
    snprintf(mock.token_body, sizeof mock.token_body, "%s", b);
    if (mock.token_mode == TOKEN_MODE_INVALID_GRANT) {
      respond_json(req, 400, "{\"error\":\"invalid_grant\",\"error_description\":\"code used\"}");
      return;
    }
    char body[300];
    snprintf(body, sizeof body,
             "{\"access_token\":\"at-%d\",\"refresh_token\":\"rt-%d\",\"token_type\":\"bearer\","
             "\"expires_in\":3600,\"instance_url\":\"https://na1.example.com\"}",
             mock.token_calls, mock.token_calls);
    respond_json(req, 200, body);
    return;
  }
  if (strcmp(path, "/revoke") == 0) {
    form_t f = FORM_INIT;
    assert_int_equal(form_parse(b, n, &f), 0);
    const char *hint = form_get(&f, "token_type_hint");
    const char *tok = form_get(&f, "token");
    int i = mock.revoke_calls++;
    if (i < 4) {
      snprintf(mock.revoke_hint[i], sizeof mock.revoke_hint[i], "%s", hint ? hint : "");
      snprintf(mock.revoke_token[i], sizeof mock.revoke_token[i], "%s", tok ? tok : "");
    }
    bool refresh = hint && strcmp(hint, "refresh_token") == 0;
    form_free(&f);
    if (mock.revoke_mode == REVOKE_MODE_503_REFRESH && refresh)
      respond_json(req, 503, "{\"error\":\"temporarily_unavailable\"}");
    else
      http_respond(req, 200, NULL, NULL, 0);
    return;
  }
  if (strcmp(path, "/.well-known/oauth-authorization-server" ISSUER_PATH) == 0) {
    mock.wk_oauth_calls++;
    if (mock.wk_mode == WK_OAUTH)
      serve_doc(req, issuer, false);
    else if (mock.wk_mode == WK_MISMATCH)
      serve_doc(req, "http://evil.example.com/tenant", false);
    else if (mock.wk_mode == WK_HTML)
      http_respond(req, 200, "text/html", "<html>hi</html>", 15);
    else
      http_respond(req, 404, "text/plain", "no", 2);
    return;
  }
  if (strcmp(path, ISSUER_PATH "/.well-known/openid-configuration") == 0) {
    mock.wk_oidc_calls++;
    if (mock.wk_mode == WK_OIDC)
      serve_doc(req, issuer, true);
    else
      http_respond(req, 404, "text/plain", "no", 2);
    return;
  }
  http_respond(req, 404, "text/plain", "no", 2);
}

/* ---- fixture ------------------------------------------------------------------- */

typedef struct {
  uv_loop_t loop;
  const char *dir;
  seal_keyring_t *kr;
  store_t *store;
  http_client_t *http;
  http_server_t *srv;
  svc_t *svc;
} fx_t;

static fx_t fx;
static addr_policy_t *fx_policy;

static void run_until(int *flag)
{
  while (!*flag)
    uv_run(&fx.loop, UV_RUN_ONCE);
}

static void flag_cb(void *arg)
{
  *(int *)arg = 1;
}

static int setup(void **state)
{
  (void)state;
  memset(&mock, 0, sizeof mock);
  memset(&fx, 0, sizeof fx);
  assert_int_equal(uv_loop_init(&fx.loop), 0);
  fx.dir = xstrdup(test_mkdtemp());
  fx.kr = seal_keyring_new();
  uint8_t key[SEAL_KEY_LEN];
  memset(key, 9, sizeof key);
  assert_int_equal(seal_keyring_add(fx.kr, 1, key), 0);
  store_opts_t so = {.loop = &fx.loop, .path = fx.dir, .keyring = fx.kr};
  assert_int_equal(store_open(&fx.store, &so), 0);
  http_server_opts_t hso = {.handler = mock_handler};
  assert_int_equal(http_server_start(&fx.loop, &hso, &fx.srv), 0);
  snprintf(mock.base, sizeof mock.base, "http://127.0.0.1:%u", http_server_port(fx.srv));
  /* The mock listens on loopback: opt in exactly as an operator would
   * (--allow-endpoint-cidr 127.0.0.0/8,::1/128). */
  char perr[256];
  fx_policy = addr_policy_new();
  assert_int_equal(addr_policy_add_cidrs(fx_policy, "127.0.0.0/8,::1/128", perr, sizeof perr), 0);
  http_client_opts_t co = {.allow_insecure_http = 1, .endpoint_policy = fx_policy};
  fx.http = http_client_new(&fx.loop, &co);
  svc_opts_t o = {
    .loop = &fx.loop,
    .store = fx.store,
    .http = fx.http,
    .public_url = PUBLIC_URL,
  };
  assert_int_equal(svc_open(&fx.svc, &o), 0);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  int done = 0;
  svc_close(fx.svc, flag_cb, &done);
  run_until(&done);
  svc_free(fx.svc);
  done = 0;
  http_client_close(fx.http, flag_cb, &done);
  run_until(&done);
  addr_policy_free(fx_policy);
  fx_policy = NULL;
  done = 0;
  http_server_close(fx.srv, 0, flag_cb, &done);
  run_until(&done);
  done = 0;
  store_close(fx.store, flag_cb, &done);
  run_until(&done);
  uv_run(&fx.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&fx.loop), 0);
  seal_keyring_free(fx.kr);
  test_rmdir(fx.dir);
  free((void *)fx.dir);
  clock_clear_fake();
  return 0;
}

/* ---- helpers --------------------------------------------------------------------- */

typedef struct {
  int done;
  int err;
} res_t;

static void prov_cb(void *arg, int err, const provider_t *p)
{
  (void)p;
  res_t *r = arg;
  r->done++;
  r->err = err;
}

static void conn_cb(void *arg, int err, const conn_t *c)
{
  (void)c;
  res_t *r = arg;
  r->done++;
  r->err = err;
}

static provider_t *new_provider(const char *name)
{
  provider_t *p = xcalloc(1, sizeof *p);
  char url[128];
  p->name = xstrdup(name);
  p->authorize_url = xstrdup(AUTHZ_URL);
  snprintf(url, sizeof url, "%s/token", mock.base);
  p->token_url = xstrdup(url);
  snprintf(url, sizeof url, "%s/revoke", mock.base);
  p->revoke_url = xstrdup(url);
  p->client_id = xstrdup("client 1");
  p->client_secret = xstrdup("s3cret");
  strlist_push(&p->scopes, "read");
  strlist_push(&p->scopes, "write:all");
  kvlist_push(&p->authorize_params, "prompt", "consent");
  p->pkce = true;
  p->allow_insecure_http = true;
  return p;
}

static void put_provider(provider_t *p)
{
  res_t r = {0};
  assert_int_equal(svc_provider_put(fx.svc, p, prov_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
}

static void put_conn(const char *id, const char *provider, grant_t g)
{
  conn_t *c = xcalloc(1, sizeof *c);
  c->id = xstrdup(id);
  c->tenant = xstrdup("t1");
  c->provider = xstrdup(provider);
  c->grant = g;
  if (g == GRANT_REFRESH_TOKEN) {
    c->access_token = xstrdup("at-imported");
    c->refresh_token = xstrdup("rt-imported");
    c->expires_at = clock_now_ms() + 3600 * 1000;
  }
  res_t r = {0};
  assert_int_equal(svc_conn_put(fx.svc, c, conn_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
}

/* The usual set-up: provider "acme" and a pending connection "c1". */
static void std_setup(void)
{
  put_provider(new_provider("acme"));
  put_conn("c1", "acme", GRANT_AUTHORIZATION_CODE);
}

typedef struct {
  int done;
  int err;
  char *url;
  char *state;
  int64_t expires_at;
} auth_res_t;

static void auth_cb(void *arg, int err, const char *url, const char *state, int64_t exp)
{
  auth_res_t *r = arg;
  r->done++;
  r->err = err;
  r->url = url ? xstrdup(url) : NULL;
  r->state = state ? xstrdup(state) : NULL;
  r->expires_at = exp;
}

static void auth_res_free(auth_res_t *r)
{
  free(r->url);
  free(r->state);
  memset(r, 0, sizeof *r);
}

/* Authorizes c1 with defaults; returns the state (caller frees). */
static char *authorize(const char *id, const svc_authorize_req_t *req)
{
  auth_res_t r = {0};
  assert_int_equal(svc_authorize(fx.svc, id, req, auth_cb, &r), 0);
  assert_int_equal(r.done, 0); /* never from inside the call */
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  char *s = r.state;
  r.state = NULL;
  auth_res_free(&r);
  return s;
}

typedef struct {
  int done;
  int err;
  char *conn_id;
  char *redirect_after;
  char *error;
  char *desc;
} cb_res_t;

static void callback_cb(void *arg, int err, const svc_callback_result_t *r)
{
  cb_res_t *x = arg;
  x->done++;
  x->err = err;
  x->conn_id = r && r->conn_id ? xstrdup(r->conn_id) : NULL;
  x->redirect_after = r && r->redirect_after ? xstrdup(r->redirect_after) : NULL;
  x->error = r && r->error ? xstrdup(r->error) : NULL;
  x->desc = r && r->error_description ? xstrdup(r->error_description) : NULL;
}

static void cb_res_free(cb_res_t *x)
{
  free(x->conn_id);
  free(x->redirect_after);
  free(x->error);
  free(x->desc);
  memset(x, 0, sizeof *x);
}

/* Runs a callback to completion; returns svc_callback's own return code. */
static int callback(const kvlist_t *q, cb_res_t *x)
{
  memset(x, 0, sizeof *x);
  int rc = svc_callback(fx.svc, q, callback_cb, x);
  if (rc == 0) {
    assert_int_equal(x->done, 0);
    run_until(&x->done);
  }
  return rc;
}

static void get_conn(const char *id, conn_t *c)
{
  assert_int_equal(svc_conn_get(fx.svc, id, c), 0);
}

typedef struct {
  int done;
  int err;
  svc_revoke_report_t rep;
} rev_res_t;

static void rev_cb(void *arg, const svc_revoke_report_t *rep)
{
  rev_res_t *r = arg;
  r->done++;
  r->rep = *rep;
}

static void delete_cb(void *arg, int err, const svc_revoke_report_t *rep)
{
  rev_res_t *r = arg;
  r->done++;
  r->err = err;
  if (rep)
    r->rep = *rep;
}

static void connect_c1(void)
{
  char *st = authorize("c1", NULL);
  kvlist_t q = {0};
  kvlist_push(&q, "code", "c");
  kvlist_push(&q, "state", st);
  cb_res_t x;
  assert_int_equal(callback(&q, &x), 0);
  assert_null(x.error);
  cb_res_free(&x);
  kvlist_free(&q);
  free(st);
}

/* A port nothing listens on: bound, read back, closed. */
static unsigned dead_port(void)
{
  uv_tcp_t t;
  struct sockaddr_in a;
  assert_int_equal(uv_tcp_init(&fx.loop, &t), 0);
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  assert_int_equal(uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len), 0);
  unsigned port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&fx.loop, UV_RUN_NOWAIT);
  return port;
}

/* ---- authorize ----------------------------------------------------------------- */

static void test_authorize_url(void **state)
{
  (void)state;
  std_setup();
  kvlist_t params = {0};
  kvlist_push(&params, "login_hint", "a b@c");
  svc_authorize_req_t req = {.redirect_after = "https://app.example.com/done", .params = &params};
  int64_t before = clock_now_ms();
  auth_res_t r = {0};
  assert_int_equal(svc_authorize(fx.svc, "c1", &req, auth_cb, &r), 0);
  kvlist_free(&params);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_non_null(r.url);
  assert_int_equal(strlen(r.state), 43);
  assert_true(r.expires_at >= before + SVC_DEFAULT_STATE_TTL_MS);
  assert_true(r.expires_at <= clock_now_ms() + SVC_DEFAULT_STATE_TTL_MS);

  /* Existing query kept; parameters in order and percent-encoded. */
  const char *prefix = AUTHZ_URL "&response_type=code&client_id=client%201"
                                 "&redirect_uri=http%3A%2F%2Fgrantd.test%2Foauth%2Fcallback"
                                 "&scope=read%20write%3Aall&state=";
  assert_memory_equal(r.url, prefix, strlen(prefix));
  assert_non_null(strstr(r.url, "&code_challenge_method=S256&prompt=consent"
                                "&login_hint=a%20b%40c"));

  form_t f = FORM_INIT;
  const char *q = strchr(r.url, '?') + 1;
  assert_int_equal(form_parse(q, strlen(q), &f), 0);
  assert_string_equal(form_get(&f, "state"), r.state);
  const char *challenge = form_get(&f, "code_challenge");
  assert_non_null(challenge);

  /* The stored state: verifier matching the challenge, everything else. */
  state_rec_t st;
  assert_int_equal(store_state_get(fx.store, r.state, &st), 0);
  assert_string_equal(st.conn_id, "c1");
  assert_string_equal(st.redirect_after, "https://app.example.com/done");
  assert_string_equal(st.redirect_uri, CALLBACK_URL);
  assert_int_equal(st.expires_at, r.expires_at);
  assert_int_equal(st.scopes.n, 2);
  assert_string_equal(st.scopes.items[1], "write:all");
  assert_true(pkce_verifier_valid(st.code_verifier));
  buf_t ch = BUF_INIT;
  assert_int_equal(pkce_challenge_s256(st.code_verifier, &ch), 0);
  assert_string_equal(buf_cstr(&ch), challenge);
  buf_free(&ch);
  state_rec_free(&st);
  form_free(&f);
  auth_res_free(&r);
}

static void test_authorize_scopes_and_pkce_off(void **state)
{
  (void)state;
  provider_t *p = new_provider("nopkce");
  p->pkce = false;
  free(p->redirect_uri);
  p->redirect_uri = xstrdup("https://cb.example.com/return");
  put_provider(p);
  put_conn("c2", "nopkce", GRANT_AUTHORIZATION_CODE);
  strlist_t scopes = {0};
  strlist_push(&scopes, "only me");
  svc_authorize_req_t req = {.scopes = &scopes};
  auth_res_t r = {0};
  assert_int_equal(svc_authorize(fx.svc, "c2", &req, auth_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_null(strstr(r.url, "code_challenge"));
  assert_non_null(strstr(r.url, "&redirect_uri=https%3A%2F%2Fcb.example.com%2Freturn&"));
  assert_non_null(strstr(r.url, "&scope=only%20me&"));
  state_rec_t st;
  assert_int_equal(store_state_get(fx.store, r.state, &st), 0);
  assert_null(st.code_verifier);
  assert_null(st.redirect_after);
  assert_string_equal(st.redirect_uri, "https://cb.example.com/return");
  assert_int_equal(st.scopes.n, 1);
  state_rec_free(&st);
  strlist_free(&scopes);
  auth_res_free(&r);
}

static void test_authorize_errors(void **state)
{
  (void)state;
  std_setup();
  auth_res_t r = {0};
  assert_int_equal(svc_authorize(fx.svc, "nope", NULL, auth_cb, &r), GRANTD_ENOT_FOUND);
  put_conn("imp", "acme", GRANT_REFRESH_TOKEN);
  assert_int_equal(svc_authorize(fx.svc, "imp", NULL, auth_cb, &r), GRANTD_ECONFLICT);
  provider_t *p = new_provider("noauthz");
  free(p->authorize_url);
  p->authorize_url = NULL;
  put_provider(p);
  put_conn("c3", "noauthz", GRANT_AUTHORIZATION_CODE);
  assert_int_equal(svc_authorize(fx.svc, "c3", NULL, auth_cb, &r), GRANTD_ECONFIG);
  assert_int_equal(r.done, 0);
}

/* ---- callback ------------------------------------------------------------------- */

static void test_callback_success_and_replay(void **state)
{
  (void)state;
  provider_t *p = new_provider("acme");
  char iss[128];
  snprintf(iss, sizeof iss, "%s%s", mock.base, ISSUER_PATH);
  p->issuer = xstrdup(iss);
  put_provider(p);
  put_conn("c1", "acme", GRANT_AUTHORIZATION_CODE);
  svc_authorize_req_t req = {.redirect_after = "https://app.example.com/done"};
  char *st = authorize("c1", &req);
  state_rec_t rec;
  assert_int_equal(store_state_get(fx.store, st, &rec), 0);

  kvlist_t q = {0};
  kvlist_push(&q, "code", "the-code");
  kvlist_push(&q, "state", st);
  kvlist_push(&q, "iss", iss);
  kvlist_push(&q, "realmId", "4620816365");
  kvlist_push(&q, "session_state", "xyz");
  cb_res_t x;
  assert_int_equal(callback(&q, &x), 0);
  assert_int_equal(x.err, 0);
  assert_null(x.error);
  assert_string_equal(x.conn_id, "c1");
  assert_string_equal(x.redirect_after, "https://app.example.com/done");
  cb_res_free(&x);
  assert_int_equal(mock.token_calls, 1);

  /* The token request: code, redirect_uri and verifier from the state. */
  form_t f = FORM_INIT;
  assert_int_equal(form_parse(mock.token_body, strlen(mock.token_body), &f), 0);
  assert_string_equal(form_get(&f, "grant_type"), "authorization_code");
  assert_string_equal(form_get(&f, "code"), "the-code");
  assert_string_equal(form_get(&f, "redirect_uri"), CALLBACK_URL);
  assert_string_equal(form_get(&f, "code_verifier"), rec.code_verifier);
  form_free(&f);
  state_rec_free(&rec);

  conn_t c;
  get_conn("c1", &c);
  assert_int_equal(c.status, CONN_ACTIVE);
  assert_string_equal(c.access_token, "at-1");
  assert_string_equal(c.refresh_token, "rt-1");
  assert_true(c.next_refresh_at > 0);
  assert_null(c.last_error_code);
  assert_int_equal(c.scopes.n, 2); /* as requested: the response had none */
  json_t *extra = NULL;
  assert_int_equal(json_parse(c.extra_json, strlen(c.extra_json), &extra), 0);
  assert_string_equal(json_get_str(extra, "realmId"), "4620816365");
  assert_string_equal(json_get_str(extra, "instance_url"), "https://na1.example.com");
  assert_null(json_object_get(extra, "session_state"));
  assert_null(json_object_get(extra, "code"));
  json_decref(extra);
  conn_free(&c);

  /* Replayed: refused at once, no second exchange. */
  svc_stats_t s0, s1;
  svc_stats(fx.svc, &s0);
  assert_int_equal(callback(&q, &x), GRANTD_EBAD_STATE);
  svc_stats(fx.svc, &s1);
  assert_int_equal(s1.unknown_states, s0.unknown_states + 1);
  assert_int_equal(mock.token_calls, 1);
  kvlist_free(&q);
  free(st);
}

static void test_callback_concurrent_replay(void **state)
{
  (void)state;
  std_setup();
  char *st = authorize("c1", NULL);
  kvlist_t q = {0};
  kvlist_push(&q, "code", "c");
  kvlist_push(&q, "state", st);
  cb_res_t a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  /* The second arrives before the first's consume is even committed. */
  assert_int_equal(svc_callback(fx.svc, &q, callback_cb, &a), 0);
  assert_int_equal(svc_callback(fx.svc, &q, callback_cb, &b), GRANTD_EBAD_STATE);
  run_until(&a.done);
  assert_int_equal(a.err, 0);
  assert_null(a.error);
  assert_null(a.redirect_after);
  assert_int_equal(b.done, 0);
  assert_int_equal(mock.token_calls, 1);
  cb_res_free(&a);
  kvlist_free(&q);
  free(st);
}

static void test_callback_expired_unknown_missing(void **state)
{
  (void)state;
  std_setup();
  clock_set_fake(clock_now_ms());
  char *st = authorize("c1", NULL);
  clock_advance_fake(SVC_DEFAULT_STATE_TTL_MS + 1);
  kvlist_t q = {0};
  kvlist_push(&q, "code", "c");
  kvlist_push(&q, "state", st);
  cb_res_t x;
  assert_int_equal(callback(&q, &x), 0);
  assert_int_equal(x.err, GRANTD_EBAD_STATE);
  assert_null(x.conn_id);
  assert_null(x.redirect_after);
  cb_res_free(&x);
  /* Consumed anyway: a second try is unknown. */
  assert_int_equal(callback(&q, &x), GRANTD_EBAD_STATE);
  kvlist_free(&q);

  kvlist_push(&q, "code", "c");
  kvlist_push(&q, "state", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  assert_int_equal(callback(&q, &x), GRANTD_EBAD_STATE);
  kvlist_free(&q);
  kvlist_push(&q, "code", "c");
  assert_int_equal(callback(&q, &x), GRANTD_EBAD_STATE);
  kvlist_push(&q, "state", "bad state!");
  assert_int_equal(callback(&q, &x), GRANTD_EBAD_STATE);
  kvlist_free(&q);

  svc_stats_t s;
  svc_stats(fx.svc, &s);
  assert_int_equal(s.unknown_states, 5);
  assert_int_equal(mock.token_calls, 0);
  conn_t c;
  get_conn("c1", &c);
  assert_int_equal(c.status, CONN_PENDING);
  assert_null(c.last_error_code);
  conn_free(&c);
  free(st);
}

static void test_callback_access_denied(void **state)
{
  (void)state;
  std_setup();
  svc_authorize_req_t req = {.redirect_after = "https://app.example.com/done"};
  char *st = authorize("c1", &req);
  kvlist_t q = {0};
  kvlist_push(&q, "error", "access_denied");
  kvlist_push(&q, "error_description", "The user said \"no\"");
  kvlist_push(&q, "state", st);
  cb_res_t x;
  assert_int_equal(callback(&q, &x), 0);
  assert_int_equal(x.err, 0);
  assert_string_equal(x.error, "access_denied");
  assert_string_equal(x.conn_id, "c1");
  assert_string_equal(x.redirect_after, "https://app.example.com/done");
  cb_res_free(&x);
  assert_int_equal(mock.token_calls, 0);
  conn_t c;
  get_conn("c1", &c);
  assert_int_equal(c.status, CONN_PENDING);
  assert_string_equal(c.last_error_code, "access_denied");
  assert_string_equal(c.last_error_message, "The user said ?no?");
  assert_true(c.last_error_at > 0);
  conn_free(&c);
  kvlist_free(&q);
  free(st);
}

static void test_callback_wrong_iss(void **state)
{
  (void)state;
  provider_t *p = new_provider("acme");
  p->issuer = xstrdup("https://issuer.example.com");
  put_provider(p);
  put_conn("c1", "acme", GRANT_AUTHORIZATION_CODE);
  char *st = authorize("c1", NULL);
  kvlist_t q = {0};
  kvlist_push(&q, "code", "c");
  kvlist_push(&q, "state", st);
  kvlist_push(&q, "iss", "https://evil.example.com");
  cb_res_t x;
  assert_int_equal(callback(&q, &x), 0);
  assert_string_equal(x.error, "issuer_mismatch");
  cb_res_free(&x);
  assert_int_equal(mock.token_calls, 0);
  conn_t c;
  get_conn("c1", &c);
  assert_int_equal(c.status, CONN_PENDING);
  assert_string_equal(c.last_error_code, "issuer_mismatch");
  conn_free(&c);
  kvlist_free(&q);
  free(st);

  /* No iss at all: accepted (most providers never send it). */
  st = authorize("c1", NULL);
  kvlist_push(&q, "code", "c");
  kvlist_push(&q, "state", st);
  assert_int_equal(callback(&q, &x), 0);
  assert_null(x.error);
  cb_res_free(&x);
  get_conn("c1", &c);
  assert_int_equal(c.status, CONN_ACTIVE);
  assert_null(c.last_error_code);
  conn_free(&c);
  kvlist_free(&q);
  free(st);
}

/* RFC 9207 advertised: a response without iss is refused like a wrong
 * one, before any code exchange; the right iss is accepted. */
static void test_callback_missing_iss_when_advertised(void **state)
{
  (void)state;
  provider_t *p = new_provider("acme");
  p->issuer = xstrdup("https://issuer.example.com");
  p->iss_param_supported = true;
  put_provider(p);
  put_conn("c1", "acme", GRANT_AUTHORIZATION_CODE);
  char *st = authorize("c1", NULL);
  kvlist_t q = {0};
  kvlist_push(&q, "code", "c");
  kvlist_push(&q, "state", st);
  cb_res_t x;
  assert_int_equal(callback(&q, &x), 0);
  assert_string_equal(x.error, "issuer_mismatch");
  cb_res_free(&x);
  assert_int_equal(mock.token_calls, 0);
  conn_t c;
  get_conn("c1", &c);
  assert_int_equal(c.status, CONN_PENDING);
  assert_string_equal(c.last_error_code, "issuer_mismatch");
  assert_non_null(strstr(c.last_error_message, "has no iss"));
  conn_free(&c);
  kvlist_free(&q);
  free(st);

  /* An error response without iss is refused the same way. */
  st = authorize("c1", NULL);
  kvlist_push(&q, "error", "access_denied");
  kvlist_push(&q, "state", st);
  assert_int_equal(callback(&q, &x), 0);
  assert_string_equal(x.error, "issuer_mismatch");
  cb_res_free(&x);
  kvlist_free(&q);
  free(st);

  st = authorize("c1", NULL);
  kvlist_push(&q, "code", "c");
  kvlist_push(&q, "state", st);
  kvlist_push(&q, "iss", "https://issuer.example.com");
  assert_int_equal(callback(&q, &x), 0);
  assert_null(x.error);
  cb_res_free(&x);
  assert_int_equal(mock.token_calls, 1);
  get_conn("c1", &c);
  assert_int_equal(c.status, CONN_ACTIVE);
  conn_free(&c);
  kvlist_free(&q);
  free(st);
}

static void flushed_cb(void *arg, int status)
{
  assert_int_equal(status, 0);
  *(int *)arg = 1;
}

static int state_exists(const char *st)
{
  state_rec_t rec;
  int rc = store_state_get(fx.store, st, &rec);
  if (rc == 0)
    state_rec_free(&rec);
  assert_true(rc == 0 || rc == GRANTD_ENOT_FOUND);
  return rc == 0;
}

/* Expired states are deleted by bounded sweep steps that walk the states
 * from where the last one stopped; live ones stay. */
static void test_state_sweep(void **state)
{
  (void)state;
  std_setup();
  clock_set_fake(clock_now_ms());
  enum { N = 5 };
  char *old[N];
  for (int i = 0; i < N; i++)
    old[i] = authorize("c1", NULL);
  fx.svc->opts.state_sweep_max = 2;
  /* Nothing has expired yet: a full round deletes nothing. */
  for (int i = 0; i < 3; i++)
    svc__sweep_step(fx.svc);
  assert_null(fx.svc->sweep_cursor); /* the round ended */
  for (int i = 0; i < N; i++)
    assert_true(state_exists(old[i]));

  clock_advance_fake(SVC_DEFAULT_STATE_TTL_MS + 1);
  char *fresh = authorize("c1", NULL);
  int left = N;
  for (int step = 0; step < 3; step++) {
    svc__sweep_step(fx.svc);
    int now_left = 0;
    for (int i = 0; i < N; i++)
      now_left += state_exists(old[i]);
    /* At most max states are looked at per step (the fresh one among them
     * in key order). */
    assert_true(left - now_left <= 2);
    left = now_left;
  }
  assert_int_equal(left, 0);
  assert_true(state_exists(fresh));
  assert_null(fx.svc->sweep_cursor);
  /* The deletions are committed like any write. */
  int done = 0;
  assert_int_equal(store_flush(fx.store, flushed_cb, &done), 0);
  run_until(&done);
  for (int i = 0; i < N; i++)
    assert_false(state_exists(old[i]));
  /* A callback with a swept state is an unknown state. */
  kvlist_t q = {0};
  kvlist_push(&q, "code", "c");
  kvlist_push(&q, "state", old[0]);
  cb_res_t x;
  assert_int_equal(callback(&q, &x), GRANTD_EBAD_STATE);
  cb_res_free(&x);
  kvlist_free(&q);
  for (int i = 0; i < N; i++)
    free(old[i]);
  free(fresh);
}

static void test_callback_code_rejected(void **state)
{
  (void)state;
  std_setup();
  mock.token_mode = TOKEN_MODE_INVALID_GRANT;
  char *st = authorize("c1", NULL);
  kvlist_t q = {0};
  kvlist_push(&q, "code", "stale");
  kvlist_push(&q, "state", st);
  cb_res_t x;
  assert_int_equal(callback(&q, &x), 0);
  assert_int_equal(x.err, 0);
  assert_string_equal(x.error, "invalid_grant");
  cb_res_free(&x);
  assert_int_equal(mock.token_calls, 1);
  conn_t c;
  get_conn("c1", &c);
  assert_int_equal(c.status, CONN_PENDING);
  assert_null(c.access_token);
  assert_string_equal(c.last_error_code, "invalid_grant");
  assert_int_equal(c.last_error_http, 400);
  assert_non_null(strstr(c.last_error_message, "code used"));
  conn_free(&c);
  assert_int_equal(callback(&q, &x), GRANTD_EBAD_STATE);
  kvlist_free(&q);
  free(st);
}

static void test_callback_provider_down(void **state)
{
  (void)state;
  provider_t *p = new_provider("down");
  char url[80];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/token", dead_port());
  free(p->token_url);
  p->token_url = xstrdup(url);
  put_provider(p);
  put_conn("c1", "down", GRANT_AUTHORIZATION_CODE);
  char *st = authorize("c1", NULL);
  kvlist_t q = {0};
  kvlist_push(&q, "code", "c");
  kvlist_push(&q, "state", st);
  cb_res_t x;
  assert_int_equal(callback(&q, &x), 0);
  assert_int_equal(x.err, 0);
  assert_string_equal(x.error, err_name(GRANTD_ECONNECT));
  cb_res_free(&x);
  conn_t c;
  get_conn("c1", &c);
  assert_int_equal(c.status, CONN_PENDING);
  assert_string_equal(c.last_error_code, err_name(GRANTD_ECONNECT));
  assert_int_equal(c.last_error_http, 0);
  assert_non_null(c.last_error_message);
  conn_free(&c);
  /* The state stays consumed. */
  assert_int_equal(callback(&q, &x), GRANTD_EBAD_STATE);
  kvlist_free(&q);
  free(st);
}

static void test_callback_connection_deleted(void **state)
{
  (void)state;
  std_setup();
  char *st = authorize("c1", NULL);
  rev_res_t r = {0};
  assert_int_equal(svc_conn_delete(fx.svc, "c1", false, delete_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  kvlist_t q = {0};
  kvlist_push(&q, "code", "c");
  kvlist_push(&q, "state", st);
  cb_res_t x;
  assert_int_equal(callback(&q, &x), 0);
  assert_int_equal(x.err, GRANTD_ENOT_FOUND);
  assert_string_equal(x.conn_id, "c1");
  cb_res_free(&x);
  assert_int_equal(mock.token_calls, 0);
  kvlist_free(&q);
  free(st);
}

static void test_callback_failed_reauth_keeps_active(void **state)
{
  (void)state;
  std_setup();
  connect_c1();
  char *st = authorize("c1", NULL);
  kvlist_t q = {0};
  kvlist_push(&q, "error", "access_denied");
  kvlist_push(&q, "state", st);
  cb_res_t x;
  assert_int_equal(callback(&q, &x), 0);
  assert_string_equal(x.error, "access_denied");
  cb_res_free(&x);
  conn_t c;
  get_conn("c1", &c);
  assert_int_equal(c.status, CONN_ACTIVE); /* the current grant still works */
  assert_string_equal(c.access_token, "at-1");
  assert_string_equal(c.last_error_code, "access_denied");
  assert_string_equal(c.last_error_message, "access_denied");
  conn_free(&c);
  kvlist_free(&q);
  free(st);
}

static void test_callback_malformed(void **state)
{
  (void)state;
  std_setup();
  /* Neither code nor error. */
  char *st = authorize("c1", NULL);
  kvlist_t q = {0};
  kvlist_push(&q, "state", st);
  cb_res_t x;
  assert_int_equal(callback(&q, &x), 0);
  assert_string_equal(x.error, "invalid_request");
  cb_res_free(&x);
  kvlist_free(&q);
  free(st);
  /* A repeated code (RFC 6749 section 3.1). */
  st = authorize("c1", NULL);
  kvlist_push(&q, "code", "a");
  kvlist_push(&q, "code", "b");
  kvlist_push(&q, "state", st);
  assert_int_equal(callback(&q, &x), 0);
  assert_string_equal(x.error, "invalid_request");
  cb_res_free(&x);
  kvlist_free(&q);
  free(st);
  /* A repeated state is no state. */
  st = authorize("c1", NULL);
  kvlist_push(&q, "code", "a");
  kvlist_push(&q, "state", st);
  kvlist_push(&q, "state", st);
  assert_int_equal(callback(&q, &x), GRANTD_EBAD_STATE);
  kvlist_free(&q);
  free(st);
  assert_int_equal(mock.token_calls, 0);
  conn_t c;
  get_conn("c1", &c);
  assert_int_equal(c.status, CONN_PENDING);
  conn_free(&c);
}

static void test_callback_grant_changed(void **state)
{
  (void)state;
  std_setup();
  char *st = authorize("c1", NULL);
  put_conn("c1", "acme", GRANT_REFRESH_TOKEN); /* replaced meanwhile */
  kvlist_t q = {0};
  kvlist_push(&q, "code", "c");
  kvlist_push(&q, "state", st);
  cb_res_t x;
  assert_int_equal(callback(&q, &x), 0);
  assert_int_equal(x.err, GRANTD_ECONFLICT);
  assert_string_equal(x.conn_id, "c1");
  cb_res_free(&x);
  assert_int_equal(mock.token_calls, 0);
  conn_t c;
  get_conn("c1", &c);
  assert_string_equal(c.access_token, "at-imported");
  conn_free(&c);
  kvlist_free(&q);
  free(st);
}

/* ---- discovery ------------------------------------------------------------------ */

typedef struct {
  int done;
  int err;
} disc_res_t;

static void disc_cb(void *arg, int err, provider_t *p)
{
  (void)p;
  disc_res_t *r = arg;
  r->done++;
  r->err = err;
}

static void disc_provider(provider_t *p)
{
  char iss[128];
  memset(p, 0, sizeof *p);
  snprintf(iss, sizeof iss, "%s%s", mock.base, ISSUER_PATH);
  p->name = xstrdup("disc");
  p->issuer = xstrdup(iss);
  p->client_id = xstrdup("cid");
  p->pkce = true;
  p->allow_insecure_http = true;
  p->revoke_url = xstrdup("http://127.0.0.1:1/explicit-revoke");
}

static int discover(provider_t *p)
{
  disc_res_t r = {0};
  svc__discover(fx.svc, p, disc_cb, &r);
  assert_int_equal(r.done, 0);
  run_until(&r.done);
  return r.err;
}

static void test_discovery_rfc8414(void **state)
{
  (void)state;
  provider_t p;
  disc_provider(&p);
  mock.wk_mode = WK_OAUTH;
  assert_int_equal(discover(&p), 0);
  assert_int_equal(mock.wk_oauth_calls, 1);
  assert_int_equal(mock.wk_oidc_calls, 0);
  char url[128];
  snprintf(url, sizeof url, "%s/token", mock.base);
  assert_string_equal(p.token_url, url);
  snprintf(url, sizeof url, "%s/authorize", mock.base);
  assert_string_equal(p.authorize_url, url);
  assert_string_equal(p.revoke_url, "http://127.0.0.1:1/explicit-revoke"); /* explicit wins */
  assert_false(p.pkce);                                                    /* only "plain" listed */
  assert_int_equal(p.pkce_methods.n, 1);
  assert_int_equal(p.client_auth, CLIENT_AUTH_POST); /* basic not supported */
  assert_int_equal(p.auth_methods.n, 2);
  assert_false(p.iss_param_supported);
  provider_free(&p);
}

static void test_discovery_oidc_fallback(void **state)
{
  (void)state;
  provider_t p;
  disc_provider(&p);
  free(p.revoke_url);
  p.revoke_url = NULL;
  mock.wk_mode = WK_OIDC;
  assert_int_equal(discover(&p), 0);
  assert_int_equal(mock.wk_oauth_calls, 1);
  assert_int_equal(mock.wk_oidc_calls, 1);
  char url[128];
  snprintf(url, sizeof url, "%s/revoke", mock.base);
  assert_string_equal(p.revoke_url, url);
  assert_true(p.pkce);
  assert_int_equal(p.client_auth, CLIENT_AUTH_BASIC);
  assert_true(p.iss_param_supported); /* RFC 9207 advertised */
  provider_free(&p);

  /* Not JSON at the first location: the second is tried (404 there). */
  disc_provider(&p);
  mock.wk_mode = WK_HTML;
  assert_int_equal(discover(&p), GRANTD_EDISCOVERY);
  assert_int_equal(mock.wk_oidc_calls, 2);
  provider_free(&p);
}

static void test_discovery_failures(void **state)
{
  (void)state;
  provider_t p;
  disc_provider(&p);
  mock.wk_mode = WK_MISMATCH;
  assert_int_equal(discover(&p), GRANTD_EDISCOVERY);
  assert_int_equal(mock.wk_oidc_calls, 0); /* a mismatch is final */
  assert_null(p.token_url);
  assert_null(p.authorize_url);
  assert_true(p.pkce);
  assert_int_equal(p.pkce_methods.n, 0);
  provider_free(&p);

  disc_provider(&p);
  mock.wk_mode = WK_NONE;
  assert_int_equal(discover(&p), GRANTD_EDISCOVERY);
  assert_int_equal(mock.wk_oauth_calls, 2);
  assert_int_equal(mock.wk_oidc_calls, 1);
  assert_null(p.token_url);
  provider_free(&p);

  /* Plain http issuer without allow_insecure_http: refused up front. */
  disc_provider(&p);
  p.allow_insecure_http = false;
  assert_int_equal(discover(&p), GRANTD_EDISCOVERY);
  assert_int_equal(mock.wk_oauth_calls, 2);
  provider_free(&p);

  /* Nothing listening. */
  disc_provider(&p);
  free(p.issuer);
  char iss[64];
  snprintf(iss, sizeof iss, "http://127.0.0.1:%u", dead_port());
  p.issuer = xstrdup(iss);
  assert_int_equal(discover(&p), GRANTD_EDISCOVERY);
  provider_free(&p);
}

static void test_discovery_through_provider_put(void **state)
{
  (void)state;
  provider_t *p = xcalloc(1, sizeof *p);
  disc_provider(p);
  mock.wk_mode = WK_OAUTH;
  put_provider(p);
  provider_t got;
  assert_int_equal(svc_provider_get(fx.svc, "disc", &got), 0);
  assert_non_null(got.token_url);
  assert_int_equal(got.client_auth, CLIENT_AUTH_POST);
  provider_free(&got);

  p = xcalloc(1, sizeof *p);
  disc_provider(p);
  free(p->name);
  p->name = xstrdup("disc2");
  mock.wk_mode = WK_NONE;
  res_t r = {0};
  assert_int_equal(svc_provider_put(fx.svc, p, prov_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, GRANTD_EDISCOVERY);
  assert_int_equal(svc_provider_get(fx.svc, "disc2", &got), GRANTD_ENOT_FOUND);
}

/* ---- revocation ----------------------------------------------------------------- */

static void test_revoke_on_delete(void **state)
{
  (void)state;
  std_setup();
  connect_c1();
  rev_res_t r = {0};
  assert_int_equal(svc_conn_delete(fx.svc, "c1", true, delete_cb, &r), 0);
  run_until(&r.done);
  assert_int_equal(r.err, 0);
  assert_true(r.rep.attempted);
  assert_int_equal(r.rep.refresh_err, 0);
  assert_int_equal(r.rep.access_err, 0);
  assert_int_equal(r.rep.refresh_http, 200);
  assert_int_equal(r.rep.access_http, 200);
  assert_int_equal(mock.revoke_calls, 2);
  assert_string_equal(mock.revoke_hint[0], "refresh_token");
  assert_string_equal(mock.revoke_token[0], "rt-1");
  assert_string_equal(mock.revoke_hint[1], "access_token");
  assert_string_equal(mock.revoke_token[1], "at-1");
  conn_t c;
  assert_int_equal(svc_conn_get(fx.svc, "c1", &c), GRANTD_ENOT_FOUND);
}

static void test_revoke_report(void **state)
{
  (void)state;
  std_setup();
  connect_c1();
  conn_t c;
  get_conn("c1", &c);
  svc_prov_t *pv = svc__prov_find(fx.svc, "acme");

  /* The refresh token fails (503), the access token is still revoked. */
  mock.revoke_mode = REVOKE_MODE_503_REFRESH;
  rev_res_t r = {0};
  svc__revoke(fx.svc, &c, pv, rev_cb, &r);
  assert_int_equal(r.done, 0);
  run_until(&r.done);
  assert_true(r.rep.attempted);
  assert_int_equal(r.rep.refresh_err, GRANTD_EUPSTREAM);
  assert_int_equal(r.rep.refresh_http, 503);
  assert_int_equal(r.rep.access_err, 0);
  assert_int_equal(r.rep.access_http, 200);
  assert_int_equal(mock.revoke_calls, 2);

  /* Only an access token: the refresh token is reported absent. */
  free_secret(c.refresh_token);
  c.refresh_token = NULL;
  memset(&r, 0, sizeof r);
  svc__revoke(fx.svc, &c, pv, rev_cb, &r);
  run_until(&r.done);
  assert_int_equal(r.rep.refresh_err, GRANTD_ENOT_FOUND);
  assert_int_equal(r.rep.access_err, 0);
  assert_int_equal(mock.revoke_calls, 3);
  conn_free(&c);

  /* Provider without revoke_url: nothing attempted, still answered later. */
  provider_t *p = new_provider("norevoke");
  free(p->revoke_url);
  p->revoke_url = NULL;
  put_provider(p);
  get_conn("c1", &c);
  memset(&r, 0, sizeof r);
  svc__revoke(fx.svc, &c, svc__prov_find(fx.svc, "norevoke"), rev_cb, &r);
  assert_int_equal(r.done, 0);
  run_until(&r.done);
  assert_false(r.rep.attempted);
  assert_int_equal(mock.revoke_calls, 3);

  /* Provider down: both failures reported, not fatal. */
  p = new_provider("down");
  char url[80];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/revoke", dead_port());
  free(p->revoke_url);
  p->revoke_url = xstrdup(url);
  put_provider(p);
  memset(&r, 0, sizeof r);
  svc__revoke(fx.svc, &c, svc__prov_find(fx.svc, "down"), rev_cb, &r);
  run_until(&r.done);
  assert_true(r.rep.attempted);
  assert_int_equal(r.rep.refresh_err, GRANTD_ECONNECT);
  assert_int_equal(r.rep.access_err, GRANTD_ECONNECT);
  assert_int_equal(r.rep.refresh_http, 0);
  conn_free(&c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_authorize_url, setup, teardown),
    cmocka_unit_test_setup_teardown(test_authorize_scopes_and_pkce_off, setup, teardown),
    cmocka_unit_test_setup_teardown(test_authorize_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_callback_success_and_replay, setup, teardown),
    cmocka_unit_test_setup_teardown(test_callback_concurrent_replay, setup, teardown),
    cmocka_unit_test_setup_teardown(test_callback_expired_unknown_missing, setup, teardown),
    cmocka_unit_test_setup_teardown(test_callback_access_denied, setup, teardown),
    cmocka_unit_test_setup_teardown(test_callback_wrong_iss, setup, teardown),
    cmocka_unit_test_setup_teardown(test_state_sweep, setup, teardown),
    cmocka_unit_test_setup_teardown(test_callback_missing_iss_when_advertised, setup, teardown),
    cmocka_unit_test_setup_teardown(test_callback_code_rejected, setup, teardown),
    cmocka_unit_test_setup_teardown(test_callback_provider_down, setup, teardown),
    cmocka_unit_test_setup_teardown(test_callback_connection_deleted, setup, teardown),
    cmocka_unit_test_setup_teardown(test_callback_failed_reauth_keeps_active, setup, teardown),
    cmocka_unit_test_setup_teardown(test_callback_malformed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_callback_grant_changed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_discovery_rfc8414, setup, teardown),
    cmocka_unit_test_setup_teardown(test_discovery_oidc_fallback, setup, teardown),
    cmocka_unit_test_setup_teardown(test_discovery_failures, setup, teardown),
    cmocka_unit_test_setup_teardown(test_discovery_through_provider_put, setup, teardown),
    cmocka_unit_test_setup_teardown(test_revoke_on_delete, setup, teardown),
    cmocka_unit_test_setup_teardown(test_revoke_report, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
