/*
 * control.c - control socket, daemon and client sides (see control.h). The daemon side reads one
 * line, splits it into words and hands them to control_queue.c, which talks to the scheduler.
 * Each word is sent percent-encoded (bytes up to the space, '%' and above 0x7e as %XX), so that
 * an argument may hold spaces (`--reply "Connection refused"`).
 */
#include "cli/control.h"
#include "conf/conf.h"
#include "core/log.h"
#include "cli/control_queue.h"
#include "tlsrpt/tlsrpt.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONTROL_LINE_MAX 4096

struct control {
    sl_ctx *ctx;
    sched *sched;
    tlsrpt *tlsrpt;
    struct evconnlistener *evl;
    char *path;
};

typedef struct {
    control *c;
    struct bufferevent *bev;
    bool answered;
} cconn;

/* word_encode - w percent-encoded onto line. */
static void word_encode(strbuf *line, const char *w)
{
    for (const unsigned char *p = (const unsigned char *)w; *p; p++) {
        if (*p <= ' ' || *p == '%' || *p > 0x7e) sb_printf(line, "%%%02X", *p);
        else sb_putc(line, (char)*p);
    }
}

/* word_decode - undo word_encode in place; false when malformed. */
static bool word_decode(char *w)
{
    char *out = w;
    for (char *p = w; *p; p++) {
        unsigned v;
        if (*p != '%') {
            *out++ = *p;
            continue;
        }
        if (sscanf(p + 1, "%2x", &v) != 1 || !p[1] || !p[2] || v == 0) return false;
        *out++ = (char)v;
        p += 2;
    }
    *out = '\0';
    return true;
}

static void cconn_written(struct bufferevent *bev, void *arg)
{
    cconn *cc = arg;
    if (cc->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        bufferevent_free(bev);
        free(cc);
    }
}

static void cconn_answer(void *arg, int status, strbuf *out)
{
    cconn *cc = arg;
    cc->answered = true;
    char head[32];
    snprintf(head, sizeof head, "STATUS %d\n", status);
    bufferevent_write(cc->bev, head, strlen(head));
    if (out->len) bufferevent_write(cc->bev, out->data, out->len);
    bufferevent_enable(cc->bev, EV_WRITE);
}

static void cconn_read(struct bufferevent *bev, void *arg)
{
    cconn *cc = arg;
    if (cc->answered) return;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len;
    char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
    if (!line) {
        if (evbuffer_get_length(in) > CONTROL_LINE_MAX) {
            bufferevent_free(bev);
            free(cc);
        }
        return;
    }
    strvec args = {0};
    str_split_ws(line, &args);
    free(line);
    for (size_t i = 0; i < args.n; i++)
        if (!word_decode(args.v[i])) args.v[i][0] = '-'; /* an unknown option: a usage answer */
    bufferevent_disable(bev, EV_READ);
    if (args.n && !strcmp(args.v[0], "tlsrpt")) {
        tlsrpt_command(cc->c->tlsrpt, (int)args.n, args.v, cconn_answer, cc);
        sv_free(&args);
        return;
    }
    control_queue_run(cc->c->sched, cc->c->ctx->dir, cc->c->ctx->conf->opt.queue_dir, (int)args.n, args.v,
                      cconn_answer, cc);
    sv_free(&args);
}

static void cconn_event(struct bufferevent *bev, short what, void *arg)
{
    cconn *cc = arg;
    (void)what;
    if (!cc->answered) { /* the answer callback may still come: let it find a closed socket */
        bufferevent_disable(bev, EV_READ | EV_WRITE);
        return;
    }
    bufferevent_free(bev);
    free(cc);
}

static void control_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    (void)evl;
    (void)sa;
    (void)len;
    control *c = arg;
    cconn *cc = xcalloc(1, sizeof *cc);
    cc->c = c;
    cc->bev = bufferevent_socket_new(c->ctx->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(cc->bev, cconn_read, cconn_written, cconn_event, cc);
    bufferevent_enable(cc->bev, EV_READ);
}

control *control_open(sl_ctx *ctx, struct sched *sched)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    char *path = xasprintf("%s/control.sock", ctx->conf->opt.queue_dir);
    if (strlen(path) >= sizeof sun.sun_path) {
        log_error(NULL, "control_error", "path=%s error=\"path too long for a unix socket\"", path);
        free(path);
        return NULL;
    }
    strcpy(sun.sun_path, path);
    unlink(path);
    mode_t old = umask(0077);
    struct evconnlistener *evl = evconnlistener_new_bind(ctx->base, control_accept, NULL,
                                                         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                                         (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (!evl) {
        log_error(NULL, "control_error", "path=%s error=\"%s\"", path, strerror(errno));
        free(path);
        return NULL;
    }
    control *c = xcalloc(1, sizeof *c);
    c->ctx = ctx;
    c->sched = sched;
    c->evl = evl;
    c->path = path;
    evconnlistener_set_cb(evl, control_accept, c);
    return c;
}

void control_set_tlsrpt(control *c, tlsrpt *t)
{
    if (c) c->tlsrpt = t;
}

void control_free(control *c)
{
    if (!c) return;
    evconnlistener_free(c->evl);
    unlink(c->path);
    free(c->path);
    free(c);
}

int control_client_capture(const char *qdir, int argc, char **argv, strbuf *out)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    char *path = xasprintf("%s/control.sock", qdir);
    if (strlen(path) >= sizeof sun.sun_path) {
        free(path);
        return -1;
    }
    strcpy(sun.sun_path, path);
    free(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        close(fd);
        return -1; /* no daemon: the caller works on the files */
    }
    strbuf line = {0};
    for (int i = 0; i < argc; i++) {
        if (i) sb_putc(&line, ' ');
        word_encode(&line, argv[i]);
    }
    sb_putc(&line, '\n');
    ssize_t w = write(fd, line.data, line.len);
    sb_free(&line);
    if (w < 0) {
        close(fd);
        return -1;
    }
    strbuf resp = {0};
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) sb_append(&resp, buf, (size_t)n);
    close(fd);
    int status = 1;
    const char *body = resp.data ? resp.data : "";
    if (sscanf(body, "STATUS %d", &status) != 1) {
        sb_puts(out, "sluice: the daemon gave no answer\n");
        sb_free(&resp);
        return 1;
    }
    const char *nl = strchr(body, '\n');
    if (nl) sb_puts(out, nl + 1);
    sb_free(&resp);
    return status;
}

int control_client(const char *qdir, int argc, char **argv)
{
    strbuf out = {0};
    int status = control_client_capture(qdir, argc, argv, &out);
    if (status >= 0 && out.len) fputs(out.data, status ? stderr : stdout);
    sb_free(&out);
    return status;
}
