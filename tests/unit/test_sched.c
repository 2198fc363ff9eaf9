/*
 * test_sched.c - the job scheduler (src/jobs/sched.c, dueheap.c) with a fake channel program
 * registered through deliver/program.h: it records each start and completes items when the test
 * says so. Covers the due-time heap (order, removal from the middle), the job limits (a channel
 * runs at most min(maxjobs, its pool's job_limit) jobs, the channels of a pool share the limit,
 * another pool is not affected), a job that keeps its state takes the next message for its host,
 * one message's recipients at several hosts are delivered by one job per host at once (within
 * the same limits),
 * and the enqueue sink: committed files join the scheduler after the current call, so a bounce
 * queued while a result is being handled does not re-enter the scheduler. Traffic shaping
 * (jobs/sched_shape.c): a destination's connection limit holds messages back without an attempt
 * and lets the next go when a connection closes; a 421 4.7.28 matching a rule suspends the
 * destination; removing the table (a reload) lets everything go.
 * Real queue files (enqueue + store in a temporary directory), real event loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/shaping.h"
#include "core/log.h"
#include "core/workq.h"
#include "jobs/dueheap.h"
#include "jobs/sched.h"
#include "queue/enqueue.h"
#include "queue/store.h"

/* ---- the heap ---- */

/* heap_check - every node's index is its position and no parent is later than its child. */
static void heap_check(const dueheap *h)
{
    for (size_t i = 0; i < h->n; i++) {
        assert_int_equal(dueheap_at(h, i)->idx, i);
        assert_true(dueheap_at(h, i)->queued);
        if (i) assert_true(dueheap_at(h, (i - 1) / 2)->due <= dueheap_at(h, i)->due);
    }
}

/* heap_pop - take the earliest node out. */
static dueheap_node *heap_pop(dueheap *h)
{
    dueheap_node *n = dueheap_top(h);
    if (n) dueheap_remove(h, n);
    return n;
}

/* Random due times (negative ones too) come out earliest first. */
static void test_heap_pops_in_due_order(void **state)
{
    (void)state;
    enum { N = 500 };
    dueheap_node nodes[N];
    dueheap h = {0};
    srand(7);
    for (int i = 0; i < N; i++) {
        nodes[i] = (dueheap_node){.due = rand() % 1000 - 100};
        dueheap_push(&h, &nodes[i]);
    }
    heap_check(&h);
    int64_t last = INT64_MIN;
    for (int i = 0; i < N; i++) {
        dueheap_node *n = heap_pop(&h);
        assert_non_null(n);
        assert_false(n->queued);
        assert_true(n->due >= last);
        last = n->due;
    }
    assert_null(dueheap_top(&h));
    dueheap_free(&h);
}

/* Nodes removed wherever they sit leave a valid heap; a removed node can be pushed again. */
static void test_heap_remove_from_middle(void **state)
{
    (void)state;
    enum { N = 64 };
    dueheap_node nodes[N];
    dueheap h = {0};
    for (int i = 0; i < N; i++) {
        nodes[i] = (dueheap_node){.due = (i * 37) % N}; /* every due time 0..63 once */
        dueheap_push(&h, &nodes[i]);
    }
    for (int i = 0; i < N; i += 3) { /* every third node, wherever it sits */
        dueheap_remove(&h, &nodes[i]);
        assert_false(nodes[i].queued);
        heap_check(&h);
    }
    nodes[0].due = -5; /* a removed node can come back with a new due time (an administrator's return) */
    dueheap_push(&h, &nodes[0]);
    assert_ptr_equal(dueheap_top(&h), &nodes[0]);
    heap_pop(&h);
    int64_t last = -1;
    size_t left = 0;
    for (dueheap_node *n; (n = heap_pop(&h)); left++) {
        assert_true(n->due > last);
        assert_int_not_equal((n - nodes) % 3, 0);
        last = n->due;
    }
    assert_int_equal(left, N - (N + 2) / 3);
    dueheap_free(&h);
}

/* ---- the scheduler with a fake channel program ---- */

