"""harness - the pieces every Sluice-vs-Postfix benchmark shares.

What lives here:
  - process ownership: every process the harness starts runs in its own process group, is
    recorded in the pid registry (BENCH_PIDFILE, read by run.sh's EXIT trap as a last resort) and
    is stopped by its owner's stop();
  - Sink: Postfix's smtp-sink on a loopback port, with a reader thread that timestamps every
    change of its message counter (so "last message received" is known to the millisecond);
  - SluiceMTA and PostfixMTA: one private instance each (own configuration, queue and data
    directories under the bench work directory, listening on a loopback port, relaying
    everything to the sink);
  - /proc readers: CPU time (utime+stime, plus reaped children) and PSS of an MTA's processes,
    and a check that none of our processes listens outside loopback.

Everything is bounded: every wait has a timeout and raises HarnessError when it runs out.
Runs under /usr/bin/python3 with the standard library only.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


class HarnessError(Exception):
    """The harness itself could not do its job (a tool missing, a process that would not start)."""


# ---------------------------------------------------------------- small helpers

def free_port(host="127.0.0.1"):
    """free_port - a TCP port that is free on host right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.05):
    """wait_until - poll pred() until it returns a true value (returned) or timeout seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def smtp_greets(port, host="127.0.0.1", timeout=2.0):
    """smtp_greets - whether a server on host:port answers a connection with a 220 greeting (then QUIT)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while b"\n" not in data:
                chunk = s.recv(512)
                if not chunk:
                    return False
                data += chunk
            ok = data.startswith(b"220")
            try:
                s.sendall(b"QUIT\r\n")
                s.recv(512)
            except OSError:
                pass
            return ok
    except OSError:
        return False


def proc_starttime(pid):
    """proc_starttime - field 22 of /proc/PID/stat (start time in clock ticks), or None if pid is gone."""
    st = read_stat(pid)
    return st["starttime"] if st else None


def registry_add(pgid):
    """registry_add - record a process group in BENCH_PIDFILE so run.sh's EXIT trap can end it if we cannot."""
    path = os.environ.get("BENCH_PIDFILE")
    if not path:
        return
    start = proc_starttime(pgid)
    with open(path, "a") as f:
        f.write("%d %s\n" % (pgid, start if start is not None else "?"))


def kill_group(proc, sig=signal.SIGTERM, wait=10.0):
    """kill_group - signal proc's process group; SIGKILL it if it has not exited after wait seconds."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    # The leader is gone; members that ignored the signal must not outlive us either.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return proc.returncode


def spawn(argv, log_path, env=None, stdout=None):
    """spawn - start argv in a new process group (stderr, and stdout unless given, to log_path); registered."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout if stdout is not None else log,
                                stderr=log, start_new_session=True, env=env)
    registry_add(proc.pid)
    return proc


def tail(path, n=3000):
    """tail - the last n characters of a text file ("" if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ---------------------------------------------------------------- /proc

def read_stat(pid):
    """read_stat - {comm, state, ppid, pgid, utime, stime, cutime, cstime, starttime} of pid (ticks), or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm may hold blanks and parentheses: the fields start after the last ')'.
    lp, rp = raw.index("("), raw.rindex(")")
    rest = raw[rp + 2:].split()
    return {"comm": raw[lp + 1:rp], "state": rest[0], "ppid": int(rest[1]), "pgid": int(rest[2]),
            "utime": int(rest[11]), "stime": int(rest[12]), "cutime": int(rest[13]),
            "cstime": int(rest[14]), "starttime": int(rest[19])}


