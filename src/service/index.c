/*
 * index.c - the connection index: one compact entry per stored connection
 * in a chained hash table keyed by id, with the status bookkeeping that
 * follows a record (per-status and per-provider counts, status_change
 * logs and counters).
 *
 * Memory. An idle connection costs one malloc'd conn_entry_t (88 bytes of
 * fields + the id + malloc's 8-16 bytes) and one bucket pointer (the table
 * doubles at load factor 1, so 8-16 bytes per entry): ~130-200 bytes with
 * typical ids, well inside the 512-byte budget. Nothing else is kept per
 * connection; tokens stay sealed in the store until a read or refresh.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "service/index.h"
#include "service/providers.h"
#include "service/schedule.h"
#include "store/store.h"

/* ---- hashing ------------------------------------------------------------ */

static uint32_t hash_id(const svc_t *svc, const char *id)
{
  /* FNV-1a with a random per-process seed, then a murmur3 finaliser for
   * good low bits (buckets are a power of two). */
  uint64_t h = 0xcbf29ce484222325ULL ^ svc->hseed;
  for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
    h ^= *p;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return (uint32_t)h;
}

static void table_grow(svc_t *svc)
{
  size_t n = svc->nbuckets ? svc->nbuckets * 2 : 1024;
  conn_entry_t **b = xcalloc(n, sizeof *b);
  for (size_t i = 0; i < svc->nbuckets; i++) {
    conn_entry_t *e = svc->buckets[i];
    while (e) {
      conn_entry_t *next = e->hnext;
      size_t k = e->hash & (n - 1);
      e->hnext = b[k];
      b[k] = e;
      e = next;
    }
  }
  free(svc->buckets);
  svc->buckets = b;
  svc->nbuckets = n;
}

conn_entry_t *svc__entry_find(svc_t *svc, const char *id)
{
  if (svc->nbuckets == 0 || id == NULL)
    return NULL;
  uint32_t h = hash_id(svc, id);
  for (conn_entry_t *e = svc->buckets[h & (svc->nbuckets - 1)]; e; e = e->hnext)
    if (e->hash == h && strcmp(e->id, id) == 0)
      return e;
  return NULL;
}

conn_entry_t *svc__entry_add_raw(svc_t *svc, const char *id, size_t idlen, const char *prov,
                                 size_t provlen, conn_status_t status, grant_t grant,
                                 int64_t expires_at, uint32_t failures)
{
  conn_entry_t *e = xmalloc(offsetof(conn_entry_t, id) + idlen + 1);
  memset(e, 0, offsetof(conn_entry_t, id));
  memcpy(e->id, id, idlen);
  e->id[idlen] = '\0';
  wheel_entry_init(&e->wheel);
  e->hash = hash_id(svc, e->id);
  e->prov = svc__prov_get_n(svc, prov, provlen);
  e->prov->uses++;
  e->status = (uint8_t)status;
  e->grant = (uint8_t)grant;
  e->expires_at = expires_at;
  e->failures = failures;
  if (svc->count + 1 > svc->nbuckets)
    table_grow(svc);
  size_t k = e->hash & (svc->nbuckets - 1);
  e->hnext = svc->buckets[k];
  svc->buckets[k] = e;
  svc->count++;
  svc->by_status[e->status]++;
  return e;
}

conn_entry_t *svc__entry_add(svc_t *svc, const conn_t *c)
{
  const char *p = c->provider ? c->provider : "";
  return svc__entry_add_raw(svc, c->id, strlen(c->id), p, strlen(p), c->status, c->grant,
                            c->expires_at, c->failures);
}

void svc__entry_apply(svc_t *svc, conn_entry_t *e, const conn_t *c)
{
  if (e->status != (uint8_t)c->status) {
    const char *from = conn_status_name((conn_status_t)e->status);
    const char *to = conn_status_name(c->status);
    svc->by_status[e->status]--;
    svc->by_status[c->status]++;
    log_info("status_change", "id", e->id, "from", from, "to", to, "reason", c->last_error_code);
    char labels[96];
    snprintf(labels, sizeof labels, "from=\"%s\",to=\"%s\"", from, to);
    metrics_counter_inc("grantd_status_changes_total", labels);
    e->status = (uint8_t)c->status;
  }
  const char *pname = c->provider ? c->provider : "";
  if (strcmp(e->prov->p.name, pname) != 0) {
    e->prov->uses--;
    e->prov = svc__prov_get(svc, pname);
    e->prov->uses++;
  }
  e->grant = (uint8_t)c->grant;
  e->expires_at = c->expires_at;
  e->failures = c->failures;
}

void svc__entry_remove(svc_t *svc, conn_entry_t *e)
{
  wheel_unlink(&e->wheel);
  size_t k = e->hash & (svc->nbuckets - 1);
  conn_entry_t **pp = &svc->buckets[k];
  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
  e->prov->uses--;
  svc->by_status[e->status]--;
  svc->count--;
  free(e);
}

void svc__entry_resync(svc_t *svc, const char *id)
{
  conn_t c;
  conn_entry_t *e = svc__entry_find(svc, id);
  int rc = store_conn_get(svc->store, id, &c);
  if (rc == GRANTD_ENOT_FOUND) {
    if (e && e->op == NULL)
      svc__entry_remove(svc, e);
    return;
  }
  if (rc != 0) {
    /* Undecodable: keep whatever the entry says, unscheduled. */
    if (e)
      wheel_unlink(&e->wheel);
    return;
  }
  if (e == NULL)
    e = svc__entry_add(svc, &c);
  else
    svc__entry_apply(svc, e, &c);
  if (e->op == NULL)
    svc__schedule(svc, e, c.next_refresh_at);
  conn_free(&c);
}
