/*
 * smtp_out.c - the SMTP client channel program (see smtp_out.h).
 *
 * One smtp_out is one outbound session. A delivery runs through these states:
 *   destinations (DNS: smart host, MX list or the host itself) -> connect to each address in
 *   turn -> greeting -> EHLO (HELO on 5xx) -> transaction -> idle (reusable).
 * The transaction expects its replies in order: MAIL (index 0), RCPT i (index 1 + i), DATA
 * (index n + 1). With PIPELINING all those commands go out in one write; without it, the next
 * command is sent when the previous reply has arrived. Replies are parsed by smtp/client.c.
 *
 * A failure before the DATA command has been answered (connect, greeting, EHLO/HELO, 4xx to
 * MAIL, 421, lost connection) discards this host's partial results and moves to the next
 * address; when none is left every recipient gets the last failure as SL_TEMP. After DATA
 * was answered with 354 results are final.
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
#include "core/tls.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include "smtp/client.h"
#include "smtp/parse.h"

#define SMTP_OUT_LINE_MAX 8192 /* longest reply line we wait for */

enum out_state {
    OS_CLOSED,     /* no connection */
    OS_RESOLVING,  /* waiting for DNS */
    OS_CONNECTING, /* TCP connect in progress */
    OS_GREETING,   /* waiting for the 220 */
    OS_EHLO,
    OS_HELO,
    OS_IDLE,       /* connected, no transaction: reusable */
    OS_TXN,        /* MAIL/RCPT/DATA replies outstanding */
    OS_BODY,       /* message sent, waiting for the end-of-data reply */
    OS_DOT_ONLY,   /* DATA got 354 without accepted recipients: "." sent */
    OS_RSET,       /* no recipient accepted: RSET sent */
    OS_STARTTLS,   /* STARTTLS sent, waiting for 220 */
    OS_TLS_HANDSHAKE /* TLS handshake in progress */
};

enum rcpt_state { RS_PENDING = 0, RS_ACCEPTED, RS_DONE };

struct smtp_out {
    struct event_base *base;
    dns_ctx *dns;
    const sl_conf *conf;
    const sl_channel *ch;
    char *host;           /* routing host */
    enum out_state st;

    /* destinations of the current attempt */
    strvec names;         /* host names to try, in order */
    size_t next_name;
    bool direct;          /* names[0] is the routing host itself: no address is permanent */
    struct sockaddr_storage *addrs;
    size_t n_addrs, next_addr;

    /* the connection */
    struct bufferevent *bev;
    unsigned gen;         /* changes whenever a connection is closed */
    char *peer_name;      /* host name of the peer */
    char peer_ip[INET6_ADDRSTRLEN];
    char *peer;           /* "name [ip]" for remote_mta */
    smtp_reply_parser rp;
    smtp_caps caps;
    bool in_connect;      /* inside bufferevent_socket_connect */
    short sync_what;      /* event reported from inside it */
    int sync_errno;

    /* the item in progress */
    deliv_item *item;
    smtp_out_done_cb cb;
    void *arg;
    unsigned char *rst;   /* enum rcpt_state per recipient */
    size_t n_accepted;
    size_t next_reply;    /* index of the reply we wait for */
    size_t n_sent;        /* commands of the transaction sent so far */
    bool pipelined;
    bool mail_failed;     /* 5xx to MAIL: the other replies are only drained */
    bool reused;          /* transaction began on a connection left open by an earlier one */

    /* last failure, the result for everyone when every destination fails */
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
    size_t lmtp_next;     /* LMTP: next accepted recipient whose reply is due */
    struct ssl_ctx_st *tls_ctx;
    bool tls_active;
    char tls_info[96];
};

static void dest_try_next(smtp_out *s);
static void dest_start(smtp_out *s);
static void txn_begin(smtp_out *s);
static void session_ehlo(smtp_out *s, const char *verb);
static bool is_lmtp(const smtp_out *s);
static void item_finish(smtp_out *s);

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

/* fail_set - remember the latest failure of this delivery attempt. */
static void fail_set(smtp_out *s, sl_result res, const char *status, const char *diag, const char *mta)
{
    s->fail_res = res;
    snprintf(s->fail_status, sizeof s->fail_status, "%s", status);
    free(s->fail_diag);
    free(s->fail_mta);
    s->fail_diag = xstrdup(diag);
    s->fail_mta = xstrdup(mta);
}

