/*
 * discovery.c - filling a provider's endpoints from its issuer's metadata:
 * RFC 8414 (OAuth 2.0 Authorization Server Metadata), then OpenID Connect
 * Discovery 1.0 when the first document is not there.
 *
 * Where the documents are:
 *   RFC 8414 section 3.1: the well-known segment goes between the host and
 *     the issuer's path (trailing '/' removed first):
 *     https://host/tenant -> https://host/.well-known/oauth-authorization-server/tenant
 *   OIDC Discovery section 4: appended to the issuer:
 *     https://host/tenant -> https://host/tenant/.well-known/openid-configuration
 * The second is tried whenever the first does not give a usable document
 * (404, another status, not JSON, no issuer member, network error). An
 * issuer that does not match the configured one exactly is final: RFC 8414
 * section 3.3 says such metadata MUST NOT be used, and trying another
 * location would only hide a misconfiguration or an attack.
 *
 * What is filled (explicit fields of the provider win; nothing is touched
 * unless the whole discovery succeeds, so a failure stores nothing):
 *   authorization_endpoint -> authorize_url
 *   token_endpoint         -> token_url (required unless configured)
 *   revocation_endpoint    -> revoke_url
 *   device_authorization_endpoint -> device_authorization_url (RFC 8628 section 4)
 *   code_challenge_methods_supported      -> pkce_methods
 *   token_endpoint_auth_methods_supported -> auth_methods
 *   authorization_response_iss_parameter_supported (true) -> iss_param_supported
 *   mtls_endpoint_aliases.token_endpoint / .revocation_endpoint (RFC 8705
 *     section 5) -> mtls_token_url / mtls_revoke_url, which a mutual-TLS
 *     client (tls_client_auth, self_signed_tls_client_auth) uses instead
 * Every endpoint must be an absolute https URL (http only with
 * allow_insecure_http). Two decisions follow from the method lists:
 *   - pkce is turned off only when the (final) pkce_methods list exists and
 *     lacks S256: grantd sends nothing else, and a server that lists only
 *     "plain" would reject an S256 challenge; no list at all says nothing.
 *   - client_auth becomes client_secret_post when the list lacks
 *     client_secret_basic but has client_secret_post (RFC 8414: an absent
 *     list means client_secret_basic). provider_t cannot tell an explicit
 *     "basic" from the default, so an explicit basic is overridden only when
 *     the server says it does not support it.
 *
 * Failures are GRANTD_EDISCOVERY (GRANTD_ESHUTDOWN while closing); the
 * reason (the URLs tried and what each gave) is logged as event
 * "discovery_failed" (the provider_t is left untouched). Documents are
 * fetched with a plain GET through the service's http client (discovery is
 * not a token request, so it bypasses the token-request limits), honouring
 * the provider's allow_insecure_http (plain http issuer and endpoints are
 * refused without it, whatever the client allows), ca_file (a TLS context
 * with the service's trust anchors plus that file, read on the thread pool
 * and made for this discovery only) and timeout.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/url.h"
#include "net/http_client.h"
#include "net/tls.h"
#include "service/answer.h"
#include "service/discovery.h"
#include "service/lifecycle.h"

#define WK_OAUTH "/.well-known/oauth-authorization-server"
#define WK_OIDC "/.well-known/openid-configuration"

typedef struct {
  svc_t *svc;
  provider_t *p; /* the caller's; written only on success */
  svc__discover_cb done;
  void *arg;
  char *urls[2];
  int idx;               /* document being fetched */
  int err;               /* final error, when finishing through later() */
  buf_t why;             /* reasons, for the log */
  tls_client_ctx_t *tls; /* the provider's ca_file added, or NULL */
} disc_t;

static void fetch(disc_t *d);

static void finish(disc_t *d, int err)
{
  svc_t *svc = d->svc;
  if (err != 0) {
    log_warn("discovery_failed", "provider", d->p->name, "issuer", d->p->issuer, "reason",
             buf_cstr(&d->why));
  }
  d->done(d->arg, err, d->p);
  tls_client_ctx_free(d->tls); /* pooled connections keep their reference */
  free(d->urls[0]);
  free(d->urls[1]);
  buf_free(&d->why);
  free(d);
  svc__work_end(svc);
}

