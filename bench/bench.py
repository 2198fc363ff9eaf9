#!/usr/bin/python3
"""bench - Sluice against Postfix, Exim and OpenSMTPD on the same machine in the same run (issues 5, 16).

Benchmarks (see bench/README.md for what each measures and the latest figures):
  1  relay throughput: smtp-source -> MTA -> smtp-sink, N messages at several session counts
     (MTAs: sluice, postfix, exim, opensmtpd, direct; --mta picks any subset)
  5  latency: end of DATA (".") to the 250 reply, 10 sessions, latency_client.py
  2  DSN storm: bench/storm.py (Sluice set-ups (a), (b), (c), Postfix (p0), (p)); options this script
     does not know are passed to storm.py (e.g. --sink-kind blackhole --storm-rate 0 --variants a,b)
  3  concurrent sessions: bench/sessions.py (Sluice only)
  4  queue scale: bench/queue.py (Sluice only: 10k, 100k, 1M queued messages, restart, decision cost);
     options this script does not know are passed to queue.py too (e.g. --sizes 10000,100000)
  6  directory: bench/directory.py (every recipient checked against slapd holding 100,000 users,
     Sluice's LDAP backend against Postfix's ldap: maps); unknown options are passed to it
     (e.g. --users 100000 --messages 3000 --rcpts 3)
  7  relay through one milter (opendkim signing) for both MTAs, and the end-of-data latency through it
     (--milter-messages, --milter-sessions, --milter-latency-messages, --milter-reference)

Each measurement starts a fresh private instance of the MTA (its own configuration and queue
under the work directory), runs the load, and stops it; the MTAs alternate (Sluice first in odd
repetitions, Postfix first in even ones) and the report gives medians and the Sluice/Postfix
ratio. Exit status: 0 when the harness did its job (whatever the figures), 1 when the harness
itself broke (a tool missing, an MTA or the sink that would not start, an unexpected error),
2 for a usage error, 3 for a benchmark that is not implemented. With --strict, a run that did
not deliver every message also exits 1.
"""
import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
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
NOT_IMPLEMENTED = {}


# ---------------------------------------------------------------- machine and load

def system_busy():
    """system_busy - (busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def machine_info(workdir, sluice_bin):
    """machine_info - what the figures came from: CPU, cores, kernel, file system, versions."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    pf = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True)
    git = subprocess.run(["git", "-C", SRC, "describe", "--always", "--dirty"], capture_output=True, text=True)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "workdir_fs": h.filesystem_of(workdir), "postfix": pf.stdout.strip(),
            "exim": h.peer_version(h.EXIM_BIN), "opensmtpd": h.peer_version(h.SMTPD_BIN),
            "sluice_bin": sluice_bin, "sluice_git": git.stdout.strip(), "loadavg_start": " ".join(load),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


class LoadMeter:
    """Other load on the machine during a run: all CPU time minus what the benchmark's processes used."""

    disk = None  # block device of the work directory, set by Bench.run

    def __init__(self):
        self.busy0, self.total0 = system_busy()
        self.disk0 = h.disk_written_bytes(LoadMeter.disk)
        self.self0 = self._self_cpu()
        self.t0 = time.monotonic()

    @staticmethod
    def _self_cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def disk_mb_per_s(self):
        """disk_mb_per_s - MB/s written to the work directory's disk by everyone since the meter started."""
        wall = time.monotonic() - self.t0
        return (h.disk_written_bytes(LoadMeter.disk) - self.disk0) / 1e6 / wall if wall > 0 else 0.0

    def other_cores(self, ours_cpu_s):
        """other_cores - average cores used by processes other than ours since the meter started."""
        busy, _total = system_busy()
        wall = time.monotonic() - self.t0
        if wall <= 0:
            return 0.0
        all_s = (busy - self.busy0) / h.CLK_TCK
        ours = ours_cpu_s + (self._self_cpu() - self.self0)
        return max(0.0, (all_s - ours) / wall)


class PeakSampler(threading.Thread):
    """Samples an MTA's PSS every interval seconds; keeps the peak."""

    def __init__(self, mta, interval=1.0):
        super().__init__(daemon=True)
        self.mta, self.interval = mta, interval
        self.peak = 0
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                self.peak = max(self.peak, self.mta.pss())
            except Exception:  # noqa: BLE001 - a process vanishing mid-read is normal
                pass
            self.stop_ev.wait(self.interval)

    def stop(self):
        self.stop_ev.set()
        self.join(5)


