"""test_tls_combined.py - DANE, MTA-STS and TLS-RPT together (RFC 7672, RFC 8461 §2, RFC 8460;
doc/tls.md) against real peers: Knot serving one DNSSEC-signed zone, combo.test (peers/knot-start.sh),
unbound validating it (peers/unbound-start.sh; the daemon's only dns_servers entry, on loopback, so
the AD bit counts), an HTTPS MTA-STS policy server (peers/sts_https.py, certificate from a test CA
in tls_ca_file) and aiosmtpd sinks offering STARTTLS.

Every recipient domain below is `sts` in tls_policy_file, publishes `_mta-sts` (policy `mode:
enforce`, `mx: *.combo.test` unless said otherwise) and `_smtp._tls` (rua mailto:tls-reports@rua.combo.test):

- dane.combo.test -> mx-dane (self-signed for another name; TLSA 3 1 1 of its key): delivered,
  tls=dane-verified policy=sts (DANE wins over the MTA-STS name check).
- ca.combo.test -> mx-ca (test CA, names mx-ca; no TLSA): delivered, tls=verified policy=sts.
- badtlsa.combo.test -> mx-badtlsa (test CA, names mx-badtlsa, so MTA-STS would pass; a TLSA record
  matching nothing): deferred 4.7.5, delivered nowhere.
- wrong.combo.test -> mx-wrong (test CA, another name; no TLSA): deferred 4.7.5.
- mixed.combo.test -> mx-badtlsa (10), mx-wrong (20), mx-ca (30): the first two fail by their own
  rules, mx-ca delivers.
- hsdane.combo.test -> mx-hsdane (TLSA) and hssts.combo.test -> mx-hssts (no TLSA), both on a
  server that breaks the handshake (HandshakeBreaker): deferred 4.7.5, a tlsa / an sts failure.
- testok / testbad / testmx.combo.test: policy `mode: testing` with mx-ca / mx-wrong / mx-ca not
  listed (`mx: mx-nowhere.combo.test`): delivered (maytls), sts=testing / sts=testing-failure /
  an sts_failure for the unlisted host.
- nopol / htmlpol.combo.test -> mx-ca, their policy fetch fails (404 / served as text/html):
  sts_fetch result=failed with sts-policy-fetch-error / sts-policy-invalid.

Then `sluice tlsrpt send --day TODAY`: the rua mailbox (a plain sink) gets one report per domain;
each report's policies are checked: `tlsa` for the DANE hosts (1 success at dane, 1
validation-failure at badtlsa and hsdane), `sts` for the others (1 success at ca and testok, 1
certificate-host-mismatch at wrong and testbad, 1 validation-failure at hssts and testmx), and
mixed.combo.test carries both policies in one report (tlsa 0/1, sts 1/1). No session is counted
twice or under `no-policy-found`; a failure-details row of a session names the MX host, its address and ours.
Each `sts` policy carries the policy's lines as `policy-string` and its mx patterns as `mx-host`;
each `tlsa` policy the host's TLSA record ("3 1 1 HEX"). The reports of nopol and htmlpol count
the fetch failure once under `sts` (0/1, no policy-string: nothing was cached).
The daemon runs with MAX_MESSAGES_PER_CONNECTION=1; the harness stops it with SIGTERM and fails on
an unclean exit or a sanitizer report.
"""
import datetime
import email
import email.policy
import gzip
import json
import socket
import subprocess
import threading
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message
from test_dane import Knot, Unbound, spki_sha256, zone
from test_mta_sts import PolicyServer, make_ca, make_leaf
from test_tls_policy import make_leaf as make_self_signed

HOSTS = {"dane": 2, "ca": 3, "badtlsa": 4, "wrong": 5, "rua": 6, "web": 7, "hs": 8}
DOMAINS = ("dane", "ca", "badtlsa", "wrong", "mixed", "hsdane", "hssts", "testok", "testbad", "testmx")
MX = {"dane": ["mx-dane"], "ca": ["mx-ca"], "badtlsa": ["mx-badtlsa"], "wrong": ["mx-wrong"],
      "mixed": ["mx-badtlsa", "mx-wrong", "mx-ca"], "hsdane": ["mx-hsdane"], "hssts": ["mx-hssts"],
      "testok": ["mx-ca"], "testbad": ["mx-wrong"], "testmx": ["mx-ca"]}
