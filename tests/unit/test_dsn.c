/*
 * test_dsn.c - unit tests for the DSN builder (src/dsn/dsn.c): each report is parsed back as
 * MIME (split on its boundary) and checked field by field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "dsn/dsn.h"
#include "smtp/parse.h"

#define MTA "mta.example.org"
#define NOW INT64_C(1700086400)

static const char msg_head[] =
    "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: lunch\r\n"
    "Message-ID: <1@example.org>\r\n";
static const char msg_body[] = "Shall we meet at noon?\r\nSECRET-BODY-LINE\r\n";

typedef struct {
    qmsg m;
    char data[4096];
} fixture;

/* fixture_init - a message from alice to bob (with ORCPT) and carol (without). */
static void fixture_init(fixture *f, uint8_t ret, const char *envid)
{
    memset(f, 0, sizeof *f);
    strcpy(f->m.id, "4fK2x9aB0001");
    f->m.channel = xstrdup("tcp_local");
    f->m.sender = xstrdup("alice@example.org");
    f->m.envid = xstrdup(envid);
    f->m.ret = ret;
    f->m.arrival = NOW - 7200;
    f->m.client = xstrdup("mail.example.org [192.0.2.1]");
    qmsg_add_rcpt(&f->m, "bob@example.net", "bob@example.net", "rfc822;Bob@Example.NET", "example.net",
                  DSN_NOTIFY_FAILURE);
    qmsg_add_rcpt(&f->m, "carol@example.com", "carol@example.com", NULL, "example.com", 0);
    snprintf(f->data, sizeof f->data, "%s\r\n%s", msg_head, msg_body);
    f->m.data = f->data;
    f->m.data_len = strlen(f->data);
}

/* ---- a small MIME reader for the tests ---- */

typedef struct {
    char *head; /* header section without the empty line */
    char *body;
    size_t body_len;
} mime_part;

typedef struct {
    char *raw;
    size_t len;
    mime_part top;
    char *boundary;
    mime_part parts[8];
    size_t nparts;
    bool closed; /* saw the close delimiter */
} report;

/* split_part - header section and body of an entity. */
static void split_part(const char *p, size_t len, mime_part *out)
{
    const char *sep = memmem(p, len, "\r\n\r\n", 4);
    assert_non_null(sep);
    out->head = xstrndup(p, (size_t)(sep - p) + 2);
    out->body_len = len - (size_t)(sep + 4 - p);
    out->body = xmalloc(out->body_len + 1);
    memcpy(out->body, sep + 4, out->body_len);
    out->body[out->body_len] = '\0';
}

/* field_get - the unfolded value of a header field in head, or NULL; caller frees. */
static char *field_get(const char *head, const char *name)
{
    size_t nl = strlen(name);
    for (const char *line = head; line && *line;) {
        const char *eol = strstr(line, "\r\n");
        if (!eol) break;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            strbuf v;
            sb_init(&v);
            sb_append(&v, line + nl + 1, (size_t)(eol - line - nl - 1));
            while (eol[2] == ' ' || eol[2] == '\t') { /* unfold: drop the CRLF, keep the WSP */
                const char *next = strstr(eol + 2, "\r\n");
                assert_non_null(next);
                sb_append(&v, eol + 2, (size_t)(next - eol - 2));
                eol = next;
            }
            char *s = sb_steal(&v);
            char *t = xstrdup(str_trim(s));
            free(s);
            return t;
        }
        line = eol + 2;
    }
    return NULL;
}

static void assert_field(const char *head, const char *name, const char *want)
{
    char *v = field_get(head, name);
    if (!v) fail_msg("field %s missing", name);
    if (strcmp(v, want) != 0) fail_msg("field %s: \"%s\", want \"%s\"", name, v, want);
    free(v);
}

static void assert_no_field(const char *head, const char *name)
{
    char *v = field_get(head, name);
    if (v) fail_msg("field %s present: %s", name, v);
}

/* assert_lines_ok - CRLF everywhere, no bare CR or LF, no line over 998 octets. */
static void assert_lines_ok(const char *p, size_t len)
{
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\n') fail_msg("bare LF at %zu", i);
        if (p[i] == '\r') {
            if (i + 1 >= len || p[i + 1] != '\n') fail_msg("bare CR at %zu", i);
            i++;
            col = 0;
            continue;
        }
        if (++col > 998) fail_msg("line over 998 octets at %zu", i);
    }
    assert_true(len >= 2 && p[len - 2] == '\r' && p[len - 1] == '\n');
}

