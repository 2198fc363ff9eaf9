/*
 * fuzz_smtp_reply.c - the SMTP client's reply parser (smtp/client.h): replies from a remote
 * server, line by line, with multi-line replies, enhanced status codes and EHLO capabilities;
 * and the client's dot-stuffing of message data.
 *
 * Input: what a server sends, cut into lines at LF (a CR before the LF is removed, as smtp_out.c
 * does); the same bytes are also dot-stuffed as message data.
 *
 * Properties: a complete reply has a code from 200 to 599 and at least one line, its status is
 * "c.d.d" with c its class, its one-line text starts with its code; a 2xx reply parses as an EHLO
 * reply; dot-stuffed data holds no line that starts with a single '.' before the final ".\r\n"
 * (nothing in a message can end the DATA early at the next hop) and ends with CRLF "." CRLF.
 */
#include <ctype.h>

#include "fuzz.h"
#include "smtp/client.h"

static void check_status(const smtp_reply *r)
{
    char st[32];
    smtp_reply_status(r, st, sizeof st);
    FZ_CHECK(st[0] == '0' + r->code / 100 && st[1] == '.', "status '%s' for code %d", st, r->code);
    size_t i = 2, n = 0;
    while (isdigit((unsigned char)st[i])) i++, n++;
    FZ_CHECK(n >= 1 && n <= 3 && st[i] == '.', "status '%s'", st);
    i++, n = 0;
    while (isdigit((unsigned char)st[i])) i++, n++;
    FZ_CHECK(n >= 1 && n <= 3 && st[i] == '\0', "status '%s'", st);
}

static void on_reply(smtp_reply *r)
{
    FZ_CHECK(r->code >= 200 && r->code <= 599, "code %d", r->code);
    FZ_CHECK(r->lines.n >= 1 && r->lines.n <= SMTP_REPLY_MAX_LINES, "%zu lines", r->lines.n);
    check_status(r);
    char *text = smtp_reply_text(r);
    char code[8];
    snprintf(code, sizeof code, "%03d", r->code);
    FZ_CHECK(strncmp(text, code, 3) == 0, "text '%s' for code %d", text, r->code);
    free(text);
    if (r->code / 100 == 2) {
        smtp_caps caps;
        smtp_caps_parse(r, &caps);
        FZ_CHECK(caps.esmtp && strlen(caps.xloop) < sizeof caps.xloop, "caps");
    }
}

typedef struct {
    strbuf out;
} stuffed;

static void emit(void *ctx, const void *p, size_t n)
{
    stuffed *st = ctx;
    sb_append(&st->out, p, n);
}

/* crlf_normal - data with every bare CR and bare LF made CRLF, as the client sends it. */
static void crlf_normal(const uint8_t *d, size_t n, strbuf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (d[i] == '\r' && i + 1 < n && d[i + 1] == '\n') {
            sb_append(out, "\r\n", 2);
            i++;
        } else if (d[i] == '\r' || d[i] == '\n') {
            sb_append(out, "\r\n", 2);
        } else {
            sb_putc(out, (char)d[i]);
        }
    }
}

/* check_stuffed - the terminator comes last and only there; no bare CR or LF goes out; undoing
 * the stuffing gives the data back with its line ends made CRLF (and a CRLF added when it did not
 * end with one). */
static void check_stuffed(const uint8_t *data, size_t size)
{
    stuffed st;
    sb_init(&st.out);
    smtp_client_dot_stuff((const char *)data, size, emit, &st);
    const char *o = st.out.data;
    size_t n = st.out.len;
    FZ_CHECK(n >= 3 && memcmp(o + n - 3, ".\r\n", 3) == 0, "stuffed data does not end with .CRLF");
    FZ_CHECK(n == 3 || (n >= 5 && memcmp(o + n - 5, "\r\n", 2) == 0), "terminator not on a line of its own");
    strbuf back;
    sb_init(&back);
    for (size_t i = 0; i + 3 < n; i++) {
        if (o[i] == '.' && (i == 0 || o[i - 1] == '\n')) {
            FZ_CHECK(o[i + 1] == '.', "a line starts with a single dot at offset %zu of %zu", i, n);
            i++; /* the stuffed dot; the next one is data, not at a line start */
        }
        sb_putc(&back, o[i]);
    }
    FZ_CHECK(fz_no_bare_eol(o, n), "a bare CR or LF is sent");
    strbuf norm;
    sb_init(&norm);
    crlf_normal(data, size, &norm);
    bool crlf_end = norm.len >= 2 && norm.data[norm.len - 2] == '\r' && norm.data[norm.len - 1] == '\n';
    size_t expect = norm.len + (norm.len > 0 && !crlf_end ? 2 : 0);
    FZ_CHECK(back.len == expect && memcmp(back.data ? back.data : "", norm.data ? norm.data : "", norm.len) == 0,
             "unstuffed %zu octets, expected %zu", back.len, expect);
    sb_free(&norm);
    sb_free(&back);
    sb_free(&st.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    while (in.n) {
        size_t len;
        char *line = fz_line(&in, &len);
        if (len && line[len - 1] == '\r') line[--len] = '\0';
        smtp_reply r;
        int rc = smtp_reply_parse_line(&p, line, len, &r);
        if (rc == 1) {
            on_reply(&r);
            smtp_reply_free(&r);
        }
        free(line);
    }
    smtp_reply_parser_free(&p);
    check_stuffed(data, size);
    return 0;
}
