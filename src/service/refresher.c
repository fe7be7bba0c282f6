/*
 * refresher.c - when and how tokens are refreshed: the wheel timer (one
 * uv_timer for every scheduled connection), start-up ramp-in, token
 * requests through the limits, and the refresh op (record -> request ->
 * outcome -> next record -> commit).
 *
 * Wheel ticks. The timer is armed at wheel_next_wake(). A tick fires at
 * most opts.batch_per_tick entries and re-arms at 0 ms when more are due,
 * so a refresh storm is cut into slices between which the loop serves the
 * API. Each fired entry observes its lag (now - planned time) into
 * grantd_scheduler_lag_ms.
 *
 * Back-pressure. Fired refreshes become queued token requests; when
 * svc->queue_cap of them wait for a slot, the wheel stops firing (due
 * entries simply stay in the wheel, costing nothing) until the queue has
 * drained to half, so a storm never allocates per-connection state beyond
 * the index.
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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "base/rand.h"
#include "net/http_client.h"
#include "service/svc_int.h"
#include "store/store.h"

/* ---- the wheel timer ----------------------------------------------------- */

static void on_tick(uv_timer_t *t);

void svc__arm(svc_t *svc)
{
  if (svc->closing || svc->draining || svc->throttled)
    return;
  uint64_t wake = wheel_next_wake(&svc->wheel);
  if (wake == UINT64_MAX) {
    uv_timer_stop(&svc->timer);
    svc->armed_at = UINT64_MAX;
    return;
  }
  int64_t now = clock_now_ms();
  uint64_t delay = wake > (uint64_t)now ? wake - (uint64_t)now : 0;
  uv_timer_start(&svc->timer, on_tick, delay, 0);
  svc->armed_at = wake;
}

static void fire(void *arg, wheel_entry_t *w)
{
  svc_t *svc = arg;
  conn_entry_t *e = container_of(w, conn_entry_t, wheel);
  int64_t now = clock_now_ms();
  /* wheel_unlink keeps the deadline readable (see wheel.c). */
  int64_t planned = (int64_t)wheel_entry_at(w);
  metrics_histogram_observe("grantd_scheduler_lag_ms", NULL,
                            (double)(now > planned ? now - planned : 0));
  if (e->op)
    return; /* the running op reschedules when it ends */
  svc__refresh(svc, e, false, SVC_WAIT_TOKEN, NULL, NULL);
}

static void on_tick(uv_timer_t *t)
{
  svc_t *svc = t->data;
  svc->armed_at = UINT64_MAX;
  if (svc->closing || svc->draining)
    return;
  size_t max = (size_t)svc->opts.batch_per_tick;
  if (svc->queued >= svc->queue_cap) {
    svc->throttled = true;
    return;
  }
  if (svc->queue_cap - svc->queued < max)
    max = svc->queue_cap - svc->queued;
  wheel_run(&svc->wheel, (uint64_t)clock_now_ms(), max, fire, svc);
  if (svc->queued >= svc->queue_cap) {
    svc->throttled = true;
    return;
  }
  svc__arm(svc);
}

/* ---- token-request queue (binary heap per provider) --------------------- */

static bool earlier(const svc_treq_t *a, const svc_treq_t *b)
{
  return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(svc_heap_t *h, size_t i, svc_treq_t *t)
{
  h->items[i] = t;
  t->hidx = i;
}

static void heap_up(svc_heap_t *h, size_t i)
{
  svc_treq_t *t = h->items[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!earlier(t, h->items[p]))
      break;
    heap_set(h, i, h->items[p]);
    i = p;
  }
  heap_set(h, i, t);
}

static void heap_down(svc_heap_t *h, size_t i)
{
  svc_treq_t *t = h->items[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n)
      break;
    if (c + 1 < h->n && earlier(h->items[c + 1], h->items[c]))
      c++;
    if (!earlier(h->items[c], t))
      break;
    heap_set(h, i, h->items[c]);
    i = c;
  }
  heap_set(h, i, t);
}

