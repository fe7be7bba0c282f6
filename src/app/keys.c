/*
 * keys.c - loading and first-start generation of the API and master keys;
 * see keys.h.
 */
#include "app/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/rand.h"
#include "store/seal.h"

static int errf(char *err, size_t len, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
  return -1;
}

int keys_prepare_dir(const char *dir, char *err, size_t errlen)
{
  char path[4096];
  if (strlen(dir) >= sizeof path)
    return errf(err, errlen, "data directory path is too long");
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
      return errf(err, errlen, "cannot create data directory %s: %s", path, strerror(errno));
    *p = '/';
  }
  if (mkdir(path, 0700) != 0 && errno != EEXIST)
    return errf(err, errlen, "cannot create data directory %s: %s", path, strerror(errno));
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
    return errf(err, errlen, "data directory %s is not a directory", path);
  if (access(path, R_OK | W_OK | X_OK) != 0)
    return errf(err, errlen, "data directory %s is not writable: %s", path, strerror(errno));
  return 0;
}

/* Reads a small secret file, trimming white space. */
static int read_secret_file(const char *path, char **out, char *err, size_t errlen)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 0)
    return errf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
  size_t s = 0, e = (size_t)n;
  while (s < e && strchr(" \t\r\n", buf[s]))
    s++;
  while (e > s && strchr(" \t\r\n", buf[e - 1]))
    e--;
  if (e == s) {
    mem_wipe(buf, sizeof buf);
    return errf(err, errlen, "key file %s is empty", path);
  }
  *out = xstrndup(buf + s, e - s);
  mem_wipe(buf, sizeof buf);
  return 0;
}

/* Writes a new secret file with O_EXCL, mode 0600, synced. */
static int write_secret_file(const char *path, const char *val, char *err, size_t errlen)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return errf(err, errlen, "cannot create key file %s: %s", path, strerror(errno));
  size_t len = strlen(val);
  int ok = write(fd, val, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
  close(fd);
  if (!ok) {
    unlink(path);
    return errf(err, errlen, "cannot write key file %s", path);
  }
  return 0;
}

/* Option value, else *_FILE, else data-dir file (generated when absent). */
static int load_one(const char *value, const char *file, const char *data_dir,
                    const char *name, bool master, char **out, char *err, size_t errlen)
{
  if (value != NULL) {
    *out = xstrdup(value);
    return 0;
  }
  if (file != NULL)
    return read_secret_file(file, out, err, errlen);
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", data_dir, name);
  if (access(path, F_OK) == 0)
    return read_secret_file(path, out, err, errlen);
  buf_t b = BUF_INIT;
  if (master) {
    uint8_t k[MASTER_KEY_LEN];
    rand_bytes(k, sizeof k);
    for (size_t i = 0; i < sizeof k; i++)
      buf_printf(&b, "%02x", k[i]);
    mem_wipe(k, sizeof k);
  } else {
    rand_token(&b, 32);
  }
  int rc = write_secret_file(path, b.data, err, errlen);
  if (rc == 0) {
    *out = xstrdup(b.data);
    log_info("key_generated", "what", master ? "master key" : "API key", "file", path);
  }
  buf_wipe_free(&b);
  return rc;
}

int keys_load(const config_t *cfg, char **api_key, uint8_t master[MASTER_KEY_LEN],
              char *err, size_t errlen)
{
  char *m = NULL;
  *api_key = NULL;
  if (load_one(cfg->api_key, cfg->api_key_file, cfg->data_dir, "api-key", false, api_key, err,
               errlen) != 0)
    return -1;
  if (strlen(*api_key) < 16) {
    free_secret(*api_key);
    *api_key = NULL;
    errf(err, errlen, "the API key must be at least 16 characters");
    return -2;
  }
  if (load_one(cfg->master_key, cfg->master_key_file, cfg->data_dir, "master-key", true, &m, err,
               errlen) != 0) {
    free_secret(*api_key);
    *api_key = NULL;
    return -1;
  }
  int rc = seal_key_parse(m, master);
  free_secret(m);
  if (rc != 0) {
    free_secret(*api_key);
    *api_key = NULL;
    errf(err, errlen, "the master key must be 64 hex digits or base64 of 32 bytes");
    return -2;
  }
  return 0;
}
