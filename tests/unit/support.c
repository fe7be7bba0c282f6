/* Shared unit-test helpers; see support.h. */
#include "support.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ftw.h>
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
  (void)st; (void)flag; (void)f;
  return remove(p);
}

void test_rmdir(const char *path)
{
  nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
