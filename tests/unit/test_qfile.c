/*
 * test_qfile.c - unit tests for the queue file format (src/queue/qfile.c): round trips, in-place
 * state updates at state_off, and rejection of every kind of damaged file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue/qfile.h"
#include "smtp/parse.h"

static const char sample_data[] =
    "From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody line\r\n.leading dot\r\n";

/* make_sample - a message with three recipients, no envid, and the null sender. */
static void make_sample(qmsg *m)
{
    memset(m, 0, sizeof *m);
    strcpy(m->id, "4fK2x9aB0001");
    m->channel = xstrdup("tcp_local");
    m->src_channel = xstrdup("tcp_intranet");
    m->sender = xstrdup("");
    m->envid = NULL;
    m->ret = DSN_RET_HDRS;
    m->body = BODY_8BITMIME;
    m->smtputf8 = true;
    m->is_notification = false;
    m->arrival = 1700000000;
    m->client = xstrdup("mail.example.org [192.0.2.1]");
    qmsg_add_rcpt(m, "b@example.net", "B@Example.NET", "rfc822;B@Example.NET", "example.net",
                  DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
    qrcpt *r = qmsg_add_rcpt(m, "c@example.net", "c@example.net", NULL, "", 0);
    r->status = QR_DELIVERED;
    r->attempts = 3;
    r->next_attempt = 1700003600;
    r = qmsg_add_rcpt(m, "d@example.com", "alias@example.org", NULL, "mx.example.com", DSN_NOTIFY_NEVER);
    r->status = QR_FAILED;
    r->attempts = 65535;
    r->next_attempt = -1;
    m->data = sample_data;
    m->data_len = sizeof sample_data - 1;
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL) assert_ptr_equal(a, b);
    else assert_string_equal(a, b);
}

/* assert_qmsg_equal - every field the file carries matches. */
static void assert_qmsg_equal(const qmsg *a, const qmsg *b)
{
    assert_string_equal(a->id, b->id);
    assert_str_or_null(a->channel, b->channel);
    assert_str_or_null(a->src_channel, b->src_channel);
    assert_str_or_null(a->sender, b->sender);
    assert_str_or_null(a->envid, b->envid);
    assert_str_or_null(a->client, b->client);
    assert_int_equal(a->ret, b->ret);
    assert_int_equal(a->body, b->body);
    assert_int_equal(a->smtputf8, b->smtputf8);
    assert_int_equal(a->is_notification, b->is_notification);
    assert_int_equal(a->arrival, b->arrival);
    assert_int_equal(a->n_rcpts, b->n_rcpts);
    for (size_t i = 0; i < a->n_rcpts; i++) {
        const qrcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
        assert_string_equal(x->addr, y->addr);
        assert_string_equal(x->orig, y->orig);
        assert_str_or_null(x->orcpt, y->orcpt);
        assert_string_equal(x->host, y->host);
        assert_int_equal(x->notify, y->notify);
        assert_int_equal(x->status, y->status);
        assert_int_equal(x->attempts, y->attempts);
        assert_int_equal(x->next_attempt, y->next_attempt);
        assert_int_equal(x->state_off, y->state_off);
    }
    assert_int_equal(a->data_len, b->data_len);
    assert_memory_equal(a->data, b->data, a->data_len);
}

static void test_crc32_vector(void **state)
{
    (void)state;
    assert_int_equal(qfile_crc32(0, "123456789", 9), 0xcbf43926u);
    assert_int_equal(qfile_crc32(qfile_crc32(0, "1234", 4), "56789", 5), 0xcbf43926u);
    assert_int_equal(qfile_crc32(0, "", 0), 0);
}

/* crc_bitwise - the textbook one-bit-at-a-time CRC-32, the reference for the table version. */
static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void test_crc32_matches_bitwise(void **state)
{
    (void)state;
    uint8_t buf[1031];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 9; off++) /* every alignment, every tail length */
        for (size_t n = 0; n + off <= sizeof buf; n += 37) {
            assert_int_equal(qfile_crc32(0, buf + off, n), crc_bitwise(buf + off, n));
            size_t half = n / 3;
            assert_int_equal(qfile_crc32(qfile_crc32(0, buf + off, half), buf + off + half, n - half),
                             crc_bitwise(buf + off, n));
        }
}

