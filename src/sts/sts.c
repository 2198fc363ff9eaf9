/*
 * sts.c - MTA-STS policy discovery and the policy cache (see sts.h).
 *
 * Every policy domain ever looked up that has something to remember (a cached policy, a lookup
 * in progress, a failed fetch) is an entry in a hash table. A lookup goes TXT -> (id differs)
 * address of mta-sts.DOMAIN -> fetch, parse and write the cache file on a worker -> the entry's
 * new policy. Waiters are on one list of the context; a waiter points at the lookup it waits for
 * until it is answered, then its timer (zero) delivers the answer copied into it, so no callback
 * ever runs inside sts_lookup and a waiter never sees a policy change under it.
 */
#include "sts/sts.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/workq.h"
#include "sts/sts_fetch.h"

#define STS_BUCKETS 1024
#define STS_CACHE_GRACE 86400 /* seconds past its expiry after which a policy's cache file is deleted */

typedef struct sts_job sts_job;

/* One policy domain. */
typedef struct sts_entry {
    struct sts_entry *next;        /* hash chain */
    char *domain;
    sts_cached *cached;            /* the policy last fetched (possibly expired), or NULL */
    sts_job *busy;              /* the lookup in progress, or NULL */
    char fail_id[STS_ID_MAX + 1];  /* the id whose fetch failed last ("" none) ... */
    int64_t fail_until;            /* ... not fetched again before this time */
} sts_entry;

/* One lookup in progress; its worker part fills the fields below "worker". */
struct sts_job {
    sts_ctx *ctx;
    sts_entry *e;
    unsigned port, timeout;
    char *ca_file;
    char id[STS_ID_MAX + 1];       /* the TXT record's id */
    /* worker: in */
    char *dir;
    char *addrs;
    /* worker: out */
    bool ok;
    sts_cached *got;               /* the new policy (ok) */
    sts_fail_facts fail;           /* what failed (!ok) */
    char why[320];
    char write_err[256];           /* the cache file could not be written ("" when it was) */
    /* worker, before the lookup proper: the cache file of a policy expired long ago goes */
    char *stale_path;              /* in */
    int stale_errno;               /* out: unlink's errno, 0 when the file went (or was gone) */
};

struct sts_wait {
    sts_ctx *ctx;
    sts_entry *e;                  /* valid while the waiter waits (its entry is busy) */
    char *domain;
    sts_job *lk;                /* the lookup waited for; NULL once answered */
    sts_wait *prev, *next;         /* the context's list */
    struct event *ev;              /* the timeout, then the zero timer of the answer */
    sts_cb cb;
    void *arg;
    bool answered;
    /* the answer, a copy */
    bool has_policy;
    sts_policy policy;
    char id[STS_ID_MAX + 1];
    enum sts_source source;
    char *note;
};

struct sts_ctx {
    struct event_base *base;
    dns_ctx *dns;
    struct workq *wq;
    char *dir;
    sts_entry *buckets[STS_BUCKETS];
    size_t n_cached;
    sts_wait *waiters;
    bool stopping;                 /* sts_stop was called: no new lookups start */
};

const char *sts_source_name(enum sts_source s)
{
    static const char *const names[] = {"none", "cached", "fetched", "kept", "failed", "timeout"};
    return (size_t)s < SL_ARRAY_LEN(names) ? names[s] : "?";
}

/* ---- entries ------------------------------------------------------------------------- */

