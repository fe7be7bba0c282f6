/*
 * revocation.h - token revocation at the provider (revocation.c).
 */
#ifndef GRANTD_SERVICE_REVOCATION_H
#define GRANTD_SERVICE_REVOCATION_H

#include "service/ctx.h"

typedef void (*svc__revoke_cb)(void *arg, const svc_revoke_report_t *rep);

/* Revokes c's refresh token, then its access token, at
 * prov->p.revoke_url (RFC 7009), through the token-request scheduler with
 * revocation = true. c and prov are borrowed for the call only (copy what
 * is needed). done(arg, rep) runs exactly once, from a later loop
 * iteration, also when nothing is attempted (no revoke_url, placeholder
 * provider, no tokens: rep->attempted false). The connection itself is
 * deleted by the caller afterwards. Counts as outstanding work for
 * svc_close. */
void svc__revoke(svc_t *svc, const conn_t *c, svc_prov_t *prov, svc__revoke_cb done, void *arg);

#endif
