/*
 * admin.c - the command table, argument parsing and store opening shared
 * by the admin commands; see admin.h.
 */
#include "app/admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/keys.h"
#include "base/err.h"
#include "base/mem.h"

/* clang-format off */
typedef struct {
  const char *name;
  const char *args;        /* usage after the name */
  const char *summary;     /* one line for `grantd help` */
  const char *help;        /* the rest of --help */
  int npos;                /* positional arguments required */
  bool tenant, status;     /* accepts --tenant / --status */
  bool store;              /* opens the store read-only */
  int (*run)(admin_t *a);
} admin_cmd_t;

static const admin_cmd_t cmds[] = {
  {"backup", "DEST", "hot, compacted copy of the store into the new directory DEST",
   "Copies one consistent snapshot of the store (LMDB copy with compaction)\n"
   "while `grantd serve` keeps running. DEST must not exist; it is created\n"
   "0700 and receives data.mdb, plus the api-key and master-key files when\n"
   "the data directory holds them. Restore: run `grantd serve --data DEST`.\n",
   1, false, false, false, cmd_backup},
  {"check", "", "decode and unseal every record; counts; exit 1 if any is bad",
   "Opens the store read-only (safe beside a running server), decodes and\n"
   "unseals every provider, connection and authorization state, and prints\n"
   "counts by status, by provider and by sealing key id, then every record\n"
   "that fails. Exit 0 when all are readable, 1 otherwise.\n",
   0, false, false, true, cmd_check},
  {"list", "[--tenant T] [--status S]", "list connections (never secrets)",
   "Prints one line per connection, in id order: id, tenant, provider,\n"
   "grant, status, access-token expiry. --status is one of pending, active,\n"
   "refresh_failing, needs_reauth, error, revoked.\n",
   0, true, true, true, cmd_list},
  {"inspect", "ID", "show one connection as JSON (never secrets)",
   "Prints connection ID as GET /v1/connections/ID answers it (secrets\n"
   "appear only as has_* booleans) with its provider's name and endpoints.\n",
   1, false, false, true, cmd_inspect},
  {"export", "[--tenant T]", "connections as NDJSON for POST /v1/connections:import",
   "Writes every connection (of tenant T) as one line of the NDJSON that\n"
   "POST /v1/connections:import accepts, SECRETS INCLUDED (tokens, client\n"
   "secrets, passwords): a migration tool. Refuses to write to a terminal.\n"
   "  grantd export > conns.ndjson\n"
   "  curl -H \"Authorization: Bearer $KEY\" --data-binary @conns.ndjson \\\n"
   "       http://HOST:8484/v1/connections:import\n"
   "Tokens of authorization-code and imported connections are exported as\n"
   "imports; client-credentials and password connections fetch anew.\n"
   "Providers are not exported (create them first on the target).\n",
   0, true, false, true, cmd_export},
  {"reap", "--dry-run [--reap-after S]", "list the connections the reaper would delete",
   "Lists, from a read-only snapshot, the connections in needs_reauth, error\n"
   "or pending that have not changed for --reap-after seconds\n"
   "(GRANTD_REAP_AFTER_S, as the server reads it): id, tenant, provider,\n"
   "status, since, age. Deleting is the server's job (grantd serve\n"
   "--reap-after S, optionally --reap-revoke; --reap-dry-run logs only), so\n"
   "--dry-run is required. Exit 0; 2 without --dry-run or a positive age.\n",
   0, false, false, true, cmd_reap},
  {"healthcheck", "", "GET /healthz on the listen address; exit 0 when ready",
   "Asks the server at --listen (GRANTD_LISTEN; 0.0.0.0 and :: are asked\n"
   "on loopback) for /healthz. Exit 0 on 200, 1 otherwise. For container\n"
   "HEALTHCHECKs; needs no API key.\n",
   0, false, false, false, cmd_healthcheck},
};
/* clang-format on */

int admin_fail(int status, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("grantd: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return status;
}

void admin_warn_bad(const char *db, const char *key, size_t keylen, int err, const char *what)
{
  fprintf(stderr, "grantd: %s %.*s %s: %s\n", db, (int)(keylen > 512 ? 512 : keylen), key, what,
          err_name(err));
}

void admin_usage(FILE *out)
{
  for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
    char head[64];
    snprintf(head, sizeof head, "%s %s", cmds[i].name, cmds[i].args);
    fprintf(out, "       grantd %-34s %s\n", head, cmds[i].summary);
  }
}

static void cmd_usage(const admin_cmd_t *c, FILE *out)
{
  fprintf(out, "usage: grantd %s %s%s[options]\n\n%s\n", c->name, c->args, *c->args ? " " : "",
          c->help);
  fprintf(out,
          "It reads the options of `grantd serve` (flags or GRANTD_* variables),\n"
          "chiefly --data DIR%s.\n",
          c->store ? " and the master key (GRANTD_MASTER_KEY, GRANTD_MASTER_KEY_FILE or\n"
                     "DIR/master-key)"
          : c->run == cmd_healthcheck ? " and --listen"
                                      : "");
}

/* Splits argv into positionals, the command's own options and serve
 * options (handed to config_load). 0, 1 for --help, or 2 (usage error,
 * printed). */
