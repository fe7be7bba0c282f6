/*
 * webhook.c - codecs of the webhook endpoint and progress values
 * (webhook.h).
 */
#include "store/webhook.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"

void wh_rec_free(wh_rec_t *r)
{
  if (r == NULL)
    return;
  free(r->name);
  free(r->url);
  strlist_free(&r->events);
  free_secret(r->secret);
  free_secret(r->old_secret);
  memset(r, 0, sizeof *r);
}

static char *dup_or_null(const char *s)
{
  return s ? xstrdup(s) : NULL;
}

void wh_rec_copy(wh_rec_t *dst, const wh_rec_t *src)
{
  memset(dst, 0, sizeof *dst);
  dst->name = dup_or_null(src->name);
  dst->url = dup_or_null(src->url);
  strlist_copy(&dst->events, &src->events);
  dst->secret = dup_or_null(src->secret);
  dst->old_secret = dup_or_null(src->old_secret);
  dst->old_until = src->old_until;
  dst->created_at = src->created_at;
  dst->updated_at = src->updated_at;
}

void wh_prog_free(wh_prog_t *p)
{
  if (p == NULL)
    return;
  free(p->ent);
  memset(p, 0, sizeof *p);
}

static void put_be(buf_t *b, uint64_t v, int n)
{
  uint8_t t[8];
  for (int i = 0; i < n; i++)
    t[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  buf_append(b, t, (size_t)n);
}

static uint64_t get_be(const uint8_t *p, int n)
{
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

int wh_rec_encode(const wh_rec_t *r, const seal_keyring_t *kr, buf_t *out)
{
  json_t *o = json_object();
  json_object_set_new(o, "url", json_string(r->url ? r->url : ""));
  json_t *ev = json_array();
  for (size_t i = 0; i < r->events.n; i++)
    json_array_append_new(ev, json_string(r->events.items[i]));
  json_object_set_new(o, "events", ev);
  json_object_set_new(o, "created_at", json_integer(r->created_at));
  json_object_set_new(o, "updated_at", json_integer(r->updated_at));
  json_object_set_new(o, "old_until", json_integer(r->old_until));
  buf_t clear = BUF_INIT;
  json_dump_buf(o, &clear);
  json_decref(o);

  json_t *s = json_object();
  json_object_set_new(s, "secret", json_string(r->secret ? r->secret : ""));
  if (r->old_secret)
    json_object_set_new(s, "old_secret", json_string(r->old_secret));
  buf_t pt = BUF_INIT;
  json_dump_buf(s, &pt);
  json_wipe_strings(s);
  json_decref(s);

  size_t start = out->len;
  buf_putc(out, WH_REC_VERSION);
  put_be(out, clear.len, 4);
  buf_append(out, clear.data, clear.len);
  buf_free(&clear);
  int rc = seal_seal(kr, RECORD_DB_WEBHOOKS, r->name, strlen(r->name), pt.data, pt.len, out);
  buf_wipe_free(&pt);
  if (rc != 0)
    out->len = start;
  return rc;
}

static int dec_clear(const uint8_t *p, size_t n, wh_rec_t *out)
{
  json_t *o = NULL;
  if (json_parse((const char *)p, n, &o) != 0)
    return GRANTD_ESTORE_DECODE;
  int rc = GRANTD_ESTORE_DECODE;
  const char *url = json_get_str(o, "url");
  json_t *ev = json_object_get(o, "events");
  if (url == NULL || !json_is_array(ev))
    goto done;
  if (json_get_int(o, "created_at", &out->created_at) != 0 ||
      json_get_int(o, "updated_at", &out->updated_at) != 0 ||
      json_get_int(o, "old_until", &out->old_until) != 0)
    goto done;
  size_t i;
  json_t *e;
  json_array_foreach(ev, i, e)
  {
    if (!json_is_string(e))
      goto done;
  }
  out->url = xstrdup(url);
  json_array_foreach(ev, i, e) strlist_push(&out->events, json_string_value(e));
  rc = 0;
done:
  json_decref(o);
  return rc;
}

int wh_rec_seal_id(const void *v, size_t n, uint32_t *id)
{
  const uint8_t *p = v;
  if (n < 5 || p[0] != WH_REC_VERSION)
    return -1;
  uint64_t cl = get_be(p + 1, 4);
  if (cl > n - 5 || seal_blob_key_id(p + 5 + cl, n - 5 - (size_t)cl, id) != 0)
    return -1;
  return 1;
}

int wh_rec_decode(const void *v, size_t n, const char *name, size_t name_len,
                  const seal_keyring_t *kr, wh_rec_t *out)
{
  memset(out, 0, sizeof *out);
  const uint8_t *p = v;
  if (n < 5)
    return GRANTD_ESTORE_DECODE;
  if (p[0] != WH_REC_VERSION)
    return GRANTD_ESTORE_VERSION;
  uint64_t cl = get_be(p + 1, 4);
  if (cl > n - 5)
    return GRANTD_ESTORE_DECODE;
  int rc = dec_clear(p + 5, (size_t)cl, out);
  if (rc != 0) {
    wh_rec_free(out);
    return rc;
  }
  buf_t pt = BUF_INIT;
  rc = seal_open(kr, RECORD_DB_WEBHOOKS, name, name_len, p + 5 + cl, n - 5 - (size_t)cl, &pt);
  json_t *s = NULL;
  if (rc == 0 && json_parse(pt.data, pt.len, &s) != 0)
    rc = GRANTD_ESTORE_DECODE;
  const char *sec = rc == 0 ? json_get_str(s, "secret") : NULL;
  if (rc == 0 && sec == NULL)
    rc = GRANTD_ESTORE_DECODE;
  if (rc == 0) {
    out->secret = xstrdup(sec);
    const char *old = json_get_str(s, "old_secret");
    out->old_secret = old ? xstrdup(old) : NULL;
    out->name = xstrndup(name, name_len);
  }
  if (s) {
    json_wipe_strings(s);
    json_decref(s);
  }
  buf_wipe_free(&pt);
  if (rc != 0)
    wh_rec_free(out);
  return rc;
}

void wh_prog_encode(const wh_prog_t *p, buf_t *out)
{
  size_t n = p->n < WH_PROG_MAX_ENT ? p->n : WH_PROG_MAX_ENT;
  buf_reserve(out, WH_PROG_HDR + n * WH_PROG_ENT_LEN);
  buf_putc(out, WH_PROG_VERSION);
  put_be(out, p->cursor, 8);
  buf_putc(out, (char)(p->flags & 0xff));
  put_be(out, (uint64_t)p->last_ok_ms, 8);
  put_be(out, (uint64_t)p->last_err_ms, 8);
  put_be(out, (uint32_t)p->last_err_status, 4);
  char cls[WH_CLASS_LEN] = {0};
  memcpy(cls, p->last_err_class, strnlen(p->last_err_class, WH_CLASS_LEN - 1));
  buf_append(out, cls, WH_CLASS_LEN);
  put_be(out, p->delivered, 8);
  put_be(out, p->failed, 8);
  put_be(out, n, 4);
  for (size_t i = 0; i < n; i++) {
    const wh_prog_ent_t *e = &p->ent[i];
    put_be(out, e->seq, 8);
    put_be(out, e->attempts, 4);
    buf_putc(out, e->done ? 1 : 0);
    put_be(out, (uint64_t)e->first_ms, 8);
    put_be(out, (uint64_t)e->next_ms, 8);
  }
}

int wh_prog_cursor(const void *v, size_t n, uint64_t *cursor)
{
  const uint8_t *p = v;
  if (n < WH_PROG_HDR || p[0] != WH_PROG_VERSION)
    return -1;
  *cursor = get_be(p + 1, 8);
  return 0;
}

int wh_prog_decode(const void *v, size_t n, wh_prog_t *out)
{
  memset(out, 0, sizeof *out);
  const uint8_t *p = v;
  if (n < WH_PROG_HDR)
    return GRANTD_ESTORE_DECODE;
  if (p[0] != WH_PROG_VERSION)
    return GRANTD_ESTORE_VERSION;
  size_t i = 1;
  out->cursor = get_be(p + i, 8), i += 8;
  out->flags = p[i++];
  out->last_ok_ms = (int64_t)get_be(p + i, 8), i += 8;
  out->last_err_ms = (int64_t)get_be(p + i, 8), i += 8;
  out->last_err_status = (int32_t)get_be(p + i, 4), i += 4;
  memcpy(out->last_err_class, p + i, WH_CLASS_LEN);
  out->last_err_class[WH_CLASS_LEN - 1] = '\0';
  i += WH_CLASS_LEN;
  out->delivered = get_be(p + i, 8), i += 8;
  out->failed = get_be(p + i, 8), i += 8;
  uint64_t cnt = get_be(p + i, 4);
  i += 4;
  if (cnt > WH_PROG_MAX_ENT || cnt * WH_PROG_ENT_LEN != n - i) {
    memset(out, 0, sizeof *out);
    return GRANTD_ESTORE_DECODE;
  }
  out->n = (size_t)cnt;
  out->ent = cnt ? xcalloc((size_t)cnt, sizeof *out->ent) : NULL;
  for (size_t k = 0; k < out->n; k++) {
    wh_prog_ent_t *e = &out->ent[k];
    e->seq = get_be(p + i, 8), i += 8;
    e->attempts = (uint32_t)get_be(p + i, 4), i += 4;
    e->done = p[i++] != 0;
    e->first_ms = (int64_t)get_be(p + i, 8), i += 8;
    e->next_ms = (int64_t)get_be(p + i, 8), i += 8;
  }
  return 0;
}
