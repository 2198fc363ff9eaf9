"""sluicetest - helpers for Sluice's integration tests: the daemon under test, real peers, an SMTP
client that sends exact bytes, Maildir and log readers.

Everything here is bounded in time (every wait has a timeout) and owns what it starts: each
process runs in its own process group and is stopped by its owner's stop(). Nothing here touches
a fixed port or a fixed address: callers pick free ports with free_port() and loopback triples with
loopback_net(), or take both, with dnsmasq and peers, from a Lab.
"""
import email
import email.policy
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
SRC = os.environ.get("SLUICE_SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("SLUICE_BIN") or os.path.join(SRC, "build", "sluice")

# Sanitizer reports in the daemon's stderr that fail a test at teardown.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ERROR: UndefinedBehaviorSanitizer")

BARE_CR = re.compile(rb"\r(?!\n)")
BARE_LF = re.compile(rb"(?<!\r)\n")


# ---------------------------------------------------------------- addresses and ports

def free_port(host="127.0.0.1", also=()):
    """free_port - a TCP port that is free on host (and on every address in also) right now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        ok = True
        for other in also:
            with socket.socket() as s2:
                try:
                    s2.bind((other, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free port found on %s %s" % (host, also))


def loopback_net():
    """loopback_net - a random "127.X.Y" prefix; tests use 127.X.Y.2, .3, ... so parallel tests never collide."""
    return "127.%d.%d" % (random.randint(20, 250), random.randint(1, 254))


def wait_until(pred, timeout, interval=0.1, what="condition"):
    """wait_until - poll pred() until it returns a true value (returned) or timeout seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def kill_group(proc, sig=signal.SIGTERM, wait=10.0):
    """kill_group - signal proc's process group; SIGKILL it if it has not exited after wait seconds. Returns the exit code."""
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
    return proc.returncode


def make_tmpdir(tag):
    """make_tmpdir - a fresh private temporary directory for one test or module."""
    return tempfile.mkdtemp(prefix="sluice-%s-" % tag)


def remove_tmpdir(path):
    """remove_tmpdir - delete a directory from make_tmpdir unless SLUICE_KEEP_TMP is set."""
    if os.environ.get("SLUICE_KEEP_TMP"):
        sys.stderr.write("keeping %s\n" % path)
        return
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- log lines

LOG_RE = re.compile(r"sluice\[(\d+)\] (\w+): (\S+) (\S+) ?(.*)$")
KV_RE = re.compile(r'([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|\S*)')


class LogLine:
    """One parsed daemon log line: level, id, event and key=value fields."""

    def __init__(self, raw, level, ident, event, rest):
        self.raw, self.level, self.id, self.event, self.rest = raw, level, ident, event, rest
        self.kv = {}
        for k, v in KV_RE.findall(rest):
            if v.startswith('"') and v.endswith('"') and len(v) >= 2:
                v = re.sub(r"\\(.)", r"\1", v[1:-1])
            self.kv[k] = v

    def __repr__(self):
        return self.raw

    @property
    def time(self):
        """time - the line's timestamp (2026-01-02T03:04:05.678Z) as Unix seconds, or None."""
        m = LOG_TIME_RE.match(self.raw)
        if not m:
            return None
        import calendar
        base = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
        return base + int(m.group(2)) / 1000.0


LOG_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z ")


class JsonLogLine(LogLine):
    """One log line of log_format=json: the members other than ts, level, id and event are the fields."""

    def __init__(self, raw, obj):
        self.raw, self.obj = raw, obj
        self.level, self.id, self.event, self.rest = obj.get("level"), obj.get("id") or "-", obj.get("event"), ""
        self.kv = {k: v for k, v in obj.items() if k not in ("ts", "level", "id", "event")}

    @property
    def time(self):
        import calendar
        ts = self.obj.get("ts", "")
        return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000.0


def parse_log(text):
    """parse_log - the event lines of a daemon log, text or JSON (other lines, e.g. sanitizer output, are skipped)."""
    out = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict) and "event" in obj:
                out.append(JsonLogLine(raw, obj))
            continue
        m = LOG_RE.search(raw)
        if m:
            out.append(LogLine(raw, m.group(2), m.group(3), m.group(4), m.group(5)))
    return out


# ---------------------------------------------------------------- configuration

DEFAULT_LDIF = """\
dn: dc=example,dc=test
objectClass: top
objectClass: domain
objectClass: mailDomain
dc: example
associatedDomain: example.test

dn: uid=alice,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: mailUser
uid: alice
cn: Alice Test
sn: Test
mail: alice@example.test
mailAlternateAddress: ali@example.test

dn: uid=bob,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: mailUser
uid: bob
cn: Bob Test
sn: Test
mail: bob@example.test

dn: uid=carol,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: mailUser
uid: carol
cn: Carol Test
sn: Test
mail: carol@example.test

dn: uid=dave,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: mailUser
uid: dave
cn: Dave Test
sn: Test
mail: dave@example.test

dn: cn=staff,ou=groups,dc=example,dc=test
objectClass: groupOfNames
objectClass: mailGroup
cn: staff
mail: staff@example.test
member: uid=alice,ou=people,dc=example,dc=test
member: uid=bob,ou=people,dc=example,dc=test
"""


