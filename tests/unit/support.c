/* Shared unit-test helpers; see support.h. */
#include "support.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ftw.h>
#include <stdarg.h>
#include <unistd.h>

const char *test_mkdtemp(void)
{
  static char path[512];
  const char *base = getenv("GRANTD_TEST_TMP");
  if (base == NULL || *base == '\0')
    base = "/tmp";
  mkdir(base, 0700);
  snprintf(path, sizeof path, "%s/unit-XXXXXX", base);
  if (mkdtemp(path) == NULL) {
    fprintf(stderr, "mkdtemp %s: %s\n", path, strerror(errno));
    abort();
  }
  return path;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
  (void)st;
  (void)flag;
  (void)f;
  return remove(p);
}

void test_rmdir(const char *path)
{
  nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *test_path(const char *dir, const char *name)
{
  static char bufs[8][600];
  static int next;
  char *p = bufs[next++ % 8];
  snprintf(p, sizeof bufs[0], "%s/%s", dir, name);
  return p;
}

void test_sh(const char *dir, const char *fmt, ...)
{
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(cmd, sizeof cmd, "cd '%s' && ", dir);
  vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
  va_end(ap);
  strncat(cmd, " >/dev/null 2>&1", sizeof cmd - strlen(cmd) - 1);
  int rc = system(cmd);
  if (rc != 0) {
    fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    abort();
  }
}
