/*
 * fiu_files.c - an LD_PRELOAD shim for scripts/stress.py: libfiu failure points for write(2) on
 * regular files only.
 *
 *   sluice/file/write        the write fails (EIO or ENOSPC) and writes nothing
 *   sluice/file/write/short  only the first half of the buffer is written (a short write)
 *
 * libfiu's own posix/io/rw/write point fails every write(2), also the one-byte wake-ups the
 * daemon writes to pipes and eventfds, which in reality cannot fail (a full non-blocking pipe
 * gives EAGAIN and already holds a wake-up); a lost wake-up leaves a finished commit unanswered
 * forever and the run measures nothing. Writes to descriptors 0-2 (the log) are never faulted:
 * the harness reads the log. The points are enabled like any libfiu point, e.g.
 *   fiu-run -x -c 'enable_random name=sluice/file/write,probability=0.01' ...
 * with this library in LD_PRELOAD (stress.py builds it with cc and puts it there).
 */
#define _GNU_SOURCE
#define FIU_ENABLE 1 /* fiu.h turns every point into a constant 0 without it */
#include <dlfcn.h>
#include <errno.h>
#include <fiu.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);

ssize_t write(int fd, const void *buf, size_t count)
{
    static write_fn real_write;
    if (!real_write) real_write = (write_fn)dlsym(RTLD_NEXT, "write");
    struct stat st;
    if (fd > 2 && count > 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if (fiu_fail("sluice/file/write")) {
            errno = (count & 1) ? EIO : ENOSPC;
            return -1;
        }
        if (count > 1 && fiu_fail("sluice/file/write/short")) count /= 2;
    }
    return real_write(fd, buf, count);
}

typedef ssize_t (*writev_fn)(int, const struct iovec *, int);

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    static writev_fn real_writev;
    if (!real_writev) real_writev = (writev_fn)dlsym(RTLD_NEXT, "writev");
    struct stat st;
    if (fd > 2 && iovcnt > 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if (fiu_fail("sluice/file/write")) {
            errno = (iovcnt & 1) ? EIO : ENOSPC;
            return -1;
        }
        if (iovcnt > 1 && fiu_fail("sluice/file/write/short")) iovcnt = 1; /* the first part only */
    }
    return real_writev(fd, iov, iovcnt);
}
