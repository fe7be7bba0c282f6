/*
 * connect_flow.c - the second half of the authorization-code connect flow:
 * the browser's return (svc_callback), which turns the code into stored,
 * refreshable tokens. The first half, the authorization URL, is
 * connect_authorize.c.
 *
 * Callback. The state is consumed atomically before anything else
 * (store_state_consume deletes it in the same step as it reads it), so a
 * replayed callback finds nothing and never causes a second code exchange.
 * Then, in order: the connection must still exist with the
 * authorization_code grant; the RFC 9207 `iss` must match the provider's
 * issuer when both are present (mix-up defence), and a response without
 * `iss` is refused the same way when the provider advertises
 * authorization_response_iss_parameter_supported (otherwise it is accepted:
 * most providers do not send it); an `error=` from the provider is
 * recorded; otherwise the code is exchanged through the token-request
 * limits (svc_treq_t) and the result committed with svc__conn_commit.
 *
 * Failed attempts (error=, issuer mismatch, rejected code, provider down)
 * never change the connection's status or tokens: they only record
 * last_error. A pending connection stays pending; an active connection
 * being re-authorized keeps working with its current grant; a needs_reauth
 * one still needs it. One exception keeps rotated tokens safe: when a
 * refresh of that connection is in flight, the error is logged but not
 * committed, because committing would detach the refresh and drop its
 * result (which may hold a rotated refresh token).
 *
 * Values the provider adds to the redirect (QuickBooks realmId, ...) other
 * than the OAuth parameters are kept in the connection's `extra`, merged
 * with the token response's extra members (the token response wins on a
 * name clash).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "oauth/grant.h"
#include "oauth/token.h"
#include "service/index.h"
#include "service/lifecycle.h"
#include "service/op.h"
#include "service/outcome.h"
#include "service/providers.h"
#include "service/treq.h"
#include "store/store.h"

/* Bounds on redirect values kept in `extra` (the API bounds the query). */
#define EXTRA_MAX_KEYS 16
#define EXTRA_MAX_KEY_LEN 64
#define EXTRA_MAX_VALUE_LEN 1024
/* The store refuses longer keys; a real state is 43 characters. */
#define STATE_MAX_LEN 256

/* ---- callback --------------------------------------------------------------- */

typedef struct {
  svc_t *svc;
  svc_callback_cb cb;
  void *arg;
  state_rec_t st; /* the consumed state (copied) */
  char *code;     /* secret */
  char *iss;
  char *error; /* provider's error (sanitised) */
  char *error_description;
  char *scope;    /* scope on the redirect, if any */
  kvlist_t extra; /* other redirect values (realmId ...) */
  conn_t conn;    /* the connection when the exchange started */
  svc_prov_t *prov;
  oauth_request_t req; /* the prepared token request */
  svc_treq_t treq;
  /* the result */
  char *res_error;
  char *res_desc;
} cb_ctx_t;

static void cb_ctx_free(cb_ctx_t *x)
{
  state_rec_free(&x->st);
  free_secret(x->code);
  free(x->iss);
  free(x->error);
  free(x->error_description);
  free(x->scope);
  kvlist_free(&x->extra);
  conn_free(&x->conn);
  oauth_request_free(&x->req);
  free(x->res_error);
  free(x->res_desc);
  free(x);
}

/* Answers the browser's callback and ends the work item. conn_id is
 * reported only once the state was found (it names whose flow this was). */
static void finish(cb_ctx_t *x, int err)
{
  svc_t *svc = x->svc;
  svc_callback_result_t r = {
    .conn_id = err == GRANTD_EBAD_STATE ? NULL : x->st.conn_id,
    .redirect_after = err == GRANTD_EBAD_STATE ? NULL : x->st.redirect_after,
    .error = err == 0 ? x->res_error : NULL,
    .error_description = err == 0 ? x->res_desc : NULL,
  };
  if (err == GRANTD_EBAD_STATE)
    svc->st.unknown_states++;
  x->cb(x->arg, err, &r);
  cb_ctx_free(x);
  svc__work_end(svc);
}

/* Keeps only RFC 6749 error characters (%x20-21 / %x23-5B / %x5D-7E), cut
 * to max bytes: the provider's text goes into logs, JSON and HTML. */
static char *sanitize(const char *s, size_t max, bool is_code)
{
  buf_t b = BUF_INIT;
  for (; s && *s && b.len < max; s++) {
    unsigned char ch = (unsigned char)*s;
    bool ok = ch >= 0x20 && ch <= 0x7e && ch != '"' && ch != '\\';
    if (is_code && ch == ' ')
      ok = false;
    if (ok)
      buf_putc(&b, (char)ch);
    else if (!is_code)
      buf_putc(&b, '?');
  }
  if (b.len == 0) {
    buf_free(&b);
    return is_code ? xstrdup("unknown_error") : NULL;
  }
  return buf_steal(&b);
}

