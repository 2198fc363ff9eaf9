/* test_store.c - the queue store on a real file system: group commit, recovery, state updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/workq.h"
#include "queue/qfile.h"
#include "queue/store.h"

typedef struct {
    struct event_base *base;
    workq *wq;
    store *st;
    char dir[64];
    int done;
    sl_result res;
    char path[512];
} fx;

static int setup(void **state)
{
    fx *f = xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sluice-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->base = event_base_new();
    f->wq = workq_new(f->base, 2);
    char err[256];
    f->st = store_open(f->base, f->wq, f->dir, err, sizeof err);
    assert_non_null(f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->st) store_close(f->st);
    workq_free(f->wq);
    event_base_free(f->base);
    char *cmd = xasprintf("rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(f);
    return 0;
}

static void make_msg(qmsg *m, const char *id, const char *chan)
{
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", id);
    m->channel = xstrdup(chan);
    m->sender = xstrdup("a@b.test");
    m->arrival = 1700000000;
    qmsg_add_rcpt(m, "x@y.test", "x@y.test", NULL, "y.test", 0);
    qmsg_add_rcpt(m, "z@y.test", "z@y.test", NULL, "y.test", 0);
    const char *text = "Subject: t\r\n\r\nbody\r\n";
    qmsg_set_content(m, qbody_copy(text, strlen(text)));
    m->data_len = strlen(m->data);
}

static void committed(void *arg, sl_result res, const char *err, store_file *files, size_t n)
{
    fx *f = arg;
    (void)err;
    f->done++;
    f->res = res;
    if (n && files[0].path) snprintf(f->path, sizeof f->path, "%s", files[0].path);
}

static void run_until(fx *f, int done)
{
    for (int i = 0; i < 500 && f->done < done; i++) event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(2000);
    assert_true(f->done >= done);
}

static void commit_one(fx *f, const char *id, const char *chan, unsigned subdirs, qmsg *m)
{
    make_msg(m, id, chan);
    store_file *files = xcalloc(1, sizeof *files);
    files[0].channel = xstrdup(chan);
    files[0].subdirs = subdirs;
    snprintf(files[0].id, sizeof files[0].id, "%s", id);
    qfile_encode(m, &files[0].data);
    store_commit(f->st, files, 1, committed, f);
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void test_commit_many_share_flushes(void **state)
{
    fx *f = *state;
    qmsg m[50];
    char id[32];
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "ID%04d", i);
        commit_one(f, id, "tcp_local", 4, &m[i]);
    }
    run_until(f, 50);
    assert_int_equal(f->res, SL_OK);
    int total = 0;
    for (int s = 0; s < 4; s++) {
        char *d = xasprintf("%s/tcp_local/%03d", f->dir, s);
        int n = count_files(d);
        if (n > 0) total += n;
        free(d);
    }
    assert_int_equal(total, 50);
    char *tmp = xasprintf("%s/tmp", f->dir);
    assert_int_equal(count_files(tmp), 0);
    free(tmp);
    for (int i = 0; i < 50; i++) qmsg_free(&m[i]);
}

typedef struct {
    int n;
    qmsg *got[8];
    char *paths[8];
} recov;

static void on_recover(void *arg, qmsg *msg, char *path)
{
    recov *r = arg;
    assert_true(r->n < 8);
    r->got[r->n] = msg;
    r->paths[r->n++] = path;
}

static void test_recover_valid_corrupt_and_tmp(void **state)
{
    fx *f = *state;
    qmsg m;
    commit_one(f, "GOOD1", "l", 1, &m);
    run_until(f, 1);
    assert_int_equal(f->res, SL_OK);
    /* a damaged file in a channel directory and a leftover in tmp/ */
    char *bad = xasprintf("%s/l/000/BAD1", f->dir);
    FILE *fp = fopen(bad, "w");
    fputs("SLQF garbage", fp);
    fclose(fp);
    char *tmp = xasprintf("%s/tmp/LEFT.l", f->dir);
    fp = fopen(tmp, "w");
    fputs("partial", fp);
    fclose(fp);
    recov r = {0};
    assert_int_equal(store_recover(f->st, on_recover, &r), 1);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.got[0]->id, "GOOD1");
    assert_int_equal(r.got[0]->n_rcpts, 2);
    assert_int_equal(access(bad, F_OK), -1);
    char *moved = xasprintf("%s/corrupt/l.BAD1", f->dir);
    assert_int_equal(access(moved, F_OK), 0);
    assert_int_equal(access(tmp, F_OK), -1);
    qmsg_free(r.got[0]);
    free(r.got[0]);
    free(r.paths[0]);
    free(moved);
    free(bad);
    free(tmp);
    qmsg_free(&m);
}

