/*
 * client_sess.c - the SMTP/LMTP client session engine (see client_sess.h).
 *
 * Outside a transaction a reply is handled by the handler of the session state (greeting,
 * EHLO, HELO, STARTTLS). Inside one, every command we send pushes what its reply will answer
 * (RSET, MAIL, RCPT i, DATA, the lone "." of an empty DATA, the end of the content) on a queue,
 * and each reply pops the oldest entry and goes to that entry's handler: pipelined or lock-step,
 * replies are matched to commands by order (RFC 2920). A 421 ends the session wherever it
 * comes; a reply with nothing to answer is a protocol error.
 *
 * Results are set once per recipient (R_DONE); a recipient the server accepted (R_ACCEPTED)
 * waits for the end-of-data reply, or for LMTP its own one. The engine owns the event queue,
 * the results and the failure; the message and recipients are the caller's.
 */
#include "smtp/client_sess.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_LINE_MAX 8192 /* longest reply line accepted (RFC 5321 allows 512) */
#define ALL_ACCEPTED ((size_t)-1)

enum cs_state {
    CS_CONNECTING, /* no greeting expected yet */
    CS_GREETING,   /* waiting for the 220 */
    CS_EHLO,       /* EHLO or LHLO sent */
    CS_HELO,       /* HELO sent after a 5xx to EHLO */
    CS_STARTTLS,   /* STARTTLS sent */
    CS_TLS_WAIT,   /* 220 to STARTTLS: the I/O layer does the handshake; input is ignored */
    CS_IDLE,       /* established, no transaction */
    CS_TXN,        /* a transaction's replies are due */
    CS_CLOSED      /* failed or QUIT: nothing more happens */
};

/* What a reply inside a transaction answers. */
enum cs_expect { EX_RSET, EX_MAIL, EX_RCPT, EX_DATA, EX_DOT, EX_END };

enum rcpt_state { R_PENDING = 0, R_ACCEPTED, R_DONE };

typedef struct {
    enum cs_expect kind;
    size_t index; /* EX_RCPT: the recipient; EX_END: the recipient (LMTP) or ALL_ACCEPTED */
} expect;

struct smtp_client {
    smtp_client_params p; /* helo_name and peer are our copies */
    enum cs_state st;
    smtp_caps caps;
    bool tls_active;
    bool dirty;           /* the server accepted a MAIL whose transaction never ended: RSET first */
    smtp_reply_parser rp;
    strbuf line;          /* an unfinished reply line */
    smtp_client_event *ev;
    size_t ev_head, ev_n, ev_cap;
    expect *ex;
    size_t ex_head, ex_n, ex_cap;
    /* the transaction */
    const qmsg *m;
    const qrcpt **rcpts;
    size_t n;
    smtp_client_result *res;
    unsigned char *rst;   /* enum rcpt_state per recipient */
    size_t n_accepted;
    bool pipelined;
    bool bdat;            /* BDAT instead of DATA */
    bool mail_failed;     /* MAIL refused: the replies still due are only drained */
    bool sent;            /* the content went out */
    smtp_client_failure fail;
};

static void on_txn_reply(smtp_client *c, const smtp_reply *r);

/* ---- small helpers ------------------------------------------------------------------- */

/* out - write a NUL-terminated command for the server. */
static void out(smtp_client *c, const char *s)
{
    c->p.out(c->p.out_ctx, s, strlen(s));
}

/* event_push - queue an event for the I/O layer. */
static void event_push(smtp_client *c, smtp_client_event_type type, size_t index, int code)
{
    if (c->ev_head == c->ev_n) c->ev_head = c->ev_n = 0;
    if (c->ev_n == c->ev_cap) {
        c->ev_cap = c->ev_cap ? c->ev_cap * 2 : 16;
        c->ev = xrealloc(c->ev, c->ev_cap * sizeof *c->ev);
    }
    c->ev[c->ev_n++] = (smtp_client_event){type, index, code};
}

/* expect_push - a command went out whose reply will answer kind (index). */
static void expect_push(smtp_client *c, enum cs_expect kind, size_t index)
{
    if (c->ex_head == c->ex_n) c->ex_head = c->ex_n = 0;
    if (c->ex_n == c->ex_cap) {
        c->ex_cap = c->ex_cap ? c->ex_cap * 2 : 16;
        c->ex = xrealloc(c->ex, c->ex_cap * sizeof *c->ex);
    }
    c->ex[c->ex_n++] = (expect){kind, index};
}