static void test_round_trip(void **state)
{
    (void)state;
    qmsg m, d;
    strbuf out;
    char err[128] = "";
    make_sample(&m);
    sb_init(&out);
    qfile_encode(&m, &out);
    assert_memory_equal(out.data, "SLQF\x01\x00", 6);
    assert_int_equal(qfile_decode(out.data, out.len, &d, err, sizeof err), 0);
    assert_qmsg_equal(&m, &d);
    assert_ptr_equal(d.data, d.content->data);
    assert_ptr_not_equal(d.data, out.data);
    qmsg_free(&d);
    assert_null(d.rcpts);
    sb_free(&out);
    qmsg_free(&m);
}

/* The split encoding (what the store writes with writev) is byte for byte the single one, with
 * the same state offsets, and the content is shared by reference, not copied. */
static void test_encode_split(void **state)
{
    (void)state;
    qmsg m;
    make_sample(&m);
    qmsg_set_content(&m, qbody_copy(sample_data, sizeof sample_data - 1));
    qbody *shared = qbody_ref(m.content);
    strbuf whole = {0}, head = {0}, tail = {0}, joined = {0};
    sb_append(&whole, "junk", 4); /* encoding appends: offsets stay relative to the file */
    qfile_encode(&m, &whole);
    off_t off0 = m.rcpts[0].state_off;
    qfile_encode_split(&m, &head, &tail);
    assert_int_equal(m.rcpts[0].state_off, off0);
    sb_append(&joined, "junk", 4);
    sb_append(&joined, head.data, head.len);
    sb_append(&joined, shared->data, shared->len);
    sb_append(&joined, tail.data, tail.len);
    assert_int_equal(joined.len, whole.len);
    assert_memory_equal(joined.data, whole.data, whole.len);
    assert_true(head.len + tail.len < 600); /* the content is in neither part */
    assert_ptr_equal(m.data, shared->data);
    qmsg_free(&m);
    assert_int_equal(shared->refs, 1); /* ours is the last reference */
    qbody_unref(shared);
    sb_free(&whole);
    sb_free(&head);
    sb_free(&tail);
    sb_free(&joined);
}

/* The optional records absent and present the other way round from make_sample. */
static void test_round_trip_optional(void **state)
{
    (void)state;
    qmsg m, d;
    strbuf out;
    char err[128] = "";
    memset(&m, 0, sizeof m);
    strcpy(m.id, "X");
    m.channel = xstrdup("notificationchannel");
    m.sender = xstrdup("owner-list@example.org");
    m.envid = xstrdup("QQ314159+xyz");
    m.ret = DSN_RET_FULL;
    m.is_notification = true;
    m.arrival = 0;
    qmsg_add_rcpt(&m, "x@example.net", NULL, NULL, NULL, 0);
    assert_string_equal(m.rcpts[0].orig, "x@example.net");
    assert_string_equal(m.rcpts[0].host, "");
    m.data = "";
    m.data_len = 0;
    sb_init(&out);
    qfile_encode(&m, &out);
    assert_int_equal(qfile_decode(out.data, out.len, &d, err, sizeof err), 0);
    assert_qmsg_equal(&m, &d);
    assert_null(d.src_channel);
    assert_null(d.client);
    assert_non_null(d.data);
    qmsg_free(&d);
    sb_free(&out);
    qmsg_free(&m);
}

static void test_many_rcpts(void **state)
{
    (void)state;
    qmsg m, d;
    strbuf out;
    char err[128] = "", addr[64];
    memset(&m, 0, sizeof m);
    strcpy(m.id, "many");
    m.channel = xstrdup("tcp_local");
    m.sender = xstrdup("s@example.org");
    m.data = sample_data;
    m.data_len = sizeof sample_data - 1;
    for (int i = 0; i < 1000; i++) {
        snprintf(addr, sizeof addr, "user%d@example.net", i);
        qrcpt *r = qmsg_add_rcpt(&m, addr, addr, i % 2 ? addr : NULL, "h", 0);
        r->attempts = (uint16_t)i;
    }
    sb_init(&out);
    qfile_encode(&m, &out);
    assert_int_equal(qfile_decode(out.data, out.len, &d, err, sizeof err), 0);
    assert_qmsg_equal(&m, &d);
    assert_string_equal(d.rcpts[999].addr, "user999@example.net");
    qmsg_free(&d);
    sb_free(&out);
    qmsg_free(&m);
}

