/*
 * smtp_out.c - the SMTP/LMTP client's I/O adapter (see smtp_out.h): destinations, connections,
 * TLS and timeouts around the protocol engine of smtp/client_sess.c.
 *
 * One smtp_out is one outbound session of a job. A delivery runs through:
 *   destinations (DNS: smart host, MX list or the host itself) -> connect to each address in
 *   turn -> the engine speaks (greeting, EHLO, STARTTLS, the transaction) -> idle (reusable).
 * The adapter owns the socket (a bufferevent, with an OpenSSL filter after STARTTLS), feeds
 * the engine what arrives, writes what the engine emits, and acts on the engine's events: the
 * engine decides what each reply means, the adapter decides where to go next.
 *
 * Recipients of the item are open (they still need a host) or done. A recipient whose result
 * is temporary and certain (a 4xx reply, or a session that failed before its content was sent)
 * stays open: when the transaction or the session ends, the next address gets the open
 * recipients, in the same attempt. When every destination has been tried, each open recipient
 * keeps the last failure (a reply about it, or the last host's failure if that came later).
 * Delivered recipients, 5xx and "may have arrived" (connection lost after the content) are final.
 *
 * The caller's callback always runs from a zero timeout, never inside smtp_out_deliver.
 * Only the loop thread calls these functions; SIGPIPE must be ignored by the process.
 */
#include "deliver/smtp_out.h"
#include "core/bev.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/tls.h"
#include "core/tls_policy.h"
#include "conf/shaping.h"
#include "deliver/dane_out.h"
#include "deliver/hostmem.h"
#include "dns/dnssec.h"
#include "deliver/sts_out.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "smtp/client_sess.h"
#include "smtp/parse.h"
#include "tlsrpt/tlsrpt_out.h"

enum out_state {
    OS_CLOSED,       /* no connection */
    OS_RESOLVING,    /* waiting for DNS */
    OS_CONNECTING,   /* TCP connect in progress */
    OS_SESSION,      /* connected: the engine speaks */
    OS_TLS_HANDSHAKE /* TLS handshake in progress */
};

enum rcpt_state { RS_OPEN = 0, RS_DONE };

struct smtp_out {
    struct event_base *base;
    dns_ctx *dns;
    const sl_conf *conf;
    const sl_channel *ch;
    char *host;           /* routing host */
    enum out_state st;

    /* destinations of the current attempt */
    strvec names;         /* host names to try, in order */
    bool from_mx;         /* names are the routing host's MX hosts */
    char *first_failed;   /* the MX host this attempt failed at first (hostmem_to_back at its end) */
    hostmem *mem;         /* MX hosts that failed lately, per destination (the daemon's), or NULL */
    char *dest_key;       /* this destination in mem: "<channel> <routing host>" */
    size_t next_name;
    bool direct;          /* names[0] is the routing host itself: no address is permanent */
    struct sockaddr_storage *addrs;
    size_t n_addrs, next_addr;

    /* the connection */
    struct bufferevent *bev;
    struct evbuffer *wbuf; /* what the engine emitted and the socket has not taken yet */
    smtp_client *cs;      /* the protocol engine of this connection */
    unsigned gen;         /* changes whenever a connection is closed */
    char *peer_name;      /* host name of the peer */
    char peer_ip[INET6_ADDRSTRLEN];
    char *peer;           /* "name [ip]" for remote_mta */
    bool in_connect;      /* inside bufferevent_socket_connect */
    short sync_what;      /* event reported from inside it */
    int sync_errno;
    bool body_out;        /* the message is being written: only the write timeout runs */

    /* the item in progress */
    deliv_item *item;
    smtp_out_done_cb cb;
    void *arg;
    unsigned char *rst;   /* enum rcpt_state per recipient */
    const qrcpt **txn_rcpts; /* the recipients of the transaction in progress */
    size_t *txn_map;      /* their indexes in the item */
    bool reused;          /* transaction began on a connection left open by an earlier one */

    /* last failure, the result of open recipients when every destination fails */
    sl_result fail_res;
    char fail_status[16];
    char *fail_diag;
    char *fail_mta;

    struct event *ev_done;

    /* loop detection and policy */
    char *self_token;
    struct sockaddr_storage *self_addrs;
    size_t n_self;
    bool saw_self;        /* a destination was one of our own addresses */
    bool direct_daemon;   /* destinations come from the channel's daemon host */
    size_t n_attempted;   /* connections tried in this attempt */
    bool tried_lastresort;
    unsigned msgs_on_conn; /* transactions on the current connection */
    struct ssl_ctx_st *tls_ctx;
    char tls_info[96];
    enum tls_level tls_level;        /* what this destination gets (policy table, else the channel keyword) */
    const tls_policy_entry *tls_pol; /* its entry in the conf's policy table, or NULL */
    int tls_refused;                 /* the reply code that refused STARTTLS on this connection, or 0 */
    /* DANE (levels dane, dane-only; dane_out.h) */
    bool mx_secure;                  /* the MX RRset of this attempt was DNSSEC-validated */
    size_t n_mx_names;               /* names[0..n) came from that MX RRset (not lastresort, not the host itself) */
    dane_host dane;                  /* the current host's DANE verdict and TLSA records */
    bool sts_dane;                   /* an enforced MTA-STS policy: DANE is looked for too and wins where it authenticates (RFC 8461 2) */
    sts_out *sts;                    /* MTA-STS for this destination (deliver/sts_out.h), or NULL */
};

static void dest_try_next(smtp_out *s);
static void dest_start(smtp_out *s);
static void dest_resolve(smtp_out *s);
static void dest_on_mx(void *arg, sl_result res, const dns_mx *mx, size_t n, const char *errmsg);
static void dest_on_addr(void *arg, sl_result res, const struct sockaddr_storage *addrs, size_t n, const char *errmsg);
static void item_finish(smtp_out *s);
static void conn_on_read(struct bufferevent *bev, void *arg);
static void conn_on_write(struct bufferevent *bev, void *arg);
static void conn_on_event(struct bufferevent *bev, short what, void *arg);

/* ---- helpers ------------------------------------------------------------------------- */

/* out_msg_id - queue id of the item in progress, for logs. */
static const char *out_msg_id(const smtp_out *s)
{
    return s->item ? s->item->msg->id : NULL;
}

/* out_rcpt - the queued recipient behind index i of the item. */
static const qrcpt *out_rcpt(const smtp_out *s, size_t i)
{
    return &s->item->msg->rcpts[s->item->rcpts[i]];
}

/* log_value - text safe inside a double-quoted log value; caller frees. */
static char *log_value(const char *s)
{
    char *v = xstrdup(s ? s : "");
    for (char *p = v; *p; p++)
        if (*p == '"' || *p == '\\') *p = '\'';
    return v;
}

/* item_active - an item is being delivered (not merely waiting for its callback to run). */
static bool item_active(const smtp_out *s)
{
    return s->item && s->rst;
}

/* rcpts_open_clear - forget what earlier hosts said about the open recipients. */
static void rcpts_open_clear(smtp_out *s)
{
    for (size_t i = 0; item_active(s) && i < s->item->n; i++)
        if (s->rst[i] == RS_OPEN) deliv_result_clear(&s->item->results[i]);
}

/* rcpts_open - how many recipients still need a host. */
static size_t rcpts_open(const smtp_out *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->item->n; i++) n += s->rst[i] == RS_OPEN;
    return n;
}

