/*
 * hubd configuration: one option table (in config.c) drives the command line,
 * the config file, validation, `--help` and docs/configuration.md.
 *
 * Sources, highest precedence first: command line, config file (--config),
 * built-in default. In the file a key is the option name with underscores
 * (`https_port = 443`); on the command line it has dashes (`--https-port 443`
 * or `--https-port=443`). One spelling each, so there is one thing to grep for;
 * the other spelling is refused with a hint.
 *
 * What the rest of hubd sees is `const struct hub_config *`, validated and
 * complete: layers never read files or the environment, and the struct is
 * plain data, so any layer may include this header for the type. The
 * functions below are for hubd's main only.
 *
 * Ownership: every char * in the struct is owned by the struct and freed by
 * hub_hubd_config_free. A zeroed struct is a valid empty state (free is safe).
 * Thread rules: build and validate on the main thread before workers start;
 * afterwards the struct is read-only and may be read from any thread.
 */
#ifndef HUB_HUBD_CONFIG_H
#define HUB_HUBD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/log.h"

struct hub_config {
    /* files */
    char *config_file;   /* --config; NULL: none (command line only) */
    char *data_dir;      /* store and the managed TLS identity (data_dir/tls/) */
    char *tls_cert_file; /* operator's server certificate + chain, PEM; NULL: managed */
    char *tls_key_file;  /* its private key, PEM; NULL exactly when tls_cert_file is */

    /* listeners */
    char *listen;          /* numeric IPv4/IPv6 address; "::" = all, dual-stack */
    char **hostnames;      /* lowercase DNS names or IP literals this hub answers as */
    size_t hostname_count; /* 0: only localhost, 127.0.0.1 and ::1 */
    int https_port;        /* service REST API + device HTTPS */
    int mqtt_port;         /* MQTT 3.1.1 over TLS */
    int dps_mqtt_port;     /* DPS registration, MQTT over TLS */
    int threads;           /* worker threads; 0 = one per core (hub_net_pool_init resolves it) */
    enum hub_log_level log_level;

    /* limits */
    size_t max_connections;        /* all listeners and threads together */
    size_t max_connections_per_ip; /* <= max_connections */
    int connection_rate_per_ip;    /* new connections per second per address; 0 = no limit */
    int connection_burst_per_ip;   /* token bucket size */
    int tls_handshake_timeout_ms;
    size_t max_header_bytes;       /* HTTP request line + headers */
    size_t max_request_body_bytes; /* HTTP body */
    int http_request_timeout_ms;
    size_t mqtt_max_packet_bytes; /* one MQTT packet from a device */
    int mqtt_connect_timeout_ms;  /* TLS done -> CONNECT received */
    size_t max_ca_certificates;
    int verification_code_ttl_s; /* lifetime of a CA verification code */
    int telemetry_retention_s;   /* telemetry log retention */
    int c2d_max_queued;          /* C2D messages per device */
    int c2d_default_ttl_s;       /* C2D lifetime without IoTHub-Expiry */
    int c2d_max_delivery_count;  /* deliveries before dead-lettering */
    int max_poll_wait_s;         /* longest telemetry long poll */

    /* security switches (off by default; hub_hubd_config_log warns when on) */
    bool
        allow_verify_on_upload; /* honour "isVerified": true on CA upload: no proof of possession */

    /* private: which options the command line set (bit = option index), so a
     * later config file does not override them */
    uint64_t _set_by_cli;
};

/* The option table, exposed read-only for main's generic security warning and
 * for tests that check every option is documented. */
enum hub_config_type {
    HUB_CONFIG_STRING,
    HUB_CONFIG_INT,
    HUB_CONFIG_BOOL,
    HUB_CONFIG_LIST, /* repeatable; each occurrence adds (file: comma-separated too) */
    HUB_CONFIG_ENUM,
};

enum {
    HUB_CONFIG_F_RELOADABLE = 1u << 0,       /* could change without restart (reload: not yet) */
    HUB_CONFIG_F_WEAKENS_SECURITY = 1u << 1, /* a non-default value makes main warn */
    HUB_CONFIG_F_CLI_ONLY = 1u << 2,         /* not accepted in the config file (--config) */
};

