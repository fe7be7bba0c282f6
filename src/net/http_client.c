/*
 * http_client.c - the public side of the HTTP client (see http_client.h):
 * options, request validation and serialization, completion (the one place
 * callbacks run), cancel, shutdown and counters.
 *
 * The request is serialized once, at submission, into a buffer the request
 * owns; nothing the caller passed is referenced afterwards. The pool logic
 * lives in http_client_pool.c and the connection state machine in
 * http_client_conn.c.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/mem.h"
#include "base/url.h"
#include "net/http_client_int.h"

static uint64_t or_default(uint64_t v, uint64_t d)
{
  return v ? v : d;
}

http_client_t *http_client_new(uv_loop_t *loop, const http_client_opts_t *opts)
{
  http_client_t *c = xcalloc(1, sizeof(*c));
  c->loop = loop;
  if (opts != NULL)
    c->opts = *opts;
  http_client_opts_t *o = &c->opts;
  o->max_per_origin = (unsigned)or_default(o->max_per_origin, HTTP_CLIENT_MAX_PER_ORIGIN);
  o->max_total = (unsigned)or_default(o->max_total, HTTP_CLIENT_MAX_TOTAL);
  o->idle_timeout_ms = or_default(o->idle_timeout_ms, HTTP_CLIENT_IDLE_TIMEOUT_MS);
  o->connect_timeout_ms = or_default(o->connect_timeout_ms, HTTP_CLIENT_CONNECT_TIMEOUT_MS);
  o->handshake_timeout_ms = or_default(o->handshake_timeout_ms, HTTP_CLIENT_HANDSHAKE_TIMEOUT_MS);
  o->response_timeout_ms = or_default(o->response_timeout_ms, HTTP_CLIENT_RESPONSE_TIMEOUT_MS);
  o->max_body = (size_t)or_default(o->max_body, HTTP_CLIENT_MAX_BODY);
  o->dns_ttl_ms = or_default(o->dns_ttl_ms, HTTP_CLIENT_DNS_TTL_MS);
  c->user_agent = xstrdup(o->user_agent ? o->user_agent : "grantd");
  o->user_agent = c->user_agent;
  c->dns = dns_cache_new(loop, o->dns_ttl_ms);
  hc_list_init(&c->origins);
  /* The client's own handle: closing it is what defers the final free out
   * of http_client_close()'s stack. */
  uv_timer_init(loop, &c->own);
  c->own.data = c;
  c->pending = 1;
  return c;
}

/* ---- request validation and serialization ------------------------------ */

static int is_tchar(int ch)
{
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch));
}

static int valid_token(const char *s)
{
  if (s == NULL || *s == '\0')
    return 0;
  for (; *s; s++)
    if (!is_tchar((unsigned char)*s))
      return 0;
  return 1;
}

static int valid_value(const char *s)
{
  if (s == NULL)
    return 0;
  for (; *s; s++)
    if (*s == '\r' || *s == '\n')
      return 0;
  return 1;
}

/* Headers the client writes itself. */
static int reserved_header(const char *name)
{
  return strcasecmp(name, "Host") == 0 || strcasecmp(name, "Content-Length") == 0 ||
         strcasecmp(name, "Transfer-Encoding") == 0;
}

static int serialize(const http_client_t *c, const http_request_t *req, const url_t *u,
                     const char *method, buf_t *out)
{
  int have_ua = 0;
  for (size_t i = 0; i < req->nheaders; i++) {
    const http_client_header_t *h = &req->headers[i];
    if (!valid_token(h->name) || !valid_value(h->value) || reserved_header(h->name))
      return GRANTD_EINVALID;
    if (strcasecmp(h->name, "User-Agent") == 0)
      have_ua = 1;
  }
  if (req->body_len > 0 && req->body == NULL)
    return GRANTD_EINVALID;
  /* One allocation for the whole request: the request line, Host and
   * User-Agent, each header and the body, plus room for the fixed text. */
  size_t est = strlen(req->url) + strlen(c->user_agent) + req->body_len + 128;
  for (size_t i = 0; i < req->nheaders; i++)
    est += strlen(req->headers[i].name) + strlen(req->headers[i].value) + 4;
  buf_reserve(out, est);
  /* Plain appends, no printf: this runs once per refresh. */
  buf_puts(out, method);
  buf_putc(out, ' ');
  url_request_target(u, out);
  buf_puts(out, " HTTP/1.1\r\nHost: ");
  url_host_header(u, out);
  buf_puts(out, "\r\n");
  if (!have_ua) {
    buf_puts(out, "User-Agent: ");
    buf_puts(out, c->user_agent);
    buf_puts(out, "\r\n");
  }
  for (size_t i = 0; i < req->nheaders; i++) {
    buf_puts(out, req->headers[i].name);
    buf_puts(out, ": ");
    buf_puts(out, req->headers[i].value);
    buf_puts(out, "\r\n");
  }
  if (req->body_len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
      strcmp(method, "PATCH") == 0) {
    char digits[24];
    size_t n = sizeof digits, v = req->body_len;
    do
      digits[--n] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    buf_puts(out, "Content-Length: ");
    buf_append(out, digits + n, sizeof digits - n);
    buf_puts(out, "\r\n");
  }
  buf_puts(out, "\r\n");
  if (req->body_len > 0)
    buf_append(out, req->body, req->body_len);
  return 0;
}

