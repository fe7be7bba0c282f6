/*
 * svc.c - the service's front: open (provider cache, one scheduling scan,
 * ramp-in), close, stats and metrics, provider CRUD. Connection CRUD, token
 * reads and forced refreshes are in conn_api.c; the machinery behind them
 * lives in conn.c (index, ops, commits, answers) and refresher.c (wheel,
 * limits, refresh).
 *
 * Callbacks never run inside the call that took them (svc.h): answers go
 * through conn.c's deferred queue or run from store callbacks.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "base/rand.h"
#include "base/url.h"
#include "service/svc_int.h"
#include "store/store.h"

/* ---- hosts and the provider cache ----------------------------------------- */

static svc_host_t *host_for(svc_t *svc, const char *url)
{
  url_t u;
  if (url == NULL || url_parse(url, &u) != 0)
    return NULL;
  buf_t origin = BUF_INIT;
  buf_printf(&origin, "%s://%s%s%s:%u", u.scheme, u.is_ipv6 ? "[" : "", u.host,
             u.is_ipv6 ? "]" : "", (unsigned)u.port);
  url_free(&u);
  for (svc_host_t *h = svc->hosts; h; h = h->next) {
    if (strcmp(h->origin, origin.data) == 0) {
      buf_free(&origin);
      return h;
    }
  }
  svc_host_t *h = xcalloc(1, sizeof *h);
  h->origin = buf_steal(&origin);
  buf_t l = BUF_INIT;
  buf_puts(&l, "host=\"");
  metrics_label_escape(&l, h->origin);
  buf_putc(&l, '"');
  h->labels = buf_steal(&l);
  h->next = svc->hosts;
  svc->hosts = h;
  metrics_gauge_set("grantd_refresh_inflight", h->labels, 0);
  return h;
}

static int name_cmp(const char *a, size_t alen, const char *b)
{
  size_t blen = strlen(b);
  int c = memcmp(a, b, alen < blen ? alen : blen);
  return c ? c : (alen > blen) - (alen < blen);
}

/* Index of name in the sorted array, or of where it would go (*found 0). */
static size_t prov_pos(svc_t *svc, const char *name, size_t len, int *found)
{
  size_t lo = 0, hi = svc->nprovs;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = name_cmp(name, len, svc->provs[mid]->p.name);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  *found = 0;
  return lo;
}

svc_prov_t *svc__prov_find(svc_t *svc, const char *name)
{
  int found;
  if (name == NULL)
    return NULL;
  size_t i = prov_pos(svc, name, strlen(name), &found);
  return found ? svc->provs[i] : NULL;
}

svc_prov_t *svc__prov_get_n(svc_t *svc, const char *name, size_t len)
{
  int found;
  size_t i = prov_pos(svc, name, len, &found);
  if (found)
    return svc->provs[i];
  svc_prov_t *pv = xcalloc(1, sizeof *pv);
  pv->p.name = xstrndup(name, len);
  if (svc->nprovs == svc->provs_cap) {
    svc->provs_cap = svc->provs_cap ? svc->provs_cap * 2 : 16;
    svc->provs = xrealloc(svc->provs, svc->provs_cap * sizeof *svc->provs);
  }
  memmove(&svc->provs[i + 1], &svc->provs[i], (svc->nprovs - i) * sizeof *svc->provs);
  svc->provs[i] = pv;
  svc->nprovs++;
  return pv;
}

/* Trust for a provider's own CA file: svc->opts.tls plus p->ca_file
 * (blocking file read: provider puts and start-up only). */
static int prov_tls(svc_t *svc, const provider_t *p, tls_client_ctx_t **out)
{
  *out = NULL;
  if (p->ca_file == NULL || p->ca_file[0] == '\0')
    return 0;
  if (svc->opts.tls == NULL) {
    log_warn("provider_ca_file_ignored", "provider", p->name, "reason", "no base TLS context");
    return 0;
  }
  int rc = tls_client_ctx_derive(out, svc->opts.tls, p->ca_file);
  if (rc != 0)
    log_error("provider_ca_file_unusable", "provider", p->name, "ca_file", p->ca_file, "error",
              err_name(rc));
  return rc;
}

/* Installs p (moved) as the cached provider of its holder, with its TLS
 * context (moved, may be NULL). */
