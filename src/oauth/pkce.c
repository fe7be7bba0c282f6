/*
 * PKCE verifiers/challenges and state values; see pkce.h.
 *
 * Verifiers and states are base64url of CSPRNG bytes: the base64url
 * alphabet is a subset of RFC 7636's unreserved set, so no further encoding
 * is ever needed in URLs or form bodies. The challenge hashes the verifier
 * with BearSSL's SHA-256 (already linked by the base layer).
 */
#include "oauth/pkce.h"

#include <string.h>

#include <bearssl.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/mem.h"
#include "base/rand.h"

void pkce_verifier(buf_t *out)
{
  rand_token(out, PKCE_VERIFIER_BYTES);
}

void pkce_state(buf_t *out)
{
  rand_token(out, PKCE_STATE_BYTES);
}

static bool is_unreserved(unsigned char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool pkce_verifier_valid(const char *v)
{
  if (v == NULL)
    return false;
  size_t n = 0;
  for (; v[n] != '\0'; n++) {
    if (n >= PKCE_VERIFIER_MAX || !is_unreserved((unsigned char)v[n]))
      return false;
  }
  return n >= PKCE_VERIFIER_MIN;
}

int pkce_challenge_s256(const char *verifier, buf_t *out)
{
  if (!pkce_verifier_valid(verifier))
    return GRANTD_EINVALID;
  br_sha256_context ctx;
  unsigned char digest[br_sha256_SIZE];
  br_sha256_init(&ctx);
  br_sha256_update(&ctx, verifier, strlen(verifier));
  br_sha256_out(&ctx, digest);
  b64url_encode(out, digest, sizeof(digest));
  /* The context and digest derive from a secret; leave nothing behind. */
  mem_wipe(&ctx, sizeof(ctx));
  mem_wipe(digest, sizeof(digest));
  return 0;
}