/* fail_set - remember the latest failure of this delivery attempt; it supersedes earlier ones. */
static void fail_set(smtp_out *s, sl_result res, const char *status, const char *diag, const char *mta)
{
    s->fail_res = res;
    snprintf(s->fail_status, sizeof s->fail_status, "%s", status);
    free(s->fail_diag);
    free(s->fail_mta);
    s->fail_diag = xstrdup(diag);
    s->fail_mta = xstrdup(mta);
    rcpts_open_clear(s);
}

/* fail_set_conn - remember a connection-level failure ("connection refused", "TLS ..."). */
static void fail_set_conn(smtp_out *s, const char *status, const char *what)
{
    char *diag = xasprintf("%s: %s", s->peer ? s->peer : s->host, what);
    fail_set(s, SL_TEMP, status, diag, s->peer);
    free(diag);
}

/* rcpts_fail_open - every open recipient gets res/status/diag and is done. */
static void rcpts_fail_open(smtp_out *s, sl_result res, const char *status, const char *diag, const char *mta)
{
    for (size_t i = 0; i < s->item->n; i++) {
        if (s->rst[i] == RS_DONE) continue;
        deliv_result_set(&s->item->results[i], res, status, diag, mta);
        s->rst[i] = RS_DONE;
    }
}

/* copt - a per-channel timeout (<channel>_option), else the global one, else def. */
static unsigned copt(unsigned chan, unsigned global, unsigned def)
{
    return chan ? chan : global ? global : def;
}

/* cmd_timeout - how long to wait for a reply. */
static unsigned cmd_timeout(const smtp_out *s)
{
    return copt(s->ch->copts.command_timeout, s->conf->opt.command_timeout, 300);
}

/* is_lmtp - the channel speaks LMTP. */
static bool is_lmtp(const smtp_out *s)
{
    return s->ch->lmtp || s->ch->type == CHAN_LMTP;
}

/* ---- memory of failing hosts --------------------------------------------------------- */

/* mem_failed - the current MX host failed: the next attempts try it after its equals. A kept
 * connection that ends is no failure of its host (servers close idle connections). */
static void mem_failed(smtp_out *s)
{
    if (!s->mem || !s->from_mx || !s->peer_name || s->reused) return;
    hostmem_failed(s->mem, s->dest_key, s->peer_name, now_unix());
    if (!s->first_failed) s->first_failed = xstrdup(s->peer_name);
}

/* mem_ok - the current MX host completed a transaction: forget its failures. */
static void mem_ok(smtp_out *s)
{
    if (s->mem && s->from_mx && s->peer_name) hostmem_ok(s->mem, s->dest_key, s->peer_name);
}

/* mem_attempt_end - the host this attempt began failing at goes behind its fellow failures, so
 * that attempts to hosts that all fail begin at each in turn. */
static void mem_attempt_end(smtp_out *s)
{
    if (s->mem && s->first_failed) hostmem_to_back(s->mem, s->dest_key, s->first_failed);
    free(s->first_failed);
    s->first_failed = NULL;
}

/* mem_log_order - log the MX order when the memory changed it. */
static void mem_log_order(const smtp_out *s, const dns_mx *mx, size_t n, const strvec *failing)
{
    strbuf order, fail;
    sb_init(&order);
    sb_init(&fail);
    for (size_t i = 0; i < n; i++) sb_printf(&order, "%s%s", i ? "," : "", mx[i].host[0] ? mx[i].host : ".");
    for (size_t i = 0; i < failing->n; i++) sb_printf(&fail, "%s%s", i ? "," : "", failing->v[i]);
    log_info(out_msg_id(s), "mx_order", "host=%s order=%s failing=%s", s->host, order.data, fail.data);
    sb_free(&order);
    sb_free(&fail);
}

/* mem_order - a copy of mx in the order to try: hosts that failed lately after the others of
 * their preference (dns_mx_demote); caller frees. */
static dns_mx *mem_order(smtp_out *s, const dns_mx *mx, size_t n)
{
    dns_mx *o = xcalloc(n ? n : 1, sizeof *o);
    if (n) memcpy(o, mx, n * sizeof *mx);
    strvec failing = {0};
    if (s->mem) hostmem_failing(s->mem, s->dest_key, now_unix(), &failing);
    if (failing.n) {
        dns_mx_demote(o, n, &failing);
        mem_log_order(s, o, n, &failing);
    }
    sv_free(&failing);
    return o;
}

/* ---- connection ---------------------------------------------------------------------- */

/* out_flush - hand what the engine emitted to the socket; true when nothing is left queued. */
static bool out_flush(smtp_out *s)
{
    if (!s->bev) return true;
    if (evbuffer_get_length(s->wbuf)) return bev_send_buffer(s->bev, s->wbuf);
    return evbuffer_get_length(bufferevent_get_output(s->bev)) == 0;
}

/* out_emit - the engine's output: staged until the engine call returns, then written at once. */
static void out_emit(void *ctx, const void *p, size_t n)
{
    smtp_out *s = ctx;
    evbuffer_add(s->wbuf, p, n);
}

/* conn_close - drop the connection; with quit, the engine says QUIT first (fire and forget). */
static void conn_close(smtp_out *s, bool quit)
{
    if (s->cs && quit) smtp_client_quit(s->cs);
    out_flush(s);
    smtp_client_free(s->cs);
    s->cs = NULL;
    if (s->bev) bufferevent_free(s->bev);
    s->bev = NULL;
    evbuffer_drain(s->wbuf, evbuffer_get_length(s->wbuf));
    s->gen++;
    s->st = OS_CLOSED;
    s->body_out = false;
}

