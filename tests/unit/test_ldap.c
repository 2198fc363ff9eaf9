/*
 * test_ldap.c - the pure parts of the LDAP directory backend: filter escaping (RFC 4515), the dc=
 * DN of a domain, DN normalisation, uniqueMember UIDs, the answer cache with an injected clock
 * (expiry, negative entries, least-recently-used eviction), the ldap_* options of option.dat (URI
 * lists, defaults, ranges, the password file, options that need each other, the attribute
 * remapping reaching every dir_schema field), the remapping applied to the embedded backend,
 * mailEquivalentAddress and the maxMessageSize note, and an LDAP directory that has no loop yet
 * answering TEMP without contacting anything.
 * Runs with the working directory tests/unit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "dir/dcache.h"
#include "dir/dir.h"
#include "dir/embedded.h"
#include "dir/ldap_text.h"
#include "dir/schema.h"

/* ---------- filter escaping ---------- */

static const struct {
    const char *in, *out;
} escapes[] = {
    {"alice@example.com", "alice@example.com"},
    {"*", "\\2a"},
    {"a*)(uid=*", "a\\2a\\29\\28uid=\\2a"},
    {"x)(|(objectClass=*)", "x\\29\\28|\\28objectClass=\\2a\\29"},
    {"back\\slash", "back\\5cslash"},
    {"tab\there", "tab\\09here"},
    {"caf\xc3\xa9@example.com", "caf\\c3\\a9@example.com"},
    {"", ""},
};

static void test_filter_escape(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(escapes); i++) {
        strbuf sb;
        sb_init(&sb);
        sb_puts(&sb, "");
        ld_filter_escape(&sb, escapes[i].in);
        assert_string_equal(sb.data, escapes[i].out);
        /* nothing that could end or open a filter component survives */
        assert_null(strpbrk(sb.data, "()*"));
        sb_free(&sb);
    }
}

/* ---------- DN text ---------- */

static void test_dc_dn(void **state)
{
    (void)state;
    static const struct {
        const char *domain, *base, *want; /* want NULL: no dc= form under base */
    } cases[] = {
        {"example.com", "dc=example,dc=com", "dc=example,dc=com"},
        {"sub.example.com", "dc=example,dc=com", "dc=sub,dc=example,dc=com"},
        {"sub.example.com", "DC=Example, DC=Com", "dc=sub,dc=example,dc=com"},
        {"example.com", "dc=com", "dc=example,dc=com"},
        {"example.org", "dc=example,dc=com", NULL},
        {"example.com", "o=corp", NULL},
        {"xample.com", "dc=example,dc=com", NULL}, /* a suffix match that is not an RDN boundary */
        {"a,b.example.com", "dc=example,dc=com", NULL},
        {"[192.0.2.1]", "dc=example,dc=com", NULL},
        {"", "dc=example,dc=com", NULL},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char *dn = ld_dc_dn(cases[i].domain, cases[i].base);
        if (!cases[i].want) assert_null(dn);
        else assert_string_equal(dn, cases[i].want);
        free(dn);
    }
}

