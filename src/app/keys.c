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
#include "base/err.h"
#include "base/file.h"
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

/* Reads a small secret file, trimming white space. The rule of every file
 * grantd is told to read (base/file.h): a regular file (a FIFO would hang
 * the start, /dev/zero would be read as a key), at most KEY_FILE_MAX
 * bytes (a longer file is refused, not cut). */
#define KEY_FILE_MAX 1024
static int read_secret_file(const char *path, char **out, char *err, size_t errlen)
{
  buf_t b = BUF_INIT;
  int sys = 0;
  int rc = file_read(path, KEY_FILE_MAX, &b, &sys);
  if (rc == GRANTD_EFILE_TOO_LARGE)
    return errf(err, errlen, "key file %s is larger than %d bytes", path, KEY_FILE_MAX);
  if (rc != 0)
    return errf(err, errlen, "cannot read key file %s: %s%s%s", path, err_str(rc), sys ? ": " : "",
                sys ? strerror(sys) : "");
  const char *buf = b.data ? b.data : "";
  size_t s = 0, e = b.len;
  while (s < e && strchr(" \t\r\n", buf[s]))
    s++;
  while (e > s && strchr(" \t\r\n", buf[e - 1]))
    e--;
  if (e == s) {
    buf_wipe_free(&b);
    return errf(err, errlen, "key file %s is empty", path);
  }
  *out = xstrndup(buf + s, e - s);
  buf_wipe_free(&b);
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
static int load_one(const char *value, const char *file, const char *data_dir, const char *name,
                    bool master, char **out, char *err, size_t errlen)
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

/* The embedded default keeps working, but says what it costs. */
static void warn_key_beside_data(const char *data_dir)
{
  char path[4200];
  snprintf(path, sizeof path, "%s/master-key", data_dir);
  log_warn("master_key_beside_data", "file", path, "risk",
           "the master key sits in the data directory it protects: whoever gets a copy of the "
           "directory (a backup, a volume snapshot) can unseal every stored token and secret",
           "fix",
           "pass the key from a secret instead: GRANTD_MASTER_KEY_FILE=/run/secrets/... (a file "
           "holding it, e.g. a mounted Kubernetes or podman secret) or GRANTD_MASTER_KEY, with the "
           "same 64 hex digits as this file for an existing store; then remove the file from the "
           "data directory");
}

int keys_load(const config_t *cfg, bool store_exists, char **api_key,
              uint8_t master[MASTER_KEY_LEN], char *err, size_t errlen)
{
  char *m = NULL;
  *api_key = NULL;
  bool ring = keys_keyring_configured(cfg);
  /* A key generated beside an existing store could never open it, and it
   * would stay behind to fail every later start. Checked before anything
   * (the API key included) is written. */
  if (!ring && cfg->master_key == NULL && cfg->master_key_file == NULL && store_exists) {
    char path[4200];
    snprintf(path, sizeof path, "%s/master-key", cfg->data_dir);
    if (access(path, F_OK) != 0) {
      errf(err, errlen,
           "the store in %s is sealed with a master key that is not given: set GRANTD_MASTER_KEY "
           "(or --master-key) to it, or GRANTD_MASTER_KEY_FILE (or --master-key-file) to a file "
           "holding it",
           cfg->data_dir);
      return -2;
    }
  }
  /* With an API keys file, the single key is one only when given. */
  bool single = cfg->api_keys_file == NULL || cfg->api_key != NULL || cfg->api_key_file != NULL;
  if (single && load_one(cfg->api_key, cfg->api_key_file, cfg->data_dir, "api-key", false, api_key,
                         err, errlen) != 0)
    return -1;
  if (single && strlen(*api_key) < 16) {
    free_secret(*api_key);
    *api_key = NULL;
    errf(err, errlen, "the API key must be at least 16 characters");
    return -2;
  }
  if (ring) {
    memset(master, 0, MASTER_KEY_LEN);
    return 0;
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
  if (cfg->master_key == NULL && cfg->master_key_file == NULL)
    warn_key_beside_data(cfg->data_dir);
  return 0;
}

int keys_load_master(const config_t *cfg, uint8_t master[MASTER_KEY_LEN], char *err, size_t errlen)
{
  if (keys_keyring_configured(cfg)) {
    memset(master, 0, MASTER_KEY_LEN);
    return 0;
  }
  char path[4200];
  snprintf(path, sizeof path, "%s/master-key", cfg->data_dir);
  if (cfg->master_key == NULL && cfg->master_key_file == NULL && access(path, F_OK) != 0)
    return errf(err, errlen,
                "no master key: %s does not exist and neither GRANTD_MASTER_KEY "
                "nor GRANTD_MASTER_KEY_FILE is set",
                path);
  char *m = NULL;
  if (load_one(cfg->master_key, cfg->master_key_file, cfg->data_dir, "master-key", true, &m, err,
               errlen) != 0)
    return -1;
  int rc = seal_key_parse(m, master);
  free_secret(m);
  if (rc != 0) {
    errf(err, errlen, "the master key must be 64 hex digits or base64 of 32 bytes");
    return -2;
  }
  return 0;
}

bool keys_keyring_configured(const config_t *cfg)
{
  return cfg->master_keys != NULL || cfg->master_keys_file != NULL;
}

int keys_keyring_text(const char *src, const char *text, size_t n, seal_keyring_t **out, char *err,
                      size_t errlen)
{
  char why[300];
  if (seal_keyring_parse(text, n, out, why, sizeof why) != 0)
    return errf(err, errlen, "%s: %s", src, why);
  return 0;
}

int keys_keyring(const config_t *cfg, const uint8_t master[MASTER_KEY_LEN], seal_keyring_t **out,
                 char *err, size_t errlen)
{
  if (cfg->master_keys != NULL)
    return keys_keyring_text("GRANTD_MASTER_KEYS", cfg->master_keys, strlen(cfg->master_keys), out,
                             err, errlen) == 0
             ? 0
             : -2;
  if (cfg->master_keys_file != NULL) {
    buf_t b = BUF_INIT;
    int sys_errno = 0;
    int rc = file_read(cfg->master_keys_file, KEYS_KEYRING_FILE_MAX, &b, &sys_errno);
    if (rc != 0) {
      buf_wipe_free(&b);
      return errf(err, errlen, "cannot read the master keys file %s: %s%s%s", cfg->master_keys_file,
                  err_str(rc), sys_errno ? ": " : "", sys_errno ? strerror(sys_errno) : "");
    }
    char src[4200];
    snprintf(src, sizeof src, "master keys file %s", cfg->master_keys_file);
    rc = keys_keyring_text(src, b.data ? b.data : "", b.len, out, err, errlen);
    buf_wipe_free(&b);
    return rc == 0 ? 0 : -2;
  }
  seal_keyring_t *kr = seal_keyring_new();
  seal_keyring_add(kr, 1, master);
  seal_keyring_set_current(kr, 1);
  *out = kr;
  return 0;
}
