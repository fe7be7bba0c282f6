/*
 * tls_int.h - private pieces shared by the tls_*.c files (not a public API).
 *
 * tls_stream.c implements the stream_t (the engine pump, writes, close);
 * tls_client.c and tls_server.c set up the side-specific BearSSL contexts and
 * plug into the pump through tls__side_t hooks; tls_anchors.c decodes PEM
 * files (trust anchors, certificate chains, private keys).
 */
#ifndef GRANTD_NET_TLS_INT_H
#define GRANTD_NET_TLS_INT_H

#include <bearssl.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "net/tls.h"
#include "net/x509_ip.h"

/* ---- PEM decoding (tls_anchors.c) ---------------------------------------- */

/* A growable array of trust anchors; each owns its DN and key bytes. */
typedef struct {
  br_x509_trust_anchor *v;
  size_t n, cap;
} tls__anchors_t;

/* Appends the anchors decoded from every CERTIFICATE in the PEM file;
 * undecodable certificates are skipped. @return 0, -errno, or
 * GRANTD_ECONFIG when the file holds no usable certificate. */
int tls__anchors_load(tls__anchors_t *a, const char *path);
/* The same from PEM text in memory. */
int tls__anchors_load_pem(tls__anchors_t *a, const char *pem, size_t len);
void tls__anchors_free(tls__anchors_t *a);

/* A certificate chain (DER, leaf first) read from a PEM file. */
typedef struct {
  br_x509_certificate *v;
  size_t n;
} tls__chain_t;

/* @return 0, -errno, or GRANTD_ECONFIG (no certificate / bad PEM). */
int tls__chain_load(tls__chain_t *c, const char *path);
/* The same from PEM text in memory. */
int tls__chain_load_pem(tls__chain_t *c, const char *pem, size_t len);
void tls__chain_free(tls__chain_t *c);

/* A private key (RSA or EC) whose component bytes the struct owns. */
typedef struct {
  int type; /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
  br_rsa_private_key rsa;
  br_ec_private_key ec;
  unsigned char *mem; /* the copied components (wiped on free) */
  size_t mem_len;
} tls__key_t;

/* Loads the first private key of the PEM file. @return 0, -errno, or
 * GRANTD_ECONFIG. */
int tls__key_load(tls__key_t *k, const char *path);
/* The same from PEM text in memory. */
int tls__key_load_pem(tls__key_t *k, const char *pem, size_t len);

/* A client certificate chain and its key, parsed and checked
 * (tls_client_cert.c; the rules of tls_client_cert_check()). On success
 * *chain and *key are filled (free both), id is the leaf's SHA-256 and
 * *issuer_key_type the leaf signer's key type; on error nothing is kept
 * and *why says what is wrong. */
int tls__client_cert_load(const char *chain_pem, size_t chain_len, const char *key_pem,
                          size_t key_len, tls__chain_t *chain, tls__key_t *key,
                          unsigned char id[32], unsigned *issuer_key_type, const char **why);

/* The server side's view of a client certificate (tls_server.c): a
 * br_x509_class that runs the minimal engine for trust only, keeps the
 * leaf's DER hash and its public key decoded, and lets an untrusted
 * (self-signed) chain through so the application can judge it. */
typedef struct {
  const br_x509_class *vtable; /* first */
  br_x509_minimal_context xc;
  br_x509_decoder_context dc; /* the leaf, for its public key */
  br_sha256_context h;
  unsigned cert_no;
  int decoded; /* dc holds a whole, valid leaf */
  int has_cert, trusted;
  unsigned char id[32];
} tls__peer_x509_t;
void tls__key_free(tls__key_t *k);

/* Reads a whole PEM file into b (blocking), by base/file.h's rule: a
 * regular file of at most TLS_FILE_MAX bytes. @return 0, -errno when it
 * cannot be read, GRANTD_EFILE_NOT_REGULAR or GRANTD_EFILE_TOO_LARGE. */
#define TLS_FILE_MAX ((size_t)8 << 20)
int tls__read_file(const char *path, buf_t *b);

/* ---- connections (tls_stream.c) ------------------------------------------ */

typedef struct tls__conn_s tls__conn_t;
typedef struct tls__wreq_s tls__wreq_t;

