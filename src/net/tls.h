/*
 * tls.h - TLS 1.2 as a stream_t layer over another stream_t (BearSSL 0.6).
 *
 * A TLS stream wraps an inner stream (plain TCP from stream_tcp.c) and pumps
 * BearSSL's engine between the two: ciphertext read from the inner stream is
 * fed to the engine, records the engine produces are written to the inner
 * stream (one inner write at a time, copied out of the engine buffer), and
 * plaintext goes to the stream's reader. The stream semantics are exactly
 * those of stream.h, plus:
 *
 * - Writes may be issued before the handshake completes; they are queued and
 *   sent once it has. A write's callback runs when its bytes have been
 *   encrypted and the inner write carrying them has completed. Zero-length
 *   writes are rejected with UV_EINVAL.
 * - A close_notify from the peer ends the stream: the reader gets UV_EOF.
 *   A TCP end of stream without close_notify (truncation) is
 *   GRANTD_ETLS_CLOSED. An inner read/write error is passed through (a libuv
 *   code such as UV_ECONNRESET).
 * - Handshake failures are GRANTD_ETLS_UNTRUSTED (chain does not lead to a
 *   trust anchor, or any other certificate chain error),
 *   GRANTD_ETLS_HOSTNAME (no name in the certificate matches, or for an
 *   IP-address host no iPAddress subjectAltName equal to it),
 *   GRANTD_ETLS_EXPIRED (a certificate is expired or not yet valid) or
 *   GRANTD_ETLS_HANDSHAKE (anything else, e.g. no common suite, a fatal
 *   alert from the peer). Record/protocol errors after the handshake are
 *   GRANTD_ETLS_PROTOCOL.
 * - The first error (or UV_EOF after a close_notify) is sticky in
 *   stream_t.error until the stream is closed; later writes return it and
 *   queued writes complete with it.
 * - stream_close() sends a close_notify when the session is healthy and no
 *   inner write is in flight (best effort: it never waits for the peer),
 *   then closes the inner stream; the TLS stream is freed after the inner
 *   stream's close callback, right after the user's close callback.
 *
 * Only TLS 1.2 is offered, with a short suite list, AES-GCM first:
 * ECDHE_ECDSA/ECDHE_RSA with AES_128_GCM_SHA256, then AES_256_GCM_SHA384,
 * then CHACHA20_POLY1305_SHA256. A connection takes ~24 KB (engine context,
 * one half-duplex BR_SSL_BUFSIZE_MONO buffer, X.509 validation context).
 *
 * Contexts are long-lived and reference counted by the connections that use
 * them: freeing a context while connections are open is safe (it is released
 * when the last one closes). Everything runs on one loop thread.
 */
#ifndef GRANTD_NET_TLS_H
#define GRANTD_NET_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "net/stream.h"

/* The system trust store used when no bundle is named. */
#define TLS_DEFAULT_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

typedef struct tls_client_ctx_s tls_client_ctx_t;
typedef struct tls_server_ctx_s tls_server_ctx_t;

/* Handshake counters of a context (client or server side). */
typedef struct {
  uint64_t full;    /* completed full handshakes */
  uint64_t resumed; /* completed abbreviated (resumed) handshakes */
  uint64_t failed;  /* handshakes that ended in an error */
} tls_stats_t;

/* Runs exactly once per client stream: with 0 when the handshake completed
 * (tls_stream_resumed() tells whether the session was resumed), or with the
 * error that ended it, or with UV_ECANCELED when the stream was closed
 * before the handshake ended (then before the close callback). */
typedef void (*tls_handshake_cb)(stream_t *s, int status, void *arg);

/* ---- client ------------------------------------------------------------ */

/* Creates a client context: decodes the trust anchors once, from the PEM
 * bundle `bundle_file` (NULL = TLS_DEFAULT_CA_BUNDLE, "" = none) plus the PEM
 * file `extra_ca_file` (NULL or "" = none; e.g. --ca-file). Certificates a
 * bundle holds that BearSSL cannot decode are skipped. Reads the files with
 * blocking I/O: call at start-up or configuration time only.
 * @param out the new context on success (free with tls_client_ctx_free()).
 * Files must be regular files of at most 8 MiB (base/file.h).
 * @return 0; a negated errno (UV_ENOENT ...) when a file cannot be read;
 *   GRANTD_EFILE_NOT_REGULAR (FIFO, device, directory) or
 *   GRANTD_EFILE_TOO_LARGE;
 *   GRANTD_ECONFIG when a named file holds no usable certificate or no
 *   anchor at all was loaded. */
