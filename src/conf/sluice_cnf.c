/*
 * sluice_cnf.c - sluice.cnf: rewrite rules ("pattern template", one per line) up to the first
 * blank line, then channel blocks separated by blank lines. A block is "name keyword..." followed
 * by the channel's official host name and its alias host names, one per line; a first block named
 * "defaults" gives the initial keyword values of every later channel. Keywords are a table: a
 * flag, a keyword with one argument, or a list (backoff, notices) that runs to the next keyword.
 * Templates are checked afterwards by the rewrite engine's own parser (rewrite_rules_check, run
 * by the loader in cli/load.c) so that a bad rule fails at load, not on the first message;
 * notification/disposition channels are checked after the last block
 * (pools in conf.c, once job_controller.cnf is read). Called while loading a configuration only.
 */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>


/* Parser state: the block being read (added to c on close) and what "defaults" said. */
typedef struct {
    const char *file;
    sl_conf *c;
    conf_errors *errs;
    int nerr;
    bool in_rules;
    bool in_block, discard;  /* discard: a bad or duplicate block, read but not kept */
    bool mx_set, tls_set;    /* the current block said mx/nomx, maytls/musttls/notls */
    sl_channel cur;
    size_t host_lines; /* host lines of the current block, good or bad */
    size_t nblocks;
    bool have_defaults;
    int defaults_mx;  /* -1: "defaults" said neither mx nor nomx */
    int defaults_tls; /* -1: "defaults" said no TLS keyword */
} cnf_parser;

/* How many arguments a channel keyword takes. */
enum kw_args { KW_FLAG, KW_ONE, KW_LIST };

/* A channel keyword: its name, its arguments, and what it does with them (args[0..nargs-1]). */
typedef struct {
    const char *name;
    enum kw_args args;
    void (*apply)(cnf_parser *p, int line, const char *kw, char **args, size_t nargs);
} chan_keyword;

#define MAX_BACKOFF SL_ARRAY_LEN(((sl_channel *)0)->backoff)
#define MAX_NOTICES SL_ARRAY_LEN(((sl_channel *)0)->notices)
#define DEFAULT_NOTIFY_CHANNEL "process"