/* report_parse - build a DSN and split it into its parts on the declared boundary. */
static void report_parse(report *r, const qmsg *m, const dsn_report *reps, size_t n, size_t max_return)
{
    memset(r, 0, sizeof *r);
    r->raw = dsn_build(m, reps, n, MTA, NOW, max_return, &r->len);
    assert_non_null(r->raw);
    assert_int_equal(r->len, strlen(r->raw));
    assert_lines_ok(r->raw, r->len);
    split_part(r->raw, r->len, &r->top);

    char *ct = field_get(r->top.head, "Content-Type");
    assert_non_null(ct);
    assert_true(strncmp(ct, "multipart/report;", 17) == 0);
    assert_non_null(strstr(ct, "report-type=delivery-status"));
    char *b = strstr(ct, "boundary=\"");
    assert_non_null(b);
    b += 10;
    r->boundary = xstrndup(b, strcspn(b, "\""));
    assert_true(strlen(r->boundary) >= 1 && strlen(r->boundary) <= 70);
    free(ct);

    char *delim = xasprintf("\r\n--%s", r->boundary);
    size_t dl = strlen(delim);
    const char *body = r->top.body, *end = body + r->top.body_len;
    const char *d = memmem(body, r->top.body_len, delim, dl);
    assert_non_null(d);
    while (d) {
        const char *after = d + dl;
        if (end - after >= 2 && after[0] == '-' && after[1] == '-') {
            r->closed = true;
            assert_true(end - after == 4 && memcmp(after, "--\r\n", 4) == 0);
            break;
        }
        assert_true(end - after >= 2 && after[0] == '\r' && after[1] == '\n');
        const char *start = after + 2;
        const char *next = memmem(start, (size_t)(end - start), delim, dl);
        assert_non_null(next);
        assert_true(r->nparts < 8);
        split_part(start, (size_t)(next - start), &r->parts[r->nparts++]);
        d = next;
    }
    assert_true(r->closed);
    free(delim);
}

static void part_free(mime_part *p)
{
    free(p->head);
    free(p->body);
}

static void report_free(report *r)
{
    free(r->raw);
    free(r->boundary);
    part_free(&r->top);
    for (size_t i = 0; i < r->nparts; i++) part_free(&r->parts[i]);
}

/* status_groups - the blank-line separated field groups of a delivery-status body. */
static size_t status_groups(const char *body, char **groups, size_t max)
{
    size_t n = 0;
    const char *p = body;
    while (*p && n < max) {
        const char *sep = strstr(p, "\r\n\r\n");
        size_t len = sep ? (size_t)(sep - p) + 2 : strlen(p);
        groups[n++] = xstrndup(p, len);
        if (!sep) break;
        p = sep + 4;
    }
    return n;
}

static void groups_free(char **g, size_t n)
{
    for (size_t i = 0; i < n; i++) free(g[i]);
}

/* two_reports - bob failed with a remote diagnostic, carol delayed without one. */
static void two_reports(const fixture *f, dsn_report reps[2])
{
    memset(reps, 0, 2 * sizeof reps[0]);
    reps[0].rcpt = &f->m.rcpts[0];
    reps[0].action = "failed";
    reps[0].status = "5.1.1";
    reps[0].diag = "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown";
    reps[0].remote_mta = "dns; mx.example.net";
    reps[1].rcpt = &f->m.rcpts[1];
    reps[1].action = "delayed";
    reps[1].status = "4.4.1";
}

/* ---- tests ---- */