static svc_prov_t *prov_install(svc_t *svc, provider_t *p, tls_client_ctx_t *tls)
{
  svc_prov_t *pv = svc__prov_get(svc, p->name);
  if (pv->tls) {
    svc->old_tls = xrealloc(svc->old_tls, (svc->n_old_tls + 1) * sizeof *svc->old_tls);
    svc->old_tls[svc->n_old_tls++] = pv->tls;
  }
  pv->tls = tls;
  provider_free(&pv->p);
  pv->p = *p;
  memset(p, 0, sizeof *p);
  pv->present = true;
  pv->host = host_for(svc, pv->p.token_url);
  /* Reconfigured, not re-initialised: the admissions of the last window
   * still count, so updating a provider (a new secret ...) grants no new
   * burst. rl_until is recomputed by the next take. */
  if (ratelimit_reconfig(&pv->rl, pv->p.rate_limit_count, pv->p.rate_limit_window * 1000) != 0)
    log_warn("provider_rate_limit_ignored", "provider", pv->p.name);
  pv->rl_until = 0;
  pv->host_validated = false;
  return pv;
}

/* ---- metrics ---------------------------------------------------------------- */

static double gauge_u64(void *arg)
{
  return (double)*(const uint64_t *)arg;
}

static double gauge_scheduled(void *arg)
{
  return (double)wheel_count(&((svc_t *)arg)->wheel);
}

static void metrics_setup(svc_t *svc)
{
  static const double lat[] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};
  static const double lag[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000};
  metrics_help("grantd_refreshes_total", "token refreshes by outcome", METRIC_COUNTER);
  metrics_help("grantd_rotated_token_unsaved_total",
               "rotated refresh tokens given up after failed commits", METRIC_COUNTER);
  metrics_help("grantd_rotation_lost_on_restart_total",
               "refresh tokens rejected (invalid_grant) at the first refresh after start-up "
               "of a connection that was due at start-up (refresh_token_lost_in_restart)",
               METRIC_COUNTER);
  metrics_histogram_define("grantd_refresh_latency_ms", "token request round trip (ms)", lat,
                           ARRAY_SIZE(lat));
  metrics_histogram_define("grantd_scheduler_lag_ms",
                           "actual minus planned refresh start (ms)", lag, ARRAY_SIZE(lag));
  metrics_help("grantd_refresh_inflight", "token requests in flight per host", METRIC_GAUGE);
  metrics_help("grantd_refresh_queued", "token requests waiting for a slot", METRIC_GAUGE);
  metrics_help("grantd_scheduled", "connections with a scheduled refresh", METRIC_GAUGE);
  metrics_help("grantd_connections", "connections by status", METRIC_GAUGE);
  metrics_help("grantd_status_changes_total", "connection status changes", METRIC_COUNTER);
  metrics_gauge_set("grantd_refresh_queued", NULL, 0);
  metrics_gauge_fn("grantd_scheduled", NULL, gauge_scheduled, svc);
  for (int s = 0; s < CONN_STATUS_COUNT; s++) {
    char labels[64];
    snprintf(labels, sizeof labels, "status=\"%s\"", conn_status_name((conn_status_t)s));
    metrics_gauge_fn("grantd_connections", labels, gauge_u64, &svc->by_status[s]);
  }
}

/* The gauges must not keep pointing into a freed service. */
static void metrics_freeze(svc_t *svc)
{
  metrics_gauge_set("grantd_scheduled", NULL, (double)wheel_count(&svc->wheel));
  for (int s = 0; s < CONN_STATUS_COUNT; s++) {
    char labels[64];
    snprintf(labels, sizeof labels, "status=\"%s\"", conn_status_name((conn_status_t)s));
    metrics_gauge_set("grantd_connections", labels, (double)svc->by_status[s]);
  }
}

/* ---- open ----------------------------------------------------------------------- */

typedef struct {
  svc_t *svc;
  int64_t now;
  conn_entry_t **overdue;
  size_t n_overdue, cap_overdue;
} load_t;

static int load_provider(void *arg, const provider_t *p)
{
  load_t *l = arg;
  provider_t copy;
  tls_client_ctx_t *tls;
  provider_copy(&copy, p);
  prov_tls(l->svc, &copy, &tls);
  prov_install(l->svc, &copy, tls);
  return 0;
}

static void load_bad(void *arg, const char *db, const char *key, size_t keylen, int err)
{
  load_t *l = arg;
  svc_t *svc = l->svc;
  char *k = xstrndup(key, keylen);
  log_error("record_undecodable", "db", db, "key", k, "error", err_name(err));
  svc->st.decode_errors++;
  if (strcmp(db, RECORD_DB_CONNECTIONS) == 0 && svc__entry_find(svc, k) == NULL) {
    /* Keep it visible: reads report the decode error, a put replaces it,
     * a delete removes it. Never scheduled. */
    svc__entry_add_raw(svc, key, keylen, "", 0, CONN_ERROR, GRANT_REFRESH_TOKEN, 0, 0);
  }
  free(k);
}