static void cnf_error(cnf_parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cnf_error(cnf_parser *p, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conf_verror(p->errs, p->file, line, fmt, ap);
    va_end(ap);
    p->nerr++;
}

enum channel_type conf_channel_type(const char *name)
{
    if (str_ieq(name, "l")) return CHAN_LOCAL;
    if (str_has_prefix_ci(name, "tcp_")) return CHAN_SMTP;
    if (str_has_prefix_ci(name, "lmtp")) return CHAN_LMTP;
    if (str_has_prefix_ci(name, "process")) return CHAN_PROCESS;
    if (str_has_prefix_ci(name, "bitbucket")) return CHAN_BITBUCKET;
    if (str_has_prefix_ci(name, "hold")) return CHAN_HOLD;
    return CHAN_OTHER;
}

static void channel_free(sl_channel *ch)
{
    free(ch->name);
    sv_free(&ch->hosts);
    free(ch->daemon);
    free(ch->pool);
    free(ch->notificationchannel);
    free(ch->dispositionchannel);
    free(ch->lastresort);
    free(ch->saslswitchchannel);
    free(ch->interface_address);
    for (size_t i = 0; i < SL_SCANNERS; i++) free(ch->src_scan[i]), free(ch->dst_scan[i]);
    free(ch->fileinto);
    sv_free(&ch->nosolicit);
    memset(ch, 0, sizeof *ch);
}

void conf_sluice_cnf_free(sl_conf *c)
{
    for (size_t i = 0; i < c->n_rules; i++) {
        free(c->rules[i].pattern);
        free(c->rules[i].tmpl);
    }
    free(c->rules);
    c->rules = NULL;
    c->n_rules = 0;
    for (size_t i = 0; i < c->n_channels; i++) channel_free(&c->channels[i]);
    free(c->channels);
    c->channels = NULL;
    c->n_channels = 0;
}

/* number_arg - a keyword's numeric argument in [min,max]; false after recording an error. */
static bool number_arg(cnf_parser *p, int line, const char *kw, const char *arg, unsigned min, unsigned max,
                       unsigned *out)
{
    uint64_t v;
    if (parse_uint(arg, min, max, &v) != 0) {
        cnf_error(p, line, "channel keyword '%s': bad value '%s' (expected %u..%u)", kw, arg, min, max);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

/* unquote_dup - a copy of a "quoted" argument without its quotes; of unquoted text as it is. Caller frees. */
static char *unquote_dup(const char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') return xstrndup(s + 1, n - 2);
    return xstrdup(s);
}

/* host_arg_ok - a host name (letters, digits, '-', '_', dot-separated labels) or a domain literal [..]. */
static bool host_arg_ok(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (n == 0 || n > 253) return false;
    if (s[0] == '[') return n > 2 && s[n - 1] == ']' && strcspn(s + 1, "[] \t") == n - 2;
    for (; *s; s++) {
        if (*s == '.') {
            if (label == 0) return false;
            label = 0;
        } else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
                   *s == '_') {
            if (++label > 63) return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* name_arg_ok - a channel or pool name: no blanks, quotes, brackets, '=' or '/' (names become paths). */
static bool name_arg_ok(const char *s)
{
    return *s && strcspn(s, " \t\"[]=/") == strlen(s);
}

/* host_arg - store a HOST argument (lower case) in *field; false after recording an error. */
static bool host_arg(cnf_parser *p, int line, const char *kw, const char *arg, char **field)
{
    if (!host_arg_ok(arg)) {
        cnf_error(p, line, "channel keyword '%s': bad value '%s' (expected a host name)", kw, arg);
        return false;
    }
    free(*field);
    *field = str_lower(xstrdup(arg));
    return true;
}

/* name_arg - store a channel or pool NAME argument in *field (lower case when lower). */
static bool name_arg(cnf_parser *p, int line, const char *kw, const char *arg, bool lower, char **field)
{
    if (!name_arg_ok(arg)) {
        cnf_error(p, line, "channel keyword '%s': bad value '%s' (expected a name)", kw, arg);
        return false;
    }
    free(*field);
    *field = xstrdup(arg);
    if (lower) str_lower(*field);
    return true;
}

static void kw_smtp(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)kw, (void)args, (void)nargs;
    p->cur.smtp = true;
}

static void kw_lmtp(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)kw, (void)args, (void)nargs;
    p->cur.lmtp = true;
}

/* kw_mx - "mx" / "nomx". */
static void kw_mx(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)args, (void)nargs;
    p->cur.mx = str_ieq(kw, "mx");
    p->mx_set = true;
}

/* kw_addrmode - "single_sys" / "single" / "multiple". */
static void kw_addrmode(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)args, (void)nargs;
    p->cur.addrmode = str_ieq(kw, "single_sys") ? CHAN_SINGLE_SYS : str_ieq(kw, "single") ? CHAN_SINGLE : CHAN_MULTIPLE;
}

/* kw_remotehost - "remotehost" / "noremotehost". */
static void kw_remotehost(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)args, (void)nargs;
    p->cur.remotehost = str_ieq(kw, "remotehost");
}

/* kw_inner - "inner" / "noinner" (default): complete header addresses in message/rfc822 parts too. */
static void kw_inner(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)args, (void)nargs;
    p->cur.inner = str_ieq(kw, "inner");
}

static void kw_loopcheck(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)kw, (void)args, (void)nargs;
    p->cur.loopcheck = true;
}

static void kw_selfmx(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)kw, (void)args, (void)nargs;
    p->cur.allow_self_mx = true;
}

/* kw_chunking - "chunking" / "nochunking". */
static void kw_chunking(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)args, (void)nargs;
    p->cur.chunking = str_ieq(kw, "chunking");
}

/* kw_rules - "rules" / "norules". */
static void kw_rules(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)args, (void)nargs;
    p->cur.rules = str_ieq(kw, "rules");
}

