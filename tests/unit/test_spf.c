/*
 * test_spf.c - unit tests for the pure parts of src/spf/: the record parser (valid records with
 * every mechanism, qualifier, CIDR length and modifier; syntax errors that make a permerror),
 * the macro expander (the examples of RFC 7208 §7.4, transformers, escapes, the exp= only
 * macros) and the Received-SPF / Authentication-Results formatters. check_host() itself is
 * tested against a real DNS server in tests/integration/test_spf.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "core/util.h"
#include "spf/spf.h"

/* ------------------------------------------------------------------ records */

struct rec_case {
    const char *txt;
    int rc;              /* 0 parsed, -1 permerror */
    size_t n;            /* mechanisms */
    const char *summary; /* "qual kind domain cidr4 cidr6" of each mechanism, "|"-separated */
    const char *redirect, *exp;
};

static const char *const kind_names[] = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"};

/* summary - the mechanisms of r in the form rec_case.summary uses. */
static char *summary(const spf_record *r)
{
    strbuf sb;
    sb_init(&sb);
    for (size_t i = 0; i < r->n; i++) {
        const spf_mech *m = &r->mech[i];
        sb_printf(&sb, "%s%c%s", i ? "|" : "", m->qual, kind_names[m->kind]);
        if (m->domain) sb_printf(&sb, ":%s", m->domain);
        if (m->kind == SPF_IP4 || m->kind == SPF_IP6) {
            char buf[INET6_ADDRSTRLEN];
            inet_ntop(m->kind == SPF_IP4 ? AF_INET : AF_INET6, m->ip, buf, sizeof buf);
            sb_printf(&sb, ":%s", buf);
        }
        if (m->cidr4 != 32) sb_printf(&sb, "/%d", m->cidr4);
        if (m->cidr6 != 128) sb_printf(&sb, "//%d", m->cidr6);
    }
    return sb_steal(&sb);
}