static void test_dn_text(void **state)
{
    (void)state;
    char *n = ld_dn_normalize("UID=Alice , OU=People,dc=Example, dc=COM");
    assert_string_equal(n, "uid=alice,ou=people,dc=example,dc=com");
    free(n);
    n = ld_dn_normalize("cn=a\\, b,dc=x");
    assert_string_equal(n, "cn=a\\, b,dc=x"); /* the blank after an escaped comma is part of the value */
    free(n);
    n = ld_dn_normalize(" cn = x\\  , dc=y ");
    assert_string_equal(n, "cn=x\\ ,dc=y"); /* an escaped trailing blank stays */
    free(n);
    static const struct {
        const char *in, *out;
    } members[] = {
        {"uid=erin,dc=x#'0101'B", "uid=erin,dc=x"},
        {"uid=erin,dc=x#''B", "uid=erin,dc=x"},
        {"uid=erin,dc=x", "uid=erin,dc=x"},
        {"cn=a\\#'01'B", "cn=a\\#'01'B"}, /* an escaped '#' belongs to the value */
        {"uid=erin,dc=x#'012'B", "uid=erin,dc=x#'012'B"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(members); i++) {
        char *dn = ld_member_dn(members[i].in);
        assert_string_equal(dn, members[i].out);
        free(dn);
    }
    assert_int_equal(ld_attr_name_len("mail;lang-en"), 4);
    assert_int_equal(ld_attr_name_len("mail"), 4);
}

/* ---------- the cache, with an injected clock ---------- */

static int freed;

static void count_free(void *v)
{
    freed++;
    free(v);
}

static void test_cache_expiry(void **state)
{
    (void)state;
    freed = 0;
    dcache *c = dcache_new(10, count_free);
    void *v;
    dcache_put(c, "Example.COM", xstrdup("pos"), 100 + 600, 100);
    dcache_put(c, "nowhere.test", NULL, 100 + 60, 100); /* a negative entry */
    assert_true(dcache_get(c, "example.com", 101, &v));
    assert_string_equal(v, "pos");
    assert_true(dcache_get(c, "NOWHERE.test", 159, &v));
    assert_null(v);
    assert_false(dcache_get(c, "nowhere.test", 160, &v)); /* negative TTL over */
    assert_int_equal(dcache_count(c), 1);
    assert_true(dcache_get(c, "example.com", 699, &v));
    assert_false(dcache_get(c, "example.com", 700, &v)); /* positive TTL over: dropped and freed */
    assert_int_equal(freed, 1);
    assert_int_equal(dcache_count(c), 0);
    assert_false(dcache_get(c, "other", 700, &v));
    /* replacing frees the old value; a TTL of 0 keeps nothing */
    dcache_put(c, "k", xstrdup("1"), 800, 700);
    dcache_put(c, "K", xstrdup("2"), 800, 700);
    assert_int_equal(freed, 2);
    assert_true(dcache_get(c, "k", 701, &v));
    assert_string_equal(v, "2");
    dcache_put(c, "zero", xstrdup("z"), 700, 700);
    assert_int_equal(freed, 3);
    assert_false(dcache_get(c, "zero", 700, &v));
    dcache_free(c);
    assert_int_equal(freed, 4);
    /* size 0: caching off */
    c = dcache_new(0, count_free);
    dcache_put(c, "a", xstrdup("a"), 10, 0);
    assert_false(dcache_get(c, "a", 1, &v));
    assert_int_equal(freed, 5);
    dcache_free(c);
}

static void test_cache_lru(void **state)
{
    (void)state;
    freed = 0;
    dcache *c = dcache_new(3, count_free);
    void *v;
    char key[32];
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "k%d", i);
        dcache_put(c, key, xstrdup(key), 1000, 0);
    }
    assert_true(dcache_get(c, "k0", 1, &v)); /* k0 used: k1 is now the least recently used */
    dcache_put(c, "k3", xstrdup("k3"), 1000, 1);
    assert_int_equal(dcache_count(c), 3);
    assert_int_equal(freed, 1);
    assert_false(dcache_get(c, "k1", 2, &v));
    assert_true(dcache_get(c, "k0", 2, &v));
    assert_true(dcache_get(c, "k2", 2, &v));
    assert_true(dcache_get(c, "k3", 2, &v));
    /* many keys through a small cache: never more than its size, every value freed once */
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "many%d", i);
        dcache_put(c, key, xstrdup(key), 1000, 3);
        assert_true(dcache_count(c) <= 3);
    }
    dcache_free(c);
    assert_int_equal(freed, 5004);
}

/* ---------- option.dat ---------- */

static char *joined(const conf_errors *errs)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    for (size_t i = 0; i < errs->msgs.n; i++) sb_printf(&sb, "%s%s", i ? "\n" : "", errs->msgs.v[i]);
    return sb_steal(&sb);
}

static void test_uri_list(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int n;           /* URIs parsed, -1: an error */
        const char *bad; /* the item named */
    } cases[] = {
        {"ldap://ldap1.example.com", 1, NULL},
        {"ldap://ldap1.example.com:389/ ldaps://ldap2.example.com:636", 2, NULL},
        {"  ldap://127.0.0.1:3389 \t ldap://[::1]:3389  ", 2, NULL},
        {"LDAP://Host", 1, NULL},
        {"ldap://[2001:db8::1]", 1, NULL},
        {"", -1, ""},
        {"http://example.com", -1, "http://example.com"},
        {"ldap://ok ldapi:///run/slapd.sock", -1, "ldapi:///run/slapd.sock"},
        {"ldap://", -1, "ldap://"},
        {"ldap://host:0", -1, "ldap://host:0"},
        {"ldap://host:65536", -1, "ldap://host:65536"},
        {"ldap://host:", -1, "ldap://host:"},
        {"ldap://host/dc=example,dc=com", -1, "ldap://host/dc=example,dc=com"},
        {"ldap://ho_st..com", -1, "ldap://ho_st..com"},
        {"ldap://[::1", -1, "ldap://[::1"},
        {"ldap://host,ldap://other", -1, "ldap://host,ldap://other"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        strvec out = {0};
        strbuf bad;
        sb_init(&bad);
        sb_puts(&bad, "");
        int rc = conf_ldap_uris_parse(cases[i].in, &out, &bad);
        if (cases[i].n < 0) {
            assert_int_equal(rc, -1);
            assert_int_equal(out.n, 0);
            assert_string_equal(bad.data, cases[i].bad);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(out.n, (size_t)cases[i].n);
        }
        sv_free(&out);
        sb_free(&bad);
    }
}

