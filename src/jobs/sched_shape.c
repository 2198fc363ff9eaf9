/*
 * sched_shape.c - traffic shaping in the scheduler (doc/delivery.md "Traffic shaping"; the table
 * is conf/shaping.h, one destination's state machine jobs/shape.h): the destinations, the
 * messages each holds back, the timers that let them go, the reactions to replies, the log
 * lines, gauges and the `sluice queue shaping` listing. sched.c asks before it starts a job or
 * gives a job another message; nothing here runs when no shaping_file is configured.
 *
 * A held-back message (qent) leaves its channel's heap for the wait list of the destination
 * that holds it back, its recipients untouched (no attempt counted, no retry later): it goes
 * back into the heap, and its channel is kicked, when a connection to the destination closes,
 * when the rate's next slot comes or the suspension ends (a timer), or after a reload.
 *
 * The scheduler's view of the table: a configuration reference (so the entries destinations
 * point to stay valid) refreshed when the daemon's configuration changes. Destinations are
 * found by key in a hash table and forgotten by a sweep once idle. Loop thread only.
 */
#include "jobs/sched_int.h"
#include "conf/conf.h"
#include "conf/shaping.h"
#include "core/log.h"
#include "core/metrics.h"
#include "deliver/hostmem.h"
#include "jobs/shape.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHAPE_BUCKETS 1024
#define SHAPE_SWEEP_SECS 60 /* how often idle destinations are forgotten */

struct sdest {
    char *key;                /* "example.com", or "mx:SUFFIX" */
    const shaping_entry *e;   /* its entry in the view's table (no_entry: reactions only) */
    shape_state st;
    qent *head, *tail;        /* the messages it holds back, oldest first */
    size_t n_wait;
    struct event *timer;      /* lets them go at a time (the rate's slot, the end of a suspension) */
    struct sched_shape *sh;
    sdest *chain;
};

typedef struct sched_shape {
    sched *s;
    sl_conf *conf;            /* the view: a reference to the configuration whose table entries point into */
    unsigned gen;             /* changes with the view */
    sdest *buckets[SHAPE_BUCKETS];
    size_t n;
    struct event *sweep;
} sched_shape;

/* what a destination without an entry gets: no limits, but the reaction rules apply */
static const shaping_entry no_entry = {SHAPING_ANY, NULL, 0, 0, 0, SHAPING_DEFAULT_FLOOR, SHAPING_DEFAULT_RAMP, 0};

static void dest_wake(sdest *d);

int64_t sched_now_ms(void)
{
    return now_mono_ms();
}

/* wall_of - the unix time of a point of the shaping clock. */
static int64_t wall_of(int64_t ms)
{
    return now_unix() + (ms - sched_now_ms() + 999) / 1000;
}

/* key_hash - bucket of a key. */
static size_t key_hash(const char *k)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)k; *p; p++) h = (h ^ *p) * 16777619u;
    return h % SHAPE_BUCKETS;
}

