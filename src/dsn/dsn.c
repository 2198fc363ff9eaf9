/*
 * dsn.c - delivery status notifications (RFC 3461, 3462/6522, 3464); see dsn.h.
 *
 * The report is a multipart/report; report-type=delivery-status with three parts:
 *   1. text/plain for people: what happened to each recipient and why;
 *   2. message/delivery-status: per-message fields, then one block per recipient;
 *   3. the returned message (message/rfc822, RET=FULL and small enough) or its header section
 *      (text/rfc822-headers).
 * Every line we write ends in CRLF and is folded or cut so that no line of our own text exceeds
 * 998 octets; text that came from a peer (diagnostics, envid) is stripped of control characters
 * first, so a remote reply cannot add header fields. The boundary is derived from the queue id
 * and the time, and changed until it occurs in none of the parts. Pure: no clock, no randomness.
 */
#include "dsn/dsn.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/parse.h"

#define DSN_FOLD_COLS 78      /* fold our lines here when there is a space to fold at */
#define DSN_WORD_MAX 900      /* longest unbroken run we write; well under the 998 limit */

enum dsn_kind { DSN_KIND_FAILED, DSN_KIND_DELAYED, DSN_KIND_SUCCESS };

/* dsn_kind_of - what the report is about: any failure makes it a failure report. */
static enum dsn_kind dsn_kind_of(const dsn_report *reports, size_t n)
{
    if (n == 0) return DSN_KIND_FAILED;
    for (size_t i = 0; i < n; i++)
        if (!reports[i].action || strcmp(reports[i].action, "failed") == 0) return DSN_KIND_FAILED;
    if (strcmp(reports[0].action, "delayed") == 0) return DSN_KIND_DELAYED;
    return DSN_KIND_SUCCESS;
}

static const char *dsn_subject(enum dsn_kind k)
{
    switch (k) {
    case DSN_KIND_DELAYED: return "Delayed Mail (still being retried)";
    case DSN_KIND_SUCCESS: return "Successful Mail Delivery Report";
    default: return "Undelivered Mail Returned to Sender";
    }
}

static const char *dsn_intro(enum dsn_kind k)
{
    switch (k) {
    case DSN_KIND_DELAYED:
        return "Your message could not be delivered yet to one or more recipients. The mail system "
               "will keep trying; you do not need to send it again. The recipients concerned and "
               "the reasons are listed below.";
    case DSN_KIND_SUCCESS:
        return "Your message was delivered to the recipients listed below, as you asked to be told.";
    default:
        return "Your message could not be delivered to one or more recipients. The recipients and "
               "the reasons are listed below, and the message (or its header) is attached.";
    }
}

/* dsn_action_phrase - a human description of an RFC 3464 action. */
static const char *dsn_action_phrase(const char *action)
{
    static const struct { const char *action, *phrase; } phrases[] = {
        {"failed", "delivery failed"},
        {"delayed", "delivery delayed, still trying"},
        {"delivered", "delivered"},
        {"relayed", "relayed to a system that does not send delivery reports"},
        {"expanded", "delivered to a list and expanded"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(phrases); i++)
        if (strcmp(action, phrases[i].action) == 0) return phrases[i].phrase;
    return action;
}

/* dsn_default_status - the enhanced status to report when the caller gave none. */
static const char *dsn_default_status(const char *action)
{
    if (strcmp(action, "failed") == 0) return "5.0.0";
    if (strcmp(action, "delayed") == 0) return "4.0.0";
    return "2.0.0";
}

/*
 * dsn_clean - a copy of s safe to place in a line of ours: control characters (CR and LF above
 * all) become spaces and, unless keep8 is set, bytes above 0x7f become '?'. Caller frees.
 */
static char *dsn_clean(const char *s, bool keep8)
{
    char *c = xstrdup(s ? s : "");
    for (unsigned char *p = (unsigned char *)c; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) *p = ' ';
        else if (*p > 0x7f && !keep8) *p = '?';
    }
    return c;
}

/*
 * dsn_put_wrapped - append first, then the words of text, wrapping before DSN_FOLD_COLS with
 * CRLF + cont (for a header field cont is " ", which makes the break a fold), and cutting any
 * word longer than DSN_WORD_MAX into pieces. Ends with CRLF.
 */
static void dsn_put_wrapped(strbuf *sb, const char *first, const char *cont, const char *text)
{
    size_t col = strlen(first);
    bool line_has_word = false;
    const char *p = text;

    sb_puts(sb, first);
    while (*p) {
        while (*p == ' ') p++;
        size_t wl = strcspn(p, " ");
        while (wl > 0) {
            size_t piece = wl < DSN_WORD_MAX ? wl : DSN_WORD_MAX;
            if (line_has_word && col + 1 + piece > DSN_FOLD_COLS) {
                sb_puts(sb, "\r\n");
                sb_puts(sb, cont);
                col = strlen(cont);
            } else if (line_has_word) {
                sb_putc(sb, ' ');
                col++;
            }
            sb_append(sb, p, piece);
            col += piece;
            line_has_word = true;
            p += piece;
            wl -= piece;
        }
    }
    sb_puts(sb, "\r\n");
}