/* Reads a connection that still has an index entry: a delete with revoke
 * drops the entry before the record, and such a connection is gone. */
static int read_conn(svc_t *svc, const char *id, conn_t *out)
{
  if (svc__entry_find(svc, id) == NULL)
    return GRANTD_ENOT_FOUND;
  return store_conn_get(svc->store, id, out);
}

static void set_result(cb_ctx_t *x, const char *code, const char *desc)
{
  free(x->res_error);
  free(x->res_desc);
  x->res_error = xstrdup(code);
  x->res_desc = desc ? xstrdup(desc) : NULL;
}

static void on_fail_committed(void *arg, int err, const conn_t *c)
{
  (void)c;
  cb_ctx_t *x = arg;
  if (err != 0)
    log_error("connect_error_commit_failed", "id", x->st.conn_id, "error", err_name(err));
  /* The browser learns about the failed attempt either way. */
  finish(x, 0);
}

/* Records a failed attempt in last_error (status and tokens unchanged) and
 * answers with result error `code`. */
static void fail_attempt(cb_ctx_t *x, const char *code, const char *msg, int http)
{
  svc_t *svc = x->svc;
  conn_t cur, next;
  set_result(x, code, msg);
  log_warn("connect_failed", "id", x->st.conn_id, "error", code, "message", msg, "#http",
           LOG_I64(http));
  metrics_counter_inc("grantd_connect_total", "outcome=\"error\"");
  int rc = read_conn(svc, x->st.conn_id, &cur);
  if (rc != 0) {
    finish(x, rc);
    return;
  }
  conn_entry_t *e = svc__entry_find(svc, cur.id);
  if (e && e->op && e->op->kind != SVC_OP_COMMIT && e->op->state != SVC_OP_QUEUED) {
    /* See the file comment: never drop a refresh result. */
    log_warn("connect_error_not_recorded", "id", cur.id, "reason", "refresh in flight");
    conn_free(&cur);
    finish(x, 0);
    return;
  }
  int64_t now = clock_now_ms();
  conn_copy(&next, &cur);
  conn_free(&cur);
  free(next.last_error_code);
  free(next.last_error_message);
  next.last_error_code = xstrdup(code);
  next.last_error_message = xstrdup(msg ? msg : code);
  next.last_error_http = http;
  next.last_error_at = now;
  next.revision++;
  next.updated_at = now;
  rc = svc__conn_commit(svc, &next, on_fail_committed, x);
  if (rc != 0)
    finish(x, rc);
}

static void on_success_committed(void *arg, int err, const conn_t *c)
{
  (void)c;
  cb_ctx_t *x = arg;
  if (err != 0) {
    log_error("connect_commit_failed", "id", x->st.conn_id, "error", err_name(err));
    finish(x, err);
    return;
  }
  log_info("connected", "id", x->st.conn_id, "provider", x->conn.provider);
  metrics_counter_inc("grantd_connect_total", "outcome=\"ok\"");
  finish(x, 0);
}

/* Merges the redirect's extra values into the token response's extra
 * object (token members win). Values that are not valid UTF-8 are skipped. */
static void merge_extra(cb_ctx_t *x, token_result_t *tok)
{
  if (x->extra.n == 0)
    return;
  json_t *o = NULL;
  if (tok->extra_json == NULL || json_parse(tok->extra_json, strlen(tok->extra_json), &o) != 0 ||
      !json_is_object(o)) {
    json_decref(o);
    o = json_object();
  }
  for (size_t i = 0; i < x->extra.n; i++) {
    const kv_t *kv = &x->extra.items[i];
    if (json_object_get(o, kv->key) == NULL)
      json_object_set_new(o, kv->key, json_string(kv->value)); /* NULL value: skipped */
  }
  buf_t b = BUF_INIT;
  if (json_dump_buf(o, &b) == 0 && b.len <= TOKEN_EXTRA_MAX) {
    if (tok->extra_json)
      free_secret(tok->extra_json); /* may hold an id_token */
    tok->extra_json = buf_steal(&b);
  } else {
    buf_wipe_free(&b);
  }
  json_decref(o);
}

/* Granted scopes when the token response has none: the redirect's `scope`
 * (some providers report the grant there), else what was asked for
 * (RFC 6749 section 5.1: omitted means as requested). */
static void default_scopes(cb_ctx_t *x, token_result_t *tok)
{
  if (tok->has_scope)
    return;
  if (x->scope && x->scope[0]) {
    const char *s = x->scope;
    while (*s) {
      size_t n = strcspn(s, " ,");
      if (n > 0) {
        char *one = xstrndup(s, n);
        strlist_push(&tok->scopes, one);
        free(one);
      }
      s += n;
      s += strspn(s, " ,");
    }
  } else {
    for (size_t i = 0; i < x->st.scopes.n; i++)
      strlist_push(&tok->scopes, x->st.scopes.items[i]);
  }
  tok->has_scope = tok->scopes.n > 0;
}

