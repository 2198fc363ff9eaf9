/*
 * test_hdraddr.c - unit tests for src/rewrite/hdraddr.c, header address completion: tables of
 * (header field as received, the field as completed) for the address-list forms of RFC 5322,
 * fields that are left alone, and the MIME walk of `inner` (message/rfc822 parts, digests,
 * nesting, the depth limit, encoded parts).
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
#include "rewrite/hdraddr.h"

/* complete - the message completed with "@d.example" (a copy of msg when nothing changed); *n gets the count. */
static char *complete(const char *msg, bool inner, size_t *n)
{
    strbuf b;
    sb_init(&b);
    *n = hdraddr_complete(msg, strlen(msg), "d.example", inner, &b);
    if (*n == 0) {
        assert_int_equal(b.len, 0);
        sb_free(&b);
        return xstrdup(msg);
    }
    return sb_steal(&b);
}

/* One field: as received and as it must come out ("same" when unchanged). */
struct field_case {
    const char *in, *out;
    size_t n;
};

/* test_fields - one header field at a time, with a body that must not change. */
static void test_fields(void **state)
{
    static const struct field_case cases[] = {
        {"From: alice", "From: alice@d.example", 1},
        {"From: alice@x.example", NULL, 0},
        {"From: Alice <alice>", "From: Alice <alice@d.example>", 1},
        {"From: \"Alice A.\" <alice>", "From: \"Alice A.\" <alice@d.example>", 1},
        {"From: Alice <alice@x.example>", NULL, 0},
        {"To: bob, carol@x", "To: bob@d.example, carol@x", 1},
        {"To: bob, carol", "To: bob@d.example, carol@d.example", 2},
        {"To: bob,\r\n\tcarol (Carol C)", "To: bob@d.example,\r\n\tcarol@d.example (Carol C)", 2},
        {"Cc: team: alice, bob@x;, dave", "Cc: team: alice@d.example, bob@x;, dave@d.example", 2},
        {"To: undisclosed-recipients:;", NULL, 0},
        {"To: Undisclosed recipients", NULL, 0},
        {"Bcc:", NULL, 0},
        {"Bcc: ", NULL, 0},
        {"To: ,, bob ,", "To: ,, bob@d.example ,", 1},
        {"Reply-To: first.last", "Reply-To: first.last@d.example", 1},
        {"Reply-To: first . last", "Reply-To: first . last@d.example", 1},
        {"Sender: \"a b\"", "Sender: \"a b\"@d.example", 1},
        {"Sender: \"a@b\" <c>", "Sender: \"a@b\" <c@d.example>", 1},
        {"From: (comment) alice (more)", "From: (comment) alice@d.example (more)", 1},
        {"From: alice (nested (comment) here)", "From: alice@d.example (nested (comment) here)", 1},
        {"From: <@r1.example,@r2.example:alice>", "From: <@r1.example,@r2.example:alice@d.example>", 1},
        {"From: < alice >", "From: < alice@d.example >", 1},
        {"From: <>", NULL, 0},
        {"From: alice@[192.0.2.1]", NULL, 0},
        {"From: Mr. Smith <smith>", "From: Mr. Smith <smith@d.example>", 1},
        {"From: =?utf-8?q?J=C3=B6rg?= <joerg>", "From: =?utf-8?q?J=C3=B6rg?= <joerg@d.example>", 1},
        {"From: j\xc3\xb6rg", "From: j\xc3\xb6rg@d.example", 1},
        {"From: alice.", NULL, 0},
        {".alice", NULL, 0},
        {"From: \"unterminated <alice>", NULL, 0},
        {"From: alice (unterminated", NULL, 0},
        {"From: Alice <alice", NULL, 0},
        {"From: alice>", NULL, 0},
        {"From: <a> <b>", NULL, 0},
        {"From: a <b>: c", NULL, 0},
        {"Resent-From: alice", "Resent-From: alice@d.example", 1},
        {"Resent-To: bob", "Resent-To: bob@d.example", 1},
        {"Resent-Cc: bob", "Resent-Cc: bob@d.example", 1},
        {"Resent-Bcc: bob", "Resent-Bcc: bob@d.example", 1},
        {"Resent-Sender: bob", "Resent-Sender: bob@d.example", 1},
        {"Return-Receipt-To: bob", "Return-Receipt-To: bob@d.example", 1},
        {"Disposition-Notification-To: bob", "Disposition-Notification-To: bob@d.example", 1},
        {"Errors-To: bob", "Errors-To: bob@d.example", 1},
        {"FROM: bob", "FROM: bob@d.example", 1},
        {"Subject: bob", NULL, 0},
        {"Message-ID: <bob>", NULL, 0},
        {"In-Reply-To: <bob>", NULL, 0},
        {"X-From: bob", NULL, 0},
        {"Resent-Date: bob", NULL, 0},
    };
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        const struct field_case *c = &cases[i];
        char *msg = xasprintf("Received: from x\r\n%s\r\nSubject: s\r\n\r\nTo: body\r\n", c->in);
        char *want = c->out ? xasprintf("Received: from x\r\n%s\r\nSubject: s\r\n\r\nTo: body\r\n", c->out)
                            : xstrdup(msg);
        print_message("case %zu: %s\n", i, c->in);
        size_t n;
        char *got = complete(msg, false, &n);
        assert_string_equal(got, want);
        assert_int_equal(n, c->n);
        assert_int_equal(hdraddr_needed(msg, strlen(msg), false), n > 0);
        free(got);
        free(want);
        free(msg);
    }
}

