/*
 * dns.c - c-ares on the libevent loop (see dns.h).
 *
 * c-ares tells us through its socket-state callback which sockets it wants watched; each gets
 * one persistent struct event, and one timer follows ares_timeout(). Every lookup is a
 * dns_req on the context's list until its callback has run. Answers are delivered from the
 * c-ares callback (already on the loop) or, when they are known before any I/O (IP literals,
 * a query that c-ares fails at once), from a zero timeout, so a callback never runs inside
 * dns_lookup_*.
 *
 * Lifetime: the caller's arg must stay valid until its callback has run; dns_free runs every
 * pending callback (SL_TEMP "cancelled") before it returns. Do not call dns_free from inside a
 * dns callback.
 */
#include "dns/dns.h"
#include "dns/dns_int.h"
#include "dns/dnssec.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define DNS_TIMEOUT_MS 2000
#define DNS_TRIES 2
#define DNS_MAX_ADDRS 64

typedef struct {
    ares_socket_t fd;
    struct event *ev;
} dns_sock;

enum dns_kind { DNS_REQ_MX, DNS_REQ_ADDR, DNS_REQ_TXT, DNS_REQ_PTR };

/* One outstanding part of a request: its answer. */
typedef struct {
    sl_result res;
    char err[96];
    struct sockaddr_storage *addrs;
    size_t n;
} dns_part;

typedef struct dns_req {
    dns_ctx *d;
    struct dns_req *prev, *next;
    enum dns_kind kind;
    char *name;
    dns_mx_cb mx_cb;
    dns_addr_cb addr_cb;
    dns_strs_cb strs_cb;
    void *arg;
    int outstanding;     /* ares queries not yet answered */
    bool in_call;        /* inside dns_lookup_*: the answer must be deferred */
    struct event *defer; /* zero timeout delivering a known answer */
    /* answers */
    sl_result mx_res;
    char mx_err[96];
    dns_mx *mx;
    size_t n_mx;
    dns_part part[2];    /* A, AAAA */
    sl_result s_res;     /* TXT, PTR */
    char s_err[96];
    strvec strs;
} dns_req;

struct dns_ctx {
    struct event_base *base;
    ares_channel ch;
    struct event *timer;
    dns_sock *socks;
    size_t n_socks;
    dns_req *reqs;
    bool freeing;
    bool ad_trusted;     /* every server is on loopback: the AD bit may be believed (dnssec.h) */
    dns_ext *ext;        /* requests of dnssec.c, cancelled by dns_free */
};

static void dns_timer_update(dns_ctx *d);

/* dns_rand - uniform random for shuffling equal MX preferences. */
static uint32_t dns_rand(void *ctx, uint32_t bound)
{
    (void)ctx;
    return arc4random_uniform(bound);
}

/* dns_on_sock - a watched socket is ready: let c-ares read or write it. */
static void dns_on_sock(evutil_socket_t fd, short what, void *arg)
{
    dns_ctx *d = arg;
    ares_process_fd(d->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD, (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    dns_timer_update(d);
}

/* dns_on_timer - c-ares' next timeout has come. */
static void dns_on_timer(evutil_socket_t fd, short what, void *arg)
{
    dns_ctx *d = arg;
    (void)fd;
    (void)what;
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_timer_update(d);
}

/* dns_timer_update - arm the timer for c-ares' next timeout, or disarm it when idle. */
static void dns_timer_update(dns_ctx *d)
{
    struct timeval tv, *t = ares_timeout(d->ch, NULL, &tv);
    if (t)
        evtimer_add(d->timer, t);
    else
        evtimer_del(d->timer);
}

/* dns_sock_state - c-ares' socket-state callback: watch, re-watch or forget fd. */
static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    dns_ctx *d = data;
    size_t i = 0;
    while (i < d->n_socks && d->socks[i].fd != fd) i++;
    if (i < d->n_socks) {
        event_free(d->socks[i].ev);
        d->socks[i] = d->socks[--d->n_socks];
    }
    if (!readable && !writable) return;
    short what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
    d->socks = xrealloc(d->socks, (d->n_socks + 1) * sizeof *d->socks);
    d->socks[d->n_socks].fd = fd;
    d->socks[d->n_socks].ev = event_new(d->base, fd, what, dns_on_sock, d);
    if (!d->socks[d->n_socks].ev) abort();
    event_add(d->socks[d->n_socks].ev, NULL);
    d->n_socks++;
}

/* servers_all_loopback - whether every server c-ares was given is 127.0.0.0/8 or ::1. */
static bool servers_all_loopback(ares_channel ch)
{
    struct ares_addr_port_node *list = NULL;
    if (ares_get_servers_ports(ch, &list) != ARES_SUCCESS || !list) return false;
    bool all = true;
    for (const struct ares_addr_port_node *n = list; n && all; n = n->next) {
        if (n->family == AF_INET)
            all = (ntohl(n->addr.addr4.s_addr) >> 24) == 127;
        else
            all = n->family == AF_INET6 && IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)&n->addr.addr6);
    }
    ares_free_data(list);
    return all;
}

