/*
 * metrics.c - the metrics registry and its exposition text (see metrics.h).
 *
 * Families are kept in registration order on an append-only list; each family's series on a
 * list of its own, found by their label values under the family's mutex. Values are atomics, so
 * recording takes the mutex only to find the series. Histogram buckets are counted one by one
 * (not cumulatively) and summed when rendered, so the rendered buckets are always monotonic and
 * the +Inf bucket equals _count even while other threads record.
 */
#include "core/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct series {
    struct series *next;
    char *values[METRIC_MAX_LABELS];
    _Atomic uint64_t value;      /* counters */
    _Atomic uint64_t sum_micro;  /* histograms: the sum in millionths */
    _Atomic uint64_t *buckets;   /* histograms: n_buckets + 1 counts, the last one above every bound */
} series;

typedef struct gauge_fn {
    struct gauge_fn *next;
    metric_gauge_cb cb;
    void *arg;
} gauge_fn;

typedef struct family {
    struct family *next;
    const metric_def *def;
    pthread_mutex_t mu;
    series *head, *tail;
    gauge_fn *gauges;
} family;

struct metric_emit {
    const metric_def *def;
    strbuf *out;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static family *families, *families_tail;

/* label_count - how many labels d has. */
static size_t label_count(const metric_def *d)
{
    size_t n = 0;
    while (n < METRIC_MAX_LABELS && d->labels[n]) n++;
    return n;
}

/* family_get - d's family, registered at its first use. */
static family *family_get(const metric_def *d)
{
    pthread_mutex_lock(&registry_mu);
    family *f = families;
    while (f && f->def != d) f = f->next;
    if (!f) {
        f = xcalloc(1, sizeof *f);
        f->def = d;
        pthread_mutex_init(&f->mu, NULL);
        if (families_tail) families_tail->next = f;
        else families = f;
        families_tail = f;
    }
    pthread_mutex_unlock(&registry_mu);
    return f;
}

/* series_match - whether s has the label values values (NULL ones are ""). */
static bool series_match(const series *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->values[i], values && values[i] ? values[i] : "") != 0) return false;
    return true;
}

/* series_get - the series of f with values, created at its first use. */
static series *series_get(family *f, const char *const *values)
{
    size_t n = label_count(f->def);
    pthread_mutex_lock(&f->mu);
    series *s = f->head;
    while (s && !series_match(s, values, n)) s = s->next;
    if (!s) {
        s = xcalloc(1, sizeof *s);
        for (size_t i = 0; i < n; i++) s->values[i] = xstrdup(values && values[i] ? values[i] : "");
        if (f->def->type == METRIC_HISTOGRAM) s->buckets = xcalloc(f->def->n_buckets + 1, sizeof *s->buckets);
        if (f->tail) f->tail->next = s;
        else f->head = s;
        f->tail = s;
    }
    pthread_mutex_unlock(&f->mu);
    return s;
}

void metric_add(const metric_def *d, const char *const *values, uint64_t n)
{
    series *s = series_get(family_get(d), values);
    atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void metric_observe(const metric_def *d, const char *const *values, double v)
{
    series *s = series_get(family_get(d), values);
    size_t b = 0;
    while (b < d->n_buckets && v > d->buckets[b]) b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    if (v > 0) atomic_fetch_add_explicit(&s->sum_micro, (uint64_t)llround(v * 1e6), memory_order_relaxed);
}

void metric_gauge_register(const metric_def *d, metric_gauge_cb cb, void *arg)
{
    family *f = family_get(d);
    gauge_fn *g = xcalloc(1, sizeof *g);
    g->cb = cb;
    g->arg = arg;
    pthread_mutex_lock(&f->mu);
    g->next = f->gauges;
    f->gauges = g;
    pthread_mutex_unlock(&f->mu);
}

void metric_gauge_unregister(void *arg)
{
    pthread_mutex_lock(&registry_mu);
    for (family *f = families; f; f = f->next) {
        pthread_mutex_lock(&f->mu);
        gauge_fn **p = &f->gauges;
        while (*p) {
            gauge_fn *g = *p;
            if (g->arg == arg) {
                *p = g->next;
                free(g);
            } else {
                p = &g->next;
            }
        }
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_unlock(&registry_mu);
}

/* ---- rendering ---- */

/* put_escaped - s with '\\', '"' (when quote) and newlines escaped as the format requires. */
static void put_escaped(strbuf *out, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\') sb_puts(out, "\\\\");
        else if (*s == '\n') sb_puts(out, "\\n");
        else if (*s == '"' && quote) sb_puts(out, "\\\"");
        else sb_putc(out, *s);
    }
}

/* put_labels - {a="x",b="y"[,le="..."]}, nothing when there are none. */
static void put_labels(strbuf *out, const metric_def *d, const char *const *values, const char *le)
{
    size_t n = label_count(d);
    if (!n && !le) return;
    sb_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        sb_printf(out, "%s%s=\"", i ? "," : "", d->labels[i]);
        put_escaped(out, values && values[i] ? values[i] : "", true);
        sb_putc(out, '"');
    }
    if (le) sb_printf(out, "%sle=\"%s\"", n ? "," : "", le);
    sb_putc(out, '}');
}