static void test_two_recipients(void **state)
{
    (void)state;
    fixture f;
    dsn_report reps[2];
    report r;
    char date[64], *groups[8], *v;

    fixture_init(&f, DSN_RET_HDRS, "ENV-42");
    two_reports(&f, reps);
    report_parse(&r, &f.m, reps, 2, 1 << 20);

    assert_field(r.top.head, "From", "Mail Delivery System <MAILER-DAEMON@" MTA ">");
    assert_field(r.top.head, "To", "<alice@example.org>");
    assert_field(r.top.head, "Subject", "Undelivered Mail Returned to Sender");
    rfc5322_date(NOW, date, sizeof date);
    assert_field(r.top.head, "Date", date);
    assert_field(r.top.head, "Auto-Submitted", "auto-replied");
    assert_field(r.top.head, "MIME-Version", "1.0");
    v = field_get(r.top.head, "Message-ID");
    assert_non_null(v);
    assert_true(v[0] == '<' && strlen(v) > 3 + strlen(MTA));
    assert_string_equal(v + strlen(v) - strlen("@" MTA ">"), "@" MTA ">");
    assert_null(strchr(v + 1, '<'));
    free(v);

    assert_int_equal(r.nparts, 3);
    /* part 1: for people */
    v = field_get(r.parts[0].head, "Content-Type");
    assert_true(strncmp(v, "text/plain", 10) == 0);
    free(v);
    assert_non_null(strstr(r.parts[0].body, "<bob@example.net>"));
    assert_non_null(strstr(r.parts[0].body, "<carol@example.com>"));
    assert_non_null(strstr(r.parts[0].body, "550 5.1.1"));
    assert_non_null(strstr(r.parts[0].body, MTA));

    /* part 2: machine-readable */
    assert_field(r.parts[1].head, "Content-Type", "message/delivery-status");
    size_t ng = status_groups(r.parts[1].body, groups, 8);
    assert_int_equal(ng, 3);
    assert_field(groups[0], "Reporting-MTA", "dns; " MTA);
    assert_field(groups[0], "Original-Envelope-Id", "ENV-42");
    rfc5322_date(f.m.arrival, date, sizeof date);
    assert_field(groups[0], "Arrival-Date", date);
    assert_no_field(groups[0], "Final-Recipient");

    assert_field(groups[1], "Original-Recipient", "rfc822;Bob@Example.NET");
    assert_field(groups[1], "Final-Recipient", "rfc822; bob@example.net");
    assert_field(groups[1], "Action", "failed");
    assert_field(groups[1], "Status", "5.1.1");
    assert_field(groups[1], "Remote-MTA", "dns; mx.example.net");
    assert_field(groups[1], "Diagnostic-Code",
                 "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown");

    assert_no_field(groups[2], "Original-Recipient");
    assert_field(groups[2], "Final-Recipient", "rfc822; carol@example.com");
    assert_field(groups[2], "Action", "delayed");
    assert_field(groups[2], "Status", "4.4.1");
    assert_no_field(groups[2], "Remote-MTA");
    assert_no_field(groups[2], "Diagnostic-Code");
    groups_free(groups, ng);

    /* part 3: the header section only */
    assert_field(r.parts[2].head, "Content-Type", "text/rfc822-headers");
    assert_string_equal(r.parts[2].body, msg_head);
    report_free(&r);
    qmsg_free(&f.m);
}

/* dsn_part3 - content type and body of the returned part for a given RET and limit. */
static void check_returned(uint8_t ret, size_t max_delta, bool want_full)
{
    fixture f;
    dsn_report reps[2];
    report r;
    fixture_init(&f, ret, NULL);
    two_reports(&f, reps);
    report_parse(&r, &f.m, reps, 1, f.m.data_len + max_delta - 1);
    assert_int_equal(r.nparts, 3);
    if (want_full) {
        assert_field(r.parts[2].head, "Content-Type", "message/rfc822");
        assert_int_equal(r.parts[2].body_len, f.m.data_len);
        assert_memory_equal(r.parts[2].body, f.m.data, f.m.data_len);
    } else {
        assert_field(r.parts[2].head, "Content-Type", "text/rfc822-headers");
        assert_string_equal(r.parts[2].body, msg_head);
        assert_null(strstr(r.raw, "SECRET-BODY-LINE"));
    }
    report_free(&r);
    qmsg_free(&f.m);
}

static void test_ret_hdrs(void **state)
{
    (void)state;
    check_returned(DSN_RET_HDRS, 1, false);
    check_returned(DSN_RET_HDRS, 100000, false);
}

static void test_ret_unset(void **state)
{
    (void)state;
    check_returned(DSN_RET_UNSET, 100000, false);
}

static void test_ret_full(void **state)
{
    (void)state;
    check_returned(DSN_RET_FULL, 100000, true);
    check_returned(DSN_RET_FULL, 1, true); /* max_return == data_len still fits */
}

static void test_ret_full_too_big(void **state)
{
    (void)state;
    check_returned(DSN_RET_FULL, 0, false); /* one byte over */
}

static void test_ret_full_binarymime(void **state)
{
    (void)state;
    fixture f;
    dsn_report reps[2];
    report r;
    fixture_init(&f, DSN_RET_FULL, NULL);
    f.m.body = BODY_BINARYMIME;
    two_reports(&f, reps);
    report_parse(&r, &f.m, reps, 1, 1 << 20);
    assert_field(r.parts[2].head, "Content-Type", "text/rfc822-headers");
    report_free(&r);
    qmsg_free(&f.m);
}

