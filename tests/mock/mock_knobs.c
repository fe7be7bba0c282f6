/*
 * mock_knobs.c - the mock provider's run-time knobs, its counters document
 * and its metadata documents (see mock.h).
 *
 * Knobs have one spelling everywhere: the JSON members of POST /_mock/config
 * and GET /_mock/config, and the start flags (--reuse-grace-s 30 is the knob
 * reuse_grace_s). Applying a set of knobs is all or nothing: they are
 * applied to a copy, which replaces the live knobs only when every member
 * was valid. Nothing here is on the token hot path except mock_fault_take().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "mock.h"

static const char *const fault_names[MOCK_FAULT_COUNT_] = {
  [MOCK_FAULT_NONE] = "none",
  [MOCK_FAULT_INVALID_GRANT] = "invalid_grant",
  [MOCK_FAULT_INVALID_CLIENT] = "invalid_client",
  [MOCK_FAULT_429] = "429",
  [MOCK_FAULT_500] = "500",
  [MOCK_FAULT_HANG] = "hang",
  [MOCK_FAULT_CLOSE_MID] = "close_mid_response",
  [MOCK_FAULT_MALFORMED_JSON] = "malformed_json",
  [MOCK_FAULT_FORM_ENCODED] = "form_encoded",
  [MOCK_FAULT_CHUNKED] = "chunked",
  [MOCK_FAULT_EXPIRES_MISSING] = "expires_in_missing",
  [MOCK_FAULT_EMPTY_400] = "empty_400",
  [MOCK_FAULT_EMPTY_403] = "empty_403",
  [MOCK_FAULT_ERROR_200] = "error_with_200",
};

const char *mock_fault_name(mock_fault_t f)
{
  return (unsigned)f < MOCK_FAULT_COUNT_ ? fault_names[f] : "unknown";
}

static const char *const fault_on_names[] = {"", "token", "revoke", "both"};
static const char *const auth_names[] = {"any",
                                         "basic",
                                         "post",
                                         "private_key_jwt",
                                         "client_secret_jwt",
                                         "tls_client_auth",
                                         "self_signed_tls_client_auth"};

void mock_knobs_defaults(mock_knobs_t *k)
{
  memset(k, 0, sizeof *k);
  k->expires_in = 3600;
  k->token_type = xstrdup("Bearer");
  k->rotate_refresh_tokens = true;
  k->keep_rotated = 2;
  k->retry_after = 1;
  k->fault_error = xstrdup("invalid_grant");
  k->fault_on = MOCK_FAULT_ON_TOKEN;
  k->extra = json_object();
  k->extra_json = xstrdup("");
  k->client_auth = MOCK_AUTH_ANY;
  k->code_ttl_s = 600;
  k->access_ttl_s = 3600;
  k->device_interval = 5;
  k->device_expires_in = 600;
}

void mock_knobs_free(mock_knobs_t *k)
{
  free(k->token_type);
  free(k->fault_error);
  json_decref(k->extra);
  free(k->extra_json);
  free(k->realm_id);
  free(k->issuer);
  free(k->client_assertion_key);
  free(k->client_cert_sha256);
  free(k->assertion_key);
  free(k->assertion_aud);
  memset(k, 0, sizeof *k);
}

void mock_knobs_copy(mock_knobs_t *dst, const mock_knobs_t *src)
{
  *dst = *src;
  dst->token_type = xstrdup(src->token_type);
  dst->fault_error = xstrdup(src->fault_error);
  dst->extra = json_deep_copy(src->extra);
  dst->extra_json = xstrdup(src->extra_json);
  dst->realm_id = xstrdup(src->realm_id);
  dst->issuer = xstrdup(src->issuer);
  dst->client_assertion_key = xstrdup(src->client_assertion_key);
  dst->client_cert_sha256 = xstrdup(src->client_cert_sha256);
  dst->assertion_key = xstrdup(src->assertion_key);
  dst->assertion_aud = xstrdup(src->assertion_aud);
}

/* ---- applying ------------------------------------------------------------ */

