/*
 * spf.c - check_host() of RFC 7208 §4 on the asynchronous resolver (see spf.h).
 *
 * One request evaluates a stack of frames: the domain first asked, then one frame per include:
 * or redirect= being evaluated. At most one DNS query of a request is outstanding at any time,
 * so the request is always either waiting for exactly one answer or finished; each answer
 * resumes the evaluation where it stopped (frame->next, and for mx/ptr the name being checked).
 * Limits (§4.6.4): 10 terms that cause DNS queries (include, a, mx, ptr, exists, redirect), 2
 * void lookups, 10 names per mx or ptr mechanism; exceeding one is a permerror. Any temperror or
 * permerror ends the whole evaluation at once.
 */
#include "spf/spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPF_MAX_LOOKUPS 10
#define SPF_MAX_VOID 2
#define SPF_MAX_NAMES 10
#define SPF_MAX_EXPLANATION 256

enum frame_how { FR_TOP, FR_INCLUDE, FR_REDIRECT };

typedef struct spf_frame {
    struct spf_frame *parent;
    enum frame_how how;
    char *domain;
    spf_record rec;
    size_t next;      /* the mechanism being evaluated */
    char *target;     /* its expanded domain */
    strvec names;     /* mx hosts or ptr names still to look up */
    size_t name_i;
} spf_frame;

struct spf_req {
    dns_ctx *d;
    spf_cb cb;
    void *arg;
    struct sockaddr_storage ip;
    char *sender, *helo, *receiver, *first_domain;
    const char *identity;
    int64_t now;
    spf_frame *cur;
    unsigned lookups, voids;
    bool pending, cancelled;
    spf_res res;
    char *mech, *expl, *problem;
};

static void eval_next(spf_req *q);
static void frame_done(spf_req *q, spf_res res, const char *mech);

/* frame_free - release one frame. */
static void frame_free(spf_frame *f)
{
    spf_record_free(&f->rec);
    free(f->domain);
    free(f->target);
    sv_free(&f->names);
    free(f);
}

/* req_free - release q and every frame left. */
static void req_free(spf_req *q)
{
    while (q->cur) {
        spf_frame *f = q->cur;
        q->cur = f->parent;
        frame_free(f);
    }
    free(q->sender);
    free(q->helo);
    free(q->receiver);
    free(q->first_domain);
    free(q->mech);
    free(q->expl);
    free(q->problem);
    free(q);
}

/* req_finish - deliver the result and free q. */
static void req_finish(spf_req *q)
{
    spf_result r = {.result = q->res, .identity = q->identity, .domain = q->first_domain, .mechanism = q->mech,
                    .explanation = q->res == SPF_FAIL ? q->expl : NULL, .problem = q->problem,
                    .lookups = q->lookups, .void_lookups = q->voids};
    q->cb(q->arg, &r);
    req_free(q);
}

/* req_error - end the whole evaluation with a temperror or permerror. */
static void req_error(spf_req *q, spf_res res, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void req_error(spf_req *q, spf_res res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf sb;
    sb_init(&sb);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    q->res = res;
    free(q->problem);
    q->problem = sb_steal(&sb);
    free(q->mech);
    q->mech = NULL;
    req_finish(q);
}

/* answer_begin - a DNS answer for q arrived: false when q was cancelled meanwhile (and is now freed). */
static bool answer_begin(spf_req *q)
{
    q->pending = false;
    if (!q->cancelled) return true;
    req_free(q);
    return false;
}

/* domain_ok - a domain check_host() can ask about (§4.3): at least two labels of 1..63 letters,
 * digits, '-' or '_', not all-numeric at the end (an IP address or literal is no domain). */
static bool domain_ok(const char *d)
{
    size_t len = strlen(d);
    if (len && d[len - 1] == '.') len--;
    if (len == 0 || len > 253) return false;
    size_t label = 0, labels = 1;
    bool alpha = false; /* in the last label */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            labels++;
            alpha = false;
        } else if (!isalnum(c) && c != '-' && c != '_') {
            return false;
        } else {
            if (++label > 63) return false;
            if (!isdigit(c)) alpha = true;
        }
    }
    return label > 0 && labels >= 2 && alpha;
}

/* vars - the macro values for the current frame. */
static spf_macro_vars vars(const spf_req *q, const char *domain)
{
    return (spf_macro_vars){.sender = q->sender, .domain = domain, .ip = &q->ip, .ptr = NULL, .helo = q->helo,
                            .receiver = q->receiver, .now = q->now};
}

