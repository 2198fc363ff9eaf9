/*
 * qadmin.c - queue administration formats and offline file operations (see qadmin.h).
 */
#include "queue/qadmin.h"
#include "queue/qwalk.h"
#include "queue/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *status_name(uint8_t st)
{
    static const char *names[] = {"pending", "delivered", "failed", "relayed"};
    return st < 4 ? names[st] : "?";
}

static size_t pending_count(const qmsg *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_rcpts; i++) n += m->rcpts[i].status == QR_PENDING;
    return n;
}

static int64_t next_attempt(const qmsg *m)
{
    int64_t next = -1;
    for (size_t i = 0; i < m->n_rcpts; i++)
        if (m->rcpts[i].status == QR_PENDING && (next < 0 || m->rcpts[i].next_attempt < next))
            next = m->rcpts[i].next_attempt;
    return next;
}

static void fmt_time(int64_t t, char *buf, size_t len)
{
    if (t <= 0) {
        snprintf(buf, len, "now");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void qadmin_list_line(const qmsg *m, const char *state, strbuf *out)
{
    char arr[32], nxt[32];
    fmt_time(m->arrival, arr, sizeof arr);
    fmt_time(next_attempt(m), nxt, sizeof nxt);
    sb_printf(out, "%s %s %s size=%zu from=<%s> rcpts=%zu pending=%zu arrived=%s next=%s\n", m->id, m->channel, state,
              m->data_len, m->sender, m->n_rcpts, pending_count(m), arr, nxt);
}

void qadmin_show(const qmsg *m, const char *path, const char *state, strbuf *out)
{
    char arr[32];
    fmt_time(m->arrival, arr, sizeof arr);
    sb_printf(out, "id: %s\nchannel: %s\nstate: %s\npath: %s\nsource-channel: %s\nsender: <%s>\n", m->id, m->channel,
              state, path ? path : "", m->src_channel ? m->src_channel : "", m->sender);
    sb_printf(out, "arrived: %s\nsize: %zu\nenvid: %s\nret: %s\nnotification: %s\nclient: %s\n", arr, m->data_len,
              m->envid ? m->envid : "", m->ret == 1 ? "FULL" : m->ret == 2 ? "HDRS" : "-",
              m->is_notification ? "yes" : "no", m->client ? m->client : "");
    for (size_t i = 0; i < m->n_rcpts; i++) {
        const qrcpt *r = &m->rcpts[i];
        char nxt[32];
        fmt_time(r->next_attempt, nxt, sizeof nxt);
        sb_printf(out, "rcpt: <%s> orig=<%s> host=%s status=%s attempts=%u next=%s notices_sent=%u\n", r->addr,
                  r->orig ? r->orig : "", r->host ? r->host : "", status_name(r->status), r->attempts, nxt,
                  r->notices_sent);
    }
}

void qadmin_summary_add(qadmin_summary *sum, const qmsg *m)
{
    strvec seen = {0};
    for (size_t i = 0; i < m->n_rcpts; i++) {
        const qrcpt *r = &m->rcpts[i];
        const char *host = r->host ? r->host : "";
        if (r->status != QR_PENDING || sv_contains_ci(&seen, host)) continue;
        sv_push(&seen, host);
        qadmin_sum_row *row = NULL;
        for (size_t k = 0; k < sum->n && !row; k++)
            if (str_ieq(sum->rows[k].channel, m->channel) && str_ieq(sum->rows[k].host, host)) row = &sum->rows[k];
        if (!row) {
            sum->rows = xrealloc(sum->rows, (sum->n + 1) * sizeof *sum->rows);
            row = &sum->rows[sum->n++];
            row->channel = xstrdup(m->channel);
            row->host = xstrdup(host);
            row->count = 0;
            row->oldest = m->arrival;
            row->next = r->next_attempt;
        }
        row->count++;
        if (m->arrival < row->oldest) row->oldest = m->arrival;
        if (r->next_attempt < row->next) row->next = r->next_attempt;
    }
    sv_free(&seen);
}

void qadmin_summary_print(qadmin_summary *sum, int64_t now, strbuf *out)
{
    sb_printf(out, "%-20s %-32s %8s %12s %12s\n", "channel", "destination", "messages", "oldest_age_s", "next_in_s");
    size_t total = 0;
    for (size_t i = 0; i < sum->n; i++) {
        qadmin_sum_row *r = &sum->rows[i];
        int64_t next = r->next - now;
        sb_printf(out, "%-20s %-32s %8zu %12lld %12lld\n", r->channel, r->host[0] ? r->host : "-", r->count,
                  (long long)(now - r->oldest), (long long)(next > 0 ? next : 0));
        total += r->count;
        free(r->channel);
        free(r->host);
    }
    sb_printf(out, "total %zu\n", total);
    free(sum->rows);
    sum->rows = NULL;
    sum->n = 0;
}

char *qadmin_held_path(const char *qdir, const char *channel, const char *id)
{
    return xasprintf("%s/.held/%s.%s", qdir, channel, id);
}

char *qadmin_return_path(const char *qdir, const char *channel, const char *id)
{
    return xasprintf("%s/.return/%s.%s", qdir, channel, id);
}

/* ---- last remote replies ---- */

struct qadmin_reply_rec {
    char *channel, *id, *reply;
    int64_t at;
};

static char *replies_path(const char *qdir)
{
    return xasprintf("%s/replies", qdir);
}

static int rec_cmp(const void *a, const void *b)
{
    const qadmin_reply_rec *x = a, *y = b;
    int c = strcmp(x->channel, y->channel);
    return c ? c : strcmp(x->id, y->id);
}

/* replies_parse_line - "CHANNEL ID AT REPLY" into r; false when malformed. */
static bool replies_parse_line(char *line, qadmin_reply_rec *r)
{
    char *f[3];
    for (int i = 0; i < 3; i++) {
        f[i] = line;
        char *sp = strchr(line, ' ');
        if (!sp) return false;
        *sp = '\0';
        line = sp + 1;
    }
    uint64_t at;
    if (parse_uint(f[2], 0, INT64_MAX, &at) != 0) return false;
    *r = (qadmin_reply_rec){xstrdup(f[0]), xstrdup(f[1]), xstrdup(line), (int64_t)at};
    return true;
}

void qadmin_replies_load(const char *qdir, qadmin_replies *r)
{
    memset(r, 0, sizeof *r);
    char *path = replies_path(qdir);
    char *text = file_read_text(path);
    free(path);
    if (!text) return;
    size_t cap = 0;
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) break;
        *nl = '\0';
        qadmin_reply_rec rec;
        if (!replies_parse_line(line, &rec)) continue;
        if (r->n == cap) r->v = xrealloc(r->v, (cap = cap ? cap * 2 : 64) * sizeof *r->v);
        r->v[r->n++] = rec;
    }
    free(text);
    if (r->n) qsort(r->v, r->n, sizeof *r->v, rec_cmp);
}

