/*
 * clamd.c - the clamd INSTREAM protocol engine (see clamd.h).
 */
#include "scan/clamd.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ANSWER 4096

void clamd_chunk_header(uint32_t n, unsigned char out[4])
{
    out[0] = (unsigned char)(n >> 24);
    out[1] = (unsigned char)(n >> 16);
    out[2] = (unsigned char)(n >> 8);
    out[3] = (unsigned char)n;
}

/* fail - -1 (garbage) or 1 (clamd's own error) with the reason in r. */
static int fail(scan_result *r, int rc, const char *fmt, const char *arg)
{
    free(r->detail);
    r->detail = xasprintf(fmt, arg);
    r->status = SCAN_FAILED;
    return rc;
}

/* printable - the answer holds only printable ASCII. */
static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < ' ' || (unsigned char)s[i] >= 0x7f) return false;
    return true;
}

int clamd_parse(const char *buf, size_t len, bool eof, scan_result *r)
{
    const char *nul = memchr(buf, '\0', len);
    const char *nl = memchr(buf, '\n', len);
    const char *e = nul && (!nl || nul < nl) ? nul : nl;
    if (!e) {
        if (len > MAX_ANSWER) return fail(r, -1, "clamd: %s", "answer too long");
        if (!eof) return 0;
        if (!len) return fail(r, -1, "clamd: %s", "connection closed without an answer");
        e = buf + len; /* an answer without its terminator at the end of the connection */
    }
    size_t n = (size_t)(e - buf);
    if (n > MAX_ANSWER || !printable(buf, n)) return fail(r, -1, "clamd: %s", "not a clamd answer");
    char *line = xstrndup(buf, n);
    const char *colon = strstr(line, ": ");
    const char *what = colon ? colon + 2 : line;
    size_t wl = strlen(what);
    int rc = 1;
    if (strcmp(what, "OK") == 0) {
        r->status = SCAN_DONE;
        r->hit = false;
    } else if (wl > 6 && strcmp(what + wl - 6, " FOUND") == 0) {
        r->status = SCAN_DONE;
        r->hit = true;
        free(r->detail);
        r->detail = xstrndup(what, wl - 6);
        free(r->verdict);
        r->verdict = xstrdup("virus");
    } else if (wl >= 5 && strcmp(what + wl - 5, "ERROR") == 0) {
        rc = fail(r, 1, "clamd: %s", line); /* e.g. "INSTREAM size limit exceeded. ERROR" */
    } else {
        rc = fail(r, -1, "clamd: unexpected answer \"%s\"", line);
    }
    free(line);
    return rc;
}
