/*
 * test_smtp_parse.c - unit tests for src/smtp/parse.c: command lines, MAIL/RCPT paths and
 * parameters, mailbox addresses, domains and xtext. Mostly tables of (input, expected result).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/util.h"
#include "smtp/parse.h"

/* repeat - a heap string of n copies of c. */
static char *repeat(char c, size_t n)
{
    char *s = xmalloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* domain_of_len - a valid domain name of exactly n octets (labels of at most 63). */
static char *domain_of_len(size_t n)
{
    char *s = repeat('a', n);
    for (size_t i = 63; i < n; i += 64)
        s[i] = '.';
    if (s[n - 1] == '.') /* never end on a dot: shift it one left */
        s[n - 1] = 'b', s[n - 2] = '.';
    return s;
}

/* show_case - trace the case about to be checked, control and 8-bit bytes escaped. */
static void show_case(size_t i, const char *s, size_t len)
{
    strbuf sb;
    sb_init(&sb);
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c < 32 || c >= 127)
            sb_printf(&sb, "\\x%02x", c);
        else
            sb_putc(&sb, (char)c);
    }
    print_message("case %zu: %s\n", i, sb.data ? sb.data : "");
    sb_free(&sb);
}

/* assert_cmd_empty - after a failed parse nothing may remain allocated. */
static void assert_cmd_empty(const smtp_cmd *c)
{
    assert_null(c->arg);
    assert_null(c->path.local);
    assert_null(c->path.domain);
    assert_null(c->envid);
    assert_null(c->orcpt);
}

/* ------------------------------------------------------------------ command lines */

struct cmd_case {
    const char *line;
    size_t len; /* 0: strlen(line) */
    bool esmtp;
    int rc;
    enum smtp_verb verb;
    const char *reply; /* exact reply when rc != 0 */
    const char *arg;   /* expected arg on success (NULL: must be NULL) */
    const char *path;  /* expected smtp_addr_format(path) on success, NULL: not checked */
};

#define SYN_MAIL "501 5.5.4 Syntax: MAIL FROM:<address>"
#define SYN_RCPT "501 5.5.4 Syntax: RCPT TO:<address>"
#define BAD_ADDR "501 5.1.3 Bad address syntax"
#define NO_PARAMS "501 5.5.4 Syntax error, no parameters allowed"
#define UNRECOG "500 5.5.1 Command unrecognized"
#define BAD_CHARS "500 5.5.2 Invalid characters in command"
#define SYN_BDAT "501 5.5.4 Syntax: BDAT size [LAST]"

