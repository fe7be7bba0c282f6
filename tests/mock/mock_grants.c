/*
 * mock_grants.c - the mock provider's device authorization grant (RFC
 * 8628) and JWT bearer grant (RFC 7523 section 2.1), as functions of a
 * request to a response like mock_oauth.c (see mock.h).
 *
 * Device flows are a small table: the device authorization endpoint adds
 * one (pending), POST /_mock/device plays the user at the verification
 * page (approve or deny by user_code), and each poll of the token endpoint
 * walks the section 3.5 state machine: authorization_pending while
 * undecided, slow_down when polled faster than half the interval (or for
 * the next `device_slow_down` polls; the interval then grows by 5 s),
 * access_denied, expired_token once expires_in has passed, tokens once
 * approved (the code is then used up: invalid_grant).
 *
 * JWT bearer assertions are checked as an authorization server must
 * (RFC 7523 section 3): signature with the registered assertion_key,
 * iss a known client (the authenticated one when the request carries
 * client authentication), aud this server's issuer, <base>/token or the
 * assertion_aud knob, exp in the future and at most an hour ahead, a jti
 * never seen before (a replay is invalid_grant). The claims of the last
 * accepted assertion are kept for GET /_mock/assertion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/rand.h"
#include "mock.h"
#include "oauth/jws.h"

#define NO_STORE "Cache-Control: no-store\r\nPragma: no-cache\r\n"

enum { DEV_PENDING = 0, DEV_APPROVED, DEV_DENIED, DEV_USED };

typedef struct {
  char device_code[MOCK_TOKEN_LEN + 1];
  char user_code[10]; /* XXXX-XXXX */
  uint32_t client;
  char *scope;
  int64_t expires;     /* monotonic ms */
  int64_t interval_ms; /* grows on slow_down */
  int64_t last_poll;   /* monotonic ms, 0 = never polled */
  int state;
} dev_flow_t;

static dev_flow_t *flows;
static size_t nflows, flows_cap;
static json_t *last_assertion, *last_exchange;

void mock_device_clear(void)
{
  for (size_t i = 0; i < nflows; i++)
    free(flows[i].scope);
  free(flows);
  flows = NULL;
  nflows = flows_cap = 0;
  json_decref(last_assertion);
  last_assertion = NULL;
  json_decref(last_exchange);
  last_exchange = NULL;
}

static dev_flow_t *find(const char *device_code, const char *user_code)
{
  for (size_t i = 0; i < nflows; i++)
    if ((device_code && strcmp(flows[i].device_code, device_code) == 0) ||
        (user_code && strcmp(flows[i].user_code, user_code) == 0))
      return &flows[i];
  return NULL;
}

/* RFC 8628 section 6.1: base-20 letters without vowels, 8 of them. */
static void make_user_code(char out[10])
{
  static const char alpha[] = "BCDFGHJKLMNPQRSTVWXZ";
  unsigned char r[8];
  rand_bytes(r, sizeof r);
  for (int i = 0, j = 0; i < 8; i++) {
    if (i == 4)
      out[j++] = '-';
    out[j++] = alpha[r[i] % 20];
  }
  out[9] = '\0';
}

