/* test_workq.c - the completion port and the worker pool: completions reach the loop even when the
 * write that should wake it fails, is interrupted or finds the signal already pending. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "core/workq.h"

/* Failure injection: this write() stands in for libc's in the whole test program (the port's
 * wake-up write included). While fail_left > 0, each call fails with fail_errno instead. */
static atomic_int fail_left;
static int fail_errno;
static atomic_int fail_seen;

ssize_t write(int fd, const void *buf, size_t n)
{
    if (atomic_load(&fail_left) > 0) {
        atomic_fetch_sub(&fail_left, 1);
        atomic_fetch_add(&fail_seen, 1);
        errno = fail_errno;
        return -1;
    }
    return syscall(SYS_write, fd, buf, n);
}

static void inject(int count, int err)
{
    fail_errno = err;
    atomic_store(&fail_seen, 0);
    atomic_store(&fail_left, count);
}

static void count_done(void *arg)
{
    (*(int *)arg)++;
}

/* run_until - run the loop until *count reaches want or secs pass; returns *count. */
static int run_until(struct event_base *base, const int *count, int want, double secs)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (*count >= want) return *count;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 > secs) return *count;
        struct timeval tick = {0, 20000};
        event_base_loopexit(base, &tick);
        event_base_loop(base, EVLOOP_ONCE);
    }
}

/* One failed wake-up write, then a good post: both completions run (before the fix the first
 * failure left the list non-empty, so no later post wrote again and both waited forever). */
static void test_failed_write_then_post(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    completion_port *p = completion_port_new(base);
    int done = 0;
    inject(1, EIO);
    completion_port_post(p, count_done, &done);
    assert_int_equal(atomic_load(&fail_seen), 1);
    completion_port_post(p, count_done, &done);
    /* the second post's wake-up is on the descriptor now: one non-blocking turn runs both */
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(done, 2);
    completion_port_free(p);
    event_base_free(base);
}

/* The only post loses its wake-up (EIO, or EAGAIN with nothing pending): the completion still
 * runs, within a bounded wait, instead of never. */
static void test_lost_wakeup_swept(void **state)
{
    (void)state;
    static const int errs[] = {EIO, EAGAIN, EBADF};
    for (size_t i = 0; i < SL_ARRAY_LEN(errs); i++) {
        struct event_base *base = event_base_new();
        completion_port *p = completion_port_new(base);
        int done = 0;
        inject(1, errs[i]);
        completion_port_post(p, count_done, &done);
        assert_int_equal(atomic_load(&fail_seen), 1);
        assert_int_equal(run_until(base, &done, 1, 5.0), 1);
        completion_port_free(p);
        event_base_free(base);
    }
}

/* EINTR is retried: the wake-up is on the descriptor, so one non-blocking turn runs the completion. */
static void test_eintr_retried(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    completion_port *p = completion_port_new(base);
    int done = 0;
    inject(3, EINTR);
    completion_port_post(p, count_done, &done);
    assert_int_equal(atomic_load(&fail_seen), 3);
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(done, 1);
    completion_port_free(p);
    event_base_free(base);
}

/* poster - post n completions from another thread. */
typedef struct {
    completion_port *p;
    int *done;
    int n;
} poster_arg;

static void *poster(void *arg)
{
    poster_arg *a = arg;
    for (int i = 0; i < a->n; i++) completion_port_post(a->p, count_done, a->done);
    return NULL;
}

/* Many posts from two threads while the loop drains: every completion runs exactly once. */
static void test_many_posters(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    completion_port *p = completion_port_new(base);
    int done = 0;
    poster_arg a = {p, &done, 20000};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, poster, &a);
    run_until(base, &done, 40000, 30.0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    run_until(base, &done, 40000, 5.0);
    assert_int_equal(done, 40000);
    completion_port_free(p);
    event_base_free(base);
}

static void job_run(void *arg)
{
    (void)arg;
}

/* Jobs on the workers complete on the loop, even when a wake-up write fails on the way. */
static void test_workq_jobs(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    workq *q = workq_new(base, 2);
    int done = 0;
    inject(1, EIO);
    for (int i = 0; i < 50; i++) workq_submit(q, job_run, count_done, &done);
    assert_int_equal(run_until(base, &done, 50, 10.0), 50);
    assert_int_equal(workq_pending(q), 0);
    workq_free(q);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_write_then_post),
        cmocka_unit_test(test_lost_wakeup_swept),
        cmocka_unit_test(test_eintr_retried),
        cmocka_unit_test(test_many_posters),
        cmocka_unit_test(test_workq_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
