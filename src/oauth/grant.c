/*
 * Token, revocation and authorization request building; see grant.h.
 *
 * Every builder first collects its parameters as borrowed key/value pairs in
 * a small ordered list (params_t), applies the configured extra parameters
 * with one override rule, and only then encodes. Keeping assembly apart from
 * encoding is what makes "configured params replace earlier values but never
 * the protected ones" a single function instead of a rule repeated per
 * grant. Values are borrowed from the provider, the connection or the
 * arguments, all of which outlive the call; the only owned value is the
 * joined scope string, held by the caller of params_*.
 */
#include "oauth/grant.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/clock.h"
#include "base/url.h"
#include "oauth/catalog.h"
#include "oauth/client_assertion.h"
#include "oauth/device.h"
#include "oauth/jwt_bearer.h"

typedef struct {
  const char *key;
  const char *val;
} param_t;

typedef struct {
  param_t *items;
  size_t n;
  size_t cap;
} params_t;

/* Keys no configured parameter may set in a token or revocation body. */
static const char *const token_protected[] = {
  "grant_type",
  "code",
  "redirect_uri",
  "code_verifier",
  "refresh_token",
  "username",
  "password",
  "token",
  "token_type_hint",
  "client_id",
  "client_secret",
  "client_assertion",
  "client_assertion_type",
  "device_code",
  "assertion",
  NULL,
};

/* Keys no configured parameter may set on an authorization URL. */
static const char *const authorize_protected[] = {
  "response_type",         "client_id", "redirect_uri", "state", "code_challenge",
  "code_challenge_method", NULL,
};

static bool in_list(const char *const *list, const char *k)
{
  for (; *list; list++)
    if (strcmp(*list, k) == 0)
      return true;
  return false;
}

static void params_add(params_t *ps, const char *k, const char *v)
{
  if (ps->n == ps->cap) {
    ps->cap = ps->cap ? ps->cap * 2 : 16;
    ps->items = xrealloc(ps->items, ps->cap * sizeof(*ps->items));
  }
  ps->items[ps->n].key = k;
  ps->items[ps->n].val = v;
  ps->n++;
}

/* Applies configured parameters: a protected key is ignored, an existing key
 * gets the new value in place, a new key is appended. */
static void params_apply(params_t *ps, const kvlist_t *kv, const char *const *protected)
{
  if (kv == NULL)
    return;
  for (size_t i = 0; i < kv->n; i++) {
    const char *k = kv->items[i].key;
    const char *v = kv->items[i].value ? kv->items[i].value : "";
    if (k == NULL || *k == '\0' || in_list(protected, k))
      continue;
    size_t j = 0;
    while (j < ps->n && strcmp(ps->items[j].key, k) != 0)
      j++;
    if (j < ps->n)
      ps->items[j].val = v;
    else
      params_add(ps, k, v);
  }
}

static void params_free(params_t *ps)
{
  free(ps->items);
  memset(ps, 0, sizeof(*ps));
}

static bool nonempty(const char *s)
{
  return s != NULL && *s != '\0';
}

/* Joins the scopes with the provider's separator into out. Returns false
 * (out empty) when there is nothing to send. */
static bool scope_join(const provider_t *p, const strlist_t *scopes, buf_t *out)
{
  if (scopes == NULL || scopes->n == 0)
    scopes = &p->scopes;
  const char *sep = nonempty(p->scope_separator) ? p->scope_separator : " ";
  for (size_t i = 0; i < scopes->n; i++) {
    if (!nonempty(scopes->items[i]))
      continue;
    if (out->len > 0)
      buf_puts(out, sep);
    buf_puts(out, scopes->items[i]);
  }
  return out->len > 0;
}

/* Picks the client credentials (see grant.h for the override rule). */
static int client_pick(const provider_t *p, const conn_t *c, const char **id, const char **secret)
{
  if (c != NULL && nonempty(c->client_id)) {
    *id = c->client_id;
    *secret = c->client_secret;
  } else {
    *id = p->client_id;
    *secret = (c != NULL && nonempty(c->client_secret)) ? c->client_secret : p->client_secret;
  }
  if (!nonempty(*secret))
    *secret = NULL;
  return nonempty(*id) ? 0 : GRANTD_ECONFIG;
}

/* One body parameter: a form pair, or a member of the JSON object being
 * written (the caller opens and closes the braces). */
