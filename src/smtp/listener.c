/*
 * listener.c - dispatcher services, connection I/O, TLS and connection limits (see listener.h).
 */
#include "smtp/listener.h"
#include "conf/conf.h"
#include "core/bev.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/tls.h"
#include "smtp/deadline.h"
#include "smtp/server.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <ctype.h>
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
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A TLS bufferevent may report an error from inside bufferevent_write (its write is attempted at
 * once); deferred callbacks make it report from the loop instead, never in the middle of
 * conn_flush, which would then use a freed connection. */
#define TLS_BEV_OPTS (BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)

typedef struct conn conn;

/* One listening socket of a dispatcher service. */
typedef struct {
    struct evconnlistener *evl;
    char *svc, *channel; /* its service and that service's source channel */
    char *addr, *port;   /* as dispatcher.cnf gives them */
    struct sockaddr_storage ss;
} lsock;

struct listener {
    sl_ctx *ctx;
    const smtp_server_ops *ops; /* the decider's (policy) */
    void *ops_arg;
    lsock *socks;
    size_t n;
    struct evconnlistener *local_evl; /* the local submission socket, or NULL */
    char *local_path, *local_channel;
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
    struct event *greet_timer; /* pending greeting (greeting_delay) */
    struct event *delay_timer; /* replies held back (failed AUTH) */
    struct event *linger;      /* waiting for the last reply to leave before closing */
    struct event *dl_timer;    /* session_timeout and min_data_rate checks */
    smtp_deadline dl;
    int linger_ticks;
    bool dead;        /* connection gone while a decision or commit was pending */
    bool handshaking; /* TLS handshake in progress */
    bool said_bye;    /* the disconnect line is logged */
    bool tls_shut;    /* close_notify sent */
    char *svc;        /* service name */
    char ip[64];
    char server_ip[64];
};

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
    if (smtp_sess_waiting(c->sess)) return false;
    bool sent = conn_out_pending(c) == 0;
    if (sent && conn_tls_shutdown(c)) sent = conn_out_pending(c) == 0; /* the close_notify must leave too */
    if (sent || c->linger_ticks > 100) {
        if (!c->said_bye) /* we closed first (after QUIT or a refusal): one disconnect line all the same */
            log_info(smtp_sess_id(c->sess), "disconnect", "client=[%s]", c->ip);
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
    unsigned delay = smtp_sess_take_delay(s);
    if (delay) { /* hold the answer (and the session) back for a while */
        if (!c->delay_timer) c->delay_timer = evtimer_new(c->l->ctx->base, conn_delay_done, c);
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
        bufferevent_disable(c->bev, EV_READ);
        evtimer_add(c->delay_timer, &tv);
        return false;
    }
    if (c->delay_timer && evtimer_pending(c->delay_timer, NULL)) return false;
    size_t n;
    const char *out = smtp_sess_output(s, &n);
    if (out) {
        bev_send(c->bev, out, n); /* now, unless the socket is full or TLS */
        smtp_sess_output_clear(s);
    }
    if (smtp_sess_closing(s)) {
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
    if (len && smtp_sess_accepts_input(c->sess)) {
        const char *p = (const char *)evbuffer_pullup(in, -1);
        bool was_data = smtp_sess_in_content(c->sess);
        size_t used = smtp_sess_feed(c->sess, p, len);
        evbuffer_drain(in, used);
        smtp_deadline_data(&c->dl, was_data, smtp_sess_in_content(c->sess), used, now_mono_ms());
        conn_deadline_arm(c);
    }
    if (conn_flush(c)) return;
    if (smtp_sess_wants_tls(c->sess) && !c->handshaking) conn_tls_start(c);
}

/* conn_resume - an answer that came later let the session go on (or the client left meanwhile). */
static void conn_resume(void *arg)
{
    conn *c = arg;
    if (c->dead) {
        conn_free(c);
        return;
    }
    conn_process(c);
}

static void conn_delay_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    if (!smtp_sess_closing(c->sess)) bufferevent_enable(c->bev, EV_READ);
    if (conn_flush(c)) return;
    if (!smtp_sess_closing(c->sess)) conn_process(c);
}

/* conn_deadline - session_timeout or min_data_rate: 421 and close when a limit ran out. */
static void conn_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn *c = arg;
    if (smtp_sess_closing(c->sess)) return;
    if (smtp_sess_waiting(c->sess)) { /* our decision or commit is not the client's time */
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
        log_info(smtp_sess_id(c->sess), "disconnect", "client=[%s] reason=%s", c->ip, reason);
        c->said_bye = true;
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
    if (smtp_sess_closing(c->sess)) conn_close_when_sent(c);
}

