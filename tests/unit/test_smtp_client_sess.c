/*
 * test_smtp_client_sess.c - the SMTP/LMTP client session engine (smtp/client_sess.h) driven
 * with scripts of server replies, no sockets: each step feeds the server's bytes (or an event
 * of the connection, or a call of the I/O layer) and checks exactly what the engine wrote and
 * which events it queued.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/client_sess.h"
#include "smtp/parse.h"

#define MAX_STEPS 16
#define MAX_RCPTS 4

/* One step: in is server bytes, or an action: @connected @send @tls @tlsfail @closed @timeout @quit. */
typedef struct {
    const char *in;
    const char *out;    /* exactly what the engine wrote during the step */
    const char *events; /* the events it queued, as event_text writes them */
} step;

typedef struct {
    const char *name;
    bool lmtp, chunking;
    enum smtp_client_tls tls;
    const char *data;   /* the message; "Hello\r\n" when NULL */
    bool smtputf8;
    const char *rcpts[MAX_RCPTS];
    step steps[MAX_STEPS];
} script;

/* The engine with what it wrote and the message it sends. */
typedef struct {
    smtp_client *c;
    strbuf out;
    qmsg m;
    qrcpt r[MAX_RCPTS];
    const qrcpt *rp[MAX_RCPTS];
    size_t n;
} drv;

static void drv_emit(void *ctx, const void *p, size_t n)
{
    sb_append(ctx, p, n);
}

/* drv_open - an engine and a message for script s. */
static void drv_open(drv *d, const script *s)
{
    memset(d, 0, sizeof *d);
    smtp_client_params p = {.lmtp = s->lmtp, .helo_name = "client.test", .peer = "mx.test [192.0.2.1]",
                            .tls = s->tls, .chunking = s->chunking, .out = drv_emit, .out_ctx = &d->out};
    d->c = smtp_client_new(&p);
    d->m.sender = "s@client.test";
    d->m.data = s->data ? s->data : "Hello\r\n";
    d->m.data_len = strlen(d->m.data);
    d->m.smtputf8 = s->smtputf8;
    for (; d->n < MAX_RCPTS && s->rcpts[d->n]; d->n++) {
        d->r[d->n].addr = (char *)s->rcpts[d->n];
        d->rp[d->n] = &d->r[d->n];
    }
}

static void drv_close(drv *d)
{
    smtp_client_free(d->c);
    sb_free(&d->out);
}

/* event_text - append one event: "ready;", "rcpt 1 TEMP 450 4.2.0;", "failed 421 4.3.2;"... */
static void event_text(smtp_client *c, const smtp_client_event *ev, strbuf *sb)
{
    static const char *res[] = {"OK", "TEMP", "PERM", "ERR"};
    static const char *names[] = {"tls", "tls-refused", "ready", "sent", "rcpt", "done", "failed"};
    sb_puts(sb, names[ev->type]);
    if (ev->type == SMTP_CEV_TLS_REFUSED) sb_printf(sb, " %d", ev->code);
    if (ev->type == SMTP_CEV_RCPT) {
        const smtp_client_result *r = smtp_client_result_of(c, ev->index);
        sb_printf(sb, " %zu %s %d %s%s", ev->index, res[r->res], r->code, r->status, r->uncertain ? " uncertain" : "");
    }
    if (ev->type == SMTP_CEV_FAILED) {
        const smtp_client_failure *f = smtp_client_failure_of(c);
        sb_printf(sb, " %d %s", f->code, f->status);
    }
    sb_putc(sb, ';');
}

/* drv_do - run one step's input. */
static void drv_do(drv *d, const char *in)
{
    if (!strcmp(in, "@connected")) smtp_client_connected(d->c);
    else if (!strcmp(in, "@send")) smtp_client_send(d->c, &d->m, d->rp, d->n);
    else if (!strcmp(in, "@tls")) smtp_client_tls_started(d->c);
    else if (!strcmp(in, "@tlsfail")) smtp_client_tls_failed(d->c, "bad record mac");
    else if (!strcmp(in, "@closed")) smtp_client_closed(d->c, "lost connection");
    else if (!strcmp(in, "@timeout")) smtp_client_timeout(d->c);
    else if (!strcmp(in, "@quit")) smtp_client_quit(d->c);
    else smtp_client_feed(d->c, in, strlen(in));
}