static const struct cmd_case cmd_cases[] = {
    /* HELO / EHLO */
    {"HELO mx.example", 0, false, 0, SMTP_HELO, NULL, "mx.example", NULL},
    {"helo mx.example", 0, false, 0, SMTP_HELO, NULL, "mx.example", NULL},
    {"EHLO mx.example", 0, false, 0, SMTP_EHLO, NULL, "mx.example", NULL},
    {"eHlO mx.example  ", 0, false, 0, SMTP_EHLO, NULL, "mx.example", NULL},
    {"EHLO   [192.0.2.1]", 0, false, 0, SMTP_EHLO, NULL, "[192.0.2.1]", NULL},
    {"EHLO\tmx.example", 0, false, 0, SMTP_EHLO, NULL, "mx.example", NULL},
    {"EHLO not_a/strict!name", 0, false, 0, SMTP_EHLO, NULL, "not_a/strict!name", NULL},
    {"HELO", 0, false, 501, SMTP_HELO, "501 5.5.4 Syntax: HELO hostname", NULL, NULL},
    {"EHLO", 0, false, 501, SMTP_EHLO, "501 5.5.4 Syntax: EHLO hostname", NULL, NULL},
    {"EHLO   ", 0, false, 501, SMTP_EHLO, "501 5.5.4 Syntax: EHLO hostname", NULL, NULL},
    {"EHLO mx.example trailing", 0, false, 501, SMTP_EHLO, "501 5.5.4 Syntax: EHLO hostname", NULL, NULL},
    {"HELO a\tb", 0, false, 501, SMTP_HELO, "501 5.5.4 Syntax: HELO hostname", NULL, NULL},
    {"EHLO caf\xc3\xa9.example", 0, false, 501, SMTP_EHLO, "501 5.5.4 Syntax: EHLO hostname", NULL, NULL},
    /* MAIL */
    {"MAIL FROM:<a@b.example>", 0, false, 0, SMTP_MAIL, NULL, NULL, "a@b.example"},
    {"mail from:<User@B.Example>", 0, false, 0, SMTP_MAIL, NULL, NULL, "User@b.example"},
    {"MaIl FrOm:<a@b.example>   ", 0, false, 0, SMTP_MAIL, NULL, NULL, "a@b.example"},
    {"MAIL FROM: <a@b.example>", 0, false, 0, SMTP_MAIL, NULL, NULL, "a@b.example"},
    {"MAIL FROM:<>", 0, false, 0, SMTP_MAIL, NULL, NULL, ""},
    {"MAIL FROM:  <a@b.example>", 0, false, 501, SMTP_MAIL, SYN_MAIL, NULL, NULL},
    {"MAIL FROM:a@b.example", 0, false, 501, SMTP_MAIL, SYN_MAIL, NULL, NULL},
    {"MAIL FROM:<a@b.example", 0, false, 501, SMTP_MAIL, SYN_MAIL, NULL, NULL},
    {"MAIL FROM <a@b.example>", 0, false, 501, SMTP_MAIL, SYN_MAIL, NULL, NULL},
    {"MAIL FROM :<a@b.example>", 0, false, 501, SMTP_MAIL, SYN_MAIL, NULL, NULL},
    {"MAIL TO:<a@b.example>", 0, false, 501, SMTP_MAIL, SYN_MAIL, NULL, NULL},
    {"MAIL", 0, false, 501, SMTP_MAIL, SYN_MAIL, NULL, NULL},
    {"MAIL FROM:", 0, false, 501, SMTP_MAIL, SYN_MAIL, NULL, NULL},
    {"MAIL FROM:<a@b.example>x", 0, false, 501, SMTP_MAIL, SYN_MAIL, NULL, NULL},
    {"MAIL FROM:<a@@b.example>", 0, false, 501, SMTP_MAIL, BAD_ADDR, NULL, NULL},
    {"MAIL FROM:<a@b..example>", 0, false, 501, SMTP_MAIL, BAD_ADDR, NULL, NULL},
    {"MAIL FROM:<a b@example.com>", 0, false, 501, SMTP_MAIL, BAD_ADDR, NULL, NULL},
    {"MAIL FROM:<Postmaster>", 0, false, 501, SMTP_MAIL, BAD_ADDR, NULL, NULL},
    {"MAIL FROM:<j\xc3\xb6ran@b\xc3\xbc" "cher.example>", 0, false, 0, SMTP_MAIL, NULL, NULL,
     "j\xc3\xb6ran@b\xc3\xbc" "cher.example"},
    {"MAIL FROM:<\xc0\xaf@b.example>", 0, false, 501, SMTP_MAIL, BAD_ADDR, NULL, NULL},
    /* RCPT */
    {"RCPT TO:<a@b.example>", 0, false, 0, SMTP_RCPT, NULL, NULL, "a@b.example"},
    {"rcpt to:<a@B.EXAMPLE>", 0, false, 0, SMTP_RCPT, NULL, NULL, "a@b.example"},
    {"RCPT TO: <a@b.example>", 0, false, 0, SMTP_RCPT, NULL, NULL, "a@b.example"},
    {"RCPT TO:<>", 0, false, 501, SMTP_RCPT, BAD_ADDR, NULL, NULL},
    {"RCPT TO:a@b.example", 0, false, 501, SMTP_RCPT, SYN_RCPT, NULL, NULL},
    {"RCPT FROM:<a@b.example>", 0, false, 501, SMTP_RCPT, SYN_RCPT, NULL, NULL},
    {"RCPT TO:<a@b.example", 0, false, 501, SMTP_RCPT, SYN_RCPT, NULL, NULL},
    {"RCPT", 0, false, 501, SMTP_RCPT, SYN_RCPT, NULL, NULL},
    {"RCPT TO:<Postmaster>", 0, false, 0, SMTP_RCPT, NULL, NULL, "Postmaster"},
    {"RCPT TO:<postMASTER>", 0, false, 0, SMTP_RCPT, NULL, NULL, "Postmaster"},
    {"RCPT TO:<Postmaster@Example.COM>", 0, false, 0, SMTP_RCPT, NULL, NULL, "Postmaster@example.com"},
    {"RCPT TO:<postmasterx>", 0, false, 501, SMTP_RCPT, BAD_ADDR, NULL, NULL},
    {"RCPT TO:<@a.example,@b.example:user@c.example>", 0, false, 0, SMTP_RCPT, NULL, NULL, "user@c.example"},
    {"RCPT TO:<@a.example:user@c.example>", 0, false, 0, SMTP_RCPT, NULL, NULL, "user@c.example"},
    {"MAIL FROM:<@a.example:user@c.example>", 0, false, 0, SMTP_MAIL, NULL, NULL, "user@c.example"},
    {"RCPT TO:<@a.example,b.example:user@c.example>", 0, false, 501, SMTP_RCPT, BAD_ADDR, NULL, NULL},
    {"RCPT TO:<@a..example:user@c.example>", 0, false, 501, SMTP_RCPT, BAD_ADDR, NULL, NULL},
    {"RCPT TO:<@a.example user@c.example>", 0, false, 501, SMTP_RCPT, BAD_ADDR, NULL, NULL},
    {"RCPT TO:<@a.example:>", 0, false, 501, SMTP_RCPT, BAD_ADDR, NULL, NULL},
    {"RCPT TO:<\"a>b\"@example.com>", 0, false, 0, SMTP_RCPT, NULL, NULL, "\"a>b\"@example.com"},
    {"RCPT TO:<\"john \\\"q\\\" doe\"@example.com>", 0, false, 0, SMTP_RCPT, NULL, NULL,
     "\"john \\\"q\\\" doe\"@example.com"},
    {"RCPT TO:<\"a@b\"@example.com>", 0, false, 0, SMTP_RCPT, NULL, NULL, "\"a@b\"@example.com"},
    {"RCPT TO:<user@[192.0.2.7]>", 0, false, 0, SMTP_RCPT, NULL, NULL, "user@[192.0.2.7]"},
    {"RCPT TO:<user@[IPv6:2001:DB8::7]>", 0, false, 0, SMTP_RCPT, NULL, NULL, "user@[IPv6:2001:db8::7]"},
    {"RCPT TO:<user@[192.0.2.300]>", 0, false, 501, SMTP_RCPT, BAD_ADDR, NULL, NULL},
    /* verbs without arguments */
    {"DATA", 0, false, 0, SMTP_DATA, NULL, NULL, NULL},
    {"data ", 0, false, 0, SMTP_DATA, NULL, NULL, NULL},
    {"DATA x", 0, false, 501, SMTP_DATA, NO_PARAMS, NULL, NULL},
    {"RSET", 0, false, 0, SMTP_RSET, NULL, NULL, NULL},
    {"rset x", 0, false, 501, SMTP_RSET, NO_PARAMS, NULL, NULL},
    {"QUIT", 0, false, 0, SMTP_QUIT, NULL, NULL, NULL},
    {"Quit now", 0, false, 501, SMTP_QUIT, NO_PARAMS, NULL, NULL},
    {"STARTTLS", 0, false, 0, SMTP_STARTTLS, NULL, NULL, NULL},
    {"starttls x", 0, false, 501, SMTP_STARTTLS, NO_PARAMS, NULL, NULL},
    /* verbs with an optional argument */
    {"NOOP", 0, false, 0, SMTP_NOOP, NULL, NULL, NULL},
    {"noop hello", 0, false, 0, SMTP_NOOP, NULL, "hello", NULL},
    {"NOOP\thello", 0, false, 0, SMTP_NOOP, NULL, "hello", NULL},
    {"HELP", 0, false, 0, SMTP_HELP, NULL, NULL, NULL},
    {"help MAIL", 0, false, 0, SMTP_HELP, NULL, "MAIL", NULL},
    /* verbs that need an argument */
    {"VRFY user", 0, false, 0, SMTP_VRFY, NULL, "user", NULL},
    {"vrfy John Smith", 0, false, 0, SMTP_VRFY, NULL, "John Smith", NULL},
    {"VRFY", 0, false, 501, SMTP_VRFY, "501 5.5.4 Syntax: VRFY address", NULL, NULL},
    {"EXPN staff", 0, false, 0, SMTP_EXPN, NULL, "staff", NULL},
    {"expn ", 0, false, 501, SMTP_EXPN, "501 5.5.4 Syntax: EXPN list", NULL, NULL},
    {"AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=", 0, false, 0, SMTP_AUTH, NULL, "PLAIN dGVzdAB0ZXN0AHRlc3Q=", NULL},
    {"auth LOGIN", 0, false, 0, SMTP_AUTH, NULL, "LOGIN", NULL},
    {"AUTH", 0, false, 501, SMTP_AUTH, "501 5.5.4 Syntax: AUTH mechanism [initial-response]", NULL, NULL},
    /* BDAT */
    {"BDAT 100", 0, false, 0, SMTP_BDAT, NULL, NULL, NULL},
    {"bdat 0 last", 0, false, 0, SMTP_BDAT, NULL, NULL, NULL},
    {"BDAT 18446744073709551615 LAST", 0, false, 0, SMTP_BDAT, NULL, NULL, NULL},
    {"BDAT 00000000000000000001", 0, false, 0, SMTP_BDAT, NULL, NULL, NULL},
    {"BDAT", 0, false, 501, SMTP_BDAT, SYN_BDAT, NULL, NULL},
    {"BDAT x", 0, false, 501, SMTP_BDAT, SYN_BDAT, NULL, NULL},
    {"BDAT -1", 0, false, 501, SMTP_BDAT, SYN_BDAT, NULL, NULL},
    {"BDAT 1x", 0, false, 501, SMTP_BDAT, SYN_BDAT, NULL, NULL},
    {"BDAT 18446744073709551616", 0, false, 501, SMTP_BDAT, SYN_BDAT, NULL, NULL},
    {"BDAT 000000000000000000001", 0, false, 0, SMTP_BDAT, NULL, NULL, NULL}, /* 1*DIGIT: leading zeros are valid */
    {"BDAT 5 FIRST", 0, false, 501, SMTP_BDAT, SYN_BDAT, NULL, NULL},
    {"BDAT 5 LAST x", 0, false, 501, SMTP_BDAT, SYN_BDAT, NULL, NULL},
    {"BDAT LAST", 0, false, 501, SMTP_BDAT, SYN_BDAT, NULL, NULL},
    /* unknown verbs */
    {"XYZZY", 0, false, 500, SMTP_UNKNOWN, UNRECOG, NULL, NULL},
    {"", 0, false, 500, SMTP_UNKNOWN, UNRECOG, NULL, NULL},
    {"MAILFROM:<a@b.example>", 0, false, 500, SMTP_UNKNOWN, UNRECOG, NULL, NULL},
    {" MAIL FROM:<a@b.example>", 0, false, 500, SMTP_UNKNOWN, UNRECOG, NULL, NULL},
    {"HELOX mx.example", 0, false, 500, SMTP_UNKNOWN, UNRECOG, NULL, NULL},
    {"GET", 0, false, 500, SMTP_UNKNOWN, UNRECOG, NULL, NULL},
    {"GETX / HTTP/1.1", 0, false, 500, SMTP_UNKNOWN, UNRECOG, NULL, NULL},
    {"Subject:hi", 0, false, 500, SMTP_UNKNOWN, UNRECOG, NULL, NULL},
    /* hostile: HTTP requests and header-shaped lines */
    {"GET / HTTP/1.1", 0, false, 0, SMTP_HOSTILE, NULL, NULL, NULL},
    {"get / HTTP/1.1", 0, false, 0, SMTP_HOSTILE, NULL, NULL, NULL},
    {"POST /cgi HTTP/1.0", 0, false, 0, SMTP_HOSTILE, NULL, NULL, NULL},
    {"CONNECT mx.example:25 HTTP/1.1", 0, false, 0, SMTP_HOSTILE, NULL, NULL, NULL},
    {"HEAD / HTTP/1.1", 0, false, 0, SMTP_HOSTILE, NULL, NULL, NULL},
    {"PUT /x HTTP/1.1", 0, false, 0, SMTP_HOSTILE, NULL, NULL, NULL},
    {"Host: mx.example", 0, false, 0, SMTP_HOSTILE, NULL, NULL, NULL},
    {"Subject: hello", 0, false, 0, SMTP_HOSTILE, NULL, NULL, NULL},
    {"User-Agent:", 0, false, 0, SMTP_HOSTILE, NULL, NULL, NULL},
    {"MAIL: FROM:<a@b.example>", 0, false, 0, SMTP_HOSTILE, NULL, NULL, NULL},
    /* control characters */
    {"NOOP \x01", 0, false, 500, SMTP_NOOP, BAD_CHARS, NULL, NULL},
    {"NOOP a\x7f", 0, false, 500, SMTP_NOOP, BAD_CHARS, NULL, NULL},
    {"NOOP a\0b", 8, false, 500, SMTP_NOOP, BAD_CHARS, NULL, NULL},
    {"DATA\r", 0, false, 500, SMTP_UNKNOWN, BAD_CHARS, NULL, NULL},
    {"MAIL FROM:<a@b.example>\r", 0, false, 500, SMTP_MAIL, BAD_CHARS, NULL, NULL},
    {"RCPT TO:<a\nb@example.com>", 0, false, 500, SMTP_RCPT, BAD_CHARS, NULL, NULL},
    {"XYZZY \x1b[0m", 0, false, 500, SMTP_UNKNOWN, BAD_CHARS, NULL, NULL},
};