def wait_child(proc, timeout):
    """wait_child - reap proc with wait4 (polling); (exit status or None on timeout, CPU seconds it used)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            return proc.returncode, 0.0
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, ru.ru_utime + ru.ru_stime
        if time.monotonic() >= deadline:
            return None, 0.0
        time.sleep(0.002)


def proc_cpu(pid):
    st = h.read_stat(pid)
    return (st["utime"] + st["stime"]) / h.CLK_TCK if st else 0.0


class BulkWriter:
    """--bulk-writer MB: another tenant of the queue's file system, writing MB-sized files without fsync in a loop.

    It emulates what shares a real queue disk (logs, mailbox deliveries, backups): an MTA that
    flushes only its own files does not notice it; one that flushes the whole file system does.
    """

    def __init__(self, workdir, mb):
        self.proc = None
        if mb <= 0:
            return
        path = os.path.join(workdir, "bulk-writer.dat")
        script = ("while :; do dd if=/dev/zero of=%s bs=1M count=%d status=none conv=notrunc || exit 1; "
                  "rm -f %s; done" % (path, mb, path))
        self.proc = h.spawn(["/bin/sh", "-c", script], os.path.join(workdir, "bulk-writer.log"))

    def stop(self):
        if self.proc:
            h.kill_group(self.proc, signal.SIGTERM, 5)


# ---------------------------------------------------------------- one run

class Bench:
    """The state of one invocation: options, work directory, the sink, the results."""

    def __init__(self, args):
        self.a = args
        self.workdir = args.workdir
        self.sink = None
        self.msink = None   # benchmark 7's sink: it keeps every message (smtp-sink -D) to look for the signature
        self.dkim = None    # benchmark 7: (signing key, LD_PRELOAD shim), made once per invocation
        self.results = {"machine": None, "bench1": [], "bench5": [], "bench7": [], "bench7lat": []}
        self.incomplete = 0
        self.seq = 0

    def log(self, msg):
        sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
        sys.stderr.flush()

    def make_mta(self, kind, sink=None, milter=None):
        """make_mta - a private instance of kind relaying to sink (default the shared one), asking milter (an OpenDKIM) if given."""
        self.seq += 1
        sink = sink or self.sink
        port = milter.port if milter else None
        d = os.path.join(self.workdir, "%03d-%s" % (self.seq, kind))
        if kind in ("sluice", "baseline"):
            binary = self.a.sluice_bin if kind == "sluice" else self.a.baseline_binary
            return h.SluiceMTA(d, sink.port, self.a.jobs, binary, self.a.sluice_log_level, milter_port=port,
                               dkim_sign=self.a.dkim_sign)
        if kind == "direct":
            return h.DirectTarget(d, sink.port, self.a.jobs)
        if kind == "exim":
            return h.EximMTA(d, sink.port, self.a.jobs)
        if kind == "opensmtpd":
            return h.OpenSMTPDMTA(d, sink.port, self.a.jobs)
        return h.PostfixMTA(d, sink.port, self.a.jobs, milter_port=port)

    def milter_start(self, b7):
        """milter_start - benchmark 7: a fresh opendkim (one per MTA run) when b7 is True, else None."""
        if not b7:
            return None
        if not self.dkim:
            self.dkim = (h.make_dkim_key(os.path.join(self.workdir, "dkim-key")), h.build_milter_shim(self.workdir))
        self.seq += 1
        return h.OpenDKIM(os.path.join(self.workdir, "%03d-opendkim" % self.seq), *self.dkim)

    def milter_figures(self, r, milter, cpu0, counts0, n):
        """milter_figures - the milter's CPU and what it counted since (cpu0, counts0), per message, into r."""
        acc, signed, other = milter.counts()
        r["milter_cpu_ms_per_msg"] = (milter.cpu() - cpu0) * 1000.0 / n
        r["milter_conns"] = acc - counts0[0]
        r["milter_signed"] = signed - counts0[1]
        r["milter_conns_per_msg"] = r["milter_conns"] / n
        r["milter_signed_per_msg"] = r["milter_signed"] / n
        if len(other) > len(counts0[2]):
            r["milter_log_sample"] = other[len(counts0[2]):][:5]

    def order(self, rep):
        """order - the MTAs of repetition rep, alternating which goes first (the direct baseline runs last)."""
        kinds = [k for k in self.a.mta if k != "direct"]
        kinds = kinds if rep % 2 == 0 else kinds[::-1]
        return kinds + (["direct"] if "direct" in self.a.mta else [])

    def finish_mta(self, mta, sink=None, milter=None):
        """finish_mta - stop it (and its milter), let the sink settle, and drop its directory (unless --keep)."""
        sink = sink or self.sink
        mta.stop()
        if milter:
            milter.stop()
            if not self.a.keep:
                shutil.rmtree(milter.dir, ignore_errors=True)
        sink.wait_quiet(0.5, 10)
        if not sink.alive():
            raise h.HarnessError("smtp-sink died: %s" % h.tail(sink.log))
        mta.remove(self.a.keep)

    def sink_signatures(self, r, sink):
        """sink_signatures - benchmark 7: messages the sink received since the last call, and how many carry a DKIM-Signature."""
        data = sink.dump_take()
        # smtp-sink -D: each message's header block follows its envelope records; a signature is
        # one header line per message
        r["sink_dkim_signed"] = len(re.findall(rb"(?m)^DKIM-Signature: ", data))

    def perf_start(self, mta, tag):
        if not self.a.perf or mta.name != "sluice" or not shutil.which("perf"):
            return None
        out = os.path.join(self.workdir, "perf-%s.data" % tag)
        return h.spawn(["perf", "record", "-F", "999", "-g", "-p", str(mta.root_pid()), "-o", out],
                       os.path.join(self.workdir, "perf-%s.log" % tag)), out

    def perf_stop(self, handle, tag):
        if not handle:
            return
        proc, out = handle
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            h.kill_group(proc, signal.SIGKILL, 5)
        rep = os.path.join(self.workdir, "perf-%s.txt" % tag)
        with open(rep, "w") as f:
            subprocess.run(["perf", "report", "--stdio", "--no-children", "--percent-limit", "0.5",
                            "-g", "none", "-i", out], stdout=f, stderr=subprocess.DEVNULL, timeout=120)
        self.log("perf profile of %s: %s" % (tag, rep))

    # ---- benchmark 1

    def run_relay(self, kind, sessions, n, rep, b7=None):
        """run_relay - one run of benchmark 1 (b7 None) or 7 (b7 True: with the milter, False: the same without)."""
        a = self.a
        sink = self.msink if b7 is not None else self.sink
        milter = None
        try:
            milter = self.milter_start(b7)
            mta = self.make_mta(kind, sink, milter)
        except BaseException:
            if milter:
                milter.stop()
            raise
        r = {"mta": kind, "sessions": sessions, "messages": n, "rep": rep}
        if b7 is not None:
            r["milter"] = bool(b7)
        c0, s0 = sink.snapshot()[0], sink.sessions
        sampler = PeakSampler(mta)
        try:
            mta.start()
            time.sleep(0.5)
            sampler.start()
            sink_cpu0 = proc_cpu(sink.proc.pid)
            cpu0 = mta.cpu()
            if milter:
                mcpu0, mcounts0 = milter.cpu(), milter.counts()
            meter = LoadMeter()
            lo0 = h.listen_overflows()
            tag = "b%s-%s-s%d-r%d" % ("1" if b7 is None else "7m" if b7 else "7", kind, sessions, rep)
            perf = self.perf_start(mta, tag)
            t0 = time.monotonic()
            # benchmark 7 sends from example.test, the domain opendkim signs for
            src = h.spawn(["smtp-source", "-l", str(a.size), "-m", str(n), "-s", str(sessions),
                           "-f", "from@x.test" if b7 is None else "from@example.test", "-t", "to@y.test",
                           "127.0.0.1:%d" % mta.port],
                          os.path.join(mta.dir, "smtp-source.log"))
            rc, src_cpu = wait_child(src, a.accept_timeout or 30 + n / 20.0)
            t_acc = time.monotonic()
            if rc is None:
                h.kill_group(src, signal.SIGKILL, 5)
                r["error"] = "smtp-source did not finish within the accept timeout"
            elif rc != 0:
                r["error"] = "smtp-source exited %s: %s" % (rc, h.tail(os.path.join(mta.dir, "smtp-source.log"), 500))
            if "error" in r:
                # the client gave up: only what was accepted can arrive; wait until the sink is quiet
                got = sink.wait_quiet(2.0, 30) - c0
                ok, t_end = (True, sink.snapshot()[1]) if got >= n else (False, got)
            else:
                ok, t_end = sink.wait_count(c0 + n, a.deliver_timeout or 60 + n / 20.0)
            pss_end = mta.pss()
            nprocs = mta.nprocs()
            sampler.stop()
            time.sleep(1.0)  # let post-delivery bookkeeping (queue file removal) finish
            cpu1 = mta.cpu()
            self.perf_stop(perf, tag)
            sink_cpu = proc_cpu(sink.proc.pid) - sink_cpu0
            if milter:
                self.milter_figures(r, milter, mcpu0, mcounts0, n)
                sink_cpu += r["milter_cpu_ms_per_msg"] * n / 1000.0  # the milter is ours too
            r["other_load_cores"] = round(meter.other_cores((cpu1 - cpu0) + sink_cpu + src_cpu), 2)
            r["listen_overflows"] = h.listen_overflows() - lo0
            r["disk_mb_s"] = round(meter.disk_mb_per_s(), 1)
            r["accept_s"] = t_acc - t0
            r["accept_rate"] = n / (t_acc - t0)
            if ok:
                r["e2e_s"] = t_end - t0
                r["e2e_rate"] = n / (t_end - t0)
            else:
                r.setdefault("error", "only %d of %d messages reached the sink" % (t_end - c0, n))
            r["cpu_ms_per_msg"] = (cpu1 - cpu0) * 1000.0 / n
            r["pss_end_kib"] = pss_end
            r["pss_peak_kib"] = max(sampler.peak, pss_end)
            r["processes_end"] = nprocs
            r["backlog"] = (not ok) or r["e2e_rate"] < 0.95 * r["accept_rate"]
            probs = mta.problems()
            if probs:
                r["problems"] = len(probs)
                r["problem_sample"] = probs[:5]
        finally:
            if sampler.is_alive():
                sampler.stop()
            self.finish_mta(mta, sink, milter)
        r["delivered"] = sink.snapshot()[0] - c0
        if r["delivered"] > 0:
            r["sink_sessions_per_msg"] = (sink.sessions - s0) / r["delivered"]
        if b7 is not None:
            self.sink_signatures(r, sink)
        if r["delivered"] > n:
            r["duplicates"] = r["delivered"] - n
            self.log("%s: the sink received %d messages more than were sent" % (kind, r["duplicates"]))
        if "error" in r:
            self.incomplete += 1
            self.log("%s: %s" % (kind, r["error"]))
        self.log("b%s %-7s s=%-3d rep %d: e2e %s msg/s, accept %.0f msg/s, cpu %.2f ms/msg, pss %.1f MiB%s%s" % (
            "1" if b7 is None else "7", kind + ("+milter" if b7 else ""), sessions, rep,
            "%.0f" % r["e2e_rate"] if "e2e_rate" in r else "INCOMPLETE",
            r.get("accept_rate", 0), r.get("cpu_ms_per_msg", 0), r.get("pss_end_kib", 0) / 1024.0,
            "" if not b7 else ", milter cpu %.2f ms/msg, %d milter connections, %d signed, %d of %d signed at the sink" % (
                r.get("milter_cpu_ms_per_msg", 0), r.get("milter_conns", 0), r.get("milter_signed", 0),
                r.get("sink_dkim_signed", 0), r["delivered"]),
            ", %d problem lines in its log" % r["problems"] if r.get("problems") else ""))
        self.results["bench1" if b7 is None else "bench7"].append(r)

    # ---- benchmark 5

    def run_latency(self, kind, rep, b7=None):
        """run_latency - one run of benchmark 5 (b7 None) or of benchmark 7's latency part (b7 True: with the milter)."""
        a = self.a
        sink = self.msink if b7 is not None else self.sink
        milter = None
        try:
            milter = self.milter_start(b7)
            mta = self.make_mta(kind, sink, milter)
        except BaseException:
            if milter:
                milter.stop()
            raise
        n = a.latency_messages if b7 is None else a.milter_latency_messages
        r = {"mta": kind, "sessions": a.latency_sessions, "messages": n, "rep": rep}
        if b7 is not None:
            r["milter"] = bool(b7)
        try:
            mta.start()
            time.sleep(0.5)
            c0, _ = sink.snapshot()
            sink_cpu0 = proc_cpu(sink.proc.pid)
            cpu0 = mta.cpu()
            if milter:
                mcpu0, mcounts0 = milter.cpu(), milter.counts()
            meter = LoadMeter()
            out = os.path.join(mta.dir, "latency.json")
            with open(out, "wb") as f:
                cli = h.spawn(["/usr/bin/python3", os.path.join(HERE, "latency_client.py"), "--port", str(mta.port),
                               "--sessions", str(a.latency_sessions), "--messages", str(n), "--size", str(a.size)] +
                              ([] if b7 is None else ["--from", "from@example.test"]),
                              os.path.join(mta.dir, "latency.log"), stdout=f)
            rc, cli_cpu = wait_child(cli, 60 + n / 10.0)
            if rc is None:
                h.kill_group(cli, signal.SIGKILL, 5)
                r["error"] = "latency client did not finish in time"
            with open(out) as f:
                text = f.read()
            data = json.loads(text) if text.strip() else {"latencies_ms": [], "errors": ["no output"]}
            lat = sorted(data["latencies_ms"])
            if data.get("errors"):
                r["error"] = "latency client: %s" % "; ".join(data["errors"][:3])
            ok, _t = sink.wait_count(c0 + len(lat), 60 + n / 20.0)
            if not ok:
                r.setdefault("error", "not every accepted message reached the sink")
            mta_cpu = mta.cpu() - cpu0
            ours = mta_cpu + cli_cpu + proc_cpu(sink.proc.pid) - sink_cpu0
            if milter:
                self.milter_figures(r, milter, mcpu0, mcounts0, max(1, n))
                ours += r["milter_cpu_ms_per_msg"] * n / 1000.0
            r["other_load_cores"] = round(meter.other_cores(ours), 2)
            r["cpu_ms_per_msg"] = mta_cpu * 1000.0 / max(1, n)
            r["disk_mb_s"] = round(meter.disk_mb_per_s(), 1)
            if lat:
                r["n"] = len(lat)
                r["p50_ms"] = pct(lat, 50)
                r["p90_ms"] = pct(lat, 90)
                r["p99_ms"] = pct(lat, 99)
                r["max_ms"] = lat[-1]
                r["mean_ms"] = statistics.fmean(lat)
                r["rate"] = len(lat) / data["wall_s"]
            probs = mta.problems()
            if probs:
                r["problems"] = len(probs)
                r["problem_sample"] = probs[:5]
        finally:
            self.finish_mta(mta, sink, milter)
        if b7 is not None:
            r["delivered"] = sink.snapshot()[0] - c0
            self.sink_signatures(r, sink)
        if "error" in r:
            self.incomplete += 1
            self.log("%s: %s" % (kind, r["error"]))
        if "p50_ms" in r:
            self.log("b%s %-7s rep %d: p50 %.2f ms, p99 %.2f ms, max %.2f ms, %.0f msg/s%s" % (
                "5" if b7 is None else "7", kind + ("+milter" if b7 else ""), rep, r["p50_ms"], r["p99_ms"],
                r["max_ms"], r["rate"], "" if not b7 else ", milter cpu %.2f ms/msg, %d of %d signed at the sink" % (
                    r.get("milter_cpu_ms_per_msg", 0), r.get("sink_dkim_signed", 0), r["delivered"])))
        self.results["bench5" if b7 is None else "bench7lat"].append(r)

    # ---- benchmark 7

    def bench7_variants(self, rep):
        """bench7_variants - (MTA, with milter) of repetition rep: the MTAs alternating, each with the milter,
        then (--milter-reference) each without it."""
        kinds = [k for k in self.a.mta if k != "direct"]
        kinds = kinds if rep % 2 == 0 else kinds[::-1]
        return [(k, True) for k in kinds] + ([(k, False) for k in kinds] if self.a.milter_reference else [])

    def run_bench7(self):
        """run_bench7 - relay and latency through one milter (opendkim signing), every MTA, --reps times."""
        a = self.a
        self.msink = h.Sink(self.workdir, dump=os.path.join(self.workdir, "b7-sink"))
        for rep in range(a.reps):
            for kind, with_milter in self.bench7_variants(rep):
                self.run_relay(kind, a.milter_sessions, a.milter_messages, rep, b7=with_milter)
        if a.milter_latency_messages > 0:
            for rep in range(a.reps):
                for kind, with_milter in self.bench7_variants(rep):
                    self.run_latency(kind, rep, b7=with_milter)

    # ---- driver

    def run(self):
        a = self.a
        self.results["machine"] = machine_info(self.workdir, a.sluice_bin)
        self.results["settings"] = {k: v for k, v in vars(a).items() if k not in ("workdir",)}
        m = self.results["machine"]
        LoadMeter.disk = h.disk_of(self.workdir)
        self.log("work directory %s (%s); %s cores; load %s" % (self.workdir, m["workdir_fs"], m["cores"],
                                                                 m["loadavg_start"]))
        if "tmpfs" in m["workdir_fs"]:
            self.log("WARNING: the work directory is on tmpfs, where fsync costs nothing: use --workdir on a disk")
        self.sink = h.Sink(self.workdir)
        writer = BulkWriter(self.workdir, a.bulk_writer)
        try:
            if 1 in a.bench:
                for sessions in a.sessions:
                    for rep in range(a.reps):
                        for kind in self.order(rep):
                            self.run_relay(kind, sessions, a.messages, rep)
            if 5 in a.bench:
                for rep in range(a.reps):
                    for kind in self.order(rep):
                        self.run_latency(kind, rep)
            if 7 in a.bench:
                self.run_bench7()
        finally:
            writer.stop()
            self.sink.stop()
            if self.msink:
                self.msink.stop()
        with open("/proc/loadavg") as f:
            m["loadavg_end"] = " ".join(f.read().split()[:3])