/* kw_tls - "maytls" / "musttls" / "notls". */
static void kw_tls(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)args, (void)nargs;
    p->cur.tls = str_ieq(kw, "maytls") ? CHAN_TLS_MAY : str_ieq(kw, "musttls") ? CHAN_TLS_MUST : CHAN_TLS_NO;
    p->tls_set = true;
}

/* kw_switch - "switchchannel" / "noswitchchannel", "allowswitchchannel" / "disallowswitchchannel". */
static void kw_switch(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)args, (void)nargs;
    if (str_ieq(kw, "switchchannel")) p->cur.switchchannel = true;
    else if (str_ieq(kw, "noswitchchannel")) p->cur.switchchannel = false;
    else p->cur.allowswitchchannel = str_ieq(kw, "allowswitchchannel");
}

/* kw_authrewrite - "authrewrite N": 0 off, 1 a Sender: header naming the authenticated user. */
static void kw_authrewrite(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)nargs;
    number_arg(p, line, kw, args[0], 0, 1, &p->cur.authrewrite);
}

/* kw_sendpost - "errsendpost" / "nosendpost". */
static void kw_sendpost(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)line, (void)args, (void)nargs;
    p->cur.errsendpost = str_ieq(kw, "errsendpost");
}

static void kw_daemon(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)nargs;
    host_arg(p, line, kw, args[0], &p->cur.daemon);
}

static void kw_interface(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)nargs;
    unsigned char buf[16];
    if (inet_pton(AF_INET, args[0], buf) != 1 && inet_pton(AF_INET6, args[0], buf) != 1) {
        cnf_error(p, line, "channel keyword '%s': bad value '%s' (expected an IPv4 or IPv6 address)", kw, args[0]);
        return;
    }
    free(p->cur.interface_address);
    p->cur.interface_address = xstrdup(args[0]);
}

static void kw_saslswitch(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)nargs;
    name_arg(p, line, kw, args[0], true, &p->cur.saslswitchchannel);
}

static void kw_lastresort(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)nargs;
    host_arg(p, line, kw, args[0], &p->cur.lastresort);
}

static void kw_port(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)nargs;
    number_arg(p, line, kw, args[0], 1, 65535, &p->cur.port);
}

static void kw_subdirs(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)nargs;
    number_arg(p, line, kw, args[0], 1, 1000, &p->cur.subdirs);
}

static void kw_maxjobs(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)nargs;
    number_arg(p, line, kw, args[0], 1, 1000, &p->cur.maxjobs);
}

/* kw_pool - "pool NAME": whether the pool exists is checked once job_controller.cnf is read. */
static void kw_pool(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)nargs;
    name_arg(p, line, kw, args[0], false, &p->cur.pool);
}

/* kw_notify_channel - "notificationchannel CH" / "dispositionchannel CH" (checked after the last block). */
static void kw_notify_channel(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)nargs;
    char **field = str_ieq(kw, "notificationchannel") ? &p->cur.notificationchannel : &p->cur.dispositionchannel;
    name_arg(p, line, kw, args[0], true, field);
}

/* kw_backoff - "backoff D1 ... D8": ISO 8601 durations ("PT4H", quoted or not), each at least 1s. */
static void kw_backoff(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    int64_t v[MAX_BACKOFF];
    if (nargs > MAX_BACKOFF) {
        cnf_error(p, line, "channel keyword '%s': %zu durations given (at most %zu)", kw, nargs, MAX_BACKOFF);
        return;
    }
    for (size_t i = 0; i < nargs; i++) {
        char *s = unquote_dup(args[i]);
        bool ok = (*s == 'P' || *s == 'p') && parse_duration(s, &v[i]) == 0 && v[i] >= 1;
        free(s);
        if (!ok) {
            cnf_error(p, line, "channel keyword '%s': bad value '%s' (expected an ISO 8601 duration such as \"PT4H\")",
                      kw, args[i]);
            return;
        }
    }
    memcpy(p->cur.backoff, v, nargs * sizeof v[0]);
    p->cur.n_backoff = nargs;
}

