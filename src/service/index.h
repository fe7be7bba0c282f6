/*
 * index.h - the connection index (index.c): find, add, update from a
 * record, remove, resync with the store. Entries are conn_entry_t (ctx.h).
 */
#ifndef GRANTD_SERVICE_INDEX_H
#define GRANTD_SERVICE_INDEX_H

#include "service/ctx.h"

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
/* Updates an entry's status/provider/expiry/failures from a record,
 * keeping the per-status and per-provider counts in step and logging +
 * counting a status change (event "status_change" with id, from, to and
 * c->last_error_code). Does not touch the schedule. */
void svc__entry_apply(svc_t *svc, conn_entry_t *e, const conn_t *c);
/* Unlinks e from the wheel, removes it from the table and frees it. e must
 * have no running op (svc__op_detach it first). */
void svc__entry_remove(svc_t *svc, conn_entry_t *e);
/* Re-reads id from the store and makes the index match (adds, updates,
 * reschedules, or removes the entry when the record is gone and it has
 * no running op; an undecodable record leaves the entry unscheduled).
 * Used after a failed write, when memory may be ahead of the store. */
void svc__entry_resync(svc_t *svc, const char *id);

#endif