/* drv_events - every queued event as text. */
static void drv_events(drv *d, strbuf *sb)
{
    smtp_client_event ev;
    while (smtp_client_next_event(d->c, &ev)) event_text(d->c, &ev, sb);
}

/* run_script - every step of s, failing with the script's name and the step's number. */
static void run_script(const script *s)
{
    drv d;
    drv_open(&d, s);
    for (size_t k = 0; k < MAX_STEPS && s->steps[k].in; k++) {
        const step *st = &s->steps[k];
        strbuf ev = {0};
        sb_reset(&d.out);
        drv_do(&d, st->in);
        drv_events(&d, &ev);
        const char *got_out = d.out.data ? d.out.data : "", *got_ev = ev.data ? ev.data : "";
        if (strcmp(got_out, st->out ? st->out : ""))
            fail_msg("%s, step %zu: wrote\n[%s]\nwant\n[%s]", s->name, k, got_out, st->out ? st->out : "");
        if (strcmp(got_ev, st->events ? st->events : ""))
            fail_msg("%s, step %zu: events\n[%s]\nwant\n[%s]", s->name, k, got_ev, st->events ? st->events : "");
        sb_free(&ev);
    }
    drv_close(&d);
}

/* The usual opening: connected, 220, EHLO. */
#define OPEN {"@connected", "", ""}, {"220 mx.test ESMTP\r\n", "EHLO client.test\r\n", ""}
#define EHLO_PIPE "250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
#define MAIL "MAIL FROM:<s@client.test>\r\n"
#define RCPT(a) "RCPT TO:<" a ">\r\n"
#define BODY "Hello\r\n.\r\n"

