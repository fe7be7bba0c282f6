/*
 * cmd_reap.c - `grantd reap --dry-run`: the connections the server's
 * reaper (service/reaper.h) would delete, from a read-only snapshot.
 */
#include <stdio.h>

#include "app/admin.h"
#include "base/clock.h"
#include "base/err.h"
#include "service/reaper.h"

typedef struct {
  int64_t now, age_ms;
  unsigned long due, bad;
} reap_list_t;

static int reap_one(void *arg, const conn_t *c)
{
  reap_list_t *l = arg;
  int64_t since;
  if (!reaper_due(c, l->now, l->age_ms, &since))
    return 0;
  char when[40] = "-";
  if (since > 0)
    clock_format_rfc3339(since, when);
  printf("%-24s %-16s %-16s %-13s %-21s %lld\n", c->id, c->tenant ? c->tenant : "-",
         c->provider ? c->provider : "-", conn_status_name(c->status), when,
         (long long)((l->now - since) / 1000));
  l->due++;
  return 0;
}

static void reap_bad(void *arg, const char *db, const char *key, size_t keylen, int err)
{
  reap_list_t *l = arg;
  l->bad++;
  admin_warn_bad(db, key, keylen, err, "cannot be read");
}

int cmd_reap(admin_t *a)
{
  if (!a->dry_run)
    return admin_fail(2, "grantd reap only lists (--dry-run); the server deletes "
                         "(grantd serve --reap-after S)");
  if (a->cfg.reap_after_s <= 0)
    return admin_fail(2, "grantd reap --dry-run needs an age: --reap-after S or "
                         "GRANTD_REAP_AFTER_S");
  reap_list_t l = {clock_now_ms(), a->cfg.reap_after_s * 1000, 0, 0};
  printf("%-24s %-16s %-16s %-13s %-21s %s\n", "ID", "TENANT", "PROVIDER", "STATUS", "SINCE",
         "AGE_S");
  int rc = store_ro_conn_scan(a->ro, reap_one, reap_bad, &l);
  if (rc != 0)
    return admin_fail(1, "cannot list connections: %s", err_str(rc));
  printf("%lu connection(s) would be reaped (unchanged for %lld s or more)\n", l.due,
         (long long)a->cfg.reap_after_s);
  if (l.bad)
    return admin_fail(1, "%lu connection(s) could not be read (run grantd check)", l.bad);
  return 0;
}
