/*
 * state.h - an authorization state in memory: what the connect flow keeps
 * between the authorization URL and the browser's return. A
 * zero-initialised state_rec_t is empty; state_rec_copy() deep-copies,
 * state_rec_free() releases and wipes.
 *
 * Strings are owned NUL-terminated heap copies, NULL = unset; times are
 * int64 ms since the Unix epoch. The code verifier is secret (stored
 * sealed, wiped when freed).
 */
#ifndef GRANTD_MODEL_STATE_H
#define GRANTD_MODEL_STATE_H

#include <stdint.h>

#include "model/lists.h"

/* clang-format off */
typedef struct {
  char *state;
  char *conn_id;
  char *code_verifier;       /* secret */
  char *redirect_after;
  strlist_t scopes;
  char *redirect_uri;        /* the redirect_uri sent on the authorize URL */
  int64_t expires_at;
} state_rec_t;
/* clang-format on */

/* Releases everything s owns, wiping the verifier; s is zeroed. */
void state_rec_free(state_rec_t *s);
/* Deep copy; dst is overwritten, not freed first. */
void state_rec_copy(state_rec_t *dst, const state_rec_t *src);

#endif
