/*
 * tlsrpt.c - the daemon's TLS-RPT recorder and reporter (see tlsrpt.h).
 *
 * Day files: QUEUE/tlsrpt/YYYY-MM-DD (format in tlsrpt_data.c), each written whole to a
 * temporary file, flushed, renamed into place and the directory flushed, on a worker. Writes
 * carry a generation: a write older than one already done is skipped, so the blocking write at
 * stop (every day, newest) cannot be undone by a worker's older one finishing after it.
 *
 * A report (one day, one policy domain): TXT _smtp._tls.DOMAIN -> exactly one TLSRPTv1 record
 * with its rua -> the JSON report, gzipped -> each rua (mailto: queued, https: POSTed on a
 * worker) -> when at least one took it, the domain is marked sent for that day (its counts are
 * forgotten, the mark is written with the day file). No record: the report is dropped (logged)
 * and the domain marked too. A temporary DNS failure or every rua failing: it stays pending and
 * goes with the next run.
 */
#include "tlsrpt/tlsrpt.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/log.h"
#include "core/workq.h"
#include "dns/dns.h"
#include "queue/enqueue.h"
#include "queue/store.h"
#include "rewrite/rewrite.h"
#include "rewrite/route.h"

#define TLSRPT_DOMAINS 10000   /* policy domains per day */
#define TLSRPT_DETAILS 100     /* failure-detail rows per policy */
#define TLSRPT_DAYS 64         /* days handled at once */
#define TLSRPT_KEEP_DAYS 31    /* day files older than this are removed at start */
#define TLSRPT_TICK 60         /* seconds between writes of the day files */
#define TLSRPT_PARALLEL 16     /* reports in progress at once (TXT lookups, queueing); the rest wait */

typedef struct rep_job rep_job;
typedef struct post_job post_job;

/* A first-in first-out list of pointers. */
typedef struct {
    void **v;
    size_t head, n, cap;
} fifo;

struct tlsrpt {
    sl_ctx *ctx;
    tlsrpt_book *book;
    char *dir;                 /* QUEUE/tlsrpt */
    struct event *tick;
    int64_t next_send;         /* unix time of the next automatic run */
    bool writing;              /* a write job is out */
    bool stopped;
    strvec busy;               /* "DAY DOMAIN" of reports in progress or waiting */
    fifo waiting;              /* rep_jobs not started yet */
    int inflight;              /* rep_jobs started and not finished */
    fifo posts;                /* post_jobs not handed to a worker yet */
    bool posting;              /* one POST at a time: a slow endpoint holds one worker, never all */
    pthread_mutex_t wlock;     /* serialises the writes (worker and stop) */
    uint64_t gen, written_gen; /* generations of the writes (written_gen under wlock) */
};

static tlsrpt *active; /* the daemon's recorder, or NULL (loop thread only) */

/* fifo_push - p at the end of f. */
static void fifo_push(fifo *f, void *p)
{
    if (f->head + f->n == f->cap) {
        if (f->head) { /* slide to the front before growing */
            memmove(f->v, f->v + f->head, f->n * sizeof *f->v);
            f->head = 0;
        }
        if (f->n == f->cap) f->v = xrealloc(f->v, (f->cap = f->cap ? 2 * f->cap : 16) * sizeof *f->v);
    }
    f->v[f->head + f->n++] = p;
}

/* fifo_pop - the first of f, or NULL. */
static void *fifo_pop(fifo *f)
{
    if (!f->n) return NULL;
    f->n--;
    return f->v[f->head++];
}

/* ---- recording ----------------------------------------------------------------------- */

bool tlsrpt_active(void)
{
    return active && !active->stopped;
}

void tlsrpt_record(const tlsrpt_policy *p, const tlsrpt_result *r)
{
    if (!tlsrpt_active()) return;
    tlsrpt_book_add(active->book, now_unix() / 86400, p, r);
}

/* ---- the day files ------------------------------------------------------------------- */

typedef struct {
    tlsrpt *t;
    strvec paths, texts;
    int64_t *days;
    size_t n;
    uint64_t gen;
    int err;          /* errno of the first failure, 0 */
    char *failed;     /* its path */
} write_job;

