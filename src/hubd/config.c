/*
 * hubd configuration. `options[]` below is the only place an option is
 * defined: its name, type, default, range, unit, target field and help text.
 * Everything else here is generic over that table:
 *
 *   parse_argv  --key VALUE, --key=VALUE, --bool-flag   -> set_value()
 *   load_file   key = value lines                       -> set_value()
 *   help_write / markdown_write                         <- the same rows
 *
 * so an option cannot exist in the parser but not in --help or the docs.
 * tests/unit/hubd/test_config.c fails when docs/configuration.md differs from
 * what markdown_write produces.
 */
#include "hubd/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WHY_MAX       160
#define FILE_LINE_MAX 4096 /* longer lines are refused, not silently cut */
#define FLAG_MAX      64   /* longest "--flag" name we look up */
#define HOSTNAME_MAX  253  /* RFC 1035 presentation form without the final dot */
#define HELP_COL      28   /* --help: where descriptions start */
#define HELP_WIDTH    79

/* How the element count of a LIST row is found. */
#define AT(f)       .offset = offsetof(struct hub_config, f), .size = sizeof(((struct hub_config *)0)->f)
#define COUNT_AT(f) .count_offset = offsetof(struct hub_config, f)

static const char *const log_level_names[] = {
    [HUB_LOG_ERROR] = "error", [HUB_LOG_WARN] = "warn",    [HUB_LOG_INFO] = "info",
    [HUB_LOG_DEBUG] = "debug", [HUB_LOG_DEBUG + 1] = NULL,
};

static int check_address(char *value, char *why, size_t why_cap);
static int check_hostname(char *value, char *why, size_t why_cap);