/* bucket - the hash chain of domain (FNV-1a). */
static sts_entry **bucket(sts_ctx *c, const char *domain)
{
    uint32_t h = 2166136261u;
    for (const char *p = domain; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return &c->buckets[h % STS_BUCKETS];
}

/* entry_find - the entry of domain, or NULL. */
static sts_entry *entry_find(sts_ctx *c, const char *domain)
{
    for (sts_entry *e = *bucket(c, domain); e; e = e->next)
        if (strcmp(e->domain, domain) == 0) return e;
    return NULL;
}

/* entry_get - the entry of domain, made when there is none. */
static sts_entry *entry_get(sts_ctx *c, const char *domain)
{
    sts_entry *e = entry_find(c, domain);
    if (e) return e;
    sts_entry **b = bucket(c, domain);
    e = xcalloc(1, sizeof *e);
    e->domain = xstrdup(domain);
    e->next = *b;
    *b = e;
    return e;
}

/* entry_free - free an entry (already out of its chain). */
static void entry_free(sts_entry *e)
{
    if (e->cached) sts_cached_free(e->cached);
    free(e->cached);
    free(e->domain);
    free(e);
}

/* entry_prune - drop e when it remembers nothing (no policy, no lookup, no recent failure). */
static void entry_prune(sts_ctx *c, sts_entry *e, int64_t now)
{
    if (e->cached || e->busy || (e->fail_id[0] && e->fail_until > now)) return;
    for (sts_entry **pp = bucket(c, e->domain); *pp; pp = &(*pp)->next) {
        if (*pp != e) continue;
        *pp = e->next;
        entry_free(e);
        return;
    }
}

/* entry_usable - the entry's cached policy when it has not expired, else NULL. */
static const sts_cached *entry_usable(const sts_entry *e, int64_t now)
{
    return e->cached && now < sts_cached_expires(e->cached) ? e->cached : NULL;
}

/* cache_stale - whether cached expired more than STS_CACHE_GRACE seconds before now: its file goes. */
static bool cache_stale(const sts_cached *cached, int64_t now)
{
    return now >= sts_cached_expires(cached) + STS_CACHE_GRACE;
}

/* entry_drop_cached - forget the entry's policy (its file is deleted apart). */
static void entry_drop_cached(sts_ctx *c, sts_entry *e)
{
    sts_cached_free(e->cached);
    free(e->cached);
    e->cached = NULL;
    c->n_cached--;
}

/* entry_set_cached - the entry's policy is now cached (owned). */
static void entry_set_cached(sts_ctx *c, sts_entry *e, sts_cached *cached)
{
    if (e->cached) {
        sts_cached_free(e->cached);
        free(e->cached);
    } else {
        c->n_cached++;
    }
    e->cached = cached;
}

/* ---- waiters ------------------------------------------------------------------------- */

/* wait_free - take w off the context's list and free it. */
static void wait_free(sts_wait *w)
{
    sts_ctx *c = w->ctx;
    if (w->prev) w->prev->next = w->next;
    else c->waiters = w->next;
    if (w->next) w->next->prev = w->prev;
    event_free(w->ev);
    sts_policy_free(&w->policy);
    free(w->note);
    free(w->domain);
    free(w);
}

/* wait_fill - copy an answer into w: cached's policy (NULL: none), where it came from, why. */
static void wait_fill(sts_wait *w, const sts_cached *cached, enum sts_source src, const char *note)
{
    w->answered = true;
    w->lk = NULL;
    w->has_policy = cached != NULL;
    if (cached) {
        sts_policy_copy(&w->policy, &cached->policy);
        snprintf(w->id, sizeof w->id, "%s", cached->id);
    }
    w->source = src;
    w->note = xstrdup(note ? note : "");
}

/* wait_answer - copy the answer into w and deliver it from a zero timer. */
static void wait_answer(sts_wait *w, const sts_cached *cached, enum sts_source src, const char *note)
{
    static const struct timeval zero = {0, 0};
    wait_fill(w, cached, src, note);
    evtimer_add(w->ev, &zero);
}

/* on_wait_event - the answer's zero timer, or the timeout of a waiter still waiting (then the
 * cached policy if any, else none; the lookup goes on for later waiters and the cache). */
static void on_wait_event(evutil_socket_t fd, short what, void *arg)
{
    sts_wait *w = arg;
    (void)fd;
    (void)what;
    if (!w->answered) {
        const sts_cached *u = entry_usable(w->e, now_unix());
        wait_fill(w, u, u ? STS_SRC_KEPT : STS_SRC_TIMEOUT, "the lookup did not finish in time");
    }
    /* the callback may start another lookup: deliver from copies, with w already gone */
    sts_policy pol = w->policy;
    memset(&w->policy, 0, sizeof w->policy);
    char *note = w->note, *domain = w->domain;
    w->note = w->domain = NULL;
    char id[STS_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", w->id);
    sts_answer a = {domain, w->has_policy ? &pol : NULL, id, w->source, note};
    sts_cb cb = w->cb;
    void *cb_arg = w->arg;
    wait_free(w);
    cb(cb_arg, &a);
    sts_policy_free(&pol);
    free(note);
    free(domain);
}

/* wait_new - a waiter for e, on the context's list, with its timeout running. */
static sts_wait *wait_new(sts_ctx *c, sts_entry *e, unsigned timeout, sts_cb cb, void *arg)
{
    sts_wait *w = xcalloc(1, sizeof *w);
    w->ctx = c;
    w->e = e;
    w->domain = xstrdup(e->domain);
    w->cb = cb;
    w->arg = arg;
    w->ev = evtimer_new(c->base, on_wait_event, w);
    if (!w->ev) abort();
    struct timeval tv = {(time_t)(timeout ? timeout : 30), 0};
    evtimer_add(w->ev, &tv);
    w->next = c->waiters;
    if (c->waiters) c->waiters->prev = w;
    c->waiters = w;
    return w;
}

void sts_wait_cancel(sts_wait *w)
{
    if (w) wait_free(w);
}

/* ---- lookups ------------------------------------------------------------------------- */

/* lookup_free - free a finished lookup. */
static void lookup_free(sts_job *lk)
{
    if (lk->got) {
        sts_cached_free(lk->got);
        free(lk->got);
    }
    free(lk->ca_file);
    free(lk->dir);
    free(lk->addrs);
    free(lk->stale_path);
    free(lk);
}

/* finish - the lookup is over: its waiters get the entry's policy (when src says there is one). */
static void finish(sts_job *lk, enum sts_source src, const char *note)
{
    sts_ctx *c = lk->ctx;
    sts_entry *e = lk->e;
    int64_t now = now_unix();
    const sts_cached *pol = src == STS_SRC_CACHED || src == STS_SRC_FETCHED || src == STS_SRC_KEPT ? e->cached : NULL;
    for (sts_wait *w = c->waiters; w; w = w->next)
        if (w->lk == lk) wait_answer(w, pol, src, note);
    e->busy = NULL;
    lookup_free(lk);
    entry_prune(c, e, now);
}

/* finish_keep - nothing new: the cached policy when it is usable (src_kept), else none (src_none). */
static void finish_keep(sts_job *lk, enum sts_source src_kept, enum sts_source src_none, const char *note)
{
    bool usable = entry_usable(lk->e, now_unix()) != NULL;
    finish(lk, usable ? src_kept : src_none, note);
}

/* fetch_result - the fetch is over (on the loop): log, remember, answer. */
static void fetch_result(sts_job *lk)
{
    sts_ctx *c = lk->ctx;
    sts_entry *e = lk->e;
    if (lk->ok) {
        const sts_policy *p = &lk->got->policy;
        char *mx = sv_join(&p->mx, ",");
        log_info(NULL, "sts_fetch", "domain=%s id=%s result=ok mode=%s max_age=%u mx=\"%s\"%s%s%s", e->domain, lk->id,
                 sts_mode_name(p->mode), p->max_age, mx, lk->write_err[0] ? " cache_error=\"" : "", lk->write_err,
                 lk->write_err[0] ? "\"" : "");
        free(mx);
        entry_set_cached(c, e, lk->got);
        lk->got = NULL;
        e->fail_id[0] = '\0';
        finish(lk, STS_SRC_FETCHED, "");
        return;
    }
    enum sts_result_type t = sts_result_type_of(&lk->fail);
    bool usable = entry_usable(e, now_unix()) != NULL;
    for (char *q = lk->why; *q; q++) /* it goes inside a quoted log value */
        if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20) *q = '\'';
    log_info(NULL, "sts_fetch", "domain=%s id=%s result=failed result_type=%s error=\"%s\" keeping=%s", e->domain,
             lk->id, sts_result_type_name(t), lk->why, usable ? "cached" : "none");
    sts_result_fetch_failed(e->domain, usable ? &e->cached->policy : NULL, t, lk->why);
    snprintf(e->fail_id, sizeof e->fail_id, "%s", lk->id);
    e->fail_until = now_unix() + STS_RETRY_FAILED;
    char *note = xasprintf("%s: %s", sts_result_type_name(t), lk->why);
    finish_keep(lk, STS_SRC_KEPT, STS_SRC_FAILED, note);
    free(note);
}

/* cache_write - the cache file of got, durably: written, fsync'd, renamed into dir, dir fsync'd.
 * On a worker. false + err on failure (the policy is still used, only not remembered). */
static bool cache_write(const char *dir, const sts_cached *got, char *err, size_t errlen)
{
    char *tmp = xasprintf("%s/.%s.tmp", dir, got->domain), *dst = xasprintf("%s/%s", dir, got->domain);
    strbuf sb;
    sb_init(&sb);
    sts_cache_encode(got, &sb);
    const char *what = NULL;
    int fd = -1;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) what = "mkdir";
    if (!what && (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) what = "open";
    for (size_t off = 0; !what && off < sb.len;) {
        ssize_t n = write(fd, sb.data + off, sb.len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) what = "write";
        else off += (size_t)n;
    }
    if (!what && fsync(fd) < 0) what = "fsync";
    if (fd >= 0 && close(fd) < 0 && !what) what = "close";
    if (!what && rename(tmp, dst) < 0) what = "rename";
    if (!what) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0) what = "fsync the directory";
        if (dfd >= 0) close(dfd);
    }
    if (what) {
        snprintf(err, errlen, "%s %s: %s", what, what[0] == 'f' || what[0] == 'm' ? dir : tmp, strerror(errno));
        if (fd >= 0) unlink(tmp);
    }
    sb_free(&sb);
    free(tmp);
    free(dst);
    return what == NULL;
}

