/*
 * options.c - option.dat: global "key=value" options with documented defaults
 * (doc/configuration.md), and the CIDR networks used by internal_networks. Each key is one row
 * of a table naming its setter and the values it accepts; a bad value is an error naming the key.
 * Called while loading a configuration; the CIDR match is a pure function any thread may call.
 */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/tls.h"

#define DAY (86400u)

typedef struct opt_def opt_def;
/* A setter stores value into opt; on error it returns -1 and may put the offending item into bad. */
typedef int (*opt_setter)(sl_options *opt, const char *value, const opt_def *d, const char *file, strbuf *bad);

struct opt_def {
    const char *key;
    opt_setter set;
    size_t offset;  /* field for the generic number setters */
    uint64_t min, max;
    const char *expect;
    const char *field; /* set_dir_attr: the dir_schema field the option remaps */
};

/* Parser state: lines of the options whose values are checked against each other. */
typedef struct {
    int retry_interval_line, retry_max_line;
    int ldap_uri_line, ldap_base_line, ldap_bind_dn_line, ldap_password_line;
} opt_lines;

void conf_options_defaults(sl_options *opt)
{
    char host[256];
    memset(opt, 0, sizeof *opt);
    if (gethostname(host, sizeof host) != 0 || !host[0]) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    opt->hostname = xstrdup(host);
    opt->queue_dir = xstrdup("/var/spool/sluice");
    opt->maildir_root = xstrdup("/var/mail/sluice");
    opt->max_message_size = 10ULL * 1024 * 1024;
    opt->queue_cache_size = 64ULL * 1024 * 1024;
    opt->max_recipients = 100;
    opt->block_size = 1024;
    opt->log_level = LOG_LVL_INFO;
    opt->n_internal_networks = 2;
    opt->internal_networks = xcalloc(2, sizeof *opt->internal_networks);
    conf_cidr_parse("127.0.0.0/8", &opt->internal_networks[0]);
    conf_cidr_parse("::1", &opt->internal_networks[1]);
    opt->bare_eol = BARE_EOL_REJECT;
    opt->max_errors = 10;
    opt->idle_timeout = 300;
    opt->session_timeout = 3600;
    opt->min_data_rate = 500;
    opt->min_data_rate_window = 30;
    opt->retry_interval = 300;
    opt->retry_max = 3600;
    opt->message_lifetime = 5 * DAY;
    opt->connect_timeout = 30;
    opt->command_timeout = 300;
    opt->auth_max_failures = 3;
    opt->tls_min_version = 12;
    opt->mta_sts_port = 443;
    opt->mta_sts_timeout = 30;
    conf_scanners_free(opt); /* on the zeroed options: the scanners' defaults */
    opt->ldap_timeout = 5;
    opt->ldap_connections = 4;
    opt->ldap_domain_cache_size = 10000;
    opt->ldap_domain_cache_ttl = 600;
    opt->ldap_domain_cache_negative_ttl = 60;
    opt->ldap_cache_size = 10000;
    opt->ldap_cache_ttl = 600;
    opt->ldap_cache_negative_ttl = 60;
    opt->submit_channel = xstrdup("l");
    opt->pickup_interval = 60;
    opt->tlsrpt_delay = 3600;
}

void conf_options_free(sl_options *opt)
{
    free(opt->hostname);
    free(opt->queue_dir);
    free(opt->maildir_root);
    free(opt->tls_certificate);
    free(opt->tls_key);
    free(opt->run_as);
    free(opt->postmaster);
    free(opt->tls_ciphers);
    free(opt->tls_ca_file);
    free(opt->tls_policy_file);
    free(opt->shaping_file);
    free(opt->tls_sni_file);
    free(opt->mta_sts_cache_dir);
    opt->tls_ca_file = opt->tls_policy_file = opt->shaping_file = opt->tls_sni_file = opt->mta_sts_cache_dir = NULL;
    free(opt->submit_socket);
    free(opt->submit_channel);
    free(opt->metrics_listen);
    conf_scanners_free(opt);
    free(opt->sieve_filter);
    free(opt->dkim_keys_file);
    free(opt->dmarc_psl_file);
    opt->dkim_keys_file = NULL;
    opt->dmarc_psl_file = NULL;
    free(opt->vacation_dir);
    free(opt->tlsrpt_org);
    free(opt->tlsrpt_contact);
    opt->tlsrpt_org = opt->tlsrpt_contact = NULL;
    opt->sieve_filter = opt->vacation_dir = NULL;
    opt->submit_socket = opt->submit_channel = opt->metrics_listen = NULL;
    opt->tls_certificate = opt->tls_key = opt->run_as = opt->postmaster = opt->tls_ciphers = NULL;
    sv_free(&opt->dns_servers);
    sv_free(&opt->ldap_uris);
    free(opt->ldap_base_dn);
    free(opt->ldap_bind_dn);
    if (opt->ldap_bind_password) explicit_bzero(opt->ldap_bind_password, strlen(opt->ldap_bind_password));
    free(opt->ldap_bind_password);
    free(opt->ldap_tls_ca_file);
    opt->ldap_base_dn = opt->ldap_bind_dn = opt->ldap_bind_password = opt->ldap_tls_ca_file = NULL;
    sv_free(&opt->dir_attrs);
    free(opt->internal_networks);
    opt->hostname = opt->queue_dir = opt->maildir_root = NULL;
    opt->internal_networks = NULL;
    opt->n_internal_networks = 0;
}

