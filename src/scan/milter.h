/*
 * milter.h - the milter client: the MTA side of the Sendmail milter protocol, version 6, as
 * Postfix speaks it.
 *
 * Pure engine (scan/milter.c): no sockets, no clock. The I/O adapter (scan/milter_io.c) feeds it
 * what the milter sent (milter_feed), takes the bytes it queued (milter_take_output) and asks for
 * the state (milter_state) after every call. One engine is one connection to one milter for one
 * SMTP session; tests/unit/test_milter.c drives it with reply scripts.
 *
 * Wire format: every packet is a 4-byte big-endian length (command byte + data), one command
 * byte, then data. The engine says OPTNEG ('O': version 6, the actions it allows, the protocol
 * flags it offers) and waits for the milter's OPTNEG; then, for each stage the caller starts, it
 * sends the stage's macros ('D') and command and waits for one reply unless the milter asked not
 * to get that event (SMFIP_NO*: the stage answers CONTINUE at once) or not to reply to it
 * (SMFIP_NR_*: sent, answered CONTINUE without waiting). milter_message runs DATA, each header,
 * EOH, the body in chunks of at most 65535 bytes and EOM as one stage; a SKIP reply to a body
 * chunk ends the body early (SMFIP_SKIP); during EOM the milter's modifications are collected.
 * 'p' (progress) keeps the engine waiting; the adapter restarts its timer when milter_feed says so
 * (progress, or each step of the message stage answered), so the timeout bounds every wait for
 * one reply, as Postfix's per-command timeouts do.
 *
 * Finality: a non-CONTINUE reply at CONNECT holds for the whole session (every later stage
 * answers it without a word to the milter); ACCEPT or DISCARD at HELO likewise. At MAIL, DATA,
 * a header, EOH, the body or EOM any non-CONTINUE reply ends the transaction: its later stages
 * answer that same reply unsent. At RCPT, REJECT/TEMPFAIL/REPLYCODE concern that recipient
 * only; ACCEPT and DISCARD end the transaction. milter_abort (RSET) and a new MAIL start afresh.
 *
 * Anything malformed (a length over MILTER_MAX_PACKET or zero, an unknown or unexpected reply, a
 * truncated field, a REPLYCODE line that is not 4xx/5xx, too many modifications) makes the
 * engine MILTER_ES_FAILED for good: the connection is unusable. Loop thread only.
 */
#ifndef SLUICE_SCAN_MILTER_H
#define SLUICE_SCAN_MILTER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

#define MILTER_VERSION 6
#define MILTER_CHUNK 65535                   /* body bytes per SMFIC_BODY packet */
#define MILTER_MAX_PACKET (65536 + 1024)     /* longest packet accepted from a milter */
#define MILTER_MAX_MODS 1024                 /* modifications accepted in one EOM */
#define MILTER_MAX_REPLY 2048                /* bytes of a REPLYCODE text */
#define MILTER_MAX_BODY (64u * 1024 * 1024)  /* bytes of a replaced body */

/* Actions a milter may take at EOM (SMFIF_*): what we allow in OPTNEG. */
#define SMFIF_ADDHDRS 0x01u
#define SMFIF_CHGBODY 0x02u
#define SMFIF_ADDRCPT 0x04u
#define SMFIF_DELRCPT 0x08u
#define SMFIF_CHGHDRS 0x10u
#define SMFIF_QUARANTINE 0x20u
#define SMFIF_CHGFROM 0x40u
#define SMFIF_ADDRCPT_PAR 0x80u
#define SMFIF_SETSYMLIST 0x100u

