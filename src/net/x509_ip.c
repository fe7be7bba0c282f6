/*
 * x509_ip.c - iPAddress subjectAltName checks on top of BearSSL's minimal
 * X.509 engine (see x509_ip.h).
 *
 * The DER reader below knows just enough of RFC 5280 to reach the
 * extensions: Certificate ::= SEQUENCE { tbsCertificate, ... };
 * TBSCertificate ::= SEQUENCE { ..., [3] EXPLICIT Extensions OPTIONAL };
 * Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
 * extnValue OCTET STRING }; the SAN extension's value is GeneralNames ::=
 * SEQUENCE OF GeneralName, where iPAddress is [7] IMPLICIT OCTET STRING
 * (tag 0x87). Only definite lengths and low tag numbers occur in DER
 * certificates; anything else is treated as malformed. The minimal engine
 * has already parsed and verified these same bytes by the time they are
 * read here.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "net/x509_ip.h"

/* ---- DER ------------------------------------------------------------------ */

typedef struct {
  const unsigned char *p, *end;
} der_t;

/* Reads one TLV: tag into *tag, its contents into *val. 0, or -1. */
static int der_next(der_t *d, unsigned *tag, der_t *val)
{
  if (d->end - d->p < 2)
    return -1;
  unsigned t = *d->p++;
  if ((t & 0x1f) == 0x1f)
    return -1; /* high tag numbers: not in certificates */
  size_t len = *d->p++;
  if (len & 0x80) {
    unsigned n = len & 0x7f;
    if (n == 0 || n > 4 || (size_t)(d->end - d->p) < n)
      return -1; /* indefinite or absurd lengths */
    len = 0;
    for (unsigned i = 0; i < n; i++)
      len = (len << 8) | *d->p++;
  }
  if (len > (size_t)(d->end - d->p))
    return -1;
  *tag = t;
  val->p = d->p;
  val->end = d->p + len;
  d->p += len;
  return 0;
}

/* Enters a TLV that must have tag `want`. */
static int der_enter(der_t *d, unsigned want, der_t *val)
{
  unsigned tag;
  if (der_next(d, &tag, val) != 0 || tag != want)
    return -1;
  return 0;
}

#define DER_SEQUENCE 0x30
#define DER_OID 0x06
#define DER_BOOLEAN 0x01
#define DER_OCTETS 0x04
#define DER_EXTENSIONS 0xa3 /* [3] EXPLICIT, constructed */
#define DER_SAN_IP 0x87     /* [7] IMPLICIT OCTET STRING */

/* 2.5.29.17, id-ce-subjectAltName */
static const unsigned char oid_san[] = {0x55, 0x1d, 0x11};

/* Scans GeneralNames for the address. */
static int san_has_ip(der_t names, const uint8_t *ip, size_t len)
{
  der_t seq;
  if (der_enter(&names, DER_SEQUENCE, &seq) != 0 || names.p != names.end)
    return -1;
  int found = 0;
  while (seq.p < seq.end) {
    unsigned tag;
    der_t v;
    if (der_next(&seq, &tag, &v) != 0)
      return -1;
    if (tag == DER_SAN_IP && (size_t)(v.end - v.p) == len && memcmp(v.p, ip, len) == 0)
      found = 1;
  }
  return found;
}

int x509_ip_san_match(const unsigned char *der, size_t der_len, const uint8_t *ip, size_t len)
{
  der_t d = {der, der + der_len}, cert, tbs;
  if (der_enter(&d, DER_SEQUENCE, &cert) != 0 || der_enter(&cert, DER_SEQUENCE, &tbs) != 0)
    return -1;
  int found = 0;
  while (tbs.p < tbs.end) {
    unsigned tag;
    der_t v;
    if (der_next(&tbs, &tag, &v) != 0)
      return -1;
    if (tag != DER_EXTENSIONS)
      continue;
    der_t exts;
    if (der_enter(&v, DER_SEQUENCE, &exts) != 0)
      return -1;
    while (exts.p < exts.end) {
      der_t ext, oid, val;
      if (der_enter(&exts, DER_SEQUENCE, &ext) != 0 || der_enter(&ext, DER_OID, &oid) != 0)
        return -1;
      unsigned t;
      if (der_next(&ext, &t, &val) != 0)
        return -1;
      if (t == DER_BOOLEAN && der_next(&ext, &t, &val) != 0)
        return -1;
      if (t != DER_OCTETS)
        return -1;
      if ((size_t)(oid.end - oid.p) != sizeof oid_san ||
          memcmp(oid.p, oid_san, sizeof oid_san) != 0)
        continue;
      int r = san_has_ip(val, ip, len);
      if (r < 0)
        return -1;
      found |= r;
    }
  }
  return found;
}

