/*
 * op.h - ops, the single-flight unit per connection (op.c). The op type
 * and its state machine are in ctx.h.
 */
#ifndef GRANTD_SERVICE_OP_H
#define GRANTD_SERVICE_OP_H

#include "service/ctx.h"
#include "store/store.h"

/* A new op in state NEW (counted for svc_close); attach it with
 * svc__op_attach. */
svc_op_t *svc__op_new(svc_t *svc, svc_op_kind_t kind);
/* Moves op to state `to`; aborts on a move the machine does not allow (a
 * bug, never an input error). */
void svc__op_set(svc_op_t *op, svc_op_state_t to);
/* Makes op the running op of e: detaches e's previous op (its token and
 * forced waiters move to op, a put's callback gets GRANTD_ECONFLICT) and
 * unschedules e. */
void svc__op_attach(svc_t *svc, conn_entry_t *e, svc_op_t *op);
/* Detaches e's running op, if any, for a delete: its waiters get `err`. */
void svc__op_detach(svc_t *svc, conn_entry_t *e, int err);
/* Appends a waiter to an op (cb NULL: nothing). */
void svc__op_wait(svc_op_t *op, svc_wait_kind_t kind, svc_conn_cb cb, void *arg);

/* Queues op->next for commit (svc__conn_put) and moves op to COMMITTING.
 * When the commit completes: the entry (if still attached) is updated
 * from op->next and rescheduled at op->next.next_refresh_at, op->done_cb
 * runs, waiters are answered (see svc_wait_kind_t), the op is freed. A
 * failed commit answers waiters with the error (token readers get the old
 * record's verdict for a refresh), keeps the old record and reschedules
 * with backoff, or, for a rotated refresh token, keeps the op attached in
 * RETRY_WAIT and retries with backoff. */
void svc__op_commit(svc_t *svc, svc_op_t *op);

/* Ends an op without a commit (a refresh that could not or need not run):
 * detaches it from its entry, answers each waiter from `rec` (the stored
 * record, may be NULL) and `err` (0: nothing was needed), frees it. */
void svc__op_end(svc_t *svc, svc_op_t *op, int err, const conn_t *rec, int64_t now);
/* Frees an op (its waiters must have been answered or moved). */
void svc__op_free(svc_t *svc, svc_op_t *op);
/* Frees the ops svc__op_free() kept for reuse (at most 256; none are kept
 * once the service is closing). Called by svc_free(). */
void svc__op_spares_free(svc_t *svc);

/* svc_close: every commit retry (RETRY_WAIT) runs now, as its last
 * attempt; a failure then is logged as "rotated_token_unsaved". */
void svc__commit_retry_now_all(svc_t *svc);

/* How ops write a record: store_conn_replace (prev = the stored record a
 * refresh started from, NULL for other ops), replaceable by unit tests to
 * inject commit failures. */
extern int (*svc__conn_put)(store_t *s, const conn_t *c, const conn_t *prev, store_cb cb,
                            void *arg);

/* Commits a complete connection record (moved; the caller set every field
 * including revision, created_at, updated_at), creating or updating the
 * index entry, detaching any running op of that id (its token/forced
 * waiters move to this commit; they are answered from the committed
 * record) and, after the commit, rescheduling from rec->next_refresh_at
 * and calling cb(arg, err, committed record) (cb may be NULL). Returns 0
 * or a store error (GRANTD_ESHUTDOWN ...; then nothing changed and cb
 * never runs). */
int svc__conn_commit(svc_t *svc, conn_t *rec, svc_conn_cb cb, void *arg);

#endif
