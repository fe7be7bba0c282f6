/*
 * catalog_dir.c - the built-in catalog plus --catalog-dir; see
 * catalog_dir.h.
 */
#include "app/catalog_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/mem.h"

static int name_cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The NAME.json entries of dir, sorted; -1 when dir cannot be read. */
static int list_dir(const char *dir, char ***names, size_t *n)
{
  DIR *d = opendir(dir);
  *names = NULL;
  *n = 0;
  if (d == NULL)
    return -1;
  size_t cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0 || e->d_name[0] == '.')
      continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 32;
      *names = xrealloc(*names, cap * sizeof **names);
    }
    (*names)[(*n)++] = xstrdup(e->d_name);
  }
  closedir(d);
  if (*n > 0)
    qsort(*names, *n, sizeof **names, name_cmp);
  return 0;
}

int catalog_dir_load(const char *dir, catalog_t **out, char *err, size_t cap)
{
  catalog_t *cat = catalog_new();
  char why[400];
  *out = NULL;
  if (catalog_add_builtin(cat, why, sizeof why) != 0) {
    snprintf(err, cap, "built-in catalog: %s", why);
    catalog_free(cat);
    return -1;
  }
  if (dir == NULL || *dir == '\0') {
    *out = cat;
    return 0;
  }
  char **names;
  size_t n;
  if (list_dir(dir, &names, &n) != 0) {
    snprintf(err, cap, "--catalog-dir %s: %s", dir, strerror(errno));
    catalog_free(cat);
    return -1;
  }
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    buf_t path = BUF_INIT, text = BUF_INIT;
    buf_printf(&path, "%s/%s", dir, names[i]);
    int sys = 0;
    int frc = file_read(buf_cstr(&path), CATALOG_FILE_MAX, &text, &sys);
    if (frc != 0) {
      snprintf(err, cap, "catalog file %s: %s%s%s", buf_cstr(&path),
               frc == GRANTD_EFILE_TOO_LARGE ? "is larger than 64 KiB" : err_str(frc),
               sys ? ": " : "", sys ? strerror(sys) : "");
      rc = -1;
    } else if (catalog_add(cat, buf_cstr(&path), text.data ? text.data : "", text.len, why,
                           sizeof why) != 0) {
      snprintf(err, cap, "catalog file %s", why);
      rc = -1;
    }
    buf_free(&path);
    buf_free(&text);
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  if (rc != 0) {
    catalog_free(cat);
    return -1;
  }
  *out = cat;
  return 0;
}
