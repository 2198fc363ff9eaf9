/* test_conf.c - option.dat, dispatcher.cnf, sluice.cnf (channel keywords), job_controller.cnf and
 * <channel>_option parsers, CIDR matching, conf_load (the issue-3 seed configuration verbatim). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/load.h"
#include "conf/conf.h"
#include "core/log.h"
#include "rewrite/rewrite.h"

#ifndef SLUICE_ETC_DIR
#define SLUICE_ETC_DIR "../../etc"
#endif

/* joined - all collected errors, one per line (no trailing newline); caller frees. */
static char *joined(const conf_errors *errs)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    for (size_t i = 0; i < errs->msgs.n; i++) {
        if (i) sb_putc(&sb, '\n');
        sb_puts(&sb, errs->msgs.v[i]);
    }
    return sb_steal(&sb);
}

/* ---------- option.dat ---------- */

enum field_kind { F_NONE, F_U32, F_U64, F_INT };

typedef struct {
    const char *text;
    const char *error; /* NULL: valid */
    enum field_kind kind;
    size_t offset;
    uint64_t want;
} opt_case;

#define O(f) offsetof(sl_options, f)
static const opt_case opt_cases[] = {
    {"max_message_size=20M", NULL, F_U64, O(max_message_size), 20ULL << 20},
    {"  MAX_MESSAGE_SIZE = 512k ", NULL, F_U64, O(max_message_size), 512ULL << 10},
    {"max_message_size=1G", NULL, F_U64, O(max_message_size), 1ULL << 30},
    {"max_recipients=5", NULL, F_U32, O(max_recipients), 5},
    {"log_level=debug", NULL, F_INT, O(log_level), LOG_LVL_DEBUG},
    {"log_level=ERROR", NULL, F_INT, O(log_level), LOG_LVL_ERROR},
    {"bare_lf=normalise", NULL, F_INT, O(bare_eol), BARE_EOL_NORMALISE},
    {"bare_lf=Normalize", NULL, F_INT, O(bare_eol), BARE_EOL_NORMALISE},
    {"bare_lf=reject", NULL, F_INT, O(bare_eol), BARE_EOL_REJECT},
    {"max_errors=3", NULL, F_U32, O(max_errors), 3},
    {"idle_timeout=10m", NULL, F_U32, O(idle_timeout), 600},
    {"retry_interval=60", NULL, F_U32, O(retry_interval), 60},
    {"retry_max=2h", NULL, F_U32, O(retry_max), 7200},
    {"message_lifetime=P1DT2H", NULL, F_U32, O(message_lifetime), 93600},
    {"message_lifetime=2d", NULL, F_U32, O(message_lifetime), 172800},
    {"connect_timeout=45s", NULL, F_U32, O(connect_timeout), 45},
    {"command_timeout=600", NULL, F_U32, O(command_timeout), 600},
    {"# hash comment\n! bang comment\n\n   \nmax_recipients=7\n", NULL, F_U32, O(max_recipients), 7},
    {"max_recipients=1\r\nmax_recipients=9\r\n", NULL, F_U32, O(max_recipients), 9},
    {"max_recipients=0", "option.dat:1: max_recipients: bad value '0' (expected a number 1..100000)", F_NONE, 0, 0},
    {"max_recipients=abc", "option.dat:1: max_recipients: bad value 'abc' (expected a number 1..100000)", F_NONE, 0, 0},
    {"max_message_size=10X",
     "option.dat:1: max_message_size: bad value '10X' (expected a size such as 10M (suffix K, M or G))", F_NONE, 0, 0},
    {"max_message_size=0",
     "option.dat:1: max_message_size: bad value '0' (expected a size such as 10M (suffix K, M or G))", F_NONE, 0, 0},
    {"log_level=verbose", "option.dat:1: log_level: bad value 'verbose' (expected error, warn, info or debug)", F_NONE,
     0, 0},
    {"bare_lf=maybe", "option.dat:1: bare_lf: bad value 'maybe' (expected reject or normalise)", F_NONE, 0, 0},
    {"max_errors=-1", "option.dat:1: max_errors: bad value '-1' (expected a number 1..10000)", F_NONE, 0, 0},
    {"idle_timeout=2d", "option.dat:1: idle_timeout: bad value '2d' (expected a duration 1s..1d)", F_NONE, 0, 0},
    {"retry_interval=soon", "option.dat:1: retry_interval: bad value 'soon' (expected a duration 1s..30d)", F_NONE, 0,
     0},
    {"retry_max=0", "option.dat:1: retry_max: bad value '0' (expected a duration 1s..30d)", F_NONE, 0, 0},
    {"message_lifetime=5x", "option.dat:1: message_lifetime: bad value '5x' (expected a duration 1m..365d)", F_NONE, 0,
     0},
    {"connect_timeout=2h", "option.dat:1: connect_timeout: bad value '2h' (expected a duration 1s..1h)", F_NONE, 0, 0},
    {"command_timeout=", "option.dat:1: command_timeout: bad value '' (expected a duration 1s..1d)", F_NONE, 0, 0},
    {"spf_check=maybe", "option.dat:1: spf_check: bad value 'maybe' (expected yes or no)", F_NONE, 0, 0},
    {"spf_fail_action=defer", "option.dat:1: spf_fail_action: bad value 'defer' (expected none or reject)", F_NONE, 0,
     0},
    {"host_name=bad host", "option.dat:1: host_name: bad value 'bad host' (expected a host name)", F_NONE, 0, 0},
    {"host_name=a..b", "option.dat:1: host_name: bad value 'a..b' (expected a host name)", F_NONE, 0, 0},
    {"host_name=", "option.dat:1: host_name: bad value '' (expected a host name)", F_NONE, 0, 0},
    {"queue_dir=", "option.dat:1: queue_dir: bad value '' (expected a directory path)", F_NONE, 0, 0},
    {"maildir_root=", "option.dat:1: maildir_root: bad value '' (expected a directory path)", F_NONE, 0, 0},
    {"dns_servers=1.1.1.1 resolver.example",
     "option.dat:1: dns_servers: bad value 'resolver.example' (expected IP, IP:port or [IPv6]:port, separated by "
     "commas or spaces)",
     F_NONE, 0, 0},
    {"dns_servers=1.2.3.4:99999",
     "option.dat:1: dns_servers: bad value '1.2.3.4:99999' (expected IP, IP:port or [IPv6]:port, separated by commas "
     "or spaces)",
     F_NONE, 0, 0},
    {"dns_servers=[::1", "option.dat:1: dns_servers: bad value '[::1' (expected IP, IP:port or [IPv6]:port, separated "
                         "by commas or spaces)",
     F_NONE, 0, 0},
    {"internal_networks=10.0.0.0/8, 10.0.0.0/33",
     "option.dat:1: internal_networks: bad value '10.0.0.0/33' (expected networks such as 10.0.0.0/8 or ::1)", F_NONE,
     0, 0},
    {"nosuch=1", "option.dat:1: unknown option 'nosuch'", F_NONE, 0, 0},
    {"commit_workers=2", "option.dat:1: unknown option 'commit_workers'", F_NONE, 0, 0},
    {"max_recipients 5", "option.dat:1: expected key=value", F_NONE, 0, 0},
    {"! c\n\nfoo\n", "option.dat:3: expected key=value", F_NONE, 0, 0},
    {"retry_interval=2h", "option.dat:1: retry_max (3600s) is shorter than retry_interval (7200s)", F_NONE, 0, 0},
    {"retry_max=1m\nretry_interval=2m", "option.dat:2: retry_max (60s) is shorter than retry_interval (120s)", F_NONE,
     0, 0},
    {"max_errors=x\nlog_level=y",
     "option.dat:1: max_errors: bad value 'x' (expected a number 1..10000)\n"
     "option.dat:2: log_level: bad value 'y' (expected error, warn, info or debug)",
     F_NONE, 0, 0},
    {"session_timeout=2h", NULL, F_U32, O(session_timeout), 7200},
    {"session_timeout=0", "option.dat:1: session_timeout: bad value '0' (expected a duration 1s..7d)", F_NONE, 0, 0},
    {"session_timeout=8d", "option.dat:1: session_timeout: bad value '8d' (expected a duration 1s..7d)", F_NONE, 0, 0},
    {"min_data_rate=0", NULL, F_U32, O(min_data_rate), 0},
    {"min_data_rate=2048", NULL, F_U32, O(min_data_rate), 2048},
    {"min_data_rate=-1", "option.dat:1: min_data_rate: bad value '-1' (expected bytes per second 0..100000000)",
     F_NONE, 0, 0},
    {"min_data_rate=1K", "option.dat:1: min_data_rate: bad value '1K' (expected bytes per second 0..100000000)",
     F_NONE, 0, 0},
    {"min_data_rate_window=1m", NULL, F_U32, O(min_data_rate_window), 60},
    {"min_data_rate_window=2h", "option.dat:1: min_data_rate_window: bad value '2h' (expected a duration 1s..1h)",
     F_NONE, 0, 0},
    {"tls_min_version=TLSv1.3", NULL, F_U32, O(tls_min_version), 13},
    {"tls_min_version=tlsv1.2", NULL, F_U32, O(tls_min_version), 12},
    {"tls_min_version=TLSv1.1", "option.dat:1: tls_min_version: bad value 'TLSv1.1' (expected TLSv1.2 or TLSv1.3)",
     F_NONE, 0, 0},
    {"tls_ciphers=ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384", NULL, F_NONE, 0, 0},
    {"tls_ciphers=NO-SUCH-CIPHER", "option.dat:1: tls_ciphers: bad value 'NO-SUCH-CIPHER' (expected an OpenSSL "
     "cipher list for TLS 1.2, such as ECDHE+AESGCM:ECDHE+CHACHA20)", F_NONE, 0, 0},
    {"tls_ciphers=", "option.dat:1: tls_ciphers: bad value '' (expected an OpenSSL cipher list for TLS 1.2, such as "
     "ECDHE+AESGCM:ECDHE+CHACHA20)", F_NONE, 0, 0},
};
#undef O

