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


def make_searchable(path):
    """make_searchable - give "other" search permission on path and its parents (up to /tmp or /var/tmp),
    so daemons running as postfix or nobody can reach files below it."""
    d = path
    while d not in ("/", ""):
        try:
            os.chmod(d, os.stat(d).st_mode | 0o011)
        except OSError:
            pass
        parent = os.path.dirname(d)
        if parent == d or parent in ("/tmp", "/var/tmp"):
            break
        d = parent


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


def listen_overflows():
    """listen_overflows - the kernel's TcpExt ListenOverflows counter (connections dropped at a full listen queue)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            d = dict(zip(names.split()[1:], values.split()[1:]))
            return int(d.get("ListenOverflows", 0))
    return 0


# ---------------------------------------------------------------- the sink

class Sink:
    """smtp-sink on 127.0.0.1:port; counts messages ("." received) with the time of every increase.

    With dump=DIR every message is appended to a dump file in DIR (smtp-sink -D): dump_take()
    returns what arrived since the last call and empties the files.
    """

    def __init__(self, workdir, port=None, dump=None):
        self.port = port or free_port()
        self.log = os.path.join(workdir, "sink.log")
        self.dump = dump
        argv = ["smtp-sink", "-c"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        if dump:
            # every message appended to dump files in the directory dump (benchmark 7 checks what
            # the milter added); smtp-sink, running as "nobody", creates them (-D appends a random
            # suffix to the name)
            os.makedirs(dump, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(dump, "nobody")
                make_searchable(os.path.dirname(dump))
            argv += ["-D", os.path.join(dump, "dump.")]
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

    def dump_take(self):
        """dump_take - the dump files' content (bytes) since the last call; the files are emptied (call when quiet)."""
        data = []
        for name in sorted(os.listdir(self.dump)):
            with open(os.path.join(self.dump, name), "r+b") as f:
                data.append(f.read())
                f.truncate(0)
        return b"".join(data)

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

    def __init__(self, workdir, sink_port, jobs, binary, log_level="warn", milter_port=None, dkim_sign=False):
        super().__init__(workdir, sink_port, jobs)
        self.binary = binary
        self.conf = os.path.join(workdir, "conf")
        os.makedirs(self.conf)
        # milter_port: one milter (benchmark 7) asked in every session of the service's channel,
        # required (the default: a milter failure is a 4xx, as Postfix's milter_default_action = tempfail)
        milter = ("spamfilter1_type=milter\n"
                  "spamfilter1_address=inet:%d@127.0.0.1\n" % milter_port) if milter_port else ""
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
                    "log_level=%s\n" % log_level + milter)
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
                    "tcp_local smtp nomx daemon 127.0.0.1 port %d maxjobs %d%s\n"
                    "tcp_local-daemon\n" % (sink_port, jobs, " sourcespamfilter1" if milter_port else ""))

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

# benchmark 7: one milter in smtpd (one connection per SMTP session); a milter failure is a 4xx
POSTFIX_MILTER_CF = """\
smtpd_milters = inet:127.0.0.1:{port}
milter_default_action = tempfail
milter_protocol = 6
"""


class PostfixMTA(MTA):
    """A private Postfix instance (`postfix -c DIR start-fg`) relaying everything to the sink."""

    name = "postfix"

    def __init__(self, workdir, sink_port, jobs, milter_port=None):
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
            if milter_port:
                f.write(POSTFIX_MILTER_CF.format(port=milter_port))
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


# ---------------------------------------------------------------- Exim and OpenSMTPD (issue 16)

# scripts/setup.sh unpacks both packages here (apt-get download + dpkg -x): they conflict with
# postfix through mail-transport-agent, so they cannot be installed beside it.
PEERS_DIR = os.environ.get("SLUICE_PEERS_DIR", "/opt/sluice-peers")
EXIM_BIN = os.path.join(PEERS_DIR, "exim4", "usr", "sbin", "exim4")
SMTPD_BIN = os.path.join(PEERS_DIR, "opensmtpd", "usr", "sbin", "smtpd")
REAPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reaper.py")


def peer_version(binary):
    """peer_version - the Debian version of an unpacked peer package (its VERSION file), or "missing"."""
    try:
        with open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(binary))), "VERSION")) as f:
            return f.read().strip()
    except OSError:
        return "missing"