/* fail_set_reply - remember a reply that made us give up on this host (always temporary). */
static void fail_set_reply(smtp_out *s, const smtp_reply *r)
{
    char status[16], *text = smtp_reply_text(r);
    char *diag = xasprintf("smtp; %s", text);
    smtp_reply_status(r, status, sizeof status);
    status[0] = '4'; /* another host, or a later retry, may succeed */
    fail_set(s, SL_TEMP, status, diag, s->peer);
    free(diag);
    free(text);
}

/* fail_set_conn - remember a connection-level failure ("lost connection", "timeout"). */
static void fail_set_conn(smtp_out *s, const char *status, const char *what)
{
    char *diag = xasprintf("%s: %s", s->peer ? s->peer : s->host, what);
    fail_set(s, SL_TEMP, status, diag, s->peer);
    free(diag);
}

/* rcpt_result - set recipient i's result and mark it done. */
static void rcpt_result(smtp_out *s, size_t i, sl_result res, const char *status, const char *diag)
{
    deliv_result_set(&s->item->results[i], res, status, diag, s->peer);
    s->rst[i] = RS_DONE;
}

/* rcpt_result_reply - recipient i's result from a reply: 2xx OK, 4xx TEMP, 5xx PERM. */
static void rcpt_result_reply(smtp_out *s, size_t i, const smtp_reply *r)
{
    char status[16], *text = smtp_reply_text(r);
    char *diag = xasprintf("smtp; %s", text);
    sl_result res = r->code < 300 ? SL_OK : r->code < 500 ? SL_TEMP : SL_PERM;
    if (res == SL_OK && !r->enh[0])
        snprintf(status, sizeof status, "2.0.0");
    else
        smtp_reply_status(r, status, sizeof status);
    rcpt_result(s, i, res, status, diag);
    if (res == SL_OK && !s->caps.dsn && !is_lmtp(s) && (out_rcpt(s, i)->notify & DSN_NOTIFY_SUCCESS))
        s->item->results[i].relayed = true;
    free(diag);
    free(text);
}

/* rcpts_reset - forget the results of a host we are giving up on. */
static void rcpts_reset(smtp_out *s)
{
    for (size_t i = 0; i < s->item->n; i++) {
        deliv_result_clear(&s->item->results[i]);
        s->rst[i] = RS_PENDING;
    }
    s->n_accepted = 0;
}

/* rcpts_fail_all - every recipient without a result gets res/status/diag. */
static void rcpts_fail_all(smtp_out *s, sl_result res, const char *status, const char *diag, const char *mta)
{
    for (size_t i = 0; i < s->item->n; i++) {
        if (s->rst[i] == RS_DONE) continue;
        deliv_result_set(&s->item->results[i], res, status, diag, mta);
        s->rst[i] = RS_DONE;
    }
}

/* out_write - queue text for the peer. */
static void out_write(smtp_out *s, const char *text)
{
    bev_send(s->bev, text, strlen(text));
}

/* copt - a per-channel timeout (<channel>_option), else the global one, else def. */
static unsigned copt(unsigned chan, unsigned global, unsigned def)
{
    return chan ? chan : global ? global : def;
}

static bool is_lmtp(const smtp_out *s)
{
    return s->ch->lmtp || s->ch->type == CHAN_LMTP;
}

/* ---- connection ---------------------------------------------------------------------- */

