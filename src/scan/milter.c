/*
 * milter.c - the milter protocol engine (see milter.h): packets out, replies in, no sockets.
 *
 * The engine is always in one of three states: READY (the last stage is answered, the next may
 * start), WAIT (a command was sent and its reply is awaited: `want` says which) or FAILED. The
 * message stage is a small loop (msg_advance) that walks DATA, the headers, EOH, the body chunks
 * and EOM, sending each packet and stopping wherever a reply is due. Replies are parsed packet by
 * packet as soon as a whole packet is buffered; every field is checked against its packet's
 * length, so a truncated or overlong field is garbage, not an overread.
 */
#include "scan/milter.h"

#include <stdlib.h>
#include <string.h>

/* Commands we send. */
#define SMFIC_ABORT 'A'
#define SMFIC_BODY 'B'
#define SMFIC_CONNECT 'C'
#define SMFIC_MACRO 'D'
#define SMFIC_BODYEOB 'E'
#define SMFIC_HELO 'H'
#define SMFIC_HEADER 'L'
#define SMFIC_MAIL 'M'
#define SMFIC_EOH 'N'
#define SMFIC_OPTNEG 'O'
#define SMFIC_QUIT 'Q'
#define SMFIC_RCPT 'R'
#define SMFIC_DATA 'T'

/* What a reply is awaited for. */
enum milter_want { W_NONE, W_OPTNEG, W_CONNECT, W_HELO, W_MAIL, W_RCPT, W_DATA, W_HDR, W_EOH, W_BODY, W_EOM };

/* Where the message stage is. */
enum milter_mphase { MP_DATA, MP_HDRS, MP_EOH, MP_BODY, MP_EOM, MP_DONE };

struct milter_engine {
    enum milter_estate st;
    enum milter_want want;
    uint32_t offer_actions, offer_proto;
    uint32_t actions, proto;  /* negotiated */
    strbuf out, in;
    /* the current answer */
    enum milter_action action;
    char *line;               /* REPLYCODE text */
    char *why;                /* FAILED reason */
    /* finality */
    enum milter_action sess_final, txn_final; /* CONTINUE = none */
    char *sess_line, *txn_line;
    bool in_txn;              /* MAIL was sent and no ABORT since */
    /* the message stage */
    const char *msg;
    size_t len, pos, body_off, body_pos;
    enum milter_mphase phase;
    bool msg_answer;          /* the current answer is the message stage's: it carries mods */
    strbuf mac_eoh, mac_eom;  /* their D packets, built when the stage starts */
    milter_mods mods;
};

/* ---- small helpers ------------------------------------------------------------------- */

