/* test_store.c - the queue store on a real file system: group commit, recovery, state updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <event2/event.h>
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
    store_close(f->st);
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
    m->data_owned = xstrdup("Subject: t\r\n\r\nbody\r\n");
    m->data = m->data_owned;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_many_share_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_valid_corrupt_and_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_update_is_durable_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_failure_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_unique_and_ordered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
