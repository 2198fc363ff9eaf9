/*
 * test_sieve.c - unit tests for src/sieve/: parse errors with their line numbers, every test and
 * action on a fixed message (a table of script -> summary of the result), the examples of RFC
 * 5228, 5235, 5293, 5429 and 5230, implicit keep, header edits seen by later tests, addtag,
 * several scripts combined with sieve_result_merge, and the limits.
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
#include "sieve/sieve.h"

static const char msg_header[] =
    "Return-Path: <alice@example.org>\r\n"
    "Received: from mx.example.org by mx.example.com; Sat, 5 Dec 2026 10:00:00 +0000\r\n"
    "From: \"Alice Q\" <Alice@Example.ORG>\r\n"
    "To: bob@example.com, \"Carol\" <carol@example.net>, undisclosed:;\r\n"
    "Cc: dave@example.com (Dave)\r\n"
    "Subject: Hello\r\n"
    " world\r\n"
    "X-Spam-Flag: YES\r\n"
    "X-Count: 1\r\n"
    "X-Count: 2\r\n"
    "X-Count: 3\r\n"
    "Message-ID: <1@example.org>\r\n";

/* base_msg - the message most cases run on. */
static sieve_msg base_msg(void)
{
    sieve_msg m = {
        .header = msg_header, .header_len = sizeof msg_header - 1, .size = 5000,
        .env_from = "alice@example.org", .env_to = "bob@example.com",
        .spamtest = 7, .spamtest_percent = 65, .virustest = 1,
    };
    return m;
}

/* summary - the result in one line: "keep fileinto:A,B redirect:x reject:why discard
 * vacation:DAYS edited error". */
static char *summary(const sieve_result *r)
{
    strbuf sb;
    sb_init(&sb);
    if (r->error) sb_puts(&sb, " error");
    if (r->keep) sb_puts(&sb, " keep");
    if (r->discard) sb_puts(&sb, " discard");
    for (size_t i = 0; i < r->fileinto.n; i++) sb_printf(&sb, "%s%s", i ? "," : " fileinto:", r->fileinto.v[i]);
    for (size_t i = 0; i < r->redirect.n; i++) sb_printf(&sb, "%s%s", i ? "," : " redirect:", r->redirect.v[i]);
    if (r->reject) sb_printf(&sb, " %s:%s", r->ereject ? "ereject" : "reject", r->reject);
    if (r->vacation) sb_printf(&sb, " vacation:%u", r->vacation_days);
    if (r->header) sb_puts(&sb, " edited");
    char *s = xstrdup(sb.len ? sb.data + 1 : "");
    sb_free(&sb);
    return s;
}

/* run_on - compile and run script on m; the summary (caller frees); the result stays in out. */
static char *run_on(const char *script, const sieve_msg *m, sieve_result *out)
{
    char err[256];
    sieve_script *s = sieve_parse(script, strlen(script), err, sizeof err);
    if (!s) {
        print_message("unexpected parse error: %s\n", err);
        fail();
    }
    sieve_run(s, m, out);
    sieve_free(s);
    return summary(out);
}

/* check_runs - each script gives its summary on the base message. */
static void check_runs(const char *const (*cases)[2], size_t n)
{
    sieve_msg m = base_msg();
    for (size_t i = 0; i < n; i++) {
        sieve_result r;
        print_message("case %zu: %s\n", i, cases[i][0]);
        char *got = run_on(cases[i][0], &m, &r);
        assert_string_equal(got, cases[i][1]);
        free(got);
        sieve_result_free(&r);
    }
}

/* test_parse_errors - each bad script fails with "line N: ..." holding the expected words. */
static void test_parse_errors(void **state)
{
    static const struct {
        const char *script;
        int line;
        const char *words;
    } cases[] = {
        {"fileinto \"x\";", 1, "needs require \"fileinto\""},
        {"keep;\nfoo;", 2, "unknown command \"foo\""},
        {"keep;\n\nif header :is \"a\" \"b\n", 3, "unterminated string"},
        {"require \"vacation\";\nvacation text:\nhello\n", 2, "unterminated text:"},
        {"require \"vacation\";\nvacation text:\nhello\n..\n", 2, "unterminated text:"},
        {"require \"vacation\";\nvacation text: junk\nhello\n.\n;", 2, "text: must end its line"},
        {"require \"fileinto\";\nkeep;\nrequire \"envelope\";", 3, "require must come before"},
        {"if true {\n require \"fileinto\";\n}", 2, "require must come before"},
        {"require [\"fileinto\", \"foo\"];", 1, "unsupported extension \"foo\""},
        {"if true keep;", 1, "expected \"{\""},
        {"keep", 1, "expected \";\""},
        {"keep;\n/* unterminated", 2, "unterminated comment"},
        {"header :is \"x\" \"y\";", 1, "unknown command \"header\""},
        {"if header :is \"from\" {keep;}", 1, "expected a key list"},
        {"if header :regex \"a\" \"b\" {keep;}", 1, "unknown tag :regex"},
        {"if header :count \"ge\" \"a\" \"1\" {}", 1, "needs require \"relational\""},
        {"if header :comparator \"i;ascii-numeric\" :is \"a\" \"1\" {}", 1, "comparator-i;ascii-numeric"},
        {"require \"comparator-i;ascii-numeric\";\nif header :comparator \"i;ascii-numeric\" :contains \"a\" \"1\" {}", 2,
         "cannot do :contains"},
        {"if header :comparator \"i;unknown\" :is \"a\" \"1\" {}", 1, "unknown comparator"},
        {"if header :is :is \"a\" \"1\" {}", 1, "match type given twice"},
        {"redirect \"not an address\";", 1, "invalid redirect address"},
        {"require \"editheader\";\naddheader \"Bad:Name\" \"x\";", 2, "invalid header name"},
        {"require \"editheader\";\ndeleteheader :last \"x\";", 2, ":last needs :index"},
        {"require \"editheader\";\ndeleteheader :index 0 \"x\";", 2, ":index must be 1"},
        {"if true {keep;}\nelse {keep;}\nelse {keep;}", 3, "else without if"},
        {"elsif true {keep;}", 1, "elsif without if"},
        {"keep;\n}", 2, "unexpected \"}\""},
        {"require \"spamtest\";\nif spamtest :percent \"5\" {}", 2, "needs require \"spamtestplus\""},
        {"if spamtest \"5\" {}", 1, "needs require \"spamtest\""},
        {"if virustest \"5\" {}", 1, "needs require \"virustest\""},
        {"if envelope :is \"from\" \"x\" {}", 1, "needs require \"envelope\""},
        {"require \"envelope\";\nif envelope :is \"auth\" \"x\" {}", 2, "unsupported envelope part"},
        {"if size 10 {}", 1, "size needs :over or :under"},
        {"if size :over \"10\" {}", 1, "a number"},
        {"if size :over 99999999999999999999 {}", 1, "number too large"},
        {"if size :over 17179869184G {}", 1, "number too large"},
        {"stop 1;", 1, "too many arguments to stop"},
        {"if not (true, false) {}", 1, "not takes one test"},
        {"if anyof true {}", 1, "test list"},
        {"if true, false {}", 1, "expected \"{\""},
        {"if header :is [\"a\", 1] \"b\" {}", 1, "strings only"},
        {"if header :is [\"a\" \"b\"] \"b\" {}", 1, "expected \",\" or \"]\""},
        {"require \"fileinto\";\nfileinto :copy \"x\";", 2, "needs require \"copy\""},
        {"require \"fileinto\";\nfileinto \"\";", 2, "invalid folder name"},
        {"require \"fileinto\";\nfileinto [\"a\", \"b\"];", 2, "one string"},
        {"require \"addtag\";\naddtag \"a\nb\";", 2, "one-line tag"},
        {"require \"vacation\";\nvacation :from \"nobody\" \"away\";", 2, "invalid vacation :from"},
        {"require \"vacation\";\nvacation :seconds 5 \"away\";", 2, "unknown tag :seconds"},
        {"require \"reject\";\nreject;", 2, "a reason"},
        {"ereject \"x\";", 1, "needs require \"ereject\""},
        {"keep;\n@", 2, "unexpected character"},
        {"if exists \"bad name\" {}", 1, "invalid header name"},
        {"keep { }", 1, "keep takes no block"},
        {"if true { stop; } else", 1, "expected \"{\""},
        {"keep :copy;", 1, "too many arguments to keep"},
        {"", 0, NULL}, /* the sentinel: the empty script is fine */
    };
    (void)state;
    for (size_t i = 0; cases[i].words; i++) {
        char err[256] = "";
        print_message("case %zu: %s\n", i, cases[i].script);
        sieve_script *s = sieve_parse(cases[i].script, strlen(cases[i].script), err, sizeof err);
        if (s) print_message("parsed, but should fail\n");
        assert_null(s);
        char want[32];
        snprintf(want, sizeof want, "line %d: ", cases[i].line);
        print_message("  -> %s\n", err);
        assert_true(strncmp(err, want, strlen(want)) == 0);
        assert_non_null(strstr(err, cases[i].words));
    }
    /* a NUL byte, with the line it is on */
    char err[256];
    assert_null(sieve_parse("keep;\nkeep;\0", 12, err, sizeof err));
    assert_string_equal(err, "line 2: NUL byte in script");
    /* errlen 0 and a NULL err are fine */
    assert_null(sieve_parse("foo;", 4, NULL, 0));
    assert_null(sieve_parse("foo;", 4, err, 0));
}