static const script smtp_scripts[] = {
    {"pipelined success", .rcpts = {"a@x.test", "b@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test") "DATA\r\n", ""},
        {"250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n", BODY, "sent;"},
        {"250 2.0.0 queued as X\r\n", "", "rcpt 0 OK 250 2.0.0;rcpt 1 OK 250 2.0.0;done;"},
        {"@quit", "QUIT\r\n", ""}}},
    {"lock-step without PIPELINING", .rcpts = {"a@x.test", "b@x.test"}, .steps = {OPEN,
        {"250-mx.test\r\n250 SIZE\r\n", "", "ready;"},
        {"@send", "MAIL FROM:<s@client.test> SIZE=7\r\n", ""},
        {"250 ok\r\n", RCPT("a@x.test"), ""},
        {"250 ok\r\n", RCPT("b@x.test"), ""},
        {"250 ok\r\n", "DATA\r\n", ""},
        {"354 go\r\n", BODY, "sent;"},
        {"250 ok\r\n", "", "rcpt 0 OK 250 2.0.0;rcpt 1 OK 250 2.0.0;done;"}}},
    {"per-recipient 2xx, 4xx and 5xx", .rcpts = {"a@x.test", "b@x.test", "c@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test") RCPT("c@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n450 4.2.0 greylisted\r\n550 5.1.1 unknown\r\n354 go\r\n", BODY,
         "rcpt 1 TEMP 450 4.2.0;rcpt 2 PERM 550 5.1.1;sent;"},
        {"250 2.0.0 ok\r\n", "", "rcpt 0 OK 250 2.0.0;done;"}}},
    {"every RCPT refused, pipelined: DATA refused, RSET before the next MAIL", .rcpts = {"a@x.test", "b@x.test"},
     .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test") "DATA\r\n", ""},
        {"250 ok\r\n550 5.1.1 no\r\n451 4.3.0 later\r\n554 5.5.1 no valid recipients\r\n", "",
         "rcpt 0 PERM 550 5.1.1;rcpt 1 TEMP 451 4.3.0;done;"},
        {"@send", "RSET\r\n" MAIL RCPT("a@x.test") RCPT("b@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", BODY, "sent;"},
        {"250 ok\r\n", "", "rcpt 0 OK 250 2.0.0;rcpt 1 OK 250 2.0.0;done;"}}},
    {"every RCPT refused, lock-step: no DATA, RSET answered before the next MAIL", .rcpts = {"a@x.test"},
     .steps = {OPEN,
        {"250 mx.test\r\n", "", "ready;"},
        {"@send", MAIL, ""},
        {"250 ok\r\n", RCPT("a@x.test"), ""},
        {"550 5.1.1 no\r\n", "", "rcpt 0 PERM 550 5.1.1;done;"},
        {"@send", "RSET\r\n", ""},
        {"250 ok\r\n", MAIL, ""},
        {"250 ok\r\n", RCPT("a@x.test"), ""},
        {"250 ok\r\n", "DATA\r\n", ""},
        {"354 go\r\n", BODY, "sent;"},
        {"250 ok\r\n", "", "rcpt 0 OK 250 2.0.0;done;"}}},
    {"4xx to MAIL, lock-step: every recipient temporary, session usable", .rcpts = {"a@x.test", "b@x.test"},
     .steps = {OPEN,
        {"250 mx.test\r\n", "", "ready;"},
        {"@send", MAIL, ""},
        {"451 4.3.0 try later\r\n", "", "rcpt 0 TEMP 451 4.3.0;rcpt 1 TEMP 451 4.3.0;done;"},
        {"@send", MAIL, ""}}},
    {"5xx to MAIL, pipelined: the rest is drained, no content", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""},
        {"553 5.1.8 bad sender\r\n", "", "rcpt 0 PERM 553 5.1.8;"},
        {"503 5.5.1 need MAIL\r\n554 5.5.1 no valid recipients\r\n", "", "done;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""}}},
    {"354 although nobody was accepted: a lone dot", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""},
        {"250 ok\r\n550 no\r\n354 go\r\n", ".\r\n", "rcpt 0 PERM 550 5.0.0;"},
        {"554 no valid recipients\r\n", "", "done;"}}},
    {"421 after MAIL", .rcpts = {"a@x.test", "b@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test") "DATA\r\n", ""},
        {"421 4.3.2 shutting down\r\n", "", "rcpt 0 TEMP 421 4.3.2;rcpt 1 TEMP 421 4.3.2;failed 421 4.3.2;"},
        {"250 ignored\r\n", "", ""}}},
    {"421 after RCPT", .rcpts = {"a@x.test", "b@x.test", "c@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test") RCPT("c@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n550 5.1.1 no\r\n421 4.4.2 bye\r\n", "",
         "rcpt 1 PERM 550 5.1.1;rcpt 0 TEMP 421 4.4.2;rcpt 2 TEMP 421 4.4.2;failed 421 4.4.2;"}}},
    {"421 to DATA", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n421 closing\r\n", "", "rcpt 0 TEMP 421 4.0.0;failed 421 4.0.0;"}}},
    {"421 after the content: not uncertain, the server said no", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n354 go\r\n", BODY, "sent;"},
        {"421 4.3.0 out of memory\r\n", "", "rcpt 0 TEMP 421 4.3.0;failed 421 4.3.0;"}}},
    {"4xx and 5xx to the end of data", .rcpts = {"a@x.test", "b@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", BODY, "sent;"},
        {"452 4.3.1 disk full\r\n", "", "rcpt 0 TEMP 452 4.3.1;rcpt 1 TEMP 452 4.3.1;done;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test") "DATA\r\n", ""}}},
    {"connection lost after the content: uncertain", .rcpts = {"a@x.test", "b@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n", BODY, "rcpt 1 PERM 550 5.0.0;sent;"},
        {"@closed", "", "rcpt 0 TEMP 0 4.4.2 uncertain;failed 0 4.4.2;"}}},
    {"timeout during the transaction", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"250 mx.test\r\n", "", "ready;"},
        {"@send", MAIL, ""},
        {"250 ok\r\n", RCPT("a@x.test"), ""},
        {"@timeout", "", "rcpt 0 TEMP 0 4.4.2;failed 0 4.4.2;"}}},
    {"unexpected 250 to DATA", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n250 what\r\n", "QUIT\r\n", "rcpt 0 TEMP 250 4.5.0;failed 250 4.5.0;"}}},
    {"connection reuse: a second transaction follows a finished one without RSET", .rcpts = {"a@x.test"},
     .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n354 go\r\n", BODY, "sent;"},
        {"250 ok\r\n", "", "rcpt 0 OK 250 2.0.0;done;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n354 go\r\n", BODY, "sent;"},
        {"250 2.0.0 again\r\n", "", "rcpt 0 OK 250 2.0.0;done;"}}},
    {"greeting 554", .rcpts = {"a@x.test"}, .steps = {
        {"@connected", "", ""},
        {"554 5.7.1 go away\r\n", "QUIT\r\n", "failed 554 4.7.1;"}}},
    {"greeting 421", .rcpts = {"a@x.test"}, .steps = {
        {"@connected", "", ""},
        {"421 4.3.2 busy\r\n", "", "failed 421 4.3.2;"}}},
    {"greeting 450 without enhanced code", .rcpts = {"a@x.test"}, .steps = {
        {"@connected", "", ""},
        {"450 busy\r\n", "QUIT\r\n", "failed 450 4.0.0;"}}},
    {"EHLO 500: HELO, then no extensions", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"500 5.5.1 what\r\n", "HELO client.test\r\n", ""},
        {"250 mx.test\r\n", "", "ready;"},
        {"@send", MAIL, ""}}},
    {"EHLO 500, HELO 501", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"500 what\r\n", "HELO client.test\r\n", ""},
        {"501 5.5.4 bad name\r\n", "QUIT\r\n", "failed 501 4.5.4;"}}},
    {"EHLO 421", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"421 4.3.2 busy\r\n", "", "failed 421 4.3.2;"}}},
    {"EHLO 451", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"451 4.3.0 later\r\n", "QUIT\r\n", "failed 451 4.3.0;"}}},
    {"STARTTLS offered and used (maytls); what follows the 220 is ignored", .tls = SMTP_CLIENT_TLS_MAY,
     .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"250-mx.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n", "STARTTLS\r\n", ""},
        {"220 2.0.0 go ahead\r\n250 injected\r\n", "", "tls;"},
        {"250 more injected\r\n", "", ""},
        {"@tls", "EHLO client.test\r\n", ""},
        {"250-mx.test\r\n250 PIPELINING\r\n", "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""}}},
    {"STARTTLS required and offered", .tls = SMTP_CLIENT_TLS_MUST, .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"250-mx.test\r\n250 STARTTLS\r\n", "STARTTLS\r\n", ""},
        {"220 go ahead\r\n", "", "tls;"},
        {"@tls", "EHLO client.test\r\n", ""},
        {"250-mx.test\r\n250 STARTTLS\r\n", "", "ready;"}}},
    {"STARTTLS required but absent", .tls = SMTP_CLIENT_TLS_MUST, .rcpts = {"a@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "QUIT\r\n", "failed 0 4.7.4;"}}},
    {"STARTTLS required but absent after HELO", .tls = SMTP_CLIENT_TLS_MUST, .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"502 no\r\n", "HELO client.test\r\n", ""},
        {"250 mx.test\r\n", "QUIT\r\n", "failed 0 4.7.4;"}}},
    {"STARTTLS required and refused", .tls = SMTP_CLIENT_TLS_MUST, .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"250-mx.test\r\n250 STARTTLS\r\n", "STARTTLS\r\n", ""},
        {"454 4.7.0 TLS not available\r\n", "QUIT\r\n", "tls-refused 454;failed 454 4.7.0;"}}},
    {"STARTTLS refused under maytls: clear text", .tls = SMTP_CLIENT_TLS_MAY, .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"250-mx.test\r\n250 STARTTLS\r\n", "STARTTLS\r\n", ""},
        {"454 4.7.0 TLS not available\r\n", "", "tls-refused 454;ready;"},
        {"@send", MAIL, ""}}},
    {"STARTTLS absent under maytls", .tls = SMTP_CLIENT_TLS_MAY, .rcpts = {"a@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"}}},
    {"STARTTLS offered, notls", .tls = SMTP_CLIENT_TLS_NEVER, .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"250-mx.test\r\n250 STARTTLS\r\n", "", "ready;"}}},
    {"TLS handshake failed", .tls = SMTP_CLIENT_TLS_MAY, .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"250-mx.test\r\n250 STARTTLS\r\n", "STARTTLS\r\n", ""},
        {"220 go ahead\r\n", "", "tls;"},
        {"@tlsfail", "", "failed 0 4.7.5;"}}},
    {"SIZE too big for the server", .rcpts = {"a@x.test", "b@x.test"}, .data = "0123456789\r\n", .steps = {OPEN,
        {"250-mx.test\r\n250 SIZE 10\r\n", "", "ready;"},
        {"@send", "", "rcpt 0 PERM 0 5.3.4;rcpt 1 PERM 0 5.3.4;done;"},
        {"@quit", "QUIT\r\n", ""}}},
    {"SIZE large enough", .rcpts = {"a@x.test"}, .data = "0123456789\r\n", .steps = {OPEN,
        {"250-mx.test\r\n250 SIZE 12\r\n", "", "ready;"},
        {"@send", "MAIL FROM:<s@client.test> SIZE=12\r\n", ""}}},
    {"SMTPUTF8 needed, not offered", .rcpts = {"a@x.test"}, .smtputf8 = true, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", "", "rcpt 0 PERM 0 5.6.7;done;"}}},
    {"malformed reply", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"250-mx.test\r\n251 other code\r\n", "", "failed 0 4.4.2;"}}},
    {"malformed reply in the transaction", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""},
        {"250 ok\r\nhello there\r\n", "", "rcpt 0 TEMP 0 4.4.2;failed 0 4.4.2;"}}},
    {"a reply to nothing after the transaction", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n354 go\r\n", BODY, "sent;"},
        {"250 ok\r\n250 extra\r\n", "", "rcpt 0 OK 250 2.0.0;done;failed 250 4.0.0;"}}},
    {"421 while idle", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"421 4.4.2 idle too long\r\n", "", "failed 421 4.4.2;"},
        {"@quit", "", ""}}},
    {"lost connection during the greeting", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"@closed", "", "failed 0 4.4.2;"}}},
    {"dot-stuffing and bare line ends", .rcpts = {"a@x.test"}, .data = ".one\r\ntwo\nthree", .steps = {OPEN,
        {EHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n354 go\r\n", "..one\r\ntwo\r\nthree\r\n.\r\n", "sent;"}}},
    {"CHUNKING offered, not asked for: DATA", .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n", "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") "DATA\r\n", ""}}},
    {"BDAT: the RCPT replies first, then one LAST chunk", .chunking = true, .rcpts = {"a@x.test", "b@x.test"},
     .data = ".one\r\ntwo\n", .steps = {OPEN,
        {"250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n", "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test"), ""},
        {"250 ok\r\n250 ok\r\n", "", ""},
        {"550 5.1.1 no\r\n", "BDAT 11 LAST\r\n.one\r\ntwo\r\n", "rcpt 1 PERM 550 5.1.1;sent;"},
        {"250 2.0.0 ok\r\n", "", "rcpt 0 OK 250 2.0.0;done;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test"), ""}}},
    {"BDAT lock-step", .chunking = true, .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"250-mx.test\r\n250 CHUNKING\r\n", "", "ready;"},
        {"@send", MAIL, ""},
        {"250 ok\r\n", RCPT("a@x.test"), ""},
        {"250 ok\r\n", "BDAT 7 LAST\r\nHello\r\n", "sent;"},
        {"250 ok\r\n", "", "rcpt 0 OK 250 2.0.0;done;"}}},
    {"BDAT with every RCPT refused: no chunk, RSET next", .chunking = true, .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n", "", "ready;"},
        {"@send", MAIL RCPT("a@x.test"), ""},
        {"250 ok\r\n550 5.1.1 no\r\n", "", "rcpt 0 PERM 550 5.1.1;done;"},
        {"@send", "RSET\r\n" MAIL RCPT("a@x.test"), ""}}},
    {"BDAT 421 after the chunk", .chunking = true, .rcpts = {"a@x.test"}, .steps = {OPEN,
        {"250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n", "", "ready;"},
        {"@send", MAIL RCPT("a@x.test"), ""},
        {"250 ok\r\n250 ok\r\n", "BDAT 7 LAST\r\nHello\r\n", "sent;"},
        {"421 4.3.0 bye\r\n", "", "rcpt 0 TEMP 421 4.3.0;failed 421 4.3.0;"}}},
};

