/*
 * ldap_pool.c - connections to LDAP servers and the searches on them (see ldap_pool.h; symbols are ld_*, apart from libldap's ldap_*).
 *
 * A connection is DOWN, DIALING (a thread sets it up), UP (its socket watched by an event) or
 * WAITING (its last attempt failed; a timer starts the next). A search is QUEUED (in the pool's
 * queue, waiting for a connection) or SENT (on one connection's list, by message id); its timer
 * ends it at its deadline either way. Everything the loop calls back into (read events, timers,
 * dial completions) holds the pool "in use", so that a callback that frees the pool (the last
 * reference to a directory dropped by an answered session) leaves it to go when the event ends.
 */
#include "dir/ldap_pool.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ldap.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "dir/ldap_text.h"

/* Searches a connection carries at once: with small requests the kernel's buffers never fill, so
 * a write on the non-blocking socket never has to wait. */
#define POOL_MAX_INFLIGHT 64
/* Entries kept per search beyond its size limit are never needed. */
#define POOL_MAX_ENTRIES 64
/* Largest LDAP message accepted from a server (a group with very many members fits). */
#define POOL_MAX_MESSAGE (16 * 1024 * 1024)
/* A connection lost sooner than this after it came up counts as a failed attempt (backoff). */
#define POOL_MIN_UP_MS 5000
#define POOL_BACKOFF_MAX_S 30

enum conn_state { CONN_DOWN, CONN_DIALING, CONN_UP, CONN_WAITING };

typedef struct ld_dial ld_dial;
typedef struct pool_conn pool_conn;

struct ld_search {
    ld_pool *pool;
    char *base, *filter;
    int scope, sizelimit;
    ld_search_cb cb;
    void *arg;
    struct event *timer;
    pool_conn *conn; /* the connection it was sent on, NULL otherwise */
    bool queued;     /* in the pool's queue */
    int msgid;
    int64_t sent_ms;
    char *fail;      /* set: answered TEMP with this on the next loop turn (sending failed, no server) */
    bool referred;   /* the server sent continuation references (not followed) */
    ld_entry **entries;
    size_t n;
    struct ld_search *prev, *next; /* the pool's queue or the connection's list */
};

typedef struct {
    ld_search *head, *tail;
} search_list;

struct pool_conn {
    ld_pool *pool;
    int idx;
    enum conn_state state;
    unsigned gen;       /* changes whenever the handle does */
    LDAP *ld;
    char *uri;          /* the URI it is connected to */
    struct event *ev_read, *ev_retry, *ev_dial;
    ld_dial *dial;
    unsigned failures;  /* attempts failed in a row (or connections lost young) */
    bool was_up;        /* it has been up before (the next success is a reconnect) */
    int64_t up_ms, last_read_ms;
    search_list sent;
    size_t inflight;
};

struct ld_pool {
    struct event_base *base;
    strvec uris;
    char *bind_dn, *bind_pw, *ca_file;
    bool starttls;
    unsigned timeout_s;
    char **attrs;       /* NULL-terminated */
    pool_conn *conns;
    unsigned nconns;
    search_list queue;
    ld_pool_counters counters;
    int in_use;         /* event callbacks under way */
    bool doomed;        /* freed while in use: goes when the last callback ends */
};

/* ---- entries ---- */

ld_entry *ld_entry_ref(ld_entry *e)
{
    e->refs++;
    return e;
}

void ld_entry_unref(void *p)
{
    ld_entry *e = p;
    if (!e || --e->refs > 0) return;
    free(e->dn);
    sv_free(&e->names);
    sv_free(&e->values);
    free(e);
}

void ld_entry_values(const void *p, const char *name, strvec *out)
{
    const ld_entry *e = p;
    for (size_t i = 0; i < e->names.n; i++)
        if (str_ieq(e->names.v[i], name)) sv_push(out, e->values.v[i]);
}