/* test_limits_parse - nesting depth, script size, string length and string list length. */
static void test_limits_parse(void **state)
{
    (void)state;
    char err[256];
    for (int depth = 30; depth <= 34; depth++) {
        strbuf sb;
        sb_init(&sb);
        for (int i = 0; i < depth; i++) sb_puts(&sb, "if true {\n");
        sb_puts(&sb, "keep;\n");
        for (int i = 0; i < depth; i++) sb_puts(&sb, "}\n");
        sieve_script *s = sieve_parse(sb.data, sb.len, err, sizeof err);
        print_message("block depth %d: %s\n", depth, s ? "ok" : err);
        if (depth <= SIEVE_MAX_DEPTH) {
            assert_non_null(s);
        } else {
            assert_null(s);
            assert_non_null(strstr(err, "nesting too deep"));
            assert_true(strncmp(err, "line 33: ", 9) == 0);
        }
        sieve_free(s);
        sb_free(&sb);
    }
    /* tests nest too: not not not ... and anyof(anyof(...)) */
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "if ");
    for (int i = 0; i < 40; i++) sb_puts(&sb, "not ");
    sb_puts(&sb, "true {}");
    assert_null(sieve_parse(sb.data, sb.len, err, sizeof err));
    assert_non_null(strstr(err, "nesting too deep"));
    sb_reset(&sb);
    sb_puts(&sb, "if ");
    for (int i = 0; i < 1000; i++) sb_puts(&sb, "anyof(");
    sb_puts(&sb, "true");
    for (int i = 0; i < 1000; i++) sb_puts(&sb, ")");
    sb_puts(&sb, " {}");
    assert_null(sieve_parse(sb.data, sb.len, err, sizeof err));
    assert_non_null(strstr(err, "nesting too deep"));
    sb_reset(&sb);
    sb_puts(&sb, "if ");
    for (int i = 0; i < 20; i++) sb_puts(&sb, "not ");
    sb_puts(&sb, "false { discard; }");
    sieve_script *s = sieve_parse(sb.data, sb.len, err, sizeof err);
    assert_non_null(s);
    sieve_free(s);
    /* too big */
    sb_reset(&sb);
    while (sb.len <= SIEVE_MAX_SCRIPT) sb_puts(&sb, "keep; # padding padding padding padding padding\n");
    assert_null(sieve_parse(sb.data, sb.len, err, sizeof err));
    assert_true(strncmp(err, "line 1: script too big", 22) == 0);
    /* a string over the limit, quoted and text: */
    sb_reset(&sb);
    sb_puts(&sb, "require \"reject\";\nreject \"");
    for (size_t i = 0; i <= SIEVE_MAX_STRING; i++) sb_putc(&sb, 'x');
    sb_puts(&sb, "\";");
    assert_null(sieve_parse(sb.data, sb.len, err, sizeof err));
    assert_string_equal(err, "line 2: string too long");
    sb_reset(&sb);
    sb_puts(&sb, "require \"reject\";\nreject text:\n");
    for (size_t i = 0; i <= SIEVE_MAX_STRING / 8; i++) sb_puts(&sb, "xxxxxxx\n");
    sb_puts(&sb, ".\n;");
    assert_null(sieve_parse(sb.data, sb.len, err, sizeof err));
    assert_string_equal(err, "line 2: string too long");
    /* an addheader value over its limit, and a word that cannot fold */
    sb_reset(&sb);
    sb_puts(&sb, "require \"editheader\";\naddheader \"X-Long\" \"");
    for (size_t i = 0; i <= SIEVE_MAX_HEADER_VALUE / 4; i++) sb_puts(&sb, "abc ");
    sb_puts(&sb, "\";");
    assert_null(sieve_parse(sb.data, sb.len, err, sizeof err));
    assert_non_null(strstr(err, "line 2: header value too long"));
    sb_reset(&sb);
    sb_puts(&sb, "require \"editheader\";\naddheader \"X-Long\" \"a ");
    for (size_t i = 0; i < 991; i++) sb_putc(&sb, 'x');
    sb_puts(&sb, "\";");
    assert_null(sieve_parse(sb.data, sb.len, err, sizeof err));
    assert_non_null(strstr(err, "line 2: header value too long"));
    sb_reset(&sb);
    sb_puts(&sb, "require \"editheader\";\naddheader \"X-Long\" \"a ");
    for (size_t i = 0; i < 998 - 8; i++) sb_putc(&sb, 'x');
    sb_puts(&sb, "\";");
    sieve_script *ok = sieve_parse(sb.data, sb.len, err, sizeof err);
    assert_non_null(ok);
    sieve_msg m = base_msg();
    sieve_result r;
    assert_int_equal(sieve_run(ok, &m, &r), 0);
    size_t col = 0, maxcol = 0; /* the long word went to a line of its own, within 998 */
    for (const char *q = r.header; *q; q++) {
        col = *q == '\n' ? 0 : col + 1;
        if (col > maxcol) maxcol = col;
    }
    assert_true(maxcol <= 999); /* 998 and the CR */
    assert_true(strncmp(r.header, "X-Long: a\r\n xx", 14) == 0);
    sieve_result_free(&r);
    sieve_free(ok);
    /* a string list over the limit */
    sb_reset(&sb);
    sb_puts(&sb, "if header :is \"subject\" [");
    for (int i = 0; i <= SIEVE_MAX_LIST; i++) sb_printf(&sb, "%s\"k%d\"", i ? "," : "", i);
    sb_puts(&sb, "] {}");
    assert_null(sieve_parse(sb.data, sb.len, err, sizeof err));
    assert_non_null(strstr(err, "string list too long"));
    sb_free(&sb);
}