/* test_cmd_table - every verb, case-insensitivity and each rejection with its exact reply. */
/* test_bdat_sizes - RFC 3030 chunk-size is 1*DIGIT: leading zeros are valid, however many;
 * the value must still fit in 64 bits. */
static void test_bdat_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        int rc;
        uint64_t size;
        bool last;
    } cases[] = {
        {"BDAT 0005 LAST", 0, 5, true},
        {"BDAT 0", 0, 0, false},
        {"BDAT 000 LAST", 0, 0, true},
        {"BDAT 00000000000000000000000000000000000000005", 0, 5, false},
        {"BDAT 0000018446744073709551615 LAST", 0, UINT64_MAX, true},
        {"BDAT 000018446744073709551616", 501, 0, false},
        {"BDAT 00x5", 501, 0, false},
        {"BDAT 0005 LAST x", 501, 0, false},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        smtp_cmd c;
        char reply[256] = "";
        int rc = smtp_cmd_parse(cases[i].line, strlen(cases[i].line), true, &c, reply, sizeof reply);
        if (rc != cases[i].rc) fail_msg("'%s': rc %d (%s)", cases[i].line, rc, reply);
        if (rc == 0 && (c.bdat_size != cases[i].size || c.bdat_last != cases[i].last))
            fail_msg("'%s': size %llu last %d", cases[i].line, (unsigned long long)c.bdat_size, c.bdat_last);
        if (rc != 0) assert_string_equal(reply, SYN_BDAT);
        smtp_cmd_free(&c);
    }
}

static void test_cmd_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(cmd_cases); i++) {
        const struct cmd_case *t = &cmd_cases[i];
        smtp_cmd c;
        char reply[256] = "untouched";
        size_t len = t->len ? t->len : strlen(t->line);
        int rc = smtp_cmd_parse(t->line, len, t->esmtp, &c, reply, sizeof(reply));
        show_case(i, t->line, len);
        assert_int_equal(rc, t->rc);
        assert_int_equal(c.verb, t->verb);
        if (rc != 0) {
            assert_string_equal(reply, t->reply);
            assert_cmd_empty(&c);
            smtp_cmd_free(&c);
            continue;
        }
        if (t->arg)
            assert_string_equal(c.arg, t->arg);
        else
            assert_null(c.arg);
        if (t->path) {
            char *p = smtp_addr_format(&c.path);
            assert_string_equal(p, t->path);
            free(p);
        }
        smtp_cmd_free(&c);
    }
}

