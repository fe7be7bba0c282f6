/*
 * record_codec.c - msgpack encoding and decoding of stored records; see
 * record.h for the value layout.
 *
 * Each record type is described once by a table of fields (type + offset in
 * the struct), in stored order; one generic encoder and one generic decoder
 * walk the table, so the three record types cannot drift apart and a new
 * field is one table row (appended at the end: older values simply lack it).
 *
 * Decoding is in three steps, so that garbage can never make it crash or
 * allocate without bound:
 *   1. precheck(): a single pass over the raw bytes that checks every length
 *      and element count fits in what is left of the input. msgpack-c
 *      allocates an array's objects up front from the count in the header,
 *      so without this a 5-byte "array of 2^32 elements" would ask for
 *      ~100 GB; with it, the zone never holds more than ~24x the input.
 *   2. msgpack_unpack() into a stack-initialised zone (strings and bins
 *      point into the input; nothing is copied).
 *   3. check every field's type and range (no allocation), then copy the
 *      fields out, opening sealed ones last-minute with seal_open().
 */
#include "store/record.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"

typedef enum {
  F_STR,    /* char *, NULL = unset */
  F_SEALED, /* char *, sealed as bin */
  F_I64,
  F_I32,
  F_U32,
  F_U64,
  F_BOOL,
  F_ENUM, /* an enum stored as int, 0..max */
  F_STRLIST,
  F_KVLIST,
} ftype_t;

typedef struct {
  uint8_t type;
  uint8_t max;    /* F_ENUM: largest valid value */
  uint8_t sealed; /* F_SEALED: first record version that seals it (0 = 1);
                   * older values hold it as a plain str */
  uint16_t off;
} field_t;

typedef struct {
  const char *db;
  const field_t *fields;
  size_t nfields;
  size_t key_off; /* offset of the char * key member */
  size_t size;
  void (*free_fn)(void *rec);
} desc_t;

_Static_assert(sizeof(grant_t) == sizeof(int) && sizeof(conn_status_t) == sizeof(int) &&
                 sizeof(client_auth_t) == sizeof(int),
               "enums are stored through int pointers");

// clang-format off
#define F(t, T, m) {t, 0, 0, (uint16_t)offsetof(T, m)}
#define FE(T, m, mx) {F_ENUM, mx, 0, (uint16_t)offsetof(T, m)}
/* A field stored in clear before record version v and sealed from v on. */
#define FS(T, m, v) {F_SEALED, 0, v, (uint16_t)offsetof(T, m)}

/* Stored order. Never reorder or remove rows; append new ones. */
static const field_t provider_fields[] = {
  F(F_STR, provider_t, issuer),
  F(F_STR, provider_t, authorize_url),
  F(F_STR, provider_t, token_url),
  F(F_STR, provider_t, revoke_url),
  F(F_STR, provider_t, client_id),
  F(F_SEALED, provider_t, client_secret),
  FE(provider_t, client_auth, CLIENT_AUTH_SELF_SIGNED_TLS),
  F(F_STRLIST, provider_t, scopes),
  F(F_STR, provider_t, scope_separator),
  F(F_BOOL, provider_t, pkce),
  F(F_STR, provider_t, redirect_uri),
  F(F_KVLIST, provider_t, authorize_params),
  F(F_KVLIST, provider_t, token_params),
  F(F_KVLIST, provider_t, refresh_params),
  F(F_I64, provider_t, default_expires_in),
  F(F_I64, provider_t, refresh_lead_min),
  F(F_I64, provider_t, refresh_lead_max),
  F(F_I64, provider_t, keepalive_interval),
  F(F_I64, provider_t, rate_limit_count),
  F(F_I64, provider_t, rate_limit_window),
  F(F_I64, provider_t, timeout_ms),
  F(F_STR, provider_t, ca_file),
  F(F_BOOL, provider_t, allow_insecure_http),
  F(F_STRLIST, provider_t, pkce_methods),
  F(F_STRLIST, provider_t, auth_methods),
  F(F_I64, provider_t, created_at),
  F(F_I64, provider_t, updated_at),
  F(F_BOOL, provider_t, iss_param_supported),
  F(F_STR, provider_t, template_name),
  F(F_I64, provider_t, template_version),
  F(F_STRLIST, provider_t, template_fields),
  F(F_STRLIST, provider_t, grants),
  F(F_KVLIST, provider_t, vars),
  F(F_STR, provider_t, token_member),
  F(F_BOOL, provider_t, json_body),
  F(F_STR, provider_t, refresh_url),
  F(F_BOOL, provider_t, revoke_query),
  F(F_SEALED, provider_t, signing_key),
  F(F_STR, provider_t, signing_key_id),
  F(F_STR, provider_t, signing_alg),
  F(F_STR, provider_t, client_cert),
  F(F_SEALED, provider_t, client_cert_key),
  F(F_STR, provider_t, mtls_token_url),
  F(F_STR, provider_t, mtls_revoke_url),
  F(F_STR, provider_t, device_authorization_url),
  F(F_STR, provider_t, assertion_claims),
  F(F_BOOL, provider_t, assertion_scope_claim),
};

