/*
 * webhooks.c - webhook endpoints and their delivery engine (svc.h,
 * "webhook endpoints"; webhooks.h).
 *
 * Each endpoint (wh_ep_t, state enum below) holds its record, its signing
 * keys and a delivery window (wh_window.h) over the outbox. Whenever a
 * batch with events commits (svc__wh_kick), a request ends or the retry
 * timer fires, the endpoint reads the events after its window's scan
 * position (at most WH_WINDOW live items), and sends every READY item, at
 * most webhook_max_inflight at once, over the service's http client (its
 * keep-alive pool, TLS trust, per-origin limits, timeouts and SSRF policy).
 *
 * Outcome of one attempt: 2xx delivered; 410 disables the endpoint (the
 * item stays pending; a PUT enables it again); anything else, or no
 * answer, is retried after wh_backoff_ms() until webhook_retry_total_ms
 * after the first attempt, then the item fails for good for this endpoint.
 *
 * Durability. The endpoint's progress (webhook.h: cursor, attempts of the
 * items above it, done items out of order, counters) is written through
 * the store's group commit after changes, at most one write per endpoint
 * in flight (later changes mark it dirty and are written when it lands).
 * A crash therefore loses at most the changes since the last commit:
 * those events are sent again (same webhook-id), never skipped, since the
 * cursor only moves past finished events. The store's retention keeps
 * events above the lowest cursor (store_opts_t.events_keep_undelivered).
 *
 * Everything runs on the loop; one uv timer for all endpoints' retries.
 */
#include "service/webhooks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "base/rand.h"
#include "base/whsig.h"
#include "service/events.h"
#include "service/lifecycle.h"
#include "service/wh_window.h"

#define WH_WINDOW 1024 /* live items per endpoint at most */
#define WH_READ_CHUNK 256

typedef enum {
  WH_EP_ACTIVE = 0, /* delivering */
  WH_EP_DISABLED,   /* the receiver answered 410 Gone: nothing is sent */
  WH_EP_DELETED,    /* unlinked; freed once nothing refers to it */
} wh_ep_state_t;

typedef struct wh_ep {
  struct wh_ep *next;
  svc_t *svc;
  wh_ep_state_t state;
  wh_rec_t rec;
  uint8_t key[WHSIG_KEY_MAX], okey[WHSIG_KEY_MAX];
  size_t keylen, okeylen; /* okeylen 0 = no old key */
  wh_window_t win;
  wh_prog_t st;           /* counters and last outcome (st.ent unused) */
  wh_prog_ent_t *restore; /* entries loaded at open, consulted while filling */
  size_t nrestore;
  uint32_t inflight;
  bool saving, dirty;
  char labels[160]; /* endpoint="name" */
} wh_ep_t;

/* One request in flight. */
typedef struct {
  wh_ep_t *ep;
  wh_item_t *it; /* NULL for a test delivery */
  int64_t t0_ms;
  svc_wh_test_cb tcb;
  void *targ;
  char id[40];
} wh_req_t;

static void ep_pump(wh_ep_t *ep);

/* ---- metrics ---- */

static const double lat_bounds[] = {0.01, 0.05, 0.1,  0.5,  1,     5,    30,
                                    60,   300,  1800, 3600, 21600, 86400};

static void metrics_define(void)
{
  metrics_help("grantd_webhook_deliveries_total",
               "webhook delivery attempts by endpoint and outcome (delivered, retry, failed, gone)",
               METRIC_COUNTER);
  metrics_histogram_define("grantd_webhook_delivery_seconds",
                           "time from an event's commit to its delivery, by endpoint", lat_bounds,
                           sizeof lat_bounds / sizeof lat_bounds[0]);
  metrics_help("grantd_webhook_backlog",
               "events not finished for the endpoint (matching ones not yet delivered or failed, "
               "and those not read yet)",
               METRIC_GAUGE);
  metrics_help("grantd_webhook_oldest_undelivered_seconds",
               "age of the oldest event not yet delivered to the endpoint", METRIC_GAUGE);
  metrics_help("grantd_webhook_events_lost_total",
               "events pruned from the outbox before the endpoint got them", METRIC_COUNTER);
}

static uint64_t last_seq(const svc_t *svc)
{
  uint64_t first, last;
  store_events_bounds(svc->store, &first, &last);
  return last;
}

