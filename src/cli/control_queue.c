/*
 * control_queue.c - `sluice queue` words to the scheduler's typed administration and its
 * results to text or JSON (see control_queue.h). The words are parsed as the offline tool parses
 * them (qadmin_req_parse); listings answer at once from the scheduler's messages and the held
 * and returning files; actions answer when the scheduler reports their end (act == NULL), one
 * report entry per message acted on.
 */
#include "cli/control_queue.h"
#include "core/json.h"
#include "dir/dir.h"
#include "queue/qadmin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One command in progress. */
typedef struct {
    strbuf out;
    int status;
    qadmin_req req;
    strvec words;        /* the words the request points into */
    qadmin_acts acts;
    int64_t now;
    const char *missing; /* what to say when nothing matched an ID */
    control_answer_cb cb;
    void *arg;
} qcmd;

/* qcmd_finish - answer and free q. */
static void qcmd_finish(qcmd *q)
{
    q->cb(q->arg, q->status, &q->out);
    sb_free(&q->out);
    sv_free(&q->words);
    free(q);
}

/* qcmd_act - one report entry per message acted on; at the end (act NULL) the answer goes out. */
static void qcmd_act(void *arg, const sched_act *a)
{
    qcmd *q = arg;
    if (!a) {
        qadmin_acts_end(&q->acts);
        if (!q->acts.n && q->req.arg) {
            if (!q->req.json) sb_printf(&q->out, "%s: %s\n", q->req.arg, q->missing);
            q->status = 1;
        }
        qcmd_finish(q);
        return;
    }
    if (a->status == SCHED_ACT_DONE) {
        qadmin_act_report(&q->acts, a->id, a->channel, a->action, "done", NULL);
        return;
    }
    q->status = 1;
    if (a->status == SCHED_ACT_BUSY) qadmin_act_report(&q->acts, a->id, a->channel, a->action, "busy", a->state);
    else qadmin_act_report(&q->acts, a->id, a->channel, a->action, "failed", strerror(a->err));
}

/* ---- listings ---- */

/* The messages of a listing: the scheduler's, then the held and returning files. */
typedef struct {
    qadmin_ent *v;
    size_t n, cap;
    qadmin_files held, returning;
} ent_set;

/* ent_add - one scheduler message (borrowed: the set is used before the loop turns). */
static void ent_add(void *arg, const sched_entry *e)
{
    ent_set *set = arg;
    if (set->n == set->cap) set->v = xrealloc(set->v, (set->cap = set->cap ? set->cap * 2 : 64) * sizeof *set->v);
    set->v[set->n++] = (qadmin_ent){e->msg, e->path, e->state, e->reply, e->reply_at};
}

/* ent_files - append the entries of f, with the replies the scheduler keeps for them. */
static void ent_files(sched *s, ent_set *set, const qadmin_files *f)
{
    for (size_t i = 0; i < f->n; i++) {
        const qmsg *m = f->ents[i].msg;
        sched_entry se = {m, f->ents[i].path, f->ents[i].state, NULL, 0};
        se.reply = sched_reply_of(s, m->channel, m->id, &se.reply_at);
        ent_add(set, &se);
    }
}

/* ent_load - every message the tools may list (the files are read on the loop: they are few). */
static void ent_load(sched *s, const char *qdir, ent_set *set)
{
    memset(set, 0, sizeof *set);
    sched_list(s, NULL, ent_add, set);
    qadmin_files_load(qdir, ".held", "held", &set->held);
    qadmin_files_load(qdir, ".return", "returning", &set->returning);
    ent_files(s, set, &set->held);
    ent_files(s, set, &set->returning);
}

static void ent_free(ent_set *set)
{
    qadmin_files_free(&set->held);
    qadmin_files_free(&set->returning);
    free(set->v);
}

