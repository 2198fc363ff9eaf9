/* test_smtp_server.c - the ESMTP session engine driven directly with bytes (no sockets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "policy/verdict.h"
#include "smtp/session.h"

/* The mock decider: the answers of the real policy for what these tests need (replies from the
 * real verdict table), at once, or held back until the test answers (hold). */
typedef struct {
    int commits;
    strbuf last_data;
    strbuf last_head;   /* what the engine wrote in front of the message: trace lines and Received: */
    bool auto_commit;
    bool hold;          /* do not answer: the test calls answer_held */
    int asked;          /* decisions asked */
    verdict held;       /* the verdict a held decision will get */
} mock;

/* answer - reply to the engine as the policy does. */
static void answer(smtp_sess *s, verdict *v)
{
    strbuf line = {0};
    bool ok = v->cls == VERDICT_OK;
    if (!ok) verdict_reply(v, "mx.test", &line);
    smtp_answer a = {verdict_code(v), ok ? NULL : line.data, v->delay_ms, v->disconnect, NULL};
    verdict_free(v);
    smtp_sess_answer(s, &a);
    sb_free(&line);
}

static verdict mock_rcpt(smtp_sess *s, const smtp_cmd *cmd)
{
    if (s->n_rcpts >= s->conf->opt.max_recipients) return verdict_refuse(VERDICT_RCPT_LIMIT, true, NULL);
    char *a = smtp_addr_format(&cmd->path);
    verdict v = verdict_ok();
    if (strncmp(a, "bad", 3) == 0) {
        v = verdict_refuse(VERDICT_UNKNOWN_USER, false, NULL);
        verdict_set_text(&v, "User unknown");
    } else {
        smtp_sess_add_rcpt(s, a, a, cmd->orcpt, "l", "", cmd->notify);
    }
    free(a);
    return v;
}

static verdict mock_mail(smtp_sess *s, const smtp_cmd *cmd)
{
    if (s->tls_required && !s->tls_active) return verdict_refuse(VERDICT_TLS_REQUIRED, false, NULL);
    if (s->auth_required && !s->auth_user) return verdict_refuse(VERDICT_AUTH_REQUIRED, false, NULL);
    if (cmd->has_size && cmd->size > s->conf->opt.max_message_size) return verdict_refuse(VERDICT_SIZE, false, NULL);
    /* a decider's trace line (as policy/spf.c writes Received-SPF:) for senders at spf.test */
    if (cmd->path.domain && !strcmp(cmd->path.domain, "spf.test")) smtp_sess_set_trace(s, "Received-SPF: pass\r\n");
    return verdict_ok();
}

static verdict mock_auth(const char *user, const char *pass)
{
    verdict v = verdict_ok();
    if (!strcmp(user, "alice@example.test") && !strcmp(pass, "secret")) v.cls = VERDICT_AUTH_OK;
    else if (!strcmp(user, "dir@down.test")) v = verdict_refuse(VERDICT_AUTH_TEMP, true, NULL);
    else v = verdict_refuse(VERDICT_AUTH_FAILED, false, NULL);
    return v;
}

static void mock_decide(void *ctx, smtp_sess *s, const smtp_ask *q)
{
    mock *m = ctx;
    m->asked++;
    verdict v = verdict_ok();
    if (q->stage == SMTP_STAGE_MAIL) v = mock_mail(s, q->cmd);
    else if (q->stage == SMTP_STAGE_RCPT) v = mock_rcpt(s, q->cmd);
    else if (q->stage == SMTP_STAGE_AUTH) v = mock_auth(q->user, q->pass);
    if (m->hold) {
        m->held = v;
        return;
    }
    answer(s, &v);
}

static void mock_commit(void *ctx, smtp_sess *s)
{
    mock *m = ctx;
    m->commits++;
    sb_reset(&m->last_data);
    sb_append(&m->last_data, s->data.data + s->hdr_len, s->data.len - s->hdr_len);
    sb_reset(&m->last_head);
    sb_append(&m->last_head, s->data.data, s->hdr_len);
    if (m->auto_commit) smtp_sess_commit_done(s, SL_OK, NULL);
}

static void mock_id(void *ctx, char *buf, size_t len)
{
    (void)ctx;
    snprintf(buf, len, "QID1");
}

static void mock_date(void *ctx, char *buf, size_t len)
{
    (void)ctx;
    snprintf(buf, len, "Thu, 26 Nov 2026 10:00:00 +0000");
}

