/*
 * parse.c - SMTP command line, mailbox and xtext parsers (RFC 5321, 6531, 3461, 1870, 3030, 6152).
 *
 * Everything here works on (pointer, length) spans of untrusted bytes and produces validated,
 * heap-allocated values (freed with smtp_addr_free / smtp_cmd_free). No I/O, no globals, any
 * thread. smtp_cmd_parse is a verb table plus one check function per verb (OpenSMTPD style);
 * MAIL/RCPT parameters are another table with one handler per parameter.
 */
#include "smtp/parse.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define SMTP_CMD_TEXT_MAX (SMTP_CMD_LINE_MAX - 2) /* octets of a command line without CRLF */
#define SMTP_MAILBOX_MAX (SMTP_PATH_MAX - 2)      /* a mailbox must fit in "<...>" */
#define SMTP_LABEL_MAX 63
#define SMTP_NUM_DIGITS_MAX 20

/* ---------------------------------------------------------------- small byte helpers */

/* set_err - write a reason into a caller's buffer, if any. */
static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

/* is_alpha - ASCII letter. */
static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* is_digit - ASCII decimal digit. */
static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* is_ws - the separators we accept between command tokens. */
static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* to_lower - ASCII lower-case one byte, leaving UTF-8 bytes alone. */
static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* mem_ieq - ASCII case-insensitive comparison of a span with a NUL-terminated word. */
static bool mem_ieq(const char *s, size_t n, const char *word)
{
    size_t wl = strlen(word);
    if (n != wl)
        return false;
    for (size_t i = 0; i < n; i++)
        if (to_lower(s[i]) != to_lower(word[i]))
            return false;
    return true;
}

/* has_8bit - whether the span holds any byte >= 0x80. */
static bool has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

/* utf8_valid - strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t need;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += need + 1;
    }
    return true;
}

/* parse_u64_digits - 1..20 decimal digits that fit in uint64_t; -1 otherwise. */
static int parse_u64_digits(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > SMTP_NUM_DIGITS_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned d;
        if (!is_digit((unsigned char)s[i]))
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* hex_upper_val - value of an upper-case hex digit (xtext) or -1. */
static int hex_upper_val(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ---------------------------------------------------------------- xtext (RFC 3461 4) */

/* xtext_decode - decode RFC 3461 xtext; NULL if malformed (or if it decodes to a NUL). */
char *xtext_decode(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            int hi, lo;
            if (len - i < 3)
                goto fail;
            hi = hex_upper_val((unsigned char)s[i + 1]);
            lo = hex_upper_val((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                goto fail;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c >= 33 && c <= 126 && c != '=') {
            out[o++] = (char)c;
        } else {
            goto fail;
        }
    }
    out[o] = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

/* xtext_encode - encode text as xtext ('+', '=' and bytes outside 33..126 as "+XX"); caller frees. */
char *xtext_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    strbuf sb;
    sb_init(&sb);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 33 && c <= 126 && c != '+' && c != '=') {
            sb_putc(&sb, (char)c);
        } else {
            sb_putc(&sb, '+');
            sb_putc(&sb, hex[c >> 4]);
            sb_putc(&sb, hex[c & 0xF]);
        }
    }
    return sb_steal(&sb);
}

/* ---------------------------------------------------------------- domains */

/* domain_label_check - why one LDH label is bad (UTF-8 bytes allowed when allow_utf8), or NULL. */
static const char *domain_label_check(const char *s, size_t n, bool allow_utf8)
{
    if (n == 0)
        return "empty domain label";
    if (n > SMTP_LABEL_MAX)
        return "domain label too long";
    if (s[0] == '-' || s[n - 1] == '-')
        return "domain label starts or ends with a hyphen";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_alpha(c) || is_digit(c) || c == '-')
            continue;
        if (c >= 0x80 && allow_utf8)
            continue;
        return c >= 0x80 ? "non-ASCII domain" : "invalid character in domain";
    }
    return NULL;
}

/* domain_name_canon - validate a dot-separated domain name; lower-cased copy or NULL. */
static char *domain_name_canon(const char *s, size_t n, bool allow_utf8, char *err, size_t errlen)
{
    size_t start = 0;
    char *out;
    if (n > SMTP_DOMAIN_MAX) {
        set_err(err, errlen, "domain too long");
        return NULL;
    }
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.')
            continue;
        const char *why = domain_label_check(s + start, i - start, allow_utf8);
        if (why) {
            set_err(err, errlen, why);
            return NULL;
        }
        start = i + 1;
    }
    out = xstrndup(s, n);
    for (size_t i = 0; i < n; i++)
        out[i] = to_lower(out[i]);
    return out;
}

