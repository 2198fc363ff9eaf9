"""test_tls_auth.py - STARTTLS and SMTP AUTH against real peers (doc/configuration.md, "TLS and
authentication"):

- STARTTLS driven by `openssl s_client -starttls smtp` (TLS 1.3 and 1.2): the message is accepted
  and the Received: header names ESMTPS and the TLS version;
- a command pipelined in the same packet as STARTTLS is discarded, not executed (log
  "tls_discarded"), and the session starts over (EHLO again);
- client side: a second Sluice whose service has TLS_MODE=required receives over TLS from a
  channel with `musttls`; a next hop that offers no STARTTLS (an aiosmtpd sink) gives `musttls` a
  temporary failure (deferred, 4.7.4) while `maytls` delivers in clear;
- AUTH PLAIN and LOGIN succeed and fail over TLS (growing delay, 421 after auth_max_failures); AUTH
  is neither advertised nor accepted without TLS (538); an inactive user cannot authenticate;
- `saslswitchchannel tcp_auth`: the log's channel_switch event, routing by `$Mtcp_auth` rules in
  a live session and in `sluice test rewrite --source-channel tcp_auth`;
- TLS_MODE=implicit (port-465 style) with Python's ssl module; AUTH_REQUIRED=yes answers 530
  before AUTH.
- a session that ends with QUIT ends with a close_notify (STARTTLS and implicit TLS), and
  SIGTERM just after such a session still stops the daemon cleanly; TLS 1.2
  offers ECDHE with AEAD only by default (a client offering only AES128-SHA or ECDHE with CBC
  fails, ECDHE-RSA-AES128-GCM-SHA256 works), `tls_ciphers` and `tls_min_version` change that, and
  bad values of either are configuration errors.

Addresses: daemon A on 127.0.0.1 (three services), daemon B (the TLS-only next hop) on
127.X.Y.3, the aiosmtpd sink on 127.X.Y.4, for a random X.Y of this module.
"""
import os
import queue
import re
import socket
import ssl
import subprocess
import threading
import time
import uuid

import pytest

import sluicetest as st
import tlsauth
from sluicetest import make_message

B_LDIF = """\
dn: dc=relay,dc=test
objectClass: top
objectClass: domain
objectClass: mailDomain
dc: relay
associatedDomain: relay.test

dn: uid=rita,ou=people,dc=relay,dc=test
objectClass: inetOrgPerson
objectClass: mailUser
uid: rita
cn: Rita Test
sn: Test
mail: rita@relay.test
"""


def uid():
    return uuid.uuid4().hex[:12]


class Lab:
    pass


def a_sluice_cnf(lab):
    rules = ("example.test   $U%$D@local-daemon\n"
             "relay.test     $U%$D@tcp_tls-daemon\n"
             "must.test      $U%$D@tcp_must-daemon\n"
             "may.test       $U%$D@tcp_may-daemon\n"
             ".              $U%$H@tcp_submit-daemon$Mtcp_auth\n"
             ".              $U%$H@tcp_local-daemon\n")
    return rules + (
            "\n"
            "defaults\n"
            "\n"
            "l\nlocal-daemon\n"
            "\n"
            "tcp_local smtp mx port %d saslswitchchannel tcp_auth\ntcp_local-daemon\n"
            "\n"
            "tcp_auth smtp\ntcp_auth-daemon\n"
            "\n"
            "tcp_submit smtp nomx daemon [%s] port %d\ntcp_submit-daemon\n"
            "\n"
            "tcp_tls smtp nomx daemon [%s] port %d musttls\ntcp_tls-daemon\n"
            "\n"
            "tcp_must smtp nomx daemon [%s] port %d musttls\ntcp_must-daemon\n"
            "\n"
            "tcp_may smtp nomx daemon [%s] port %d maytls\ntcp_may-daemon\n"
            % (st.free_port(), lab.sink_addr, lab.sink_port, lab.b_addr, lab.b_port,
               lab.sink_addr, lab.sink_port, lab.sink_addr, lab.sink_port))


