/*
 * fuzz_record.c - the msgpack record decoders with unsealing
 * (store/record.h) on arbitrary stored values: a corrupted or truncated
 * record must be reported, never crash.
 *
 * Input: one byte choosing the record type (provider, connection,
 * authorization state; the connection also through its scheduling view),
 * then the stored value. The record key is fixed per type, and the keyring
 * holds the key the seed values were sealed with.
 *
 * Properties:
 * - a value that decodes re-encodes to bytes that decode again, and
 *   encoding that second record gives the same bytes (sealing uses a
 *   fixed random stream here, so encode is a function of the record);
 * - a connection that decodes fully also decodes through the scheduling
 *   view, with the same fields;
 * - a failed decode returns one of the documented codes and leaves the
 *   record zeroed.
 *
 * Seeds: with GRANTD_FUZZ_WRITE_SEEDS=DIR the harness writes sample
 * records (every field set, sealed secrets, short and old-style values)
 * into DIR and exits; tests/fuzz/corpus/record/ was made that way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "fuzz_support.h"
#include "store/record.h"
#include "store/seal.h"

static seal_keyring_t *kr;

static void write_seed(const char *dir, const char *name, char type, const buf_t *b)
{
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(&type, 1, 1, f) != 1 || fwrite(b->data, 1, b->len, f) != b->len)
    abort();
  fclose(f);
}

static void write_seeds(const char *dir)
{
  provider_t p;
  memset(&p, 0, sizeof p);
  p.name = "p1";
  p.issuer = "https://acme.example";
  p.authorize_url = "https://acme.example/authorize";
  p.token_url = "https://acme.example/token";
  p.revoke_url = "https://acme.example/revoke";
  p.client_id = "cid";
  p.client_secret = "client-secret-value";
  p.client_auth = CLIENT_AUTH_POST;
  char *sc[] = {"read", "write"};
  p.scopes.items = sc;
  p.scopes.n = 2;
  p.scope_separator = ",";
  p.pkce = true;
  kv_t kv[] = {{"audience", "api"}, {"prompt", "consent"}};
  p.authorize_params.items = kv;
  p.authorize_params.n = 2;
  p.token_params.items = kv;
  p.token_params.n = 1;
  p.default_expires_in = 3600;
  p.rate_limit_count = 10;
  p.rate_limit_window = 60;
  p.timeout_ms = 5000;
  p.ca_file = "/etc/ssl/ca.pem";
  char *pm[] = {"S256"};
  p.pkce_methods.items = pm;
  p.pkce_methods.n = 1;
  p.created_at = 1700000000000LL;
  p.updated_at = 1700000001000LL;
  buf_t b = BUF_INIT;
  if (provider_encode(&p, kr, &b) != 0)
    abort();
  write_seed(dir, "provider_full", 'p', &b);
  buf_reset(&b);
  provider_t q;
  memset(&q, 0, sizeof q);
  q.name = "p1";
  q.token_url = "https://acme.example/token";
  if (provider_encode(&q, kr, &b) != 0)
    abort();
  write_seed(dir, "provider_min", 'p', &b);
  buf_reset(&b);

  conn_t c;
  memset(&c, 0, sizeof c);
  c.id = "c1";
  c.tenant = "t-7";
  c.provider = "p1";
  c.grant = GRANT_PASSWORD;
  c.status = CONN_REFRESH_FAILING;
  c.scopes = p.scopes;
  c.access_token = "access-token-value";
  c.refresh_token = "refresh-token-value";
  c.token_type = "Bearer";
  c.expires_at = 1700003600000LL;
  c.refresh_token_expires_at = 1800000000000LL;
  c.extra_json = "{\"instance_url\":\"https://x.example\"}";
  c.client_id = "override";
  c.client_secret = "override-secret";
  c.username = "alice";
  c.password = "hunter2-password";
  c.metadata_json = "{\"k\":\"v\"}";
  c.last_error_code = "server_error";
  c.last_error_message = "HTTP 502";
  c.last_error_http = 502;
  c.last_error_at = 1700000002000LL;
  c.failures = 3;
  c.refreshed_at = 1700000000000LL;
  c.next_refresh_at = 1700003000000LL;
  c.created_at = 1699000000000LL;
  c.updated_at = 1700000002000LL;
  c.revision = 9;
  if (conn_encode(&c, kr, &b) != 0)
    abort();
  write_seed(dir, "conn_full", 'c', &b);
  write_seed(dir, "sched_full", 's', &b);
  buf_reset(&b);
  conn_t d;
  memset(&d, 0, sizeof d);
  d.id = "c1";
  d.provider = "p1";
  d.status = CONN_PENDING;
  if (conn_encode(&d, kr, &b) != 0)
    abort();
  write_seed(dir, "conn_min", 'c', &b);
  buf_reset(&b);

  state_rec_t s;
  memset(&s, 0, sizeof s);
  s.state = "s1";
  s.conn_id = "c1";
  s.code_verifier = "verifier-verifier-verifier-verifier-verifier";
  s.redirect_after = "https://app.example/done";
  s.scopes = p.scopes;
  s.redirect_uri = "http://127.0.0.1:8484/oauth/callback";
  s.expires_at = 1700000600000LL;
  if (state_rec_encode(&s, kr, &b) != 0)
    abort();
  write_seed(dir, "state_full", 'x', &b);
  buf_free(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  kr = fuzz_keyring(0x33);
  const char *dir = getenv("GRANTD_FUZZ_WRITE_SEEDS");
  if (dir != NULL) {
    fuzz_rand_fixed(1, 42);
    write_seeds(dir);
    exit(0);
  }
  fuzz_log_capture(); /* keeps the decoders' warnings out of the output */
  return 0;
}

