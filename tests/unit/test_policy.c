/*
 * test_policy.c - the session decider (src/policy/) driven through the real SMTP engine with a
 * real configuration directory and the embedded LDIF directory behind the directory interface:
 * connection limits, PORT_ACCESS, MAIL checks, RCPT decisions (local users, statuses, groups,
 * relay control, <Postmaster>, recipient limit) and AUTH, whose hash runs on a worker thread so
 * the test runs the event loop until the answer comes. The verdict table's reply lines are
 * checked exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/load.h"
#include "core/ctx.h"
#include "core/workq.h"
#include "policy/fleet.h"
#include "policy/policy.h"
#include "policy/verdict.h"
#include "smtp/session.h"

/* "secret" hashed by `openssl passwd -6 -salt testsalt secret` */
#define SECRET_HASH "$6$testsalt$51yaaBMXXXt5vK522YOlIMZ267vqHtMIzc2klcsu3EEv/bkRDU9g3UmkypXf.NvlpPpIPK1nX5zdbCeJBiQbB/"

static const char LDIF[] =
    "dn: dc=example,dc=test\nobjectClass: mailDomain\n\n"
    "dn: uid=alice,dc=example,dc=test\nobjectClass: mailUser\nmail: alice@example.test\n"
    "userPassword: {CRYPT}" SECRET_HASH "\n\n"
    "dn: uid=dave,dc=example,dc=test\nobjectClass: mailUser\nmail: dave@example.test\nmailUserStatus: inactive\n"
    "userPassword: {CRYPT}" SECRET_HASH "\n\n"
    "dn: cn=staff,dc=example,dc=test\nobjectClass: mailGroup\nmail: staff@example.test\n"
    "mgrpRFC822MailMember: alice@example.test\n\n"
    /* one user per status value; inetUserStatus is read before mailUserStatus */
    "dn: uid=over,dc=example,dc=test\nobjectClass: mailUser\nmail: over@example.test\nmailUserStatus: overquota\n\n"
    "dn: uid=del,dc=example,dc=test\nobjectClass: mailUser\nmail: del@example.test\nmailUserStatus: deleted\n\n"
    "dn: uid=rem,dc=example,dc=test\nobjectClass: mailUser\nmail: rem@example.test\ninetUserStatus: removed\n"
    "mailUserStatus: active\n\n"
    "dn: uid=both,dc=example,dc=test\nobjectClass: mailUser\nmail: both@example.test\ninetUserStatus: inactive\n"
    "mailUserStatus: deleted\n\n"
    "dn: uid=odd,dc=example,dc=test\nobjectClass: mailUser\nmail: odd@example.test\nmailUserStatus: sleeping\n\n"
    "dn: uid=held,dc=example,dc=test\nobjectClass: mailUser\nmail: held@example.test\nmailUserStatus: hold\n\n"
    "dn: uid=closed,dc=example,dc=test\nobjectClass: mailUser\nmail: closed@example.test\n"
    "mailUserStatus: disabled\nmailRejectText: This mailbox was closed in 2025\n\n"
    "dn: uid=small,dc=example,dc=test\nobjectClass: mailUser\nmail: small@example.test\nmailMsgMaxBlocks: 1\n\n"
    /* domains with a status, and one with a size limit */
    "dn: dc=closed,dc=test\nobjectClass: mailDomain\ninetDomainStatus: inactive\n\n"
    "dn: uid=u,dc=closed,dc=test\nobjectClass: mailUser\nmail: u@closed.test\n\n"
    "dn: dc=gone,dc=test\nobjectClass: mailDomain\nmailDomainStatus: deleted\n\n"
    "dn: uid=u,dc=gone,dc=test\nobjectClass: mailUser\nmail: u@gone.test\n\n"
    /* groups with submission rules, and a sender with recipient limits */
    "dn: cn=list,dc=example,dc=test\nobjectClass: mailGroup\nmail: list@example.test\n"
    "mgrpRFC822MailMember: bob@elsewhere.test\nmgrpAllowedBroadcaster: alice@example.test\n\n"
    "dn: cn=dnlist,dc=example,dc=test\nobjectClass: mailGroup\nmail: dnlist@example.test\n"
    "mgrpRFC822MailMember: bob@elsewhere.test\nmgrpAllowedBroadcaster: UID=alice, dc=example,dc=test\n\n"
    "dn: cn=mod,dc=example,dc=test\nobjectClass: mailGroup\nmail: mod@example.test\n"
    "mgrpRFC822MailMember: bob@elsewhere.test\nmgrpAllowedDomain: *.example.test\nmgrpAllowedDomain: example.test\n"
    "mgrpMsgRejectAction: TOMODERATOR\nmgrpModerator: alice@example.test\n\n"
    "dn: cn=authonly,dc=example,dc=test\nobjectClass: mailGroup\nmail: authonly@example.test\n"
    "mgrpRFC822MailMember: bob@elsewhere.test\nmgrpBroadcasterPolicy: SMTP_AUTH_REQUIRED\nmailRejectText: Log in first\n\n"
    "dn: cn=nospam,dc=example,dc=test\nobjectClass: mailGroup\nmail: nospam@example.test\n"
    "mgrpRFC822MailMember: bob@elsewhere.test\nmgrpDisallowedDomain: *spam*\n\n"
    "dn: uid=limited,dc=example,dc=test\nobjectClass: mailUser\nmail: limited@example.test\n"
    "mailRecipientLimit: 2\nmailRecipientCutoff: 3\n\n"
    "dn: dc=tiny,dc=test\nobjectClass: mailDomain\nmailDomainMsgMaxBlocks: 2\n\n"
    "dn: uid=u,dc=tiny,dc=test\nobjectClass: mailUser\nmail: u@tiny.test\n";