static const smtp_server_ops ops = {NULL, NULL, mock_decide, mock_commit, mock_id, mock_date};

typedef struct {
    sl_conf conf;
    mock m;
    smtp_sess *s;
} fixture;

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    conf_options_defaults(&f->conf.opt);
    free(f->conf.opt.hostname);
    f->conf.opt.hostname = xstrdup("mx.test");
    f->conf.opt.max_message_size = 1000;
    f->conf.opt.max_recipients = 3;
    f->conf.opt.max_errors = 5;
    f->m.auto_commit = true;
    smtp_sess_info info = {.id = "S1", .service = "SMTP", .src_channel = "tcp_local", .client_ip = "127.0.0.1",
                           .server_ip = "127.0.0.1", .client_internal = true};
    f->s = smtp_sess_new(&f->conf, &ops, &f->m, &info);
    smtp_sess_connect(f->s);
    smtp_sess_greet(f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    smtp_sess_free(f->s);
    conf_options_free(&f->conf.opt);
    sb_free(&f->m.last_data);
    sb_free(&f->m.last_head);
    free(f);
    return 0;
}

/* feed - send text (may contain NULs: explicit length) and return all replies so far. */
static const char *feedn(fixture *f, const char *p, size_t n)
{
    size_t used = smtp_sess_feed(f->s, p, n);
    assert_int_equal(used, f->s->state == SESS_CLOSED || f->s->state == SESS_WAIT_COMMIT ? used : n);
    return f->s->out.data ? f->s->out.data : "";
}

static const char *feed(fixture *f, const char *p)
{
    return feedn(f, p, strlen(p));
}

static void clear(fixture *f)
{
    sb_reset(&f->s->out);
}

static void test_greeting_and_ehlo(void **state)
{
    fixture *f = *state;
    assert_string_equal(f->s->out.data, "220 mx.test ESMTP Sluice\r\n");
    clear(f);
    const char *r = feed(f, "EHLO client.test\r\n");
    const char *caps[] = {"250-PIPELINING\r\n", "250-SIZE 1000\r\n", "250-8BITMIME\r\n",
                          "250-ENHANCEDSTATUSCODES\r\n", "250-DSN\r\n", "250-SMTPUTF8\r\n", "250 CHUNKING\r\n"};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) assert_non_null(strstr(r, caps[i]));
}

