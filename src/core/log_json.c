/*
 * log_json.c - the JSON form of a log line (log_format=json; see log.h and doc/operations.md).
 *
 * The key=value text of an event is split back into fields. A value is a word, or a quoted
 * string that ends at a quote followed by the end of the line or by " key=" (the text form does
 * not escape quotes inside values, so a quote elsewhere is part of the value). Words that are not
 * key=value pairs are kept, in order, in the member "text". Every value is a JSON string, with
 * quotes, backslashes and control characters escaped and invalid UTF-8 replaced by U+FFFD
 * (core/json.c).
 *
 * Members, in order: ts, level, id (null when the line has none), event, session and queue_id
 * (when the line's id or its session= field is one), then the fields. A field whose key is one
 * of those names, or repeats an earlier key, is renamed: "id" in a bounce line (the DSN's own
 * queue id) becomes "dsn_id", other clashes get a "field_" prefix or a "_2", "_3" suffix.
 * Pure and thread-safe.
 */
#include "core/log.h"
#include "core/json.h"
#include "core/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const char *const reserved[] = {"ts", "level", "id", "event", "session", "queue_id", "text"};

/* member - ,"key":"value" */
static void member(strbuf *out, const char *key, const char *v, size_t n)
{
    sb_putc(out, ',');
    json_put_string(out, key, strlen(key));
    sb_putc(out, ':');
    json_put_string(out, v, n);
}

/* is_key_char - a character of a field key. */
static bool is_key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

/* key_at - the length of "key=" at s (the key alone), 0 when s does not start a field. */
static size_t key_at(const char *s)
{
    size_t k = 0;
    while (is_key_char(s[k])) k++;
    return k && s[k] == '=' ? k : 0;
}

/* quoted_end - where the quoted value starting after s[0] == '"' ends (index of its closing quote). */
static size_t quoted_end(const char *s)
{
    size_t last = 0;
    for (size_t i = 1; s[i]; i++) {
        if (s[i] != '"') continue;
        last = i;
        if (!s[i + 1] || (s[i + 1] == ' ' && key_at(s + i + 2))) return i;
    }
    return last ? last : strlen(s);
}

/* A field taken from the text. */
typedef struct {
    char *key;
    const char *v;
    size_t n;
} jfield;

/* field_key - the member name of key k (length klen) in an event's line, renamed when it clashes
 * ("session" is left alone: log_json_line decides whether it is the session member). */
static char *field_key(const char *event, const char *k, size_t klen, const strvec *used)
{
    char *key = xstrndup(k, klen);
    if (!strcmp(key, "id") && !strcmp(event, "bounce")) {
        free(key);
        key = xstrdup("dsn_id");
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(reserved); i++) {
        if (strcmp(key, reserved[i]) != 0 || !strcmp(key, "session")) continue;
        char *p = xasprintf("field_%s", key);
        free(key);
        key = p;
    }
    for (int n = 2; sv_contains_ci(used, key); n++) {
        char *p = xasprintf("%.*s_%d", (int)klen, k, n);
        free(key);
        key = p;
    }
    return key;
}

/* is_session_id - "S" and digits: the listener's session ids. */
static bool is_session_id(const char *s)
{
    return s && s[0] == 'S' && s[1] && strspn(s + 1, "0123456789") == strlen(s + 1);
}

/* is_queue_id - sixteen upper-case hexadecimal digits: the store's queue ids. */
static bool is_queue_id(const char *s)
{
    return s && strlen(s) == 16 && strspn(s, "0123456789ABCDEF") == 16;
}

/* split_fields - kv into fields (keys renamed), the words that are no field into text. */
static size_t split_fields(const char *event, const char *kv, jfield *f, size_t max, strbuf *text, strvec *used)
{
    size_t n = 0;
    const char *p = kv;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        size_t k = key_at(p);
        if (!k || n == max) { /* a word of free text */
            size_t w = strcspn(p, " ");
            if (text->len) sb_putc(text, ' ');
            sb_append(text, p, w);
            p += w;
            continue;
        }
        const char *vstart = p + k + 1;
        f[n].key = field_key(event, p, k, used);
        sv_push(used, f[n].key);
        if (*vstart == '"') {
            size_t e = quoted_end(vstart);
            f[n].v = vstart + 1;
            f[n].n = e > 0 ? e - 1 : 0;
            p = vstart + e + (vstart[e] == '"');
        } else {
            f[n].v = vstart;
            f[n].n = strcspn(vstart, " ");
            p = vstart + f[n].n;
        }
        n++;
    }
    return n;
}

void log_json_line(strbuf *out, const char *ts, const char *level, const char *id, const char *event, const char *kv)
{
    jfield f[64];
    strbuf text = {0};
    strvec used = {0};
    size_t n = split_fields(event, kv ? kv : "", f, SL_ARRAY_LEN(f), &text, &used);
    sb_puts(out, "{\"ts\":");
    json_put_string(out, ts, strlen(ts));
    member(out, "level", level, strlen(level));
    if (id) member(out, "id", id, strlen(id));
    else sb_puts(out, ",\"id\":null");
    member(out, "event", event, strlen(event));
    /* the session: the line's own id, else its session= field */
    bool have_session = is_session_id(id);
    if (have_session) member(out, "session", id, strlen(id));
    for (size_t i = 0; !have_session && i < n; i++) {
        if (strcmp(f[i].key, "session") != 0) continue;
        member(out, "session", f[i].v, f[i].n);
        f[i].key[0] = '\0';
        have_session = true;
    }
    if (is_queue_id(id)) member(out, "queue_id", id, strlen(id));
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(f[i].key, "session")) member(out, "field_session", f[i].v, f[i].n); /* a second session */
        else if (f[i].key[0]) member(out, f[i].key, f[i].v, f[i].n);
        free(f[i].key);
    }
    if (text.len) member(out, "text", text.data, text.len);
    sb_puts(out, "}\n");
    sb_free(&text);
    sv_free(&used);
}
