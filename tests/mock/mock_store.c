/*
 * mock_store.c - the mock provider's codes and tokens (see mock.h).
 *
 * Sized for the refresh benchmark (millions of tokens): tokens live in one
 * growable array of 56-byte slots with a free list, indexed by a chained
 * hash table of uint32 slot numbers (a token's first 8 random bytes are its
 * hash), so issue, lookup and free are O(1) and allocation-free once the
 * arrays have grown. Grants ("families") live in a second array; a token
 * knows its family and a family lists its tokens, which makes revoking a
 * whole grant on replay cheap. Memory per grant is bounded: at most
 * MOCK_ACCESS_PER_FAMILY access tokens, one current refresh token and
 * keep_rotated rotated ones; expired access tokens and codes are swept
 * incrementally. Scopes are interned (few distinct values, many grants).
 * Random bytes come from a CSPRNG pool refilled 4 KiB at a time, so issuing
 * a token costs no system call.
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/rand.h"
#include "mock.h"

struct mock_store_s {
  mock_tok_t *toks;
  uint32_t ntoks, cap_toks; /* slots ever used / allocated */
  uint32_t tok_free;        /* free slot list */
  size_t live_toks;
  uint32_t *buckets; /* chain heads; MOCK_NONE = empty */
  uint32_t mask;     /* nbuckets - 1 */
  mock_fam_t *fams;
  uint32_t nfams, cap_fams;
  uint32_t fam_free;
  size_t live_fams;
  char **scopes; /* interned scope strings (open addressing) */
  size_t nscopes, cap_scopes;
  uint32_t sweep_cursor;
  size_t pool_pos;
  uint8_t pool[4096];
};

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void encode(const uint8_t raw[MOCK_TOKEN_RAW], char out[MOCK_TOKEN_LEN + 1])
{
  char *w = out;
  for (size_t i = 0; i < MOCK_TOKEN_RAW; i += 3) {
    uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
    *w++ = b64u[v >> 18];
    *w++ = b64u[(v >> 12) & 63];
    *w++ = b64u[(v >> 6) & 63];
    *w++ = b64u[v & 63];
  }
  *w = '\0';
}