static void updated(void *arg, sl_result res, const char *err)
{
    fx *f = arg;
    (void)err;
    f->res = res;
    f->done++;
}

static void test_state_update_is_durable_in_place(void **state)
{
    fx *f = *state;
    qmsg m;
    commit_one(f, "UPD1", "l", 1, &m);
    run_until(f, 1);
    m.rcpts[1].status = QR_DELIVERED;
    m.rcpts[0].attempts = 3;
    m.rcpts[0].next_attempt = 1800000000;
    store_update_states(f->st, f->path, &m, updated, f);
    run_until(f, 2);
    assert_int_equal(f->res, SL_OK);
    recov r = {0};
    store_recover(f->st, on_recover, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.got[0]->rcpts[1].status, QR_DELIVERED);
    assert_int_equal(r.got[0]->rcpts[0].status, QR_PENDING);
    assert_int_equal(r.got[0]->rcpts[0].attempts, 3);
    assert_int_equal(r.got[0]->rcpts[0].next_attempt, 1800000000);
    store_remove(f->st, f->path, updated, f);
    run_until(f, 3);
    assert_int_equal(access(f->path, F_OK), -1);
    qmsg_free(r.got[0]);
    free(r.got[0]);
    free(r.paths[0]);
    qmsg_free(&m);
}

static void test_commit_failure_leaves_nothing(void **state)
{
    fx *f = *state;
    /* a channel name that is a file, not a directory, makes the rename fail */
    char *blocker = xasprintf("%s/blocked", f->dir);
    FILE *fp = fopen(blocker, "w");
    fclose(fp);
    qmsg m;
    commit_one(f, "FAIL1", "blocked", 1, &m);
    run_until(f, 1);
    assert_int_equal(f->res, SL_TEMP);
    char *tmp = xasprintf("%s/tmp", f->dir);
    assert_int_equal(count_files(tmp), 0);
    free(tmp);
    free(blocker);
    qmsg_free(&m);
}

static void test_ids_unique_and_ordered(void **state)
{
    fx *f = *state;
    char prev[32] = "", cur[32];
    for (int i = 0; i < 1000; i++) {
        store_new_id(f->st, cur, sizeof cur);
        assert_true(strcmp(cur, prev) > 0);
        memcpy(prev, cur, sizeof cur);
    }
}

/* ---- store_recover_start: the background scan ---- */

#define BG_MAX 4096

typedef struct {
    fx *f;
    int handed[BG_MAX];  /* times each "P<idx>" file was handed over */
    int others;          /* files handed over that are not "P<idx>" */
    char other_ids[8][32];
    int batches;
    size_t total;        /* messages handed over so far */
    int done;
    size_t found;
    size_t total_at_done;
} bgrec;

static void on_bg_batch(void *arg, qmsg **msgs, char **paths, size_t n)
{
    bgrec *r = arg;
    assert_true(n >= 1 && n <= 256);
    assert_int_equal(r->done, 0); /* no batch after done */
    r->batches++;
    for (size_t i = 0; i < n; i++) {
        const char *slash = strrchr(paths[i], '/');
        assert_non_null(slash);
        assert_string_equal(slash + 1, msgs[i]->id); /* the path is the message's own file */
        assert_int_equal(access(paths[i], F_OK), 0);
        int idx;
        char tail;
        if (sscanf(msgs[i]->id, "P%d%c", &idx, &tail) == 1 && idx >= 0 && idx < BG_MAX) {
            r->handed[idx]++;
        } else {
            if (r->others < 8) snprintf(r->other_ids[r->others], 32, "%s", msgs[i]->id);
            r->others++;
        }
        r->total++;
        qmsg_free(msgs[i]);
        free(msgs[i]);
        free(paths[i]);
    }
}

static void on_bg_done(void *arg, size_t found, double secs)
{
    bgrec *r = arg;
    assert_true(secs >= 0);
    r->done++;
    r->found = found;
    r->total_at_done = r->total;
}

/* put_file - a valid queue file written straight into QUEUE/<chan>/<NNN>/<id> (a previous run's queue). */
static void put_file(fx *f, const char *chan, unsigned subdirs, const char *id)
{
    qmsg m;
    make_msg(&m, id, chan);
    strbuf sb;
    sb_init(&sb);
    qfile_encode(&m, &sb);
    char *path = store_queue_path(f->dir, chan, subdirs, id);
    char *dir = xstrdup(path);
    *strrchr(dir, '/') = '\0';
    char *parent = xstrdup(dir);
    *strrchr(parent, '/') = '\0';
    mkdir(parent, 0700);
    mkdir(dir, 0700);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(sb.data, 1, sb.len, fp), sb.len);
    assert_int_equal(fclose(fp), 0);
    free(parent);
    free(dir);
    free(path);
    sb_free(&sb);
    qmsg_free(&m);
}