/* valid_hostname - letters, digits, '-', '_' and non-empty dot-separated labels. */
static bool valid_hostname(const char *s)
{
    size_t label = 0, n = strlen(s);
    if (n == 0 || n > 253) return false;
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  *p == '-' || *p == '_';
        if (!ok || ++label > 63) return false;
    }
    return label > 0;
}

static int set_hostname(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file, (void)bad;
    if (!valid_hostname(v)) return -1;
    free(opt->hostname);
    opt->hostname = xstrdup(v);
    return 0;
}

/* set_postmaster - an address "local@domain" with a valid domain. */
static int set_postmaster(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file, (void)bad;
    const char *at = strrchr(v, '@');
    if (!at || at == v || !valid_hostname(at + 1) || strpbrk(v, " \t<>\"")) return -1;
    free(opt->postmaster);
    opt->postmaster = xstrdup(v);
    return 0;
}

char *conf_submit_socket(const sl_options *opt)
{
    if (opt->submit_disabled) return NULL;
    return opt->submit_socket ? xstrdup(opt->submit_socket) : xasprintf("%s/public/submit.sock", opt->queue_dir);
}

char *conf_pickup_dir(const sl_options *opt)
{
    return xasprintf("%s/pickup", opt->queue_dir);
}

char *conf_sts_cache_dir(const sl_options *opt)
{
    return opt->mta_sts_cache_dir ? xstrdup(opt->mta_sts_cache_dir) : xasprintf("%s/sts", opt->queue_dir);
}

/* str_differ - whether two optional strings differ. */
static bool str_differ(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* servers_differ - whether two dns_servers lists differ. */
static bool servers_differ(const strvec *a, const strvec *b)
{
    if (a->n != b->n) return true;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0) return true;
    return false;
}

void conf_restart_changes(const sl_conf *old, const sl_conf *new_conf, strvec *out)
{
    const sl_options *a = &old->opt, *b = &new_conf->opt;
    char *sa = conf_submit_socket(a), *sb = conf_submit_socket(b);
    if (str_differ(a->queue_dir, b->queue_dir)) sv_push(out, "queue_dir");
    if (str_differ(a->run_as, b->run_as)) sv_push(out, "run_as");
    if (servers_differ(&a->dns_servers, &b->dns_servers)) sv_push(out, "dns_servers");
    if (str_differ(sa, sb)) sv_push(out, "submit_socket");
    if (str_differ(a->submit_channel, b->submit_channel)) sv_push(out, "submit_channel");
    if (str_differ(a->metrics_listen, b->metrics_listen)) sv_push(out, "metrics_listen");
    char *ca = conf_sts_cache_dir(a), *cb = conf_sts_cache_dir(b);
    if (strcmp(ca, cb) != 0) sv_push(out, "mta_sts_cache_dir");
    free(ca);
    free(cb);
    free(sa);
    free(sb);
}

char *conf_postmaster(const sl_options *opt)
{
    return opt->postmaster ? xstrdup(opt->postmaster) : xasprintf("postmaster@%s", opt->hostname);
}

/* set_spf_fail_action - none or reject. */
static int set_spf_fail_action(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file, (void)bad;
    if (str_ieq(v, "none")) opt->spf_fail_action = SPF_ACTION_NONE;
    else if (str_ieq(v, "reject")) opt->spf_fail_action = SPF_ACTION_REJECT;
    else return -1;
    return 0;
}

/* set_dkim_sign - no, local or all. */
static int set_dkim_sign(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file, (void)bad;
    if (str_ieq(v, "no")) opt->dkim_sign = DKIM_SIGN_NO;
    else if (str_ieq(v, "local")) opt->dkim_sign = DKIM_SIGN_LOCAL;
    else if (str_ieq(v, "all")) opt->dkim_sign = DKIM_SIGN_ALL;
    else return -1;
    return 0;
}

/* set_dmarc_action - none, quarantine or reject. */
static int set_dmarc_action(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file, (void)bad;
    if (str_ieq(v, "none")) opt->dmarc_action = DMARC_ACTION_NONE;
    else if (str_ieq(v, "quarantine")) opt->dmarc_action = DMARC_ACTION_QUARANTINE;
    else if (str_ieq(v, "reject")) opt->dmarc_action = DMARC_ACTION_REJECT;
    else return -1;
    return 0;
}

/* set_reject_mode - hard, soft or auto. */
static int set_reject_mode(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file, (void)bad;
    if (str_ieq(v, "hard")) opt->reject_mode = REJECT_HARD;
    else if (str_ieq(v, "soft")) opt->reject_mode = REJECT_SOFT;
    else if (str_ieq(v, "auto")) opt->reject_mode = REJECT_AUTO;
    else return -1;
    return 0;
}

