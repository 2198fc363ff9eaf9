#!/usr/bin/python3
"""directory.py - benchmark 6: relay where every recipient is checked against slapd holding
100,000 users, Sluice (ldap_uri) against Postfix (ldap: maps, package postfix-ldap), same slapd,
same run.

Per invocation:
  - an LDIF of --users users (uid=uNNNNNN,ou=people,dc=bench,dc=test, mail uNNNNNN@users.bench.test,
    mailAlternateAddress alt-uNNNNNN@users.bench.test) under one mailDomain entry
    (associatedDomain users.bench.test), loaded offline with slapadd by
    tests/integration/peers/slapd-start.sh (etc/sluice.schema unchanged) with the cn=Monitor
    database on (SLAPD_MONITOR=1), so slapd's own search counter is read before and after each run;
  - smtp-sink on a loopback port (bench/harness.py), shared by every run;
  - per repetition and MTA (alternating), a fresh private instance relaying everything to the sink:
      Sluice: ldap_uri/ldap_base_dn/ldap_bind_dn/ldap_bind_password_file pointing at slapd, the
        rewrite rule `.  $U%$H@tcp_local-daemon` (the directory says users.bench.test is ours, so
        every recipient is looked up, then relayed);
      Postfix: relay_domains = ldap:ldap-domains.cf ((&(objectClass=mailDomain)(associatedDomain=%s))),
        relay_recipient_maps = ldap:ldap-users.cf ((|(mail=%s)(mailAlternateAddress=%s))), both bound
        as the same DN as Sluice, relay_transport = relay:[127.0.0.1]:SINK;
    and `direct` (the same client into smtp-sink, which accepts any recipient): the client's ceiling.
  - the load: our own client (below), --sessions threads with one persistent connection each,
    MAIL, --rcpts RCPTs (each awaited and timed), DATA, a --size body, until --messages messages;
    every recipient drawn at random (seeded per run: both MTAs get the same sequence) from the
    users, a --alt-share of them written as the alternate address.

Reported per run and as medians: msg/s (messages answered 250 / client wall time), e2e msg/s
(until the sink has them all), CPU ms per message of the MTA and of slapd (separately), LDAP
searches per accepted message (slapd's cn=Monitor search counter; Sluice's own counters from
`sluice queue stats` too), RCPT p50/p99, and how many of the recipients were repeats.

    /usr/bin/python3 bench/directory.py --binary build-release/sluice [--users 100000] [--messages 3000]
        [--rcpts 3] [--sessions 20] [--reps 3] [--mta sluice,postfix,direct]

Needs root (private Postfix), slapd, ldap-utils, postfix, postfix-ldap. Everything listens on
127.0.0.1; every process started is stopped; every wait is bounded. Ratios only: no assertions.
"""
import argparse
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402

SRC = os.path.abspath(os.path.join(HERE, ".."))
SUFFIX = "dc=bench,dc=test"
DOMAIN = "users.bench.test"
ROOT_DN = "cn=admin," + SUFFIX
ROOT_PW = "secret"


# ---------------------------------------------------------------- slapd

def write_ldif(path, users):
    """write_ldif - the suffix, the domain, ou=people and the users, parents first."""
    with open(path, "w") as f:
        f.write("dn: %s\nobjectClass: top\nobjectClass: domain\nobjectClass: mailDomain\ndc: bench\n"
                "associatedDomain: %s\n\n" % (SUFFIX, DOMAIN))
        f.write("dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n" % SUFFIX)
        for i in range(users):
            u = "u%06d" % i
            f.write("dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nobjectClass: mailUser\nuid: %s\n"
                    "cn: %s\nsn: Bench\nmail: %s@%s\nmailAlternateAddress: alt-%s@%s\n\n"
                    % (u, SUFFIX, u, u, u, DOMAIN, u, DOMAIN))