static void test_simple_transaction(void **state)
{
    fixture *f = *state;
    feed(f, "EHLO c\r\n");
    clear(f);
    const char *r = feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\n");
    assert_string_equal(r, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    clear(f);
    r = feed(f, "Subject: t\r\n\r\n..dot\r\nline\r\n.\r\n");
    assert_string_equal(r, "250 2.0.0 Ok: queued as QID1\r\n");
    assert_int_equal(f->m.commits, 1);
    assert_string_equal(f->m.last_data.data, "Subject: t\r\n\r\n.dot\r\nline\r\n");
    assert_non_null(strstr(f->s->data.data ? f->s->data.data : "", "") );
}

/* test_trace_lines - the decider's trace lines go above Received: for one transaction only. */
static void test_trace_lines(void **state)
{
    fixture *f = *state;
    feed(f, "EHLO c\r\n");
    clear(f);
    feed(f, "MAIL FROM:<a@spf.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\n");
    feed(f, "Subject: t\r\n\r\nbody\r\n.\r\n");
    assert_int_equal(f->m.commits, 1);
    assert_true(str_has_prefix_ci(f->m.last_head.data, "Received-SPF: pass\r\nReceived: from c ([127.0.0.1])\r\n"));
    assert_string_equal(f->m.last_data.data, "Subject: t\r\n\r\nbody\r\n");
    clear(f);
    feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\n");
    feed(f, "Subject: u\r\n\r\nbody\r\n.\r\n");
    assert_int_equal(f->m.commits, 2);
    assert_true(str_has_prefix_ci(f->m.last_head.data, "Received: from c "));
    assert_null(strstr(f->m.last_head.data, "Received-SPF"));
}

static void test_sequence_errors(void **state)
{
    fixture *f = *state;
    clear(f);
    assert_string_equal(feed(f, "MAIL FROM:<a@b.test>\r\n"), "503 5.5.1 Error: send HELO/EHLO first\r\n");
    clear(f);
    feed(f, "EHLO c\r\n");
    clear(f);
    assert_string_equal(feed(f, "RCPT TO:<x@y.test>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
    clear(f);
    assert_string_equal(feed(f, "DATA\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
    clear(f);
    assert_string_equal(feed(f, "FOO\r\n"), "500 5.5.1 Command unrecognized\r\n");
    clear(f);
    assert_string_equal(feed(f, "VRFY x\r\n"), "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n");
}

static void test_recipient_limit(void **state)
{
    fixture *f = *state;
    feed(f, "EHLO c\r\n");
    feed(f, "MAIL FROM:<a@b.test>\r\n");
    clear(f);
    feed(f, "RCPT TO:<x1@y.test>\r\nRCPT TO:<x2@y.test>\r\nRCPT TO:<x3@y.test>\r\n");
    clear(f);
    assert_string_equal(feed(f, "RCPT TO:<x4@y.test>\r\n"), "452 4.5.3 Error: too many recipients\r\n");
}

static void test_size_limits(void **state)
{
    fixture *f = *state;
    feed(f, "EHLO c\r\n");
    clear(f);
    assert_string_equal(feed(f, "MAIL FROM:<a@b.test> SIZE=5000\r\n"),
                        "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
    clear(f);
    feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\n");
    clear(f);
    char big[1500];
    memset(big, 'a', 70);
    strcpy(big + 70, "\r\n");
    strbuf body = {0};
    for (int i = 0; i < 20; i++) sb_puts(&body, big);
    sb_puts(&body, ".\r\n");
    assert_string_equal(feed(f, body.data), "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
    assert_int_equal(f->m.commits, 0);
    sb_free(&body);
}

/* Each broken end-of-data marker must stay inside the message; the message must be refused. */
static void test_smuggling_variants(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *marker;
        size_t len;
    } variants[] = {
        {"\n.\n", 3}, {"\n.\r\n", 4}, {"\r\n.\n", 4}, {"\r.\r", 3}, {"\r.\r\n", 4},
        {"\r\n.\r", 4}, {"\r\n\0.\r\n", 6}, {"\r\n.\0\r\n", 6},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        teardown(state);
        setup(state);
        f = *state;
        feed(f, "EHLO c\r\n");
    feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\n");
        clear(f);
        strbuf in = {0};
        sb_puts(&in, "Subject: one\r\n\r\nbody");
        sb_append(&in, variants[i].marker, variants[i].len);
        sb_puts(&in, "MAIL FROM:<evil@b.test>\r\nRCPT TO:<victim@y.test>\r\nDATA\r\nSubject: two\r\n\r\nx\r\n.\r\n");
        const char *r = feedn(f, in.data, in.len);
        /* exactly one reply: the refusal of the whole thing; no second transaction */
        assert_int_equal(f->m.commits, 0);
        assert_true(r[0] == '5');
        assert_null(strstr(r, "250 2.1.0"));
        sb_free(&in);
    }
}

static void test_bare_lf_normalise(void **state)
{
    fixture *f = *state;
    f->conf.opt.bare_eol = BARE_EOL_NORMALISE;
    feed(f, "EHLO c\r\n");
    feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\n");
    clear(f);
    /* LF.LF does not end the message even when normalising */
    const char *r = feed(f, "a\nb\n.\nc\r\n.\r\n");
    assert_string_equal(r, "250 2.0.0 Ok: queued as QID1\r\n");
    assert_string_equal(f->m.last_data.data, "a\r\nb\r\n.\r\nc\r\n");
}

static void test_long_command_tail_not_executed(void **state)
{
    fixture *f = *state;
    feed(f, "EHLO c\r\n");
    clear(f);
    char line[700];
    memset(line, 'x', 600);
    strcpy(line + 600, "QUIT\r\n");
    const char *r = feed(f, line);
    assert_string_equal(r, "500 5.5.2 Error: line too long\r\n");
    assert_int_not_equal(f->s->state, SESS_CLOSED);
    clear(f);
    assert_string_equal(feed(f, "NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

static void test_long_command_split_reads(void **state)
{
    fixture *f = *state;
    feed(f, "EHLO c\r\n");
    clear(f);
    char chunk[300];
    memset(chunk, 'y', sizeof chunk - 1);
    chunk[sizeof chunk - 1] = '\0';
    feed(f, chunk);
    feed(f, chunk);
    feed(f, "QUIT\r\n");
    assert_string_equal(f->s->out.data, "500 5.5.2 Error: line too long\r\n");
    assert_int_not_equal(f->s->state, SESS_CLOSED);
}

static void test_pipelining_after_data_forbidden(void **state)
{
    fixture *f = *state;
    feed(f, "EHLO c\r\n");
    feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\n");
    clear(f);
    const char *r = feed(f, "DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n");
    assert_non_null(strstr(r, "554 5.5.0"));
    assert_true(f->s->closing);
    assert_int_equal(f->m.commits, 0);
}

static void test_hostile_and_too_many_errors(void **state)
{
    fixture *f = *state;
    clear(f);
    feed(f, "GET / HTTP/1.0\r\n");
    assert_true(f->s->closing);
    teardown(state);
    setup(state);
    f = *state;
    clear(f);
    for (int i = 0; i < 5; i++) feed(f, "BOGUS\r\n");
    assert_non_null(strstr(f->s->out.data, "421 4.7.0"));
    assert_true(f->s->closing);
}

static void test_bdat(void **state)
{
    fixture *f = *state;
    feed(f, "EHLO c\r\n");
    feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\n");
    clear(f);
    const char *r = feed(f, "BDAT 12\r\nSubject: x\r\nBDAT 6 LAST\r\n\r\nhi\r\n");
    assert_string_equal(r, "250 2.0.0 12 octets received\r\n250 2.0.0 Ok: queued as QID1\r\n");
    assert_string_equal(f->m.last_data.data, "Subject: x\r\n\r\nhi\r\n");
    clear(f);
    /* BDAT without a transaction: the chunk is swallowed, never parsed as commands */
    r = feed(f, "BDAT 6\r\nQUIT\r\nNOOP\r\n");
    assert_string_equal(r, "503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n");
}

/* bdat_send - one transaction whose content comes in the given BDAT chunks (the last with LAST). */
static const char *bdat_send(fixture *f, const char *const *chunks, size_t n)
{
    feed(f, "EHLO c\r\n");
    feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\n");
    clear(f);
    for (size_t i = 0; i < n; i++) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "BDAT %zu%s\r\n", strlen(chunks[i]), i + 1 == n ? " LAST" : "");
        feed(f, cmd);
        feed(f, chunks[i]);
    }
    return f->s->out.data ? f->s->out.data : "";
}

/* With bare_lf=normalise, BDAT content gets CRLF for every bare CR and bare LF, as DATA does
 * (a CR at the end of one chunk pairs with an LF at the start of the next). */
static void test_bdat_bare_eol_normalise(void **state)
{
    static const struct {
        const char *chunks[3];
        size_t n;
        const char *stored;
    } cases[] = {
        {{"a\nb\rc\r\n"}, 1, "a\r\nb\r\nc\r\n"},
        {{"START\r.\r\nmail FROM:<x>\r\n"}, 1, "START\r\n.\r\nmail FROM:<x>\r\n"},
        {{"x\r\r\n\n\n"}, 1, "x\r\n\r\n\r\n\r\n"},
        {{"one\r", "\ntwo\r", "three\r"}, 3, "one\r\ntwo\r\nthree\r\n"},
        {{"ends bare\n"}, 1, "ends bare\r\n"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        teardown(state);
        setup(state);
        fixture *f = *state;
        f->conf.opt.bare_eol = BARE_EOL_NORMALISE;
        const char *r = bdat_send(f, cases[i].chunks, cases[i].n);
        if (!strstr(r, "250 2.0.0 Ok: queued as QID1\r\n")) fail_msg("case %zu: replies \"%s\"", i, r);
        if (strcmp(f->m.last_data.data, cases[i].stored) != 0)
            fail_msg("case %zu: stored \"%s\"", i, f->m.last_data.data);
    }
}

/* With bare_lf=reject, a bare CR or LF in BDAT content refuses the message, as in DATA. */
static void test_bdat_bare_eol_reject(void **state)
{
    static const char *const bodies[] = {"a\nb\r\n", "a\rb\r\n", "a\r\nb\r"};
    for (size_t i = 0; i < SL_ARRAY_LEN(bodies); i++) {
        teardown(state);
        setup(state);
        fixture *f = *state;
        const char *r = bdat_send(f, &bodies[i], 1);
        assert_string_equal(r, "550 5.6.0 Message contains a bare CR or LF (RFC 5321 section 2.3.8)\r\n");
        assert_int_equal(f->m.commits, 0);
    }
}

/* smtp_sess_in_content follows DATA and BDAT (between chunks too); smtp_sess_expire answers 421 and closes. */
static void test_in_content_and_expire(void **state)
{
    fixture *f = *state;
    feed(f, "EHLO c\r\n");
    feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\n");
    assert_false(smtp_sess_in_content(f->s));
    feed(f, "DATA\r\n");
    assert_true(smtp_sess_in_content(f->s));
    feed(f, "hi\r\n.\r\n");
    assert_false(smtp_sess_in_content(f->s));
    feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\n");
    feed(f, "BDAT 3\r\n");
    assert_true(smtp_sess_in_content(f->s));
    feed(f, "ab\r");
    assert_true(smtp_sess_in_content(f->s)); /* between chunks */
    clear(f);
    smtp_sess_expire(f->s, "slow_data");
    assert_string_equal(f->s->out.data, "421 4.4.2 mx.test Error: timeout exceeded\r\n");
    assert_true(f->s->closing);
    assert_int_equal(f->m.commits, 1);
}

static void test_async_commit_holds_input(void **state)
{
    fixture *f = *state;
    f->m.auto_commit = false;
    feed(f, "EHLO c\r\n");
    feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\n");
    clear(f);
    const char *in = "hi\r\n.\r\nNOOP\r\n";
    size_t used = smtp_sess_feed(f->s, in, strlen(in));
    assert_int_equal(used, 7);
    assert_int_equal(f->s->state, SESS_WAIT_COMMIT);
    smtp_sess_commit_done(f->s, SL_TEMP, "disk full");
    assert_string_equal(f->s->out.data, "451 4.3.0 Error: queue file write error\r\n");
    clear(f);
    assert_string_equal(feed(f, in + used), "250 2.0.0 Ok\r\n");
}

static void test_starttls_resets_session(void **state)
{
    fixture *f = *state;
    f->s->tls_offered = true;
    feed(f, "EHLO c\r\n");
    assert_non_null(strstr(f->s->out.data, "250-STARTTLS\r\n"));
    clear(f);
    /* the command pipelined after STARTTLS is not consumed: the I/O layer discards it */
    const char *in = "STARTTLS\r\nMAIL FROM:<evil@x.test>\r\n";
    size_t used = smtp_sess_feed(f->s, in, strlen(in));
    assert_int_equal(used, strlen("STARTTLS\r\n"));
    assert_string_equal(f->s->out.data, "220 2.0.0 Ready to start TLS\r\n");
    assert_int_equal(f->s->state, SESS_STARTTLS);
    smtp_sess_tls_started(f->s, "TLSv1.3 TEST");
    clear(f);
    /* RFC 3207: EHLO again is required, and STARTTLS is no longer offered */
    assert_string_equal(feed(f, "MAIL FROM:<a@b.test>\r\n"), "503 5.5.1 Error: send HELO/EHLO first\r\n");
    clear(f);
    feed(f, "EHLO c\r\n");
    assert_null(strstr(f->s->out.data, "STARTTLS"));
    clear(f);
    assert_string_equal(feed(f, "STARTTLS\r\n"), "503 5.5.1 Error: TLS already active\r\n");
}

static void test_tls_required(void **state)
{
    fixture *f = *state;
    f->s->tls_offered = f->s->tls_required = true;
    feed(f, "EHLO c\r\n");
    clear(f);
    assert_string_equal(feed(f, "MAIL FROM:<a@b.test>\r\n"), "530 5.7.0 Must issue a STARTTLS command first\r\n");
}

static void test_auth(void **state)
{
    fixture *f = *state;
    f->s->auth_offered = true;
    feed(f, "EHLO c\r\n");
    assert_null(strstr(f->s->out.data, "AUTH")); /* never offered in clear text */
    clear(f);
    assert_non_null(strstr(feed(f, "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n"), "538 5.7.11"));
    f->s->tls_active = true;
    clear(f);
    feed(f, "EHLO c\r\n");
    assert_non_null(strstr(f->s->out.data, "250-AUTH PLAIN LOGIN\r\n"));
    clear(f);
    /* wrong password: 535 and a delay before the answer */
    assert_string_equal(feed(f, "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw==\r\n"),
                        "535 5.7.8 Authentication credentials invalid\r\n");
    assert_int_equal(f->s->reply_delay_ms, 1000);
    clear(f);
    /* LOGIN with continuations */
    assert_string_equal(feed(f, "AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    clear(f);
    assert_string_equal(feed(f, "YWxpY2VAZXhhbXBsZS50ZXN0\r\n"), "334 UGFzc3dvcmQ6\r\n");
    clear(f);
    assert_string_equal(feed(f, "c2VjcmV0\r\n"), "235 2.7.0 Authentication successful\r\n");
    assert_string_equal(f->s->auth_user, "alice@example.test");
    clear(f);
    assert_string_equal(feed(f, "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n"),
                        "503 5.5.1 Error: already authenticated\r\n");
}

static void test_auth_failures_close(void **state)
{
    fixture *f = *state;
    f->s->auth_offered = f->s->tls_active = true;
    f->conf.opt.auth_max_failures = 2;
    feed(f, "EHLO c\r\n");
    clear(f);
    feed(f, "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw==\r\n");
    assert_false(f->s->closing);
    feed(f, "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw==\r\n");
    assert_true(f->s->closing);
    assert_non_null(strstr(f->s->out.data, "421 4.7.0"));
    teardown(state);
    setup(state);
    f = *state;
    f->s->auth_offered = f->s->tls_active = true;
    feed(f, "EHLO c\r\n");
    clear(f);
    /* directory down: a temporary answer, not a failure count */
    assert_string_equal(feed(f, "AUTH PLAIN AGRpckBkb3duLnRlc3QAeA==\r\n"),
                        "454 4.7.0 Temporary authentication failure\r\n");
    assert_int_equal(f->s->auth_failures, 0);
    clear(f);
    assert_string_equal(feed(f, "AUTH PLAIN !!!\r\n"), "501 5.5.2 Error: malformed base64\r\n");
}

static void test_auth_required(void **state)
{
    fixture *f = *state;
    f->s->auth_offered = f->s->auth_required = f->s->tls_active = true;
    feed(f, "EHLO c\r\n");
    clear(f);
    assert_string_equal(feed(f, "MAIL FROM:<a@b.test>\r\n"), "530 5.7.0 Authentication required\r\n");
}

/* A NUL inside a command line: the whole line (its true length) is refused, the session goes on.
 * Regression: the line used to be copied up to the NUL but parsed and wiped at its full length. */
static void test_nul_in_command(void **state)
{
    fixture *f = *state;
    clear(f);
    char line[420];
    memcpy(line, "NOOP\0", 5);
    memset(line + 5, 'A', 400);
    memcpy(line + 405, "\r\n", 2);
    assert_string_equal(feedn(f, line, 407), "500 5.5.2 Invalid characters in command\r\n");
    assert_false(f->s->closing);
    clear(f);
    static const char nul_mid[] = "EHLO a\0b\r\n";
    assert_string_equal(feedn(f, nul_mid, sizeof nul_mid - 1), "500 5.5.2 Invalid characters in command\r\n");
    clear(f);
    assert_string_equal(feedn(f, "\0\r\n", 3), "500 5.5.2 Invalid characters in command\r\n");
    clear(f);
    assert_non_null(strstr(feed(f, "EHLO c\r\n"), "250-mx.test"));
}

/* NULs in AUTH continuations: raw on the line, or decoded inside a LOGIN name or password. */
static void test_auth_nul(void **state)
{
    fixture *f = *state;
    f->s->auth_offered = f->s->tls_active = true;
    f->conf.opt.auth_max_failures = 10;
    feed(f, "EHLO c\r\n");
    clear(f);
    assert_string_equal(feed(f, "AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    clear(f);
    static const char raw_nul[] = "\0\1\r\n";
    assert_string_equal(feedn(f, raw_nul, sizeof raw_nul - 1), "501 5.5.2 Error: malformed base64\r\n");
    assert_int_equal(f->s->state, SESS_CMD);
    clear(f);
    /* "AAE=" decodes to NUL 0x01: not an empty user name */
    assert_string_equal(feed(f, "AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    clear(f);
    assert_string_equal(feed(f, "AAE=\r\n"), "535 5.7.8 Authentication credentials invalid\r\n");
    assert_null(f->s->auth_user);
    clear(f);
    /* a password with a NUL inside ("alice@example.test" / "secret\0x") */
    assert_string_equal(feed(f, "AUTH LOGIN YWxpY2VAZXhhbXBsZS50ZXN0\r\n"), "334 UGFzc3dvcmQ6\r\n");
    clear(f);
    assert_string_equal(feed(f, "c2VjcmV0AHg=\r\n"), "535 5.7.8 Authentication credentials invalid\r\n");
    clear(f);
    /* PLAIN: a third NUL (password "secret\0x") is not the password "secret" */
    assert_string_equal(feed(f, "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQAeA==\r\n"),
                        "535 5.7.8 Authentication credentials invalid\r\n");
    assert_null(f->s->auth_user);
}

/* A malformed BDAT: its chunk has no known size, so the session ends after the syntax error and
 * nothing that follows is read as a command. */
static void test_bad_bdat_closes(void **state)
{
    fixture *f = *state;
    feed(f, "EHLO c\r\n");
    feed(f, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\n");
    clear(f);
    const char *in = "BDAT 12x\r\nRCPT TO:<z@y.test>\r\n";
    size_t used = smtp_sess_feed(f->s, in, strlen(in));
    assert_int_equal(used, strlen("BDAT 12x\r\n"));
    assert_true(f->s->closing);
    assert_int_equal(f->s->n_rcpts, 1);
    assert_non_null(strstr(f->s->out.data, "501 "));
    assert_null(strstr(f->s->out.data, "250"));
}

static void count_resume(void *arg)
{
    (*(int *)arg)++;
}

/* Decisions answered later: the engine takes no input meanwhile, pipelined commands are decided
 * one at a time in order, each later answer resumes the I/O layer, and replies keep their order. */
static void test_held_decisions_keep_order(void **state)
{
    fixture *f = *state;
    int resumes = 0;
    smtp_sess_set_resume(f->s, count_resume, &resumes);
    feed(f, "EHLO c\r\n");
    clear(f);
    f->m.hold = true;
    const char *in = "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nRCPT TO:<bad@y.test>\r\nDATA\r\n";
    size_t off = 0, rounds = 0;
    int asked = f->m.asked;
    while (off < strlen(in) && rounds++ < 10) {
        off += smtp_sess_feed(f->s, in + off, strlen(in) - off);
        if (!smtp_sess_waiting(f->s)) continue;
        assert_false(smtp_sess_accepts_input(f->s));
        assert_int_equal(smtp_sess_feed(f->s, in + off, strlen(in) - off), 0); /* nothing taken while waiting */
        verdict v = f->m.held;
        answer(f->s, &v);
    }
    assert_int_equal(f->m.asked - asked, 3);
    assert_int_equal(resumes, 3);
    assert_string_equal(f->s->out.data, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                                        "550 5.1.1 <>: Recipient address rejected: User unknown\r\n"
                                        "354 End data with <CR><LF>.<CR><LF>\r\n");
    assert_int_equal(f->s->n_rcpts, 1);
    /* an answer nobody asked for is ignored */
    verdict stray = verdict_refuse(VERDICT_ACCESS, false, NULL);
    answer(f->s, &stray);
    assert_int_equal(f->s->state, SESS_DATA);
}

/* A connect decision that refuses: its reply, then the session closes without a greeting. */
static void test_connect_refused(void **state)
{
    fixture *f = *state;
    smtp_sess_free(f->s);
    f->m.hold = true;
    smtp_sess_info info = {.id = "S2", .service = "SMTP", .src_channel = "tcp_local", .client_ip = "192.0.2.1"};
    f->s = smtp_sess_new(&f->conf, &ops, &f->m, &info);
    smtp_sess_connect(f->s);
    smtp_sess_greet(f->s); /* asked for before the decision came: it waits for it */
    assert_null(smtp_sess_output(f->s, &(size_t){0}));
    verdict v = verdict_refuse(VERDICT_CONN_LIMIT, true, NULL);
    answer(f->s, &v);
    assert_string_equal(f->s->out.data, "421 4.7.0 mx.test Too many connections, try again later\r\n");
    assert_true(smtp_sess_closing(f->s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_greeting_and_ehlo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simple_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequence_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipient_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smuggling_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bare_lf_normalise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_command_tail_not_executed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_command_split_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelining_after_data_forbidden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_and_too_many_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdat_bare_eol_normalise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdat_bare_eol_reject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_commit_holds_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_content_and_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls_resets_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_failures_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_in_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_nul, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_decisions_keep_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bdat_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
