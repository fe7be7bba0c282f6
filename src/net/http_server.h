/*
 * http_server.h - inbound HTTP/1.1 server (llhttp over a stream_t).
 *
 * One http_server_t listens on a uv_tcp socket of the caller's loop. Each
 * accepted connection is optionally wrapped (opts.wrap, e.g. by the TLS
 * server layer) and parsed with llhttp. Requests are handed to an
 * asynchronous handler; responses go out in request order even when
 * handlers of pipelined requests finish out of order.
 *
 * Request life cycle:
 *   1. headers complete  -> opts.on_headers(req, arg) (optional): may look at
 *      method/path/headers, choose the body limit (http_req_set_body_limit)
 *      and attach data (http_req_set_data), or refuse the request at once
 *      with http_req_reject() (e.g. 401/404/405 before a large body is
 *      read). It runs inside the parser, so it must not respond otherwise,
 *      close the server or block.
 *   2. body complete     -> opts.handler(req, arg), outside the parser.
 *   3. the handler, now or from any later loop callback, calls http_respond()
 *      or http_respond_ex() exactly once. From that call on, `req` and every
 *      pointer obtained from it (method, path, headers, body, arena memory)
 *      are invalid for the caller; the response bytes are copied first, so
 *      the caller's body may be freed as soon as the call returns.
 *
 * Lifetime rule when the client goes away (EOF, reset, timeout, server
 * close): requests whose handler has not responded yet are detached from
 * the connection and stay valid until the handler responds; the response is
 * then dropped and the request freed. http_req_is_gone() tells a handler
 * that its work is no longer wanted. Handlers MUST respond eventually, even
 * after http_server_close(): a detached request does not reference the
 * server, so responding after the server was freed is fine.
 *
 * Server-generated errors carry {"error":"<code>","message":"<text>"} and
 * close the connection: 400 bad_request (parse error), 408 request_timeout
 * (a request started but did not complete within request_timeout_ms),
 * 413 payload_too_large, 431 headers_too_large, 503 too_many_connections,
 * 503 server_busy (with Retry-After) when accepting a body would take the
 * bytes of request bodies held at once, over all connections, above
 * max_buffered_bytes.
 * An idle keep-alive connection is closed silently after idle_timeout_ms.
 * After a server-initiated close the connection is drained ("lingering
 * close") for a short while so the client reads the error instead of a TCP
 * reset.
 *
 * HTTP/1.0 and "Connection: close" are honoured (the response carries
 * "Connection: close" and the connection closes after it); HTTP/1.1 keeps
 * the connection alive by default. "Expect: 100-continue" is answered with
 * an interim "100 Continue" when the declared body fits the limit and no
 * earlier response is outstanding on the connection; otherwise it is
 * ignored (the client sends the body after its own delay) or answered 413.
 * Upgrade/CONNECT are not supported (400). A client EOF counts as a
 * disconnect, even if the client only half-closed.
 *
 * Back-pressure: a connection stops reading while max_pipelined requests
 * are waiting for their response to be written, so a slow or flooding
 * client cannot make the server buffer unbounded output.
 *
 * Everything runs on the loop thread. Errors: 0 ok, negative libuv code or
 * GRANTD_E* (base/err.h).
 */
#ifndef GRANTD_NET_HTTP_SERVER_H
#define GRANTD_NET_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/arena.h"
#include "net/stream.h"

typedef struct http_server_s http_server_t;
typedef struct http_req_s http_req_t;

/* One request header; name and value are NUL-terminated copies (value
 * without surrounding whitespace), owned by the request. */
typedef struct {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} http_header_t;

/* Called for each complete request (see the life cycle above). */
typedef void (*http_handler_cb)(http_req_t *req, void *arg);
/* Called when a request's headers are complete, before its body is read. */
typedef void (*http_headers_cb)(http_req_t *req, void *arg);
/* Called once per response the server sends or drops: `req` is the request
 * (NULL for errors found before a request's headers were complete, e.g. a
 * 503 at accept or a 400 on garbage), `status` the HTTP status, latency_us
 * the time since the request's first byte (0 without a request). Runs from
 * http_respond*() (the handler's call) or from the server itself for its
 * own errors; http_req_data() is still readable. Not called for responses
 * to requests whose client has gone. */
typedef void (*http_response_cb)(const http_req_t *req, int status, uint64_t latency_us, void *arg);
/* Wraps an accepted TCP stream (e.g. tls_server_wrap_hook). Returns the
 * stream to use (it now owns `tcp`), or NULL to refuse the connection (the
 * server then closes `tcp`). */
