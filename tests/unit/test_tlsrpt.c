/* test_tlsrpt.c - TLS-RPT (RFC 8460) bookkeeping: the TXT record parser, the counters and their
 * bounds, the day file round trip, the JSON report, gzip and the report message (tlsrpt_data.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <openssl/x509.h>

#include "tlsrpt/tlsrpt_data.h"
#include "tlsrpt/tlsrpt_out.h"

#define DAY 20427 /* 2025-12-05 */

/* test_txt_table - valid, foreign and malformed records, and the rua each gives. */
static void test_txt_table(void **state)
{
    static const struct {
        const char *txt;
        int rc;
        const char *rua; /* the ruas joined with " " */
    } cases[] = {
        {"v=TLSRPTv1; rua=mailto:reports@example.com", 1, "mailto:reports@example.com"},
        {"v=TLSRPTv1;rua=mailto:a@x.test;", 1, "mailto:a@x.test"},
        {"v=TLSRPTv1 ; rua=mailto:a@x.test , https://r.x.test/v1 ;", 1, "mailto:a@x.test https://r.x.test/v1"},
        {"v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", 1, "https://reporting.example.com/v1/tlsrpt"},
        {"v=TLSRPTv1; rua=mailto:tls%2Breports@example.com?subject=x", 1, "mailto:tls+reports@example.com"},
        {"v=TLSRPTv1; rua=mailto:a@x.test; ext_1=value", 1, "mailto:a@x.test"},
        {"v=TLSRPTv1; rua=ftp://x.test/, mailto:b@x.test", 1, "mailto:b@x.test"},
        {"v=TLSRPTv1; rua=HTTPS://r.x.test/a, MailTo:b@x.test", 1, "https://r.x.test/a mailto:b@x.test"},
        {"v=TLSRPTv1; rua=https://r.x.test/\x01a", -1, ""},    /* a control byte: no usable rua */
        {"v=TLSRPTv1; rua=https://r.x.test/{a}", -1, ""},
        {"v=spf1 -all", 0, ""},
        {"", 0, ""},
        {"v=TLSRPTv10; rua=mailto:a@x.test", 0, ""},
        {"V=TLSRPTv1; rua=mailto:a@x.test", 0, ""},
        {"v=TLSRPTv1", -1, ""},                             /* no rua */
        {"v=TLSRPTv1;", -1, ""},
        {"v=TLSRPTv1; rua=ftp://x.test/", -1, ""},          /* no usable rua */
        {"v=TLSRPTv1; rua=mailto:a@x.test; rua=mailto:b@x.test", -1, ""},
        {"v=TLSRPTv1; rua=mailto:a@x.test,", -1, ""},
        {"v=TLSRPTv1; rua=mailto:a@x.test; bad", -1, ""},
        {"v=TLSRPTv1; rua=mailto:a@x.test; =x", -1, ""},
        {"v=TLSRPTv1; rua=mailto:a@x.test; x=", -1, ""},
        {"v=TLSRPTv1 rua=mailto:a@x.test", -1, ""},
        {"v=TLSRPTv1; rua=mailto:nobody", -1, ""},
        {"v=TLSRPTv1; rua=mailto:a<b@x.test", -1, ""},
    };
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        strvec rua = {0};
        int rc = tlsrpt_txt_parse(cases[i].txt, &rua);
        char *got = sv_join(&rua, " ");
        if (rc != cases[i].rc || strcmp(got, cases[i].rua))
            fail_msg("case %zu \"%s\": rc %d rua \"%s\"", i, cases[i].txt, rc, got);
        free(got);
        sv_free(&rua);
    }
}

