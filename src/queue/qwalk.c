/*
 * qwalk.c - the walk over a queue tree (see qwalk.h).
 */
#include "queue/qwalk.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

void qwalk_list(const char *dir, strvec *names)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') sv_push(names, e->d_name);
    closedir(d);
}

/* walk_subdir - the files of one QUEUE/<channel>/<NNN>; false when fn stopped the walk. */
static bool walk_subdir(const char *sdir, const char *channel, qwalk_fn fn, void *ctx)
{
    strvec files = {0};
    qwalk_list(sdir, &files);
    bool go = true;
    for (size_t k = 0; go && k < files.n; k++) {
        char *p = xasprintf("%s/%s", sdir, files.v[k]);
        go = fn(ctx, channel, files.v[k], p);
        free(p);
    }
    sv_free(&files);
    return go;
}

bool qwalk_is_channel(const char *name)
{
    /* pickup/ is writable by every local user: a directory planted there must never be read as
       queue files (they would skip every policy decision) */
    static const char *const not_channels[] = {"tmp", "corrupt", "pickup", "pickup-failed", "public"};
    if (name[0] == '.') return false;
    for (size_t i = 0; i < SL_ARRAY_LEN(not_channels); i++)
        if (!strcmp(name, not_channels[i])) return false;
    return true;
}

void qwalk_tree(const char *qdir, qwalk_fn fn, void *ctx)
{
    strvec chans = {0};
    qwalk_list(qdir, &chans);
    bool go = true;
    for (size_t c = 0; go && c < chans.n; c++) {
        if (!qwalk_is_channel(chans.v[c])) continue;
        char *cdir = xasprintf("%s/%s", qdir, chans.v[c]);
        strvec subs = {0};
        qwalk_list(cdir, &subs);
        for (size_t j = 0; go && j < subs.n; j++) {
            char *sdir = xasprintf("%s/%s", cdir, subs.v[j]);
            go = walk_subdir(sdir, chans.v[c], fn, ctx);
            free(sdir);
        }
        sv_free(&subs);
        free(cdir);
    }
    sv_free(&chans);
}