/* notice_age - a notices age: a plain number of days, or an ISO 8601 duration; -1 if bad. */
static int64_t notice_age(const char *s)
{
    int64_t v;
    uint64_t days;
    if (*s == 'P' || *s == 'p') return parse_duration(s, &v) == 0 && v >= 1 ? v : -1;
    if (parse_uint(s, 1, 3650, &days) == 0) return (int64_t)days * 86400;
    return -1;
}

/* kw_notices - "notices A1 ... A5": increasing ages (days, or ISO 8601 durations). */
static void kw_notices(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    int64_t v[MAX_NOTICES];
    if (nargs > MAX_NOTICES) {
        cnf_error(p, line, "channel keyword '%s': %zu ages given (at most %zu)", kw, nargs, MAX_NOTICES);
        return;
    }
    for (size_t i = 0; i < nargs; i++) {
        char *s = unquote_dup(args[i]);
        v[i] = notice_age(s);
        free(s);
        if (v[i] < 0) {
            cnf_error(p, line,
                      "channel keyword '%s': bad value '%s' (expected days 1..3650 or an ISO 8601 duration such as "
                      "\"PT10S\")",
                      kw, args[i]);
            return;
        }
        if (i > 0 && v[i] <= v[i - 1]) {
            cnf_error(p, line, "channel keyword '%s': ages must increase ('%s' after '%s')", kw, args[i], args[i - 1]);
            return;
        }
    }
    memcpy(p->cur.notices, v, nargs * sizeof v[0]);
    p->cur.n_notices = nargs;
}

/* kw_spamfilter - "sourcespamfilterN", "destinationspamfilterN" (N = 1..8), each also with
 * "optin STRING": the channel's mail (source) or recipients (destination) go through scanner N,
 * with that opt-in string. */
static void kw_spamfilter(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    bool src = str_has_prefix_ci(kw, "source");
    const char *rest = kw + strlen(src ? "sourcespamfilter" : "destinationspamfilter");
    unsigned n = (unsigned)(rest[0] - '0');
    char **field = src ? &p->cur.src_scan[n - 1] : &p->cur.dst_scan[n - 1];
    free(*field);
    *field = nargs ? unquote_dup(args[0]) : xstrdup("");
    if (nargs && (!**field || strlen(*field) > 256)) {
        cnf_error(p, line, "channel keyword '%s': bad opt-in string '%s'", kw, args[0]);
        free(*field);
        *field = NULL;
    }
}

/* kw_fileinto - "fileinto TEMPLATE": where an LMTP channel delivers a Sieve fileinto folder. */
static void kw_fileinto(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)nargs;
    char *t = unquote_dup(args[0]);
    if (!strstr(t, "$S") || !strchr(t, '@')) {
        cnf_error(p, line, "channel keyword '%s': bad value '%s' (expected an address template with $S, such as $U+$S@$D)",
                  kw, args[0]);
        free(t);
        return;
    }
    free(p->cur.fileinto);
    p->cur.fileinto = t;
}

/* nosolicit_word_ok - an RFC 3865 solicitation keyword, or a glob of one: ALPHA / DIGIT / "-" / "." / ":"
 * ("*" and "?" as wildcards). */
static bool nosolicit_word_ok(const char *w)
{
    if (!*w || strlen(w) > 256) return false;
    for (const char *c = w; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("-.:*?", *c)) return false;
    return true;
}

/* kw_nosolicit - "sourcenosolicit LIST": the comma-separated solicitation keywords refused on this source channel. */
static void kw_nosolicit(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)nargs;
    char *list = unquote_dup(args[0]);
    sv_free(&p->cur.nosolicit);
    char *save = NULL;
    for (char *w = strtok_r(list, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        if (!nosolicit_word_ok(w)) {
            cnf_error(p, line, "channel keyword '%s': bad solicitation keyword '%s'", kw, w);
            continue;
        }
        sv_push(&p->cur.nosolicit, w);
    }
    if (!p->cur.nosolicit.n) cnf_error(p, line, "channel keyword '%s': no solicitation keyword in '%s'", kw, args[0]);
    free(list);
}

