/*
 * test_scan.c - the spamd and clamd protocol engines (scan/spamd.h, scan/clamd.h), the
 * spamfilterN_* options and channel keywords, the queue file's per-recipient folder, the
 * Maildir++ folder paths and the LMTP folder address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "deliver/maildir.h"
#include "queue/qfile.h"
#include "scan/clamd.h"
#include "scan/spamd.h"
#include "smtp/client.h"

/* ---- spamd ---- */

static void test_spamd_request(void **state)
{
    (void)state;
    strbuf b = {0};
    spamd_request_head(&b, SPAMD_SYMBOLS, "spam\r\nX: y", 1234);
    assert_string_equal(b.data, "SYMBOLS SPAMC/1.5\r\nContent-length: 1234\r\nUser: spamX:y\r\n\r\n");
    sb_reset(&b);
    spamd_request_head(&b, SPAMD_CHECK, "", 5);
    assert_string_equal(b.data, "CHECK SPAMC/1.5\r\nContent-length: 5\r\n\r\n");
    sb_free(&b);
}

typedef struct {
    enum spamd_command cmd;
    const char *answer;
    bool eof;
    int rc;
    enum scan_status status;
    bool hit;
    const char *verdict; /* NULL = the null verdict */
    double score;
    const char *detail;  /* substring, or NULL */
} spamd_case;

static const spamd_case spamd_cases[] = {
    {SPAMD_SYMBOLS, "SPAMD/1.1 0 EX_OK\r\nContent-length: 18\r\nSpam: True ; 1001.7 / 5.0\r\n\r\nGTUBE,MISSING_DATE",
     true, 1, SCAN_DONE, true, "spam", 1001.7, "GTUBE,MISSING_DATE"},
    {SPAMD_SYMBOLS, "SPAMD/1.1 0 EX_OK\r\nSpam: False ; 0.4 / 5.0\r\nContent-length: 0\r\n\r\n", false, 1, SCAN_DONE,
     false, NULL, 0.4, ""},
    {SPAMD_CHECK, "SPAMD/1.1 0 EX_OK\r\nSpam: Yes ; 9.0 / 5.0\r\n\r\n", false, 1, SCAN_DONE, true, "spam", 9.0, NULL},
    /* incomplete: more is needed, or at EOF a failure */
    {SPAMD_SYMBOLS, "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 9.0 / 5.0\r\nContent-length: 50\r\n\r\nGTUBE", false, 0,
     SCAN_DONE, false, NULL, 0, NULL},
    {SPAMD_SYMBOLS, "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 9.0 / 5.0\r\nContent-length: 50\r\n\r\nGTUBE", true, -1,
     SCAN_FAILED, false, NULL, 0, "cut short"},
    {SPAMD_SYMBOLS, "SPAMD/1.1 0 EX", false, 0, SCAN_DONE, false, NULL, 0, NULL},
    {SPAMD_SYMBOLS, "", true, -1, SCAN_FAILED, false, NULL, 0, "without an answer"},
    /* spamd's own errors, and garbage */
    {SPAMD_SYMBOLS, "SPAMD/1.0 76 Bad header line: xyz\r\n", false, 1, SCAN_FAILED, false, NULL, 0, "error 76"},
    {SPAMD_SYMBOLS, "HTTP/1.1 200 OK\r\n\r\n", false, -1, SCAN_FAILED, false, NULL, 0, "not a SPAMD status line"},
    {SPAMD_SYMBOLS, "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n", true, -1, SCAN_FAILED, false, NULL, 0,
     "no Spam: header"},
    {SPAMD_SYMBOLS, "SPAMD/1.1 0 EX_OK\r\nSpam: Maybe ; 1 / 5\r\n\r\n", true, -1, SCAN_FAILED, false, NULL, 0,
     "bad Spam: header"},
    {SPAMD_SYMBOLS, "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5\r\nContent-length: x\r\n\r\n", true, -1, SCAN_FAILED,
     false, NULL, 0, "bad Content-length"},
};

