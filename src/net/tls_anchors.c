/*
 * tls_anchors.c - PEM files to BearSSL structures: trust anchors (CA
 * bundles), certificate chains and private keys.
 *
 * These run at start-up or configuration time with blocking file I/O, once
 * per context; connections only borrow the decoded structures. A CA bundle
 * is decoded once into br_x509_trust_anchor values that own copies of the
 * subject DN and public key, so nothing points into the file buffer or a
 * decoder context afterwards. Private key bytes are wiped when released.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/file.h"
#include "base/mem.h"
#include "net/tls_int.h"

int tls__read_file(const char *path, buf_t *b)
{
  int sys = 0;
  int rc = file_read(path, TLS_FILE_MAX, b, &sys);
  if (rc == GRANTD_EFILE_UNREADABLE)
    return sys != 0 ? -sys : -EIO;
  return rc;
}

/* Called once per PEM object with its name and DER bytes; returns 0 to go
 * on or an error to stop. */
typedef int (*pem_obj_fn)(const char *name, const unsigned char *der, size_t len, void *arg);

static void pem_append(void *dest, const void *src, size_t len)
{
  buf_append(dest, src, len);
}

static int pem_each(const char *data, size_t len, pem_obj_fn fn, void *arg);

/* Decodes every PEM object of the file in order. @return 0, -errno,
 * GRANTD_EFILE_NOT_REGULAR / _TOO_LARGE, GRANTD_ECONFIG for malformed
 * PEM, or the first error of fn. */
static int pem_each_in_file(const char *path, pem_obj_fn fn, void *arg)
{
  buf_t file = BUF_INIT;
  int err = tls__read_file(path, &file);
  if (err == 0)
    err = pem_each(file.data ? file.data : "", file.len, fn, arg);
  buf_wipe_free(&file);
  return err;
}

/* The same over PEM text in memory. */
static int pem_each(const char *data, size_t len, pem_obj_fn fn, void *arg)
{
  buf_t file = BUF_INIT, der = BUF_INIT;
  int err = 0;
  buf_append(&file, data, len);
  /* A final newline lets the decoder see the last END line even when the
   * file lacks one. */
  buf_putc(&file, '\n');

  br_pem_decoder_context pc;
  br_pem_decoder_init(&pc);
  char name[128] = "";
  int in_obj = 0;
  const unsigned char *p = (const unsigned char *)file.data;
  size_t left = file.len;
  while (left > 0 && err == 0) {
    size_t used = br_pem_decoder_push(&pc, p, left);
    p += used;
    left -= used;
    switch (br_pem_decoder_event(&pc)) {
    case BR_PEM_BEGIN_OBJ:
      snprintf(name, sizeof name, "%s", br_pem_decoder_name(&pc));
      buf_reset(&der);
      br_pem_decoder_setdest(&pc, pem_append, &der);
      in_obj = 1;
      break;
    case BR_PEM_END_OBJ:
      if (in_obj)
        err = fn(name, (const unsigned char *)der.data, der.len, arg);
      br_pem_decoder_setdest(&pc, NULL, NULL);
      in_obj = 0;
      break;
    case BR_PEM_ERROR: err = GRANTD_ECONFIG; break;
    default: break;
    }
  }
  if (err == 0 && in_obj)
    err = GRANTD_ECONFIG; /* truncated object */
  buf_wipe_free(&der);    /* may have held a private key */
  buf_wipe_free(&file);
  return err;
}

/* ---- trust anchors ------------------------------------------------------- */

struct anchors_load {
  tls__anchors_t *a;
  size_t certs;
};

static void *dup_or_empty(const void *p, size_t n)
{
  return n ? xmemdup(p, n) : xmalloc(1);
}