/* test_lexical - comments, escapes, multi-line strings with dot-unstuffing, numbers with
 * quantifiers, case-insensitive identifiers and tags. */
static void test_lexical(void **state)
{
    (void)state;
    sieve_msg m = base_msg();
    sieve_result r;
    char *got = run_on("# comment\r\nREQUIRE [\"reject\"] ; /* a\n bracketed\n comment */\n"
                       "IF SIZE :OVER 4k { reject text: # why\r\n"
                       "line one\r\n"
                       "..dot-stuffed\r\n"
                       ".\r\n"
                       "; }",
                       &m, &r);
    assert_string_equal(got, "reject:line one\r\n.dot-stuffed\r\n");
    free(got);
    sieve_result_free(&r);

    /* "\x" is x; \\ and \" survive as \ and " */
    got = run_on("require \"reject\"; reject \"a\\\"b\\\\c\\d\";", &m, &r);
    assert_string_equal(got, "reject:a\"b\\cd");
    free(got);
    sieve_result_free(&r);

    /* LF-only text: lines come out CRLF */
    got = run_on("require \"reject\";\nreject text:\nx\n\ny\n.\n;", &m, &r);
    assert_string_equal(got, "reject:x\r\n\r\ny\r\n");
    free(got);
    sieve_result_free(&r);

    static const char *const cases[][2] = {
        {"if size :over 4K { discard; }", "discard"},
        {"if size :over 5K { discard; }", "keep"},
        {"if size :under 1M { discard; }", "discard"},
        {"if size :under 1G { discard; }", "discard"},
        {"if size :over 4999 { discard; }", "discard"},
        {"if size :over 5000 { discard; }", "keep"},
        {"if size :under 5000 { discard; }", "keep"},
        {"if size :under 5001 { discard; }", "discard"},
    };
    check_runs(cases, SL_ARRAY_LEN(cases));
}