static void body_add(buf_t *body, bool json, const char *k, const char *v)
{
  if (!json) {
    form_add(body, k, v);
    return;
  }
  if (body->len > 1)
    buf_putc(body, ',');
  json_put_str(body, k, SIZE_MAX);
  buf_putc(body, ':');
  json_put_str(body, v, SIZE_MAX);
}

/* Encodes the parameters and the client authentication into out. aud is
 * the token endpoint URL, the audience of a JWT client assertion.
 * @return 0, or GRANTD_ECONFIG when the assertion cannot be signed (out
 *         untouched). */
static int request_finish(const provider_t *p, const char *url, const char *aud, const params_t *ps,
                          const char *id, const char *secret, oauth_request_t *out)
{
  buf_t body = BUF_INIT, assertion = BUF_INIT;
  bool json = p->json_body;
  bool jwt =
    p->client_auth == CLIENT_AUTH_PRIVATE_KEY_JWT || p->client_auth == CLIENT_AUTH_SECRET_JWT;
  if (jwt && client_assertion_make(p, id, secret, aud, clock_now_ms(), &assertion) != 0)
    return GRANTD_ECONFIG;
  buf_reserve(&body, 400); /* one allocation for a usual refresh body */
  if (json)
    buf_putc(&body, '{');
  for (size_t i = 0; i < ps->n; i++)
    body_add(&body, json, ps->items[i].key, ps->items[i].val);
  if (client_auth_is_mtls(p->client_auth)) {
    /* RFC 8705 section 2: the TLS client certificate authenticates; the
     * request names the client and carries no secret. */
    body_add(&body, json, "client_id", id);
  } else if (jwt) {
    /* RFC 7523 section 2.2; the secret itself is never sent. */
    body_add(&body, json, "client_id", id);
    body_add(&body, json, "client_assertion_type", CLIENT_ASSERTION_TYPE);
    body_add(&body, json, "client_assertion", buf_cstr(&assertion));
    buf_wipe_free(&assertion);
  } else if (secret != NULL && p->client_auth == CLIENT_AUTH_BASIC) {
    /* RFC 6749 section 2.3.1: both parts are form-encoded before base64,
     * so a ':' in the client_id cannot shift the split. */
    buf_t raw = BUF_INIT, hdr = BUF_INIT;
    url_encode(&raw, id, strlen(id), URL_ENC_FORM);
    buf_putc(&raw, ':');
    url_encode(&raw, secret, strlen(secret), URL_ENC_FORM);
    buf_puts(&hdr, "Basic ");
    b64_encode(&hdr, raw.data, raw.len);
    buf_wipe_free(&raw);
    out->authorization = buf_steal(&hdr);
  } else {
    body_add(&body, json, "client_id", id);
    if (secret != NULL)
      body_add(&body, json, "client_secret", secret);
  }
  if (json)
    buf_putc(&body, '}');
  out->body_len = body.len;
  out->body = buf_steal(&body);
  out->url = xstrdup(url);
  out->content_type = json ? OAUTH_JSON_CONTENT_TYPE : OAUTH_FORM_CONTENT_TYPE;
  out->accept = OAUTH_ACCEPT;
  return 0;
}

/* The parameters alone, without client credentials (an assertion grant
 * of a client that does not authenticate). */
static int request_finish_anonymous(const provider_t *p, const char *url, const params_t *ps,
                                    oauth_request_t *out)
{
  buf_t body = BUF_INIT;
  bool json = p->json_body;
  if (json)
    buf_putc(&body, '{');
  for (size_t i = 0; i < ps->n; i++)
    body_add(&body, json, ps->items[i].key, ps->items[i].val);
  if (json)
    buf_putc(&body, '}');
  out->body_len = body.len;
  out->body = buf_steal(&body);
  out->url = xstrdup(url);
  out->content_type = json ? OAUTH_JSON_CONTENT_TYPE : OAUTH_FORM_CONTENT_TYPE;
  out->accept = OAUTH_ACCEPT;
  return 0;
}

void oauth_request_free(oauth_request_t *r)
{
  if (r == NULL)
    return;
  free_secret(r->url); /* may hold a token (revoke_query) */
  free_secret(r->body);
  free_secret(r->authorization);
  memset(r, 0, sizeof(*r));
}

