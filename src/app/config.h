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
  char *listen;            /* HOST:PORT */
  char *listen_host;       /* parsed from listen */
  int listen_port;
  char *data_dir;
  char *port_file;
  char *ca_file;           /* extra trust anchors */
  char *system_ca_file;    /* the system bundle */
  char *log_level;
  int64_t map_size;        /* bytes */
  char *api_key;           /* secret: never logged */
  char *api_key_file;
  char *master_key;        /* secret: never logged; 64 hex chars or base64 of 32 bytes */
  char *master_key_file;
  char *public_url;        /* base of /oauth/callback */
  bool public_url_defaulted; /* derived from --listen: main.c fills in the bound port */
  int64_t max_body;
  int64_t max_header;
  int64_t max_connections;
  int64_t idle_timeout_ms;
  int64_t header_timeout_ms;
  int64_t shutdown_timeout_ms;
  bool allow_insecure_http;
  int64_t state_ttl_s;
  int64_t refresh_max_inflight;
  int64_t refresh_max_inflight_per_host;
  int64_t refresh_ramp_per_s;
  int64_t refresh_batch_per_tick;
  int64_t request_timeout_ms;
  int64_t callback_max_query;
} config_t;

/* Fills cfg with defaults, then the environment, then argv[first..argc).
 * Returns 0; -1 with a one-line message in err (size errlen) on bad input;
 * 1 when --help was given (the caller prints config_usage and exits 0). */
int config_load(config_t *cfg, int argc, char **argv, int first,
                char *err, size_t errlen);

/* Prints every option with its flag, environment name and default. */
void config_usage(FILE *out);

/* Frees every string (secrets wiped). */
void config_free(config_t *cfg);

#endif
