/*
 * test_dir.c - the embedded directory: LDIF parsing (errors with line numbers, base64,
 * continuations), entry kinds, lookups and recursive expansion, and a 10,000-user directory.
 * Runs with the working directory tests/unit (etc/ is two levels up).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dir/dir.h"

#define DOMAIN_HEAD "dn: dc=example,dc=test\nobjectClass: mailDomain\n\n" /* lines 1-3 */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    strbuf sb;
    sb_init(&sb);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sb_append(&sb, buf, n);
    fclose(f);
    return sb_steal(&sb);
}

static void errs_free(conf_errors *e)
{
    sv_free(&e->msgs);
}

/* errs_dump - print collected errors (helps when an assertion fails). */
static void errs_dump(const conf_errors *e)
{
    for (size_t i = 0; i < e->msgs.n; i++) fprintf(stderr, "  error: %s\n", e->msgs.v[i]);
}

/* load_ok - load text that must be valid. */
static sl_directory *load_ok(const char *text)
{
    conf_errors e = {0};
    sl_directory *d = dir_load_ldif("t.ldif", text, &e);
    if (!d || e.msgs.n) errs_dump(&e);
    assert_non_null(d);
    assert_int_equal(e.msgs.n, 0);
    errs_free(&e);
    return d;
}

/* expand_str - dir_expand's result joined with spaces (or the error text). */
static char *expand_str(const sl_directory *d, const char *addr, sl_result *res)
{
    strvec out = {0};
    char err[256];
    *res = dir_expand(d, addr, &out, err, sizeof err);
    strbuf sb;
    sb_init(&sb);
    if (*res != SL_OK) {
        assert_int_equal(out.n, 0);
        sb_puts(&sb, err);
    }
    for (size_t i = 0; i < out.n; i++) {
        if (i) sb_putc(&sb, ' ');
        sb_puts(&sb, out.v[i]);
    }
    sv_free(&out);
    return sb_steal(&sb);
}

static void assert_expands(const sl_directory *d, const char *addr, sl_result want, const char *text)
{
    sl_result r;
    char *got = expand_str(d, addr, &r);
    if (r != want || strcmp(got, text) != 0) fprintf(stderr, "expand %s: %d \"%s\"\n", addr, (int)r, got);
    assert_int_equal(r, want);
    assert_string_equal(got, text);
    free(got);
}

static void test_example_file(void **state)
{
    (void)state;
    char *text = read_file("../../etc/directory.ldif");
    sl_directory *d = load_ok(text);
    assert_int_equal(dir_domain_count(d), 1);
    assert_int_equal(dir_user_count(d), 2);
    assert_string_equal(dir_first_domain(d), "example.com");
    assert_true(dir_domain_is_local(d, "example.com"));
    assert_true(dir_domain_is_local(d, "EXAMPLE.Com"));
    assert_false(dir_domain_is_local(d, "example.org"));
    assert_false(dir_domain_is_local(d, "com"));

    const dir_entry *a = dir_lookup(d, "alice@example.com");
    assert_non_null(a);
    assert_int_equal(a->kind, DIR_USER);
    assert_string_equal(a->mail, "alice@example.com");
    assert_string_equal(a->uid, "alice");
    assert_ptr_equal(dir_lookup(d, "ALICE@Example.COM"), a);
    assert_ptr_equal(dir_lookup(d, "a@example.com"), a);
    assert_null(dir_lookup(d, "alice@example.org"));
    assert_null(dir_lookup(d, "alic@example.com"));

    const dir_entry *g = dir_lookup(d, "staff@example.com");
    assert_non_null(g);
    assert_int_equal(g->kind, DIR_GROUP);
    assert_int_equal(g->members.n, 2);

    assert_expands(d, "alice@example.com", SL_OK, "alice@example.com");
    assert_expands(d, "A@EXAMPLE.COM", SL_OK, "alice@example.com");
    assert_expands(d, "staff@example.com", SL_OK, "alice@example.com bob@example.com");
    assert_expands(d, "carol@example.com", SL_PERM, "no such user");
    dir_free(d);
    free(text);
}

typedef struct {
    const char *name;
    const char *text;
    int line;
    const char *msg; /* substring of the error */
} error_case;