/* What differs between the token grants. */
typedef struct {
  const char *grant_type;
  const char *k1, *v1; /* grant's own parameters, NULL key = none */
  const char *k2, *v2;
  const char *k3, *v3;
  const strlist_t *scopes; /* scope to send (NULL list = provider's) */
  bool send_scope;
  bool refresh;         /* apply refresh_params */
  const char *where;    /* endpoint other than token_url (device
                           authorization), or NULL */
  bool jwt_bearer;      /* the assertion grant: signs k1's value; client
                           authentication optional (RFC 7523 section 3.1) */
  const params_t *more; /* more parameters after the grant's own, or NULL */
} token_req_t;

/* The endpoint URL for connection c: the provider's URL with its
 * placeholders replaced by the connection's variables (oauth/catalog.h).
 * GRANTD_ECONFIG when a variable is missing or outside its rule. */
static int endpoint(const provider_t *p, const conn_t *c, const char *url, buf_t *out)
{
  return catalog_expand(url, &p->vars, c ? &c->vars : NULL, out);
}

static int token_request(const provider_t *p, const conn_t *c, const token_req_t *t,
                         oauth_request_t *out)
{
  memset(out, 0, sizeof(*out));
  if (!nonempty(p->token_url))
    return GRANTD_ECONFIG;
  const char *id, *secret;
  int rc = client_pick(p, c, &id, &secret);
  bool jwt_auth =
    p->client_auth == CLIENT_AUTH_PRIVATE_KEY_JWT || p->client_auth == CLIENT_AUTH_SECRET_JWT;
  /* The assertion grant needs no client authentication: without a secret
   * or a client assertion the request carries only the assertion (as
   * Google, Salesforce and DocuSign document it), whose iss names the
   * client. */
  bool anonymous = t->jwt_bearer && secret == NULL && !jwt_auth;
  if (rc != 0 && !anonymous)
    return rc;
  if (rc != 0)
    id = NULL;
  /* A refresh goes to the provider's refresh endpoint when it has one; a
   * mutual-TLS client to the token endpoint's mTLS alias (RFC 8705
   * section 5) when there is one. */
  const char *where = t->where                                 ? t->where
                      : t->refresh && nonempty(p->refresh_url) ? p->refresh_url
                      : client_auth_is_mtls(p->client_auth) && nonempty(p->mtls_token_url)
                        ? p->mtls_token_url
                        : p->token_url;
  buf_t url = BUF_INIT, aud = BUF_INIT;
  /* The audience of assertions is the endpoint called, except for the
   * device authorization endpoint, whose assertions go to the token
   * endpoint. */
  if (endpoint(p, c, where, &url) != 0 ||
      endpoint(p, c, t->where ? p->token_url : where, &aud) != 0) {
    buf_free(&url);
    buf_free(&aud);
    return GRANTD_ECONFIG;
  }
  params_t ps = {0};
  buf_t scope = BUF_INIT, assertion = BUF_INIT;
  bool has_scope = scope_join(p, t->scopes, &scope);
  if (t->jwt_bearer &&
      jwt_bearer_assertion(p, c, id, buf_cstr(&aud), has_scope ? buf_cstr(&scope) : NULL,
                           clock_now_ms(), &assertion) != 0)
    rc = GRANTD_ECONFIG;
  else
    rc = 0;
  if (t->grant_type)
    params_add(&ps, "grant_type", t->grant_type);
  if (t->jwt_bearer)
    params_add(&ps, "assertion", buf_cstr(&assertion));
  if (t->k1 && t->v1)
    params_add(&ps, t->k1, t->v1);
  if (t->k2 && t->v2)
    params_add(&ps, t->k2, t->v2);
  if (t->k3 && t->v3)
    params_add(&ps, t->k3, t->v3);
  for (size_t i = 0; t->more && i < t->more->n; i++)
    params_add(&ps, t->more->items[i].key, t->more->items[i].val);
  if (t->send_scope && has_scope && !(t->jwt_bearer && p->assertion_scope_claim))
    params_add(&ps, "scope", buf_cstr(&scope));
  if (t->where == NULL)
    params_apply(&ps, &p->token_params, token_protected);
  if (t->refresh)
    params_apply(&ps, &p->refresh_params, token_protected);
  if (rc == 0 && anonymous) {
    rc = request_finish_anonymous(p, buf_cstr(&url), &ps, out);
  } else if (rc == 0) {
    rc = request_finish(p, buf_cstr(&url), buf_cstr(&aud), &ps, id, secret, out);
  }
  params_free(&ps);
  buf_free(&scope);
  buf_wipe_free(&assertion);
  buf_free(&url);
  buf_free(&aud);
  return rc;
}

