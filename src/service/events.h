/*
 * events.h - connection events as the API shows them (the pull feed, and
 * the Standard Webhooks payload): what the store records with every
 * connection change (store.h, "connection events") and how a committed
 * event is rendered. Never a token or secret: the data object holds the
 * connection's id, tenant, provider, last_error and metadata only.
 *
 * Rendered event (one JSON object, compact):
 *   {"id": "evt_<16 hex digits of seq>", "seq": N, "type": "connection.*",
 *    "timestamp": "<RFC 3339, commit time>",
 *    "data": {"status": "...", "previous_status": "..." | null,
 *             "connection": "...", "tenant": "..." | null,
 *             "provider": "...", "last_error": {...} | null,
 *             "metadata": {...}}}
 * The id is derived from the sequence number, so a re-sent event keeps
 * its id (receivers de-duplicate on it).
 */
#ifndef GRANTD_SERVICE_EVENTS_H
#define GRANTD_SERVICE_EVENTS_H

#include "base/buf.h"
#include "store/store.h"

/* The store's data callback (store_ev_data_fn): appends c's data object
 * (members listed above, without status) to out. Always 0. */
int svc_events_data(void *arg, const conn_t *c, buf_t *out);

/* Appends the rendered event (above) to out. */
void svc_event_render(const store_event_t *e, buf_t *out);

/* "evt_" + 16 lower-case hex digits of seq, NUL-terminated. */
void svc_event_id(uint64_t seq, char out[21]);

#endif