/* The scheduling fields come first (conn_decode_sched reads rows 0..6). */
enum { C_TENANT, C_PROVIDER, C_GRANT, C_STATUS, C_EXPIRES, C_NEXT_REFRESH, C_FAILURES };
static const field_t conn_fields[] = {
  F(F_STR, conn_t, tenant),
  F(F_STR, conn_t, provider),
  FE(conn_t, grant, GRANT_LAST),
  FE(conn_t, status, CONN_REVOKED),
  F(F_I64, conn_t, expires_at),
  F(F_I64, conn_t, next_refresh_at),
  F(F_U32, conn_t, failures),
  F(F_STRLIST, conn_t, scopes),
  F(F_SEALED, conn_t, access_token),
  F(F_SEALED, conn_t, refresh_token),
  F(F_STR, conn_t, token_type),
  F(F_I64, conn_t, refresh_token_expires_at),
  FS(conn_t, extra_json, 2), /* may hold an OpenID id_token */
  F(F_STR, conn_t, client_id),
  F(F_SEALED, conn_t, client_secret),
  F(F_STR, conn_t, username),
  F(F_SEALED, conn_t, password),
  F(F_STR, conn_t, metadata_json),
  F(F_STR, conn_t, last_error_code),
  F(F_STR, conn_t, last_error_message),
  F(F_I32, conn_t, last_error_http),
  F(F_I64, conn_t, last_error_at),
  F(F_I64, conn_t, refreshed_at),
  F(F_I64, conn_t, created_at),
  F(F_I64, conn_t, updated_at),
  F(F_U64, conn_t, revision),
  F(F_KVLIST, conn_t, vars),
  F(F_STR, conn_t, token_member),
  F(F_SEALED, conn_t, device_code),
  F(F_STR, conn_t, user_code),
  F(F_STR, conn_t, verification_uri),
  F(F_STR, conn_t, verification_uri_complete),
  F(F_I64, conn_t, device_expires_at),
  F(F_I32, conn_t, device_interval),
  F(F_SEALED, conn_t, signing_key),
  F(F_STR, conn_t, signing_key_id),
  F(F_STR, conn_t, signing_alg),
  F(F_STR, conn_t, assertion_claims),
  F(F_SEALED, conn_t, subject_token),
  F(F_STR, conn_t, subject_token_type),
  F(F_STR, conn_t, subject_connection),
  F(F_SEALED, conn_t, actor_token),
  F(F_STR, conn_t, actor_token_type),
  F(F_STRLIST, conn_t, audience),
  F(F_STRLIST, conn_t, resource),
  F(F_STR, conn_t, requested_token_type),
};

static const field_t state_fields[] = {
  F(F_STR, state_rec_t, conn_id),
  F(F_SEALED, state_rec_t, code_verifier),
  F(F_STR, state_rec_t, redirect_after),
  F(F_STRLIST, state_rec_t, scopes),
  F(F_STR, state_rec_t, redirect_uri),
  F(F_I64, state_rec_t, expires_at),
};

static void provider_free_v(void *r) { provider_free(r); }
static void conn_free_v(void *r) { conn_free(r); }
static void state_free_v(void *r) { state_rec_free(r); }

static const desc_t provider_desc = {
  RECORD_DB_PROVIDERS, provider_fields, ARRAY_SIZE(provider_fields),
  offsetof(provider_t, name), sizeof(provider_t), provider_free_v,
};
static const desc_t conn_desc = {
  RECORD_DB_CONNECTIONS, conn_fields, ARRAY_SIZE(conn_fields),
  offsetof(conn_t, id), sizeof(conn_t), conn_free_v,
};
static const desc_t state_desc = {
  RECORD_DB_STATES, state_fields, ARRAY_SIZE(state_fields),
  offsetof(state_rec_t, state), sizeof(state_rec_t), state_free_v,
};
// clang-format on