/* entry_from_message - an entry of a search result, values with NUL bytes left out. */
static ld_entry *entry_from_message(LDAP *ld, LDAPMessage *msg)
{
    ld_entry *e = xcalloc(1, sizeof *e);
    e->refs = 1;
    char *dn = ldap_get_dn(ld, msg);
    e->dn = xstrdup(dn ? dn : "");
    ldap_memfree(dn);
    BerElement *ber = NULL;
    for (char *a = ldap_first_attribute(ld, msg, &ber); a; a = ldap_next_attribute(ld, msg, ber)) {
        struct berval **vals = ldap_get_values_len(ld, msg, a);
        char *name = xstrndup(a, ld_attr_name_len(a));
        for (size_t i = 0; vals && vals[i]; i++) {
            if (memchr(vals[i]->bv_val, '\0', vals[i]->bv_len)) continue;
            sv_push(&e->names, name);
            sv_push_owned(&e->values, xmemdup0(vals[i]->bv_val, vals[i]->bv_len));
        }
        free(name);
        ldap_value_free_len(vals);
        ldap_memfree(a);
    }
    if (ber) ber_free(ber, 0);
    return e;
}

/* ---- lists: the pool's queue and each connection's searches sent ---- */

static void list_push(search_list *l, ld_search *s)
{
    s->prev = l->tail;
    s->next = NULL;
    if (l->tail) l->tail->next = s;
    else l->head = s;
    l->tail = s;
}

static void list_push_front(search_list *l, ld_search *s)
{
    s->prev = NULL;
    s->next = l->head;
    if (l->head) l->head->prev = s;
    else l->tail = s;
    l->head = s;
}

static void list_remove(search_list *l, ld_search *s)
{
    if (s->prev) s->prev->next = s->next;
    else l->head = s->next;
    if (s->next) s->next->prev = s->prev;
    else l->tail = s->prev;
    s->prev = s->next = NULL;
}

/* ---- the pool kept alive across callbacks ---- */

static void pool_destroy(ld_pool *p);

static void pool_enter(ld_pool *p)
{
    p->in_use++;
}

/* pool_leave - the end of a callback; false when the pool is gone (touch nothing more). */
static bool pool_leave(ld_pool *p)
{
    if (--p->in_use > 0 || !p->doomed) return !p->doomed;
    pool_destroy(p);
    return false;
}

/* ---- dialling, on a thread per attempt ---- */

/* One attempt to set a connection up: what the thread needs (copied, so that it depends on
 * nothing of the pool) and what it made. Two owners, the loop and the thread; the last frees it. */
struct ld_dial {
    atomic_int refs;
    atomic_bool finished;
    int pipefd[2];
    strvec uris;
    char *bind_dn, *bind_pw, *ca_file;
    bool starttls;
    unsigned timeout_s;
    /* results */
    LDAP *ld;
    char *uri;
    strvec errors; /* "URI\tmessage" per failed URI */
};

static void dial_release(ld_dial *d)
{
    if (atomic_fetch_sub(&d->refs, 1) != 1) return;
    if (d->ld) ldap_unbind_ext(d->ld, NULL, NULL); /* made, but nobody took it */
    close(d->pipefd[0]);
    close(d->pipefd[1]);
    sv_free(&d->uris);
    free(d->bind_dn);
    if (d->bind_pw) explicit_bzero(d->bind_pw, strlen(d->bind_pw));
    free(d->bind_pw);
    free(d->ca_file);
    free(d->uri);
    sv_free(&d->errors);
    free(d);
}

/* ld_error - rc's text and the server's diagnostic message, if any (caller frees). */
static char *ld_error(LDAP *ld, int rc)
{
    char *diag = NULL;
    if (ld) ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
    char *out = diag && *diag ? xasprintf("%s (%d): %s", ldap_err2string(rc), rc, diag)
                              : xasprintf("%s (%d)", ldap_err2string(rc), rc);
    ldap_memfree(diag);
    return out;
}