/* dsn_put_field - append a header-style field "Name: value", folded, with value cleaned. */
static void dsn_put_field(strbuf *sb, const char *name, const char *value, bool keep8)
{
    char *first = xasprintf("%s: ", name);
    char *clean = dsn_clean(value, keep8);
    dsn_put_wrapped(sb, first, " ", clean);
    free(clean);
    free(first);
}

/* dsn_has_type - whether s starts with an RFC 3464 type prefix such as "smtp;" or "dns;". */
static bool dsn_has_type(const char *s)
{
    size_t i = 0;
    while (isalnum((unsigned char)s[i]) || s[i] == '-') i++;
    if (i == 0) return false;
    while (s[i] == ' ') i++;
    return s[i] == ';';
}

/* dsn_typed - s with type prefix dflt_type added if it lacks one; caller frees. */
static char *dsn_typed(const char *s, const char *dflt_type)
{
    if (dsn_has_type(s)) return xstrdup(s);
    return xasprintf("%s; %s", dflt_type, s);
}

/* dsn_display_addr - how the human part names a recipient; caller frees. */
static char *dsn_display_addr(const qrcpt *r)
{
    if (r->orig && r->orig[0] && strcmp(r->orig, r->addr) != 0)
        return xasprintf("<%s> (expanded from <%s>)", r->addr, r->orig);
    return xasprintf("<%s>", r->addr);
}

/* dsn_has_8bit - whether any byte of p is above 0x7f. */
static bool dsn_has_8bit(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] > 0x7f) return true;
    return false;
}

/* dsn_human_part - part 1, headers included. */
/* tmpl_expand - template text with %h expanded and line ends folded into spaces (re-wrapped later). */
static char *tmpl_expand(const char *p, size_t len, const char *host)
{
    strbuf b;
    sb_init(&b);
    for (const char *e = p + len; p < e; p++) {
        if (p[0] == '%' && p + 1 < e && (p[1] == 'h' || p[1] == '%')) {
            if (p[1] == 'h') sb_puts(&b, host);
            else sb_putc(&b, '%');
            p++;
        } else if (*p == '\n' || *p == '\t') {
            sb_putc(&b, ' ');
        } else if (*p != '\r') {
            sb_putc(&b, *p);
        }
    }
    char *all = sb_steal(&b);
    char *out = xstrdup(str_trim(all));
    free(all);
    return out;
}

/* tmpl_split - a template's subject (first line "Subject: ...", else NULL) and its text. */
static void tmpl_split(const char *tmpl, const char *host, char **subject, char **body)
{
    *subject = NULL;
    const char *p = tmpl;
    if (str_has_prefix_ci(p, "Subject:")) {
        size_t len = strcspn(p, "\r\n");
        *subject = tmpl_expand(p + 8, len - 8, host);
        p += len;
    }
    *body = tmpl_expand(p, strlen(p), host);
}

