/*
 * outbox.c - event types of connection changes and the event value layout
 * (outbox.h).
 */
#include "store/outbox.h"

#include <string.h>

static const char *const type_names[OUTBOX_TYPE_COUNT] = {
  [OUTBOX_CREATED] = "connection.created",
  [OUTBOX_AUTHORIZED] = "connection.authorized",
  [OUTBOX_REFRESH_FAILING] = "connection.refresh_failing",
  [OUTBOX_RECOVERED] = "connection.recovered",
  [OUTBOX_NEEDS_REAUTH] = "connection.needs_reauth",
  [OUTBOX_ERROR] = "connection.error",
  [OUTBOX_REVOKED] = "connection.revoked",
  [OUTBOX_DELETED] = "connection.deleted",
  [OUTBOX_RT_LOST] = "connection.refresh_token_lost_in_restart",
};

const char *outbox_type_name(outbox_type_t t)
{
  if ((int)t <= OUTBOX_NONE || t >= OUTBOX_TYPE_COUNT)
    return NULL;
  return type_names[t];
}

const char *outbox_status_name(uint8_t st)
{
  if (st == OUTBOX_STATUS_DELETED)
    return "deleted";
  if (st >= CONN_STATUS_COUNT)
    return NULL;
  return conn_status_name((conn_status_t)st);
}

static outbox_type_t transition(conn_status_t prev, conn_status_t next, unsigned flags)
{
  if (prev == next)
    return OUTBOX_NONE;
  switch (next) {
  case CONN_ACTIVE: return prev == CONN_PENDING ? OUTBOX_AUTHORIZED : OUTBOX_RECOVERED;
  case CONN_REFRESH_FAILING: return OUTBOX_REFRESH_FAILING;
  case CONN_NEEDS_REAUTH: return (flags & OUTBOX_F_RT_LOST) ? OUTBOX_RT_LOST : OUTBOX_NEEDS_REAUTH;
  case CONN_ERROR: return OUTBOX_ERROR;
  case CONN_REVOKED: return OUTBOX_REVOKED;
  case CONN_PENDING: return OUTBOX_NONE;
  }
  return OUTBOX_NONE;
}

size_t outbox_put_events(bool existed, conn_status_t prev, conn_status_t next, grant_t grant,
                         unsigned flags, outbox_type_t out[OUTBOX_MAX_PER_CHANGE])
{
  size_t n = 0;
  if (!existed) {
    out[n++] = OUTBOX_CREATED;
    if (next == CONN_ACTIVE && grant == GRANT_REFRESH_TOKEN)
      return n; /* imported tokens: nothing was authorized here */
    prev = CONN_PENDING;
  }
  outbox_type_t t = transition(prev, next, flags);
  if (t != OUTBOX_NONE)
    out[n++] = t;
  return n;
}

size_t outbox_delete_events(bool existed, conn_status_t prev, unsigned flags,
                            outbox_type_t out[OUTBOX_MAX_PER_CHANGE])
{
  size_t n = 0;
  if (!existed)
    return 0;
  if ((flags & OUTBOX_F_REVOKED) && prev != CONN_REVOKED)
    out[n++] = OUTBOX_REVOKED;
  out[n++] = OUTBOX_DELETED;
  return n;
}

void outbox_hdr_write(uint8_t hdr[OUTBOX_HDR], outbox_type_t t, uint8_t status, uint8_t prev,
                      int64_t ts_ms)
{
  hdr[0] = OUTBOX_VERSION;
  hdr[1] = (uint8_t)t;
  hdr[2] = status;
  hdr[3] = prev;
  uint64_t v = (uint64_t)ts_ms;
  for (int i = 0; i < 8; i++)
    hdr[4 + i] = (uint8_t)(v >> (56 - 8 * i));
}

int outbox_decode(const void *val, size_t n, outbox_ev_t *out)
{
  const uint8_t *p = val;
  if (n < OUTBOX_HDR || p[0] != OUTBOX_VERSION || outbox_type_name((outbox_type_t)p[1]) == NULL)
    return -1;
  out->type = (outbox_type_t)p[1];
  out->status = p[2];
  out->prev = p[3];
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[4 + i];
  out->ts_ms = (int64_t)v;
  out->data = (const char *)p + OUTBOX_HDR;
  out->data_len = n - OUTBOX_HDR;
  return 0;
}

void outbox_key(uint8_t k[8], uint64_t seq)
{
  for (int i = 0; i < 8; i++)
    k[i] = (uint8_t)(seq >> (56 - 8 * i));
}

uint64_t outbox_key_seq(const void *k)
{
  const uint8_t *p = k;
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}