typedef stream_t *(*http_wrap_cb)(void *arg, stream_t *tcp);
/* Receives a streamed request body piece by piece (http_req_stream_body):
 * `data`/`len` is the next piece (valid during the call only). It runs
 * inside the parser, under the same rules as on_headers (no response, no
 * close), and may call http_req_pause_body(). A final call with data NULL
 * says the request ended before its body did (client gone, timeout, parse
 * error, server close): the handler will not be called and `req` is
 * invalid once the call returns. After the last piece of a complete body
 * the handler is called as usual (http_req_body() is then empty). */
typedef void (*http_body_cb)(http_req_t *req, const char *data, size_t len, void *arg);
/* Runs once when http_server_close() has closed every handle. */
typedef void (*http_server_close_cb)(void *arg);

typedef struct {
  const char *host;             /* numeric IPv4/IPv6 address; NULL = "127.0.0.1" */
  unsigned port;                /* 0 = ephemeral (see http_server_port()) */
  size_t max_header_bytes;      /* request line + headers; 0 = 16 KiB (-> 431) */
  size_t max_body_bytes;        /* default body limit; 0 = 64 KiB (-> 413) */
  unsigned max_connections;     /* 0 = 1024; beyond -> 503 and close */
  unsigned idle_timeout_ms;     /* keep-alive idle; 0 = 60000 */
  unsigned request_timeout_ms;  /* first byte to complete request; 0 = 10000 (-> 408) */
  unsigned max_pipelined;       /* unwritten responses per connection before
                                   reading pauses; 0 = 64 */
  size_t max_buffered_bytes;    /* request body bytes held at once, all
                                   connections (received, or reserved for a
                                   declared Content-Length, until the
                                   response is written); 0 = 256 MiB
                                   (-> 503 server_busy) */
  http_handler_cb handler;      /* required */
  void *handler_arg;            /* passed to handler, on_headers, on_response */
  http_headers_cb on_headers;   /* optional */
  http_response_cb on_response; /* optional (metrics, access log) */
  http_wrap_cb wrap;            /* optional */
  void *wrap_arg;
} http_server_opts_t;

/* Creates the server and starts listening on host:port of `loop`.
 * @param out the server on success.
 * @return 0; GRANTD_EINVALID (no handler, bad host); or the libuv error of
 *   bind/listen (e.g. UV_EADDRINUSE). On error nothing is left open. */
int http_server_start(uv_loop_t *loop, const http_server_opts_t *opts, http_server_t **out);

/* The bound port (useful with port 0). */
unsigned http_server_port(const http_server_t *srv);

/* Number of open connections (including ones being refused with 503). */
unsigned http_server_connections(const http_server_t *srv);

/* Stops accepting new connections (closes the listening socket); open
 * connections keep being served. Idempotent. */
void http_server_stop_accepting(http_server_t *srv);

/* Shuts the server down: stops accepting, closes idle connections at once
 * and the others after the responses to the requests they already read have
 * been written (those carry "Connection: close"); after `timeout_ms` (0 =
 * immediately) whatever is still open is closed, detaching requests whose
 * handler has not responded yet (see the lifetime rule). `cb` (may be NULL)
 * runs once, from a loop callback, after every handle was closed; the
 * server is freed right after it returns. Later calls (before cb) are
 * ignored. */
void http_server_close(http_server_t *srv, unsigned timeout_ms, http_server_close_cb cb, void *arg);

/* ---- requests (valid from on_headers/handler until http_respond*) ----- */

/* Method name ("GET", "POST" ...). */
const char *http_req_method(const http_req_t *req);
/* Raw (not percent-decoded) path, without the query: "/v1/x%20y". */
const char *http_req_path(const http_req_t *req);
/* Raw query string without '?'; NULL when the target has no '?'. */
const char *http_req_query(const http_req_t *req);
/* 1 for HTTP/1.1, 0 for HTTP/1.0. */
int http_req_minor_version(const http_req_t *req);
/* The headers in arrival order; *n gets their number. */
const http_header_t *http_req_headers(const http_req_t *req, size_t *n);
/* Value of the first header called `name` (ASCII case-insensitive), or
 * NULL. */
const char *http_req_header(const http_req_t *req, const char *name);
/* The body, NUL-terminated after *len bytes ("" with *len = 0 when there is
 * none). len may be NULL. Empty during on_headers. */
const char *http_req_body(const http_req_t *req, size_t *len);
/* Whether the connection will be kept alive after this response (the
 * client's wish; the server may still close, e.g. when shutting down). */