/* dial_one - connect to uri, StartTLS if asked, bind: the handle, or NULL with *err set. */
static LDAP *dial_one(ld_dial *d, const char *uri, char **err)
{
    LDAP *ld = NULL;
    int rc = ldap_initialize(&ld, uri);
    if (rc != LDAP_SUCCESS) {
        *err = ld_error(NULL, rc);
        return NULL;
    }
    int v3 = LDAP_VERSION3, zero = 0;
    struct timeval tv = {(time_t)d->timeout_s, 0};
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv); /* connect and TLS handshake */
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);         /* StartTLS and bind answers */
    if (d->ca_file) {
        ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, d->ca_file);
        ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
    }
    if (d->starttls && str_has_prefix_ci(uri, "ldap://")) {
        rc = ldap_start_tls_s(ld, NULL, NULL);
        if (rc != LDAP_SUCCESS) {
            char *e = ld_error(ld, rc);
            *err = xasprintf("StartTLS: %s", e);
            free(e);
            ldap_unbind_ext(ld, NULL, NULL);
            return NULL;
        }
    }
    struct berval cred = {d->bind_pw ? strlen(d->bind_pw) : 0, d->bind_pw};
    rc = ldap_sasl_bind_s(ld, d->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
    if (rc != LDAP_SUCCESS) { /* the bind is the first request: it also shows a server out of reach */
        char *e = ld_error(ld, rc);
        if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR) *err = xasprintf("connect: %s", e);
        else *err = xasprintf("bind%s%s: %s", d->bind_dn ? " as " : " (anonymous)", d->bind_dn ? d->bind_dn : "", e);
        free(e);
        ldap_unbind_ext(ld, NULL, NULL);
        return NULL;
    }
    return ld;
}

/* dial_run - the thread: the URIs in order until one connects and binds. */
static void *dial_run(void *arg)
{
    ld_dial *d = arg;
    for (size_t i = 0; i < d->uris.n && !d->ld; i++) {
        char *err = NULL;
        d->ld = dial_one(d, d->uris.v[i], &err);
        if (d->ld) d->uri = xstrdup(d->uris.v[i]);
        else sv_push_owned(&d->errors, xasprintf("%s\t%s", d->uris.v[i], err));
        free(err);
    }
    atomic_store(&d->finished, true);
    ssize_t w;
    do {
        w = write(d->pipefd[1], "x", 1);
    } while (w < 0 && errno == EINTR);
    dial_release(d);
    return NULL;
}

static void conn_dial(pool_conn *c);
static void dispatch(ld_pool *p);

/* conn_wait - the attempt failed: try again after the backoff. */
static void conn_wait(pool_conn *c)
{
    c->failures++;
    unsigned shift = c->failures - 1 < 5 ? c->failures - 1 : 5;
    unsigned secs = 1u << shift;
    if (secs > POOL_BACKOFF_MAX_S) secs = POOL_BACKOFF_MAX_S;
    c->state = CONN_WAITING;
    struct timeval tv = {(time_t)secs, 0};
    evtimer_add(c->ev_retry, &tv);
}

static void conn_readable(evutil_socket_t fd, short what, void *arg);

/* conn_up - a bound handle from a dial: watch its socket, send what waits. */
static bool conn_up(pool_conn *c, LDAP *ld, const char *uri)
{
    int fd = -1;
    if (ldap_get_option(ld, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS || fd < 0) return false;
    /* non-blocking: a partial answer or a full send buffer returns to the loop instead of waiting */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return false;
    Sockbuf *sb = NULL;
    ber_len_t max = POOL_MAX_MESSAGE;
    if (ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) == LDAP_OPT_SUCCESS && sb)
        ber_sockbuf_ctrl(sb, LBER_SB_OPT_SET_MAX_INCOMING, &max);
    c->ev_read = event_new(c->pool->base, fd, EV_READ | EV_PERSIST, conn_readable, c);
    event_add(c->ev_read, NULL);
    c->ld = ld;
    c->gen++;
    free(c->uri);
    c->uri = xstrdup(uri);
    c->state = CONN_UP;
    c->up_ms = c->last_read_ms = now_mono_ms();
    ld_pool *p = c->pool;
    p->counters.connects++;
    if (c->was_up) p->counters.reconnects++;
    c->was_up = true;
    p->counters.up++;
    return true;
}

