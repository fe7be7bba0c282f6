/*
 * catalog_dir.h - the provider catalog grantd serves: the built-in
 * templates plus those of --catalog-dir, read once at start-up (before the
 * loop runs, so the blocking reads are fine).
 */
#ifndef GRANTD_APP_CATALOG_DIR_H
#define GRANTD_APP_CATALOG_DIR_H

#include <stddef.h>

#include "oauth/catalog.h"

/* Builds the catalog into *out: every built-in template, then every
 * DIR/NAME.json in name order (other names are ignored), each replacing a
 * template of the same name. Files follow base/file.h (regular files only,
 * at most CATALOG_FILE_MAX bytes). dir may be NULL.
 * @return 0 (*out owned by the caller: catalog_free), or -1 with one line
 *         in err naming the file and, for a template that does not
 *         validate, the field (*out NULL). */
int catalog_dir_load(const char *dir, catalog_t **out, char *err, size_t cap);

#endif