/* cmd_listing - list, show, summary. */
static void cmd_listing(sched *s, const char *qdir, qcmd *q)
{
    ent_set set;
    ent_load(s, qdir, &set);
    const qadmin_req *r = &q->req;
    if (!strcmp(r->cmd, "list")) {
        qadmin_list(r, set.v, set.n, q->now, &q->out);
    } else if (!strcmp(r->cmd, "show")) {
        if (!qadmin_show_ents(r, set.v, set.n, q->now, &q->out)) {
            if (!r->json) sb_printf(&q->out, "%s: no such message\n", r->arg);
            q->status = 1;
        }
    } else if (r->json) {
        qadmin_summary_json(r, set.v, set.n, q->now, &q->out);
    } else {
        qadmin_summary_ents(r, set.v, set.n, q->now, &q->out);
    }
    ent_free(&set);
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

/* ---- traffic shaping ---- */

/* The destinations of `queue shaping`, as text or a JSON array. */
typedef struct {
    strbuf *out;
    bool json;
    size_t n;
} shaping_out;

/* limit_text - a limit for the text table: the number, or "-" for none. */
static const char *limit_text(unsigned v, char *buf, size_t len)
{
    if (!v) return "-";
    snprintf(buf, len, "%u", v);
    return buf;
}

/* shaping_line - one destination. */
static void shaping_line(void *arg, const sched_shaping *d)
{
    shaping_out *o = arg;
    if (o->json) {
        sb_puts(o->out, o->n++ ? ",\n {" : "[\n {");
        json_put_member(o->out, true, "dest", d->dest);
        json_put_member(o->out, false, "entry", d->entry);
        json_put_member(o->out, false, "state", d->state);
        json_put_time(o->out, false, "until", d->until);
        json_put_int(o->out, false, "rate", d->rate);
        json_put_int(o->out, false, "per_hour", d->per_hour);
        json_put_int(o->out, false, "halvings", d->halvings);
        json_put_int(o->out, false, "connections", d->connections);
        json_put_int(o->out, false, "max_connections", d->max_connections);
        json_put_int(o->out, false, "per_connection", d->per_connection);
        json_put_int(o->out, false, "last_hour", d->last_hour);
        json_put_int(o->out, false, "waiting", (int64_t)d->waiting);
        sb_putc(o->out, '}');
        return;
    }
    if (!o->n++)
        sb_printf(o->out, "%-32s %-10s %-20s %8s %11s %9s %7s  %s\n", "destination", "state", "until", "rate/h",
                  "connections", "last hour", "waiting", "entry");
    char until[32] = "-", rate[16], conns[32], max[16];
    if (d->until) {
        time_t t = (time_t)d->until;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    snprintf(conns, sizeof conns, "%d/%s", d->connections, limit_text(d->max_connections, max, sizeof max));
    sb_printf(o->out, "%-32s %-10s %-20s %8s %11s %9u %7zu  %s\n", d->dest, d->state, until,
              limit_text(d->rate, rate, sizeof rate), conns, d->last_hour, d->waiting, d->entry ? d->entry : "-");
}

/* cmd_shaping - `queue shaping`: the destinations traffic shaping remembers. */
static void cmd_shaping(sched *s, qcmd *q)
{
    shaping_out o = {&q->out, q->req.json, 0};
    sched_shaping_list(s, shaping_line, &o);
    if (o.json) sb_puts(&q->out, o.n ? "\n]\n" : "[]\n");
    else if (!o.n) sb_puts(&q->out, "no shaped destinations\n");
    qcmd_finish(q);
}

/* ---- actions ---- */

/* selected - the scheduler's match callback: the request's selection. */
static bool selected(void *arg, const qmsg *m, const char *reply)
{
    qcmd *q = arg;
    return qadmin_sel_match(&q->req.sel, m, reply, q->now);
}

/* cmd_action - hold, release, delete, return, retry: on the ID (retry: or the channel), or on the selection. */
static void cmd_action(sched *s, qcmd *q)
{
    const qadmin_req *r = &q->req;
    q->acts = (qadmin_acts){&q->out, r->json, 0};
    if (!r->arg) {
        if (!strcmp(r->cmd, "release")) sched_release_select(s, selected, q, qcmd_act, q);
        else sched_act_select(s, r->cmd, selected, q, qcmd_act, q);
        return;
    }
    if (!strcmp(r->cmd, "hold")) sched_hold(s, r->arg, qcmd_act, q);
    else if (!strcmp(r->cmd, "release")) sched_release(s, r->arg, qcmd_act, q);
    else if (!strcmp(r->cmd, "delete")) sched_delete(s, r->arg, qcmd_act, q);
    else if (!strcmp(r->cmd, "return")) sched_return(s, r->arg, qcmd_act, q);
    else sched_retry(s, r->arg, qcmd_act, q);
}

void control_queue_run(sched *s, const sl_dir *dir, const char *qdir, int argc, char **argv, control_answer_cb cb,
                       void *arg)
{
    qcmd *q = xcalloc(1, sizeof *q);
    q->cb = cb;
    q->arg = arg;
    q->now = now_unix();
    for (int i = 0; i < argc; i++) sv_push(&q->words, argv[i]); /* argv may go when this returns */
    strbuf err = {0};
    if (qadmin_req_parse((int)q->words.n, q->words.v, &q->req, &err) != 0) {
        sb_printf(&q->out, "sluice queue: %s%s", err.data ? err.data : "", qadmin_usage());
        sb_free(&err);
        q->status = 2;
        qcmd_finish(q);
        return;
    }
    q->missing = !strcmp(q->req.cmd, "release") ? "no such held message" : "no such message";
    if (qadmin_req_is_action(&q->req)) {
        cmd_action(s, q);
    } else if (!strcmp(q->req.cmd, "shaping")) {
        cmd_shaping(s, q);
    } else if (!strcmp(q->req.cmd, "stats")) {
        sched_counters c;
        sched_stats(s, &c);
        stats_print(&c, &q->out);
        if (dir) dir_counters(dir, &q->out);
        qcmd_finish(q);
    } else {
        cmd_listing(s, qdir, q);
    }
}
