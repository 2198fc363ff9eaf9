"""test_etrn_nosolicit.py - issue 15 section 1 on a live daemon with real peers: the `single`
channel keyword (one copy, one transaction, per recipient) against the default `single_sys`
(one copy per destination system); ETRN (RFC 1985) starting the delivery of mail waiting for a
domain long before its next retry, restricted by ETRN_ACCESS (and, without the table, to clients
inside internal_networks); NO-SOLICITING (RFC 3865) advertised with the source channel's
`sourcenosolicit` keywords and SOLICIT= refused with 554 5.7.9; `maxblocks` refused by
`sluice check` with file:line.

DNS is the lab's dnsmasq: single.test, sys.test and later.test have MX hosts on 127.X.Y.2/.3/.4.
"""
import subprocess
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message

CNF = """\
example.test   $U%$D@local-daemon
single.test    $U%$D@tcp_single-daemon
relay1.test    $U%$D@tcp_relay-daemon
relay2.test    $U%$D@tcp_relay-daemon
.              $U%$H@tcp_local-daemon

defaults

l
local-daemon

tcp_local smtp mx port {port} backoff "PT1H" sourcenosolicit "net.example:ADV,org.example:*,BULK"
tcp_local-daemon

tcp_single smtp mx single port {port}
tcp_single-daemon

tcp_relay smtp nomx daemon [{relay}] port {port}
tcp_relay-daemon
"""

MAPPINGS = """\
ETRN_ACCESS

  TCP|*|*|*|*|SMTP|ETRN|*|forbidden.test   $NETRN$ not$ for$ that$ domain
  TCP|*|*|*|*|SMTP|ETRN|*|*                $Y
"""


def uid():
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def lab(module_harness):
    lab = st.Lab(module_harness, mx={"single.test": 2, "sys.test": 3, "later.test": 4, "forbidden.test": 4},
                 probe="single.test")
    lab.single_sink = lab.start_sink(2, name="sink-single")
    lab.sys_sink = lab.start_sink(3, name="sink-sys")
    lab.mta = lab.sluice(start=False)
    lab.mta.write("sluice.cnf", CNF.format(port=lab.port, relay=lab.addr[3]))
    lab.mta.write("mappings", MAPPINGS)
    lab.mta.start()
    return lab


def envelopes(sink, tag):
    return [e for e, c in sink.received() if tag.encode() in c]


def test_single_one_copy_per_recipient(lab):
    tag = uid()
    rcpts = ["a@single.test", "b@single.test", "c@single.test"]
    final, _ = send_message(lab.mta.port, "alice@example.test", rcpts, make_message(tag, to=rcpts[0]))
    assert final.code == 250
    st.wait_until(lambda: len(envelopes(lab.single_sink, tag)) == 3, 20, what="three copies")
    time.sleep(0.5)
    envs = envelopes(lab.single_sink, tag)
    assert len(envs) == 3, envs
    assert sorted(r for e in envs for r in e["rcpt_tos"]) == rcpts
    assert all(len(e["rcpt_tos"]) == 1 for e in envs)


def test_single_sys_one_copy_per_system(lab):
    """The default (single_sys): one copy, one transaction, for the recipients of one system."""
    tag = uid()
    rcpts = ["a@sys.test", "b@sys.test", "c@sys.test"]
    final, _ = send_message(lab.mta.port, "alice@example.test", rcpts, make_message(tag, to=rcpts[0]))
    assert final.code == 250
    st.wait_until(lambda: envelopes(lab.sys_sink, tag), 20, what="the copy")
    time.sleep(0.5)
    envs = envelopes(lab.sys_sink, tag)
    assert len(envs) == 1 and sorted(envs[0]["rcpt_tos"]) == rcpts


