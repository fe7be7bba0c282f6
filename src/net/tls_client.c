/*
 * tls_client.c - the client side: contexts (trust anchors, per-origin
 * session cache, counters) and tls_client_wrap().
 *
 * Trust anchors are decoded once per context; every connection's X.509
 * "minimal" engine borrows the context's contiguous anchor array. A derived
 * context (a provider's own CA file) builds a new array of anchor structs
 * that point into its base's decoded data plus its own, and holds a
 * reference on the base.
 *
 * Resumption: a connection to an origin (host:port) the context has a
 * session for offers it (br_ssl_engine_set_session_parameters + reset with
 * resume); the handshake was abbreviated exactly when the server echoed the
 * offered session ID. A resumed handshake costs ~0.15 ms of client CPU
 * against ~1.6-3.7 ms for a full one. The cache is a small array searched
 * linearly: grantd talks to tens of token endpoints, not thousands; past
 * TLS_SESS_MAX the least recently used entry goes. Entries hold master
 * secrets and are wiped when dropped.
 *
 * Client certificates (RFC 8705): a context made by
 * tls_client_ctx_derive_cert() presents one chain and key whenever a server
 * asks. Its session cache is its own, so a session authenticated with one
 * certificate is never resumed by a connection presenting another (or
 * none), and http_client keys its pool by context and certificate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/mem.h"
#include "net/tls_int.h"

#define TLS_SESS_MAX 256

/* Days from 0000-01-01 (proleptic Gregorian, BearSSL's origin) to the Unix
 * epoch. */
#define TLS_EPOCH_DAYS 719528u

typedef struct {
  char *origin;
  uint64_t used;
  br_ssl_session_parameters params;
} tls_sess_t;

struct tls_client_ctx_s {
  int refs;
  tls_client_ctx_t *base;    /* derived contexts: whose anchors we share */
  tls__anchors_t own;        /* anchors this context decoded (owns memory) */
  br_x509_trust_anchor *tas; /* all anchors: own.v, or a merged array */
  size_t ntas;
  int merged;         /* tas is a separate array to free */
  int64_t fixed_time; /* 0 = wall clock */
  tls_stats_t stats;
  tls_sess_t *sess;
  size_t nsess;
  uint64_t tick;
  /* Client certificate, when chain.n > 0 (tls_client_ctx_derive_cert). */
  tls__chain_t chain;
  tls__key_t key;
  unsigned issuer_key_type;
  unsigned char cert_id[32];
};

/* ---- session cache ------------------------------------------------------- */

static tls_sess_t *sess_find(tls_client_ctx_t *ctx, const char *origin)
{
  for (size_t i = 0; i < ctx->nsess; i++)
    if (strcmp(ctx->sess[i].origin, origin) == 0)
      return &ctx->sess[i];
  return NULL;
}

static void sess_drop_at(tls_client_ctx_t *ctx, size_t i)
{
  free(ctx->sess[i].origin);
  ctx->sess[i] = ctx->sess[--ctx->nsess];
  mem_wipe(&ctx->sess[ctx->nsess], sizeof ctx->sess[0]);
}

static void sess_put(tls_client_ctx_t *ctx, const char *origin, const br_ssl_session_parameters *p)
{
  tls_sess_t *e = sess_find(ctx, origin);
  if (e == NULL) {
    if (ctx->sess == NULL)
      ctx->sess = xcalloc(TLS_SESS_MAX, sizeof *ctx->sess);
    if (ctx->nsess == TLS_SESS_MAX) {
      size_t lru = 0;
      for (size_t i = 1; i < ctx->nsess; i++)
        if (ctx->sess[i].used < ctx->sess[lru].used)
          lru = i;
      sess_drop_at(ctx, lru);
    }
    e = &ctx->sess[ctx->nsess++];
    e->origin = xstrdup(origin);
  }
  e->params = *p;
  e->used = ++ctx->tick;
}