/* cmd - send line (owned) and remember what its reply answers. */
static void cmd(smtp_client *c, char *line, enum cs_expect kind, size_t index)
{
    out(c, line);
    free(line);
    expect_push(c, kind, index);
}

/* reply_ok - a 2xx reply. */
static bool reply_ok(const smtp_reply *r)
{
    return r->code >= 200 && r->code < 300;
}

/* hello - EHLO (or HELO, or LHLO for LMTP) with our name. */
static void hello(smtp_client *c, const char *verb)
{
    char *line = xasprintf("%s %s\r\n", c->p.lmtp ? "LHLO" : verb, c->p.helo_name);
    out(c, line);
    free(line);
    c->st = strcmp(verb, "HELO") == 0 ? CS_HELO : CS_EHLO;
}

/* ---- results ------------------------------------------------------------------------- */

/* result_set - recipient i's final result (diag owned); an earlier final result stands. */
static void result_set(smtp_client *c, size_t i, sl_result res, int code, const char *status, char *diag,
                       bool uncertain)
{
    if (c->rst[i] == R_DONE) {
        free(diag);
        return;
    }
    smtp_client_result *r = &c->res[i];
    *r = (smtp_client_result){.res = res, .code = code, .diag = diag, .uncertain = uncertain};
    snprintf(r->status, sizeof r->status, "%s", status);
    c->rst[i] = R_DONE;
    event_push(c, SMTP_CEV_RCPT, i, 0);
}

/* result_reply - recipient i's result from a reply: 2xx OK, 4xx (and 3xx) TEMP, 5xx PERM. */
static void result_reply(smtp_client *c, size_t i, const smtp_reply *r)
{
    char status[16], *text = smtp_reply_text(r);
    sl_result res = r->code < 300 ? SL_OK : r->code < 500 ? SL_TEMP : SL_PERM;
    smtp_reply_status(r, status, sizeof status);
    result_set(c, i, res, r->code, status, xasprintf("smtp; %s", text), false);
    free(text);
}

/* results_open_fail - every recipient without a result gets the session's failure. */
static void results_open_fail(smtp_client *c)
{
    for (size_t i = 0; i < c->n; i++) {
        bool uncertain = c->sent && c->rst[i] == R_ACCEPTED && c->fail.code == 0;
        result_set(c, i, SL_TEMP, c->fail.code, c->fail.status, xstrdup(c->fail.diag), uncertain);
    }
}

/* results_perm_all - every recipient fails with status and diag (a check before MAIL). */
static void results_perm_all(smtp_client *c, const char *status, char *diag)
{
    for (size_t i = 0; i < c->n; i++) result_set(c, i, SL_PERM, 0, status, xstrdup(diag), false);
    free(diag);
}

/* txn_clear - forget the last transaction. */
static void txn_clear(smtp_client *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->res[i].diag);
    free(c->res);
    free(c->rst);
    free(c->rcpts);
    c->res = NULL;
    c->rst = NULL;
    c->rcpts = NULL;
    c->m = NULL;
    c->n = c->n_accepted = 0;
    c->ex_head = c->ex_n = 0;
    c->mail_failed = c->sent = false;
}

/* txn_done - the transaction is over and the session usable. */
static void txn_done(smtp_client *c)
{
    for (size_t i = 0; i < c->n; i++) /* never happens; a leftover must not pass as delivered */
        result_set(c, i, SL_TEMP, 0, "4.3.0", xstrdup("smtp; internal error: no result for recipient"), false);
    c->st = CS_IDLE;
    event_push(c, SMTP_CEV_DONE, 0, 0);
}

/* ---- failures ------------------------------------------------------------------------ */

/* sess_fail - the session is over (diag owned): open recipients get the failure; QUIT if quit. */
static void sess_fail(smtp_client *c, int code, const char *status, char *diag, bool quit)
{
    free(c->fail.diag);
    c->fail.code = code;
    snprintf(c->fail.status, sizeof c->fail.status, "%s", status);
    c->fail.diag = diag;
    results_open_fail(c);
    if (quit) out(c, "QUIT\r\n");
    c->st = CS_CLOSED;
    event_push(c, SMTP_CEV_FAILED, 0, 0);
}