static void test_options_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(opt_cases); i++) {
        const opt_case *tc = &opt_cases[i];
        conf_errors errs = {0};
        sl_options opt;
        int n = conf_parse_options("option.dat", tc->text, &opt, &errs);
        char *got = joined(&errs);
        if (strcmp(got, tc->error ? tc->error : "") != 0)
            fail_msg("case %zu '%s': got errors '%s', want '%s'", i, tc->text, got, tc->error ? tc->error : "");
        assert_int_equal((size_t)n, errs.msgs.n);
        const char *base = (const char *)&opt + tc->offset;
        uint64_t v = 0;
        if (tc->kind == F_U32) v = *(const unsigned *)(const void *)base;
        if (tc->kind == F_U64) v = *(const uint64_t *)(const void *)base;
        if (tc->kind == F_INT) v = (uint64_t) * (const int *)(const void *)base;
        if (tc->kind != F_NONE && v != tc->want) fail_msg("case %zu '%s': got %llu", i, tc->text, (unsigned long long)v);
        free(got);
        sv_free(&errs.msgs);
        conf_options_free(&opt);
    }
}

static void test_options_defaults(void **state)
{
    (void)state;
    sl_options opt;
    conf_errors errs = {0};
    assert_int_equal(conf_parse_options("option.dat", "! nothing\n", &opt, &errs), 0);
    assert_true(strlen(opt.hostname) > 0);
    assert_string_equal(opt.queue_dir, "/var/spool/sluice");
    assert_string_equal(opt.maildir_root, "/var/mail/sluice");
    assert_int_equal(opt.dns_servers.n, 0);
    assert_int_equal(opt.max_message_size, 10 * 1024 * 1024);
    assert_int_equal(opt.max_recipients, 100);
    assert_int_equal(opt.log_level, LOG_LVL_INFO);
    assert_int_equal(opt.bare_eol, BARE_EOL_REJECT);
    assert_int_equal(opt.max_errors, 10);
    assert_int_equal(opt.idle_timeout, 300);
    assert_int_equal(opt.retry_interval, 300);
    assert_int_equal(opt.retry_max, 3600);
    assert_int_equal(opt.message_lifetime, 5 * 86400);
    assert_int_equal(opt.connect_timeout, 30);
    assert_int_equal(opt.command_timeout, 300);
    assert_int_equal(opt.session_timeout, 3600);
    assert_int_equal(opt.min_data_rate, 500);
    assert_int_equal(opt.min_data_rate_window, 30);
    assert_null(opt.tls_ciphers);
    assert_int_equal(opt.tls_min_version, 12);
    assert_false(opt.mta_sts);
    assert_int_equal(opt.mta_sts_port, 443);
    assert_int_equal(opt.mta_sts_timeout, 30);
    assert_null(opt.mta_sts_cache_dir);
    assert_false(opt.spf_check);
    assert_int_equal(opt.spf_fail_action, SPF_ACTION_NONE);
    assert_int_equal(opt.n_internal_networks, 2);
    struct sockaddr_in lo = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.9.9.9", &lo.sin_addr);
    assert_true(conf_cidr_match(opt.internal_networks, opt.n_internal_networks, (struct sockaddr *)&lo));
    inet_pton(AF_INET, "10.0.0.1", &lo.sin_addr);
    assert_false(conf_cidr_match(opt.internal_networks, opt.n_internal_networks, (struct sockaddr *)&lo));
    conf_options_free(&opt);
}

static void test_options_strings(void **state)
{
    (void)state;
    sl_options opt;
    conf_errors errs = {0};
    const char *text = "Host_Name = mx1.Example.net\n"
                       "dns_servers=1.2.3.4, [::1]:5353 10.0.0.1:54,::2\n"
                       "internal_networks=192.0.2.0/24 2001:db8::/32\n"
                       "queue_dir = q/spool\n"
                       "maildir_root=/srv/mail\n"
                       "spf_check=yes\nspf_fail_action=Reject\n";
    assert_int_equal(conf_parse_options("option.dat", text, &opt, &errs), 0);
    assert_true(opt.spf_check);
    assert_int_equal(opt.spf_fail_action, SPF_ACTION_REJECT);
    assert_string_equal(opt.hostname, "mx1.Example.net");
    assert_int_equal(opt.dns_servers.n, 4);
    assert_string_equal(opt.dns_servers.v[0], "1.2.3.4:53");
    assert_string_equal(opt.dns_servers.v[1], "[::1]:5353");
    assert_string_equal(opt.dns_servers.v[2], "10.0.0.1:54");
    assert_string_equal(opt.dns_servers.v[3], "[::2]:53");
    assert_int_equal(opt.n_internal_networks, 2);
    assert_int_equal(opt.internal_networks[1].family, AF_INET6);
    assert_int_equal(opt.internal_networks[1].prefix, 32);
    char *cwd = realpath(".", NULL);
    char *want = xasprintf("%s/q/spool", cwd);
    assert_string_equal(opt.queue_dir, want);
    assert_string_equal(opt.maildir_root, "/srv/mail");
    free(want);
    free(cwd);
    conf_options_free(&opt);
}

/* ---------- CIDR ---------- */

typedef struct {
    const char *net;
    const char *addr;
    bool match;
} cidr_case;

static const cidr_case cidr_cases[] = {
    {"10.0.0.0/8", "10.200.1.1", true},
    {"10.0.0.0/8", "11.0.0.1", false},
    {"10.1.2.3/8", "10.9.9.9", true}, /* host bits ignored */
    {"192.0.2.128/25", "192.0.2.200", true},
    {"192.0.2.128/25", "192.0.2.127", false},
    {"192.0.2.1", "192.0.2.1", true},
    {"192.0.2.1", "192.0.2.2", false},
    {"0.0.0.0/0", "203.0.113.9", true},
    {"10.0.0.0/8", "::ffff:10.1.2.3", true}, /* IPv4-mapped client */
    {"10.0.0.0/8", "::ffff:11.1.2.3", false},
    {"::1", "::1", true},
    {"::1", "::2", false},
    {"::1/128", "::1", true},
    {"2001:db8::/32", "2001:db8:ffff::1", true},
    {"2001:db8::/33", "2001:db8:8000::1", false},
    {"2001:db8::/32", "10.0.0.1", false},
    {"127.0.0.0/8", "::1", false},
};

/* to_sockaddr - a sockaddr for an address string. */
static void to_sockaddr(const char *s, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, s, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, s, &a6->sin6_addr), 1);
        a6->sin6_family = AF_INET6;
    }
}

static void test_cidr_match(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(cidr_cases); i++) {
        sl_cidr net;
        struct sockaddr_storage ss;
        assert_int_equal(conf_cidr_parse(cidr_cases[i].net, &net), 0);
        to_sockaddr(cidr_cases[i].addr, &ss);
        if (conf_cidr_match(&net, 1, (struct sockaddr *)&ss) != cidr_cases[i].match)
            fail_msg("%s in %s: want %d", cidr_cases[i].addr, cidr_cases[i].net, cidr_cases[i].match);
    }
}

static void test_cidr_parse_errors(void **state)
{
    (void)state;
    static const char *bad[] = {"1.2.3.4/33", "::1/129", "foo", "1.2.3.4/", "/8", "1.2.3/8", "10.0.0.0/-1", ""};
    sl_cidr net;
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++)
        if (conf_cidr_parse(bad[i], &net) == 0) fail_msg("'%s' parsed", bad[i]);
    assert_int_equal(conf_cidr_parse("1.2.3.4", &net), 0);
    assert_int_equal(net.family, AF_INET);
    assert_int_equal(net.prefix, 32);
    assert_int_equal(conf_cidr_parse("::", &net), 0);
    assert_int_equal(net.prefix, 128);
}

/* ---------- dispatcher.cnf ---------- */

typedef struct {
    const char *text;
    const char *errors;
} text_case;

static const text_case disp_cases[] = {
    {"PORT=25\n", "dispatcher.cnf:1: 'PORT' outside a [SERVICE=NAME] section\n"
                  "dispatcher.cnf: no [SERVICE=NAME] section: at least one service is required"},
    {"", "dispatcher.cnf: no [SERVICE=NAME] section: at least one service is required"},
    {"[SERVICE=A]\nFOO=1\nPORT=25", "dispatcher.cnf:2: unknown key 'FOO'"},
    {"[SERVICE=A]\nPORT=25\n\n[SERVICE=a]\nPORT=26", "dispatcher.cnf:4: duplicate service 'a' (first at line 1)"},
    {"[SERVICE=A]\nINTERFACE_ADDRESS=127.0.0.1", "dispatcher.cnf:1: service 'A' has no PORT"},
    {"[SERVICE=A]\nPORT=0", "dispatcher.cnf:2: PORT: bad port '0' (expected 1..65535)\n"
                            "dispatcher.cnf:1: service 'A' has no PORT"},
    {"[SERVICE=A]\nPORT=25,70000", "dispatcher.cnf:2: PORT: bad port '70000' (expected 1..65535)"},
    {"[SERVICE=A]\nPORT=25 25", "dispatcher.cnf:2: PORT: duplicate port 25"},
    {"[SERVICE=A]\nPORT=", "dispatcher.cnf:2: PORT: no port given\ndispatcher.cnf:1: service 'A' has no PORT"},
    {"[SERVICE=A]\nPORT=25\nINTERFACE_ADDRESS=localhost",
     "dispatcher.cnf:3: INTERFACE_ADDRESS: bad address 'localhost' (expected an IPv4 or IPv6 address)"},
    {"[SERVICE=A]\nPORT=25\nPARAMETER=FOO=bar",
     "dispatcher.cnf:3: PARAMETER: unknown parameter 'FOO' (expected CHANNEL=name)"},
    {"[SERVICE=A]\nPORT=25\nPARAMETER=CHANNEL", "dispatcher.cnf:3: PARAMETER: expected CHANNEL=name, got 'CHANNEL'"},
    {"[SERVICE=A]\nPORT=25\nPARAMETER=CHANNEL=", "dispatcher.cnf:3: PARAMETER: bad channel name ''"},
    {"[POOL=X]\nPORT=25", "dispatcher.cnf:1: unknown section '[POOL=...]' (expected [SERVICE=NAME])"},
    {"[SERVICE=A\nPORT=25", "dispatcher.cnf:1: malformed section header '[SERVICE=A' (expected [SERVICE=NAME])"},
    {"[SERVICE=A]\nPORT 25", "dispatcher.cnf:2: expected KEY=VALUE or [SERVICE=NAME]\n"
                            "dispatcher.cnf:1: service 'A' has no PORT"},
    {"# ok\n[SERVICE=A]\nPORT=25\n", NULL},
};