static int bad(char *err, size_t errlen, const char *key, const char *want)
{
  snprintf(err, errlen, "knob %s: expected %s", key, want);
  return GRANTD_EINVALID;
}

static int get_int(const json_t *v, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   char *err, size_t errlen)
{
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
    char want[80];
    snprintf(want, sizeof want, "an integer in %lld..%lld", (long long)lo, (long long)hi);
    return bad(err, errlen, key, want);
  }
  *out = json_integer_value(v);
  return 0;
}

static int get_bool(const json_t *v, const char *key, bool *out, char *err, size_t errlen)
{
  if (!json_is_boolean(v))
    return bad(err, errlen, key, "true or false");
  *out = json_is_true(v);
  return 0;
}

/* A string knob; `nullable` allows null (stored as NULL). */
static int get_str(const json_t *v, const char *key, bool nullable, size_t maxlen, char **out,
                   char *err, size_t errlen)
{
  if (nullable && json_is_null(v)) {
    free(*out);
    *out = NULL;
    return 0;
  }
  if (!json_is_string(v) || json_string_length(v) > maxlen ||
      strlen(json_string_value(v)) != json_string_length(v))
    return bad(err, errlen, key, nullable ? "a string or null" : "a string");
  free(*out);
  *out = xstrdup(json_string_value(v));
  return 0;
}

static int get_enum(const json_t *v, const char *key, const char *const *names, size_t n, int first,
                    int *out, char *err, size_t errlen)
{
  const char *s = json_string_value(v);
  for (int i = first; s != NULL && (size_t)i < n; i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return 0;
    }
  }
  return bad(err, errlen, key, "one of the documented names");
}

static int set_extra(mock_knobs_t *k, const json_t *v, char *err, size_t errlen)
{
  if (!json_is_object(v))
    return bad(err, errlen, "extra", "a JSON object");
  char *dump = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (dump == NULL)
    return bad(err, errlen, "extra", "an encodable JSON object");
  size_t n = strlen(dump);
  buf_t b = BUF_INIT;
  if (n > 2) { /* "{...}" -> ",..." */
    buf_putc(&b, ',');
    buf_append(&b, dump + 1, n - 2);
  }
  free(dump);
  json_decref(k->extra);
  k->extra = json_deep_copy(v);
  free(k->extra_json);
  k->extra_json = b.len ? buf_steal(&b) : xstrdup("");
  buf_free(&b);
  return 0;
}