/* log_value - text safe inside a double-quoted log value; caller frees. */
static char *log_value(const char *s)
{
    char *v = xstrdup(s ? s : "");
    for (char *p = v; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = '\'';
    return v;
}

/* ---- the view of the table ---- */

/* entry_for - the entry for host in the view's table and the key of its destination (caller frees). */
static const shaping_entry *entry_for(sched_shape *sh, const char *host, char **key)
{
    const shaping_table *t = sh->conf ? sh->conf->shaping : NULL;
    const char *mx[HOSTMEM_MX_NAMES];
    size_t n = t && t->has_mx && sh->s->ctx->hostmem ? hostmem_mx_find(sh->s->ctx->hostmem, host, now_unix(), mx) : 0;
    const shaping_entry *e = shaping_lookup(t, host, mx, n);
    *key = e && e->kind == SHAPING_MX ? xasprintf("mx:%s", e->pattern) : str_lower(xstrdup(host));
    return e ? e : &no_entry;
}

/* entry_again - d's entry in a new view: its provider's entry, or its domain's. */
static const shaping_entry *entry_again(sched_shape *sh, const sdest *d)
{
    const shaping_table *t = sh->conf ? sh->conf->shaping : NULL;
    if (!t) return &no_entry;
    if (!strncmp(d->key, "mx:", 3)) {
        for (size_t i = 0; i < t->n; i++)
            if (t->v[i].kind == SHAPING_MX && !strcmp(t->v[i].pattern, d->key + 3)) return &t->v[i];
        return &no_entry;
    }
    char *key;
    const shaping_entry *e = entry_for(sh, d->key, &key);
    bool same = !strcmp(key, d->key);
    free(key);
    return same ? e : &no_entry; /* now in a provider: this one keeps no limits of its own */
}

/* view_sync - the daemon's configuration changed: point every destination into the new table
 * (or at no entry without one) and let what they hold back try again. */
static void view_sync(sched *s)
{
    sched_shape *sh = s->shape;
    sl_conf *c = s->ctx->conf;
    if (sh->conf) ctx_conf_put(s->ctx, sh->conf);
    sh->conf = c->shaping ? ctx_conf_get(s->ctx) : NULL;
    sh->gen++;
    for (size_t b = 0; b < SHAPE_BUCKETS; b++)
        for (sdest *d = sh->buckets[b]; d; d = d->chain) d->e = entry_again(sh, d);
    for (size_t b = 0; b < SHAPE_BUCKETS; b++)
        for (sdest *d = sh->buckets[b]; d; d = d->chain) dest_wake(d);
}

static void sweep_fired(evutil_socket_t fd, short what, void *arg);

/* view_stale - the daemon's configuration is no longer the one the view holds. */
static bool view_stale(const sched *s)
{
    const sl_conf *c = s->ctx->conf;
    return c->shaping ? s->shape->conf != c : s->shape->conf != NULL;
}

void sched_shape_reconf(sched *s)
{
    if (s->shape && view_stale(s)) view_sync(s);
}

bool sched_shape_on(chanq *cq)
{
    sched *s = cq->s;
    const sl_conf *c = s->ctx->conf;
    if (!c->shaping) {
        if (s->shape && s->shape->conf) view_sync(s); /* shaping was configured away: everything goes */
        return false;
    }
    if (!s->shape) {
        s->shape = xcalloc(1, sizeof *s->shape);
        s->shape->s = s;
        s->shape->sweep = event_new(s->ctx->base, -1, EV_PERSIST, sweep_fired, s->shape);
        struct timeval tv = {SHAPE_SWEEP_SECS, 0};
        event_add(s->shape->sweep, &tv);
        sched_shape_metrics_register(s);
    }
    if (s->shape->conf != c) view_sync(s);
    if (cq->shape_gen != s->shape->gen) {
        const sl_channel *ch = conf_channel_by_name(c, cq->name);
        cq->shape_ok = ch && ch->type == CHAN_SMTP && !ch->lmtp && !(ch->daemon && *ch->daemon);
        cq->shape_gen = s->shape->gen;
    }
    return cq->shape_ok;
}

/* ---- destinations ---- */

/* dest_timer_fired - the time a destination waited for has come. */
static void dest_timer_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dest_wake(arg);
}

sdest *sched_shape_dest(sched *s, const char *host)
{
    sched_shape *sh = s->shape;
    char *key;
    const shaping_entry *e = entry_for(sh, host, &key);
    size_t b = key_hash(key);
    for (sdest *d = sh->buckets[b]; d; d = d->chain)
        if (!strcmp(d->key, key)) {
            free(key);
            d->e = e;
            return d;
        }
    sdest *d = xcalloc(1, sizeof *d);
    d->key = key;
    d->e = e;
    d->sh = sh;
    d->timer = evtimer_new(s->ctx->base, dest_timer_fired, d);
    d->chain = sh->buckets[b];
    sh->buckets[b] = d;
    sh->n++;
    return d;
}

/* dest_free - forget d (nothing may point to it any more). */
static void dest_free(sdest *d)
{
    event_free(d->timer);
    free(d->key);
    free(d);
}

/* sweep_fired - forget the destinations that have nothing left to remember. */
static void sweep_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sched_shape *sh = arg;
    int64_t now = sched_now_ms();
    for (size_t b = 0; b < SHAPE_BUCKETS; b++)
        for (sdest **pp = &sh->buckets[b]; *pp;) {
            sdest *d = *pp;
            if (d->n_wait || !shape_idle(&d->st, now)) {
                pp = &d->chain;
                continue;
            }
            *pp = d->chain;
            sh->n--;
            dest_free(d);
        }
}

int sched_shape_check(sdest *d, bool new_conn, int64_t now_ms)
{
    int64_t at;
    return (int)shape_check(&d->st, d->e, new_conn, now_ms, &at);
}

bool sched_shape_job_ok(sdest *d, unsigned sent, int64_t now_ms)
{
    if (shape_suspended(&d->st, now_ms)) return false;
    return !d->e->per_connection || sent < d->e->per_connection;
}

void sched_shape_conn(sdest *d, int delta)
{
    d->st.conns += delta;
    if (delta < 0) dest_wake(d);
}

void sched_shape_sent(sdest *d, int64_t now_ms)
{
    shape_sent(&d->st, d->e, now_ms);
}

/* ---- waiting ---- */