void mock_device_authorization(mock_t *m, const mock_req_t *q, mock_resp_t *r)
{
  mock_tctx_t tc = {m, q, r, FORM_INIT, MOCK_FAULT_NONE};
  const mock_knobs_t *k = &m->knobs;
  const char *scope;
  m->c.device_authorizations++;
  /* The token endpoint's faults apply here too (not the format ones). */
  mock_fault_t fault = mock_fault_take(m, MOCK_FAULT_ON_TOKEN);
  if (fault == MOCK_FAULT_INVALID_CLIENT) {
    mock_oauth_error(r, 401, "invalid_client", "injected fault");
    return;
  }
  if (fault == MOCK_FAULT_500) {
    r->status = 500;
    r->ctype = "text/html";
    buf_puts(&r->body, "<html><body>500</body></html>\n");
    return;
  }
  if (!mock_is_form(q->ctype) || form_parse(q->body, q->body_len, &tc.form) != 0) {
    mock_tc_fail(&tc, 400, "invalid_request", "a form body is required");
    goto done;
  }
  uint32_t client = mock_tc_authenticate(&tc);
  if (client == MOCK_NONE || mock_tc_param(&tc, "scope", &scope) != 0)
    goto done;
  if (form_get(&tc.form, "grant_type") != NULL) {
    mock_tc_fail(&tc, 400, "invalid_request", "grant_type does not belong here");
    goto done;
  }
  if (scope != NULL && !mock_scope_valid(scope)) {
    mock_tc_fail(&tc, 400, "invalid_scope", "malformed scope");
    goto done;
  }
  if (nflows == flows_cap) {
    flows_cap = flows_cap ? flows_cap * 2 : 64;
    flows = xrealloc(flows, flows_cap * sizeof *flows);
  }
  dev_flow_t *f = &flows[nflows++];
  memset(f, 0, sizeof *f);
  unsigned char raw[MOCK_TOKEN_RAW];
  buf_t b = BUF_INIT;
  rand_bytes(raw, sizeof raw);
  b64url_encode(&b, raw, sizeof raw);
  memcpy(f->device_code, b.data, MOCK_TOKEN_LEN);
  buf_free(&b);
  do
    make_user_code(f->user_code);
  while (find(NULL, f->user_code) != f);
  f->client = client;
  f->scope = scope ? xstrdup(scope) : NULL;
  f->expires = q->now + k->device_expires_in * 1000;
  f->interval_ms = (k->device_interval > 0 ? k->device_interval : 5) * 1000;
  r->status = 200;
  r->ctype = "application/json";
  buf_puts(&r->hdrs, NO_STORE);
  buf_printf(&r->body,
             "{\"device_code\":\"%s\",\"user_code\":\"%s\",\"verification_uri\":\"%s/device\","
             "\"verification_uri_complete\":\"%s/device?user_code=%s\",\"expires_in\":%lld",
             f->device_code, f->user_code, q->base, q->base, f->user_code,
             (long long)k->device_expires_in);
  if (k->device_interval > 0)
    buf_printf(&r->body, ",\"interval\":%lld", (long long)k->device_interval);
  buf_putc(&r->body, '}');
done:
  form_free(&tc.form);
}

void mock_grant_device(mock_tctx_t *tc, uint32_t client)
{
  mock_t *m = tc->m;
  const char *dc;
  m->c.device_polls++;
  if (mock_tc_param(tc, "device_code", &dc) != 0)
    return;
  dev_flow_t *f = dc ? find(dc, NULL) : NULL;
  if (dc == NULL) {
    mock_tc_fail(tc, 400, "invalid_request", "device_code is required");
  } else if (f == NULL || f->client != client || f->state == DEV_USED) {
    mock_tc_fail(tc, 400, "invalid_grant", "unknown or used device code");
  } else if (tc->q->now >= f->expires) {
    m->c.device_expired++;
    mock_tc_fail(tc, 400, "expired_token", "the device code has expired");
  } else if (f->state == DEV_DENIED) {
    m->c.device_denied++;
    mock_tc_fail(tc, 400, "access_denied", "the user denied the request");
  } else if (m->knobs.device_slow_down > 0 ||
             (f->last_poll != 0 && tc->q->now - f->last_poll < f->interval_ms / 2)) {
    if (m->knobs.device_slow_down > 0)
      m->knobs.device_slow_down--;
    f->interval_ms += 5000;
    f->last_poll = tc->q->now;
    m->c.device_slow_down++;
    mock_tc_fail(tc, 400, "slow_down", "polling too fast");
  } else if (f->state == DEV_PENDING) {
    f->last_poll = tc->q->now;
    m->c.device_pending++;
    mock_tc_fail(tc, 400, "authorization_pending", "the user has not decided yet");
  } else {
    f->state = DEV_USED;
    m->c.device_approved++;
    mock_tc_issue_new(tc, client, f->scope, true);
  }
}

