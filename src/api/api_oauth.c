/*
 * api_oauth.c - the connect flow's two HTTP ends: POST
 * /v1/connections/{id}/authorize (the "Connect" button's URL) and GET
 * /oauth/callback, which a browser calls without an API key.
 *
 * The callback answers browsers, not programs: a 302 to redirect_after with
 * connection=<id>&status=... (or status=error&error=...), or a small HTML
 * page when there is nowhere to go. An unknown, expired or replayed state
 * gets 400 with a page and no token request is made.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "base/buf.h"
#include "base/metrics.h"
#include "base/mem.h"
#include "base/url.h"

static const char *const authorize_fields[] = {"redirect_after", "scopes", "params", NULL};

/* A redirect target goes into a Location header: only an absolute http(s)
 * URL of printable ASCII (no spaces or control bytes, so no header
 * splitting) that url_parse accepts. */
static bool safe_redirect(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > 2048)
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] >= 0x7f)
      return false;
  url_t u;
  if (url_parse(s, &u) != 0)
    return false;
  bool ok = !strcmp(u.scheme, "http") || !strcmp(u.scheme, "https");
  url_free(&u);
  return ok;
}

static void authorize_done(void *arg, int err, const char *url, const char *state,
                           int64_t expires_at)
{
  api_ctx_t *ctx = arg;
  if (err != 0) {
    api_reply_err(ctx, err, NULL);
    return;
  }
  json_t *o = json_object();
  json_object_set_new(o, "url", json_string(url));
  json_object_set_new(o, "state", json_string(state));
  json_object_set_new(o, "expires_at", api_time(expires_at));
  api_reply_json(ctx, 200, o);
}

static void conn_authorize(api_ctx_t *ctx)
{
  strlist_t scopes = {0};
  kvlist_t params = {0};
  const char *redirect_after = NULL;
  json_t *b = ctx->body;
  svc_authorize_req_t req = {0};

  if (b != NULL) {
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
      bool ok = false;
      for (size_t i = 0; authorize_fields[i]; i++)
        ok |= !strcmp(k, authorize_fields[i]);
      if (!ok) {
        char msg[200];
        snprintf(msg, sizeof msg, "unknown field '%.120s'", k);
        api_reply_error(ctx, 422, "unknown_field", msg);
        goto out;
      }
    }
    json_t *ra = json_object_get(b, "redirect_after");
    if (ra && !json_is_null(ra)) {
      if (!json_is_string(ra) || !safe_redirect(json_string_value(ra))) {
        api_reply_error(ctx, 422, "invalid_field",
                        "field 'redirect_after' must be an absolute http(s) URL of at most 2048 "
                        "printable characters");
        goto out;
      }
      redirect_after = json_string_value(ra);
    }
    json_t *sc = json_object_get(b, "scopes");
    if (sc && !json_is_null(sc)) {
      size_t i;
      json_t *it;
      if (!json_is_array(sc)) {
        api_reply_error(ctx, 422, "invalid_field", "field 'scopes' must be an array of strings");
        goto out;
      }
      json_array_foreach(sc, i, it)
      {
        if (!json_is_string(it) || json_string_length(it) == 0) {
          api_reply_error(ctx, 422, "invalid_field", "field 'scopes' must be an array of strings");
          goto out;
        }
        strlist_push(&scopes, json_string_value(it));
      }
      req.scopes = &scopes;
    }
    json_t *pa = json_object_get(b, "params");
    if (pa && !json_is_null(pa)) {
      const char *pk;
      json_t *pv;
      if (!json_is_object(pa)) {
        api_reply_error(ctx, 422, "invalid_field", "field 'params' must be an object of strings");
        goto out;
      }
      json_object_foreach(pa, pk, pv)
      {
        if (!json_is_string(pv)) {
          api_reply_error(ctx, 422, "invalid_field", "field 'params' must be an object of strings");
          goto out;
        }
        kvlist_push(&params, pk, json_string_value(pv));
      }
      req.params = &params;
    }
  }
  req.redirect_after = redirect_after;
  int rc = svc_authorize(ctx->api->svc, ctx->params[0], &req, authorize_done, ctx);
  if (rc != 0)
    api_reply_err(ctx, rc, NULL);