/* fetch_work - on a worker: fetch, check, parse, and write the cache file. */
static void fetch_work(void *arg)
{
    sts_job *lk = arg;
    sts_fetch_req rq = {lk->e->domain, lk->port, lk->addrs, lk->ca_file, lk->timeout};
    sts_fetch_res rs;
    sts_fetch(&rq, &rs);
    if (!rs.ok) {
        lk->fail = rs.fail;
        snprintf(lk->why, sizeof lk->why, "%s", rs.why);
        return;
    }
    sts_cached *got = xcalloc(1, sizeof *got);
    char why[256];
    if (!sts_policy_parse(rs.body.data, rs.body.len, &got->policy, why, sizeof why)) {
        lk->fail.stage = STS_FAIL_POLICY;
        snprintf(lk->why, sizeof lk->why, "invalid policy: %s", why);
        sts_cached_free(got);
        free(got);
        sb_free(&rs.body);
        return;
    }
    got->domain = xstrdup(lk->e->domain);
    snprintf(got->id, sizeof got->id, "%s", lk->id);
    got->fetched = now_unix();
    got->body_len = rs.body.len;
    got->body = sb_steal(&rs.body);
    lk->got = got;
    lk->ok = true;
    if (!cache_write(lk->dir, got, lk->write_err, sizeof lk->write_err) && !lk->write_err[0])
        snprintf(lk->write_err, sizeof lk->write_err, "unknown error");
}

