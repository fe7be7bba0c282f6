/*
 * mock_oauth.c - the mock provider's OAuth endpoints as functions of a
 * request (mock_req_t) to a response (mock_resp_t); no I/O (see mock.h).
 *
 * /token implements the four RFC 6749 grants with client_secret_basic
 * (section 2.3.1: the id and secret are form-urldecoded after base64) and
 * client_secret_post, public clients (registered with an empty secret),
 * PKCE (RFC 7636, S256 and plain, checked with BearSSL's SHA-256 rather
 * than grantd's own pkce.c so a bug there cannot hide itself), refresh
 * token rotation with a reuse grace window, and replay detection: a used
 * code or a rotated refresh token presented again (outside the window)
 * revokes the whole grant, as RFC 6749 section 4.1.2 and the OAuth
 * security BCP describe. Faults from the knobs replace or reshape the
 * answer; "format" faults (form_encoded, chunked, expires_in_missing) still
 * run the grant, the others do not unless fault_after_grant is set, which
 * reproduces "the server rotated, the client never saw the answer".
 *
 * /authorize, /resource and /introspect are in mock_authz.c.
 *
 * The token path formats its JSON with buf_printf (values are random
 * base64url, validated scopes and knob strings without quotes) instead of
 * building jansson trees, to keep it allocation-light.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bearssl.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "mock.h"
#include "oauth/jws.h"

#define NO_STORE "Cache-Control: no-store\r\nPragma: no-cache\r\n"

void mock_resp_reset(mock_resp_t *r)
{
  r->status = 200;
  r->ctype = NULL;
  buf_reset(&r->body);
  buf_reset(&r->hdrs);
  r->raw = MOCK_RAW_NONE;
}

void mock_resp_free(mock_resp_t *r)
{
  buf_wipe_free(&r->body);
  buf_free(&r->hdrs);
}

void mock_oauth_error(mock_resp_t *r, int status, const char *error, const char *desc)
{
  r->status = status;
  r->ctype = "application/json";
  buf_printf(&r->body, "{\"error\":\"%s\"", error);
  if (desc != NULL)
    buf_printf(&r->body, ",\"error_description\":\"%s\"", desc);
  buf_putc(&r->body, '}');
}

typedef mock_tctx_t tctx_t;

static void count_error(mock_counters_t *c, const char *error)
{
  if (strcmp(error, "invalid_request") == 0)
    c->err_invalid_request++;
  else if (strcmp(error, "invalid_client") == 0)
    c->err_invalid_client++;
  else if (strcmp(error, "invalid_grant") == 0)
    c->err_invalid_grant++;
  else if (strcmp(error, "unsupported_grant_type") == 0)
    c->err_unsupported_grant++;
  else if (strcmp(error, "invalid_scope") == 0)
    c->err_invalid_scope++;
  else if (strcmp(error, "unauthorized_client") == 0)
    c->err_unauthorized_client++;
}

/* Answers an OAuth error (JSON, or a form body under the form_encoded
 * fault). invalid_client carries the RFC 6749 section 5.2 challenge. */
static void fail(tctx_t *tc, int status, const char *error, const char *desc)
{
  mock_resp_t *r = tc->r;
  count_error(&tc->m->c, error);
  buf_reset(&r->body);
  buf_reset(&r->hdrs);
  if (tc->fmt == MOCK_FAULT_FORM_ENCODED) {
    r->status = status;
    r->ctype = "application/x-www-form-urlencoded";
    form_add(&r->body, "error", error);
    form_add(&r->body, "error_description", desc);
  } else {
    mock_oauth_error(r, status, error, desc);
  }
  buf_puts(&r->hdrs, NO_STORE);
  if (strcmp(error, "invalid_client") == 0)
    buf_puts(&r->hdrs, "WWW-Authenticate: Basic realm=\"mock\"\r\n");
}

/* A parameter that must not be repeated (RFC 6749 section 3.1). Returns 0
 * (value or NULL when absent) or -1 after answering invalid_request. */
static int param(tctx_t *tc, const char *key, const char **val)
{
  int e = form_get_unique(&tc->form, key, val);
  if (e == GRANTD_EINVALID) {
    char d[96];
    snprintf(d, sizeof d, "parameter %s is repeated", key);
    fail(tc, 400, "invalid_request", d);
    return -1;
  }
  return 0;
}

static bool is_json(const char *ctype)
{
  static const char j[] = "application/json";
  return ctype != NULL && strncasecmp(ctype, j, sizeof j - 1) == 0 &&
         (ctype[sizeof j - 1] == '\0' || ctype[sizeof j - 1] == ';' || ctype[sizeof j - 1] == ' ');
}

/* A JSON object of string members (a token request sent as JSON, as some
 * providers document) read into a form; -1 for anything else. */