static int64_t oldest_ms(const wh_ep_t *ep)
{
  for (size_t i = 0; i < wh_win_count(&ep->win); i++) {
    const wh_item_t *it = wh_win_at(&ep->win, i);
    if (it->state != WH_IT_DONE)
      return it->ts_ms;
  }
  return 0;
}

/* Events not finished for the endpoint: the window's matching ones not yet
 * delivered or failed for good, and those it has not read yet (whether
 * they match is known once read). */
static uint64_t backlog(const wh_ep_t *ep)
{
  uint64_t last = last_seq(ep->svc);
  return ep->win.pending + (last > ep->win.scan ? last - ep->win.scan : 0);
}

static void ep_gauges(wh_ep_t *ep)
{
  metrics_gauge_set("grantd_webhook_backlog", ep->labels,
                    ep->state == WH_EP_DELETED ? 0 : (double)backlog(ep));
  int64_t o = oldest_ms(ep);
  double age = o > 0 ? (double)(clock_now_ms() - o) / 1e3 : 0;
  metrics_gauge_set("grantd_webhook_oldest_undelivered_seconds", ep->labels,
                    ep->state == WH_EP_DELETED || age < 0 ? 0 : age);
}

static void count(wh_ep_t *ep, const char *outcome)
{
  char l[200];
  snprintf(l, sizeof l, "%s,outcome=\"%s\"", ep->labels, outcome);
  metrics_counter_inc("grantd_webhook_deliveries_total", l);
}

/* ---- endpoints ---- */

static void set_keys(wh_ep_t *ep)
{
  mem_wipe(ep->key, sizeof ep->key);
  mem_wipe(ep->okey, sizeof ep->okey);
  ep->keylen = ep->okeylen = 0;
  if (whsig_secret_parse(ep->rec.secret, ep->key, &ep->keylen) != 0)
    ep->keylen = 0;
  if (ep->rec.old_secret && whsig_secret_parse(ep->rec.old_secret, ep->okey, &ep->okeylen) != 0)
    ep->okeylen = 0;
}

static wh_ep_t *ep_new(svc_t *svc, const wh_rec_t *r, const wh_prog_t *p)
{
  wh_ep_t *ep = xcalloc(1, sizeof *ep);
  ep->svc = svc;
  wh_rec_copy(&ep->rec, r);
  set_keys(ep);
  buf_t l = BUF_INIT;
  buf_puts(&l, "endpoint=\"");
  metrics_label_escape(&l, r->name);
  buf_putc(&l, '"');
  snprintf(ep->labels, sizeof ep->labels, "%s", buf_cstr(&l));
  buf_free(&l);
  if (p) {
    ep->st = *p;
    ep->st.ent = NULL;
    ep->st.n = 0;
    ep->restore = p->n ? xmemdup(p->ent, p->n * sizeof *p->ent) : NULL;
    ep->nrestore = p->n;
    if (p->flags & WH_PROG_DISABLED)
      ep->state = WH_EP_DISABLED;
  } else {
    ep->st.cursor = last_seq(svc);
  }
  wh_win_init(&ep->win, ep->st.cursor);
  return ep;
}

static void ep_free(wh_ep_t *ep)
{
  wh_rec_free(&ep->rec);
  mem_wipe(ep->key, sizeof ep->key);
  mem_wipe(ep->okey, sizeof ep->okey);
  wh_win_free(&ep->win);
  free(ep->restore);
  free(ep);
}

/* A deleted endpoint goes once no request or write refers to it. */
static void ep_maybe_free(wh_ep_t *ep)
{
  if (ep->state == WH_EP_DELETED && ep->inflight == 0 && !ep->saving)
    ep_free(ep);
}

static wh_ep_t *ep_find(svc_t *svc, const char *name)
{
  for (wh_ep_t *ep = svc->wh_eps; ep; ep = ep->next)
    if (strcmp(ep->rec.name, name) == 0)
      return ep;
  return NULL;
}

static void ep_link(svc_t *svc, wh_ep_t *ep)
{
  wh_ep_t **pp = &svc->wh_eps;
  while (*pp && strcmp((*pp)->rec.name, ep->rec.name) < 0)
    pp = &(*pp)->next;
  ep->next = *pp;
  *pp = ep;
  svc->wh_count++;
}

