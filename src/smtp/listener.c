/*
 * listener.c - dispatcher services, connection I/O and session policy (see listener.h).
 */
#include "smtp/listener.h"
#include "core/bev.h"
#include "conf/conf.h"
#include "core/log.h"
#include "dir/dir.h"
#include "queue/enqueue.h"
#include "queue/store.h"
#include "rewrite/rewrite.h"
#include "rewrite/mapping.h"
#include "rewrite/route.h"
#include "smtp/server.h"
#include "smtp/access.h"
#include "smtp/deadline.h"
#include "core/tls.h"

#include <crypt.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct conn conn;

struct listener {
    sl_ctx *ctx;
    struct evconnlistener **evls;
    char **svc_channel;
    char **svc_name;   /* service of each listening socket */
    size_t n;
    conn *conns;
    int nconns;
    unsigned long next_sess;
    bool closing;
};

struct conn {
    conn *prev, *next;
    listener *l;
    struct bufferevent *bev;
    smtp_sess *sess;
    sl_conf *conf;
    enq_msg *pending; /* message being committed */
    struct event *greet_timer; /* pending greeting (greeting_delay) */
    struct event *delay_timer; /* replies held back (failed AUTH) */
    struct event *linger;      /* waiting for the last reply to leave before closing */
    struct event *dl_timer;    /* session_timeout and min_data_rate checks */
    smtp_deadline dl;
    int linger_ticks;
    bool dead;        /* connection gone while a commit was pending */
    bool handshaking; /* TLS handshake in progress */
    bool tls_shut;    /* close_notify sent */
    char *svc;        /* service name */
    char ip[64];
    char server_ip[64];
    access_conn ac;   /* for access-table probes */
};

static const smtp_server_ops ops;

static void conn_free(conn *c)
{
    listener *l = c->l;
    if (c->prev) c->prev->next = c->next;
    else l->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    l->nconns--;
    if (c->bev) bufferevent_free(c->bev);
    if (c->greet_timer) event_free(c->greet_timer);
    if (c->delay_timer) event_free(c->delay_timer);
    if (c->linger) event_free(c->linger);
    if (c->dl_timer) event_free(c->dl_timer);
    free(c->svc);
    smtp_sess_free(c->sess);
    ctx_conf_put(l->ctx, c->conf);
    free(c);
}

/* conn_flush - write queued replies; close once written when the session ends. */
static void conn_delay_done(evutil_socket_t fd, short what, void *arg);

/* conn_out_pending - bytes not yet handed to the kernel (a TLS filter keeps some in the socket layer). */
static size_t conn_out_pending(conn *c)
{
    size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
    struct bufferevent *under = bufferevent_get_underlying(c->bev);
    if (under) n += evbuffer_get_length(bufferevent_get_output(under));
    return n;
}

static void conn_linger(evutil_socket_t fd, short what, void *arg);

/* conn_tls_shutdown - a TLS session we end: queue its close_notify (once); true if it was queued now.
 * Without it a client cannot tell our close from a truncation ("unexpected EOF"). */
static bool conn_tls_shutdown(conn *c)
{
    SSL *ssl = c->bev ? bufferevent_openssl_get_ssl(c->bev) : NULL;
    if (!ssl || c->handshaking || c->tls_shut) return false;
    c->tls_shut = true;
    SSL_shutdown(ssl);
    ERR_clear_error();
    return true;
}

/* conn_close_when_sent - free now if everything was sent, else look again shortly (bounded). */
static bool conn_close_when_sent(conn *c)
{
    if (c->pending) return false;
    bool sent = conn_out_pending(c) == 0;
    if (sent && conn_tls_shutdown(c)) sent = conn_out_pending(c) == 0; /* the close_notify must leave too */
    if (sent || c->linger_ticks > 100) {
        conn_free(c);
        return true;
    }
    if (!c->linger) c->linger = evtimer_new(c->l->ctx->base, conn_linger, c);
    struct timeval tv = {0, 20000};
    evtimer_add(c->linger, &tv);
    return false;
}

static void conn_linger(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    c->linger_ticks++;
    conn_close_when_sent(c);
}