/* be32_put - append v as 4 big-endian bytes. */
static void be32_put(strbuf *sb, uint32_t v)
{
    char b[4] = {(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v};
    sb_append(sb, b, 4);
}

/* be32_get - the big-endian 32-bit value at p. */
static uint32_t be32_get(const void *p)
{
    const unsigned char *u = p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* pkt_begin - start a packet of command cmd in sb; returns where its length goes. */
static size_t pkt_begin(strbuf *sb, char cmd)
{
    size_t at = sb->len;
    be32_put(sb, 0);
    sb_putc(sb, cmd);
    return at;
}

/* pkt_end - write the length of the packet begun at at. */
static void pkt_end(strbuf *sb, size_t at)
{
    uint32_t n = (uint32_t)(sb->len - at - 4);
    unsigned char *p = (unsigned char *)sb->data + at;
    p[0] = (unsigned char)(n >> 24), p[1] = (unsigned char)(n >> 16), p[2] = (unsigned char)(n >> 8), p[3] = (unsigned char)n;
}

/* put_str0 - append s and its NUL ("" for NULL). */
static void put_str0(strbuf *sb, const char *s)
{
    if (s) sb_puts(sb, s);
    sb_putc(sb, '\0');
}

/* put_macros - a SMFIC_MACRO packet for the command cmd, when there is any macro with a value. */
static void put_macros(strbuf *sb, char cmd, const milter_macro *mac, size_t n)
{
    size_t at = 0;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (!mac[i].name || !*mac[i].name || !mac[i].value) continue;
        if (!any) {
            at = pkt_begin(sb, SMFIC_MACRO);
            sb_putc(sb, cmd);
            any = true;
        }
        put_str0(sb, mac[i].name);
        put_str0(sb, mac[i].value);
    }
    if (any) pkt_end(sb, at);
}

/* mods_reset - forget the modifications of the last EOM. */
static void mods_reset(milter_mods *m)
{
    for (size_t i = 0; i < m->n_hdr; i++) {
        free(m->hdr[i].name);
        free(m->hdr[i].value);
    }
    free(m->hdr);
    sv_free(&m->add_rcpts);
    sv_free(&m->add_rcpt_args);
    sv_free(&m->del_rcpts);
    free(m->chgfrom);
    free(m->chgfrom_args);
    sb_free(&m->body);
    free(m->quarantine);
    memset(m, 0, sizeof *m);
}

/* set_line - replace the owned string *dst with a copy of s (NULL allowed). */
static void set_line(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? xstrdup(s) : NULL;
}

/* answer - the current stage is answered with a (line: REPLYCODE's text). */
static void answer(milter_engine *e, enum milter_action a, const char *line)
{
    e->st = MILTER_ES_READY;
    e->want = W_NONE;
    e->action = a;
    set_line(&e->line, a == MILTER_REPLYCODE ? line : NULL);
}

/* fail - the connection is unusable from now on. */
static void fail(milter_engine *e, const char *why)
{
    if (e->st == MILTER_ES_FAILED) return;
    e->st = MILTER_ES_FAILED;
    e->want = W_NONE;
    e->action = MILTER_FAILED;
    set_line(&e->why, why);
    e->msg = NULL;
}

/* ---- the public basics ---------------------------------------------------------------- */

/* milter_new - an engine that has queued its OPTNEG. */
milter_engine *milter_new(uint32_t actions, uint32_t proto)
{
    milter_engine *e = xcalloc(1, sizeof *e);
    e->offer_actions = actions ? actions : MILTER_OFFER_ACTIONS;
    e->offer_proto = proto ? proto : MILTER_OFFER_PROTO;
    size_t at = pkt_begin(&e->out, SMFIC_OPTNEG);
    be32_put(&e->out, MILTER_VERSION);
    be32_put(&e->out, e->offer_actions);
    be32_put(&e->out, e->offer_proto);
    pkt_end(&e->out, at);
    e->st = MILTER_ES_WAIT;
    e->want = W_OPTNEG;
    return e;
}

/* milter_free - release the engine. */
void milter_free(milter_engine *e)
{
    if (!e) return;
    sb_free(&e->out);
    sb_free(&e->in);
    sb_free(&e->mac_eoh);
    sb_free(&e->mac_eom);
    free(e->line);
    free(e->why);
    free(e->sess_line);
    free(e->txn_line);
    mods_reset(&e->mods);
    free(e);
}

/* milter_fail - the adapter gave up on the connection. */
void milter_fail(milter_engine *e, const char *why)
{
    fail(e, why);
}

/* milter_take_output - hand over the queued bytes. */
void milter_take_output(milter_engine *e, strbuf *out)
{
    if (!e->out.len) return;
    sb_append(out, e->out.data, e->out.len);
    sb_reset(&e->out);
}

/* milter_state - where the engine is. */
enum milter_estate milter_state(const milter_engine *e)
{
    return e->st;
}

/* milter_reply_get - the current answer. */
milter_reply milter_reply_get(const milter_engine *e)
{
    milter_reply r = {.action = e->st == MILTER_ES_FAILED ? MILTER_FAILED : e->action};
    if (r.action == MILTER_REPLYCODE) r.line = e->line;
    if (r.action == MILTER_FAILED) r.reason = e->why ? e->why : "failed";
    if (r.action == MILTER_QUARANTINE) r.reason = e->mods.quarantine;
    if (e->msg_answer && r.action != MILTER_FAILED) r.mods = &e->mods;
    return r;
}

/* milter_negotiated - what OPTNEG settled. */
void milter_negotiated(const milter_engine *e, uint32_t *actions, uint32_t *proto)
{
    if (actions) *actions = e->actions;
    if (proto) *proto = e->proto;
}

/* milter_action_name - the action's name for logs. */
const char *milter_action_name(enum milter_action a)
{
    static const char *const names[] = {"CONTINUE", "ACCEPT",     "REJECT", "TEMPFAIL", "DISCARD",
                                        "REPLYCODE", "QUARANTINE", "SKIP",   "FAILED"};
    return (unsigned)a < SL_ARRAY_LEN(names) ? names[a] : "?";
}

/* milter_replycode_check - a valid 4xx/5xx reply of one or more CRLF-separated lines with one code. */
bool milter_replycode_check(const char *s, size_t len)
{
    if (len < 3 || len > MILTER_MAX_REPLY) return false;
    const char *code = s;
    if ((code[0] != '4' && code[0] != '5') || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9')
        return false;
    size_t i = 0;
    while (i < len) {
        const char *crlf = memmem(s + i, len - i, "\r\n", 2);
        size_t end = crlf ? (size_t)(crlf - s) : len;
        size_t ll = end - i;
        if (ll < 3 || ll > 512 || memcmp(s + i, code, 3) != 0) return false;
        bool last = !crlf;
        if (ll > 3 && s[i + 3] != (last ? ' ' : '-')) return false;
        if (ll == 3 && !last) return false;
        for (size_t k = i; k < end; k++) {
            unsigned char c = (unsigned char)s[k];
            if ((c < 32 && c != '\t') || c == 127) return false;
        }
        if (crlf && end + 2 == len) return false; /* a trailing CRLF: an empty last line */
        i = crlf ? end + 2 : len;
    }
    return true;
}

/* ---- stage starts --------------------------------------------------------------------- */

/* stage_ok - whether a stage may start now; otherwise the engine fails (misuse is loud). */
static bool stage_ok(milter_engine *e)
{
    e->msg_answer = false;
    if (e->st == MILTER_ES_READY) return true;
    if (e->st == MILTER_ES_WAIT) fail(e, "stage started while a reply was awaited");
    return false;
}

/* final_answer - answer at once with a sticky final action (session, or transaction if txn); true if one applied. */
static bool final_answer(milter_engine *e, bool txn)
{
    if (e->sess_final != MILTER_CONTINUE) {
        answer(e, e->sess_final, e->sess_line);
        return true;
    }
    if (txn && e->txn_final != MILTER_CONTINUE) {
        answer(e, e->txn_final, e->txn_line);
        return true;
    }
    return false;
}

/* send_event - macros and one command packet built by the caller in body; wait unless nr. */
static void send_event(milter_engine *e, enum milter_want w, bool nr)
{
    if (nr) {
        answer(e, MILTER_CONTINUE, NULL);
    } else {
        e->st = MILTER_ES_WAIT;
        e->want = w;
    }
}

/* milter_connect - SMFIC_CONNECT. */
void milter_connect(milter_engine *e, const char *hostname, char family, unsigned port, const char *addr,
                    const milter_macro *mac, size_t n_mac)
{
    if (!stage_ok(e) || final_answer(e, false)) return;
    if (e->proto & SMFIP_NOCONNECT) { answer(e, MILTER_CONTINUE, NULL); return; }
    put_macros(&e->out, SMFIC_CONNECT, mac, n_mac);
    size_t at = pkt_begin(&e->out, SMFIC_CONNECT);
    put_str0(&e->out, hostname && *hostname ? hostname : (addr ? addr : "unknown"));
    if (family == '4' || family == '6' || family == 'L') {
        sb_putc(&e->out, family);
        char p[2] = {(char)((port >> 8) & 0xff), (char)(port & 0xff)};
        sb_append(&e->out, p, 2);
        put_str0(&e->out, addr);
    } else {
        sb_putc(&e->out, 'U');
    }
    pkt_end(&e->out, at);
    send_event(e, W_CONNECT, e->proto & SMFIP_NR_CONN);
}

/* milter_helo - SMFIC_HELO. */
void milter_helo(milter_engine *e, const char *helo, const milter_macro *mac, size_t n_mac)
{
    if (!stage_ok(e) || final_answer(e, false)) return;
    if (e->proto & SMFIP_NOHELO) { answer(e, MILTER_CONTINUE, NULL); return; }
    put_macros(&e->out, SMFIC_HELO, mac, n_mac);
    size_t at = pkt_begin(&e->out, SMFIC_HELO);
    put_str0(&e->out, helo);
    pkt_end(&e->out, at);
    send_event(e, W_HELO, e->proto & SMFIP_NR_HELO);
}

/* txn_clear - forget the transaction: its final action, its message and modifications. */
static void txn_clear(milter_engine *e)
{
    e->txn_final = MILTER_CONTINUE;
    set_line(&e->txn_line, NULL);
    e->msg = NULL;
    e->phase = MP_DATA;
    mods_reset(&e->mods);
}

/* put_addr_args - an address and its ESMTP arguments, each NUL-terminated. */
static void put_addr_args(strbuf *sb, const char *addr, const char *const *args, size_t n)
{
    put_str0(sb, addr);
    for (size_t i = 0; i < n; i++)
        if (args[i]) put_str0(sb, args[i]);
}

/* milter_mail - SMFIC_MAIL, aborting an unfinished transaction first. */
void milter_mail(milter_engine *e, const char *sender, const char *const *args, size_t n_args,
                 const milter_macro *mac, size_t n_mac)
{
    if (!stage_ok(e)) return;
    if (e->in_txn && e->sess_final == MILTER_CONTINUE) {
        size_t at = pkt_begin(&e->out, SMFIC_ABORT);
        pkt_end(&e->out, at);
    }
    e->in_txn = false;
    txn_clear(e);
    if (final_answer(e, false)) return;
    e->in_txn = true;
    if (e->proto & SMFIP_NOMAIL) { answer(e, MILTER_CONTINUE, NULL); return; }
    put_macros(&e->out, SMFIC_MAIL, mac, n_mac);
    size_t at = pkt_begin(&e->out, SMFIC_MAIL);
    put_addr_args(&e->out, sender, args, n_args);
    pkt_end(&e->out, at);
    send_event(e, W_MAIL, e->proto & SMFIP_NR_MAIL);
}

/* milter_rcpt - SMFIC_RCPT. */
void milter_rcpt(milter_engine *e, const char *rcpt, const char *const *args, size_t n_args,
                 const milter_macro *mac, size_t n_mac)
{
    if (!stage_ok(e) || final_answer(e, true)) return;
    if (e->proto & SMFIP_NORCPT) { answer(e, MILTER_CONTINUE, NULL); return; }
    put_macros(&e->out, SMFIC_RCPT, mac, n_mac);
    size_t at = pkt_begin(&e->out, SMFIC_RCPT);
    put_addr_args(&e->out, rcpt, args, n_args);
    pkt_end(&e->out, at);
    send_event(e, W_RCPT, e->proto & SMFIP_NR_RCPT);
}

/* A header of a message: [start, end) with its CRLF, the name [start, start + name_len), the colon at colon. */
typedef struct {
    size_t start, end, name_len, colon;
} hdr_span;

/* hdr_next - the header at *pos of msg, advancing *pos; false at the end of the header block
 * (then *pos is where the body starts, after the empty line if there is one; *sep says so). */
static bool hdr_next(const char *msg, size_t len, size_t *pos, hdr_span *h, bool *sep)
{
    size_t p = *pos;
    if (sep) *sep = false;
    if (p >= len) return false;
    if (len - p >= 2 && msg[p] == '\r' && msg[p + 1] == '\n') {
        *pos = p + 2;
        if (sep) *sep = true;
        return false;
    }
    size_t i = p;
    while (i < len && (unsigned char)msg[i] > 32 && (unsigned char)msg[i] < 127 && msg[i] != ':') i++;
    size_t name_end = i;
    while (i < len && (msg[i] == ' ' || msg[i] == '\t')) i++; /* RFC 5322 obsolete syntax: blanks before the colon */
    if (name_end == p || i >= len || msg[i] != ':') return false; /* no header: the body starts here, without a separator */
    size_t e = p;
    for (;;) { /* the line and its continuation lines */
        const char *nl = memchr(msg + e, '\n', len - e);
        e = nl ? (size_t)(nl - msg) + 1 : len;
        if (e >= len || (msg[e] != ' ' && msg[e] != '\t')) break;
    }
    h->start = p;
    h->end = e;
    h->name_len = name_end - p;
    h->colon = i;
    *pos = e;
    return true;
}

/* put_header - SMFIC_HEADER for h: name, value (leading blanks dropped unless LEADSPC), folds as LF. */
static void put_header(milter_engine *e, const hdr_span *h)
{
    size_t at = pkt_begin(&e->out, SMFIC_HEADER);
    sb_append(&e->out, e->msg + h->start, h->name_len);
    sb_putc(&e->out, '\0');
    size_t v = h->colon + 1, end = h->end;
    if (!(e->proto & SMFIP_HDR_LEADSPC))
        while (v < end && (e->msg[v] == ' ' || e->msg[v] == '\t')) v++;
    if (end > v && e->msg[end - 1] == '\n') end--;
    if (end > v && e->msg[end - 1] == '\r') end--;
    /* a packet a milter can take (libmilter's limit is 64 KiB): an absurdly long header is cut */
    if (end - v > MILTER_CHUNK - h->name_len - 3) end = v + (MILTER_CHUNK - h->name_len - 3);
    for (size_t i = v; i < end; i++) {
        char c = e->msg[i];
        if (c == '\r' && i + 1 < end && e->msg[i + 1] == '\n') continue;
        sb_putc(&e->out, c ? c : ' ');
    }
    sb_putc(&e->out, '\0');
    pkt_end(&e->out, at);
}

/* msg_advance - send the message stage's packets up to the next reply due, or answer it. */
static void msg_advance(milter_engine *e)
{
    for (;;) {
        switch (e->phase) {
        case MP_DATA:
            e->phase = MP_HDRS;
            e->pos = 0;
            if (e->proto & SMFIP_NODATA) break;
            /* the DATA macros were queued by milter_message */
            {
                size_t at = pkt_begin(&e->out, SMFIC_DATA);
                pkt_end(&e->out, at);
            }
            if (!(e->proto & SMFIP_NR_DATA)) { send_event(e, W_DATA, false); return; }
            break;
        case MP_HDRS: {
            hdr_span h;
            bool sep;
            if (!hdr_next(e->msg, e->len, &e->pos, &h, &sep)) {
                e->body_off = e->body_pos = e->pos;
                e->phase = MP_EOH;
                break;
            }
            if (e->proto & SMFIP_NOHDRS) break;
            put_header(e, &h);
            if (!(e->proto & SMFIP_NR_HDR)) { send_event(e, W_HDR, false); return; }
            break;
        }
        case MP_EOH:
            e->phase = MP_BODY;
            if (e->proto & SMFIP_NOEOH) break;
            sb_append(&e->out, e->mac_eoh.data, e->mac_eoh.len);
            {
                size_t at = pkt_begin(&e->out, SMFIC_EOH);
                pkt_end(&e->out, at);
            }
            if (!(e->proto & SMFIP_NR_EOH)) { send_event(e, W_EOH, false); return; }
            break;
        case MP_BODY: {
            if ((e->proto & SMFIP_NOBODY) || e->body_pos >= e->len) {
                e->phase = MP_EOM;
                break;
            }
            size_t n = e->len - e->body_pos < MILTER_CHUNK ? e->len - e->body_pos : MILTER_CHUNK;
            size_t at = pkt_begin(&e->out, SMFIC_BODY);
            sb_append(&e->out, e->msg + e->body_pos, n);
            pkt_end(&e->out, at);
            e->body_pos += n;
            if (!(e->proto & SMFIP_NR_BODY)) { send_event(e, W_BODY, false); return; }
            break;
        }
        case MP_EOM:
            sb_append(&e->out, e->mac_eom.data, e->mac_eom.len);
            {
                size_t at = pkt_begin(&e->out, SMFIC_BODYEOB);
                pkt_end(&e->out, at);
            }
            e->mods.leadspc = (e->proto & SMFIP_HDR_LEADSPC) != 0;
            { send_event(e, W_EOM, false); return; }
        case MP_DONE:
            return;
        }
    }
}

/* milter_message - the message stage. */
void milter_message(milter_engine *e, const char *msg, size_t len, const milter_macro *mac_data, size_t n_data,
                    const milter_macro *mac_eoh, size_t n_eoh, const milter_macro *mac_eom, size_t n_eom)
{
    if (!stage_ok(e)) return;
    mods_reset(&e->mods);
    if (final_answer(e, true)) {
        e->msg_answer = true; /* the answer carries (empty) modifications */
        return;
    }
    e->msg = msg;
    e->len = len;
    e->phase = MP_DATA;
    sb_reset(&e->mac_eoh);
    sb_reset(&e->mac_eom);
    if (!(e->proto & SMFIP_NODATA)) put_macros(&e->out, SMFIC_DATA, mac_data, n_data);
    put_macros(&e->mac_eoh, SMFIC_EOH, mac_eoh, n_eoh);
    put_macros(&e->mac_eom, SMFIC_BODYEOB, mac_eom, n_eom);
    msg_advance(e);
}

/* milter_abort - SMFIC_ABORT. */
void milter_abort(milter_engine *e)
{
    if (!stage_ok(e)) return;
    if (e->in_txn && e->sess_final == MILTER_CONTINUE) {
        size_t at = pkt_begin(&e->out, SMFIC_ABORT);
        pkt_end(&e->out, at);
    }
    e->in_txn = false;
    txn_clear(e);
    answer(e, MILTER_CONTINUE, NULL);
}

/* milter_quit - SMFIC_QUIT; nothing more is said. */
void milter_quit(milter_engine *e)
{
    if (e->st == MILTER_ES_FAILED) return;
    size_t at = pkt_begin(&e->out, SMFIC_QUIT);
    pkt_end(&e->out, at);
    fail(e, "quit");
}

/* ---- replies -------------------------------------------------------------------------- */

/* A packet's data being read field by field. */
typedef struct {
    const char *p;
    size_t n;
} rd;

/* rd_str - the next NUL-terminated string (pointing into the packet); NULL if none is complete. */
static const char *rd_str(rd *r)
{
    const char *z = r->n ? memchr(r->p, '\0', r->n) : NULL;
    if (!z) return NULL;
    const char *s = r->p;
    r->n -= (size_t)(z - r->p) + 1;
    r->p = z + 1;
    return s;
}

/* rd_u32 - the next big-endian 32-bit value; false if fewer than 4 bytes are left. */
static bool rd_u32(rd *r, uint32_t *v)
{
    if (r->n < 4) return false;
    *v = be32_get(r->p);
    r->p += 4;
    r->n -= 4;
    return true;
}

/* hdr_name_ok - a header field name: 1 to 998 printable characters without ':'. */
static bool hdr_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 998) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 32 || (unsigned char)s[i] >= 127 || s[i] == ':') return false;
    return true;
}

