/*
 * treq.c - the token-request scheduler: every request to a token,
 * revocation or code-exchange endpoint (refresh.c, connect_flow.c,
 * revocation.c) goes through it.
 *
 * Limits and order. A request needs a global slot (max_inflight), a slot
 * of its token host (max_inflight_per_host) and, if its provider has one, a
 * pass from the provider's rate limiter. Waiting requests sit in their
 * provider's binary heap ordered by (deadline, submission): scheduled
 * refreshes carry the token's expiry as deadline, reads and forced
 * refreshes "now", so an overdue token whose expiry passed goes first, then
 * readers, then proactive refreshes. dispatch() repeatedly takes the
 * earliest head among providers that can go (linear in the number of
 * providers, which is small). A provider that is rate limited is skipped
 * until its wait ends (one shared uv_timer wakes dispatch).
 *
 * Back-pressure. When svc->queue_cap requests wait, the refresh schedule
 * pauses (schedule.c sets svc->throttled); once the queue has drained to
 * half, dispatch clears it and calls svc->on_room.
 *
 * Shutdown. svc_drain/svc_close end queued requests with GRANTD_ESHUTDOWN
 * (from a later iteration) and cancel the ones in flight.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "net/http_client.h"
#include "service/lifecycle.h"
#include "service/treq.h"

static bool earlier(const void *a, const void *b)
{
  const svc_treq_t *x = a, *y = b;
  return x->deadline < y->deadline || (x->deadline == y->deadline && x->seq < y->seq);
}

enum { TREQ_IDLE = 0, TREQ_QUEUED = 1, TREQ_SENDING = 2 };

static void dispatch(svc_t *svc);

static void gauges(svc_t *svc, svc_host_t *h)
{
  metrics_gauge_set("grantd_refresh_queued", NULL, (double)svc->queued);
  if (h)
    metrics_gauge_set("grantd_refresh_inflight", h->labels, (double)h->inflight);
}

static void release_slot(svc_t *svc, svc_host_t *h)
{
  svc->sending--;
  if (h)
    h->inflight--;
  gauges(svc, h);
}

/* Finishes a request: release its slot, hand the outcome over, go on
 * dispatching. */
static void treq_finish(svc_treq_t *t, svc_tresult_t *r)
{
  svc_t *svc = t->svc;
  release_slot(svc, t->host);
  if (t->sprev) {
    *t->sprev = t->snext;
    if (t->snext)
      t->snext->sprev = t->sprev;
    t->snext = NULL;
    t->sprev = NULL;
  }
  t->host = NULL;
  t->http = NULL;
  t->state = TREQ_IDLE;
  t->done(t, r); /* may free t */
  token_result_free(&r->tok);
  device_auth_free(&r->dev);
  dispatch(svc);
  svc__maybe_closed(svc);
}

static void fill_neterr(svc_tresult_t *r, int err, bool maybe_sent)
{
  memset(&r->tok, 0, sizeof r->tok);
  r->neterr = err;
  r->unknown = maybe_sent;
  r->tok.outcome = token_outcome_for_error(err);
  r->tok.error = xstrdup(err_name(err));
  r->tok.error_description = xstrdup(err_str(err));
}

static void on_http_done(const http_response_t *resp, int err, void *arg)
{
  svc_treq_t *t = arg;
  svc_tresult_t r;
  memset(&r, 0, sizeof r);
  r.latency_ms = (clock_mono_us() - t->t0_us) / 1000;
  if (err == GRANTD_ECANCELLED && resp->may_have_been_sent == 0 &&
      (t->svc->draining || t->svc->closing)) {
    fill_neterr(&r, GRANTD_ESHUTDOWN, false); /* svc_drain, never sent */
  } else if (err != 0) {
    fill_neterr(&r, err, resp->may_have_been_sent != 0);
  } else {
    t->prov->host_validated = true;
    token_input_t in = {
      .status = resp->status,
      .content_type = http_response_header(resp, "Content-Type"),
      .body = resp->body,
      .body_len = resp->body_len,
      .retry_after = http_response_header(resp, "Retry-After"),
      .now_ms = clock_now_ms(),
      .default_expires_in = t->prov->p.default_expires_in,
      .token_member = t->token_member[0] ? t->token_member : t->prov->p.token_member,
    };
    if (t->device_auth)
      device_auth_parse(&in, &r.dev, &r.tok);
    else if (t->revocation)
      token_parse_revocation(&in, &r.tok);
    else
      token_parse(&in, &r.tok);
  }
  treq_finish(t, &r);
}

