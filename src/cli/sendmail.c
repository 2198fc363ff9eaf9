/*
 * sendmail.c - the sendmail interface (see sendmail.h and doc/operations.md).
 *
 * Options follow sendmail(8): a letter, its value attached or in the next word. The message is
 * read from stdin into msgprep (smtp/msgprep.h), which adds the missing From/Date/Message-ID
 * and, with -t, takes the recipients from To/Cc/Bcc. The submission engine (smtp/submit.h)
 * then speaks SMTP on the daemon's local socket. Recipients refused with a 4xx, or a whole
 * message refused so (or no daemon at all), go into the pickup directory, which the daemon
 * submits again; 5xx refusals are reported and give a non-zero exit status.
 */
#include "cli/sendmail.h"
#include "cli/cli.h"
#include "cli/trace_address.h"
#include "conf/conf.h"
#include "smtp/msgprep.h"
#include "smtp/parse.h"
#include "smtp/submit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#define SM_TIMEOUT_MS (300 * 1000) /* per read from the daemon */

enum sm_mode { SM_DELIVER, SM_SMTP, SM_VERIFY, SM_PRINT, SM_QUEUE, SM_ALIASES };

/* The command line. */
typedef struct {
    const char *confdir;
    enum sm_mode mode;
    bool extract, ignore_dot;
    const char *from, *fullname, *envid;
    unsigned notify;
    enum dsn_ret ret;
    strvec args; /* recipients (or addresses to verify) */
} sm_opts;

static void sm_usage(void)
{
    fputs("usage: sendmail [-t] [-i] [-f SENDER] [-F NAME] [-N NOTIFY] [-R full|hdrs] [-V ENVID] [-C DIR] "
          "[RECIPIENT ...]\n"
          "       sendmail -bs | -bv ADDRESS ... | -bp | -q | -bi\n",
          stderr);
}

/* ---- options ---- */

/* sm_mode_of - "-bX" to a mode; -1 if unknown. */
static int sm_mode_of(const char *v)
{
    static const struct {
        const char *name;
        enum sm_mode mode;
    } modes[] = {{"m", SM_DELIVER}, {"s", SM_SMTP}, {"v", SM_VERIFY}, {"p", SM_PRINT}, {"i", SM_ALIASES}};
    for (size_t i = 0; i < SL_ARRAY_LEN(modes); i++)
        if (!strcmp(v, modes[i].name)) return (int)modes[i].mode;
    return -1;
}

/* sm_valued - an option that takes a value: store it; -1 if the value is bad. */
static int sm_valued(sm_opts *o, char letter, const char *v)
{
    switch (letter) {
    case 'f':
    case 'r': o->from = v; return 0;
    case 'F': o->fullname = v; return 0;
    case 'V': o->envid = v; return 0;
    case 'C': o->confdir = v; return 0;
    case 'N': return submit_notify_parse(v, &o->notify);
    case 'R':
        if (str_ieq(v, "full")) o->ret = DSN_RET_FULL;
        else if (str_ieq(v, "hdrs")) o->ret = DSN_RET_HDRS;
        else return -1;
        return 0;
    case 'b': {
        int m = sm_mode_of(v);
        if (m < 0) return -1;
        o->mode = (enum sm_mode)m;
        return 0;
    }
    default: return 0; /* -B -L -h -X -O -A: accepted and ignored */
    }
}

/* sm_flag - an option without a value (the letters after '-'); -1 if unknown. */
static int sm_flag(sm_opts *o, const char *w)
{
    if (strlen(w) > 1 && strspn(w, "tivmnUG") == strlen(w)) { /* letters grouped: "-ti" */
        for (const char *p = w; *p; p++) {
            char one[2] = {*p, '\0'};
            sm_flag(o, one);
        }
        return 0;
    }
    if (!strcmp(w, "t")) o->extract = true;
    else if (!strcmp(w, "i") || !strcmp(w, "oi")) o->ignore_dot = true;
    else if (w[0] == 'o') return 0; /* other -oX: ignored, as sendmail's obsolete options */
    else if (w[0] == 'q') o->mode = SM_QUEUE; /* -q, -q30m: one queue run now */
    else if (w[0] == 'e' || !strcmp(w, "v") || !strcmp(w, "m") || !strcmp(w, "n") || !strcmp(w, "U") ||
             !strcmp(w, "G"))
        return 0;
    else return -1;
    return 0;
}

