/*
 * test_smtp_client.c - the pure SMTP client engine (smtp/client.h): reply parsing, EHLO
 * capabilities, MAIL/RCPT lines with ESMTP and DSN parameters, dot-stuffing, MX ordering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "smtp/client.h"
#include "smtp/parse.h"

/* feed_lines - feed lines separated by '\n' to a fresh parser; returns the last rc, reply in out. */
static int feed_lines(const char *text, smtp_reply *out, int *completed_at)
{
    smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    int rc = 0, idx = 0;
    *completed_at = -1;
    const char *s = text;
    do { /* "" is one empty line */
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        rc = smtp_reply_parse_line(&p, s, len, out);
        if (rc != 0) {
            if (rc == 1) *completed_at = idx;
            break;
        }
        idx++;
        s += len + (nl ? 1 : 0);
    } while (*s);
    smtp_reply_parser_free(&p);
    return rc;
}

static void test_reply_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;   /* lines separated by \n */
        int rc;           /* result of the last line fed */
        int code;
        const char *enh;
        size_t nlines;
        const char *text; /* smtp_reply_text */
    } cases[] = {
        {"220 mx.example.test ESMTP", 1, 220, "", 1, "220 mx.example.test ESMTP"},
        {"250 2.1.0 Ok", 1, 250, "2.1.0", 1, "250 2.1.0 Ok"},
        {"550 5.1.1 <a@b> unknown", 1, 550, "5.1.1", 1, "550 5.1.1 <a@b> unknown"},
        {"250", 1, 250, "", 1, "250"},
        {"250 ", 1, 250, "", 1, "250"},
        {"250-mx.example.test\n250-PIPELINING\n250 SIZE 100", 1, 250, "", 3, "250 mx.example.test PIPELINING SIZE 100"},
        {"550-5.7.1 first line\n550 5.7.1 second line", 1, 550, "5.7.1", 2, "550 5.7.1 first line second line"},
        {"451 4.3.0 try later", 1, 451, "4.3.0", 1, "451 4.3.0 try later"},
        /* an enhanced code whose class differs from the reply's is not one */
        {"550 4.1.1 odd", 1, 550, "", 1, "550 4.1.1 odd"},
        {"250 2.0 short", 1, 250, "", 1, "250 2.0 short"},
        {"250 2.1.1234 long", 1, 250, "", 1, "250 2.1.1234 long"},
        {"421 4.4.2 closing", 1, 421, "4.4.2", 1, "421 4.4.2 closing"},
        {"354 End data with <CR><LF>.<CR><LF>", 1, 354, "", 1, "354 End data with <CR><LF>.<CR><LF>"},
        /* malformed */
        {"25", -1, 0, "", 0, NULL},
        {"abc hello", -1, 0, "", 0, NULL},
        {"250x text", -1, 0, "", 0, NULL},
        {"150 what", -1, 0, "", 0, NULL},
        {"650 what", -1, 0, "", 0, NULL},
        {"250-first\n251 other code", -1, 0, "", 0, NULL},
        {"", -1, 0, "", 0, NULL},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        smtp_reply r;
        memset(&r, 0, sizeof r);
        int at;
        int rc = feed_lines(cases[i].in, &r, &at);
        if (rc != cases[i].rc) fail_msg("case %zu (%s): rc %d, want %d", i, cases[i].in, rc, cases[i].rc);
        if (rc != 1) continue;
        assert_int_equal(r.code, cases[i].code);
        assert_string_equal(r.enh, cases[i].enh);
        assert_int_equal(r.lines.n, cases[i].nlines);
        char *t = smtp_reply_text(&r);
        assert_string_equal(t, cases[i].text);
        free(t);
        smtp_reply_free(&r);
    }
}