/* test_txt_select - exactly one TLS-RPT record among the TXT records, or none is used. */
static void test_txt_select(void **state)
{
    (void)state;
    char *one[] = {"v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@x.test"};
    char *two[] = {"v=TLSRPTv1; rua=mailto:a@x.test", "v=TLSRPTv1; rua=mailto:b@x.test"};
    char *bad[] = {"v=TLSRPTv1; rua=mailto:a@x.test", "v=TLSRPTv1; junk"};
    strvec rua = {0};
    assert_true(tlsrpt_txt_select(one, 2, &rua));
    assert_int_equal(rua.n, 1);
    assert_string_equal(rua.v[0], "mailto:a@x.test");
    sv_free(&rua);
    assert_false(tlsrpt_txt_select(two, 2, &rua));
    assert_false(tlsrpt_txt_select(bad, 2, &rua));
    assert_false(tlsrpt_txt_select(one, 1, &rua));
    assert_false(tlsrpt_txt_select(NULL, 0, &rua));
    assert_int_equal(rua.n, 0);
}

static const tlsrpt_policy nopol = {.domain = "Mixed.Test", .type = TLSRPT_POLICY_NONE};

/* fail_of - a failure result of type at mx. */
static tlsrpt_result fail_of(enum tlsrpt_rtype type, const char *mx, const char *reason)
{
    tlsrpt_result r = {.type = type, .sending_ip = "192.0.2.1", .receiving_mx = mx, .receiving_ip = "198.51.100.7",
                       .reason = reason};
    return r;
}

/* test_counts - successes and failures per policy, detail rows merged by their fields. */
static void test_counts(void **state)
{
    (void)state;
    tlsrpt_book *b = tlsrpt_book_new(10, 10);
    tlsrpt_result ok = {.type = TLSRPT_SUCCESS};
    tlsrpt_result mm = fail_of(TLSRPT_CERT_HOST_MISMATCH, "mx1.mixed.test", NULL);
    tlsrpt_book_add(b, DAY, &nopol, &ok);
    tlsrpt_book_add(b, DAY, &nopol, &ok);
    tlsrpt_book_add(b, DAY, &nopol, &mm);
    tlsrpt_book_add(b, DAY, &nopol, &mm);
    tlsrpt_result ex = fail_of(TLSRPT_CERT_EXPIRED, "mx2.mixed.test", "certificate has expired");
    tlsrpt_book_add(b, DAY, &nopol, &ex);
    const char *strings[] = {"version: STSv1", "mode: enforce"}, *mx[] = {"*.mixed.test"};
    tlsrpt_policy sts = {.domain = "mixed.test", .type = TLSRPT_POLICY_STS, .strings = strings, .n_strings = 2,
                         .mx_hosts = mx, .n_mx = 1};
    tlsrpt_book_add(b, DAY, &sts, &ok);
    tlsrpt_book_add(b, DAY + 1, &nopol, &ok);
    tlsrpt_totals t;
    assert_true(tlsrpt_book_totals(b, DAY, "mixed.test", &t));
    assert_int_equal(t.success, 3);
    assert_int_equal(t.failure, 3);
    assert_int_equal(t.policies, 2);
    assert_false(t.sent);
    assert_true(tlsrpt_book_totals(b, DAY + 1, "MIXED.test", &t));
    assert_int_equal(t.success, 1);
    assert_false(tlsrpt_book_totals(b, DAY, "other.test", &t));
    int64_t days[4];
    assert_int_equal(tlsrpt_book_days(b, days, 4), 2);
    assert_int_equal(days[0], DAY);
    assert_int_equal(days[1], DAY + 1);
    strvec p = {0};
    tlsrpt_book_pending(b, DAY, &p);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.v[0], "mixed.test"); /* domains are kept in lower case */
    sv_free(&p);
    tlsrpt_book_free(b);
}