static void exchange_ok(cb_ctx_t *x, token_result_t *tok)
{
  svc_t *svc = x->svc;
  conn_t cur, next;
  int rc = read_conn(svc, x->st.conn_id, &cur);
  if (rc != 0) {
    /* Deleted while the code was exchanged: the tokens are dropped. */
    log_warn("connect_result_dropped", "id", x->st.conn_id, "error", err_name(rc));
    finish(x, rc);
    return;
  }
  if (cur.grant != GRANT_AUTHORIZATION_CODE) {
    log_warn("connect_result_dropped", "id", cur.id, "error", "grant changed");
    conn_free(&cur);
    finish(x, GRANTD_ECONFLICT);
    return;
  }
  merge_extra(x, tok);
  default_scopes(x, tok);
  int64_t now = clock_now_ms();
  svc__next_record(svc, &cur, x->prov, tok, 0, false, now, &next);
  conn_free(&cur);
  rc = svc__conn_commit(svc, &next, on_success_committed, x);
  if (rc != 0)
    finish(x, rc);
}

static int exchange_start(svc_treq_t *t, oauth_request_t *req)
{
  cb_ctx_t *x = container_of(t, cb_ctx_t, treq);
  *req = x->req;
  memset(&x->req, 0, sizeof x->req);
  return 0;
}

static void exchange_done(svc_treq_t *t, svc_tresult_t *r)
{
  cb_ctx_t *x = container_of(t, cb_ctx_t, treq);
  token_result_t *tok = &r->tok;
  log_debug("code_exchange_done", "id", x->st.conn_id, "outcome", token_outcome_name(tok->outcome),
            "#http", LOG_I64(tok->http_status), "#ms", LOG_I64(r->latency_ms));
  if (r->neterr == GRANTD_ESHUTDOWN) {
    finish(x, GRANTD_ESHUTDOWN);
    return;
  }
  if (tok->outcome == TOKEN_OK) {
    exchange_ok(x, tok);
    return;
  }
  /* The code is single use: whatever went wrong, a new authorization is
   * needed; the state stays consumed. */
  const char *code = tok->error ? tok->error : "code_exchange_failed";
  char msg[700];
  if (r->unknown)
    snprintf(msg, sizeof msg,
             "the code exchange may have reached the provider, outcome unknown (%s)",
             tok->error_description ? tok->error_description : code);
  else
    snprintf(msg, sizeof msg, "the authorization code could not be exchanged: %s",
             tok->error_description ? tok->error_description : code);
  fail_attempt(x, code, msg, tok->http_status);
}

static void on_consumed(void *arg, int status, const state_rec_t *rec)
{
  cb_ctx_t *x = arg;
  svc_t *svc = x->svc;
  char msg[600];
  if (status != 0 || rec == NULL) {
    log_error("callback_state_consume_failed", "error", err_name(status));
    finish(x, status ? status : GRANTD_ESTORE_IO);
    return;
  }
  state_rec_copy(&x->st, rec);
  int64_t now = clock_now_ms();
  if (x->st.expires_at <= now || x->st.conn_id == NULL) {
    log_info("callback_bad_state", "reason", "expired");
    finish(x, GRANTD_EBAD_STATE);
    return;
  }
  int rc = read_conn(svc, x->st.conn_id, &x->conn);
  if (rc != 0) {
    log_warn("callback_connection_gone", "id", x->st.conn_id, "error", err_name(rc));
    finish(x, rc);
    return;
  }
  if (x->conn.grant != GRANT_AUTHORIZATION_CODE) {
    log_warn("callback_grant_changed", "id", x->conn.id);
    finish(x, GRANTD_ECONFLICT);
    return;
  }
  x->prov = svc__prov_find(svc, x->conn.provider);
  const provider_t *p = x->prov && x->prov->present ? &x->prov->p : NULL;

  /* RFC 9207 before anything else, error responses included. */
  if (p && p->issuer && x->iss && strcmp(p->issuer, x->iss) != 0) {
    snprintf(msg, sizeof msg,
             "the authorization response names issuer '%.200s', the provider is '%.200s'", x->iss,
             p->issuer);
    fail_attempt(x, "issuer_mismatch", msg, 0);
    return;
  }
  /* RFC 9207 section 2.4: a client that knows the provider sends iss must
   * reject a response without it, exactly like a wrong one (otherwise a
   * mix-up attacker would simply drop the parameter). */
  if (p && p->iss_param_supported && x->iss == NULL) {
    snprintf(msg, sizeof msg,
             "the authorization response has no iss, but the provider '%.200s' advertises "
             "authorization_response_iss_parameter_supported",
             p->issuer ? p->issuer : p->name);
    fail_attempt(x, "issuer_mismatch", msg, 0);
    return;
  }
  if (x->error) {
    fail_attempt(x, x->error, x->error_description, 0);
    return;
  }
  if (x->code == NULL) {
    fail_attempt(x, "invalid_request", "the callback carries neither a code nor an error", 0);
    return;
  }
  if (p == NULL) {
    fail_attempt(x, "provider_unknown", "the connection's provider does not exist", 0);
    return;
  }
  rc =
    grant_auth_code_request(p, &x->conn, x->code, x->st.redirect_uri, x->st.code_verifier, &x->req);
  if (rc != 0) {
    snprintf(msg, sizeof msg, "the token request cannot be built: %s", err_str(rc));
    fail_attempt(x, err_name(rc), msg, 0);
    return;
  }
  x->treq.prov = x->prov;
  snprintf(x->treq.token_member, sizeof x->treq.token_member, "%s",
           x->conn.token_member ? x->conn.token_member : "");
  x->treq.deadline = now; /* a user is waiting */
  x->treq.start = exchange_start;
  x->treq.done = exchange_done;
  svc__treq_submit(svc, &x->treq);
}