static int json_form(const char *s, size_t n, form_t *out)
{
  json_t *o = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
  const char *k;
  json_t *v;
  int rc = json_is_object(o) ? 0 : -1;
  json_object_foreach(o, k, v)
  {
    if (!json_is_string(v)) {
      rc = -1;
      break;
    }
    if (out->n == out->cap) {
      out->cap = out->cap ? out->cap * 2 : 8;
      out->items = xrealloc(out->items, out->cap * sizeof *out->items);
    }
    out->items[out->n].key = xstrdup(k);
    out->items[out->n++].val = xstrdup(json_string_value(v));
  }
  json_decref(o);
  if (rc != 0)
    form_free(out);
  return rc;
}

bool mock_is_form(const char *ctype)
{
  static const char f[] = "application/x-www-form-urlencoded";
  return ctype != NULL && strncasecmp(ctype, f, sizeof f - 1) == 0 &&
         (ctype[sizeof f - 1] == '\0' || ctype[sizeof f - 1] == ';' || ctype[sizeof f - 1] == ' ');
}

bool mock_scope_valid(const char *s)
{
  size_t n = 0;
  for (; s[n]; n++) {
    unsigned char c = (unsigned char)s[n];
    if (!(c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e)))
      return false;
  }
  return n > 0 && n <= 1024;
}

/* Every space-separated word of want occurs in have. */
static bool scope_subset(const char *want, const char *have)
{
  if (have == NULL)
    return false;
  const char *p = want;
  while (*p) {
    while (*p == ' ')
      p++;
    size_t n = strcspn(p, " ");
    if (n == 0)
      break;
    bool found = false;
    for (const char *h = have; *h && !found;) {
      while (*h == ' ')
        h++;
      size_t hn = strcspn(h, " ");
      found = hn == n && memcmp(h, p, n) == 0;
      h += hn;
    }
    if (!found)
      return false;
    p += n;
  }
  return true;
}

uint32_t mock_find_client(const mock_t *m, const char *id)
{
  for (size_t i = 0; i < m->nclients; i++)
    if (strcmp(m->clients[i].id, id) == 0)
      return (uint32_t)i;
  return MOCK_NONE;
}

/* Equal strings, in time independent of where they differ. */
static bool secret_eq(const char *a, const char *b)
{
  size_t na = strlen(a), nb = strlen(b);
  unsigned char d = na != nb;
  for (size_t i = 0; i < na && i < nb; i++)
    d |= (unsigned char)(a[i] ^ b[i]);
  return d == 0;
}

/* The jti values of accepted client assertions (RFC 7523 section 3 point
 * 7: an assertion is used once), the last JTI_SEEN of them. */
#define JTI_SEEN 1024
static char *jti_seen[JTI_SEEN];
static size_t jti_next;

static bool jti_fresh(const char *jti)
{
  for (size_t i = 0; i < JTI_SEEN; i++)
    if (jti_seen[i] && strcmp(jti_seen[i], jti) == 0)
      return false;
  free(jti_seen[jti_next]);
  jti_seen[jti_next] = xstrdup(jti);
  jti_next = (jti_next + 1) % JTI_SEEN;
  return true;
}

/* The base64url part [p, end) of a JWS, decoded and parsed as JSON. */
static json_t *jws_part(const char *p, const char *end)
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

/* RFC 7523 sections 2.2 and 3 as an authorization server applies them:
 * the assertion's type, its signature (the registered key, or the
 * client's secret for HS256), iss = sub = a known client (= client_id
 * when given), aud = this server's issuer or token endpoint, an exp in the
 * future and not too far off, and a jti not seen before. */