@pytest.fixture(scope="module")
def lab(module_harness):
    h = module_harness
    lab = Lab()
    net = st.loopback_net()
    lab.b_addr, lab.sink_addr = net + ".3", net + ".4"
    lab.b_port = st.free_port(lab.b_addr)
    lab.sink_port = st.free_port(lab.sink_addr)
    cert, key = tlsauth.make_cert(h.subdir("cert"))
    lab.sink = h.sink(lab.sink_addr, lab.sink_port, name="sink-notls")

    # B: the next hop that takes mail only over TLS.
    b = h.sluice(start=False, ldif=B_LDIF, host_name="mx-b.relay.test",
                 options={"tls_certificate": cert, "tls_key": key})
    b.write("dispatcher.cnf", tlsauth.dispatcher([("SMTP", {
        "PORT": lab.b_port, "INTERFACE_ADDRESS": lab.b_addr, "TLS_MODE": "required",
        "PARAMETER=CHANNEL": "tcp_local"})]))
    b.write("sluice.cnf", "relay.test   $U%$D@local-daemon\n.   $U%$H@tcp_local-daemon\n\ndefaults\n\n"
            "l\nlocal-daemon\n\ntcp_local smtp mx port " + str(st.free_port()) + "\ntcp_local-daemon\n")
    b.port = lab.b_port
    b.start()
    lab.b = b

    # A: the daemon under test, with a plain SMTP service, submission and submissions.
    a = h.sluice(start=False, ldif=tlsauth.ldif_with_submitter(),
                 options={"tls_certificate": cert, "tls_key": key, "max_errors": "100"})
    lab.sub_port = st.free_port()
    lab.subs_port = st.free_port()
    a.write("dispatcher.cnf", tlsauth.dispatcher([
        ("SMTP", {"PORT": a.port, "INTERFACE_ADDRESS": "127.0.0.1", "PARAMETER=CHANNEL": "tcp_local"}),
        ("SUBMISSION", {"PORT": lab.sub_port, "INTERFACE_ADDRESS": "127.0.0.1", "TLS_MODE": "required",
                        "AUTH_REQUIRED": "yes", "PARAMETER=CHANNEL": "tcp_local"}),
        ("SUBMISSIONS", {"PORT": lab.subs_port, "INTERFACE_ADDRESS": "127.0.0.1", "TLS_MODE": "implicit",
                         "AUTH_REQUIRED": "yes", "PARAMETER=CHANNEL": "tcp_local"}),
    ]))
    a.write("sluice.cnf", a_sluice_cnf(lab))
    a.start()
    lab.a = a
    return lab


# ---------------------------------------------------------------- openssl s_client

class SClient:
    """`openssl s_client -starttls smtp` as an interactive SMTP client (lines in, replies out)."""

    def __init__(self, port, host="127.0.0.1", extra=()):
        self.proc = subprocess.Popen(
            ["openssl", "s_client", "-starttls", "smtp", "-connect", "%s:%d" % (host, port), "-crlf", "-brief", "-nocommands",
             "-name", "sclient.example.test"] + list(extra),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.out = queue.Queue()
        self.err = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.out.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err.append), daemon=True).start()

    @staticmethod
    def _pump(stream, put):
        for line in iter(stream.readline, b""):
            put(line.decode("utf-8", "replace").rstrip("\r\n"))

    def wait_established(self, timeout=10):
        """wait_established - stderr's "-brief" summary once the handshake is done; the protocol version."""
        def proto():
            for ln in self.err:
                m = re.match(r"Protocol version: (\S+)", ln)
                if m:
                    return m.group(1)
            return None
        return st.wait_until(lambda: proto() or self.proc.poll() is not None, timeout) and proto()

    def reply(self, timeout=10):
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            ln = self.out.get(timeout=max(0.05, deadline - time.monotonic()))
            lines.append(ln)
            if re.match(r"^\d{3} ", ln):
                return int(ln[:3]), lines

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def cmd(self, line):
        self.send(line + "\n")
        return self.reply()

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        st.kill_group(self.proc, wait=5)