/* test_tests - every test and match type on the base message. */
static void test_tests(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"", "keep"},
        {"if true { discard; }", "discard"},
        {"if false { discard; }", "keep"},
        {"if not false { discard; }", "discard"},
        {"if allof(true, true, false) { discard; }", "keep"},
        {"if allof(true, true) { discard; }", "discard"},
        {"if anyof(false, false, true) { discard; }", "discard"},
        {"if anyof(false, false) { discard; }", "keep"},
        /* header: unfolded value, casemap by default */
        {"if header :is \"subject\" \"hello world\" { discard; }", "discard"},
        {"if header \"Subject\" \"hello world\" { discard; }", "discard"},
        {"if header :comparator \"i;octet\" :is \"subject\" \"hello world\" { discard; }", "keep"},
        {"if header :comparator \"i;octet\" :is \"subject\" \"Hello world\" { discard; }", "discard"},
        {"if header :contains \"subject\" \"LO WO\" { discard; }", "discard"},
        {"if header :contains \"subject\" \"\" { discard; }", "discard"},
        {"if header :contains \"x-nothing\" \"\" { discard; }", "keep"},
        {"if header :contains [\"x-nothing\", \"subject\"] [\"zzz\", \"wor\"] { discard; }", "discard"},
        {"if header :matches \"subject\" \"H*o w?rld\" { discard; }", "discard"},
        {"if header :matches \"subject\" \"*\" { discard; }", "discard"},
        {"if header :matches \"subject\" \"hello\" { discard; }", "keep"},
        {"if header :matches \"subject\" \"?ello*\" { discard; }", "discard"},
        {"if header :matches \"subject\" \"*world?\" { discard; }", "keep"},
        {"if header :matches \"subject\" \"*\\\\*\" { discard; }", "keep"},
        {"if header :matches \"x-spam-flag\" \"Y*S\" { discard; }", "discard"},
        {"if header :matches \"x-spam-flag\" \"Y**S\" { discard; }", "discard"},
        {"if header :matches \"x-spam-flag\" \"*E*S*\" { discard; }", "discard"},
        {"if header :matches \"x-spam-flag\" \"*E*X*\" { discard; }", "keep"},
        {"if header :is \"x-count\" \"2\" { discard; }", "discard"},
        /* address */
        {"if address :domain :is \"from\" \"example.org\" { discard; }", "discard"},
        {"if address :localpart :is \"from\" \"alice\" { discard; }", "discard"},
        {"if address :is \"from\" \"alice@example.org\" { discard; }", "discard"},
        {"if address :all :comparator \"i;octet\" :is \"from\" \"alice@example.org\" { discard; }", "keep"},
        {"if address :all :is \"to\" \"carol@example.net\" { discard; }", "discard"},
        {"if address :all :is \"to\" \"bob@example.com\" { discard; }", "discard"},
        {"if address :all :is \"cc\" \"dave@example.com\" { discard; }", "discard"},
        {"if address :all :contains \"from\" \"Q\" { discard; }", "keep"}, /* the display name is no address */
        {"if address :domain :matches [\"to\", \"cc\"] \"*.net\" { discard; }", "discard"},
        /* exists */
        {"if exists [\"from\", \"x-spam-flag\"] { discard; }", "discard"},
        {"if exists [\"from\", \"x-nope\"] { discard; }", "keep"},
        /* envelope */
        {"require \"envelope\"; if envelope :domain :is \"from\" \"EXAMPLE.org\" { discard; }", "discard"},
        {"require \"envelope\"; if envelope :is \"to\" \"bob@example.com\" { discard; }", "discard"},
        {"require \"envelope\"; if envelope :localpart :is \"to\" \"bob\" { discard; }", "discard"},
        {"require \"envelope\"; if envelope :is \"from\" \"\" { discard; }", "keep"},
        /* relational */
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];"
         "if header :count \"eq\" :comparator \"i;ascii-numeric\" \"x-count\" \"3\" { discard; }", "discard"},
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];"
         "if header :count \"gt\" :comparator \"i;ascii-numeric\" \"x-count\" \"3\" { discard; }", "keep"},
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];"
         "if header :count \"eq\" :comparator \"i;ascii-numeric\" \"x-nothing\" \"0\" { discard; }", "discard"},
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];"
         "if address :count \"eq\" :comparator \"i;ascii-numeric\" [\"to\", \"cc\"] \"3\" { discard; }", "discard"},
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];"
         "if header :value \"gt\" :comparator \"i;ascii-numeric\" \"x-count\" \"2\" { discard; }", "discard"},
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];"
         "if header :value \"gt\" :comparator \"i;ascii-numeric\" \"x-count\" \"3\" { discard; }", "keep"},
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];"
         "if header :value \"lt\" :comparator \"i;ascii-numeric\" \"x-count\" \"010\" { discard; }", "discard"},
        {"require [\"relational\", \"comparator-i;ascii-numeric\"];"
         "if header :value \"lt\" :comparator \"i;ascii-numeric\" \"subject\" \"99999\" { discard; }", "keep"},
        {"require \"relational\"; if header :value \"lt\" \"subject\" \"i\" { discard; }", "discard"},
        {"require \"relational\"; if header :value \"ne\" \"subject\" \"HELLO WORLD\" { discard; }", "keep"},
        {"require [\"comparator-i;ascii-numeric\"];"
         "if header :comparator \"i;ascii-numeric\" :is \"x-count\" \"0003\" { discard; }", "discard"},
        /* spamtest, virustest */
        {"require [\"spamtest\", \"relational\", \"comparator-i;ascii-numeric\"];"
         "if spamtest :value \"ge\" :comparator \"i;ascii-numeric\" \"6\" { discard; }", "discard"},
        {"require [\"spamtest\", \"relational\", \"comparator-i;ascii-numeric\"];"
         "if spamtest :value \"ge\" :comparator \"i;ascii-numeric\" \"8\" { discard; }", "keep"},
        {"require \"spamtest\"; if spamtest \"7\" { discard; }", "discard"},
        {"require [\"spamtestplus\", \"relational\", \"comparator-i;ascii-numeric\"];"
         "if spamtest :percent :value \"gt\" :comparator \"i;ascii-numeric\" \"50\" { discard; }", "discard"},
        {"require [\"spamtestplus\"]; if spamtest :percent :is \"65\" { discard; }", "discard"},
        {"require [\"virustest\", \"relational\", \"comparator-i;ascii-numeric\"];"
         "if virustest :value \"eq\" :comparator \"i;ascii-numeric\" \"1\" { discard; }", "discard"},
        {"require \"virustest\"; if virustest :matches \"*\" { discard; }", "discard"},
    };
    check_runs(cases, SL_ARRAY_LEN(cases));
}

/* test_untested - spamtest and virustest give 0 when the message was not tested. */
static void test_untested(void **state)
{
    (void)state;
    sieve_msg m = base_msg();
    m.spamtest = 0;
    m.spamtest_percent = -1;
    m.virustest = 0;
    m.env_from = "";
    static const char *const scripts[] = {
        "require \"spamtest\"; if spamtest \"0\" { discard; }",
        "require \"spamtestplus\"; if spamtest :percent \"0\" { discard; }",
        "require \"virustest\"; if virustest \"0\" { discard; }",
        "require \"envelope\"; if envelope :all :is \"from\" \"\" { discard; }",
        "require \"envelope\"; if envelope :domain :is \"from\" \"\" { discard; }",
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(scripts); i++) {
        sieve_result r;
        char *got = run_on(scripts[i], &m, &r);
        assert_string_equal(got, "discard");
        free(got);
        sieve_result_free(&r);
    }
}