static void test_state_off(void **state)
{
    (void)state;
    qmsg m;
    strbuf out;
    uint8_t packed[16];
    make_sample(&m);
    sb_init(&out);
    qfile_encode(&m, &out);
    assert_int_equal(qfile_state_size(), 16);
    for (size_t i = 0; i < m.n_rcpts; i++) {
        off_t off = m.rcpts[i].state_off;
        assert_true(off > 5 && (size_t)off + 16 <= out.len);
        assert_int_equal((uint8_t)out.data[off - 5], 'T');
        qfile_state_pack(&m.rcpts[i], packed);
        assert_memory_equal(out.data + off, packed, 16);
    }
    /* the layout is fixed: status, pad, attempts LE, reserved, next_attempt LE */
    qfile_state_pack(&m.rcpts[1], packed);
    const uint8_t want[16] = {1, 0, 3, 0, 0, 0, 0, 0, 0x10, 0xff, 0x53, 0x65, 0, 0, 0, 0};
    assert_memory_equal(packed, want, 16);
    sb_free(&out);
    qmsg_free(&m);
}

/* Patching a state payload in place (as the store does with pwrite) keeps the file valid. */
static void test_state_patch(void **state)
{
    (void)state;
    qmsg m, d;
    strbuf out;
    qrcpt nr;
    uint8_t packed[16];
    char err[128] = "";
    make_sample(&m);
    sb_init(&out);
    qfile_encode(&m, &out);
    for (size_t i = 0; i < m.n_rcpts; i++) {
        memset(&nr, 0, sizeof nr);
        nr.status = (uint8_t)(i == 0 ? QR_RELAYED : QR_PENDING);
        nr.attempts = (uint16_t)(100 + i);
        nr.next_attempt = INT64_C(1800000000123) + (int64_t)i;
        qfile_state_pack(&nr, packed);
        memcpy(out.data + m.rcpts[i].state_off, packed, sizeof packed);
    }
    assert_int_equal(qfile_decode(out.data, out.len, &d, err, sizeof err), 0);
    for (size_t i = 0; i < d.n_rcpts; i++) {
        assert_int_equal(d.rcpts[i].status, i == 0 ? QR_RELAYED : QR_PENDING);
        assert_int_equal(d.rcpts[i].attempts, 100 + i);
        assert_int_equal(d.rcpts[i].next_attempt, INT64_C(1800000000123) + (int64_t)i);
        assert_int_equal(d.rcpts[i].state_off, m.rcpts[i].state_off);
        assert_string_equal(d.rcpts[i].addr, m.rcpts[i].addr);
    }
    qmsg_free(&d);
    sb_free(&out);
    qmsg_free(&m);
}