#define LHLO_OPEN {"@connected", "", ""}, {"220 lmtp.test LMTP\r\n", "LHLO client.test\r\n", ""}
#define LHLO_PIPE "250-lmtp.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n"

static const script lmtp_scripts[] = {
    {"LMTP: one end-of-data reply per accepted recipient", .lmtp = true,
     .rcpts = {"a@x.test", "b@x.test", "c@x.test", "d@x.test"}, .steps = {LHLO_OPEN,
        {LHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test") RCPT("c@x.test") RCPT("d@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n250 ok\r\n354 go\r\n", BODY,
         "rcpt 1 PERM 550 5.1.1;sent;"},
        {"250 2.0.0 <a> saved\r\n", "", "rcpt 0 OK 250 2.0.0;"},
        {"452 4.2.2 <c> mailbox full\r\n", "", "rcpt 2 TEMP 452 4.2.2;"},
        {"550 5.2.1 <d> mailbox disabled\r\n", "", "rcpt 3 PERM 550 5.2.1;done;"}}},
    {"LMTP: 421 between the per-recipient replies", .lmtp = true, .rcpts = {"a@x.test", "b@x.test", "c@x.test"},
     .steps = {LHLO_OPEN,
        {LHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test") RCPT("c@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", BODY, "sent;"},
        {"250 2.0.0 ok\r\n421 4.3.2 shutting down\r\n", "",
         "rcpt 0 OK 250 2.0.0;rcpt 1 TEMP 421 4.3.2;rcpt 2 TEMP 421 4.3.2;failed 421 4.3.2;"}}},
    {"LMTP: lost connection between the per-recipient replies", .lmtp = true, .rcpts = {"a@x.test", "b@x.test"},
     .steps = {LHLO_OPEN,
        {LHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test") "DATA\r\n", ""},
        {"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", BODY, "sent;"},
        {"250 2.0.0 ok\r\n", "", "rcpt 0 OK 250 2.0.0;"},
        {"@closed", "", "rcpt 1 TEMP 0 4.4.2 uncertain;failed 0 4.4.2;"}}},
    {"LMTP: LHLO refused, no HELO", .lmtp = true, .rcpts = {"a@x.test"}, .steps = {LHLO_OPEN,
        {"500 5.5.1 what\r\n", "QUIT\r\n", "failed 500 4.5.1;"}}},
    {"LMTP with BDAT", .lmtp = true, .chunking = true, .rcpts = {"a@x.test", "b@x.test"}, .steps = {LHLO_OPEN,
        {LHLO_PIPE, "", "ready;"},
        {"@send", MAIL RCPT("a@x.test") RCPT("b@x.test"), ""},
        {"250 ok\r\n250 ok\r\n250 ok\r\n", "BDAT 7 LAST\r\nHello\r\n", "sent;"},
        {"250 2.0.0 a\r\n452 4.2.2 b full\r\n", "", "rcpt 0 OK 250 2.0.0;rcpt 1 TEMP 452 4.2.2;done;"}}},
};

static void test_smtp_scripts(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(smtp_scripts); i++) run_script(&smtp_scripts[i]);
}

static void test_lmtp_scripts(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(lmtp_scripts); i++) run_script(&lmtp_scripts[i]);
}

