/*
 * test_shaping.c - unit tests for traffic shaping: the table's parser, lookups and reaction rules
 * (src/conf/shaping.c), a destination's state machine with a fake clock (src/jobs/shape.c:
 * connections, the even spacing of per_hour, halving to the floor, the ramp back up,
 * suspension, the last hour), and the MX memory providers are learnt from (src/deliver/hostmem.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/shaping.h"
#include "deliver/hostmem.h"
#include "jobs/shape.h"

typedef struct {
    int lines[16];
    char msgs[16][256];
    int n;
} errs_t;

/* on_err - collect the parser's complaints. */
static void on_err(void *arg, int line, const char *msg)
{
    errs_t *e = arg;
    if (e->n < 16) {
        e->lines[e->n] = line;
        snprintf(e->msgs[e->n], sizeof e->msgs[0], "%s", msg);
    }
    e->n++;
}

static const char *GOOD = "# traffic shaping\n"
                          "! a comment in the Messaging Server style\n"
                          "\n"
                          "Gmail.COM    connections=5 per_connection=50 per_hour=3600\n"
                          "mx:.protection.outlook.com  connections=10 per_hour=20000 floor=600 ramp=20\n"
                          ".example.net\tconnections=2\r\n"
                          "*            connections=20\n"
                          "on 421 4.7.28                 action=suspend period=15m\n"
                          "on 4xx /rate limit|too many/  action=halve\n"
                          "on 45x 4.x.x action=suspend\n";

/* test_parse_good - entries of every kind, keys, defaults, rules with status, regex and period. */
static void test_parse_good(void **state)
{
    (void)state;
    errs_t errs = {0};
    shaping_table *t = shaping_parse(GOOD, on_err, &errs);
    assert_int_equal(errs.n, 0);
    assert_int_equal(t->n, 4);
    assert_true(t->has_mx);
    assert_int_equal(t->v[0].kind, SHAPING_DOMAIN);
    assert_string_equal(t->v[0].pattern, "gmail.com");
    assert_int_equal(t->v[0].connections, 5);
    assert_int_equal(t->v[0].per_connection, 50);
    assert_int_equal(t->v[0].per_hour, 3600);
    assert_int_equal(t->v[0].floor, SHAPING_DEFAULT_FLOOR);
    assert_int_equal(t->v[0].ramp, SHAPING_DEFAULT_RAMP);
    assert_int_equal(t->v[1].kind, SHAPING_MX);
    assert_string_equal(t->v[1].pattern, "protection.outlook.com");
    assert_int_equal(t->v[1].floor, 600);
    assert_int_equal(t->v[1].ramp, 20);
    assert_int_equal(t->v[2].kind, SHAPING_SUFFIX);
    assert_string_equal(t->v[2].pattern, ".example.net");
    assert_int_equal(t->v[3].kind, SHAPING_ANY);
    assert_int_equal(t->v[3].line, 7);
    assert_int_equal(t->n_rules, 3);
    assert_string_equal(t->rules[0].code, "421");
    assert_string_equal(t->rules[0].status, "4.7.28");
    assert_int_equal(t->rules[0].action, SHAPING_SUSPEND);
    assert_int_equal(t->rules[0].period, 900);
    assert_null(t->rules[1].status);
    assert_string_equal(t->rules[1].regex_src, "rate limit|too many");
    assert_int_equal(t->rules[1].action, SHAPING_HALVE);
    assert_int_equal(t->rules[2].period, SHAPING_DEFAULT_PERIOD);
    shaping_free(t);
}