static const struct rec_case rec_cases[] = {
    {"v=spf1", 0, 0, "", NULL, NULL},
    {"V=SPF1 -ALL", 0, 1, "-all", NULL, NULL},
    {"v=spf1 +all", 0, 1, "+all", NULL, NULL},
    {"v=spf1   mx  -all  ", 0, 2, "+mx|-all", NULL, NULL},
    {"v=spf1 a mx ~all", 0, 3, "+a|+mx|~all", NULL, NULL},
    {"v=spf1 ?a:mail.example.com/24//64 -all", 0, 2, "?a:mail.example.com/24//64|-all", NULL, NULL},
    {"v=spf1 a/24 mx//64 a:foo.example.org//0", 0, 3, "+a/24|+mx//64|+a:foo.example.org//0", NULL, NULL},
    {"v=spf1 mx:example.net/30 ptr ptr:example.com", 0, 3, "+mx:example.net/30|+ptr|+ptr:example.com", NULL, NULL},
    {"v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.7 -ip6:2001:db8::/32 ip6:2001:db8::cb01", 0, 4,
     "+ip4:192.0.2.0/24|+ip4:198.51.100.7|-ip6:2001:db8:://32|+ip6:2001:db8::cb01", NULL, NULL},
    {"v=spf1 ip4:0.0.0.0/0 ip6:::/0", 0, 2, "+ip4:0.0.0.0/0|+ip6::://0", NULL, NULL},
    {"v=spf1 include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d} -all", 0, 3,
     "+include:_spf.example.com|+exists:%{ir}.%{l1r+-}._spf.%{d}|-all", NULL, NULL},
    {"v=spf1 redirect=_spf.example.com", 0, 0, "", "_spf.example.com", NULL},
    {"v=spf1 -all exp=explain._spf.%{d}", 0, 1, "-all", NULL, "explain._spf.%{d}"},
    {"v=spf1 -all foo=bar moo=%{d}.cow", 0, 1, "-all", NULL, NULL}, /* unknown modifiers ignored */
    {"v=spf1 a:example.com. -all", 0, 2, "+a:example.com.|-all", NULL, NULL},
    {"v=spf1 a:%{d}", 0, 1, "+a:%{d}", NULL, NULL},
    /* syntax errors: permerror */
    {"v=spf10", -1, 0, NULL, NULL, NULL},
    {"spf1 -all", -1, 0, NULL, NULL, NULL},
    {"v=spf1 -alll", -1, 0, NULL, NULL, NULL},
    {"v=spf1 all:example.com", -1, 0, NULL, NULL, NULL},
    {"v=spf1 foo", -1, 0, NULL, NULL, NULL},
    {"v=spf1 *all", -1, 0, NULL, NULL, NULL},
    {"v=spf1 include", -1, 0, NULL, NULL, NULL},
    {"v=spf1 include:", -1, 0, NULL, NULL, NULL},
    {"v=spf1 exists", -1, 0, NULL, NULL, NULL},
    {"v=spf1 a:", -1, 0, NULL, NULL, NULL},
    {"v=spf1 a:localhost", -1, 0, NULL, NULL, NULL},      /* no "." toplabel */
    {"v=spf1 a:192.0.2.1", -1, 0, NULL, NULL, NULL},      /* numeric toplabel */
    {"v=spf1 a/33", -1, 0, NULL, NULL, NULL},
    {"v=spf1 a//129", -1, 0, NULL, NULL, NULL},
    {"v=spf1 a/024", -1, 0, NULL, NULL, NULL},
    {"v=spf1 mx/", -1, 0, NULL, NULL, NULL},
    {"v=spf1 ip4", -1, 0, NULL, NULL, NULL},
    {"v=spf1 ip4:192.0.2", -1, 0, NULL, NULL, NULL},
    {"v=spf1 ip4:192.0.2.1/33", -1, 0, NULL, NULL, NULL},
    {"v=spf1 ip4:2001:db8::1", -1, 0, NULL, NULL, NULL},
    {"v=spf1 ip6:192.0.2.1", -1, 0, NULL, NULL, NULL},
    {"v=spf1 ip6:2001:db8::/129", -1, 0, NULL, NULL, NULL},
    {"v=spf1 exists:%{z}.example.com", -1, 0, NULL, NULL, NULL},  /* unknown macro letter */
    {"v=spf1 exists:%{d0}.example.com", -1, 0, NULL, NULL, NULL}, /* 0 parts */
    {"v=spf1 exists:%{c}.example.com", -1, 0, NULL, NULL, NULL},  /* exp= only */
    {"v=spf1 exists:%{d.example.com", -1, 0, NULL, NULL, NULL},
    {"v=spf1 exists:50%.example.com", -1, 0, NULL, NULL, NULL},
    {"v=spf1 redirect=a.example.com redirect=b.example.com", -1, 0, NULL, NULL, NULL},
    {"v=spf1 exp=a.example.com exp=b.example.com", -1, 0, NULL, NULL, NULL},
    {"v=spf1 redirect=", -1, 0, NULL, NULL, NULL},
    {"v=spf1 foo=%{", -1, 0, NULL, NULL, NULL},
    {"v=spf1\t-all", -1, 0, NULL, NULL, NULL},
    {"v=spf1 -all\x01", -1, 0, NULL, NULL, NULL},
};

static void test_record_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(rec_cases); i++) {
        const struct rec_case *c = &rec_cases[i];
        print_message("case %zu: %s\n", i, c->txt);
        spf_record r;
        char err[160] = "";
        int rc = spf_record_parse(c->txt, &r, err, sizeof err);
        assert_int_equal(rc, c->rc);
        if (rc < 0) {
            assert_true(err[0] != '\0');
            assert_null(r.mech);
            continue;
        }
        assert_int_equal(r.n, c->n);
        char *s = summary(&r);
        assert_string_equal(s, c->summary);
        free(s);
        if (c->redirect) assert_string_equal(r.redirect, c->redirect);
        else assert_null(r.redirect);
        if (c->exp) assert_string_equal(r.exp, c->exp);
        else assert_null(r.exp);
        spf_record_free(&r);
    }
}