/* kw_unsupported - a Messaging Server keyword Sluice knows but does not implement: refused by name. */
static void kw_unsupported(cnf_parser *p, int line, const char *kw, char **args, size_t nargs)
{
    (void)args, (void)nargs;
    cnf_error(p, line, "channel keyword '%s' (message fragmentation, RFC 2046 message/partial) is not supported by Sluice",
              kw);
}

static const chan_keyword chan_keywords[] = {
    {"smtp", KW_FLAG, kw_smtp},
    {"lmtp", KW_FLAG, kw_lmtp},
    {"mx", KW_FLAG, kw_mx},
    {"nomx", KW_FLAG, kw_mx},
    {"daemon", KW_ONE, kw_daemon},
    {"port", KW_ONE, kw_port},
    {"single_sys", KW_FLAG, kw_addrmode},
    {"single", KW_FLAG, kw_addrmode},
    {"multiple", KW_FLAG, kw_addrmode},
    {"remotehost", KW_FLAG, kw_remotehost},
    {"noremotehost", KW_FLAG, kw_remotehost},
    {"inner", KW_FLAG, kw_inner},
    {"noinner", KW_FLAG, kw_inner},
    {"subdirs", KW_ONE, kw_subdirs},
    {"maxjobs", KW_ONE, kw_maxjobs},
    {"pool", KW_ONE, kw_pool},
    {"backoff", KW_LIST, kw_backoff},
    {"notices", KW_LIST, kw_notices},
    {"loopcheck", KW_FLAG, kw_loopcheck},
    {"selfmx", KW_FLAG, kw_selfmx},
    {"chunking", KW_FLAG, kw_chunking},
    {"nochunking", KW_FLAG, kw_chunking},
    {"notificationchannel", KW_ONE, kw_notify_channel},
    {"dispositionchannel", KW_ONE, kw_notify_channel},
    {"lastresort", KW_ONE, kw_lastresort},
    {"saslswitchchannel", KW_ONE, kw_saslswitch},
    {"interfaceaddress", KW_ONE, kw_interface},
    {"rules", KW_FLAG, kw_rules},
    {"norules", KW_FLAG, kw_rules},
    {"maytls", KW_FLAG, kw_tls},
    {"musttls", KW_FLAG, kw_tls},
    {"notls", KW_FLAG, kw_tls},
    {"errsendpost", KW_FLAG, kw_sendpost},
    {"nosendpost", KW_FLAG, kw_sendpost},
    {"fileinto", KW_ONE, kw_fileinto},
    {"switchchannel", KW_FLAG, kw_switch},
    {"noswitchchannel", KW_FLAG, kw_switch},
    {"allowswitchchannel", KW_FLAG, kw_switch},
    {"disallowswitchchannel", KW_FLAG, kw_switch},
    {"authrewrite", KW_ONE, kw_authrewrite},
    {"sourcenosolicit", KW_ONE, kw_nosolicit},
    {"maxblocks", KW_ONE, kw_unsupported},
    {"maxlines", KW_ONE, kw_unsupported},
};

/* The scanner keywords carry their scanner's number in the name. */
static const chan_keyword scan_flag = {"spamfilter", KW_FLAG, kw_spamfilter};
static const chan_keyword scan_optin = {"spamfilteroptin", KW_ONE, kw_spamfilter};

/* scan_keyword - "sourcespamfilterN[optin]" / "destinationspamfilterN[optin]", N = 1..8, or NULL. */
static const chan_keyword *scan_keyword(const char *name)
{
    const char *rest = str_has_prefix_ci(name, "sourcespamfilter")        ? name + 16
                       : str_has_prefix_ci(name, "destinationspamfilter") ? name + 21
                                                                          : NULL;
    if (!rest || rest[0] < '1' || rest[0] > '0' + SL_SCANNERS) return NULL;
    if (rest[1] == '\0') return &scan_flag;
    return str_ieq(rest + 1, "optin") ? &scan_optin : NULL;
}

static const chan_keyword *keyword_find(const char *name)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(chan_keywords); i++)
        if (str_ieq(chan_keywords[i].name, name)) return &chan_keywords[i];
    return scan_keyword(name);
}

