"""test_remotehost.py - issue 15: the channel keywords `remotehost`, `noremotehost` (the default)
and `inner` on a live daemon. Three dispatcher services bind three source channels:

    tcp_local   (no keyword: noremotehost)   header addresses without a domain get @host_name
    tcp_rh      remotehost                   ... get @ the client's EHLO name
    tcp_inner   inner                        ... and so do those of a forwarded message/rfc822 part

Every message is relayed by a `daemon` smart host channel to an aiosmtpd sink on 127.0.0.1, and
the test looks at the header fields the sink received. A domainless envelope address stays a 501
(doc/configuration.md explains why).
"""
import uuid

import pytest

import sluicetest as st
import tlsauth

HOST = "mx.example.test"  # option.dat host_name (sluicetest's default)

CNF = """\
sink.test      $U%$D@tcp_out-daemon
example.test   $U%$D@local-daemon
.              $U%$H@tcp_local-daemon

defaults

l
local-daemon

tcp_local smtp mx
tcp_local-daemon

tcp_rh smtp mx remotehost
tcp_rh-daemon

tcp_inner smtp mx inner
tcp_inner-daemon

tcp_out smtp nomx daemon [127.0.0.1] port {port}
tcp_out-daemon
"""


@pytest.fixture(scope="module")
def mta(module_harness):
    sink_port = st.free_port()
    sink = module_harness.sink("127.0.0.1", sink_port)
    m = module_harness.sluice(start=False)
    m.ports = {"local": m.port, "rh": st.free_port(), "inner": st.free_port()}
    m.write("dispatcher.cnf", tlsauth.dispatcher([
        ("SMTP", {"PORT": m.ports["local"], "INTERFACE_ADDRESS": "127.0.0.1", "PARAMETER": "CHANNEL=tcp_local"}),
        ("RH", {"PORT": m.ports["rh"], "INTERFACE_ADDRESS": "127.0.0.1", "PARAMETER": "CHANNEL=tcp_rh"}),
        ("INNER", {"PORT": m.ports["inner"], "INTERFACE_ADDRESS": "127.0.0.1", "PARAMETER": "CHANNEL=tcp_inner"}),
    ]))
    m.write("sluice.cnf", CNF.format(port=sink_port))
    m.start()
    m.sink = sink
    return m


def tag():
    return uuid.uuid4().hex[:12]


def forwarded(t, frm="alice", to="bob, carol@x.example"):
    """forwarded - a message with a forwarded message/rfc822 part whose header lacks domains too."""
    return ("From: %s\r\nTo: %s\r\nSubject: fwd %s\r\nMessage-ID: <%s@t.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"=_fw\"\r\n\r\n"
            "--=_fw\r\nContent-Type: text/plain\r\n\r\nForwarded. From: body-text\r\n"
            "--=_fw\r\nContent-Type: message/rfc822\r\n\r\n"
            "From: Dave <dave>\r\nTo: erin, frank@y.example\r\nCc: team: gina;\r\nSubject: original\r\n\r\n"
            "Original body.\r\n--=_fw--\r\n" % (frm, to, t, t)).encode()


def send(port, message, helo="client.remote.test", rcpts=("rcpt@sink.test",)):
    """send - one transaction with the given EHLO name; returns the final reply."""
    with st.Client(port) as c:
        c.ehlo(helo)
        assert c.cmd("MAIL FROM:<sender@example.test>").code == 250
        for r in rcpts:
            assert c.cmd("RCPT TO:<%s>" % r).code == 250
        final = c.data(message)
        c.quit()
        return final


def received(mta, t):
    """received - (header fields, whole content) of the sink's copy of the message tagged t."""
    got = mta.sink.wait(t.encode())
    assert len(got) == 1, got
    content = got[0][1]
    return content.split(b"\r\n\r\n", 1)[0].decode(), content


def test_noremotehost_completes_with_host_name(mta):
    """The default: `From: alice` / `To: bob, carol@x` -> alice@host_name, bob@host_name, carol@x
    unchanged; the forwarded part's header is untouched without `inner`; the body too."""
    t = tag()
    assert send(mta.ports["local"], forwarded(t)).code == 250
    head, content = received(mta, t)
    assert "\r\nFrom: alice@%s\r\n" % HOST in head, head
    assert "\r\nTo: bob@%s, carol@x.example\r\n" % HOST in head, head
    assert b"\r\nFrom: Dave <dave>\r\nTo: erin, frank@y.example\r\nCc: team: gina;\r\n" in content
    assert b"Forwarded. From: body-text\r\n" in content
    ev = mta.events("headers_completed", channel="tcp_local")
    assert any(e.kv.get("domain") == HOST and e.kv.get("addresses") == "2" for e in ev), ev


