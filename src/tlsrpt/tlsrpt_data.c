/*
 * tlsrpt_data.c - the TLS-RPT book: counters per day, domain and policy, and the day file (see
 * tlsrpt_data.h).
 *
 * The day file (QUEUE/tlsrpt/YYYY-MM-DD) is text, one record a line, fields separated by one
 * space; every field is a word: bytes up to the space, '%', '-' and above 0x7e are written %XX,
 * an absent value is "-", an empty one "%". The last line is "end": a file without it is
 * truncated and refused.
 *
 *     tlsrpt 1 2026-12-05
 *     dropped N                          sessions of domains beyond the cap
 *     domain NAME SENT                   SENT: 0 or 1 (reported)
 *     policy TYPE OK FAIL DROPPED NS S... NM M...   (belongs to the domain above)
 *     detail TYPE COUNT SENDING-IP MX RECEIVING-IP HELO REASON   (belongs to the policy above)
 *     end
 */
#include "tlsrpt/tlsrpt_data.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct {
    enum tlsrpt_rtype type;
    char *f[5]; /* sending ip, receiving mx, receiving ip, helo, reason (NULL: absent) */
    uint64_t count;
} tr_detail;

typedef struct {
    enum tlsrpt_ptype type;
    strvec strings, mx;
    uint64_t ok, fail, dropped;
    tr_detail *d;
    size_t nd;
} tr_policy;

typedef struct {
    char *name;
    tr_policy p[TLSRPT_MAX_POLICIES];
    size_t np;
    bool sent;
} tr_domain;

typedef struct {
    int64_t day;
    tr_domain **dom;
    size_t nd, cap;
    size_t *index;    /* open addressing: domain index + 1, 0 empty; size nidx (a power of two) */
    size_t nidx;
    uint64_t dropped;
    bool dirty;
} tr_day;

struct tlsrpt_book {
    tr_day *days;
    size_t n;
    size_t max_domains, max_details;
};

static const char *const rtype_names[TLSRPT_RTYPES] = {
    "success", "starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
    "certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid", "dane-required",
    "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid"};
static const char *const ptype_names[] = {"sts", "tlsa", "no-policy-found"};

const char *tlsrpt_rtype_name(enum tlsrpt_rtype t)
{
    return (unsigned)t < TLSRPT_RTYPES ? rtype_names[t] : "validation-failure";
}

const char *tlsrpt_ptype_name(enum tlsrpt_ptype t)
{
    return (unsigned)t <= TLSRPT_POLICY_NONE ? ptype_names[t] : "no-policy-found";
}

void tlsrpt_day_name(int64_t day, char *buf, size_t len)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    /* the ranges made plain to the compiler: at most 10 characters */
    snprintf(buf, len, "%04u-%02u-%02u", (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
             (unsigned)tm.tm_mday % 100u);
}

int64_t tlsrpt_day_parse(const char *s)
{
    int y, m, d;
    char tail;
    if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3) return -1;
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31) return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    time_t t = timegm(&tm);
    int64_t day = (int64_t)t / 86400;
    char back[16];
    tlsrpt_day_name(day, back, sizeof back);
    return strcmp(back, s) == 0 ? day : -1; /* 2026-02-31 is no day */
}

/* ---- the book ------------------------------------------------------------------------ */

tlsrpt_book *tlsrpt_book_new(size_t max_domains, size_t max_details)
{
    tlsrpt_book *b = xcalloc(1, sizeof *b);
    b->max_domains = max_domains ? max_domains : 1;
    b->max_details = max_details;
    return b;
}

/* policy_clear - release what p owns. */
static void policy_clear(tr_policy *p)
{
    sv_free(&p->strings);
    sv_free(&p->mx);
    for (size_t i = 0; i < p->nd; i++)
        for (int k = 0; k < 5; k++) free(p->d[i].f[k]);
    free(p->d);
    memset(p, 0, sizeof *p);
}

/* domain_clear_counts - forget d's policies (the domain stays). */
static void domain_clear_counts(tr_domain *d)
{
    for (size_t i = 0; i < d->np; i++) policy_clear(&d->p[i]);
    d->np = 0;
}

