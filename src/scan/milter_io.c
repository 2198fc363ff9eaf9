/*
 * milter_io.c - the milter client's I/O adapter (see milter_io.h): a bufferevent, a stage timer
 * and a zero-delay event for answers that need no word from the milter.
 *
 * busy is true while a stage (or the negotiation) waits for the milter; its answer is delivered
 * by deliver(), always as the last thing a loop callback does, because the caller's callback may
 * close (free) the connection.
 */
#include "scan/milter_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/bev.h"
#include "core/log.h"

struct milter_conn {
    struct event_base *base;
    struct bufferevent *bev;  /* NULL once the connection failed or closed */
    milter_engine *e;
    struct event *timer;      /* the stage's timeout */
    struct event *ev_done;    /* delivers an answer through the loop */
    unsigned timeout;         /* seconds per stage */
    bool connected;           /* the TCP/Unix connect finished */
    bool busy;                /* a stage's answer is due */
    bool ready;               /* the negotiation succeeded (logged once) */
    bool in_connect;          /* inside bufferevent_socket_connect */
    bool tcp;                 /* a TCP connection (not a Unix socket): the ACK and Nagle options apply */
    short sync_what;          /* an event reported from inside it */
    milter_cb cb;
    void *arg;
    char *peer;               /* "127.0.0.1:8891" or the socket path, for logs */
    char *log_id;
    strbuf wbuf;
};

/* conn_drop - free the socket (the engine stays, to answer later stages FAILED). */
static void conn_drop(milter_conn *m)
{
    if (m->bev) bufferevent_free(m->bev);
    m->bev = NULL;
    evtimer_del(m->timer);
}

/* conn_failed - the connection is unusable: the engine says why, the socket goes. */
static void conn_failed(milter_conn *m, const char *why)
{
    if (milter_state(m->e) != MILTER_ES_FAILED) {
        log_info(m->log_id, "milter_failed", "milter=%s error=\"%s\"", m->peer, why);
        milter_fail(m->e, why);
    }
    conn_drop(m);
}

/* flush - write what the engine queued (only once connected; until then it stays in the engine). */
static void flush(milter_conn *m)
{
    if (!m->bev || !m->connected) return;
    sb_reset(&m->wbuf);
    milter_take_output(m->e, &m->wbuf);
    if (m->wbuf.len) bev_send(m->bev, m->wbuf.data, m->wbuf.len);
}

/* timer_arm - (re)start the stage's timeout. */
static void timer_arm(milter_conn *m)
{
    struct timeval tv = {.tv_sec = m->timeout ? m->timeout : 30, .tv_usec = 0};
    evtimer_add(m->timer, &tv);
}

/* deliver - the stage is answered: tell the caller (last thing of a loop callback: m may be freed). */
static void deliver(milter_conn *m)
{
    m->busy = false;
    evtimer_del(m->timer);
    if (milter_state(m->e) == MILTER_ES_FAILED) conn_drop(m);
    milter_reply r = milter_reply_get(m->e);
    if (!m->ready && r.action == MILTER_CONTINUE) {
        uint32_t act, proto;
        milter_negotiated(m->e, &act, &proto);
        log_debug(m->log_id, "milter_ready", "milter=%s actions=0x%x proto=0x%x", m->peer, act, proto);
        m->ready = true;
    }
    milter_cb cb = m->cb;
    cb(m->arg, &r);
}

/* after_engine - act on the engine's state after a stage call or a feed: write, wait or answer. */
static void after_engine(milter_conn *m, bool from_loop)
{
    enum milter_estate st = milter_state(m->e);
    if (st == MILTER_ES_FAILED) {
        milter_reply r = milter_reply_get(m->e);
        conn_failed(m, r.reason);
    } else {
        flush(m);
    }
    if (st == MILTER_ES_WAIT) {
        if (!m->busy) timer_arm(m);
        m->busy = true;
        return;
    }
    if (from_loop) {
        if (m->busy) deliver(m);
        return;
    }
    m->busy = true;
    struct timeval zero = {0, 0};
    evtimer_add(m->ev_done, &zero);
}

/* on_done - an answer that needed no word from the milter. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    deliver(arg);
}

/* on_timeout - the stage took too long. */
static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    milter_conn *m = arg;
    (void)fd, (void)what;
    conn_failed(m, m->connected ? "timeout" : "connect timeout");
    if (m->busy) deliver(m);
}

