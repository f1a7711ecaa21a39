/*
 * Start-up order matters: configuration, the data-dir lock (so two hubs
 * never share a store), identity and policies, the store, then sockets, and
 * only then threads. Stop is the reverse, driven by SIGTERM/SIGINT received
 * with sigwait() on the main thread.
 */
#include "hubd/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/auth.h"
#include "common/log.h"
#include "common/metrics.h"
#include "device/device.h"
#include "dps/dps.h"
#include "dpsdev/dpsdev.h"
#include "http/http.h"
#include "hubd/config.h"
#include "hubd/id_scope_file.h"
#include "hubd/identity.h"
#include "hubd/policies_file.h"
#include "msg/msg.h"
#include "net/admission.h"
#include "net/net.h"
#include "registry/registry.h"
#include "store/store.h"

#define SHUTDOWN_GRACE_MS 5000
#define LISTEN_BACKLOG    1024
#define PATH_BYTES        4096

struct daemon {
    struct hub_config cfg;
    int lock_fd;
    struct hub_identity identity;
    const char *chain_file, *key_file;
    struct hub_auth_policy_set policies;
    struct hub_auth_policy_set dps_policies; /* the provisioning service's own */
    char id_scope[HUB_DPS_ID_SCOPE_SIZE];
    struct hub_store *store;
    struct hub_registry *registry;
    struct hub_msg_telemetry_log *telemetry;
    struct hub_msg_c2d *c2d;
    SSL_CTX *ssl_ctx;      /* HTTPS: asks for (never requires) a device's chain */
    SSL_CTX *mqtt_ssl_ctx; /* MQTT: asks for (never requires) the device's chain */
    /* Both listeners' connection limits (one admission: one global cap). */
    struct hub_net_admission *admission;
    struct hub_net_pool pool;
    const char **hosts; /* accepted SAS hosts: localhost, loopbacks, --hostname */
    size_t host_count;
    struct hub_http_env http_env;
    struct hub_http_server **http_servers; /* one per worker */
    struct hub_device_env device_env;
    struct hub_device_endpoint *device_ep;
    struct hub_device_server **mqtt_servers; /* one per worker */
    struct hub_dps *dps;                     /* enrollments, matching, assignment */
    SSL_CTX *dps_ssl_ctx; /* DPS MQTT: asks for (never requires) the device's chain */
    struct hub_dpsdev_service *dps_device;  /* registration exchange, MQTT and HTTPS */
    struct hub_dpsdev_server **dps_servers; /* one per worker */
    struct worker_stop *stops;              /* one per worker */
};

/* What stopping one worker takes: its three servers drain, then its loop exits. */
struct worker_stop {
    struct daemon *d;
    size_t index;
    int pending; /* servers not yet drained; touched on the worker's thread only */
};

static int64_t now_seconds(void)
{
    return (int64_t)time(NULL);
}

static int fail(const char *what, const struct hub_err *err)
{
    fprintf(stderr, "hubd: %s: %s\n", what, err->msg);
    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_ERROR, "start_failed");
    hub_log_str(&line, "step", what);
    hub_log_err(&line, err);
    hub_log_end(&line);
    return 1;
}

static int path_in(char *out, const char *dir, const char *name, struct hub_err *err)
{
    int n = snprintf(out, PATH_BYTES, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_BYTES)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "path too long: %s/%s", dir, name);
    return 0;
}

