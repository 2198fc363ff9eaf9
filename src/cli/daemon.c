/*
 * daemon.c - "sluice serve": wires the loop, the queue store, the scheduler (with the built-in
 * channel programs, and as the sink of enqueue), DNS and the dispatcher together, recovers the
 * queue, handles SIGTERM (stop cleanly, queue intact) and SIGHUP (reload, keeping the old
 * configuration if the new one is invalid).
 */
#include "cli/cli.h"
#include "cli/control.h"
#include "cli/metrics_http.h"
#include "core/metrics.h"
#include "conf/conf.h"
#include "core/ctx.h"
#include "core/log.h"
#include "core/tls.h"
#include "core/tls_sni.h"
#include "core/workq.h"
#include "cli/load.h"
#include "deliver/hostmem.h"
#include "deliver/program.h"
#include "deliver/sts_out.h"
#include "dir/dir.h"
#include "dns/dns.h"
#include "jobs/sched.h"
#include "queue/enqueue.h"
#include "queue/store.h"
#include "policy/policy.h"
#include "smtp/listener.h"
#include "smtp/pickup.h"
#include "tlsrpt/tlsrpt.h"
#include "sts/sts.h"

#include <event2/event.h>
#include <ftw.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <openssl/ssl.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef struct {
    sl_ctx ctx;
    sched *sched;
    listener *lst;
    policy *pol;
    control *ctl;
    pickup *pick;
    metrics_http *metrics;
    tlsrpt *tlsrpt;
    struct event *ev_term, *ev_int, *ev_hup, *ev_stop;
    int64_t stop_started;
    const char *dir;
} daemon_state;

/* loop_token_load - the installation's XLOOP token from QUEUE/loop-token, created on first start. */
static void loop_token_load(const char *qdir, char *buf, size_t len)
{
    char *path = xasprintf("%s/loop-token", qdir);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(buf, (int)len, f)) buf[0] = '\0';
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
    }
    if (strlen(buf) < 16) {
        unsigned char rnd[16];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) fatal("getrandom failed");
        for (size_t i = 0; i < sizeof rnd && 2 * i + 2 < len; i++) snprintf(buf + 2 * i, 3, "%02x", rnd[i]);
        f = fopen(path, "w");
        if (!f || fprintf(f, "%s\n", buf) < 0 || fclose(f) != 0) fatal("cannot write %s", path);
    }
    free(path);
}

/* raise_fd_limit - every session and delivery is a descriptor: take the hard limit. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* queue_run - an ETRN's queue run (sl_ctx.queue_run): the scheduler starts the node's messages. */
static int queue_run(void *arg, const char *node)
{
    return sched_etrn(arg, node);
}

/* enqueued - the enqueue sink: a committed file joins the scheduler at the end of this loop turn
 * (a bounce committed while the scheduler handles a result must not re-enter it). */
static void enqueued(void *arg, qmsg *msg, char *path)
{
    sched_add_later(arg, msg, path);
}

/* recovered - a batch of the start-up scan joins the scheduler. */
static void recovered(void *arg, qmsg **msgs, char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++) sched_add(arg, msgs[i], paths[i]);
}

/* recovery_done - the start-up scan ended. */
static void recovery_done(void *arg, size_t found, double secs)
{
    sched_recovery(arg, false, found, secs);
    log_info(NULL, "recovered", "messages=%zu secs=%.3f", found, secs);
}

/* tls_reload - (re)create the server context from the configuration; false (logged) on failure. */
static bool tls_reload(sl_ctx *ctx, const sl_conf *c, char *err, size_t errlen)
{
    SSL_CTX *srv = NULL;
    if (c->opt.tls_certificate) {
        srv = tls_server_ctx(c->opt.tls_certificate, c->opt.tls_key, c->opt.tls_ciphers, (int)c->opt.tls_min_version,
                             err, errlen);
        if (!srv) return false;
        char why[256];
        if (!tls_server_sni(srv, c->tls_sni, c->opt.tls_ciphers, (int)c->opt.tls_min_version, why, sizeof why)) {
            snprintf(err, errlen, "%s:%s", c->opt.tls_sni_file, why);
            SSL_CTX_free(srv);
            return false;
        }
        if (c->tls_sni && c->tls_sni->n)
            log_info(NULL, "tls_sni_loaded", "file=%s names=%zu", c->opt.tls_sni_file, c->tls_sni->n);
    }
    if (ctx->tls_server) SSL_CTX_free(ctx->tls_server);
    ctx->tls_server = srv;
    return true;
}

static uid_t chown_uid;
static gid_t chown_gid;
static const char *chown_keep; /* files under this directory keep their owner (the pickup files' submitters) */

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    size_t k = chown_keep ? strlen(chown_keep) : 0;
    if (k && !strncmp(path, chown_keep, k) && path[k] == '/') return 0;
    if (lchown(path, chown_uid, chown_gid) < 0) log_warn(NULL, "chown_failed", "path=%s", path);
    return 0;
}

