/*
 * json.h - writing JSON text: strings escaped as RFC 8259 requires (quotes, backslashes, control
 * characters), with bytes that are not UTF-8 replaced by U+FFFD so that the output is always
 * valid UTF-8. Used by the JSON log lines and the queue tools' --json output. Pure; any thread.
 */
#ifndef SLUICE_JSON_H
#define SLUICE_JSON_H
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

/* json_put_string - s (n bytes) as a JSON string, quotes included. */
void json_put_string(strbuf *out, const char *s, size_t n);
/* json_put_str - a NUL-terminated string as a JSON string; NULL gives null. */
void json_put_str(strbuf *out, const char *s);
/* json_put_member - "key": followed by the string s (NULL: null), preceded by a comma unless first. */
void json_put_member(strbuf *out, bool first, const char *key, const char *s);
/* json_put_int - "key": n, preceded by a comma unless first. */
void json_put_int(strbuf *out, bool first, const char *key, int64_t n);
/* json_put_time - "key": "2026-01-02T03:04:05Z" for unix time t, null when t <= 0. */
void json_put_time(strbuf *out, bool first, const char *key, int64_t t);

#endif
