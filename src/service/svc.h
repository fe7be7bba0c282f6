/*
 * svc.h - the connection service: the one entry point the API layer uses.
 *
 * It owns the in-memory index of every connection (a compact entry with the
 * scheduling fields and an intrusive wheel entry), the provider cache, the
 * timer wheel that drives proactive refresh, the single-flight refresh of
 * each connection, and the connect flow (authorize URL, callback, code
 * exchange, discovery, revocation). It talks to providers through
 * net/http_client, builds and parses OAuth messages with oauth/, and
 * persists through store/ (group commit).
 *
 * Conventions: 0 = success, negative = libuv or GRANTD_E* code (base/err.h);
 * the API layer maps codes to HTTP statuses in one table. A function that
 * takes a callback and returns an error never calls it; otherwise the
 * callback runs exactly once, always from a later loop iteration or after a
 * store commit, never before the change it reports is durable. Records passed
 * to callbacks are borrowed for the duration of the call. Records passed *in*
 * (provider_t *, conn_t *) are moved: the service owns and frees them, also
 * when an error is returned.
 */
#ifndef GRANTD_SERVICE_SVC_H
#define GRANTD_SERVICE_SVC_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "net/http_client.h"
#include "store/record.h"
#include "store/store.h"

typedef struct svc svc_t;

typedef struct {
  uv_loop_t *loop;
  store_t *store;
  http_client_t *http;
  tls_client_ctx_t *tls;           /* trust the http client uses; a provider's
                                      ca_file is added to it (may be NULL:
                                      ca_file is then ignored, with a warning) */
  const char *public_url;          /* callback URL = public_url + "/oauth/callback" */
  int64_t state_ttl_ms;            /* authorization state lifetime (default 10 min) */
  int64_t request_timeout_ms;      /* token request timeout unless the provider sets one */
  int max_inflight;                /* token requests in flight, all hosts */
  int max_inflight_per_host;       /* token requests in flight per token host */
  int ramp_per_s;                  /* overdue refreshes started per second at start-up */
  int batch_per_tick;              /* refreshes started per wheel tick at most */
  int64_t state_sweep_interval_ms; /* expired-state sweep period (default 60 s) */
  int state_sweep_max;             /* states looked at per sweep step (default 256) */
  /* Webhooks (svc_webhook_*): endpoints at most (default 16), requests in
   * flight per endpoint (default 32), per-request timeout (default 10 s),
   * how long an event is retried before it fails for the endpoint
   * (default 3 days), how long a replaced secret keeps signing (default
   * 24 h). */
  int webhook_max_endpoints;
  int webhook_max_inflight;
  int64_t webhook_timeout_ms;
  int64_t webhook_retry_total_ms;
  int64_t webhook_retry_base_ms; /* first retry delay (default 5 s) */
  int64_t webhook_secret_overlap_ms;
} svc_opts_t;

/* Opens the service: loads providers, rebuilds the index from one store scan
 * and schedules every connection. Records that fail to decode are logged with
 * their key and counted, not dropped. Returns 0 or an error. */
int svc_open(svc_t **out, const svc_opts_t *opts);

/* Starts a bounded shutdown while the API still answers: stops the
 * refresh schedule, ends queued token requests and cancels the ones in
 * flight (a request that may have reached the provider is committed as
 * "refresh_outcome_unknown"; one that was not sent ends GRANTD_ESHUTDOWN),
 * and sends no token request from then on. Readers waiting on those
 * refreshes are answered at once: from the stored record when its token is
 * still valid, else with the error. Reads of valid tokens keep working.
 * Idempotent; svc_close does the same. Call it when shutdown begins (on
 * SIGTERM, before draining the HTTP server). */
void svc_drain(svc_t *svc);

/* Stops scheduling and accepting work (svc_drain first, if not done yet:
 * token requests in flight are cancelled, not waited for; a rotated
 * refresh token whose commit is being retried gets one last attempt).
 * `cb` runs once nothing references the store or http client any more;
 * then svc_free() releases the memory. */