#define AT(rec, f, T) ((T *)((char *)(rec) + (f)->off))
#define CAT(rec, f, T) ((const T *)((const char *)(rec) + (f)->off))

/* ---- encoding ---- */

static int buf_write_cb(void *data, const char *p, size_t n)
{
  buf_append(data, p, n);
  return 0;
}

static int field_is_set(const field_t *f, const void *rec)
{
  switch ((ftype_t)f->type) {
  case F_STR:
  case F_SEALED: return *CAT(rec, f, char *) != NULL;
  case F_I64: return *CAT(rec, f, int64_t) != 0;
  case F_I32: return *CAT(rec, f, int32_t) != 0;
  case F_U32: return *CAT(rec, f, uint32_t) != 0;
  case F_U64: return *CAT(rec, f, uint64_t) != 0;
  case F_BOOL: return *CAT(rec, f, bool);
  case F_ENUM: return *CAT(rec, f, int) != 0;
  case F_STRLIST: return CAT(rec, f, strlist_t)->n != 0;
  case F_KVLIST: return CAT(rec, f, kvlist_t)->n != 0;
  }
  return 0;
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

static int encode(const desc_t *d, const void *rec, const seal_keyring_t *kr, buf_t *out)
{
  const char *key = *(char *const *)((const char *)rec + d->key_off);
  if (key == NULL)
    return GRANTD_EINVALID;
  size_t keylen = strlen(key), start = out->len, used = 0;
  for (size_t i = 0; i < d->nfields; i++)
    if (field_is_set(&d->fields[i], rec))
      used = i + 1;
  msgpack_packer pk;
  msgpack_packer_init(&pk, out, buf_write_cb);
  msgpack_pack_array(&pk, 1 + used);
  msgpack_pack_uint32(&pk, RECORD_VERSION);
  for (size_t i = 0; i < used; i++) {
    const field_t *f = &d->fields[i];
    switch ((ftype_t)f->type) {
    case F_STR: {
      const char *s = *CAT(rec, f, char *);
      if (s == NULL)
        msgpack_pack_nil(&pk);
      else
        pack_cstr(&pk, s);
      break;
    }
    case F_SEALED: {
      const char *s = *CAT(rec, f, char *);
      if (s == NULL) {
        msgpack_pack_nil(&pk);
        break;
      }
      size_t n = strlen(s), blen = seal_sealed_len(kr, n);
      if (blen == 0) {
        out->len = start;
        return GRANTD_ESTORE_KEY;
      }
      msgpack_pack_bin(&pk, blen);
      /* The blob goes straight into out: no plaintext copy is made. */
      if (seal_seal(kr, d->db, key, keylen, s, n, out) != 0) {
        out->len = start;
        return GRANTD_ESTORE_KEY;
      }
      break;
    }
    case F_I64: msgpack_pack_int64(&pk, *CAT(rec, f, int64_t)); break;
    case F_I32: msgpack_pack_int32(&pk, *CAT(rec, f, int32_t)); break;
    case F_U32: msgpack_pack_uint32(&pk, *CAT(rec, f, uint32_t)); break;
    case F_U64: msgpack_pack_uint64(&pk, *CAT(rec, f, uint64_t)); break;
    case F_ENUM: msgpack_pack_int(&pk, *CAT(rec, f, int)); break;
    case F_BOOL:
      if (*CAT(rec, f, bool))
        msgpack_pack_true(&pk);
      else
        msgpack_pack_false(&pk);
      break;
    case F_STRLIST: {
      const strlist_t *l = CAT(rec, f, strlist_t);
      if (l->n == 0) {
        msgpack_pack_nil(&pk);
        break;
      }
      msgpack_pack_array(&pk, l->n);
      for (size_t j = 0; j < l->n; j++)
        pack_cstr(&pk, l->items[j] ? l->items[j] : "");
      break;
    }
    case F_KVLIST: {
      const kvlist_t *l = CAT(rec, f, kvlist_t);
      if (l->n == 0) {
        msgpack_pack_nil(&pk);
        break;
      }
      msgpack_pack_map(&pk, l->n);
      for (size_t j = 0; j < l->n; j++) {
        pack_cstr(&pk, l->items[j].key ? l->items[j].key : "");
        pack_cstr(&pk, l->items[j].value ? l->items[j].value : "");
      }
      break;
    }
    }
  }
  return 0;
}

int provider_encode(const provider_t *p, const seal_keyring_t *kr, buf_t *out)
{
  return encode(&provider_desc, p, kr, out);
}

int conn_encode(const conn_t *c, const seal_keyring_t *kr, buf_t *out)
{
  return encode(&conn_desc, c, kr, out);
}

int state_rec_encode(const state_rec_t *s, const seal_keyring_t *kr, buf_t *out)
{
  return encode(&state_desc, s, kr, out);
}

/* ---- decoding ---- */

static uint64_t be(const uint8_t *p, size_t n)
{
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

/* Step 1 (see the file comment): structural bounds check of raw msgpack.
 * `need` counts objects still to read; each needs at least one byte, so
 * need never exceeds the bytes left, which bounds msgpack-c's allocation. */
static int precheck(const uint8_t *p, size_t n)
{
  size_t i = 0, need = 1;
  while (need > 0) {
    if (i >= n)
      return -1;
    uint8_t b = p[i++];
    need--;
    uint64_t len = 0, kids = 0;
    size_t lw = 0; /* width of a length field that follows */
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3 && b != 0xc1)) {
      /* fixint, negative fixint, nil, false, true */
    } else if (b <= 0x8f) {
      kids = 2u * (b & 0x0f);
    } else if (b <= 0x9f) {
      kids = b & 0x0f;
    } else if (b <= 0xbf) {
      len = b & 0x1f;
    } else {
      switch (b) {
      case 0xc4:
      case 0xd9: lw = 1; break; /* bin8, str8 */
      case 0xc5:
      case 0xda: lw = 2; break; /* bin16, str16 */
      case 0xc6:
      case 0xdb: lw = 4; break; /* bin32, str32 */
      case 0xc7:
        lw = 1;
        len = 1;
        break; /* ext8: +type */
      case 0xc8:
        lw = 2;
        len = 1;
        break;
      case 0xc9:
        lw = 4;
        len = 1;
        break;
      case 0xca: len = 4; break; /* float32 */
      case 0xcb: len = 8; break; /* float64 */
      case 0xcc:
      case 0xd0: len = 1; break;
      case 0xcd:
      case 0xd1: len = 2; break;
      case 0xce:
      case 0xd2: len = 4; break;
      case 0xcf:
      case 0xd3: len = 8; break;
      case 0xd4: len = 2; break; /* fixext1 */
      case 0xd5: len = 3; break;
      case 0xd6: len = 5; break;
      case 0xd7: len = 9; break;
      case 0xd8: len = 17; break;
      case 0xdc:
      case 0xdd:
      case 0xde:
      case 0xdf: { /* array/map 16/32 */
        size_t w = (b & 1) ? 4 : 2;
        if (n - i < w)
          return -1;
        kids = be(p + i, w) * (b >= 0xde ? 2 : 1);
        i += w;
        break;
      }
      default: return -1; /* 0xc1 */
      }
    }
    if (lw > 0) {
      if (n - i < lw)
        return -1;
      len += be(p + i, lw);
      i += lw;
    }
    if (len > n - i)
      return -1;
    i += (size_t)len;
    if (kids > n - i || need + kids > n - i)
      return -1;
    need += (size_t)kids;
  }
  return i == n ? 0 : -1;
}

