/*
 * workq.c - worker threads and the loop-side completion port (see workq.h).
 * The completion port is an eventfd: posters append to a locked list and add 1 to the eventfd on
 * every post (EINTR retried; EAGAIN means the counter is full, so the loop is signalled already);
 * the loop's read event resets the counter and drains the whole list. A sweep timer drains the
 * list too, so that even a wake-up lost to a failed write delays completions by a second at most
 * instead of stranding them (and with them a clean stop).
 */
#include "core/workq.h"
#include "core/util.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define COMPLETION_PORT_SWEEP_MS 1000

typedef struct cnode {
    struct cnode *next;
    workq_done fn;
    void *arg;
} cnode;

struct completion_port {
    pthread_mutex_t mu;
    cnode *head, *tail;
    int fd;             /* eventfd */
    struct event *ev;   /* fd readable */
    struct event *sweep;/* persistent timer: drains whatever a lost wake-up left */
};

static void port_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t n;
    while (read(fd, &n, sizeof n) < 0 && errno == EINTR) {
    }
    completion_port_drain(arg);
}

static void port_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    completion_port *p = arg;
    pthread_mutex_lock(&p->mu);
    bool pending = p->head != NULL;
    pthread_mutex_unlock(&p->mu);
    if (pending) completion_port_drain(p);
}

completion_port *completion_port_new(struct event_base *base)
{
    completion_port *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->fd < 0) fatal("eventfd: %s", "failed");
    p->ev = event_new(base, p->fd, EV_READ | EV_PERSIST, port_readable, p);
    event_add(p->ev, NULL);
    p->sweep = event_new(base, -1, EV_PERSIST, port_sweep, p);
    struct timeval tv = {COMPLETION_PORT_SWEEP_MS / 1000, (COMPLETION_PORT_SWEEP_MS % 1000) * 1000};
    event_add(p->sweep, &tv);
    return p;
}

/* port_signal - wake the loop: add 1 to the eventfd. A full counter (EAGAIN) is a pending wake-up;
 * any other failure is left to the sweep timer. */
static void port_signal(completion_port *p)
{
    uint64_t one = 1;
    while (write(p->fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

void completion_port_post(completion_port *p, workq_done fn, void *arg)
{
    cnode *n = xmalloc(sizeof *n);
    n->next = NULL;
    n->fn = fn;
    n->arg = arg;
    pthread_mutex_lock(&p->mu);
    if (p->tail) p->tail->next = n;
    else p->head = n;
    p->tail = n;
    pthread_mutex_unlock(&p->mu);
    /* Every post signals: a wake-up written only on the empty -> non-empty transition is lost
     * for good when that one write fails, and everything posted after it waits forever. */
    port_signal(p);
}

void completion_port_drain(completion_port *p)
{
    pthread_mutex_lock(&p->mu);
    cnode *n = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (n) {
        cnode *next = n->next;
        if (n->fn) n->fn(n->arg);
        free(n);
        n = next;
    }
}

void completion_port_free(completion_port *p)
{
    if (!p) return;
    completion_port_drain(p);
    event_free(p->ev);
    event_free(p->sweep);
    close(p->fd);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

typedef struct job {
    struct job *next;
    workq_fn fn;
    workq_done done;
    void *arg;
} job;

struct workq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    bool stopping;
    int nthreads;
    pthread_t *threads;
    completion_port *port;
    int pending;
};

typedef struct {
    workq *q;
    workq_done done;
    void *arg;
} donectx;

static void job_completed(void *arg)
{
    donectx *d = arg;
    d->q->pending--;
    if (d->done) d->done(d->arg);
    free(d);
}

static void *worker_main(void *arg)
{
    workq *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (!q->head && !q->stopping) pthread_cond_wait(&q->cv, &q->mu);
        job *j = q->head;
        if (!j) {
            pthread_mutex_unlock(&q->mu);
            return NULL;
        }
        q->head = j->next;
        if (!q->head) q->tail = NULL;
        pthread_mutex_unlock(&q->mu);
        j->fn(j->arg);
        donectx *d = xmalloc(sizeof *d);
        d->q = q;
        d->done = j->done;
        d->arg = j->arg;
        completion_port_post(q->port, job_completed, d);
        free(j);
    }
}

workq *workq_new(struct event_base *base, int nthreads)
{
    workq *q = xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->port = completion_port_new(base);
    q->nthreads = nthreads;
    q->threads = xcalloc((size_t)nthreads, sizeof *q->threads);
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0) fatal("cannot start worker thread");
    return q;
}

void workq_submit(workq *q, workq_fn fn, workq_done done, void *arg)
{
    job *j = xmalloc(sizeof *j);
    j->next = NULL;
    j->fn = fn;
    j->done = done;
    j->arg = arg;
    q->pending++;
    pthread_mutex_lock(&q->mu);
    if (q->tail) q->tail->next = j;
    else q->head = j;
    q->tail = j;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

int workq_pending(const workq *q)
{
    return q->pending;
}

void workq_free(workq *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->nthreads; i++) pthread_join(q->threads[i], NULL);
    completion_port_free(q->port);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q->threads);
    free(q);
}
