/*
 * svc_int.h - internals of the connection service, shared by its files:
 *
 *   svc.c        open/close, stats, metrics, provider cache and CRUD
 *   conn_api.c   connection CRUD, token reads, forced refresh, delete
 *   conn.c       the in-memory index, status bookkeeping, connection ops
 *                (single-flight unit per connection), commits, waiters,
 *                deferred answers
 *   refresher.c  the wheel timer, ramp-in, token requests through the
 *                limits (global, per host, per provider rate), refresh
 *                outcome -> new record
 *   connect.c, discovery.c, revoke.c (connect-flow helper): svc_authorize,
 *                svc_callback, svc__discover, svc__revoke on top of these.
 *
 * Everything runs on the loop thread. Nothing here is public API: the API
 * layer only sees svc.h.
 *
 * ---- How the pieces fit ------------------------------------------------
 *
 * Index. Every stored connection has one conn_entry_t in a chained hash
 * table keyed by id (svc__entry_find). The entry holds only what scheduling
 * and status need (~90 bytes + id); the full record, with unsealed tokens,
 * is read from the store when needed (store_conn_get: reads see pending
 * writes).
 *
 * Ops (single-flight). At most one svc_op_t per connection at a time
 * (entry->op, NULL when idle). An op is either a refresh (a token request,
 * then a commit) or a plain commit (put, connect-flow result). Token reads,
 * forced refreshes and put callbacks are svc_waiter_t's on the op; they are
 * answered after the op's store commit completed (so a rotated refresh
 * token is durable before any reader sees the new access token and before
 * it is used again). A new put / commit / delete "detaches" the running
 * op: op->entry becomes NULL, its result is dropped (never committed, or if
 * its commit was already queued, committed but not applied to the entry),
 * and its waiters move to the new op (or are answered).
 *
 * Token requests. Every request to a token (or revocation) endpoint goes
 * through svc_treq_t: queued per provider in order of deadline (a binary
 * heap per provider), dispatched when a global slot (opts.max_inflight), a
 * per-host slot (opts.max_inflight_per_host, host = token_url origin) and
 * the provider's rate limit allow. Among providers that can go, the one
 * whose queue head has the earliest deadline goes first (a linear scan over
 * providers with queued work: there are few providers).
 *
 * Time. Wall-clock ms (clock_now_ms(), fakeable) everywhere, also as the
 * wheel's clock, because stored deadlines are wall times.
 */
#ifndef GRANTD_SERVICE_SVC_INT_H
#define GRANTD_SERVICE_SVC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "oauth/grant.h"
#include "oauth/token.h"
#include "service/policy.h"
#include "service/svc.h"
#include "service/wheel.h"

/* Defaults for svc_opts_t fields left 0. */
#define SVC_DEFAULT_STATE_TTL_MS (10 * 60 * 1000)
#define SVC_DEFAULT_TIMEOUT_MS 30000
#define SVC_DEFAULT_MAX_INFLIGHT 256
#define SVC_DEFAULT_MAX_INFLIGHT_PER_HOST 64
#define SVC_DEFAULT_RAMP_PER_S 500
#define SVC_DEFAULT_BATCH_PER_TICK 256
/* The wheel stops firing while this many token requests are queued
 * (back-pressure: due entries stay in the wheel instead of becoming queued
 * ops, so a storm costs no memory beyond the index). */
#define SVC_QUEUE_CAP_MIN 1024
/* Consecutive transient failures answered 400/403 without an OAuth error
 * code after which the connection is given up as needs_reauth (token.h
 * leaves this cap to the caller). */
#define SVC_MAX_AMBIGUOUS_4XX 8

/* ---- hosts and providers ------------------------------------------------ */

/* One token-endpoint origin ("https://host:port"): the per-host limit. */
typedef struct svc_host {
  struct svc_host *next;
  char *origin;
  char *labels;            /* metrics labels: host="..." (escaped) */
  int inflight;            /* token requests in flight to this origin */
} svc_host_t;