static const struct hub_config_option options[] = {
    {.key = "config",
     .type = HUB_CONFIG_STRING,
     .arg = "FILE",
     .allowed = "path",
     AT(config_file),
     .flags = HUB_CONFIG_F_CLI_ONLY,
     .help = "Read settings from FILE (`key = value` lines). Without it only the command line "
             "and the defaults apply."},
    {.key = "data_dir",
     .type = HUB_CONFIG_STRING,
     .arg = "DIR",
     .def_str = "./hubd-data",
     .allowed = "path",
     AT(data_dir),
     .help = "Directory of the hub's durable state: the SQLite store and, unless "
             "tls_cert_file is set, the hub's own TLS identity."},
    {.key = "tls_cert_file",
     .type = HUB_CONFIG_STRING,
     .arg = "FILE",
     .allowed = "path",
     AT(tls_cert_file),
     .help = "PEM file with the hub's TLS server certificate followed by its CA chain, shared "
             "by the HTTPS and MQTT listeners; set it together with tls_key_file. Unset: hubd "
             "makes and renews its own server certificate and hub CA under data_dir/tls/ "
             "(clients trust tls/hub-ca.pem)."},
    {.key = "tls_key_file",
     .type = HUB_CONFIG_STRING,
     .arg = "FILE",
     .allowed = "path",
     AT(tls_key_file),
     .help = "PEM file with the private key of tls_cert_file; set both or neither."},
    {.key = "listen",
     .type = HUB_CONFIG_STRING,
     .arg = "ADDR",
     .def_str = "::",
     .allowed = "numeric IPv4 or IPv6 address",
     .check = check_address,
     AT(listen),
     .help = "Address both listeners bind to. The default `::` accepts IPv4 and IPv6 clients on "
             "every interface, as a production hub should; use 127.0.0.1 to serve this machine "
             "only."},
    {.key = "hostname",
     .type = HUB_CONFIG_LIST,
     .arg = "NAME",
     .max = 64,
     .allowed = "DNS name or IP address, up to 64",
     .check = check_hostname,
     AT(hostnames),
     COUNT_AT(hostname_count),
     .help = "Name devices and services use to reach this hub: the host in connection strings "
             "and in the audience of SAS tokens. Repeat the option for several names. With "
             "none, only localhost, 127.0.0.1 and ::1 are served. Compared case-insensitively."},
    {.key = "https_port",
     .type = HUB_CONFIG_INT,
     .arg = "PORT",
     .def = 443,
     .min = 1,
     .max = 65535,
     AT(https_port),
     .help = "TCP port of the HTTPS endpoint: service REST API and device HTTPS API."},
    {.key = "mqtt_port",
     .type = HUB_CONFIG_INT,
     .arg = "PORT",
     .def = 8883,
     .min = 1,
     .max = 65535,
     AT(mqtt_port),
     .help = "TCP port of the MQTT 3.1.1 over TLS device endpoint."},
    {.key = "dps_mqtt_port",
     .type = HUB_CONFIG_INT,
     .arg = "PORT",
     .def = 8884,
     .min = 1,
     .max = 65535,
     AT(dps_mqtt_port),
     .help = "TCP port of the Device Provisioning Service's MQTT over TLS registration endpoint "
             "(devices use provisioningHost = host:PORT). DPS over HTTPS shares https_port."},
    {.key = "threads",
     .type = HUB_CONFIG_INT,
     .arg = "N",
     .def = 0,
     .min = 0,
     .max = 256,
     AT(threads),
     .help = "Worker threads, each with its own event loop and listeners. 0 means one per CPU "
             "core."},
    {.key = "log_level",
     .type = HUB_CONFIG_ENUM,
     .arg = "LEVEL",
     .def = HUB_LOG_INFO,
     .names = log_level_names,
     AT(log_level),
     .flags = HUB_CONFIG_F_RELOADABLE,
     .help = "Lowest level of the log lines written to stderr."},
    {.key = "max_connections",
     .type = HUB_CONFIG_INT,
     .arg = "N",
     .def = 10000,
     .min = 1,
     .max = 1000000,
     AT(max_connections),
     .flags = HUB_CONFIG_F_RELOADABLE,
     .help = "Open connections, all listeners and threads together (TLS handshakes "
             "included). A connection beyond it is reset at accept, before any TLS work, "
             "counted in GET /metrics (reason CONN_CAP_GLOBAL) and logged."},
    {.key = "max_connections_per_ip",
     .type = HUB_CONFIG_INT,
     .arg = "N",
     .def = 1000,
     .min = 1,
     .max = 1000000,
     AT(max_connections_per_ip),
     .flags = HUB_CONFIG_F_RELOADABLE,
     .help = "Open connections from one source address (IPv6: one /64); at most "
             "max_connections. Devices behind one NAT share an address: raise it for large "
             "sites. Beyond it a connection is reset at accept (reason CONN_CAP_PER_IP)."},
    {.key = "connection_rate_per_ip",
     .type = HUB_CONFIG_INT,
     .arg = "N",
     .def = 20,
     .min = 0,
     .max = 1000000,
     AT(connection_rate_per_ip),
     .flags = HUB_CONFIG_F_RELOADABLE,
     .help = "New connections a source address (IPv6: one /64) may open per second, after "
             "its burst of connection_burst_per_ip; more are reset at accept (reason "
             "CONN_RATE_PER_IP). 0 turns the rate limit off. Loopback is not exempt."},
    {.key = "connection_burst_per_ip",
     .type = HUB_CONFIG_INT,
     .arg = "N",
     .def = 100,
     .min = 1,
     .max = 1000000,
     AT(connection_burst_per_ip),
     .flags = HUB_CONFIG_F_RELOADABLE,
     .help = "New connections a source address may open at once before "
             "connection_rate_per_ip applies (the token bucket's size): a site whose devices "
             "all reconnect after a power cut needs this many."},
    {.key = "tls_handshake_timeout_ms",
     .type = HUB_CONFIG_INT,
     .arg = "MS",
     .unit = "ms",
     .def = 10000,
     .min = 100,
     .max = 300000,
     AT(tls_handshake_timeout_ms),
     .flags = HUB_CONFIG_F_RELOADABLE,
     .help = "Time a client has to finish the TLS handshake once its TCP connection is "
             "accepted."},
    {.key = "max_header_bytes",
     .type = HUB_CONFIG_INT,
     .arg = "BYTES",
     .unit = "bytes",
     .def = 16384,
     .min = 1024,
     .max = 1048576,
     AT(max_header_bytes),
     .flags = HUB_CONFIG_F_RELOADABLE,
     .help = "Size of an HTTP request line plus headers; a larger request is refused."},
    {.key = "max_request_body_bytes",
     .type = HUB_CONFIG_INT,
     .arg = "BYTES",
     .unit = "bytes",
     .def = 262144,
     .min = 1024,
     .max = 16777216,
     AT(max_request_body_bytes),
     .flags = HUB_CONFIG_F_RELOADABLE,
     .help = "Size of an HTTP request body; a larger request is refused. The default is IoT "
             "Hub's 256 KiB message limit."},
    {.key = "http_request_timeout_ms",
     .type = HUB_CONFIG_INT,
     .arg = "MS",
     .unit = "ms",
     .def = 30000,
     .min = 100,
     .max = 600000,
     AT(http_request_timeout_ms),
     .flags = HUB_CONFIG_F_RELOADABLE,
     .help = "Time to receive one whole HTTP request, and idle time allowed between requests "
             "on a kept-alive connection."},
    {.key = "mqtt_max_packet_bytes",
     .type = HUB_CONFIG_INT,
     .arg = "BYTES",
     .unit = "bytes",
     .def = 270336,
     .min = 1024,
     .max = 16777216,
     AT(mqtt_max_packet_bytes),
     .flags = HUB_CONFIG_F_RELOADABLE,
     .help = "Size of one MQTT packet from a device: IoT Hub's 256 KiB message limit plus 8 KiB "
             "for the topic and its property bag. A larger packet closes the connection."},
    {.key = "mqtt_connect_timeout_ms",
     .type = HUB_CONFIG_INT,
     .arg = "MS",
     .unit = "ms",
     .def = 10000,
     .min = 100,
     .max = 300000,
     AT(mqtt_connect_timeout_ms),
     .flags = HUB_CONFIG_F_RELOADABLE,
     .help = "Time a device has to send MQTT CONNECT after the TLS handshake."},
    {.key = "max_ca_certificates",
     .type = HUB_CONFIG_INT,
     .arg = "N",
     .def = 25,
     .min = 1,
     .max = 10000,
     AT(max_ca_certificates),
     .flags = HUB_CONFIG_F_RELOADABLE,
     .help = "CA certificates the hub holds; an upload beyond is refused. IoT Hub's own limit "
             "is 25."},
    {.key = "verification_code_ttl_s",
     .type = HUB_CONFIG_INT,
     .arg = "SECONDS",
     .unit = "s",
     .def = 3600,
     .min = 1,
     .max = 7 * 86400,
     AT(verification_code_ttl_s),
     .help = "How long a CA verification code stays valid; a proof of possession after that "
             "needs a new code."},
    {.key = "telemetry_retention_s",
     .type = HUB_CONFIG_INT,
     .arg = "SECONDS",
     .unit = "s",
     .def = 86400,
     .min = 60,
     .max = 90LL * 86400,
     AT(telemetry_retention_s),
     .help = "How long device-to-cloud messages stay readable (GET /messages/events, hubctl "
             "monitor); IoT Hub's built-in endpoint keeps them one day by default."},
    {.key = "c2d_max_queued",
     .type = HUB_CONFIG_INT,
     .arg = "N",
     .def = 50,
     .min = 1,
     .max = 100000,
     AT(c2d_max_queued),
     .help = "Cloud-to-device messages queued per device; sending one more is refused (IoT "
             "Hub's limit is 50)."},
    {.key = "c2d_default_ttl_s",
     .type = HUB_CONFIG_INT,
     .arg = "SECONDS",
     .unit = "s",
     .def = 3600,
     .min = 1,
     .max = 2 * 86400,
     AT(c2d_default_ttl_s),
     .help = "Lifetime of a cloud-to-device message sent without IoTHub-Expiry. Expiries "
             "beyond two days are cut to two days, as in IoT Hub."},
    {.key = "c2d_max_delivery_count",
     .type = HUB_CONFIG_INT,
     .arg = "N",
     .def = 10,
     .min = 1,
     .max = 100,
     AT(c2d_max_delivery_count),
     .help = "Deliveries of a cloud-to-device message without completion before it is dead "
             "(feedback DeliveryCountExceeded)."},
    {.key = "max_poll_wait_s",
     .type = HUB_CONFIG_INT,
     .arg = "SECONDS",
     .unit = "s",
     .def = 60,
     .min = 0,
     .max = 300,
     AT(max_poll_wait_s),
     .help = "Longest wait= a telemetry reader (GET /messages/events) may ask for; the request "
             "is answered at once when messages arrive."},
    {.key = "allow_verify_on_upload",
     .type = HUB_CONFIG_BOOL,
     .def = 0,
     AT(allow_verify_on_upload),
     .flags = HUB_CONFIG_F_WEAKENS_SECURITY,
     .help = "Honour \"isVerified\": true in a CA upload, trusting the CA at once without "
             "proof of possession of its private key: whoever may upload CAs can then make the "
             "hub trust any CA certificate they have a copy of. hubd warns at startup when "
             "this is on."},
};