/* test_parse_bad - every kind of malformed line is reported with its line and skipped. */
static void test_parse_bad(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *says;
    } cases[] = {
        {"bad..domain connections=1", "not a domain"},
        {"example.com", "no limits"},
        {"example.com connections", "key=value expected"},
        {"example.com speed=3", "unknown key"},
        {"example.com connections=-1", "a number"},
        {"example.com per_hour=abc", "a number"},
        {"example.com ramp=0", "a number"},
        {"example.com per_hour=10 floor=20", "above per_hour"},
        {"mx: connections=1", "mx: must be followed"},
        {"on 621 action=halve", "reply code"},
        {"on action=halve", "reply code"},
        {"on 421 4.7.28", "missing"},
        {"on 421 4.7 action=halve", "enhanced status"},
        {"on 421 5.7.1 action=halve", "does not fit"},
        {"on 421 /unclosed action=halve", "closing"},
        {"on 421 /(/ action=halve", "/(/"},
        {"on 421 action=slow", "halve or suspend"},
        {"on 421 action=halve period=1m", "only with action=suspend"},
        {"on 421 action=suspend period=forever", "a duration"},
        {"on 421 action=suspend period=30d", "a duration"},
        {"on 421 action=suspend extra", "a rule takes"},
        {"/x/ connections=1", "cannot begin"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        errs_t errs = {0};
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        fprintf(f, "good.example connections=1\n%s\n", cases[i].line);
        fclose(f);
        shaping_table *t = shaping_parse(text, on_err, &errs);
        if (errs.n != 1 || errs.lines[0] != 2 || !strstr(errs.msgs[0], cases[i].says))
            fail_msg("%s: %d errors, first at line %d: %s", cases[i].line, errs.n, errs.lines[0], errs.msgs[0]);
        assert_int_equal(t->n, 1);
        assert_int_equal(t->n_rules, 0);
        shaping_free(t);
        free(text);
    }
}

/* test_parse_duplicate - a second entry for the same destination is refused, naming the first. */
static void test_parse_duplicate(void **state)
{
    (void)state;
    errs_t errs = {0};
    shaping_table *t = shaping_parse("a.test connections=1\nA.test. per_hour=5\nmx:a.test connections=1\n", on_err, &errs);
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.lines[0], 2);
    assert_non_null(strstr(errs.msgs[0], "line 1"));
    assert_int_equal(t->n, 2); /* the mx: entry of the same name is another kind */
    shaping_free(t);
}

/* test_lookup - exact, then MX provider, then the longest suffix, then *. */
static void test_lookup(void **state)
{
    (void)state;
    shaping_table *t = shaping_parse(GOOD, NULL, NULL);
    const char *outlook[] = {"contoso-com.mail.protection.outlook.com"};
    const char *other[] = {"mx.example.org"};
    assert_string_equal(shaping_lookup(t, "GMAIL.com", NULL, 0)->pattern, "gmail.com");
    assert_string_equal(shaping_lookup(t, "gmail.com", outlook, 1)->pattern, "gmail.com");
    assert_string_equal(shaping_lookup(t, "contoso.com", outlook, 1)->pattern, "protection.outlook.com");
    assert_string_equal(shaping_lookup(t, "a.example.net", outlook, 1)->pattern, "protection.outlook.com");
    assert_string_equal(shaping_lookup(t, "a.example.net", other, 1)->pattern, ".example.net");
    assert_string_equal(shaping_lookup(t, "example.net", NULL, 0)->pattern, "*");
    assert_string_equal(shaping_lookup(t, "contoso.com", NULL, 0)->pattern, "*");
    const char *fake[] = {"evilprotection.outlook.com.example"};
    assert_string_equal(shaping_lookup(t, "x.test", fake, 1)->pattern, "*");
    assert_true(shaping_mx_match(&t->v[1], "protection.outlook.com."));
    assert_false(shaping_mx_match(&t->v[1], "xprotection.outlook.com"));
    shaping_table *none = shaping_parse("a.test connections=1\n", NULL, NULL);
    assert_null(shaping_lookup(none, "b.test", NULL, 0));
    assert_null(shaping_lookup(NULL, "b.test", NULL, 0));
    shaping_free(none);
    shaping_free(t);
}

/* test_react - code and status wildcards, the regex on the text, first match wins. */
static void test_react(void **state)
{
    (void)state;
    shaping_table *t = shaping_parse(GOOD, NULL, NULL);
    const shaping_rule *r = shaping_react(t, "421", "4.7.28", "421 4.7.28 too much mail from your IP");
    assert_ptr_equal(r, &t->rules[0]);
    r = shaping_react(t, "451", "4.7.1", "451 4.7.1 Rate LIMIT exceeded");
    assert_ptr_equal(r, &t->rules[1]);
    r = shaping_react(t, "452", "4.2.2", "452 4.2.2 mailbox full");
    assert_ptr_equal(r, &t->rules[2]);
    assert_null(shaping_react(t, "421", "4.4.2", "421 4.4.2 timeout"));
    assert_null(shaping_react(t, "550", "5.7.1", "550 5.7.1 too many"));
    assert_null(shaping_react(t, "452", NULL, "452 no status"));
    assert_null(shaping_react(t, "45", "4.1.1", "x"));
    shaping_free(t);
}