/* heap of queued token requests, ordered by (deadline, seq) */
typedef struct {
  struct svc_treq **items;
  size_t n, cap;
} svc_heap_t;

/* A cached provider. Holders are never freed before svc_free(): entries
 * and requests point at them. A name that connections use but that has no
 * provider record (deleted, or undecodable at start) is a placeholder
 * (present == false); putting the provider later fills it in. */
typedef struct svc_prov {
  provider_t p;            /* the cached record; p.name always set */
  bool present;            /* false = placeholder */
  uint32_t uses;           /* index entries naming this provider */
  svc_host_t *host;        /* origin of p.token_url; NULL without one */
  ratelimit_t rl;          /* p.rate_limit_count per p.rate_limit_window */
  int64_t rl_until;        /* rate-limited until (wall ms); 0 = free */
  svc_heap_t queue;        /* token requests waiting for a slot */
  tls_client_ctx_t *tls;   /* derived trust for p.ca_file, else NULL */
  bool host_validated;     /* a token request got an HTTP answer since this
                              record was installed: TLS to it worked */
} svc_prov_t;

/* Finds the holder for a name (placeholders included), or NULL. */
svc_prov_t *svc__prov_find(svc_t *svc, const char *name);
/* Finds or creates (as a placeholder) the holder for name[0..len). */
svc_prov_t *svc__prov_get_n(svc_t *svc, const char *name, size_t len);
#define svc__prov_get(svc, name) svc__prov_get_n((svc), (name), strlen(name))

/* ---- the index ---------------------------------------------------------- */

struct svc_op;

/* One connection in memory. Fields mirror the committed record (or, while
 * a put/commit op runs, the record being written). */
typedef struct conn_entry {
  wheel_entry_t wheel;      /* linked while a refresh is scheduled */
  struct conn_entry *hnext; /* hash chain */
  struct svc_op *op;        /* running op, NULL when idle */
  svc_prov_t *prov;         /* never NULL */
  int64_t expires_at;       /* access token expiry, 0 = unknown */
  int64_t next_refresh_at;  /* planned refresh, 0 = none */
  uint32_t hash;
  uint32_t failures;
  uint8_t status;           /* conn_status_t */
  uint8_t grant;            /* grant_t */
  uint8_t flags;            /* CONN_ENTRY_* (a spare padding byte: sizeof
                               is unchanged) */
  char id[];                /* NUL-terminated */
} conn_entry_t;

/* conn_entry_t.flags. RESTART_OVERDUE: the connection was due (next
 * refresh at or before now) when the service opened, so a refresh of it
 * may have been in flight when the previous process died, and the provider
 * may have rotated its refresh token without grantd storing the new one.
 * If the first definite outcome after start-up is invalid_grant it is
 * reported as "refresh_token_lost_in_restart" (refresher.c). Cleared by
 * that outcome (transient failures keep it: they say nothing about the
 * token) and by a put / commit of a new record. In memory only. */
#define CONN_ENTRY_RESTART_OVERDUE 0x01

/* Looks an id up; NULL when absent. O(1). */
conn_entry_t *svc__entry_find(svc_t *svc, const char *id);
/* Creates the entry for c->id (which must be absent) from c's fields and
 * inserts it; counted in stats. Not scheduled. */
conn_entry_t *svc__entry_add(svc_t *svc, const conn_t *c);
/* The same from raw fields (start-up scan; id and provider need not be
 * NUL-terminated). */
conn_entry_t *svc__entry_add_raw(svc_t *svc, const char *id, size_t idlen, const char *prov,
                                 size_t provlen, conn_status_t status, grant_t grant,
                                 int64_t expires_at, uint32_t failures);
/* Updates an entry's status/provider/expiry/failures/next_refresh_at from
 * a record, keeping the per-status and per-provider counts in step and
 * logging + counting a status change (event "status_change" with id, from,
 * to and c->last_error_code). Does not touch the schedule. */
