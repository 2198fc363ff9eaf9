/* test_etrn_solicit.c - ETRN (RFC 1985) and NO-SOLICITING (RFC 3865) in the command parser, the
 * session engine (bytes in, replies out) and the verdict table; the channel keywords of issue 15
 * (sourcenosolicit, single, maxblocks/maxlines refused). */
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

/* ---- the parser ---- */

static void test_parse_etrn(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        int rc;
        const char *arg;
    } cases[] = {
        {"ETRN example.test", 0, "example.test"},
        {"etrn Example.TEST", 0, "example.test"},
        {"ETRN @Example.test", 0, "@example.test"},
        {"ETRN #tcp_local", 0, "#tcp_local"},
        {"ETRN", 501, NULL},
        {"ETRN ", 501, NULL},
        {"ETRN a b", 501, NULL},
        {"ETRN @", 501, NULL},
        {"ETRN #", 501, NULL},
        {"ETRN #a/b", 501, NULL},
        {"ETRN exa_mple..test", 501, NULL},
        {"ETRN [127.0.0.1]", 501, NULL},
        {"ETRN @@example.test", 501, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        smtp_cmd c;
        char reply[256];
        int rc = smtp_cmd_parse(cases[i].line, strlen(cases[i].line), true, &c, reply, sizeof reply);
        if (rc != cases[i].rc) fail_msg("%s: rc %d, want %d (%s)", cases[i].line, rc, cases[i].rc, reply);
        assert_int_equal(c.verb, SMTP_ETRN);
        if (cases[i].arg) assert_string_equal(c.arg, cases[i].arg);
        else assert_non_null(strstr(reply, "501 5.5.4 Syntax: ETRN"));
        smtp_cmd_free(&c);
    }
}