/* test_cmd_details - fields a table cannot express: null path, utf8 flag, BDAT values, free. */
static void test_cmd_details(void **state)
{
    smtp_cmd c;
    char reply[128];
    (void)state;

    assert_int_equal(smtp_cmd_parse("MAIL FROM:<>", 12, false, &c, reply, sizeof(reply)), 0);
    assert_true(c.path.is_null);
    assert_string_equal(c.path.local, "");
    assert_string_equal(c.path.domain, "");
    smtp_cmd_free(&c);
    assert_null(c.path.local);
    assert_int_equal(c.verb, 0);

    const char *u = "MAIL FROM:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.example>";
    assert_int_equal(smtp_cmd_parse(u, strlen(u), true, &c, reply, sizeof(reply)), 0);
    assert_true(c.path.utf8);
    smtp_cmd_free(&c);
    assert_int_equal(smtp_cmd_parse("MAIL FROM:<a@b.example>", 23, true, &c, reply, sizeof(reply)), 0);
    assert_false(c.path.utf8);
    assert_false(c.path.is_null);
    smtp_cmd_free(&c);

    assert_int_equal(smtp_cmd_parse("RCPT TO:<Postmaster>", 20, true, &c, reply, sizeof(reply)), 0);
    assert_string_equal(c.path.local, "Postmaster");
    assert_string_equal(c.path.domain, "");
    smtp_cmd_free(&c);

    assert_int_equal(smtp_cmd_parse("BDAT 4096", 9, true, &c, reply, sizeof(reply)), 0);
    assert_int_equal(c.bdat_size, 4096);
    assert_false(c.bdat_last);
    smtp_cmd_free(&c);
    assert_int_equal(smtp_cmd_parse("BDAT 18446744073709551615 Last", 30, true, &c, reply, sizeof(reply)), 0);
    assert_true(c.bdat_size == UINT64_MAX);
    assert_true(c.bdat_last);
    smtp_cmd_free(&c);
    assert_int_equal(smtp_cmd_parse("bdat 0 LAST", 11, true, &c, reply, sizeof(reply)), 0);
    assert_int_equal(c.bdat_size, 0);
    assert_true(c.bdat_last);
    smtp_cmd_free(&c);

    /* a tiny reply buffer is truncated, never overrun; a NULL one is allowed */
    char tiny[8];
    assert_int_equal(smtp_cmd_parse("XYZZY", 5, true, &c, tiny, sizeof(tiny)), 500);
    assert_string_equal(tiny, "500 5.5");
    assert_int_equal(smtp_cmd_parse("XYZZY", 5, true, &c, NULL, 0), 500);
    smtp_cmd_free(&c);
}

/* test_cmd_line_length - 510 octets pass, 511 are "Line too long" (verb still reported). */
static void test_cmd_line_length(void **state)
{
    smtp_cmd c;
    char reply[128];
    char *line = repeat('x', 600);
    (void)state;
    memcpy(line, "NOOP ", 5);
    assert_int_equal(smtp_cmd_parse(line, 510, false, &c, reply, sizeof(reply)), 0);
    assert_int_equal(c.verb, SMTP_NOOP);
    assert_int_equal(strlen(c.arg), 505);
    smtp_cmd_free(&c);
    assert_int_equal(smtp_cmd_parse(line, 511, false, &c, reply, sizeof(reply)), 500);
    assert_string_equal(reply, "500 5.5.2 Line too long");
    assert_int_equal(c.verb, SMTP_NOOP);
    assert_null(c.arg);
    smtp_cmd_free(&c);
    assert_int_equal(smtp_cmd_parse(line + 5, 600 - 5, false, &c, reply, sizeof(reply)), 500);
    assert_string_equal(reply, "500 5.5.2 Line too long");
    assert_int_equal(c.verb, SMTP_UNKNOWN);
    free(line);
}

/* test_cmd_path_length - "<mailbox>" of 256 octets passes, 257 fails; a 254-octet mailbox is the most. */
static void test_cmd_path_length(void **state)
{
    smtp_cmd c;
    char reply[128];
    char *local = repeat('l', 64);
    (void)state;
    for (size_t mlen = 253; mlen <= 256; mlen++) {
        char *domain = domain_of_len(mlen - 65);
        char *line = xasprintf("RCPT TO:<%s@%s>", local, domain);
        int rc = smtp_cmd_parse(line, strlen(line), true, &c, reply, sizeof(reply));
        print_message("mailbox %zu octets, path %zu\n", mlen, mlen + 2);
        if (mlen + 2 <= SMTP_PATH_MAX) {
            assert_int_equal(rc, 0);
            char *p = smtp_addr_format(&c.path);
            assert_int_equal(strlen(p), mlen);
            free(p);
        } else {
            assert_int_equal(rc, 501);
            assert_string_equal(reply, BAD_ADDR);
        }
        smtp_cmd_free(&c);
        free(line);
        free(domain);
    }
    free(local);
    /* a source route counts towards the path even though it is discarded */
    for (size_t plen = 256; plen <= 257; plen++) {
        const char *route = "@relay.example:";
        size_t mlen = plen - 2 - strlen(route);
        char *lp = repeat('r', 64);
        char *domain = domain_of_len(mlen - 65);
        char *line = xasprintf("RCPT TO:<%s%s@%s>", route, lp, domain);
        int rc = smtp_cmd_parse(line, strlen(line), true, &c, reply, sizeof(reply));
        print_message("routed path %zu octets\n", plen);
        assert_int_equal(rc, plen <= SMTP_PATH_MAX ? 0 : 501);
        if (rc)
            assert_string_equal(reply, BAD_ADDR);
        else
            assert_string_equal(c.path.local, lp);
        smtp_cmd_free(&c);
        free(line);
        free(domain);
        free(lp);
    }
}

/* ------------------------------------------------------------------ MAIL/RCPT parameters */

struct param_case {
    const char *line;
    bool esmtp;
    int rc;
    const char *reply;
    /* expected values on success */
    bool has_size;
    uint64_t size;
    enum smtp_body body;
    bool smtputf8;
    enum dsn_ret ret;
    const char *envid;
    unsigned notify;
    const char *orcpt;
};

#define M "MAIL FROM:<a@b.example>"
#define R "RCPT TO:<c@d.example>"
#define INV(n) "501 5.5.4 Invalid " n " value"