static void on_later(void *arg, int err, const conn_t *c)
{
  (void)err;
  (void)c;
  disc_t *d = arg;
  finish(d, d->err);
}

/* Finishes from a later loop iteration (the callback must never run inside
 * svc__discover itself). */
static void fail_later(disc_t *d, int err)
{
  d->err = err;
  svc__answer(d->svc, on_later, d, 0, NULL);
}

static void why(disc_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why(disc_t *d, const char *fmt, ...)
{
  if (d->why.len)
    buf_puts(&d->why, "; ");
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(&d->why, fmt, ap);
  va_end(ap);
}

/* An endpoint must be an absolute URL without fragment, https unless the
 * provider allows plain http. */
static bool endpoint_ok(const provider_t *p, const char *s)
{
  url_t u;
  if (url_parse(s, &u) != 0)
    return false;
  bool ok = u.fragment == NULL && (strcmp(u.scheme, "https") == 0 || p->allow_insecure_http);
  url_free(&u);
  return ok;
}

/* Reads an optional endpoint member: 0 (absent or fine, *out set or NULL)
 * or -1 (present but unusable). */
static int get_endpoint(disc_t *d, const json_t *doc, const char *key, const char **out)
{
  *out = NULL;
  const json_t *v = json_object_get(doc, key);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v) || !endpoint_ok(d->p, json_string_value(v))) {
    why(d, "%s: '%s' is not a usable absolute URL", d->urls[d->idx], key);
    return -1;
  }
  *out = json_string_value(v);
  return 0;
}

/* Reads an optional array of strings into *out (left empty if absent). */
static int get_list(disc_t *d, const json_t *doc, const char *key, strlist_t *out)
{
  const json_t *v = json_object_get(doc, key);
  if (v == NULL || json_is_null(v))
    return 0;
  size_t i;
  const json_t *it;
  if (!json_is_array(v))
    goto bad;
  json_array_foreach(v, i, it)
  {
    if (!json_is_string(it))
      goto bad;
  }
  json_array_foreach(v, i, it)
  {
    strlist_push(out, json_string_value(it));
  }
  return 0;
bad:
  why(d, "%s: '%s' is not an array of strings", d->urls[d->idx], key);
  strlist_free(out);
  return -1;
}

static bool has(const strlist_t *l, const char *s)
{
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->items[i], s) == 0)
      return true;
  return false;
}

static void set_if_unset(char **field, const char *v)
{
  if ((*field == NULL || (*field)[0] == '\0') && v != NULL) {
    free(*field);
    *field = xstrdup(v);
  }
}

/* Validates the document and, when everything is usable, fills d->p.
 * Returns 0, or GRANTD_EDISCOVERY with the reason recorded. */