static void ep_unlink(svc_t *svc, wh_ep_t *ep)
{
  for (wh_ep_t **pp = &svc->wh_eps; *pp; pp = &(*pp)->next)
    if (*pp == ep) {
      *pp = ep->next;
      svc->wh_count--;
      ep->next = NULL;
      return;
    }
}

/* ---- progress ---- */

static void prog_build(const wh_ep_t *ep, wh_prog_t *p)
{
  *p = ep->st;
  p->cursor = ep->win.cursor;
  p->flags = ep->state == WH_EP_DISABLED ? WH_PROG_DISABLED : 0;
  p->n = 0;
  p->ent = NULL;
  size_t n = wh_win_count(&ep->win);
  for (size_t i = 0; i < n; i++) {
    const wh_item_t *it = wh_win_at(&ep->win, i);
    if (it->attempts == 0 && it->state != WH_IT_DONE)
      continue;
    if (p->ent == NULL)
      p->ent = xcalloc(n, sizeof *p->ent);
    p->ent[p->n++] = (wh_prog_ent_t){
      .seq = it->seq,
      .attempts = it->attempts,
      .done = it->state == WH_IT_DONE,
      .first_ms = it->first_ms,
      .next_ms = it->state == WH_IT_BACKOFF ? it->next_ms : 0,
    };
  }
  /* Entries loaded at open that the window has not reached yet. */
  if (ep->nrestore) {
    p->ent = xrealloc(p->ent, (p->n + ep->nrestore) * sizeof *p->ent);
    for (size_t i = 0; i < ep->nrestore; i++)
      if (ep->restore[i].seq > ep->win.scan)
        p->ent[p->n++] = ep->restore[i];
  }
}

static void ep_save(wh_ep_t *ep);

static void on_saved(void *arg, int status)
{
  wh_ep_t *ep = arg;
  svc_t *svc = ep->svc;
  ep->saving = false;
  if (status != 0)
    ep->dirty = true; /* a failed commit: the next change writes it again */
  if (ep->dirty && ep->state != WH_EP_DELETED && status == 0)
    ep_save(ep);
  ep_maybe_free(ep);
  svc__work_end(svc);
}

static void ep_save(wh_ep_t *ep)
{
  if (ep->state == WH_EP_DELETED)
    return;
  if (ep->saving) {
    ep->dirty = true;
    return;
  }
  ep->dirty = false;
  wh_prog_t p;
  prog_build(ep, &p);
  int rc = store_webhook_progress_put(ep->svc->store, ep->rec.name, &p, on_saved, ep);
  wh_prog_free(&p);
  if (rc != 0) {
    ep->dirty = true;
    return;
  }
  ep->saving = true;
  svc__work_begin(ep->svc);
}

/* ---- the retry timer ---- */

static void on_timer(uv_timer_t *t);

static void timer_arm(svc_t *svc, int64_t at)
{
  if (svc->draining || svc->closing)
    return;
  if (svc->wh_timer_at != 0 && svc->wh_timer_at <= at)
    return;
  int64_t d = at - clock_now_ms();
  svc->wh_timer_at = at;
  uv_timer_start(&svc->wh_timer, on_timer, d > 0 ? (uint64_t)d : 0, 0);
}

/* Queues the endpoint's items whose retry is due; arms the timer for the
 * earliest of the others. O(window), once per timer expiry. */
static void ep_wake(wh_ep_t *ep)
{
  int64_t now = clock_now_ms(), wake = 0;
  for (size_t i = 0; i < wh_win_count(&ep->win); i++) {
    wh_item_t *it = wh_win_at(&ep->win, i);
    if (it->state != WH_IT_BACKOFF)
      continue;
    if (it->next_ms <= now)
      wh_win_ready(&ep->win, it);
    else if (wake == 0 || it->next_ms < wake)
      wake = it->next_ms;
  }
  if (wake)
    timer_arm(ep->svc, wake);
}

static void on_timer(uv_timer_t *t)
{
  svc_t *svc = t->data;
  svc->wh_timer_at = 0;
  for (wh_ep_t *ep = svc->wh_eps; ep; ep = ep->next) {
    ep_wake(ep);
    ep_pump(ep);
  }
}

/* ---- sending ---- */

static void error_class(int status, int err, char out[WH_CLASS_LEN])
{
  if (err != 0)
    snprintf(out, WH_CLASS_LEN, "%s", err_name(err));
  else
    snprintf(out, WH_CLASS_LEN, "http_%dxx", status / 100);
}