static int load_conn(void *arg, const conn_sched_t *c)
{
  load_t *l = arg;
  svc_t *svc = l->svc;
  conn_entry_t *e = svc__entry_add_raw(svc, c->id.p, c->id.n, c->provider.p, c->provider.n,
                                       c->status, c->grant, c->expires_at, c->failures);
  e->next_refresh_at = c->next_refresh_at;
  if (c->next_refresh_at <= 0 || (c->status != CONN_ACTIVE && c->status != CONN_REFRESH_FAILING))
    return 0;
  if (c->next_refresh_at > l->now) {
    wheel_link(&svc->wheel, &e->wheel, (uint64_t)c->next_refresh_at);
    return 0;
  }
  if (l->n_overdue == l->cap_overdue) {
    l->cap_overdue = l->cap_overdue ? l->cap_overdue * 2 : 1024;
    l->overdue = xrealloc(l->overdue, l->cap_overdue * sizeof *l->overdue);
  }
  /* Due at start: a refresh of it may have been in flight at a crash. */
  e->flags |= CONN_ENTRY_RESTART_OVERDUE;
  l->overdue[l->n_overdue++] = e;
  return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
  svc_t *svc = h->data;
  if (--svc->handles_open == 0) {
    metrics_freeze(svc);
    if (svc->close_cb)
      svc->close_cb(svc->close_arg);
  }
}

int svc_open(svc_t **out, const svc_opts_t *opts)
{
  if (out == NULL || opts == NULL || opts->loop == NULL || opts->store == NULL)
    return GRANTD_EINVALID;
  svc_t *svc = xcalloc(1, sizeof *svc);
  svc->opts = *opts;
  svc_opts_t *o = &svc->opts;
  if (o->state_ttl_ms <= 0)
    o->state_ttl_ms = SVC_DEFAULT_STATE_TTL_MS;
  if (o->request_timeout_ms <= 0)
    o->request_timeout_ms = SVC_DEFAULT_TIMEOUT_MS;
  if (o->max_inflight <= 0)
    o->max_inflight = SVC_DEFAULT_MAX_INFLIGHT;
  if (o->max_inflight_per_host <= 0)
    o->max_inflight_per_host = SVC_DEFAULT_MAX_INFLIGHT_PER_HOST;
  if (o->ramp_per_s <= 0)
    o->ramp_per_s = SVC_DEFAULT_RAMP_PER_S;
  if (o->batch_per_tick <= 0)
    o->batch_per_tick = SVC_DEFAULT_BATCH_PER_TICK;
  svc->loop = o->loop;
  svc->store = o->store;
  svc->http = o->http;
  svc->hseed = rand_u64();
  svc->rnd = rand_u64();
  svc->armed_at = UINT64_MAX;
  svc->queue_cap = (size_t)o->max_inflight * 4;
  if (svc->queue_cap < SVC_QUEUE_CAP_MIN)
    svc->queue_cap = SVC_QUEUE_CAP_MIN;
  svc->ans_tail = &svc->ans_head;
  int64_t now = clock_now_ms();
  wheel_init(&svc->wheel, (uint64_t)now);

  load_t l = {.svc = svc, .now = now};
  int64_t t0 = clock_mono_us();
  int rc = store_provider_scan(svc->store, load_provider, load_bad, &l);
  if (rc == 0)
    rc = store_conn_scan_sched(svc->store, load_conn, load_bad, &l);
  if (rc != 0) {
    free(l.overdue);
    svc_free(svc);
    return rc;
  }
  svc__ramp(svc, l.overdue, l.n_overdue, now);
  free(l.overdue);

  uv_timer_init(svc->loop, &svc->timer);
  uv_timer_init(svc->loop, &svc->rl_timer);
  uv_idle_init(svc->loop, &svc->idle);
  svc->timer.data = svc->rl_timer.data = svc->idle.data = svc;
  svc->handles_open = 3;
  metrics_setup(svc);
  svc__arm(svc);
  log_info("service_open", "#connections", LOG_I64(svc->count), "#providers",
           LOG_I64(svc->nprovs), "#scheduled", LOG_I64(wheel_count(&svc->wheel)), "#overdue",
           LOG_I64(l.n_overdue), "#decode_errors", LOG_I64(svc->st.decode_errors), "#ms",
           LOG_I64((clock_mono_us() - t0) / 1000));
  *out = svc;
  return 0;
}

/* ---- close ---------------------------------------------------------------------- */