const char *qadmin_replies_find(const qadmin_replies *r, const char *channel, const char *id, int64_t *at)
{
    qadmin_reply_rec key = {(char *)channel, (char *)id, NULL, 0};
    const qadmin_reply_rec *hit = r->n ? bsearch(&key, r->v, r->n, sizeof *r->v, rec_cmp) : NULL;
    if (at) *at = hit ? hit->at : 0;
    return hit ? hit->reply : NULL;
}

/* rec_index - where channel/id is or would go in r; *found whether it is there. */
static size_t rec_index(const qadmin_replies *r, const char *channel, const char *id, bool *found)
{
    qadmin_reply_rec key = {(char *)channel, (char *)id, NULL, 0};
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = rec_cmp(&r->v[mid], &key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = false;
    return lo;
}

void qadmin_replies_put(qadmin_replies *r, const char *channel, const char *id, int64_t at, const char *reply)
{
    bool found;
    size_t i = rec_index(r, channel, id, &found);
    if (found) {
        free(r->v[i].reply);
        r->v[i].reply = xstrdup(reply);
        r->v[i].at = at;
        return;
    }
    r->v = xrealloc(r->v, (r->n + 1) * sizeof *r->v);
    memmove(&r->v[i + 1], &r->v[i], (r->n - i) * sizeof *r->v);
    r->v[i] = (qadmin_reply_rec){xstrdup(channel), xstrdup(id), xstrdup(reply), at};
    r->n++;
}

/* rec_drop - remove entry i (its strings freed unless taken). */
static void rec_drop(qadmin_replies *r, size_t i)
{
    free(r->v[i].channel);
    free(r->v[i].id);
    free(r->v[i].reply);
    memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof *r->v);
    r->n--;
}