/* channel_builtin - the built-in defaults, some of which depend on the channel's type. */
static void channel_builtin(sl_channel *ch)
{
    ch->port = 25;
    ch->subdirs = 1;
    ch->maxjobs = 10;
    ch->mx = ch->type == CHAN_SMTP;
    ch->lmtp = ch->type == CHAN_LMTP;
    ch->addrmode = CHAN_SINGLE_SYS;
    ch->rules = true;
    ch->tls = ch->type == CHAN_SMTP ? CHAN_TLS_MAY : CHAN_TLS_NO;
    ch->errsendpost = true;
    ch->notificationchannel = xstrdup(DEFAULT_NOTIFY_CHANNEL);
    ch->dispositionchannel = xstrdup(DEFAULT_NOTIFY_CHANNEL);
}

/* channel_inherit - copy what the "defaults" block d says into ch; type-dependent values only if d said them. */
static void channel_inherit(cnf_parser *p, sl_channel *ch, const sl_channel *d)
{
    ch->smtp = d->smtp;
    ch->lmtp = ch->lmtp || d->lmtp;
    if (p->defaults_mx >= 0) ch->mx = p->defaults_mx != 0;
    if (p->defaults_tls >= 0) ch->tls = (enum chan_tls)p->defaults_tls;
    ch->daemon = xstrdup(d->daemon);
    ch->port = d->port;
    ch->addrmode = d->addrmode;
    ch->remotehost = d->remotehost;
    ch->inner = d->inner;
    ch->subdirs = d->subdirs;
    ch->maxjobs = d->maxjobs;
    ch->pool = xstrdup(d->pool);
    memcpy(ch->backoff, d->backoff, sizeof ch->backoff);
    ch->n_backoff = d->n_backoff;
    memcpy(ch->notices, d->notices, sizeof ch->notices);
    ch->n_notices = d->n_notices;
    ch->loopcheck = d->loopcheck;
    ch->allow_self_mx = d->allow_self_mx;
    ch->chunking = d->chunking;
    free(ch->notificationchannel);
    ch->notificationchannel = xstrdup(d->notificationchannel);
    free(ch->dispositionchannel);
    ch->dispositionchannel = xstrdup(d->dispositionchannel);
    ch->lastresort = xstrdup(d->lastresort);
    ch->saslswitchchannel = xstrdup(d->saslswitchchannel);
    ch->interface_address = xstrdup(d->interface_address);
    for (size_t i = 0; i < SL_SCANNERS; i++) {
        ch->src_scan[i] = xstrdup(d->src_scan[i]);
        ch->dst_scan[i] = xstrdup(d->dst_scan[i]);
    }
    ch->fileinto = xstrdup(d->fileinto);
    ch->switchchannel = d->switchchannel;
    ch->allowswitchchannel = d->allowswitchchannel;
    ch->authrewrite = d->authrewrite;
    for (size_t i = 0; i < d->nosolicit.n; i++) sv_push(&ch->nosolicit, d->nosolicit.v[i]);
    ch->rules = d->rules;
    ch->errsendpost = d->errsendpost;
}

/* channel_init - a new channel with the built-in defaults, overridden by the "defaults" block. */
static void channel_init(cnf_parser *p, const char *name, int line)
{
    sl_channel *ch = &p->cur;
    memset(ch, 0, sizeof *ch);
    ch->name = str_lower(xstrdup(name));
    ch->type = conf_channel_type(name);
    ch->line = line;
    channel_builtin(ch);
    if (p->have_defaults) channel_inherit(p, ch, &p->c->channels[0]);
}

