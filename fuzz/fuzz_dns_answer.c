/*
 * fuzz_dns_answer.c - the parser of raw DNS replies behind the DNSSEC-aware lookups
 * (dns/dnssec.h: dns_answer_parse, dns_mx_from_answer, dns_name_expand): a reply comes from the
 * network, through a resolver we do not control.
 *
 * Input: byte 0 chooses the question type (even: TLSA, odd: MX); the rest is the reply.
 * Properties: every collected record lies inside the reply; the flags are those of the header;
 * MX names are at most 253 characters of printable bytes without a backslash and with no empty
 * label; a name expanded anywhere in the reply ends inside it. A refusal leaves nothing allocated.
 */
#include "dns/dnssec.h"
#include "fuzz.h"

/* check_name - the properties of an expanded host name. */
static void check_name(const char *s)
{
    size_t n = strlen(s);
    FZ_CHECK(n <= 254, "name of %zu characters", n);
    FZ_CHECK(n == 0 || (s[0] != '.' && s[n - 1] != '.' && !strstr(s, "..")), "empty label in \"%s\"", s);
    for (const char *p = s; *p; p++)
        FZ_CHECK(*p > 0x20 && *p < 0x7f && *p != '\\', "byte 0x%02x in a name", (unsigned char)*p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint16_t qtype = (data[0] & 1) ? DNS_TYPE_MX : DNS_TYPE_TLSA;
    const unsigned char *buf = data + 1;
    size_t len = size - 1;
    dns_answer a;
    if (dns_answer_parse(buf, len, qtype, &a)) {
        FZ_CHECK(len >= 12, "a %zu-byte reply accepted", len);
        FZ_CHECK(a.ad == ((buf[3] & 0x20) != 0) && a.rcode == (buf[3] & 0x0fu), "flags differ from the header");
        FZ_CHECK(a.n <= DNS_ANSWER_MAX_RR, "%zu records", a.n);
        for (size_t i = 0; i < a.n; i++)
            FZ_CHECK(a.rr[i].off >= 12 && a.rr[i].off + a.rr[i].len <= len, "record %zu outside the reply", i);
        if (qtype == DNS_TYPE_MX) {
            dns_mx *mx = NULL;
            size_t n = 0;
            if (dns_mx_from_answer(buf, len, &a, &mx, &n)) {
                FZ_CHECK(n == a.n, "%zu of %zu MX records", n, a.n);
                for (size_t i = 0; i < n; i++) {
                    check_name(mx[i].host);
                    free(mx[i].host);
                }
                free(mx);
            } else {
                FZ_CHECK(!mx && !n, "a refused MX answer left records");
            }
        }
    } else {
        FZ_CHECK(a.n == 0, "a refused reply with records");
    }
    for (size_t off = 0; off < len && off < 64; off++) {
        char out[256];
        size_t next = 0;
        if (dns_name_expand(buf, len, off, out, sizeof out, &next)) {
            FZ_CHECK(next > off && next <= len, "name at %zu ends at %zu of %zu", off, next, len);
            check_name(out);
        }
    }
    return 0;
}