/* conn_timeouts - apply a timeout in seconds to reading and writing. */
static void conn_timeouts(smtp_out *s, unsigned secs)
{
    struct timeval tv = {secs ? (time_t)secs : 300, 0};
    bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/*
 * conn_next - leave this connection (QUIT if quit): the open recipients go to the next address. A
 * connection kept from an earlier item has no list of untried addresses left: start afresh.
 */
static void conn_next(smtp_out *s, bool quit)
{
    conn_close(s, quit);
    if (!rcpts_open(s)) {
        item_finish(s);
        return;
    }
    if (s->reused) {
        s->reused = false;
        dest_start(s);
        return;
    }
    dest_try_next(s);
}

/* conn_connect_failed - TCP connect to the current address failed (err: errno or 0 for timeout). */
static void conn_connect_failed(smtp_out *s, int err)
{
    const char *why = err ? strerror(err) : "connection timed out";
    log_info(out_msg_id(s), "connect_failed", "host=%s addr=%s port=%u error=\"%s\"", s->peer_name, s->peer_ip,
             s->ch->port ? s->ch->port : 25, why);
    mem_failed(s);
    fail_set_conn(s, "4.4.1", why);
    conn_close(s, false);
    dest_try_next(s);
}

/* ---- the engine's events ------------------------------------------------------------- */

/* tls_level_of - the TLS level of the destination: its policy table entry, else the channel keyword
 * (also for an "sts" entry: what MTA-STS falls back to; sts_out_level decides once the policy is known). */
static enum tls_level tls_level_of(const smtp_out *s)
{
    if (s->tls_pol && s->tls_pol->level != TLS_LEVEL_STS) return s->tls_pol->level;
    return s->ch->tls == CHAN_TLS_MUST ? TLS_LEVEL_ENCRYPT : s->ch->tls == CHAN_TLS_NO ? TLS_LEVEL_NONE : TLS_LEVEL_MAY;
}

/* ---- DANE (dane_out.h): the lookups, the per-host verdict, the certificate check ------- */

/* dane_count - one more DANE outcome in the metrics (verified, failed, skipped). */
static void dane_count(const char *result)
{
    const char *v[] = {result};
    metric_add(&METRIC_DANE, v, 1);
}

/* dane_rpt_type - the TLS-RPT result type of a DANE failure (the same RFC 8460 names). */
static enum tlsrpt_rtype dane_rpt_type(dane_result_type rt)
{
    switch (rt) {
    case DANE_RT_STARTTLS_NOT_SUPPORTED: return TLSRPT_STARTTLS_NOT_SUPPORTED;
    case DANE_RT_CERT_HOST_MISMATCH: return TLSRPT_CERT_HOST_MISMATCH;
    case DANE_RT_TLSA_INVALID: return TLSRPT_TLSA_INVALID;
    case DANE_RT_DNSSEC_INVALID: return TLSRPT_DNSSEC_INVALID;
    case DANE_RT_DANE_REQUIRED: return TLSRPT_DANE_REQUIRED;
    default: return TLSRPT_VALIDATION_FAILURE;
    }
}

/* dane_report - one DANE outcome for TLS-RPT under the tlsa policy of the destination, its
 * policy-string the host's usable TLSA records. */
static void dane_report(smtp_out *s, enum tlsrpt_rtype type, const char *why)
{
    strvec recs = {0};
    dane_host_strings(&s->dane, &recs);
    tlsrpt_policy pol = {.domain = s->host, .type = TLSRPT_POLICY_TLSA, .strings = (const char *const *)recs.v,
                         .n_strings = recs.n};
    tlsrpt_out_policy(&pol, s->peer_name, s->peer_ip, s->bev, type, why);
    sv_free(&recs);
}

/* dane_failed - THE place every DANE failure passes (for a TLS-RPT reporter, RFC 8460): one
 * tls_failed line with its RFC 8460 result type and one count. state: "failed" (a handshake or
 * its certificate), "skipped" (the host was not connected to), "none" (no STARTTLS). */
static void dane_failed(smtp_out *s, const char *state, dane_result_type rt, const char *why)
{
    log_info(out_msg_id(s), "tls_failed", "peer=%s tls=%s policy=%s result_type=%s reason=\"%s\"",
             s->peer && strcmp(state, "skipped") != 0 ? s->peer : s->peer_name, state, tls_level_name(s->tls_level),
             dane_result_type_name(rt), why);
    dane_count(strcmp(state, "skipped") == 0 ? "skipped" : "failed");
    dane_report(s, dane_rpt_type(rt), why);
}

/* dane_wanted - the destination's level is dane or dane-only, or an enforced MTA-STS policy looks for DANE first. */
static bool dane_wanted(const smtp_out *s)
{
    return s->tls_level == TLS_LEVEL_DANE || s->tls_level == TLS_LEVEL_DANE_ONLY || s->sts_dane;
}

/* dane_level - the DANE level the host's verdict is decided under: opportunistic for MTA-STS. */
static enum tls_level dane_level(const smtp_out *s)
{
    return s->sts_dane ? TLS_LEVEL_DANE : s->tls_level;
}

/* conn_level - the level the current connection applies: the destination's, except that DANE
 * becomes TLS_LEVEL_DANE (certificate by TLSA), encrypt or may as the host's verdict says. */
static enum tls_level conn_level(const smtp_out *s)
{
    if (!dane_wanted(s)) return s->tls_level;
    if (s->sts_dane) return s->dane.v.mode == DANE_HOST_VERIFY ? TLS_LEVEL_DANE : s->tls_level; /* else MTA-STS */
    switch (s->dane.v.mode) {
    case DANE_HOST_VERIFY: return TLS_LEVEL_DANE;
    case DANE_HOST_ENCRYPT: return TLS_LEVEL_ENCRYPT;
    default: return TLS_LEVEL_MAY;
    }
}

/* dest_on_mx_sec - the DNSSEC-aware MX answer: note whether it was secure, then as dest_on_mx. */
static void dest_on_mx_sec(void *arg, sl_result res, bool secure, const dns_mx *mx, size_t n, const char *errmsg)
{
    smtp_out *s = arg;
    s->mx_secure = res == SL_OK && secure;
    dest_on_mx(arg, res, mx, n, errmsg);
}

/* dest_lookup_mx - look the routing host's MX records up (with the AD bit for DANE levels only:
 * the other levels keep the plain lookup). */
static void dest_lookup_mx(smtp_out *s)
{
    if (dane_wanted(s))
        dns_lookup_mx_sec(s->dns, s->host, dest_on_mx_sec, s);
    else
        dns_lookup_mx(s->dns, s->host, dest_on_mx, s);
}

/* dane_host_secure_mx - whether the host being resolved came from a secure MX RRset. */
static bool dane_host_secure_mx(const smtp_out *s)
{
    return s->mx_secure && s->next_name >= 1 && s->next_name - 1 < s->n_mx_names;
}

/* dane_apply - the host's verdict is known: skip it (4.7.5, never clear text) or resolve its addresses. */
static void dane_apply(smtp_out *s, size_t n_records)
{
    const dane_verdict *v = &s->dane.v;
    log_info(out_msg_id(s), "dane", "host=%s mode=%s mx_secure=%s records=%zu usable=%zu reason=\"%s\"%s%s",
             s->peer_name, dane_mode_name(v->mode), s->mx_secure ? "yes" : "no", n_records, s->dane.n, v->why,
             v->rt ? " result_type=" : "", dane_result_type_name(v->rt));
    if (s->sts) sts_out_set_dane(s->sts, v->mode == DANE_HOST_VERIFY ? s->peer_name : NULL);
    if (v->mode != DANE_HOST_SKIP) {
        dns_lookup_addr(s->dns, s->peer_name, dest_on_addr, s);
        return;
    }
    char *diag = xasprintf("x-sluice; %s: DANE (%s): %s", s->peer_name, tls_level_name(s->tls_level), v->why);
    dane_failed(s, "skipped", v->rt, v->why);
    fail_set(s, SL_TEMP, "4.7.5", diag, NULL);
    free(diag);
    s->st = OS_CLOSED;
    dest_try_next(s);
}

/* dest_on_tlsa - the TLSA answer for the host being resolved. */
static void dest_on_tlsa(void *arg, sl_result res, bool secure, const dns_rdata *rr, size_t n, const char *errmsg)
{
    smtp_out *s = arg;
    if (res == SL_TEMP)
        log_info(out_msg_id(s), "dns_failed", "host=%s type=TLSA error=\"%s\"", s->peer_name, errmsg ? errmsg : "");
    dane_host_set(&s->dane, s->peer_name, dane_level(s), true, res, secure, rr, n);
    dane_apply(s, res == SL_OK ? n : 0);
}

/* dest_resolve - find the addresses of peer_name; for DANE levels first its TLSA records (only
 * for a host of a secure MX RRset: RFC 7672 2.2.1), whose verdict may skip it. */
static void dest_resolve(smtp_out *s)
{
    if (!dane_wanted(s)) {
        dns_lookup_addr(s->dns, s->peer_name, dest_on_addr, s);
        return;
    }
    if (dane_host_secure_mx(s)) {
        dns_lookup_tlsa(s->dns, s->peer_name, s->ch->port ? s->ch->port : 25, dest_on_tlsa, s);
        return;
    }
    dane_host_set(&s->dane, s->peer_name, dane_level(s), false, SL_PERM, false, NULL, 0);
    dane_apply(s, 0);
}

/* tls_dane_prepare - before a handshake the host's TLSA records must authenticate: hand them to
 * OpenSSL; false (the session failed, 4.7.5) when it took none. */
static bool tls_dane_prepare(smtp_out *s, SSL *ssl)
{
    if (conn_level(s) != TLS_LEVEL_DANE) return true;
    char why[256];
    if (dane_ssl_prepare(&s->dane, ssl, why, sizeof why)) return true;
    dane_failed(s, "failed", DANE_RT_TLSA_INVALID, why);
    smtp_client_tls_failed(s->cs, why);
    return false;
}

/* tls_check_dane - after the handshake: a TLSA record must match (tls=dane-verified), else 4.7.5. */
static bool tls_check_dane(smtp_out *s, SSL *ssl)
{
    char match[96], why[256];
    dane_result_type rt = DANE_RT_NONE;
    bool ok = dane_ssl_check(&s->dane, ssl, match, sizeof match, why, sizeof why, &rt);
    if (ok)
        log_info(out_msg_id(s), "tls", "peer=%s tls=dane-verified policy=%s match=\"%s\" cipher=\"%s\"", s->peer,
                 tls_level_name(s->tls_level), match, s->tls_info);
    else
        dane_failed(s, "failed", rt, why);
    if (ok) {
        dane_count("verified");
        dane_report(s, TLSRPT_SUCCESS, NULL);
    }
    if (!ok) smtp_client_tls_failed(s->cs, why);
    return ok;
}

/* dane_note_failed - a session failed: when DANE made TLS mandatory and STARTTLS was missing (4.7.4), say so. */
static void dane_note_failed(smtp_out *s, const char *status)
{
    enum tls_level l = conn_level(s);
    if (!dane_wanted(s) || (l != TLS_LEVEL_DANE && l != TLS_LEVEL_ENCRYPT) || strcmp(status, "4.7.4") != 0) return;
    dane_failed(s, "none", DANE_RT_STARTTLS_NOT_SUPPORTED, "STARTTLS not offered");
}

/* tls_log_clear - the connection is established without TLS: say so and why. */
static void tls_log_clear(smtp_out *s)
{
    const char *why = s->tls_level == TLS_LEVEL_NONE ? "policy" : !s->tls_ctx ? "no client context"
                      : s->tls_refused                ? "refused" : "not offered";
    char sts[160] = "";
    if (s->sts) sts_out_clear_note(s->sts, out_msg_id(s), s->peer_name, s->peer_ip, s->bev, sts, sizeof sts);
    log_info(out_msg_id(s), "tls", "peer=%s tls=none policy=%s reason=\"%s\"%s", s->peer, tls_level_name(s->tls_level),
             why, sts);
}

/* tls_check - the handshake is done: whether the certificate satisfies the level; logs the outcome. */
static bool tls_check(smtp_out *s, SSL *ssl)
{
    tls_describe(ssl, s->tls_info, sizeof s->tls_info);
    if (conn_level(s) == TLS_LEVEL_DANE) return tls_check_dane(s, ssl);
    char sts[400] = "";
    /* where an MTA-STS policy applies (enforce or testing) sts_out counts the session under it, once */
    bool by_sts = s->sts && sts_out_reports(s->sts, s->peer_name);
    if (s->sts) sts_out_tls_note(s->sts, out_msg_id(s), ssl, s->peer_name, s->peer_ip, s->bev, sts, sizeof sts);
    if (s->tls_level != TLS_LEVEL_VERIFY && s->tls_level != TLS_LEVEL_STS) {
        log_info(out_msg_id(s), "tls", "peer=%s tls=encrypted policy=%s cipher=\"%s\"%s", s->peer,
                 tls_level_name(s->tls_level), s->tls_info, sts);
        if (!by_sts) tlsrpt_out_session(s->host, s->peer_name, s->peer_ip, s->bev, NULL, NULL);
        return true;
    }
    /* verify: the match= names, else the MX host; sts (RFC 8461 §4.2): always the MX host */
    const strvec *m = s->tls_level == TLS_LEVEL_VERIFY && s->tls_pol ? &s->tls_pol->match : NULL;
    const char *mx[1] = {s->peer_name};
    char why[256];
    bool ok = m && m->n ? tls_client_verify(ssl, (const char *const *)m->v, m->n, why, sizeof why)
                        : tls_client_verify(ssl, mx, 1, why, sizeof why);
    const char *level = tls_level_name(s->tls_level);
    if (ok)
        log_info(out_msg_id(s), "tls", "peer=%s tls=verified policy=%s cipher=\"%s\"%s", s->peer, level, s->tls_info,
                 sts);
    else
        log_info(out_msg_id(s), "tls_failed", "peer=%s tls=failed policy=%s reason=\"%s\"%s", s->peer, level, why, sts);
    if (!by_sts) tlsrpt_out_session(s->host, s->peer_name, s->peer_ip, s->bev, ok ? NULL : ssl, why);
    if (!ok) smtp_client_tls_failed(s->cs, why);
    return ok;
}

/* tls_begin - 220 to STARTTLS: whatever the server sent after it is dropped, the handshake starts. */
static void tls_begin(smtp_out *s)
{
    if (!s->tls_ctx) { /* musttls without a client context: never in clear text */
        smtp_client_tls_failed(s->cs, "no TLS client context");
        return;
    }
    struct evbuffer *in = bufferevent_get_input(s->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    SSL *ssl = SSL_new(s->tls_ctx);
    if (!ssl) abort();
    tls_client_sni(ssl, s->peer_name);
    if (!tls_dane_prepare(s, ssl)) {
        SSL_free(ssl);
        return;
    }
    struct bufferevent *tb =
        bufferevent_openssl_filter_new(s->base, s->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    s->bev = tb;
    s->st = OS_TLS_HANDSHAKE;
    bufferevent_setcb(s->bev, conn_on_read, conn_on_write, conn_on_event, s);
    conn_timeouts(s, cmd_timeout(s));
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* loop_check - the next hop announces our own XLOOP token: bounce now instead of looping. */
static bool loop_check(smtp_out *s)
{
    const char *xloop = smtp_client_caps(s->cs)->xloop;
    if (!s->ch->loopcheck || !s->self_token || !xloop[0] || strcmp(xloop, s->self_token)) return false;
    char *diag = xasprintf("smtp; mail loop: %s is this installation (XLOOP)", s->peer);
    log_info(out_msg_id(s), "loop_detected", "peer=%s how=xloop", s->peer);
    rcpts_fail_open(s, SL_PERM, "5.4.6", diag, s->peer);
    free(diag);
    conn_close(s, true);
    item_finish(s);
    return true;
}

/* txn_start - a transaction for the open recipients on the established session. */
static void txn_start(smtp_out *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->item->n; i++) {
        if (s->rst[i] != RS_OPEN) continue;
        s->txn_rcpts[n] = out_rcpt(s, i);
        s->txn_map[n++] = i;
    }
    conn_timeouts(s, cmd_timeout(s));
    s->msgs_on_conn++;
    smtp_client_send(s->cs, s->item->msg, s->txn_rcpts, n);
}

/* on_ready - the session is established: check for a loop, then the transaction. */
static void on_ready(smtp_out *s)
{
    s->msgs_on_conn = 0;
    if (!smtp_client_tls_active(s->cs)) tls_log_clear(s);
    if (!loop_check(s)) txn_start(s);
}

/* on_sent - the message went to the engine's output: while it drains only the write timeout runs. */
static void on_sent(smtp_out *s)
{
    if (out_flush(s)) { /* all in the kernel already: the reply is what we wait for */
        conn_timeouts(s, cmd_timeout(s));
        return;
    }
    s->body_out = true;
    struct timeval tv = {(time_t)copt(s->ch->copts.data_timeout, s->conf->opt.command_timeout, 600), 0};
    bufferevent_set_timeouts(s->bev, NULL, &tv);
}

/* on_rcpt - the engine's final result for transaction recipient k. */
static void on_rcpt(smtp_out *s, size_t k)
{
    const smtp_client_result *r = smtp_client_result_of(s->cs, k);
    size_t i = s->txn_map[k];
    deliv_result *res = &s->item->results[i];
    deliv_result_set(res, r->res, r->status, r->diag, s->peer);
    if (r->res == SL_OK && !smtp_client_caps(s->cs)->dsn && !is_lmtp(s) && (out_rcpt(s, i)->notify & DSN_NOTIFY_SUCCESS))
        res->relayed = true; /* the next hop cannot report success: we do */
    /* a temporary failure before the content went out may go elsewhere; after it, it may have arrived */
    s->rst[i] = r->res == SL_TEMP && !r->uncertain ? RS_OPEN : RS_DONE;
}

/*
 * on_done - the transaction is over and the session usable. Recipients the server answered
 * with 4xx (to RCPT, MAIL, DATA or the content) try the next address now, as RFC 5321 5.1
 * asks ("until a delivery attempt succeeds"): the hosts of one domain often fail independently
 * (seed 002: a soft-failing MX whose lookups are down). Delivered and 5xx recipients stay.
 */
static void on_done(smtp_out *s)
{
    mem_ok(s);
    if (!rcpts_open(s)) {
        bufferevent_enable(s->bev, EV_READ); /* notice a peer that closes the idle connection */
        item_finish(s);
        return;
    }
    for (size_t i = 0; i < s->item->n; i++) {
        if (s->rst[i] != RS_OPEN) continue;
        const deliv_result *r = &s->item->results[i];
        char *reply = log_value(r->diag);
        log_info(out_msg_id(s), "next_host", "rcpt=<%s> relay=%s status=%s reply=\"%s\"", out_rcpt(s, i)->addr,
                 s->peer, r->status, reply);
        free(reply);
    }
    conn_next(s, true);
}

/* on_failed - the session ended: idle, it is closed; during an item, its open recipients move on.
 * An item whose results are all set may still wait for its callback: the connection is idle. */
static void on_failed(smtp_out *s)
{
    const smtp_client_failure *f = smtp_client_failure_of(s->cs);
    if (!item_active(s)) {
        conn_close(s, false);
        return;
    }
    char *reply = log_value(f->diag);
    log_info(out_msg_id(s), "session_failed", "host=%s addr=%s status=%s reply=\"%s\"", s->peer_name, s->peer_ip,
             f->status, reply);
    free(reply);
    dane_note_failed(s, f->status);
    bool not_offered = !strcmp(f->status, "4.7.4"); /* TLS required, STARTTLS not offered */
    /* TLS required and STARTTLS answered with a refusal: the session ended there (RFC 8460 counts it alike) */
    bool refused = s->tls_refused && conn_level(s) != TLS_LEVEL_MAY && conn_level(s) != TLS_LEVEL_NONE;
    if (not_offered || refused) {
        if (s->sts && sts_out_reports(s->sts, s->peer_name))
            sts_out_failed(s->sts, out_msg_id(s), s->peer_name, s->peer_ip, s->bev, STS_FAIL_STARTTLS, f->diag);
        else if (not_offered && !dane_wanted(s))
            tlsrpt_out_failure(s->host, s->peer_name, s->peer_ip, s->bev, TLSRPT_STARTTLS_NOT_SUPPORTED, NULL);
    }
    mem_failed(s);
    fail_set(s, SL_TEMP, f->status, f->diag, s->peer);
    conn_next(s, false);
}

/* on_event - act on one event of the engine. */
static void on_event(smtp_out *s, const smtp_client_event *ev)
{
    switch (ev->type) {
    case SMTP_CEV_STARTTLS: tls_begin(s); break;
    case SMTP_CEV_TLS_REFUSED:
        log_info(out_msg_id(s), "tls_refused", "peer=%s code=%d", s->peer, ev->code);
        s->tls_refused = ev->code;
        break;
    case SMTP_CEV_READY: on_ready(s); break;
    case SMTP_CEV_SENT: on_sent(s); break;
    case SMTP_CEV_RCPT: on_rcpt(s, ev->index); break;
    case SMTP_CEV_DONE: on_done(s); break;
    case SMTP_CEV_FAILED: on_failed(s); break;
    }
}

/* cs_pump - write what the engine emitted and act on its events until none is left or the connection is gone. */
static void cs_pump(smtp_out *s)
{
    unsigned gen = s->gen;
    smtp_client_event ev;
    out_flush(s);
    while (s->gen == gen && s->cs && smtp_client_next_event(s->cs, &ev)) {
        on_event(s, &ev);
        if (s->gen == gen) out_flush(s);
    }
}

/* ---- socket callbacks ---------------------------------------------------------------- */

/* conn_on_read - everything that arrived goes to the engine. */
static void conn_on_read(struct bufferevent *bev, void *arg)
{
    smtp_out *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    if (s->cs && n) smtp_client_feed(s->cs, (const char *)evbuffer_pullup(in, -1), n);
    evbuffer_drain(in, n);
    cs_pump(s);
}

/* conn_on_write - the output buffer drained: after the message, wait for the reply. */
static void conn_on_write(struct bufferevent *bev, void *arg)
{
    smtp_out *s = arg;
    (void)bev;
    if (!s->body_out) return;
    s->body_out = false;
    conn_timeouts(s, cmd_timeout(s));
}

/* tls_bev_error - OpenSSL's reason for the failure on bev (the filter keeps its errors itself). */
static void tls_bev_error(struct bufferevent *bev, char *buf, size_t len)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    if (!e) {
        tls_last_error(buf, len);
        return;
    }
    ERR_error_string_n(e, buf, len);
    while (bufferevent_get_openssl_error(bev)) continue; /* the rest say the same, less precisely */
}

/* tls_handshake_failed - the handshake failed: logged and counted once, under the policy the
 * connection applied (tlsa for a host DANE authenticates, sts where an MTA-STS policy applies,
 * else no-policy-found; RFC 8460 4.3 validation-failure). */
static void tls_handshake_failed(smtp_out *s, const char *err)
{
    if (conn_level(s) == TLS_LEVEL_DANE) {
        dane_failed(s, "failed", DANE_RT_VALIDATION_FAILURE, err);
        return;
    }
    log_info(out_msg_id(s), "tls_failed", "peer=%s tls=failed policy=%s error=\"%s\"", s->peer,
             tls_level_name(s->tls_level), err);
    if (s->sts && sts_out_reports(s->sts, s->peer_name))
        sts_out_failed(s->sts, out_msg_id(s), s->peer_name, s->peer_ip, s->bev, STS_FAIL_HANDSHAKE, err);
    else
        tlsrpt_out_failure(s->host, s->peer_name, s->peer_ip, s->bev, TLSRPT_VALIDATION_FAILURE, err);
}

/* conn_on_handshake - the TLS handshake finished or failed. */
static void conn_on_handshake(smtp_out *s, struct bufferevent *bev, short what)
{
    if (what & BEV_EVENT_CONNECTED) {
        s->st = OS_SESSION;
        if (tls_check(s, bufferevent_openssl_get_ssl(bev))) smtp_client_tls_started(s->cs);
    } else {
        char err[256];
        tls_bev_error(bev, err, sizeof err);
        tls_handshake_failed(s, err);
        smtp_client_tls_failed(s->cs, err);
    }
    cs_pump(s);
}

/* conn_on_connect - the TCP connect finished or failed. */
static void conn_on_connect(smtp_out *s, short what)
{
    if (what & BEV_EVENT_CONNECTED) {
        s->st = OS_SESSION;
        conn_timeouts(s, s->conf->opt.command_timeout);
        bufferevent_enable(s->bev, EV_READ | EV_WRITE);
        smtp_client_connected(s->cs);
        return;
    }
    conn_connect_failed(s, (what & BEV_EVENT_TIMEOUT) ? 0 : (errno ? errno : ECONNREFUSED));
}

/* conn_on_event - connected, EOF, error or timeout on the connection. */
static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    smtp_out *s = arg;
    if (s->in_connect) { /* reported from inside bufferevent_socket_connect: handled there */
        s->sync_what = what;
        s->sync_errno = errno;
        return;
    }
    if (s->st == OS_CONNECTING) {
        conn_on_connect(s, what);
        return;
    }
    if (s->st == OS_TLS_HANDSHAKE) {
        conn_on_handshake(s, bev, what);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        smtp_client_timeout(s->cs);
    } else if (what & BEV_EVENT_EOF) {
        smtp_client_closed(s->cs, "lost connection");
    } else if (what & BEV_EVENT_ERROR) {
        char *w = xasprintf("lost connection (%s)", strerror(errno));
        smtp_client_closed(s->cs, w);
        free(w);
    }
    cs_pump(s);
}

/* ---- connecting ---------------------------------------------------------------------- */

/* conn_peer - set peer_ip and peer ("name [ip]") for sa, with the channel's port set in it. */
static socklen_t conn_peer(smtp_out *s, struct sockaddr_storage *sa)
{
    unsigned port = s->ch->port ? s->ch->port : 25;
    socklen_t len;
    if (sa->ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)sa;
        sin->sin_port = htons((uint16_t)port);
        inet_ntop(AF_INET, &sin->sin_addr, s->peer_ip, sizeof s->peer_ip);
        len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;
        sin6->sin6_port = htons((uint16_t)port);
        inet_ntop(AF_INET6, &sin6->sin6_addr, s->peer_ip, sizeof s->peer_ip);
        len = sizeof *sin6;
    }
    free(s->peer);
    if (s->peer_name[0] == '[' || strcmp(s->peer_name, s->peer_ip) == 0) /* an IP literal names itself */
        s->peer = xasprintf("[%s]", s->peer_ip);
    else
        s->peer = xasprintf("%s [%s]", s->peer_name, s->peer_ip);
    return len;
}

