/*
 * workq.c - worker threads and the loop-side completion port (see workq.h).
 * The completion port is a pipe: posters append to a locked list and write one byte when the
 * list was empty; the loop's read event drains the list.
 */
#include "core/workq.h"
#include "core/util.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct cnode {
    struct cnode *next;
    workq_done fn;
    void *arg;
} cnode;

struct completion_port {
    pthread_mutex_t mu;
    cnode *head, *tail;
    int fds[2];
    struct event *ev;
};

static void port_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    completion_port_drain(arg);
}

completion_port *completion_port_new(struct event_base *base)
{
    completion_port *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    if (pipe2(p->fds, O_NONBLOCK | O_CLOEXEC) < 0) fatal("pipe: %s", "failed");
    p->ev = event_new(base, p->fds[0], EV_READ | EV_PERSIST, port_readable, p);
    event_add(p->ev, NULL);
    return p;
}

void completion_port_post(completion_port *p, workq_done fn, void *arg)
{
    cnode *n = xmalloc(sizeof *n);
    n->next = NULL;
    n->fn = fn;
    n->arg = arg;
    pthread_mutex_lock(&p->mu);
    bool was_empty = p->head == NULL;
    if (p->tail) p->tail->next = n;
    else p->head = n;
    p->tail = n;
    pthread_mutex_unlock(&p->mu);
    if (was_empty) {
        char c = 1;
        while (write(p->fds[1], &c, 1) < 0 && errno == EINTR) {
        }
    }
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
    close(p->fds[0]);
    close(p->fds[1]);
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