static const error_case error_cases[] = {
    {"no colon", DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nthis has no colon\nmail: a@example.test\n",
     6, "without ':'"},
    {"no dn", DOMAIN_HEAD "objectClass: mailUser\nmail: a@example.test\n", 4, "without dn"},
    {"bad base64", DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail:: YUBleGFtcGxlLnRlc3Q!\n", 6,
     "base64"},
    {"base64 bad length", DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\ncn:: YWJj\nmail:: YWJ\n", 7,
     "base64"},
    {"base64 bad padding", DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail:: YW=j\n", 6, "base64"},
    {"base64 padding inside", DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail:: YQ==YWJj\n", 6,
     "base64"},
    {"user without mail", DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nuid: a\n", 4, "without mail"},
    {"group without mail", DOMAIN_HEAD "\n\ndn: cn=g,dc=example,dc=test\nobjectClass: mailGroup\ncn: g\n", 6,
     "without mail"},
    {"duplicate mail",
     DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail: a@example.test\n\n"
                 "dn: uid=b,dc=example,dc=test\nobjectClass: mailUser\nmail: A@Example.Test\n",
     10, "duplicate address"},
    {"alternate clashes with mail",
     DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail: a@example.test\n\n"
                 "dn: uid=b,dc=example,dc=test\nobjectClass: mailUser\nmail: b@example.test\n"
                 "mailAlternateAddress: a@example.test\n",
     11, "duplicate address"},
    {"member names no entry",
     DOMAIN_HEAD "dn: cn=g,dc=example,dc=test\nobjectClass: mailGroup\nmail: g@example.test\n"
                 "member: uid=ghost,dc=example,dc=test\n",
     7, "names no entry"},
    {"member is not a user", DOMAIN_HEAD "dn: cn=g,dc=example,dc=test\nobjectClass: mailGroup\nmail: g@example.test\n"
                                         "member: dc=example,dc=test\n",
     7, "not a user or group"},
    {"mail not an address", DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail: alice\n", 6,
     "not an address"},
    {"mail with empty local part", DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail: @example.test\n",
     6, "not an address"},
    {"mail with bad domain",
     DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail: a@example..test\n", 6, "not an address"},
    {"forward not an address",
     DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail: a@example.test\nmailForwardingAddress: x y\n",
     7, "not an address"},
    {"member address invalid",
     DOMAIN_HEAD "dn: cn=g,dc=example,dc=test\nobjectClass: mailGroup\nmail: g@example.test\nmgrpRFC822MailMember: nope\n",
     7, "not an address"},
    {"user in foreign domain", DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail: a@example.org\n", 6,
     "not a local domain"},
    {"group in foreign domain", DOMAIN_HEAD "dn: cn=g,dc=example,dc=test\nobjectClass: mailGroup\nmail: g@other.test\n", 6,
     "not a local domain"},
    {"dn inside entry", DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\ndn: uid=b,dc=example,dc=test\n",
     6, "inside an entry"},
    {"continuation without line", DOMAIN_HEAD " stray\n", 4, "continuation"},
    {"duplicate domain", DOMAIN_HEAD "dn: dc=example2,dc=test\nobjectClass: mailDomain\nassociatedDomain: EXAMPLE.test\n", 6,
     "already defined"},
    {"duplicate dn", DOMAIN_HEAD "dn: DC=Example, DC=Test\nobjectClass: top\n", 4, "duplicate dn"},
    {"url value", DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail:< file:///etc/passwd\n", 6,
     "URL"},
    {"bad version", "version: 2\n\n" DOMAIN_HEAD, 1, "version"},
    {"two mail values",
     DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail: a@example.test\nmail: b@example.test\n", 7,
     "more than one mail"},
    {"bad number", DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail: a@example.test\nmailQuota: lots\n",
     7, "not a number"},
};

static void test_errors_with_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(error_cases); i++) {
        const error_case *c = &error_cases[i];
        conf_errors e = {0};
        sl_directory *d = dir_load_ldif("t.ldif", c->text, &e);
        char want[32];
        snprintf(want, sizeof want, "t.ldif:%d:", c->line);
        bool found = false;
        for (size_t k = 0; k < e.msgs.n; k++)
            if (strstr(e.msgs.v[k], want) && strstr(e.msgs.v[k], c->msg)) found = true;
        if (d || !found) {
            fprintf(stderr, "case \"%s\": want %s ... %s\n", c->name, want, c->msg);
            errs_dump(&e);
        }
        assert_null(d);
        assert_true(found);
        errs_free(&e);
    }
}

static void test_errors_all_reported(void **state)
{
    (void)state;
    conf_errors e = {0};
    const char *text = DOMAIN_HEAD "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nbroken\nmail: a@example.test\n\n"
                                   "dn: uid=b,dc=example,dc=test\nobjectClass: mailUser\nmail: b@elsewhere.test\n";
    assert_null(dir_load_ldif("t.ldif", text, &e));
    assert_int_equal(e.msgs.n, 2);
    errs_free(&e);
}

static void test_base64_and_continuation(void **state)
{
    (void)state;
    /* "dn:: " is "uid=carol,dc=example,dc=test"; "mail:: " is "carol@example.test" */
    const char *text = "# a comment\n"
                       "#  that continues\n"
                       " on a folded line\n"
                       "version: 1\n"
                       "\n"
                       "dn: dc=example,dc=test\r\n"
                       "objectClass: MAILDOMAIN\r\n"
                       "\r\n"
                       "dn:: dWlkPWNhcm9sLGRjPWV4YW1wbGUsZGM9dGVzdA==\n"
                       "objectclass: mailuser\n"
                       "MAIL:: Y2Fyb2xAZXhhbXBsZS50ZXN0\n"
                       "cn;lang-en: Carol\n"
                       "mailAlternateAddress: ca\n"
                       " rol2@exam\n"
                       " ple.test\n"
                       "# comment inside an entry\n"
                       "uid;x-opt: carol\n"
                       "userPassword:: e1NTSEF9YWJj\n"
                       "mailAlternateAddress:: Yz\n"
                       " NAZXhhbXBsZS50ZXN0\n";
    sl_directory *d = load_ok(text);
    assert_string_equal(dir_first_domain(d), "example.test"); /* from the dc= components */
    const dir_entry *c = dir_lookup(d, "carol@example.test");
    assert_non_null(c);
    assert_string_equal(c->dn, "uid=carol,dc=example,dc=test");
    assert_string_equal(c->uid, "carol");
    assert_string_equal(c->password, "{SSHA}abc");
    assert_int_equal(c->line, 9);
    assert_int_equal(c->alt.n, 2);
    assert_ptr_equal(dir_lookup(d, "carol2@example.test"), c);
    assert_ptr_equal(dir_lookup(d, "c3@example.test"), c);
    dir_free(d);
}

static void test_kinds(void **state)
{
    (void)state;
    const char *text = "dn: o=acme\nobjectClass: organization\no: acme\n\n"
                       "dn: dc=acme,dc=test\nobjectClass: mailDomain\nassociatedDomain: acme.test\n"
                       "associatedDomain: Acme.Example\nmailDomainStatus: active\n\n"
                       "dn: ou=people,dc=acme,dc=test\nobjectClass: organizationalUnit\nou: people\n\n"
                       "dn: uid=p,ou=people,dc=acme,dc=test\nobjectClass: inetOrgPerson\nmail: p@acme.test\n\n"
                       "dn: uid=q,ou=people,dc=acme,dc=test\nobjectClass: inetOrgPerson\ncn: no mail, not a user\n\n"
                       "dn: uid=r,ou=people,dc=acme,dc=test\nobjectClass: mailUser\nmail: r@ACME.EXAMPLE\n";
    sl_directory *d = load_ok(text);
    assert_int_equal(dir_domain_count(d), 2);
    assert_int_equal(dir_user_count(d), 2);
    assert_string_equal(dir_first_domain(d), "acme.test");
    assert_true(dir_domain_is_local(d, "acme.example"));
    const dir_entry *r = dir_lookup(d, "r@acme.example");
    assert_non_null(r);
    assert_string_equal(r->mail, "r@acme.example"); /* domain lower-cased */
    assert_non_null(dir_lookup(d, "p@acme.test"));
    dir_free(d);
}

static void test_forwarding(void **state)
{
    (void)state;
    const char *text = DOMAIN_HEAD
        "dn: uid=f,dc=example,dc=test\nobjectClass: mailUser\nmail: f@example.test\n"
        "mailForwardingAddress: f@elsewhere.test\nmailForwardingAddress: f2@elsewhere.test\n\n"
        "dn: uid=k,dc=example,dc=test\nobjectClass: mailUser\nmail: k@example.test\n"
        "mailForwardingAddress: k@elsewhere.test\nmailDeliveryOption: forward\nmailDeliveryOption: Mailbox\n\n"
        "dn: uid=m,dc=example,dc=test\nobjectClass: mailUser\nmail: m@example.test\nmailDeliveryOption: mailbox\n\n"
        "dn: uid=x,dc=example,dc=test\nobjectClass: mailUser\nmail: x@example.test\nmailUserStatus: Inactive\n\n"
        "dn: uid=y,dc=example,dc=test\nobjectClass: mailUser\nmail: y@example.test\nmailUserStatus: deleted\n\n"
        "dn: uid=z,dc=example,dc=test\nobjectClass: mailUser\nmail: z@example.test\nmailUserStatus: active\n\n"
        "dn: cn=all,dc=example,dc=test\nobjectClass: mailGroup\nmail: all@example.test\n"
        "member: uid=x,dc=example,dc=test\nmember: uid=f,dc=example,dc=test\nmember: uid=z,dc=example,dc=test\n\n"
        "dn: cn=off,dc=example,dc=test\nobjectClass: mailGroup\nmail: off@example.test\n"
        "member: uid=x,dc=example,dc=test\n";
    sl_directory *d = load_ok(text);
    assert_expands(d, "f@example.test", SL_OK, "f@elsewhere.test f2@elsewhere.test");
    assert_expands(d, "k@example.test", SL_OK, "k@elsewhere.test k@example.test");
    assert_expands(d, "m@example.test", SL_OK, "m@example.test");
    assert_expands(d, "x@example.test", SL_PERM, "mailbox disabled");
    assert_expands(d, "y@example.test", SL_PERM, "mailbox disabled");
    assert_expands(d, "z@example.test", SL_OK, "z@example.test");
    assert_expands(d, "all@example.test", SL_OK, "f@elsewhere.test f2@elsewhere.test z@example.test");
    assert_expands(d, "off@example.test", SL_PERM, "group has no deliverable members");
    assert_true(dir_lookup(d, "k@example.test")->keep_mailbox);
    assert_false(dir_lookup(d, "f@example.test")->keep_mailbox);
    assert_string_equal(dir_lookup(d, "x@example.test")->status, "Inactive");
    dir_free(d);
}

static void test_group_members(void **state)
{
    (void)state;
    /* the group comes first: member DNs are forward references */
    const char *text = DOMAIN_HEAD
        "dn: cn=team,dc=example,dc=test\nobjectClass: groupOfNames\nobjectClass: mailGroup\nmail: team@example.test\n"
        "mailAlternateAddress: crew@example.test\n"
        "mgrpRFC822MailMember: Outside@Partner.Test\n"
        "member: UID=a, DC=example, DC=test\n"
        "mgrpRFC822MailMember: b2@example.test\n"
        "member: cn=sub,dc=example,dc=test\n"
        "mgrpRFC822MailMember: outside@partner.test\n"
        "mgrpRFC822MailMember: nobody@example.test\n\n"
        "dn: cn=sub,dc=example,dc=test\nobjectClass: mailGroup\nmail: sub@example.test\n"
        "member: uid=a,dc=example,dc=test\nmember: uid=c,dc=example,dc=test\n"
        "mgrpRFC822MailMember: team@example.test\n\n"
        "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail: a@example.test\n\n"
        "dn: uid=b,dc=example,dc=test\nobjectClass: mailUser\nmail: b@example.test\nmailAlternateAddress: b2@example.test\n\n"
        "dn: uid=c,dc=example,dc=test\nobjectClass: mailUser\nmail: c@example.test\n";
    sl_directory *d = load_ok(text);
    /* in order, deduplicated, the cycle sub -> team adds nothing, unknown addresses kept as is */
    assert_expands(d, "crew@example.test", SL_OK,
                   "Outside@Partner.Test a@example.test b@example.test c@example.test nobody@example.test");
    assert_expands(d, "sub@example.test", SL_OK,
                   "a@example.test c@example.test Outside@Partner.Test b@example.test nobody@example.test");
    const dir_entry *team = dir_lookup(d, "team@example.test");
    assert_int_equal(team->members.n, 6);
    assert_string_equal(team->members.v[1], "a@example.test"); /* member DN resolved to its mail */
    dir_free(d);
}

/* nested_groups - LDIF with groups g1 -> g2 -> ... -> gN -> user u. */
static char *nested_groups(int n)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, DOMAIN_HEAD "dn: uid=u,dc=example,dc=test\nobjectClass: mailUser\nmail: u@example.test\n\n");
    for (int i = 1; i <= n; i++) {
        sb_printf(&sb, "dn: cn=g%d,dc=example,dc=test\nobjectClass: mailGroup\nmail: g%d@example.test\n", i, i);
        if (i < n)
            sb_printf(&sb, "mgrpRFC822MailMember: g%d@example.test\n\n", i + 1);
        else
            sb_puts(&sb, "member: uid=u,dc=example,dc=test\n\n");
    }
    return sb_steal(&sb);
}

