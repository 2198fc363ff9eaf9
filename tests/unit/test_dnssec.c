/*
 * test_dnssec.c - unit tests for src/dns/dns_answer.c, the parser of raw DNS replies behind the
 * DNSSEC-aware lookups (dns/dnssec.h): header flags (AD, TC, rcode), the question skipped, answer
 * records of the asked type collected past a CNAME, MX names with compression pointers, a null
 * MX, and hostile replies (short, running off the end, forward and looping pointers, over-long
 * names, a query instead of a response) refused without reading out of bounds; and the AD bit
 * believed only from resolvers that are all on loopback (dns_ad_trusted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "dns/dnssec.h"

/* A reply being built. */
typedef struct {
    unsigned char b[1024];
    size_t n;
} msg;

/* put - append bytes. */
static void put(msg *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

/* put16 - append a big-endian 16-bit value. */
static void put16(msg *m, unsigned v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    put(m, b, 2);
}

/* put_name - append "a.b.c" as labels and a root byte. */
static void put_name(msg *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        unsigned char c = (unsigned char)l;
        put(m, &c, 1);
        put(m, name, l);
        name += l + (dot ? 1 : 0);
    }
    unsigned char z = 0;
    put(m, &z, 1);
}

/* header - a response header: flags2 is the second flag byte (RA, AD, rcode). */
static void header(msg *m, unsigned flags2, unsigned qd, unsigned an)
{
    m->n = 0;
    put16(m, 0x1234);
    unsigned char f[2] = {0x81, (unsigned char)flags2}; /* QR, RD */
    put(m, f, 2);
    put16(m, qd);
    put16(m, an);
    put16(m, 0);
    put16(m, 0);
}

/* rr_head - a record's owner (a pointer to the question's name at 12), type, class IN, TTL, rdlen. */
static void rr_head(msg *m, unsigned type, unsigned rdlen)
{
    put16(m, 0xc00c);
    put16(m, type);
    put16(m, 1);
    put16(m, 0);
    put16(m, 300);
    put16(m, rdlen);
}

static void test_tlsa_secure_answer(void **state)
{
    (void)state;
    msg m;
    header(&m, 0x80 | 0x20, 1, 2); /* RA, AD, NOERROR */
    put_name(&m, "_25._tcp.mx.example.test");
    put16(&m, DNS_TYPE_TLSA);
    put16(&m, 1);
    unsigned char rd1[35] = {3, 1, 1};
    memset(rd1 + 3, 0xab, 32);
    rr_head(&m, DNS_TYPE_TLSA, sizeof rd1);
    put(&m, rd1, sizeof rd1);
    unsigned char rd2[5] = {2, 0, 0, 0x30, 0x82};
    rr_head(&m, DNS_TYPE_TLSA, sizeof rd2);
    put(&m, rd2, sizeof rd2);
    dns_answer a;
    assert_true(dns_answer_parse(m.b, m.n, DNS_TYPE_TLSA, &a));
    assert_true(a.ad);
    assert_false(a.tc);
    assert_int_equal(a.rcode, 0);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.rr[0].len, 35);
    assert_memory_equal(m.b + a.rr[0].off, rd1, 35);
    assert_memory_equal(m.b + a.rr[1].off, rd2, 5);
    /* every shorter reply is refused, none read past its end */
    for (size_t len = 0; len < m.n; len++) {
        unsigned char *copy = malloc(len ? len : 1);
        memcpy(copy, m.b, len);
        assert_false(dns_answer_parse(copy, len, DNS_TYPE_TLSA, &a));
        free(copy);
    }
}

static void test_flags_and_rcodes(void **state)
{
    (void)state;
    msg m;
    dns_answer a;
    header(&m, 0x83, 1, 0); /* RA, NXDOMAIN, no AD */
    put_name(&m, "_25._tcp.mx.example.test");
    put16(&m, DNS_TYPE_TLSA);
    put16(&m, 1);
    assert_true(dns_answer_parse(m.b, m.n, DNS_TYPE_TLSA, &a));
    assert_int_equal(a.rcode, 3);
    assert_false(a.ad);
    assert_int_equal(a.n, 0);
    m.b[2] |= 0x02; /* TC */
    assert_true(dns_answer_parse(m.b, m.n, DNS_TYPE_TLSA, &a));
    assert_true(a.tc);
    m.b[2] &= (unsigned char)~0x80; /* a query, not a response */
    assert_false(dns_answer_parse(m.b, m.n, DNS_TYPE_TLSA, &a));
    assert_false(dns_answer_parse(NULL, 0, DNS_TYPE_TLSA, &a));
}

