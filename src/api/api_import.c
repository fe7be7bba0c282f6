/*
 * api_import.c - POST /v1/connections:import: NDJSON connections, read and
 * committed line by line while the body streams in.
 *
 * The body is not buffered. api_import_begin() (from api_on_headers, once
 * the route, method and API key are known good) hands it to a line
 * splitter (base/lines.h, lines bounded by the import's max_line); each
 * complete line is parsed and validated like a PUT body and its record
 * handed to svc_conn_put() at once. The store group-commits whatever was
 * queued while its previous commit ran, so the lines become batches that
 * each commit whole, in line order; a batch that fails fails exactly its
 * lines (their results say why, with their ids).
 *
 * Results are answered in line order. Lines whose result is not known yet
 * (a write not committed), and those after them, sit in a window of WINDOW
 * slots; results leave it, rendered into the answer, from its head. When
 * the window is full no more lines are taken and reading the socket stops
 * (http_req_pause_body); it restarts once the window is down to
 * RESUME_AT. So an import holds one window, one unfinished line
 * (max_line), one read of input and the answer (about 60 bytes a line),
 * however large its body. The answer's bytes count in the server's
 * max_buffered_bytes (http_req_hold): when they would go over it, no more
 * lines are taken and the request ends with 503 server_busy (Retry-After)
 * like a buffered body over the cap, keeping the lines already handed over
 * (once the body is complete, the few lines left are answered regardless).
 *
 * The answer (200 when every line was stored, 207 otherwise; one result
 * line per input line, then a summary) is sent once the body is complete
 * and every line's write has finished. When the request ends before its
 * body (client gone, timeout, body over the limit, shutdown), the lines
 * already handed to the store still commit (a cut-off import keeps its
 * earlier batches), the rest of the input is dropped, nothing is answered.
 *
 * State: IMP_STREAMING (body arriving) -> IMP_COMPLETE (the handler ran:
 * the answer goes out when the last write finishes) or IMP_ABORTED (freed
 * when the last write finishes). Every entry point runs step(), which is
 * re-entrancy safe (resuming the body may run the sink again).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "base/buf.h"
#include "base/json.h"
#include "base/lines.h"
#include "base/log.h"
#include "base/mem.h"

/* Lines between the first result not yet answered and the newest line. */
#define WINDOW 1024
#define RESUME_AT (WINDOW / 2)

typedef enum {
  IMP_STREAMING,
  IMP_COMPLETE,
  IMP_ABORTED,
} imp_state_t;

struct api_import {
  api_t *api;
  http_req_t *req; /* NULL once aborted */
  api_ctx_t *ctx;  /* the handler's context, from IMP_COMPLETE on */
  imp_state_t st;
  lines_t in;
  size_t lines;   /* non-empty lines numbered so far */
  size_t done;    /* results rendered into out */
  size_t pending; /* writes handed to the service, not finished */
  size_t ok, failed;
  bool paused;          /* reading stopped by us */
  bool over;            /* the answer went over the server's max_buffered_bytes */
  size_t held;          /* bytes of out counted with http_req_hold() */
  bool drained;         /* the splitter had nothing more at the last look */
  int busy;             /* inside step() */
  bool again;           /* step() was asked again while busy */
  buf_t out;            /* result lines, in order */
  json_t *slot[WINDOW]; /* result of line i at slot[i % WINDOW], i in [done, lines) */
};

typedef struct {
  api_import_t *imp;
  size_t line;
  char *id; /* the line's id: a failed commit has no record */
} import_line_t;

static void step(api_import_t *imp);

/* ---- results ---- */

static json_t *line_result(size_t line, const char *id)
{
  json_t *o = json_object();
  json_object_set_new(o, "line", json_integer((json_int_t)line + 1));
  json_object_set_new(o, "id", id ? json_string(id) : json_null());
  return o;
}

static void line_failed(api_import_t *imp, size_t line, const char *id, const char *code,
                        const char *msg)
{
  json_t *r = line_result(line, id);
  json_object_set_new(r, "error", json_string(code));
  json_object_set_new(r, "message", json_string(msg));
  imp->slot[line % WINDOW] = r;
  imp->failed++;
}