struct hub_config_option {
    const char *key; /* file key, "https_port"; the flag is "--https-port" */
    enum hub_config_type type;
    const char *arg;          /* placeholder in --help: "PORT", "DIR" */
    const char *unit;         /* "ms", "bytes" or NULL */
    long long def;            /* default of INT, BOOL (0/1), ENUM (index into names) */
    const char *def_str;      /* default of STRING (NULL: unset) */
    long long min, max;       /* INT range, inclusive; LIST: max is the item cap */
    const char *const *names; /* ENUM value names, indexed by value, NULL-terminated */
    const char *allowed;      /* STRING/LIST syntax for docs: "IPv4 or IPv6 address" */
    /* STRING/LIST extra check: 0 or a short reason in why; may rewrite value in
     * place (hostnames are lowercased). */
    int (*check)(char *value, char *why, size_t why_cap);
    size_t offset, size; /* target field in struct hub_config */
    size_t count_offset; /* LIST: the size_t element count */
    unsigned flags;      /* HUB_CONFIG_F_* */
    const char *help;
};

/* The table and its length. Static storage. */
const struct hub_config_option *hub_hubd_config_options(size_t *count);

enum hub_config_action {
    HUB_CONFIG_ACTION_RUN,
    HUB_CONFIG_ACTION_HELP,          /* -h, --help: print hub_hubd_config_help_write, exit 0 */
    HUB_CONFIG_ACTION_HELP_MARKDOWN, /* --help-config-markdown: print the docs, exit 0 */
    HUB_CONFIG_ACTION_VERSION,       /* --version */
};

/* Zeroes *cfg and fills every default. HUB_E_NOMEM, or HUB_E_INTERNAL if the
 * table itself is inconsistent (a bug; the unit test catches it first). */
int hub_hubd_config_init(struct hub_config *cfg, struct hub_err *err);

/* Applies argv[1..argc-1] (argv[0] is the program name) on top of *cfg and
 * marks those options as set by the command line. `--config FILE` only
 * records the path: the caller loads it. Stops at -h/--help and the other
 * actions, leaving the rest of argv unread. HUB_E_INVALID_ARG with a message
 * naming the flag (unknown flag, missing or bad value, out of range with the
 * allowed range). argv is borrowed for the call. */
int hub_hubd_config_parse_argv(struct hub_config *cfg, int argc, char *const *argv,
                               enum hub_config_action *action, struct hub_err *err);

/* Reads `key = value` lines from path and applies every option the command
 * line did not set. Every line is still checked, so a bad value in the file
 * fails even if the command line overrides it. HUB_E_INVALID_ARG with
 * "path:line: ..." for an unknown key, a bad or out-of-range value (the
 * message gives the allowed range) or a duplicate key; HUB_E_IO if the file
 * cannot be read. On error *cfg may hold some of the file's values: free it. */
int hub_hubd_config_load_file(struct hub_config *cfg, const char *path, struct hub_err *err);

/* Checks rules that span options: the ports differ, the per-IP cap is at most
 * the global cap, TLS cert and key files are set together. HUB_E_INVALID_ARG. */
int hub_hubd_config_validate(struct hub_config *cfg, struct hub_err *err);

/* What main calls: init, parse argv, load --config if given, validate. On an
 * action other than RUN it returns 0 right after parsing argv. *cfg must be
 * freed with hub_hubd_config_free whatever the result. */
int hub_hubd_config_load(struct hub_config *cfg, int argc, char *const *argv,
                         enum hub_config_action *action, struct hub_err *err);

/* Frees everything *cfg owns and zeroes it. NULL is accepted. */
void hub_hubd_config_free(struct hub_config *cfg);

/* 1 if cfg's value of opt equals the built-in default. */
int hub_hubd_config_is_default(const struct hub_config *cfg, const struct hub_config_option *opt);

/* Writes opt's current value the way the config file spells it ("443",
 * "true", "a.example,b.example", "" for an unset string) into out (always
 * NUL-terminated; cut if cap is short). Returns the untruncated length. */
size_t hub_hubd_config_value_format(const struct hub_config *cfg,
                                    const struct hub_config_option *opt, char *out, size_t cap);

/* `hubd --help` text, generated from the table. */
void hub_hubd_config_help_write(FILE *out);
/* The whole of docs/configuration.md, generated from the table. */
void hub_hubd_config_markdown_write(FILE *out);

/* Logs the effective configuration (one `event=config` info line) and one
 * `event=config_insecure` warn line per security-weakening option that is
 * not at its default. Call once at startup, after hub_log_level_set. */
void hub_hubd_config_log(const struct hub_config *cfg);

#endif
