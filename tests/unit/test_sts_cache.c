/*
 * test_sts_cache.c - unit tests for the start-up load of the MTA-STS policy cache (src/sts/sts.c,
 * sts_new): good files are taken, damaged ones, files named after another domain, names that are
 * not domains and temporary files are not; the file of a policy expired more than a day ago is
 * deleted, one expired less long ago kept; a missing directory is an empty cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "sts/sts.h"

/* put - write text into dir/name. */
static void put(const char *dir, const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

/* cache_text - a cache file of domain with a valid enforce policy (max_age 600) fetched at fetched. */
static char *cache_text(const char *domain, int64_t fetched)
{
    sts_cached c = {0};
    c.domain = (char *)domain;
    snprintf(c.id, sizeof c.id, "id1");
    c.fetched = fetched;
    c.body = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 600\n";
    c.body_len = strlen(c.body);
    strbuf sb;
    sb_init(&sb);
    sts_cache_encode(&c, &sb);
    return sb_steal(&sb);
}

/* test_load - only the good files count; the stale one is deleted. */
static void test_load(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/sluice-sts-cache-XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    int64_t now = (int64_t)time(NULL);
    char *good = cache_text("good.test", now), *other = cache_text("other.test", now);
    char *recent = cache_text("recent.test", now - 600 - 86000); /* expired, less than a day ago */
    char *stale = cache_text("stale.test", now - 600 - 86400 - 10); /* expired more than a day ago */
    put(dir, "good.test", good);
    put(dir, "recent.test", recent);
    put(dir, "stale.test", stale);
    put(dir, "stolen.test", other);           /* holds another domain's policy */
    put(dir, "torn.test", "sluice-mta-sts 1\ndomain torn.test\n");
    put(dir, "not_a_domain", good);
    put(dir, ".good.test.tmp", good);          /* a write that never finished */
    struct event_base *base = event_base_new();
    sts_ctx *c = sts_new(base, NULL, NULL, dir);
    assert_int_equal(sts_cached_count(c), 2);
    sts_free(c);
    char *stale_path = xasprintf("%s/stale.test", dir);
    assert_int_equal(access(stale_path, F_OK), -1); /* deleted */
    free(stale_path);
    const char *names[] = {"good.test", "recent.test", "stolen.test", "torn.test", "not_a_domain", ".good.test.tmp"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *p = xasprintf("%s/%s", dir, names[i]);
        unlink(p);
        free(p);
    }
    rmdir(dir);
    c = sts_new(base, NULL, NULL, dir); /* gone: an empty cache */
    assert_int_equal(sts_cached_count(c), 0);
    sts_free(c);
    event_base_free(base);
    free(good);
    free(other);
    free(recent);
    free(stale);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_load)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
