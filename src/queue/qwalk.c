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

void qwalk_tree(const char *qdir, qwalk_fn fn, void *ctx)
{
    strvec chans = {0};
    qwalk_list(qdir, &chans);
    bool go = true;
    for (size_t c = 0; go && c < chans.n; c++) {
        if (!strcmp(chans.v[c], "tmp") || !strcmp(chans.v[c], "corrupt")) continue;
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