#define OPTION_COUNT (sizeof(options) / sizeof(options[0]))

const struct hub_config_option *hub_hubd_config_options(size_t *count)
{
    if (count != NULL)
        *count = OPTION_COUNT;
    return options;
}

/* ---- field access ------------------------------------------------------- */

static void *field(struct hub_config *cfg, const struct hub_config_option *o)
{
    return (char *)cfg + o->offset;
}

static const void *cfield(const struct hub_config *cfg, const struct hub_config_option *o)
{
    return (const char *)cfg + o->offset;
}

/* INT and ENUM fields are int or size_t-sized (the table check in init
 * guarantees 4 or 8 bytes and that max fits); values are never negative
 * except where min allows, so the signed copy has the right bits for both. */
static void int_store(void *p, size_t size, long long v)
{
    if (size == sizeof(int32_t)) {
        int32_t x = (int32_t)v;
        memcpy(p, &x, sizeof(x));
    } else {
        int64_t x = (int64_t)v;
        memcpy(p, &x, sizeof(x));
    }
}

static long long int_load(const void *p, size_t size)
{
    if (size == sizeof(int32_t)) {
        int32_t x;
        memcpy(&x, p, sizeof(x));
        return x;
    }
    int64_t x;
    memcpy(&x, p, sizeof(x));
    return (long long)x;
}

static char **string_field(struct hub_config *cfg, const struct hub_config_option *o)
{
    return (char **)field(cfg, o);
}

static void list_clear(struct hub_config *cfg, const struct hub_config_option *o)
{
    char ***items = (char ***)field(cfg, o);
    size_t *count = (size_t *)((char *)cfg + o->count_offset);
    for (size_t i = 0; i < *count; i++)
        free((*items)[i]);
    free(*items);
    *items = NULL;
    *count = 0;
}

static int option_index(const struct hub_config_option *o)
{
    return (int)(o - options);
}

/* ---- value parsing ------------------------------------------------------ */

static int check_address(char *value, char *why, size_t why_cap)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, value, buf) == 1 || inet_pton(AF_INET6, value, buf) == 1)
        return 0;
    snprintf(why, why_cap, "expected a numeric IPv4 or IPv6 address");
    return -1;
}

/* RFC 1123 host name (letters, digits, hyphens; labels of 1..63 not starting
 * or ending with '-') or an IP literal. Lowercased in place, because hosts are
 * compared case-insensitively and one spelling keeps comparisons simple. */
static int check_hostname(char *value, char *why, size_t why_cap)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, value, buf) == 1 || inet_pton(AF_INET6, value, buf) == 1)
        return 0;
    size_t len = strlen(value);
    if (len > HOSTNAME_MAX) {
        snprintf(why, why_cap, "host name longer than %d characters", HOSTNAME_MAX);
        return -1;
    }
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || value[i - 1] == '-') {
                snprintf(why, why_cap,
                         "not a valid host name (labels of 1 to 63 letters, "
                         "digits or '-', not ending in '-')");
                return -1;
            }
            label = 0;
            continue;
        }
        if (!(isalnum(c) || (c == '-' && label > 0))) {
            snprintf(why, why_cap, "not a valid host name (letters, digits, '-' and '.' only)");
            return -1;
        }
        value[i] = (char)tolower(c);
        label++;
    }
    return 0;
}