/* conn_close - drop the connection; with quit, say QUIT first if nothing else is queued. */
static void conn_close(smtp_out *s, bool quit)
{
    if (s->bev) {
        evutil_socket_t fd = bufferevent_getfd(s->bev);
        bool flushed = evbuffer_get_length(bufferevent_get_output(s->bev)) == 0;
        if (quit && flushed && fd >= 0 && s->st >= OS_GREETING) {
            /* Fire and forget: the socket is writable in practice and QUIT is tiny. */
            ssize_t w = send(fd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
        }
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    s->gen++;
    s->st = OS_CLOSED;
    s->tls_active = false;
    smtp_reply_parser_free(&s->rp);
    memset(&s->caps, 0, sizeof s->caps);
}

/* conn_timeouts - apply a timeout in seconds to reading and writing. */
static void conn_timeouts(smtp_out *s, unsigned secs)
{
    struct timeval tv = {secs ? (time_t)secs : 300, 0};
    bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/*
 * conn_failed - the current connection failed before results were final: next address. A
 * connection kept from an earlier item has no list of untried addresses left: start afresh.
 */
static void conn_failed(smtp_out *s, bool quit)
{
    conn_close(s, quit);
    rcpts_reset(s);
    if (s->reused) {
        s->reused = false;
        dest_start(s);
        return;
    }
    dest_try_next(s);
}

/* conn_lost - the peer went away or timed out (what: "lost connection", "timeout"). */
static void conn_lost(smtp_out *s, const char *what)
{
    switch (s->st) {
    case OS_IDLE:
        conn_close(s, false);
        return;
    case OS_TXN:
        if (s->mail_failed) { /* 5xx to MAIL: the results are final already */
            conn_close(s, false);
            item_finish(s);
            return;
        }
        /* A reused connection the peer closed meanwhile reconnects in conn_failed. */
        /* fall through */
    case OS_GREETING:
    case OS_EHLO:
    case OS_HELO: {
        char *w = xasprintf("%s %s", what, s->st == OS_TXN ? "during the transaction" : "during the greeting/EHLO");
        fail_set_conn(s, "4.4.2", w);
        free(w);
        conn_failed(s, false);
        return;
    }
    case OS_BODY: {
        char *diag = xasprintf("%s: %s after DATA", s->peer, what);
        for (size_t i = 0; i < s->item->n; i++)
            if (s->rst[i] == RS_ACCEPTED) rcpt_result(s, i, SL_TEMP, "4.4.2", diag);
        free(diag);
        conn_close(s, false);
        item_finish(s);
        return;
    }
    case OS_DOT_ONLY:
    case OS_RSET:
        conn_close(s, false);
        item_finish(s);
        return;
    default:
        abort(); /* no connection in the other states */
    }
}

/* conn_connect_failed - TCP connect to the current address failed (err: errno or 0 for timeout). */
static void conn_connect_failed(smtp_out *s, int err)
{
    const char *why = err ? strerror(err) : "connection timed out";
    log_info(out_msg_id(s), "connect_failed", "host=%s addr=%s port=%u error=\"%s\"", s->peer_name, s->peer_ip,
             s->ch->port ? s->ch->port : 25, why);
    fail_set_conn(s, "4.4.1", why);
    conn_close(s, false);
    dest_try_next(s);
}

/* conn_on_reply - one complete reply arrived: act on it according to the state. */
static void conn_on_reply(smtp_out *s, const smtp_reply *r);

/* conn_on_read - parse whatever complete reply lines have arrived. */
static void conn_on_read(struct bufferevent *bev, void *arg)
{
    smtp_out *s = arg;
    unsigned gen = s->gen;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (s->gen == gen) {
        size_t n;
        char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
        if (!line) {
            if (evbuffer_get_length(in) > SMTP_OUT_LINE_MAX) conn_lost(s, "reply line too long");
            return;
        }
        smtp_reply r;
        int rc = smtp_reply_parse_line(&s->rp, line, n, &r);
        free(line);
        if (rc < 0) {
            conn_lost(s, "malformed reply");
            return;
        }
        if (rc == 1) {
            conn_on_reply(s, &r);
            smtp_reply_free(&r);
        }
    }
}

/* conn_on_write - the output buffer drained: after the message, wait for the reply. */
static void conn_on_write(struct bufferevent *bev, void *arg)
{
    smtp_out *s = arg;
    (void)bev;
    if (s->st == OS_BODY) conn_timeouts(s, s->conf->opt.command_timeout);
}

/* conn_on_event - connected, EOF, error or timeout on the connection. */
static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    smtp_out *s = arg;
    (void)bev;
    if (s->in_connect) { /* reported from inside bufferevent_socket_connect: handled there */
        s->sync_what = what;
        s->sync_errno = errno;
        return;
    }
    if (s->st == OS_TLS_HANDSHAKE) {
        if (what & BEV_EVENT_CONNECTED) {
            tls_describe(bufferevent_openssl_get_ssl(bev), s->tls_info, sizeof s->tls_info);
            s->tls_active = true;
            log_info(out_msg_id(s), "tls", "peer=%s %s", s->peer, s->tls_info);
            session_ehlo(s, "EHLO"); /* RFC 3207: start over */
            s->st = OS_EHLO;
            return;
        }
        char err[256];
        tls_last_error(err, sizeof err);
        log_info(out_msg_id(s), "tls_failed", "peer=%s error=\"%s\"", s->peer, err);
        char *what_txt = xasprintf("TLS handshake failed: %s", err);
        fail_set_conn(s, "4.7.5", what_txt);
        free(what_txt);
        conn_failed(s, false);
        return;
    }
    if (s->st == OS_CONNECTING) {
        if (what & BEV_EVENT_CONNECTED) {
            s->st = OS_GREETING;
            conn_timeouts(s, s->conf->opt.command_timeout);
            bufferevent_enable(s->bev, EV_READ | EV_WRITE);
            return;
        }
        conn_connect_failed(s, (what & BEV_EVENT_TIMEOUT) ? 0 : (errno ? errno : ECONNREFUSED));
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        conn_lost(s, "timeout");
    else if (what & BEV_EVENT_EOF)
        conn_lost(s, "lost connection");
    else if (what & BEV_EVENT_ERROR) {
        char *w = xasprintf("lost connection (%s)", strerror(errno));
        conn_lost(s, w);
        free(w);
    }
}

/* conn_open - start connecting to addr; false if that failed at once (then already logged). */
static bool conn_open(smtp_out *s, const struct sockaddr_storage *addr)
{
    struct sockaddr_storage sa = *addr;
    unsigned port = s->ch->port ? s->ch->port : 25;
    socklen_t len;
    if (sa.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&sa;
        sin->sin_port = htons((uint16_t)port);
        inet_ntop(AF_INET, &sin->sin_addr, s->peer_ip, sizeof s->peer_ip);
        len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&sa;
        sin6->sin6_port = htons((uint16_t)port);
        inet_ntop(AF_INET6, &sin6->sin6_addr, s->peer_ip, sizeof s->peer_ip);
        len = sizeof *sin6;
    }
    free(s->peer);
    if (s->peer_name[0] == '[' || strcmp(s->peer_name, s->peer_ip) == 0) /* an IP literal names itself */
        s->peer = xasprintf("[%s]", s->peer_ip);
    else
        s->peer = xasprintf("%s [%s]", s->peer_name, s->peer_ip);
    evutil_socket_t fd = -1;
    if (s->ch->interface_address) { /* a fixed source address (channel keyword interfaceaddress) */
        struct sockaddr_storage src;
        memset(&src, 0, sizeof src);
        socklen_t slen = 0;
        if (sa.ss_family == AF_INET && inet_pton(AF_INET, s->ch->interface_address,
                                                  &((struct sockaddr_in *)&src)->sin_addr) == 1) {
            src.ss_family = AF_INET;
            slen = sizeof(struct sockaddr_in);
        } else if (sa.ss_family == AF_INET6 && inet_pton(AF_INET6, s->ch->interface_address,
                                                         &((struct sockaddr_in6 *)&src)->sin6_addr) == 1) {
            src.ss_family = AF_INET6;
            slen = sizeof(struct sockaddr_in6);
        }
        if (slen) {
            fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd >= 0 && bind(fd, (struct sockaddr *)&src, slen) < 0) {
                log_info(out_msg_id(s), "bind_failed", "address=%s error=\"%s\"", s->ch->interface_address,
                         strerror(errno));
                close(fd);
                fd = -1;
            }
        }
    }
    s->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->bev) abort();
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
    log_info(out_msg_id(s), "connect_failed", "host=%s addr=%s port=%u error=\"%s\"", s->peer_name, s->peer_ip, port,
             strerror(err ? err : ECONNREFUSED));
    fail_set_conn(s, "4.4.1", strerror(err ? err : ECONNREFUSED));
    conn_close(s, false);
    return false;
}

/* ---- destinations -------------------------------------------------------------------- */

/* dest_finish_all_failed - no destination worked: everyone gets the last failure. */
static void dest_finish_all_failed(smtp_out *s)
{
    if (s->saw_self && s->fail_res != SL_PERM && !s->n_attempted) {
        char *diag = xasprintf("x-sluice; mail loop: the MX hosts of %s point back to this server", s->host);
        log_info(out_msg_id(s), "loop_detected", "host=%s how=self_mx", s->host);
        fail_set(s, SL_PERM, "5.4.6", diag, NULL);
        free(diag);
    }
    rcpts_fail_all(s, s->fail_res, s->fail_status, s->fail_diag, s->fail_mta);
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
    }
    s->st = OS_CLOSED;
    dest_try_next(s);
}