/* conn_log_sni - the server name a TLS client asked for, and whether a tls_sni_file certificate was presented. */
static void conn_log_sni(const conn *c, SSL *ssl)
{
    bool matched = false;
    const char *name = tls_server_name(ssl, &matched);
    if (!name) return;
    char safe[256];
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < sizeof safe; p++) /* peer text: host name characters only */
        safe[n++] = (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_') ? *p : '?';
    safe[n] = '\0';
    log_info(smtp_sess_id(c->sess), "tls_sni", "client=[%s] name=%s certificate=%s", c->ip, safe,
             matched ? "by_name" : "default");
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;
    if ((what & BEV_EVENT_CONNECTED) && c->handshaking) {
        char info[96];
        tls_describe(bufferevent_openssl_get_ssl(bev), info, sizeof info);
        c->handshaking = false;
        smtp_sess_tls_started(c->sess, info);
        conn_log_sni(c, bufferevent_openssl_get_ssl(bev));
        conn_process(c);
        return;
    }
    if (what & BEV_EVENT_ERROR && c->handshaking) {
        char err[256];
        tls_last_error(err, sizeof err);
        log_info(smtp_sess_id(c->sess), "tls_failed", "client=[%s] error=\"%s\"", c->ip, err);
    }
    if (what & BEV_EVENT_TIMEOUT) {
        smtp_sess_timeout(c->sess);
        conn_flush(c);
        return;
    }
    log_info(smtp_sess_id(c->sess), "disconnect", "client=[%s]%s", c->ip, smtp_sess_closed(c->sess) ? "" : " reason=lost");
    c->said_bye = true;
    if (smtp_sess_waiting(c->sess)) { /* the answer's resume frees the connection */
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

/* conn_count - connections open on service svc, and of them from ip (the decider applies the limits). */
static void conn_count(const listener *l, const char *svc, const char *ip, unsigned *total, unsigned *same)
{
    *total = *same = 0;
    for (const conn *o = l->conns; o; o = o->next) {
        if (!str_ieq(o->svc, svc)) continue;
        (*total)++;
        if (!strcmp(o->ip, ip)) (*same)++;
    }
}

/* conn_tls_start - after "220 Ready to start TLS": drop what the client pipelined, then handshake. */
static void conn_tls_start(conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t junk = evbuffer_get_length(in);
    if (junk) {
        /* RFC 3207: nothing sent before the handshake may be acted upon (command injection) */
        log_info(smtp_sess_id(c->sess), "tls_discarded", "client=[%s] bytes=%zu", c->ip, junk);
        evbuffer_drain(in, junk);
    }
    SSL *ssl = SSL_new(c->l->ctx->tls_server);
    struct bufferevent *tb = bufferevent_openssl_filter_new(c->l->ctx->base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                            TLS_BEV_OPTS);
    c->bev = tb;
    c->handshaking = true;
    struct timeval idle = {c->conf->opt.idle_timeout ? c->conf->opt.idle_timeout : 300, 0};
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* sock_port - the port of a socket address. */
static unsigned sock_port(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port)
                                     : ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
}

/* Where a connection came from: a dispatcher service, or a local submission by uid. */
typedef struct {
    const char *svc;     /* service name ("local" for local submissions) */
    const char *channel; /* its source channel */
    bool local;
    unsigned uid;
} conn_origin;

/* conn_session - the SMTP session of a new connection, with the facts of its service. */
static void conn_session(conn *c, const sl_service *service, const conn_origin *o, const struct sockaddr *sa,
                         evutil_socket_t fd, const char *id)
{
    listener *l = c->l;
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    unsigned sport = 0;
    if (!o->local && getsockname(fd, (struct sockaddr *)&local, &llen) == 0) {
        addr_text((struct sockaddr *)&local, c->server_ip, sizeof c->server_ip);
        sport = sock_port((struct sockaddr *)&local);
    }
    enum svc_tls mode = service ? service->tls : SVC_TLS_NONE;
    bool have_tls = l->ctx->tls_server != NULL && !o->local;
    smtp_sess_info info = {
        .id = id, .service = c->svc, .src_channel = o->channel, .client_ip = c->ip, .server_ip = c->server_ip,
        .client_port = o->local ? 0 : sock_port(sa), .server_port = sport,
        .client_internal = o->local || conf_cidr_match(c->conf->opt.internal_networks,
                                                       c->conf->opt.n_internal_networks, sa),
        .loop_token = l->ctx->loop_token,
        .tls_offered = have_tls && (mode == SVC_TLS_STARTTLS || mode == SVC_TLS_REQUIRED),
        .tls_required = mode == SVC_TLS_REQUIRED, .auth_offered = !o->local,
        .auth_plain = service && service->auth_plain, .auth_required = service && service->auth_required,
        .local = o->local, .local_uid = o->uid,
    };
    conn_count(l, c->svc, c->ip, &info.conns_service, &info.conns_client);
    c->sess = smtp_sess_new(c->conf, l->ops, l->ops_arg, &info);
    smtp_sess_set_resume(c->sess, conn_resume, c);
    if (o->local)
        log_info(id, "connect", "client=[%s] channel=%s internal=yes service=local uid=%u", c->ip, o->channel, o->uid);
    else
        log_info(id, "connect", "client=[%s] channel=%s internal=%s", c->ip, o->channel,
                 info.client_internal ? "yes" : "no");
}

/* conn_start - run a session on a new connection fd from origin o (sa: the peer, NULL when local). */
static void conn_start(listener *l, evutil_socket_t fd, const struct sockaddr *sa, const conn_origin *o)
{
    conn *c = xcalloc(1, sizeof *c);
    c->l = l;
    c->conf = ctx_conf_get(l->ctx);
    char id[24];
    if (o->local) {
        snprintf(c->ip, sizeof c->ip, "127.0.0.1");
        snprintf(c->server_ip, sizeof c->server_ip, "127.0.0.1");
    } else {
        addr_text(sa, c->ip, sizeof c->ip);
    }
    snprintf(id, sizeof id, "S%lu", ++l->next_sess);
    c->svc = xstrdup(o->svc);
    metric_add(&METRIC_SESSIONS, (const char *const[]){o->svc}, 1);
    smtp_deadline_init(&c->dl, &c->conf->opt, now_mono_ms());
    const sl_service *service = o->local ? NULL : service_by_name(c->conf, c->svc);
    conn_session(c, service, o, sa, fd, id);
    smtp_sess_connect(c->sess); /* limits and PORT_ACCESS: a refusal is queued with the close */
    bool implicit = service && service->tls == SVC_TLS_IMPLICIT && l->ctx->tls_server;
    if (implicit && !smtp_sess_closing(c->sess)) {
        SSL *ssl = SSL_new(l->ctx->tls_server);
        c->bev = bufferevent_openssl_socket_new(l->ctx->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, TLS_BEV_OPTS);
        c->handshaking = true;
    } else {
        c->bev = bufferevent_socket_new(l->ctx->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    c->next = l->conns;
    if (l->conns) l->conns->prev = c;
    l->conns = c;
    l->nconns++;
    struct timeval idle = {c->conf->opt.idle_timeout ? c->conf->opt.idle_timeout : 300, 0};
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    conn_deadline_arm(c);
    if (smtp_sess_closing(c->sess)) {
        conn_flush(c);
        return;
    }
    if (c->conf->opt.greeting_delay_ms && !o->local) { /* a test for strangers, not for local users */
        c->greet_timer = evtimer_new(l->ctx->base, on_greet, c);
        struct timeval tv = {c->conf->opt.greeting_delay_ms / 1000, (c->conf->opt.greeting_delay_ms % 1000) * 1000};
        evtimer_add(c->greet_timer, &tv);
        return;
    }
    smtp_sess_greet(c->sess);
    conn_flush(c);
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)salen;
    listener *l = arg;
    size_t svc = 0;
    while (svc < l->n && l->socks[svc].evl != evl) svc++;
    conn_origin o = {svc < l->n ? l->socks[svc].svc : "", svc < l->n ? l->socks[svc].channel : "tcp_local", false, 0};
    conn_start(l, fd, sa, &o);
}

/* ---- local submission ---- */

/* on_local_accept - a connection to the local submission socket: the kernel names its user. */
static void on_local_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)evl, (void)sa, (void)salen;
    listener *l = arg;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        log_warn(NULL, "local_error", "error=\"SO_PEERCRED: %s\"", strerror(errno));
        evutil_closesocket(fd);
        return;
    }
    conn_origin o = {"local", l->local_channel, true, (unsigned)cred.uid};
    conn_start(l, fd, NULL, &o);
}

