/*
 * providers.c - the provider cache: one holder per provider name (sorted
 * array, binary search), the token hosts their token URLs share (the
 * per-host limit and its metrics label), and each provider's own TLS
 * trust for its ca_file.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/metrics.h"
#include "base/url.h"
#include "service/providers.h"

static svc_host_t *host_for(svc_t *svc, const char *url)
{
  url_t u;
  if (url == NULL || url_parse(url, &u) != 0)
    return NULL;
  buf_t origin = BUF_INIT;
  buf_printf(&origin, "%s://%s%s%s:%u", u.scheme, u.is_ipv6 ? "[" : "", u.host,
             u.is_ipv6 ? "]" : "", (unsigned)u.port);
  url_free(&u);
  for (svc_host_t *h = svc->hosts; h; h = h->next) {
    if (strcmp(h->origin, origin.data) == 0) {
      buf_free(&origin);
      return h;
    }
  }
  svc_host_t *h = xcalloc(1, sizeof *h);
  h->origin = buf_steal(&origin);
  buf_t l = BUF_INIT;
  buf_puts(&l, "host=\"");
  metrics_label_escape(&l, h->origin);
  buf_putc(&l, '"');
  h->labels = buf_steal(&l);
  h->next = svc->hosts;
  svc->hosts = h;
  metrics_gauge_set("grantd_refresh_inflight", h->labels, 0);
  return h;
}

static int name_cmp(const char *a, size_t alen, const char *b)
{
  size_t blen = strlen(b);
  int c = memcmp(a, b, alen < blen ? alen : blen);
  return c ? c : (alen > blen) - (alen < blen);
}

/* Index of name in the sorted array, or of where it would go (*found 0). */
static size_t prov_pos(svc_t *svc, const char *name, size_t len, int *found)
{
  size_t lo = 0, hi = svc->nprovs;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = name_cmp(name, len, svc->provs[mid]->p.name);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  *found = 0;
  return lo;
}

svc_prov_t *svc__prov_find(svc_t *svc, const char *name)
{
  int found;
  if (name == NULL)
    return NULL;
  size_t i = prov_pos(svc, name, strlen(name), &found);
  return found ? svc->provs[i] : NULL;
}

svc_prov_t *svc__prov_get_n(svc_t *svc, const char *name, size_t len)
{
  int found;
  size_t i = prov_pos(svc, name, len, &found);
  if (found)
    return svc->provs[i];
  svc_prov_t *pv = xcalloc(1, sizeof *pv);
  pv->p.name = xstrndup(name, len);
  if (svc->nprovs == svc->provs_cap) {
    svc->provs_cap = svc->provs_cap ? svc->provs_cap * 2 : 16;
    svc->provs = xrealloc(svc->provs, svc->provs_cap * sizeof *svc->provs);
  }
  memmove(&svc->provs[i + 1], &svc->provs[i], (svc->nprovs - i) * sizeof *svc->provs);
  svc->provs[i] = pv;
  svc->nprovs++;
  return pv;
}

/* Trust for a provider's own CA file: svc->opts.tls plus p->ca_file
 * (blocking file read: provider puts and start-up only). */
int svc__prov_tls(svc_t *svc, const provider_t *p, tls_client_ctx_t **out)
{
  *out = NULL;
  if (p->ca_file == NULL || p->ca_file[0] == '\0')
    return 0;
  if (svc->opts.tls == NULL) {
    log_warn("provider_ca_file_ignored", "provider", p->name, "reason", "no base TLS context");
    return 0;
  }
  int rc = tls_client_ctx_derive(out, svc->opts.tls, p->ca_file);
  if (rc != 0)
    log_error("provider_ca_file_unusable", "provider", p->name, "ca_file", p->ca_file, "error",
              err_name(rc));
  return rc;
}

/* The provider's mutual-TLS client certificate (RFC 8705) on top of tls
 * (its ca_file trust, or the service's when NULL): a context of its own
 * that presents the certificate, so its connections and TLS sessions are
 * never shared with a request that presents another or none (see
 * net/http_client.h, Pool). Returns the context to use (tls when the
 * provider has no certificate); tls is released when replaced. */
static tls_client_ctx_t *with_client_cert(svc_t *svc, const provider_t *p, tls_client_ctx_t *tls)
{
  if (p->client_cert == NULL || p->client_cert_key == NULL)
    return tls;
  tls_client_ctx_t *base = tls != NULL ? tls : svc->opts.tls, *out = NULL;
  const char *why = "no base TLS context";
  if (base == NULL ||
      tls_client_ctx_derive_cert(&out, base, p->client_cert, strlen(p->client_cert),
                                 p->client_cert_key, strlen(p->client_cert_key), &why) != 0) {
    /* The API checked the pair; a stored one that no longer loads leaves
     * the provider without its certificate, and the server says so. */
    log_error("provider_client_cert_unusable", "provider", p->name, "reason", why);
    return tls;
  }
  tls_client_ctx_free(tls); /* out holds its own reference on base */
  return out;
}

/* Installs p (moved) as the cached provider of its holder, with its TLS
 * context (moved, may be NULL), wrapped with p's client certificate. */
svc_prov_t *svc__prov_install(svc_t *svc, provider_t *p, tls_client_ctx_t *tls)
{
  tls = with_client_cert(svc, p, tls);
  svc_prov_t *pv = svc__prov_get(svc, p->name);
  svc__prov_retire_tls(svc, pv);
  pv->tls = tls;
  provider_free(&pv->p);
  pv->p = *p;
  memset(p, 0, sizeof *p);
  pv->present = true;
  pv->host = host_for(svc, pv->p.token_url);
  /* Reconfigured, not re-initialised: the admissions of the last window
   * still count, so updating a provider (a new secret ...) grants no new
   * burst. rl_until is recomputed by the next take. */
  if (ratelimit_reconfig(&pv->rl, pv->p.rate_limit_count, pv->p.rate_limit_window * 1000) != 0)
    log_warn("provider_rate_limit_ignored", "provider", pv->p.name);
  pv->rl_until = 0;
  pv->host_validated = false;
  return pv;
}

void svc__prov_retire_tls(svc_t *svc, svc_prov_t *pv)
{
  if (pv->tls == NULL)
    return;
  svc->old_tls = xrealloc(svc->old_tls, (svc->n_old_tls + 1) * sizeof *svc->old_tls);
  svc->old_tls[svc->n_old_tls++] = pv->tls;
  pv->tls = NULL;
}

void svc__providers_free(svc_t *svc)
{
  for (size_t i = 0; i < svc->n_old_tls; i++)
    tls_client_ctx_free(svc->old_tls[i]);
  free(svc->old_tls);
  for (size_t i = 0; i < svc->nprovs; i++) {
    tls_client_ctx_free(svc->provs[i]->tls);
    provider_free(&svc->provs[i]->p);
    heap_free(&svc->provs[i]->queue);
    ratelimit_free(&svc->provs[i]->rl);
    free(svc->provs[i]);
  }
  free(svc->provs);
  while (svc->hosts) {
    svc_host_t *h = svc->hosts;
    svc->hosts = h->next;
    free(h->origin);
    free(h->labels);
    free(h);
  }
}