/* fsync_dir - flush the directory dir; -1 with errno on failure. */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* file_put - text into path atomically (temporary file, flush, rename); -1 with errno. */
static int file_put(const char *path, const char *text)
{
    char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -1 : 0;
    size_t len = strlen(text), off = 0;
    while (rc == 0 && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) rc = -1;
        else off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) < 0) rc = -1;
    int e = errno;
    if (fd >= 0 && close(fd) < 0 && rc == 0) rc = -1, e = errno;
    if (rc == 0 && rename(tmp, path) < 0) rc = -1, e = errno;
    if (rc < 0) unlink(tmp);
    free(tmp);
    errno = e;
    return rc;
}

/* write_run - worker: write the job's files unless a newer write was done already. */
static void write_run(void *arg)
{
    write_job *j = arg;
    pthread_mutex_lock(&j->t->wlock);
    if (j->gen > j->t->written_gen) {
        mkdir(j->t->dir, 0700);
        for (size_t i = 0; i < j->n && !j->err; i++)
            if (file_put(j->paths.v[i], j->texts.v[i]) < 0) j->err = errno, j->failed = xstrdup(j->paths.v[i]);
        if (!j->err && fsync_dir(j->t->dir) < 0) j->err = errno, j->failed = xstrdup(j->t->dir);
        if (!j->err) j->t->written_gen = j->gen;
    }
    pthread_mutex_unlock(&j->t->wlock);
}

/* write_job_free - release j. */
static void write_job_free(write_job *j)
{
    sv_free(&j->paths);
    sv_free(&j->texts);
    free(j->days);
    free(j->failed);
    free(j);
}

/* write_done - loop: a failed write leaves its days to be written again. */
static void write_done(void *arg)
{
    write_job *j = arg;
    tlsrpt *t = j->t;
    t->writing = false;
    if (j->err) {
        log_error(NULL, "tlsrpt_write_error", "path=%s error=\"%s\"", j->failed, strerror(j->err));
        for (size_t i = 0; i < j->n; i++) tlsrpt_book_mark(t->book, j->days[i], true);
    }
    write_job_free(j);
}

/* write_snapshot - a write job for the dirty days (every day when all), marking them clean; NULL when none. */
static write_job *write_snapshot(tlsrpt *t, bool all)
{
    int64_t days[TLSRPT_DAYS];
    size_t n = tlsrpt_book_days(t->book, days, TLSRPT_DAYS);
    write_job *j = xcalloc(1, sizeof *j);
    j->t = t;
    j->days = xcalloc(n ? n : 1, sizeof *j->days);
    for (size_t i = 0; i < n; i++) {
        if (!all && !tlsrpt_book_dirty(t->book, days[i])) continue;
        char name[16];
        tlsrpt_day_name(days[i], name, sizeof name);
        strbuf text;
        sb_init(&text);
        tlsrpt_book_dump(t->book, days[i], &text);
        sv_push_owned(&j->paths, xasprintf("%s/%s", t->dir, name));
        sv_push_owned(&j->texts, sb_steal(&text));
        j->days[j->n++] = days[i];
        tlsrpt_book_mark(t->book, days[i], false);
    }
    if (!j->n) {
        write_job_free(j);
        return NULL;
    }
    j->gen = ++t->gen;
    return j;
}

/* write_dirty - start writing the days that changed (one write at a time). */
static void write_dirty(tlsrpt *t)
{
    if (t->writing || t->stopped) return;
    write_job *j = write_snapshot(t, false);
    if (!j) return;
    t->writing = true;
    workq_submit(t->ctx->wq, write_run, write_done, j);
}

/* load_files - read the day files back (start-up); old ones are removed, damaged ones set aside. */
static void load_files(tlsrpt *t)
{
    DIR *d = opendir(t->dir);
    if (!d) return;
    int64_t today = now_unix() / 86400;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t day = tlsrpt_day_parse(e->d_name);
        if (day < 0) continue;
        char *path = xasprintf("%s/%s", t->dir, e->d_name);
        strbuf text;
        sb_init(&text);
        char err[128];
        if (day < today - TLSRPT_KEEP_DAYS) {
            unlink(path);
            log_info(NULL, "tlsrpt_expired", "day=%s", e->d_name);
        } else if (file_read(path, &text) < 0) {
            log_error(NULL, "tlsrpt_read_error", "path=%s error=\"%s\"", path, strerror(errno));
        } else if (tlsrpt_book_load(t->book, text.data ? text.data : "", text.len, err, sizeof err) < 0) {
            char *bad = xasprintf("%s.corrupt", path);
            rename(path, bad);
            log_error(NULL, "tlsrpt_corrupt", "path=%s error=\"%s\" moved=%s", path, err, bad);
            free(bad);
        } else {
            tlsrpt_book_mark(t->book, day, false);
        }
        sb_free(&text);
        free(path);
    }
    closedir(d);
}

