#!/usr/bin/python3
"""storm.py - benchmark 2, the DSN storm: while thousands of messages to local users fail after
acceptance and their senders' MX is a tarpit (accepts TCP, never greets) or a black hole (SYNs
dropped), a steady stream of ordinary mail goes to a working MX. Measures the ordinary mail's
delivery latency (end of submission to arrival at the MX), its 250-reply latency and throughput in
these set-ups (--variants, default a,b,c,p0,p):
  (a)  Sluice, no storm,
  (b)  Sluice, storm, seed notification set-up (DSNs: process_dsn -> tcp_notify in NOTIFY_POOL),
  (c)  Sluice, storm, every message through one channel (tcp_local, one pool),
  (p0) Postfix (default configuration plus a transport map), no storm,
  (p)  Postfix, storm.

    /usr/bin/python3 bench/storm.py [--storm 5000] [--storm-rate 200] [--rate 20] [--seconds 30]
                                    [--sink-kind tarpit|blackhole] [--variants a,b,c,p0,p] [--binary build-release/sluice]

The storm is injected by our own paced client (--storm-rate messages/s over 20 persistent sessions,
starting 1 s before the ordinary stream) or, with --storm-rate 0, by smtp-source as fast as it can.
With --sink-kind blackhole the script re-executes itself in a new network namespace (unshare -n,
root only) where 10.99.0.2 (the deadspam.test MX) is an address whose packets are dropped.
Everything listens on loopback only (127.0.0.1, 127.0.0.66 tarpit, 127.0.0.67 working MX); every
process and thread is stopped at the end; every wait is bounded. STORM_DUMP=PREFIX writes
per-message timings of the ordinary mail to PREFIX.<set-up>.
"""
import argparse
import asyncio
import os
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

GOOD_ADDR, TARPIT_ADDR = "127.0.0.67", "127.0.0.66"
BLACKHOLE_ADDR = "10.99.0.2"   # --sink-kind blackhole: inside our network namespace, packets to it are dropped
NETNS_ENV = "STORM_IN_NETNS"
VARIANTS = ("a", "b", "c", "p0", "p")
NAMES = {"a": "(a) no storm", "b": "(b) storm, tcp_notify", "c": "(c) storm, one channel",
         "p0": "(p0) Postfix, no storm", "p": "(p) Postfix, storm"}


class Tarpit(threading.Thread):
    """Accepts connections on TARPIT_ADDR:port and never says anything; counts them."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((TARPIT_ADDR, port))
        self.sock.listen(1024)
        self.sock.settimeout(0.2)
        self.conns, self.total, self.peak = [], 0, 0
        self.stopping = False

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            self.total += 1
            self.peak = max(self.peak, len(self.conns))

    def stop(self):
        self.stopping = True
        self.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()


class SynSampler(threading.Thread):
    """Black hole: samples /proc/net/tcp (what `ss -tn state syn-sent dst ADDR` shows) every second.
    total = distinct sockets seen in SYN-SENT towards addr (a lower bound of the connect() attempts: one
    that begins and times out between two samples is missed; connect timeouts here are >= 30 s), peak =
    the most at one sample."""

    def __init__(self, addr, interval=1.0):
        super().__init__(daemon=True)
        self.hexaddr = socket.inet_aton(addr)[::-1].hex().upper()
        self.interval = interval
        self.seen, self.total, self.peak = set(), 0, 0
        self.stopping = threading.Event()

    def sample(self):
        now = set()
        try:
            with open("/proc/net/tcp") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "02" and parts[2].split(":")[0] == self.hexaddr:  # SYN_SENT
                        now.add((parts[1], parts[2], parts[9]))  # a set: a read may list a socket twice
        except OSError:
            pass
        self.seen |= now
        self.total, self.peak = len(self.seen), max(self.peak, len(now))

    def run(self):
        while not self.stopping.wait(self.interval):
            self.sample()

    def stop(self):
        self.stopping.set()
        self.join(3)


class GoodMX(threading.Thread):
    """A minimal SMTP server on GOOD_ADDR:port recording the arrival time of each Message-ID."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.arrivals = {}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()

    async def handle(self, reader, writer):
        writer.write(b"220 good.bench.test ESMTP\r\n")
        in_data, mid = False, None
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if in_data:
                    if line == b".\r\n":
                        in_data = False
                        if mid:
                            self.arrivals[mid] = time.monotonic()
                        mid = None
                        writer.write(b"250 2.0.0 ok\r\n")
                    elif line.lower().startswith(b"message-id:"):
                        mid = line.split(b":", 1)[1].strip()
                    continue
                cmd = line[:4].upper()
                if cmd == b"EHLO":
                    writer.write(b"250-good.bench.test\r\n250 PIPELINING\r\n")
                elif cmd == b"DATA":
                    in_data = True
                    writer.write(b"354 go\r\n")
                elif cmd == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self.handle, GOOD_ADDR, self.port,
                                                                        reuse_address=True))
        self.ready.set()
        self.loop.run_forever()

    def stop(self):
        def shut():
            self.server.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(shut)
        self.join(2)


