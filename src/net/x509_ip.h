/*
 * x509_ip.h - server certificates for IP-address hosts (used by tls_client.c).
 *
 * BearSSL's X.509 "minimal" engine matches the server name against dNSName
 * subjectAltNames (and the subject CN) only. For a URL such as
 * https://10.0.3.7:8443/token the certificate must instead carry an
 * iPAddress subjectAltName equal to that address (RFC 5280 4.2.1.6; RFC
 * 6125 / RFC 9525: a CN or a dNSName spelling the address does not count).
 *
 * x509_ip_t is a br_x509_class that wraps a br_x509_minimal_context: chain
 * validation (trust anchors, signatures, validity dates, key usage) stays
 * the minimal engine's, run with no server name; the wrapper additionally
 * keeps a copy of the end-entity certificate's DER as it streams past and,
 * once the minimal engine accepted the chain, looks for an iPAddress
 * subjectAltName of exactly the host's address (4 bytes for IPv4, 16 for
 * IPv6; an IPv4-mapped IPv6 entry does not match an IPv4 host). No match,
 * or a certificate that cannot be decoded, ends the chain with
 * BR_ERR_X509_BAD_SERVER_NAME, which the TLS layer reports as
 * GRANTD_ETLS_HOSTNAME - the same error as a DNS name mismatch.
 *
 * The copied certificate is bounded (X509_IP_MAX_CERT); a larger end-entity
 * certificate fails the same way. Nothing here allocates except that copy,
 * which x509_ip_reset() and the end of the chain release.
 */
#ifndef GRANTD_NET_X509_IP_H
#define GRANTD_NET_X509_IP_H

#include <bearssl.h>
#include <stddef.h>
#include <stdint.h>

#define X509_IP_MAX_CERT (64 * 1024)

typedef struct {
  const br_x509_class *vtable; /* first: &x509_ip_vtable */
  br_x509_minimal_context *inner;
  uint8_t ip[16];
  size_t ip_len;     /* 4 or 16 */
  int cert_no;       /* certificates started in this chain */
  int overflow;      /* the end-entity certificate was too big */
  unsigned char *ee; /* end-entity DER (owned) */
  size_t ee_len, ee_cap;
} x509_ip_t;

/* Parses `host` as an IPv4 or IPv6 literal (strict: inet_pton) into
 * out[16] and returns its length (4 or 16), or 0 when it is a name. */
size_t x509_ip_parse_host(const char *host, uint8_t out[16]);

/* Sets x up to validate chains through `inner` (initialised, with trust
 * anchors, hashes and time set by the caller) for the address ip[0..len).
 * Hand &x->vtable to br_ssl_engine_set_x509(). */
void x509_ip_init(x509_ip_t *x, br_x509_minimal_context *inner, const uint8_t *ip, size_t len);

/* Frees the copied certificate, if any (after a handshake that stopped
 * mid-chain). Idempotent. */
void x509_ip_reset(x509_ip_t *x);

/* Looks through a DER certificate's subjectAltName extensions for an
 * iPAddress equal to ip[0..len).
 * @return 1 (found), 0 (not found, or no SAN extension), -1 (the DER is
 *   malformed). */
int x509_ip_san_match(const unsigned char *der, size_t der_len, const uint8_t *ip, size_t len);

#endif