static int str_ok(const msgpack_object *o)
{
  return o->type == MSGPACK_OBJECT_STR &&
         (o->via.str.size == 0 || memchr(o->via.str.ptr, '\0', o->via.str.size) == NULL);
}

/* Step 3a: type and range of one field; no allocation. nil = unset for
 * every type. */
/* A sealed field that the value's version still held in clear. */
static int was_plain(const field_t *f, uint32_t version)
{
  return f->type == F_SEALED && version < f->sealed;
}

static int check_field(const field_t *f, const msgpack_object *o, uint32_t version)
{
  if (o->type == MSGPACK_OBJECT_NIL)
    return 0;
  if (was_plain(f, version))
    return str_ok(o) ? 0 : -1;
  switch ((ftype_t)f->type) {
  case F_STR: return str_ok(o) ? 0 : -1;
  case F_SEALED: return o->type == MSGPACK_OBJECT_BIN ? 0 : -1;
  case F_I64:
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
      return o->via.u64 <= INT64_MAX ? 0 : -1;
    return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? 0 : -1;
  case F_I32:
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
      return o->via.u64 <= INT32_MAX ? 0 : -1;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
      return o->via.i64 >= INT32_MIN ? 0 : -1;
    return -1;
  case F_U32:
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= UINT32_MAX ? 0 : -1;
  case F_U64: return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? 0 : -1;
  case F_ENUM: return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= f->max ? 0 : -1;
  case F_BOOL: return o->type == MSGPACK_OBJECT_BOOLEAN ? 0 : -1;
  case F_STRLIST:
    if (o->type != MSGPACK_OBJECT_ARRAY)
      return -1;
    for (uint32_t i = 0; i < o->via.array.size; i++)
      if (!str_ok(&o->via.array.ptr[i]))
        return -1;
    return 0;
  case F_KVLIST:
    if (o->type != MSGPACK_OBJECT_MAP)
      return -1;
    for (uint32_t i = 0; i < o->via.map.size; i++)
      if (!str_ok(&o->via.map.ptr[i].key) || !str_ok(&o->via.map.ptr[i].val))
        return -1;
    return 0;
  }
  return -1;
}

