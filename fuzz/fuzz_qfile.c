/*
 * fuzz_qfile.c - the queue file reader (queue/qfile.h): recovery reads whatever a crash, a full
 * disk or a damaged device left in the queue directory.
 *
 * Input: byte 0 = mode; the rest is either a queue file as found on disk (decoded as is), or
 * the description of a message (every field within its documented range) that is encoded,
 * damaged and decoded again.
 *
 * Properties:
 *  - a file that decodes survives encode + decode unchanged: decode(encode(decode(x))) ==
 *    decode(x), and encode(decode(x)) decodes to the same states at the same offsets;
 *  - the round trip: for any message m built from the input, decode(encode(m)) == m, field by
 *    field (the record set, recipient order, states, flags, the data byte for byte);
 *  - a torn file (any proper prefix) never decodes, nor does a file with one byte changed
 *    anywhere but in a recipient state payload (which the store rewrites in place) or in a
 *    record length (which moves what the checksum covers);
 *  - a state rewritten in place (what the store's pwrite does) decodes as written.
 */
#include "fuzz.h"
#include "queue/qfile.h"

static bool str_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* check_same - every field of two messages is equal (a: expected, b: decoded). */
static void check_same(const qmsg *a, const qmsg *b, bool offsets)
{
    FZ_CHECK(strcmp(a->id, b->id) == 0, "id '%s' vs '%s'", a->id, b->id);
    FZ_CHECK(str_same(a->channel, b->channel), "channel");
    FZ_CHECK(str_same(a->src_channel, b->src_channel), "source channel");
    FZ_CHECK(str_same(a->sender, b->sender), "sender");
    FZ_CHECK(str_same(a->envid, b->envid), "envid");
    FZ_CHECK(str_same(a->client, b->client), "client");
    FZ_CHECK(a->ret == b->ret && a->body == b->body && a->smtputf8 == b->smtputf8, "flags");
    FZ_CHECK(a->is_notification == b->is_notification && a->is_postmaster_copy == b->is_postmaster_copy,
             "notification flags");
    FZ_CHECK(a->arrival == b->arrival, "arrival");
    FZ_CHECK(a->n_rcpts == b->n_rcpts, "%zu recipients vs %zu", a->n_rcpts, b->n_rcpts);
    for (size_t i = 0; i < a->n_rcpts; i++) {
        const qrcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
        FZ_CHECK(str_same(x->addr, y->addr) && str_same(x->orig, y->orig) && str_same(x->orcpt, y->orcpt) &&
                     str_same(x->host, y->host),
                 "recipient %zu strings", i);
        FZ_CHECK(x->notify == y->notify && x->status == y->status && x->notices_sent == y->notices_sent &&
                     x->attempts == y->attempts && x->next_attempt == y->next_attempt,
                 "recipient %zu state", i);
        if (offsets) FZ_CHECK(x->state_off == y->state_off, "recipient %zu state offset", i);
    }
    FZ_CHECK(a->data_len == b->data_len, "data length %zu vs %zu", a->data_len, b->data_len);
    FZ_CHECK(a->data_len == 0 || memcmp(a->data, b->data, a->data_len) == 0, "data");
}

/* decode_ok - decode buf into m (freed by the caller); false when it does not decode. */
static bool decode_ok(const void *buf, size_t len, qmsg *m)
{
    char err[256];
    return qfile_decode(buf, len, m, err, sizeof err) == 0;
}

/* fuzz_file - the input as a file found on disk. */
static void fuzz_file(const uint8_t *p, size_t n)
{
    qmsg m;
    if (!decode_ok(p, n, &m)) return;
    strbuf enc;
    sb_init(&enc);
    qfile_encode(&m, &enc);
    qmsg again;
    FZ_CHECK(decode_ok(enc.data, enc.len, &again), "a decoded file re-encodes to a file that does not decode");
    check_same(&m, &again, true); /* encode set m's state offsets to those of the new file */
    qmsg_free(&again);
    qmsg_free(&m);
    sb_free(&enc);
}

