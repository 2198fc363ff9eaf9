/*
 * fuzz_ldif.c - the LDIF reader (dir/ldif.h) and the embedded directory built from it
 * (dir/dir.h embedded_load_ldif), then the lookups and group expansion that RCPT TO triggers.
 *
 * Input: the directory.ldif text (it ends at a NUL, as a file read by conf_load does).
 *
 * Properties: ldif_parse's error count is the number of errors recorded; every record has a DN
 * and lower-case attribute names; a directory loads exactly when the file has no error; each
 * address named by "mail:" in the file that the directory knows expands (SL_OK) to non-empty
 * addresses without duplicates, or is refused with a reason; base64 values decode only from
 * lengths that are a multiple of 4.
 */
#include <ctype.h>

#include "dir/embedded.h"
#include "dir/ldif.h"
#include "fuzz.h"

#define MAX_PROBES 16

/* check_records - the parsed form. */
static void check_records(const ldif_file *f)
{
    for (size_t i = 0; i < f->n; i++) {
        const ldif_record *r = &f->recs[i];
        FZ_CHECK(r->dn != NULL, "record %zu without a DN", i);
        for (size_t k = 0; k < r->n; k++) {
            const char *name = r->attrs[k].name;
            FZ_CHECK(name && *name && r->attrs[k].value, "record %zu attribute %zu empty", i, k);
            for (const char *p = name; *p; p++)
                FZ_CHECK(!isupper((unsigned char)*p) && *p != ';', "attribute name '%s'", name);
            FZ_CHECK(ldif_record_first(r, name) != NULL, "attribute '%s' not found again", name);
        }
    }
}

/* check_expand - expansion of one address of the directory. */
static void check_expand(const embedded_dir *d, const char *addr)
{
    strvec out = {0};
    char err[256];
    sl_result rc = embedded_expand(d, addr, &out, err, sizeof err);
    if (rc == SL_OK) {
        FZ_CHECK(out.n > 0, "expansion of '%s' is empty", addr);
        for (size_t i = 0; i < out.n; i++) {
            FZ_CHECK(out.v[i] && *out.v[i], "empty address in the expansion of '%s'", addr);
            for (size_t j = 0; j < i; j++)
                FZ_CHECK(strcmp(out.v[i], out.v[j]) != 0, "'%s' twice in the expansion of '%s'", out.v[i], addr);
        }
    } else {
        FZ_CHECK(rc == SL_PERM && err[0], "expansion of '%s': result %d without a reason", addr, (int)rc);
    }
    sv_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    conf_errors errs = {0};
    ldif_file f = {0};
    int n = ldif_parse("directory.ldif", text, &f, &errs);
    FZ_CHECK(n >= 0 && (size_t)n == errs.msgs.n, "%d errors counted, %zu recorded", n, errs.msgs.n);
    check_records(&f);

    /* the values of "mail" and "member*" attributes: what lookups and expansions will be asked */
    strvec probes = {0};
    for (size_t i = 0; i < f.n && probes.n < MAX_PROBES; i++)
        for (size_t k = 0; k < f.recs[i].n && probes.n < MAX_PROBES; k++)
            if (!strcmp(f.recs[i].attrs[k].name, "mail") || !strcmp(f.recs[i].attrs[k].name, "mailalternateaddress"))
                sv_push(&probes, f.recs[i].attrs[k].value);
    ldif_file_free(&f);
    sv_free(&errs.msgs);

    embedded_dir *d = embedded_load_ldif("directory.ldif", text, &errs);
    FZ_CHECK((d == NULL) == (errs.msgs.n > 0), "directory %p with %zu errors", (void *)d, errs.msgs.n);
    if (d) {
        for (size_t i = 0; i < probes.n; i++) {
            const emb_entry *e = embedded_lookup(d, probes.v[i]);
            if (e) FZ_CHECK(e->mail != NULL, "entry for '%s' without a primary address", probes.v[i]);
            check_expand(d, probes.v[i]);
            const char *at = strrchr(probes.v[i], '@');
            if (at) (void)embedded_domain_is_local(d, at + 1);
        }
        check_expand(d, "nobody@nowhere.invalid");
        (void)embedded_first_domain(d);
        FZ_CHECK(embedded_user_count(d) <= 1000000 && embedded_domain_count(d) <= 1000000, "counts");
        embedded_free(d);
    }
    sv_free(&probes);
    sv_free(&errs.msgs);

    strbuf dec = {0};
    if (b64_decode(text, strlen(text), &dec) == 0)
        FZ_CHECK(strlen(text) % 4 == 0 && dec.len <= strlen(text) / 4 * 3, "decoded %zu from %zu", dec.len, strlen(text));
    sb_free(&dec);
    free(text);
    return 0;
}