/* test_needed - the quick check: plain fields pass without the precise reading. */
static void test_needed(void **state)
{
    (void)state;
    static const char plain[] = "From: a@b\r\nTo: c@d, e@f\r\nCc: \r\nSubject: x\r\n\r\nTo: bob\r\n";
    assert_false(hdraddr_needed(plain, strlen(plain), false));
    assert_false(hdraddr_needed(plain, strlen(plain), true));
    static const char bare[] = "From: a@b\r\nTo: bob\r\n\r\n";
    assert_true(hdraddr_needed(bare, strlen(bare), false));
    static const char twice[] = "To: a@b@c, bob\r\n\r\n";
    assert_true(hdraddr_needed(twice, strlen(twice), false));
    static const char names[] = "From: \"A, B\" <a@b>\r\nTo: Bob <bob@x>, team: carol@y;\r\nCc: (c) d@e\r\n\r\n";
    assert_false(hdraddr_needed(names, strlen(names), false)); /* the precise reading finds nothing to do */
    static const char mp[] = "From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n";
    assert_false(hdraddr_needed(mp, strlen(mp), false));
    assert_true(hdraddr_needed(mp, strlen(mp), true));
}

/* test_lf_and_folding - bare LF lines and a header without a body. */
static void test_lf_and_folding(void **state)
{
    (void)state;
    size_t n;
    char *got = complete("From: alice\nTo: bob,\n carol\n\nbody alice\n", false, &n);
    assert_string_equal(got, "From: alice@d.example\nTo: bob@d.example,\n carol@d.example\n\nbody alice\n");
    assert_int_equal(n, 3);
    free(got);
    got = complete("From: alice", false, &n);
    assert_string_equal(got, "From: alice@d.example");
    free(got);
    got = complete("not a header\r\nFrom: alice\r\n", false, &n); /* no header at all: all body */
    assert_int_equal(n, 0);
    free(got);
}

#define FWD_OUTER                                                                                         \
    "From: alice\r\nTo: bob@x.example\r\nMIME-Version: 1.0\r\n"                                          \
    "Content-Type: multipart/mixed; boundary=\"=_b1\"\r\n\r\npreamble From: nobody\r\n--=_b1\r\n"      \
    "Content-Type: text/plain\r\n\r\nSee below.\r\nFrom: body-text\r\n--=_b1\r\n"                       \
    "Content-Type: message/rfc822\r\n\r\n"

/* test_inner - a forwarded message/rfc822 part: its header completed only with inner. */
static void test_inner(void **state)
{
    (void)state;
    const char *msg = FWD_OUTER "From: carol\r\nTo: dave, erin@y.example\r\nSubject: fwd\r\n\r\nInner body, From: x\r\n"
                                "--=_b1--\r\nepilogue\r\n";
    size_t n;
    char *got = complete(msg, false, &n);
    assert_int_equal(n, 1);
    assert_non_null(strstr(got, "From: alice@d.example\r\n"));
    assert_non_null(strstr(got, "\r\nFrom: carol\r\nTo: dave, erin"));
    free(got);
    got = complete(msg, true, &n);
    assert_int_equal(n, 3);
    assert_non_null(strstr(got, "From: alice@d.example\r\n"));
    assert_non_null(strstr(got, "\r\nFrom: carol@d.example\r\nTo: dave@d.example, erin@y.example\r\n"));
    assert_non_null(strstr(got, "preamble From: nobody\r\n"));
    assert_non_null(strstr(got, "From: body-text\r\n"));
    assert_non_null(strstr(got, "Inner body, From: x\r\n"));
    free(got);
}