/* fetch_done - on the loop, after fetch_work. */
static void fetch_done(void *arg)
{
    fetch_result(arg);
}

/* on_addr - the addresses of mta-sts.DOMAIN: fetch from them on a worker. */
static void on_addr(void *arg, sl_result res, const struct sockaddr_storage *addrs, size_t n, const char *errmsg)
{
    sts_job *lk = arg;
    if (res != SL_OK || n == 0) {
        lk->ok = false;
        lk->fail.stage = STS_FAIL_FETCH;
        snprintf(lk->why, sizeof lk->why, "mta-sts.%s: %s", lk->e->domain,
                 res == SL_OK ? "no address records" : errmsg);
        fetch_result(lk);
        return;
    }
    strbuf sb;
    sb_init(&sb);
    for (size_t i = 0; i < n; i++) {
        char ip[INET6_ADDRSTRLEN] = "";
        if (addrs[i].ss_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)&addrs[i])->sin_addr, ip, sizeof ip);
        else if (addrs[i].ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&addrs[i])->sin6_addr, ip, sizeof ip);
        if (ip[0]) sb_printf(&sb, "%s%s", sb.len ? "," : "", ip);
    }
    lk->addrs = sb_steal(&sb);
    lk->dir = xstrdup(lk->ctx->dir);
    workq_submit(lk->ctx->wq, fetch_work, fetch_done, lk);
}

