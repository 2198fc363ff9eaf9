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
#include "dir/dir.h"
#include "jobs/sched.h"

/* control_answer_cb - the answer: status as for a process exit (0 ok, 1 not found or failed, 2 usage). */
typedef void (*control_answer_cb)(void *arg, int status, strbuf *out);

/*
 * control_queue_run - run `queue ARGV`: list [CH], show ID, hold ID, release ID, delete ID,
 * return ID, retry ID|CH, summary, stats (the scheduler's figures, then the directory's:
 * dir_counters of dir). cb runs exactly once, possibly before this returns; argv may be freed as
 * soon as this returns.
 */
void control_queue_run(sched *s, const sl_dir *dir, int argc, char **argv, control_answer_cb cb, void *arg);

#endif