/* resolve_path - v when absolute, else realpath(directory of file) + "/" + v (target need not exist). */
static char *resolve_path(const char *file, const char *v)
{
    if (v[0] == '/') return xstrdup(v);
    const char *slash = strrchr(file, '/');
    char *dir = slash ? xstrndup(file, (size_t)(slash - file) + (slash == file)) : xstrdup(".");
    char *real = realpath(dir, NULL);
    char *out = real ? xasprintf("%s%s%s", real, strcmp(real, "/") ? "/" : "", v) : NULL;
    free(real);
    free(dir);
    return out;
}

/* set_path - queue_dir / maildir_root: a non-empty path, relative ones resolved against the config dir. */
static int set_path(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)bad;
    if (!*v) return -1;
    char *path = resolve_path(file, v);
    if (!path) return -1;
    char **field = (char **)((char *)opt + d->offset);
    free(*field);
    *field = path;
    return 0;
}

/* set_submit_socket - a socket path (relative: to the config dir), or "none". */
static int set_submit_socket(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    opt->submit_disabled = str_ieq(v, "none");
    if (opt->submit_disabled) return 0;
    return set_path(opt, v, d, file, bad);
}

/* set_metrics_listen - "IP:PORT", "[IPv6]:PORT", a bare PORT (loopback: 127.0.0.1), or "none". */
static int set_metrics_listen(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file, (void)bad;
    uint64_t port;
    char *text = parse_uint(v, 1, 65535, &port) == 0 ? xasprintf("127.0.0.1:%s", v) : xstrdup(v);
    struct sockaddr_storage ss;
    int len = (int)sizeof ss;
    bool none = str_ieq(v, "none");
    if (!none && (evutil_parse_sockaddr_port(text, (struct sockaddr *)&ss, &len) != 0 ||
                  (ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                           : ((struct sockaddr_in6 *)&ss)->sin6_port) == 0)) {
        free(text);
        return -1;
    }
    free(opt->metrics_listen);
    opt->metrics_listen = none ? NULL : text;
    if (none) free(text);
    return 0;
}

/* set_word - a single word such as a user name. */
static int set_word(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)file, (void)bad;
    if (!*v || strpbrk(v, " \t/")) return -1;
    char **field = (char **)((char *)opt + d->offset);
    free(*field);
    *field = xstrdup(v);
    return 0;
}

static int set_size(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)file, (void)bad;
    uint64_t n;
    if (parse_size(v, &n) != 0 || n < d->min || n > d->max) return -1;
    *(uint64_t *)((char *)opt + d->offset) = n;
    return 0;
}

static int set_uint(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)file, (void)bad;
    uint64_t n;
    if (parse_uint(v, d->min, d->max, &n) != 0) return -1;
    *(unsigned *)((char *)opt + d->offset) = (unsigned)n;
    return 0;
}

static int set_duration(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)file, (void)bad;
    int64_t n;
    if (parse_duration(v, &n) != 0 || n < (int64_t)d->min || n > (int64_t)d->max) return -1;
    *(unsigned *)((char *)opt + d->offset) = (unsigned)n;
    return 0;
}

static int set_log_level(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file, (void)bad;
    int lvl = log_level_parse(v);
    if (lvl < 0) return -1;
    opt->log_level = lvl;
    return 0;
}

static int set_log_format(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file, (void)bad;
    int f = log_format_parse(v);
    if (f < 0) return -1;
    opt->log_format = f;
    return 0;
}

static int set_bare_lf(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file, (void)bad;
    if (str_ieq(v, "reject")) opt->bare_eol = BARE_EOL_REJECT;
    else if (str_ieq(v, "normalise") || str_ieq(v, "normalize")) opt->bare_eol = BARE_EOL_NORMALISE;
    else return -1;
    return 0;
}

/* set_tls_ciphers - an OpenSSL cipher list that selects at least one TLS <= 1.2 suite. */
static int set_tls_ciphers(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file, (void)bad;
    if (!*v || !tls_cipher_list_ok(v)) return -1;
    free(opt->tls_ciphers);
    opt->tls_ciphers = xstrdup(v);
    return 0;
}

static int set_tls_min_version(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file, (void)bad;
    if (str_ieq(v, "TLSv1.2")) opt->tls_min_version = 12;
    else if (str_ieq(v, "TLSv1.3")) opt->tls_min_version = 13;
    else return -1;
    return 0;
}

/* dns_server_normalise - "ip", "ip:port", "[ipv6]", "[ipv6]:port" or a bare IPv6 into "ip:port" / "[ipv6]:port". */
static char *dns_server_normalise(const char *s)
{
    char *host = NULL, *out = NULL;
    const char *port = NULL;
    unsigned char buf[16];
    int family = AF_INET;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close) return NULL;
        host = xstrndup(s + 1, (size_t)(close - s - 1));
        family = AF_INET6;
        if (close[1] == ':') port = close + 2;
        else if (close[1] != '\0') goto done;
    } else if (inet_pton(AF_INET6, s, buf) == 1) {
        host = xstrdup(s);
        family = AF_INET6;
    } else {
        const char *colon = strchr(s, ':');
        host = colon ? xstrndup(s, (size_t)(colon - s)) : xstrdup(s);
        if (colon) port = colon + 1;
    }
    uint64_t p = 53;
    if (inet_pton(family, host, buf) != 1) goto done;
    if (port && parse_uint(port, 1, 65535, &p) != 0) goto done;
    out = family == AF_INET6 ? xasprintf("[%s]:%u", host, (unsigned)p) : xasprintf("%s:%u", host, (unsigned)p);
