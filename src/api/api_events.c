/*
 * api_events.c - GET /v1/events: the pull feed of connection events
 * (service/events.h), in commit order after a cursor, optionally filtered
 * by type and tenant, with long-poll.
 *
 * Query: after=<cursor> (the next_cursor of an earlier page; absent or 0
 * = from the oldest retained event), limit=1..1000 (100), types=a,b
 * (exact event types or "connection.*"), tenant=<tenant>, wait=0..60
 * seconds. The cursor is the sequence number of the last event the page
 * looked at (matching or not), so filtered pages move on too. A cursor
 * whose successor was pruned by retention answers 410 cursor_expired; one
 * beyond the last committed event 400 invalid_cursor.
 *
 * Long-poll: with wait and nothing matching, the request parks on a
 * service waiter (no timer tick, no polling; a uv timer bounds the wait)
 * and is answered as soon as a batch with a matching event commits, or
 * with an empty page when the wait ends.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "base/json.h"
#include "base/mem.h"
#include "service/events.h"

#define EV_LIMIT_MAX 1000
#define EV_WAIT_MAX_S 60
#define EV_SCAN_CHUNK 256

typedef struct {
  api_ctx_t *ctx;
  uint64_t after;
  size_t limit;
  char **types; /* NULL-terminated patterns, NULL = all */
  const char *tenant;
  uv_timer_t timer;
  bool timer_on;
  svc_ev_wait_t w;
} feed_t;

static bool type_matches(char *const *types, const char *t)
{
  if (types == NULL)
    return true;
  for (; *types; types++) {
    size_t n = strlen(*types);
    if (n >= 2 && (*types)[n - 1] == '*' && (*types)[n - 2] == '.') {
      if (strncmp(t, *types, n - 1) == 0)
        return true;
    } else if (strcmp(t, *types) == 0) {
      return true;
    }
  }
  return false;
}

/* Known type or "<prefix>.*" of a known type. */
static bool type_pattern_ok(const char *p)
{
  size_t n = strlen(p);
  for (int t = 1; t < OUTBOX_TYPE_COUNT; t++) {
    const char *name = outbox_type_name((outbox_type_t)t);
    if (strcmp(name, p) == 0)
      return true;
    if (n >= 2 && p[n - 1] == '*' && p[n - 2] == '.' && strncmp(name, p, n - 1) == 0)
      return true;
  }
  return false;
}

static void free_types(char **types)
{
  if (types == NULL)
    return;
  for (char **t = types; *t; t++)
    free(*t);
  free(types);
}

/* Splits "a,b" into patterns; NULL with *bad set to the bad one. */
static char **parse_types(const char *s, char *bad, size_t badn)
{
  size_t cap = 4, n = 0;
  char **out = xmalloc(cap * sizeof *out);
  const char *p = s;
  for (;;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char *one = xmalloc(len + 1);
    memcpy(one, p, len);
    one[len] = '\0';
    if (!type_pattern_ok(one)) {
      snprintf(bad, badn, "%.80s", one);
      free(one);
      out[n] = NULL;
      free_types(out);
      return NULL;
    }
    if (n + 2 > cap)
      out = xrealloc(out, (cap *= 2) * sizeof *out);
    out[n++] = one;
    if (e == NULL)
      break;
    p = e + 1;
  }
  out[n] = NULL;
  return out;
}

/* Reads matching events after f->after into arr, moving f->after past
 * every event looked at. @return 0 or a store error. */
static int collect(feed_t *f, json_t *arr)
{
  svc_t *svc = f->ctx->api->svc;
  while (json_array_size(arr) < f->limit) {
    store_event_t *ev;
    size_t n;
    int rc = svc_events_read(svc, f->after, EV_SCAN_CHUNK, &ev, &n);
    if (rc != 0)
      return rc;
    buf_t b = {0};
    for (size_t i = 0; i < n && json_array_size(arr) < f->limit; i++) {
      f->after = ev[i].seq;
      if (!type_matches(f->types, outbox_type_name(ev[i].type)))
        continue;
      buf_reset(&b);
      svc_event_render(&ev[i], &b);
      json_t *o = NULL;
      if (json_parse(b.data, b.len, &o) != 0)
        continue; /* cannot happen: rendered by us */
      const char *t = json_get_str(json_object_get(o, "data"), "tenant");
      if (f->tenant && (t == NULL || strcmp(t, f->tenant) != 0)) {
        json_decref(o);
        continue;
      }
      json_array_append_new(arr, o);
    }
    buf_free(&b);
    store_events_free(ev, n);
    if (n < EV_SCAN_CHUNK)
      break;
  }
  return 0;
}

static void feed_free(uv_handle_t *h)
{
  feed_t *f = h->data;
  free_types(f->types);
  free(f);
}

