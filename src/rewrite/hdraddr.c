/*
 * hdraddr.c - completing header addresses that lack a domain (see hdraddr.h).
 *
 * The work is done in two steps: a walk of the message collects the offsets where "@domain" goes
 * (ascending), then, only if there are any, the output is the message copied with the domain
 * inserted at each. An address field is read as an RFC 5322 address-list (section 3.4, with the
 * obsolete forms: empty elements, routes in angle brackets, CFWS around dots): elements are
 * separated by ',' and ';', a ':' outside angle brackets starts a group (what came before it was
 * the group's display name). An element with an angle-addr is completed inside the brackets; one
 * without is completed when its tokens form a local part (word *("." word)), so a display name
 * standing alone ("Undisclosed recipients") is never taken for an address.
 */
#include "rewrite/hdraddr.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The insertion offsets found so far. */
typedef struct {
    size_t *v;
    size_t n, cap;
} posvec;

/* pos_push - one more insertion offset. */
static void pos_push(posvec *p, size_t off)
{
    if (p->n == p->cap) p->v = xrealloc(p->v, (p->cap = p->cap ? p->cap * 2 : 8) * sizeof *p->v);
    p->v[p->n++] = off;
}

static const char *const address_fields[] = {
    "From", "Sender", "Reply-To", "To", "Cc", "Bcc",
    "Resent-From", "Resent-Sender", "Resent-Reply-To", "Resent-To", "Resent-Cc", "Resent-Bcc",
    "Return-Receipt-To", "Disposition-Notification-To", "Errors-To",
};

bool hdraddr_is_address_field(const char *name, size_t name_len)
{
    if (name_len < 2 || !strchr("FfSsRrTtCcBbDdEe", name[0])) return false; /* most fields at one glance */
    for (size_t i = 0; i < sizeof address_fields / sizeof *address_fields; i++)
        if (strlen(address_fields[i]) == name_len && strncasecmp(address_fields[i], name, name_len) == 0) return true;
    return false;
}

/* ---- the header ---- */

/* One header field: its name and its value, continuation lines included, final line end excluded. */
typedef struct {
    size_t name, name_len;
    size_t value, value_end;
} hfield;

/* line_next - the offset after the line starting at off (after its LF, or end). */
static size_t line_next(const char *m, size_t off, size_t end)
{
    const char *nl = memchr(m + off, '\n', end - off);
    return nl ? (size_t)(nl - m) + 1 : end;
}

/* line_content_end - the end of the line starting at off, without its CR LF. */
static size_t line_content_end(const char *m, size_t off, size_t end)
{
    size_t e = line_next(m, off, end);
    if (e > off && m[e - 1] == '\n') e--;
    if (e > off && m[e - 1] == '\r') e--;
    return e;
}

/* field_next - the field starting at *pos within [*pos, end); false at the empty line ending the
 * header (then *pos is where the body starts) or at the end. A line that is neither a field nor
 * a continuation ends the header as well (it is body: RFC 5322 has no such header line). */
static bool field_next(const char *m, size_t end, size_t *pos, hfield *f)
{
    size_t p = *pos;
    if (p >= end) return false;
    size_t ce = line_content_end(m, p, end);
    if (ce == p) { /* the empty line */
        *pos = line_next(m, p, end);
        return false;
    }
    size_t i = p;
    while (i < ce && m[i] > 32 && m[i] < 127 && m[i] != ':') i++;
    if (i == p || i >= ce || m[i] != ':') return false; /* not a field: the body starts here */
    f->name = p;
    f->name_len = i - p;
    f->value = i + 1;
    f->value_end = ce;
    p = line_next(m, p, end);
    while (p < end && (m[p] == ' ' || m[p] == '\t')) { /* continuation lines */
        f->value_end = line_content_end(m, p, end);
        p = line_next(m, p, end);
    }
    *pos = p;
    return true;
}

/* ---- one address-list value ---- */

enum tok { TOK_END, TOK_WORD, TOK_DOT, TOK_AT, TOK_LITERAL, TOK_LT, TOK_GT, TOK_COMMA, TOK_SEMI, TOK_COLON,
           TOK_OTHER, TOK_BAD };