/* conn_dialled - loop: the thread finished its attempt. */
static void conn_dialled(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pool_conn *c = arg;
    ld_pool *p = c->pool;
    ld_dial *d = c->dial;
    if (!atomic_load(&d->finished)) { /* cannot happen: the byte is written after */
        event_add(c->ev_dial, NULL);
        return;
    }
    char b;
    while (read(d->pipefd[0], &b, 1) < 0 && errno == EINTR) {
    }
    pool_enter(p);
    event_free(c->ev_dial);
    c->ev_dial = NULL;
    c->dial = NULL;
    for (size_t i = 0; i < d->errors.n; i++) {
        char *tab = strchr(d->errors.v[i], '\t');
        *tab = '\0';
        log_warn(NULL, "ldap_connect_failed", "conn=%d uri=%s error=\"%s\"", c->idx, d->errors.v[i], tab + 1);
    }
    LDAP *ld = d->ld;
    d->ld = NULL;
    if (ld && conn_up(c, ld, d->uri)) {
        log_info(NULL, "ldap_connected", "conn=%d uri=%s", c->idx, d->uri);
    } else {
        if (ld) {
            log_warn(NULL, "ldap_connect_failed", "conn=%d uri=%s error=\"cannot watch the socket\"", c->idx, d->uri);
            ldap_unbind_ext(ld, NULL, NULL);
        }
        p->counters.connect_failures++;
        conn_wait(c);
    }
    dial_release(d);
    dispatch(p);
    pool_leave(p);
}

/* conn_dial - start an attempt on a thread of its own. */
static void conn_dial(pool_conn *c)
{
    ld_pool *p = c->pool;
    ld_dial *d = xcalloc(1, sizeof *d);
    if (pipe2(d->pipefd, O_CLOEXEC) < 0) {
        log_error(NULL, "ldap_connect_failed", "conn=%d error=\"pipe: %s\"", c->idx, strerror(errno));
        free(d);
        conn_wait(c);
        return;
    }
    atomic_init(&d->refs, 2);
    atomic_init(&d->finished, false);
    for (size_t i = 0; i < p->uris.n; i++) sv_push(&d->uris, p->uris.v[i]);
    d->bind_dn = xstrdup(p->bind_dn);
    d->bind_pw = xstrdup(p->bind_pw);
    d->ca_file = xstrdup(p->ca_file);
    d->starttls = p->starttls;
    d->timeout_s = p->timeout_s;
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, dial_run, d);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_error(NULL, "ldap_connect_failed", "conn=%d error=\"thread: %s\"", c->idx, strerror(rc));
        atomic_store(&d->refs, 1);
        dial_release(d);
        conn_wait(c);
        return;
    }
    c->dial = d;
    c->state = CONN_DIALING;
    c->ev_dial = event_new(p->base, d->pipefd[0], EV_READ, conn_dialled, c);
    event_add(c->ev_dial, NULL);
}

/* conn_retry - the backoff is over. */
static void conn_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pool_conn *c = arg;
    pool_enter(c->pool);
    if (c->state == CONN_WAITING) conn_dial(c);
    pool_leave(c->pool);
}

/* conn_close - drop the handle; the searches it carried go back to the front of the queue. */
static void conn_close(pool_conn *c)
{
    ld_pool *p = c->pool;
    if (c->state != CONN_UP) return;
    event_free(c->ev_read);
    c->ev_read = NULL;
    ldap_unbind_ext(c->ld, NULL, NULL);
    c->ld = NULL;
    c->gen++;
    p->counters.up--;
    c->state = CONN_DOWN;
    ld_search *s;
    while ((s = c->sent.tail) != NULL) { /* from the tail, so that they keep their order in front */
        list_remove(&c->sent, s);
        s->conn = NULL;
        list_push_front(&p->queue, s);
        s->queued = true;
    }
    c->inflight = 0;
}

/* conn_broken - the connection failed: close it and dial again, at once when it had worked for a
 * while, else after the backoff (the failures in a row count on), so that a server that drops
 * every connection it accepts is not hammered. */
static void conn_broken(pool_conn *c, const char *why)
{
    log_warn(NULL, "ldap_connection_lost", "conn=%d uri=%s error=\"%s\"", c->idx, c->uri ? c->uri : "", why);
    bool young = now_mono_ms() - c->up_ms < POOL_MIN_UP_MS;
    conn_close(c);
    if (young) {
        conn_wait(c);
    } else {
        c->failures = 0;
        conn_dial(c);
    }
}