/* ---- completion -------------------------------------------------------- */

static void on_req_timer_closed(uv_handle_t *h)
{
  hc_req_t *r = h->data;
  http_client_t *c = r->c;
  free(r);
  hc__client_unref(c);
}

void hc__req_finish(hc_req_t *r, int err)
{
  http_client_t *c = r->c;
  http_response_t resp;
  http_client_header_t hdrs[HC_MAX_HEADERS];
  memset(&resp, 0, sizeof(resp));
  r->state = HC_REQ_DONE;
  r->conn = NULL;
  uv_timer_stop(&r->timer);
  resp.may_have_been_sent = r->sent;
  resp.body = "";
  if (err == 0) {
    resp.status = r->status;
    resp.http_minor = r->minor;
    resp.reused = r->reused;
    for (unsigned i = 0; i < r->nh; i++) {
      hdrs[i].name = r->hbuf.data + r->hoff[2 * i];
      hdrs[i].value = r->hbuf.data + r->hoff[2 * i + 1];
    }
    resp.headers = hdrs;
    resp.nheaders = r->nh;
    if (r->body.len > 0)
      resp.body = buf_cstr(&r->body);
    resp.body_len = r->body.len;
    c->st.ok++;
  } else {
    c->st.failed++;
  }
  r->cb(&resp, err, r->arg);
  /* Token responses and requests carry secrets. */
  mem_wipe(hdrs, sizeof(hdrs));
  buf_wipe_free(&r->body);
  buf_wipe_free(&r->hbuf);
  buf_wipe_free(&r->out);
  uv_close((uv_handle_t *)&r->timer, on_req_timer_closed);
}

static void on_req_timeout(uv_timer_t *t)
{
  hc_req_t *r = t->data;
  http_client_t *c = r->c;
  if (r->state == HC_REQ_QUEUED) {
    hc__dequeue(r);
  } else if (r->state == HC_REQ_ACTIVE) {
    /* A connection whose request timed out is never reused: a late
     * response would be taken for the next request's. */
    hc_conn_t *k = r->conn;
    k->req = NULL;
    r->o->ninflight--;
    c->st.inflight--;
    hc__conn_close(k);
  } else {
    return;
  }
  hc__req_finish(r, GRANTD_ETIMEOUT);
  hc__dispatch_all(c);
}

/* ---- public API -------------------------------------------------------- */

/* The parsed form of url, from the client's small cache (owned by it:
 * valid until the next call). @return 0 or url_parse()'s code. */
static int url_cached(http_client_t *c, const char *url, const url_t **out)
{
  for (unsigned i = 0; i < HC_URL_CACHE; i++) {
    if (c->urls[i].text != NULL && strcmp(c->urls[i].text, url) == 0) {
      *out = &c->urls[i].u;
      return 0;
    }
  }
  url_t u;
  int rc = url_parse(url, &u);
  if (rc != 0)
    return rc;
  unsigned i = c->url_next++ % HC_URL_CACHE;
  free(c->urls[i].text);
  url_free(&c->urls[i].u);
  c->urls[i].text = xstrdup(url);
  c->urls[i].u = u;
  *out = &c->urls[i].u;
  return 0;
}

int http_client_request(http_client_t *c, const http_request_t *req, http_client_cb cb, void *arg,
                        http_client_handle_t **handle)
{
  if (c->closing)
    return GRANTD_ESHUTDOWN;
  if (req == NULL || cb == NULL)
    return GRANTD_EINVALID;
  if (req->url == NULL)
    return GRANTD_EBAD_URL;
  const char *method = req->method ? req->method : "GET";
  if (!valid_token(method))
    return GRANTD_EINVALID;
  const url_t *up;
  int rc = url_cached(c, req->url, &up);
  if (rc != 0)
    return rc;
  const url_t u = *up;
  int https = strcmp(u.scheme, "https") == 0;
  tls_client_ctx_t *tls = NULL;
  if (https) {
    tls = req->tls ? req->tls : c->opts.tls;
    if (tls == NULL)
      return GRANTD_ECONFIG;
  } else if (!c->opts.allow_insecure_http) {
    return GRANTD_EINSECURE_URL;
  }
  hc_req_t *r = xcalloc(1, sizeof(*r));
  rc = serialize(c, req, &u, method, &r->out);
  if (rc != 0)
    goto fail_req;
  r->c = c;
  r->cb = cb;
  r->arg = arg;
  r->is_head = strcmp(method, "HEAD") == 0;
  hc_list_init(&r->link);
  uv_timer_init(c->loop, &r->timer);
  r->timer.data = r;
  c->pending++;
  uv_timer_start(&r->timer, on_req_timeout,
                 req->timeout_ms ? req->timeout_ms : c->opts.response_timeout_ms, 0);
  r->o = hc__origin_get(c, u.host, u.port, https, tls);
  c->st.requests++;
  if (handle != NULL)
    *handle = r;
  hc__enqueue(r->o, r, 0);
  hc__dispatch(r->o);
  return 0;

fail_req:
  buf_wipe_free(&r->out);
  free(r);
  return rc;
}