# ---------------------------------------------------------------- reporting

def pct(sorted_vals, p):
    """pct - the p-th percentile (nearest rank) of sorted values."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v


def ratio(s, p):
    return "-" if s is None or p in (None, 0) else "%.2f" % (s / p)


# The ratio rows of the report: S/P Sluice over Postfix, S/E over Exim, S/O over OpenSMTPD, B/P the
# baseline Sluice binary (--baseline-binary) over Postfix, S/B this Sluice over the baseline.
RATIOS = (("sluice", "postfix", "S/P"), ("sluice", "exim", "S/E"), ("sluice", "opensmtpd", "S/O"),
          ("baseline", "postfix", "B/P"), ("sluice", "baseline", "S/B"))


def report(res, a):
    """report - the tables of medians and Sluice/Postfix ratios, as text."""
    out = []
    m = res["machine"]
    out.append("machine: %s, %s cores, kernel %s, work dir on %s; Postfix %s, Exim %s, OpenSMTPD %s; Sluice %s (%s)"
               % (m["cpu"], m["cores"], m["kernel"], m["workdir_fs"], m["postfix"], m.get("exim", "?"),
                  m.get("opensmtpd", "?"), m["sluice_git"], m["sluice_bin"]))
    out.append("load average at start %s, at end %s" % (m["loadavg_start"], m.get("loadavg_end", "?")))
    if a.bulk_writer:
        out.append("with a bulk writer: a %d MB file rewritten in a loop, without fsync, on the same file system"
                   % a.bulk_writer)
    b1 = res["bench1"]
    if b1:
        out.append("")
        out.append("benchmark 1 - relay throughput: %d messages of %d bytes, %d repetition(s), medians; "
                   "delivery jobs %d" % (a.messages, a.size, a.reps, a.jobs))
        hdr = "%-8s %-9s %9s %9s %10s %10s %10s %8s %10s %9s %8s %8s %s" % (
            "sessions", "mta", "e2e/s", "accept/s", "cpu ms/msg", "PSS MiB", "peak MiB", "procs",
            "other cpu", "disk MB/s", "conn/msg", "lst drop", "backlog")
        out.append(hdr)
        out.append("-" * len(hdr))
        for s in a.sessions:
            meds = {}
            for kind in a.mta:
                rows = [r for r in b1 if r["sessions"] == s and r["mta"] == kind]
                if not rows:
                    continue
                e2e, acc = med(rows, "e2e_rate"), med(rows, "accept_rate")
                meds[kind] = {"e2e": e2e, "acc": acc, "cpu": med(rows, "cpu_ms_per_msg"),
                              "pss": med(rows, "pss_end_kib")}
                if kind == "direct":  # no MTA: nothing to weigh
                    rows = [dict(r, pss_peak_kib=None, processes_end=None) for r in rows]
                    meds[kind].update(cpu=None, pss=None)
                backlog = sum(1 for r in rows if r.get("backlog"))
                incomplete = sum(1 for r in rows if "error" in r)
                out.append("%-8d %-9s %9s %9s %10s %10s %10s %8s %10s %9s %8s %8s %s" % (
                    s, kind, fmt(e2e), fmt(acc), fmt(meds[kind]["cpu"], "%.3f"),
                    fmt(None if meds[kind]["pss"] is None else meds[kind]["pss"] / 1024.0, "%.1f"),
                    fmt(None if med(rows, "pss_peak_kib") is None else med(rows, "pss_peak_kib") / 1024.0, "%.1f"),
                    fmt(med(rows, "processes_end")), fmt(med(rows, "other_load_cores"), "%.2f"),
                    fmt(med(rows, "disk_mb_s"), "%.1f"), fmt(med(rows, "sink_sessions_per_msg"), "%.2f"),
                    fmt(med(rows, "listen_overflows")),
                    ("%d/%d runs" % (backlog, len(rows)) if backlog else "no") +
                    (" (%d incomplete)" % incomplete if incomplete else "")))
            for num, den, label in RATIOS:
                if num in meds and den in meds:
                    sl, pf = meds[num], meds[den]
                    out.append("%-8d %-9s %9s %9s %10s %10s" % (
                        s, label, ratio(sl["e2e"], pf["e2e"]), ratio(sl["acc"], pf["acc"]),
                        ratio(sl["cpu"], pf["cpu"]), ratio(sl["pss"], pf["pss"])))
    b5 = res["bench5"]
    if b5:
        out.append("")
        out.append("benchmark 5 - latency from \".\" to the 250 reply: %d sessions, %d messages of %d bytes, "
                   "%d repetition(s), medians over repetitions" % (a.latency_sessions, a.latency_messages, a.size,
                                                                    a.reps))
        hdr = "%-9s %9s %9s %9s %9s %9s %9s %10s %9s" % ("mta", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms",
                                                        "msg/s", "cpu ms/msg", "disk MB/s")
        out.append(hdr)
        out.append("-" * len(hdr))
        meds = {}
        for kind in a.mta:
            rows = [r for r in b5 if r["mta"] == kind]
            if not rows:
                continue
            meds[kind] = {k: med(rows, k) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "rate",
                                                     "cpu_ms_per_msg", "disk_mb_s")}
            mm = meds[kind]
            out.append("%-9s %9s %9s %9s %9s %9s %9s %10s %9s" % (
                kind, fmt(mm["p50_ms"], "%.2f"), fmt(mm["p90_ms"], "%.2f"), fmt(mm["p99_ms"], "%.2f"),
                fmt(mm["max_ms"], "%.2f"), fmt(mm["mean_ms"], "%.2f"), fmt(mm["rate"]),
                "-" if kind == "direct" else fmt(mm["cpu_ms_per_msg"], "%.3f"), fmt(mm["disk_mb_s"], "%.1f")))
        for num, den, label in RATIOS:
            if num not in meds or den not in meds:
                continue
            sl, pf = meds[num], meds[den]
            out.append("%-9s %9s %9s %9s %9s %9s %9s %10s" % (
                label, ratio(sl["p50_ms"], pf["p50_ms"]), ratio(sl["p90_ms"], pf["p90_ms"]),
                ratio(sl["p99_ms"], pf["p99_ms"]), ratio(sl["max_ms"], pf["max_ms"]),
                ratio(sl["mean_ms"], pf["mean_ms"]), ratio(sl["rate"], pf["rate"]),
                ratio(sl["cpu_ms_per_msg"], pf["cpu_ms_per_msg"])))
    report_bench7(res, a, out)
    return "\n".join(out)


def b7_label(kind, with_milter):
    return kind + ("+milter" if with_milter else "")


def report_bench7(res, a, out):
    """report_bench7 - benchmark 7's tables (relay, then latency), appended to out."""
    variants = [(k, m) for m in (True, False) for k in a.mta if k != "direct"]
    b7 = res["bench7"]
    if b7:
        out.append("")
        out.append("benchmark 7 - relay through one milter (opendkim signing, one instance per run): %d messages of "
                   "%d bytes, %d sessions, %d repetition(s), medians; delivery jobs %d" % (
                       a.milter_messages, a.size, a.milter_sessions, a.reps, a.jobs))
        hdr = "%-15s %8s %8s %10s %10s %10s %10s %9s %9s %10s %9s %s" % (
            "mta", "e2e/s", "accept/s", "cpu ms/msg", "milter cpu", "total cpu", "conns/msg", "signed", "at sink",
            "other cpu", "disk MB/s", "backlog")
        out.append(hdr)
        out.append("-" * len(hdr))
        meds = {}
        for kind, m in variants:
            rows = [r for r in b7 if r["mta"] == kind and r.get("milter") == m]
            if not rows:
                continue
            mm = {k: med(rows, k) for k in ("e2e_rate", "accept_rate", "cpu_ms_per_msg", "milter_cpu_ms_per_msg",
                                             "milter_conns_per_msg", "milter_signed_per_msg", "other_load_cores",
                                             "disk_mb_s")}
            mm["total_cpu"] = None if mm["cpu_ms_per_msg"] is None else mm["cpu_ms_per_msg"] + (
                mm["milter_cpu_ms_per_msg"] or 0)
            meds[(kind, m)] = mm
            signed = sum(r.get("sink_dkim_signed", 0) for r in rows)
            delivered = sum(r.get("delivered", 0) for r in rows)
            backlog = sum(1 for r in rows if r.get("backlog"))
            incomplete = sum(1 for r in rows if "error" in r)
            out.append("%-15s %8s %8s %10s %10s %10s %10s %9s %9s %10s %9s %s" % (
                b7_label(kind, m), fmt(mm["e2e_rate"]), fmt(mm["accept_rate"]), fmt(mm["cpu_ms_per_msg"], "%.3f"),
                fmt(mm["milter_cpu_ms_per_msg"], "%.3f"), fmt(mm["total_cpu"], "%.3f"),
                fmt(mm["milter_conns_per_msg"], "%.3f"), fmt(mm["milter_signed_per_msg"], "%.3f"),
                "%d/%d" % (signed, delivered), fmt(mm["other_load_cores"], "%.2f"), fmt(mm["disk_mb_s"], "%.1f"),
                ("%d/%d runs" % (backlog, len(rows)) if backlog else "no") +
                (" (%d incomplete)" % incomplete if incomplete else "")))
        for (num, nm), (den, dm), label in b7_ratios(a):
            if (num, nm) in meds and (den, dm) in meds:
                s, p = meds[(num, nm)], meds[(den, dm)]
                out.append("%-15s %8s %8s %10s %10s %10s" % (
                    label, ratio(s["e2e_rate"], p["e2e_rate"]), ratio(s["accept_rate"], p["accept_rate"]),
                    ratio(s["cpu_ms_per_msg"], p["cpu_ms_per_msg"]),
                    ratio(s["milter_cpu_ms_per_msg"], p["milter_cpu_ms_per_msg"]), ratio(s["total_cpu"], p["total_cpu"])))
        out.append("conns/msg: connections opendkim accepted per message sent (one per SMTP session, each session "
                   "one message); signed: opendkim's 'DKIM-Signature field added' log lines per message; at sink: "
                   "messages the sink received with a DKIM-Signature header, over all repetitions")
    lat = res["bench7lat"]
    if lat:
        out.append("")
        out.append("benchmark 7 - latency through the milter, \".\" to the 250 reply: %d sessions, %d messages of %d "
                   "bytes, %d repetition(s), medians" % (a.latency_sessions, a.milter_latency_messages, a.size, a.reps))
        hdr = "%-15s %8s %8s %8s %8s %8s %10s %10s %9s" % ("mta", "p50 ms", "p90 ms", "p99 ms", "max ms", "msg/s",
                                                          "cpu ms/msg", "milter cpu", "at sink")
        out.append(hdr)
        out.append("-" * len(hdr))
        meds = {}
        for kind, m in variants:
            rows = [r for r in lat if r["mta"] == kind and r.get("milter") == m]
            if not rows:
                continue
            mm = {k: med(rows, k) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "rate", "cpu_ms_per_msg",
                                             "milter_cpu_ms_per_msg")}
            meds[(kind, m)] = mm
            out.append("%-15s %8s %8s %8s %8s %8s %10s %10s %9s" % (
                b7_label(kind, m), fmt(mm["p50_ms"], "%.2f"), fmt(mm["p90_ms"], "%.2f"), fmt(mm["p99_ms"], "%.2f"),
                fmt(mm["max_ms"], "%.2f"), fmt(mm["rate"]), fmt(mm["cpu_ms_per_msg"], "%.3f"),
                fmt(mm["milter_cpu_ms_per_msg"], "%.3f"),
                "%d/%d" % (sum(r.get("sink_dkim_signed", 0) for r in rows), sum(r.get("delivered", 0) for r in rows))))
        for (num, nm), (den, dm), label in b7_ratios(a):
            if (num, nm) in meds and (den, dm) in meds:
                s, p = meds[(num, nm)], meds[(den, dm)]
                out.append("%-15s %8s %8s %8s %8s %8s %10s %10s" % (
                    label, ratio(s["p50_ms"], p["p50_ms"]), ratio(s["p90_ms"], p["p90_ms"]),
                    ratio(s["p99_ms"], p["p99_ms"]), ratio(s["max_ms"], p["max_ms"]), ratio(s["rate"], p["rate"]),
                    ratio(s["cpu_ms_per_msg"], p["cpu_ms_per_msg"]),
                    ratio(s["milter_cpu_ms_per_msg"], p["milter_cpu_ms_per_msg"])))


