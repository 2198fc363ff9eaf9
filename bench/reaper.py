#!/usr/bin/python3
"""reaper - run a command as a child subreaper, so every process it leaves behind is reaped here.

    /usr/bin/python3 bench/reaper.py COMMAND [ARG...]

Exim forks a delivery process per message from the session's process, which may exit first; the
orphan would go to init and its CPU time would leave the MTA's process tree. Under this wrapper
(prctl PR_SET_CHILD_SUBREAPER) orphans are re-parented here instead, and waiting for them moves
their CPU time into this process's cutime/cstime, which harness.cpu_seconds counts. Exits with the
command's status once the command and every descendant are gone; SIGTERM and SIGINT are passed on
to the command. Called by harness.ReapedMTA (the harness's thread), standard library only.
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main(argv):
    """main - become a subreaper, start argv, reap until no child is left; the command's exit status."""
    if not argv:
        sys.stderr.write("usage: reaper.py COMMAND [ARG...]\n")
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.stderr.write("reaper: prctl(PR_SET_CHILD_SUBREAPER) failed: %s\n" % os.strerror(ctypes.get_errno()))
        return 1
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    while True:
        try:
            child, st = os.wait()
        except ChildProcessError:
            return status
        except InterruptedError:
            continue
        if child == pid:
            status = os.waitstatus_to_exitcode(st)
            status = status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
