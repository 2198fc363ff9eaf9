/*
 * session.h - the facts of an SMTP server session, for the decider (src/policy/) and the tests.
 *
 * The engine (smtp/server.c) alone writes these fields; the decider reads them while it
 * decides and changes the session only through the functions of server.h (add a recipient,
 * switch the channel, answer). The I/O layer does not include this file. Loop thread only.
 */
#ifndef SLUICE_SMTP_SESSION_H
#define SLUICE_SMTP_SESSION_H
#include "smtp/server.h"

enum smtp_sess_state {
    SESS_CMD, SESS_DATA, SESS_BDAT, SESS_WAIT_COMMIT, SESS_CLOSED,
    SESS_STARTTLS, /* 220 to STARTTLS queued: the I/O layer discards pipelined input and starts the handshake */
    SESS_AUTH,     /* waiting for an AUTH continuation line */
    SESS_DECIDE    /* waiting for the decider's answer */
};

struct smtp_sess {
    /* fixed at creation */
    const sl_conf *conf;
    const smtp_server_ops *ops;
    void *ops_ctx;         /* the decider's per-session state */
    char id[24];           /* session id for logs */
    char *service;         /* dispatcher service name */
    char *src_channel;     /* source channel (switched by smtp_sess_set_channel) */
    char client_ip[64];
    char server_ip[64];
    unsigned client_port, server_port;
    bool client_internal;  /* inside internal_networks */
    unsigned conns_service, conns_client; /* other connections at accept time */
    bool local;            /* a local submission: Received: names the user, "via sendmail" */
    unsigned local_uid;
    char *loop_token;      /* advertised as XLOOP in EHLO, or NULL */
    void (*resume)(void *);
    void *resume_arg;
    /* TLS and AUTH (the service's settings, then the session's state) */
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
    bool connect_ok;       /* the connect decision accepted */
    bool greet_wanted;     /* the I/O layer asked for the greeting */
    bool in_engine;        /* inside smtp_sess_feed or _connect (an answer needs no resume) */
    bool greeted_client;   /* HELO/EHLO seen */
    bool esmtp;
    char *helo;
    unsigned errors;
    strbuf out;            /* replies waiting to be written */
    bool closing;          /* close after writing out */
    /* the decision being asked */
    enum smtp_stage ask_stage;
    smtp_cmd ask_cmd;      /* the command it is about (owned) */
    char *ask_user;        /* AUTH: the user name asked about */
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
    qrcpt *rcpts;          /* accepted and routed, each with its destination channel */
    size_t n_rcpts, cap_rcpts;
    char qid[32];
    char *trace;           /* the decider's header lines above Received: (smtp_sess_set_trace), or NULL */
    strbuf data;           /* trace lines + Received: header + message */
    size_t hdr_len;        /* length of the trace lines and our Received: header at the start of data */
    /* data scanner */
    int dstate;
    bool dline_real;       /* current line start follows a real CRLF */
    size_t dline_len;
    bool too_big, bare_eol, long_line, has_nul;
    uint64_t bdat_left;
    bool bdat_last, bdat_error, bdat_mode;
    int bdat_prev_cr;
};

#endif