static void test_spamd_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(spamd_cases); i++) {
        const spamd_case *c = &spamd_cases[i];
        scan_result r = {0};
        int rc = spamd_parse(c->cmd, c->answer, strlen(c->answer), c->eof, &r);
        if (rc != c->rc) fail_msg("case %zu: rc %d, want %d (%s)", i, rc, c->rc, r.detail ? r.detail : "");
        if (rc != 0) {
            assert_int_equal(r.status, c->status);
            if (c->status == SCAN_DONE) {
                assert_int_equal(r.hit, c->hit);
                if (c->verdict) assert_string_equal(r.verdict, c->verdict);
                else assert_null(r.verdict);
                assert_true(r.score > c->score - 0.01 && r.score < c->score + 0.01);
            }
            if (c->detail && (!r.detail || !strstr(r.detail, c->detail)))
                fail_msg("case %zu: detail '%s', want '%s'", i, r.detail ? r.detail : "(null)", c->detail);
        }
        scan_result_free(&r);
    }
}

static void test_spamd_headers(void **state)
{
    (void)state;
    const char *a = "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 7.0 / 5.0\r\n\r\n"
                    "Received: x\r\nX-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=7.0\r\n\ttests=A,B\r\nSubject: s\r\n";
    scan_result r = {0};
    assert_int_equal(spamd_parse(SPAMD_HEADERS, a, strlen(a), true, &r), 1);
    assert_int_equal(r.headers.n, 2);
    assert_string_equal(r.headers.v[0], "X-Spam-Flag: YES");
    assert_string_equal(r.headers.v[1], "X-Spam-Status: Yes, score=7.0\ttests=A,B");
    scan_result_free(&r);
    /* found by fuzz_scan_reply: a CR inside a line stayed in the value (a header injection) */
    const char *cr = "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 7.0 / 5.0\r\n\r\nX-Spam-A: x\rBcc: evil@x\r\n";
    memset(&r, 0, sizeof r);
    assert_int_equal(spamd_parse(SPAMD_HEADERS, cr, strlen(cr), true, &r), 1);
    assert_int_equal(r.headers.n, 1);
    assert_string_equal(r.headers.v[0], "X-Spam-A: x Bcc: evil@x");
    scan_result_free(&r);
}

/* ---- clamd ---- */