static void test_state_unpack(void **state)
{
    (void)state;
    qrcpt r;
    char err[128] = "";
    uint8_t b[16] = {2, 0, 0x34, 0x12, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(qfile_state_unpack(b, &r, err, sizeof err), 0);
    assert_int_equal(r.status, QR_FAILED);
    assert_int_equal(r.attempts, 0x1234);
    assert_int_equal(r.next_attempt, 1);
    b[0] = 4;
    assert_int_equal(qfile_state_unpack(b, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "bad recipient status 4"));
    b[0] = 0;
    b[1] = 3; /* delay notices already sent */
    assert_int_equal(qfile_state_unpack(b, &r, err, sizeof err), 0);
    assert_int_equal(r.notices_sent, 3);
    b[1] = 6; /* at most five notice ages exist */
    assert_int_equal(qfile_state_unpack(b, &r, err, sizeof err), -1);
    b[1] = 0;
    b[6] = 1;
    assert_int_equal(qfile_state_unpack(b, &r, err, sizeof err), -1);
}

/* Every proper prefix of a valid file fails cleanly (run under ASan, none may read past it). */
static void test_truncated_everywhere(void **state)
{
    (void)state;
    qmsg m, d;
    strbuf out;
    char err[128];
    make_sample(&m);
    sb_init(&out);
    qfile_encode(&m, &out);
    for (size_t n = 0; n < out.len; n++) {
        char *copy = xmalloc(n ? n : 1); /* exact-size copy so ASan catches any overread */
        memcpy(copy, out.data, n);
        err[0] = '\0';
        if (qfile_decode(copy, n, &d, err, sizeof err) != -1) fail_msg("prefix of %zu bytes accepted", n);
        assert_true(err[0] != '\0');
        assert_null(d.rcpts);
        assert_null(d.content);
        free(copy);
    }
    assert_int_equal(qfile_decode(NULL, 0, &d, err, sizeof err), -1);
    assert_string_equal(err, "truncated");
    sb_free(&out);
    qmsg_free(&m);
}

/* ---- a hand-built file: records that each corruption case edits before serialising ---- */

#define MAX_RECS 32

typedef struct {
    uint8_t type;
    uint8_t payload[128];
    size_t len;
    uint32_t len_override; /* if non-zero, written instead of len */
} rec;

typedef struct {
    char magic[5];
    uint16_t version;
    rec recs[MAX_RECS];
    size_t n;
    bool no_crc;     /* omit the 'X' record */
    bool no_end;     /* omit the 'E' record */
    rec post;        /* if post.type is set: a record between 'X' and 'E' */
    const char *trailer;
} spec;

static void spec_add(spec *s, char type, const void *p, size_t len)
{
    assert_true(s->n < MAX_RECS && len <= sizeof s->recs[0].payload);
    rec *r = &s->recs[s->n++];
    memset(r, 0, sizeof *r);
    r->type = (uint8_t)type;
    memcpy(r->payload, p, len);
    r->len = len;
}

static void spec_add_str(spec *s, char type, const char *str)
{
    spec_add(s, type, str, strlen(str));
}

/* rcpt_payload - the nested fields of an 'R' record. */
static size_t rcpt_payload(uint8_t *p, const char *addr, const char *orcpt, uint32_t notify)
{
    size_t n = 0;
    const char *fields[2] = {addr, addr};
    for (int i = 0; i < 2; i++) {
        uint32_t l = (uint32_t)strlen(fields[i]);
        memcpy(p + n, &l, 4); /* the test host is little-endian, as the format */
        memcpy(p + n + 4, fields[i], l);
        n += 4 + l;
    }
    p[n++] = orcpt ? 1 : 0;
    if (orcpt) {
        uint32_t l = (uint32_t)strlen(orcpt);
        memcpy(p + n, &l, 4);
        memcpy(p + n + 4, orcpt, l);
        n += 4 + l;
    }
    uint32_t zero = 0;
    memcpy(p + n, &zero, 4); /* host "" */
    n += 4;
    memcpy(p + n, &notify, 4);
    return n + 4;
}

static void spec_add_rcpt(spec *s, const char *addr, uint8_t status)
{
    uint8_t p[128], st[16] = {0};
    spec_add(s, 'R', p, rcpt_payload(p, addr, "rfc822;x@y", 4));
    st[0] = status;
    spec_add(s, 'T', st, sizeof st);
}

/* spec_valid - the records of a small valid file. */
static void spec_valid(spec *s)
{
    uint8_t b8[8] = {0x00, 0xf1, 0x53, 0x65, 0, 0, 0, 0}, flags[4] = {1, 2, 0, 1};
    memset(s, 0, sizeof *s);
    strcpy(s->magic, "SLQF");
    s->version = 1;
    spec_add_str(s, 'I', "ABC123");
    spec_add_str(s, 'C', "tcp_local");
    spec_add_str(s, 'F', "");
    spec_add(s, 'A', b8, sizeof b8);
    spec_add(s, 'O', flags, sizeof flags);
    spec_add_rcpt(s, "a@example.net", QR_PENDING);
    spec_add_rcpt(s, "b@example.net", QR_FAILED);
    spec_add_str(s, 'D', "Subject: x\r\n\r\nbody\r\n");
}

static size_t spec_find(const spec *s, char type, int nth)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->recs[i].type == (uint8_t)type && nth-- == 0) return i;
    fail_msg("no record %c", type);
    return 0;
}

static void spec_remove(spec *s, size_t i)
{
    memmove(&s->recs[i], &s->recs[i + 1], (s->n - i - 1) * sizeof s->recs[0]);
    s->n--;
}

static void put_rec(strbuf *out, uint32_t *crc, uint8_t type, const void *p, size_t len, uint32_t wlen)
{
    uint8_t hdr[5];
    hdr[0] = type;
    memcpy(hdr + 1, &wlen, 4);
    sb_append(out, hdr, 5);
    sb_append(out, p, len);
    *crc = qfile_crc32(*crc, hdr, 5);
    if (type != 'T') *crc = qfile_crc32(*crc, p, len);
}