/* test_bounds - the domain and detail caps hold, and what they drop is counted. */
static void test_bounds(void **state)
{
    (void)state;
    tlsrpt_book *b = tlsrpt_book_new(3, 2);
    tlsrpt_result ok = {.type = TLSRPT_SUCCESS};
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "d%d.test", i);
        tlsrpt_policy p = {.domain = name, .type = TLSRPT_POLICY_NONE};
        tlsrpt_book_add(b, DAY, &p, &ok);
        tlsrpt_book_add(b, DAY, &p, &ok);
    }
    strvec doms = {0};
    tlsrpt_book_pending(b, DAY, &doms);
    assert_int_equal(doms.n, 3);
    sv_free(&doms);
    assert_int_equal(tlsrpt_book_dropped(b, DAY), 14);
    tlsrpt_policy p0 = {.domain = "d0.test", .type = TLSRPT_POLICY_NONE};
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "mx%d.d0.test", i);
        tlsrpt_result f = fail_of(TLSRPT_VALIDATION_FAILURE, name, "handshake failure");
        tlsrpt_book_add(b, DAY, &p0, &f);
    }
    tlsrpt_totals t;
    assert_true(tlsrpt_book_totals(b, DAY, "d0.test", &t));
    assert_int_equal(t.failure, 5);
    assert_int_equal(t.details_dropped, 3);
    /* policies per domain are capped too */
    char s[TLSRPT_MAX_POLICIES + 2][8];
    for (int i = 0; i < TLSRPT_MAX_POLICIES + 2; i++) {
        snprintf(s[i], sizeof s[i], "p%d", i);
        const char *one[] = {s[i]};
        tlsrpt_policy sp = {.domain = "d1.test", .type = TLSRPT_POLICY_TLSA, .strings = one, .n_strings = 1};
        tlsrpt_book_add(b, DAY, &sp, &ok);
    }
    assert_true(tlsrpt_book_totals(b, DAY, "d1.test", &t));
    assert_int_equal(t.policies, TLSRPT_MAX_POLICIES);
    assert_int_equal(tlsrpt_book_dropped(b, DAY), 14 + 3);
    tlsrpt_book_free(b);
}

/* test_mark_sent - a reported domain is no longer pending; later sessions start afresh. */
static void test_mark_sent(void **state)
{
    (void)state;
    tlsrpt_book *b = tlsrpt_book_new(10, 10);
    tlsrpt_result ok = {.type = TLSRPT_SUCCESS};
    tlsrpt_book_add(b, DAY, &nopol, &ok);
    tlsrpt_book_mark(b, DAY, false);
    tlsrpt_book_mark_sent(b, DAY, "mixed.test");
    assert_true(tlsrpt_book_dirty(b, DAY));
    strvec p = {0};
    tlsrpt_book_pending(b, DAY, &p);
    assert_int_equal(p.n, 0);
    tlsrpt_totals t;
    assert_true(tlsrpt_book_totals(b, DAY, "mixed.test", &t));
    assert_true(t.sent);
    assert_int_equal(t.success, 0);
    strbuf json = {0};
    tlsrpt_meta m = {.org = "o", .contact = "c", .report_id = "r"};
    assert_false(tlsrpt_report_json(b, DAY, "mixed.test", &m, &json));
    tlsrpt_book_add(b, DAY, &nopol, &ok);
    tlsrpt_book_pending(b, DAY, &p);
    assert_int_equal(p.n, 1);
    assert_true(tlsrpt_book_totals(b, DAY, "mixed.test", &t));
    assert_int_equal(t.success, 1);
    assert_false(t.sent);
    sv_free(&p);
    sb_free(&json);
    tlsrpt_book_forget(b, DAY);
    int64_t days[2];
    assert_int_equal(tlsrpt_book_days(b, days, 2), 0);
    tlsrpt_book_free(b);
}

/* test_dump_load - the day file reads back to the same file, values with spaces, '-', '%' and
 * absent fields included; loading adds to what the book holds. */
