/*
 * sieve_run.c - the interpreter: evaluates a compiled script on one message for one recipient
 * and collects the actions into a sieve_result; and sieve_result_merge, which combines the
 * results of the scripts run one after another for the same recipient.
 *
 * Nothing is executed here: actions are only recorded, so a runtime error (too many actions,
 * an action conflict of RFC 5429, the matching budget spent) simply drops them all and leaves
 * the implicit keep (RFC 5228 §2.10.6). Header edits go to a working copy of the header block
 * (sieve_hdr.c), so later tests in the same run see them; the result carries the edited block.
 */
#include "sieve/sieve_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One run's state. */
typedef struct {
    const sieve_msg *m;
    sieve_result *out;
    sv_header hdr;
    bool edited;
    uint64_t budget;
    unsigned actions;
    bool stopped;
    bool failed;
    char err[160];
    bool discard_seen, rejected, kept, filed;
} sv_run;

/* A list of values a test compares with its keys (pointers into the header or own strings). */
typedef struct {
    const char **p;
    size_t *len;
    size_t n, cap;
    strvec own;
} sv_vals;

/* run_fail - record the first runtime error of the run. */
static void run_fail(sv_run *r, int line, const char *msg)
{
    if (r->failed) return;
    r->failed = true;
    snprintf(r->err, sizeof r->err, "line %d: %s", line, msg);
}

/* vals_add - one more value; own says whether the list keeps a copy. */
static void vals_add(sv_vals *v, const char *p, size_t len, bool own)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 16;
        v->p = xrealloc(v->p, v->cap * sizeof *v->p);
        v->len = xrealloc(v->len, v->cap * sizeof *v->len);
    }
    if (own) {
        char *c = xmemdup0(p, len);
        sv_push_owned(&v->own, c);
        p = c;
    }
    v->p[v->n] = p;
    v->len[v->n++] = len;
}

/* vals_free - release a value list. */
static void vals_free(sv_vals *v)
{
    free(v->p);
    free(v->len);
    sv_free(&v->own);
}

/* add_address_part - the chosen part of one address as a value. */
static void add_address_part(sv_vals *v, const char *a, enum sv_addrpart part)
{
    const char *at = strrchr(a, '@');
    size_t n = strlen(a);
    switch (part) {
    case SV_AP_ALL: vals_add(v, a, n, true); break;
    case SV_AP_LOCAL: vals_add(v, a, at ? (size_t)(at - a) : n, true); break;
    case SV_AP_DOMAIN: vals_add(v, at ? at + 1 : "", at ? strlen(at + 1) : 0, true); break;
    }
}

/* collect - the values a match test compares: header values, addresses, envelope parts,
 * scores. false when the budget ran out. */
static bool collect(sv_run *r, const sv_test *t, sv_vals *v)
{
    char num[16];
    switch (t->kind) {
    case SV_TEST_SPAMTEST: {
        int s = t->percent ? r->m->spamtest_percent : r->m->spamtest;
        int max = t->percent ? 100 : 10;
        snprintf(num, sizeof num, "%d", s < 0 ? 0 : s > max ? max : s);
        vals_add(v, num, strlen(num), true);
        return true;
    }
    case SV_TEST_VIRUSTEST: {
        int s = r->m->virustest;
        snprintf(num, sizeof num, "%d", s < 0 ? 0 : s > 5 ? 5 : s);
        vals_add(v, num, strlen(num), true);
        return true;
    }
    case SV_TEST_ENVELOPE:
        for (size_t k = 0; k < t->names.n; k++) {
            const char *e = str_ieq(t->names.v[k], "from") ? r->m->env_from : r->m->env_to;
            add_address_part(v, e ? e : "", t->part);
        }
        return true;
    default:
        break;
    }
    for (size_t k = 0; k < t->names.n; k++) {
        for (size_t i = 0; i < r->hdr.n; i++) {
            if (r->budget < 1) return false;
            r->budget--;
            if (!sv_hdr_is(&r->hdr, i, t->names.v[k])) continue;
            const sv_field *f = &r->hdr.f[i];
            if (t->kind == SV_TEST_HEADER) {
                vals_add(v, f->value, f->value_len, false);
                continue;
            }
            if (r->budget < f->value_len) return false;
            r->budget -= f->value_len;
            strvec addrs = {0};
            sv_addr_list(f->value, f->value_len, &addrs);
            for (size_t a = 0; a < addrs.n; a++) add_address_part(v, addrs.v[a], t->part);
            sv_free(&addrs);
        }
    }
    return true;
}