void http_client_cancel(http_client_handle_t *r)
{
  if (r == NULL || r->state == HC_REQ_DONE)
    return;
  http_client_t *c = r->c;
  if (r->state == HC_REQ_QUEUED) {
    hc__dequeue(r);
  } else {
    hc_conn_t *k = r->conn;
    k->req = NULL;
    r->o->ninflight--;
    c->st.inflight--;
    hc__conn_close(k);
  }
  hc__req_finish(r, GRANTD_ECANCELLED);
  hc__dispatch_all(c);
}

const char *http_response_header(const http_response_t *resp, const char *name)
{
  if (resp == NULL || name == NULL)
    return NULL;
  for (size_t i = 0; i < resp->nheaders; i++)
    if (strcasecmp(resp->headers[i].name, name) == 0)
      return resp->headers[i].value;
  return NULL;
}

static void client_free(http_client_t *c)
{
  while (!hc_list_empty(&c->origins)) {
    hc_origin_t *o = container_of(c->origins.next, hc_origin_t, link);
    hc_list_unlink(&o->link);
    hc__origin_free(o);
  }
  dns_cache_free(c->dns);
  for (unsigned i = 0; i < HC_URL_CACHE; i++) {
    free(c->urls[i].text);
    url_free(&c->urls[i].u);
  }
  free(c->user_agent);
  free(c);
}

void hc__client_unref(http_client_t *c)
{
  if (--c->pending > 0 || !c->closing)
    return;
  http_client_close_cb cb = c->close_cb;
  void *arg = c->close_arg;
  client_free(c);
  if (cb != NULL)
    cb(arg);
}

static void on_own_closed(uv_handle_t *h)
{
  hc__client_unref(h->data);
}

void http_client_close(http_client_t *c, http_client_close_cb cb, void *arg)
{
  if (c->closing)
    return;
  c->closing = 1;
  c->close_cb = cb;
  c->close_arg = arg;
  /* Queued requests fail now; callbacks may start (refused) or cancel
   * requests, so the lists are re-read after each one. */
  for (hc_link_t *l = c->origins.next; l != &c->origins; l = l->next) {
    hc_origin_t *o = container_of(l, hc_origin_t, link);
    while (!hc_list_empty(&o->queue)) {
      hc_req_t *r = container_of(o->queue.next, hc_req_t, link);
      hc__dequeue(r);
      hc__req_finish(r, GRANTD_ESHUTDOWN);
    }
  }
  /* Connections not serving a request close now; busy ones close when
   * their request completes (they are not pooled while closing). */
  for (hc_link_t *l = c->origins.next; l != &c->origins; l = l->next) {
    hc_origin_t *o = container_of(l, hc_origin_t, link);
    hc_link_t *e = o->conns.next;
    while (e != &o->conns) {
      hc_conn_t *k = container_of(e, hc_conn_t, link);
      e = e->next;
      if (k->state != HC_CONN_BUSY)
        hc__conn_close(k);
    }
  }
  uv_close((uv_handle_t *)&c->own, on_own_closed);
}

void http_client_get_stats(const http_client_t *c, http_client_stats_t *out)
{
  *out = c->st;
  out->conns = c->nconns;
  const dns_stats_t *d = dns_cache_stats(c->dns);
  out->dns_lookups = d->lookups;
  out->dns_hits = d->hits;
}

int http_client_origin_stats(const http_client_t *c, const char *url, http_origin_stats_t *out)
{
  memset(out, 0, sizeof(*out));
  url_t u;
  int rc = url_parse(url ? url : "", &u);
  if (rc != 0)
    return rc;
  int https = strcmp(u.scheme, "https") == 0;
  hc_origin_t *o =
    hc__origin_find((http_client_t *)c, u.host, u.port, https, https ? c->opts.tls : NULL);
  url_free(&u);
  if (o == NULL)
    return GRANTD_ENOT_FOUND;
  out->conns = o->nconns;
  out->idle = o->nidle;
  out->inflight = o->ninflight;
  out->queued = o->nqueued;
  return 0;
}