/* ---- sending ------------------------------------------------------------------------- */

typedef struct {
    tlsrpt *t;
    int pending;               /* reports in progress */
    int status;
    strbuf out;
    tlsrpt_answer_fn cb;
    void *arg;
} send_req;

struct rep_job {
    tlsrpt *t;
    send_req *req;
    int64_t day;
    char *domain;
    char *key;                 /* in t->busy */
    char report_id[160];
    int pending;               /* rua deliveries in progress */
    int delivered;
    bool dropped;              /* no TLS-RPT record: marked sent without a report */
    bool deferred;             /* DNS failed for now: stays pending, nothing to say per rua */
    strvec rua_ok;
};

struct post_job {
    rep_job *r;
    char *url;
    strbuf body;
    char *ca_file;
    char err[256];
    long code;
};

static void rep_pump(tlsrpt *t);
static void post_pump(tlsrpt *t);

typedef struct {
    rep_job *r;
    enq_msg em;
    char *rua;
} mail_job;

/* req_note - a line of the command's answer. */
static void req_note(send_req *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void req_note(send_req *q, const char *fmt, ...)
{
    if (!q) return;
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&q->out, fmt, ap);
    va_end(ap);
    sb_putc(&q->out, '\n');
}

/* req_finish_one - one report of q is over: when it was the last, answer. */
static void req_finish_one(send_req *q)
{
    if (!q || --q->pending > 0) return;
    if (!q->out.len) sb_puts(&q->out, "no reports pending\n");
    if (q->cb) q->cb(q->arg, q->status, &q->out);
    sb_free(&q->out);
    free(q);
}

/* rep_finish - the report's deliveries are over: mark it sent when any rua took it. */
static void rep_finish(rep_job *r)
{
    char day[16];
    tlsrpt_day_name(r->day, day, sizeof day);
    if (r->dropped) {
        tlsrpt_book_mark_sent(r->t->book, r->day, r->domain);
        write_dirty(r->t);
    } else if (r->deferred) {
        if (r->req) r->req->status = 1;
    } else if (r->delivered) {
        char *ruas = sv_join(&r->rua_ok, ",");
        log_info(NULL, "tlsrpt_sent", "domain=%s day=%s report_id=\"%s\" rua=\"%s\"", r->domain, day, r->report_id, ruas);
        req_note(r->req, "sent %s %s report-id=%s rua=%s", r->domain, day, r->report_id, ruas);
        free(ruas);
        tlsrpt_book_mark_sent(r->t->book, r->day, r->domain);
        write_dirty(r->t);
    } else {
        req_note(r->req, "failed %s %s (every rua failed; retried at the next run)", r->domain, day);
        if (r->req) r->req->status = 1;
    }
    for (size_t i = 0; i < r->t->busy.n; i++)
        if (!strcmp(r->t->busy.v[i], r->key)) { /* no longer in progress */
            free(r->t->busy.v[i]);
            r->t->busy.v[i] = r->t->busy.v[--r->t->busy.n];
            break;
        }
    req_finish_one(r->req);
    tlsrpt *t = r->t;
    sv_free(&r->rua_ok);
    free(r->domain);
    free(r->key);
    free(r);
    t->inflight--;
    rep_pump(t);
}

/* rep_rua_done - one rua delivery of r ended. */
static void rep_rua_done(rep_job *r, const char *rua, bool ok, const char *err)
{
    char day[16];
    tlsrpt_day_name(r->day, day, sizeof day);
    if (ok) {
        r->delivered++;
        sv_push(&r->rua_ok, rua);
    } else {
        log_error(NULL, "tlsrpt_rua_failed", "domain=%s day=%s rua=\"%s\" error=\"%s\"", r->domain, day, rua, err);
    }
    if (--r->pending == 0) rep_finish(r);
}