/* spec_serialise - the bytes of s, with a correct checksum unless told otherwise. */
static void spec_serialise(const spec *s, strbuf *out)
{
    uint32_t crc = 0;
    uint8_t hdr[6];
    memcpy(hdr, s->magic, 4);
    memcpy(hdr + 4, &s->version, 2);
    sb_append(out, hdr, 6);
    crc = qfile_crc32(crc, hdr, 6);
    for (size_t i = 0; i < s->n; i++) {
        const rec *r = &s->recs[i];
        put_rec(out, &crc, r->type, r->payload, r->len, r->len_override ? r->len_override : (uint32_t)r->len);
    }
    if (!s->no_crc) {
        uint32_t c = crc;
        put_rec(out, &crc, 'X', &c, 4, 4);
    }
    if (s->post.type) put_rec(out, &crc, s->post.type, s->post.payload, s->post.len, (uint32_t)s->post.len);
    if (!s->no_end) put_rec(out, &crc, 'E', "", 0, 0);
    if (s->trailer) sb_puts(out, s->trailer);
}

static void mut_none(spec *s) { (void)s; }
static void mut_magic(spec *s) { memcpy(s->magic, "SLQG", 4); }
static void mut_version(spec *s) { s->version = 7; }
static void mut_version0(spec *s) { s->version = 0; }
static void mut_unknown(spec *s) { spec_add_str(s, 'Z', "?"); }
static void mut_len_overflow(spec *s) { s->recs[spec_find(s, 'D', 0)].len_override = 0xffffffffu; }
static void mut_len_past_end(spec *s)
{
    rec *r = &s->recs[spec_find(s, 'D', 0)];
    r->len_override = (uint32_t)r->len + 100;
}
static void mut_no_end(spec *s) { s->no_end = true; }
static void mut_trailing(spec *s) { s->trailer = "garbage"; }
static void mut_trailing_nul(spec *s) { s->trailer = " "; }
static void mut_no_crc(spec *s) { s->no_crc = true; }
static void mut_no_id(spec *s) { spec_remove(s, spec_find(s, 'I', 0)); }
static void mut_no_channel(spec *s) { spec_remove(s, spec_find(s, 'C', 0)); }
static void mut_no_sender(spec *s) { spec_remove(s, spec_find(s, 'F', 0)); }
static void mut_no_arrival(spec *s) { spec_remove(s, spec_find(s, 'A', 0)); }
static void mut_no_data(spec *s) { spec_remove(s, spec_find(s, 'D', 0)); }
static void mut_no_rcpt(spec *s)
{
    for (int k = 0; k < 2; k++) {
        spec_remove(s, spec_find(s, 'R', 0));
        spec_remove(s, spec_find(s, 'T', 0));
    }
}
static void mut_bad_status(spec *s) { s->recs[spec_find(s, 'T', 1)].payload[0] = 9; }
static void mut_bad_pad(spec *s) { s->recs[spec_find(s, 'T', 0)].payload[4] = 1; }
static void mut_dup_id(spec *s) { spec_add_str(s, 'I', "ABC124"); }
static void mut_dup_data(spec *s) { spec_add_str(s, 'D', "x"); }
static void mut_no_state(spec *s) { spec_remove(s, spec_find(s, 'T', 0)); }
static void mut_state_alone(spec *s)
{
    uint8_t st[16] = {0};
    spec_add(s, 'T', st, sizeof st);
}
static void mut_state_size(spec *s) { s->recs[spec_find(s, 'T', 0)].len = 15; }
static void mut_state_late(spec *s)
{
    /* R, D, T: the state must follow its recipient immediately */
    size_t t = spec_find(s, 'T', 1);
    rec saved = s->recs[t];
    spec_remove(s, t);
    s->recs[s->n++] = saved;
}
static void mut_bad_crc(spec *s)
{
    s->no_crc = true;
    spec_add(s, 'X', "\0\0\0\0", 4);
}
static void mut_after_crc(spec *s)
{
    s->post.type = 'L';
    memcpy(s->post.payload, "late", 4);
    s->post.len = 4;
}
static void mut_end_len(spec *s)
{
    s->no_end = true;
    s->post.type = 'E';
    s->post.payload[0] = 'x';
    s->post.len = 1;
}
static void mut_nul_sender(spec *s)
{
    rec *r = &s->recs[spec_find(s, 'F', 0)];
    memcpy(r->payload, "a\0b", 3);
    r->len = 3;
}
static void mut_bad_id(spec *s)
{
    rec *r = &s->recs[spec_find(s, 'I', 0)];
    memcpy(r->payload, "../x", 4);
    r->len = 4;
}
static void mut_empty_id(spec *s) { s->recs[spec_find(s, 'I', 0)].len = 0; }
static void mut_long_id(spec *s)
{
    rec *r = &s->recs[spec_find(s, 'I', 0)];
    memset(r->payload, 'a', 32);
    r->len = 32;
}
static void mut_bad_flags(spec *s) { s->recs[spec_find(s, 'O', 0)].payload[0] = 3; }
static void mut_flags_size(spec *s) { s->recs[spec_find(s, 'O', 0)].len = 3; }
static void mut_arrival_size(spec *s) { s->recs[spec_find(s, 'A', 0)].len = 4; }
static void mut_rcpt_short(spec *s) { s->recs[spec_find(s, 'R', 0)].len -= 1; }
static void mut_rcpt_long(spec *s) { s->recs[spec_find(s, 'R', 0)].len += 1; }
static void mut_rcpt_nested(spec *s) { s->recs[spec_find(s, 'R', 0)].payload[0] = 200; }
static void mut_rcpt_notify(spec *s)
{
    rec *r = &s->recs[spec_find(s, 'R', 0)];
    r->payload[r->len - 4] = 0x10;
}
static void mut_rcpt_orcpt_flag(spec *s)
{
    rec *r = &s->recs[spec_find(s, 'R', 0)];
    r->len = rcpt_payload(r->payload, "a@example.net", NULL, 0);
    r->payload[2 * (4 + 13)] = 2;
}