def b7_ratios(a):
    """b7_ratios - benchmark 7's ratio rows: Sluice / Postfix (and baseline) with the milter, and each MTA with / without it."""
    rows = [(("sluice", True), ("postfix", True), "S/P milter"), (("baseline", True), ("postfix", True), "B/P milter"),
            (("sluice", True), ("baseline", True), "S/B milter")]
    if a.milter_reference:
        rows += [(("sluice", False), ("postfix", False), "S/P no milter")]
        rows += [((k, True), (k, False), "%s m/nm" % k[:8]) for k in ("sluice", "postfix", "baseline")]
    return rows


# ---------------------------------------------------------------- command line

def int_list(text):
    return [int(x) for x in text.replace(",", " ").split()]


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/run.sh", description="Sluice against Postfix, Exim and OpenSMTPD "
                                                                   "(issues 5, 16).")
    ap.add_argument("--smoke", action="store_true",
                    help="a few hundred messages, one repetition, both MTAs (CI); overrides the sizes below")
    ap.add_argument("--bench", type=int_list, default=[1, 5],
                    help="benchmarks to run, e.g. 1,5 (default 1,5; 7 = relay with one milter)")
    ap.add_argument("--mta", default=None,
                    help="what to measure, any subset of: sluice, postfix, exim, opensmtpd, and direct (smtp-source "
                         "straight into smtp-sink, the ceiling of load generator and sink on this machine); "
                         "default all five; with --smoke sluice,postfix,direct (the peers' runs would not fit "
                         "its time limit: OpenSMTPD accepts about 10 sessions a second here, see bench/README.md)")
    ap.add_argument("--messages", type=int, default=None,
                    help="benchmark 1: messages per run (default 20000); benchmark 6: passed on (its default 3000)")
    ap.add_argument("--sessions", type=int_list, default=[10, 50, 100],
                    help="benchmark 1: client session counts (default 10,50,100)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per MTA and setting (default 3)")
    ap.add_argument("--size", type=int, default=4096, help="message body bytes (default 4096)")
    ap.add_argument("--latency-messages", type=int, default=2000, help="benchmark 5: messages per run (default 2000)")
    ap.add_argument("--latency-sessions", type=int, default=10, help="benchmark 5: sessions (default 10)")
    ap.add_argument("--jobs", type=int, default=20,
                    help="outbound connections to the sink: Sluice's job_limit/maxjobs and Postfix's "
                         "default_destination_concurrency_limit (default 20, Postfix's default)")
    ap.add_argument("--sluice-bin", default=os.path.join(SRC, "build-release", "sluice"))
    ap.add_argument("--sluice-log-level", default="warn")
    ap.add_argument("--dkim-sign", action="store_true",
                    help="Sluice (and the baseline) DKIM-sign every message (RSA-2048, dkim_sign=all)")
    ap.add_argument("--baseline-binary", metavar="PATH",
                    help="a second Sluice binary (e.g. a build of an earlier commit) measured beside this one in "
                         "benchmarks 1 and 5 as the MTA 'baseline', with B/P and S/B ratios")
    ap.add_argument("--workdir", help="parent of the run's private directory (default $BENCH_TMPDIR or /var/tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (configurations, logs, queues)")
    ap.add_argument("--json", help="also write every run's figures to this file")
    ap.add_argument("--accept-timeout", type=float, default=0, help="seconds per smtp-source run (default 30+N/20)")
    ap.add_argument("--deliver-timeout", type=float, default=0,
                    help="seconds to wait for the sink to count N (default 60+N/20)")
    ap.add_argument("--bulk-writer", type=int, default=0, metavar="MB",
                    help="while measuring, another process rewrites an MB-sized file in the work directory in a "
                         "loop without fsync (a noisy neighbour on the queue's file system); default off")
    ap.add_argument("--milter-messages", type=int, default=5000,
                    help="benchmark 7: messages per relay run (default 5000)")
    ap.add_argument("--milter-sessions", type=int, default=50,
                    help="benchmark 7: smtp-source sessions of the relay runs (default 50)")
    ap.add_argument("--milter-latency-messages", type=int, default=1000,
                    help="benchmark 7: messages per latency run (latency_client.py, --latency-sessions); 0 = none "
                         "(default 1000)")
    ap.add_argument("--milter-reference", action="store_true",
                    help="benchmark 7: also run each MTA without the milter (same sizes and sink), for the milter's cost")
    ap.add_argument("--perf", action="store_true", help="record Sluice with perf during benchmark 1 runs")
    ap.add_argument("--strict", action="store_true", help="exit 1 if any run did not deliver every message")
    a, a.storm_args = ap.parse_known_args(argv)
    if a.storm_args and 2 not in a.bench and 4 not in a.bench and 6 not in a.bench:
        ap.error("unrecognized arguments: %s (options of bench/storm.py, queue.py or directory.py need --bench 2, 4 or 6)"
                 % " ".join(a.storm_args))
    if a.mta is None:
        a.mta = "sluice,postfix,direct" if a.smoke else "sluice,postfix,exim,opensmtpd,direct"
    a.mta = [x.strip() for x in a.mta.split(",") if x.strip()]
    if a.baseline_binary and "baseline" not in a.mta:
        a.mta.insert(1 if "sluice" in a.mta else 0, "baseline")
    for kind in a.mta:
        if kind not in ("sluice", "postfix", "exim", "opensmtpd", "direct", "baseline"):
            ap.error("unknown MTA %r (sluice, postfix, exim, opensmtpd, direct, baseline)" % kind)
    if "baseline" in a.mta and not a.baseline_binary:
        ap.error("the MTA 'baseline' needs --baseline-binary PATH")
    a.bench6_args = ["--messages", str(a.messages)] if a.messages is not None else []
    if a.messages is None:
        a.messages = 20000
    if a.smoke:
        a.messages, a.reps, a.latency_messages = 300, 1, 200
        a.milter_messages, a.milter_latency_messages = 300, 200
    for b in a.bench:
        if b not in (1, 2, 3, 4, 5, 6, 7):
            ap.error("no benchmark %d (1..7)" % b)
    return a