static void test_dispatcher_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(disp_cases); i++) {
        sl_conf c = {0};
        conf_errors errs = {0};
        int n = conf_parse_dispatcher("dispatcher.cnf", disp_cases[i].text, &c, &errs);
        char *got = joined(&errs);
        const char *want = disp_cases[i].errors ? disp_cases[i].errors : "";
        if (strcmp(got, want) != 0) fail_msg("case %zu: got '%s', want '%s'", i, got, want);
        assert_int_equal((size_t)n, errs.msgs.n);
        free(got);
        sv_free(&errs.msgs);
        conf_dispatcher_free(&c);
    }
}

static void test_dispatcher_values(void **state)
{
    (void)state;
    sl_conf c = {0};
    conf_errors errs = {0};
    const char *text = "! services\n"
                       "[service=smtp]\n"
                       "port=25, 587 465\n"
                       "Interface_Address=[::1],127.0.0.1\n"
                       "parameter=channel=TCP_Notify\n"
                       "\n"
                       "[SERVICE=B]\n"
                       "PORT=2525\n";
    assert_int_equal(conf_parse_dispatcher("dispatcher.cnf", text, &c, &errs), 0);
    assert_int_equal(c.n_services, 2);
    sl_service *s = &c.services[0];
    assert_string_equal(s->name, "smtp");
    assert_int_equal(s->line, 2);
    assert_int_equal(s->ports.n, 3);
    assert_string_equal(s->ports.v[0], "25");
    assert_string_equal(s->ports.v[2], "465");
    assert_int_equal(s->addresses.n, 2);
    assert_string_equal(s->addresses.v[0], "::1");
    assert_string_equal(s->addresses.v[1], "127.0.0.1");
    assert_string_equal(s->channel, "tcp_notify");
    s = &c.services[1];
    assert_int_equal(s->line, 7);
    assert_int_equal(s->addresses.n, 1);
    assert_string_equal(s->addresses.v[0], "0.0.0.0");
    assert_string_equal(s->channel, "tcp_local");
    conf_dispatcher_free(&c);
}

/* ---------- sluice.cnf ---------- */

static const text_case cnf_cases[] = {
    {"example.com\n\nl\nlocal-daemon\n", "sluice.cnf:1: rule without template"},
    {". $U@x extra\n\nl\nx\n", "sluice.cnf:1: unexpected text after the template: 'extra'"},
    {". $U@x\n\nl foo\nx\n", "sluice.cnf:3: unknown channel keyword 'foo'"},
    {". $U@x\n\ntcp_x maxjob 3 smtp bad\nx\n", "sluice.cnf:3: unknown channel keyword 'maxjob'\n"
                                                "sluice.cnf:3: unknown channel keyword 'bad'"},
    {". $U@x\n\nl\n", "sluice.cnf:3: channel 'l' has no host name (expected on the line after the channel name)"},
    {". $U@x\n\nl\nx\n\ntcp_a smtp\n\ntcp_b\nb\n",
     "sluice.cnf:6: channel 'tcp_a' has no host name (expected on the line after the channel name)"},
    {". $U@x\n\nl\na\n\nL\nb\n", "sluice.cnf:6: duplicate channel 'l' (first at line 3)"},
    {". $U@x\n\nl\na\n\ntcp_x\nA\n", "sluice.cnf:7: host name 'a' already belongs to channel 'l'"},
    {". $U@x\n\nl\na\nb c\n", "sluice.cnf:5: a host line holds one host name, got 'b c'"},
    {"\ntcp_x smtp port\nh\n", "sluice.cnf:2: channel keyword 'port' needs an argument"},
    {"\ntcp_x daemon\nh\n", "sluice.cnf:2: channel keyword 'daemon' needs an argument"},
    {"\ntcp_x subdirs\nh\n", "sluice.cnf:2: channel keyword 'subdirs' needs an argument"},
    {"\ntcp_x maxjobs\nh\n", "sluice.cnf:2: channel keyword 'maxjobs' needs an argument"},
    {"\ntcp_x port 0\nh\n", "sluice.cnf:2: channel keyword 'port': bad value '0' (expected 1..65535)"},
    {"\ntcp_x subdirs 1001\nh\n", "sluice.cnf:2: channel keyword 'subdirs': bad value '1001' (expected 1..1000)"},
    {"\ntcp_x maxjobs x\nh\n", "sluice.cnf:2: channel keyword 'maxjobs': bad value 'x' (expected 1..1000)"},
    {"\nl\nh\n\ndefaults\n", "sluice.cnf:5: 'defaults' must be the first channel block"},
    {"\ndefaults\nh\n\nl\nx\n", "sluice.cnf:3: 'defaults' takes no host names"},
    {". $U@x\n", "sluice.cnf: no channel defined (channel blocks follow the first blank line)"},
    {"\ndefaults smtp\n", "sluice.cnf: no channel defined (channel blocks follow the first blank line)"},
    {"! only comments count as nothing\n. $U@x\n! still rules\nx $U@y\n\n! c\nl\n! c\nh\n", NULL},
    /* channel machinery keywords (issue 3) */
    {"\ntcp_x daemon bad..host\nh\n", "sluice.cnf:2: channel keyword 'daemon': bad value 'bad..host' (expected a host name)"},
    {"\ntcp_x port 65536\nh\n", "sluice.cnf:2: channel keyword 'port': bad value '65536' (expected 1..65535)"},
    {"\ntcp_x pool\nh\n", "sluice.cnf:2: channel keyword 'pool' needs an argument"},
    {"\ntcp_x pool a=b\nh\n", "sluice.cnf:2: channel keyword 'pool': bad value 'a=b' (expected a name)"},
    {"\ntcp_x backoff\nh\n", "sluice.cnf:2: channel keyword 'backoff' needs an argument"},
    {"\ntcp_x backoff loopcheck\nh\n", "sluice.cnf:2: channel keyword 'backoff' needs an argument"},
    {"\ntcp_x backoff \"pt4h\" bogus\nh\n",
     "sluice.cnf:2: channel keyword 'backoff': bad value 'bogus' (expected an ISO 8601 duration such as \"PT4H\")"},
    {"\ntcp_x backoff 4h\nh\n",
     "sluice.cnf:2: channel keyword 'backoff': bad value '4h' (expected an ISO 8601 duration such as \"PT4H\")"},
    {"\ntcp_x backoff 600\nh\n",
     "sluice.cnf:2: channel keyword 'backoff': bad value '600' (expected an ISO 8601 duration such as \"PT4H\")"},
    {"\ntcp_x backoff PT0S\nh\n",
     "sluice.cnf:2: channel keyword 'backoff': bad value 'PT0S' (expected an ISO 8601 duration such as \"PT4H\")"},
    {"\ntcp_x backoff \"pt4h\nh\n",
     "sluice.cnf:2: channel keyword 'backoff': bad value '\"pt4h' (expected an ISO 8601 duration such as \"PT4H\")"},
    {"\ntcp_x backoff \"\"\nh\n",
     "sluice.cnf:2: channel keyword 'backoff': bad value '\"\"' (expected an ISO 8601 duration such as \"PT4H\")"},
    {"\ntcp_x backoff P1H\nh\n",
     "sluice.cnf:2: channel keyword 'backoff': bad value 'P1H' (expected an ISO 8601 duration such as \"PT4H\")"},
    {"\ntcp_x backoff PT1S PT2S PT3S PT4S PT5S PT6S PT7S PT8S PT9S\nh\n",
     "sluice.cnf:2: channel keyword 'backoff': 9 durations given (at most 8)"},
    {"\ntcp_x notices\nh\n", "sluice.cnf:2: channel keyword 'notices' needs an argument"},
    {"\ntcp_x notices 0\nh\n", "sluice.cnf:2: channel keyword 'notices': bad value '0' (expected days 1..3650 or an "
                               "ISO 8601 duration such as \"PT10S\")"},
    {"\ntcp_x notices 1d\nh\n", "sluice.cnf:2: channel keyword 'notices': bad value '1d' (expected days 1..3650 or "
                                "an ISO 8601 duration such as \"PT10S\")"},
    {"\ntcp_x notices 2 1\nh\n", "sluice.cnf:2: channel keyword 'notices': ages must increase ('1' after '2')"},
    {"\ntcp_x notices PT1M PT60S\nh\n",
     "sluice.cnf:2: channel keyword 'notices': ages must increase ('PT60S' after 'PT1M')"},
    {"\ntcp_x notices 1 2 3 4 5 6\nh\n", "sluice.cnf:2: channel keyword 'notices': 6 ages given (at most 5)"},
    {"\ntcp_x lastresort\nh\n", "sluice.cnf:2: channel keyword 'lastresort' needs an argument"},
    {"\ntcp_x lastresort -\"x\nh\n",
     "sluice.cnf:2: channel keyword 'lastresort': bad value '-\"x' (expected a host name)"},
    {"\ntcp_x notificationchannel\nh\n", "sluice.cnf:2: channel keyword 'notificationchannel' needs an argument"},
    {"\ntcp_x dispositionchannel\nh\n", "sluice.cnf:2: channel keyword 'dispositionchannel' needs an argument"},
    {"\ntcp_x notificationchannel process_dsn\nh\n",
     "sluice.cnf:2: channel 'tcp_x': notificationchannel 'process_dsn' is not a channel"},
    {"\ntcp_x dispositionchannel nope\nh\n",
     "sluice.cnf:2: channel 'tcp_x': dispositionchannel 'nope' is not a channel"},
    {"\ndefaults\n\ntcp_x notificationchannel defaults\nh\n",
     "sluice.cnf:4: channel 'tcp_x': notificationchannel 'defaults' is not a channel"},
    /* inherited from defaults: reported once, on the defaults line */
    {"\ndefaults notificationchannel nope\n\ntcp_x\nh\n\nl\nlh\n",
     "sluice.cnf:2: channel 'defaults': notificationchannel 'nope' is not a channel"},
    {"\ndefaults notificationchannel nope\n\ntcp_x notificationchannel l\nh\n\nl\nlh\n",
     "sluice.cnf:2: channel 'defaults': notificationchannel 'nope' is not a channel"},
    {"\ntcp_x selfmx yes\nh\n", "sluice.cnf:2: unknown channel keyword 'yes'"},
    {"\ntcp_x tls\nh\n", "sluice.cnf:2: unknown channel keyword 'tls'"},
    {"\ntcp/x\nh\n", "sluice.cnf:2: bad channel name 'tcp/x'"},
    /* the default "process" needs no channel of that name; an explicit one is checked like any other */
    {"\ntcp_x notificationchannel process dispositionchannel PROCESS\nh\n", NULL},
    {"\ntcp_x notificationchannel process_dsn\nh\n\nprocess_dsn\npd\n", NULL},
};

