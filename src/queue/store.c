/*
 * store.c - durable queue store: group commit, recovery, in-place state updates (see store.h).
 */
#include "queue/store.h"
#include "core/metrics.h"
#include "queue/qwalk.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct {
    char *path;
    size_t n;
    off_t *offs;
    uint8_t *bytes;
    store_done_cb cb;
    void *arg;
    bool remove;
    sl_result res;
    char err[256];
    struct store *s;
} ujob;

/* Committer threads: while one waits for its batch's flush, the next batch starts on another, so a
   message never waits for a whole flush that began before it arrived (the file system merges
   concurrent flushes into one journal commit). */
#ifndef STORE_COMMITTERS
#define STORE_COMMITTERS 2
#endif

typedef struct creq {
    struct creq *next;
    ujob *upd; /* a state update riding along with the commits (no files) */
    store_file *files;
    size_t n;
    store_commit_cb cb;
    void *arg;
    sl_result res;
    char err[256];
    store *s;
} creq;

struct store {
    char *qdir;
    workq *wq;
    completion_port *port;
    pthread_t threads[STORE_COMMITTERS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    creq *head, *tail;   /* urgent: commits a client is waiting for */
    creq *bhead, *btail; /* background: notifications, state updates, removals */
    bool stopping;
    uint32_t counter;
    uint64_t last_us;
    /* Finished queue files are recycled instead of unlinked (QUEUE/.free/N): creating a new inode
       for every message makes ext4 search its bitmaps for an inode that was not deleted
       recently, which dominated the CPU profile under load. */
    pthread_mutex_t free_mu;
    unsigned *free_ids; /* names of recyclable files in .free/ */
    size_t n_free, cap_free;
    unsigned next_free_id;
    /* Background recovery (store_recover_start): ids this process put into the channel
       directories while the scan runs, so the scan never hands the same message over twice. */
    pthread_mutex_t claim_mu;
    bool recovering, recover_stop, recover_thread;
    char **claimed; /* open addressing, NULL = empty */
    size_t n_claimed, cap_claimed;
    pthread_t recover_tid;
    store_recover_batch_cb rbatch;
    store_recover_done_cb rdone;
    void *rarg;
};

/* claim_slot - the slot of id in the claimed set (its own, or the empty one it would take). */
static unsigned id_hash(const char *id);

static size_t claim_slot(char **tab, size_t cap, const char *id)
{
    size_t i = id_hash(id) & (cap - 1);
    while (tab[i] && strcmp(tab[i], id) != 0) i = (i + 1) & (cap - 1);
    return i;
}

void store_claim(store *s, const char *id)
{
    pthread_mutex_lock(&s->claim_mu);
    if (s->recovering) {
        if ((s->n_claimed + 1) * 2 > s->cap_claimed) {
            size_t ncap = s->cap_claimed ? s->cap_claimed * 2 : 1024;
            char **nt = xcalloc(ncap, sizeof *nt);
            for (size_t i = 0; i < s->cap_claimed; i++)
                if (s->claimed[i]) nt[claim_slot(nt, ncap, s->claimed[i])] = s->claimed[i];
            free(s->claimed);
            s->claimed = nt;
            s->cap_claimed = ncap;
        }
        size_t i = claim_slot(s->claimed, s->cap_claimed, id);
        if (!s->claimed[i]) {
            s->claimed[i] = xstrdup(id);
            s->n_claimed++;
        }
    }
    pthread_mutex_unlock(&s->claim_mu);
}

/* claimed - whether this process already owns the file named id (recovery thread). */
static bool claimed(store *s, const char *id)
{
    pthread_mutex_lock(&s->claim_mu);
    bool yes = s->cap_claimed && s->claimed[claim_slot(s->claimed, s->cap_claimed, id)] != NULL;
    pthread_mutex_unlock(&s->claim_mu);
    return yes;
}

static void claims_clear(store *s)
{
    pthread_mutex_lock(&s->claim_mu);
    for (size_t i = 0; i < s->cap_claimed; i++) free(s->claimed[i]);
    free(s->claimed);
    s->claimed = NULL;
    s->n_claimed = s->cap_claimed = 0;
    s->recovering = false;
    pthread_mutex_unlock(&s->claim_mu);
}

#define STORE_FREE_MAX 4096 /* recycled files kept at most */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* mkdir_one - create p; a directory really created is made durable in its parent (fsync), so
 * that a file renamed into it later cannot vanish with it in a crash. */
static int mkdir_one(char *p)
{
    if (mkdir(p, 0700) < 0) return errno == EEXIST ? 0 : -1;
    char *slash = strrchr(p, '/');
    if (!slash || slash == p) return fsync_dir("/");
    *slash = '\0';
    int rc = fsync_dir(p);
    *slash = '/';
    return rc;
}

static int mkdir_p(const char *path)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1; *s && rc == 0; s++) {
        if (*s != '/') continue;
        *s = '\0';
        rc = mkdir_one(p);
        *s = '/';
    }
    if (rc == 0) rc = mkdir_one(p);
    free(p);
    return rc;
}


