"""test_channel_switch.py - the connection's facts choose the source channel (issue 12 §2):

- `switchchannel` on tcp_local with an INTERNAL_IP mapping: a client it says $Y for continues on
  tcp_intranet (which says `allowswitchchannel`), so tcp_intranet's own rewrite rules apply ($M):
  mail to other.test leaves through the intranet sink; any other client's through the public one;
- a target without `allowswitchchannel` is refused (logged), the session stays on tcp_local;
- after AUTH, the user's `mailSMTPSubmitChannel` switches the session (before saslswitchchannel),
  the Received: line names the authenticated sender, and `authrewrite 1` on that channel adds
  `Sender:` when From: is another address (not when it is the user's own).
"""
import uuid

import pytest

import sluicetest as st
import tlsauth
from sluicetest import Client

PASSWORD = "Switch-Me-1"


def config(s, public_port, intra_port, allow=True):
    s.write("sluice.cnf", "example.test   $U%$D@local-daemon\n"
            "other.test     $U%$D@intra-daemon$Mtcp_intranet\n"
            ".              $U%$H@tcp_local-daemon\n\n"
            "defaults\n\nl\nlocal-daemon\n\n"
            "tcp_local smtp nomx daemon 127.0.0.1 port PUB switchchannel\ntcp_local-daemon\n\n"
            "tcp_intranet smtp nomx daemon 127.0.0.1 port INTRA ALLOW authrewrite 1\nintra-daemon\n"
            .replace("PUB", str(public_port)).replace("INTRA", str(intra_port))
            .replace("ALLOW", "allowswitchchannel" if allow else "disallowswitchchannel"))
    s.write("mappings", "INTERNAL_IP\n\n  127.0.0.5  $Y\n  *  $N\n")
    s.write("dispatcher.cnf", tlsauth.dispatcher([("SMTP", {"PORT": s.port, "INTERFACE_ADDRESS": "127.0.0.1",
                                                            "PARAMETER": "CHANNEL=tcp_local",
                                                            "AUTH_WITHOUT_TLS": "yes"})]))


def send(port, source, to, frm="alice@example.test", auth=None, header_from=None):
    mid = "<%s@example.test>" % uuid.uuid4().hex
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: switch\r\nMessage-ID: %s\r\n\r\nHello.\r\n"
           % (header_from or frm, to, mid)).encode()
    with Client(port, source=source) as c:
        c.ehlo()
        if auth:
            assert tlsauth.auth_plain(c, auth, PASSWORD).code == 235
        assert c.cmd("MAIL FROM:<%s>" % frm).code == 250
        assert c.cmd("RCPT TO:<%s>" % to).code == 250
        assert c.data(msg).code == 250
    return mid


@pytest.fixture
def setup(harness):
    pub_port, intra_port = st.free_port(), st.free_port()
    pub = harness.sink("127.0.0.1", pub_port, name="public")
    intra = harness.sink("127.0.0.1", intra_port, name="intranet")
    return harness, pub, intra, pub_port, intra_port


def test_internal_ip_switches_channel(setup):
    harness, pub, intra, pub_port, intra_port = setup
    s = harness.sluice(start=False)
    config(s, pub_port, intra_port)
    s.start()
    inside = send(s.port, "127.0.0.5", "x@other.test")
    outside = send(s.port, "127.0.0.6", "y@other.test")
    assert st.wait_until(lambda: intra.find(inside.encode()), 20), "the internal client's mail left by tcp_intranet"
    assert st.wait_until(lambda: pub.find(outside.encode()), 20), "the other client's mail left by tcp_local"
    assert not pub.find(inside.encode()) and not intra.find(outside.encode())
    sw = s.events("channel_switch")
    assert len(sw) == 1 and "to=tcp_intranet" in sw[0].rest and "127.0.0.5" in sw[0].rest, sw


def test_switch_needs_allowswitchchannel(setup):
    harness, pub, intra, pub_port, intra_port = setup
    s = harness.sluice(start=False)
    config(s, pub_port, intra_port, allow=False)
    s.start()
    mid = send(s.port, "127.0.0.5", "x@other.test")
    assert st.wait_until(lambda: pub.find(mid.encode()), 20)
    assert s.events("channel_switch_refused") and not s.events("channel_switch")


def test_submit_channel_after_auth_and_authrewrite(setup):
    harness, pub, intra, pub_port, intra_port = setup
    ldif = tlsauth.ldif_with_submitter(PASSWORD).replace(
        "mail: sub@example.test\n", "mail: sub@example.test\nmailSMTPSubmitChannel: tcp_intranet\n", 1)
    s = harness.sluice(start=False, ldif=ldif)
    config(s, pub_port, intra_port)
    s.start()
    # From: someone else -> a Sender: naming the authenticated user
    other = send(s.port, "127.0.0.6", "x@other.test", frm="sub@example.test", auth="sub@example.test",
                 header_from="boss@example.test")
    got = st.wait_until(lambda: intra.find(other.encode()), 20, what="the submission through tcp_intranet")
    content = got[0][1]
    assert b"Sender: <sub@example.test>" in content
    assert b"(authenticated sender: sub@example.test)" in content
    # From: the user's own address -> no Sender:
    own = send(s.port, "127.0.0.6", "y@other.test", frm="sub@example.test", auth="sub@example.test")
    got = st.wait_until(lambda: intra.find(own.encode()), 20)
    assert b"Sender:" not in got[0][1]
    sw = [e.rest for e in s.events("channel_switch")]
    assert sw and all("reason=mailSMTPSubmitChannel" in r for r in sw), sw
    assert any("auth=<sub@example.test>" in e.rest for e in s.events("accepted"))