static int send_request(svc_t *svc, svc_treq_t *t, oauth_request_t *req)
{
  const svc_prov_t *pv = t->prov;
  const char *url = t->url ? t->url : req->url;
  /* The client may allow http:// globally (tests); a provider must opt in
   * too. */
  if (url && strncasecmp(url, "http:", 5) == 0 && !pv->p.allow_insecure_http)
    return GRANTD_EINSECURE_URL;
  http_client_header_t h[3];
  size_t nh = 0;
  h[nh++] = (http_client_header_t){"Content-Type", req->content_type};
  h[nh++] = (http_client_header_t){"Accept", req->accept};
  if (req->authorization)
    h[nh++] = (http_client_header_t){"Authorization", req->authorization};
  http_request_t hr = {
    .method = "POST",
    .url = url,
    .headers = h,
    .nheaders = nh,
    .body = req->body,
    .body_len = req->body_len,
    .timeout_ms =
      (uint64_t)(pv->p.timeout_ms > 0 ? pv->p.timeout_ms : svc->opts.request_timeout_ms),
    .tls = pv->tls,
  };
  t->t0_us = clock_mono_us();
  return http_client_request(svc->http, &hr, on_http_done, t, (http_client_handle_t **)&t->http);
}

/* Defers a request's done callback with GRANTD_ESHUTDOWN (close). */
typedef struct {
  uv_timer_t timer;
  svc_treq_t *t;
} shut_t;

static void on_shut_closed(uv_handle_t *h)
{
  free(h->data);
}

static void on_shut(uv_timer_t *tm)
{
  shut_t *s = tm->data;
  svc_treq_t *t = s->t;
  svc_t *svc = t->svc;
  svc_tresult_t r;
  memset(&r, 0, sizeof r);
  fill_neterr(&r, GRANTD_ESHUTDOWN, false);
  tm->data = s;
  uv_close((uv_handle_t *)tm, on_shut_closed);
  t->state = TREQ_IDLE;
  t->done(t, &r);
  token_result_free(&r.tok);
  svc->work--;
  svc__maybe_closed(svc);
}

static void shutdown_later(svc_t *svc, svc_treq_t *t)
{
  shut_t *s = xcalloc(1, sizeof *s);
  s->t = t;
  uv_timer_init(svc->loop, &s->timer);
  s->timer.data = s;
  svc->work++;
  uv_timer_start(&s->timer, on_shut, 0, 0);
}

void svc__treq_submit(svc_t *svc, svc_treq_t *t)
{
  t->svc = svc;
  t->seq = ++svc->treq_seq;
  t->snext = NULL;
  t->sprev = NULL;
  if (svc->closing || svc->draining) {
    shutdown_later(svc, t);
    return;
  }
  t->state = TREQ_QUEUED;
  if (t->prov->queue.less == NULL) /* a new holder's queue */
    heap_init(&t->prov->queue, earlier, offsetof(svc_treq_t, hidx));
  heap_push(&t->prov->queue, t);
  svc->queued++;
  dispatch(svc); /* may complete and free t */
  gauges(svc, NULL);
}

int svc__treq_cancel(svc_treq_t *t)
{
  if (t->state != TREQ_QUEUED)
    return 0;
  heap_remove(&t->prov->queue, t);
  t->svc->queued--;
  t->state = TREQ_IDLE;
  gauges(t->svc, NULL);
  return 1;
}