/* test_byte_at_a_time - replies cut anywhere (a multi-line EHLO included) give the same session. */
static void test_byte_at_a_time(void **state)
{
    (void)state;
    static const char *const feed[] = {"220 mx.test ESMTP\r\n",
                                       "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 DSN\r\n", NULL,
                                       "250 ok\r\n250 ok\r\n354 go\r\n", "250 2.0.0 done\r\n"};
    script s = {"bytes", .rcpts = {"a@x.test"}};
    drv d;
    drv_open(&d, &s);
    smtp_client_connected(d.c);
    strbuf ev = {0};
    for (size_t k = 0; k < SL_ARRAY_LEN(feed); k++) {
        if (!feed[k]) {
            smtp_client_send(d.c, &d.m, d.rp, d.n);
            continue;
        }
        for (const char *p = feed[k]; *p; p++) smtp_client_feed(d.c, p, 1);
        drv_events(&d, &ev);
    }
    assert_string_equal(ev.data, "ready;sent;rcpt 0 OK 250 2.0.0;done;");
    assert_string_equal(d.out.data, "EHLO client.test\r\nMAIL FROM:<s@client.test> SIZE=7\r\n" RCPT("a@x.test")
                                    "DATA\r\n" BODY);
    assert_true(smtp_client_caps(d.c)->pipelining);
    assert_int_equal(smtp_client_caps(d.c)->size_max, 1000);
    sb_free(&ev);
    drv_close(&d);
}

