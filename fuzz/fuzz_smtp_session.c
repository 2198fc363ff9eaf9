/*
 * fuzz_smtp_session.c - whole client sessions through the ESMTP server engine (smtp/server.h).
 *
 * Input: byte 0 = session flags, byte 1 = seed of the read sizes, then everything the client
 * sends. The bytes reach smtp_sess_feed in reads of varying sizes (1, 2, 3, 7 ... 4096 bytes), so
 * command lines, end-of-data markers, BDAT chunks and AUTH continuations arrive split at every
 * kind of boundary. The harness behaves like smtp/listener.c: what the engine did not consume
 * stays buffered for the next read, the replies are taken after each read, a STARTTLS 220 drops
 * the pipelined rest of the buffer and "completes the handshake", and a commit is answered at
 * once (with OK, a permanent or a temporary failure, as the flags say).
 *
 * Properties: every reply line is "NNN" + ' ' or '-' + text, CRLF-terminated, with no other CR or
 * LF and a code from 200 to 599; a committed message is the Received: header plus content with
 * CRLF line ends only (bare CR/LF normalised or refused), no NUL and no line over 998 octets;
 * the engine consumes everything it is given unless it waits or closed.
 */
#include <strings.h>

#include "conf/conf.h"
#include "core/log.h"
#include "fuzz.h"
#include "smtp/session.h"

enum {
    FL_TLS_ACTIVE = 1,    /* the session is already encrypted */
    FL_AUTH_OFFERED = 2,  /* AUTH PLAIN LOGIN offered */
    FL_AUTH_PLAIN = 4,    /* ... even without TLS */
    FL_AUTH_REQUIRED = 8, /* MAIL only after AUTH */
    FL_NORMALISE = 16,    /* bare_lf=normalise */
    FL_TLS_OFFERED = 32,  /* STARTTLS offered */
    FL_COMMIT_FAIL = 64,  /* commits alternate between OK and a permanent failure */
    FL_COMMIT_TEMP = 128, /* every third commit fails temporarily (disk full) */
};

typedef struct {
    unsigned flags;
    unsigned commits;
} harness;

