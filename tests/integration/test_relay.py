"""test_relay.py - no open relay. With internal_networks set so that the loopback test client is
outside, the classic open-relay probe forms (the `%` hack, bang paths, source routes, quoted local
parts holding `@` or `%` or `!`, IP literals, ...) relay nothing: each RCPT is refused with a 5xx
or, if some form is accepted, nothing ever reaches a host other than our own Maildirs. The MX of
other.test is an aiosmtpd sink, and a second sink listens on 127.0.0.1 on the same port for the
forms that name our own IP literal; neither may receive anything. An authenticated submission
(AUTH PLAIN over STARTTLS, {CRYPT} password from `openssl passwd -6`) does relay to other.test.

Addresses: the daemon on 127.0.0.1; other.test's MX sink on 127.X.Y.4 (random X.Y); dnsmasq.
"""
import re
import time
import uuid

import pytest

import sluicetest as st
import tlsauth
from sluicetest import make_message

LOCAL = "example.test"       # our domain (directory)
HOST = "mx.example.test"     # our host name


def uid():
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def lab(module_harness):
    lab = st.Lab(module_harness, mx={"other.test": 4}, also=["127.0.0.1"])
    lab.mx_addr = lab.addr[4]
    lab.sink = lab.start_sink(4, name="other-mx")
    lab.self_sink = lab.start_sink("127.0.0.1", name="loopback-sink")
    cert, key = tlsauth.make_cert(module_harness.subdir("cert"))
    lab.mta = lab.sluice(ldif=tlsauth.ldif_with_submitter(), tcp_local="smtp mx port %d" % lab.port,
                         options={"internal_networks": "192.0.2.0/24",
                                  "tls_certificate": cert, "tls_key": key, "max_errors": "1000"})
    return lab


def probes(lab):
    """probes - the classic relay-test recipient forms: (name, RCPT TO argument)."""
    ip = "[127.0.0.1]"
    mx = "[%s]" % lab.mx_addr
    return [
        ("plain", "<user@other.test>"),
        ("percent-hack", "<user%%other.test@%s>" % LOCAL),
        ("percent-hack-ip-literal", "<user%%other.test@%s>" % ip),
        ("percent-hack-hostname", "<user%%other.test@%s>" % HOST),
        ("quoted-at-no-domain", '<"user@other.test">'),
        ("quoted-percent-no-domain", '<"user%other.test">'),
        ("quoted-at-local", '<"user@other.test"@%s>' % LOCAL),
        ("quoted-at-ip-literal", '<"user@other.test"@%s>' % ip),
        ("double-at-local", "<user@other.test@%s>" % LOCAL),
        ("double-at-ip-literal", "<user@other.test@%s>" % ip),
        ("source-route", "<@%s:user@other.test>" % LOCAL),
        ("source-route-ip-literal", "<@%s:user@other.test>" % ip),
        ("bang-path", "<other.test!user>"),
        ("bang-path-local", "<other.test!user@%s>" % LOCAL),
        ("bang-path-ip-literal", "<other.test!user@%s>" % ip),
        ("quoted-bang-local", '<"other.test!user"@%s>' % LOCAL),
        ("local-bang-bang", "<%s!other.test!user>" % LOCAL),
        ("ip-literal-of-target", "<user@%s>" % mx),
        ("ip-literal-self", "<user@%s>" % ip),
        ("percent-chain", "<user%%other.test%%%s@%s>" % (LOCAL, LOCAL)),
        ("trailing-dot", "<user@other.test.>"),
    ]


def test_open_relay_probes_relay_nothing(lab):
    mta = lab.mta
    results = []
    markers = []
    for name, arg in probes(lab):
        marker = "relay-%s-%s@test" % (name, uid())
        with st.Client(mta.port) as c:
            c.ehlo("outside.example.net")
            r = c.cmd("MAIL FROM:<spammer@outside.example.net>")
            assert r.code == 250, r
            r = c.cmd("RCPT TO:" + arg)
            final = None
            if r.code == 250:
                markers.append((name, marker))
                final = c.data(make_message(marker, to="user@other.test", frm="spammer@outside.example.net"))
            results.append((name, arg, r, final))
            c.quit()
    report = "\n".join("%-26s %-45s %s %s" % (n, a, r.raw.decode().strip(), f.raw.decode().strip() if f else "")
                       for n, a, r, f in results)
    for name, arg, r, final in results:
        assert r.code == 250 or 500 <= r.code < 600, \
            "probe %s (%s) got neither 250 nor a permanent refusal:\n%s" % (name, arg, report)
    # Whatever was accepted must not leave: give the queue runner time (retry_max is 2 s).
    time.sleep(4 if markers else 0)
    leaked = [(n, m) for n, m in markers if lab.sink.find(m.encode()) or lab.self_sink.find(m.encode())]
    assert not leaked, "relayed to a non-local host: %r\n%s" % (leaked, report)
    remote = [ln for ln in mta.events("queued") if ln.kv.get("channel") not in ("l",)]
    assert not remote, "probes queued for a non-local channel: %r\n%s" % (remote, report)
    assert not lab.sink.received() and not lab.self_sink.received(), report
    conn = [ln for ln in mta.events("connect") if ln.kv.get("internal") == "yes"]
    assert not conn, "the test client counted as internal; the probes prove nothing: %r" % conn
    denied = [r for n, a, r, f in results if n == "plain"][0]
    assert denied.code == 550 and denied.enhanced() == "5.7.1" and "Relay access denied" in denied.text, denied


def test_local_delivery_still_works_from_outside(lab):
    mid = "inbound-%s@test" % uid()
    final, rr = st.send_message(lab.mta.port, "someone@outside.example.net", ["bob@example.test"],
                                make_message(mid, frm="someone@outside.example.net"))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    assert lab.mta.wait_message("bob@example.test", mid.encode()), lab.mta.log_excerpt(st.queue_id(final))


def test_authenticated_submission_relays(lab):
    mta = lab.mta
    mid = "submitted-%s@test" % uid()
    with st.Client(mta.port) as c:
        c.ehlo()
        tlsauth.starttls(c)
        # Before AUTH the session is still an outsider's.
        assert c.cmd("MAIL FROM:<sub@example.test>").code == 250
        r = c.cmd("RCPT TO:<user@other.test>")
        assert r.code == 550, "relay before AUTH: %r" % r
        assert c.cmd("RSET").code == 250
        r = tlsauth.auth_plain(c, "sub@example.test", tlsauth.PASSWORD)
        assert r.code == 235, r
        assert c.cmd("MAIL FROM:<sub@example.test>").code == 250
        r = c.cmd("RCPT TO:<user@other.test>")
        assert r.code == 250, "authenticated relay refused: %r" % r
        final = c.data(make_message(mid, frm="sub@example.test", to="user@other.test"))
        assert final.code == 250, final
        c.quit()
    qid = st.queue_id(final)
    got = lab.sink.wait(mid.encode(), timeout=20)
    assert got, "authenticated mail never reached other.test's MX; log:\n%s" % mta.log_excerpt(qid)
    env, _ = got[0]
    assert env["mail_from"] == "sub@example.test" and env["rcpt_tos"] == ["user@other.test"], env
    # Only this message: no probe leaked.
    assert [e for e, c in lab.sink.received() if not re.search(rb"submitted-", c)] == []
