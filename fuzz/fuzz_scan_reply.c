/*
 * fuzz_scan_reply.c - what a spamd or clamd sends back (scan/spamd.h spamd_parse, scan/clamd.h
 * clamd_parse): a scanner may be compromised or confused, and its answer is untrusted.
 *
 * Input: the first byte picks the parser (spamd CHECK, SYMBOLS, HEADERS, or clamd), the rest is
 * the answer; it is fed in two pieces (the cut from the second byte), then again whole at EOF.
 *
 * Properties: a complete answer is SCAN_DONE or SCAN_FAILED; SCAN_FAILED and garbage always say
 * why; a hit has its verdict; a null verdict is no hit; headers reported by HEADERS are X-Spam-*
 * fields without line breaks; at EOF the parser never asks for more.
 */
#include "fuzz.h"
#include "scan/clamd.h"
#include "scan/spamd.h"

/* parse - one call of the chosen parser. */
static int parse(unsigned kind, const char *buf, size_t len, bool eof, scan_result *r)
{
    if (kind == 3) return clamd_parse(buf, len, eof, r);
    return spamd_parse((enum spamd_command)kind, buf, len, eof, r);
}

/* check - the properties of one finished parse. */
static void check(int rc, unsigned kind, const scan_result *r)
{
    if (rc == 0) return;
    FZ_CHECK(r->status == SCAN_DONE || r->status == SCAN_FAILED, "status %d", (int)r->status);
    if (rc < 0 || r->status == SCAN_FAILED) FZ_CHECK(r->detail && *r->detail, "a failure without a reason");
    if (rc > 0 && r->status == SCAN_DONE) {
        FZ_CHECK(!r->hit || (r->verdict && *r->verdict), "a hit without a verdict");
        FZ_CHECK(r->hit || !r->verdict, "a verdict without a hit");
    }
    for (size_t i = 0; kind == SPAMD_HEADERS && i < r->headers.n; i++) {
        FZ_CHECK(strncasecmp(r->headers.v[i], "X-Spam-", 7) == 0, "header '%s'", r->headers.v[i]);
        FZ_CHECK(!strpbrk(r->headers.v[i], "\r\n"), "a line break in a header");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    unsigned kind = data[0] % 4;
    const char *buf = (const char *)data + 2;
    size_t len = size - 2, cut = data[1] < len ? data[1] : len;
    scan_result r = {0};
    int rc = parse(kind, buf, cut, false, &r);
    check(rc, kind, &r);
    scan_result_free(&r);
    memset(&r, 0, sizeof r);
    rc = parse(kind, buf, len, true, &r);
    FZ_CHECK(rc != 0, "at EOF the parser asked for more");
    check(rc, kind, &r);
    scan_result_free(&r);
    return 0;
}