/* write_file - the three parts of f with writev, resumed after a short write. */
static int write_file(int fd, const store_file *f)
{
    struct iovec iov[3] = {
        {f->data.data, f->data.len},
        {f->content ? f->content->data : NULL, f->content ? f->content->len : 0},
        {f->tail.data, f->tail.len},
    };
    int i = 0;
    while (i < 3) {
        if (iov[i].iov_len == 0) {
            i++;
            continue;
        }
        ssize_t w = writev(fd, iov + i, 3 - i);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        for (size_t left = (size_t)w; left && i < 3; i++) {
            size_t take = left < iov[i].iov_len ? left : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + take;
            iov[i].iov_len -= take;
            left -= take;
            if (iov[i].iov_len) break;
        }
    }
    return 0;
}

static unsigned id_hash(const char *id)
{
    unsigned h = 2166136261u;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
    return h;
}

/* queue_dir_of - QUEUE/<channel>/<NNN> for an id; caller frees. */
static char *queue_dir_of(const char *qdir, const char *channel, unsigned subdirs, const char *id)
{
    unsigned sub = subdirs ? id_hash(id) % subdirs : 0;
    return xasprintf("%s/%s/%03u", qdir, channel, sub);
}

char *store_queue_path(const char *qdir, const char *channel, unsigned subdirs, const char *id)
{
    char *dir = queue_dir_of(qdir, channel, subdirs, id);
    char *p = xasprintf("%s/%s", dir, id);
    free(dir);
    return p;
}

/* file_dir - QUEUE/<channel>/<NNN> for a file; caller frees. */
static char *file_dir(const store *s, const store_file *f)
{
    return queue_dir_of(s->qdir, f->channel, f->subdirs, f->id);
}

/* commit_write_tmp - write one file into tmp/; returns its fd (still open) or -1. */
/* free_take - a recycled file renamed to path, or false when the pool is empty. */
static bool free_take(store *s, const char *path)
{
    for (;;) {
        pthread_mutex_lock(&s->free_mu);
        bool have = s->n_free > 0;
        unsigned id = have ? s->free_ids[--s->n_free] : 0;
        pthread_mutex_unlock(&s->free_mu);
        if (!have) return false;
        char *from = xasprintf("%s/.free/%u", s->qdir, id);
        int rc = rename(from, path);
        free(from);
        if (rc == 0) return true;
    }
}

static int commit_write_tmp(store *s, store_file *f, char *err, size_t errlen)
{
    char *tmp = xasprintf("%s/tmp/%s.%s", s->qdir, f->id, f->channel);
    int fd = free_take(s, tmp) ? open(tmp, O_WRONLY | O_TRUNC | O_CLOEXEC)
                               : open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write_file(fd, f) < 0) {
        snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
        unlink(tmp);
        fd = -1;
    }
    free(tmp);
    return fd;
}

static void commit_cleanup(store *s, creq *r, size_t upto, bool renamed)
{
    for (size_t i = 0; i < upto; i++) {
        store_file *f = &r->files[i];
        if (renamed && f->path) unlink(f->path);
        char *tmp = xasprintf("%s/tmp/%s.%s", s->qdir, f->id, f->channel);
        unlink(tmp);
        free(tmp);
    }
}

