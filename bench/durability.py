#!/usr/bin/python3
"""durability - what each MTA flushes to disk between the end of DATA and its 250 reply (issue 16).

    /usr/bin/python3 bench/durability.py [--mta sluice,postfix,exim,opensmtpd] [--sluice-bin PATH]

For each MTA: a private instance as benchmark 1 starts it (bench/harness.py), strace attached to
every process of it (-f, so the session processes forked later are followed), one message sent
by a raw SMTP client; then the flushing system calls (fsync, fdatasync, sync_file_range, sync,
syncfs, and opens with O_SYNC/O_DSYNC) that happened between the client writing "." and the
server writing its 250, each with the file it was made on (-yy), and the same calls after the
250. Needs root and strace. Progress on stderr, the report on stdout. Run by hand; its result is
in bench/README.md ("What each MTA makes durable before its 250").
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402

SYNC_RE = re.compile(r"\b(fsync|fdatasync|sync_file_range2?|syncfs|sync|msync)\(|O_(D)?SYNC")


def smtp(sock_file, line):
    """smtp - send a command line (unless None) and read the whole reply; (reply bytes, time after the write)."""
    if line is not None:
        sock_file.write(line + b"\r\n")
        sock_file.flush()
    t = time.time()
    first = reply = sock_file.readline()
    while reply[3:4] == b"-":
        reply = sock_file.readline()
        first += reply
    return first, t


def probe(mta, workdir, sink):
    """probe - one message through mta under strace; (flushes before the 250, flushes after it, the 250)."""
    mta.start()
    time.sleep(0.5)
    trace = os.path.join(workdir, mta.name + ".strace")
    pids = h.descendants(mta.root_pid())
    argv = ["strace", "-f", "-tt", "-yy", "-s", "0", "-o", trace,
            "-e", "trace=fsync,fdatasync,sync_file_range,syncfs,sync,msync,openat,open"]
    for p in pids:
        argv += ["-p", str(p)]
    st = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    h.registry_add(st.pid)
    time.sleep(1.5)
    try:
        with socket.create_connection(("127.0.0.1", mta.port), timeout=20) as s:
            f = s.makefile("rwb")
            smtp(f, None)
            smtp(f, b"EHLO probe.test")
            smtp(f, b"MAIL FROM:<a@x.test>")
            smtp(f, b"RCPT TO:<b@y.test>")
            smtp(f, b"DATA")
            f.write(b"Subject: durability probe\r\n\r\n" + (b"x" * 76 + b"\r\n") * 50)
            f.flush()
            time.sleep(0.3)
            reply, t_dot = smtp(f, b".")
            t_250 = time.time()
            smtp(f, b"QUIT")
        sink.wait_count(sink.count + 1, 20)
        time.sleep(1.0)
    finally:
        os.killpg(st.pid, signal.SIGINT)
        st.wait(10)
        mta.stop()
    before, after = [], []
    with open(trace) as f:
        for line in f:
            m = re.match(r"(\d+)\s+(\d+):(\d+):([\d.]+)\s+(.*)", line)
            if not m or not SYNC_RE.search(m.group(5)):
                continue
            if m.group(5).startswith(("openat", "open")) and "O_SYNC" not in m.group(5) and "O_DSYNC" not in m.group(5):
                continue
            lt = time.localtime(t_dot)
            day0 = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1))
            ts = day0 + int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
            call = re.sub(r"\s+", " ", m.group(5))[:160]
            if t_dot <= ts <= t_250:
                before.append(call)
            elif ts > t_250:
                after.append(call)
    sys.stderr.write("durability: %s: '.' written at %.6f, 250 read at %.6f\n" % (mta.name, t_dot, t_250))
    return before, after, reply.decode("ascii", "replace").strip()


def make_mta(kind, d, sink_port, sluice_bin):
    """make_mta - the instance of one MTA kind in directory d, relaying to the sink, as benchmark 1 makes it."""
    if kind == "sluice":
        return h.SluiceMTA(d, sink_port, 20, os.path.abspath(sluice_bin))
    if kind == "postfix":
        return h.PostfixMTA(d, sink_port, 20)
    if kind == "exim":
        return h.EximMTA(d, sink_port, 20)
    if kind == "opensmtpd":
        return h.OpenSMTPDMTA(d, sink_port, 20)
    raise h.HarnessError("unknown MTA %r (sluice, postfix, exim, opensmtpd)" % kind)


def main(argv):
    """main - probe each MTA of --mta in turn; 0, or 1 when the harness broke."""
    ap = argparse.ArgumentParser(prog="bench/durability.py")
    ap.add_argument("--mta", default="sluice,postfix,exim,opensmtpd")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (the strace files)")
    ap.add_argument("--sluice-bin", default=os.path.join(HERE, "..", "build-release", "sluice"))
    a = ap.parse_args(argv)
    if os.geteuid() != 0 or not shutil.which("strace"):
        sys.stderr.write("durability: needs root and strace\n")
        return 1
    parent = os.environ.get("BENCH_TMPDIR") or "/var/tmp"
    workdir = tempfile.mkdtemp(prefix="sluice-durability-", dir=parent)
    sink = h.Sink(workdir)
    status = 0
    try:
        for kind in [k.strip() for k in a.mta.split(",") if k.strip()]:
            d = os.path.join(workdir, kind)
            mta = make_mta(kind, d, sink.port, a.sluice_bin)
            before, after, reply = probe(mta, workdir, sink)
            print("%s: %s" % (kind, reply))
            print("  flushed between \".\" and the 250 (%d):" % len(before))
            for c in before:
                print("    " + c)
            print("  flushed after the 250, within 1 s of delivery (%d):" % len(after))
            for c in after[:12]:
                print("    " + c)
            sys.stdout.flush()
    except h.HarnessError as e:
        sys.stderr.write("durability: %s\n" % e)
        status = 1
    finally:
        sink.stop()
        if a.keep:
            sys.stderr.write("durability: kept %s\n" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