/* dest_try_next - connect to the next address, resolving the next name when needed. */
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
    if (s->next_name >= s->names.n && s->ch->lastresort && !s->tried_lastresort && s->fail_res != SL_PERM) {
        /* every MX failed temporarily: the last-resort host gets a try */
        s->tried_lastresort = true;
        sv_push(&s->names, s->ch->lastresort);
        log_info(out_msg_id(s), "lastresort", "host=%s", s->ch->lastresort);
    }
    if (s->next_name < s->names.n) {
        free(s->peer_name);
        s->peer_name = xstrdup(s->names.v[s->next_name++]);
        s->st = OS_RESOLVING;
        dns_lookup_addr(s->dns, s->peer_name, dest_on_addr, s);
        return;
    }
    dest_finish_all_failed(s);
}

/* dest_on_mx - the MX answer for the routing host. */
static void dest_on_mx(void *arg, sl_result res, const dns_mx *mx, size_t n, const char *errmsg)
{
    smtp_out *s = arg;
    s->st = OS_CLOSED;
    if (res != SL_OK) {
        char *diag = xasprintf("dns; %s: MX lookup: %s", s->host, errmsg);
        log_info(out_msg_id(s), "dns_failed", "host=%s type=MX error=\"%s\"", s->host, errmsg);
        rcpts_fail_all(s, res == SL_PERM ? SL_PERM : SL_TEMP, res == SL_PERM ? "5.1.2" : "4.4.3", diag, NULL);
        free(diag);
        item_finish(s);
        return;
    }
    bool null_mx = false;
    for (size_t i = 0; i < n; i++) {
        if (mx[i].host[0])
            sv_push(&s->names, mx[i].host);
        else
            null_mx = true;
    }
    if (s->names.n == 0 && null_mx) {
        char *diag = xasprintf("dns; %s does not accept mail (null MX)", s->host);
        rcpts_fail_all(s, SL_PERM, "5.1.10", diag, NULL);
        free(diag);
        item_finish(s);
        return;
    }
    if (s->names.n == 0) { /* no MX: the host's own addresses */
        sv_push(&s->names, s->host);
        s->direct = true;
    }
    dest_try_next(s);
}

