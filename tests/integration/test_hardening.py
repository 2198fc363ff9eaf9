"""test_hardening.py - hostile input against the running daemon (issue 13).

Each test drives the real daemon over loopback as an attacker would, then checks that the daemon
is still alive and serving (a new session gets its greeting and a message through), and the
teardown fails on any sanitizer report in the daemon's log.
"""
import socket
import subprocess
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import Client


def _still_serving(mta):
    assert mta.running(), "the daemon died"
    mid = "alive-%s@test" % uuid.uuid4().hex[:12]
    r, _ = st.send_message(mta.port, "alice@example.test", ["bob@example.test"], st.make_message(mid))
    assert r.code == 250, r
    mta.wait_message("bob@example.test", mid.encode())


def test_nul_in_command_line(harness):
    """NOOP NUL + 400 bytes before EHLO: refused with 500 5.5.2, the session and the daemon go on."""
    mta = harness.sluice()
    for _ in range(5):  # heap damage showed up as an abort after a few such lines
        with Client(mta.port) as c:
            c.send(b"NOOP\x00" + b"A" * 400 + b"\r\n")
            r = c.reply()
            assert (r.code, r.enhanced()) == (500, "5.5.2"), r
            c.send(b"\x00\r\n")
            assert c.reply().code == 500
            r = c.cmd("NOOP")
            assert r.code == 250, r
            c.quit()
    _still_serving(mta)


def test_nul_in_auth_login(harness):
    """An AUTH LOGIN continuation holding NUL bytes is malformed, not an empty user name."""
    mta = harness.sluice(start=False)
    mta.write("dispatcher.cnf", "[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\n"
              "PARAMETER=CHANNEL=tcp_local\nAUTH_WITHOUT_TLS=yes\n" % mta.port)
    mta.start()
    with Client(mta.port) as c:
        c.ehlo()
        assert c.cmd("AUTH LOGIN").code == 334
        c.send(b"\x00\x01\r\n")
        r = c.reply()
        assert (r.code, r.enhanced()) == (501, "5.5.2"), r
        assert c.cmd("AUTH LOGIN").code == 334
        assert c.cmd("AAE=").code == 535  # decodes to NUL 0x01
        assert c.cmd("NOOP").code == 250
        c.quit()
    _still_serving(mta)


def test_rewrite_growth_bounded(harness):
    """A rule that triples the host on every pass ('. $U%$H.$H.$H') refuses the RCPT at once with
    550 5.1.3 instead of growing the address for 10 passes; `sluice check` warns about the rule."""
    mta = harness.sluice(start=False)
    mta.write("sluice.cnf", "example.test   $U%$D@local-daemon\n"
                            ".              $U%$H.$H.$H\n"
                            "\n"
                            "defaults\n"
                            "\n"
                            "l\n"
                            "local-daemon\n"
                            "\n"
                            "tcp_local smtp mx\n"
                            "tcp_local-daemon\n")
    p = subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert mta.confdir + "/sluice.cnf:2: warning: template '$U%$H.$H.$H' uses $H 3 times in the address" \
        in p.stdout, p.stdout
    mta.start()
    for _ in range(3):
        with Client(mta.port, timeout=5) as c:  # before the bound one RCPT held the loop for seconds
            c.ehlo()
            assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
            r = c.cmd("RCPT TO:<u@a.b>")
            assert (r.code, r.enhanced()) == (550, "5.1.3"), r
            assert "longer than 255 octets" in r.text, r
            assert c.cmd("NOOP").code == 250
            c.quit()
    assert mta.events("rcpt_rejected", to="<u@a.b>")
    _still_serving(mta)


def _trickle_until_421(c, data, interval, limit):
    """_trickle_until_421 - send data one byte per interval (cycling) until the server answers 421
    or closes; returns (the 421 line or b"", seconds). Bounded by limit seconds."""
    start = time.monotonic()
    got = b""
    i = 0
    while time.monotonic() - start < limit:
        try:
            c.sock.sendall(data[i % len(data):i % len(data) + 1])
        except OSError:
            break
        i += 1
        c.sock.settimeout(interval)
        try:
            chunk = c.sock.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            break
        got += chunk
        if not chunk or b"421 " in got:
            break
    i = got.find(b"421 ")
    return (got[i:] if i >= 0 else b""), time.monotonic() - start


def test_session_timeout_ends_trickled_commands(harness):
    """One byte every 0.2 s never trips the idle timeout (300 s); session_timeout=3 ends the session."""
    mta = harness.sluice(options={"session_timeout": "3"})
    with Client(mta.port) as c:
        c.ehlo()
        got, secs = _trickle_until_421(c, b"NOOP\r\n", 0.2, 30)
    assert got.startswith(b"421 4.4.2 ") and b"timeout exceeded" in got, (got, secs)
    assert mta.wait_event(lambda ln: ln.event == "disconnect" and ln.kv.get("reason") == "session_timeout"), \
        mta.log_excerpt("disconnect")
    _still_serving(mta)


@pytest.mark.parametrize("verb", ["DATA", "BDAT"])
def test_min_data_rate_ends_trickled_content(harness, verb):
    """Content at 5 bytes/s against min_data_rate=200 over 2 s windows: 421 and reason=slow_data,
    nothing delivered; a message sent at full speed under the same limits goes through."""
    mta = harness.sluice(options={"min_data_rate": "200", "min_data_rate_window": "2"})
    tag = "slow-%s" % uuid.uuid4().hex[:12]
    with Client(mta.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        if verb == "DATA":
            assert c.cmd("DATA").code == 354
        else:
            c.send(b"BDAT 100000 LAST\r\n")
        got, secs = _trickle_until_421(c, b"Subject: %s\r\n\r\nslow body\r\n" % tag.encode(), 0.2, 30)
    assert got.startswith(b"421 4.4.2 ") and b"timeout exceeded" in got, (got, secs)
    assert mta.wait_event(lambda ln: ln.event == "disconnect" and ln.kv.get("reason") == "slow_data"), \
        mta.log_excerpt("disconnect")
    _still_serving(mta)
    assert not mta.find_messages("bob@example.test", tag.encode())