/* sm_parse - argv[1..] into o; EX_USAGE (message printed) or 0. */
static int sm_parse(int argc, char **argv, sm_opts *o)
{
    static const char valued[] = "frFNRVCbBLhXOA";
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *w = argv[i] + 1;
        if (!strcmp(w, "-")) {
            i++;
            break;
        }
        if (!strcmp(w, "o") && i + 1 < argc) { /* "-o X": an option word of its own, ignored */
            i++;
            continue;
        }
        bool takes = strchr(valued, w[0]) != NULL;
        const char *v = takes ? (w[1] ? w + 1 : i + 1 < argc ? argv[++i] : NULL) : NULL;
        int rc = takes ? (v ? sm_valued(o, w[0], v) : -1) : sm_flag(o, w);
        if (rc < 0) {
            fprintf(stderr, "sendmail: bad option -%s%s%s\n", w, v && !w[1] ? " " : "", v && !w[1] ? v : "");
            sm_usage();
            return EX_USAGE;
        }
    }
    for (; i < argc; i++) sv_push(&o->args, argv[i]);
    return 0;
}

/* ---- identity and addresses ---- */

/* The invoking user. */
typedef struct {
    char *login;    /* user name (or "uid<N>") */
    char *gecos;    /* full name from the password file, or NULL */
} sm_user;

static void sm_user_get(sm_user *u)
{
    struct passwd *pw = getpwuid(getuid());
    u->login = pw && pw->pw_name ? xstrdup(pw->pw_name) : xasprintf("uid%u", (unsigned)getuid());
    u->gecos = pw && pw->pw_gecos && *pw->pw_gecos ? xstrndup(pw->pw_gecos, strcspn(pw->pw_gecos, ",")) : NULL;
}

/* sm_qualify - addr with "@host" added when it has no domain (caller frees); NULL (printed) when invalid. */
static char *sm_qualify(const char *addr, const char *host)
{
    char *a = strchr(addr, '@') ? xstrdup(addr) : xasprintf("%s@%s", addr, host);
    smtp_addr parsed;
    char err[128];
    if (smtp_addr_parse(a, strlen(a), true, &parsed, err, sizeof err) != 0) {
        fprintf(stderr, "sendmail: bad address '%s': %s\n", addr, err);
        free(a);
        return NULL;
    }
    char *out = smtp_addr_format(&parsed);
    smtp_addr_free(&parsed);
    free(a);
    return out;
}

/* sm_sender - the envelope sender: -f (qualified; "" or <> is the null sender), else login@host. */
static char *sm_sender(const sm_opts *o, const sm_user *u, const char *host)
{
    if (!o->from) return xasprintf("%s@%s", u->login, host);
    char *f = xstrdup(o->from);
    char *a = str_trim(f);
    size_t n = strlen(a);
    if (n >= 2 && a[0] == '<' && a[n - 1] == '>') {
        a[n - 1] = '\0';
        a++;
    }
    char *out = *a ? sm_qualify(a, host) : xstrdup("");
    free(f);
    return out;
}

/* sm_add_rcpts - every address of each list in lists, qualified, without duplicates; -1 if one is bad. */
static int sm_add_rcpts(const strvec *lists, const char *host, strvec *rcpts)
{
    for (size_t i = 0; i < lists->n; i++) {
        strvec one = {0};
        msgprep_address_list(lists->v[i], &one);
        for (size_t k = 0; k < one.n; k++) {
            char *a = sm_qualify(one.v[k], host);
            if (!a) {
                sv_free(&one);
                return -1;
            }
            if (sv_contains_ci(rcpts, a)) free(a);
            else sv_push_owned(rcpts, a);
        }
        sv_free(&one);
    }
    return 0;
}

/* ---- the message ---- */

/* sm_read - stdin into m (until EOF or a lone "."); -1 on a read error. */
static int sm_read(msgprep *m)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0)
        if (msgprep_line(m, line, (size_t)n)) break;
    free(line);
    return ferror(stdin) ? -1 : 0;
}

/* sm_from_field - the From: value to add: "Name <addr>" with -F or the password file's name. */
static char *sm_from_field(const sm_opts *o, const sm_user *u, const char *sender, const char *host)
{
    char *addr = *sender ? xstrdup(sender) : xasprintf("%s@%s", u->login, host);
    const char *name = o->fullname ? o->fullname : u->gecos;
    if (!name || !*name || strpbrk(name, "\r\n")) return addr;
    if (!strpbrk(name, "()<>[]:;@\\,.\"")) { /* a phrase of atoms needs no quotes */
        char *out = xasprintf("%s <%s>", name, addr);
        free(addr);
        return out;
    }
    strbuf q = {0};
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\') sb_putc(&q, '\\');
        sb_putc(&q, *p);
    }
    char *out = xasprintf("\"%s\" <%s>", q.data, addr);
    sb_free(&q);
    free(addr);
    return out;
}