static void test_is_record(void **state)
{
    (void)state;
    assert_true(spf_is_record("v=spf1"));
    assert_true(spf_is_record("v=spf1 -all"));
    assert_true(spf_is_record("V=Spf1 -all"));
    assert_false(spf_is_record("v=spf10 -all"));
    assert_false(spf_is_record("v=spf2.0/pra -all"));
    assert_false(spf_is_record(" v=spf1"));
    assert_false(spf_is_record("google-site-verification=abc"));
}

/* ------------------------------------------------------------------ macros */

struct macro_case {
    const char *in;
    bool exp;
    const char *out; /* NULL: syntax error */
};

/* RFC 7208 §7.4, sender strong-bad@email.example.com, IP 192.0.2.3 */
static const struct macro_case macro_v4[] = {
    {"%{s}", false, "strong-bad@email.example.com"},
    {"%{o}", false, "email.example.com"},
    {"%{d}", false, "email.example.com"},
    {"%{d4}", false, "email.example.com"},
    {"%{d3}", false, "email.example.com"},
    {"%{d2}", false, "example.com"},
    {"%{d1}", false, "com"},
    {"%{dr}", false, "com.example.email"},
    {"%{d2r}", false, "example.email"},
    {"%{l}", false, "strong-bad"},
    {"%{l-}", false, "strong.bad"},
    {"%{lr}", false, "strong-bad"},
    {"%{lr-}", false, "bad.strong"},
    {"%{l1r-}", false, "strong"},
    {"%{ir}.%{v}._spf.%{d2}", false, "3.2.0.192.in-addr._spf.example.com"},
    {"%{lr-}.lp._spf.%{d2}", false, "bad.strong.lp._spf.example.com"},
    {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", false, "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
    {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", false, "3.2.0.192.in-addr.strong.lp._spf.example.com"},
    {"%{d2}.trusted-domains.example.net", false, "example.com.trusted-domains.example.net"},
    /* escapes, upper case, more transformers */
    {"%%%_%-", false, "% %20"},
    {"%{L}", false, "strong-bad"},
    {"%{S}", false, "strong-bad%40email.example.com"},
    {"%{i}", false, "192.0.2.3"},
    {"%{h}", false, "mx.example.org"},
    {"%{p}", false, "unknown"},
    {"%{d9}", false, "email.example.com"},
    {"%{s2.@}", false, NULL}, /* "@" is no delimiter */
    {"%{o1r.-}", false, "email"},
    {"%{c}", false, NULL},
    {"%{c}", true, "192.0.2.3"},
    {"%{r}", true, "receiver.example.net"},
    {"%{t}", true, "1700000000"},
    {"%{i} is not one of %{d}'s designated mail servers.", true,
     "192.0.2.3 is not one of email.example.com's designated mail servers."},
    {"%", false, NULL},
    {"%x", false, NULL},
    {"%{}", false, NULL},
    {"%{d0}", false, NULL},
    {"%{d2", false, NULL},
    {"a b", false, NULL},
};

/* RFC 7208 §7.4, the IPv6 example: 2001:db8::cb01 */
static const struct macro_case macro_v6[] = {
    {"%{ir}.%{v}._spf.%{d2}", false,
     "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"},
    {"%{c}", true, "2001:db8::cb01"},
    {"%{v}", false, "ip6"},
};

/* run_macros - expand every case with ip. */
static void run_macros(const struct macro_case *cases, size_t n, const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':')) {
        ss.ss_family = AF_INET6;
        inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr);
    } else {
        ss.ss_family = AF_INET;
        inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr);
    }
    spf_macro_vars v = {.sender = "strong-bad@email.example.com", .domain = "email.example.com", .ip = &ss,
                        .ptr = NULL, .helo = "mx.example.org", .receiver = "receiver.example.net", .now = 1700000000};
    for (size_t i = 0; i < n; i++) {
        print_message("case %zu: %s (exp %d)\n", i, cases[i].in, cases[i].exp);
        strbuf out;
        sb_init(&out);
        char err[160] = "";
        int rc = spf_macro_expand(cases[i].in, &v, cases[i].exp, &out, err, sizeof err);
        if (!cases[i].out) {
            assert_int_equal(rc, -1);
            assert_true(err[0] != '\0');
            assert_false(spf_macro_check(cases[i].in, cases[i].exp));
        } else {
            assert_int_equal(rc, 0);
            assert_string_equal(out.data, cases[i].out);
            assert_true(spf_macro_check(cases[i].in, cases[i].exp));
        }
        sb_free(&out);
    }
}