def sluice_cnf(tcp_local="smtp mx port 25"):
    """sluice_cnf - rewrite rules (example.test local, everything else tcp_local) and channel blocks."""
    return ("example.test   $U%$D@local-daemon\n"
            ".              $U%$H@tcp_local-daemon\n"
            "\n"
            "defaults\n"
            "\n"
            "l\n"
            "local-daemon\n"
            "\n"
            "tcp_local " + tcp_local + "\n"
            "tcp_local-daemon\n")


# ---------------------------------------------------------------- the daemon

class Sluice:
    """The daemon under test: a configuration directory, start/stop/kill, its logs and Maildirs."""

    def __init__(self, workdir, options=None, tcp_local=None, ldif=DEFAULT_LDIF, host_name="mx.example.test"):
        self.workdir = workdir
        self.confdir = os.path.join(workdir, "conf")
        self.queue_dir = os.path.join(workdir, "queue")
        self.maildir_root = os.path.join(workdir, "maildir")
        self.host_name = host_name
        self.port = free_port()
        self.proc = None
        self.killed = False
        self.stopped = False
        self.starts = 0
        self.logfiles = []
        self.problems = []  # teardown findings (sanitizer reports, unclean exits)
        os.makedirs(self.confdir)
        opts = {
            "host_name": host_name,
            "postmaster": "postmaster@example.test",
            "queue_dir": self.queue_dir,
            "maildir_root": self.maildir_root,
            # A port where nothing answers, so nothing ever asks a real resolver.
            "dns_servers": "127.0.0.1:%d" % free_port(),
            "max_message_size": "1M",
            "log_level": "debug",
            "retry_interval": "1",
            "retry_max": "2",
            "connect_timeout": "2",
            "command_timeout": "5",
        }
        opts.update(options or {})
        self.options = opts
        if tcp_local is None:
            tcp_local = "smtp mx port %d" % free_port()
        self.write("option.dat", "! written by the integration tests\n" +
                   "".join("%s=%s\n" % (k, v) for k, v in opts.items() if v is not None))
        self.write("dispatcher.cnf", "[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\n"
                   "PARAMETER=CHANNEL=tcp_local\n" % self.port)
        self.write("sluice.cnf", sluice_cnf(tcp_local))
        self.write("directory.ldif", ldif)

    def write(self, name, text):
        """write - (re)write one configuration file."""
        with open(os.path.join(self.confdir, name), "w") as f:
            f.write(text)

    def start(self, timeout=20.0):
        """start - run `sluice serve -C confdir` and wait for its "ready" event."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if not os.access(BIN, os.X_OK):
            raise AssertionError("daemon binary %s not found (set SLUICE_BIN)" % BIN)
        self.starts += 1
        self.killed = False
        self.stopped = False
        logfile = os.path.join(self.workdir, "sluice.%d.log" % self.starts)
        self.logfiles.append(logfile)
        env = dict(os.environ)
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        with open(logfile, "wb") as err:
            self.proc = subprocess.Popen([BIN, "serve", "-C", self.confdir], stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, start_new_session=True, env=env)

        def ready():
            if self.proc.poll() is not None:
                return "exited"
            return "ready" if any(ln.event == "ready" for ln in parse_log(self.read_log(logfile))) else None

        r = wait_until(ready, timeout, 0.05)
        if r != "ready":
            tail = self.read_log(logfile)[-3000:]
            kill_group(self.proc, signal.SIGKILL, 5)
            raise AssertionError("sluice did not become ready (%s, exit %s); log:\n%s" %
                                 (r or "timeout", self.proc.returncode, tail))
        return self

    def running(self):
        """running - whether the daemon process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """kill9 - SIGKILL the daemon (crash simulation) and reap it."""
        self.killed = True
        kill_group(self.proc, signal.SIGKILL, 10)

    def stop(self):
        """stop - SIGTERM and wait; records unclean exits and sanitizer reports in self.problems."""
        if self.stopped:
            return
        self.stopped = True
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None and not self.killed:
                self.problems.append("sluice died during the test (exit status %s)" % self.proc.returncode)
            self.check_sanitizers()
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill_group(self.proc, signal.SIGKILL, 5)
            self.problems.append("sluice did not exit within 20 s of SIGTERM")
        if self.proc.returncode not in (0, None) and not self.problems:
            self.problems.append("sluice exited with status %s after SIGTERM" % self.proc.returncode)
        self.check_sanitizers()

    def check_sanitizers(self):
        """check_sanitizers - add any sanitizer report found in the logs to self.problems."""
        text = self.log_text()
        for marker in SANITIZER_MARKERS:
            i = text.find(marker)
            if i >= 0:
                self.problems.append("sanitizer report in the daemon log:\n" + text[max(0, i - 200):i + 3000])
                break

    @staticmethod
    def read_log(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_text(self):
        """log_text - every start's stderr, concatenated."""
        return "".join(self.read_log(p) for p in self.logfiles)

    def log(self):
        """log - the parsed event lines of every start so far."""
        return parse_log(self.log_text())

    def events(self, event, **match):
        """events - log lines of one event whose key=value fields include match."""
        return [ln for ln in self.log() if ln.event == event and all(ln.kv.get(k) == v for k, v in match.items())]

    def wait_event(self, pred, timeout=15.0):
        """wait_event - the first log line satisfying pred(line) within timeout, else None."""
        def find():
            for ln in self.log():
                if pred(ln):
                    return ln
            return None
        return wait_until(find, timeout, 0.1)

    def log_excerpt(self, *needles, limit=60):
        """log_excerpt - log lines mentioning any needle (all lines when none), for failure messages."""
        lines = self.log_text().splitlines()
        if needles:
            lines = [ln for ln in lines if any(n and n in ln for n in needles)]
        return "\n".join(lines[-limit:])

    # Maildir access

    def mailbox(self, addr):
        """mailbox - the new/ folder of addr's Maildir."""
        local, domain = addr.lower().rsplit("@", 1)
        return os.path.join(self.maildir_root, domain, local, "new")

    def messages(self, addr):
        """messages - {file name: bytes} of every message in addr's new/ folder."""
        box = self.mailbox(addr)
        out = {}
        try:
            names = sorted(os.listdir(box))
        except FileNotFoundError:
            return out
        for n in names:
            try:
                with open(os.path.join(box, n), "rb") as f:
                    out[n] = f.read()
            except FileNotFoundError:
                pass
        return out

    def find_messages(self, addr, needle):
        """find_messages - contents of addr's messages that contain the bytes needle."""
        return [d for d in self.messages(addr).values() if needle in d]

    def wait_message(self, addr, needle, timeout=20.0, count=1):
        """wait_message - wait until addr holds at least count messages containing needle; returns them (maybe fewer)."""
        wait_until(lambda: len(self.find_messages(addr, needle)) >= count, timeout, 0.1)
        return self.find_messages(addr, needle)

    def all_maildir_files(self):
        """all_maildir_files - paths of every file under maildir_root/*/*/new."""
        out = []
        for dirpath, _dirs, files in os.walk(self.maildir_root):
            if os.path.basename(dirpath) == "new":
                out.extend(os.path.join(dirpath, f) for f in files)
        return out

    # Queue access

    def queue(self, *args, timeout=20.0):
        """queue - run `sluice queue ARGS -C confdir` (live or offline); the CompletedProcess (text)."""
        return subprocess.run([BIN, "queue"] + [str(a) for a in args] + ["-C", self.confdir],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)

    def queue_files(self, channel=None):
        """queue_files - paths of the queued files QUEUE/<channel>/<NNN>/<id> (of one channel, or all)."""
        out = []
        try:
            chans = [channel] if channel else os.listdir(self.queue_dir)
        except FileNotFoundError:
            return out
        for ch in chans:
            if ch.startswith(".") or ch in ("tmp", "corrupt"):
                continue
            cdir = os.path.join(self.queue_dir, ch)
            if not os.path.isdir(cdir):
                continue
            for sub in sorted(os.listdir(cdir)):
                sdir = os.path.join(cdir, sub)
                if os.path.isdir(sdir):
                    out.extend(os.path.join(sdir, f) for f in sorted(os.listdir(sdir)))
        return out


# ---------------------------------------------------------------- SMTP client speaking exact bytes

class SMTPError(Exception):
    pass


class Reply:
    """An SMTP reply: code, the text lines (without the code), and the raw bytes."""

    def __init__(self, code, lines, raw):
        self.code, self.lines, self.raw = code, lines, raw

    @property
    def text(self):
        return "\n".join(self.lines)

    def enhanced(self):
        """enhanced - the enhanced status code at the start of the first line, or ''."""
        m = re.match(r"([245]\.\d{1,3}\.\d{1,3})\b", self.lines[0] if self.lines else "")
        return m.group(1) if m else ""

    def __repr__(self):
        return "Reply(%r)" % self.raw.decode("utf-8", "replace")


class Client:
    """A raw SMTP client: send exact bytes, read whole (multi-line) replies, every read bounded."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, source=None, read_greeting=True):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.closed = False
        self.greeting = self.reply() if read_greeting else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            self.closed = True
            raise SMTPError("connection closed by server; unread: %r" % self.buf)
        self.buf += chunk

    def reply(self):
        """reply - read one complete reply (all its lines)."""
        lines, raw = [], b""
        while True:
            while b"\r\n" not in self.buf:
                if len(self.buf) > 100000:
                    raise SMTPError("reply line too long: %r" % self.buf[:200])
                self._fill()
            line, self.buf = self.buf.split(b"\r\n", 1)
            raw += line + b"\r\n"
            m = re.match(rb"^(\d{3})([ -])(.*)$", line)
            if not m:
                raise SMTPError("malformed reply line %r" % line)
            lines.append(m.group(3).decode("utf-8", "replace"))
            if m.group(2) == b" ":
                return Reply(int(m.group(1)), lines, raw)

    def cmd(self, line):
        """cmd - send one command line (CRLF added) and return its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply()

    def replies_until_close(self, timeout=5.0):
        """replies_until_close - every reply until the server closes or timeout passes; (replies, closed)."""
        out = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                out.append(self.reply())
        except (SMTPError, socket.timeout, OSError):
            pass
        return out, self.closed or self.is_closed(0.5)

    def is_closed(self, timeout=3.0):
        """is_closed - whether the server closes the connection within timeout (pending bytes are buffered)."""
        if self.closed:
            return True
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed = True
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except OSError:
            self.closed = True
            return True
        return False

    def ehlo(self, name="client.example.test"):
        r = self.cmd("EHLO " + name)
        if r.code != 250:
            raise SMTPError("EHLO refused: %r" % r)
        return r

    def data(self, message, stuffed=False):
        """data - DATA, the message dot-stuffed (unless already), the terminator; returns the final reply."""
        r = self.cmd("DATA")
        if r.code != 354:
            return r
        self.send(message if stuffed else dot_stuff(message))
        self.send(b".\r\n")
        return self.reply()

    def quit(self):
        try:
            self.cmd("QUIT")
        except (SMTPError, OSError):
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def dot_stuff(message):
    """dot_stuff - RFC 5321 4.5.2 transparency for a CRLF message that ends in CRLF."""
    assert message.endswith(b"\r\n"), "message must end with CRLF"
    lines = message.split(b"\r\n")
    return b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in lines)


