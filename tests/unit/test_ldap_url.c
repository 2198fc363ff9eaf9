/*
 * test_ldap_url.c - LDAP URLs (RFC 4516) and filters (RFC 4515) as dynamic broadcaster lists use
 * them (dir/ldap_url.h): the parts of a URL, defaults, percent-decoding, malformed URLs and
 * filters with their messages; filter evaluation; DN scopes; the embedded backend's answer to
 * dir_url_match; and the group rules (policy/group.h) with the directory's answers about URLs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "dir/dir.h"
#include "dir/embedded.h"
#include "dir/ldap_url.h"
#include "policy/group.h"

/* ---- URLs ---- */

static void test_url_parts(void **state)
{
    (void)state;
    ld_url u;
    char err[200] = "";
    assert_int_equal(ld_url_parse("ldap:///ou=people,dc=example,dc=com??sub?(department=sales)", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "");
    assert_string_equal(u.dn, "ou=people,dc=example,dc=com");
    assert_int_equal(u.attrs.n, 0);
    assert_int_equal(u.scope, LD_SCOPE_SUB);
    assert_string_equal(u.filter, "(department=sales)");
    ld_url_free(&u);

    assert_int_equal(ld_url_parse("LDAP://ldap.example.com:389/dc=example,dc=com?mail,cn?one?(&(objectClass=mailUser)(ou=x))?x-ext", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "ldap.example.com:389");
    assert_int_equal(u.attrs.n, 2);
    assert_string_equal(u.attrs.v[0], "mail");
    assert_string_equal(u.attrs.v[1], "cn");
    assert_int_equal(u.scope, LD_SCOPE_ONE);
    assert_string_equal(u.filter, "(&(objectClass=mailUser)(ou=x))");
    ld_url_free(&u);
}

static void test_url_defaults(void **state)
{
    (void)state;
    ld_url u;
    char err[200];
    /* RFC 4516: scope base, filter (objectClass=*), empty DN */
    const char *const urls[] = {"ldap://", "ldap:///", "ldap:///dc=x", "ldap:///dc=x?", "ldap:///dc=x???", "ldaps://h/dc=x"};
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        assert_int_equal(ld_url_parse(urls[i], &u, err, sizeof err), 0);
        assert_int_equal(u.scope, LD_SCOPE_BASE);
        assert_string_equal(u.filter, "(objectClass=*)");
        ld_url_free(&u);
    }
    /* a filter written without its parentheses gets them */
    assert_int_equal(ld_url_parse("ldap:///dc=x??sub?department=sales", &u, err, sizeof err), 0);
    assert_string_equal(u.filter, "(department=sales)");
    ld_url_free(&u);
}

static void test_url_percent(void **state)
{
    (void)state;
    ld_url u;
    char err[200];
    assert_int_equal(ld_url_parse("ldap:///ou=Sales%20Dept,dc=example,dc=com??SUB?(cn=a%3Fb%2Cc)", &u, err, sizeof err), 0);
    assert_string_equal(u.dn, "ou=Sales Dept,dc=example,dc=com");
    assert_int_equal(u.scope, LD_SCOPE_SUB);
    assert_string_equal(u.filter, "(cn=a?b,c)"); /* %3F is a '?' of the filter, not a separator */
    ld_url_free(&u);
    /* a filter's own escape survives percent-decoding: %5C is the backslash */
    assert_int_equal(ld_url_parse("ldap:///dc=x??sub?(cn=a%5C2ab)", &u, err, sizeof err), 0);
    assert_string_equal(u.filter, "(cn=a\\2ab)");
    ld_url_free(&u);
}

static void test_url_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *url, *msg;
    } bad[] = {
        {"http://example.com/", "not an LDAP URL"},
        {"ldap:", "not an LDAP URL"},
        {"ldap://host?x", "'?' before"},
        {"ldap:///dc=x??bogus?(a=b)", "bad scope"},
        {"ldap:///dc=x??sub?(a=b", "bad filter"},
        {"ldap:///dc=x??sub?(a=b))", "bad filter"},
        {"ldap:///dc=x??sub?(=b)", "bad filter"},
        {"ldap:///dc=x??sub?(a=(b)", "bad filter"},
        {"ldap:///dc=x??sub?(a=\\zz)", "bad filter"},
        {"ldap:///dc=x??sub?(!(a=b)(c=d))", "bad filter"},
        {"ldap:///dc=x%2", "bad percent escape"},
        {"ldap:///dc=x%00", "bad percent escape"},
        {"ldap:///dc=x?a b", "bad attribute"},
        {"ldap:///dc=x??sub?(a=b)?!critical", "critical extension"},
        {"ldap:///dc=x??sub?(a=b)?e?f", "too many"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ld_url u;
        char err[200] = "";
        if (ld_url_parse(bad[i].url, &u, err, sizeof err) == 0) fail_msg("accepted: %s", bad[i].url);
        if (!strstr(err, bad[i].msg)) fail_msg("%s: message \"%s\" lacks \"%s\"", bad[i].url, err, bad[i].msg);
        assert_null(u.dn); /* nothing left to free */
    }
}

