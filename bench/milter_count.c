/*
 * milter_count.c - an LD_PRELOAD shim for the milter benchmark (benchmark 7, bench/README.md).
 *
 * Loaded into opendkim only, by bench/harness.py (which compiles it into the work directory
 * with `cc -shared -fPIC`). It does two things, so that what the milter saw is counted on the
 * milter's side, the same way for every MTA:
 *   - syslog(3) goes to the file named by $BENCH_SYSLOG_FILE (one line per call, written with one
 *     write(2) on an O_APPEND descriptor), since the benchmark machine need not run a syslog daemon
 *     and the benchmark must not touch the host's /dev/log;
 *   - every connection libmilter accepts adds a line "milter_accept" to the same file.
 * Any thread of the milter may call these; a line is one write(2), so lines never interleave.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

static int log_fd = -1;
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);

/* shim_init - open the log file and find the real accept functions, before any thread exists. */
__attribute__((constructor)) static void shim_init(void)
{
    const char *path = getenv("BENCH_SYSLOG_FILE");
    if (path) log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    real_accept = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    real_accept4 = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
}

/* shim_line - format one line and append it to the log file with a single write. */
static void shim_line(const char *fmt, va_list ap)
{
    char buf[2048];
    if (log_fd < 0) return;
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    if (n < 0) return;
    if ((size_t)n > sizeof buf - 2) n = (int)(sizeof buf - 2);
    buf[n++] = '\n';
    ssize_t w = write(log_fd, buf, (size_t)n);
    (void)w;
}

/* shim_note - shim_line with variable arguments. */
static void shim_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    shim_line(fmt, ap);
    va_end(ap);
}

/* openlog - nothing to open: lines go to the file. */
void openlog(const char *ident, int option, int facility)
{
    (void)ident, (void)option, (void)facility;
}

/* closelog - nothing to close. */
void closelog(void)
{
}

/* vsyslog - one line to the file (the priority is dropped). */
void vsyslog(int pri, const char *fmt, va_list ap)
{
    (void)pri;
    shim_line(fmt, ap);
}

/* syslog - one line to the file. */
void syslog(int pri, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsyslog(pri, fmt, ap);
    va_end(ap);
}

/* __vsyslog_chk - what programs built with _FORTIFY_SOURCE call for vsyslog. */
void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap)
{
    (void)flag;
    vsyslog(pri, fmt, ap);
}

/* __syslog_chk - what programs built with _FORTIFY_SOURCE call for syslog. */
void __syslog_chk(int pri, int flag, const char *fmt, ...)
{
    va_list ap;
    (void)flag;
    va_start(ap, fmt);
    vsyslog(pri, fmt, ap);
    va_end(ap);
}

/* accept - the real accept; a line for every connection accepted. */
int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    int c = real_accept ? real_accept(fd, addr, len) : -1;
    if (c >= 0) shim_note("milter_accept");
    return c;
}

/* accept4 - the real accept4; a line for every connection accepted. */
int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int c = real_accept4 ? real_accept4(fd, addr, len, flags) : -1;
    if (c >= 0) shim_note("milter_accept");
    return c;
}
