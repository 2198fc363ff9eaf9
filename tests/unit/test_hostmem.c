/*
 * test_hostmem.c - the memory of failing MX hosts per destination (deliver/hostmem.h): order,
 * rotation, forgetting on success and after HOSTMEM_HOLD, bounds; and, with dns_mx_demote, the
 * order attempts to a destination whose hosts fail actually take.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deliver/hostmem.h"
#include "dns/dns.h"

/* failing - dest's remembered hosts at now, joined with spaces (static buffer: tests only). */
static const char *failing(hostmem *m, const char *dest, int64_t now)
{
    static char buf[512];
    strvec v = {0};
    hostmem_failing(m, dest, now, &v);
    buf[0] = '\0';
    for (size_t i = 0; i < v.n; i++) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "", v.v[i]);
    sv_free(&v);
    return buf;
}

static void test_order_and_forgetting(void **state)
{
    (void)state;
    hostmem *m = hostmem_new();
    assert_string_equal(failing(m, "tcp_local d.test", 100), "");
    hostmem_failed(m, "tcp_local d.test", "a.d.test", 100);
    hostmem_failed(m, "tcp_local d.test", "b.d.test", 101);
    assert_string_equal(failing(m, "tcp_local d.test", 102), "a.d.test b.d.test");
    hostmem_failed(m, "tcp_local d.test", "A.D.TEST", 103); /* known (case-insensitive): keeps its place */
    assert_string_equal(failing(m, "tcp_local d.test", 104), "a.d.test b.d.test");
    hostmem_to_back(m, "tcp_local d.test", "a.d.test");
    assert_string_equal(failing(m, "tcp_local d.test", 104), "b.d.test a.d.test");
    assert_string_equal(failing(m, "tcp_other d.test", 104), ""); /* another channel, another destination */
    hostmem_ok(m, "tcp_local d.test", "b.d.test");
    assert_string_equal(failing(m, "tcp_local d.test", 104), "a.d.test");
    /* a was last seen failing at 103: remembered until 103 + HOSTMEM_HOLD */
    assert_string_equal(failing(m, "tcp_local d.test", 103 + HOSTMEM_HOLD - 1), "a.d.test");
    assert_string_equal(failing(m, "tcp_local d.test", 103 + HOSTMEM_HOLD), "");
    hostmem_ok(m, "tcp_local d.test", "a.d.test"); /* nothing to forget: harmless */
    hostmem_to_back(m, "tcp_local none.test", "x");
    hostmem_free(m);
    hostmem_free(NULL);
}

static void test_bounds(void **state)
{
    (void)state;
    hostmem *m = hostmem_new();
    char name[64];
    for (int i = 0; i <= HOSTMEM_HOSTS; i++) { /* one host too many: the first in line goes */
        snprintf(name, sizeof name, "h%02d", i);
        hostmem_failed(m, "d", name, 10);
    }
    const char *got = failing(m, "d", 11);
    assert_int_equal(strncmp(got, "h01 ", 4), 0);
    assert_non_null(strstr(got, " h16"));
    assert_null(strstr(got, "h00"));
    /* HOSTMEM_DESTS destinations, "d" the one failed least recently: the next one evicts it */
    for (int i = 1; i < HOSTMEM_DESTS; i++) {
        snprintf(name, sizeof name, "dest%d", i);
        hostmem_failed(m, name, "mx", 20 + i);
    }
    assert_string_not_equal(failing(m, "d", 11), "");
    hostmem_failed(m, "newest", "mx", 5000);
    assert_string_equal(failing(m, "d", 11), "");
    assert_string_equal(failing(m, "dest1", 30), "mx");
    assert_string_equal(failing(m, "newest", 30), "mx");
    hostmem_free(m);
}

/* attempt - one delivery attempt to dest's MX hosts (all of preference 10) where the hosts in
 * down fail: the host tried first is returned; memory is updated as smtp_out does. */
static char attempt(hostmem *m, const char *down, int64_t now)
{
    static const char *const names[] = {"a", "b", "c"};
    dns_mx mx[3];
    for (size_t i = 0; i < 3; i++) mx[i] = (dns_mx){(char *)names[i], 10};
    strvec f = {0};
    hostmem_failing(m, "dest", now, &f);
    dns_mx_demote(mx, 3, &f);
    sv_free(&f);
    const char *first_failed = NULL;
    for (size_t i = 0; i < 3; i++) {
        if (!strchr(down, mx[i].host[0])) {
            hostmem_ok(m, "dest", mx[i].host);
            break;
        }
        hostmem_failed(m, "dest", mx[i].host, now);
        if (!first_failed) first_failed = mx[i].host;
    }
    if (first_failed) hostmem_to_back(m, "dest", first_failed);
    return mx[0].host[0];
}

/* test_attempts - a failing host is not tried first again; when all fail, the first host rotates. */
static void test_attempts(void **state)
{
    (void)state;
    hostmem *m = hostmem_new();
    char starts[16] = {0};
    for (int i = 0; i < 6; i++) starts[i] = attempt(m, "abc", 100 + i);
    assert_string_equal(starts, "abcabc");
    hostmem_free(m);

    m = hostmem_new();
    for (int i = 0; i < 6; i++) starts[i] = attempt(m, "a", 100 + i); /* a is down, b and c work */
    assert_string_equal(starts, "abbbbb");
    starts[0] = attempt(m, "a", 106 + HOSTMEM_HOLD); /* forgotten after the hold: a is tried first again */
    assert_int_equal(starts[0], 'a');
    hostmem_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_forgetting),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_attempts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
