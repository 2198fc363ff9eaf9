/* sts_out.c - MTA-STS applied to an outbound SMTP session (see sts_out.h). */
#include "deliver/sts_out.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/tls.h"
#include "tlsrpt/tlsrpt_out.h"

struct sts_out {
    sts_ctx *ctx;
    const sl_conf *conf;
    char *domain;          /* the policy domain: the routing host, lower case, no final dot */
    sts_wait *wait;        /* the lookup waited for, or NULL */
    sts_out_cb cb;
    void *arg;
    char *msg_id;          /* the item that asked, for the log */
    bool have;             /* a policy applies (enforce or testing; "none" is as no policy) */
    sts_policy policy;
    char id[STS_ID_MAX + 1];
    char *dane_mx;         /* the MX host DANE authenticates instead (sts_out_set_dane), or NULL */
    char *counted_mx;      /* testing: the unlisted MX host whose session counts as failed already, or NULL */
};

/* applies - whether the destination is checked for MTA-STS at all (see sts_out.h). */
static bool applies(const sl_conf *conf, const sl_channel *ch, const char *domain, const tls_policy_entry *pol)
{
    if (ch->daemon && *ch->daemon) return false; /* a smart host is not the domain's MX */
    if (!ch->mx || domain[0] == '[' || ch->lmtp || ch->type == CHAN_LMTP) return false;
    return pol ? pol->level == TLS_LEVEL_STS : conf->opt.mta_sts;
}

sts_out *sts_out_new(sts_ctx *ctx, const sl_conf *conf, const sl_channel *ch, const char *domain,
                     const tls_policy_entry *pol)
{
    if (!ctx || !applies(conf, ch, domain, pol)) return NULL;
    char *d = str_lower(xstrdup(domain));
    size_t n = strlen(d);
    if (n && d[n - 1] == '.') d[n - 1] = '\0';
    if (!sts_domain_ok(d)) {
        free(d);
        return NULL;
    }
    sts_out *o = xcalloc(1, sizeof *o);
    o->ctx = ctx;
    o->conf = conf;
    o->domain = d;
    return o;
}

/* forget - drop the policy of an earlier lookup. */
static void forget(sts_out *o)
{
    sts_policy_free(&o->policy);
    o->have = false;
    o->id[0] = '\0';
}

void sts_out_free(sts_out *o)
{
    if (!o) return;
    sts_wait_cancel(o->wait);
    forget(o);
    free(o->domain);
    free(o->msg_id);
    free(o->dane_mx);
    free(o->counted_mx);
    free(o);
}

