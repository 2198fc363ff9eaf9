/* test_submit.c - local submission: the pickup file format and the client engine, driven with
 * scripted server replies (no sockets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "smtp/submit.h"

/* env_make - an envelope from sender to n recipients with content. */
static void env_make(submit_env *e, const char *sender, const char *const *rcpts, size_t n, const char *content)
{
    memset(e, 0, sizeof *e);
    e->sender = strdup(sender);
    for (size_t i = 0; i < n; i++) sv_push(&e->rcpts, rcpts[i]);
    sb_puts(&e->content, content);
}

/* Encoding and decoding a pickup file gives the same envelope back, byte for byte. */
static void test_pickup_roundtrip(void **state)
{
    (void)state;
    const char *rcpts[] = {"alice@example.test", "\"odd person\"@example.test"};
    submit_env e;
    env_make(&e, "", rcpts, 2, "Subject: x\r\n\r\nbody\r\n.\r\n");
    e.notify = 6;
    e.ret = DSN_RET_HDRS;
    e.envid = strdup("env id+1");
    e.eight_bit = true;
    strbuf file = {0};
    submit_env_encode(&e, &file);
    assert_non_null(strstr(file.data, "rcpt \"odd+20person\"@example.test\n"));
    submit_env d;
    char err[128];
    assert_int_equal(submit_env_decode(file.data, file.len, &d, err, sizeof err), 0);
    assert_string_equal(d.sender, "");
    assert_int_equal(d.rcpts.n, 2);
    assert_string_equal(d.rcpts.v[1], "\"odd person\"@example.test");
    assert_int_equal(d.notify, 6);
    assert_int_equal(d.ret, DSN_RET_HDRS);
    assert_string_equal(d.envid, "env id+1");
    assert_true(d.eight_bit);
    assert_int_equal(d.content.len, e.content.len);
    assert_memory_equal(d.content.data, e.content.data, e.content.len);
    submit_env_free(&d);
    submit_env_free(&e);
    sb_free(&file);
}

/* Damaged or hostile pickup files are refused with a reason. */
static void test_pickup_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",                                                        /* empty */
        "SLUICE-PICKUP 2\nfrom a@b\nrcpt c@d\n\nx",                /* unknown version */
        "SLUICE-PICKUP 1\nfrom a@b\n\nx",                          /* no recipient */
        "SLUICE-PICKUP 1\nrcpt c@d\n\nx",                          /* no sender */
        "SLUICE-PICKUP 1\nfrom a@b\nrcpt c@d\nbogus 1\n\nx",       /* unknown line */
        "SLUICE-PICKUP 1\nfrom a@b\nrcpt c+0D+0AMAIL@d\n\nx",      /* CR LF smuggled in xtext */
        "SLUICE-PICKUP 1\nfrom a@b\nrcpt <c@d>\n\nx",              /* angle brackets */
        "SLUICE-PICKUP 1\nfrom a@b\nrcpt c@d\nnotify 99\n\nx",     /* notify out of range */
        "SLUICE-PICKUP 1\nfrom a@b\nfrom e@f\nrcpt c@d\n\nx",      /* two senders */
        "SLUICE-PICKUP 1\nfrom a@b\nrcpt c@d",                     /* header never ends */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        submit_env d;
        char err[128] = "";
        assert_int_equal(submit_env_decode(bad[i], strlen(bad[i]), &d, err, sizeof err), -1);
        assert_true(err[0] != '\0');
        assert_null(d.sender);
        assert_int_equal(d.rcpts.n, 0);
    }
    const char nul[] = "SLUICE-PICKUP 1\nfrom a@b\0\nrcpt c@d\n\nx";
    submit_env d;
    char err[128];
    assert_int_equal(submit_env_decode(nul, sizeof nul - 1, &d, err, sizeof err), -1);
}

/* sendmail -N values. */
static void test_notify_parse(void **state)
{
    (void)state;
    unsigned n = 0;
    assert_int_equal(submit_notify_parse("never", &n), 0);
    assert_int_equal(n, DSN_NOTIFY_NEVER);
    assert_int_equal(submit_notify_parse("success,delay", &n), 0);
    assert_int_equal(n, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY);
    assert_int_equal(submit_notify_parse("FAILURE", &n), 0);
    assert_int_equal(n, DSN_NOTIFY_FAILURE);
    assert_int_equal(submit_notify_parse("never,success", &n), -1);
    assert_int_equal(submit_notify_parse("sometimes", &n), -1);
    assert_int_equal(submit_notify_parse("", &n), -1);
}

/* step - feed one server reply; the engine's answer must be expect (NULL: nothing). */
static submit_status step(submit *s, const char *reply, const char *expect)
{
    strbuf out = {0};
    submit_status st = submit_feed(s, reply, strlen(reply), &out);
    if (expect) assert_string_equal(out.data ? out.data : "", expect);
    else assert_int_equal(out.len, 0);
    sb_free(&out);
    return st;
}

/* A whole conversation: EHLO, MAIL with every parameter, RCPTs, DATA, dot-stuffed content, QUIT;
 * a refused recipient keeps its reply and the message goes to the other. */
