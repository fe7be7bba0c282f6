/*
 * refresh.h - refreshing one connection (refresh.c).
 */
#ifndef GRANTD_SERVICE_REFRESH_H
#define GRANTD_SERVICE_REFRESH_H

#include "service/ctx.h"
#include "store/store.h"

/* Starts (or joins, when e has a running op) a refresh of e; cb (may be
 * NULL: a scheduled refresh) waits on it as a `kind` waiter. A scheduled
 * refresh is queued at the token's expiry, the others at now. */
void svc__refresh(svc_t *svc, conn_entry_t *e, svc_wait_kind_t kind, svc_conn_cb cb, void *arg);

/* svc->on_due: a scheduled refresh of e. */
void svc__refresh_due(svc_t *svc, conn_entry_t *e);
/* svc->on_forced: a forced refresh of e for cb. */
void svc__refresh_forced(svc_t *svc, conn_entry_t *e, svc_conn_cb cb, void *arg);

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

/* How a refresh reads its record: store_conn_get, replaceable by unit
 * tests to inject read failures. */
extern int (*svc__conn_get)(store_t *s, const char *id, conn_t *out);

#endif
