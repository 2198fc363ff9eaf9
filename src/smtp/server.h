/*
 * server.h - the ESMTP server session engine (RFC 5321, 1870, 2920, 3030, 3461, 6152, 6531).
 *
 * Pure: smtp_sess_feed takes the bytes a client sent and appends replies to sess->out; it does
 * no I/O and reads no clock. Policy decisions that need the directory or the queue are made
 * through smtp_server_ops. Committing a message is asynchronous: the engine calls ops->commit
 * and consumes no more input until smtp_sess_commit_done. The I/O layer (smtp/listener.c)
 * writes sess->out in one write after each feed, and closes when sess->closing is set.
 * One session is used by one thread (the loop) only.
 */
#ifndef SLUICE_SMTP_SERVER_H
#define SLUICE_SMTP_SERVER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/util.h"
#include "smtp/parse.h"

typedef struct smtp_sess smtp_sess;

/* A recipient accepted at RCPT time, already routed. */
typedef struct {
    char *addr;    /* address to deliver to */
    char *orig;    /* address as given in RCPT TO */
    char *orcpt;   /* decoded ORCPT or NULL */
    char *channel; /* destination channel name */
    char *host;    /* routing host */
    unsigned notify;
} smtp_rcpt;

typedef struct {
    /* rcpt - decide on RCPT TO (cmd->path parsed); add routed recipients with smtp_sess_add_rcpt and
     * write the complete reply line (no CRLF) into reply. Returns the reply code. */
    int (*rcpt)(void *ctx, smtp_sess *s, const smtp_cmd *cmd, strbuf *reply);
    /* commit - the message in s is complete and valid; reply later with smtp_sess_commit_done. */
    void (*commit)(void *ctx, smtp_sess *s);
    /* new_id - a fresh queue id for the transaction's Received: header, into buf. */
    void (*new_id)(void *ctx, char *buf, size_t len);
    /* date - the current date in RFC 5322 form, into buf. */
    void (*date)(void *ctx, char *buf, size_t len);
    /* mail - decide on MAIL FROM (cmd->path parsed; NULL member = accept); write the reply line on refusal. */
    int (*mail)(void *ctx, smtp_sess *s, const smtp_cmd *cmd, strbuf *reply);
    /* auth - check a user name and password: SL_OK, SL_PERM (wrong), SL_TEMP (cannot tell now). */
    sl_result (*auth)(void *ctx, smtp_sess *s, const char *user, const char *pass);
} smtp_server_ops;

enum smtp_sess_state {
    SESS_CMD, SESS_DATA, SESS_BDAT, SESS_WAIT_COMMIT, SESS_CLOSED,
    SESS_STARTTLS, /* 220 to STARTTLS queued: the I/O layer discards pipelined input and starts the handshake */
    SESS_AUTH      /* waiting for an AUTH continuation line */
};

struct smtp_sess {
    /* fixed at creation */
    const sl_conf *conf;
    const smtp_server_ops *ops;
    void *ops_ctx;
    char id[24];           /* session id for logs */
    char *src_channel;     /* source channel of the service */
    char client_ip[64];
    bool client_internal;  /* inside internal_networks */
    char *client_name;     /* reverse name or NULL */
    const char *loop_token;/* advertised as XLOOP in EHLO (owned by the caller), or NULL */
    /* TLS and AUTH (set by the I/O layer from the service) */
    bool tls_offered;      /* STARTTLS may be offered */
    bool tls_required;     /* MAIL only after STARTTLS */
    bool tls_active;
    char tls_info[96];     /* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
    bool auth_offered;     /* AUTH may be offered (also needs TLS unless auth_plain) */
    bool auth_plain;       /* offer AUTH without TLS */
    bool auth_required;    /* MAIL only after AUTH */
    char *auth_user;       /* authenticated identity, or NULL */
    unsigned auth_failures;
    int auth_mech;         /* 1 PLAIN, 2 LOGIN (continuations) */
    int auth_step;
    char *auth_login_user;
    unsigned reply_delay_ms; /* the I/O layer waits this long before sending out (failed AUTH) */
    /* session */
    enum smtp_sess_state state;
    bool greeted_client;   /* HELO/EHLO seen */
    bool esmtp;
    char *helo;
    unsigned errors;
    strbuf out;            /* replies waiting to be written */
    bool closing;          /* close after writing out */
    /* command line assembly */
    strbuf line;
    bool skipping;         /* discarding the rest of an over-long line */
    /* transaction */
    bool has_mail;
    char *sender;          /* "" for <> */
    uint64_t mail_size;
    enum smtp_body body;
    bool smtputf8;
    enum dsn_ret ret;
    char *envid;
    smtp_rcpt *rcpts;
    size_t n_rcpts, cap_rcpts;
    char qid[32];
    strbuf data;           /* Received: header + message */
    size_t hdr_len;        /* length of our Received: header at the start of data */
    /* data scanner */
    int dstate;
    bool dline_real;       /* current line start follows a real CRLF */
    size_t dline_len;
    bool too_big, bare_eol, long_line, has_nul;
    uint64_t bdat_left;
    bool bdat_last, bdat_error, bdat_mode;
    int bdat_prev_cr;
};

/* smtp_sess_new - a session for a client; appends nothing yet (call smtp_sess_greet). */
smtp_sess *smtp_sess_new(const sl_conf *conf, const smtp_server_ops *ops, void *ops_ctx, const char *id,
                         const char *src_channel, const char *client_ip, bool client_internal);
/* smtp_sess_free - release a session. */
void smtp_sess_free(smtp_sess *s);
/* smtp_sess_greet - queue the 220 greeting. */
void smtp_sess_greet(smtp_sess *s);
/* smtp_sess_pregreet - the client spoke before the greeting: 554 and close. */
void smtp_sess_pregreet(smtp_sess *s);
/* smtp_sess_feed - consume client bytes; returns how many were consumed (the rest must be fed again later). */
size_t smtp_sess_feed(smtp_sess *s, const char *buf, size_t len);
/* smtp_sess_commit_done - the queue's answer for the committed message: reply and reset the transaction. */
void smtp_sess_commit_done(smtp_sess *s, sl_result res, const char *err);
/* smtp_sess_timeout - the idle timer fired: 421 and close. */
void smtp_sess_timeout(smtp_sess *s);
/* smtp_sess_expire - a time limit other than the idle timeout ran out: 421 and close; reason goes to
 * the log ("session_timeout", "slow_data"). */
void smtp_sess_expire(smtp_sess *s, const char *reason);
/* smtp_sess_in_content - whether message content is arriving: DATA after its 354, or a BDAT
 * transaction (between its chunks too). */
bool smtp_sess_in_content(const smtp_sess *s);
/* smtp_sess_shutdown - the server is stopping: 421 and close. */
void smtp_sess_shutdown(smtp_sess *s);
/* smtp_sess_tls_started - the handshake finished: reset the session as RFC 3207 requires. */
void smtp_sess_tls_started(smtp_sess *s, const char *info);
/* smtp_sess_add_rcpt - record a routed recipient for this transaction (copies strings). */
void smtp_sess_add_rcpt(smtp_sess *s, const char *addr, const char *orig, const char *orcpt, const char *channel,
                        const char *host, unsigned notify);
/* smtp_sess_truncate_rcpts - drop recipients added after the first n (an all-or-nothing RCPT that failed). */
void smtp_sess_truncate_rcpts(smtp_sess *s, size_t n);
/* smtp_sess_reply - append a reply line (adds CRLF). */
void smtp_sess_reply(smtp_sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
