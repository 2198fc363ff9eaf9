/*
 * tlsrpt_report.c - the pure pieces of a TLS-RPT report besides the counts (see tlsrpt_data.h):
 * the `_smtp._tls` TXT record (RFC 8460 3), gzip, and the report message (RFC 8460 5.3).
 */
#include "tlsrpt/tlsrpt_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define TLSRPT_MAX_RUA 8 /* rua URIs used at most */

/* is_wsp - SP or HTAB. */
static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* ext_name_ok - tlsrpt-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."). */
static bool ext_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 32) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool an = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!an && (i == 0 || (c != '_' && c != '-' && c != '.'))) return false;
    }
    return true;
}

/* value_ok - tlsrpt-ext-value: 1*(%x21-3A / %x3C / %x3E-7E). */
static bool value_ok(const char *s, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == ';' || c == '=') return false;
    }
    return true;
}

/* hexval - the value of a hex digit, or -1. */
static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* mailto_addr - the address of a mailto: URI (percent-decoded, without ?headers); NULL when unusable. */
static char *mailto_addr(const char *u, size_t n)
{
    strbuf sb;
    sb_init(&sb);
    for (size_t i = 7; i < n && u[i] != '?'; i++) {
        int hi, lo;
        char c = u[i];
        if (c == '%' && i + 2 < n && (hi = hexval(u[i + 1])) >= 0 && (lo = hexval(u[i + 2])) >= 0) {
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if ((unsigned char)c <= ' ' || c == '<' || c == '>' || c == '"' || c == ',' || (unsigned char)c >= 0x7f) {
            sb_free(&sb);
            return NULL;
        }
        sb_putc(&sb, c);
    }
    const char *at = sb.data ? strrchr(sb.data, '@') : NULL;
    if (!at || at == sb.data || !at[1] || strchr(sb.data, '@') != at) {
        sb_free(&sb);
        return NULL;
    }
    return sb_steal(&sb);
}

/* rua_add - one URI of a rua list: "mailto:ADDR" (decoded) or the https URI, appended to rua. */
static void rua_add(const char *u, size_t n, strvec *rua)
{
    if (rua->n >= TLSRPT_MAX_RUA) return;
    if (n > 7 && !strncasecmp(u, "mailto:", 7)) {
        char *a = mailto_addr(u, n);
        if (a) sv_push_owned(rua, xasprintf("mailto:%s", a));
        free(a);
    } else if (n > 8 && !strncasecmp(u, "https://", 8)) {
        for (size_t i = 0; i < n; i++) /* RFC 3986: printable ASCII, and not these */
            if ((unsigned char)u[i] <= ' ' || (unsigned char)u[i] >= 0x7f || strchr("\"<>\\^`{|}", u[i])) return;
        sv_push_owned(rua, xasprintf("https://%.*s", (int)(n - 8), u + 8)); /* the scheme in lower case */
    }
}

/* rua_parse - the value of rua=: URIs separated by "," with optional blanks; false when malformed. */
static bool rua_parse(const char *v, size_t n, strvec *rua)
{
    size_t i = 0;
    while (i < n) {
        size_t s = i;
        while (i < n && v[i] != ',' && !is_wsp(v[i])) i++;
        if (i == s) return false;
        rua_add(v + s, i - s, rua);
        while (i < n && is_wsp(v[i])) i++;
        if (i < n) {
            if (v[i] != ',') return false;
            i++;
            while (i < n && is_wsp(v[i])) i++;
            if (i == n) return false; /* a trailing comma */
        }
    }
    return true;
}

int tlsrpt_txt_parse(const char *txt, strvec *rua)
{
    static const char version[] = "v=TLSRPTv1";
    size_t vl = sizeof version - 1;
    if (strncmp(txt, version, vl) != 0) return 0;
    const char *p = txt + vl;
    if (*p && *p != ';' && !is_wsp(*p)) return 0; /* v=TLSRPTv10 is another version */
    strvec got = {0};
    bool seen_rua = false, ok = true;
    while (ok) {
        while (is_wsp(*p)) p++;
        if (!*p) break;
        if (*p != ';') {
            ok = false;
            break;
        }
        p++;
        while (is_wsp(*p)) p++;
        if (!*p) break; /* the optional final delimiter */
        const char *eq = strchr(p, '=');
        const char *end = strchr(p, ';');
        if (!end) end = p + strlen(p);
        if (!eq || eq > end || !ext_name_ok(p, (size_t)(eq - p))) {
            ok = false;
            break;
        }
        const char *v = eq + 1;
        size_t vn = (size_t)(end - v);
        while (vn && is_wsp(v[vn - 1])) vn--;
        if (eq - p == 3 && !strncmp(p, "rua", 3)) {
            if (seen_rua || !rua_parse(v, vn, &got)) ok = false; /* rua exactly once */
            seen_rua = true;
        } else if (!value_ok(v, vn)) {
            ok = false;
        }
        p = end;
    }
    ok = ok && seen_rua && got.n > 0;
    if (ok)
        for (size_t i = 0; i < got.n; i++) sv_push(rua, got.v[i]);
    sv_free(&got);
    return ok ? 1 : -1;
}

bool tlsrpt_txt_select(char *const *strs, size_t n, strvec *rua)
{
    int found = 0;
    strvec got = {0};
    for (size_t i = 0; i < n; i++) {
        strvec one = {0};
        int r = tlsrpt_txt_parse(strs[i], &one);
        if (r != 0) found++;
        if (r == 1 && found == 1)
            for (size_t k = 0; k < one.n; k++) sv_push(&got, one.v[k]);
        sv_free(&one);
    }
    bool ok = found == 1 && got.n > 0; /* RFC 8460 3: not exactly one record means no TLS-RPT */
    if (ok)
        for (size_t i = 0; i < got.n; i++) sv_push(rua, got.v[i]);
    sv_free(&got);
    return ok;
}

void tlsrpt_gzip(const void *in, size_t len, strbuf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort(); /* 15 + 16: gzip */
    uLong bound = deflateBound(&z, (uLong)len) + 32;
    sb_reserve(out, bound);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out->data + out->len;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort(); /* the bound makes one call enough */
    out->len += z.total_out;
    out->data[out->len] = '\0';
    deflateEnd(&z);
}

/* hdr_clean - s without CR, LF and other control characters (a header value that cannot inject fields). */
static void hdr_clean(strbuf *out, const char *s)
{
    for (; s && *s; s++) sb_putc(out, (unsigned char)*s < ' ' || *s == 0x7f ? ' ' : *s);
}

/* fname_clean - s for the attachment's file name: only letters, digits, '.', '-', '_'. */
static void fname_clean(strbuf *out, const char *s)
{
    for (; s && *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                  c == '_';
        sb_putc(out, ok ? c : '_');
    }
}

void tlsrpt_mail_filename(const tlsrpt_mail *m, strbuf *out)
{
    fname_clean(out, m->submitter);
    sb_putc(out, '!');
    fname_clean(out, m->domain);
    sb_printf(out, "!%lld!%lld!", (long long)m->begin, (long long)m->end);
    fname_clean(out, m->report_id);
    sb_puts(out, ".json.gz");
}

void tlsrpt_mail_build(const tlsrpt_mail *m, strbuf *out)
{
    sb_puts(out, "From: <");
    hdr_clean(out, m->from);
    sb_puts(out, ">\r\nTo: <");
    hdr_clean(out, m->to);
    sb_puts(out, ">\r\nSubject: Report Domain: ");
    hdr_clean(out, m->domain);
    sb_puts(out, " Submitter: ");
    hdr_clean(out, m->submitter);
    sb_puts(out, " Report-ID: <");
    hdr_clean(out, m->report_id);
    sb_printf(out, ">\r\nDate: %s\r\nMessage-ID: %s\r\n", m->date, m->msgid);
    sb_puts(out, "TLS-Report-Domain: ");
    hdr_clean(out, m->domain);
    sb_puts(out, "\r\nTLS-Report-Submitter: ");
    hdr_clean(out, m->submitter);
    sb_printf(out, "\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"%s\"\r\n\r\n",
              m->boundary);
    sb_printf(out, "This is a multipart message in MIME format.\r\n\r\n--%s\r\n"
                   "Content-Type: text/plain; charset=us-ascii\r\n\r\n", m->boundary);
    sb_puts(out, "This is an aggregate TLS report (RFC 8460) from ");
    hdr_clean(out, m->submitter);
    sb_puts(out, " for ");
    hdr_clean(out, m->domain);
    sb_printf(out, ".\r\n\r\n--%s\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n"
                   "Content-Disposition: attachment;\r\n\tfilename=\"", m->boundary);
    tlsrpt_mail_filename(m, out);
    sb_puts(out, "\"\r\n\r\n");
    strbuf b64;
    sb_init(&b64);
    b64_encode(m->gz, m->gz_len, &b64);
    for (size_t i = 0; i < b64.len; i += 76) { /* RFC 2045 6.8: lines of at most 76 characters */
        sb_append(out, b64.data + i, b64.len - i < 76 ? b64.len - i : 76);
        sb_puts(out, "\r\n");
    }
    sb_free(&b64);
    sb_printf(out, "\r\n--%s--\r\n", m->boundary);
}