@pytest.mark.parametrize("version", ["tls1_3", "tls1_2"])
def test_starttls_with_openssl_s_client(lab, version):
    mid = "sclient-%s-%s@test" % (version, uid())
    sc = SClient(lab.a.port, extra=["-" + version])
    try:
        proto = sc.wait_established()
        want = {"tls1_3": "TLSv1.3", "tls1_2": "TLSv1.2"}[version]
        assert proto == want, "handshake: %r; s_client stderr:\n%s" % (proto, "\n".join(sc.err))
        code, lines = sc.cmd("EHLO sclient.example.test")
        assert code == 250, lines
        kws = [ln[4:].split()[0].upper() for ln in lines[1:]]
        assert "STARTTLS" not in kws, "STARTTLS offered again under TLS: %r" % lines
        assert "AUTH" in kws, "AUTH not offered under TLS: %r" % lines
        assert sc.cmd("MAIL FROM:<sender@outside.test>")[0] == 250
        assert sc.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert sc.cmd("DATA")[0] == 354
        body = make_message(mid, to="alice@example.test").decode().replace("\r\n", "\n")
        sc.send(body + ".\n")
        code, lines = sc.reply()
        assert code == 250, lines
        sc.cmd("QUIT")
    finally:
        sc.close()
    got = lab.a.wait_message("alice@example.test", mid.encode())
    assert got, "message over STARTTLS not delivered; log:\n%s" % lab.a.log_excerpt("tls")
    received = st.parse_mail(got[0]).get_all("Received")
    ours = [r for r in received if "(Sluice)" in r and "sclient.example.test" in r]
    assert ours, "no Received: header of ours: %r" % received
    flat = re.sub(r"\s+", " ", ours[0])
    assert " with ESMTPS " in flat, "protocol is not ESMTPS: %r" % flat
    assert "(%s " % want in flat, "the TLS version %s is not in the Received: header: %r" % (want, flat)
    tls = [ln for ln in lab.a.events("tls") if want in ln.rest and "client=[127.0.0.1]" in ln.rest]
    assert tls, "no tls event with %s in the log:\n%s" % (want, lab.a.log_excerpt("tls"))


