/*
 * config.c - the option table and its loader; see config.h.
 *
 * One row per option (Redis config.c's static_configs[] is the model): the
 * flag, the GRANTD_* variable, the type and bounds, the default, the help.
 * Loading is three passes over the same table: defaults, environment, flags,
 * so a flag always wins over the environment and the environment over the
 * default. `*_FILE` variables for the two keys are read by main.c.
 */
#include "app/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "net/addr_policy.h"

typedef enum { OPT_STR, OPT_INT, OPT_SIZE, OPT_BOOL, OPT_SECRET } opt_type_t;

typedef struct {
  const char *flag;
  const char *env;
  opt_type_t type;
  size_t offset;
  const char *def;
  int64_t min, max;
  const char *help;
} opt_t;

#define O(field) offsetof(config_t, field)
#define BIG INT64_MAX

// clang-format off
static const opt_t opts[] = {
  {"--listen", "GRANTD_LISTEN", OPT_STR, O(listen), "127.0.0.1:8484", 0, 0,
   "address to serve the API on, HOST:PORT (port 0 = ephemeral)"},
  {"--data", "GRANTD_DATA", OPT_STR, O(data_dir), "./grantd-data", 0, 0,
   "data directory (created 0700)"},
  {"--port-file", "GRANTD_PORT_FILE", OPT_STR, O(port_file), NULL, 0, 0,
   "write the bound port to this file once listening"},
  {"--ca-file", "GRANTD_CA_FILE", OPT_STR, O(ca_file), NULL, 0, 0,
   "extra PEM trust anchors for provider TLS, added to the system bundle"},
  {"--catalog-dir", "GRANTD_CATALOG_DIR", OPT_STR, O(catalog_dir), NULL, 0, 0,
   "more provider templates (NAME.json), added to and overriding the built-in catalog"},
  {"--system-ca-file", "GRANTD_SYSTEM_CA_FILE", OPT_STR, O(system_ca_file),
   "/etc/ssl/certs/ca-certificates.crt", 0, 0, "system PEM trust bundle"},
  {"--log-level", "GRANTD_LOG_LEVEL", OPT_STR, O(log_level), "info", 0, 0,
   "debug | info | warn | error"},
  {"--map-size", "GRANTD_MAP_SIZE", OPT_SIZE, O(map_size), "4G",
   1 << 20, (int64_t)1 << 40, "maximum store size (LMDB map size; K/M/G suffixes)"},
  {"--events-keep", "GRANTD_EVENTS_KEEP", OPT_INT, O(events_keep), "100000", 1, 100000000,
   "connection events kept in the outbox at most (oldest pruned first)"},
  {"--events-keep-hours", "GRANTD_EVENTS_KEEP_HOURS", OPT_INT, O(events_keep_hours), "168", 1,
   87600, "connection events older than this are pruned (the newest always stays)"},
  {"--api-key", "GRANTD_API_KEY", OPT_SECRET, O(api_key), NULL, 0, 0,
   "API key for /v1 (prefer the environment; generated into the data dir if unset)"},
  {"--api-key-file", "GRANTD_API_KEY_FILE", OPT_STR, O(api_key_file), NULL, 0, 0,
   "read the API key from this file"},
  {"--api-keys-file", "GRANTD_API_KEYS_FILE", OPT_STR, O(api_keys_file), NULL, 0, 0,
   "named, scoped API keys: NAME SCOPE SHA256-HEX per line (admin|tokens|connect); SIGHUP reloads"},
  {"--master-key", "GRANTD_MASTER_KEY", OPT_SECRET, O(master_key), NULL, 0, 0,
   "sealing key, 64 hex digits or base64 of 32 bytes (generated if unset)"},
  {"--master-key-file", "GRANTD_MASTER_KEY_FILE", OPT_STR, O(master_key_file), NULL, 0, 0,
   "read the master key from this file"},
  {"--master-keys", "GRANTD_MASTER_KEYS", OPT_SECRET, O(master_keys), NULL, 0, 0,
   "keyring ID:KEY,...: the first seals, all unseal (prefer the environment or the file)"},
  {"--master-keys-file", "GRANTD_MASTER_KEYS_FILE", OPT_STR, O(master_keys_file), NULL, 0, 0,
   "read the keyring from this file, one ID:KEY per line; SIGHUP reloads it"},
  {"--reseal-rate", "GRANTD_RESEAL_PER_S", OPT_INT, O(reseal_per_s), "2000", 1, 1000000,
   "records per second the re-seal job moves to the current master key at most"},
  {"--reap-after", "GRANTD_REAP_AFTER_S", OPT_INT, O(reap_after_s), "0", 0, 315360000,
   "delete connections in needs_reauth, error or pending unchanged for this many seconds (0 = off)"},
  {"--reap-revoke", "GRANTD_REAP_REVOKE", OPT_BOOL, O(reap_revoke), "false", 0, 0,
   "the reaper asks the provider to revoke the tokens first (RFC 7009)"},
  {"--reap-dry-run", "GRANTD_REAP_DRY_RUN", OPT_BOOL, O(reap_dry_run), "false", 0, 0,
   "the reaper only logs what it would delete (reap_candidate)"},
  {"--reap-interval", "GRANTD_REAP_INTERVAL_MS", OPT_INT, O(reap_interval_ms), "60000", 10, 86400000,
   "ms between reaper steps (each looks at 256 connections)"},
  {"--public-url", "GRANTD_PUBLIC_URL", OPT_STR, O(public_url), NULL, 0, 0,
   "public base URL of grantd for the OAuth callback (default http://LISTEN)"},
  {"--max-body", "GRANTD_MAX_BODY", OPT_SIZE, O(max_body), "64K", 1024, 64 << 20,
   "largest request body accepted (413 above)"},
  {"--max-buffered", "GRANTD_MAX_BUFFERED", OPT_SIZE, O(max_buffered), "256M", 64 << 10,
   (int64_t)1 << 40, "request body bytes held at once over all connections (503 above)"},
  {"--max-header", "GRANTD_MAX_HEADER", OPT_SIZE, O(max_header), "16K", 1024, 1 << 20,
   "largest request head accepted (431 above)"},
  {"--max-connections", "GRANTD_MAX_CONNECTIONS", OPT_INT, O(max_connections), "4096", 1, 1000000,
   "open client connections accepted (503 above)"},
  {"--idle-timeout", "GRANTD_IDLE_TIMEOUT_MS", OPT_INT, O(idle_timeout_ms), "60000", 100, 86400000,
   "close idle keep-alive client connections after this many ms"},
  {"--header-timeout", "GRANTD_HEADER_TIMEOUT_MS", OPT_INT, O(header_timeout_ms), "10000", 100, 3600000,
   "answer 408 when a request is not read within this many ms"},
  {"--shutdown-timeout", "GRANTD_SHUTDOWN_TIMEOUT_MS", OPT_INT, O(shutdown_timeout_ms), "10000", 0, 3600000,
   "how long SIGTERM waits for in-flight requests"},
  {"--allow-insecure-http", "GRANTD_ALLOW_INSECURE_HTTP", OPT_BOOL, O(allow_insecure_http), "false", 0, 0,
   "allow plain http:// provider endpoints (local testing only)"},
  {"--allow-endpoint-cidr", "GRANTD_ALLOW_ENDPOINT_CIDR", OPT_STR, O(allow_endpoint_cidr), NULL, 0, 0,
   "CIDR,... of non-public provider addresses grantd may connect to (e.g. an in-cluster IdP)"},
  {"--allow-private-endpoints", "GRANTD_ALLOW_PRIVATE_ENDPOINTS", OPT_BOOL, O(allow_private_endpoints), "false", 0, 0,
   "connect to loopback, private and link-local provider addresses too (tests, local development)"},
  {"--webhook-max-endpoints", "GRANTD_WEBHOOK_MAX_ENDPOINTS", OPT_INT, O(webhook_max_endpoints), "16", 1, 10000,
   "webhook endpoints at most (PUT /v1/webhooks answers 409 too_many_webhooks above)"},
  {"--webhook-max-inflight", "GRANTD_WEBHOOK_MAX_INFLIGHT", OPT_INT, O(webhook_max_inflight), "32", 1, 10000,
   "webhook requests in flight at once per endpoint"},
  {"--webhook-timeout", "GRANTD_WEBHOOK_TIMEOUT_MS", OPT_INT, O(webhook_timeout_ms), "10000", 100, 600000,
   "ms a webhook receiver has to answer before the attempt counts as failed"},
  {"--webhook-retry-total-s", "GRANTD_WEBHOOK_RETRY_TOTAL_S", OPT_INT, O(webhook_retry_total_s), "259200", 1, 31536000,
   "seconds an event is retried (from its first attempt) before it fails for the endpoint"},
  {"--webhook-retry-base-ms", "GRANTD_WEBHOOK_RETRY_BASE_MS", OPT_INT, O(webhook_retry_base_ms), "5000", 10, 3600000,
   "first retry delay; doubles per failed attempt (jittered) up to 6 hours"},
  {"--webhook-secret-overlap-s", "GRANTD_WEBHOOK_SECRET_OVERLAP_S", OPT_INT, O(webhook_secret_overlap_s), "86400", 1, 31536000,
   "seconds a replaced webhook secret keeps signing beside the new one"},
  {"--events-keep-undelivered", "GRANTD_EVENTS_KEEP_UNDELIVERED", OPT_INT, O(events_keep_undelivered), "0", 0, 1000000000,
   "events held at most while a webhook endpoint has not finished them (0 = 4 x --events-keep)"},
  {"--state-ttl", "GRANTD_STATE_TTL_S", OPT_INT, O(state_ttl_s), "600", 10, 86400,
   "seconds an authorization state stays valid"},
  {"--refresh-max-inflight", "GRANTD_REFRESH_MAX_INFLIGHT", OPT_INT, O(refresh_max_inflight), "1024", 1, 100000,
   "token requests in flight at once, all hosts"},
  {"--refresh-max-per-host", "GRANTD_REFRESH_MAX_PER_HOST", OPT_INT, O(refresh_max_inflight_per_host), "256", 1, 100000,
   "token requests in flight at once to one token host"},
  {"--refresh-ramp", "GRANTD_REFRESH_RAMP_PER_S", OPT_INT, O(refresh_ramp_per_s), "5000", 1, 10000000,
   "overdue refreshes started per second after start-up"},
  {"--refresh-batch", "GRANTD_REFRESH_BATCH", OPT_INT, O(refresh_batch_per_tick), "512", 1, 1000000,
   "refreshes started per timer tick at most"},
  {"--request-timeout", "GRANTD_REQUEST_TIMEOUT_MS", OPT_INT, O(request_timeout_ms), "30000", 100, 600000,
   "default timeout of a token request to a provider"},
  {"--callback-max-query", "GRANTD_CALLBACK_MAX_QUERY", OPT_SIZE, O(callback_max_query), "4K", 256, 65536,
   "largest query string accepted on /oauth/callback"},
};
// clang-format on