class SmtpConn:
    """One client SMTP session (no pipelining), bounded by a socket timeout."""

    def __init__(self, port, helo, timeout=30.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.s.makefile("rb")
        if not self.reply().startswith(b"220"):
            raise IOError("no greeting")
        self.s.sendall(b"EHLO " + helo + b"\r\n")
        self.reply()

    def reply(self):
        while True:
            line = self.f.readline()
            if not line:
                raise IOError("connection closed")
            if line[3:4] != b"-":
                return line

    def close(self):
        try:
            self.s.sendall(b"QUIT\r\n")
            self.reply()
        except OSError:
            pass
        self.f.close()
        self.s.close()


STORM_BODY = b"".join(b"%s\r\n" % (b"spam line %03d " % i + b"y" * 60) for i in range(25))  # ~1.9 KB


class StormClient:
    """The paced storm: n messages spammer@deadspam.test -> user@local.test, message i due at
    start + i/rate, over `sessions` persistent sessions (message i on session i % sessions). A session
    behind schedule sends at once (catches up). Counts 250s, other replies and errors."""

    def __init__(self, port, n, rate, sessions=20):
        self.port, self.n, self.rate, self.sessions = port, n, rate, sessions
        self.accepted = self.refused = self.errors = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.start_t = self.end_t = None
        self.threads = []

    def start(self):
        self.start_t = time.monotonic()
        self.threads = [threading.Thread(target=self.worker, args=(k,), daemon=True) for k in range(self.sessions)]
        for t in self.threads:
            t.start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self):
        for t in self.threads:
            t.join()
        self.end_t = time.monotonic()

    def count(self, what):
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)

    def worker(self, k):
        conn = None
        for i in range(k, self.n, self.sessions):
            if self.stopping.is_set():
                break
            delay = self.start_t + i / self.rate - time.monotonic()
            if delay > 0 and self.stopping.wait(delay):
                break
            try:
                if conn is None:
                    conn = SmtpConn(self.port, b"storm%d.deadspam.test" % k)
                conn.s.sendall(b"MAIL FROM:<spammer@deadspam.test>\r\n")
                ok = conn.reply().startswith(b"250")
                conn.s.sendall(b"RCPT TO:<user@local.test>\r\n")
                ok = conn.reply().startswith(b"250") and ok
                conn.s.sendall(b"DATA\r\n")
                if not conn.reply().startswith(b"354"):
                    self.count("refused")
                    conn.s.sendall(b"RSET\r\n")
                    conn.reply()
                    continue
                conn.s.sendall(b"From: spammer@deadspam.test\r\nTo: user@local.test\r\nMessage-ID: <storm-%d@deadspam.test>\r\n"
                               b"Subject: storm %d\r\n\r\n" % (i, i) + STORM_BODY + b".\r\n")
                self.count("accepted" if conn.reply().startswith(b"250") and ok else "refused")
            except (OSError, IOError):
                self.count("errors")
                if conn is not None:
                    try:
                        conn.s.close()
                    except OSError:
                        pass
                conn = None
        if conn is not None:
            conn.close()

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return self.end_t is not None or all(not t.is_alive() for t in self.threads)

    def stop(self):
        self.stopping.set()
        self.wait(35)