/* ---- filters ---- */

/* A fake entry: "name=value" strings. */
static void kv_values(const void *src, const char *name, strvec *out)
{
    for (const char *const *p = src; *p; p++) {
        size_t n = strlen(name);
        if (strncasecmp(*p, name, n) == 0 && (*p)[n] == '=') sv_push(out, *p + n + 1);
    }
}

static void test_filter_eval(void **state)
{
    (void)state;
    static const char *const entry[] = {"objectClass=inetOrgPerson", "objectClass=mailUser", "mail=Ann@Example.com",
                                        "department=Sales", "cn=Ann (boss) Smith", NULL};
    static const struct {
        const char *filter;
        int want;
    } cases[] = {
        {"(department=sales)", 1},           {"(department=support)", 0},
        {"(mail=*)", 1},                     {"(fax=*)", 0},
        {"(cn=Ann*)", 1},                    {"(cn=*smith)", 1},
        {"(cn=*boss*)", 1},                  {"(cn=A*\\28boss\\29*h)", 1},
        {"(cn=*smith*boss*)", 0},            {"(cn=Ann*Ann*)", 0},
        {"(&(objectClass=mailUser)(department=sales))", 1},
        {"(&(objectClass=mailUser)(department=x))", 0},
        {"(|(department=x)(mail=ann@example.com))", 1},
        {"(!(department=sales))", 0},        {"(&)", 1}, {"(|)", 0},
        {"(employeeNumber>=5)", -1},         {"(cn~=an)", -1}, {"(cn:caseExactMatch:=x)", -1},
        {"(&(department=x)(employeeNumber>=5))", 0},  /* false whatever the unknown part says */
        {"(|(department=sales)(employeeNumber>=5))", 1},
        {"(|(department=x)(employeeNumber>=5))", -1},
        {"(!(employeeNumber>=5))", -1},
        {"department=sales", 1},             /* outer parentheses optional */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[160];
        ld_filter *f = ld_filter_parse(cases[i].filter, err, sizeof err);
        if (!f) fail_msg("%s: %s", cases[i].filter, err);
        int got = ld_filter_eval(f, kv_values, entry);
        if (got != cases[i].want) fail_msg("%s: %d, want %d", cases[i].filter, got, cases[i].want);
        ld_filter_free(f);
    }
    /* nesting is bounded */
    strbuf sb;
    sb_init(&sb);
    for (int i = 0; i < 40; i++) sb_puts(&sb, "(!");
    sb_puts(&sb, "(a=b)");
    for (int i = 0; i < 40; i++) sb_puts(&sb, ")");
    char err[160];
    assert_null(ld_filter_parse(sb.data, err, sizeof err));
    assert_non_null(strstr(err, "nested"));
    sb_free(&sb);
}