void mock_device_decide(mock_t *m, const mock_req_t *q, mock_resp_t *r)
{
  (void)m;
  json_t *o = NULL;
  const char *uc = NULL, *action = NULL;
  if (json_parse(q->body, q->body_len, &o) == 0) {
    uc = json_get_str(o, "user_code");
    action = json_get_str(o, "action");
  }
  dev_flow_t *f = uc ? find(NULL, uc) : NULL;
  if (f == NULL || action == NULL ||
      (strcmp(action, "approve") != 0 && strcmp(action, "deny") != 0)) {
    mock_oauth_error(r, 400, "invalid_request",
                     "need a known user_code and action approve or deny");
  } else {
    if (f->state == DEV_PENDING)
      f->state = strcmp(action, "approve") == 0 ? DEV_APPROVED : DEV_DENIED;
    r->status = 200;
    r->ctype = "application/json";
    buf_puts(&r->body, "{\"ok\":true}");
  }
  json_decref(o);
}

/* The base64url part [p, end) of a JWS, decoded and parsed as a JSON
 * object, or NULL. */
static json_t *part(const char *p, const char *end)
{
  buf_t b = BUF_INIT;
  json_t *o = NULL;
  if (b64url_decode(&b, p, (size_t)(end - p)) != 0 || json_parse(b.data, b.len, &o) != 0 ||
      !json_is_object(o)) {
    json_decref(o);
    o = NULL;
  }
  buf_free(&b);
  return o;
}

static bool aud_ok(const mock_t *m, const char *base, const json_t *aud)
{
  char tok[300];
  snprintf(tok, sizeof tok, "%s/token", base);
  const char *ok[] = {tok, mock_issuer(m, base), m->knobs.assertion_aud};
  size_t i, j;
  json_t *v;
  if (json_is_string(aud)) {
    for (j = 0; j < 3; j++)
      if (ok[j] && strcmp(json_string_value(aud), ok[j]) == 0)
        return true;
  } else if (json_is_array(aud)) {
    json_array_foreach(aud, i, v) if (aud_ok(m, base, v)) return true;
  }
  return false;
}