def check_tools(a):
    """check_tools - the programs and privileges the harness needs, or HarnessError."""
    if os.geteuid() != 0:
        raise h.HarnessError("run as root: a private Postfix instance and smtp-sink -u nobody need it")
    for tool in ("smtp-source", "smtp-sink", "postfix", "postconf"):
        if not shutil.which(tool):
            raise h.HarnessError("%s not found: install Debian's postfix package (scripts/setup.sh)" % tool)
    for kind, binary in (("exim", h.EXIM_BIN), ("opensmtpd", h.SMTPD_BIN)):
        if kind in a.mta and not os.access(binary, os.X_OK):
            raise h.HarnessError("%s not found: scripts/setup.sh unpacks Exim and OpenSMTPD under %s (or leave %s "
                                 "out of --mta)" % (binary, h.PEERS_DIR, kind))
    if "opensmtpd" in a.mta and not shutil.which("unshare"):
        raise h.HarnessError("unshare not found (util-linux): OpenSMTPD runs in a mount namespace of its own")
    if "baseline" in a.mta and not os.access(a.baseline_binary, os.X_OK):
        raise h.HarnessError("--baseline-binary %s is not an executable" % a.baseline_binary)
    if 7 in a.bench:
        for tool in ("opendkim", "opendkim-genkey"):
            if not shutil.which(tool):
                raise h.HarnessError("%s not found: install Debian's opendkim and opendkim-tools (scripts/setup.sh)"
                                     % tool)
    if "sluice" in a.mta and not os.access(a.sluice_bin, os.X_OK):
        raise h.HarnessError("%s not found: build it with cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release "
                             "&& make -C build-release sluice" % a.sluice_bin)