/* True for the redirect's OAuth parameters, which never go to `extra`. */
static bool oauth_param(const char *k)
{
  static const char *const names[] = {
    "code",      "state", "iss",           "error", "error_description",
    "error_uri", "scope", "session_state", NULL};
  for (size_t i = 0; names[i]; i++)
    if (strcmp(k, names[i]) == 0)
      return true;
  return false;
}

/* Counts occurrences of key k (RFC 6749 section 3.1: no repeats). */
static size_t kv_count(const kvlist_t *q, const char *k)
{
  size_t n = 0;
  for (size_t i = 0; i < q->n; i++)
    n += strcmp(q->items[i].key, k) == 0;
  return n;
}

static bool state_syntax_ok(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > STATE_MAX_LEN)
    return false;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '-' || ch == '_'))
      return false;
  }
  return true;
}

int svc_callback(svc_t *svc, const kvlist_t *query, svc_callback_cb cb, void *arg)
{
  if (svc->closing)
    return GRANTD_ESHUTDOWN;
  if (query == NULL || cb == NULL)
    return GRANTD_EINVALID;
  const char *state = kvlist_get(query, "state");
  if (state == NULL || kv_count(query, "state") != 1 || !state_syntax_ok(state)) {
    svc->st.unknown_states++;
    log_info("callback_bad_state", "reason", state ? "malformed" : "missing");
    return GRANTD_EBAD_STATE;
  }

  cb_ctx_t *x = xcalloc(1, sizeof *x);
  x->svc = svc;
  x->cb = cb;
  x->arg = arg;
  const char *code = kvlist_get(query, "code");
  if (code && code[0] && kv_count(query, "code") == 1)
    x->code = xstrdup(code);
  const char *iss = kvlist_get(query, "iss");
  x->iss = iss ? xstrdup(iss) : NULL;
  const char *error = kvlist_get(query, "error");
  if (error) {
    x->error = sanitize(error, TOKEN_ERROR_MAX, true);
    x->error_description = sanitize(kvlist_get(query, "error_description"), TOKEN_DESC_MAX, false);
  } else if (code && x->code == NULL) {
    x->error = xstrdup("invalid_request");
    x->error_description = xstrdup("the callback repeats the code parameter");
  }
  const char *scope = kvlist_get(query, "scope");
  x->scope = scope ? xstrdup(scope) : NULL;
  for (size_t i = 0; i < query->n && x->extra.n < EXTRA_MAX_KEYS; i++) {
    const kv_t *kv = &query->items[i];
    if (oauth_param(kv->key) || kv->key[0] == '\0' || strlen(kv->key) > EXTRA_MAX_KEY_LEN ||
        strlen(kv->value) > EXTRA_MAX_VALUE_LEN || kvlist_get(&x->extra, kv->key))
      continue;
    kvlist_push(&x->extra, kv->key, kv->value);
  }

  int rc = store_state_consume(svc->store, state, on_consumed, x);
  if (rc != 0) {
    cb_ctx_free(x);
    if (rc == GRANTD_ENOT_FOUND || rc == GRANTD_EINVALID || rc == GRANTD_ESTORE_DECODE ||
        rc == GRANTD_ESTORE_AUTH || rc == GRANTD_ESTORE_VERSION || rc == GRANTD_ESTORE_KEY) {
      /* Unknown, already used, or not a state we could have written. */
      svc->st.unknown_states++;
      log_info("callback_bad_state", "reason", rc == GRANTD_ENOT_FOUND ? "unknown" : err_name(rc));
      return GRANTD_EBAD_STATE;
    }
    return rc;
  }
  svc__work_begin(svc);
  return 0;
}
