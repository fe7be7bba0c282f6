/*
 * exchange.h - the token exchange grant (RFC 8693) on the refresh engine
 * (exchange.c): the subject token of a connection that takes it from
 * another connection, and what deleting that source does to its
 * dependents.
 */
#ifndef GRANTD_SERVICE_EXCHANGE_H
#define GRANTD_SERVICE_EXCHANGE_H

#include "service/ctx.h"

/* svc__exchange_start results besides 0 (send req) and negative (the
 * request cannot be built: a configuration error). */
#define SVC_EXCHANGE_WAIT \
  1 /* waiting for the subject connection's \
       refresh; the op stays SENDING and is \
       resubmitted (or ended) when it ends */
#define SVC_EXCHANGE_NO_SOURCE \
  2 /* the subject connection is gone or \
       cannot give a token: needs_reauth */
#define SVC_EXCHANGE_SOURCE_DOWN \
  3 /* its token expired and its refresh \
       failed transiently: retry later */

/* Builds the exchange request of op (SENDING, record loaded) into *req.
 * With a subject connection whose access token has less than
 * SVC_EXCHANGE_MIN_TTL_MS left, that connection is refreshed first (or its
 * running refresh joined) and SVC_EXCHANGE_WAIT returned; once it ends
 * the op's token request is submitted again (then any still-valid token
 * of the source is taken, so a provider of short tokens cannot loop it). */
int svc__exchange_start(svc_t *svc, svc_op_t *op, oauth_request_t *req, int64_t now);
#define SVC_EXCHANGE_MIN_TTL_MS 60000

/* The connection `id` was deleted: every idle token_exchange connection
 * taking its subject token from it is committed needs_reauth
 * ("subject_connection_deleted"). One running an op meets the missing
 * source at its next exchange instead. Cost: one record read per
 * token_exchange connection in the index. */
void svc__exchange_source_gone(svc_t *svc, const char *id);

#endif
