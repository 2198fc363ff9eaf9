/*
 * sluice_cnf.c - sluice.cnf: rewrite rules ("pattern template", one per line) up to the first
 * blank line, then channel blocks separated by blank lines. A block is "name keyword..." followed
 * by the channel's official host name and its alias host names, one per line; a first block named
 * "defaults" gives the initial keyword values of every later channel. Templates are checked with
 * the rewrite engine's own parser so that a bad rule fails at load, not on the first message.
 * Called while loading a configuration only.
 */
#include "conf/conf.h"

#include <stdlib.h>
#include <string.h>

#include "rewrite/rewrite.h"

/* Parser state: the block being read (added to c on close) and what "defaults" said. */
typedef struct {
    const char *file;
    sl_conf *c;
    conf_errors *errs;
    int nerr;
    bool in_rules;
    bool in_block, discard, mx_set; /* discard: a bad or duplicate block, read but not kept */
    sl_channel cur;
    size_t host_lines; /* host lines of the current block, good or bad */
    size_t nblocks;
    bool have_defaults;
    int defaults_mx; /* -1: "defaults" said neither mx nor nomx */
} cnf_parser;

/* A channel keyword: its name, whether it takes an argument, and what it does. */
typedef struct {
    const char *name;
    bool takes_arg;
    void (*apply)(cnf_parser *p, int line, const char *arg);
} chan_keyword;

static void cnf_error(cnf_parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cnf_error(cnf_parser *p, int line, const char *fmt, ...)
{
    strbuf sb;
    va_list ap;
    sb_init(&sb);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    conf_error(p->errs, p->file, line, "%s", sb.data);
    sb_free(&sb);
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

static void kw_smtp(cnf_parser *p, int line, const char *arg)
{
    (void)line, (void)arg;
    p->cur.smtp = true;
}

static void kw_mx(cnf_parser *p, int line, const char *arg)
{
    (void)line, (void)arg;
    p->cur.mx = true;
    p->mx_set = true;
}

static void kw_nomx(cnf_parser *p, int line, const char *arg)
{
    (void)line, (void)arg;
    p->cur.mx = false;
    p->mx_set = true;
}

static void kw_daemon(cnf_parser *p, int line, const char *arg)
{
    (void)line;
    free(p->cur.daemon);
    p->cur.daemon = str_lower(xstrdup(arg));
}

static void kw_port(cnf_parser *p, int line, const char *arg)
{
    number_arg(p, line, "port", arg, 1, 65535, &p->cur.port);
}

static void kw_subdirs(cnf_parser *p, int line, const char *arg)
{
    number_arg(p, line, "subdirs", arg, 1, 1000, &p->cur.subdirs);
}

static void kw_maxjobs(cnf_parser *p, int line, const char *arg)
{
    number_arg(p, line, "maxjobs", arg, 1, 1000, &p->cur.maxjobs);
}

static const chan_keyword chan_keywords[] = {
    {"smtp", false, kw_smtp},       {"mx", false, kw_mx},         {"nomx", false, kw_nomx},
    {"daemon", true, kw_daemon},    {"port", true, kw_port},      {"subdirs", true, kw_subdirs},
    {"maxjobs", true, kw_maxjobs},
};

static const chan_keyword *keyword_find(const char *name)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(chan_keywords); i++)
        if (str_ieq(chan_keywords[i].name, name)) return &chan_keywords[i];
    return NULL;
}

/* channel_init - a new channel with the built-in defaults, overridden by the "defaults" block. */
static void channel_init(cnf_parser *p, const char *name, int line)
{
    sl_channel *ch = &p->cur;
    memset(ch, 0, sizeof *ch);
    ch->name = str_lower(xstrdup(name));
    ch->type = conf_channel_type(name);
    ch->line = line;
    ch->port = 25;
    ch->subdirs = 1;
    ch->maxjobs = 10;
    ch->mx = ch->type == CHAN_SMTP;
    if (p->have_defaults) {
        const sl_channel *d = &p->c->channels[0];
        ch->smtp = d->smtp;
        ch->daemon = xstrdup(d->daemon);
        ch->port = d->port;
        ch->subdirs = d->subdirs;
        ch->maxjobs = d->maxjobs;
        if (p->defaults_mx >= 0) ch->mx = p->defaults_mx != 0;
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
    p->mx_set = false;
    p->host_lines = 0;
    if (is_defaults && p->nblocks > 0) {
        cnf_error(p, line, "'defaults' must be the first channel block");
        p->discard = true;
    } else if (old) {
        cnf_error(p, line, "duplicate channel '%s' (first at line %d)", p->cur.name, old->line);
        p->discard = true;
    }
    p->nblocks++;
    for (size_t i = 1; i < tok.n; i++) {
        const chan_keyword *kw = keyword_find(tok.v[i]);
        if (!kw) {
            cnf_error(p, line, "unknown channel keyword '%s'", tok.v[i]);
            /* a number can never be a keyword: it was the unknown keyword's argument */
            uint64_t ignored;
            if (i + 1 < tok.n && parse_uint(tok.v[i + 1], 0, UINT64_MAX, &ignored) == 0) i++;
        } else if (kw->takes_arg && i + 1 >= tok.n) {
            cnf_error(p, line, "channel keyword '%s' needs an argument", kw->name);
        } else {
            kw->apply(p, line, kw->takes_arg ? tok.v[i + 1] : NULL);
            if (kw->takes_arg) i++;
        }
    }
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
    }
    p->c->channels = xrealloc(p->c->channels, (p->c->n_channels + 1) * sizeof *p->c->channels);
    p->c->channels[p->c->n_channels++] = p->cur;
    memset(&p->cur, 0, sizeof p->cur);
}

/* parse_rule - "pattern template". */
static void parse_rule(cnf_parser *p, int line, const char *text)
{
    strvec tok = {0};
    char why[256];
    str_split_ws(text, &tok);
    if (tok.n == 1) {
        cnf_error(p, line, "rule without template");
    } else if (tok.n > 2) {
        cnf_error(p, line, "unexpected text after the template: '%s'", tok.v[2]);
    } else if (rewrite_template_check(tok.v[1], why, sizeof why) != 0) {
        cnf_error(p, line, "bad template '%s': %s", tok.v[1], why);
    } else {
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

int conf_parse_sluice_cnf(const char *file, const char *text, sl_conf *c, conf_errors *errs)
{
    cnf_parser p;
    memset(&p, 0, sizeof p);
    p.file = file;
    p.c = c;
    p.errs = errs;
    p.in_rules = true;
    p.defaults_mx = -1;
    p.have_defaults = c->n_channels > 0 && str_ieq(c->channels[0].name, "defaults");
    char *copy = xstrdup(text), *cursor = copy, *line;
    int lineno = 0;
    while ((line = conf_next_line(&cursor)) != NULL) {
        lineno++;
        if (conf_line_is_comment(line, "!")) continue;
        parse_line(&p, lineno, line);
    }
    block_close(&p);
    size_t real_channels = c->n_channels - (c->n_channels && str_ieq(c->channels[0].name, "defaults"));
    if (real_channels == 0 && p.nerr == 0)
        cnf_error(&p, 0, "no channel defined (channel blocks follow the first blank line)");
    free(copy);
    return p.nerr;
}