char *qadmin_replies_take(qadmin_replies *r, const char *channel, const char *id, int64_t *at)
{
    bool found;
    size_t i = r->n ? rec_index(r, channel, id, &found) : 0;
    if (!r->n || !found) return NULL;
    char *reply = r->v[i].reply;
    if (at) *at = r->v[i].at;
    r->v[i].reply = NULL;
    rec_drop(r, i);
    return reply;
}

void qadmin_replies_keep(qadmin_replies *r, bool (*keep)(void *arg, const char *channel, const char *id), void *arg)
{
    for (size_t i = r->n; i-- > 0;)
        if (!keep(arg, r->v[i].channel, r->v[i].id)) rec_drop(r, i);
}

void qadmin_replies_each(const qadmin_replies *r, void (*fn)(void *arg, const char *channel, const char *id,
                                                              int64_t at, const char *reply), void *arg)
{
    for (size_t i = 0; i < r->n; i++) fn(arg, r->v[i].channel, r->v[i].id, r->v[i].at, r->v[i].reply);
}

void qadmin_replies_free(qadmin_replies *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].channel);
        free(r->v[i].id);
        free(r->v[i].reply);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

void qadmin_replies_line(strbuf *text, const char *channel, const char *id, int64_t at, const char *reply)
{
    size_t start = text->len;
    sb_printf(text, "%s %s %lld %s", channel, id, (long long)at, reply);
    for (size_t i = start; i < text->len; i++) /* one line per message, whatever the peer said */
        if ((unsigned char)text->data[i] < 0x20) text->data[i] = '?';
    sb_putc(text, '\n');
}

int qadmin_replies_save(const char *qdir, const strbuf *text)
{
    char *path = replies_path(qdir), *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd >= 0 && (text->len == 0 || write(fd, text->data, text->len) == (ssize_t)text->len) ? 0 : -1;
    if (fd >= 0 && close(fd) < 0) rc = -1;
    if (rc == 0 && rename(tmp, path) < 0) rc = -1;
    if (rc < 0) unlink(tmp);
    free(tmp);
    free(path);
    return rc;
}

/* ---- files outside the scheduler ---- */

/* files_add - decode the file at path as one more entry of f (nothing when it cannot be read). */
static void files_add(qadmin_files *f, const char *path, const char *state)
{
    strbuf sb = {0};
    char err[256];
    qmsg m;
    memset(&m, 0, sizeof m);
    if (file_read(path, &sb) == 0 && qfile_decode(sb.data ? sb.data : "", sb.len, &m, err, sizeof err) == 0) {
        f->msgs = xrealloc(f->msgs, (f->n + 1) * sizeof *f->msgs);
        f->paths = xrealloc(f->paths, (f->n + 1) * sizeof *f->paths);
        f->msgs[f->n] = m;
        f->paths[f->n] = xstrdup(path);
        f->ents = xrealloc(f->ents, (f->n + 1) * sizeof *f->ents);
        f->ents[f->n] = (qadmin_ent){NULL, NULL, state, NULL, 0};
        f->n++;
    }
    sb_free(&sb);
}

/* files_fix - point each entry at its message and path (the arrays have stopped moving). */
static void files_fix(qadmin_files *f)
{
    for (size_t i = 0; i < f->n; i++) {
        f->ents[i].msg = &f->msgs[i];
        f->ents[i].path = f->paths[i];
    }
}

void qadmin_files_load(const char *qdir, const char *sub, const char *state, qadmin_files *f)
{
    char *d = xasprintf("%s/%s", qdir, sub);
    strvec names = {0};
    qwalk_list(d, &names);
    for (size_t k = 0; k < names.n; k++) {
        char *p = xasprintf("%s/%s", d, names.v[k]);
        files_add(f, p, state);
        free(p);
    }
    files_fix(f);
    sv_free(&names);
    free(d);
}