/* dest_start - find the destinations afresh and start trying them. */
static void dest_start(smtp_out *s)
{
    sv_free(&s->names);
    s->next_name = 0;
    free(s->addrs);
    s->addrs = NULL;
    s->n_addrs = s->next_addr = 0;
    s->direct = false;
    s->saw_self = false;
    s->direct_daemon = false;
    s->tried_lastresort = false;
    s->n_attempted = 0;
    fail_set(s, SL_TEMP, "4.4.1", "no destination could be reached", NULL);
    if (s->ch->daemon && *s->ch->daemon) {
        /* a smart host named in the configuration is trusted even when it is local (e.g. a
           two-tier set-up on one machine); XLOOP still catches a real loop */
        s->direct_daemon = true;
        sv_push(&s->names, s->ch->daemon);
    } else if (s->ch->mx && s->host[0] != '[') {
        s->st = OS_RESOLVING;
        dns_lookup_mx(s->dns, s->host, dest_on_mx, s);
        return;
    } else {
        sv_push(&s->names, s->host);
        s->direct = true;
    }
    dest_try_next(s);
}

/* ---- session and transaction --------------------------------------------------------- */

/* session_ehlo - send EHLO (or HELO) with our host name. */
static void session_ehlo(smtp_out *s, const char *verb)
{
    const char *me = s->conf->opt.hostname && *s->conf->opt.hostname ? s->conf->opt.hostname : "localhost";
    if (is_lmtp(s)) verb = "LHLO";
    char *cmd = xasprintf("%s %s\r\n", verb, me);
    out_write(s, cmd);
    free(cmd);
}

/* emit_evbuffer - dot-stuffing output into the connection's output buffer. */
static void emit_evbuffer(void *ctx, const void *p, size_t n)
{
    evbuffer_add(ctx, p, n);
}

/* txn_send - send transaction command k (0 MAIL, 1..n RCPT, n+1 DATA). */
static void txn_send(smtp_out *s, size_t k)
{
    char *cmd;
    if (k == 0)
        cmd = smtp_client_mail_line(s->item->msg, &s->caps);
    else if (k <= s->item->n)
        cmd = smtp_client_rcpt_line(out_rcpt(s, k - 1), &s->caps);
    else
        cmd = xstrdup("DATA\r\n");
    out_write(s, cmd);
    free(cmd);
    s->n_sent = k + 1;
}

/* txn_end - the transaction is over and the connection idle again. */
static void txn_end(smtp_out *s)
{
    s->st = OS_IDLE;
    item_finish(s);
}