/* on_optneg - the milter's OPTNEG: version, actions, protocol flags (and macro lists we ignore). */
static void on_optneg(milter_engine *e, char cmd, rd *r)
{
    uint32_t ver, act, proto;
    if (cmd != SMFIC_OPTNEG || !rd_u32(r, &ver) || !rd_u32(r, &act) || !rd_u32(r, &proto))
        { fail(e, "bad option negotiation reply"); return; }
    if (ver < 2 || ver > MILTER_VERSION) { fail(e, "unsupported milter protocol version"); return; }
    e->actions = act & e->offer_actions;
    e->proto = proto & e->offer_proto;
    answer(e, MILTER_CONTINUE, NULL);
}

/* add_mod - count one modification; false (and FAILED) when the milter may not make it or made too many. */
static bool add_mod(milter_engine *e, uint32_t need)
{
    if (e->want != W_EOM) {
        fail(e, "modification outside end of message");
        return false;
    }
    if (!(e->actions & need)) {
        fail(e, "modification not negotiated");
        return false;
    }
    if (++e->mods.count > MILTER_MAX_MODS) {
        fail(e, "too many modifications");
        return false;
    }
    return true;
}

/* on_hdr_mod - 'h', 'i' or 'm'. */
static void on_hdr_mod(milter_engine *e, char cmd, rd *r)
{
    uint32_t idx = 0;
    if (!add_mod(e, cmd == 'm' ? SMFIF_CHGHDRS : SMFIF_ADDHDRS)) return;
    if (cmd != 'h' && !rd_u32(r, &idx)) { fail(e, "truncated header modification"); return; }
    const char *name = rd_str(r), *value = rd_str(r);
    if (!name || !value || r->n) { fail(e, "malformed header modification"); return; }
    if (!hdr_name_ok(name)) { fail(e, "bad header name in modification"); return; }
    milter_mods *m = &e->mods;
    m->hdr = xrealloc(m->hdr, (m->n_hdr + 1) * sizeof *m->hdr);
    m->hdr[m->n_hdr++] = (milter_hdr_mod){
        .op = cmd == 'h' ? MILTER_HDR_ADD : cmd == 'i' ? MILTER_HDR_INSERT : MILTER_HDR_CHANGE,
        .index = idx, .name = xstrdup(name), .value = xstrdup(value)};
}