static void test_envid(void **state)
{
    (void)state;
    fixture f;
    dsn_report reps[2];
    report r;
    char *groups[8] = {0};
    size_t ng;

    fixture_init(&f, DSN_RET_HDRS, NULL);
    two_reports(&f, reps);
    report_parse(&r, &f.m, reps, 2, 0);
    ng = status_groups(r.parts[1].body, groups, 8);
    assert_no_field(groups[0], "Original-Envelope-Id");
    groups_free(groups, ng);
    report_free(&r);
    qmsg_free(&f.m);

    fixture_init(&f, DSN_RET_HDRS, "QQ314159");
    two_reports(&f, reps);
    report_parse(&r, &f.m, reps, 2, 0);
    ng = status_groups(r.parts[1].body, groups, 8);
    assert_field(groups[0], "Original-Envelope-Id", "QQ314159");
    groups_free(groups, ng);
    report_free(&r);
    qmsg_free(&f.m);
}

/* Editable templates: the subject line and the introduction come from the template, %h expanded. */
static void test_templates(void **state)
{
    (void)state;
    fixture f;
    dsn_report reps[2];
    fixture_init(&f, DSN_RET_HDRS, NULL);
    two_reports(&f, reps);
    char *tmpl[3] = {xstrdup("Subject: Bounced by %h\nWe at %h could not deliver it.\nSorry, 100%% sure.\n"), NULL,
                     NULL};
    size_t len;
    char *text = dsn_build_tmpl(&f.m, reps, 2, "mx.example.test", 1700000000, 65536, tmpl, &len);
    assert_non_null(strstr(text, "\r\nSubject: Bounced by mx.example.test\r\n"));
    assert_non_null(strstr(text, "We at mx.example.test could not deliver it. Sorry, 100% sure."));
    assert_null(strstr(text, "Undelivered Mail Returned to Sender"));
    free(text);
    /* a kind without a template keeps the built-in text */
    char *dflt = dsn_build_tmpl(&f.m, reps, 2, "mx.example.test", 1700000000, 65536, NULL, &len);
    assert_non_null(strstr(dflt, "Subject: Undelivered Mail Returned to Sender"));
    free(dflt);
    free(tmpl[0]);
    qmsg_free(&f.m);
}

static const struct {
    const char *actions[3];
    const char *subject;
} subject_cases[] = {
    {{"failed"}, "Undelivered Mail Returned to Sender"},
    {{"delayed"}, "Delayed Mail (still being retried)"},
    {{"delivered"}, "Successful Mail Delivery Report"},
    {{"relayed"}, "Successful Mail Delivery Report"},
    {{"expanded"}, "Successful Mail Delivery Report"},
    {{"delayed", "failed"}, "Undelivered Mail Returned to Sender"},
    {{"delivered", "failed"}, "Undelivered Mail Returned to Sender"},
    {{"delayed", "delivered"}, "Delayed Mail (still being retried)"},
    {{"delivered", "delayed"}, "Successful Mail Delivery Report"},
};

static void test_subjects(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(subject_cases); i++) {
        fixture f;
        dsn_report reps[3];
        report r;
        char *groups[8];
        size_t n = 0;
        fixture_init(&f, DSN_RET_HDRS, NULL);
        memset(reps, 0, sizeof reps);
        for (; n < 3 && subject_cases[i].actions[n]; n++) {
            reps[n].rcpt = &f.m.rcpts[n % 2];
            reps[n].action = subject_cases[i].actions[n];
        }
        report_parse(&r, &f.m, reps, n, 0);
        assert_field(r.top.head, "Subject", subject_cases[i].subject);
        size_t ng = status_groups(r.parts[1].body, groups, 8);
        assert_int_equal(ng, n + 1);
        for (size_t k = 0; k < n; k++) {
            assert_field(groups[k + 1], "Action", subject_cases[i].actions[k]);
            /* no status given: a default of the right class */
            char *st = field_get(groups[k + 1], "Status");
            char want = strcmp(subject_cases[i].actions[k], "failed") == 0    ? '5'
                        : strcmp(subject_cases[i].actions[k], "delayed") == 0 ? '4'
                                                                               : '2';
            assert_int_equal(st[0], want);
            free(st);
        }
        groups_free(groups, ng);
        report_free(&r);
        qmsg_free(&f.m);
    }
}

