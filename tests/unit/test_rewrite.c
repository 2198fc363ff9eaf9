/* test_rewrite.c - the rewrite engine: rule search order, templates, substitutions, channel choice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "rewrite/rewrite.h"

#ifndef SLUICE_ETC_DIR
#define SLUICE_ETC_DIR "../../etc"
#endif

/* Rules for most cases; every rule is the only one that can produce its output. */
static const char *CNF_MAIN =
    "! exact, suffix and '.' rules expose $U, $H and $D in the local part\n"
    "exact.test        $U+h=$H+d=$D%out.test@tcp-daemon\n"
    ".suffix.test      $U+h=$H+d=$D%out.test@tcp-daemon\n"
    ".                 $U+h=$H+d=$D%out.test@tcp-daemon\n"
    "! search order: the longest suffix wins whatever the file order\n"
    ".order.test       outer%x.test@tcp-daemon\n"
    ".b.order.test     inner%x.test@tcp-daemon\n"
    "dup.test          first%x.test@tcp-daemon\n"
    "dup.test          second%x.test@tcp-daemon\n"
    "! domain literals\n"
    "[10.1.2.3]        exact-lit%x.test@tcp-daemon\n"
    "[10.1.]           lit10%x.test@tcp-daemon\n"
    "[172.16.]         $U%$D@tcp-daemon\n"
    "! escapes and the three template forms\n"
    "esc.test          a$$b$%c$@d%x.test@tcp-daemon\n"
    "ab.test           $U@tcp-daemon\n"
    "pct.test          $U%exact.test\n"
    "! routing host without a channel is rewritten again\n"
    "via.test          $U%$D@relay.test\n"
    "relay.test        ignored%ignored.test@local-daemon\n"
    "self.test         $U@self.test\n"
    "loop1.test        $U%loop2.test\n"
    "loop2.test        $U%loop1.test\n"
    "rh1.test          $U@rh2.test\n"
    "rh2.test          $U@rh1.test\n"
    "! case\n"
    "MiXeD.Test        $U%$D@TCP-Daemon\n"
    "\n"
    "tcp_out smtp\n"
    "tcp-daemon\n"
    "\n"
    "l\n"
    "local-daemon\n";

/* No "." rule: unknown domains fail. */
static const char *CNF_NODOT = "known.test        $U%$D@nowhere\n"
                               "\n"
                               "l\n"
                               "local-daemon\n";

typedef struct {
    const char **cnf;
    const char *addr;
    sl_result res;
    const char *want_addr;    /* SL_OK */
    const char *want_host;    /* SL_OK */
    const char *want_channel; /* SL_OK */
    const char *want_error;   /* otherwise */
} rw_case;