static void test_reply_incremental(void **state)
{
    (void)state;
    smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    smtp_reply r;
    assert_int_equal(smtp_reply_parse_line(&p, "250-one", 7, &r), 0);
    assert_int_equal(smtp_reply_parse_line(&p, "250-two", 7, &r), 0);
    assert_int_equal(smtp_reply_parse_line(&p, "250 three", 9, &r), 1);
    assert_int_equal(r.lines.n, 3);
    assert_string_equal(r.lines.v[1], "two");
    smtp_reply_free(&r);
    /* the parser is ready for the next reply */
    assert_int_equal(smtp_reply_parse_line(&p, "354 go", 6, &r), 1);
    assert_int_equal(r.code, 354);
    assert_int_equal(r.lines.n, 1);
    smtp_reply_free(&r);
    /* a malformed line resets it */
    assert_int_equal(smtp_reply_parse_line(&p, "250-a", 5, &r), 0);
    assert_int_equal(smtp_reply_parse_line(&p, "xyz", 3, &r), -1);
    assert_int_equal(smtp_reply_parse_line(&p, "220 fresh", 9, &r), 1);
    assert_int_equal(r.code, 220);
    assert_int_equal(r.lines.n, 1);
    smtp_reply_free(&r);
    /* a reply with too many lines is refused */
    int rc = 0;
    for (int i = 0; i < SMTP_REPLY_MAX_LINES + 5 && rc == 0; i++) rc = smtp_reply_parse_line(&p, "250-x", 5, &r);
    assert_int_equal(rc, -1);
    smtp_reply_parser_free(&p);
}

static void test_reply_status(void **state)
{
    (void)state;
    smtp_reply r;
    int at;
    char buf[16];
    assert_int_equal(feed_lines("452 too many", &r, &at), 1);
    smtp_reply_status(&r, buf, sizeof buf);
    assert_string_equal(buf, "4.0.0");
    smtp_reply_free(&r);
    assert_int_equal(feed_lines("552 5.3.4 too big", &r, &at), 1);
    smtp_reply_status(&r, buf, sizeof buf);
    assert_string_equal(buf, "5.3.4");
    smtp_reply_free(&r);
}

/* caps_of - capabilities of an EHLO reply given as lines. */
static smtp_caps caps_of(const char *text)
{
    smtp_reply r;
    int at;
    smtp_caps c;
    assert_int_equal(feed_lines(text, &r, &at), 1);
    smtp_caps_parse(&r, &c);
    smtp_reply_free(&r);
    return c;
}

static void test_caps(void **state)
{
    (void)state;
    smtp_caps c = caps_of("250-mx.example.test Hello\n250-PIPELINING\n250-SIZE 10240000\n250-8BITMIME\n"
                          "250-DSN\n250-SMTPUTF8\n250-ENHANCEDSTATUSCODES\n250-STARTTLS\n250 CHUNKING");
    assert_true(c.esmtp);
    assert_true(c.pipelining);
    assert_true(c.size);
    assert_int_equal(c.size_max, 10240000);
    assert_true(c.eightbitmime && c.dsn && c.smtputf8 && c.enhancedstatuscodes && c.starttls && c.chunking);

    c = caps_of("250-mx\n250-size\n250 pipelining");
    assert_true(c.size);
    assert_int_equal(c.size_max, 0);
    assert_true(c.pipelining);
    assert_false(c.dsn || c.eightbitmime || c.smtputf8);

    /* the greeting line is not a keyword; similar words are not keywords */
    c = caps_of("250-DSN\n250-PIPELININGX\n250 SIZE abc");
    assert_false(c.dsn);
    assert_false(c.pipelining);
    assert_true(c.size);
    assert_int_equal(c.size_max, 0);

    c = caps_of("250 only.the.greeting");
    assert_true(c.esmtp);
    assert_false(c.pipelining || c.size || c.dsn);
}

static void test_xtext(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        {"abc", "abc"},
        {"a+b=c", "a+2Bb+3Dc"},
        {"a b", "a+20b"},
        {"<id@host>", "<id@host>"},
        {"\xc3\xa9", "+C3+A9"},
        {"", ""},
        {"~!", "~!"},
        {"\x7f", "+7F"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char *x = xtext_encode(cases[i].in);
        assert_string_equal(x, cases[i].out);
        free(x);
    }
}