/* test_actions - actions and the implicit keep rules of RFC 5228 §2.10.2 and RFC 5429. */
static void test_actions(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"keep;", "keep"},
        {"discard;", "discard"},
        {"discard; keep;", "keep"},
        {"keep; discard;", "keep"},
        {"require \"fileinto\"; fileinto \"Junk\";", "fileinto:Junk"},
        {"require \"fileinto\"; fileinto \"A\"; fileinto \"A\"; fileinto \"B\";", "fileinto:A,B"},
        {"require \"fileinto\"; fileinto \"Junk\"; keep;", "keep fileinto:Junk"},
        {"require \"fileinto\"; fileinto \"Junk\"; discard;", "fileinto:Junk"},
        {"require [\"fileinto\", \"copy\"]; fileinto :copy \"A\";", "keep fileinto:A"},
        {"redirect \"x@example.net\";", "redirect:x@example.net"},
        {"redirect \"x@example.net\"; redirect \"X@Example.NET\";", "redirect:x@example.net"},
        {"require \"copy\"; redirect :copy \"x@example.net\";", "keep redirect:x@example.net"},
        {"require \"fileinto\"; stop; fileinto \"X\";", "keep"},
        {"require \"fileinto\"; if true { fileinto \"X\"; stop; } fileinto \"Y\";", "fileinto:X"},
        {"require \"reject\"; reject \"go away\";", "reject:go away"},
        {"require \"ereject\"; ereject \"go away\";", "ereject:go away"},
        {"require \"reject\"; reject \"no\"; discard;", "reject:no"},
        /* RFC 5429: reject excludes keep, fileinto, redirect, vacation and a second reject */
        {"require \"reject\"; reject \"no\"; keep;", "error keep"},
        {"require \"reject\"; keep; reject \"no\";", "error keep"},
        {"require [\"reject\", \"fileinto\"]; fileinto \"A\"; reject \"no\";", "error keep"},
        {"require [\"reject\", \"fileinto\"]; reject \"no\"; fileinto \"A\";", "error keep"},
        {"require \"reject\"; reject \"no\"; redirect \"a@b.example\";", "error keep"},
        {"require [\"reject\", \"ereject\"]; reject \"no\"; ereject \"no\";", "error keep"},
        {"require [\"reject\", \"vacation\"]; vacation \"away\"; reject \"no\";", "error keep"},
        {"require [\"reject\", \"vacation\"]; reject \"no\"; vacation \"away\";", "error keep"},
        /* vacation */
        {"require \"vacation\"; vacation \"away\";", "keep vacation:7"},
        {"require \"vacation\"; vacation :days 100 \"away\";", "keep vacation:30"},
        {"require \"vacation\"; vacation :days 0 \"away\";", "keep vacation:1"},
        {"require \"vacation\"; vacation \"a\"; vacation \"b\";", "error keep"},
        {"require [\"vacation\", \"fileinto\"]; vacation \"away\"; fileinto \"A\";", "fileinto:A vacation:7"},
        /* if / elsif / else */
        {"require \"fileinto\"; if false { fileinto \"A\"; } elsif true { fileinto \"B\"; } else { fileinto \"C\"; }",
         "fileinto:B"},
        {"require \"fileinto\"; if false { fileinto \"A\"; } elsif false { fileinto \"B\"; } else { fileinto \"C\"; }",
         "fileinto:C"},
        {"require \"fileinto\"; if true { fileinto \"A\"; } elsif true { fileinto \"B\"; } else { fileinto \"C\"; }",
         "fileinto:A"},
        {"require \"fileinto\"; if false { fileinto \"A\"; } elsif false { fileinto \"B\"; }", "keep"},
        {"if true {} else { discard; }", "keep"},
        {"if false {} else { discard; }", "discard"},
    };
    check_runs(cases, SL_ARRAY_LEN(cases));

    /* the vacation request carries every argument */
    sieve_msg m = base_msg();
    sieve_result r;
    char *got = run_on("require \"vacation\"; vacation :days 3 :subject \"Away\" :from \"me@example.com\""
                       " :addresses [\"a@example.com\", \"b@example.com\"] :mime :handle \"h1\" \"I am away\";",
                       &m, &r);
    assert_string_equal(got, "keep vacation:3");
    assert_string_equal(r.vacation_reason, "I am away");
    assert_string_equal(r.vacation_subject, "Away");
    assert_string_equal(r.vacation_from, "me@example.com");
    assert_string_equal(r.vacation_handle, "h1");
    assert_int_equal(r.vacation_addresses.n, 2);
    assert_string_equal(r.vacation_addresses.v[1], "b@example.com");
    assert_true(r.vacation_mime);
    free(got);
    sieve_result_free(&r);
    got = run_on("require \"vacation\"; vacation \"x\";", &m, &r);
    assert_null(r.vacation_subject);
    assert_null(r.vacation_from);
    assert_null(r.vacation_handle);
    assert_false(r.vacation_mime);
    free(got);
    sieve_result_free(&r);
}

/* test_rfc_examples - the example scripts of the RFCs, as the RFCs write them. */
static void test_rfc_examples(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        /* RFC 5228 §9: the From: domain is not example.com, but To: holds bob@example.com */
        {"#\n# Example Sieve Filter\n# Declare any optional features or extension used by the script\n#\n"
         "require [\"fileinto\"];\n\n#\n# Handle messages from known mailing lists\n"
         "# Move messages from IETF filter discussion list to filter mailbox\n#\n"
         "if header :is \"Sender\" \"owner-ietf-mta-filters@imc.org\"\n        {\n"
         "        fileinto \"filter\";  # move to \"filter\" mailbox\n        }\n#\n"
         "# Keep all messages to or from people in my company\n#\n"
         "elsif address :DOMAIN :is [\"From\", \"To\"] \"example.com\"\n        {\n"
         "        keep;               # keep in \"In\" mailbox\n        }\n\n#\n"
         "# Try and catch unsolicited email.  If a message is not to me,\n"
         "# or it contains a subject known to be used by spammers, file\n# it away.\n#\n"
         "elsif anyof (NOT address :all :contains\n               [\"To\", \"Cc\", \"Bcc\"] \"me@example.com\",\n"
         "             header :matches \"subject\"\n"
         "               [\"*make*money*fast*\", \"*university*dipl*mas*\"])\n        {\n"
         "        fileinto \"spam\";   # move to \"spam\" mailbox\n        }\nelse\n        {\n"
         "        # Move all other (non-company) mail to \"personal\"\n        # mailbox.\n"
         "        fileinto \"personal\";\n        }\n",
         "keep"},
        /* RFC 5228 §2.10.2's examples of implicit keep */
        {"require \"fileinto\"; if header :contains \"subject\" \"hello\" { fileinto \"greetings\"; }",
         "fileinto:greetings"},
        /* RFC 5235 §3.2 and §3.3 */
        {"require [\"spamtest\", \"fileinto\", \"relational\", \"comparator-i;ascii-numeric\"];\n"
         "if spamtest :value \"eq\" :comparator \"i;ascii-numeric\" \"0\"\n{\n    fileinto \"INBOX.unclassified\";\n}\n"
         "elsif spamtest :value \"ge\" :comparator \"i;ascii-numeric\" \"3\"\n{\n    fileinto \"INBOX.spam-trap\";\n}\n",
         "fileinto:INBOX.spam-trap"},
        {"require [\"spamtestplus\", \"fileinto\", \"relational\", \"comparator-i;ascii-numeric\"];\n"
         "if spamtest :value \"eq\" :comparator \"i;ascii-numeric\" \"0\"\n{\n    fileinto \"INBOX.unclassified\";\n}\n"
         "elsif spamtest :percent :value \"eq\" :comparator \"i;ascii-numeric\" \"0\"\n{\n    fileinto \"INBOX.not-spam\";\n}\n"
         "elsif spamtest :percent :value \"lt\" :comparator \"i;ascii-numeric\" \"37\"\n{\n"
         "    fileinto \"INBOX.spam-trap\";\n}\nelse\n{\n    discard;\n}\n",
         "discard"},
        {"require [\"virustest\", \"fileinto\", \"relational\", \"comparator-i;ascii-numeric\"];\n"
         "if virustest :value \"eq\" :comparator \"i;ascii-numeric\" \"0\"\n{\n    fileinto \"INBOX.unclassified\";\n}\n"
         "if virustest :value \"eq\" :comparator \"i;ascii-numeric\" \"4\"\n{\n    fileinto \"INBOX.quarantine\";\n}\n"
         "elsif virustest :value \"eq\" :comparator \"i;ascii-numeric\" \"5\"\n{\n    discard;\n}\n",
         "keep"},
        /* RFC 5293 §7 */
        {"require [\"editheader\"];\n/* Don't redirect if we already have */\n"
         "if not header :contains \"X-Sieve-Filtered\"\n        [\"<kim@job.example.com>\", \"<kim@home.example.com>\"]\n"
         "{\n        addheader \"X-Sieve-Filtered\" \"<kim@job.example.com>\";\n"
         "        redirect \"kim@home.example.com\";\n}\n",
         "redirect:kim@home.example.com edited"},
        /* RFC 5429 §2.1 */
        {"require [\"reject\"];\n\nif size :over 1K {\n    reject text:\n"
         "Your message is too big.  If you want to send me a big attachment,\n"
         "put it on a public web site and send me a URL.\n.\n;\n}\n",
         "reject:Your message is too big.  If you want to send me a big attachment,\r\n"
         "put it on a public web site and send me a URL.\r\n"},
        {"require [\"ereject\"];\n\nif address \"from\" \"alice@example.org\" {\n"
         "    ereject \"I no longer accept mail from this address\";\n}\n",
         "ereject:I no longer accept mail from this address"},
        /* RFC 5230 §4 */
        {"require \"vacation\";\nif header :contains \"subject\" \"cyrus\" {\n"
         "    vacation \"I'm out -- send mail to cyrus-bugs\";\n} else {\n"
         "    vacation \"I'm out -- call me at +1 304 555 0123\";\n}\n",
         "keep vacation:7"},
        {"require \"vacation\";\nvacation :days 23 :addresses [\"tjs@example.edu\",\n"
         "                               \"ts4z@landru.example.edu\"]\n"
         "   \"I'm away until October 19.\n   If it's an emergency, call 911, I guess.\" ;\n",
         "keep vacation:23"},
        /* Messaging Server's spam filter action */
        {"require \"fileinto\"; fileinto \"Junk\";", "fileinto:Junk"},
        {"require \"addtag\"; addtag \"[SPAM]\";", "keep edited"},
    };
    check_runs(cases, SL_ARRAY_LEN(cases));
}