TESTING = ("testok", "testbad", "testmx")
# policy fetch failures (MX mx-ca, `sts` in tls_policy_file): no policy file (404), a policy served as text/html
FETCHFAIL = {"nopol": "sts-policy-fetch-error", "htmlpol": "sts-policy-invalid"}


def policy(d):
    return "version: STSv1\r\nmode: %s\r\nmx: %s\r\nmax_age: 86400\r\n" % (
        "testing" if d in TESTING else "enforce", "mx-nowhere.combo.test" if d == "testmx" else "*.combo.test")


class HandshakeBreaker:
    """An SMTP server (a thread) on addr:port that offers STARTTLS, answers it 220, then sends a TLS
    alert instead of a ServerHello and closes: the client's handshake fails. Counts its connections."""

    def __init__(self, addr, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            with c:
                c.settimeout(5)
                try:
                    f = c.makefile("rb")
                    c.sendall(b"220 breaker.test ESMTP\r\n")
                    for _ in range(10):
                        line = f.readline().upper()
                        if not line:
                            break
                        if line.startswith(b"EHLO"):
                            c.sendall(b"250-breaker.test\r\n250 STARTTLS\r\n")
                        elif line.startswith(b"STARTTLS"):
                            c.sendall(b"220 2.0.0 go ahead\r\n")
                            c.recv(4096)  # the ClientHello
                            c.sendall(b"\x15\x03\x03\x00\x02\x02\x28")  # alert: fatal handshake_failure
                            break
                        else:
                            c.sendall(b"502 5.5.1 no\r\n")
                except OSError:
                    pass

    def stop(self):
        self.running = False
        self.thread.join(10)
        self.sock.close()


def uid():
    return uuid.uuid4().hex[:16]


def dom(name):
    return name + ".combo.test"


@pytest.fixture(scope="module")
def lab(module_harness, request):
    h = module_harness
    pki = h.subdir("pki")
    ca = make_ca(pki)
    lab = st.Lab(h, hosts=tuple(HOSTS.values()))
    a = {k: lab.host(n) for k, n in HOSTS.items()}
    lab.https_port = st.free_port(a["web"])

    # DANE-EE authenticates this one; MTA-STS alone would refuse it (no CA, another name)
    dane_cert = make_self_signed(pki, "mx.elsewhere.example", None)
    wrong_hash = "%064x" % 0xdeadbeef  # matches no key
    t = "_%d._tcp" % lab.port
    body = [
        f"mx-dane    A {a['dane']}",
        f"mx-ca      A {a['ca']}",
        f"mx-badtlsa A {a['badtlsa']}",
        f"mx-wrong   A {a['wrong']}",
        f"mx-hsdane  A {a['hs']}",
        f"mx-hssts   A {a['hs']}",
        f"mx-rua     A {a['rua']}",
        "rua        MX 10 mx-rua",
        f"{t}.mx-dane    TLSA 3 1 1 {spki_sha256(dane_cert[0])}",
        f"{t}.mx-badtlsa TLSA 3 1 1 {wrong_hash}",
        f"{t}.mx-hsdane  TLSA 3 1 1 {wrong_hash}",
    ]
    lab.tlsa = {"dane": spki_sha256(dane_cert[0]), "badtlsa": wrong_hash, "hsdane": wrong_hash}
    for d in DOMAINS + tuple(FETCHFAIL):
        body += ["%s MX %d %s" % (d, 10 * (i + 1), m) for i, m in enumerate(MX.get(d, ["mx-ca"]))]
        body += [f'_mta-sts.{d} TXT "v=STSv1; id=c{d};"', f"mta-sts.{d} A {a['web']}",
                 f'_smtp._tls.{d} TXT "v=TLSRPTv1; rua=mailto:tls-reports@rua.combo.test"']
    zones = {"combo.test": ("signed", zone("combo.test", "\n".join(body) + "\n"))}
    lab.knot = Knot(h.subdir("knot"), zones)
    h.peers.append(lab.knot)
    lab.unbound = Unbound(h.subdir("unbound"), lab.knot, zones)
    h.peers.append(lab.unbound)

    lab.web = PolicyServer(h.subdir("web"), a["web"], lab.https_port,
                           make_leaf(pki, ["mta-sts." + dom(d) for d in DOMAINS + tuple(FETCHFAIL)], ca))
    h.peers.append(lab.web)
    for d in DOMAINS:
        lab.web.set(dom(d), policy(d))
    lab.web.set(dom("htmlpol"), policy("htmlpol"), ctype="text/html")

    lab.sinks = {
        "dane": lab.start_sink(HOSTS["dane"], name="sink-dane", tls=dane_cert),
        "ca": lab.start_sink(HOSTS["ca"], name="sink-ca", tls=make_leaf(pki, ["mx-ca.combo.test"], ca)),
        "badtlsa": lab.start_sink(HOSTS["badtlsa"], name="sink-badtlsa",
                                  tls=make_leaf(pki, ["mx-badtlsa.combo.test"], ca)),
        "wrong": lab.start_sink(HOSTS["wrong"], name="sink-wrong", tls=make_leaf(pki, ["mx.other.example.net"], ca)),
    }
    lab.rua = lab.start_sink(HOSTS["rua"], name="sink-rua")
    lab.breaker = HandshakeBreaker(a["hs"], lab.port)
    request.addfinalizer(lab.breaker.stop)

    lab.mta = h.sluice(tcp_local='smtp mx port %d backoff "PT1H"' % lab.port, start=False,
                       options={"dns_servers": "127.0.0.1:%d" % lab.unbound.port, "tls_ca_file": ca[0],
                                "tls_policy_file": "tls_policy", "mta_sts_port": str(lab.https_port),
                                "mta_sts_timeout": "10", "tlsrpt": "1"})
    lab.mta.write("tls_policy", "".join("%s sts\n" % dom(d) for d in DOMAINS + tuple(FETCHFAIL)))
    # One message per connection: no outbound TLS connection is left idle when the daemon stops.
    lab.mta.write("tcp_local_option", "MAX_MESSAGES_PER_CONNECTION=1\n")
    lab.mta.start()
    lab.today = datetime.datetime.now(datetime.timezone.utc).date()
    return lab


def send(lab, rcpt):
    """send - one message to rcpt through the daemon; returns (queue id, message id)."""
    mid = "combo-%s@test" % uid()
    final, rr = send_message(lab.mta.port, "alice@example.test", [rcpt], make_message(mid, to=rcpt))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    return st.queue_id(final), mid


def delivery(lab, qid, timeout=40):
    ln = lab.mta.wait_event(lambda l: l.event == "delivery" and l.id == qid, timeout=timeout)
    assert ln, "no delivery line for %s:\n%s" % (qid, lab.mta.log_excerpt(qid))
    return ln


def lines(lab, qid, event):
    return [ln for ln in lab.mta.events(event) if ln.id == qid]


def nowhere(lab, mid):
    """nowhere - no sink of the lab received the message."""
    return not any(s.find(mid.encode()) for s in list(lab.sinks.values()) + [lab.rua])


def enforced(lab, qid):
    p = lines(lab, qid, "sts_policy")
    assert p and p[0].kv.get("mode") == "enforce" and p[0].kv.get("source") in ("fetched", "cached"), \
        lab.mta.log_excerpt(qid)


def test_resolver_chain_is_what_the_cases_need(lab):
    for name, rdtype in [("_%d._tcp.mx-dane.combo.test" % lab.port, "TLSA"), ("mixed.combo.test", "MX"),
                         ("_mta-sts.dane.combo.test", "TXT"), ("_smtp._tls.wrong.combo.test", "TXT")]:
        rcode, ad, ans = lab.unbound.query(name, rdtype)
        assert rcode == 0 and ad and ans, (name, rcode, ad, ans)
    rcode, ad, ans = lab.unbound.query("_%d._tcp.mx-ca.combo.test" % lab.port, "TLSA")
    assert rcode == 3 and ad, (rcode, ad, ans)  # a secure NXDOMAIN: no TLSA, MTA-STS rules


def test_1_dane_wins_over_the_sts_name_check(lab):
    qid, mid = send(lab, "bob@dane.combo.test")
    got = lab.sinks["dane"].wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    enforced(lab, qid)
    t = lines(lab, qid, "tls")
    assert t and t[0].kv.get("tls") == "dane-verified" and t[0].kv.get("policy") == "sts", lab.mta.log_excerpt(qid)
    assert "usage=3 selector=1 mtype=1 depth=0" in t[0].kv.get("match", ""), t[0].raw
    d = lines(lab, qid, "dane")
    assert d and d[0].kv.get("mode") == "verify" and d[0].kv.get("mx_secure") == "yes", lab.mta.log_excerpt(qid)
    assert not lines(lab, qid, "sts_failure") and not lines(lab, qid, "tls_failed"), lab.mta.log_excerpt(qid)
    assert delivery(lab, qid).kv.get("result") == "sent"


def test_2_no_tlsa_sts_verifies_the_name(lab):
    qid, mid = send(lab, "carol@ca.combo.test")
    got = lab.sinks["ca"].wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    enforced(lab, qid)
    t = lines(lab, qid, "tls")
    assert t and t[0].kv.get("tls") == "verified" and t[0].kv.get("policy") == "sts" and \
        t[0].kv.get("sts") == "enforce", lab.mta.log_excerpt(qid)
    d = lines(lab, qid, "dane")
    assert d and d[0].kv.get("mode") == "none" and d[0].kv.get("mx_secure") == "yes", lab.mta.log_excerpt(qid)
    assert not lines(lab, qid, "sts_failure"), lab.mta.log_excerpt(qid)
    assert delivery(lab, qid).kv.get("result") == "sent"


def test_3_tlsa_mismatch_defers_although_sts_would_pass(lab):
    qid, mid = send(lab, "dave@badtlsa.combo.test")
    d = delivery(lab, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", d.raw
    enforced(lab, qid)
    f = lines(lab, qid, "tls_failed")
    assert len(f) == 1 and f[0].kv.get("result_type") == "validation-failure" and f[0].kv.get("policy") == "sts", \
        lab.mta.log_excerpt(qid)
    assert not lines(lab, qid, "tls"), "a tls line for a session DANE refused: " + lab.mta.log_excerpt(qid)
    assert not lines(lab, qid, "sts_failure"), "a DANE failure recorded as an MTA-STS one"
    assert nowhere(lab, mid), "the message was delivered despite the TLSA mismatch"


def test_4_no_tlsa_wrong_name_defers(lab):
    qid, mid = send(lab, "erin@wrong.combo.test")
    d = delivery(lab, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", d.raw
    enforced(lab, qid)
    f = lines(lab, qid, "tls_failed")
    assert f and f[0].kv.get("result_type") == "certificate-host-mismatch" and f[0].kv.get("policy") == "sts" and \
        "certificate name does not match mx-wrong.combo.test" in f[0].kv.get("reason", ""), lab.mta.log_excerpt(qid)
    s = lines(lab, qid, "sts_failure")
    assert len(s) == 1 and s[0].kv.get("result_type") == "certificate-host-mismatch", lab.mta.log_excerpt(qid)
    assert nowhere(lab, mid), "the message was delivered despite the wrong certificate name"


def test_mixed_hosts_fail_by_their_own_rules_then_deliver(lab):
    qid, mid = send(lab, "fred@mixed.combo.test")
    got = lab.sinks["ca"].wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    assert not lab.sinks["badtlsa"].find(mid.encode()) and not lab.sinks["wrong"].find(mid.encode())
    f = {ln.kv.get("peer", "").split()[0]: ln.kv.get("result_type") for ln in lines(lab, qid, "tls_failed")}
    assert f == {"mx-badtlsa.combo.test": "validation-failure", "mx-wrong.combo.test": "certificate-host-mismatch"}, \
        lab.mta.log_excerpt(qid)
    t = lines(lab, qid, "tls")
    assert len(t) == 1 and t[0].kv.get("tls") == "verified" and t[0].kv.get("policy") == "sts", lab.mta.log_excerpt(qid)
    assert delivery(lab, qid).kv.get("result") == "sent"


def test_handshake_failure_at_a_dane_host_is_a_tlsa_failure(lab):
    qid, mid = send(lab, "gina@hsdane.combo.test")
    d = delivery(lab, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", d.raw
    assert lab.breaker.connections >= 1
    f = lines(lab, qid, "tls_failed")
    assert len(f) == 1 and f[0].kv.get("result_type") == "validation-failure" and f[0].kv.get("policy") == "sts", \
        lab.mta.log_excerpt(qid)
    assert "handshake failure" in f[0].kv.get("reason", ""), f[0].raw  # OpenSSL's reason: the alert
    assert not lines(lab, qid, "sts_failure"), "a DANE host's failure recorded as an MTA-STS one"
    assert nowhere(lab, mid)


def test_handshake_failure_under_sts_is_an_sts_failure(lab):
    qid, mid = send(lab, "hank@hssts.combo.test")
    d = delivery(lab, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", d.raw
    s = lines(lab, qid, "sts_failure")
    assert len(s) == 1 and s[0].kv.get("result_type") == "validation-failure", lab.mta.log_excerpt(qid)
    assert nowhere(lab, mid)


@pytest.mark.parametrize("name,sink,note", [("testok", "ca", None), ("testbad", "wrong", "certificate-host-mismatch")])
def test_testing_policy_delivers_and_notes(lab, name, sink, note):
    qid, mid = send(lab, "ivan@%s.combo.test" % name)
    got = lab.sinks[sink].wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    p = lines(lab, qid, "sts_policy")
    assert p and p[0].kv.get("mode") == "testing", lab.mta.log_excerpt(qid)
    t = lines(lab, qid, "tls")
    assert t and t[0].kv.get("tls") == "encrypted" and t[0].kv.get("policy") == "may", lab.mta.log_excerpt(qid)
    if note:
        assert t[0].kv.get("sts") == "testing-failure" and t[0].kv.get("result_type") == note, t[0].raw
    else:
        assert t[0].kv.get("sts") == "testing", t[0].raw
    assert not lines(lab, qid, "dane"), "a testing policy made DANE lookups"


def test_testing_policy_unlisted_mx_used_and_recorded(lab):
    qid, mid = send(lab, "judy@testmx.combo.test")
    assert lab.sinks["ca"].wait(mid.encode(), timeout=30), lab.mta.log_excerpt(qid)
    s = lines(lab, qid, "sts_failure")
    assert len(s) == 1 and s[0].kv.get("result_type") == "validation-failure" and s[0].kv.get("mode") == "testing", \
        lab.mta.log_excerpt(qid)
    assert not lines(lab, qid, "sts_mx_skipped")


@pytest.mark.parametrize("name", sorted(FETCHFAIL))
def test_policy_fetch_failure_is_recorded(lab, name):
    qid, mid = send(lab, "bob@" + dom(name))
    f = lab.mta.wait_event(lambda l: l.event == "sts_fetch" and l.kv.get("domain") == dom(name), timeout=30)
    assert f and f.kv.get("result") == "failed" and f.kv.get("result_type") == FETCHFAIL[name], \
        lab.mta.log_excerpt(qid)
    lab.fetch_outcome = getattr(lab, "fetch_outcome", {})
    lab.fetch_outcome[name] = delivery(lab, qid)


def report_of(raw):
    """report_of - (message, JSON report) of a report message as the rua sink got it."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [p for p in msg.walk() if p.get_content_type() == "application/tlsrpt+gzip"]
    assert len(parts) == 1, raw[:2000]
    return msg, json.loads(gzip.decompress(parts[0].get_payload(decode=True)))


def policies(rep):
    """policies - {policy-type: (successes, failures, {result-type: count}, [details])} of a report."""
    out = {}
    for p in rep["policies"]:
        typ = p["policy"]["policy-type"]
        assert typ not in out, "policy %s twice: %s" % (typ, rep)
        fd = p.get("failure-details", [])
        kinds = {}
        for f in fd:
            kinds[f["result-type"]] = kinds.get(f["result-type"], 0) + f["failed-session-count"]
        out[typ] = (p["summary"]["total-successful-session-count"], p["summary"]["total-failure-session-count"],
                    kinds, fd)
    return out


def test_5_tlsrpt_report_has_tlsa_and_sts_policies(lab):
    """after the cases above (this file's order): the reports of the day so far."""
    if datetime.datetime.now(datetime.timezone.utc).date() != lab.today:
        pytest.skip("the UTC day changed during the deliveries")
    r = subprocess.run([st.BIN, "tlsrpt", "send", "--day", lab.today.isoformat(), "-C", lab.mta.confdir],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    for d in DOMAINS:
        assert "sent %s" % dom(d) in r.stdout, r.stdout
    want = {  # policy-type: (successes, failures, {result-type: count})
        "dane": {"tlsa": (1, 0, {})},
        "ca": {"sts": (1, 0, {})},
        "badtlsa": {"tlsa": (0, 1, {"validation-failure": 1})},
        "wrong": {"sts": (0, 1, {"certificate-host-mismatch": 1})},
        "mixed": {"tlsa": (0, 1, {"validation-failure": 1}), "sts": (1, 1, {"certificate-host-mismatch": 1})},
        "hsdane": {"tlsa": (0, 1, {"validation-failure": 1})},
        "hssts": {"sts": (0, 1, {"validation-failure": 1})},
        "testok": {"sts": (1, 0, {})},
        "testbad": {"sts": (0, 1, {"certificate-host-mismatch": 1})},
        "testmx": {"sts": (0, 1, {"validation-failure": 1})},  # one session: the unlisted MX, not also a success
    }
    ip_of = {"mx-badtlsa": "badtlsa", "mx-wrong": "wrong", "mx-hsdane": "hs", "mx-hssts": "hs"}
    for d in DOMAINS:
        got = lab.rua.wait(b"TLS-Report-Domain: %s\r\n" % dom(d).encode(), timeout=30)
        assert got, "no report for %s: %s" % (dom(d), lab.mta.log_excerpt("tlsrpt"))
        env, raw = got[0]
        assert env["rcpt_tos"] == ["tls-reports@rua.combo.test"], env
        msg, rep = report_of(raw)
        assert msg.get_content_type() == "multipart/report" and msg.get_param("report-type") == "tlsrpt"
        assert {p["policy"]["policy-domain"] for p in rep["policies"]} == {dom(d)}, rep
        pol = policies(rep)
        assert {k: v[:3] for k, v in pol.items()} == want[d], (d, rep)
        for typ, (_, _, _, fd) in pol.items():
            for f in fd:
                host = f.get("receiving-mx-hostname")
                if d == "testmx":  # found unlisted before any connection: no addresses
                    assert host == "mx-ca.combo.test" and "receiving-ip" not in f, f
                    continue
                assert host.endswith(".combo.test") and host.split(".")[0] in ip_of, (d, f)
                assert f.get("receiving-ip") == lab.host(HOSTS[ip_of[host.split(".")[0]]]), (d, f)
                assert f.get("sending-mta-ip", "").startswith("127."), (d, f)
        for typ, entry in ((p["policy"]["policy-type"], p["policy"]) for p in rep["policies"]):
            if typ == "sts":  # the policy's lines as served, its mx patterns
                assert entry.get("policy-string") == policy(d).split("\r\n")[:-1], (d, entry)
                assert entry.get("mx-host") == ["mx-nowhere.combo.test" if d == "testmx" else "*.combo.test"], entry
            else:  # the host's TLSA records in presentation form
                host = MX[d][0] if d != "mixed" else "mx-badtlsa"
                want_rec = "3 1 1 " + lab.tlsa[host.split("-", 1)[1]].upper()
                assert entry.get("policy-string") == [want_rec] and "mx-host" not in entry, (d, entry)
    assert lab.mta.events("tlsrpt_sent", domain=dom("mixed")), lab.mta.log_excerpt("tlsrpt")
    for d in FETCHFAIL:
        assert "sent %s" % dom(d) in r.stdout, r.stdout


def test_6_tlsrpt_report_counts_policy_fetch_failures(lab):
    """after test_5 sent the day's reports: each fetch failure counted once under the domain's sts
    policy, which has no policy-string (nothing was fetched or cached)."""
    if datetime.datetime.now(datetime.timezone.utc).date() != lab.today:
        pytest.skip("the UTC day changed during the deliveries")
    for d, rtype in FETCHFAIL.items():
        got = lab.rua.wait(b"TLS-Report-Domain: %s\r\n" % dom(d).encode(), timeout=30)
        assert got, "no report for %s: %s" % (dom(d), lab.mta.log_excerpt("tlsrpt"))
        _, rep = report_of(got[0][1])
        pol = policies(rep)
        assert pol["sts"][:3] == (0, 1, {rtype: 1}), (d, rep)
        fd = pol["sts"][3][0]
        assert "receiving-mx-hostname" not in fd and fd.get("failure-reason-code"), fd
        sts = [p["policy"] for p in rep["policies"] if p["policy"]["policy-type"] == "sts"][0]
        assert "policy-string" not in sts and "mx-host" not in sts, sts
