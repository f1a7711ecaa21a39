/* The provisioning service's ID scope file: made once, then read back
 * unchanged, 0600; a file that does not hold a scope stops the start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hubd/id_scope_file.h"

static void scratch_path(char *out, size_t cap)
{
    snprintf(out, cap, "%s/hubd-scope-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    unlink(out);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_made_once_then_kept(void **state)
{
    (void)state;
    char path[256], first[HUB_DPS_ID_SCOPE_SIZE], again[HUB_DPS_ID_SCOPE_SIZE];
    scratch_path(path, sizeof(path));
    int created = 0;
    struct hub_err err = {0};
    assert_int_equal(hub_id_scope_file_load_or_create(path, first, &created, &err), 0);
    assert_int_equal(created, 1);
    assert_int_equal(strlen(first), 11);
    assert_memory_equal(first, "0ne", 3);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(hub_id_scope_file_load_or_create(path, again, &created, &err), 0);
    assert_int_equal(created, 0);
    assert_string_equal(again, first);
    unlink(path);

    /* Another data dir gets another scope. */
    assert_int_equal(hub_id_scope_file_load_or_create(path, again, &created, &err), 0);
    assert_string_not_equal(again, first);
    unlink(path);
}

static void test_bad_content_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
    } cases[] = {
        {"0ne0000ABCD\n", 0},
        {"0ne0000abcd", 0}, /* typed by hand, lower case, no newline: loads as 0ne0000ABCD */
        {"", HUB_E_PARSE},
        {"0ne0000ABC\n", HUB_E_PARSE},   /* 7 digits */
        {"0ne0000ABCDE\n", HUB_E_PARSE}, /* 9 digits */
        {"1ne0000ABCD\n", HUB_E_PARSE},
        {"0ne0000ABCG\n", HUB_E_PARSE},
        {"0ne0000 ABC\n", HUB_E_PARSE},
    };
    char path[256];
    scratch_path(path, sizeof(path));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(path, cases[i].text);
        char scope[HUB_DPS_ID_SCOPE_SIZE] = "";
        int created = 1;
        struct hub_err err = {0};
        int rc = hub_id_scope_file_load_or_create(path, scope, &created, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu '%s': rc %d want %d (%s)", i, cases[i].text, rc, cases[i].rc,
                     err.msg);
        assert_int_equal(created, 0);
        if (rc == 0)
            assert_string_equal(scope, "0ne0000ABCD");
        else
            assert_non_null(strstr(err.msg, path));
    }
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_made_once_then_kept),
        cmocka_unit_test(test_bad_content_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
