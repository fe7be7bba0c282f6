/*
 * cmd_backup.c - `grantd backup DEST`: a hot, consistent, compacted copy of
 * the store (store_ro_backup) plus the data directory's key files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app/admin.h"
#include "base/err.h"
#include "base/mem.h"

/* Copies DIR/name to DEST/name (0600, O_EXCL) when it exists.
 * 0, or -1 with errno. */
static int copy_key_file(const char *dir, const char *dest, const char *name)
{
  char from[4200], to[4200];
  snprintf(from, sizeof from, "%s/%s", dir, name);
  snprintf(to, sizeof to, "%s/%s", dest, name);
  int in = open(from, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return errno == ENOENT ? 0 : -1;
  int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    close(in);
    return -1;
  }
  char buf[1024];
  ssize_t n;
  int rc = 0;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n)
      rc = -1;
  if (n < 0 || fsync(out) != 0)
    rc = -1;
  mem_wipe(buf, sizeof buf);
  close(in);
  close(out);
  return rc;
}

int cmd_backup(admin_t *a)
{
  const char *dest = a->pos[0];
  const char *why = NULL;
  int rc = store_ro_backup(a->cfg.data_dir, dest, &why);
  if (rc == GRANTD_EEXISTS)
    return admin_fail(2, "backup destination %s exists (give a new directory)", dest);
  if (rc == GRANTD_ENOT_FOUND)
    return admin_fail(1, "no store in %s", a->cfg.data_dir);
  if (rc != 0)
    return admin_fail(1, "backup of %s into %s failed: %s", a->cfg.data_dir, dest,
                      why ? why : err_str(rc));
  static const char *const keys[] = {"api-key", "master-key"};
  for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
    if (copy_key_file(a->cfg.data_dir, dest, keys[i]) != 0)
      return admin_fail(1, "store copied into %s, but not the key file %s: %s", dest, keys[i],
                        strerror(errno));
  printf("backup of %s written to %s\n", a->cfg.data_dir, dest);
  return 0;
}