/* test_diagnostics - the texts of results and failures, as logs and DSNs show them. */
static void test_diagnostics(void **state)
{
    (void)state;
    script s = {"diag", .rcpts = {"a@x.test", "b@x.test"}};
    drv d;
    drv_open(&d, &s);
    smtp_client_connected(d.c);
    const char *in = "220 mx\r\n250-mx\r\n250 PIPELINING\r\n";
    smtp_client_feed(d.c, in, strlen(in));
    smtp_client_send(d.c, &d.m, d.rp, d.n);
    in = "250 ok\r\n250 ok\r\n550-5.1.1 <b@x.test>\r\n550 5.1.1 unknown user\r\n";
    smtp_client_feed(d.c, in, strlen(in));
    assert_string_equal(smtp_client_result_of(d.c, 1)->diag, "smtp; 550 5.1.1 <b@x.test> unknown user");
    smtp_client_timeout(d.c);
    assert_string_equal(smtp_client_result_of(d.c, 0)->diag, "mx.test [192.0.2.1]: timeout during the transaction");
    assert_string_equal(smtp_client_failure_of(d.c)->diag, "mx.test [192.0.2.1]: timeout during the transaction");
    assert_false(smtp_client_idle(d.c));
    drv_close(&d);
}

/* test_long_line - a reply line longer than 8192 octets ends the session; a long one below does not. */
static void test_long_line(void **state)
{
    (void)state;
    script s = {"long", .rcpts = {"a@x.test"}};
    for (int over = 0; over < 2; over++) {
        drv d;
        drv_open(&d, &s);
        smtp_client_connected(d.c);
        size_t n = over ? 9000 : 8000;
        char *line = xmalloc(n + 3);
        memset(line, 'x', n);
        memcpy(line, "220 ", 4);
        memcpy(line + n, "\r\n", 3);
        smtp_client_feed(d.c, line, n + 2);
        smtp_client_event ev;
        bool got = smtp_client_next_event(d.c, &ev);
        assert_int_equal(got, over);
        if (over) assert_string_equal(smtp_client_failure_of(d.c)->diag,
                                      "mx.test [192.0.2.1]: reply line too long during the greeting/EHLO");
        else assert_string_equal(d.out.data, "EHLO client.test\r\n");
        free(line);
        drv_close(&d);
    }
}

/* test_dsn_parameters - the caps of the EHLO reply reach the MAIL and RCPT lines. */
static void test_dsn_parameters(void **state)
{
    (void)state;
    script s = {"dsn", .rcpts = {"a@x.test"}};
    drv d;
    drv_open(&d, &s);
    d.m.envid = "e1";
    d.m.ret = DSN_RET_HDRS;
    d.r[0].notify = DSN_NOTIFY_FAILURE;
    smtp_client_connected(d.c);
    const char *in = "220 mx\r\n250-mx\r\n250-DSN\r\n250 PIPELINING\r\n";
    smtp_client_feed(d.c, in, strlen(in));
    sb_reset(&d.out);
    smtp_client_send(d.c, &d.m, d.rp, d.n);
    assert_string_equal(d.out.data, "MAIL FROM:<s@client.test> RET=HDRS ENVID=e1\r\n"
                                    "RCPT TO:<a@x.test> NOTIFY=FAILURE\r\nDATA\r\n");
    drv_close(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtp_scripts),
        cmocka_unit_test(test_lmtp_scripts),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_diagnostics),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_dsn_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
