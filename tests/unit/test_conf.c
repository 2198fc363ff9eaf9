/* test_conf.c - option.dat, dispatcher.cnf, sluice.cnf (channel keywords), job_controller.cnf and
 * <channel>_option parsers, CIDR matching, conf_load (the issue-3 seed configuration verbatim). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/log.h"

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
                       "maildir_root=/srv/mail\n";
    assert_int_equal(conf_parse_options("option.dat", text, &opt, &errs), 0);
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
    {". $U%$X@x\n\nl\nx\n", "sluice.cnf:1: bad template '$U%$X@x': unknown substitution '$X'"},
    {". $U\n\nl\nx\n", "sluice.cnf:1: bad template '$U': template has no '@' or '%' (expected A%B@C, A@B or A%B)"},
    {". $U@a@b\n\nl\nx\n", "sluice.cnf:1: bad template '$U@a@b': more than one '@'"},
    {". $U@a%b\n\nl\nx\n", "sluice.cnf:1: bad template '$U@a%b': '%' after '@'"},
    {". $U%@b\n\nl\nx\n", "sluice.cnf:1: bad template '$U%@b': empty part in template"},
    {". $U@x$\n\nl\nx\n", "sluice.cnf:1: bad template '$U@x$': template ends with a lone '$'"},
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

static void remove_files(const char *dir)
{
    static const char *names[] = {"option.dat", "dispatcher.cnf", "sluice.cnf", "directory.ldif"};
    for (size_t i = 0; i < SL_ARRAY_LEN(names); i++) {
        char *path = xasprintf("%s/%s", dir, names[i]);
        unlink(path);
        free(path);
    }
    rmdir(dir);
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
    assert_non_null(c->directory);
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
    assert_non_null(c->directory);                             /* directory.ldif absent: empty */
    assert_string_equal(c->services[0].addresses.v[0], "0.0.0.0");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_table),
        cmocka_unit_test(test_options_defaults),
        cmocka_unit_test(test_options_strings),
        cmocka_unit_test(test_cidr_match),
        cmocka_unit_test(test_cidr_parse_errors),
        cmocka_unit_test(test_dispatcher_errors),
        cmocka_unit_test(test_dispatcher_values),
        cmocka_unit_test(test_sluice_cnf_errors),
        cmocka_unit_test(test_sluice_cnf_values),
        cmocka_unit_test(test_sluice_cnf_builtin_defaults),
        cmocka_unit_test(test_channel_types),
        cmocka_unit_test(test_load_embedded),
        cmocka_unit_test(test_load_minimal_dir),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_conf_error_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
