/*
 * outcome.c - the refresh outcome: what a token request's result makes of
 * a connection record (tokens, expiry, status, failures, last_error, next
 * refresh), how it is counted, and how an invalid_grant after a restart is
 * told apart. No I/O: refresh.c and connect_flow.c commit what this
 * builds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "base/rand.h"
#include "service/outcome.h"

void svc__count_outcome(svc_t *svc, token_outcome_t o, bool unknown)
{
  const char *labels;
  if (unknown) {
    svc->st.refresh_unknown++;
    labels = "outcome=\"unknown\"";
  } else {
    switch (o) {
    case TOKEN_OK:
      svc->st.refresh_ok++;
      labels = "outcome=\"ok\"";
      break;
    case TOKEN_REAUTH:
      svc->st.refresh_reauth++;
      labels = "outcome=\"reauth\"";
      break;
    case TOKEN_CONFIG:
      svc->st.refresh_config++;
      labels = "outcome=\"config\"";
      break;
    default:
      svc->st.refresh_transient++;
      labels = "outcome=\"transient\"";
      break;
    }
  }
  metrics_counter_inc("grantd_refreshes_total", labels);
}

static void set_last_error(conn_t *c, const char *code, const char *msg, int http, int64_t now)
{
  free(c->last_error_code);
  free(c->last_error_message);
  c->last_error_code = xstrdup(code);
  c->last_error_message = xstrdup(msg);
  c->last_error_http = http;
  c->last_error_at = now;
}

void svc__next_record(svc_t *svc, const conn_t *old, const svc_prov_t *prov, token_result_t *tok,
                      int neterr, bool unknown, int64_t now, conn_t *out)
{
  const provider_t *p = prov && prov->present ? &prov->p : NULL;
  token_outcome_t o = tok->outcome;

  if (o == TOKEN_TRANSIENT && !unknown && neterr == 0 && !tok->error_from_provider &&
      (tok->http_status == 400 || tok->http_status == 403) &&
      old->failures + 1 >= SVC_MAX_AMBIGUOUS_4XX)
    o = TOKEN_REAUTH; /* token.h: the caller caps these retries */

  /* A TLS failure towards a host that answered before is transient (its
   * certificate expired or was swapped): keep serving the token, retry. A
   * host never reached is a configuration error. */
  if (o == TOKEN_CONFIG && prov != NULL && prov->host_validated &&
      (neterr == GRANTD_ETLS_UNTRUSTED || neterr == GRANTD_ETLS_HOSTNAME ||
       neterr == GRANTD_ETLS_EXPIRED))
    o = TOKEN_TRANSIENT;

  /* Copy old except the fields replaced below (a refresh runs this per
   * token, and the deep copy's malloc/free showed in the profile): a
   * shallow view with those fields unset, then one deep copy of the rest.
   * old itself stays intact (the commit still compares against it). */
  conn_t base = *old;
  base.last_error_code = base.last_error_message = NULL; /* cleared or replaced */
  if (o == TOKEN_OK) {
    base.access_token = NULL;
    base.token_type = NULL;
    if (tok->refresh_token)
      base.refresh_token = NULL;
    if (tok->has_scope)
      memset(&base.scopes, 0, sizeof base.scopes);
    if (tok->extra_json)
      base.extra_json = NULL;
  }
  conn_copy(out, &base);
  out->revision = old->revision + 1;
  out->updated_at = now;

  if (o == TOKEN_OK) {
    free_secret(out->access_token);
    out->access_token = tok->access_token;
    tok->access_token = NULL;
    if (tok->refresh_token) {
      /* Rotated: the new one replaces the old, and its expiry with it. */
      free_secret(out->refresh_token);
      out->refresh_token = tok->refresh_token;
      tok->refresh_token = NULL;
      out->refresh_token_expires_at = tok->refresh_token_expires_at;
    } else if (tok->refresh_token_expires_at) {
      out->refresh_token_expires_at = tok->refresh_token_expires_at;
    }
    free(out->token_type);
    out->token_type = tok->token_type;
    tok->token_type = NULL;
    out->expires_at = tok->expires_at;
    if (tok->has_scope) {
      strlist_free(&out->scopes);
      out->scopes = tok->scopes;
      memset(&tok->scopes, 0, sizeof tok->scopes);
    }
    if (tok->extra_json) {
      free(out->extra_json);
      out->extra_json = tok->extra_json;
      tok->extra_json = NULL;
    }
    out->refreshed_at = now;
    out->failures = 0;
    out->status = CONN_ACTIVE;
    free(out->last_error_code);
    free(out->last_error_message);
    out->last_error_code = out->last_error_message = NULL;
    out->last_error_http = 0;
    out->last_error_at = 0;
    bool has_rt = out->refresh_token && out->refresh_token[0];
    out->next_refresh_at =
      policy_next_refresh(now, now, out->expires_at, has_rt, p, rand_fast_u64(&svc->rnd));
    return;
  }

  out->failures = old->failures + 1;
  const char *code = tok->error ? tok->error : "refresh_failed";
  const char *msg = tok->error_description ? tok->error_description : code;
  if (unknown) {
    char m[256];
    snprintf(m, sizeof m, "the token request may have reached the provider, outcome unknown (%s)",
             err_str(neterr));
    set_last_error(out, "refresh_outcome_unknown", m, 0, now);
  } else {
    set_last_error(out, code, msg, tok->http_status, now);
  }
  switch (o) {
  case TOKEN_REAUTH:
    out->status = CONN_NEEDS_REAUTH;
    out->next_refresh_at = 0;
    break;
  case TOKEN_CONFIG:
    out->status = CONN_ERROR;
    out->next_refresh_at = 0;
    break;
  default:
    out->status = CONN_REFRESH_FAILING;
    out->next_refresh_at = policy_backoff(out->failures, tok->retry_after_ms, out->expires_at, now,
                                          rand_fast_u64(&svc->rnd));
    break;
  }
}