done:
    free(host);
    return out;
}

static int set_dns_servers(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file;
    strvec items = {0}, servers = {0};
    int rc = 0;
    conf_split_list(v, &items);
    for (size_t i = 0; i < items.n && rc == 0; i++) {
        char *norm = dns_server_normalise(items.v[i]);
        if (norm) {
            sv_push_owned(&servers, norm);
        } else {
            sb_puts(bad, items.v[i]);
            rc = -1;
        }
    }
    if (rc == 0) {
        sv_free(&opt->dns_servers);
        opt->dns_servers = servers;
    } else {
        sv_free(&servers);
    }
    sv_free(&items);
    return rc;
}

static int set_networks(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file;
    strvec items = {0};
    conf_split_list(v, &items);
    sl_cidr *nets = xcalloc(items.n ? items.n : 1, sizeof *nets);
    int rc = 0;
    for (size_t i = 0; i < items.n && rc == 0; i++) {
        if (conf_cidr_parse(items.v[i], &nets[i]) != 0) {
            sb_puts(bad, items.v[i]);
            rc = -1;
        }
    }
    if (rc == 0) {
        free(opt->internal_networks);
        opt->internal_networks = nets;
        opt->n_internal_networks = items.n;
    } else {
        free(nets);
    }
    sv_free(&items);
    return rc;
}

/* uri_host_ok - the host part of an LDAP URI: a host name, an IPv4 address or [IPv6]. */
static bool uri_host_ok(const char *h, size_t n)
{
    char buf[256];
    unsigned char addr[16];
    if (n == 0 || n >= sizeof buf) return false;
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']') return false;
        memcpy(buf, h + 1, n - 2);
        buf[n - 2] = '\0';
        return inet_pton(AF_INET6, buf, addr) == 1;
    }
    memcpy(buf, h, n);
    buf[n] = '\0';
    return valid_hostname(buf);
}

/* ldap_uri_ok - "ldap[s]://host[:port][/]" (no DN, attributes or filter: ldap_base_dn says where to search). */
static bool ldap_uri_ok(const char *u)
{
    const char *p;
    if (str_has_prefix_ci(u, "ldap://")) p = u + 7;
    else if (str_has_prefix_ci(u, "ldaps://")) p = u + 8;
    else return false;
    const char *end = p + strcspn(p, "/");
    if (*end == '/' && end[1]) return false;
    const char *colon = NULL;
    const char *close = p[0] == '[' ? memchr(p, ']', (size_t)(end - p)) : NULL;
    for (const char *q = close ? close : p; q < end; q++)
        if (*q == ':') colon = q;
    if (!uri_host_ok(p, (size_t)((colon ? colon : end) - p))) return false;
    if (!colon) return true;
    char port[8];
    size_t plen = (size_t)(end - colon - 1);
    uint64_t n;
    if (plen == 0 || plen >= sizeof port) return false;
    memcpy(port, colon + 1, plen);
    port[plen] = '\0';
    return parse_uint(port, 1, 65535, &n) == 0;
}

int conf_ldap_uris_parse(const char *s, strvec *out, strbuf *bad)
{
    strvec items = {0};
    int rc = str_split_ws(s, &items) ? 0 : -1;
    for (size_t i = 0; i < items.n && rc == 0; i++) {
        if (ldap_uri_ok(items.v[i])) continue;
        sb_puts(bad, items.v[i]);
        rc = -1;
    }
    for (size_t i = 0; i < items.n && rc == 0; i++) sv_push(out, items.v[i]);
    sv_free(&items);
    return rc;
}

static int set_ldap_uris(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d, (void)file;
    strvec uris = {0};
    if (conf_ldap_uris_parse(v, &uris, bad) != 0) return -1;
    sv_free(&opt->ldap_uris);
    opt->ldap_uris = uris;
    return 0;
}

/* set_dn - a distinguished name (checked loosely: "attr=value" pairs; the server has the last word). */
static int set_dn(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)file, (void)bad;
    if (!*v || !strchr(v, '=') || strpbrk(v, "\r\n")) return -1;
    char **field = (char **)((char *)opt + d->offset);
    free(*field);
    *field = xstrdup(v);
    return 0;
}

static int set_yes_no(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)file, (void)bad;
    bool *field = (bool *)((char *)opt + d->offset);
    if (str_ieq(v, "yes")) *field = true;
    else if (str_ieq(v, "no")) *field = false;
    else return -1;
    return 0;
}