/* conn_flush - returns true when the connection was freed (the caller must not touch c). */
static bool conn_flush(conn *c)
{
    smtp_sess *s = c->sess;
    if (s->reply_delay_ms && s->out.len) { /* hold the answer (and the session) back for a while */
        if (!c->delay_timer) c->delay_timer = evtimer_new(c->l->ctx->base, conn_delay_done, c);
        struct timeval tv = {s->reply_delay_ms / 1000, (s->reply_delay_ms % 1000) * 1000};
        s->reply_delay_ms = 0;
        bufferevent_disable(c->bev, EV_READ);
        evtimer_add(c->delay_timer, &tv);
        return false;
    }
    if (c->delay_timer && evtimer_pending(c->delay_timer, NULL)) return false;
    if (s->out.len) {
        bev_send(c->bev, s->out.data, s->out.len); /* now, unless the socket is full or TLS */
        sb_reset(&s->out);
    }
    if (s->closing) {
        bufferevent_disable(c->bev, EV_READ);
        return conn_close_when_sent(c);
    }
    return false;
}

/* conn_process - feed everything buffered to the session. */
static void conn_tls_start(conn *c);

static void conn_deadline_arm(conn *c);

static void conn_process(conn *c)
{
    if (c->handshaking || (c->delay_timer && evtimer_pending(c->delay_timer, NULL))) return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in);
    enum smtp_sess_state st = c->sess->state;
    if (len && st != SESS_WAIT_COMMIT && st != SESS_CLOSED && st != SESS_STARTTLS) {
        const char *p = (const char *)evbuffer_pullup(in, -1);
        bool was_data = smtp_sess_in_content(c->sess);
        size_t used = smtp_sess_feed(c->sess, p, len);
        evbuffer_drain(in, used);
        smtp_deadline_data(&c->dl, was_data, smtp_sess_in_content(c->sess), used, now_mono_ms());
        conn_deadline_arm(c);
    }
    if (conn_flush(c)) return;
    if (c->sess->state == SESS_STARTTLS && !c->handshaking) conn_tls_start(c);
}

static void conn_delay_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    if (!c->sess->closing) bufferevent_enable(c->bev, EV_READ);
    if (conn_flush(c)) return;
    if (!c->sess->closing) conn_process(c);
}

/* conn_deadline - session_timeout or min_data_rate: 421 and close when a limit ran out. */
static void conn_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn *c = arg;
    if (c->sess->closing) return;
    if (c->pending) { /* our commit is not the client's time: decide once it is answered */
        struct timeval tv = {1, 0};
        evtimer_add(c->dl_timer, &tv);
        return;
    }
    enum smtp_deadline_verdict v = smtp_deadline_check(&c->dl, now_mono_ms());
    if (v == SMTP_DEADLINE_OK) {
        conn_deadline_arm(c);
        return;
    }
    const char *reason = v == SMTP_DEADLINE_SESSION ? "session_timeout" : "slow_data";
    if (c->handshaking) { /* no reply can be sent in the middle of a TLS handshake */
        log_info(c->sess->id, "disconnect", "client=[%s] reason=%s", c->sess->client_ip, reason);
        conn_free(c);
        return;
    }
    smtp_sess_expire(c->sess, reason);
    conn_flush(c);
}

/* conn_deadline_arm - run conn_deadline when the deadline has something to decide next. */
static void conn_deadline_arm(conn *c)
{
    if (!c->dl_timer) c->dl_timer = evtimer_new(c->l->ctx->base, conn_deadline, c);
    int64_t ms = smtp_deadline_next(&c->dl) - now_mono_ms();
    if (ms < 0) ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->dl_timer, &tv);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn *c = arg;
    if (c->greet_timer) { /* the client spoke before our greeting */
        event_free(c->greet_timer);
        c->greet_timer = NULL;
        smtp_sess_pregreet(c->sess);
        conn_flush(c);
        return;
    }
    conn_process(c);
}