/* day_clear - release what day owns. */
static void day_clear(tr_day *day)
{
    for (size_t i = 0; i < day->nd; i++) {
        domain_clear_counts(day->dom[i]);
        free(day->dom[i]->name);
        free(day->dom[i]);
    }
    free(day->dom);
    free(day->index);
    memset(day, 0, sizeof *day);
}

void tlsrpt_book_free(tlsrpt_book *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->n; i++) day_clear(&b->days[i]);
    free(b->days);
    free(b);
}

/* day_find - the book's day, or NULL. */
static tr_day *day_find(const tlsrpt_book *b, int64_t day)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->days[i].day == day) return &b->days[i];
    return NULL;
}

/* day_get - the book's day, added (in order) when missing. */
static tr_day *day_get(tlsrpt_book *b, int64_t day)
{
    tr_day *d = day_find(b, day);
    if (d) return d;
    b->days = xrealloc(b->days, (b->n + 1) * sizeof *b->days);
    size_t at = b->n;
    while (at > 0 && b->days[at - 1].day > day) at--;
    memmove(&b->days[at + 1], &b->days[at], (b->n - at) * sizeof *b->days);
    b->n++;
    memset(&b->days[at], 0, sizeof b->days[at]);
    b->days[at].day = day;
    return &b->days[at];
}

/* name_hash - FNV-1a of a name, case-insensitively. */
static size_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s)) * 1099511628211ULL;
    return (size_t)h;
}

/* index_put - domain i of day into its index. */
static void index_put(tr_day *day, size_t i)
{
    size_t mask = day->nidx - 1;
    for (size_t h = name_hash(day->dom[i]->name) & mask;; h = (h + 1) & mask)
        if (!day->index[h]) {
            day->index[h] = i + 1;
            return;
        }
}

/* domain_find - day's domain name, or NULL. */
static tr_domain *domain_find(const tr_day *day, const char *name)
{
    if (!day->nidx) return NULL;
    size_t mask = day->nidx - 1;
    for (size_t h = name_hash(name) & mask; day->index[h]; h = (h + 1) & mask)
        if (strcasecmp(day->dom[day->index[h] - 1]->name, name) == 0) return day->dom[day->index[h] - 1];
    return NULL;
}

/* domain_add - a new domain of day (the caller checked the cap). */
static tr_domain *domain_add(tr_day *day, const char *name)
{
    if (day->nd == day->cap) day->dom = xrealloc(day->dom, (day->cap = day->cap ? 2 * day->cap : 16) * sizeof *day->dom);
    tr_domain *d = xcalloc(1, sizeof *d);
    d->name = str_lower(xstrdup(name));
    day->dom[day->nd++] = d;
    if (2 * day->nd > day->nidx) { /* keep the index at most half full */
        free(day->index);
        day->nidx = day->nidx ? 2 * day->nidx : 64;
        day->index = xcalloc(day->nidx, sizeof *day->index);
        for (size_t i = 0; i < day->nd; i++) index_put(day, i);
    } else {
        index_put(day, day->nd - 1);
    }
    return d;
}

/* sv_equal - whether sv holds exactly v[0..n). */
static bool sv_equal(const strvec *sv, const char *const *v, size_t n)
{
    if (sv->n != n) return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(sv->v[i], v[i] ? v[i] : "")) return false;
    return true;
}

/* policy_get - d's policy p, added when missing; NULL when d has TLSRPT_MAX_POLICIES already. */
static tr_policy *policy_get(tr_domain *d, const tlsrpt_policy *p)
{
    for (size_t i = 0; i < d->np; i++)
        if (d->p[i].type == p->type && sv_equal(&d->p[i].strings, p->strings, p->n_strings) &&
            sv_equal(&d->p[i].mx, p->mx_hosts, p->n_mx))
            return &d->p[i];
    if (d->np == TLSRPT_MAX_POLICIES) return NULL;
    tr_policy *n = &d->p[d->np++];
    n->type = p->type;
    for (size_t i = 0; i < p->n_strings; i++) sv_push(&n->strings, p->strings[i] ? p->strings[i] : "");
    for (size_t i = 0; i < p->n_mx; i++) sv_push(&n->mx, p->mx_hosts[i] ? p->mx_hosts[i] : "");
    return n;
}