/* txn_precheck - refuse what this peer cannot take; true if the item was finished here. */
static bool txn_precheck(smtp_out *s)
{
    const qmsg *m = s->item->msg;
    char *diag = NULL;
    const char *status = NULL;
    if (s->caps.size && s->caps.size_max && m->data_len > s->caps.size_max) {
        status = "5.3.4";
        diag = xasprintf("smtp; message size %zu exceeds the limit %llu of %s", m->data_len,
                         (unsigned long long)s->caps.size_max, s->peer);
    } else if (m->smtputf8 && !s->caps.smtputf8) {
        status = "5.6.7";
        diag = xasprintf("smtp; %s does not support SMTPUTF8, which the message needs", s->peer);
    }
    if (!status) return false;
    rcpts_fail_all(s, SL_PERM, status, diag, s->peer);
    free(diag);
    s->st = OS_IDLE;
    item_finish(s);
    return true;
}

/* txn_begin - start MAIL/RCPT/DATA on an open connection. */
static void txn_begin(smtp_out *s)
{
    conn_timeouts(s, copt(s->ch->copts.command_timeout, s->conf->opt.command_timeout, 300));
    if (txn_precheck(s)) return;
    s->msgs_on_conn++;
    s->lmtp_next = 0;
    s->st = OS_TXN;
    s->next_reply = 0;
    s->n_sent = 0;
    s->n_accepted = 0;
    s->mail_failed = false;
    s->pipelined = s->caps.pipelining;
    if (s->pipelined)
        for (size_t k = 0; k <= s->item->n + 1; k++) txn_send(s, k);
    else
        txn_send(s, 0);
}

/* txn_send_body - DATA was answered 354: the message, dot-stuffed, then ".". */
static void txn_send_body(smtp_out *s)
{
    const qmsg *m = s->item->msg;
    struct evbuffer *body = evbuffer_new();
    smtp_client_dot_stuff(m->data, m->data_len, emit_evbuffer, body);
    bool sent = bev_send_buffer(s->bev, body);
    evbuffer_free(body);
    s->st = OS_BODY;
    if (sent) { /* all in the kernel already: the reply is what we wait for */
        conn_timeouts(s, s->conf->opt.command_timeout);
        return;
    }
    /* No reply is due while a large message is still being written: only the write timeout
       runs until conn_on_write sees the output drained. */
    struct timeval tv = {(time_t)copt(s->ch->copts.data_timeout, s->conf->opt.command_timeout, 600), 0};
    bufferevent_set_timeouts(s->bev, NULL, &tv);
}

/* txn_after_rcpts - non-pipelined: every RCPT answered, so DATA or RSET. */
static void txn_after_rcpts(smtp_out *s)
{
    if (s->n_accepted) {
        txn_send(s, s->item->n + 1);
        return;
    }
    out_write(s, "RSET\r\n");
    s->st = OS_RSET;
}

/* txn_on_mail - reply to MAIL FROM. */
static void txn_on_mail(smtp_out *s, const smtp_reply *r)
{
    if (r->code >= 200 && r->code < 300) {
        if (!s->pipelined) txn_send(s, 1);
        return;
    }
    if (r->code < 500) { /* 4xx (421 included): try another host */
        fail_set_reply(s, r);
        conn_failed(s, r->code != 421);
        return;
    }
    char status[16], *text = smtp_reply_text(r);
    char *diag = xasprintf("smtp; %s", text);
    smtp_reply_status(r, status, sizeof status);
    rcpts_fail_all(s, SL_PERM, status, diag, s->peer);
    free(diag);
    free(text);
    s->mail_failed = true;
    if (!s->pipelined) txn_end(s); /* nothing else is outstanding */
}

/* txn_on_rcpt - reply to RCPT TO of recipient i. */
static void txn_on_rcpt(smtp_out *s, size_t i, const smtp_reply *r)
{
    if (s->mail_failed) return;
    if (r->code == 421) {
        fail_set_reply(s, r);
        conn_failed(s, false);
        return;
    }
    if (r->code >= 200 && r->code < 300) {
        s->rst[i] = RS_ACCEPTED;
        s->n_accepted++;
    } else {
        rcpt_result_reply(s, i, r);
    }
    if (s->pipelined) return;
    if (i + 1 < s->item->n)
        txn_send(s, i + 2);
    else
        txn_after_rcpts(s);
}