static void test_parse_solicit(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        int rc;
        const char *solicit;
    } cases[] = {
        {"MAIL FROM:<a@b.test> SOLICIT=net.example:ADV", 0, "net.example:ADV"},
        {"MAIL FROM:<a@b.test> SOLICIT=a,b-c,d.e:f", 0, "a,b-c,d.e:f"},
        {"MAIL FROM:<a@b.test> solicit=x", 0, "x"},
        {"MAIL FROM:<a@b.test> SOLICIT=", 501, NULL},
        {"MAIL FROM:<a@b.test> SOLICIT", 501, NULL},
        {"MAIL FROM:<a@b.test> SOLICIT=a,,b", 501, NULL},
        {"MAIL FROM:<a@b.test> SOLICIT=a,", 501, NULL},
        {"MAIL FROM:<a@b.test> SOLICIT=,a", 501, NULL},
        {"MAIL FROM:<a@b.test> SOLICIT=a*b", 501, NULL},
        {"MAIL FROM:<a@b.test> SOLICIT=a SOLICIT=b", 501, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        smtp_cmd c;
        char reply[256];
        int rc = smtp_cmd_parse(cases[i].line, strlen(cases[i].line), true, &c, reply, sizeof reply);
        if (rc != cases[i].rc) fail_msg("%s: rc %d, want %d (%s)", cases[i].line, rc, cases[i].rc, reply);
        if (cases[i].solicit) assert_string_equal(c.solicit, cases[i].solicit);
        smtp_cmd_free(&c);
    }
    assert_true(smtp_solicit_check("a", 1));
    assert_false(smtp_solicit_check("", 0));
    char big[SMTP_SOLICIT_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_false(smtp_solicit_check(big, strlen(big)));
    assert_true(smtp_solicit_check(big, SMTP_SOLICIT_MAX));
}

/* ---- the engine ---- */

typedef struct {
    int etrn_asked;
    char node[64];
    bool refuse_solicit;
} mock;

/* answer - reply to the engine as the policy does, from the real verdict table. */
static void answer(smtp_sess *s, verdict *v)
{
    strbuf line = {0};
    bool ok = v->cls == VERDICT_OK;
    if (!ok) verdict_reply(v, "mx.test", &line);
    smtp_answer a = {verdict_code(v), ok ? NULL : line.data, 0, false, NULL};
    verdict_free(v);
    smtp_sess_answer(s, &a);
    sb_free(&line);
}

/* mock_decide - ETRN: "none.test" has nothing, "deny.test" is refused, others 2 messages;
 * MAIL: SOLICIT=ADV refused. */
static void mock_decide(void *ctx, smtp_sess *s, const smtp_ask *q)
{
    mock *m = ctx;
    verdict v = verdict_ok();
    if (q->stage == SMTP_STAGE_ETRN) {
        m->etrn_asked++;
        snprintf(m->node, sizeof m->node, "%s", q->cmd->arg);
        if (!strcmp(q->cmd->arg, "none.test")) {
            v = verdict_refuse(VERDICT_ETRN_NONE, false, q->cmd->arg);
        } else if (!strcmp(q->cmd->arg, "deny.test")) {
            v = verdict_refuse(VERDICT_ETRN_DENIED, false, q->cmd->arg);
        } else {
            v = verdict_refuse(VERDICT_ETRN_STARTED, false, q->cmd->arg);
            verdict_set_text(&v, "2");
        }
    } else if (q->stage == SMTP_STAGE_MAIL && q->cmd->solicit && !strcmp(q->cmd->solicit, "ADV")) {
        v = verdict_refuse(VERDICT_SOLICIT, false, NULL);
    }
    answer(s, &v);
}

static void mock_commit(void *ctx, smtp_sess *s)
{
    (void)ctx;
    smtp_sess_commit_done(s, SL_OK, NULL);
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

/* setup - a session on source channel tcp_local, which refuses "ADV" and "net.example:*" solicitations. */
static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    conf_options_defaults(&f->conf.opt);
    free(f->conf.opt.hostname);
    f->conf.opt.hostname = xstrdup("mx.test");
    conf_errors errs = {0};
    assert_int_equal(conf_parse_sluice_cnf("sluice.cnf", "\ntcp_local smtp sourcenosolicit \"ADV,net.example:*,x.y\"\ntcp-daemon\n",
                                           &f->conf, &errs),
                     0);
    smtp_sess_info info = {.id = "S1", .service = "SMTP", .src_channel = "tcp_local", .client_ip = "127.0.0.1",
                           .server_ip = "127.0.0.1", .client_internal = true};
    f->s = smtp_sess_new(&f->conf, &ops, &f->m, &info);
    smtp_sess_connect(f->s);
    smtp_sess_greet(f->s);
    sb_reset(&f->s->out);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    smtp_sess_free(f->s);
    conf_sluice_cnf_free(&f->conf);
    conf_options_free(&f->conf.opt);
    free(f);
    return 0;
}

/* feed - send text and return every reply since the last one. */
static const char *feed(fixture *f, const char *p)
{
    sb_reset(&f->s->out);
    smtp_sess_feed(f->s, p, strlen(p));
    return f->s->out.data ? f->s->out.data : "";
}

static void test_ehlo_keywords(void **state)
{
    fixture *f = *state;
    const char *r = feed(f, "EHLO client.test\r\n");
    assert_non_null(strstr(r, "250-ETRN\r\n"));
    assert_non_null(strstr(r, "250-NO-SOLICITING ADV,x.y\r\n")); /* the glob is not shown */
}

static void test_etrn_engine(void **state)
{
    fixture *f = *state;
    assert_string_equal(feed(f, "ETRN example.test\r\n"), "503 5.5.1 Error: send HELO/EHLO first\r\n");
    assert_int_equal(f->m.etrn_asked, 0);
    feed(f, "EHLO client.test\r\n");
    assert_string_equal(feed(f, "ETRN @Example.test\r\n"), "253 2.0.0 OK, 2 pending messages for node @example.test started\r\n");
    assert_string_equal(f->m.node, "@example.test");
    assert_string_equal(feed(f, "ETRN none.test\r\n"), "251 2.0.0 OK, no messages waiting for node none.test\r\n");
    assert_string_equal(feed(f, "ETRN deny.test\r\n"), "459 4.5.0 Node deny.test not allowed: access denied\r\n");
    assert_string_equal(feed(f, "ETRN\r\n"), "501 5.5.4 Syntax: ETRN [@]domain | #queue\r\n");
    assert_int_equal(f->m.etrn_asked, 3);
    feed(f, "MAIL FROM:<a@b.test>\r\n");
    assert_string_equal(feed(f, "ETRN example.test\r\n"), "503 5.5.1 Error: ETRN inside a mail transaction\r\n");
    assert_int_equal(f->m.etrn_asked, 3);
    feed(f, "RSET\r\n");
    /* pipelined with other commands: replies in order */
    assert_string_equal(feed(f, "NOOP\r\nETRN none.test\r\nNOOP\r\n"),
                        "250 2.0.0 Ok\r\n251 2.0.0 OK, no messages waiting for node none.test\r\n250 2.0.0 Ok\r\n");
}

static void test_solicit_engine(void **state)
{
    fixture *f = *state;
    feed(f, "EHLO client.test\r\n");
    assert_string_equal(feed(f, "MAIL FROM:<a@b.test> SOLICIT=ADV\r\n"),
                        "554 5.7.9 Message refused by the recipient's solicitation policy\r\n");
    assert_string_equal(feed(f, "MAIL FROM:<a@b.test> SOLICIT=other\r\n"), "250 2.1.0 Ok\r\n");
}

/* ---- configuration ---- */

static void test_conf_keywords(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *error; /* substring of the only error, NULL for none */
    } cases[] = {
        {"\ntcp_a smtp maxblocks 100\ntcp-a\n", "sluice.cnf:2: channel keyword 'maxblocks' (message fragmentation"},
        {"\ntcp_a smtp maxlines 1000\ntcp-a\n", "sluice.cnf:2: channel keyword 'maxlines' (message fragmentation"},
        {"\ntcp_a smtp sourcenosolicit \"a,b/c\"\ntcp-a\n", "bad solicitation keyword 'b/c'"},
        {"\ntcp_a smtp sourcenosolicit \",\"\ntcp-a\n", "no solicitation keyword"},
        {"\ntcp_a smtp sourcenosolicit\ntcp-a\n", "needs an argument"},
        {"\ntcp_a smtp single sourcenosolicit ADV\ntcp-a\n", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_conf c = {0};
        conf_errors errs = {0};
        int n = conf_parse_sluice_cnf("sluice.cnf", cases[i].text, &c, &errs);
        if (cases[i].error) {
            assert_int_equal(n, 1);
            if (!strstr(errs.msgs.v[0], cases[i].error)) fail_msg("%s: got '%s'", cases[i].text, errs.msgs.v[0]);
        } else {
            assert_int_equal(n, 0);
            const sl_channel *ch = conf_channel_by_name(&c, "tcp_a");
            assert_non_null(ch);
            assert_int_equal(ch->addrmode, CHAN_SINGLE);
            assert_int_equal(ch->nosolicit.n, 1);
            assert_string_equal(ch->nosolicit.v[0], "ADV");
        }
        sv_free(&errs.msgs);
        conf_sluice_cnf_free(&c);
    }
}

/* test_conf_defaults_inherit - a "defaults" block's sourcenosolicit and address mode reach every channel. */
static void test_conf_defaults_inherit(void **state)
{
    (void)state;
    sl_conf c = {0};
    conf_errors errs = {0};
    assert_int_equal(
        conf_parse_sluice_cnf("sluice.cnf", "\ndefaults multiple sourcenosolicit X\n\ntcp_a smtp\ntcp-a\n\ntcp_b smtp\ntcp-b\n",
                              &c, &errs),
        0);
    const sl_channel *b = conf_channel_by_name(&c, "tcp_b");
    assert_int_equal(b->addrmode, CHAN_MULTIPLE);
    assert_int_equal(b->nosolicit.n, 1);
    conf_sluice_cnf_free(&c);
    sl_conf d = {0};
    assert_int_equal(conf_parse_sluice_cnf("sluice.cnf", "\ntcp_a smtp\ntcp-a\n", &d, &errs), 0);
    assert_int_equal(conf_channel_by_name(&d, "tcp_a")->addrmode, CHAN_SINGLE_SYS); /* the default */
    conf_sluice_cnf_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_etrn),
        cmocka_unit_test(test_parse_solicit),
        cmocka_unit_test_setup_teardown(test_ehlo_keywords, setup, teardown),
        cmocka_unit_test_setup_teardown(test_etrn_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_solicit_engine, setup, teardown),
        cmocka_unit_test(test_conf_keywords),
        cmocka_unit_test(test_conf_defaults_inherit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