static int anchor_from_cert(const char *name, const unsigned char *der, size_t len, void *arg)
{
  struct anchors_load *st = arg;
  if (strcmp(name, "CERTIFICATE") != 0 && strcmp(name, "X509 CERTIFICATE") != 0)
    return 0;
  st->certs++;

  buf_t dn = BUF_INIT;
  br_x509_decoder_context dc;
  br_x509_decoder_init(&dc, pem_append, &dn);
  br_x509_decoder_push(&dc, der, len);
  const br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
  if (pk == NULL) {
    /* Unsupported key type or encoding: skip it, as a bundle may hold
     * certificates BearSSL cannot use. */
    buf_free(&dn);
    return 0;
  }

  tls__anchors_t *a = st->a;
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 16;
    a->v = xrealloc(a->v, a->cap * sizeof *a->v);
  }
  br_x509_trust_anchor *ta = &a->v[a->n++];
  memset(ta, 0, sizeof *ta);
  ta->dn.data = dup_or_empty(dn.data, dn.len);
  ta->dn.len = dn.len;
  /* A certificate that is not a CA becomes a direct-trust anchor: its key
   * is accepted as the server's key (e.g. a self-signed --ca-file). */
  ta->flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
  ta->pkey.key_type = pk->key_type;
  if (pk->key_type == BR_KEYTYPE_RSA) {
    ta->pkey.key.rsa.n = dup_or_empty(pk->key.rsa.n, pk->key.rsa.nlen);
    ta->pkey.key.rsa.nlen = pk->key.rsa.nlen;
    ta->pkey.key.rsa.e = dup_or_empty(pk->key.rsa.e, pk->key.rsa.elen);
    ta->pkey.key.rsa.elen = pk->key.rsa.elen;
  } else {
    ta->pkey.key.ec.curve = pk->key.ec.curve;
    ta->pkey.key.ec.q = dup_or_empty(pk->key.ec.q, pk->key.ec.qlen);
    ta->pkey.key.ec.qlen = pk->key.ec.qlen;
  }
  buf_free(&dn);
  return 0;
}

int tls__anchors_load(tls__anchors_t *a, const char *path)
{
  struct anchors_load st = {a, 0};
  size_t before = a->n;
  int err = pem_each_in_file(path, anchor_from_cert, &st);
  if (err < 0)
    return err;
  return a->n > before ? 0 : GRANTD_ECONFIG;
}

int tls__anchors_load_pem(tls__anchors_t *a, const char *pem, size_t len)
{
  struct anchors_load st = {a, 0};
  size_t before = a->n;
  int err = pem_each(pem, len, anchor_from_cert, &st);
  if (err < 0)
    return err;
  return a->n > before ? 0 : GRANTD_ECONFIG;
}

void tls__anchors_free(tls__anchors_t *a)
{
  for (size_t i = 0; i < a->n; i++) {
    br_x509_trust_anchor *ta = &a->v[i];
    free(ta->dn.data);
    if (ta->pkey.key_type == BR_KEYTYPE_RSA) {
      free(ta->pkey.key.rsa.n);
      free(ta->pkey.key.rsa.e);
    } else {
      free(ta->pkey.key.ec.q);
    }
  }
  free(a->v);
  memset(a, 0, sizeof *a);
}

/* ---- certificate chains -------------------------------------------------- */

static int chain_add(const char *name, const unsigned char *der, size_t len, void *arg)
{
  tls__chain_t *c = arg;
  if (strcmp(name, "CERTIFICATE") != 0 && strcmp(name, "X509 CERTIFICATE") != 0)
    return 0;
  if (len == 0)
    return GRANTD_ECONFIG;
  c->v = xrealloc(c->v, (c->n + 1) * sizeof *c->v);
  c->v[c->n].data = xmemdup(der, len);
  c->v[c->n].data_len = len;
  c->n++;
  return 0;
}

int tls__chain_load(tls__chain_t *c, const char *path)
{
  memset(c, 0, sizeof *c);
  int err = pem_each_in_file(path, chain_add, c);
  if (err == 0 && c->n == 0)
    err = GRANTD_ECONFIG;
  if (err < 0)
    tls__chain_free(c);
  return err;
}

