/*
 * test_dir.c - the embedded directory: LDIF parsing (errors with line numbers, base64,
 * continuations), entry kinds, lookups and recursive expansion, and a 10,000-user directory;
 * then the directory interface (dir/dir.h) over it: answers, ownership, errors, references.
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
#include "dir/embedded.h"
#include <unistd.h>

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
static embedded_dir *load_ok(const char *text)
{
    conf_errors e = {0};
    embedded_dir *d = embedded_load_ldif("t.ldif", text, &e);
    if (!d || e.msgs.n) errs_dump(&e);
    assert_non_null(d);
    assert_int_equal(e.msgs.n, 0);
    errs_free(&e);
    return d;
}

/* expand_str - embedded_expand's result joined with spaces (or the error text). */
static char *expand_str(const embedded_dir *d, const char *addr, sl_result *res)
{
    strvec out = {0};
    char err[256];
    *res = embedded_expand(d, addr, &out, err, sizeof err);
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

static void assert_expands(const embedded_dir *d, const char *addr, sl_result want, const char *text)
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
    embedded_dir *d = load_ok(text);
    assert_int_equal(embedded_domain_count(d), 1);
    assert_int_equal(embedded_user_count(d), 2);
    assert_string_equal(embedded_first_domain(d), "example.com");
    assert_true(embedded_domain_is_local(d, "example.com"));
    assert_true(embedded_domain_is_local(d, "EXAMPLE.Com"));
    assert_false(embedded_domain_is_local(d, "example.org"));
    assert_false(embedded_domain_is_local(d, "com"));

    const emb_entry *a = embedded_lookup(d, "alice@example.com");
    assert_non_null(a);
    assert_int_equal(a->kind, EMB_USER);
    assert_string_equal(a->mail, "alice@example.com");
    assert_string_equal(a->uid, "alice");
    assert_ptr_equal(embedded_lookup(d, "ALICE@Example.COM"), a);
    assert_ptr_equal(embedded_lookup(d, "a@example.com"), a);
    assert_null(embedded_lookup(d, "alice@example.org"));
    assert_null(embedded_lookup(d, "alic@example.com"));

    const emb_entry *g = embedded_lookup(d, "staff@example.com");
    assert_non_null(g);
    assert_int_equal(g->kind, EMB_GROUP);
    assert_int_equal(g->members.n, 2);

    assert_expands(d, "alice@example.com", SL_OK, "alice@example.com");
    assert_expands(d, "A@EXAMPLE.COM", SL_OK, "alice@example.com");
    assert_expands(d, "staff@example.com", SL_OK, "alice@example.com bob@example.com");
    assert_expands(d, "carol@example.com", SL_PERM, "no such user");
    embedded_free(d);
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
        embedded_dir *d = embedded_load_ldif("t.ldif", c->text, &e);
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
    assert_null(embedded_load_ldif("t.ldif", text, &e));
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
    embedded_dir *d = load_ok(text);
    assert_string_equal(embedded_first_domain(d), "example.test"); /* from the dc= components */
    const emb_entry *c = embedded_lookup(d, "carol@example.test");
    assert_non_null(c);
    assert_string_equal(c->dn, "uid=carol,dc=example,dc=test");
    assert_string_equal(c->uid, "carol");
    assert_string_equal(c->password, "{SSHA}abc");
    assert_int_equal(c->line, 9);
    assert_int_equal(c->alt.n, 2);
    assert_ptr_equal(embedded_lookup(d, "carol2@example.test"), c);
    assert_ptr_equal(embedded_lookup(d, "c3@example.test"), c);
    embedded_free(d);
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
    embedded_dir *d = load_ok(text);
    assert_int_equal(embedded_domain_count(d), 2);
    assert_int_equal(embedded_user_count(d), 2);
    assert_string_equal(embedded_first_domain(d), "acme.test");
    assert_true(embedded_domain_is_local(d, "acme.example"));
    const emb_entry *r = embedded_lookup(d, "r@acme.example");
    assert_non_null(r);
    assert_string_equal(r->mail, "r@acme.example"); /* domain lower-cased */
    assert_non_null(embedded_lookup(d, "p@acme.test"));
    embedded_free(d);
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
    embedded_dir *d = load_ok(text);
    assert_expands(d, "f@example.test", SL_OK, "f@elsewhere.test f2@elsewhere.test");
    assert_expands(d, "k@example.test", SL_OK, "k@elsewhere.test k@example.test");
    assert_expands(d, "m@example.test", SL_OK, "m@example.test");
    assert_expands(d, "x@example.test", SL_PERM, "mailbox disabled");
    assert_expands(d, "y@example.test", SL_PERM, "mailbox disabled");
    assert_expands(d, "z@example.test", SL_OK, "z@example.test");
    assert_expands(d, "all@example.test", SL_OK, "f@elsewhere.test f2@elsewhere.test z@example.test");
    assert_expands(d, "off@example.test", SL_PERM, "group has no deliverable members");
    assert_true(embedded_lookup(d, "k@example.test")->keep_mailbox);
    assert_false(embedded_lookup(d, "f@example.test")->keep_mailbox);
    assert_string_equal(embedded_lookup(d, "x@example.test")->status, "Inactive");
    embedded_free(d);
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
    embedded_dir *d = load_ok(text);
    /* in order, deduplicated, the cycle sub -> team adds nothing, unknown addresses kept as is */
    assert_expands(d, "crew@example.test", SL_OK,
                   "Outside@Partner.Test a@example.test b@example.test c@example.test nobody@example.test");
    assert_expands(d, "sub@example.test", SL_OK,
                   "a@example.test c@example.test Outside@Partner.Test b@example.test nobody@example.test");
    const emb_entry *team = embedded_lookup(d, "team@example.test");
    assert_int_equal(team->members.n, 6);
    assert_string_equal(team->members.v[1], "a@example.test"); /* member DN resolved to its mail */
    embedded_free(d);
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
    embedded_dir *d = load_ok(ten);
    assert_expands(d, "g1@example.test", SL_OK, "u@example.test");
    embedded_free(d);
    free(ten);

    char *eleven = nested_groups(11);
    d = load_ok(eleven);
    sl_result r;
    char *got = expand_str(d, "g1@example.test", &r);
    assert_int_equal(r, SL_PERM);
    assert_non_null(strstr(got, "nesting"));
    free(got);
    assert_expands(d, "g2@example.test", SL_OK, "u@example.test");
    embedded_free(d);
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
    embedded_dir *d = load_ok(sb.data);
    sb_free(&sb);
    assert_int_equal(embedded_user_count(d), N);
    assert_int_equal(embedded_domain_count(d), 1);
    for (int i = 0; i < N; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "USER%d@Big.Test", i);
        const emb_entry *e = embedded_lookup(d, addr);
        assert_non_null(e);
        snprintf(addr, sizeof addr, "u%d@big.test", i);
        assert_ptr_equal(embedded_lookup(d, addr), e);
        snprintf(addr, sizeof addr, "user%d", i);
        assert_string_equal(e->uid, addr);
    }
    assert_null(embedded_lookup(d, "user10000@big.test"));
    strvec out = {0};
    char err[128];
    assert_int_equal(embedded_expand(d, "everyone@big.test", &out, err, sizeof err), SL_OK);
    assert_int_equal(out.n, N);
    assert_string_equal(out.v[N - 1], "user9999@big.test");
    sv_free(&out);
    embedded_free(d);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    embedded_dir *d = load_ok("# nothing here\n\n");
    assert_int_equal(embedded_domain_count(d), 0);
    assert_null(embedded_first_domain(d));
    assert_null(embedded_lookup(d, "a@b.test"));
    assert_false(embedded_domain_is_local(d, "b.test"));
    assert_expands(d, "a@b.test", SL_PERM, "no such user");
    embedded_free(d);
    embedded_free(NULL);
}

