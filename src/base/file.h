/*
 * file.h - reading a file grantd is told about at run time (a provider's
 * ca_file, trust bundles, key files), under one rule: only regular files,
 * at most a given size, and never blocking the event loop.
 *
 * The file is opened O_NONBLOCK (so opening a FIFO does not wait for a
 * writer), must be a regular file by fstat() (FIFOs, devices such as
 * /dev/zero, sockets and directories are refused), and must hold at most
 * `max` bytes (checked by fstat and again while reading, in case it grows).
 *
 * Errors: GRANTD_EFILE_NOT_REGULAR, GRANTD_EFILE_TOO_LARGE,
 * GRANTD_EFILE_UNREADABLE (open or read failed: missing, no permission,
 * I/O error); *errno_out (may be NULL) gets the errno of that failure (0
 * otherwise), for the log.
 */
#ifndef GRANTD_BASE_FILE_H
#define GRANTD_BASE_FILE_H

#include <stddef.h>
#include <uv.h>

#include "base/buf.h"

/* Appends the file's bytes to out (blocking: start-up, or a worker
 * thread). On error out is left as it was. The bytes may be secret: wipe
 * them (buf_wipe_free) when done. */
int file_read(const char *path, size_t max, buf_t *out, int *errno_out);

/* Called on the loop thread once the read is done: err 0 with the bytes
 * in *data (the callee may take them: set *data to BUF_INIT; otherwise
 * they are wiped and freed after the call), or an error as above with
 * *data empty; sys_errno as errno_out above. */
typedef void (*file_read_cb)(void *arg, int err, int sys_errno, buf_t *data);

/* Reads the file on libuv's thread pool (uv_queue_work). `path` is
 * copied. cb runs exactly once, from the loop, unless an error is
 * returned (a libuv code from uv_queue_work). */
int file_read_async(uv_loop_t *loop, const char *path, size_t max, file_read_cb cb, void *arg);

#endif
