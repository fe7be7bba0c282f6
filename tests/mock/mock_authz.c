/*
 * mock_authz.c - the mock provider's /authorize endpoint (auto-approving,
 * PKCE challenge stored with the code, RFC 9207 iss, QuickBooks realmId,
 * deny knob) and the endpoints that check tokens: /resource (a protected
 * resource: is this access token live?) and /introspect (RFC 7662 style).
 * Pure functions of a request, like mock_oauth.c (see mock.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/mem.h"
#include "mock.h"

/* An access token still valid at `now`, or MOCK_NONE. */
static uint32_t live_access(mock_t *m, const char *s, int64_t now)
{
  uint32_t idx = mock_store_lookup(m->store, s, strlen(s));
  if (idx == MOCK_NONE)
    return MOCK_NONE;
  mock_tok_t *t = mock_store_tok(m->store, idx);
  return t->kind == MOCK_TOK_ACCESS && t->t > now ? idx : MOCK_NONE;
}

static void describe(mock_t *m, json_t *o, uint32_t fam_idx)
{
  mock_fam_t *fam = mock_store_fam(m->store, fam_idx);
  json_object_set_new(o, "client_id", json_string(m->clients[fam->client].id));
  if (fam->scope != NULL)
    json_object_set_new(o, "scope", json_string(fam->scope));
  if (fam->user != MOCK_NONE)
    json_object_set_new(o, "sub", json_string(m->users[fam->user].name));
}

static void json_answer(mock_resp_t *r, int status, json_t *o)
{
  r->status = status;
  r->ctype = "application/json";
  char *d = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  buf_puts(&r->body, d != NULL ? d : "{}");
  free(d);
  json_decref(o);
}

void mock_resource(mock_t *m, const mock_req_t *q, mock_resp_t *r)
{
  m->c.req_resource++;
  const char *a = q->authz;
  if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0) {
    mock_oauth_error(r, 401, "invalid_request", "a Bearer token is required");
    buf_puts(&r->hdrs, "WWW-Authenticate: Bearer realm=\"mock\"\r\n");
    return;
  }
  a += 7;
  while (*a == ' ')
    a++;
  uint32_t idx = live_access(m, a, q->now);
  if (idx == MOCK_NONE) {
    mock_oauth_error(r, 401, "invalid_token", "the access token is invalid, expired or revoked");
    buf_puts(&r->hdrs, "WWW-Authenticate: Bearer realm=\"mock\", error=\"invalid_token\"\r\n");
    return;
  }
  json_t *o = json_pack("{sb}", "ok", 1);
  describe(m, o, mock_store_tok(m->store, idx)->fam);
  json_answer(r, 200, o);
}

void mock_introspect(mock_t *m, const mock_req_t *q, mock_resp_t *r)
{
  m->c.req_introspect++;
  form_t f = FORM_INIT;
  const char *tok = NULL;
  if (!mock_is_form(q->ctype) || form_parse(q->body, q->body_len, &f) != 0 ||
      form_get_unique(&f, "token", &tok) != 0) {
    form_free(&f);
    mock_oauth_error(r, 400, "invalid_request", "a form with one token parameter is required");
    return;
  }
  uint32_t idx = mock_store_lookup(m->store, tok, strlen(tok));
  mock_tok_t *t = idx != MOCK_NONE ? mock_store_tok(m->store, idx) : NULL;
  json_t *o;
  if (t != NULL && t->kind == MOCK_TOK_ACCESS && t->t > q->now) {
    o = json_pack("{sb ss sI}", "active", 1, "token_type", "access_token", "exp",
                  (json_int_t)((q->wall + (t->t - q->now)) / 1000));
    describe(m, o, t->fam);
  } else if (t != NULL && t->kind == MOCK_TOK_REFRESH && t->state == MOCK_TS_ACTIVE) {
    o = json_pack("{sb ss}", "active", 1, "token_type", "refresh_token");
    describe(m, o, t->fam);
  } else {
    o = json_pack("{sb}", "active", 0);
  }
  form_free(&f);
  json_answer(r, 200, o);
}

/* ---- /authorize ---------------------------------------------------------- */

static bool challenge_valid(const char *c)
{
  size_t n = strlen(c);
  return n >= 43 && n <= 128 &&
         strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") == n;
}

/* A 302 to the client's redirect_uri carrying `error` or `code`, plus state,
 * iss (RFC 9207) and the realmId knob. */