class Slapd:
    """slapd on 127.0.0.1:port with the users loaded offline (slapadd) and cn=Monitor on."""

    def __init__(self, workdir, users):
        self.dir = os.path.join(workdir, "slapd")
        os.makedirs(self.dir)
        self.port = h.free_port()
        self.uri = "ldap://127.0.0.1:%d" % self.port
        ldif = os.path.join(workdir, "users.ldif")
        t0 = time.monotonic()
        write_ldif(ldif, users)
        env = dict(os.environ, SLAPD_MONITOR="1", SLAPD_MAXSIZE=str(1 << 30))
        self.log = os.path.join(workdir, "slapd.log")
        self.proc = h.spawn(["bash", os.path.join(SRC, "tests/integration/peers/slapd-start.sh"), self.dir,
                             str(self.port), SUFFIX, ldif], self.log, env=env)
        ok = h.wait_until(lambda: self.proc.poll() is not None or self._answers(), 300, 0.2)
        if not ok or self.proc.poll() is not None:
            self.stop()
            raise h.HarnessError("slapd did not start: %s" % h.tail(self.log))
        self.load_s = time.monotonic() - t0
        h.check_loopback_only(self.proc.pid, "slapd")
        # warm up: read every entry once (mdb pages into the page cache), as a running server would be
        subprocess.run(["ldapsearch", "-x", "-LLL", "-H", self.uri, "-b", SUFFIX, "-z", "0", "dn"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def searches(self):
        """searches - slapd's completed search operations (cn=Monitor)."""
        r = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", self.uri, "-b", "cn=Search,cn=Operations,cn=Monitor",
                            "-s", "base", "monitorOpCompleted"], capture_output=True, text=True, timeout=30)
        m = re.search(r"monitorOpCompleted: (\d+)", r.stdout)
        if not m:
            raise h.HarnessError("cannot read slapd's search counter: %s%s" % (r.stdout, r.stderr))
        return int(m.group(1))  # this search is not counted yet: it completes after the value is read

    def cpu(self):
        st = h.read_stat(self.proc.pid)
        return (st["utime"] + st["stime"]) / h.CLK_TCK if st else 0.0

    def stop(self):
        h.kill_group(self.proc, signal.SIGTERM, 10)


# ---------------------------------------------------------------- the MTAs

class SluiceLdap(h.SluiceMTA):
    """harness.SluiceMTA with the LDAP backend pointed at the benchmark's slapd."""

    def __init__(self, workdir, sink_port, jobs, binary, slapd, log_level, connections):
        super().__init__(workdir, sink_port, jobs, binary, log_level)
        pw = os.path.join(self.conf, "ldap.pw")
        self._write("ldap.pw", ROOT_PW + "\n")
        with open(os.path.join(self.conf, "option.dat"), "a") as f:
            f.write("ldap_uri=%s\nldap_base_dn=%s\nldap_bind_dn=%s\nldap_bind_password_file=%s\n"
                    "ldap_connections=%d\n" % (slapd.uri, SUFFIX, ROOT_DN, pw, connections))
        self.binary = binary
        self.connections = connections

    def start(self, timeout=20.0):
        super().start(timeout)
        # the pool connects in the background: wait until every connection is up before measuring
        if not h.wait_until(lambda: self.dir_counters().get("connections.up", 0) >= self.connections, 15, 0.1):
            raise h.HarnessError("sluice did not connect to slapd: %s" % h.tail(self.log))

    def dir_counters(self):
        """dir_counters - {name: value} of the "directory ..." lines of `sluice queue stats`."""
        r = subprocess.run([self.binary, "queue", "stats", "-C", self.conf], capture_output=True, text=True,
                           timeout=30)
        out = {}
        for line in r.stdout.splitlines():
            if line.startswith("directory "):
                head, _, rest = line.partition(":")
                for kv in rest.split():
                    k, _, v = kv.partition("=")
                    if v.isdigit():
                        out["%s.%s" % (head.split()[1], k)] = int(v)
        return out


LDAP_CF = """\
# written by bench/directory.py
server_host = {uri}
version = 3
search_base = {base}
bind = yes
bind_dn = {bind_dn}
bind_pw = {bind_pw}
query_filter = {filter}
result_attribute = {attr}
"""


