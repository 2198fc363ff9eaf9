/*
 * scanners.c - option.dat's content scanner settings, spamfilterN_* with N = 1..8, as Messaging
 * Server names them (doc/scanning.md): the type and address of each scanner, its timeout,
 * whether it is optional, and the Sieve actions for its verdicts. Called while loading a
 * configuration.
 */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT 30
#define DEFAULT_MAX_SIZE (10ULL * 1024 * 1024)

/* scanner_defaults - a scanner that nothing configured yet (off). */
static void scanner_defaults(sl_scanner *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->timeout = DEFAULT_TIMEOUT;
    sc->max_size = DEFAULT_MAX_SIZE;
    sc->threshold = 5.0;
}

/* field_name_ok - an RFC 5322 field name: printable ASCII but ':' and blanks, 1..76 octets. */
static bool field_name_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 76) return false;
    for (const char *p = v; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == ':') return false;
    return true;
}

/* host_ok - an IPv4 or IPv6 address literal (scanners are named by address: no DNS on this path). */
static bool host_ok(const char *h)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

/* set_address - "HOST:PORT", "[IPv6]:PORT", "inet:PORT@HOST", "inet6:PORT@HOST", "/path", "unix:/path". */
static int set_address(sl_scanner *sc, const char *v)
{
    char *host = NULL;
    const char *port = NULL;
    if (str_has_prefix_ci(v, "unix:") || str_has_prefix_ci(v, "local:")) v = strchr(v, ':') + 1;
    if (v[0] == '/') {
        if (strlen(v) > 100) return -1; /* sun_path */
        free(sc->unix_path), free(sc->host);
        sc->unix_path = xstrdup(v);
        sc->host = NULL;
        return 0;
    }
    if (str_has_prefix_ci(v, "inet:") || str_has_prefix_ci(v, "inet6:")) {
        const char *p = strchr(v, ':') + 1, *at = strchr(p, '@');
        if (!at) return -1;
        char *pt = xstrndup(p, (size_t)(at - p));
        host = xstrdup(at + 1);
        uint64_t n;
        int rc = parse_uint(pt, 1, 65535, &n);
        free(pt);
        if (rc != 0 || !host_ok(host)) goto bad;
        sc->port = (unsigned)n;
        goto ok;
    }
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':') return -1;
        host = xstrndup(v + 1, (size_t)(close - v - 1));
        port = close + 2;
    } else {
        const char *colon = strrchr(v, ':');
        if (!colon) return -1;
        host = xstrndup(v, (size_t)(colon - v));
        port = colon + 1;
    }
    uint64_t n;
    if (parse_uint(port, 1, 65535, &n) != 0 || !host_ok(host)) goto bad;
    sc->port = (unsigned)n;
ok:
    free(sc->host), free(sc->unix_path);
    sc->host = host;
    sc->unix_path = NULL;
    return 0;
bad:
    free(host);
    return -1;
}

/* set_text - a string setting (a Sieve script or URL): any non-empty text. */
static int set_text(char **field, const char *v)
{
    free(*field);
    *field = *v ? xstrdup(v) : NULL;
    return 0;
}

