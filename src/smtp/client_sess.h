/*
 * client_sess.h - the SMTP/LMTP client session engine (RFC 5321, 2033, 2920, 3030, 3207,
 * 1870, 6152, 6531, 3461): one engine is one outbound connection.
 *
 * Pure: the I/O layer (deliver/smtp_out.c) feeds it what the server sent (smtp_client_feed) and
 * what happened to the connection (connected, TLS started or failed, closed, timed out); the
 * engine writes its commands and the message through params.out and queues events the I/O
 * layer takes with smtp_client_next_event after every call. No sockets, clocks or files inside;
 * tests/unit/test_smtp_client_sess.c drives it with reply scripts.
 *
 * It speaks: the greeting (2xx, else the session fails), EHLO with HELO fallback on 5xx (LHLO
 * for LMTP, no fallback), STARTTLS (maytls: when offered; musttls: the session fails without
 * it; the handshake is the I/O layer's, after SMTP_CEV_STARTTLS), transactions (MAIL, RCPT for
 * each recipient, then DATA with dot-stuffing or, when asked and offered, one "BDAT n LAST"),
 * pipelined when the server offers PIPELINING (MAIL, RCPTs and DATA in one write; BDAT waits
 * for the RCPT replies so the content never goes to a server that took no recipient), one
 * end-of-data reply per accepted recipient for LMTP, RSET before a transaction that follows
 * an unfinished one, and QUIT.
 *
 * Events, in order: at most one SMTP_CEV_READY (the session is established: a transaction may
 * start); per transaction exactly one SMTP_CEV_RCPT per recipient (its final result, readable
 * with smtp_client_result_of until the next transaction) and then SMTP_CEV_DONE when the session
 * is still usable; SMTP_CEV_FAILED once when the session ends for any reason other than our QUIT
 * (421 at any point, a refused greeting or EHLO, a protocol error, a lost connection): every
 * recipient still without a result got a temporary one first, and the I/O layer closes the
 * connection once the output (perhaps a QUIT) is written.
 *
 * The engine borrows the message and recipients given to smtp_client_send until the
 * transaction's last event; results and the failure are owned by the engine. Loop thread only
 * (one engine is used by one thread).
 */
#ifndef SLUICE_SMTP_CLIENT_SESS_H
#define SLUICE_SMTP_CLIENT_SESS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"
#include "queue/qfile.h"
#include "smtp/client.h"

typedef struct smtp_client smtp_client;

enum smtp_client_tls { SMTP_CLIENT_TLS_NEVER, SMTP_CLIENT_TLS_MAY, SMTP_CLIENT_TLS_MUST };

typedef struct {
    bool lmtp;                 /* LHLO, and one end-of-data reply per accepted recipient */
    const char *helo_name;     /* our name in EHLO/HELO/LHLO */
    const char *peer;          /* the server as logs and diagnostics name it: "mx.example [192.0.2.1]" */
    enum smtp_client_tls tls;  /* STARTTLS: never, when offered, or required */
    bool chunking;             /* send BDAT instead of DATA when the server offers CHUNKING */
    const char *fileinto;      /* LMTP: the address template of a recipient's Sieve folder (smtp_client_folder_addr) */
    smtp_emit_fn out;          /* receives every byte for the server */
    void *out_ctx;
} smtp_client_params;

typedef enum {
    SMTP_CEV_STARTTLS,    /* the server said 220 to STARTTLS: drop any unread input, do the handshake */
    SMTP_CEV_TLS_REFUSED, /* the server refused STARTTLS (code): maytls goes on in clear text, musttls fails next */
    SMTP_CEV_READY,       /* the session is established (greeting, EHLO, TLS): a transaction may start */
    SMTP_CEV_SENT,        /* the message content was written out: now only its reply is awaited */
    SMTP_CEV_RCPT,        /* recipient index has its final result */
    SMTP_CEV_DONE,        /* the transaction is over and the session usable for another one or QUIT */
    SMTP_CEV_FAILED       /* the session is over: close once the output is written */
} smtp_client_event_type;

typedef struct {
    smtp_client_event_type type;
    size_t index; /* SMTP_CEV_RCPT: the recipient */
    int code;     /* SMTP_CEV_TLS_REFUSED: the reply code */
} smtp_client_event;

/* The result of one recipient of a transaction. */
typedef struct {
    sl_result res;     /* SL_OK delivered, SL_TEMP, SL_PERM */
    int code;          /* the reply that decided it; 0 when none did (lost connection, local check) */
    char status[16];   /* enhanced status code ("2.0.0", "4.4.2", "5.1.1") */
    char *diag;        /* "smtp; 550 5.1.1 <a@b> unknown", "mx [ip]: lost connection after DATA" */
    bool uncertain;    /* SL_TEMP after the content went out without an answer: it may have arrived */
} smtp_client_result;

/* Why the session failed (always temporary: another host, or a later retry, may do better). */
typedef struct {
    int code;          /* the reply that ended it; 0 when none did */
    char status[16];   /* "4.4.2"; a reply's own code with its class made 4 */
    char *diag;        /* "smtp; 554 5.7.1 go away", "mx [ip]: timeout during the transaction" */
} smtp_client_failure;

/* smtp_client_new - an engine for one connection (params copied); then smtp_client_connected. */
smtp_client *smtp_client_new(const smtp_client_params *params);
/* smtp_client_free - release the engine (NULL allowed); nothing is written. */
void smtp_client_free(smtp_client *c);
/* smtp_client_connected - the TCP connection is up: the greeting is awaited. */
void smtp_client_connected(smtp_client *c);
/* smtp_client_feed - bytes the server sent; replies are acted on as their last line completes. */
void smtp_client_feed(smtp_client *c, const char *buf, size_t len);
/* smtp_client_tls_started - the handshake after SMTP_CEV_STARTTLS succeeded: EHLO again (RFC 3207). */
void smtp_client_tls_started(smtp_client *c);
/* smtp_client_tls_failed - the handshake failed (err: the TLS library's reason): the session fails. */
void smtp_client_tls_failed(smtp_client *c, const char *err);
/* smtp_client_closed - the connection ended or broke (what: "lost connection", "lost connection (...)"). */
void smtp_client_closed(smtp_client *c, const char *what);
/* smtp_client_timeout - the I/O layer's timer ran out while the engine waited. */
void smtp_client_timeout(smtp_client *c);
/* smtp_client_send - start a transaction for m to rcpts[0..n) (n >= 1); only when smtp_client_idle. */
void smtp_client_send(smtp_client *c, const qmsg *m, const qrcpt *const *rcpts, size_t n);
/* smtp_client_quit - say QUIT if the session is open; the engine is finished either way. */
void smtp_client_quit(smtp_client *c);
/* smtp_client_next_event - take the oldest queued event into ev; false when none is left. */
bool smtp_client_next_event(smtp_client *c, smtp_client_event *ev);

/* smtp_client_idle - established and between transactions: smtp_client_send may be called. */
bool smtp_client_idle(const smtp_client *c);
/* smtp_client_caps - what the server's EHLO reply offered (all false after HELO). */
const smtp_caps *smtp_client_caps(const smtp_client *c);
/* smtp_client_tls_active - the session runs over TLS. */
bool smtp_client_tls_active(const smtp_client *c);
/* smtp_client_result_of - recipient i's result in the current (or last) transaction. */
const smtp_client_result *smtp_client_result_of(const smtp_client *c, size_t i);
/* smtp_client_failure_of - why the session failed (after SMTP_CEV_FAILED). */
const smtp_client_failure *smtp_client_failure_of(const smtp_client *c);

#endif