static int apply(disc_t *d, const json_t *doc)
{
  provider_t *p = d->p;
  const char *issuer = json_get_str(doc, "issuer");
  if (issuer == NULL || strcmp(issuer, p->issuer) != 0) {
    why(d, "%s: the document's issuer '%.200s' is not the configured issuer '%.200s'",
        d->urls[d->idx], issuer ? issuer : "(none)", p->issuer);
    return GRANTD_EDISCOVERY;
  }
  const char *authz, *token, *revoke, *device;
  strlist_t pkce = {0}, auth = {0};
  if (get_endpoint(d, doc, "authorization_endpoint", &authz) ||
      get_endpoint(d, doc, "token_endpoint", &token) ||
      get_endpoint(d, doc, "revocation_endpoint", &revoke) ||
      get_endpoint(d, doc, "device_authorization_endpoint", &device) ||
      get_list(d, doc, "code_challenge_methods_supported", &pkce) ||
      get_list(d, doc, "token_endpoint_auth_methods_supported", &auth))
    goto fail;
  const char *mtoken = NULL, *mrevoke = NULL;
  const json_t *al = json_object_get(doc, "mtls_endpoint_aliases");
  if (al != NULL && !json_is_null(al)) {
    if (!json_is_object(al)) {
      why(d, "%s: 'mtls_endpoint_aliases' is not an object", d->urls[d->idx]);
      goto fail;
    }
    if (get_endpoint(d, al, "token_endpoint", &mtoken) ||
        get_endpoint(d, al, "revocation_endpoint", &mrevoke))
      goto fail;
  }
  if (token == NULL && (p->token_url == NULL || p->token_url[0] == '\0')) {
    why(d, "%s: no token_endpoint", d->urls[d->idx]);
    goto fail;
  }

  /* RFC 9207 section 3: once advertised, callbacks without iss are
   * refused (connect.c). Only a JSON true counts. */
  if (json_is_true(json_object_get(doc, "authorization_response_iss_parameter_supported")))
    p->iss_param_supported = true;
  set_if_unset(&p->authorize_url, authz);
  set_if_unset(&p->token_url, token);
  set_if_unset(&p->revoke_url, revoke);
  set_if_unset(&p->mtls_token_url, mtoken);
  set_if_unset(&p->mtls_revoke_url, mrevoke);
  set_if_unset(&p->device_authorization_url, device);
  if (p->pkce_methods.n == 0) {
    p->pkce_methods = pkce;
    memset(&pkce, 0, sizeof pkce);
  }
  if (p->auth_methods.n == 0) {
    p->auth_methods = auth;
    memset(&auth, 0, sizeof auth);
  }
  strlist_free(&pkce);
  strlist_free(&auth);
  if (p->pkce && p->pkce_methods.n > 0 && !has(&p->pkce_methods, "S256")) {
    p->pkce = false;
    log_info("discovery_pkce_off", "provider", p->name, "reason", "S256 not supported");
  }
  if (p->client_auth == CLIENT_AUTH_BASIC && p->auth_methods.n > 0 &&
      !has(&p->auth_methods, "client_secret_basic") && has(&p->auth_methods, "client_secret_post"))
    p->client_auth = CLIENT_AUTH_POST;
  log_info("discovered", "provider", p->name, "issuer", p->issuer, "from", d->urls[d->idx],
           "token_url", p->token_url, "authorize_url", p->authorize_url, "revoke_url",
           p->revoke_url, "?pkce", p->pkce ? 1 : 0, "client_auth",
           client_auth_name(p->client_auth));
  return 0;

fail:
  strlist_free(&pkce);
  strlist_free(&auth);
  return GRANTD_EDISCOVERY;
}

static void next_or_fail(disc_t *d)
{
  if (d->idx == 0 && d->urls[1] != NULL && !d->svc->closing) {
    d->idx = 1;
    fetch(d);
    return;
  }
  finish(d, d->svc->closing ? GRANTD_ESHUTDOWN : GRANTD_EDISCOVERY);
}

static void on_response(const http_response_t *resp, int err, void *arg)
{
  disc_t *d = arg;
  const char *url = d->urls[d->idx];
  if (err != 0) {
    why(d, "%s: %s", url, err_str(err));
    next_or_fail(d);
    return;
  }
  if (resp->status != 200) {
    why(d, "%s: HTTP %d", url, resp->status);
    next_or_fail(d);
    return;
  }
  json_t *doc = NULL;
  if (json_parse(resp->body, resp->body_len, &doc) != 0 || !json_is_object(doc)) {
    json_decref(doc);
    why(d, "%s: not a JSON object", url);
    next_or_fail(d);
    return;
  }
  if (json_object_get(doc, "issuer") == NULL) {
    json_decref(doc);
    why(d, "%s: no issuer member", url);
    next_or_fail(d);
    return;
  }
  int rc = apply(d, doc);
  json_decref(doc);
  finish(d, rc);
}

