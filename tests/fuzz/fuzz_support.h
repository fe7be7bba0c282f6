/*
 * fuzz_support.h - what the libFuzzer harnesses share.
 *
 * - No network: this file defines uv_getaddrinfo() and uv_tcp_connect()
 *   for the harness binaries (they take precedence over libuv's), failing
 *   at once (except a connect to the harness's own loopback peer below),
 *   so no input can make a harness resolve or connect anywhere; callers
 *   see the ordinary synchronous-error path.
 * - Deterministic randomness on demand: getrandom() is wrapped too; while
 *   fuzz_rand_fixed() is on it returns a fixed stream, so sealing the same
 *   record twice gives the same bytes (record round-trip properties).
 * - Log capture: the log goes to a memory file the harness reads back to
 *   check that no secret from the input was logged.
 * - fuzz_check(): a property failure aborts with a message (a crash for
 *   libFuzzer, with the input saved).
 */
#ifndef GRANTD_FUZZ_SUPPORT_H
#define GRANTD_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/buf.h"

/* A loopback HTTP peer on 127.0.0.1 (the one address uv_tcp_connect lets
 * through): the i-th request of an input (counting from
 * fuzz_peer_answers()) is answered with answers[i] (the last one again
 * when there are fewer), written raw, and the connection closed. Started
 * once on `loop`; returns the port. */
unsigned fuzz_peer_start(uv_loop_t *loop);
/* Sets the raw responses for the next requests (borrowed until the next
 * call) and resets the request count. */
void fuzz_peer_answers(const char *const *answers, const size_t *lens, size_t n);
/* Requests the peer received since fuzz_peer_answers(). */
unsigned fuzz_peer_requests(void);

/* A keyring with one current key (id 1) of 32 `fill` bytes. */
struct seal_keyring *fuzz_keyring(uint8_t fill);

/* A real connection service for harnesses that drive it: a loop, a
 * keyring, a store in fuzz_tmpdir(), an http client (plain http allowed:
 * the loopback peer speaks it) and the service, opened at once. */
typedef struct {
  uv_loop_t loop;
  struct seal_keyring *kr;
  struct store *store;
  struct http_client_s *http;
  struct addr_policy_s *policy;
  struct svc *svc;
} fuzz_svc_t;
void fuzz_svc_open(fuzz_svc_t *f);
/* Runs the loop until *flag is set. */
void fuzz_run_until(fuzz_svc_t *f, const int *flag);

/* A fresh directory under $GRANTD_FUZZ_TMP (else /dev/shm, else /tmp),
 * removed again at exit. Static storage. */
const char *fuzz_tmpdir(void);

/* Starts capturing the log (all levels) into memory; idempotent. */
void fuzz_log_capture(void);
/* Appends what was logged since the last call to out, and forgets it. */
void fuzz_log_take(buf_t *out);

/* Turns the fixed random stream on (restarting it from `seed`) or off. */
void fuzz_rand_fixed(int on, uint64_t seed);

/* Whether needle (n bytes) occurs in hay (hn bytes). */
int fuzz_contains(const void *hay, size_t hn, const void *needle, size_t n);

/* Aborts with "property failed: what" when !ok. */
#define fuzz_check(ok, what) fuzz__check((ok) != 0, what, __FILE__, __LINE__)
void fuzz__check(int ok, const char *what, const char *file, int line);

#endif