static void test_sluice_cnf_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(cnf_cases); i++) {
        sl_conf c = {0};
        conf_errors errs = {0};
        int n = conf_parse_sluice_cnf("sluice.cnf", cnf_cases[i].text, &c, &errs);
        char *got = joined(&errs);
        const char *want = cnf_cases[i].errors ? cnf_cases[i].errors : "";
        if (strcmp(got, want) != 0) fail_msg("case %zu: got '%s', want '%s'", i, got, want);
        assert_int_equal((size_t)n, errs.msgs.n);
        free(got);
        sv_free(&errs.msgs);
        conf_sluice_cnf_free(&c);
    }
}

/* A bad template is reported with the rewrite engine's own reason (its wording is tested in trace_rewrite.c). */
static void test_sluice_cnf_bad_templates(void **state)
{
    (void)state;
    static const char *bad[] = {"$U%$X@x", "$U", "$U@a@b", "$U@a%b", "$U%@b", "$U@x$"};
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        char why[256];
        if (rewrite_template_check(bad[i], why, sizeof why) == 0) fail_msg("'%s' accepted", bad[i]);
        sl_conf c = {0};
        conf_errors errs = {0};
        char *text = xasprintf("! r\n. %s\n\nl\nx\n", bad[i]);
        assert_int_equal(conf_parse_sluice_cnf("sluice.cnf", text, &c, &errs), 0); /* conf: syntax only */
        assert_int_equal(rewrite_rules_check(&c, "sluice.cnf", &errs), 1);
        char *want = xasprintf("sluice.cnf:2: bad template '%s': %s", bad[i], why);
        assert_string_equal(errs.msgs.v[0], want);
        free(want);
        free(text);
        sv_free(&errs.msgs);
        conf_sluice_cnf_free(&c);
    }
}

static void test_sluice_cnf_values(void **state)
{
    (void)state;
    sl_conf c = {0};
    conf_errors errs = {0};
    const char *text = "! rules\n"
                       "Example.COM   $U%$D@local-daemon\n"
                       "\t.\t$U%$H@tcp_a-daemon\n"
                       "\n"
                       "defaults maxjobs 3 nomx port 2525 daemon Smart.Example\n"
                       "\n"
                       "tcp_a smtp\n"
                       "tcp_a-daemon\n"
                       "Alias.Example\n"
                       "\n"
                       "\n"
                       "TCP_B mx subdirs 7 maxjobs 5\n"
                       "B-Daemon\n"
                       "\n"
                       "l\n"
                       "local-daemon\n";
    assert_int_equal(conf_parse_sluice_cnf("sluice.cnf", text, &c, &errs), 0);
    assert_int_equal(c.n_rules, 2);
    assert_string_equal(c.rules[0].pattern, "example.com");
    assert_string_equal(c.rules[0].tmpl, "$U%$D@local-daemon");
    assert_int_equal(c.rules[0].line, 2);
    assert_string_equal(c.rules[1].pattern, ".");
    assert_int_equal(c.n_channels, 4);
    assert_string_equal(c.channels[0].name, "defaults");
    const sl_channel *a = conf_channel_by_name(&c, "TCP_A");
    assert_non_null(a);
    assert_int_equal(a->type, CHAN_SMTP);
    assert_true(a->smtp);
    assert_false(a->mx); /* from defaults nomx */
    assert_int_equal(a->port, 2525);
    assert_int_equal(a->maxjobs, 3);
    assert_int_equal(a->subdirs, 1);
    assert_string_equal(a->daemon, "smart.example");
    assert_int_equal(a->line, 7);
    assert_int_equal(a->hosts.n, 2);
    assert_string_equal(a->hosts.v[0], "tcp_a-daemon");
    assert_string_equal(a->hosts.v[1], "alias.example");
    const sl_channel *b = conf_channel_by_host(&c, "b-daemon");
    assert_non_null(b);
    assert_string_equal(b->name, "tcp_b");
    assert_true(b->mx);
    assert_false(b->smtp);
    assert_int_equal(b->subdirs, 7);
    assert_int_equal(b->maxjobs, 5);
    assert_ptr_equal(conf_channel_by_host(&c, "ALIAS.example"), a);
    assert_null(conf_channel_by_host(&c, "nowhere"));
    assert_null(conf_channel_by_name(&c, "tcp_c"));
    const sl_channel *l = conf_channel_by_name(&c, "l");
    assert_int_equal(l->type, CHAN_LOCAL);
    conf_sluice_cnf_free(&c);
}

static void test_sluice_cnf_builtin_defaults(void **state)
{
    (void)state;
    sl_conf c = {0};
    conf_errors errs = {0};
    const char *text = ". $U%$H@t\n\ntcp_x\nt\n\nl\nlh\n\ntcp_y nomx\nty\n";
    assert_int_equal(conf_parse_sluice_cnf("sluice.cnf", text, &c, &errs), 0);
    const sl_channel *x = conf_channel_by_name(&c, "tcp_x");
    assert_true(x->mx);
    assert_false(x->smtp);
    assert_null(x->daemon);
    assert_int_equal(x->port, 25);
    assert_int_equal(x->subdirs, 1);
    assert_int_equal(x->maxjobs, 10);
    assert_false(conf_channel_by_name(&c, "l")->mx);
    assert_false(conf_channel_by_name(&c, "tcp_y")->mx);
    conf_sluice_cnf_free(&c);
}

/* ---------- channel keywords (issue 3): one valid case per keyword ---------- */

enum chan_field_kind { CF_BOOL, CF_UINT, CF_ENUM, CF_STR };

typedef struct {
    const char *name;     /* channel name (its type sets some defaults) */
    const char *keywords; /* "" for the built-in defaults */
    enum chan_field_kind kind;
    size_t offset;
    long want;            /* CF_BOOL, CF_UINT, CF_ENUM */
    const char *want_str; /* CF_STR (NULL: the field is NULL) */
} chan_kw_case;

#define CF(f) offsetof(sl_channel, f)
static const chan_kw_case chan_kw_cases[] = {
    /* built-in defaults */
    {"tcp_x", "", CF_BOOL, CF(smtp), false, NULL},
    {"tcp_x", "", CF_BOOL, CF(lmtp), false, NULL},
    {"lmtp_x", "", CF_BOOL, CF(lmtp), true, NULL},
    {"tcp_x", "", CF_BOOL, CF(mx), true, NULL},
    {"l", "", CF_BOOL, CF(mx), false, NULL},
    {"tcp_x", "", CF_STR, CF(daemon), 0, NULL},
    {"tcp_x", "", CF_UINT, CF(port), 25, NULL},
    {"tcp_x", "", CF_ENUM, CF(addrmode), CHAN_SINGLE_SYS, NULL},
    {"tcp_x", "", CF_BOOL, CF(remotehost), false, NULL},
    {"tcp_x", "", CF_BOOL, CF(inner), false, NULL},
    {"tcp_x", "", CF_UINT, CF(subdirs), 1, NULL},
    {"tcp_x", "", CF_UINT, CF(maxjobs), 10, NULL},
    {"tcp_x", "", CF_STR, CF(pool), 0, NULL}, /* filled with the first pool by conf_load */
    {"tcp_x", "", CF_UINT, CF(n_backoff), 0, NULL},
    {"tcp_x", "", CF_UINT, CF(n_notices), 0, NULL},
    {"tcp_x", "", CF_BOOL, CF(loopcheck), false, NULL},
    {"tcp_x", "", CF_BOOL, CF(allow_self_mx), false, NULL},
    {"tcp_x", "", CF_BOOL, CF(chunking), false, NULL},
    {"tcp_x", "", CF_STR, CF(notificationchannel), 0, "process"},
    {"tcp_x", "", CF_STR, CF(dispositionchannel), 0, "process"},
    {"tcp_x", "", CF_STR, CF(lastresort), 0, NULL},
    {"tcp_x", "", CF_BOOL, CF(rules), true, NULL},
    {"tcp_x", "", CF_ENUM, CF(tls), CHAN_TLS_MAY, NULL},
    {"l", "", CF_ENUM, CF(tls), CHAN_TLS_NO, NULL},
    {"lmtp_x", "", CF_ENUM, CF(tls), CHAN_TLS_NO, NULL},
    {"tcp_x", "", CF_BOOL, CF(errsendpost), true, NULL},
    /* every keyword */
    {"tcp_x", "smtp", CF_BOOL, CF(smtp), true, NULL},
    {"tcp_x", "LMTP", CF_BOOL, CF(lmtp), true, NULL},
    {"l", "lmtp", CF_BOOL, CF(lmtp), true, NULL},
    {"l", "mx", CF_BOOL, CF(mx), true, NULL},
    {"tcp_x", "nomx", CF_BOOL, CF(mx), false, NULL},
    {"tcp_x", "nomx mx", CF_BOOL, CF(mx), true, NULL},
    {"tcp_x", "daemon Smart.Example", CF_STR, CF(daemon), 0, "smart.example"},
    {"tcp_x", "daemon [192.0.2.1]", CF_STR, CF(daemon), 0, "[192.0.2.1]"},
    {"tcp_x", "port 2525", CF_UINT, CF(port), 2525, NULL},
    {"tcp_x", "single_sys", CF_ENUM, CF(addrmode), CHAN_SINGLE_SYS, NULL},
    {"tcp_x", "single", CF_ENUM, CF(addrmode), CHAN_SINGLE, NULL},
    {"tcp_x", "Multiple", CF_ENUM, CF(addrmode), CHAN_MULTIPLE, NULL},
    {"tcp_x", "multiple single_sys", CF_ENUM, CF(addrmode), CHAN_SINGLE_SYS, NULL},
    {"tcp_x", "remotehost", CF_BOOL, CF(remotehost), true, NULL},
    {"tcp_x", "remotehost noremotehost", CF_BOOL, CF(remotehost), false, NULL},
    {"tcp_x", "inner", CF_BOOL, CF(inner), true, NULL},
    {"tcp_x", "subdirs 20", CF_UINT, CF(subdirs), 20, NULL},
    {"tcp_x", "maxjobs 1000", CF_UINT, CF(maxjobs), 1000, NULL},
    {"tcp_x", "pool Notify_Pool", CF_STR, CF(pool), 0, "Notify_Pool"},
    {"tcp_x", "backoff \"pt4h\"", CF_UINT, CF(n_backoff), 1, NULL},
    {"tcp_x", "notices 1 2", CF_UINT, CF(n_notices), 2, NULL},
    {"tcp_x", "loopcheck", CF_BOOL, CF(loopcheck), true, NULL},
    {"tcp_x", "selfmx", CF_BOOL, CF(allow_self_mx), true, NULL},
    {"tcp_x", "Chunking", CF_BOOL, CF(chunking), true, NULL},
    {"tcp_x", "chunking nochunking", CF_BOOL, CF(chunking), false, NULL},
    {"tcp_x", "notificationchannel L", CF_STR, CF(notificationchannel), 0, "l"},
    {"tcp_x", "dispositionchannel l", CF_STR, CF(dispositionchannel), 0, "l"},
    {"tcp_x", "lastresort Backup.Example", CF_STR, CF(lastresort), 0, "backup.example"},
    {"tcp_x", "norules", CF_BOOL, CF(rules), false, NULL},
    {"tcp_x", "norules rules", CF_BOOL, CF(rules), true, NULL},
    {"tcp_x", "musttls", CF_ENUM, CF(tls), CHAN_TLS_MUST, NULL},
    {"tcp_x", "notls", CF_ENUM, CF(tls), CHAN_TLS_NO, NULL},
    {"l", "maytls", CF_ENUM, CF(tls), CHAN_TLS_MAY, NULL},
    {"tcp_x", "nosendpost", CF_BOOL, CF(errsendpost), false, NULL},
    {"tcp_x", "nosendpost errsendpost", CF_BOOL, CF(errsendpost), true, NULL},
};
#undef CF

