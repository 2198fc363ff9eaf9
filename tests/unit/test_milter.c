/*
 * test_milter.c - the milter protocol engine (scan/milter.h) driven with scripts of milter
 * replies, no sockets: each step starts a stage (or feeds raw bytes) and checks exactly what the
 * engine wrote (packets shown as text) and how the stage was answered; then milter_mods_apply.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scan/milter.h"

/* ---- packets as text ------------------------------------------------------------------ */

/* show_packets - the packets of buf as "C data" lines; NUL shown as '|', other bytes < 32 as \xNN. */
static char *show_packets(const strbuf *buf)
{
    strbuf sb;
    sb_init(&sb);
    size_t i = 0;
    while (i + 5 <= buf->len) {
        const unsigned char *u = (const unsigned char *)buf->data + i;
        size_t n = (size_t)u[0] << 24 | (size_t)u[1] << 16 | (size_t)u[2] << 8 | u[3];
        if (sb.len) sb_putc(&sb, '\n');
        sb_putc(&sb, (char)u[4]);
        if (n > 1) sb_putc(&sb, ' ');
        if (n > 200) { /* body chunks: their size only */
            sb_printf(&sb, "<%zu bytes>", n - 1);
        } else {
            for (size_t k = 5; k < 4 + n && i + k < buf->len; k++) {
                unsigned char c = u[k];
                if (!c) sb_putc(&sb, '|');
                else if (c < 32 || c >= 127) sb_printf(&sb, "\\x%02x", c);
                else sb_putc(&sb, (char)c);
            }
        }
        i += 4 + n;
    }
    if (i != buf->len) sb_puts(&sb, "<trailing>");
    return sb_steal(&sb);
}

/* packet - append a packet cmd + data[0, n) to sb. */
static void packet(strbuf *sb, char cmd, const void *data, size_t n)
{
    uint32_t l = (uint32_t)n + 1;
    char h[5] = {(char)(l >> 24), (char)(l >> 16), (char)(l >> 8), (char)l, cmd};
    sb_append(sb, h, 5);
    sb_append(sb, data, n);
}