class FloodStorm:
    """--storm-rate 0: smtp-source -c, 20 sessions, as fast as it can (one connection per message)."""

    def __init__(self, port, n, log):
        self.port, self.n, self.log = port, n, log
        self.start_t = self.end_t = None
        self.proc = None
        self.refused = self.errors = 0

    def start(self):
        self.start_t = time.monotonic()
        self.proc = h.spawn(["smtp-source", "-c", "-l", "2000", "-m", str(self.n), "-s", "20",
                             "-f", "spammer@deadspam.test", "-t", "user@local.test", "127.0.0.1:%d" % self.port], self.log)

        def watch():
            try:
                self.proc.wait(3600)
            except subprocess.TimeoutExpired:
                return
            self.end_t = time.monotonic()
        threading.Thread(target=watch, daemon=True).start()

    @property
    def accepted(self):
        """smtp-source -c's last counter value (messages it completed)."""
        nums = re.findall(r"(\d+)", h.tail(self.log, 200))
        return int(nums[-1]) if nums else 0

    def wait(self, timeout):
        return h.wait_until(lambda: self.end_t is not None, timeout, 0.1) is not None

    def stop(self):
        h.kill_group(self.proc, signal.SIGTERM, 5)


def start_dns(work, port, dead_addr):
    conf = os.path.join(work, "dnsmasq.conf")
    with open(conf, "w") as f:
        f.write("port=%d\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nno-poll\n"
                "user=root\ngroup=root\nkeep-in-foreground\nlocal=/test/\n"
                "mx-host=deadspam.test,mx.deadspam.test,10\nhost-record=mx.deadspam.test,%s\n"
                "mx-host=good.test,mx.good.test,10\nhost-record=mx.good.test,%s\n" % (port, dead_addr, GOOD_ADDR))
    return h.spawn(["dnsmasq", "--conf-file=" + conf], os.path.join(work, "dnsmasq.log"))


def sluice_conf(d, variant, smtp_port, mx_port, back_port, dns_port):
    os.makedirs(d)

    def w(name, text):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    w("option.dat", "host_name=sluice.bench.test\nqueue_dir=%s/queue\nmaildir_root=%s/maildir\n"
      "dns_servers=127.0.0.1:%d\ninternal_networks=127.0.0.0/8\nlog_level=warn\n" % (d, d, dns_port))
    w("dispatcher.cnf", "[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\nPARAMETER=CHANNEL=tcp_local\n"
      "MAX_CONNECTIONS=5000\n" % smtp_port)
    notify_rule = ". $U%$H$,$H@tcp_notify-daemon$Mprocess_dsn\n" if variant == "b" else ""
    defaults = "defaults notificationchannel process_dsn dispositionchannel process_dsn\n" if variant == "b" else "defaults\n"
    blocks = ("process_dsn\nprocess_dsn-daemon\n\n"
              "tcp_notify smtp mx port %d single_sys remotehost inner subdirs 20 maxjobs 10 pool NOTIFY_POOL "
              "backoff \"pt4h\" \"pt8h\" notices 1 loopcheck\ntcp_notify-daemon\n\n" % mx_port) if variant == "b" else ""
    w("sluice.cnf", "local.test $U%$D@back-daemon\n" + notify_rule + ".          $U%$H@tcp_local-daemon\n\n" +
      defaults + "\n" + blocks +
      "tcp_back smtp nomx daemon 127.0.0.1 port %d maxjobs 10\nback-daemon\n\n"
      "tcp_local smtp mx port %d maxjobs 20\ntcp_local-daemon\n" % (back_port, mx_port))
    w("job_controller.cnf", "[POOL=DEFAULT]\njob_limit=40\n" + ("\n[POOL=NOTIFY_POOL]\njob_limit=10\n" if variant == "b" else ""))
    if variant == "b":
        w("tcp_notify_option", "CONNECT_TIMEOUT=60\n")