/* A stored string, also when empty: msgpack-c may give an empty string a
 * NULL pointer (at the end of the buffer), which must not turn "" into an
 * unset field or a NULL list item. */
static char *dup_str(const msgpack_object *o)
{
  return xstrndup(o->via.str.size ? o->via.str.ptr : "", o->via.str.size);
}

/* Step 3b: copies one checked field into the record. Only sealed fields can
 * fail (seal_open's code). */
static int set_field(const desc_t *d, const field_t *f, const msgpack_object *o, void *rec,
                     const char *key, size_t keylen, const seal_keyring_t *kr, uint32_t version)
{
  if (o->type == MSGPACK_OBJECT_NIL)
    return 0;
  if (was_plain(f, version)) {
    *AT(rec, f, char *) = dup_str(o);
    return 0;
  }
  switch ((ftype_t)f->type) {
  case F_STR: *AT(rec, f, char *) = dup_str(o); break;
  case F_SEALED: {
    buf_t pt = BUF_INIT;
    buf_reserve(&pt, o->via.bin.size); /* one allocation: no stale copies */
    int rc = seal_open(kr, d->db, key, keylen, o->via.bin.ptr, o->via.bin.size, &pt);
    if (rc == 0 && pt.len > 0 && memchr(pt.data, '\0', pt.len) != NULL)
      rc = GRANTD_ESTORE_DECODE;
    if (rc == 0)
      *AT(rec, f, char *) = xstrndup(pt.len ? pt.data : "", pt.len);
    buf_wipe_free(&pt);
    return rc;
  }
  case F_I64:
    *AT(rec, f, int64_t) =
      o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)o->via.u64 : o->via.i64;
    break;
  case F_I32:
    *AT(rec, f, int32_t) =
      o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int32_t)o->via.u64 : (int32_t)o->via.i64;
    break;
  case F_U32: *AT(rec, f, uint32_t) = (uint32_t)o->via.u64; break;
  case F_U64: *AT(rec, f, uint64_t) = o->via.u64; break;
  case F_ENUM: *AT(rec, f, int) = (int)o->via.u64; break;
  case F_BOOL: *AT(rec, f, bool) = o->via.boolean; break;
  case F_STRLIST: {
    strlist_t *l = AT(rec, f, strlist_t);
    uint32_t n = o->via.array.size;
    if (n == 0)
      break;
    l->items = xmalloc(n * sizeof(*l->items));
    for (uint32_t i = 0; i < n; i++)
      l->items[i] = dup_str(&o->via.array.ptr[i]);
    l->n = n;
    break;
  }
  case F_KVLIST: {
    kvlist_t *l = AT(rec, f, kvlist_t);
    uint32_t n = o->via.map.size;
    if (n == 0)
      break;
    l->items = xmalloc(n * sizeof(*l->items));
    for (uint32_t i = 0; i < n; i++) {
      l->items[i].key = dup_str(&o->via.map.ptr[i].key);
      l->items[i].value = dup_str(&o->via.map.ptr[i].val);
    }
    l->n = n;
    break;
  }
  }
  return 0;
}

/* Steps 1, 2 and the array/version check, plus 3a for every field.
 * *arr points at the stored fields (after the version), *nf their count. */