class PostfixLdap(h.PostfixMTA):
    """harness.PostfixMTA relaying users.bench.test, domains and recipients looked up in slapd."""

    def __init__(self, workdir, sink_port, jobs, slapd, extra=()):
        super().__init__(workdir, sink_port, jobs)
        users = os.path.join(self.etc, "ldap-users.cf")
        domains = os.path.join(self.etc, "ldap-domains.cf")
        with open(users, "w") as f:
            f.write(LDAP_CF.format(uri=slapd.uri, base=SUFFIX, bind_dn=ROOT_DN, bind_pw=ROOT_PW,
                                   filter="(|(mail=%s)(mailAlternateAddress=%s))", attr="mail"))
        with open(domains, "w") as f:
            f.write(LDAP_CF.format(uri=slapd.uri, base=SUFFIX, bind_dn=ROOT_DN, bind_pw=ROOT_PW,
                                   filter="(&(objectClass=mailDomain)(associatedDomain=%s))", attr="associatedDomain"))
        with open(os.path.join(self.etc, "main.cf"), "a") as f:
            f.write("relay_domains = ldap:%s\nrelay_recipient_maps = ldap:%s\n"
                    "relay_transport = relay:[127.0.0.1]:%d\n" % (domains, users, sink_port))
            for line in extra:  # --postfix-main, e.g. "in_flow_delay = 0"
                f.write(line + "\n")


# ---------------------------------------------------------------- the client

def read_reply(sock, buf):
    """read_reply - (code, text, rest of buffer) of one complete reply."""
    lines = []
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("connection closed by server")
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3] or b"0"), b"\n".join(lines).decode("latin-1"), buf


def recipients_plan(n_msgs, per_msg, users, alt_share, seed):
    """recipients_plan - the recipients of every message (distinct within a message), and how many
    of all the draws repeat an address drawn before."""
    rnd = random.Random(seed)
    plan, seen, repeats = [], set(), 0
    for _ in range(n_msgs):
        ids = rnd.sample(range(users), per_msg)
        rcpts = []
        for i in ids:
            repeats += i in seen
            seen.add(i)
            alt = rnd.random() < alt_share
            rcpts.append("%su%06d@%s" % ("alt-" if alt else "", i, DOMAIN))
        plan.append(rcpts)
    return plan, repeats