/* parse - option.dat text; the joined errors (caller frees). */
static char *parse(const char *text, sl_options *opt)
{
    conf_errors errs = {0};
    conf_parse_options("/etc/sluice/option.dat", text, opt, &errs);
    char *all = joined(&errs);
    sv_free(&errs.msgs);
    return all;
}

static void test_ldap_options(void **state)
{
    (void)state;
    sl_options opt;
    char *err = parse("", &opt);
    assert_string_equal(err, "");
    assert_int_equal(opt.ldap_uris.n, 0);
    assert_int_equal(opt.ldap_timeout, 5);
    assert_int_equal(opt.ldap_connections, 4);
    assert_int_equal(opt.ldap_domain_cache_size, 10000);
    assert_int_equal(opt.ldap_domain_cache_ttl, 600);
    assert_int_equal(opt.ldap_domain_cache_negative_ttl, 60);
    assert_int_equal(opt.ldap_cache_size, 10000);
    assert_int_equal(opt.ldap_cache_ttl, 600);
    assert_int_equal(opt.ldap_cache_negative_ttl, 60);
    assert_false(opt.ldap_starttls);
    free(err);
    conf_options_free(&opt);

    char pw[] = "/tmp/sluice-ldappw-XXXXXX";
    int fd = mkstemp(pw);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret pass\nignored second line\n", 32), 32);
    close(fd);
    char *text = xasprintf("ldap_uri = ldap://a.example.com ldaps://b.example.com:636\n"
                           "ldap_base_dn = dc=example,dc=com\nldap_bind_dn=cn=sluice,dc=example,dc=com\n"
                           "ldap_bind_password_file=%s\nldap_starttls=yes\nldap_timeout=2s\nldap_connections=8\n"
                           "ldap_domain_cache_size=0\nldap_cache_ttl=5m\nldap_cache_negative_ttl=0\n",
                           pw);
    err = parse(text, &opt);
    assert_string_equal(err, "");
    assert_int_equal(opt.ldap_uris.n, 2);
    assert_string_equal(opt.ldap_uris.v[1], "ldaps://b.example.com:636");
    assert_string_equal(opt.ldap_base_dn, "dc=example,dc=com");
    assert_string_equal(opt.ldap_bind_password, "s3cret pass");
    assert_true(opt.ldap_starttls);
    assert_int_equal(opt.ldap_timeout, 2);
    assert_int_equal(opt.ldap_connections, 8);
    assert_int_equal(opt.ldap_domain_cache_size, 0);
    assert_int_equal(opt.ldap_cache_ttl, 300);
    assert_int_equal(opt.ldap_cache_negative_ttl, 0);
    free(err);
    free(text);
    conf_options_free(&opt);

    /* errors name the file and line; a password file error says what is wrong with the file */
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"ldap_uri=ldap://h\n", "option.dat:1: ldap_uri needs ldap_base_dn (where to search)"},
        {"ldap_uri=smtp://h\nldap_base_dn=dc=x\n", "option.dat:1: ldap_uri: bad value 'smtp://h'"},
        {"ldap_timeout=0\n", "option.dat:1: ldap_timeout: bad value '0' (expected a duration 1s..5m)"},
        {"ldap_timeout=6m\n", "option.dat:1: ldap_timeout: bad value"},
        {"ldap_connections=0\n", "option.dat:1: ldap_connections: bad value '0' (expected a number 1..64)"},
        {"ldap_connections=65\n", "option.dat:1: ldap_connections: bad value"},
        {"ldap_starttls=maybe\n", "option.dat:1: ldap_starttls: bad value 'maybe' (expected yes or no)"},
        {"ldap_base_dn=example\n", "option.dat:1: ldap_base_dn: bad value 'example'"},
        {"ldap_cache_size=-1\n", "option.dat:1: ldap_cache_size: bad value"},
        {"\nldap_bind_password_file=/nonexistent/pw\nldap_bind_dn=cn=x\n",
         "option.dat:2: ldap_bind_password_file: cannot read '/nonexistent/pw': No such file or directory"},
        {"ldap_bind_dn=cn=x,dc=y\n", "option.dat:1: ldap_bind_dn needs ldap_bind_password_file"},
        {"ldap_user_status=bad name\n", "option.dat:1: ldap_user_status: bad value 'bad name' (expected an LDAP attribute name)"},
        {"ldap_user_status=-x\n", "option.dat:1: ldap_user_status: bad value"},
        {"ldap_password=secret\n", "option.dat:1: unknown option 'ldap_password'"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        err = parse(bad[i].text, &opt);
        if (!strstr(err, bad[i].want)) fail_msg("%s: got '%s', want '%s'", bad[i].text, err, bad[i].want);
        free(err);
        conf_options_free(&opt);
    }
    /* an empty password file */
    fd = open(pw, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "\n", 1), 1);
    close(fd);
    text = xasprintf("ldap_bind_dn=cn=x\nldap_bind_password_file=%s\n", pw);
    err = parse(text, &opt);
    assert_non_null(strstr(err, "option.dat:2: ldap_bind_password_file: "));
    assert_non_null(strstr(err, "is empty"));
    assert_null(strstr(err, "needs ldap_bind_password_file")); /* one error, not two */
    free(err);
    free(text);
    conf_options_free(&opt);
    unlink(pw);
}

