/*
 * tls_server.c - the server side: a context holding the certificate chain,
 * the private key (RSA or EC) and a session cache, and tls_server_wrap().
 *
 * Used by the mock OAuth provider in tests and benchmarks. Each connection
 * sets up what br_ssl_server_init_full_rsa/_ec would, over the shared chain
 * and key, but with the implementations chosen once (tls__impls(); the
 * init_full functions probe the CPU on every call) and the same short TLS
 * 1.2 suite list as the client; the key type filters it down to ECDHE_RSA
 * or ECDHE_ECDSA suites. The session cache is BearSSL's LRU
 * behind a thin wrapper class whose load() remembers which session a
 * connection looked up, so the handshake can be counted as resumed exactly
 * when that session was the one that got used.
 *
 * Client certificates (tls_server_ctx_request_client_cert): the engine
 * sends a CertificateRequest naming the client CAs, tolerates a client
 * without one, and validates what it gets through tls__peer_x509_t, which
 * hands BearSSL the leaf's key (so CertificateVerify is checked) whether or
 * not the chain leads to a client CA, and remembers the leaf's hash and
 * whether it did.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "net/tls_int.h"

#define TLS_SERVER_CACHE_SESSIONS 512
#define TLS_LRU_ENTRY_BYTES 100 /* per bearssl_ssl.h */

typedef struct {
  const br_ssl_session_cache_class *vtable; /* must be first */
  br_ssl_session_cache_lru lru;
} srv_cache_t;

struct tls_server_ctx_s {
  int refs;
  tls__chain_t chain;
  tls__key_t key;
  unsigned issuer_key_type;
  srv_cache_t cache;
  unsigned char *cache_store;
  size_t cache_len;
  tls_stats_t stats;
  int client_auth;        /* request client certificates */
  tls__anchors_t clients; /* the client CAs */
};

static void cache_save(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
                       const br_ssl_session_parameters *params)
{
  srv_cache_t *cache = container_of(ctx, srv_cache_t, vtable);
  cache->lru.vtable->save(&cache->lru.vtable, sc, params);
}

static int cache_load(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
                      br_ssl_session_parameters *params)
{
  srv_cache_t *cache = container_of(ctx, srv_cache_t, vtable);
  int found = cache->lru.vtable->load(&cache->lru.vtable, sc, params);
  if (found) {
    tls__conn_t *c = container_of(sc, tls__conn_t, u.sv.sc);
    c->u.sv.loaded = 1;
    memcpy(c->u.sv.loaded_id, params->session_id, sizeof c->u.sv.loaded_id);
  }
  return found;
}

static const br_ssl_session_cache_class srv_cache_class = {
  sizeof(srv_cache_t),
  cache_save,
  cache_load,
};

static void ctx_unref(tls_server_ctx_t *ctx)
{
  if (ctx == NULL || --ctx->refs > 0)
    return;
  tls__chain_free(&ctx->chain);
  tls__key_free(&ctx->key);
  tls__anchors_free(&ctx->clients);
  if (ctx->cache_store != NULL) {
    mem_wipe(ctx->cache_store, ctx->cache_len); /* master secrets */
    free(ctx->cache_store);
  }
  mem_wipe(ctx, sizeof *ctx);
  free(ctx);
}

int tls_server_ctx_new(tls_server_ctx_t **out, const char *chain_file, const char *key_file)
{
  tls__impls();
  tls_server_ctx_t *ctx = xcalloc(1, sizeof *ctx);
  ctx->refs = 1;
  int err = tls__chain_load(&ctx->chain, chain_file);
  if (err == 0)
    err = tls__key_load(&ctx->key, key_file);
  if (err < 0) {
    ctx_unref(ctx);
    return err;
  }
  /* The issuer's key type only matters for static ECDH suites, which are
   * not offered; read it from the leaf anyway so BearSSL gets the truth. */
  br_x509_decoder_context dc;
  br_x509_decoder_init(&dc, NULL, NULL);
  br_x509_decoder_push(&dc, ctx->chain.v[0].data, ctx->chain.v[0].data_len);
  ctx->issuer_key_type = br_x509_decoder_get_signer_key_type(&dc);
  if (ctx->issuer_key_type == 0)
    ctx->issuer_key_type = BR_KEYTYPE_EC;

  ctx->cache_len = TLS_SERVER_CACHE_SESSIONS * TLS_LRU_ENTRY_BYTES;
  ctx->cache_store = xmalloc(ctx->cache_len);
  br_ssl_session_cache_lru_init(&ctx->cache.lru, ctx->cache_store, ctx->cache_len);
  ctx->cache.vtable = &srv_cache_class;
  *out = ctx;
  return 0;
}

