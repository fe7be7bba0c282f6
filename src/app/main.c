/*
 * main.c - the grantd command line: `grantd serve`, `grantd version`.
 *
 * serve wires the layers together on one libuv loop (store -> TLS client
 * context -> HTTP client -> connection service -> API -> HTTP server),
 * writes the port file once listening, and shuts down in order on SIGTERM or
 * SIGINT: stop accepting, let in-flight requests finish (bounded by
 * --shutdown-timeout), stop the service, flush the store's last commit,
 * close the environment, exit 0. A second signal exits at once. SIGHUP
 * reloads the API keys file and the master keys file (app/apikeys.h,
 * app/masterkeys.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "app/admin.h"
#include "app/apikeys.h"
#include "app/catalog_dir.h"
#include "app/config.h"
#include "app/keys.h"
#include "app/lock.h"
#include "app/masterkeys.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/tls.h"
#include "service/reaper.h"
#include "service/reseal.h"
#include "service/svc.h"
#include "store/store.h"

#ifndef GRANTD_VERSION
#define GRANTD_VERSION "0.0.0"
#endif

typedef struct {
  config_t cfg;
  uv_loop_t *loop;
  seal_keyring_t *keyring;
  store_t *store;
  tls_client_ctx_t *tls;
  http_client_t *http;
  svc_t *svc;
  api_t *api;
  apikeys_t *apikeys;
  reseal_t *reseal;
  masterkeys_t *masterkeys;
  reaper_t *reaper;
  catalog_t *catalog;
  http_server_t *server;
  uv_signal_t sigterm, sigint, sighup;
  int signals;
  int exit_code;
} app_t;

static void usage(FILE *out)
{
  fprintf(out,
          "usage: grantd serve [options]   run the broker (grantd serve --help lists options)\n"
          "       grantd version           print the version\n");
  admin_usage(out);
  fprintf(out, "Every command takes --help.\n");
}

static int write_port_file(const char *path, unsigned port)
{
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (f == NULL)
    return -1;
  fprintf(f, "%u\n", port);
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* ---- orderly shutdown: each step's callback starts the next ---- */

static void on_closed_handle(uv_handle_t *h)
{
  (void)h;
}

static void on_store_closed(void *arg)
{
  app_t *app = arg;
  app->store = NULL;
  if (app->tls != NULL) {
    tls_client_ctx_free(app->tls);
    app->tls = NULL;
  }
  uv_close((uv_handle_t *)&app->sigterm, on_closed_handle);
  uv_close((uv_handle_t *)&app->sigint, on_closed_handle);
  uv_close((uv_handle_t *)&app->sighup, on_closed_handle);
  log_info("stopped");
}

static void on_http_client_closed(void *arg)
{
  app_t *app = arg;
  app->http = NULL;
  /* Commits whatever is still queued, then closes the environment. */
  store_close(app->store, on_store_closed, app);
}

static void on_svc_closed(void *arg)
{
  app_t *app = arg;
  svc_free(app->svc);
  app->svc = NULL;
  http_client_close(app->http, on_http_client_closed, app);
}

static void on_server_closed(void *arg)
{
  app_t *app = arg;
  app->server = NULL;
  svc_close(app->svc, on_svc_closed, app);
}

static void on_signal(uv_signal_t *h, int signum)
{
  app_t *app = h->data;
  if (++app->signals > 1) {
    log_warn("exit_now", "#signal", LOG_I64(signum));
    _exit(1);
  }
  log_info("shutting_down", "#signal", LOG_I64(signum));
  api_set_ready(app->api, 0);
  masterkeys_stop(app->masterkeys);
  reseal_close(app->reseal);
  app->reseal = NULL;
  reaper_close(app->reaper);
  app->reaper = NULL;
  /* Cancel token requests in flight so waiting clients are answered inside
   * the drain window instead of at their provider's timeout. */
  svc_drain(app->svc);
  http_server_close(app->server, (unsigned)app->cfg.shutdown_timeout_ms, on_server_closed, app);
}

/* SIGHUP reloads what can change without a restart: the API keys file
 * and the master keys file (read off the loop; apikeys.h, masterkeys.h). It never stops grantd and
 * does not count towards the "second signal exits at once" of SIGTERM/SIGINT. */
