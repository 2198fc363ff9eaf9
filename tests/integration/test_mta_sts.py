"""test_mta_sts.py - MTA-STS (RFC 8461, issue 15 section 2, doc/tls.md) against real peers: dnsmasq
serving the `_mta-sts` TXT records and the addresses of mta-sts.DOMAIN and the MX hosts on
loopback, an HTTPS policy server (peers/sts_https.py: python3 http.server with TLS, its
certificate from a test CA the test makes with `openssl`, trusted through `tls_ca_file`), and
aiosmtpd sinks offering STARTTLS with certificates from the same CA.

Module lab (level `sts` in tls_policy_file, mta_sts=0):
- enforce + a certificate naming the MX host: delivered, tls=verified policy=sts sts=enforce;
- enforce + an MX host the policy does not list: that host is skipped (never connected to), the
  next MX that it lists gets the message;
- enforce + a certificate for another name: deferred 4.7.5, nothing delivered;
- enforce + an MX without STARTTLS: deferred 4.7.4 (never clear text), starttls-not-supported;
  enforce + an MX answering STARTTLS with 454: deferred, never clear text, starttls-not-supported too;
- testing + a certificate for another name: delivered, the tls line says sts=testing-failure;
  testing + an MX host the policy does not list: used, the failure recorded;
- a policy that does not parse, one served as text/html, a redirect, one over 64 KiB, a policy
  server whose certificate no trusted CA signed: no policy (logged with its RFC 8460 result type), delivered
  as the channel's default would;
- a domain whose table entry is not `sts` is never asked.
Own labs (mta_sts=1, no table): the cache survives a restart and is used while the policy server
is down, also when the TXT id changes then (never a downgrade); a changed TXT id refetches, an
unchanged one does not; a domain without a TXT record gets no policy; a policy server that
accepts and never answers holds the delivery at most mta_sts_timeout, then no policy. A cache file
of a policy expired more than a day ago is deleted at start-up or when a lookup finds it so
(sts_cache_expired); one expired less long ago stays.
"""
import os
import subprocess
import sys
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message

HERE = os.path.dirname(os.path.abspath(__file__))


def uid():
    return uuid.uuid4().hex[:16]


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "openssl %s failed: %s" % (" ".join(args), r.stderr)


def make_ca(d, name="ca"):
    """make_ca - a test CA (EC P-256) in d; returns (cert, key)."""
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=Sluice STS Test CA " + name, "-keyout", key, "-out", cert,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_leaf(d, names, ca):
    """make_leaf - a server certificate for the DNS names `names` signed by ca; returns (cert, key)."""
    base = os.path.join(d, names[0] + "-" + uid()[:6])
    cert, key, csr, ext = base + ".pem", base + ".key", base + ".csr", base + ".ext"
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n" %
                ",".join("DNS:" + n for n in names))
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=" + names[0], "-keyout", key, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-days", "2",
            "-extfile", ext, "-out", cert)
    return cert, key