/* ack_now - acknowledge what arrived at once (TCP_QUICKACK) while more of a reply is due.
 *
 * A milter answers the end of the message with its modification packets and then the final
 * reply, each a small write; libmilter does not set TCP_NODELAY, so Nagle holds the final reply
 * until the modifications are acknowledged, and Linux delays that ACK by 40 ms: every signed
 * message would wait 40 ms. The option is not sticky, so it is set after each such read. */
static void ack_now(milter_conn *m)
{
    int one = 1;
    if (m->tcp && m->bev) (void)setsockopt(bufferevent_getfd(m->bev), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

/* on_read - everything that arrived goes to the engine. */
static void on_read(struct bufferevent *bev, void *arg)
{
    milter_conn *m = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    bool progress = n && milter_feed(m->e, evbuffer_pullup(in, -1), n);
    evbuffer_drain(in, n);
    if (m->busy && milter_state(m->e) == MILTER_ES_WAIT) ack_now(m); /* part of a reply: the rest may wait for our ACK */
    if (progress && milter_state(m->e) == MILTER_ES_WAIT) timer_arm(m); /* progress, or the next step of the message */
    if (!m->busy) { /* bytes between stages: only garbage can arrive then, and the engine said so */
        if (milter_state(m->e) == MILTER_ES_FAILED) conn_failed(m, milter_reply_get(m->e).reason);
        return;
    }
    after_engine(m, true);
}

/* on_event - connected, EOF, error. */
static void on_event(struct bufferevent *bev, short what, void *arg)
{
    milter_conn *m = arg;
    (void)bev;
    if (m->in_connect) {
        m->sync_what = what;
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        m->connected = true;
        bufferevent_enable(m->bev, EV_READ);
        flush(m);
        return;
    }
    char why[128];
    int err = errno;
    if (what & BEV_EVENT_EOF) snprintf(why, sizeof why, "connection closed by the milter");
    else snprintf(why, sizeof why, "%s: %s", m->connected ? "connection error" : "connect failed", strerror(err ? err : ECONNREFUSED));
    conn_failed(m, why);
    if (m->busy) deliver(m);
}

/* target_addr - the socket address of t; 0 if t names none we can use. */
static socklen_t target_addr(const scan_target *t, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (t->unix_path) {
        struct sockaddr_un *su = (struct sockaddr_un *)ss;
        if (strlen(t->unix_path) >= sizeof su->sun_path) return 0;
        su->sun_family = AF_UNIX;
        strcpy(su->sun_path, t->unix_path);
        return sizeof *su;
    }
    if (!t->host || !t->port || t->port > 65535) return 0;
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, t->host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)t->port);
        return sizeof *s4;
    }
    if (inet_pton(AF_INET6, t->host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)t->port);
        return sizeof *s6;
    }
    return 0;
}