int http_req_keep_alive(const http_req_t *req);
/* 1 once the client has gone (the response will be dropped). */
int http_req_is_gone(const http_req_t *req);
/* Monotonic time (uv_hrtime, ns) of the request's first byte. */
uint64_t http_req_start_ns(const http_req_t *req);
/* The stream the request arrived on (what opts.wrap returned, e.g. a TLS
 * stream; for its peer certificate), or NULL once the client has gone.
 * Borrowed: valid while the request is. */
stream_t *http_req_stream(const http_req_t *req);
/* The request's arena: memory from it lives until the response has been
 * written (or dropped). */
arena_t *http_req_arena(http_req_t *req);
/* User data attached to the request (NULL until set). */
void *http_req_data(const http_req_t *req);
void http_req_set_data(http_req_t *req, void *data);
/* Sets this request's body limit; only meaningful from on_headers. A body
 * over the limit is answered 413 and the handler is not called. */
void http_req_set_body_limit(http_req_t *req, size_t limit);
/* 1 when the request announced a body (Content-Length > 0 or chunked).
 * Meaningful from on_headers on. */
int http_req_has_body(const http_req_t *req);
/* From on_headers only: answers the request at once with this response
 * (arguments as for http_respond_ex(); copied), without reading its body
 * and without calling the handler. The response carries
 * "Connection: close"; the connection reads nothing more (what the client
 * still sends is drained briefly and discarded) and closes after it.
 * opts.on_response reports it like any response. */
void http_req_reject(http_req_t *req, int status, const char *content_type, const char *body,
                     size_t len, const char *extra_headers);
/* From on_headers only: the body is not buffered but handed to `cb` as it
 * arrives (see http_body_cb). The body limit still applies (413); the
 * bytes are not counted in max_buffered_bytes, since the server holds
 * none of them: the sink bounds what it keeps. While a streamed body is
 * arriving, the request timeout counts from the last piece received
 * (slow bodies are fine, stalled ones get 408), and not at all while
 * reading is paused. */
void http_req_stream_body(http_req_t *req, http_body_cb cb, void *arg);
/* Back-pressure for a streamed body: stops reading the connection's socket
 * at once (the rest of the bytes already read are still handed over),
 * until http_req_resume_body() or the end of the body. Callable from the
 * sink or any loop callback; a no-op unless req's body is being streamed
 * (so also once the body is complete or the client is gone). */
void http_req_pause_body(http_req_t *req);
void http_req_resume_body(http_req_t *req);
/* Counts n more bytes held for req (e.g. a streamed body's sink keeping an
 * answer it builds) in the server's total of max_buffered_bytes, until req
 * is freed. Returns 0, or -1 when that would go over the cap (nothing is
 * counted). Always 0 once the client is gone. */
int http_req_hold(http_req_t *req, size_t n);
/* Ends a request whose body is being streamed before the body is read, with
 * the server's own error answer for `status` (413 payload_too_large, 503
 * server_busy with Retry-After, 400 ...; "Connection: close"): the sink gets
 * its final call (data NULL) and the handler is not called. From the sink
 * it takes effect once the sink returns; from any other loop callback at
 * once. A no-op unless req's body is being streamed. */
void http_req_end_body(http_req_t *req, int status);
/* Bytes of request bodies the server holds now (see max_buffered_bytes). */
size_t http_server_buffered_bytes(const http_server_t *srv);

/* ---- responses --------------------------------------------------------- */

/* Responds to `req` (exactly once per request). Builds the status line,
 * Content-Type (omitted when NULL), Content-Length, "Connection: close" when
 * the connection closes afterwards, and copies `body` (len bytes; body may
 * be NULL when len is 0). The response is written when every earlier
 * response on the connection has been. Afterwards req is invalid (see the
 * life cycle). If the client has gone, the response is dropped and req
 * freed. */
void http_respond(http_req_t *req, int status, const char *content_type, const char *body,
                  size_t len);

/* Like http_respond() with extra header lines: `extra_headers` is NULL or a
 * string of complete lines, each "Name: value\r\n" (e.g. Location,
 * WWW-Authenticate, Retry-After, Cache-Control). It must not contain
 * Content-Length, Connection or Transfer-Encoding. */
void http_respond_ex(http_req_t *req, int status, const char *content_type, const char *body,
                     size_t len, const char *extra_headers);

/* Standard reason phrase of a status ("OK", "Not Found"; "Unknown"). */
const char *http_status_text(int status);

#endif