/* mail_committed - the mailto: report is queued (or not). */
static void mail_committed(void *arg, sl_result res, const char *err)
{
    mail_job *m = arg;
    if (res == SL_OK) log_info(m->em.id, "tlsrpt_queued", "to=<%s> channel=%s", m->em.rcpts[0].addr, m->em.rcpts[0].channel);
    rep_rua_done(m->r, m->rua, res == SL_OK, err ? err : "not queued");
    enqueue_msg_free(&m->em);
    free(m->rua);
    free(m);
}

/* mail_route - where a report to addr leaves: the notification channel of the submission channel,
 * or the rewrite rules as if from it (as DSNs go). */
static bool mail_route(sl_ctx *ctx, const char *addr, char **chan, char **host, char **out)
{
    const sl_conf *c = ctx->conf;
    const sl_channel *src = conf_channel_by_name(c, c->opt.submit_channel);
    const char *ncname = src && src->notificationchannel ? src->notificationchannel : "process";
    const sl_channel *nc = conf_channel_by_name(c, ncname);
    if (nc) {
        *chan = xstrdup(nc->name), *host = xstrdup(""), *out = xstrdup(addr);
        return true;
    }
    rw_result rw;
    memset(&rw, 0, sizeof rw);
    bool ok = rewrite_address(c, addr, ncname, &rw, NULL) == SL_OK;
    if (ok) *chan = xstrdup(rw.channel->name), *host = route_dest_host(&rw), *out = xstrdup(rw.addr);
    rw_result_free(&rw);
    return ok;
}

/* send_mail - queue the report for a mailto: rua (RFC 8460 5.3). */
static void send_mail(rep_job *r, const char *rua, const strbuf *gz)
{
    sl_ctx *ctx = r->t->ctx;
    const char *to = rua + 7;
    char *chan = NULL, *host = NULL, *addr = NULL;
    if (!mail_route(ctx, to, &chan, &host, &addr)) {
        rep_rua_done(r, rua, false, "no route");
        return;
    }
    mail_job *m = xcalloc(1, sizeof *m);
    m->r = r;
    m->rua = xstrdup(rua);
    store_new_id(ctx->store, m->em.id, sizeof m->em.id);
    char date[64];
    rfc5322_date(now_unix(), date, sizeof date);
    const char *me = ctx->conf->opt.hostname;
    char *from = conf_postmaster(&ctx->conf->opt);
    char *msgid = xasprintf("<%s.tlsrpt@%s>", m->em.id, me);
    char *boundary = xasprintf("%s/tlsrpt/%s", m->em.id, me);
    tlsrpt_mail tm = {.from = from, .to = to, .domain = r->domain, .submitter = me, .report_id = r->report_id,
                      .date = date, .msgid = msgid, .boundary = boundary, .begin = r->day * 86400,
                      .end = r->day * 86400 + 86399, .gz = gz->data, .gz_len = gz->len};
    strbuf text;
    sb_init(&text);
    tlsrpt_mail_build(&tm, &text);
    free(from);
    free(msgid);
    free(boundary);
    m->em.sender = xstrdup(""); /* a report's failure comes back to no one */
    m->em.is_notification = true;
    m->em.arrival = now_unix();
    m->em.src_channel = xstrdup(ctx->conf->opt.submit_channel);
    m->em.client = xstrdup("local");
    size_t len = text.len;
    m->em.content = qbody_adopt(sb_steal(&text), len);
    enqueue_add_rcpt(&m->em, addr, to, NULL, chan, host, 0);
    free(chan);
    free(host);
    free(addr);
    enqueue_submit(ctx, &m->em, mail_committed, m);
}