def main(argv):
    a = parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    for b, script in ((2, "storm.py"), (3, "sessions.py"), (4, "queue.py"), (6, "directory.py")):  # scripts of their own
        if b not in a.bench:
            continue
        rc = subprocess.call([sys.executable, os.path.join(here, script), "--binary", a.sluice_bin] +
                             (a.storm_args + (["--keep"] if a.keep else []) if b in (2, 4, 6) else []) +
                             (["--reps", str(a.reps)] if b in (2, 6) else []) + (a.bench6_args if b == 6 else []))
        a.bench = [x for x in a.bench if x != b]
        if not a.bench or rc != 0:
            return rc
    missing = [b for b in a.bench if b in NOT_IMPLEMENTED]
    if missing:
        for b in missing:
            sys.stderr.write("benchmark %d (%s) is not implemented yet: see bench/README.md\n" % (b, NOT_IMPLEMENTED[b]))
        return 3

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    parent = a.workdir or os.environ.get("BENCH_TMPDIR") or "/var/tmp"
    workdir = tempfile.mkdtemp(prefix="sluice-bench-", dir=parent)
    a.workdir = workdir
    bench = Bench(a)
    status = 0
    try:
        check_tools(a)
        bench.run()
    except h.HarnessError as e:
        sys.stderr.write("bench: harness error: %s\n" % e)
        status = 1
    except SystemExit:
        sys.stderr.write("bench: interrupted\n")
        status = 1
        raise
    except Exception:  # noqa: BLE001 - any other failure is the harness breaking
        import traceback
        traceback.print_exc()
        status = 1
    finally:
        if bench.results["machine"]:
            text = report(bench.results, a)
            print(text)
            sys.stdout.flush()
        if a.json:
            with open(a.json, "w") as f:
                json.dump(bench.results, f, indent=1, default=str)
        if a.keep or a.perf:
            sys.stderr.write("bench: kept %s\n" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if a.smoke and status == 0:
        # benchmark 2 in miniature (about 20 s): 200 storm messages, 5 s of ordinary mail, set-ups (a) and (b)
        sys.stdout.flush()
        if subprocess.call([sys.executable, os.path.join(here, "storm.py"), "--binary", a.sluice_bin, "--storm", "200",
                            "--seconds", "5", "--drain", "20", "--variants", "a,b", "--sink-kind", "tarpit"]) != 0:
            sys.stderr.write("bench: the storm smoke run failed\n")
            status = 1
    if a.smoke and status == 0:
        # benchmark 4 in miniature (about 5 s): 1000 queued messages, restart, 100 decisions
        sys.stdout.flush()
        if subprocess.call([sys.executable, os.path.join(here, "queue.py"), "--binary", a.sluice_bin, "--sizes", "1000",
                            "--decisions", "100"]) != 0:
            sys.stderr.write("bench: the queue-scale smoke run failed\n")
            status = 1
    if status == 0 and bench.incomplete:
        sys.stderr.write("bench: %d run(s) did not deliver every message (see above)\n" % bench.incomplete)
        if a.strict:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