/* set_bool01 - 1 or 0 (yes or no also). */
static int set_bool01(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)file, (void)bad;
    bool *field = (bool *)((char *)opt + d->offset);
    if (!strcmp(v, "1") || str_ieq(v, "yes")) *field = true;
    else if (!strcmp(v, "0") || str_ieq(v, "no")) *field = false;
    else return -1;
    return 0;
}

/* set_text - printable text of 1..200 characters (spaces allowed, no control characters). */
static int set_text(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)file, (void)bad;
    size_t n = strlen(v);
    if (n == 0 || n > 200) return -1;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < ' ' || *p == 0x7f) return -1;
    char **field = (char **)((char *)opt + d->offset);
    free(*field);
    *field = xstrdup(v);
    return 0;
}

/* set_password_file - the bind password is the first line of the file, read now: option.dat
 * never holds it. Returns -2 with the whole message in bad for file errors. */
static int set_password_file(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)d;
    if (!*v) return -1;
    char *path = resolve_path(file, v);
    if (!path) return -1;
    strbuf text;
    sb_init(&text);
    int rc = 0;
    if (file_read(path, &text) < 0) {
        sb_printf(bad, "cannot read '%s': %s", path, strerror(errno));
        rc = -2;
    } else if (text.len && memchr(text.data, '\0', text.len)) {
        sb_printf(bad, "'%s' holds a NUL byte", path);
        rc = -2;
    } else {
        size_t n = text.len ? strcspn(text.data, "\r\n") : 0;
        if (n == 0) {
            sb_printf(bad, "'%s' is empty (the password is its first line)", path);
            rc = -2;
        } else {
            if (opt->ldap_bind_password) explicit_bzero(opt->ldap_bind_password, strlen(opt->ldap_bind_password));
            free(opt->ldap_bind_password);
            opt->ldap_bind_password = xstrndup(text.data, n);
        }
    }
    if (text.data) explicit_bzero(text.data, text.len);
    sb_free(&text);
    free(path);
    return rc;
}

