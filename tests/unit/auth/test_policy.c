/*
 * Shared access policies, permissions and keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "auth/auth.h"

#define K32  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define K32B "HyYtNDtCSVBXXmVsc3qBiI+WnaSrsrnAx87V3OPq8fg="

static void test_default_set(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        unsigned perms;
        const char *rights;
    } want[] = {
        {"iothubowner", HUB_AUTH_PERM_ALL,
         "RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect"},
        {"registryRead", HUB_AUTH_PERM_REGISTRY_READ, "RegistryRead"},
        {"registryReadWrite", HUB_AUTH_PERM_REGISTRY_READ | HUB_AUTH_PERM_REGISTRY_WRITE,
         "RegistryRead, RegistryWrite"},
        {"serviceConnect", HUB_AUTH_PERM_SERVICE_CONNECT, "ServiceConnect"},
        {"deviceConnect", HUB_AUTH_PERM_DEVICE_CONNECT, "DeviceConnect"},
    };
    struct hub_auth_policy_set a, b;
    struct hub_err err = {0};
    assert_int_equal(hub_auth_policy_set_init_default(&a, &err), 0);
    assert_int_equal(hub_auth_policy_set_init_default(&b, &err), 0);
    assert_int_equal(a.count, 5);
    for (size_t i = 0; i < 5; i++) {
        const struct hub_auth_policy *p = &a.items[i];
        assert_string_equal(p->name, want[i].name);
        assert_int_equal(p->perms, want[i].perms);
        char rights[HUB_AUTH_PERMS_TEXT_MAX];
        assert_int_equal(hub_auth_perms_format(p->perms, rights, &err), 0);
        assert_string_equal(rights, want[i].rights);
        /* Keys: base64 of exactly 32 bytes, valid per the layer's own rule. */
        const char *keys[2] = {p->primary_key, p->secondary_key};
        for (int k = 0; k < 2; k++) {
            assert_int_equal(strlen(keys[k]), 44);
            unsigned char raw[48];
            assert_int_equal(EVP_DecodeBlock(raw, (const unsigned char *)keys[k], 44), 33);
            assert_int_equal(keys[k][43], '=');
            assert_int_equal(hub_auth_key_validate(keys[k], &err), 0);
        }
        assert_string_not_equal(p->primary_key, p->secondary_key);
        /* A second set never shares a key with the first. */
        assert_string_not_equal(p->primary_key, b.items[i].primary_key);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(p->primary_key, a.items[j].primary_key);
        assert_ptr_equal(hub_auth_policy_set_find0(&a, want[i].name), p);
    }
    assert_int_equal(hub_auth_policy_set_init_default(NULL, &err), HUB_E_INVALID_ARG);
}

/* The provisioning service's set holds DPS rights only, and none of its
 * policies can pass a hub permission check (nor the reverse). */
static void test_default_dps_set(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *rights;
    } want[] = {
        {"provisioningserviceowner", "ServiceConfig, EnrollmentRead, EnrollmentWrite, "
                                     "RegistrationStatusRead, RegistrationStatusWrite"},
        {"enrollmentRead", "EnrollmentRead, RegistrationStatusRead"},
        {"enrollmentReadWrite",
         "EnrollmentRead, EnrollmentWrite, RegistrationStatusRead, RegistrationStatusWrite"},
    };
    struct hub_auth_policy_set dps, hub;
    struct hub_err err = {0};
    assert_int_equal(hub_auth_policy_set_init_default_dps(&dps, &err), 0);
    assert_int_equal(hub_auth_policy_set_init_default(&hub, &err), 0);
    assert_int_equal(dps.count, 3);
    for (size_t i = 0; i < dps.count; i++) {
        const struct hub_auth_policy *p = &dps.items[i];
        char rights[HUB_AUTH_PERMS_TEXT_MAX];
        assert_string_equal(p->name, want[i].name);
        assert_int_equal(hub_auth_perms_format(p->perms, rights, &err), 0);
        assert_string_equal(rights, want[i].rights);
        assert_int_equal(p->perms & ~hub_auth_service_perms(HUB_AUTH_SERVICE_DPS), 0);
        assert_int_equal(hub_auth_policy_check(p, HUB_AUTH_PERM_REGISTRY_READ, &err),
                         HUB_E_FORBIDDEN);
        assert_null(hub_auth_policy_set_find0(&hub, p->name));
    }
    for (size_t i = 0; i < hub.count; i++)
        assert_int_equal(
            hub_auth_policy_check(&hub.items[i], HUB_AUTH_PERM_DPS_ENROLLMENT_READ, &err),
            HUB_E_FORBIDDEN);
}

