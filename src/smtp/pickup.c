/*
 * pickup.c - the pickup directory agent (see pickup.h). A scan lists the directory once and
 * submits its files in name order (names begin with the time they were written), one at a time:
 * the file is checked and read, a socketpair's one end goes to the listener as a local session
 * of the file's owner and the submission engine (smtp/submit.h) speaks on the other.
 */
#include "smtp/pickup.h"
#include "conf/conf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "smtp/submit.h"

#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PICKUP_TMP_MAX_AGE 86400 /* a temporary file ("." name) older than this was abandoned */
#define PICKUP_SESSION_TIMEOUT 300

struct pickup {
    sl_ctx *ctx;
    listener *l;
    struct event *timer;
    strvec names;  /* the files of the current scan */
    size_t next;   /* the next one to submit */
    /* the submission in progress */
    struct bufferevent *bev;
    submit *sub;
    submit_env env;
    char *name;
    unsigned uid;
    bool finished;  /* the engine ended; waiting for the server to close */
    bool go_on;     /* ... and the next file may follow (not after a 4xx) */
};

int pickup_dir_prepare(const char *qdir, char *err, size_t errlen)
{
    char *dir = xasprintf("%s/pickup", qdir);
    char *failed = xasprintf("%s/pickup-failed", qdir);
    int rc = 0;
    if ((mkdir(dir, 01733) < 0 && errno != EEXIST) || chmod(dir, 01733) < 0 ||
        (mkdir(failed, 0700) < 0 && errno != EEXIST) || chmod(qdir, 0711) < 0) {
        snprintf(err, errlen, "pickup directory %s: %s", dir, strerror(errno));
        rc = -1;
    }
    free(failed);
    free(dir);
    return rc;
}

static void pickup_scan(pickup *p);
static void pickup_next(pickup *p);

/* pickup_path - QUEUE/<sub>/<name> (caller frees). */
static char *pickup_path(const pickup *p, const char *sub, const char *name)
{
    return xasprintf("%s/%s/%s", p->ctx->conf->opt.queue_dir, sub, name);
}

/* pickup_reject - move a file that cannot be submitted to QUEUE/pickup-failed, logged with why. */
static void pickup_reject(pickup *p, const char *name, const char *why)
{
    char *from = pickup_path(p, "pickup", name), *to = pickup_path(p, "pickup-failed", name);
    if (rename(from, to) < 0) unlink(from);
    metric_add(&METRIC_PICKUP, (const char *const[]){"failed"}, 1);
    log_warn(NULL, "pickup_failed", "file=%s uid=%u reason=\"%s\" moved_to=%s", name, p->uid, why, to);
    free(from);
    free(to);
}

/* pickup_read - check and read the file name into out (owner into p->uid); 0, -1 with why (reject it). */
static int pickup_read(pickup *p, const char *name, strbuf *out, char *why, size_t whylen)
{
    char *path = pickup_path(p, "pickup", name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    free(path);
    struct stat st;
    int rc = -1;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
    } else if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        snprintf(why, whylen, "not a plain file with one link");
    } else if ((uint64_t)st.st_size > p->ctx->conf->opt.max_message_size + 65536) {
        snprintf(why, whylen, "larger than max_message_size");
    } else {
        p->uid = (unsigned)st.st_uid;
        strbuf buf = {0};
        char chunk[65536];
        ssize_t n;
        while ((n = read(fd, chunk, sizeof chunk)) > 0) sb_append(&buf, chunk, (size_t)n);
        if (n < 0) snprintf(why, whylen, "read: %s", strerror(errno));
        else rc = 0, *out = buf;
        if (rc) sb_free(&buf);
    }
    if (fd >= 0) close(fd);
    return rc;
}

/* pickup_end - the submission of p->name is over: free it and go on with the next file. */
static void pickup_end(pickup *p, bool go_on)
{
    if (p->bev) bufferevent_free(p->bev);
    p->bev = NULL;
    submit_free(p->sub);
    p->sub = NULL;
    submit_env_free(&p->env);
    free(p->name);
    p->name = NULL;
    p->finished = false;
    if (go_on) pickup_next(p);
    else p->next = p->names.n; /* a temporary failure: the rest waits for the next scan too */
    if (!p->bev) {
        struct timeval tv = {p->ctx->conf->opt.pickup_interval, 0};
        evtimer_add(p->timer, &tv);
    }
}