/* chan_field - the field of a chan_kw_case as a number. */
static long chan_field(const sl_channel *ch, const chan_kw_case *tc)
{
    const char *base = (const char *)ch + tc->offset;
    switch (tc->kind) {
    case CF_BOOL: return *(const bool *)(const void *)base;
    case CF_UINT:
        if (tc->offset == offsetof(sl_channel, n_backoff) || tc->offset == offsetof(sl_channel, n_notices))
            return (long)*(const size_t *)(const void *)base;
        return *(const unsigned *)(const void *)base;
    case CF_ENUM: return *(const int *)(const void *)base;
    case CF_STR: break;
    }
    return -1;
}

static void test_channel_keywords(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(chan_kw_cases); i++) {
        const chan_kw_case *tc = &chan_kw_cases[i];
        sl_conf c = {0};
        conf_errors errs = {0};
        char *text = xasprintf(". $U@h\n\n%s %s\nh\n\nl%s\nlh\n", tc->name, tc->keywords, str_ieq(tc->name, "l") ? "2" : "");
        int n = conf_parse_sluice_cnf("sluice.cnf", text, &c, &errs);
        char *got = joined(&errs);
        if (n != 0) fail_msg("case %zu '%s %s': %s", i, tc->name, tc->keywords, got);
        const sl_channel *ch = conf_channel_by_name(&c, tc->name);
        assert_non_null(ch);
        if (tc->kind == CF_STR) {
            const char *v = *(char *const *)(const void *)((const char *)ch + tc->offset);
            if (!tc->want_str ? v != NULL : (!v || strcmp(v, tc->want_str) != 0))
                fail_msg("case %zu '%s %s': got '%s'", i, tc->name, tc->keywords, v ? v : "(null)");
        } else if (chan_field(ch, tc) != tc->want) {
            fail_msg("case %zu '%s %s': got %ld, want %ld", i, tc->name, tc->keywords, chan_field(ch, tc), tc->want);
        }
        free(got);
        free(text);
        conf_sluice_cnf_free(&c);
    }
}

/* parse_lists - parse the one channel line (host "h") and copy out its backoff and notices. */
static void parse_lists(const char *line, int64_t *backoff, size_t *nb, int64_t *notices, size_t *nn)
{
    sl_conf c = {0};
    conf_errors errs = {0};
    char *text = xasprintf("\n%s\nh\n", line);
    assert_int_equal(conf_parse_sluice_cnf("sluice.cnf", text, &c, &errs), 0);
    const sl_channel *ch = &c.channels[0];
    memcpy(backoff, ch->backoff, sizeof ch->backoff);
    memcpy(notices, ch->notices, sizeof ch->notices);
    *nb = ch->n_backoff;
    *nn = ch->n_notices;
    free(text);
    conf_sluice_cnf_free(&c);
}

static void test_channel_backoff_notices(void **state)
{
    (void)state;
    int64_t b[8], nt[5];
    size_t nb, nn;
    /* quoted or not, any case; the list ends at the next keyword */
    parse_lists("tcp_x backoff \"pt4h\" PT8H \"P1D\" P1DT2H30M \"PT10S\" loopcheck notices 1 PT36H \"P3D\" 4 PT10000M",
                b, &nb, nt, &nn);
    assert_int_equal(nb, 5);
    assert_int_equal(b[0], 14400);
    assert_int_equal(b[1], 28800);
    assert_int_equal(b[2], 86400);
    assert_int_equal(b[3], 86400 + 2 * 3600 + 30 * 60);
    assert_int_equal(b[4], 10);
    assert_int_equal(nn, 5);
    assert_int_equal(nt[0], 86400);
    assert_int_equal(nt[1], 36 * 3600);
    assert_int_equal(nt[2], 3 * 86400);
    assert_int_equal(nt[3], 4 * 86400);
    assert_int_equal(nt[4], 10000 * 60);
    /* eight durations at most, five ages at most; seconds for tests */
    parse_lists("tcp_x notices PT10S PT20S backoff PT1S PT2S PT3S PT4S PT5S PT6S PT7S PT8S", b, &nb, nt, &nn);
    assert_int_equal(nb, 8);
    assert_int_equal(b[7], 8);
    assert_int_equal(nn, 2);
    assert_int_equal(nt[0], 10);
    assert_int_equal(nt[1], 20);
    /* a later backoff replaces an earlier one */
    parse_lists("tcp_x backoff PT1H PT2H backoff PT3H", b, &nb, nt, &nn);
    assert_int_equal(nb, 1);
    assert_int_equal(b[0], 10800);
    assert_int_equal(nn, 0);
}

/* The "defaults" block: its keywords are the starting values of every later channel. */
static void test_channel_defaults_propagation(void **state)
{
    (void)state;
    sl_conf c = {0};
    conf_errors errs = {0};
    const char *text = "\n"
                       "defaults smtp lmtp daemon relay.example port 587 multiple remotehost inner subdirs 3 maxjobs 4 "
                       "pool P backoff PT1M PT2M notices PT1H PT2H loopcheck selfmx chunking notificationchannel process_dsn "
                       "dispositionchannel l lastresort last.example norules nosendpost\n"
                       "\n"
                       "tcp_a\n"
                       "a\n"
                       "\n"
                       "tcp_b nomx single daemon other.example port 25 noremotehost subdirs 9 maxjobs 1 pool Q "
                       "backoff PT5M notices 2 notificationchannel tcp_a dispositionchannel tcp_a rules errsendpost "
                       "musttls\n"
                       "b\n"
                       "\n"
                       "l\n"
                       "lh\n"
                       "\n"
                       "process_dsn\n"
                       "pd\n";
    int n = conf_parse_sluice_cnf("sluice.cnf", text, &c, &errs);
    char *got = joined(&errs);
    if (n) fail_msg("%s", got);
    free(got);
    const sl_channel *a = conf_channel_by_name(&c, "tcp_a");
    assert_true(a->smtp && a->lmtp && a->mx && a->remotehost && a->inner && a->loopcheck && a->allow_self_mx);
    assert_true(a->chunking);
    assert_false(a->rules);
    assert_false(a->errsendpost);
    assert_string_equal(a->daemon, "relay.example");
    assert_int_equal(a->port, 587);
    assert_int_equal(a->addrmode, CHAN_MULTIPLE);
    assert_int_equal(a->subdirs, 3);
    assert_int_equal(a->maxjobs, 4);
    assert_string_equal(a->pool, "P");
    assert_int_equal(a->n_backoff, 2);
    assert_int_equal(a->backoff[1], 120);
    assert_int_equal(a->n_notices, 2);
    assert_int_equal(a->notices[1], 7200);
    assert_string_equal(a->notificationchannel, "process_dsn");
    assert_string_equal(a->dispositionchannel, "l");
    assert_string_equal(a->lastresort, "last.example");
    assert_int_equal(a->tls, CHAN_TLS_MAY); /* "defaults" said no TLS keyword: the tcp_* default */
    const sl_channel *b = conf_channel_by_name(&c, "tcp_b");
    assert_false(b->mx || b->remotehost);
    assert_true(b->rules && b->errsendpost && b->lmtp && b->inner);
    assert_string_equal(b->daemon, "other.example");
    assert_int_equal(b->port, 25);
    assert_int_equal(b->addrmode, CHAN_SINGLE);
    assert_int_equal(b->subdirs, 9);
    assert_int_equal(b->maxjobs, 1);
    assert_string_equal(b->pool, "Q");
    assert_int_equal(b->n_backoff, 1);
    assert_int_equal(b->backoff[0], 300);
    assert_int_equal(b->n_notices, 1);
    assert_int_equal(b->notices[0], 2 * 86400);
    assert_string_equal(b->notificationchannel, "tcp_a");
    assert_string_equal(b->dispositionchannel, "tcp_a");
    assert_int_equal(b->tls, CHAN_TLS_MUST);
    const sl_channel *l = conf_channel_by_name(&c, "l");
    assert_false(l->mx); /* "defaults" said neither mx nor nomx: the type's default */
    assert_int_equal(l->tls, CHAN_TLS_NO);
    conf_sluice_cnf_free(&c);

    /* type-dependent keywords given on "defaults" apply to every type */
    text = "\ndefaults nomx musttls\n\ntcp_a\na\n\nl\nlh\n";
    assert_int_equal(conf_parse_sluice_cnf("sluice.cnf", text, &c, &errs), 0);
    assert_false(conf_channel_by_name(&c, "tcp_a")->mx);
    assert_int_equal(conf_channel_by_name(&c, "tcp_a")->tls, CHAN_TLS_MUST);
    assert_int_equal(conf_channel_by_name(&c, "l")->tls, CHAN_TLS_MUST);
    conf_sluice_cnf_free(&c);
}