static void test_macro_v4(void **state)
{
    (void)state;
    run_macros(macro_v4, SL_ARRAY_LEN(macro_v4), "192.0.2.3");
}

static void test_macro_v6(void **state)
{
    (void)state;
    run_macros(macro_v6, SL_ARRAY_LEN(macro_v6), "2001:db8::cb01");
}

static void test_domain_trim(void **state)
{
    (void)state;
    strbuf d;
    sb_init(&d);
    for (int i = 0; i < 30; i++) sb_puts(&d, "abcdefghi.");
    sb_puts(&d, "example.com");
    spf_domain_trim(&d);
    assert_true(d.len <= 253);
    assert_true(d.len > 240);
    assert_string_equal(d.data + d.len - 12, ".example.com");
    assert_true(d.data[0] == 'a');
    sb_free(&d);
}

/* ------------------------------------------------------------------ headers */

static void test_headers(void **state)
{
    (void)state;
    spf_query q = {.mail_from = "myname@example.com", .helo = "foo.example.com", .receiver = "mybox.example.org"};
    q.ip.ss_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.1", &((struct sockaddr_in *)&q.ip)->sin_addr);
    spf_result r = {.result = SPF_PASS, .identity = "mailfrom", .domain = "example.com", .mechanism = "ip4:192.0.2.0/24"};
    strbuf out;
    sb_init(&out);
    spf_received_header(&r, &q, &out);
    assert_string_equal(out.data,
                        "Received-SPF: pass (mybox.example.org: domain of myname@example.com designates\r\n"
                        "\t192.0.2.1 as permitted sender) client-ip=192.0.2.1;\r\n"
                        "\tenvelope-from=\"myname@example.com\"; helo=foo.example.com;\r\n"
                        "\treceiver=mybox.example.org; identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\";\r\n");
    for (char *p = out.data; (p = strstr(p, "\r\n")) != NULL; p += 2) {
        assert_true(p[2] == '\0' || p[2] == '\t');
    }
    sb_reset(&out);
    spf_auth_results(&r, &q, &out);
    assert_string_equal(out.data, "spf=pass smtp.mailfrom=myname@example.com");

    /* hostile values stay inside their comment or quoted-string */
    spf_query h = q;
    h.mail_from = "\"a(b)\\\"c\"@example.com";
    h.helo = "x\r\ny";
    spf_result e = {.result = SPF_PERMERROR, .identity = "mailfrom", .problem = "bad \"record\"\r\n"};
    sb_reset(&out);
    spf_received_header(&e, &h, &out);
    assert_non_null(strstr(out.data, "envelope-from=\"\\\"a(b)\\\\\\\"c\\\"@example.com\";"));
    assert_non_null(strstr(out.data, "helo=\"x??y\";"));
    assert_non_null(strstr(out.data, "problem=\"bad \\\"record\\\"??\";"));
    assert_non_null(strstr(out.data, "domain of \"a?b??\"c\"@example.com"));
    sb_reset(&out);
    spf_result n = {.result = SPF_NONE, .identity = "helo"};
    spf_query nh = q;
    nh.mail_from = "";
    spf_auth_results(&n, &nh, &out);
    assert_string_equal(out.data, "spf=none smtp.helo=foo.example.com");
    sb_free(&out);
    assert_string_equal(spf_res_name(SPF_SOFTFAIL), "softfail");
    assert_string_equal(spf_res_name(SPF_TEMPERROR), "temperror");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_parse), cmocka_unit_test(test_is_record), cmocka_unit_test(test_macro_v4),
        cmocka_unit_test(test_macro_v6),     cmocka_unit_test(test_domain_trim), cmocka_unit_test(test_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