/* local_bind - a listening UNIX socket at path, mode 0666 in a directory of mode 0755. */
static struct evconnlistener *local_bind(listener *l, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "submit_socket %s: path too long for a unix socket", path);
        return NULL;
    }
    strcpy(sun.sun_path, path);
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0755) == 0 || errno == EEXIST) chmod(dir, 0755);
    }
    free(dir);
    unlink(path);
    struct evconnlistener *evl = evconnlistener_new_bind(l->ctx->base, on_local_accept, l,
                                                         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64,
                                                         (struct sockaddr *)&sun, sizeof sun);
    if (!evl || chmod(path, 0666) < 0) {
        snprintf(err, errlen, "submit_socket %s: %s", path, strerror(errno));
        if (evl) evconnlistener_free(evl);
        return NULL;
    }
    return evl;
}

int listener_open_local(listener *l, const char *path, const char *channel, char *err, size_t errlen)
{
    struct evconnlistener *evl = local_bind(l, path, err, errlen);
    if (!evl) return -1;
    l->local_evl = evl;
    l->local_path = xstrdup(path);
    l->local_channel = xstrdup(channel);
    log_info(NULL, "listen", "service=local socket=%s channel=%s", path, channel);
    return 0;
}

void listener_adopt_local(listener *l, int fd, unsigned uid)
{
    if (l->closing) {
        close(fd);
        return;
    }
    conn_origin o = {"local", l->local_channel ? l->local_channel : "l", true, uid};
    conn_start(l, fd, NULL, &o);
}