/* sm_message_id - a fresh Message-ID value (caller frees). */
static char *sm_message_id(const char *host)
{
    uint64_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) rnd = (uint64_t)now_mono_ns();
    return xasprintf("<%lld.%d.%016llx@%s>", (long long)now_unix(), (int)getpid(), (unsigned long long)rnd, host);
}

/* sm_build - read the message and make the envelope; 0 or an exit status (printed). */
static int sm_build(const sm_opts *o, const sl_options *opt, submit_env *env)
{
    sm_user u;
    sm_user_get(&u);
    msgprep m;
    msgprep_init(&m, o->ignore_dot);
    strvec from_headers = {0};
    int rc = 0;
    env->sender = sm_sender(o, &u, opt->hostname);
    if (!env->sender) rc = EX_DATAERR;
    else if (sm_read(&m) < 0) {
        fprintf(stderr, "sendmail: cannot read the message: %s\n", strerror(errno));
        rc = EX_IOERR;
    }
    if (rc == 0) {
        char date[64];
        rfc5322_date(now_unix(), date, sizeof date);
        char *from = sm_from_field(o, &u, env->sender, opt->hostname), *mid = sm_message_id(opt->hostname);
        msgprep_fields f = {from, date, mid};
        msgprep_finish(&m, o->extract, &from_headers, &f, &env->content);
        free(from);
        free(mid);
        env->eight_bit = m.eight_bit;
        if (sm_add_rcpts(&o->args, opt->hostname, &env->rcpts) < 0 ||
            sm_add_rcpts(&from_headers, opt->hostname, &env->rcpts) < 0)
            rc = EX_DATAERR;
        else if (env->rcpts.n == 0) {
            fprintf(stderr, "sendmail: no recipients\n");
            rc = EX_USAGE;
        }
    }
    env->notify = o->notify;
    env->ret = o->ret;
    env->envid = o->envid ? xstrdup(o->envid) : NULL;
    sv_free(&from_headers);
    msgprep_free(&m);
    free(u.login);
    free(u.gecos);
    return rc;
}

/* ---- the pickup directory ---- */

/* sm_pickup - leave env in QUEUE/pickup (written, flushed, then renamed to its final name); -1 with err. */
static int sm_pickup(const sl_options *opt, const submit_env *env, char *err, size_t errlen)
{
    uint64_t rnd[2] = {0, 0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) rnd[0] = now_mono_ns();
    char *dir = conf_pickup_dir(opt);
    char *name = xasprintf("%016llx.%d.%016llx%016llx", (unsigned long long)now_unix(), (int)getpid(),
                           (unsigned long long)rnd[0], (unsigned long long)rnd[1]);
    char *tmp = xasprintf("%s/.tmp.%s", dir, name), *final = xasprintf("%s/%s", dir, name);
    strbuf data = {0};
    submit_env_encode(env, &data);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int rc = fd >= 0 && write(fd, data.data, data.len) == (ssize_t)data.len && fchmod(fd, 0644) == 0 &&
                     fsync(fd) == 0 ? 0 : -1;
    if (rc < 0) snprintf(err, errlen, "%s: %s", dir, strerror(errno));
    if (fd >= 0 && close(fd) < 0 && rc == 0) rc = -1;
    if (rc == 0 && rename(tmp, final) < 0) {
        snprintf(err, errlen, "%s: %s", final, strerror(errno));
        rc = -1;
    }
    if (rc < 0 && fd >= 0) unlink(tmp);
    sb_free(&data);
    free(tmp);
    free(final);
    free(name);
    free(dir);
    return rc;
}

/* sm_defer - the recipients of env whose RCPT got a 4xx (all those not refused for good when
 * whole) into the pickup directory; 0 or EX_TEMPFAIL (printed). */
static int sm_defer(const sl_options *opt, const submit_env *env, const submit *sub, bool whole, const char *why)
{
    submit_env later = *env;
    memset(&later.rcpts, 0, sizeof later.rcpts);
    for (size_t i = 0; i < env->rcpts.n; i++) {
        int code = 0;
        if (sub) submit_rcpt_reply(sub, i, &code);
        if (code / 100 == 4 || (whole && code / 100 != 5)) sv_push(&later.rcpts, env->rcpts.v[i]);
    }
    int rc = 0;
    char err[512];
    if (later.rcpts.n && sm_pickup(opt, &later, err, sizeof err) < 0) {
        fprintf(stderr, "sendmail: %s; and the pickup directory cannot take the message: %s\n", why, err);
        rc = EX_TEMPFAIL;
    }
    sv_free(&later.rcpts);
    return rc;
}

