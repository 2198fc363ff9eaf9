/*
 * fuzz_hdraddr.c - header address completion (rewrite/hdraddr.h hdraddr_complete, hdraddr_needed):
 * a received message's header fields and MIME structure are untrusted.
 *
 * Input: byte 0 (bit 0: inner), then the message (header, empty line, body).
 * Properties: the output is the input with "@d.example" inserted exactly as many times as
 * reported and nothing else changed; hdraddr_needed never says no when something was completed;
 * completing the output again changes nothing (every address now has a domain).
 */
#include "fuzz.h"
#include "rewrite/hdraddr.h"

#define DOM "d.example"

/* only_insertions - whether out is in with "@" DOM inserted n times (and nothing else). */
static bool only_insertions(const char *in, size_t len, const char *out, size_t olen, size_t n)
{
    const size_t il = sizeof DOM; /* "@" + DOM */
    size_t i = 0, o = 0, seen = 0;
    while (i < len || o < olen) {
        if (i < len && o < olen && in[i] == out[o]) {
            i++, o++;
            continue;
        }
        if (olen - o < il || out[o] != '@' || memcmp(out + o + 1, DOM, il - 1) != 0) return false;
        o += il;
        seen++;
    }
    return seen == n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    bool inner = data[0] & 1;
    const char *msg = (const char *)data + 1;
    size_t len = size - 1;
    strbuf out;
    sb_init(&out);
    size_t n = hdraddr_complete(msg, len, DOM, inner, &out);
    FZ_CHECK(n == 0 ? out.len == 0 : out.len == len + n * (sizeof DOM), "n=%zu len=%zu out=%zu", n, len, out.len);
    if (n) {
        FZ_CHECK(hdraddr_needed(msg, len, inner), "needed said no, %zu completed", n);
        FZ_CHECK(only_insertions(msg, len, out.data, out.len, n), "more than insertions changed");
        strbuf again;
        sb_init(&again);
        size_t n2 = hdraddr_complete(out.data, out.len, DOM, inner, &again);
        FZ_CHECK(n2 == 0, "a second pass completed %zu more", n2);
        sb_free(&again);
    }
    sb_free(&out);
    return 0;
}
