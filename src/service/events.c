/*
 * events.c - the data object recorded with every connection change, and
 * the rendering of committed events (events.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "service/events.h"

static void put_str_or_null(buf_t *out, const char *s)
{
  if (s)
    json_put_str(out, s, SIZE_MAX);
  else
    buf_puts(out, "null");
}

/* metadata_json is JSON object text checked by the API; anything else
 * (NULL, not an object) is shown as {}. */
static void put_metadata(buf_t *out, const char *m)
{
  json_t *v = NULL;
  if (m && json_parse(m, strlen(m), &v) == 0 && json_is_object(v))
    json_dump_buf(v, out);
  else
    buf_puts(out, "{}");
  json_decref(v);
}

int svc_events_data(void *arg, const conn_t *c, buf_t *out)
{
  (void)arg;
  buf_puts(out, "{\"connection\":");
  put_str_or_null(out, c->id);
  buf_puts(out, ",\"tenant\":");
  put_str_or_null(out, c->tenant);
  buf_puts(out, ",\"provider\":");
  put_str_or_null(out, c->provider);
  buf_puts(out, ",\"last_error\":");
  if (c->last_error_code) {
    buf_puts(out, "{\"code\":");
    json_put_str(out, c->last_error_code, SIZE_MAX);
    buf_puts(out, ",\"message\":");
    put_str_or_null(out, c->last_error_message);
    buf_puts(out, ",\"http_status\":");
    if (c->last_error_http)
      buf_printf(out, "%" PRId32, c->last_error_http);
    else
      buf_puts(out, "null");
    buf_puts(out, ",\"at\":");
    char t[32];
    if (c->last_error_at > 0) {
      clock_format_rfc3339(c->last_error_at, t);
      json_put_str(out, t, SIZE_MAX);
    } else {
      buf_puts(out, "null");
    }
    buf_putc(out, '}');
  } else {
    buf_puts(out, "null");
  }
  buf_puts(out, ",\"metadata\":");
  put_metadata(out, c->metadata_json);
  buf_putc(out, '}');
  return 0;
}

void svc_event_id(uint64_t seq, char out[21])
{
  snprintf(out, 21, "evt_%016" PRIx64, seq);
}

void svc_event_render(const store_event_t *e, buf_t *out)
{
  char id[21], ts[32];
  svc_event_id(e->seq, id);
  clock_format_rfc3339_ms(e->ts_ms, ts);
  buf_printf(out, "{\"id\":\"%s\",\"seq\":%" PRIu64 ",\"type\":", id, e->seq);
  json_put_str(out, outbox_type_name(e->type), SIZE_MAX);
  buf_puts(out, ",\"timestamp\":");
  json_put_str(out, ts, SIZE_MAX);
  buf_puts(out, ",\"data\":{\"status\":");
  put_str_or_null(out, outbox_status_name(e->status));
  buf_puts(out, ",\"previous_status\":");
  put_str_or_null(out, outbox_status_name(e->prev));
  /* The stored object without its opening brace: its members follow. */
  if (e->data_len >= 2 && e->data[0] == '{' && e->data[1] != '}') {
    buf_putc(out, ',');
    buf_append(out, e->data + 1, e->data_len - 1);
  } else {
    buf_putc(out, '}');
  }
  buf_putc(out, '}');
}
