/*
 * autoreply.h - messages the MTA writes on a recipient's behalf (a Sieve vacation reply, RFC
 * 3834 and RFC 5230), queued with the null envelope sender through the source channel's
 * dispositionchannel, like DSNs through the notificationchannel, so they share neither pool nor
 * backoff with ordinary mail and are never the subject of a DSN. Loop thread only.
 */
#ifndef SLUICE_AUTOREPLY_H
#define SLUICE_AUTOREPLY_H
#include "core/ctx.h"
#include "queue/enqueue.h"

typedef struct {
    const char *src_channel; /* the channel the original arrived on (its dispositionchannel is used) */
    const char *orig_id;     /* the original's queue id, for logs */
    const char *from;        /* the replying address (From:) */
    const char *to;          /* the original's envelope sender */
    const char *subject;     /* Subject: of the reply */
    const char *text;        /* the body (plain text, or a MIME entity when mime) */
    bool mime;               /* text is a MIME entity with its own header (vacation :mime) */
    const char *in_reply_to; /* the original's Message-ID, or NULL */
} autoreply;

/* autoreply_build - the reply's content (header and body, CRLF) into out; date and msgid given. */
void autoreply_build(const autoreply *a, const char *date, const char *msgid, strbuf *out);
/* autoreply_submit - build and queue a; cb(arg, res, err) when it is durable or failed. */
void autoreply_submit(sl_ctx *ctx, const autoreply *a, enqueue_cb cb, void *arg);

/* A message disposition notification (RFC 8098) that a message was deleted unread by a Sieve
 * reject or ereject (RFC 5429 2.1): sent to the original's envelope sender. */
typedef struct {
    const char *src_channel; /* the channel the original arrived on (its dispositionchannel is used) */
    const char *orig_id;     /* the original's queue id */
    const char *rcpt;        /* the recipient whose script rejected it (Final-Recipient, From:) */
    const char *to;          /* the original's envelope sender */
    const char *reason;      /* the script's reason */
    const char *header;      /* the original's header block (returned as text/rfc822-headers) */
    size_t header_len;
    const char *subject;     /* the original's Subject, or NULL */
    const char *msgid;       /* the original's Message-ID, or NULL */
} mdn_reject;

/* mdn_reject_build - the MDN's content (CRLF) into out; host: our name; date, msgid and boundary given. */
void mdn_reject_build(const mdn_reject *m, const char *host, const char *date, const char *msgid, const char *boundary,
                      strbuf *out);
/* mdn_reject_submit - build and queue m through the dispositionchannel (null envelope sender). */
void mdn_reject_submit(sl_ctx *ctx, const mdn_reject *m);

#endif
