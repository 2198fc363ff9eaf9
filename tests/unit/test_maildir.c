/*
 * test_maildir.c - Maildir delivery: byte-exact files in new/ (CRLF kept or converted), an
 * empty tmp/ afterwards, unique names, unsafe local parts rejected, and SL_TEMP (with the
 * partial file removed) when the folder cannot be created or the rename fails; files a crash left
 * in tmp/ removed after 36 hours.
 * Tests run as root, so "unwritable" is simulated with files where directories should be.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deliver/maildir.h"

typedef struct {
    char root[64];
} fixture;

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    strcpy(f->root, "/tmp/sluice-maildir-XXXXXX");
    if (!mkdtemp(f->root)) return -1;
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int teardown(void **state)
{
    fixture *f = *state;
    rm_tree(f->root);
    free(f);
    return 0;
}

/* dir_names - the names in path (without . and ..), in no particular order; -1 if unreadable. */
static int dir_names(const char *path, strvec *out)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) sv_push(out, de->d_name);
    closedir(d);
    return (int)out->n;
}

static int count_entries(const char *path)
{
    strvec v = {0};
    int n = dir_names(path, &v);
    sv_free(&v);
    return n;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    strbuf sb;
    sb_init(&sb);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) sb_append(&sb, buf, n);
    fclose(fp);
    *len = sb.len;
    return sb_steal(&sb);
}

/* the_message - the only file in folder/new (asserted), its contents and its name. */
static char *the_message(const char *folder, size_t *len, char **name)
{
    char *newdir = xasprintf("%s/new", folder);
    strvec v = {0};
    assert_int_equal(dir_names(newdir, &v), 1);
    char *path = xasprintf("%s/%s", newdir, v.v[0]);
    char *data = read_all(path, len);
    if (name) *name = xstrdup(v.v[0]);
    sv_free(&v);
    free(path);
    free(newdir);
    return data;
}

static void deliver_and_check(fixture *f, const char *addr, const char *folder_rel, const char *prefix, const char *data,
                              size_t len, int lf_only, const char *want, size_t want_len)
{
    char err[256] = "unset";
    assert_int_equal(maildir_deliver(f->root, addr, prefix, data, len, lf_only, err, sizeof err), SL_OK);
    assert_string_equal(err, "");
    char *folder = xasprintf("%s/%s", f->root, folder_rel);
    size_t got_len;
    char *got = the_message(folder, &got_len, NULL);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    char *tmp = xasprintf("%s/tmp", folder);
    char *cur = xasprintf("%s/cur", folder);
    assert_int_equal(count_entries(tmp), 0);
    assert_int_equal(count_entries(cur), 0);
    free(got);
    free(tmp);
    free(cur);
    free(folder);
}

