/*
 * fuzz_dsn.c - the DSN builder (dsn/dsn.h) reading what it is given from outside: the returned
 * message's header section (found and cut by dsn.c), remote diagnostics and MTA names from a
 * peer's reply, the envelope (sender, ENVID, ORCPT, recipients) from a client, and the
 * operator's templates.
 *
 * Input: byte 0 = options (RET, BODY, number of reports, template use), then length-prefixed
 * strings (sender, envid, client, template, then per report: address, original address, ORCPT,
 * action, status, diagnostic, remote MTA), then the message itself.
 *
 * Properties: the report's own header section and its first two parts (our text) have CRLF
 * line ends only and no line over 998 octets, the top header section has only "Name: value"
 * fields and folds, and no peer-supplied text starts a header field of its own; the boundary
 * announced in Content-Type occurs exactly as the four delimiters and nowhere else.
 */
#include <strings.h>

#include "dsn/dsn.h"
#include "fuzz.h"
#include "smtp/parse.h"

#define MAX_REPORTS 4

static const char *const actions[] = {"failed", "delayed", "delivered", "relayed", "expanded"};

/* check_our_text - CRLF lines of at most 998 octets. */
static void check_our_text(const char *what, const char *p, size_t n)
{
    FZ_CHECK(fz_no_bare_eol(p, n), "%s: bare CR or LF", what);
    FZ_CHECK(fz_max_line(p, n) <= 998, "%s: line of %zu octets", what, fz_max_line(p, n));
    FZ_CHECK(memchr(p, '\0', n) == NULL, "%s: NUL", what);
}

/* check_fields - a header section: every line is "Name: value" or a fold. */
static void check_fields(const char *what, const char *p, size_t n, const char *const allowed[])
{
    for (size_t i = 0; i < n;) {
        const char *eol = memchr(p + i, '\n', n - i);
        size_t len = eol ? (size_t)(eol - (p + i)) + 1 : n - i;
        const char *l = p + i;
        if (l[0] != ' ' && l[0] != '\t') {
            const char *colon = memchr(l, ':', len);
            FZ_CHECK(colon != NULL, "%s: line without a field name: %.*s", what, (int)len, l);
            bool known = false;
            for (size_t k = 0; allowed[k] && !known; k++)
                known = (size_t)(colon - l) == strlen(allowed[k]) && strncasecmp(l, allowed[k], (size_t)(colon - l)) == 0;
            FZ_CHECK(known, "%s: unexpected field: %.*s", what, (int)len, l);
        }
        i += len;
    }
}