/* chown_tree - give a directory tree to uid:gid, except what lies under keep (start-up only). */
static void chown_tree(const char *root, uid_t uid, gid_t gid, const char *keep)
{
    chown_uid = uid;
    chown_gid = gid;
    chown_keep = keep;
    nftw(root, chown_one, 32, FTW_PHYS);
    chown_keep = NULL;
}

/* drop_privileges - become option.dat's run_as user once the ports are bound. */
static void drop_privileges(const sl_conf *c)
{
    if (!c->opt.run_as || geteuid() != 0) return;
    struct passwd *pw = getpwnam(c->opt.run_as);
    if (!pw) fatal("run_as: no such user '%s'", c->opt.run_as);
    /* the queue and the Maildirs must stay writable after the switch */
    char *pickup_dir = conf_pickup_dir(&c->opt);
    chown_tree(c->opt.queue_dir, pw->pw_uid, pw->pw_gid, pickup_dir);
    free(pickup_dir);
    mkdir(c->opt.maildir_root, 0700);
    chown_tree(c->opt.maildir_root, pw->pw_uid, pw->pw_gid, NULL);
    if (c->opt.mta_sts_cache_dir) { /* outside the queue: the policy cache must stay writable too */
        mkdir(c->opt.mta_sts_cache_dir, 0700);
        chown_tree(c->opt.mta_sts_cache_dir, pw->pw_uid, pw->pw_gid, NULL);
    }
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
        fatal("run_as: cannot become '%s'", c->opt.run_as);
    log_info(NULL, "privileges_dropped", "user=%s uid=%u", c->opt.run_as, (unsigned)pw->pw_uid);
}

/* reload_tls_failed - a reload whose certificate or CA file cannot be loaded keeps the old configuration;
 * otherwise both contexts are replaced (sessions under way keep a reference to the old client context). */
static bool reload_tls_failed(daemon_state *d, sl_conf *c)
{
    char err[512];
    SSL_CTX *client = tls_client_ctx(c->opt.tls_ca_file, err, sizeof err);
    if (client && tls_reload(&d->ctx, c, err, sizeof err)) {
        SSL_CTX_free(d->ctx.tls_client);
        d->ctx.tls_client = client;
        return false;
    }
    SSL_CTX_free(client);
    log_error(NULL, "reload_failed", "dir=%s error=\"%s\" keeping=old_configuration", d->dir, err);
    return true;
}

/* log_dir_notes - the directory's warnings (e.g. attributes no longer read), once per load. */
static void log_dir_notes(const sl_dir *dir)
{
    strvec notes = {0};
    dir_notes(dir, &notes);
    for (size_t i = 0; i < notes.n; i++) log_warn(NULL, "directory_note", "note=\"%s\"", notes.v[i]);
    sv_free(&notes);
}

/* reload_refused - whether c must be refused: another queue directory would split the queue (logged). */
static bool reload_refused(daemon_state *d, const strvec *restart)
{
    if (!sv_contains_ci(restart, "queue_dir")) return false;
    log_error(NULL, "reload_failed", "dir=%s error=\"queue_dir changes only with a restart\" keeping=old_configuration",
              d->dir);
    return true;
}

/* reload_apply - make c (and its directory) current: log settings, dispatcher services. */
static void reload_apply(daemon_state *d, sl_conf *c, sl_dir *dir, const strvec *restart)
{
    ctx_conf_replace(&d->ctx, c);
    dir_unref(d->ctx.dir); /* sessions under way keep theirs */
    d->ctx.dir = dir;
    log_set_level((enum log_level)c->opt.log_level);
    log_set_format((enum log_format)c->opt.log_format);
    size_t failed = listener_reload(d->lst, c);
    sched_reconf(d->sched); /* new shaping limits apply at once */
    for (size_t i = 0; i < restart->n; i++)
        log_warn(NULL, "reload_restart_needed", "option=%s note=\"the running daemon keeps the old value until it is "
                 "restarted\"", restart->v[i]);
    log_info(NULL, "reloaded", "dir=%s rules=%zu channels=%zu services=%zu listen_failed=%zu", d->dir, c->n_rules,
             c->n_channels, c->n_services, failed);
}

static void reload(daemon_state *d)
{
    conf_errors errs = {0};
    strvec restart = {0};
    sl_conf *c;
    sl_dir *dir;
    if (!load_all(d->dir, &errs, &c, &dir)) {
        for (size_t i = 0; i < errs.msgs.n; i++) log_error(NULL, "reload_error", "error=\"%s\"", errs.msgs.v[i]);
        log_error(NULL, "reload_failed", "dir=%s keeping=old_configuration", d->dir);
    } else {
        conf_restart_changes(d->ctx.conf, c, &restart);
        if (reload_refused(d, &restart) || reload_tls_failed(d, c)) {
            conf_free(c);
            dir_unref(dir);
        } else {
            dir_attach(dir, d->ctx.base);
            log_dir_notes(dir);
            reload_apply(d, c, dir, &restart);
        }
    }
    sv_free(&restart);
    sv_free(&errs.msgs);
}