static void feed_end(feed_t *f)
{
  svc_events_unwait(&f->w);
  if (f->timer_on) {
    uv_timer_stop(&f->timer);
    uv_close((uv_handle_t *)&f->timer, feed_free);
  } else {
    free_types(f->types);
    free(f);
  }
}

/* Answers with what there is now (possibly nothing). */
static void feed_reply(feed_t *f)
{
  json_t *arr = json_array();
  int rc = collect(f, arr);
  api_ctx_t *ctx = f->ctx;
  if (rc != 0) {
    json_decref(arr);
    feed_end(f);
    api_reply_err(ctx, rc, NULL);
    return;
  }
  json_t *o = json_object();
  json_object_set_new(o, "events", arr);
  char cur[24];
  snprintf(cur, sizeof cur, "%" PRIu64, f->after);
  json_object_set_new(o, "next_cursor", json_string(cur));
  feed_end(f);
  api_reply_json(ctx, 200, o);
}

static void on_wait_end(uv_timer_t *t)
{
  feed_reply(t->data);
}

static void on_event(void *arg)
{
  feed_t *f = arg;
  uint64_t at = f->after;
  json_t *arr = json_array();
  int rc = collect(f, arr);
  size_t got = json_array_size(arr);
  json_decref(arr);
  uint64_t scanned = f->after;
  f->after = at;
  /* Only events the filters leave out: wait on, past them. */
  if (rc != 0 || got > 0 || svc_events_wait(f->ctx->api->svc, &f->w, scanned, on_event, f) != 0)
    feed_reply(f);
}

static int parse_u64(const char *s, uint64_t *out)
{
  if (s == NULL || *s == '\0' || strlen(s) > 20)
    return -1;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    uint64_t d = (uint64_t)(*p - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

static void events_list(api_ctx_t *ctx)
{
  uint64_t after = 0, limit = 100, wait = 0;
  const char *s;
  if ((s = api_query(ctx, "after")) != NULL && parse_u64(s, &after) != 0) {
    api_reply_error(ctx, 400, "invalid_cursor", "after must be a cursor from next_cursor");
    return;
  }
  if ((s = api_query(ctx, "limit")) != NULL &&
      (parse_u64(s, &limit) != 0 || limit < 1 || limit > EV_LIMIT_MAX)) {
    api_reply_error(ctx, 400, "invalid_query", "limit must be an integer from 1 to 1000");
    return;
  }
  if ((s = api_query(ctx, "wait")) != NULL && (parse_u64(s, &wait) != 0 || wait > EV_WAIT_MAX_S)) {
    api_reply_error(ctx, 400, "invalid_query", "wait must be an integer from 0 to 60 (seconds)");
    return;
  }
  char **types = NULL;
  if ((s = api_query(ctx, "types")) != NULL) {
    char bad[96], msg[160];
    if ((types = parse_types(s, bad, sizeof bad)) == NULL) {
      snprintf(msg, sizeof msg, "unknown event type pattern '%s'", bad);
      api_reply_error(ctx, 400, "invalid_event_type", msg);
      return;
    }
  }
  uint64_t first, last;
  svc_events_bounds(ctx->api->svc, &first, &last);
  if (after > last) {
    free_types(types);
    api_reply_error(ctx, 400, "invalid_cursor", "cursor is beyond the last committed event");
    return;
  }
  if (after > 0 && first > 0 && after + 1 < first) {
    free_types(types);
    api_reply_error(ctx, 410, "cursor_expired",
                    "events after this cursor were pruned by retention; start again without "
                    "after");
    return;
  }
  feed_t *f = xcalloc(1, sizeof *f);
  f->ctx = ctx;
  f->after = after;
  f->limit = (size_t)limit;
  f->types = types;
  f->tenant = api_query(ctx, "tenant");
  if (wait == 0) {
    feed_reply(f);
    return;
  }
  json_t *arr = json_array();
  int rc = collect(f, arr);
  size_t got = json_array_size(arr);
  json_decref(arr);
  uint64_t scanned = f->after;
  f->after = after;
  if (rc != 0 || got > 0) {
    feed_reply(f);
    return;
  }
  /* Nothing matching yet: wait from the last event looked at. */
  if (svc_events_wait(ctx->api->svc, &f->w, scanned, on_event, f) != 0) {
    feed_reply(f);
    return;
  }
  uv_timer_init(svc_loop(ctx->api->svc), &f->timer);
  f->timer.data = f;
  f->timer_on = true;
  uv_timer_start(&f->timer, on_wait_end, wait * 1000, 0);
}

const api_route_t api_event_routes[] = {
  {"GET", "/v1/events", true, 0, 0, events_list, "/v1/events"},
  {NULL, NULL, false, 0, 0, NULL, NULL},
};