int tls_client_ctx_new(tls_client_ctx_t **out, const char *bundle_file, const char *extra_ca_file);

/* Creates a context trusting everything `base` trusts plus the certificates
 * in `extra_ca_file` (a provider's own CA file). base's decoded anchors are
 * shared, not copied (base stays alive as long as the derived context does,
 * whatever order they are freed in). The new context has its own session
 * cache, counters and time setting.
 * @return 0, or the errors of tls_client_ctx_new(). */
int tls_client_ctx_derive(tls_client_ctx_t **out, tls_client_ctx_t *base,
                          const char *extra_ca_file);
/* Like tls_client_ctx_derive() with the extra certificates given as PEM
 * text (e.g. read off the loop with file_read_async()); no file I/O.
 * @return 0, or GRANTD_ECONFIG when the text holds no usable certificate. */
int tls_client_ctx_derive_pem(tls_client_ctx_t **out, tls_client_ctx_t *base, const char *pem,
                              size_t len);

/* Checks a client certificate for mutual TLS (RFC 8705): chain_pem is a
 * PEM chain (leaf first) of certificates BearSSL decodes; key_pem one
 * unencrypted RSA or EC private key (PKCS#1, SEC1, PKCS#8) of the leaf's
 * type (RSA of 2048 bits or more; EC on P-256, P-384 or P-521) that is the
 * leaf's own key (same modulus / same point). No I/O.
 * @param id   when non-NULL, set to the SHA-256 of the leaf's DER (RFC
 *             8705 section 3.1, x5t#S256).
 * @param why  on error, a static sentence naming the field and the fault.
 * @return 0, or GRANTD_EINVALID. */
int tls_client_cert_check(const char *chain_pem, size_t chain_len, const char *key_pem,
                          size_t key_len, unsigned char id[32], const char **why);

/* Creates a context trusting exactly what `base` trusts (anchors shared,
 * base kept alive) that presents the client certificate chain_pem with
 * key_pem whenever a server requests one (TLS CertificateRequest); the
 * chain and key are parsed and checked as by tls_client_cert_check() and
 * copied (the key wiped when the context goes). The context has its own
 * session cache and counters, so sessions never cross certificates.
 * @return 0, or GRANTD_EINVALID (with *why). */
int tls_client_ctx_derive_cert(tls_client_ctx_t **out, tls_client_ctx_t *base,
                               const char *chain_pem, size_t chain_len, const char *key_pem,
                               size_t key_len, const char **why);

/* The SHA-256 of the DER leaf certificate ctx presents (its identity for
 * the connection pool), or NULL when it presents none (or ctx is NULL). */
const unsigned char *tls_client_ctx_cert_id(const tls_client_ctx_t *ctx);

/* Drops the caller's reference; the context is freed (its cached session
 * secrets wiped) when no stream uses it any more. NULL is ignored. */
void tls_client_ctx_free(tls_client_ctx_t *ctx);

/* Number of trust anchors the context validates against. */
size_t tls_client_ctx_anchor_count(const tls_client_ctx_t *ctx);

/* Validates certificates as of `unix_s` (seconds since the epoch) instead of
 * the wall clock; 0 returns to the wall clock. For tests. Applies to
 * handshakes started afterwards. */
void tls_client_ctx_set_time(tls_client_ctx_t *ctx, int64_t unix_s);

/* Forgets every cached session, so the next connections do full
 * handshakes (benchmarks; after a trust change). */
void tls_client_ctx_forget_sessions(tls_client_ctx_t *ctx);

/* Handshake counters (live; owned by ctx). */
const tls_stats_t *tls_client_ctx_stats(const tls_client_ctx_t *ctx);