static void test_dn_scope(void **state)
{
    (void)state;
    const char *base = "ou=People, dc=Example,dc=com";
    assert_true(ld_dn_in_scope("uid=a,ou=people,dc=example,dc=com", base, LD_SCOPE_SUB));
    assert_true(ld_dn_in_scope("uid=a,ou=people,dc=example,dc=com", base, LD_SCOPE_ONE));
    assert_false(ld_dn_in_scope("uid=a,ou=people,dc=example,dc=com", base, LD_SCOPE_BASE));
    assert_true(ld_dn_in_scope("uid=a,ou=x,ou=people,dc=example,dc=com", base, LD_SCOPE_SUB));
    assert_false(ld_dn_in_scope("uid=a,ou=x,ou=people,dc=example,dc=com", base, LD_SCOPE_ONE));
    assert_true(ld_dn_in_scope("ou=people,dc=example,dc=com", base, LD_SCOPE_BASE));
    assert_true(ld_dn_in_scope("ou=people,dc=example,dc=com", base, LD_SCOPE_SUB));
    assert_false(ld_dn_in_scope("ou=people,dc=example,dc=com", base, LD_SCOPE_ONE));
    assert_false(ld_dn_in_scope("uid=a,ou=xpeople,dc=example,dc=com", base, LD_SCOPE_SUB));
    assert_false(ld_dn_in_scope("uid=a,ou=groups,dc=example,dc=com", base, LD_SCOPE_SUB));
    assert_true(ld_dn_in_scope("uid=a\\,b,ou=people,dc=example,dc=com", base, LD_SCOPE_ONE));
    assert_true(ld_dn_in_scope("dc=com", "", LD_SCOPE_ONE));
    assert_false(ld_dn_in_scope("dc=example,dc=com", "", LD_SCOPE_ONE));
    assert_true(ld_dn_in_scope("dc=example,dc=com", "", LD_SCOPE_SUB));
}

/* ---- the embedded backend ---- */

#define LDIF                                                                                          \
    "dn: dc=example,dc=com\nobjectClass: mailDomain\nassociatedDomain: example.com\n\n"               \
    "dn: uid=ann,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nobjectClass: mailUser\n"    \
    "mail: ann@example.com\nmailAlternateAddress: a@example.com\ndepartment: sales\n\n"               \
    "dn: uid=bob,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nobjectClass: mailUser\n"    \
    "mail: bob@example.com\ndepartment: support\n\n"                                                  \
    "dn: uid=cy,ou=staff,dc=example,dc=com\nobjectClass: mailUser\nmail: cy@example.com\n"           \
    "department: sales\n\n"                                                                            \
    "dn: cn=dyn,dc=example,dc=com\nobjectClass: groupOfURLs\nobjectClass: mailGroup\n"                \
    "mail: dyn@example.com\nmemberURL: ldap:///??sub?(department=sales)\n"                           \
    "mgrpRFC822MailMember: ext@elsewhere.com\n\n"                                                     \
    "dn: cn=bad,dc=example,dc=com\nobjectClass: groupOfURLs\nobjectClass: mailGroup\n"                \
    "mail: bad@example.com\nmemberURL: ldap:///??sub?(uidNumber>=5)\n"

typedef struct {
    sl_result rc;
    char why[300];
    int calls;
} match_answer;

static void rec_match(void *arg, sl_result rc, const char *why)
{
    match_answer *a = arg;
    a->rc = rc;
    snprintf(a->why, sizeof a->why, "%s", why ? why : "");
    a->calls++;
}

typedef struct {
    sl_result rc;
    strvec out;
    char why[300];
} expand_answer;

static void rec_expand(void *arg, sl_result rc, strvec targets, const char *why)
{
    expand_answer *x = arg;
    x->rc = rc;
    x->out = targets;
    snprintf(x->why, sizeof x->why, "%s", why ? why : "");
}

static sl_result ask(sl_dir *d, const char *url, const char *addr, const char *dn, char *why)
{
    strvec addrs = {0};
    if (addr) sv_push(&addrs, addr);
    dir_who who = {&addrs, dn};
    match_answer a = {0};
    dir_url_match(d, url, &who, rec_match, &a);
    assert_int_equal(a.calls, 1); /* the embedded backend answers before returning */
    sv_free(&addrs);
    if (why) strcpy(why, a.why);
    return a.rc;
}