int tls_server_ctx_request_client_cert(tls_server_ctx_t *ctx, const char *ca_file)
{
  int err = tls__anchors_load(&ctx->clients, ca_file);
  if (err == 0)
    ctx->client_auth = 1;
  return err;
}

void tls_server_ctx_free(tls_server_ctx_t *ctx)
{
  ctx_unref(ctx);
}

const tls_stats_t *tls_server_ctx_stats(const tls_server_ctx_t *ctx)
{
  return &ctx->stats;
}

static void server_hs_done(tls__conn_t *c)
{
  br_ssl_session_parameters sp;
  br_ssl_engine_get_session_parameters(c->eng, &sp);
  c->resumed = c->u.sv.loaded && sp.session_id_len == sizeof c->u.sv.loaded_id &&
               memcmp(sp.session_id, c->u.sv.loaded_id, sp.session_id_len) == 0;
  if (c->resumed)
    c->u.sv.ctx->stats.resumed++;
  else
    c->u.sv.ctx->stats.full++;
  mem_wipe(&sp, sizeof sp);
}

static void server_hs_failed(tls__conn_t *c, int err)
{
  (void)err;
  c->u.sv.ctx->stats.failed++;
}

static void server_release(tls__conn_t *c)
{
  ctx_unref(c->u.sv.ctx);
}

static const tls__side_t server_side = {
  server_hs_done,
  server_hs_failed,
  server_release,
};

/* ---- the client's certificate ------------------------------------------- */

static tls__peer_x509_t *peer_of(const br_x509_class *const *ctx)
{
  return (tls__peer_x509_t *)(void *)ctx;
}

static void px_start_chain(const br_x509_class **ctx, const char *server_name)
{
  tls__peer_x509_t *x = peer_of(ctx);
  x->cert_no = 0;
  x->decoded = x->has_cert = x->trusted = 0;
  x->xc.vtable->start_chain(&x->xc.vtable, server_name);
}

static void px_start_cert(const br_x509_class **ctx, uint32_t length)
{
  tls__peer_x509_t *x = peer_of(ctx);
  if (x->cert_no == 0) {
    br_sha256_init(&x->h);
    br_x509_decoder_init(&x->dc, NULL, NULL);
  }
  x->xc.vtable->start_cert(&x->xc.vtable, length);
}

static void px_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
  tls__peer_x509_t *x = peer_of(ctx);
  if (x->cert_no == 0) {
    br_sha256_update(&x->h, buf, len);
    br_x509_decoder_push(&x->dc, buf, len);
  }
  x->xc.vtable->append(&x->xc.vtable, buf, len);
}

static void px_end_cert(const br_x509_class **ctx)
{
  tls__peer_x509_t *x = peer_of(ctx);
  if (x->cert_no++ == 0) {
    br_sha256_out(&x->h, x->id);
    x->decoded = br_x509_decoder_last_error(&x->dc) == 0 && br_x509_decoder_get_pkey(&x->dc);
  }
  x->xc.vtable->end_cert(&x->xc.vtable);
}

static unsigned px_end_chain(const br_x509_class **ctx)
{
  tls__peer_x509_t *x = peer_of(ctx);
  unsigned r = x->xc.vtable->end_chain(&x->xc.vtable);
  if (x->cert_no == 0 || !x->decoded)
    return r != 0 ? r : BR_ERR_X509_EMPTY_CHAIN;
  x->has_cert = 1;
  x->trusted = r == 0;
  return 0; /* untrusted: for the application to judge */
}

static const br_x509_pkey *px_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
  tls__peer_x509_t *x = peer_of(ctx);
  if (!x->has_cert)
    return NULL;
  if (usages != NULL)
    *usages = BR_KEYTYPE_SIGN;
  return br_x509_decoder_get_pkey(&x->dc);
}

static const br_x509_class peer_x509_vtable = {
  sizeof(tls__peer_x509_t),
  px_start_chain,
  px_start_cert,
  px_append,
  px_end_cert,
  px_end_chain,
  px_get_pkey,
};