static void test_dump_load(void **state)
{
    (void)state;
    tlsrpt_book *b = tlsrpt_book_new(10, 10);
    tlsrpt_result ok = {.type = TLSRPT_SUCCESS};
    tlsrpt_result f = fail_of(TLSRPT_VALIDATION_FAILURE, "mx-1.mixed.test", "error:0A000086:SSL routines: 100% bad");
    f.receiving_helo = "";
    f.sending_ip = NULL;
    const char *strings[] = {"version: STSv1", "mx: *.mixed.test", ""}, *mx[] = {"*.mixed.test"};
    tlsrpt_policy sts = {.domain = "mixed.test", .type = TLSRPT_POLICY_STS, .strings = strings, .n_strings = 3,
                         .mx_hosts = mx, .n_mx = 1};
    tlsrpt_book_add(b, DAY, &nopol, &ok);
    tlsrpt_book_add(b, DAY, &nopol, &f);
    tlsrpt_book_add(b, DAY, &sts, &f);
    tlsrpt_policy sent = {.domain = "sent.test", .type = TLSRPT_POLICY_NONE};
    tlsrpt_book_add(b, DAY, &sent, &ok);
    tlsrpt_book_mark_sent(b, DAY, "sent.test");
    strbuf one = {0}, two = {0};
    tlsrpt_book_dump(b, DAY, &one);
    assert_non_null(strstr(one.data, "tlsrpt 1 2025-12-05\n"));
    assert_non_null(strstr(one.data, "\nend\n"));
    tlsrpt_book *c = tlsrpt_book_new(10, 10);
    char err[128];
    assert_int_equal(tlsrpt_book_load(c, one.data, one.len, err, sizeof err), 0);
    tlsrpt_book_dump(c, DAY, &two);
    assert_string_equal(one.data, two.data);
    tlsrpt_totals t;
    assert_true(tlsrpt_book_totals(c, DAY, "sent.test", &t));
    assert_true(t.sent);
    /* loading again adds */
    assert_int_equal(tlsrpt_book_load(c, one.data, one.len, err, sizeof err), 0);
    assert_true(tlsrpt_book_totals(c, DAY, "mixed.test", &t));
    assert_int_equal(t.success, 2);
    assert_int_equal(t.failure, 4);
    /* truncated or damaged files are refused whole */
    tlsrpt_book *d = tlsrpt_book_new(10, 10);
    assert_int_equal(tlsrpt_book_load(d, one.data, one.len - 4, err, sizeof err), -1);
    assert_string_equal(err, "no end line (truncated)");
    char *bad = xstrdup(one.data);
    char *pol = strstr(bad, "policy ");
    pol[7] = '9';
    assert_int_equal(tlsrpt_book_load(d, bad, strlen(bad), err, sizeof err), -1);
    assert_int_equal(tlsrpt_book_load(d, "tlsrpt 1 2025-02-31\nend\n", 24, err, sizeof err), -1);
    assert_int_equal(tlsrpt_book_load(d, "hello\n", 6, err, sizeof err), -1);
    assert_int_equal(tlsrpt_book_days(d, (int64_t[1]){0}, 1), 0);
    free(bad);
    sb_free(&one);
    sb_free(&two);
    tlsrpt_book_free(b);
    tlsrpt_book_free(c);
    tlsrpt_book_free(d);
}

/* test_json - the report of RFC 8460 4 for one domain, exactly. */
static void test_json(void **state)
{
    (void)state;
    tlsrpt_book *b = tlsrpt_book_new(10, 10);
    tlsrpt_result ok = {.type = TLSRPT_SUCCESS};
    tlsrpt_result mm = fail_of(TLSRPT_CERT_HOST_MISMATCH, "mx1.mixed.test", "name \"x\"");
    tlsrpt_book_add(b, DAY, &nopol, &ok);
    tlsrpt_book_add(b, DAY, &nopol, &mm);
    const char *strings[] = {"version: STSv1"}, *mx[] = {"*.mixed.test"};
    tlsrpt_policy sts = {.domain = "mixed.test", .type = TLSRPT_POLICY_STS, .strings = strings, .n_strings = 1,
                         .mx_hosts = mx, .n_mx = 1};
    tlsrpt_book_add(b, DAY, &sts, &ok);
    strbuf json = {0};
    tlsrpt_meta m = {.org = "Example Org", .contact = "postmaster@example.test", .report_id = "2025-12-05.abc@mx"};
    assert_true(tlsrpt_report_json(b, DAY, "mixed.test", &m, &json));
    assert_string_equal(
        json.data,
        "{\"organization-name\":\"Example Org\","
        "\"date-range\":{\"start-datetime\":\"2025-12-05T00:00:00Z\",\"end-datetime\":\"2025-12-05T23:59:59Z\"},"
        "\"contact-info\":\"postmaster@example.test\",\"report-id\":\"2025-12-05.abc@mx\",\"policies\":["
        "{\"policy\":{\"policy-type\":\"no-policy-found\",\"policy-domain\":\"mixed.test\"},"
        "\"summary\":{\"total-successful-session-count\":1,\"total-failure-session-count\":1},"
        "\"failure-details\":[{\"result-type\":\"certificate-host-mismatch\",\"sending-mta-ip\":\"192.0.2.1\","
        "\"receiving-mx-hostname\":\"mx1.mixed.test\",\"receiving-ip\":\"198.51.100.7\","
        "\"failure-reason-code\":\"name \\\"x\\\"\",\"failed-session-count\":1}]},"
        "{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\"],\"policy-domain\":\"mixed.test\","
        "\"mx-host\":[\"*.mixed.test\"]},"
        "\"summary\":{\"total-successful-session-count\":1,\"total-failure-session-count\":0},"
        "\"failure-details\":[]}]}");
    assert_false(tlsrpt_report_json(b, DAY, "none.test", &m, &json));
    assert_false(tlsrpt_report_json(b, DAY + 3, "mixed.test", &m, &json));
    sb_free(&json);
    tlsrpt_book_free(b);
}