def queue_id(reply):
    """queue_id - the id from "250 2.0.0 Ok: queued as ID", or None."""
    m = re.search(r"queued as (\S+)", reply.text)
    return m.group(1) if m else None


def send_message(port, sender, rcpts, message, mail_params="", rcpt_params=""):
    """send_message - one complete transaction; returns (final reply, [rcpt replies])."""
    with Client(port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<%s>%s" % (sender, (" " + mail_params) if mail_params else ""))
        if r.code != 250:
            raise SMTPError("MAIL refused: %r" % r)
        rr = [c.cmd("RCPT TO:<%s>%s" % (a, (" " + rcpt_params) if rcpt_params else "")) for a in rcpts]
        if not any(x.code == 250 for x in rr):
            c.quit()
            raise SMTPError("every RCPT refused: %r" % rr)
        final = c.data(message)
        c.quit()
        return final, rr


def make_message(msgid, subject="test", to="bob@example.test", frm="alice@example.test", body=b"Hello.\r\n",
                 extra=b""):
    """make_message - a small CRLF message with the given Message-ID (without angle brackets)."""
    return (b"From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s>\r\n%s\r\n" %
            (frm.encode(), to.encode(), subject.encode(), msgid.encode(), extra)) + body


def split_header(data):
    """split_header - (header bytes, body bytes) of an RFC 5322 message."""
    i = data.find(b"\r\n\r\n")
    if i < 0:
        return data, b""
    return data[:i + 2], data[i + 4:]


def header_fields(header):
    """header_fields - [(name, value)] of a header block, folded lines joined."""
    fields = []
    for line in header.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + b"\r\n" + line)
        else:
            name, _, value = line.partition(b":")
            fields.append((name.decode("latin-1"), value.strip()))
    return fields


