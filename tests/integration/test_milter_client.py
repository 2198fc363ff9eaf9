"""test_milter_client.py - the milter client (src/scan/milter.c, milter_io.c) against real milters.

The client is driven by tests/unit/milter_probe.c (built as milter_probe; CTest passes its path in
MILTER_PROBE, by hand it defaults to ../../build-dev/milter_probe), which runs one connection's
stages on a libevent loop and prints each stage's answer and the modified message. The milters:
peers/testmilter.py (a pymilter filter that rejects one recipient with its own 550, tempfails on a
Subject, sends progress, modifies headers, recipients and the body; and raw servers that send
garbage, hang or close) and opendkim signing as a milter (peers/opendkim-start.sh), whose
DKIM-Signature is verified with python3-dkim against the key it made.
"""
import os
import re
import socket
import subprocess
import sys
import time

import pytest

import sluicetest as st

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
PROBE = os.environ.get("MILTER_PROBE", os.path.join(HERE, "..", "..", "build-dev", "milter_probe"))


@pytest.fixture
def tmp():
    d = st.make_tmpdir("milter")
    yield d
    st.remove_tmpdir(d)


def listening(port):
    """listening - whether something accepts connections on 127.0.0.1:port (or the Unix socket "unix:PATH")."""
    try:
        if str(port).startswith("unix:"):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.5)
                s.connect(port[5:])
        else:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def milter(tmp):
    """milter(mode) - start peers/testmilter.py in mode on a free port; (port, stdout path). Stopped at teardown."""
    procs = []

    def start(mode, port=None):
        port = port or st.free_port()
        out = os.path.join(tmp, "milter-%s-%d.out" % (mode, len(procs)))
        with open(out, "wb") as f:
            p = subprocess.Popen([sys.executable if sys.executable.startswith("/usr/bin") else "/usr/bin/python3",
                                  os.path.join(PEERS, "testmilter.py"), mode, str(port)],
                                 stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(p)
        assert st.wait_until(lambda: listening(port), 15), "testmilter %s did not start" % mode
        return port, out

    yield start
    for p in procs:
        st.kill_group(p, wait=5)


def probe(target, timeout, *steps, limit=60):
    """probe - run milter_probe; its output lines. It must exit 0 with no sanitizer report."""
    r = subprocess.run([PROBE, target, str(timeout)] + [str(s) for s in steps], capture_output=True, timeout=limit)
    out, err = r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, "milter_probe exit %d\n%s\n%s" % (r.returncode, out, err)
    assert "Sanitizer" not in err, err
    return out


def answers(out):
    """answers - [(step, action, rest, ms)] of the probe's step lines."""
    res = []
    for line in out.splitlines():
        m = re.match(r"^(open|connect|helo|mail|rcpt|message): (\w+)(.*) \[(\d+) ms\]$", line)
        if m:
            res.append((m.group(1), m.group(2), m.group(3).strip(), int(m.group(4))))
    return res


def message_of(out, n=1):
    """message_of - the n-th modified message the probe printed (bytes, CRLF)."""
    parts = out.split("--- message\n")
    assert len(parts) > n, out
    return parts[n].split("--- end\n")[0].encode()


def write_message(tmp, name, subject, body, frm="alice@example.test", extra=""):
    """write_message - a CRLF message file; its path."""
    path = os.path.join(tmp, name)
    head = ("From: <%s>\r\nTo: <bob@example.test>\r\nSubject: %s\r\nDate: Sat, 05 Dec 2026 20:00:00 +0000\r\n"
            "Message-ID: <%s@example.test>\r\n%s\r\n" % (frm, subject, name, extra))
    with open(path, "wb") as f:
        f.write(head.encode() + body)
    return path


def test_probe_built():
    assert os.access(PROBE, os.X_OK), "milter_probe not built at %s (set MILTER_PROBE)" % PROBE


def test_filter_milter(tmp, milter):
    """A pymilter filter: macros arrive, one recipient is refused with the milter's own line, the
    message (a 150 kB body: several chunks) comes back modified; then a second transaction on the
    same connection is tempfailed at its Subject header."""
    port, mout = milter("filter")
    body = b"".join(b"line %05d of the body, long enough to fill chunks quickly ........\r\n" % i
                    for i in range(2000))
    m1 = write_message(tmp, "m1", "hello", body, extra="X-Drop: remove me\r\n\tfolded\r\n")
    m2 = write_message(tmp, "m2", "please tempfail", b"Body.\r\n")
    out = probe("127.0.0.1:%d" % port, 10,
                "macro", "connect", "j", "mx.example.test", "macro", "connect", "{daemon_name}", "sluice",
                "macro", "connect", "{client_addr}", "127.0.0.1",
                "connect", "client.example.test", "127.0.0.1", 40000, "helo", "client.example.test",
                "macro", "mail", "{mail_addr}", "alice@example.test",
                "mail", "<alice@example.test>", "SIZE=1000,BODY=8BITMIME",
                "macro", "rcpt", "{rcpt_addr}", "x",
                "rcpt", "<bob@example.test>", "rcpt", "<reject@example.test>", "rcpt", "<carol@example.test>",
                "macro", "eoh", "i", "QID123", "message", m1,
                "abort", "mail", "<alice@example.test>", "-", "rcpt", "<bob@example.test>", "message", m2)
    got = [(s, a, rest) for s, a, rest, _ in answers(out)]
    assert got == [
        ("open", "CONTINUE", ""),
        ("connect", "CONTINUE", ""),
        ("helo", "CONTINUE", ""),
        ("mail", "CONTINUE", ""),
        ("rcpt", "CONTINUE", ""),
        ("rcpt", "REPLYCODE", "550 5.7.1 custom reject for reject@example.test"),
        ("rcpt", "CONTINUE", ""),
        ("message", "CONTINUE", ""),
        ("mail", "CONTINUE", ""),
        ("rcpt", "CONTINUE", ""),
        ("message", "TEMPFAIL", ""),
    ], out
    assert "addrcpt <added@example.test>" in out
    msg = message_of(out)
    assert msg.startswith(b"X-First: top\r\nFrom: <alice@example.test>\r\n"), msg[:200]
    assert b"\r\nSubject: changed: hello\r\n" in msg
    assert b"X-Drop" not in msg and b"folded" not in msg
    assert msg.endswith(b"\r\nX-Test-Milter: seen by testmilter\r\n\r\nReplaced body.\r\nBody bytes seen: %d\r\n"
                        % len(body)), msg[-300:]
    assert "--- message" not in out.split("message: TEMPFAIL")[1]
    with open(mout) as f:
        seen = f.read()
    for want in ("connect client.example.test ('127.0.0.1', 40000)", "macro j=mx.example.test", "macro {daemon_name}=sluice",
                 "macro {client_addr}=127.0.0.1", "macro {mail_addr}=alice@example.test", "macro {rcpt_addr}=x",
                 "macro i=QID123", "mail <alice@example.test> SIZE=1000 BODY=8BITMIME"):
        assert want in seen, (want, seen)


def test_progress_keeps_the_stage_alive(tmp, milter):
    """The milter takes 3 s at end of message with a 2 s timeout, sending progress every second."""
    port, _ = milter("filter")
    m = write_message(tmp, "slow", "slow one", b"Body.\r\n")
    out = probe("127.0.0.1:%d" % port, 2, "connect", "c.example.test", "127.0.0.1", 1, "mail", "<a@example.test>",
                "-", "rcpt", "<bob@example.test>", "message", m)
    a = answers(out)
    assert a[-1][:2] == ("message", "CONTINUE"), out
    assert a[-1][3] >= 2500, out
    assert b"Subject: changed: slow one\r\n" in message_of(out)


@pytest.mark.parametrize("mode,why", [("garbage", "packet too long"), ("close", "connection closed"),
                                      ("hang", "timeout")])
def test_broken_milter_fails(tmp, milter, mode, why):
    """Garbage, a close and silence after negotiation: FAILED within the stage timeout (1 s), and
    every later stage answers FAILED at once."""
    port, _ = milter(mode)
    t0 = time.monotonic()
    out = probe("127.0.0.1:%d" % port, 1, "connect", "c.example.test", "127.0.0.1", 1, "helo", "c.example.test",
                "mail", "<a@example.test>", "-", limit=20)
    took = time.monotonic() - t0
    a = answers(out)
    assert [x[:2] for x in a] == [("open", "CONTINUE"), ("connect", "FAILED"), ("helo", "FAILED"),
                                  ("mail", "FAILED")], out
    assert why in a[1][2], out
    assert took < 5, took
    if mode == "hang":
        assert 900 <= a[1][3] < 3000, out
    assert a[2][3] < 500 and a[3][3] < 500, out


def test_negotiated_flags(tmp, milter):
    """A milter that declines HELO, EOH and the body and will not reply to CONNECT, MAIL, RCPT and
    the headers: those stages answer CONTINUE without a reply, the headers still reach it."""
    port, _ = milter("lazy")
    m = write_message(tmp, "lazy", "lazy", b"Body.\r\n")
    out = probe("127.0.0.1:%d" % port, 5, "connect", "c.example.test", "127.0.0.1", 1, "helo", "c.example.test",
                "mail", "<a@example.test>", "-", "rcpt", "<b@example.test>", "rcpt", "<c@example.test>", "message", m)
    assert [x[:2] for x in answers(out)] == [("open", "CONTINUE"), ("connect", "CONTINUE"), ("helo", "CONTINUE"),
                                              ("mail", "CONTINUE"), ("rcpt", "CONTINUE"), ("rcpt", "CONTINUE"),
                                              ("message", "CONTINUE")], out
    assert message_of(out).endswith(b"\r\nX-Lazy: headers=5\r\n\r\nBody.\r\n"), out
    proto = int(re.search(r"negotiated actions=0x[0-9a-f]+ proto=0x([0-9a-f]+)", out).group(1), 16)
    NOHELO, NOBODY, NOEOH, NR_HDR, NR_CONN, NR_MAIL, NR_RCPT = 0x2, 0x10, 0x40, 0x80, 0x1000, 0x4000, 0x8000
    want = NOHELO | NOBODY | NOEOH | NR_HDR | NR_CONN | NR_MAIL | NR_RCPT
    assert proto & want == want, hex(proto)


def test_unix_socket(tmp, milter):
    """The same filter on a Unix socket (scan_target.unix_path)."""
    path = os.path.join(tmp, "milter.sock")
    milter("filter", "unix:" + path)
    out = probe("unix:" + path, 5, "connect", "c.example.test", "127.0.0.1", 1, "mail", "<a@example.test>", "-",
                "rcpt", "<reject@example.test>", "rcpt", "<ok@example.test>")
    assert [x[:3] for x in answers(out)] == [
        ("open", "CONTINUE", ""), ("connect", "CONTINUE", ""), ("mail", "CONTINUE", ""),
        ("rcpt", "REPLYCODE", "550 5.7.1 custom reject for reject@example.test"), ("rcpt", "CONTINUE", "")], out


def test_nothing_listening(tmp):
    """A refused connection answers the open FAILED; the stages after it FAILED too."""
    port = st.free_port()
    out = probe("127.0.0.1:%d" % port, 5, "connect", "c", "127.0.0.1", 1)
    assert [x[:2] for x in answers(out)] == [("open", "FAILED"), ("connect", "FAILED")], out


def dkim_public_key(d):
    """dkim_public_key - the TXT record opendkim-genkey made for sel1 (from opendkim-start.sh's zone line)."""
    with open(os.path.join(d, "sel1.zone-line")) as f:
        line = f.read()
    return "".join(re.findall(r'"([^"]*)"', line)).encode()


def test_opendkim_signs(tmp):
    """opendkim as a signing milter: the client's message comes back with a DKIM-Signature that
    verifies (python3-dkim, the key opendkim-genkey made), so headers and body went out intact."""
    import dkim

    d = os.path.join(tmp, "opendkim")
    port = st.free_port()
    r = subprocess.run(["bash", os.path.join(PEERS, "opendkim-start.sh"), d, str(port), str(st.free_port())],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    try:
        body = b"Hello from the milter test.\r\n" + b"".join(b"%05d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n" % i for i in range(2000)) + b"The end.\r\n"
        m = write_message(tmp, "signed", "sign me", body)
        out = probe("127.0.0.1:%d" % port, 10, "macro", "connect", "j", "mx.example.test",
                    "connect", "localhost", "127.0.0.1", 40001, "helo", "client.example.test",
                    "mail", "<alice@example.test>", "-", "rcpt", "<bob@other.test>",
                    "macro", "eom", "i", "QIDDKIM", "message", m)
        assert [x[:2] for x in answers(out)][-1] in (("message", "CONTINUE"), ("message", "ACCEPT")), out[:3000]
        msg = message_of(out)
        assert re.search(rb"(?m)^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=example.test;", msg), msg[:600]
        key = dkim_public_key(d)
        assert dkim.verify(msg, dnsfunc=lambda name, timeout=5: key if name.startswith(b"sel1._domainkey") else None)
        # the check can fail: the same signature on a changed body does not verify
        assert not dkim.verify(msg.replace(b"The end.", b"The End."), dnsfunc=lambda name, timeout=5: key)
    finally:
        try:
            with open(os.path.join(d, "opendkim.pid")) as f:
                os.kill(int(f.read().strip()), 15)
        except (OSError, ValueError):
            pass
