/*
 * masterkeys.c - the keyring's SIGHUP reload; see masterkeys.h.
 */
#include "app/masterkeys.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/keys.h"
#include "base/err.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"

typedef enum { MK_IDLE, MK_READING, MK_READING_AGAIN } mk_state_t;

struct masterkeys {
  uv_loop_t *loop;
  char *path;
  store_t *store;
  reseal_t *reseal;
  seal_keyring_t **slot;
  mk_state_t state;
  bool stopped; /* masterkeys_stop: the store and the job are going away */
};

masterkeys_t *masterkeys_new(uv_loop_t *loop, const char *path, store_t *store, reseal_t *reseal,
                             seal_keyring_t **slot)
{
  masterkeys_t *mk = xcalloc(1, sizeof *mk);
  mk->loop = loop;
  mk->path = path ? xstrdup(path) : NULL;
  mk->store = store;
  mk->reseal = reseal;
  mk->slot = slot;
  return mk;
}

/* The checks of masterkeys.h that need no store access. */
static int covers(const masterkeys_t *mk, const seal_keyring_t *kr, char *why, size_t n)
{
  uint32_t cur = 0;
  seal_keyring_current(*mk->slot, &cur);
  if (!seal_keyring_has(kr, cur)) {
    snprintf(why, n,
             "key id %u, the current key, is missing: records written since the last count "
             "may need it; make the new key current first, then remove this one once the "
             "re-seal pass is done",
             cur);
    return -1;
  }
  const store_census_t *c = reseal_census(mk->reseal);
  for (size_t i = 0; i < c->n; i++) {
    if (c->records[i] > 0 && !seal_keyring_has(kr, c->id[i])) {
      snprintf(why, n, "%llu records are sealed with key id %u, which the new keyring lacks",
               (unsigned long long)c->records[i], c->id[i]);
      return -1;
    }
  }
  return 0;
}

static void start_read(masterkeys_t *mk);

static void on_read(void *arg, int err, int sys_errno, buf_t *data)
{
  masterkeys_t *mk = arg;
  char why[500];
  seal_keyring_t *kr = NULL;
  char src[4200];
  snprintf(src, sizeof src, "master keys file %s", mk->path);
  int rc = -1;
  if (mk->stopped) {
    mk->state = MK_IDLE;
    return;
  }
  if (err != 0)
    snprintf(why, sizeof why, "%s%s%s", err_str(err), sys_errno ? ": " : "",
             sys_errno ? strerror(sys_errno) : "");
  else if (keys_keyring_text(src, data->data ? data->data : "", data->len, &kr, why, sizeof why) ==
             0 &&
           covers(mk, kr, why, sizeof why) == 0) {
    int src_rc = store_set_keyring(mk->store, kr);
    if (src_rc == 0)
      rc = 0;
    else
      snprintf(why, sizeof why, "%s",
               src_rc == GRANTD_ESTORE_WRONG_KEY
                 ? "a key differs from the one the store knows under its id"
                 : err_str(src_rc));
  }
  if (rc != 0) {
    seal_keyring_free(kr);
    log_warn("master_keys_reload_failed", "file", mk->path, "reason", why, "keeping",
             "the keyring in use");
  } else {
    uint32_t old_cur = 0, cur = 0;
    seal_keyring_current(*mk->slot, &old_cur);
    seal_keyring_current(kr, &cur);
    seal_keyring_free(*mk->slot);
    *mk->slot = kr;
    log_info("master_keys_reloaded", "file", mk->path, "#keys", LOG_I64(seal_keyring_count(kr)),
             "#current_key_id", LOG_I64(cur));
    if (cur != old_cur)
      reseal_kick(mk->reseal);
  }
  bool again = mk->state == MK_READING_AGAIN;
  mk->state = MK_IDLE;
  if (again)
    start_read(mk);
}

static void start_read(masterkeys_t *mk)
{
  int rc = file_read_async(mk->loop, mk->path, KEYS_KEYRING_FILE_MAX, on_read, mk);
  if (rc != 0) {
    log_warn("master_keys_reload_failed", "file", mk->path, "reason", uv_strerror(rc));
    return;
  }
  mk->state = MK_READING;
}

void masterkeys_reload(masterkeys_t *mk)
{
  if (mk->stopped)
    return;
  if (mk->path == NULL) {
    log_info("master_keys_not_reloaded", "reason",
             "the keyring is not a file (--master-keys-file): it is read at start-up only");
    return;
  }
  if (mk->state != MK_IDLE) {
    mk->state = MK_READING_AGAIN;
    return;
  }
  start_read(mk);
}

void masterkeys_stop(masterkeys_t *mk)
{
  if (mk != NULL)
    mk->stopped = true;
}

void masterkeys_free(masterkeys_t *mk)
{
  if (mk == NULL)
    return;
  free(mk->path);
  free(mk);
}