/* conn_source - a socket bound to the channel's interfaceaddress for family, or -1 (the kernel chooses). */
static evutil_socket_t conn_source(smtp_out *s, int family)
{
    const char *ip = s->ch->interface_address;
    struct sockaddr_storage src;
    memset(&src, 0, sizeof src);
    socklen_t slen = 0;
    if (!ip) return -1;
    if (family == AF_INET && inet_pton(AF_INET, ip, &((struct sockaddr_in *)&src)->sin_addr) == 1)
        slen = sizeof(struct sockaddr_in);
    else if (family == AF_INET6 && inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&src)->sin6_addr) == 1)
        slen = sizeof(struct sockaddr_in6);
    if (!slen) return -1;
    src.ss_family = (sa_family_t)family;
    evutil_socket_t fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&src, slen) < 0) {
        log_info(out_msg_id(s), "bind_failed", "address=%s error=\"%s\"", ip, strerror(errno));
        close(fd);
        fd = -1;
    }
    return fd;
}

/* conn_engine - a protocol engine for the connection to peer. */
static smtp_client *conn_engine(smtp_out *s)
{
    const char *me = s->conf->opt.hostname && *s->conf->opt.hostname ? s->conf->opt.hostname : "localhost";
    enum tls_level level = conn_level(s);
    enum smtp_client_tls tls = level == TLS_LEVEL_NONE                                  ? SMTP_CLIENT_TLS_NEVER
                               : level != TLS_LEVEL_MAY                                 ? SMTP_CLIENT_TLS_MUST
                               : !s->tls_ctx                                            ? SMTP_CLIENT_TLS_NEVER
                                                                                        : SMTP_CLIENT_TLS_MAY;
    s->tls_refused = 0;
    smtp_client_params p = {.lmtp = is_lmtp(s), .helo_name = me, .peer = s->peer, .tls = tls,
                            .chunking = s->ch->chunking, .fileinto = s->ch->fileinto, .out = out_emit, .out_ctx = s};
    return smtp_client_new(&p);
}