/* str_same - equal strings, NULL equal only to NULL. */
static bool str_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* policy_fail - count a failure of p with its detail row (count n), within the detail cap. */
static void policy_fail(tr_policy *p, enum tlsrpt_rtype type, const char *const f[5], uint64_t n, size_t max)
{
    p->fail += n;
    for (size_t i = 0; i < p->nd; i++) {
        tr_detail *d = &p->d[i];
        bool same = d->type == type;
        for (int k = 0; k < 5 && same; k++) same = str_same(d->f[k], f[k]);
        if (same) {
            d->count += n;
            return;
        }
    }
    if (p->nd >= max) {
        p->dropped += n;
        return;
    }
    p->d = xrealloc(p->d, (p->nd + 1) * sizeof *p->d);
    tr_detail *d = &p->d[p->nd++];
    d->type = type;
    d->count = n;
    for (int k = 0; k < 5; k++) d->f[k] = f[k] ? xstrdup(f[k]) : NULL;
}

void tlsrpt_book_add(tlsrpt_book *b, int64_t day, const tlsrpt_policy *p, const tlsrpt_result *r)
{
    if (!p->domain || !*p->domain) return;
    tr_day *dy = day_get(b, day);
    dy->dirty = true;
    tr_domain *d = domain_find(dy, p->domain);
    if (!d) {
        if (dy->nd >= b->max_domains) {
            dy->dropped++;
            return;
        }
        d = domain_add(dy, p->domain);
    }
    if (d->sent) { /* reported already (an on-demand report of the current day): count afresh */
        d->sent = false;
        domain_clear_counts(d);
    }
    tr_policy *pol = policy_get(d, p);
    if (!pol) {
        dy->dropped++;
        return;
    }
    if (r->type == TLSRPT_SUCCESS) {
        pol->ok++;
        return;
    }
    const char *f[5] = {r->sending_ip, r->receiving_mx, r->receiving_ip, r->receiving_helo, r->reason};
    policy_fail(pol, r->type, f, 1, b->max_details);
}

size_t tlsrpt_book_days(const tlsrpt_book *b, int64_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n && n < max; i++) out[n++] = b->days[i].day;
    return n;
}

bool tlsrpt_book_dirty(const tlsrpt_book *b, int64_t day)
{
    const tr_day *d = day_find(b, day);
    return d && d->dirty;
}

void tlsrpt_book_mark(tlsrpt_book *b, int64_t day, bool dirty)
{
    tr_day *d = day_find(b, day);
    if (d) d->dirty = dirty;
}

void tlsrpt_book_pending(const tlsrpt_book *b, int64_t day, strvec *out)
{
    const tr_day *d = day_find(b, day);
    for (size_t i = 0; d && i < d->nd; i++)
        if (!d->dom[i]->sent && d->dom[i]->np) sv_push(out, d->dom[i]->name);
}

void tlsrpt_book_mark_sent(tlsrpt_book *b, int64_t day, const char *domain)
{
    tr_day *dy = day_find(b, day);
    tr_domain *d = dy ? domain_find(dy, domain) : NULL;
    if (!d) return;
    d->sent = true;
    domain_clear_counts(d);
    dy->dirty = true;
}

void tlsrpt_book_forget(tlsrpt_book *b, int64_t day)
{
    tr_day *d = day_find(b, day);
    if (!d) return;
    day_clear(d);
    size_t i = (size_t)(d - b->days);
    memmove(&b->days[i], &b->days[i + 1], (b->n - i - 1) * sizeof *b->days);
    b->n--;
}

bool tlsrpt_book_totals(const tlsrpt_book *b, int64_t day, const char *domain, tlsrpt_totals *t)
{
    memset(t, 0, sizeof *t);
    const tr_day *dy = day_find(b, day);
    const tr_domain *d = dy ? domain_find(dy, domain) : NULL;
    if (!d) return false;
    for (size_t i = 0; i < d->np; i++) {
        t->success += d->p[i].ok;
        t->failure += d->p[i].fail;
        t->details_dropped += d->p[i].dropped;
    }
    t->policies = d->np;
    t->sent = d->sent;
    return true;
}