def test_command_pipelined_with_starttls_is_discarded(lab):
    evil = b"MAIL FROM:<evil@pipelined.test>\r\n"
    with st.Client(lab.a.port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\n" + evil)
        r = c.reply()
        assert r.code == 220, r
        time.sleep(0.3)
        assert not c.buf, "the server answered the pipelined command in clear: %r" % c.buf
        c.sock = tlsauth.client_context().wrap_socket(c.sock)
        c.sock.settimeout(10)
        # The session started over: no EHLO yet, and no transaction.
        r = c.cmd("MAIL FROM:<x@outside.test>")
        assert r.code == 503, "MAIL accepted without a new EHLO after STARTTLS: %r" % r
        c.ehlo()
        r = c.cmd("RCPT TO:<bob@example.test>")
        assert r.code == 503, "the pipelined MAIL was executed (RCPT accepted): %r" % r
        c.quit()
    ln = lab.a.wait_event(lambda l: l.event == "tls_discarded", timeout=5)
    assert ln, "no tls_discarded event; log:\n%s" % lab.a.log_excerpt("tls")
    assert ln.kv.get("bytes") == str(len(evil)), ln.raw
    assert "evil@pipelined.test" not in lab.a.log_text(), "the pipelined MAIL reached the session"


def test_musttls_next_hop_requiring_tls_receives_over_tls(lab):
    """A's tcp_tls (musttls) -> B, whose service has TLS_MODE=required."""
    # B really requires TLS: a clear-text MAIL is refused.
    with st.Client(lab.b.port, host=lab.b_addr) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<x@outside.test>")
        assert r.code == 530 and r.enhanced() == "5.7.0", r
        c.quit()
    mid = "musttls-%s@test" % uid()
    final, rr = st.send_message(lab.a.port, "alice@example.test", ["rita@relay.test"],
                                make_message(mid, to="rita@relay.test"))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    got = lab.b.wait_message("rita@relay.test", mid.encode(), timeout=30)
    assert got, "B never got the message; A's log:\n%s\nB's log:\n%s" % (
        lab.a.log_excerpt(qid), lab.b.log_excerpt("tls", "reject"))
    assert st.queued_channels(lab.a, qid) == ["tcp_tls"], lab.a.log_excerpt(qid)
    tls = [ln for ln in lab.a.events("tls") if ln.id == qid]
    assert tls and re.search(r"TLSv1\.[23]", tls[0].rest), "A logged no TLS for %s:\n%s" % (
        qid, lab.a.log_excerpt(qid))
    done = [ln for ln in lab.a.events("delivered") if ln.id == qid]
    assert done and done[0].kv.get("channel") == "tcp_tls", lab.a.log_excerpt(qid)
    # B's Received: header says the hop was encrypted.
    received = [re.sub(r"\s+", " ", r) for r in st.parse_mail(got[0]).get_all("Received")]
    b_rcvd = [r for r in received if "by mx-b.relay.test" in r]
    assert b_rcvd and " with ESMTPS " in b_rcvd[0] and re.search(r"\(TLSv1\.[23] ", b_rcvd[0]), received


def test_musttls_without_starttls_defers_4_7_4_and_maytls_delivers_in_clear(lab):
    a, sink = lab.a, lab.sink
    must_mid, may_mid = "must-%s@test" % uid(), "may-%s@test" % uid()
    f1, _ = st.send_message(a.port, "alice@example.test", ["u@must.test"], make_message(must_mid, to="u@must.test"))
    f2, _ = st.send_message(a.port, "alice@example.test", ["u@may.test"], make_message(may_mid, to="u@may.test"))
    assert f1.code == 250 and f2.code == 250, (f1, f2)
    q1, q2 = st.queue_id(f1), st.queue_id(f2)
    d = a.wait_event(lambda ln: ln.event == "deferred" and ln.id == q1, timeout=20)
    assert d, "musttls to a server without STARTTLS was not deferred; log:\n%s" % a.log_excerpt(q1)
    assert d.kv.get("channel") == "tcp_must" and d.kv.get("status") == "4.7.4", d.raw
    assert sink.wait(may_mid.encode(), timeout=20), "maytls did not deliver in clear; log:\n%s" % a.log_excerpt(q2)
    time.sleep(3)  # retries (retry_max 2 s) must not deliver the musttls message in clear either
    assert not sink.find(must_mid.encode()), "musttls delivered without TLS"
    assert not [ln for ln in a.events("failed") if ln.id == q1], "musttls failed permanently:\n%s" % a.log_excerpt(q1)
    assert len([ln for ln in a.events("deferred") if ln.id == q1]) >= 2, "musttls not retried:\n%s" % a.log_excerpt(q1)
    assert [ln for ln in a.events("delivered") if ln.id == q2 and ln.kv.get("channel") == "tcp_may"], \
        a.log_excerpt(q2)
    clear = [ln for ln in a.events("tls") if ln.id == q2]
    assert clear and all(ln.kv.get("tls") == "none" for ln in clear), \
        "TLS logged for a server without STARTTLS:\n%s" % a.log_excerpt(q2)
    assert clear[0].kv.get("reason") == "not offered", clear[0].raw


# ---------------------------------------------------------------- AUTH

def test_auth_not_offered_without_tls(lab):
    with st.Client(lab.a.port) as c:
        r = c.ehlo()
        assert "AUTH" not in tlsauth.ehlo_keywords(r), "AUTH offered in clear: %r" % r
        assert "STARTTLS" in tlsauth.ehlo_keywords(r), r
        r = tlsauth.auth_plain(c, "sub@example.test", tlsauth.PASSWORD)
        assert r.code in (538, 502), "AUTH in clear: %r" % r
        r = tlsauth.auth_login(c, "sub@example.test", tlsauth.PASSWORD)
        assert r.code in (538, 502), "AUTH LOGIN in clear: %r" % r
        # Still not authenticated: a TLS-only FROM check would see no A flag, and no switch happened.
        r = c.cmd("MAIL FROM:<sub@example.test>")
        assert r.code == 250, r
        c.quit()
    assert [ln for ln in lab.a.events("reject") if ln.kv.get("cmd") == "AUTH"
            and ln.kv.get("reply", "")[:3] in ("538", "502")], lab.a.log_excerpt("cmd=AUTH")


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_auth_success_over_tls(lab, mech):
    with st.Client(lab.a.port) as c:
        c.ehlo()
        r = tlsauth.starttls(c)
        assert "AUTH" in tlsauth.ehlo_keywords(r), r
        auth_line = [ln for ln in r.lines if ln.upper().startswith("AUTH")][0].upper().split()
        assert "PLAIN" in auth_line and "LOGIN" in auth_line, r
        f = tlsauth.auth_plain if mech == "PLAIN" else tlsauth.auth_login
        r = f(c, "sub@example.test", tlsauth.PASSWORD)
        assert r.code == 235 and r.enhanced() == "2.7.0", r
        r = c.cmd("AUTH PLAIN " + tlsauth.b64("\0sub@example.test\0x"))
        assert r.code == 503, "a second AUTH: %r" % r
        c.quit()
    ok = [ln for ln in lab.a.events("auth") if ln.kv.get("result") == "ok" and ln.kv.get("user") == "<sub@example.test>"]
    assert ok, lab.a.log_excerpt("auth")


def test_auth_failures_delay_then_close(lab):
    with st.Client(lab.a.port, timeout=15) as c:
        c.ehlo()
        tlsauth.starttls(c)
        t0 = time.monotonic()
        r = tlsauth.auth_plain(c, "sub@example.test", "wrong")
        t1 = time.monotonic()
        assert r.code == 535 and r.enhanced() == "5.7.8", r
        assert t1 - t0 >= 0.9, "first failure answered after %.2f s" % (t1 - t0)
        r = tlsauth.auth_login(c, "nobody@example.test", tlsauth.PASSWORD)  # unknown user
        t2 = time.monotonic()
        assert r.code == 535, r
        assert t2 - t1 >= 1.9, "second failure answered after %.2f s (the delay must grow)" % (t2 - t1)
        r = tlsauth.auth_plain(c, "off@example.test", tlsauth.PASSWORD)  # inactive user, right password
        assert r.code == 535, "an inactive user authenticated: %r" % r
        replies, closed = c.replies_until_close(timeout=8)
        assert any(x.code == 421 for x in replies), "no 421 after auth_max_failures: %r" % replies
        assert closed, "the session stayed open after auth_max_failures"
    fails = [ln for ln in lab.a.events("auth") if ln.kv.get("result") == "failed"]
    assert {"1", "2", "3"} <= {ln.kv.get("failures") for ln in fails}, lab.a.log_excerpt("auth")


def test_saslswitchchannel_in_log_and_routing(lab):
    a = lab.a
    mid = "submit-%s@test" % uid()
    with st.Client(a.port) as c:
        c.ehlo()
        tlsauth.starttls(c)
        assert tlsauth.auth_plain(c, "sub@example.test", tlsauth.PASSWORD).code == 235
        assert c.cmd("MAIL FROM:<sub@example.test>").code == 250
        assert c.cmd("RCPT TO:<friend@remote.test>").code == 250
        final = c.data(make_message(mid, frm="sub@example.test", to="friend@remote.test"))
        assert final.code == 250, final
        c.quit()
    qid = st.queue_id(final)
    sw = [ln for ln in a.events("channel_switch") if ln.kv.get("user") == "<sub@example.test>"]
    assert sw and sw[-1].kv.get("from") == "tcp_local" and sw[-1].kv.get("to") == "tcp_auth", \
        "no channel_switch event:\n%s" % a.log_excerpt("channel_switch", "auth")
    assert st.queued_channels(a, qid) == ["tcp_submit"], \
        "authenticated mail not routed by the $Mtcp_auth rule:\n%s" % a.log_excerpt(qid)
    got = lab.sink.wait(mid.encode(), timeout=20)
    assert got and got[0][0]["rcpt_tos"] == ["friend@remote.test"], a.log_excerpt(qid)
    rcvd = re.sub(r"\s+", " ", st.parse_mail(got[0][1]).get_all("Received")[0])
    assert " with ESMTPSA " in rcvd, "authenticated TLS session not ESMTPSA: %r" % rcvd

    # The same routing in `sluice test rewrite`.
    def rewrite(*extra):
        return subprocess.run([st.BIN, "test", "rewrite", "friend@remote.test", "-C", a.confdir] + list(extra),
                              capture_output=True, text=True, timeout=30)
    r = rewrite("--source-channel", "tcp_auth")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^channel\s*=\s*tcp_submit$", r.stdout, re.M), r.stdout
    r = rewrite("--source-channel", "tcp_local")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^channel\s*=\s*tcp_local$", r.stdout, re.M), r.stdout


def test_unauthenticated_mail_keeps_source_channel(lab):
    a = lab.a
    mid = "plain-%s@test" % uid()
    final, _ = st.send_message(a.port, "alice@example.test", ["friend@remote.test"],
                               make_message(mid, to="friend@remote.test"))
    assert final.code == 250
    assert st.queued_channels(a, st.queue_id(final)) == ["tcp_local"], a.log_excerpt(st.queue_id(final))


# ---------------------------------------------------------------- submission services

def test_auth_required_service_530_before_auth(lab):
    with st.Client(lab.sub_port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<sub@example.test>")
        assert r.code == 530, "MAIL in clear on a TLS_MODE=required service: %r" % r
        tlsauth.starttls(c)
        r = c.cmd("MAIL FROM:<sub@example.test>")
        assert r.code == 530 and r.enhanced() == "5.7.0", "MAIL before AUTH: %r" % r
        assert tlsauth.auth_plain(c, "sub@example.test", tlsauth.PASSWORD).code == 235
        assert c.cmd("MAIL FROM:<sub@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        c.quit()


def test_implicit_tls_service(lab):
    mid = "implicit-%s@test" % uid()
    raw = socket.create_connection(("127.0.0.1", lab.subs_port), timeout=10)
    c = st.Client.__new__(st.Client)
    c.sock = tlsauth.client_context().wrap_socket(raw)
    c.sock.settimeout(10)
    c.buf, c.closed = b"", False
    try:
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3"), c.sock.version()
        g = c.reply()
        assert g.code == 220, g
        r = c.ehlo()
        kws = tlsauth.ehlo_keywords(r)
        assert "STARTTLS" not in kws and "AUTH" in kws, r
        assert c.cmd("MAIL FROM:<sub@example.test>").code == 530
        assert tlsauth.auth_login(c, "sub@example.test", tlsauth.PASSWORD).code == 235
        assert c.cmd("MAIL FROM:<sub@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        final = c.data(make_message(mid, frm="sub@example.test"))
        assert final.code == 250, final
        c.quit()
    finally:
        c.close()
    got = lab.a.wait_message("bob@example.test", mid.encode())
    assert got, lab.a.log_excerpt("tls")
    rcvd = re.sub(r"\s+", " ", st.parse_mail(got[0]).get_all("Received")[0])
    assert " with ESMTPSA " in rcvd and re.search(r"\(TLSv1\.[23] ", rcvd), rcvd


def test_slow_password_check_does_not_stall_other_sessions(harness):
    """A decision that waits (here an AUTH against a SHA-512 hash of 6,000,000 rounds, a few seconds
    of work) runs off the event loop: while one session waits for its AUTH answer, another session
    gets its whole transaction through, and the slow AUTH still succeeds afterwards."""
    import select
    import warnings
    with warnings.catch_warnings():  # Debian's Python 3.11 still has crypt (deprecated): a real crypt(3) hash
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    slow_hash = crypt.crypt(tlsauth.PASSWORD, "$6$rounds=6000000$slowsaltslowsalt$")
    ldif = st.DEFAULT_LDIF + ("\ndn: uid=slow,ou=people,dc=example,dc=test\n"
                              "objectClass: inetOrgPerson\nobjectClass: mailUser\n"
                              "uid: slow\ncn: Slow\nsn: Test\nmail: slow@example.test\n"
                              "userPassword: {CRYPT}%s\n" % slow_hash)
    mta = harness.sluice(start=False, ldif=ldif)
    mta.write("dispatcher.cnf", "[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\n"
              "PARAMETER=CHANNEL=tcp_local\nAUTH_WITHOUT_TLS=yes\n" % mta.port)
    mta.start()
    with st.Client(mta.port) as slow:
        slow.ehlo()
        slow.send(("AUTH PLAIN %s\r\n" % tlsauth.b64("\0slow@example.test\0" + tlsauth.PASSWORD)).encode())
        mid = "during-slow-auth@test"
        r, _ = st.send_message(mta.port, "alice@example.test", ["bob@example.test"], st.make_message(mid))
        assert r.code == 250, r
        pending, _, _ = select.select([slow.sock], [], [], 0)
        assert not pending, "the slow AUTH was answered before the other session's message: is it on the loop?"
        r = slow.reply()
        assert r.code == 235, r
        slow.quit()
    mta.wait_message("bob@example.test", mid.encode())


# ---------------------------------------------------------------- close_notify, ciphers, versions

def ragged_context():
    """ragged_context - a client context that reports an EOF without close_notify as an error."""
    ctx = tlsauth.client_context()
    if hasattr(ssl, "OP_IGNORE_UNEXPECTED_EOF"):
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    return ctx


def quit_and_read_eof(c):
    """quit_and_read_eof - QUIT, then read to the end: b"" after a close_notify, SSLEOFError without one."""
    r = c.cmd("QUIT")
    assert r.code == 221, r
    assert c.buf == b"", c.buf
    end = c.sock.recv(100)
    assert end == b"", end


def test_close_notify_after_quit_starttls(lab):
    with st.Client(lab.a.port) as c:
        c.ehlo()
        assert c.cmd("STARTTLS").code == 220
        c.sock = ragged_context().wrap_socket(c.sock, suppress_ragged_eofs=False)
        c.sock.settimeout(10)
        c.ehlo()
        quit_and_read_eof(c)  # before the fix: ssl.SSLEOFError (EOF in violation of protocol)


def test_close_notify_after_quit_implicit(lab):
    raw = socket.create_connection(("127.0.0.1", lab.subs_port), timeout=10)
    c = st.Client.__new__(st.Client)
    c.sock = ragged_context().wrap_socket(raw, suppress_ragged_eofs=False)
    c.sock.settimeout(10)
    c.buf, c.closed = b"", False
    try:
        assert c.reply().code == 220
        c.ehlo()
        quit_and_read_eof(c)
    finally:
        c.close()


def test_sigterm_while_close_notify_pending(harness):
    """SIGTERM right after a TLS client quit and hung up, while its close_notify may still wait
    to leave: the closing session gets no 421 written after its close_notify (that write fails
    and frees the connection under the writer), and the daemon stops cleanly."""
    cert, key = tlsauth.make_cert(harness.subdir("cert"))
    mta = harness.sluice(start=False, options={"tls_certificate": cert, "tls_key": key})
    for delay in (0.01, 0.02, 0.025, 0.03):
        mta.start()
        with st.Client(mta.port) as c:
            c.ehlo()
            tlsauth.starttls(c)
            c.quit()
        time.sleep(delay)
        mta.stop()
        assert not mta.problems, "SIGTERM %.3f s after QUIT: %s" % (delay, mta.problems[0][:3000])


def s_client(port, *args):
    """s_client - QUIT through `openssl s_client -starttls smtp` with args; (negotiated, stderr)."""
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % port, "-brief",
                        "-crlf", "-ign_eof", "-name", "sclient.example.test"] + list(args),
                       input=b"QUIT\n", capture_output=True, timeout=30)
    err = p.stderr.decode("utf-8", "replace")
    out = p.stdout.decode("utf-8", "replace")
    done = p.returncode == 0 and "Protocol version:" in err and "221 " in out
    return done, err


@pytest.fixture(scope="module")
def rsa_cert(module_harness):
    return tlsauth.make_cert(module_harness.subdir("rsa-cert"), rsa=True)


def rsa_sluice(harness, rsa_cert, **options):
    cert, key = rsa_cert
    opts = {"tls_certificate": cert, "tls_key": key}
    opts.update(options)
    return harness.sluice(options=opts)


def test_tls12_default_ciphers_ecdhe_aead_only(harness, rsa_cert):
    mta = rsa_sluice(harness, rsa_cert)
    ok, err = s_client(mta.port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert ok, err
    assert "Ciphersuite: ECDHE-RSA-AES128-GCM-SHA256" in err, err
    assert "unexpected eof" not in err.lower(), "no close_notify after 221: %s" % err
    for weak in ("AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES128-GCM-SHA256"):  # static RSA and/or CBC
        ok, err = s_client(mta.port, "-tls1_2", "-cipher", weak)
        assert not ok, "TLS 1.2 with %s was accepted: %s" % (weak, err)
    ok, err = s_client(mta.port, "-tls1_3")
    assert ok, err


def test_tls_ciphers_and_min_version_options(harness, rsa_cert):
    mta = rsa_sluice(harness, rsa_cert, tls_ciphers="ECDHE-RSA-AES256-GCM-SHA384", tls_min_version="TLSv1.2")
    assert s_client(mta.port, "-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384")[0]
    assert not s_client(mta.port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")[0]
    mta.stop()
    mta13 = rsa_sluice(harness, rsa_cert, tls_min_version="TLSv1.3")
    assert not s_client(mta13.port, "-tls1_2")[0]
    ok, err = s_client(mta13.port, "-tls1_3")
    assert ok and "Protocol version: TLSv1.3" in err, err


@pytest.mark.parametrize("key,value,expect", [
    ("tls_ciphers", "NO-SUCH-CIPHER", "an OpenSSL cipher list for TLS 1.2"),
    ("tls_min_version", "TLSv1.1", "TLSv1.2 or TLSv1.3"),
])
def test_tls_option_bad_values(harness, rsa_cert, key, value, expect):
    cert, key_file = rsa_cert
    mta = harness.sluice(start=False, options={"tls_certificate": cert, "tls_key": key_file, key: value})
    p = subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    line = [i + 1 for i, ln in enumerate(open(os.path.join(mta.confdir, "option.dat"))) if ln.startswith(key + "=")][0]
    want = "%s/option.dat:%d: %s: bad value '%s' (expected %s" % (mta.confdir, line, key, value, expect)
    assert want in p.stderr, p.stderr