/* sess_fail_reply - a reply ends the session; its status counts as temporary (class 4). */
static void sess_fail_reply(smtp_client *c, const smtp_reply *r, bool quit)
{
    char status[16], *text = smtp_reply_text(r);
    smtp_reply_status(r, status, sizeof status);
    status[0] = '4'; /* another host, or a later retry, may succeed */
    sess_fail(c, r->code, status, xasprintf("smtp; %s", text), quit && r->code != 421);
    free(text);
}

/* phase - where the session was, for diagnostics. */
static const char *phase(const smtp_client *c)
{
    if (c->st == CS_IDLE) return "while idle";
    if (c->st == CS_TXN) return c->sent ? "after DATA" : "during the transaction";
    return "during the greeting/EHLO";
}

/* conn_fail - the connection failed without a reply saying why (what: "timeout", ...). */
static void conn_fail(smtp_client *c, const char *what)
{
    sess_fail(c, 0, "4.4.2", xasprintf("%s: %s %s", c->p.peer, what, phase(c)), false);
}

/* ---- greeting, EHLO, STARTTLS -------------------------------------------------------- */

/* established - greeting and EHLO done (and TLS if any): STARTTLS now, or ready. */
static void established(smtp_client *c)
{
    if (!c->tls_active && c->p.tls != SMTP_CLIENT_TLS_NEVER && c->caps.starttls) {
        out(c, "STARTTLS\r\n");
        c->st = CS_STARTTLS;
        return;
    }
    if (!c->tls_active && c->p.tls == SMTP_CLIENT_TLS_MUST) { /* never in clear text */
        char *diag = xasprintf("%s: TLS is required but the server does not offer STARTTLS", c->p.peer);
        sess_fail(c, 0, "4.7.4", diag, true);
        return;
    }
    c->st = CS_IDLE;
    event_push(c, SMTP_CEV_READY, 0, 0);
}

/* on_greeting - the server's first reply. */
static void on_greeting(smtp_client *c, const smtp_reply *r)
{
    if (!reply_ok(r)) {
        sess_fail_reply(c, r, true);
        return;
    }
    hello(c, "EHLO");
}

/* on_ehlo - the reply to EHLO/LHLO: capabilities, or HELO after a 5xx (SMTP only). */
static void on_ehlo(smtp_client *c, const smtp_reply *r)
{
    if (reply_ok(r)) {
        smtp_caps_parse(r, &c->caps);
        established(c);
    } else if (r->code >= 500 && !c->p.lmtp) {
        hello(c, "HELO");
    } else {
        sess_fail_reply(c, r, true);
    }
}

/* on_helo - the reply to HELO: no extensions. */
static void on_helo(smtp_client *c, const smtp_reply *r)
{
    if (!reply_ok(r)) {
        sess_fail_reply(c, r, true);
        return;
    }
    memset(&c->caps, 0, sizeof c->caps);
    established(c);
}

/* on_starttls - 220 starts the handshake; a refusal fails musttls, maytls goes on in clear text. */
static void on_starttls(smtp_client *c, const smtp_reply *r)
{
    if (r->code == 220) {
        c->st = CS_TLS_WAIT;
        event_push(c, SMTP_CEV_STARTTLS, 0, 0);
        return;
    }
    event_push(c, SMTP_CEV_TLS_REFUSED, 0, r->code); /* also before a failure: the adapter records why */
    if (c->p.tls == SMTP_CLIENT_TLS_MUST || r->code == 421) {
        sess_fail_reply(c, r, true);
        return;
    }
    c->st = CS_IDLE;
    event_push(c, SMTP_CEV_READY, 0, 0);
}

/* on_unexpected - a reply while nothing was asked (e.g. a 421 while idle). */
static void on_unexpected(smtp_client *c, const smtp_reply *r)
{
    sess_fail_reply(c, r, false);
}

/* ---- the transaction ----------------------------------------------------------------- */

/* cmd_rcpt - RCPT TO for recipient i. */
static void cmd_rcpt(smtp_client *c, size_t i)
{
    char *folder = c->p.lmtp ? smtp_client_folder_addr(c->rcpts[i], c->p.fileinto) : NULL;
    if (!folder) return cmd(c, smtp_client_rcpt_line(c->rcpts[i], &c->caps), EX_RCPT, i);
    qrcpt r = *c->rcpts[i]; /* the same recipient, addressed to its folder */
    r.addr = folder;
    cmd(c, smtp_client_rcpt_line(&r, &c->caps), EX_RCPT, i);
    free(folder);
}