def test_single_sys_smart_host_is_one_system(lab):
    """With a "daemon" smart host every recipient goes to the same system: one copy for two domains."""
    tag = uid()
    rcpts = ["a@relay1.test", "b@relay2.test"]
    final, _ = send_message(lab.mta.port, "alice@example.test", rcpts, make_message(tag, to=rcpts[0]))
    assert final.code == 250
    st.wait_until(lambda: envelopes(lab.sys_sink, tag), 20, what="the copy")
    time.sleep(0.5)
    envs = envelopes(lab.sys_sink, tag)
    assert len(envs) == 1 and sorted(envs[0]["rcpt_tos"]) == rcpts, envs


def test_etrn_starts_waiting_mail(lab):
    """later.test's MX is down: the message waits for the next retry in an hour; once the MX is up,
    ETRN later.test delivers it at once, and a second ETRN finds nothing waiting."""
    tag = uid()
    final, _ = send_message(lab.mta.port, "alice@example.test", ["x@later.test"], make_message(tag, to="x@later.test"))
    assert final.code == 250
    st.wait_until(lambda: lab.mta.events("delivery", rcpt="<x@later.test>", result="deferred"), 20,
                  what="a first failed attempt")
    sink = lab.start_sink(4, name="sink-later")
    time.sleep(1.0)
    assert not sink.find(tag.encode())  # not before the retry (an hour) without ETRN
    with st.Client(lab.mta.port) as c:
        c.ehlo()
        r = c.cmd("ETRN nobody.test")
        assert (r.code, r.enhanced()) == (251, "2.0.0"), r
        r = c.cmd("ETRN later.test")
        assert r.code == 253 and "1 pending messages for node later.test started" in r.text, r
        c.quit()
    sink.wait(tag.encode(), timeout=10)
    st.wait_until(lambda: not lab.mta.queue_files("tcp_local"), 10, what="the queue file removed")
    with st.Client(lab.mta.port) as c:
        c.ehlo()
        r = c.cmd("ETRN @later.test")
        assert r.code == 251, r
        c.quit()
    assert lab.mta.events("etrn")


def test_etrn_access_refuses(lab):
    with st.Client(lab.mta.port) as c:
        c.ehlo()
        r = c.cmd("ETRN forbidden.test")
        assert (r.code, r.enhanced()) == (459, "4.5.0") and "ETRN not for that domain" in r.text, r
        r = c.cmd("ETRN bad..domain")
        assert r.code == 501, r
        r = c.cmd("MAIL FROM:<alice@example.test>")
        assert r.code == 250
        r = c.cmd("ETRN later.test")
        assert r.code == 503, r
        c.quit()


def test_etrn_default_internal_only(harness):
    """Without ETRN_ACCESS only clients inside internal_networks may start a queue."""
    mta = harness.sluice(options={"internal_networks": "10.0.0.0/8"})
    with st.Client(mta.port) as c:
        c.ehlo()
        r = c.cmd("ETRN example.test")
        assert r.code == 459, r
        c.quit()


def test_no_soliciting(lab):
    with st.Client(lab.mta.port) as c:
        r = c.ehlo()
        assert "NO-SOLICITING net.example:ADV,BULK" in r.lines, r  # the glob is not shown
        assert "ETRN" in r.lines
        for kw in ("net.example:ADV", "x,org.example:list", "bulk"):
            r = c.cmd("MAIL FROM:<alice@example.test> SOLICIT=%s" % kw)
            assert (r.code, r.enhanced()) == (554, "5.7.9"), (kw, r)
        r = c.cmd("MAIL FROM:<alice@example.test> SOLICIT=bad value")
        assert r.code in (501, 555), r
        c.quit()
    tag = uid()
    final, _ = send_message(lab.mta.port, "alice@example.test", ["d@sys.test"], make_message(tag, to="d@sys.test"),
                            mail_params="SOLICIT=net.example:OTHER")
    assert final.code == 250
    lab.sys_sink.wait(tag.encode())
    assert lab.mta.events("solicit_refused")


def test_maxblocks_refused_by_check(harness):
    mta = harness.sluice(start=False)
    mta.write("sluice.cnf", st.sluice_cnf("smtp mx maxblocks 1000"))
    r = subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "sluice.cnf:9: channel keyword 'maxblocks' (message fragmentation" in r.stdout + r.stderr, r