def make_searchable(path):
    """make_searchable - o+x on path and its parents up to /tmp or /var/tmp (daemons that drop root walk them)."""
    d = path
    while d not in ("/", ""):
        try:
            os.chmod(d, os.stat(d).st_mode | 0o011)
        except OSError:
            pass
        parent = os.path.dirname(d)
        if parent == d or parent in ("/tmp", "/var/tmp"):
            break
        d = parent


class ReapedMTA(MTA):
    """An MTA started under bench/reaper.py: its orphans (Exim's delivery processes) stay ours to count."""

    def command(self):
        """command - argv of the MTA in the foreground."""
        raise NotImplementedError

    def start(self, timeout=30.0):
        self.proc = spawn(["/usr/bin/python3", REAPER] + self.command(), self.log)
        self.wait_ready(timeout)

    def root_pid(self):
        return self.proc.pid

    def _members(self):
        """_members - the MTA's processes: the reaper's descendants, not the reaper itself."""
        return [p for p in descendants(self.proc.pid) if p != self.proc.pid]

    def cpu(self):
        # the reaper's cutime/cstime holds every reaped MTA process; its own utime/stime is ours, not the MTA's
        own = read_stat(self.proc.pid)
        total = cpu_seconds(self.proc.pid)
        return total - ((own["utime"] + own["stime"]) / CLK_TCK if own else 0.0)

    def pss(self):
        return sum(pss_kib_one(p) for p in self._members())

    def nprocs(self):
        return len(self._members())

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)  # passed on to the MTA by the reaper
            except ProcessLookupError:
                pass
            wait_until(lambda: self.proc.poll() is not None or not self._members(), 10, 0.1)
        for pid in self._members():  # sessions or deliveries the MTA left running
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        kill_group(self.proc, signal.SIGTERM, 10)


def pss_kib_one(pid):
    """pss_kib_one - PSS (KiB) of one process, 0 if it is gone."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


EXIM_CONF = """\
# exim.conf - written by bench/harness.py: a private relay instance. Everything not set here is
# Exim's default, including durability: the -D (body) and -H (envelope and headers) spool files
# are fsync'd before the 250 to DATA.
exim_user = Debian-exim
exim_group = Debian-exim
exim_path = {binary}
primary_hostname = exim.bench.test
spool_directory = {spool}
log_file_path = {logdir}/%slog
pid_file_path = {dir}/exim.pid
daemon_smtp_ports = {port}
local_interfaces = <; 127.0.0.1
disable_ipv6 = true
host_lookup =
keep_environment =
acl_smtp_rcpt = acl_rcpt
# Limits lifted, as Sluice's MAX_PER_CLIENT is: all the load comes from 127.0.0.1 and Exim's
# defaults (20 sessions, a listen backlog of 20, no immediate delivery after the 10th message of
# a session) would refuse the 50- and 100-session runs or leave benchmark 5's mail for a queue run.
smtp_accept_max = 1000
smtp_connect_backlog = 1024
smtp_accept_queue_per_connection = 0
{extra}

begin acl

acl_rcpt:
  accept hosts = 127.0.0.0/8
  deny   message = relay not permitted

begin routers

nexthop:
  driver = manualroute
  route_list = * {next_host}
  self = send
  transport = remote_smtp

begin transports

remote_smtp:
  driver = smtp
  port = {next_port}

begin retry