static uint32_t authenticate_jwt(tctx_t *tc, const char *pid, const char *jwt)
{
  const mock_knobs_t *k = &tc->m->knobs;
  const char *type, *why = NULL;
  if (param(tc, "client_assertion_type", &type) != 0)
    return MOCK_NONE;
  if (type == NULL || strcmp(type, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") != 0) {
    fail(tc, 400, "invalid_request", "client_assertion_type must be the RFC 7523 jwt-bearer URN");
    return MOCK_NONE;
  }
  const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  json_t *h = d1 ? jws_part(jwt, d1) : NULL;
  json_t *c = d2 ? jws_part(d1 + 1, d2) : NULL;
  jws_alg_t alg = JWS_ALG_NONE;
  jws_key_t *key = NULL;
  uint32_t client = MOCK_NONE;
  const char *iss = c ? json_get_str(c, "iss") : NULL;
  if (h == NULL || c == NULL || jws_alg_parse(json_get_str(h, "alg"), &alg) != 0) {
    why = "malformed client_assertion";
  } else if (iss == NULL || (client = mock_find_client(tc->m, iss)) == MOCK_NONE) {
    why = "client_assertion iss is not a known client";
  } else if (alg == JWS_HS256) {
    const char *sec = tc->m->clients[client].secret;
    if (k->client_auth == MOCK_AUTH_PRIVATE_KEY_JWT)
      why = "client_secret_jwt is not allowed";
    else if (jws_key_from_secret(sec, strlen(sec), &key, NULL) != 0)
      why = "the client has no secret";
  } else if (k->client_auth == MOCK_AUTH_SECRET_JWT) {
    why = "private_key_jwt is not allowed";
  } else if (k->client_assertion_key == NULL ||
             jws_key_parse(k->client_assertion_key, strlen(k->client_assertion_key), &key, NULL) !=
               0) {
    why = "no key is registered for private_key_jwt";
  }
  if (why == NULL && jws_verify_compact(key, alg, jwt, strlen(jwt), NULL) != 0)
    why = "client_assertion signature does not verify";
  if (why == NULL) {
    const char *sub = json_get_str(c, "sub"), *aud = json_get_str(c, "aud");
    const char *jti = json_get_str(c, "jti");
    int64_t exp = 0, now = tc->q->wall / 1000;
    buf_t tok = BUF_INIT;
    buf_printf(&tok, "%s/token", tc->q->base);
    if (sub == NULL || strcmp(sub, iss) != 0)
      why = "client_assertion sub must equal iss";
    else if (pid != NULL && strcmp(pid, iss) != 0)
      why = "client_id differs from the client_assertion iss";
    else if (aud == NULL || (strcmp(aud, buf_cstr(&tok)) != 0 &&
                             strcmp(aud, mock_issuer(tc->m, tc->q->base)) != 0))
      why = "client_assertion aud is not this server";
    else if (json_get_int(c, "exp", &exp) != 0 || exp <= now || exp > now + 600)
      why = "client_assertion exp is missing, past or too far ahead";
    else if (jti == NULL || *jti == '\0')
      why = "client_assertion has no jti";
    else if (!jti_fresh(jti))
      why = "client_assertion jti was used before";
    buf_free(&tok);
  }
  json_decref(h);
  json_decref(c);
  jws_key_free(key);
  if (why != NULL) {
    fail(tc, 401, "invalid_client", why);
    return MOCK_NONE;
  }
  free(tc->m->last_assertion);
  tc->m->last_assertion = xstrdup(jwt);
  return client;
}

/* RFC 8705 section 2: a client_id in the request, no other credentials,
 * and the TLS client certificate of the connection: one that chains to
 * the client CA (tls_client_auth) or the one registered for the client
 * (self_signed_tls_client_auth; for tls_client_auth the registered
 * certificate, when set, stands in for the registered subject DN). A
 * request on the listener without client authentication has no
 * certificate at all: grantd must use the mtls_endpoint_aliases. */
static uint32_t authenticate_tls(tctx_t *tc, const char *pid, bool other)
{
  const mock_knobs_t *k = &tc->m->knobs;
  const mock_req_t *q = tc->q;
  uint32_t client = pid != NULL ? mock_find_client(tc->m, pid) : MOCK_NONE;
  const char *why = NULL;
  if (other)
    why = "a mutual-TLS client sends no client_secret, Basic credentials or assertion";
  else if (client == MOCK_NONE)
    why = "client_id is required and must be a known client (RFC 8705 section 2)";
  else if (!q->mtls)
    why = "mutual TLS: this endpoint asks for no client certificate (use the "
          "mtls_endpoint_aliases)";
  else if (!q->has_cert)
    why = "no client certificate was presented";
  else if (k->client_auth == MOCK_AUTH_TLS && !q->cert_trusted)
    why = "the client certificate does not chain to a trusted client CA";
  else if (k->client_auth == MOCK_AUTH_SELF_SIGNED_TLS && k->client_cert_sha256 == NULL)
    why = "no certificate is registered for this client";
  else if (k->client_cert_sha256 != NULL && strcasecmp(k->client_cert_sha256, q->cert_sha256) != 0)
    why = "the client certificate is not the one registered for this client";
  if (why != NULL) {
    fail(tc, 401, "invalid_client", why);
    return MOCK_NONE;
  }
  return client;
}

/* Authenticates the client (RFC 6749 section 2.3). Returns its index, or
 * MOCK_NONE after answering the error. */
static uint32_t authenticate(tctx_t *tc)
{
  const mock_knobs_t *k = &tc->m->knobs;
  const char *authz = tc->q->authz, *pid, *psec, *pas;
  bool basic = authz != NULL && strncasecmp(authz, "Basic ", 6) == 0;
  if (param(tc, "client_id", &pid) != 0 || param(tc, "client_secret", &psec) != 0 ||
      param(tc, "client_assertion", &pas) != 0)
    return MOCK_NONE;
  if (k->client_auth == MOCK_AUTH_TLS || k->client_auth == MOCK_AUTH_SELF_SIGNED_TLS)
    return authenticate_tls(tc, pid, basic || psec != NULL || pas != NULL);
  if (pas != NULL && (basic || psec != NULL)) {
    fail(tc, 400, "invalid_request", "more than one client authentication method");
    return MOCK_NONE;
  }
  if (pas != NULL)
    return authenticate_jwt(tc, pid, pas);
  if (k->client_auth == MOCK_AUTH_PRIVATE_KEY_JWT || k->client_auth == MOCK_AUTH_SECRET_JWT) {
    fail(tc, 401, "invalid_client", "a client_assertion is required");
    return MOCK_NONE;
  }
  if (basic && psec != NULL) {
    fail(tc, 400, "invalid_request", "more than one client authentication method");
    return MOCK_NONE;
  }
  uint32_t client = MOCK_NONE;
  if (basic) {
    if (k->client_auth == MOCK_AUTH_POST) {
      fail(tc, 401, "invalid_client", "client_secret_basic is not allowed");
      return MOCK_NONE;
    }
    const char *s = authz + 6;
    while (*s == ' ')
      s++;
    buf_t raw = BUF_INIT, id = BUF_INIT, sec = BUF_INIT;
    const char *colon = NULL;
    if (b64_decode(&raw, s, strlen(s)) == 0 && raw.len > 0)
      colon = memchr(raw.data, ':', raw.len);
    if (colon != NULL && url_decode(&id, raw.data, (size_t)(colon - raw.data), URL_DEC_FORM) == 0 &&
        url_decode(&sec, colon + 1, raw.len - (size_t)(colon - raw.data) - 1, URL_DEC_FORM) == 0) {
      client = mock_find_client(tc->m, buf_cstr(&id));
      if (client != MOCK_NONE && !secret_eq(tc->m->clients[client].secret, buf_cstr(&sec)))
        client = MOCK_NONE;
      if (client != MOCK_NONE && pid != NULL && strcmp(pid, buf_cstr(&id)) != 0) {
        fail(tc, 400, "invalid_request", "client_id differs from the Basic credentials");
        buf_wipe_free(&raw);
        buf_wipe_free(&id);
        buf_wipe_free(&sec);
        return MOCK_NONE;
      }
      if (client == MOCK_NONE)
        fail(tc, 401, "invalid_client", "unknown client or wrong secret");
    } else {
      fail(tc, 401, "invalid_client", "malformed Basic credentials");
    }
    buf_wipe_free(&raw);
    buf_wipe_free(&id);
    buf_wipe_free(&sec);
    return client;
  }
  if (psec != NULL) {
    if (k->client_auth == MOCK_AUTH_BASIC) {
      fail(tc, 401, "invalid_client", "client_secret_post is not allowed");
      return MOCK_NONE;
    }
    if (pid != NULL)
      client = mock_find_client(tc->m, pid);
    if (client == MOCK_NONE || !secret_eq(tc->m->clients[client].secret, psec)) {
      fail(tc, 401, "invalid_client", "unknown client or wrong secret");
      return MOCK_NONE;
    }
    return client;
  }
  if (pid != NULL) {
    client = mock_find_client(tc->m, pid);
    if (client != MOCK_NONE && tc->m->clients[client].secret[0] == '\0')
      return client; /* a public client */
  }
  fail(tc, 401, "invalid_client", "client authentication required");
  return MOCK_NONE;
}

/* ---- token responses ----------------------------------------------------- */

static void success(tctx_t *tc, const char *at, const char *rt, const char *scope)
{
  const mock_knobs_t *k = &tc->m->knobs;
  mock_resp_t *r = tc->r;
  bool exp = k->expires_in > 0 && tc->fmt != MOCK_FAULT_EXPIRES_MISSING;
  r->status = 200;
  buf_puts(&r->hdrs, NO_STORE);
  if (tc->fmt == MOCK_FAULT_FORM_ENCODED) {
    /* GitHub's shape: a form body, every value a string. */
    char num[24];
    r->ctype = "application/x-www-form-urlencoded";
    form_add(&r->body, "access_token", at);
    form_add(&r->body, "token_type", k->token_type);
    if (exp) {
      snprintf(num, sizeof num, "%lld", (long long)k->expires_in);
      form_add(&r->body, "expires_in", num);
    }
    if (rt != NULL)
      form_add(&r->body, "refresh_token", rt);
    if (scope != NULL)
      form_add(&r->body, "scope", scope);
    const char *key;
    json_t *v;
    json_object_foreach(k->extra, key, v)
    {
      if (json_is_string(v)) {
        form_add(&r->body, key, json_string_value(v));
      } else {
        char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        form_add(&r->body, key, d != NULL ? d : "");
        free(d);
      }
    }
    return;
  }
  r->ctype = "application/json";
  buf_printf(&r->body, "{\"access_token\":\"%s\",\"token_type\":\"%s\"", at, k->token_type);
  if (exp)
    buf_printf(&r->body,
               k->expires_in_as_string ? ",\"expires_in\":\"%lld\"" : ",\"expires_in\":%lld",
               (long long)k->expires_in);
  if (rt != NULL)
    buf_printf(&r->body, ",\"refresh_token\":\"%s\"", rt);
  if (scope != NULL)
    buf_printf(&r->body, ",\"scope\":\"%s\"", scope);
  buf_puts(&r->body, k->extra_json);
  buf_putc(&r->body, '}');
}

/* Issues an access token in family f (and a new refresh token when
 * new_refresh; else rt, which may be NULL, is repeated) and answers. */
static void issue(tctx_t *tc, uint32_t f, bool new_refresh, const char *rt, const char *scope)
{
  mock_t *m = tc->m;
  const mock_knobs_t *k = &m->knobs;
  char at[MOCK_TOKEN_LEN + 1], nrt[MOCK_TOKEN_LEN + 1];
  int64_t ttl = k->expires_in > 0 ? k->expires_in : k->access_ttl_s;
  mock_store_token_new(m->store, f, MOCK_TOK_ACCESS, tc->q->now + ttl * 1000, at);
  m->c.issued_access++;
  if (new_refresh) {
    mock_store_token_new(m->store, f, MOCK_TOK_REFRESH, 0, nrt);
    m->c.issued_refresh++;
    rt = nrt;
  }
  success(tc, at, rt, scope);
  mem_wipe(at, sizeof at);
  mem_wipe(nrt, sizeof nrt);
}

/* ---- grants -------------------------------------------------------------- */

static bool pkce_ok(const mock_code_t *code, const char *verifier)
{
  size_t n = strlen(verifier);
  if (n < 43 || n > 128 ||
      strspn(verifier, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789-._~") != n)
    return false;
  if (!code->method_s256)
    return strcmp(verifier, code->challenge) == 0;
  br_sha256_context h;
  unsigned char d[br_sha256_SIZE];
  br_sha256_init(&h);
  br_sha256_update(&h, verifier, n);
  br_sha256_out(&h, d);
  buf_t b = BUF_INIT;
  b64url_encode(&b, d, sizeof d);
  bool ok = strcmp(buf_cstr(&b), code->challenge) == 0;
  buf_free(&b);
  return ok;
}

static void grant_code(tctx_t *tc, uint32_t client)
{
  mock_t *m = tc->m;
  const char *code, *redirect, *verifier;
  if (param(tc, "code", &code) != 0 || param(tc, "redirect_uri", &redirect) != 0 ||
      param(tc, "code_verifier", &verifier) != 0)
    return;
  if (code == NULL) {
    fail(tc, 400, "invalid_request", "code is required");
    return;
  }
  uint32_t idx = mock_store_lookup(m->store, code, strlen(code));
  mock_tok_t *t = idx != MOCK_NONE ? mock_store_tok(m->store, idx) : NULL;
  if (t == NULL || t->kind != MOCK_TOK_CODE) {
    fail(tc, 400, "invalid_grant", "unknown authorization code");
    return;
  }
  uint32_t f = t->fam;
  mock_fam_t *fam = mock_store_fam(m->store, f);
  if (fam->client != client) {
    fail(tc, 400, "invalid_grant", "code was issued to another client");
    return;
  }
  if (t->state == MOCK_TS_USED) {
    m->c.replays++;
    m->c.families_revoked++;
    mock_store_family_free(m->store, f);
    fail(tc, 400, "invalid_grant", "authorization code reused; grant revoked");
    return;
  }
  if (t->t <= tc->q->now || fam->code == NULL) {
    fail(tc, 400, "invalid_grant", "authorization code expired");
    return;
  }
  mock_code_t *cd = fam->code;
  if (cd->redirect_uri != NULL && (redirect == NULL || strcmp(redirect, cd->redirect_uri) != 0)) {
    fail(tc, 400, "invalid_grant", "redirect_uri does not match the authorization request");
    return;
  }
  if (cd->challenge != NULL && (verifier == NULL || !pkce_ok(cd, verifier))) {
    fail(tc, 400, "invalid_grant", "PKCE verification failed");
    return;
  }
  if (cd->challenge == NULL && verifier != NULL) {
    fail(tc, 400, "invalid_grant", "code_verifier without a code_challenge");
    return;
  }
  /* Keep the used code (until it would have expired) to detect replays. */
  t->state = MOCK_TS_USED;
  free(cd->redirect_uri);
  free_secret(cd->challenge);
  free(cd);
  fam->code = NULL;
  issue(tc, f, true, NULL, fam->scope);
}

static void grant_refresh(tctx_t *tc, uint32_t client)
{
  mock_t *m = tc->m;
  const mock_knobs_t *k = &m->knobs;
  const char *rt, *scope;
  if (param(tc, "refresh_token", &rt) != 0 || param(tc, "scope", &scope) != 0)
    return;
  if (rt == NULL) {
    fail(tc, 400, "invalid_request", "refresh_token is required");
    return;
  }
  uint32_t idx = mock_store_lookup(m->store, rt, strlen(rt));
  mock_tok_t *t = idx != MOCK_NONE ? mock_store_tok(m->store, idx) : NULL;
  if (t == NULL || t->kind != MOCK_TOK_REFRESH) {
    fail(tc, 400, "invalid_grant", "unknown or revoked refresh token");
    return;
  }
  uint32_t f = t->fam;
  mock_fam_t *fam = mock_store_fam(m->store, f);
  if (fam->client != client) {
    fail(tc, 400, "invalid_grant", "refresh token was issued to another client");
    return;
  }
  if (scope != NULL && (!mock_scope_valid(scope) || !scope_subset(scope, fam->scope))) {
    fail(tc, 400, "invalid_scope", "scope exceeds the original grant");
    return;
  }
  const char *out_scope = scope != NULL ? scope : fam->scope;
  if (t->state == MOCK_TS_ROTATED) {
    if (k->reuse_grace_s > 0 && tc->q->now - t->t <= k->reuse_grace_s * 1000 &&
        fam->refresh != MOCK_NONE) {
      /* Within the window the old token still works and yields the
       * grant's current refresh token, so concurrent users converge. */
      char cur[MOCK_TOKEN_LEN + 1];
      mock_store_token_text(m->store, fam->refresh, cur);
      m->c.grace_reuses++;
      m->c.refreshes++;
      issue(tc, f, false, cur, out_scope);
      mem_wipe(cur, sizeof cur);
      return;
    }
    m->c.replays++;
    m->c.families_revoked++;
    mock_store_family_free(m->store, f);
    fail(tc, 400, "invalid_grant", "refresh token reuse detected; grant revoked");
    return;
  }
  m->c.refreshes++;
  if (k->rotate_refresh_tokens) {
    mock_store_rotate(m->store, idx, tc->q->now, (unsigned)k->keep_rotated);
    m->c.rotations++;
    issue(tc, f, true, NULL, out_scope);
  } else {
    issue(tc, f, false, k->echo_refresh_token ? rt : NULL, out_scope);
  }
}

static void grant_new(tctx_t *tc, uint32_t client, bool password)
{
  mock_t *m = tc->m;
  const char *scope, *user = NULL, *pass = NULL;
  if (param(tc, "scope", &scope) != 0)
    return;
  if (password && (param(tc, "username", &user) != 0 || param(tc, "password", &pass) != 0))
    return;
  if (scope != NULL && !mock_scope_valid(scope)) {
    fail(tc, 400, "invalid_scope", "malformed scope");
    return;
  }
  uint32_t u = MOCK_NONE;
  if (password) {
    if (user == NULL || pass == NULL) {
      fail(tc, 400, "invalid_request", "username and password are required");
      return;
    }
    for (size_t i = 0; i < m->nusers && u == MOCK_NONE; i++)
      if (strcmp(m->users[i].name, user) == 0 && secret_eq(m->users[i].pass, pass))
        u = (uint32_t)i;
    if (u == MOCK_NONE) {
      fail(tc, 400, "invalid_grant", "wrong username or password");
      return;
    }
  }
  uint32_t f = mock_store_family_new(m->store, client, u, scope);
  /* RFC 6749 section 4.4.3: no refresh token for client_credentials. */
  issue(tc, f, password, NULL, mock_store_fam(m->store, f)->scope);
}

/* ---- faults -------------------------------------------------------------- */

static bool is_format_fault(mock_fault_t f)
{
  return f == MOCK_FAULT_FORM_ENCODED || f == MOCK_FAULT_CHUNKED || f == MOCK_FAULT_EXPIRES_MISSING;
}

/* Replaces the answer by the fault's. A close_mid_response after a
 * processed grant keeps the real (successful) body, so the client loses
 * tokens the provider has already issued. */
static void render_fault(tctx_t *tc, mock_fault_t f, bool processed)
{
  mock_resp_t *r = tc->r;
  const mock_knobs_t *k = &tc->m->knobs;
  if (f == MOCK_FAULT_CLOSE_MID && processed) {
    r->raw = MOCK_RAW_CLOSE_MID;
    return;
  }
  mock_resp_reset(r);
  switch (f) {
  case MOCK_FAULT_INVALID_GRANT: mock_oauth_error(r, 400, "invalid_grant", "injected fault"); break;
  case MOCK_FAULT_INVALID_CLIENT:
    mock_oauth_error(r, 401, "invalid_client", "injected fault");
    buf_puts(&r->hdrs, "WWW-Authenticate: Basic realm=\"mock\"\r\n");
    break;
  case MOCK_FAULT_429:
    mock_oauth_error(r, 429, "rate_limited", "injected fault");
    buf_printf(&r->hdrs, "Retry-After: %lld\r\n", (long long)k->retry_after);
    break;
  case MOCK_FAULT_500:
    r->status = 500;
    r->ctype = "text/html";
    buf_puts(&r->body, "<html><body><h1>500 Internal Server Error</h1></body></html>\n");
    break;
  case MOCK_FAULT_HANG: r->raw = MOCK_RAW_HANG; break;
  case MOCK_FAULT_CLOSE_MID:
    r->ctype = "application/json";
    buf_puts(&r->body, "{\"access_token\":\"close-mid-response-fault-token-0000000000\","
                       "\"token_type\":\"Bearer\",\"expires_in\":3600}");
    r->raw = MOCK_RAW_CLOSE_MID;
    break;
  case MOCK_FAULT_MALFORMED_JSON:
    r->ctype = "application/json";
    buf_puts(&r->body, "{\"access_token\":\"malformed\",\"token_type\":\"Bearer\",\"expires_in\":");
    break;
  case MOCK_FAULT_EMPTY_400: r->status = 400; break;
  case MOCK_FAULT_EMPTY_403: r->status = 403; break;
  case MOCK_FAULT_ERROR_200:
    mock_oauth_error(r, 200, k->fault_error, "injected error with HTTP 200");
    break;
  default: break;
  }
}

/* ---- endpoints ----------------------------------------------------------- */

/* Common start of /token and /revoke: the form is parsed first (so a
 * faulted request is still counted by grant type), then the fault is
 * taken, then Content-Type and form errors are answered. Returns 0 to go
 * on; otherwise the answer is set. *fault gets a non-format fault to apply
 * after the grant (fault_after_grant), or NONE. */
static int begin(tctx_t *tc, int endpoint, mock_fault_t *fault)
{
  bool json = is_json(tc->q->ctype);
  bool form_ok =
    json ? json_form(tc->q->body, tc->q->body_len, &tc->form) == 0
         : mock_is_form(tc->q->ctype) && form_parse(tc->q->body, tc->q->body_len, &tc->form) == 0;
  if (json)
    tc->m->c.json_bodies++;
  if (endpoint == MOCK_FAULT_ON_TOKEN) {
    const char *gt = form_ok ? form_get(&tc->form, "grant_type") : NULL;
    mock_counters_t *c = &tc->m->c;
    uint64_t *n = gt == NULL                              ? &c->grant_other
                  : strcmp(gt, "authorization_code") == 0 ? &c->grant_code
                  : strcmp(gt, "refresh_token") == 0      ? &c->grant_refresh
                  : strcmp(gt, "client_credentials") == 0 ? &c->grant_cc
                  : strcmp(gt, "password") == 0           ? &c->grant_password
                                                          : &c->grant_other;
    (*n)++;
  }
  mock_fault_t f = mock_fault_take(tc->m, endpoint);
  *fault = MOCK_FAULT_NONE;
  if (is_format_fault(f)) {
    tc->fmt = f;
  } else if (f != MOCK_FAULT_NONE) {
    if (!tc->m->knobs.fault_after_grant) {
      render_fault(tc, f, false);
      return -1;
    }
    *fault = f;
  }
  if (!mock_is_form(tc->q->ctype) && !json) {
    fail(tc, 400, "invalid_request",
         "Content-Type must be application/x-www-form-urlencoded (or application/json)");
    return -1;
  }
  if (!form_ok) {
    fail(tc, 400, "invalid_request", "malformed form body");
    return -1;
  }
  return 0;
}

static void end(tctx_t *tc, mock_fault_t after)
{
  if (after != MOCK_FAULT_NONE)
    render_fault(tc, after, true);
  if (tc->fmt == MOCK_FAULT_CHUNKED && tc->r->raw == MOCK_RAW_NONE)
    tc->r->raw = MOCK_RAW_CHUNKED;
  form_free(&tc->form);
}

void mock_token(mock_t *m, const mock_req_t *q, mock_resp_t *r)
{
  tctx_t tc = {m, q, r, FORM_INIT, MOCK_FAULT_NONE};
  mock_fault_t after;
  m->c.req_token++;
  if (begin(&tc, MOCK_FAULT_ON_TOKEN, &after) != 0)
    goto done;
  const char *gt;
  if (param(&tc, "grant_type", &gt) != 0)
    goto done;
  int g = gt == NULL                                                           ? -1
          : strcmp(gt, "authorization_code") == 0                              ? 0
          : strcmp(gt, "refresh_token") == 0                                   ? 1
          : strcmp(gt, "client_credentials") == 0                              ? 2
          : strcmp(gt, "password") == 0                                        ? 3
          : strcmp(gt, "urn:ietf:params:oauth:grant-type:device_code") == 0    ? 5
          : strcmp(gt, "urn:ietf:params:oauth:grant-type:jwt-bearer") == 0     ? 6
          : strcmp(gt, "urn:ietf:params:oauth:grant-type:token-exchange") == 0 ? 7
                                                                               : 4;
  if (g < 0) {
    fail(&tc, 400, "invalid_request", "grant_type is required");
    goto done;
  }
  if (g == 4) {
    fail(&tc, 400, "unsupported_grant_type", "unsupported grant_type");
    goto done;
  }
  /* RFC 7523 section 3.1: an assertion grant needs no client
   * authentication; the assertion's iss names the client. */
  uint32_t client = MOCK_NONE;
  if (g == 6 && q->authz == NULL && form_get(&tc.form, "client_id") == NULL &&
      form_get(&tc.form, "client_assertion") == NULL) {
    mock_grant_jwt_bearer(&tc, MOCK_NONE);
    goto done;
  }
  client = authenticate(&tc);
  if (client == MOCK_NONE)
    goto done;
  switch (g) {
  case 0: grant_code(&tc, client); break;
  case 1: grant_refresh(&tc, client); break;
  case 2: grant_new(&tc, client, false); break;
  case 5: mock_grant_device(&tc, client); break;
  case 6: mock_grant_jwt_bearer(&tc, client); break;
  case 7: mock_grant_token_exchange(&tc, client); break;
  default: grant_new(&tc, client, true); break;
  }
done:
  end(&tc, after);
}

/* Revocation parameters in the query string (Zoho and ServiceNow document
 * only that) join the body's; counted. */
static void revoke_query_join(tctx_t *tc)
{
  form_t qf = FORM_INIT;
  if (tc->q->query == NULL || form_parse(tc->q->query, strlen(tc->q->query), &qf) != 0 ||
      qf.n == 0) {
    form_free(&qf);
    return;
  }
  tc->m->c.revoke_query++;
  form_t *f = &tc->form;
  f->items = xrealloc(f->items, (f->n + qf.n) * sizeof *f->items);
  f->cap = f->n + qf.n;
  for (size_t i = 0; i < qf.n; i++)
    f->items[f->n++] = qf.items[i];
  free(qf.items);
}

void mock_revoke(mock_t *m, const mock_req_t *q, mock_resp_t *r)
{
  tctx_t tc = {m, q, r, FORM_INIT, MOCK_FAULT_NONE};
  mock_fault_t after;
  const char *tok;
  m->c.req_revoke++;
  if (begin(&tc, MOCK_FAULT_ON_REVOKE, &after) != 0)
    goto done;
  revoke_query_join(&tc);
  if (tc.fmt == MOCK_FAULT_FORM_ENCODED || tc.fmt == MOCK_FAULT_EXPIRES_MISSING)
    tc.fmt = MOCK_FAULT_NONE; /* only token responses have those shapes */
  uint32_t client = authenticate(&tc);
  if (client == MOCK_NONE || param(&tc, "token", &tok) != 0)
    goto done;
  if (tok == NULL) {
    fail(&tc, 400, "invalid_request", "token is required");
    goto done;
  }
  uint32_t idx = mock_store_lookup(m->store, tok, strlen(tok));
  mock_tok_t *t = idx != MOCK_NONE ? mock_store_tok(m->store, idx) : NULL;
  /* RFC 7009 section 2.2: unknown (and already revoked) tokens get 200. */
  if (t != NULL && (t->kind == MOCK_TOK_ACCESS || t->kind == MOCK_TOK_REFRESH)) {
    if (mock_store_fam(m->store, t->fam)->client != client) {
      fail(&tc, 400, "unauthorized_client", "token was issued to another client");
      goto done;
    }
    if (t->kind == MOCK_TOK_REFRESH) {
      /* The grant goes with its refresh token (section 2.1). */
      m->c.families_revoked++;
      mock_store_family_free(m->store, t->fam);
    } else {
      mock_store_token_free(m->store, idx);
    }
    m->c.revocations++;
  }
  r->status = 200;
  buf_puts(&r->hdrs, NO_STORE);
done:
  end(&tc, after);
}

/* ---- for mock_grants.c --------------------------------------------------- */

void mock_tc_fail(mock_tctx_t *tc, int status, const char *error, const char *desc)
{
  fail(tc, status, error, desc);
}

int mock_tc_param(mock_tctx_t *tc, const char *key, const char **val)
{
  return param(tc, key, val);
}

uint32_t mock_tc_authenticate(mock_tctx_t *tc)
{
  return authenticate(tc);
}

bool mock_tc_jti_fresh(const char *jti)
{
  return jti_fresh(jti);
}

void mock_tc_issue_new(mock_tctx_t *tc, uint32_t client, const char *scope, bool refresh)
{
  uint32_t f = mock_store_family_new(tc->m->store, client, MOCK_NONE, scope);
  issue(tc, f, refresh, NULL, mock_store_fam(tc->m->store, f)->scope);
}