static int update_write(ujob *u);

/* commit_batch - write, flush, rename and fsync directories for a batch of requests. */
/* batch_fds - every open descriptor of a batch, for the flush. */
typedef struct {
    int *fd;
    creq **owner;
    size_t n, cap;
} batch_fds;

static void fds_add(batch_fds *b, int fd, creq *owner)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->fd = xrealloc(b->fd, b->cap * sizeof *b->fd);
        b->owner = xrealloc(b->owner, b->cap * sizeof *b->owner);
    }
    b->fd[b->n] = fd;
    b->owner[b->n++] = owner;
}

static void req_fail(creq *r, const char *what, int err)
{
    if (r->upd) {
        if (r->upd->res != SL_OK) return;
        r->upd->res = SL_TEMP;
        snprintf(r->upd->err, sizeof r->upd->err, "%s %s: %s", what, r->upd->path, strerror(err));
    } else if (r->res == SL_OK) {
        r->res = SL_TEMP;
        snprintf(r->err, sizeof r->err, "%s: %s", what, strerror(err));
    }
}

/* batch_measured - a batch of nfiles files took ns to become durable (metrics; committer thread). */
static void batch_measured(size_t nfiles, uint64_t ns)
{
    if (!nfiles) return;
    metric_add(&METRIC_COMMIT_BATCHES, NULL, 1);
    metric_add(&METRIC_COMMIT_FILES, NULL, nfiles);
    metric_observe(&METRIC_FLUSH_SECONDS, NULL, (double)ns / 1e9);
}

static void commit_batch(store *s, creq *batch)
{
    uint64_t started = now_mono_ns();
    batch_fds b = {0};
    for (creq *r = batch; r; r = r->next) {
        r->res = SL_OK;
        if (r->upd) {
            if (r->upd->remove) continue; /* after the batch's completions (committer_main) */
            int fd = update_write(r->upd);
            if (fd >= 0) fds_add(&b, fd, r);
            continue;
        }
        for (size_t i = 0; i < r->n; i++) {
            int fd = commit_write_tmp(s, &r->files[i], r->err, sizeof r->err);
            if (fd < 0) {
                r->res = SL_TEMP;
                break;
            }
            fds_add(&b, fd, r);
        }
    }
    /* Group commit: start the writeback of every file of the batch, then wait for each; the
       device sees one batch, and other writers on the file system are not waited for. */
    for (size_t i = 0; i < b.n; i++) sync_file_range(b.fd[i], 0, 0, SYNC_FILE_RANGE_WRITE);
    for (size_t i = 0; i < b.n; i++) {
        if (fdatasync(b.fd[i]) < 0) req_fail(b.owner[i], "fdatasync", errno);
        if (close(b.fd[i]) < 0) req_fail(b.owner[i], "close", errno);
    }
    size_t nfiles = b.n;
    free(b.fd);
    free(b.owner);
    for (creq *r = batch; r; r = r->next)
        if (!r->upd && r->res != SL_OK) commit_cleanup(s, r, r->n, false);
    strvec dirs = {0};
    for (creq *r = batch; r; r = r->next) {
        if (r->upd || r->res != SL_OK) continue;
        for (size_t i = 0; i < r->n; i++) {
            store_file *f = &r->files[i];
            char *dir = file_dir(s, f);
            char *tmp = xasprintf("%s/tmp/%s.%s", s->qdir, f->id, f->channel);
            f->path = xasprintf("%s/%s", dir, f->id);
            store_claim(s, f->id);
            int rc = rename(tmp, f->path);
            if (rc < 0 && errno == ENOENT && mkdir_p(dir) == 0) rc = rename(tmp, f->path); /* first use */
            if (rc < 0) {
                snprintf(r->err, sizeof r->err, "rename %s: %s", f->path, strerror(errno));
                r->res = SL_TEMP;
            } else if (!sv_contains_ci(&dirs, dir)) {
                sv_push(&dirs, dir);
            }
            free(tmp);
            free(dir);
            if (r->res != SL_OK) {
                commit_cleanup(s, r, r->n, true);
                break;
            }
        }
    }
    /* The renames are durable once each directory is fsync'd. */
    for (size_t i = 0; i < dirs.n; i++) {
        if (fsync_dir(dirs.v[i]) == 0) continue;
        int e = errno;
        for (creq *r = batch; r; r = r->next) {
            if (r->res != SL_OK || r->upd) continue;
            for (size_t j = 0; j < r->n; j++) {
                if (strncmp(r->files[j].path, dirs.v[i], strlen(dirs.v[i])) != 0) continue;
                snprintf(r->err, sizeof r->err, "fsync %s: %s", dirs.v[i], strerror(e));
                r->res = SL_TEMP;
                commit_cleanup(s, r, r->n, true);
                break;
            }
        }
    }
    sv_free(&dirs);
    batch_measured(nfiles, now_mono_ns() - started);
}