/* Every remapping option, as documented (doc/directory.md, "Attribute names"). */
static const char *const remap_options[] = {
    "ldap_domain_attr_status", "ldap_domain_attr_mail_status", "ldap_domain_attr_blocklimit",
    "ldap_domain_attr_recipientlimit", "ldap_domain_attr_recipientcutoff", "ldap_user_status",
    "ldap_user_mail_status", "ldap_group_status", "ldap_group_mail_status", "ldap_blocklimit",
    "ldap_attr_maximum_message_size", "ldap_recipientlimit", "ldap_recipientcutoff", "ldap_reject_text",
    "ldap_source_channel", "ldap_auth_url", "ldap_cant_url", "ldap_auth_domain", "ldap_cant_domain",
    "ldap_auth_policy", "ldap_moderator_url", "ldap_reject_action", "ldap_optin1", "ldap_optin2", "ldap_optin3",
    "ldap_optin4", "ldap_optin5", "ldap_optin6", "ldap_optin7", "ldap_optin8", "ldap_domain_attr_optin1",
    "ldap_domain_attr_optin2", "ldap_domain_attr_optin3", "ldap_domain_attr_optin4", "ldap_domain_attr_optin5",
    "ldap_domain_attr_optin6", "ldap_domain_attr_optin7", "ldap_domain_attr_optin8", "ldap_filter",
};

static void test_remap_every_field(void **state)
{
    (void)state;
    /* one option per dir_schema field (every field is an attribute name) */
    assert_int_equal(SL_ARRAY_LEN(remap_options) * sizeof(char *), sizeof(dir_schema));
    strbuf text;
    sb_init(&text);
    for (size_t i = 0; i < SL_ARRAY_LEN(remap_options); i++) sb_printf(&text, "%s=x-attr%zu\n", remap_options[i], i);
    sl_options opt;
    char *err = parse(text.data, &opt);
    assert_string_equal(err, "");
    dir_schema s;
    assert_int_equal(dir_schema_from_options(&s, &opt), 0);
    char **fields = (char **)&s;
    for (size_t i = 0; i < SL_ARRAY_LEN(remap_options); i++) {
        char want[32];
        snprintf(want, sizeof want, "x-attr%zu", i);
        bool found = false;
        for (size_t k = 0; k < SL_ARRAY_LEN(remap_options); k++) found |= strcmp(fields[k], want) == 0;
        if (!found) fail_msg("%s reached no dir_schema field", remap_options[i]);
    }
    /* and each option reaches a different field */
    for (size_t i = 0; i < SL_ARRAY_LEN(remap_options); i++)
        for (size_t k = i + 1; k < SL_ARRAY_LEN(remap_options); k++) assert_string_not_equal(fields[i], fields[k]);
    dir_schema_free(&s);
    free(err);
    sb_free(&text);
    conf_options_free(&opt);
}

/* ---------- the embedded backend with remapped names; the LDAP backend without a loop ---------- */

typedef struct {
    int calls;
    sl_result res;
    dir_entry e;
    strvec targets;
    char why[128];
} rec;

static void rec_entry(void *arg, sl_result res, dir_entry *e)
{
    rec *r = arg;
    r->calls++;
    r->res = res;
    dir_entry_free(&r->e);
    if (e) r->e = *e;
}