static void fetch(disc_t *d)
{
  svc_t *svc = d->svc;
  const provider_t *p = d->p;
  static const http_client_header_t accept = {"Accept", "application/json"};
  http_request_t hr;
  memset(&hr, 0, sizeof hr);
  hr.method = "GET";
  hr.url = d->urls[d->idx];
  hr.headers = &accept;
  hr.nheaders = 1;
  hr.timeout_ms = (uint64_t)(p->timeout_ms > 0 ? p->timeout_ms : svc->opts.request_timeout_ms);
  hr.tls = d->tls;
  int rc = http_client_request(svc->http, &hr, on_response, d, NULL);
  if (rc != 0) {
    why(d, "%s: %s", hr.url, err_str(rc));
    if (d->idx == 0 && d->urls[1] != NULL) {
      d->idx = 1;
      fetch(d);
      return;
    }
    fail_later(d, GRANTD_EDISCOVERY);
  }
}

/* The provider's ca_file, read off the loop: trust the service's anchors
 * plus its certificates for this discovery's requests. */
static void on_ca_read(void *arg, int err, int sys_errno, buf_t *data)
{
  (void)sys_errno;
  disc_t *d = arg;
  if (err == 0 && d->svc->closing) {
    finish(d, GRANTD_ESHUTDOWN);
    return;
  }
  if (err == 0 && tls_client_ctx_derive_pem(&d->tls, d->svc->opts.tls, data->data, data->len) != 0)
    err = GRANTD_ECONFIG;
  if (err != 0) {
    why(d, "ca_file '%.200s': %s", d->p->ca_file,
        err == GRANTD_ECONFIG ? "no usable PEM certificate" : err_str(err));
    finish(d, GRANTD_EDISCOVERY);
    return;
  }
  fetch(d);
}

/* Builds the two document URLs from the issuer; -1 when it is unusable. */
static int make_urls(disc_t *d)
{
  const char *iss = d->p->issuer;
  url_t u;
  if (url_parse(iss, &u) != 0) {
    why(d, "the issuer is not an absolute http(s) URL");
    return -1;
  }
  bool ok = u.query == NULL && u.fragment == NULL;
  bool https = strcmp(u.scheme, "https") == 0;
  url_free(&u);
  if (!ok) {
    why(d, "the issuer has a query or fragment (RFC 8414 section 2)");
    return -1;
  }
  if (!https && !d->p->allow_insecure_http) {
    why(d, "the issuer is not https (allow_insecure_http is off)");
    return -1;
  }
  const char *auth = strstr(iss, "://") + 3;
  size_t alen = strcspn(auth, "/");
  const char *path = auth + alen;
  size_t plen = strlen(path);
  while (plen > 0 && path[plen - 1] == '/')
    plen--;
  buf_t b = BUF_INIT;
  buf_append(&b, iss, (size_t)(auth - iss) + alen);
  buf_puts(&b, WK_OAUTH);
  buf_append(&b, path, plen);
  d->urls[0] = buf_steal(&b);
  buf_append(&b, iss, (size_t)(path - iss) + plen);
  buf_puts(&b, WK_OIDC);
  d->urls[1] = buf_steal(&b);
  return 0;
}

void svc__discover(svc_t *svc, provider_t *p, svc__discover_cb done, void *arg)
{
  disc_t *d = xcalloc(1, sizeof *d);
  d->svc = svc;
  d->p = p;
  d->done = done;
  d->arg = arg;
  svc__work_begin(svc);
  if (p->issuer == NULL || make_urls(d) != 0) {
    if (p->issuer == NULL)
      why(d, "no issuer");
    fail_later(d, GRANTD_EDISCOVERY);
    return;
  }
  if (svc->closing) {
    fail_later(d, GRANTD_ESHUTDOWN);
    return;
  }
  if (p->ca_file && p->ca_file[0] && strncmp(p->issuer, "https:", 6) == 0 &&
      svc->opts.tls != NULL) {
    /* Never on the loop: the file is read on the thread pool. */
    int rc = file_read_async(svc->opts.loop, p->ca_file, SVC_CA_FILE_MAX, on_ca_read, d);
    if (rc != 0) {
      why(d, "ca_file '%.200s': %s", p->ca_file, err_str(rc));
      fail_later(d, GRANTD_EDISCOVERY);
    }
    return;
  }
  fetch(d);
}
