/*
 * err.h - grantd's one int error space.
 *
 * Conventions used across the code base: 0 means success; a negative value is
 * an error. Other negative values are libuv/errno codes
 * (UV_E*), passed through unchanged; grantd's own codes occupy [GRANTD_ERR_BASE, GRANTD_ERR_END_)
 * and are generated from the GRANTD_ERR_MAP X-macro, which gives each a stable snake_case name
 * (used as `last_error.code` and in logs) and a human message.
 */
#ifndef GRANTD_BASE_ERR_H
#define GRANTD_BASE_ERR_H

#define GRANTD_ERR_BASE (-30000)

/* X(NAME, "code_name", "message") */
#define GRANTD_ERR_MAP(X) \
  X(NOT_FOUND, "not_found", "no such record") \
  X(EXISTS, "exists", "record already exists") \
  X(INVALID, "invalid", "invalid argument") \
  X(CONFIG, "config_error", "invalid configuration") \
  X(STORE_DECODE, "record_corrupt", "stored record failed to decode") \
  X(STORE_AUTH, "record_unauthentic", "stored record failed authentication") \
  X(STORE_VERSION, "record_version", "stored record has an unknown schema version") \
  X(STORE_KEY, "record_key_unknown", "stored record is sealed with an unknown key id") \
  X(MAP_FULL, "storage_full", "the store's map is full (raise --map-size)") \
  X(DISK_FULL, "storage_full", "the disk holding the store is full") \
  X(STORE_IO, "store_io", "store commit failed") \
  X(TLS_UNTRUSTED, "tls_untrusted", "server certificate is not trusted") \
  X(TLS_HOSTNAME, "tls_hostname", "server certificate does not match the host name") \
  X(TLS_EXPIRED, "tls_expired", "server certificate is expired or not yet valid") \
  X(TLS_HANDSHAKE, "tls_handshake", "TLS handshake failed") \
  X(TLS_CLOSED, "tls_closed", "TLS connection closed unexpectedly") \
  X(TLS_PROTOCOL, "tls_protocol", "TLS protocol error") \
  X(DNS, "dns_failure", "host name could not be resolved") \
  X(CONNECT, "connect_failed", "could not connect to the server") \
  X(CONNECT_TIMEOUT, "connect_timeout", "connecting to the server timed out") \
  X(TIMEOUT, "timeout", "the server did not answer in time") \
  X(CONN_CLOSED, "connection_closed", "the server closed the connection before answering") \
  X(HTTP_PARSE, "http_parse", "the server sent a malformed HTTP response") \
  X(TOO_LARGE, "response_too_large", "the server's response is too large") \
  X(INSECURE_URL, "insecure_url", "plain http:// URLs are not allowed") \
  X(ENDPOINT_FORBIDDEN, "endpoint_forbidden", \
    "the endpoint's address is loopback, private, link-local or otherwise not public; grantd " \
    "connects there only when allowed (--allow-endpoint-cidr, --allow-private-endpoints)") \
  X(BAD_URL, "bad_url", "malformed URL") \
  X(CANCELLED, "cancelled", "the operation was cancelled") \
  X(SHUTDOWN, "shutting_down", "grantd is shutting down") \
  X(CONFLICT, "conflict", "the request conflicts with the current state") \
  X(REAUTH, "needs_reauth", "the connection needs to be authorized again") \
  X(PROVIDER_CONFIG, "provider_rejected", "the provider rejected the client configuration") \
  X(UPSTREAM, "upstream_error", "the provider could not be reached or answered badly") \
  X(BAD_STATE, "invalid_state", "unknown, expired or already used authorization state") \
  X(DISCOVERY, "discovery_failed", "provider metadata discovery failed") \
  X(OVERLOADED, "overloaded", "too many requests are waiting") \
  X(STORE_WRONG_KEY, "wrong_master_key", \
    "the master key does not match the key this store was sealed with") \
  X(PROVIDER_UNKNOWN, "unknown_provider", "the connection names a provider that does not exist") \
  X(FILE_NOT_REGULAR, "file_not_regular", "not a regular file (a FIFO, device or directory)") \
  X(FILE_TOO_LARGE, "file_too_large", "the file is larger than grantd accepts") \
  X(FILE_UNREADABLE, "file_unreadable", "the file cannot be read (missing, or no permission)") \
  X(LIMIT, "limit_reached", "a configured limit was reached")

enum grantd_err {
  GRANTD_ERR_BASE_ = GRANTD_ERR_BASE - 1,
#define GRANTD_ERR_ENUM_(n, s, m) GRANTD_E##n,
  GRANTD_ERR_MAP(GRANTD_ERR_ENUM_)
#undef GRANTD_ERR_ENUM_
    GRANTD_ERR_END_
};

/* True when `code` is one of grantd's own codes (not a libuv/errno code). */
#define GRANTD_IS_OWN_ERR(code) ((code) >= GRANTD_ERR_BASE && (code) < GRANTD_ERR_END_)

/* Stable snake_case name of any error code: grantd's own names from the map;
 * libuv codes map to a small set of network names (connection_refused,
 * connection_reset, dns_failure, timeout, connection_closed, network_error).
 * 0 gives "ok". Never NULL. */
const char *err_name(int code);

/* Human-readable message for any error code. Never NULL. */
const char *err_str(int code);

#endif