static void test_channel_types(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum channel_type type;
    } cases[] = {
        {"l", CHAN_LOCAL},         {"tcp_local", CHAN_SMTP},   {"tcp_notify", CHAN_SMTP},
        {"lmtp", CHAN_LMTP},       {"lmtp_be", CHAN_LMTP},     {"process", CHAN_PROCESS},
        {"process_dsn", CHAN_PROCESS}, {"bitbucket", CHAN_BITBUCKET}, {"hold", CHAN_HOLD},
        {"defaults", CHAN_OTHER},  {"local", CHAN_OTHER},      {"tcp", CHAN_OTHER},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++)
        if (conf_channel_type(cases[i].name) != cases[i].type) fail_msg("%s", cases[i].name);
}

/* ---------- job_controller.cnf ---------- */

static const text_case jc_cases[] = {
    {"job_limit=5\n", "job_controller.cnf:1: 'job_limit' outside a [POOL=NAME] section"},
    {"[POOL=A]\nfoo=1\n", "job_controller.cnf:2: unknown key 'foo'"},
    {"[POOL=A]\njob_limit=0\n", "job_controller.cnf:2: job_limit: bad value '0' (expected 1..10000)"},
    {"[POOL=A]\njob_limit=10001\n", "job_controller.cnf:2: job_limit: bad value '10001' (expected 1..10000)"},
    {"[POOL=A]\njob_limit=\n", "job_controller.cnf:2: job_limit: bad value '' (expected 1..10000)"},
    {"[POOL=A]\njob_limit 5\n", "job_controller.cnf:2: expected key=value or [POOL=NAME]"},
    {"[POOL=A]\n\n[pool=a]\njob_limit=x\n", "job_controller.cnf:3: duplicate pool 'a' (first at line 1)\n"
                                         "job_controller.cnf:4: job_limit: bad value 'x' (expected 1..10000)"},
    {"[SERVICE=A]\n", "job_controller.cnf:1: unknown section '[SERVICE=...]' (expected [POOL=NAME])"},
    {"[POOL=A\n", "job_controller.cnf:1: malformed section header '[POOL=A' (expected [POOL=NAME])"},
    {"[POOL]\n", "job_controller.cnf:1: malformed section header '[POOL]' (expected [POOL=NAME])"},
    {"[POOL=]\n", "job_controller.cnf:1: bad pool name ''"},
    {"[POOL=a b]\n", "job_controller.cnf:1: bad pool name 'a b'"},
    {"! c\n# c\n\n[POOL=A]\n  Job_Limit = 3 \n", NULL},
};

static void test_job_controller_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(jc_cases); i++) {
        sl_conf c = {0};
        conf_errors errs = {0};
        int n = conf_parse_job_controller("job_controller.cnf", jc_cases[i].text, &c, &errs);
        char *got = joined(&errs);
        const char *want = jc_cases[i].errors ? jc_cases[i].errors : "";
        if (strcmp(got, want) != 0) fail_msg("case %zu: got '%s', want '%s'", i, got, want);
        assert_int_equal((size_t)n, errs.msgs.n);
        assert_true(c.n_pools >= 1);
        free(got);
        sv_free(&errs.msgs);
        conf_job_controller_free(&c);
    }
}

static void test_job_controller_values(void **state)
{
    (void)state;
    sl_conf c = {0};
    conf_errors errs = {0};
    /* no pool at all: one pool DEFAULT with job_limit 10 */
    assert_int_equal(conf_parse_job_controller("job_controller.cnf", "! nothing\n", &c, &errs), 0);
    assert_int_equal(c.n_pools, 1);
    assert_string_equal(c.pools[0].name, "DEFAULT");
    assert_int_equal(c.pools[0].job_limit, 10);
    assert_int_equal(c.pools[0].line, 0);
    conf_job_controller_free(&c);
    assert_int_equal(c.n_pools, 0);

    const char *text = "! pools\n"
                       "[POOL=LOCAL]\n"
                       "job_limit=20\n"
                       "\n"
                       "[POOL=NOTIFY_POOL]\n"
                       "job_limit=2\n"
                       "job_limit=3\n"
                       "[ pool = Empty ]\n";
    assert_int_equal(conf_parse_job_controller("job_controller.cnf", text, &c, &errs), 0);
    assert_int_equal(c.n_pools, 3);
    assert_string_equal(c.pools[0].name, "LOCAL");
    assert_int_equal(c.pools[0].job_limit, 20);
    assert_int_equal(c.pools[0].line, 2);
    assert_string_equal(c.pools[1].name, "NOTIFY_POOL");
    assert_int_equal(c.pools[1].job_limit, 3); /* the last job_limit wins */
    assert_string_equal(c.pools[2].name, "Empty");
    assert_int_equal(c.pools[2].job_limit, 10);
    assert_ptr_equal(conf_pool_by_name(&c, "notify_pool"), &c.pools[1]);
    assert_null(conf_pool_by_name(&c, "DEFAULT"));
    assert_null(conf_pool_by_name(&c, NULL));
    conf_job_controller_free(&c);
}

/* ---------- <channel>_option ---------- */

typedef struct {
    const char *text;
    const char *error; /* NULL: valid */
    size_t offset;
    unsigned want;
} copt_case;

#define CO(f) offsetof(sl_chan_opts, f)
static const copt_case copt_cases[] = {
    {"CONNECT_TIMEOUT=60", NULL, CO(connect_timeout), 60},
    {"connect_timeout = 2m", NULL, CO(connect_timeout), 120},
    {"CONNECT_TIMEOUT=PT1M", NULL, CO(connect_timeout), 60},
    {"GREETING_TIMEOUT=PT5M", NULL, CO(greeting_timeout), 300},
    {"Greeting_Timeout=45", NULL, CO(greeting_timeout), 45},
    {"COMMAND_TIMEOUT=1h", NULL, CO(command_timeout), 3600},
    {"DATA_TIMEOUT=900", NULL, CO(data_timeout), 900},
    {"MAX_RCPTS_PER_TRANSACTION=5", NULL, CO(max_rcpts), 5},
    {"MAX_MESSAGES_PER_CONNECTION=1", NULL, CO(max_messages), 1},
    {"! c\n# c\n\nDATA_TIMEOUT=1\nDATA_TIMEOUT=2\n", NULL, CO(data_timeout), 2},
    {"CONNECT_TIMEOUT=0", "x_option:1: CONNECT_TIMEOUT: bad value '0' (expected a duration 1s..1h)", 0, 0},
    {"CONNECT_TIMEOUT=2h", "x_option:1: CONNECT_TIMEOUT: bad value '2h' (expected a duration 1s..1h)", 0, 0},
    {"GREETING_TIMEOUT=soon", "x_option:1: GREETING_TIMEOUT: bad value 'soon' (expected a duration 1s..1d)", 0, 0},
    {"COMMAND_TIMEOUT=", "x_option:1: COMMAND_TIMEOUT: bad value '' (expected a duration 1s..1d)", 0, 0},
    {"DATA_TIMEOUT=P2D", "x_option:1: DATA_TIMEOUT: bad value 'P2D' (expected a duration 1s..1d)", 0, 0},
    {"MAX_RCPTS_PER_TRANSACTION=0",
     "x_option:1: MAX_RCPTS_PER_TRANSACTION: bad value '0' (expected a number 1..100000)", 0, 0},
    {"max_messages_per_connection=10s",
     "x_option:1: MAX_MESSAGES_PER_CONNECTION: bad value '10s' (expected a number 1..100000)", 0, 0},
    {"\nIDLE_TIMEOUT=5", "x_option:2: unknown option 'IDLE_TIMEOUT'", 0, 0},
    {"CONNECT_TIMEOUT 5", "x_option:1: expected KEY=VALUE", 0, 0},
    {"DATA_TIMEOUT=x\nFOO=1", "x_option:1: DATA_TIMEOUT: bad value 'x' (expected a duration 1s..1d)\n"
                              "x_option:2: unknown option 'FOO'",
     0, 0},
};
#undef CO

static void test_chan_option_table(void **state)
{
    (void)state;
    sl_options opt;
    conf_options_defaults(&opt);
    for (size_t i = 0; i < SL_ARRAY_LEN(copt_cases); i++) {
        const copt_case *tc = &copt_cases[i];
        sl_chan_opts o;
        conf_errors errs = {0};
        conf_chan_opts_defaults(&opt, &o);
        int n = conf_parse_chan_option("x_option", tc->text, &o, &errs);
        char *got = joined(&errs);
        if (strcmp(got, tc->error ? tc->error : "") != 0)
            fail_msg("case %zu '%s': got '%s', want '%s'", i, tc->text, got, tc->error ? tc->error : "");
        assert_int_equal((size_t)n, errs.msgs.n);
        unsigned v = *(const unsigned *)(const void *)((const char *)&o + tc->offset);
        if (!tc->error && v != tc->want) fail_msg("case %zu '%s': got %u, want %u", i, tc->text, v, tc->want);
        free(got);
        sv_free(&errs.msgs);
    }
    conf_options_free(&opt);
}

static void test_chan_option_defaults(void **state)
{
    (void)state;
    sl_options opt;
    sl_chan_opts o;
    conf_errors errs = {0};
    assert_int_equal(conf_parse_options("option.dat", "connect_timeout=12\ncommand_timeout=34\n", &opt, &errs), 0);
    conf_chan_opts_defaults(&opt, &o);
    assert_int_equal(o.connect_timeout, 12);
    assert_int_equal(o.greeting_timeout, 300);
    assert_int_equal(o.command_timeout, 34);
    assert_int_equal(o.data_timeout, 600);
    assert_int_equal(o.max_rcpts, 100);
    assert_int_equal(o.max_messages, 100);
    conf_options_free(&opt);
}