/* ---- the br_x509_class wrapper ------------------------------------------ */

static x509_ip_t *self(const br_x509_class *const *ctx)
{
  return (x509_ip_t *)(void *)ctx;
}

static void xi_start_chain(const br_x509_class **ctx, const char *server_name)
{
  x509_ip_t *x = self(ctx);
  (void)server_name; /* the engine has none: SNI is not sent for IPs */
  x509_ip_reset(x);
  x->cert_no = 0;
  x->overflow = 0;
  x->inner->vtable->start_chain(&x->inner->vtable, NULL);
}

static void xi_start_cert(const br_x509_class **ctx, uint32_t length)
{
  x509_ip_t *x = self(ctx);
  if (x->cert_no++ == 0) {
    if (length > X509_IP_MAX_CERT) {
      x->overflow = 1;
    } else {
      x->ee = xmalloc(length ? length : 1);
      x->ee_cap = length;
      x->ee_len = 0;
    }
  }
  x->inner->vtable->start_cert(&x->inner->vtable, length);
}

static void xi_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
  x509_ip_t *x = self(ctx);
  if (x->cert_no == 1 && x->ee != NULL) {
    if (len > x->ee_cap - x->ee_len)
      x->overflow = 1; /* more bytes than announced */
    else {
      memcpy(x->ee + x->ee_len, buf, len);
      x->ee_len += len;
    }
  }
  x->inner->vtable->append(&x->inner->vtable, buf, len);
}

static void xi_end_cert(const br_x509_class **ctx)
{
  x509_ip_t *x = self(ctx);
  x->inner->vtable->end_cert(&x->inner->vtable);
}

static unsigned xi_end_chain(const br_x509_class **ctx)
{
  x509_ip_t *x = self(ctx);
  unsigned r = x->inner->vtable->end_chain(&x->inner->vtable);
  if (r == BR_ERR_OK) {
    int m =
      x->overflow || x->ee == NULL ? -1 : x509_ip_san_match(x->ee, x->ee_len, x->ip, x->ip_len);
    if (m != 1)
      r = BR_ERR_X509_BAD_SERVER_NAME;
  }
  x509_ip_reset(x);
  return r;
}

static const br_x509_pkey *xi_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
  const x509_ip_t *x = (const x509_ip_t *)(const void *)ctx;
  return x->inner->vtable->get_pkey((const br_x509_class *const *)&x->inner->vtable, usages);
}

static const br_x509_class x509_ip_vtable = {
  sizeof(x509_ip_t), xi_start_chain, xi_start_cert, xi_append,
  xi_end_cert,       xi_end_chain,   xi_get_pkey,
};

size_t x509_ip_parse_host(const char *host, uint8_t out[16])
{
  if (host == NULL)
    return 0;
  if (inet_pton(AF_INET, host, out) == 1)
    return 4;
  if (inet_pton(AF_INET6, host, out) == 1)
    return 16;
  return 0;
}

void x509_ip_init(x509_ip_t *x, br_x509_minimal_context *inner, const uint8_t *ip, size_t len)
{
  memset(x, 0, sizeof *x);
  x->vtable = &x509_ip_vtable;
  x->inner = inner;
  memcpy(x->ip, ip, len);
  x->ip_len = len;
}

void x509_ip_reset(x509_ip_t *x)
{
  free(x->ee);
  x->ee = NULL;
  x->ee_len = x->ee_cap = 0;
}