/* domain_literal_canon - "[1.2.3.4]" or "[IPv6:...]" checked with inet_pton; canonical copy or NULL. */
static char *domain_literal_canon(const char *s, size_t n, char *err, size_t errlen)
{
    char buf[INET6_ADDRSTRLEN + 8];
    unsigned char bin[sizeof(struct in6_addr)];
    const char *in = s + 1;
    size_t inlen;
    bool v6;
    if (n < 3 || s[n - 1] != ']') {
        set_err(err, errlen, "malformed address literal");
        return NULL;
    }
    inlen = n - 2;
    v6 = inlen >= 5 && mem_ieq(in, 5, "IPv6:");
    if (v6)
        in += 5, inlen -= 5;
    /* inet_pton reads a C string: a NUL inside would hide the bytes after it */
    if (inlen == 0 || inlen >= sizeof(buf) || memchr(in, '\0', inlen)) {
        set_err(err, errlen, "malformed address literal");
        return NULL;
    }
    memcpy(buf, in, inlen);
    buf[inlen] = '\0';
    if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, bin) != 1) {
        set_err(err, errlen, v6 ? "invalid IPv6 address literal" : "invalid IPv4 address literal");
        return NULL;
    }
    for (size_t i = 0; i < inlen; i++)
        buf[i] = to_lower(buf[i]);
    return xasprintf("[%s%s]", v6 ? "IPv6:" : "", buf);
}

/* domain_canon - domain name or address literal, canonical heap copy or NULL with err. */
static char *domain_canon(const char *s, size_t n, bool allow_utf8, char *err, size_t errlen)
{
    if (n == 0) {
        set_err(err, errlen, "empty domain");
        return NULL;
    }
    if (s[0] == '[')
        return domain_literal_canon(s, n, err, errlen);
    if (has_8bit(s, n) && allow_utf8 && !utf8_valid(s, n)) {
        set_err(err, errlen, "invalid UTF-8 in domain");
        return NULL;
    }
    return domain_name_canon(s, n, allow_utf8, err, errlen);
}

/* smtp_domain_check - validate a domain name or address literal. */
int smtp_domain_check(const char *s, size_t len, bool allow_utf8, char *err, size_t errlen)
{
    char *d = domain_canon(s, len, allow_utf8, err, errlen);
    if (!d)
        return -1;
    free(d);
    return 0;
}

/* ---------------------------------------------------------------- mailboxes */

/* is_atext - RFC 5322 atext, plus UTF8-non-ascii (RFC 6531; validity checked beforehand). */
static bool is_atext(unsigned char c)
{
    if (is_alpha(c) || is_digit(c) || c >= 0x80)
        return true;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* local_quoted_end - index just past a quoted-string starting at s[0] == '"', or 0 if malformed. */
static size_t local_quoted_end(const char *s, size_t n)
{
    size_t i = 1;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1;
        if (c == '\\') {
            /* quoted-pairSMTP = "\" %d32-126 */
            if (i + 1 >= n || (unsigned char)s[i + 1] < 32 || (unsigned char)s[i + 1] > 126)
                return 0;
            i += 2;
        } else if ((c >= 32 && c <= 126) || c >= 0x80) {
            i++;
        } else {
            return 0;
        }
    }
    return 0;
}

/* local_atom_end - index just past a dot-atom at s, or 0 if malformed. */
static size_t local_atom_end(const char *s, size_t n)
{
    size_t i = 0;
    for (;;) {
        size_t atom = i;
        while (i < n && is_atext((unsigned char)s[i]))
            i++;
        if (i == atom)
            return 0; /* empty atom: leading, trailing or doubled dot */
        if (i < n && s[i] == '.') {
            i++;
            continue;
        }
        return i;
    }
}

/* smtp_addr_free - release a parsed address. */
void smtp_addr_free(smtp_addr *a)
{
    if (!a)
        return;
    free(a->local);
    free(a->domain);
    memset(a, 0, sizeof(*a));
}

/* smtp_addr_format - "local@domain", "local" without a domain (Postmaster), "" for null. */
char *smtp_addr_format(const smtp_addr *a)
{
    if (a->is_null || !a->local)
        return xstrdup("");
    if (!a->domain || !a->domain[0])
        return xstrdup(a->local);
    return xasprintf("%s@%s", a->local, a->domain);
}