static const rw_case rw_cases[] = {
    /* exact host: $H empty, $D the host */
    {&CNF_MAIN, "u@exact.test", SL_OK, "u+h=+d=exact.test@out.test", "tcp-daemon", "tcp_out", NULL},
    /* .suffix: $H the unmatched left part, $D the matched part */
    {&CNF_MAIN, "u@a.b.suffix.test", SL_OK, "u+h=a.b+d=suffix.test@out.test", "tcp-daemon", "tcp_out", NULL},
    {&CNF_MAIN, "u@x.suffix.test", SL_OK, "u+h=x+d=suffix.test@out.test", "tcp-daemon", "tcp_out", NULL},
    /* ".": $H the whole host, $D empty */
    {&CNF_MAIN, "u@elsewhere.example", SL_OK, "u+h=elsewhere.example+d=@out.test", "tcp-daemon", "tcp_out", NULL},
    {&CNF_MAIN, "u@suffix.test", SL_OK, "u+h=suffix.test+d=@out.test", "tcp-daemon", "tcp_out", NULL},
    /* search order and duplicates */
    {&CNF_MAIN, "u@a.b.order.test", SL_OK, "inner@x.test", "tcp-daemon", "tcp_out", NULL},
    {&CNF_MAIN, "u@b.order.test", SL_OK, "outer@x.test", "tcp-daemon", "tcp_out", NULL},
    {&CNF_MAIN, "u@dup.test", SL_OK, "first@x.test", "tcp-daemon", "tcp_out", NULL},
    /* domain literals shorten inside the brackets; $D is the whole literal */
    {&CNF_MAIN, "u@[10.1.2.3]", SL_OK, "exact-lit@x.test", "tcp-daemon", "tcp_out", NULL},
    {&CNF_MAIN, "u@[10.1.9.9]", SL_OK, "lit10@x.test", "tcp-daemon", "tcp_out", NULL},
    {&CNF_MAIN, "u@[172.16.5.5]", SL_OK, "u@[172.16.5.5]", "tcp-daemon", "tcp_out", NULL},
    {&CNF_MAIN, "u@[192.0.2.1]", SL_OK, "u+h=[192.0.2.1]+d=@out.test", "tcp-daemon", "tcp_out", NULL},
    /* $$ $% $@ */
    {&CNF_MAIN, "u@esc.test", SL_OK, "a$b%c@d@x.test", "tcp-daemon", "tcp_out", NULL},
    /* A@B: routing host B */
    {&CNF_MAIN, "u@ab.test", SL_OK, "u@tcp-daemon", "tcp-daemon", "tcp_out", NULL},
    /* A%B: rewrite A@B again */
    {&CNF_MAIN, "u@pct.test", SL_OK, "u+h=+d=exact.test@out.test", "tcp-daemon", "tcp_out", NULL},
    /* routing host without a channel: rewritten again, the address kept */
    {&CNF_MAIN, "u@via.test", SL_OK, "u@via.test", "local-daemon", "l", NULL},
    {&CNF_MAIN, "u@self.test", SL_PERM, NULL, NULL, NULL, "no channel for routing host self.test"},
    {&CNF_MAIN, "u@loop1.test", SL_PERM, NULL, NULL, NULL, "rewrite loop: u@loop1.test not routed after 10 rewrites"},
    {&CNF_MAIN, "u@rh1.test", SL_PERM, NULL, NULL, NULL, "rewrite loop: u@rh1.test not routed after 10 rewrites"},
    /* case: hosts compare case-insensitively, the text keeps its case */
    {&CNF_MAIN, "U@EXACT.Test", SL_OK, "U+h=+d=EXACT.Test@out.test", "tcp-daemon", "tcp_out", NULL},
    {&CNF_MAIN, "u@mixed.TEST", SL_OK, "u@mixed.TEST", "TCP-Daemon", "tcp_out", NULL},
    {&CNF_MAIN, "u@A.B.Suffix.TEST", SL_OK, "u+h=A.B+d=Suffix.TEST@out.test", "tcp-daemon", "tcp_out", NULL},
    /* quoted local part containing '@' */
    {&CNF_MAIN, "\"a@b\"@exact.test", SL_OK, "\"a@b\"+h=+d=exact.test@out.test", "tcp-daemon", "tcp_out", NULL},
    {&CNF_MAIN, "\"a@exact.test\"", SL_PERM, NULL, NULL, NULL, "no domain in address '\"a@exact.test\"'"},
    /* malformed addresses */
    {&CNF_MAIN, "justuser", SL_PERM, NULL, NULL, NULL, "no domain in address 'justuser'"},
    {&CNF_MAIN, "u@", SL_PERM, NULL, NULL, NULL, "no domain in address 'u@'"},
    {&CNF_MAIN, "u@a..b", SL_PERM, NULL, NULL, NULL, "bad domain 'a..b'"},
    /* no rule at all, no channel */
    {&CNF_NODOT, "u@unknown.example", SL_PERM, NULL, NULL, NULL, "no rewrite rule for unknown.example"},
    {&CNF_NODOT, "u@known.test", SL_PERM, NULL, NULL, NULL, "no channel for routing host nowhere"},
};

/* conf_from - a conf holding only the rules and channels of a sluice.cnf text. */
static sl_conf *conf_from(const char *text)
{
    sl_conf *c = xcalloc(1, sizeof *c);
    conf_errors errs = {0};
    int n = conf_parse_sluice_cnf("sluice.cnf", text, c, &errs);
    if (n) fail_msg("test configuration: %s", errs.msgs.v[0]);
    sv_free(&errs.msgs);
    return c;
}