/* apply_keywords - the keywords tok[1..] of a block's first line. */
static void apply_keywords(cnf_parser *p, int line, strvec *tok)
{
    for (size_t i = 1; i < tok->n; i++) {
        const chan_keyword *kw = keyword_find(tok->v[i]);
        if (!kw) {
            cnf_error(p, line, "unknown channel keyword '%s'", tok->v[i]);
            /* a number can never be a keyword: it was the unknown keyword's argument */
            uint64_t ignored;
            if (i + 1 < tok->n && parse_uint(tok->v[i + 1], 0, UINT64_MAX, &ignored) == 0) i++;
            continue;
        }
        /* KW_ONE takes the next word; KW_LIST every word up to the next keyword */
        size_t nargs = 0;
        if (kw->args == KW_ONE) nargs = i + 1 < tok->n ? 1 : 0;
        if (kw->args == KW_LIST)
            while (i + 1 + nargs < tok->n && !keyword_find(tok->v[i + 1 + nargs])) nargs++;
        if (kw->args != KW_FLAG && nargs == 0)
            cnf_error(p, line, "channel keyword '%s' needs an argument", kw->name);
        else
            kw->apply(p, line, kw == &scan_flag || kw == &scan_optin ? tok->v[i] : kw->name, tok->v + i + 1, nargs);
        i += nargs;
    }
}

/* block_open - "name keyword...": start a channel block. */
static void block_open(cnf_parser *p, int line, const char *text)
{
    strvec tok = {0};
    str_split_ws(text, &tok);
    bool is_defaults = str_ieq(tok.v[0], "defaults");
    const sl_channel *old = conf_channel_by_name(p->c, tok.v[0]);
    channel_init(p, tok.v[0], line);
    p->in_block = true;
    p->discard = false;
    p->mx_set = p->tls_set = false;
    p->host_lines = 0;
    if (is_defaults && p->nblocks > 0) {
        cnf_error(p, line, "'defaults' must be the first channel block");
        p->discard = true;
    } else if (old) {
        cnf_error(p, line, "duplicate channel '%s' (first at line %d)", p->cur.name, old->line);
        p->discard = true;
    } else if (!name_arg_ok(tok.v[0])) {
        cnf_error(p, line, "bad channel name '%s'", tok.v[0]);
        p->discard = true;
    }
    p->nblocks++;
    apply_keywords(p, line, &tok);
    sv_free(&tok);
}

/* block_host - an official or alias host name line of the current block. */
static void block_host(cnf_parser *p, int line, const char *text)
{
    strvec tok = {0};
    str_split_ws(text, &tok);
    p->host_lines++;
    if (str_ieq(p->cur.name, "defaults")) {
        cnf_error(p, line, "'defaults' takes no host names");
    } else if (tok.n != 1) {
        cnf_error(p, line, "a host line holds one host name, got '%s'", text);
    } else {
        char *host = str_lower(xstrdup(tok.v[0]));
        const sl_channel *owner = conf_channel_by_host(p->c, host);
        if (owner || sv_contains_ci(&p->cur.hosts, host)) {
            cnf_error(p, line, "host name '%s' already belongs to channel '%s'", host,
                      owner ? owner->name : p->cur.name);
            free(host);
        } else {
            sv_push_owned(&p->cur.hosts, host);
        }
    }
    sv_free(&tok);
}

/* block_close - check the block just read and keep it. */
static void block_close(cnf_parser *p)
{
    if (!p->in_block) return;
    p->in_block = false;
    bool is_defaults = str_ieq(p->cur.name, "defaults");
    if (!is_defaults && p->host_lines == 0 && !p->discard) {
        cnf_error(p, p->cur.line, "channel '%s' has no host name (expected on the line after the channel name)",
                  p->cur.name);
        p->discard = true;
    }
    if (p->discard || (!is_defaults && p->cur.hosts.n == 0)) {
        channel_free(&p->cur);
        return;
    }
    if (is_defaults) {
        p->have_defaults = true;
        p->defaults_mx = p->mx_set ? p->cur.mx : -1;
        p->defaults_tls = p->tls_set ? (int)p->cur.tls : -1;
    }
    p->c->channels = xrealloc(p->c->channels, (p->c->n_channels + 1) * sizeof *p->c->channels);
    p->c->channels[p->c->n_channels++] = p->cur;
    memset(&p->cur, 0, sizeof p->cur);
}