/* test_json_policy_strings - the same domain under two MTA-STS policy texts and a TLSA record set:
 * three policies, each with its policy-string (escaped) and, for sts, its mx-host. */
static void test_json_policy_strings(void **state)
{
    (void)state;
    tlsrpt_book *b = tlsrpt_book_new(10, 10);
    tlsrpt_result ok = {.type = TLSRPT_SUCCESS};
    tlsrpt_result fe = {.type = TLSRPT_STS_POLICY_FETCH_ERROR, .reason = "HTTP 404"};
    const char *s1[] = {"version: STSv1", "mode: testing", "mx: mx.s.test", "max_age: 86400"}, *m1[] = {"mx.s.test"};
    const char *s2[] = {"version: STSv1", "mode: enforce", "mx: *.s.test", "x: \"q\"", "max_age: 60"},
               *m2[] = {"*.s.test"};
    const char *t1[] = {"3 1 1 0A0B"};
    tlsrpt_policy p1 = {.domain = "s.test", .type = TLSRPT_POLICY_STS, .strings = s1, .n_strings = 4, .mx_hosts = m1, .n_mx = 1};
    tlsrpt_policy p2 = {.domain = "s.test", .type = TLSRPT_POLICY_STS, .strings = s2, .n_strings = 5, .mx_hosts = m2, .n_mx = 1};
    tlsrpt_policy p3 = {.domain = "s.test", .type = TLSRPT_POLICY_TLSA, .strings = t1, .n_strings = 1};
    tlsrpt_book_add(b, DAY, &p1, &ok);
    tlsrpt_book_add(b, DAY, &p2, &ok);
    tlsrpt_book_add(b, DAY, &p1, &fe);
    tlsrpt_book_add(b, DAY, &p3, &ok);
    tlsrpt_book_add(b, DAY, &p2, &ok);
    tlsrpt_totals t;
    assert_true(tlsrpt_book_totals(b, DAY, "s.test", &t));
    assert_int_equal(t.policies, 3);
    assert_int_equal(t.success, 4);
    assert_int_equal(t.failure, 1);
    strbuf json = {0};
    tlsrpt_meta m = {.org = "O", .contact = "c@o.test", .report_id = "r"};
    assert_true(tlsrpt_report_json(b, DAY, "s.test", &m, &json));
    assert_non_null(strstr(json.data, "{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\","
                                      "\"mode: testing\",\"mx: mx.s.test\",\"max_age: 86400\"],\"policy-domain\":"
                                      "\"s.test\",\"mx-host\":[\"mx.s.test\"]},\"summary\":{\"total-successful-"
                                      "session-count\":1,\"total-failure-session-count\":1},\"failure-details\":[{"
                                      "\"result-type\":\"sts-policy-fetch-error\",\"failure-reason-code\":\"HTTP 404\","
                                      "\"failed-session-count\":1}]}"));
    assert_non_null(strstr(json.data, "\"policy-string\":[\"version: STSv1\",\"mode: enforce\",\"mx: *.s.test\","
                                      "\"x: \\\"q\\\"\",\"max_age: 60\"],\"policy-domain\":\"s.test\","
                                      "\"mx-host\":[\"*.s.test\"]},\"summary\":{\"total-successful-session-count\":2,"));
    assert_non_null(strstr(json.data, "{\"policy\":{\"policy-type\":\"tlsa\",\"policy-string\":[\"3 1 1 0A0B\"],"
                                      "\"policy-domain\":\"s.test\"},\"summary\":{\"total-successful-session-count\":1,"));
    /* the strings survive the day file */
    strbuf dump = {0};
    tlsrpt_book_dump(b, DAY, &dump);
    tlsrpt_book *c = tlsrpt_book_new(10, 10);
    char err[128];
    assert_int_equal(tlsrpt_book_load(c, dump.data, dump.len, err, sizeof err), 0);
    strbuf json2 = {0};
    assert_true(tlsrpt_report_json(c, DAY, "s.test", &m, &json2));
    assert_string_equal(json.data, json2.data);
    sb_free(&json);
    sb_free(&json2);
    sb_free(&dump);
    tlsrpt_book_free(b);
    tlsrpt_book_free(c);
}