static void rec_expand(void *arg, sl_result res, strvec targets, const char *why)
{
    rec *r = arg;
    r->calls++;
    r->res = res;
    sv_free(&r->targets);
    r->targets = targets;
    snprintf(r->why, sizeof r->why, "%s", why ? why : "");
}

static void rec_domain(void *arg, sl_result res, dir_domain_info *info)
{
    rec *r = arg;
    r->calls++;
    r->res = res;
    dir_domain_info_free(info);
}

static const char remap_ldif[] = "dn: dc=example,dc=test\nobjectClass: mailDomain\n\n"
                                 "dn: uid=a,dc=example,dc=test\nobjectClass: mailUser\nmail: a@example.test\n"
                                 "mailEquivalentAddress: same@example.test\nmyState: disabled\n"
                                 "mailUserStatus: active\nmaxMessageSize: 1000\n\n"
                                 "dn: cn=g,dc=example,dc=test\nobjectClass: mailGroup\nmail: g@example.test\n"
                                 "mgrpRFC822MailMember: a@example.test\nmgrpRFC822MailMember: ext@elsewhere.test\n";

static void test_embedded_remapped(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-remap-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, remap_ldif, strlen(remap_ldif)), (ssize_t)strlen(remap_ldif));
    close(fd);
    sl_options opt;
    char *err = parse("ldap_user_mail_status=myState\n", &opt);
    assert_string_equal(err, "");
    free(err);
    conf_errors e = {0};
    sl_dir *d = dir_open_embedded_opts(path, &opt, &e);
    assert_non_null(d);
    rec r = {0};
    dir_lookup(d, "SAME@example.test", rec_entry, &r); /* mailEquivalentAddress finds the entry */
    assert_int_equal(r.res, SL_OK);
    assert_string_equal(r.e.mail, "a@example.test");
    assert_string_equal(r.e.status[1], "disabled"); /* read from myState */
    dir_expand(d, "a@example.test", rec_expand, &r);
    assert_int_equal(r.res, SL_PERM);
    assert_string_equal(r.why, "mailbox disabled"); /* the expansion's rule reads myState too */
    dir_expand(d, "g@example.test", rec_expand, &r);
    assert_int_equal(r.res, SL_OK); /* the disabled member is skipped */
    assert_int_equal(r.targets.n, 1);
    assert_string_equal(r.targets.v[0], "ext@elsewhere.test");
    strvec notes = {0};
    dir_notes(d, &notes);
    assert_int_equal(notes.n, 1);
    assert_non_null(strstr(notes.v[0], ":10: warning: maxMessageSize is not read: rename it to mailMsgMaxBlocks"));
    sv_free(&notes);
    dir_unref(d);
    conf_options_free(&opt);
    /* the defaults: mailUserStatus (active) rules */
    d = dir_open_embedded(path, &e);
    dir_expand(d, "a@example.test", rec_expand, &r);
    assert_int_equal(r.res, SL_OK);
    dir_unref(d);
    sv_free(&r.targets);
    dir_entry_free(&r.e);
    sv_free(&e.msgs);
    unlink(path);
}

static void test_ldap_unattached(void **state)
{
    (void)state;
    sl_options opt;
    char *err = parse("ldap_uri=ldap://127.0.0.1:1\nldap_base_dn=dc=example,dc=test\n", &opt);
    assert_string_equal(err, "");
    free(err);
    conf_errors e = {0};
    sl_dir *d = dir_open_ldap(&opt, &e);
    assert_non_null(d);
    assert_string_equal(dir_backend_name(d), "ldap");
    rec r = {0};
    dir_domain(d, "example.test", rec_domain, &r);
    assert_true(r.calls == 1 && r.res == SL_TEMP);
    dir_lookup(d, "a@example.test", rec_entry, &r);
    assert_true(r.calls == 2 && r.res == SL_TEMP);
    dir_expand(d, "a@example.test", rec_expand, &r);
    assert_true(r.calls == 3 && r.res == SL_TEMP);
    strbuf out;
    sb_init(&out);
    dir_counters(d, &out);
    assert_non_null(strstr(out.data, "directory connections: up=0 size=4 connects=0"));
    sb_free(&out);
    dir_unref(d);
    conf_options_free(&opt);
    sv_free(&r.targets);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_escape),     cmocka_unit_test(test_dc_dn),
        cmocka_unit_test(test_dn_text),           cmocka_unit_test(test_cache_expiry),
        cmocka_unit_test(test_cache_lru),         cmocka_unit_test(test_uri_list),
        cmocka_unit_test(test_ldap_options),      cmocka_unit_test(test_remap_every_field),
        cmocka_unit_test(test_embedded_remapped), cmocka_unit_test(test_ldap_unattached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