void svc__entry_apply(svc_t *svc, conn_entry_t *e, const conn_t *c);
/* Unlinks, detaches any op (its waiters get `err`), removes from the
 * table and frees the entry. */
void svc__entry_remove(svc_t *svc, conn_entry_t *e, int err);
/* Schedules e's refresh at `at` (wall ms; 0 = unschedule) and re-arms the
 * wheel timer if needed. Also sets e->next_refresh_at. */
void svc__schedule(svc_t *svc, conn_entry_t *e, int64_t at);
/* Re-reads c->id from the store and makes the entry match (adds, updates,
 * reschedules, or removes it when the record is gone). Used after a failed
 * commit, when memory may be ahead of the store. */
void svc__entry_resync(svc_t *svc, const char *id);

/* ---- waiters, deferred answers ----------------------------------------- */

typedef enum {
  SVC_WAIT_TOKEN = 0,  /* svc_conn_token: answered as a token read */
  SVC_WAIT_FORCED = 1, /* svc_conn_refresh: err from the refresh outcome */
  SVC_WAIT_RECORD = 2, /* svc_conn_put / commit: err 0 + the committed record */
} svc_wait_kind_t;

typedef struct svc_waiter {
  struct svc_waiter *next;
  svc_conn_cb cb;
  void *arg;
  svc_wait_kind_t kind;
} svc_waiter_t;

/* Queues cb(arg, err, c) to run from the next loop iteration (a uv_idle
 * handle drains one shared queue). c may be NULL; it is copied. */
void svc__answer(svc_t *svc, svc_conn_cb cb, void *arg, int err, const conn_t *c);
/* Same, taking ownership of *c (moved; *c is zeroed). */
void svc__answer_move(svc_t *svc, svc_conn_cb cb, void *arg, int err, conn_t *c);

/* The answer a token read gets for a record at time now: 0 when the
 * status serves tokens and the access token has not expired; else
 * GRANTD_EREAUTH (needs_reauth, revoked), GRANTD_EPROVIDER_CONFIG (error),
 * GRANTD_ECONFLICT (pending), GRANTD_EUPSTREAM (expired or missing). */
int svc__token_verdict(const conn_t *c, int64_t now);

/* ---- ops (single-flight per connection) -------------------------------- */

typedef enum {
  SVC_OP_REFRESH = 0,  /* token request, then commit */
  SVC_OP_COMMIT = 1,   /* commit a given record */
} svc_op_kind_t;

typedef enum {
  SVC_PHASE_QUEUED = 0,  /* waiting for a token-request slot */
  SVC_PHASE_REQUEST = 1, /* token request in flight */
  SVC_PHASE_COMMIT = 2,  /* store write queued, waiting for its callback */
} svc_op_phase_t;

/* A token request going through the limits. Embed it; set the public
 * fields, then svc__treq_submit(). */
typedef struct svc_treq svc_treq_t;

/* What a token request produced. `tok` is always filled: from the
 * response (token_parse / token_parse_revocation) or, without a response,
 * from the network error (outcome token_outcome_for_error(neterr), error =
 * err_name(neterr), error_description = err_str(neterr)). The done callback
 * may move fields out of tok; the rest is freed after it returns. */
typedef struct {
  token_result_t tok;
  int neterr;           /* 0 = an HTTP response came */
  bool unknown;         /* neterr != 0 and the request may have reached the
                           provider (its effect there is unknown) */
  int64_t latency_ms;
} svc_tresult_t;

/* Called when the request gets its slot (limits passed): fill *req and
 * return 0 to send it, or return non-zero to give the slot back and finish
 * without sending (done is then NOT called; the start function completes
 * its own work). */
typedef int (*svc_treq_start_fn)(svc_treq_t *t, oauth_request_t *req);
/* Called once with the outcome, from a later loop iteration. */
typedef void (*svc_treq_done_fn)(svc_treq_t *t, svc_tresult_t *r);