int conf_scanner_option(sl_options *opt, const char *key, const char *value, int line, const char **expect)
{
    unsigned n = 0;
    int used = 0;
    if (sscanf(key, "spamfilter%u_%n", &n, &used) != 1 || used == 0 || n < 1 || n > SL_SCANNERS) return -2;
    const char *k = key + used;
    sl_scanner *sc = &opt->scanners[n - 1];
    uint64_t num;
    int64_t secs;
    if (str_ieq(k, "type")) {
        *expect = "spamd, clamd, milter, header or none";
        sc->line = line;
        if (str_ieq(value, "spamd")) sc->kind = SL_SCANNER_SPAMD;
        else if (str_ieq(value, "clamd")) sc->kind = SL_SCANNER_CLAMD;
        else if (str_ieq(value, "milter")) sc->kind = SL_SCANNER_MILTER;
        else if (str_ieq(value, "header")) sc->kind = SL_SCANNER_HEADER;
        else if (str_ieq(value, "none")) sc->kind = SL_SCANNER_NONE;
        else return -1;
        return 0;
    }
    if (str_ieq(k, "address")) {
        *expect = "IP:PORT, [IPv6]:PORT, inet:PORT@IP or a Unix socket path";
        return set_address(sc, value);
    }
    if (str_ieq(k, "timeout")) {
        *expect = "a duration 1s..1h";
        if (parse_duration(value, &secs) != 0 || secs < 1 || secs > 3600) return -1;
        sc->timeout = (unsigned)secs;
        return 0;
    }
    if (str_ieq(k, "optional")) {
        *expect = "yes or no (1 or 0)";
        if (str_ieq(value, "yes") || strcmp(value, "1") == 0) sc->optional = true;
        else if (str_ieq(value, "no") || strcmp(value, "0") == 0) sc->optional = false;
        else return -1;
        return 0;
    }
    if (str_ieq(k, "max_size")) {
        *expect = "a size such as 10M (0 = the whole message)";
        if (parse_size(value, &num) != 0) return -1;
        sc->max_size = num;
        return 0;
    }
    if (str_ieq(k, "header") || str_ieq(k, "score_header")) {
        *expect = "a header field name";
        if (!field_name_ok(value)) return -1;
        return set_text(str_ieq(k, "header") ? &sc->header : &sc->score_header, value);
    }
    if (str_ieq(k, "threshold")) {
        *expect = "a number such as 5.0";
        char *end = NULL;
        double d = strtod(value, &end);
        if (!*value || *end || !(d > 0) || d > 1e6) return -1;
        sc->threshold = d;
        return 0;
    }
    *expect = "a Sieve script, or data:,<script>";
    if (str_ieq(k, "string_action")) return set_text(&sc->string_action, value);
    if (str_ieq(k, "null_action")) return set_text(&sc->null_action, value);
    unsigned m = 0;
    used = 0;
    if (sscanf(k, "verdict_%u%n", &m, &used) == 1 && k[used] == '\0' && m < SL_SCANNER_VERDICTS) {
        *expect = "a verdict string";
        return *value ? set_text(&sc->verdict[m], value) : -1;
    }
    used = 0;
    if (sscanf(k, "action_%u%n", &m, &used) == 1 && k[used] == '\0' && m < SL_SCANNER_VERDICTS)
        return set_text(&sc->action[m], value);
    return -2;
}

int conf_scanners_check(const char *file, const sl_options *opt, conf_errors *errs)
{
    int nerr = 0;
    for (unsigned i = 0; i < SL_SCANNERS; i++) {
        const sl_scanner *sc = &opt->scanners[i];
        if (sc->kind == SL_SCANNER_NONE) continue;
        if (sc->kind == SL_SCANNER_HEADER) {
            if (!sc->header) {
                conf_error(errs, file, sc->line, "spamfilter%u_type=header needs spamfilter%u_header", i + 1, i + 1);
                nerr++;
            }
        } else if (!sc->host && !sc->unix_path) {
            conf_error(errs, file, sc->line, "spamfilter%u_type needs spamfilter%u_address", i + 1, i + 1);
            nerr++;
        }
        for (unsigned m = 0; m < SL_SCANNER_VERDICTS; m++)
            if (!sc->verdict[m] != !sc->action[m]) {
                conf_error(errs, file, sc->line, "spamfilter%u_verdict_%u and spamfilter%u_action_%u go together", i + 1,
                           m, i + 1, m);
                nerr++;
            }
    }
    return nerr;
}

void conf_scanners_free(sl_options *opt)
{
    for (unsigned i = 0; i < SL_SCANNERS; i++) {
        sl_scanner *sc = &opt->scanners[i];
        free(sc->host);
        free(sc->unix_path);
        free(sc->string_action);
        free(sc->null_action);
        free(sc->header);
        free(sc->score_header);
        for (unsigned m = 0; m < SL_SCANNER_VERDICTS; m++) free(sc->verdict[m]), free(sc->action[m]);
        scanner_defaults(sc);
    }
}