dns_ctx *dns_new(struct event_base *base, const strvec *servers, char *err, size_t errlen)
{
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares init: %s", ares_strerror(rc));
        return NULL;
    }
    dns_ctx *d = xcalloc(1, sizeof *d);
    d->base = base;
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.sock_state_cb = dns_sock_state;
    o.sock_state_cb_data = d;
    o.timeout = DNS_TIMEOUT_MS;
    o.tries = DNS_TRIES;
    rc = ares_init_options(&d->ch, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares init: %s", ares_strerror(rc));
        free(d);
        ares_library_cleanup();
        return NULL;
    }
    if (servers && servers->n) {
        strbuf csv;
        sb_init(&csv);
        for (size_t i = 0; i < servers->n; i++) sb_printf(&csv, "%s%s", i ? "," : "", servers->v[i]);
        rc = ares_set_servers_ports_csv(d->ch, csv.data);
        sb_free(&csv);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errlen, "dns_servers: %s", ares_strerror(rc));
            ares_destroy(d->ch);
            free(d);
            ares_library_cleanup();
            return NULL;
        }
    }
    d->ad_trusted = servers && servers->n && servers_all_loopback(d->ch);
    d->timer = evtimer_new(base, dns_on_timer, d);
    if (!d->timer) abort();
    return d;
}

/* ---- for the other files of dns/ (dns_int.h) ---- */

ares_channel dns_channel(dns_ctx *d)
{
    return d->ch;
}

struct event_base *dns_base(dns_ctx *d)
{
    return d->base;
}

void dns_kick(dns_ctx *d)
{
    dns_timer_update(d);
}

bool dns_freeing(const dns_ctx *d)
{
    return d->freeing;
}

bool dns_ad_trusted(const dns_ctx *d)
{
    return d->ad_trusted;
}

void dns_ext_link(dns_ctx *d, dns_ext *x)
{
    x->prev = NULL;
    x->next = d->ext;
    if (d->ext) d->ext->prev = x;
    d->ext = x;
}