/* set_dir_attr - an LDAP attribute name (RFC 4512 descr or numeric OID) for a dir_schema field. */
static int set_dir_attr(sl_options *opt, const char *v, const opt_def *d, const char *file, strbuf *bad)
{
    (void)file, (void)bad;
    bool descr = (*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z');
    bool oid = *v >= '0' && *v <= '9';
    if (!descr && !oid) return -1;
    for (const char *p = v; *p; p++) {
        bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
        if (descr ? !(alnum || *p == '-') : !((*p >= '0' && *p <= '9') || *p == '.')) return -1;
    }
    if (strlen(v) > 128) return -1;
    sv_push(&opt->dir_attrs, d->field);
    sv_push(&opt->dir_attrs, v);
    return 0;
}

#define OFF(f) offsetof(sl_options, f)
static const opt_def opt_table[] = {
    {"host_name", set_hostname, 0, 0, 0, "a host name", NULL},
    {"queue_dir", set_path, OFF(queue_dir), 0, 0, "a directory path", NULL},
    {"maildir_root", set_path, OFF(maildir_root), 0, 0, "a directory path", NULL},
    {"dns_servers", set_dns_servers, 0, 0, 0, "IP, IP:port or [IPv6]:port, separated by commas or spaces", NULL},
    {"max_message_size", set_size, OFF(max_message_size), 1, 1ULL << 40, "a size such as 10M (suffix K, M or G)", NULL},
    {"queue_cache_size", set_size, OFF(queue_cache_size), 0, 1ULL << 40, "a size such as 64M (suffix K, M or G)", NULL},
    {"max_recipients", set_uint, OFF(max_recipients), 1, 100000, "a number 1..100000", NULL},
    {"block_size", set_uint, OFF(block_size), 1, 1048576, "a number of bytes 1..1048576", NULL},
    {"log_level", set_log_level, 0, 0, 0, "error, warn, info or debug", NULL},
    {"log_format", set_log_format, 0, 0, 0, "text or json", NULL},
    {"internal_networks", set_networks, 0, 0, 0, "networks such as 10.0.0.0/8 or ::1", NULL},
    {"bare_lf", set_bare_lf, 0, 0, 0, "reject or normalise", NULL},
    {"max_errors", set_uint, OFF(max_errors), 1, 10000, "a number 1..10000", NULL},
    {"idle_timeout", set_duration, OFF(idle_timeout), 1, DAY, "a duration 1s..1d", NULL},
    {"session_timeout", set_duration, OFF(session_timeout), 1, 7 * DAY, "a duration 1s..7d", NULL},
    {"min_data_rate", set_uint, OFF(min_data_rate), 0, 100000000, "bytes per second 0..100000000", NULL},
    {"min_data_rate_window", set_duration, OFF(min_data_rate_window), 1, 3600, "a duration 1s..1h", NULL},
    {"retry_interval", set_duration, OFF(retry_interval), 1, 30 * DAY, "a duration 1s..30d", NULL},
    {"retry_max", set_duration, OFF(retry_max), 1, 30 * DAY, "a duration 1s..30d", NULL},
    {"message_lifetime", set_duration, OFF(message_lifetime), 60, 365 * DAY, "a duration 1m..365d", NULL},
    {"connect_timeout", set_duration, OFF(connect_timeout), 1, 3600, "a duration 1s..1h", NULL},
    {"command_timeout", set_duration, OFF(command_timeout), 1, DAY, "a duration 1s..1d", NULL},
    {"greeting_delay", set_uint, OFF(greeting_delay_ms), 0, 10000, "milliseconds 0..10000", NULL},
    {"tls_certificate", set_path, OFF(tls_certificate), 0, 0, "a file path", NULL},
    {"tls_key", set_path, OFF(tls_key), 0, 0, "a file path", NULL},
    {"tls_ciphers", set_tls_ciphers, 0, 0, 0, "an OpenSSL cipher list for TLS 1.2, such as " TLS_DEFAULT_CIPHERS, NULL},
    {"tls_min_version", set_tls_min_version, 0, 0, 0, "TLSv1.2 or TLSv1.3", NULL},
    {"tls_ca_file", set_path, OFF(tls_ca_file), 0, 0, "a file path", NULL},
    {"tls_policy_file", set_path, OFF(tls_policy_file), 0, 0, "a file path", NULL},
    {"shaping_file", set_path, OFF(shaping_file), 0, 0, "a file path", NULL},
    {"tls_sni_file", set_path, OFF(tls_sni_file), 0, 0, "a file path", NULL},
    {"mta_sts", set_bool01, OFF(mta_sts), 0, 0, "0 or 1 (yes or no)", NULL},
    {"mta_sts_port", set_uint, OFF(mta_sts_port), 1, 65535, "a port 1..65535", NULL},
    {"mta_sts_timeout", set_duration, OFF(mta_sts_timeout), 1, 300, "a duration 1s..5m", NULL},
    {"mta_sts_cache_dir", set_path, OFF(mta_sts_cache_dir), 0, 0, "a directory path", NULL},
    {"run_as", set_word, OFF(run_as), 0, 0, "a user name", NULL},
    {"postmaster", set_postmaster, 0, 0, 0, "an address such as postmaster@example.com", NULL},
    {"reject_mode", set_reject_mode, 0, 0, 0, "hard, soft or auto", NULL},
    {"spf_check", set_yes_no, OFF(spf_check), 0, 0, "yes or no", NULL},
    {"spf_fail_action", set_spf_fail_action, 0, 0, 0, "none or reject", NULL},
    {"dkim_keys_file", set_path, OFF(dkim_keys_file), 0, 0, "a file path", NULL},
    {"dkim_sign", set_dkim_sign, 0, 0, 0, "no, local or all", NULL},
    {"dmarc_check", set_yes_no, OFF(dmarc_check), 0, 0, "yes or no", NULL},
    {"dmarc_action", set_dmarc_action, 0, 0, 0, "none, quarantine or reject", NULL},
    {"dmarc_psl_file", set_path, OFF(dmarc_psl_file), 0, 0, "a file path", NULL},
    {"dkim_verify", set_yes_no, OFF(dkim_verify), 0, 0, "yes or no", NULL},
    {"auth_max_failures", set_uint, OFF(auth_max_failures), 1, 100, "a number 1..100", NULL},
    {"submit_socket", set_submit_socket, OFF(submit_socket), 0, 0, "a socket path, or none", NULL},
    {"submit_channel", set_word, OFF(submit_channel), 0, 0, "a channel name", NULL},
    {"pickup_interval", set_duration, OFF(pickup_interval), 1, DAY, "a duration 1s..1d", NULL},
    {"sieve_filter", set_path, OFF(sieve_filter), 0, 0, "a file path", NULL},
    {"vacation_dir", set_path, OFF(vacation_dir), 0, 0, "a directory path", NULL},
    {"tlsrpt", set_bool01, OFF(tlsrpt), 0, 0, "1 or 0", NULL},
    {"tlsrpt_org", set_text, OFF(tlsrpt_org), 0, 0, "an organization name (1..200 printable characters)", NULL},
    {"tlsrpt_contact", set_text, OFF(tlsrpt_contact), 0, 0, "an address or URI (1..200 printable characters)", NULL},
    {"tlsrpt_delay", set_duration, OFF(tlsrpt_delay), 0, DAY, "a duration 0..1d", NULL},
    {"metrics_listen", set_metrics_listen, 0, 0, 0, "IP:PORT, [IPv6]:PORT, a port (on 127.0.0.1) or none", NULL},
    {"ldap_uri", set_ldap_uris, 0, 0, 0, "ldap://HOST[:PORT] or ldaps://HOST[:PORT], separated by blanks", NULL},
    {"ldap_base_dn", set_dn, OFF(ldap_base_dn), 0, 0, "a DN such as dc=example,dc=com", NULL},
    {"ldap_bind_dn", set_dn, OFF(ldap_bind_dn), 0, 0, "a DN such as cn=sluice,dc=example,dc=com", NULL},
    {"ldap_bind_password_file", set_password_file, 0, 0, 0, "a file whose first line is the password", NULL},
    {"ldap_starttls", set_yes_no, OFF(ldap_starttls), 0, 0, "yes or no", NULL},
    {"ldap_tls_ca_file", set_path, OFF(ldap_tls_ca_file), 0, 0, "a file path", NULL},
    {"ldap_timeout", set_duration, OFF(ldap_timeout), 1, 300, "a duration 1s..5m", NULL},
    {"ldap_connections", set_uint, OFF(ldap_connections), 1, 64, "a number 1..64", NULL},
    {"ldap_domain_cache_size", set_uint, OFF(ldap_domain_cache_size), 0, 10000000, "a number 0..10000000", NULL},
    {"ldap_domain_cache_ttl", set_duration, OFF(ldap_domain_cache_ttl), 0, DAY, "a duration 0..1d", NULL},
    {"ldap_domain_cache_negative_ttl", set_duration, OFF(ldap_domain_cache_negative_ttl), 0, DAY, "a duration 0..1d", NULL},
    {"ldap_cache_size", set_uint, OFF(ldap_cache_size), 0, 10000000, "a number 0..10000000", NULL},
    {"ldap_cache_ttl", set_duration, OFF(ldap_cache_ttl), 0, DAY, "a duration 0..1d", NULL},
    {"ldap_cache_negative_ttl", set_duration, OFF(ldap_cache_negative_ttl), 0, DAY, "a duration 0..1d", NULL},
    /* attribute names, as Messaging Server's MTA options call them; each remaps one dir_schema field */
#define ATTR(key, field) {key, set_dir_attr, 0, 0, 0, "an LDAP attribute name", field}
    ATTR("ldap_domain_attr_status", "domain_status"),
    ATTR("ldap_domain_attr_mail_status", "domain_mail_status"),
    ATTR("ldap_domain_attr_blocklimit", "domain_blocklimit"),
    ATTR("ldap_domain_attr_recipientlimit", "domain_rcptlimit"),
    ATTR("ldap_domain_attr_recipientcutoff", "domain_rcptcutoff"),
    ATTR("ldap_user_status", "user_status"),
    ATTR("ldap_user_mail_status", "user_mail_status"),
    ATTR("ldap_group_status", "group_status"),
    ATTR("ldap_group_mail_status", "group_mail_status"),
    ATTR("ldap_blocklimit", "blocklimit"),
    ATTR("ldap_attr_maximum_message_size", "group_maxsize"),
    ATTR("ldap_recipientlimit", "rcptlimit"),
    ATTR("ldap_recipientcutoff", "rcptcutoff"),
    ATTR("ldap_reject_text", "reject_text"),
    ATTR("ldap_source_channel", "submit_channel"),
    ATTR("ldap_auth_url", "allowed_broadcaster"),
    ATTR("ldap_cant_url", "disallowed_broadcaster"),
    ATTR("ldap_auth_domain", "allowed_domain"),
    ATTR("ldap_cant_domain", "disallowed_domain"),
    ATTR("ldap_auth_policy", "broadcaster_policy"),
    ATTR("ldap_moderator_url", "moderator"),
    ATTR("ldap_reject_action", "reject_action"),
    ATTR("ldap_filter", "sieve"),
    ATTR("ldap_optin1", "optin1"), ATTR("ldap_optin2", "optin2"), ATTR("ldap_optin3", "optin3"),
    ATTR("ldap_optin4", "optin4"), ATTR("ldap_optin5", "optin5"), ATTR("ldap_optin6", "optin6"),
    ATTR("ldap_optin7", "optin7"), ATTR("ldap_optin8", "optin8"),
    ATTR("ldap_domain_attr_optin1", "domain_optin1"), ATTR("ldap_domain_attr_optin2", "domain_optin2"),
    ATTR("ldap_domain_attr_optin3", "domain_optin3"), ATTR("ldap_domain_attr_optin4", "domain_optin4"),
    ATTR("ldap_domain_attr_optin5", "domain_optin5"), ATTR("ldap_domain_attr_optin6", "domain_optin6"),
    ATTR("ldap_domain_attr_optin7", "domain_optin7"), ATTR("ldap_domain_attr_optin8", "domain_optin8"),
#undef ATTR
};
#undef OFF

static const opt_def *opt_find(const char *key)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(opt_table); i++)
        if (str_ieq(opt_table[i].key, key)) return &opt_table[i];
    return NULL;
}