static void test_rewrite_table(void **state)
{
    (void)state;
    sl_conf *main_conf = conf_from(CNF_MAIN), *nodot = conf_from(CNF_NODOT);
    for (size_t i = 0; i < SL_ARRAY_LEN(rw_cases); i++) {
        const rw_case *tc = &rw_cases[i];
        const sl_conf *c = tc->cnf == &CNF_MAIN ? main_conf : nodot;
        rw_result r;
        strbuf trace;
        sb_init(&trace);
        sl_result res = rewrite_address(c, tc->addr, "tcp_local", &r, &trace);
        if (res != tc->res)
            fail_msg("case %zu %s: result %d, want %d (%s)\n%s", i, tc->addr, res, tc->res, r.error ? r.error : "",
                     trace.data ? trace.data : "");
        if (res == SL_OK) {
            if (strcmp(r.addr, tc->want_addr) || strcmp(r.host, tc->want_host) ||
                strcmp(r.channel->name, tc->want_channel))
                fail_msg("case %zu %s: got %s via %s (%s), want %s via %s (%s)", i, tc->addr, r.addr, r.host,
                         r.channel->name, tc->want_addr, tc->want_host, tc->want_channel);
            assert_null(r.error);
        } else {
            assert_null(r.addr);
            assert_null(r.channel);
            if (!r.error || strcmp(r.error, tc->want_error))
                fail_msg("case %zu %s: error '%s', want '%s'", i, tc->addr, r.error ? r.error : "(null)",
                         tc->want_error);
        }
        rw_result_free(&r);
        sb_free(&trace);
    }
    conf_free(main_conf);
    conf_free(nodot);
}

static void test_rewrite_trace(void **state)
{
    (void)state;
    sl_conf *c = conf_from(". $U%$H@tcp_local-daemon\n\ntcp_local smtp\ntcp_local-daemon\n");
    rw_result r;
    strbuf trace;
    sb_init(&trace);
    assert_int_equal(rewrite_address(c, "user@host.example", NULL, &r, &trace), SL_OK);
    assert_string_equal(trace.data, "try 'host.example' -> no rule\n"
                                    "try '.example' -> no rule\n"
                                    "match '.' -> '$U%$H@tcp_local-daemon' -> user@host.example via tcp_local-daemon\n"
                                    "channel tcp_local (routing host tcp_local-daemon)\n");
    rw_result_free(&r);
    sb_free(&trace);
    conf_free(c);

    c = conf_from(CNF_MAIN);
    sb_init(&trace);
    assert_int_equal(rewrite_address(c, "u@[10.1.9.9]", NULL, &r, &trace), SL_OK);
    assert_string_equal(trace.data, "try '[10.1.9.9]' -> no rule\n"
                                    "try '[10.1.9.]' -> no rule\n"
                                    "match '[10.1.]' -> 'lit10%x.test@tcp-daemon' -> lit10@x.test via tcp-daemon\n"
                                    "channel tcp_out (routing host tcp-daemon)\n");
    rw_result_free(&r);
    sb_reset(&trace);
    assert_int_equal(rewrite_address(c, "u@via.test", NULL, &r, &trace), SL_OK);
    assert_non_null(strstr(trace.data, "no channel for routing host 'relay.test': rewriting it\n"
                                       "match 'relay.test' -> 'ignored%ignored.test@local-daemon'"));
    rw_result_free(&r);
    /* a NULL trace is allowed */
    assert_int_equal(rewrite_address(c, "u@exact.test", NULL, &r, NULL), SL_OK);
    rw_result_free(&r);
    sb_free(&trace);
    conf_free(c);
}