void svc_close(svc_t *svc, void (*cb)(void *arg), void *arg);
/* Frees the service after svc_close's callback ran (or after a failed
 * svc_open never returned one). Order at shutdown: svc_close -> cb ->
 * http_client_close -> svc_free -> store_close. */
void svc_free(svc_t *svc);

/* ---- providers ---- */

typedef void (*svc_provider_cb)(void *arg, int err, const provider_t *p);

/* Creates or replaces a provider (p is moved). When p->issuer is set and
 * token_url is not, the RFC 8414 / OpenID discovery documents are fetched
 * first and fill the endpoints; explicit fields win. Discovery failure:
 * GRANTD_EDISCOVERY through the callback, nothing stored. */
int svc_provider_put(svc_t *svc, provider_t *p, svc_provider_cb cb, void *arg);
/* Copies the provider into *out (caller frees with provider_free). */
int svc_provider_get(svc_t *svc, const char *name, provider_t *out);
/* Calls fn for every provider in name order (borrowed records). */
int svc_provider_each(svc_t *svc, void (*fn)(void *arg, const provider_t *p), void *arg);
/* Deletes a provider; GRANTD_ECONFLICT while connections use it. */
int svc_provider_delete(svc_t *svc, const char *name, svc_provider_cb cb, void *arg);

/* ---- connections ---- */

typedef void (*svc_conn_cb)(void *arg, int err, const conn_t *c);

/* Creates or replaces a connection (c is moved; the API validated fields).
 * authorization_code: stored `pending` until the user authorizes.
 * client_credentials / password: the grant runs at once; the callback gets
 * the committed record, `active` or with status/last_error set (err 0 in
 * both cases: the record was stored). refresh_token (import): stored
 * `active` with the given tokens and scheduled. */
int svc_conn_put(svc_t *svc, conn_t *c, svc_conn_cb cb, void *arg);
/* (svc_conn_put) Returned at once: GRANTD_EPROVIDER_UNKNOWN when
 * c->provider names no provider (the API answers 422), GRANTD_EINVALID
 * (no id/provider), GRANTD_ESHUTDOWN, store errors. A replaced connection
 * keeps created_at, gets revision + 1; a refresh of it that is running is
 * dropped (never stored) and its readers get the new record. */

/* Copies the stored connection into *out (caller frees with conn_free). */
int svc_conn_get(svc_t *svc, const char *id, conn_t *out);

/* Lists connections in id order after `cursor` (NULL = from the start),
 * filtered by tenant (NULL = all) and status (-1 = all), at most `limit`.
 * *out is an array of *n records (free each with conn_free, then the
 * array); *next is the cursor for the next page or NULL at the end. */
int svc_conn_list(svc_t *svc, const char *tenant, int status, const char *cursor, size_t limit,
                  conn_t **out, size_t *n, char **next);

/* Returns a token with more than min_ttl_ms left: at once when the stored
 * one qualifies, else after a refresh it starts or joins (single-flight).
 * Readers that joined a refresh get its committed token even if that has
 * less than min_ttl_ms left (a provider issuing short tokens is not asked
 * again). While the connection backs off after failed refreshes, a read
 * does not start another request: it gets the still-valid token (even
 * below min_ttl) or GRANTD_EUPSTREAM. While a write of the connection is
 * being committed, the read waits for it. A pending connection gives
 * GRANTD_ECONFLICT through the callback.
 * Errors: GRANTD_ENOT_FOUND; through the callback GRANTD_EREAUTH,
 * GRANTD_EPROVIDER_CONFIG, GRANTD_EUPSTREAM (with the record, whose
 * last_error says more). */
int svc_conn_token(svc_t *svc, const char *id, int64_t min_ttl_ms, svc_conn_cb cb, void *arg);

/* Refreshes now (joins a refresh already running); the callback gets the
 * committed record. Concurrent forced refreshes coalesce into one request.
 * A forced refresh ignores backoff and also runs for needs_reauth / error
 * connections (an operator retrying). Through the callback: 0 when the
 * refresh succeeded; GRANTD_EUPSTREAM (transient failure),
 * GRANTD_EREAUTH, GRANTD_EPROVIDER_CONFIG with the committed record whose
 * last_error says more; a store error (record NULL or the old record).
 * Returned at once: GRANTD_ENOT_FOUND, GRANTD_ECONFLICT (pending: nothing
 * to refresh yet), GRANTD_EREAUTH (revoked), GRANTD_ESHUTDOWN. */