/* is_special - RFC 5322 specials and the characters that end an atom here. */
static bool is_special(unsigned char c)
{
    return c <= 32 || c == 127 || strchr("()<>[]:;@\\,.\"", c) != NULL;
}

/* skip_quoted - past the quoted string starting at i (m[i] == '"'); 0 when unterminated. */
static size_t skip_quoted(const char *m, size_t i, size_t end)
{
    for (i++; i < end; i++) {
        if (m[i] == '\\') i++;
        else if (m[i] == '"') return i + 1;
    }
    return 0;
}

/* skip_comment - past the comment starting at i (m[i] == '('; comments nest); 0 when unterminated. */
static size_t skip_comment(const char *m, size_t i, size_t end)
{
    unsigned depth = 0;
    for (; i < end; i++) {
        if (m[i] == '\\') i++;
        else if (m[i] == '(') depth++;
        else if (m[i] == ')' && --depth == 0) return i + 1;
    }
    return 0;
}

/* skip_cfws - past white space, line ends and comments from *i; false on an unterminated comment. */
static bool skip_cfws(const char *m, size_t *i, size_t end)
{
    size_t p = *i;
    for (;;) {
        while (p < end && (m[p] == ' ' || m[p] == '\t' || m[p] == '\r' || m[p] == '\n')) p++;
        if (p >= end || m[p] != '(') break;
        if (!(p = skip_comment(m, p, end))) return false;
    }
    *i = p;
    return true;
}

/* tok_next - the next token of [*i, end) (white space, line ends and comments skipped); its end in *tend. */
static enum tok tok_next(const char *m, size_t *i, size_t end, size_t *tend)
{
    if (!skip_cfws(m, i, end)) return TOK_BAD;
    size_t p = *i;
    if (p >= end) return TOK_END;
    unsigned char c = (unsigned char)m[p];
    size_t q;
    switch (c) {
    case '"':
        if (!(q = skip_quoted(m, p, end))) return TOK_BAD;
        *tend = q;
        return TOK_WORD;
    case '[':
        for (q = p + 1; q < end && m[q] != ']' && m[q] != '['; q++)
            if (m[q] == '\\') q++;
        if (q >= end || m[q] != ']') return TOK_BAD;
        *tend = q + 1;
        return TOK_LITERAL;
    case '.': *tend = p + 1; return TOK_DOT;
    case '@': *tend = p + 1; return TOK_AT;
    case '<': *tend = p + 1; return TOK_LT;
    case '>': *tend = p + 1; return TOK_GT;
    case ',': *tend = p + 1; return TOK_COMMA;
    case ';': *tend = p + 1; return TOK_SEMI;
    case ':': *tend = p + 1; return TOK_COLON;
    default:
        if (is_special(c)) {
            *tend = p + 1;
            return TOK_OTHER;
        }
        for (q = p; q < end && !is_special((unsigned char)m[q]); q++) {}
        *tend = q;
        return TOK_WORD;
    }
}

/* What one addr-spec (or the plain part of an element) looked like. */
typedef struct {
    int expect;      /* 0: a word may come, 1: a dot or '@' may come (a word was last), 2: in the domain */
    bool local_ok;   /* word *("." word) so far */
    bool any;        /* a token was seen */
    bool has_at;
    size_t last_end; /* end of the local part's last word */
} spec;

/* spec_token - one token of an addr-spec candidate. */
static void spec_token(spec *s, enum tok t, size_t tend)
{
    s->any = true;
    if (s->has_at) return; /* the domain part: whatever it is, the address has one */
    switch (t) {
    case TOK_WORD:
        if (s->expect == 1) s->local_ok = false; /* two words in a row: a phrase */
        s->expect = 1;
        s->last_end = tend;
        break;
    case TOK_DOT:
        if (s->expect != 1) s->local_ok = false;
        s->expect = 0;
        break;
    case TOK_AT:
        s->has_at = true;
        break;
    default:
        s->local_ok = false;
        break;
    }
}

/* spec_wants - whether s is a local part alone, to be completed after s->last_end. */
static bool spec_wants(const spec *s)
{
    return s->any && !s->has_at && s->local_ok && s->expect == 1;
}