/* One start of the fake program. */
typedef struct {
    deliv_job *job;
    deliv_item *item;
    deliv_done_cb done;
    void *arg;
    char id[32], channel[32];
    bool completed;
    char original_state[16]; /* for a bounce: the bounced message's state when the bounce started */
} fake_run;

typedef struct {
    char dir[64];
    sl_ctx ctx;
    sched *s;
    deliv_programs progs;
    fake_run runs[128];
    size_t n_runs;
    bool reusable;    /* what the fake program answers */
    int closes;       /* job_close calls */
    int submitted;    /* enqueue callbacks */
    size_t count_at_submitted; /* sched_count when the last enqueue callback ran */
    char watch_id[32];         /* fake_start records this message's state */
} fx;

static fx *the_fx; /* the fake program's way back to the test */

/* active_in - started and not completed runs of channel (all channels when NULL). */
static int active_in(const fx *f, const char *channel)
{
    int n = 0;
    for (size_t i = 0; i < f->n_runs; i++)
        if (!f->runs[i].completed && (!channel || !strcmp(f->runs[i].channel, channel))) n++;
    return n;
}

/* watch_state - the state of the watched message as sched_show reports it. */
static void watch_state(void *arg, const sched_entry *e)
{
    snprintf(arg, 16, "%s", e->state);
}

/* fake_start - record the start; the test completes it later (never inside start). */
static void fake_start(deliv_job *job, deliv_item *item, deliv_done_cb done, void *arg)
{
    fx *f = the_fx;
    assert_true(f->n_runs < SL_ARRAY_LEN(f->runs));
    fake_run *r = &f->runs[f->n_runs++];
    *r = (fake_run){.job = job, .item = item, .done = done, .arg = arg};
    snprintf(r->id, sizeof r->id, "%s", item->msg->id);
    snprintf(r->channel, sizeof r->channel, "%s", job->ch->name);
    snprintf(r->original_state, sizeof r->original_state, "gone");
    if (f->watch_id[0]) sched_show(f->s, f->watch_id, watch_state, r->original_state);
    if (!job->state) job->state = job; /* anything: "a connection" */
}

/* fake_reusable - "the connection is idle" when the test says so. */
static bool fake_reusable(const deliv_job *job)
{
    return the_fx->reusable && job->state;
}

/* fake_job_close - count the closes. */
static void fake_job_close(deliv_job *job)
{
    the_fx->closes++;
    job->state = NULL;
}

static const deliv_program fake_program = {
    .name = "fake", .start = fake_start, .reusable = fake_reusable, .job_close = fake_job_close};

