"""test_interop.py - Sluice between Exim 4 and OpenSMTPD, both ways (issue 16).

Exim (exim4-daemon-light) and OpenSMTPD run as private instances, as bench/ runs them
(bench/harness.py: EximMTA, OpenSMTPDMTA; the packages unpacked under /opt/sluice-peers by
scripts/setup.sh, since both conflict with postfix): each on a loopback port of its own, its spool
in the test's directory, relaying everything to one next hop.

  - peer -> Sluice: our client hands a message to the peer, the peer relays it to Sluice, Sluice
    relays it to the aiosmtpd sink (peers/sink.py), which records the envelope as it came;
  - Sluice -> peer: our client hands a message to Sluice, Sluice relays it to the peer, the peer
    relays it to the sink.

What must arrive intact: the DSN parameters (RET, ENVID on MAIL; NOTIFY, ORCPT on RCPT), the 8-bit
body bytes of a BODY=8BITMIME message, and with Exim SMTPUTF8 (a UTF-8 recipient and header).
OpenSMTPD 6.8 does not offer SMTPUTF8 (its EHLO reply is checked), so its messages are 8BITMIME
with ASCII addresses. Neither peer passes BODY=8BITMIME on to its next hop (seen at the sink: the
body's bytes arrive intact, the parameter does not), so the parameter is checked where Sluice
sends it: Exim logs the BODY= it received (log_selector +8bitmime: M8S=8).
Needs root (Exim switches to its user; OpenSMTPD runs in a mount namespace of its own).
"""
import os
import re
import sys

import pytest

import sluicetest as st

sys.path.insert(0, os.path.join(st.SRC, "bench"))
import harness as bh  # noqa: E402

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="Exim and OpenSMTPD private instances need root"),
]

BODY = "Grüße aus Köln: 8-bit body bytes, intact.\r\n".encode("utf-8")
UTF8_RCPT = "jösé@y.test"


def need(binary):
    """need - fail (not skip: scripts/setup.sh installs them) when a peer binary is missing."""
    if not os.access(binary, os.X_OK):
        pytest.fail("%s missing: run scripts/setup.sh (it unpacks Exim and OpenSMTPD under %s)" %
                    (binary, bh.PEERS_DIR))


class Peer:
    """A bench/harness.py MTA instance, stopped at the end of the test."""

    def __init__(self, request, mta):
        self.mta = mta
        request.addfinalizer(mta.stop)
        mta.start()

    @property
    def port(self):
        return self.mta.port


def exim(request, harness, next_port):
    """exim - a private Exim relaying to 127.0.0.1:next_port, offering DSN, logging BODY= (M8S=)."""
    need(bh.EXIM_BIN)
    return Peer(request, bh.EximMTA(harness.subdir("exim"), next_port, 20,
                                    extra="dsn_advertise_hosts = *\nlog_selector = +8bitmime"))


def opensmtpd(request, harness, next_port):
    """opensmtpd - a private OpenSMTPD relaying to 127.0.0.1:next_port (DSN is offered by default)."""
    need(bh.SMTPD_BIN)
    return Peer(request, bh.OpenSMTPDMTA(harness.subdir("opensmtpd"), next_port, 20))


def sluice_to(harness, next_port):
    """sluice_to - a Sluice relaying everything but example.test to 127.0.0.1:next_port (no MX)."""
    return harness.sluice(tcp_local="smtp nomx daemon 127.0.0.1 port %d" % next_port,
                          options={"internal_networks": "127.0.0.0/8"})