/* Starts a TLS client over `inner` (connected; its read side not started).
 * The ClientHello carries SNI = server_name; the server's chain is
 * validated against ctx's anchors and for server_name. When server_name is
 * an IPv4 or IPv6 literal (no brackets), no SNI is sent (RFC 6066) and
 * the end-entity certificate must carry an iPAddress subjectAltName equal
 * to that address (x509_ip.h); otherwise its dNSName entries are matched.
 * Either mismatch is GRANTD_ETLS_HOSTNAME. If ctx holds a
 * session for "server_name:port" it is offered for resumption, and a newly
 * negotiated session is cached under that key.
 * @param server_name host name to send and verify (copied; required).
 * @param port the origin's port, part of the session cache key.
 * @param cb handshake callback (may be NULL); runs from a loop callback,
 *   never from inside this call.
 * @return the TLS stream, which now owns `inner` (closing it closes inner);
 *   NULL only when server_name is NULL or empty (inner untouched). Errors
 *   found while starting (e.g. the first inner write failing) are reported
 *   through cb / the reader like any other. s->loop is inner->loop; the
 *   wrapper sets inner->data for itself. */
stream_t *tls_client_wrap(tls_client_ctx_t *ctx, stream_t *inner, const char *server_name,
                          unsigned port, tls_handshake_cb cb, void *arg);

/* ---- server ------------------------------------------------------------ */

/* Creates a server context from a PEM certificate chain (leaf first, then
 * intermediates) and a PEM private key (RSA or EC; PKCS#8 "PRIVATE KEY",
 * "RSA PRIVATE KEY" or "EC PRIVATE KEY"), with a session cache (LRU, 512
 * sessions) so clients can resume. Blocking file I/O: start-up only.
 * @return 0; a negated errno when a file cannot be read; GRANTD_ECONFIG when
 *   the chain or the key cannot be decoded. */
int tls_server_ctx_new(tls_server_ctx_t **out, const char *chain_file, const char *key_file);

/* Makes ctx ask every client for a certificate (mutual TLS): the
 * CertificateRequest names the CAs of the PEM file ca_file, against which
 * a presented chain is validated. A client may send no certificate, or one
 * that does not chain to those CAs (a self-signed one): the handshake goes
 * on either way (the client must still prove its key with
 * CertificateVerify), and tls_stream_peer_cert() tells what was presented,
 * for the application to judge. Sessions are no longer cached (a resumed
 * session carries no certificate). Blocking file I/O: start-up only.
 * @return 0, a negated errno, or GRANTD_ECONFIG (no certificate). */
int tls_server_ctx_request_client_cert(tls_server_ctx_t *ctx, const char *ca_file);

/* Drops the caller's reference (freed, key wiped, when no stream uses it
 * any more). NULL is ignored. */
void tls_server_ctx_free(tls_server_ctx_t *ctx);

/* Handshake counters (live; owned by ctx). */
const tls_stats_t *tls_server_ctx_stats(const tls_server_ctx_t *ctx);

/* Starts a TLS server over an accepted `inner` stream (read side not
 * started). Handshake errors go to the reader (and to queued writes), as
 * there is no handshake callback. Never fails: returns the TLS stream, which
 * owns `inner`. */
stream_t *tls_server_wrap(tls_server_ctx_t *ctx, stream_t *inner);

/* tls_server_wrap() in the shape of http_server's wrap hook:
 * `arg` is the tls_server_ctx_t *. */
stream_t *tls_server_wrap_hook(void *arg, stream_t *tcp);

/* ---- either side ------------------------------------------------------- */

/* 1 when `s` (a TLS stream) completed its handshake by resuming a session,
 * 0 otherwise. */
int tls_stream_resumed(const stream_t *s);

/* 1 when `s` is a TLS stream made by this module, 0 otherwise. */
int tls_stream_is_tls(const stream_t *s);

/* For a server stream whose context requests client certificates, after
 * the handshake: 1 when the client presented one (and proved its key),
 * with sha256 = the SHA-256 of its DER leaf certificate and *trusted = 1
 * when the chain validated against the context's client CAs; 0 when it
 * presented none (or s is not such a stream). */
int tls_stream_peer_cert(const stream_t *s, unsigned char sha256[32], int *trusted);

#endif