/* ---- talking to the daemon ---- */

/* sm_connect - the daemon's local submission socket; -1 with errno when nobody answers. */
static int sm_connect(const sl_options *opt)
{
    char *path = conf_submit_socket(opt);
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    int fd = -1;
    if (!path || strlen(path) >= sizeof sun.sun_path) {
        errno = path ? ENAMETOOLONG : ENOENT;
    } else {
        strcpy(sun.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
            int e = errno;
            close(fd);
            fd = -1;
            errno = e;
        }
    }
    free(path);
    return fd;
}

/* write_all - the whole buffer to fd; -1 on error. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* sm_converse - run the engine on fd until it ends (or the daemon falls silent or goes away). */
static submit_status sm_converse(int fd, submit *sub)
{
    char buf[8192];
    submit_status st = SUBMIT_RUNNING;
    while (st == SUBMIT_RUNNING) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, SM_TIMEOUT_MS);
        ssize_t n = pr > 0 ? read(fd, buf, sizeof buf) : -1;
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return submit_eof(sub);
        strbuf out = {0};
        st = submit_feed(sub, buf, (size_t)n, &out);
        if (out.len && write_all(fd, out.data, out.len) < 0 && st == SUBMIT_RUNNING) st = submit_eof(sub);
        sb_free(&out);
    }
    return st;
}

/* sm_report - the refused recipients on stderr; returns whether any was refused for good. */
static bool sm_report(const submit_env *env, const submit *sub)
{
    bool perm = false;
    for (size_t i = 0; i < env->rcpts.n; i++) {
        int code;
        const char *r = submit_rcpt_reply(sub, i, &code);
        if (code / 100 == 5) {
            fprintf(stderr, "sendmail: <%s>: %s\n", env->rcpts.v[i], r);
            perm = true;
        } else if (code / 100 == 4) {
            fprintf(stderr, "sendmail: <%s>: %s (it will be retried)\n", env->rcpts.v[i], r);
        }
    }
    return perm;
}

/* sm_finish - the exit status of a submission that ended with st. */
static int sm_finish(const sl_options *opt, const submit_env *env, const submit *sub, submit_status st)
{
    bool perm_rcpt = sm_report(env, sub);
    if (st == SUBMIT_QUEUED) {
        int rc = sm_defer(opt, env, sub, false, submit_reply(sub));
        return rc ? rc : perm_rcpt ? EX_NOUSER : EX_OK;
    }
    if (st == SUBMIT_TEMP) {
        if (submit_accepted(sub) || !perm_rcpt)
            fprintf(stderr, "sendmail: deferred by the daemon (%s); the message waits in the pickup directory\n",
                    submit_reply(sub));
        int rc = sm_defer(opt, env, sub, true, submit_reply(sub));
        return rc ? rc : perm_rcpt ? EX_NOUSER : EX_OK;
    }
    if (submit_accepted(sub) == 0 && perm_rcpt) return EX_NOUSER;
    fprintf(stderr, "sendmail: the message was refused: %s\n", submit_reply(sub));
    return submit_accepted(sub) ? EX_DATAERR : EX_UNAVAILABLE;
}

/* sm_submit - hand env to the daemon, or to the pickup directory when no daemon answers. */
static int sm_submit(const sl_options *opt, const submit_env *env)
{
    int fd = sm_connect(opt);
    if (fd < 0) {
        char why[256];
        snprintf(why, sizeof why, "no daemon answers on the local submission socket (%s)", strerror(errno));
        return sm_defer(opt, env, NULL, true, why);
    }
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    submit *sub = submit_new(env, host);
    submit_status st = sm_converse(fd, sub);
    close(fd);
    int rc = sm_finish(opt, env, sub, st);
    submit_free(sub);
    return rc;
}

/* ---- modes ---- */

/* sm_options_load - option.dat of confdir alone (all a local user may be able to read); -1 (printed) on errors. */
static int sm_options_load(const char *confdir, sl_options *opt)
{
    conf_errors errs = {0};
    char *file = xasprintf("%s/option.dat", confdir);
    char *text = conf_file_read(file, false, &errs);
    conf_parse_options(file, text ? text : "", opt, &errs);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "sendmail: %s\n", errs.msgs.v[i]);
    int rc = errs.msgs.n ? -1 : 0;
    sv_free(&errs.msgs);
    free(text);
    free(file);
    return rc;
}

/* sm_deliver - the default mode: read, build, submit. */
static int sm_deliver(const sm_opts *o, const sl_options *opt)
{
    submit_env env;
    memset(&env, 0, sizeof env);
    int rc = sm_build(o, opt, &env);
    if (rc == 0) rc = sm_submit(opt, &env);
    submit_env_free(&env);
    return rc;
}