static void update_done(void *arg);

static void commit_done(void *arg)
{
    creq *r = arg;
    if (r->upd) {
        update_done(r->upd);
        free(r);
        return;
    }
    r->cb(r->arg, r->res, r->err, r->files, r->n);
    for (size_t i = 0; i < r->n; i++) {
        free(r->files[i].channel);
        free(r->files[i].path);
        sb_free(&r->files[i].data);
        sb_free(&r->files[i].tail);
        qbody_unref(r->files[i].content);
    }
    free(r->files);
    free(r);
}

static void remove_run(void *arg);

static void *committer_main(void *arg)
{
    store *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->bhead && !s->stopping) pthread_cond_wait(&s->cv, &s->mu);
        /* take what waits, up to 32 requests: every file stays open until the batch's flush, and a
           commit arriving meanwhile should not wait behind a huge batch. The commits clients wait
           for come first; background work (DSNs, state updates, removals) fills the rest, so a
           storm of bounces cannot push an ordinary message's 250 back. */
        creq *batch = NULL, **bt = &batch;
        int n = 0;
        while (n < 32 && (s->head || s->bhead)) {
            creq **lane = s->head ? &s->head : &s->bhead;
            creq *r = *lane;
            *lane = r->next;
            if (!*lane) {
                if (lane == &s->head) s->tail = NULL;
                else s->btail = NULL;
            }
            r->next = NULL;
            *bt = r;
            bt = &r->next;
            n++;
        }
        pthread_mutex_unlock(&s->mu);
        if (!batch) return NULL;
        commit_batch(s, batch);
        /* Commits and state updates are answered first; then the removals of finished files
           (renamed into .free/ for reuse) run here too, so that no other thread is woken. */
        creq *removals = NULL, **rt = &removals;
        while (batch) {
            creq *next = batch->next;
            if (batch->upd && batch->upd->remove) {
                batch->next = NULL;
                *rt = batch;
                rt = &batch->next;
            } else {
                completion_port_post(s->port, commit_done, batch);
            }
            batch = next;
        }
        while (removals) {
            creq *next = removals->next;
            remove_run(removals->upd);
            completion_port_post(s->port, commit_done, removals);
            removals = next;
        }
    }
}

/* remove_files_in - unlink every file of dir (names starting with '.' excepted). */
static void remove_files_in(const char *dir)
{
    strvec names = {0};
    qwalk_list(dir, &names);
    for (size_t i = 0; i < names.n; i++) {
        char *p = xasprintf("%s/%s", dir, names.v[i]);
        unlink(p);
        free(p);
    }
    sv_free(&names);
}

/* free_reset - start with an empty pool: whatever an earlier run left in .free/ is removed. */
static void free_reset(store *s)
{
    char *dir = xasprintf("%s/.free", s->qdir);
    mkdir(dir, 0700);
    remove_files_in(dir);
    free(dir);
}

