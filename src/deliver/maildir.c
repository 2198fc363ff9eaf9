/*
 * maildir.c - local delivery into Maildir folders (see maildir.h).
 * A message is written to tmp/ under a unique name, fsync'd, closed (close's result checked:
 * NFS reports write errors there), renamed into new/ and new/ is fsync'd, so once SL_OK is
 * returned the message survives a crash. Any failure removes the partial file and is SL_TEMP.
 * Files a crash left in tmp/ are removed once they are older than 36 hours (the Maildir
 * convention): a folder's tmp/ is swept when the process first delivers to it, then at most once
 * an hour. Blocking file I/O: worker threads only. The shared state is an atomic counter and the
 * table of sweep times (behind a mutex).
 */
#include "deliver/maildir.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Bytes staged before a write(2) when line ends are converted. */
#define MAILDIR_CHUNK 16384
/* A tmp/ file older than this was left behind by a crash (the Maildir convention: 36 hours). */
#define MAILDIR_TMP_MAX_AGE (36 * 3600)
/* How often one folder's tmp/ is swept at most, in milliseconds. */
#define MAILDIR_SWEEP_INTERVAL_MS (3600 * 1000)
#define MAILDIR_SWEEP_BUCKETS 1024

static atomic_ulong maildir_counter;

/* When each folder's tmp/ was last swept; one entry per folder delivered to, kept for the process. */
typedef struct sweep_entry {
    struct sweep_entry *next;
    int64_t last_ms;
    char dir[];
} sweep_entry;

static pthread_mutex_t sweep_mu = PTHREAD_MUTEX_INITIALIZER;
static sweep_entry *sweep_table[MAILDIR_SWEEP_BUCKETS];

/* maildir_unquote - the local part with surrounding quotes and backslash escapes removed; NULL if malformed. */
static char *maildir_unquote(const char *s, size_t n)
{
    if (n < 2 || s[0] != '"' || s[n - 1] != '"') return xstrndup(s, n);
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    for (size_t i = 1; i + 1 < n; i++) {
        if (s[i] == '\\') {
            if (i + 2 >= n) {
                sb_free(&sb);
                return NULL; /* the escape would swallow the closing quote */
            }
            i++;
        }
        sb_putc(&sb, s[i]);
    }
    return sb_steal(&sb);
}

/* maildir_name_safe - whether s can be one path component without leaving its parent. */
static bool maildir_name_safe(const char *s)
{
    if (!*s || s[0] == '.') return false; /* also "." and ".." */
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '/' || c < 0x20 || c == 0x7f) return false;
    }
    return true;
}

char *maildir_path(const char *root, const char *addr)
{
    if (!root || !addr) return NULL;
    const char *at = strrchr(addr, '@');
    if (!at) return NULL;
    char *local = maildir_unquote(addr, (size_t)(at - addr));
    char *domain = str_lower(xstrdup(at + 1));
    char *path = NULL;
    if (local && maildir_name_safe(local) && maildir_name_safe(domain))
        path = xasprintf("%s/%s/%s", root, domain, str_lower(local));
    free(local);
    free(domain);
    return path;
}

/* maildir_mkdir - mkdir that accepts an existing directory (and only a directory). */
static int maildir_mkdir(const char *path)
{
    if (mkdir(path, 0700) == 0) return 0;
    if (errno != EEXIST) return -1;
    struct stat st;
    if (stat(path, &st) < 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* maildir_mkdir_p - create path and its missing parents (mode 0700). */
static int maildir_mkdir_p(const char *path)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1; *s && rc == 0; s++) {
        if (*s != '/') continue;
        *s = '\0';
        rc = maildir_mkdir(p);
        *s = '/';
    }
    if (rc == 0) rc = maildir_mkdir(p);
    free(p);
    return rc;
}

/* maildir_create - make dir and its tmp/, new/ and cur/ subfolders. */
static int maildir_create(const char *dir)
{
    static const char *subs[] = {"tmp", "new", "cur"};
    if (maildir_mkdir_p(dir) < 0) return -1;
    for (size_t i = 0; i < SL_ARRAY_LEN(subs); i++) {
        char *sub = xasprintf("%s/%s", dir, subs[i]);
        int rc = maildir_mkdir(sub);
        free(sub);
        if (rc < 0) return -1;
    }
    return 0;
}

