/*
 * base64 and base64url (RFC 4648); see b64.h.
 *
 * One decoder serves both alphabets through a 256-entry reverse table built
 * at compile time per alphabet; -1 marks bytes outside it. Strictness is on
 * purpose: these decoders read credentials (HTTP Basic) and tokens, where a
 * lenient parse could make two different strings mean the same secret.
 */
#include "base/b64.h"

#include <stdint.h>

#include "base/err.h"

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Reverse tables: value + 1, so that 0 (the default) means "invalid". */
#define R(c, v) [(unsigned char)(c)] = (v) + 1
#define COMMON \
  R('A', 0), R('B', 1), R('C', 2), R('D', 3), R('E', 4), R('F', 5), R('G', 6), R('H', 7), \
    R('I', 8), R('J', 9), R('K', 10), R('L', 11), R('M', 12), R('N', 13), R('O', 14), R('P', 15), \
    R('Q', 16), R('R', 17), R('S', 18), R('T', 19), R('U', 20), R('V', 21), R('W', 22), \
    R('X', 23), R('Y', 24), R('Z', 25), R('a', 26), R('b', 27), R('c', 28), R('d', 29), \
    R('e', 30), R('f', 31), R('g', 32), R('h', 33), R('i', 34), R('j', 35), R('k', 36), \
    R('l', 37), R('m', 38), R('n', 39), R('o', 40), R('p', 41), R('q', 42), R('r', 43), \
    R('s', 44), R('t', 45), R('u', 46), R('v', 47), R('w', 48), R('x', 49), R('y', 50), \
    R('z', 51), R('0', 52), R('1', 53), R('2', 54), R('3', 55), R('4', 56), R('5', 57), \
    R('6', 58), R('7', 59), R('8', 60), R('9', 61)
static const uint8_t std_rev[256] = {COMMON, R('+', 62), R('/', 63)};
static const uint8_t url_rev[256] = {COMMON, R('-', 62), R('_', 63)};
#undef COMMON
#undef R

size_t b64_encoded_len(size_t n)
{
  return (n + 2) / 3 * 4;
}

size_t b64url_encoded_len(size_t n)
{
  return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

static void encode(buf_t *out, const unsigned char *p, size_t n, const char *alpha, int pad)
{
  buf_reserve(out, b64_encoded_len(n));
  char *o = out->data + out->len;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *o++ = alpha[v >> 18];
    *o++ = alpha[(v >> 12) & 63];
    *o++ = alpha[(v >> 6) & 63];
    *o++ = alpha[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    *o++ = alpha[v >> 18];
    *o++ = alpha[(v >> 12) & 63];
    if (pad) {
      *o++ = '=';
      *o++ = '=';
    }
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    *o++ = alpha[v >> 18];
    *o++ = alpha[(v >> 12) & 63];
    *o++ = alpha[(v >> 6) & 63];
    if (pad)
      *o++ = '=';
  }
  out->len = (size_t)(o - out->data);
  out->data[out->len] = '\0';
}

void b64_encode(buf_t *out, const void *p, size_t n)
{
  encode(out, p, n, std_alpha, 1);
}

void b64url_encode(buf_t *out, const void *p, size_t n)
{
  encode(out, p, n, url_alpha, 0);
}

/* Decodes n symbols (no padding) of s; a 1-symbol tail is impossible and
 * the unused low bits of a 2- or 3-symbol tail must be zero. */
static int decode(buf_t *out, const char *s, size_t n, const uint8_t *rev)
{
  size_t start = out->len;
  if (n % 4 == 1)
    return GRANTD_EINVALID;
  buf_reserve(out, n / 4 * 3 + 2);
  unsigned char *o = (unsigned char *)out->data + out->len;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t v = rev[(unsigned char)s[i]];
    if (v == 0)
      goto fail;
    acc = acc << 6 | (uint32_t)(v - 1);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *o++ = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0)
    goto fail;
  out->len = (size_t)((char *)o - out->data);
  out->data[out->len] = '\0';
  return 0;
fail:
  out->len = start;
  out->data[start] = '\0';
  return GRANTD_EINVALID;
}

int b64_decode(buf_t *out, const char *s, size_t n)
{
  if (n % 4 != 0)
    return GRANTD_EINVALID;
  size_t pad = 0;
  if (n > 0 && s[n - 1] == '=')
    pad++;
  if (n > 1 && s[n - 2] == '=')
    pad++;
  return decode(out, s, n - pad, std_rev);
}

int b64url_decode(buf_t *out, const char *s, size_t n)
{
  return decode(out, s, n, url_rev);
}