static int dec1(unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

/* 40 characters -> 30 bytes; 0 on success, -1 for anything else. */
static int decode(const char *s, size_t n, uint8_t raw[MOCK_TOKEN_RAW])
{
  if (n != MOCK_TOKEN_LEN)
    return -1;
  for (size_t i = 0, o = 0; i < n; i += 4, o += 3) {
    int a = dec1((unsigned char)s[i]), b = dec1((unsigned char)s[i + 1]);
    int c = dec1((unsigned char)s[i + 2]), d = dec1((unsigned char)s[i + 3]);
    if ((a | b | c | d) < 0)
      return -1;
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
    raw[o] = (uint8_t)(v >> 16);
    raw[o + 1] = (uint8_t)(v >> 8);
    raw[o + 2] = (uint8_t)v;
  }
  return 0;
}

static uint32_t bucket_of(const mock_store_t *st, const uint8_t *raw)
{
  uint64_t h;
  memcpy(&h, raw, sizeof h);
  h ^= h >> 29; /* client-supplied lookups need not be random */
  h *= 0x9E3779B97F4A7C15ull;
  return (uint32_t)(h >> 32) & st->mask;
}

static void init(mock_store_t *st)
{
  memset(st, 0, offsetof(mock_store_t, pool));
  st->tok_free = MOCK_NONE;
  st->fam_free = MOCK_NONE;
  st->mask = 1023;
  st->buckets = xmalloc((st->mask + 1) * sizeof *st->buckets);
  memset(st->buckets, 0xff, (st->mask + 1) * sizeof *st->buckets);
  st->pool_pos = sizeof st->pool;
}

static void release(mock_store_t *st)
{
  if (st->toks != NULL)
    mem_wipe(st->toks, (size_t)st->cap_toks * sizeof *st->toks);
  free(st->toks);
  free(st->buckets);
  for (uint32_t i = 0; i < st->nfams; i++) {
    mock_code_t *c = st->fams[i].code;
    if (c != NULL) {
      free(c->redirect_uri);
      free_secret(c->challenge);
      free(c);
    }
  }
  free(st->fams);
  for (size_t i = 0; i < st->cap_scopes; i++)
    free(st->scopes[i]);
  free(st->scopes);
}

mock_store_t *mock_store_new(void)
{
  mock_store_t *st = xmalloc(sizeof *st);
  init(st);
  return st;
}

void mock_store_free(mock_store_t *st)
{
  if (st == NULL)
    return;
  release(st);
  mem_wipe(st->pool, sizeof st->pool);
  free(st);
}

void mock_store_clear(mock_store_t *st)
{
  release(st);
  init(st);
}

/* ---- scopes -------------------------------------------------------------- */

static uint64_t str_hash(const char *s)
{
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static const char *intern(mock_store_t *st, const char *s)
{
  if (s == NULL)
    return NULL;
  if (2 * (st->nscopes + 1) > st->cap_scopes) {
    size_t ncap = st->cap_scopes ? 2 * st->cap_scopes : 64;
    char **ns = xcalloc(ncap, sizeof *ns);
    for (size_t i = 0; i < st->cap_scopes; i++) {
      if (st->scopes[i] == NULL)
        continue;
      size_t j = str_hash(st->scopes[i]) & (ncap - 1);
      while (ns[j] != NULL)
        j = (j + 1) & (ncap - 1);
      ns[j] = st->scopes[i];
    }
    free(st->scopes);
    st->scopes = ns;
    st->cap_scopes = ncap;
  }
  size_t j = str_hash(s) & (st->cap_scopes - 1);
  while (st->scopes[j] != NULL) {
    if (strcmp(st->scopes[j], s) == 0)
      return st->scopes[j];
    j = (j + 1) & (st->cap_scopes - 1);
  }
  st->scopes[j] = xstrdup(s);
  st->nscopes++;
  return st->scopes[j];
}

/* ---- families ------------------------------------------------------------ */

uint32_t mock_store_family_new(mock_store_t *st, uint32_t client, uint32_t user, const char *scope)
{
  uint32_t f;
  if (st->fam_free != MOCK_NONE) {
    f = st->fam_free;
    st->fam_free = st->fams[f].next_free;
  } else {
    if (st->nfams == st->cap_fams) {
      st->cap_fams = st->cap_fams ? 2 * st->cap_fams : 1024;
      st->fams = xrealloc(st->fams, (size_t)st->cap_fams * sizeof *st->fams);
    }
    f = st->nfams++;
  }
  mock_fam_t *fam = &st->fams[f];
  memset(fam, 0, sizeof *fam);
  fam->client = client;
  fam->user = user;
  fam->scope = intern(st, scope);
  fam->toks = MOCK_NONE;
  fam->refresh = MOCK_NONE;
  fam->next_free = MOCK_NONE;
  fam->live = 1;
  st->live_fams++;
  return f;
}

mock_fam_t *mock_store_fam(mock_store_t *st, uint32_t f)
{
  return &st->fams[f];
}

/* ---- tokens -------------------------------------------------------------- */

static void hash_insert(mock_store_t *st, uint32_t idx)
{
  uint32_t b = bucket_of(st, st->toks[idx].raw);
  st->toks[idx].next = st->buckets[b];
  st->buckets[b] = idx;
}

static void hash_grow(mock_store_t *st)
{
  uint32_t n = (st->mask + 1) * 2;
  free(st->buckets);
  st->buckets = xmalloc((size_t)n * sizeof *st->buckets);
  memset(st->buckets, 0xff, (size_t)n * sizeof *st->buckets);
  st->mask = n - 1;
  for (uint32_t i = 0; i < st->ntoks; i++)
    if (st->toks[i].kind != MOCK_TOK_FREE)
      hash_insert(st, i);
}

static uint32_t lookup_raw(mock_store_t *st, const uint8_t *raw)
{
  for (uint32_t i = st->buckets[bucket_of(st, raw)]; i != MOCK_NONE; i = st->toks[i].next)
    if (memcmp(st->toks[i].raw, raw, MOCK_TOKEN_RAW) == 0)
      return i;
  return MOCK_NONE;
}

uint32_t mock_store_lookup(mock_store_t *st, const char *s, size_t n)
{
  uint8_t raw[MOCK_TOKEN_RAW];
  if (decode(s, n, raw) != 0)
    return MOCK_NONE;
  return lookup_raw(st, raw);
}

mock_tok_t *mock_store_tok(mock_store_t *st, uint32_t idx)
{
  return &st->toks[idx];
}

void mock_store_token_text(const mock_store_t *st, uint32_t idx, char out[MOCK_TOKEN_LEN + 1])
{
  encode(st->toks[idx].raw, out);
}

/* Unlinks and frees a slot without looking at its family's emptiness. */
static void tok_release(mock_store_t *st, uint32_t idx)
{
  mock_tok_t *t = &st->toks[idx];
  uint32_t *pp = &st->buckets[bucket_of(st, t->raw)];
  while (*pp != idx)
    pp = &st->toks[*pp].next;
  *pp = t->next;
  mock_fam_t *fam = &st->fams[t->fam];
  pp = &fam->toks;
  while (*pp != idx)
    pp = &st->toks[*pp].fam_next;
  *pp = t->fam_next;
  if (fam->refresh == idx)
    fam->refresh = MOCK_NONE;
  mem_wipe(t->raw, sizeof t->raw);
  t->kind = MOCK_TOK_FREE;
  t->next = st->tok_free;
  st->tok_free = idx;
  st->live_toks--;
}

static void fam_release(mock_store_t *st, uint32_t f)
{
  mock_fam_t *fam = &st->fams[f];
  while (fam->toks != MOCK_NONE)
    tok_release(st, fam->toks);
  if (fam->code != NULL) {
    free(fam->code->redirect_uri);
    free_secret(fam->code->challenge);
    free(fam->code);
    fam->code = NULL;
  }
  fam->live = 0;
  fam->next_free = st->fam_free;
  st->fam_free = f;
  st->live_fams--;
}

void mock_store_family_free(mock_store_t *st, uint32_t f)
{
  if (f < st->nfams && st->fams[f].live)
    fam_release(st, f);
}

void mock_store_token_free(mock_store_t *st, uint32_t idx)
{
  uint32_t f = st->toks[idx].fam;
  tok_release(st, idx);
  if (st->fams[f].toks == MOCK_NONE)
    fam_release(st, f);
}

/* Frees the tokens of family f matching (kind, state) beyond the newest
 * `keep` of them. The list is newest first. */
static void trim(mock_store_t *st, uint32_t f, uint8_t kind, uint8_t state, unsigned keep)
{
  unsigned seen = 0;
  uint32_t i = st->fams[f].toks;
  while (i != MOCK_NONE) {
    uint32_t next = st->toks[i].fam_next;
    if (st->toks[i].kind == kind && st->toks[i].state == state && ++seen > keep)
      tok_release(st, i);
    i = next;
  }
}

uint32_t mock_store_token_new(mock_store_t *st, uint32_t f, mock_tok_kind_t kind, int64_t t,
                              char out[MOCK_TOKEN_LEN + 1])
{
  uint8_t raw[MOCK_TOKEN_RAW];
  do {
    if (st->pool_pos + MOCK_TOKEN_RAW > sizeof st->pool) {
      rand_bytes(st->pool, sizeof st->pool);
      st->pool_pos = 0;
    }
    memcpy(raw, st->pool + st->pool_pos, MOCK_TOKEN_RAW);
    mem_wipe(st->pool + st->pool_pos, MOCK_TOKEN_RAW);
    st->pool_pos += MOCK_TOKEN_RAW;
  } while (lookup_raw(st, raw) != MOCK_NONE); /* 2^-240: uniqueness is checked anyway */

  uint32_t idx;
  if (st->tok_free != MOCK_NONE) {
    idx = st->tok_free;
    st->tok_free = st->toks[idx].next;
  } else {
    if (st->ntoks == st->cap_toks) {
      st->cap_toks = st->cap_toks ? 2 * st->cap_toks : 4096;
      st->toks = xrealloc(st->toks, (size_t)st->cap_toks * sizeof *st->toks);
    }
    idx = st->ntoks++;
  }
  mock_tok_t *tk = &st->toks[idx];
  memcpy(tk->raw, raw, sizeof raw);
  mem_wipe(raw, sizeof raw);
  tk->kind = (uint8_t)kind;
  tk->state = MOCK_TS_ACTIVE;
  tk->fam = f;
  tk->t = t;
  mock_fam_t *fam = &st->fams[f];
  tk->fam_next = fam->toks;
  fam->toks = idx;
  if (kind == MOCK_TOK_REFRESH)
    fam->refresh = idx;
  st->live_toks++;
  if (st->live_toks > (size_t)st->mask + 1)
    hash_grow(st);
  else
    hash_insert(st, idx);
  encode(tk->raw, out);
  if (kind == MOCK_TOK_ACCESS)
    trim(st, f, MOCK_TOK_ACCESS, MOCK_TS_ACTIVE, MOCK_ACCESS_PER_FAMILY);
  return idx;
}

void mock_store_rotate(mock_store_t *st, uint32_t idx, int64_t now, unsigned keep)
{
  mock_tok_t *t = &st->toks[idx];
  t->state = MOCK_TS_ROTATED;
  t->t = now;
  uint32_t f = t->fam;
  if (st->fams[f].refresh == idx)
    st->fams[f].refresh = MOCK_NONE;
  trim(st, f, MOCK_TOK_REFRESH, MOCK_TS_ROTATED, keep);
}

size_t mock_store_sweep(mock_store_t *st, int64_t now, size_t budget)
{
  size_t freed = 0;
  if (st->ntoks == 0)
    return 0;
  for (size_t n = 0; n < budget && n < st->ntoks; n++) {
    if (st->sweep_cursor >= st->ntoks)
      st->sweep_cursor = 0;
    uint32_t i = st->sweep_cursor++;
    mock_tok_t *t = &st->toks[i];
    if ((t->kind == MOCK_TOK_ACCESS || t->kind == MOCK_TOK_CODE) && t->t <= now) {
      mock_store_token_free(st, i);
      freed++;
    }
  }
  return freed;
}

size_t mock_store_live_tokens(const mock_store_t *st)
{
  return st->live_toks;
}

size_t mock_store_live_families(const mock_store_t *st)
{
  return st->live_fams;
}

size_t mock_store_bytes(const mock_store_t *st)
{
  return (size_t)st->cap_toks * sizeof(mock_tok_t) + ((size_t)st->mask + 1) * sizeof(uint32_t) +
         (size_t)st->cap_fams * sizeof(mock_fam_t);
}