def run_client(port, plan, sessions, size, timeout=60.0):
    """run_client - send plan over sessions persistent connections; (accepted, rcpt latencies ms,
    errors, wall s)."""
    body = (b"From: <bench@x.test>\r\nTo: <list@users.bench.test>\r\nSubject: bench 6\r\n\r\n" +
            b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n" * max(1, size // 78))
    lock = threading.Lock()
    nxt = [0]
    lat, errors, accepted = [], [], [0]

    def session():
        mine = []
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code, text, buf = read_reply(sock, b"")
            sock.sendall(b"EHLO client.bench.test\r\n")
            code, text, buf = read_reply(sock, buf)
            while True:
                with lock:
                    if nxt[0] >= len(plan):
                        break
                    rcpts = plan[nxt[0]]
                    nxt[0] += 1
                sock.sendall(b"MAIL FROM:<bench@x.test>\r\n")
                code, text, buf = read_reply(sock, buf)
                if code != 250:
                    raise OSError("MAIL: " + text)
                ok = 0
                for r in rcpts:
                    t0 = time.perf_counter_ns()
                    sock.sendall(b"RCPT TO:<%s>\r\n" % r.encode())
                    code, text, buf = read_reply(sock, buf)
                    mine.append((time.perf_counter_ns() - t0) / 1e6)
                    if code == 250:
                        ok += 1
                    else:
                        with lock:
                            if len(errors) < 20:
                                errors.append("RCPT %s: %s" % (r, text))
                if not ok:
                    sock.sendall(b"RSET\r\n")
                    code, text, buf = read_reply(sock, buf)
                    continue
                sock.sendall(b"DATA\r\n")
                code, text, buf = read_reply(sock, buf)
                if code != 354:
                    raise OSError("DATA: " + text)
                sock.sendall(body + b".\r\n")
                code, text, buf = read_reply(sock, buf)
                if code == 250:
                    with lock:
                        accepted[0] += 1
                elif len(errors) < 20:
                    with lock:
                        errors.append("end of data: " + text)
            sock.sendall(b"QUIT\r\n")
            sock.close()
            with lock:
                lat.extend(mine)
        except OSError as e:
            with lock:
                errors.append(str(e))
                lat.extend(mine)

    t0 = time.monotonic()
    threads = [threading.Thread(target=session, daemon=True) for _ in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout * 10)
    return accepted[0], lat, errors, time.monotonic() - t0


# ---------------------------------------------------------------- one run

def pct(vals, p):
    if not vals:
        return None
    k = max(0, min(len(vals) - 1, int(round(p / 100.0 * len(vals) + 0.5)) - 1))
    return vals[k]


def run_one(a, kind, rep, slapd, sink, workdir, seq):
    d = os.path.join(workdir, "%03d-%s" % (seq, kind))
    if kind == "sluice":
        mta = SluiceLdap(d, sink.port, a.jobs, a.binary, slapd, a.sluice_log_level, a.ldap_connections)
    elif kind == "postfix":
        mta = PostfixLdap(d, sink.port, a.jobs, slapd, a.postfix_main)
    else:
        mta = h.DirectTarget(d, sink.port, a.jobs)
    plan, repeats = recipients_plan(a.messages, a.rcpts, a.users, a.alt_share, a.seed + rep)
    r = {"mta": kind, "rep": rep, "messages": a.messages, "rcpts": a.rcpts * a.messages, "repeats": repeats}
    try:
        mta.start()
        time.sleep(0.5)
        c0 = sink.snapshot()[0]
        dc0 = mta.dir_counters() if kind == "sluice" else {}
        s0, scpu0, cpu0 = slapd.searches(), slapd.cpu(), mta.cpu()
        t0 = time.monotonic()
        accepted, lat, errors, wall = run_client(mta.port, plan, a.sessions, a.size)
        ok, t_end = sink.wait_count(c0 + accepted, 60 + a.messages / 20.0)
        time.sleep(1.0)
        cpu1, scpu1, s1 = mta.cpu(), slapd.cpu(), slapd.searches()
        dc1 = mta.dir_counters() if kind == "sluice" else {}
        lat.sort()
        r.update(accepted=accepted, rate=accepted / wall, e2e_rate=accepted / (t_end - t0) if ok else None,
                 cpu_ms=(cpu1 - cpu0) * 1000.0 / max(1, accepted), slapd_cpu_ms=(scpu1 - scpu0) * 1000.0 / max(1, accepted),
                 searches=s1 - s0 - 1,  # the search that read s0 completed after it: not the MTA's
                 rcpt_p50=pct(lat, 50), rcpt_p99=pct(lat, 99), rcpt_max=lat[-1] if lat else None,
                 errors=errors[:5], n_errors=len(errors))
        r["searches_per_msg"] = r["searches"] / max(1, accepted)
        if dc1:
            r["sluice_counters"] = {k: dc1[k] - dc0.get(k, 0) for k in dc1}
    finally:
        mta.stop()
        sink.wait_quiet(0.5, 10)
        mta.remove(a.keep)
    sys.stderr.write("[bench6 %s] %-7s rep %d: %.0f msg/s, cpu %.3f ms/msg, slapd %.3f ms/msg, %.2f searches/msg, "
                     "RCPT p99 %.2f ms%s\n" % (time.strftime("%H:%M:%S"), kind, rep, r.get("rate", 0), r.get("cpu_ms", 0),
                                               r.get("slapd_cpu_ms", 0), r.get("searches_per_msg", 0),
                                               r.get("rcpt_p99") or 0,
                                               ", %d errors: %s" % (r["n_errors"], r["errors"][:2]) if r.get("n_errors") else ""))
    return r


def med(rows, key):
    vals = [x[key] for x in rows if x.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec):
    return "-" if v is None else spec % v


def report(a, results, slapd_load_s):
    out = ["benchmark 6 - directory: %d users in slapd, %d messages x %d recipients (random users, %d%% as "
           "mailAlternateAddress), %d sessions, %d repetition(s), medians" % (
               a.users, a.messages, a.rcpts, round(a.alt_share * 100), a.sessions, a.reps),
           "slapd: %d entries loaded with slapadd in %.1f s; recipients repeated within a run: %s of %d" % (
               a.users + 2, slapd_load_s, "/".join(str(r["repeats"]) for r in results if r["mta"] == a.mta[0]),
               a.messages * a.rcpts)]
    hdr = "%-8s %9s %9s %10s %12s %11s %9s %9s %9s %7s" % ("mta", "msg/s", "e2e/s", "cpu ms/msg", "slapd ms/msg",
                                                          "search/msg", "RCPT p50", "RCPT p99", "RCPT max", "errors")
    out += [hdr, "-" * len(hdr)]
    meds = {}
    for kind in a.mta:
        rows = [r for r in results if r["mta"] == kind]
        if not rows:
            continue
        m = meds[kind] = {k: med(rows, k) for k in ("rate", "e2e_rate", "cpu_ms", "slapd_cpu_ms", "searches_per_msg",
                                                     "rcpt_p50", "rcpt_p99", "rcpt_max")}
        out.append("%-8s %9s %9s %10s %12s %11s %9s %9s %9s %7d" % (
            kind, fmt(m["rate"], "%.0f"), fmt(m["e2e_rate"], "%.0f"),
            "-" if kind == "direct" else fmt(m["cpu_ms"], "%.3f"), fmt(m["slapd_cpu_ms"], "%.3f"),
            fmt(m["searches_per_msg"], "%.2f"), fmt(m["rcpt_p50"], "%.2f"), fmt(m["rcpt_p99"], "%.2f"),
            fmt(m["rcpt_max"], "%.2f"), sum(r.get("n_errors", 0) for r in rows)))
    if "sluice" in meds and "postfix" in meds:
        s, p = meds["sluice"], meds["postfix"]

        def ratio(k):
            return "-" if s[k] is None or not p[k] else "%.2f" % (s[k] / p[k])
        out.append("%-8s %9s %9s %10s %12s %11s %9s %9s" % ("S/P", ratio("rate"), ratio("e2e_rate"), ratio("cpu_ms"),
                                                            ratio("slapd_cpu_ms"), ratio("searches_per_msg"),
                                                            ratio("rcpt_p50"), ratio("rcpt_p99")))
    for r in results:
        if r.get("sluice_counters"):
            c = r["sluice_counters"]
            out.append("sluice rep %d, its own counters (differences over the run): %s" % (
                r["rep"], " ".join("%s=%d" % (k, v) for k, v in sorted(c.items()) if v)))
    return "\n".join(out)


def main(argv):
    ap = argparse.ArgumentParser(prog="bench/directory.py", description="benchmark 6: recipients checked in slapd")
    ap.add_argument("--binary", default=os.path.join(SRC, "build-release", "sluice"))
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--rcpts", type=int, default=3, help="recipients per message (default 3)")
    ap.add_argument("--alt-share", type=float, default=0.1, help="share of recipients written as the alternate address")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--ldap-connections", type=int, default=4, help="Sluice's ldap_connections (default 4, its default)")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--postfix-main", action="append", default=[], metavar="LINE",
                    help="a main.cf line added to Postfix's (repeatable), e.g. 'in_flow_delay = 0'")
    ap.add_argument("--mta", default="sluice,postfix,direct")
    ap.add_argument("--sluice-log-level", default="warn")
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    a.mta = [x for x in a.mta.split(",") if x]
    for tool in ("slapd", "slapadd", "ldapsearch", "smtp-sink", "postfix"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            sys.stderr.write("bench6: %s not found (scripts/setup.sh installs slapd ldap-utils postfix postfix-ldap)\n"
                             % tool)
            return 1
    if "postfix" in a.mta and "ldap" not in subprocess.run(["postconf", "-m"], capture_output=True, text=True).stdout:
        sys.stderr.write("bench6: Postfix has no ldap map type: apt-get install postfix-ldap\n")
        return 1
    parent = a.workdir or os.environ.get("BENCH_TMPDIR") or "/var/tmp"
    workdir = tempfile.mkdtemp(prefix="sluice-bench6-", dir=parent)
    slapd = sink = None
    results = []
    status = 0
    try:
        sys.stderr.write("[bench6] generating and loading %d users into slapd\n" % a.users)
        slapd = Slapd(workdir, a.users)
        sys.stderr.write("[bench6] slapd ready in %.1f s\n" % slapd.load_s)
        sink = h.Sink(workdir)
        seq = 0
        for rep in range(a.reps):
            kinds = [k for k in a.mta if k != "direct"]
            kinds = kinds if rep % 2 == 0 else kinds[::-1]
            for kind in kinds + (["direct"] if "direct" in a.mta else []):
                seq += 1
                results.append(run_one(a, kind, rep, slapd, sink, workdir, seq))
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        git = subprocess.run(["git", "-C", SRC, "describe", "--always", "--dirty"], capture_output=True, text=True)
        print("%s UTC, Sluice %s, load average at the end %s" % (time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                                                                 git.stdout.strip(), " ".join(load)))
        print(report(a, results, slapd.load_s))
    except h.HarnessError as e:
        sys.stderr.write("bench6: harness error: %s\n" % e)
        status = 1
    finally:
        if sink:
            sink.stop()
        if slapd:
            slapd.stop()
        if a.keep:
            sys.stderr.write("bench6: kept %s\n" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
