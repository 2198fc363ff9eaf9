/*
 * msgprep.c - preparing a locally submitted message (see msgprep.h).
 *
 * The header is parsed leniently, as sendmail does for local input: a field is "name:" with a
 * name of printable ASCII other than ':', continuation lines start with a blank, and the first
 * line that is neither ends the header (an empty line is then put in front of the body).
 */
#include "smtp/msgprep.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void msgprep_init(msgprep *m, bool ignore_dot)
{
    memset(m, 0, sizeof *m);
    m->ignore_dot = ignore_dot;
}

void msgprep_free(msgprep *m)
{
    sb_free(&m->raw);
}

bool msgprep_line(msgprep *m, const char *line, size_t len)
{
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    if (!m->ignore_dot && len == 1 && line[0] == '.') {
        m->ended = true;
        return true;
    }
    for (size_t i = 0; i < len && !m->eight_bit; i++)
        if ((unsigned char)line[i] & 0x80) m->eight_bit = true;
    for (const char *cr; (cr = memchr(line, '\r', len)); len -= (size_t)(cr + 1 - line), line = cr + 1) {
        sb_append(&m->raw, line, (size_t)(cr - line)); /* a bare CR inside a line ends it (never sent bare) */
        sb_puts(&m->raw, "\r\n");
    }
    sb_append(&m->raw, line, len);
    sb_puts(&m->raw, "\r\n");
    m->lines++;
    return false;
}

/* ---- address lists ---- */

/* Scanner state of one address-list element. */
typedef struct {
    strbuf plain; /* the element's text outside comments and angle brackets */
    strbuf angle; /* the last <...> of the element */
    bool has_angle;
} addr_elem;

/* elem_flush - the element's address (the angle address, else its plain text) into out; reset. */
static void elem_flush(addr_elem *e, strvec *out)
{
    strbuf *src = e->has_angle ? &e->angle : &e->plain;
    char *text = xstrdup(src->data ? src->data : "");
    char *a = str_trim(text);
    char *colon = e->has_angle && *a == '@' ? strrchr(a, ':') : NULL; /* a source route "@a,@b:user@c" */
    if (colon) a = colon + 1;
    if (*a) sv_push(out, a);
    free(text);
    sb_reset(&e->plain);
    sb_reset(&e->angle);
    e->has_angle = false;
}

/* skip_comment - past a (possibly nested) comment starting at s[i] == '('; returns the index after it. */
static size_t skip_comment(const char *s, size_t i)
{
    int depth = 0;
    for (; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1]) i++;
        else if (s[i] == '(') depth++;
        else if (s[i] == ')' && --depth == 0) return i + 1;
    }
    return i;
}

/* copy_quoted - a quoted string starting at s[i] == '"' appended to dst (quotes kept); the index after it. */
static size_t copy_quoted(const char *s, size_t i, strbuf *dst)
{
    sb_putc(dst, s[i++]);
    for (; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1]) {
            sb_append(dst, s + i, 2);
            i++;
            continue;
        }
        sb_putc(dst, s[i]);
        if (s[i] == '"') return i + 1;
    }
    return i;
}

/* copy_angle - an angle address starting at s[i] == '<' into dst (without the brackets); the index after it. */
static size_t copy_angle(const char *s, size_t i, strbuf *dst)
{
    sb_reset(dst);
    for (i++; s[i] && s[i] != '>'; i++) {
        if (s[i] == '"') {
            i = copy_quoted(s, i, dst) - 1;
            continue;
        }
        if (s[i] == '(') {
            i = skip_comment(s, i) - 1;
            continue;
        }
        if (!isspace((unsigned char)s[i])) sb_putc(dst, s[i]);
    }
    return s[i] ? i + 1 : i;
}

void msgprep_address_list(const char *value, strvec *out)
{
    addr_elem e;
    memset(&e, 0, sizeof e);
    size_t i = 0;
    while (value[i]) {
        char c = value[i];
        if (c == '(') {
            i = skip_comment(value, i);
        } else if (c == '"') {
            i = copy_quoted(value, i, &e.plain);
        } else if (c == '<') {
            i = copy_angle(value, i, &e.angle);
            e.has_angle = true;
        } else if (c == '[') { /* a domain literal may hold ':' */
            size_t end = i + strcspn(value + i, "]");
            sb_append(&e.plain, value + i, end - i + (value[end] == ']'));
            i = end + (value[end] == ']');
        } else if (c == ':' && !e.has_angle) { /* "group name:" - what came before was the group's name */
            sb_reset(&e.plain);
            i++;
        } else if (c == ',' || c == ';') {
            elem_flush(&e, out);
            i++;
        } else {
            if (!isspace((unsigned char)c)) sb_putc(&e.plain, c);
            else if (e.plain.len && e.plain.data[e.plain.len - 1] != ' ') sb_putc(&e.plain, ' ');
            i++;
        }
    }
    elem_flush(&e, out);
    sb_free(&e.plain);
    sb_free(&e.angle);
    /* plain text with blanks is a display name without an address ("Undisclosed recipients") */
    size_t k = 0;
    for (size_t j = 0; j < out->n; j++) {
        if (strchr(out->v[j], ' ') && out->v[j][0] != '"') {
            free(out->v[j]);
            continue;
        }
        out->v[k++] = out->v[j];
    }
    out->n = k;
}