/* local_close - stop listening on the local socket and remove it. */
static void local_close(listener *l)
{
    if (!l->local_evl) return;
    evconnlistener_free(l->local_evl);
    l->local_evl = NULL;
    unlink(l->local_path);
}

/* ---- services ---- */

static struct evconnlistener *bind_one(listener *l, const char *addr, const char *port, int backlog,
                                       struct sockaddr_storage *out, char *err, size_t errlen)
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
    *out = ss;
    struct evconnlistener *evl = evconnlistener_new_bind(
        l->ctx->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, backlog,
        (struct sockaddr *)&ss, (int)sl);
    if (!evl) snprintf(err, errlen, "cannot listen on %s port %s: %s", addr, port, strerror(errno));
    return evl;
bad:
    snprintf(err, errlen, "bad interface address %s", addr);
    return NULL;
}

/* listen_addrs_rebuild - our listening addresses, for self-MX detection (ctx->listen_addrs). */
static void listen_addrs_rebuild(listener *l)
{
    free(l->ctx->listen_addrs);
    l->ctx->listen_addrs = xcalloc(l->n + 1, sizeof *l->ctx->listen_addrs);
    for (size_t i = 0; i < l->n; i++) l->ctx->listen_addrs[i] = l->socks[i].ss;
    l->ctx->n_listen = l->n;
}

/* sock_add - bind addr:port for svc; false with err when it cannot. */
static bool sock_add(listener *l, const sl_service *svc, const char *addr, const char *port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    struct evconnlistener *evl = bind_one(l, addr, port, svc->backlog ? (int)svc->backlog : 511, &ss, err, errlen);
    if (!evl) return false;
    l->socks = xrealloc(l->socks, (l->n + 1) * sizeof *l->socks);
    const char *channel = svc->channel ? svc->channel : "tcp_local";
    l->socks[l->n++] = (lsock){evl, xstrdup(svc->name), xstrdup(channel), xstrdup(addr), xstrdup(port), ss};
    log_info(NULL, "listen", "service=%s address=%s port=%s channel=%s", svc->name, addr, port, channel);
    return true;
}

/* sock_free - close socket i's listener and free its strings (the array is not changed). */
static void sock_free(lsock *s)
{
    evconnlistener_free(s->evl);
    free(s->svc);
    free(s->channel);
    free(s->addr);
    free(s->port);
}

/* sock_find - the socket bound to addr:port, or -1. */
static long sock_find(const listener *l, const char *addr, const char *port)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->socks[i].addr, addr) && !strcmp(l->socks[i].port, port)) return (long)i;
    return -1;
}

/* svc_binds - every address and port of svc, as parallel lists (addresses default to 0.0.0.0). */
static void svc_binds(const sl_service *svc, strvec *addrs, strvec *ports)
{
    size_t naddr = svc->addresses.n ? svc->addresses.n : 1;
    for (size_t a = 0; a < naddr; a++) {
        for (size_t p = 0; p < svc->ports.n; p++) {
            sv_push(addrs, svc->addresses.n ? svc->addresses.v[a] : "0.0.0.0");
            sv_push(ports, svc->ports.v[p]);
        }
    }
}