struct svc_treq {
  /* set by the user */
  svc_prov_t *prov;          /* whose limits, token_url host and timeout */
  int64_t deadline;          /* queue order (wall ms; smaller = sooner) */
  bool revocation;           /* parse with token_parse_revocation */
  const char *url;           /* NULL = req->url from start */
  svc_treq_start_fn start;
  svc_treq_done_fn done;
  /* private (refresher.c) */
  svc_t *svc;
  uint64_t seq;
  size_t hidx;               /* index in prov->queue while queued */
  int state;                 /* 0 idle, 1 queued, 2 sending */
  svc_host_t *host;          /* host slot held while sending */
  int64_t t0_us;
  void *http;                /* the http client's request handle */
  struct svc_treq *snext, **sprev; /* svc->sending_list while sent */
};

/* Queues t (see svc_treq_t); the done or start callback runs later. While
 * the service is closing, done runs (later) with neterr GRANTD_ESHUTDOWN. */
void svc__treq_submit(svc_t *svc, svc_treq_t *t);
/* Withdraws a queued request: returns 1 and neither start nor done will
 * run; returns 0 when it is already sending (done will run) or idle. */
int svc__treq_cancel(svc_treq_t *t);

/* svc_close: every queued request ends with GRANTD_ESHUTDOWN (later). */
void svc__treq_shutdown_all(svc_t *svc);
/* svc_drain: cancels every request in flight (their done callbacks run
 * before this returns): one that may have been sent ends with neterr
 * GRANTD_ECANCELLED and unknown set, one that was not with
 * GRANTD_ESHUTDOWN. */
void svc__treq_cancel_sending(svc_t *svc);

typedef struct svc_op {
  svc_t *svc;
  conn_entry_t *entry;       /* NULL once detached */
  svc_op_kind_t kind;
  svc_op_phase_t phase;
  svc_waiter_t *waiters;     /* answered in order after the commit */
  svc_waiter_t **wtail;
  conn_t rec;                /* COMMIT: the record to write. REFRESH: the
                                record refreshed from (loaded at dispatch
                                unless have_rec) */
  bool have_rec;             /* REFRESH: rec is given (put of a
                                client_credentials/password connection) */
  bool forced;               /* REFRESH: ignore backoff/no-op shortcuts */
  token_outcome_t outcome;   /* REFRESH result (TOKEN_OK for COMMIT) */
  conn_t next;               /* the record being committed */
  svc_treq_t treq;
  svc_conn_cb done_cb;       /* optional: after commit, before waiters */
  void *done_arg;
  /* A refresh whose commit failed after the provider rotated the refresh
   * token: op->next holds the only copy of the new token, so the op stays
   * attached and retries the commit after a backoff (conn.c). */
  bool commit_retry;         /* waiting for the retry timer */
  uint32_t commit_attempts;  /* failed commits so far */
  void *retry_timer;         /* conn.c's timer while commit_retry */
  struct svc_op *rnext, **rprev; /* svc->retry_ops while commit_retry */
} svc_op_t;

/* A new op (counted for svc_close); attach it with svc__op_attach. */
svc_op_t *svc__op_new(svc_t *svc, svc_op_kind_t kind);
/* Makes op the running op of e: detaches e's previous op (its token and
 * forced waiters move to op; see conn.c op_detach) and unschedules e. */
void svc__op_attach(svc_t *svc, conn_entry_t *e, svc_op_t *op);
/* Queues op->next for commit (store_conn_put). When the commit completes:
 * the entry (if still attached) is updated from op->next and rescheduled
 * at op->next.next_refresh_at, op->done_cb runs, waiters are answered (see
 * svc_wait_kind_t), the op is freed. A failed commit answers waiters with
 * the error (token readers get the old record's verdict for a refresh),
 * keeps the old record and retries with backoff. */
void svc__op_commit(svc_t *svc, svc_op_t *op);

