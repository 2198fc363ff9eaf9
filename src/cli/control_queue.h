/*
 * control_queue.h - the text protocol of `sluice queue` on a live daemon: the command's words
 * in, the exit status and the answer text out, in the same form as the offline tool
 * (queue/qadmin.c). It parses the words, calls the scheduler's typed administration
 * (jobs/sched.h) and formats what comes back; control.c carries it over the control socket.
 * Loop thread only.
 */
#ifndef SLUICE_CONTROL_QUEUE_H
#define SLUICE_CONTROL_QUEUE_H
#include "core/util.h"
#include "jobs/sched.h"

/* control_answer_cb - the answer: status as for a process exit (0 ok, 1 not found or failed, 2 usage). */
typedef struct sl_dir sl_dir;
typedef void (*control_answer_cb)(void *arg, int status, strbuf *out);

/*
 * control_queue_run - run `queue ARGV` (queue/qadmin.h's request: list, show, summary, stats, and
 * the actions hold, release, delete, return, retry on an ID or a selection; --json) on the
 * scheduler s, whose queue directory is qdir; stats adds the directory's counters (dir_counters of
 * dir, NULL for none). cb runs exactly once, possibly before this returns; argv may be freed as
 * soon as this returns.
 */
void control_queue_run(sched *s, const sl_dir *dir, const char *qdir, int argc, char **argv, control_answer_cb cb,
                       void *arg);

#endif