int grant_auth_code_request(const provider_t *p, const conn_t *c, const char *code,
                            const char *redirect_uri, const char *code_verifier,
                            oauth_request_t *out)
{
  if (!nonempty(code)) {
    memset(out, 0, sizeof(*out));
    return GRANTD_EINVALID;
  }
  token_req_t t = {
    .grant_type = "authorization_code",
    .k1 = "code",
    .v1 = code,
    .k2 = "redirect_uri",
    .v2 = redirect_uri,
    .k3 = "code_verifier",
    .v3 = code_verifier,
  };
  return token_request(p, c, &t, out);
}

int grant_refresh_request(const provider_t *p, const conn_t *c, oauth_request_t *out)
{
  if (c == NULL || !nonempty(c->refresh_token)) {
    memset(out, 0, sizeof(*out));
    return GRANTD_EINVALID;
  }
  token_req_t t = {
    .grant_type = "refresh_token",
    .k1 = "refresh_token",
    .v1 = c->refresh_token,
    .refresh = true,
  };
  return token_request(p, c, &t, out);
}

int grant_client_credentials_request(const provider_t *p, const conn_t *c, oauth_request_t *out)
{
  token_req_t t = {
    .grant_type = "client_credentials",
    .scopes = c ? &c->scopes : NULL,
    .send_scope = true,
  };
  return token_request(p, c, &t, out);
}

int grant_password_request(const provider_t *p, const conn_t *c, oauth_request_t *out)
{
  if (c == NULL || c->username == NULL || c->password == NULL) {
    memset(out, 0, sizeof(*out));
    return GRANTD_EINVALID;
  }
  token_req_t t = {
    .grant_type = "password",
    .k1 = "username",
    .v1 = c->username,
    .k2 = "password",
    .v2 = c->password,
    .scopes = &c->scopes,
    .send_scope = true,
  };
  return token_request(p, c, &t, out);
}

int grant_device_authorization_request(const provider_t *p, const conn_t *c, oauth_request_t *out)
{
  if (!nonempty(p->device_authorization_url)) {
    memset(out, 0, sizeof(*out));
    return GRANTD_ECONFIG;
  }
  token_req_t t = {
    .scopes = c ? &c->scopes : NULL,
    .send_scope = true,
    .where = p->device_authorization_url,
  };
  return token_request(p, c, &t, out);
}

int grant_device_code_request(const provider_t *p, const conn_t *c, oauth_request_t *out)
{
  if (c == NULL || !nonempty(c->device_code)) {
    memset(out, 0, sizeof(*out));
    return GRANTD_EINVALID;
  }
  token_req_t t = {
    .grant_type = DEVICE_GRANT_TYPE,
    .k1 = "device_code",
    .v1 = c->device_code,
  };
  return token_request(p, c, &t, out);
}

int grant_jwt_bearer_request(const provider_t *p, const conn_t *c, oauth_request_t *out)
{
  token_req_t t = {
    .grant_type = JWT_BEARER_GRANT_TYPE,
    .scopes = c ? &c->scopes : NULL,
    .send_scope = true,
    .jwt_bearer = true,
  };
  return token_request(p, c, &t, out);
}

int grant_token_exchange_request(const provider_t *p, const conn_t *c, const char *subject_token,
                                 oauth_request_t *out)
{
  if (c == NULL || !nonempty(subject_token)) {
    memset(out, 0, sizeof(*out));
    return GRANTD_EINVALID;
  }
  /* RFC 8693 section 2.1: resource and audience may repeat. */
  params_t more = {0};
  for (size_t i = 0; i < c->resource.n; i++)
    params_add(&more, "resource", c->resource.items[i]);
  for (size_t i = 0; i < c->audience.n; i++)
    params_add(&more, "audience", c->audience.items[i]);
  if (nonempty(c->requested_token_type))
    params_add(&more, "requested_token_type", c->requested_token_type);
  params_add(&more, "subject_token", subject_token);
  params_add(&more, "subject_token_type",
             nonempty(c->subject_token_type) ? c->subject_token_type : TOKEN_TYPE_ACCESS_TOKEN);
  if (nonempty(c->actor_token)) {
    params_add(&more, "actor_token", c->actor_token);
    params_add(&more, "actor_token_type",
               nonempty(c->actor_token_type) ? c->actor_token_type : TOKEN_TYPE_ACCESS_TOKEN);
  }
  token_req_t t = {
    .grant_type = TOKEN_EXCHANGE_GRANT_TYPE,
    .scopes = &c->scopes,
    .send_scope = true,
    .more = &more,
  };
  int rc = token_request(p, c, &t, out);
  params_free(&more);
  return rc;
}