uint64_t tlsrpt_book_dropped(const tlsrpt_book *b, int64_t day)
{
    const tr_day *d = day_find(b, day);
    return d ? d->dropped : 0;
}

/* ---- the day file -------------------------------------------------------------------- */

/* word_put - " " and s as a word of the day file. */
static void word_put(strbuf *out, const char *s)
{
    sb_putc(out, ' ');
    if (!s) {
        sb_putc(out, '-');
        return;
    }
    if (!*s) sb_putc(out, '%');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == '%' || *p == '-' || *p > 0x7e) sb_printf(out, "%%%02X", *p);
        else sb_putc(out, (char)*p);
    }
}

void tlsrpt_book_dump(const tlsrpt_book *b, int64_t day, strbuf *out)
{
    const tr_day *dy = day_find(b, day);
    char name[16];
    tlsrpt_day_name(day, name, sizeof name);
    sb_printf(out, "tlsrpt 1 %s\ndropped %llu\n", name, (unsigned long long)(dy ? dy->dropped : 0));
    for (size_t i = 0; dy && i < dy->nd; i++) {
        const tr_domain *d = dy->dom[i];
        sb_puts(out, "domain");
        word_put(out, d->name);
        sb_printf(out, " %d\n", d->sent ? 1 : 0);
        for (size_t j = 0; j < d->np; j++) {
            const tr_policy *p = &d->p[j];
            sb_printf(out, "policy %d %llu %llu %llu %zu", (int)p->type, (unsigned long long)p->ok,
                      (unsigned long long)p->fail, (unsigned long long)p->dropped, p->strings.n);
            for (size_t k = 0; k < p->strings.n; k++) word_put(out, p->strings.v[k]);
            sb_printf(out, " %zu", p->mx.n);
            for (size_t k = 0; k < p->mx.n; k++) word_put(out, p->mx.v[k]);
            sb_putc(out, '\n');
            for (size_t k = 0; k < p->nd; k++) {
                sb_printf(out, "detail %d %llu", (int)p->d[k].type, (unsigned long long)p->d[k].count);
                for (int f = 0; f < 5; f++) word_put(out, p->d[k].f[f]);
                sb_putc(out, '\n');
            }
        }
    }
    sb_puts(out, "end\n");
}

/* word_decode - a word of the day file as a new string (*absent for "-"); false when malformed. */
static bool word_decode(const char *w, char **out)
{
    *out = NULL;
    if (!strcmp(w, "-")) return true;
    if (!strcmp(w, "%")) {
        *out = xstrdup("");
        return true;
    }
    strbuf sb;
    sb_init(&sb);
    for (const char *p = w; *p; p++) {
        unsigned v;
        if (*p != '%') {
            sb_putc(&sb, *p);
            continue;
        }
        if (!p[1] || !p[2] || sscanf(p + 1, "%2x", &v) != 1 || v == 0) {
            sb_free(&sb);
            return false;
        }
        sb_putc(&sb, (char)v);
        p += 2;
    }
    *out = sb.data ? sb_steal(&sb) : xstrdup("");
    return true;
}

/* num_of - w as a number no larger than max; false when it is none. */
static bool num_of(const char *w, uint64_t max, uint64_t *n)
{
    return parse_uint(w, 0, max, n) == 0;
}

/* load state: the records read so far, applied to the book only when the whole file is good */
typedef struct {
    tlsrpt_book *tmp; /* a scratch book the file is read into */
    int64_t day;
    tr_domain *dom;
    tr_policy *pol;
} load_st;

/* load_policy - a "policy" line (words w[0..n)) into the current domain. */
static bool load_policy(load_st *st, char **w, size_t n)
{
    uint64_t type, ok, fail, dropped, ns, nm;
    if (!st->dom || n < 7 || !num_of(w[1], TLSRPT_POLICY_NONE, &type) || !num_of(w[2], UINT64_MAX / 4, &ok) ||
        !num_of(w[3], UINT64_MAX / 4, &fail) || !num_of(w[4], UINT64_MAX / 4, &dropped) || !num_of(w[5], 1000, &ns))
        return false;
    if (6 + ns >= n || !num_of(w[6 + ns], 1000, &nm) || 7 + ns + nm != n) return false;
    if (st->dom->np == TLSRPT_MAX_POLICIES) return false;
    tr_policy *p = &st->dom->p[st->dom->np++];
    p->type = (enum tlsrpt_ptype)type;
    p->ok = ok, p->fail = fail, p->dropped = dropped;
    for (size_t i = 0; i < ns + nm; i++) {
        char *s;
        if (!word_decode(w[6 + i + (i >= ns)], &s) || !s) {
            free(s);
            return false;
        }
        sv_push_owned(i < ns ? &p->strings : &p->mx, s);
    }
    st->pol = p;
    return true;
}

