/*
 * dns_answer.c - a bounds-checked parser of raw DNS replies (RFC 1035 4.1) for the DNSSEC-aware
 * lookups of dnssec.c (see dnssec.h). Pure: bytes in, offsets and names out; any thread.
 *
 * Every read is checked against the reply's length; compression pointers may only point
 * backwards (RFC 1035 4.1.4 says "a prior occurrence") and a name may not exceed 255 octets, so a
 * hostile reply can neither read out of bounds nor loop.
 */
#include "dns/dnssec.h"

#include <stdlib.h>
#include <string.h>

#define HDR_LEN 12
#define NAME_MAX_LEN 255

/* get16 - the big-endian 16-bit value at p. */
static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* name_skip - the offset after the name at off (a pointer ends it), or 0 when malformed. */
static size_t name_skip(const unsigned char *buf, size_t len, size_t off)
{
    size_t total = 0;
    while (off < len) {
        unsigned c = buf[off];
        if ((c & 0xc0) == 0xc0) return off + 2 <= len ? off + 2 : 0;
        if (c & 0xc0) return 0; /* 0x40 and 0x80: extended label types, not used */
        if (c == 0) return off + 1;
        total += c + 1;
        if (total > NAME_MAX_LEN || off + 1 + c > len) return 0;
        off += 1 + c;
    }
    return 0;
}

/* label_char_ok - a byte we accept inside a label of a host name (printable, not a dot or a backslash). */
static bool label_char_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '.' && c != '\\';
}

bool dns_name_expand(const unsigned char *buf, size_t len, size_t off, char *out, size_t outlen, size_t *next)
{
    size_t o = 0, total = 0, end = 0;
    bool jumped = false;
    if (!outlen) return false;
    for (;;) {
        if (off >= len) return false;
        unsigned c = buf[off];
        if ((c & 0xc0) == 0xc0) {
            if (off + 2 > len) return false;
            size_t target = (size_t)(c & 0x3f) << 8 | buf[off + 1];
            if (!jumped) end = off + 2;
            if (target >= off) return false; /* only backwards: no loops */
            jumped = true;
            off = target;
            continue;
        }
        if (c & 0xc0) return false;
        if (c == 0) {
            if (!jumped) end = off + 1;
            break;
        }
        total += c + 1;
        if (total > NAME_MAX_LEN || off + 1 + c > len) return false;
        if (o + (o ? 1 : 0) + c + 1 > outlen) return false; /* a dot, the label, the NUL */
        if (o) out[o++] = '.';
        for (unsigned i = 0; i < c; i++) {
            unsigned char ch = buf[off + 1 + i];
            if (!label_char_ok(ch)) return false;
            out[o++] = (char)ch;
        }
        off += 1 + c;
    }
    out[o] = '\0';
    if (next) *next = end;
    return true;
}

bool dns_answer_parse(const unsigned char *buf, size_t len, uint16_t qtype, dns_answer *a)
{
    memset(a, 0, sizeof *a);
    if (!buf || len < HDR_LEN) return false;
    if (!(buf[2] & 0x80)) return false; /* QR: not a response */
    a->tc = (buf[2] & 0x02) != 0;
    a->ad = (buf[3] & 0x20) != 0;
    a->rcode = buf[3] & 0x0f;
    unsigned qd = get16(buf + 4), an = get16(buf + 6);
    size_t off = HDR_LEN;
    for (unsigned i = 0; i < qd; i++) {
        off = name_skip(buf, len, off);
        if (!off || off + 4 > len) return false;
        off += 4;
    }
    for (unsigned i = 0; i < an; i++) {
        off = name_skip(buf, len, off);
        if (!off || off + 10 > len) goto bad;
        unsigned type = get16(buf + off), class = get16(buf + off + 2), rdlen = get16(buf + off + 8);
        off += 10;
        if (off + rdlen > len) goto bad;
        if (type == qtype && class == 1 && a->n < DNS_ANSWER_MAX_RR) {
            a->rr[a->n].off = off;
            a->rr[a->n].len = rdlen;
            a->n++;
        }
        off += rdlen;
    }
    return true;
bad: /* a refused reply has no records */
    a->n = 0;
    return false;
}

bool dns_mx_from_answer(const unsigned char *buf, size_t len, const dns_answer *a, dns_mx **mx, size_t *n)
{
    *mx = xcalloc(a->n ? a->n : 1, sizeof **mx);
    *n = 0;
    for (size_t i = 0; i < a->n; i++) {
        const dns_rr_ref *r = &a->rr[i];
        char name[NAME_MAX_LEN + 2];
        size_t next = 0;
        if (r->len < 3 || !dns_name_expand(buf, len, r->off + 2, name, sizeof name, &next) || next != r->off + r->len) {
            for (size_t k = 0; k < *n; k++) free((*mx)[k].host);
            free(*mx);
            *mx = NULL;
            *n = 0;
            return false;
        }
        (*mx)[*n].pref = get16(buf + r->off);
        (*mx)[*n].host = xstrdup(name);
        (*n)++;
    }
    return true;
}