/* smtp_addr_parse - parse a mailbox "local@domain" without angle brackets. */
int smtp_addr_parse(const char *s, size_t len, bool allow_utf8, smtp_addr *out, char *err, size_t errlen)
{
    size_t at;
    bool utf8;
    char *domain;
    memset(out, 0, sizeof(*out));
    if (!s || len == 0) {
        set_err(err, errlen, "empty address");
        return -1;
    }
    if (len > SMTP_MAILBOX_MAX) {
        set_err(err, errlen, "address too long");
        return -1;
    }
    utf8 = has_8bit(s, len);
    if (utf8 && !allow_utf8) {
        set_err(err, errlen, "non-ASCII address without SMTPUTF8");
        return -1;
    }
    if (utf8 && !utf8_valid(s, len)) {
        set_err(err, errlen, "invalid UTF-8 in address");
        return -1;
    }
    at = s[0] == '"' ? local_quoted_end(s, len) : local_atom_end(s, len);
    if (at == 0) {
        set_err(err, errlen, "invalid local part");
        return -1;
    }
    if (at >= len || s[at] != '@') {
        set_err(err, errlen, at >= len ? "missing domain" : "invalid local part");
        return -1;
    }
    if (at > SMTP_LOCAL_MAX) {
        set_err(err, errlen, "local part too long");
        return -1;
    }
    domain = domain_canon(s + at + 1, len - at - 1, allow_utf8, err, errlen);
    if (!domain)
        return -1;
    out->local = xstrndup(s, at);
    out->domain = domain;
    out->utf8 = utf8;
    return 0;
}

/* ---------------------------------------------------------------- command parsing */

/* What a verb or parameter check sees: the arguments after the verb, trimmed. */
typedef struct {
    const char *args;
    size_t alen;
    bool esmtp;
    smtp_cmd *cmd;
    char *reply;
    size_t replylen;
    unsigned seen; /* PARAM_* bits already given */
} cmd_ctx;

/* cmd_fail - write "<code> <text>" into the reply buffer and return code. */
__attribute__((format(printf, 3, 4))) static int cmd_fail(cmd_ctx *c, int code, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (!c->reply || c->replylen == 0)
        return code;
    n = snprintf(c->reply, c->replylen, "%d ", code);
    if (n < 0 || (size_t)n >= c->replylen)
        return code;
    va_start(ap, fmt);
    vsnprintf(c->reply + n, c->replylen - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

/* next_token - the next whitespace-delimited token of [*p, end); false when none is left. */
static bool next_token(const char **p, const char *end, const char **tok, size_t *toklen)
{
    const char *q = *p;
    while (q < end && is_ws((unsigned char)*q))
        q++;
    if (q == end) {
        *p = q;
        return false;
    }
    *tok = q;
    while (q < end && !is_ws((unsigned char)*q))
        q++;
    *toklen = (size_t)(q - *tok);
    *p = q;
    return true;
}

/* ---- MAIL/RCPT parameters */

enum {
    PARAM_SIZE = 1u << 0, PARAM_BODY = 1u << 1, PARAM_SMTPUTF8 = 1u << 2, PARAM_RET = 1u << 3,
    PARAM_ENVID = 1u << 4, PARAM_AUTH = 1u << 5, PARAM_NOTIFY = 1u << 6, PARAM_ORCPT = 1u << 7,
    PARAM_SOLICIT = 1u << 8
};

typedef int (*param_fn)(cmd_ctx *c, const char *name, const char *v, size_t vlen, bool has_value);

/* param_invalid - the reply for a bad parameter value. */
static int param_invalid(cmd_ctx *c, const char *name)
{
    return cmd_fail(c, 501, "5.5.4 Invalid %s value", name);
}

/* param_size - SIZE=digits (RFC 1870). */
static int param_size(cmd_ctx *c, const char *name, const char *v, size_t vlen, bool has_value)
{
    if (!has_value || parse_u64_digits(v, vlen, &c->cmd->size) < 0)
        return param_invalid(c, name);
    c->cmd->has_size = true;
    return 0;
}

/* param_body - BODY=7BIT|8BITMIME|BINARYMIME (RFC 6152, 3030). */
static int param_body(cmd_ctx *c, const char *name, const char *v, size_t vlen, bool has_value)
{
    if (has_value && mem_ieq(v, vlen, "7BIT"))
        c->cmd->body = BODY_7BIT;
    else if (has_value && mem_ieq(v, vlen, "8BITMIME"))
        c->cmd->body = BODY_8BITMIME;
    else if (has_value && mem_ieq(v, vlen, "BINARYMIME"))
        c->cmd->body = BODY_BINARYMIME;
    else
        return param_invalid(c, name);
    return 0;
}

/* param_smtputf8 - SMTPUTF8 without a value (RFC 6531). */
static int param_smtputf8(cmd_ctx *c, const char *name, const char *v, size_t vlen, bool has_value)
{
    (void)v, (void)vlen;
    if (has_value)
        return cmd_fail(c, 501, "5.5.4 %s takes no value", name);
    c->cmd->smtputf8 = true;
    return 0;
}

/* param_ret - RET=FULL|HDRS (RFC 3461). */
static int param_ret(cmd_ctx *c, const char *name, const char *v, size_t vlen, bool has_value)
{
    if (has_value && mem_ieq(v, vlen, "FULL"))
        c->cmd->ret = DSN_RET_FULL;
    else if (has_value && mem_ieq(v, vlen, "HDRS"))
        c->cmd->ret = DSN_RET_HDRS;
    else
        return param_invalid(c, name);
    return 0;
}

/* printable_ascii - every byte in 32..126 (decoded DSN data ends up in DSN headers). */
static bool printable_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 32 || (unsigned char)s[i] > 126)
            return false;
    return true;
}