void dns_ext_unlink(dns_ctx *d, dns_ext *x)
{
    if (x->prev) x->prev->next = x->next;
    else if (d->ext == x) d->ext = x->next;
    if (x->next) x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* req_new - a request on d's list. */
static dns_req *req_new(dns_ctx *d, enum dns_kind kind, const char *name, void *arg)
{
    dns_req *q = xcalloc(1, sizeof *q);
    q->d = d;
    q->kind = kind;
    q->name = xstrdup(name);
    q->arg = arg;
    q->next = d->reqs;
    if (d->reqs) d->reqs->prev = q;
    d->reqs = q;
    return q;
}

/* req_free - unlink and release q. */
static void req_free(dns_req *q)
{
    if (q->prev) q->prev->next = q->next;
    else q->d->reqs = q->next;
    if (q->next) q->next->prev = q->prev;
    if (q->defer) event_free(q->defer);
    for (size_t i = 0; i < q->n_mx; i++) free(q->mx[i].host);
    free(q->mx);
    free(q->part[0].addrs);
    free(q->part[1].addrs);
    sv_free(&q->strs);
    free(q->name);
    free(q);
}

/* addr_merge - the A and AAAA parts as one answer (IPv4 first). */
static void addr_merge(dns_req *q, sl_result *res, struct sockaddr_storage **addrs, size_t *n, const char **err)
{
    dns_part *a = &q->part[0], *aaaa = &q->part[1];
    *n = a->n + aaaa->n;
    *addrs = *n ? xcalloc(*n, sizeof **addrs) : NULL;
    if (a->n) memcpy(*addrs, a->addrs, a->n * sizeof **addrs);
    if (aaaa->n) memcpy(*addrs + a->n, aaaa->addrs, aaaa->n * sizeof **addrs);
    *res = SL_OK;
    *err = NULL;
    if (*n) return;
    /* No address: a temporary failure beats "no such name", which beats "no records". */
    static const sl_result order[] = {SL_TEMP, SL_PERM};
    for (size_t k = 0; k < SL_ARRAY_LEN(order); k++) {
        for (int i = 0; i < 2; i++) {
            if (q->part[i].res != order[k]) continue;
            *res = order[k];
            *err = q->part[i].err;
            return;
        }
    }
}

/* req_deliver - run q's callback with its answer (or "cancelled" while freeing) and free q. */
static void req_deliver(dns_req *q)
{
    bool cancelled = q->d->freeing;
    if (q->kind == DNS_REQ_MX) {
        if (cancelled)
            q->mx_cb(q->arg, SL_TEMP, NULL, 0, "cancelled");
        else
            q->mx_cb(q->arg, q->mx_res, q->mx, q->n_mx, q->mx_res == SL_OK ? NULL : q->mx_err);
    } else if (q->kind == DNS_REQ_TXT || q->kind == DNS_REQ_PTR) {
        if (cancelled)
            q->strs_cb(q->arg, SL_TEMP, NULL, 0, "cancelled");
        else
            q->strs_cb(q->arg, q->s_res, q->strs.v, q->strs.n, q->s_res == SL_OK ? NULL : q->s_err);
    } else if (cancelled) {
        q->addr_cb(q->arg, SL_TEMP, NULL, 0, "cancelled");
    } else {
        sl_result res;
        struct sockaddr_storage *addrs;
        size_t n;
        const char *err;
        addr_merge(q, &res, &addrs, &n, &err);
        q->addr_cb(q->arg, res, addrs, n, err);
        free(addrs);
    }
    req_free(q);
}

/* req_on_defer - deliver an answer that was known before any I/O. */
static void req_on_defer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    req_deliver(arg);
}

/* req_defer - deliver q's answer from a zero timeout on the loop. */
static void req_defer(dns_req *q)
{
    static const struct timeval zero = {0, 0};
    q->defer = evtimer_new(q->d->base, req_on_defer, q);
    if (!q->defer) abort();
    evtimer_add(q->defer, &zero);
}

/* req_part_done - one ares query of q finished; deliver when it was the last one. */
static void req_part_done(dns_req *q)
{
    if (--q->outstanding > 0) return;
    if (q->in_call && !q->d->freeing)
        req_defer(q);
    else
        req_deliver(q);
}

/* status_map - c-ares status to a result and message. */
static sl_result status_map(int status, char *err, size_t errlen)
{
    switch (status) {
    case ARES_SUCCESS:
    case ARES_ENODATA:
        return SL_OK;
    case ARES_ENOTFOUND:
        snprintf(err, errlen, "host not found");
        return SL_PERM;
    case ARES_EBADNAME: /* a name that cannot exist */
        snprintf(err, errlen, "malformed name");
        return SL_PERM;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
        snprintf(err, errlen, "cancelled");
        return SL_TEMP;
    default:
        snprintf(err, errlen, "%s", ares_strerror(status));
        return SL_TEMP;
    }
}