/* post_run - worker: POST the gzipped report to an https: rua (RFC 8460 5.4). */
static void post_run(void *arg)
{
    post_job *p = arg;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(p->err, sizeof p->err, "curl_easy_init failed");
        return;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/tlsrpt+gzip");
    curl_easy_setopt(c, CURLOPT_URL, p->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, p->body.data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body.len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "Sluice TLS-RPT");
    if (p->ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, p->ca_file);
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &p->code);
    if (rc != CURLE_OK) snprintf(p->err, sizeof p->err, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
    else if (p->code < 200 || p->code > 299) snprintf(p->err, sizeof p->err, "HTTP status %ld", p->code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

/* post_done - loop: the POST ended; the next one may go. */
static void post_done(void *arg)
{
    post_job *p = arg;
    tlsrpt *t = p->r->t;
    t->posting = false;
    rep_rua_done(p->r, p->url, !p->err[0], p->err);
    free(p->url);
    free(p->ca_file);
    sb_free(&p->body);
    free(p);
    post_pump(t);
}

/* post_pump - hand the next waiting POST to a worker unless one is out (or the daemon stops). */
static void post_pump(tlsrpt *t)
{
    if (t->posting || t->stopped || !t->posts.n) return;
    t->posting = true;
    workq_submit(t->ctx->wq, post_run, post_done, fifo_pop(&t->posts));
}

/* send_post - POST the report to an https: rua on a worker. */
static void send_post(rep_job *r, const char *rua, const strbuf *gz)
{
    post_job *p = xcalloc(1, sizeof *p);
    p->r = r;
    p->url = xstrdup(rua);
    sb_append(&p->body, gz->data, gz->len);
    const char *ca = r->t->ctx->conf->opt.tls_ca_file;
    p->ca_file = ca ? xstrdup(ca) : NULL;
    fifo_push(&r->t->posts, p);
    post_pump(r->t);
}

/* rep_build - the JSON report of r, gzipped, into gz; false when there is nothing to report. */
static bool rep_build(rep_job *r, strbuf *gz)
{
    const sl_options *o = &r->t->ctx->conf->opt;
    char *contact = o->tlsrpt_contact ? xstrdup(o->tlsrpt_contact) : conf_postmaster(o);
    tlsrpt_meta meta = {.org = o->tlsrpt_org ? o->tlsrpt_org : o->hostname, .contact = contact, .report_id = r->report_id};
    strbuf json;
    sb_init(&json);
    bool ok = tlsrpt_report_json(r->t->book, r->day, r->domain, &meta, &json);
    if (ok) tlsrpt_gzip(json.data, json.len, gz);
    sb_free(&json);
    free(contact);
    return ok;
}

/* rep_on_txt - the TXT records of _smtp._tls.DOMAIN arrived. */
static void rep_on_txt(void *arg, sl_result res, char *const *strs, size_t n, const char *errmsg)
{
    rep_job *r = arg;
    char day[16];
    tlsrpt_day_name(r->day, day, sizeof day);
    strvec rua = {0};
    if (res == SL_TEMP || r->t->stopped) {
        log_warn(NULL, "tlsrpt_dns_failed", "domain=%s day=%s error=\"%s\"", r->domain, day, errmsg ? errmsg : "");
        req_note(r->req, "deferred %s %s (DNS: %s)", r->domain, day, errmsg ? errmsg : "");
        r->deferred = true; /* stays pending */
        rep_finish(r);
        return;
    }
    if (res != SL_OK || !tlsrpt_txt_select(strs, n, &rua)) {
        log_info(NULL, "tlsrpt_no_record", "domain=%s day=%s note=\"no TLS-RPT record: report dropped\"", r->domain, day);
        req_note(r->req, "dropped %s %s (no TLS-RPT record)", r->domain, day);
        r->dropped = true; /* marked: it is never tried again */
        sv_free(&rua);
        rep_finish(r);
        return;
    }
    strbuf gz;
    sb_init(&gz);
    if (!rep_build(r, &gz)) { /* counted afresh meanwhile to nothing: nothing to say */
        r->deferred = true;
        sv_free(&rua);
        sb_free(&gz);
        rep_finish(r);
        return;
    }
    r->pending = (int)rua.n + 1; /* + 1: no rua may finish the job before every one is started */
    for (size_t i = 0; i < rua.n; i++) {
        if (!strncmp(rua.v[i], "mailto:", 7)) send_mail(r, rua.v[i], &gz);
        else send_post(r, rua.v[i], &gz);
    }
    sv_free(&rua);
    sb_free(&gz);
    if (--r->pending == 0) rep_finish(r);
}

/* rep_lookup - start r: the TXT lookup. */
static void rep_lookup(rep_job *r)
{
    r->t->inflight++;
    char *name = xasprintf("_smtp._tls.%s", r->domain);
    dns_lookup_txt(r->t->ctx->dns, name, rep_on_txt, r);
    free(name);
}

/* rep_pump - start waiting reports while fewer than TLSRPT_PARALLEL are in progress. */
static void rep_pump(tlsrpt *t)
{
    while (!t->stopped && t->inflight < TLSRPT_PARALLEL && t->waiting.n) rep_lookup(fifo_pop(&t->waiting));
}

/* rep_start - the report of domain for day, unless it is in progress already: started or waiting. */
static bool rep_start(tlsrpt *t, send_req *q, int64_t day, const char *domain)
{
    char *key = xasprintf("%lld %s", (long long)day, domain);
    for (size_t i = 0; i < t->busy.n; i++) /* (empty in the daily run: nothing else is in progress) */
        if (!strcmp(t->busy.v[i], key)) {
            free(key);
            return false;
        }
    sv_push(&t->busy, key);
    rep_job *r = xcalloc(1, sizeof *r);
    r->t = t;
    r->req = q;
    r->day = day;
    r->domain = xstrdup(domain);
    r->key = key;
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) memset(rnd, 0, sizeof rnd);
    char dayname[16];
    tlsrpt_day_name(day, dayname, sizeof dayname);
    snprintf(r->report_id, sizeof r->report_id, "%s.%02x%02x%02x%02x%02x%02x.%.60s@%.60s", dayname, rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], domain, t->ctx->conf->opt.hostname);
    fifo_push(&t->waiting, r);
    return true;
}

