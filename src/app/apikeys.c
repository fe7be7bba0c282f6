/*
 * apikeys.c - the API keyset at start-up and its SIGHUP reload; see
 * apikeys.h.
 */
#include "app/apikeys.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"

typedef enum { APIKEYS_IDLE, APIKEYS_READING, APIKEYS_READING_AGAIN } apikeys_state_t;

struct apikeys {
  uv_loop_t *loop;
  char *path; /* NULL: no file */
  bool has_single;
  uint8_t single_hash[API_KEY_HASH_LEN];
  apikeys_state_t state;
  api_t *api; /* target of the reload in flight */
};

/* Parses the file's text into a keyset; message prefixed with the path. */
static int build(const apikeys_t *ak, const char *text, size_t n, api_keyset_t **ks, char *err,
                 size_t errlen)
{
  char why[300];
  if (api_keyset_parse(text, n, ak->has_single ? ak->single_hash : NULL, ks, why, sizeof why) !=
      0) {
    snprintf(err, errlen, "API keys file %s: %s", ak->path ? ak->path : "(none)", why);
    return -1;
  }
  return 0;
}

static void read_failed(const apikeys_t *ak, int rc, int sys_errno, char *err, size_t errlen)
{
  snprintf(err, errlen, "API keys file %s: %s%s%s", ak->path, err_str(rc), sys_errno ? ": " : "",
           sys_errno ? strerror(sys_errno) : "");
}

int apikeys_open(uv_loop_t *loop, const char *path, const char *single_key, apikeys_t **out,
                 api_keyset_t **ks, char *err, size_t errlen)
{
  apikeys_t *ak = xcalloc(1, sizeof *ak);
  ak->loop = loop;
  ak->path = path ? xstrdup(path) : NULL;
  if (single_key != NULL) {
    ak->has_single = true;
    api_key_hash(single_key, strlen(single_key), ak->single_hash);
  }
  buf_t b = BUF_INIT;
  int sys_errno = 0;
  int rc = path ? file_read(path, API_KEYS_FILE_MAX, &b, &sys_errno) : 0;
  if (rc != 0) {
    read_failed(ak, rc, sys_errno, err, errlen);
    apikeys_free(ak);
    return -1;
  }
  rc = build(ak, b.data, b.len, ks, err, errlen);
  buf_wipe_free(&b);
  if (rc != 0) {
    apikeys_free(ak);
    return -1;
  }
  *out = ak;
  return 0;
}

static int start_read(apikeys_t *ak);

static void on_read(void *arg, int err, int sys_errno, buf_t *data)
{
  apikeys_t *ak = arg;
  char msg[400];
  api_keyset_t *ks = NULL;
  if (err != 0)
    read_failed(ak, err, sys_errno, msg, sizeof msg);
  if (err != 0 || build(ak, data->data, data->len, &ks, msg, sizeof msg) != 0) {
    log_warn("api_keys_reload_failed", "file", ak->path, "reason", msg, "keeping",
             "the keys in use");
  } else {
    size_t n = api_keyset_count(ks);
    api_set_keys(ak->api, ks);
    log_info("api_keys_reloaded", "file", ak->path, "#keys", LOG_I64(n));
  }
  bool again = ak->state == APIKEYS_READING_AGAIN;
  ak->state = APIKEYS_IDLE;
  if (again)
    start_read(ak);
}

static int start_read(apikeys_t *ak)
{
  int rc = file_read_async(ak->loop, ak->path, API_KEYS_FILE_MAX, on_read, ak);
  if (rc != 0) {
    log_warn("api_keys_reload_failed", "file", ak->path, "reason", uv_strerror(rc));
    return rc;
  }
  ak->state = APIKEYS_READING;
  return 0;
}

int apikeys_reload(apikeys_t *ak, api_t *api)
{
  if (ak->path == NULL) {
    log_info("api_keys_not_reloaded", "reason", "no API keys file (--api-keys-file) is set");
    return 0;
  }
  ak->api = api;
  if (ak->state != APIKEYS_IDLE) {
    ak->state = APIKEYS_READING_AGAIN;
    return 0;
  }
  return start_read(ak);
}

int apikeys_has_file(const apikeys_t *ak)
{
  return ak->path != NULL;
}

void apikeys_free(apikeys_t *ak)
{
  if (ak == NULL)
    return;
  mem_wipe(ak->single_hash, sizeof ak->single_hash);
  free(ak->path);
  free(ak);
}