static void errf(char *err, size_t len, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}

static int parse_size(const char *s, int64_t *out)
{
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || end == s || v < 0)
    return -1;
  int64_t mul = 1;
  if (*end != '\0') {
    switch (*end) {
    case 'k':
    case 'K': mul = 1024; break;
    case 'm':
    case 'M': mul = 1024 * 1024; break;
    case 'g':
    case 'G': mul = 1024 * 1024 * 1024; break;
    case 't':
    case 'T': mul = (int64_t)1024 * 1024 * 1024 * 1024; break;
    default: return -1;
    }
    end++;
    if (*end == 'i' || *end == 'I')
      end++;
    if (*end == 'b' || *end == 'B')
      end++;
    if (*end != '\0')
      return -1;
  }
  if (v > INT64_MAX / mul)
    return -1;
  *out = v * mul;
  return 0;
}

static int parse_bool(const char *s, bool *out)
{
  if (!strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") ||
      !strcasecmp(s, "on"))
    *out = true;
  else if (!strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") ||
           !strcasecmp(s, "off"))
    *out = false;
  else
    return -1;
  return 0;
}

static int set_opt(config_t *cfg, const opt_t *o, const char *val, const char *src, char *err,
                   size_t errlen)
{
  char *field = (char *)cfg + o->offset;
  int64_t n;
  switch (o->type) {
  case OPT_STR:
  case OPT_SECRET: {
    char **p = (char **)field;
    if (o->type == OPT_SECRET)
      free_secret(*p);
    else
      free(*p);
    *p = xstrdup(val);
    return 0;
  }
  case OPT_BOOL:
    if (parse_bool(val, (bool *)field) != 0) {
      errf(err, errlen, "invalid %s '%s': expected true or false", src, val);
      return -1;
    }
    return 0;
  case OPT_INT:
  case OPT_SIZE:
    if (parse_size(val, &n) != 0 ||
        (o->type == OPT_INT && strspn(val, "0123456789") != strlen(val))) {
      errf(err, errlen, "invalid %s '%s': expected a %s", src, val,
           o->type == OPT_SIZE ? "size such as 64K or 1G" : "whole number");
      return -1;
    }
    if (n < o->min || n > o->max) {
      errf(err, errlen, "invalid %s '%s': must be between %lld and %lld", src, val,
           (long long)o->min, (long long)o->max);
      return -1;
    }
    *(int64_t *)field = n;
    return 0;
  }
  return -1;
}