/* on_other_mod - recipients, sender, body, quarantine. */
static void on_other_mod(milter_engine *e, char cmd, rd *r)
{
    static const struct {
        char cmd;
        uint32_t need;
    } need[] = {{'+', SMFIF_ADDRCPT}, {'2', SMFIF_ADDRCPT_PAR}, {'-', SMFIF_DELRCPT}, {'e', SMFIF_CHGFROM},
                {'b', SMFIF_CHGBODY}, {'q', SMFIF_QUARANTINE}};
    uint32_t n = 0;
    for (size_t i = 0; i < SL_ARRAY_LEN(need); i++)
        if (need[i].cmd == cmd) n = need[i].need;
    if (!add_mod(e, n)) return;
    milter_mods *m = &e->mods;
    if (cmd == 'b') {
        if (m->body.len + r->n > MILTER_MAX_BODY) { fail(e, "replaced body too large"); return; }
        m->body_replaced = true;
        sb_append(&m->body, r->p, r->n);
        return;
    }
    const char *a = rd_str(r);
    const char *b = (cmd == '2' || cmd == 'e') && r->n ? rd_str(r) : NULL;
    if (!a || !*a || r->n) { fail(e, "malformed modification"); return; }
    switch (cmd) {
    case '+':
    case '2':
        sv_push(&m->add_rcpts, a);
        sv_push(&m->add_rcpt_args, b ? b : "");
        break;
    case '-': sv_push(&m->del_rcpts, a); break;
    case 'e':
        set_line(&m->chgfrom, a);
        set_line(&m->chgfrom_args, b && *b ? b : NULL);
        break;
    case 'q': set_line(&m->quarantine, a); break;
    }
}

