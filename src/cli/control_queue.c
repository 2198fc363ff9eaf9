/*
 * control_queue.c - `sluice queue` words to the scheduler's typed administration and its
 * results to text (see control_queue.h). A command is a row of a table: its name, how many
 * words it takes and its handler. Listings answer at once; actions answer when the scheduler
 * reports their end (act == NULL), one line per message acted on.
 */
#include "cli/control_queue.h"
#include "queue/qadmin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One command in progress. */
typedef struct {
    strbuf out;
    const sl_dir *dir; /* for stats */
    int status;
    size_t acts;         /* messages acted on */
    char *id;            /* the argument, for "no such message" */
    const char *missing; /* what to say when nothing matched */
    control_answer_cb cb;
    void *arg;
} qcmd;

/* qcmd_finish - answer and free q. */
static void qcmd_finish(qcmd *q)
{
    q->cb(q->arg, q->status, &q->out);
    sb_free(&q->out);
    free(q->id);
    free(q);
}

/* qcmd_act - one line per message acted on; at the end (act NULL) the answer goes out. */
static void qcmd_act(void *arg, const sched_act *a)
{
    qcmd *q = arg;
    if (!a) {
        if (!q->acts) {
            sb_printf(&q->out, "%s: %s\n", q->id, q->missing);
            q->status = 1;
        }
        qcmd_finish(q);
        return;
    }
    q->acts++;
    if (a->status == SCHED_ACT_DONE) {
        sb_printf(&q->out, "%s %s: %s\n", a->id, a->channel, a->action);
        return;
    }
    q->status = 1;
    if (a->status == SCHED_ACT_BUSY) sb_printf(&q->out, "%s %s: busy (%s), try again\n", a->id, a->channel, a->state);
    else sb_printf(&q->out, "%s %s: %s failed: %s\n", a->id, a->channel, a->action, strerror(a->err));
}

/* list_line - one `queue list` line. */
static void list_line(void *arg, const sched_entry *e)
{
    qadmin_list_line(e->msg, e->state, arg);
}

/* show_block - one `queue show` block. */
static void show_block(void *arg, const sched_entry *e)
{
    qadmin_show(e->msg, e->path, e->state, arg);
}

/* cmd_list - list [CHANNEL]. */
static void cmd_list(sched *s, qcmd *q, int argc, char **argv)
{
    sched_list(s, argc > 1 ? argv[1] : NULL, list_line, &q->out);
    qcmd_finish(q);
}

/* cmd_show - show ID. */
static void cmd_show(sched *s, qcmd *q, int argc, char **argv)
{
    (void)argc;
    if (!sched_show(s, argv[1], show_block, &q->out)) {
        sb_printf(&q->out, "%s: no such message\n", argv[1]);
        q->status = 1;
    }
    qcmd_finish(q);
}

/* cmd_summary - the table per channel and host. */
static void cmd_summary(sched *s, qcmd *q, int argc, char **argv)
{
    (void)argc, (void)argv;
    qadmin_summary sum = {0};
    sched_summary(s, &sum);
    qadmin_summary_print(&sum, now_unix(), &q->out);
    qcmd_finish(q);
}

/* stats_print - the "queue stats" text. */
static void stats_print(const sched_counters *c, strbuf *out)
{
    sb_printf(out, "messages: %zu\n", c->messages);
    sb_printf(out, "recovery: %s", c->recovering ? "running" : "done");
    if (!c->recovering) sb_printf(out, " (%zu messages in %.3f s)", c->recovered, c->recover_secs);
    sb_printf(out, "\nbodies in memory: %" PRIu64 " bytes (queue_cache_size %" PRIu64 ")\n", c->body_bytes,
              c->cache_size);
    sb_printf(out, "largest channel heap: %zu\n", c->heap_max);
    sb_printf(out, "heap operations: %" PRIu64 " (%.0f ns each)\n", c->heap_ops,
              c->heap_ops ? (double)c->heap_ns / (double)c->heap_ops : 0.0);
    sb_printf(out, "decisions: %" PRIu64 " (%.0f ns each)\n", c->decisions,
              c->decisions ? (double)c->decide_ns / (double)c->decisions : 0.0);
}

/* cmd_stats - the scheduler's figures. */
static void cmd_stats(sched *s, qcmd *q, int argc, char **argv)
{
    (void)argc, (void)argv;
    sched_counters c;
    sched_stats(s, &c);
    stats_print(&c, &q->out);
    if (q->dir) dir_counters(q->dir, &q->out);
    qcmd_finish(q);
}

/* cmd_hold - hold ID. */
static void cmd_hold(sched *s, qcmd *q, int argc, char **argv)
{
    (void)argc;
    sched_hold(s, argv[1], qcmd_act, q);
}

/* cmd_release - release ID. */
static void cmd_release(sched *s, qcmd *q, int argc, char **argv)
{
    (void)argc;
    q->missing = "no such held message";
    sched_release(s, argv[1], qcmd_act, q);
}

/* cmd_delete - delete ID. */
static void cmd_delete(sched *s, qcmd *q, int argc, char **argv)
{
    (void)argc;
    sched_delete(s, argv[1], qcmd_act, q);
}

/* cmd_return - return ID. */
static void cmd_return(sched *s, qcmd *q, int argc, char **argv)
{
    (void)argc;
    sched_return(s, argv[1], qcmd_act, q);
}

/* cmd_retry - retry ID|CHANNEL. */
static void cmd_retry(sched *s, qcmd *q, int argc, char **argv)
{
    (void)argc;
    sched_retry(s, argv[1], qcmd_act, q);
}

/* The commands: name, the number of words (the name included) and the handler. */
static const struct {
    const char *name;
    int min_words, max_words;
    void (*run)(sched *s, qcmd *q, int argc, char **argv);
} commands[] = {
    {"list", 1, 2, cmd_list},       {"summary", 1, 1, cmd_summary}, {"stats", 1, 1, cmd_stats},
    {"release", 2, 2, cmd_release}, {"show", 2, 2, cmd_show},       {"hold", 2, 2, cmd_hold},
    {"delete", 2, 2, cmd_delete},   {"return", 2, 2, cmd_return},   {"retry", 2, 2, cmd_retry},
};

/* cmd_usage - an unknown command or the wrong number of words. */
static void cmd_usage(qcmd *q)
{
    sb_printf(&q->out, "usage: queue list [CHANNEL] | show ID | hold ID | release ID | delete ID | return ID | "
                       "retry ID|CHANNEL | summary | stats\n");
    q->status = 2;
    qcmd_finish(q);
}

void control_queue_run(sched *s, const sl_dir *dir, int argc, char **argv, control_answer_cb cb, void *arg)
{
    qcmd *q = xcalloc(1, sizeof *q);
    q->dir = dir;
    q->cb = cb;
    q->arg = arg;
    q->missing = "no such message";
    q->id = xstrdup(argc > 1 ? argv[1] : "");
    for (size_t i = 0; argc > 0 && i < SL_ARRAY_LEN(commands); i++) {
        if (strcmp(argv[0], commands[i].name) != 0) continue;
        if (argc < commands[i].min_words || argc > commands[i].max_words) break;
        commands[i].run(s, q, argc, argv);
        return;
    }
    cmd_usage(q);
}