void svc__work_begin(svc_t *svc)
{
  svc->work++;
}

void svc__work_end(svc_t *svc)
{
  svc->work--;
  svc__maybe_closed(svc);
}

void svc__maybe_closed(svc_t *svc)
{
  if (!svc->closing || svc->handles_open <= 0 || svc->close_cb == NULL)
    return;
  if (svc->ops || svc->sending || svc->work || svc->queued || svc->ans_head)
    return;
  if (uv_is_closing((uv_handle_t *)&svc->idle))
    return;
  uv_close((uv_handle_t *)&svc->timer, on_handle_closed);
  uv_close((uv_handle_t *)&svc->rl_timer, on_handle_closed);
  uv_close((uv_handle_t *)&svc->idle, on_handle_closed);
}

static void close_noop(void *arg)
{
  (void)arg;
}

/* Stops the schedule and every token request; see svc_drain. */
static void drain_now(svc_t *svc)
{
  svc->draining = true;
  uv_timer_stop(&svc->timer);
  svc->armed_at = UINT64_MAX;
  uv_timer_stop(&svc->rl_timer);
  svc->rl_armed = 0;
  /* Queued requests never start: their ops end with GRANTD_ESHUTDOWN. */
  svc__treq_shutdown_all(svc);
  /* In flight: cancelled rather than waited for (a hung provider would
   * hold shutdown for the whole request timeout). One that may have been
   * written is committed as "refresh_outcome_unknown". */
  svc__treq_cancel_sending(svc);
}

void svc_drain(svc_t *svc)
{
  if (svc->draining || svc->closing)
    return;
  log_info("service_draining", "#inflight", LOG_I64(svc->sending), "#queued",
           LOG_I64(svc->queued));
  drain_now(svc);
}

void svc_close(svc_t *svc, void (*cb)(void *arg), void *arg)
{
  svc->closing = true;
  svc->close_cb = cb ? cb : close_noop;
  svc->close_arg = arg;
  drain_now(svc);
  /* A rotated refresh token whose commit failed gets its last try now. */
  svc__commit_retry_now_all(svc);
  log_info("service_closing", "#inflight", LOG_I64(svc->sending), "#ops", LOG_I64(svc->ops));
  svc__maybe_closed(svc);
}

void svc_free(svc_t *svc)
{
  if (svc == NULL)
    return;
  for (size_t i = 0; i < svc->nbuckets; i++) {
    conn_entry_t *e = svc->buckets[i];
    while (e) {
      conn_entry_t *next = e->hnext;
      free(e);
      e = next;
    }
  }
  free(svc->buckets);
  for (size_t i = 0; i < svc->n_old_tls; i++)
    tls_client_ctx_free(svc->old_tls[i]);
  free(svc->old_tls);
  for (size_t i = 0; i < svc->nprovs; i++) {
    tls_client_ctx_free(svc->provs[i]->tls);
    provider_free(&svc->provs[i]->p);
    free(svc->provs[i]->queue.items);
    ratelimit_free(&svc->provs[i]->rl);
    free(svc->provs[i]);
  }
  free(svc->provs);
  while (svc->hosts) {
    svc_host_t *h = svc->hosts;
    svc->hosts = h->next;
    free(h->origin);
    free(h->labels);
    free(h);
  }
  free(svc);
}

void svc_stats(svc_t *svc, svc_stats_t *out)
{
  *out = svc->st;
  out->connections = svc->count;
  memcpy(out->by_status, svc->by_status, sizeof out->by_status);
  out->scheduled = wheel_count(&svc->wheel);
  out->queued = svc->queued;
  out->inflight = svc->sending;
}

/* ---- providers ---------------------------------------------------------------- */

typedef struct {
  svc_t *svc;
  provider_t p;
  tls_client_ctx_t *tls;
  svc_provider_cb cb;
  void *arg;
} prov_put_t;

static void prov_put_free(prov_put_t *pp)
{
  provider_free(&pp->p);
  tls_client_ctx_free(pp->tls);
  free(pp);
}

static void prov_put_done(void *arg, int status)
{
  prov_put_t *pp = arg;
  svc_t *svc = pp->svc;
  if (status != 0) {
    log_error("provider_commit_failed", "provider", pp->p.name, "error", err_name(status));
    pp->cb(pp->arg, status, NULL);
  } else {
    svc_prov_t *pv = prov_install(svc, &pp->p, pp->tls);
    pp->tls = NULL;
    log_info("provider_put", "provider", pv->p.name);
    pp->cb(pp->arg, 0, &pv->p);
  }
  prov_put_free(pp);
  svc__work_end(svc);
}