/* put_many - files P<from> .. P<to-1> in chan. */
static void put_many(fx *f, const char *chan, unsigned subdirs, int from, int to)
{
    char id[32];
    for (int i = from; i < to; i++) {
        snprintf(id, sizeof id, "P%d", i);
        put_file(f, chan, subdirs, id);
    }
}

static void pump(fx *f)
{
    event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    usleep(1000);
}

/* pump_until_done - run the loop until the scan reported done (bounded: 60 s). */
static void pump_until_done(fx *f, bgrec *r)
{
    for (int i = 0; i < 60000 && !r->done; i++) pump(f);
    assert_int_equal(r->done, 1);
}

static void test_recover_start_batches_each_once(void **state)
{
    fx *f = *state;
    static bgrec r;
    memset(&r, 0, sizeof r);
    /* 700 files (three batches at least) over two channels and several subdirectories */
    put_many(f, "tcp_a", 4, 0, 600);
    put_many(f, "b", 1, 600, 700);
    /* a damaged file and a leftover in tmp/ */
    char *bad = xasprintf("%s/b/000/BAD1", f->dir);
    FILE *fp = fopen(bad, "w");
    fputs("SLQF garbage", fp);
    fclose(fp);
    char *tmp = xasprintf("%s/tmp/LEFT.b", f->dir);
    fp = fopen(tmp, "w");
    fputs("partial", fp);
    fclose(fp);
    store_recover_start(f->st, on_bg_batch, on_bg_done, &r);
    assert_int_equal(access(tmp, F_OK), -1); /* tmp/ is cleaned before store_recover_start returns */
    pump_until_done(f, &r);
    assert_int_equal(r.found, 700);
    assert_int_equal(r.total, 700);
    assert_int_equal(r.total_at_done, 700); /* every batch reached the loop before done */
    assert_int_equal(r.others, 0);
    for (int i = 0; i < 700; i++)
        if (r.handed[i] != 1) fail_msg("P%d handed over %d times", i, r.handed[i]);
    assert_true(r.batches >= 3);
    char *moved = xasprintf("%s/corrupt/b.BAD1", f->dir);
    assert_int_equal(access(moved, F_OK), 0);
    /* nothing more arrives afterwards */
    for (int i = 0; i < 50; i++) pump(f);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.total, 700);
    free(moved);
    free(bad);
    free(tmp);
}

/* An empty queue: done once, with found=0 and no batch. */
static void test_recover_start_empty(void **state)
{
    fx *f = *state;
    static bgrec r;
    memset(&r, 0, sizeof r);
    store_recover_start(f->st, on_bg_batch, on_bg_done, &r);
    pump_until_done(f, &r);
    assert_int_equal(r.found, 0);
    assert_int_equal(r.batches, 0);
}

/*
 * Gates: a FIFO in a channel directory stops the scan thread in open() until the test opens it
 * for writing (the scan then reads an empty file, declares it damaged and goes on). With a gate
 * in each of two channels, the channel the scan visits second is listed only after the test has
 * done whatever it does before opening the first gate, so that work is certainly seen by the scan.
 */
static char *make_gate(fx *f, const char *chan, const char *name)
{
    char *p = xasprintf("%s/%s/000/%s", f->dir, chan, name);
    assert_int_equal(mkfifo(p, 0600), 0);
    return p;
}

/* open_gates - open both gates as the scan reaches them; which opened first into first (0 or 1). */
static void open_gates(fx *f, char *gates[2], int *first)
{
    bool opened[2] = {false, false};
    *first = -1;
    for (int i = 0; i < 30000 && !(opened[0] && opened[1]); i++) {
        for (int g = 0; g < 2; g++) {
            if (opened[g]) continue;
            int fd = open(gates[g], O_WRONLY | O_NONBLOCK);
            if (fd >= 0) { /* the scan is waiting in open(): let it read an empty file */
                close(fd);
                opened[g] = true;
                if (*first < 0) *first = g;
            }
        }
        pump(f);
    }
    assert_true(opened[0] && opened[1]);
}