/* match_test - a test of values against keys: true when any value matches any key. */
static int match_test(sv_run *r, const sv_test *t, int line)
{
    sv_vals v;
    memset(&v, 0, sizeof v);
    int res = 0;
    if (!collect(r, t, &v)) {
        res = -1;
    } else if (t->ms.mt == SV_MT_COUNT) {
        for (size_t k = 0; k < t->keys.n && !res; k++) res = sv_match_count(&t->ms, v.n, t->keys.v[k], &r->budget);
    } else {
        for (size_t i = 0; i < v.n && !res && r->budget; i++)
            for (size_t k = 0; k < t->keys.n && !res && r->budget; k++)
                res = sv_match(&t->ms, v.p[i], v.len[i], t->keys.v[k], &r->budget);
    }
    vals_free(&v);
    if (res != 1 && !r->budget) {
        run_fail(r, line, "too much matching work");
        return -1;
    }
    return res;
}

/* eval_test - 1 true, 0 false, -1 a runtime error (recorded). Depth bounded by the parser. */
static int eval_test(sv_run *r, const sv_test *t, int line)
{
    switch (t->kind) {
    case SV_TEST_TRUE: return 1;
    case SV_TEST_FALSE: return 0;
    case SV_TEST_NOT: {
        int v = eval_test(r, t->kids[0], line);
        return v < 0 ? -1 : !v;
    }
    case SV_TEST_ALLOF:
    case SV_TEST_ANYOF: {
        bool any = t->kind == SV_TEST_ANYOF;
        for (size_t i = 0; i < t->nkids; i++) {
            int v = eval_test(r, t->kids[i], line);
            if (v < 0) return -1;
            if (v == any) return any; /* short circuit */
        }
        return !any;
    }
    case SV_TEST_EXISTS:
        for (size_t k = 0; k < t->names.n; k++) {
            size_t i = 0;
            while (i < r->hdr.n && !sv_hdr_is(&r->hdr, i, t->names.v[k])) i++;
            if (r->budget < r->hdr.n) return run_fail(r, line, "too much matching work"), -1;
            r->budget -= r->hdr.n;
            if (i == r->hdr.n) return 0;
        }
        return 1;
    case SV_TEST_SIZE:
        return t->over ? r->m->size > t->limit : r->m->size < t->limit;
    default:
        return match_test(r, t, line);
    }
}

/* count_action - one more action; false (runtime error) past the limit. */
static bool count_action(sv_run *r, const sv_cmd *c)
{
    if (++r->actions > SIEVE_MAX_ACTIONS) {
        run_fail(r, c->line, "too many actions");
        return false;
    }
    return true;
}

/* push_unique - append s unless already there (exactly, or ignoring case when ci). */
static void push_unique(strvec *sv, const char *s, bool ci)
{
    for (size_t i = 0; i < sv->n; i++)
        if (ci ? str_ieq(sv->v[i], s) : strcmp(sv->v[i], s) == 0) return;
    sv_push(sv, s);
}

/* protected_field - fields a script may never delete (RFC 5293 §6): Received, Auto-Submitted. */
static bool protected_field(const char *name)
{
    return str_ieq(name, "received") || str_ieq(name, "auto-submitted");
}

/* do_deleteheader - remove the fields named c->s1 (the :index-th one only, if given) whose
 * value matches one of the patterns (any value when there are none). */
static void do_deleteheader(sv_run *r, const sv_cmd *c)
{
    if (protected_field(c->s1)) return; /* silently ignored, as RFC 5293 allows */
    size_t total = 0;
    for (size_t i = 0; i < r->hdr.n; i++) total += sv_hdr_is(&r->hdr, i, c->s1);
    size_t want = 0; /* 1-based occurrence from the top, 0 = every one */
    if (c->index) {
        if (c->index > total) return;
        want = c->last ? total - c->index + 1 : c->index;
    }
    size_t seen = total;
    for (size_t i = r->hdr.n; i-- > 0;) {
        if (!sv_hdr_is(&r->hdr, i, c->s1)) continue;
        size_t occ = seen--;
        if (want && occ != want) continue;
        bool hit = c->keys.n == 0;
        for (size_t k = 0; k < c->keys.n && !hit; k++)
            hit = sv_match(&c->ms, r->hdr.f[i].value, r->hdr.f[i].value_len, c->keys.v[k], &r->budget);
        if (!r->budget) {
            run_fail(r, c->line, "too much matching work");
            return;
        }
        if (hit) {
            sv_hdr_delete(&r->hdr, i);
            r->edited = true;
        }
    }
}