/* ---- searches ---- */

static void search_free(ld_search *s)
{
    if (s->timer) event_free(s->timer);
    for (size_t i = 0; i < s->n; i++) ld_entry_unref(s->entries[i]);
    free(s->entries);
    free(s->base);
    free(s->filter);
    free(s->fail);
    free(s);
}

/* search_detach - take s off the queue or its connection (abandoned at the server when sent). */
static void search_detach(ld_pool *p, ld_search *s)
{
    pool_conn *c = s->conn;
    if (s->queued) {
        list_remove(&p->queue, s);
        s->queued = false;
    }
    if (!c) return;
    list_remove(&c->sent, s);
    c->inflight--;
    s->conn = NULL;
    if (c->state == CONN_UP) ldap_abandon_ext(c->ld, s->msgid, NULL, NULL);
}

/* search_finish - answer s and free it (detached already). */
static void search_finish(ld_search *s, sl_result rc, bool truncated, const char *error)
{
    ld_answer a = {rc, truncated, error, s->entries, s->n};
    ld_search_cb cb = s->cb;
    void *arg = s->arg;
    cb(arg, &a);
    search_free(s);
}

/* search_fail_soon - answer s (in no list) TEMP with why on the next loop turn, never inside the
 * caller's call. */
static void search_fail_soon(ld_search *s, const char *why)
{
    free(s->fail);
    s->fail = xstrdup(why);
    struct timeval now = {0, 0};
    evtimer_add(s->timer, &now);
}

/* search_expired - the deadline passed, or a failure found earlier is answered now. A connection
 * that has said nothing since the search went out is taken for stalled and dialled again. */
static void search_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    ld_search *s = arg;
    ld_pool *p = s->pool;
    pool_enter(p);
    pool_conn *c = s->conn;
    bool stalled = !s->fail && c && c->last_read_ms < s->sent_ms;
    if (!s->fail) p->counters.timeouts++;
    search_detach(p, s);
    if (stalled && c->state == CONN_UP) conn_broken(c, "no answer within ldap_timeout");
    search_finish(s, SL_TEMP, false, s->fail ? s->fail : "no answer within ldap_timeout");
    if (pool_leave(p)) dispatch(p);
}

/* search_send - put s on connection c. */
static void search_send(pool_conn *c, ld_search *s)
{
    ld_pool *p = c->pool;
    struct timeval limit = {(time_t)p->timeout_s, 0};
    int msgid = -1;
    int rc = ldap_search_ext(c->ld, s->base, s->scope, s->filter, p->attrs, 0, NULL, NULL, &limit, s->sizelimit,
                             &msgid);
    if (rc == LDAP_SUCCESS) {
        s->conn = c;
        s->msgid = msgid;
        s->sent_ms = now_mono_ms();
        list_push(&c->sent, s);
        c->inflight++;
        p->counters.sent++;
        return;
    }
    char *e = ld_error(c->ld, rc);
    if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_UNAVAILABLE) {
        list_push_front(&p->queue, s); /* sent again, ahead of the others, once a connection is up */
        s->queued = true;
        conn_broken(c, e);
    } else {
        p->counters.server_errors++;
        search_fail_soon(s, e);
    }
    free(e);
}

/* reachable - whether a connection is up or being dialled. */
static bool reachable(const ld_pool *p)
{
    for (unsigned i = 0; i < p->nconns; i++)
        if (p->conns[i].state == CONN_UP || p->conns[i].state == CONN_DIALING) return true;
    return false;
}

/* least_busy - the connection up with the fewest searches under way and room for one more. */
static pool_conn *least_busy(ld_pool *p)
{
    pool_conn *best = NULL;
    for (unsigned i = 0; i < p->nconns; i++) {
        pool_conn *c = &p->conns[i];
        if (c->state == CONN_UP && c->inflight < POOL_MAX_INFLIGHT && (!best || c->inflight < best->inflight)) best = c;
    }
    return best;
}

/* dispatch - send queued searches while connections have room; when no server can be reached,
 * answer them now instead of at their deadline. */