out:
  strlist_free(&scopes);
  kvlist_free(&params);
}

static void html_escape(buf_t *b, const char *s)
{
  for (; s && *s; s++) {
    switch (*s) {
    case '<': buf_puts(b, "&lt;"); break;
    case '>': buf_puts(b, "&gt;"); break;
    case '&': buf_puts(b, "&amp;"); break;
    case '"': buf_puts(b, "&quot;"); break;
    case '\'': buf_puts(b, "&#39;"); break;
    default: buf_putc(b, *s);
    }
  }
}

static void page(api_ctx_t *ctx, int status, const char *title, const char *text,
                 const char *detail)
{
  buf_t b = BUF_INIT;
  buf_puts(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>");
  html_escape(&b, title);
  buf_puts(&b, "</title></head><body><h1>");
  html_escape(&b, title);
  buf_puts(&b, "</h1><p>");
  html_escape(&b, text);
  buf_puts(&b, "</p>");
  if (detail) {
    buf_puts(&b, "<p><code>");
    html_escape(&b, detail);
    buf_puts(&b, "</code></p>");
  }
  buf_puts(&b, "</body></html>\n");
  api_reply_raw(ctx, status, "text/html; charset=utf-8", b.data, b.len,
                "Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n");
  buf_free(&b);
}

static void callback_done(void *arg, int err, const svc_callback_result_t *r)
{
  api_ctx_t *ctx = arg;
  if (err == GRANTD_EBAD_STATE || (err != 0 && (r == NULL || r->conn_id == NULL))) {
    if (err == GRANTD_EBAD_STATE)
      metrics_counter_inc("grantd_callback_bad_state_total", NULL);
    page(ctx, 400, "Authorization failed",
         "This sign-in link is unknown, expired or was already used. Start again from the "
         "application.",
         NULL);
    return;
  }
  const char *error = err != 0 ? err_name(err) : r->error;
  if (r->redirect_after != NULL && safe_redirect(r->redirect_after)) {
    /* The result goes into the query, before any #fragment. */
    const char *hash = strchr(r->redirect_after, '#');
    size_t base = hash ? (size_t)(hash - r->redirect_after) : strlen(r->redirect_after);
    buf_t loc = BUF_INIT;
    buf_append(&loc, r->redirect_after, base);
    url_append_query(&loc, "connection", r->conn_id);
    url_append_query(&loc, "status", error ? "error" : "active");
    if (error)
      url_append_query(&loc, "error", error);
    if (hash)
      buf_puts(&loc, hash);
    buf_t hdr = BUF_INIT;
    buf_printf(&hdr, "Location: %s\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n",
               loc.data);
    api_reply_raw(ctx, 302, "text/plain; charset=utf-8", "", 0, hdr.data);
    buf_free(&hdr);
    buf_free(&loc);
    return;
  }
  if (error)
    page(ctx, 400, "Connection failed",
         "The provider did not grant access. You can close this window and try again.", error);
  else
    page(ctx, 200, "Connected", "Connected \xe2\x80\x94 you can close this window.", NULL);
}

static void oauth_callback(api_ctx_t *ctx)
{
  const char *q = http_req_query(ctx->req);
  if (q != NULL && strlen(q) > ctx->api->callback_max_query) {
    page(ctx, 414, "Authorization failed", "The callback URL is too long.", NULL);
    return;
  }
  const kvlist_t *query = api_query_all(ctx);
  if (query == NULL) {
    page(ctx, 400, "Authorization failed", "The callback URL is malformed.", NULL);
    return;
  }
  int rc = svc_callback(ctx->api->svc, query, callback_done, ctx);
  if (rc != 0)
    callback_done(ctx, rc, NULL);
}

const api_route_t api_oauth_routes[] = {
  {"POST", "/v1/connections/{}/authorize", true, 2, 0, conn_authorize,
   "/v1/connections/{id}/authorize"},
  {"GET", "/oauth/callback", false, 0, 0, oauth_callback, "/oauth/callback"},
  {NULL, NULL, false, 0, 0, NULL, NULL},
};