/* test_gzip - the output is gzip (magic bytes) and inflates back to the input. */
static void test_gzip(void **state)
{
    (void)state;
    strbuf in = {0}, gz = {0};
    for (int i = 0; i < 2000; i++) sb_printf(&in, "{\"n\":%d}", i);
    tlsrpt_gzip(in.data, in.len, &gz);
    assert_true(gz.len > 18 && gz.len < in.len);
    assert_int_equal((unsigned char)gz.data[0], 0x1f);
    assert_int_equal((unsigned char)gz.data[1], 0x8b);
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    char *out = xmalloc(in.len + 16);
    z.next_in = (Bytef *)gz.data;
    z.avail_in = (uInt)gz.len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)(in.len + 16);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, in.len);
    assert_memory_equal(out, in.data, in.len);
    inflateEnd(&z);
    free(out);
    sb_free(&in);
    sb_free(&gz);
}

/* test_mail - the RFC 8460 5.3 message: headers, subject, parts, file name, base64 lines. */
static void test_mail(void **state)
{
    (void)state;
    unsigned char gz[100];
    for (size_t i = 0; i < sizeof gz; i++) gz[i] = (unsigned char)i;
    tlsrpt_mail m = {.from = "postmaster@mx.example", .to = "tls@rua.test", .domain = "mixed.test",
                     .submitter = "mx.example", .report_id = "2025-12-05.ab@mx.example", .date = "Fri, 5 Dec 2025",
                     .msgid = "<1.tlsrpt@mx.example>", .boundary = "B/1", .begin = 1764892800, .end = 1764979199,
                     .gz = gz, .gz_len = sizeof gz};
    strbuf out = {0}, name = {0};
    tlsrpt_mail_build(&m, &out);
    tlsrpt_mail_filename(&m, &name);
    assert_string_equal(name.data, "mx.example!mixed.test!1764892800!1764979199!2025-12-05.ab_mx.example.json.gz");
    const char *want[] = {
        "From: <postmaster@mx.example>\r\n", "To: <tls@rua.test>\r\n",
        "Subject: Report Domain: mixed.test Submitter: mx.example Report-ID: <2025-12-05.ab@mx.example>\r\n",
        "TLS-Report-Domain: mixed.test\r\n", "TLS-Report-Submitter: mx.example\r\n",
        "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"B/1\"\r\n",
        "\r\n--B/1\r\nContent-Type: text/plain", "\r\n--B/1\r\nContent-Type: application/tlsrpt+gzip\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "filename=\"mx.example!mixed.test!1764892800!1764979199!2025-12-05.ab_mx.example.json.gz\"\r\n",
        "\r\n--B/1--\r\n"};
    for (size_t i = 0; i < SL_ARRAY_LEN(want); i++)
        if (!strstr(out.data, want[i])) fail_msg("missing %s in:\n%s", want[i], out.data);
    /* the attachment decodes back to the bytes */
    const char *b = strstr(out.data, "json.gz\"\r\n\r\n") + strlen("json.gz\"\r\n\r\n");
    const char *e = strstr(b, "\r\n\r\n--B/1--");
    strbuf b64 = {0}, dec = {0};
    for (const char *p = b; p < e; p++)
        if (*p != '\r' && *p != '\n') sb_putc(&b64, *p);
    assert_int_equal(b64_decode(b64.data, b64.len, &dec), 0);
    assert_int_equal(dec.len, sizeof gz);
    assert_memory_equal(dec.data, gz, sizeof gz);
    /* every line is CRLF-terminated and short */
    for (const char *p = out.data; *p;) {
        const char *nl = strstr(p, "\r\n");
        assert_non_null(nl);
        assert_true(nl - p <= 998);
        assert_null(memchr(p, '\n', (size_t)(nl - p)));
        p = nl + 2;
    }
    /* a header value cannot inject a field */
    m.domain = "x.test\r\nBcc: evil@x.test";
    sb_reset(&out);
    tlsrpt_mail_build(&m, &out);
    assert_null(strstr(out.data, "\r\nBcc:"));
    sb_free(&out);
    sb_free(&name);
    sb_free(&b64);
    sb_free(&dec);
}

