/*
 * b64.h - base64 (RFC 4648 section 4, padded: HTTP Basic) and base64url
 * (section 5, unpadded: PKCE verifiers/challenges, state, tokens).
 *
 * Encoders append to a buf_t. Decoders are strict: any byte outside the
 * alphabet (including whitespace), wrong padding, an impossible length or
 * non-zero unused trailing bits is an error, and the output buffer is then
 * restored to its previous length.
 */
#ifndef GRANTD_BASE_B64_H
#define GRANTD_BASE_B64_H

#include <stddef.h>

#include "base/buf.h"

/* Length of the padded standard encoding of n bytes. */
size_t b64_encoded_len(size_t n);
/* Length of the unpadded base64url encoding of n bytes. */
size_t b64url_encoded_len(size_t n);

/* Appends the padded standard base64 of p[0..n) to out. */
void b64_encode(buf_t *out, const void *p, size_t n);
/* Appends the unpadded base64url of p[0..n) to out. */
void b64url_encode(buf_t *out, const void *p, size_t n);

/* Appends the bytes decoded from padded standard base64 s[0..n).
 * @return 0, or GRANTD_EINVALID. */
int b64_decode(buf_t *out, const char *s, size_t n);
/* Appends the bytes decoded from unpadded base64url s[0..n) ('=' rejected).
 * @return 0, or GRANTD_EINVALID. */
int b64url_decode(buf_t *out, const char *s, size_t n);

#endif