/* loop_until - run the loop until cond(f) holds (bounded). */
static void loop_until(fx *f, bool (*cond)(fx *f), const char *what)
{
    for (int i = 0; i < 4000 && !cond(f); i++) {
        event_base_loop(f->ctx.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        if (!cond(f)) usleep(1000);
    }
    if (!cond(f)) fail_msg("timed out waiting for %s", what);
}

/* loop_turns - run n non-blocking loop turns (to show that nothing more happens). */
static void loop_turns(fx *f, int n)
{
    for (int i = 0; i < n; i++) {
        event_base_loop(f->ctx.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static const char sluice_cnf[] = "\n"
                                 "tcp_a smtp maxjobs 3 pool P notificationchannel tcp_n\n"
                                 "a-daemon\n"
                                 "\n"
                                 "tcp_b smtp maxjobs 3 pool P\n"
                                 "b-daemon\n"
                                 "\n"
                                 "tcp_c smtp maxjobs 2 pool Q\n"
                                 "c-daemon\n"
                                 "\n"
                                 "tcp_d smtp maxjobs 5 pool R\n"
                                 "d-daemon\n"
                                 "\n"
                                 "tcp_n smtp maxjobs 5 pool Q\n"
                                 "n-daemon\n";
static const char job_controller_cnf[] = "[POOL=P]\njob_limit=4\n[POOL=Q]\njob_limit=10\n[POOL=R]\njob_limit=2\n";

/* conf_for - the test configuration with its queue in dir. */
static sl_conf *conf_for(const char *dir)
{
    sl_conf *c = xcalloc(1, sizeof *c);
    conf_errors errs = {0};
    conf_options_defaults(&c->opt);
    free(c->opt.queue_dir);
    c->opt.queue_dir = xstrdup(dir);
    conf_parse_sluice_cnf("sluice.cnf", sluice_cnf, c, &errs);
    conf_parse_job_controller("job_controller.cnf", job_controller_cnf, c, &errs);
    if (errs.msgs.n) fail_msg("configuration: %s", errs.msgs.v[0]);
    sv_free(&errs.msgs);
    return c;
}

/* sink - the daemon's wiring: committed files join the scheduler at the end of the loop turn. */
static void sink(void *arg, qmsg *msg, char *path)
{
    sched_add_later(arg, msg, path);
}

/* setup - a scheduler on a real store in a temporary directory, every kind run by the fake program. */
static int setup(void **state)
{
    fx *f = xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sluice-sched-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    log_set_level(LOG_LVL_ERROR);
    f->ctx.base = event_base_new();
    f->ctx.wq = workq_new(f->ctx.base, 2);
    f->ctx.conf = conf_for(f->dir);
    char err[256];
    f->ctx.store = store_open(f->ctx.base, f->ctx.wq, f->dir, err, sizeof err);
    assert_non_null(f->ctx.store);
    for (int k = 0; k < DELIV_KINDS; k++) f->progs.by_kind[k] = &fake_program;
    f->s = sched_new(&f->ctx, &f->progs);
    enqueue_set_sink(&f->ctx, sink, f->s);
    the_fx = f;
    *state = f;
    return 0;
}

/* all_gone - no message is held and no removal or state write is pending. */
static bool all_gone(fx *f)
{
    return sched_count(f->s) == 0 && sched_idle(f->s);
}

/* teardown - stop, let the removals finish, free everything. */
static int teardown(void **state)
{
    fx *f = *state;
    sched_stop(f->s);
    loop_until(f, all_gone, "the queue to empty");
    sched_free(f->s);
    store_close(f->ctx.store);
    workq_free(f->ctx.wq);
    ctx_conf_release_all(&f->ctx);
    event_base_free(f->ctx.base);
    char *cmd = xasprintf("rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(f);
    the_fx = NULL;
    return 0;
}

/* submitted - an enqueue finished: the scheduler does not have the message yet. */
static void submitted(void *arg, sl_result res, const char *err)
{
    enq_msg *m = arg;
    assert_int_equal(res, SL_OK);
    (void)err;
    the_fx->submitted++;
    the_fx->count_at_submitted = sched_count(the_fx->s);
    enqueue_msg_free(m);
    free(m);
}

/* submit - queue one message for rcpt@host to channel. */
static void submit(fx *f, const char *channel, const char *host)
{
    enq_msg *m = xcalloc(1, sizeof *m);
    store_new_id(f->ctx.store, m->id, sizeof m->id);
    m->sender = xstrdup("alice@example.org");
    m->arrival = now_unix();
    m->src_channel = xstrdup("tcp_local");
    m->client = xstrdup("test");
    const char *text = "Subject: t\r\n\r\nbody\r\n";
    m->content = qbody_copy(text, strlen(text));
    char *rcpt = xasprintf("bob@%s", host);
    enqueue_add_rcpt(m, rcpt, rcpt, NULL, channel, host, 0);
    free(rcpt);
    enqueue_submit(&f->ctx, m, submitted, m);
}

static size_t want_count; /* for count_reached */

/* count_reached - the scheduler holds want_count messages. */
static bool count_reached(fx *f)
{
    return sched_count(f->s) >= want_count;
}

/* submit_n - queue n messages to channel (hosts h0.test, h1.test, ...) and wait until the scheduler has them. */
static void submit_n(fx *f, const char *channel, int n)
{
    want_count = sched_count(f->s) + (size_t)n;
    for (int i = 0; i < n; i++) {
        char host[32];
        snprintf(host, sizeof host, "h%d.test", i);
        submit(f, channel, host);
    }
    loop_until(f, count_reached, "the messages to be scheduled");
}

/* complete - run k ends with res for every recipient (from the loop, as a real program would). */
static void complete(fx *f, size_t k, sl_result res, const char *status)
{
    fake_run *r = &f->runs[k];
    assert_false(r->completed);
    r->completed = true;
    for (size_t i = 0; i < r->item->n; i++) deliv_result_set(&r->item->results[i], res, status, "x-test; done", NULL);
    r->done(r->arg, r->item);
}

/* first_active - the first started, not completed run (of channel, or any when NULL); -1 if none. */
static long first_active(const fx *f, const char *channel)
{
    for (size_t i = 0; i < f->n_runs; i++)
        if (!f->runs[i].completed && (!channel || !strcmp(f->runs[i].channel, channel))) return (long)i;
    return -1;
}

/* complete_all - deliver everything that runs, until nothing is left running or waiting. */
static void complete_all(fx *f)
{
    for (int guard = 0; guard < 1000; guard++) {
        long k = first_active(f, NULL);
        if (k < 0 && sched_count(f->s) == 0) return;
        if (k >= 0) complete(f, (size_t)k, SL_OK, "2.0.0");
        else loop_turns(f, 1);
    }
    fail_msg("work left after 1000 rounds");
}

/* A channel runs at most min(maxjobs, the pool's job_limit): tcp_c (maxjobs 2) in pool Q (10),
 * tcp_d (maxjobs 5) in pool R (2). */
static void test_channel_limit_is_min_of_maxjobs_and_pool(void **state)
{
    fx *f = *state;
    sched_start(f->s);
    submit_n(f, "tcp_c", 5);
    submit_n(f, "tcp_d", 5);
    loop_turns(f, 5);
    assert_int_equal(active_in(f, "tcp_c"), 2);
    assert_int_equal(active_in(f, "tcp_d"), 2);
    complete(f, (size_t)first_active(f, "tcp_c"), SL_OK, "2.0.0");
    loop_turns(f, 5);
    assert_int_equal(f->n_runs, 5); /* the freed slot is taken at once, by its own channel */
    assert_int_equal(active_in(f, "tcp_c"), 2);
    assert_int_equal(active_in(f, "tcp_d"), 2);
    complete_all(f);
    assert_int_equal(f->n_runs, 10);
}

/* The channels of a pool share its job_limit (P: 4; tcp_a and tcp_b have maxjobs 3 each). */
static void test_pool_limit_is_shared(void **state)
{
    fx *f = *state;
    submit_n(f, "tcp_a", 6);
    submit_n(f, "tcp_b", 6);
    submit_n(f, "tcp_c", 3);
    sched_start(f->s);
    loop_turns(f, 5);
    assert_int_equal(active_in(f, "tcp_a") + active_in(f, "tcp_b"), 4);
    assert_true(active_in(f, "tcp_a") <= 3 && active_in(f, "tcp_b") <= 3);
    assert_int_equal(active_in(f, "tcp_c"), 2); /* pool Q is not affected by P being full */
    int max_pool = 0;
    for (long k; (k = first_active(f, NULL)) >= 0;) {
        complete(f, (size_t)k, SL_OK, "2.0.0");
        loop_turns(f, 2);
        int in_pool = active_in(f, "tcp_a") + active_in(f, "tcp_b");
        if (in_pool > max_pool) max_pool = in_pool;
        assert_true(in_pool <= 4);
        assert_true(active_in(f, "tcp_a") <= 3 && active_in(f, "tcp_b") <= 3);
    }
    assert_int_equal(max_pool, 4);
    assert_int_equal(f->n_runs, 15); /* everything was delivered once */
    loop_until(f, all_gone, "the queue files to be removed");
}

/* A program that keeps state (a connection) takes the next due message for its host in the same
 * job; the job parks afterwards and its state is closed once, when the scheduler stops. */
static void test_job_reuses_its_state_for_the_same_host(void **state)
{
    fx *f = *state;
    f->reusable = true;
    want_count = 3;
    for (int i = 0; i < 3; i++) submit(f, "tcp_c", "same.test");
    loop_until(f, count_reached, "the messages to be scheduled");
    sched_start(f->s);
    loop_turns(f, 3);
    assert_int_equal(f->n_runs, 2); /* maxjobs 2: two jobs (two connections) */
    complete(f, 0, SL_OK, "2.0.0");
    assert_int_equal(f->n_runs, 3);   /* the next message follows on the same job at once */
    assert_ptr_equal(f->runs[2].job, f->runs[0].job);
    complete(f, 1, SL_OK, "2.0.0");
    complete(f, 2, SL_OK, "2.0.0");
    assert_int_equal(f->closes, 0); /* parked, connection kept */
    sched_stop(f->s);
    assert_int_equal(f->closes, 2);
}

/* submit_hosts - queue one message to channel with one recipient per entry of hosts (repeats allowed). */
static void submit_hosts(fx *f, const char *channel, const char *const *hosts, size_t n)
{
    enq_msg *m = xcalloc(1, sizeof *m);
    store_new_id(f->ctx.store, m->id, sizeof m->id);
    m->sender = xstrdup("alice@example.org");
    m->arrival = now_unix();
    m->src_channel = xstrdup("tcp_local");
    m->client = xstrdup("test");
    const char *text = "Subject: t\r\n\r\nbody\r\n";
    m->content = qbody_copy(text, strlen(text));
    for (size_t i = 0; i < n; i++) {
        char *rcpt = xasprintf("u%zu@%s", i, hosts[i]);
        enqueue_add_rcpt(m, rcpt, rcpt, NULL, channel, hosts[i], 0);
        free(rcpt);
    }
    want_count = sched_count(f->s) + 1;
    enqueue_submit(&f->ctx, m, submitted, m);
    loop_until(f, count_reached, "the message to be scheduled");
}

/* run_hosts - the hosts of the active runs, sorted and joined ("h1.test,h2.test"), into buf. */
static const char *run_hosts(const fx *f, char *buf, size_t len)
{
    const char *v[16];
    size_t n = 0;
    for (size_t i = 0; i < f->n_runs && n < 16; i++)
        if (!f->runs[i].completed) v[n++] = f->runs[i].item->host;
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && strcmp(v[k - 1], v[k]) > 0; k--) {
            const char *t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "", v[i]);
    return buf;
}

/* One message for three hosts: one job per host at once (tcp_n: maxjobs 5, pool Q 10), each
 * recipient in exactly one item, the two recipients of one host together; the file is removed
 * after the last item. */
static void test_hosts_of_one_message_in_parallel(void **state)
{
    fx *f = *state;
    static const char *const hosts[] = {"h1.test", "h2.test", "h1.test", "h3.test"};
    submit_hosts(f, "tcp_n", hosts, 4);
    sched_start(f->s);
    loop_turns(f, 3);
    char buf[128];
    assert_string_equal(run_hosts(f, buf, sizeof buf), "h1.test,h2.test,h3.test");
    size_t rcpts = 0;
    for (size_t i = 0; i < f->n_runs; i++) rcpts += f->runs[i].item->n;
    assert_int_equal(rcpts, 4);
    assert_int_equal(f->runs[0].item->n, 2); /* u0 and u2 at h1.test, one copy */
    complete(f, 1, SL_OK, "2.0.0");
    loop_turns(f, 5);
    assert_int_equal(sched_count(f->s), 1); /* the other items still run: the file stays */
    assert_int_equal(f->n_runs, 3);
    complete(f, 0, SL_OK, "2.0.0");
    complete(f, 2, SL_OK, "2.0.0");
    loop_until(f, all_gone, "the queue file to be removed");
    assert_int_equal(f->n_runs, 3); /* each recipient once */
}

/* Within the limits: tcp_d (maxjobs 5) in pool R (job_limit 2) runs two of the three hosts, and
 * the third when a slot is free; a "single" channel would be the same per recipient. */
static void test_parallel_hosts_within_the_pool_limit(void **state)
{
    fx *f = *state;
    static const char *const hosts[] = {"h1.test", "h2.test", "h3.test"};
    submit_hosts(f, "tcp_d", hosts, 3);
    sched_start(f->s);
    loop_turns(f, 3);
    assert_int_equal(active_in(f, "tcp_d"), 2);
    complete(f, 0, SL_OK, "2.0.0");
    loop_turns(f, 5);
    assert_int_equal(active_in(f, "tcp_d"), 2);
    assert_int_equal(f->n_runs, 3);
    char buf[128];
    assert_string_equal(run_hosts(f, buf, sizeof buf), "h2.test,h3.test");
    complete_all(f);
    assert_int_equal(f->n_runs, 3); /* each recipient once */
    loop_until(f, all_gone, "the queue file to be removed");
}

/* The enqueue sink hands a committed file over after the current call: not inside the commit's
 * callback chain, but at the end of the loop turn. */
static void test_sink_adds_after_the_current_call(void **state)
{
    fx *f = *state;
    sched_start(f->s);
    want_count = 1;
    submit(f, "tcp_c", "x.test");
    loop_until(f, count_reached, "the message to be scheduled");
    assert_int_equal(f->submitted, 1);
    assert_int_equal(f->count_at_submitted, 0); /* the commit was answered before the scheduler took it */
    assert_int_equal(f->n_runs, 1);
    complete_all(f);
}

/* A bounce queued while a result is handled joins the scheduler only after that handling is
 * over: when its job starts, the bounced message is already final (being removed). */
static void test_bounce_does_not_reenter_the_scheduler(void **state)
{
    fx *f = *state;
    sched_start(f->s);
    submit_n(f, "tcp_a", 1);
    loop_turns(f, 3);
    assert_int_equal(f->n_runs, 1);
    snprintf(f->watch_id, sizeof f->watch_id, "%s", f->runs[0].id);
    complete(f, 0, SL_PERM, "5.1.1"); /* a failed DSN to the sender, via tcp_a's notificationchannel tcp_n */
    assert_int_equal(f->n_runs, 1);   /* nothing started inside the result handling */
    for (int i = 0; i < 2000 && f->n_runs < 2; i++) loop_turns(f, 1); /* the bounce is committed, then runs */
    assert_int_equal(f->n_runs, 2);
    assert_string_equal(f->runs[1].channel, "tcp_n");
    assert_string_not_equal(f->runs[1].original_state, "delivering");
    complete_all(f);
}

/* ---- traffic shaping ---- */

/* shaping_set - give the test configuration a shaping table (NULL: none), as a reload would. */
static void shaping_set(fx *f, const char *text)
{
    shaping_free(f->ctx.conf->shaping);
    f->ctx.conf->shaping = text ? shaping_parse(text, NULL, NULL) : NULL;
    sched_reconf(f->s);
}

/* One destination as sched_shaping_list shows it. */
typedef struct {
    char dest[64], state[16];
    int connections;
    size_t waiting;
    unsigned last_hour;
    bool found;
} shaped;

/* shaped_of - the listing's entry for the destination named in arg. */
static void shaped_of(void *arg, const sched_shaping *d)
{
    shaped *v = arg;
    if (strcmp(d->dest, v->dest) != 0) return;
    snprintf(v->state, sizeof v->state, "%s", d->state);
    v->connections = d->connections;
    v->waiting = d->waiting;
    v->last_hour = d->last_hour;
    v->found = true;
}

/* shaping_of - the scheduler's view of dest. */
static shaped shaping_of(fx *f, const char *dest)
{
    shaped v = {0};
    snprintf(v.dest, sizeof v.dest, "%s", dest);
    sched_shaping_list(f->s, shaped_of, &v);
    return v;
}

/* Count the listed messages and those that were ever attempted. */
typedef struct {
    int queued, attempted;
} tally;

/* tally_one - one message of a listing. */
static void tally_one(void *arg, const sched_entry *e)
{
    tally *t = arg;
    if (!strcmp(e->state, "queued")) t->queued++;
    for (size_t i = 0; i < e->msg->n_rcpts; i++)
        if (e->msg->rcpts[i].attempts) t->attempted++;
}

/* connections=1: one job for the destination; the other messages wait, listed as queued and never
 * attempted, and each closed connection lets the next one go. Other destinations are not held. */
static void test_shaping_connection_limit_holds_back(void **state)
{
    fx *f = *state;
    shaping_set(f, "s.test connections=1\n");
    want_count = 4;
    for (int i = 0; i < 3; i++) submit(f, "tcp_d", "s.test");
    submit(f, "tcp_d", "other.test");
    loop_until(f, count_reached, "the messages to be scheduled");
    sched_start(f->s);
    loop_turns(f, 3);
    assert_int_equal(f->n_runs, 2); /* one for s.test, one for other.test (pool R: 2) */
    shaped v = shaping_of(f, "s.test");
    assert_true(v.found);
    assert_int_equal(v.connections, 1);
    assert_int_equal(v.waiting, 2);
    tally t = {0};
    sched_list(f->s, NULL, tally_one, &t);
    assert_int_equal(t.queued, 2);
    assert_int_equal(t.attempted, 0);
    for (int k = 0; k < 3; k++) {
        long r = -1;
        for (size_t i = 0; i < f->n_runs; i++)
            if (!f->runs[i].completed && !strcmp(f->runs[i].item->host, "s.test")) r = (long)i;
        assert_true(r >= 0);
        int on_s = 0;
        for (size_t i = 0; i < f->n_runs; i++) on_s += !f->runs[i].completed && !strcmp(f->runs[i].item->host, "s.test");
        assert_int_equal(on_s, 1); /* never two connections to s.test */
        complete(f, (size_t)r, SL_OK, "2.0.0");
        loop_turns(f, 3);
    }
    assert_int_equal(shaping_of(f, "s.test").last_hour, 3);
    assert_int_equal(shaping_of(f, "s.test").waiting, 0);
    complete_all(f);
}

/* ignore_act - an administration report nobody reads. */
static void ignore_act(void *arg, const sched_act *a)
{
    (void)arg;
    (void)a;
}

/* complete_reply - run k ends with a temporary failure whose diagnostic is diag. */
static void complete_reply(fx *f, size_t k, const char *status, const char *diag)
{
    fake_run *r = &f->runs[k];
    r->completed = true;
    for (size_t i = 0; i < r->item->n; i++) deliv_result_set(&r->item->results[i], SL_TEMP, status, diag, NULL);
    r->done(r->arg, r->item);
}

/* A 421 4.7.28 matching a suspend rule suspends the destination: nothing more starts for it (the
 * due message waits), other destinations go on; removing the table lets it go. */
static void test_shaping_reply_suspends(void **state)
{
    fx *f = *state;
    shaping_set(f, "on 421 4.7.28 action=suspend period=1h\n");
    want_count = 2;
    submit(f, "tcp_c", "s.test");
    submit(f, "tcp_c", "s.test");
    loop_until(f, count_reached, "the messages to be scheduled");
    sched_start(f->s);
    loop_turns(f, 3);
    assert_int_equal(f->n_runs, 2); /* no limits: both at once */
    complete_reply(f, 0, "4.7.28", "smtp; 421 4.7.28 too much mail, slow down");
    loop_turns(f, 3);
    assert_string_equal(shaping_of(f, "s.test").state, "suspended");
    complete(f, 1, SL_OK, "2.0.0"); /* a job does not go on while suspended */
    loop_turns(f, 3);
    want_count = 3;
    submit(f, "tcp_c", "s.test");
    submit(f, "tcp_c", "x.test");
    loop_until(f, count_reached, "the messages to be scheduled");
    loop_turns(f, 5);
    assert_int_equal(f->n_runs, 3); /* only x.test's */
    assert_string_equal(f->runs[2].item->host, "x.test");
    assert_int_equal(shaping_of(f, "s.test").waiting, 1);
    complete(f, 2, SL_OK, "2.0.0");
    shaping_set(f, NULL); /* configured away: the held message goes */
    loop_turns(f, 3);
    assert_int_equal(f->n_runs, 4);
    assert_string_equal(f->runs[3].item->host, "s.test");
    sched_retry(f->s, "tcp_c", ignore_act, NULL); /* the deferred one, now */
    complete_all(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_pops_in_due_order),
        cmocka_unit_test(test_heap_remove_from_middle),
        cmocka_unit_test_setup_teardown(test_channel_limit_is_min_of_maxjobs_and_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_limit_is_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_reuses_its_state_for_the_same_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_of_one_message_in_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_hosts_within_the_pool_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_adds_after_the_current_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounce_does_not_reenter_the_scheduler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shaping_connection_limit_holds_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shaping_reply_suspends, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
