/*
 * fuzz.h - helpers shared by the libFuzzer targets of fuzz/ (built only with -DSLUICE_FUZZ=ON).
 *
 * A target reads typed values off the front of its input with the fz_* readers (they never read
 * past the end: an exhausted input gives zeros and empty strings, so every input is valid) and
 * states the properties it checks with FZ_CHECK, which prints what failed and aborts, so libFuzzer
 * saves the input exactly as for a crash. Every target frees everything it allocates: the leak
 * checker runs after each input. One input at a time, one thread.
 */
#ifndef SLUICE_FUZZ_H
#define SLUICE_FUZZ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/* FZ_CHECK - a property of the code under test; on failure print it and abort (libFuzzer keeps the input). */
#define FZ_CHECK(cond, ...)                                                             \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz property failed at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* The unread part of a fuzz input. */
typedef struct {
    const uint8_t *p;
    size_t n;
} fz_in;

/* fz_u8 - the next byte, 0 at the end. */
static inline uint8_t fz_u8(fz_in *in)
{
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

/* fz_u16 - the next two bytes, little-endian. */
static inline uint16_t fz_u16(fz_in *in)
{
    uint16_t lo = fz_u8(in);
    return (uint16_t)(lo | (uint16_t)fz_u8(in) << 8);
}

/* fz_u64 - the next eight bytes, little-endian. */
static inline uint64_t fz_u64(fz_in *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)fz_u8(in) << (8 * i);
    return v;
}

/* fz_bytes - the next n bytes (fewer at the end); *len says how many. Points into the input. */
static inline const uint8_t *fz_bytes(fz_in *in, size_t n, size_t *len)
{
    const uint8_t *p = in->p;
    *len = n < in->n ? n : in->n;
    in->p += *len;
    in->n -= *len;
    return p;
}

/* fz_str - a string of up to max bytes, its length from the next byte; NULs become 0x01 so the
 * whole slice survives as a C string. Caller frees. */
static inline char *fz_str(fz_in *in, size_t max)
{
    size_t want = fz_u8(in), len;
    const uint8_t *p = fz_bytes(in, want < max ? want : max, &len);
    char *s = xmemdup0(p, len);
    for (size_t i = 0; i < len; i++)
        if (!s[i]) s[i] = 1;
    return s;
}

/* fz_line - the bytes up to the next '\n' (not included, consumed), NUL-terminated, with their
 * true length (NULs included) in *len; caller frees. */
static inline char *fz_line(fz_in *in, size_t *len)
{
    const uint8_t *nl = in->n ? memchr(in->p, '\n', in->n) : NULL;
    const uint8_t *p = fz_bytes(in, nl ? (size_t)(nl - in->p) : in->n, len);
    if (nl) fz_u8(in);
    return xmemdup0(p, *len);
}

/* fz_text - a NUL-terminated copy of data[0, size) (for parsers of C strings: text ends at a NUL). */
static inline char *fz_text(const uint8_t *data, size_t size)
{
    return xmemdup0(data, size);
}

/* fz_rng - a small deterministic generator (xorshift32) for choices derived from one input byte. */
static inline uint32_t fz_rng(uint32_t *state)
{
    uint32_t x = *state ? *state : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* fz_bare_eol - the offset of the first CR or LF of p[0, n) that is not part of a CRLF pair, or n. */
static inline size_t fz_bare_eol(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n')) return i;
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) return i;
    }
    return n;
}

/* fz_no_bare_eol - whether every CR and LF of p[0, n) is part of a CRLF pair. */
static inline bool fz_no_bare_eol(const char *p, size_t n)
{
    return fz_bare_eol(p, n) == n;
}

/* fz_show - p[0, n) around offset at, escaped, for a failure message (static buffer: one use per message). */
static inline const char *fz_show(const char *p, size_t n, size_t at)
{
    static char buf[512];
    size_t from = at > 40 ? at - 40 : 0, to = n - at > 40 ? at + 40 : n, o = 0;
    for (size_t i = from; i < to && o + 5 < sizeof buf; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 32 && c < 127 && c != '\\') buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

/* fz_max_line - the longest line of p[0, n), CRLF not counted. */
static inline size_t fz_max_line(const char *p, size_t n)
{
    size_t best = 0, cur = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            if (cur && p[i - 1] == '\r') cur--;
            if (cur > best) best = cur;
            cur = 0;
        } else {
            cur++;
        }
    }
    return cur > best ? cur : best;
}

#endif