/* parse_option_line - one "key=value" line; returns 1 if an error was recorded. */
static int parse_option_line(const char *file, int lineno, char *line, sl_options *opt, opt_lines *lines,
                             conf_errors *errs)
{
    char *eq = strchr(line, '=');
    if (!eq) {
        conf_error(errs, file, lineno, "expected key=value");
        return 1;
    }
    *eq = '\0';
    char *key = str_trim(line), *value = str_trim(eq + 1);
    if (str_has_prefix_ci(key, "spamfilter")) {
        const char *expect = NULL;
        int src = conf_scanner_option(opt, key, value, lineno, &expect);
        if (src == -1) conf_error(errs, file, lineno, "%s: bad value '%s' (expected %s)", key, value, expect);
        if (src != -2) return src != 0;
    }
    const opt_def *d = opt_find(key);
    if (!d) {
        conf_error(errs, file, lineno, "unknown option '%s'", key);
        return 1;
    }
    strbuf bad;
    sb_init(&bad);
    int rc = d->set(opt, value, d, file, &bad);
    if (rc == -2) /* the setter wrote the whole message (file errors) */
        conf_error(errs, file, lineno, "%s: %s", d->key, bad.data);
    else if (rc != 0)
        conf_error(errs, file, lineno, "%s: bad value '%s' (expected %s)", d->key, bad.len ? bad.data : value,
                   d->expect);
    sb_free(&bad);
    if (strcmp(d->key, "retry_interval") == 0) lines->retry_interval_line = lineno;
    if (strcmp(d->key, "retry_max") == 0) lines->retry_max_line = lineno;
    if (strcmp(d->key, "ldap_uri") == 0) lines->ldap_uri_line = lineno;
    if (strcmp(d->key, "ldap_base_dn") == 0) lines->ldap_base_line = lineno;
    if (strcmp(d->key, "ldap_bind_dn") == 0) lines->ldap_bind_dn_line = lineno;
    if (strcmp(d->key, "ldap_bind_password_file") == 0) lines->ldap_password_line = lineno;
    return rc != 0;
}