/* txn_on_data - reply to DATA. */
static void txn_on_data(smtp_out *s, const smtp_reply *r)
{
    if (r->code == 354) {
        if (s->n_accepted && !s->mail_failed) {
            txn_send_body(s);
        } else { /* a pipelined DATA the peer should have refused: send an empty message */
            out_write(s, ".\r\n");
            s->st = OS_DOT_ONLY;
        }
        return;
    }
    if (r->code < 400 && s->n_accepted && !s->mail_failed) { /* neither 354 nor a refusal */
        char *text = smtp_reply_text(r);
        char *diag = xasprintf("smtp; unexpected reply to DATA: %s", text);
        for (size_t i = 0; i < s->item->n; i++)
            if (s->rst[i] == RS_ACCEPTED) rcpt_result(s, i, SL_TEMP, "4.5.0", diag);
        free(diag);
        free(text);
        conn_close(s, true);
        item_finish(s);
        return;
    }
    /* Without accepted recipients this is the expected 503/554 and the results stand. */
    if (s->n_accepted && !s->mail_failed)
        for (size_t i = 0; i < s->item->n; i++)
            if (s->rst[i] == RS_ACCEPTED) rcpt_result_reply(s, i, r);
    if (r->code == 421) {
        conn_close(s, false);
        item_finish(s);
        return;
    }
    txn_end(s);
}

/* txn_on_reply - a reply inside the transaction, matched to its command by order. */
static void txn_on_reply(smtp_out *s, const smtp_reply *r)
{
    size_t k = s->next_reply++;
    if (k >= s->n_sent) { /* a reply to nothing we sent */
        fail_set_reply(s, r);
        conn_failed(s, false);
        return;
    }
    if (k == 0)
        txn_on_mail(s, r);
    else if (k <= s->item->n)
        txn_on_rcpt(s, k - 1, r);
    else
        txn_on_data(s, r);
}

/* session_on_body_reply - the reply to the end of data: final results for accepted recipients. */
static void session_on_body_reply(smtp_out *s, const smtp_reply *r)
{
    if (is_lmtp(s) && r->code != 421) {
        /* LMTP: one reply per accepted recipient, in RCPT order */
        while (s->lmtp_next < s->item->n && s->rst[s->lmtp_next] != RS_ACCEPTED) s->lmtp_next++;
        if (s->lmtp_next < s->item->n) rcpt_result_reply(s, s->lmtp_next++, r);
        for (size_t i = s->lmtp_next; i < s->item->n; i++)
            if (s->rst[i] == RS_ACCEPTED) return; /* more replies due */
        txn_end(s);
        return;
    }
    for (size_t i = 0; i < s->item->n; i++)
        if (s->rst[i] == RS_ACCEPTED) rcpt_result_reply(s, i, r);
    if (r->code == 421) {
        conn_close(s, false);
        item_finish(s);
        return;
    }
    txn_end(s);
}