/* send_days - start the reports of days[0..n) for q; the number started. */
static int send_days(tlsrpt *t, send_req *q, const int64_t *days, size_t n)
{
    int started = 0;
    for (size_t i = 0; i < n; i++) {
        strvec doms = {0};
        tlsrpt_book_pending(t->book, days[i], &doms);
        for (size_t k = 0; k < doms.n; k++) {
            if (q) q->pending++; /* counted before the start: an answer may come at once */
            if (rep_start(t, q, days[i], doms.v[k])) started++;
            else if (q) q->pending--;
        }
        sv_free(&doms);
    }
    rep_pump(t);
    return started;
}

/* finished_days - the days before today held in the book, into days; their number. */
static size_t finished_days(tlsrpt *t, int64_t *days)
{
    int64_t all[TLSRPT_DAYS];
    size_t n = tlsrpt_book_days(t->book, all, TLSRPT_DAYS), k = 0;
    int64_t today = now_unix() / 86400;
    for (size_t i = 0; i < n; i++)
        if (all[i] < today) days[k++] = all[i];
    return k;
}

/* forget_done_days - finished days whose every domain is reported leave memory (their files stay),
 * and so do days too old to report (their reports could not go out for TLSRPT_KEEP_DAYS days). */
static void forget_done_days(tlsrpt *t)
{
    int64_t days[TLSRPT_DAYS];
    size_t n = finished_days(t, days);
    int64_t today = now_unix() / 86400;
    for (size_t i = 0; i < n; i++) {
        if (days[i] < today - TLSRPT_KEEP_DAYS && !t->busy.n) {
            char name[16];
            tlsrpt_day_name(days[i], name, sizeof name);
            log_warn(NULL, "tlsrpt_expired", "day=%s note=\"reports not sent within %d days: dropped\"", name,
                     TLSRPT_KEEP_DAYS);
            tlsrpt_book_forget(t->book, days[i]);
            continue;
        }
        strvec doms = {0};
        tlsrpt_book_pending(t->book, days[i], &doms);
        if (!doms.n && !tlsrpt_book_dirty(t->book, days[i]) && !t->busy.n) tlsrpt_book_forget(t->book, days[i]);
        sv_free(&doms);
    }
}

/* next_run - midnight UTC after now plus a random delay up to tlsrpt_delay (RFC 8460 4.1 advice). */
static int64_t next_run(const tlsrpt *t, int64_t now)
{
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) rnd = 0;
    unsigned delay = t->ctx->conf->opt.tlsrpt_delay;
    return (now / 86400 + 1) * 86400 + (delay ? (int64_t)(rnd % (delay + 1)) : 0);
}

/* tick_arm - the next tick: in a minute, or sooner when the next run is due sooner. */
static void tick_arm(tlsrpt *t, int64_t now)
{
    int64_t wait = t->next_send - now;
    struct timeval tv = {wait < 1 ? 1 : wait < TLSRPT_TICK ? (time_t)wait : TLSRPT_TICK, 0};
    evtimer_add(t->tick, &tv);
}