void tls_client_ctx_forget_sessions(tls_client_ctx_t *ctx)
{
  while (ctx->nsess > 0)
    sess_drop_at(ctx, ctx->nsess - 1);
}

/* ---- contexts ------------------------------------------------------------ */

static void ctx_unref(tls_client_ctx_t *ctx)
{
  if (ctx == NULL || --ctx->refs > 0)
    return;
  tls_client_ctx_forget_sessions(ctx);
  free(ctx->sess);
  if (ctx->merged)
    free(ctx->tas);
  tls__anchors_free(&ctx->own);
  tls__chain_free(&ctx->chain);
  tls__key_free(&ctx->key);
  tls_client_ctx_t *base = ctx->base;
  free(ctx);
  ctx_unref(base);
}

static int load_opt(tls__anchors_t *a, const char *path)
{
  if (path == NULL || path[0] == '\0')
    return 0;
  return tls__anchors_load(a, path);
}

int tls_client_ctx_new(tls_client_ctx_t **out, const char *bundle_file, const char *extra_ca_file)
{
  tls__impls(); /* choose the algorithm implementations now, once */
  tls_client_ctx_t *ctx = xcalloc(1, sizeof *ctx);
  ctx->refs = 1;
  int err = load_opt(&ctx->own, bundle_file ? bundle_file : TLS_DEFAULT_CA_BUNDLE);
  if (err == 0)
    err = load_opt(&ctx->own, extra_ca_file);
  if (err == 0 && ctx->own.n == 0)
    err = GRANTD_ECONFIG;
  if (err < 0) {
    ctx_unref(ctx);
    return err;
  }
  ctx->tas = ctx->own.v;
  ctx->ntas = ctx->own.n;
  *out = ctx;
  return 0;
}

/* A context trusting base plus what load() added to own. */
static int derive(tls_client_ctx_t **out, tls_client_ctx_t *base, const char *path, const char *pem,
                  size_t len)
{
  tls_client_ctx_t *ctx = xcalloc(1, sizeof *ctx);
  ctx->refs = 1;
  int err = pem != NULL ? tls__anchors_load_pem(&ctx->own, pem, len) : load_opt(&ctx->own, path);
  if (err < 0) {
    ctx_unref(ctx);
    return err;
  }
  ctx->base = base;
  base->refs++;
  ctx->fixed_time = base->fixed_time;
  ctx->ntas = base->ntas + ctx->own.n;
  ctx->tas = xmalloc((ctx->ntas ? ctx->ntas : 1) * sizeof *ctx->tas);
  ctx->merged = 1;
  /* Shallow copies: the DN and key bytes stay owned by base and by own. */
  if (base->ntas)
    memcpy(ctx->tas, base->tas, base->ntas * sizeof *ctx->tas);
  if (ctx->own.n)
    memcpy(ctx->tas + base->ntas, ctx->own.v, ctx->own.n * sizeof *ctx->tas);
  *out = ctx;
  return 0;
}

int tls_client_ctx_derive_cert(tls_client_ctx_t **out, tls_client_ctx_t *base,
                               const char *chain_pem, size_t chain_len, const char *key_pem,
                               size_t key_len, const char **why)
{
  const char *dummy;
  tls__chain_t chain;
  tls__key_t key;
  unsigned char id[32];
  unsigned ikt = 0;
  int rc = tls__client_cert_load(chain_pem, chain_len, key_pem, key_len, &chain, &key, id, &ikt,
                                 why ? why : &dummy);
  if (rc != 0)
    return rc;
  tls_client_ctx_t *ctx = xcalloc(1, sizeof *ctx);
  ctx->refs = 1;
  ctx->base = base;
  base->refs++;
  ctx->fixed_time = base->fixed_time;
  ctx->tas = base->tas; /* borrowed from base, which we hold */
  ctx->ntas = base->ntas;
  ctx->chain = chain;
  ctx->key = key;
  ctx->issuer_key_type = ikt;
  memcpy(ctx->cert_id, id, sizeof id);
  *out = ctx;
  return 0;
}

