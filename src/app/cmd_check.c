/*
 * cmd_check.c - `grantd check`: decodes and unseals every record of a
 * read-only snapshot (providers, connections, states, webhook endpoints),
 * prints tallies and every record that fails.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/admin.h"
#include "base/err.h"
#include "base/mem.h"
#include "store/record.h"
#include "store/webhook.h"

typedef struct {
  admin_t *a;
  const char *db;
  unsigned long records, bad;
  admin_tally_t status, provider, keys, key_records;
  char **bad_lines;
  size_t nbad;
} check_t;

static void note_bad(check_t *k, const char *db, const char *key, size_t keylen, int err)
{
  /* A state key is a live single-use secret: show only its first bytes. */
  size_t shown = !strcmp(db, RECORD_DB_STATES) && keylen > 6 ? 6 : keylen;
  char line[700];
  snprintf(line, sizeof line, "  %s %.*s%s: %s (%s)", db, (int)(shown > 512 ? 512 : shown), key,
           shown < keylen ? "..." : "", err_name(err), err_str(err));
  k->bad_lines = xrealloc(k->bad_lines, (k->nbad + 1) * sizeof *k->bad_lines);
  k->bad_lines[k->nbad++] = xstrdup(line);
  k->bad++;
}

static int visit(void *arg, const char *key, size_t keylen, const void *val, size_t vlen)
{
  check_t *k = arg;
  k->records++;
  uint32_t ids[16];
  int n = store_ro_seal_ids(k->db, val, vlen, ids, 16);
  for (int i = 0; i < n && i < 16; i++) {
    char id[16];
    snprintf(id, sizeof id, "%u", ids[i]);
    admin_tally_add(&k->keys, id, 1);
    bool repeat = false;
    for (int j = 0; j < i; j++)
      repeat |= ids[j] == ids[i];
    if (!repeat)
      admin_tally_add(&k->key_records, id, 1);
  }
  if (!strcmp(k->db, RECORD_DB_CONNECTIONS)) {
    /* The full decode (with unsealing) for the verdict, the scheduling
     * view for the tallies. */
    int drc = store_ro_decode(k->a->ro, k->db, key, keylen, val, vlen);
    if (drc != 0) {
      note_bad(k, k->db, key, keylen, drc);
      return 0;
    }
    conn_sched_t s;
    if (conn_decode_sched(val, vlen, key, keylen, &s) == 0) {
      char prov[256];
      snprintf(prov, sizeof prov, "%.*s", (int)(s.provider.n > 255 ? 255 : s.provider.n),
               s.provider.p);
      admin_tally_add(&k->status, conn_status_name(s.status), 1);
      admin_tally_add(&k->provider, prov, 1);
    }
    return 0;
  }
  int drc = store_ro_decode(k->a->ro, k->db, key, keylen, val, vlen);
  if (drc != 0)
    note_bad(k, k->db, key, keylen, drc);
  return 0;
}

int cmd_check(admin_t *a)
{
  check_t k;
  memset(&k, 0, sizeof k);
  k.a = a;
  static const char *const dbs[] = {RECORD_DB_PROVIDERS, RECORD_DB_CONNECTIONS, RECORD_DB_STATES,
                                    RECORD_DB_WEBHOOKS};
  unsigned long counts[ARRAY_SIZE(dbs)];
  for (size_t i = 0; i < ARRAY_SIZE(dbs); i++) {
    k.db = dbs[i];
    unsigned long before = k.records;
    int rc = store_ro_raw_scan(a->ro, dbs[i], visit, &k);
    if (rc != 0) {
      admin_tally_free(&k.status);
      admin_tally_free(&k.provider);
      admin_tally_free(&k.keys);
      admin_tally_free(&k.key_records);
      for (size_t j = 0; j < k.nbad; j++)
        free(k.bad_lines[j]);
      free(k.bad_lines);
      return admin_fail(1, "cannot scan %s: %s", dbs[i], err_str(rc));
    }
    counts[i] = k.records - before;
  }
  printf("store %s\n", a->cfg.data_dir);
  printf("providers: %lu\nconnections: %lu\nauthorization states: %lu\nwebhook endpoints: %lu\n",
         counts[0], counts[1], counts[2], counts[3]);
  admin_tally_print(&k.status, "connections by status");
  admin_tally_print(&k.provider, "connections by provider");
  admin_tally_print(&k.keys, "sealed fields by key id");
  admin_tally_print(&k.key_records, "records by key id");
  printf("undecodable records: %lu\n", k.bad);
  for (size_t i = 0; i < k.nbad; i++) {
    printf("%s\n", k.bad_lines[i]);
    free(k.bad_lines[i]);
  }
  free(k.bad_lines);
  return k.bad ? 1 : 0;
}
