/*
 * qfile.c - the queue file format (see qfile.h and DESIGN.md §3).
 *
 * File = "SLQF", u16 LE version (1), records. Record = u8 type, u32 LE payload length, payload.
 * All integers are little-endian. A "string" payload is the bytes without a NUL (a NUL inside
 * is an error). Record types, in the order qfile_encode writes them:
 *
 *   'I'  queue id: 1..31 printable ASCII bytes, no '/', not starting with '.'   required, once
 *   'C'  destination channel (string)                                         required, once
 *   'S'  source channel (string)                                              optional, once
 *   'F'  envelope sender (string, "" for <>)                                  required, once
 *   'V'  DSN ENVID, decoded (string)                                          optional, once
 *   'A'  arrival time, i64 unix seconds (8 bytes)                             required, once
 *   'O'  flags, 4 bytes: ret (0..2), body (0..3), smtputf8 (0/1),
 *        notification (0 no, 1 DSN/MDN, 2 postmaster copy of a failed DSN)                                               optional, once
 *   'L'  client "helo [ip]" (string)                                          optional, once
 *   'R'  recipient; payload is nested fields, each string as u32 length + bytes:
 *          addr, orig, u8 has_orcpt (0/1) [+ orcpt string if 1], host,
 *          u32 notify (DSN_NOTIFY_* bits, only 0x0f allowed),
 *          optionally u8 'f' + folder string (1..255 bytes; a Sieve fileinto)    one or more
 *   'T'  recipient state, exactly 16 bytes, immediately after its 'R':
 *          u8 status (enum qrcpt_status), u8 notices_sent (0..5), u16 attempts,
 *          u32 reserved (0), i64 next_attempt
 *   'D'  message data (header + body, CRLF line ends, no dot-stuffing)        required, once
 *   'X'  u32 CRC-32 of every byte from the magic up to this record's type byte,
 *        except the 'T' payloads (they change in place); immediately before 'E'  required, once
 *   'E'  end: payload length 0, the last record, ending exactly at end of file  required
 *
 * The 'T' payloads are the only bytes that ever change after the file is written; the store
 * rewrites them with pwrite at qrcpt.state_off. Everything else is covered by the checksum, so a
 * torn or damaged file is detected and moved aside by recovery instead of being half-delivered.
 */
#include "queue/qfile.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QF_HDR_LEN 6          /* magic + version */
#define QF_REC_HDR_LEN 5      /* type + length */
#define QF_STATE_LEN 16
#define QF_FLAGS_LEN 4
#define QF_NOTIFY_MASK 0x0fu

/* ---- little-endian helpers ---- */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* ---- CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), four bits at a time ---- */

/* Slice-by-8 tables for the reflected polynomial 0xEDB88320, built once: eight bytes per step
   instead of one (the checksum of the message content was 6 % of the CPU under load). */
