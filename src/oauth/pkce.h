/*
 * pkce.h - PKCE (RFC 7636) code verifiers and S256 challenges, and the
 * single-use `state` values of the authorization-code flow.
 *
 * Pure functions: no I/O beyond the kernel CSPRNG (base/rand.h), no state.
 * Every value produced here is a secret or a one-time nonce; callers keep
 * them in sealed fields and wipe them (buf_wipe_free) when done.
 */
#ifndef GRANTD_OAUTH_PKCE_H
#define GRANTD_OAUTH_PKCE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/* Random bytes behind a verifier: 32 bytes = 43 base64url characters, the
 * RFC 7636 section 4.1 recommendation (256 bits of entropy). */
#define PKCE_VERIFIER_BYTES 32
/* Random bytes behind a state value: 32 bytes (>= 128 bits required). */
#define PKCE_STATE_BYTES 32
/* Bounds on a verifier's length (RFC 7636 section 4.1). */
#define PKCE_VERIFIER_MIN 43
#define PKCE_VERIFIER_MAX 128
/* Length of an S256 challenge: base64url of a SHA-256 digest. */
#define PKCE_CHALLENGE_LEN 43

/* Appends a fresh code_verifier (PKCE_VERIFIER_MIN characters from the
 * base64url alphabet, a subset of the RFC 7636 unreserved set) to out.
 * Cannot fail (aborts only if the kernel CSPRNG fails, see rand.h). */
void pkce_verifier(buf_t *out);

/* True when v is a valid RFC 7636 code_verifier: 43..128 characters, all
 * from [A-Z] [a-z] [0-9] "-" "." "_" "~". NULL is invalid. */
bool pkce_verifier_valid(const char *v);

/* Appends code_challenge = BASE64URL(SHA256(ASCII(verifier))) (unpadded,
 * PKCE_CHALLENGE_LEN characters) to out.
 * @param verifier a valid verifier (pkce_verifier_valid()).
 * @return 0, or GRANTD_EINVALID (out untouched) when the verifier is not
 *         valid: sending a challenge the token endpoint will reject would
 *         only surface as a confusing invalid_grant later. */
int pkce_challenge_s256(const char *verifier, buf_t *out);

/* Appends a fresh `state` value: PKCE_STATE_BYTES CSPRNG bytes as unpadded
 * base64url (43 characters, 256 bits; RFC 6749 section 10.12 asks for a
 * non-guessable value). Cannot fail. */
void pkce_state(buf_t *out);

#endif