/* svc_close: every commit retry (see svc_op_t.commit_retry) runs now, as
 * its last attempt; a failure then is logged as "rotated_token_unsaved". */
void svc__commit_retry_now_all(svc_t *svc);

/* How ops write a record: store_conn_put, replaceable by unit tests to
 * inject commit failures (conn.c). */
extern int (*svc__conn_put)(store_t *s, const conn_t *c, store_cb cb, void *arg);

/* Appends a waiter to an op. */
void svc__op_wait(svc_op_t *op, svc_wait_kind_t kind, svc_conn_cb cb, void *arg);

/* Starts (or joins) a refresh of e. cb may be NULL (scheduled refresh).
 * forced: ignore the "in backoff" shortcut. */
void svc__refresh(svc_t *svc, conn_entry_t *e, bool forced, svc_wait_kind_t kind,
                  svc_conn_cb cb, void *arg);

/* A token read of a connection with nothing to refresh with (no refresh
 * token; grant refresh_token or authorization_code) whose token expired:
 * rec (moved) is its stored record. Commits it as needs_reauth
 * ("no_refresh_token") at once, without a token-request slot or rate-limit
 * budget; cb gets the token-read answer after the commit. e must be idle
 * or have a queued refresh (replaced; its waiters move to this op). */
void svc__expire_no_rt(svc_t *svc, conn_entry_t *e, conn_t *rec, svc_conn_cb cb, void *arg);

/* Runs the grant of a client_credentials / password put: rec (moved) is
 * the record as put (its revision is kept); it is refreshed through the
 * limits and the outcome committed; cb gets SVC_WAIT_RECORD semantics. */
void svc__refresh_with(svc_t *svc, conn_entry_t *e, conn_t *rec, svc_conn_cb cb, void *arg);

/* Links n overdue entries at start-up, most overdue first, spread over
 * n / opts.ramp_per_s seconds from now (next_refresh_at is kept as the
 * planned time; overdue is reordered in place). */
void svc__ramp(svc_t *svc, conn_entry_t **overdue, size_t n, int64_t now);

/* Commits a complete connection record (moved; the caller set every field
 * including revision, created_at, updated_at), creating or updating the
 * index entry, detaching any running op of that id (its token/forced
 * waiters move to this commit; they are answered from the committed
 * record) and, after the commit, rescheduling from rec->next_refresh_at
 * and calling cb(arg, err, committed record) (cb may be NULL). For the
 * connect flow's code exchange. Returns 0 or a store error (GRANTD_ESHUTDOWN
 * ...; then nothing changed and cb never runs). */
int svc__conn_commit(svc_t *svc, conn_t *rec, svc_conn_cb cb, void *arg);

/* Builds the next record of a refresh or grant from the token result:
 * new tokens (rotated refresh token kept only if one came back), expiry,
 * scopes, extra, status, failures, last_error, next_refresh_at (policy).
 * `unknown` marks an outcome unknown because the request may have reached
 * the provider. Moves token strings out of tok. *out gets revision+1 and
 * updated_at = now. */
void svc__next_record(svc_t *svc, const conn_t *old, const svc_prov_t *prov,
                      token_result_t *tok, int neterr, bool unknown, int64_t now,
                      conn_t *out);

/* How a refresh reads its record: store_conn_get, replaceable by unit
 * tests to inject read failures (refresher.c). */
extern int (*svc__conn_get)(store_t *s, const char *id, conn_t *out);

/* Logs and counts the refresh outcome (grantd_refreshes_total{outcome}). */
void svc__count_outcome(svc_t *svc, token_outcome_t o, bool unknown);

/* ---- the wheel ----------------------------------------------------------- */

/* Re-arms the wheel timer at wheel_next_wake (refresher.c). */
void svc__arm(svc_t *svc);

/* ---- async work of the connect flow (for svc_close) -------------------- */