static void heap_push(svc_heap_t *h, svc_treq_t *t)
{
  if (h->n == h->cap) {
    h->cap = h->cap ? h->cap * 2 : 16;
    h->items = xrealloc(h->items, h->cap * sizeof *h->items);
  }
  h->items[h->n] = t;
  t->hidx = h->n++;
  heap_up(h, t->hidx);
}

static void heap_remove(svc_heap_t *h, size_t i)
{
  h->n--;
  if (i == h->n)
    return;
  heap_set(h, i, h->items[h->n]);
  heap_down(h, i);
  heap_up(h, h->items[i]->hidx);
}

/* ---- sending ------------------------------------------------------------- */

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
    };
    if (t->revocation)
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
    .timeout_ms = (uint64_t)(pv->p.timeout_ms > 0 ? pv->p.timeout_ms
                                                 : svc->opts.request_timeout_ms),
    .tls = pv->tls,
  };
  t->t0_us = clock_mono_us();
  return http_client_request(svc->http, &hr, on_http_done, t,
                             (http_client_handle_t **)&t->http);
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
  heap_push(&t->prov->queue, t);
  svc->queued++;
  dispatch(svc); /* may complete and free t */
  gauges(svc, NULL);
}

int svc__treq_cancel(svc_treq_t *t)
{
  if (t->state != TREQ_QUEUED)
    return 0;
  heap_remove(&t->prov->queue, t->hidx);
  t->svc->queued--;
  t->state = TREQ_IDLE;
  gauges(t->svc, NULL);
  return 1;
}