/* cmd_mail - MAIL FROM, and with PIPELINING every RCPT and (unless BDAT) DATA after it. */
static void cmd_mail(smtp_client *c)
{
    cmd(c, smtp_client_mail_line(c->m, &c->caps), EX_MAIL, 0);
    if (!c->pipelined) return;
    for (size_t i = 0; i < c->n; i++) cmd_rcpt(c, i);
    if (!c->bdat) cmd(c, xstrdup("DATA\r\n"), EX_DATA, 0);
}

/* count_emit - adds the length of each piece (the size of a BDAT chunk). */
static void count_emit(void *ctx, const void *p, size_t n)
{
    (void)p;
    *(size_t *)ctx += n;
}

/* content_sent - the content is out: the end-of-data replies are due (LMTP: one per accepted). */
static void content_sent(smtp_client *c)
{
    c->sent = true;
    event_push(c, SMTP_CEV_SENT, 0, 0);
    if (!c->p.lmtp) {
        expect_push(c, EX_END, ALL_ACCEPTED);
        return;
    }
    for (size_t i = 0; i < c->n; i++)
        if (c->rst[i] == R_ACCEPTED) expect_push(c, EX_END, i);
}

/* send_bdat - the content as one "BDAT n LAST" chunk of CRLF lines (RFC 3030). */
static void send_bdat(smtp_client *c)
{
    size_t size = 0;
    smtp_client_crlf_lines(c->m->data, c->m->data_len, count_emit, &size);
    char *line = xasprintf("BDAT %zu LAST\r\n", size);
    out(c, line);
    free(line);
    smtp_client_crlf_lines(c->m->data, c->m->data_len, c->p.out, c->p.out_ctx);
    content_sent(c);
}

/* after_rcpts - every RCPT is answered and no DATA is pipelined: the content, or the end. */
static void after_rcpts(smtp_client *c)
{
    if (!c->n_accepted || c->mail_failed)
        txn_done(c); /* the MAIL stays open on the server: RSET before the next one */
    else if (c->bdat)
        send_bdat(c);
    else
        cmd(c, xstrdup("DATA\r\n"), EX_DATA, 0);
}

/* on_rset - the RSET before a transaction. */
static void on_rset(smtp_client *c, size_t i, const smtp_reply *r)
{
    (void)i;
    if (!reply_ok(r)) {
        sess_fail_reply(c, r, true);
        return;
    }
    c->dirty = false;
    if (!c->pipelined) cmd_mail(c);
}

/* on_mail - the reply to MAIL: a refusal is every recipient's result (4xx TEMP, 5xx PERM). */
static void on_mail(smtp_client *c, size_t i, const smtp_reply *r)
{
    (void)i;
    if (reply_ok(r)) {
        c->dirty = true;
        if (!c->pipelined) cmd_rcpt(c, 0);
        return;
    }
    c->mail_failed = true;
    for (size_t k = 0; k < c->n; k++) result_reply(c, k, r);
    if (!c->pipelined) txn_done(c); /* nothing else is outstanding */
}

/* on_rcpt - the reply to RCPT of recipient i. */
static void on_rcpt(smtp_client *c, size_t i, const smtp_reply *r)
{
    if (!c->mail_failed && reply_ok(r)) {
        c->rst[i] = R_ACCEPTED;
        c->n_accepted++;
    } else if (!c->mail_failed) {
        result_reply(c, i, r);
    }
    if (i + 1 < c->n) {
        if (!c->pipelined) cmd_rcpt(c, i + 1);
        return;
    }
    if (!c->pipelined || c->bdat) after_rcpts(c);
}

/* on_data - the reply to DATA: 354 sends the content (or a lone "." when nobody was accepted). */
static void on_data(smtp_client *c, size_t i, const smtp_reply *r)
{
    (void)i;
    bool any = c->n_accepted && !c->mail_failed;
    if (r->code == 354 && any) {
        smtp_client_dot_stuff(c->m->data, c->m->data_len, c->p.out, c->p.out_ctx);
        content_sent(c);
    } else if (r->code == 354) { /* a pipelined DATA the server should have refused */
        cmd(c, xstrdup(".\r\n"), EX_DOT, 0);
    } else if (r->code < 400 && any) { /* neither 354 nor a refusal */
        char *text = smtp_reply_text(r);
        sess_fail(c, r->code, "4.5.0", xasprintf("smtp; unexpected reply to DATA: %s", text), true);
        free(text);
    } else { /* a refusal: the accepted recipients' result (without any, the expected 503/554) */
        for (size_t k = 0; k < c->n && any; k++)
            if (c->rst[k] == R_ACCEPTED) result_reply(c, k, r);
        txn_done(c);
    }
}