/* What differs between the client and server side. */
typedef struct {
  /* The handshake completed; sets c->resumed, counts, caches the session. */
  void (*hs_done)(tls__conn_t *c);
  /* The handshake failed with err; counts, forgets an offered session. */
  void (*hs_failed)(tls__conn_t *c, int err);
  /* The connection is being freed: drop the context reference. */
  void (*release)(tls__conn_t *c);
} tls__side_t;

struct tls__conn_s {
  stream_t s;
  stream_t *inner;
  const tls__side_t *side;
  br_ssl_engine_context *eng;
  uv_idle_t idle; /* defers work out of API calls into a loop callback */

  tls_handshake_cb hs_cb;
  void *hs_arg;
  stream_read_cb read_cb;
  stream_close_cb close_cb;

  tls__wreq_t *q_head, **q_tail;      /* user writes not fully in the engine */
  tls__wreq_t *sealed, **sealed_tail; /* in the engine, awaiting an inner write */
  tls__wreq_t *done;                  /* finished, callbacks not yet run (status set) */

  buf_t in;        /* ciphertext the engine has not taken yet */
  size_t in_off;   /* consumed prefix of `in` */
  const char *bin; /* borrowed inner read data during the inner read cb */
  size_t bin_len;
  int in_status; /* the inner read side ended with this (UV_EOF ...) */

  unsigned reading : 1, hs_done : 1, hs_reported : 1, read_reported : 1, inner_busy : 1,
    inner_paused : 1, in_pump : 1, again : 1, idle_on : 1, closing : 1, close_started : 1,
    resumed : 1, is_client : 1, writes_failed : 1;
  int pending_closes;

  union {
    struct {
      tls_client_ctx_t *ctx;
      char *origin; /* "host:port", the session cache key */
      unsigned char offered_id[32];
      size_t offered_len;
      br_ssl_client_context cc;
      br_x509_minimal_context xc;
      x509_ip_t xip; /* wraps xc for IP-literal hosts (x509_ip.h) */
      int ip_host;   /* xip is in use */
    } cl;
    struct {
      tls_server_ctx_t *ctx;
      unsigned char loaded_id[32];
      int loaded;
      br_ssl_server_context sc;
      tls__peer_x509_t peer; /* when the context asks for client certificates */
    } sv;
  } u;

  unsigned char iobuf[BR_SSL_BUFSIZE_MONO];
};

/* Algorithm implementations, chosen once per process: BearSSL's
 * br_*_get_default()/set_default_*() probe the CPU (CPUID) on every call,
 * which costs microseconds each inside a VM. Call tls__impls() first from
 * context creation (on the loop thread). */
typedef struct {
  const br_block_ctr_class *aes_ctr; /* AES-NI when available */
  br_ghash ghash;                    /* PCLMUL when available */
  br_chacha20_run chacha20;          /* SSE2 when available */
  br_poly1305_run poly1305;
  br_rsa_pkcs1_vrfy rsa_vrfy;
  const br_ec_impl *ec;
  br_ecdsa_vrfy ecdsa_vrfy;
  br_rsa_private rsa_priv; /* server side */
  br_rsa_pkcs1_sign rsa_sign;
  br_ecdsa_sign ecdsa_sign;
} tls__impls_t;

const tls__impls_t *tls__impls(void);

/* The short TLS 1.2 suite list (AES-GCM first, then ChaCha20-Poly1305). */
extern const uint16_t tls__suites[];
extern const size_t tls__nsuites;

/* Allocates a connection over `inner` with the generic fields set; the
 * caller initialises c->eng and the side fields, then calls
 * tls__conn_start(). */
tls__conn_t *tls__conn_new(stream_t *inner, const tls__side_t *side);

/* Common engine settings once c->eng is initialised (before the reset):
 * TLS 1.2 only, tls__suites, the SHA-2 PRFs, the AES-GCM and
 * ChaCha20-Poly1305 record layers with tls__impls(), the MONO buffer. */
void tls__engine_setup(tls__conn_t *c);

/* Starts the connection: inner reads and the first flight. When init_err is
 * non-zero the connection is failed with it instead (reported from a loop
 * callback). */
void tls__conn_start(tls__conn_t *c, int init_err);

#endif