class PolicyServer(st.Peer):
    """peers/sts_https.py on host:port; policies are files the test writes (set/redirect/remove)."""

    def __init__(self, workdir, host, port, tls, name="sts-https"):
        self.dir = os.path.join(workdir, name)
        self.host, self.port = host, port
        os.makedirs(os.path.join(self.dir, "policies"), exist_ok=True)
        argv = [sys.executable, os.path.join(HERE, "peers", "sts_https.py"), "--listen", "%s:%d" % (host, port),
                "--cert", tls[0], "--key", tls[1], "--dir", self.dir]
        ready = os.path.join(self.dir, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        super().__init__(argv, workdir, name)
        self.wait_file(ready)

    def set(self, domain, body, ctype=None):
        """set - serve body as the policy of domain (Content-Type ctype, text/plain by default)."""
        p = os.path.join(self.dir, "policies", domain)
        with open(p, "w") as f:
            f.write(body)
        if ctype:
            with open(p + ".type", "w") as f:
                f.write(ctype)

    def redirect(self, domain, location):
        """redirect - answer 301 to location for domain."""
        self.set(domain, "")
        with open(os.path.join(self.dir, "policies", domain + ".redirect"), "w") as f:
            f.write(location)

    def requests(self, domain):
        """requests - how many requests for domain's policy arrived."""
        try:
            with open(os.path.join(self.dir, "requests")) as f:
                return sum(1 for ln in f if ln.split(" ", 1)[0] == domain)
        except FileNotFoundError:
            return 0


class Dns(st.Peer):
    """peers/dnsmasq-start.sh on 127.0.0.1:port with records; restart(records) keeps the port."""

    def __init__(self, harness, records, probe, port=None):
        self.harness = harness
        self.port = port or st.free_port("127.0.0.1")
        self.probe = probe
        self._start(records)
        harness.peers.append(self)

    def _start(self, records):
        d = self.harness.subdir("dns")
        rec = os.path.join(d, "records.conf")
        with open(rec, "w") as f:
            f.write("\n".join(records) + "\n")
        st.Peer.__init__(self, ["/bin/bash", os.path.join(HERE, "peers", "dnsmasq-start.sh"), d, str(self.port), rec],
                         d, "dnsmasq")
        q = st.Dnsmasq.query
        if not st.wait_until(lambda: self.proc.poll() is not None or q(self, self.probe, "MX"), 10, 0.1) \
                or self.proc.poll() is not None:
            raise AssertionError("dnsmasq did not answer on port %d" % self.port)

    def restart(self, records):
        """restart - the same port, new records."""
        self.stop()
        self._start(records)


def txt(domain, sts_id):
    return 'txt-record=_mta-sts.%s,"v=STSv1; id=%s;"' % (domain, sts_id)


def policy(mode, *mx, max_age=86400):
    return "version: STSv1\r\nmode: %s\r\n%smax_age: %d\r\n" % (mode, "".join("mx: %s\r\n" % m for m in mx), max_age)


def send(mta, rcpt):
    """send - one message to rcpt through the daemon; returns (queue id, message id)."""
    mid = "sts-%s@test" % uid()
    final, rr = send_message(mta.port, "alice@example.test", [rcpt], make_message(mid, to=rcpt))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    return st.queue_id(final), mid


def delivery(mta, qid, timeout=40):
    """delivery - the first "delivery" log line of qid."""
    ln = mta.wait_event(lambda l: l.event == "delivery" and l.id == qid, timeout=timeout)
    assert ln, "no delivery line for %s:\n%s" % (qid, mta.log_excerpt(qid))
    return ln


def lines(mta, qid, event):
    return [ln for ln in mta.events(event) if ln.id == qid]


def fetches(mta, domain):
    return [ln for ln in mta.events("sts_fetch") if ln.kv.get("domain") == domain]


# ---- the module lab: level sts in the policy table --------------------------------------------

DOMAINS = {  # domain: (MX host number(s), policy file or None, TXT id)
    "enf.test": (2, policy("enforce", "mx.enf.test"), "e1"),
    "skip.test": ([4, 5], policy("enforce", "mx2.skip.test"), "s1"),  # mx1 (pref 10) is not listed
    "wrong.test": (6, policy("enforce", "*.wrong.test"), "w1"),       # the sink's certificate names another host
    "testing.test": (6, policy("testing", "mx.testing.test"), "t1"),
    "testmx.test": (6, policy("testing", "mx.elsewhere.test"), "x1"),  # testing, the MX host not listed
    "notls.test": (7, policy("enforce", "mx.notls.test"), "n1"),     # no STARTTLS at all
    "refuse.test": (8, policy("enforce", "mx.refuse.test"), "f1"),   # STARTTLS offered, answered 454
    "bad.test": (6, "version: STSv1\nmode: enforce\nmax_age: 600\n", "b1"),  # no mx: invalid
    "html.test": (6, policy("enforce", "mx.html.test"), "h1"),        # served as text/html
    "redir.test": (6, None, "r1"),                                    # 301 to another policy
    "untrusted.test": (6, policy("enforce", "mx.untrusted.test"), "u1"),  # policy server not trusted
    "optout.test": (6, policy("enforce", "mx.optout.test"), "o1"),    # its table entry is "may"
    "big.test": (6, policy("enforce", "mx.big.test") + "x-pad: %s\r\n" % ("a" * 70000), "g1"),  # over 64 KiB
}

TABLE = "".join("%s sts\n" % d for d in DOMAINS if d != "optout.test") + "optout.test may\n"


@pytest.fixture(scope="module")
def lab(module_harness):
    h = module_harness
    net = st.loopback_net()
    pki = h.subdir("pki")
    ca = make_ca(pki)
    records = []
    for d, (_, _, sts_id) in DOMAINS.items():
        web = 10 if d == "untrusted.test" else 9
        records += [txt(d, sts_id), "host-record=mta-sts.%s,%s.%d" % (d, net, web)]
    lab = st.Lab(h, mx={d: v[0] for d, v in DOMAINS.items()}, hosts=(9, 10), records=records, net=net)
    lab.ca = ca
    lab.https_port = st.free_port(lab.addr[9], also=[lab.addr[10]])
    names = ["mta-sts." + d for d in DOMAINS]
    lab.web = PolicyServer(h.subdir("web"), lab.addr[9], lab.https_port, make_leaf(pki, names, ca))
    h.peers.append(lab.web)
    rogue_ca = make_ca(pki, "rogue")  # signs the second policy server's certificate; nobody trusts it
    lab.web_untrusted = PolicyServer(h.subdir("web2"), lab.addr[10], lab.https_port,
                                     make_leaf(pki, ["mta-sts.untrusted.test"], rogue_ca), name="sts-https-untrusted")
    h.peers.append(lab.web_untrusted)
    for d, (_, body, _) in DOMAINS.items():
        if body is not None:
            (lab.web_untrusted if d == "untrusted.test" else lab.web).set(
                d, body, ctype="text/html" if d == "html.test" else None)
    lab.web.redirect("redir.test", "https://mta-sts.enf.test:%d/.well-known/mta-sts.txt" % lab.https_port)
    lab.enf = lab.start_sink(2, name="sink-enf", tls=make_leaf(pki, ["mx.enf.test"], ca))
    lab.skip1 = lab.start_sink(4, name="sink-skip1", tls=make_leaf(pki, ["mx1.skip.test"], ca))
    lab.skip2 = lab.start_sink(5, name="sink-skip2", tls=make_leaf(pki, ["mx2.skip.test"], ca))
    lab.other = lab.start_sink(6, name="sink-other", tls=make_leaf(pki, ["mx.other.example.net"], ca))
    lab.plain = lab.start_sink(7, name="sink-plain")
    lab.refusing = lab.start_sink(8, name="sink-refusing", refuse_starttls=True)
    lab.mta = lab.sluice(tcp_local='smtp mx port %d backoff "PT1H"' % lab.port, start=False,
                         options={"tls_ca_file": ca[0], "tls_policy_file": "tls_policy",
                                  "mta_sts_port": str(lab.https_port), "mta_sts_timeout": "10"})
    lab.mta.write("tls_policy", TABLE)
    # One message per connection: no outbound TLS connection is left idle at shutdown (see test_tls_policy).
    lab.mta.write("tcp_local_option", "MAX_MESSAGES_PER_CONNECTION=1\n")
    lab.mta.start()
    return lab


def test_enforce_good_certificate_delivered_verified(lab):
    qid, mid = send(lab.mta, "bob@enf.test")
    got = lab.enf.wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    p = lines(lab.mta, qid, "sts_policy")
    assert p and p[0].kv.get("mode") == "enforce" and p[0].kv.get("id") == "e1" and \
        p[0].kv.get("source") in ("fetched", "cached"), lab.mta.log_excerpt(qid)
    t = lines(lab.mta, qid, "tls")
    assert t and t[0].kv.get("tls") == "verified" and t[0].kv.get("policy") == "sts" and \
        t[0].kv.get("sts") == "enforce", lab.mta.log_excerpt(qid)
    assert delivery(lab.mta, qid).kv.get("result") == "sent"
    f = fetches(lab.mta, "enf.test")
    assert f and f[0].kv.get("result") == "ok" and f[0].kv.get("mode") == "enforce", lab.mta.log_excerpt("sts_fetch")
    assert "mx.enf.test" in lab.enf.sni()


def test_enforce_mx_not_in_policy_is_not_used(lab):
    qid, mid = send(lab.mta, "carol@skip.test")
    assert lab.skip2.wait(mid.encode(), timeout=30), lab.mta.log_excerpt(qid)
    assert not lab.skip1.find(mid.encode()), "the MX host the policy does not list got the message"
    sk = lines(lab.mta, qid, "sts_mx_skipped")
    assert sk and sk[0].kv.get("mx") == "mx1.skip.test", lab.mta.log_excerpt(qid)
    assert not [ln for ln in lines(lab.mta, qid, "connect_failed") + lines(lab.mta, qid, "tls")
                if "mx1.skip.test" in ln.raw], "mx1.skip.test was connected to"
    fl = lines(lab.mta, qid, "sts_failure")
    assert fl and fl[0].kv.get("result_type") == "validation-failure", lab.mta.log_excerpt(qid)


def test_enforce_wrong_certificate_name_defers_4_7_5(lab):
    qid, mid = send(lab.mta, "dave@wrong.test")
    d = delivery(lab.mta, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", d.raw
    f = lines(lab.mta, qid, "tls_failed")
    assert f and "certificate name does not match mx.wrong.test" in f[0].kv.get("reason", "") and \
        f[0].kv.get("policy") == "sts" and f[0].kv.get("result_type") == "certificate-host-mismatch", \
        lab.mta.log_excerpt(qid)
    assert not lab.other.find(mid.encode()), "the message reached the sink after a failed verification"


def test_enforce_without_starttls_defers_never_clear_text(lab):
    qid, mid = send(lab.mta, "erin@notls.test")
    d = delivery(lab.mta, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.4", d.raw
    assert not lab.plain.find(mid.encode())
    fl = lines(lab.mta, qid, "sts_failure")
    assert fl and fl[0].kv.get("result_type") == "starttls-not-supported", lab.mta.log_excerpt(qid)


def test_enforce_starttls_refused_defers_starttls_not_supported(lab):
    qid, mid = send(lab.mta, "fred@refuse.test")
    d = delivery(lab.mta, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status", "").startswith("4."), d.raw
    assert not lab.refusing.find(mid.encode()), "the message went in clear text after STARTTLS was refused"
    r = lines(lab.mta, qid, "tls_refused")
    assert r and r[0].kv.get("code") == "454", lab.mta.log_excerpt(qid)
    fl = lines(lab.mta, qid, "sts_failure")
    assert fl and fl[0].kv.get("result_type") == "starttls-not-supported" and \
        fl[0].kv.get("mx") == "mx.refuse.test", lab.mta.log_excerpt(qid)


def test_testing_wrong_name_delivered_and_logged(lab):
    qid, mid = send(lab.mta, "fred@testing.test")
    got = lab.other.wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    t = lines(lab.mta, qid, "tls")
    assert t and t[0].kv.get("tls") == "encrypted" and t[0].kv.get("policy") == "may", lab.mta.log_excerpt(qid)
    assert t[0].kv.get("sts") == "testing-failure" and \
        "certificate name does not match mx.testing.test" in t[0].kv.get("reason", "") and \
        t[0].kv.get("result_type") == "certificate-host-mismatch", t[0].raw
    assert delivery(lab.mta, qid).kv.get("result") == "sent"


def test_testing_mx_not_in_policy_still_used_and_recorded(lab):
    qid, mid = send(lab.mta, "fred@testmx.test")
    assert lab.other.wait(mid.encode(), timeout=30), lab.mta.log_excerpt(qid)
    assert not lines(lab.mta, qid, "sts_mx_skipped")
    fl = [ln for ln in lines(lab.mta, qid, "sts_failure") if ln.kv.get("result_type") == "validation-failure"]
    assert fl and fl[0].kv.get("mode") == "testing" and fl[0].kv.get("mx") == "mx.testmx.test", lab.mta.log_excerpt(qid)


@pytest.mark.parametrize("domain,result_type,error", [
    ("bad.test", "sts-policy-invalid", "no mx field"),
    ("html.test", "sts-policy-invalid", "text/html"),
    ("redir.test", "sts-policy-fetch-error", "HTTP status 301"),
    ("untrusted.test", "sts-webpki-invalid", ""),
    ("big.test", "sts-policy-fetch-error", "larger than 64 KiB"),
])
def test_no_usable_policy_means_no_policy(lab, domain, result_type, error):
    qid, mid = send(lab.mta, "gina@" + domain)
    got = lab.other.wait(mid.encode(), timeout=30)  # as without MTA-STS: maytls takes any certificate
    assert got, lab.mta.log_excerpt(qid)
    p = lines(lab.mta, qid, "sts_policy")
    assert p and p[0].kv.get("mode") == "absent" and p[0].kv.get("source") == "failed", lab.mta.log_excerpt(qid)
    f = fetches(lab.mta, domain)
    assert f and f[0].kv.get("result") == "failed" and f[0].kv.get("result_type") == result_type and \
        error in f[0].kv.get("error", ""), lab.mta.log_excerpt("sts_fetch")
    t = lines(lab.mta, qid, "tls")
    assert t and t[0].kv.get("policy") == "may" and "sts" not in t[0].kv, t[0].raw
    if domain == "redir.test":
        assert lab.web.requests("enf.test") <= 1, "the redirect was followed"


def test_domain_with_other_table_entry_is_not_checked(lab):
    qid, mid = send(lab.mta, "hank@optout.test")
    assert lab.other.wait(mid.encode(), timeout=30), lab.mta.log_excerpt(qid)
    assert not lines(lab.mta, qid, "sts_policy")
    assert lab.web.requests("optout.test") == 0


# ---- own labs: mta_sts=1, the durable cache, id changes -------------------------------------

def own_lab(harness, timeout=10):
    """own_lab - keep.test (MX on a sink whose certificate names another host), plain.test (no
    TXT record) and slow.test (its policy server accepts and never answers), a restartable
    dnsmasq, a policy server, and a daemon with mta_sts=1 and mta_sts_timeout=timeout."""
    lab = type("OwnLab", (), {})()
    net = st.loopback_net()
    lab.net = net
    lab.addr = {n: "%s.%d" % (net, n) for n in (2, 8, 9)}
    lab.port = st.free_port(lab.addr[2])
    pki = harness.subdir("pki")
    lab.ca = make_ca(pki)
    lab.https_port = st.free_port(lab.addr[9], also=[lab.addr[8]])
    lab.base_records = ["mx-host=keep.test,mx.keep.test,10", "host-record=mx.keep.test,%s" % lab.addr[2],
                        "mx-host=plain.test,mx.plain.test,10", "host-record=mx.plain.test,%s" % lab.addr[2],
                        "host-record=mta-sts.keep.test,%s" % lab.addr[9],
                        "mx-host=slow.test,mx.slow.test,10", "host-record=mx.slow.test,%s" % lab.addr[2],
                        "host-record=mta-sts.slow.test,%s" % lab.addr[8], txt("slow.test", "z1")]
    lab.dns = Dns(harness, lab.base_records + [txt("keep.test", "k1")], probe="keep.test")
    lab.web_tls = make_leaf(pki, ["mta-sts.keep.test"], lab.ca)
    lab.web = PolicyServer(harness.subdir("web"), lab.addr[9], lab.https_port, lab.web_tls)
    harness.peers.append(lab.web)
    lab.web.set("keep.test", policy("enforce", "mx.keep.test"))
    lab.tarpit = harness.tarpit(lab.addr[8], lab.https_port)
    lab.sink = harness.sink(lab.addr[2], lab.port, name="sink-keep", tls=make_leaf(pki, ["mx.elsewhere.test"], lab.ca))
    lab.mta = harness.sluice(tcp_local='smtp mx port %d backoff "PT1H"' % lab.port, start=False,
                             options={"tls_ca_file": lab.ca[0], "mta_sts": "1", "mta_sts_port": str(lab.https_port),
                                      "mta_sts_timeout": str(timeout), "dns_servers": "127.0.0.1:%d" % lab.dns.port})
    lab.mta.write("tcp_local_option", "MAX_MESSAGES_PER_CONNECTION=1\n")
    lab.mta.start()
    return lab


def test_cache_survives_restart_and_server_down_never_downgrades(harness):
    lab = own_lab(harness)
    qid, mid = send(lab.mta, "ivan@keep.test")
    d = delivery(lab.mta, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", lab.mta.log_excerpt(qid)
    assert [f for f in fetches(lab.mta, "keep.test") if f.kv.get("result") == "ok"]
    cache = os.path.join(lab.mta.queue_dir, "sts", "keep.test")
    assert os.path.exists(cache), "no cache file"
    with open(cache) as f:
        assert "id k1" in f.read()
    # the policy server goes away; Sluice restarts: the cache it reads keeps the policy enforced
    lab.web.stop()
    lab.mta.stop()
    lab.mta.start()
    loaded = [ln for ln in lab.mta.events("sts_cache_loaded")]
    assert loaded and loaded[-1].kv.get("policies") == "1", lab.mta.log_excerpt("sts_cache")
    qid, mid = send(lab.mta, "ivan@keep.test")
    d = delivery(lab.mta, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", lab.mta.log_excerpt(qid)
    p = lines(lab.mta, qid, "sts_policy")
    assert p and p[0].kv.get("source") == "cached" and p[0].kv.get("mode") == "enforce", lab.mta.log_excerpt(qid)
    # the TXT id changes while the server is down: the refetch fails, the cached policy is kept
    lab.dns.restart(lab.base_records + [txt("keep.test", "k2")])
    qid, mid = send(lab.mta, "ivan@keep.test")
    d = delivery(lab.mta, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", lab.mta.log_excerpt(qid)
    p = lines(lab.mta, qid, "sts_policy")
    assert p and p[0].kv.get("source") == "kept" and p[0].kv.get("mode") == "enforce" and \
        p[0].kv.get("id") == "k1", lab.mta.log_excerpt(qid)
    failed = [f for f in fetches(lab.mta, "keep.test") if f.kv.get("result") == "failed"]
    assert failed and failed[-1].kv.get("keeping") == "cached" and \
        failed[-1].kv.get("result_type") == "sts-policy-fetch-error", lab.mta.log_excerpt("sts_fetch")
    assert not lab.sink.received(), "delivered in spite of the enforced policy"


def cache_file(mta, domain, fetched, max_age=86400):
    """cache_file - write the MTA-STS cache file of domain (an enforce policy fetched at unix time fetched)."""
    d = os.path.join(mta.queue_dir, "sts")
    os.makedirs(d, exist_ok=True)
    body = policy("enforce", "mx." + domain, max_age=max_age)
    path = os.path.join(d, domain)
    with open(path, "w", newline="") as f:
        f.write("sluice-mta-sts 1\ndomain %s\nid c1\nfetched %d\nlength %d\n\n%s" % (domain, fetched, len(body), body))
    return path


def test_cache_files_expired_over_a_day_are_deleted(harness):
    lab = own_lab(harness)
    lab.mta.stop()
    now = int(time.time())
    old = cache_file(lab.mta, "old.test", now - 3 * 86400)            # expired two days ago: deleted at start
    recent = cache_file(lab.mta, "recent.test", now - 86400 - 3600)   # expired an hour ago: kept
    soon = cache_file(lab.mta, "plain.test", now - 2 * 86400 + 8)     # a day past its expiry 8 s from now
    lab.mta.start()
    assert not os.path.exists(old)
    assert os.path.exists(recent) and os.path.exists(soon)
    gone = lab.mta.events("sts_cache_expired")
    assert [g.kv.get("domain") for g in gone] == ["old.test"], lab.mta.log_excerpt("sts_cache")
    loaded = lab.mta.events("sts_cache_loaded")
    assert loaded and loaded[-1].kv.get("policies") == "2", lab.mta.log_excerpt("sts_cache")
    # found a day past its expiry by a lookup: the file goes (on a worker), the domain has no policy now
    assert st.wait_until(lambda: time.time() > now + 9, 15)
    qid, mid = send(lab.mta, "judy@plain.test")
    d = delivery(lab.mta, qid)
    assert d.kv.get("result") == "sent", lab.mta.log_excerpt(qid)
    assert not os.path.exists(soon)
    gone = lab.mta.events("sts_cache_expired")
    assert [g.kv.get("domain") for g in gone] == ["old.test", "plain.test"], lab.mta.log_excerpt("sts_cache")
    assert os.path.exists(recent)


def test_id_change_refetches_same_id_does_not(harness):
    lab = own_lab(harness)
    lab.web.set("keep.test", policy("testing", "mx.keep.test"))
    qid, mid = send(lab.mta, "judy@keep.test")
    assert lab.sink.wait(mid.encode(), timeout=30), lab.mta.log_excerpt(qid)  # testing: delivered
    p = lines(lab.mta, qid, "sts_policy")
    assert p and p[0].kv.get("source") == "fetched" and p[0].kv.get("mode") == "testing", lab.mta.log_excerpt(qid)
    assert lab.web.requests("keep.test") == 1
    # the same id: the cached policy, no request
    qid, mid = send(lab.mta, "judy@keep.test")
    assert lab.sink.wait(mid.encode(), timeout=30), lab.mta.log_excerpt(qid)
    p = lines(lab.mta, qid, "sts_policy")
    assert p and p[0].kv.get("source") == "cached", lab.mta.log_excerpt(qid)
    assert lab.web.requests("keep.test") == 1
    # a new id and a new policy: fetched again, and now enforced
    lab.web.set("keep.test", policy("enforce", "mx.keep.test"))
    lab.dns.restart(lab.base_records + [txt("keep.test", "k2")])
    qid, mid = send(lab.mta, "judy@keep.test")
    d = delivery(lab.mta, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", lab.mta.log_excerpt(qid)
    p = lines(lab.mta, qid, "sts_policy")
    assert p and p[0].kv.get("source") == "fetched" and p[0].kv.get("id") == "k2" and \
        p[0].kv.get("mode") == "enforce", lab.mta.log_excerpt(qid)
    assert lab.web.requests("keep.test") == 2
    # mta_sts=1 and no TXT record: no policy, the channel's default
    qid, mid = send(lab.mta, "kim@plain.test")
    assert lab.sink.wait(mid.encode(), timeout=30), lab.mta.log_excerpt(qid)
    p = lines(lab.mta, qid, "sts_policy")
    assert p and p[0].kv.get("mode") == "absent" and p[0].kv.get("source") == "none", lab.mta.log_excerpt(qid)


def test_hanging_policy_server_bounds_the_wait(harness):
    lab = own_lab(harness, timeout=2)
    t0 = time.monotonic()
    qid, mid = send(lab.mta, "lee@slow.test")
    assert lab.sink.wait(mid.encode(), timeout=30), lab.mta.log_excerpt(qid)  # no policy: maytls, delivered
    assert time.monotonic() - t0 < 15
    p = lines(lab.mta, qid, "sts_policy")
    assert p and p[0].kv.get("mode") == "absent" and p[0].kv.get("source") in ("timeout", "failed"), \
        lab.mta.log_excerpt(qid)
    assert st.wait_until(lambda: fetches(lab.mta, "slow.test"), 10), lab.mta.log_excerpt("sts_fetch")
    f = fetches(lab.mta, "slow.test")[0]
    assert f.kv.get("result") == "failed" and f.kv.get("result_type") == "sts-policy-fetch-error", f.raw
    assert lab.tarpit.stats()["total"] >= 1, "the policy server was never connected to"


@pytest.mark.parametrize("opts,want", [
    ({"mta_sts": "2"}, "mta_sts"),
    ({"mta_sts_port": "0"}, "mta_sts_port"),
    ({"mta_sts_timeout": "10m"}, "mta_sts_timeout"),
])
def test_check_refuses_bad_options(harness, opts, want):
    mta = harness.sluice(start=False, options=opts)
    p = subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and want in p.stderr, p.stdout + p.stderr


def test_check_accepts_sts_level(harness):
    mta = harness.sluice(start=False, options={"tls_policy_file": "tls_policy", "mta_sts": "1"})
    mta.write("tls_policy", "a.test sts\n* may\n")
    p = subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
