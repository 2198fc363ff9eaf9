/*
 * maildir.h - local delivery into Maildir folders (channel "l"): write to tmp/, fsync, link or
 * rename into new/, fsync new/. Blocking: call from a worker thread, never from the loop.
 * Folders are ROOT/<domain>/<local part>/ (lower-cased), created on demand.
 */
#ifndef SLUICE_MAILDIR_H
#define SLUICE_MAILDIR_H
#include <stddef.h>

#include "core/util.h"

/*
 * maildir_deliver - store prefix (e.g. "Return-Path: <s>\r\nDelivered-To: a\r\n") followed by
 * data in the Maildir of addr under root. Line ends are written as LF (Maildir convention) when
 * lf_only, else as given. SL_OK, or SL_TEMP with err set (disk full, permission, I/O error).
 * A local part that could escape the root ("..", "/", leading ".") is SL_PERM. Files older than
 * 36 hours in the folder's tmp/ (left by a crash) are removed on the process's first delivery to
 * the folder and then at most once an hour.
 */
sl_result maildir_deliver(const char *root, const char *addr, const char *prefix, const char *data, size_t len,
                          int lf_only, char *err, size_t errlen);
/* maildir_deliver_folder - maildir_deliver into folder (a Sieve fileinto name; NULL or "INBOX":
 * the inbox), the Maildir++ subfolder ".name" of the mailbox, "/" in the name becoming ".";
 * a name that could escape the mailbox is SL_PERM. */
sl_result maildir_deliver_folder(const char *root, const char *addr, const char *folder, const char *prefix,
                                 const char *data, size_t len, int lf_only, char *err, size_t errlen);
/* maildir_folder_path - the directory of folder in addr's mailbox (see maildir_deliver_folder);
 * caller frees; NULL if unsafe. */
char *maildir_folder_path(const char *root, const char *addr, const char *folder);
/* maildir_path - the folder for addr under root; caller frees; NULL if addr is unsafe. */
char *maildir_path(const char *root, const char *addr);

#endif