static const char SLUICE_CNF[] = "example.test $U%$D@local-daemon\n"
                                 "closed.test $U%$D@local-daemon\n"
                                 "gone.test $U%$D@local-daemon\n"
                                 "tiny.test $U%$D@local-daemon\n"
                                 ". $U%$H@tcp_local-daemon\n\n"
                                 "l\nlocal-daemon\n\n"
                                 "hold\nhold-daemon\n\n"
                                 "tcp_local smtp\ntcp_local-daemon\n";

static const char DISPATCHER[] = "[SERVICE=SMTP]\nPORT=25\nMAX_CONNECTIONS=5\nMAX_PER_CLIENT=2\n"
                                 "[SERVICE=NOTIFY]\nPORT=2025\n";

static const char MAPPINGS[] = "PORT_ACCESS\n"
                               "  TCP|*|2025|127.0.0.2|*  $Y\n"
                               "  TCP|*|2025|*|*          $N\n";

typedef struct {
    char dir[32];
    sl_ctx ctx;
    policy *pol;
    smtp_sess *s;
} fixture;

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sluice-pol-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    write_file(f->dir, "option.dat", "host_name=mx.example.test\nmax_recipients=3\nmax_message_size=4000\n"
                                     "postmaster=postmaster@example.test\n");
    write_file(f->dir, "dispatcher.cnf", DISPATCHER);
    write_file(f->dir, "sluice.cnf", SLUICE_CNF);
    write_file(f->dir, "directory.ldif", LDIF);
    write_file(f->dir, "mappings", MAPPINGS);
    conf_errors errs = {0};
    bool ok = load_all(f->dir, &errs, &f->ctx.conf, &f->ctx.dir);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "%s\n", errs.msgs.v[i]);
    assert_true(ok);
    sv_free(&errs.msgs);
    f->ctx.base = event_base_new();
    f->ctx.wq = workq_new(f->ctx.base, 1);
    f->pol = policy_new(&f->ctx);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    smtp_sess_free(f->s);
    workq_free(f->ctx.wq);
    policy_free(f->pol);
    event_base_free(f->ctx.base);
    dir_unref(f->ctx.dir);
    conf_free(f->ctx.conf);
    const char *names[] = {"option.dat", "dispatcher.cnf", "sluice.cnf", "directory.ldif", "mappings"};
    for (size_t i = 0; i < 5; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", f->dir, names[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* start - a session as the listener makes it; returns the greeting (or refusal). */
static const char *start(fixture *f, const char *service, unsigned port, const char *ip, bool internal,
                         unsigned conns, unsigned same)
{
    smtp_sess_free(f->s);
    smtp_sess_info info = {.id = "S1", .service = service, .src_channel = "tcp_local", .client_ip = ip,
                           .server_ip = "127.0.0.1", .client_port = 40000, .server_port = port,
                           .client_internal = internal, .auth_offered = true, .auth_plain = true,
                           .conns_service = conns, .conns_client = same};
    f->s = smtp_sess_new(f->ctx.conf, policy_smtp_ops(), f->pol, &info);
    smtp_sess_connect(f->s);
    smtp_sess_greet(f->s);
    size_t n;
    const char *out = smtp_sess_output(f->s, &n);
    return out ? out : "";
}

/* say - feed one command (CRLF added), run the loop while a decision is pending (bounded), and
 * return the reply; the reply buffer is cleared first. */
static const char *say(fixture *f, const char *cmd)
{
    smtp_sess_output_clear(f->s);
    char line[512];
    snprintf(line, sizeof line, "%s\r\n", cmd);
    size_t used = smtp_sess_feed(f->s, line, strlen(line));
    for (int i = 0; i < 500 && smtp_sess_waiting(f->s); i++) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(f->ctx.base, &tv);
        event_base_dispatch(f->ctx.base);
    }
    if (used < strlen(line)) smtp_sess_feed(f->s, line + used, strlen(line) - used);
    size_t n;
    const char *out = smtp_sess_output(f->s, &n);
    return out ? out : "";
}

