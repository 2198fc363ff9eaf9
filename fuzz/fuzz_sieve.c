/*
 * fuzz_sieve.c - the Sieve parser and interpreter (sieve/sieve.h) on untrusted scripts and
 * messages: users write their own filters (mailSieveRuleSource), senders write the messages.
 *
 * Input: the script, then optionally a NUL byte and the message: 1 byte of flags (bit 0: null
 * envelope sender), 1 byte spamtest, 1 byte spamtest percent, 1 byte virustest, 2 bytes of
 * size in KiB, then the header block. Without a NUL the script runs on a fixed message. The
 * script runs once on the message and once more on the header it produced (the way the caller
 * chains a system filter, a verdict action and a user filter), and the two results are merged.
 * A script starting with "data:" also goes through sieve_parse_url.
 *
 * Properties: a parse error says "line N: ..."; a run returns -1 exactly when it reports an
 * error, and then keeps and has no other action; keep and reject exclude each other; discard
 * comes alone; folders and addresses are distinct and within the limits; an edited header has
 * a NUL at its stated length and no empty line (nothing can end the header block early).
 */
#include "fuzz.h"
#include "sieve/sieve.h"

static const char fixed_header[] =
    "Received: from a.example by b.example; Sat, 5 Dec 2026 10:00:00 +0000\r\n"
    "From: \"Alice\" <alice@example.org>\r\n"
    "To: bob@example.com, carol@example.net\r\n"
    "Subject: Hello\r\n world\r\n"
    "X-Spam-Flag: YES\r\n";

/* check_result - the properties every result has, whatever the script. */
static void check_result(const sieve_result *r, int rc)
{
    FZ_CHECK((rc == -1) == (r->error != NULL), "rc %d, error %s", rc, r->error ? r->error : "(none)");
    if (r->error) {
        FZ_CHECK(r->keep && !r->fileinto.n && !r->redirect.n && !r->reject && !r->vacation && !r->header,
                 "a failed run with actions: %s", r->error);
        FZ_CHECK(strncmp(r->error, "line ", 5) == 0, "error '%s'", r->error);
    }
    FZ_CHECK(!(r->keep && r->reject), "keep and reject");
    FZ_CHECK(!r->discard || (!r->keep && !r->fileinto.n && !r->redirect.n && !r->reject), "discard with others");
    FZ_CHECK(r->redirect.n <= SIEVE_MAX_REDIRECTS, "%zu redirects", r->redirect.n);
    for (size_t i = 0; i < r->fileinto.n; i++)
        for (size_t k = i + 1; k < r->fileinto.n; k++)
            FZ_CHECK(strcmp(r->fileinto.v[i], r->fileinto.v[k]) != 0, "folder %s twice", r->fileinto.v[i]);
    for (size_t i = 0; i < r->redirect.n; i++)
        for (size_t k = i + 1; k < r->redirect.n; k++)
            FZ_CHECK(!str_ieq(r->redirect.v[i], r->redirect.v[k]), "address %s twice", r->redirect.v[i]);
    if (r->vacation)
        FZ_CHECK(r->vacation_days >= 1 && r->vacation_days <= SIEVE_VACATION_MAX_DAYS && r->vacation_reason,
                 "vacation days %u", r->vacation_days);
    if (r->header) {
        FZ_CHECK(r->header[r->header_len] == '\0', "edited header not terminated at its length");
        const char *empty = memmem(r->header, r->header_len, "\r\n\r\n", 4);
        FZ_CHECK(!empty && strncmp(r->header, "\r\n", 2) != 0, "empty line in the edited header: %s",
                 fz_show(r->header, r->header_len, empty ? (size_t)(empty - r->header) : 0));
        FZ_CHECK(!r->header_len || (r->header_len >= 2 && memcmp(r->header + r->header_len - 2, "\r\n", 2) == 0),
                 "edited header does not end in CRLF");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul ? (size_t)(nul - data) : size;
    sieve_msg m = {
        .header = fixed_header, .header_len = sizeof fixed_header - 1, .size = 3000,
        .env_from = "alice@example.org", .env_to = "bob@example.com",
        .spamtest = 6, .spamtest_percent = 55, .virustest = 1,
    };
    char *hdr = NULL;
    if (nul) {
        fz_in in = {nul + 1, size - slen - 1};
        uint8_t flags = fz_u8(&in);
        m.env_from = flags & 1 ? "" : m.env_from;
        m.spamtest = fz_u8(&in) % 12;
        m.spamtest_percent = (int)(fz_u8(&in) % 102) - 1;
        m.virustest = fz_u8(&in) % 7;
        m.size = (uint64_t)fz_u16(&in) * 1024;
        size_t hl;
        const uint8_t *h = fz_bytes(&in, in.n, &hl);
        hdr = xmemdup0(h, hl);
        m.header = hdr;
        m.header_len = hl;
    }

    char err[256];
    sieve_script *s = sieve_parse((const char *)data, slen, err, sizeof err);
    if (!s) FZ_CHECK(strncmp(err, "line ", 5) == 0 && err[5] >= '0' && err[5] <= '9', "parse error '%s'", err);
    if (slen >= 5 && memcmp(data, "data:", 5) == 0) {
        char *text = xmemdup0(data, slen);
        sieve_free(sieve_parse_url(text, err, sizeof err));
        free(text);
    }
    if (s) {
        sieve_result r1, r2;
        int rc = sieve_run(s, &m, &r1);
        check_result(&r1, rc);
        sieve_msg m2 = m;
        if (r1.header) {
            m2.header = r1.header;
            m2.header_len = r1.header_len;
        }
        rc = sieve_run(s, &m2, &r2);
        check_result(&r2, rc);
        sieve_result_merge(&r1, &r2);
        FZ_CHECK(!r2.header && !r2.fileinto.n && !r2.error, "merge left something in its source");
        FZ_CHECK(!(r1.keep && r1.reject), "merged keep and reject");
        FZ_CHECK(!r1.discard || (!r1.keep && !r1.fileinto.n && !r1.redirect.n && !r1.reject),
                 "merged discard with others");
        sieve_result_free(&r1);
        sieve_result_free(&r2);
        sieve_free(s);
    }
    free(hdr);
    return 0;
}