static int parse(const desc_t *d, const void *data, size_t n, msgpack_zone *z,
                 const msgpack_object **arr, size_t *nf, msgpack_object *root, uint32_t *version)
{
  if (data == NULL || n == 0 || precheck(data, n) != 0)
    return GRANTD_ESTORE_DECODE;
  size_t off = 0;
  if (msgpack_unpack(data, n, &off, z, root) != MSGPACK_UNPACK_SUCCESS)
    return GRANTD_ESTORE_DECODE;
  if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 1)
    return GRANTD_ESTORE_DECODE;
  const msgpack_object *v = &root->via.array.ptr[0];
  if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return GRANTD_ESTORE_DECODE;
  if (v->via.u64 < RECORD_VERSION_OLDEST || v->via.u64 > RECORD_VERSION)
    return GRANTD_ESTORE_VERSION;
  uint32_t ver = (uint32_t)v->via.u64;
  size_t cnt = root->via.array.size - 1;
  if (cnt > d->nfields)
    return GRANTD_ESTORE_DECODE;
  for (size_t i = 0; i < cnt; i++)
    if (check_field(&d->fields[i], &root->via.array.ptr[i + 1], ver) != 0)
      return GRANTD_ESTORE_DECODE;
  *arr = root->via.array.ptr + 1;
  *nf = cnt;
  *version = ver;
  return 0;
}

/* skip_off: the offset of a sealed field left closed when its plaintext
 * is not empty (*skipped is then set), or SIZE_MAX for none. */
static int decode_ex(const desc_t *d, const void *data, size_t n, const char *key, size_t keylen,
                     const seal_keyring_t *kr, void *out, size_t skip_off, bool *skipped)
{
  memset(out, 0, d->size);
  if (key == NULL)
    return GRANTD_EINVALID;
  msgpack_zone z;
  if (!msgpack_zone_init(&z, 1024))
    abort(); /* the project's OOM policy (mem.h) */
  msgpack_object root;
  const msgpack_object *arr = NULL;
  size_t nf = 0;
  uint32_t ver = 0;
  int rc = parse(d, data, n, &z, &arr, &nf, &root, &ver);
  for (size_t i = 0; rc == 0 && i < nf; i++) {
    const field_t *f = &d->fields[i];
    size_t plen;
    if (f->off == skip_off && arr[i].type == MSGPACK_OBJECT_BIN && !was_plain(f, ver) &&
        seal_blob_plain_len(arr[i].via.bin.ptr, arr[i].via.bin.size, &plen) == 0 && plen > 0) {
      *skipped = true;
      continue;
    }
    rc = set_field(d, f, &arr[i], out, key, keylen, kr, ver);
  }
  msgpack_zone_destroy(&z);
  if (rc != 0) {
    d->free_fn(out);
    return rc;
  }
  *(char **)((char *)out + d->key_off) = xstrndup(key, keylen);
  return 0;
}

static int decode(const desc_t *d, const void *data, size_t n, const char *key, size_t keylen,
                  const seal_keyring_t *kr, void *out)
{
  return decode_ex(d, data, n, key, keylen, kr, out, SIZE_MAX, NULL);
}

int provider_decode(const void *data, size_t n, const char *name, size_t name_len,
                    const seal_keyring_t *kr, provider_t *out)
{
  return decode(&provider_desc, data, n, name, name_len, kr, out);
}

int conn_decode(const void *data, size_t n, const char *id, size_t id_len, const seal_keyring_t *kr,
                conn_t *out)
{
  return decode(&conn_desc, data, n, id, id_len, kr, out);
}

int conn_decode_token_view(const void *data, size_t n, const char *id, size_t id_len,
                           const seal_keyring_t *kr, conn_t *out, bool *has_rt)
{
  bool skipped = false;
  int rc =
    decode_ex(&conn_desc, data, n, id, id_len, kr, out, offsetof(conn_t, refresh_token), &skipped);
  *has_rt = rc == 0 && (skipped || (out->refresh_token != NULL && out->refresh_token[0] != '\0'));
  return rc;
}

int state_rec_decode(const void *data, size_t n, const char *state, size_t state_len,
                     const seal_keyring_t *kr, state_rec_t *out)
{
  return decode(&state_desc, data, n, state, state_len, kr, out);
}

/* ---- the scheduling view, read straight from the bytes ---------------- */

/* The scheduler reads a few fields of every connection at start-up and on
 * every write (the old tenant index key), so this path builds no object tree
 * and allocates nothing: after precheck() it walks the top-level array once,
 * checking each field as check_field() does, with msgpack-c's typing of
 * integers (a signed encoding of a non-negative value is a positive
 * integer). The fuzz harness holds it to conn_decode()'s verdicts. */