static int apply_one(mock_knobs_t *k, const char *key, const json_t *v, char *err, size_t errlen)
{
  int e = 0, i = 0;
  if (strcmp(key, "expires_in") == 0)
    return get_int(v, key, 0, 100000000, &k->expires_in, err, errlen);
  if (strcmp(key, "expires_in_as_string") == 0)
    return get_bool(v, key, &k->expires_in_as_string, err, errlen);
  if (strcmp(key, "token_type") == 0) {
    e = get_str(v, key, false, 64, &k->token_type, err, errlen);
    if (e == 0 && (k->token_type[0] == '\0' || strpbrk(k->token_type, "\"\\") != NULL))
      e = bad(err, errlen, key, "a non-empty name without quotes");
    return e;
  }
  if (strcmp(key, "rotate_refresh_tokens") == 0)
    return get_bool(v, key, &k->rotate_refresh_tokens, err, errlen);
  if (strcmp(key, "reuse_grace_s") == 0)
    return get_int(v, key, 0, 86400, &k->reuse_grace_s, err, errlen);
  if (strcmp(key, "keep_rotated") == 0)
    return get_int(v, key, 0, MOCK_MAX_ROTATED, &k->keep_rotated, err, errlen);
  if (strcmp(key, "echo_refresh_token") == 0)
    return get_bool(v, key, &k->echo_refresh_token, err, errlen);
  if (strcmp(key, "latency_ms") == 0)
    return get_int(v, key, 0, 600000, &k->latency_ms, err, errlen);
  if (strcmp(key, "fault") == 0) {
    e = get_enum(v, key, fault_names, MOCK_FAULT_COUNT_, 0, &i, err, errlen);
    if (e == 0)
      k->fault = (mock_fault_t)i;
    return e;
  }
  if (strcmp(key, "fault_count") == 0)
    return get_int(v, key, 0, INT32_MAX, &k->fault_count, err, errlen);
  if (strcmp(key, "fault_every") == 0)
    return get_int(v, key, 0, INT32_MAX, &k->fault_every, err, errlen);
  if (strcmp(key, "retry_after") == 0)
    return get_int(v, key, 0, 86400, &k->retry_after, err, errlen);
  if (strcmp(key, "fault_error") == 0) {
    e = get_str(v, key, false, 64, &k->fault_error, err, errlen);
    if (e == 0 && (k->fault_error[0] == '\0' || strpbrk(k->fault_error, "\"\\") != NULL))
      e = bad(err, errlen, key, "a non-empty error code without quotes");
    return e;
  }
  if (strcmp(key, "fault_after_grant") == 0)
    return get_bool(v, key, &k->fault_after_grant, err, errlen);
  if (strcmp(key, "fault_on") == 0)
    return get_enum(v, key, fault_on_names, ARRAY_SIZE(fault_on_names), 1, &k->fault_on, err,
                    errlen);
  if (strcmp(key, "extra") == 0)
    return set_extra(k, v, err, errlen);
  if (strcmp(key, "realm_id") == 0)
    return get_str(v, key, true, 256, &k->realm_id, err, errlen);
  if (strcmp(key, "issuer") == 0)
    return get_str(v, key, true, 1024, &k->issuer, err, errlen);
  if (strcmp(key, "send_iss") == 0)
    return get_bool(v, key, &k->send_iss, err, errlen);
  if (strcmp(key, "deny") == 0)
    return get_bool(v, key, &k->deny, err, errlen);
  if (strcmp(key, "require_pkce") == 0)
    return get_bool(v, key, &k->require_pkce, err, errlen);
  if (strcmp(key, "client_auth") == 0)
    return get_enum(v, key, auth_names, ARRAY_SIZE(auth_names), 0, &k->client_auth, err, errlen);
  if (strcmp(key, "client_assertion_key") == 0)
    return get_str(v, key, true, 16384, &k->client_assertion_key, err, errlen);
  if (strcmp(key, "client_cert_sha256") == 0)
    return get_str(v, key, true, 64, &k->client_cert_sha256, err, errlen);
  if (strcmp(key, "device_interval") == 0)
    return get_int(v, key, 0, 3600, &k->device_interval, err, errlen);
  if (strcmp(key, "device_expires_in") == 0)
    return get_int(v, key, 1, 86400, &k->device_expires_in, err, errlen);
  if (strcmp(key, "device_slow_down") == 0)
    return get_int(v, key, 0, 1000, &k->device_slow_down, err, errlen);
  if (strcmp(key, "assertion_key") == 0)
    return get_str(v, key, true, 16384, &k->assertion_key, err, errlen);
  if (strcmp(key, "assertion_aud") == 0)
    return get_str(v, key, true, 1024, &k->assertion_aud, err, errlen);
  if (strcmp(key, "code_ttl_s") == 0)
    return get_int(v, key, 1, 86400, &k->code_ttl_s, err, errlen);
  if (strcmp(key, "access_ttl_s") == 0)
    return get_int(v, key, 1, 100000000, &k->access_ttl_s, err, errlen);
  snprintf(err, errlen, "unknown knob %s", key);
  return GRANTD_EINVALID;
}