/* ---- the directory interface over the embedded backend ---- */

typedef struct {
    int calls;
    sl_result res;
    strvec targets;
    char why[64];
    dir_entry user;
    dir_domain_info dom;
} answer_rec;

static void rec_domain(void *arg, sl_result res, dir_domain_info *info)
{
    answer_rec *a = arg;
    a->calls++;
    a->res = res;
    dir_domain_info_free(&a->dom);
    if (info) a->dom = *info; /* taken over */
}

static void rec_expand(void *arg, sl_result res, strvec targets, const char *why)
{
    answer_rec *a = arg;
    a->calls++;
    a->res = res;
    sv_free(&a->targets);
    a->targets = targets; /* the caller owns the answer */
    snprintf(a->why, sizeof a->why, "%s", why ? why : "");
}

static void rec_user(void *arg, sl_result res, dir_entry *u)
{
    answer_rec *a = arg;
    a->calls++;
    a->res = res;
    dir_entry_free(&a->user);
    if (res == SL_OK) a->user = *u; /* taken over */
}

static const char IFACE_LDIF[] =
    DOMAIN_HEAD
    "dn: uid=alice,dc=example,dc=test\nobjectClass: mailUser\nmail: alice@example.test\n"
    "userPassword: {CRYPT}$6$x$y\n\n"
    "dn: uid=dave,dc=example,dc=test\nobjectClass: mailUser\nmail: dave@example.test\nmailUserStatus: inactive\n\n"
    "dn: cn=staff,dc=example,dc=test\nobjectClass: mailGroup\nmail: staff@example.test\n"
    "mgrpRFC822MailMember: alice@example.test\nmgrpRFC822MailMember: ext@elsewhere.test\n";