/* conn_open - start connecting to addr; false if that failed at once (then already logged). */
static bool conn_open(smtp_out *s, const struct sockaddr_storage *addr)
{
    struct sockaddr_storage sa = *addr;
    socklen_t len = conn_peer(s, &sa);
    s->bev = bufferevent_socket_new(s->base, conn_source(s, sa.ss_family), BEV_OPT_CLOSE_ON_FREE);
    if (!s->bev) abort();
    s->cs = conn_engine(s);
    bufferevent_setcb(s->bev, conn_on_read, conn_on_write, conn_on_event, s);
    conn_timeouts(s, copt(s->ch->copts.connect_timeout, s->conf->opt.connect_timeout, 30));
    s->st = OS_CONNECTING;
    s->n_attempted++;
    s->in_connect = true;
    s->sync_what = 0;
    errno = 0;
    int rc = bufferevent_socket_connect(s->bev, (struct sockaddr *)&sa, (int)len);
    int err = errno;
    s->in_connect = false;
    if (rc == 0 && !(s->sync_what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT))) return true;
    if (s->sync_what) err = s->sync_errno;
    log_info(out_msg_id(s), "connect_failed", "host=%s addr=%s port=%u error=\"%s\"", s->peer_name, s->peer_ip,
             s->ch->port ? s->ch->port : 25, strerror(err ? err : ECONNREFUSED));
    mem_failed(s);
    fail_set_conn(s, "4.4.1", strerror(err ? err : ECONNREFUSED));
    conn_close(s, false);
    return false;
}

