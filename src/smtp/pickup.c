/*
 * pickup.c - the pickup directory agent (see pickup.h). A scan lists the directory once and
 * submits its files in name order (names begin with the time they were written), one at a time:
 * the file is checked, read and decoded, a socketpair's one end goes to the listener as a local
 * session of the file's owner and the submission engine (smtp/submit.h) speaks on the other.
 * Every file system call (the listing, the read, the unlink or the move aside) runs on a worker
 * of ctx->wq, on a job that holds copies of what it needs; its completion goes on, on the loop.
 */
#include "smtp/pickup.h"
#include "conf/conf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/workq.h"
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

/* What a worker does for the agent: list the directory, read and decode one file, or finish one. */
enum pickup_op { PICKUP_OP_SCAN, PICKUP_OP_READ, PICKUP_OP_FINISH };
/* How a finished file leaves the directory. */
enum pickup_fate { PICKUP_KEEP, PICKUP_REMOVE, PICKUP_MOVE_ASIDE };

/* A worker job: the worker reads only these fields, never the agent (the loop owns it). */
typedef struct pickup_job {
    struct pickup *p;
    enum pickup_op op;
    char *qdir;
    uint64_t max_size;
    int64_t now;
    char *name;           /* READ, FINISH: the file */
    strvec names;         /* SCAN: the files, in name order */
    submit_env env;       /* READ: the decoded envelope */
    unsigned uid;         /* READ: the file's owner */
    enum pickup_fate fate; /* READ (failed), FINISH: what happens to the file */
    bool ok;              /* READ: env is good; FINISH: the file left as asked */
    bool go_on;           /* FINISH: the next file may follow */
    char *qid;            /* FINISH: the queue id of a queued message */
    char *to;             /* where a failed file went */
    char why[256];
} pickup_job;

struct pickup {
    sl_ctx *ctx;
    listener *l;
    struct event *timer;
    strvec names;  /* the files of the current scan */
    size_t next;   /* the next one to submit */
    pickup_job *job; /* the worker job in flight, or NULL */
    bool orphaned;   /* pickup_free ran while a job was in flight: its completion frees the agent */
    /* the submission in progress */
    struct bufferevent *bev;
    submit *sub;
    submit_env env;
    char *name;
    unsigned uid;
    bool finished;  /* the engine ended; waiting for the server to close */
    submit_status status; /* ... with this status */
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

static void pickup_next(pickup *p);

/* ---- the worker side: file I/O only, on the job's own fields ---- */

/* job_path - QUEUE/<sub>/<name> (caller frees). */
static char *job_path(const pickup_job *j, const char *sub, const char *name)
{
    return xasprintf("%s/%s/%s", j->qdir, sub, name);
}

/* job_move_aside - move the job's file to QUEUE/pickup-failed (removed if that fails); the target into j->to. */
static void job_move_aside(pickup_job *j)
{
    char *from = job_path(j, "pickup", j->name);
    j->to = job_path(j, "pickup-failed", j->name);
    if (rename(from, j->to) < 0) unlink(from);
    free(from);
}

/* job_read - check and read the job's file; 0, or -1 with why. */
static int job_read(pickup_job *j, strbuf *out)
{
    char *path = job_path(j, "pickup", j->name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    free(path);
    struct stat st;
    int rc = -1;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(j->why, sizeof j->why, "cannot open: %s", strerror(errno));
    } else if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        snprintf(j->why, sizeof j->why, "not a plain file with one link");
    } else if ((uint64_t)st.st_size > j->max_size + 65536) {
        snprintf(j->why, sizeof j->why, "larger than max_message_size");
    } else {
        j->uid = (unsigned)st.st_uid;
        char chunk[65536];
        ssize_t n;
        while ((n = read(fd, chunk, sizeof chunk)) > 0) sb_append(out, chunk, (size_t)n);
        if (n < 0) snprintf(j->why, sizeof j->why, "read: %s", strerror(errno));
        else rc = 0;
    }
    if (fd >= 0) close(fd);
    return rc;
}

/* job_stale_tmp - a temporary file left by a sendmail that died: removed after a day. */
static void job_stale_tmp(pickup_job *j, const char *name)
{
    char *path = job_path(j, "pickup", name);
    struct stat st;
    if (lstat(path, &st) == 0 && j->now - st.st_mtime > PICKUP_TMP_MAX_AGE) unlink(path);
    free(path);
}