static void test_mail_line(void **state)
{
    (void)state;
    smtp_caps none = {0}, all = {.esmtp = true, .size = true, .eightbitmime = true, .dsn = true, .smtputf8 = true};
    qmsg m;
    memset(&m, 0, sizeof m);
    m.sender = "a@example.test";
    m.data = "x";
    m.data_len = 1234;
    static const struct {
        const char *sender;
        uint8_t body, ret;
        bool utf8;
        const char *envid;
        bool all_caps;
        const char *want;
    } cases[] = {
        {"a@example.test", BODY_UNSET, DSN_RET_UNSET, false, NULL, false, "MAIL FROM:<a@example.test>\r\n"},
        {"", BODY_UNSET, DSN_RET_UNSET, false, NULL, false, "MAIL FROM:<>\r\n"},
        {"a@example.test", BODY_UNSET, DSN_RET_UNSET, false, NULL, true, "MAIL FROM:<a@example.test> SIZE=1234\r\n"},
        {"a@example.test", BODY_8BITMIME, DSN_RET_FULL, false, "q+1=2", true,
         "MAIL FROM:<a@example.test> SIZE=1234 BODY=8BITMIME RET=FULL ENVID=q+2B1+3D2\r\n"},
        /* without the extensions no parameters at all */
        {"a@example.test", BODY_8BITMIME, DSN_RET_HDRS, false, "id", false, "MAIL FROM:<a@example.test>\r\n"},
        {"a@example.test", BODY_7BIT, DSN_RET_HDRS, false, NULL, true, "MAIL FROM:<a@example.test> SIZE=1234 RET=HDRS\r\n"},
        {"\xc3\xa9@example.test", BODY_8BITMIME, DSN_RET_UNSET, true, NULL, true,
         "MAIL FROM:<\xc3\xa9@example.test> SIZE=1234 BODY=8BITMIME SMTPUTF8\r\n"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        m.sender = (char *)cases[i].sender;
        m.body = cases[i].body;
        m.ret = cases[i].ret;
        m.smtputf8 = cases[i].utf8;
        m.envid = (char *)cases[i].envid;
        char *line = smtp_client_mail_line(&m, cases[i].all_caps ? &all : &none);
        if (strcmp(line, cases[i].want) != 0) fail_msg("case %zu: got \"%s\" want \"%s\"", i, line, cases[i].want);
        free(line);
    }
}

static void test_rcpt_line(void **state)
{
    (void)state;
    smtp_caps none = {0}, dsn = {.esmtp = true, .dsn = true};
    static const struct {
        unsigned notify;
        const char *orcpt;
        bool dsn;
        const char *want;
    } cases[] = {
        {0, NULL, true, "RCPT TO:<b@example.test>\r\n"},
        {DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, NULL, true, "RCPT TO:<b@example.test> NOTIFY=SUCCESS,FAILURE\r\n"},
        {DSN_NOTIFY_NEVER, NULL, true, "RCPT TO:<b@example.test> NOTIFY=NEVER\r\n"},
        {DSN_NOTIFY_DELAY | DSN_NOTIFY_FAILURE | DSN_NOTIFY_SUCCESS, NULL, true,
         "RCPT TO:<b@example.test> NOTIFY=SUCCESS,FAILURE,DELAY\r\n"},
        {DSN_NOTIFY_FAILURE, "rfc822;o+x=y@example.test", true,
         "RCPT TO:<b@example.test> NOTIFY=FAILURE ORCPT=rfc822;o+2Bx+3Dy@example.test\r\n"},
        {0, "utf-8;j\xc3\xb6@example.test", true, "RCPT TO:<b@example.test> ORCPT=utf-8;j+C3+B6@example.test\r\n"},
        {0, "bare@example.test", true, "RCPT TO:<b@example.test> ORCPT=rfc822;bare@example.test\r\n"},
        {DSN_NOTIFY_SUCCESS, "rfc822;o@example.test", false, "RCPT TO:<b@example.test>\r\n"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        qrcpt r;
        memset(&r, 0, sizeof r);
        r.addr = "b@example.test";
        r.notify = cases[i].notify;
        r.orcpt = (char *)cases[i].orcpt;
        char *line = smtp_client_rcpt_line(&r, cases[i].dsn ? &dsn : &none);
        if (strcmp(line, cases[i].want) != 0) fail_msg("case %zu: got \"%s\" want \"%s\"", i, line, cases[i].want);
        free(line);
    }
}

/* sb_emit - dot-stuffing sink that also counts the pieces. */
static void sb_emit(void *ctx, const void *p, size_t n)
{
    strbuf *sb = ctx;
    sb_append(sb, p, n);
}

static void test_dot_stuff(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        {"a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
        {".a\r\n", "..a\r\n.\r\n"},
        {"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
        {"a\r\n..b\r\n.", "a\r\n...b\r\n..\r\n.\r\n"},
        {"no final crlf", "no final crlf\r\n.\r\n"},
        {"", ".\r\n"},
        {"x.y\r\n .z\r\n", "x.y\r\n .z\r\n.\r\n"},
        {".\r\n.\r\n", "..\r\n..\r\n.\r\n"},
        {"a\r\nb", "a\r\nb\r\n.\r\n"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        strbuf sb;
        sb_init(&sb);
        smtp_client_dot_stuff(cases[i].in, strlen(cases[i].in), sb_emit, &sb);
        if (strcmp(sb.data, cases[i].out) != 0) fail_msg("case %zu: got \"%s\"", i, sb.data);
        sb_free(&sb);
    }
}

/* test_dot_stuff_bare_eol - whatever the queue holds, no bare CR or bare LF leaves: each becomes
 * CRLF, and a '.' after one is at a line start and doubled (no end-of-data look-alike gets out). */
static void test_dot_stuff_bare_eol(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        {"START\r.\r\nmail FROM:<x>\r\n", "START\r\n..\r\nmail FROM:<x>\r\n.\r\n"},
        {"a\n.\nb\n", "a\r\n..\r\nb\r\n.\r\n"},
        {"a\r.\rb", "a\r\n..\r\nb\r\n.\r\n"},
        {"x\r\r\n.y", "x\r\n\r\n..y\r\n.\r\n"},
        {"\n.", "\r\n..\r\n.\r\n"},
        {"\r", "\r\n.\r\n"},
        {"end\r", "end\r\n.\r\n"},
        {"end\n", "end\r\n.\r\n"},
        {"\n\n\r\r", "\r\n\r\n\r\n\r\n.\r\n"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        strbuf sb;
        sb_init(&sb);
        smtp_client_dot_stuff(cases[i].in, strlen(cases[i].in), sb_emit, &sb);
        if (strcmp(sb.data, cases[i].out) != 0) fail_msg("case %zu: got \"%s\"", i, sb.data);
        sb_free(&sb);
    }
}

/* rnd_last - deterministic "random": always the largest index. */
static uint32_t rnd_last(void *ctx, uint32_t bound)
{
    (void)ctx;
    return bound - 1;
}

/* rnd_first - deterministic "random": always 0. */
static uint32_t rnd_first(void *ctx, uint32_t bound)
{
    (void)ctx;
    (void)bound;
    return 0;
}

/* rnd_lcg - a small seeded generator for the distribution test. */
static uint32_t rnd_lcg(void *ctx, uint32_t bound)
{
    uint64_t *st = ctx;
    *st = *st * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((*st >> 33) % bound);
}

/* mx_set - fill mx from hosts/prefs (the strings are not owned). */
static void mx_set(dns_mx *mx, const char *const *hosts, const unsigned *prefs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mx[i].host = (char *)hosts[i];
        mx[i].pref = prefs[i];
    }
}

static void test_mx_order(void **state)
{
    (void)state;
    static const char *const hosts[] = {"c20", "a10", "b10", "d30", "e10"};
    static const unsigned prefs[] = {20, 10, 10, 30, 10};
    dns_mx mx[5];

    /* every shuffle keeps preference order and the same hosts */
    uint64_t seed = 42;
    int first_seen[3] = {0};
    for (int round = 0; round < 300; round++) {
        mx_set(mx, hosts, prefs, 5);
        dns_mx_order(mx, 5, rnd_lcg, &seed);
        for (size_t i = 1; i < 5; i++) assert_true(mx[i - 1].pref <= mx[i].pref);
        assert_string_equal(mx[3].host, "c20");
        assert_string_equal(mx[4].host, "d30");
        int seen = 0;
        for (size_t i = 0; i < 3; i++) {
            assert_int_equal(mx[i].pref, 10);
            seen |= 1 << (mx[i].host[0] - 'a');
        }
        assert_int_equal(seen, 1 | 2 | 16); /* a, b, e */
        first_seen[mx[0].host[0] == 'a' ? 0 : mx[0].host[0] == 'b' ? 1 : 2]++;
    }
    /* each equal-preference host comes first sometimes */
    for (int i = 0; i < 3; i++) assert_true(first_seen[i] > 30);

    /* with fixed "random" choices the permutation is exact: the shuffle is really applied */
    mx_set(mx, hosts, prefs, 5);
    dns_mx_order(mx, 5, rnd_first, NULL);
    const char *a0 = mx[0].host, *a1 = mx[1].host, *a2 = mx[2].host;
    mx_set(mx, hosts, prefs, 5);
    dns_mx_order(mx, 5, rnd_last, NULL);
    /* rnd_last swaps every element with itself: the sorted order stays */
    const char *b0 = mx[0].host, *b1 = mx[1].host, *b2 = mx[2].host;
    assert_false(a0 == b0 && a1 == b1 && a2 == b2);

    /* single entry and empty list */
    mx_set(mx, hosts, prefs, 1);
    dns_mx_order(mx, 1, rnd_first, NULL);
    assert_string_equal(mx[0].host, "c20");
    dns_mx_order(mx, 0, rnd_first, NULL);
}

/* mx_names - the hosts of mx joined with spaces, into buf. */
static const char *mx_names(const dns_mx *mx, size_t n, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? " " : "", mx[i].host);
    return buf;
}

/* test_mx_demote - failing hosts go last among their preference, in the order given; never across preferences. */
static void test_mx_demote(void **state)
{
    (void)state;
    static const char *const hosts[] = {"a10", "b10", "c10", "d20", "e20"};
    static const unsigned prefs[] = {10, 10, 10, 20, 20};
    static const struct {
        const char *failing[4];
        const char *want;
    } cases[] = {
        {{NULL}, "a10 b10 c10 d20 e20"},
        {{"a10"}, "b10 c10 a10 d20 e20"},
        {{"B10"}, "a10 c10 b10 d20 e20"},                   /* names compare case-insensitively */
        {{"c10", "a10"}, "b10 c10 a10 d20 e20"},            /* in the order of the list */
        {{"a10", "c10"}, "b10 a10 c10 d20 e20"},
        {{"a10", "b10", "c10"}, "a10 b10 c10 d20 e20"},     /* all failing: the list's order */
        {{"c10", "a10", "b10"}, "c10 a10 b10 d20 e20"},
        {{"a10", "b10", "c10", "d20"}, "a10 b10 c10 e20 d20"}, /* a failing MX 10 is still before MX 20 */
        {{"x.other", "d20"}, "a10 b10 c10 e20 d20"},        /* names not in the list are ignored */
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        dns_mx mx[5];
        strvec failing = {0};
        char buf[128];
        mx_set(mx, hosts, prefs, 5);
        for (size_t k = 0; k < 4 && cases[i].failing[k]; k++) sv_push(&failing, cases[i].failing[k]);
        dns_mx_demote(mx, 5, &failing);
        if (strcmp(mx_names(mx, 5, buf, sizeof buf), cases[i].want))
            fail_msg("case %zu: %s, want %s", i, buf, cases[i].want);
        sv_free(&failing);
    }
    dns_mx_demote(NULL, 0, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_table),
        cmocka_unit_test(test_reply_incremental),
        cmocka_unit_test(test_reply_status),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_xtext),
        cmocka_unit_test(test_mail_line),
        cmocka_unit_test(test_rcpt_line),
        cmocka_unit_test(test_dot_stuff),
        cmocka_unit_test(test_dot_stuff_bare_eol),
        cmocka_unit_test(test_mx_order),
        cmocka_unit_test(test_mx_demote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
