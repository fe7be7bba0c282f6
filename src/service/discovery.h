/*
 * discovery.h - provider metadata discovery (discovery.c).
 */
#ifndef GRANTD_SERVICE_DISCOVERY_H
#define GRANTD_SERVICE_DISCOVERY_H

#include "service/ctx.h"

typedef void (*svc__discover_cb)(void *arg, int err, provider_t *p);
/* Largest provider ca_file accepted (read off the loop, regular files
 * only: base/file.h); discovery and the provider put both read it. */
#define SVC_CA_FILE_MAX ((size_t)1 << 20)

/* Fills p's endpoints (authorize/token/revoke URLs, PKCE and auth
 * methods) from the RFC 8414 / OpenID metadata of p->issuer; fields
 * already set in p win. p stays owned by the caller and valid until done;
 * done(arg, err, p) runs exactly once, from a later loop iteration; err
 * GRANTD_EDISCOVERY (or another code) means nothing may be stored. The
 * fetch counts as outstanding work for svc_close. */
void svc__discover(svc_t *svc, provider_t *p, svc__discover_cb done, void *arg);

#endif