/* Decimal integer, optional leading '-', nothing else. */
static int parse_int(const char *s, long long *out, int *overflow)
{
    *overflow = 0;
    if (!(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0')
        return -1;
    if (errno == ERANGE)
        *overflow = 1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static size_t enum_names_join(const struct hub_config_option *o, const char *sep, char *out,
                              size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; o->names[i] != NULL; i++) {
        int w = snprintf(out + n, cap - n, "%s%s", i > 0 ? sep : "", o->names[i]);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
    return n;
}

static int list_append(struct hub_config *cfg, const struct hub_config_option *o, char *item,
                       char *why, size_t why_cap)
{
    char ***items = (char ***)field(cfg, o);
    size_t *count = (size_t *)((char *)cfg + o->count_offset);
    for (size_t i = 0; i < *count; i++) {
        if (strcmp((*items)[i], item) == 0)
            return 0; /* already there: a repeat changes nothing */
    }
    if ((long long)*count >= o->max) {
        snprintf(why, why_cap, "more than %lld values", o->max);
        return -1;
    }
    char *copy = strdup(item);
    char **grown = copy != NULL ? realloc(*items, (*count + 1) * sizeof(**items)) : NULL;
    if (grown == NULL) {
        free(copy);
        snprintf(why, why_cap, "out of memory");
        return HUB_E_NOMEM;
    }
    grown[*count] = copy;
    *items = grown;
    (*count)++;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Sets option o from text. 0, or -1 / HUB_E_NOMEM with a reason in why that
 * reads well after "<where>: <key>: ". */
static int set_value(struct hub_config *cfg, const struct hub_config_option *o, const char *value,
                     char *why, size_t why_cap)
{
    if (value[0] == '\0') {
        snprintf(why, why_cap, "no value given");
        return -1;
    }
    switch (o->type) {
    case HUB_CONFIG_INT: {
        long long v;
        int overflow;
        if (parse_int(value, &v, &overflow) != 0) {
            snprintf(why, why_cap, "'%.40s' is not a whole number (allowed %lld..%lld%s%s)", value,
                     o->min, o->max, o->unit ? " " : "", o->unit ? o->unit : "");
            return -1;
        }
        if (overflow || v < o->min || v > o->max) {
            snprintf(why, why_cap, "%.40s is out of range (allowed %lld..%lld%s%s)", value, o->min,
                     o->max, o->unit ? " " : "", o->unit ? o->unit : "");
            return -1;
        }
        int_store(field(cfg, o), o->size, v);
        return 0;
    }
    case HUB_CONFIG_BOOL: {
        bool b;
        if (parse_bool(value, &b) != 0) {
            snprintf(why, why_cap,
                     "'%.40s' is not a boolean (allowed true|false, yes|no, on|off, "
                     "1|0)",
                     value);
            return -1;
        }
        memcpy(field(cfg, o), &b, sizeof(b));
        return 0;
    }
    case HUB_CONFIG_ENUM: {
        for (size_t i = 0; o->names[i] != NULL; i++) {
            if (strcasecmp(value, o->names[i]) == 0) {
                int_store(field(cfg, o), o->size, (long long)i);
                return 0;
            }
        }
        char names[80];
        enum_names_join(o, "|", names, sizeof(names));
        snprintf(why, why_cap, "'%.40s' is not allowed (allowed %s)", value, names);
        return -1;
    }
    case HUB_CONFIG_STRING: {
        char *copy = strdup(value);
        if (copy == NULL) {
            snprintf(why, why_cap, "out of memory");
            return HUB_E_NOMEM;
        }
        if (o->check != NULL && o->check(copy, why, why_cap) != 0) {
            free(copy);
            return -1;
        }
        char **slot = string_field(cfg, o);
        free(*slot);
        *slot = copy;
        return 0;
    }
    case HUB_CONFIG_LIST: {
        /* Comma-separated items; each one trimmed and checked. strtok would
         * silently skip the empty item in "a,,b", which is a typo to report. */
        char *copy = strdup(value);
        if (copy == NULL) {
            snprintf(why, why_cap, "out of memory");
            return HUB_E_NOMEM;
        }
        int rc = 0;
        for (char *item = copy, *next; item != NULL && rc == 0; item = next) {
            next = strchr(item, ',');
            if (next != NULL)
                *next++ = '\0';
            item = trim(item);
            if (item[0] == '\0') {
                snprintf(why, why_cap, "empty item in list");
                rc = -1;
            } else if (o->check != NULL && o->check(item, why, why_cap) != 0) {
                rc = -1;
            } else {
                rc = list_append(cfg, o, item, why, why_cap);
            }
        }
        free(copy);
        return rc;
    }
    }
    snprintf(why, why_cap, "unknown option type");
    return -1;
}

/* ---- init / free -------------------------------------------------------- */

static int table_check(struct hub_err *err)
{
    if (OPTION_COUNT > 64)
        return HUB_ERR(err, HUB_E_INTERNAL, "config table: more than 64 options");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct hub_config_option *o = &options[i];
        int ok = 1;
        switch (o->type) {
        case HUB_CONFIG_INT:
        case HUB_CONFIG_ENUM:
            ok = (o->size == 4 && o->max <= INT32_MAX) || o->size == 8;
            if (o->type == HUB_CONFIG_INT)
                ok = ok && o->min <= o->def && o->def <= o->max;
            break;
        case HUB_CONFIG_BOOL:
            ok = o->size == sizeof(bool);
            break;
        case HUB_CONFIG_STRING:
            ok = o->size == sizeof(char *);
            break;
        case HUB_CONFIG_LIST:
            ok = o->size == sizeof(char **) && o->count_offset != 0 && o->max > 0;
            break;
        }
        if (!ok)
            return HUB_ERR(err, HUB_E_INTERNAL, "config table: bad row '%s'", o->key);
    }
    return 0;
}

int hub_hubd_config_init(struct hub_config *cfg, struct hub_err *err)
{
    memset(cfg, 0, sizeof(*cfg));
    int rc = table_check(err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct hub_config_option *o = &options[i];
        switch (o->type) {
        case HUB_CONFIG_INT:
        case HUB_CONFIG_ENUM:
            int_store(field(cfg, o), o->size, o->def);
            break;
        case HUB_CONFIG_BOOL: {
            bool b = o->def != 0;
            memcpy(field(cfg, o), &b, sizeof(b));
            break;
        }
        case HUB_CONFIG_STRING:
            if (o->def_str != NULL) {
                char *copy = strdup(o->def_str);
                if (copy == NULL) {
                    hub_hubd_config_free(cfg);
                    return HUB_ERR(err, HUB_E_NOMEM, "config: out of memory");
                }
                *string_field(cfg, o) = copy;
            }
            break;
        case HUB_CONFIG_LIST:
            break; /* lists start empty */
        }
    }
    return 0;
}

void hub_hubd_config_free(struct hub_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct hub_config_option *o = &options[i];
        if (o->type == HUB_CONFIG_STRING)
            free(*string_field(cfg, o));
        else if (o->type == HUB_CONFIG_LIST)
            list_clear(cfg, o);
    }
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- command line ------------------------------------------------------- */

/* "https_port" -> "https-port" */
static void key_to_flag(const char *key, char *out, size_t cap)
{
    size_t i = 0;
    for (; key[i] != '\0' && i + 1 < cap; i++)
        out[i] = key[i] == '_' ? '-' : key[i];
    out[i] = '\0';
}

static const struct hub_config_option *find_by_flag(const char *name)
{
    char flag[FLAG_MAX];
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        key_to_flag(options[i].key, flag, sizeof(flag));
        if (strcmp(flag, name) == 0)
            return &options[i];
    }
    return NULL;
}

static const struct hub_config_option *find_by_key(const char *key)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        if (strcmp(options[i].key, key) == 0)
            return &options[i];
    }
    return NULL;
}