void qadmin_files_free(qadmin_files *f)
{
    for (size_t i = 0; i < f->n; i++) {
        qmsg_free(&f->msgs[i]);
        free(f->paths[i]);
    }
    free(f->msgs);
    free(f->paths);
    free(f->ents);
    memset(f, 0, sizeof *f);
}

/* ---- offline ---- */

/* files_add_queued - one file of the walk over the channels. */
static bool files_add_queued(void *ctx, const char *channel, const char *name, const char *path)
{
    (void)channel, (void)name;
    files_add(ctx, path, "queued");
    return true;
}

/* offline_load - every queue file: QUEUE/<channel>/<NNN>/<id>, .held and .return, with the saved replies. */
static void offline_load(const char *qdir, qadmin_files *f, qadmin_replies *rep)
{
    qwalk_tree(qdir, files_add_queued, f);
    qadmin_files_load(qdir, ".held", "held", f);
    qadmin_files_load(qdir, ".return", "returning", f);
    qadmin_replies_load(qdir, rep);
    for (size_t i = 0; i < f->n; i++)
        f->ents[i].reply = qadmin_replies_find(rep, f->msgs[i].channel, f->msgs[i].id, &f->ents[i].reply_at);
}

static int mkdir_in(const char *qdir, const char *sub)
{
    char *d = xasprintf("%s/%s", qdir, sub);
    int rc = mkdir(d, 0700) < 0 && errno != EEXIST ? -1 : 0;
    free(d);
    return rc;
}

/* move_file - rename and fsync the destination directory. */
static int move_file(const char *from, const char *to)
{
    if (rename(from, to) < 0) return -1;
    char *dir = xstrdup(to);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    if (fd >= 0) close(fd);
    free(dir);
    return rc;
}