static void test_cname_then_records_other_types_ignored(void **state)
{
    (void)state;
    msg m;
    header(&m, 0xa0, 1, 3);
    put_name(&m, "_25._tcp.mx.example.test");
    put16(&m, DNS_TYPE_TLSA);
    put16(&m, 1);
    msg target = {0};
    put_name(&target, "tlsa.example.net");
    rr_head(&m, DNS_TYPE_CNAME, (unsigned)target.n);
    put(&m, target.b, target.n);
    unsigned char rd[35] = {3, 1, 1};
    rr_head(&m, DNS_TYPE_TLSA, sizeof rd);
    put(&m, rd, sizeof rd);
    rr_head(&m, 99, 1); /* another type */
    put(&m, "x", 1);
    dns_answer a;
    assert_true(dns_answer_parse(m.b, m.n, DNS_TYPE_TLSA, &a));
    assert_int_equal(a.n, 1);
    assert_int_equal(a.rr[0].len, 35);
    m.b[7] = 4; /* one more record announced than present */
    assert_false(dns_answer_parse(m.b, m.n, DNS_TYPE_TLSA, &a));
}

/* mx_reply - an MX answer for example.test: pref 10 mx1.example.test (compressed), 20 a literal
 * name, 0 "." (null MX). */
static void mx_reply(msg *m)
{
    header(m, 0xa0, 1, 3);
    put_name(m, "example.test"); /* at 12 */
    put16(m, DNS_TYPE_MX);
    put16(m, 1);
    rr_head(m, DNS_TYPE_MX, 2 + 4 + 2);
    put16(m, 10);
    unsigned char l[4] = {3, 'm', 'x', '1'};
    put(m, l, 4);
    put16(m, 0xc00c); /* "example.test" */
    msg n2 = {0};
    put_name(&n2, "mail.other.test");
    rr_head(m, DNS_TYPE_MX, 2 + (unsigned)n2.n);
    put16(m, 20);
    put(m, n2.b, n2.n);
    rr_head(m, DNS_TYPE_MX, 3);
    put16(m, 0);
    unsigned char root = 0;
    put(m, &root, 1);
}

static void test_mx_names(void **state)
{
    (void)state;
    msg m;
    mx_reply(&m);
    dns_answer a;
    assert_true(dns_answer_parse(m.b, m.n, DNS_TYPE_MX, &a));
    assert_int_equal(a.n, 3);
    dns_mx *mx = NULL;
    size_t n = 0;
    assert_true(dns_mx_from_answer(m.b, m.n, &a, &mx, &n));
    assert_int_equal(n, 3);
    assert_int_equal(mx[0].pref, 10);
    assert_string_equal(mx[0].host, "mx1.example.test");
    assert_int_equal(mx[1].pref, 20);
    assert_string_equal(mx[1].host, "mail.other.test");
    assert_int_equal(mx[2].pref, 0);
    assert_string_equal(mx[2].host, "");
    for (size_t i = 0; i < n; i++) free(mx[i].host);
    free(mx);
}