static void test_interface_answers(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-dir-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, IFACE_LDIF, strlen(IFACE_LDIF)), (ssize_t)strlen(IFACE_LDIF));
    close(fd);
    conf_errors e = {0};
    sl_dir *d = dir_open_embedded(path, &e);
    assert_non_null(d);
    assert_string_equal(dir_backend_name(d), "embedded");
    size_t nd, nu;
    dir_stats(d, &nd, &nu);
    assert_int_equal(nd, 1);
    answer_rec a = {0};
    dir_domain(d, "EXAMPLE.test", rec_domain, &a);
    assert_true(a.calls == 1 && a.res == SL_OK);
    dir_domain(d, "example.org", rec_domain, &a);
    assert_true(a.calls == 2 && a.res == SL_PERM);
    dir_expand(d, "staff@example.test", rec_expand, &a);
    assert_int_equal(a.res, SL_OK);
    assert_int_equal(a.targets.n, 2);
    assert_string_equal(a.targets.v[0], "alice@example.test");
    dir_expand(d, "dave@example.test", rec_expand, &a);
    assert_int_equal(a.res, SL_PERM);
    assert_string_equal(a.why, "mailbox disabled");
    dir_expand(d, "nobody@example.test", rec_expand, &a);
    assert_int_equal(a.res, SL_PERM);
    assert_string_equal(a.why, "no such user");
    dir_lookup(d, "Alice@Example.Test", rec_user, &a);
    assert_int_equal(a.res, SL_OK);
    assert_string_equal(a.user.mail, "alice@example.test");
    assert_string_equal(a.user.password, "{CRYPT}$6$x$y");
    assert_null(a.user.status[0]);
    assert_null(a.user.status[1]);
    /* the answer outlives the directory: it belongs to the caller */
    sl_dir *held = dir_ref(d);
    dir_unref(d);
    dir_lookup(held, "dave@example.test", rec_user, &a);
    assert_string_equal(a.user.status[1], "inactive"); /* mailUserStatus */
    dir_lookup(held, "nobody@example.test", rec_user, &a);
    assert_int_equal(a.res, SL_PERM);
    dir_expand(held, "alice@example.test", rec_expand, &a);
    dir_unref(held);
    assert_string_equal(a.targets.v[0], "alice@example.test");
    sv_free(&a.targets);
    dir_entry_free(&a.user);
    dir_domain_info_free(&a.dom);
    unlink(path);
    /* an absent file is an empty directory; a broken one is file:line errors and no directory */
    d = dir_open_embedded(path, &e);
    assert_non_null(d);
    dir_domain(d, "example.test", rec_domain, &a);
    assert_int_equal(a.res, SL_PERM);
    dir_unref(d);
    memcpy(path + strlen(path) - 6, "XXXXXX", 6);
    fd = mkstemp(path);
    assert_int_equal(write(fd, "dn: x\nbogus line\n", 18), 18);
    close(fd);
    assert_null(dir_open_embedded(path, &e));
    assert_true(e.msgs.n > 0);
    assert_non_null(strstr(e.msgs.v[0], path));
    errs_free(&e);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file),        cmocka_unit_test(test_errors_with_lines),
        cmocka_unit_test(test_errors_all_reported), cmocka_unit_test(test_base64_and_continuation),
        cmocka_unit_test(test_kinds),               cmocka_unit_test(test_forwarding),
        cmocka_unit_test(test_group_members),       cmocka_unit_test(test_recursion_bound),
        cmocka_unit_test(test_large_directory),     cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_interface_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
