/*
 * smtp_out.h - the SMTP/LMTP client channel program's I/O adapter (tcp_* and lmtp* channels):
 * one outbound session ("job") to one destination. It finds the hosts (DNS), connects, runs
 * TLS, timeouts and loop detection, and feeds the protocol engine (smtp/client_sess.h), which
 * speaks SMTP or LMTP and says what each reply means. Runs on the event loop (libevent
 * bufferevents, c-ares via dns.h); only the loop thread calls it.
 *
 * Destination: the channel's "daemon HOST" smart host if set, else the MX hosts of the routing
 * host (preference order, equal preferences shuffled; no MX -> the domain's A/AAAA; null MX ->
 * permanent 5.1.10; NXDOMAIN -> permanent 5.1.2; DNS failure -> temporary 4.4.3). Port: the
 * channel's "port N" (default 25). Connection refused/timed out, a 4xx/5xx greeting, a refused
 * EHLO, 421 or a lost connection before the content went out -> the recipients without a final
 * result go to the next address. Per-recipient results: 5xx fails that recipient only; 4xx
 * (to RCPT, MAIL, DATA or the content, LMTP per recipient) sends it to the next address of the
 * list in the same attempt, and when the list (and the channel's lastresort) is exhausted it is
 * retried later. An MX host that failed lately (unreachable, refused greeting or EHLO, 421, lost
 * connection) is tried after the other hosts of its preference for HOSTMEM_HOLD (hostmem.h),
 * and attempts whose hosts all fail begin at each host of the lowest preference in turn.
 * PIPELINING when offered. DSN parameters (NOTIFY, ORCPT, RET, ENVID) passed on
 * when the next hop offers DSN; otherwise recipients with NOTIFY=SUCCESS are marked relayed.
 * SIZE, 8BITMIME and SMTPUTF8 honoured. TLS per destination (doc/tls.md): the policy table's level,
 * else the channel keyword; the DANE levels (dane, dane-only) look MX and TLSA records up with
 * DNSSEC (dns/dnssec.h) and decide per MX host with deliver/dane_out.h. After a transaction the connection stays open for the
 * next item to the same destination until smtp_out_free (QUIT).
 */
#ifndef SLUICE_SMTP_OUT_H
#define SLUICE_SMTP_OUT_H
#include <stdbool.h>

#include "conf/conf.h"
#include "deliver/deliver.h"
#include "deliver/hostmem.h"
#include "dns/dns.h"

#include <sys/socket.h>

struct event_base;
struct ssl_ctx_st;
typedef struct smtp_out smtp_out;

/* smtp_out_done_cb - every result of item is filled. Called on the loop, never from inside smtp_out_deliver. */
typedef void (*smtp_out_done_cb)(void *arg, deliv_item *item);

/* smtp_out_new - a session for channel ch to destination host (the routing host). Does not connect yet. */
smtp_out *smtp_out_new(struct event_base *base, dns_ctx *dns, const sl_conf *conf, const sl_channel *ch,
                       const char *host);
/*
 * smtp_out_set_self - who "we" are, for loop detection: our XLOOP token (a peer announcing it is
 * this installation: 5.4.6 when the channel has loopcheck) and our listening addresses (an MX
 * that resolves to one of them is a loop, 5.4.6, unless the channel has selfmx). Copies.
 */
void smtp_out_set_self(smtp_out *s, const char *token, const struct sockaddr_storage *addrs, size_t n);
/* smtp_out_set_tls - the client TLS context for STARTTLS (channel maytls/musttls); NULL disables. */
void smtp_out_set_tls(smtp_out *s, struct ssl_ctx_st *ctx);
/* smtp_out_set_memory - the daemon's memory of failing MX hosts (hostmem.h), kept across jobs; NULL: none. */
void smtp_out_set_memory(smtp_out *s, hostmem *mem);
/* smtp_out_deliver - deliver item (connecting first if needed); cb runs once when done. One item at a time. */
void smtp_out_deliver(smtp_out *s, deliv_item *item, smtp_out_done_cb cb, void *arg);
/* smtp_out_reusable - whether the connection is open and idle, ready for another item. */
bool smtp_out_reusable(const smtp_out *s);
/* smtp_out_free - QUIT if connected (without waiting long), close, free. Not while an item is in progress. */
void smtp_out_free(smtp_out *s);

#endif