static int parse_listen(config_t *cfg, char *err, size_t errlen)
{
  const char *s = cfg->listen;
  const char *colon = strrchr(s, ':');
  const char *host = s;
  size_t hostlen;
  if (colon == NULL)
    goto bad;
  hostlen = (size_t)(colon - s);
  if (hostlen >= 2 && s[0] == '[' && s[hostlen - 1] == ']') {
    host = s + 1;
    hostlen -= 2;
  }
  if (hostlen == 0 || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1))
    goto bad;
  long port = strtol(colon + 1, NULL, 10);
  if (port < 0 || port > 65535)
    goto bad;
  free(cfg->listen_host);
  cfg->listen_host = xstrndup(host, hostlen);
  cfg->listen_port = (int)port;
  return 0;
bad:
  errf(err, errlen, "invalid --listen '%s': expected HOST:PORT, port 0-65535", s);
  return -1;
}

int config_load(config_t *cfg, int argc, char **argv, int first, char *err, size_t errlen)
{
  memset(cfg, 0, sizeof *cfg);
  for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
    if (opts[i].def != NULL && set_opt(cfg, &opts[i], opts[i].def, opts[i].flag, err, errlen) != 0)
      return -1;
  for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
    const char *v = getenv(opts[i].env);
    if (v != NULL && *v != '\0' && set_opt(cfg, &opts[i], v, opts[i].env, err, errlen) != 0)
      return -1;
  }
  for (int a = first; a < argc; a++) {
    const char *arg = argv[a];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
      return 1;
    const char *eq = strchr(arg, '=');
    size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
    const opt_t *o = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
      if (strlen(opts[i].flag) == flen && !strncmp(opts[i].flag, arg, flen))
        o = &opts[i];
    if (o == NULL) {
      errf(err, errlen, "unknown option '%.*s' (see grantd serve --help)", (int)flen, arg);
      return -1;
    }
    const char *val;
    if (eq != NULL) {
      val = eq + 1;
    } else if (o->type == OPT_BOOL) {
      val = "true";
    } else if (a + 1 < argc) {
      val = argv[++a];
    } else {
      errf(err, errlen, "option %s needs a value", o->flag);
      return -1;
    }
    if (set_opt(cfg, o, val, o->flag, err, errlen) != 0)
      return -1;
  }
  if (parse_listen(cfg, err, errlen) != 0)
    return -1;
  int lvl_ok = !strcmp(cfg->log_level, "debug") || !strcmp(cfg->log_level, "info") ||
               !strcmp(cfg->log_level, "warn") || !strcmp(cfg->log_level, "error");
  if (!lvl_ok) {
    errf(err, errlen, "invalid --log-level '%s': expected debug, info, warn or error",
         cfg->log_level);
    return -1;
  }
  if (cfg->data_dir[0] == '\0') {
    errf(err, errlen, "invalid --data '': expected a directory path");
    return -1;
  }
  if (cfg->public_url == NULL) {
    size_t n = strlen(cfg->listen) + 16;
    cfg->public_url = xmalloc(n);
    snprintf(cfg->public_url, n, "http://%s", cfg->listen);
    cfg->public_url_defaulted = true;
  } else if (strncmp(cfg->public_url, "http://", 7) && strncmp(cfg->public_url, "https://", 8)) {
    errf(err, errlen, "invalid --public-url '%s': expected an http:// or https:// URL",
         cfg->public_url);
    return -1;
  }
  if (cfg->master_keys != NULL && cfg->master_keys_file != NULL) {
    errf(err, errlen,
         "give the keyring once: GRANTD_MASTER_KEYS (--master-keys) or "
         "GRANTD_MASTER_KEYS_FILE (--master-keys-file), not both");
    return -1;
  }
  if ((cfg->master_keys != NULL || cfg->master_keys_file != NULL) &&
      (cfg->master_key != NULL || cfg->master_key_file != NULL)) {
    errf(err, errlen,
         "give the master key either as a keyring (GRANTD_MASTER_KEYS / "
         "--master-keys-file) or as the single key (GRANTD_MASTER_KEY / "
         "GRANTD_MASTER_KEY_FILE), not both: the single key is key id 1 of a keyring");
    return -1;
  }
  size_t pl = strlen(cfg->public_url);
  while (pl > 0 && cfg->public_url[pl - 1] == '/')
    cfg->public_url[--pl] = '\0';
  cfg->endpoint_policy = addr_policy_new();
  addr_policy_allow_private(cfg->endpoint_policy, cfg->allow_private_endpoints);
  if (cfg->allow_endpoint_cidr != NULL) {
    char why[400];
    if (addr_policy_add_cidrs(cfg->endpoint_policy, cfg->allow_endpoint_cidr, why, sizeof why) !=
        0) {
      errf(err, errlen, "--allow-endpoint-cidr: %s", why);
      return -1;
    }
  }
  return 0;
}