/* Same name with the other separator: "https-port" <-> "https_port". */
static const struct hub_config_option *find_other_spelling(const char *name, char sep_from,
                                                           char sep_to)
{
    char alt[FLAG_MAX];
    size_t i = 0;
    for (; name[i] != '\0' && i + 1 < sizeof(alt); i++)
        alt[i] = name[i] == sep_from ? sep_to : name[i];
    alt[i] = '\0';
    return sep_to == '_' ? find_by_key(alt) : find_by_flag(alt);
}

int hub_hubd_config_parse_argv(struct hub_config *cfg, int argc, char *const *argv,
                               enum hub_config_action *action, struct hub_err *err)
{
    uint64_t seen = 0; /* lists: the first occurrence replaces earlier values */
    *action = HUB_CONFIG_ACTION_RUN;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *action = HUB_CONFIG_ACTION_HELP;
            return 0;
        }
        if (strcmp(a, "--help-config-markdown") == 0) {
            *action = HUB_CONFIG_ACTION_HELP_MARKDOWN;
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            *action = HUB_CONFIG_ACTION_VERSION;
            return 0;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
            return HUB_ERR(err, HUB_E_INVALID_ARG, "unexpected argument '%.64s' (see --help)", a);

        char name[FLAG_MAX];
        const char *eq = strchr(a + 2, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (name_len >= sizeof(name))
            return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown option '%.64s' (see --help)", a);
        memcpy(name, a + 2, name_len);
        name[name_len] = '\0';

        const struct hub_config_option *o = find_by_flag(name);
        if (o == NULL) {
            const struct hub_config_option *alt = find_other_spelling(name, '_', '-');
            if (alt != NULL) {
                char flag[FLAG_MAX];
                key_to_flag(alt->key, flag, sizeof(flag));
                return HUB_ERR(err, HUB_E_INVALID_ARG,
                               "unknown option '--%s': on the command line it is '--%s'", name,
                               flag);
            }
            return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown option '--%s' (see --help)", name);
        }

        const char *value;
        if (eq != NULL) {
            value = eq + 1;
        } else if (o->type == HUB_CONFIG_BOOL) {
            value = "true"; /* a bare boolean flag switches it on */
        } else if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
            /* "--data-dir --threads 4" is a forgotten value far more often
             * than a directory named "--threads"; --data-dir=--x still works. */
            return HUB_ERR(err, HUB_E_INVALID_ARG, "--%s needs a value (%s)", name,
                           o->arg != NULL ? o->arg : "VALUE");
        } else {
            value = argv[++i];
        }

        uint64_t bit = UINT64_C(1) << option_index(o);
        if (o->type == HUB_CONFIG_LIST && (seen & bit) == 0)
            list_clear(cfg, o);
        seen |= bit;
        char why[WHY_MAX];
        int rc = set_value(cfg, o, value, why, sizeof(why));
        if (rc != 0)
            return HUB_ERR(err, rc == HUB_E_NOMEM ? HUB_E_NOMEM : HUB_E_INVALID_ARG, "--%s: %s",
                           name, why);
        cfg->_set_by_cli |= bit;
    }
    return 0;
}

/* ---- config file -------------------------------------------------------- */

/* Keeps "path:line: " short enough that the reason after it survives in the
 * 256-byte hub_err message: a long path loses its head, marked with "...". */
#define WHERE_MAX 84
static void short_path(const char *path, char out[WHERE_MAX])
{
    size_t n = strlen(path);
    if (n < WHERE_MAX)
        memcpy(out, path, n + 1);
    else
        snprintf(out, WHERE_MAX, "...%s", path + n - (WHERE_MAX - 4));
}