/* put_number - a sample value: integers without a fraction, others in full precision. */
static void put_number(strbuf *out, double v)
{
    if (isnan(v)) sb_puts(out, "NaN");
    else if (isinf(v)) sb_puts(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15) sb_printf(out, "%.0f", v);
    else sb_printf(out, "%.15g", v);
}

void metric_emit_value(metric_emit *e, const char *const *values, double v)
{
    sb_puts(e->out, e->def->name);
    put_labels(e->out, e->def, values, NULL);
    sb_putc(e->out, ' ');
    put_number(e->out, v);
    sb_putc(e->out, '\n');
}

/* render_histogram - the _bucket, _sum and _count lines of one series. */
static void render_histogram(strbuf *out, const metric_def *d, series *s)
{
    const char *const *values = (const char *const *)s->values;
    uint64_t cum = 0;
    for (size_t b = 0; b <= d->n_buckets; b++) {
        cum += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
        char le[32];
        if (b < d->n_buckets) snprintf(le, sizeof le, "%g", d->buckets[b]);
        else snprintf(le, sizeof le, "+Inf");
        sb_printf(out, "%s_bucket", d->name);
        put_labels(out, d, values, le);
        sb_printf(out, " %llu\n", (unsigned long long)cum);
    }
    sb_printf(out, "%s_sum", d->name);
    put_labels(out, d, values, NULL);
    sb_putc(out, ' ');
    put_number(out, (double)atomic_load_explicit(&s->sum_micro, memory_order_relaxed) / 1e6);
    sb_printf(out, "\n%s_count", d->name);
    put_labels(out, d, values, NULL);
    sb_printf(out, " %llu\n", (unsigned long long)cum);
}

/* render_family - HELP, TYPE and every series of f. */
static void render_family(strbuf *out, family *f)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    const metric_def *d = f->def;
    sb_printf(out, "# HELP %s ", d->name);
    put_escaped(out, d->help, false);
    sb_printf(out, "\n# TYPE %s %s\n", d->name, types[d->type]);
    pthread_mutex_lock(&f->mu);
    if (d->type == METRIC_GAUGE) {
        metric_emit e = {d, out};
        for (gauge_fn *g = f->gauges; g; g = g->next) g->cb(g->arg, &e);
    }
    for (series *s = d->type == METRIC_GAUGE ? NULL : f->head; s; s = s->next) {
        if (d->type == METRIC_HISTOGRAM) {
            render_histogram(out, d, s);
            continue;
        }
        sb_puts(out, d->name);
        put_labels(out, d, (const char *const *)s->values, NULL);
        sb_printf(out, " %llu\n", (unsigned long long)atomic_load_explicit(&s->value, memory_order_relaxed));
    }
    pthread_mutex_unlock(&f->mu);
}

void metrics_render(strbuf *out)
{
    /* the families are taken under the lock, rendered without it (gauge callbacks may take their time) */
    pthread_mutex_lock(&registry_mu);
    size_t n = 0;
    for (family *f = families; f; f = f->next) n++;
    family **v = xcalloc(n + 1, sizeof *v);
    n = 0;
    for (family *f = families; f; f = f->next) v[n++] = f;
    pthread_mutex_unlock(&registry_mu);
    for (size_t i = 0; i < n; i++) render_family(out, v[i]);
    free(v);
}

void metrics_reset(void)
{
    pthread_mutex_lock(&registry_mu);
    while (families) {
        family *f = families;
        families = f->next;
        while (f->head) {
            series *s = f->head;
            f->head = s->next;
            for (size_t i = 0; i < METRIC_MAX_LABELS; i++) free(s->values[i]);
            free(s->buckets);
            free(s);
        }
        while (f->gauges) {
            gauge_fn *g = f->gauges;
            f->gauges = g->next;
            free(g);
        }
        pthread_mutex_destroy(&f->mu);
        free(f);
    }
    families_tail = NULL;
    pthread_mutex_unlock(&registry_mu);
}

/* ---- the catalogue ---- */

static const double flush_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

const metric_def METRIC_SESSIONS = {"sluice_sessions_total", "SMTP server sessions accepted, by service (local: sendmail)",
                                    METRIC_COUNTER, {"service"}, NULL, 0};
const metric_def METRIC_MESSAGES_RECEIVED = {"sluice_messages_received_total",
                                             "Messages queued (250 after DATA or BDAT), by source channel",
                                             METRIC_COUNTER, {"channel"}, NULL, 0};