/* Renders the results at the head of the window that are known. The
 * answer's bytes count in the server's held bytes (max_buffered_bytes)
 * like a buffered body's: above the cap, the import stops (over). */
static void flush(api_import_t *imp)
{
  while (imp->done < imp->lines && imp->slot[imp->done % WINDOW] != NULL) {
    json_t **s = &imp->slot[imp->done % WINDOW];
    json_dump_buf(*s, &imp->out);
    buf_putc(&imp->out, '\n');
    json_decref(*s);
    *s = NULL;
    imp->done++;
  }
  if (imp->st == IMP_STREAMING && !imp->over && imp->out.len > imp->held) {
    if (http_req_hold(imp->req, imp->out.len - imp->held) == 0)
      imp->held = imp->out.len;
    else
      imp->over = true;
  }
}

static void import_line_done(void *arg, int err, const conn_t *c)
{
  import_line_t *il = arg;
  api_import_t *imp = il->imp;
  if (err != 0) {
    line_failed(imp, il->line, il->id, err_name(err), err_str(err));
  } else {
    json_t *r = line_result(il->line, il->id);
    json_object_set_new(r, "status", json_string(conn_status_name(c->status)));
    imp->slot[il->line % WINDOW] = r;
    imp->ok++;
  }
  free(il->id);
  free(il);
  imp->pending--;
  step(imp);
}

/* ---- one line ---- */

static void do_line(api_import_t *imp, const char *p, size_t n)
{
  while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' '))
    n--;
  if (n == 0)
    return; /* blank lines are not counted */
  size_t line = imp->lines++;
  json_t *j = NULL;
  if (json_parse(p, n, &j) != 0 || !json_is_object(j)) {
    line_failed(imp, line, NULL, "invalid_json", "the line is not a JSON object");
    json_decref(j);
    return;
  }
  api_err_t e;
  conn_t *c = xcalloc(1, sizeof *c);
  int bad = api_conn_from_json(j, NULL, c, &e);
  if (bad == 0 && (api_conn_vars_check(imp->api, j, c, &e) != 0 ||
                   api_conn_exchange_check(imp->api, j, c, &e) != 0)) {
    conn_free(c);
    bad = -1;
  }
  if (bad != 0) {
    json_t *idj = json_object_get(j, "id");
    line_failed(imp, line, json_is_string(idj) ? json_string_value(idj) : NULL, e.code, e.message);
    free(c);
    json_decref(j);
    return;
  }
  json_decref(j);
  import_line_t *il = xmalloc(sizeof *il);
  il->imp = imp;
  il->line = line;
  il->id = xstrdup(c->id);
  imp->pending++;
  int rc = svc_conn_put(imp->api->svc, c, import_line_done, il);
  if (rc != 0) {
    imp->pending--;
    line_failed(imp, line, il->id, err_name(rc), err_str(rc));
    free(il->id);
    free(il);
  }
}

/* Takes lines from the splitter while the window has room. */
static void pump(api_import_t *imp)
{
  bool end = imp->st == IMP_COMPLETE;
  imp->drained = false;
  while (imp->lines - imp->done < WINDOW && !imp->over) {
    const char *p;
    size_t n;
    lines_event_t ev = lines_next(&imp->in, end, &p, &n);
    if (ev == LINES_NONE) {
      imp->drained = true;
      return;
    }
    if (ev == LINES_LINE) {
      do_line(imp, p, n);
    } else {
      char msg[96];
      snprintf(msg, sizeof msg, "the line is longer than %zu bytes", imp->in.max_line);
      line_failed(imp, imp->lines++, NULL, "line_too_long", msg);
    }
    flush(imp);
  }
}

/* ---- life cycle ---- */

static void import_free(api_import_t *imp)
{
  lines_free(&imp->in);
  for (size_t i = 0; i < WINDOW; i++)
    json_decref(imp->slot[i]);
  buf_free(&imp->out);
  free(imp);
}