/* ---- destinations -------------------------------------------------------------------- */

/* dest_finish_all_failed - no destination took the open recipients: each gets the last failure. */
static void dest_finish_all_failed(smtp_out *s)
{
    if (s->saw_self && s->fail_res != SL_PERM && !s->n_attempted) {
        char *diag = xasprintf("x-sluice; mail loop: the MX hosts of %s point back to this server", s->host);
        log_info(out_msg_id(s), "loop_detected", "host=%s how=self_mx", s->host);
        fail_set(s, SL_PERM, "5.4.6", diag, NULL);
        free(diag);
    }
    for (size_t i = 0; i < s->item->n; i++) /* a reply from the last host tried stands */
        if (s->rst[i] == RS_OPEN && s->item->results[i].status[0] && s->fail_res != SL_PERM) s->rst[i] = RS_DONE;
    rcpts_fail_open(s, s->fail_res, s->fail_status, s->fail_diag, s->fail_mta);
    item_finish(s);
}

/* dest_on_addr - addresses of names[next_name - 1] arrived. */
static void dest_on_addr(void *arg, sl_result res, const struct sockaddr_storage *addrs, size_t n, const char *errmsg)
{
    smtp_out *s = arg;
    const char *name = s->peer_name;
    free(s->addrs);
    s->addrs = NULL;
    s->n_addrs = s->next_addr = 0;
    if (res == SL_OK && n > 0) {
        s->addrs = xcalloc(n, sizeof *addrs);
        memcpy(s->addrs, addrs, n * sizeof *addrs);
        s->n_addrs = n;
    } else {
        char *diag = xasprintf("dns; %s: %s", name, res == SL_OK ? "no address records" : errmsg);
        if (s->direct && res == SL_PERM)
            fail_set(s, SL_PERM, "5.1.2", diag, NULL);
        else if (s->direct && res == SL_OK)
            fail_set(s, SL_PERM, "5.4.4", diag, NULL);
        else
            fail_set(s, SL_TEMP, "4.4.3", diag, NULL);
        log_info(out_msg_id(s), "dns_failed", "host=%s error=\"%s\"", name, res == SL_OK ? "no address records" : errmsg);
        free(diag);
        mem_failed(s);
    }
    s->st = OS_CLOSED;
    dest_try_next(s);
}