def sluice_queue_census(qdir):
    """sluice_queue_census - {channel: files} of the queue, and how many of the files outside tcp_back
    (the local back-end's channel) mention spammer@deadspam.test, i.e. DSNs to the storm's senders
    still queued (none can leave: their MX is the tarpit or the black hole)."""
    per, dsn = {}, 0
    try:
        chans = [c for c in os.listdir(qdir) if not c.startswith(".") and c not in ("tmp", "bad", "corrupt")]
    except OSError:
        return per, 0
    for c in chans:
        cdir = os.path.join(qdir, c)
        if not os.path.isdir(cdir):
            continue
        for root, _dirs, files in os.walk(cdir):
            for fn in files:
                per[c] = per.get(c, 0) + 1
                if c != "tcp_back":
                    try:
                        with open(os.path.join(root, fn), "rb") as f:
                            if b"spammer@deadspam.test" in f.read():
                                dsn += 1
                    except OSError:
                        pass
    return per, dsn


class SluiceStorm:
    """A Sluice daemon in one of the set-ups a, b, c."""

    def __init__(self, a, work, variant, ports):
        self.dir = os.path.join(work, "sluice-" + variant)
        self.log = os.path.join(work, "sluice-%s.log" % variant)
        self.port = ports["smtp"]
        sluice_conf(self.dir, variant, ports["smtp"], ports["mx"], ports["back"], ports["dns"])
        self.proc = h.spawn([a.binary, "serve", "-C", self.dir], self.log)
        if not h.wait_until(lambda: self.proc.poll() is not None or h.smtp_greets(self.port), 15) or self.proc.poll() is not None:
            text = h.tail(self.log)
            self.stop()
            raise h.HarnessError("sluice did not start: %s" % text)
        h.check_loopback_only(self.proc.pid, "sluice")

    def census(self):
        per, dsn = sluice_queue_census(os.path.join(self.dir, "queue"))
        return {"dsn": dsn, "dsn_how": "queue files for spammer@deadspam.test at the end",
                "queue": " ".join("%s=%d" % kv for kv in sorted(per.items()))}

    def diagnostics(self):
        return h.tail(self.log, 1500)

    def stop(self):
        h.kill_group(self.proc, signal.SIGTERM, 10)


class PostfixStorm(h.PostfixMTA):
    """The harness's private Postfix, but with no relayhost, Postfix's default concurrency, and a
    transport map: local.test -> the refusing back-end sink, deadspam.test -> the tarpit/black hole,
    good.test -> the working MX (no DNS: smtp_dns_support_level = disabled)."""

    def __init__(self, work, variant, ports, dead_addr):
        super().__init__(os.path.join(work, "postfix-" + variant), ports["back"], 20)
        with open(os.path.join(self.etc, "transport"), "w") as f:
            f.write("local.test     smtp:[127.0.0.1]:%d\n"
                    "deadspam.test  smtp:[%s]:%d\n"
                    "good.test      smtp:[%s]:%d\n" % (ports["back"], dead_addr, ports["mx"], GOOD_ADDR, ports["mx"]))
        path = os.path.join(self.etc, "main.cf")
        with open(path) as f:
            lines = [ln for ln in f if not ln.startswith(("relayhost ", "default_destination_concurrency_limit "))]
        lines.append("relayhost =\ntransport_maps = texthash:%s\n" % os.path.join(self.etc, "transport"))
        with open(path, "w") as f:
            f.writelines(lines)

    def census(self):
        text = h.tail(self.maillog, 50 * 1000 * 1000)
        return {"dsn": len(re.findall(r"sender non-delivery notification", text)),
                "dsn_how": "maillog 'sender non-delivery notification' lines",
                "queue": "bounced=%d deferred=%d" % (len(re.findall(r"status=bounced", text)),
                                                    len(re.findall(r"status=deferred", text)))}