/* on_dot - the reply to the lone "." of an empty DATA. */
static void on_dot(smtp_client *c, size_t i, const smtp_reply *r)
{
    (void)i;
    (void)r;
    txn_done(c);
}

/* on_end - an end-of-data reply: for every accepted recipient, or (LMTP) for recipient i. */
static void on_end(smtp_client *c, size_t i, const smtp_reply *r)
{
    for (size_t k = 0; k < c->n; k++)
        if (c->rst[k] == R_ACCEPTED && (i == ALL_ACCEPTED || i == k)) result_reply(c, k, r);
    if (c->ex_head < c->ex_n) return; /* LMTP: more recipients' replies are due */
    c->dirty = false;
    txn_done(c);
}

/* The handler of each kind of transaction reply. */
static void (*const on_expect[])(smtp_client *, size_t, const smtp_reply *) = {
    [EX_RSET] = on_rset, [EX_MAIL] = on_mail, [EX_RCPT] = on_rcpt,
    [EX_DATA] = on_data, [EX_DOT] = on_dot,   [EX_END] = on_end,
};

/* on_txn_reply - a reply inside the transaction, matched to its command by order. */
static void on_txn_reply(smtp_client *c, const smtp_reply *r)
{
    if (c->ex_head == c->ex_n || r->code == 421) { /* a reply to nothing we sent, or closing */
        sess_fail_reply(c, r, false);
        return;
    }
    expect e = c->ex[c->ex_head++];
    on_expect[e.kind](c, e.index, r);
}

/* txn_precheck - refuse what this server cannot take; true if every recipient failed here. */
static bool txn_precheck(smtp_client *c)
{
    const qmsg *m = c->m;
    if (c->caps.size && c->caps.size_max && m->data_len > c->caps.size_max) {
        results_perm_all(c, "5.3.4", xasprintf("smtp; message size %zu exceeds the limit %llu of %s", m->data_len,
                                                (unsigned long long)c->caps.size_max, c->p.peer));
        return true;
    }
    if (m->smtputf8 && !c->caps.smtputf8) {
        results_perm_all(c, "5.6.7", xasprintf("smtp; %s does not support SMTPUTF8, which the message needs", c->p.peer));
        return true;
    }
    return false;
}

/* ---- input --------------------------------------------------------------------------- */

/* The handler of a reply in each state outside a transaction. */
static void (*const on_reply[])(smtp_client *, const smtp_reply *) = {
    [CS_GREETING] = on_greeting, [CS_EHLO] = on_ehlo, [CS_HELO] = on_helo,
    [CS_STARTTLS] = on_starttls, [CS_IDLE] = on_unexpected, [CS_TXN] = on_txn_reply,
};

/* reading - whether input means anything now (not before connecting, during TLS setup, or after the end). */
static bool reading(const smtp_client *c)
{
    return c->st != CS_CONNECTING && c->st != CS_TLS_WAIT && c->st != CS_CLOSED;
}

/* line_done - a complete reply line (CR LF or LF stripped) is in c->line. */
static void line_done(smtp_client *c)
{
    smtp_reply r;
    size_t len = c->line.len;
    if (len && c->line.data[len - 1] == '\r') len--;
    int rc = smtp_reply_parse_line(&c->rp, c->line.data, len, &r);
    sb_reset(&c->line);
    if (rc < 0) {
        conn_fail(c, "malformed reply");
        return;
    }
    if (rc == 0) return;
    on_reply[c->st](c, &r);
    smtp_reply_free(&r);
}

/* ---- public -------------------------------------------------------------------------- */