/* check_replies - every line of out is a well-formed reply line. */
static void check_replies(const strbuf *out)
{
    const char *p = out->data ? out->data : "";
    size_t n = out->len;
    FZ_CHECK(n == 0 || (n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n'), "replies end mid-line: %.*s", (int)n, p);
    FZ_CHECK(fz_no_bare_eol(p, n), "bare CR or LF in replies: %.*s", (int)n, p);
    for (size_t i = 0; i < n;) {
        const char *eol = memchr(p + i, '\n', n - i);
        size_t len = (size_t)(eol - (p + i)) - 1; /* without CRLF */
        const char *l = p + i;
        FZ_CHECK(len >= 3 && l[0] >= '2' && l[0] <= '5' && l[1] >= '0' && l[1] <= '9' && l[2] >= '0' && l[2] <= '9',
                 "bad reply code: %.*s", (int)len, l);
        FZ_CHECK(len == 3 || l[3] == ' ' || l[3] == '-', "bad reply separator: %.*s", (int)len, l);
        FZ_CHECK(memchr(l, '\0', len) == NULL, "NUL in a reply line");
        i += len + 2;
    }
}

/* answer - the decider's answer: accept (line NULL) or the given reply line. */
static void answer(smtp_sess *s, int code, const char *line)
{
    smtp_answer a = {code, line, 0, false, NULL};
    smtp_sess_answer(s, &a);
}

/* decide_rcpt - "bad..." unknown, "temp..." a lookup failure, "list..." a group of two. */
static void decide_rcpt(smtp_sess *s, const smtp_cmd *cmd)
{
    char *a = smtp_addr_format(&cmd->path);
    if (strncasecmp(a, "bad", 3) == 0) {
        answer(s, 550, "550 5.1.1 User unknown");
    } else if (strncasecmp(a, "temp", 4) == 0) {
        answer(s, 451, "451 4.3.0 Directory unavailable");
    } else {
        smtp_sess_add_rcpt(s, a, a, cmd->orcpt, "l", "", cmd->notify);
        if (strncasecmp(a, "list", 4) == 0) /* a group: one RCPT, two routed recipients */
            smtp_sess_add_rcpt(s, "member@example.test", a, cmd->orcpt, "tcp_local", "mx.example.test", cmd->notify);
        answer(s, 250, NULL);
    }
    free(a);
}

/* decide_auth - alice/secret passes, dir@down.test cannot be checked now, the rest fails. */
static void decide_auth(smtp_sess *s, const char *user, const char *pass)
{
    FZ_CHECK(user && pass, "auth asked without credentials");
    if (!strcmp(user, "alice@example.test") && !strcmp(pass, "secret")) answer(s, 235, NULL);
    else if (!strcmp(user, "dir@down.test")) answer(s, 454, "454 4.7.0 Temporary authentication failure");
    else answer(s, 535, "535 5.7.8 Authentication credentials invalid");
}

/* h_decide - the decisions, answered at once (the policy may answer later; the engine waits alike). */
static void h_decide(void *ctx, smtp_sess *s, const smtp_ask *q)
{
    (void)ctx;
    if (q->stage == SMTP_STAGE_RCPT) return decide_rcpt(s, q->cmd);
    if (q->stage == SMTP_STAGE_AUTH) return decide_auth(s, q->user, q->pass);
    if (q->stage == SMTP_STAGE_MAIL && s->auth_required && !s->auth_user)
        return answer(s, 530, "530 5.7.0 Authentication required");
    if (q->stage == SMTP_STAGE_MAIL && q->cmd->has_size && q->cmd->size > s->conf->opt.max_message_size)
        return answer(s, 552, "552 5.3.4 Message size exceeds fixed maximum message size");
    if (q->stage == SMTP_STAGE_MAIL) {
        char *a = smtp_addr_format(&q->cmd->path);
        bool spam = strncasecmp(a, "spam", 4) == 0;
        free(a);
        if (spam) return answer(s, 553, "553 5.7.1 Sender refused");
    }
    answer(s, 250, NULL);
}

/* h_commit - check the message, then answer at once (the listener would wait for the store). */
static void h_commit(void *ctx, smtp_sess *s)
{
    harness *h = ctx;
    FZ_CHECK(s->state == SESS_WAIT_COMMIT, "commit in state %d", (int)s->state);
    FZ_CHECK(s->n_rcpts > 0 && s->sender != NULL, "commit without an envelope");
    FZ_CHECK(s->hdr_len <= s->data.len, "header length %zu beyond data %zu", s->hdr_len, s->data.len);
    const char *body = s->data.data + s->hdr_len;
    size_t len = s->data.len - s->hdr_len;
    FZ_CHECK(len <= s->conf->opt.max_message_size, "message of %zu octets committed", len);
    size_t bare = fz_bare_eol(s->data.data, s->data.len);
    {
        FZ_CHECK(bare == s->data.len, "committed message (%s) has a bare CR or LF at %zu: %s",
                 s->bdat_mode ? "BDAT" : "DATA", bare, fz_show(s->data.data, s->data.len, bare));
        FZ_CHECK(len == 0 || (len >= 2 && body[len - 2] == '\r' && body[len - 1] == '\n'),
                 "committed message (%s) does not end with CRLF: %s", s->bdat_mode ? "BDAT" : "DATA",
                 fz_show(body, len, len));
        FZ_CHECK(fz_max_line(body, len) <= 998, "committed message has a line of %zu octets", fz_max_line(body, len));
    }
    FZ_CHECK(memchr(body, '\0', len) == NULL, "committed message contains NUL");
    h->commits++;
    if ((h->flags & FL_COMMIT_TEMP) && h->commits % 3 == 0)
        smtp_sess_commit_done(s, SL_TEMP, "write: No space left on device");
    else if ((h->flags & FL_COMMIT_FAIL) && h->commits % 2 == 0)
        smtp_sess_commit_done(s, SL_PERM, "554 5.7.1 Message refused by the content filter");
    else
        smtp_sess_commit_done(s, SL_OK, NULL);
}

static void h_id(void *ctx, char *buf, size_t len)
{
    harness *h = ctx;
    snprintf(buf, len, "FUZZ%04u", h->commits);
}

static void h_date(void *ctx, char *buf, size_t len)
{
    (void)ctx;
    snprintf(buf, len, "Thu, 26 Nov 2026 10:00:00 +0000");
}

static const smtp_server_ops ops = {NULL, NULL, h_decide, h_commit, h_id, h_date};

static sl_conf conf;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_set_level(LOG_LVL_ERROR);
    conf_options_defaults(&conf.opt);
    free(conf.opt.hostname);
    conf.opt.hostname = xstrdup("mx.example.test");
    conf.opt.max_message_size = 4000; /* small, so that the size limit is reached too */
    conf.opt.max_recipients = 5;
    conf.opt.max_errors = 20;
    conf.opt.auth_max_failures = 3;
    return 0;
}

/* read_size - the size of the next read: mostly small, sometimes a whole buffer. */
static size_t read_size(uint32_t *rng)
{
    static const size_t sizes[] = {1, 2, 3, 5, 7, 16, 64, 512, 4096};
    return sizes[fz_rng(rng) % SL_ARRAY_LEN(sizes)];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    harness h = {fz_u8(&in), 0};
    uint32_t rng = (uint32_t)fz_u8(&in) * 2654435761u + 1;
    conf.opt.bare_eol = (h.flags & FL_NORMALISE) ? BARE_EOL_NORMALISE : BARE_EOL_REJECT;

    smtp_sess_info info = {.id = "FZ1", .service = "SMTP", .src_channel = "tcp_local", .client_ip = "192.0.2.1",
                           .server_ip = "192.0.2.25"};
    smtp_sess *s = smtp_sess_new(&conf, &ops, &h, &info);
    s->tls_active = h.flags & FL_TLS_ACTIVE;
    if (s->tls_active) snprintf(s->tls_info, sizeof s->tls_info, "TLSv1.3 TLS_AES_256_GCM_SHA384");
    s->tls_offered = h.flags & FL_TLS_OFFERED;
    s->auth_offered = h.flags & FL_AUTH_OFFERED;
    s->auth_plain = h.flags & FL_AUTH_PLAIN;
    s->auth_required = h.flags & FL_AUTH_REQUIRED;
    smtp_sess_connect(s);
    smtp_sess_greet(s);
    check_replies(&s->out);
    sb_reset(&s->out);

    strbuf pending; /* the listener's input buffer */
    sb_init(&pending);
    while (in.n && s->state != SESS_CLOSED) {
        size_t got;
        const uint8_t *chunk = fz_bytes(&in, read_size(&rng), &got);
        sb_append(&pending, chunk, got);
        size_t used = smtp_sess_feed(s, pending.data, pending.len);
        FZ_CHECK(used <= pending.len, "consumed %zu of %zu", used, pending.len);
        FZ_CHECK(used == pending.len || s->state == SESS_CLOSED || s->state == SESS_STARTTLS,
                 "stopped after %zu of %zu bytes in state %d", used, pending.len, (int)s->state);
        memmove(pending.data, pending.data + used, pending.len - used);
        pending.len -= used;
        check_replies(&s->out);
        sb_reset(&s->out);
        s->reply_delay_ms = 0;
        if (s->state == SESS_STARTTLS) { /* pipelined bytes after STARTTLS are dropped, then TLS is up */
            sb_reset(&pending);
            smtp_sess_tls_started(s, "TLSv1.3 TLS_AES_128_GCM_SHA256");
        }
    }
    if (s->state != SESS_CLOSED) {
        if (h.commits & 1) smtp_sess_timeout(s);
        else smtp_sess_shutdown(s);
        check_replies(&s->out);
    }
    sb_free(&pending);
    smtp_sess_free(s);
    return 0;
}