/* field_addresses - the insertion offsets of one address-list value [i, end); false (nothing added)
 * when its syntax cannot be followed. */
static bool field_addresses(const char *m, size_t i, size_t end, posvec *out)
{
    size_t start_n = out->n;
    spec plain = {.local_ok = true}, angle = {.local_ok = true};
    bool in_angle = false, had_angle = false, route = false;
    for (;;) {
        size_t tend = i;
        enum tok t = tok_next(m, &i, end, &tend);
        if (t == TOK_BAD) goto fail;
        if (in_angle) {
            if (t == TOK_END) goto fail;
            if (t == TOK_GT) {
                in_angle = false;
                had_angle = true;
            } else if (t == TOK_AT && !angle.any) { /* obs-route "@a,@b:" */
                route = true;
            } else if (route) {
                if (t == TOK_COLON) {
                    route = false;
                    angle = (spec){.local_ok = true};
                }
            } else {
                spec_token(&angle, t, tend);
            }
            i = tend;
            continue;
        }
        if (t == TOK_END || t == TOK_COMMA || t == TOK_SEMI || t == TOK_COLON) {
            if (t == TOK_COLON && had_angle) goto fail; /* "a <b>: ..." */
            if (t != TOK_COLON) { /* an element ends: a ':' only says the phrase before was a group name */
                if (had_angle ? spec_wants(&angle) : spec_wants(&plain))
                    pos_push(out, had_angle ? angle.last_end : plain.last_end);
            }
            if (t == TOK_END) return true;
            plain = angle = (spec){.local_ok = true};
            had_angle = route = false;
            i = tend;
            continue;
        }
        if (t == TOK_LT) {
            if (had_angle) goto fail;
            in_angle = true;
        } else if (t == TOK_GT) {
            goto fail;
        } else if (!had_angle) {
            spec_token(&plain, t, tend);
        } else if (t != TOK_WORD && t != TOK_DOT) { /* after the angle-addr only comments belong */
            goto fail;
        }
        i = tend;
    }
fail:
    out->n = start_n;
    return false;
}

/* field_quick_ok - a field that plainly needs nothing: no quotes, comments, groups or brackets,
 * and exactly one '@' in every element (or no text at all); the precise reading is then skipped. */
static bool field_quick_ok(const char *m, size_t i, size_t end)
{
    size_t at = 0, text = 0;
    bool ok = true;
    for (; i < end; i++) {
        char c = m[i];
        if (c == '@') at++;
        else if (c == ',') ok = ok && at == 1, at = 0;
        else if (c == '"' || c == '(' || c == ':' || c == ';' || c == '<' || c == '\\' || c == '[') return false;
        else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') text++;
    }
    return text == 0 || (ok && at == 1);
}

/* ---- the MIME structure ---- */

/* What a header said about its entity's content. */
typedef struct {
    bool have_type;
    bool multipart, digest, rfc822, encoded;
    size_t boundary, boundary_len; /* offsets into the message (inside the Content-Type value) */
    bool boundary_quoted;
} ctinfo;

/* ci_token - the MIME token (RFC 2045) after CFWS at *i; its bounds in *s, *e; false if none. */
static bool ci_token(const char *m, size_t *i, size_t end, size_t *s, size_t *e)
{
    if (!skip_cfws(m, i, end)) return false;
    size_t p = *i, q = p;
    while (q < end && (unsigned char)m[q] > 32 && m[q] < 127 && !strchr("()<>@,;:\\\"/[]?=", m[q])) q++;
    *s = p;
    *e = q;
    *i = q;
    return q > p;
}

/* ci_is - whether m[s..e) is word (case-insensitive). */
static bool ci_is(const char *m, size_t s, size_t e, const char *word)
{
    return e - s == strlen(word) && strncasecmp(m + s, word, e - s) == 0;
}

