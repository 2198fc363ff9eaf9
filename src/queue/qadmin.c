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

/* ---- offline ---- */

typedef struct {
    char *path;
    const char *state; /* "queued", "held", "returning" */
    qmsg m;
} qfile_ent;

typedef struct {
    qfile_ent *v;
    size_t n;
} qfile_set;


static void set_add(qfile_set *set, const char *path, const char *state)
{
    strbuf sb = {0};
    char err[256];
    if (file_read(path, &sb) < 0) goto out;
    qmsg m;
    memset(&m, 0, sizeof m);
    if (qfile_decode(sb.data ? sb.data : "", sb.len, &m, err, sizeof err) < 0) goto out;
    set->v = xrealloc(set->v, (set->n + 1) * sizeof *set->v);
    set->v[set->n].path = xstrdup(path);
    set->v[set->n].state = state;
    set->v[set->n].m = m;
    set->n++;
out:
    sb_free(&sb);
}

/* set_add_queued - one file of the walk over the channels. */
static bool set_add_queued(void *ctx, const char *channel, const char *name, const char *path)
{
    (void)channel, (void)name;
    set_add(ctx, path, "queued");
    return true;
}

/* set_load - every queue file: QUEUE/<channel>/<NNN>/<id>, .held and .return. */
static void set_load(const char *qdir, qfile_set *set)
{
    qwalk_tree(qdir, set_add_queued, set);
    static const struct {
        const char *dir, *state;
    } extra[] = {{".held", "held"}, {".return", "returning"}};
    for (size_t x = 0; x < 2; x++) {
        char *d = xasprintf("%s/%s", qdir, extra[x].dir);
        strvec files = {0};
        qwalk_list(d, &files);
        for (size_t k = 0; k < files.n; k++) {
            char *p = xasprintf("%s/%s", d, files.v[k]);
            set_add(set, p, extra[x].state);
            free(p);
        }
        sv_free(&files);
        free(d);
    }
}

static void set_free(qfile_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->v[i].path);
        qmsg_free(&set->v[i].m);
    }
    free(set->v);
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
static int retry_now(qfile_ent *e)
{
    int fd = open(e->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    uint8_t buf[64];
    int rc = 0;
    for (size_t i = 0; i < e->m.n_rcpts && rc == 0; i++) {
        qrcpt *r = &e->m.rcpts[i];
        if (r->status != QR_PENDING) continue;
        r->next_attempt = 0;
        qfile_state_pack(r, buf);
        if (pwrite(fd, buf, qfile_state_size(), r->state_off) != (ssize_t)qfile_state_size()) rc = -1;
    }
    if (rc == 0 && fdatasync(fd) < 0) rc = -1;
    if (close(fd) < 0) rc = -1;
    return rc;
}

static int offline_act(const sl_conf *conf, const char *cmd, qfile_ent *e, strbuf *out)
{
    const char *qdir = conf->opt.queue_dir;
    const qmsg *m = &e->m;
    int rc = 0;
    if (!strcmp(cmd, "hold")) {
        if (strcmp(e->state, "queued")) return sb_printf(out, "%s %s: not queued (%s)\n", m->id, m->channel, e->state), 1;
        char *to = qadmin_held_path(qdir, m->channel, m->id);
        rc = mkdir_in(qdir, ".held") || move_file(e->path, to);
        free(to);
    } else if (!strcmp(cmd, "release")) {
        if (strcmp(e->state, "held")) return sb_printf(out, "%s %s: not held\n", m->id, m->channel), 1;
        const sl_channel *ch = conf_channel_by_name(conf, m->channel);
        char *to = store_queue_path(qdir, m->channel, ch && ch->subdirs ? ch->subdirs : 1, m->id);
        char *dir = xstrdup(to);
        *strrchr(dir, '/') = '\0';
        char *chdir_ = xstrdup(dir);
        *strrchr(chdir_, '/') = '\0';
        mkdir(chdir_, 0700);
        mkdir(dir, 0700);
        rc = move_file(e->path, to);
        free(chdir_);
        free(dir);
        free(to);
    } else if (!strcmp(cmd, "delete")) {
        rc = unlink(e->path);
    } else if (!strcmp(cmd, "return")) {
        char *to = qadmin_return_path(qdir, m->channel, m->id);
        rc = mkdir_in(qdir, ".return") || move_file(e->path, to);
        free(to);
    } else if (!strcmp(cmd, "retry")) {
        rc = retry_now(e);
    }
    if (rc) {
        sb_printf(out, "%s %s: %s failed: %s\n", m->id, m->channel, cmd, strerror(errno));
        return 1;
    }
    sb_printf(out, "%s %s: %s%s\n", m->id, m->channel, cmd,
              !strcmp(cmd, "return") ? " (the bounce is sent when the daemon starts)" : "");
    return 0;
}

int qadmin_offline(const sl_conf *conf, int argc, char **argv, strbuf *out)
{
    if (argc < 1) return 2;
    const char *cmd = argv[0];
    qfile_set set = {0};
    set_load(conf->opt.queue_dir, &set);
    int rc = 0;
    if (!strcmp(cmd, "list")) {
        for (size_t i = 0; i < set.n; i++)
            if (argc < 2 || str_ieq(set.v[i].m.channel, argv[1])) qadmin_list_line(&set.v[i].m, set.v[i].state, out);
    } else if (!strcmp(cmd, "summary")) {
        qadmin_summary sum = {0};
        for (size_t i = 0; i < set.n; i++)
            if (!strcmp(set.v[i].state, "queued")) qadmin_summary_add(&sum, &set.v[i].m);
        qadmin_summary_print(&sum, now_unix(), out);
    } else if (!strcmp(cmd, "stats")) {
        sb_printf(out, "stats: the daemon is not running (scheduler statistics come from the live daemon)\n");
        rc = 1;
    } else if (argc == 2 && (!strcmp(cmd, "show") || !strcmp(cmd, "hold") || !strcmp(cmd, "release") ||
                             !strcmp(cmd, "delete") || !strcmp(cmd, "return") || !strcmp(cmd, "retry"))) {
        size_t found = 0;
        for (size_t i = 0; i < set.n; i++) {
            qfile_ent *e = &set.v[i];
            bool match = !strcmp(e->m.id, argv[1]) || (!strcmp(cmd, "retry") && str_ieq(e->m.channel, argv[1]));
            if (!match) continue;
            found++;
            if (!strcmp(cmd, "show")) qadmin_show(&e->m, e->path, e->state, out);
            else rc |= offline_act(conf, cmd, e, out);
        }
        if (!found) {
            sb_printf(out, "%s: no such message\n", argv[1]);
            rc = 1;
        }
    } else {
        rc = 2;
    }
    set_free(&set);
    return rc;
}
