/*
 * Connection strings: parse (table), format, round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"

#define K32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" /* one '=' of padding */
#define K16 "AAECAwQFBgcICQoLDA0ODw=="                     /* two '=' of padding */
#define K15 "AAECAwQFBgcICQoLDA0O"                         /* 15 bytes: too short */

struct cs_case {
    const char *name;
    const char *text;
    int rc;
    const char *msg_part; /* on failure */
    /* on success */
    enum hub_auth_connstr_kind kind;
    const char *host, *device, *module, *key_name, *key, *gateway;
    int x509;
};

/* A refusal: only the code and a word of the message matter. */
#define FAIL(name, text, rc, msg)                                                                  \
    {                                                                                              \
        name, text, rc, msg, HUB_AUTH_CONNSTR_SERVICE, NULL, NULL, NULL, NULL, NULL, NULL, 0       \
    }

static void test_parse_table(void **state)
{
    (void)state;
    static const struct cs_case cases[] = {
        {"service (portal form)",
         "HostName=hub.example;SharedAccessKeyName=iothubowner;SharedAccessKey=" K32, 0, NULL,
         HUB_AUTH_CONNSTR_SERVICE, "hub.example", "", "", "iothubowner", K32, "", 0},
        {"device, '==' padding kept", "HostName=localhost;DeviceId=dev1;SharedAccessKey=" K16, 0,
         NULL, HUB_AUTH_CONNSTR_DEVICE, "localhost", "dev1", "", "", K16, "", 0},
        {"any order, trailing ';'", "SharedAccessKey=" K16 ";DeviceId=dev1;HostName=localhost;", 0,
         NULL, HUB_AUTH_CONNSTR_DEVICE, "localhost", "dev1", "", "", K16, "", 0},
        {"module", "HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=" K32, 0, NULL,
         HUB_AUTH_CONNSTR_MODULE, "h", "d", "m", "", K32, "", 0},
        {"x509 device (reference §8)", "HostName=localhost;DeviceId=dev1;x509=true", 0, NULL,
         HUB_AUTH_CONNSTR_DEVICE, "localhost", "dev1", "", "", "", "", 1},
        {"x509 TRUE", "HostName=localhost;DeviceId=dev1;x509=TRUE", 0, NULL,
         HUB_AUTH_CONNSTR_DEVICE, "localhost", "dev1", "", "", "", "", 1},
        {"gateway with port",
         "HostName=localhost;DeviceId=dev1;SharedAccessKey=" K32 ";GatewayHostName=localhost:18884",
         0, NULL, HUB_AUTH_CONNSTR_DEVICE, "localhost", "dev1", "", "", K32, "localhost:18884", 0},
        {"device signed by a policy",
         "HostName=h;DeviceId=d;SharedAccessKeyName=device;SharedAccessKey=" K32, 0, NULL,
         HUB_AUTH_CONNSTR_DEVICE, "h", "d", "", "device", K32, "", 0},
        {"'=' inside a value", "HostName=h;DeviceId=a=b;SharedAccessKey=" K32, 0, NULL,
         HUB_AUTH_CONNSTR_DEVICE, "h", "a=b", "", "", K32, "", 0},
        {"x509=false with a key", "HostName=h;DeviceId=d;x509=false;SharedAccessKey=" K32, 0, NULL,
         HUB_AUTH_CONNSTR_DEVICE, "h", "d", "", "", K32, "", 0},

        FAIL("empty", "", HUB_E_PARSE, "empty connection string"),
        FAIL("only ';'", ";", HUB_E_PARSE, "empty segment"),
        FAIL("leading ';'", ";HostName=h;DeviceId=d;x509=true", HUB_E_PARSE, "empty segment"),
        FAIL("double ';'", "HostName=h;;DeviceId=d;x509=true", HUB_E_PARSE, "empty segment"),
        FAIL("two trailing ';'", "HostName=h;DeviceId=d;x509=true;;", HUB_E_PARSE, "empty segment"),
        FAIL("no '='", "HostName=h;DeviceId;x509=true", HUB_E_PARSE, "no '='"),
        FAIL("empty key", "HostName=h;=d;x509=true", HUB_E_PARSE, "empty key"),
        FAIL("empty value", "HostName=h;DeviceId=d;SharedAccessKey=", HUB_E_PARSE,
             "empty value for 'SharedAccessKey'"),
        FAIL("empty HostName", "HostName=;DeviceId=d;x509=true", HUB_E_PARSE, "empty value"),
        FAIL("duplicate HostName", "HostName=a;HostName=b;DeviceId=d;x509=true", HUB_E_PARSE,
             "duplicate key 'HostName'"),
        FAIL("duplicate key", "HostName=h;DeviceId=d;SharedAccessKey=" K32 ";SharedAccessKey=" K16,
             HUB_E_PARSE, "duplicate key 'SharedAccessKey'"),
        FAIL("wrong case key", "Hostname=h;DeviceId=d;x509=true", HUB_E_PARSE,
             "did you mean 'HostName'"),
        FAIL("unknown key", "HostName=h;DeviceId=d;x509=true;Foo=bar", HUB_E_PARSE,
             "unknown key 'Foo'"),
        FAIL("SAS connection string",
             "HostName=h;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=x", HUB_E_PARSE,
             "not supported"),
        FAIL("missing HostName", "DeviceId=d;x509=true", HUB_E_PARSE, "no HostName"),
        FAIL("service without key", "HostName=h;SharedAccessKeyName=iothubowner", HUB_E_PARSE,
             "SharedAccessKeyName and SharedAccessKey"),
        FAIL("service without key name", "HostName=h;SharedAccessKey=" K32, HUB_E_PARSE,
             "SharedAccessKeyName and SharedAccessKey"),
        FAIL("host only", "HostName=h", HUB_E_PARSE, "service connection string"),
        FAIL("device without credentials", "HostName=h;DeviceId=d", HUB_E_PARSE,
             "SharedAccessKey or x509=true"),
        FAIL("x509 and key", "HostName=h;DeviceId=d;x509=true;SharedAccessKey=" K32, HUB_E_PARSE,
             "exclusive"),
        FAIL("key name without key", "HostName=h;DeviceId=d;x509=true;SharedAccessKeyName=p",
             HUB_E_PARSE, "SharedAccessKeyName without SharedAccessKey"),
        FAIL("ModuleId without DeviceId",
             "HostName=h;ModuleId=m;SharedAccessKeyName=p;SharedAccessKey=" K32, HUB_E_PARSE,
             "ModuleId without DeviceId"),
        FAIL("gateway on a service string",
             "HostName=h;SharedAccessKeyName=p;SharedAccessKey=" K32 ";GatewayHostName=g",
             HUB_E_PARSE, "GatewayHostName"),
        FAIL("x509 garbage", "HostName=h;DeviceId=d;x509=yes", HUB_E_PARSE, "true or false"),
        FAIL("key not base64", "HostName=h;DeviceId=d;SharedAccessKey=abc$", HUB_E_PARSE,
             "SharedAccessKey"),
        FAIL("key missing its padding",
             "HostName=h;DeviceId=d;SharedAccessKey=AAECAwQFBgcICQoLDA0ODw", HUB_E_PARSE, "base64"),
        FAIL("key too short", "HostName=h;DeviceId=d;SharedAccessKey=" K15, HUB_E_PARSE,
             "15 bytes"),
        FAIL("control byte", "HostName=h\n;DeviceId=d;x509=true", HUB_E_PARSE, "0x0a"),
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct cs_case *c = &cases[i];
        struct hub_auth_connstr cs;
        struct hub_err err = {0};
        int rc = hub_auth_connstr_parse(c->text, strlen(c->text), &cs, &err);
        if (rc != c->rc)
            fail_msg("case '%s': rc %d want %d (%s)", c->name, rc, c->rc, err.msg);
        if (rc != 0) {
            if (strstr(err.msg, c->msg_part) == NULL)
                fail_msg("case '%s': message '%s' lacks '%s'", c->name, err.msg, c->msg_part);
            continue;
        }
        assert_int_equal(cs.kind, c->kind);
        assert_string_equal(cs.host_name, c->host);
        assert_string_equal(cs.device_id, c->device);
        assert_string_equal(cs.module_id, c->module);
        assert_string_equal(cs.key_name, c->key_name);
        assert_string_equal(cs.key, c->key);
        assert_string_equal(cs.gateway_host_name, c->gateway);
        assert_int_equal(cs.x509, c->x509);

        /* Format, parse again: same fields. */
        char out[HUB_AUTH_CONNSTR_MAX + 1];
        assert_int_equal(hub_auth_connstr_format(&cs, out, sizeof(out), &err), 0);
        struct hub_auth_connstr again;
        assert_int_equal(hub_auth_connstr_parse(out, strlen(out), &again, &err), 0);
        assert_memory_equal(&cs, &again, sizeof(cs));
    }
}