static void note_error(wh_ep_t *ep, int status, int err)
{
  ep->st.last_err_ms = clock_now_ms();
  ep->st.last_err_status = status;
  error_class(status, err, ep->st.last_err_class);
}

static void on_sent(const http_response_t *resp, int err, void *arg)
{
  wh_req_t *rq = arg;
  wh_ep_t *ep = rq->ep;
  svc_t *svc = ep->svc;
  wh_item_t *it = rq->it;
  ep->inflight--;
  int64_t now = clock_now_ms();
  bool ok = err == 0 && resp->status >= 200 && resp->status < 300;
  if (it == NULL) { /* a test delivery */
    char cls[WH_CLASS_LEN];
    error_class(resp->status, err, cls);
    svc_wh_test_t t = {.id = rq->id,
                       .delivered = ok,
                       .status = resp->status,
                       .error = ok ? NULL : cls,
                       .ms = now - rq->t0_ms};
    rq->tcb(rq->targ, 0, &t);
    free(rq);
    ep_maybe_free(ep);
    svc__work_end(svc);
    return;
  }
  free(rq);
  it->http = NULL;
  if (ep->state == WH_EP_DELETED) {
    ep_maybe_free(ep);
    return;
  }
  if (err == GRANTD_ECANCELLED || err == GRANTD_ESHUTDOWN) {
    wh_win_ready(&ep->win, it); /* sent again (after a restart at the latest) */
    return;
  }
  if (ok) {
    ep->st.delivered++;
    ep->st.last_ok_ms = now;
    count(ep, "delivered");
    metrics_histogram_observe("grantd_webhook_delivery_seconds", ep->labels,
                              (double)(now - it->ts_ms) / 1e3);
    wh_win_finish(&ep->win, it, true);
  } else if (err == 0 && resp->status == 410) {
    note_error(ep, resp->status, 0);
    count(ep, "gone");
    wh_win_ready(&ep->win, it);
    if (ep->state == WH_EP_ACTIVE) {
      ep->state = WH_EP_DISABLED;
      log_warn("webhook_disabled", "endpoint", ep->rec.name, "#status", LOG_I64(410), "hint",
               "the receiver answered 410 Gone; PUT the endpoint again to enable it");
    }
  } else {
    note_error(ep, resp->status, err);
    int64_t next =
      now + wh_backoff_ms(it->attempts, svc->opts.webhook_retry_base_ms, rand_fast_u64(&svc->rnd));
    if (wh_give_up(it->first_ms, next, svc->opts.webhook_retry_total_ms)) {
      ep->st.failed++;
      count(ep, "failed");
      char id[21];
      svc_event_id(it->seq, id);
      log_warn("webhook_delivery_failed", "endpoint", ep->rec.name, "event", id, "#attempts",
               LOG_I64(it->attempts), "error", ep->st.last_err_class, "#status",
               LOG_I64(resp->status));
      wh_win_finish(&ep->win, it, false);
    } else {
      count(ep, "retry");
      it->state = WH_IT_BACKOFF;
      it->next_ms = next;
      timer_arm(svc, next);
    }
  }
  ep_save(ep);
  ep_pump(ep);
}

static int send_one(wh_ep_t *ep, const char *id, const char *body, size_t n, wh_req_t *rq,
                    void **handle)
{
  svc_t *svc = ep->svc;
  int64_t ts = clock_now_ms() / 1000;
  buf_t sig = BUF_INIT;
  whsig_sign(ep->key, ep->keylen, id, ts, body, n, &sig);
  if (ep->okeylen && ep->rec.old_until > clock_now_ms()) {
    buf_putc(&sig, ' ');
    whsig_sign(ep->okey, ep->okeylen, id, ts, body, n, &sig);
  }
  char tsb[24];
  snprintf(tsb, sizeof tsb, "%" PRId64, ts);
  http_client_header_t h[] = {
    {"Content-Type", "application/json"},
    {"webhook-id", id},
    {"webhook-timestamp", tsb},
    {"webhook-signature", buf_cstr(&sig)},
  };
  http_request_t req = {
    .method = "POST",
    .url = ep->rec.url,
    .headers = h,
    .nheaders = 4,
    .body = body,
    .body_len = n,
    .timeout_ms = (uint64_t)svc->opts.webhook_timeout_ms,
  };
  rq->ep = ep;
  rq->t0_ms = clock_now_ms();
  http_client_handle_t *hd = NULL;
  int rc = http_client_request(svc->http, &req, on_sent, rq, &hd);
  buf_free(&sig);
  if (rc == 0) {
    ep->inflight++;
    if (handle)
      *handle = hd;
  }
  return rc;
}