void sched_shape_wait(sdest *d, qent *e, int64_t now_ms)
{
    e->wait = d;
    e->wait_next = NULL;
    e->wait_prev = d->tail;
    if (d->tail) d->tail->wait_next = e;
    else d->head = e;
    d->tail = e;
    d->n_wait++;
    metric_add(&METRIC_SHAPING_HELD, NULL, 1);
    int64_t at;
    if (shape_check(&d->st, d->e, true, now_ms, &at) == SHAPE_WAIT_TIME && !evtimer_pending(d->timer, NULL)) {
        int64_t ms = at > now_ms ? at - now_ms : 0;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        evtimer_add(d->timer, &tv);
    }
    log_debug(e->msg->id, "shaping_wait", "dest=%s waiting=%zu", d->key, d->n_wait);
}

void sched_shape_unwait(qent *e)
{
    sdest *d = e->wait;
    if (!d) return;
    if (e->wait_prev) e->wait_prev->wait_next = e->wait_next;
    else d->head = e->wait_next;
    if (e->wait_next) e->wait_next->wait_prev = e->wait_prev;
    else d->tail = e->wait_prev;
    e->wait = NULL;
    e->wait_prev = e->wait_next = NULL;
    d->n_wait--;
}

/* wake_count - how many of d's waiting messages may try now: none while suspended or before the
 * rate's next slot, else one per free connection (all without a limit) and one for a rate. */
static size_t wake_count(const sdest *d, int64_t now)
{
    int64_t at;
    shape_verdict v = shape_check(&d->st, d->e, true, now, &at);
    if (v == SHAPE_WAIT_TIME) return 0;
    size_t n = d->n_wait;
    if (v == SHAPE_WAIT_CONN) n = 0;
    else if (d->e->connections) {
        size_t free_conns = (size_t)((int)d->e->connections - d->st.conns);
        if (n > free_conns) n = free_conns;
    }
    if (shape_rate(&d->st, d->e) && n > 1) n = 1;
    return n;
}

/* dest_wake - a suspension that ended is logged, the messages d may let go now go back into their
 * heaps (their channels kicked), and the timer is set for the next time something changes. */
static void dest_wake(sdest *d)
{
    sched *s = d->sh->s;
    if (view_stale(s)) { /* a reload nobody kicked the scheduler for yet: every destination wakes */
        view_sync(s);
        return;
    }
    int64_t now = sched_now_ms();
    if (shape_resumed(&d->st, now)) log_info(NULL, "shaping", "dest=%s action=resume", d->key);
    if (!d->n_wait) return;
    if (!d->sh->conf) { /* shaping configured away: everything goes */
        while (d->head) {
            qent *e = d->head;
            sched_shape_unwait(e);
            sched_heap_push(e);
            sched_kick(e->cq);
        }
        return;
    }
    size_t n = wake_count(d, now);
    chanq *kick[8];
    size_t nk = 0;
    for (size_t i = 0; i < n && d->head; i++) {
        qent *e = d->head;
        sched_shape_unwait(e);
        sched_heap_push(e);
        bool seen = false;
        for (size_t k = 0; k < nk; k++) seen |= kick[k] == e->cq;
        if (!seen && nk < SL_ARRAY_LEN(kick)) kick[nk++] = e->cq;
        else if (!seen) sched_kick(e->cq);
    }
    int64_t at;
    if (d->n_wait && shape_check(&d->st, d->e, true, now, &at) == SHAPE_WAIT_TIME) {
        int64_t ms = at > now ? at - now : 0;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        evtimer_add(d->timer, &tv);
    }
    for (size_t k = 0; k < nk; k++) sched_kick(kick[k]);
    (void)s;
}

void sched_shape_idle(sdest *d)
{
    int64_t now = sched_now_ms(), at;
    if (!d->head || !d->sh->conf || shape_check(&d->st, d->e, false, now, &at) != SHAPE_GO) return;
    qent *e = d->head;
    sched_shape_unwait(e);
    sched_heap_push(e);
    sched_kick(e->cq);
}

/* ---- reactions ---- */