listener *listener_open(sl_ctx *ctx, const smtp_server_ops *ops, void *ops_arg, char *err, size_t errlen)
{
    listener *l = xcalloc(1, sizeof *l);
    l->ctx = ctx;
    l->ops = ops;
    l->ops_arg = ops_arg;
    const sl_conf *c = ctx->conf;
    bool ok = true;
    for (size_t i = 0; ok && i < c->n_services; i++) {
        strvec addrs = {0}, ports = {0};
        svc_binds(&c->services[i], &addrs, &ports);
        for (size_t k = 0; ok && k < addrs.n; k++) ok = sock_add(l, &c->services[i], addrs.v[k], ports.v[k], err, errlen);
        sv_free(&addrs);
        sv_free(&ports);
    }
    if (!ok) {
        listener_free(l);
        return NULL;
    }
    listen_addrs_rebuild(l);
    return l;
}

/* sock_update - a socket kept by a reload takes its service's new name and channel. */
static void sock_update(lsock *s, const sl_service *svc)
{
    const char *channel = svc->channel ? svc->channel : "tcp_local";
    if (!strcmp(s->svc, svc->name) && !strcmp(s->channel, channel)) return;
    free(s->svc);
    free(s->channel);
    s->svc = xstrdup(svc->name);
    s->channel = xstrdup(channel);
    log_info(NULL, "listen_changed", "service=%s address=%s port=%s channel=%s", s->svc, s->addr, s->port, s->channel);
}

/* sock_sessions - sessions open on service svc. */
static unsigned sock_sessions(const listener *l, const char *svc)
{
    unsigned n = 0;
    for (const conn *c = l->conns; c; c = c->next) n += str_ieq(c->svc, svc);
    return n;
}

/* reload_close - close the sockets reload did not keep; their sessions finish on their own. */
static void reload_close(listener *l, const bool *keep, size_t old_n)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (i >= old_n || keep[i]) {
            l->socks[k++] = l->socks[i];
            continue;
        }
        log_info(NULL, "unlisten", "service=%s address=%s port=%s sessions=%u note=\"sessions under way finish\"",
                 l->socks[i].svc, l->socks[i].addr, l->socks[i].port, sock_sessions(l, l->socks[i].svc));
        sock_free(&l->socks[i]);
    }
    l->n = k;
}

/* reload_one - keep (and update) the socket of addr:port, or bind it; 1 when it cannot be bound. */
static size_t reload_one(listener *l, const sl_service *svc, const char *addr, const char *port, bool *keep,
                         size_t old_n)
{
    long at = sock_find(l, addr, port);
    if (at >= 0 && (size_t)at < old_n) {
        keep[at] = true;
        sock_update(&l->socks[at], svc);
        return 0;
    }
    char err[256];
    if (at >= 0 || sock_add(l, svc, addr, port, err, sizeof err)) return 0; /* at >= 0: listed twice */
    log_error(NULL, "listen_failed", "service=%s address=%s port=%s error=\"%s\" note=\"%s\"", svc->name, addr, port,
              err, "a port below 1024 can only be bound by a restart as root");
    return 1;
}

size_t listener_reload(listener *l, const sl_conf *c)
{
    if (l->closing) return 0;
    size_t old_n = l->n, failed = 0;
    bool *keep = xcalloc(old_n + 1, sizeof *keep);
    for (size_t i = 0; i < c->n_services; i++) {
        strvec addrs = {0}, ports = {0};
        svc_binds(&c->services[i], &addrs, &ports);
        for (size_t k = 0; k < addrs.n; k++) failed += reload_one(l, &c->services[i], addrs.v[k], ports.v[k], keep, old_n);
        sv_free(&addrs);
        sv_free(&ports);
    }
    reload_close(l, keep, old_n);
    free(keep);
    listen_addrs_rebuild(l);
    return failed;
}

int listener_sessions(const listener *l)
{
    return l->nconns;
}

void listener_close(listener *l)
{
    if (!l || l->closing) return;
    l->closing = true;
    for (size_t i = 0; i < l->n; i++) evconnlistener_disable(l->socks[i].evl);
    local_close(l);
    conn *c = l->conns;
    while (c) {
        conn *next = c->next;
        if (!smtp_sess_waiting(c->sess) && c->bev && !smtp_sess_closing(c->sess)) { /* a closing session has had its last word */
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
        conn_free(l->conns); /* a pending decision or commit is abandoned by the decider's close */
    }
    for (size_t i = 0; i < l->n; i++) sock_free(&l->socks[i]);
    local_close(l);
    free(l->local_path);
    free(l->local_channel);
    free(l->socks);
    free(l);
}