static void test_connect(void **state)
{
    fixture *f = *state;
    assert_string_equal(start(f, "SMTP", 25, "192.0.2.1", false, 0, 0), "220 mx.example.test ESMTP Sluice\r\n");
    assert_string_equal(start(f, "SMTP", 25, "192.0.2.1", false, 5, 0),
                        "421 4.7.0 mx.example.test Too many connections, try again later\r\n");
    assert_true(smtp_sess_closing(f->s));
    assert_string_equal(start(f, "SMTP", 25, "192.0.2.1", false, 2, 2),
                        "421 4.7.0 mx.example.test Too many connections from your address, try again later\r\n");
    assert_string_equal(start(f, "SMTP", 25, "127.0.0.9", true, 2, 2), "220 mx.example.test ESMTP Sluice\r\n");
    /* PORT_ACCESS: the back-end may use the notification port, nobody else */
    assert_string_equal(start(f, "NOTIFY", 2025, "127.0.0.2", true, 0, 0), "220 mx.example.test ESMTP Sluice\r\n");
    assert_string_equal(start(f, "NOTIFY", 2025, "127.0.0.9", true, 0, 0),
                        "554 5.7.1 Connection refused by access policy\r\n");
    assert_true(smtp_sess_closing(f->s));
}

static void test_rcpt_outsider(void **state)
{
    fixture *f = *state;
    start(f, "SMTP", 25, "192.0.2.1", false, 0, 0);
    say(f, "EHLO client.test");
    assert_string_equal(say(f, "MAIL FROM:<x@elsewhere.test> SIZE=5000"),
                        "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
    assert_string_equal(say(f, "MAIL FROM:<x@elsewhere.test>"), "250 2.1.0 Ok\r\n");
    assert_string_equal(say(f, "RCPT TO:<alice@example.test>"), "250 2.1.5 Ok\r\n");
    assert_string_equal(say(f, "RCPT TO:<nobody@example.test>"),
                        "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in local "
                        "recipient table\r\n");
    assert_string_equal(say(f, "RCPT TO:<dave@example.test>"),
                        "450 4.2.1 <dave@example.test>: Recipient address rejected: mailbox inactive\r\n");
    assert_string_equal(say(f, "RCPT TO:<x@elsewhere.test>"), "550 5.7.1 <x@elsewhere.test>: Relay access denied\r\n");
    assert_string_equal(say(f, "RCPT TO:<Postmaster>"), "250 2.1.5 Ok\r\n"); /* RFC 5321 4.5.1 */
    assert_string_equal(say(f, "RCPT TO:<staff@example.test>"), "250 2.1.5 Ok\r\n");
    assert_string_equal(say(f, "RCPT TO:<alice@example.test>"), "452 4.5.3 Error: too many recipients\r\n");
}

/* Statuses as Messaging Server applies them: domain first, then the entry; the first non-active
 * value wins; inactive/overquota/unknown are temporary, deleted/removed/disabled permanent, hold
 * accepts into the hold channel; mailRejectText is the reply text. */
static void test_rcpt_statuses(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *rcpt, *reply;
    } cases[] = {
        {"over@example.test", "450 4.2.1 <over@example.test>: Recipient address rejected: mailbox overquota"},
        {"del@example.test", "550 5.2.1 <del@example.test>: Recipient address rejected: mailbox deleted"},
        {"rem@example.test", "550 5.2.1 <rem@example.test>: Recipient address rejected: mailbox removed"},
        {"both@example.test", "450 4.2.1 <both@example.test>: Recipient address rejected: mailbox inactive"},
        {"odd@example.test", "450 4.2.1 <odd@example.test>: Recipient address rejected: mailbox sleeping"},
        {"closed@example.test", "550 5.2.1 <closed@example.test>: Recipient address rejected: This mailbox was closed in 2025"},
        {"u@closed.test", "450 4.1.2 <u@closed.test>: Recipient address rejected: domain inactive"},
        {"u@gone.test", "550 5.1.2 <u@gone.test>: Recipient address rejected: domain deleted"},
        {"held@example.test", "250 2.1.5 Ok"},
    };
    start(f, "SMTP", 25, "192.0.2.1", false, 0, 0);
    say(f, "EHLO client.test");
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        say(f, "RSET");
        say(f, "MAIL FROM:<x@elsewhere.test>");
        char cmd[128], want[256];
        snprintf(cmd, sizeof cmd, "RCPT TO:<%s>", cases[i].rcpt);
        snprintf(want, sizeof want, "%s\r\n", cases[i].reply);
        assert_string_equal(say(f, cmd), want);
    }
    assert_int_equal(f->s->n_rcpts, 1);
    assert_string_equal(f->s->rcpts[0].channel, "hold");
}

