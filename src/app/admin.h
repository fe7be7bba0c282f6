/*
 * admin.h - grantd's operator commands beside `serve`: backup, check, list,
 * inspect, export, reap, healthcheck.
 *
 * Each command is one row of a table (admin.c) naming its positional
 * arguments, its own options and its runner. Every command accepts
 * --help (exit 0) and the options of `grantd serve` (config.h: --data,
 * --listen, the master key ...), from flags or GRANTD_* variables, so it
 * runs with the environment of the server it serves. Bad usage exits 2
 * with one line; a failure exits 1 with one line ("grantd: ..."), never a
 * secret. The store commands open it read-only (store_ro.h) and so run
 * beside a serving process on the same data directory; they never take
 * the serve lock and never generate keys.
 */
#ifndef GRANTD_APP_ADMIN_H
#define GRANTD_APP_ADMIN_H

#include <stdbool.h>

#include "app/config.h"
#include "store/store_ro.h"

#define ADMIN_MAX_POS 1

typedef struct {
  config_t cfg;
  const char *pos[ADMIN_MAX_POS];
  int npos;
  const char *tenant;      /* --tenant, or NULL */
  const char *status;      /* --status, or NULL */
  bool dry_run;            /* reap: --dry-run */
  seal_keyring_t *keyring; /* store commands: the master key as key id 1 */
  store_ro_t *ro;          /* store commands: the snapshot */
} admin_t;

/* Runs `grantd CMD ...` when argv[1] names an admin command and returns its
 * exit status; returns -1 (and does nothing) for any other command. */
int admin_main(int argc, char **argv);

/* Prints the admin commands, one line each (main.c's usage). */
void admin_usage(FILE *out);

/* The runners (cmd_*.c). Each returns the exit status. */
int cmd_backup(admin_t *a);
int cmd_check(admin_t *a);
int cmd_list(admin_t *a);
int cmd_inspect(admin_t *a);
int cmd_export(admin_t *a);
int cmd_healthcheck(admin_t *a);
int cmd_reap(admin_t *a);

/* Prints "grantd: <message>" on stderr; returns status (for `return
 * admin_fail(1, ...)`). */
int admin_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "grantd: DB KEY WHAT: error_name" for a record that failed to
 * decode (a store_ro_bad_fn's report). */
void admin_warn_bad(const char *db, const char *key, size_t keylen, int err, const char *what);

/* Accumulates name -> count pairs (check's tallies), in first-seen order. */
typedef struct {
  char **names;
  unsigned long *counts;
  size_t n, cap;
} admin_tally_t;
void admin_tally_add(admin_tally_t *t, const char *name, unsigned long by);
/* Prints "label: name1 N1, name2 N2" ("label: none" when empty), sorted
 * by name, then frees the tally. */
void admin_tally_print(admin_tally_t *t, const char *label);
void admin_tally_free(admin_tally_t *t);

#endif