def submit(port, msgid, utf8):
    """submit - one message with DSN parameters (and SMTPUTF8 when utf8) to port; the EHLO reply and final reply."""
    rcpts = [("bob@y.test", "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@y.test")]
    mail = "RET=HDRS ENVID=%s BODY=8BITMIME" % msgid
    subject = "interop"
    if utf8:
        rcpts.append((UTF8_RCPT, "NOTIFY=FAILURE"))
        mail += " SMTPUTF8"
        subject = "Grüße"
    msg = (b"From: <alice@x.test>\r\nTo: <bob@y.test>\r\nSubject: " + subject.encode("utf-8") +
           b"\r\nMessage-ID: <" + msgid.encode() + b">\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + BODY)
    with st.Client(port) as c:
        ehlo = c.ehlo()
        r = c.cmd("MAIL FROM:<alice@x.test> " + mail)
        assert r.code == 250, r
        for addr, params in rcpts:
            r = c.cmd("RCPT TO:<%s> %s" % (addr, params))
            assert r.code == 250, (addr, r)
        final = c.data(msg)
        c.quit()
    assert final.code == 250, final
    return ehlo, final


def check_arrival(sink, msgid, utf8, via):
    """check_arrival - the message reached the sink once per recipient set, with its parameters intact."""
    got = sink.wait(msgid.encode(), 30)
    assert got, "message %s did not reach the sink via %s" % (msgid, via)
    rcpts, opts, raw_rcpts, content = [], [], [], b""
    for env, data in got:
        rcpts += env["rcpt_tos"]
        raw_rcpts += env.get("raw_rcpts", [])
        opts.append(env)
        content = data
    env = opts[0]
    raw_mail = env["raw_mail"]
    assert re.search(r"\bRET=HDRS\b", raw_mail, re.I), raw_mail
    assert re.search(r"\bENVID=%s\b" % re.escape(msgid), raw_mail), raw_mail
    bob = [r for r in raw_rcpts if "bob@y.test" in r.split(">")[0]]
    assert bob, raw_rcpts
    assert re.search(r"\bNOTIFY=SUCCESS,FAILURE\b", bob[0], re.I), bob[0]
    assert re.search(r"\bORCPT=rfc822;bob@y\.test\b", bob[0], re.I), bob[0]
    assert BODY in content, content[-300:]
    if utf8:
        assert re.search(r"\bSMTPUTF8\b", raw_mail, re.I), raw_mail
        assert UTF8_RCPT in rcpts, rcpts
        u = [r for r in raw_rcpts if UTF8_RCPT in r]
        assert u and re.search(r"\bNOTIFY=FAILURE\b", u[0], re.I), raw_rcpts
        assert "Subject: Grüße".encode("utf-8") in content
    assert sorted(set(rcpts)) == sorted({"bob@y.test"} | ({UTF8_RCPT} if utf8 else set())), rcpts
    return content


def test_exim_relays_to_sluice(request, harness):
    sink_port = st.free_port()
    sink = harness.sink("127.0.0.1", sink_port)
    s = sluice_to(harness, sink_port)
    ex = exim(request, harness, s.port)
    ehlo, _ = submit(ex.port, "exim-to-sluice@x.test", utf8=True)
    assert "SMTPUTF8" in ehlo.text and "DSN" in ehlo.text
    content = check_arrival(sink, "exim-to-sluice@x.test", True, "Exim -> Sluice")
    # both hops' trace headers: Sluice's on top of Exim's
    assert re.search(rb"Received: from .*\r?\n?.*by mx\.example\.test", content), content[:600]
    assert b"by exim.bench.test" in content


def test_opensmtpd_relays_to_sluice(request, harness):
    sink_port = st.free_port()
    sink = harness.sink("127.0.0.1", sink_port)
    s = sluice_to(harness, sink_port)
    osd = opensmtpd(request, harness, s.port)
    ehlo, _ = submit(osd.port, "opensmtpd-to-sluice@x.test", utf8=False)
    assert "DSN" in ehlo.text and "8BITMIME" in ehlo.text
    assert "SMTPUTF8" not in ehlo.text, "OpenSMTPD now offers SMTPUTF8: add it to this test"
    content = check_arrival(sink, "opensmtpd-to-sluice@x.test", False, "OpenSMTPD -> Sluice")
    assert b"by opensmtpd.bench.test" in content


def test_sluice_relays_to_exim(request, harness):
    sink_port = st.free_port()
    sink = harness.sink("127.0.0.1", sink_port)
    ex = exim(request, harness, sink_port)
    s = sluice_to(harness, ex.port)
    submit(s.port, "sluice-to-exim@x.test", utf8=True)
    content = check_arrival(sink, "sluice-to-exim@x.test", True, "Sluice -> Exim")
    assert b"by exim.bench.test" in content and b"by mx.example.test" in content
    # Exim received it over SMTPUTF8 (its protocol name says so) from Sluice
    mainlog = bh.tail(os.path.join(ex.mta.logdir, "mainlog"), 20000)
    assert re.search(r"<= alice@x\.test .*P=utf8esmtp", mainlog), mainlog
    # ... and with BODY=8BITMIME (M8S=8)
    assert re.search(r"<= alice@x\.test .*M8S=8", mainlog), mainlog


def test_sluice_relays_to_opensmtpd(request, harness):
    sink_port = st.free_port()
    sink = harness.sink("127.0.0.1", sink_port)
    osd = opensmtpd(request, harness, sink_port)
    s = sluice_to(harness, osd.port)
    submit(s.port, "sluice-to-opensmtpd@x.test", utf8=False)
    content = check_arrival(sink, "sluice-to-opensmtpd@x.test", False, "Sluice -> OpenSMTPD")
    assert b"by opensmtpd.bench.test" in content and b"by mx.example.test" in content