/* content_type - read a Content-Type value [i, end) into ci. */
static void content_type(const char *m, size_t i, size_t end, ctinfo *ci)
{
    size_t ts, te, ss, se;
    if (!ci_token(m, &i, end, &ts, &te) || !skip_cfws(m, &i, end) || i >= end || m[i] != '/') return;
    i++;
    size_t tend;
    if (!ci_token(m, &i, end, &ss, &se)) return;
    ci->have_type = true;
    ci->multipart = ci_is(m, ts, te, "multipart");
    ci->digest = ci->multipart && ci_is(m, ss, se, "digest");
    ci->rfc822 = ci_is(m, ts, te, "message") && (ci_is(m, ss, se, "rfc822") || ci_is(m, ss, se, "global"));
    while (ci->multipart) { /* parameters: ; name = value */
        if (tok_next(m, &i, end, &tend) != TOK_SEMI) return;
        i = tend;
        size_t ns, ne;
        if (!ci_token(m, &i, end, &ns, &ne) || !skip_cfws(m, &i, end) || i >= end || m[i] != '=') return;
        i++;
        if (!skip_cfws(m, &i, end)) return;
        size_t vs, ve;
        bool quoted = i < end && m[i] == '"';
        if (quoted) {
            size_t q = skip_quoted(m, i, end);
            if (!q) return;
            vs = i + 1;
            ve = q - 1;
            i = q;
        } else if (!ci_token(m, &i, end, &vs, &ve)) {
            return;
        }
        if (ci_is(m, ns, ne, "boundary") && ve > vs && ve - vs <= 70) {
            ci->boundary = vs;
            ci->boundary_len = ve - vs;
            ci->boundary_quoted = quoted;
        }
    }
}

/* transfer_encoding - whether a Content-Transfer-Encoding value [i, end) encodes (base64, quoted-printable, other). */
static bool transfer_encoding(const char *m, size_t i, size_t end)
{
    size_t s, e;
    if (!ci_token(m, &i, end, &s, &e)) return false;
    return !(ci_is(m, s, e, "7bit") || ci_is(m, s, e, "8bit") || ci_is(m, s, e, "binary"));
}

/* Where the walk is. */
typedef struct {
    const char *m;
    bool inner;
    posvec *out;
} walk;

static void entity(walk *w, size_t start, size_t end, unsigned depth, bool message, bool digest_part);

/* is_delimiter - whether the line at off is "--boundary" (or its close "--boundary--"), ignoring trailing blanks. */
static bool is_delimiter(walk *w, const ctinfo *ci, size_t off, size_t end, bool *close)
{
    const char *m = w->m;
    size_t bl = ci->boundary_len;
    if (end - off < bl + 2 || m[off] != '-' || m[off + 1] != '-') return false;
    if (ci->boundary_quoted) { /* a quoted boundary may hold quoted-pairs: compare unescaped */
        size_t p = off + 2;
        for (size_t k = ci->boundary; k < ci->boundary + bl; k++, p++) {
            if (m[k] == '\\' && k + 1 < ci->boundary + bl) k++;
            if (p >= end || m[p] != m[k]) return false;
        }
        off = p;
    } else {
        if (memcmp(m + off + 2, m + ci->boundary, bl) != 0) return false;
        off += 2 + bl;
    }
    *close = end - off >= 2 && m[off] == '-' && m[off + 1] == '-';
    if (*close) off += 2;
    size_t ce = line_content_end(m, off, end);
    for (; off < ce; off++)
        if (m[off] != ' ' && m[off] != '\t') return false;
    return true;
}

/* multipart - the parts of a multipart body [start, end), each walked as an entity. */
static void multipart(walk *w, const ctinfo *ci, size_t start, size_t end, unsigned depth)
{
    size_t part = 0; /* start of the current part; 0: before the first delimiter */
    bool in_part = false;
    for (size_t off = start; off < end; off = line_next(w->m, off, end)) {
        bool close = false;
        if (!is_delimiter(w, ci, off, end, &close)) continue;
        if (in_part) { /* the part ends before the line end that precedes the delimiter */
            size_t pe = off;
            if (pe > part && w->m[pe - 1] == '\n') pe--;
            if (pe > part && w->m[pe - 1] == '\r') pe--;
            entity(w, part, pe, depth + 1, false, ci->digest);
        }
        if (close) return;
        part = line_next(w->m, off, end);
        in_part = true;
    }
    if (in_part) entity(w, part, end, depth + 1, false, ci->digest); /* no close delimiter: the rest */
}