int grant_revoke_request(const provider_t *p, const conn_t *c, const char *token, const char *hint,
                         oauth_request_t *out)
{
  memset(out, 0, sizeof(*out));
  if (!nonempty(token))
    return GRANTD_EINVALID;
  if (!nonempty(p->revoke_url))
    return GRANTD_ECONFIG;
  const char *id, *secret;
  int rc = client_pick(p, c, &id, &secret);
  if (rc != 0)
    return rc;
  buf_t url = BUF_INIT;
  const char *where = client_auth_is_mtls(p->client_auth) && nonempty(p->mtls_revoke_url)
                        ? p->mtls_revoke_url
                        : p->revoke_url;
  if (endpoint(p, c, where, &url) != 0)
    return GRANTD_ECONFIG;
  params_t ps = {0};
  if (p->revoke_query) {
    /* In the query string; the body keeps only the client (if post). */
    char last = url.len ? url.data[url.len - 1] : '?';
    if (strchr(buf_cstr(&url), '?') == NULL)
      buf_putc(&url, '?');
    else if (last != '?' && last != '&')
      buf_putc(&url, '&');
    buf_puts(&url, "token=");
    url_encode(&url, token, strlen(token), URL_ENC_FORM);
    if (nonempty(hint)) {
      buf_puts(&url, "&token_type_hint=");
      url_encode(&url, hint, strlen(hint), URL_ENC_FORM);
    }
  } else {
    params_add(&ps, "token", token);
    if (nonempty(hint))
      params_add(&ps, "token_type_hint", hint);
  }
  /* A revocation's assertion is addressed to the token endpoint too. */
  buf_t aud = BUF_INIT;
  if (p->client_auth == CLIENT_AUTH_PRIVATE_KEY_JWT || p->client_auth == CLIENT_AUTH_SECRET_JWT) {
    if (!nonempty(p->token_url) || endpoint(p, c, p->token_url, &aud) != 0)
      rc = GRANTD_ECONFIG;
  }
  if (rc == 0)
    rc = request_finish(p, buf_cstr(&url), buf_cstr(&aud), &ps, id, secret, out);
  params_free(&ps);
  buf_free(&url);
  buf_free(&aud);
  return rc;
}

int oauth_authorize_url(const provider_t *p, const kvlist_t *vars, const char *client_id,
                        const char *redirect_uri, const strlist_t *scopes, const char *state,
                        const char *code_challenge, const kvlist_t *extra, buf_t *out)
{
  if (!nonempty(state))
    return GRANTD_EINVALID;
  if (!nonempty(p->authorize_url) || strchr(p->authorize_url, '#') != NULL)
    return GRANTD_ECONFIG;
  if (!nonempty(client_id))
    client_id = p->client_id;
  if (!nonempty(client_id))
    return GRANTD_ECONFIG;

  params_t ps = {0};
  buf_t scope = BUF_INIT, url = BUF_INIT;
  params_add(&ps, "response_type", "code");
  params_add(&ps, "client_id", client_id);
  if (nonempty(redirect_uri))
    params_add(&ps, "redirect_uri", redirect_uri);
  if (scope_join(p, scopes, &scope))
    params_add(&ps, "scope", buf_cstr(&scope));
  params_add(&ps, "state", state);
  if (nonempty(code_challenge)) {
    params_add(&ps, "code_challenge", code_challenge);
    params_add(&ps, "code_challenge_method", "S256");
  }
  params_apply(&ps, &p->authorize_params, authorize_protected);
  params_apply(&ps, extra, authorize_protected);

  /* Built apart and appended at the end so that out is untouched on error
   * and url_append_query sees only this URL. */
  if (catalog_expand(p->authorize_url, &p->vars, vars, &url) != 0) {
    buf_free(&scope);
    params_free(&ps);
    return GRANTD_ECONFIG;
  }
  for (size_t i = 0; i < ps.n; i++)
    url_append_query(&url, ps.items[i].key, ps.items[i].val);
  buf_append(out, url.data, url.len);
  buf_free(&url);
  buf_free(&scope);
  params_free(&ps);
  return 0;
}