/* param_envid - ENVID=xtext, decoded printable ASCII of at most 100 octets (RFC 3461). */
static int param_envid(cmd_ctx *c, const char *name, const char *v, size_t vlen, bool has_value)
{
    char *d = has_value && vlen > 0 ? xtext_decode(v, vlen) : NULL;
    size_t dl = d ? strlen(d) : 0;
    if (!d || dl == 0 || dl > SMTP_ENVID_MAX || !printable_ascii(d, dl)) {
        free(d);
        return param_invalid(c, name);
    }
    c->cmd->envid = d;
    return 0;
}

/*
 * param_auth - AUTH=<> or AUTH=xtext (RFC 4954 5). Clients that authenticated may send it
 * whenever we advertise AUTH, so it must not be refused; the value is checked and ignored.
 */
static int param_auth(cmd_ctx *c, const char *name, const char *v, size_t vlen, bool has_value)
{
    char *d;
    if (has_value && mem_ieq(v, vlen, "<>"))
        return 0;
    d = has_value && vlen > 0 ? xtext_decode(v, vlen) : NULL;
    if (!d)
        return param_invalid(c, name);
    free(d);
    return 0;
}

/* param_notify - NOTIFY=NEVER or a list of SUCCESS,FAILURE,DELAY without repeats (RFC 3461). */
static int param_notify(cmd_ctx *c, const char *name, const char *v, size_t vlen, bool has_value)
{
    static const struct {
        const char *word;
        unsigned bit;
    } words[] = {
        {"NEVER", DSN_NOTIFY_NEVER}, {"SUCCESS", DSN_NOTIFY_SUCCESS},
        {"FAILURE", DSN_NOTIFY_FAILURE}, {"DELAY", DSN_NOTIFY_DELAY},
    };
    unsigned bits = 0;
    size_t start = 0;
    if (!has_value || vlen == 0)
        return param_invalid(c, name);
    for (size_t i = 0; i <= vlen; i++) {
        unsigned bit = 0;
        if (i < vlen && v[i] != ',')
            continue;
        for (size_t w = 0; w < SL_ARRAY_LEN(words); w++)
            if (mem_ieq(v + start, i - start, words[w].word))
                bit = words[w].bit;
        if (bit == 0 || (bits & bit))
            return param_invalid(c, name);
        bits |= bit;
        start = i + 1;
    }
    if ((bits & DSN_NOTIFY_NEVER) && bits != DSN_NOTIFY_NEVER)
        return param_invalid(c, name);
    c->cmd->notify = bits;
    return 0;
}