/* ---- the header ---- */

/* field_name_len - the length of "name" when line starts a header field "name:", else 0. */
static size_t field_name_len(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && line[i] > 32 && line[i] < 127 && line[i] != ':') i++;
    return i > 0 && i < len && line[i] == ':' ? i : 0;
}

/* One header field: where it starts in raw, its length (CRLFs included) and its name length. */
typedef struct {
    size_t off, len, name_len;
} hfield;

/* Where the parts of the message are. */
typedef struct {
    hfield *f;
    size_t n;
    size_t body;       /* where the body starts */
    bool blank;        /* an empty line separated header and body */
    size_t skip;       /* bytes of a leading mbox "From " line */
} hlayout;

/* line_end - the end of the line starting at off (after its CRLF). */
static size_t line_end(const strbuf *raw, size_t off)
{
    const char *nl = memchr(raw->data + off, '\n', raw->len - off);
    return nl ? (size_t)(nl - raw->data) + 1 : raw->len;
}

/* layout - find the header fields and the body of raw. */
static void layout(const strbuf *raw, hlayout *h)
{
    memset(h, 0, sizeof *h);
    size_t off = 0;
    if (raw->len >= 5 && !memcmp(raw->data, "From ", 5)) off = h->skip = line_end(raw, 0);
    while (off < raw->len) {
        size_t end = line_end(raw, off);
        const char *p = raw->data + off;
        size_t n = end - off;
        if (n <= 2) { /* the empty line */
            h->blank = true;
            off = end;
            break;
        }
        bool cont = (p[0] == ' ' || p[0] == '\t') && h->n > 0;
        size_t nl = cont ? 0 : field_name_len(p, n);
        if (!cont && !nl) break;
        if (cont) {
            h->f[h->n - 1].len += n;
        } else {
            h->f = xrealloc(h->f, (h->n + 1) * sizeof *h->f);
            h->f[h->n++] = (hfield){off, n, nl};
        }
        off = end;
    }
    h->body = off;
}

/* field_is - whether field f of raw is called name. */
static bool field_is(const strbuf *raw, const hfield *f, const char *name)
{
    return f->name_len == strlen(name) && !strncasecmp(raw->data + f->off, name, f->name_len);
}

/* field_value - the unfolded value of f (caller frees). */
static char *field_value(const strbuf *raw, const hfield *f)
{
    strbuf v = {0};
    for (size_t i = f->off + f->name_len + 1; i < f->off + f->len; i++) {
        char c = raw->data[i];
        if (c != '\r' && c != '\n') sb_putc(&v, c);
    }
    return sb_steal(&v);
}

/* has_field - whether the header has a field called name. */
static bool has_field(const strbuf *raw, const hlayout *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (field_is(raw, &h->f[i], name)) return true;
    return false;
}

void msgprep_finish(const msgprep *m, bool extract, strvec *rcpts, const msgprep_fields *f, strbuf *out)
{
    hlayout h;
    layout(&m->raw, &h);
    const strbuf *raw = &m->raw;
    for (size_t i = 0; i < h.n; i++) {
        const hfield *fl = &h.f[i];
        bool bcc = field_is(raw, fl, "Bcc");
        if (extract && (bcc || field_is(raw, fl, "To") || field_is(raw, fl, "Cc"))) {
            char *v = field_value(raw, fl);
            msgprep_address_list(v, rcpts);
            free(v);
        }
        if (!(extract && bcc)) sb_append(out, raw->data + fl->off, fl->len);
    }
    const char *names[] = {"From", "Date", "Message-ID"};
    const char *values[] = {f->from, f->date, f->message_id};
    for (size_t k = 0; k < 3; k++)
        if (values[k] && !has_field(raw, &h, names[k])) sb_printf(out, "%s: %s\r\n", names[k], values[k]);
    sb_puts(out, "\r\n");
    if (!h.n && !h.blank) h.body = h.skip; /* no header at all: everything after a "From " line is body */
    if (raw->len > h.body) sb_append(out, raw->data + h.body, raw->len - h.body);
    free(h.f);
}