/* entry - a destination's limits for the state machine tests. */
static shaping_entry entry(unsigned conns, unsigned per_conn, unsigned per_hour, unsigned floor, unsigned ramp)
{
    shaping_entry e = {SHAPING_DOMAIN, "x.test", conns, per_conn, per_hour, floor, ramp, 1};
    return e;
}

/* test_connections - new connections stop at the limit; an open one may go on. */
static void test_connections(void **state)
{
    (void)state;
    shaping_entry e = entry(2, 0, 0, 60, 10);
    shape_state st = {0};
    int64_t at = 0;
    assert_int_equal(shape_check(&st, &e, true, 0, &at), SHAPE_GO);
    st.conns = 2;
    assert_int_equal(shape_check(&st, &e, true, 0, &at), SHAPE_WAIT_CONN);
    assert_int_equal(shape_check(&st, &e, false, 0, &at), SHAPE_GO);
    e.connections = 0;
    assert_int_equal(shape_check(&st, &e, true, 0, &at), SHAPE_GO);
}

/* test_rate_spread - per_hour=3600: one message a second, evenly, never two at once. */
static void test_rate_spread(void **state)
{
    (void)state;
    shaping_entry e = entry(0, 0, 3600, 60, 10);
    shape_state st = {0};
    int64_t now = 1000000, at = 0;
    assert_int_equal(shape_check(&st, &e, true, now, &at), SHAPE_GO);
    shape_sent(&st, &e, now);
    assert_int_equal(shape_check(&st, &e, true, now, &at), SHAPE_WAIT_TIME);
    assert_int_equal(at, now + 1000);
    assert_int_equal(shape_check(&st, &e, false, now + 999, &at), SHAPE_WAIT_TIME);
    assert_int_equal(shape_check(&st, &e, false, now + 1000, &at), SHAPE_GO);
    /* idle for a while: no burst afterwards, the next slot is one interval after the message */
    shape_sent(&st, &e, now + 60000);
    assert_int_equal(shape_check(&st, &e, true, now + 60000, &at), SHAPE_WAIT_TIME);
    assert_int_equal(at, now + 61000);
    assert_int_equal(shape_hour(&st, now + 60000), 2);
    assert_int_equal(shape_hour(&st, now + 60000 + 3600000), 0);
}

/* test_halve_and_ramp - halvings down to the floor, then every `ramp` successes double the rate back. */
static void test_halve_and_ramp(void **state)
{
    (void)state;
    shaping_entry e = entry(0, 0, 1000, 200, 3);
    shape_state st = {0};
    int64_t now = 5000000;
    assert_int_equal(shape_rate(&st, &e), 1000);
    assert_true(shape_halve(&st, &e, now));
    assert_int_equal(shape_rate(&st, &e), 500);
    assert_string_equal(shape_mode_name(&st, now), "halved");
    int64_t at;
    assert_int_equal(shape_check(&st, &e, true, now, &at), SHAPE_WAIT_TIME); /* the new spacing from now */
    assert_int_equal(at, now + 3600000 / 500);
    assert_true(shape_halve(&st, &e, now));
    assert_int_equal(shape_rate(&st, &e), 250);
    assert_true(shape_halve(&st, &e, now));
    assert_int_equal(shape_rate(&st, &e), 200); /* 125 is below the floor */
    assert_false(shape_halve(&st, &e, now));     /* at the floor */
    assert_int_equal(st.level, 3);
    assert_false(shape_success(&st, &e));
    assert_false(shape_success(&st, &e));
    assert_true(shape_success(&st, &e));
    assert_int_equal(shape_rate(&st, &e), 250);
    shape_halve(&st, &e, now); /* a reaction restarts the count */
    assert_int_equal(st.level, 3);
    for (int i = 0; i < 8; i++) shape_success(&st, &e);
    assert_int_equal(shape_rate(&st, &e), 500);
    shape_success(&st, &e);
    for (int i = 0; i < 3; i++) shape_success(&st, &e);
    assert_int_equal(st.level, 0);
    assert_int_equal(shape_rate(&st, &e), 1000);
    assert_string_equal(shape_mode_name(&st, now), "active");
    assert_false(shape_success(&st, &e));
}