/* on_tick - every minute: write what changed; after midnight (and the delay) report the finished days. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tlsrpt *t = arg;
    if (t->stopped) return;
    int64_t now = now_unix();
    if (now >= t->next_send) {
        t->next_send = next_run(t, now);
        int64_t days[TLSRPT_DAYS];
        size_t n = finished_days(t, days);
        int started = send_days(t, NULL, days, n);
        if (started) log_info(NULL, "tlsrpt_run", "reports=%d", started);
    }
    forget_done_days(t);
    write_dirty(t);
    tick_arm(t, now);
}

/* ---- the command --------------------------------------------------------------------- */

void tlsrpt_command(tlsrpt *t, int argc, char **argv, tlsrpt_answer_fn cb, void *arg)
{
    strbuf out;
    sb_init(&out);
    int64_t day = -1;
    bool usage = argc < 2 || strcmp(argv[1], "send") != 0;
    for (int i = 2; i < argc && !usage; i++) {
        if (!strcmp(argv[i], "--day") && i + 1 < argc && (day = tlsrpt_day_parse(argv[i + 1])) >= 0) i++;
        else usage = true;
    }
    if (usage || !t || t->stopped) {
        sb_puts(&out, usage ? "usage: sluice tlsrpt send [--day YYYY-MM-DD]\n"
                            : "sluice: TLS-RPT is off (option tlsrpt=1 turns it on)\n");
        cb(arg, usage ? 2 : 1, &out);
        sb_free(&out);
        return;
    }
    send_req *q = xcalloc(1, sizeof *q);
    q->t = t;
    q->cb = cb;
    q->arg = arg;
    q->pending = 1; /* held until every report is started */
    int64_t days[TLSRPT_DAYS];
    size_t n = 1;
    if (day >= 0) days[0] = day; /* on demand a day may be today: the report covers it so far */
    else n = finished_days(t, days);
    send_days(t, q, days, n);
    req_finish_one(q);
}

/* ---- life ---------------------------------------------------------------------------- */

tlsrpt *tlsrpt_new(sl_ctx *ctx)
{
    tlsrpt *t = xcalloc(1, sizeof *t);
    t->ctx = ctx;
    t->book = tlsrpt_book_new(TLSRPT_DOMAINS, TLSRPT_DETAILS);
    t->dir = xasprintf("%s/tlsrpt", ctx->conf->opt.queue_dir);
    pthread_mutex_init(&t->wlock, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* once, before any worker uses libcurl */
    mkdir(t->dir, 0700);
    load_files(t);
    int64_t days[TLSRPT_DAYS];
    int64_t now = now_unix();
    bool overdue = false; /* days the daemon was not running to report */
    size_t n = finished_days(t, days);
    for (size_t i = 0; i < n && !overdue; i++) {
        strvec doms = {0};
        tlsrpt_book_pending(t->book, days[i], &doms);
        overdue = doms.n > 0;
        sv_free(&doms);
    }
    t->next_send = overdue ? now + (int64_t)(next_run(t, now) % 86400) : next_run(t, now);
    t->tick = evtimer_new(ctx->base, on_tick, t);
    tick_arm(t, now);
    active = t;
    log_info(NULL, "tlsrpt_ready", "dir=%s days=%zu", t->dir, tlsrpt_book_days(t->book, days, TLSRPT_DAYS));
    return t;
}

void tlsrpt_stop(tlsrpt *t)
{
    if (!t || t->stopped) return;
    t->stopped = true;
    event_del(t->tick);
    write_job *j = write_snapshot(t, true);
    if (!j) return;
    write_run(j);
    if (j->err) log_error(NULL, "tlsrpt_write_error", "path=%s error=\"%s\"", j->failed, strerror(j->err));
    write_job_free(j);
}

void tlsrpt_free(tlsrpt *t)
{
    if (!t) return;
    tlsrpt_stop(t);
    post_job *p;
    while ((p = fifo_pop(&t->posts))) { /* never handed to a worker */
        rep_rua_done(p->r, p->url, false, "the daemon stopped");
        free(p->url);
        free(p->ca_file);
        sb_free(&p->body);
        free(p);
    }
    rep_job *r;
    while ((r = fifo_pop(&t->waiting))) { /* never started: they stay pending in the day files */
        r->deferred = true;
        t->inflight++;
        rep_finish(r);
    }
    free(t->posts.v);
    free(t->waiting.v);
    if (active == t) active = NULL;
    event_free(t->tick);
    tlsrpt_book_free(t->book);
    sv_free(&t->busy);
    pthread_mutex_destroy(&t->wlock);
    curl_global_cleanup();
    free(t->dir);
    free(t);
}