/* check_report - the whole report: top header, boundary, parts 1 and 2. */
static void check_report(const char *r, size_t n)
{
    const char *hdr_end = memmem(r, n, "\r\n\r\n", 4);
    FZ_CHECK(hdr_end != NULL, "no header section");
    size_t hlen = (size_t)(hdr_end - r) + 2;
    check_our_text("top header", r, hlen);
    static const char *const top[] = {"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted",
                                      "MIME-Version", "Content-Type", NULL};
    check_fields("top header", r, hlen, top);

    /* the exact Content-Type line dsn.c writes (peer text cannot start a line, so this is it) */
    static const char ct[] = "\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"";
    const char *b = memmem(r, hlen, ct, sizeof ct - 1);
    FZ_CHECK(b != NULL, "no multipart/report Content-Type");
    b += sizeof ct - 1;
    const char *bend = memchr(b, '"', hlen - (size_t)(b - r));
    FZ_CHECK(bend != NULL, "unterminated boundary");
    char *delim = xasprintf("\r\n--%.*s", (int)(bend - b), b);
    size_t dl = strlen(delim), count = 0;
    const char *parts[5] = {0};
    for (const char *p = r; (p = memmem(p, n - (size_t)(p - r), delim, dl)) != NULL; p += dl) {
        FZ_CHECK(count < 4, "boundary occurs more than four times");
        parts[count++] = p;
    }
    FZ_CHECK(count == 4, "boundary occurs %zu times", count);
    FZ_CHECK(memcmp(parts[3] + dl, "--\r\n", 4) == 0 && parts[3] + dl + 4 == r + n, "bad closing delimiter");
    for (int i = 0; i < 2; i++) { /* the notification and the delivery-status parts are ours */
        const char *start = parts[i] + dl + 2;
        check_our_text(i ? "status part" : "human part", start, (size_t)(parts[i + 1] - start) + 2);
    }
    static const char *const status_fields[] = {"Content-Type", "Content-Description", "Reporting-MTA",
                                                "Original-Envelope-Id", "Arrival-Date", "Original-Recipient",
                                                "Final-Recipient", "Action", "Status", "Remote-MTA",
                                                "Diagnostic-Code", NULL};
    const char *s = parts[1] + dl + 2;
    size_t slen = (size_t)(parts[2] - s) + 2;
    /* blank lines separate the groups of the status part */
    for (size_t i = 0; i < slen;) {
        const char *eol = memchr(s + i, '\n', slen - i);
        size_t len = (size_t)(eol - (s + i)) + 1;
        if (len > 2) check_fields("status part", s + i, len, status_fields);
        i += len;
    }
    free(delim);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t opts = fz_u8(&in);
    qmsg m;
    memset(&m, 0, sizeof m);
    snprintf(m.id, sizeof m.id, "4FUZZ%02X", opts);
    m.channel = xstrdup("tcp_local");
    m.sender = fz_str(&in, 300);
    char *envid = fz_str(&in, 120);
    if (*envid) m.envid = envid;
    else free(envid);
    m.client = fz_str(&in, 200);
    m.ret = opts & 3;
    m.body = (opts >> 2) & 3;
    m.arrival = 1700000000 + (int64_t)fz_u16(&in);
    char *tmpl = fz_str(&in, 255);
    char *templates[3] = {NULL, NULL, NULL};
    if (opts & 0x80) templates[0] = templates[1] = templates[2] = tmpl;

    size_t nrep = 1 + ((opts >> 4) & 7) % MAX_REPORTS;
    dsn_report reports[MAX_REPORTS];
    char *owned[MAX_REPORTS][4];
    for (size_t i = 0; i < nrep; i++) {
        char *addr = fz_str(&in, 255), *orig = fz_str(&in, 255), *orcpt = fz_str(&in, 255);
        qmsg_add_rcpt(&m, addr, *orig ? orig : NULL, *orcpt ? orcpt : NULL, "", DSN_NOTIFY_FAILURE);
        free(addr);
        free(orig);
        free(orcpt);
    }
    for (size_t i = 0; i < nrep; i++) {
        uint8_t a = fz_u8(&in);
        owned[i][0] = fz_str(&in, 40);  /* an action of our own choosing when a & 8 */
        owned[i][1] = fz_str(&in, 20);  /* status */
        owned[i][2] = fz_str(&in, 255); /* diagnostic */
        owned[i][3] = fz_str(&in, 255); /* remote MTA */
        reports[i] = (dsn_report){&m.rcpts[i], (a & 8) ? owned[i][0] : actions[a % SL_ARRAY_LEN(actions)],
                                  (a & 16) ? owned[i][1] : NULL, (a & 32) ? owned[i][2] : NULL,
                                  (a & 64) ? owned[i][3] : NULL};
    }
    m.data = (const char *)in.p; /* the rest is the returned message */
    m.data_len = in.n;

    size_t len = 0;
    char *r = dsn_build_tmpl(&m, reports, nrep, "mx.example.test", 1700000000 + (int64_t)opts, 2000,
                             (opts & 0x80) ? templates : NULL, &len);
    FZ_CHECK(r && strlen(r) <= len, "report length");
    check_report(r, len);
    free(r);

    for (size_t i = 0; i < nrep; i++)
        for (int k = 0; k < 4; k++) free(owned[i][k]);
    free(tmpl);
    m.data = NULL;
    qmsg_free(&m);
    return 0;
}