/* conflict - RFC 5429: reject and ereject exclude keep, fileinto, redirect, vacation and a
 * second reject. */
static bool conflict(sv_run *r, const sv_cmd *c, bool is_reject)
{
    bool bad = is_reject ? (r->rejected || r->kept || r->filed || r->out->vacation) : r->rejected;
    if (bad) run_fail(r, c->line, "reject cannot be combined with keep, fileinto, redirect, vacation or another reject");
    return bad;
}

/* do_action - record one action in the result. */
static void do_action(sv_run *r, const sv_cmd *c)
{
    sieve_result *o = r->out;
    if (c->kind == SV_CMD_STOP) {
        r->stopped = true;
        return;
    }
    if (!count_action(r, c)) return;
    switch (c->kind) {
    case SV_CMD_KEEP:
        if (conflict(r, c, false)) return;
        r->kept = true;
        o->keep_explicit = true;
        break;
    case SV_CMD_DISCARD:
        r->discard_seen = true;
        o->keep_cancelled = true;
        break;
    case SV_CMD_FILEINTO:
    case SV_CMD_REDIRECT:
        if (conflict(r, c, false)) return;
        r->filed = true;
        if (c->kind == SV_CMD_FILEINTO) {
            push_unique(&o->fileinto, c->s1, false);
        } else {
            push_unique(&o->redirect, c->s1, true);
            if (o->redirect.n > SIEVE_MAX_REDIRECTS) {
                run_fail(r, c->line, "too many redirects");
                return;
            }
        }
        if (!c->copy) o->keep_cancelled = true;
        break;
    case SV_CMD_REJECT:
        if (conflict(r, c, true)) return;
        r->rejected = true;
        o->reject = xstrdup(c->s1);
        o->ereject = c->ereject;
        o->keep_cancelled = true;
        break;
    case SV_CMD_VACATION:
        if (o->vacation) {
            run_fail(r, c->line, "vacation used twice");
            return;
        }
        if (conflict(r, c, false)) return;
        o->vacation = true;
        o->vacation_days = c->days;
        o->vacation_reason = xstrdup(c->s1);
        o->vacation_subject = xstrdup(c->subject);
        o->vacation_from = xstrdup(c->from);
        o->vacation_handle = xstrdup(c->handle);
        for (size_t i = 0; i < c->addresses.n; i++) sv_push(&o->vacation_addresses, c->addresses.v[i]);
        o->vacation_mime = c->mime;
        break;
    case SV_CMD_ADDHEADER:
        if (str_ieq(c->s1, "received")) return; /* never (RFC 5293 §6); silently ignored */
        sv_hdr_add(&r->hdr, c->s1, c->s2, c->last);
        r->edited = true;
        break;
    case SV_CMD_DELETEHEADER:
        do_deleteheader(r, c);
        break;
    case SV_CMD_ADDTAG:
        sv_hdr_addtag(&r->hdr, c->s1);
        r->edited = true;
        break;
    default:
        break;
    }
}

/* run_block - run a command list; nested blocks recurse (depth bounded by the parser). */
static void run_block(sv_run *r, const sv_cmd *c)
{
    for (; c && !r->stopped && !r->failed; c = c->next) {
        if (c->kind != SV_CMD_IF) {
            do_action(r, c);
            continue;
        }
        size_t i = 0;
        for (; i < c->ncond; i++) {
            int v = eval_test(r, c->conds[i], c->line);
            if (v < 0) return;
            if (v) break;
        }
        if (i < c->ncond || c->has_else) run_block(r, c->blocks[i]);
    }
}