/* reply_parse - the reply code and text of a diagnostic ("smtp; 421 4.7.28 text"); false when it holds none. */
static bool reply_parse(const char *diag, char code[4], const char **text)
{
    if (!diag) return false;
    const char *p = strstr(diag, "; ");
    p = p ? p + 2 : diag;
    if (!(p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9')) return false;
    if (p[3] && p[3] != ' ' && p[3] != '-') return false;
    memcpy(code, p, 3);
    code[3] = '\0';
    *text = p;
    return true;
}

/* react - apply rule r (matched by reply diag) to d. */
static void react(sdest *d, const shaping_rule *r, const char *diag, int64_t now)
{
    char *reply = log_value(diag);
    if (r->action == SHAPING_SUSPEND) {
        shape_suspend(&d->st, now, r->period);
        char until[32];
        time_t t = (time_t)wall_of(d->st.until_ms);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", &tm);
        log_info(NULL, "shaping", "dest=%s action=suspend until=%s period=%u reply=\"%s\"", d->key, until, r->period,
                 reply);
        metric_add(&METRIC_SHAPING_REACTIONS, (const char *const[]){"suspend"}, 1);
        /* the timer must fire at the end even when nothing waits yet, to log the resume */
        int64_t ms = d->st.until_ms - now;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        evtimer_add(d->timer, &tv);
    } else if (shape_halve(&d->st, d->e, now)) {
        log_info(NULL, "shaping", "dest=%s action=halve rate=%u reply=\"%s\"", d->key, shape_rate(&d->st, d->e), reply);
        metric_add(&METRIC_SHAPING_REACTIONS, (const char *const[]){"halve"}, 1);
    } else {
        log_debug(NULL, "shaping", "dest=%s action=none rate=%u at_floor=yes", d->key, shape_rate(&d->st, d->e));
    }
    free(reply);
}

void sched_shape_result(sched *s, sdest *d, const deliv_item *item)
{
    const shaping_table *t = s->shape->conf ? s->shape->conf->shaping : NULL;
    int64_t now = sched_now_ms();
    bool ok = false;
    for (size_t i = 0; i < item->n; i++) {
        const deliv_result *r = &item->results[i];
        if (r->result == SL_OK) {
            ok = true;
            continue;
        }
        char code[4];
        const char *text;
        if (!t || !reply_parse(r->diag, code, &text)) continue;
        const shaping_rule *rule = shaping_react(t, code, r->status[0] ? r->status : NULL, text);
        if (!rule) continue;
        react(d, rule, text, now);
        return; /* one reaction per message */
    }
    if (ok && shape_success(&d->st, d->e)) {
        unsigned rate = shape_rate(&d->st, d->e);
        if (d->st.level) log_info(NULL, "shaping", "dest=%s action=ramp rate=%u", d->key, rate);
        else log_info(NULL, "shaping", "dest=%s action=restore rate=%u", d->key, rate);
        dest_wake(d);
    }
}

/* ---- listing, gauges, end ---- */

void sched_shaping_list(sched *s, sched_shaping_cb cb, void *arg)
{
    if (!s->shape) return;
    int64_t now = sched_now_ms();
    for (size_t b = 0; b < SHAPE_BUCKETS; b++)
        for (sdest *d = s->shape->buckets[b]; d; d = d->chain) {
            bool susp = shape_suspended(&d->st, now);
            sched_shaping v = {
                .dest = d->key,
                .entry = d->e->pattern,
                .state = shape_mode_name(&d->st, now),
                .until = susp ? wall_of(d->st.until_ms) : 0,
                .rate = shape_rate(&d->st, d->e),
                .per_hour = d->e->per_hour,
                .halvings = d->st.level,
                .connections = d->st.conns,
                .max_connections = d->e->connections,
                .per_connection = d->e->per_connection,
                .last_hour = shape_hour(&d->st, now),
                .waiting = d->n_wait,
            };
            cb(arg, &v);
        }
}

/* metrics_waiting - gauge: messages held back now. */
static void metrics_waiting(void *arg, metric_emit *em)
{
    sched *s = arg;
    size_t n = 0;
    for (size_t b = 0; s->shape && b < SHAPE_BUCKETS; b++)
        for (sdest *d = s->shape->buckets[b]; d; d = d->chain) n += d->n_wait;
    metric_emit_value(em, NULL, (double)n);
}

/* metrics_dests - gauge: destinations by state. */
static void metrics_dests(void *arg, metric_emit *em)
{
    sched *s = arg;
    static const char *states[] = {"active", "halved", "suspended"};
    size_t n[3] = {0};
    int64_t now = sched_now_ms();
    for (size_t b = 0; s->shape && b < SHAPE_BUCKETS; b++)
        for (sdest *d = s->shape->buckets[b]; d; d = d->chain) {
            const char *m = shape_mode_name(&d->st, now);
            n[m[0] == 'a' ? 0 : m[0] == 'h' ? 1 : 2]++;
        }
    for (size_t i = 0; i < 3; i++) metric_emit_value(em, (const char *const[]){states[i]}, (double)n[i]);
}

void sched_shape_metrics_register(sched *s)
{
    metric_gauge_register(&METRIC_SHAPING_WAITING, metrics_waiting, s);
    metric_gauge_register(&METRIC_SHAPING_DESTS, metrics_dests, s);
}

void sched_shape_free(sched *s)
{
    sched_shape *sh = s->shape;
    if (!sh) return;
    for (size_t b = 0; b < SHAPE_BUCKETS; b++)
        while (sh->buckets[b]) {
            sdest *d = sh->buckets[b];
            sh->buckets[b] = d->chain;
            dest_free(d);
        }
    if (sh->conf) ctx_conf_put(s->ctx, sh->conf);
    event_free(sh->sweep);
    free(sh);
    s->shape = NULL;
}