/* decided - a reply action a (line: REPLYCODE) for the stage awaited: finality, then the answer or the next packet. */
static void decided(milter_engine *e, enum milter_action a, const char *line)
{
    enum milter_want w = e->want;
    if (a == MILTER_SKIP) {
        if (w != W_BODY) { fail(e, "skip outside the body"); return; }
        e->phase = MP_EOM;
        { msg_advance(e); return; }
    }
    bool is_msg = w == W_DATA || w == W_HDR || w == W_EOH || w == W_BODY || w == W_EOM;
    if (a == MILTER_CONTINUE && is_msg && w != W_EOM) { msg_advance(e); return; }
    if (w == W_EOM) {
        e->phase = MP_DONE;
        e->msg = NULL;
        e->in_txn = false; /* the milter has finished the transaction: no ABORT is owed */
        if ((a == MILTER_CONTINUE || a == MILTER_ACCEPT) && e->mods.quarantine) a = MILTER_QUARANTINE;
    } else if (is_msg) {
        e->phase = MP_DONE;
        e->msg = NULL;
    }
    if (a != MILTER_CONTINUE) {
        bool sess = w == W_CONNECT || (w == W_HELO && (a == MILTER_ACCEPT || a == MILTER_DISCARD));
        bool txn = w == W_MAIL || is_msg || (w == W_RCPT && (a == MILTER_ACCEPT || a == MILTER_DISCARD));
        enum milter_action keep = a == MILTER_QUARANTINE ? MILTER_ACCEPT : a;
        if (sess) {
            e->sess_final = keep;
            set_line(&e->sess_line, line);
        } else if (txn) {
            e->txn_final = keep;
            set_line(&e->txn_line, line);
        }
    }
    answer(e, a, line);
    e->msg_answer = is_msg;
}