/* Protocol flags (SMFIP_*): events a milter does not want, events it will not reply to. */
#define SMFIP_NOCONNECT 0x01u
#define SMFIP_NOHELO 0x02u
#define SMFIP_NOMAIL 0x04u
#define SMFIP_NORCPT 0x08u
#define SMFIP_NOBODY 0x10u
#define SMFIP_NOHDRS 0x20u
#define SMFIP_NOEOH 0x40u
#define SMFIP_NR_HDR 0x80u
#define SMFIP_NOUNKNOWN 0x100u
#define SMFIP_NODATA 0x200u
#define SMFIP_SKIP 0x400u
#define SMFIP_RCPT_REJ 0x800u
#define SMFIP_NR_CONN 0x1000u
#define SMFIP_NR_HELO 0x2000u
#define SMFIP_NR_MAIL 0x4000u
#define SMFIP_NR_RCPT 0x8000u
#define SMFIP_NR_DATA 0x10000u
#define SMFIP_NR_UNKN 0x20000u
#define SMFIP_NR_EOH 0x40000u
#define SMFIP_NR_BODY 0x80000u
#define SMFIP_HDR_LEADSPC 0x100000u

/* What we offer: every action, every flag but SMFIP_RCPT_REJ (we never tell of rejected recipients). */
#define MILTER_OFFER_ACTIONS 0x1ffu
#define MILTER_OFFER_PROTO (0x1fffffu & ~SMFIP_RCPT_REJ)

/* The stages of a session, in order. */
enum milter_stage {
    MILTER_STAGE_OPTNEG = 0,
    MILTER_STAGE_CONNECT,
    MILTER_STAGE_HELO,
    MILTER_STAGE_MAIL,
    MILTER_STAGE_RCPT,
    MILTER_STAGE_MESSAGE, /* DATA, headers, EOH, body, EOM */
    MILTER_STAGE_N
};

/* The answer to a stage. */
enum milter_action {
    MILTER_CONTINUE = 0, /* go on (also: the stage was not sent) */
    MILTER_ACCEPT,       /* accept; no more filtering of this transaction (session at CONNECT) */
    MILTER_REJECT,       /* 5xx */
    MILTER_TEMPFAIL,     /* 4xx */
    MILTER_DISCARD,      /* accept and drop the message */
    MILTER_REPLYCODE,    /* reject with the milter's own line (milter_reply.line: "550 5.7.1 text") */
    MILTER_QUARANTINE,   /* EOM: accepted, to be held (milter_reply.reason) */
    MILTER_SKIP,         /* only internal (body chunks); never a stage's answer */
    MILTER_FAILED        /* timeout, EOF, garbage: the connection is unusable */
};

/* A header modification, in the order received. */
enum milter_hdr_op { MILTER_HDR_ADD, MILTER_HDR_INSERT, MILTER_HDR_CHANGE };

typedef struct {
    enum milter_hdr_op op;
    uint32_t index; /* INSERT: position among all headers (0 = first); CHANGE: 1-based among those named name (0 = 1) */
    char *name;
    char *value;    /* as the milter sent it (folds as "\n"); CHANGE with "" deletes */
} milter_hdr_mod;

/* The modifications of one EOM; owned by the engine until the next transaction. */
typedef struct {
    milter_hdr_mod *hdr;
    size_t n_hdr;
    bool leadspc;          /* SMFIP_HDR_LEADSPC: values carry their own leading space */
    strvec add_rcpts;      /* as sent ("<a@b>"); add_rcpt_args[i] their ESMTP args ("" = none) */
    strvec add_rcpt_args;
    strvec del_rcpts;
    char *chgfrom;         /* new envelope sender, or NULL */
    char *chgfrom_args;    /* its ESMTP args, or NULL */
    bool body_replaced;
    strbuf body;           /* the new body when body_replaced */
    char *quarantine;      /* the quarantine reason, or NULL */
    size_t count;          /* modifications received */
} milter_mods;

/* The answer to a stage, valid until the next call into the engine (or the adapter's callback returns). */
typedef struct {
    enum milter_action action;
    const char *line;         /* REPLYCODE: the validated reply ("550 5.7.1 text", CRLF between lines) */
    const char *reason;       /* QUARANTINE: the reason; FAILED: what went wrong */
    const milter_mods *mods;  /* MESSAGE: the modifications (never NULL then) */
} milter_reply;

/* A macro (name "j", "{client_addr}") and its value, sent with a stage. */
typedef struct {
    const char *name;
    const char *value;
} milter_macro;