static void redirect(mock_t *m, const mock_req_t *q, mock_resp_t *r, const char *uri,
                     const char *error, const char *code, const char *state)
{
  const mock_knobs_t *k = &m->knobs;
  buf_t loc = BUF_INIT;
  buf_puts(&loc, uri);
  if (error != NULL)
    url_append_query(&loc, "error", error);
  if (code != NULL)
    url_append_query(&loc, "code", code);
  if (state != NULL)
    url_append_query(&loc, "state", state);
  if (k->send_iss || k->issuer != NULL)
    url_append_query(&loc, "iss", mock_issuer(m, q->base));
  if (code != NULL && k->realm_id != NULL)
    url_append_query(&loc, "realmId", k->realm_id);
  r->status = 302;
  buf_printf(&r->hdrs, "Location: %s\r\nCache-Control: no-store\r\n", buf_cstr(&loc));
  buf_wipe_free(&loc);
}

static void page(mock_resp_t *r, int status, const char *msg)
{
  r->status = status;
  r->ctype = "text/plain; charset=utf-8";
  buf_puts(&r->body, msg);
  buf_putc(&r->body, '\n');
}

void mock_authorize(mock_t *m, const mock_req_t *q, mock_resp_t *r)
{
  const mock_knobs_t *k = &m->knobs;
  form_t f = FORM_INIT;
  const char *client_id = NULL, *uri = NULL, *state = NULL, *rtype = NULL, *scope = NULL,
             *chal = NULL, *method = NULL;
  m->c.req_authorize++;
  const char *qs = q->query != NULL ? q->query : "";
  if (form_parse(qs, strlen(qs), &f) != 0 ||
      form_get_unique(&f, "client_id", &client_id) == GRANTD_EINVALID ||
      form_get_unique(&f, "redirect_uri", &uri) == GRANTD_EINVALID) {
    page(r, 400, "malformed authorization request");
    goto done;
  }
  uint32_t client = client_id != NULL ? mock_find_client(m, client_id) : MOCK_NONE;
  if (client == MOCK_NONE) {
    /* Section 4.1.2.1: never redirect for a bad client or redirect_uri. */
    page(r, 400, "unknown client_id");
    goto done;
  }
  url_t u = {0};
  int bad_uri = uri == NULL || url_parse(uri, &u) != 0 || u.fragment != NULL;
  url_free(&u);
  if (bad_uri) {
    page(r, 400, "missing or invalid redirect_uri");
    goto done;
  }
  if (form_get_unique(&f, "state", &state) == GRANTD_EINVALID ||
      form_get_unique(&f, "response_type", &rtype) == GRANTD_EINVALID ||
      form_get_unique(&f, "scope", &scope) == GRANTD_EINVALID ||
      form_get_unique(&f, "code_challenge", &chal) == GRANTD_EINVALID ||
      form_get_unique(&f, "code_challenge_method", &method) == GRANTD_EINVALID) {
    redirect(m, q, r, uri, "invalid_request", NULL, state);
    goto done;
  }
  const char *err = NULL;
  if (rtype == NULL)
    err = "invalid_request";
  else if (strcmp(rtype, "code") != 0)
    err = "unsupported_response_type";
  else if (scope != NULL && !mock_scope_valid(scope))
    err = "invalid_scope";
  else if (method != NULL && strcmp(method, "S256") != 0 && strcmp(method, "plain") != 0)
    err = "invalid_request";
  else if (method != NULL && chal == NULL)
    err = "invalid_request";
  else if (chal != NULL && !challenge_valid(chal))
    err = "invalid_request";
  else if (chal == NULL && k->require_pkce)
    err = "invalid_request";
  else if (k->deny)
    err = "access_denied";
  if (err != NULL) {
    redirect(m, q, r, uri, err, NULL, state);
    goto done;
  }
  uint32_t fam = mock_store_family_new(m->store, client, m->nusers > 0 ? 0 : MOCK_NONE, scope);
  mock_code_t *cd = xcalloc(1, sizeof *cd);
  cd->redirect_uri = xstrdup(uri);
  cd->challenge = xstrdup(chal);
  cd->method_s256 = method != NULL && strcmp(method, "S256") == 0;
  mock_store_fam(m->store, fam)->code = cd;
  char code[MOCK_TOKEN_LEN + 1];
  mock_store_token_new(m->store, fam, MOCK_TOK_CODE, q->now + k->code_ttl_s * 1000, code);
  m->c.issued_codes++;
  redirect(m, q, r, uri, NULL, code, state);
  mem_wipe(code, sizeof code);
done:
  form_free(&f);
}
