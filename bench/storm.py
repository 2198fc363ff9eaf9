#!/usr/bin/python3
"""storm.py - benchmark 2, the DSN storm: while thousands of messages to local users fail after
acceptance and their senders' MX is a tarpit (accepts TCP, never greets), a steady stream of
ordinary mail goes to a working MX. Measures the ordinary mail's delivery latency (acceptance to
arrival at the MX) and throughput in three Sluice set-ups:
  (a) no storm,
  (b) storm with the seed notification set-up (DSNs: process_dsn -> tcp_notify in NOTIFY_POOL),
  (c) storm with every message through one channel (tcp_local, one pool).
Postfix during the storm is not measured yet (see bench/README.md).

    /usr/bin/python3 bench/storm.py [--storm 5000] [--rate 20] [--seconds 30] [--binary build-release/sluice]

Everything listens on loopback only (127.0.0.1, 127.0.0.66 tarpit, 127.0.0.67 working MX); every
process and thread is stopped at the end; every wait is bounded.
"""
import argparse
import asyncio
import os
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


def start_dns(work, port, mx_port_unused=None):
    conf = os.path.join(work, "dnsmasq.conf")
    with open(conf, "w") as f:
        f.write("port=%d\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nno-poll\n"
                "user=root\ngroup=root\nkeep-in-foreground\nlocal=/test/\n"
                "mx-host=deadspam.test,mx.deadspam.test,10\nhost-record=mx.deadspam.test,%s\n"
                "mx-host=good.test,mx.good.test,10\nhost-record=mx.good.test,%s\n" % (port, TARPIT_ADDR, GOOD_ADDR))
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


def steady_stream(port, rate, seconds, tag):
    """Send one message at a time at a fixed rate; returns {message-id: submission time} of those accepted."""
    accepted = {}
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if not line:
                raise IOError("closed")
            if line[3:4] == b" ":
                return line

    reply()
    s.sendall(b"EHLO steady.bench.test\r\n")
    reply()
    n = int(rate * seconds)
    t0 = time.monotonic()
    for i in range(n):
        due = t0 + i / float(rate)
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        mid = b"<steady-%s-%d@bench.test>" % (tag.encode(), i)
        s.sendall(b"MAIL FROM:<alice@good.test>\r\nRCPT TO:<bob@good.test>\r\nDATA\r\n")
        for _ in range(3):
            reply()
        t_sent = time.monotonic()  # latency runs from the end of the submission to the arrival
        s.sendall(b"From: alice@good.test\r\nTo: bob@good.test\r\nMessage-ID: " + mid +
                  b"\r\nSubject: steady\r\n\r\n" + b"x" * 900 + b"\r\n.\r\n")
        if reply().startswith(b"250"):
            accepted[mid] = t_sent
    s.sendall(b"QUIT\r\n")
    s.close()
    return accepted


def pct(vals, p):
    if not vals:
        return float("nan")
    vals = sorted(vals)
    return vals[min(len(vals) - 1, int(round(p / 100.0 * (len(vals) - 1))))]