const unsigned char *tls_client_ctx_cert_id(const tls_client_ctx_t *ctx)
{
  return ctx != NULL && ctx->chain.n > 0 ? ctx->cert_id : NULL;
}

int tls_client_ctx_derive(tls_client_ctx_t **out, tls_client_ctx_t *base, const char *extra_ca_file)
{
  return derive(out, base, extra_ca_file, NULL, 0);
}

int tls_client_ctx_derive_pem(tls_client_ctx_t **out, tls_client_ctx_t *base, const char *pem,
                              size_t len)
{
  return derive(out, base, NULL, pem != NULL ? pem : "", len);
}

void tls_client_ctx_free(tls_client_ctx_t *ctx)
{
  ctx_unref(ctx);
}

size_t tls_client_ctx_anchor_count(const tls_client_ctx_t *ctx)
{
  return ctx->ntas;
}

void tls_client_ctx_set_time(tls_client_ctx_t *ctx, int64_t unix_s)
{
  ctx->fixed_time = unix_s;
}

const tls_stats_t *tls_client_ctx_stats(const tls_client_ctx_t *ctx)
{
  return &ctx->stats;
}

/* ---- connections --------------------------------------------------------- */

static void client_hs_done(tls__conn_t *c)
{
  tls_client_ctx_t *ctx = c->u.cl.ctx;
  br_ssl_session_parameters sp;
  br_ssl_engine_get_session_parameters(c->eng, &sp);
  c->resumed = c->u.cl.offered_len > 0 && sp.session_id_len == c->u.cl.offered_len &&
               memcmp(sp.session_id, c->u.cl.offered_id, sp.session_id_len) == 0;
  if (c->resumed) {
    ctx->stats.resumed++;
  } else {
    ctx->stats.full++;
    if (sp.session_id_len > 0)
      sess_put(ctx, c->u.cl.origin, &sp);
  }
  mem_wipe(&sp, sizeof sp);
}

static void client_hs_failed(tls__conn_t *c, int err)
{
  tls_client_ctx_t *ctx = c->u.cl.ctx;
  (void)err;
  ctx->stats.failed++;
  if (c->u.cl.offered_len > 0) {
    /* Do not offer a session that just failed again. */
    tls_sess_t *e = sess_find(ctx, c->u.cl.origin);
    if (e != NULL)
      sess_drop_at(ctx, (size_t)(e - ctx->sess));
  }
}

static void client_release(tls__conn_t *c)
{
  if (c->u.cl.ip_host)
    x509_ip_reset(&c->u.cl.xip);
  free(c->u.cl.origin);
  ctx_unref(c->u.cl.ctx);
}

/* What br_ssl_client_init_full() sets up, trimmed to TLS 1.2 with our
 * suites and using the implementations chosen once (tls__impls()):
 * init_full probes the CPU for every algorithm family on every call, which
 * was ~20% of a resumed handshake's CPU here. */
