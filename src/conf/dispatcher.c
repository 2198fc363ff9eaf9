/*
 * dispatcher.c - dispatcher.cnf: listening services. Each "[SERVICE=NAME]" section lists its
 * ports (PORT=), the addresses to bind (INTERFACE_ADDRESS=, default 0.0.0.0) and the source
 * channel of the mail it receives (PARAMETER=CHANNEL=name, default tcp_local). Whether that
 * channel exists is checked by conf_load once sluice.cnf is parsed. Called while loading a
 * configuration only.
 */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_ADDRESS "0.0.0.0"
#define DEFAULT_CHANNEL "tcp_local"

/* Parser state: the section being read (added to c on close) and the error count. */
typedef struct {
    const char *file;
    sl_conf *c;
    conf_errors *errs;
    sl_service cur;
    bool in_section, discard, seen_section; /* discard: a bad or duplicate section, read but not kept */
    int nerr;
} disp_parser;

/* disp_error - record an error at line and count it. */
static void disp_error(disp_parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void disp_error(disp_parser *p, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conf_verror(p->errs, p->file, line, fmt, ap);
    va_end(ap);
    p->nerr++;
}

static void service_free(sl_service *s)
{
    free(s->name);
    sv_free(&s->ports);
    sv_free(&s->addresses);
    sv_free(&s->dnsbl);
    sv_free(&s->dnswl);
    free(s->dnsbl_text);
    free(s->channel);
    memset(s, 0, sizeof *s);
}

void conf_dispatcher_free(sl_conf *c)
{
    for (size_t i = 0; i < c->n_services; i++) service_free(&c->services[i]);
    free(c->services);
    c->services = NULL;
    c->n_services = 0;
}

static const sl_service *service_find(const sl_conf *c, const char *name)
{
    for (size_t i = 0; i < c->n_services; i++)
        if (str_ieq(c->services[i].name, name)) return &c->services[i];
    return NULL;
}

/* section_close - check the section just read, fill in defaults and keep it. */
static void section_close(disp_parser *p)
{
    sl_service *s = &p->cur;
    if (!p->in_section) return;
    p->in_section = false;
    if (!p->discard && s->ports.n == 0) disp_error(p, s->line, "service '%s' has no PORT", s->name);
    if (p->discard || s->ports.n == 0) {
        service_free(s);
        return;
    }
    if (s->addresses.n == 0) sv_push(&s->addresses, DEFAULT_ADDRESS);
    if (!s->channel) s->channel = xstrdup(DEFAULT_CHANNEL);
    p->c->services = xrealloc(p->c->services, (p->c->n_services + 1) * sizeof *p->c->services);
    p->c->services[p->c->n_services++] = *s;
    memset(s, 0, sizeof *s);
}

/* section_open - "[SERVICE=NAME]"; a bad header still opens a (discarded) section so its keys are checked. */
static void section_open(disp_parser *p, int line, char *text)
{
    section_close(p);
    p->seen_section = true;
    p->in_section = true;
    p->discard = true;
    p->cur.line = line;
    p->cur.max_conns = 1000;
    p->cur.max_per_client = 50;
    p->cur.backlog = 511;
    p->cur.dnsbl_code = 554;
    char *kind, *name;
    if (conf_section(text, &kind, &name) < 0) {
        disp_error(p, line, "malformed section header '%s' (expected [SERVICE=NAME])", text);
        return;
    }
    if (!str_ieq(kind, "SERVICE")) {
        disp_error(p, line, "unknown section '[%s=...]' (expected [SERVICE=NAME])", kind);
        return;
    }
    if (!*name || strpbrk(name, " \t[]=")) {
        disp_error(p, line, "bad service name '%s'", name);
        return;
    }
    const sl_service *old = service_find(p->c, name);
    if (old) disp_error(p, line, "duplicate service '%s' (first at line %d)", name, old->line);
    p->discard = old != NULL;
    p->cur.name = xstrdup(name);
}

static void key_port(disp_parser *p, int line, const char *value)
{
    strvec items = {0};
    if (conf_split_list(value, &items) == 0) disp_error(p, line, "PORT: no port given");
    for (size_t i = 0; i < items.n; i++) {
        uint64_t port;
        if (parse_uint(items.v[i], 1, 65535, &port) != 0) {
            disp_error(p, line, "PORT: bad port '%s' (expected 1..65535)", items.v[i]);
            continue;
        }
        char *text = xasprintf("%u", (unsigned)port);
        if (sv_contains_ci(&p->cur.ports, text)) {
            disp_error(p, line, "PORT: duplicate port %s", text);
            free(text);
        } else {
            sv_push_owned(&p->cur.ports, text);
        }
    }
    sv_free(&items);
}

static void key_address(disp_parser *p, int line, const char *value)
{
    strvec items = {0};
    if (conf_split_list(value, &items) == 0) disp_error(p, line, "INTERFACE_ADDRESS: no address given");
    for (size_t i = 0; i < items.n; i++) {
        char *a = items.v[i];
        size_t n = strlen(a);
        char *bare = (a[0] == '[' && n > 2 && a[n - 1] == ']') ? xstrndup(a + 1, n - 2) : xstrdup(a);
        unsigned char buf[16];
        if (inet_pton(AF_INET, bare, buf) == 1 || inet_pton(AF_INET6, bare, buf) == 1)
            sv_push_owned(&p->cur.addresses, bare);
        else {
            disp_error(p, line, "INTERFACE_ADDRESS: bad address '%s' (expected an IPv4 or IPv6 address)", a);
            free(bare);
        }
    }
    sv_free(&items);
}

static void key_parameter(disp_parser *p, int line, char *value)
{
    char *eq = strchr(value, '=');
    if (!eq) {
        disp_error(p, line, "PARAMETER: expected CHANNEL=name, got '%s'", value);
        return;
    }
    *eq = '\0';
    char *name = str_trim(value), *arg = str_trim(eq + 1);
    if (!str_ieq(name, "CHANNEL")) {
        disp_error(p, line, "PARAMETER: unknown parameter '%s' (expected CHANNEL=name)", name);
        return;
    }
    if (!*arg || strpbrk(arg, " \t,")) {
        disp_error(p, line, "PARAMETER: bad channel name '%s'", arg);
        return;
    }
    free(p->cur.channel);
    p->cur.channel = str_lower(xstrdup(arg));
}

static void key_tls(disp_parser *p, int line, const char *value)
{
    static const char *names[] = {"starttls", "required", "implicit", "none"};
    for (size_t i = 0; i < SL_ARRAY_LEN(names); i++)
        if (str_ieq(value, names[i])) {
            p->cur.tls = (enum svc_tls)i;
            p->cur.tls_set = true;
            return;
        }
    disp_error(p, line, "TLS_MODE: bad value '%s' (expected starttls, required, implicit or none)", value);
}

static void key_bool(disp_parser *p, int line, const char *key, const char *value, bool *out)
{
    if (str_ieq(value, "yes") || str_ieq(value, "true") || !strcmp(value, "1")) *out = true;
    else if (str_ieq(value, "no") || str_ieq(value, "false") || !strcmp(value, "0")) *out = false;
    else disp_error(p, line, "%s: bad value '%s' (expected yes or no)", key, value);
}

static void key_uint(disp_parser *p, int line, const char *key, const char *value, uint64_t min, uint64_t max,
                     unsigned *out)
{
    uint64_t v;
    if (parse_uint(value, min, max, &v) != 0)
        disp_error(p, line, "%s: bad value '%s' (expected %llu..%llu)", key, value, (unsigned long long)min,
                   (unsigned long long)max);
    else *out = (unsigned)v;
}

/* key_zones - DNS_VERIFY_DOMAIN / DNS_ALLOW_DOMAIN: one or more DNS zones (commas or blanks). */
static void key_zones(disp_parser *p, int line, const char *key, const char *value, strvec *out)
{
    strvec items = {0};
    conf_split_list(value, &items);
    if (!items.n) disp_error(p, line, "%s: a DNS zone is needed", key);
    for (size_t i = 0; i < items.n; i++) {
        const char *z = items.v[i];
        bool ok = strlen(z) <= 200 && strchr(z, '.') && z[0] != '.';
        for (const char *c = z; *c && ok; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
                 *c == '.' || *c == '_';
        if (ok) sv_push(out, z);
        else disp_error(p, line, "%s: bad DNS zone '%s'", key, z);
    }
    sv_free(&items);
}

/* key_dnsbl_action - DNS_VERIFY_ACTION=reject|score. */
static void key_dnsbl_action(disp_parser *p, int line, const char *value)
{
    if (str_ieq(value, "reject")) p->cur.dnsbl_score = false;
    else if (str_ieq(value, "score")) p->cur.dnsbl_score = true;
    else disp_error(p, line, "DNS_VERIFY_ACTION: bad value '%s' (expected reject or score)", value);
}

/* parse_key_line - "KEY=VALUE" inside a section. */
static void parse_key_line(disp_parser *p, int line, char *text)
{
    char *eq = strchr(text, '=');
    if (!eq) {
        disp_error(p, line, "expected KEY=VALUE or [SERVICE=NAME]");
        return;
    }
    *eq = '\0';
    char *key = str_trim(text), *value = str_trim(eq + 1);
    if (!p->in_section) {
        disp_error(p, line, "'%s' outside a [SERVICE=NAME] section", key);
        return;
    }
    if (str_ieq(key, "PORT")) key_port(p, line, value);
    else if (str_ieq(key, "INTERFACE_ADDRESS")) key_address(p, line, value);
    else if (str_ieq(key, "PARAMETER")) key_parameter(p, line, value);
    else if (str_ieq(key, "TLS_MODE")) key_tls(p, line, value);
    else if (str_ieq(key, "AUTH_REQUIRED")) key_bool(p, line, key, value, &p->cur.auth_required);
    else if (str_ieq(key, "AUTH_WITHOUT_TLS")) key_bool(p, line, key, value, &p->cur.auth_plain);
    else if (str_ieq(key, "MAX_CONNECTIONS")) key_uint(p, line, key, value, 1, 1000000, &p->cur.max_conns);
    else if (str_ieq(key, "MAX_PER_CLIENT")) key_uint(p, line, key, value, 1, 1000000, &p->cur.max_per_client);
    else if (str_ieq(key, "BACKLOG")) key_uint(p, line, key, value, 1, 65535, &p->cur.backlog);
    else if (str_ieq(key, "DNS_VERIFY_DOMAIN")) key_zones(p, line, key, value, &p->cur.dnsbl);
    else if (str_ieq(key, "DNS_ALLOW_DOMAIN")) key_zones(p, line, key, value, &p->cur.dnswl);
    else if (str_ieq(key, "DNS_VERIFY_ACTION")) key_dnsbl_action(p, line, value);
    else if (str_ieq(key, "DNS_VERIFY_CODE")) {
        unsigned code = 0;
        key_uint(p, line, key, value, 421, 554, &code);
        if (code == 421 || code == 450 || code == 550 || code == 554) p->cur.dnsbl_code = code;
        else if (code) disp_error(p, line, "DNS_VERIFY_CODE: bad value '%s' (expected 554, 550, 450 or 421)", value);
    } else if (str_ieq(key, "DNS_VERIFY_TEXT")) {
        free(p->cur.dnsbl_text);
        p->cur.dnsbl_text = *value ? xstrdup(value) : NULL;
    }
    else disp_error(p, line, "unknown key '%s'", key);
}

int conf_parse_dispatcher(const char *file, const char *text, sl_conf *c, conf_errors *errs)
{
    disp_parser p;
    memset(&p, 0, sizeof p);
    p.file = file;
    p.c = c;
    p.errs = errs;
    char *copy = xstrdup(text), *cursor = copy, *line;
    int lineno = 0;
    while ((line = conf_next_line(&cursor)) != NULL) {
        lineno++;
        if (conf_line_is_comment(line, "!#")) continue;
        char *t = str_trim(line);
        if (!*t) continue;
        if (*t == '[') section_open(&p, lineno, t);
        else parse_key_line(&p, lineno, t);
    }
    section_close(&p);
    if (!p.seen_section) disp_error(&p, 0, "no [SERVICE=NAME] section: at least one service is required");
    free(copy);
    return p.nerr;
}