int tls__chain_load_pem(tls__chain_t *c, const char *pem, size_t len)
{
  memset(c, 0, sizeof *c);
  int err = pem_each(pem, len, chain_add, c);
  if (err == 0 && c->n == 0)
    err = GRANTD_ECONFIG;
  if (err < 0)
    tls__chain_free(c);
  return err;
}

void tls__chain_free(tls__chain_t *c)
{
  for (size_t i = 0; i < c->n; i++)
    free(c->v[i].data);
  free(c->v);
  memset(c, 0, sizeof *c);
}

/* ---- private keys -------------------------------------------------------- */

/* Copies n bytes into the key's block at *off; returns where they went. */
static unsigned char *key_put(tls__key_t *k, size_t *off, const void *p, size_t n)
{
  unsigned char *dst = k->mem + *off;
  memcpy(dst, p, n);
  *off += n;
  return dst;
}

static int key_take(const char *name, const unsigned char *der, size_t len, void *arg)
{
  tls__key_t *k = arg;
  if (k->type != 0)
    return 0; /* the first key wins */
  if (strcmp(name, "PRIVATE KEY") != 0 && strcmp(name, "RSA PRIVATE KEY") != 0 &&
      strcmp(name, "EC PRIVATE KEY") != 0)
    return 0;

  br_skey_decoder_context dc;
  br_skey_decoder_init(&dc);
  br_skey_decoder_push(&dc, der, len);
  int err = 0;
  size_t off = 0;
  if (br_skey_decoder_last_error(&dc) != 0) {
    err = GRANTD_ECONFIG;
  } else if (br_skey_decoder_key_type(&dc) == BR_KEYTYPE_RSA) {
    const br_rsa_private_key *sk = br_skey_decoder_get_rsa(&dc);
    k->mem_len = sk->plen + sk->qlen + sk->dplen + sk->dqlen + sk->iqlen;
    k->mem = xmalloc(k->mem_len ? k->mem_len : 1);
    k->rsa = *sk;
    k->rsa.p = key_put(k, &off, sk->p, sk->plen);
    k->rsa.q = key_put(k, &off, sk->q, sk->qlen);
    k->rsa.dp = key_put(k, &off, sk->dp, sk->dplen);
    k->rsa.dq = key_put(k, &off, sk->dq, sk->dqlen);
    k->rsa.iq = key_put(k, &off, sk->iq, sk->iqlen);
    k->type = BR_KEYTYPE_RSA;
  } else if (br_skey_decoder_key_type(&dc) == BR_KEYTYPE_EC) {
    const br_ec_private_key *sk = br_skey_decoder_get_ec(&dc);
    k->mem_len = sk->xlen;
    k->mem = xmalloc(k->mem_len ? k->mem_len : 1);
    k->ec.curve = sk->curve;
    k->ec.x = key_put(k, &off, sk->x, sk->xlen);
    k->ec.xlen = sk->xlen;
    k->type = BR_KEYTYPE_EC;
  } else {
    err = GRANTD_ECONFIG;
  }
  mem_wipe(&dc, sizeof dc); /* the decoder holds the key too */
  return err;
}

int tls__key_load(tls__key_t *k, const char *path)
{
  memset(k, 0, sizeof *k);
  int err = pem_each_in_file(path, key_take, k);
  if (err == 0 && k->type == 0)
    err = GRANTD_ECONFIG;
  if (err < 0)
    tls__key_free(k);
  return err;
}

int tls__key_load_pem(tls__key_t *k, const char *pem, size_t len)
{
  memset(k, 0, sizeof *k);
  int err = pem_each(pem, len, key_take, k);
  if (err == 0 && k->type == 0)
    err = GRANTD_ECONFIG;
  if (err < 0)
    tls__key_free(k);
  return err;
}

void tls__key_free(tls__key_t *k)
{
  if (k->mem != NULL) {
    mem_wipe(k->mem, k->mem_len);
    free(k->mem);
  }
  mem_wipe(k, sizeof *k);
}