static void on_sighup(uv_signal_t *h, int signum)
{
  app_t *app = h->data;
  log_info("reloading", "#signal", LOG_I64(signum), "name", "SIGHUP");
  if (app->signals == 0) {
    apikeys_reload(app->apikeys, app->api);
    masterkeys_reload(app->masterkeys);
  }
}

/* Refuses a keyring that lacks a key some records still use (the census
 * of the store): removing a key is safe only once no record needs it. */
static int keyring_covers(const seal_keyring_t *kr, const store_census_t *c, char *err,
                          size_t errlen)
{
  for (size_t i = 0; i < c->n; i++) {
    if (seal_keyring_has(kr, c->id[i]) || c->records[i] == 0)
      continue;
    snprintf(err, errlen,
             "%llu records are sealed with master key id %u, which the keyring lacks: give that "
             "key again (as %u:KEY after the current key in GRANTD_MASTER_KEYS or the master keys "
             "file; the single key is id 1) and remove it only once the re-seal job has moved "
             "them (grantd_store_records_by_key_id in /metrics, or grantd check)",
             (unsigned long long)c->records[i], c->id[i], c->id[i]);
    return -1;
  }
  return 0;
}

static int serve(int argc, char **argv)
{
  app_t app;
  memset(&app, 0, sizeof app);
  char err[512];
  int fail_code = 1;
  uint8_t master[SEAL_KEY_LEN];
  char *api_key = NULL;
  int rc = config_load(&app.cfg, argc, argv, 2, err, sizeof err);
  if (rc == 1) {
    config_usage(stdout);
    config_free(&app.cfg);
    return 0;
  }
  if (rc != 0) {
    fprintf(stderr, "grantd: %s\n", err);
    config_free(&app.cfg);
    return 2;
  }
  int level = LOGL_INFO;
  log_parse_level(app.cfg.log_level, &level);
  log_init(level);
  signal(SIGPIPE, SIG_IGN);
  /* First, so that a broken template file writes nothing (exit 2). */
  if (catalog_dir_load(app.cfg.catalog_dir, &app.catalog, err, sizeof err) != 0) {
    fprintf(stderr, "grantd: %s\n", err);
    config_free(&app.cfg);
    return 2;
  }

  if (keys_prepare_dir(app.cfg.data_dir, err, sizeof err) != 0) {
    fprintf(stderr, "grantd: %s\n", err);
    catalog_free(app.catalog);
    config_free(&app.cfg);
    return 1;
  }
  rc = keys_load(&app.cfg, store_exists(app.cfg.data_dir), &api_key, master, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "grantd: %s\n", err);
    catalog_free(app.catalog);
    config_free(&app.cfg);
    return rc == -2 ? 2 : 1;
  }
  /* A bad API keys file is invalid configuration too: exit 2, before the
   * store is opened. */
  app.loop = uv_default_loop();
  api_keyset_t *keyset = NULL;
  if (apikeys_open(app.loop, app.cfg.api_keys_file, api_key, &app.apikeys, &keyset, err,
                   sizeof err) != 0) {
    fprintf(stderr, "grantd: %s\n", err);
    free_secret(api_key);
    mem_wipe(master, sizeof master);
    catalog_free(app.catalog);
    config_free(&app.cfg);
    return 2;
  }
  free_secret(api_key);
  api_key = NULL;
  /* Before the store opens; held until the process exits, when the kernel
   * releases it (lock.h). After the keys, so that a start refused for its
   * keys writes nothing. */
  int lock_fd = lock_data_dir(app.cfg.data_dir, err, sizeof err);
  if (lock_fd < 0) {
    fprintf(stderr, "grantd: %s\n", err);
    mem_wipe(master, sizeof master);
    api_keyset_free(keyset);
    apikeys_free(app.apikeys);
    catalog_free(app.catalog);
    config_free(&app.cfg);
    return lock_fd == -2 ? 2 : 1;
  }

  rc = keys_keyring(&app.cfg, master, &app.keyring, err, sizeof err);
  mem_wipe(master, sizeof master);
  if (rc != 0) {
    fprintf(stderr, "grantd: %s\n", err);
    fail_code = rc == -2 ? 2 : 1;
    goto fail;
  }
  store_opts_t so = {
    .loop = app.loop,
    .path = app.cfg.data_dir,
    .map_size = (size_t)app.cfg.map_size,
    .keyring = app.keyring,
    .events_keep = (size_t)app.cfg.events_keep,
    .events_keep_ms = app.cfg.events_keep_hours * 3600 * 1000,
    .events_keep_undelivered = (size_t)app.cfg.events_keep_undelivered,
  };
  rc = store_open(&app.store, &so);
  if (rc != 0) {
    fprintf(stderr, "grantd: cannot open the store in %s: %s\n", app.cfg.data_dir, err_str(rc));
    goto fail;
  }
  store_census_t census;
  rc = store_seal_census(app.store, &census);
  if (rc != 0) {
    fprintf(stderr, "grantd: cannot count the store's sealing keys: %s\n", err_str(rc));
    goto fail;
  }
  if (keyring_covers(app.keyring, &census, err, sizeof err) != 0) {
    fprintf(stderr, "grantd: %s\n", err);
    fail_code = 2;
    goto fail;
  }
  rc = tls_client_ctx_new(&app.tls, app.cfg.system_ca_file, app.cfg.ca_file);
  if (rc != 0) {
    fprintf(stderr, "grantd: cannot load trust anchors (%s%s%s): %s\n", app.cfg.system_ca_file,
            app.cfg.ca_file ? ", " : "", app.cfg.ca_file ? app.cfg.ca_file : "", err_str(rc));
    goto fail;
  }
  http_client_opts_t ho = {
    .tls = app.tls,
    .allow_insecure_http = app.cfg.allow_insecure_http,
    .endpoint_policy = app.cfg.endpoint_policy,
    .max_per_origin = (unsigned)app.cfg.refresh_max_inflight_per_host,
    .max_total = (unsigned)app.cfg.refresh_max_inflight,
    .response_timeout_ms = (unsigned)app.cfg.request_timeout_ms,
  };
  app.http = http_client_new(app.loop, &ho);
  /* The API and the listener come up before the service so that a
   * defaulted public URL can name the port actually bound (--listen :0).
   * No request is handled before the loop runs, and by then the service
   * is attached. */
  api_opts_t ao = {
    .svc = NULL,
    .keys = keyset,
    .callback_max_query = (size_t)app.cfg.callback_max_query,
    .import_max_body = 256u << 20,
    .import_max_line = (size_t)app.cfg.max_body, /* one line: one PUT body */
    .endpoint_policy = app.cfg.endpoint_policy,
    .catalog = app.catalog,
    .allow_insecure_http = app.cfg.allow_insecure_http,
  };
  app.api = api_new(&ao);
  keyset = NULL;
  http_server_opts_t sopt = {
    .host = app.cfg.listen_host,
    .port = (unsigned)app.cfg.listen_port,
    .max_header_bytes = (size_t)app.cfg.max_header,
    .max_body_bytes = (size_t)app.cfg.max_body,
    .max_buffered_bytes = (size_t)app.cfg.max_buffered,
    .max_connections = (unsigned)app.cfg.max_connections,
    .idle_timeout_ms = (unsigned)app.cfg.idle_timeout_ms,
    .request_timeout_ms = (unsigned)app.cfg.header_timeout_ms,
    .handler = api_handle,
    .handler_arg = app.api,
    .on_headers = api_on_headers,
  };
  rc = http_server_start(app.loop, &sopt, &app.server);
  if (rc != 0) {
    fprintf(stderr, "grantd: cannot listen on %s: %s\n", app.cfg.listen, err_str(rc));
    goto fail;
  }
  if (app.cfg.public_url_defaulted) {
    bool v6 = strchr(app.cfg.listen_host, ':') != NULL;
    size_t n = strlen(app.cfg.listen_host) + 32;
    free(app.cfg.public_url);
    app.cfg.public_url = xmalloc(n);
    snprintf(app.cfg.public_url, n, v6 ? "http://[%s]:%u" : "http://%s:%u", app.cfg.listen_host,
             http_server_port(app.server));
  }
  svc_opts_t vo = {
    .loop = app.loop,
    .store = app.store,
    .http = app.http,
    .tls = app.tls,
    .public_url = app.cfg.public_url,
    .state_ttl_ms = app.cfg.state_ttl_s * 1000,
    .request_timeout_ms = app.cfg.request_timeout_ms,
    .max_inflight = (int)app.cfg.refresh_max_inflight,
    .max_inflight_per_host = (int)app.cfg.refresh_max_inflight_per_host,
    .ramp_per_s = (int)app.cfg.refresh_ramp_per_s,
    .batch_per_tick = (int)app.cfg.refresh_batch_per_tick,
    .webhook_max_endpoints = (int)app.cfg.webhook_max_endpoints,
    .webhook_max_inflight = (int)app.cfg.webhook_max_inflight,
    .webhook_timeout_ms = app.cfg.webhook_timeout_ms,
    .webhook_retry_total_ms = app.cfg.webhook_retry_total_s * 1000,
    .webhook_retry_base_ms = app.cfg.webhook_retry_base_ms,
    .webhook_secret_overlap_ms = app.cfg.webhook_secret_overlap_s * 1000,
  };
  rc = svc_open(&app.svc, &vo);
  if (rc != 0) {
    fprintf(stderr, "grantd: cannot start the connection service: %s\n", err_str(rc));
    goto fail;
  }
  api_set_svc(app.api, app.svc);
  reseal_opts_t ro = {
    .loop = app.loop, .store = app.store, .per_second = (unsigned)app.cfg.reseal_per_s};
  app.reseal = reseal_new(&ro, &census);
  app.masterkeys =
    masterkeys_new(app.loop, app.cfg.master_keys_file, app.store, app.reseal, &app.keyring);
  if (app.cfg.reap_after_s > 0) {
    reaper_opts_t rp = {.loop = app.loop,
                        .svc = app.svc,
                        .store = app.store,
                        .age_ms = app.cfg.reap_after_s * 1000,
                        .revoke = app.cfg.reap_revoke,
                        .dry_run = app.cfg.reap_dry_run,
                        .interval_ms = app.cfg.reap_interval_ms};
    app.reaper = reaper_new(&rp);
  }
  unsigned port = http_server_port(app.server);
  if (app.cfg.port_file != NULL && write_port_file(app.cfg.port_file, port) != 0) {
    fprintf(stderr, "grantd: cannot write port file %s: %s\n", app.cfg.port_file, strerror(errno));
    goto fail;
  }
  uv_signal_init(app.loop, &app.sigterm);
  uv_signal_init(app.loop, &app.sigint);
  uv_signal_init(app.loop, &app.sighup);
  app.sigterm.data = app.sigint.data = app.sighup.data = &app;
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_signal_start(&app.sighup, on_sighup, SIGHUP);
  api_set_ready(app.api, 1);
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%u", port);
  if (app.cfg.allow_private_endpoints)
    log_warn("endpoint_guard_off", "reason",
             "--allow-private-endpoints: provider endpoints on loopback, private and link-local "
             "addresses (incl. cloud metadata) are reachable; use only for tests and development");
  log_info("listening", "host", app.cfg.listen_host, "port", portstr, "data", app.cfg.data_dir,
           "version", GRANTD_VERSION);

  uv_run(app.loop, UV_RUN_DEFAULT);

  api_free(app.api);
  apikeys_free(app.apikeys);
  masterkeys_free(app.masterkeys);
  catalog_free(app.catalog);
  seal_keyring_free(app.keyring);
  uv_loop_close(app.loop);
  config_free(&app.cfg);
  close(lock_fd);
  return app.exit_code;