*   *   F,2h,1m; F,4d,15m
"""


class EximMTA(ReapedMTA):
    """A private Exim 4 daemon (`exim4 -C FILE -bdf -q1m`) relaying everything to 127.0.0.1:sink_port."""

    name = "exim"

    def __init__(self, workdir, sink_port, jobs, next_host="127.0.0.1", extra="", binary=None):
        super().__init__(workdir, sink_port, jobs)
        self.binary = binary or EXIM_BIN
        self.spool = os.path.join(workdir, "spool")
        self.logdir = os.path.join(workdir, "log")
        self.conf = os.path.join(workdir, "exim.conf")
        for d in (self.spool, self.logdir):
            os.makedirs(d)
            shutil.chown(d, "Debian-exim", "Debian-exim")
        make_searchable(workdir)
        with open(self.conf, "w") as f:
            f.write(EXIM_CONF.format(binary=self.binary, spool=self.spool, logdir=self.logdir, dir=workdir, port=self.port,
                                     next_host=next_host, next_port=sink_port, extra=extra))
        os.chmod(self.conf, 0o644)

    def command(self):
        # -bdf: the daemon in the foreground; -q1m: a queue runner for retries (Debian's default is 30m)
        return [self.binary, "-C", self.conf, "-bdf", "-q1m"]

    def start(self, timeout=30.0):
        if not os.access(self.binary, os.X_OK):
            raise HarnessError("%s not found: run scripts/setup.sh (Exim unpacked under %s)" % (self.binary, PEERS_DIR))
        r = subprocess.run([self.binary, "-C", self.conf, "-bV"], capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise HarnessError("exim -bV failed:\n%s%s" % (r.stdout, r.stderr))
        super().start(timeout)

    def diagnostics(self):
        return tail(self.log) + tail(os.path.join(self.logdir, "mainlog")) + tail(os.path.join(self.logdir, "paniclog"))

    def problems(self):
        # "exim user lost privilege for using -C option": every re-exec of a private configuration (-C)
        # says so; delivery runs as Debian-exim anyway, so it is not a problem of the run
        out = [ln for ln in tail(os.path.join(self.logdir, "paniclog"), 200000).splitlines()
               if ln.strip() and "lost privilege for using -C" not in ln]
        text = tail(os.path.join(self.logdir, "mainlog"), 200000)
        return out + [ln for ln in text.splitlines() if " == " in ln or " ** " in ln]


SMTPD_CONF = """\
# smtpd.conf - written by bench/harness.py: a private relay instance; everything else is
# OpenSMTPD's default, including durability: the envelope is fsync'd, the message file is not.
listen on 127.0.0.1 port {port} hostname opensmtpd.bench.test{listen_extra}
action "nexthop" relay host smtp://{next_host}:{next_port}
match from src 127.0.0.0/8 for any action "nexthop"
"""


class OpenSMTPDMTA(ReapedMTA):
    """A private OpenSMTPD (`smtpd -d -f FILE`) relaying everything to 127.0.0.1:sink_port.

    Its spool (/var/spool/smtpd) and control socket (/var/run/smtpd.sock) are compiled in: it runs
    in a mount namespace of its own (unshare -m) where /var/spool and /run are this instance's
    directories, so its queue is on the work directory's file system and instances do not meet.
    """

    name = "opensmtpd"

    def __init__(self, workdir, sink_port, jobs, next_host="127.0.0.1", listen_extra="", binary=None):
        super().__init__(workdir, sink_port, jobs)
        self.binary = binary or SMTPD_BIN
        self.varspool = os.path.join(workdir, "var-spool")
        self.run = os.path.join(workdir, "run")
        self.conf = os.path.join(workdir, "smtpd.conf")
        for d in (self.varspool, self.run):
            os.makedirs(d)
            os.chmod(d, 0o755)
        make_searchable(workdir)
        with open(self.conf, "w") as f:
            f.write(SMTPD_CONF.format(port=self.port, next_host=next_host, next_port=sink_port,
                                      listen_extra=listen_extra))
        os.chmod(self.conf, 0o644)

    def command(self):
        script = ('mount --bind "$1" /var/spool && mount --bind "$2" /run && exec "$3" -d -f "$4"')
        return ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script, "sh",
                self.varspool, self.run, self.binary, self.conf]

    def start(self, timeout=30.0):
        if not os.access(self.binary, os.X_OK):
            raise HarnessError("%s not found: run scripts/setup.sh (OpenSMTPD unpacked under %s)" %
                               (self.binary, PEERS_DIR))
        r = subprocess.run([self.binary, "-n", "-f", self.conf], capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise HarnessError("smtpd -n failed:\n%s%s" % (r.stdout, r.stderr))
        super().start(timeout)

    def queue_dir(self):
        """queue_dir - the instance's spool (/var/spool/smtpd inside its namespace)."""
        return os.path.join(self.varspool, "smtpd")

    def problems(self):
        text = tail(self.log, 200000)
        return [ln for ln in text.splitlines() if re.search(r"\b(warn|warning|fatal|error)\b", ln)
                and "result=Ok" not in ln and "purge_task" not in ln]