def parse_mail(data):
    """parse_mail - an email.message.Message of the bytes."""
    return email.message_from_bytes(data, policy=email.policy.compat32)


def dsn_recipient_blocks(data):
    """dsn_recipient_blocks - [{field: value}] per-recipient groups of a multipart/report's delivery-status part."""
    msg = parse_mail(data)
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                blocks = [dict((k.lower(), v) for k, v in p.items()) for p in payload]
            else:
                blocks = []
                for chunk in re.split(r"\r?\n\r?\n", payload):
                    d = {}
                    for m in re.finditer(r"^([A-Za-z-]+):\s*(.*)$", chunk, re.M):
                        d[m.group(1).lower()] = m.group(2).strip()
                    if d:
                        blocks.append(d)
            # The first group is per-message (Reporting-MTA ...); recipients carry Final-Recipient.
            return [b for b in blocks if "final-recipient" in b]
    return None


# ---------------------------------------------------------------- peers

class Peer:
    """A helper process from peers/ (sink, busy server, dnsmasq) in its own process group."""

    def __init__(self, argv, workdir, name):
        self.workdir = workdir
        self.name = name
        self.log = os.path.join(workdir, name + ".log")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True)

    def wait_file(self, path, timeout=10.0):
        ok = wait_until(lambda: os.path.exists(path) or self.proc.poll() is not None, timeout, 0.05)
        if not ok or not os.path.exists(path):
            self.stop()
            with open(self.log, "rb") as f:
                raise AssertionError("%s did not start: %s" % (self.name, f.read()[-2000:]))

    def stop(self):
        kill_group(self.proc, signal.SIGTERM, 5)