/* on_packet - one whole packet from the milter. */
static void on_packet(milter_engine *e, char cmd, const char *data, size_t n, bool *progress)
{
    rd r = {data, n};
    if (e->want == W_NONE) { fail(e, "reply while none was awaited"); return; }
    if (e->want == W_OPTNEG) { on_optneg(e, cmd, &r); return; }
    switch (cmd) {
    case 'p':
        *progress = true;
        return;
    case 'c': case 'a': case 'r': case 't': case 'd': case 's': case 'f': {
        if (n) { fail(e, "unexpected data in a reply"); return; }
        enum milter_action a = cmd == 'c' ? MILTER_CONTINUE : cmd == 'a' ? MILTER_ACCEPT : cmd == 'r' ? MILTER_REJECT
                             : cmd == 'd' ? MILTER_DISCARD : cmd == 's' ? MILTER_SKIP : MILTER_TEMPFAIL;
        { decided(e, a, NULL); return; }
    }
    case 'y': {
        const char *s = rd_str(&r);
        if (!s || r.n || !milter_replycode_check(s, strlen(s))) { fail(e, "bad replycode"); return; }
        { decided(e, MILTER_REPLYCODE, s); return; }
    }
    case 'h': case 'i': case 'm':
        { on_hdr_mod(e, cmd, &r); return; }
    case '+': case '2': case '-': case 'e': case 'b': case 'q':
        { on_other_mod(e, cmd, &r); return; }
    default:
        { fail(e, "unknown reply command"); return; }
    }
}

