/*
 * file.c - regular files of bounded size, read off the loop; see file.h.
 */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/mem.h"

int file_read(const char *path, size_t max, buf_t *out, int *errno_out)
{
  if (errno_out != NULL)
    *errno_out = 0;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    if (errno_out != NULL)
      *errno_out = errno;
    return GRANTD_EFILE_UNREADABLE;
  }
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) != 0) {
    if (errno_out != NULL)
      *errno_out = errno;
    rc = GRANTD_EFILE_UNREADABLE;
  } else if (!S_ISREG(st.st_mode)) {
    rc = GRANTD_EFILE_NOT_REGULAR;
  } else if ((uintmax_t)st.st_size > max) {
    rc = GRANTD_EFILE_TOO_LARGE;
  }
  size_t start = out->len;
  while (rc == 0) {
    buf_reserve(out, 8192);
    size_t room = out->cap - out->len - 1;
    ssize_t n = read(fd, out->data + out->len, room);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      if (errno_out != NULL)
        *errno_out = errno;
      rc = GRANTD_EFILE_UNREADABLE;
      break;
    }
    if (n == 0)
      break;
    out->len += (size_t)n;
    if (out->len - start > max)
      rc = GRANTD_EFILE_TOO_LARGE; /* it grew while being read */
  }
  close(fd);
  if (rc != 0) {
    if (out->data != NULL)
      mem_wipe(out->data + start, out->len - start);
    out->len = start;
  }
  if (out->data != NULL)
    out->data[out->len] = '\0';
  return rc;
}

typedef struct {
  uv_work_t work;
  char *path;
  size_t max;
  buf_t data;
  int err, sys_errno;
  file_read_cb cb;
  void *arg;
} job_t;

static void work_cb(uv_work_t *w)
{
  job_t *j = w->data;
  j->err = file_read(j->path, j->max, &j->data, &j->sys_errno);
}

static void after_cb(uv_work_t *w, int status)
{
  job_t *j = w->data;
  if (status != 0 && j->err == 0) /* cancelled: never happens, we do not cancel */
    j->err = GRANTD_EFILE_UNREADABLE;
  j->cb(j->arg, j->err, j->sys_errno, &j->data);
  buf_wipe_free(&j->data);
  free(j->path);
  free(j);
}

int file_read_async(uv_loop_t *loop, const char *path, size_t max, file_read_cb cb, void *arg)
{
  job_t *j = xcalloc(1, sizeof *j);
  j->path = xstrdup(path);
  j->max = max;
  j->cb = cb;
  j->arg = arg;
  j->work.data = j;
  int rc = uv_queue_work(loop, &j->work, work_cb, after_cb);
  if (rc != 0) {
    free(j->path);
    free(j);
  }
  return rc;
}