static void test_parse_limits(void **state)
{
    (void)state;
    char text[2 * HUB_AUTH_CONNSTR_MAX];
    struct hub_auth_connstr cs;
    struct hub_err err = {0};

    /* HostName at its limit and one over. */
    for (int extra = 0; extra <= 1; extra++) {
        char host[HUB_AUTH_HOST_MAX + 2];
        memset(host, 'h', sizeof(host));
        host[HUB_AUTH_HOST_MAX + extra] = '\0';
        snprintf(text, sizeof(text), "HostName=%s;DeviceId=d;x509=true", host);
        int rc = hub_auth_connstr_parse(text, strlen(text), &cs, &err);
        assert_int_equal(rc, extra ? HUB_E_TOO_LARGE : 0);
        if (extra)
            assert_non_null(strstr(err.msg, "HostName"));
    }
    /* Device id one over. */
    char id[HUB_AUTH_ID_MAX + 2];
    memset(id, 'd', sizeof(id));
    id[HUB_AUTH_ID_MAX + 1] = '\0';
    snprintf(text, sizeof(text), "HostName=h;DeviceId=%s;x509=true", id);
    assert_int_equal(hub_auth_connstr_parse(text, strlen(text), &cs, &err), HUB_E_TOO_LARGE);

    /* The whole string over the cap. */
    memset(text, 'x', sizeof(text));
    assert_int_equal(hub_auth_connstr_parse(text, HUB_AUTH_CONNSTR_MAX + 1, &cs, &err),
                     HUB_E_TOO_LARGE);

    /* len is honoured; NUL inside is a control byte. */
    const char *t = "HostName=h;DeviceId=d;x509=true;Junk";
    assert_int_equal(hub_auth_connstr_parse(t, strlen(t) - 5, &cs, &err), 0);
    const char nul[] = "HostName=h\0;DeviceId=d;x509=true";
    assert_int_equal(hub_auth_connstr_parse(nul, sizeof(nul) - 1, &cs, &err), HUB_E_PARSE);
    assert_int_equal(hub_auth_connstr_parse(NULL, 0, &cs, &err), HUB_E_INVALID_ARG);

    /* A pasted key never appears in a message: without '=' it is reported by
     * offset, and with its padding '=' it looks like an unknown key. */
    const char *leaks[] = {"HostName=h;AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
                           ("HostName=h;" K32), "HostName=h;AAECAwQFBgcICQoLDA0ODw=="};
    for (size_t i = 0; i < sizeof(leaks) / sizeof(leaks[0]); i++) {
        assert_int_equal(hub_auth_connstr_parse(leaks[i], strlen(leaks[i]), &cs, &err),
                         HUB_E_PARSE);
        assert_null(strstr(err.msg, "AAECAw"));
    }
}