smtp_client *smtp_client_new(const smtp_client_params *params)
{
    smtp_client *c = xcalloc(1, sizeof *c);
    c->p = *params;
    c->p.helo_name = xstrdup(params->helo_name && *params->helo_name ? params->helo_name : "localhost");
    c->p.peer = xstrdup(params->peer ? params->peer : "server");
    c->st = CS_CONNECTING;
    smtp_reply_parser_init(&c->rp);
    sb_init(&c->line);
    return c;
}

void smtp_client_free(smtp_client *c)
{
    if (!c) return;
    txn_clear(c);
    smtp_reply_parser_free(&c->rp);
    sb_free(&c->line);
    free(c->ev);
    free(c->ex);
    free(c->fail.diag);
    free((char *)c->p.helo_name);
    free((char *)c->p.peer);
    free(c);
}

void smtp_client_connected(smtp_client *c)
{
    if (c->st == CS_CONNECTING) c->st = CS_GREETING;
}

void smtp_client_feed(smtp_client *c, const char *buf, size_t len)
{
    size_t pos = 0;
    while (pos < len && reading(c)) {
        const char *lf = memchr(buf + pos, '\n', len - pos);
        size_t take = lf ? (size_t)(lf - (buf + pos)) : len - pos;
        if (c->line.len + take > CLIENT_LINE_MAX) {
            conn_fail(c, "reply line too long");
            return;
        }
        sb_append(&c->line, buf + pos, take);
        pos += take;
        if (!lf) return;
        pos++;
        line_done(c);
    }
}

void smtp_client_tls_started(smtp_client *c)
{
    if (c->st != CS_TLS_WAIT) abort(); /* only after SMTP_CEV_STARTTLS */
    c->tls_active = true;
    memset(&c->caps, 0, sizeof c->caps); /* RFC 3207: nothing learnt before TLS is kept */
    smtp_reply_parser_free(&c->rp);
    sb_reset(&c->line);
    hello(c, "EHLO");
}

void smtp_client_tls_failed(smtp_client *c, const char *err)
{
    if (c->st == CS_CLOSED) return;
    sess_fail(c, 0, "4.7.5", xasprintf("%s: TLS handshake failed: %s", c->p.peer, err), false);
}

void smtp_client_closed(smtp_client *c, const char *what)
{
    if (c->st != CS_CLOSED) conn_fail(c, what);
}

void smtp_client_timeout(smtp_client *c)
{
    smtp_client_closed(c, "timeout");
}

void smtp_client_send(smtp_client *c, const qmsg *m, const qrcpt *const *rcpts, size_t n)
{
    if (c->st != CS_IDLE || n == 0) abort(); /* contract: only when idle, with recipients */
    txn_clear(c);
    c->m = m;
    c->n = n;
    c->rcpts = xcalloc(n, sizeof *c->rcpts);
    memcpy(c->rcpts, rcpts, n * sizeof *rcpts);
    c->res = xcalloc(n, sizeof *c->res);
    c->rst = xcalloc(n, 1);
    if (txn_precheck(c)) {
        event_push(c, SMTP_CEV_DONE, 0, 0);
        return;
    }
    c->st = CS_TXN;
    c->pipelined = c->caps.pipelining;
    c->bdat = c->p.chunking && c->caps.chunking;
    if (c->dirty) {
        cmd(c, xstrdup("RSET\r\n"), EX_RSET, 0);
        if (!c->pipelined) return;
    }
    cmd_mail(c);
}

void smtp_client_quit(smtp_client *c)
{
    bool open = c->st == CS_EHLO || c->st == CS_HELO || c->st == CS_STARTTLS || c->st == CS_IDLE ||
                (c->st == CS_TXN && !c->sent);
    if (open) out(c, "QUIT\r\n");
    c->st = CS_CLOSED;
}

bool smtp_client_next_event(smtp_client *c, smtp_client_event *ev)
{
    if (c->ev_head == c->ev_n) return false;
    *ev = c->ev[c->ev_head++];
    return true;
}

bool smtp_client_idle(const smtp_client *c)
{
    return c->st == CS_IDLE;
}

const smtp_caps *smtp_client_caps(const smtp_client *c)
{
    return &c->caps;
}

bool smtp_client_tls_active(const smtp_client *c)
{
    return c->tls_active;
}

const smtp_client_result *smtp_client_result_of(const smtp_client *c, size_t i)
{
    if (i >= c->n) abort();
    return &c->res[i];
}

const smtp_client_failure *smtp_client_failure_of(const smtp_client *c)
{
    return &c->fail;
}