static int decode_err_ok(int rc)
{
  return rc == GRANTD_ESTORE_DECODE || rc == GRANTD_ESTORE_VERSION || rc == GRANTD_ESTORE_AUTH ||
         rc == GRANTD_ESTORE_KEY;
}

static int zeroed(const void *p, size_t n)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return 0;
  return 1;
}

static int same_bytes(const buf_t *a, const buf_t *b)
{
  return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* One record type's codec, for the shared round-trip check. */
typedef struct {
  const char *what, *key;
  size_t size;
  int (*dec)(const void *, size_t, const char *, size_t, const seal_keyring_t *, void *);
  int (*enc)(const void *, const seal_keyring_t *, buf_t *);
  void (*free_)(void *);
} codec_t;

/* Wrappers with the codec_t signatures (calling through a cast pointer
 * would be undefined behaviour). */
#define CODEC_FNS(T, pre) \
  static int pre##_dec_v(const void *d, size_t n, const char *k, size_t kl, \
                         const seal_keyring_t *r, void *o) \
  { \
    return pre##_decode(d, n, k, kl, r, (T *)o); \
  } \
  static int pre##_enc_v(const void *o, const seal_keyring_t *r, buf_t *b) \
  { \
    return pre##_encode((const T *)o, r, b); \
  } \
  static void pre##_free_v(void *o) \
  { \
    pre##_free((T *)o); \
  }
CODEC_FNS(provider_t, provider)
CODEC_FNS(conn_t, conn)
CODEC_FNS(state_rec_t, state_rec)

static const codec_t codecs[] = {
  {"provider", "p1", sizeof(provider_t), provider_dec_v, provider_enc_v, provider_free_v},
  {"connection", "c1", sizeof(conn_t), conn_dec_v, conn_enc_v, conn_free_v},
  {"state", "s1", sizeof(state_rec_t), state_rec_dec_v, state_rec_enc_v, state_rec_free_v},
};

typedef union {
  provider_t p;
  conn_t c;
  state_rec_t s;
} rec_u;

static void print_hex(const buf_t *b)
{
  for (size_t i = 0; i < b->len; i++)
    fprintf(stderr, "%02x", (unsigned char)b->data[i]);
  fprintf(stderr, "\n");
}

/* Decodes v; when that works, checks encode(decode(encode(r))) ==
 * encode(r) (sealing with the fixed random stream). Returns 1 when v
 * decoded (*a is then set and the caller frees it), 0 otherwise. */
