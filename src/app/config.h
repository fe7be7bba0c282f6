/*
 * config.h - grantd's option table: defaults <- GRANTD_* environment <- flags.
 *
 * Every option is one row of a table (config.c) with its flag, environment
 * name, type, bounds, default and help text, so `grantd serve --help` and the
 * validation come from the same place. Invalid values produce one readable
 * line and exit status 2 in main.c.
 */
#ifndef GRANTD_APP_CONFIG_H
#define GRANTD_APP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  char *listen;      /* HOST:PORT */
  char *listen_host; /* parsed from listen */
  int listen_port;
  char *data_dir;
  char *port_file;
  char *ca_file;        /* extra trust anchors */
  char *system_ca_file; /* the system bundle */
  char *catalog_dir;    /* more provider templates, read at start-up */
  char *log_level;
  int64_t map_size;          /* bytes */
  int64_t events_keep;       /* outbox retention: count */
  int64_t events_keep_hours; /* and age */
  char *api_key;             /* secret: never logged */
  char *api_key_file;
  char *api_keys_file; /* NAME SCOPE SHA256-HEX lines (api/api_keys.h) */
  char *master_key;    /* secret: never logged; 64 hex chars or base64 of 32 bytes */
  char *master_key_file;
  char *master_keys;      /* secret: ID:KEY,... keyring (seal_keyring_parse) */
  char *master_keys_file; /* the keyring, one ID:KEY per line */
  int64_t reseal_per_s;
  int64_t reap_after_s; /* 0 = the reaper is off */
  bool reap_revoke;
  bool reap_dry_run;
  int64_t reap_interval_ms;
  char *public_url;          /* base of /oauth/callback */
  bool public_url_defaulted; /* derived from --listen: main.c fills in the bound port */
  int64_t max_body;
  int64_t max_header;
  int64_t max_buffered;
  int64_t max_connections;
  int64_t idle_timeout_ms;
  int64_t header_timeout_ms;
  int64_t shutdown_timeout_ms;
  bool allow_insecure_http;
  char *allow_endpoint_cidr;             /* CIDR,... the SSRF guard lets through */
  bool allow_private_endpoints;          /* the SSRF guard lets everything through */
  struct addr_policy_s *endpoint_policy; /* built from the two above */
  int64_t state_ttl_s;
  int64_t refresh_max_inflight;
  int64_t refresh_max_inflight_per_host;
  int64_t refresh_ramp_per_s;
  int64_t refresh_batch_per_tick;
  int64_t request_timeout_ms;
  int64_t webhook_max_endpoints;
  int64_t webhook_max_inflight;
  int64_t webhook_timeout_ms;
  int64_t webhook_retry_total_s;
  int64_t webhook_retry_base_ms;
  int64_t webhook_secret_overlap_s;
  int64_t events_keep_undelivered;
  int64_t callback_max_query;
} config_t;

/* Fills cfg with defaults, then the environment, then argv[first..argc).
 * Returns 0; -1 with a one-line message in err (size errlen) on bad input;
 * 1 when --help was given (the caller prints config_usage and exits 0). */
int config_load(config_t *cfg, int argc, char **argv, int first, char *err, size_t errlen);

/* For a command line that mixes these options with its own: how many
 * following arguments the option in arg ("--flag" or "--flag=value") takes,
 * 0 or 1; -1 when it is not an option of the table. */
int config_option_arity(const char *arg);

/* Prints every option with its flag, environment name and default. */
void config_usage(FILE *out);

/* Frees every string (secrets wiped). */
void config_free(config_t *cfg);

#endif
