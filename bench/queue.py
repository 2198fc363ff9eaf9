#!/usr/bin/python3
"""queue.py - benchmark 4, queue scale: Sluice with 10,000 .. 1,000,000 queued messages.

For each queue size N:
  1. fill: smtp-source sends N small messages to u@dead.test; Sluice routes them to tcp_dead, an
     SMTP channel whose next hop is a loopback port with nothing listening, so each message gets
     one attempt (connection refused) and is deferred for two hours (backoff "pt2h");
  2. restart: SIGTERM, then start the daemon again on the same queue, and measure the time from
     the start to the first 220 greeting, to the first new message answered 250, and to the end of
     the start-up scan (the scheduler has every queued message: "queue stats" says recovery done);
     the daemon's RSS then, per queued message;
  3. decisions: M more messages to the same channel, after the scan: each is pushed into the
     channel's heap of N waiting messages, taken out for a job, fails and is pushed back; the
     daemon's own counters ("sluice queue stats") give the time per heap operation and per
     decision (kick: take the next due message and start its job) at that heap size.

    /usr/bin/python3 bench/queue.py [--sizes 10000,100000,1000000] [--decisions 2000]

Everything listens on 127.0.0.1 only; every wait is bounded; the daemon and smtp-source are
stopped and the work directory removed at the end (unless --keep).
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def write_conf(d, port, dead_port, log_level):
    os.makedirs(d, exist_ok=True)
    files = {
        "option.dat": "host_name=sluice.bench.test\nqueue_dir=%s/queue\nmaildir_root=%s/maildir\n"
                      "dns_servers=127.0.0.1:9\ninternal_networks=127.0.0.0/8\nlog_level=%s\n" % (d, d, log_level),
        "dispatcher.cnf": "[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\nPARAMETER=CHANNEL=tcp_local\n"
                          "MAX_CONNECTIONS=2000\nMAX_PER_CLIENT=1000\n" % port,
        "sluice.cnf": "dead.test $U%%$D@tcp_dead-daemon\n\ndefaults\n\n"
                      "tcp_dead smtp nomx daemon 127.0.0.1 port %d maxjobs 20 subdirs 64 backoff \"pt2h\"\n"
                      "tcp_dead-daemon\n\ntcp_local smtp\ntcp_local-daemon\n" % dead_port,
        "job_controller.cnf": "[POOL=DEFAULT]\njob_limit=20\n",
    }
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)


def stats(binary, d):
    """The daemon's "queue stats" as a dict of the figures we use."""
    out = subprocess.run([binary, "queue", "stats", "-C", d], capture_output=True, text=True, timeout=30).stdout
    r = {"raw": out}
    m = re.search(r"messages: (\d+)", out)
    r["messages"] = int(m.group(1)) if m else -1
    r["recovery_done"] = "recovery: done" in out
    m = re.search(r"heap operations: (\d+) \((\d+) ns", out)
    r["heap_ops"], r["heap_ns"] = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    m = re.search(r"decisions: (\d+) \((\d+) ns", out)
    r["decisions"], r["decide_ns"] = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    m = re.search(r"largest channel heap: (\d+)", out)
    r["heap_max"] = int(m.group(1)) if m else 0
    return r


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def send_one(port, timeout):
    """One message to u@dead.test as soon as the daemon answers; returns True on 250."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            time.sleep(0.01)
            continue
        try:
            f = s.makefile("rb")

            def reply():
                while True:
                    line = f.readline()
                    if not line:
                        raise OSError("closed")
                    if line[3:4] == b" ":
                        return line
            if not reply().startswith(b"220"):
                return False
            for cmd in (b"EHLO bench.test", b"MAIL FROM:<a@x.test>", b"RCPT TO:<u@dead.test>", b"DATA"):
                s.sendall(cmd + b"\r\n")
                reply()
            s.sendall(b"Subject: new\r\n\r\nafter the restart\r\n.\r\n")
            ok = reply().startswith(b"250")
            s.sendall(b"QUIT\r\n")
            return ok
        except OSError:
            time.sleep(0.01)
        finally:
            s.close()
    return False


def fill(a, d, port, n, log):
    """smtp-source N messages; then wait until each had its one attempt (decisions >= N)."""
    t0 = time.monotonic()
    src = h.spawn(["smtp-source", "-c", "-l", str(a.size), "-m", str(n), "-s", "20", "-f", "a@x.test",
                   "-t", "u@dead.test", "127.0.0.1:%d" % port], log, stdout=subprocess.DEVNULL)
    try:
        src.wait(timeout=60 + n / 100.0)
    except subprocess.TimeoutExpired:
        raise h.HarnessError("smtp-source did not finish filling %d messages" % n)
    t_accept = time.monotonic() - t0
    if src.returncode != 0:
        raise h.HarnessError("smtp-source failed: %s" % h.tail(log, 500))
    if not h.wait_until(lambda: stats(a.binary, d)["decisions"] >= n, 60 + n / 200.0, 0.5):
        raise h.HarnessError("the %d messages were not all attempted: %s" % (n, stats(a.binary, d)["raw"]))
    return t_accept, time.monotonic() - t0


def run_size(a, work, n):
    d = os.path.join(work, "sluice-%d" % n)
    port, dead_port = h.free_port(), h.free_port()
    write_conf(d, port, dead_port, "warn")
    log = os.path.join(work, "sluice-%d.log" % n)
    proc = h.spawn([a.binary, "serve", "-C", d], log)
    res = {"n": n}
    try:
        if not h.wait_until(lambda: h.smtp_greets(port), 20):
            raise h.HarnessError("sluice did not start: %s" % h.tail(log))
        sys.stderr.write("[queue] filling %d messages...\n" % n)
        res["fill_accept_s"], res["fill_s"] = fill(a, d, port, n, os.path.join(work, "fill-%d.log" % n))
        h.kill_group(proc, signal.SIGTERM, 60)
        proc = None
        # restart on the same queue, info logging for the "recovered" line
        write_conf(d, port, dead_port, "info")
        sys.stderr.write("[queue] restarting on %d messages...\n" % n)
        t0 = time.monotonic()
        proc = h.spawn([a.binary, "serve", "-C", d], log)
        if not h.wait_until(lambda: h.smtp_greets(port, timeout=5), 120, 0.005):
            raise h.HarnessError("sluice did not restart: %s" % h.tail(log))
        res["greet_s"] = time.monotonic() - t0
        if not send_one(port, 60):
            raise h.HarnessError("no 250 for a new message after the restart: %s" % h.tail(log))
        res["accept_s"] = time.monotonic() - t0
        if not h.wait_until(lambda: stats(a.binary, d)["recovery_done"], 600, 0.05):
            raise h.HarnessError("the start-up scan did not end in 600 s")
        res["scheduled_s"] = time.monotonic() - t0
        res["cpu_s"] = h.cpu_seconds(proc.pid)  # the daemon's CPU time so far: the scan's share of "sched s"
        st = stats(a.binary, d)
        res["queued"] = st["messages"]
        m = re.search(r"recovered messages=(\d+) secs=([0-9.]+)", h.tail(log, 20000))
        res["scan_found"], res["scan_s"] = (int(m.group(1)), float(m.group(2))) if m else (-1, float("nan"))
        res["rss_kib"] = rss_kib(proc.pid)
        # decisions against a heap of n waiting messages
        before = st
        src = h.spawn(["smtp-source", "-c", "-l", str(a.size), "-m", str(a.decisions), "-s", "10", "-f", "a@x.test",
                       "-t", "u@dead.test", "127.0.0.1:%d" % port], os.path.join(work, "dec-%d.log" % n),
                      stdout=subprocess.DEVNULL)
        src.wait(timeout=60 + a.decisions / 50.0)
        want = before["decisions"] + a.decisions
        h.wait_until(lambda: stats(a.binary, d)["decisions"] >= want, 60, 0.2)
        after = stats(a.binary, d)
        sys.stderr.write("[queue] sluice queue stats at %d:\n%s" % (n, after["raw"]))
        dd = after["decisions"] - before["decisions"]
        dh = after["heap_ops"] - before["heap_ops"]
        res["decisions"] = dd
        res["decide_ns"] = ((after["decide_ns"] * after["decisions"] - before["decide_ns"] * before["decisions"]) / dd
                            if dd > 0 else float("nan"))
        res["heap_ns"] = ((after["heap_ns"] * after["heap_ops"] - before["heap_ns"] * before["heap_ops"]) / dh
                          if dh > 0 else float("nan"))
        res["heap_max"] = after["heap_max"]
        res["queued_end"] = after["messages"]
        return res
    finally:
        if proc:
            h.kill_group(proc, signal.SIGTERM, 60)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000,1000000", help="queue sizes, comma-separated")
    p.add_argument("--decisions", type=int, default=2000, help="new messages for the decision cost")
    p.add_argument("--size", type=int, default=300, help="message size in bytes (smtp-source -l)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--binary", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                    "build-release", "sluice"))
    a = p.parse_args(argv)
    sizes = [int(x) for x in a.sizes.split(",") if x]
    work = tempfile.mkdtemp(prefix="sluice-queue-", dir=os.environ.get("BENCH_TMPDIR", "/var/tmp"))
    results, status = [], 0
    try:
        for n in sizes:
            results.append(run_size(a, work, n))
            if not a.keep:
                shutil.rmtree(os.path.join(work, "sluice-%d" % n), ignore_errors=True)
    except (h.HarnessError, OSError, subprocess.TimeoutExpired) as e:
        sys.stderr.write("queue: harness error: %s\n" % e)
        status = 1
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            sys.stderr.write("queue: work directory kept: %s\n" % work)
    if results:
        print("benchmark 4 - queue scale: N messages of %d bytes deferred for tcp_dead (next hop refuses), "
              "restart, then %d more" % (a.size, a.decisions))
        print("%9s %8s %9s %9s %9s %7s %11s %9s %10s %9s %12s %11s" % (
            "queued", "fill/s", "greet s", "250 s", "sched s", "cpu s", "scan found", "RSS MiB", "B/message",
            "heap max", "ns/heap op", "ns/decision"))
        for r in results:
            print("%9d %8.0f %9.3f %9.3f %9.3f %7.2f %11d %9.1f %10.0f %9d %12.0f %11.0f" % (
                r["n"], r["n"] / r["fill_s"], r["greet_s"], r["accept_s"], r["scheduled_s"], r["cpu_s"], r["scan_found"],
                r["rss_kib"] / 1024.0, r["rss_kib"] * 1024.0 / max(1, r["queued"]), r["heap_max"], r["heap_ns"],
                r["decide_ns"]))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
