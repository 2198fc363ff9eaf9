/* test_msgprep.c - preparing a locally submitted message: input lines, address lists, -t, the
 * fields added when missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "smtp/msgprep.h"

/* Address lists, table-driven: the value of a To/Cc/Bcc field and the addresses it names ("|"-separated). */
static void test_address_lists(void **state)
{
    (void)state;
    static const struct {
        const char *value, *expect;
    } cases[] = {
        {"alice@example.test", "alice@example.test"},
        {" alice@example.test , bob@example.test ", "alice@example.test|bob@example.test"},
        {"Alice Test <alice@example.test>, \"Bob, Jr.\" <bob@example.test>", "alice@example.test|bob@example.test"},
        {"alice@example.test (Alice, the first), bob", "alice@example.test|bob"},
        {"friends: alice@example.test, Bob <bob@example.test>;, carol@example.test",
         "alice@example.test|bob@example.test|carol@example.test"},
        {"undisclosed-recipients:;", ""},
        {"<@relay.test,@other.test:dave@example.test>", "dave@example.test"},
        {"\"odd person\"@example.test", "\"odd person\"@example.test"},
        {"user@[IPv6:2001:db8::1]", "user@[IPv6:2001:db8::1]"},
        {"Just A Name", ""},
        {"a@b.test,,, c@d.test", "a@b.test|c@d.test"},
        {"Name (comment (nested)) <x@y.test>", "x@y.test"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strvec out = {0};
        msgprep_address_list(cases[i].value, &out);
        strbuf got = {0};
        for (size_t k = 0; k < out.n; k++) sb_printf(&got, "%s%s", k ? "|" : "", out.v[k]);
        assert_string_equal(got.data ? got.data : "", cases[i].expect);
        sb_free(&got);
        sv_free(&out);
    }
}

/* feed - every line of text (LF-separated) into m; returns whether a lone dot ended it. */
static bool feed(msgprep *m, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (msgprep_line(m, p, n)) return true;
        p += n;
    }
    return false;
}

static const msgprep_fields fields = {"me <me@example.test>", "Mon, 1 Jan 2026 00:00:00 +0000", "<id@example.test>"};

/* finish - the content of text after msgprep_finish (-t when extract; recipients into rcpts). */
static char *finish(const char *text, bool ignore_dot, bool extract, strvec *rcpts)
{
    msgprep m;
    msgprep_init(&m, ignore_dot);
    feed(&m, text);
    strbuf out = {0};
    msgprep_finish(&m, extract, rcpts, &fields, &out);
    msgprep_free(&m);
    return sb_steal(&out);
}

/* -t: the recipients of To, Cc and Bcc (folded lines too); Bcc removed; From/Date/Message-ID added at the end of the header. */
static void test_extract(void **state)
{
    (void)state;
    strvec r = {0};
    char *out = finish("To: a@x.test,\n\tb@x.test\nCc: C <c@x.test>\nBCC: secret@x.test\nSubject: s\n\nbody\n", true,
                       true, &r);
    assert_string_equal(out, "To: a@x.test,\r\n\tb@x.test\r\nCc: C <c@x.test>\r\nSubject: s\r\n"
                             "From: me <me@example.test>\r\nDate: Mon, 1 Jan 2026 00:00:00 +0000\r\n"
                             "Message-ID: <id@example.test>\r\n\r\nbody\r\n");
    assert_int_equal(r.n, 4);
    assert_string_equal(r.v[3], "secret@x.test");
    free(out);
    sv_free(&r);
    /* without -t the Bcc field stays and nothing is extracted */
    out = finish("Bcc: secret@x.test\nFrom: f@x.test\nDate: d\nMessage-Id: <m@x>\n\nb\n", true, false, &r);
    assert_string_equal(out, "Bcc: secret@x.test\r\nFrom: f@x.test\r\nDate: d\r\nMessage-Id: <m@x>\r\n\r\nb\r\n");
    assert_int_equal(r.n, 0);
    free(out);
}

/* A lone dot ends the input unless -i; the input without a header is all body; an mbox From line is dropped. */
static void test_dots_and_bodies(void **state)
{
    (void)state;
    msgprep m;
    msgprep_init(&m, false);
    assert_true(feed(&m, "Subject: a\n\nline\n.\nafter\n"));
    assert_true(m.ended);
    assert_string_equal(m.raw.data, "Subject: a\r\n\r\nline\r\n");
    msgprep_free(&m);

    char *out = finish("hello world\nsecond line", true, false, NULL);
    assert_string_equal(out, "From: me <me@example.test>\r\nDate: Mon, 1 Jan 2026 00:00:00 +0000\r\n"
                             "Message-ID: <id@example.test>\r\n\r\nhello world\r\nsecond line\r\n");
    free(out);
    out = finish("From someone Mon Jan  1 00:00:00 2026\nSubject: x\n\n.\nb\n", true, false, NULL);
    assert_non_null(strstr(out, "Subject: x\r\nFrom: me"));
    assert_null(strstr(out, "someone"));
    assert_non_null(strstr(out, "\r\n\r\n.\r\nb\r\n"));
    free(out);
    /* a header cut short by a body line: the empty line is put in front of the body */
    out = finish("Subject: x\nnot a header\n", true, false, NULL);
    assert_non_null(strstr(out, "<id@example.test>\r\n\r\nnot a header\r\n"));
    free(out);
    /* 8-bit content is noticed; CRLF input stays CRLF */
    msgprep_init(&m, true);
    feed(&m, "Subject: caf\xc3\xa9\r\n\r\n.\r\n");
    assert_true(m.eight_bit);
    assert_false(m.ended);
    assert_string_equal(m.raw.data, "Subject: caf\xc3\xa9\r\n\r\n.\r\n");
    msgprep_free(&m);
    /* a bare CR inside a line ends it: nothing bare is ever submitted (found by fuzz_submit) */
    msgprep_init(&m, true);
    feed(&m, "a\rb\r\rc\n");
    assert_string_equal(m.raw.data, "a\r\nb\r\n\r\nc\r\n");
    msgprep_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_lists),
        cmocka_unit_test(test_extract),
        cmocka_unit_test(test_dots_and_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