/* test_halve_unlimited - without per_hour a halving starts from the last hour's messages (at least twice the floor). */
static void test_halve_unlimited(void **state)
{
    (void)state;
    shaping_entry e = entry(0, 0, 0, 60, 2);
    shape_state st = {0};
    int64_t now = 7200000;
    for (int i = 0; i < 1000; i++) shape_sent(&st, &e, now);
    assert_int_equal(shape_rate(&st, &e), 0);
    assert_true(shape_halve(&st, &e, now));
    assert_int_equal(shape_rate(&st, &e), 500);
    shape_success(&st, &e);
    shape_success(&st, &e);
    assert_int_equal(shape_rate(&st, &e), 0); /* no limit again */
    shape_state quiet = {0};
    assert_true(shape_halve(&quiet, &e, now));
    assert_int_equal(shape_rate(&quiet, &e), 60);
}

/* test_suspend - nothing starts until the end; resumed once; a shorter suspension does not cut a longer one. */
static void test_suspend(void **state)
{
    (void)state;
    shaping_entry e = entry(0, 0, 0, 60, 10);
    shape_state st = {0};
    int64_t now = 100000, at = 0;
    shape_suspend(&st, now, 900);
    assert_true(shape_suspended(&st, now));
    assert_string_equal(shape_mode_name(&st, now), "suspended");
    assert_int_equal(shape_check(&st, &e, false, now + 1000, &at), SHAPE_WAIT_TIME);
    assert_int_equal(at, now + 900000);
    shape_suspend(&st, now + 1000, 60);
    assert_int_equal(st.until_ms, now + 900000);
    assert_false(shape_resumed(&st, now + 899999));
    assert_false(shape_idle(&st, now + 899999));
    assert_true(shape_resumed(&st, now + 900000));
    assert_false(shape_resumed(&st, now + 900001));
    assert_int_equal(shape_check(&st, &e, true, now + 900000, &at), SHAPE_GO);
    assert_true(shape_idle(&st, now + 900000));
}

/* test_mx_memory - the most preferred MX hosts of a domain, remembered for an hour, bounded. */
static void test_mx_memory(void **state)
{
    (void)state;
    hostmem *m = hostmem_new();
    const char *names[HOSTMEM_MX_NAMES];
    assert_int_equal(hostmem_mx_find(m, "a.test", 0, names), 0);
    dns_mx mx[] = {{"backup.other.test", 20}, {"mx1.prov.test", 10}, {"mx2.prov.test", 10}};
    hostmem_mx_learn(m, "A.test", mx, 3, 1000);
    assert_int_equal(hostmem_mx_find(m, "a.TEST", 1000, names), 2);
    assert_string_equal(names[0], "mx1.prov.test");
    assert_string_equal(names[1], "mx2.prov.test");
    assert_int_equal(hostmem_mx_find(m, "a.test", 1000 + HOSTMEM_MX_HOLD, names), 0);
    dns_mx null_mx[] = {{"", 0}};
    hostmem_mx_learn(m, "n.test", null_mx, 1, 1000);
    assert_int_equal(hostmem_mx_find(m, "n.test", 1000, names), 0);
    char d[32];
    for (int i = 0; i < HOSTMEM_MX_DOMAINS + 5; i++) {
        snprintf(d, sizeof d, "d%d.test", i);
        hostmem_mx_learn(m, d, mx, 3, 2000);
    }
    assert_int_equal(hostmem_mx_find(m, "d0.test", 2000, names), 0); /* the first learnt made room */
    assert_int_equal(hostmem_mx_find(m, "d5.test", 2000, names), 2);
    hostmem_mx_learn(m, "d5.test", mx + 2, 1, 2500); /* learnt afresh */
    assert_int_equal(hostmem_mx_find(m, "d5.test", 2500, names), 1);
    hostmem_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),     cmocka_unit_test(test_parse_bad),   cmocka_unit_test(test_parse_duplicate),
        cmocka_unit_test(test_lookup),         cmocka_unit_test(test_react),       cmocka_unit_test(test_connections),
        cmocka_unit_test(test_rate_spread),    cmocka_unit_test(test_halve_and_ramp),
        cmocka_unit_test(test_halve_unlimited), cmocka_unit_test(test_suspend),    cmocka_unit_test(test_mx_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