/* addr_is_self - whether addr (with the channel's port) is one of our own listening sockets. */
static bool addr_is_self(const smtp_out *s, const struct sockaddr_storage *a)
{
    unsigned port = s->ch->port ? s->ch->port : 25;
    for (size_t i = 0; i < s->n_self; i++) {
        const struct sockaddr_storage *m = &s->self_addrs[i];
        if (m->ss_family != a->ss_family) continue;
        if (m->ss_family == AF_INET) {
            const struct sockaddr_in *x = (const void *)m, *y = (const void *)a;
            if (ntohs(x->sin_port) != port) continue;
            bool any = x->sin_addr.s_addr == htonl(INADDR_ANY);
            bool loop = (ntohl(y->sin_addr.s_addr) >> 24) == 127;
            if (x->sin_addr.s_addr == y->sin_addr.s_addr || (any && loop)) return true;
        } else {
            const struct sockaddr_in6 *x = (const void *)m, *y = (const void *)a;
            if (ntohs(x->sin6_port) != port) continue;
            bool any = IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr);
            if (!memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) ||
                (any && IN6_IS_ADDR_LOOPBACK(&y->sin6_addr)))
                return true;
        }
    }
    return false;
}

/* dest_sts_skip - pass over the next names an enforced MTA-STS policy does not allow (logged); with
 * nothing tried yet, the attempt's failure says why (4.7.5: deferred, never another host). */
static void dest_sts_skip(smtp_out *s)
{
    while (s->sts && s->next_name < s->names.n && !sts_out_mx_allowed(s->sts, out_msg_id(s), s->names.v[s->next_name])) {
        if (!s->n_attempted) {
            char *diag = xasprintf("%s: not allowed by the MTA-STS policy of %s", s->names.v[s->next_name], s->host);
            fail_set(s, SL_TEMP, "4.7.5", diag, NULL);
            free(diag);
        }
        s->next_name++;
    }
}

/* dest_try_next - connect to the next address, resolving the next name when needed. */
static void dest_try_next(smtp_out *s)
{
    while (s->next_addr < s->n_addrs) {
        const struct sockaddr_storage *a = &s->addrs[s->next_addr++];
        if (!s->ch->allow_self_mx && !s->direct_daemon && addr_is_self(s, a)) {
            s->saw_self = true; /* never connect to ourselves: that is a mail loop */
            log_info(out_msg_id(s), "self_destination_skipped", "host=%s", s->peer_name ? s->peer_name : "");
            continue;
        }
        if (conn_open(s, a)) return;
    }
    dest_sts_skip(s);
    if (s->next_name >= s->names.n && s->ch->lastresort && !s->tried_lastresort && s->fail_res != SL_PERM) {
        /* every MX failed temporarily: the last-resort host gets a try */
        s->tried_lastresort = true;
        sv_push(&s->names, s->ch->lastresort);
        log_info(out_msg_id(s), "lastresort", "host=%s", s->ch->lastresort);
        dest_sts_skip(s);
    }
    if (s->next_name < s->names.n) {
        free(s->peer_name);
        s->peer_name = xstrdup(s->names.v[s->next_name++]);
        s->st = OS_RESOLVING;
        dest_resolve(s);
        return;
    }
    dest_finish_all_failed(s);
}

/* dest_mx_names - the names of an MX answer, in order; false (item finished) for a null MX. */
static bool dest_mx_names(smtp_out *s, const dns_mx *mx, size_t n)
{
    bool null_mx = false;
    for (size_t i = 0; i < n; i++) {
        if (mx[i].host[0])
            sv_push(&s->names, mx[i].host);
        else
            null_mx = true;
    }
    if (s->names.n == 0 && null_mx) {
        char *diag = xasprintf("dns; %s does not accept mail (null MX)", s->host);
        rcpts_fail_open(s, SL_PERM, "5.1.10", diag, NULL);
        free(diag);
        item_finish(s);
        return false;
    }
    if (s->names.n == 0) { /* no MX: the host's own addresses */
        sv_push(&s->names, s->host);
        s->direct = true;
    }
    return true;
}

/* dest_on_mx - the MX answer for the routing host. */
static void dest_on_mx(void *arg, sl_result res, const dns_mx *mx, size_t n, const char *errmsg)
{
    smtp_out *s = arg;
    s->st = OS_CLOSED;
    if (res != SL_OK) {
        char *diag = xasprintf("dns; %s: MX lookup: %s", s->host, errmsg);
        log_info(out_msg_id(s), "dns_failed", "host=%s type=MX error=\"%s\"", s->host, errmsg);
        rcpts_fail_open(s, res == SL_PERM ? SL_PERM : SL_TEMP, res == SL_PERM ? "5.1.2" : "4.4.3", diag, NULL);
        free(diag);
        item_finish(s);
        return;
    }
    if (s->mem && s->conf->shaping && s->conf->shaping->has_mx) /* traffic shaping groups domains by MX provider */
        hostmem_mx_learn(s->mem, s->host, mx, n, now_unix());
    dns_mx *order = mem_order(s, mx, n);
    bool go = dest_mx_names(s, order, n);
    free(order);
    s->from_mx = s->names.n && !s->direct;
    s->n_mx_names = s->from_mx ? s->names.n : 0;
    if (go) dest_try_next(s);
}