/* Where the engine is. */
enum milter_estate {
    MILTER_ES_WAIT,   /* waiting for the milter's reply: feed it */
    MILTER_ES_READY,  /* a stage (or the negotiation) is answered: milter_reply_get, then the next stage */
    MILTER_ES_FAILED  /* the connection is unusable */
};

typedef struct milter_engine milter_engine;

/* milter_new - an engine that has queued its OPTNEG (actions and proto: what we offer, 0 = the defaults). */
milter_engine *milter_new(uint32_t actions, uint32_t proto);
/* milter_free - release the engine (NULL allowed). */
void milter_free(milter_engine *e);
/* milter_feed - bytes the milter sent; true when the timer should restart: a progress packet came, or a
 * packet came and the engine still waits (a step of the message stage was answered, a modification). */
bool milter_feed(milter_engine *e, const void *buf, size_t len);
/* milter_fail - the adapter gave up (timeout, EOF: why); the engine is FAILED. */
void milter_fail(milter_engine *e, const char *why);
/* milter_take_output - append the bytes queued for the milter to out and forget them. */
void milter_take_output(milter_engine *e, strbuf *out);
/* milter_state - waiting, answered, or failed. */
enum milter_estate milter_state(const milter_engine *e);
/* milter_reply_get - the current answer (READY, or FAILED with the reason). */
milter_reply milter_reply_get(const milter_engine *e);
/* milter_negotiated - the milter's protocol flags and actions after OPTNEG (0 before). */
void milter_negotiated(const milter_engine *e, uint32_t *actions, uint32_t *proto);

/*
 * The stages; each only when milter_state is READY. family: '4', '6', 'L' (Unix), 'U' (unknown);
 * args: the ESMTP parameters of MAIL/RCPT ("SIZE=100"), n_args of them; the message is borrowed
 * until the MESSAGE stage is answered and has CRLF line ends.
 */
/* milter_connect - SMFIC_CONNECT with the client's name, address family, port and address. */
void milter_connect(milter_engine *e, const char *hostname, char family, unsigned port, const char *addr,
                    const milter_macro *mac, size_t n_mac);
/* milter_helo - SMFIC_HELO with the HELO/EHLO argument. */
void milter_helo(milter_engine *e, const char *helo, const milter_macro *mac, size_t n_mac);
/* milter_mail - SMFIC_MAIL: a new transaction (an unfinished one is aborted first). */
void milter_mail(milter_engine *e, const char *sender, const char *const *args, size_t n_args,
                 const milter_macro *mac, size_t n_mac);
/* milter_rcpt - SMFIC_RCPT for one recipient; its answer concerns that recipient (see above). */
void milter_rcpt(milter_engine *e, const char *rcpt, const char *const *args, size_t n_args,
                 const milter_macro *mac, size_t n_mac);
/* milter_message - DATA, headers, EOH, body, EOM; mac_data with DATA, mac_eoh with EOH, mac_eom with EOM. */
void milter_message(milter_engine *e, const char *msg, size_t len, const milter_macro *mac_data, size_t n_data,
                    const milter_macro *mac_eoh, size_t n_eoh, const milter_macro *mac_eom, size_t n_eom);
/* milter_abort - SMFIC_ABORT (RSET): the transaction is forgotten, the connection kept. */
void milter_abort(milter_engine *e);
/* milter_quit - SMFIC_QUIT; the engine is finished (FAILED with "quit"). */
void milter_quit(milter_engine *e);

/* milter_action_name - "CONTINUE", "REJECT", ... */
const char *milter_action_name(enum milter_action a);

/*
 * milter_mods_apply - the message msg[0, len) (CRLF) with mods' header changes and body applied,
 * appended to out. Header values' line breaks become CRLF plus a folding space where needed. The
 * recipient changes and chgfrom are the caller's to apply.
 */
void milter_mods_apply(const char *msg, size_t len, const milter_mods *mods, strbuf *out);

/* milter_replycode_check - whether s is a valid 4xx/5xx reply (one line, or lines joined by CRLF, one code). */
bool milter_replycode_check(const char *s, size_t len);

#endif