/* Count outstanding asynchronous work that is not an op or token request
 * (e.g. a discovery fetch, a revocation sequence, a state commit); close
 * waits until every begin has its end. */
void svc__work_begin(svc_t *svc);
void svc__work_end(svc_t *svc);

/* ---- hooks implemented by the connect-flow helper ---------------------- */

typedef void (*svc__discover_cb)(void *arg, int err, provider_t *p);
/* discovery.c: fills p's endpoints (authorize/token/revoke URLs, PKCE and
 * auth methods) from the RFC 8414 / OpenID metadata of p->issuer; fields
 * already set in p win. p stays owned by the caller and valid until done;
 * done(arg, err, p) runs exactly once, from a later loop iteration; err
 * GRANTD_EDISCOVERY (or another code) means nothing may be stored. Must
 * bracket its async work with svc__work_begin/end. */
void svc__discover(svc_t *svc, provider_t *p, svc__discover_cb done, void *arg);

typedef void (*svc__revoke_cb)(void *arg, const svc_revoke_report_t *rep);
/* revoke.c: revokes c's refresh token, then its access token, at
 * prov->p.revoke_url (RFC 7009), through svc__treq_submit (limits) with
 * revocation = true. c and prov are borrowed for the call only (copy what
 * is needed). done(arg, rep) runs exactly once, from a later loop
 * iteration, also when nothing is attempted (no revoke_url, placeholder
 * provider, no tokens: rep->attempted false). The connection itself is
 * deleted by the caller afterwards. Must bracket its async work with
 * svc__work_begin/end. */
void svc__revoke(svc_t *svc, const conn_t *c, svc_prov_t *prov, svc__revoke_cb done,
                 void *arg);

/* ---- the service --------------------------------------------------------- */

typedef struct svc_answer svc_answer_t;

struct svc {
  svc_opts_t opts;             /* defaults filled in */
  uv_loop_t *loop;
  store_t *store;
  http_client_t *http;

  /* index: chained hash table, power-of-two buckets */
  conn_entry_t **buckets;
  size_t nbuckets;
  size_t count;
  uint64_t hseed;
  uint64_t by_status[CONN_STATUS_COUNT];

  /* providers (sorted by name) and token hosts */
  svc_prov_t **provs;
  size_t nprovs, provs_cap;
  svc_host_t *hosts;
  /* TLS contexts of replaced providers: a queued request may still point
   * at one, so they are released only by svc_free() */
  tls_client_ctx_t **old_tls;
  size_t n_old_tls;

  /* the wheel and its one timer */
  wheel_t wheel;
  uv_timer_t timer;
  uint64_t armed_at;           /* UINT64_MAX = not armed */
  bool throttled;              /* wheel paused: queue at capacity */

  /* token requests */
  size_t queued;               /* in provider queues */
  size_t sending;              /* in flight */
  svc_treq_t *sending_list;    /* requests handed to the http client */
  size_t queue_cap;
  uint64_t treq_seq;
  bool dispatching;
  uv_timer_t rl_timer;         /* wakes dispatch after a rate-limit wait */
  int64_t rl_armed;

  /* deferred answers */
  uv_idle_t idle;
  svc_answer_t *ans_head, **ans_tail;

  /* counters */
  uint64_t rnd;                /* rand_fast state (jitter) */
  svc_stats_t st;
  size_t ops;                  /* live svc_op_t */
  svc_op_t *retry_ops;         /* ops waiting to retry a failed commit */
  size_t work;                 /* svc__work_begin - end */

  /* close */
  bool draining;               /* svc_drain: no schedule, no token requests */
  bool closing;
  int handles_open;
  void (*close_cb)(void *arg);
  void *close_arg;
};

/* Called whenever an op, request or work item ends: finishes svc_close
 * once nothing is outstanding. */
void svc__maybe_closed(svc_t *svc);

/* Frees an op (its waiters must have been answered or moved). */
void svc__op_free(svc_t *svc, svc_op_t *op);

#endif
