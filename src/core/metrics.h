/*
 * metrics.h - the process's metrics registry, rendered in the Prometheus text exposition format
 * (version 0.0.4) for the daemon's metrics endpoint (cli/metrics_http.c, doc/operations.md).
 *
 * A metric is a family (name, help, type, label names) described by a metric_def; the catalogue
 * of every family Sluice exports is at the end of this file, so that names stay stable and the
 * documentation has one list to follow. A series is one set of label values.
 *  - Counters and histograms are recorded from any thread: a series is found or created under
 *    the family's mutex, its values change with atomic operations (the store's committer threads
 *    record flushes while the loop records sessions).
 *  - Gauges are computed when rendered, by callbacks their owner registers (the scheduler's queue
 *    depth); callbacks run on the thread that renders, which must be the one that may read the
 *    owner's state (the loop). An owner removes its callbacks before it goes away.
 * The registry lives for the process; metrics_reset empties the values (for tests).
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

#define METRIC_MAX_LABELS 3

typedef enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

/* A family: static, never freed. */
typedef struct {
    const char *name;                       /* sluice_..._total for counters */
    const char *help;
    metric_type type;
    const char *labels[METRIC_MAX_LABELS];  /* label names, unused ones NULL */
    const double *buckets;                  /* histograms: upper bounds, ascending (+Inf implied) */
    size_t n_buckets;
} metric_def;

/* metric_add - add n to the counter d{labels=values} (values: one per label name, NULL when none). */
void metric_add(const metric_def *d, const char *const *values, uint64_t n);
/* metric_observe - record v in the histogram d{values}; sums are kept to a millionth of the unit. */
void metric_observe(const metric_def *d, const char *const *values, double v);

/* A gauge callback's output. */
typedef struct metric_emit metric_emit;
/* metric_gauge_cb - emit the family's current series with metric_emit_value. */
typedef void (*metric_gauge_cb)(void *arg, metric_emit *e);
/* metric_emit_value - one series of a gauge being rendered. */
void metric_emit_value(metric_emit *e, const char *const *values, double v);
/* metric_gauge_register - compute gauge d with cb(arg) at each rendering. */
void metric_gauge_register(const metric_def *d, metric_gauge_cb cb, void *arg);
/* metric_gauge_unregister - remove the callbacks registered with arg (any family). */
void metric_gauge_unregister(void *arg);

/* metrics_declare_all - register the catalogue, so that every family is rendered (unlabelled
 * counters as 0) before its first use. Idempotent. */
void metrics_declare_all(void);
/* metrics_render - the exposition text of every family into out (runs the gauge callbacks). */
void metrics_render(strbuf *out);
/* metrics_reset - forget every series and callback (tests). */
void metrics_reset(void);

/* ---- the catalogue (doc/operations.md lists each with its labels) ---- */

extern const metric_def METRIC_SESSIONS;           /* counter {service}: SMTP sessions accepted */
extern const metric_def METRIC_MESSAGES_RECEIVED;  /* counter {channel}: messages queued (250 after DATA/BDAT) */
extern const metric_def METRIC_RCPTS_RECEIVED;     /* counter {channel}: their recipients */
extern const metric_def METRIC_REJECTS;            /* counter {class, code}: refused commands */
extern const metric_def METRIC_DELIVERIES;         /* counter {channel, result}: delivered, deferred, failed */
extern const metric_def METRIC_DSNS;               /* counter {kind}: DSNs queued */
extern const metric_def METRIC_QUEUE_MESSAGES;     /* gauge {channel}: messages queued */
extern const metric_def METRIC_QUEUE_OLDEST;       /* gauge {channel}: age of the oldest, seconds */
extern const metric_def METRIC_COMMIT_BATCHES;     /* counter: group-commit batches */
extern const metric_def METRIC_COMMIT_FILES;       /* counter: files in them */
extern const metric_def METRIC_FLUSH_SECONDS;      /* histogram: time to make one batch durable */
extern const metric_def METRIC_PICKUP;             /* counter {result}: pickup files queued, deferred, failed */
extern const metric_def METRIC_SHAPING_REACTIONS; /* counter {action}: traffic shaping reactions (suspend, halve) */
extern const metric_def METRIC_SHAPING_HELD;      /* counter: messages held back by traffic shaping (each time) */
extern const metric_def METRIC_SHAPING_WAITING;   /* gauge: messages held back now */
extern const metric_def METRIC_SHAPING_DESTS;     /* gauge {state}: shaped destinations (active, halved, suspended) */
extern const metric_def METRIC_DANE;              /* counter {result}: DANE per MX host: verified, failed, skipped */
extern const metric_def METRIC_BUILD_INFO;         /* gauge {version}: 1 */

#endif