/* parse_rule - "pattern template". */
static void parse_rule(cnf_parser *p, int line, const char *text)
{
    strvec tok = {0};
    str_split_ws(text, &tok);
    if (tok.n > 2 && strstr(text, "$?")) {
        /* "$?error text" may contain blanks: the template is the rest of the line */
        const char *rest = text + strcspn(text, " \t");
        rest += strspn(rest, " \t");
        free(tok.v[1]);
        tok.v[1] = xstrdup(rest);
        for (size_t i = 2; i < tok.n; i++) free(tok.v[i]);
        tok.n = 2;
    }
    if (tok.n == 1) {
        cnf_error(p, line, "rule without template");
    } else if (tok.n > 2) {
        cnf_error(p, line, "unexpected text after the template: '%s'", tok.v[2]);
    } else { /* the template itself is checked by the rewrite engine (rewrite_rules_check) */
        p->c->rules = xrealloc(p->c->rules, (p->c->n_rules + 1) * sizeof *p->c->rules);
        sl_rule *r = &p->c->rules[p->c->n_rules++];
        r->pattern = str_lower(xstrdup(tok.v[0]));
        r->tmpl = xstrdup(tok.v[1]);
        r->line = line;
    }
    sv_free(&tok);
}

/* parse_line - one line of the file, by section. */
static void parse_line(cnf_parser *p, int lineno, char *line)
{
    char *t = str_trim(line);
    if (p->in_rules) {
        if (!*t) p->in_rules = false; /* the first blank line ends the rules */
        else parse_rule(p, lineno, t);
    } else if (!*t) {
        block_close(p);
    } else if (!p->in_block) {
        block_open(p, lineno, t);
    } else {
        block_host(p, lineno, t);
    }
}

/* check_notify_target - ch's notification or disposition channel value v must be a channel. A value
 * inherited from "defaults" is checked once, on the defaults line; the default "process" needs no
 * channel of that name (notifications are then rewritten as if they came from a process channel). */
static void check_notify_target(cnf_parser *p, const sl_channel *ch, const sl_channel *d, const char *kw,
                                const char *v, const char *dv)
{
    if (d && ch != d && str_ieq(v, dv)) return;
    const sl_channel *target = conf_channel_by_name(p->c, v);
    if (target && !str_ieq(target->name, "defaults")) return;
    if (!target && str_ieq(v, DEFAULT_NOTIFY_CHANNEL)) return;
    cnf_error(p, ch->line, "channel '%s': %s '%s' is not a channel", ch->name, kw, v);
}

/* check_notify_channels - every notificationchannel and dispositionchannel names a channel. */
static void check_notify_channels(cnf_parser *p)
{
    const sl_conf *c = p->c;
    const sl_channel *d = p->have_defaults ? &c->channels[0] : NULL;
    for (size_t i = 0; i < c->n_channels; i++) {
        const sl_channel *ch = &c->channels[i];
        check_notify_target(p, ch, d, "notificationchannel", ch->notificationchannel,
                            d ? d->notificationchannel : NULL);
        check_notify_target(p, ch, d, "dispositionchannel", ch->dispositionchannel,
                            d ? d->dispositionchannel : NULL);
    }
}

int conf_parse_sluice_cnf(const char *file, const char *text, sl_conf *c, conf_errors *errs)
{
    cnf_parser p;
    memset(&p, 0, sizeof p);
    p.file = file;
    p.c = c;
    p.errs = errs;
    p.in_rules = true;
    p.defaults_mx = -1;
    p.defaults_tls = -1;
    p.have_defaults = c->n_channels > 0 && str_ieq(c->channels[0].name, "defaults");
    char *copy = xstrdup(text), *cursor = copy, *line;
    int lineno = 0;
    while ((line = conf_next_line(&cursor)) != NULL) {
        lineno++;
        if (conf_line_is_comment(line, "!")) continue;
        parse_line(&p, lineno, line);
    }
    block_close(&p);
    /* references between channels only mean something once every block was read cleanly */
    if (p.nerr == 0) check_notify_channels(&p);
    size_t real_channels = c->n_channels - (c->n_channels && str_ieq(c->channels[0].name, "defaults"));
    if (real_channels == 0 && p.nerr == 0)
        cnf_error(&p, 0, "no channel defined (channel blocks follow the first blank line)");
    free(copy);
    return p.nerr;
}