fail:
  /* Start-up failed before the loop ran: release what was opened. */
  masterkeys_stop(app.masterkeys);
  reseal_close(app.reseal);
  reaper_close(app.reaper);
  api_keyset_free(keyset); /* NULL once the api took it */
  if (app.server)
    http_server_close(app.server, 0, NULL, NULL);
  if (app.svc) {
    svc_close(app.svc, NULL, NULL);
    uv_run(app.loop, UV_RUN_NOWAIT);
    svc_free(app.svc);
  }
  if (app.http)
    http_client_close(app.http, NULL, NULL);
  uv_run(app.loop, UV_RUN_NOWAIT);
  if (app.store)
    store_close(app.store, NULL, NULL);
  uv_run(app.loop, UV_RUN_DEFAULT);
  if (app.tls)
    tls_client_ctx_free(app.tls);
  api_free(app.api);
  apikeys_free(app.apikeys);
  masterkeys_free(app.masterkeys);
  catalog_free(app.catalog);
  seal_keyring_free(app.keyring);
  config_free(&app.cfg);
  close(lock_fd);
  return fail_code;
}

int main(int argc, char **argv)
{
  mem_install_uv();
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "serve"))
    return serve(argc, argv);
  if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
    printf("grantd %s\n", GRANTD_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(stdout);
    return 0;
  }
  int rc = admin_main(argc, argv);
  if (rc >= 0)
    return rc;
  fprintf(stderr, "grantd: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