/* mx_collect - copy a parsed MX list into q, sorted and shuffled. */
static void mx_collect(dns_req *q, const struct ares_mx_reply *list)
{
    size_t n = 0;
    for (const struct ares_mx_reply *m = list; m; m = m->next) n++;
    q->mx = xcalloc(n ? n : 1, sizeof *q->mx);
    for (const struct ares_mx_reply *m = list; m; m = m->next) {
        char *h = xstrdup(m->host ? m->host : "");
        size_t len = strlen(h);
        if (len && h[len - 1] == '.') h[len - 1] = '\0'; /* "." (null MX) becomes "" as well */
        q->mx[q->n_mx].host = h;
        q->mx[q->n_mx].pref = m->priority;
        q->n_mx++;
    }
    dns_mx_order(q->mx, q->n_mx, dns_rand, NULL);
}

/* mx_on_answer - c-ares callback for an MX query. */
static void mx_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    dns_req *q = arg;
    (void)timeouts;
    q->mx_res = status_map(status, q->mx_err, sizeof q->mx_err);
    if (status == ARES_SUCCESS) {
        struct ares_mx_reply *list = NULL;
        int rc = ares_parse_mx_reply(abuf, alen, &list);
        if (rc == ARES_SUCCESS)
            mx_collect(q, list);
        else if (rc != ARES_ENODATA) {
            q->mx_res = SL_TEMP;
            snprintf(q->mx_err, sizeof q->mx_err, "malformed reply: %s", ares_strerror(rc));
        }
        if (list) ares_free_data(list);
    }
    req_part_done(q);
}

/* a_parse - addresses of an A answer into p. */
static void a_parse(dns_part *p, const unsigned char *abuf, int alen)
{
    struct ares_addrttl ttls[DNS_MAX_ADDRS];
    int n = DNS_MAX_ADDRS;
    int rc = ares_parse_a_reply(abuf, alen, NULL, ttls, &n);
    if (rc == ARES_ENODATA) return;
    if (rc != ARES_SUCCESS) {
        p->res = SL_TEMP;
        snprintf(p->err, sizeof p->err, "malformed reply: %s", ares_strerror(rc));
        return;
    }
    p->addrs = xcalloc(n ? (size_t)n : 1, sizeof *p->addrs);
    for (int i = 0; i < n; i++) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&p->addrs[i];
        sin->sin_family = AF_INET;
        sin->sin_addr = ttls[i].ipaddr;
    }
    p->n = (size_t)n;
}

/* aaaa_parse - addresses of an AAAA answer into p. */
static void aaaa_parse(dns_part *p, const unsigned char *abuf, int alen)
{
    struct ares_addr6ttl ttls[DNS_MAX_ADDRS];
    int n = DNS_MAX_ADDRS;
    int rc = ares_parse_aaaa_reply(abuf, alen, NULL, ttls, &n);
    if (rc == ARES_ENODATA) return;
    if (rc != ARES_SUCCESS) {
        p->res = SL_TEMP;
        snprintf(p->err, sizeof p->err, "malformed reply: %s", ares_strerror(rc));
        return;
    }
    p->addrs = xcalloc(n ? (size_t)n : 1, sizeof *p->addrs);
    for (int i = 0; i < n; i++) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&p->addrs[i];
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, &ttls[i].ip6addr, sizeof sin6->sin6_addr);
    }
    p->n = (size_t)n;
}

/* addr_on_answer - c-ares callback for the A or the AAAA query of a request. */
static void addr_on_answer(dns_req *q, int which, int status, const unsigned char *abuf, int alen)
{
    dns_part *p = &q->part[which];
    p->res = status_map(status, p->err, sizeof p->err);
    if (status == ARES_SUCCESS) (which == 0 ? a_parse : aaaa_parse)(p, abuf, alen);
    req_part_done(q);
}

static void a_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    addr_on_answer(arg, 0, status, abuf, alen);
}

static void aaaa_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    addr_on_answer(arg, 1, status, abuf, alen);
}

void dns_lookup_mx(dns_ctx *d, const char *domain, dns_mx_cb cb, void *arg)
{
    dns_req *q = req_new(d, DNS_REQ_MX, domain, arg);
    q->mx_cb = cb;
    q->outstanding = 1;
    q->in_call = true;
    ares_query(d->ch, domain, ns_c_in, ns_t_mx, mx_on_answer, q);
    /* q may already be deferred (c-ares failed it at once); it is still on the list */
    q->in_call = false;
    dns_timer_update(d);
}

