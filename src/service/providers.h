/*
 * providers.h - the provider cache (providers.c): holders by name, token
 * hosts, per-provider TLS trust.
 */
#ifndef GRANTD_SERVICE_PROVIDERS_H
#define GRANTD_SERVICE_PROVIDERS_H

#include "service/ctx.h"

/* Finds the holder for a name (placeholders included), or NULL. */
svc_prov_t *svc__prov_find(svc_t *svc, const char *name);
/* Finds or creates (as a placeholder) the holder for name[0..len). */
svc_prov_t *svc__prov_get_n(svc_t *svc, const char *name, size_t len);
#define svc__prov_get(svc, name) svc__prov_get_n((svc), (name), strlen(name))

/* Trust for a provider's own CA file: svc->opts.tls plus p->ca_file
 * (blocking file read: provider puts and start-up only). *out is NULL
 * when the provider has no ca_file (or there is no base context, logged).
 * Returns 0 or the tls_client_ctx_derive error (logged). */
int svc__prov_tls(svc_t *svc, const provider_t *p, tls_client_ctx_t **out);
/* Installs p (moved) as the cached provider of its holder, with its TLS
 * context (moved, may be NULL): host, rate limit (reconfigured, so the
 * last window's admissions still count) and host_validated are reset. */
svc_prov_t *svc__prov_install(svc_t *svc, provider_t *p, tls_client_ctx_t *tls);
/* Moves pv's TLS context to the list freed by svc_free (a queued request
 * may still use it); pv->tls becomes NULL. */
void svc__prov_retire_tls(svc_t *svc, svc_prov_t *pv);
/* svc_free: every holder, host and TLS context. */
void svc__providers_free(svc_t *svc);

#endif