/* local_submission_open - the socket of `sluice sendmail` and the pickup directory, unless
 * submit_socket=none; a failure is logged and the daemon runs without them. */
static bool local_submission_open(daemon_state *d, const sl_conf *c)
{
    char *path = conf_submit_socket(&c->opt);
    if (!path) return false;
    char err[512];
    bool ok = pickup_dir_prepare(c->opt.queue_dir, err, sizeof err) == 0 &&
              listener_open_local(d->lst, path, c->opt.submit_channel, err, sizeof err) == 0;
    if (!ok) log_error(NULL, "local_submission_error", "error=\"%s\" note=\"sluice sendmail cannot reach this daemon\"", err);
    free(path);
    return ok;
}

/* build_info - the sluice_build_info gauge. */
static void build_info(void *arg, metric_emit *e)
{
    (void)arg;
    metric_emit_value(e, (const char *const[]){SLUICE_VERSION}, 1);
}

/* metrics_start - the registry's catalogue, and the endpoint when metrics_listen is set (start-up). */
static void metrics_start(daemon_state *d, const sl_conf *c)
{
    metric_gauge_register(&METRIC_BUILD_INFO, build_info, d);
    if (!c->opt.metrics_listen) return;
    char err[512];
    d->metrics = metrics_http_open(d->ctx.base, c->opt.metrics_listen, err, sizeof err);
    if (!d->metrics) fatal("%s", err);
}

static void stop_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    daemon_state *d = arg;
    bool idle = sched_idle(d->sched) && listener_sessions(d->lst) == 0;
    if (idle || now_mono_ms() - d->stop_started > 5000) {
        if (!idle) log_warn(NULL, "stop_forced", "note=\"jobs still running; their messages stay queued\"");
        event_base_loopbreak(d->ctx.base);
        return;
    }
    struct timeval tv = {0, 50000};
    evtimer_add(d->ev_stop, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    daemon_state *d = arg;
    if (sig == SIGHUP) {
        reload(d);
        return;
    }
    if (d->ctx.stopping) return;
    d->ctx.stopping = true;
    log_info(NULL, "stopping", "signal=%d", (int)sig);
    pickup_free(d->pick);
    d->pick = NULL;
    metrics_http_free(d->metrics);
    d->metrics = NULL;
    listener_close(d->lst);
    control_free(d->ctl);
    d->ctl = NULL;
    sched_stop(d->sched);
    sts_stop(d->ctx.sts); /* a policy fetch hanging on its server gives up: the workers drain */
    d->stop_started = now_mono_ms();
    stop_tick(-1, 0, d);
}

