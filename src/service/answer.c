/*
 * answer.c - the deferred-answer queue and the token-read verdict.
 *
 * Callbacks of the public API never run from inside the call that took
 * them: they go through one queue drained by a uv_idle handle (started
 * only while the queue is non-empty, so an idle service does not spin).
 * One handle for all answers costs a list append per answer instead of a
 * timer or async handle per request.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "service/answer.h"
#include "service/lifecycle.h"

struct svc_answer {
  svc_answer_t *next;
  svc_conn_cb cb;
  void *arg;
  int err;
  bool has_rec;
  conn_t rec;
};

static void on_idle(uv_idle_t *h)
{
  svc_t *svc = h->data;
  svc_answer_t *a = svc->ans_head;
  svc->ans_head = NULL;
  svc->ans_tail = &svc->ans_head;
  /* Answers queued by these callbacks run at the next iteration. */
  while (a) {
    svc_answer_t *next = a->next;
    a->cb(a->arg, a->err, a->has_rec ? &a->rec : NULL);
    if (a->has_rec)
      conn_free(&a->rec);
    free(a);
    a = next;
  }
  if (svc->ans_head == NULL) {
    uv_idle_stop(&svc->idle);
    svc__maybe_closed(svc);
  }
}

static svc_answer_t *answer_new(svc_t *svc, svc_conn_cb cb, void *arg, int err)
{
  svc_answer_t *a = xcalloc(1, sizeof *a);
  a->cb = cb;
  a->arg = arg;
  a->err = err;
  if (svc->ans_head == NULL)
    uv_idle_start(&svc->idle, on_idle);
  *svc->ans_tail = a;
  svc->ans_tail = &a->next;
  return a;
}

void svc__answer(svc_t *svc, svc_conn_cb cb, void *arg, int err, const conn_t *c)
{
  if (cb == NULL)
    return;
  svc_answer_t *a = answer_new(svc, cb, arg, err);
  if (c) {
    conn_copy(&a->rec, c);
    a->has_rec = true;
  }
}

void svc__answer_move(svc_t *svc, svc_conn_cb cb, void *arg, int err, conn_t *c)
{
  if (cb == NULL) {
    if (c)
      conn_free(c);
    return;
  }
  svc_answer_t *a = answer_new(svc, cb, arg, err);
  if (c) {
    a->rec = *c;
    memset(c, 0, sizeof *c);
    a->has_rec = true;
  }
}

int svc__token_verdict(const conn_t *c, int64_t now)
{
  switch (c->status) {
  case CONN_NEEDS_REAUTH:
  case CONN_REVOKED: return GRANTD_EREAUTH;
  case CONN_ERROR: return GRANTD_EPROVIDER_CONFIG;
  case CONN_PENDING: return GRANTD_ECONFLICT;
  default: break;
  }
  if (c->access_token == NULL || c->access_token[0] == '\0')
    return GRANTD_EUPSTREAM;
  if (c->expires_at != 0 && c->expires_at <= now)
    return GRANTD_EUPSTREAM;
  return 0;
}
