/*
 * cmd_list.c - `grantd list` and `grantd inspect ID`: read-only views of
 * connections for an operator, never secrets.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_json.h"
#include "app/admin.h"
#include "base/clock.h"
#include "base/err.h"

typedef struct {
  const char *tenant;
  int status; /* -1 = all */
  unsigned long shown, bad;
} list_t;

static int list_one(void *arg, const conn_t *c)
{
  list_t *l = arg;
  if ((l->tenant && (c->tenant == NULL || strcmp(c->tenant, l->tenant))) ||
      (l->status >= 0 && (int)c->status != l->status))
    return 0;
  char exp[40] = "-";
  if (c->expires_at > 0)
    clock_format_rfc3339(c->expires_at, exp);
  printf("%-24s %-16s %-16s %-18s %-15s %s\n", c->id, c->tenant ? c->tenant : "-",
         c->provider ? c->provider : "-", grant_name(c->grant), conn_status_name(c->status), exp);
  l->shown++;
  return 0;
}

static void list_bad(void *arg, const char *db, const char *key, size_t keylen, int err)
{
  list_t *l = arg;
  l->bad++;
  admin_warn_bad(db, key, keylen, err, "cannot be read");
}

int cmd_list(admin_t *a)
{
  list_t l = {a->tenant, -1, 0, 0};
  if (a->status != NULL) {
    conn_status_t st;
    if (conn_status_parse(a->status, &st) != 0)
      return admin_fail(2,
                        "invalid --status '%s': expected pending, active, refresh_failing, "
                        "needs_reauth, error or revoked",
                        a->status);
    l.status = (int)st;
  }
  printf("%-24s %-16s %-16s %-18s %-15s %s\n", "ID", "TENANT", "PROVIDER", "GRANT", "STATUS",
         "EXPIRES_AT");
  int rc = store_ro_conn_scan(a->ro, list_one, list_bad, &l);
  if (rc != 0)
    return admin_fail(1, "cannot list connections: %s", err_str(rc));
  if (l.bad)
    return admin_fail(1, "%lu connection(s) could not be read (run grantd check)", l.bad);
  return 0;
}

int cmd_inspect(admin_t *a)
{
  const char *id = a->pos[0];
  conn_t c;
  int rc = store_ro_conn_get(a->ro, id, &c);
  if (rc == GRANTD_ENOT_FOUND)
    return admin_fail(1, "no connection '%s'", id);
  if (rc != 0)
    return admin_fail(1, "connection '%s' cannot be read: %s (%s)", id, err_name(rc), err_str(rc));
  json_t *o = api_conn_to_json(&c);
  provider_t p;
  if (c.provider && store_ro_provider_get(a->ro, c.provider, &p) == 0) {
    json_t *pj = api_provider_to_json(&p);
    json_t *brief = json_object();
    static const char *const keep[] = {"name",      "issuer",           "authorize_url",
                                       "token_url", "revoke_url",       "refresh_url",
                                       "client_id", "has_client_secret"};
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
      json_object_set(brief, keep[i], json_object_get(pj, keep[i]));
    json_object_set_new(o, "provider_config", brief);
    json_decref(pj);
    provider_free(&p);
  } else {
    json_object_set_new(o, "provider_config", json_null());
  }
  char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  puts(text);
  free(text);
  json_decref(o);
  conn_free(&c);
  return 0;
}