/* dest_on_sts - the destination's MTA-STS policy is known: its TLS level, then the MX lookup. */
static void dest_on_sts(void *arg)
{
    smtp_out *s = arg;
    s->tls_level = sts_out_level(s->sts, tls_level_of(s));
    /* DANE wins where both exist (RFC 8461 2): an enforced policy's MX hosts are also looked for
     * secure TLSA records; unless the levels dane/dane-only already do */
    s->sts_dane = s->tls_level == TLS_LEVEL_STS;
    dest_lookup_mx(s);
}

/* dest_start - find the destinations afresh and start trying them. */
static void dest_start(smtp_out *s)
{
    sv_free(&s->names);
    s->next_name = 0;
    s->from_mx = false;
    free(s->addrs);
    s->addrs = NULL;
    s->n_addrs = s->next_addr = 0;
    s->direct = false;
    s->saw_self = false;
    s->direct_daemon = false;
    s->tried_lastresort = false;
    s->n_attempted = 0;
    s->mx_secure = false;
    s->n_mx_names = 0;
    s->sts_dane = false;
    dane_host_clear(&s->dane);
    fail_set(s, SL_TEMP, "4.4.1", "no destination could be reached", NULL);
    if (s->ch->daemon && *s->ch->daemon) {
        /* a smart host named in the configuration is trusted even when it is local (e.g. a
           two-tier set-up on one machine); XLOOP still catches a real loop */
        s->direct_daemon = true;
        sv_push(&s->names, s->ch->daemon);
    } else if (s->ch->mx && s->host[0] != '[') {
        s->st = OS_RESOLVING;
        if (s->sts) { /* MTA-STS: the policy first (cached: one TXT query), then the MX hosts */
            sts_out_begin(s->sts, out_msg_id(s), dest_on_sts, s);
            return;
        }
        dest_lookup_mx(s);
        return;
    } else {
        sv_push(&s->names, s->host);
        s->direct = true;
    }
    dest_try_next(s);
}

/* ---- item completion ----------------------------------------------------------------- */

/* item_log - one "delivery" line per recipient. */
static void item_log(const smtp_out *s)
{
    static const char *names[] = {"sent", "deferred", "bounced", "error"};
    for (size_t i = 0; i < s->item->n; i++) {
        const deliv_result *r = &s->item->results[i];
        char *reply = log_value(r->diag);
        log_info(s->item->msg->id, "delivery", "rcpt=<%s> relay=%s reply=\"%s\" status=%s result=%s%s",
                 out_rcpt(s, i)->addr, r->remote_mta ? r->remote_mta : "none", reply, r->status,
                 names[r->result], r->relayed ? " relayed=yes" : "");
        free(reply);
    }
}

/* item_on_done - deferred completion: hand the item back to the caller. */
static void item_on_done(evutil_socket_t fd, short what, void *arg)
{
    smtp_out *s = arg;
    (void)fd;
    (void)what;
    deliv_item *item = s->item;
    smtp_out_done_cb cb = s->cb;
    void *cb_arg = s->arg;
    s->item = NULL;
    s->cb = NULL;
    s->arg = NULL;
    cb(cb_arg, item);
}

/* item_finish - every result is set: log and schedule the callback. */
static void item_finish(smtp_out *s)
{
    static const struct timeval zero = {0, 0};
    for (size_t i = 0; i < s->item->n; i++) /* an impossible leftover must not pass as delivered */
        if (!s->item->results[i].status[0])
            deliv_result_set(&s->item->results[i], SL_TEMP, "4.3.0", "smtp; internal error: no result for recipient",
                             NULL);
    item_log(s);
    mem_attempt_end(s);
    free(s->rst);
    free(s->txn_rcpts);
    free(s->txn_map);
    s->rst = NULL;
    s->txn_rcpts = NULL;
    s->txn_map = NULL;
    evtimer_add(s->ev_done, &zero);
}

/* ---- public -------------------------------------------------------------------------- */

smtp_out *smtp_out_new(struct event_base *base, dns_ctx *dns, const sl_conf *conf, const sl_channel *ch,
                       const char *host)
{
    smtp_out *s = xcalloc(1, sizeof *s);
    s->base = base;
    s->dns = dns;
    s->conf = conf;
    s->ch = ch;
    s->host = xstrdup(host);
    s->dest_key = xasprintf("%s %s", ch->name, host);
    s->tls_pol = tls_policy_lookup(conf->tls_policy, host);
    s->tls_level = tls_level_of(s);
    s->wbuf = evbuffer_new();
    s->ev_done = evtimer_new(base, item_on_done, s);
    if (!s->ev_done || !s->wbuf) abort();
    return s;
}

void smtp_out_deliver(smtp_out *s, deliv_item *item, smtp_out_done_cb cb, void *arg)
{
    if (s->item) abort(); /* one item at a time */
    s->item = item;
    s->cb = cb;
    s->arg = arg;
    size_t n = item->n ? item->n : 1;
    s->rst = xcalloc(n, 1);
    s->txn_rcpts = xcalloc(n, sizeof *s->txn_rcpts);
    s->txn_map = xcalloc(n, sizeof *s->txn_map);
    if (item->n == 0) {
        item_finish(s);
        return;
    }
    if (s->cs && s->bev && smtp_client_idle(s->cs)) {
        s->reused = true;
        txn_start(s);
        cs_pump(s);
        return;
    }
    s->reused = false;
    conn_close(s, true);
    dest_start(s);
}

bool smtp_out_reusable(const smtp_out *s)
{
    unsigned max = s->ch->copts.max_messages ? s->ch->copts.max_messages : 100;
    return s->cs && smtp_client_idle(s->cs) && s->bev && !s->item && s->msgs_on_conn < max;
}

void smtp_out_set_tls(smtp_out *s, struct ssl_ctx_st *ctx)
{
    /* a reload may replace the daemon's context while this session waits: it keeps a reference */
    if (ctx) SSL_CTX_up_ref(ctx);
    SSL_CTX_free(s->tls_ctx);
    s->tls_ctx = ctx;
}

void smtp_out_set_memory(smtp_out *s, hostmem *mem)
{
    s->mem = mem;
}

void smtp_out_set_sts(smtp_out *s, sts_ctx *ctx)
{
    sts_out_free(s->sts);
    s->sts = sts_out_new(ctx, s->conf, s->ch, s->host, s->tls_pol);
}

void smtp_out_set_self(smtp_out *s, const char *token, const struct sockaddr_storage *addrs, size_t n)
{
    free(s->self_token);
    free(s->self_addrs);
    s->self_token = xstrdup(token);
    s->self_addrs = n ? xcalloc(n, sizeof *addrs) : NULL;
    if (n) memcpy(s->self_addrs, addrs, n * sizeof *addrs);
    s->n_self = n;
}

void smtp_out_free(smtp_out *s)
{
    if (!s) return;
    if (s->item) abort(); /* contract: not while an item is in progress */
    conn_close(s, true);
    evbuffer_free(s->wbuf);
    event_free(s->ev_done);
    sv_free(&s->names);
    free(s->addrs);
    free(s->peer_name);
    free(s->peer);
    free(s->fail_diag);
    free(s->fail_mta);
    free(s->host);
    free(s->dest_key);
    free(s->first_failed);
    free(s->self_token);
    free(s->self_addrs);
    dane_host_clear(&s->dane);
    sts_out_free(s->sts);
    SSL_CTX_free(s->tls_ctx);
    free(s);
}
