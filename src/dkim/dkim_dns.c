/*
 * dkim_dns.c - verifying every signature of a message with key records from DNS (see dkim.h).
 *
 * The signatures are checked one after the other, each with one TXT lookup of
 * SELECTOR._domainkey.DOMAIN, so at most one query of a request is outstanding; the request is
 * always waiting for exactly that answer until it delivers its results. The first record that
 * parses as a tag-list is used (RFC 6376 §3.6.2.2 leaves several records to the verifier).
 */
#include "dkim/dkim.h"
#include "dns/dns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dkim_req {
    dns_ctx *d;
    dkim_check_cb cb;
    void *arg;
    char *msg;
    size_t len;
    int64_t now;
    dkim_sig_info *sigs;
    size_t n, next;
    bool cancelled;
};

/* req_free - release r and its results. */
static void req_free(dkim_req *r)
{
    for (size_t i = 0; i < r->n; i++) dkim_sig_info_free(&r->sigs[i]);
    free(r->sigs);
    free(r->msg);
    free(r);
}

static void on_key(void *arg, sl_result res, char *const *strs, size_t n, const char *err);

/* check_next - look up the key of the next signature (true: r waits for it), or deliver the
 * results when none is left (false: r is freed). */
static bool check_next(dkim_req *r)
{
    while (r->next < r->n) {
        char *name = dkim_sig_key_name(r->msg, r->len, r->next);
        if (name) {
            dns_lookup_txt(r->d, name, on_key, r);
            free(name);
            return true;
        }
        /* no d= or s=: verifying says what is wrong without a key */
        dkim_verify(r->msg, r->len, r->next, "", r->now, &r->sigs[r->next]);
        r->next++;
    }
    r->cb(r->arg, r->sigs, r->n);
    req_free(r);
    return false;
}

/* on_key - the key records of the current signature. */
static void on_key(void *arg, sl_result res, char *const *strs, size_t n, const char *err)
{
    dkim_req *r = arg;
    if (r->cancelled) {
        req_free(r);
        return;
    }
    dkim_sig_info *info = &r->sigs[r->next];
    const char *record = NULL;
    for (size_t i = 0; i < n && !record; i++) {
        dkim_tags t;
        char perr[128];
        if (dkim_tags_parse(strs[i], strlen(strs[i]), &t, perr, sizeof perr) == 0) {
            record = strs[i];
            dkim_tags_free(&t);
        }
    }
    if (res == SL_TEMP) {
        dkim_verify(r->msg, r->len, r->next, "", r->now, info); /* for d=, s=, a= */
        info->res = DKIM_TEMPERROR;
        snprintf(info->reason, sizeof info->reason, "key lookup: %s", err ? err : "failed");
    } else if (!record) {
        dkim_verify(r->msg, r->len, r->next, "", r->now, info);
        if (info->res != DKIM_PERMERROR || !strstr(info->reason, "signature")) {
            info->res = DKIM_PERMERROR;
            snprintf(info->reason, sizeof info->reason, "no key record");
        }
    } else {
        dkim_verify(r->msg, r->len, r->next, record, r->now, info);
    }
    r->next++;
    (void)check_next(r);
}

dkim_req *dkim_check(dns_ctx *d, const char *msg, size_t len, int64_t now, dkim_check_cb cb, void *arg)
{
    dkim_req *r = xcalloc(1, sizeof *r);
    r->d = d;
    r->cb = cb;
    r->arg = arg;
    r->msg = xmemdup0(msg, len);
    r->len = len;
    r->now = now;
    r->n = dkim_sig_count(msg, len);
    r->sigs = xcalloc(r->n ? r->n : 1, sizeof *r->sigs);
    return check_next(r) ? r : NULL;
}

void dkim_check_cancel(dkim_req *req)
{
    if (req) req->cancelled = true;
}
