"""test_dnsbl.py - DNS block and allow lists at connect (dispatcher.cnf DNS_VERIFY_DOMAIN,
DNS_ALLOW_DOMAIN, DNS_VERIFY_ACTION, DNS_VERIFY_CODE, DNS_VERIFY_TEXT; doc/sender-checks.md),
with dnsmasq serving the zones:

- a listed client (127.0.0.5) is refused at the greeting with 554 5.7.1 and the configured text,
  an unlisted one (127.0.0.6) is served;
- a client on the allow list (127.0.0.7) is served although the block list names it too;
- DNS_VERIFY_ACTION=score: the listed client is served and its message carries X-Sluice-DNSBL,
  which a Sieve filter can act on;
- the answer is cached (a second connection asks no DNS), and the DNS server stopped never
  refuses a client.
"""
import uuid

import pytest

import sluicetest as st
import tlsauth
from sluicetest import Client

RECORDS = [
    "address=/5.0.0.127.bl.test/127.0.0.2",
    "address=/7.0.0.127.bl.test/127.0.0.2",
    "address=/7.0.0.127.wl.test/127.0.0.10",
    "mx-host=probe.test,mx.probe.test,10",
]

SCORE_FILTER = ('require ["fileinto"]; if exists "X-Sluice-DNSBL" { fileinto "Suspect"; }')


@pytest.fixture
def lab(harness):
    dns = harness.dnsmasq(RECORDS, probe="probe.test")
    ldif = st.DEFAULT_LDIF.replace("mail: bob@example.test\n",
                                   "mail: bob@example.test\nmailSieveRuleSource: %s\n" % SCORE_FILTER, 1)
    s = harness.sluice(start=False, ldif=ldif, options={"dns_servers": "127.0.0.1:%d" % dns.port})
    score_port = st.free_port()
    s.write("dispatcher.cnf", tlsauth.dispatcher([
        ("SMTP", {"PORT": s.port, "INTERFACE_ADDRESS": "127.0.0.1", "PARAMETER": "CHANNEL=tcp_local",
                  "DNS_VERIFY_DOMAIN": "bl.test", "DNS_ALLOW_DOMAIN": "wl.test",
                  "DNS_VERIFY_TEXT": "Blocked: $ip is listed in $zone ($answer)"}),
        ("SCORE", {"PORT": score_port, "INTERFACE_ADDRESS": "127.0.0.1", "PARAMETER": "CHANNEL=tcp_local",
                   "DNS_VERIFY_DOMAIN": "bl.test", "DNS_VERIFY_ACTION": "score"}),
    ]))
    s.start()
    return s, dns, score_port


def greeting(port, source):
    c = Client(port, source=source, read_greeting=False)
    r = c.reply()
    return c, r


def test_listed_client_refused(lab):
    s, dns, score_port = lab
    c, r = greeting(s.port, "127.0.0.5")
    with c:
        assert r.code == 554 and "5.7.1" in r.text and "Blocked: 127.0.0.5 is listed in bl.test (127.0.0.2)" in r.text, r
        assert c.is_closed()
    c, r = greeting(s.port, "127.0.0.6")
    with c:
        assert r.code == 220, r
    c, r = greeting(s.port, "127.0.0.7")  # on the allow list too
    with c:
        assert r.code == 220, r
    assert s.events("dnswl") and s.events("dnsbl")
    # cached: the same client again is refused without a new lookup (one dnsbl line per connection,
    # but the dnsmasq query log has one query for 5.0.0.127.bl.test)
    c, r = greeting(s.port, "127.0.0.5")
    with c:
        assert r.code == 554
    import os
    with open(os.path.join(dns.workdir, "dns", "dnsmasq.log"), "rb") as f:
        log = f.read()
    assert log.count(b"query[A] 5.0.0.127.bl.test") == 1, log[-2000:]


def test_score_mode_notes_the_listing(lab):
    s, dns, score_port = lab
    mid = "<%s@other.test>" % uuid.uuid4().hex
    msg = ("From: x@other.test\r\nTo: bob@example.test\r\nSubject: listed\r\nMessage-ID: %s\r\n\r\nHi.\r\n" % mid).encode()
    with Client(score_port, source="127.0.0.5") as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@other.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.data(msg).code == 250
    import os
    d = os.path.join(s.maildir_root, "example.test", "bob", ".Suspect", "new")
    assert st.wait_until(lambda: os.path.isdir(d) and os.listdir(d), 20), "Sieve filed the listed client's mail"
    with open(os.path.join(d, os.listdir(d)[0]), "rb") as f:
        got = f.read()
    assert b"X-Sluice-DNSBL: bl.test=127.0.0.2" in got


def test_dns_down_never_refuses(lab):
    s, dns, score_port = lab
    dns.stop()
    c, r = greeting(s.port, "127.0.0.9")
    with c:
        assert r.code == 220, r
    assert s.events("dnsbl_failed")