static void dispatch(ld_pool *p)
{
    pool_conn *c;
    ld_search *s;
    while ((s = p->queue.head) != NULL && (c = least_busy(p)) != NULL) {
        list_remove(&p->queue, s);
        s->queued = false;
        search_send(c, s); /* a connection that fails is no longer up: the loop ends */
    }
    if (reachable(p)) return;
    while ((s = p->queue.head) != NULL) {
        list_remove(&p->queue, s);
        s->queued = false;
        search_fail_soon(s, "no directory server reachable");
    }
}

/* search_result - the final message of s: its result code decides. */
static void search_result(pool_conn *c, ld_search *s, LDAPMessage *msg)
{
    ld_pool *p = c->pool;
    int err = LDAP_OTHER;
    char *diag = NULL;
    int rc = ldap_parse_result(c->ld, msg, &err, NULL, &diag, NULL, NULL, 0);
    if (rc != LDAP_SUCCESS) err = rc;
    search_detach(p, s);
    event_del(s->timer);
    if (err == LDAP_SUCCESS && s->referred && s->n == 0) { /* the entry may be where we were sent */
        p->counters.server_errors++;
        search_finish(s, SL_TEMP, false, "nothing found, and the server sent references (not followed)");
    } else if (err == LDAP_SUCCESS) {
        search_finish(s, SL_OK, false, NULL);
    } else if (err == LDAP_SIZELIMIT_EXCEEDED) {
        search_finish(s, SL_OK, true, NULL);
    } else if (err == LDAP_NO_SUCH_OBJECT) {
        search_finish(s, SL_PERM, false, NULL);
    } else {
        p->counters.server_errors++;
        char *e = diag && *diag ? xasprintf("%s (%d): %s", ldap_err2string(err), err, diag)
                                : xasprintf("%s (%d)", ldap_err2string(err), err);
        search_finish(s, SL_TEMP, false, e);
        free(e);
    }
    ldap_memfree(diag);
}

/* conn_message - one message read from c. */
static void conn_message(pool_conn *c, LDAPMessage *msg)
{
    int id = ldap_msgid(msg);
    ld_search *s = c->sent.head;
    while (s && s->msgid != id) s = s->next;
    if (!s) return; /* abandoned, or unsolicited */
    switch (ldap_msgtype(msg)) {
    case LDAP_RES_SEARCH_ENTRY:
        if (s->n < POOL_MAX_ENTRIES && (s->sizelimit <= 0 || s->n < (size_t)s->sizelimit)) {
            s->entries = xrealloc(s->entries, (s->n + 1) * sizeof *s->entries);
            s->entries[s->n++] = entry_from_message(c->ld, msg);
        }
        break;
    case LDAP_RES_SEARCH_RESULT:
        search_result(c, s, msg);
        break;
    case LDAP_RES_SEARCH_REFERENCE: /* not followed: "none found" would not be a sure answer */
        s->referred = true;
        break;
    default:
        break;
    }
}

/* conn_readable - read every complete answer, without waiting for incomplete ones. */
static void conn_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pool_conn *c = arg;
    ld_pool *p = c->pool;
    pool_enter(p);
    unsigned gen = c->gen;
    while (!p->doomed && c->state == CONN_UP && c->gen == gen) {
        struct timeval zero = {0, 0};
        LDAPMessage *msg = NULL;
        int rc = ldap_result(c->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &msg);
        if (rc == 0) break;
        if (rc < 0) {
            int err = LDAP_SERVER_DOWN;
            ldap_get_option(c->ld, LDAP_OPT_RESULT_CODE, &err);
            char *e = ld_error(c->ld, err);
            conn_broken(c, e);
            free(e);
            break;
        }
        c->last_read_ms = now_mono_ms();
        conn_message(c, msg);
        ldap_msgfree(msg);
    }
    if (pool_leave(p)) dispatch(p);
}

/* ---- the pool ---- */