def test_remotehost_completes_with_ehlo_name(mta):
    t = tag()
    msg = ("From: Alice <alice>\r\nTo: bob, carol@x.example\r\nCc: (boss) dan\r\nReply-To: \"A. List\" <list>\r\n"
           "Subject: rh %s\r\n\r\nHello bob.\r\n" % t).encode()
    assert send(mta.ports["rh"], msg, helo="client.remote.test").code == 250
    head, content = received(mta, t)
    assert "\r\nFrom: Alice <alice@client.remote.test>\r\n" in head, head
    assert "\r\nTo: bob@client.remote.test, carol@x.example\r\n" in head, head
    assert "\r\nCc: (boss) dan@client.remote.test\r\n" in head, head
    assert "\r\nReply-To: \"A. List\" <list@client.remote.test>\r\n" in head, head
    assert content.endswith(b"\r\n\r\nHello bob.\r\n")


def test_remotehost_address_literal_and_bad_name(mta):
    """An EHLO address literal is a valid domain; an EHLO name that is not a domain falls back to host_name."""
    t = tag()
    assert send(mta.ports["rh"], ("From: alice\r\nSubject: lit %s\r\n\r\nx\r\n" % t).encode(), helo="[127.0.0.1]").code == 250
    head, _ = received(mta, t)
    assert "\r\nFrom: alice@[127.0.0.1]\r\n" in head, head
    t = tag()
    assert send(mta.ports["rh"], ("From: alice\r\nSubject: bad %s\r\n\r\nx\r\n" % t).encode(), helo="not_a_domain!").code == 250
    head, _ = received(mta, t)
    assert "\r\nFrom: alice@%s\r\n" % HOST in head, head


def test_remotehost_without_inner_leaves_forwarded_part(mta):
    t = tag()
    assert send(mta.ports["rh"], forwarded(t), helo="fw.remote.test").code == 250
    head, content = received(mta, t)
    assert "\r\nFrom: alice@fw.remote.test\r\n" in head, head
    assert b"\r\nFrom: Dave <dave>\r\nTo: erin, frank@y.example\r\n" in content


def test_inner_completes_forwarded_part(mta):
    """`inner` (with noremotehost): the forwarded message/rfc822 part's header is completed as
    well, the MIME part headers, the text part and the bodies stay as they were."""
    t = tag()
    assert send(mta.ports["inner"], forwarded(t), helo="client.remote.test").code == 250
    head, content = received(mta, t)
    assert "\r\nFrom: alice@%s\r\n" % HOST in head, head
    inner = b"\r\nFrom: Dave <dave@%s>\r\nTo: erin@%s, frank@y.example\r\nCc: team: gina@%s;\r\nSubject: original\r\n" % (
        HOST.encode(), HOST.encode(), HOST.encode())
    assert inner in content, content
    assert b"Forwarded. From: body-text\r\n" in content
    assert b"\r\n\r\nOriginal body.\r\n--=_fw--\r\n" in content
    ev = mta.events("headers_completed", channel="tcp_inner")
    assert any(e.kv.get("addresses") == "5" and e.kv.get("inner") == "yes" for e in ev), ev


def test_complete_message_untouched(mta):
    """Every address has a domain: the message reaches the sink byte for byte after the trace fields."""
    before = len(mta.events("headers_completed"))
    t = tag()
    msg = ("From: Alice <alice@example.test>\r\nTo: bob@sink.test\r\nSubject: plain %s\r\n\r\nBody.\r\n" % t).encode()
    assert send(mta.ports["rh"], msg).code == 250
    _, content = received(mta, t)
    assert content.endswith(msg), content
    assert len(mta.events("headers_completed")) == before


def test_envelope_without_domain_still_501(mta):
    """The envelope is not completed (RFC 5321 requires the domain): 501 on every channel."""
    for port in mta.ports.values():
        with st.Client(port) as c:
            c.ehlo("client.remote.test")
            assert c.cmd("MAIL FROM:<alice>").code == 501
            assert c.cmd("MAIL FROM:<sender@example.test>").code == 250
            assert c.cmd("RCPT TO:<bob>").code == 501
            c.quit()