static const struct param_case param_cases[] = {
    {M, false, 0, NULL, false, 0, BODY_UNSET, false, DSN_RET_UNSET, NULL, 0, NULL},
    {M " SIZE=10", false, 555, "555 5.5.4 Parameters not supported without EHLO", false, 0, 0, false, 0, NULL, 0, NULL},
    {R " NOTIFY=NEVER", false, 555, "555 5.5.4 Parameters not supported without EHLO", false, 0, 0, false, 0, NULL, 0, NULL},
    /* SIZE */
    {M " SIZE=1000", true, 0, NULL, true, 1000, 0, false, 0, NULL, 0, NULL},
    {M " size=0", true, 0, NULL, true, 0, 0, false, 0, NULL, 0, NULL},
    {M " SIZE=18446744073709551615", true, 0, NULL, true, UINT64_MAX, 0, false, 0, NULL, 0, NULL},
    {M " SIZE=18446744073709551616", true, 501, INV("SIZE"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " SIZE=000000000000000000001", true, 501, INV("SIZE"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " SIZE=", true, 501, INV("SIZE"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " SIZE", true, 501, INV("SIZE"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " SIZE=12a", true, 501, INV("SIZE"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " SIZE=-1", true, 501, INV("SIZE"), false, 0, 0, false, 0, NULL, 0, NULL},
    /* BODY */
    {M " BODY=7BIT", true, 0, NULL, false, 0, BODY_7BIT, false, 0, NULL, 0, NULL},
    {M " body=8bitmime", true, 0, NULL, false, 0, BODY_8BITMIME, false, 0, NULL, 0, NULL},
    {M " BODY=BINARYMIME", true, 0, NULL, false, 0, BODY_BINARYMIME, false, 0, NULL, 0, NULL},
    {M " BODY=9BIT", true, 501, INV("BODY"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " BODY=", true, 501, INV("BODY"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " BODY", true, 501, INV("BODY"), false, 0, 0, false, 0, NULL, 0, NULL},
    /* SMTPUTF8 */
    {M " SMTPUTF8", true, 0, NULL, false, 0, 0, true, 0, NULL, 0, NULL},
    {M " smtputf8", true, 0, NULL, false, 0, 0, true, 0, NULL, 0, NULL},
    {M " SMTPUTF8=yes", true, 501, "501 5.5.4 SMTPUTF8 takes no value", false, 0, 0, false, 0, NULL, 0, NULL},
    /* RET */
    {M " RET=FULL", true, 0, NULL, false, 0, 0, false, DSN_RET_FULL, NULL, 0, NULL},
    {M " ret=hdrs", true, 0, NULL, false, 0, 0, false, DSN_RET_HDRS, NULL, 0, NULL},
    {M " RET=NONE", true, 501, INV("RET"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " RET", true, 501, INV("RET"), false, 0, 0, false, 0, NULL, 0, NULL},
    /* ENVID */
    {M " ENVID=QQ+2B314", true, 0, NULL, false, 0, 0, false, 0, "QQ+314", 0, NULL},
    {M " envid=abc+20def", true, 0, NULL, false, 0, 0, false, 0, "abc def", 0, NULL},
    {M " ENVID=", true, 501, INV("ENVID"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " ENVID", true, 501, INV("ENVID"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " ENVID=a+0D+0Ab", true, 501, INV("ENVID"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " ENVID=a+2b", true, 501, INV("ENVID"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " ENVID=a+E9", true, 501, INV("ENVID"), false, 0, 0, false, 0, NULL, 0, NULL},
    {M " ENVID=a=b", true, 501, INV("ENVID"), false, 0, 0, false, 0, NULL, 0, NULL},
    /* AUTH (RFC 4954) is accepted and ignored */
    {M " AUTH=<>", true, 0, NULL, false, 0, 0, false, 0, NULL, 0, NULL},
    {M " AUTH=user+2Bx@example.com", true, 0, NULL, false, 0, 0, false, 0, NULL, 0, NULL},
    {M " AUTH=a+zz", true, 501, INV("AUTH"), false, 0, 0, false, 0, NULL, 0, NULL},
    /* several at once, separated by runs of blanks */
    {M " SIZE=10  BODY=8BITMIME SMTPUTF8\tRET=HDRS ENVID=id1", true, 0, NULL, true, 10, BODY_8BITMIME, true,
     DSN_RET_HDRS, "id1", 0, NULL},
    {"MAIL FROM: <> SIZE=5", true, 0, NULL, true, 5, 0, false, 0, NULL, 0, NULL},
    /* duplicates, unknowns, wrong command, keyword syntax */
    {M " SIZE=1 SIZE=2", true, 501, "501 5.5.4 Duplicate parameter SIZE", false, 0, 0, false, 0, NULL, 0, NULL},
    {M " smtputf8 SMTPUTF8", true, 501, "501 5.5.4 Duplicate parameter SMTPUTF8", false, 0, 0, false, 0, NULL, 0, NULL},
    {M " ENVID=a envid=b", true, 501, "501 5.5.4 Duplicate parameter ENVID", false, 0, 0, false, 0, NULL, 0, NULL},
    {M " FOO=bar", true, 555, "555 5.5.4 Unsupported parameter FOO", false, 0, 0, false, 0, NULL, 0, NULL},
    {M " SIZE=1 x-foo", true, 555, "555 5.5.4 Unsupported parameter X-FOO", false, 0, 0, false, 0, NULL, 0, NULL},
    {M " NOTIFY=NEVER", true, 555, "555 5.5.4 Unsupported parameter NOTIFY", false, 0, 0, false, 0, NULL, 0, NULL},
    {M " ORCPT=rfc822;a@b", true, 555, "555 5.5.4 Unsupported parameter ORCPT", false, 0, 0, false, 0, NULL, 0, NULL},
    {R " SIZE=10", true, 555, "555 5.5.4 Unsupported parameter SIZE", false, 0, 0, false, 0, NULL, 0, NULL},
    {R " SMTPUTF8", true, 555, "555 5.5.4 Unsupported parameter SMTPUTF8", false, 0, 0, false, 0, NULL, 0, NULL},
    {R " RET=FULL", true, 555, "555 5.5.4 Unsupported parameter RET", false, 0, 0, false, 0, NULL, 0, NULL},
    {M " =x", true, 501, "501 5.5.4 Syntax error in parameters", false, 0, 0, false, 0, NULL, 0, NULL},
    {M " -A=1", true, 501, "501 5.5.4 Syntax error in parameters", false, 0, 0, false, 0, NULL, 0, NULL},
    {M " A_B=1", true, 501, "501 5.5.4 Syntax error in parameters", false, 0, 0, false, 0, NULL, 0, NULL},
    /* NOTIFY */
    {R " NOTIFY=NEVER", true, 0, NULL, false, 0, 0, false, 0, NULL, DSN_NOTIFY_NEVER, NULL},
    {R " NOTIFY=SUCCESS,FAILURE", true, 0, NULL, false, 0, 0, false, 0, NULL,
     DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, NULL},
    {R " notify=delay,success,Failure", true, 0, NULL, false, 0, 0, false, 0, NULL,
     DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY, NULL},
    {R " NOTIFY=DELAY", true, 0, NULL, false, 0, 0, false, 0, NULL, DSN_NOTIFY_DELAY, NULL},
    {R " NOTIFY=NEVER,SUCCESS", true, 501, INV("NOTIFY"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " NOTIFY=FAILURE,NEVER", true, 501, INV("NOTIFY"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " NOTIFY=SUCCESS,SUCCESS", true, 501, INV("NOTIFY"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " NOTIFY=NEVER,NEVER", true, 501, INV("NOTIFY"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " NOTIFY=", true, 501, INV("NOTIFY"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " NOTIFY", true, 501, INV("NOTIFY"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " NOTIFY=SUCCESS,", true, 501, INV("NOTIFY"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " NOTIFY=,SUCCESS", true, 501, INV("NOTIFY"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " NOTIFY=BOGUS", true, 501, INV("NOTIFY"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " NOTIFY=NEVER NOTIFY=NEVER", true, 501, "501 5.5.4 Duplicate parameter NOTIFY", false, 0, 0, false, 0, NULL,
     0, NULL},
    /* ORCPT */
    {R " ORCPT=rfc822;user@example.com", true, 0, NULL, false, 0, 0, false, 0, NULL, 0, "rfc822;user@example.com"},
    {R " ORCPT=RFC822;a+2Bb@example.com", true, 0, NULL, false, 0, 0, false, 0, NULL, 0, "rfc822;a+b@example.com"},
    {R " NOTIFY=FAILURE ORCPT=rfc822;x+3Dy@example.com", true, 0, NULL, false, 0, 0, false, 0, NULL,
     DSN_NOTIFY_FAILURE, "rfc822;x=y@example.com"},
    {R " ORCPT=utf-8;j\\x{F6}ran@example.com", true, 0, NULL, false, 0, 0, false, 0, NULL, 0,
     "utf-8;j\xc3\xb6ran@example.com"},
    {R " ORCPT=UTF-8;j\xc3\xb6ran@b\xc3\xbc" "cher.example", true, 0, NULL, false, 0, 0, false, 0, NULL, 0,
     "utf-8;j\xc3\xb6ran@b\xc3\xbc" "cher.example"},
    {R " ORCPT=rfc822;", true, 501, INV("ORCPT"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " ORCPT=rfc822", true, 501, INV("ORCPT"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " ORCPT", true, 501, INV("ORCPT"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " ORCPT=x400;c=us", true, 501, INV("ORCPT"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " ORCPT=rfc822;a+0D+0ABcc:x@y", true, 501, INV("ORCPT"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " ORCPT=rfc822;a+2b@example.com", true, 501, INV("ORCPT"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " ORCPT=rfc822;j\xc3\xb6ran@example.com", true, 501, INV("ORCPT"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " ORCPT=utf-8;\\x{D800}x@example.com", true, 501, INV("ORCPT"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " ORCPT=utf-8;\\x{110000}x@example.com", true, 501, INV("ORCPT"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " ORCPT=utf-8;\\x{}x@example.com", true, 501, INV("ORCPT"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " ORCPT=utf-8;\\x{0A}x@example.com", true, 501, INV("ORCPT"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " ORCPT=utf-8;\xc0\xafx@example.com", true, 501, INV("ORCPT"), false, 0, 0, false, 0, NULL, 0, NULL},
    {R " ORCPT=rfc822;a@b ORCPT=rfc822;c@d", true, 501, "501 5.5.4 Duplicate parameter ORCPT", false, 0, 0, false,
     0, NULL, 0, NULL},
    /* the path is checked before the parameters */
    {"MAIL FROM:<a@@b> FOO=1", true, 501, BAD_ADDR, false, 0, 0, false, 0, NULL, 0, NULL},
};

/* test_params_table - each parameter valid and invalid, duplicates, unknowns and non-ESMTP use. */
static void test_params_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(param_cases); i++) {
        const struct param_case *t = &param_cases[i];
        smtp_cmd c;
        char reply[256] = "untouched";
        int rc = smtp_cmd_parse(t->line, strlen(t->line), t->esmtp, &c, reply, sizeof(reply));
        show_case(i, t->line, strlen(t->line));
        assert_int_equal(rc, t->rc);
        if (rc != 0) {
            assert_string_equal(reply, t->reply);
            assert_cmd_empty(&c);
            continue;
        }
        assert_int_equal(c.has_size, t->has_size);
        assert_true(c.size == t->size);
        assert_int_equal(c.body, t->body);
        assert_int_equal(c.smtputf8, t->smtputf8);
        assert_int_equal(c.ret, t->ret);
        if (t->envid)
            assert_string_equal(c.envid, t->envid);
        else
            assert_null(c.envid);
        assert_int_equal(c.notify, t->notify);
        if (t->orcpt)
            assert_string_equal(c.orcpt, t->orcpt);
        else
            assert_null(c.orcpt);
        smtp_cmd_free(&c);
    }
}

/* test_params_lengths - ENVID of 100 decoded octets passes, 101 fails; a long ORCPT passes. */
static void test_params_lengths(void **state)
{
    smtp_cmd c;
    char reply[128];
    (void)state;
    for (size_t n = 99; n <= 101; n++) {
        char *v = repeat('e', n);
        char *line = xasprintf(M " ENVID=%s", v);
        int rc = smtp_cmd_parse(line, strlen(line), true, &c, reply, sizeof(reply));
        if (n <= SMTP_ENVID_MAX) {
            assert_int_equal(rc, 0);
            assert_string_equal(c.envid, v);
        } else {
            assert_int_equal(rc, 501);
            assert_string_equal(reply, INV("ENVID"));
        }
        smtp_cmd_free(&c);
        free(line);
        free(v);
    }
    /* encoded 3 octets per character: decoded length counts, not encoded */
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, M " ENVID=");
    for (int i = 0; i < 100; i++)
        sb_puts(&sb, "+2B");
    assert_int_equal(smtp_cmd_parse(sb.data, sb.len, true, &c, reply, sizeof(reply)), 0);
    assert_int_equal(strlen(c.envid), 100);
    smtp_cmd_free(&c);
    sb_free(&sb);
    /* the longest ORCPT a 510-octet line can carry */
    char *addr = repeat('o', 510 - strlen(R " ORCPT=rfc822;"));
    char *line = xasprintf(R " ORCPT=rfc822;%s", addr);
    assert_int_equal(strlen(line), 510);
    assert_int_equal(smtp_cmd_parse(line, strlen(line), true, &c, reply, sizeof(reply)), 0);
    assert_int_equal(strlen(c.orcpt), strlen("rfc822;") + strlen(addr));
    smtp_cmd_free(&c);
    free(line);
    free(addr);
}

/* ------------------------------------------------------------------ addresses */

struct addr_case {
    const char *in;
    bool allow_utf8;
    bool ok;
    const char *local;  /* expected on success */
    const char *domain; /* expected on success */
    bool utf8;
};

static const struct addr_case addr_cases[] = {
    {"user@example.com", false, true, "user", "example.com", false},
    {"User.Name+tag@Example.COM", false, true, "User.Name+tag", "example.com", false},
    {"!#$%&'*+-/=?^_`{|}~@x.example", false, true, "!#$%&'*+-/=?^_`{|}~", "x.example", false},
    {"a@localhost", false, true, "a", "localhost", false},
    {"a@x-y.example", false, true, "a", "x-y.example", false},
    {"a@123.example", false, true, "a", "123.example", false},
    /* dot-atom errors */
    {"a..b@example.com", false, false, NULL, NULL, false},
    {".a@example.com", false, false, NULL, NULL, false},
    {"a.@example.com", false, false, NULL, NULL, false},
    {"a b@example.com", false, false, NULL, NULL, false},
    {"a(b)@example.com", false, false, NULL, NULL, false},
    {"a,b@example.com", false, false, NULL, NULL, false},
    {"a@", false, false, NULL, NULL, false},
    {"@example.com", false, false, NULL, NULL, false},
    {"user", false, false, NULL, NULL, false},
    {"a@b@example.com", false, false, NULL, NULL, false},
    {"", false, false, NULL, NULL, false},
    /* quoted local parts, kept as written */
    {"\"john doe\"@example.com", false, true, "\"john doe\"", "example.com", false},
    {"\"john \\\"q\\\" doe\"@example.com", false, true, "\"john \\\"q\\\" doe\"", "example.com", false},
    {"\"a@b\"@example.com", false, true, "\"a@b\"", "example.com", false},
    {"\"a\\\\b\"@example.com", false, true, "\"a\\\\b\"", "example.com", false},
    {"\"\"@example.com", false, true, "\"\"", "example.com", false},
    {"\"unterminated@example.com", false, false, NULL, NULL, false},
    {"\"a\"b@example.com", false, false, NULL, NULL, false},
    {"\"a\"", false, false, NULL, NULL, false},
    {"\"a\\\x01\"@example.com", false, false, NULL, NULL, false},
    {"\"a\x01\"@example.com", false, false, NULL, NULL, false},
    {"\"a\\\"@example.com", false, false, NULL, NULL, false},
    /* domains */
    {"a@-x.example", false, false, NULL, NULL, false},
    {"a@x-.example", false, false, NULL, NULL, false},
    {"a@x..example", false, false, NULL, NULL, false},
    {"a@.x.example", false, false, NULL, NULL, false},
    {"a@x.example.", false, false, NULL, NULL, false},
    {"a@x_y.example", false, false, NULL, NULL, false},
    {"a@x y.example", false, false, NULL, NULL, false},
    /* address literals */
    {"a@[192.0.2.1]", false, true, "a", "[192.0.2.1]", false},
    {"a@[IPv6:2001:DB8::1]", false, true, "a", "[IPv6:2001:db8::1]", false},
    {"a@[ipv6:::1]", false, true, "a", "[IPv6:::1]", false},
    {"a@[IPv6:::ffff:192.0.2.1]", false, true, "a", "[IPv6:::ffff:192.0.2.1]", false},
    {"a@[300.1.1.1]", false, false, NULL, NULL, false},
    {"a@[1.2.3]", false, false, NULL, NULL, false},
    {"a@[01.2.3.4]", false, false, NULL, NULL, false},
    {"a@[2001:db8::1]", false, false, NULL, NULL, false},
    {"a@[IPv6:zz::1]", false, false, NULL, NULL, false},
    {"a@[IPv6:1.2.3.4]", false, false, NULL, NULL, false},
    {"a@[IPv6:]", false, false, NULL, NULL, false},
    {"a@[x-tag:foo]", false, false, NULL, NULL, false},
    {"a@[1.2.3.4", false, false, NULL, NULL, false},
    {"a@[]", false, false, NULL, NULL, false},
    {"a@[1.2.3.4]x", false, false, NULL, NULL, false},
    /* UTF-8 */
    {"j\xc3\xb6ran@b\xc3\xbc" "cher.example", true, true, "j\xc3\xb6ran", "b\xc3\xbc" "cher.example", true},
    {"\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", true, true,
     "\xe7\x94\xa8\xe6\x88\xb7", "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", true},
    {"user@B\xc3\x9c" "CHER.Example", true, true, "user", "b\xc3\x9c" "cher.example", true},
    {"\"j\xc3\xb6 ran\"@example.com", true, true, "\"j\xc3\xb6 ran\"", "example.com", true},
    {"\xf0\x9f\x98\x80@example.com", true, true, "\xf0\x9f\x98\x80", "example.com", true},
    {"j\xc3\xb6ran@example.com", false, false, NULL, NULL, false},
    {"user@b\xc3\xbc" "cher.example", false, false, NULL, NULL, false},
    {"\xff@example.com", true, false, NULL, NULL, false},
    {"\xc3@example.com", true, false, NULL, NULL, false},
    {"a\xc3@example.com", true, false, NULL, NULL, false},
    {"\xc0\xaf@example.com", true, false, NULL, NULL, false},         /* overlong '/' */
    {"\xe0\x80\xaf@example.com", true, false, NULL, NULL, false},     /* overlong, 3 octets */
    {"\xf0\x80\x80\xaf@example.com", true, false, NULL, NULL, false}, /* overlong, 4 octets */
    {"\xed\xa0\x80@example.com", true, false, NULL, NULL, false},     /* surrogate U+D800 */
    {"\xf4\x90\x80\x80@example.com", true, false, NULL, NULL, false}, /* above U+10FFFF */
    {"\x80@example.com", true, false, NULL, NULL, false},             /* lone continuation */
    {"a@[IPv6:\xc3\xb6::1]", true, false, NULL, NULL, false},
};

/* test_addr_table - dot-atom, quoted, domains, literals and UTF-8 mailboxes. */
static void test_addr_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(addr_cases); i++) {
        const struct addr_case *t = &addr_cases[i];
        smtp_addr a;
        char err[128] = "";
        int rc = smtp_addr_parse(t->in, strlen(t->in), t->allow_utf8, &a, err, sizeof(err));
        show_case(i, t->in, strlen(t->in));
        if (!t->ok) {
            assert_int_equal(rc, -1);
            assert_true(err[0] != '\0');
            assert_null(a.local);
            assert_null(a.domain);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_string_equal(a.local, t->local);
        assert_string_equal(a.domain, t->domain);
        assert_int_equal(a.utf8, t->utf8);
        assert_false(a.is_null);
        smtp_addr_free(&a);
        assert_null(a.local);
    }
}

/* test_addr_lengths - local part 64/65, domain 255/256, label 63/64, mailbox 254/255. */
static void test_addr_lengths(void **state)
{
    smtp_addr a;
    char err[128];
    (void)state;

    for (size_t n = 63; n <= 65; n++) {
        char *local = repeat('l', n);
        char *s = xasprintf("%s@example.com", local);
        int rc = smtp_addr_parse(s, strlen(s), false, &a, err, sizeof(err));
        assert_int_equal(rc, n <= SMTP_LOCAL_MAX ? 0 : -1);
        if (rc == 0)
            assert_string_equal(a.local, local);
        else
            assert_string_equal(err, "local part too long");
        smtp_addr_free(&a);
        free(s);
        free(local);
    }
    /* a quoted local part counts its quotes */
    char *q = repeat('q', 63);
    q[0] = '"', q[62] = '"';
    char *s = xasprintf("%s@example.com", q);
    assert_int_equal(smtp_addr_parse(s, strlen(s), false, &a, err, sizeof(err)), 0);
    smtp_addr_free(&a);
    free(s);
    free(q);
    q = repeat('q', 65);
    q[0] = '"', q[64] = '"';
    s = xasprintf("%s@example.com", q);
    assert_int_equal(smtp_addr_parse(s, strlen(s), false, &a, err, sizeof(err)), -1);
    free(s);
    free(q);

    for (size_t n = 254; n <= 256; n++) {
        char *d = domain_of_len(n);
        int rc = smtp_domain_check(d, n, false, err, sizeof(err));
        print_message("domain of %zu octets\n", n);
        assert_int_equal(rc, n <= SMTP_DOMAIN_MAX ? 0 : -1);
        if (rc < 0)
            assert_string_equal(err, "domain too long");
        free(d);
    }

    for (size_t n = 62; n <= 64; n++) {
        char *label = repeat('d', n);
        s = xasprintf("a@%s.example", label);
        int rc = smtp_addr_parse(s, strlen(s), false, &a, err, sizeof(err));
        assert_int_equal(rc, n <= 63 ? 0 : -1);
        if (rc < 0)
            assert_string_equal(err, "domain label too long");
        smtp_addr_free(&a);
        free(s);
        free(label);
    }

    char *local = repeat('l', 64);
    for (size_t mlen = 253; mlen <= 256; mlen++) {
        char *d = domain_of_len(mlen - 65);
        s = xasprintf("%s@%s", local, d);
        int rc = smtp_addr_parse(s, strlen(s), false, &a, err, sizeof(err));
        assert_int_equal(strlen(s), mlen);
        assert_int_equal(rc, mlen <= SMTP_PATH_MAX - 2 ? 0 : -1);
        if (rc < 0)
            assert_string_equal(err, "address too long");
        smtp_addr_free(&a);
        free(s);
        free(d);
    }
    free(local);
}

/* test_domain_check - names and literals on their own, as HELO checks would use them. */
static void test_domain_check(void **state)
{
    static const struct {
        const char *in;
        bool utf8;
        int rc;
    } cases[] = {
        {"mx.example", false, 0},     {"MX.Example", false, 0},        {"[192.0.2.1]", false, 0},
        {"[IPv6:::1]", false, 0},     {"", false, -1},                  {"mx..example", false, -1},
        {"-mx.example", false, -1},   {"mx.example-", false, -1},       {"[::1]", false, -1},
        {"b\xc3\xbc" "cher.example", true, 0}, {"b\xc3\xbc" "cher.example", false, -1},
        {"b\xc0\xbc" "cher.example", true, -1},
    };
    char err[128];
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        show_case(i, cases[i].in, strlen(cases[i].in));
        assert_int_equal(smtp_domain_check(cases[i].in, strlen(cases[i].in), cases[i].utf8, err, sizeof(err)),
                         cases[i].rc);
    }
    /* NULL err buffer is allowed */
    assert_int_equal(smtp_domain_check("a..b", 4, false, NULL, 0), -1);
}

/* test_literal_nul - a NUL inside an address literal is refused, not cut off: inet_pton saw
 * "[4.0.2.1" and the bytes after the NUL were dropped (found by fuzz/fuzz_smtp_cmd.c). */
static void test_literal_nul(void **state)
{
    static const char found[] = "r@[4.0.2.1\0\0\0\0\0\0\0\0?]"; /* the fuzzer's input */
    static const char v4[] = "a@[192.0.2.1\0junk]", v6[] = "a@[IPv6:::1\0]", dom[] = "[192.0.2.1\0]";
    smtp_addr a;
    char err[128] = "";
    (void)state;
    assert_int_equal(smtp_addr_parse(found, sizeof found - 1, false, &a, err, sizeof(err)), -1);
    assert_string_equal(err, "malformed address literal");
    assert_null(a.domain);
    assert_int_equal(smtp_addr_parse(v4, sizeof v4 - 1, false, &a, err, sizeof(err)), -1);
    assert_int_equal(smtp_addr_parse(v6, sizeof v6 - 1, false, &a, err, sizeof(err)), -1);
    assert_int_equal(smtp_domain_check(dom, sizeof dom - 1, false, err, sizeof(err)), -1);
    /* without the NUL the same literal is fine */
    assert_int_equal(smtp_domain_check("[192.0.2.1]", 11, false, err, sizeof(err)), 0);
    assert_int_equal(smtp_addr_parse("a@[192.0.2.1]", 13, false, &a, err, sizeof(err)), 0);
    assert_string_equal(a.domain, "[192.0.2.1]");
    smtp_addr_free(&a);
}

/* test_addr_format - local@domain, bare local for Postmaster, "" for the null path. */
static void test_addr_format(void **state)
{
    smtp_addr a = {0};
    char *s;
    (void)state;
    a.local = "user", a.domain = "example.com";
    s = smtp_addr_format(&a);
    assert_string_equal(s, "user@example.com");
    free(s);
    a.local = "Postmaster", a.domain = "";
    s = smtp_addr_format(&a);
    assert_string_equal(s, "Postmaster");
    free(s);
    a.local = "", a.domain = "", a.is_null = true;
    s = smtp_addr_format(&a);
    assert_string_equal(s, "");
    free(s);
    memset(&a, 0, sizeof(a));
    s = smtp_addr_format(&a);
    assert_string_equal(s, "");
    free(s);
}

/* ------------------------------------------------------------------ xtext */

/* test_xtext_roundtrip - encode then decode gives the input back; encodings are exact. */
static void test_xtext_roundtrip(void **state)
{
    static const struct {
        const char *plain;
        const char *xtext;
    } cases[] = {
        {"", ""},
        {"abc", "abc"},
        {"a+b=c", "a+2Bb+3Dc"},
        {"a b", "a+20b"},
        {"user@example.com", "user@example.com"},
        {"\x01\x7f\xff", "+01+7F+FF"},
        {"~!\"#", "~!\"#"},
        {"+++", "+2B+2B+2B"},
        {"j\xc3\xb6", "j+C3+B6"},
    };
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char *enc = xtext_encode(cases[i].plain);
        char *dec;
        show_case(i, cases[i].xtext, strlen(cases[i].xtext));
        assert_string_equal(enc, cases[i].xtext);
        dec = xtext_decode(enc, strlen(enc));
        assert_non_null(dec);
        assert_string_equal(dec, cases[i].plain);
        free(enc);
        free(dec);
    }
    /* hex for characters that need no encoding is still valid */
    char *d = xtext_decode("+41+42c", 7);
    assert_string_equal(d, "ABc");
    free(d);
    /* only len bytes are read */
    d = xtext_decode("abc+zz", 3);
    assert_string_equal(d, "abc");
    free(d);
}

/* test_xtext_malformed - truncated or lower-case hex, forbidden characters, NUL. */
static void test_xtext_malformed(void **state)
{
    static const char *const bad[] = {
        "+", "a+", "+4", "+4g", "+4a", "+a4", "+G0", "a=b", "a b", "\x7f", "\x1f", "\xe9", "+00", "a++2B",
    };
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        show_case(i, bad[i], strlen(bad[i]));
        assert_null(xtext_decode(bad[i], strlen(bad[i])));
    }
    assert_null(xtext_decode("a\0b", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmd_table),       cmocka_unit_test(test_cmd_details),
        cmocka_unit_test(test_bdat_sizes),
        cmocka_unit_test(test_cmd_line_length), cmocka_unit_test(test_cmd_path_length),
        cmocka_unit_test(test_params_table),    cmocka_unit_test(test_params_lengths),
        cmocka_unit_test(test_addr_table),      cmocka_unit_test(test_addr_lengths),
        cmocka_unit_test(test_domain_check),    cmocka_unit_test(test_literal_nul),
        cmocka_unit_test(test_addr_format),
        cmocka_unit_test(test_xtext_roundtrip), cmocka_unit_test(test_xtext_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
