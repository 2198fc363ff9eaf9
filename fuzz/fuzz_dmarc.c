/*
 * fuzz_dmarc.c - DMARC records (dkim/dmarc.h dmarc_record_parse: the _dmarc TXT text comes from
 * any DNS server) and organizational domains of hostile names (dmarc_org_domain, dmarc_aligned,
 * on a small public suffix list with wildcard and exception rules) on untrusted bytes.
 *
 * Input: the record text; the same text is also used as a domain name.
 *
 * Properties: a parsed record has p and sp among none/quarantine/reject and pct <= 100; the
 * organizational domain is a suffix of the lower-cased name; a name is aligned with itself.
 */
#include "dkim/dmarc.h"
#include "fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dmarc_psl *psl;
    if (!psl) psl = dmarc_psl_parse("com\nco.uk\nuk\n*.ck\n!www.ck\n*.kobe.jp\njp\n");
    char *text = fz_text(data, size);
    dmarc_record r;
    if (dmarc_record_parse(text, &r) == 0) {
        FZ_CHECK(r.p <= DMARC_P_REJECT && r.sp <= DMARC_P_REJECT, "policy %d/%d", (int)r.p, (int)r.sp);
        FZ_CHECK(r.pct <= 100, "pct %u", r.pct);
        (void)dmarc_policy_name(r.p);
    }
    char *org = dmarc_org_domain(psl, text);
    size_t tl = strlen(text), ol = strlen(org);
    FZ_CHECK(ol <= tl, "org '%s' longer than '%s'", org, text);
    FZ_CHECK(dmarc_aligned(psl, text, text, true), "'%s' not aligned with itself", text);
    free(org);
    free(text);
    return 0;
}