static void on_greet(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    event_free(c->greet_timer);
    c->greet_timer = NULL;
    smtp_sess_greet(c->sess);
    conn_flush(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    (void)bev;
    if (c->sess->closing) conn_close_when_sent(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;
    if ((what & BEV_EVENT_CONNECTED) && c->handshaking) {
        char info[96];
        tls_describe(bufferevent_openssl_get_ssl(bev), info, sizeof info);
        c->handshaking = false;
        smtp_sess_tls_started(c->sess, info);
        conn_process(c);
        return;
    }
    if (what & BEV_EVENT_ERROR && c->handshaking) {
        char err[256];
        tls_last_error(err, sizeof err);
        log_info(c->sess->id, "tls_failed", "client=[%s] error=\"%s\"", c->sess->client_ip, err);
    }
    if (what & BEV_EVENT_TIMEOUT) {
        smtp_sess_timeout(c->sess);
        conn_flush(c);
        return;
    }
    log_info(c->sess->id, "disconnect", "client=[%s]%s", c->sess->client_ip,
             c->sess->state == SESS_CLOSED ? "" : " reason=lost");
    if (c->pending) { /* the commit callback frees the connection */
        c->dead = true;
        bufferevent_free(c->bev);
        c->bev = NULL;
        return;
    }
    conn_free(c);
}

static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, (socklen_t)len);
        else inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    }
}

static const sl_service *service_by_name(const sl_conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->n_services; i++)
        if (str_ieq(conf->services[i].name, name)) return &conf->services[i];
    return NULL;
}

/* conn_limits - why a new connection of this client to this service is refused, or NULL. */
static const char *conn_limits(const listener *l, const sl_service *svc, const char *ip, bool internal)
{
    if (!svc) return NULL;
    unsigned total = 0, same = 0;
    for (const conn *o = l->conns; o; o = o->next) {
        if (!str_ieq(o->svc, svc->name)) continue;
        total++;
        if (!strcmp(o->ip, ip)) same++;
    }
    if (total >= svc->max_conns) return "Too many connections";
    if (same >= svc->max_per_client && !internal) return "Too many connections from your address";
    return NULL;
}