/* Stamps and stores the provider; the callback runs after the commit. */
static int prov_commit(prov_put_t *pp)
{
  svc_t *svc = pp->svc;
  int rc = prov_tls(svc, &pp->p, &pp->tls);
  if (rc != 0)
    return GRANTD_ECONFIG;
  int64_t now = clock_now_ms();
  svc_prov_t *old = svc__prov_find(svc, pp->p.name);
  pp->p.created_at = old && old->present && old->p.created_at ? old->p.created_at : now;
  pp->p.updated_at = now;
  return store_provider_put(svc->store, &pp->p, prov_put_done, pp);
}

static void on_discovered(void *arg, int err, provider_t *p)
{
  prov_put_t *pp = arg;
  svc_t *svc = pp->svc;
  (void)p; /* == &pp->p */
  if (err == 0 && svc->closing)
    err = GRANTD_ESHUTDOWN;
  if (err == 0)
    err = prov_commit(pp);
  if (err != 0) {
    pp->cb(pp->arg, err, NULL);
    prov_put_free(pp);
    svc__work_end(svc);
  }
}

int svc_provider_put(svc_t *svc, provider_t *p, svc_provider_cb cb, void *arg)
{
  if (svc->closing || p == NULL || p->name == NULL || cb == NULL) {
    int rc = svc->closing ? GRANTD_ESHUTDOWN : GRANTD_EINVALID;
    if (p) {
      provider_free(p);
      free(p);
    }
    return rc;
  }
  prov_put_t *pp = xcalloc(1, sizeof *pp);
  pp->svc = svc;
  pp->p = *p;
  free(p);
  pp->cb = cb;
  pp->arg = arg;
  svc__work_begin(svc);
  if (pp->p.issuer && !pp->p.token_url) {
    svc__discover(svc, &pp->p, on_discovered, pp);
    return 0;
  }
  int rc = prov_commit(pp);
  if (rc != 0) {
    prov_put_free(pp);
    svc->work--;
  }
  return rc;
}

int svc_provider_get(svc_t *svc, const char *name, provider_t *out)
{
  svc_prov_t *pv = svc__prov_find(svc, name);
  if (pv == NULL || !pv->present)
    return GRANTD_ENOT_FOUND;
  provider_copy(out, &pv->p);
  return 0;
}

int svc_provider_each(svc_t *svc, void (*fn)(void *arg, const provider_t *p), void *arg)
{
  for (size_t i = 0; i < svc->nprovs; i++)
    if (svc->provs[i]->present)
      fn(arg, &svc->provs[i]->p);
  return 0;
}

typedef struct {
  svc_t *svc;
  svc_prov_t *pv;
  svc_provider_cb cb;
  void *arg;
} prov_del_t;

static void prov_del_done(void *arg, int status)
{
  prov_del_t *pd = arg;
  svc_t *svc = pd->svc;
  svc_prov_t *pv = pd->pv;
  if (status != 0) {
    pv->present = true; /* still stored */
  } else if (!pv->present) {
    /* Keep only the name: the holder stays as a placeholder. */
    char *name = pv->p.name;
    pv->p.name = NULL;
    provider_free(&pv->p);
    pv->p.name = name;
    pv->host = NULL;
    if (pv->tls) {
      svc->old_tls = xrealloc(svc->old_tls, (svc->n_old_tls + 1) * sizeof *svc->old_tls);
      svc->old_tls[svc->n_old_tls++] = pv->tls;
      pv->tls = NULL;
    }
    log_info("provider_deleted", "provider", name);
  }
  pd->cb(pd->arg, status, NULL);
  free(pd);
  svc__work_end(svc);
}

int svc_provider_delete(svc_t *svc, const char *name, svc_provider_cb cb, void *arg)
{
  if (svc->closing)
    return GRANTD_ESHUTDOWN;
  svc_prov_t *pv = svc__prov_find(svc, name);
  if (pv == NULL || !pv->present)
    return GRANTD_ENOT_FOUND;
  if (pv->uses > 0)
    return GRANTD_ECONFLICT;
  prov_del_t *pd = xcalloc(1, sizeof *pd);
  pd->svc = svc;
  pd->pv = pv;
  pd->cb = cb;
  pd->arg = arg;
  int rc = store_provider_delete(svc->store, name, prov_del_done, pd);
  if (rc != 0) {
    free(pd);
    return rc;
  }
  /* Hidden at once so no new connection can name it meanwhile. */
  pv->present = false;
  svc__work_begin(svc);
  return 0;
}