/* milter_feed - parse every whole packet buffered. */
bool milter_feed(milter_engine *e, const void *buf, size_t len)
{
    bool progress = false, any = false;
    if (e->st == MILTER_ES_FAILED) return false;
    sb_append(&e->in, buf, len);
    size_t off = 0;
    while (e->st != MILTER_ES_FAILED && e->in.len - off >= 4) {
        uint32_t n = be32_get(e->in.data + off);
        if (n == 0 || n > MILTER_MAX_PACKET) {
            fail(e, n ? "packet too long" : "empty packet");
            break;
        }
        if (e->in.len - off - 4 < n) break;
        on_packet(e, e->in.data[off + 4], e->in.data + off + 5, n - 1, &progress);
        off += 4 + (size_t)n;
        any = true;
    }
    if (e->st == MILTER_ES_FAILED) {
        sb_reset(&e->in);
        return false;
    }
    if (off) {
        memmove(e->in.data, e->in.data + off, e->in.len - off);
        e->in.len -= off;
        e->in.data[e->in.len] = '\0';
    }
    return progress || (any && e->st == MILTER_ES_WAIT);
}

/* ---- applying the modifications ------------------------------------------------------- */

/* One header of the modified message: text with CRLF; name [text, text + name_len). */
typedef struct {
    const char *text;
    size_t len, name_len;
    char *owned;
} hdr_ent;

