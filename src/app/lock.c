/*
 * lock.c - the single-writer lock of a data directory; see lock.h.
 */
#include "app/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* The pid the holder wrote, or 0 when the file holds none (yet). */
static long read_holder_pid(int fd)
{
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  char *end;
  long pid = strtol(buf, &end, 10);
  return end != buf && (*end == '\n' || *end == '\0') && pid > 0 ? pid : 0;
}

int lock_data_dir(const char *dir, char *err, size_t errlen)
{
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, LOCK_FILE_NAME);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open lock file %s: %s", path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e != EWOULDBLOCK) {
      snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
      close(fd);
      return -1;
    }
    /* The holder writes its pid right after taking the lock: give it a
     * moment when we raced it (start-up only, never on the loop). */
    long pid = 0;
    for (int i = 0; i < 50 && (pid = read_holder_pid(fd)) == 0; i++) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    close(fd);
    if (pid > 0)
      snprintf(err, errlen, "data directory %s is in use by pid %ld", dir, pid);
    else
      snprintf(err, errlen, "data directory %s is in use by another process", dir);
    return -2;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
    snprintf(err, errlen, "cannot write lock file %s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}