static int round_trip(const codec_t *k, const uint8_t *v, size_t n, rec_u *a)
{
  rec_u b;
  memset(a, 0xa5, k->size); /* the decoder must zero its record on failure */
  int rc = k->dec(v, n, k->key, 2, kr, a);
  if (rc != 0) {
    fuzz_check(decode_err_ok(rc) && zeroed(a, k->size), "a failed decode leaves the record zeroed");
    return 0;
  }
  buf_t y = BUF_INIT, z = BUF_INIT;
  fuzz_rand_fixed(1, 1);
  fuzz_check(k->enc(a, kr, &y) == 0, "a decoded record encodes");
  fuzz_check(k->dec(y.data, y.len, k->key, 2, kr, &b) == 0, "its encoding decodes");
  fuzz_rand_fixed(1, 1);
  fuzz_check(k->enc(&b, kr, &z) == 0, "and encodes again");
  fuzz_rand_fixed(0, 0);
  if (!same_bytes(&y, &z)) {
    fprintf(stderr, "%s encodings differ:\n", k->what);
    print_hex(&y);
    print_hex(&z);
  }
  fuzz_check(same_bytes(&y, &z), "encode(decode(encode(r))) == encode(r)");
  k->free_(&b);
  buf_free(&y);
  buf_free(&z);
  return 1;
}

static void check_sched(const conn_t *c, const uint8_t *v, size_t n)
{
  conn_sched_t s;
  fuzz_check(conn_decode_sched(v, n, "c1", 2, &s) == 0,
             "a connection that decodes also decodes through the scheduling view");
  fuzz_check(s.grant == c->grant && s.status == c->status && s.expires_at == c->expires_at &&
               s.next_refresh_at == c->next_refresh_at && s.failures == c->failures,
             "the scheduling view agrees with the record");
  fuzz_check(s.id.n == 2 && memcmp(s.id.p, "c1", 2) == 0, "sched id");
  fuzz_check((c->tenant ? strlen(c->tenant) : 0) == s.tenant.n &&
               (s.tenant.n == 0 || memcmp(s.tenant.p, c->tenant, s.tenant.n) == 0),
             "sched tenant");
  fuzz_check((c->provider ? strlen(c->provider) : 0) == s.provider.n &&
               (s.provider.n == 0 || memcmp(s.provider.p, c->provider, s.provider.n) == 0),
             "sched provider");
}

/* The token view of a record conn_decode() accepts: accepted too, with
 * the same fields except a non-empty refresh token, which it reports. */
static void check_token_view(const conn_t *c, const uint8_t *v, size_t n)
{
  conn_t t;
  bool has_rt = false;
  fuzz_check(conn_decode_token_view(v, n, "c1", 2, kr, &t, &has_rt) == 0,
             "a connection that decodes also decodes through the token view");
  bool want = c->refresh_token != NULL && c->refresh_token[0] != '\0';
  fuzz_check(has_rt == want, "the token view reports the refresh token");
  fuzz_check(!has_rt || t.refresh_token == NULL, "the token view leaves the refresh token sealed");
  fuzz_check((c->access_token == NULL) == (t.access_token == NULL) &&
               (c->access_token == NULL || strcmp(c->access_token, t.access_token) == 0) &&
               t.expires_at == c->expires_at && t.status == c->status,
             "the token view agrees with the record");
  conn_free(&t);
}

static void fuzz_conn(const uint8_t *v, size_t n)
{
  rec_u a;
  if (round_trip(&codecs[1], v, n, &a)) {
    check_sched(&a.c, v, n);
    check_token_view(&a.c, v, n);
    conn_free(&a.c);
  }
}

static void fuzz_sched(const uint8_t *v, size_t n)
{
  conn_sched_t s;
  int rc = conn_decode_sched(v, n, "c1", 2, &s);
  fuzz_check(rc == 0 || rc == GRANTD_ESTORE_DECODE || rc == GRANTD_ESTORE_VERSION,
             "scheduling view error codes");
  if (rc == 0)
    fuzz_check((unsigned)s.status < CONN_STATUS_COUNT && (unsigned)s.grant <= GRANT_LAST,
               "scheduling view enums in range");
}

static void fuzz_other(const codec_t *k, const uint8_t *v, size_t n)
{
  rec_u a;
  if (round_trip(k, v, n, &a))
    k->free_(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const uint8_t *v = data + 1;
  size_t n = size - 1;
  switch (data[0]) {
  case 'p': fuzz_other(&codecs[0], v, n); break;
  case 'c': fuzz_conn(v, n); break;
  case 's': fuzz_sched(v, n); break;
  case 'x': fuzz_other(&codecs[2], v, n); break;
  default: return -1; /* not a record type: keep it out of the corpus */
  }
  buf_t log = BUF_INIT;
  fuzz_log_take(&log);
  buf_free(&log);
  return 0;
}