static void send_item(wh_ep_t *ep, wh_item_t *it)
{
  char id[21];
  svc_event_id(it->seq, id);
  wh_req_t *rq = xcalloc(1, sizeof *rq);
  rq->it = it;
  int64_t now = clock_now_ms();
  it->attempts++;
  if (it->first_ms == 0)
    it->first_ms = now;
  it->state = WH_IT_SENDING;
  int rc = send_one(ep, id, it->body, it->body_len, rq, &it->http);
  if (rc != 0) {
    /* The URL cannot be requested at all (e.g. http:// without
     * --allow-insecure-http): a failed attempt like any other. */
    free(rq);
    note_error(ep, 0, rc);
    int64_t next = now + wh_backoff_ms(it->attempts, ep->svc->opts.webhook_retry_base_ms,
                                       rand_fast_u64(&ep->svc->rnd));
    if (wh_give_up(it->first_ms, next, ep->svc->opts.webhook_retry_total_ms)) {
      ep->st.failed++;
      count(ep, "failed");
      wh_win_finish(&ep->win, it, false);
    } else {
      count(ep, "retry");
      it->state = WH_IT_BACKOFF;
      it->next_ms = next;
      timer_arm(ep->svc, next);
    }
  }
}

/* ---- filling the window from the outbox ---- */

static const wh_prog_ent_t *restored(const wh_ep_t *ep, uint64_t seq)
{
  for (size_t i = 0; i < ep->nrestore; i++)
    if (ep->restore[i].seq == seq)
      return &ep->restore[i];
  return NULL;
}

static char *conn_of(const store_event_t *e)
{
  json_t *o = NULL;
  char *id = NULL;
  if (json_parse(e->data, e->data_len, &o) == 0) {
    const char *s = json_get_str(o, "connection");
    id = xstrdup(s ? s : "");
  }
  json_decref(o);
  return id ? id : xstrdup("");
}

/* @return true when the cursor moved (a save is due). */
static bool ep_fill(wh_ep_t *ep)
{
  svc_t *svc = ep->svc;
  uint64_t first, last;
  store_events_bounds(svc->store, &first, &last);
  uint64_t before = ep->win.cursor;
  if (first > 0 && ep->win.scan + 1 < first) {
    uint64_t lost = first - 1 - ep->win.scan;
    metrics_counter_add("grantd_webhook_events_lost_total", ep->labels, (double)lost);
    log_error("webhook_events_lost", "endpoint", ep->rec.name, "#events", LOG_I64(lost), "#first",
              LOG_I64(first), "hint", "the outbox pruned them before they were delivered");
    /* The window's items are all below first: requests still in flight for
     * them end now (cancelled: READY), before the items go. */
    for (size_t i = 0; i < wh_win_count(&ep->win); i++) {
      wh_item_t *it = wh_win_at(&ep->win, i);
      if (it->state == WH_IT_SENDING && it->http && it->seq < first)
        http_client_cancel(it->http);
    }
    wh_win_jump(&ep->win, first - 1);
  }
  /* Read in chunks: at most once per WH_READ_CHUNK finished items while
   * others wait to be sent, at once when none does. */
  int64_t wake = 0;
  for (;;) {
    size_t room = WH_WINDOW - wh_win_count(&ep->win);
    if (ep->win.scan >= last || room == 0 ||
        (room < WH_READ_CHUNK && !wh_win_ready_empty(&ep->win)))
      break;
    store_event_t *ev;
    size_t n;
    if (store_events_read(svc->store, ep->win.scan, room < WH_READ_CHUNK ? room : WH_READ_CHUNK,
                          &ev, &n) != 0 ||
        n == 0)
      break;
    for (size_t i = 0; i < n; i++) {
      const store_event_t *e = &ev[i];
      const wh_prog_ent_t *r = ep->nrestore ? restored(ep, e->seq) : NULL;
      if (!wh_patterns_match(&ep->rec.events, outbox_type_name(e->type)) || (r && r->done)) {
        wh_win_skip(&ep->win, e->seq);
        continue;
      }
      buf_t b = BUF_INIT;
      svc_event_render(e, &b);
      size_t bl = b.len;
      char *conn = conn_of(e);
      wh_item_t *it = wh_win_add(&ep->win, e->seq, conn, buf_steal(&b), bl, e->ts_ms);
      free(conn);
      if (r) {
        it->attempts = r->attempts;
        it->first_ms = r->first_ms;
        if (r->next_ms > 0 && it->state == WH_IT_READY) {
          it->state = WH_IT_BACKOFF; /* leaves the ready queue */
          it->next_ms = r->next_ms;
          if (wake == 0 || r->next_ms < wake)
            wake = r->next_ms;
        }
      }
    }
    store_events_free(ev, n);
  }
  if (wake)
    timer_arm(svc, wake);
  if (ep->nrestore && ep->win.scan >= ep->restore[ep->nrestore - 1].seq) {
    free(ep->restore);
    ep->restore = NULL;
    ep->nrestore = 0;
  }
  return ep->win.cursor != before;
}

