/*
 * outcome.h - the refresh outcome (outcome.c): token result -> next
 * record, its counters, the restart rule.
 */
#ifndef GRANTD_SERVICE_OUTCOME_H
#define GRANTD_SERVICE_OUTCOME_H

#include "service/ctx.h"

/* Builds the next record of a refresh or grant from the token result:
 * new tokens (rotated refresh token kept only if one came back), expiry,
 * scopes, extra, status, failures, last_error, next_refresh_at (policy).
 * `unknown` marks an outcome unknown because the request may have reached
 * the provider. Moves token strings out of tok. *out gets revision+1 and
 * updated_at = now. prov may be NULL (no policy overrides). */
void svc__next_record(svc_t *svc, const conn_t *old, const svc_prov_t *prov, token_result_t *tok,
                      int neterr, bool unknown, int64_t now, conn_t *out);

/* The first definite outcome of a connection that was due when the
 * service opened (CONN_ENTRY_RESTART_OVERDUE on e): clears the mark, and
 * when the provider answered invalid_grant to the stored refresh token
 * (given: false, the record came from the store) rewrites next's
 * last_error as "refresh_token_lost_in_restart", logged and counted. A
 * transient outcome keeps the mark. */
void svc__restart_outcome(conn_entry_t *e, conn_t *next, bool given, const token_result_t *tok,
                          bool unknown);

/* Logs and counts the refresh outcome (grantd_refreshes_total{outcome}). */
void svc__count_outcome(svc_t *svc, token_outcome_t o, bool unknown);

#endif