/* ip_in - whether the client address lies in net/prefix of family fam. */
static bool ip_in(const struct sockaddr_storage *ip, int fam, const unsigned char *net, int prefix)
{
    if (ip->ss_family != fam) return false;
    const unsigned char *a = fam == AF_INET ? (const unsigned char *)&((const struct sockaddr_in *)ip)->sin_addr
                                            : (const unsigned char *)&((const struct sockaddr_in6 *)ip)->sin6_addr;
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0) return false;
    if (!rest) return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

/* addr_bytes - the address bytes of ss. */
static const unsigned char *addr_bytes(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr
                                    : (const unsigned char *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
}

/* addrs_match - whether any of addrs, as a network of the mechanism's prefix, holds the client. */
static bool addrs_match(const spf_req *q, const spf_mech *m, const struct sockaddr_storage *addrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int fam = addrs[i].ss_family;
        if (ip_in(&q->ip, fam, addr_bytes(&addrs[i]), fam == AF_INET ? m->cidr4 : m->cidr6)) return true;
    }
    return false;
}

/* count_void - one more void lookup; false (and a permerror delivered) past the limit. */
static bool count_void(spf_req *q)
{
    if (++q->voids <= SPF_MAX_VOID) return true;
    req_error(q, SPF_PERMERROR, "more than %d void DNS lookups", SPF_MAX_VOID);
    return false;
}

/* mech_result - the result a matching directive gives. */
static spf_res mech_result(char qual)
{
    return qual == '-' ? SPF_FAIL : qual == '~' ? SPF_SOFTFAIL : qual == '?' ? SPF_NEUTRAL : SPF_PASS;
}

/* matched - the current mechanism matched or not; move on accordingly. */
static void matched(spf_req *q, bool yes)
{
    spf_frame *f = q->cur;
    if (yes) {
        const spf_mech *m = &f->rec.mech[f->next];
        frame_done(q, mech_result(m->qual), m->text);
        return;
    }
    f->next++;
    eval_next(q);
}

/* fam - the client's address family. */
static int fam(const spf_req *q)
{
    return q->ip.ss_family;
}

/* ---------------------------------------------------------------- answers */

static void on_txt(void *arg, sl_result res, char *const *strs, size_t n, const char *err);

/* frame_push - evaluate domain in a new frame above the current one. */
static void frame_push(spf_req *q, enum frame_how how, const char *domain)
{
    spf_frame *f = xcalloc(1, sizeof *f);
    f->how = how;
    f->domain = xstrdup(domain);
    f->parent = q->cur;
    q->cur = f;
    if (!domain_ok(domain)) {
        frame_done(q, SPF_NONE, NULL);
        return;
    }
    q->pending = true;
    dns_lookup_txt(q->d, domain, on_txt, q);
}

/* on_txt - the TXT records of the current frame's domain. */
static void on_txt(void *arg, sl_result res, char *const *strs, size_t n, const char *err)
{
    spf_req *q = arg;
    if (!answer_begin(q)) return;
    spf_frame *f = q->cur;
    if (res == SL_TEMP) {
        req_error(q, SPF_TEMPERROR, "DNS TXT lookup of %s: %s", f->domain, err ? err : "failed");
        return;
    }
    const char *rec = NULL;
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        if (!spf_is_record(strs[i])) continue;
        rec = strs[i];
        found++;
    }
    if (found == 0) {
        frame_done(q, SPF_NONE, NULL);
        return;
    }
    if (found > 1) {
        req_error(q, SPF_PERMERROR, "%s publishes %zu SPF records", f->domain, found);
        return;
    }
    char perr[160];
    if (spf_record_parse(rec, &f->rec, perr, sizeof perr) < 0) {
        req_error(q, SPF_PERMERROR, "%s: %s", f->domain, perr);
        return;
    }
    eval_next(q);
}

/* on_addr - A or AAAA of the target of an a mechanism. */
static void on_addr(void *arg, sl_result res, const struct sockaddr_storage *addrs, size_t n, const char *err)
{
    spf_req *q = arg;
    if (!answer_begin(q)) return;
    spf_frame *f = q->cur;
    if (res == SL_TEMP) {
        req_error(q, SPF_TEMPERROR, "DNS lookup of %s: %s", f->target, err ? err : "failed");
        return;
    }
    if (n == 0 && !count_void(q)) return;
    matched(q, addrs_match(q, &f->rec.mech[f->next], addrs, n));
}