/* Holds an exclusive flock on <data_dir>/hubd.lock for the hub's lifetime. */
static int lock_data_dir(struct daemon *d, struct hub_err *err)
{
    if (mkdir(d->cfg.data_dir, 0700) != 0 && errno != EEXIST)
        return HUB_ERR(err, HUB_E_IO, "cannot create data dir %s: %s", d->cfg.data_dir,
                       strerror(errno));
    char path[PATH_BYTES];
    int rc = path_in(path, d->cfg.data_dir, "hubd.lock", err);
    if (rc != 0)
        return rc;
    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->lock_fd < 0)
        return HUB_ERR(err, HUB_E_IO, "cannot open %s: %s", path, strerror(errno));
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char holder[32] = "";
        ssize_t n = pread(d->lock_fd, holder, sizeof(holder) - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        return HUB_ERR(err, HUB_E_BUSY,
                       "data dir %s is in use by another hubd (pid %s); stop it or use another "
                       "--data-dir",
                       d->cfg.data_dir, holder[0] != '\0' ? holder : "unknown");
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(d->lock_fd, 0) != 0 || pwrite(d->lock_fd, pid, (size_t)len, 0) != len)
        return HUB_ERR(err, HUB_E_IO, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

static int setup_identity(struct daemon *d, struct hub_err *err)
{
    char managed[PATH_BYTES];
    int rc = path_in(managed, d->cfg.data_dir, "tls/server.pem", err);
    if (rc != 0)
        return rc;
    if (d->cfg.tls_cert_file != NULL && strcmp(d->cfg.tls_cert_file, managed) != 0) {
        /* The operator brought their own server certificate. */
        d->chain_file = d->cfg.tls_cert_file;
        d->key_file = d->cfg.tls_key_file;
        return 0;
    }
    rc = hub_identity_ensure(d->cfg.data_dir, (const char *const *)d->cfg.hostnames,
                             d->cfg.hostname_count, &d->identity, err);
    d->chain_file = d->identity.server_chain_file;
    d->key_file = d->identity.server_key_file;
    return rc;
}

static int load_policies(const char *data_dir, const char *name, enum hub_auth_service service,
                         struct hub_auth_policy_set *set, struct hub_err *err)
{
    char path[PATH_BYTES];
    int created = 0;
    int rc = path_in(path, data_dir, name, err);
    if (rc == 0)
        rc = hub_policies_file_load_or_create(path, service, set, &created, err);
    if (rc == 0 && created)
        hub_log_kv(HUB_LOG_INFO, "policies_created", "file", path, NULL);
    return rc;
}

/* The hub's policies and the provisioning service's, each in its own file:
 * a data dir from before the provisioning service gains dps-policies on its
 * next start. */
static int setup_policies(struct daemon *d, struct hub_err *err)
{
    int rc = load_policies(d->cfg.data_dir, "policies", HUB_AUTH_SERVICE_IOTHUB, &d->policies, err);
    if (rc == 0)
        rc = load_policies(d->cfg.data_dir, "dps-policies", HUB_AUTH_SERVICE_DPS, &d->dps_policies,
                           err);
    return rc;
}

static const char *hub_host_name(const struct daemon *d)
{
    return d->cfg.hostname_count > 0 ? d->cfg.hostnames[0] : "localhost";
}

/* The provisioning service assigns devices to this hub, under the name
 * devices reach it by. */
static int setup_dps(struct daemon *d, struct hub_err *err)
{
    char path[PATH_BYTES];
    int created = 0;
    int rc = path_in(path, d->cfg.data_dir, "dps-id-scope", err);
    if (rc == 0)
        rc = hub_id_scope_file_load_or_create(path, d->id_scope, &created, err);
    if (rc != 0)
        return rc;
    if (created)
        hub_log_kv(HUB_LOG_INFO, "dps_id_scope_created", "id_scope", d->id_scope, "file", path,
                   NULL);
    struct hub_dps_opts opts = {.id_scope = d->id_scope, .assigned_hub = hub_host_name(d)};
    return hub_dps_new(d->store, d->registry, &opts, &d->dps, err);
}

static int setup_store(struct daemon *d, struct hub_err *err)
{
    char path[PATH_BYTES];
    int rc = path_in(path, d->cfg.data_dir, "hubd.db", err);
    if (rc == 0)
        rc = hub_store_sqlite_open(path, NULL, &d->store, err);
    if (rc != 0)
        return rc;
    struct hub_registry_opts opts = {.max_cas = d->cfg.max_ca_certificates,
                                     .code_ttl_s = d->cfg.verification_code_ttl_s};
    rc = hub_registry_new(d->store, &opts, &d->registry, err);
    if (rc != 0)
        return rc;
    struct hub_msg_telemetry_opts topts = {.retention_s = d->cfg.telemetry_retention_s};
    rc = hub_msg_telemetry_log_open(d->store, &topts, &d->telemetry, err);
    if (rc != 0)
        return rc;
    struct hub_msg_c2d_opts copts = {
        .max_per_device = (size_t)d->cfg.c2d_max_queued,
        .default_ttl_ms = (int64_t)d->cfg.c2d_default_ttl_s * 1000,
        .max_delivery_count = d->cfg.c2d_max_delivery_count,
    };
    return hub_msg_c2d_new(d->store, &copts, &d->c2d, err);
}

/* One admission for every listener: max_connections counts them together. */
static int setup_admission(struct daemon *d, struct hub_err *err)
{
    struct hub_net_admission_opts opts = {
        .max_connections = d->cfg.max_connections,
        .max_per_ip = d->cfg.max_connections_per_ip,
        .rate_per_ip = (uint32_t)d->cfg.connection_rate_per_ip,
        .burst_per_ip = (uint32_t)d->cfg.connection_burst_per_ip,
        .metrics = hub_metrics_default(),
    };
    return hub_net_admission_new(&opts, &d->admission, err);
}

static void on_c2d_enqueued(void *ctx, const char *device_id)
{
    hub_device_c2d_notify(ctx, device_id);
}

static int setup_http(struct daemon *d, struct hub_err *err)
{
    static const char *const builtin_hosts[] = {"localhost", "127.0.0.1", "::1"};
    size_t nb = sizeof(builtin_hosts) / sizeof(builtin_hosts[0]);
    d->hosts = calloc(nb + d->cfg.hostname_count, sizeof(*d->hosts));
    if (d->hosts == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for host names");
    for (size_t i = 0; i < nb; i++)
        d->hosts[d->host_count++] = builtin_hosts[i];
    for (size_t i = 0; i < d->cfg.hostname_count; i++)
        d->hosts[d->host_count++] = d->cfg.hostnames[i];

    d->http_env = (struct hub_http_env){
        .registry = d->registry,
        .policies = &d->policies,
        .hostnames = d->hosts,
        .hostname_count = d->host_count,
        .allow_verify_on_upload = d->cfg.allow_verify_on_upload,
        .max_body_bytes = d->cfg.max_request_body_bytes,
        .max_header_bytes = d->cfg.max_header_bytes,
        .request_timeout_ms = d->cfg.http_request_timeout_ms,
        .handshake_timeout_ms = d->cfg.tls_handshake_timeout_ms,
        .now = now_seconds,
        .telemetry = d->telemetry,
        .c2d = d->c2d,
        .max_poll_wait_s = d->cfg.max_poll_wait_s,
        .c2d_enqueued = on_c2d_enqueued,
        .dps = d->dps,
        .dps_policies = &d->dps_policies,
    };
    /* Devices may use the HTTPS transport with their X.509 chain, so HTTPS
     * asks for (never requires) a client certificate too. */
    struct hub_net_tls_opts tls = {
        .cert_chain_file = d->chain_file, .key_file = d->key_file, .request_client_cert = 1};
    int rc = hub_net_tls_server_ctx_new(&tls, &d->ssl_ctx, err);
    if (rc == 0)
        rc = hub_net_admission_ctx_set(d->ssl_ctx, d->admission, HUB_NET_TRANSPORT_HTTPS, err);
    if (rc == 0)
        rc = hub_net_pool_init(&d->pool, (size_t)d->cfg.threads, err);
    if (rc != 0)
        return rc;
    d->http_servers = calloc(d->pool.count, sizeof(*d->http_servers));
    if (d->http_servers == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for servers");
    for (size_t i = 0; i < d->pool.count; i++) {
        int fd = -1;
        rc = hub_net_listen(d->cfg.listen, d->cfg.https_port, "--https-port", LISTEN_BACKLOG, &fd,
                            err);
        if (rc != 0)
            return rc;
        rc = hub_http_server_new(d->pool.workers[i].base, d->ssl_ctx, fd, &d->http_env,
                                 &d->http_servers[i], err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int setup_mqtt(struct daemon *d, struct hub_err *err)
{
    struct hub_net_tls_opts tls = {
        .cert_chain_file = d->chain_file, .key_file = d->key_file, .request_client_cert = 1};
    int rc = hub_net_tls_server_ctx_new(&tls, &d->mqtt_ssl_ctx, err);
    if (rc == 0)
        rc = hub_net_admission_ctx_set(d->mqtt_ssl_ctx, d->admission, HUB_NET_TRANSPORT_MQTT, err);
    if (rc != 0)
        return rc;
    d->device_env = (struct hub_device_env){
        .registry = d->registry,
        .telemetry = d->telemetry,
        .c2d = d->c2d,
        .policies = &d->policies,
        .hostnames = d->hosts,
        .hostname_count = d->host_count,
        .max_packet_bytes = d->cfg.mqtt_max_packet_bytes,
        .tls_handshake_timeout_ms = d->cfg.tls_handshake_timeout_ms,
        .connect_timeout_ms = d->cfg.mqtt_connect_timeout_ms,
    };
    rc = hub_device_endpoint_new(&d->device_env, &d->pool, &d->device_ep, err);
    if (rc != 0)
        return rc;
    d->http_env.c2d_enqueued_ctx = d->device_ep;
    d->http_env.devices = d->device_ep;
    d->mqtt_servers = calloc(d->pool.count, sizeof(*d->mqtt_servers));
    if (d->mqtt_servers == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for servers");
    for (size_t i = 0; i < d->pool.count; i++) {
        int fd = -1;
        rc = hub_net_listen(d->cfg.listen, d->cfg.mqtt_port, "--mqtt-port", LISTEN_BACKLOG, &fd,
                            err);
        if (rc == 0)
            rc = hub_device_server_new(d->device_ep, &d->pool.workers[i], d->mqtt_ssl_ctx, fd,
                                       &d->mqtt_servers[i], err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int setup_dps_mqtt(struct daemon *d, struct hub_err *err)
{
    struct hub_net_tls_opts tls = {
        .cert_chain_file = d->chain_file, .key_file = d->key_file, .request_client_cert = 1};
    int rc = hub_net_tls_server_ctx_new(&tls, &d->dps_ssl_ctx, err);
    if (rc == 0)
        rc = hub_net_admission_ctx_set(d->dps_ssl_ctx, d->admission, HUB_NET_TRANSPORT_DPS_MQTT,
                                       err);
    if (rc != 0)
        return rc;
    struct hub_dpsdev_env env = {
        .id_scope = d->id_scope,
        .backend = hub_dpsdev_backend_dps(d->dps),
        .max_packet_bytes = d->cfg.mqtt_max_packet_bytes,
        .handshake_timeout_ms = d->cfg.tls_handshake_timeout_ms,
    };
    rc = hub_dpsdev_service_new(&env, &d->dps_device, err);
    if (rc != 0)
        return rc;
    d->http_env.dps_device = d->dps_device;
    d->dps_servers = calloc(d->pool.count, sizeof(*d->dps_servers));
    if (d->dps_servers == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for servers");
    for (size_t i = 0; i < d->pool.count; i++) {
        int fd = -1;
        rc = hub_net_listen(d->cfg.listen, d->cfg.dps_mqtt_port, "--dps-mqtt-port", LISTEN_BACKLOG,
                            &fd, err);
        if (rc == 0)
            rc = hub_dpsdev_server_new(d->dps_device, &d->pool.workers[i], d->dps_ssl_ctx, fd,
                                       &d->dps_servers[i], err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Worker-side stop: runs on each worker's thread. */
static void on_server_drained(void *arg)
{
    struct worker_stop *stop = arg;
    if (--stop->pending == 0)
        event_base_loopexit(stop->d->pool.workers[stop->index].base, NULL);
}

static void on_stop(void *arg)
{
    struct worker_stop *stop = arg;
    struct daemon *d = stop->d;
    stop->pending = 3;
    hub_http_server_drain(d->http_servers[stop->index], SHUTDOWN_GRACE_MS, on_server_drained, stop);
    hub_device_server_drain(d->mqtt_servers[stop->index], SHUTDOWN_GRACE_MS, on_server_drained,
                            stop);
    hub_dpsdev_server_drain(d->dps_servers[stop->index], on_server_drained, stop);
}

static void print_banner(const struct daemon *d)
{
    const char *host = hub_host_name(d);
    const struct hub_auth_policy *owner = hub_auth_policy_set_find0(&d->policies, "iothubowner");
    const struct hub_auth_policy *dps_owner =
        hub_auth_policy_set_find0(&d->dps_policies, "provisioningserviceowner");
    printf("hubd: ready (pid %ld, %zu worker threads)\n", (long)getpid(), d->pool.count);
    printf("  service API (HTTPS): https://%s:%d/\n", host, d->cfg.https_port);
    printf("  devices (MQTT/TLS):  %s:%d\n", host, d->cfg.mqtt_port);
    if (owner != NULL)
        printf("  connection string:   "
               "HostName=%s;SharedAccessKeyName=iothubowner;SharedAccessKey=%s\n",
               host, owner->primary_key);
    printf("  DPS (MQTT/TLS):      %s:%d  idScope=%s\n", host, d->cfg.dps_mqtt_port, d->id_scope);
    printf("  DPS (HTTPS):         https://%s:%d/%s/registrations/\n", host, d->cfg.https_port,
           d->id_scope);
    if (dps_owner != NULL)
        printf("  DPS connection:      "
               "HostName=%s;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=%s\n",
               host, dps_owner->primary_key);
    if (d->identity.ca_file[0] != '\0')
        printf("  hub CA (trust it):   %s\n", d->identity.ca_file);
    else
        printf("  server certificate:  %s (trust the CA that issued it)\n", d->chain_file);
    printf("  data dir:            %s\n", d->cfg.data_dir);
    fflush(stdout);
}

static void teardown(struct daemon *d)
{
    hub_net_pool_join_and_free(&d->pool);
    free(d->http_servers);
    free(d->mqtt_servers);
    free(d->dps_servers);
    free(d->stops);
    /* The log flushes what devices sent (its last callbacks still reach the
     * endpoint) before the endpoint goes and the store closes under it. */
    hub_msg_telemetry_log_close(d->telemetry);
    hub_device_endpoint_free(d->device_ep);
    hub_msg_c2d_free(d->c2d);
    hub_dpsdev_service_free(d->dps_device);
    hub_dps_free(d->dps);
    SSL_CTX_free(d->ssl_ctx);
    SSL_CTX_free(d->mqtt_ssl_ctx);
    SSL_CTX_free(d->dps_ssl_ctx);
    /* After the pool: the last SSL objects (and their tickets) went with it. */
    hub_net_admission_free(d->admission);
    free(d->hosts);
    hub_registry_free(d->registry);
    hub_store_close(d->store);
    if (d->lock_fd >= 0)
        close(d->lock_fd); /* releases the flock */
    hub_hubd_config_free(&d->cfg);
}

/* Servers not yet handed to a worker thread are freed here on error paths. */
static void free_unstarted_servers(struct daemon *d)
{
    for (size_t i = 0; i < d->pool.count; i++) {
        if (d->http_servers != NULL && d->http_servers[i] != NULL)
            hub_http_server_drain(d->http_servers[i], 0, NULL, NULL);
        if (d->mqtt_servers != NULL && d->mqtt_servers[i] != NULL)
            hub_device_server_drain(d->mqtt_servers[i], 0, NULL, NULL);
        if (d->dps_servers != NULL && d->dps_servers[i] != NULL)
            hub_dpsdev_server_drain(d->dps_servers[i], NULL, NULL);
    }
    for (size_t i = 0; i < d->pool.count; i++)
        event_base_loop(d->pool.workers[i].base, EVLOOP_NONBLOCK);
}

int hub_daemon_main(int argc, char **argv)
{
    struct daemon d;
    memset(&d, 0, sizeof(d));
    d.lock_fd = -1;
    struct hub_err err = {0};
    enum hub_config_action action = HUB_CONFIG_ACTION_RUN;
    if (hub_hubd_config_load(&d.cfg, argc, argv, &action, &err) != 0) {
        fprintf(stderr, "hubd: %s\n(see hubd --help)\n", err.msg);
        hub_hubd_config_free(&d.cfg);
        return 2;
    }
    switch (action) {
    case HUB_CONFIG_ACTION_HELP:
        hub_hubd_config_help_write(stdout);
        hub_hubd_config_free(&d.cfg);
        return 0;
    case HUB_CONFIG_ACTION_HELP_MARKDOWN:
        hub_hubd_config_markdown_write(stdout);
        hub_hubd_config_free(&d.cfg);
        return 0;
    case HUB_CONFIG_ACTION_VERSION:
        printf("hubd 0.1.0\n");
        hub_hubd_config_free(&d.cfg);
        return 0;
    case HUB_CONFIG_ACTION_RUN:
        break;
    }
    hub_log_level_set(d.cfg.log_level);
    hub_hubd_config_log(&d.cfg);
    /* Everything hubd creates holds or sits beside secrets (device keys live
     * in hubd.db and its WAL): owner-only from the first byte. */
    umask(0077);

    int status = 1;
    if (lock_data_dir(&d, &err) != 0) {
        status = fail("lock", &err);
        goto out;
    }
    if (hub_net_init(&err) != 0 || setup_identity(&d, &err) != 0) {
        status = fail("tls identity", &err);
        goto out;
    }
    if (setup_policies(&d, &err) != 0) {
        status = fail("policies", &err);
        goto out;
    }
    if (setup_store(&d, &err) != 0) {
        status = fail("store", &err);
        goto out;
    }
    if (setup_dps(&d, &err) != 0) {
        status = fail("provisioning service", &err);
        goto out;
    }
    if (setup_admission(&d, &err) != 0) {
        status = fail("admission", &err);
        goto out;
    }
    if (setup_http(&d, &err) != 0) {
        status = fail("https listener", &err);
        free_unstarted_servers(&d);
        goto out;
    }
    if (setup_mqtt(&d, &err) != 0) {
        status = fail("mqtt listener", &err);
        free_unstarted_servers(&d);
        goto out;
    }
    if (setup_dps_mqtt(&d, &err) != 0) {
        status = fail("dps mqtt listener", &err);
        free_unstarted_servers(&d);
        goto out;
    }
    d.stops = calloc(d.pool.count, sizeof(*d.stops));
    if (d.stops == NULL) {
        HUB_ERR(&err, HUB_E_NOMEM, "no memory");
        status = fail("threads", &err);
        free_unstarted_servers(&d);
        goto out;
    }

    /* Workers inherit this mask, so only sigwait() below sees the signals. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    if (hub_net_pool_start(&d.pool, &err) != 0) {
        status = fail("threads", &err);
        goto out;
    }
    hub_log_kv(HUB_LOG_INFO, "started", "data_dir", d.cfg.data_dir, "listen", d.cfg.listen, NULL);
    print_banner(&d);

    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0)
        ;
    hub_log_kv(HUB_LOG_INFO, "stopping", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    for (size_t i = 0; i < d.pool.count; i++) {
        d.stops[i] = (struct worker_stop){.d = &d, .index = i};
        if (hub_net_worker_call(&d.pool.workers[i], on_stop, &d.stops[i]) != 0)
            event_base_loopbreak(d.pool.workers[i].base);
    }
    hub_net_pool_join_and_free(&d.pool);
    status = 0;
    hub_log_kv(HUB_LOG_INFO, "stopped", NULL);

out:
    teardown(&d);
    return status;
}