store *store_open(struct event_base *base, workq *wq, const char *qdir, char *err, size_t errlen)
{
    char *tmp = xasprintf("%s/tmp", qdir), *bad = xasprintf("%s/corrupt", qdir);
    int rc = mkdir_p(tmp) == 0 && mkdir_p(bad) == 0 ? 0 : -1;
    if (rc < 0) snprintf(err, errlen, "cannot create %s: %s", qdir, strerror(errno));
    free(tmp);
    free(bad);
    if (rc < 0) return NULL;
    store *s = xcalloc(1, sizeof *s);
    s->qdir = xstrdup(qdir);
    s->wq = wq;
    s->port = completion_port_new(base);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->free_mu, NULL);
    pthread_mutex_init(&s->claim_mu, NULL);
    s->recovering = true; /* claims count from the start: start-up returns come before the scan */
    free_reset(s);
    for (int i = 0; i < STORE_COMMITTERS; i++)
        if (pthread_create(&s->threads[i], NULL, committer_main, s) != 0) fatal("cannot start committer thread");
    return s;
}

void store_close(store *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < STORE_COMMITTERS; i++) pthread_join(s->threads[i], NULL);
    if (s->recover_thread) {
        pthread_mutex_lock(&s->claim_mu);
        s->recover_stop = true;
        pthread_mutex_unlock(&s->claim_mu);
        pthread_join(s->recover_tid, NULL);
    }
    completion_port_free(s->port);
    claims_clear(s);
    pthread_mutex_destroy(&s->claim_mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->free_mu);
    free(s->free_ids);
    free(s->qdir);
    free(s);
}

void store_new_id(store *s, char *buf, size_t len)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
    /* Strictly increasing per process; the time part keeps ids unique across restarts. */
    if (us <= s->last_us) us = s->last_us + 1;
    s->last_us = us;
    snprintf(buf, len, "%013" PRIX64 "%03X", us, (unsigned)(s->counter++ & 0xfff));
}