/* milter_conn_open - connect and negotiate. */
milter_conn *milter_conn_open(struct event_base *base, const scan_target *t, const char *log_id, milter_cb cb,
                              void *arg)
{
    milter_conn *m = xcalloc(1, sizeof *m);
    m->base = base;
    m->e = milter_new(0, 0);
    m->timer = evtimer_new(base, on_timeout, m);
    m->ev_done = evtimer_new(base, on_done, m);
    if (!m->timer || !m->ev_done) abort();
    m->timeout = t->timeout;
    m->cb = cb;
    m->arg = arg;
    m->log_id = xstrdup(log_id ? log_id : "-");
    m->peer = t->unix_path ? xstrdup(t->unix_path) : xasprintf("%s:%u", t->host ? t->host : "?", t->port);
    sb_init(&m->wbuf);
    struct sockaddr_storage ss;
    socklen_t len = target_addr(t, &ss);
    m->busy = true;
    timer_arm(m);
    if (!len) {
        conn_failed(m, "bad milter address");
        after_engine(m, false);
        return m;
    }
    m->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!m->bev) abort();
    bufferevent_setcb(m->bev, on_read, NULL, on_event, m);
    m->in_connect = true;
    errno = 0;
    int rc = bufferevent_socket_connect(m->bev, (struct sockaddr *)&ss, (int)len);
    int err = errno;
    m->in_connect = false;
    m->tcp = ss.ss_family != AF_UNIX;
    if (m->tcp && rc == 0) { /* each stage is one request awaiting its reply: never hold a write back */
        int one = 1;
        (void)setsockopt(bufferevent_getfd(m->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (m->sync_what & BEV_EVENT_CONNECTED) { /* a Unix socket may connect at once */
        m->connected = true;
        bufferevent_enable(m->bev, EV_READ);
        flush(m);
    } else if (rc != 0 || (m->sync_what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))) {
        char *why = xasprintf("connect failed: %s", strerror(err ? err : ECONNREFUSED));
        conn_failed(m, why);
        free(why);
        after_engine(m, false);
    }
    return m;
}

/* stage_begin - take the stage's callback; a stage while another is due is a caller bug. */
static void stage_begin(milter_conn *m, milter_cb cb, void *arg)
{
    if (m->busy) {
        log_error(m->log_id, "milter_misuse", "milter=%s a stage started before the previous one was answered",
                  m->peer);
        abort();
    }
    m->cb = cb;
    m->arg = arg;
}

/* milter_conn_connect - SMFIC_CONNECT. */
void milter_conn_connect(milter_conn *m, const char *hostname, const char *ip, unsigned port, const milter_macro *mac,
                         size_t n_mac, milter_cb cb, void *arg)
{
    stage_begin(m, cb, arg);
    unsigned char buf[sizeof(struct in6_addr)];
    char fam = !ip ? 'U' : inet_pton(AF_INET, ip, buf) == 1 ? '4' : inet_pton(AF_INET6, ip, buf) == 1 ? '6' : 'U';
    milter_connect(m->e, hostname, fam, port, ip, mac, n_mac);
    after_engine(m, false);
}

/* milter_conn_helo - SMFIC_HELO. */
void milter_conn_helo(milter_conn *m, const char *helo, const milter_macro *mac, size_t n_mac, milter_cb cb, void *arg)
{
    stage_begin(m, cb, arg);
    milter_helo(m->e, helo, mac, n_mac);
    after_engine(m, false);
}

/* milter_conn_mail - SMFIC_MAIL. */
void milter_conn_mail(milter_conn *m, const char *sender, const char *const *args, size_t n_args,
                      const milter_macro *mac, size_t n_mac, milter_cb cb, void *arg)
{
    stage_begin(m, cb, arg);
    milter_mail(m->e, sender, args, n_args, mac, n_mac);
    after_engine(m, false);
}

/* milter_conn_rcpt - SMFIC_RCPT. */
void milter_conn_rcpt(milter_conn *m, const char *rcpt, const char *const *args, size_t n_args,
                      const milter_macro *mac, size_t n_mac, milter_cb cb, void *arg)
{
    stage_begin(m, cb, arg);
    milter_rcpt(m->e, rcpt, args, n_args, mac, n_mac);
    after_engine(m, false);
}

/* milter_conn_message - the message stage. */
void milter_conn_message(milter_conn *m, const char *msg, size_t len, const milter_macro *mac_data, size_t n_data,
                         const milter_macro *mac_eoh, size_t n_eoh, const milter_macro *mac_eom, size_t n_eom,
                         milter_cb cb, void *arg)
{
    stage_begin(m, cb, arg);
    milter_message(m->e, msg, len, mac_data, n_data, mac_eoh, n_eoh, mac_eom, n_eom);
    after_engine(m, false);
}

/* milter_conn_abort - SMFIC_ABORT between stages. */
void milter_conn_abort(milter_conn *m)
{
    if (m->busy || milter_state(m->e) != MILTER_ES_READY) return;
    milter_abort(m->e);
    flush(m);
}

/* milter_conn_negotiated - what the negotiation settled. */
void milter_conn_negotiated(const milter_conn *m, uint32_t *actions, uint32_t *proto)
{
    milter_negotiated(m->e, actions, proto);
}

/* milter_conn_close - QUIT and free. */
void milter_conn_close(milter_conn *m)
{
    if (!m) return;
    if (m->bev && m->connected && milter_state(m->e) == MILTER_ES_READY) {
        milter_quit(m->e);
        flush(m);
    }
    if (m->bev) bufferevent_free(m->bev);
    event_free(m->timer);
    event_free(m->ev_done);
    milter_free(m->e);
    sb_free(&m->wbuf);
    free(m->peer);
    free(m->log_id);
    free(m);
}