/* A template that bypassed the load check still fails cleanly at run time. */
static void test_rewrite_bad_template_at_runtime(void **state)
{
    (void)state;
    sl_conf *c = conf_from("\nl\nlocal-daemon\n");
    sl_rule rule = {"x.test", "$U%$X@local-daemon", 7};
    c->rules = &rule;
    c->n_rules = 1;
    rw_result r;
    assert_int_equal(rewrite_address(c, "u@x.test", NULL, &r, NULL), SL_PERM);
    assert_string_equal(r.error, "rule 'x.test' (line 7): unknown substitution '$X'");
    rw_result_free(&r);
    c->rules = NULL;
    c->n_rules = 0;
    conf_free(c);
}

static void test_template_check(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl;
        const char *error; /* NULL: valid */
    } cases[] = {
        {"$U%$H@tcp_local-daemon", NULL},
        {"$U@$D", NULL},
        {"$U%$D", NULL},
        {"a$%b$@c$$d@h", NULL},
        {"$U", "template has no '@' or '%' (expected A%B@C, A@B or A%B)"},
        {"$U$@$D", "template has no '@' or '%' (expected A%B@C, A@B or A%B)"},
        {"$U%$Q@h", "unknown substitution '$Q'"},
        {"$u@h", "unknown substitution '$u'"},
        {"$U@h$", "template ends with a lone '$'"},
        {"a%b%c@d", "more than one '%'"},
        {"a@b@c", "more than one '@'"},
        {"a@b%c", "'%' after '@'"},
        {"@b", "empty part in template"},
        {"a%b@", "empty part in template"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char err[160] = "";
        int rc = rewrite_template_check(cases[i].tmpl, err, sizeof err);
        if ((rc == 0) != (cases[i].error == NULL) || (cases[i].error && strcmp(err, cases[i].error)))
            fail_msg("'%s': rc %d error '%s'", cases[i].tmpl, rc, err);
    }
}

static void test_split(void **state)
{
    (void)state;
    static const struct {
        const char *addr, *local, *domain; /* local NULL: -1 */
    } cases[] = {
        {"user@example.com", "user", "example.com"},
        {"a@b@example.com", "a@b", "example.com"},
        {"\"a@b\"@example.com", "\"a@b\"", "example.com"},
        {"\"a\\\"@b\"@example.com", "\"a\\\"@b\"", "example.com"},
        {"\"x@y\"", NULL, NULL},
        {"user", NULL, NULL},
        {"user@", NULL, NULL},
        {"@example.com", NULL, NULL},
        {"u@[10.0.0.1]", "u", "[10.0.0.1]"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char *l, *d;
        int rc = rewrite_split(cases[i].addr, &l, &d);
        if (!cases[i].local) {
            if (rc != -1 || l || d) fail_msg("'%s' split", cases[i].addr);
            continue;
        }
        if (rc != 0 || strcmp(l, cases[i].local) || strcmp(d, cases[i].domain))
            fail_msg("'%s': rc %d '%s' '%s'", cases[i].addr, rc, l ? l : "", d ? d : "");
        free(l);
        free(d);
    }
}

/* The shipped configuration routes the directory's domain locally and the rest by SMTP. */
static void test_rewrite_embedded(void **state)
{
    (void)state;
    conf_errors errs = {0};
    sl_conf *c = conf_load(SLUICE_ETC_DIR, &errs);
    if (!c) fail_msg("embedded configuration: %s", errs.msgs.n ? errs.msgs.v[0] : "?");
    static const struct {
        const char *addr, *want_addr, *channel;
    } cases[] = {
        {"alice@example.com", "alice@example.com", "l"},
        {"Bob@Example.COM", "Bob@Example.COM", "l"},
        {"someone@example.org", "someone@example.org", "tcp_local"},
        {"x@mail.example.com", "x@mail.example.com", "tcp_local"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        rw_result r;
        assert_int_equal(rewrite_address(c, cases[i].addr, "tcp_local", &r, NULL), SL_OK);
        assert_string_equal(r.addr, cases[i].want_addr);
        assert_string_equal(r.channel->name, cases[i].channel);
        rw_result_free(&r);
    }
    conf_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite_table),
        cmocka_unit_test(test_rewrite_trace),
        cmocka_unit_test(test_rewrite_bad_template_at_runtime),
        cmocka_unit_test(test_template_check),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_rewrite_embedded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