/* name_cmp - qsort order of file names (they begin with the time they were written). */
static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* job_run - workq_fn: the job's file I/O. */
static void job_run(void *arg)
{
    pickup_job *j = arg;
    if (j->op == PICKUP_OP_SCAN) {
        char *dir = xasprintf("%s/pickup", j->qdir);
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            if (de->d_name[0] != '.') sv_push(&j->names, de->d_name);
            else if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) job_stale_tmp(j, de->d_name);
        }
        if (d) closedir(d);
        free(dir);
        if (j->names.n) qsort(j->names.v, j->names.n, sizeof *j->names.v, name_cmp);
    } else if (j->op == PICKUP_OP_READ) {
        strbuf buf = {0};
        j->ok = job_read(j, &buf) == 0 &&
                submit_env_decode(buf.data ? buf.data : "", buf.len, &j->env, j->why, sizeof j->why) == 0;
        sb_free(&buf);
        if (!j->ok) job_move_aside(j);
    } else if (j->fate == PICKUP_REMOVE) {
        char *path = job_path(j, "pickup", j->name);
        j->ok = unlink(path) == 0 || errno == ENOENT;
        if (!j->ok) snprintf(j->why, sizeof j->why, "unlink: %s", strerror(errno));
        free(path);
    } else if (j->fate == PICKUP_MOVE_ASIDE) {
        job_move_aside(j);
    }
}

/* ---- the loop side ---- */

/* job_free - free a job and what it still holds. */
static void job_free(pickup_job *j)
{
    free(j->qdir);
    free(j->name);
    sv_free(&j->names);
    submit_env_free(&j->env);
    free(j->qid);
    free(j->to);
    free(j);
}

/* pickup_idle - nothing in progress: scan again after pickup_interval. */
static void pickup_idle(pickup *p)
{
    struct timeval tv = {p->ctx->conf->opt.pickup_interval, 0};
    evtimer_add(p->timer, &tv);
}

/* pickup_failed - log a file moved aside (the worker moved it) and count it. */
static void pickup_failed(const pickup_job *j, const char *why)
{
    metric_add(&METRIC_PICKUP, (const char *const[]){"failed"}, 1);
    log_warn(NULL, "pickup_failed", "file=%s uid=%u reason=\"%s\" moved_to=%s", j->name, j->uid, why, j->to);
}

static void pickup_start(pickup *p, pickup_job *j);

/* job_done - workq_done: act on the job's result on the loop. */
static void job_done(void *arg)
{
    pickup_job *j = arg;
    pickup *p = j->p;
    p->job = NULL;
    if (p->orphaned) {
        job_free(j);
        free(p);
        return;
    }
    if (j->op == PICKUP_OP_SCAN) {
        sv_free(&p->names);
        p->names = j->names;
        memset(&j->names, 0, sizeof j->names);
        p->next = 0;
        pickup_next(p);
    } else if (j->op == PICKUP_OP_READ) {
        if (j->ok) pickup_start(p, j);
        else pickup_failed(j, j->why), pickup_next(p);
    } else {
        if (j->fate == PICKUP_REMOVE && j->ok)
            log_info(j->qid, "pickup", "file=%s uid=%u", j->name, j->uid);
        else if (j->fate == PICKUP_REMOVE) /* queued, but still there: it would go twice */
            log_error(j->qid, "pickup_error", "file=%s error=\"%s\"", j->name, j->why);
        else if (j->fate == PICKUP_MOVE_ASIDE)
            pickup_failed(j, j->why);
        if (j->go_on) pickup_next(p);
        else p->next = p->names.n, pickup_idle(p); /* a temporary failure: the rest waits for the next scan */
    }
    job_free(j);
}

/* pickup_job_new - a job of kind op on file name (or NULL), with copies of the settings it needs. */
static pickup_job *pickup_job_new(pickup *p, enum pickup_op op, const char *name)
{
    pickup_job *j = xcalloc(1, sizeof *j);
    j->p = p;
    j->op = op;
    j->qdir = xstrdup(p->ctx->conf->opt.queue_dir);
    j->max_size = p->ctx->conf->opt.max_message_size;
    j->now = now_unix();
    j->name = name ? xstrdup(name) : NULL;
    return j;
}

/* pickup_job_run - send job j to a worker; its completion goes on. */
static void pickup_job_run(pickup *p, pickup_job *j)
{
    p->job = j;
    workq_submit(p->ctx->wq, job_run, job_done, j);
}