/* on_txt - the "_mta-sts" TXT answer: no record, the cached policy's id, or a fetch. */
static void on_txt(void *arg, sl_result res, char *const *strs, size_t n, const char *errmsg)
{
    sts_job *lk = arg;
    sts_entry *e = lk->e;
    char why[256];
    if (res != SL_OK || !sts_txt_select(strs, n, lk->id, why, sizeof why)) {
        char *note = res == SL_TEMP ? xasprintf("TXT lookup failed: %s", errmsg)
                     : res == SL_PERM ? xstrdup("no MTA-STS TXT record")
                                      : xasprintf("TXT: %s", why);
        finish_keep(lk, STS_SRC_KEPT, STS_SRC_NONE, note);
        free(note);
        return;
    }
    int64_t now = now_unix();
    const sts_cached *u = entry_usable(e, now);
    if (u && strcmp(u->id, lk->id) == 0) {
        finish(lk, STS_SRC_CACHED, "");
        return;
    }
    if (strcmp(e->fail_id, lk->id) == 0 && now < e->fail_until) {
        char *note = xasprintf("the fetch for id %s failed less than %d s ago", lk->id, STS_RETRY_FAILED);
        finish_keep(lk, STS_SRC_KEPT, STS_SRC_FAILED, note);
        free(note);
        return;
    }
    char *host = xasprintf("mta-sts.%s", e->domain);
    dns_lookup_addr(lk->ctx->dns, host, on_addr, lk);
    free(host);
}

/* lookup_start - ask the domain's TXT record (the lookup proper). */
static void lookup_start(sts_job *lk)
{
    char *name = xasprintf("_mta-sts.%s", lk->e->domain);
    dns_lookup_txt(lk->ctx->dns, name, on_txt, lk);
    free(name);
}

/* stale_work - on a worker: delete the cache file of a policy expired long ago. */
static void stale_work(void *arg)
{
    sts_job *lk = arg;
    lk->stale_errno = unlink(lk->stale_path) < 0 && errno != ENOENT ? errno : 0;
}

/* stale_done - on the loop: log the deletion, then the lookup proper (unless the daemon stops). */
static void stale_done(void *arg)
{
    sts_job *lk = arg;
    if (lk->stale_errno)
        log_warn(NULL, "sts_cache_error", "file=\"%s\" error=\"unlink: %s\"", lk->stale_path, strerror(lk->stale_errno));
    else
        log_info(NULL, "sts_cache_expired", "domain=%s file=\"%s\"", lk->e->domain, lk->stale_path);
    if (lk->ctx->stopping) {
        finish(lk, STS_SRC_NONE, "the daemon stops");
        return;
    }
    lookup_start(lk);
}