int mock_knobs_apply(mock_knobs_t *k, const json_t *obj, char *err, size_t errlen)
{
  if (!json_is_object(obj)) {
    snprintf(err, errlen, "knobs must be a JSON object");
    return GRANTD_EINVALID;
  }
  mock_knobs_t tmp;
  mock_knobs_copy(&tmp, k);
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v)
  {
    int e = apply_one(&tmp, key, v, err, errlen);
    if (e != 0) {
      mock_knobs_free(&tmp);
      return e;
    }
  }
  /* A fault set without a count applies to all requests; none clears it. */
  if (tmp.fault == MOCK_FAULT_NONE ||
      (json_object_get(obj, "fault") != NULL && json_object_get(obj, "fault_count") == NULL))
    tmp.fault_count = 0;
  mock_knobs_free(k);
  *k = tmp;
  return 0;
}

int mock_knobs_apply_flag(mock_knobs_t *k, const char *name, const char *value, char *err,
                          size_t errlen)
{
  char key[64];
  size_t n = strlen(name);
  if (n == 0 || n >= sizeof key) {
    snprintf(err, errlen, "unknown option --%s", name);
    return GRANTD_EINVALID;
  }
  for (size_t i = 0; i <= n; i++)
    key[i] = name[i] == '-' ? '_' : name[i];
  json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
  if (v == NULL)
    v = json_string(value);
  json_t *obj = json_object();
  json_object_set_new(obj, key, v);
  int e = mock_knobs_apply(k, obj, err, errlen);
  json_decref(obj);
  return e;
}

json_t *mock_knobs_json(const mock_knobs_t *k)
{
  json_t *o = json_pack(
    "{sI sb ss sb sI sI sb sI ss sI sI ss sb ss sO so so sb sb sb ss sI sI}", "expires_in",
    (json_int_t)k->expires_in, "expires_in_as_string", k->expires_in_as_string, "token_type",
    k->token_type, "rotate_refresh_tokens", k->rotate_refresh_tokens, "reuse_grace_s",
    (json_int_t)k->reuse_grace_s, "keep_rotated", (json_int_t)k->keep_rotated, "echo_refresh_token",
    k->echo_refresh_token, "latency_ms", (json_int_t)k->latency_ms, "fault",
    mock_fault_name(k->fault), "fault_count", (json_int_t)k->fault_count, "retry_after",
    (json_int_t)k->retry_after, "fault_error", k->fault_error, "fault_after_grant",
    k->fault_after_grant, "fault_on", fault_on_names[k->fault_on & 3], "extra", k->extra,
    "realm_id", k->realm_id ? json_string(k->realm_id) : json_null(), "issuer",
    k->issuer ? json_string(k->issuer) : json_null(), "send_iss", k->send_iss, "deny", k->deny,
    "require_pkce", k->require_pkce, "client_auth", auth_names[k->client_auth], "code_ttl_s",
    (json_int_t)k->code_ttl_s, "access_ttl_s", (json_int_t)k->access_ttl_s);
  json_object_set_new(o, "fault_every", json_integer((json_int_t)k->fault_every));
  json_object_set_new(o, "device_interval", json_integer((json_int_t)k->device_interval));
  json_object_set_new(o, "device_expires_in", json_integer((json_int_t)k->device_expires_in));
  json_object_set_new(o, "device_slow_down", json_integer((json_int_t)k->device_slow_down));
  json_object_set_new(o, "assertion_key", json_boolean(k->assertion_key != NULL));
  json_object_set_new(o, "assertion_aud",
                      k->assertion_aud ? json_string(k->assertion_aud) : json_null());
  return o;
}