static void test_embedded_url_match(void **state)
{
    (void)state;
    char path[] = "/tmp/test_ldap_url_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, LDIF, strlen(LDIF)), (ssize_t)strlen(LDIF));
    close(fd);
    conf_errors e = {0};
    sl_dir *d = dir_open_embedded(path, &e);
    assert_non_null(d);
    const char *sales = "ldap:///ou=people,dc=example,dc=com??sub?(department=sales)";
    char why[300];
    assert_int_equal(ask(d, sales, "ann@example.com", NULL, NULL), SL_OK);
    assert_int_equal(ask(d, sales, "A@Example.com", NULL, NULL), SL_OK);   /* an alternate address */
    assert_int_equal(ask(d, sales, "bob@example.com", NULL, NULL), SL_PERM); /* support */
    assert_int_equal(ask(d, sales, "cy@example.com", NULL, NULL), SL_PERM);  /* sales, outside the base */
    assert_int_equal(ask(d, sales, "nobody@example.com", NULL, NULL), SL_PERM);
    assert_int_equal(ask(d, sales, NULL, "uid=ann, ou=people,dc=example,dc=com", NULL), SL_OK); /* by DN */
    assert_int_equal(ask(d, "ldap:///??sub?(department=sales)", "cy@example.com", NULL, NULL), SL_OK);
    assert_int_equal(ask(d, "ldap:///ou=people,dc=example,dc=com??one?(objectClass=mailUser)", "bob@example.com", NULL, NULL),
                     SL_OK);
    /* what the embedded backend cannot evaluate, or a malformed URL: TEMP with a reason */
    assert_int_equal(ask(d, "ldap:///ou=people,dc=example,dc=com??sub?(employeeNumber>=5)", "ann@example.com", NULL, why),
                     SL_TEMP);
    assert_non_null(strstr(why, "cannot evaluate"));
    assert_int_equal(ask(d, "ldap:///dc=x??nope?(a=b)", "ann@example.com", NULL, why), SL_TEMP);
    assert_non_null(strstr(why, "malformed LDAP URL: bad scope"));
    /* memberURL: a dynamic group's members are the entries its URL selects, after the static ones */
    expand_answer x = {0};
    dir_expand(d, "dyn@example.com", rec_expand, &x);
    assert_int_equal(x.rc, SL_OK);
    assert_int_equal(x.out.n, 3);
    assert_string_equal(x.out.v[0], "ext@elsewhere.com");
    assert_string_equal(x.out.v[1], "ann@example.com");
    assert_string_equal(x.out.v[2], "cy@example.com"); /* the base is the whole directory */
    sv_free(&x.out);
    dir_expand(d, "bad@example.com", rec_expand, &x);
    assert_int_equal(x.rc, SL_TEMP);
    assert_non_null(strstr(x.why, "cannot evaluate"));
    dir_unref(d);
    unlink(path);
}

/* ---- group rules with URL answers ---- */

static void test_group_urls(void **state)
{
    (void)state;
    const char *url = "ldap:///ou=people,dc=example,dc=com??sub?(department=sales)";
    dir_entry g = {0};
    sv_push(&g.allowed_broadcasters, "boss@example.com");
    sv_push(&g.allowed_broadcasters, url);
    strvec urls = {0};
    group_urls(&g, &urls);
    assert_int_equal(urls.n, 1);
    const char *why;
    sl_result rc[1] = {SL_OK};
    group_sender who = {"ann@example.com", NULL, NULL, &urls, rc};
    assert_int_equal(group_decide(&g, &who, &why), GROUP_ALLOW);
    rc[0] = SL_PERM;
    assert_int_equal(group_decide(&g, &who, &why), GROUP_REFUSE);
    assert_string_equal(why, "not an allowed broadcaster");
    rc[0] = SL_TEMP;
    assert_int_equal(group_decide(&g, &who, &why), GROUP_TEMP);
    who.from = "boss@example.com"; /* a static value decides: the unknown list does not matter */
    assert_int_equal(group_decide(&g, &who, &why), GROUP_ALLOW);
    who.urls = NULL; /* a URL nobody asked about is unknown, never a match nor a refusal */
    who.from = "ann@example.com";
    assert_int_equal(group_decide(&g, &who, &why), GROUP_TEMP);
    /* disallowed lists: a match refuses, unknown is TEMP */
    dir_entry h = {0};
    sv_push(&h.disallowed_broadcasters, url);
    who.urls = &urls;
    rc[0] = SL_OK;
    assert_int_equal(group_decide(&h, &who, &why), GROUP_REFUSE);
    assert_string_equal(why, "disallowed broadcaster");
    rc[0] = SL_PERM;
    assert_int_equal(group_decide(&h, &who, &why), GROUP_ALLOW);
    rc[0] = SL_TEMP;
    assert_int_equal(group_decide(&h, &who, &why), GROUP_TEMP);
    sv_free(&urls);
    dir_entry_free(&g);
    dir_entry_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parts),       cmocka_unit_test(test_url_defaults),
        cmocka_unit_test(test_url_percent),     cmocka_unit_test(test_url_malformed),
        cmocka_unit_test(test_filter_eval),     cmocka_unit_test(test_dn_scope),
        cmocka_unit_test(test_embedded_url_match), cmocka_unit_test(test_group_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