static void test_find(void **state)
{
    (void)state;
    struct hub_auth_policy_set set;
    memset(&set, 0, sizeof(set));
    assert_null(hub_auth_policy_set_find0(&set, "iothubowner"));
    assert_int_equal(
        hub_auth_policy_set_add(&set, "iothubowner", HUB_AUTH_PERM_ALL, K32, K32B, NULL), 0);
    assert_non_null(hub_auth_policy_set_find0(&set, "iothubowner"));
    assert_null(hub_auth_policy_set_find0(&set, "IoTHubOwner"));
    assert_null(hub_auth_policy_set_find0(&set, "iothubowne"));
    assert_null(hub_auth_policy_set_find0(&set, "iothubowner "));
    assert_null(hub_auth_policy_set_find0(&set, ""));
    assert_null(hub_auth_policy_set_find0(NULL, "iothubowner"));
    assert_null(hub_auth_policy_set_find0(&set, NULL));
}

struct add_case {
    const char *name;
    const char *policy;
    unsigned perms;
    const char *primary, *secondary;
    int rc;
};

static void test_add_table(void **state)
{
    (void)state;
    char long_name[HUB_AUTH_NAME_MAX + 2], max_name[HUB_AUTH_NAME_MAX + 1];
    memset(long_name, 'p', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    memset(max_name, 'p', sizeof(max_name) - 1);
    max_name[sizeof(max_name) - 1] = '\0';
    const struct add_case cases[] = {
        {"plain", "svc-1.a_b", HUB_AUTH_PERM_SERVICE_CONNECT, K32, K32B, 0},
        {"max name", max_name, HUB_AUTH_PERM_REGISTRY_READ, K32, K32B, 0},
        {"same keys allowed", "twins", HUB_AUTH_PERM_REGISTRY_READ, K32, K32, 0},
        {"duplicate name", "svc-1.a_b", HUB_AUTH_PERM_REGISTRY_READ, K32, K32B, HUB_E_EXISTS},
        {"name too long", long_name, HUB_AUTH_PERM_REGISTRY_READ, K32, K32B, HUB_E_INVALID_ARG},
        {"empty name", "", HUB_AUTH_PERM_REGISTRY_READ, K32, K32B, HUB_E_INVALID_ARG},
        {"space in name", "my policy", HUB_AUTH_PERM_REGISTRY_READ, K32, K32B, HUB_E_INVALID_ARG},
        {"'&' in name", "a&b", HUB_AUTH_PERM_REGISTRY_READ, K32, K32B, HUB_E_INVALID_ARG},
        {"no permissions", "none", 0, K32, K32B, HUB_E_INVALID_ARG},
        {"unknown permission bit", "odd", 0x200, K32, K32B, HUB_E_INVALID_ARG},
        {"DPS rights only", "dpsowner", HUB_AUTH_PERM_DPS_ALL, K32, K32B, 0},
        {"hub and DPS rights mixed", "both",
         HUB_AUTH_PERM_REGISTRY_READ | HUB_AUTH_PERM_DPS_ENROLLMENT_READ, K32, K32B,
         HUB_E_INVALID_ARG},
        {"bad primary", "k1", HUB_AUTH_PERM_REGISTRY_READ, "abc", K32B, HUB_E_INVALID_ARG},
        {"missing secondary", "k2", HUB_AUTH_PERM_REGISTRY_READ, K32, NULL, HUB_E_INVALID_ARG},
        {"short key", "k3", HUB_AUTH_PERM_REGISTRY_READ, K32, "AAECAwQFBgcICQoLDA0O",
         HUB_E_INVALID_ARG},
    };
    struct hub_auth_policy_set set;
    memset(&set, 0, sizeof(set));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct add_case *c = &cases[i];
        size_t before = set.count;
        struct hub_err err = {0};
        int rc = hub_auth_policy_set_add(&set, c->policy, c->perms, c->primary, c->secondary, &err);
        if (rc != c->rc)
            fail_msg("case '%s': rc %d want %d (%s)", c->name, rc, c->rc, err.msg);
        assert_int_equal(set.count, before + (rc == 0));
        if (rc == 0) {
            const struct hub_auth_policy *p = hub_auth_policy_set_find0(&set, c->policy);
            assert_non_null(p);
            assert_int_equal(p->perms, c->perms);
            assert_string_equal(p->primary_key, c->primary);
            assert_string_equal(p->secondary_key, c->secondary);
        }
    }

    /* The set holds HUB_AUTH_POLICY_SET_MAX policies, then refuses. */
    struct hub_err err = {0};
    for (size_t i = set.count; i < HUB_AUTH_POLICY_SET_MAX; i++) {
        char name[16];
        snprintf(name, sizeof(name), "p%zu", i);
        assert_int_equal(
            hub_auth_policy_set_add(&set, name, HUB_AUTH_PERM_REGISTRY_READ, K32, K32B, &err), 0);
    }
    assert_int_equal(
        hub_auth_policy_set_add(&set, "onemore", HUB_AUTH_PERM_REGISTRY_READ, K32, K32B, &err),
        HUB_E_LIMIT);
    assert_int_equal(set.count, HUB_AUTH_POLICY_SET_MAX);
}