int tls_stream_peer_cert(const stream_t *s, unsigned char sha256[32], int *trusted)
{
  if (!tls_stream_is_tls(s))
    return 0;
  const tls__conn_t *c = container_of(s, tls__conn_t, s);
  if (c->is_client || !c->u.sv.ctx->client_auth || !c->hs_done || !c->u.sv.peer.has_cert)
    return 0;
  memcpy(sha256, c->u.sv.peer.id, 32);
  if (trusted != NULL)
    *trusted = c->u.sv.peer.trusted;
  return 1;
}

static void peer_setup(tls__conn_t *c, tls_server_ctx_t *ctx)
{
  static const br_hash_class *const hashes[] = {
    &br_md5_vtable,    &br_sha1_vtable,   &br_sha224_vtable,
    &br_sha256_vtable, &br_sha384_vtable, &br_sha512_vtable,
  };
  const tls__impls_t *im = tls__impls();
  tls__peer_x509_t *x = &c->u.sv.peer;
  memset(x, 0, sizeof *x);
  x->vtable = &peer_x509_vtable;
  br_x509_minimal_init(&x->xc, &br_sha256_vtable, ctx->clients.v, ctx->clients.n);
  for (int id = br_md5_ID; id <= br_sha512_ID; id++)
    br_x509_minimal_set_hash(&x->xc, id, hashes[id - br_md5_ID]);
  br_x509_minimal_set_rsa(&x->xc, im->rsa_vrfy);
  br_x509_minimal_set_ecdsa(&x->xc, im->ec, im->ecdsa_vrfy);
  br_ssl_engine_set_x509(c->eng, &x->vtable);
  br_ssl_engine_set_rsavrfy(c->eng, im->rsa_vrfy);
  br_ssl_engine_set_ecdsa(c->eng, im->ecdsa_vrfy);
  br_ssl_server_set_trust_anchor_names_alt(&c->u.sv.sc, ctx->clients.v, ctx->clients.n);
  br_ssl_engine_add_flags(c->eng, BR_OPT_TOLERATE_NO_CLIENT_AUTH);
}

static void server_profile(tls__conn_t *c, tls_server_ctx_t *ctx)
{
  static const br_hash_class *const hashes[] = {
    &br_md5_vtable,    &br_sha1_vtable,   &br_sha224_vtable,
    &br_sha256_vtable, &br_sha384_vtable, &br_sha512_vtable,
  };
  const tls__impls_t *im = tls__impls();
  br_ssl_server_context *sc = &c->u.sv.sc;
  br_ssl_server_zero(sc);
  c->eng = &sc->eng;
  for (int id = br_md5_ID; id <= br_sha512_ID; id++)
    br_ssl_engine_set_hash(c->eng, id, hashes[id - br_md5_ID]);
  br_ssl_engine_set_ec(c->eng, im->ec); /* ECDHE */
  /* Signing only: ECDHE suites; no static RSA or ECDH key exchange. */
  if (ctx->key.type == BR_KEYTYPE_RSA)
    br_ssl_server_set_single_rsa(sc, ctx->chain.v, ctx->chain.n, &ctx->key.rsa, BR_KEYTYPE_SIGN,
                                 im->rsa_priv, im->rsa_sign);
  else
    br_ssl_server_set_single_ec(sc, ctx->chain.v, ctx->chain.n, &ctx->key.ec, BR_KEYTYPE_SIGN,
                                ctx->issuer_key_type, im->ec, im->ecdsa_sign);
  tls__engine_setup(c);
  if (ctx->client_auth)
    peer_setup(c, ctx);
}

stream_t *tls_server_wrap(tls_server_ctx_t *ctx, stream_t *inner)
{
  tls__conn_t *c = tls__conn_new(inner, &server_side);
  c->u.sv.ctx = ctx;
  ctx->refs++;
  c->u.sv.loaded = 0;
  server_profile(c, ctx);
  br_ssl_server_context *sc = &c->u.sv.sc;
  if (!ctx->client_auth)
    br_ssl_server_set_cache(sc, &ctx->cache.vtable);
  int ok = br_ssl_server_reset(sc);
  tls__conn_start(c, ok ? 0 : GRANTD_ETLS_HANDSHAKE);
  return &c->s;
}

stream_t *tls_server_wrap_hook(void *arg, stream_t *tcp)
{
  return tls_server_wrap(arg, tcp);
}