/* on_exists - the A records of the target of an exists mechanism. */
static void on_exists(void *arg, sl_result res, const struct sockaddr_storage *addrs, size_t n, const char *err)
{
    spf_req *q = arg;
    (void)addrs;
    if (!answer_begin(q)) return;
    if (res == SL_TEMP) {
        req_error(q, SPF_TEMPERROR, "DNS lookup of %s: %s", q->cur->target, err ? err : "failed");
        return;
    }
    if (n == 0 && !count_void(q)) return;
    matched(q, n > 0);
}

static void on_mx_addr(void *arg, sl_result res, const struct sockaddr_storage *addrs, size_t n, const char *err);

/* mx_next - look up the next exchange of an mx mechanism, or move on when none is left. */
static void mx_next(spf_req *q)
{
    spf_frame *f = q->cur;
    if (f->name_i >= f->names.n) {
        matched(q, false);
        return;
    }
    q->pending = true;
    dns_lookup_addr_family(q->d, f->names.v[f->name_i], fam(q), on_mx_addr, q);
}

/* on_mx_addr - the addresses of one exchange. */
static void on_mx_addr(void *arg, sl_result res, const struct sockaddr_storage *addrs, size_t n, const char *err)
{
    spf_req *q = arg;
    if (!answer_begin(q)) return;
    spf_frame *f = q->cur;
    if (res == SL_TEMP) {
        req_error(q, SPF_TEMPERROR, "DNS lookup of %s: %s", f->names.v[f->name_i], err ? err : "failed");
        return;
    }
    if (addrs_match(q, &f->rec.mech[f->next], addrs, n)) {
        matched(q, true);
        return;
    }
    f->name_i++;
    mx_next(q);
}

/* on_mx - the MX records of the target of an mx mechanism. */
static void on_mx(void *arg, sl_result res, const dns_mx *mx, size_t n, const char *err)
{
    spf_req *q = arg;
    if (!answer_begin(q)) return;
    spf_frame *f = q->cur;
    if (res == SL_TEMP) {
        req_error(q, SPF_TEMPERROR, "DNS MX lookup of %s: %s", f->target, err ? err : "failed");
        return;
    }
    if (n == 0 && !count_void(q)) return;
    if (n > SPF_MAX_NAMES) {
        req_error(q, SPF_PERMERROR, "%s has more than %d MX records", f->target, SPF_MAX_NAMES);
        return;
    }
    sv_free(&f->names);
    for (size_t i = 0; i < n; i++)
        if (mx[i].host[0]) sv_push(&f->names, mx[i].host);
    f->name_i = 0;
    mx_next(q);
}

static void on_ptr_addr(void *arg, sl_result res, const struct sockaddr_storage *addrs, size_t n, const char *err);

/* name_under - whether name is target or a subdomain of it (ASCII case-insensitive). */
static bool name_under(const char *name, const char *target)
{
    size_t nl = strlen(name), tl = strlen(target);
    if (tl && target[tl - 1] == '.') tl--;
    if (nl < tl || strncasecmp(name + nl - tl, target, tl) != 0) return false;
    return nl == tl || name[nl - tl - 1] == '.';
}

/* ptr_next - validate the next name of a ptr mechanism that lies under the target. */
static void ptr_next(spf_req *q)
{
    spf_frame *f = q->cur;
    while (f->name_i < f->names.n && !name_under(f->names.v[f->name_i], f->target)) f->name_i++;
    if (f->name_i >= f->names.n) {
        matched(q, false);
        return;
    }
    q->pending = true;
    dns_lookup_addr_family(q->d, f->names.v[f->name_i], fam(q), on_ptr_addr, q);
}

/* on_ptr_addr - the addresses of one name the client's PTR gave: the name is validated when one is the client. */
static void on_ptr_addr(void *arg, sl_result res, const struct sockaddr_storage *addrs, size_t n, const char *err)
{
    spf_req *q = arg;
    (void)res;
    (void)err;
    if (!answer_begin(q)) return;
    spf_frame *f = q->cur;
    for (size_t i = 0; i < n; i++) {
        if (addrs[i].ss_family == fam(q) &&
            !memcmp(addr_bytes(&addrs[i]), addr_bytes(&q->ip), fam(q) == AF_INET ? 4 : 16)) {
            matched(q, true);
            return;
        }
    }
    f->name_i++; /* a lookup error only means this name is not validated (§5.5) */
    ptr_next(q);
}

/* on_ptr - the PTR names of the client. */
static void on_ptr(void *arg, sl_result res, char *const *strs, size_t n, const char *err)
{
    spf_req *q = arg;
    (void)err;
    if (!answer_begin(q)) return;
    spf_frame *f = q->cur;
    if (res != SL_TEMP && n == 0 && !count_void(q)) return;
    sv_free(&f->names);
    for (size_t i = 0; i < n && i < SPF_MAX_NAMES; i++) sv_push(&f->names, strs[i]);
    f->name_i = 0;
    ptr_next(q); /* a DNS error: no names, no match (§5.5) */
}