sts_wait *sts_lookup(sts_ctx *c, const char *domain, const sts_params *p, sts_cb cb, void *arg)
{
    sts_entry *e = entry_get(c, domain);
    sts_wait *w = wait_new(c, e, p->timeout, cb, arg);
    if (e->busy) {
        w->lk = e->busy;
        return w;
    }
    sts_job *lk = xcalloc(1, sizeof *lk);
    lk->ctx = c;
    lk->e = e;
    lk->port = p->port ? p->port : 443;
    lk->timeout = p->timeout ? p->timeout : 30;
    lk->ca_file = xstrdup(p->ca_file);
    e->busy = lk;
    w->lk = lk;
    if (e->cached && cache_stale(e->cached, now_unix())) {
        /* deleted on a worker before the lookup proper: no fetch of this domain can write meanwhile */
        entry_drop_cached(c, e);
        lk->stale_path = xasprintf("%s/%s", c->dir, domain);
        workq_submit(c->wq, stale_work, stale_done, lk);
        return w;
    }
    lookup_start(lk);
    return w;
}

/* ---- the context --------------------------------------------------------------------- */

/* cache_load - read every cache file of dir into the table (start-up: blocking is fine); the files of
 * policies expired more than STS_CACHE_GRACE ago are deleted. */
static void cache_load(sts_ctx *c)
{
    int64_t now = now_unix();
    DIR *d = opendir(c->dir);
    if (!d) {
        if (errno != ENOENT) log_warn(NULL, "sts_cache_error", "dir=\"%s\" error=\"%s\"", c->dir, strerror(errno));
        log_info(NULL, "sts_cache_loaded", "dir=\"%s\" policies=0", c->dir);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char *path = xasprintf("%s/%s", c->dir, de->d_name);
        strbuf text;
        sb_init(&text);
        sts_cached *got = xcalloc(1, sizeof *got);
        char why[256] = "";
        bool ok = false;
        if (!sts_domain_ok(de->d_name)) snprintf(why, sizeof why, "not a domain name");
        else if (file_read(path, &text) < 0) snprintf(why, sizeof why, "%s", strerror(errno));
        else if (!sts_cache_decode(text.data, text.len, got, why, sizeof why)) (void)0;
        else if (strcmp(got->domain, de->d_name) != 0) snprintf(why, sizeof why, "holds the policy of %s", got->domain);
        else ok = true;
        if (ok && cache_stale(got, now)) {
            if (unlink(path) < 0) log_warn(NULL, "sts_cache_error", "file=\"%s\" error=\"unlink: %s\"", path, strerror(errno));
            else log_info(NULL, "sts_cache_expired", "domain=%s file=\"%s\"", got->domain, path);
            sts_cached_free(got);
            free(got);
        } else if (ok) {
            entry_set_cached(c, entry_get(c, got->domain), got);
        } else {
            log_warn(NULL, "sts_cache_error", "file=\"%s\" error=\"%s\"", path, why);
            sts_cached_free(got);
            free(got);
        }
        sb_free(&text);
        free(path);
    }
    closedir(d);
    log_info(NULL, "sts_cache_loaded", "dir=\"%s\" policies=%zu", c->dir, c->n_cached);
}

sts_ctx *sts_new(struct event_base *base, dns_ctx *dns, struct workq *wq, const char *cache_dir)
{
    sts_ctx *c = xcalloc(1, sizeof *c);
    c->base = base;
    c->dns = dns;
    c->wq = wq;
    c->dir = xstrdup(cache_dir);
    sts_fetch_global_init();
    cache_load(c);
    return c;
}

size_t sts_cached_count(const sts_ctx *c)
{
    return c->n_cached;
}

void sts_stop(sts_ctx *c)
{
    c->stopping = true;
    sts_fetch_abort_all();
}

void sts_free(sts_ctx *c)
{
    if (!c) return;
    while (c->waiters) wait_free(c->waiters);
    for (size_t i = 0; i < STS_BUCKETS; i++) {
        while (c->buckets[i]) {
            sts_entry *e = c->buckets[i];
            c->buckets[i] = e->next;
            if (e->busy) lookup_free(e->busy); /* cannot happen after dns_free and workq_free */
            entry_free(e);
        }
    }
    free(c->dir);
    free(c);
    sts_fetch_global_cleanup();
}
