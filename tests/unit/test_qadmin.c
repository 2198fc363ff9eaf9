/* test_qadmin.c - the queue tools' requests (table-driven: accepted and refused command lines),
 * the selection of messages, and the saved last replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/qadmin.h"

/* parse - split line at spaces and parse it; returns the status (req filled). */
static int parse(const char *line, qadmin_req *req, strvec *words)
{
    str_split_ws(line, words);
    strbuf err = {0};
    int rc = qadmin_req_parse((int)words->n, words->v, req, &err);
    if (rc) assert_true(err.len > 0);
    sb_free(&err);
    return rc;
}

static void test_requests(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        int rc;
    } cases[] = {
        {"list", 0},
        {"list tcp_local", 0},
        {"list --json", 0},
        {"list tcp_local --json --domain example.com --from a@ --to b@ --reply 421 --older-than 2h", 0},
        {"list --channel=l --json", 0},
        {"summary --json --domain x.test", 0},
        {"show ABC", 0},
        {"show ABC --json", 0},
        {"hold ABC", 0},
        {"hold --domain example.com", 0},
        {"release --all --json", 0},
        {"retry tcp_local", 0},
        {"retry --all", 0},
        {"delete --older-than 3d", 0},
        {"stats", 0},
        {"list --bogus", 2},         /* unknown flag, never a channel */
        {"list -j", 2},
        {"list a b", 2},
        {"show", 2},
        {"show ABC --domain x", 2},  /* show takes no selection */
        {"stats --json --all", 2},
        {"hold", 2},                 /* an action needs an ID or a selection */
        {"hold ABC --domain x", 2},  /* ... not both */
        {"delete --older-than soon", 2},
        {"delete --older-than 0", 2},
        {"list --from", 2},
        {"list --from=", 2},
        {"list --json=1", 2},
        {"frobnicate", 2},
        {"", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qadmin_req req;
        strvec w = {0};
        int rc = parse(cases[i].line, &req, &w);
        if (rc != cases[i].rc) fail_msg("'%s': %d, expected %d", cases[i].line, rc, cases[i].rc);
        sv_free(&w);
    }
    qadmin_req req;
    strvec w = {0};
    assert_int_equal(parse("list tcp_local --json --domain=example.com --older-than 1h --reply refused", &req, &w), 0);
    assert_string_equal(req.cmd, "list");
    assert_string_equal(req.arg, "tcp_local");
    assert_true(req.json && req.sel.any && !req.sel.all);
    assert_string_equal(req.sel.domain, "example.com");
    assert_string_equal(req.sel.reply, "refused");
    assert_int_equal(req.sel.older_than, 3600);
    assert_false(qadmin_req_is_action(&req));
    sv_free(&w);
}

/* msg_make - a message on channel from sender to two recipients, arrived at t. */
static void msg_make(qmsg *m, const char *channel, const char *sender, int64_t t)
{
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "ID1");
    m->channel = strdup(channel);
    m->sender = strdup(sender);
    m->arrival = t;
    qmsg_add_rcpt(m, "Alice@Example.COM", "alice@example.com", NULL, "example.com", 0);
    qrcpt *done = qmsg_add_rcpt(m, "bob@done.test", NULL, NULL, "done.test", 0);
    done->status = QR_DELIVERED;
}

static void test_selection(void **state)
{
    (void)state;
    qmsg m;
    msg_make(&m, "tcp_local", "Sender@Origin.test", 1000);
    static const struct {
        const char *line;
        const char *reply;
        bool match;
    } cases[] = {
        {"list --all", NULL, true},
        {"list --domain example.com", NULL, true},
        {"list --domain EXAMPLE.com", NULL, true},
        {"list --domain ample.com", NULL, false},  /* a domain is compared whole */
        {"list --domain done.test", NULL, false},  /* only pending recipients count */
        {"list --to alice@", NULL, true},
        {"list --to bob@", NULL, false},
        {"list --from sender@origin", NULL, true},
        {"list --from other@", NULL, false},
        {"list --channel TCP_LOCAL", NULL, true},
        {"list --channel l", NULL, false},
        {"list --older-than 10m", NULL, true},     /* arrived 1000 s before now */
        {"list --older-than 1h", NULL, false},
        {"list --reply refused", "smtp; connect to mx: Connection REFUSED", true},
        {"list --reply refused", NULL, false},
        {"list --reply refused --domain example.com --from sender", "refused", true},
        {"list --reply refused --domain other.test", "refused", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qadmin_req req;
        strvec w = {0};
        assert_int_equal(parse(cases[i].line, &req, &w), 0);
        if (qadmin_sel_match(&req.sel, &m, cases[i].reply, 2000) != cases[i].match)
            fail_msg("'%s' (reply %s): expected %d", cases[i].line, cases[i].reply, cases[i].match);
        sv_free(&w);
    }
    qmsg_free(&m);
}

static bool keep_b(void *arg, const char *channel, const char *id)
{
    (void)arg, (void)channel;
    return id[0] == 'B';
}

/* The saved replies: put keeps them sorted, take hands one over, keep prunes, a line stays one line. */
static void test_replies(void **state)
{
    (void)state;
    qadmin_replies r = {0};
    qadmin_replies_put(&r, "tcp_local", "C", 3, "three");
    qadmin_replies_put(&r, "tcp_local", "A", 1, "one");
    qadmin_replies_put(&r, "l", "B", 2, "two");
    qadmin_replies_put(&r, "tcp_local", "A", 4, "one again");
    int64_t at = 0;
    assert_string_equal(qadmin_replies_find(&r, "tcp_local", "A", &at), "one again");
    assert_int_equal(at, 4);
    assert_null(qadmin_replies_find(&r, "l", "A", &at));
    char *t = qadmin_replies_take(&r, "tcp_local", "C", &at);
    assert_string_equal(t, "three");
    free(t);
    assert_null(qadmin_replies_take(&r, "tcp_local", "C", &at));
    qadmin_replies_keep(&r, keep_b, NULL);
    assert_int_equal(r.n, 1);
    assert_string_equal(qadmin_replies_find(&r, "l", "B", NULL), "two");
    qadmin_replies_free(&r);
    strbuf line = {0};
    qadmin_replies_line(&line, "tcp_local", "X", 9, "451 4.7.1 first\r\nsecond");
    assert_string_equal(line.data, "tcp_local X 9 451 4.7.1 first??second\n");
    sb_free(&line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