/* One line: 0 ok or blank, otherwise an error already set in err. */
static int file_line_apply(struct hub_config *cfg, char *s, const char *where, int lineno,
                           int first_line[], uint64_t *seen, struct hub_err *err)
{
    s = trim(s);
    if (s[0] == '\0' || s[0] == '#')
        return 0;
    /* A '#' after whitespace starts a comment; inside a word it is data. */
    for (char *p = s + 1; *p != '\0'; p++) {
        if (*p == '#' && isspace((unsigned char)p[-1])) {
            *p = '\0';
            break;
        }
    }
    char *eq = strchr(s, '=');
    if (eq == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s:%d: expected 'key = value'", where, lineno);
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    if (key[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s:%d: expected 'key = value'", where, lineno);

    const struct hub_config_option *o = find_by_key(key);
    if (o == NULL) {
        const struct hub_config_option *alt = find_other_spelling(key, '-', '_');
        if (alt != NULL)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "%s:%d: unknown key '%.64s': in the config file it is '%s'", where,
                           lineno, key, alt->key);
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s:%d: unknown key '%.64s'", where, lineno, key);
    }
    if (o->flags & HUB_CONFIG_F_CLI_ONLY)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s:%d: '%s' is only accepted on the command line",
                       where, lineno, o->key);

    int idx = option_index(o);
    uint64_t bit = UINT64_C(1) << idx;
    if (o->type != HUB_CONFIG_LIST && first_line[idx] != 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s:%d: '%s' set twice (first on line %d)", where,
                       lineno, o->key, first_line[idx]);
    if (first_line[idx] == 0)
        first_line[idx] = lineno;

    /* The command line wins, but its loser is still checked so a typo in the
     * file does not wait until the day someone drops the flag. */
    struct hub_config scratch;
    memset(&scratch, 0, sizeof(scratch));
    struct hub_config *target = (cfg->_set_by_cli & bit) ? &scratch : cfg;
    if (target == cfg && o->type == HUB_CONFIG_LIST && (*seen & bit) == 0)
        list_clear(cfg, o);
    *seen |= bit;
    char why[WHY_MAX];
    int rc = set_value(target, o, value, why, sizeof(why));
    hub_hubd_config_free(&scratch);
    if (rc != 0)
        return HUB_ERR(err, rc == HUB_E_NOMEM ? HUB_E_NOMEM : HUB_E_INVALID_ARG, "%s:%d: %s: %s",
                       where, lineno, o->key, why);
    return 0;
}

int hub_hubd_config_load_file(struct hub_config *cfg, const char *path, struct hub_err *err)
{
    char where[WHERE_MAX];
    short_path(path, where);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return HUB_ERR(err, HUB_E_IO, "config file %s: %s", where, strerror(errno));

    int first_line[OPTION_COUNT] = {0};
    uint64_t seen = 0;
    char *buf = NULL;
    size_t buf_cap = 0;
    int lineno = 0;
    int rc = 0;
    ssize_t n;
    while (rc == 0 && (n = getline(&buf, &buf_cap, f)) >= 0) {
        lineno++;
        if ((size_t)n > FILE_LINE_MAX)
            rc = HUB_ERR(err, HUB_E_INVALID_ARG, "%s:%d: line longer than %d bytes", where, lineno,
                         FILE_LINE_MAX);
        else if (strlen(buf) != (size_t)n)
            rc = HUB_ERR(err, HUB_E_INVALID_ARG, "%s:%d: NUL byte in line", where, lineno);
        else
            rc = file_line_apply(cfg, buf, where, lineno, first_line, &seen, err);
    }
    if (rc == 0 && ferror(f))
        rc = HUB_ERR(err, HUB_E_IO, "config file %s: read error", where);
    free(buf);
    fclose(f);
    return rc;
}

/* ---- validation --------------------------------------------------------- */

int hub_hubd_config_validate(struct hub_config *cfg, struct hub_err *err)
{
    if (cfg->data_dir == NULL || cfg->listen == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "config: not initialised");
    if (cfg->https_port == cfg->mqtt_port || cfg->dps_mqtt_port == cfg->https_port ||
        cfg->dps_mqtt_port == cfg->mqtt_port)
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "config: https_port (%d), mqtt_port (%d) and dps_mqtt_port (%d) must "
                       "differ; each listener needs its own port",
                       cfg->https_port, cfg->mqtt_port, cfg->dps_mqtt_port);
    if (cfg->max_connections_per_ip > cfg->max_connections)
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "config: max_connections_per_ip (%zu) is above max_connections (%zu)",
                       cfg->max_connections_per_ip, cfg->max_connections);
    /* One without the other would pair an operator's certificate with the
     * managed key (or the reverse): a handshake failure far from its cause. */
    if ((cfg->tls_cert_file == NULL) != (cfg->tls_key_file == NULL))
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "config: %s is set but %s is not; set both or neither",
                       cfg->tls_cert_file != NULL ? "tls_cert_file" : "tls_key_file",
                       cfg->tls_cert_file != NULL ? "tls_key_file" : "tls_cert_file");
    return 0;
}

int hub_hubd_config_load(struct hub_config *cfg, int argc, char *const *argv,
                         enum hub_config_action *action, struct hub_err *err)
{
    int rc = hub_hubd_config_init(cfg, err);
    if (rc != 0)
        return rc;
    rc = hub_hubd_config_parse_argv(cfg, argc, argv, action, err);
    if (rc != 0 || *action != HUB_CONFIG_ACTION_RUN)
        return rc;
    if (cfg->config_file != NULL) {
        rc = hub_hubd_config_load_file(cfg, cfg->config_file, err);
        if (rc != 0)
            return rc;
    }
    return hub_hubd_config_validate(cfg, err);
}

/* ---- values as text ----------------------------------------------------- */

int hub_hubd_config_is_default(const struct hub_config *cfg, const struct hub_config_option *o)
{
    switch (o->type) {
    case HUB_CONFIG_INT:
    case HUB_CONFIG_ENUM:
        return int_load(cfield(cfg, o), o->size) == o->def;
    case HUB_CONFIG_BOOL: {
        bool b;
        memcpy(&b, cfield(cfg, o), sizeof(b));
        return b == (o->def != 0);
    }
    case HUB_CONFIG_STRING: {
        const char *s = *(char *const *)cfield(cfg, o);
        if (s == NULL || o->def_str == NULL)
            return s == NULL && o->def_str == NULL;
        return strcmp(s, o->def_str) == 0;
    }
    case HUB_CONFIG_LIST:
        return *(const size_t *)((const char *)cfg + o->count_offset) == 0;
    }
    return 0;
}

size_t hub_hubd_config_value_format(const struct hub_config *cfg, const struct hub_config_option *o,
                                    char *out, size_t cap)
{
    int n = 0;
    switch (o->type) {
    case HUB_CONFIG_INT:
        n = snprintf(out, cap, "%lld", int_load(cfield(cfg, o), o->size));
        break;
    case HUB_CONFIG_ENUM: {
        long long v = int_load(cfield(cfg, o), o->size);
        size_t count = 0;
        while (o->names[count] != NULL)
            count++;
        n = snprintf(out, cap, "%s", v >= 0 && (size_t)v < count ? o->names[v] : "?");
        break;
    }
    case HUB_CONFIG_BOOL: {
        bool b;
        memcpy(&b, cfield(cfg, o), sizeof(b));
        n = snprintf(out, cap, "%s", b ? "true" : "false");
        break;
    }
    case HUB_CONFIG_STRING: {
        const char *s = *(char *const *)cfield(cfg, o);
        n = snprintf(out, cap, "%s", s != NULL ? s : "");
        break;
    }
    case HUB_CONFIG_LIST: {
        char *const *items = *(char **const *)cfield(cfg, o);
        size_t count = *(const size_t *)((const char *)cfg + o->count_offset);
        size_t total = 0;
        if (cap > 0)
            out[0] = '\0';
        for (size_t i = 0; i < count; i++) {
            size_t room = total < cap ? cap - total : 0;
            int w =
                snprintf(room > 0 ? out + total : NULL, room, "%s%s", i > 0 ? "," : "", items[i]);
            if (w > 0)
                total += (size_t)w;
        }
        return total;
    }
    }
    return n > 0 ? (size_t)n : 0;
}