/* result_clear - free what r owns and zero it. */
static void result_clear(sieve_result *r)
{
    sv_free(&r->fileinto);
    sv_free(&r->redirect);
    free(r->reject);
    free(r->header);
    free(r->vacation_reason);
    free(r->vacation_subject);
    free(r->vacation_from);
    free(r->vacation_handle);
    sv_free(&r->vacation_addresses);
    free(r->error);
    memset(r, 0, sizeof *r);
}

/* sieve_result_free - release what r owns and zero it. */
void sieve_result_free(sieve_result *r)
{
    if (r) result_clear(r);
}

/* finish - derive keep and discard from the recorded flags. */
static void finish(sieve_result *o)
{
    o->keep = !o->reject && (o->keep_explicit || !o->keep_cancelled);
    o->discard = o->discard && !o->keep && !o->fileinto.n && !o->redirect.n && !o->reject;
}

/* sieve_run - evaluate s on m into out (zeroed first). Returns 0, or -1 on a runtime error. */
int sieve_run(const sieve_script *s, const sieve_msg *m, sieve_result *out)
{
    memset(out, 0, sizeof *out);
    sv_run r;
    memset(&r, 0, sizeof r);
    r.m = m;
    r.out = out;
    r.budget = SIEVE_MAX_STEPS;
    sv_hdr_load(&r.hdr, m->header ? m->header : "", m->header ? m->header_len : 0);
    run_block(&r, s->first);
    if (r.failed) {
        sv_hdr_free(&r.hdr);
        result_clear(out);
        out->error = xstrdup(r.err);
        out->keep = out->keep_explicit = true;
        return -1;
    }
    if (r.edited) out->header = sv_hdr_join(&r.hdr, &out->header_len);
    sv_hdr_free(&r.hdr);
    out->discard = r.discard_seen;
    finish(out);
    return 0;
}

/* vacation_clear - drop the vacation request of r. */
static void vacation_clear(sieve_result *r)
{
    free(r->vacation_reason);
    free(r->vacation_subject);
    free(r->vacation_from);
    free(r->vacation_handle);
    sv_free(&r->vacation_addresses);
    r->vacation_reason = r->vacation_subject = r->vacation_from = r->vacation_handle = NULL;
    r->vacation = r->vacation_mime = false;
    r->vacation_days = 0;
}

/* take - move a string from *src to *dst when *dst is empty. */
static void take(char **dst, char **src)
{
    if (!*dst) {
        *dst = *src;
        *src = NULL;
    }
}

/* sieve_result_merge - fold the result of a later script into dst; src is emptied.
 * Folders and addresses are united; a keep of either (explicit, or implicit with no script
 * cancelling it) keeps; the first reject, vacation and error win; a reject drops the deliveries
 * and the vacation;
 * the later edited header replaces the earlier one (the later run started from it). */
void sieve_result_merge(sieve_result *dst, sieve_result *src)
{
    for (size_t i = 0; i < src->fileinto.n; i++) push_unique(&dst->fileinto, src->fileinto.v[i], false);
    for (size_t i = 0; i < src->redirect.n; i++) push_unique(&dst->redirect, src->redirect.v[i], true);
    dst->keep_explicit |= src->keep_explicit;
    dst->keep_cancelled |= src->keep_cancelled;
    dst->discard |= src->discard;
    if (!dst->reject && src->reject) {
        dst->reject = src->reject;
        dst->ereject = src->ereject;
        src->reject = NULL;
    }
    if (src->header) {
        free(dst->header);
        dst->header = src->header;
        dst->header_len = src->header_len;
        src->header = NULL;
    }
    if (!dst->vacation && src->vacation) {
        dst->vacation = true;
        dst->vacation_days = src->vacation_days;
        dst->vacation_mime = src->vacation_mime;
        take(&dst->vacation_reason, &src->vacation_reason);
        take(&dst->vacation_subject, &src->vacation_subject);
        take(&dst->vacation_from, &src->vacation_from);
        take(&dst->vacation_handle, &src->vacation_handle);
        sv_free(&dst->vacation_addresses);
        dst->vacation_addresses = src->vacation_addresses;
        memset(&src->vacation_addresses, 0, sizeof src->vacation_addresses);
    }
    take(&dst->error, &src->error);
    if (dst->reject) {
        sv_free(&dst->fileinto);
        sv_free(&dst->redirect);
        vacation_clear(dst);
        dst->keep_explicit = false;
        dst->keep_cancelled = true;
    }
    finish(dst);
    result_clear(src);
}
