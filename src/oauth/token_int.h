/*
 * token_int.h - what token.c and token_classify.c share; not for other
 * modules (they use token.h).
 */
#ifndef GRANTD_OAUTH_TOKEN_INT_H
#define GRANTD_OAUTH_TOKEN_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "oauth/token.h"

/* The outcome of a token endpoint answer with HTTP `status`, error code
 * `code` (NULL when the answer names none) and, when `token_ok`, a usable
 * access token. Total: every input maps to an outcome. */
token_outcome_t token__classify(int status, const char *code, bool token_ok);

/* The Retry-After header value `v` (NULL when absent; delta-seconds or an
 * HTTP-date of RFC 9110 section 10.2.3) as a delay in ms from `now_ms`,
 * capped at 7 days; 0 when absent, invalid or in the past. */
int64_t token__retry_after_ms(const char *v, int64_t now_ms);

#endif