/* Fills, sends what is ready, arms the timer for what waits. */
static void ep_pump(wh_ep_t *ep)
{
  svc_t *svc = ep->svc;
  if (ep->state != WH_EP_ACTIVE || svc->draining || svc->closing)
    return;
  if (ep_fill(ep))
    ep_save(ep);
  unsigned max = (unsigned)svc->opts.webhook_max_inflight;
  while (ep->inflight < max && ep->state == WH_EP_ACTIVE) {
    wh_item_t *it = wh_win_pop_ready(&ep->win);
    if (it == NULL)
      break;
    send_item(ep, it);
  }
  ep_gauges(ep);
}

/* ---- hooks ---- */

static int load_one(void *arg, const wh_rec_t *r, const wh_prog_t *p)
{
  svc_t *svc = arg;
  ep_link(svc, ep_new(svc, r, p));
  return 0;
}

int svc__wh_open(svc_t *svc)
{
  svc_opts_t *o = &svc->opts;
  if (o->webhook_max_endpoints <= 0)
    o->webhook_max_endpoints = SVC_DEFAULT_WH_MAX_ENDPOINTS;
  if (o->webhook_max_inflight <= 0)
    o->webhook_max_inflight = SVC_DEFAULT_WH_MAX_INFLIGHT;
  if (o->webhook_timeout_ms <= 0)
    o->webhook_timeout_ms = SVC_DEFAULT_WH_TIMEOUT_MS;
  if (o->webhook_retry_total_ms <= 0)
    o->webhook_retry_total_ms = SVC_DEFAULT_WH_RETRY_TOTAL_MS;
  if (o->webhook_retry_base_ms <= 0)
    o->webhook_retry_base_ms = WH_BACKOFF_BASE_MS;
  if (o->webhook_secret_overlap_ms <= 0)
    o->webhook_secret_overlap_ms = SVC_DEFAULT_WH_OVERLAP_MS;
  metrics_define();
  return store_webhook_scan(svc->store, load_one, NULL, svc);
}

void svc__wh_kick(svc_t *svc)
{
  for (wh_ep_t *ep = svc->wh_eps; ep; ep = ep->next)
    ep_pump(ep);
}

void svc__wh_drain(svc_t *svc)
{
  uv_timer_stop(&svc->wh_timer);
  svc->wh_timer_at = 0;
  for (wh_ep_t *ep = svc->wh_eps; ep; ep = ep->next) {
    for (size_t i = 0; i < wh_win_count(&ep->win); i++) {
      wh_item_t *it = wh_win_at(&ep->win, i);
      if (it->state == WH_IT_SENDING && it->http)
        http_client_cancel(it->http); /* on_sent runs now: READY again */
    }
    ep_save(ep);
  }
}

void svc__wh_free(svc_t *svc)
{
  while (svc->wh_eps) {
    wh_ep_t *ep = svc->wh_eps;
    svc->wh_eps = ep->next;
    ep_free(ep);
  }
}

/* ---- the API's calls ---- */

bool svc_webhook_pattern_ok(const char *p)
{
  return wh_pattern_ok(p);
}

