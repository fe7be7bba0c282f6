/*
 * ctx.h - the service's shared state: struct svc and the types its files
 * share (provider holders, index entries, token requests, ops, waiters).
 * Types and data only; every function lives in the header of the file
 * that implements it (README.md in this directory maps the files). Every
 * file of the service includes this one; it includes no file above it.
 *
 * Everything runs on the loop thread. Nothing here is public API: the API
 * layer only sees svc.h.
 *
 * Time. Wall-clock ms (clock_now_ms(), fakeable) everywhere, also as the
 * wheel's clock, because stored deadlines are wall times.
 *
 * Direction. Calls go downward (service.c and connections.c at the top,
 * then refresh.c, op.c, index.c, schedule.c, treq.c, answer.c). The few
 * places where a lower file must start work of a higher one go through
 * the hooks at the end of struct svc, which svc_open wires.
 */
#ifndef GRANTD_SERVICE_CTX_H
#define GRANTD_SERVICE_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "base/heap.h"
#include "oauth/device.h"
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
#define SVC_DEFAULT_SWEEP_INTERVAL_MS 60000
#define SVC_DEFAULT_SWEEP_MAX 256
/* The wheel stops firing while this many token requests are queued
 * (back-pressure: due entries stay in the wheel instead of becoming queued
 * ops, so a storm costs no memory beyond the index). */
#define SVC_QUEUE_CAP_MIN 1024
/* Consecutive transient failures answered 400/403 without an OAuth error
 * code after which the connection is given up as needs_reauth (token.h
 * leaves this cap to the caller). */
#define SVC_MAX_AMBIGUOUS_4XX 8
#define SVC_DEFAULT_WH_MAX_ENDPOINTS 16
#define SVC_DEFAULT_WH_MAX_INFLIGHT 32
#define SVC_DEFAULT_WH_TIMEOUT_MS 10000
#define SVC_DEFAULT_WH_RETRY_TOTAL_MS ((int64_t)3 * 24 * 3600 * 1000)
#define SVC_DEFAULT_WH_OVERLAP_MS ((int64_t)24 * 3600 * 1000)

/* ---- hosts and providers (providers.c) ----------------------------------- */

/* One token-endpoint origin ("https://host:port"): the per-host limit. */
/* clang-format off */
typedef struct svc_host {
  struct svc_host *next;
  char *origin;
  char *labels;            /* metrics labels: host="..." (escaped) */
  int inflight;            /* token requests in flight to this origin */
} svc_host_t;
/* clang-format on */

/* A cached provider. Holders are never freed before svc_free(): entries
 * and requests point at them. A name that connections use but that has no
 * provider record (deleted, or undecodable at start) is a placeholder
 * (present == false); putting the provider later fills it in. */
/* clang-format off */
typedef struct svc_prov {
  provider_t p;            /* the cached record; p.name always set */
  bool present;            /* false = placeholder */
  uint32_t uses;           /* index entries naming this provider */
  svc_host_t *host;        /* origin of p.token_url; NULL without one */
  ratelimit_t rl;          /* p.rate_limit_count per p.rate_limit_window */
  int64_t rl_until;        /* rate-limited until (wall ms); 0 = free */
  heap_t queue;            /* token requests waiting for a slot, by
                              (deadline, seq); treq.c's */
  tls_client_ctx_t *tls;   /* derived trust for p.ca_file, else NULL */
  bool host_validated;     /* a token request got an HTTP answer since this
                              record was installed: TLS to it worked */
} svc_prov_t;
/* clang-format on */

/* ---- the index (index.c) --------------------------------------------------- */

struct svc_op;

/* One connection in memory. Fields mirror the committed record (or, while
 * a put/commit op runs, the record being written). */
/* clang-format off */
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
/* clang-format on */

/* conn_entry_t.flags. RESTART_OVERDUE: the connection was due (next
 * refresh at or before now) when the service opened, so a refresh of it
 * may have been in flight when the previous process died, and the provider
 * may have rotated its refresh token without grantd storing the new one.
 * If the first definite outcome after start-up is invalid_grant it is
 * reported as "refresh_token_lost_in_restart" (outcome.c). Cleared by
 * that outcome (transient failures keep it: they say nothing about the
 * token) and by a put / commit of a new record. In memory only. */
#define CONN_ENTRY_RESTART_OVERDUE 0x01

/* ---- token requests (treq.c) ---------------------------------------------- */

typedef struct svc_treq svc_treq_t;

