/*
 * server.h - the ESMTP server session engine (RFC 5321, 1870, 1985, 2920, 3030, 3461, 3865, 4954, 6152, 6531).
 *
 * Pure: smtp_sess_feed takes the bytes a client sent and queues replies; it does no I/O and
 * reads no clock. Every policy decision (connect, HELO/EHLO, MAIL, RCPT, AUTH, ETRN) is asked of the
 * layer above through smtp_server_ops.decide, and the engine consumes no more input until the
 * answer comes (smtp_sess_answer, at once or later on the loop): pipelined commands keep their
 * order and replies stay in RFC 2920 order. Committing a finished message works the same way
 * (ops.commit, then smtp_sess_commit_done). Protocol errors (syntax, sequence, content format)
 * are answered by the engine itself; policy replies come from the decider.
 *
 * The I/O layer (smtp/listener.c) sees the session as an opaque type and uses only the
 * functions below; the decider reads the session's facts through smtp/session.h.
 * One session is used by one thread (the loop) only.
 */
#ifndef SLUICE_SMTP_SERVER_H
#define SLUICE_SMTP_SERVER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/util.h"
#include "queue/qfile.h"
#include "smtp/parse.h"

typedef struct smtp_sess smtp_sess;

/* The stages at which the engine asks for a decision. */
enum smtp_stage { SMTP_STAGE_CONNECT, SMTP_STAGE_HELO, SMTP_STAGE_MAIL, SMTP_STAGE_RCPT, SMTP_STAGE_AUTH, SMTP_STAGE_ETRN };

/* A question to the decider; valid only during the decide call (copy what is needed later). */
typedef struct {
    enum smtp_stage stage;
    const smtp_cmd *cmd; /* HELO/EHLO, MAIL, RCPT, ETRN: the parsed command */
    const char *user;    /* AUTH: the user name */
    const char *pass;    /* AUTH: the password (wiped after the call) */
} smtp_ask;

/* The decider's answer. */
typedef struct {
    int code;          /* 2xx accepts (235 for AUTH), 4xx/5xx refuses */
    const char *line;  /* the complete reply line without CRLF; NULL on acceptance = the engine's own */
    unsigned delay_ms; /* hold the reply back this long */
    bool disconnect;   /* close the session after the reply */
    const char *why;   /* for the reject log line: "key=value ..." naming the cause, or NULL */
} smtp_answer;

typedef struct {
    /* open - a session begins: the decider's per-session state, passed as ctx to the other ops. */
    void *(*open)(void *arg, smtp_sess *s);
    /* close - the session is being freed. If a decision or a commit is still pending (shutdown),
     * the decider must never answer it. */
    void (*close)(void *ctx);
    /* decide - decide at q->stage; answer with smtp_sess_answer, now or later (loop thread). */
    void (*decide)(void *ctx, smtp_sess *s, const smtp_ask *q);
    /* commit - the message in s is complete and valid; answer with smtp_sess_commit_done. */
    void (*commit)(void *ctx, smtp_sess *s);
    /* new_id - a fresh queue id for the transaction's Received: header, into buf. */
    void (*new_id)(void *ctx, char *buf, size_t len);
    /* date - the current date in RFC 5322 form, into buf. */
    void (*date)(void *ctx, char *buf, size_t len);
} smtp_server_ops;

/* What the I/O layer knows of the connection and its service when the session starts. */
typedef struct {
    const char *id;          /* session id for logs ("S12") */
    const char *service;     /* dispatcher service name */
    const char *src_channel; /* source channel of the service */
    const char *client_ip, *server_ip;
    unsigned client_port, server_port;
    bool client_internal;    /* inside internal_networks */
    const char *loop_token;  /* advertised as XLOOP in EHLO, or NULL */
    bool tls_offered;        /* STARTTLS may be offered */
    bool tls_required;       /* MAIL only after STARTTLS */
    bool auth_offered;       /* AUTH may be offered (also needs TLS unless auth_plain) */
    bool auth_plain;         /* offer AUTH without TLS */
    bool auth_required;      /* MAIL only after AUTH */
    unsigned conns_service;  /* connections open on this service, this one excluded */
    unsigned conns_client;   /* of them, from this client address */
    bool local;              /* a local submission (`sluice sendmail`, the pickup directory) */
    unsigned local_uid;      /* ... by this user (the socket peer's or the pickup file's owner) */
} smtp_sess_info;

/* smtp_sess_new - a session for a client (strings copied); nothing is queued yet: call smtp_sess_connect. */
smtp_sess *smtp_sess_new(const sl_conf *conf, const smtp_server_ops *ops, void *ops_arg, const smtp_sess_info *info);
/* smtp_sess_free - release a session (tells the decider through ops->close). */
void smtp_sess_free(smtp_sess *s);
/* smtp_sess_set_resume - fn(arg) runs when an answer that arrived later (not within a feed) let the session go on. */
void smtp_sess_set_resume(smtp_sess *s, void (*fn)(void *), void *arg);