enum { K_NIL, K_BOOL, K_UINT, K_NINT, K_STR, K_BIN, K_ARRAY, K_MAP, K_OTHER };

typedef struct {
  int kind;
  uint64_t u;       /* K_BOOL, K_UINT; K_ARRAY/K_MAP: element / pair count */
  int64_t i;        /* K_NINT */
  const uint8_t *s; /* K_STR, K_BIN: payload */
  size_t len;       /* K_STR, K_BIN: payload length */
} raw_t;

/* Reads the object header at p[*i] (a prechecked buffer of n bytes) and
 * moves past it and past a string, bin, float or ext payload; an array's or
 * map's elements follow. -1 past the end. */
static int raw_next(const uint8_t *p, size_t n, size_t *i, raw_t *o)
{
  if (*i >= n)
    return -1;
  uint8_t b = p[(*i)++];
  size_t w = 0, skip = 0;
  memset(o, 0, sizeof *o);
  if (b <= 0x7f) {
    o->kind = K_UINT, o->u = b;
  } else if (b >= 0xe0) {
    o->kind = K_NINT, o->i = (int8_t)b;
  } else if (b <= 0x8f) {
    o->kind = K_MAP, o->u = b & 0x0f;
  } else if (b <= 0x9f) {
    o->kind = K_ARRAY, o->u = b & 0x0f;
  } else if (b <= 0xbf) {
    o->kind = K_STR, o->len = b & 0x1f;
  } else {
    switch (b) {
    case 0xc0: o->kind = K_NIL; break;
    case 0xc2:
    case 0xc3: o->kind = K_BOOL, o->u = b == 0xc3; break;
    case 0xc4:
    case 0xc5:
    case 0xc6: o->kind = K_BIN, w = (size_t)1 << (b - 0xc4); break;
    case 0xd9:
    case 0xda:
    case 0xdb: o->kind = K_STR, w = (size_t)1 << (b - 0xd9); break;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: {
      size_t k = (size_t)1 << (b - 0xcc);
      if (n - *i < k)
        return -1;
      o->kind = K_UINT, o->u = be(p + *i, k);
      *i += k;
      break;
    }
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
      size_t k = (size_t)1 << (b - 0xd0);
      if (n - *i < k)
        return -1;
      uint64_t v = be(p + *i, k);
      *i += k;
      int64_t x = k == 1 ? (int8_t)v : k == 2 ? (int16_t)v : k == 4 ? (int32_t)v : (int64_t)v;
      if (x >= 0)
        o->kind = K_UINT, o->u = (uint64_t)x;
      else
        o->kind = K_NINT, o->i = x;
      break;
    }
    case 0xdc:
    case 0xdd:
    case 0xde:
    case 0xdf: {
      size_t k = (b & 1) ? 4 : 2;
      if (n - *i < k)
        return -1;
      o->kind = b >= 0xde ? K_MAP : K_ARRAY, o->u = be(p + *i, k);
      *i += k;
      break;
    }
    case 0xca: o->kind = K_OTHER, skip = 4; break;
    case 0xcb: o->kind = K_OTHER, skip = 8; break;
    case 0xd4: o->kind = K_OTHER, skip = 2; break;
    case 0xd5: o->kind = K_OTHER, skip = 3; break;
    case 0xd6: o->kind = K_OTHER, skip = 5; break;
    case 0xd7: o->kind = K_OTHER, skip = 9; break;
    case 0xd8: o->kind = K_OTHER, skip = 17; break;
    case 0xc7:
    case 0xc8:
    case 0xc9: o->kind = K_OTHER, w = (size_t)1 << (b - 0xc7), skip = 1; break;
    default: return -1; /* 0xc1 */
    }
  }
  if (w > 0) {
    if (n - *i < w)
      return -1;
    size_t len = (size_t)be(p + *i, w);
    *i += w;
    if (o->kind == K_OTHER)
      skip += len;
    else
      o->len = len;
  }
  if (o->kind == K_STR || o->kind == K_BIN) {
    if (o->len > n - *i)
      return -1;
    o->s = p + *i;
    *i += o->len;
  }
  if (skip > n - *i)
    return -1;
  *i += skip;
  return 0;
}

static bool raw_str_ok(const raw_t *o)
{
  return o->kind == K_STR && (o->len == 0 || memchr(o->s, '\0', o->len) == NULL);
}