/* put_value - a value from the milter: line breaks as CRLF, each continuation starting with a blank. */
static void put_value(strbuf *sb, const char *v)
{
    size_t n = strlen(v);
    while (n && (v[n - 1] == '\n' || v[n - 1] == '\r')) n--;
    for (size_t i = 0; i < n; i++) {
        if (v[i] != '\r' && v[i] != '\n') {
            sb_putc(sb, v[i]);
            continue;
        }
        while (i + 1 < n && (v[i + 1] == '\r' || v[i + 1] == '\n')) i++; /* one break for a run of them */
        sb_puts(sb, "\r\n");
        if (i + 1 < n && v[i + 1] != ' ' && v[i + 1] != '\t') sb_putc(sb, ' ');
    }
}

/* ent_new - a header built from a modification. */
static hdr_ent ent_new(const char *name, const char *value, bool leadspc)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, name);
    sb_putc(&sb, ':');
    if (!leadspc) sb_putc(&sb, ' ');
    put_value(&sb, value);
    sb_puts(&sb, "\r\n");
    hdr_ent h = {.len = sb.len, .name_len = strlen(name)};
    h.owned = sb_steal(&sb);
    h.text = h.owned;
    return h;
}

/* put_crlf_text - append n bytes with every bare CR or LF made a CRLF. */
static void put_crlf_text(strbuf *out, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
            sb_puts(out, "\r\n");
            i++;
        } else if (p[i] == '\r' || p[i] == '\n') {
            sb_puts(out, "\r\n");
        } else {
            sb_putc(out, p[i]);
        }
    }
}

/* milter_mods_apply - the modified message. */
void milter_mods_apply(const char *msg, size_t len, const milter_mods *mods, strbuf *out)
{
    hdr_ent *h = NULL;
    size_t n = 0, cap = 0, pos = 0;
    hdr_span sp;
    bool sep = false;
    while (hdr_next(msg, len, &pos, &sp, &sep)) {
        if (n == cap) h = xrealloc(h, (cap = cap ? cap * 2 : 16) * sizeof *h);
        h[n++] = (hdr_ent){.text = msg + sp.start, .len = sp.end - sp.start, .name_len = sp.name_len};
    }
    size_t body_off = pos;
    for (size_t i = 0; mods && i < mods->n_hdr; i++) {
        const milter_hdr_mod *m = &mods->hdr[i];
        size_t at = n, nl = strlen(m->name);
        if (m->op == MILTER_HDR_CHANGE) {
            uint32_t seen = 0, want = m->index ? m->index : 1; /* 0 means the first, as Sendmail and Postfix take it */
            for (size_t k = 0; k < n && at == n; k++)
                if (h[k].name_len == nl && !strncasecmp(h[k].text, m->name, nl) && ++seen == want) at = k;
            if (at < n) {
                free(h[at].owned);
                if (!*m->value) {
                    memmove(h + at, h + at + 1, (n - at - 1) * sizeof *h);
                    n--;
                } else {
                    h[at] = ent_new(m->name, m->value, mods->leadspc);
                }
                continue;
            }
            if (!*m->value) continue; /* deleting a header that is not there */
        } else if (m->op == MILTER_HDR_INSERT && m->index < n) {
            at = m->index;
        }
        if (n == cap) h = xrealloc(h, (cap = cap ? cap * 2 : 16) * sizeof *h);
        memmove(h + at + 1, h + at, (n - at) * sizeof *h);
        h[at] = ent_new(m->name, m->value, mods->leadspc);
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        sb_append(out, h[i].text, h[i].len);
        /* an original last header without its line end (a message of headers only) */
        if (h[i].len < 2 || h[i].text[h[i].len - 1] != '\n') sb_puts(out, "\r\n");
        free(h[i].owned);
    }
    free(h);
    bool body = mods && mods->body_replaced ? mods->body.len > 0 : body_off < len;
    if (sep || body) sb_puts(out, "\r\n");
    if (mods && mods->body_replaced) put_crlf_text(out, mods->body.data, mods->body.len);
    else sb_append(out, msg + body_off, len - body_off);
}