/* be32 - append v big-endian. */
static void be32(strbuf *sb, uint32_t v)
{
    char b[4] = {(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v};
    sb_append(sb, b, 4);
}

/*
 * reply - the packets for a reply script: replies separated by '~', each a command letter, then
 * for 'y' 'q' '+' '-' the text; 'h' "name=value"; 'i'/'m' "index,name=value"; '2'/'e' "addr,args";
 * 'b' text ('\n' as is); 'O' "proto" in hex (version 6, every action).
 */
static void reply(strbuf *sb, const char *script)
{
    char *copy = xstrdup(script), *save = NULL;
    for (char *r = strtok_r(copy, "~", &save); r; r = strtok_r(NULL, "~", &save)) {
        char cmd = r[0];
        const char *arg = r + 1;
        strbuf d;
        sb_init(&d);
        switch (cmd) {
        case 'O':
            be32(&d, 6);
            be32(&d, 0x1ff);
            be32(&d, (uint32_t)strtoul(arg, NULL, 16));
            break;
        case 'y': case 'q': case '+': case '-':
            sb_puts(&d, arg);
            sb_putc(&d, '\0');
            break;
        case 'i': case 'm':
            be32(&d, (uint32_t)strtoul(arg, NULL, 10));
            arg = strchr(arg, ',') + 1;
            /* fall through */
        case 'h': {
            const char *eq = strchr(arg, '=');
            sb_append(&d, arg, (size_t)(eq - arg));
            sb_putc(&d, '\0');
            sb_puts(&d, eq + 1);
            sb_putc(&d, '\0');
            break;
        }
        case '2': case 'e': {
            const char *c = strchr(arg, ',');
            sb_append(&d, arg, c ? (size_t)(c - arg) : strlen(arg));
            sb_putc(&d, '\0');
            if (c) {
                sb_puts(&d, c + 1);
                sb_putc(&d, '\0');
            }
            break;
        }
        case 'b': sb_puts(&d, arg); break;
        default: break;
        }
        packet(sb, cmd, d.data, d.len);
        sb_free(&d);
    }
    free(copy);
}

/* ---- a driver -------------------------------------------------------------------------- */

typedef struct {
    milter_engine *e;
    strbuf out;
} drv;

/* drv_take - what the engine wrote since the last call, as text (caller frees). */
static char *drv_take(drv *d)
{
    sb_reset(&d->out);
    milter_take_output(d->e, &d->out);
    return show_packets(&d->out);
}

/* drv_feed - feed a reply script. */
static bool drv_feed(drv *d, const char *script)
{
    strbuf sb;
    sb_init(&sb);
    reply(&sb, script);
    bool p = milter_feed(d->e, sb.data, sb.len);
    sb_free(&sb);
    return p;
}

/* drv_open - an engine negotiated with the milter's protocol flags proto (hex). */
static void drv_open(drv *d, const char *proto)
{
    memset(d, 0, sizeof *d);
    d->e = milter_new(0, 0);
    char *o = drv_take(d);
    assert_string_equal(o, "O |||\\x06||\\x01\\xff|\\x1f\\xf7\\xff");
    free(o);
    assert_int_equal(milter_state(d->e), MILTER_ES_WAIT);
    char s[32];
    snprintf(s, sizeof s, "O%s", proto);
    drv_feed(d, s);
    assert_int_equal(milter_state(d->e), MILTER_ES_READY);
}

static void drv_close(drv *d)
{
    milter_free(d->e);
    sb_free(&d->out);
}

/* expect - the engine wrote out and is in state st with action a (and REPLYCODE line). */
static void expect(drv *d, const char *out, enum milter_estate st, enum milter_action a, const char *line)
{
    char *o = drv_take(d);
    assert_string_equal(o, out);
    free(o);
    assert_int_equal(milter_state(d->e), st);
    if (st == MILTER_ES_WAIT) return;
    milter_reply r = milter_reply_get(d->e);
    assert_string_equal(milter_action_name(r.action), milter_action_name(a));
    if (line) assert_string_equal(r.line, line);
}

static const char *const no_args[] = {NULL};
static const milter_macro mac_conn[] = {{"j", "mx.test"}, {"{daemon_name}", "sluice"}, {"{client_addr}", "192.0.2.1"}};

/* ---- tests ------------------------------------------------------------------------------- */

/* test_negotiation - flags the milter asks for are masked by ours; events it declined are not sent. */
static void test_negotiation(void **state)
{
    (void)state;
    drv d;
    drv_open(&d, "800883"); /* 0x800000 (unknown), RCPT_REJ (not offered), NOCONNECT, NOHELO, NR_HDR */
    uint32_t act, proto;
    milter_negotiated(d.e, &act, &proto);
    assert_int_equal(act, 0x1ff);
    assert_int_equal(proto, SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NR_HDR);
    milter_connect(d.e, "client.test", '4', 25, "192.0.2.1", mac_conn, 3);
    expect(&d, "", MILTER_ES_READY, MILTER_CONTINUE, NULL);
    milter_helo(d.e, "client.test", NULL, 0);
    expect(&d, "", MILTER_ES_READY, MILTER_CONTINUE, NULL);
    milter_mail(d.e, "<a@b.test>", no_args, 0, NULL, 0);
    expect(&d, "M <a@b.test>|", MILTER_ES_WAIT, 0, NULL);
    drv_feed(&d, "c");
    expect(&d, "", MILTER_ES_READY, MILTER_CONTINUE, NULL);
    /* NR_HDR: headers go out without waiting; EOH waits */
    const char *msg = "Subject\t: hi\r\nX-A:  two\r\n\tlines\r\n\r\nbody\r\n";
    milter_message(d.e, msg, strlen(msg), NULL, 0, NULL, 0, NULL, 0);
    expect(&d, "T", MILTER_ES_WAIT, 0, NULL);
    drv_feed(&d, "c");
    expect(&d, "L Subject|hi|\nL X-A|two\\x0a\\x09lines|\nN", MILTER_ES_WAIT, 0, NULL);
    drv_feed(&d, "c");
    expect(&d, "B body\\x0d\\x0a", MILTER_ES_WAIT, 0, NULL);
    drv_feed(&d, "c");
    expect(&d, "E", MILTER_ES_WAIT, 0, NULL);
    drv_feed(&d, "c");
    expect(&d, "", MILTER_ES_READY, MILTER_CONTINUE, NULL);
    drv_close(&d);
}

/* test_connect_packet - SMFIC_CONNECT with macros, for IPv4, IPv6 and an unknown address. */
static void test_connect_packet(void **state)
{
    (void)state;
    static const struct {
        char fam;
        const char *addr, *out;
    } cases[] = {
        {'4', "192.0.2.1", "D Cj|mx.test|{daemon_name}|sluice|{client_addr}|192.0.2.1|\nC client.test|4|\\x19192.0.2.1|"},
        {'6', "2001:db8::1", "D Cj|mx.test|{daemon_name}|sluice|{client_addr}|192.0.2.1|\nC client.test|6|\\x192001:db8::1|"},
        {'U', NULL, "D Cj|mx.test|{daemon_name}|sluice|{client_addr}|192.0.2.1|\nC client.test|U"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        drv d;
        drv_open(&d, "0");
        milter_connect(d.e, "client.test", cases[i].fam, 25, cases[i].addr, mac_conn, 3);
        expect(&d, cases[i].out, MILTER_ES_WAIT, 0, NULL);
        drv_close(&d);
    }
}

/* A reply to RCPT and what follows: the answer, and whether the next RCPT is still sent. */
static const struct {
    const char *reply;
    enum milter_action a;
    const char *line;
    bool next_sent;     /* the next RCPT goes to the milter (the reply concerned one recipient) */
    enum milter_action next; /* when not: the next RCPT's answer */
} rcpt_cases[] = {
    {"c", MILTER_CONTINUE, NULL, true, 0},
    {"r", MILTER_REJECT, NULL, true, 0},
    {"t", MILTER_TEMPFAIL, NULL, true, 0},
    {"y550 5.7.1 not this one", MILTER_REPLYCODE, "550 5.7.1 not this one", true, 0},
    {"y451-4.7.1 first\r\n451 4.7.1 second", MILTER_REPLYCODE, "451-4.7.1 first\r\n451 4.7.1 second", true, 0},
    {"p~p~c", MILTER_CONTINUE, NULL, true, 0},
    {"a", MILTER_ACCEPT, NULL, false, MILTER_ACCEPT},
    {"d", MILTER_DISCARD, NULL, false, MILTER_DISCARD},
};

/* test_rcpt_replies - every reply type at RCPT and its finality. */
static void test_rcpt_replies(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(rcpt_cases); i++) {
        drv d;
        drv_open(&d, "0");
        milter_mail(d.e, "<a@b.test>", (const char *[]){"SIZE=10", "BODY=8BITMIME"}, 2, NULL, 0);
        expect(&d, "M <a@b.test>|SIZE=10|BODY=8BITMIME|", MILTER_ES_WAIT, 0, NULL);
        drv_feed(&d, "c");
        milter_rcpt(d.e, "<x@c.test>", no_args, 0, (milter_macro[]){{"{rcpt_addr}", "x@c.test"}}, 1);
        expect(&d, "D R{rcpt_addr}|x@c.test|\nR <x@c.test>|", MILTER_ES_WAIT, 0, NULL);
        bool p = drv_feed(&d, rcpt_cases[i].reply);
        assert_int_equal(p, rcpt_cases[i].reply[0] == 'p');
        expect(&d, "", MILTER_ES_READY, rcpt_cases[i].a, rcpt_cases[i].line);
        milter_rcpt(d.e, "<y@c.test>", no_args, 0, NULL, 0);
        if (rcpt_cases[i].next_sent) {
            expect(&d, "R <y@c.test>|", MILTER_ES_WAIT, 0, NULL);
        } else {
            expect(&d, "", MILTER_ES_READY, rcpt_cases[i].next, NULL);
            /* the message is not sent either; a new MAIL aborts and starts afresh */
            milter_message(d.e, "A: b\r\n\r\nx\r\n", 11, NULL, 0, NULL, 0, NULL, 0);
            expect(&d, "", MILTER_ES_READY, rcpt_cases[i].next, NULL);
            milter_mail(d.e, "<a@b.test>", no_args, 0, NULL, 0);
            expect(&d, "A\nM <a@b.test>|", MILTER_ES_WAIT, 0, NULL);
        }
        drv_close(&d);
    }
}

/* test_session_final - a reject at CONNECT holds for the session; a reject at MAIL for its transaction. */
static void test_session_final(void **state)
{
    (void)state;
    drv d;
    drv_open(&d, "0");
    milter_connect(d.e, "c.test", '4', 25, "192.0.2.1", NULL, 0);
    expect(&d, "C c.test|4|\\x19192.0.2.1|", MILTER_ES_WAIT, 0, NULL);
    drv_feed(&d, "y554 5.7.1 go away");
    expect(&d, "", MILTER_ES_READY, MILTER_REPLYCODE, "554 5.7.1 go away");
    milter_helo(d.e, "c.test", NULL, 0);
    expect(&d, "", MILTER_ES_READY, MILTER_REPLYCODE, "554 5.7.1 go away");
    milter_mail(d.e, "<>", no_args, 0, NULL, 0);
    expect(&d, "", MILTER_ES_READY, MILTER_REPLYCODE, "554 5.7.1 go away");
    drv_close(&d);

    drv_open(&d, "0");
    milter_mail(d.e, "<a@b>", no_args, 0, NULL, 0);
    free(drv_take(&d));
    drv_feed(&d, "t");
    expect(&d, "", MILTER_ES_READY, MILTER_TEMPFAIL, NULL);
    milter_rcpt(d.e, "<x@y>", no_args, 0, NULL, 0);
    expect(&d, "", MILTER_ES_READY, MILTER_TEMPFAIL, NULL);
    milter_abort(d.e);
    expect(&d, "A", MILTER_ES_READY, MILTER_CONTINUE, NULL);
    milter_mail(d.e, "<a@b>", no_args, 0, NULL, 0);
    expect(&d, "M <a@b>|", MILTER_ES_WAIT, 0, NULL);
    drv_close(&d);
}

/* test_nr_flags - events the milter will not answer are sent and answered CONTINUE at once. */
static void test_nr_flags(void **state)
{
    (void)state;
    drv d;
    drv_open(&d, "1f000"); /* NR_CONN NR_HELO NR_MAIL NR_RCPT NR_DATA */
    milter_connect(d.e, "c", '4', 1, "192.0.2.1", NULL, 0);
    expect(&d, "C c|4|\\x01192.0.2.1|", MILTER_ES_READY, MILTER_CONTINUE, NULL);
    milter_helo(d.e, "h", NULL, 0);
    expect(&d, "H h|", MILTER_ES_READY, MILTER_CONTINUE, NULL);
    milter_mail(d.e, "<a@b>", no_args, 0, NULL, 0);
    expect(&d, "M <a@b>|", MILTER_ES_READY, MILTER_CONTINUE, NULL);
    milter_rcpt(d.e, "<c@d>", no_args, 0, NULL, 0);
    expect(&d, "R <c@d>|", MILTER_ES_READY, MILTER_CONTINUE, NULL);
    milter_message(d.e, "\r\n", 2, NULL, 0, (milter_macro[]){{"i", "Q1"}}, 1, NULL, 0);
    expect(&d, "T\nD Ni|Q1|\nN", MILTER_ES_WAIT, 0, NULL);
    drv_close(&d);
}

/* test_body_chunks - a body of 150000 bytes goes out in chunks of at most 65535; SKIP ends it. */
static void test_body_chunks(void **state)
{
    (void)state;
    size_t blen = 150000;
    strbuf msg;
    sb_init(&msg);
    sb_puts(&msg, "Subject: big\r\n\r\n");
    for (size_t i = 0; i < blen; i++) sb_putc(&msg, (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'x');
    for (int skip = 0; skip < 2; skip++) {
        drv d;
        drv_open(&d, skip ? "400" : "0");
        milter_message(d.e, msg.data, msg.len, NULL, 0, NULL, 0, NULL, 0);
        expect(&d, "T", MILTER_ES_WAIT, 0, NULL);
        drv_feed(&d, "c");
        expect(&d, "L Subject|big|", MILTER_ES_WAIT, 0, NULL);
        drv_feed(&d, "c");
        expect(&d, "N", MILTER_ES_WAIT, 0, NULL);
        drv_feed(&d, "c");
        expect(&d, "B <65535 bytes>", MILTER_ES_WAIT, 0, NULL);
        if (skip) {
            drv_feed(&d, "s");
            expect(&d, "E", MILTER_ES_WAIT, 0, NULL);
        } else {
            drv_feed(&d, "c");
            expect(&d, "B <65535 bytes>", MILTER_ES_WAIT, 0, NULL);
            drv_feed(&d, "c");
            expect(&d, "B <18930 bytes>", MILTER_ES_WAIT, 0, NULL);
            drv_feed(&d, "c");
            expect(&d, "E", MILTER_ES_WAIT, 0, NULL);
        }
        drv_feed(&d, "a");
        expect(&d, "", MILTER_ES_READY, MILTER_ACCEPT, NULL);
        drv_close(&d);
    }
    sb_free(&msg);
}

/* run_eom - an engine negotiated with proto that has sent msg up to EOM (headers, EOH and body answered 'c'). */
static void run_eom(drv *d, const char *proto, const char *msg)
{
    drv_open(d, proto);
    milter_message(d->e, msg, strlen(msg), NULL, 0, NULL, 0, (milter_macro[]){{"i", "QID1"}}, 1);
    for (int i = 0; i < 50 && milter_state(d->e) == MILTER_ES_WAIT; i++) {
        char *o = drv_take(d);
        bool eom = strstr(o, "E") && o[strlen(o) - 1] == 'E';
        free(o);
        if (eom) return;
        drv_feed(d, "c");
    }
    fail_msg("EOM not reached");
}

/* test_modifications - every modification at EOM is collected in order. */
static void test_modifications(void **state)
{
    (void)state;
    drv d;
    run_eom(&d, "0", "Subject: a\r\n\r\nbody\r\n");
    drv_feed(&d, "hX-Added=yes~i0,X-First=1~m1,Subject=new~m2,Subject=~+<n@x>~2<p@x>,NOTIFY=NEVER~-<old@x>~"
                 "e<from@x>,SIZE=5~bnew ~bbody\r\n~qheld~p");
    assert_int_equal(milter_state(d.e), MILTER_ES_WAIT);
    drv_feed(&d, "c");
    milter_reply r = milter_reply_get(d.e);
    assert_int_equal(r.action, MILTER_QUARANTINE);
    assert_string_equal(r.reason, "held");
    const milter_mods *m = r.mods;
    assert_non_null(m);
    assert_int_equal(m->n_hdr, 4);
    assert_int_equal(m->hdr[0].op, MILTER_HDR_ADD);
    assert_string_equal(m->hdr[0].name, "X-Added");
    assert_int_equal(m->hdr[1].op, MILTER_HDR_INSERT);
    assert_int_equal(m->hdr[2].op, MILTER_HDR_CHANGE);
    assert_int_equal(m->hdr[3].index, 2);
    assert_string_equal(m->hdr[3].value, "");
    assert_int_equal(m->add_rcpts.n, 2);
    assert_string_equal(m->add_rcpts.v[1], "<p@x>");
    assert_string_equal(m->add_rcpt_args.v[0], "");
    assert_string_equal(m->add_rcpt_args.v[1], "NOTIFY=NEVER");
    assert_string_equal(m->del_rcpts.v[0], "<old@x>");
    assert_string_equal(m->chgfrom, "<from@x>");
    assert_string_equal(m->chgfrom_args, "SIZE=5");
    assert_true(m->body_replaced);
    assert_string_equal(m->body.data, "new body\r\n");
    strbuf out;
    sb_init(&out);
    milter_mods_apply("Subject: a\r\n\r\nbody\r\n", 20, m, &out);
    assert_string_equal(out.data, "X-First: 1\r\nSubject: new\r\nX-Added: yes\r\n\r\nnew body\r\n");
    sb_free(&out);
    drv_close(&d);
}

/* Replies that make the engine FAILED, each at EOM of a fresh engine (proto 0: every action allowed). */
static const struct {
    const char *name;
    const char *raw;   /* raw bytes (length given), or NULL to use script */
    size_t raw_len;
    const char *script;
    const char *proto; /* the negotiation; NULL = "0" */
} bad_cases[] = {
    {"length too large", "\x00\x02\x00\x00" "c", 5, NULL, NULL},
    {"length zero", "\x00\x00\x00\x00", 4, NULL, NULL},
    {"unknown command", NULL, 0, "Z", NULL},
    {"data after continue", "\x00\x00\x00\x02" "cx", 6, NULL, NULL},
    {"replycode truncated", "\x00\x00\x00\x05" "y550 ", 9, NULL, NULL},
    {"replycode 2xx", NULL, 0, "y250 2.0.0 fine", NULL},
    {"replycode garbage", NULL, 0, "y55x no", NULL},
    {"replycode bad continuation", NULL, 0, "y550 5.7.1 a\r\n550 5.7.1 b", NULL},
    {"replycode codes differ", NULL, 0, "y550-5.7.1 a\r\n554 5.7.1 b", NULL},
    {"replycode control char", NULL, 0, "y550 5.7.1 a\x01", NULL},
    {"header mod truncated", "\x00\x00\x00\x05" "hX\0ab", 9, NULL, NULL},
    {"header mod bad name", NULL, 0, "hX Y=z", NULL},
    {"insheader without index", "\x00\x00\x00\x03" "i\0\0", 7, NULL, NULL},
    {"addrcpt empty", "\x00\x00\x00\x02" "+\0", 6, NULL, NULL},
    {"skip at eom", NULL, 0, "s", NULL},
    {"optneg again", NULL, 0, "O0", NULL},
};

/* test_garbage - malformed replies make the engine FAILED for good. */
static void test_garbage(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(bad_cases); i++) {
        drv d;
        run_eom(&d, bad_cases[i].proto ? bad_cases[i].proto : "0", "A: b\r\n\r\nc\r\n");
        if (bad_cases[i].raw) milter_feed(d.e, bad_cases[i].raw, bad_cases[i].raw_len);
        else drv_feed(&d, bad_cases[i].script);
        if (milter_state(d.e) != MILTER_ES_FAILED) fail_msg("%s: not FAILED", bad_cases[i].name);
        assert_int_equal(milter_reply_get(d.e).action, MILTER_FAILED);
        milter_mail(d.e, "<a@b>", no_args, 0, NULL, 0);
        expect(&d, "", MILTER_ES_FAILED, MILTER_FAILED, NULL);
        drv_close(&d);
    }
}

/* test_garbage_stages - a modification before EOM, a reply while none is awaited, a bad negotiation. */
static void test_garbage_stages(void **state)
{
    (void)state;
    drv d;
    drv_open(&d, "0");
    milter_mail(d.e, "<a@b>", no_args, 0, NULL, 0);
    free(drv_take(&d));
    drv_feed(&d, "hX=y");
    assert_int_equal(milter_state(d.e), MILTER_ES_FAILED);
    drv_close(&d);

    drv_open(&d, "0");
    drv_feed(&d, "c");
    assert_int_equal(milter_state(d.e), MILTER_ES_FAILED);
    drv_close(&d);

    milter_engine *e = milter_new(0, 0);
    strbuf sb;
    sb_init(&sb);
    reply(&sb, "c");
    milter_feed(e, sb.data, sb.len);
    assert_int_equal(milter_state(e), MILTER_ES_FAILED);
    milter_free(e);
    /* version 7 */
    sb_reset(&sb);
    const char v7[] = {0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0};
    packet(&sb, 'O', v7, sizeof v7);
    e = milter_new(0, 0);
    milter_feed(e, sb.data, sb.len);
    assert_int_equal(milter_state(e), MILTER_ES_FAILED);
    milter_free(e);
    sb_free(&sb);

    /* a modification the milter was not allowed (we offered no CHGBODY) */
    e = milter_new(SMFIF_ADDHDRS, 0);
    sb_init(&sb);
    reply(&sb, "O0");
    milter_feed(e, sb.data, sb.len);
    milter_message(e, "\r\n", 2, NULL, 0, NULL, 0, NULL, 0);
    sb_reset(&sb);
    reply(&sb, "c~c~bnew");
    milter_feed(e, sb.data, sb.len);
    assert_int_equal(milter_state(e), MILTER_ES_FAILED);
    milter_free(e);
    sb_free(&sb);
}

/* test_bytewise - replies split at every byte give the same result. */
static void test_bytewise(void **state)
{
    (void)state;
    drv d;
    run_eom(&d, "0", "A: b\r\n\r\nc\r\n");
    strbuf sb;
    sb_init(&sb);
    reply(&sb, "p~hX-A=1~y550 5.7.1 no");
    bool progress = false;
    for (size_t i = 0; i < sb.len; i++) progress |= milter_feed(d.e, sb.data + i, 1);
    assert_true(progress);
    expect(&d, "", MILTER_ES_READY, MILTER_REPLYCODE, "550 5.7.1 no");
    assert_int_equal(milter_reply_get(d.e).mods->n_hdr, 1);
    sb_free(&sb);
    drv_close(&d);
}

/* test_timer_and_mods - each answered step of the message restarts the timer; only the message's answer has mods. */
static void test_timer_and_mods(void **state)
{
    (void)state;
    drv d;
    drv_open(&d, "0");
    milter_mail(d.e, "<a@b>", no_args, 0, NULL, 0);
    free(drv_take(&d));
    drv_feed(&d, "c");
    assert_null(milter_reply_get(d.e).mods);
    milter_message(d.e, "A: b\r\n\r\nc\r\n", 11, NULL, 0, NULL, 0, NULL, 0);
    free(drv_take(&d));
    assert_true(drv_feed(&d, "c"));  /* DATA answered: the header is awaited */
    assert_true(drv_feed(&d, "c"));  /* the header answered: EOH is awaited */
    assert_true(drv_feed(&d, "c"));  /* EOH: the body */
    assert_true(drv_feed(&d, "c"));  /* the body: EOM */
    assert_true(drv_feed(&d, "hX=1")); /* a modification */
    assert_false(drv_feed(&d, "c")); /* answered */
    assert_non_null(milter_reply_get(d.e).mods);
    milter_rcpt(d.e, "<x@y>", no_args, 0, NULL, 0);
    free(drv_take(&d));
    drv_feed(&d, "c");
    assert_null(milter_reply_get(d.e).mods);
    drv_close(&d);
}

/* test_quit - QUIT is written and nothing more is accepted. */
static void test_quit(void **state)
{
    (void)state;
    drv d;
    drv_open(&d, "0");
    milter_quit(d.e);
    expect(&d, "Q", MILTER_ES_FAILED, MILTER_FAILED, NULL);
    drv_close(&d);
}

/* milter_mods_apply cases: header mods as a script for run_eom's EOM, the message, the result. */
static const struct {
    const char *name, *proto, *mods, *msg, *want;
} apply_cases[] = {
    {"chgheader second of its name", "0", "m2,X-T=two", "X-T: a\r\nY: b\r\nx-t: c\r\n\r\nB\r\n",
     "X-T: a\r\nY: b\r\nX-T: two\r\n\r\nB\r\n"},
    {"chgheader delete", "0", "m1,Y=", "X-T: a\r\nY: b\r\n\tfolded\r\nZ: c\r\n\r\nB\r\n", "X-T: a\r\nZ: c\r\n\r\nB\r\n"},
    {"chgheader index 0 is the first", "0", "m0,Y=new", "Y: b\r\nY: c\r\n\r\nB\r\n", "Y: new\r\nY: c\r\n\r\nB\r\n"},
    {"chgheader missing adds", "0", "m3,Y=new", "Y: b\r\n\r\nB\r\n", "Y: b\r\nY: new\r\n\r\nB\r\n"},
    {"chgheader missing delete is nothing", "0", "m3,Y=", "Y: b\r\n\r\nB\r\n", "Y: b\r\n\r\nB\r\n"},
    {"insheader at 0 and 1", "0", "i0,A=1~i1,B=2", "X: x\r\n\r\nB\r\n", "A: 1\r\nB: 2\r\nX: x\r\n\r\nB\r\n"},
    {"insheader past the end", "0", "i99,A=1", "X: x\r\n\r\nB\r\n", "X: x\r\nA: 1\r\n\r\nB\r\n"},
    {"addheader folded with LF", "0", "hDKIM-Signature=v=1;\n\tb=abc\nd=e", "X: x\r\n\r\nB\r\n",
     "X: x\r\nDKIM-Signature: v=1;\r\n\tb=abc\r\n d=e\r\n\r\nB\r\n"},
    {"leading space kept", "100000", "hX-L= spaced", "X: x\r\n\r\nB\r\n", "X: x\r\nX-L: spaced\r\n\r\nB\r\n"},
    {"replbody bare LF", "0", "bline1\nline2\n", "X: x\r\n\r\nold\r\n", "X: x\r\n\r\nline1\r\nline2\r\n"},
    {"replbody empty body", "0", "b", "X: x\r\n\r\nold\r\n", "X: x\r\n\r\n"},
    {"no body at all", "0", "hA=1", "X: x\r\n", "X: x\r\nA: 1\r\n"},
    {"blank before the colon", "0", "m1,Subject=new", "Subject : a\r\n\r\nB\r\n", "Subject: new\r\n\r\nB\r\n"},
    {"no separator", "0", "hA=1", "X: x\r\nnot a header\r\n", "X: x\r\nA: 1\r\n\r\nnot a header\r\n"},
};

/* test_apply - milter_mods_apply on each case. */
static void test_apply(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(apply_cases); i++) {
        drv d;
        run_eom(&d, apply_cases[i].proto, apply_cases[i].msg);
        drv_feed(&d, apply_cases[i].mods);
        drv_feed(&d, "c");
        milter_reply r = milter_reply_get(d.e);
        if (r.action != MILTER_CONTINUE) fail_msg("%s: %s", apply_cases[i].name, milter_action_name(r.action));
        strbuf out;
        sb_init(&out);
        milter_mods_apply(apply_cases[i].msg, strlen(apply_cases[i].msg), r.mods, &out);
        if (strcmp(out.data, apply_cases[i].want))
            fail_msg("%s: got [%s] want [%s]", apply_cases[i].name, out.data, apply_cases[i].want);
        sb_free(&out);
        drv_close(&d);
    }
}

/* test_replycode_check - the REPLYCODE validator alone. */
static void test_replycode_check(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"550", true}, {"550 5.7.1 x", true}, {"421 4.3.0 busy", true}, {"550-a\r\n550 b", true},
        {"250 ok", false}, {"650 x", false}, {"55", false}, {"550x", false}, {"550 a\r\n", false},
        {"550-a\r\n551 b", false}, {"550-a", false}, {"", false}, {"550 a\nb", false},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++)
        if (milter_replycode_check(cases[i].s, strlen(cases[i].s)) != cases[i].ok) fail_msg("%s", cases[i].s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiation),    cmocka_unit_test(test_connect_packet),
        cmocka_unit_test(test_rcpt_replies),   cmocka_unit_test(test_session_final),
        cmocka_unit_test(test_nr_flags),       cmocka_unit_test(test_body_chunks),
        cmocka_unit_test(test_modifications),  cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_garbage_stages), cmocka_unit_test(test_bytewise),
        cmocka_unit_test(test_quit), cmocka_unit_test(test_timer_and_mods),           cmocka_unit_test(test_apply),
        cmocka_unit_test(test_replycode_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