int svc_conn_refresh(svc_t *svc, const char *id, svc_conn_cb cb, void *arg);

typedef struct {
  bool attempted;   /* revocation was asked for and a revoke_url exists */
  int refresh_err;  /* 0 = revoked; else the error revoking the refresh token */
  int access_err;   /* same for the access token */
  int refresh_http; /* provider's HTTP status, 0 = no answer */
  int access_http;
} svc_revoke_report_t;

/* ---- webhook endpoints ----
 * Endpoints receive the connection events (the outbox) whose type matches
 * one of their patterns, signed as Standard Webhooks (base/whsig.h), at
 * least once, in order per connection, retried with backoff for
 * webhook_retry_total_ms; the delivery engine (webhooks.c) keeps each
 * endpoint's progress durable in the store. */

/* What the API shows of an endpoint: the record without its secrets, and
 * its delivery status. */
typedef struct {
  wh_rec_t rec;        /* secret and old_secret are NULL */
  char *new_secret;    /* only in a put's answer: the generated secret */
  bool created;        /* only in a put's answer: the endpoint is new */
  bool has_old_secret; /* a replaced secret still signs until old_until */
  bool disabled;       /* the receiver answered 410 Gone */
  uint64_t cursor;     /* every event <= cursor is finished for it */
  uint64_t backlog;    /* events not finished: matching ones not yet
                          delivered or failed, and those not read yet */
  uint64_t delivered, failed;
  uint32_t inflight;
  int64_t last_ok_ms, last_err_ms;
  int32_t last_err_status; /* HTTP status of the last failure, 0 = none */
  char last_err_class[32]; /* "http_5xx", "timeout", "connect_failed" ... */
  int64_t oldest_ms;       /* commit time of the oldest undelivered event, 0 */
} svc_wh_view_t;
void svc_wh_view_free(svc_wh_view_t *v);

typedef void (*svc_wh_cb)(void *arg, int err, const svc_wh_view_t *v);

/* Creates or replaces endpoint r->name (r is moved; the API validated url
 * and patterns). r->secret NULL: a new endpoint gets a generated secret
 * (returned once, in v->new_secret), a replaced one keeps its secret. A
 * secret that differs from the current one replaces it, and the old one
 * keeps signing for webhook_secret_overlap_ms. Replacing keeps the
 * delivery progress and enables an endpoint disabled by 410. A new one
 * starts after the last committed event. cb after the commit.
 * @return 0; GRANTD_ELIMIT (webhook_max_endpoints), GRANTD_EINVALID (bad
 *   secret), GRANTD_ESHUTDOWN. */
int svc_webhook_put(svc_t *svc, wh_rec_t *r, svc_wh_cb cb, void *arg);
/* Copies endpoint `name`'s view (free with svc_wh_view_free).
 * @return 0 or GRANTD_ENOT_FOUND. */
int svc_webhook_get(svc_t *svc, const char *name, svc_wh_view_t *out);
/* Calls fn for every endpoint in name order (borrowed views). */
void svc_webhook_each(svc_t *svc, void (*fn)(void *arg, const svc_wh_view_t *v), void *arg);
/* Deletes an endpoint and its progress; requests in flight are
 * cancelled. @return 0 (cb after the commit, v NULL), GRANTD_ENOT_FOUND. */
int svc_webhook_delete(svc_t *svc, const char *name, svc_wh_cb cb, void *arg);

/* A known event type, or "<prefix>.*" of one ("connection.*"); the
 * patterns an endpoint's "events" may hold. */
bool svc_webhook_pattern_ok(const char *p);

/* The outcome of a test delivery (svc_webhook_test). */
typedef struct {
  const char *id;    /* webhook-id sent */
  bool delivered;    /* 2xx */
  int status;        /* HTTP status, 0 = no answer */
  const char *error; /* error class when not delivered, else NULL */
  int64_t ms;        /* request duration */
} svc_wh_test_t;
typedef void (*svc_wh_test_cb)(void *arg, int err, const svc_wh_test_t *t);
/* Sends one "webhook.test" event to endpoint `name` at once (one attempt,
 * not recorded in the outbox) and reports the receiver's answer.
 * @return 0 or GRANTD_ENOT_FOUND / GRANTD_ESHUTDOWN. */