# ---------------------------------------------------------------- the milter (benchmark 7)

def build_milter_shim(workdir):
    """build_milter_shim - compile bench/milter_count.c (syslog to a file, accepted connections counted) into workdir."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "milter_count.c")
    out = os.path.join(workdir, "milter_count.so")
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise HarnessError("no C compiler for bench/milter_count.c (build-essential, scripts/setup.sh)")
    r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-o", out, src, "-ldl"], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise HarnessError("cannot build the milter shim:\n%s" % r.stderr)
    return out


def make_dkim_key(keydir):
    """make_dkim_key - a 2048-bit signing key for example.test, selector sel1 (opendkim-genkey), in keydir."""
    os.makedirs(keydir, exist_ok=True)
    r = subprocess.run(["opendkim-genkey", "-b", "2048", "-D", keydir, "-d", "example.test", "-s", "sel1", "-r"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise HarnessError("opendkim-genkey failed (opendkim-tools, scripts/setup.sh): %s" % r.stderr)
    return os.path.join(keydir, "sel1.private")


OPENDKIM_CONF = """\
# opendkim.conf - written by bench/harness.py: sign mail of example.test from 127.0.0.1
Mode                  sv
Domain                example.test
Selector              sel1
KeyFile               {key}
RequireSafeKeys       false
Socket                inet:{port}@127.0.0.1
Background            no
Canonicalization      relaxed/simple
InternalHosts         127.0.0.1
Syslog                yes
SyslogSuccess         yes
UMask                 022
"""
# No ResolverConfiguration: opendkim 2.11 (VBR) parses that file with libunbound for every message,
# and libunbound's parser is not thread-safe ("fatal flex scanner internal error" with concurrent
# sessions). Signing needs no DNS.


class OpenDKIM:
    """opendkim as a milter on 127.0.0.1:port, signing for example.test, in the foreground (its own process group).

    Its syslog lines and a line per accepted milter connection go to DIR/opendkim.log through
    the LD_PRELOAD shim (bench/milter_count.c), so the connections and signatures it made are
    counted on the milter's side, whatever the MTA.
    """

    def __init__(self, workdir, key, shim):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = free_port()
        self.log = os.path.join(workdir, "opendkim.log")
        conf = os.path.join(workdir, "opendkim.conf")
        with open(conf, "w") as f:
            f.write(OPENDKIM_CONF.format(key=key, port=self.port))
        env = dict(os.environ, LD_PRELOAD=shim, BENCH_SYSLOG_FILE=self.log)
        self.proc = spawn(["opendkim", "-f", "-x", conf], os.path.join(workdir, "opendkim.stderr"), env=env)
        if not wait_until(lambda: self.proc.poll() is not None or tcp_port_open(self.port), 15, 0.05) \
                or self.proc.poll() is not None:
            text = tail(os.path.join(workdir, "opendkim.stderr")) + tail(self.log)
            self.stop()
            raise HarnessError("opendkim did not start on 127.0.0.1:%d: %s" % (self.port, text))

    def cpu(self):
        """cpu - CPU seconds opendkim has used (all its threads)."""
        st = read_stat(self.proc.pid)
        return (st["utime"] + st["stime"]) / CLK_TCK if st else 0.0

    def counts(self):
        """counts - (connections accepted, signatures added, other log lines) so far."""
        accepts = signed = 0
        other = []
        try:
            with open(self.log, "rb") as f:
                for line in f:
                    if line.startswith(b"milter_accept"):
                        accepts += 1
                    elif b"DKIM-Signature field added" in line:
                        signed += 1
                    else:
                        other.append(line.decode("utf-8", "replace").rstrip())
        except OSError:
            pass
        return accepts, signed, other

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        kill_group(self.proc, signal.SIGTERM, 10)


def tcp_port_open(port, host="127.0.0.1"):
    """tcp_port_open - whether something accepts TCP connections on host:port (the probe connection is closed at once)."""
    try:
        socket.create_connection((host, port), 0.5).close()
        return True
    except OSError:
        return False
