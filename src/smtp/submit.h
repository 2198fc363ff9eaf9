/*
 * submit.h - local submission, the pure parts: the envelope of a message handed over by
 * `sluice sendmail`, its pickup-file form (QUEUE/pickup, while no daemon runs), and the client
 * engine that speaks SMTP to the daemon's server session to submit it.
 *
 * The engine takes the server's reply bytes and appends the commands to send; it does no I/O
 * and reads no clock, so the blocking sendmail command (cli/sendmail.c), the daemon's pickup
 * agent (smtp/pickup.c, on a socketpair) and unit tests drive the same code. It speaks one
 * command at a time: greeting, EHLO, MAIL, each RCPT, DATA, the content, QUIT. A message goes
 * out when at least one recipient was accepted; each refused recipient keeps its reply.
 *
 * Pickup file (text header, then the content as submitted, CRLF lines, not dot-stuffed):
 *     SLUICE-PICKUP 1
 *     from XTEXT            the envelope sender (empty for <>), RFC 3461 xtext
 *     rcpt XTEXT            one line per recipient, at least one
 *     notify N              DSN NOTIFY bits (optional)
 *     ret full|hdrs         DSN RET (optional)
 *     envid XTEXT           DSN ENVID (optional)
 *     8bit                  the content has 8-bit bytes (optional)
 *     (empty line)
 * Every line ends with LF; anything else is refused by submit_env_decode. Any thread; an
 * envelope or an engine is used by one thread at a time; results are owned by the engine.
 */
#ifndef SLUICE_SMTP_SUBMIT_H
#define SLUICE_SMTP_SUBMIT_H
#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"
#include "smtp/parse.h"

#define SUBMIT_PICKUP_MAGIC "SLUICE-PICKUP 1"

/* An envelope and its content. */
typedef struct {
    char *sender;    /* "" for <> */
    strvec rcpts;    /* addresses without angle brackets */
    unsigned notify; /* DSN_NOTIFY_* bits for every recipient, 0 when not given */
    enum dsn_ret ret;
    char *envid;     /* or NULL */
    bool eight_bit;  /* BODY=8BITMIME */
    strbuf content;  /* the message: CRLF lines, not dot-stuffed */
} submit_env;

/* submit_env_free - release what env owns and zero it. */
void submit_env_free(submit_env *env);
/* submit_env_encode - the pickup file of env into out. */
void submit_env_encode(const submit_env *env, strbuf *out);
/* submit_env_decode - parse a pickup file into env (zeroed first); 0, or -1 with a reason in err. */
int submit_env_decode(const char *buf, size_t len, submit_env *env, char *err, size_t errlen);
/* submit_notify_parse - sendmail's -N value ("never", or a comma list of success, failure, delay)
 * into DSN_NOTIFY_* bits; -1 if malformed. */
int submit_notify_parse(const char *s, unsigned *out);

/* How a submission ended. */
typedef enum {
    SUBMIT_RUNNING,  /* more replies are needed */
    SUBMIT_QUEUED,   /* the message was accepted (250 after the content) for at least one recipient */
    SUBMIT_TEMP,     /* refused or broken off with a 4xx (or the connection dropped): try again later */
    SUBMIT_PERM      /* refused with a 5xx: the message cannot go as it is */
} submit_status;

typedef struct submit submit;

/* submit_new - an engine for env (borrowed until it is freed), saying EHLO helo. */
submit *submit_new(const submit_env *env, const char *helo);
/* submit_free - release the engine and its results. */
void submit_free(submit *s);
/* submit_feed - the server's bytes (any split); appends what to send to out; returns the status. */
submit_status submit_feed(submit *s, const char *buf, size_t len, strbuf *out);
/* submit_eof - the server closed the connection: a running submission ends SUBMIT_TEMP. */
submit_status submit_eof(submit *s);
/* submit_status_of - the status so far. */
submit_status submit_status_of(const submit *s);
/* submit_reply - the reply that decided the end ("250 2.0.0 Ok: queued as ID", or the refusal), "" when none. */
const char *submit_reply(const submit *s);
/* submit_queue_id - the queue id from "queued as ID", "" when none. */
const char *submit_queue_id(const submit *s);
/* submit_accepted - how many recipients the server accepted at RCPT. */
size_t submit_accepted(const submit *s);
/* submit_rcpt_reply - recipient i's RCPT reply line ("" when it was not asked); code into *code (0 if none). */
const char *submit_rcpt_reply(const submit *s, size_t i, int *code);

#endif