/* load_detail - a "detail" line into the current policy. */
static bool load_detail(load_st *st, char **w, size_t n)
{
    uint64_t type, count;
    if (!st->pol || n != 8 || !num_of(w[1], TLSRPT_RTYPES - 1, &type) || type == TLSRPT_SUCCESS ||
        !num_of(w[2], UINT64_MAX / 4, &count))
        return false;
    tr_policy *p = st->pol;
    p->d = xrealloc(p->d, (p->nd + 1) * sizeof *p->d);
    tr_detail *d = &p->d[p->nd++];
    memset(d, 0, sizeof *d);
    d->type = (enum tlsrpt_rtype)type;
    d->count = count;
    for (int k = 0; k < 5; k++)
        if (!word_decode(w[3 + k], &d->f[k])) return false;
    return true;
}

/* load_line - one line of the file (after the first); 1 at "end", 0 ok, -1 malformed. */
static int load_line(load_st *st, const char *line)
{
    strvec w = {0};
    str_split_ws(line, &w);
    int rc = -1;
    uint64_t n;
    tr_day *dy = day_find(st->tmp, st->day);
    if (w.n == 1 && !strcmp(w.v[0], "end")) {
        rc = 1;
    } else if (w.n == 2 && !strcmp(w.v[0], "dropped") && num_of(w.v[1], UINT64_MAX / 4, &n)) {
        dy->dropped += n;
        rc = 0;
    } else if (w.n == 3 && !strcmp(w.v[0], "domain") && num_of(w.v[2], 1, &n)) {
        char *name;
        if (word_decode(w.v[1], &name) && name && *name && !domain_find(dy, name)) {
            st->dom = domain_add(dy, name);
            st->dom->sent = n == 1;
            st->pol = NULL;
            rc = 0;
        }
        free(name);
    } else if (w.n && !strcmp(w.v[0], "policy")) {
        rc = load_policy(st, w.v, w.n) ? 0 : -1;
    } else if (w.n && !strcmp(w.v[0], "detail")) {
        rc = load_detail(st, w.v, w.n) ? 0 : -1;
    }
    sv_free(&w);
    return rc;
}

/* merge_day - add the counts of src (a loaded day) to the book. */
static void merge_day(tlsrpt_book *b, const tr_day *src)
{
    tr_day *dy = day_get(b, src->day);
    dy->dropped += src->dropped;
    for (size_t i = 0; i < src->nd; i++) {
        const tr_domain *sd = src->dom[i];
        tr_domain *d = domain_find(dy, sd->name);
        if (!d) d = domain_add(dy, sd->name); /* a file holds at most the cap it was written with */
        if (sd->sent && !d->np) d->sent = true;
        for (size_t j = 0; j < sd->np; j++) {
            const tr_policy *sp = &sd->p[j];
            tlsrpt_policy key = {.domain = sd->name, .type = sp->type, .strings = (const char *const *)sp->strings.v,
                                 .n_strings = sp->strings.n, .mx_hosts = (const char *const *)sp->mx.v, .n_mx = sp->mx.n};
            tr_policy *p = policy_get(d, &key);
            if (!p) {
                dy->dropped += sp->ok + sp->fail;
                continue;
            }
            p->ok += sp->ok;
            p->dropped += sp->dropped;
            uint64_t rows = 0;
            for (size_t k = 0; k < sp->nd; k++) {
                policy_fail(p, sp->d[k].type, (const char *const *)sp->d[k].f, sp->d[k].count, SIZE_MAX);
                rows += sp->d[k].count;
            }
            p->fail += sp->fail - (rows <= sp->fail ? rows : sp->fail); /* failures whose rows were dropped */
        }
    }
}