static void test_engine_conversation(void **state)
{
    (void)state;
    const char *rcpts[] = {"a@example.test", "nobody@example.test"};
    submit_env e;
    env_make(&e, "me@example.test", rcpts, 2, "Subject: t\r\n\r\n.hidden\r\nend\r\n");
    e.notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE;
    e.ret = DSN_RET_FULL;
    e.envid = strdup("x y");
    e.eight_bit = true;
    submit *s = submit_new(&e, "host.test");
    assert_int_equal(step(s, "220 mx ESMTP\r\n", "EHLO host.test\r\n"), SUBMIT_RUNNING);
    /* a multi-line reply split in the middle of a line */
    assert_int_equal(step(s, "250-mx Hello\r\n250-PIPE", NULL), SUBMIT_RUNNING);
    step(s, "LINING\r\n250 DSN\r\n", "MAIL FROM:<me@example.test> BODY=8BITMIME RET=FULL ENVID=x+20y\r\n");
    step(s, "250 2.1.0 Ok\r\n", "RCPT TO:<a@example.test> NOTIFY=SUCCESS,FAILURE\r\n");
    step(s, "250 2.1.5 Ok\r\n", "RCPT TO:<nobody@example.test> NOTIFY=SUCCESS,FAILURE\r\n");
    step(s, "550 5.1.1 <nobody@example.test>: unknown\r\n", "DATA\r\n");
    step(s, "354 go ahead\r\n", "Subject: t\r\n\r\n..hidden\r\nend\r\n.\r\n");
    assert_int_equal(step(s, "250 2.0.0 Ok: queued as 661E0000000A0001\r\n", "QUIT\r\n"), SUBMIT_QUEUED);
    assert_string_equal(submit_queue_id(s), "661E0000000A0001");
    assert_int_equal(submit_accepted(s), 1);
    int code;
    assert_string_equal(submit_rcpt_reply(s, 1, &code), "550 5.1.1 <nobody@example.test>: unknown");
    assert_int_equal(code, 550);
    submit_rcpt_reply(s, 0, &code);
    assert_int_equal(code, 250);
    assert_int_equal(step(s, "221 bye\r\n", NULL), SUBMIT_QUEUED);
    submit_free(s);
    submit_env_free(&e);
}

/* How a submission ends when it is refused: 4xx is temporary, 5xx permanent, EOF temporary. */
static void test_engine_endings(void **state)
{
    (void)state;
    const char *one[] = {"a@example.test"};
    const char *two[] = {"a@example.test", "b@example.test"};
    submit_env e1, e2;
    env_make(&e1, "", one, 1, "x\r\n");
    env_make(&e2, "", two, 2, "x\r\n");

    submit *s = submit_new(&e1, "h");
    step(s, "220 mx\r\n", "EHLO h\r\n");
    step(s, "250 mx\r\n", "MAIL FROM:<>\r\n");
    assert_int_equal(step(s, "451 4.3.0 try later\r\n", "QUIT\r\n"), SUBMIT_TEMP);
    assert_string_equal(submit_reply(s), "451 4.3.0 try later");
    submit_free(s);

    s = submit_new(&e2, "h"); /* every recipient refused, one of them for now: temporary */
    step(s, "220 mx\r\n", "EHLO h\r\n");
    step(s, "250 mx\r\n", "MAIL FROM:<>\r\n");
    step(s, "250 ok\r\n", "RCPT TO:<a@example.test>\r\n");
    step(s, "550 5.1.1 no\r\n", "RCPT TO:<b@example.test>\r\n");
    assert_int_equal(step(s, "452 4.5.3 too many\r\n", "QUIT\r\n"), SUBMIT_TEMP);
    assert_int_equal(submit_accepted(s), 0);
    submit_free(s);

    s = submit_new(&e1, "h"); /* the content refused for good */
    step(s, "220 mx\r\n", "EHLO h\r\n");
    step(s, "250 mx\r\n", "MAIL FROM:<>\r\n");
    step(s, "250 ok\r\n", "RCPT TO:<a@example.test>\r\n");
    step(s, "250 ok\r\n", "DATA\r\n");
    step(s, "354 go\r\n", "x\r\n.\r\n");
    assert_int_equal(step(s, "552 5.3.4 too big\r\n", "QUIT\r\n"), SUBMIT_PERM);
    assert_int_equal(submit_accepted(s), 1);
    submit_free(s);

    s = submit_new(&e1, "h"); /* the daemon goes away */
    step(s, "220 mx\r\n", "EHLO h\r\n");
    assert_int_equal(submit_eof(s), SUBMIT_TEMP);
    submit_free(s);

    s = submit_new(&e1, "h"); /* garbage instead of a reply */
    assert_int_equal(step(s, "hello there\r\n", NULL), SUBMIT_TEMP);
    submit_free(s);

    s = submit_new(&e1, "h"); /* a 554 greeting */
    assert_int_equal(step(s, "554 5.7.1 go away\r\n", "QUIT\r\n"), SUBMIT_PERM);
    submit_free(s);
    submit_env_free(&e1);
    submit_env_free(&e2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pickup_roundtrip),   cmocka_unit_test(test_pickup_refused),
        cmocka_unit_test(test_notify_parse),       cmocka_unit_test(test_engine_conversation),
        cmocka_unit_test(test_engine_endings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