/* ---- --help and docs ---------------------------------------------------- */

/* "262144" -> " (256 KiB)", "10000" ms -> " (10 s)"; "" when no nicer form. */
static void human_suffix(const struct hub_config_option *o, long long v, char *out, size_t cap)
{
    out[0] = '\0';
    if (o->unit == NULL || v <= 0)
        return;
    if (strcmp(o->unit, "bytes") == 0) {
        if (v % (1024 * 1024) == 0)
            snprintf(out, cap, " (%lld MiB)", v / (1024 * 1024));
        else if (v % 1024 == 0)
            snprintf(out, cap, " (%lld KiB)", v / 1024);
    } else if (strcmp(o->unit, "ms") == 0 && v % 1000 == 0) {
        snprintf(out, cap, " (%lld s)", v / 1000);
    }
}

static void default_text(const struct hub_config_option *o, char *out, size_t cap)
{
    char human[32];
    switch (o->type) {
    case HUB_CONFIG_INT:
        human_suffix(o, o->def, human, sizeof(human));
        snprintf(out, cap, "%lld%s", o->def, human);
        break;
    case HUB_CONFIG_ENUM:
        snprintf(out, cap, "%s", o->names[o->def]);
        break;
    case HUB_CONFIG_BOOL:
        snprintf(out, cap, "%s", o->def ? "true" : "false");
        break;
    case HUB_CONFIG_STRING:
        snprintf(out, cap, "%s", o->def_str != NULL ? o->def_str : "(unset)");
        break;
    case HUB_CONFIG_LIST:
        snprintf(out, cap, "(none)");
        break;
    }
}

static void allowed_text(const struct hub_config_option *o, const char *enum_sep, char *out,
                         size_t cap)
{
    switch (o->type) {
    case HUB_CONFIG_INT:
        snprintf(out, cap, "%lld..%lld%s%s", o->min, o->max, o->unit ? " " : "",
                 o->unit ? o->unit : "");
        break;
    case HUB_CONFIG_ENUM:
        enum_names_join(o, enum_sep, out, cap);
        break;
    case HUB_CONFIG_BOOL:
        snprintf(out, cap, "true%sfalse", enum_sep);
        break;
    case HUB_CONFIG_STRING:
    case HUB_CONFIG_LIST:
        snprintf(out, cap, "%s", o->allowed != NULL ? o->allowed : "text");
        break;
    }
}

static const char *type_name(enum hub_config_type t)
{
    switch (t) {
    case HUB_CONFIG_STRING:
        return "string";
    case HUB_CONFIG_INT:
        return "int";
    case HUB_CONFIG_BOOL:
        return "bool";
    case HUB_CONFIG_LIST:
        return "list";
    case HUB_CONFIG_ENUM:
        return "enum";
    }
    return "?";
}

/* Writes text word-wrapped to HELP_WIDTH, continuation lines indented to
 * HELP_COL; `col` is where the cursor already is. Ends with a newline. */
static void wrap(FILE *out, const char *text, size_t col)
{
    const char *p = text;
    int first = 1;
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (w == 0)
            break;
        if (!first && col + 1 + w > HELP_WIDTH) {
            fprintf(out, "\n%*s", HELP_COL, "");
            col = HELP_COL;
            first = 1;
        }
        fprintf(out, "%s%.*s", first ? "" : " ", (int)w, p);
        col += w + (first ? 0 : 1);
        first = 0;
        p += w;
    }
    fputc('\n', out);
}

void hub_hubd_config_help_write(FILE *out)
{
    fprintf(out, "Usage: hubd [--config FILE] [--data-dir DIR] [--hostname NAME]... [OPTION]...\n"
                 "\n"
                 "Runs the hub: the MQTT and HTTPS device endpoints and the service REST API.\n"
                 "Every option can also be set in the config file as `key = value`, with\n"
                 "underscores (https_port = 443). The command line wins over the file.\n"
                 "\n"
                 "Options:\n");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct hub_config_option *o = &options[i];
        char flag[FLAG_MAX];
        key_to_flag(o->key, flag, sizeof(flag));
        int col = fprintf(out, "  --%s%s%s", flag, o->type == HUB_CONFIG_BOOL ? "" : " ",
                          o->type == HUB_CONFIG_BOOL ? "" : o->arg);
        if (col + 2 > HELP_COL) {
            fprintf(out, "\n");
            col = 0;
        }
        fprintf(out, "%*s", HELP_COL - col, "");

        char text[1024], def[64], allowed[96];
        default_text(o, def, sizeof(def));
        allowed_text(o, "|", allowed, sizeof(allowed));
        size_t n = (size_t)snprintf(
            text, sizeof(text), "%s%s",
            (o->flags & HUB_CONFIG_F_WEAKENS_SECURITY) ? "[weakens security] " : "", o->help);
        if (o->type == HUB_CONFIG_LIST)
            n += (size_t)snprintf(text + n, sizeof(text) - n, " Repeatable.");
        if (o->type == HUB_CONFIG_INT || o->type == HUB_CONFIG_ENUM)
            snprintf(text + n, sizeof(text) - n, " [%s; default %s]", allowed, def);
        else if (o->type == HUB_CONFIG_BOOL || o->def_str != NULL)
            snprintf(text + n, sizeof(text) - n, " [default %s]", def);
        wrap(out, text, HELP_COL);
    }
    fprintf(out, "  -h, --help                Show this help and exit.\n"
                 "  --help-config-markdown    Print docs/configuration.md (generated from the\n"
                 "                            same table as this help) and exit.\n"
                 "  --version                 Print the version and exit.\n");
}

/* Markdown table cell: '|' would end the cell. */
static void md_cell(FILE *out, const char *s)
{
    fputs(" ", out);
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else
            fputc(*s, out);
    }
    fputs(" |", out);
}