static void import_answer(api_import_t *imp)
{
  api_ctx_t *ctx = imp->ctx;
  if (imp->lines == 0) {
    api_reply_error(ctx, 400, "empty_body", "the import body holds no NDJSON lines");
    return;
  }
  json_t *summary = json_object();
  json_object_set_new(summary, "lines", json_integer((json_int_t)imp->lines));
  json_object_set_new(summary, "imported", json_integer((json_int_t)imp->ok));
  json_object_set_new(summary, "failed", json_integer((json_int_t)imp->failed));
  json_t *wrap = json_object();
  json_object_set_new(wrap, "summary", summary);
  json_dump_buf(wrap, &imp->out);
  buf_putc(&imp->out, '\n');
  json_decref(wrap);
  int status = imp->failed == 0 ? 200 : 207;
  api_reply_raw(ctx, status, "application/x-ndjson", imp->out.data, imp->out.len, NULL);
}

static void step(api_import_t *imp)
{
  if (imp->busy) {
    imp->again = true;
    return;
  }
  imp->busy = 1;
  do {
    imp->again = false;
    if (imp->st != IMP_ABORTED)
      pump(imp);
    flush(imp);
    if (imp->st == IMP_STREAMING && imp->over) {
      /* 503 server_busy with Retry-After; the sink hears of it (aborted). */
      http_req_end_body(imp->req, 503);
    } else if (imp->st == IMP_STREAMING) {
      size_t open = imp->lines - imp->done;
      if (open >= WINDOW && !imp->paused) {
        imp->paused = true;
        http_req_pause_body(imp->req);
      } else if (imp->paused && open <= RESUME_AT) {
        imp->paused = false;
        http_req_resume_body(imp->req); /* may feed the sink: again */
      }
    }
  } while (imp->again);
  imp->busy = 0;
  if (imp->pending > 0)
    return;
  if (imp->st == IMP_ABORTED) {
    import_free(imp);
  } else if (imp->st == IMP_COMPLETE && imp->drained) {
    import_answer(imp);
    import_free(imp);
  }
}

/* The body sink (http_body_cb). */
static void on_body(http_req_t *req, const char *data, size_t len, void *arg)
{
  api_import_t *imp = arg;
  (void)req;
  if (data == NULL) {
    /* The request ended before its body: the lines already handed over
     * commit; the rest is dropped and nothing is answered. */
    log_info("import_cut_off", "reason",
             imp->over ? "its answer went over --max-buffered (503 server_busy)"
                       : "the request ended before its body",
             "#lines_read", LOG_I64(imp->lines), "#lines_failed", LOG_I64(imp->failed),
             "#writes_pending", LOG_I64(imp->pending));
    imp->st = IMP_ABORTED;
    imp->req = NULL;
    lines_free(&imp->in);
    step(imp);
    return;
  }
  lines_feed(&imp->in, data, len);
  step(imp);
}

static api_import_t *import_new(api_t *a, http_req_t *req)
{
  api_import_t *imp = xcalloc(1, sizeof *imp);
  imp->api = a;
  imp->req = req;
  imp->st = IMP_STREAMING;
  lines_init(&imp->in, a->import_max_line);
  return imp;
}

void api_import_begin(api_t *a, http_req_t *req)
{
  api_import_t *imp = import_new(a, req);
  http_req_set_data(req, imp);
  http_req_stream_body(req, on_body, imp);
}

void api_import_handle(api_ctx_t *ctx)
{
  api_import_t *imp = http_req_data(ctx->req);
  if (imp == NULL) {
    /* Not streamed (no on_headers hook ran, e.g. no body): the buffered
     * body, if any, goes through the same path in one piece. */
    size_t len;
    const char *body = http_req_body(ctx->req, &len);
    imp = import_new(ctx->api, ctx->req);
    lines_feed(&imp->in, body, len);
  }
  imp->ctx = ctx;
  imp->st = IMP_COMPLETE;
  imp->paused = false; /* the server reads on after a complete body */
  imp->over = false;   /* the body is in: the few lines left are answered */
  step(imp);
}