def all_pids():
    """all_pids - every process id in /proc."""
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def descendants(root):
    """descendants - root and every process below it in the process tree (root first)."""
    children = {}
    for pid in all_pids():
        st = read_stat(pid)
        if st:
            children.setdefault(st["ppid"], []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def group_members(pgid):
    """group_members - pids of the live (not zombie) processes in process group pgid."""
    out = []
    for pid in all_pids():
        st = read_stat(pid)
        if st and st["pgid"] == pgid and st["state"] != "Z":
            out.append(pid)
    return out


def cpu_seconds(root):
    """cpu_seconds - CPU time of root and its live descendants, plus what root and they reaped (cutime/cstime).

    A Postfix daemon that exits is reaped by master, so its CPU moves into master's cutime/cstime:
    the sum stays monotonic while processes come and go.
    """
    ticks = 0
    for pid in descendants(root):
        st = read_stat(pid)
        if st:
            ticks += st["utime"] + st["stime"] + st["cutime"] + st["cstime"]
    return ticks / CLK_TCK


def pss_kib(root):
    """pss_kib - summed PSS (KiB, from /proc/PID/smaps_rollup) of root and its live descendants."""
    total = 0
    for pid in descendants(root):
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def process_count(root):
    """process_count - how many processes root's tree holds now."""
    return len([p for p in descendants(root) if read_stat(p)])


def _listen_sockets():
    """_listen_sockets - {socket inode: "addr:port"} of every TCP socket in LISTEN state."""
    out = {}
    for path, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] != "0A":  # LISTEN
                        continue
                    addr_hex, port_hex = parts[1].split(":")
                    raw = bytes.fromhex(addr_hex)
                    if v6:
                        # four host-order 32-bit words
                        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                        addr = socket.inet_ntop(socket.AF_INET6, raw)
                    else:
                        addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
                    out[parts[9]] = "%s:%d" % (addr, int(port_hex, 16))
        except OSError:
            pass
    return out


def _is_loopback(addr):
    host = addr.rsplit(":", 1)[0]
    return host.startswith("127.") or host == "::1" or host.startswith("::ffff:127.")


def check_loopback_only(root, what):
    """check_loopback_only - raise HarnessError if any process of root's tree listens outside loopback."""
    listening = _listen_sockets()
    for pid in descendants(root):
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]", target)
            if m and m.group(1) in listening and not _is_loopback(listening[m.group(1)]):
                raise HarnessError("%s (pid %d) listens on %s, outside loopback" % (what, pid, listening[m.group(1)]))


def filesystem_of(path):
    """filesystem_of - "device fstype" of the mount holding path (so tmpfs, where fsync is free, is visible)."""
    best, best_len = "unknown", -1
    path = os.path.realpath(path)
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, fstype = line.split()[:3]
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) > best_len:
                    best, best_len = "%s %s" % (dev, fstype), len(mnt)
    except OSError:
        pass
    return best


def disk_of(path):
    """disk_of - the /proc/diskstats name of the block device holding path ("vda"), or None."""
    dev = filesystem_of(path).split()[0]
    if not dev.startswith("/dev/"):
        return None
    try:
        return os.path.basename(os.path.realpath(dev))
    except OSError:
        return None


def disk_written_bytes(name):
    """disk_written_bytes - bytes written to block device name since boot (/proc/diskstats), or 0."""
    if not name:
        return 0
    try:
        with open("/proc/diskstats") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 9 and parts[2] == name:
                    return int(parts[9]) * 512
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------- the sink