static void test_recover_start_skips_commits_during_scan(void **state)
{
    fx *f = *state;
    static bgrec r;
    memset(&r, 0, sizeof r);
    put_many(f, "ca", 1, 0, 300);
    put_many(f, "cb", 1, 300, 600);
    char *gates[2] = {make_gate(f, "ca", "GATEA"), make_gate(f, "cb", "GATEB")};
    store_recover_start(f->st, on_bg_batch, on_bg_done, &r);
    /* while the scan waits at its first gate: commit one new message into each channel */
    qmsg ma, mb;
    commit_one(f, "NEWA", "ca", 1, &ma);
    commit_one(f, "NEWB", "cb", 1, &mb);
    for (int i = 0; i < 10000 && f->done < 2; i++) pump(f);
    assert_int_equal(f->done, 2);
    assert_int_equal(f->res, SL_OK);
    assert_int_equal(r.done, 0); /* the scan cannot have ended: it waits at a gate */
    int first;
    open_gates(f, gates, &first);
    pump_until_done(f, &r);
    /* the committed files are in place (the channel directory the scan listed second holds one) ... */
    char *pa = store_queue_path(f->dir, "ca", 1, "NEWA"), *pb = store_queue_path(f->dir, "cb", 1, "NEWB");
    assert_int_equal(access(pa, F_OK), 0);
    assert_int_equal(access(pb, F_OK), 0);
    /* ... but the scan handed over only what was there before */
    if (r.others) fail_msg("the scan handed over %d file(s) this process committed, first %s", r.others, r.other_ids[0]);
    assert_int_equal(r.found, 600);
    for (int i = 0; i < 600; i++)
        if (r.handed[i] != 1) fail_msg("P%d handed over %d times", i, r.handed[i]);
    /* a commit after the scan ended is no business of recovery: nothing more is handed over */
    qmsg mc;
    commit_one(f, "NEWC", "ca", 1, &mc);
    for (int i = 0; i < 10000 && f->done < 3; i++) pump(f);
    assert_int_equal(f->done, 3);
    assert_int_equal(r.total, 600);
    qmsg_free(&ma);
    qmsg_free(&mb);
    qmsg_free(&mc);
    free(pa);
    free(pb);
    free(gates[0]);
    free(gates[1]);
}

static void test_recover_start_skips_claimed(void **state)
{
    fx *f = *state;
    static bgrec r;
    memset(&r, 0, sizeof r);
    put_many(f, "ca", 1, 0, 100);
    put_many(f, "cb", 1, 100, 200);
    put_file(f, "ca", 1, "CLAIMA");
    put_file(f, "cb", 1, "CLAIMB");
    char *gates[2] = {make_gate(f, "ca", "GATEA"), make_gate(f, "cb", "GATEB")};
    store_recover_start(f->st, on_bg_batch, on_bg_done, &r);
    store_claim(f->st, "CLAIMA");
    store_claim(f->st, "CLAIMB");
    int first;
    open_gates(f, gates, &first);
    pump_until_done(f, &r);
    /* the claim of the channel listed second certainly came before the scan saw its file */
    const char *must_skip = first == 0 ? "CLAIMB" : "CLAIMA";
    for (int i = 0; i < r.others && i < 8; i++)
        if (!strcmp(r.other_ids[i], must_skip)) fail_msg("claimed %s handed over", must_skip);
    for (int i = 0; i < 200; i++)
        if (r.handed[i] != 1) fail_msg("P%d handed over %d times", i, r.handed[i]);
    assert_true(r.others <= 1);
    assert_int_equal(r.found, 200 + (size_t)r.others);
    free(gates[0]);
    free(gates[1]);
}

/*
 * Start-up returns are moved into the channel directories (and claimed) before
 * store_recover_start: such a claim must hold for the scan that follows.
 */
static void test_recover_start_claim_before_start(void **state)
{
    fx *f = *state;
    static bgrec r;
    memset(&r, 0, sizeof r);
    put_many(f, "ca", 1, 0, 10);
    put_file(f, "ca", 1, "EARLY");
    store_claim(f->st, "EARLY");
    store_recover_start(f->st, on_bg_batch, on_bg_done, &r);
    pump_until_done(f, &r);
    if (r.others) fail_msg("claimed %s handed over by the scan", r.other_ids[0]);
    assert_int_equal(r.found, 10);
}

/* store_close while the scan is running: the thread stops, handed-over messages are not leaked (ASan). */
static void test_recover_start_close_during_scan(void **state)
{
    fx *f = *state;
    static bgrec r;
    memset(&r, 0, sizeof r);
    put_many(f, "ca", 4, 0, 3000);
    store_recover_start(f->st, on_bg_batch, on_bg_done, &r);
    for (int i = 0; i < 30000 && r.batches == 0 && !r.done; i++) pump(f);
    assert_true(r.batches >= 1);
    store_close(f->st); /* batches still posted are delivered (and freed by on_bg_batch) or dropped */
    f->st = NULL;
    assert_true(r.total <= 3000);
    for (int i = 0; i < 3000; i++) assert_true(r.handed[i] <= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_many_share_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_valid_corrupt_and_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_update_is_durable_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_failure_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_unique_and_ordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_start_batches_each_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_start_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_start_skips_commits_during_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_start_skips_claimed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_start_claim_before_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_start_close_during_scan, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
