/*
 * fuzz_tls_policy.c - the outbound TLS policy table parser (core/tls_policy.h tls_policy_parse)
 * and, on the same bytes, the TLSA RDATA parser (core/dane.h dane_tlsa_parse, dane_tlsa_usable).
 *
 * Input: the table's text (it ends at a NUL, as a file read by conf_load does); the raw bytes
 * are also a TLSA RDATA.
 * Properties: every entry has a real level, a non-empty lower-case pattern and match= names only
 * with verify; each entry is what a lookup of its own pattern finds (a ".suffix" through a name
 * one label below it); a parsed TLSA record's data lies inside the input, and a usable one has a
 * DANE usage, a known selector and a digest of the exact length. The same text is also parsed as
 * a tls_sni_file table (core/tls_sni.h): entries complete, names in lower case, each found by a
 * lookup of its own name.
 */
#include "core/dane.h"
#include "core/tls_policy.h"
#include "core/tls_sni.h"
#include "fuzz.h"

#include <ctype.h>

/* on_err - count the parser's complaints. */
static void on_err(void *arg, int line, const char *msg)
{
    FZ_CHECK(line >= 1 && msg && *msg, "error at line %d", line);
    (*(size_t *)arg)++;
}

/* check_entry - the properties of one parsed entry. */
static void check_entry(const tls_policy_table *t, const tls_policy_entry *e)
{
    FZ_CHECK(e->level > TLS_LEVEL_DEFAULT && e->level <= TLS_LEVEL_STS, "level %d", (int)e->level);
    FZ_CHECK(e->pattern && *e->pattern, "empty pattern");
    for (const char *p = e->pattern; *p; p++) FZ_CHECK(!isupper((unsigned char)*p), "upper case in %s", e->pattern);
    FZ_CHECK(e->match.n == 0 || e->level == TLS_LEVEL_VERIFY, "match= with %s", tls_level_name(e->level));
    char *probe = e->pattern[0] == '.' ? xasprintf("x%s", e->pattern) : xstrdup(e->pattern);
    bool shadowed = e->pattern[0] == '.' && tls_policy_lookup(t, probe) != e &&
                    tls_policy_lookup(t, probe) && strcmp(tls_policy_lookup(t, probe)->pattern, probe) == 0;
    if (strcmp(e->pattern, "*") != 0 && !shadowed) { /* an exact entry for the probe itself may win */
        const tls_policy_entry *f = tls_policy_lookup(t, probe);
        FZ_CHECK(f == e, "lookup of %s found %s", probe, f ? f->pattern : "nothing");
    }
    free(probe);
}

/* check_sni - the same text as a tls_sni_file table: every entry has a lower-case name, both
 * paths under the directory (they were relative) or absolute, and is what a lookup of its own
 * name finds (a "*.d" entry through "x.d", unless an exact "x.d" entry shadows it). */
static void check_sni(const char *text)
{
    size_t errs = 0;
    tls_sni_table *t = tls_sni_parse(text, "/conf", on_err, &errs);
    for (size_t i = 0; i < t->n; i++) {
        const tls_sni_entry *e = &t->v[i];
        FZ_CHECK(e->name && *e->name && e->cert && e->key && e->line >= 1, "entry %zu incomplete", i);
        for (const char *p = e->name; *p; p++) FZ_CHECK(!isupper((unsigned char)*p), "upper case in %s", e->name);
        FZ_CHECK(e->cert[0] == '/' && e->key[0] == '/', "relative path %s %s", e->cert, e->key);
        char *probe = e->name[0] == '*' ? xasprintf("x%s", e->name + 1) : xstrdup(e->name);
        long k = tls_sni_lookup(t, probe);
        FZ_CHECK(k == (long)i || (k >= 0 && strcmp(t->v[k].name, probe) == 0), "lookup of %s found %ld, not %zu", probe,
                 k, i);
        free(probe);
    }
    tls_sni_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    size_t errs = 0;
    tls_policy_table *t = tls_policy_parse(text, on_err, &errs);
    for (size_t i = 0; i < t->n; i++) check_entry(t, &t->v[i]);
    tls_policy_free(t);
    check_sni(text);
    free(text);

    dane_tlsa r;
    if (dane_tlsa_parse(data, size, &r)) {
        FZ_CHECK(r.data == data + 3 && r.len == size - 3, "data outside the RDATA");
        if (dane_tlsa_usable(&r)) {
            FZ_CHECK(r.usage == 2 || r.usage == 3, "usage %u", r.usage);
            FZ_CHECK(r.selector <= 1, "selector %u", r.selector);
            FZ_CHECK(r.mtype != 1 || r.len == 32, "sha256 of %zu bytes", r.len);
            FZ_CHECK(r.mtype != 2 || r.len == 64, "sha512 of %zu bytes", r.len);
            FZ_CHECK(r.mtype <= 2, "matching type %u", r.mtype);
        }
    } else {
        FZ_CHECK(size < 4, "a %zu-byte RDATA refused", size);
    }
    return 0;
}
