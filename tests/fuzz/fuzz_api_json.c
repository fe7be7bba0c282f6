/*
 * fuzz_api_json.c - the JSON request bodies of each resource
 * (api/api_json.h): PUT /v1/providers/{name}, PUT /v1/connections/{id}
 * and one line of POST /v1/connections:import (id from the body).
 *
 * Input: one byte choosing the resource ('p', 'c', 'i'), then the body
 * text, parsed with the same json_parse() the router uses.
 *
 * Properties:
 * - a refused body gives 400 or 422, a non-empty code and a message that
 *   is valid UTF-8 (it goes into the JSON error envelope);
 * - an accepted body gives a record the store codec round-trips (encode,
 *   decode, encode: same bytes), with a valid id or name;
 * - the rendering of an accepted record never contains its secrets
 *   (client_secret, tokens, password): they are swapped for a canary
 *   before rendering, and the canary must not appear.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_json.h"
#include "base/json.h"
#include "fuzz_support.h"
#include "store/record.h"
#include "store/seal.h"

static seal_keyring_t *kr;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  kr = fuzz_keyring(0x11);
  fuzz_log_capture();
  return 0;
}

static void check_err(const api_err_t *e)
{
  fuzz_check(e->status == 400 || e->status == 422, "a refused body is 400 or 422");
  fuzz_check(e->code != NULL && e->code[0] != '\0', "a refused body has an error code");
  fuzz_check(memchr(e->message, '\0', sizeof e->message) != NULL, "message terminated");
  json_t *m = json_string(e->message);
  fuzz_check(m != NULL, "the error message is valid UTF-8");
  json_decref(m);
}

/* Secrets are rendered as has_* only: each set secret is swapped for a
 * canary no input can contain, and the rendering must not hold it. */
#define CANARY "\001canary-secret\002"

static void canary(char **field)
{
  if (*field != NULL) {
    free(*field);
    *field = strdup(CANARY);
  }
}

static int input_has_canary; /* the fuzzer can learn the text: skip then */

static void no_secret(const buf_t *r)
{
  if (!input_has_canary)
    fuzz_check(!fuzz_contains(r->data, r->len, "canary-secret", 13), "a secret is rendered");
}

static int same_bytes(const buf_t *a, const buf_t *b)
{
  return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void fuzz_provider(const json_t *body)
{
  provider_t p;
  memset(&p, 0, sizeof p);
  api_err_t e;
  memset(&e, 0, sizeof e);
  if (api_provider_from_json(body, "p1", &p, &e) != 0) {
    check_err(&e);
    provider_free(&p);
    return;
  }
  fuzz_check(p.name && strcmp(p.name, "p1") == 0, "provider name");
  char *secret = p.client_secret ? strdup(p.client_secret) : NULL;
  canary(&p.client_secret);
  json_t *out = api_provider_to_json(&p);
  buf_t r = BUF_INIT;
  json_dump_buf(out, &r);
  json_decref(out);
  no_secret(&r);
  free(p.client_secret);
  p.client_secret = secret;
  buf_t y = BUF_INIT, z = BUF_INIT;
  provider_t q;
  fuzz_rand_fixed(1, 7);
  fuzz_check(provider_encode(&p, kr, &y) == 0, "an accepted provider encodes");
  fuzz_check(provider_decode(y.data, y.len, "p1", 2, kr, &q) == 0, "and decodes");
  fuzz_rand_fixed(1, 7);
  fuzz_check(provider_encode(&q, kr, &z) == 0 && same_bytes(&y, &z),
             "an accepted provider round-trips through the store codec");
  fuzz_rand_fixed(0, 0);
  provider_free(&q);
  provider_free(&p);
  buf_free(&r);
  buf_free(&y);
  buf_free(&z);
}

static void fuzz_conn(const json_t *body, const char *id)
{
  conn_t c;
  memset(&c, 0, sizeof c);
  api_err_t e;
  memset(&e, 0, sizeof e);
  if (api_conn_from_json(body, id, &c, &e) != 0) {
    check_err(&e);
    conn_free(&c);
    return;
  }
  fuzz_check(c.id != NULL && api_valid_id(c.id), "an accepted connection has a valid id");
  fuzz_check(c.provider != NULL, "an accepted connection names its provider");
  conn_t v;
  conn_copy(&v, &c);
  canary(&v.access_token);
  canary(&v.refresh_token);
  canary(&v.client_secret);
  canary(&v.password);
  buf_t r = BUF_INIT;
  json_t *out = api_conn_to_json(&v);
  json_dump_buf(out, &r);
  json_decref(out);
  no_secret(&r);
  conn_free(&v);
  buf_t y = BUF_INIT, z = BUF_INIT;
  conn_t d;
  size_t idn = strlen(c.id);
  fuzz_rand_fixed(1, 9);
  fuzz_check(conn_encode(&c, kr, &y) == 0, "an accepted connection encodes");
  fuzz_check(conn_decode(y.data, y.len, c.id, idn, kr, &d) == 0, "and decodes");
  fuzz_rand_fixed(1, 9);
  fuzz_check(conn_encode(&d, kr, &z) == 0 && same_bytes(&y, &z),
             "an accepted connection round-trips through the store codec");
  fuzz_rand_fixed(0, 0);
  conn_free(&d);
  conn_free(&c);
  buf_free(&r);
  buf_free(&y);
  buf_free(&z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1 || (data[0] != 'p' && data[0] != 'c' && data[0] != 'i'))
    return -1;
  input_has_canary = fuzz_contains(data, size, "canary-secret", 13);
  json_t *body = NULL;
  if (json_parse((const char *)data + 1, size - 1, &body) != 0 || !json_is_object(body)) {
    json_decref(body);
    return 0;
  }
  if (data[0] == 'p')
    fuzz_provider(body);
  else
    fuzz_conn(body, data[0] == 'c' ? "c1" : NULL);
  json_decref(body);
  buf_t log = BUF_INIT;
  fuzz_log_take(&log);
  buf_free(&log);
  return 0;
}