/* ---------------------------------------------------------------- evaluation */

/* expand_target - the current mechanism's (or redirect's) domain-spec expanded into f->target; false after a permerror. */
static bool expand_target(spf_req *q, const char *spec)
{
    spf_frame *f = q->cur;
    free(f->target);
    f->target = NULL;
    if (!spec) {
        f->target = xstrdup(f->domain);
        return true;
    }
    strbuf out;
    sb_init(&out);
    char err[160];
    spf_macro_vars v = vars(q, f->domain);
    if (spf_macro_expand(spec, &v, false, &out, err, sizeof err) < 0) {
        sb_free(&out);
        req_error(q, SPF_PERMERROR, "%s: %s", f->domain, err);
        return false;
    }
    spf_domain_trim(&out);
    f->target = sb_steal(&out);
    return true;
}

/* count_lookup - one more term that queries DNS; false (and a permerror delivered) past the limit. */
static bool count_lookup(spf_req *q)
{
    if (++q->lookups <= SPF_MAX_LOOKUPS) return true;
    req_error(q, SPF_PERMERROR, "more than %d DNS lookups", SPF_MAX_LOOKUPS);
    return false;
}

/* eval_next - evaluate the current frame from its next mechanism on, until a DNS query is sent or the frame ends. */
static void eval_next(spf_req *q)
{
    spf_frame *f = q->cur;
    for (; f->next < f->rec.n; f->next++) {
        const spf_mech *m = &f->rec.mech[f->next];
        switch (m->kind) {
        case SPF_ALL:
            matched(q, true);
            return;
        case SPF_IP4:
        case SPF_IP6:
            if (ip_in(&q->ip, m->kind == SPF_IP4 ? AF_INET : AF_INET6, m->ip,
                      m->kind == SPF_IP4 ? m->cidr4 : m->cidr6)) {
                matched(q, true);
                return;
            }
            continue;
        default:
            break;
        }
        if (!count_lookup(q) || !expand_target(q, m->domain)) return;
        q->pending = true;
        switch (m->kind) {
        case SPF_A: dns_lookup_addr_family(q->d, f->target, fam(q), on_addr, q); return;
        case SPF_MX: dns_lookup_mx(q->d, f->target, on_mx, q); return;
        case SPF_PTR: dns_lookup_ptr(q->d, &q->ip, on_ptr, q); return;
        case SPF_EXISTS: dns_lookup_addr_family(q->d, f->target, AF_INET, on_exists, q); return;
        case SPF_INCLUDE:
            q->pending = false;
            frame_push(q, FR_INCLUDE, f->target);
            return;
        default: abort();
        }
    }
    if (f->rec.redirect) {
        if (!count_lookup(q) || !expand_target(q, f->rec.redirect)) return;
        frame_push(q, FR_REDIRECT, f->target);
        return;
    }
    frame_done(q, SPF_NEUTRAL, NULL);
}

/* in_include - whether the current frame is evaluated on behalf of an include (its fail is only "no match"). */
static bool in_include(const spf_req *q)
{
    for (const spf_frame *f = q->cur; f; f = f->parent)
        if (f->how == FR_INCLUDE) return true;
    return false;
}

/* expl_clean - keep an explanation printable, short and free of quotes: it goes into a reply line and a log line. */
static char *expl_clean(const char *s)
{
    strbuf sb;
    sb_init(&sb);
    for (size_t i = 0; s[i] && i < SPF_MAX_EXPLANATION; i++) {
        unsigned char c = (unsigned char)s[i];
        /* a double quote or backslash would break the quoted reply="..." of the reject log line */
        sb_putc(&sb, c == '"' ? '\'' : c == '\\' ? '/' : c >= 0x20 && c < 0x7f ? (char)c : '?');
    }
    return sb_steal(&sb);
}

/* on_exp - the TXT record exp= named: the explanation of a fail. */
static void on_exp(void *arg, sl_result res, char *const *strs, size_t n, const char *err)
{
    spf_req *q = arg;
    (void)err;
    if (!answer_begin(q)) return;
    if (res == SL_OK && n == 1) {
        strbuf out;
        sb_init(&out);
        char e[160];
        spf_macro_vars v = vars(q, q->cur->domain);
        if (spf_macro_expand(strs[0], &v, true, &out, e, sizeof e) == 0 && out.len) {
            free(q->expl);
            q->expl = expl_clean(out.data);
        }
        sb_free(&out);
    }
    req_finish(q);
}