/* entity - one MIME entity [start, end): its header (completed when it is a message's), then what
 * it contains when inner completion is on. */
static void entity(walk *w, size_t start, size_t end, unsigned depth, bool message, bool digest_part)
{
    ctinfo ci = {0};
    hfield f;
    size_t pos = start;
    while (field_next(w->m, end, &pos, &f)) {
        if (message && hdraddr_is_address_field(w->m + f.name, f.name_len) &&
            !field_quick_ok(w->m, f.value, f.value_end))
            field_addresses(w->m, f.value, f.value_end, w->out);
        if (!w->inner) continue;
        if (f.name_len == 12 && strncasecmp(w->m + f.name, "Content-Type", 12) == 0)
            content_type(w->m, f.value, f.value_end, &ci);
        else if (f.name_len == 25 && strncasecmp(w->m + f.name, "Content-Transfer-Encoding", 25) == 0)
            ci.encoded = transfer_encoding(w->m, f.value, f.value_end);
    }
    if (!w->inner || depth >= HDRADDR_MAX_DEPTH || pos >= end) return;
    if (!ci.have_type && digest_part) ci.rfc822 = true; /* RFC 2046 5.1.5: a digest's parts default to message/rfc822 */
    if (ci.encoded) return; /* an encoded message/rfc822 or multipart is not valid MIME: left alone */
    if (ci.rfc822) entity(w, pos, end, depth + 1, true, false);
    else if (ci.multipart && ci.boundary_len) multipart(w, &ci, pos, end, depth);
}

/* ---- the entry points ---- */

bool hdraddr_needed(const char *msg, size_t len, bool inner)
{
    hfield f;
    size_t pos = 0;
    while (field_next(msg, len, &pos, &f)) {
        if (hdraddr_is_address_field(msg + f.name, f.name_len) && !field_quick_ok(msg, f.value, f.value_end)) {
            posvec pos = {0}; /* the precise reading (display names, groups...): allocates only when it finds one */
            field_addresses(msg, f.value, f.value_end, &pos);
            free(pos.v);
            if (pos.n) return true;
        }
        if (inner && f.name_len == 12 && strncasecmp(msg + f.name, "Content-Type", 12) == 0) {
            ctinfo ci = {0};
            content_type(msg, f.value, f.value_end, &ci);
            if (ci.multipart || ci.rfc822) return true;
        }
    }
    return false;
}

/* keep_short_lines - drop the insertions (sorted offsets into msg) of every physical line that they
 * would make longer than RFC 5322's 998 octets (2.1.1): such an address is left as it came rather
 * than the line broken. Returns how many are kept (compacted in place). */
static size_t keep_short_lines(const char *msg, size_t len, size_t *v, size_t n, size_t add)
{
    size_t kept = 0;
    for (size_t k = 0; k < n;) {
        size_t start = v[k];
        while (start > 0 && msg[start - 1] != '\n') start--;
        size_t end = v[k];
        while (end < len && msg[end] != '\n') end++;
        size_t line = end - start - (end > start && msg[end - 1] == '\r' ? 1 : 0);
        size_t j = k;
        while (j < n && v[j] <= end) j++; /* the insertions on this line: v[k..j) */
        if (line + (j - k) * add <= 998)
            for (size_t i = k; i < j; i++) v[kept++] = v[i];
        k = j;
    }
    return kept;
}

size_t hdraddr_complete(const char *msg, size_t len, const char *domain, bool inner, strbuf *out)
{
    posvec pos = {0};
    walk w = {msg, inner, &pos};
    entity(&w, 0, len, 0, true, false);
    pos.n = keep_short_lines(msg, len, pos.v, pos.n, 1 + strlen(domain));
    size_t n = pos.n, from = 0;
    for (size_t k = 0; k < n; k++) {
        sb_append(out, msg + from, pos.v[k] - from);
        sb_putc(out, '@');
        sb_puts(out, domain);
        from = pos.v[k];
    }
    if (n) sb_append(out, msg + from, len - from);
    free(pos.v);
    return n;
}