def steady_stream(port, rate, seconds, tag, acked=None):
    """Send one message at a time at a fixed rate; returns {message-id: submission time} of those accepted."""
    accepted = {}
    c = SmtpConn(port, b"steady.bench.test")
    n = int(rate * seconds)
    t0 = time.monotonic()
    for i in range(n):
        due = t0 + i / float(rate)
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        mid = b"<steady-%s-%d@bench.test>" % (tag.encode(), i)
        c.s.sendall(b"MAIL FROM:<alice@good.test>\r\nRCPT TO:<bob@good.test>\r\nDATA\r\n")
        for _ in range(3):
            c.reply()
        t_sent = time.monotonic()  # latency runs from the end of the submission to the arrival
        c.s.sendall(b"From: alice@good.test\r\nTo: bob@good.test\r\nMessage-ID: " + mid +
                    b"\r\nSubject: steady\r\n\r\n" + b"x" * 900 + b"\r\n.\r\n")
        if c.reply().startswith(b"250"):
            accepted[mid] = t_sent
            if acked is not None:
                acked[mid] = time.monotonic()
    c.close()
    return accepted


def pct(vals, p):
    if not vals:
        return float("nan")
    vals = sorted(vals)
    return vals[min(len(vals) - 1, int(round(p / 100.0 * (len(vals) - 1))))]


def run_variant(a, work, variant, ports):
    with_storm = variant in ("b", "c", "p")
    good = GoodMX(ports["mx"])
    good.start()
    good.ready.wait(5)
    sink = Tarpit(ports["mx"]) if a.sink_kind == "tarpit" else SynSampler(a.dead_addr)
    sink.start()
    mta = storm = None
    try:
        if variant.startswith("p"):
            mta = PostfixStorm(work, variant, ports, a.dead_addr)
            mta.start()
        else:
            mta = SluiceStorm(a, work, variant, ports)
        time.sleep(0.5)
        if with_storm:
            storm = (StormClient(mta.port, a.storm, a.storm_rate) if a.storm_rate > 0 else
                     FloodStorm(mta.port, a.storm, os.path.join(work, "storm-%s.log" % variant)))
            storm.start()
            time.sleep(1.0)  # the storm is under way
        acked = {}
        try:
            accepted = steady_stream(mta.port, a.rate, a.seconds, variant, acked)
        except OSError as e:
            raise h.HarnessError("steady stream: %s; MTA log: %s" % (e, mta.diagnostics()))
        if storm:
            storm.wait(a.drain)
        h.wait_until(lambda: all(m in good.arrivals for m in accepted), a.drain)
        time.sleep(1.0 if with_storm else 0.5)  # DSNs of the last storm messages; removal of the last queue file
        census = mta.census()
        storm_end = storm.end_t if storm else None
        lat = [good.arrivals[m] - t for m, t in accepted.items() if m in good.arrivals]
        arrived = [good.arrivals[m] for m in accepted if m in good.arrivals]
        span = (max(arrived) - min(accepted.values())) if arrived else float("nan")
        if os.environ.get("STORM_DUMP"):
            with open(os.environ["STORM_DUMP"] + "." + variant, "w") as f:
                t0 = min(accepted.values()) if accepted else 0
                for m, t in sorted(accepted.items(), key=lambda kv: kv[1]):
                    f.write("%.3f %.2f %.2f\n" % (t - t0, (acked.get(m, t) - t) * 1000,
                                                   (good.arrivals.get(m, float("nan")) - t) * 1000))
                if storm:
                    f.write("# storm start %.3f\n" % (storm.start_t - t0))
                if storm_end is not None:
                    f.write("# storm end %.3f\n" % (storm_end - t0))
        ack = [acked[m] - t for m, t in accepted.items() if m in acked]
        # "while the storm is being injected": submitted before the storm client finished
        inj = [good.arrivals[m] - t for m, t in accepted.items()
               if m in good.arrivals and storm and (storm_end is None or t <= storm_end)]
        post = [good.arrivals[m] - t for m, t in accepted.items()
                if m in good.arrivals and not (storm and (storm_end is None or t <= storm_end))]
        return {"variant": variant, "sent": len(accepted), "delivered": len(lat),
                "ack50": pct(ack, 50) * 1000, "ack99": pct(ack, 99) * 1000,
                "n_inj": len(inj), "inj99": pct(inj, 99) * 1000, "n_post": len(post), "post99": pct(post, 99) * 1000,
                "p50": pct(lat, 50) * 1000, "p99": pct(lat, 99) * 1000,
                "rate": len(lat) / span if span and span == span and span > 0 else float("nan"),
                "sink_total": sink.total, "sink_peak": sink.peak,
                "storm_acc": storm.accepted if storm else 0, "storm_ref": storm.refused if storm else 0,
                "storm_err": storm.errors if storm else 0,
                "storm_secs": (storm_end - storm.start_t) if storm and storm_end else float("nan"),
                "dsn": census["dsn"] if with_storm else 0, "dsn_how": census["dsn_how"], "queue": census["queue"]}
    finally:
        if storm:
            storm.stop()
        if mta:
            mta.stop()
        sink.stop()
        good.stop()