/* What a token request produced. `tok` is always filled: from the
 * response (token_parse / token_parse_revocation) or, without a response,
 * from the network error (outcome token_outcome_for_error(neterr), error =
 * err_name(neterr), error_description = err_str(neterr)). The done callback
 * may move fields out of tok; the rest is freed after it returns. */
/* clang-format off */
typedef struct {
  token_result_t tok;
  int neterr;           /* 0 = an HTTP response came */
  bool unknown;         /* neterr != 0 and the request may have reached the
                           provider (its effect there is unknown) */
  int64_t latency_ms;
  device_auth_t dev;    /* treq.device_auth and tok.outcome TOKEN_OK: the
                           device authorization (movable, like tok) */
} svc_tresult_t;
/* clang-format on */

/* Called when the request gets its slot (limits passed): fill *req and
 * return 0 to send it, or return non-zero to give the slot back and finish
 * without sending (done is then NOT called; the start function completes
 * its own work). */
typedef int (*svc_treq_start_fn)(svc_treq_t *t, oauth_request_t *req);
/* Called once with the outcome, from a later loop iteration. */
typedef void (*svc_treq_done_fn)(svc_treq_t *t, svc_tresult_t *r);

/* A token request going through the limits. Embed it; set the public
 * fields, then svc__treq_submit() (treq.h). */
/* clang-format off */
struct svc_treq {
  /* set by the user */
  svc_prov_t *prov;          /* whose limits, token_url host and timeout */
  int64_t deadline;          /* queue order (wall ms; smaller = sooner) */
  bool revocation;           /* parse with token_parse_revocation */
  bool device_auth;          /* parse as an RFC 8628 device authorization
                                response (device_auth_parse, into dev) */
  const char *url;           /* NULL = req->url from start */
  char token_member[65];     /* the connection's nested-token member; "" =
                                the provider's (oauth/token.h) */
  svc_treq_start_fn start;
  svc_treq_done_fn done;
  /* private (treq.c) */
  svc_t *svc;
  uint64_t seq;
  size_t hidx;               /* position in prov->queue while queued */
  int state;                 /* 0 idle, 1 queued, 2 sending */
  svc_host_t *host;          /* host slot held while sending */
  int64_t t0_us;
  void *http;                /* the http client's request handle */
  struct svc_treq *snext, **sprev; /* svc->sending_list while sent */
};
/* clang-format on */

/* ---- ops and waiters (op.c) --------------------------------------------------- */

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

/* What an op is; fixed when it is made. */
typedef enum {
  SVC_OP_REFRESH = 0, /* refresh from the stored record (read at dispatch) */
  SVC_OP_GRANT = 1,   /* the grant of a client_credentials/password put:
                         refresh from the record as put (op->rec, given) */
  SVC_OP_COMMIT = 2,  /* commit a given record (op->next) */
} svc_op_kind_t;

/* Where an op is. The only field that says so; it changes only through
 * svc__op_set (op.c), which checks the move against the table there:
 *
 *   NEW -> QUEUED -> SENDING -> COMMITTING -> (freed)
 *   NEW -> SENDING                 (a refresh decided without a request)
 *   NEW -> COMMITTING              (SVC_OP_COMMIT)
 *   COMMITTING -> RETRY_WAIT -> COMMITTING   (rotated token, failed commit)
 *   QUEUED | SENDING | COMMITTING -> ORPHANED (replaced or deleted)
 *
 * and any state except COMMITTING -> freed (abandoned: no commit). */
typedef enum {
  SVC_OP_NEW = 0,        /* made, not yet submitted */
  SVC_OP_QUEUED = 1,     /* token request waiting for a slot */
  SVC_OP_SENDING = 2,    /* record loaded; token request built or in flight */
  SVC_OP_COMMITTING = 3, /* op->next handed to the store, waiting for its
                            callback */
  SVC_OP_RETRY_WAIT = 4, /* the commit of a rotated refresh token failed:
                            op->next holds the only copy, the op stays
                            attached and waits for the retry timer */
  SVC_OP_ORPHANED = 5,   /* detached (op->entry == NULL): waits for its
                            request's or commit's callback; a request's
                            result is dropped, a commit is not applied */
} svc_op_state_t;

