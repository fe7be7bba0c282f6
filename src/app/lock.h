/*
 * lock.h - one writer per data directory.
 *
 * `grantd serve` takes an exclusive flock(2) on DIR/serve.lock before it
 * opens the store and keeps the descriptor open for the life of the
 * process. The kernel drops the lock when the process ends, however it
 * ends (kill -9 included), so a lock is never stale; and it does not rely on
 * pids: two containers sharing a volume are both pid 1 in their own
 * namespaces, yet their flocks on the same file exclude each other. The
 * file holds the holder's pid as text, for the error message only.
 *
 * Read-only admin commands (backup, check, list, inspect, export) do not
 * take the lock: they run beside a serving process.
 */
#ifndef GRANTD_APP_LOCK_H
#define GRANTD_APP_LOCK_H

#include <stddef.h>

#define LOCK_FILE_NAME "serve.lock"

/* Takes the lock of data directory dir (which must exist) without waiting.
 * @return the open descriptor holding the lock (>= 0; owned by the caller,
 *         closing it releases the lock; close-on-exec);
 *         -2 when another process holds it: err reads
 *            "data directory DIR is in use by pid N";
 *         -1 on any other failure (err says which and why). */
int lock_data_dir(const char *dir, char *err, size_t errlen);

#endif