/* conn_tls_start - after "220 Ready to start TLS": drop what the client pipelined, then handshake. */
static void conn_tls_start(conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t junk = evbuffer_get_length(in);
    if (junk) {
        /* RFC 3207: nothing sent before the handshake may be acted upon (command injection) */
        log_info(c->sess->id, "tls_discarded", "client=[%s] bytes=%zu", c->sess->client_ip, junk);
        evbuffer_drain(in, junk);
    }
    SSL *ssl = SSL_new(c->l->ctx->tls_server);
    struct bufferevent *tb = bufferevent_openssl_filter_new(c->l->ctx->base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                            BEV_OPT_CLOSE_ON_FREE);
    c->bev = tb;
    c->handshaking = true;
    struct timeval idle = {c->conf->opt.idle_timeout ? c->conf->opt.idle_timeout : 300, 0};
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)evl;
    (void)salen;
    listener *l = arg;
    size_t svc = 0;
    while (svc < l->n && l->evls[svc] != evl) svc++;
    conn *c = xcalloc(1, sizeof *c);
    c->l = l;
    c->conf = ctx_conf_get(l->ctx);
    char ip[64], id[24];
    addr_text(sa, ip, sizeof ip);
    snprintf(id, sizeof id, "S%lu", ++l->next_sess);
    bool internal = conf_cidr_match(c->conf->opt.internal_networks, c->conf->opt.n_internal_networks, sa);
    c->sess = smtp_sess_new(c->conf, &ops, c, id, svc < l->n ? l->svc_channel[svc] : "tcp_local", ip, internal);
    c->sess->loop_token = l->ctx->loop_token;
    c->svc = xstrdup(svc < l->n ? l->svc_name[svc] : "");
    snprintf(c->ip, sizeof c->ip, "%s", ip);
    smtp_deadline_init(&c->dl, &c->conf->opt, now_mono_ms());
    const sl_service *service = service_by_name(c->conf, c->svc);
    enum svc_tls mode = service ? service->tls : SVC_TLS_NONE;
    bool have_tls = l->ctx->tls_server != NULL;
    c->sess->tls_offered = have_tls && (mode == SVC_TLS_STARTTLS || mode == SVC_TLS_REQUIRED);
    c->sess->tls_required = mode == SVC_TLS_REQUIRED;
    c->sess->auth_offered = true;
    c->sess->auth_plain = service && service->auth_plain;
    c->sess->auth_required = service && service->auth_required;
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    unsigned sport = 0;
    if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0) {
        addr_text((struct sockaddr *)&local, c->server_ip, sizeof c->server_ip);
        sport = local.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&local)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&local)->sin_port);
    }
    c->ac.server_ip = c->server_ip;
    c->ac.server_port = sport;
    c->ac.client_ip = c->ip;
    c->ac.client_port = sa->sa_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)sa)->sin6_port)
                                                  : ntohs(((struct sockaddr_in *)sa)->sin_port);
    const char *refuse = conn_limits(l, service, ip, internal);
    strbuf port_reply = {0};
    if (!refuse) {
        char *probe = access_port_probe(&c->ac);
        unsigned delay;
        access_verdict v = access_check(c->conf->mappings, "PORT_ACCESS", probe, "", 554,
                                        "Connection refused by access policy", &port_reply, &delay);
        if (v == ACCESS_REJECT || v == ACCESS_TEMP) refuse = "port_access";
        free(probe);
    }
    if (mode == SVC_TLS_IMPLICIT && have_tls && !refuse) {
        SSL *ssl = SSL_new(l->ctx->tls_server);
        c->bev = bufferevent_openssl_socket_new(l->ctx->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
        c->handshaking = true;
    } else {
        c->bev = bufferevent_socket_new(l->ctx->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    c->next = l->conns;
    if (l->conns) l->conns->prev = c;
    l->conns = c;
    l->nconns++;
    log_info(id, "connect", "client=[%s] channel=%s internal=%s", ip, c->sess->src_channel, internal ? "yes" : "no");
    struct timeval idle = {c->conf->opt.idle_timeout ? c->conf->opt.idle_timeout : 300, 0};
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    conn_deadline_arm(c);
    if (refuse) {
        if (port_reply.len) { /* PORT_ACCESS: its text, then the connection is closed */
            smtp_sess_reply(c->sess, "%s", port_reply.data);
            log_info(id, "reject", "client=[%s] cmd=connect table=PORT_ACCESS reply=\"%s\"", ip, port_reply.data);
        } else {
            smtp_sess_reply(c->sess, "421 4.7.0 %s %s, try again later", c->conf->opt.hostname, refuse);
            log_info(id, "reject", "client=[%s] cmd=connect reply=\"421 4.7.0 %s\"", ip, refuse);
        }
        sb_free(&port_reply);
        c->sess->closing = true;
        c->sess->state = SESS_CLOSED;
        conn_flush(c);
        return;
    }
    sb_free(&port_reply);
    if (c->conf->opt.greeting_delay_ms) {
        c->greet_timer = evtimer_new(l->ctx->base, on_greet, c);
        struct timeval tv = {c->conf->opt.greeting_delay_ms / 1000, (c->conf->opt.greeting_delay_ms % 1000) * 1000};
        evtimer_add(c->greet_timer, &tv);
        return;
    }
    smtp_sess_greet(c->sess);
    conn_flush(c);
}

/* ---- session policy ---- */

static void ops_new_id(void *ctx, char *buf, size_t len)
{
    conn *c = ctx;
    store_new_id(c->l->ctx->store, buf, len);
}

static void ops_date(void *ctx, char *buf, size_t len)
{
    (void)ctx;
    rfc5322_date(now_unix(), buf, len);
}

/* sess_flags - mapping input flags: T (TLS), A (authenticated), E (ESMTP). */
static void sess_flags(const smtp_sess *s, char *buf)
{
    char *p = buf;
    if (s->tls_active) *p++ = 'T';
    if (s->auth_user) *p++ = 'A';
    if (s->esmtp) *p++ = 'E';
    *p = '\0';
}

static int ops_mail(void *ctx, smtp_sess *s, const smtp_cmd *cmd, strbuf *reply)
{
    conn *c = ctx;
    char flags[8];
    sess_flags(s, flags);
    char *from = cmd->path.is_null ? xstrdup("") : smtp_addr_format(&cmd->path);
    char *probe = access_from_probe(&c->ac, s->src_channel, from, s->auth_user);
    unsigned delay;
    access_verdict v = access_check(s->conf->mappings, "FROM_ACCESS", probe, flags, 550, "Sender address rejected",
                                    reply, &delay);
    s->reply_delay_ms = delay;
    free(probe);
    free(from);
    return v == ACCESS_REJECT ? 550 : v == ACCESS_TEMP ? 450 : 250;
}

/* rcpt_access - SEND_ACCESS then MAIL_ACCESS (orig: the ORIG_ variants) for one routed address. */
static access_verdict rcpt_access(conn *c, smtp_sess *s, bool orig, const char *dst, const char *to, strbuf *reply)
{
    char flags[8];
    sess_flags(s, flags);
    unsigned delay;
    char *p1 = access_send_probe(s->src_channel, s->sender ? s->sender : "", dst, to);
    access_verdict v = access_check(s->conf->mappings, orig ? "ORIG_SEND_ACCESS" : "SEND_ACCESS", p1, flags, 550,
                                    "Recipient address rejected by access policy", reply, &delay);
    free(p1);
    if (delay) s->reply_delay_ms = delay;
    if (v == ACCESS_REJECT || v == ACCESS_TEMP) return v;
    char *p2 = access_mail_probe(&c->ac, s->src_channel, s->sender ? s->sender : "", dst, to);
    access_verdict v2 = access_check(s->conf->mappings, orig ? "ORIG_MAIL_ACCESS" : "MAIL_ACCESS", p2, flags, 550,
                                     "Recipient address rejected by access policy", reply, &delay);
    free(p2);
    if (delay) s->reply_delay_ms = delay;
    return v2 != ACCESS_NONE ? v2 : v;
}

/* route_one - rewrite one final address and add it to the transaction. */
static int route_one(smtp_sess *s, const char *addr, const smtp_cmd *cmd, const char *orig, strbuf *reply)
{
    rw_result rw;
    memset(&rw, 0, sizeof rw);
    sl_result rc = rewrite_address(s->conf, addr, s->src_channel, &rw, NULL);
    if (rc != SL_OK) {
        bool perm = rc == SL_PERM;
        const char *st = rw.status[0] ? rw.status : perm ? "5.1.2" : "4.4.3";
        sb_printf(reply, "%s %s <%s>: Recipient address rejected: %s", perm ? "550" : "451", st, orig,
                  rw.error ? rw.error : "cannot route");
        rw_result_free(&rw);
        return perm ? 550 : 451;
    }
    access_verdict v = rcpt_access(s->ops_ctx, s, false, rw.channel->name, rw.addr, reply);
    if (v == ACCESS_REJECT || v == ACCESS_TEMP) {
        rw_result_free(&rw);
        return v == ACCESS_REJECT ? 550 : 450;
    }
    char *dest = route_dest_host(&rw);
    smtp_sess_add_rcpt(s, rw.addr, orig, cmd->orcpt, rw.channel->name, dest, cmd->notify);
    free(dest);
    rw_result_free(&rw);
    return 250;
}

static int ops_rcpt(void *ctx, smtp_sess *s, const smtp_cmd *cmd, strbuf *reply)
{
    const sl_conf *conf = s->conf;
    const sl_directory *dir = conf->directory;
    smtp_addr a = cmd->path;
    char *addr;
    if (!a.domain || !a.domain[0]) { /* RCPT TO:<Postmaster> */
        const char *d = dir_first_domain(dir);
        addr = xasprintf("postmaster@%s", d ? d : conf->opt.hostname);
    } else {
        addr = smtp_addr_format(&a);
    }
    char *domain = strrchr(addr, '@') + 1;
    int code = 250;
    /* ORIG_SEND_ACCESS / ORIG_MAIL_ACCESS: the address as given, with the channel it routes to */
    access_verdict ov = ACCESS_NONE;
    if (mappings_has_table(conf->mappings, "ORIG_SEND_ACCESS") || mappings_has_table(conf->mappings, "ORIG_MAIL_ACCESS")) {
        rw_result orw;
        memset(&orw, 0, sizeof orw);
        const char *odst = rewrite_address(conf, addr, s->src_channel, &orw, NULL) == SL_OK ? orw.channel->name : "";
        ov = rcpt_access(ctx, s, true, odst, addr, reply);
        rw_result_free(&orw);
    }
    if (ov == ACCESS_REJECT || ov == ACCESS_TEMP) {
        code = ov == ACCESS_REJECT ? 550 : 450;
    } else if (dir_domain_is_local(dir, domain)) {
        strvec targets = {0};
        char err[256] = "";
        sl_result rc = dir_expand(dir, addr, &targets, err, sizeof err);
        bool postmaster = str_has_prefix_ci(addr, "postmaster@");
        if (rc == SL_PERM && postmaster) {
            sv_push(&targets, addr);
            rc = SL_OK;
        }
        if (rc == SL_TEMP) {
            sb_printf(reply, "451 4.3.0 <%s>: Recipient address lookup failed, try again later", addr);
            code = 451;
        } else if (rc != SL_OK) {
            bool disabled = strstr(err, "disabled") != NULL;
            sb_printf(reply, "550 %s <%s>: Recipient address rejected: %s", disabled ? "5.2.1" : "5.1.1", addr,
                      disabled ? "mailbox disabled" : "User unknown in local recipient table");
            code = 550;
        }
        size_t before = s->n_rcpts;
        for (size_t i = 0; code == 250 && i < targets.n; i++) code = route_one(s, targets.v[i], cmd, addr, reply);
        if (code != 250) smtp_sess_truncate_rcpts(s, before); /* all or nothing */
        sv_free(&targets);
    } else if (!s->client_internal && !s->auth_user && ov != ACCESS_ALLOW) {
        /* no open relay: outsiders reach local domains only, unless an access table says $Y */
        sb_printf(reply, "550 5.7.1 <%s>: Relay access denied", addr);
        code = 550;
    } else {
        code = route_one(s, addr, cmd, addr, reply);
    }
    if (code == 250) sb_printf(reply, "250 2.1.5 Ok");
    log_info(s->id, code == 250 ? "rcpt" : "rcpt_rejected", "to=<%s> code=%d", addr, code);
    free(addr);
    return code;
}

/* password_ok - pass against a userPassword value in a crypt(3) format ("{CRYPT}$6$..." or "$6$..."). */
static bool password_ok(const char *stored, const char *pass)
{
    if (!stored) return false;
    if (str_has_prefix_ci(stored, "{CRYPT}")) stored += 7;
    if (stored[0] == '{' || !stored[0]) return false; /* other schemes (plain text, SSHA) are not accepted */
    struct crypt_data *cd = xcalloc(1, sizeof *cd);
    const char *h = crypt_r(pass, stored, cd);
    bool ok = h && h[0] != '*' && strcmp(h, stored) == 0;
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return ok;
}

static sl_result ops_auth(void *ctx, smtp_sess *s, const char *user, const char *pass)
{
    (void)ctx;
    const dir_entry *e = dir_lookup(s->conf->directory, user);
    if (!e || e->kind != DIR_USER || (e->status && !str_ieq(e->status, "active"))) {
        /* compare anyway so that unknown users cost the same time */
        password_ok("$6$saltsaltsaltsalt$", pass);
        return SL_PERM;
    }
    if (!password_ok(e->password, pass)) return SL_PERM;
    const sl_channel *src = conf_channel_by_name(s->conf, s->src_channel);
    if (src && src->saslswitchchannel) {
        log_info(s->id, "channel_switch", "from=%s to=%s user=<%s>", s->src_channel, src->saslswitchchannel, user);
        free(s->src_channel);
        s->src_channel = xstrdup(src->saslswitchchannel);
    }
    return SL_OK;
}

static void commit_done(void *arg, sl_result res, const char *err)
{
    conn *c = arg;
    enq_msg *m = c->pending;
    c->pending = NULL;
    if (res == SL_OK)
        log_info(m->id, "accepted", "session=%s client=[%s] from=<%s> size=%zu nrcpt=%zu", c->sess->id,
                 c->sess->client_ip, m->sender, m->data_len, m->n_rcpts);
    enqueue_msg_free(m);
    free(m);
    if (c->dead) { /* client left: the message is queued (or not) all the same */
        conn_free(c);
        return;
    }
    smtp_sess_commit_done(c->sess, res, err);
    conn_process(c);
}

static void ops_commit(void *ctx, smtp_sess *s)
{
    conn *c = ctx;
    enq_msg *m = xcalloc(1, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", s->qid);
    m->sender = xstrdup(s->sender);
    m->envid = xstrdup(s->envid);
    m->ret = (uint8_t)s->ret;
    m->body = (uint8_t)s->body;
    m->smtputf8 = s->smtputf8;
    m->arrival = now_unix();
    m->src_channel = xstrdup(s->src_channel);
    m->client = xasprintf("%s [%s]", s->helo ? s->helo : "unknown", s->client_ip);
    for (size_t i = 0; i < s->n_rcpts; i++) {
        smtp_rcpt *r = &s->rcpts[i];
        bool dup = false; /* one copy per final address, as with alias and group overlap */
        for (size_t k = 0; k < i && !dup; k++)
            dup = str_ieq(s->rcpts[k].addr, r->addr) && str_ieq(s->rcpts[k].channel, r->channel);
        if (!dup) enqueue_add_rcpt(m, r->addr, r->orig, r->orcpt, r->channel, r->host, r->notify);
    }
    m->data = s->data.data;
    m->data_len = s->data.len;
    c->pending = m;
    enqueue_submit(c->l->ctx, m, commit_done, c);
}

static const smtp_server_ops ops = {ops_rcpt, ops_commit, ops_new_id, ops_date, ops_mail, ops_auth};

/* ---- services ---- */

static struct evconnlistener *bind_one(listener *l, const char *addr, const char *port, int backlog, char *err,
                                       size_t errlen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    unsigned p = (unsigned)atoi(port);
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (void *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)p);
        if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1) goto bad;
        sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (void *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)p);
        if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1) goto bad;
        sl = sizeof *s4;
    }
    l->ctx->listen_addrs = xrealloc(l->ctx->listen_addrs, (l->ctx->n_listen + 1) * sizeof *l->ctx->listen_addrs);
    l->ctx->listen_addrs[l->ctx->n_listen++] = ss;
    struct evconnlistener *evl = evconnlistener_new_bind(
        l->ctx->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, backlog,
        (struct sockaddr *)&ss, (int)sl);
    if (!evl) snprintf(err, errlen, "cannot listen on %s port %s: %s", addr, port, strerror(errno));
    return evl;