ld_pool *ld_pool_new(const sl_options *opt, const char *const *attrs)
{
    ld_pool *p = xcalloc(1, sizeof *p);
    for (size_t i = 0; i < opt->ldap_uris.n; i++) sv_push(&p->uris, opt->ldap_uris.v[i]);
    p->bind_dn = xstrdup(opt->ldap_bind_dn);
    p->bind_pw = xstrdup(opt->ldap_bind_password);
    p->ca_file = xstrdup(opt->ldap_tls_ca_file);
    p->starttls = opt->ldap_starttls;
    p->timeout_s = opt->ldap_timeout;
    size_t n = 0;
    while (attrs[n]) n++;
    p->attrs = xcalloc(n + 1, sizeof *p->attrs);
    for (size_t i = 0; i < n; i++) p->attrs[i] = xstrdup(attrs[i]);
    p->nconns = opt->ldap_connections;
    p->conns = xcalloc(p->nconns, sizeof *p->conns);
    for (unsigned i = 0; i < p->nconns; i++) {
        p->conns[i].pool = p;
        p->conns[i].idx = (int)i;
    }
    p->counters.size = p->nconns;
    return p;
}

void ld_pool_start(ld_pool *p, struct event_base *base)
{
    p->base = base;
    /* libldap's global state is set up here, on the loop, before any dial thread touches it:
     * its options, and, when TLS may be used, its TLS library (whose first initialisation is not
     * safe from several threads at once); a failure here shows again, logged, on a dial */
    int debug = 0, client = 0;
    ldap_set_option(NULL, LDAP_OPT_DEBUG_LEVEL, &debug);
    bool tls = p->starttls || p->ca_file;
    for (size_t i = 0; i < p->uris.n; i++) tls |= str_has_prefix_ci(p->uris.v[i], "ldaps://");
    if (tls) ldap_set_option(NULL, LDAP_OPT_X_TLS_NEWCTX, &client);
    for (unsigned i = 0; i < p->nconns; i++) {
        pool_conn *c = &p->conns[i];
        c->ev_retry = evtimer_new(base, conn_retry, c);
        conn_dial(c);
    }
}

ld_search *ld_pool_search(ld_pool *p, const char *base, int scope, const char *filter, int sizelimit,
                              int64_t deadline_ms, ld_search_cb cb, void *arg)
{
    ld_search *s = xcalloc(1, sizeof *s);
    s->pool = p;
    s->base = xstrdup(base);
    s->filter = xstrdup(filter);
    s->scope = scope;
    s->sizelimit = sizelimit;
    s->cb = cb;
    s->arg = arg;
    s->timer = evtimer_new(p->base, search_expired, s);
    int64_t left = deadline_ms - now_mono_ms();
    if (left < 0) left = 0;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    evtimer_add(s->timer, &tv);
    list_push(&p->queue, s);
    s->queued = true;
    dispatch(p);
    return s;
}

void ld_pool_cancel(ld_pool *p, ld_search *s)
{
    search_detach(p, s);
    search_free(s);
}

void ld_pool_get_counters(const ld_pool *p, ld_pool_counters *out)
{
    *out = p->counters;
}

/* pool_destroy - free everything; a dial thread still running discards its handle itself. */
static void pool_destroy(ld_pool *p)
{
    for (unsigned i = 0; i < p->nconns; i++) {
        pool_conn *c = &p->conns[i];
        ld_search *s;
        while ((s = c->sent.head) != NULL) {
            search_detach(p, s);
            search_free(s);
        }
        conn_close(c);
        if (c->ev_dial) event_free(c->ev_dial);
        if (c->dial) dial_release(c->dial);
        if (c->ev_retry) event_free(c->ev_retry);
        free(c->uri);
    }
    ld_search *s;
    while ((s = p->queue.head) != NULL) {
        list_remove(&p->queue, s);
        search_free(s);
    }
    /* searches waiting to be answered a failure are in no list: their owners cancel them first */
    free(p->conns);
    for (size_t i = 0; p->attrs[i]; i++) free(p->attrs[i]);
    free(p->attrs);
    sv_free(&p->uris);
    free(p->bind_dn);
    if (p->bind_pw) explicit_bzero(p->bind_pw, strlen(p->bind_pw));
    free(p->bind_pw);
    free(p->ca_file);
    free(p);
}

void ld_pool_free(ld_pool *p)
{
    if (!p) return;
    if (p->in_use) {
        p->doomed = true;
        return;
    }
    pool_destroy(p);
}