void svc_wh_view_free(svc_wh_view_t *v)
{
  wh_rec_free(&v->rec);
  free_secret(v->new_secret);
  memset(v, 0, sizeof *v);
}

static void view_of(const wh_ep_t *ep, svc_wh_view_t *v)
{
  memset(v, 0, sizeof *v);
  wh_rec_copy(&v->rec, &ep->rec);
  free_secret(v->rec.secret);
  free_secret(v->rec.old_secret);
  v->rec.secret = v->rec.old_secret = NULL;
  v->has_old_secret = ep->okeylen > 0 && ep->rec.old_until > clock_now_ms();
  v->disabled = ep->state == WH_EP_DISABLED;
  v->cursor = ep->win.cursor;
  v->backlog = backlog(ep);
  v->delivered = ep->st.delivered;
  v->failed = ep->st.failed;
  v->inflight = ep->inflight;
  v->last_ok_ms = ep->st.last_ok_ms;
  v->last_err_ms = ep->st.last_err_ms;
  v->last_err_status = ep->st.last_err_status;
  snprintf(v->last_err_class, sizeof v->last_err_class, "%s", ep->st.last_err_class);
  v->oldest_ms = oldest_ms(ep);
}

int svc_webhook_get(svc_t *svc, const char *name, svc_wh_view_t *out)
{
  wh_ep_t *ep = ep_find(svc, name);
  if (ep == NULL)
    return GRANTD_ENOT_FOUND;
  view_of(ep, out);
  return 0;
}

void svc_webhook_each(svc_t *svc, void (*fn)(void *arg, const svc_wh_view_t *v), void *arg)
{
  for (wh_ep_t *ep = svc->wh_eps; ep; ep = ep->next) {
    svc_wh_view_t v;
    view_of(ep, &v);
    fn(arg, &v);
    svc_wh_view_free(&v);
  }
}

typedef struct {
  svc_t *svc;
  wh_rec_t rec;
  wh_prog_t prog; /* as written */
  bool create;
  bool generated;
  svc_wh_cb cb;
  void *arg;
} put_t;

static void put_done(void *arg, int status)
{
  put_t *p = arg;
  svc_t *svc = p->svc;
  if (p->create)
    svc->wh_creating--;
  if (status != 0) {
    p->cb(p->arg, status, NULL);
  } else {
    wh_ep_t *ep = ep_find(svc, p->rec.name);
    if (ep == NULL) {
      ep = ep_new(svc, &p->rec, &p->prog);
      ep_link(svc, ep);
    } else {
      wh_rec_free(&ep->rec);
      wh_rec_copy(&ep->rec, &p->rec);
      set_keys(ep);
      if (ep->state == WH_EP_DISABLED)
        ep->state = WH_EP_ACTIVE;
    }
    svc_wh_view_t v;
    view_of(ep, &v);
    if (p->generated)
      v.new_secret = xstrdup(p->rec.secret);
    v.created = p->create;
    log_info("webhook_put", "endpoint", p->rec.name, "?created", p->create ? "true" : "false");
    p->cb(p->arg, 0, &v);
    svc_wh_view_free(&v);
    ep_pump(ep);
  }
  wh_rec_free(&p->rec);
  wh_prog_free(&p->prog);
  free(p);
  svc__work_end(svc);
}

