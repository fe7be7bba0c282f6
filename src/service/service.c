/*
 * service.c - the service's front: open (provider cache, one scheduling
 * scan, ramp-in, the hooks between its files), drain and close, stats,
 * provider CRUD. Connection CRUD, token reads and forced refreshes are in
 * connections.c; README.md in this directory maps the rest.
 *
 * Callbacks never run inside the call that took them (svc.h): answers go
 * through answer.c's deferred queue or run from store callbacks.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "base/rand.h"
#include "base/url.h"
#include "service/discovery.h"
#include "service/index.h"
#include "service/lifecycle.h"
#include "service/op.h"
#include "service/providers.h"
#include "service/refresh.h"
#include "service/schedule.h"
#include "service/state_sweep.h"
#include "service/treq.h"
#include "service/webhooks.h"
#include "store/store.h"

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
  svc__prov_tls(l->svc, &copy, &tls);
  svc__prov_install(l->svc, &copy, tls);
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
  if (c->next_refresh_at <= 0 || !svc__schedulable(c->status, c->grant))
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
  if (o->state_sweep_interval_ms <= 0)
    o->state_sweep_interval_ms = SVC_DEFAULT_SWEEP_INTERVAL_MS;
  if (o->state_sweep_max <= 0)
    o->state_sweep_max = SVC_DEFAULT_SWEEP_MAX;
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
  /* The hooks through which lower files start work of higher ones. */
  svc->on_due = svc__refresh_due;
  svc->on_room = svc__arm;
  svc->on_forced = svc__refresh_forced;
  svc->on_events = svc__wh_kick;
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
  if ((rc = svc__wh_open(svc)) != 0) {
    svc_free(svc);
    return rc;
  }

  uv_timer_init(svc->loop, &svc->timer);
  uv_timer_init(svc->loop, &svc->rl_timer);
  uv_idle_init(svc->loop, &svc->idle);
  uv_timer_init(svc->loop, &svc->sweep_timer);
  uv_timer_init(svc->loop, &svc->wh_timer);
  svc->timer.data = svc->rl_timer.data = svc->idle.data = svc->sweep_timer.data = svc;
  svc->wh_timer.data = svc;
  svc->handles_open = 5;
  svc__metrics_setup(svc);
  svc__events_setup(svc);
  svc__arm(svc);
  svc__sweep_start(svc);
  svc__wh_kick(svc);
  log_info("service_open", "#connections", LOG_I64(svc->count), "#providers", LOG_I64(svc->nprovs),
           "#scheduled", LOG_I64(wheel_count(&svc->wheel)), "#overdue", LOG_I64(l.n_overdue),
           "#decode_errors", LOG_I64(svc->st.decode_errors), "#ms",
           LOG_I64((clock_mono_us() - t0) / 1000));
  *out = svc;
  return 0;
}

/* ---- close ---------------------------------------------------------------------- */

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
  uv_timer_stop(&svc->sweep_timer);
  /* Queued requests never start: their ops end with GRANTD_ESHUTDOWN. */
  svc__treq_shutdown_all(svc);
  /* In flight: cancelled rather than waited for (a hung provider would
   * hold shutdown for the whole request timeout). One that may have been
   * written is committed as "refresh_outcome_unknown". */
  svc__treq_cancel_sending(svc);
  svc__events_wake_all(svc);
  svc__wh_drain(svc);
}

void svc_drain(svc_t *svc)
{
  if (svc->draining || svc->closing)
    return;
  log_info("service_draining", "#inflight", LOG_I64(svc->sending), "#queued", LOG_I64(svc->queued));
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
  free(svc->sweep_cursor);
  svc__op_spares_free(svc);
  svc__providers_free(svc);
  svc__wh_free(svc);
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
    svc_prov_t *pv = svc__prov_install(svc, &pp->p, pp->tls);
    pp->tls = NULL;
    log_info("provider_put", "provider", pv->p.name);
    pp->cb(pp->arg, 0, &pv->p);
  }
  prov_put_free(pp);
  svc__work_end(svc);
}

static void on_discovered(void *arg, int err, provider_t *p);

/* Stamps and stores the provider; the callback runs after the commit. */
static int prov_commit(prov_put_t *pp)
{
  svc_t *svc = pp->svc;
  /* pp->tls is set when the ca_file was read off the loop already. */
  int rc = pp->tls != NULL ? 0 : svc__prov_tls(svc, &pp->p, &pp->tls);
  if (rc != 0)
    return GRANTD_ECONFIG;
  int64_t now = clock_now_ms();
  svc_prov_t *old = svc__prov_find(svc, pp->p.name);
  pp->p.created_at = old && old->present && old->p.created_at ? old->p.created_at : now;
  pp->p.updated_at = now;
  return store_provider_put(svc->store, &pp->p, prov_put_done, pp);
}

/* Discovery (issuer without token_url) or the commit; 0, or an error with
 * nothing started. */
static int prov_next(prov_put_t *pp)
{
  if (pp->p.issuer && !pp->p.token_url) {
    svc__discover(pp->svc, &pp->p, on_discovered, pp);
    return 0;
  }
  return prov_commit(pp);
}

/* The provider's ca_file was read on the thread pool (never on the loop:
 * a FIFO would block it, /dev/zero would exhaust memory). */
static void on_ca_read(void *arg, int err, int sys_errno, buf_t *data)
{
  prov_put_t *pp = arg;
  svc_t *svc = pp->svc;
  if (err == 0 && svc->closing)
    err = GRANTD_ESHUTDOWN;
  if (err == 0 && tls_client_ctx_derive_pem(&pp->tls, svc->opts.tls, data->data, data->len) != 0)
    err = GRANTD_ECONFIG; /* no usable PEM certificate */
  if (err != 0 && err != GRANTD_ESHUTDOWN) {
    const char *en = sys_errno ? strerrorname_np(sys_errno) : NULL;
    log_warn("provider_ca_file_unusable", "provider", pp->p.name, "ca_file", pp->p.ca_file, "error",
             err_name(err), "errno", en ? en : "");
  }
  if (err == 0)
    err = prov_next(pp);
  if (err != 0) {
    pp->cb(pp->arg, err, NULL);
    prov_put_free(pp);
    svc__work_end(svc);
  }
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
  int rc;
  if (pp->p.ca_file && pp->p.ca_file[0] && svc->opts.tls != NULL)
    rc = file_read_async(svc->opts.loop, pp->p.ca_file, SVC_CA_FILE_MAX, on_ca_read, pp);
  else
    rc = prov_next(pp);
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
    svc__prov_retire_tls(svc, pv);
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