/* utf8_put - append code point cp as UTF-8. */
static void utf8_put(strbuf *sb, uint32_t cp)
{
    if (cp < 0x80) {
        sb_putc(sb, (char)cp);
    } else if (cp < 0x800) {
        sb_putc(sb, (char)(0xC0 | (cp >> 6)));
        sb_putc(sb, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        sb_putc(sb, (char)(0xE0 | (cp >> 12)));
        sb_putc(sb, (char)(0x80 | ((cp >> 6) & 0x3F)));
        sb_putc(sb, (char)(0x80 | (cp & 0x3F)));
    } else {
        sb_putc(sb, (char)(0xF0 | (cp >> 18)));
        sb_putc(sb, (char)(0x80 | ((cp >> 12) & 0x3F)));
        sb_putc(sb, (char)(0x80 | ((cp >> 6) & 0x3F)));
        sb_putc(sb, (char)(0x80 | (cp & 0x3F)));
    }
}

/* hex_any_val - value of a hex digit of either case or -1. */
static int hex_any_val(unsigned char c)
{
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return hex_upper_val(c);
}

/*
 * utf8_addr_decode - decode an RFC 6533 utf-8-addr-xtext/unitext value: literal printable ASCII,
 * raw UTF-8, "\x{HEX}" escapes and (leniently) xtext "+XX". NULL if malformed.
 */
static char *utf8_addr_decode(const char *s, size_t n)
{
    strbuf sb;
    sb_init(&sb);
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\\') {
            uint32_t cp = 0;
            size_t j = i + 3, digits = 0;
            if (n - i < 5 || s[i + 1] != 'x' || s[i + 2] != '{')
                goto fail;
            for (; j < n && s[j] != '}'; j++, digits++) {
                int h = hex_any_val((unsigned char)s[j]);
                if (h < 0 || digits >= 6)
                    goto fail;
                cp = cp * 16 + (uint32_t)h;
            }
            if (j >= n || digits == 0 || cp < 0x20 || cp == 0x7F || cp > 0x10FFFF ||
                (cp >= 0xD800 && cp <= 0xDFFF))
                goto fail;
            utf8_put(&sb, cp);
            i = j + 1;
        } else if (ch == '+') {
            int hi, lo;
            if (n - i < 3)
                goto fail;
            hi = hex_upper_val((unsigned char)s[i + 1]);
            lo = hex_upper_val((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                goto fail;
            sb_putc(&sb, (char)(hi * 16 + lo));
            i += 3;
        } else if ((ch >= 33 && ch <= 126 && ch != '=') || ch >= 0x80) {
            sb_putc(&sb, (char)ch);
            i++;
        } else {
            goto fail;
        }
    }
    if (!utf8_valid(sb.data ? sb.data : "", sb.len))
        goto fail;
    for (size_t i = 0; i < sb.len; i++)
        if ((unsigned char)sb.data[i] < 32 || (unsigned char)sb.data[i] == 127)
            goto fail;
    return sb_steal(&sb);
fail:
    sb_free(&sb);
    return NULL;
}

/* param_orcpt - ORCPT=addr-type;value with addr-type rfc822 or utf-8 (RFC 3461, 6533). */
static int param_orcpt(cmd_ctx *c, const char *name, const char *v, size_t vlen, bool has_value)
{
    const char *semi = has_value ? memchr(v, ';', vlen) : NULL;
    const char *type;
    char *d = NULL;
    size_t tlen, dl;
    if (!semi)
        return param_invalid(c, name);
    tlen = (size_t)(semi - v);
    if (mem_ieq(v, tlen, "rfc822")) {
        type = "rfc822";
        d = xtext_decode(semi + 1, vlen - tlen - 1);
        if (d && !printable_ascii(d, strlen(d))) {
            free(d);
            d = NULL;
        }
    } else if (mem_ieq(v, tlen, "utf-8")) {
        type = "utf-8";
        d = utf8_addr_decode(semi + 1, vlen - tlen - 1);
    } else {
        return param_invalid(c, name);
    }
    dl = d ? strlen(d) : 0;
    if (dl == 0 || dl > SMTP_ORCPT_MAX) {
        free(d);
        return param_invalid(c, name);
    }
    c->cmd->orcpt = xasprintf("%s;%s", type, d);
    free(d);
    return 0;
}

/* smtp_solicit_check - RFC 3865 solicitation keywords: word *("," word), each word one or more of
 * ALPHA / DIGIT / "-" / "." / ":" (reverse domain names such as "net.example:ADV"). */
bool smtp_solicit_check(const char *v, size_t vlen)
{
    size_t word = 0;
    if (vlen == 0 || vlen > SMTP_SOLICIT_MAX) return false;
    for (size_t i = 0; i < vlen; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == ',') {
            if (!word) return false;
            word = 0;
        } else if (is_alpha(ch) || is_digit(ch) || ch == '-' || ch == '.' || ch == ':') {
            word++;
        } else {
            return false;
        }
    }
    return word > 0;
}

/* param_solicit - SOLICIT=keyword[,keyword...] (RFC 3865), kept as written. */
static int param_solicit(cmd_ctx *c, const char *name, const char *v, size_t vlen, bool has_value)
{
    if (!has_value || !smtp_solicit_check(v, vlen))
        return param_invalid(c, name);
    c->cmd->solicit = xmemdup0(v, vlen);
    return 0;
}

static const struct {
    const char *name;
    enum smtp_verb verb;
    unsigned bit;
    param_fn fn;
} param_table[] = {
    {"SIZE", SMTP_MAIL, PARAM_SIZE, param_size},
    {"BODY", SMTP_MAIL, PARAM_BODY, param_body},
    {"SMTPUTF8", SMTP_MAIL, PARAM_SMTPUTF8, param_smtputf8},
    {"RET", SMTP_MAIL, PARAM_RET, param_ret},
    {"ENVID", SMTP_MAIL, PARAM_ENVID, param_envid},
    {"AUTH", SMTP_MAIL, PARAM_AUTH, param_auth},
    {"SOLICIT", SMTP_MAIL, PARAM_SOLICIT, param_solicit},
    {"NOTIFY", SMTP_RCPT, PARAM_NOTIFY, param_notify},
    {"ORCPT", SMTP_RCPT, PARAM_ORCPT, param_orcpt},
};