int tlsrpt_book_load(tlsrpt_book *b, const char *text, size_t len, char *err, size_t errlen)
{
    char *copy = xmemdup0(text, len);
    load_st st = {.tmp = tlsrpt_book_new(SIZE_MAX, SIZE_MAX), .day = -1};
    int rc = -1, lineno = 0;
    char *save = NULL;
    char dayname[16];
    snprintf(err, errlen, "no end line (truncated)");
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (lineno == 1) {
            if (sscanf(line, "tlsrpt 1 %15s", dayname) != 1 || (st.day = tlsrpt_day_parse(dayname)) < 0) {
                snprintf(err, errlen, "line 1: not a TLS-RPT day file");
                break;
            }
            day_get(st.tmp, st.day);
            continue;
        }
        int r = load_line(&st, line);
        if (r < 0) {
            snprintf(err, errlen, "line %d: malformed", lineno);
            break;
        }
        if (r == 1) {
            rc = strtok_r(NULL, "\n", &save) ? -1 : 0;
            if (rc) snprintf(err, errlen, "line %d: text after the end line", lineno + 1);
            break;
        }
    }
    if (rc == 0) merge_day(b, day_find(st.tmp, st.day));
    tlsrpt_book_free(st.tmp);
    free(copy);
    return rc;
}

/* ---- the JSON report ----------------------------------------------------------------- */

/* json_list - "key": [strings...], preceded by a comma. */
static void json_list(strbuf *out, const char *key, const strvec *sv)
{
    sb_printf(out, ",\"%s\":[", key);
    for (size_t i = 0; i < sv->n; i++) {
        if (i) sb_putc(out, ',');
        json_put_str(out, sv->v[i]);
    }
    sb_putc(out, ']');
}

bool tlsrpt_report_json(const tlsrpt_book *b, int64_t day, const char *domain, const tlsrpt_meta *m, strbuf *out)
{
    const tr_day *dy = day_find(b, day);
    const tr_domain *d = dy ? domain_find(dy, domain) : NULL;
    if (!d || !d->np) return false;
    static const char *const fkeys[5] = {"sending-mta-ip", "receiving-mx-hostname", "receiving-ip", "receiving-mx-helo",
                                         "failure-reason-code"};
    sb_putc(out, '{');
    json_put_member(out, true, "organization-name", m->org);
    sb_puts(out, ",\"date-range\":{");
    json_put_time(out, true, "start-datetime", day * 86400);
    json_put_time(out, false, "end-datetime", day * 86400 + 86399);
    sb_putc(out, '}');
    json_put_member(out, false, "contact-info", m->contact);
    json_put_member(out, false, "report-id", m->report_id);
    sb_puts(out, ",\"policies\":[");
    for (size_t i = 0; i < d->np; i++) {
        const tr_policy *p = &d->p[i];
        sb_puts(out, i ? ",{\"policy\":{" : "{\"policy\":{");
        json_put_member(out, true, "policy-type", tlsrpt_ptype_name(p->type));
        if (p->strings.n) json_list(out, "policy-string", &p->strings);
        json_put_member(out, false, "policy-domain", d->name);
        if (p->mx.n) json_list(out, "mx-host", &p->mx);
        sb_puts(out, "},\"summary\":{");
        json_put_int(out, true, "total-successful-session-count", (int64_t)p->ok);
        json_put_int(out, false, "total-failure-session-count", (int64_t)p->fail);
        sb_puts(out, "},\"failure-details\":[");
        for (size_t k = 0; k < p->nd; k++) {
            const tr_detail *fd = &p->d[k];
            sb_puts(out, k ? ",{" : "{");
            json_put_member(out, true, "result-type", tlsrpt_rtype_name(fd->type));
            for (int f = 0; f < 5; f++)
                if (fd->f[f]) json_put_member(out, false, fkeys[f], fd->f[f]);
            json_put_int(out, false, "failed-session-count", (int64_t)fd->count);
            sb_putc(out, '}');
        }
        sb_puts(out, "]}");
    }
    sb_puts(out, "]}");
    return true;
}
