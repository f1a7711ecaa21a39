#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hubd/config.h"

/* ---- helpers ------------------------------------------------------------ */

#define ARGV(...) ((char *const[]){"hubd", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *const[]){"hubd", __VA_ARGS__}) / sizeof(char *)))

/* A config file with `text`; the path is written into path (caller unlinks). */
static void temp_file(const char *text, char path[64])
{
    snprintf(path, 64, "/tmp/hubd-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void init(struct hub_config *cfg)
{
    struct hub_err err = {0};
    assert_int_equal(hub_hubd_config_init(cfg, &err), 0);
}

/* Loads text as a config file into a freshly initialised cfg; returns rc. */
static int load_text(struct hub_config *cfg, const char *text, struct hub_err *err, char path[64])
{
    init(cfg);
    temp_file(text, path);
    int rc = hub_hubd_config_load_file(cfg, path, err);
    unlink(path);
    return rc;
}

/* Help text with every run of newline + indentation folded to one space, so
 * checks do not depend on where the wrapping fell. */
static void unwrap(char *s)
{
    char *w = s;
    for (char *r = s; *r != '\0'; r++) {
        if (*r == '\n' && r[1] == ' ') {
            while (r[1] == ' ')
                r++;
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static char *capture(void (*writer)(FILE *))
{
    FILE *f = tmpfile();
    assert_non_null(f);
    writer(f);
    long len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static const struct hub_config_option *option(const char *key)
{
    size_t n;
    const struct hub_config_option *opts = hub_hubd_config_options(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(opts[i].key, key) == 0)
            return &opts[i];
    }
    fail_msg("no option %s", key);
    return NULL;
}

/* ---- the table ---------------------------------------------------------- */

static void test_table_rows_are_complete(void **state)
{
    (void)state;
    size_t n;
    const struct hub_config_option *opts = hub_hubd_config_options(&n);
    assert_true(n >= 15 && n <= 64);
    for (size_t i = 0; i < n; i++) {
        const struct hub_config_option *o = &opts[i];
        assert_non_null(o->help);
        assert_true(strlen(o->help) > 20);
        assert_true(o->key[0] >= 'a' && o->key[0] <= 'z');
        assert_int_equal(strspn(o->key, "abcdefghijklmnopqrstuvwxyz_0123456789"), strlen(o->key));
        if (o->type != HUB_CONFIG_BOOL)
            assert_non_null(o->arg);
        if (o->type == HUB_CONFIG_INT) {
            assert_true(o->min <= o->def && o->def <= o->max);
            if (o->unit != NULL) { /* the unit is spelled in the key, as the docs promise */
                char suffix[16];
                snprintf(suffix, sizeof(suffix), "_%s", o->unit);
                size_t klen = strlen(o->key), slen = strlen(suffix);
                assert_true(klen > slen && strcmp(o->key + klen - slen, suffix) == 0);
            }
        }
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(o->key, opts[j].key);
    }
    assert_true(option("allow_verify_on_upload")->flags & HUB_CONFIG_F_WEAKENS_SECURITY);
    assert_true(option("config")->flags & HUB_CONFIG_F_CLI_ONLY);
}

static void test_defaults(void **state)
{
    (void)state;
    struct hub_config cfg;
    init(&cfg);
    assert_null(cfg.config_file);
    assert_string_equal(cfg.data_dir, "./hubd-data");
    assert_string_equal(cfg.listen, "::");
    assert_int_equal(cfg.hostname_count, 0);
    assert_null(cfg.hostnames);
    assert_int_equal(cfg.https_port, 443);
    assert_int_equal(cfg.mqtt_port, 8883);
    assert_int_equal(cfg.threads, 0);
    assert_int_equal(cfg.log_level, HUB_LOG_INFO);
    assert_int_equal(cfg.max_ca_certificates, 25);
    assert_false(cfg.allow_verify_on_upload);
    assert_int_equal(cfg.max_request_body_bytes, 256 * 1024);
    assert_int_equal(cfg.max_header_bytes, 16 * 1024);
    assert_int_equal(cfg.tls_handshake_timeout_ms, 10000);
    assert_int_equal(cfg.max_connections, 10000);
    assert_true(cfg.max_connections_per_ip <= cfg.max_connections);
    assert_null(cfg.tls_cert_file);

    size_t n;
    const struct hub_config_option *opts = hub_hubd_config_options(&n);
    for (size_t i = 0; i < n; i++)
        assert_true(hub_hubd_config_is_default(&cfg, &opts[i]));

    struct hub_err err = {0};
    assert_int_equal(hub_hubd_config_validate(&cfg, &err), 0);
    assert_null(cfg.tls_cert_file); /* still unset: the daemon manages its identity */
    assert_null(cfg.tls_key_file);
    hub_hubd_config_free(&cfg);
}

/* ---- command line ------------------------------------------------------- */

static void test_argv_each_type(void **state)
{
    (void)state;
    struct hub_config cfg;
    struct hub_err err = {0};
    enum hub_config_action action;
    init(&cfg);
    char *const *argv =
        ARGV("--data-dir", "/var/lib/hubd", "--https-port", "8443", "--threads=4", "--log-level",
             "debug", "--listen=127.0.0.1", "--allow-verify-on-upload", "--max-request-body-bytes",
             "1048576", "--config", "/etc/hubd.conf");
    int argc = ARGC("--data-dir", "/var/lib/hubd", "--https-port", "8443", "--threads=4",
                    "--log-level", "debug", "--listen=127.0.0.1", "--allow-verify-on-upload",
                    "--max-request-body-bytes", "1048576", "--config", "/etc/hubd.conf");
    assert_int_equal(hub_hubd_config_parse_argv(&cfg, argc, argv, &action, &err), 0);
    assert_int_equal(action, HUB_CONFIG_ACTION_RUN);
    assert_string_equal(cfg.data_dir, "/var/lib/hubd");
    assert_int_equal(cfg.https_port, 8443);
    assert_int_equal(cfg.threads, 4);
    assert_int_equal(cfg.log_level, HUB_LOG_DEBUG);
    assert_string_equal(cfg.listen, "127.0.0.1");
    assert_true(cfg.allow_verify_on_upload);
    assert_int_equal(cfg.max_request_body_bytes, 1048576);
    assert_string_equal(cfg.config_file, "/etc/hubd.conf");
    assert_int_equal(cfg.mqtt_port, 8883); /* untouched */
    assert_false(hub_hubd_config_is_default(&cfg, option("allow_verify_on_upload")));
    hub_hubd_config_free(&cfg);
}

static void test_argv_bool_forms(void **state)
{
    (void)state;
    static const struct {
        const char *arg;
        bool want;
    } cases[] = {
        {"--allow-verify-on-upload", true},        {"--allow-verify-on-upload=true", true},
        {"--allow-verify-on-upload=yes", true},    {"--allow-verify-on-upload=on", true},
        {"--allow-verify-on-upload=1", true},      {"--allow-verify-on-upload=TRUE", true},
        {"--allow-verify-on-upload=false", false}, {"--allow-verify-on-upload=no", false},
        {"--allow-verify-on-upload=off", false},   {"--allow-verify-on-upload=0", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_config cfg;
        struct hub_err err = {0};
        enum hub_config_action action;
        init(&cfg);
        cfg.allow_verify_on_upload = !cases[i].want;
        char *argv[] = {"hubd", (char *)cases[i].arg, NULL};
        assert_int_equal(hub_hubd_config_parse_argv(&cfg, 2, argv, &action, &err), 0);
        if (cfg.allow_verify_on_upload != cases[i].want)
            fail_msg("%s", cases[i].arg);
        hub_hubd_config_free(&cfg);
    }
}

static void test_argv_repeated_hostname(void **state)
{
    (void)state;
    struct hub_config cfg;
    struct hub_err err = {0};
    enum hub_config_action action;
    init(&cfg);
    char *const *argv = ARGV("--hostname", "Hub.Example.COM", "--hostname=b.example, 10.0.0.1",
                             "--hostname", "hub.example.com", "--hostname", "::1");
    int argc = ARGC("--hostname", "Hub.Example.COM", "--hostname=b.example, 10.0.0.1", "--hostname",
                    "hub.example.com", "--hostname", "::1");
    assert_int_equal(hub_hubd_config_parse_argv(&cfg, argc, argv, &action, &err), 0);
    assert_int_equal(cfg.hostname_count, 4); /* the repeat after lowercasing is dropped */
    assert_string_equal(cfg.hostnames[0], "hub.example.com");
    assert_string_equal(cfg.hostnames[1], "b.example");
    assert_string_equal(cfg.hostnames[2], "10.0.0.1");
    assert_string_equal(cfg.hostnames[3], "::1");
    char buf[128];
    size_t n = hub_hubd_config_value_format(&cfg, option("hostname"), buf, sizeof(buf));
    assert_string_equal(buf, "hub.example.com,b.example,10.0.0.1,::1");
    assert_int_equal(n, strlen(buf));
    /* A short buffer is cut but the full length is reported. */
    assert_int_equal(hub_hubd_config_value_format(&cfg, option("hostname"), buf, 5), n);
    assert_string_equal(buf, "hub.");
    hub_hubd_config_free(&cfg);
}

static void test_argv_too_many_hostnames(void **state)
{
    (void)state;
    struct hub_config cfg;
    struct hub_err err = {0};
    enum hub_config_action action;
    init(&cfg);
    char *argv[1 + 2 * 65];
    char names[65][16];
    argv[0] = "hubd";
    for (int i = 0; i < 65; i++) {
        snprintf(names[i], sizeof(names[i]), "h%d.example", i);
        argv[1 + 2 * i] = "--hostname";
        argv[2 + 2 * i] = names[i];
    }
    assert_int_equal(hub_hubd_config_parse_argv(&cfg, 1 + 2 * 65, argv, &action, &err),
                     HUB_E_INVALID_ARG);
    assert_string_equal(err.msg, "--hostname: more than 64 values");
    hub_hubd_config_free(&cfg);
}

static void test_argv_errors(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        const char *want; /* the whole message */
    } cases[] = {
        {"--bogus", NULL, "unknown option '--bogus' (see --help)"},
        {"--https_port", "1",
         "unknown option '--https_port': on the command line it is "
         "'--https-port'"},
        {"https-port", NULL, "unexpected argument 'https-port' (see --help)"},
        {"--", NULL, "unexpected argument '--' (see --help)"},
        {"--https-port", NULL, "--https-port needs a value (PORT)"},
        {"--data-dir", "--threads", "--data-dir needs a value (DIR)"},
        {"--https-port", "70000", "--https-port: 70000 is out of range (allowed 1..65535)"},
        {"--https-port", "0", "--https-port: 0 is out of range (allowed 1..65535)"},
        {"--https-port=-1", NULL, "--https-port: -1 is out of range (allowed 1..65535)"},
        {"--https-port", "99999999999999999999",
         "--https-port: 99999999999999999999 is out of range (allowed 1..65535)"},
        {"--https-port", "8443x", "--https-port: '8443x' is not a whole number (allowed 1..65535)"},
        {"--https-port", " 8443", "--https-port: ' 8443' is not a whole number (allowed 1..65535)"},
        {"--https-port", "0x10", "--https-port: '0x10' is not a whole number (allowed 1..65535)"},
        {"--tls-handshake-timeout-ms", "5",
         "--tls-handshake-timeout-ms: 5 is out of range (allowed 100..300000 ms)"},
        {"--threads=", NULL, "--threads: no value given"},
        {"--allow-verify-on-upload=maybe", NULL,
         "--allow-verify-on-upload: 'maybe' is not a boolean (allowed true|false, yes|no, on|off, "
         "1|0)"},
        {"--log-level", "verbose",
         "--log-level: 'verbose' is not allowed (allowed error|warn|info|debug)"},
        {"--listen", "localhost", "--listen: expected a numeric IPv4 or IPv6 address"},
        {"--hostname", "-bad.example",
         "--hostname: not a valid host name (letters, digits, '-' and '.' only)"},
        {"--hostname", "bad-.example",
         "--hostname: not a valid host name (labels of 1 to 63 letters, digits or '-', not "
         "ending in '-')"},
        {"--hostname", "a..b",
         "--hostname: not a valid host name (labels of 1 to 63 letters, "
         "digits or '-', not ending in '-')"},
        {"--hostname", "a_b.example",
         "--hostname: not a valid host name (letters, digits, '-' and '.' only)"},
        {"--hostname", "a,,b", "--hostname: empty item in list"},
        {"--hostname", ",", "--hostname: empty item in list"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_config cfg;
        struct hub_err err = {0};
        enum hub_config_action action;
        init(&cfg);
        char *argv[] = {"hubd", (char *)cases[i].a, (char *)cases[i].b, NULL};
        int argc = cases[i].b != NULL ? 3 : 2;
        int rc = hub_hubd_config_parse_argv(&cfg, argc, argv, &action, &err);
        if (rc != HUB_E_INVALID_ARG || strcmp(err.msg, cases[i].want) != 0)
            fail_msg("case %zu (%s): rc %d msg [%s] want [%s]", i, cases[i].a, rc, err.msg,
                     cases[i].want);
        hub_hubd_config_free(&cfg);
    }
}

static void test_argv_actions(void **state)
{
    (void)state;
    static const struct {
        const char *arg;
        enum hub_config_action want;
    } cases[] = {
        {"-h", HUB_CONFIG_ACTION_HELP},
        {"--help", HUB_CONFIG_ACTION_HELP},
        {"--help-config-markdown", HUB_CONFIG_ACTION_HELP_MARKDOWN},
        {"--version", HUB_CONFIG_ACTION_VERSION},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_config cfg;
        struct hub_err err = {0};
        enum hub_config_action action = HUB_CONFIG_ACTION_RUN;
        /* Whatever follows an action is not parsed, so `--help` always works. */
        char *argv[] = {"hubd", "--threads", "2", (char *)cases[i].arg, "--bogus", NULL};
        assert_int_equal(hub_hubd_config_load(&cfg, 5, argv, &action, &err), 0);
        assert_int_equal(action, cases[i].want);
        hub_hubd_config_free(&cfg);
    }
}

/* ---- config file -------------------------------------------------------- */

static void test_file_parsing(void **state)
{
    (void)state;
    struct hub_config cfg;
    struct hub_err err = {0};
    char path[64];
    const char *text = "# hubd test config\n"
                       "\n"
                       "   \t\n"
                       "  data_dir   =   /srv/hub#1   \n"
                       "https_port=8443\n"
                       "\tmqtt_port\t=\t9883\t# trailing comment\n"
                       "log_level = warn\r\n"
                       "hostname = a.example, B.example\n"
                       "  # indented comment = ignored\n"
                       "hostname = c.example\n"
                       "allow_verify_on_upload = no\n"
                       "max_connections_per_ip = 500";
    assert_int_equal(load_text(&cfg, text, &err, path), 0);
    assert_string_equal(cfg.data_dir, "/srv/hub#1");
    assert_int_equal(cfg.https_port, 8443);
    assert_int_equal(cfg.mqtt_port, 9883);
    assert_int_equal(cfg.log_level, HUB_LOG_WARN);
    assert_int_equal(cfg.hostname_count, 3);
    assert_string_equal(cfg.hostnames[1], "b.example");
    assert_string_equal(cfg.hostnames[2], "c.example");
    assert_false(cfg.allow_verify_on_upload);
    assert_int_equal(cfg.max_connections_per_ip, 500);
    assert_int_equal(cfg.threads, 0);
    hub_hubd_config_free(&cfg);
}

static void test_file_unknown_key_names_file_and_line(void **state)
{
    (void)state;
    struct hub_config cfg;
    struct hub_err err = {0};
    char path[64], want[160];
    assert_int_equal(load_text(&cfg, "https_port = 443\n# fine\nbogus = 1\n", &err, path),
                     HUB_E_INVALID_ARG);
    snprintf(want, sizeof(want), "%s:3: unknown key 'bogus'", path);
    assert_string_equal(err.msg, want);
    hub_hubd_config_free(&cfg);
}

static void test_file_out_of_range_gives_range(void **state)
{
    (void)state;
    struct hub_config cfg;
    struct hub_err err = {0};
    char path[64], want[160];
    assert_int_equal(load_text(&cfg, "\nhttps_port = 70000\n", &err, path), HUB_E_INVALID_ARG);
    snprintf(want, sizeof(want), "%s:2: https_port: 70000 is out of range (allowed 1..65535)",
             path);
    assert_string_equal(err.msg, want);
    hub_hubd_config_free(&cfg);
}

static void test_file_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want; /* after "path:" */
    } cases[] = {
        {"https-port = 1\n", "1: unknown key 'https-port': in the config file it is 'https_port'"},
        {"https_port 443\n", "1: expected 'key = value'"},
        {" = 443\n", "1: expected 'key = value'"},
        {"https_port =\n", "1: https_port: no value given"},
        {"https_port = 443 # ok\nhttps_port = 444\n",
         "2: 'https_port' set twice (first on line 1)"},
        {"config = /etc/other.conf\n", "1: 'config' is only accepted on the command line"},
        {"threads = four\n", "1: threads: 'four' is not a whole number (allowed 0..256)"},
        {"threads = 257\n", "1: threads: 257 is out of range (allowed 0..256)"},
        {"max_header_bytes = 16K\n",
         "1: max_header_bytes: '16K' is not a whole number (allowed 1024..1048576 bytes)"},
        {"allow_verify_on_upload = sure\n",
         "1: allow_verify_on_upload: 'sure' is not a boolean (allowed true|false, yes|no, "
         "on|off, 1|0)"},
        {"log_level = trace\n",
         "1: log_level: 'trace' is not allowed (allowed error|warn|info|debug)"},
        {"listen = \"::\"\n", "1: listen: expected a numeric IPv4 or IPv6 address"},
        {"hostname = ok.example\nhostname = not ok\n",
         "2: hostname: not a valid host name (letters, digits, '-' and '.' only)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_config cfg;
        struct hub_err err = {0};
        char path[64], want[256];
        int rc = load_text(&cfg, cases[i].text, &err, path);
        snprintf(want, sizeof(want), "%s:%s", path, cases[i].want);
        if (rc != HUB_E_INVALID_ARG || strcmp(err.msg, want) != 0)
            fail_msg("case %zu: rc %d msg [%s] want [%s]", i, rc, err.msg, want);
        hub_hubd_config_free(&cfg);
    }
}

static void test_file_unreadable_and_binary(void **state)
{
    (void)state;
    struct hub_config cfg;
    struct hub_err err = {0};
    init(&cfg);
    assert_int_equal(hub_hubd_config_load_file(&cfg, "/nonexistent/hubd.conf", &err), HUB_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/hubd.conf"));
    /* A long path keeps its tail, marked as cut, and the reason survives. */
    char longpath[300];
    memset(longpath, 'd', sizeof(longpath));
    longpath[0] = '/';
    snprintf(longpath + 250, sizeof(longpath) - 250, "/tail.conf");
    assert_int_equal(hub_hubd_config_load_file(&cfg, longpath, &err), HUB_E_IO);
    assert_int_equal(strncmp(err.msg, "config file ...ddd", 18), 0);
    assert_non_null(strstr(err.msg, "dd/tail.conf: No such file or directory"));
    assert_true(strlen(err.msg) < 140);
    hub_hubd_config_free(&cfg);

    char path[64];
    temp_file("", path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite("threads = 1\0\n", 1, 13, f);
    fclose(f);
    init(&cfg);
    assert_int_equal(hub_hubd_config_load_file(&cfg, path, &err), HUB_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, ":1: NUL byte in line"));
    hub_hubd_config_free(&cfg);
    unlink(path);

    char *huge = malloc(5000);
    assert_non_null(huge);
    memset(huge, 'x', 4998);
    huge[4998] = '\n';
    huge[4999] = '\0';
    assert_int_equal(load_text(&cfg, huge, &err, path), HUB_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, ":1: line longer than 4096 bytes"));
    hub_hubd_config_free(&cfg);
    free(huge);
}

/* ---- both sources ------------------------------------------------------- */

static void test_cli_overrides_file(void **state)
{
    (void)state;
    char path[64];
    temp_file("https_port = 1443\n"
              "mqtt_port = 9883\n"
              "hostname = file1.example\n"
              "hostname = file2.example\n"
              "allow_verify_on_upload = true\n",
              path);
    struct hub_config cfg;
    struct hub_err err = {0};
    enum hub_config_action action;
    char *argv[] = {"hubd", "--https-port", "8443",        "--config",
                    path,   "--hostname",   "cli.example", "--allow-verify-on-upload=false",
                    NULL};
    assert_int_equal(hub_hubd_config_load(&cfg, 8, argv, &action, &err), 0);
    assert_int_equal(action, HUB_CONFIG_ACTION_RUN);
    assert_int_equal(cfg.https_port, 8443);       /* command line */
    assert_int_equal(cfg.mqtt_port, 9883);        /* file */
    assert_int_equal(cfg.max_connections, 10000); /* default */
    assert_int_equal(cfg.hostname_count, 1);      /* the CLI list replaces the file's */
    assert_string_equal(cfg.hostnames[0], "cli.example");
    assert_false(cfg.allow_verify_on_upload);
    hub_hubd_config_free(&cfg);

    /* Loading the file before parsing argv gives the same answer. */
    init(&cfg);
    assert_int_equal(hub_hubd_config_load_file(&cfg, path, &err), 0);
    assert_int_equal(hub_hubd_config_parse_argv(&cfg, 8, argv, &action, &err), 0);
    assert_int_equal(cfg.https_port, 8443);
    assert_int_equal(cfg.hostname_count, 1);
    assert_string_equal(cfg.hostnames[0], "cli.example");
    hub_hubd_config_free(&cfg);
    unlink(path);
}

static void test_file_value_checked_even_when_cli_wins(void **state)
{
    (void)state;
    char path[64], want[160];
    temp_file("mqtt_port = 8883\nhttps_port = 70000\n", path);
    struct hub_config cfg;
    struct hub_err err = {0};
    enum hub_config_action action;
    char *argv[] = {"hubd", "--https-port", "8443", "--config", path, NULL};
    assert_int_equal(hub_hubd_config_load(&cfg, 5, argv, &action, &err), HUB_E_INVALID_ARG);
    snprintf(want, sizeof(want), "%s:2: https_port: 70000 is out of range (allowed 1..65535)",
             path);
    assert_string_equal(err.msg, want);
    hub_hubd_config_free(&cfg);
    unlink(path);
}

static void test_validate_cross_checks(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b, *c, *d;
        const char *want;
    } cases[] = {
        {"--https-port", "8883", NULL, NULL,
         "config: https_port (8883), mqtt_port (8883) and dps_mqtt_port (8884) must differ; each "
         "listener needs its own port"},
        {"--dps-mqtt-port", "443", NULL, NULL,
         "config: https_port (443), mqtt_port (8883) and dps_mqtt_port (443) must differ; each "
         "listener needs its own port"},
        {"--max-connections", "10", "--max-connections-per-ip", "11",
         "config: max_connections_per_ip (11) is above max_connections (10)"},
        {"--tls-cert-file", "/etc/hub/chain.pem", NULL, NULL,
         "config: tls_cert_file is set but tls_key_file is not; set both or neither"},
        {"--tls-key-file", "/etc/hub/key.pem", NULL, NULL,
         "config: tls_key_file is set but tls_cert_file is not; set both or neither"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_config cfg;
        struct hub_err err = {0};
        enum hub_config_action action;
        char *argv[] = {
            "hubd", (char *)cases[i].a, (char *)cases[i].b, (char *)cases[i].c, (char *)cases[i].d,
            NULL};
        int argc = cases[i].c != NULL ? 5 : 3;
        assert_int_equal(hub_hubd_config_load(&cfg, argc, argv, &action, &err), HUB_E_INVALID_ARG);
        assert_string_equal(err.msg, cases[i].want);
        hub_hubd_config_free(&cfg);
    }

    struct hub_config cfg;
    struct hub_err err = {0};
    enum hub_config_action action;
    char *argv[] = {"hubd",           "--tls-cert-file",  "/etc/hub/chain.pem",
                    "--tls-key-file", "/etc/hub/key.pem", NULL};
    assert_int_equal(hub_hubd_config_load(&cfg, 5, argv, &action, &err), 0);
    assert_string_equal(cfg.tls_cert_file, "/etc/hub/chain.pem");
    assert_string_equal(cfg.tls_key_file, "/etc/hub/key.pem");
    hub_hubd_config_free(&cfg);
}

static void test_free_is_safe_on_empty_states(void **state)
{
    (void)state;
    struct hub_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    hub_hubd_config_free(NULL);
    hub_hubd_config_free(&cfg);
    init(&cfg);
    hub_hubd_config_free(&cfg);
    hub_hubd_config_free(&cfg); /* free leaves the zero state */
    assert_null(cfg.data_dir);
}

/* ---- generated text ----------------------------------------------------- */

static void test_help_names_every_option(void **state)
{
    (void)state;
    char *help = capture(hub_hubd_config_help_write);
    char *md = capture(hub_hubd_config_markdown_write);
    size_t n;
    const struct hub_config_option *opts = hub_hubd_config_options(&n);
    for (size_t i = 0; i < n; i++) {
        char flag[80], key[80];
        snprintf(flag, sizeof(flag), "--%s", opts[i].key);
        for (char *p = flag; *p; p++)
            *p = *p == '_' ? '-' : *p;
        snprintf(key, sizeof(key), "| `%s` |", opts[i].key);
        if (strstr(help, flag) == NULL)
            fail_msg("--help lacks %s", flag);
        if (strstr(md, flag) == NULL)
            fail_msg("markdown lacks %s", flag);
        if (!(opts[i].flags & HUB_CONFIG_F_CLI_ONLY) && strstr(md, key) == NULL)
            fail_msg("markdown lacks %s", key);
    }
    /* No help line runs past 79 columns. */
    for (char *line = help; *line != '\0';) {
        size_t len = strcspn(line, "\n");
        if (len > 79)
            fail_msg("long help line: %.*s", (int)len, line);
        line += len + (line[len] == '\n');
    }
    /* Facts come from the table: range, default, unit in human form. */
    unwrap(help);
    assert_non_null(strstr(help, "HTTPS API. [1..65535; default 443]"));
    assert_non_null(strstr(help, "[1024..16777216 bytes; default 262144 (256 KiB)]"));
    assert_non_null(strstr(help, "[weakens security] Honour"));
    assert_non_null(strstr(help, "--log-level LEVEL"));
    assert_non_null(strstr(md, "| 10000 (10 s) | 100..300000 ms |"));
    assert_non_null(strstr(md, "error, warn, info, debug"));
    free(help);
    free(md);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap * 2 + 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t r = fread(buf + len, 1, 4096, f);
        len += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* docs/configuration.md is generated: a table change without regenerating it
 * fails here, and the fresh text is left in the build directory to copy. */
static void test_docs_match_table(void **state)
{
    (void)state;
    const char *src = getenv("HUB_SOURCE_DIR");
    if (src == NULL)
        skip();
    char path[4096];
    snprintf(path, sizeof(path), "%s/docs/configuration.md", src);
    char *want = capture(hub_hubd_config_markdown_write);
    char *have = read_all(path);
    if (have == NULL || strcmp(have, want) != 0) {
        const char *bin = getenv("HUB_BINARY_DIR");
        char out[4096];
        snprintf(out, sizeof(out), "%s/configuration.md", bin != NULL ? bin : "/tmp");
        FILE *f = fopen(out, "w");
        if (f != NULL) {
            fputs(want, f);
            fclose(f);
        }
        fail_msg("%s is out of date: regenerate with `hubd --help-config-markdown > "
                 "docs/configuration.md` or copy %s",
                 path, out);
    }
    free(want);
    free(have);
}

/* The example in the docs must load as written. */
static void test_docs_example_loads(void **state)
{
    (void)state;
    char *md = capture(hub_hubd_config_markdown_write);
    char *start = strstr(md, "## Example\n\n```\n");
    assert_non_null(start);
    start += strlen("## Example\n\n```\n");
    char *end = strstr(start, "```\n");
    assert_non_null(end);
    *end = '\0';
    struct hub_config cfg;
    struct hub_err err = {0};
    char path[64];
    if (load_text(&cfg, start, &err, path) != 0)
        fail_msg("docs example: %s", err.msg);
    assert_string_equal(cfg.data_dir, "/var/lib/hubd");
    assert_int_equal(cfg.hostname_count, 2);
    assert_int_equal(hub_hubd_config_validate(&cfg, &err), 0);
    hub_hubd_config_free(&cfg);
    free(md);
}

/* ---- startup log -------------------------------------------------------- */

static size_t log_of(const struct hub_config *cfg, char *buf, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    hub_log_fd_set(fds[1]);
    hub_hubd_config_log(cfg);
    hub_log_fd_set(2);
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    close(fds[0]);
    buf[n] = '\0';
    return n;
}

static void test_startup_log_warns_on_insecure_options(void **state)
{
    (void)state;
    struct hub_config cfg;
    init(&cfg);
    char buf[8192];
    log_of(&cfg, buf, sizeof(buf));
    assert_non_null(strstr(buf, "level=info event=config config=\"\" data_dir=./hubd-data "));
    assert_non_null(strstr(buf, " https_port=443 "));
    assert_non_null(strstr(buf, " allow_verify_on_upload=false\n"));
    assert_null(strstr(buf, "config_insecure"));

    cfg.allow_verify_on_upload = true;
    log_of(&cfg, buf, sizeof(buf));
    assert_non_null(strstr(buf, "level=warn event=config_insecure key=allow_verify_on_upload "
                                "value=true detail="));
    hub_hubd_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_rows_are_complete),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_argv_each_type),
        cmocka_unit_test(test_argv_bool_forms),
        cmocka_unit_test(test_argv_repeated_hostname),
        cmocka_unit_test(test_argv_too_many_hostnames),
        cmocka_unit_test(test_argv_errors),
        cmocka_unit_test(test_argv_actions),
        cmocka_unit_test(test_file_parsing),
        cmocka_unit_test(test_file_unknown_key_names_file_and_line),
        cmocka_unit_test(test_file_out_of_range_gives_range),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_unreadable_and_binary),
        cmocka_unit_test(test_cli_overrides_file),
        cmocka_unit_test(test_file_value_checked_even_when_cli_wins),
        cmocka_unit_test(test_validate_cross_checks),
        cmocka_unit_test(test_free_is_safe_on_empty_states),
        cmocka_unit_test(test_help_names_every_option),
        cmocka_unit_test(test_docs_match_table),
        cmocka_unit_test(test_docs_example_loads),
        cmocka_unit_test(test_startup_log_warns_on_insecure_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