/* pickup_outcome - what the engine's end means for the file. */
static bool pickup_outcome(pickup *p, submit_status st)
{
    const char *reply = submit_reply(p->sub);
    for (size_t i = 0; i < p->env.rcpts.n; i++) {
        int code;
        const char *r = submit_rcpt_reply(p->sub, i, &code);
        if (code && code / 100 != 2)
            log_warn(NULL, "pickup_rcpt_refused", "file=%s rcpt=<%s> reply=\"%s\"", p->name, p->env.rcpts.v[i], r);
    }
    if (st != SUBMIT_PERM) /* a failed file is counted where it is moved aside */
        metric_add(&METRIC_PICKUP, (const char *const[]){st == SUBMIT_QUEUED ? "queued" : "deferred"}, 1);
    if (st == SUBMIT_QUEUED) {
        char *path = pickup_path(p, "pickup", p->name);
        unlink(path);
        free(path);
        log_info(submit_queue_id(p->sub), "pickup", "file=%s uid=%u", p->name, p->uid);
        return true;
    }
    if (st == SUBMIT_PERM) {
        pickup_reject(p, p->name, reply);
        return true;
    }
    log_warn(NULL, "pickup_deferred", "file=%s reply=\"%s\"", p->name, reply);
    return false;
}

static void pickup_on_read(struct bufferevent *bev, void *arg)
{
    pickup *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    strbuf out = {0};
    const char *data = (const char *)evbuffer_pullup(in, -1);
    submit_status st = submit_feed(p->sub, data ? data : "", len, &out);
    evbuffer_drain(in, len);
    if (out.len) bufferevent_write(bev, out.data, out.len);
    sb_free(&out);
    if (st != SUBMIT_RUNNING && !p->finished) {
        p->finished = true;
        p->go_on = pickup_outcome(p, st); /* the server closes after our QUIT: pickup_on_event ends it */
    }
}

static void pickup_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    pickup *p = arg;
    if (!p->finished) {
        if (what & BEV_EVENT_TIMEOUT) log_warn(NULL, "pickup_timeout", "file=%s", p->name);
        p->go_on = pickup_outcome(p, submit_eof(p->sub));
    }
    pickup_end(p, p->go_on);
}

/* pickup_submit - submit the file name; false when it was rejected (go on with the next). */
static bool pickup_submit(pickup *p, const char *name)
{
    strbuf buf = {0};
    char why[256];
    p->uid = 0;
    if (pickup_read(p, name, &buf, why, sizeof why) < 0 ||
        submit_env_decode(buf.data ? buf.data : "", buf.len, &p->env, why, sizeof why) < 0) {
        sb_free(&buf);
        pickup_reject(p, name, why);
        return false;
    }
    sb_free(&buf);
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) {
        log_error(NULL, "pickup_error", "error=\"socketpair: %s\"", strerror(errno));
        submit_env_free(&p->env);
        return false;
    }
    p->name = xstrdup(name);
    p->sub = submit_new(&p->env, p->ctx->conf->opt.hostname);
    p->bev = bufferevent_socket_new(p->ctx->base, fds[1], BEV_OPT_CLOSE_ON_FREE);
    struct timeval tv = {PICKUP_SESSION_TIMEOUT, 0};
    bufferevent_set_timeouts(p->bev, &tv, &tv);
    bufferevent_setcb(p->bev, pickup_on_read, NULL, pickup_on_event, p);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    listener_adopt_local(p->l, fds[0], p->uid);
    return true;
}

/* pickup_next - submit the next file of the scan, skipping those rejected at once. */
static void pickup_next(pickup *p)
{
    while (p->next < p->names.n) {
        const char *name = p->names.v[p->next++];
        if (pickup_submit(p, name)) return;
    }
}

/* stale_tmp - a temporary file left by a sendmail that died: removed after a day. */
static void stale_tmp(pickup *p, const char *name)
{
    char *path = pickup_path(p, "pickup", name);
    struct stat st;
    if (lstat(path, &st) == 0 && now_unix() - st.st_mtime > PICKUP_TMP_MAX_AGE) unlink(path);
    free(path);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* pickup_scan - list the directory and start on its files. */
static void pickup_scan(pickup *p)
{
    if (p->bev || p->ctx->stopping) return;
    sv_free(&p->names);
    p->next = 0;
    char *dir = xasprintf("%s/pickup", p->ctx->conf->opt.queue_dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.') sv_push(&p->names, de->d_name);
        else if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) stale_tmp(p, de->d_name);
    }
    if (d) closedir(d);
    free(dir);
    if (p->names.n) qsort(p->names.v, p->names.n, sizeof *p->names.v, name_cmp);
    pickup_next(p);
    if (!p->bev) {
        struct timeval tv = {p->ctx->conf->opt.pickup_interval, 0};
        evtimer_add(p->timer, &tv);
    }
}

static void pickup_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pickup_scan(arg);
}

pickup *pickup_new(sl_ctx *ctx, listener *l)
{
    pickup *p = xcalloc(1, sizeof *p);
    p->ctx = ctx;
    p->l = l;
    p->timer = evtimer_new(ctx->base, pickup_tick, p);
    struct timeval now = {0, 0};
    evtimer_add(p->timer, &now);
    return p;
}

void pickup_free(pickup *p)
{
    if (!p) return;
    if (p->bev) bufferevent_free(p->bev);
    submit_free(p->sub);
    submit_env_free(&p->env);
    free(p->name);
    event_free(p->timer);
    sv_free(&p->names);
    free(p);
}