const metric_def METRIC_RCPTS_RECEIVED = {"sluice_recipients_received_total",
                                          "Recipients of the messages queued, by source channel", METRIC_COUNTER,
                                          {"channel"}, NULL, 0};
const metric_def METRIC_REJECTS = {"sluice_rejects_total",
                                   "Commands refused, by verdict class (protocol: the engine's own) and enhanced "
                                   "status code",
                                   METRIC_COUNTER, {"class", "code"}, NULL, 0};
const metric_def METRIC_DELIVERIES = {"sluice_deliveries_total",
                                      "Recipient delivery attempts by destination channel and result (delivered, "
                                      "deferred, failed)",
                                      METRIC_COUNTER, {"channel", "result"}, NULL, 0};
const metric_def METRIC_DSNS = {"sluice_dsn_total", "DSNs queued, by kind (failed, delayed, delivered, relayed)",
                                METRIC_COUNTER, {"kind"}, NULL, 0};
const metric_def METRIC_QUEUE_MESSAGES = {"sluice_queue_messages", "Messages in the queue, by destination channel",
                                          METRIC_GAUGE, {"channel"}, NULL, 0};
const metric_def METRIC_QUEUE_OLDEST = {"sluice_queue_oldest_age_seconds",
                                        "Age of the oldest message in the queue, by destination channel", METRIC_GAUGE,
                                        {"channel"}, NULL, 0};
const metric_def METRIC_COMMIT_BATCHES = {"sluice_store_commit_batches_total",
                                          "Group-commit batches made durable by the queue store", METRIC_COUNTER,
                                          {NULL}, NULL, 0};
const metric_def METRIC_COMMIT_FILES = {"sluice_store_commit_files_total", "Queue files in those batches",
                                        METRIC_COUNTER, {NULL}, NULL, 0};
const metric_def METRIC_FLUSH_SECONDS = {"sluice_store_flush_seconds",
                                         "Time to make one group-commit batch durable (write, fdatasync, rename, "
                                         "directory fsync)",
                                         METRIC_HISTOGRAM, {NULL}, flush_buckets, SL_ARRAY_LEN(flush_buckets)};
const metric_def METRIC_PICKUP = {"sluice_pickup_files_total",
                                  "Files of the pickup directory, by result (queued, deferred, failed)", METRIC_COUNTER,
                                  {"result"}, NULL, 0};
const metric_def METRIC_SHAPING_REACTIONS = {"sluice_shaping_reactions_total",
                                             "Traffic shaping reactions to replies, by action (suspend, halve)",
                                             METRIC_COUNTER, {"action"}, NULL, 0};
const metric_def METRIC_SHAPING_HELD = {"sluice_shaping_held_total",
                                        "Times a message was held back by traffic shaping (connections, rate, suspension)",
                                        METRIC_COUNTER, {NULL}, NULL, 0};
const metric_def METRIC_SHAPING_WAITING = {"sluice_shaping_waiting_messages",
                                           "Messages held back by traffic shaping now", METRIC_GAUGE, {NULL}, NULL, 0};
const metric_def METRIC_SHAPING_DESTS = {"sluice_shaping_destinations",
                                         "Destinations traffic shaping remembers, by state (active, halved, suspended)",
                                         METRIC_GAUGE, {"state"}, NULL, 0};
const metric_def METRIC_DANE = {"sluice_dane_total",
                                "DANE (tls_policy_file dane, dane-only) per MX host, by result: verified (a TLSA record "
                                "matched), failed (none matched, or STARTTLS missing), skipped (4.7.5 before connecting)",
                                METRIC_COUNTER, {"result"}, NULL, 0};
const metric_def METRIC_BUILD_INFO = {"sluice_build_info", "Always 1; the version in a label", METRIC_GAUGE,
                                      {"version"}, NULL, 0};

void metrics_declare_all(void)
{
    const metric_def *all[] = {&METRIC_BUILD_INFO,      &METRIC_SESSIONS,       &METRIC_MESSAGES_RECEIVED,
                               &METRIC_RCPTS_RECEIVED,  &METRIC_REJECTS,        &METRIC_DELIVERIES,
                               &METRIC_DSNS,            &METRIC_QUEUE_MESSAGES, &METRIC_QUEUE_OLDEST,
                               &METRIC_COMMIT_BATCHES,  &METRIC_COMMIT_FILES,   &METRIC_FLUSH_SECONDS,
                               &METRIC_PICKUP,          &METRIC_DANE,           &METRIC_SHAPING_REACTIONS,
                               &METRIC_SHAPING_HELD,    &METRIC_SHAPING_WAITING, &METRIC_SHAPING_DESTS};
    for (size_t i = 0; i < SL_ARRAY_LEN(all); i++) {
        family *f = family_get(all[i]);
        if (!label_count(all[i]) && all[i]->type != METRIC_GAUGE) series_get(f, NULL); /* rendered as 0 */
    }
}