/* build - a message from the input, every field in its valid range. */
static void build(fz_in *in, qmsg *m)
{
    memset(m, 0, sizeof *m);
    size_t idlen = 1 + fz_u8(in) % 31;
    for (size_t i = 0; i < idlen; i++) {
        char c = (char)(0x21 + fz_u8(in) % 94); /* printable, no space */
        if (c == '/' || (i == 0 && c == '.')) c = 'Q';
        m->id[i] = c;
    }
    uint8_t opt = fz_u8(in);
    m->channel = fz_str(in, 64);
    m->src_channel = (opt & 1) ? fz_str(in, 64) : NULL;
    m->sender = fz_str(in, 255);
    m->envid = (opt & 2) ? fz_str(in, 100) : NULL;
    m->client = (opt & 4) ? fz_str(in, 200) : NULL;
    m->arrival = (int64_t)fz_u64(in);
    uint8_t flags = fz_u8(in);
    m->ret = flags % 3;
    m->body = (flags / 3) % 4;
    m->smtputf8 = flags & 0x80;
    unsigned notif = (opt >> 3) % 3;
    m->is_notification = notif != 0;
    m->is_postmaster_copy = notif == 2;
    size_t nr = 1 + (opt >> 5);
    for (size_t i = 0; i < nr; i++) {
        uint8_t ro = fz_u8(in);
        char *addr = fz_str(in, 255), *orig = fz_str(in, 255), *orcpt = (ro & 1) ? fz_str(in, 255) : NULL;
        char *host = fz_str(in, 64);
        qrcpt *r = qmsg_add_rcpt(m, addr, orig, orcpt, host, (ro >> 1) & 0x0f);
        r->status = (ro >> 5) % 4;
        r->notices_sent = fz_u8(in) % 6;
        r->attempts = fz_u16(in);
        r->next_attempt = (int64_t)fz_u64(in);
        free(addr);
        free(orig);
        free(orcpt);
        free(host);
    }
    size_t dlen;
    const uint8_t *d = fz_bytes(in, in->n, &dlen);
    qmsg_set_content(m, qbody_copy(d, dlen));
}

/* in_state - whether offset off lies in a recipient state payload of m. */
static bool in_state(const qmsg *m, size_t off)
{
    for (size_t i = 0; i < m->n_rcpts; i++)
        if (off >= (size_t)m->rcpts[i].state_off && off < (size_t)m->rcpts[i].state_off + qfile_state_size()) return true;
    return false;
}

/* in_length_field - whether offset off lies in the length field of a record header of the
 * well-formed file f: changing a length moves what the checksum covers, so only a checksum that
 * happens to match the moved range (message data can be made to hold one) would let it pass. */
static bool in_length_field(const strbuf *f, size_t off)
{
    const uint8_t *b = (const uint8_t *)f->data;
    for (size_t pos = 6; pos + 5 <= f->len;) {
        size_t len = (size_t)b[pos + 1] | (size_t)b[pos + 2] << 8 | (size_t)b[pos + 3] << 16 | (size_t)b[pos + 4] << 24;
        if (off > pos && off < pos + 5) return true;
        pos += 5 + len;
    }
    return false;
}

/* fuzz_roundtrip - build, encode, decode, then damage the file in the ways a crash or a disk can. */
static void fuzz_roundtrip(fz_in *in)
{
    uint16_t cut = fz_u16(in), flip = fz_u16(in);
    uint8_t xor = fz_u8(in) | 1, newstate = fz_u8(in);
    qmsg m;
    build(in, &m);
    strbuf enc;
    sb_init(&enc);
    qfile_encode(&m, &enc);
    qmsg back;
    FZ_CHECK(decode_ok(enc.data, enc.len, &back), "decode(encode(m)) fails");
    check_same(&m, &back, true);
    qmsg_free(&back);

    size_t k = cut % enc.len; /* a torn write */
    FZ_CHECK(!decode_ok(enc.data, k, &back), "a file cut to %zu of %zu octets decodes", k, enc.len);

    size_t at = flip % enc.len;
    if (!in_state(&m, at) && !in_length_field(&enc, at)) { /* one damaged byte that the checksum covers */
        enc.data[at] ^= (char)xor;
        FZ_CHECK(!decode_ok(enc.data, enc.len, &back), "a file with byte %zu of %zu changed decodes", at, enc.len);
        enc.data[at] ^= (char)xor;
    }

    /* the store's in-place state update: pack a new state into the payload of one recipient */
    qrcpt *r = &m.rcpts[newstate % m.n_rcpts];
    r->status = newstate % 4;
    r->notices_sent = (uint8_t)(newstate / 4 % 6);
    r->attempts = (uint16_t)(r->attempts + 1);
    r->next_attempt = (int64_t)((uint64_t)r->next_attempt + newstate); /* any value, wrapping */
    qfile_state_pack(r, (uint8_t *)enc.data + r->state_off);
    FZ_CHECK(decode_ok(enc.data, enc.len, &back), "a file with a state rewritten in place does not decode");
    check_same(&m, &back, true);
    qmsg_free(&back);

    sb_free(&enc);
    qmsg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t mode = fz_u8(&in);
    if (mode & 1) fuzz_file(in.p, in.n);
    else fuzz_roundtrip(&in);
    return 0;
}