/* Size limits of the entry (mailMsgMaxBlocks) and the domain (mailDomainMsgMaxBlocks), in blocks
 * of block_size (1024): a declared SIZE over the limit is refused at RCPT, otherwise the limit
 * goes with the recipient for the end of data. */
static void test_rcpt_size_limits(void **state)
{
    fixture *f = *state;
    start(f, "SMTP", 25, "192.0.2.1", false, 0, 0);
    say(f, "EHLO client.test");
    say(f, "MAIL FROM:<x@elsewhere.test> SIZE=1500");
    assert_string_equal(say(f, "RCPT TO:<small@example.test>"),
                        "552 5.3.4 Message size exceeds the recipient's limit\r\n");
    assert_string_equal(say(f, "RCPT TO:<u@tiny.test>"), "250 2.1.5 Ok\r\n"); /* 2 blocks: 2048 */
    assert_string_equal(say(f, "RCPT TO:<alice@example.test>"), "250 2.1.5 Ok\r\n");
    say(f, "RSET");
    say(f, "MAIL FROM:<x@elsewhere.test>");
    assert_string_equal(say(f, "RCPT TO:<small@example.test>"), "250 2.1.5 Ok\r\n");
    assert_string_equal(say(f, "RCPT TO:<u@tiny.test>"), "250 2.1.5 Ok\r\n");
    assert_int_equal(f->s->rcpts[0].max_size, 1024);
    assert_int_equal(f->s->rcpts[1].max_size, 2048);
}

/* Group submission rules, decided before any member is expanded. */
static void test_rcpt_groups(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *from, *rcpt, *reply, *channel;
    } cases[] = {
        {"alice@example.test", "list@example.test", "250 2.1.5 Ok", "tcp_local"},
        {"bob@elsewhere.test", "list@example.test",
         "550 5.7.1 <list@example.test>: Not authorized to send to this group", NULL},
        {"alice@example.test", "dnlist@example.test", "250 2.1.5 Ok", "tcp_local"}, /* the sender's entry DN */
        {"carol@example.test", "dnlist@example.test",
         "550 5.7.1 <dnlist@example.test>: Not authorized to send to this group", NULL},
        {"x@sub.example.test", "mod@example.test", "250 2.1.5 Ok", "tcp_local"},
        {"x@elsewhere.test", "mod@example.test", "250 2.1.5 Ok", "l"}, /* to the moderator instead */
        {"x@elsewhere.test", "authonly@example.test", "550 5.7.1 <authonly@example.test>: Log in first", NULL},
        {"x@spammy.test", "nospam@example.test", "550 5.7.1 <nospam@example.test>: Not authorized to send to this group",
         NULL},
        {"x@fine.test", "nospam@example.test", "250 2.1.5 Ok", "tcp_local"},
    };
    start(f, "SMTP", 25, "192.0.2.1", false, 0, 0);
    say(f, "EHLO client.test");
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        say(f, "RSET");
        char cmd[128], want[256];
        snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>", cases[i].from);
        assert_string_equal(say(f, cmd), "250 2.1.0 Ok\r\n");
        snprintf(cmd, sizeof cmd, "RCPT TO:<%s>", cases[i].rcpt);
        snprintf(want, sizeof want, "%s\r\n", cases[i].reply);
        assert_string_equal(say(f, cmd), want);
        if (!cases[i].channel) continue;
        assert_int_equal(f->s->n_rcpts, 1);
        assert_string_equal(f->s->rcpts[0].channel, cases[i].channel);
    }
}