/* Kept in the generator, not in the table: it is prose about the file format.
 * The unit test loads this example so the docs cannot show a file that fails. */
static const char markdown_example[] =
    "```\n"
    "# /etc/hubd/hubd.conf\n"
    "data_dir = /var/lib/hubd\n"
    "hostname = hub.example.com\n"
    "hostname = hub.internal.example.com   # one name per line, or comma-separated\n"
    "https_port = 443\n"
    "mqtt_port  = 8883\n"
    "log_level  = info\n"
    "max_connections_per_ip = 5000        # a factory behind one NAT\n"
    "```\n";

void hub_hubd_config_markdown_write(FILE *out)
{
    fprintf(out,
            "# hubd configuration\n"
            "\n"
            "<!-- Generated by `hubd --help-config-markdown` from the option table in\n"
            "     src/hubd/config.c. Do not edit by hand: change the table and regenerate.\n"
            "     tests/unit/hubd/test_config.c fails when this file and the table differ. -->\n"
            "\n"
            "Every option can be set on the command line or in a config file; `hubd --help`\n"
            "prints the same list.\n"
            "\n"
            "## Where values come from\n"
            "\n"
            "Highest precedence first:\n"
            "\n"
            "1. the command line: `--https-port 8443` or `--https-port=8443`;\n"
            "2. the config file named by `--config FILE`: `https_port = 8443`;\n"
            "3. the built-in default (below).\n"
            "\n"
            "A list given on the command line (`--hostname`) replaces the file's list; it is\n"
            "not merged. hubd reads no environment variables.\n"
            "\n"
            "## Config file syntax\n"
            "\n"
            "- One `key = value` per line. Keys are the option names with underscores\n"
            "  (`https_port`); on the command line the same names take dashes\n"
            "  (`--https-port`). The other spelling is refused with a hint, so each setting\n"
            "  has one spelling to search for.\n"
            "- Blank lines are ignored. `#` starts a comment at the start of a line or after\n"
            "  whitespace; inside a word it is part of the value.\n"
            "- Values are taken literally after trimming whitespace: no quotes, no escapes.\n"
            "- Integers are decimal, without unit suffixes; the unit is part of the key\n"
            "  (`_ms`, `_bytes`).\n"
            "- Booleans: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`. On the command\n"
            "  line a boolean flag alone means true (`--allow-verify-on-upload`);\n"
            "  `--allow-verify-on-upload=false` also works.\n"
            "- A key may appear once, except list keys (`hostname`): each line adds names,\n"
            "  and one line may hold several, comma-separated.\n"
            "- An unknown key, a malformed value, a value out of range or a repeated key\n"
            "  stops startup with `file:line` and the allowed range. A value in the file is\n"
            "  checked even when the command line overrides it.\n"
            "\n"
            "## Example\n"
            "\n"
            "%s"
            "\n"
            "## Options\n"
            "\n"
            "Reload \"yes\" marks options that can safely change while the hub runs. hubd\n"
            "does not reload its configuration yet: today every change needs a restart.\n"
            "\n"
            "| Key (file) | Command line | Type | Default | Allowed | Reload | Description |\n"
            "|---|---|---|---|---|---|---|\n",
            markdown_example);
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct hub_config_option *o = &options[i];
        char dashed[FLAG_MAX], flag[FLAG_MAX + 16], def[64], allowed[96], key[FLAG_MAX + 4];
        key_to_flag(o->key, dashed, sizeof(dashed));
        snprintf(flag, sizeof(flag), "`--%s%s%s`", dashed, o->type == HUB_CONFIG_BOOL ? "" : " ",
                 o->type == HUB_CONFIG_BOOL ? "" : o->arg);
        if (o->flags & HUB_CONFIG_F_CLI_ONLY)
            snprintf(key, sizeof(key), "(none)");
        else
            snprintf(key, sizeof(key), "`%s`", o->key);
        default_text(o, def, sizeof(def));
        allowed_text(o, ", ", allowed, sizeof(allowed));
        fputs("|", out);
        md_cell(out, key);
        md_cell(out, flag);
        md_cell(out, type_name(o->type));
        md_cell(out, def);
        md_cell(out, allowed);
        md_cell(out, (o->flags & HUB_CONFIG_F_RELOADABLE) ? "yes" : "no");
        char help[1024];
        snprintf(help, sizeof(help), "%s%s%s",
                 (o->flags & HUB_CONFIG_F_WEAKENS_SECURITY) ? "**Weakens security.** " : "",
                 o->help, o->type == HUB_CONFIG_LIST ? " Repeatable." : "");
        md_cell(out, help);
        fputs("\n", out);
    }
    fprintf(out, "\n"
                 "## Options that weaken security\n"
                 "\n"
                 "They are off by default. When one is on, hubd logs a warning at startup\n"
                 "(`level=warn event=config_insecure key=...`).\n"
                 "\n");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        if (options[i].flags & HUB_CONFIG_F_WEAKENS_SECURITY)
            fprintf(out, "- `%s`: %s\n", options[i].key, options[i].help);
    }
}

/* ---- startup log -------------------------------------------------------- */

void hub_hubd_config_log(const struct hub_config *cfg)
{
    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_INFO, "config");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        char value[HUB_LOG_VALUE_MAX + 1];
        hub_hubd_config_value_format(cfg, &options[i], value, sizeof(value));
        hub_log_str(&line, options[i].key, value);
    }
    hub_log_end(&line);

    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct hub_config_option *o = &options[i];
        if ((o->flags & HUB_CONFIG_F_WEAKENS_SECURITY) && !hub_hubd_config_is_default(cfg, o)) {
            char value[64];
            hub_hubd_config_value_format(cfg, o, value, sizeof(value));
            hub_log_kv(HUB_LOG_WARN, "config_insecure", "key", o->key, "value", value, "detail",
                       "this option weakens security; see docs/configuration.md", (char *)NULL);
        }
    }
}