/* ---------- conf_load ---------- */

/* write_file - dir/name := text. */
static void write_file(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    free(path);
}

/* remove_files - delete every file of the test directory, then the directory. */
static void remove_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        unlink(path);
        free(path);
    }
    closedir(d);
    assert_int_equal(rmdir(dir), 0);
}

static const char *MIN_DISPATCHER = "[SERVICE=SMTP]\nPORT=25\n";
static const char *MIN_SLUICE = ". $U%$H@tcp_local-daemon\n\ntcp_local smtp\ntcp_local-daemon\n";

static void test_load_embedded(void **state)
{
    (void)state;
    conf_errors errs = {0};
    sl_conf *c = conf_load(SLUICE_ETC_DIR, &errs);
    char *got = joined(&errs);
    if (!c) fail_msg("embedded configuration: %s", got);
    assert_string_equal(got, "");
    assert_string_equal(c->opt.hostname, "mail.example.com");
    assert_true(c->opt.queue_dir[0] == '/');
    size_t n = strlen(c->opt.queue_dir);
    assert_true(n > 10 && strcmp(c->opt.queue_dir + n - 10, "/run/queue") == 0);
    assert_int_equal(c->n_services, 1);
    assert_string_equal(c->services[0].ports.v[0], "2525");
    assert_string_equal(c->services[0].channel, "tcp_local");
    assert_int_equal(c->n_rules, 2);
    assert_non_null(conf_channel_by_name(c, "defaults"));
    assert_int_equal(conf_channel_by_host(c, "local-daemon")->type, CHAN_LOCAL);
    const sl_channel *t = conf_channel_by_host(c, "tcp_local-daemon");
    assert_int_equal(t->type, CHAN_SMTP);
    assert_int_equal(t->subdirs, 4);
    assert_true(t->mx && t->smtp);
    assert_string_equal(t->pool, "DEFAULT"); /* etc/job_controller.cnf */
    assert_int_equal(c->n_pools, 1);
    assert_int_equal(c->pools[0].line, 2);
    assert_int_equal(t->tls, CHAN_TLS_MAY);
    assert_string_equal(t->notificationchannel, "process"); /* no channel process: not an error */
    assert_int_equal(t->copts.connect_timeout, 30);
    free(got);
    conf_free(c);
}

static void test_load_minimal_dir(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-conf-XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_file(dir, "dispatcher.cnf", MIN_DISPATCHER);
    write_file(dir, "sluice.cnf", MIN_SLUICE);
    conf_errors errs = {0};
    sl_conf *c = conf_load(dir, &errs);
    assert_int_equal(errs.msgs.n, 0);
    assert_non_null(c);
    assert_string_equal(c->dir, dir);
    assert_string_equal(c->opt.queue_dir, "/var/spool/sluice"); /* option.dat absent: defaults */
    assert_string_equal(c->services[0].addresses.v[0], "0.0.0.0");
    conf_free(c);
    sl_dir *d;
    assert_true(load_all(dir, &errs, &c, &d)); /* directory.ldif absent: an empty directory */
    size_t nd = 9, nu = 9;
    dir_stats(d, &nd, &nu);
    assert_true(nd == 0 && nu == 0);
    assert_string_equal(dir_backend_name(d), "embedded");
    dir_unref(d);
    conf_free(c);
    remove_files(dir);
}

static void test_load_errors(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-conf-XXXXXX";
    assert_non_null(mkdtemp(dir));
    conf_errors errs = {0};

    /* missing required files */
    assert_null(conf_load(dir, &errs));
    char *got = joined(&errs);
    char *want = xasprintf("%s/dispatcher.cnf: cannot read: No such file or directory\n"
                           "%s/sluice.cnf: cannot read: No such file or directory",
                           dir, dir);
    assert_string_equal(got, want);
    free(got);
    free(want);
    sv_free(&errs.msgs);

    /* the source channel of a service must exist */
    write_file(dir, "dispatcher.cnf", "[SERVICE=SMTP]\nPORT=25\nPARAMETER=CHANNEL=tcp_nope\n");
    write_file(dir, "sluice.cnf", MIN_SLUICE);
    assert_null(conf_load(dir, &errs));
    got = joined(&errs);
    want = xasprintf("%s/dispatcher.cnf:1: service 'SMTP': channel 'tcp_nope' is not defined in sluice.cnf", dir);
    assert_string_equal(got, want);
    free(got);
    free(want);
    sv_free(&errs.msgs);

    /* errors of several files are all collected */
    write_file(dir, "option.dat", "max_recipients=0\n");
    write_file(dir, "dispatcher.cnf", MIN_DISPATCHER);
    write_file(dir, "sluice.cnf", ". $U@x\n\nl bogus\nh\n");
    assert_null(conf_load(dir, &errs));
    got = joined(&errs);
    want = xasprintf("%s/option.dat:1: max_recipients: bad value '0' (expected a number 1..100000)\n"
                     "%s/sluice.cnf:3: unknown channel keyword 'bogus'",
                     dir, dir);
    assert_string_equal(got, want);
    free(got);
    free(want);
    sv_free(&errs.msgs);

    /* relative paths resolve against the configuration directory */
    write_file(dir, "option.dat", "queue_dir=spool\n");
    write_file(dir, "sluice.cnf", MIN_SLUICE);
    sl_conf *c = conf_load(dir, &errs);
    assert_non_null(c);
    char *real = realpath(dir, NULL);
    want = xasprintf("%s/spool", real);
    assert_string_equal(c->opt.queue_dir, want);
    free(want);
    free(real);
    conf_free(c);
    remove_files(dir);
}

/* The seed configuration of issue 3, as the operator types it. */
static const char *SEED_SLUICE =
    "! sluice.cnf, rewrite rules, above the ordinary \".\" rule\n"
    ". $U%$H$,$H@tcp_notify-daemon$Mprocess_dsn\n"
    ".                  $U%$H@tcp_local-daemon\n"
    "\n"
    "! after the blank line, channel blocks\n"
    "defaults notificationchannel process_dsn dispositionchannel process_dsn\n"
    "\n"
    "process_dsn\n"
    "process_dsn-daemon\n"
    "\n"
    "tcp_notify smtp mx single_sys remotehost inner subdirs 20 maxjobs 10 pool NOTIFY_POOL backoff \"pt4h\" \"pt8h\" "
    "notices 1 loopcheck\n"
    "tcp_notify-daemon\n"
    "\n"
    "tcp_local smtp mx\n"
    "tcp_local-daemon\n";
static const char *SEED_JOB_CONTROLLER = "! job_controller.cnf\n[POOL=NOTIFY_POOL]\njob_limit=10\n";
static const char *SEED_DISPATCHER = "[SERVICE=SMTP]\nPORT=25\n\n[SERVICE=NOTIFY]\nPORT=2025\nPARAMETER=CHANNEL=tcp_notify\n";

/* load_ok - conf_load(dir) that must succeed. */
static sl_conf *load_ok(const char *dir)
{
    conf_errors errs = {0};
    sl_conf *c = conf_load(dir, &errs);
    char *got = joined(&errs);
    if (!c) fail_msg("%s", got);
    free(got);
    sv_free(&errs.msgs);
    return c;
}

/* load_errors - conf_load(dir) that must fail with exactly want ("%s" stands for dir, up to 3 times). */
static void load_errors(const char *dir, const char *want_fmt)
{
    conf_errors errs = {0};
    assert_null(conf_load(dir, &errs));
    char *got = joined(&errs);
    char *want = xasprintf(want_fmt, dir, dir, dir);
    if (strcmp(got, want) != 0) fail_msg("got '%s', want '%s'", got, want);
    free(got);
    free(want);
    sv_free(&errs.msgs);
}

static void test_load_seed(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-conf-XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_file(dir, "dispatcher.cnf", SEED_DISPATCHER);
    write_file(dir, "sluice.cnf", SEED_SLUICE);
    char *jc = xasprintf("[POOL=DEFAULT]\njob_limit=10\n\n%s", SEED_JOB_CONTROLLER);
    write_file(dir, "job_controller.cnf", jc);
    free(jc);
    write_file(dir, "tcp_notify_option", "! lower the connect timeout to one minute\nCONNECT_TIMEOUT=60\n");
    sl_conf *c = load_ok(dir);
    assert_int_equal(c->n_rules, 2);
    assert_string_equal(c->rules[0].tmpl, "$U%$H$,$H@tcp_notify-daemon$Mprocess_dsn");
    assert_int_equal(c->n_channels, 4);
    assert_int_equal(c->n_pools, 2);
    assert_string_equal(c->pools[1].name, "NOTIFY_POOL");
    assert_int_equal(c->pools[1].job_limit, 10);

    const sl_channel *t = conf_channel_by_name(c, "tcp_notify");
    assert_non_null(t);
    assert_ptr_equal(conf_channel_by_host(c, "tcp_notify-daemon"), t);
    assert_int_equal(t->type, CHAN_SMTP);
    assert_true(t->smtp && t->mx && t->remotehost && t->inner && t->loopcheck && t->rules && t->errsendpost);
    assert_false(t->lmtp || t->allow_self_mx);
    assert_int_equal(t->addrmode, CHAN_SINGLE_SYS);
    assert_int_equal(t->subdirs, 20);
    assert_int_equal(t->maxjobs, 10);
    assert_string_equal(t->pool, "NOTIFY_POOL");
    assert_int_equal(t->n_backoff, 2);
    assert_int_equal(t->backoff[0], 14400);
    assert_int_equal(t->backoff[1], 28800);
    assert_int_equal(t->n_notices, 1);
    assert_int_equal(t->notices[0], 86400);
    assert_string_equal(t->notificationchannel, "process_dsn");
    assert_string_equal(t->dispositionchannel, "process_dsn");
    assert_null(t->daemon);
    assert_null(t->lastresort);
    assert_int_equal(t->tls, CHAN_TLS_MAY);
    assert_int_equal(t->copts.connect_timeout, 60);
    assert_int_equal(t->copts.greeting_timeout, 300);
    assert_int_equal(t->copts.command_timeout, 300);
    assert_int_equal(t->copts.data_timeout, 600);
    assert_int_equal(t->copts.max_rcpts, 100);
    assert_int_equal(t->copts.max_messages, 100);

    const sl_channel *pd = conf_channel_by_name(c, "process_dsn");
    assert_int_equal(pd->type, CHAN_PROCESS);
    assert_string_equal(pd->notificationchannel, "process_dsn");
    assert_string_equal(pd->pool, "DEFAULT");
    assert_int_equal(pd->tls, CHAN_TLS_NO);
    const sl_channel *tl = conf_channel_by_name(c, "tcp_local");
    assert_string_equal(tl->pool, "DEFAULT");
    assert_int_equal(tl->copts.connect_timeout, 30); /* no tcp_local_option: option.dat's default */
    assert_int_equal(tl->n_backoff, 0);
    assert_string_equal(tl->dispositionchannel, "process_dsn");
    conf_free(c);

    /* job_controller.cnf exactly as in the issue: NOTIFY_POOL is the first, hence the default, pool */
    write_file(dir, "job_controller.cnf", SEED_JOB_CONTROLLER);
    c = load_ok(dir);
    assert_int_equal(c->n_pools, 1);
    assert_string_equal(conf_channel_by_name(c, "tcp_local")->pool, "NOTIFY_POOL");
    conf_free(c);
    remove_files(dir);
}

