/*
 * util.h - memory, growable buffers and small string helpers used by every component.
 * Allocation failure aborts the process (STYLE.md): callers never check for NULL.
 * All functions are thread-safe (no shared state).
 */
#ifndef SLUICE_UTIL_H
#define SLUICE_UTIL_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Result of every operation that can fail (DESIGN.md §3). */
typedef enum { SL_OK = 0, SL_TEMP = 1, SL_PERM = 2, SL_ERR = 3 } sl_result;

#define SL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* xmalloc - malloc that aborts on failure. */
void *xmalloc(size_t n);
/* xcalloc - zeroed allocation that aborts on failure. */
void *xcalloc(size_t nmemb, size_t size);
/* xrealloc - realloc that aborts on failure. */
void *xrealloc(void *p, size_t n);
/* xstrdup - strdup that aborts on failure; NULL gives NULL. */
char *xstrdup(const char *s);
/* xmemdup0 - copy exactly n bytes (NULs included) plus a terminating NUL. */
char *xmemdup0(const void *s, size_t n);
/* xstrndup - copy at most n bytes plus a terminating NUL. */
char *xstrndup(const char *s, size_t n);
/* xasprintf - allocate a formatted string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer, always NUL-terminated after len bytes. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} strbuf;

/* sb_init - an empty buffer that owns no memory yet. */
void sb_init(strbuf *sb);
/* sb_free - release the buffer's memory and reset it to empty. */
void sb_free(strbuf *sb);
/* sb_reset - empty the buffer, keeping its memory. */
void sb_reset(strbuf *sb);
/* sb_reserve - make room for n more bytes. */
void sb_reserve(strbuf *sb, size_t n);
/* sb_append - append n bytes. */
void sb_append(strbuf *sb, const void *p, size_t n);
/* sb_puts - append a NUL-terminated string. */
void sb_puts(strbuf *sb, const char *s);
/* sb_putc - append one byte. */
void sb_putc(strbuf *sb, char c);
/* sb_printf - append formatted text. */
void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sb_vprintf - va_list form of sb_printf. */
void sb_vprintf(strbuf *sb, const char *fmt, va_list ap);
/* sb_steal - hand the buffer's string to the caller (never NULL) and reset the buffer. */
char *sb_steal(strbuf *sb);

/* A growable array of owned strings. */
typedef struct {
    char **v;
    size_t n;
    size_t cap;
} strvec;

/* sv_push - append a copy of s. */
void sv_push(strvec *sv, const char *s);
/* sv_push_owned - append s, taking ownership. */
void sv_push_owned(strvec *sv, char *s);
/* sv_join - the strings joined with sep (caller frees; "" when empty). */
char *sv_join(const strvec *sv, const char *sep);
/* sv_free - free every string and the array. */
void sv_free(strvec *sv);
/* sv_contains_ci - whether sv holds s, compared case-insensitively (ASCII). */
bool sv_contains_ci(const strvec *sv, const char *s);

/* str_lower - ASCII-lowercase s in place; returns s. */
char *str_lower(char *s);
/* str_trim - strip ASCII whitespace at both ends in place; returns the start. */
char *str_trim(char *s);
/* str_ieq - ASCII case-insensitive equality; NULLs are equal only to each other. */
bool str_ieq(const char *a, const char *b);
/* str_has_prefix_ci - whether s starts with prefix, ignoring ASCII case. */
bool str_has_prefix_ci(const char *s, const char *prefix);
/* str_split_ws - split s at runs of spaces/tabs into sv (copies). Returns the count. */
size_t str_split_ws(const char *s, strvec *sv);

/* parse_size - parse a decimal byte count with optional K/M/G suffix; -1 on error. */
int parse_size(const char *s, uint64_t *out);
/* parse_uint - parse a decimal unsigned integer in [min,max]; -1 on error. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* parse_duration - "30", "30s", "5m", "2h", "1d" or ISO 8601 "PT4H"/"P1DT2H" into seconds; -1 on error. */
int parse_duration(const char *s, int64_t *seconds);

/* b64_decode - decode standard base64 (padding required, no whitespace) into out; -1 if malformed. */
int b64_decode(const char *in, size_t len, strbuf *out);
/* b64_encode - encode n bytes as standard base64, appended to out. */
void b64_encode(const void *p, size_t n, strbuf *out);

/* file_read - append a whole file to out; -1 with errno set on failure (out may hold a part). */
int file_read(const char *path, strbuf *out);
/* file_read_text - a whole file as a NUL-terminated string (caller frees); NULL with errno set. */
char *file_read_text(const char *path);

/* now_unix - wall-clock seconds. */
int64_t now_unix(void);
/* now_mono_ms - monotonic milliseconds, for timeouts and latency. */
int64_t now_mono_ms(void);
/* now_mono_ns - monotonic nanoseconds, for timing short operations. */
uint64_t now_mono_ns(void);
/* rfc5322_date - format t as an RFC 5322 date into buf (at least 64 bytes). */
void rfc5322_date(int64_t t, char *buf, size_t len);

/* fatal - print a message and exit(1). Only during start-up (STYLE.md). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
