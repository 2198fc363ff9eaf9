/*
 * deliver.h - what the job scheduler hands a channel program (the interface is program.h), and
 * what it gets back. A deliv_item is a set of recipients of one queued message that go to one
 * routing host. The scheduler owns the item and the qmsg; a channel program fills results[] and
 * calls back. Any thread may use the result helpers on a result it owns.
 */
#ifndef SLUICE_DELIVER_H
#define SLUICE_DELIVER_H
#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "core/util.h"
#include "queue/qfile.h"

typedef struct {
    sl_result result;  /* SL_OK delivered, SL_TEMP retry later, SL_PERM failed (bounce) */
    char status[16];   /* enhanced status code, e.g. "2.0.0", "4.4.1", "5.1.1" */
    char *diag;        /* diagnostic for DSNs and logs, e.g. "smtp; 550 5.1.1 <a@b> unknown" */
    char *remote_mta;  /* host that answered, e.g. "mx1.example.test [127.0.0.2]", or NULL */
    bool relayed;      /* delivered to a next hop that does not offer DSN */
} deliv_result;

typedef struct deliv_item {
    qmsg *msg;
    const sl_channel *channel;
    char *host;            /* routing host of these recipients */
    size_t *rcpts;         /* indexes into msg->rcpts */
    size_t n;
    deliv_result *results; /* n entries, zeroed by the scheduler */
} deliv_item;

/* deliv_result_set - fill a result (copies diag and remote_mta; NULL allowed). */
void deliv_result_set(deliv_result *r, sl_result res, const char *status, const char *diag, const char *remote_mta);
/* deliv_result_clear - free a result's strings and zero it. */
void deliv_result_clear(deliv_result *r);

#endif
