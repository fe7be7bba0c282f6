/*
 * rand.h - cryptographic randomness from getrandom(2), and a small fast
 * non-cryptographic generator for jitter.
 *
 * The CSPRNG functions cannot fail: getrandom is retried on EINTR and short
 * reads, and any other failure (which the kernel never reports once the pool
 * is initialised) logs one line and aborts, because running on without
 * randomness would be worse. They may block only at early boot.
 */
#ifndef GRANTD_BASE_RAND_H
#define GRANTD_BASE_RAND_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Fills p[0..n) with cryptographically secure random bytes. */
void rand_bytes(void *p, size_t n);
/* The same randomness for values that must be unpredictable and unique but
 * need not stay secret once used, such as AEAD nonces: served from a small
 * per-thread buffer filled by one getrandom call, so that sealing a record
 * costs no system call (a refresh seals two or three values). Each byte is
 * handed out once and wiped from the buffer. Never use it for keys, states,
 * PKCE verifiers or anything else that must stay secret: use rand_bytes. */
void rand_nonce(void *p, size_t n);
/* Wipes and drops the calling thread's buffered nonce bytes: the next
 * rand_nonce reads getrandom afresh (for tests that make getrandom's output
 * repeat, and for a child after fork). */
void rand_nonce_flush(void);
/* A uniformly random 64-bit value (CSPRNG). */
uint64_t rand_u64(void);
/* A uniformly random value in [0, n) without modulo bias; 0 when n == 0. */
uint64_t rand_range(uint64_t n);
/* Appends the unpadded base64url encoding of nbytes random bytes
 * (b64url_encoded_len(nbytes) characters) to out. For state values, PKCE
 * verifiers, API keys: 32 bytes give 43 characters, 256 bits. */
void rand_token(buf_t *out, size_t nbytes);

/* Fast non-cryptographic generator (splitmix64) for jitter and sampling:
 * advances *state and returns the next value. Any seed works, including 0;
 * seed from rand_u64() for unpredictable sequences. Never use it for
 * secrets. */
uint64_t rand_fast_u64(uint64_t *state);
/* A value in [0, n) from the fast generator (tiny bias, fine for jitter);
 * 0 when n == 0. */
uint64_t rand_fast_range(uint64_t *state, uint64_t n);

#endif