mock_fault_t mock_fault_take(mock_t *m, int endpoint)
{
  mock_knobs_t *k = &m->knobs;
  if (k->fault == MOCK_FAULT_NONE || !(k->fault_on & endpoint))
    return MOCK_FAULT_NONE;
  if (k->fault_every > 0 && ++k->fault_tick % (uint64_t)k->fault_every != 0)
    return MOCK_FAULT_NONE;
  mock_fault_t f = k->fault;
  if (k->fault_count > 0 && --k->fault_count == 0)
    k->fault = MOCK_FAULT_NONE;
  m->c.faults++;
  return f;
}

const char *mock_issuer(const mock_t *m, const char *base)
{
  return m->knobs.issuer != NULL ? m->knobs.issuer : base;
}

/* ---- documents ----------------------------------------------------------- */

#define U(x) ((json_int_t)(x))

json_t *mock_counters_json(const mock_t *m)
{
  const mock_counters_t *c = &m->c;
  uint64_t hist[5], max = c->conn_requests_max, open = 0;
  memcpy(hist, c->conn_hist, sizeof hist);
  mock_tap_fold_open(m, hist, &max, &open);
  json_t *tls = json_null();
  if (m->tls_stats != NULL) {
    const tls_stats_t *s = m->tls_stats, *b = &m->tls_base;
    tls = json_pack("{sI sI sI sI}", "connections", U(c->conns_tls), "full_handshakes",
                    U(s->full - b->full), "resumed_handshakes", U(s->resumed - b->resumed),
                    "failed_handshakes", U(s->failed - b->failed));
  }
  json_t *pfx = json_object();
  for (size_t i = 0; i < c->n_prefixed; i++)
    json_object_set_new(pfx, c->prefixed[i].key, json_integer((json_int_t)c->prefixed[i].n));
  json_t *o = json_pack(
    "{s{sI sI sI sI sI sI sI sI} s{sI sI sI sI sI} s{sI sI sI}"
    " sI sI sI sI sI sI sI"
    " s{sI sI sI sI sI sI}"
    " s{sI sI sI}"
    " so"
    " s{sI sI sI sI sI s{sI sI sI sI sI}}}",
    "requests", "authorize", U(c->req_authorize), "token", U(c->req_token), "revoke",
    U(c->req_revoke), "resource", U(c->req_resource), "introspect", U(c->req_introspect),
    "metadata", U(c->req_metadata), "mock", U(c->req_mock), "other", U(c->req_other),
    "token_requests", "authorization_code", U(c->grant_code), "refresh_token", U(c->grant_refresh),
    "client_credentials", U(c->grant_cc), "password", U(c->grant_password), "other",
    U(c->grant_other), "tokens_issued", "access", U(c->issued_access), "refresh",
    U(c->issued_refresh), "codes", U(c->issued_codes), "refreshes", U(c->refreshes), "rotations",
    U(c->rotations), "grace_reuses", U(c->grace_reuses), "replays_detected", U(c->replays),
    "families_revoked", U(c->families_revoked), "revocations", U(c->revocations), "faults_injected",
    U(c->faults), "errors", "invalid_request", U(c->err_invalid_request), "invalid_client",
    U(c->err_invalid_client), "invalid_grant", U(c->err_invalid_grant), "unsupported_grant_type",
    U(c->err_unsupported_grant), "invalid_scope", U(c->err_invalid_scope), "unauthorized_client",
    U(c->err_unauthorized_client), "live", "tokens", U(mock_store_live_tokens(m->store)), "grants",
    U(mock_store_live_families(m->store)), "store_bytes", U(mock_store_bytes(m->store)), "tls", tls,
    "connections", "accepted", U(c->conns_accepted), "open", U(open), "closed", U(c->conns_closed),
    "requests_on_closed", U(c->conn_requests_closed), "max_requests_per_connection", U(max),
    "requests_per_connection", "1", U(hist[0]), "2-10", U(hist[1]), "11-100", U(hist[2]),
    "101-1000", U(hist[3]), ">1000", U(hist[4]));
  json_object_set_new(o, "prefixed", pfx);
  json_object_set_new(o, "json_bodies", json_integer((json_int_t)c->json_bodies));
  json_object_set_new(o, "revoke_query", json_integer((json_int_t)c->revoke_query));
  json_object_set_new(o, "device",
                      json_pack("{sI sI sI sI sI sI sI}", "authorizations",
                                U(c->device_authorizations), "polls", U(c->device_polls), "pending",
                                U(c->device_pending), "slow_down", U(c->device_slow_down),
                                "approved", U(c->device_approved), "denied", U(c->device_denied),
                                "expired", U(c->device_expired)));
  json_object_set_new(o, "token_exchange",
                      json_pack("{sI sI}", "accepted", U(c->token_exchanges), "rejected",
                                U(c->token_exchanges_rejected)));
  json_object_set_new(o, "jwt_bearer",
                      json_pack("{sI sI sI}", "accepted", U(c->jwt_bearer_ok), "rejected",
                                U(c->jwt_bearer_rejected), "replays", U(c->jwt_bearer_replays)));
  return o;
}