static void test_format(void **state)
{
    (void)state;
    struct hub_auth_connstr cs;
    char out[HUB_AUTH_CONNSTR_MAX + 1];
    struct hub_err err = {0};

    memset(&cs, 0, sizeof(cs));
    cs.kind = HUB_AUTH_CONNSTR_MODULE;
    strcpy(cs.host_name, "localhost");
    strcpy(cs.device_id, "dev1");
    strcpy(cs.module_id, "m1");
    strcpy(cs.key, K16);
    strcpy(cs.gateway_host_name, "localhost:18884");
    assert_int_equal(hub_auth_connstr_format(&cs, out, sizeof(out), &err), 0);
    assert_string_equal(out, "HostName=localhost;DeviceId=dev1;ModuleId=m1;SharedAccessKey=" K16
                             ";GatewayHostName=localhost:18884");

    memset(&cs, 0, sizeof(cs));
    cs.kind = HUB_AUTH_CONNSTR_SERVICE;
    strcpy(cs.host_name, "localhost");
    strcpy(cs.key_name, "iothubowner");
    strcpy(cs.key, K32);
    assert_int_equal(hub_auth_connstr_format(&cs, out, sizeof(out), &err), 0);
    assert_string_equal(out,
                        "HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=" K32);

    /* Buffer exactly big enough, then one byte short. */
    size_t need = strlen(out) + 1;
    assert_int_equal(hub_auth_connstr_format(&cs, out, need, &err), 0);
    assert_int_equal(hub_auth_connstr_format(&cs, out, need - 1, &err), HUB_E_TOO_LARGE);

    /* Kind must match the fields. */
    cs.kind = HUB_AUTH_CONNSTR_DEVICE;
    assert_int_equal(hub_auth_connstr_format(&cs, out, sizeof(out), &err), HUB_E_INVALID_ARG);
    cs.kind = HUB_AUTH_CONNSTR_SERVICE;

    /* ';' cannot be represented. */
    strcpy(cs.key_name, "a;b");
    assert_int_equal(hub_auth_connstr_format(&cs, out, sizeof(out), &err), HUB_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "';'"));

    /* Invalid combinations are refused with the parser's reason. */
    memset(&cs, 0, sizeof(cs));
    cs.kind = HUB_AUTH_CONNSTR_DEVICE;
    strcpy(cs.host_name, "h");
    strcpy(cs.device_id, "d");
    assert_int_equal(hub_auth_connstr_format(&cs, out, sizeof(out), &err), HUB_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "x509"));
    cs.x509 = 1;
    assert_int_equal(hub_auth_connstr_format(&cs, out, sizeof(out), &err), 0);
    assert_string_equal(out, "HostName=h;DeviceId=d;x509=true");
    strcpy(cs.key, "short==");
    assert_int_equal(hub_auth_connstr_format(&cs, out, sizeof(out), &err), HUB_E_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