/* A local sender's recipient limit (452 past it) and cutoff (past it the whole transaction is
 * refused: recipients already accepted are dropped). */
static void test_sender_recipient_limits(void **state)
{
    fixture *f = *state;
    f->ctx.conf->opt.max_recipients = 100;
    start(f, "SMTP", 25, "127.0.0.9", true, 0, 0);
    say(f, "EHLO client.test");
    say(f, "MAIL FROM:<limited@example.test>");
    assert_string_equal(say(f, "RCPT TO:<a@elsewhere.test>"), "250 2.1.5 Ok\r\n");
    assert_string_equal(say(f, "RCPT TO:<b@elsewhere.test>"), "250 2.1.5 Ok\r\n");
    assert_string_equal(say(f, "RCPT TO:<c@elsewhere.test>"), "452 4.5.3 Error: too many recipients\r\n");
    assert_string_equal(say(f, "RCPT TO:<d@elsewhere.test>"),
                        "550 5.5.3 Error: too many recipients, the transaction is refused\r\n");
    assert_int_equal(f->s->n_rcpts, 0);
    assert_string_equal(say(f, "RCPT TO:<e@elsewhere.test>"),
                        "550 5.5.3 Error: too many recipients, the transaction is refused\r\n");
    /* a new transaction starts afresh */
    say(f, "RSET");
    say(f, "MAIL FROM:<limited@example.test>");
    assert_string_equal(say(f, "RCPT TO:<a@elsewhere.test>"), "250 2.1.5 Ok\r\n");
}

static void test_rcpt_internal_relays(void **state)
{
    fixture *f = *state;
    start(f, "SMTP", 25, "127.0.0.9", true, 0, 0);
    say(f, "EHLO client.test");
    say(f, "MAIL FROM:<>");
    assert_string_equal(say(f, "RCPT TO:<x@elsewhere.test>"), "250 2.1.5 Ok\r\n");
}

static void test_auth_off_loop(void **state)
{
    fixture *f = *state;
    start(f, "SMTP", 25, "192.0.2.1", false, 0, 0);
    say(f, "EHLO client.test");
    /* "\0alice@example.test\0wrong", then the right password; an inactive user never passes */
    assert_string_equal(say(f, "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw=="),
                        "535 5.7.8 Authentication credentials invalid\r\n");
    assert_string_equal(say(f, "AUTH PLAIN AGRhdmVAZXhhbXBsZS50ZXN0AHNlY3JldA=="),
                        "535 5.7.8 Authentication credentials invalid\r\n");
    assert_string_equal(say(f, "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ="), "235 2.7.0 Authentication successful\r\n");
    /* authenticated: relaying is allowed */
    say(f, "MAIL FROM:<alice@example.test>");
    assert_string_equal(say(f, "RCPT TO:<x@elsewhere.test>"), "250 2.1.5 Ok\r\n");
}

/* A session freed while its AUTH check runs on the worker: the answer is dropped, nothing leaks. */
static void test_auth_abandoned(void **state)
{
    fixture *f = *state;
    start(f, "SMTP", 25, "192.0.2.1", false, 0, 0);
    say(f, "EHLO client.test");
    smtp_sess_output_clear(f->s);
    const char *line = "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n";
    smtp_sess_feed(f->s, line, strlen(line));
    assert_true(smtp_sess_waiting(f->s));
    smtp_sess_free(f->s);
    f->s = NULL;
    struct timeval tv = {0, 200000};
    event_base_loopexit(f->ctx.base, &tv);
    event_base_dispatch(f->ctx.base); /* the completion runs and finds no session */
}

/* reject_mode=soft: refusals that rest on local data become 4xx; the others stay. auto without a
 * resolver cannot tell, so it is soft too. */