/* sm_relay - copy what is readable on from to to; false at the end of from or on an error. */
static bool sm_relay(int from, int to)
{
    char buf[8192];
    ssize_t n = read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) return true;
    return n > 0 && write_all(to, buf, (size_t)n) == 0;
}

/* sm_smtp - -bs: SMTP on stdin/stdout, carried to the daemon's own server session. */
static int sm_smtp(const sl_options *opt)
{
    int fd = sm_connect(opt);
    if (fd < 0) {
        printf("421 4.3.2 %s Sluice is not running (%s), try again later\r\n", opt->hostname, strerror(errno));
        fflush(stdout);
        return EX_TEMPFAIL;
    }
    bool in_open = true;
    for (;;) {
        struct pollfd p[2] = {{fd, POLLIN, 0}, {in_open ? STDIN_FILENO : -1, POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR) break;
        if (p[0].revents && !sm_relay(fd, STDOUT_FILENO)) break; /* the daemon ended the session */
        if (p[1].revents && !sm_relay(STDIN_FILENO, fd)) {
            in_open = false; /* the client is done: let the daemon finish its answers */
            shutdown(fd, SHUT_WR);
        }
    }
    close(fd);
    return EX_OK;
}

/* sm_verify - -bv: the dry run of `sluice test address` for each address. */
static int sm_verify(const sm_opts *o, const sl_options *opt)
{
    strvec rcpts = {0};
    sm_user u;
    sm_user_get(&u);
    char *from = sm_sender(o, &u, opt->hostname);
    int rc = EX_OK;
    if (!from || sm_add_rcpts(&o->args, opt->hostname, &rcpts) < 0) rc = EX_DATAERR;
    else if (!rcpts.n) rc = (fprintf(stderr, "sendmail: no addresses to verify\n"), EX_USAGE);
    int *codes = xcalloc(rcpts.n + 1, sizeof *codes);
    strvec replies = {0};
    if (rc == EX_OK && trace_address_verify(o->confdir, &rcpts, from, codes, &replies) < 0) rc = EX_CONFIG;
    for (size_t i = 0; rc != EX_CONFIG && i < replies.n; i++) {
        bool ok = codes[i] / 100 == 2;
        printf("%s... %s: %s\n", rcpts.v[i], ok ? "deliverable" : "undeliverable", replies.v[i]);
        if (!ok) rc = codes[i] / 100 == 4 ? EX_TEMPFAIL : EX_NOUSER;
    }
    free(codes);
    sv_free(&replies);
    sv_free(&rcpts);
    free(from);
    free(u.login);
    free(u.gecos);
    return rc;
}

/* sm_queue_run - -q: every queued message due now (`sluice queue retry --all`). */
static int sm_queue_run(const char *confdir)
{
    char *args[] = {"retry", "--all"};
    return cli_queue(confdir, 2, args) == 0 ? EX_OK : EX_TEMPFAIL;
}

/* sm_run - the chosen mode. */
static int sm_run(const sm_opts *o)
{
    if (o->mode == SM_ALIASES) return cli_newaliases();
    if (o->mode == SM_PRINT) {
        char *args[] = {"list"};
        return cli_queue(o->confdir, 1, args) ? EX_UNAVAILABLE : EX_OK;
    }
    if (o->mode == SM_QUEUE) return sm_queue_run(o->confdir);
    sl_options opt;
    if (sm_options_load(o->confdir, &opt) < 0) {
        conf_options_free(&opt);
        return EX_CONFIG;
    }
    int rc = o->mode == SM_SMTP ? sm_smtp(&opt) : o->mode == SM_VERIFY ? sm_verify(o, &opt) : sm_deliver(o, &opt);
    conf_options_free(&opt);
    return rc;
}

int cli_sendmail(int argc, char **argv, const char *confdir)
{
    sm_opts o;
    memset(&o, 0, sizeof o);
    o.confdir = confdir;
    int rc = sm_parse(argc, argv, &o);
    if (rc == 0) rc = sm_run(&o);
    sv_free(&o.args);
    return rc;
}

int cli_mailq(int argc, char **argv, const char *confdir)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "-C")) confdir = argv[i + 1];
    char *args[] = {"list"};
    return cli_queue(confdir, 1, args) ? EX_UNAVAILABLE : EX_OK;
}

int cli_newaliases(void)
{
    puts("newaliases: Sluice keeps no aliases file; aliases and groups live in the directory "
         "(directory.ldif or LDAP), read again on SIGHUP. Nothing to do.");
    return EX_OK;
}
