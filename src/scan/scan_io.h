/*
 * scan_io.h - the I/O adapter of the request/response scanners (spamd, clamd): one connection
 * per scan on the event loop, the request written from the caller's content without a copy,
 * the answer fed to the protocol engine (scan/spamd.c, scan/clamd.c), one callback at the end.
 * A scanner that refuses the connection, hangs past its timeout, closes early or answers
 * garbage ends the scan with SCAN_FAILED and a reason. Loop thread only.
 */
#ifndef SLUICE_SCAN_IO_H
#define SLUICE_SCAN_IO_H
#include "conf/conf.h"
#include "scan/scan.h"

struct event_base;
typedef struct scan_job scan_job;

/* scan_cb - the scan ended; r is freed after the call (the callee may take fields, leaving NULL). */
typedef void (*scan_cb)(void *arg, scan_result *r);

/* scan_target_from_conf - the target of an option.dat scanner (strings borrowed from sc). */
void scan_target_from_conf(scan_target *t, const sl_scanner *sc);
/* scan_start - scan q's message with the spamd or clamd at t; cb runs once, always later (never
 * within this call). q->data must stay valid until cb or scan_cancel. */
scan_job *scan_start(struct event_base *base, const scan_target *t, const scan_req *q, scan_cb cb, void *arg);
/* scan_cancel - stop a scan; its callback will not run. */
void scan_cancel(scan_job *j);

#endif