static void test_mx_malformed(void **state)
{
    (void)state;
    msg m;
    dns_answer a;
    dns_mx *mx = NULL;
    size_t n = 0;
    mx_reply(&m);
    assert_true(dns_answer_parse(m.b, m.n, DNS_TYPE_MX, &a));
    /* the first MX's pointer aimed forwards (at itself): refused, nothing leaked */
    size_t ptr = a.rr[0].off + 2 + 4;
    m.b[ptr + 1] = (unsigned char)ptr;
    m.b[ptr] = (unsigned char)(0xc0 | (ptr >> 8));
    assert_false(dns_mx_from_answer(m.b, m.n, &a, &mx, &n));
    assert_null(mx);
    assert_int_equal(n, 0);
    /* a name longer than its RDATA */
    mx_reply(&m);
    assert_true(dns_answer_parse(m.b, m.n, DNS_TYPE_MX, &a));
    a.rr[1].len -= 3;
    assert_false(dns_mx_from_answer(m.b, m.n, &a, &mx, &n));
    /* a label with a dot inside */
    mx_reply(&m);
    assert_true(dns_answer_parse(m.b, m.n, DNS_TYPE_MX, &a));
    m.b[a.rr[0].off + 3] = '.';
    assert_false(dns_mx_from_answer(m.b, m.n, &a, &mx, &n));
}

static void test_name_expand_limits(void **state)
{
    (void)state;
    char out[300];
    size_t next = 0;
    /* 5 labels of 63 octets: 320 > 255 */
    unsigned char big[400];
    size_t o = 0;
    for (int i = 0; i < 5; i++) {
        big[o++] = 63;
        memset(big + o, 'a', 63);
        o += 63;
    }
    big[o++] = 0;
    assert_false(dns_name_expand(big, o, 0, out, sizeof out, &next));
    /* a pointer loop between two pointers */
    unsigned char loop[4] = {0xc0, 0x02, 0xc0, 0x00};
    assert_false(dns_name_expand(loop, sizeof loop, 2, out, sizeof out, &next));
    assert_false(dns_name_expand(loop, sizeof loop, 0, out, sizeof out, &next));
    /* a pointer cut in half, a label past the end, an extended label type */
    unsigned char cut[1] = {0xc0};
    assert_false(dns_name_expand(cut, 1, 0, out, sizeof out, &next));
    unsigned char past[3] = {5, 'a', 'b'};
    assert_false(dns_name_expand(past, 3, 0, out, sizeof out, &next));
    unsigned char ext[3] = {0x41, 0, 0};
    assert_false(dns_name_expand(ext, 3, 0, out, sizeof out, &next));
    /* the root, and a small output buffer */
    unsigned char root[1] = {0};
    assert_true(dns_name_expand(root, 1, 0, out, sizeof out, &next));
    assert_string_equal(out, "");
    assert_int_equal(next, 1);
    unsigned char name[6] = {4, 'a', 'b', 'c', 'd', 0};
    assert_false(dns_name_expand(name, 6, 0, out, 4, &next));
    assert_true(dns_name_expand(name, 6, 0, out, 5, &next));
    assert_string_equal(out, "abcd");
}

/* ad_trusted_with - dns_ad_trusted of a resolver given these servers (comma-separated; "" for resolv.conf). */
static bool ad_trusted_with(const char *csv)
{
    struct event_base *base = event_base_new();
    assert_non_null(base);
    strvec sv = {0};
    char *copy = xstrdup(csv), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) sv_push(&sv, t);
    char err[128];
    dns_ctx *d = dns_new(base, &sv, err, sizeof err);
    assert_non_null(d);
    bool trusted = dns_ad_trusted(d);
    dns_free(d);
    sv_free(&sv);
    free(copy);
    event_base_free(base);
    return trusted;
}

static void test_ad_trusted_only_from_loopback(void **state)
{
    (void)state;
    assert_true(ad_trusted_with("127.0.0.1:53"));
    assert_true(ad_trusted_with("127.0.0.53:5354,[::1]:53"));
    assert_false(ad_trusted_with("192.0.2.53:53"));
    assert_false(ad_trusted_with("127.0.0.1:53,192.0.2.53:53"));
    assert_false(ad_trusted_with("[2001:db8::53]:53"));
    assert_false(ad_trusted_with(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tlsa_secure_answer),
        cmocka_unit_test(test_flags_and_rcodes),
        cmocka_unit_test(test_cname_then_records_other_types_ignored),
        cmocka_unit_test(test_mx_names),
        cmocka_unit_test(test_mx_malformed),
        cmocka_unit_test(test_name_expand_limits),
        cmocka_unit_test(test_ad_trusted_only_from_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