/* clean - text safe inside a double-quoted log value; caller frees. */
static char *clean(const char *s)
{
    char *v = xstrdup(s ? s : "");
    for (char *p = v; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = '\'';
    return v;
}

/* on_answer - the lookup's answer: keep the policy, log it, go on. */
static void on_answer(void *arg, const sts_answer *a)
{
    sts_out *o = arg;
    o->wait = NULL;
    forget(o);
    if (a->policy && a->policy->mode != STS_MODE_NONE) {
        sts_policy_copy(&o->policy, a->policy);
        o->have = true;
    }
    snprintf(o->id, sizeof o->id, "%s", a->id ? a->id : "");
    char *note = clean(a->note);
    log_info(o->msg_id, "sts_policy", "domain=%s mode=%s id=%s source=%s%s%s%s", o->domain,
             a->policy ? sts_mode_name(a->policy->mode) : "absent", o->id[0] ? o->id : "-", sts_source_name(a->source),
             note[0] ? " note=\"" : "", note, note[0] ? "\"" : "");
    free(note);
    o->cb(o->arg);
}

void sts_out_begin(sts_out *o, const char *msg_id, sts_out_cb cb, void *arg)
{
    sts_wait_cancel(o->wait);
    forget(o);
    sts_out_set_dane(o, NULL); /* a DANE verdict belongs to one attempt: a testing policy makes none */
    free(o->counted_mx);
    o->counted_mx = NULL;
    free(o->msg_id);
    o->msg_id = xstrdup(msg_id);
    o->cb = cb;
    o->arg = arg;
    sts_params p = {o->conf->opt.mta_sts_port, o->conf->opt.mta_sts_timeout, o->conf->opt.tls_ca_file};
    o->wait = sts_lookup(o->ctx, o->domain, &p, on_answer, o);
}

enum tls_level sts_out_level(const sts_out *o, enum tls_level fallback)
{
    return o && o->have && o->policy.mode == STS_MODE_ENFORCE ? TLS_LEVEL_STS : fallback;
}

/* rpt_type - the TLS-RPT result type of an MTA-STS failure (the same RFC 8460 names). */
static enum tlsrpt_rtype rpt_type(enum sts_result_type t)
{
    switch (t) {
    case STS_RT_STARTTLS_NOT_SUPPORTED: return TLSRPT_STARTTLS_NOT_SUPPORTED;
    case STS_RT_CERT_HOST_MISMATCH: return TLSRPT_CERT_HOST_MISMATCH;
    case STS_RT_CERT_EXPIRED: return TLSRPT_CERT_EXPIRED;
    case STS_RT_CERT_NOT_TRUSTED: return TLSRPT_CERT_NOT_TRUSTED;
    case STS_RT_POLICY_FETCH_ERROR: return TLSRPT_STS_POLICY_FETCH_ERROR;
    case STS_RT_POLICY_INVALID: return TLSRPT_STS_POLICY_INVALID;
    case STS_RT_WEBPKI_INVALID: return TLSRPT_STS_WEBPKI_INVALID;
    default: return TLSRPT_VALIDATION_FAILURE;
    }
}

/* report - one outcome for TLS-RPT under the sts policy of domain: policy-string the lines of p
 * as served, mx-host its mx patterns (p NULL: neither, as for a fetch failure with nothing cached). */
static void report(const char *domain, const sts_policy *p, const char *mx, const char *ip, struct bufferevent *bev,
                   enum tlsrpt_rtype type, const char *detail)
{
    tlsrpt_policy pol = {.domain = domain, .type = TLSRPT_POLICY_STS};
    if (p) {
        pol.strings = (const char *const *)p->lines.v;
        pol.n_strings = p->lines.n;
        pol.mx_hosts = (const char *const *)p->mx.v;
        pol.n_mx = p->mx.n;
    }
    tlsrpt_out_policy(&pol, mx, ip, bev, type, detail);
}

/* count - one session with mx for TLS-RPT under the sts policy (type: TLSRPT_SUCCESS or a failure),
 * unless it was counted as failed already when mx was found unlisted (testing). */
static void count(const sts_out *o, const char *mx, const char *ip, struct bufferevent *bev, enum tlsrpt_rtype type,
                  const char *detail)
{
    if (o->counted_mx && mx && !strcasecmp(o->counted_mx, mx)) return;
    report(o->domain, &o->policy, mx, ip, bev, type, detail);
}

void sts_out_fetch_failed(const char *domain, const sts_policy *kept, enum sts_result_type type, const char *detail)
{
    report(domain, kept, NULL, NULL, NULL, rpt_type(type), detail);
}

/* record - one failure of the policy at mx (ip, bev: the connection to it, NULL before one). */
static void record(const sts_out *o, const char *msg_id, const char *mx, const char *ip, struct bufferevent *bev,
                   enum sts_result_type t, const char *detail)
{
    sts_result_record(msg_id, o->domain, mx, o->policy.mode, t, detail);
    count(o, mx, ip, bev, rpt_type(t), detail);
}

bool sts_out_dane_wins(const sts_out *o, const char *mx)
{
    /* RFC 8461 2: where the MX host has secure, usable TLSA records, DANE applies to it and
       MTA-STS does not (the client said so with sts_out_set_dane) */
    return o->dane_mx && mx && !strcasecmp(o->dane_mx, mx);
}

bool sts_out_reports(const sts_out *o, const char *mx)
{
    return o && o->have && !sts_out_dane_wins(o, mx);
}

void sts_out_set_dane(sts_out *o, const char *mx)
{
    free(o->dane_mx);
    o->dane_mx = mx ? xstrdup(mx) : NULL;
}

bool sts_out_mx_allowed(sts_out *o, const char *msg_id, const char *mx)
{
    if (!o->have || sts_out_dane_wins(o, mx) || sts_mx_match(&o->policy, mx)) return true;
    sts_fail_facts f = {.stage = STS_FAIL_MX};
    char *mxs = sv_join(&o->policy.mx, ",");
    char *detail = xasprintf("MX host %s is not among the policy's mx patterns (%s)", mx, mxs);
    record(o, msg_id, mx, NULL, NULL, sts_result_type_of(&f), detail);
    bool enforce = o->policy.mode == STS_MODE_ENFORCE;
    if (enforce) log_info(msg_id, "sts_mx_skipped", "domain=%s mx=%s mx_patterns=\"%s\"", o->domain, mx, mxs);
    if (!enforce) { /* the session with it goes on: counted as failed, once */
        free(o->counted_mx);
        o->counted_mx = xstrdup(mx);
    }
    free(detail);
    free(mxs);
    return !enforce;
}

/* cert_facts - what is wrong with the MX certificate on ssl for host mx. */
static sts_fail_facts cert_facts(SSL *ssl, const char *mx)
{
    sts_fail_facts f = {.stage = STS_FAIL_CERT};
    X509 *cert = SSL_get0_peer_certificate(ssl);
    long vr = SSL_get_verify_result(ssl);
    f.chain_ok = cert && vr == X509_V_OK;
    f.expired = vr == X509_V_ERR_CERT_HAS_EXPIRED;
    f.name_ok = cert && X509_check_host(cert, mx, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
    return f;
}

void sts_out_tls_note(sts_out *o, const char *msg_id, SSL *ssl, const char *mx, const char *ip,
                      struct bufferevent *bev, char *note, size_t len)
{
    note[0] = '\0';
    if (!o->have || sts_out_dane_wins(o, mx)) return;
    bool enforce = o->policy.mode == STS_MODE_ENFORCE;
    const char *names[1] = {mx};
    char why[256];
    if (tls_client_verify(ssl, names, 1, why, sizeof why)) {
        snprintf(note, len, " sts=%s", sts_mode_name(o->policy.mode));
        count(o, mx, ip, bev, TLSRPT_SUCCESS, NULL);
        return;
    }
    sts_fail_facts f = cert_facts(ssl, mx);
    enum sts_result_type t = sts_result_type_of(&f);
    record(o, msg_id, mx, ip, bev, t, why);
    char *w = clean(why);
    if (enforce)
        snprintf(note, len, " sts=enforce result_type=%s", sts_result_type_name(t));
    else
        snprintf(note, len, " sts=testing-failure reason=\"%s\" result_type=%s", w, sts_result_type_name(t));
    free(w);
}

void sts_out_clear_note(sts_out *o, const char *msg_id, const char *mx, const char *ip, struct bufferevent *bev,
                        char *note, size_t len)
{
    note[0] = '\0';
    if (!o->have || sts_out_dane_wins(o, mx)) return;
    sts_fail_facts f = {.stage = STS_FAIL_STARTTLS};
    enum sts_result_type t = sts_result_type_of(&f);
    record(o, msg_id, mx, ip, bev, t, "the session went on without TLS");
    snprintf(note, len, " sts=%s-failure result_type=%s", sts_mode_name(o->policy.mode), sts_result_type_name(t));
}

void sts_out_failed(sts_out *o, const char *msg_id, const char *mx, const char *ip, struct bufferevent *bev,
                    enum sts_fail_stage stage, const char *detail)
{
    if (!o->have || sts_out_dane_wins(o, mx)) return;
    sts_fail_facts f = {.stage = stage};
    record(o, msg_id, mx, ip, bev, sts_result_type_of(&f), detail);
}