static const struct {
    const char *name;
    void (*mutate)(spec *);
    const char *want; /* NULL: must decode; otherwise a substring of the error */
} corrupt_cases[] = {
    {"valid", mut_none, NULL},
    {"bad magic", mut_magic, "bad magic"},
    {"wrong version", mut_version, "unsupported version 7"},
    {"version zero", mut_version0, "unsupported version 0"},
    {"unknown type", mut_unknown, "unknown record type 0x5a"},
    {"length overflow", mut_len_overflow, "truncated"},
    {"length past end", mut_len_past_end, "truncated"},
    {"missing end", mut_no_end, "missing end record"},
    {"trailing garbage", mut_trailing, "trailing bytes"},
    {"trailing byte", mut_trailing_nul, "trailing bytes"},
    {"missing checksum", mut_no_crc, "missing checksum record"},
    {"missing id", mut_no_id, "missing id record"},
    {"missing channel", mut_no_channel, "missing channel record"},
    {"missing sender", mut_no_sender, "missing sender record"},
    {"missing arrival", mut_no_arrival, "missing arrival record"},
    {"missing data", mut_no_data, "missing data record"},
    {"missing recipients", mut_no_rcpt, "missing recipient record"},
    {"bad status", mut_bad_status, "bad recipient status 9"},
    {"bad state padding", mut_bad_pad, "bad state record padding"},
    {"duplicate id", mut_dup_id, "duplicate id record"},
    {"duplicate data", mut_dup_data, "duplicate data record"},
    {"recipient without state", mut_no_state, "recipient without state record"},
    {"state without recipient", mut_state_alone, "state record without recipient"},
    {"state wrong size", mut_state_size, "bad state record length 15"},
    {"state not adjacent", mut_state_late, "recipient without state record"},
    {"checksum mismatch", mut_bad_crc, "checksum mismatch"},
    {"record after checksum", mut_after_crc, "record after checksum"},
    {"end with payload", mut_end_len, "bad end record length 1"},
    {"NUL in string", mut_nul_sender, "NUL byte in sender"},
    {"id with slash", mut_bad_id, "bad queue id"},
    {"empty id", mut_empty_id, "bad queue id length 0"},
    {"id too long", mut_long_id, "bad queue id length 32"},
    {"bad flags", mut_bad_flags, "bad flags"},
    {"flags wrong size", mut_flags_size, "bad flags record length 3"},
    {"arrival wrong size", mut_arrival_size, "bad arrival record length 4"},
    {"recipient short", mut_rcpt_short, "bad recipient record"},
    {"recipient long", mut_rcpt_long, "bad recipient record"},
    {"recipient nested overflow", mut_rcpt_nested, "bad recipient record"},
    {"recipient notify bits", mut_rcpt_notify, "bad recipient record"},
    {"recipient orcpt flag", mut_rcpt_orcpt_flag, "bad recipient record"},
};