void svc__treq_shutdown_all(svc_t *svc)
{
  for (size_t i = 0; i < svc->nprovs; i++) {
    heap_t *h = &svc->provs[i]->queue;
    while (h->n > 0) {
      svc_treq_t *t = heap_top(h);
      svc__treq_cancel(t);
      shutdown_later(svc, t);
    }
  }
}

void svc__treq_cancel_sending(svc_t *svc)
{
  /* Each cancel finishes its request at once (treq_finish unlinks it). */
  while (svc->sending_list) {
    svc_treq_t *t = svc->sending_list;
    http_client_cancel((http_client_handle_t *)t->http);
    if (svc->sending_list == t) {
      /* Not finished by the cancel (cannot happen per http_client.h);
       * unlink so the loop ends, its callback still runs later. */
      svc->sending_list = t->snext;
      if (t->snext)
        t->snext->sprev = &svc->sending_list;
      t->snext = NULL;
      t->sprev = NULL;
    }
  }
}

static void on_rl_timer(uv_timer_t *tm)
{
  svc_t *svc = tm->data;
  svc->rl_armed = 0;
  dispatch(svc);
}

static void dispatch(svc_t *svc)
{
  if (svc->dispatching)
    return;
  svc->dispatching = true;
  int64_t rl_wake = INT64_MAX;
  while (!svc->closing && !svc->draining && svc->queued > 0 &&
         svc->sending < (size_t)svc->opts.max_inflight) {
    int64_t now = clock_now_ms();
    svc_prov_t *best = NULL;
    for (size_t i = 0; i < svc->nprovs; i++) {
      svc_prov_t *pv = svc->provs[i];
      if (pv->queue.n == 0)
        continue;
      if (pv->host && pv->host->inflight >= svc->opts.max_inflight_per_host)
        continue;
      if (pv->rl_until > now) {
        if (pv->rl_until < rl_wake)
          rl_wake = pv->rl_until;
        continue;
      }
      if (best == NULL || earlier(heap_top(&pv->queue), heap_top(&best->queue)))
        best = pv;
    }
    if (best == NULL)
      break;
    if (best->rl.count > 0) {
      int64_t wait = ratelimit_take(&best->rl, now);
      if (wait > 0) {
        best->rl_until = now + wait;
        continue;
      }
    }
    svc_treq_t *t = heap_top(&best->queue);
    heap_remove(&best->queue, t);
    svc->queued--;
    svc_host_t *h = best->host;
    svc->sending++;
    if (h)
      h->inflight++;
    t->host = h;
    t->state = TREQ_SENDING;
    oauth_request_t req;
    memset(&req, 0, sizeof req);
    if (t->start(t, &req) != 0) {
      /* t may be gone: it finished without a request. */
      release_slot(svc, h);
      oauth_request_free(&req);
      continue;
    }
    int rc = send_request(svc, t, &req);
    oauth_request_free(&req);
    if (rc != 0) {
      /* Refused before anything was sent (bad URL, insecure URL ...):
       * report through done from a later iteration, like any failure. */
      svc_tresult_t r;
      memset(&r, 0, sizeof r);
      fill_neterr(&r, rc, false);
      svc->dispatching = false;
      treq_finish(t, &r);
      svc->dispatching = true;
    } else {
      t->snext = svc->sending_list;
      if (t->snext)
        t->snext->sprev = &t->snext;
      t->sprev = &svc->sending_list;
      svc->sending_list = t;
    }
    gauges(svc, h);
  }
  svc->dispatching = false;
  if (rl_wake != INT64_MAX && (svc->rl_armed == 0 || rl_wake < svc->rl_armed) && !svc->closing) {
    int64_t now = clock_now_ms();
    svc->rl_armed = rl_wake;
    uv_timer_start(&svc->rl_timer, on_rl_timer, (uint64_t)(rl_wake > now ? rl_wake - now : 0), 0);
  }
  if (svc->throttled && svc->queued <= svc->queue_cap / 2) {
    svc->throttled = false;
    svc->on_room(svc);
  }
}