static void test_recursion_bound(void **state)
{
    (void)state;
    char *ten = nested_groups(10);
    sl_directory *d = load_ok(ten);
    assert_expands(d, "g1@example.test", SL_OK, "u@example.test");
    dir_free(d);
    free(ten);

    char *eleven = nested_groups(11);
    d = load_ok(eleven);
    sl_result r;
    char *got = expand_str(d, "g1@example.test", &r);
    assert_int_equal(r, SL_PERM);
    assert_non_null(strstr(got, "nesting"));
    free(got);
    assert_expands(d, "g2@example.test", SL_OK, "u@example.test");
    dir_free(d);
    free(eleven);
}

static void test_large_directory(void **state)
{
    (void)state;
    enum { N = 10000 };
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "version: 1\n\ndn: dc=big,dc=test\nobjectClass: mailDomain\n\n");
    sb_puts(&sb, "dn: cn=everyone,dc=big,dc=test\nobjectClass: mailGroup\nmail: everyone@big.test\n");
    for (int i = 0; i < N; i++) sb_printf(&sb, "member: uid=user%d,ou=people,dc=big,dc=test\n", i);
    sb_puts(&sb, "\n");
    for (int i = 0; i < N; i++)
        sb_printf(&sb,
                  "dn: uid=user%d,ou=people,dc=big,dc=test\nobjectClass: inetOrgPerson\nobjectClass: mailUser\n"
                  "uid: user%d\nmail: user%d@big.test\nmailAlternateAddress: u%d@big.test\n\n",
                  i, i, i, i);
    sl_directory *d = load_ok(sb.data);
    sb_free(&sb);
    assert_int_equal(dir_user_count(d), N);
    assert_int_equal(dir_domain_count(d), 1);
    for (int i = 0; i < N; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "USER%d@Big.Test", i);
        const dir_entry *e = dir_lookup(d, addr);
        assert_non_null(e);
        snprintf(addr, sizeof addr, "u%d@big.test", i);
        assert_ptr_equal(dir_lookup(d, addr), e);
        snprintf(addr, sizeof addr, "user%d", i);
        assert_string_equal(e->uid, addr);
    }
    assert_null(dir_lookup(d, "user10000@big.test"));
    strvec out = {0};
    char err[128];
    assert_int_equal(dir_expand(d, "everyone@big.test", &out, err, sizeof err), SL_OK);
    assert_int_equal(out.n, N);
    assert_string_equal(out.v[N - 1], "user9999@big.test");
    sv_free(&out);
    dir_free(d);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    sl_directory *d = load_ok("# nothing here\n\n");
    assert_int_equal(dir_domain_count(d), 0);
    assert_null(dir_first_domain(d));
    assert_null(dir_lookup(d, "a@b.test"));
    assert_false(dir_domain_is_local(d, "b.test"));
    assert_expands(d, "a@b.test", SL_PERM, "no such user");
    dir_free(d);
    dir_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file),        cmocka_unit_test(test_errors_with_lines),
        cmocka_unit_test(test_errors_all_reported), cmocka_unit_test(test_base64_and_continuation),
        cmocka_unit_test(test_kinds),               cmocka_unit_test(test_forwarding),
        cmocka_unit_test(test_group_members),       cmocka_unit_test(test_recursion_bound),
        cmocka_unit_test(test_large_directory),     cmocka_unit_test(test_empty_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