static void client_profile(tls__conn_t *c, tls_client_ctx_t *ctx, const uint8_t *ip, size_t ip_len)
{
  static const br_hash_class *const hashes[] = {
    &br_md5_vtable,    &br_sha1_vtable,   &br_sha224_vtable,
    &br_sha256_vtable, &br_sha384_vtable, &br_sha512_vtable,
  };
  const tls__impls_t *im = tls__impls();
  br_ssl_client_context *cc = &c->u.cl.cc;
  br_x509_minimal_context *xc = &c->u.cl.xc;
  br_ssl_client_zero(cc);
  c->eng = &cc->eng;
  br_x509_minimal_init(xc, &br_sha256_vtable, ctx->tas, ctx->ntas);
  for (int id = br_md5_ID; id <= br_sha512_ID; id++) {
    br_ssl_engine_set_hash(c->eng, id, hashes[id - br_md5_ID]);
    br_x509_minimal_set_hash(xc, id, hashes[id - br_md5_ID]);
  }
  c->u.cl.ip_host = 0; /* the union is not zeroed (tls__conn_new) */
  if (ip_len > 0) {
    /* An IP-literal host: the minimal engine validates the chain without
     * a name, the wrapper checks the iPAddress subjectAltName. */
    x509_ip_init(&c->u.cl.xip, xc, ip, ip_len);
    c->u.cl.ip_host = 1;
    br_ssl_engine_set_x509(c->eng, &c->u.cl.xip.vtable);
  } else {
    br_ssl_engine_set_x509(c->eng, &xc->vtable);
  }
  br_ssl_engine_set_rsavrfy(c->eng, im->rsa_vrfy);
  br_ssl_engine_set_ec(c->eng, im->ec);
  br_ssl_engine_set_ecdsa(c->eng, im->ecdsa_vrfy);
  br_x509_minimal_set_rsa(xc, im->rsa_vrfy);
  br_x509_minimal_set_ecdsa(xc, im->ec, im->ecdsa_vrfy);
  /* The client certificate, sent only when the server asks for one. */
  if (ctx->chain.n > 0 && ctx->key.type == BR_KEYTYPE_RSA)
    br_ssl_client_set_single_rsa(cc, ctx->chain.v, ctx->chain.n, &ctx->key.rsa, im->rsa_sign);
  else if (ctx->chain.n > 0)
    br_ssl_client_set_single_ec(cc, ctx->chain.v, ctx->chain.n, &ctx->key.ec, BR_KEYTYPE_SIGN,
                                ctx->issuer_key_type, im->ec, im->ecdsa_sign);
  tls__engine_setup(c);
}

static const tls__side_t client_side = {
  client_hs_done,
  client_hs_failed,
  client_release,
};

stream_t *tls_client_wrap(tls_client_ctx_t *ctx, stream_t *inner, const char *server_name,
                          unsigned port, tls_handshake_cb cb, void *arg)
{
  if (server_name == NULL || server_name[0] == '\0')
    return NULL;
  tls__conn_t *c = tls__conn_new(inner, &client_side);
  c->is_client = 1;
  c->hs_cb = cb;
  c->hs_arg = arg;
  c->u.cl.ctx = ctx;
  ctx->refs++;
  size_t olen = strlen(server_name) + 8;
  c->u.cl.origin = xmalloc(olen);
  snprintf(c->u.cl.origin, olen, "%s:%u", server_name, port & 0xffffu);
  c->u.cl.offered_len = 0;

  uint8_t ip[16];
  size_t ip_len = x509_ip_parse_host(server_name, ip);
  client_profile(c, ctx, ip, ip_len);

  int64_t now = ctx->fixed_time ? ctx->fixed_time : (int64_t)time(NULL);
  if (now < 0)
    now = 0;
  br_x509_minimal_set_time(&c->u.cl.xc, (uint32_t)(now / 86400) + TLS_EPOCH_DAYS,
                           (uint32_t)(now % 86400));

  int resume = 0;
  tls_sess_t *e = sess_find(ctx, c->u.cl.origin);
  if (e != NULL && e->params.session_id_len <= sizeof c->u.cl.offered_id) {
    e->used = ++ctx->tick;
    br_ssl_engine_set_session_parameters(c->eng, &e->params);
    memcpy(c->u.cl.offered_id, e->params.session_id, e->params.session_id_len);
    c->u.cl.offered_len = e->params.session_id_len;
    resume = 1;
  }
  /* No SNI for an IP address (RFC 6066 section 3), and then no name for
   * the minimal engine to match either: x509_ip checks the address. */
  int ok = br_ssl_client_reset(&c->u.cl.cc, ip_len ? NULL : server_name, resume);
  tls__conn_start(c, ok ? 0 : GRANTD_ETLS_HANDSHAKE);
  return &c->s;
}