/* maildir_sweep_due - whether dir's tmp/ is to be swept at now_ms (first use, or an hour since the
 * last sweep); a true answer records the sweep. */
static bool maildir_sweep_due(const char *dir, int64_t now_ms)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = dir; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    bool due = false;
    pthread_mutex_lock(&sweep_mu);
    sweep_entry **head = &sweep_table[h % MAILDIR_SWEEP_BUCKETS], *e = *head;
    while (e && strcmp(e->dir, dir) != 0) e = e->next;
    if (!e) {
        size_t n = strlen(dir) + 1;
        e = xmalloc(sizeof *e + n);
        memcpy(e->dir, dir, n);
        e->next = *head;
        *head = e;
        due = true;
    } else if (now_ms - e->last_ms >= MAILDIR_SWEEP_INTERVAL_MS) {
        due = true;
    }
    if (due) e->last_ms = now_ms;
    pthread_mutex_unlock(&sweep_mu);
    return due;
}

/* maildir_clean_tmp - remove the regular files of dir/tmp older than MAILDIR_TMP_MAX_AGE at now;
 * returns how many were removed (best effort: what cannot be read or removed stays). */
static int maildir_clean_tmp(const char *dir, time_t now)
{
    char *tmp = xasprintf("%s/tmp", dir);
    DIR *d = opendir(tmp);
    free(tmp);
    if (!d) return 0;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (S_ISREG(st.st_mode) && now - st.st_mtime > MAILDIR_TMP_MAX_AGE && unlinkat(dirfd(d), de->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

/* maildir_sweep_tmp - clean dir's tmp/ when it is due. */
static void maildir_sweep_tmp(const char *dir)
{
    if (!maildir_sweep_due(dir, now_mono_ms())) return;
    int n = maildir_clean_tmp(dir, time(NULL));
    if (n > 0) log_info(NULL, "maildir_tmp_cleaned", "folder=\"%s\" removed=%d", dir, n);
}

/* maildir_unique_name - "<time>.M<usec>P<pid>Q<counter>.<host>", host with '/' and ':' escaped. */
static char *maildir_unique_name(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char host[256];
    if (gethostname(host, sizeof host) < 0) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    strbuf sb;
    sb_init(&sb);
    unsigned long q = atomic_fetch_add(&maildir_counter, 1);
    sb_printf(&sb, "%lld.M%ldP%ldQ%lu.", (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(), q);
    for (const char *p = host; *p; p++) {
        if (*p == '/')
            sb_puts(&sb, "\\057");
        else if (*p == ':')
            sb_puts(&sb, "\\072");
        else
            sb_putc(&sb, *p);
    }
    return sb_steal(&sb);
}

/* maildir_write_all - write n bytes, retrying short writes and EINTR. */
static int maildir_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes the message, converting CRLF to LF on the fly through a small staging buffer. */
typedef struct {
    int fd;
    int lf_only;
    bool pending_cr; /* a CR seen last: dropped if an LF follows, even across buffers */
    size_t n;
    char buf[MAILDIR_CHUNK];
} maildir_writer;

/* writer_byte - stage one output byte, flushing a full buffer. */
static int writer_byte(maildir_writer *w, char c)
{
    w->buf[w->n++] = c;
    if (w->n < sizeof w->buf) return 0;
    w->n = 0;
    return maildir_write_all(w->fd, w->buf, sizeof w->buf);
}

/* writer_put - write n bytes of message text. */
static int writer_put(maildir_writer *w, const char *p, size_t n)
{
    if (!w->lf_only) return maildir_write_all(w->fd, p, n);
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (w->pending_cr) {
            w->pending_cr = false;
            if (c != '\n' && writer_byte(w, '\r') < 0) return -1;
        }
        if (c == '\r') {
            w->pending_cr = true;
            continue;
        }
        if (writer_byte(w, c) < 0) return -1;
    }
    return 0;
}

/* writer_finish - write what is still staged (a trailing lone CR stays a CR). */
static int writer_finish(maildir_writer *w)
{
    if (!w->lf_only) return 0;
    if (w->pending_cr) {
        w->pending_cr = false;
        if (writer_byte(w, '\r') < 0) return -1;
    }
    size_t n = w->n;
    w->n = 0;
    return maildir_write_all(w->fd, w->buf, n);
}

/* maildir_write_file - write prefix and data into the open file fd. */
static int maildir_write_file(int fd, const char *prefix, const char *data, size_t len, int lf_only)
{
    maildir_writer *w = xmalloc(sizeof *w);
    w->fd = fd;
    w->lf_only = lf_only;
    w->pending_cr = false;
    w->n = 0;
    int rc = -1;
    if (prefix && writer_put(w, prefix, strlen(prefix)) < 0) goto out;
    if (writer_put(w, data, len) < 0) goto out;
    rc = writer_finish(w);
out:
    free(w);
    return rc;
}

/* maildir_fsync_dir - fsync a directory so a rename into it is durable. */
static int maildir_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

char *maildir_folder_path(const char *root, const char *addr, const char *folder)
{
    char *box = maildir_path(root, addr);
    if (!box || !folder || str_ieq(folder, "INBOX")) return box;
    /* Maildir++: "Lists/work" is the subfolder ".Lists.work" of the mailbox */
    char *name = xstrdup(folder);
    bool ok = strlen(name) <= 255;
    for (char *p = name; *p && ok; p++) {
        if (*p == '/') *p = '.';
        unsigned char c = (unsigned char)*p;
        ok = c >= 0x20 && c != 0x7f && !(*p == '.' && (p == name || p[-1] == '.' || !p[1]));
    }
    char *path = ok && *name ? xasprintf("%s/.%s", box, name) : NULL;
    free(name);
    free(box);
    return path;
}

/* maildir_mark_folder - the "maildirfolder" file that marks a Maildir++ subfolder. */
static void maildir_mark_folder(const char *dir)
{
    char *marker = xasprintf("%s/maildirfolder", dir);
    int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    free(marker);
}

sl_result maildir_deliver(const char *root, const char *addr, const char *prefix, const char *data, size_t len,
                          int lf_only, char *err, size_t errlen)
{
    return maildir_deliver_folder(root, addr, NULL, prefix, data, len, lf_only, err, errlen);
}

sl_result maildir_deliver_folder(const char *root, const char *addr, const char *folder, const char *prefix,
                                 const char *data, size_t len, int lf_only, char *err, size_t errlen)
{
    sl_result r = SL_TEMP;
    char *dir = maildir_folder_path(root, addr, folder);
    char *name = NULL, *tmp = NULL, *dst = NULL, *newdir = NULL;
    const char *what = NULL;
    int fd = -1, saved = 0;
    bool tmp_exists = false;
    if (err && errlen) err[0] = '\0';
    if (!dir) {
        if (err && errlen)
            snprintf(err, errlen, "unsafe mailbox name: %s%s%s", addr ? addr : "(null)", folder ? " folder " : "",
                     folder ? folder : "");
        r = SL_PERM;
        goto out;
    }
    if (maildir_create(dir) < 0) {
        what = "create folder";
        goto fail;
    }
    if (folder && !str_ieq(folder, "INBOX")) maildir_mark_folder(dir);
    maildir_sweep_tmp(dir);
    name = maildir_unique_name();
    tmp = xasprintf("%s/tmp/%s", dir, name);
    dst = xasprintf("%s/new/%s", dir, name);
    newdir = xasprintf("%s/new", dir);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        what = "create file";
        goto fail;
    }
    tmp_exists = true;
    if (maildir_write_file(fd, prefix, data, len, lf_only) < 0) {
        what = "write";
        goto fail;
    }
    if (fsync(fd) < 0) {
        what = "fsync";
        goto fail;
    }
    int rc = close(fd);
    fd = -1;
    if (rc < 0) {
        what = "close";
        goto fail;
    }
    if (rename(tmp, dst) < 0) {
        what = "rename";
        goto fail;
    }
    tmp_exists = false;
    if (maildir_fsync_dir(newdir) < 0) {
        /* not durable: withdraw it, the retry delivers it again */
        saved = errno;
        unlink(dst);
        errno = saved;
        what = "fsync new/";
        goto fail;
    }
    r = SL_OK;
    goto out;
fail:
    saved = errno;
    if (err && errlen) snprintf(err, errlen, "maildir %s %s: %s", what, dir, strerror(saved));
out:
    if (fd >= 0) close(fd);
    if (tmp_exists) unlink(tmp);
    free(dir);
    free(name);
    free(tmp);
    free(dst);
    free(newdir);
    return r;
}
