/*
 * api_keys.h - the API keys grantd accepts, each with a name and a scope.
 *
 * A keyset holds only SHA-256 hashes of the keys, never a key. It comes
 * from an API keys file (one key per line: `NAME SCOPE SHA256-HEX`, fields
 * separated by spaces or tabs, `#` starts a comment, blank lines ignored),
 * from the single-key settings (one key named "default" with scope admin),
 * or both.
 *
 * Names are 1..64 of [A-Za-z0-9._-] (they are logged: never put a secret
 * there) and unique in a keyset; the hash is 64 hex digits (either case),
 * unique too (one key cannot have two scopes).
 *
 * Scopes:
 *   admin    everything
 *   tokens   read tokens and connection status (what a worker needs)
 *   connect  create connections and authorization URLs
 * Which routes a scope reaches is the route table's business
 * (api_route_t.scopes in api_int.h; docs/openapi.yaml x-scopes).
 *
 * Matching hashes the presented key once, then compares that hash with
 * every entry's without stopping at a match and without a data-dependent
 * branch per byte, so the time taken says nothing about which bytes of
 * which key were right, nor (the key being hashed first) its length.
 *
 * A keyset is immutable once built; api_set_keys() (api.h) swaps the one
 * in use on the loop thread. Nothing here blocks or reads files: the
 * caller reads the file (file.h) and hands its text to the parser.
 */
#ifndef GRANTD_API_KEYS_H
#define GRANTD_API_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  API_SCOPE_ADMIN = 0,
  API_SCOPE_TOKENS = 1,
  API_SCOPE_CONNECT = 2,
} api_scope_t;
#define API_SCOPE_COUNT 3
/* A route's set of accepted scopes besides admin (api_route_t.scopes). */
#define API_SCOPE_BIT(s) (1u << (s))

#define API_KEY_NAME_MAX 64
#define API_KEY_HASH_LEN 32
/* Largest API keys file read (start-up and SIGHUP). */
#define API_KEYS_FILE_MAX ((size_t)1 << 20)
/* The name the single-key settings' key gets. */
#define API_KEY_SINGLE_NAME "default"

typedef struct api_keyset api_keyset_t;

/* "admin" / "tokens" / "connect"; "unknown" out of range. */
const char *api_scope_name(api_scope_t s);

/* SHA-256 of key[0..n), what a keys file line holds (as hex). */
void api_key_hash(const char *key, size_t n, uint8_t out[API_KEY_HASH_LEN]);

/* Parses the text of an API keys file (text may be NULL when n is 0: no
 * file) and, when single_hash is not NULL, adds that hash (api_key_hash of
 * the single key) as "default" with scope admin; the name "default" must
 * then not be used in the file. A result without any key is an error.
 * @return 0 with *out set (free with api_keyset_free); -1 with a one-line
 *         message in err naming the line ("line 3: unknown scope 'root'
 *         (admin, tokens or connect)"), never quoting a hash; *out
 *         untouched. */
int api_keyset_parse(const char *text, size_t n, const uint8_t *single_hash, api_keyset_t **out,
                     char *err, size_t errlen);

/* NULL is ignored. */
void api_keyset_free(api_keyset_t *ks);

size_t api_keyset_count(const api_keyset_t *ks);

/* The entry matching the presented key key[0..n): true with *name
 * (borrowed from the keyset: copy it if it must outlive a swap) and
 * *scope set; false when none matches (outputs untouched). */
bool api_keyset_match(const api_keyset_t *ks, const char *key, size_t n, const char **name,
                      api_scope_t *scope);

#endif