static void test_corruptions(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(corrupt_cases); i++) {
        spec s;
        strbuf out;
        qmsg d;
        char err[128] = "";
        spec_valid(&s);
        corrupt_cases[i].mutate(&s);
        sb_init(&out);
        spec_serialise(&s, &out);
        char *copy = xmalloc(out.len);
        memcpy(copy, out.data, out.len);
        int rc = qfile_decode(copy, out.len, &d, err, sizeof err);
        if (corrupt_cases[i].want == NULL) {
            if (rc != 0) fail_msg("%s: rejected: %s", corrupt_cases[i].name, err);
            assert_string_equal(d.id, "ABC123");
            assert_int_equal(d.n_rcpts, 2);
            assert_int_equal(d.rcpts[1].status, QR_FAILED);
            assert_string_equal(d.rcpts[0].orcpt, "rfc822;x@y");
            assert_int_equal(d.rcpts[0].notify, DSN_NOTIFY_FAILURE);
            assert_int_equal(d.ret, DSN_RET_FULL);
            assert_true(d.is_notification);
            qmsg_free(&d);
        } else {
            if (rc != -1) fail_msg("%s: accepted", corrupt_cases[i].name);
            if (!strstr(err, corrupt_cases[i].want))
                fail_msg("%s: error \"%s\", want \"%s\"", corrupt_cases[i].name, err, corrupt_cases[i].want);
            assert_null(d.rcpts);
            assert_null(d.channel);
        }
        free(copy);
        sb_free(&out);
    }
}

/* A flipped bit anywhere outside the state payloads is caught; inside them it is checked too. */
static void test_bit_flips(void **state)
{
    (void)state;
    qmsg m, d;
    strbuf out;
    char err[128];
    make_sample(&m);
    sb_init(&out);
    qfile_encode(&m, &out);
    for (size_t i = 0; i < out.len; i++) {
        bool in_state = false;
        for (size_t k = 0; k < m.n_rcpts; k++)
            if (i >= (size_t)m.rcpts[k].state_off && i < (size_t)m.rcpts[k].state_off + 16) in_state = true;
        if (in_state) continue;
        out.data[i] ^= 0x01;
        if (qfile_decode(out.data, out.len, &d, err, sizeof err) != -1) fail_msg("flip at %zu accepted", i);
        out.data[i] ^= 0x01;
    }
    assert_int_equal(qfile_decode(out.data, out.len, &d, err, sizeof err), 0);
    qmsg_free(&d);
    sb_free(&out);
    qmsg_free(&m);
}

/* ---- qmsg_drop_data / qfile_load_data (queue_cache_size: content read back from disk) ---- */