static void test_clamd(void **state)
{
    (void)state;
    unsigned char h[4];
    clamd_chunk_header(0x01020304, h);
    assert_memory_equal(h, "\x01\x02\x03\x04", 4);
    struct {
        const char *a;
        size_t len;
        bool eof;
        int rc;
        enum scan_status st;
        bool hit;
        const char *detail;
    } cases[] = {
        {"stream: OK", 11, false, 1, SCAN_DONE, false, NULL},
        {"stream: Test.EICAR.NDB FOUND", 29, false, 1, SCAN_DONE, true, "Test.EICAR.NDB"},
        {"stream: OK\n", 11, false, 1, SCAN_DONE, false, NULL},
        {"stream: O", 9, false, 0, SCAN_DONE, false, NULL},
        {"stream: OK", 10, true, 1, SCAN_DONE, false, NULL},
        {"INSTREAM size limit exceeded. ERROR", 36, false, 1, SCAN_FAILED, false, "size limit"},
        {"stream: whatever", 17, false, -1, SCAN_FAILED, false, "unexpected"},
        {"\x01\x02garbage", 10, false, -1, SCAN_FAILED, false, "not a clamd answer"},
        {"", 0, true, -1, SCAN_FAILED, false, "without an answer"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        scan_result r = {0};
        int rc = clamd_parse(cases[i].a, cases[i].len, cases[i].eof, &r);
        if (rc != cases[i].rc) fail_msg("case %zu: rc %d want %d", i, rc, cases[i].rc);
        if (rc) {
            assert_int_equal(r.status, cases[i].st);
            assert_int_equal(r.hit, cases[i].hit);
            if (cases[i].hit) assert_string_equal(r.verdict, "virus");
            if (cases[i].detail && (!r.detail || !strstr(r.detail, cases[i].detail)))
                fail_msg("case %zu: detail '%s'", i, r.detail ? r.detail : "(null)");
        }
        scan_result_free(&r);
    }
}

/* ---- options and channel keywords ---- */

static char *parse_opts(const char *text, sl_options *opt)
{
    conf_errors errs = {0};
    conf_parse_options("option.dat", text, opt, &errs);
    char *out = sv_join(&errs.msgs, "\n");
    sv_free(&errs.msgs);
    return out;
}

static void test_scanner_options(void **state)
{
    (void)state;
    sl_options opt;
    char *err = parse_opts("spamfilter1_type=spamd\nspamfilter1_address=127.0.0.1:783\nspamfilter1_timeout=45\n"
                           "spamfilter2_type=clamd\nspamfilter2_address=/run/clamd.sock\nspamfilter2_optional=yes\n"
                           "spamfilter3_type=milter\nspamfilter3_address=inet:8891@127.0.0.1\n"
                           "spamfilter4_type=spamd\nspamfilter4_address=[::1]:783\nspamfilter4_max_size=500K\n"
                           "spamfilter1_verdict_0=spam\nspamfilter1_action_0=data:,discard;\n"
                           "spamfilter1_string_action=data:,keep;\nspamfilter1_null_action=data:,keep;\n",
                           &opt);
    assert_string_equal(err, "");
    free(err);
    assert_int_equal(opt.scanners[0].kind, SL_SCANNER_SPAMD);
    assert_string_equal(opt.scanners[0].host, "127.0.0.1");
    assert_int_equal(opt.scanners[0].port, 783);
    assert_int_equal(opt.scanners[0].timeout, 45);
    assert_false(opt.scanners[0].optional);
    assert_string_equal(opt.scanners[0].verdict[0], "spam");
    assert_string_equal(opt.scanners[0].action[0], "data:,discard;");
    assert_string_equal(opt.scanners[1].unix_path, "/run/clamd.sock");
    assert_true(opt.scanners[1].optional);
    assert_int_equal(opt.scanners[2].kind, SL_SCANNER_MILTER);
    assert_int_equal(opt.scanners[2].port, 8891);
    assert_string_equal(opt.scanners[3].host, "::1");
    assert_int_equal(opt.scanners[3].max_size, 500 * 1024);
    assert_int_equal(opt.scanners[4].kind, SL_SCANNER_NONE);
    assert_int_equal(opt.scanners[4].timeout, 30); /* the default */
    conf_options_free(&opt);

    struct {
        const char *text, *want;
    } bad[] = {
        {"spamfilter1_type=spamd\n", "option.dat:1: spamfilter1_type needs spamfilter1_address"},
        {"spamfilter0_type=spamd\n", "option.dat:1: unknown option 'spamfilter0_type'"},
        {"spamfilter9_type=spamd\n", "option.dat:1: unknown option 'spamfilter9_type'"},
        {"spamfilter1_type=virus\n", "option.dat:1: spamfilter1_type: bad value 'virus' (expected spamd, clamd, milter"},
        {"spamfilter1_address=host.example:783\n", "spamfilter1_address: bad value 'host.example:783'"},
        {"spamfilter1_address=127.0.0.1:0\n", "spamfilter1_address: bad value"},
        {"spamfilter1_address=inet:x@127.0.0.1\n", "spamfilter1_address: bad value"},
        {"spamfilter1_timeout=0\n", "spamfilter1_timeout: bad value '0'"},
        {"spamfilter1_optional=maybe\n", "spamfilter1_optional: bad value 'maybe'"},
        {"spamfilter1_verdict_10=spam\n", "unknown option 'spamfilter1_verdict_10'"},
        {"spamfilter1_type=clamd\nspamfilter1_address=127.0.0.1:3310\nspamfilter1_verdict_2=virus\n",
         "option.dat:1: spamfilter1_verdict_2 and spamfilter1_action_2 go together"},
        {"spamfilter1_bogus=1\n", "unknown option 'spamfilter1_bogus'"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        err = parse_opts(bad[i].text, &opt);
        if (!strstr(err, bad[i].want)) fail_msg("%s: got '%s', want '%s'", bad[i].text, err, bad[i].want);
        free(err);
        conf_options_free(&opt);
    }
}

static void test_channel_keywords(void **state)
{
    (void)state;
    sl_conf c;
    memset(&c, 0, sizeof c);
    conf_errors errs = {0};
    const char *text = "x.test $U@tcp_local-daemon\n\ndefaults sourcespamfilter3\n\n"
                       "tcp_local smtp sourcespamfilter1optin spam destinationspamfilter2 maxjobs 4\n"
                       "tcp_local-daemon\n\n"
                       "lmtp_store lmtp fileinto $U+$S@$D destinationspamfilter8optin \"virus\"\nstore-daemon\n";
    conf_parse_sluice_cnf("sluice.cnf", text, &c, &errs);
    char *all = sv_join(&errs.msgs, "\n");
    assert_string_equal(all, "");
    free(all);
    const sl_channel *t = conf_channel_by_name(&c, "tcp_local");
    assert_non_null(t);
    assert_string_equal(t->src_scan[0], "spam");
    assert_string_equal(t->dst_scan[1], "");
    assert_string_equal(t->src_scan[2], ""); /* from the defaults block */
    assert_null(t->src_scan[1]);
    assert_int_equal(t->maxjobs, 4);
    const sl_channel *l = conf_channel_by_name(&c, "lmtp_store");
    assert_string_equal(l->dst_scan[7], "virus");
    assert_string_equal(l->fileinto, "$U+$S@$D");
    conf_sluice_cnf_free(&c);
    sv_free(&errs.msgs);

    const char *bad[][2] = {
        {"\ntcp_x smtp sourcespamfilter9\nx-daemon\n", "unknown channel keyword 'sourcespamfilter9'"},
        {"\ntcp_x smtp destinationspamfilter1optin\nx-daemon\n", "needs an argument"},
        {"\ntcp_x smtp sourcespamfilter1opt x\nx-daemon\n", "unknown channel keyword 'sourcespamfilter1opt'"},
        {"\nlmtp_y lmtp fileinto $U@$D\ny-daemon\n", "fileinto': bad value '$U@$D'"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        memset(&c, 0, sizeof c);
        conf_errors e = {0};
        conf_parse_sluice_cnf("sluice.cnf", bad[i][0], &c, &e);
        char *msg = sv_join(&e.msgs, "\n");
        if (!strstr(msg, bad[i][1])) fail_msg("%s: got '%s'", bad[i][0], msg);
        free(msg);
        sv_free(&e.msgs);
        conf_sluice_cnf_free(&c);
    }
}

/* ---- where a folder goes ---- */

static void test_folder_record(void **state)
{
    (void)state;
    qmsg m;
    memset(&m, 0, sizeof m);
    snprintf(m.id, sizeof m.id, "ID1");
    m.channel = xstrdup("l");
    m.sender = xstrdup("a@b.test");
    m.arrival = 1;
    m.data = "Subject: x\r\n\r\nbody\r\n";
    m.data_len = strlen(m.data);
    qmsg_add_rcpt(&m, "u@example.test", NULL, NULL, NULL, 0)->folder = xstrdup("Junk");
    qmsg_add_rcpt(&m, "v@example.test", NULL, NULL, NULL, 0);
    strbuf out = {0};
    qfile_encode(&m, &out);
    qmsg d;
    memset(&d, 0, sizeof d);
    char err[128];
    assert_int_equal(qfile_decode(out.data, out.len, &d, err, sizeof err), 0);
    assert_int_equal(d.n_rcpts, 2);
    assert_string_equal(d.rcpts[0].folder, "Junk");
    assert_null(d.rcpts[1].folder);
    qmsg_free(&d);
    m.data = NULL;
    qmsg_free(&m);
    sb_free(&out);
}

static void test_maildir_folders(void **state)
{
    (void)state;
    char *p = maildir_folder_path("/m", "Bob@Example.Test", "Junk");
    assert_string_equal(p, "/m/example.test/bob/.Junk");
    free(p);
    p = maildir_folder_path("/m", "bob@example.test", "Lists/work");
    assert_string_equal(p, "/m/example.test/bob/.Lists.work");
    free(p);
    p = maildir_folder_path("/m", "bob@example.test", "INBOX");
    assert_string_equal(p, "/m/example.test/bob");
    free(p);
    const char *unsafe[] = {"../x", ".hidden", "a/../b", "a..b", "a/", "x\ny", ""};
    for (size_t i = 0; i < SL_ARRAY_LEN(unsafe); i++) {
        p = maildir_folder_path("/m", "bob@example.test", unsafe[i]);
        if (p) fail_msg("'%s' gave %s", unsafe[i], p);
    }
}

static void test_lmtp_folder_addr(void **state)
{
    (void)state;
    qrcpt r;
    qrcpt_init(&r, "bob@example.test", NULL, NULL, NULL, NULL, 0);
    assert_null(smtp_client_folder_addr(&r, NULL));
    r.folder = xstrdup("Junk mail");
    char *a = smtp_client_folder_addr(&r, NULL);
    assert_string_equal(a, "bob+Junk_mail@example.test");
    free(a);
    a = smtp_client_folder_addr(&r, "$U@$D/$S");
    assert_string_equal(a, "bob@example.test/Junk_mail");
    free(a);
    qrcpt_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spamd_request),   cmocka_unit_test(test_spamd_parse),
        cmocka_unit_test(test_spamd_headers),   cmocka_unit_test(test_clamd),
        cmocka_unit_test(test_scanner_options), cmocka_unit_test(test_channel_keywords),
        cmocka_unit_test(test_folder_record),   cmocka_unit_test(test_maildir_folders),
        cmocka_unit_test(test_lmtp_folder_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