/* literal_parse - whether host is an IP literal ("1.2.3.4", "::1", "[1.2.3.4]", "[IPv6:::1]"). */
static bool literal_parse(const char *host, struct sockaddr_storage *ss)
{
    char buf[INET6_ADDRSTRLEN + 8];
    size_t len = strlen(host);
    if (len >= sizeof buf) return false;
    const char *s = host;
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        s = str_has_prefix_ci(buf, "IPv6:") ? buf + 5 : buf;
    }
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

void dns_lookup_addr(dns_ctx *d, const char *host, dns_addr_cb cb, void *arg)
{
    dns_req *q = req_new(d, DNS_REQ_ADDR, host, arg);
    q->addr_cb = cb;
    struct sockaddr_storage ss;
    if (literal_parse(host, &ss)) {
        dns_part *p = &q->part[ss.ss_family == AF_INET ? 0 : 1];
        p->addrs = xmalloc(sizeof ss);
        p->addrs[0] = ss;
        p->n = 1;
        req_defer(q);
        return;
    }
    q->outstanding = 2;
    q->in_call = true;
    ares_query(d->ch, host, ns_c_in, ns_t_a, a_on_answer, q);
    ares_query(d->ch, host, ns_c_in, ns_t_aaaa, aaaa_on_answer, q);
    q->in_call = false;
    dns_timer_update(d);
}

void dns_lookup_addr_family(dns_ctx *d, const char *host, int family, dns_addr_cb cb, void *arg)
{
    dns_req *q = req_new(d, DNS_REQ_ADDR, host, arg);
    q->addr_cb = cb;
    struct sockaddr_storage ss;
    if (literal_parse(host, &ss)) {
        if (ss.ss_family == family) {
            dns_part *p = &q->part[family == AF_INET ? 0 : 1];
            p->addrs = xmalloc(sizeof ss);
            p->addrs[0] = ss;
            p->n = 1;
        }
        req_defer(q);
        return;
    }
    q->outstanding = 1;
    q->in_call = true;
    if (family == AF_INET6)
        ares_query(d->ch, host, ns_c_in, ns_t_aaaa, aaaa_on_answer, q);
    else
        ares_query(d->ch, host, ns_c_in, ns_t_a, a_on_answer, q);
    q->in_call = false;
    dns_timer_update(d);
}

/* txt_collect - the records of a parsed TXT answer into q->strs, chunks of one record joined. */
static void txt_collect(dns_req *q, const struct ares_txt_ext *list)
{
    strbuf rec;
    sb_init(&rec);
    bool open = false;
    for (const struct ares_txt_ext *t = list; t; t = t->next) {
        if (t->record_start && open) sv_push_owned(&q->strs, sb_steal(&rec));
        open = true;
        for (size_t i = 0; i < t->length; i++) sb_putc(&rec, t->txt[i] ? (char)t->txt[i] : '\x7f');
    }
    if (open) sv_push_owned(&q->strs, sb_steal(&rec));
    sb_free(&rec);
}

/* txt_on_answer - c-ares callback for a TXT query. */
static void txt_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    dns_req *q = arg;
    (void)timeouts;
    q->s_res = status_map(status, q->s_err, sizeof q->s_err);
    if (status == ARES_SUCCESS) {
        struct ares_txt_ext *list = NULL;
        int rc = ares_parse_txt_reply_ext(abuf, alen, &list);
        if (rc == ARES_SUCCESS)
            txt_collect(q, list);
        else if (rc != ARES_ENODATA) {
            q->s_res = SL_TEMP;
            snprintf(q->s_err, sizeof q->s_err, "malformed reply: %s", ares_strerror(rc));
        }
        if (list) ares_free_data(list);
    }
    req_part_done(q);
}