static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
        crc_tab[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (uint32_t i = 0; i < 256; i++) crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

uint32_t qfile_crc32(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
        uint32_t hi = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
        crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
              crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^ crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
        b += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ crc_tab[0][(crc ^ *b++) & 0xff];
    return ~crc;
}

/* ---- qmsg ---- */

void qmsg_free(qmsg *m)
{
    free(m->channel);
    free(m->src_channel);
    free(m->sender);
    free(m->envid);
    free(m->client);
    for (size_t i = 0; i < m->n_rcpts; i++) qrcpt_clear(&m->rcpts[i]);
    free(m->rcpts);
    qbody_unref(m->content);
    memset(m, 0, sizeof *m);
}

qbody *qbody_adopt(char *data, size_t len)
{
    qbody *b = xcalloc(1, sizeof *b);
    atomic_init(&b->refs, 1);
    b->len = len;
    b->data = data ? data : xstrdup("");
    return b;
}

qbody *qbody_copy(const void *data, size_t len)
{
    char *p = xmalloc(len + 1);
    if (len) memcpy(p, data, len);
    p[len] = '\0';
    return qbody_adopt(p, len);
}

qbody *qbody_ref(qbody *b)
{
    if (b) atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void qbody_unref(qbody *b)
{
    if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1) return;
    free(b->data);
    free(b);
}

void qmsg_set_content(qmsg *m, qbody *b)
{
    qbody_unref(m->content);
    m->content = b;
    m->data = b ? b->data : NULL;
    if (b) m->data_len = b->len;
}

void qmsg_drop_data(qmsg *m)
{
    if (m->body_on_disk) return;
    qbody_unref(m->content);
    m->content = NULL;
    m->data = NULL;
    m->body_on_disk = true;
}

int qfile_load_data(const char *path, qmsg *m, char *err, size_t errlen)
{
    strbuf sb;
    qmsg tmp;
    int rc = -1;
    sb_init(&sb);
    if (file_read(path, &sb) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (qfile_decode(sb.data ? sb.data : "", sb.len, &tmp, err, errlen) < 0) goto out;
    if (strcmp(tmp.id, m->id) != 0 || tmp.data_len != m->data_len) {
        snprintf(err, errlen, "%s holds message %s of %zu bytes, not %s", path, tmp.id, tmp.data_len, m->id);
    } else {
        qmsg_set_content(m, tmp.content);
        m->body_on_disk = false;
        tmp.content = NULL;
        rc = 0;
    }
    qmsg_free(&tmp);
out:
    sb_free(&sb);
    return rc;
}

/*
 * The array's capacity is implied by n_rcpts (4, then powers of two), so the struct needs no
 * capacity field; this is why rcpts must only ever be grown through qmsg_add_rcpt.
 */
qrcpt *qmsg_add_rcpt(qmsg *m, const char *addr, const char *orig, const char *orcpt, const char *host, unsigned notify)
{
    size_t n = m->n_rcpts;
    if (n == 0 || (n >= 4 && (n & (n - 1)) == 0))
        m->rcpts = xrealloc(m->rcpts, (n < 4 ? 4 : 2 * n) * sizeof *m->rcpts);
    qrcpt *r = &m->rcpts[n];
    qrcpt_init(r, addr, orig, orcpt, NULL, host, notify);
    m->n_rcpts = n + 1;
    return r;
}

void qrcpt_init(qrcpt *r, const char *addr, const char *orig, const char *orcpt, const char *channel, const char *host,
                unsigned notify)
{
    memset(r, 0, sizeof *r);
    r->addr = xstrdup(addr ? addr : "");
    r->orig = xstrdup(orig ? orig : r->addr);
    r->orcpt = xstrdup(orcpt);
    r->channel = xstrdup(channel);
    r->host = xstrdup(host ? host : "");
    r->notify = notify;
    r->status = QR_PENDING;
}

void qrcpt_clear(qrcpt *r)
{
    free(r->addr);
    free(r->orig);
    free(r->orcpt);
    free(r->channel);
    free(r->host);
    free(r->folder);
    free(r->optins);
    free(r->sieve);
    r->optins = r->sieve = NULL;
    r->addr = r->orig = r->orcpt = r->channel = r->host = r->folder = NULL;
}

/* ---- state record ---- */

size_t qfile_state_size(void)
{
    return QF_STATE_LEN;
}

void qfile_state_pack(const qrcpt *r, uint8_t *out)
{
    memset(out, 0, QF_STATE_LEN);
    out[0] = r->status;
    out[1] = r->notices_sent;
    put_u16(out + 2, r->attempts);
    put_u64(out + 8, (uint64_t)r->next_attempt);
}

static bool status_valid(unsigned s)
{
    return s == QR_PENDING || s == QR_DELIVERED || s == QR_FAILED || s == QR_RELAYED;
}

int qfile_state_unpack(const uint8_t *in, qrcpt *r, char *err, size_t errlen)
{
    if (!status_valid(in[0])) {
        snprintf(err, errlen, "bad recipient status %u", in[0]);
        return -1;
    }
    if (in[1] > 5 || get_u32(in + 4) != 0) {
        snprintf(err, errlen, "bad state record padding");
        return -1;
    }
    r->status = in[0];
    r->notices_sent = in[1];
    r->attempts = get_u16(in + 2);
    r->next_attempt = (int64_t)get_u64(in + 8);
    return 0;
}

/* ---- encoding ---- */

/* qf_put_record - append a record header and payload. */
static void qf_put_record(strbuf *out, char type, const void *payload, size_t len)
{
    uint8_t hdr[QF_REC_HDR_LEN];
    if (len > UINT32_MAX) abort(); /* the store refuses messages anywhere near this size */
    hdr[0] = (uint8_t)type;
    put_u32(hdr + 1, (uint32_t)len);
    sb_append(out, hdr, sizeof hdr);
    sb_append(out, payload, len);
}

/* qf_put_string - append a string record, if s is set. */
static void qf_put_string(strbuf *out, char type, const char *s)
{
    if (s) qf_put_record(out, type, s, strlen(s));
}

/* qf_put_nested - append a u32 length and the bytes of s to a recipient payload. */
static void qf_put_nested(strbuf *p, const char *s)
{
    uint8_t len[4];
    size_t n = s ? strlen(s) : 0;
    put_u32(len, (uint32_t)n);
    sb_append(p, len, sizeof len);
    sb_append(p, s ? s : "", n);
}

/* qf_put_rcpt - append a recipient's 'R' and 'T' records; returns the 'T' payload offset. */
static size_t qf_put_rcpt(strbuf *out, size_t base, const qrcpt *r)
{
    strbuf p;
    uint8_t b4[4], state[QF_STATE_LEN];
    sb_init(&p);
    qf_put_nested(&p, r->addr);
    qf_put_nested(&p, r->orig);
    sb_putc(&p, r->orcpt ? 1 : 0);
    if (r->orcpt) qf_put_nested(&p, r->orcpt);
    qf_put_nested(&p, r->host);
    put_u32(b4, r->notify);
    sb_append(&p, b4, sizeof b4);
    if (r->folder) {
        sb_putc(&p, 'f');
        qf_put_nested(&p, r->folder);
    }
    qf_put_record(out, 'R', p.data, p.len);
    sb_free(&p);
    qfile_state_pack(r, state);
    qf_put_record(out, 'T', state, sizeof state);
    return out->len - QF_STATE_LEN - base;
}

/* qf_checksum - the CRC over out[base..end) skipping every recipient's state payload. */
static uint32_t qf_checksum(const strbuf *out, size_t base, const qmsg *m)
{
    const uint8_t *b = (const uint8_t *)out->data + base;
    size_t end = out->len - base, pos = 0;
    uint32_t crc = 0;
    for (size_t i = 0; i < m->n_rcpts; i++) {
        size_t off = (size_t)m->rcpts[i].state_off;
        crc = qfile_crc32(crc, b + pos, off - pos);
        pos = off + QF_STATE_LEN;
    }
    return qfile_crc32(crc, b + pos, end - pos);
}

void qfile_encode(qmsg *m, strbuf *out)
{
    strbuf head = {0}, tail = {0};
    qfile_encode_split(m, &head, &tail);
    sb_append(out, head.data, head.len);
    if (m->data_len && m->data) sb_append(out, m->data, m->data_len);
    sb_append(out, tail.data, tail.len);
    sb_free(&head);
    sb_free(&tail);
}

void qfile_encode_split(qmsg *m, strbuf *out, strbuf *tail)
{
    size_t base = out->len;
    uint8_t hdr[QF_HDR_LEN], b8[8], flags[QF_FLAGS_LEN], b4[4];

    memcpy(hdr, QFILE_MAGIC, 4);
    put_u16(hdr + 4, QFILE_VERSION);
    sb_append(out, hdr, sizeof hdr);
    qf_put_record(out, 'I', m->id, strnlen(m->id, sizeof m->id - 1));
    qf_put_string(out, 'C', m->channel ? m->channel : "");
    qf_put_string(out, 'S', m->src_channel);
    qf_put_string(out, 'F', m->sender ? m->sender : "");
    qf_put_string(out, 'V', m->envid);
    put_u64(b8, (uint64_t)m->arrival);
    qf_put_record(out, 'A', b8, sizeof b8);
    flags[0] = m->ret;
    flags[1] = m->body;
    flags[2] = m->smtputf8 ? 1 : 0;
    flags[3] = m->is_postmaster_copy ? 2 : m->is_notification ? 1 : 0;
    qf_put_record(out, 'O', flags, sizeof flags);
    qf_put_string(out, 'L', m->client);
    for (size_t i = 0; i < m->n_rcpts; i++)
        m->rcpts[i].state_off = (off_t)qf_put_rcpt(out, base, &m->rcpts[i]);
    size_t dlen = m->data ? m->data_len : 0;
    if (dlen > UINT32_MAX) abort(); /* the store refuses messages anywhere near this size */
    qf_put_record(out, 'D', "", 0); /* its header, with the length patched in: the data is not copied */
    put_u32((uint8_t *)out->data + out->len - 4, (uint32_t)dlen);
    uint32_t crc = qf_checksum(out, base, m);
    if (dlen) crc = qfile_crc32(crc, m->data, dlen);
    put_u32(b4, crc);
    qf_put_record(tail, 'X', b4, sizeof b4);
    qf_put_record(tail, 'E', "", 0);
}

/* ---- decoding ---- */

typedef struct {
    const uint8_t *p;     /* the payload being parsed */
    size_t len;
    size_t pos;
} qf_cursor;

typedef struct {
    qmsg *m;
    char *err;
    size_t errlen;
    unsigned seen[256];   /* count of each record type */
    bool want_state;      /* the previous record was 'R' */
    bool after_crc;       /* the previous record was 'X' */
    uint32_t crc;         /* running checksum of everything read so far */
    size_t rec_off;       /* offset of the current record (for messages) */
} qf_reader;

typedef int (*qf_handler)(qf_reader *rd, const uint8_t *p, size_t len, size_t payload_off);

static int qf_fail(qf_reader *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int qf_fail(qf_reader *rd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rd->err, rd->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* qf_copy_string - a NUL-terminated copy of a string payload; NULL if it contains a NUL. */
static char *qf_copy_string(const uint8_t *p, size_t len)
{
    if (memchr(p, '\0', len)) return NULL;
    char *s = xmalloc(len + 1);
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

/* qf_string_into - decode a string record into *dst, naming it in errors. */
static int qf_string_into(qf_reader *rd, const uint8_t *p, size_t len, char **dst, const char *what)
{
    char *s = qf_copy_string(p, len);
    if (!s) return qf_fail(rd, "NUL byte in %s", what);
    *dst = s;
    return 0;
}

static int qf_on_id(qf_reader *rd, const uint8_t *p, size_t len, size_t off)
{
    (void)off;
    if (len == 0 || len >= sizeof rd->m->id) return qf_fail(rd, "bad queue id length %zu", len);
    if (p[0] == '.') return qf_fail(rd, "bad queue id");
    for (size_t i = 0; i < len; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f || p[i] == '/') return qf_fail(rd, "bad queue id");
    memcpy(rd->m->id, p, len);
    rd->m->id[len] = '\0';
    return 0;
}

static int qf_on_channel(qf_reader *rd, const uint8_t *p, size_t len, size_t off)
{
    (void)off;
    return qf_string_into(rd, p, len, &rd->m->channel, "channel");
}

static int qf_on_src_channel(qf_reader *rd, const uint8_t *p, size_t len, size_t off)
{
    (void)off;
    return qf_string_into(rd, p, len, &rd->m->src_channel, "source channel");
}

static int qf_on_sender(qf_reader *rd, const uint8_t *p, size_t len, size_t off)
{
    (void)off;
    return qf_string_into(rd, p, len, &rd->m->sender, "sender");
}

static int qf_on_envid(qf_reader *rd, const uint8_t *p, size_t len, size_t off)
{
    (void)off;
    return qf_string_into(rd, p, len, &rd->m->envid, "envid");
}

static int qf_on_client(qf_reader *rd, const uint8_t *p, size_t len, size_t off)
{
    (void)off;
    return qf_string_into(rd, p, len, &rd->m->client, "client");
}

static int qf_on_arrival(qf_reader *rd, const uint8_t *p, size_t len, size_t off)
{
    (void)off;
    if (len != 8) return qf_fail(rd, "bad arrival record length %zu", len);
    rd->m->arrival = (int64_t)get_u64(p);
    return 0;
}

static int qf_on_flags(qf_reader *rd, const uint8_t *p, size_t len, size_t off)
{
    (void)off;
    if (len != QF_FLAGS_LEN) return qf_fail(rd, "bad flags record length %zu", len);
    if (p[0] > 2 || p[1] > 3 || p[2] > 1 || p[3] > 2)
        return qf_fail(rd, "bad flags %u,%u,%u,%u", p[0], p[1], p[2], p[3]);
    rd->m->ret = p[0];
    rd->m->body = p[1];
    rd->m->smtputf8 = p[2] != 0;
    rd->m->is_notification = p[3] != 0;
    rd->m->is_postmaster_copy = p[3] == 2;
    return 0;
}

/* qf_cur_string - read one nested u32-length string from a recipient payload. */
static char *qf_cur_string(qf_cursor *c)
{
    if (c->len - c->pos < 4) return NULL;
    uint32_t n = get_u32(c->p + c->pos);
    if (n > c->len - c->pos - 4) return NULL;
    char *s = qf_copy_string(c->p + c->pos + 4, n);
    if (s) c->pos += 4 + (size_t)n;
    return s;
}

static int qf_on_rcpt(qf_reader *rd, const uint8_t *p, size_t len, size_t off)
{
    (void)off;
    qf_cursor c = {p, len, 0};
    char *addr = NULL, *orig = NULL, *orcpt = NULL, *host = NULL, *folder = NULL;
    int rc = -1;
    uint32_t notify;

    if (!(addr = qf_cur_string(&c)) || !(orig = qf_cur_string(&c))) goto out;
    if (c.pos >= c.len || c.p[c.pos] > 1) goto out;
    if (c.p[c.pos++] == 1 && !(orcpt = qf_cur_string(&c))) goto out;
    if (!(host = qf_cur_string(&c))) goto out;
    if (c.len - c.pos < 4) goto out;
    notify = get_u32(c.p + c.pos);
    c.pos += 4;
    if (notify & ~QF_NOTIFY_MASK) goto out;
    if (c.pos < c.len) { /* the optional folder */
        if (c.p[c.pos++] != 'f' || !(folder = qf_cur_string(&c)) || !*folder || strlen(folder) > 255) goto out;
    }
    if (c.pos != c.len) goto out;
    qmsg_add_rcpt(rd->m, addr, orig, orcpt, host, notify)->folder = folder;
    folder = NULL;
    rd->want_state = true;
    rc = 0;
out:
    if (rc < 0) qf_fail(rd, "bad recipient record at offset %zu", rd->rec_off);
    free(addr);
    free(orig);
    free(orcpt);
    free(host);
    free(folder);
    return rc;
}

static int qf_on_state(qf_reader *rd, const uint8_t *p, size_t len, size_t off)
{
    qrcpt *r;
    if (!rd->want_state) return qf_fail(rd, "state record without recipient at offset %zu", rd->rec_off);
    if (len != QF_STATE_LEN) return qf_fail(rd, "bad state record length %zu", len);
    r = &rd->m->rcpts[rd->m->n_rcpts - 1];
    if (qfile_state_unpack(p, r, rd->err, rd->errlen) < 0) return -1;
    r->state_off = (off_t)off;
    rd->want_state = false;
    return 0;
}

static int qf_on_data(qf_reader *rd, const uint8_t *p, size_t len, size_t off)
{
    (void)off;
    qmsg_set_content(rd->m, qbody_copy(p, len));
    return 0;
}

static int qf_on_crc(qf_reader *rd, const uint8_t *p, size_t len, size_t off)
{
    (void)off;
    if (len != 4) return qf_fail(rd, "bad checksum record length %zu", len);
    if (get_u32(p) != rd->crc) return qf_fail(rd, "checksum mismatch");
    rd->after_crc = true;
    return 0;
}

/* One row per record type: whether it may appear only once and whether it is required. */
static const struct {
    char type;
    bool once;
    bool required;
    qf_handler fn;
    const char *name;
} qf_types[] = {
    {'I', true, true, qf_on_id, "id"},
    {'C', true, true, qf_on_channel, "channel"},
    {'S', true, false, qf_on_src_channel, "source channel"},
    {'F', true, true, qf_on_sender, "sender"},
    {'V', true, false, qf_on_envid, "envid"},
    {'A', true, true, qf_on_arrival, "arrival"},
    {'O', true, false, qf_on_flags, "flags"},
    {'L', true, false, qf_on_client, "client"},
    {'R', false, true, qf_on_rcpt, "recipient"},
    {'T', false, false, qf_on_state, "state"},
    {'D', true, true, qf_on_data, "data"},
    {'X', true, true, qf_on_crc, "checksum"},
};

/* qf_check_required - after the end record: every required record is present. */
static int qf_check_required(qf_reader *rd)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(qf_types); i++)
        if (qf_types[i].required && rd->seen[(uint8_t)qf_types[i].type] == 0)
            return qf_fail(rd, "missing %s record", qf_types[i].name);
    return 0;
}

/* qf_check_sequence - the ordering rules that hold before any record of type t. */
static int qf_check_sequence(qf_reader *rd, uint8_t t)
{
    if (rd->want_state && t != 'T')
        return qf_fail(rd, "recipient without state record at offset %zu", rd->rec_off);
    if (rd->after_crc && t != 'E')
        return qf_fail(rd, "record after checksum at offset %zu", rd->rec_off);
    return 0;
}

/* qf_dispatch - validate and handle one non-end record. */
static int qf_dispatch(qf_reader *rd, uint8_t t, const uint8_t *p, size_t len, size_t off)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(qf_types); i++) {
        if ((uint8_t)qf_types[i].type != t) continue;
        if (qf_types[i].once && rd->seen[t] > 0)
            return qf_fail(rd, "duplicate %s record at offset %zu", qf_types[i].name, rd->rec_off);
        rd->seen[t]++;
        return qf_types[i].fn(rd, p, len, off);
    }
    return qf_fail(rd, "unknown record type 0x%02x at offset %zu", t, rd->rec_off);
}

/* qf_read_records - walk every record after the file header. */
static int qf_read_records(qf_reader *rd, const uint8_t *b, size_t len)
{
    size_t pos = QF_HDR_LEN;
    for (;;) {
        if (pos == len) return qf_fail(rd, "missing end record");
        if (len - pos < QF_REC_HDR_LEN) return qf_fail(rd, "truncated");
        uint8_t t = b[pos];
        uint32_t plen = get_u32(b + pos + 1);
        size_t payload = pos + QF_REC_HDR_LEN;
        if (plen > len - payload) return qf_fail(rd, "truncated");
        rd->rec_off = pos;
        if (qf_check_sequence(rd, t) < 0) return -1;
        if (t == 'E') {
            if (plen != 0) return qf_fail(rd, "bad end record length %u", plen);
            if (payload != len) return qf_fail(rd, "trailing bytes after end record");
            return qf_check_required(rd);
        }
        if (qf_dispatch(rd, t, b + payload, plen, payload) < 0) return -1;
        rd->crc = qfile_crc32(rd->crc, b + pos, QF_REC_HDR_LEN);
        if (t != 'T') rd->crc = qfile_crc32(rd->crc, b + payload, plen);
        pos = payload + plen;
    }
}

int qfile_decode(const void *buf, size_t len, qmsg *m, char *err, size_t errlen)
{
    const uint8_t *b = buf;
    qf_reader rd;
    int rc = -1;

    memset(m, 0, sizeof *m);
    memset(&rd, 0, sizeof rd);
    rd.m = m;
    rd.err = err;
    rd.errlen = errlen;
    /* A prefix of the magic is only "truncated"; anything else is not a queue file at all. */
    if (len > 0 && memcmp(b, QFILE_MAGIC, len < 4 ? len : 4) != 0) {
        qf_fail(&rd, "bad magic");
        goto out;
    }
    if (len < QF_HDR_LEN) {
        qf_fail(&rd, "truncated");
        goto out;
    }
    if (get_u16(b + 4) != QFILE_VERSION) {
        qf_fail(&rd, "unsupported version %u", get_u16(b + 4));
        goto out;
    }
    rd.crc = qfile_crc32(0, b, QF_HDR_LEN);
    rc = qf_read_records(&rd, b, len);
out:
    if (rc < 0) qmsg_free(m);
    return rc;
}
