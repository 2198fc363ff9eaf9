/*
 * autoreply.c - automatic replies through the dispositionchannel (see autoreply.h).
 */
#include "dsn/autoreply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/log.h"
#include "queue/store.h"
#include "rewrite/rewrite.h"
#include "rewrite/route.h"

typedef struct {
    enq_msg em;
    enqueue_cb cb;
    void *arg;
    char orig_id[32];
} reply_job;

/* clean_line - s without CR and LF (a header value that cannot inject fields). */
static void clean_line(strbuf *out, const char *s)
{
    for (; s && *s; s++) sb_putc(out, *s == '\r' || *s == '\n' ? ' ' : *s);
}

/* body_lines - text with every line ending made CRLF. */
static void body_lines(strbuf *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\r' && p[1] == '\n') continue;
        if (*p == '\n' || *p == '\r') sb_puts(out, "\r\n");
        else sb_putc(out, *p);
    }
    if (out->len < 2 || memcmp(out->data + out->len - 2, "\r\n", 2) != 0) sb_puts(out, "\r\n");
}

void autoreply_build(const autoreply *a, const char *date, const char *msgid, strbuf *out)
{
    sb_puts(out, "From: <");
    clean_line(out, a->from);
    sb_puts(out, ">\r\nTo: <");
    clean_line(out, a->to);
    sb_puts(out, ">\r\nSubject: ");
    clean_line(out, a->subject);
    sb_printf(out, "\r\nDate: %s\r\nMessage-ID: %s\r\n", date, msgid);
    if (a->in_reply_to && *a->in_reply_to) {
        sb_puts(out, "In-Reply-To: ");
        clean_line(out, a->in_reply_to);
        sb_puts(out, "\r\nReferences: ");
        clean_line(out, a->in_reply_to);
        sb_puts(out, "\r\n");
    }
    sb_puts(out, "Auto-Submitted: auto-replied (vacation)\r\nPrecedence: bulk\r\nMIME-Version: 1.0\r\n");
    if (a->mime) { /* the script's text is a MIME entity: its own header, then its body */
        body_lines(out, a->text);
        return;
    }
    sb_puts(out, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
    body_lines(out, a->text);
}

static void reply_committed(void *arg, sl_result res, const char *err)
{
    reply_job *j = arg;
    if (res == SL_OK)
        log_info(j->orig_id, "autoreply", "id=%s to=<%s> channel=%s", j->em.id, j->em.rcpts[0].addr,
                 j->em.rcpts[0].channel);
    else
        log_error(j->orig_id, "autoreply_error", "error=\"%s\"", err ? err : "");
    if (j->cb) j->cb(j->arg, res, err);
    enqueue_msg_free(&j->em);
    free(j);
}

/* submit_content - queue text (taken over) from <> to `to` through src_channel's dispositionchannel. */
static void submit_content(sl_ctx *ctx, const char *src_channel, const char *orig_id, const char *to, const char *id,
                           strbuf *text, enqueue_cb cb, void *arg)
{
    const sl_conf *c = ctx->conf;
    const sl_channel *src = conf_channel_by_name(c, src_channel);
    const char *dcname = src && src->dispositionchannel ? src->dispositionchannel : "process";
    rw_result rw;
    memset(&rw, 0, sizeof rw);
    const sl_channel *dc = conf_channel_by_name(c, dcname);
    char *chan = NULL, *host = NULL, *addr = NULL;
    if (dc) { /* the disposition channel itself (e.g. process): its rules route it on */
        chan = xstrdup(dc->name), host = xstrdup(""), addr = xstrdup(to);
    } else if (rewrite_address(c, to, dcname, &rw, NULL) == SL_OK) {
        chan = xstrdup(rw.channel->name), host = route_dest_host(&rw), addr = xstrdup(rw.addr);
    }
    rw_result_free(&rw);
    if (!chan) {
        log_error(orig_id, "autoreply_error", "to=<%s> error=\"no route\"", to);
        sb_free(text);
        if (cb) cb(arg, SL_PERM, "no route");
        return;
    }
    reply_job *j = xcalloc(1, sizeof *j);
    snprintf(j->orig_id, sizeof j->orig_id, "%s", orig_id);
    snprintf(j->em.id, sizeof j->em.id, "%s", id);
    j->cb = cb;
    j->arg = arg;
    j->em.sender = xstrdup(""); /* RFC 3834 3.3 / RFC 5230 5.1: no bounce comes back */
    j->em.is_notification = true;
    j->em.arrival = now_unix();
    j->em.src_channel = xstrdup(dcname);
    j->em.client = xstrdup("local");
    size_t len = text->len;
    j->em.content = qbody_adopt(sb_steal(text), len);
    enqueue_add_rcpt(&j->em, addr, to, NULL, chan, host, 0);
    free(chan);
    free(host);
    free(addr);
    enqueue_submit(ctx, &j->em, reply_committed, j);
}

void autoreply_submit(sl_ctx *ctx, const autoreply *a, enqueue_cb cb, void *arg)
{
    char id[32], date[64];
    store_new_id(ctx->store, id, sizeof id);
    char *msgid = xasprintf("<%s.autoreply@%s>", id, ctx->conf->opt.hostname);
    rfc5322_date(now_unix(), date, sizeof date);
    strbuf text;
    sb_init(&text);
    autoreply_build(a, date, msgid, &text);
    free(msgid);
    submit_content(ctx, a->src_channel, a->orig_id, a->to, id, &text, cb, arg);
}

void mdn_reject_build(const mdn_reject *m, const char *host, const char *date, const char *msgid, const char *boundary,
                      strbuf *out)
{
    sb_puts(out, "From: <");
    clean_line(out, m->rcpt);
    sb_puts(out, ">\r\nTo: <");
    clean_line(out, m->to);
    sb_puts(out, ">\r\nSubject: Disposition notification: ");
    clean_line(out, m->subject ? m->subject : "(no subject)");
    sb_printf(out, "\r\nDate: %s\r\nMessage-ID: %s\r\n", date, msgid);
    if (m->msgid && *m->msgid) {
        sb_puts(out, "In-Reply-To: ");
        clean_line(out, m->msgid);
        sb_puts(out, "\r\n");
    }
    sb_printf(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: multipart/report; report-type=disposition-notification;\r\n\tboundary=\"%s\"\r\n\r\n",
              boundary);
    sb_printf(out, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary);
    sb_puts(out, "Your message to ");
    clean_line(out, m->rcpt);
    sb_puts(out, " was rejected by the recipient's mail filter:\r\n\r\n");
    body_lines(out, m->reason && *m->reason ? m->reason : "(no reason given)");
    sb_printf(out, "\r\n--%s\r\nContent-Type: message/disposition-notification\r\n\r\n", boundary);
    sb_printf(out, "Reporting-UA: %s; Sluice\r\nFinal-Recipient: rfc822; ", host);
    clean_line(out, m->rcpt);
    sb_puts(out, "\r\n");
    if (m->msgid && *m->msgid) {
        sb_puts(out, "Original-Message-ID: ");
        clean_line(out, m->msgid);
        sb_puts(out, "\r\n");
    }
    sb_puts(out, "Disposition: automatic-action/MDN-sent-automatically; deleted\r\n");
    sb_printf(out, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
    sb_append(out, m->header, m->header_len);
    if (m->header_len < 2 || memcmp(m->header + m->header_len - 2, "\r\n", 2) != 0) sb_puts(out, "\r\n");
    sb_printf(out, "\r\n--%s--\r\n", boundary);
}

void mdn_reject_submit(sl_ctx *ctx, const mdn_reject *m)
{
    char id[32], date[64];
    store_new_id(ctx->store, id, sizeof id);
    char *msgid = xasprintf("<%s.mdn@%s>", id, ctx->conf->opt.hostname);
    char *boundary = xasprintf("%s/%s", id, ctx->conf->opt.hostname);
    rfc5322_date(now_unix(), date, sizeof date);
    strbuf text;
    sb_init(&text);
    mdn_reject_build(m, ctx->conf->opt.hostname, date, msgid, boundary, &text);
    free(msgid);
    free(boundary);
    submit_content(ctx, m->src_channel, m->orig_id, m->to, id, &text, NULL, NULL);
}