int svc_webhook_put(svc_t *svc, wh_rec_t *r, svc_wh_cb cb, void *arg)
{
  if (svc->draining || svc->closing) {
    wh_rec_free(r);
    return GRANTD_ESHUTDOWN;
  }
  uint8_t k[WHSIG_KEY_MAX];
  size_t kl;
  if (r->secret && whsig_secret_parse(r->secret, k, &kl) != 0) {
    wh_rec_free(r);
    return GRANTD_EINVALID;
  }
  mem_wipe(k, sizeof k);
  wh_ep_t *ep = ep_find(svc, r->name);
  if (ep == NULL && svc->wh_count + svc->wh_creating >= (size_t)svc->opts.webhook_max_endpoints) {
    wh_rec_free(r);
    return GRANTD_ELIMIT;
  }
  put_t *p = xcalloc(1, sizeof *p);
  p->svc = svc;
  p->cb = cb;
  p->arg = arg;
  p->rec = *r;
  memset(r, 0, sizeof *r);
  int64_t now = clock_now_ms();
  p->rec.updated_at = now;
  if (ep == NULL) {
    p->create = true;
    p->rec.created_at = now;
    if (p->rec.secret == NULL) {
      char s[WHSIG_SECRET_MAX];
      whsig_secret_new(s);
      p->rec.secret = xstrdup(s);
      mem_wipe(s, sizeof s);
      p->generated = true;
    }
    p->prog.cursor = last_seq(svc);
  } else {
    p->rec.created_at = ep->rec.created_at;
    if (p->rec.secret == NULL || strcmp(p->rec.secret, ep->rec.secret) == 0) {
      free_secret(p->rec.secret);
      p->rec.secret = xstrdup(ep->rec.secret);
      p->rec.old_secret = ep->rec.old_secret ? xstrdup(ep->rec.old_secret) : NULL;
      p->rec.old_until = ep->rec.old_until;
    } else {
      p->rec.old_secret = xstrdup(ep->rec.secret);
      p->rec.old_until = now + svc->opts.webhook_secret_overlap_ms;
    }
    prog_build(ep, &p->prog);
    p->prog.flags &= ~WH_PROG_DISABLED;
  }
  int rc = store_webhook_put(svc->store, &p->rec, &p->prog, put_done, p);
  if (rc != 0) {
    wh_rec_free(&p->rec);
    wh_prog_free(&p->prog);
    free(p);
    return rc;
  }
  if (p->create)
    svc->wh_creating++;
  svc__work_begin(svc);
  return 0;
}

typedef struct {
  svc_t *svc;
  svc_wh_cb cb;
  void *arg;
} del_t;

static void del_done(void *arg, int status)
{
  del_t *d = arg;
  svc_t *svc = d->svc;
  d->cb(d->arg, status, NULL);
  free(d);
  svc__work_end(svc);
}

int svc_webhook_delete(svc_t *svc, const char *name, svc_wh_cb cb, void *arg)
{
  wh_ep_t *ep = ep_find(svc, name);
  if (ep == NULL)
    return GRANTD_ENOT_FOUND;
  del_t *d = xcalloc(1, sizeof *d);
  d->svc = svc;
  d->cb = cb;
  d->arg = arg;
  int rc = store_webhook_delete(svc->store, name, del_done, d);
  if (rc != 0) {
    free(d);
    return rc;
  }
  svc__work_begin(svc);
  ep_unlink(svc, ep);
  ep->state = WH_EP_DELETED;
  ep_gauges(ep);
  log_info("webhook_deleted", "endpoint", name);
  /* Cancelling runs on_sent at once, which may free ep: hold it. */
  ep->inflight++;
  for (size_t i = 0; i < wh_win_count(&ep->win); i++) {
    wh_item_t *it = wh_win_at(&ep->win, i);
    if (it->state == WH_IT_SENDING && it->http)
      http_client_cancel(it->http);
  }
  ep->inflight--;
  ep_maybe_free(ep);
  return 0;
}

int svc_webhook_test(svc_t *svc, const char *name, svc_wh_test_cb cb, void *arg)
{
  if (svc->draining || svc->closing)
    return GRANTD_ESHUTDOWN;
  wh_ep_t *ep = ep_find(svc, name);
  if (ep == NULL)
    return GRANTD_ENOT_FOUND;
  wh_req_t *rq = xcalloc(1, sizeof *rq);
  uint8_t rb[8];
  rand_bytes(rb, sizeof rb);
  int o = snprintf(rq->id, sizeof rq->id, "evt_test_");
  for (size_t i = 0; i < sizeof rb; i++)
    o += snprintf(rq->id + o, sizeof rq->id - (size_t)o, "%02x", rb[i]);
  rq->tcb = cb;
  rq->targ = arg;
  char ts[32];
  clock_format_rfc3339_ms(clock_now_ms(), ts);
  buf_t b = BUF_INIT;
  buf_printf(
    &b,
    "{\"id\":\"%s\",\"type\":\"webhook.test\",\"timestamp\":\"%s\",\"data\":{\"endpoint\":", rq->id,
    ts);
  json_put_str(&b, name, SIZE_MAX);
  buf_puts(&b, "}}");
  int rc = send_one(ep, rq->id, b.data, b.len, rq, NULL);
  buf_free(&b);
  if (rc != 0) {
    free(rq);
    return rc;
  }
  svc__work_begin(svc);
  return 0;
}
