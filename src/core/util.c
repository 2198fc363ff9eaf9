/* util.c - memory, buffers and string helpers (see util.h). */
#include "core/util.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static void oom(void)
{
    static const char msg[] = "sluice: out of memory\n";
    fwrite(msg, 1, sizeof msg - 1, stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom();
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p) oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom();
    return q;
}

char *xstrdup(const char *s)
{
    if (!s) return NULL;
    return xstrndup(s, strlen(s));
}

char *xmemdup0(const void *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    size_t l = strnlen(s, n);
    char *p = xmalloc(l + 1);
    memcpy(p, s, l);
    p[l] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    strbuf sb;
    va_list ap;
    sb_init(&sb);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    return sb_steal(&sb);
}

void sb_init(strbuf *sb)
{
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
}

void sb_free(strbuf *sb)
{
    free(sb->data);
    sb_init(sb);
}

void sb_reset(strbuf *sb)
{
    sb->len = 0;
    if (sb->data) sb->data[0] = '\0';
}

void sb_reserve(strbuf *sb, size_t n)
{
    if (sb->len + n + 1 <= sb->cap) return;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + n + 1) cap *= 2;
    sb->data = xrealloc(sb->data, cap);
    sb->cap = cap;
}

void sb_append(strbuf *sb, const void *p, size_t n)
{
    sb_reserve(sb, n);
    if (n) memcpy(sb->data + sb->len, p, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void sb_puts(strbuf *sb, const char *s)
{
    sb_append(sb, s, strlen(s));
}

void sb_putc(strbuf *sb, char c)
{
    sb_append(sb, &c, 1);
}

void sb_vprintf(strbuf *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return;
    sb_reserve(sb, (size_t)n);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void sb_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(sb, fmt, ap);
    va_end(ap);
}

char *sb_steal(strbuf *sb)
{
    char *p = sb->data ? sb->data : xstrdup("");
    sb_init(sb);
    return p;
}

void sv_push(strvec *sv, const char *s)
{
    sv_push_owned(sv, xstrdup(s));
}

void sv_push_owned(strvec *sv, char *s)
{
    if (sv->n == sv->cap) {
        sv->cap = sv->cap ? sv->cap * 2 : 4;
        sv->v = xrealloc(sv->v, sv->cap * sizeof *sv->v);
    }
    sv->v[sv->n++] = s;
}

char *sv_join(const strvec *sv, const char *sep)
{
    strbuf b;
    sb_init(&b);
    for (size_t i = 0; i < sv->n; i++) {
        if (i) sb_puts(&b, sep);
        sb_puts(&b, sv->v[i]);
    }
    return sb_steal(&b);
}

void sv_free(strvec *sv)
{
    for (size_t i = 0; i < sv->n; i++) free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->n = sv->cap = 0;
}

bool sv_contains_ci(const strvec *sv, const char *s)
{
    for (size_t i = 0; i < sv->n; i++)
        if (strcasecmp(sv->v[i], s) == 0) return true;
    return false;
}

char *str_lower(char *s)
{
    for (char *p = s; *p; p++) *p = (char)tolower((unsigned char)*p);
    return s;
}

char *str_trim(char *s)
{
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

bool str_ieq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcasecmp(a, b) == 0;
}

bool str_has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

size_t str_split_ws(const char *s, strvec *sv)
{
    size_t count = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) break;
        const char *e = s;
        while (*e && *e != ' ' && *e != '\t') e++;
        sv_push_owned(sv, xstrndup(s, (size_t)(e - s)));
        count++;
        s = e;
    }
    return count;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s) return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (v < min || v > max) return -1;
    *out = v;
    return 0;
}

int parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s) return -1;
    size_t n = strlen(s);
    uint64_t mult = 1;
    char last = (char)toupper((unsigned char)s[n - 1]);
    if (last == 'K') mult = 1024;
    else if (last == 'M') mult = 1024 * 1024;
    else if (last == 'G') mult = 1024ULL * 1024 * 1024;
    char *num = xstrndup(s, mult == 1 ? n : n - 1);
    uint64_t v;
    int rc = parse_uint(num, 0, UINT64_MAX / mult, &v);
    free(num);
    if (rc) return -1;
    *out = v * mult;
    return 0;
}