def run_variant(a, work, variant, ports):
    d = os.path.join(work, "sluice-" + variant)
    sluice_conf(d, variant, ports["smtp"], ports["mx"], ports["back"], ports["dns"])
    good, tarpit = GoodMX(ports["mx"]), Tarpit(ports["mx"])
    good.start()
    good.ready.wait(5)
    tarpit.start()
    proc = h.spawn([a.binary, "serve", "-C", d], os.path.join(work, "sluice-%s.log" % variant))
    storm = None
    try:
        if not h.wait_until(lambda: h.smtp_greets(ports["smtp"]), 15):
            raise h.HarnessError("sluice did not start: %s" % h.tail(os.path.join(work, "sluice-%s.log" % variant)))
        if variant != "a":
            storm = h.spawn(["smtp-source", "-c", "-l", "2000", "-m", str(a.storm), "-s", "20",
                             "-f", "spammer@deadspam.test", "-t", "user@local.test", "127.0.0.1:%d" % ports["smtp"]],
                            os.path.join(work, "storm-%s.log" % variant))
            time.sleep(1.0)  # the storm is under way
        try:
            accepted = steady_stream(ports["smtp"], a.rate, a.seconds, variant)
        except OSError as e:
            raise h.HarnessError("steady stream: %s; sluice log: %s" % (e, h.tail(os.path.join(work, "sluice-%s.log" % variant), 1500)))
        h.wait_until(lambda: all(m in good.arrivals for m in accepted), a.drain)
        lat = [good.arrivals[m] - t for m, t in accepted.items() if m in good.arrivals]
        arrived = [good.arrivals[m] for m in accepted if m in good.arrivals]
        span = (max(arrived) - min(accepted.values())) if arrived else float("nan")
        return {"variant": variant, "sent": len(accepted), "delivered": len(lat),
                "p50": pct(lat, 50) * 1000, "p99": pct(lat, 99) * 1000,
                "rate": len(lat) / span if span and span == span and span > 0 else float("nan"),
                "tarpit_total": tarpit.total, "tarpit_peak": tarpit.peak}
    finally:
        if storm:
            h.kill_group(storm, signal.SIGTERM, 5)
        h.kill_group(proc, signal.SIGTERM, 10)
        tarpit.stop()
        good.stop()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--storm", type=int, default=5000, help="failing messages in the storm")
    p.add_argument("--rate", type=float, default=20.0, help="ordinary messages per second")
    p.add_argument("--seconds", type=float, default=30.0, help="duration of the ordinary stream")
    p.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the last ordinary message")
    p.add_argument("--binary", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                    "build-release", "sluice"))
    a = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="sluice-storm-", dir=os.environ.get("BENCH_TMPDIR", "/var/tmp"))
    dns = back = None
    status = 0
    results = []
    try:
        ports = {"smtp": h.free_port(), "back": h.free_port(), "dns": h.free_port()}
        ports["mx"] = h.free_port(GOOD_ADDR)
        dns = start_dns(work, ports["dns"])
        back_argv = ["smtp-sink", "-f", "."] + (["-u", "nobody"] if os.geteuid() == 0 else []) + \
                    ["127.0.0.1:%d" % ports["back"], "1024"]
        back = h.spawn(back_argv, os.path.join(work, "back-sink.log"))  # rejects every message after DATA
        if not h.wait_until(lambda: h.smtp_greets(ports["back"]), 10):
            raise h.HarnessError("the rejecting back-end sink did not start")
        for v in ("a", "b", "c"):
            sys.stderr.write("[storm] variant %s...\n" % v)
            results.append(run_variant(a, work, v, ports))
    except (h.HarnessError, OSError) as e:
        sys.stderr.write("storm: harness error: %s\n" % e)
        status = 1
    finally:
        for proc in (back, dns):
            if proc:
                h.kill_group(proc, signal.SIGTERM, 5)
        shutil.rmtree(work, ignore_errors=True)
    if results:
        names = {"a": "(a) no storm", "b": "(b) storm, tcp_notify", "c": "(c) storm, one channel"}
        print("benchmark 2 - DSN storm: %d failing messages whose senders' MX is a tarpit; ordinary mail at %.0f/s for %.0f s"
              % (a.storm, a.rate, a.seconds))
        print("%-26s %6s %9s %10s %10s %9s %12s" % ("set-up", "sent", "delivered", "p50 ms", "p99 ms", "msg/s",
                                                   "tarpit conns"))
        for r in results:
            print("%-26s %6d %9d %10.1f %10.1f %9.1f %6d (peak %d)" % (names[r["variant"]], r["sent"], r["delivered"],
                                                                     r["p50"], r["p99"], r["rate"], r["tarpit_total"],
                                                                     r["tarpit_peak"]))
        base = results[0]["p99"]
        for r in results[1:]:
            print("%s p99 / (a) p99 = %.2f" % (names[r["variant"]], r["p99"] / base if base else float("nan")))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
