/*
 * state.c - authorization-state copies and frees (state.h).
 */
#include "model/state.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

void state_rec_free(state_rec_t *s)
{
  free(s->state);
  free(s->conn_id);
  free_secret(s->code_verifier);
  free(s->redirect_after);
  strlist_free(&s->scopes);
  free(s->redirect_uri);
  memset(s, 0, sizeof(*s));
}

void state_rec_copy(state_rec_t *dst, const state_rec_t *src)
{
  *dst = *src;
  dst->state = xstrdup(src->state);
  dst->conn_id = xstrdup(src->conn_id);
  dst->code_verifier = xstrdup(src->code_verifier);
  dst->redirect_after = xstrdup(src->redirect_after);
  strlist_copy(&dst->scopes, &src->scopes);
  dst->redirect_uri = xstrdup(src->redirect_uri);
}