class Sink:
    """smtp-sink on 127.0.0.1:port; counts messages ("." received) with the time of every increase."""

    def __init__(self, workdir, port=None):
        self.port = port or free_port()
        self.log = os.path.join(workdir, "sink.log")
        argv = ["smtp-sink", "-c"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        argv += ["-m", "1000", "127.0.0.1:%d" % self.port, "1024"]
        self.proc = spawn(argv, self.log, stdout=subprocess.PIPE)
        self.count = 0
        self.sessions = 0        # SMTP sessions the sink has seen end (its "sess=" counter)
        self.last_change = None  # time.monotonic() of the last increase of count
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, name="sink-reader", daemon=True)
        self.reader.start()
        if not wait_until(lambda: self.proc.poll() is not None or smtp_greets(self.port), 10):
            self.stop()
            raise HarnessError("smtp-sink did not start on port %d: %s" % (self.port, tail(self.log)))
        if self.proc.poll() is not None:
            raise HarnessError("smtp-sink exited at start: %s" % tail(self.log))
        check_loopback_only(self.proc.pid, "smtp-sink")

    def _read(self):
        """_read - parse the "sess=N quit=N mesg=N\\r" stream; timestamp each increase of mesg."""
        fd = self.proc.stdout.fileno()
        buf = b""
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            now = time.monotonic()
            if not data:
                with self.cond:
                    self.cond.notify_all()
                return
            buf += data
            *records, buf = buf.split(b"\r")
            newest = None
            for rec in records:
                m = re.search(rb"sess=(\d+).*mesg=(\d+)", rec)
                if m:
                    self.sessions = int(m.group(1))
                    newest = int(m.group(2))
            if newest is not None:
                with self.cond:
                    if newest > self.count:
                        self.count = newest
                        self.last_change = now
                        self.cond.notify_all()

    def snapshot(self):
        """snapshot - (message count, time of its last increase)."""
        with self.cond:
            return self.count, self.last_change

    def wait_count(self, target, timeout):
        """wait_count - wait until count >= target; (True, time reached) or (False, count) on timeout/exit."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.count < target:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return False, self.count
                self.cond.wait(min(left, 1.0))
            return True, self.last_change

    def wait_quiet(self, quiet=1.0, timeout=30.0):
        """wait_quiet - wait until the count has not changed for quiet seconds (stragglers of a run)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n, t = self.snapshot()
            if t is None or time.monotonic() - t >= quiet:
                return n
            time.sleep(0.2)
        return self.snapshot()[0]

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        kill_group(self.proc, signal.SIGTERM, 5)


# ---------------------------------------------------------------- the MTAs