/* param_keyword_ok - esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"). */
static bool param_keyword_ok(const char *s, size_t n)
{
    if (n == 0 || !(is_alpha((unsigned char)s[0]) || is_digit((unsigned char)s[0])))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_alpha((unsigned char)s[i]) && !is_digit((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

/* param_one - check and apply one "NAME[=VALUE]" token. */
static int param_one(cmd_ctx *c, const char *tok, size_t toklen)
{
    const char *eq = memchr(tok, '=', toklen);
    size_t nlen = eq ? (size_t)(eq - tok) : toklen;
    char upname[32];
    if (!param_keyword_ok(tok, nlen))
        return cmd_fail(c, 501, "5.5.4 Syntax error in parameters");
    for (size_t i = 0; i < SL_ARRAY_LEN(param_table); i++) {
        if (!mem_ieq(tok, nlen, param_table[i].name))
            continue;
        if (param_table[i].verb != c->cmd->verb)
            break;
        if (c->seen & param_table[i].bit)
            return cmd_fail(c, 501, "5.5.4 Duplicate parameter %s", param_table[i].name);
        c->seen |= param_table[i].bit;
        return param_table[i].fn(c, param_table[i].name, eq ? eq + 1 : tok + toklen,
                                 eq ? toklen - nlen - 1 : 0, eq != NULL);
    }
    /* the keyword was checked above, so echoing it cannot inject anything */
    if (nlen >= sizeof(upname))
        nlen = sizeof(upname) - 1;
    for (size_t i = 0; i < nlen; i++)
        upname[i] = (tok[i] >= 'a' && tok[i] <= 'z') ? (char)(tok[i] - 'a' + 'A') : tok[i];
    upname[nlen] = '\0';
    return cmd_fail(c, 555, "5.5.4 Unsupported parameter %s", upname);
}

/* params_parse - the parameters after a MAIL/RCPT path. */
static int params_parse(cmd_ctx *c, const char *p, const char *end)
{
    const char *tok;
    size_t toklen;
    const char *probe = p;
    if (!next_token(&probe, end, &tok, &toklen))
        return 0;
    if (!c->esmtp)
        return cmd_fail(c, 555, "5.5.4 Parameters not supported without EHLO");
    while (next_token(&p, end, &tok, &toklen)) {
        int rc = param_one(c, tok, toklen);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- MAIL/RCPT paths */

/* path_close - index of the '>' closing a path whose '<' is at open, skipping quoted strings. */
static size_t path_close(const char *a, size_t n, size_t open)
{
    bool inq = false;
    for (size_t j = open + 1; j < n; j++) {
        if (inq && a[j] == '\\')
            j++;
        else if (a[j] == '"')
            inq = !inq;
        else if (!inq && a[j] == '>')
            return j;
    }
    return n;
}

/* route_skip - length of a source route "@d1,@d2:" at s (RFC 5321 A-d-l), 0 if none, -1 if bad. */
static long route_skip(const char *s, size_t n)
{
    const char *colon;
    size_t start = 0, rlen;
    if (n == 0 || s[0] != '@')
        return 0;
    colon = memchr(s, ':', n);
    if (!colon)
        return -1;
    rlen = (size_t)(colon - s);
    for (size_t i = 0; i <= rlen; i++) {
        if (i < rlen && s[i] != ',')
            continue;
        if (i - start < 2 || s[start] != '@' ||
            smtp_domain_check(s + start + 1, i - start - 1, true, NULL, 0) < 0)
            return -1;
        start = i + 1;
    }
    return (long)rlen + 1;
}

/* path_parse - the text between '<' and '>' of MAIL FROM / RCPT TO. */
static int path_parse(cmd_ctx *c, const char *s, size_t n, bool rcpt)
{
    smtp_addr *path = &c->cmd->path;
    long skip;
    if (n == 0 && !rcpt) {
        path->local = xstrdup("");
        path->domain = xstrdup("");
        path->is_null = true;
        return 0;
    }
    skip = route_skip(s, n);
    if (skip < 0)
        return cmd_fail(c, 501, "5.1.3 Bad address syntax");
    s += skip, n -= (size_t)skip;
    if (rcpt && mem_ieq(s, n, "postmaster")) {
        path->local = xstrdup("Postmaster");
        path->domain = xstrdup("");
        return 0;
    }
    if (smtp_addr_parse(s, n, true, path, NULL, 0) < 0)
        return cmd_fail(c, 501, "5.1.3 Bad address syntax");
    return 0;
}

/* cmd_path - "FROM:<path> [params]" or "TO:<path> [params]". */
static int cmd_path(cmd_ctx *c, const char *prefix, const char *usage, bool rcpt)
{
    const char *a = c->args;
    size_t n = c->alen, plen = strlen(prefix), i, close;
    int rc;
    if (n < plen || !mem_ieq(a, plen, prefix))
        return cmd_fail(c, 501, "5.5.4 Syntax: %s", usage);
    i = plen;
    if (i < n && a[i] == ' ') /* "MAIL FROM: <a@b>", as Postfix tolerates */
        i++;
    if (i >= n || a[i] != '<')
        return cmd_fail(c, 501, "5.5.4 Syntax: %s", usage);
    close = path_close(a, n, i);
    if (close >= n || (close + 1 < n && !is_ws((unsigned char)a[close + 1])))
        return cmd_fail(c, 501, "5.5.4 Syntax: %s", usage);
    if (close + 1 - i > SMTP_PATH_MAX)
        return cmd_fail(c, 501, "5.1.3 Bad address syntax");
    rc = path_parse(c, a + i + 1, close - i - 1, rcpt);
    if (rc)
        return rc;
    return params_parse(c, a + close + 1, a + n);
}

/* ---- one check function per verb */

typedef int (*verb_fn)(cmd_ctx *c);

/* verb_noarg - DATA, RSET, QUIT, STARTTLS. */
static int verb_noarg(cmd_ctx *c)
{
    if (c->alen > 0)
        return cmd_fail(c, 501, "5.5.4 Syntax error, no parameters allowed");
    return 0;
}

/* verb_hello - HELO/EHLO: exactly one token of printable ASCII. */
static int verb_hello(cmd_ctx *c)
{
    const char *name = c->cmd->verb == SMTP_EHLO ? "EHLO" : "HELO";
    if (c->alen == 0 || !printable_ascii(c->args, c->alen) || memchr(c->args, ' ', c->alen))
        return cmd_fail(c, 501, "5.5.4 Syntax: %s hostname", name);
    c->cmd->arg = xstrndup(c->args, c->alen);
    return 0;
}

/* verb_optarg - NOOP, HELP: the argument, if any, is kept. */
static int verb_optarg(cmd_ctx *c)
{
    if (c->alen > 0)
        c->cmd->arg = xstrndup(c->args, c->alen);
    return 0;
}

/* verb_needarg - VRFY, EXPN, AUTH: the rest of the line is required and kept. */
static int verb_needarg(cmd_ctx *c)
{
    static const struct {
        enum smtp_verb verb;
        const char *usage;
    } usage[] = {
        {SMTP_VRFY, "VRFY address"}, {SMTP_EXPN, "EXPN list"}, {SMTP_AUTH, "AUTH mechanism [initial-response]"},
    };
    if (c->alen == 0) {
        for (size_t i = 0; i < SL_ARRAY_LEN(usage); i++)
            if (usage[i].verb == c->cmd->verb)
                return cmd_fail(c, 501, "5.5.4 Syntax: %s", usage[i].usage);
        return cmd_fail(c, 501, "5.5.4 Syntax error");
    }
    c->cmd->arg = xstrndup(c->args, c->alen);
    return 0;
}

/* verb_mail - MAIL FROM:<path> [params]. */
static int verb_mail(cmd_ctx *c)
{
    return cmd_path(c, "FROM:", "MAIL FROM:<address>", false);
}

/* verb_rcpt - RCPT TO:<path> [params]. */
static int verb_rcpt(cmd_ctx *c)
{
    return cmd_path(c, "TO:", "RCPT TO:<address>", true);
}

/* verb_bdat - BDAT size [LAST] (RFC 3030). */
static int verb_bdat(cmd_ctx *c)
{
    const char *p = c->args, *end = c->args + c->alen, *tok;
    size_t toklen;
    if (!next_token(&p, end, &tok, &toklen))
        return cmd_fail(c, 501, "5.5.4 Syntax: BDAT size [LAST]");
    while (toklen > 1 && tok[0] == '0') { /* chunk-size is 1*DIGIT: any number of leading zeros */
        tok++;
        toklen--;
    }
    if (parse_u64_digits(tok, toklen, &c->cmd->bdat_size) < 0)
        return cmd_fail(c, 501, "5.5.4 Syntax: BDAT size [LAST]");
    if (next_token(&p, end, &tok, &toklen)) {
        if (!mem_ieq(tok, toklen, "LAST"))
            return cmd_fail(c, 501, "5.5.4 Syntax: BDAT size [LAST]");
        c->cmd->bdat_last = true;
    }
    if (next_token(&p, end, &tok, &toklen))
        return cmd_fail(c, 501, "5.5.4 Syntax: BDAT size [LAST]");
    return 0;
}

/* verb_etrn - ETRN node (RFC 1985): "domain", "@domain" (the domain and its subdomains) or
 * "#queue" (a channel name); the argument is kept as written, the domain lower-cased. */
static int verb_etrn(cmd_ctx *c)
{
    const char *a = c->args;
    size_t n = c->alen;
    char err[128];
    if (n == 0 || memchr(a, ' ', n) || memchr(a, '\t', n))
        return cmd_fail(c, 501, "5.5.4 Syntax: ETRN [@]domain | #queue");
    if (a[0] == '#') {
        bool ok = n > 1 && n <= 64;
        for (size_t i = 1; ok && i < n; i++)
            ok = is_alpha((unsigned char)a[i]) || is_digit((unsigned char)a[i]) || strchr("_-.", a[i]);
        if (!ok)
            return cmd_fail(c, 501, "5.5.4 Syntax: ETRN [@]domain | #queue");
    } else {
        size_t at = a[0] == '@';
        if (n == at || a[at] == '[' || smtp_domain_check(a + at, n - at, false, err, sizeof err) < 0)
            return cmd_fail(c, 501, "5.5.4 Syntax: ETRN [@]domain | #queue");
    }
    c->cmd->arg = xmemdup0(a, n);
    if (a[0] != '#')
        str_lower(c->cmd->arg);
    return 0;
}

static const struct {
    const char *name;
    enum smtp_verb verb;
    verb_fn fn;
} verb_table[] = {
    {"HELO", SMTP_HELO, verb_hello},      {"EHLO", SMTP_EHLO, verb_hello},
    {"MAIL", SMTP_MAIL, verb_mail},       {"RCPT", SMTP_RCPT, verb_rcpt},
    {"DATA", SMTP_DATA, verb_noarg},      {"BDAT", SMTP_BDAT, verb_bdat},
    {"RSET", SMTP_RSET, verb_noarg},      {"NOOP", SMTP_NOOP, verb_optarg},
    {"QUIT", SMTP_QUIT, verb_noarg},      {"VRFY", SMTP_VRFY, verb_needarg},
    {"HELP", SMTP_HELP, verb_optarg},     {"STARTTLS", SMTP_STARTTLS, verb_noarg},
    {"AUTH", SMTP_AUTH, verb_needarg},    {"EXPN", SMTP_EXPN, verb_needarg},
    {"ETRN", SMTP_ETRN, verb_etrn},
};

/* line_is_hostile - an HTTP request or a header line sent to the SMTP port (cross-protocol attack). */
static bool line_is_hostile(const char *line, size_t len, size_t toklen)
{
    static const char *const http[] = {"GET", "POST", "CONNECT", "HEAD", "PUT"};
    if (toklen >= 2 && line[toklen - 1] == ':')
        return true;
    if (toklen >= len) /* an HTTP method must be followed by a space */
        return false;
    for (size_t i = 0; i < SL_ARRAY_LEN(http); i++)
        if (mem_ieq(line, toklen, http[i]))
            return true;
    return false;
}

/* line_has_controls - NUL, CR, LF, DEL or any other control character except TAB. */
static bool line_has_controls(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if ((ch < 32 && ch != '\t') || ch == 127)
            return true;
    }
    return false;
}

/* smtp_cmd_free - release what smtp_cmd_parse allocated in cmd and zero it. */
void smtp_cmd_free(smtp_cmd *cmd)
{
    if (!cmd)
        return;
    free(cmd->arg);
    smtp_addr_free(&cmd->path);
    free(cmd->envid);
    free(cmd->orcpt);
    free(cmd->solicit);
    memset(cmd, 0, sizeof(*cmd));
}

/*
 * smtp_cmd_parse - parse one command line (without CRLF); 0 or a reply code with the reply text.
 * On failure nothing stays allocated in cmd (only verb is set), so smtp_cmd_free is optional then.
 */
int smtp_cmd_parse(const char *line, size_t len, bool esmtp, smtp_cmd *cmd, char *reply, size_t replylen)
{
    cmd_ctx c = {.esmtp = esmtp, .cmd = cmd, .reply = reply, .replylen = replylen};
    size_t toklen = 0, i;
    verb_fn fn = NULL;
    int rc;
    memset(cmd, 0, sizeof(*cmd));
    cmd->verb = SMTP_UNKNOWN;
    if (reply && replylen > 0)
        reply[0] = '\0';
    while (toklen < len && !is_ws((unsigned char)line[toklen]))
        toklen++;
    if (line_is_hostile(line, len, toklen)) {
        cmd->verb = SMTP_HOSTILE;
        return 0;
    }
    for (i = 0; i < SL_ARRAY_LEN(verb_table); i++) {
        if (mem_ieq(line, toklen, verb_table[i].name)) {
            cmd->verb = verb_table[i].verb;
            fn = verb_table[i].fn;
            break;
        }
    }
    if (len > SMTP_CMD_TEXT_MAX)
        return cmd_fail(&c, 500, "5.5.2 Line too long");
    if (line_has_controls(line, len))
        return cmd_fail(&c, 500, "5.5.2 Invalid characters in command");
    if (!fn)
        return cmd_fail(&c, 500, "5.5.1 Command unrecognized");
    /* arguments: after the verb and its separator, trailing blanks dropped (clients send them) */
    c.args = line + toklen;
    c.alen = len - toklen;
    while (c.alen > 0 && is_ws((unsigned char)c.args[0]))
        c.args++, c.alen--;
    while (c.alen > 0 && is_ws((unsigned char)c.args[c.alen - 1]))
        c.alen--;
    rc = fn(&c);
    if (rc) {
        enum smtp_verb verb = cmd->verb;
        smtp_cmd_free(cmd);
        cmd->verb = verb;
    }
    return rc;
}