/* retry_now - make every pending recipient due now, in place. */
static int retry_now(const qadmin_ent *e)
{
    qmsg *m = (qmsg *)e->msg; /* the offline tool owns its copies */
    int fd = open(e->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    uint8_t buf[64];
    int rc = 0;
    for (size_t i = 0; i < m->n_rcpts && rc == 0; i++) {
        qrcpt *r = &m->rcpts[i];
        if (r->status != QR_PENDING) continue;
        r->next_attempt = 0;
        qfile_state_pack(r, buf);
        if (pwrite(fd, buf, qfile_state_size(), r->state_off) != (ssize_t)qfile_state_size()) rc = -1;
    }
    if (rc == 0 && fdatasync(fd) < 0) rc = -1;
    if (close(fd) < 0) rc = -1;
    return rc;
}

/* release_to_queue - move a held file back into its channel's queue directory. */
static int release_to_queue(const sl_conf *conf, const qadmin_ent *e)
{
    const qmsg *m = e->msg;
    const sl_channel *ch = conf_channel_by_name(conf, m->channel);
    char *to = store_queue_path(conf->opt.queue_dir, m->channel, ch && ch->subdirs ? ch->subdirs : 1, m->id);
    char *dir = xstrdup(to);
    *strrchr(dir, '/') = '\0';
    char *chdir_ = xstrdup(dir);
    *strrchr(chdir_, '/') = '\0';
    mkdir(chdir_, 0700);
    mkdir(dir, 0700);
    int rc = move_file(e->path, to);
    free(chdir_);
    free(dir);
    free(to);
    return rc;
}

/* offline_file_op - the file operation of cmd on e; -1 with errno set on failure. */
static int offline_file_op(const sl_conf *conf, const char *cmd, const qadmin_ent *e)
{
    const char *qdir = conf->opt.queue_dir;
    const qmsg *m = e->msg;
    int rc = 0;
    if (!strcmp(cmd, "hold") || !strcmp(cmd, "return")) {
        bool hold = !strcmp(cmd, "hold");
        char *to = hold ? qadmin_held_path(qdir, m->channel, m->id) : qadmin_return_path(qdir, m->channel, m->id);
        rc = mkdir_in(qdir, hold ? ".held" : ".return") || move_file(e->path, to);
        free(to);
    } else if (!strcmp(cmd, "release")) {
        rc = release_to_queue(conf, e);
    } else if (!strcmp(cmd, "delete")) {
        rc = unlink(e->path);
    } else if (!strcmp(cmd, "retry")) {
        rc = retry_now(e);
    }
    return rc ? -1 : 0;
}

/* offline_state_ok - whether cmd applies to e's state; else the reason. */
static const char *offline_state_ok(const char *cmd, const qadmin_ent *e)
{
    if (!strcmp(cmd, "hold") && strcmp(e->state, "queued")) return "not queued";
    if (!strcmp(cmd, "release") && strcmp(e->state, "held")) return "not held";
    if (!strcmp(cmd, "retry") && strcmp(e->state, "queued")) return "not queued";
    return NULL;
}

/* offline_act - cmd on one entry, reported; 0 or 1 (failed). */
static int offline_act(const sl_conf *conf, const char *cmd, const qadmin_ent *e, qadmin_acts *acts)
{
    const qmsg *m = e->msg;
    const char *wrong = offline_state_ok(cmd, e);
    if (wrong) {
        qadmin_act_report(acts, m->id, m->channel, cmd, "failed", wrong);
        return 1;
    }
    if (offline_file_op(conf, cmd, e) < 0) {
        qadmin_act_report(acts, m->id, m->channel, cmd, "failed", strerror(errno));
        return 1;
    }
    qadmin_act_report(acts, m->id, m->channel, cmd, "done",
                      !strcmp(cmd, "return") ? "the bounce is sent when the daemon starts" : NULL);
    return 0;
}

/* offline_actions - an action on the message ID (retry: or the channel) or on the selection. */
static int offline_actions(const sl_conf *conf, const qadmin_req *req, const qadmin_files *f, int64_t now,
                           strbuf *out)
{
    qadmin_acts acts = {out, req->json, 0};
    int rc = 0;
    size_t found = 0;
    for (size_t i = 0; i < f->n; i++) {
        const qadmin_ent *e = &f->ents[i];
        bool match = req->arg ? !strcmp(e->msg->id, req->arg) ||
                                    (!strcmp(req->cmd, "retry") && str_ieq(e->msg->channel, req->arg))
                              : qadmin_sel_match(&req->sel, e->msg, e->reply, now) && !offline_state_ok(req->cmd, e);
        if (!match) continue;
        found++;
        rc |= offline_act(conf, req->cmd, e, &acts);
    }
    qadmin_acts_end(&acts);
    if (req->arg && !found) {
        if (!req->json) sb_printf(out, "%s: no such message\n", req->arg);
        rc = 1;
    }
    return rc;
}

/* offline_run - the parsed request on the loaded files. */
static int offline_run(const sl_conf *conf, const qadmin_req *req, const qadmin_files *f, strbuf *out)
{
    int64_t now = now_unix();
    if (!strcmp(req->cmd, "list")) {
        qadmin_list(req, f->ents, f->n, now, out);
    } else if (!strcmp(req->cmd, "show")) {
        if (qadmin_show_ents(req, f->ents, f->n, now, out)) return 0;
        if (!req->json) sb_printf(out, "%s: no such message\n", req->arg);
        return 1;
    } else if (!strcmp(req->cmd, "summary")) {
        if (req->json) qadmin_summary_json(req, f->ents, f->n, now, out);
        else qadmin_summary_ents(req, f->ents, f->n, now, out);
    } else if (!strcmp(req->cmd, "stats")) {
        sb_printf(out, "stats: the daemon is not running (scheduler statistics come from the live daemon)\n");
        return 1;
    } else if (!strcmp(req->cmd, "shaping")) {
        sb_printf(out, "shaping: the daemon is not running (traffic shaping's state lives in the daemon)\n");
        return 1;
    } else {
        return offline_actions(conf, req, f, now, out);
    }
    return 0;
}

int qadmin_offline(const sl_conf *conf, int argc, char **argv, strbuf *out)
{
    qadmin_req req;
    strbuf err = {0};
    if (qadmin_req_parse(argc, argv, &req, &err) != 0) {
        sb_printf(out, "sluice queue: %s%s", err.data ? err.data : "", qadmin_usage());
        sb_free(&err);
        return 2;
    }
    qadmin_files f = {0};
    qadmin_replies rep;
    offline_load(conf->opt.queue_dir, &f, &rep);
    int rc = offline_run(conf, &req, &f, out);
    qadmin_files_free(&f);
    qadmin_replies_free(&rep);
    return rc;
}