bad:
    snprintf(err, errlen, "bad interface address %s", addr);
    return NULL;
}

listener *listener_open(sl_ctx *ctx, char *err, size_t errlen)
{
    listener *l = xcalloc(1, sizeof *l);
    l->ctx = ctx;
    const sl_conf *c = ctx->conf;
    for (size_t i = 0; i < c->n_services; i++) {
        const sl_service *svc = &c->services[i];
        size_t naddr = svc->addresses.n ? svc->addresses.n : 1;
        for (size_t a = 0; a < naddr; a++) {
            const char *addr = svc->addresses.n ? svc->addresses.v[a] : "0.0.0.0";
            for (size_t p = 0; p < svc->ports.n; p++) {
                struct evconnlistener *evl = bind_one(l, addr, svc->ports.v[p], svc->backlog ? (int)svc->backlog : 511, err, errlen);
                if (!evl) {
                    listener_free(l);
                    return NULL;
                }
                l->evls = xrealloc(l->evls, (l->n + 1) * sizeof *l->evls);
                l->svc_channel = xrealloc(l->svc_channel, (l->n + 1) * sizeof *l->svc_channel);
                l->svc_name = xrealloc(l->svc_name, (l->n + 1) * sizeof *l->svc_name);
                l->svc_name[l->n] = xstrdup(svc->name);
                l->evls[l->n] = evl;
                l->svc_channel[l->n] = xstrdup(svc->channel ? svc->channel : "tcp_local");
                l->n++;
                log_info(NULL, "listen", "service=%s address=%s port=%s channel=%s", svc->name, addr,
                         svc->ports.v[p], svc->channel ? svc->channel : "tcp_local");
            }
        }
    }
    return l;
}

int listener_sessions(const listener *l)
{
    return l->nconns;
}

void listener_close(listener *l)
{
    if (!l || l->closing) return;
    l->closing = true;
    for (size_t i = 0; i < l->n; i++) evconnlistener_disable(l->evls[i]);
    conn *c = l->conns;
    while (c) {
        conn *next = c->next;
        if (!c->pending && c->bev && !c->sess->closing) { /* a closing session has had its last word */
            smtp_sess_shutdown(c->sess);
            conn_flush(c);
        }
        c = next;
    }
}

void listener_free(listener *l)
{
    if (!l) return;
    while (l->conns) {
        conn *c = l->conns;
        if (c->pending) { /* the store callback will never run now: abandon it */
            enqueue_msg_free(c->pending);
            free(c->pending);
            c->pending = NULL;
        }
        conn_free(c);
    }
    for (size_t i = 0; i < l->n; i++) {
        evconnlistener_free(l->evls[i]);
        free(l->svc_channel[i]);
        free(l->svc_name[i]);
    }
    free(l->evls);
    free(l->svc_channel);
    free(l->svc_name);
    free(l);
}
