/*
 * dmarc.c - public suffixes, alignment and DMARC records (see dmarc.h).
 *
 * The list is a sorted array of its rules (lower case, "*.x" and "!x" kept as written), looked
 * up with bsearch: ~10,000 rules, a dozen probes per label.
 */
#include "dkim/dkim.h"
#include "dkim/dmarc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct dmarc_psl {
    char **rule;
    size_t n;
};

/* cmp_str - qsort/bsearch order of rules. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* lower - s lower-cased in place. */
static void lower(char *s)
{
    for (; *s; s++) *s = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
}

dmarc_psl *dmarc_psl_parse(const char *text)
{
    dmarc_psl *l = xcalloc(1, sizeof *l);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n'), *e = nl ? nl : p + strlen(p);
        size_t n = strcspn(p, " \t\r\n"); /* a rule ends at the first whitespace */
        if (n > (size_t)(e - p)) n = (size_t)(e - p);
        if (n && !(n >= 2 && p[0] == '/' && p[1] == '/')) {
            l->rule = xrealloc(l->rule, (l->n + 1) * sizeof *l->rule);
            l->rule[l->n] = xstrndup(p, n);
            lower(l->rule[l->n++]);
        }
        p = nl ? nl + 1 : e;
    }
    qsort(l->rule, l->n, sizeof *l->rule, cmp_str);
    return l;
}

dmarc_psl *dmarc_psl_load(const char *file, conf_errors *errs)
{
    char *text = conf_file_read(file, true, errs);
    if (!text) return NULL;
    dmarc_psl *l = dmarc_psl_parse(text);
    free(text);
    if (l->n == 0) {
        conf_error(errs, file, 0, "no public suffix rules");
        dmarc_psl_free(l);
        return NULL;
    }
    return l;
}

void dmarc_psl_free(dmarc_psl *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) free(l->rule[i]);
    free(l->rule);
    free(l);
}

/* has - the list holds rule s. */
static bool has(const dmarc_psl *l, const char *s)
{
    return l && l->n && bsearch(&s, l->rule, l->n, sizeof *l->rule, cmp_str) != NULL;
}

/* suffix_labels - how many labels of d (lower case) its public suffix has (the PSL algorithm:
 * an exception rule wins, else the longest matching rule, else "*": one label). */
static size_t suffix_labels(const dmarc_psl *l, const char *d)
{
    size_t labels = 1;
    for (const char *c = d; *c; c++) labels += *c == '.';
    size_t best = 1;
    size_t k = labels; /* the candidate d's suffix of k labels */
    for (const char *cand = d; cand; cand = strchr(cand, '.') ? strchr(cand, '.') + 1 : NULL, k--) {
        char *ex = xasprintf("!%s", cand);
        bool exception = has(l, ex);
        free(ex);
        if (exception) return k - 1;
        const char *parent = strchr(cand, '.');
        char *wild = parent ? xasprintf("*%s", parent) : NULL;
        bool match = has(l, cand) || (wild && has(l, wild));
        free(wild);
        if (match && k > best) best = k;
    }
    return best;
}

char *dmarc_org_domain(const dmarc_psl *l, const char *domain)
{
    char *d = xstrdup(domain);
    lower(d);
    size_t n = strlen(d);
    if (n && d[n - 1] == '.') d[--n] = '\0';
    size_t labels = 1;
    for (const char *c = d; *c; c++) labels += *c == '.';
    size_t keep = suffix_labels(l, d) + 1;
    if (keep >= labels) return d;
    const char *p = d;
    for (size_t drop = labels - keep; drop; drop--) p = strchr(p, '.') + 1;
    char *out = xstrdup(p);
    free(d);
    return out;
}

bool dmarc_aligned(const dmarc_psl *l, const char *a, const char *b, bool strict)
{
    if (!a || !b) return false;
    if (str_ieq(a, b)) return true;
    if (strict) return false;
    char *oa = dmarc_org_domain(l, a), *ob = dmarc_org_domain(l, b);
    bool same = !strcmp(oa, ob);
    free(oa);
    free(ob);
    return same;
}

/* policy_of - p=/sp= values; -1 when unknown. */
static int policy_of(const char *v)
{
    if (!strcasecmp(v, "none")) return DMARC_P_NONE;
    if (!strcasecmp(v, "quarantine")) return DMARC_P_QUARANTINE;
    if (!strcasecmp(v, "reject")) return DMARC_P_REJECT;
    return -1;
}

int dmarc_record_parse(const char *txt, dmarc_record *r)
{
    *r = (dmarc_record){.pct = 100};
    dkim_tags t;
    char err[100];
    if (dkim_tags_parse(txt, strlen(txt), &t, err, sizeof err) != 0) return -1;
    int rc = -1;
    if (t.n == 0 || strcmp(t.tag[0].name, "v") || strcmp(t.tag[0].value, "DMARC1")) goto out; /* §6.4: v first */
    const char *p = dkim_tags_get(&t, "p"), *sp = dkim_tags_get(&t, "sp");
    int pv = p ? policy_of(p) : -1;
    if (pv < 0) goto out; /* §6.6.3: a record without a valid p= is ignored (rua-only handling left out) */
    r->p = (dmarc_policy)pv;
    r->sp = r->p;
    if (sp && policy_of(sp) >= 0) {
        r->sp = (dmarc_policy)policy_of(sp);
        r->sp_given = true;
    }
    const char *adkim = dkim_tags_get(&t, "adkim"), *aspf = dkim_tags_get(&t, "aspf"), *pct = dkim_tags_get(&t, "pct");
    r->adkim_strict = adkim && !strcasecmp(adkim, "s");
    r->aspf_strict = aspf && !strcasecmp(aspf, "s");
    if (pct) {
        char *end;
        long v = strtol(pct, &end, 10);
        if (*pct && !*end && v >= 0 && v <= 100) r->pct = (unsigned)v;
    }
    rc = 0;
out:
    dkim_tags_free(&t);
    return rc;
}

const char *dmarc_policy_name(dmarc_policy p)
{
    static const char *const names[] = {"none", "quarantine", "reject"};
    return names[p];
}