/* run_header - run script on a message with header h; the edited header ("" if none), the summary in sum. */
static char *run_header(const char *script, const char *h, char **sum)
{
    sieve_msg m = base_msg();
    m.header = h;
    m.header_len = strlen(h);
    sieve_result r;
    *sum = run_on(script, &m, &r);
    char *out = xstrdup(r.header ? r.header : "");
    if (r.header) assert_int_equal(strlen(r.header), r.header_len);
    sieve_result_free(&r);
    return out;
}

/* test_editheader - addheader, deleteheader and addtag edit the working copy that later tests
 * read; Received is never touched. */
static void test_editheader(void **state)
{
    (void)state;
    static const char *h = "Received: a\r\nSubject: Hi\r\nX-C: 1\r\nX-C: 2\r\nX-C: 3\r\nAuto-Submitted: no\r\n";
    static const struct {
        const char *script, *header, *sum;
    } cases[] = {
        {"require [\"editheader\", \"fileinto\"]; addheader \"X-Sieve\" \"yes\";"
         "if header :is \"x-sieve\" \"yes\" { fileinto \"seen\"; }",
         "X-Sieve: yes\r\nReceived: a\r\nSubject: Hi\r\nX-C: 1\r\nX-C: 2\r\nX-C: 3\r\nAuto-Submitted: no\r\n",
         "fileinto:seen edited"},
        {"require \"editheader\"; addheader :last \"X-Sieve\" \"yes\";",
         "Received: a\r\nSubject: Hi\r\nX-C: 1\r\nX-C: 2\r\nX-C: 3\r\nAuto-Submitted: no\r\nX-Sieve: yes\r\n",
         "keep edited"},
        {"require \"editheader\"; deleteheader \"x-c\"; if exists \"x-c\" { discard; }",
         "Received: a\r\nSubject: Hi\r\nAuto-Submitted: no\r\n", "keep edited"},
        {"require \"editheader\"; deleteheader :index 2 \"X-C\";",
         "Received: a\r\nSubject: Hi\r\nX-C: 1\r\nX-C: 3\r\nAuto-Submitted: no\r\n", "keep edited"},
        {"require \"editheader\"; deleteheader :index 1 :last \"X-C\";",
         "Received: a\r\nSubject: Hi\r\nX-C: 1\r\nX-C: 2\r\nAuto-Submitted: no\r\n", "keep edited"},
        {"require \"editheader\"; deleteheader :index 4 \"X-C\";", "", "keep"},
        {"require \"editheader\"; deleteheader :index 2 \"X-C\" \"1\";", "", "keep"},
        {"require \"editheader\"; deleteheader :contains \"X-C\" [\"2\", \"3\"];",
         "Received: a\r\nSubject: Hi\r\nX-C: 1\r\nAuto-Submitted: no\r\n", "keep edited"},
        {"require \"editheader\"; deleteheader :matches \"subject\" \"h?\";",
         "Received: a\r\nX-C: 1\r\nX-C: 2\r\nX-C: 3\r\nAuto-Submitted: no\r\n", "keep edited"},
        /* Received and Auto-Submitted are protected; adding Received is ignored */
        {"require \"editheader\"; deleteheader \"received\"; deleteheader \"Auto-Submitted\";"
         "addheader \"Received\" \"forged\"; if header :is \"received\" \"a\" { discard; }",
         "", "discard"},
        /* addtag prepends to the Subject and later tests see it */
        {"require [\"addtag\", \"fileinto\"]; addtag \"[SPAM]\";"
         "if header :is \"subject\" \"[SPAM] Hi\" { fileinto \"tagged\"; }",
         "Received: a\r\nSubject: [SPAM] Hi\r\nX-C: 1\r\nX-C: 2\r\nX-C: 3\r\nAuto-Submitted: no\r\n",
         "fileinto:tagged edited"},
        {"require [\"addtag\"]; addtag \"[A]\"; addtag \"[B]\";",
         "Received: a\r\nSubject: [B] [A] Hi\r\nX-C: 1\r\nX-C: 2\r\nX-C: 3\r\nAuto-Submitted: no\r\n",
         "keep edited"},
        /* a deleted Subject comes back through addtag, at the end */
        {"require [\"addtag\", \"editheader\"]; deleteheader \"subject\"; addtag \"[SPAM]\";",
         "Received: a\r\nX-C: 1\r\nX-C: 2\r\nX-C: 3\r\nAuto-Submitted: no\r\nSubject: [SPAM]\r\n", "keep edited"},
        /* line breaks in a value become folds; long values fold at white space */
        {"require \"editheader\"; addheader \"X-Note\" text:\nfirst line\n\n  second line\n.\n;"
         "deleteheader \"x-c\"; deleteheader \"subject\"; deleteheader \"auto-submitted\";"
         "if header :is \"x-note\" \"first line second line\" { discard; }",
         "X-Note: first line\r\n second line\r\nReceived: a\r\nAuto-Submitted: no\r\n", "discard edited"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char *sum;
        print_message("case %zu: %s\n", i, cases[i].script);
        char *got = run_header(cases[i].script, h, &sum);
        assert_string_equal(got, cases[i].header);
        assert_string_equal(sum, cases[i].sum);
        free(got);
        free(sum);
    }

    /* folding of a long value, and addtag on an empty, a folded and a missing Subject */
    char *sum;
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "require \"editheader\"; addheader \"X-Long\" \"");
    for (int i = 0; i < 40; i++) sb_puts(&sb, "word ");
    sb_puts(&sb, "\";");
    char *got = run_header(sb.data, "", &sum);
    sb_free(&sb);
    size_t col = 0, maxcol = 0, lines = 0;
    for (const char *p = got; *p; p++) {
        if (*p == '\n') {
            lines++;
            col = 0;
            continue;
        }
        if (++col > maxcol) maxcol = col;
        if (col == 1 && lines) assert_true(*p == ' ');
    }
    assert_true(maxcol <= 79);
    assert_true(lines >= 3);
    free(got);
    free(sum);
    got = run_header("require \"addtag\"; addtag \"[T]\";", "Subject:\r\nX: y\r\n", &sum);
    assert_string_equal(got, "Subject: [T]\r\nX: y\r\n");
    free(got);
    free(sum);
    got = run_header("require \"addtag\"; addtag \"[T]\";", "SUBJECT:a\r\n b\r\n", &sum);
    assert_string_equal(got, "SUBJECT: [T] a\r\n b\r\n");
    free(got);
    free(sum);
    got = run_header("require \"addtag\"; addtag \"[T]\";", "From: a@b\n", &sum);
    assert_string_equal(got, "From: a@b\r\nSubject: [T]\r\n");
    free(got);
    free(sum);
}