/* pickup_end - the submission of p->name is over: free it, then let a worker remove the file,
 * move it aside or leave it, as the outcome says. */
static void pickup_end(pickup *p)
{
    pickup_job *j = pickup_job_new(p, PICKUP_OP_FINISH, p->name);
    j->uid = p->uid;
    const char *reply = submit_reply(p->sub);
    for (size_t i = 0; i < p->env.rcpts.n; i++) {
        int code;
        const char *r = submit_rcpt_reply(p->sub, i, &code);
        if (code && code / 100 != 2)
            log_warn(NULL, "pickup_rcpt_refused", "file=%s rcpt=<%s> reply=\"%s\"", p->name, p->env.rcpts.v[i], r);
    }
    submit_status st = p->status;
    if (st != SUBMIT_PERM) /* a failed file is counted where it is moved aside */
        metric_add(&METRIC_PICKUP, (const char *const[]){st == SUBMIT_QUEUED ? "queued" : "deferred"}, 1);
    if (st == SUBMIT_QUEUED) {
        j->fate = PICKUP_REMOVE;
        j->qid = xstrdup(submit_queue_id(p->sub));
        j->go_on = true;
    } else if (st == SUBMIT_PERM) {
        j->fate = PICKUP_MOVE_ASIDE;
        snprintf(j->why, sizeof j->why, "%s", reply);
        j->go_on = true;
    } else {
        j->fate = PICKUP_KEEP;
        log_warn(NULL, "pickup_deferred", "file=%s reply=\"%s\"", p->name, reply);
    }
    if (p->bev) bufferevent_free(p->bev);
    p->bev = NULL;
    submit_free(p->sub);
    p->sub = NULL;
    submit_env_free(&p->env);
    free(p->name);
    p->name = NULL;
    p->finished = false;
    if (j->fate == PICKUP_KEEP) { /* a temporary failure: the file and the rest wait for the next scan */
        job_free(j);
        p->next = p->names.n;
        pickup_idle(p);
        return;
    }
    pickup_job_run(p, j);
}

/* pickup_on_read - the server's replies: feed the engine and send what it answers. */
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
        p->finished = true; /* the server closes after our QUIT: pickup_on_event ends it */
        p->status = st;
    }
}

/* pickup_on_event - the session closed (after our QUIT, or broken or timed out): end the file. */
static void pickup_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    pickup *p = arg;
    if (!p->finished) {
        if (what & BEV_EVENT_TIMEOUT) log_warn(NULL, "pickup_timeout", "file=%s", p->name);
        p->status = submit_eof(p->sub);
    }
    pickup_end(p);
}

/* pickup_start - submit the file a worker read and decoded: a local session of its owner. */
static void pickup_start(pickup *p, pickup_job *j)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) {
        log_error(NULL, "pickup_error", "error=\"socketpair: %s\"", strerror(errno));
        pickup_next(p);
        return;
    }
    p->env = j->env;
    memset(&j->env, 0, sizeof j->env);
    p->uid = j->uid;
    p->name = xstrdup(j->name);
    p->sub = submit_new(&p->env, p->ctx->conf->opt.hostname);
    p->bev = bufferevent_socket_new(p->ctx->base, fds[1], BEV_OPT_CLOSE_ON_FREE);
    struct timeval tv = {PICKUP_SESSION_TIMEOUT, 0};
    bufferevent_set_timeouts(p->bev, &tv, &tv);
    bufferevent_setcb(p->bev, pickup_on_read, NULL, pickup_on_event, p);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    listener_adopt_local(p->l, fds[0], p->uid);
}

/* pickup_next - have a worker read the next file of the scan; idle when there is none. */
static void pickup_next(pickup *p)
{
    if (p->next < p->names.n && !p->ctx->stopping)
        pickup_job_run(p, pickup_job_new(p, PICKUP_OP_READ, p->names.v[p->next++]));
    else
        pickup_idle(p);
}

/* pickup_tick - the timer: have a worker list the directory, unless a scan is still going. */
static void pickup_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pickup *p = arg;
    if (p->job || p->bev || p->ctx->stopping) return;
    pickup_job_run(p, pickup_job_new(p, PICKUP_OP_SCAN, NULL));
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
    p->bev = NULL;
    submit_free(p->sub);
    submit_env_free(&p->env);
    free(p->name);
    event_free(p->timer);
    sv_free(&p->names);
    if (p->job) p->orphaned = true; /* the job's completion frees p (the worker never touches it) */
    else free(p);
}