/* ---- for the I/O layer ---- */

/* smtp_sess_connect - ask the connect decision; a refusal queues its reply and closes. */
void smtp_sess_connect(smtp_sess *s);
/* smtp_sess_greet - the greeting may go out: queue 220 (at once, or when the connect decision accepts). */
void smtp_sess_greet(smtp_sess *s);
/* smtp_sess_pregreet - the client spoke before the greeting: 554 and close. */
void smtp_sess_pregreet(smtp_sess *s);
/* smtp_sess_feed - consume client bytes; returns how many were consumed (the rest must be fed again later). */
size_t smtp_sess_feed(smtp_sess *s, const char *buf, size_t len);
/* smtp_sess_accepts_input - whether feeding now would consume anything (not waiting, not closed). */
bool smtp_sess_accepts_input(const smtp_sess *s);
/* smtp_sess_waiting - a decision or a commit is pending. */
bool smtp_sess_waiting(const smtp_sess *s);
/* smtp_sess_output - the replies queued so far (len bytes, not NUL-terminated); NULL when none. */
const char *smtp_sess_output(const smtp_sess *s, size_t *len);
/* smtp_sess_output_clear - the queued replies were handed to the socket. */
void smtp_sess_output_clear(smtp_sess *s);
/* smtp_sess_take_delay - how long to hold the queued replies back (then 0). */
unsigned smtp_sess_take_delay(smtp_sess *s);
/* smtp_sess_closing - close once the queued replies are written. */
bool smtp_sess_closing(const smtp_sess *s);
/* smtp_sess_closed - the session ended (QUIT, 421, refusal) rather than being cut off. */
bool smtp_sess_closed(const smtp_sess *s);
/* smtp_sess_wants_tls - "220 Ready to start TLS" was queued: discard pipelined input, then handshake. */
bool smtp_sess_wants_tls(const smtp_sess *s);
/* smtp_sess_tls_started - the handshake finished: reset the session as RFC 3207 requires. */
void smtp_sess_tls_started(smtp_sess *s, const char *info);
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
/* smtp_sess_id - the session id for logs. */
const char *smtp_sess_id(const smtp_sess *s);
/* smtp_sess_client_ip - the client's address text. */
const char *smtp_sess_client_ip(const smtp_sess *s);

/* ---- for the decider ---- */

/* smtp_sess_answer - the decision asked last; the session goes on (a resume if it came later). */
void smtp_sess_answer(smtp_sess *s, const smtp_answer *a);
/* smtp_sess_commit_done - the queue's answer for the committed message: reply and reset the transaction. */
void smtp_sess_commit_done(smtp_sess *s, sl_result res, const char *err);
/* smtp_sess_commit_refused - the decider refuses the message at the end of data with line (a
 * complete 4xx/5xx reply line); the transaction is reset. */
void smtp_sess_commit_refused(smtp_sess *s, const char *line);
/* smtp_sess_add_rcpt - record a routed recipient for this transaction (copies strings). */
void smtp_sess_add_rcpt(smtp_sess *s, const char *addr, const char *orig, const char *orcpt, const char *channel,
                        const char *host, unsigned notify);
/* smtp_sess_truncate_rcpts - drop recipients added after the first n (an all-or-nothing RCPT that failed). */
void smtp_sess_truncate_rcpts(smtp_sess *s, size_t n);
/* smtp_sess_set_trace - header lines (each ending CRLF, e.g. "Received-SPF: ...\r\n") that the
 * decider wants above our Received: in this transaction's message (copied; NULL clears). Set
 * while deciding MAIL; forgotten when the transaction ends. */
void smtp_sess_set_trace(smtp_sess *s, const char *lines);
/* smtp_sess_remove_rcpt - drop recipient i of the transaction (a milter's delrcpt). */
void smtp_sess_remove_rcpt(smtp_sess *s, size_t i);
/* smtp_sess_set_sender - replace the envelope sender ("" for <>; a milter's chgfrom). */
void smtp_sess_set_sender(smtp_sess *s, const char *sender);
/* smtp_sess_set_content - replace the finished message (taken over; our Received: line must stay first). */
void smtp_sess_set_content(smtp_sess *s, strbuf *content);
/* smtp_sess_set_channel - switch the session's source channel (e.g. after AUTH). */
void smtp_sess_set_channel(smtp_sess *s, const char *channel);
/* smtp_sess_reply - append a reply line (adds CRLF). */
void smtp_sess_reply(smtp_sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