/* A remote reply that is long, has an endless word, or carries CRLF cannot break our lines. */
static void test_long_and_hostile_diag(void **state)
{
    (void)state;
    fixture f;
    dsn_report reps[2];
    report r;
    char *groups[8];
    strbuf diag;

    fixture_init(&f, DSN_RET_HDRS, NULL);
    two_reports(&f, reps);
    sb_init(&diag);
    sb_puts(&diag, "smtp; 550 5.7.1");
    for (int i = 0; i < 400; i++) sb_puts(&diag, " word");
    sb_putc(&diag, ' ');
    for (int i = 0; i < 2500; i++) sb_putc(&diag, 'z');
    reps[0].diag = diag.data;
    reps[1].diag = "smtp; 451 try later\r\nX-Injected: yes\r\n\r\nFinal-Recipient: rfc822; evil@x";
    reps[1].remote_mta = "mx.example.com"; /* no type: dns is added */
    report_parse(&r, &f.m, reps, 2, 0); /* asserts every line <= 998 */
    assert_null(strstr(r.raw, "\r\nX-Injected"));
    size_t ng = status_groups(r.parts[1].body, groups, 8);
    assert_int_equal(ng, 3);
    char *v = field_get(groups[1], "Diagnostic-Code");
    assert_non_null(v);
    assert_true(strncmp(v, "smtp; 550 5.7.1 word word", 25) == 0);
    assert_true(strlen(v) > 2000 + 2500);
    free(v);
    assert_field(groups[2], "Final-Recipient", "rfc822; carol@example.com");
    assert_field(groups[2], "Remote-MTA", "dns; mx.example.com");
    v = field_get(groups[2], "Diagnostic-Code");
    assert_true(strncmp(v, "smtp; 451 try later", 19) == 0);
    free(v);
    groups_free(groups, ng);
    /* the human part wraps too */
    assert_non_null(strstr(r.parts[0].body, "550 5.7.1"));
    report_free(&r);
    sb_free(&diag);
    qmsg_free(&f.m);
}

/* A message that contains the boundary we would pick forces another one. */
static void test_boundary_not_in_content(void **state)
{
    (void)state;
    fixture f;
    dsn_report reps[2];
    report r1, r2;

    fixture_init(&f, DSN_RET_FULL, NULL);
    two_reports(&f, reps);
    report_parse(&r1, &f.m, reps, 2, 1 << 20);
    snprintf(f.data, sizeof f.data, "%s\r\n--%s\r\n%s--%s--\r\n", msg_head, r1.boundary, msg_body, r1.boundary);
    f.m.data_len = strlen(f.data);
    report_parse(&r2, &f.m, reps, 2, 1 << 20);
    assert_string_not_equal(r1.boundary, r2.boundary);
    assert_int_equal(r2.nparts, 3);
    assert_int_equal(r2.parts[2].body_len, f.m.data_len);
    assert_memory_equal(r2.parts[2].body, f.m.data, f.m.data_len);
    report_free(&r1);
    report_free(&r2);
    qmsg_free(&f.m);
}

/* Pure function: same input, same bytes; NOTIFY does not change the report. */
static void test_deterministic(void **state)
{
    (void)state;
    fixture f;
    dsn_report reps[2];
    size_t l1, l2;

    fixture_init(&f, DSN_RET_FULL, "E");
    two_reports(&f, reps);
    char *a = dsn_build(&f.m, reps, 2, MTA, NOW, 1 << 20, &l1);
    f.m.rcpts[0].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY;
    f.m.smtputf8 = true;
    char *b = dsn_build(&f.m, reps, 2, MTA, NOW, 1 << 20, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(a, b, l1);
    free(a);
    free(b);
    qmsg_free(&f.m);
}

static void test_8bit_content(void **state)
{
    (void)state;
    fixture f;
    dsn_report reps[2];
    report r;

    fixture_init(&f, DSN_RET_FULL, NULL);
    snprintf(f.data, sizeof f.data, "%s\r\nGr\xc3\xbc\xc3\x9f" "e\r\n", msg_head);
    f.m.data_len = strlen(f.data);
    f.m.body = BODY_8BITMIME;
    two_reports(&f, reps);
    report_parse(&r, &f.m, reps, 1, 1 << 20);
    assert_field(r.parts[2].head, "Content-Transfer-Encoding", "8bit");
    assert_no_field(r.parts[1].head, "Content-Transfer-Encoding");
    report_free(&r);
    qmsg_free(&f.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_recipients),
        cmocka_unit_test(test_ret_hdrs),
        cmocka_unit_test(test_ret_unset),
        cmocka_unit_test(test_ret_full),
        cmocka_unit_test(test_ret_full_too_big),
        cmocka_unit_test(test_ret_full_binarymime),
        cmocka_unit_test(test_envid),
        cmocka_unit_test(test_subjects),
        cmocka_unit_test(test_long_and_hostile_diag),
        cmocka_unit_test(test_boundary_not_in_content),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_8bit_content),
        cmocka_unit_test(test_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