static void store_enqueue(store *s, creq *r, bool urgent)
{
    pthread_mutex_lock(&s->mu);
    creq **head = urgent ? &s->head : &s->bhead, **tail = urgent ? &s->tail : &s->btail;
    if (*tail) (*tail)->next = r;
    else *head = r;
    *tail = r;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void store_commit_bg(store *s, store_file *files, size_t n, bool urgent, store_commit_cb cb, void *arg)
{
    creq *r = xcalloc(1, sizeof *r);
    r->files = files;
    r->n = n;
    r->cb = cb;
    r->arg = arg;
    r->s = s;
    store_enqueue(s, r, urgent);
}

void store_commit(store *s, store_file *files, size_t n, store_commit_cb cb, void *arg)
{
    store_commit_bg(s, files, n, true, cb, arg);
}


static void move_corrupt(store *s, const char *path, const char *chan, const char *name, const char *why)
{
    /* channel-qualified, so that two damaged files of one message never overwrite each other */
    char *dst = xasprintf("%s/corrupt/%s.%s", s->qdir, chan, name);
    if (rename(path, dst) < 0)
        log_error(name, "corrupt", "path=%s reason=\"%s\" move_error=\"%s\"", path, why, strerror(errno));
    else
        log_error(name, "corrupt", "path=%s moved_to=%s reason=\"%s\"", path, dst, why);
    free(dst);
}

static bool recover_stopping(store *s)
{
    pthread_mutex_lock(&s->claim_mu);
    bool stop = s->recover_stop;
    pthread_mutex_unlock(&s->claim_mu);
    return stop;
}

/* recover_file - read and validate one queue file: the message, or NULL (damaged ones moved aside). */
static qmsg *recover_file(store *s, const char *path, const char *chan, const char *name)
{
    strbuf sb;
    sb_init(&sb);
    char err[256];
    qmsg *m = NULL;
    if (file_read(path, &sb) < 0) {
        if (errno != ENOENT) log_error(name, "queue_read_error", "path=%s error=\"%s\"", path, strerror(errno));
        goto out;
    }
    m = xcalloc(1, sizeof *m);
    if (qfile_decode(sb.data ? sb.data : "", sb.len, m, err, sizeof err) < 0) {
        move_corrupt(s, path, chan, name, err);
        free(m);
        m = NULL;
    }
out:
    sb_free(&sb);
    return m;
}

/* recover_tmp - remove files left in tmp/: they were never acknowledged (not yet renamed). */
static void recover_tmp(store *s)
{
    char *tmpdir = xasprintf("%s/tmp", s->qdir);
    remove_files_in(tmpdir);
    free(tmpdir);
}

/* recover_visit - called for each valid file; returns false to stop the scan. */
typedef bool (*recover_visit)(void *ctx, qmsg *m, char *path);

/* One recovery scan in progress. */
typedef struct {
    store *s;
    recover_visit visit;
    void *ctx;
    size_t found;
} recover_walk;

/* recover_one - one file of the walk: validated (or moved aside) and handed to the visitor. */
static bool recover_one(void *arg, const char *channel, const char *name, const char *path)
{
    recover_walk *w = arg;
    if (recover_stopping(w->s)) return false;
    if (claimed(w->s, name)) return true; /* committed or moved in by this process */
    char *p = xstrdup(path);
    qmsg *m = recover_file(w->s, p, channel, name);
    if (!m) {
        free(p);
        return true;
    }
    w->found++;
    return w->visit(w->ctx, m, p);
}

/* recover_scan - every QUEUE/<channel>/<NNN>/<id>, one directory at a time; returns files found. */
static size_t recover_scan(store *s, recover_visit visit, void *ctx)
{
    recover_walk w = {s, visit, ctx, 0};
    qwalk_tree(s->qdir, recover_one, &w);
    return w.found;
}

typedef struct {
    store_recover_cb cb;
    void *arg;
} sync_visit;

static bool visit_sync(void *ctx, qmsg *m, char *path)
{
    sync_visit *v = ctx;
    v->cb(v->arg, m, path);
    return true;
}

size_t store_recover(store *s, store_recover_cb cb, void *arg)
{
    sync_visit v = {cb, arg};
    claims_clear(s); /* the blocking scan hands everything over */
    recover_tmp(s);
    return recover_scan(s, visit_sync, &v);
}

#define RECOVER_BATCH 256 /* messages handed to the loop at a time */

typedef struct {
    store *s;
    qmsg *msgs[RECOVER_BATCH];
    char *paths[RECOVER_BATCH];
    size_t n;
    bool last;
    size_t found;
    double secs;
} rbatch;

static void rbatch_done(void *arg)
{
    rbatch *b = arg;
    store *s = b->s;
    if (recover_stopping(s)) { /* the daemon is stopping: the files stay for the next start */
        for (size_t i = 0; i < b->n; i++) {
            qmsg_free(b->msgs[i]);
            free(b->msgs[i]);
            free(b->paths[i]);
        }
        if (b->last) log_info(NULL, "recovery_stopped", "messages=%zu secs=%.3f", b->found, b->secs);
    } else {
        if (b->n) s->rbatch(s->rarg, b->msgs, b->paths, b->n);
        if (b->last) {
            claims_clear(s);
            s->rdone(s->rarg, b->found, b->secs);
        }
    }
    free(b);
}

typedef struct {
    store *s;
    rbatch *cur;
} bg_visit;

static bool visit_bg(void *ctx, qmsg *m, char *path)
{
    bg_visit *v = ctx;
    if (!v->cur) {
        v->cur = xcalloc(1, sizeof *v->cur);
        v->cur->s = v->s;
    }
    v->cur->msgs[v->cur->n] = m;
    v->cur->paths[v->cur->n++] = path;
    if (v->cur->n == RECOVER_BATCH) {
        completion_port_post(v->s->port, rbatch_done, v->cur);
        v->cur = NULL;
    }
    return !recover_stopping(v->s);
}

static void *recover_main(void *arg)
{
    store *s = arg;
    int64_t t0 = now_mono_ms();
    bg_visit v = {s, NULL};
    size_t found = recover_scan(s, visit_bg, &v);
    if (!v.cur) {
        v.cur = xcalloc(1, sizeof *v.cur);
        v.cur->s = s;
    }
    v.cur->last = true;
    v.cur->found = found;
    v.cur->secs = (double)(now_mono_ms() - t0) / 1000.0;
    completion_port_post(s->port, rbatch_done, v.cur);
    return NULL;
}

bool store_recover_stop(store *s, int timeout_ms)
{
    if (!s->recover_thread) return true;
    pthread_mutex_lock(&s->claim_mu);
    s->recover_stop = true;
    pthread_mutex_unlock(&s->claim_mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(s->recover_tid, NULL, &ts) != 0) return false;
    s->recover_thread = false;
    return true;
}

void store_recover_start(store *s, store_recover_batch_cb batch, store_recover_done_cb done, void *arg)
{
    recover_tmp(s);
    s->rbatch = batch;
    s->rdone = done;
    s->rarg = arg;
    pthread_mutex_lock(&s->claim_mu);
    s->recovering = true;
    pthread_mutex_unlock(&s->claim_mu);
    if (pthread_create(&s->recover_tid, NULL, recover_main, s) != 0) fatal("cannot start the recovery thread");
    s->recover_thread = true;
}

/* update_write - pwrite a state update; returns the open descriptor for the batch's flush, or -1. */
static int update_write(ujob *u)
{
    u->res = SL_OK;
    int fd = open(u->path, O_WRONLY | O_CLOEXEC);
    size_t sz = qfile_state_size();
    bool ok = fd >= 0;
    for (size_t i = 0; ok && i < u->n; i++) ok = pwrite(fd, u->bytes + i * sz, sz, u->offs[i]) == (ssize_t)sz;
    if (ok) return fd;
    u->res = SL_TEMP;
    snprintf(u->err, sizeof u->err, "update %s: %s", u->path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
}

/* remove_run - unlink a finished queue file (worker thread). */
/* free_put - keep a finished file for reuse; false when the pool is full (then unlink it). */
static bool free_put(store *s, const char *path)
{
    pthread_mutex_lock(&s->free_mu);
    bool room = s->n_free < STORE_FREE_MAX;
    unsigned id = s->next_free_id++;
    pthread_mutex_unlock(&s->free_mu);
    if (!room) return false;
    char *to = xasprintf("%s/.free/%u", s->qdir, id);
    int rc = rename(path, to);
    free(to);
    if (rc < 0) return false;
    pthread_mutex_lock(&s->free_mu);
    if (s->n_free == s->cap_free) {
        s->cap_free = s->cap_free ? s->cap_free * 2 : 256;
        s->free_ids = xrealloc(s->free_ids, s->cap_free * sizeof *s->free_ids);
    }
    s->free_ids[s->n_free++] = id;
    pthread_mutex_unlock(&s->free_mu);
    return true;
}

static void remove_run(void *arg)
{
    ujob *u = arg;
    u->res = SL_OK;
    if (free_put(u->s, u->path)) return;
    if (unlink(u->path) < 0 && errno != ENOENT) {
        u->res = SL_TEMP;
        snprintf(u->err, sizeof u->err, "unlink: %s", strerror(errno));
    }
}

static void update_done(void *arg)
{
    ujob *u = arg;
    if (u->cb) u->cb(u->arg, u->res, u->err);
    free(u->path);
    free(u->offs);
    free(u->bytes);
    free(u);
}

void store_update_states(store *s, const char *path, const qmsg *msg, store_done_cb cb, void *arg)
{
    ujob *u = xcalloc(1, sizeof *u);
    size_t sz = qfile_state_size();
    u->path = xstrdup(path);
    u->n = msg->n_rcpts;
    u->offs = xcalloc(u->n, sizeof *u->offs);
    u->bytes = xcalloc(u->n, sz);
    for (size_t i = 0; i < u->n; i++) {
        u->offs[i] = msg->rcpts[i].state_off;
        qfile_state_pack(&msg->rcpts[i], u->bytes + i * sz);
    }
    u->cb = cb;
    u->arg = arg;
    /* state updates share the committer's flush with the commits waiting at the same time */
    creq *r = xcalloc(1, sizeof *r);
    r->upd = u;
    r->s = s;
    store_enqueue(s, r, false);
}

void store_remove(store *s, const char *path, store_done_cb cb, void *arg)
{
    ujob *u = xcalloc(1, sizeof *u);
    u->path = xstrdup(path);
    u->remove = true;
    u->cb = cb;
    u->arg = arg;
    u->s = s;
    creq *r = xcalloc(1, sizeof *r);
    r->upd = u;
    r->s = s;
    store_enqueue(s, r, false);
}