int config_option_arity(const char *arg)
{
  const char *eq = strchr(arg, '=');
  size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
  for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
    if (strlen(opts[i].flag) == flen && !strncmp(opts[i].flag, arg, flen))
      return eq != NULL || opts[i].type == OPT_BOOL ? 0 : 1;
  return -1;
}

void config_usage(FILE *out)
{
  fprintf(out, "usage: grantd serve [options]\n\n"
               "Options (flag, environment variable, default):\n");
  for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
    const opt_t *o = &opts[i];
    fprintf(out, "  %-24s %-30s %s\n      %s\n", o->flag, o->env, o->def ? o->def : "(unset)",
            o->help);
  }
  fprintf(out, "\nPrecedence: defaults < environment < flags. Secrets are best passed\n"
               "through GRANTD_API_KEY / GRANTD_MASTER_KEY or their *_FILE variants.\n");
}

void config_free(config_t *cfg)
{
  for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
    if (opts[i].type == OPT_STR || opts[i].type == OPT_SECRET) {
      char **p = (char **)((char *)cfg + opts[i].offset);
      if (opts[i].type == OPT_SECRET)
        free_secret(*p);
      else
        free(*p);
      *p = NULL;
    }
  }
  free(cfg->listen_host);
  cfg->listen_host = NULL;
  addr_policy_free(cfg->endpoint_policy);
  cfg->endpoint_policy = NULL;
}