void mock_grant_jwt_bearer(mock_tctx_t *tc, uint32_t client)
{
  mock_t *m = tc->m;
  const mock_knobs_t *k = &m->knobs;
  const char *a, *scope, *why = NULL;
  if (mock_tc_param(tc, "assertion", &a) != 0 || mock_tc_param(tc, "scope", &scope) != 0)
    return;
  if (a == NULL) {
    mock_tc_fail(tc, 400, "invalid_request", "assertion is required");
    return;
  }
  const char *d1 = strchr(a, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  json_t *h = d1 ? part(a, d1) : NULL, *c = d2 ? part(d1 + 1, d2) : NULL;
  jws_alg_t alg = JWS_ALG_NONE;
  jws_key_t *key = NULL;
  const char *iss = c ? json_get_str(c, "iss") : NULL, *jti = c ? json_get_str(c, "jti") : NULL;
  int64_t exp = 0, iat = 0, now = tc->q->wall / 1000;
  bool replay = false;
  if (h == NULL || c == NULL || jws_alg_parse(json_get_str(h, "alg"), &alg) != 0 ||
      alg == JWS_HS256)
    why = "malformed assertion";
  else if (k->assertion_key == NULL ||
           jws_key_parse(k->assertion_key, strlen(k->assertion_key), &key, NULL) != 0)
    why = "no key is registered for assertions";
  else if (jws_verify_compact(key, alg, a, strlen(a), NULL) != 0)
    why = "assertion signature does not verify";
  else if (iss == NULL || mock_find_client(m, iss) == MOCK_NONE ||
           (client != MOCK_NONE && mock_find_client(m, iss) != client))
    why = "assertion iss is not the client";
  else if (!aud_ok(m, tc->q->base, json_object_get(c, "aud")))
    why = "assertion aud is not this server";
  else if (json_get_int(c, "exp", &exp) != 0 || exp <= now || exp > now + 3600)
    why = "assertion exp is missing, past or more than an hour ahead";
  else if (json_object_get(c, "iat") && (json_get_int(c, "iat", &iat) != 0 || iat > now + 60))
    why = "assertion iat is in the future";
  else if (jti == NULL || *jti == '\0')
    why = "assertion has no jti";
  else if (!mock_tc_jti_fresh(jti))
    why = "assertion jti was used before", replay = true;
  if (why == NULL && scope == NULL)
    scope = json_get_str(c, "scope");
  if (why == NULL && scope != NULL && !mock_scope_valid(scope))
    why = "malformed scope";
  if (why != NULL) {
    m->c.jwt_bearer_rejected++;
    m->c.jwt_bearer_replays += replay;
    mock_tc_fail(tc, 400, "invalid_grant", why);
  } else {
    m->c.jwt_bearer_ok++;
    json_decref(last_assertion);
    last_assertion = json_pack("{sO sO sb ss}", "header", h, "claims", c, "client_authenticated",
                               client != MOCK_NONE, "assertion", a);
    json_object_set_new(last_assertion, "scope_param",
                        form_get(&tc->form, "scope") ? json_string(form_get(&tc->form, "scope"))
                                                     : json_null());
    mock_tc_issue_new(tc, mock_find_client(m, iss), scope, false);
  }
  json_decref(h);
  json_decref(c);
  jws_key_free(key);
}

json_t *mock_last_assertion_json(void)
{
  return last_assertion ? json_incref(last_assertion) : json_null();
}

#define AT_TYPE "urn:ietf:params:oauth:token-type:access_token"

/* A live access token of this mock. */
static bool live_access(const mock_tctx_t *tc, const char *t)
{
  uint32_t i = t ? mock_store_lookup(tc->m->store, t, strlen(t)) : MOCK_NONE;
  const mock_tok_t *k = i != MOCK_NONE ? mock_store_tok(tc->m->store, i) : NULL;
  return k != NULL && k->kind == MOCK_TOK_ACCESS && k->t > tc->q->now;
}

void mock_grant_token_exchange(mock_tctx_t *tc, uint32_t client)
{
  mock_t *m = tc->m;
  const char *st, *stt, *at, *att, *rtt, *scope, *why = NULL, *err = "invalid_request";
  if (mock_tc_param(tc, "subject_token", &st) != 0 ||
      mock_tc_param(tc, "subject_token_type", &stt) != 0 ||
      mock_tc_param(tc, "actor_token", &at) != 0 ||
      mock_tc_param(tc, "actor_token_type", &att) != 0 ||
      mock_tc_param(tc, "requested_token_type", &rtt) != 0 ||
      mock_tc_param(tc, "scope", &scope) != 0)
    return;
  if (st == NULL || stt == NULL)
    why = "subject_token and subject_token_type are required";
  else if ((at == NULL) != (att == NULL))
    why = "actor_token and actor_token_type go together";
  else if (strcmp(stt, AT_TYPE) != 0 || (att && strcmp(att, AT_TYPE) != 0) ||
           (rtt && strcmp(rtt, AT_TYPE) != 0))
    why = "only access tokens are exchanged here";
  else if (!live_access(tc, st))
    why = "subject_token is not a live access token", err = "invalid_grant";
  else if (at && !live_access(tc, at))
    why = "actor_token is not a live access token", err = "invalid_grant";
  else if (scope && !mock_scope_valid(scope))
    why = "malformed scope", err = "invalid_scope";
  if (why != NULL) {
    m->c.token_exchanges_rejected++;
    mock_tc_fail(tc, 400, err, why);
    return;
  }
  json_t *aud = json_array(), *res = json_array();
  for (size_t i = 0; i < tc->form.n; i++) {
    if (strcmp(tc->form.items[i].key, "audience") == 0)
      json_array_append_new(aud, json_string(tc->form.items[i].val));
    else if (strcmp(tc->form.items[i].key, "resource") == 0)
      json_array_append_new(res, json_string(tc->form.items[i].val));
  }
  json_decref(last_exchange);
  last_exchange =
    json_pack("{so so ss sb ss?}", "audience", aud, "resource", res, "subject_token_type", stt,
              "actor", at != NULL, "requested_token_type", rtt);
  m->c.token_exchanges++;
  mock_tc_issue_new(tc, client, scope, false);
  /* RFC 8693 section 2.2.1: issued_token_type is REQUIRED. */
  buf_t *b = &tc->r->body;
  if (tc->r->status == 200 && b->len > 0 && b->data[b->len - 1] == '}') {
    b->len--;
    buf_puts(b, ",\"issued_token_type\":\"" AT_TYPE "\"}");
  }
}

json_t *mock_last_exchange_json(void)
{
  return last_exchange ? json_incref(last_exchange) : json_null();
}