/* test_cert_type - OpenSSL's verify results map to the RFC 8460 result types. */
static void test_cert_type(void **state)
{
    (void)state;
    assert_int_equal(tlsrpt_out_cert_type(X509_V_OK, true), TLSRPT_CERT_HOST_MISMATCH);
    assert_int_equal(tlsrpt_out_cert_type(X509_V_ERR_CERT_HAS_EXPIRED, true), TLSRPT_CERT_EXPIRED);
    assert_int_equal(tlsrpt_out_cert_type(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, true), TLSRPT_CERT_NOT_TRUSTED);
    assert_int_equal(tlsrpt_out_cert_type(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, true), TLSRPT_CERT_NOT_TRUSTED);
    assert_int_equal(tlsrpt_out_cert_type(X509_V_ERR_CERT_SIGNATURE_FAILURE, true), TLSRPT_VALIDATION_FAILURE);
    assert_int_equal(tlsrpt_out_cert_type(X509_V_OK, false), TLSRPT_VALIDATION_FAILURE);
    assert_string_equal(tlsrpt_rtype_name(TLSRPT_STARTTLS_NOT_SUPPORTED), "starttls-not-supported");
    assert_string_equal(tlsrpt_rtype_name(TLSRPT_STS_WEBPKI_INVALID), "sts-webpki-invalid");
    assert_string_equal(tlsrpt_ptype_name(TLSRPT_POLICY_TLSA), "tlsa");
}

/* test_days - day names and their parser. */
static void test_days(void **state)
{
    (void)state;
    char buf[16];
    tlsrpt_day_name(DAY, buf, sizeof buf);
    assert_string_equal(buf, "2025-12-05");
    assert_int_equal(tlsrpt_day_parse("2025-12-05"), DAY);
    assert_int_equal(tlsrpt_day_parse("1970-01-01"), 0);
    assert_int_equal(tlsrpt_day_parse("2025-02-29"), -1);
    assert_int_equal(tlsrpt_day_parse("2025-12-5"), -1);
    assert_int_equal(tlsrpt_day_parse("2025-12-05x"), -1);
    assert_int_equal(tlsrpt_day_parse("2025-12-05.tmp"), -1);
    assert_int_equal(tlsrpt_day_parse(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txt_table), cmocka_unit_test(test_txt_select), cmocka_unit_test(test_counts),
        cmocka_unit_test(test_bounds),    cmocka_unit_test(test_mark_sent),  cmocka_unit_test(test_dump_load),
        cmocka_unit_test(test_json),      cmocka_unit_test(test_json_policy_strings),      cmocka_unit_test(test_gzip),       cmocka_unit_test(test_mail),
        cmocka_unit_test(test_cert_type), cmocka_unit_test(test_days),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