void dns_lookup_txt(dns_ctx *d, const char *name, dns_strs_cb cb, void *arg)
{
    dns_req *q = req_new(d, DNS_REQ_TXT, name, arg);
    q->strs_cb = cb;
    q->outstanding = 1;
    q->in_call = true;
    ares_query(d->ch, name, ns_c_in, ns_t_txt, txt_on_answer, q);
    q->in_call = false;
    dns_timer_update(d);
}

void dns_reverse_name(const struct sockaddr_storage *ip, char *buf, size_t len)
{
    if (ip->ss_family == AF_INET) {
        const unsigned char *a = (const unsigned char *)&((const struct sockaddr_in *)ip)->sin_addr;
        snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
        return;
    }
    const unsigned char *a = (const unsigned char *)&((const struct sockaddr_in6 *)ip)->sin6_addr;
    static const char hex[] = "0123456789abcdef";
    strbuf sb;
    sb_init(&sb);
    for (int i = 15; i >= 0; i--) sb_printf(&sb, "%c.%c.", hex[a[i] & 15], hex[a[i] >> 4]);
    sb_puts(&sb, "ip6.arpa");
    snprintf(buf, len, "%s", sb.data);
    sb_free(&sb);
}

/* ptr_collect - the names of a PTR answer into q->strs (each once, no final dot). */
static void ptr_collect(dns_req *q, const struct hostent *h)
{
    char *names[1 + 64];
    size_t n = 0;
    if (h->h_name) names[n++] = h->h_name;
    for (char **a = h->h_aliases; a && *a && n < SL_ARRAY_LEN(names); a++) names[n++] = *a;
    for (size_t i = 0; i < n; i++) {
        char *name = xstrdup(names[i]);
        size_t l = strlen(name);
        if (l && name[l - 1] == '.') name[l - 1] = '\0';
        if (!*name || sv_contains_ci(&q->strs, name))
            free(name);
        else
            sv_push_owned(&q->strs, name);
    }
}

/* ptr_on_answer - c-ares callback for a PTR query; q->part[0].addrs[0] holds the address asked. */
static void ptr_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    dns_req *q = arg;
    (void)timeouts;
    q->s_res = status_map(status, q->s_err, sizeof q->s_err);
    if (status == ARES_SUCCESS) {
        const struct sockaddr_storage *ss = &q->part[0].addrs[0];
        const void *addr = ss->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                                                    : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
        int alen_ip = ss->ss_family == AF_INET ? 4 : 16;
        struct hostent *h = NULL;
        int rc = ares_parse_ptr_reply(abuf, alen, addr, alen_ip, ss->ss_family, &h);
        if (rc == ARES_SUCCESS && h)
            ptr_collect(q, h);
        else if (rc != ARES_ENODATA) {
            q->s_res = SL_TEMP;
            snprintf(q->s_err, sizeof q->s_err, "malformed reply: %s", ares_strerror(rc));
        }
        if (h) ares_free_hostent(h);
    }
    req_part_done(q);
}

void dns_lookup_ptr(dns_ctx *d, const struct sockaddr_storage *ip, dns_strs_cb cb, void *arg)
{
    char name[80];
    dns_reverse_name(ip, name, sizeof name);
    dns_req *q = req_new(d, DNS_REQ_PTR, name, arg);
    q->strs_cb = cb;
    q->part[0].addrs = xmalloc(sizeof *ip);
    q->part[0].addrs[0] = *ip;
    q->outstanding = 1;
    q->in_call = true;
    ares_query(d->ch, name, ns_c_in, ns_t_ptr, ptr_on_answer, q);
    q->in_call = false;
    dns_timer_update(d);
}

void dns_free(dns_ctx *d)
{
    if (!d) return;
    d->freeing = true;
    /* ares_destroy answers every query with ARES_EDESTRUCTION: those callbacks run now. */
    ares_destroy(d->ch);
    while (d->reqs) req_deliver(d->reqs); /* deferred answers not yet delivered */
    while (d->ext) d->ext->cancel(d->ext); /* dnssec.c's, likewise */
    for (size_t i = 0; i < d->n_socks; i++) event_free(d->socks[i].ev);
    free(d->socks);
    event_free(d->timer);
    free(d);
    ares_library_cleanup();
}