int svc_webhook_test(svc_t *svc, const char *name, svc_wh_test_cb cb, void *arg);

/* ---- event feed waiters ----
 * A long-poll of the event feed: the caller owns w (zeroed or from an
 * earlier, finished wait) and keeps it alive until cb runs or it calls
 * svc_events_unwait. cb(arg) runs once, from the store's commit
 * completion, as soon as an event with a sequence number above `after`
 * is committed, or when the service drains or closes; w is unlinked before cb runs. Costs nothing
 * while idle: no timer or poll here (the caller bounds the wait). */
typedef struct svc_ev_wait svc_ev_wait_t;
struct svc_ev_wait {
  svc_ev_wait_t *next, **pprev; /* linked while waiting */
  uint64_t after;
  void (*cb)(void *arg);
  void *arg;
};
/* @return 0, or 1 when an event after `after` is already committed or the
 * service is draining (cb is then not called: read now). */
int svc_events_wait(svc_t *svc, svc_ev_wait_t *w, uint64_t after, void (*cb)(void *arg), void *arg);
/* Cancels a wait; nothing when w is not waiting. */
void svc_events_unwait(svc_ev_wait_t *w);
/* Committed events after `after` (store_events_read), and the oldest
 * retained and last committed sequence numbers (store_events_bounds). */
int svc_events_read(svc_t *svc, uint64_t after, size_t limit, store_event_t **out, size_t *n);
void svc_events_bounds(const svc_t *svc, uint64_t *first, uint64_t *last);
/* The service's loop (for the caller's timers). */
uv_loop_t *svc_loop(const svc_t *svc);

typedef void (*svc_delete_cb)(void *arg, int err, const svc_revoke_report_t *rep);

/* Deletes a connection (and its index entries). With revoke, first revokes
 * the refresh token then the access token at the provider (RFC 7009); the
 * deletion happens whatever the provider answers, and the report says. */
int svc_conn_delete(svc_t *svc, const char *id, bool revoke, svc_delete_cb cb, void *arg);

/* ---- connect flow ---- */

typedef struct {
  const char *redirect_after; /* may be NULL */
  const strlist_t *scopes;    /* NULL = the connection's / provider's */
  const kvlist_t *params;     /* extra authorize parameters, may be NULL */
} svc_authorize_req_t;

typedef void (*svc_authorize_cb)(void *arg, int err, const char *url, const char *state,
                                 int64_t expires_at);

/* Creates a single-use state (PKCE verifier sealed) and returns the
 * provider's authorization URL once the state is committed. */
int svc_authorize(svc_t *svc, const char *id, const svc_authorize_req_t *req, svc_authorize_cb cb,
                  void *arg);

typedef struct {
  const char *conn_id;        /* NULL when the state was unknown */
  const char *redirect_after; /* NULL = show a page */
  const char *error;          /* NULL = connected; else an error code */
  const char *error_description;
} svc_callback_result_t;

typedef void (*svc_callback_cb)(void *arg, int err, const svc_callback_result_t *r);

/* Handles the browser's return: `query` holds the decoded callback query
 * parameters. err GRANTD_EBAD_STATE for unknown/expired/used states (no
 * token request made); otherwise err 0 and r->error says whether the
 * connection ended active. */
int svc_callback(svc_t *svc, const kvlist_t *query, svc_callback_cb cb, void *arg);

/* ---- observability ---- */

typedef struct {
  uint64_t connections;
  uint64_t by_status[CONN_STATUS_COUNT];
  uint64_t scheduled;
  uint64_t queued;
  uint64_t inflight;
  uint64_t refresh_ok, refresh_transient, refresh_reauth, refresh_config, refresh_unknown;
  uint64_t decode_errors;
  uint64_t unknown_states;
} svc_stats_t;

void svc_stats(svc_t *svc, svc_stats_t *out);

#endif