/* test_merge - a system script, a verdict action and a user filter for one recipient: each
 * runs on the header the one before produced; the results fold together. */
static void test_merge(void **state)
{
    (void)state;
    static const char *sys = "require [\"fileinto\", \"addtag\", \"spamtest\", \"relational\","
                             " \"comparator-i;ascii-numeric\"];"
                             "if spamtest :value \"ge\" :comparator \"i;ascii-numeric\" \"5\""
                             " { addtag \"[SPAM]\"; fileinto \"Junk\"; }";
    static const struct {
        const char *user, *sum;
    } cases[] = {
        {"", "fileinto:Junk edited"},                    /* the user's implicit keep does not undo Junk */
        {"keep;", "keep fileinto:Junk edited"},          /* an explicit keep does */
        {"if header :contains \"subject\" \"[SPAM]\" { discard; }", "fileinto:Junk edited"},
        {"require \"fileinto\"; if header :contains \"subject\" \"[SPAM]\" { fileinto \"Spam\"; }",
         "fileinto:Junk,Spam edited"},
        {"require \"reject\"; reject \"no spam\";", "reject:no spam edited"}, /* a reject wins */
        {"require \"vacation\"; vacation \"away\";", "fileinto:Junk vacation:7 edited"},
        {"keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep;"
         "keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep;"
         "keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep;"
         "keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep; keep;",
         "error keep fileinto:Junk edited"}, /* a failed user script keeps, the system's actions stay */
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        print_message("case %zu: %s\n", i, cases[i].user);
        sieve_msg m = base_msg();
        sieve_result r1, r2;
        free(run_on(sys, &m, &r1));
        assert_non_null(r1.header);
        assert_non_null(strstr(r1.header, "Subject: [SPAM] Hello\r\n world\r\n"));
        m.header = r1.header;
        m.header_len = r1.header_len;
        free(run_on(cases[i].user, &m, &r2));
        sieve_result_merge(&r1, &r2);
        assert_null(r2.header);
        assert_int_equal(r2.fileinto.n, 0);
        char *got = summary(&r1);
        assert_string_equal(got, cases[i].sum);
        assert_non_null(strstr(r1.header, "[SPAM]"));
        free(got);
        sieve_result_free(&r1);
    }

    /* a discard in the first script, nothing in the second: discarded; a later keep keeps */
    sieve_msg m = base_msg();
    sieve_result a, b;
    free(run_on("discard;", &m, &a));
    free(run_on("", &m, &b));
    sieve_result_merge(&a, &b);
    char *got = summary(&a);
    assert_string_equal(got, "discard");
    free(got);
    free(run_on("keep;", &m, &b));
    sieve_result_merge(&a, &b);
    got = summary(&a);
    assert_string_equal(got, "keep");
    free(got);
    sieve_result_free(&a);
    /* two redirects and two vacations: united, the first vacation wins; the second script's
     * redirect cancels the implicit keep the first one's :copy left */
    free(run_on("require [\"copy\", \"vacation\"]; redirect :copy \"a@x.example\"; vacation :days 2 \"one\";", &m, &a));
    free(run_on("require \"vacation\"; redirect \"b@x.example\"; vacation :days 5 \"two\";", &m, &b));
    sieve_result_merge(&a, &b);
    got = summary(&a);
    assert_string_equal(got, "redirect:a@x.example,b@x.example vacation:2"); /* :copy is no explicit keep */
    assert_string_equal(a.vacation_reason, "one");
    free(got);
    sieve_result_free(&a);
}

/* test_runtime_limits - too many actions, too many redirects, too much matching work: the
 * run fails (-1), keeps, and drops every other action. */
