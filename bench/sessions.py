#!/usr/bin/python3
"""sessions.py - benchmark 3: hold many idle SMTP sessions (after EHLO) open against Sluice and
report its memory per session, and how fast a new client is still served.

    /usr/bin/python3 bench/sessions.py [--sessions 10000] [--binary build-release/sluice]

Only loopback is used; the daemon and every socket are closed at the end (bounded waits).
"""
import argparse
import os
import resource
import socket
import sys
import tempfile
import time
import shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_reply(s):
    data = b""
    while not (data.endswith(b"\r\n") and data.split(b"\r\n")[-2][3:4] == b" "):
        chunk = s.recv(4096)
        if not chunk:
            raise IOError("connection closed")
        data += chunk
    return data


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--binary", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                    "build-release", "sluice"))
    a = p.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, a.sessions + 1000)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < a.sessions + 100:
        sys.stderr.write("sessions: descriptor limit %d is too low for %d sessions\n" % (hard, a.sessions))
        return 1
    work = tempfile.mkdtemp(prefix="sluice-sessions-", dir=os.environ.get("BENCH_TMPDIR", "/var/tmp"))
    mta = h.SluiceMTA(os.path.join(work, "sluice"), h.free_port(), 10, a.binary)
    mta._write("dispatcher.cnf", "[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\n"
               "PARAMETER=CHANNEL=tcp_local\nMAX_CONNECTIONS=%d\nBACKLOG=4096\n" % (mta.port, a.sessions + 100))
    socks = []
    status = 0
    try:
        mta.start()
        pid = mta.root_pid()
        time.sleep(0.3)
        rss0, pss0 = rss_kib(pid), mta.pss()
        t0 = time.monotonic()
        for i in range(a.sessions):
            s = socket.create_connection(("127.0.0.1", mta.port), timeout=10)
            read_reply(s)
            s.sendall(b"EHLO client%d.bench.test\r\n" % i)
            read_reply(s)
            socks.append(s)
        t_open = time.monotonic() - t0
        time.sleep(1.0)
        rss1, pss1 = rss_kib(pid), mta.pss()
        # a new client while all of them are open
        t1 = time.monotonic()
        c = socket.create_connection(("127.0.0.1", mta.port), timeout=10)
        read_reply(c)
        t_greet = time.monotonic() - t1
        c.sendall(b"EHLO late.bench.test\r\n")
        read_reply(c)
        t_ehlo = time.monotonic() - t1
        c.close()
        per = (rss1 - rss0) / float(a.sessions)
        per_pss = (pss1 - pss0) / float(a.sessions)
        print("benchmark 3 - concurrent sessions: %d idle sessions after EHLO (opened in %.1f s)" %
              (a.sessions, t_open))
        print("sluice RSS %d KiB -> %d KiB, PSS %d -> %d KiB: %.2f KiB per session (RSS), %.2f KiB (PSS)" %
              (rss0, rss1, pss0, pss1, per, per_pss))
        print("a new client: greeting after %.1f ms, EHLO answered after %.1f ms" % (t_greet * 1000, t_ehlo * 1000))
        print("target <= 20 KiB per session: %s" % ("met" if per <= 20 else "NOT met"))
    except (h.HarnessError, OSError) as e:
        sys.stderr.write("sessions: harness error: %s\n" % e)
        status = 1
    finally:
        for s in socks:
            s.close()
        mta.stop()
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