/* test_inner_forms - a digest's default part type, a bare message/rfc822, an encoded one, no close delimiter. */
static void test_inner_forms(void **state)
{
    (void)state;
    size_t n;
    const char *digest = "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nFrom: a1\r\n\r\nx\r\n"
                         "--d\r\nContent-Type: text/plain\r\n\r\nFrom: not-a-header-here\r\n--d--\r\n";
    char *got = complete(digest, true, &n);
    assert_int_equal(n, 1);
    assert_non_null(strstr(got, "From: a1@d.example\r\n"));
    assert_non_null(strstr(got, "From: not-a-header-here\r\n"));
    free(got);
    const char *bare = "From: o@x\r\nContent-Type: message/rfc822\r\n\r\nTo: t\r\n\r\nbody\r\n";
    got = complete(bare, true, &n);
    assert_string_equal(got, "From: o@x\r\nContent-Type: message/rfc822\r\n\r\nTo: t@d.example\r\n\r\nbody\r\n");
    free(got);
    const char *encoded = "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nTo: t\r\n\r\n";
    got = complete(encoded, true, &n);
    assert_int_equal(n, 0);
    free(got);
    const char *noclose = "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: message/rfc822\r\n\r\nTo: t\r\n";
    got = complete(noclose, true, &n);
    assert_int_equal(n, 1);
    assert_non_null(strstr(got, "To: t@d.example\r\n"));
    free(got);
    const char *global = "Content-Type: Message/Global\r\n\r\nCc: t\r\n\r\n";
    got = complete(global, true, &n);
    assert_int_equal(n, 1);
    free(got);
    const char *quoted = "Content-Type: multipart/mixed;\r\n boundary=\"a\\\"b\" (c)\r\n\r\n--a\"b\r\n"
                         "Content-Type: message/rfc822\r\n\r\nTo: t\r\n--a\"b--\r\n";
    got = complete(quoted, true, &n);
    assert_int_equal(n, 1);
    free(got);
}

/* test_depth - forwarded forwards: completion stops HDRADDR_MAX_DEPTH entities down. */
static void test_depth(void **state)
{
    (void)state;
    strbuf b;
    sb_init(&b);
    for (int i = 0; i < 20; i++) sb_printf(&b, "To: u%d\r\nContent-Type: message/rfc822\r\n\r\n", i);
    sb_puts(&b, "To: last\r\n\r\nbody\r\n");
    size_t n;
    char *got = complete(b.data, true, &n);
    assert_int_equal(n, HDRADDR_MAX_DEPTH + 1); /* depths 0..MAX */
    assert_non_null(strstr(got, "To: u0@d.example\r\n"));
    assert_null(strstr(got, "To: last@"));
    free(got);
    sb_free(&b);
}

/* test_line_limit - an insertion that would make its line longer than 998 octets (RFC 5322
 * 2.1.1) is not made: the addresses of that line stay as they came; other lines are completed. */
static void test_line_limit(void **state)
{
    (void)state;
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "From: alice\r\nTo: ");
    for (int i = 0; i < 980; i++) sb_putc(&b, 'x');
    sb_puts(&b, "@x.example, bob\r\nCc: carol\r\n\r\nbody\r\n");
    size_t n;
    char *out = complete(b.data, false, &n);
    assert_int_equal(n, 2); /* alice and carol; bob's line would pass 998 octets */
    assert_non_null(strstr(out, "From: alice@d.example\r\n"));
    assert_non_null(strstr(out, "@x.example, bob\r\nCc: carol@d.example\r\n"));
    free(out);
    /* "To: " + a display name of N octets + " <b>" + "@d.example": 998 octets is allowed, 999 not */
    for (size_t name = 980; name <= 981; name++) {
        sb_reset(&b);
        sb_puts(&b, "To: ");
        for (size_t i = 0; i < name; i++) sb_putc(&b, 'y');
        sb_puts(&b, " <b>\r\n\r\n");
        out = complete(b.data, false, &n);
        assert_int_equal(n, name == 980 ? 1 : 0);
        free(out);
    }
    sb_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields), cmocka_unit_test(test_needed), cmocka_unit_test(test_lf_and_folding),
        cmocka_unit_test(test_inner),  cmocka_unit_test(test_inner_forms), cmocka_unit_test(test_depth), cmocka_unit_test(test_line_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