json_t *mock_metadata_json(const mock_t *m, const char *base, bool oidc)
{
  buf_t b = BUF_INIT;
  json_t *doc = json_pack(
    "{ss ss ss ss ss s[s] s[ssss] s[ss] s[ss] s[ss] s[s] sb}", "issuer", mock_issuer(m, base),
    "authorization_endpoint", "", "token_endpoint", "", "revocation_endpoint", "",
    "introspection_endpoint", "", "response_types_supported", "code", "grant_types_supported",
    "authorization_code", "refresh_token", "client_credentials", "password",
    "token_endpoint_auth_methods_supported", "client_secret_basic", "client_secret_post",
    "revocation_endpoint_auth_methods_supported", "client_secret_basic", "client_secret_post",
    "code_challenge_methods_supported", "S256", "plain", "response_modes_supported", "query",
    "authorization_response_iss_parameter_supported", m->knobs.send_iss || m->knobs.issuer != NULL);
  static const char *const eps[][2] = {
    {"authorization_endpoint", "/authorize"},
    {"token_endpoint", "/token"},
    {"revocation_endpoint", "/revoke"},
    {"introspection_endpoint", "/introspect"},
    {"device_authorization_endpoint", "/device_authorization"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(eps); i++) {
    buf_reset(&b);
    buf_printf(&b, "%s%s", base, eps[i][1]);
    json_object_set_new(doc, eps[i][0], json_string(buf_cstr(&b)));
  }
  if (m->mtls_base != NULL) {
    /* RFC 8705 section 5: where mutual-TLS clients go (the mTLS listener);
     * and the methods, so a client can see them offered. */
    json_t *al = json_object();
    buf_reset(&b);
    buf_printf(&b, "%s/token", m->mtls_base);
    json_object_set_new(al, "token_endpoint", json_string(buf_cstr(&b)));
    buf_reset(&b);
    buf_printf(&b, "%s/revoke", m->mtls_base);
    json_object_set_new(al, "revocation_endpoint", json_string(buf_cstr(&b)));
    json_object_set_new(doc, "mtls_endpoint_aliases", al);
    json_t *am = json_object_get(doc, "token_endpoint_auth_methods_supported");
    json_array_append_new(am, json_string("tls_client_auth"));
    json_array_append_new(am, json_string("self_signed_tls_client_auth"));
  }
  if (oidc) {
    buf_reset(&b);
    buf_printf(&b, "%s/jwks", base);
    json_object_set_new(doc, "jwks_uri", json_string(buf_cstr(&b)));
    json_object_set_new(doc, "subject_types_supported", json_pack("[s]", "public"));
    json_object_set_new(doc, "id_token_signing_alg_values_supported", json_pack("[s]", "RS256"));
    json_object_set_new(doc, "scopes_supported", json_pack("[sss]", "openid", "profile", "email"));
  }
  buf_free(&b);
  return doc;
}