static void test_perms_text(void **state)
{
    (void)state;
    char out[HUB_AUTH_PERMS_TEXT_MAX];
    struct hub_err err = {0};
    assert_int_equal(hub_auth_perms_format(0, out, &err), 0);
    assert_string_equal(out, "");
    assert_int_equal(hub_auth_perms_format(HUB_AUTH_PERM_DEVICE_CONNECT, out, &err), 0);
    assert_string_equal(out, "DeviceConnect");
    assert_int_equal(hub_auth_perms_format(0x200, out, &err), HUB_E_INVALID_ARG);
    assert_int_equal(hub_auth_perms_format(HUB_AUTH_PERM_DPS_ALL, out, &err), 0);
    assert_string_equal(out, "ServiceConfig, EnrollmentRead, EnrollmentWrite, "
                             "RegistrationStatusRead, RegistrationStatusWrite");

    /* Every combination survives format -> parse. */
    for (unsigned p = 1; p <= HUB_AUTH_PERM_KNOWN; p++) {
        unsigned back = 0;
        assert_int_equal(hub_auth_perms_format(p, out, &err), 0);
        assert_int_equal(hub_auth_perms_parse(out, strlen(out), &back, &err), 0);
        assert_int_equal(back, p);
    }

    static const struct {
        const char *text;
        int rc;
        unsigned perms;
    } cases[] = {
        {"RegistryRead, RegistryWrite", 0, 3},
        {"registryread serviceconnect", 0, 5},     /* az CLI style, any case */
        {" DeviceConnect ,RegistryWrite,", 0, 10}, /* stray separators */
        {"", HUB_E_PARSE, 0},
        {" , ,", HUB_E_PARSE, 0},
        {"RegistryRead, RegistryRead", HUB_E_PARSE, 0}, /* duplicate */
        {"RegistryReadWrite", HUB_E_PARSE, 0},          /* a policy name, not a right */
        {"Registry Read", HUB_E_PARSE, 0},
        {"RegistryRead;ServiceConnect", HUB_E_PARSE, 0},
        {"enrollmentread, RegistrationStatusRead", 0, 0xa0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned perms = 0xdead;
        int rc = hub_auth_perms_parse(cases[i].text, strlen(cases[i].text), &perms, &err);
        if (rc != cases[i].rc)
            fail_msg("'%s': rc %d want %d (%s)", cases[i].text, rc, cases[i].rc, err.msg);
        if (rc == 0)
            assert_int_equal(perms, cases[i].perms);
        else
            assert_int_equal(perms, 0xdead); /* untouched on error */
    }
}

static void test_policy_check(void **state)
{
    (void)state;
    struct hub_auth_policy_set set;
    struct hub_err err = {0};
    assert_int_equal(hub_auth_policy_set_init_default(&set, &err), 0);
    const struct hub_auth_policy *owner = hub_auth_policy_set_find0(&set, "iothubowner");
    const struct hub_auth_policy *rr = hub_auth_policy_set_find0(&set, "registryRead");
    const struct hub_auth_policy *rrw = hub_auth_policy_set_find0(&set, "registryReadWrite");
    const struct hub_auth_policy *svc = hub_auth_policy_set_find0(&set, "serviceConnect");
    const struct hub_auth_policy *dev = hub_auth_policy_set_find0(&set, "deviceConnect");
    assert_non_null(owner);
    assert_non_null(rr);
    assert_non_null(rrw);
    assert_non_null(svc);
    assert_non_null(dev);

    assert_int_equal(hub_auth_policy_check(owner, HUB_AUTH_PERM_ALL, &err), 0);
    assert_int_equal(hub_auth_policy_check(rr, HUB_AUTH_PERM_REGISTRY_READ, &err), 0);
    assert_int_equal(hub_auth_policy_check(rr, 0, &err), 0);
    assert_int_equal(hub_auth_policy_check(rr, HUB_AUTH_PERM_REGISTRY_WRITE, &err),
                     HUB_E_FORBIDDEN);
    assert_non_null(strstr(err.msg, "registryRead"));
    assert_non_null(strstr(err.msg, "RegistryWrite"));
    assert_int_equal(hub_auth_policy_check(
                         rrw, HUB_AUTH_PERM_REGISTRY_READ | HUB_AUTH_PERM_REGISTRY_WRITE, &err),
                     0);
    assert_int_equal(hub_auth_policy_check(svc, HUB_AUTH_PERM_REGISTRY_READ, &err),
                     HUB_E_FORBIDDEN);
    assert_int_equal(hub_auth_policy_check(dev, HUB_AUTH_PERM_SERVICE_CONNECT, &err),
                     HUB_E_FORBIDDEN);
    assert_int_equal(hub_auth_policy_check(dev, HUB_AUTH_PERM_DEVICE_CONNECT, &err), 0);
    assert_int_equal(hub_auth_policy_check(NULL, 0, &err), HUB_E_INVALID_ARG);
}

static void test_keys(void **state)
{
    (void)state;
    struct hub_err err = {0};
    static const struct {
        const char *b64;
        int rc;
    } cases[] = {
        {"AAECAwQFBgcICQoLDA0ODw==", 0}, /* 16 bytes */
        {K32, 0},
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
         0},                                         /* 64 bytes */
        {"AAECAwQFBgcICQoLDA0O", HUB_E_INVALID_ARG}, /* 15 bytes */
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0A=",
         HUB_E_INVALID_ARG},                           /* 65 bytes */
        {"AAECAwQFBgcICQoLDA0ODw", HUB_E_INVALID_ARG}, /* padding stripped */
        {"AAECAwQFBgcICQoLDA0OD w==", HUB_E_INVALID_ARG},
        {"", HUB_E_INVALID_ARG},
        {NULL, HUB_E_INVALID_ARG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = hub_auth_key_validate(cases[i].b64, &err);
        if (rc != cases[i].rc)
            fail_msg("key %zu: rc %d want %d (%s)", i, rc, cases[i].rc, err.msg);
    }
    char a[HUB_AUTH_KEY_B64_MAX + 1], b[HUB_AUTH_KEY_B64_MAX + 1];
    assert_int_equal(hub_auth_key_generate(a, &err), 0);
    assert_int_equal(hub_auth_key_generate(b, &err), 0);
    assert_int_equal(strlen(a), 44);
    assert_string_not_equal(a, b);
    assert_int_equal(hub_auth_key_validate(a, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_set), cmocka_unit_test(test_default_dps_set),
        cmocka_unit_test(test_find),        cmocka_unit_test(test_add_table),
        cmocka_unit_test(test_perms_text),  cmocka_unit_test(test_policy_check),
        cmocka_unit_test(test_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