static void test_load_pools(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-conf-XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_file(dir, "dispatcher.cnf", MIN_DISPATCHER);

    /* no job_controller.cnf: every channel in the pool DEFAULT */
    write_file(dir, "sluice.cnf", MIN_SLUICE);
    sl_conf *c = load_ok(dir);
    assert_int_equal(c->n_pools, 1);
    assert_string_equal(c->pools[0].name, "DEFAULT");
    assert_int_equal(c->pools[0].job_limit, 10);
    assert_string_equal(conf_channel_by_name(c, "tcp_local")->pool, "DEFAULT");
    conf_free(c);

    /* a channel naming an unknown pool */
    write_file(dir, "sluice.cnf", ". $U%$H@tcp_local-daemon\n\ntcp_local smtp pool NOPE\ntcp_local-daemon\n");
    load_errors(dir, "%s/sluice.cnf:3: channel 'tcp_local': unknown pool 'NOPE' (not declared in job_controller.cnf)");

    /* an unknown pool on "defaults" is reported once; pool names are matched case-insensitively */
    write_file(dir, "job_controller.cnf", "[POOL=Main]\njob_limit=4\n[POOL=Slow]\njob_limit=1\n");
    write_file(dir, "sluice.cnf", ". $U%$H@tcp_local-daemon\n\ndefaults pool nope\n\ntcp_local smtp\ntcp_local-daemon\n\n"
                                  "tcp_slow pool slow\nslow-daemon\n\ntcp_x\nx\n");
    load_errors(dir, "%s/sluice.cnf:3: channel 'defaults': unknown pool 'nope' (not declared in job_controller.cnf)");
    write_file(dir, "sluice.cnf",
               ". $U%$H@tcp_local-daemon\n\ntcp_local smtp\ntcp_local-daemon\n\ntcp_slow pool slow\nslow-daemon\n");
    c = load_ok(dir);
    assert_string_equal(conf_channel_by_name(c, "tcp_local")->pool, "Main");
    assert_string_equal(conf_channel_by_name(c, "tcp_slow")->pool, "Slow");
    assert_int_equal(conf_pool_by_name(c, "SLOW")->job_limit, 1);
    conf_free(c);

    /* job_controller.cnf errors carry its path; pools are then not checked */
    write_file(dir, "job_controller.cnf", "[POOL=A]\nmax_jobs=3\n");
    load_errors(dir, "%s/job_controller.cnf:2: unknown key 'max_jobs'");
    remove_files(dir);
}

static void test_load_option_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-conf-XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_file(dir, "dispatcher.cnf", MIN_DISPATCHER);
    write_file(dir, "option.dat", "connect_timeout=20\n");
    write_file(dir, "sluice.cnf", ". $U%$H@tcp_local-daemon\n\ntcp_local smtp\ntcp_local-daemon\n\nTCP_Slow\nslow\n");

    /* defaults_option under every channel, <channel>_option over it (channel names case-insensitive) */
    write_file(dir, "defaults_option", "DATA_TIMEOUT=120\nMAX_MESSAGES_PER_CONNECTION=7\n");
    write_file(dir, "TCP_SLOW_option", "data_timeout=PT30M\nMAX_RCPTS_PER_TRANSACTION=2\n");
    sl_conf *c = load_ok(dir);
    const sl_chan_opts *o = &conf_channel_by_name(c, "tcp_local")->copts;
    assert_int_equal(o->connect_timeout, 20);
    assert_int_equal(o->data_timeout, 120);
    assert_int_equal(o->max_messages, 7);
    assert_int_equal(o->max_rcpts, 100);
    o = &conf_channel_by_name(c, "tcp_slow")->copts;
    assert_int_equal(o->connect_timeout, 20);
    assert_int_equal(o->data_timeout, 1800);
    assert_int_equal(o->max_messages, 7);
    assert_int_equal(o->max_rcpts, 2);
    conf_free(c);

    /* errors inside an option file carry its path and line */
    write_file(dir, "tcp_local_option", "! c\nCONNECT_TIMEOUT=forever\nIDLE=1\n");
    load_errors(dir, "%s/tcp_local_option:2: CONNECT_TIMEOUT: bad value 'forever' (expected a duration 1s..1h)\n"
                     "%s/tcp_local_option:3: unknown option 'IDLE'");
    write_file(dir, "tcp_local_option", "CONNECT_TIMEOUT=5\n");

    /* an option file for a channel that sluice.cnf does not define */
    write_file(dir, "tcp_lcoal_option", "CONNECT_TIMEOUT=5\n");
    load_errors(dir, "%s/tcp_lcoal_option: option file for channel 'tcp_lcoal', which sluice.cnf does not define");
    remove_files(dir);
}

static void test_conf_error_format(void **state)
{
    (void)state;
    conf_errors errs = {0};
    conf_error(&errs, "d/x.cnf", 12, "bad %s", "thing");
    conf_error(&errs, "d/x.cnf", 0, "whole file");
    assert_string_equal(errs.msgs.v[0], "d/x.cnf:12: bad thing");
    assert_string_equal(errs.msgs.v[1], "d/x.cnf: whole file");
    sv_free(&errs.msgs);
}

/* restart_changes - the names conf_restart_changes gives for two option.dat texts, "|"-separated. */
static char *restart_changes(const char *a, const char *b)
{
    sl_conf ca, cb;
    memset(&ca, 0, sizeof ca);
    memset(&cb, 0, sizeof cb);
    conf_errors errs = {0};
    assert_int_equal(conf_parse_options("/tmp/option.dat", a, &ca.opt, &errs), 0);
    assert_int_equal(conf_parse_options("/tmp/option.dat", b, &cb.opt, &errs), 0);
    strvec out = {0};
    conf_restart_changes(&ca, &cb, &out);
    strbuf s = {0};
    for (size_t i = 0; i < out.n; i++) sb_printf(&s, "%s%s", i ? "|" : "", out.v[i]);
    sv_free(&out);
    conf_options_free(&ca.opt);
    conf_options_free(&cb.opt);
    return sb_steal(&s);
}

/* The options a reload cannot apply, and only those. */
static void test_restart_changes(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b, *expect;
    } cases[] = {
        {"", "", ""},
        {"log_level=info\nmax_errors=3\n", "log_level=debug\nmax_errors=9\nlog_format=json\n", ""},
        {"queue_dir=/q1\n", "queue_dir=/q2\n", "queue_dir|submit_socket|mta_sts_cache_dir"}, /* their defaults follow */
        {"", "run_as=nobody\n", "run_as"},
        {"dns_servers=127.0.0.1\n", "dns_servers=127.0.0.1:53\n", ""}, /* the same server, normalised */
        {"dns_servers=127.0.0.1\n", "dns_servers=127.0.0.2\n", "dns_servers"},
        {"", "submit_socket=none\n", "submit_socket"},
        {"queue_dir=/q\n", "submit_socket=/q/public/submit.sock\nqueue_dir=/q\n", ""}, /* the default, spelt out */
        {"", "submit_channel=tcp_local\nmetrics_listen=9465\n", "submit_channel|metrics_listen"},
        {"metrics_listen=9465\n", "metrics_listen=127.0.0.1:9465\n", ""},
        {"", "mta_sts_cache_dir=/var/lib/sluice-sts\nmta_sts=1\nmta_sts_port=8443\n", "mta_sts_cache_dir"},
        {"queue_dir=/q\n", "queue_dir=/q\nmta_sts_cache_dir=/q/sts\n", ""}, /* the default, spelt out */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = restart_changes(cases[i].a, cases[i].b);
        if (strcmp(got, cases[i].expect) != 0) fail_msg("case %zu: '%s', expected '%s'", i, got, cases[i].expect);
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_changes),
        cmocka_unit_test(test_options_table),
        cmocka_unit_test(test_options_defaults),
        cmocka_unit_test(test_options_strings),
        cmocka_unit_test(test_cidr_match),
        cmocka_unit_test(test_cidr_parse_errors),
        cmocka_unit_test(test_dispatcher_errors),
        cmocka_unit_test(test_dispatcher_values),
        cmocka_unit_test(test_sluice_cnf_errors),
        cmocka_unit_test(test_sluice_cnf_bad_templates),
        cmocka_unit_test(test_sluice_cnf_values),
        cmocka_unit_test(test_sluice_cnf_builtin_defaults),
        cmocka_unit_test(test_channel_keywords),
        cmocka_unit_test(test_channel_backoff_notices),
        cmocka_unit_test(test_channel_defaults_propagation),
        cmocka_unit_test(test_channel_types),
        cmocka_unit_test(test_job_controller_errors),
        cmocka_unit_test(test_job_controller_values),
        cmocka_unit_test(test_chan_option_table),
        cmocka_unit_test(test_chan_option_defaults),
        cmocka_unit_test(test_load_embedded),
        cmocka_unit_test(test_load_minimal_dir),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_seed),
        cmocka_unit_test(test_load_pools),
        cmocka_unit_test(test_load_option_files),
        cmocka_unit_test(test_conf_error_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