/* ldap_options_check - the LDAP options that only make sense together; returns the errors added. */
static int ldap_options_check(const char *file, const sl_options *opt, const opt_lines *lines, conf_errors *errs)
{
    int nerr = 0;
    if (opt->ldap_uris.n && !opt->ldap_base_dn) {
        conf_error(errs, file, lines->ldap_uri_line, "ldap_uri needs ldap_base_dn (where to search)");
        nerr++;
    }
    if (opt->ldap_bind_dn && !opt->ldap_bind_password && !lines->ldap_password_line) {
        conf_error(errs, file, lines->ldap_bind_dn_line,
                   "ldap_bind_dn needs ldap_bind_password_file (a bind with a DN and no password is anonymous)");
        nerr++;
    }
    if (lines->ldap_password_line && !opt->ldap_bind_dn) {
        conf_error(errs, file, lines->ldap_password_line, "ldap_bind_password_file without ldap_bind_dn");
        nerr++;
    }
    return nerr;
}

int conf_parse_options(const char *file, const char *text, sl_options *opt, conf_errors *errs)
{
    char *copy = xstrdup(text), *cursor = copy, *line;
    int lineno = 0, nerr = 0;
    opt_lines lines = {0};
    conf_options_defaults(opt);
    while ((line = conf_next_line(&cursor)) != NULL) {
        lineno++;
        if (conf_line_is_comment(line, "!#") || !*str_trim(line)) continue;
        nerr += parse_option_line(file, lineno, line, opt, &lines, errs);
    }
    if (opt->retry_max < opt->retry_interval) {
        int at = lines.retry_max_line > lines.retry_interval_line ? lines.retry_max_line : lines.retry_interval_line;
        conf_error(errs, file, at, "retry_max (%us) is shorter than retry_interval (%us)", opt->retry_max,
                   opt->retry_interval);
        nerr++;
    }
    nerr += ldap_options_check(file, opt, &lines, errs);
    nerr += conf_scanners_check(file, opt, errs);
    free(copy);
    return nerr;
}

int conf_cidr_parse(const char *s, sl_cidr *out)
{
    const char *slash = strchr(s, '/');
    char *addr = slash ? xstrndup(s, (size_t)(slash - s)) : xstrdup(s);
    int rc = -1;
    sl_cidr c;
    memset(&c, 0, sizeof c);
    if (inet_pton(AF_INET, addr, c.addr) == 1) c.family = AF_INET;
    else if (inet_pton(AF_INET6, addr, c.addr) == 1) c.family = AF_INET6;
    else goto done;
    unsigned bits = c.family == AF_INET ? 32 : 128;
    uint64_t prefix = bits;
    if (slash && parse_uint(slash + 1, 0, bits, &prefix) != 0) goto done;
    c.prefix = (unsigned)prefix;
    /* host bits are cleared so that "10.1.2.3/8" means 10.0.0.0/8 */
    for (unsigned i = c.prefix; i < bits; i++) c.addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    *out = c;
    rc = 0;
done:
    free(addr);
    return rc;
}

/* prefix_equal - whether the first bits of a and b agree. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool conf_cidr_match(const sl_cidr *nets, size_t n, const struct sockaddr *sa)
{
    uint8_t v4[4], v6[16];
    bool have_v4 = false, have_v6 = false;
    if (!sa) return false;
    if (sa->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        have_v4 = true;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        memcpy(v6, a6, 16);
        have_v6 = true;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            memcpy(v4, v6 + 12, 4);
            have_v4 = true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (nets[i].family == AF_INET && have_v4 && prefix_equal(nets[i].addr, v4, nets[i].prefix)) return true;
        if (nets[i].family == AF_INET6 && have_v6 && prefix_equal(nets[i].addr, v6, nets[i].prefix)) return true;
    }
    return false;
}