static void test_crlf_kept(void **state)
{
    fixture *f = *state;
    const char *prefix = "Return-Path: <s@x.test>\r\nDelivered-To: alice@example.test\r\n";
    const char data[] = "Subject: hi\r\n\r\nbody\r\nwith a lone \r and \n\r\n";
    const char want[] = "Return-Path: <s@x.test>\r\nDelivered-To: alice@example.test\r\n"
                        "Subject: hi\r\n\r\nbody\r\nwith a lone \r and \n\r\n";
    deliver_and_check(f, "Alice@Example.TEST", "example.test/alice", prefix, data, sizeof data - 1, 0, want,
                      sizeof want - 1);
    struct stat st;
    char *folder = xasprintf("%s/example.test/alice", f->root);
    assert_int_equal(stat(folder, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    free(folder);
}

static void test_crlf_converted(void **state)
{
    fixture *f = *state;
    /* a CRLF split between prefix and data is still one line end; a lone CR stays */
    const char *prefix = "Return-Path: <s@x.test>\r\nX: y\r";
    const char data[] = "\nSubject: hi\r\n\r\nbody\r\nlone \r here\r\n\r";
    const char want[] = "Return-Path: <s@x.test>\nX: y\nSubject: hi\n\nbody\nlone \r here\n\r";
    deliver_and_check(f, "bob@example.test", "example.test/bob", prefix, data, sizeof data - 1, 1, want,
                      sizeof want - 1);
}

static void test_large_converted(void **state)
{
    fixture *f = *state;
    /* bigger than the staging buffer, with CRLFs straddling its boundaries */
    strbuf in, want;
    sb_init(&in);
    sb_init(&want);
    for (int i = 0; i < 20000; i++) {
        sb_printf(&in, "line %d of the message\r\n", i);
        sb_printf(&want, "line %d of the message\n", i);
    }
    deliver_and_check(f, "big@example.test", "example.test/big", NULL, in.data, in.len, 1, want.data, want.len);
    sb_free(&in);
    sb_free(&want);
}

static void test_unique_names(void **state)
{
    fixture *f = *state;
    char err[256];
    for (int i = 0; i < 5; i++) assert_int_equal(maildir_deliver(f->root, "c@d.test", "", "x\r\n", 3, 1, err, sizeof err), SL_OK);
    char *newdir = xasprintf("%s/d.test/c/new", f->root);
    strvec v = {0};
    assert_int_equal(dir_names(newdir, &v), 5);
    char pid[32];
    snprintf(pid, sizeof pid, "P%ldQ", (long)getpid());
    for (size_t i = 0; i < v.n; i++) {
        assert_non_null(strstr(v.v[i], ".M"));
        assert_non_null(strstr(v.v[i], pid));
        assert_null(strchr(v.v[i], '/'));
    }
    sv_free(&v);
    free(newdir);
}

static void test_quoted_local_parts(void **state)
{
    fixture *f = *state;
    char *p = maildir_path(f->root, "\"John Doe\"@Example.Test");
    char *want = xasprintf("%s/example.test/john doe", f->root);
    assert_string_equal(p, want);
    free(p);
    free(want);
    p = maildir_path(f->root, "\"a\\\"b\"@x.test");
    want = xasprintf("%s/x.test/a\"b", f->root);
    assert_string_equal(p, want);
    free(p);
    free(want);
    p = maildir_path("/r", "first.last@x.test");
    assert_string_equal(p, "/r/x.test/first.last");
    free(p);
}

static const char *const unsafe_addrs[] = {
    "@x.test",        "noat",        "..@x.test",       ".@x.test",     ".hidden@x.test", "a/b@x.test",
    "\"a/b\"@x.test", "\"..\"@x.test", "\"\"@x.test",   "\"\\.x\"@x.test", "a\x01" "b@x.test", "a\x7f@x.test",
    "tab\there@x.test", "a@../x",    "a@x/y",           "a@",           "a@.x.test",      "\"a\\\"@x.test",
};

static void test_unsafe_rejected(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < SL_ARRAY_LEN(unsafe_addrs); i++) {
        char err[256] = "";
        char *p = maildir_path(f->root, unsafe_addrs[i]);
        if (p) fprintf(stderr, "unsafe address accepted: %s -> %s\n", unsafe_addrs[i], p);
        assert_null(p);
        assert_int_equal(maildir_deliver(f->root, unsafe_addrs[i], "", "x\n", 2, 0, err, sizeof err), SL_PERM);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(count_entries(f->root), 0); /* nothing was created */
}

static void test_root_is_a_file(void **state)
{
    fixture *f = *state;
    char *file = xasprintf("%s/plainfile", f->root);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    char err[256] = "";
    assert_int_equal(maildir_deliver(file, "a@x.test", "", "x\n", 2, 0, err, sizeof err), SL_TEMP);
    assert_non_null(strstr(err, strerror(ENOTDIR)));
    free(file);
}

static void test_folder_parts_are_files(void **state)
{
    fixture *f = *state;
    /* the domain folder is a file */
    char *dom = xasprintf("%s/x.test", f->root);
    FILE *fp = fopen(dom, "w");
    assert_non_null(fp);
    fclose(fp);
    char err[256] = "";
    assert_int_equal(maildir_deliver(f->root, "a@x.test", "", "x\n", 2, 0, err, sizeof err), SL_TEMP);
    assert_true(err[0] != '\0');
    /* tmp/ is a file */
    char *user = xasprintf("%s/y.test/u", f->root);
    char *tmp = xasprintf("%s/tmp", user);
    assert_int_equal(maildir_deliver(f->root, "u@y.test", "", "x\n", 2, 0, err, sizeof err), SL_OK);
    rm_tree(tmp);
    fp = fopen(tmp, "w");
    assert_non_null(fp);
    fclose(fp);
    err[0] = '\0';
    assert_int_equal(maildir_deliver(f->root, "u@y.test", "", "x\n", 2, 0, err, sizeof err), SL_TEMP);
    assert_true(err[0] != '\0');
    free(dom);
    free(user);
    free(tmp);
}

static void test_rename_failure_cleans_tmp(void **state)
{
    fixture *f = *state;
    /* new/ on another file system: rename(2) fails with EXDEV after tmp/ was written */
    char other[] = "/dev/shm/sluice-maildir-XXXXXX";
    struct stat a, b;
    if (stat("/dev/shm", &b) < 0 || stat(f->root, &a) < 0 || a.st_dev == b.st_dev || !mkdtemp(other)) {
        skip();
        return;
    }
    char *folder = xasprintf("%s/z.test/u", f->root);
    char *newdir = xasprintf("%s/new", folder);
    char *tmp = xasprintf("%s/tmp", folder);
    char err[256] = "";
    assert_int_equal(maildir_deliver(f->root, "u@z.test", "", "x\n", 2, 0, err, sizeof err), SL_OK);
    rm_tree(newdir);
    assert_int_equal(symlink(other, newdir), 0);
    assert_int_equal(maildir_deliver(f->root, "u@z.test", "", "x\n", 2, 0, err, sizeof err), SL_TEMP);
    assert_non_null(strstr(err, strerror(EXDEV)));
    assert_int_equal(count_entries(tmp), 0);
    assert_int_equal(count_entries(other), 0);
    rm_tree(other);
    free(folder);
    free(newdir);
    free(tmp);
}

/* make_folder - root/domain/user with tmp/, new/ and cur/. */
static char *make_folder(const char *root, const char *domain, const char *user)
{
    char *d = xasprintf("%s/%s", root, domain);
    mkdir(d, 0700);
    char *folder = xasprintf("%s/%s", d, user);
    assert_int_equal(mkdir(folder, 0700), 0);
    static const char *subs[] = {"tmp", "new", "cur"};
    for (size_t i = 0; i < 3; i++) {
        char *sub = xasprintf("%s/%s", folder, subs[i]);
        assert_int_equal(mkdir(sub, 0700), 0);
        free(sub);
    }
    free(d);
    return folder;
}

/* plant - a file name in dir with its mtime age_hours back. */
static void plant(const char *dir, const char *name, int age_hours)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("partial", fp);
    assert_int_equal(fclose(fp), 0);
    struct timespec times[2];
    clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= (time_t)age_hours * 3600;
    times[1] = times[0];
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    free(path);
}

static bool exists(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    struct stat st;
    bool ok = lstat(path, &st) == 0;
    free(path);
    return ok;
}

/* Files a crash left in tmp/ more than 36 hours ago go on the process's first delivery to the
 * folder; a fresh one (a delivery in progress elsewhere) stays; the next sweep waits an hour. */
static void test_tmp_cleanup(void **state)
{
    fixture *f = *state;
    char *folder = make_folder(f->root, "old.test", "u");
    char *tmp = xasprintf("%s/tmp", folder);
    plant(tmp, "1000.M1P1Q1.crashed", 37);
    plant(tmp, "1000.M2P1Q2.fresh", 1);
    plant(tmp, "1000.M3P1Q3.almost", 35);
    char err[256] = "";
    assert_int_equal(maildir_deliver(f->root, "u@old.test", "", "x\n", 2, 0, err, sizeof err), SL_OK);
    assert_false(exists(tmp, "1000.M1P1Q1.crashed"));
    assert_true(exists(tmp, "1000.M2P1Q2.fresh"));
    assert_true(exists(tmp, "1000.M3P1Q3.almost"));
    assert_int_equal(count_entries(tmp), 2);
    /* within the hour the folder is not swept again */
    plant(tmp, "1000.M4P1Q4.crashed", 40);
    assert_int_equal(maildir_deliver(f->root, "u@old.test", "", "y\n", 2, 0, err, sizeof err), SL_OK);
    assert_true(exists(tmp, "1000.M4P1Q4.crashed"));
    /* another folder has its own first sweep */
    char *folder2 = make_folder(f->root, "old.test", "v");
    char *tmp2 = xasprintf("%s/tmp", folder2);
    plant(tmp2, "1000.M5P1Q5.crashed", 100);
    assert_int_equal(maildir_deliver(f->root, "v@old.test", "", "z\n", 2, 0, err, sizeof err), SL_OK);
    assert_int_equal(count_entries(tmp2), 0);
    free(folder);
    free(tmp);
    free(folder2);
    free(tmp2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crlf_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crlf_converted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_converted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quoted_local_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_is_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_parts_are_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_failure_cleans_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmp_cleanup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
