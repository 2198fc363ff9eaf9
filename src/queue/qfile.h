/*
 * qfile.h - the queue file format: pure encode/decode, no I/O (DESIGN.md §3).
 *
 * A queue file holds one message for one destination channel:
 *   magic "SLQF", u16 version (1), then records, then the end record.
 *   record = u8 type, u32 little-endian payload length, payload.
 * Strings are payloads without NUL. Every read validates everything: magic, version, known
 * record types, lengths inside the file, required records present, end record last and exactly
 * at the end of the file. Recipient state is a fixed-size field that the store updates in place
 * (pwrite, flushed with the next group commit), so a state change is durable without rewriting the file.
 * Any thread may call these functions; a qmsg is owned by one thread at a time.
 */
#ifndef SLUICE_QFILE_H
#define SLUICE_QFILE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/util.h"

#define QFILE_MAGIC "SLQF"
#define QFILE_VERSION 1

enum qrcpt_status { QR_PENDING = 0, QR_DELIVERED = 1, QR_FAILED = 2, QR_RELAYED = 3 };

/* An envelope recipient: the one type from the SMTP session (RCPT) through enqueue to the queue
 * file's record. */
typedef struct {
    char *addr;        /* address to deliver to, after rewriting/alias expansion */
    char *orig;        /* address as given in RCPT TO (for logs and DSNs) */
    char *orcpt;       /* DSN ORCPT "type;addr" decoded, or NULL */
    char *host;        /* routing host chosen by rewriting ("" for none) */
    char *channel;     /* destination channel while an envelope spans channels (session, enqueue);
                          NULL in a queue message, whose channel is the message's (not in the file) */
    unsigned notify;   /* DSN_NOTIFY_* bits from smtp/parse.h */
    char *folder;      /* the mailbox folder a Sieve fileinto chose (Maildir++ name), NULL = the inbox */
    uint64_t max_size; /* in the session only: the largest message this recipient takes (0 = no limit) */
    char *optins;      /* in the session only: the directory's scanner opt-ins, lines "N\tSTRING\n", or NULL */
    char *sieve;       /* in the session only: the recipient's own Sieve filter (mailSieveRuleSource), or NULL */
    /* mutable state (fixed-size record, updated in place) */
    uint8_t status;    /* enum qrcpt_status */
    uint8_t notices_sent; /* delay DSNs sent so far (channel "notices") */
    uint16_t attempts;
    int64_t next_attempt; /* unix seconds; 0 = now */
    off_t state_off;   /* byte offset of the state record payload in the file (set by encode/decode) */
} qrcpt;

/* A message's content, shared by the queue messages of its channels and by the files being
 * written (reference-counted; any thread may take or drop a reference). */
typedef struct qbody {
    _Atomic unsigned refs;
    size_t len;
    char *data;
} qbody;

/* qbody_adopt - content that takes over data (malloc'd; NUL-terminated or not), one reference. */
qbody *qbody_adopt(char *data, size_t len);
/* qbody_copy - content copied from data, one reference. */
qbody *qbody_copy(const void *data, size_t len);
/* qbody_ref - take a reference; returns b (NULL allowed). */
qbody *qbody_ref(qbody *b);
/* qbody_unref - drop a reference; the last one frees (NULL allowed). */
void qbody_unref(qbody *b);

typedef struct qmsg {
    char id[32];       /* queue id, e.g. "4fK2x9aB0001" */
    char *channel;     /* destination channel */
    char *src_channel; /* channel the message arrived on */
    char *sender;      /* envelope sender, "" for <> */
    char *envid;       /* DSN ENVID or NULL */
    uint8_t ret;       /* enum dsn_ret */
    uint8_t body;      /* enum smtp_body */
    bool smtputf8;
    bool is_notification; /* generated DSN/MDN: never bounce it again */
    bool is_postmaster_copy; /* a failed DSN sent on to the postmaster: dropped if it fails too */
    int64_t arrival;   /* unix seconds */
    char *client;      /* "helo [ip]" of the submitting client, for DSNs/logs */
    qrcpt *rcpts;
    size_t n_rcpts;
    /* message content: header+body with CRLF line ends, no dot-stuffing */
    const char *data;
    size_t data_len;
    qbody *content;    /* the owner of data (a reference), or NULL when data is borrowed or absent */
    bool body_on_disk; /* the content is not in memory (data NULL, data_len kept): qfile_load_data */
} qmsg;

/* qrcpt_init - fill r (zeroed first) with copies of the strings; orig NULL means addr, host NULL "". */
void qrcpt_init(qrcpt *r, const char *addr, const char *orig, const char *orcpt, const char *channel, const char *host,
                unsigned notify);
/* qrcpt_clear - release r's strings. */
void qrcpt_clear(qrcpt *r);
/* qmsg_free - release everything a qmsg owns (not the qmsg itself). */
void qmsg_free(qmsg *m);
/* qmsg_add_rcpt - append a recipient (copies strings); returns it. */
qrcpt *qmsg_add_rcpt(qmsg *m, const char *addr, const char *orig, const char *orcpt, const char *host, unsigned notify);

/* qmsg_set_content - m's data becomes b's (m takes over the reference; b NULL clears). */
void qmsg_set_content(qmsg *m, qbody *b);
/* qmsg_drop_data - forget the content (kept on disk); data_len stays for sizes and logs. */
void qmsg_drop_data(qmsg *m);
/*
 * qfile_load_data - read the content of m back from its queue file at path (after
 * qmsg_drop_data). Blocking: call it on a worker thread. Returns 0, or -1 with a reason in err
 * (unreadable, damaged, or a file of another message).
 */
int qfile_load_data(const char *path, qmsg *m, char *err, size_t errlen);

/* qfile_encode - serialise m into out, setting each rcpt's state_off. */
void qfile_encode(qmsg *m, strbuf *out);
/* qfile_encode_split - the same file as head + m->data + tail, without copying the data (the
 * store writes the three with one writev); state_off is relative to where head began. */
void qfile_encode_split(qmsg *m, strbuf *head, strbuf *tail);
/*
 * qfile_decode - parse and validate buf (a whole file) into m, copying the data. Returns 0, or
 * -1 with a reason ("truncated", "bad magic", "unsupported version 7", ...) in err.
 */
int qfile_decode(const void *buf, size_t len, qmsg *m, char *err, size_t errlen);
/* qfile_state_size - size in bytes of a recipient state payload. */
size_t qfile_state_size(void);
/* qfile_state_pack - the state payload bytes of r into out (qfile_state_size bytes). */
void qfile_state_pack(const qrcpt *r, uint8_t *out);
/*
 * qfile_state_unpack - parse a state payload (qfile_state_size bytes) into r's status, attempts
 * and next_attempt. Returns 0, or -1 with a reason in err if the bytes are not a valid state.
 */
int qfile_state_unpack(const uint8_t *in, qrcpt *r, char *err, size_t errlen);
/*
 * qfile_crc32 - update an IEEE CRC-32 (the one zlib and PNG use) with n bytes; start with 0.
 * Used for the file's checksum record; exported for tools and tests that build files by hand.
 */
uint32_t qfile_crc32(uint32_t crc, const void *p, size_t n);

#endif