/* The first definite outcome of a connection that was due when the
 * service opened (CONN_ENTRY_RESTART_OVERDUE). Without a reuse grace
 * window at the provider, a refresh in flight when the previous process
 * died may have rotated the refresh token there while the new one was
 * never stored; the stored one is then a replay, and the provider answers
 * invalid_grant (often revoking the grant). That must not read like a user
 * revoking access: it gets its own code, keeps the provider's words and
 * HTTP status, and is logged and counted. Status stays needs_reauth (the
 * grant is gone either way). */
void svc__restart_outcome(conn_entry_t *e, conn_t *next, bool given, const token_result_t *tok,
                          bool unknown)
{
  if (!(e->flags & CONN_ENTRY_RESTART_OVERDUE))
    return;
  if (next->status == CONN_REFRESH_FAILING)
    return; /* transient: the token's fate is still unknown, keep the mark */
  e->flags &= (uint8_t)~CONN_ENTRY_RESTART_OVERDUE;
  if (unknown || given || next->status != CONN_NEEDS_REAUTH || tok->outcome != TOKEN_REAUTH ||
      !tok->error_from_provider || tok->error == NULL || strcmp(tok->error, "invalid_grant") != 0)
    return;
  char m[512];
  snprintf(m, sizeof m,
           "the provider rejected the refresh token after a restart; a refresh in flight when "
           "grantd stopped may have rotated it (reconnect the account). Provider: %s%s%s",
           tok->error, tok->error_description ? ": " : "",
           tok->error_description ? tok->error_description : "");
  set_last_error(next, "refresh_token_lost_in_restart", m, tok->http_status, next->last_error_at);
  log_warn("rotation_lost_on_restart", "id", e->id, "provider", e->prov->p.name, "#http",
           LOG_I64(tok->http_status));
  metrics_counter_inc("grantd_rotation_lost_on_restart_total", NULL);
}