/* parse an ISO 8601 duration body after 'P': nY nM nW nD, then 'T' nH nM nS */
static int parse_iso_duration(const char *s, int64_t *out)
{
    int64_t total = 0;
    bool in_time = false, any = false;
    while (*s) {
        if (*s == 'T' || *s == 't') {
            if (in_time) return -1;
            in_time = true;
            s++;
            continue;
        }
        if (*s < '0' || *s > '9') return -1;
        int64_t v = 0;
        while (*s >= '0' && *s <= '9') {
            if (v > 100000000) return -1;
            v = v * 10 + (*s++ - '0');
        }
        int64_t unit;
        switch (toupper((unsigned char)*s)) {
        case 'Y': unit = in_time ? -1 : 365 * 86400; break;
        case 'M': unit = in_time ? 60 : 30 * 86400; break;
        case 'W': unit = in_time ? -1 : 7 * 86400; break;
        case 'D': unit = in_time ? -1 : 86400; break;
        case 'H': unit = in_time ? 3600 : -1; break;
        case 'S': unit = in_time ? 1 : -1; break;
        default: return -1;
        }
        if (unit < 0) return -1;
        total += v * unit;
        any = true;
        s++;
    }
    if (!any) return -1;
    *out = total;
    return 0;
}

int parse_duration(const char *s, int64_t *seconds)
{
    if (!s || !*s) return -1;
    if (*s == 'P' || *s == 'p') return parse_iso_duration(s + 1, seconds);
    size_t n = strlen(s);
    int64_t mult = 1;
    switch (tolower((unsigned char)s[n - 1])) {
    case 's': mult = 1; n--; break;
    case 'm': mult = 60; n--; break;
    case 'h': mult = 3600; n--; break;
    case 'd': mult = 86400; n--; break;
    default: break;
    }
    char *num = xstrndup(s, n);
    uint64_t v;
    int rc = parse_uint(num, 0, 10ULL * 365 * 86400, &v);
    free(num);
    if (rc) return -1;
    *seconds = (int64_t)v * mult;
    return 0;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int b64_decode(const char *in, size_t len, strbuf *out)
{
    if (len % 4) return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_val(c)) < 0) {
                return -1;
            }
        }
        char b[3] = {(char)(v[0] << 2 | v[1] >> 4), (char)((v[1] & 15) << 4 | v[2] >> 2), (char)((v[2] & 3) << 6 | v[3])};
        sb_append(out, b, (size_t)(3 - pad));
    }
    if (!out->data) sb_append(out, "", 0);
    return 0;
}

void b64_encode(const void *p, size_t n, strbuf *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)b[i] << 16 | (i + 1 < n ? (unsigned)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=', i + 2 < n ? tab[v & 63] : '='};
        sb_append(out, q, 4);
    }
}

int file_read(const char *path, strbuf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[65536];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) sb_append(out, buf, (size_t)r);
    int e = errno;
    close(fd);
    errno = e;
    if (!out->data) sb_append(out, "", 0);
    return r < 0 ? -1 : 0;
}

char *file_read_text(const char *path)
{
    strbuf sb;
    sb_init(&sb);
    if (file_read(path, &sb) < 0) {
        int e = errno;
        sb_free(&sb);
        errno = e;
        return NULL;
    }
    return sb_steal(&sb);
}

int64_t now_unix(void)
{
    return (int64_t)time(NULL);
}

int64_t now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rfc5322_date(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf msg = {0};
    sb_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (log_is_json()) /* a log read by machines stays machine-readable to its last line */
        log_event(LOG_LVL_ERROR, NULL, "fatal", "error=\"%s\"", msg.data ? msg.data : "");
    else
        fprintf(stderr, "sluice: %s\n", msg.data ? msg.data : "");
    sb_free(&msg);
    exit(1);
}