class Sink(Peer):
    """peers/sink.py: an aiosmtpd sink recording each message as N.json (envelope) + N.eml (content)."""

    def __init__(self, workdir, host, port, name="sink", reject=(), dsn=True, tempfail=(), tls=None,
                 throttle_after=None, throttle_count=1, delay=0.0, refuse_starttls=False):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        argv = [sys.executable, os.path.join(PEERS, "sink.py"), "--listen", "%s:%d" % (host, port), "--dir", self.dir]
        for r in reject:
            argv += ["--reject", r]
        for r in tempfail:
            argv += ["--tempfail", r]
        if not dsn:
            argv.append("--no-dsn")
        if tls:  # (certificate, key): offer STARTTLS
            argv += ["--tlscert", tls[0], "--tlskey", tls[1]]
        if throttle_after is not None:  # 421 4.7.28 to the next throttle_count MAILs after that many messages
            argv += ["--throttle-after", str(throttle_after), "--throttle-count", str(throttle_count)]
        if delay:  # seconds before the reply to the end of each message
            argv += ["--delay", str(delay)]
        if refuse_starttls:  # offer STARTTLS, answer it 454
            argv.append("--refuse-starttls")
        super().__init__(argv, workdir, name)
        self.wait_file(os.path.join(self.dir, "ready"))

    def received(self):
        """received - [(envelope dict, content bytes)] in arrival order."""
        out = []
        for n in sorted(f for f in os.listdir(self.dir) if f.endswith(".json")):
            with open(os.path.join(self.dir, n)) as f:
                env = json.load(f)
            with open(os.path.join(self.dir, n[:-5] + ".eml"), "rb") as f:
                out.append((env, f.read()))
        return out

    def find(self, needle):
        return [(e, c) for e, c in self.received() if needle in c]

    def sni(self):
        """sni - the server names TLS clients sent, one per handshake ("-" for none), in order."""
        try:
            with open(os.path.join(self.dir, "sni")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def sessions(self):
        """sessions - {"open": now, "max_open": most at once, "per_session": [messages of each closed session]}."""
        with open(os.path.join(self.dir, "sessions.state")) as f:
            return json.load(f)

    def refused(self):
        """refused - [(code, address)] of the RCPTs refused so far (--reject, --tempfail), in order."""
        try:
            with open(os.path.join(self.dir, "refused")) as f:
                return [(int(c), a) for c, a in (ln.split(None, 1) for ln in f.read().split("\n") if ln)]
        except FileNotFoundError:
            return []

    def wait(self, needle, timeout=20.0):
        wait_until(lambda: self.find(needle), timeout, 0.1)
        return self.find(needle)


class ChunkingServer(Sink):
    """peers/chunking.py: offers PIPELINING and CHUNKING; records each message like the sink, with
    how it came ("BDAT" or "DATA"), the BDAT chunk sizes and the session's command lines."""

    def __init__(self, workdir, host, port, name="chunking", reject=(), close_after_message=False):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        argv = [sys.executable, os.path.join(PEERS, "chunking.py"), "--listen", "%s:%d" % (host, port),
                "--dir", self.dir]
        for r in reject:
            argv += ["--reject", r]
        if close_after_message:
            argv.append("--close-after-message")
        Peer.__init__(self, argv, workdir, name)
        self.wait_file(os.path.join(self.dir, "ready"))


class BusyServer(Peer):
    """peers/busy.py: greets "421 busy" and closes; counts connections in a file."""

    def __init__(self, workdir, host, port, name="busy"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        super().__init__([sys.executable, os.path.join(PEERS, "busy.py"), "--listen", "%s:%d" % (host, port),
                          "--dir", self.dir], workdir, name)
        self.wait_file(os.path.join(self.dir, "ready"))

    def connections(self):
        try:
            with open(os.path.join(self.dir, "connections")) as f:
                return len(f.read().split())
        except FileNotFoundError:
            return 0


class Dnsmasq(Peer):
    """peers/dnsmasq-start.sh: dnsmasq in the foreground on 127.0.0.1:port serving the given records."""

    def __init__(self, workdir, records, probe):
        self.port = free_port("127.0.0.1")
        d = os.path.join(workdir, "dns")
        os.makedirs(d, exist_ok=True)
        rec = os.path.join(d, "records.conf")
        with open(rec, "w") as f:
            f.write("\n".join(records) + "\n")
        super().__init__(["/bin/bash", os.path.join(PEERS, "dnsmasq-start.sh"), d, str(self.port), rec],
                         workdir, "dnsmasq")
        if not wait_until(lambda: self.proc.poll() is not None or self.query(probe, "MX"), 10, 0.1) \
                or self.proc.poll() is not None:
            self.stop()
            with open(self.log, "rb") as f:
                raise AssertionError("dnsmasq did not answer: %s" % f.read()[-2000:])

    def query(self, name, rdtype):
        import dns.message
        import dns.query
        try:
            q = dns.message.make_query(name, rdtype)
            r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=0.5)
            return [rr.to_text() for rrset in r.answer for rr in rrset]
        except Exception:  # noqa: BLE001 - any failure means "not answering yet"
            return None


class Slapd(Peer):
    """peers/slapd-start.sh: OpenLDAP slapd on 127.0.0.1:port with etc/sluice.schema and the test's entries.

    ldif: the entries (parents first, the suffix entry included), loaded before the server starts.
    tls: (cert, key) PEM paths to offer StartTLS, and ldaps:// on ldaps_port. The root DN cn=admin,SUFFIX (password "secret")
    is the only one that may read userPassword. pause()/resume() send SIGSTOP/SIGCONT.
    """

    SUFFIX = "dc=example,dc=test"
    ROOT_PW = "secret"

    def __init__(self, workdir, ldif, suffix=SUFFIX, tls=None, name="slapd", role=None, provider=None):
        self.port = free_port("127.0.0.1")
        self.ldaps_port = free_port("127.0.0.1") if tls else None
        self.suffix = suffix
        self.root_dn = "cn=admin," + suffix
        self.paused = False
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        data = os.path.join(self.dir, "data.ldif")
        with open(data, "w") as f:
            f.write(ldif)
        argv = ["/bin/bash", os.path.join(PEERS, "slapd-start.sh"), self.dir, str(self.port), suffix, data]
        if tls:
            argv += list(tls) + [str(self.ldaps_port)]
        if role:  # syncrepl: "provider", or "consumer" of provider (another Slapd)
            argv = ["env", "SLAPD_ROLE=" + role] + (["SLAPD_PROVIDER=" + provider.uri] if provider else []) + argv
        super().__init__(argv, workdir, name)
        if wait_until(lambda: self.proc.poll() is not None or self.answers(), 20, 0.1) is None \
                or self.proc.poll() is not None:
            self.stop()
            with open(self.log, "rb") as f:
                raise AssertionError("slapd did not start: %s" % f.read()[-3000:].decode("utf-8", "replace"))

    @property
    def uri(self):
        return "ldap://127.0.0.1:%d" % self.port

    def search(self, filt, *attrs, timeout=5):
        """search - `ldapsearch -LLL` as the root DN under the suffix; the CompletedProcess (text)."""
        return subprocess.run(["ldapsearch", "-x", "-LLL", "-o", "nettimeout=%d" % timeout, "-l", str(timeout),
                               "-H", self.uri, "-D", self.root_dn, "-w", self.ROOT_PW, "-b", self.suffix, filt]
                              + list(attrs), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout + 5)

    def modify(self, ldif_text, add=True, timeout=10):
        """modify - ldapadd (or ldapmodify) ldif_text as the root DN; the CompletedProcess (text)."""
        return subprocess.run(["ldapadd" if add else "ldapmodify", "-x", "-H", self.uri, "-D", self.root_dn,
                               "-w", self.ROOT_PW], input=ldif_text, capture_output=True, text=True, timeout=timeout)

    def answers(self):
        """answers - whether the server answers a search of its root DSE now."""
        try:
            r = subprocess.run(["ldapsearch", "-x", "-LLL", "-o", "nettimeout=1", "-l", "1", "-H", self.uri,
                                "-b", "", "-s", "base", "namingContexts"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=5)
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0

    def pause(self):
        """pause - SIGSTOP: connections stay open, nothing is answered."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        """resume - SIGCONT."""
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def stop(self):
        if self.paused and self.proc.poll() is None:
            self.resume()
        kill_group(self.proc, signal.SIGTERM, 10)


class Tarpit(Peer):
    """peers/tarpit.py: accepts TCP connections and never greets; counts open and concurrent connections."""

    def __init__(self, workdir, host, port, name="tarpit"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        super().__init__([sys.executable, os.path.join(PEERS, "tarpit.py"), "--listen", "%s:%d" % (host, port),
                          "--dir", self.dir], workdir, name)
        self.wait_file(os.path.join(self.dir, "ready"))

    def stats(self):
        """stats - {"total": n, "open": n, "max_open": n} as last written by the tarpit."""
        try:
            with open(os.path.join(self.dir, "stats")) as f:
                return {k: int(v) for k, v in (kv.split("=") for kv in f.read().split())}
        except (FileNotFoundError, ValueError):
            return {"total": 0, "open": 0, "max_open": 0}


class Dovecot(Peer):
    """peers/dovecot-lmtp-start.sh: Dovecot LMTP on host:port (alice, bob; carol has a 1K quota)."""

    def __init__(self, workdir, host, port, name="dovecot"):
        self.dir = os.path.join(workdir, name)
        self.host, self.port = host, port
        os.makedirs(self.dir, exist_ok=True)
        # Dovecot stores mail as nobody: every directory above DIR/mail must be searchable.
        d = self.dir
        while d not in ("/", "/tmp", tempfile.gettempdir()):
            os.chmod(d, os.stat(d).st_mode | 0o011)
            d = os.path.dirname(d)
        super().__init__(["/bin/bash", os.path.join(PEERS, "dovecot-lmtp-start.sh"), self.dir, host, str(port)],
                         workdir, name)

        def greets():
            if self.proc.poll() is not None:
                return "exited"
            try:
                with socket.create_connection((host, port), timeout=1) as s:
                    s.settimeout(2)
                    return "ok" if s.recv(100).startswith(b"220") else None
            except OSError:
                return None

        if wait_until(greets, 15, 0.1) != "ok":
            self.stop()
            text = ""
            for f in (self.log, os.path.join(self.dir, "dovecot.log")):
                try:
                    with open(f, "rb") as fh:
                        text += fh.read()[-2000:].decode("utf-8", "replace")
                except FileNotFoundError:
                    pass
            raise AssertionError("dovecot LMTP did not start on %s:%d: %s" % (host, port, text))

    def messages(self, addr):
        """messages - contents of every message in addr's Maildir (new and cur)."""
        local, domain = addr.lower().rsplit("@", 1)
        out = []
        base = os.path.join(self.dir, "mail", domain, local, "Maildir")
        for sub in ("new", "cur"):
            try:
                names = sorted(os.listdir(os.path.join(base, sub)))
            except FileNotFoundError:
                continue
            for n in names:
                try:
                    with open(os.path.join(base, sub, n), "rb") as f:
                        out.append(f.read())
                except FileNotFoundError:
                    pass
        return out

    def find(self, addr, needle):
        return [m for m in self.messages(addr) if needle in m]

    def wait(self, addr, needle, timeout=20.0):
        wait_until(lambda: self.find(addr, needle), timeout, 0.1)
        return self.find(addr, needle)


# ---------------------------------------------------------------- DSNs

class DSN:
    """A delivery status notification parsed with the email package (RFC 3462/3464)."""

    def __init__(self, data):
        self.data = data
        self.msg = email.message_from_bytes(data, policy=email.policy.compat32)
        self.report = None       # the message/delivery-status part
        self.per_message = {}    # its first group, names lower-cased
        self.recipients = []     # its per-recipient groups
        self.returned = None     # the third part (text/rfc822-headers or message/rfc822), if any
        if self.msg.get_content_type() != "multipart/report":
            return
        parts = self.msg.get_payload()
        for i, part in enumerate(parts if isinstance(parts, list) else []):
            if part.get_content_type() == "message/delivery-status":
                self.report = part
                groups = _status_groups(part)
                if groups:
                    self.per_message = groups[0]
                    self.recipients = groups[1:]
                if i + 1 < len(parts):
                    self.returned = parts[i + 1]

    @property
    def content_type(self):
        return self.msg.get_content_type()

    @property
    def report_type(self):
        return (self.msg.get_param("report-type") or "").lower()

    def actions(self):
        return [r.get("action", "").lower() for r in self.recipients]

    def returned_bytes(self):
        """returned_bytes - the returned headers or message as bytes (b"" when there is none)."""
        if self.returned is None:
            return b""
        payload = self.returned.get_payload()
        if isinstance(payload, list):  # message/rfc822: one Message
            return b"".join(p.as_bytes() for p in payload)
        if isinstance(payload, str):
            return payload.encode("utf-8", "surrogateescape")
        return payload or b""

    def __repr__(self):
        return "DSN(%r)" % self.data[:4000]


def _status_groups(part):
    """_status_groups - the field groups of a message/delivery-status part, as lower-cased dicts."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [dict((k.lower(), v.strip()) for k, v in p.items()) for p in payload]
    out = []
    for chunk in re.split(r"\r?\n\r?\n", payload or ""):
        d = {}
        for m in re.finditer(r"^([A-Za-z-]+):[ \t]*(.*(?:\r?\n[ \t].*)*)", chunk, re.M):
            d[m.group(1).lower()] = re.sub(r"\r?\n[ \t]+", " ", m.group(2)).strip()
        if d:
            out.append(d)
    return out


# ---------------------------------------------------------------- the notification setup of issue 3

SEED_TCP_NOTIFY = ('smtp mx single_sys remotehost inner subdirs 20 maxjobs 10 pool NOTIFY_POOL '
                   'backoff "pt4h" "pt8h" notices 1 loopcheck')
SEED_JOB_CONTROLLER = "[POOL=DEFAULT]\njob_limit=10\n\n[POOL=NOTIFY_POOL]\njob_limit=2\n"


def seed_sluice_cnf(port, lmtp=None, tcp_local="smtp mx", tcp_notify=SEED_TCP_NOTIFY, extra_rules="",
                    extra_channels="", local_port=None):
    """seed_sluice_cnf - issue 3's seed configuration: DSNs go process_dsn -> tcp_notify.

    port: the destination port of tcp_local and tcp_notify (where the test's MX peers listen);
    local_port, when given, replaces it for tcp_local.
    lmtp: (address, port) of an LMTP store; example.test then goes to channel lmtp_local instead of l.
    extra_rules: rule lines put above the "." rules; extra_channels: channel blocks appended.
    """
    local_rule = "example.test  $U%$D@lmtp-daemon" if lmtp else "example.test  $U%$D@local-daemon"
    text = ("! issue 3 seed configuration\n" + local_rule + "\n" + extra_rules +
            ". $U%$H$,$H@tcp_notify-daemon$Mprocess_dsn\n"
            ".             $U%$H@tcp_local-daemon\n"
            "\n"
            "defaults notificationchannel process_dsn dispositionchannel process_dsn\n"
            "\n"
            "process_dsn\nprocess_dsn-daemon\n"
            "\n"
            "l\nlocal-daemon\n"
            "\n")
    if lmtp:
        text += "lmtp_local lmtp daemon %s port %d\nlmtp-daemon\n\n" % lmtp
    text += ("tcp_local %s port %d\ntcp_local-daemon\n\n" % (tcp_local, local_port or port) +
             "tcp_notify %s port %d\ntcp_notify-daemon\n" % (tcp_notify, port))
    if extra_channels:
        text += "\n" + extra_channels
    return text


def configure_seed(mta, port, lmtp=None, job_controller=SEED_JOB_CONTROLLER, **kw):
    """configure_seed - write the seed sluice.cnf and job_controller.cnf into a (stopped) Sluice."""
    mta.write("sluice.cnf", seed_sluice_cnf(port, lmtp=lmtp, **kw))
    mta.write("job_controller.cnf", job_controller)


def queued_channels(mta, qid):
    """queued_channels - the channels of the "queued" log lines of queue id qid, in order."""
    return [ln.kv.get("channel") for ln in mta.log() if ln.event == "queued" and ln.id == qid]


def null_sender(env):
    """null_sender - whether a sink envelope's MAIL FROM was the null reverse path <>."""
    return re.match(r"^\s*FROM:\s*<>", env.get("raw_mail") or "", re.I) is not None


# ---------------------------------------------------------------- the lab: hosts, DNS, peers, daemons

class Lab:
    """A test's own loopback network with DNS: a random 127.X.Y net, one port free on all of its
    hosts, dnsmasq serving the test's MX records, and factories that start peers there and daemons
    whose option.dat points dns_servers at that dnsmasq. Everything is started through a conftest
    Harness (harness or module_harness), which stops it at teardown; the test's own peers and
    daemons are kept as attributes the test chooses (lab.mta, lab.sender_mx, ...).

        lab = st.Lab(harness, mx={"sender.test": 2, "down.test": 5})
        lab.sender_mx = lab.start_sink(2, name="sender-mx")   # on 127.X.Y.2, port lab.port
        lab.mta = lab.seed_sluice(tcp_local='smtp mx backoff "PT2S"')

    mx: {domain: where}, in order. where is a host number N (the address 127.X.Y.N) or an
    address: one MX, mx.DOMAIN, preference 10; a list of those: MXs mx1.DOMAIN, mx2.DOMAIN, ...
    with preferences 10, 20, ...; None: a null MX ("MX 0 .", RFC 7505).
    hosts: more host numbers of the lab (ones no MX names). lab.addr maps every host number of
    the lab to its address; lab.port is free on each of them and on every address in also (None
    when the lab has neither).
    records: more dnsmasq lines, after those of mx. probe: the name dnsmasq must answer (MX)
    before the lab is used; the first domain of mx by default. net: the "127.X.Y" prefix, random
    by default (pass one from loopback_net() when records must name an address).
    Without mx and records no dnsmasq is started (lab.dns is None).
    """

    def __init__(self, harness, mx=None, hosts=(), records=(), probe=None, also=(), net=None):
        self.harness = harness
        self.net = net or loopback_net()
        mx = dict(mx or {})
        numbers = set(hosts)
        for where in mx.values():
            numbers.update(w for w in (where if isinstance(where, list) else [where]) if isinstance(w, int))
        self.addr = {n: self.host(n) for n in sorted(numbers)}
        addrs = list(self.addr.values()) + list(also)
        self.port = free_port(addrs[0], also=addrs[1:]) if addrs else None
        lines = [line for domain, where in mx.items() for line in self.mx_records(domain, where)]
        lines += list(records)
        self.dns = harness.dnsmasq(lines, probe=probe or next(iter(mx))) if lines else None

    def host(self, n):
        """host - the address 127.X.Y.n of the lab's net."""
        return "%s.%d" % (self.net, n)

    def where(self, n):
        """where - an address: host n of the lab for a number, the string itself otherwise."""
        return self.host(n) if isinstance(n, int) else n

    def mx_records(self, domain, where):
        """mx_records - the dnsmasq lines for domain's MX (see the class for the forms of where)."""
        if where is None:
            return ["dns-rr=%s,15,000000" % domain]  # preference 0, the root name
        if not isinstance(where, list):
            return ["mx-host=%s,mx.%s,10" % (domain, domain), "host-record=mx.%s,%s" % (domain, self.where(where))]
        out = []
        for i, w in enumerate(where, 1):
            out += ["mx-host=%s,mx%d.%s,%d" % (domain, i, domain, 10 * i),
                    "host-record=mx%d.%s,%s" % (i, domain, self.where(w))]
        return out

    @property
    def dns_opt(self):
        """dns_opt - the option.dat entries that make a daemon ask the lab's dnsmasq."""
        return {"dns_servers": "127.0.0.1:%d" % self.dns.port}

    def start_sink(self, n, name="sink", port=None, **kw):
        """start_sink - an aiosmtpd Sink on host n (a number or an address), port lab.port by default."""
        return self.harness.sink(self.where(n), port or self.port, name=name, **kw)

    def start_busy(self, n, port=None):
        """start_busy - a BusyServer (greets 421) on host n, port lab.port by default."""
        return self.harness.busy(self.where(n), port or self.port)

    def start_tarpit(self, n, port=None):
        """start_tarpit - a Tarpit (never greets) on host n, port lab.port by default."""
        return self.harness.tarpit(self.where(n), port or self.port)

    def start_dovecot(self, n, port=None):
        """start_dovecot - Dovecot LMTP on host n, on a port of its own (free there) by default; .host, .port."""
        addr = self.where(n)
        return self.harness.dovecot(addr, port or free_port(addr))

    def sluice(self, options=None, **kw):
        """sluice - harness.sluice(**kw) with the lab's dns_servers (options are added on top)."""
        opts = dict(self.dns_opt)
        opts.update(options or {})
        return self.harness.sluice(options=opts, **kw)

    def seed_sluice(self, port=None, start=True, options=None, host_name=None, **seed):
        """seed_sluice - a daemon with issue 3's seed configuration (configure_seed(mta, port, **seed)),
        its MX peers on port (lab.port by default); started unless start=False."""
        kw = {"host_name": host_name} if host_name else {}
        mta = self.sluice(start=False, options=options, **kw)
        configure_seed(mta, self.port if port is None else port, **seed)
        if start:
            mta.start()
        return mta