static void dsn_human_part(strbuf *sb, const qmsg *m, const dsn_report *reports, size_t n,
                           const char *reporting_mta, const char *intro)
{
    strbuf text;
    char date[64];
    char *s;

    sb_init(&text);
    s = dsn_clean(reporting_mta, false);
    sb_printf(&text, "This is the mail system at host %s.\r\n\r\n", s);
    free(s);
    dsn_put_wrapped(&text, "", "", intro ? intro : dsn_intro(dsn_kind_of(reports, n)));
    rfc5322_date(m->arrival, date, sizeof date);
    sb_puts(&text, "\r\n");
    if (m->client && m->client[0]) {
        char *client = dsn_clean(m->client, false);
        s = xasprintf("The message was received at %s from %s.", date, client);
        free(client);
    } else {
        s = xasprintf("The message was received at %s.", date);
    }
    dsn_put_wrapped(&text, "", "", s);
    free(s);
    for (size_t i = 0; i < n; i++) {
        const dsn_report *rp = &reports[i];
        const char *action = rp->action ? rp->action : "failed";
        char *who = dsn_display_addr(rp->rcpt);
        char *line = xasprintf("%s: %s (%s)", who, dsn_action_phrase(action),
                               rp->status ? rp->status : dsn_default_status(action));
        char *clean = dsn_clean(line, true);
        sb_puts(&text, "\r\n");
        dsn_put_wrapped(&text, "", "    ", clean);
        free(clean);
        free(line);
        free(who);
        if (rp->diag) {
            clean = dsn_clean(rp->diag, false);
            dsn_put_wrapped(&text, "    ", "    ", clean);
            free(clean);
        }
    }
    /* only addresses may carry UTF-8 (SMTPUTF8); everything else was cleaned to ASCII */
    if (dsn_has_8bit(text.data, text.len))
        sb_puts(sb, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n");
    else
        sb_puts(sb, "Content-Type: text/plain; charset=us-ascii\r\n");
    sb_puts(sb, "Content-Description: Notification\r\n");
    sb_puts(sb, "\r\n");
    sb_append(sb, text.data, text.len);
    sb_free(&text);
}

/* dsn_rcpt_fields - one recipient block of part 2. */
static void dsn_rcpt_fields(strbuf *sb, const dsn_report *rp)
{
    const char *action = rp->action ? rp->action : "failed";
    char *v;

    if (rp->rcpt->orcpt) dsn_put_field(sb, "Original-Recipient", rp->rcpt->orcpt, true);
    v = xasprintf("rfc822; %s", rp->rcpt->addr);
    dsn_put_field(sb, "Final-Recipient", v, true);
    free(v);
    dsn_put_field(sb, "Action", action, false);
    dsn_put_field(sb, "Status", rp->status ? rp->status : dsn_default_status(action), false);
    if (rp->remote_mta) {
        v = dsn_typed(rp->remote_mta, "dns");
        dsn_put_field(sb, "Remote-MTA", v, false);
        free(v);
    }
    if (rp->diag) {
        v = dsn_typed(rp->diag, isdigit((unsigned char)rp->diag[0]) ? "smtp" : "X-Sluice");
        dsn_put_field(sb, "Diagnostic-Code", v, false);
        free(v);
    }
}

/* dsn_status_part - part 2, headers included. */
static void dsn_status_part(strbuf *sb, const qmsg *m, const dsn_report *reports, size_t n,
                            const char *reporting_mta)
{
    char date[64];
    char *v;

    sb_puts(sb, "Content-Type: message/delivery-status\r\n");
    sb_puts(sb, "Content-Description: Delivery report\r\n\r\n");
    v = xasprintf("dns; %s", reporting_mta);
    dsn_put_field(sb, "Reporting-MTA", v, false);
    free(v);
    if (m->envid) dsn_put_field(sb, "Original-Envelope-Id", m->envid, false);
    rfc5322_date(m->arrival, date, sizeof date);
    dsn_put_field(sb, "Arrival-Date", date, false);
    for (size_t i = 0; i < n; i++) {
        if (!reports[i].rcpt) continue;
        sb_puts(sb, "\r\n");
        dsn_rcpt_fields(sb, &reports[i]);
    }
}

/* dsn_header_len - length of data's header section, through the CRLF ending its last line. */
static size_t dsn_header_len(const char *data, size_t len)
{
    if (len >= 2 && data[0] == '\r' && data[1] == '\n') return 0;
    const char *end = memmem(data, len, "\r\n\r\n", 4);
    return end ? (size_t)(end - data) + 2 : len;
}

/*
 * dsn_returned_part - part 3, headers included. The whole message only when the sender asked for
 * it (RET=FULL), it fits max_return, and it is not BINARYMIME (which no 8-bit part may carry).
 */
static void dsn_returned_part(strbuf *sb, const qmsg *m, size_t max_return)
{
    const char *data = m->data ? m->data : "";
    size_t len = m->data ? m->data_len : 0;
    bool full = m->ret == DSN_RET_FULL && len <= max_return && m->body != BODY_BINARYMIME;

    if (full) {
        sb_puts(sb, "Content-Type: message/rfc822\r\n");
        sb_puts(sb, "Content-Description: Returned Message\r\n");
    } else {
        len = dsn_header_len(data, len);
        sb_puts(sb, "Content-Type: text/rfc822-headers\r\n");
        sb_puts(sb, "Content-Description: Returned Message Headers\r\n");
    }
    if (dsn_has_8bit(data, len)) sb_puts(sb, "Content-Transfer-Encoding: 8bit\r\n");
    sb_puts(sb, "\r\n");
    sb_append(sb, data, len);
}

/* dsn_hash - FNV-1a over s, continuing from h. */
static uint32_t dsn_hash(uint32_t h, const char *s)
{
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* dsn_id_token - the alphanumeric characters of the queue id, for boundary and Message-ID. */
static void dsn_id_token(const qmsg *m, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; i < sizeof m->id && m->id[i] && j + 1 < outlen; i++)
        if (isalnum((unsigned char)m->id[i])) out[j++] = m->id[i];
    if (j == 0 && outlen > 1) out[j++] = 'x';
    out[j] = '\0';
}

/* dsn_boundary - a boundary occurring in none of the parts; caller frees. */
static char *dsn_boundary(const qmsg *m, int64_t now, strbuf *const parts[], size_t nparts)
{
    char tok[21];
    dsn_id_token(m, tok, sizeof tok);
    for (unsigned k = 0;; k++) {
        char *b = xasprintf("=_sluice_%s_%lld_%u", tok, (long long)now, k);
        size_t bl = strlen(b);
        bool clash = false;
        for (size_t i = 0; i < nparts && !clash; i++)
            clash = parts[i]->len && memmem(parts[i]->data, parts[i]->len, b, bl) != NULL;
        if (!clash) return b;
        free(b);
    }
}

/* dsn_message_id - a Message-ID derived from the id, the time and what is reported; caller frees. */
static char *dsn_message_id(const qmsg *m, const dsn_report *reports, size_t n, const char *reporting_mta,
                            int64_t now)
{
    char tok[21];
    uint32_t h = 2166136261u;
    dsn_id_token(m, tok, sizeof tok);
    for (size_t i = 0; i < n; i++) {
        h = dsn_hash(h, reports[i].rcpt ? reports[i].rcpt->addr : "");
        h = dsn_hash(h, reports[i].action);
        h = dsn_hash(h, reports[i].status);
    }
    return xasprintf("<%s.%lld.%08x.dsn@%s>", tok, (long long)now, h, reporting_mta);
}

/* dsn_top_headers - the report's own header section, ending with the empty line. */
static void dsn_top_headers(strbuf *sb, const qmsg *m, const dsn_report *reports, size_t n,
                            const char *reporting_mta, int64_t now, const char *boundary, const char *subject)
{
    char date[64];
    char *v;

    v = xasprintf("Mail Delivery System <MAILER-DAEMON@%s>", reporting_mta);
    dsn_put_field(sb, "From", v, false);
    free(v);
    if (m->sender && m->sender[0]) {
        v = xasprintf("<%s>", m->sender);
        dsn_put_field(sb, "To", v, true);
        free(v);
    } else {
        dsn_put_field(sb, "To", "undisclosed-recipients:;", false);
    }
    dsn_put_field(sb, "Subject", subject ? subject : dsn_subject(dsn_kind_of(reports, n)), false);
    rfc5322_date(now, date, sizeof date);
    dsn_put_field(sb, "Date", date, false);
    v = dsn_message_id(m, reports, n, reporting_mta, now);
    dsn_put_field(sb, "Message-ID", v, false);
    free(v);
    dsn_put_field(sb, "Auto-Submitted", "auto-replied", false);
    dsn_put_field(sb, "MIME-Version", "1.0", false);
    sb_printf(sb, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                  "\tboundary=\"%s\"\r\n", boundary);
    sb_puts(sb, "\r\n");
}

char *dsn_build(const qmsg *m, const dsn_report *reports, size_t n, const char *reporting_mta,
                int64_t now, size_t max_return, size_t *len_out)
{
    return dsn_build_tmpl(m, reports, n, reporting_mta, now, max_return, NULL, len_out);
}

char *dsn_build_tmpl(const qmsg *m, const dsn_report *reports, size_t n, const char *reporting_mta, int64_t now,
                     size_t max_return, char *const templates[3], size_t *len_out)
{
    char *subject = NULL, *intro = NULL;
    const char *tmpl = templates ? templates[dsn_kind_of(reports, n)] : NULL;
    if (tmpl) {
        char *host = dsn_clean(reporting_mta, false);
        tmpl_split(tmpl, host, &subject, &intro);
        free(host);
    }
    strbuf human, status, returned, out;
    strbuf *const parts[] = {&human, &status, &returned};
    char *boundary;

    sb_init(&human);
    sb_init(&status);
    sb_init(&returned);
    sb_init(&out);
    dsn_human_part(&human, m, reports, n, reporting_mta, intro && *intro ? intro : NULL);
    dsn_status_part(&status, m, reports, n, reporting_mta);
    dsn_returned_part(&returned, m, max_return);
    boundary = dsn_boundary(m, now, parts, SL_ARRAY_LEN(parts));

    char *clean_subject = subject && *subject ? dsn_clean(subject, false) : NULL;
    dsn_top_headers(&out, m, reports, n, reporting_mta, now, boundary, clean_subject);
    free(clean_subject);
    free(subject);
    free(intro);
    sb_puts(&out, "This is a MIME-encapsulated message.\r\n");
    /* a delimiter is CRLF "--" boundary: the CRLF belongs to it, so each part keeps its last line end */
    for (size_t i = 0; i < SL_ARRAY_LEN(parts); i++) {
        sb_printf(&out, "\r\n--%s\r\n", boundary);
        sb_append(&out, parts[i]->data, parts[i]->len);
    }
    sb_printf(&out, "\r\n--%s--\r\n", boundary);

    free(boundary);
    sb_free(&human);
    sb_free(&status);
    sb_free(&returned);
    if (len_out) *len_out = out.len;
    return sb_steal(&out);
}
