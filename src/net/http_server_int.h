/*
 * http_server_int.h - what http_server.c (listener, requests, responses)
 * and http_server_conn.c (one connection: parsing, ordering, timers) share.
 * Not part of the public API.
 */
#ifndef GRANTD_NET_HTTP_SERVER_INT_H
#define GRANTD_NET_HTTP_SERVER_INT_H

#include <llhttp.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "net/http_server.h"

typedef struct http__conn_s http__conn_t;

/* Where a request is in its life. */
typedef enum {
  HTTP__R_PARSING, /* headers/body arriving (conn->cur) */
  HTTP__R_PENDING, /* handler called, no response yet */
  HTTP__R_READY,   /* response built, waiting for earlier ones */
  HTTP__R_WRITING, /* handed to stream_write */
} http__rstate_t;

struct http_req_s {
  http__conn_t *conn; /* NULL once detached (client gone) */
  http_req_t *next;   /* response queue link */
  http__rstate_t st;
  int gone;
  int headers_done;
  int has_body; /* Content-Length > 0 or chunked */
  int rejected; /* answered by http_req_reject() in on_headers */
  int keep_alive;
  int minor;
  int close_after; /* connection closes once this response is written */
  int status;
  arena_t arena;
  const char *method;
  const char *path;
  const char *query;
  http_header_t *headers; /* in the arena */
  size_t nheaders, cap_headers;
  buf_t body;
  size_t body_limit;
  size_t held; /* bytes counted in srv->buffered for this body */
  /* A streamed body (http_req_stream_body): handed to sink as it arrives,
   * never buffered; streamed counts its bytes against body_limit. */
  http_body_cb sink;
  void *sink_arg;
  int in_sink;    /* the sink is running (inside llhttp) */
  int end_status; /* http_req_end_body() from the sink: ended after it */
  size_t streamed;
  uint64_t start_ns;
  void *data;
  char *resp; /* in the arena */
  size_t resp_len;
};

/* Timer roles of a connection. */
typedef enum {
  HTTP__T_NONE,
  HTTP__T_IDLE,    /* nothing to read or run: close silently on expiry */
  HTTP__T_REQUEST, /* a request is arriving: 408 on expiry */
  HTTP__T_LINGER,  /* final response written: drain input, then close */
} http__timer_t;

typedef enum {
  HTTP__C_OPEN,
  HTTP__C_LINGER,
  HTTP__C_CLOSING,
} http__cstate_t;

struct http__conn_s {
  http_server_t *srv;
  http__conn_t *prev, *next; /* server's list */
  stream_t *s;
  uv_timer_t timer;
  llhttp_t parser;
  http__cstate_t state;
  http__timer_t tkind;
  uint64_t tdeadline; /* loop ms: when tkind's timeout is reached */
  uint64_t tdue;      /* loop ms the uv timer fires at (<= tdeadline), 0 = not armed */
  int closes_pending;
  int refused;               /* counted as a 503 connection */
  int reading;               /* read side started */
  int stop_parsing;          /* no further requests are read */
  int linger;                /* drain input after the last response */
  int body_paused;           /* a streamed body's sink paused reading */
  int parse_status;          /* 413/431/400/503 chosen by a parser callback */
  unsigned npending;         /* handlers not yet responded */
  unsigned nqueued;          /* requests in the response queue */
  http_req_t *cur;           /* request being parsed */
  http_req_t *completed;     /* just completed, to dispatch */
  http_req_t *qhead, *qtail; /* response queue, request order */
  http_req_t *spare;         /* one recycled request */
  buf_t url, field, value;   /* header pieces arriving across reads */
  size_t header_bytes;
  buf_t saved; /* unparsed input held while paused */
};

struct http_server_s {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t close_timer;
  http_server_opts_t o; /* with defaults applied */
  unsigned port;
  int listening;
  int closing;
  int close_timer_open;
  int handles_pending; /* listener + close timer still open */
  http__conn_t *conns;
  unsigned nconns, nrefused;
  size_t buffered; /* request body bytes held (req->held summed) */
  http_server_close_cb close_cb;
  void *close_arg;
};

/* ---- http_server_conn.c ---- */
extern const llhttp_settings_t http__settings;
/* Takes an accepted (and wrapped) stream; refuses with 503 when `refuse`. */
void http__conn_start(http_server_t *srv, stream_t *s, int refuse);
/* Server shutdown: close now when idle, otherwise after the responses to
 * the requests already read. */
void http__conn_drain(http__conn_t *c);
/* Closes the connection now, detaching pending requests. */
void http__conn_close(http__conn_t *c);
/* A request's response is built: queue/write it. */
void http__conn_responded(http__conn_t *c, http_req_t *req);
/* Frees (or recycles into conn->spare when c is not NULL) a request. */
void http__req_release(http__conn_t *c, http_req_t *req);
/* Stops counting a request's body bytes in its server's total (before the
 * request is detached from, or released by, its connection). */
void http__req_unhold(http_req_t *req);
/* A fresh request for c, recycled from c->spare when there is one
 * (http_server_parse.c). */
http_req_t *http__req_new(http__conn_t *c);
/* Appends r to c's response-order queue (http_server_parse.c). */
void http__queue_push(http__conn_t *c, http_req_t *r);
/* Re-arms c's timer for the role its state calls for (http_server_conn.c). */
void http__conn_arm(http__conn_t *c);
/* A streamed body made progress: restarts the request timer. */
void http__conn_progress(http__conn_t *c);
/* Sets body_paused: stops reading now (bytes already read are still
 * parsed) and stops the request timer. */
void http__conn_pause(http__conn_t *c);
/* Clears body_paused, re-arms the request timer and reads again. */
void http__conn_unpause(http__conn_t *c);
/* Counts n more bytes of r in the server's total; 0, or -1 when that would
 * go over max_buffered_bytes (nothing counted). */
int http__req_hold(http_req_t *r, size_t n);
/* Ends the request being parsed with the server's error answer for status
 * (as a parser callback refusing it would), outside the parser. */
void http__conn_fail_cur(http__conn_t *c, int status);
/* Tells a streamed body's sink that the request ends before its body did
 * (sink(req, NULL, 0, arg)) and forgets the sink; no-op otherwise. */
void http__req_stream_abort(http_req_t *req);

/* ---- http_server.c ---- */
/* Builds a response into req->resp (req->arena). */
void http__build_response(http_req_t *req, int status, const char *content_type, const char *body,
                          size_t len, const char *extra_headers, int close);
/* A connection's handles are closed: unlinks and frees c, updates the
 * counters and may finish http_server_close(). */
void http__server_conn_gone(http_server_t *srv, http__conn_t *c);
/* Reports a response to opts.on_response. */
void http__report(http_server_t *srv, const http_req_t *req, int status);

#endif