static void test_reject_mode_soft(void **state)
{
    fixture *f = *state;
    for (int mode = REJECT_SOFT; mode <= REJECT_AUTO; mode++) {
        f->ctx.conf->opt.reject_mode = (enum reject_mode)mode;
        start(f, "SMTP", 25, "192.0.2.1", false, 0, 0);
        say(f, "EHLO client.test");
        assert_string_equal(say(f, "MAIL FROM:<x@elsewhere.test> SIZE=5000"),
                            "552 5.3.4 Message size exceeds fixed maximum message size\r\n"); /* not local data */
        say(f, "MAIL FROM:<x@elsewhere.test> SIZE=1500");
        assert_string_equal(say(f, "RCPT TO:<nobody@example.test>"),
                            "450 4.1.1 <nobody@example.test>: Recipient address rejected: User unknown in local "
                            "recipient table\r\n");
        assert_string_equal(say(f, "RCPT TO:<x@elsewhere.test>"), "450 4.7.1 <x@elsewhere.test>: Relay access denied\r\n");
        assert_string_equal(say(f, "RCPT TO:<del@example.test>"),
                            "450 4.2.1 <del@example.test>: Recipient address rejected: mailbox deleted\r\n");
        assert_string_equal(say(f, "RCPT TO:<small@example.test>"),
                            "452 4.3.4 Message size exceeds the recipient's limit\r\n");
    }
}

/* The last MX is the host of the highest preference number (several may share it). */
static void test_fleet_last_mx(void **state)
{
    (void)state;
    dns_mx mx[] = {{"mx1.example.test", 10}, {"mx3.example.test", 30}, {"MX4.example.test", 30}, {"mx2.example.test", 20}};
    assert_true(fleet_is_last_mx("mx3.example.test", mx, 4));
    assert_true(fleet_is_last_mx("mx4.example.test", mx, 4));
    assert_false(fleet_is_last_mx("mx1.example.test", mx, 4));
    assert_false(fleet_is_last_mx("mx2.example.test", mx, 4));
    assert_false(fleet_is_last_mx("other.test", mx, 4));
    assert_true(fleet_is_last_mx("mx1.example.test", mx, 1));
    verdict v = verdict_refuse(VERDICT_ACCESS, false, NULL);
    v.code = 554;
    verdict_set_status(&v, "5.7.26");
    fleet_soften(&v);
    assert_int_equal(verdict_code(&v), 421);
    assert_string_equal(v.status, "4.7.26");
}

static void test_verdict_table(void **state)
{
    (void)state;
    strbuf out = {0};
    verdict v = verdict_refuse(VERDICT_UNKNOWN_USER, true, "a@b.test");
    verdict_reply(&v, "mx", &out);
    assert_string_equal(out.data, "450 4.1.1 <a@b.test>: Recipient address rejected: User unknown in local "
                                  "recipient table");
    assert_true(verdict_local_data(v.cls));
    sb_reset(&out);
    verdict_free(&v);
    v = verdict_refuse(VERDICT_LOOKUP_FAILED, false, NULL); /* never permanent */
    assert_true(v.temp);
    verdict_reply(&v, "mx", &out);
    assert_string_equal(out.data, "451 4.3.0 Address lookup failed, try again later");
    sb_reset(&out);
    v = verdict_refuse(VERDICT_ACCESS, false, NULL);
    v.code = 554;
    verdict_set_status(&v, "5.7.26");
    verdict_set_text(&v, "Go away");
    v.table = "FROM_ACCESS";
    verdict_reply(&v, "mx", &out);
    assert_string_equal(out.data, "554 5.7.26 Go away");
    sb_reset(&out);
    verdict_why(&v, &out);
    assert_string_equal(out.data, "class=access table=FROM_ACCESS");
    verdict_free(&v);
    sb_reset(&out);
    v = verdict_refuse(VERDICT_ROUTE, false, "u@x.test");
    verdict_set_text(&v, "Unknown-domain");
    verdict_reply(&v, "mx", &out);
    assert_string_equal(out.data, "550 5.1.2 <u@x.test>: Recipient address rejected: Unknown-domain");
    verdict_free(&v);
    for (int c = 0; c < VERDICT__COUNT; c++) assert_string_not_equal(verdict_class_name((verdict_class)c), "?");
    sb_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rcpt_outsider, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rcpt_internal_relays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rcpt_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rcpt_size_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rcpt_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_recipient_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_off_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_abandoned, setup, teardown),
        cmocka_unit_test(test_verdict_table),
        cmocka_unit_test_setup_teardown(test_reject_mode_soft, setup, teardown),
        cmocka_unit_test(test_fleet_last_mx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