/* clang-format off */
typedef struct svc_op {
  svc_t *svc;
  struct svc_op *spare_next; /* on svc->op_spare while freed (op.c) */
  conn_entry_t *entry;       /* NULL exactly when ORPHANED */
  svc_op_kind_t kind;
  svc_op_state_t state;
  svc_waiter_t *waiters;     /* answered in order when the op ends */
  svc_waiter_t **wtail;
  conn_t rec;                /* REFRESH: the record refreshed from (loaded
                                at dispatch); GRANT: the record as put */
  token_outcome_t outcome;   /* REFRESH/GRANT result (TOKEN_OK for COMMIT) */
  conn_t next;               /* the record being committed */
  svc_treq_t treq;
  bool device_poll;          /* the request is an RFC 8628 poll (device.c) */
  bool exchange_waited;      /* a token exchange resubmitted after its
                                subject connection's refresh (exchange.c) */
  svc_conn_cb done_cb;       /* optional: after commit, before waiters */
  void *done_arg;
  uint32_t commit_attempts;  /* failed commits so far */
  void *retry_timer;         /* op.c's timer while RETRY_WAIT */
  struct svc_op *rnext, **rprev; /* svc->retry_ops while RETRY_WAIT */
} svc_op_t;
/* clang-format on */

/* ---- the service ---------------------------------------------------------- */

typedef struct svc_answer svc_answer_t;

/* clang-format off */
struct svc {
  svc_opts_t opts;             /* defaults filled in */
  uv_loop_t *loop;
  store_t *store;
  http_client_t *http;

  /* event feed waiters (events_wait.c), unordered */
  svc_ev_wait_t *ev_waiters;

  /* webhook endpoints (webhooks.c), sorted by name, and the one timer
   * that wakes retries (armed at the earliest BACKOFF item) */
  struct wh_ep *wh_eps;
  size_t wh_count;
  size_t wh_creating;          /* puts of new endpoints not yet committed */
  uv_timer_t wh_timer;
  int64_t wh_timer_at;         /* 0 = not armed */

  /* index (index.c): chained hash table, power-of-two buckets */
  conn_entry_t **buckets;
  size_t nbuckets;
  size_t count;
  uint64_t hseed;
  uint64_t by_status[CONN_STATUS_COUNT];

  /* providers (providers.c), sorted by name, and token hosts */
  svc_prov_t **provs;
  size_t nprovs, provs_cap;
  svc_host_t *hosts;
  /* TLS contexts of replaced providers: a queued request may still point
   * at one, so they are released only by svc_free() */
  tls_client_ctx_t **old_tls;
  size_t n_old_tls;

  /* the refresh schedule (schedule.c): the wheel and its one timer */
  wheel_t wheel;
  uv_timer_t timer;
  uint64_t armed_at;           /* UINT64_MAX = not armed */
  bool throttled;              /* set by schedule.c when it pauses at a
                                  full queue; treq.c clears it and calls
                                  on_room once the queue drained to half */

  /* token requests (treq.c) */
  size_t queued;               /* in provider queues */
  size_t sending;              /* in flight */
  svc_treq_t *sending_list;    /* requests handed to the http client */
  size_t queue_cap;
  uint64_t treq_seq;
  bool dispatching;
  uv_timer_t rl_timer;         /* wakes dispatch after a rate-limit wait */
  int64_t rl_armed;

  /* the expired-state sweep (state_sweep.c) */
  uv_timer_t sweep_timer;
  char *sweep_cursor;          /* where the next step starts; NULL = the first state */

  /* deferred answers (answer.c) */
  uv_idle_t idle;
  svc_answer_t *ans_head, **ans_tail;

  /* counters */
  uint64_t rnd;                /* rand_fast state (jitter) */
  svc_stats_t st;
  size_t ops;                  /* live svc_op_t */
  svc_op_t *op_spare;          /* freed ops kept for reuse (op.c) */
  size_t nop_spare;
  svc_op_t *retry_ops;         /* ops in RETRY_WAIT */
  size_t work;                 /* svc__work_begin - end (life.c) */

  /* close (life.c, service.c) */
  bool draining;               /* svc_drain: no schedule, no token requests */
  bool closing;
  int handles_open;
  void (*close_cb)(void *arg);
  void *close_arg;

  /* Hooks: how a lower file starts work of a higher one. Wired by svc_open
   * (service.c); never NULL once the service is open. */
  /* schedule.c: e's planned refresh time came and e has no running op. */
  void (*on_due)(svc_t *svc, conn_entry_t *e);
  /* treq.c: the queue drained to half after the schedule paused. */
  void (*on_room)(svc_t *svc);
  /* op.c: a forced refresh that waited behind a commit of e now asks for
   * a refresh of the committed record (cb gets SVC_WAIT_FORCED answers). */
  void (*on_forced)(svc_t *svc, conn_entry_t *e, svc_conn_cb cb, void *arg);
  /* events_wait.c: a batch with events committed (webhooks.c delivers). */
  void (*on_events)(svc_t *svc);
};
/* clang-format on */

#endif