static int parse(const admin_cmd_t *c, admin_t *a, int argc, char **argv)
{
  char **cargv = xcalloc((size_t)argc + 1, sizeof *cargv);
  int cn = 0, rc = 0;
  for (int i = 2; i < argc && rc == 0; i++) {
    const char *s = argv[i];
    const char **own = NULL;
    size_t ol = 0;
    if (c->tenant && !strncmp(s, "--tenant", 8) && (s[8] == '\0' || s[8] == '='))
      own = &a->tenant, ol = 8;
    else if (c->status && !strncmp(s, "--status", 8) && (s[8] == '\0' || s[8] == '='))
      own = &a->status, ol = 8;
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      rc = 1;
    } else if (c->run == cmd_reap && !strcmp(s, "--dry-run")) {
      a->dry_run = true;
    } else if (own != NULL) {
      if (s[ol] == '=')
        *own = s + ol + 1;
      else if (i + 1 < argc)
        *own = argv[++i];
      else
        rc = admin_fail(2, "option %.*s needs a value", (int)ol, s);
    } else if (s[0] == '-' && s[1] != '\0') {
      int ar = config_option_arity(s);
      if (ar < 0) {
        rc = admin_fail(2, "unknown option '%s' (see grantd %s --help)", s, c->name);
      } else {
        cargv[cn++] = argv[i];
        if (ar == 1 && i + 1 < argc)
          cargv[cn++] = argv[++i];
      }
    } else if (a->npos < c->npos) {
      a->pos[a->npos++] = s;
    } else {
      rc = admin_fail(2, "unexpected argument '%s' (see grantd %s --help)", s, c->name);
    }
  }
  if (rc == 0 && a->npos < c->npos)
    rc = admin_fail(2, "usage: grantd %s %s (see grantd %s --help)", c->name, c->args, c->name);
  if (rc == 0) {
    char err[512];
    if (config_load(&a->cfg, cn, cargv, 0, err, sizeof err) != 0)
      rc = admin_fail(2, "%s", err);
  }
  free(cargv);
  return rc;
}

static int open_store(admin_t *a)
{
  char err[512];
  uint8_t master[SEAL_KEY_LEN];
  int rc = keys_load_master(&a->cfg, master, err, sizeof err);
  if (rc != 0)
    return admin_fail(rc == -2 ? 2 : 1, "%s", err);
  rc = keys_keyring(&a->cfg, master, &a->keyring, err, sizeof err);
  mem_wipe(master, sizeof master);
  if (rc != 0)
    return admin_fail(rc == -2 ? 2 : 1, "%s", err);
  const char *why = NULL;
  rc = store_ro_open(&a->ro, a->cfg.data_dir, a->keyring, &why);
  if (rc == GRANTD_ENOT_FOUND)
    return admin_fail(1, "no store in %s", a->cfg.data_dir);
  if (rc == GRANTD_ESTORE_WRONG_KEY)
    return admin_fail(1, "the master key does not open the store in %s", a->cfg.data_dir);
  if (rc != 0)
    return admin_fail(1, "cannot open the store in %s: %s", a->cfg.data_dir,
                      why ? why : err_str(rc));
  return 0;
}

int admin_main(int argc, char **argv)
{
  const admin_cmd_t *c = NULL;
  for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
    if (!strcmp(argv[1], cmds[i].name))
      c = &cmds[i];
  if (c == NULL)
    return -1;
  admin_t a;
  memset(&a, 0, sizeof a);
  int rc = parse(c, &a, argc, argv);
  if (rc == 1) {
    cmd_usage(c, stdout);
    rc = 0;
  } else if (rc == 0 && (!c->store || (rc = open_store(&a)) == 0)) {
    rc = c->run(&a);
  }
  store_ro_close(a.ro);
  seal_keyring_free(a.keyring);
  config_free(&a.cfg);
  return rc;
}

void admin_tally_add(admin_tally_t *t, const char *name, unsigned long by)
{
  for (size_t i = 0; i < t->n; i++) {
    if (!strcmp(t->names[i], name)) {
      t->counts[i] += by;
      return;
    }
  }
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 8;
    t->names = xrealloc(t->names, t->cap * sizeof *t->names);
    t->counts = xrealloc(t->counts, t->cap * sizeof *t->counts);
  }
  t->names[t->n] = xstrdup(name);
  t->counts[t->n++] = by;
}

void admin_tally_print(admin_tally_t *t, const char *label)
{
  /* Insertion sort by name: tallies are short (statuses, providers, keys). */
  for (size_t i = 1; i < t->n; i++) {
    for (size_t j = i; j > 0 && strcmp(t->names[j - 1], t->names[j]) > 0; j--) {
      char *n = t->names[j];
      unsigned long c = t->counts[j];
      t->names[j] = t->names[j - 1];
      t->counts[j] = t->counts[j - 1];
      t->names[j - 1] = n;
      t->counts[j - 1] = c;
    }
  }
  printf("%s:", label);
  for (size_t i = 0; i < t->n; i++)
    printf("%s %s=%lu", i ? "," : "", t->names[i], t->counts[i]);
  printf("%s\n", t->n ? "" : " none");
  admin_tally_free(t);
}

void admin_tally_free(admin_tally_t *t)
{
  for (size_t i = 0; i < t->n; i++)
    free(t->names[i]);
  free(t->names);
  free(t->counts);
  memset(t, 0, sizeof *t);
}