def enter_netns(argv):
    """Black hole: re-execute this script in a new network namespace (same pid, so whoever started us
    can still signal us), where the set-up below happens before anything else starts."""
    if os.geteuid() != 0:
        sys.stderr.write("storm: --sink-kind blackhole needs root (unshare -n, ip link add)\n")
        sys.exit(2)
    if not shutil.which("unshare") or not shutil.which("ip"):
        sys.stderr.write("storm: --sink-kind blackhole needs unshare and ip\n")
        sys.exit(1)
    env = dict(os.environ)
    env[NETNS_ENV] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe("unshare", ["unshare", "-n", sys.executable, os.path.abspath(__file__)] + argv, env)


def setup_blackhole(mx_port):
    """Inside the new namespace: lo up; veth v0/v1 with 10.99.0.1/24 on v0; 10.99.0.2's neighbour
    entry a foreign MAC, so frames to it leave v0, reach v1 and are dropped. Checked by a connect."""
    for cmd in (["ip", "link", "set", "lo", "up"],
                ["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                ["ip", "addr", "add", "10.99.0.1/24", "dev", "v0"],
                ["ip", "link", "set", "v0", "up"],
                ["ip", "link", "set", "v1", "up"],
                ["ip", "neigh", "add", BLACKHOLE_ADDR, "lladdr", "02:00:00:00:00:02", "dev", "v0", "nud", "permanent"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise h.HarnessError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    s = socket.socket()
    s.settimeout(1.5)
    try:
        s.connect((BLACKHOLE_ADDR, mx_port))
        raise h.HarnessError("the black hole %s:%d accepted a connection" % (BLACKHOLE_ADDR, mx_port))
    except socket.timeout:
        pass  # the SYN vanished, as it should
    except OSError as e:
        raise h.HarnessError("connect to the black hole %s:%d failed at once (%s), it should time out"
                             % (BLACKHOLE_ADDR, mx_port, e))
    finally:
        s.close()


def parse_variants(text):
    out = re.findall(r"p0|[abcp]", text.replace(",", " "))
    return [v for v in VARIANTS if v in out]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--storm", type=int, default=5000, help="failing messages in the storm (default 5000)")
    p.add_argument("--storm-rate", type=float, default=200.0,
                   help="storm messages/s from our paced client over 20 sessions; 0 = smtp-source as fast as possible "
                        "(default 200)")
    p.add_argument("--rate", type=float, default=20.0, help="ordinary messages per second (default 20)")
    p.add_argument("--seconds", type=float, default=30.0, help="duration of the ordinary stream (default 30)")
    p.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the last ordinary message")
    p.add_argument("--sink-kind", choices=("tarpit", "blackhole"), default="tarpit",
                   help="the storm senders' MX: a loopback listener that never greets, or an address whose SYNs are "
                        "dropped (network namespace; root)")
    p.add_argument("--binary", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                    "build-release", "sluice"))
    p.add_argument("--variants", default="a,b,c,p0,p", help="set-ups to run: a, b, c, p0, p (default all)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (configurations, logs, queues)")
    p.add_argument("--reps", type=int, default=1,
                   help="repetitions; the set-ups alternate (reversed order in odd repetitions) and the ratios "
                        "use the medians (default 1)")
    a = p.parse_args(argv)
    variants = parse_variants(a.variants)
    if not variants:
        p.error("no set-up in --variants %r (a, b, c, p0, p)" % a.variants)
    if a.sink_kind == "blackhole" and not os.environ.get(NETNS_ENV):
        enter_netns(argv)  # does not return
    a.dead_addr = BLACKHOLE_ADDR if a.sink_kind == "blackhole" else TARPIT_ADDR
    if any(v.startswith("p") for v in variants) and (os.geteuid() != 0 or not shutil.which("postfix")):
        sys.stderr.write("storm: the Postfix set-ups need root and Debian's postfix package\n")
        return 1

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    work = tempfile.mkdtemp(prefix="sluice-storm-", dir=os.environ.get("BENCH_TMPDIR", "/var/tmp"))
    dns = back = None
    status = 0
    results = []
    with open("/proc/loadavg") as f:
        load0 = " ".join(f.read().split()[:3])
    try:
        ports = {"smtp": h.free_port(), "back": h.free_port(), "dns": h.free_port()}
        ports["mx"] = h.free_port(GOOD_ADDR)
        if a.sink_kind == "blackhole":
            setup_blackhole(ports["mx"])
        dns = start_dns(work, ports["dns"], a.dead_addr)
        back_argv = ["smtp-sink", "-f", "."] + (["-u", "nobody"] if os.geteuid() == 0 else []) + \
                    ["127.0.0.1:%d" % ports["back"], "1024"]
        back = h.spawn(back_argv, os.path.join(work, "back-sink.log"))  # rejects every message after DATA
        if not h.wait_until(lambda: h.smtp_greets(ports["back"]), 10):
            raise h.HarnessError("the rejecting back-end sink did not start")
        for rep in range(max(1, a.reps)):
            for v in (variants if rep % 2 == 0 else list(reversed(variants))):
                sys.stderr.write("[storm %s] rep %d set-up %s...\n" % (time.strftime("%H:%M:%S"), rep, NAMES[v]))
                rwork = os.path.join(work, "rep%d" % rep)
                os.makedirs(rwork, exist_ok=True)
                r = run_variant(a, rwork, v, ports)
                r["rep"] = rep
                results.append(r)
    except (h.HarnessError, OSError) as e:
        sys.stderr.write("storm: harness error: %s\n" % e)
        status = 1
    finally:
        for proc in (back, dns):
            if proc:
                h.kill_group(proc, signal.SIGTERM, 5)
        if a.keep:
            sys.stderr.write("storm: kept %s\n" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if results:
        report(a, results, load0)
    return status


def report(a, results, load0):
    with open("/proc/loadavg") as f:
        load1 = " ".join(f.read().split()[:3])
    git = subprocess.run(["git", "-C", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."), "log", "-1",
                          "--format=%h"], capture_output=True, text=True).stdout.strip()
    sinkdesc = ("a tarpit (%s, accepts, never greets)" % TARPIT_ADDR if a.sink_kind == "tarpit" else
                "a black hole (%s in a network namespace, SYNs dropped)" % BLACKHOLE_ADDR)
    inj = ("our paced client, %.0f msg/s over 20 sessions" % a.storm_rate if a.storm_rate > 0 else
           "smtp-source, 20 sessions, as fast as possible")
    print("benchmark 2 - DSN storm: %d failing messages (%s) whose senders' MX is %s; ordinary mail at %.0f/s for %.0f s"
          % (a.storm, inj, sinkdesc, a.rate, a.seconds))
    print("%s UTC, commit %s, load average %s at the start, %s at the end" %
          (time.strftime("%Y-%m-%d %H:%M", time.gmtime()), git or "?", load0, load1))
    conns = "tarpit conns" if a.sink_kind == "tarpit" else "SYN-SENT seen"
    print("%-24s %5s %9s %8s %9s %7s %9s %9s %13s %15s" % ("set-up", "sent", "delivered", "p50 ms", "p99 ms", "msg/s",
                                                          "250 p50", "250 p99", "p99 in storm", "p99 after"))
    many = any(r.get("rep", 0) for r in results)

    def label(r):
        return NAMES[r["variant"]] + (" #%d" % r.get("rep", 0) if many else "")
    for r in results:
        print("%-24s %5d %9d %8.1f %9.1f %7.1f %9.1f %9.1f %6.1f (%4d) %8.1f (%4d)" % (
            label(r), r["sent"], r["delivered"], r["p50"], r["p99"], r["rate"], r["ack50"], r["ack99"],
            r["inj99"], r["n_inj"], r["post99"], r["n_post"]))
    print("%-24s %14s %8s %10s %18s  %s" % ("storm", "accepted/sent", "inject s", "DSNs", conns, "queue / log at the end"))
    for r in results:
        if r["variant"] in ("a", "p0"):
            print("%-24s %14s %8s %10s %11d (peak %d)  %s" % (label(r), "-", "-", "-", r["sink_total"],
                                                              r["sink_peak"], r["queue"]))
            continue
        print("%-24s %14s %8.1f %10d %11d (peak %d)  %s" % (
            label(r), "%d/%d%s" % (r["storm_acc"], a.storm,
                                            " (%d refused, %d errors)" % (r["storm_ref"], r["storm_err"])
                                            if r["storm_ref"] or r["storm_err"] else ""),
            r["storm_secs"], r["dsn"], r["sink_total"], r["sink_peak"], r["queue"]))
    hows = sorted({r["dsn_how"] for r in results if r["variant"] not in ("a", "p0")})
    if hows:
        print("DSNs counted from: %s" % "; ".join("%s (%s)" % (hw, "Sluice" if "queue" in hw else "Postfix") for hw in hows))
    reps = max(r.get("rep", 0) for r in results) + 1
    by = {}
    for r in results:
        by.setdefault(r["variant"], []).append(r)

    def med(v, key):
        vals = sorted(x[key] for x in by[v] if x[key] == x[key])  # NaN (nothing delivered) left out
        return statistics.median(vals) if vals else float("nan")
    if reps > 1:
        print("medians over %d repetitions (set-ups alternating)" % reps)
        print("%-24s %9s %8s %9s %9s %9s" % ("set-up", "delivered", "p50 ms", "p99 ms", "250 p99", "runs"))
        for v in by:
            print("%-24s %9.0f %8.1f %9.1f %9.1f %9d" % (NAMES[v], med(v, "delivered"), med(v, "p50"), med(v, "p99"),
                                                         med(v, "ack99"), len(by[v])))
    for v, base in (("b", "a"), ("c", "a"), ("p", "a"), ("p0", "a"), ("p", "p0")):
        if v in by and base in by:
            b = med(base, "p99")
            print("%s p99 / %s p99 = %.2f%s" % (NAMES[v].split()[0], NAMES[base].split()[0],
                                               med(v, "p99") / b if b and b == b else float("nan"),
                                               " (medians)" if reps > 1 else ""))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