int daemon_serve(const char *dir)
{
    daemon_state d = {0};
    d.dir = dir;
    conf_errors errs = {0};
    sl_conf *conf;
    sl_dir *directory;
    load_all(dir, &errs, &conf, &directory);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "%s\n", errs.msgs.v[i]);
    sv_free(&errs.msgs);
    if (!conf) return 1;
    metrics_declare_all(); /* the catalogue's order, before any component registers a gauge */
    log_set_level((enum log_level)conf->opt.log_level);
    log_set_format((enum log_format)conf->opt.log_format);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    /* The epoll changelist folds the add/remove pairs of one loop iteration (a reply enables the
       write event, the write disables it) into at most one epoll_ctl per descriptor. */
    struct event_config *ecfg = event_config_new();
    event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    d.ctx.base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    if (!d.ctx.base) fatal("cannot create the event loop");
    d.ctx.conf = conf;
    d.ctx.dir = directory;
    dir_attach(directory, d.ctx.base); /* an LDAP directory starts connecting (on threads: nothing waits) */
    log_dir_notes(directory);
    d.ctx.wq = workq_new(d.ctx.base, 4);
    char err[512];
    d.ctx.store = store_open(d.ctx.base, d.ctx.wq, conf->opt.queue_dir, err, sizeof err);
    if (!d.ctx.store) fatal("%s", err);
    if (!tls_reload(&d.ctx, conf, err, sizeof err)) fatal("tls: %s", err);
    d.ctx.tls_client = tls_client_ctx(conf->opt.tls_ca_file, err, sizeof err);
    if (!d.ctx.tls_client) fatal("tls: %s", err);
    d.ctx.dns = dns_new(d.ctx.base, &conf->opt.dns_servers, err, sizeof err);
    if (!d.ctx.dns) fatal("dns: %s", err);
    char *sts_dir = conf_sts_cache_dir(&conf->opt);
    d.ctx.sts = sts_new(d.ctx.base, d.ctx.dns, d.ctx.wq, sts_dir); /* reads the MTA-STS policy cache */
    free(sts_dir);
    loop_token_load(conf->opt.queue_dir, d.ctx.loop_token, sizeof d.ctx.loop_token);
    d.ctx.hostmem = hostmem_new();
    d.sched = sched_new(&d.ctx, deliv_programs_builtin());
    enqueue_set_sink(&d.ctx, enqueued, d.sched);
    d.ctx.queue_run = queue_run;
    d.ctx.queue_run_arg = d.sched;
    d.pol = policy_new(&d.ctx);
    d.lst = listener_open(&d.ctx, policy_smtp_ops(), d.pol, err, sizeof err);
    if (!d.lst) fatal("%s", err);
    bool local = local_submission_open(&d, conf);
    metrics_start(&d, conf);
    d.ev_term = evsignal_new(d.ctx.base, SIGTERM, on_signal, &d);
    d.ev_int = evsignal_new(d.ctx.base, SIGINT, on_signal, &d);
    d.ev_hup = evsignal_new(d.ctx.base, SIGHUP, on_signal, &d);
    d.ev_stop = evtimer_new(d.ctx.base, stop_tick, &d);
    event_add(d.ev_term, NULL);
    event_add(d.ev_int, NULL);
    event_add(d.ev_hup, NULL);
    drop_privileges(conf);
    sched_load_returns(d.sched);
    sched_start(d.sched);
    /* The queue is read back in the background: new mail is accepted meanwhile. */
    sched_recovery(d.sched, true, 0, 0);
    store_recover_start(d.ctx.store, recovered, recovery_done, d.sched);
    d.ctl = control_open(&d.ctx, d.sched);
    if (conf->opt.tlsrpt) d.tlsrpt = tlsrpt_new(&d.ctx);
    sts_result_set_fetch_hook(d.tlsrpt ? sts_out_fetch_failed : NULL); /* MTA-STS fetch failures in the reports */
    control_set_tlsrpt(d.ctl, d.tlsrpt);
    if (local) d.pick = pickup_new(&d.ctx, d.lst);
    size_t ndom, nusers;
    dir_stats(directory, &ndom, &nusers);
    log_info(NULL, "ready", "version=%s config=%s hostname=%s maildir_root=%s directory=%s domains=%zu users=%zu",
             SLUICE_VERSION, dir, conf->opt.hostname, conf->opt.maildir_root, dir_backend_name(directory), ndom,
             nusers);
    event_base_dispatch(d.ctx.base);
    bool clean = sched_idle(d.sched) && listener_sessions(d.lst) == 0;
    sched_replies_save(d.sched);
    tlsrpt_stop(d.tlsrpt); /* the day files written whole, now */
    log_info(NULL, "stopped", "clean=%s queued=%zu", clean ? "yes" : "no", sched_count(d.sched));
    if (!store_recover_stop(d.ctx.store, 2000)) {
        log_error(NULL, "recovery_blocked", "the start-up scan did not stop within 2 s; exiting without cleanup");
        _exit(0); /* its thread still uses the store: nothing may be freed (the queue on disk is intact) */
    }
    if (!clean) return 0; /* in-flight work is abandoned; the queue on disk is intact */
    listener_free(d.lst);
    metric_gauge_unregister(&d);
    event_free(d.ev_term);
    event_free(d.ev_int);
    event_free(d.ev_hup);
    event_free(d.ev_stop);
    workq_free(d.ctx.wq); /* runs the completions of abandoned AUTH checks (they drop their answer) */
    store_close(d.ctx.store);
    sched_free(d.sched);
    dns_free(d.ctx.dns); /* cancels the reject mode's MX lookups: before the policy goes */
    sts_free(d.ctx.sts);  /* after the worker queue and the resolver: their last callbacks reach it */
    hostmem_free(d.ctx.hostmem);
    tlsrpt_free(d.tlsrpt); /* after the workers and the resolver: their callbacks use it */
    policy_free(d.pol);
    ctx_conf_release_all(&d.ctx);
    dir_unref(d.ctx.dir);
    free(d.ctx.listen_addrs);
    if (d.ctx.tls_server) SSL_CTX_free(d.ctx.tls_server);
    SSL_CTX_free(d.ctx.tls_client);
    /* Bufferevents freed during the stop (a parked TLS connection: its filter, SSL object and
     * socket) finish in libevent's finalizers, each scheduling the next on the loop; a few
     * non-blocking turns let the chain finish before the base goes. */
    for (int i = 0; i < 4; i++) event_base_loop(d.ctx.base, EVLOOP_NONBLOCK);
    event_base_free(d.ctx.base);
    libevent_global_shutdown();
    return 0;
}