static void test_runtime_limits(void **state)
{
    (void)state;
    sieve_msg m = base_msg();
    sieve_result r;
    char err[256];
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "require [\"fileinto\", \"copy\", \"editheader\"];\naddheader \"X-A\" \"b\";\n");
    for (int i = 0; i < SIEVE_MAX_ACTIONS; i++) sb_printf(&sb, "fileinto :copy \"f%d\";\n", i);
    sieve_script *s = sieve_parse(sb.data, sb.len, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(sieve_run(s, &m, &r), -1);
    char *got = summary(&r);
    assert_string_equal(got, "error keep");
    assert_string_equal(r.error, "line 66: too many actions");
    assert_true(r.keep_explicit);
    free(got);
    sieve_result_free(&r);
    sieve_free(s);

    /* exactly the limit is fine */
    sb_reset(&sb);
    sb_puts(&sb, "require [\"fileinto\", \"copy\"];\n");
    for (int i = 0; i < SIEVE_MAX_ACTIONS; i++) sb_printf(&sb, "fileinto :copy \"f%d\";\n", i);
    s = sieve_parse(sb.data, sb.len, err, sizeof err);
    assert_int_equal(sieve_run(s, &m, &r), 0);
    assert_int_equal(r.fileinto.n, SIEVE_MAX_ACTIONS);
    assert_true(r.keep);
    sieve_result_free(&r);
    sieve_free(s);

    /* redirects */
    sb_reset(&sb);
    for (int i = 0; i <= SIEVE_MAX_REDIRECTS; i++) sb_printf(&sb, "redirect \"r%d@example.net\";\n", i);
    got = run_on(sb.data, &m, &r);
    assert_string_equal(got, "error keep");
    assert_non_null(strstr(r.error, "too many redirects"));
    free(got);
    sieve_result_free(&r);

    /* matching work: 200 fields of 2000 "a", a pattern that backtracks at every start */
    sb_reset(&sb);
    for (int i = 0; i < 200; i++) {
        sb_puts(&sb, "X-A: ");
        for (int k = 0; k < 2000; k++) sb_putc(&sb, 'a');
        sb_puts(&sb, "\r\n");
    }
    char *hdr = sb_steal(&sb);
    sb_puts(&sb, "require \"fileinto\"; fileinto \"before\";\nif header :matches \"x-a\" \"*");
    for (int k = 0; k < 1000; k++) sb_putc(&sb, 'a');
    sb_puts(&sb, "b\" { discard; }");
    m.header = hdr;
    m.header_len = strlen(hdr);
    uint64_t t0 = now_mono_ns();
    got = run_on(sb.data, &m, &r);
    uint64_t took_ms = (now_mono_ns() - t0) / 1000000;
    print_message("matching budget spent after %llu ms\n", (unsigned long long)took_ms);
    assert_string_equal(got, "error keep");
    assert_string_equal(r.error, "line 2: too much matching work");
    free(got);
    sieve_result_free(&r);
    /* the same pattern on one field is fine (1000 x 1000 steps) */
    m.header = "X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\r\n";
    m.header_len = strlen(m.header);
    got = run_on(sb.data, &m, &r);
    assert_string_equal(got, "fileinto:before");
    free(got);
    sieve_result_free(&r);
    free(hdr);
    sb_free(&sb);
}

/* test_parse_url - Messaging Server's "data:," form, base64, and plain scripts. */
static void test_parse_url(void **state)
{
    (void)state;
    static const char *const good[][2] = {
        {"data:,require \"fileinto\"; fileinto \"Junk\";", "fileinto:Junk"},
        {"DATA:text/plain,require \"fileinto\"; fileinto \"Junk\";", "fileinto:Junk"},
        {"data:;base64,cmVxdWlyZSAiZmlsZWludG8iOyBmaWxlaW50byAiSnVuayI7", "fileinto:Junk"},
        {"require \"fileinto\"; fileinto \"Junk\";", "fileinto:Junk"},
        {"data:,", "keep"},
        {"data:,if header :contains \"subject\" \"100%\" { discard; }", "keep"},
    };
    sieve_msg m = base_msg();
    char err[256];
    for (size_t i = 0; i < SL_ARRAY_LEN(good); i++) {
        sieve_script *s = sieve_parse_url(good[i][0], err, sizeof err);
        if (!s) print_message("case %zu: %s\n", i, err);
        assert_non_null(s);
        sieve_result r;
        sieve_run(s, &m, &r);
        char *got = summary(&r);
        assert_string_equal(got, good[i][1]);
        free(got);
        sieve_result_free(&r);
        sieve_free(s);
    }
    assert_null(sieve_parse_url("data:no comma", err, sizeof err));
    assert_string_equal(err, "line 1: data: URL without \",\"");
    assert_null(sieve_parse_url("data:;base64,!!!", err, sizeof err));
    assert_string_equal(err, "line 1: bad base64 in data: URL");
    assert_null(sieve_parse_url("data:,fileinto \"x\";", err, sizeof err));
    assert_string_equal(err, "line 1: fileinto needs require \"fileinto\"");
}

/* test_header_parsing - LF-only and malformed header blocks, an empty line ending the block. */
static void test_header_parsing(void **state)
{
    (void)state;
    static const char *h = "From: a@b.example\nX-Bad line without colon\n  continued\nSubject:  x \n\t y \n\nBody: no\n";
    sieve_msg m = base_msg();
    m.header = h;
    m.header_len = strlen(h);
    static const char *const cases[][2] = {
        {"if header :is \"subject\" \"x \t y\" { discard; }", "discard"},
        {"if exists \"body\" { discard; }", "keep"},
        {"if address :is \"from\" \"a@b.example\" { discard; }", "discard"},
        {"if header :contains \"x-bad\" \"\" { discard; }", "keep"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        sieve_result r;
        char *got = run_on(cases[i][0], &m, &r);
        assert_string_equal(got, cases[i][1]);
        free(got);
        sieve_result_free(&r);
    }
    /* no header at all */
    m.header = NULL;
    m.header_len = 0;
    sieve_result r;
    char *got = run_on("if exists \"from\" { discard; }", &m, &r);
    assert_string_equal(got, "keep");
    free(got);
    sieve_result_free(&r);
    /* odd address lists */
    static const struct {
        const char *hdr, *key;
    } addrs[] = {
        {"To: <@route.example,@r2.example:u@d.example>\r\n", "u@d.example"},
        {"To: \"x, y\" <u@d.example>\r\n", "u@d.example"},
        {"To: group: a@x.example, u@d.example;, z@z.example\r\n", "u@d.example"},
        {"To: u@d.example (comment (nested) here)\r\n", "u@d.example"},
        {"To: \"quoted local\"@d.example\r\n", "\"quoted local\"@d.example"},
        {"To: u@d.example,\r\n  z@z.example\r\n", "z@z.example"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(addrs); i++) {
        m.header = addrs[i].hdr;
        m.header_len = strlen(addrs[i].hdr);
        char script[200];
        snprintf(script, sizeof script, "if address :all :is \"to\" \"%s\" { discard; }", addrs[i].key);
        print_message("address case %zu\n", i);
        if (strchr(addrs[i].key, '"')) { /* the key's quotes escaped in the script */
            snprintf(script, sizeof script, "if address :all :is \"to\" \"\\\"quoted local\\\"@d.example\" { discard; }");
        }
        got = run_on(script, &m, &r);
        assert_string_equal(got, "discard");
        free(got);
        sieve_result_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_limits_parse),
        cmocka_unit_test(test_lexical),      cmocka_unit_test(test_tests),
        cmocka_unit_test(test_untested),     cmocka_unit_test(test_actions),
        cmocka_unit_test(test_rfc_examples), cmocka_unit_test(test_editheader),
        cmocka_unit_test(test_merge),        cmocka_unit_test(test_runtime_limits),
        cmocka_unit_test(test_parse_url),    cmocka_unit_test(test_header_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