class MTA:
    """Common part of a private MTA instance: a directory, a port, a process tree and its stats."""

    name = "mta"

    def __init__(self, workdir, sink_port, jobs):
        self.dir = workdir
        self.sink_port = sink_port
        self.jobs = jobs
        self.port = free_port()
        self.proc = None
        self.log = os.path.join(workdir, self.name + ".log")
        os.makedirs(workdir, exist_ok=True)

    def root_pid(self):
        """root_pid - the process whose tree is the MTA (for CPU and memory)."""
        raise NotImplementedError

    def cpu(self):
        return cpu_seconds(self.root_pid())

    def pss(self):
        return pss_kib(self.root_pid())

    def nprocs(self):
        return process_count(self.root_pid())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout):
        ok = wait_until(lambda: not self.alive() or smtp_greets(self.port), timeout, 0.1)
        if not ok or not self.alive():
            text = self.diagnostics()
            self.stop()
            raise HarnessError("%s did not start on 127.0.0.1:%d (exit %s):\n%s" %
                               (self.name, self.port, self.proc.poll() if self.proc else None, text))
        check_loopback_only(self.root_pid(), self.name)

    def diagnostics(self):
        """diagnostics - the tail of the instance's logs, for error messages."""
        return tail(self.log)

    def problems(self):
        """problems - warning/error lines the MTA logged (list of strings, possibly empty)."""
        return []

    def remove(self, keep=False):
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class SluiceMTA(MTA):
    """A Sluice daemon with a configuration written here: everything relays to the sink via tcp_local."""

    name = "sluice"

    def __init__(self, workdir, sink_port, jobs, binary, log_level="warn", dkim_sign=False):
        super().__init__(workdir, sink_port, jobs)
        self.binary = binary
        self.conf = os.path.join(workdir, "conf")
        os.makedirs(self.conf)
        self._write("option.dat",
                    "! written by bench/harness.py\n"
                    "host_name=sluice.bench.test\n"
                    "queue_dir=%s\n" % os.path.join(workdir, "queue") +
                    "maildir_root=%s\n" % os.path.join(workdir, "maildir") +
                    # nothing is resolved (the smart host is an IP literal); a dead port keeps
                    # any stray lookup off the real resolver
                    "dns_servers=127.0.0.1:%d\n" % free_port() +
                    "internal_networks=127.0.0.0/8\n"
                    "max_message_size=10M\n"
                    "log_level=%s\n" % log_level)
        if dkim_sign:  # --dkim-sign: every message signed with an RSA-2048 key for smtp-source's x.test
            key = os.path.join(self.conf, "dkim.pem")
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                            "-out", key], check=True, capture_output=True, timeout=60)
            self._write("dkim_keys", "x.test bench rsa-sha256 %s\n" % key)
            with open(os.path.join(self.conf, "option.dat"), "a") as f:
                f.write("dkim_sign=all\ndkim_keys_file=dkim_keys\n")
        # All the load comes from 127.0.0.1; Postfix exempts mynetworks from its per-client limits
        # (smtpd_client_event_limit_exceptions), so Sluice's per-client limit is lifted to match.
        self._write("dispatcher.cnf", "[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\n"
                    "PARAMETER=CHANNEL=tcp_local\nMAX_PER_CLIENT=1000\n" % self.port)
        self._write("job_controller.cnf", "[POOL=DEFAULT]\njob_limit=%d\n" % jobs)
        self._write("sluice.cnf",
                    "! everything leaves through tcp_local to the sink\n"
                    ".   $U%%$H@tcp_local-daemon\n"
                    "\n"
                    "defaults\n"
                    "\n"
                    "tcp_local smtp nomx daemon 127.0.0.1 port %d maxjobs %d\n"
                    "tcp_local-daemon\n" % (sink_port, jobs))

    def _write(self, name, text):
        with open(os.path.join(self.conf, name), "w") as f:
            f.write(text)

    def start(self, timeout=20.0):
        check = subprocess.run([self.binary, "check", "-C", self.conf], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise HarnessError("sluice check failed:\n%s%s" % (check.stdout, check.stderr))
        self.proc = spawn([self.binary, "serve", "-C", self.conf], self.log)
        self.wait_ready(timeout)

    def root_pid(self):
        return self.proc.pid

    def problems(self):
        text = tail(self.log, 200000)
        return [ln for ln in text.splitlines() if re.search(r"\] (warn|error|fatal)\b", ln)
                or "Sanitizer" in ln or "runtime error" in ln]

    def stop(self):
        kill_group(self.proc, signal.SIGTERM, 20)


POSTFIX_MASTER_CF = """\
# master.cf - written by bench/harness.py: the services a relay needs, nothing chrooted.
# service        type  private unpriv chroot wakeup maxproc command
127.0.0.1:{port} inet  n       -      n      -      -       smtpd
cleanup          unix  n       -      n      -      0       cleanup
qmgr             unix  n       -      n      300    1       qmgr
rewrite          unix  -       -      n      -      -       trivial-rewrite
bounce           unix  -       -      n      -      0       bounce
defer            unix  -       -      n      -      0       bounce
trace            unix  -       -      n      -      0       bounce
verify           unix  -       -      n      -      1       verify
flush            unix  n       -      n      1000?  0       flush
proxymap         unix  -       -      n      -      -       proxymap
smtp             unix  -       -      n      -      -       smtp
relay            unix  -       -      n      -      -       smtp
showq            unix  n       -      n      -      -       showq
error            unix  -       -      n      -      -       error
retry            unix  -       -      n      -      -       error
discard          unix  -       -      n      -      -       discard
anvil            unix  -       -      n      -      1       anvil
scache           unix  -       -      n      -      1       scache
postlog          unix-dgram n  -      n      -      1       postlogd
"""

POSTFIX_MAIN_CF = """\
# main.cf - written by bench/harness.py: a private relay instance; everything else is Postfix's default
# (durable queue: cleanup fsyncs the queue file before smtpd answers 250).
compatibility_level = 3.6
config_directory = {etc}
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:{sink_port}
default_destination_concurrency_limit = {jobs}
smtp_dns_support_level = disabled
biff = no
maillog_file_prefixes = {dir}
maillog_file = {maillog}
"""


class PostfixMTA(MTA):
    """A private Postfix instance (`postfix -c DIR start-fg`) relaying everything to the sink."""

    name = "postfix"

    def __init__(self, workdir, sink_port, jobs):
        super().__init__(workdir, sink_port, jobs)
        self.etc = os.path.join(workdir, "etc")
        self.spool = os.path.join(workdir, "spool")
        self.data = os.path.join(workdir, "data")
        self.maillog = os.path.join(workdir, "maillog")
        for d in (self.etc, self.spool, self.data):
            os.makedirs(d)
        # Postfix's daemons run as "postfix": every directory above the instance must be searchable.
        d = workdir
        while d not in ("/", ""):
            try:
                os.chmod(d, os.stat(d).st_mode | 0o011)
            except OSError:
                pass
            if d == os.path.dirname(d):
                break
            d = os.path.dirname(d)
            if d in ("/tmp", "/var/tmp"):
                break
        shutil.chown(self.data, "postfix")
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(POSTFIX_MAIN_CF.format(dir=workdir, etc=self.etc, spool=self.spool, data=self.data, maillog=self.maillog,
                                           sink_port=sink_port, jobs=jobs))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER_CF.format(port=self.port))
        self.master_pid = None

    def _postfix(self, *args, timeout=60):
        return subprocess.run(["postfix", "-c", self.etc] + list(args), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self, timeout=30.0):
        r = self._postfix("check")
        if r.returncode != 0:
            raise HarnessError("postfix check failed:\n%s%s" % (r.stdout, r.stderr))
        # start-fg keeps master in the foreground, in the process group spawn() created for it.
        self.proc = spawn(["postfix", "-c", self.etc, "start-fg"], self.log)
        pidfile = os.path.join(self.spool, "pid", "master.pid")

        def master():
            if not self.alive():
                return "exited"
            try:
                with open(pidfile) as f:
                    pid = int(f.read().split()[0])
                return pid if read_stat(pid) else None
            except (OSError, ValueError, IndexError):
                return None

        pid = wait_until(master, timeout, 0.1)
        if not isinstance(pid, int):
            text = self.diagnostics()
            self.stop()
            raise HarnessError("postfix master did not start:\n%s" % text)
        self.master_pid = pid
        registry_add(pid)
        self.wait_ready(timeout)

    def root_pid(self):
        return self.master_pid

    def diagnostics(self):
        return tail(self.log) + tail(self.maillog)

    def problems(self):
        text = tail(self.maillog, 200000)
        return [ln for ln in text.splitlines() if re.search(r"\b(warning|error|fatal|panic):", ln)]

    def stop(self):
        if self.alive():
            try:
                self._postfix("stop", timeout=30)
            except subprocess.TimeoutExpired:
                pass
            wait_until(lambda: not self.alive(), 15, 0.1)
        kill_group(self.proc, signal.SIGTERM, 10)
        # master makes itself a session (and process group) leader; its children stay in that group.
        # They notice master's exit and leave by themselves; whatever is left after 10 s is killed.
        if self.master_pid:
            if not wait_until(lambda: not group_members(self.master_pid), 10, 0.1):
                try:
                    os.killpg(self.master_pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                wait_until(lambda: not group_members(self.master_pid), 5, 0.1)


class DirectTarget(MTA):
    """No MTA at all: the load goes straight into the sink (the ceiling of source + sink on this machine)."""

    name = "direct"

    def __init__(self, workdir, sink_port, jobs):
        super().__init__(workdir, sink_port, jobs)
        self.port = sink_port

    def start(self, timeout=5.0):
        if not smtp_greets(self.port):
            raise HarnessError("smtp-sink does not answer on port %d" % self.port)

    def alive(self):
        return True

    def cpu(self):
        return 0.0

    def pss(self):
        return 0

    def nprocs(self):
        return 0

    def stop(self):
        pass