/* write_temp - the bytes into a fresh file under /tmp; its path into path (>= 64 bytes). */
static void write_temp(char *path, const void *data, size_t len)
{
    snprintf(path, 64, "/tmp/sluice-qfile-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* encode_decode_drop - make_sample encoded into a temp file, decoded into d, content dropped. */
static void encode_decode_drop(char *path, strbuf *out, qmsg *d)
{
    qmsg m;
    char err[128] = "";
    make_sample(&m);
    sb_init(out);
    qfile_encode(&m, out);
    write_temp(path, out->data, out->len);
    assert_int_equal(qfile_decode(out->data, out->len, d, err, sizeof err), 0);
    qmsg_free(&m);
    assert_false(d->body_on_disk);
    qmsg_drop_data(d);
    assert_true(d->body_on_disk);
    assert_null(d->data);
    assert_null(d->content);
    assert_int_equal(d->data_len, sizeof sample_data - 1);
    qmsg_drop_data(d); /* twice is harmless */
    assert_true(d->body_on_disk);
}

static void test_load_data_round_trip(void **state)
{
    (void)state;
    char path[64], err[256] = "";
    strbuf out;
    qmsg d;
    encode_decode_drop(path, &out, &d);
    assert_int_equal(qfile_load_data(path, &d, err, sizeof err), 0);
    assert_false(d.body_on_disk);
    assert_non_null(d.data);
    assert_ptr_equal(d.data, d.content->data);
    assert_int_equal(d.data_len, sizeof sample_data - 1);
    assert_memory_equal(d.data, sample_data, d.data_len);
    /* the envelope is untouched by the load */
    assert_string_equal(d.id, "4fK2x9aB0001");
    assert_int_equal(d.n_rcpts, 3);
    assert_string_equal(d.rcpts[2].orig, "alias@example.org");
    /* drop and load again: no leak, same bytes */
    qmsg_drop_data(&d);
    assert_int_equal(qfile_load_data(path, &d, err, sizeof err), 0);
    assert_memory_equal(d.data, sample_data, d.data_len);
    qmsg_free(&d);
    sb_free(&out);
    unlink(path);
}

static void test_load_data_missing_file(void **state)
{
    (void)state;
    char path[64], err[256] = "";
    strbuf out;
    qmsg d;
    encode_decode_drop(path, &out, &d);
    unlink(path);
    assert_int_equal(qfile_load_data(path, &d, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_non_null(strstr(err, "No such file"));
    assert_true(d.body_on_disk);
    assert_null(d.data);
    qmsg_free(&d);
    sb_free(&out);
}

static void test_load_data_other_message(void **state)
{
    (void)state;
    char path[64], err[256] = "";
    strbuf out;
    qmsg d;
    encode_decode_drop(path, &out, &d);
    /* the same file, but the message in memory has another id */
    strcpy(d.id, "4fK2x9aB0002");
    assert_int_equal(qfile_load_data(path, &d, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_true(d.body_on_disk);
    assert_null(d.data);
    /* right id, but another size than the one in memory: still not this message */
    strcpy(d.id, "4fK2x9aB0001");
    d.data_len--;
    err[0] = '\0';
    assert_int_equal(qfile_load_data(path, &d, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_true(d.body_on_disk);
    d.data_len++;
    /* a genuine file of another message at the path */
    qmsg o;
    strbuf ob;
    make_sample(&o);
    strcpy(o.id, "4fK2x9aBFFFF");
    sb_init(&ob);
    qfile_encode(&o, &ob);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(ob.data, 1, ob.len, fp), ob.len);
    fclose(fp);
    err[0] = '\0';
    assert_int_equal(qfile_load_data(path, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "4fK2x9aBFFFF"));
    assert_true(d.body_on_disk);
    assert_null(d.data);
    qmsg_free(&o);
    sb_free(&ob);
    qmsg_free(&d);
    sb_free(&out);
    unlink(path);
}

static void test_load_data_damaged(void **state)
{
    (void)state;
    char path[64], err[256] = "";
    strbuf out;
    qmsg d;
    encode_decode_drop(path, &out, &d);
    /* flip one byte inside the content (past the header records, before the end record) */
    const char *hit = memmem(out.data, out.len, "body line", 9);
    assert_non_null(hit);
    size_t at = (size_t)(hit - out.data);
    out.data[at] ^= 0x20;
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, (long)at, SEEK_SET), 0);
    assert_int_equal(fputc((unsigned char)out.data[at], fp), (unsigned char)out.data[at]);
    fclose(fp);
    assert_int_equal(qfile_load_data(path, &d, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_true(d.body_on_disk);
    assert_null(d.data);
    /* a truncated file fails too */
    assert_int_equal(truncate(path, (off_t)out.len / 2), 0);
    err[0] = '\0';
    assert_int_equal(qfile_load_data(path, &d, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_true(d.body_on_disk);
    qmsg_free(&d);
    sb_free(&out);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_vector),
        cmocka_unit_test(test_crc32_matches_bitwise),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_optional),
        cmocka_unit_test(test_many_rcpts),
        cmocka_unit_test(test_state_off),
        cmocka_unit_test(test_state_patch),
        cmocka_unit_test(test_state_unpack),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_corruptions),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_load_data_round_trip),
        cmocka_unit_test(test_encode_split),
        cmocka_unit_test(test_load_data_missing_file),
        cmocka_unit_test(test_load_data_other_message),
        cmocka_unit_test(test_load_data_damaged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