/* default_expl - the explanation of a fail without (a usable) exp=. */
static void default_expl(spf_req *q)
{
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(q->ip.ss_family, addr_bytes(&q->ip), ip, sizeof ip);
    char *s = xasprintf("%s does not designate %s as permitted sender", q->cur->domain, ip);
    q->expl = expl_clean(s);
    free(s);
}

/* frame_done - the current frame ended with res (mech: its matching directive); hand it to its parent. */
static void frame_done(spf_req *q, spf_res res, const char *mech)
{
    spf_frame *f = q->cur;
    if (f->how == FR_INCLUDE) {
        /* the result decides whether the include directive matched (§5.2) */
        q->cur = f->parent;
        frame_free(f);
        switch (res) {
        case SPF_PASS: matched(q, true); return;
        case SPF_FAIL:
        case SPF_SOFTFAIL:
        case SPF_NEUTRAL: matched(q, false); return;
        case SPF_TEMPERROR: req_error(q, SPF_TEMPERROR, "include: temporary error"); return;
        default: req_error(q, SPF_PERMERROR, "include of a domain without an SPF record"); return;
        }
    }
    if (f->how == FR_REDIRECT && res == SPF_NONE) {
        req_error(q, SPF_PERMERROR, "redirect to %s: no SPF record", f->domain);
        return;
    }
    if (f->how == FR_REDIRECT && in_include(q)) {
        /* the redirect's result is that of the included domain's frame: pop up to it */
        while (q->cur->how == FR_REDIRECT) {
            spf_frame *g = q->cur;
            q->cur = g->parent;
            frame_free(g);
        }
        frame_done(q, res, mech);
        return;
    }
    /* the top frame, or a redirect whose result is the top frame's: the final result */
    q->res = res;
    free(q->mech);
    q->mech = mech ? xstrdup(mech) : NULL;
    if (res == SPF_FAIL) {
        default_expl(q);
        if (f->rec.exp) {
            strbuf out;
            sb_init(&out);
            char e[160];
            spf_macro_vars v = vars(q, f->domain);
            if (spf_macro_expand(f->rec.exp, &v, false, &out, e, sizeof e) == 0 && out.len) {
                spf_domain_trim(&out);
                q->pending = true;
                dns_lookup_txt(q->d, out.data, on_exp, q);
                sb_free(&out);
                return;
            }
            sb_free(&out);
        }
    }
    req_finish(q);
}

spf_req *spf_check(dns_ctx *d, const spf_query *qu, spf_cb cb, void *arg)
{
    spf_req *q = xcalloc(1, sizeof *q);
    q->d = d;
    q->cb = cb;
    q->arg = arg;
    q->ip = qu->ip;
    if (q->ip.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&q->ip)->sin6_addr)) {
        struct sockaddr_in v4 = {.sin_family = AF_INET};
        memcpy(&v4.sin_addr, ((struct sockaddr_in6 *)&q->ip)->sin6_addr.s6_addr + 12, 4);
        memset(&q->ip, 0, sizeof q->ip);
        memcpy(&q->ip, &v4, sizeof v4);
    }
    q->helo = xstrdup(qu->helo ? qu->helo : "");
    q->receiver = xstrdup(qu->receiver ? qu->receiver : "");
    q->now = qu->now;
    const char *mf = qu->mail_from ? qu->mail_from : "";
    const char *at = strrchr(mf, '@');
    if (*mf) {
        q->identity = "mailfrom";
        q->sender = at ? (at == mf ? xasprintf("postmaster%s", mf) : xstrdup(mf)) : xasprintf("postmaster@%s", mf);
        q->first_domain = xstrdup(at ? at + 1 : mf);
    } else {
        q->identity = "helo";
        q->sender = xasprintf("postmaster@%s", q->helo);
        q->first_domain = xstrdup(q->helo);
    }
    if (q->ip.ss_family != AF_INET && q->ip.ss_family != AF_INET6) {
        req_error(q, SPF_PERMERROR, "no client address");
        return NULL;
    }
    if (!domain_ok(q->first_domain)) { /* §4.3: no query at all */
        q->res = SPF_NONE;
        req_finish(q);
        return NULL;
    }
    frame_push(q, FR_TOP, q->first_domain); /* always leaves the TXT query pending */
    return q;
}

void spf_cancel(spf_req *req)
{
    if (!req) return;
    if (req->pending)
        req->cancelled = true;
    else
        req_free(req);
}
