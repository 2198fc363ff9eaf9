/*
 * fuzz_ldap_url.c - LDAP URLs and search filters (dir/ldap_url.h) on untrusted bytes: the values
 * of mgrpAllowedBroadcaster / mgrpDisallowedBroadcaster, which a directory's users may be able to
 * edit for their own groups.
 *
 * Input: a URL (up to the first NUL); the same text is also parsed as a filter by itself, and
 * every filter that parses is evaluated against a small fixed entry.
 *
 * Properties: a parsed URL has a scope of base, one or sub and a parenthesised filter that
 * parses again; a failure leaves nothing allocated and a message; evaluation answers -1, 0 or 1.
 */
#include "fuzz.h"
#include "dir/ldap_url.h"

/* entry_values - a fixed entry: a user of the sales department. */
static void entry_values(const void *src, const char *name, strvec *out)
{
    (void)src;
    static const char *const kv[][2] = {{"objectClass", "inetOrgPerson"}, {"objectClass", "mailUser"},
                                        {"mail", "ann@example.com"}, {"departmentNumber", "sales"},
                                        {"cn", "Ann (boss) Smith*"}};
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++)
        if (str_ieq(kv[i][0], name)) sv_push(out, kv[i][1]);
}

/* check_filter - parse and evaluate one filter text. */
static void check_filter(const char *text)
{
    char err[160] = "";
    ld_filter *f = ld_filter_parse(text, err, sizeof err);
    if (!f) {
        FZ_CHECK(err[0], "filter '%s' refused without a message", text);
        return;
    }
    int r = ld_filter_eval(f, entry_values, NULL);
    FZ_CHECK(r >= -1 && r <= 1, "filter '%s' evaluated to %d", text, r);
    ld_filter_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size); /* up to the first NUL */
    ld_url u;
    char err[200] = "";
    if (ld_url_parse(text, &u, err, sizeof err) == 0) {
        FZ_CHECK(u.scope == LD_SCOPE_BASE || u.scope == LD_SCOPE_ONE || u.scope == LD_SCOPE_SUB, "scope %d", u.scope);
        FZ_CHECK(u.filter && u.filter[0] == '(', "URL '%s' gave the filter '%s'", text, u.filter ? u.filter : "(null)");
        char ferr[160];
        ld_filter *f = ld_filter_parse(u.filter, ferr, sizeof ferr);
        FZ_CHECK(f != NULL, "URL '%s': its filter '%s' does not parse again: %s", text, u.filter, ferr);
        ld_filter_free(f);
        FZ_CHECK(u.dn && u.host, "URL '%s' without a DN or host", text);
        (void)ld_dn_in_scope("uid=ann,ou=people,dc=example,dc=com", u.dn, u.scope);
        ld_url_free(&u);
    } else {
        FZ_CHECK(err[0] && !u.dn && !u.filter, "URL '%s' refused without a message or with leftovers", text);
    }
    check_filter(text);
    free(text);
    return 0;
}