/* check_field() on the raw object `o` just read; the elements of a list or
 * map field are read (and checked) here too. */
static int raw_check(const field_t *f, const uint8_t *p, size_t n, size_t *i, const raw_t *o,
                     uint32_t version)
{
  if (o->kind == K_NIL)
    return 0;
  if (was_plain(f, version))
    return raw_str_ok(o) ? 0 : -1;
  switch ((ftype_t)f->type) {
  case F_STR: return raw_str_ok(o) ? 0 : -1;
  case F_SEALED: return o->kind == K_BIN ? 0 : -1;
  case F_I64:
    if (o->kind == K_UINT)
      return o->u <= INT64_MAX ? 0 : -1;
    return o->kind == K_NINT ? 0 : -1;
  case F_I32:
    if (o->kind == K_UINT)
      return o->u <= INT32_MAX ? 0 : -1;
    if (o->kind == K_NINT)
      return o->i >= INT32_MIN ? 0 : -1;
    return -1;
  case F_U32: return o->kind == K_UINT && o->u <= UINT32_MAX ? 0 : -1;
  case F_U64: return o->kind == K_UINT ? 0 : -1;
  case F_ENUM: return o->kind == K_UINT && o->u <= f->max ? 0 : -1;
  case F_BOOL: return o->kind == K_BOOL ? 0 : -1;
  case F_STRLIST:
  case F_KVLIST: {
    bool map = f->type == F_KVLIST;
    if (o->kind != (map ? K_MAP : K_ARRAY))
      return -1;
    uint64_t items = map ? 2 * o->u : o->u;
    for (uint64_t k = 0; k < items; k++) {
      raw_t e;
      if (raw_next(p, n, i, &e) != 0 || !raw_str_ok(&e))
        return -1;
    }
    return 0;
  }
  }
  return -1;
}

static slice_t raw_slice(const raw_t *o)
{
  slice_t s = {NULL, 0};
  if (o->kind == K_STR) {
    s.p = (const char *)o->s;
    s.n = o->len;
  }
  return s;
}

static int64_t raw_i64(const raw_t *o)
{
  return o->kind == K_NINT ? o->i : o->kind == K_UINT ? (int64_t)o->u : 0;
}

int conn_decode_sched(const void *data, size_t n, const char *id, size_t id_len, conn_sched_t *out)
{
  memset(out, 0, sizeof(*out));
  const uint8_t *p = data;
  if (data == NULL || n == 0 || precheck(p, n) != 0)
    return GRANTD_ESTORE_DECODE;
  size_t i = 0;
  raw_t root, v;
  if (raw_next(p, n, &i, &root) != 0 || root.kind != K_ARRAY || root.u < 1)
    return GRANTD_ESTORE_DECODE;
  if (raw_next(p, n, &i, &v) != 0 || v.kind != K_UINT)
    return GRANTD_ESTORE_DECODE;
  if (v.u < RECORD_VERSION_OLDEST || v.u > RECORD_VERSION)
    return GRANTD_ESTORE_VERSION;
  uint32_t ver = (uint32_t)v.u;
  uint64_t cnt = root.u - 1;
  if (cnt > conn_desc.nfields)
    return GRANTD_ESTORE_DECODE;
  conn_sched_t cs;
  memset(&cs, 0, sizeof cs);
  for (size_t f = 0; f < cnt; f++) {
    raw_t o;
    if (raw_next(p, n, &i, &o) != 0 || raw_check(&conn_desc.fields[f], p, n, &i, &o, ver) != 0)
      return GRANTD_ESTORE_DECODE;
    switch (f) {
    case C_TENANT: cs.tenant = raw_slice(&o); break;
    case C_PROVIDER: cs.provider = raw_slice(&o); break;
    case C_GRANT: cs.grant = (grant_t)(o.kind == K_UINT ? o.u : 0); break;
    case C_STATUS: cs.status = (conn_status_t)(o.kind == K_UINT ? o.u : 0); break;
    case C_EXPIRES: cs.expires_at = raw_i64(&o); break;
    case C_NEXT_REFRESH: cs.next_refresh_at = raw_i64(&o); break;
    case C_FAILURES: cs.failures = (uint32_t)(o.kind == K_UINT ? o.u : 0); break;
    default: break;
    }
  }
  /* Strings point into `data`. */
  cs.id.p = id;
  cs.id.n = id_len;
  *out = cs;
  return 0;
}