void svc__treq_shutdown_all(svc_t *svc)
{
  for (size_t i = 0; i < svc->nprovs; i++) {
    svc_heap_t *h = &svc->provs[i]->queue;
    while (h->n > 0) {
      svc_treq_t *t = h->items[0];
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
  while (!svc->closing && !svc->draining && svc->queued > 0 && svc->sending < (size_t)svc->opts.max_inflight) {
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
      if (best == NULL || earlier(pv->queue.items[0], best->queue.items[0]))
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
    svc_treq_t *t = best->queue.items[0];
    heap_remove(&best->queue, 0);
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
    svc__arm(svc);
  }
}

/* ---- the refresh op -------------------------------------------------------- */

int (*svc__conn_get)(store_t *s, const char *id, conn_t *out) = store_conn_get;

void svc__count_outcome(svc_t *svc, token_outcome_t o, bool unknown)
{
  const char *labels;
  if (unknown) {
    svc->st.refresh_unknown++;
    labels = "outcome=\"unknown\"";
  } else {
    switch (o) {
    case TOKEN_OK:
      svc->st.refresh_ok++;
      labels = "outcome=\"ok\"";
      break;
    case TOKEN_REAUTH:
      svc->st.refresh_reauth++;
      labels = "outcome=\"reauth\"";
      break;
    case TOKEN_CONFIG:
      svc->st.refresh_config++;
      labels = "outcome=\"config\"";
      break;
    default:
      svc->st.refresh_transient++;
      labels = "outcome=\"transient\"";
      break;
    }
  }
  metrics_counter_inc("grantd_refreshes_total", labels);
}

static void set_last_error(conn_t *c, const char *code, const char *msg, int http, int64_t now)
{
  free(c->last_error_code);
  free(c->last_error_message);
  c->last_error_code = xstrdup(code);
  c->last_error_message = xstrdup(msg);
  c->last_error_http = http;
  c->last_error_at = now;
}

void svc__next_record(svc_t *svc, const conn_t *old, const svc_prov_t *prov,
                      token_result_t *tok, int neterr, bool unknown, int64_t now,
                      conn_t *out)
{
  const provider_t *p = prov && prov->present ? &prov->p : NULL;
  token_outcome_t o = tok->outcome;

  if (o == TOKEN_TRANSIENT && !unknown && neterr == 0 && !tok->error_from_provider &&
      (tok->http_status == 400 || tok->http_status == 403) &&
      old->failures + 1 >= SVC_MAX_AMBIGUOUS_4XX)
    o = TOKEN_REAUTH; /* token.h: the caller caps these retries */

  /* Issue 3: TLS to a known-good host is transient (its certificate
   * expired or was swapped; keep serving the token, retry). */
  if (o == TOKEN_CONFIG && prov != NULL && prov->host_validated &&
      (neterr == GRANTD_ETLS_UNTRUSTED || neterr == GRANTD_ETLS_HOSTNAME ||
       neterr == GRANTD_ETLS_EXPIRED))
    o = TOKEN_TRANSIENT;

  /* Copy old except the fields replaced below (a refresh runs this per
   * token, and the deep copy's malloc/free showed in the profile): a
   * shallow view with those fields unset, then one deep copy of the rest.
   * old itself stays intact (the commit still compares against it). */
  conn_t base = *old;
  base.last_error_code = base.last_error_message = NULL; /* cleared or replaced */
  if (o == TOKEN_OK) {
    base.access_token = NULL;
    base.token_type = NULL;
    if (tok->refresh_token)
      base.refresh_token = NULL;
    if (tok->has_scope)
      memset(&base.scopes, 0, sizeof base.scopes);
    if (tok->extra_json)
      base.extra_json = NULL;
  }
  conn_copy(out, &base);
  out->revision = old->revision + 1;
  out->updated_at = now;

  if (o == TOKEN_OK) {
    free_secret(out->access_token);
    out->access_token = tok->access_token;
    tok->access_token = NULL;
    if (tok->refresh_token) {
      /* Rotated: the new one replaces the old, and its expiry with it. */
      free_secret(out->refresh_token);
      out->refresh_token = tok->refresh_token;
      tok->refresh_token = NULL;
      out->refresh_token_expires_at = tok->refresh_token_expires_at;
    } else if (tok->refresh_token_expires_at) {
      out->refresh_token_expires_at = tok->refresh_token_expires_at;
    }
    free(out->token_type);
    out->token_type = tok->token_type;
    tok->token_type = NULL;
    out->expires_at = tok->expires_at;
    if (tok->has_scope) {
      strlist_free(&out->scopes);
      out->scopes = tok->scopes;
      memset(&tok->scopes, 0, sizeof tok->scopes);
    }
    if (tok->extra_json) {
      free(out->extra_json);
      out->extra_json = tok->extra_json;
      tok->extra_json = NULL;
    }
    out->refreshed_at = now;
    out->failures = 0;
    out->status = CONN_ACTIVE;
    free(out->last_error_code);
    free(out->last_error_message);
    out->last_error_code = out->last_error_message = NULL;
    out->last_error_http = 0;
    out->last_error_at = 0;
    bool has_rt = out->refresh_token && out->refresh_token[0];
    out->next_refresh_at = policy_next_refresh(now, now, out->expires_at, has_rt, p,
                                               rand_fast_u64(&svc->rnd));
    return;
  }

  out->failures = old->failures + 1;
  const char *code = tok->error ? tok->error : "refresh_failed";
  const char *msg = tok->error_description ? tok->error_description : code;
  if (unknown) {
    char m[256];
    snprintf(m, sizeof m, "the token request may have reached the provider, outcome unknown (%s)",
             err_str(neterr));
    set_last_error(out, "refresh_outcome_unknown", m, 0, now);
  } else {
    set_last_error(out, code, msg, tok->http_status, now);
  }
  switch (o) {
  case TOKEN_REAUTH:
    out->status = CONN_NEEDS_REAUTH;
    out->next_refresh_at = 0;
    break;
  case TOKEN_CONFIG:
    out->status = CONN_ERROR;
    out->next_refresh_at = 0;
    break;
  default:
    out->status = CONN_REFRESH_FAILING;
    out->next_refresh_at = policy_backoff(out->failures, tok->retry_after_ms, out->expires_at,
                                          now, rand_fast_u64(&svc->rnd));
    break;
  }
}

/* The first definite outcome of a connection that was due when the
 * service opened (CONN_ENTRY_RESTART_OVERDUE). Without a reuse grace
 * window at the provider, a refresh in flight when the previous process
 * died may have rotated the refresh token there while the new one was
 * never stored; the stored one is then a replay, and the provider answers
 * invalid_grant (often revoking the grant). That must not read like a user
 * revoking access: it gets its own code, keeps the provider's words and
 * HTTP status, and is logged and counted. Status stays needs_reauth (the
 * grant is gone either way). */
static void restart_outcome(svc_op_t *op, const token_result_t *tok, bool unknown)
{
  conn_entry_t *e = op->entry;
  if (!(e->flags & CONN_ENTRY_RESTART_OVERDUE))
    return;
  if (op->next.status == CONN_REFRESH_FAILING)
    return; /* transient: the token's fate is still unknown, keep the mark */
  e->flags &= (uint8_t)~CONN_ENTRY_RESTART_OVERDUE;
  if (unknown || op->have_rec || op->next.status != CONN_NEEDS_REAUTH ||
      tok->outcome != TOKEN_REAUTH || !tok->error_from_provider || tok->error == NULL ||
      strcmp(tok->error, "invalid_grant") != 0)
    return;
  char m[512];
  snprintf(m, sizeof m,
           "the provider rejected the refresh token after a restart; a refresh in flight when "
           "grantd stopped may have rotated it (reconnect the account). Provider: %s%s%s",
           tok->error, tok->error_description ? ": " : "",
           tok->error_description ? tok->error_description : "");
  set_last_error(&op->next, "refresh_token_lost_in_restart", m, tok->http_status,
                 op->next.last_error_at);
  log_warn("rotation_lost_on_restart", "id", e->id, "provider", e->prov->p.name, "#http",
           LOG_I64(tok->http_status));
  metrics_counter_inc("grantd_rotation_lost_on_restart_total", NULL);
}

/* Builds the next record from a result and commits it. */
static void refresh_finish(svc_t *svc, svc_op_t *op, token_result_t *tok, int neterr,
                           bool unknown)
{
  int64_t now = clock_now_ms();
  op->outcome = unknown ? TOKEN_TRANSIENT : tok->outcome;
  svc__next_record(svc, &op->rec, op->entry->prov, tok, neterr, unknown, now, &op->next);
  if (op->have_rec)
    op->next.revision = op->rec.revision; /* a put's record: not yet stored */
  restart_outcome(op, tok, unknown);
  if (op->next.status == CONN_NEEDS_REAUTH)
    op->outcome = TOKEN_REAUTH;
  else if (op->next.status == CONN_REFRESH_FAILING)
    op->outcome = TOKEN_TRANSIENT;
  svc__op_commit(svc, op);
}

static void synthetic(svc_t *svc, svc_op_t *op, token_outcome_t o, const char *code,
                      const char *msg)
{
  token_result_t tok;
  memset(&tok, 0, sizeof tok);
  tok.outcome = o;
  tok.error = xstrdup(code);
  tok.error_description = xstrdup(msg);
  svc__count_outcome(svc, o, false);
  refresh_finish(svc, op, &tok, 0, false);
  token_result_free(&tok);
}

/* Ends a refresh op without any commit, answering its waiters. */
static void refresh_abandon(svc_t *svc, svc_op_t *op, int err, const conn_t *rec, int64_t now)
{
  conn_entry_t *e = op->entry;
  if (e)
    e->op = NULL;
  svc_waiter_t *w = op->waiters;
  op->waiters = NULL;
  while (w) {
    svc_waiter_t *next = w->next;
    int code = err;
    if (rec && w->kind == SVC_WAIT_TOKEN) {
      /* A still-valid stored token is served even when the refresh could
       * not run (shutdown). */
      int v = svc__token_verdict(rec, now);
      if (code == 0 || v == 0)
        code = v;
    } else if (code == 0 && rec) {
      code = w->kind == SVC_WAIT_FORCED ? GRANTD_EREAUTH : 0;
    }
    svc__answer(svc, w->cb, w->arg, code, rec);
    free(w);
    w = next;
  }
  svc__op_free(svc, op);
}

static int refresh_start(svc_treq_t *t, oauth_request_t *req)
{
  svc_op_t *op = container_of(t, svc_op_t, treq);
  svc_t *svc = op->svc;
  conn_entry_t *e = op->entry;
  if (e == NULL) {
    svc__op_free(svc, op); /* detached while queued: nothing to do */
    return 1;
  }
  if (!op->have_rec) {
    int rc = svc__conn_get(svc->store, e->id, &op->rec);
    if (rc != 0) {
      log_error("refresh_read_failed", "id", e->id, "error", err_name(rc));
      refresh_abandon(svc, op, rc, NULL, 0);
      if (rc == GRANTD_ENOT_FOUND) {
        svc__entry_resync(svc, e->id); /* gone underneath: drop the entry */
      } else if (rc != GRANTD_ESTORE_DECODE && rc != GRANTD_ESTORE_AUTH &&
                 rc != GRANTD_ESTORE_VERSION && rc != GRANTD_ESTORE_KEY) {
        /* A passing failure (I/O, a full reader table ...): the entry was
         * unlinked when the op attached; keep it scheduled, or it would
         * never be refreshed again. Unreadable records stay unscheduled on
         * purpose (svc__entry_resync). */
        int64_t now = clock_now_ms();
        svc__schedule(svc, e, policy_backoff(e->failures + 1, 0, e->expires_at, now,
                                             rand_fast_u64(&svc->rnd)));
      }
      return 1;
    }
  }
  op->phase = SVC_PHASE_REQUEST;
  int64_t now = clock_now_ms();
  const conn_t *c = &op->rec;
  svc_prov_t *pv = e->prov;
  if (!pv->present) {
    synthetic(svc, op, TOKEN_CONFIG, "provider_unknown",
              "the connection's provider does not exist");
    return 1;
  }
  int rc;
  bool has_rt = c->refresh_token && c->refresh_token[0];
  if (has_rt) {
    rc = grant_refresh_request(&pv->p, c, req);
  } else if (c->grant == GRANT_CLIENT_CREDENTIALS) {
    rc = grant_client_credentials_request(&pv->p, c, req);
  } else if (c->grant == GRANT_PASSWORD) {
    rc = grant_password_request(&pv->p, c, req);
  } else if (c->access_token && (c->expires_at == 0 || c->expires_at > now)) {
    /* Nothing to refresh with, but the token still works: serve it until
     * it expires, then give up as needs_reauth. */
    int64_t at = c->expires_at;
    conn_t rec = *c;
    memset(&op->rec, 0, sizeof op->rec);
    refresh_abandon(svc, op, 0, &rec, now);
    conn_free(&rec);
    svc__schedule(svc, e, at);
    return 1;
  } else {
    synthetic(svc, op, TOKEN_REAUTH, "no_refresh_token",
              "the access token expired and there is no refresh token");
    return 1;
  }
  if (rc != 0) {
    char m[160];
    snprintf(m, sizeof m, "the token request cannot be built: %s", err_str(rc));
    synthetic(svc, op, TOKEN_CONFIG, err_name(rc), m);
    return 1;
  }
  return 0;
}

static void refresh_done(svc_treq_t *t, svc_tresult_t *r)
{
  svc_op_t *op = container_of(t, svc_op_t, treq);
  svc_t *svc = op->svc;
  if (r->neterr == GRANTD_ESHUTDOWN) {
    /* Never sent: nothing changed at the provider. Token readers get the
     * stored token if it is still valid (op->rec once loaded at dispatch,
     * else read now). */
    conn_t cur;
    memset(&cur, 0, sizeof cur);
    bool have = false;
    if (op->phase == SVC_PHASE_REQUEST && !op->have_rec) {
      cur = op->rec;
      memset(&op->rec, 0, sizeof op->rec);
      have = true;
    } else if (op->entry && !op->have_rec && op->waiters) {
      have = store_conn_get(svc->store, op->entry->id, &cur) == 0;
    }
    refresh_abandon(svc, op, GRANTD_ESHUTDOWN, have ? &cur : NULL, clock_now_ms());
    conn_free(&cur);
    return;
  }
  svc__count_outcome(svc, r->tok.outcome, r->unknown && r->tok.outcome == TOKEN_TRANSIENT);
  metrics_histogram_observe("grantd_refresh_latency_ms", NULL, (double)r->latency_ms);
  if (op->entry == NULL) {
    /* Deleted or replaced meanwhile: the result must not be stored. */
    log_warn("refresh_dropped", "id", op->rec.id, "outcome",
             token_outcome_name(r->tok.outcome));
    svc__op_free(svc, op);
    return;
  }
  log_debug("refresh_done", "id", op->entry->id, "outcome", token_outcome_name(r->tok.outcome),
            "#http", LOG_I64(r->tok.http_status), "#ms", LOG_I64(r->latency_ms));
  refresh_finish(svc, op, &r->tok, r->neterr,
                 r->unknown && r->tok.outcome == TOKEN_TRANSIENT);
}

static void refresh_submit(svc_t *svc, svc_op_t *op, int64_t deadline)
{
  op->phase = SVC_PHASE_QUEUED;
  op->treq.prov = op->entry->prov;
  op->treq.deadline = deadline;
  op->treq.start = refresh_start;
  op->treq.done = refresh_done;
  svc__treq_submit(svc, &op->treq);
}

void svc__refresh(svc_t *svc, conn_entry_t *e, bool forced, svc_wait_kind_t kind,
                  svc_conn_cb cb, void *arg)
{
  if (e->op) {
    svc__op_wait(e->op, kind, cb, arg);
    return;
  }
  svc_op_t *op = svc__op_new(svc, SVC_OP_REFRESH);
  op->forced = forced;
  svc__op_attach(svc, e, op);
  svc__op_wait(op, kind, cb, arg);
  int64_t now = clock_now_ms();
  int64_t deadline = now;
  if (cb == NULL && e->expires_at != 0)
    deadline = e->expires_at;
  refresh_submit(svc, op, deadline);
}

void svc__expire_no_rt(svc_t *svc, conn_entry_t *e, conn_t *rec, svc_conn_cb cb, void *arg)
{
  svc_op_t *op = svc__op_new(svc, SVC_OP_REFRESH);
  op->rec = *rec;
  memset(rec, 0, sizeof *rec);
  svc__op_attach(svc, e, op);
  svc__op_wait(op, SVC_WAIT_TOKEN, cb, arg);
  op->phase = SVC_PHASE_REQUEST; /* as refresh_start would, minus the slot */
  synthetic(svc, op, TOKEN_REAUTH, "no_refresh_token",
            "the access token expired and there is no refresh token");
}

/* Runs the grant of a client_credentials / password put: `rec` (moved) is
 * the record as put; it is refreshed and committed by the op. */
void svc__refresh_with(svc_t *svc, conn_entry_t *e, conn_t *rec, svc_conn_cb cb, void *arg)
{
  svc_op_t *op = svc__op_new(svc, SVC_OP_REFRESH);
  op->forced = true;
  op->have_rec = true;
  op->rec = *rec;
  memset(rec, 0, sizeof *rec);
  svc__op_attach(svc, e, op);
  svc__op_wait(op, SVC_WAIT_RECORD, cb, arg);
  refresh_submit(svc, op, clock_now_ms());
}

/* ---- start-up ramp-in --------------------------------------------------------- */

static int cmp_due(const void *a, const void *b)
{
  const conn_entry_t *x = *(conn_entry_t *const *)a, *y = *(conn_entry_t *const *)b;
  return (x->next_refresh_at > y->next_refresh_at) - (x->next_refresh_at < y->next_refresh_at);
}

void svc__ramp(svc_t *svc, conn_entry_t **overdue, size_t n, int64_t now)
{
  /* Most overdue first; spread over n / ramp_per_s seconds so the start
   * does not open thousands of connections and requests at once. */
  if (n == 0)
    return;
  qsort(overdue, n, sizeof *overdue, cmp_due);
  int64_t rate = svc->opts.ramp_per_s;
  for (size_t i = 0; i < n; i++) {
    int64_t at = now + (int64_t)((uint64_t)i * 1000 / (uint64_t)rate);
    conn_entry_t *e = overdue[i];
    int64_t planned = e->next_refresh_at;
    wheel_link(&svc->wheel, &e->wheel, (uint64_t)at);
    e->next_refresh_at = planned;
  }
  log_info("ramp_in", "#overdue", LOG_I64(n), "#seconds", LOG_I64((int64_t)n / rate));
}
