/*
 * milter_io.h - the milter client's I/O adapter: one connection to one milter for one SMTP session,
 * driven by the event loop, speaking through the pure engine of scan/milter.h.
 *
 * milter_conn_open connects (TCP to scan_target host:port, or its Unix socket) and negotiates;
 * the callback then says CONTINUE (ready) or FAILED. Each stage call sends that stage and calls
 * its callback once with the answer (milter_reply: the action; the REPLYCODE line; for the
 * message stage the modifications to apply with milter_mods_apply). One stage at a time: a stage
 * may only start after the previous one's callback (starting one earlier aborts: a caller bug).
 * An answer that needs no word from the milter (a stage the milter declined in negotiation, a
 * final action that already holds, a failed connection) is delivered through the loop, never
 * from inside the call. Every wait for one reply has scan_target.timeout seconds (a progress
 * packet restarts them; each step of the message stage has its own); a timeout, EOF, a connection error or garbage from the milter answers FAILED, and every
 * later stage answers FAILED too. The reply and its strings are valid during the callback only.
 * The callback may call milter_conn_close. Loop thread only.
 */
#ifndef SLUICE_SCAN_MILTER_IO_H
#define SLUICE_SCAN_MILTER_IO_H
#include <stddef.h>
#include <stdint.h>

#include "scan/milter.h"
#include "scan/scan.h"

struct event_base;
typedef struct milter_conn milter_conn;

/* The answer to one stage (r->action; r->line for REPLYCODE; r->reason for FAILED/QUARANTINE; r->mods after the message). */
typedef void (*milter_cb)(void *arg, const milter_reply *r);

/* milter_conn_open - connect to t and negotiate; cb(arg, CONTINUE or FAILED) when done. log_id names it in logs. */
milter_conn *milter_conn_open(struct event_base *base, const scan_target *t, const char *log_id, milter_cb cb,
                              void *arg);
/* milter_conn_connect - the SMTP client connected: hostname (NULL: unknown), ip ("192.0.2.1", "::1"; NULL: unknown), port. */
void milter_conn_connect(milter_conn *m, const char *hostname, const char *ip, unsigned port, const milter_macro *mac,
                         size_t n_mac, milter_cb cb, void *arg);
/* milter_conn_helo - the HELO/EHLO argument. */
void milter_conn_helo(milter_conn *m, const char *helo, const milter_macro *mac, size_t n_mac, milter_cb cb, void *arg);
/* milter_conn_mail - MAIL FROM: sender ("<a@b>") and its ESMTP parameters. */
void milter_conn_mail(milter_conn *m, const char *sender, const char *const *args, size_t n_args,
                      const milter_macro *mac, size_t n_mac, milter_cb cb, void *arg);
/* milter_conn_rcpt - one RCPT TO; a REJECT/TEMPFAIL/REPLYCODE answer concerns this recipient only. */
void milter_conn_rcpt(milter_conn *m, const char *rcpt, const char *const *args, size_t n_args,
                      const milter_macro *mac, size_t n_mac, milter_cb cb, void *arg);
/* milter_conn_message - the message (CRLF; borrowed until cb): DATA, headers, EOH, body, EOM; macros per step. */
void milter_conn_message(milter_conn *m, const char *msg, size_t len, const milter_macro *mac_data, size_t n_data,
                         const milter_macro *mac_eoh, size_t n_eoh, const milter_macro *mac_eom, size_t n_eom,
                         milter_cb cb, void *arg);
/* milter_conn_abort - RSET: SMFIC_ABORT, the connection is kept; no callback. Only between stages. */
void milter_conn_abort(milter_conn *m);
/* milter_conn_negotiated - the milter's actions and protocol flags once the open answered CONTINUE (0 before). */
void milter_conn_negotiated(const milter_conn *m, uint32_t *actions, uint32_t *proto);
/* milter_conn_close - say QUIT (when the connection is usable) and free everything; no callback afterwards. */
void milter_conn_close(milter_conn *m);

#endif