/* session_on_hello_reply - the greeting, EHLO or HELO reply. */
/* tls_begin - the reply to STARTTLS: 220 starts the handshake; anything else is no TLS. */
static void tls_begin(smtp_out *s, const smtp_reply *r)
{
    if (r->code != 220) {
        if (s->ch->tls == CHAN_TLS_MUST) {
            fail_set_reply(s, r);
            conn_failed(s, r->code != 421);
            return;
        }
        log_info(out_msg_id(s), "tls_refused", "peer=%s code=%d", s->peer, r->code);
        txn_begin(s); /* opportunistic: go on in clear text */
        return;
    }
    /* whatever the server sent after its 220 precedes the handshake: never act on it */
    struct evbuffer *in = bufferevent_get_input(s->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    smtp_reply_parser_free(&s->rp);
    SSL *ssl = SSL_new(s->tls_ctx);
    struct bufferevent *tb =
        bufferevent_openssl_filter_new(s->base, s->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    s->bev = tb;
    s->st = OS_TLS_HANDSHAKE;
    bufferevent_setcb(s->bev, conn_on_read, conn_on_write, conn_on_event, s);
    conn_timeouts(s, copt(s->ch->copts.command_timeout, s->conf->opt.command_timeout, 300));
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void session_on_hello_reply(smtp_out *s, const smtp_reply *r)
{
    if (s->st == OS_STARTTLS) {
        tls_begin(s, r);
        return;
    }
    bool ok = r->code >= 200 && r->code < 300;
    if (s->st == OS_GREETING && ok) {
        session_ehlo(s, "EHLO");
        s->st = OS_EHLO;
        return;
    }
    if (s->st == OS_EHLO && !ok && r->code >= 500) {
        session_ehlo(s, "HELO");
        s->st = OS_HELO;
        return;
    }
    if (!ok) {
        fail_set_reply(s, r);
        conn_failed(s, r->code != 421);
        return;
    }
    if (s->st == OS_EHLO)
        smtp_caps_parse(r, &s->caps);
    else
        memset(&s->caps, 0, sizeof s->caps);
    if (!s->tls_active && s->ch->tls != CHAN_TLS_NO) {
        if (s->caps.starttls && s->tls_ctx) {
            out_write(s, "STARTTLS\r\n");
            s->st = OS_STARTTLS;
            return;
        }
        if (s->ch->tls == CHAN_TLS_MUST) { /* musttls: never in clear text; a sibling may offer it */
            fail_set_conn(s, "4.7.4", "TLS is required but the server does not offer STARTTLS");
            conn_failed(s, true);
            return;
        }
    }
    if (s->ch->loopcheck && s->self_token && s->caps.xloop[0] && !strcmp(s->caps.xloop, s->self_token)) {
        /* the next hop is this very installation: bounce now instead of looping */
        char *diag = xasprintf("smtp; mail loop: %s is this installation (XLOOP)", s->peer);
        log_info(out_msg_id(s), "loop_detected", "peer=%s how=xloop", s->peer);
        rcpts_fail_all(s, SL_PERM, "5.4.6", diag, s->peer);
        free(diag);
        conn_close(s, true);
        item_finish(s);
        return;
    }
    s->msgs_on_conn = 0;
    txn_begin(s);
}

static void conn_on_reply(smtp_out *s, const smtp_reply *r)
{
    switch (s->st) {
    case OS_GREETING:
    case OS_EHLO:
    case OS_HELO:
    case OS_STARTTLS:
        session_on_hello_reply(s, r);
        break;
    case OS_TXN:
        txn_on_reply(s, r);
        break;
    case OS_BODY:
        session_on_body_reply(s, r);
        break;
    case OS_DOT_ONLY:
    case OS_RSET:
        if (r->code == 421) {
            conn_close(s, false);
            item_finish(s);
        } else {
            txn_end(s);
        }
        break;
    default: /* unsolicited (e.g. 421 while idle): the connection is not reusable */
        conn_close(s, false);
        break;
    }
}

/* ---- item completion ----------------------------------------------------------------- */

/* log_value - text safe inside a double-quoted log value; caller frees. */
static char *log_value(const char *s)
{
    char *v = xstrdup(s ? s : "");
    for (char *p = v; *p; p++)
        if (*p == '"' || *p == '\\') *p = '\'';
    return v;
}

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
        if (s->rst[i] != RS_DONE)
            rcpt_result(s, i, SL_TEMP, "4.3.0", "smtp; internal error: no result for recipient");
    item_log(s);
    free(s->rst);
    s->rst = NULL;
    if (s->st == OS_IDLE && s->bev) bufferevent_enable(s->bev, EV_READ); /* notice a peer that closes */
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
    smtp_reply_parser_init(&s->rp);
    s->ev_done = evtimer_new(base, item_on_done, s);
    if (!s->ev_done) abort();
    return s;
}

void smtp_out_deliver(smtp_out *s, deliv_item *item, smtp_out_done_cb cb, void *arg)
{
    if (s->item) abort(); /* one item at a time */
    s->item = item;
    s->cb = cb;
    s->arg = arg;
    s->rst = xcalloc(item->n ? item->n : 1, 1);
    s->n_accepted = 0;
    if (item->n == 0) {
        item_finish(s);
        return;
    }
    if (s->st == OS_IDLE && s->bev) {
        s->reused = true;
        txn_begin(s);
        return;
    }
    s->reused = false;
    dest_start(s);
}

bool smtp_out_reusable(const smtp_out *s)
{
    unsigned max = s->ch->copts.max_messages ? s->ch->copts.max_messages : 100;
    return s->st == OS_IDLE && s->bev && !s->item && s->msgs_on_conn < max;
}

void smtp_out_set_tls(smtp_out *s, struct ssl_ctx_st *ctx)
{
    s->tls_ctx = ctx;
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
    event_free(s->ev_done);
    sv_free(&s->names);
    free(s->addrs);
    free(s->peer_name);
    free(s->peer);
    free(s->fail_diag);
    free(s->fail_mta);
    free(s->host);
    free(s->self_token);
    free(s->self_addrs);
    free(s);
}
