"""test_dane.py - DANE in the SMTP client (RFC 7672, issue 15 section 2, doc/tls.md) against real
peers: Knot DNS serving DNSSEC-signed zones (peers/knot-start.sh), unbound validating in front of
it (peers/unbound-start.sh; the daemon's only dns_servers entry, on loopback, so the AD bit counts)
and aiosmtpd sinks (peers/sink.py) offering STARTTLS with certificates the test makes with openssl.
The TLSA records are computed from those certificates and sit at _PORT._tcp.MXHOST (the sinks
listen on the lab's port, which the channel's `port` names).

Zones: dane.test (signed, valid anchor), plain.test (unsigned: insecure), bogus.test (signed, a
wrong anchor: unbound answers SERVFAIL). Policy: `dane` for .dane.test, plain.test and bogus.test,
`dane-only` for only.plain.test and only.dane.test.

- DANE-EE `3 1 1 sha256(SPKI)` of a self-signed certificate: delivered, `tls=dane-verified` with
  the record that matched (no name or CA check).
- DANE-TA `2 0 1 sha256(CA certificate)`: the sink presents leaf + CA, the leaf names the MX host:
  delivered, dane-verified at depth 1.
- A record matching no certificate: deferred 4.7.5 (result_type=validation-failure), nothing
  delivered at all (never clear text); DANE-TA whose chain matches but whose leaf names another
  host: deferred 4.7.5 (certificate-host-mismatch).
- TLSA present but the sink offers no STARTTLS: deferred 4.7.4 (starttls-not-supported).
- Only PKIX-EE records (unusable for SMTP): mandatory TLS without authentication (tls=encrypted).
- A secure MX whose host's TLSA lookup fails (it lies in bogus.test): that host is skipped with
  4.7.5 (dnssec-invalid) and the next MX (DANE-EE) gets the message.
- bogus.test's own MX lookup fails: deferred, nothing delivered.
- The insecure zone with `dane`: delivered as `may`; with `dane-only`: deferred 4.7.5 (dane-required).
- dane-only with a secure usable TLSA: delivered, dane-verified.
- The metric sluice_dane_total counts verified, failed and skipped hosts.
- `sluice check` accepts dane and dane-only.
"""
import hashlib
import os
import subprocess
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message
from test_tls_policy import make_ca, make_leaf

HOSTS = {"ee": 2, "ta": 3, "mismatch": 4, "nostarttls": 5, "unusable": 6, "plain": 7, "bogus": 8, "taname": 9}

POLICY = """# outbound TLS policy of test_dane
.dane.test        dane
only.dane.test    dane-only
plain.test        dane
only.plain.test   dane-only
bogus.test        dane
"""


def uid():
    return uuid.uuid4().hex[:16]


def der_of_cert(pem):
    return subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"], capture_output=True, check=True,
                          timeout=30).stdout


def spki_sha256(pem):
    """spki_sha256 - hex SHA-256 of the certificate's SubjectPublicKeyInfo (TLSA selector 1, matching 1)."""
    pub = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-pubkey"], capture_output=True, check=True,
                         timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True,
                         check=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


class Knot(st.Peer):
    """peers/knot-start.sh: knotd in the foreground serving zone files written into its directory."""

    def __init__(self, workdir, zones):
        self.port = st.free_port("127.0.0.1")
        self.dir = os.path.join(workdir, "knot")
        os.makedirs(self.dir, exist_ok=True)
        specs = []
        for name, (mode, text) in zones.items():
            with open(os.path.join(self.dir, name + ".zone"), "w") as f:
                f.write(text)
            specs.append("%s:%s" % (name, mode))
        super().__init__(["/bin/bash", os.path.join(st.PEERS, "knot-start.sh"), self.dir, str(self.port)] + specs,
                         workdir, "knot")
        self.wait_file(os.path.join(self.dir, "ready"), timeout=30)
        self.ta = os.path.join(self.dir, "ta.key")


class Unbound(st.Peer):
    """peers/unbound-start.sh: unbound in the foreground validating the zones of a Knot."""

    def __init__(self, workdir, knot, zones):
        self.port = st.free_port("127.0.0.1")
        self.dir = os.path.join(workdir, "unbound")
        super().__init__(["/bin/bash", os.path.join(st.PEERS, "unbound-start.sh"), self.dir, str(self.port),
                          str(knot.port), knot.ta] + list(zones), workdir, "unbound")
        self.wait_file(os.path.join(self.dir, "ready"), timeout=30)

    def query(self, name, rdtype):
        """query - (rcode, AD flag, answer texts) of name/rdtype through this resolver, asking for AD."""
        import dns.flags
        import dns.message
        import dns.query
        q = dns.message.make_query(name, rdtype)
        q.flags |= dns.flags.AD
        r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=3)
        return r.rcode(), bool(r.flags & dns.flags.AD), [rr.to_text() for rrset in r.answer for rr in rrset]


def zone(origin, body):
    return ("$ORIGIN %s.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A 127.0.0.1\n" % origin) + body


@pytest.fixture(scope="module")
def lab(module_harness):
    h = module_harness
    pki = h.subdir("pki")
    ca = make_ca(pki)
    lab = st.Lab(h, hosts=tuple(HOSTS.values()))
    port = lab.port
    a = {k: lab.host(n) for k, n in HOSTS.items()}

    ee = make_leaf(pki, "mx-ee.dane.test", None)            # self-signed: DANE-EE needs no CA
    ta_leaf = make_leaf(pki, "mx-ta.dane.test", ca)
    ta_chain = os.path.join(pki, "ta-chain.pem")            # DANE-TA: the server sends the CA too
    with open(ta_chain, "w") as f:
        f.write(open(ta_leaf[0]).read() + open(ca[0]).read())
    other = make_leaf(pki, "mx-mismatch.dane.test", None)
    wrong_name = make_leaf(pki, "mx-elsewhere.dane.test", ca)  # the CA's, but for another name
    wrong_chain = os.path.join(pki, "wrong-chain.pem")
    with open(wrong_chain, "w") as f:
        f.write(open(wrong_name[0]).read() + open(ca[0]).read())
    unusable = make_leaf(pki, "mx-unusable.dane.test", None)

    ee_hash = spki_sha256(ee[0])
    ca_hash = hashlib.sha256(der_of_cert(ca[0])).hexdigest()
    wrong_hash = hashlib.sha256(b"no certificate has this key").hexdigest()
    t = "_%d._tcp" % port
    dane_zone = zone("dane.test", f"""
ee        MX 10 mx-ee
only      MX 10 mx-ee
ta        MX 10 mx-ta
mismatch  MX 10 mx-mismatch
nostarttls MX 10 mx-nostarttls
unusable  MX 10 mx-unusable
taname    MX 10 mx-taname
tlsafail  MX 10 mx.bogus.test.
tlsafail  MX 20 mx-ee
mx-ee          A {a['ee']}
mx-ta          A {a['ta']}
mx-mismatch    A {a['mismatch']}
mx-nostarttls  A {a['nostarttls']}
mx-unusable    A {a['unusable']}
mx-taname      A {a['taname']}
{t}.mx-ee         TLSA 3 1 1 {ee_hash}
{t}.mx-ta         TLSA 2 0 1 {ca_hash}
{t}.mx-mismatch   TLSA 3 1 1 {wrong_hash}
{t}.mx-nostarttls TLSA 3 1 1 {ee_hash}
{t}.mx-taname     TLSA 2 0 1 {ca_hash}
{t}.mx-unusable   TLSA 1 1 1 {spki_sha256(unusable[0])}
""")
    plain_zone = zone("plain.test", f"""
@     MX 10 mx
only  MX 10 mx
mx    A {a['plain']}
{t}.mx TLSA 3 1 1 {wrong_hash}
""")
    bogus_zone = zone("bogus.test", f"""
@     MX 10 mx
mx    A {a['bogus']}
{t}.mx TLSA 3 1 1 {ee_hash}
""")
    zones = {"dane.test": ("signed", dane_zone), "plain.test": ("unsigned", plain_zone),
             "bogus.test": ("bogus", bogus_zone)}
    lab.knot = Knot(h.subdir("knot"), zones)
    h.peers.append(lab.knot)
    lab.unbound = Unbound(h.subdir("unbound"), lab.knot, zones)
    h.peers.append(lab.unbound)

    lab.ee = lab.start_sink(HOSTS["ee"], name="sink-ee", tls=ee)
    lab.ta = lab.start_sink(HOSTS["ta"], name="sink-ta", tls=(ta_chain, ta_leaf[1]))
    lab.mismatch = lab.start_sink(HOSTS["mismatch"], name="sink-mismatch", tls=other)
    lab.nostarttls = lab.start_sink(HOSTS["nostarttls"], name="sink-nostarttls")
    lab.unusable = lab.start_sink(HOSTS["unusable"], name="sink-unusable", tls=unusable)
    lab.plain = lab.start_sink(HOSTS["plain"], name="sink-plain", tls=other)
    lab.bogus = lab.start_sink(HOSTS["bogus"], name="sink-bogus", tls=ee)
    lab.taname = lab.start_sink(HOSTS["taname"], name="sink-taname", tls=(wrong_chain, wrong_name[1]))

    lab.mta = h.sluice(tcp_local='smtp mx port %d backoff "PT1H"' % port, start=False,
                       options={"dns_servers": "127.0.0.1:%d" % lab.unbound.port, "tls_policy_file": "tls_policy",
                                "metrics_listen": str(st.free_port("127.0.0.1"))})
    lab.mta.write("tls_policy", POLICY)
    # One message per connection: no outbound TLS connection is left idle when the daemon stops
    # (see test_tls_policy.py).
    lab.mta.write("tcp_local_option", "MAX_MESSAGES_PER_CONNECTION=1\n")
    lab.mta.start()
    return lab


def send(lab, rcpt):
    """send - one message to rcpt through the daemon; returns (queue id, message id)."""
    mid = "dane-%s@test" % uid()
    final, rr = send_message(lab.mta.port, "alice@example.test", [rcpt], make_message(mid, to=rcpt))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    return st.queue_id(final), mid


def delivery(lab, qid, timeout=30):
    ln = lab.mta.wait_event(lambda l: l.event == "delivery" and l.id == qid, timeout=timeout)
    assert ln, "no delivery line for %s:\n%s" % (qid, lab.mta.log_excerpt(qid))
    return ln


def lines(lab, qid, event):
    return [ln for ln in lab.mta.events(event) if ln.id == qid]


def nowhere(lab, mid):
    """nowhere - no sink of the lab received the message."""
    return not any(s.find(mid.encode()) for s in (lab.ee, lab.ta, lab.mismatch, lab.nostarttls, lab.unusable,
                                                   lab.plain, lab.bogus, lab.taname))


def test_resolver_chain_is_what_the_cases_need(lab):
    rcode, ad, ans = lab.unbound.query("_%d._tcp.mx-ee.dane.test" % lab.port, "TLSA")
    assert rcode == 0 and ad and ans, (rcode, ad, ans)
    rcode, ad, ans = lab.unbound.query("plain.test", "MX")
    assert rcode == 0 and not ad and ans, (rcode, ad, ans)
    rcode, ad, ans = lab.unbound.query("bogus.test", "MX")
    assert rcode == 2, (rcode, ad, ans)  # SERVFAIL: bogus


def test_dane_ee_verified(lab):
    qid, mid = send(lab, "bob@ee.dane.test")
    got = lab.ee.wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    t = lines(lab, qid, "tls")
    assert t and t[0].kv.get("tls") == "dane-verified" and t[0].kv.get("policy") == "dane", lab.mta.log_excerpt(qid)
    assert "usage=3 selector=1 mtype=1 depth=0" in t[0].kv.get("match", ""), t[0].raw
    d = lines(lab, qid, "dane")
    assert d and d[0].kv.get("mode") == "verify" and d[0].kv.get("mx_secure") == "yes", lab.mta.log_excerpt(qid)
    assert delivery(lab, qid).kv.get("result") == "sent"


def test_dane_ta_verified(lab):
    qid, mid = send(lab, "carol@ta.dane.test")
    got = lab.ta.wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    t = lines(lab, qid, "tls")
    assert t and t[0].kv.get("tls") == "dane-verified", lab.mta.log_excerpt(qid)
    assert "usage=2 selector=0 mtype=1 depth=1" in t[0].kv.get("match", ""), t[0].raw


def test_mismatch_defers_4_7_5_never_clear_text(lab):
    qid, mid = send(lab, "dave@mismatch.dane.test")
    d = delivery(lab, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", d.raw
    f = lines(lab, qid, "tls_failed")
    assert f and f[0].kv.get("result_type") == "validation-failure", lab.mta.log_excerpt(qid)
    assert nowhere(lab, mid), "the message was delivered despite the TLSA mismatch"


def test_dane_ta_wrong_name_defers_4_7_5(lab):
    qid, mid = send(lab, "dora@taname.dane.test")
    d = delivery(lab, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", d.raw
    f = lines(lab, qid, "tls_failed")
    assert f and f[0].kv.get("result_type") == "certificate-host-mismatch", lab.mta.log_excerpt(qid)
    assert nowhere(lab, mid)


def test_tlsa_without_starttls_defers_4_7_4(lab):
    qid, mid = send(lab, "erin@nostarttls.dane.test")
    d = delivery(lab, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.4", d.raw
    f = lines(lab, qid, "tls_failed")
    assert f and f[0].kv.get("result_type") == "starttls-not-supported", lab.mta.log_excerpt(qid)
    assert nowhere(lab, mid)


def test_unusable_tlsa_is_mandatory_unauthenticated_tls(lab):
    qid, mid = send(lab, "fred@unusable.dane.test")
    got = lab.unusable.wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    t = lines(lab, qid, "tls")
    assert t and t[0].kv.get("tls") == "encrypted" and t[0].kv.get("policy") == "dane", lab.mta.log_excerpt(qid)
    d = lines(lab, qid, "dane")
    assert d and d[0].kv.get("mode") == "encrypt" and d[0].kv.get("result_type") == "tlsa-invalid", d


def test_failed_tlsa_lookup_skips_host_then_next_mx(lab):
    qid, mid = send(lab, "gina@tlsafail.dane.test")
    got = lab.ee.wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    f = lines(lab, qid, "tls_failed")
    assert f and f[0].kv.get("peer") == "mx.bogus.test" and f[0].kv.get("result_type") == "dnssec-invalid", \
        lab.mta.log_excerpt(qid)
    assert not lab.bogus.find(mid.encode())
    t = lines(lab, qid, "tls")
    assert t and t[0].kv.get("tls") == "dane-verified", lab.mta.log_excerpt(qid)


def test_bogus_zone_defers(lab):
    qid, mid = send(lab, "hank@bogus.test")
    d = delivery(lab, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status", "").startswith("4."), d.raw
    assert nowhere(lab, mid)


def test_insecure_zone_dane_is_may(lab):
    qid, mid = send(lab, "ivan@plain.test")
    got = lab.plain.wait(mid.encode(), timeout=30)
    assert got, lab.mta.log_excerpt(qid)
    t = lines(lab, qid, "tls")
    assert t and t[0].kv.get("tls") == "encrypted" and t[0].kv.get("policy") == "dane", lab.mta.log_excerpt(qid)
    d = lines(lab, qid, "dane")
    assert d and d[0].kv.get("mode") == "none" and d[0].kv.get("mx_secure") == "no", lab.mta.log_excerpt(qid)


def test_insecure_zone_dane_only_defers(lab):
    qid, mid = send(lab, "judy@only.plain.test")
    d = delivery(lab, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", d.raw
    f = lines(lab, qid, "tls_failed")
    assert f and f[0].kv.get("result_type") == "dane-required", lab.mta.log_excerpt(qid)
    assert nowhere(lab, mid)


def test_dane_only_with_secure_tlsa_delivers(lab):
    qid, mid = send(lab, "kate@only.dane.test")
    got = lab.ee.wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    t = lines(lab, qid, "tls")
    assert t and t[0].kv.get("tls") == "dane-verified" and t[0].kv.get("policy") == "dane-only", \
        lab.mta.log_excerpt(qid)


def test_metrics_count_dane_outcomes(lab):
    """after the cases above (this file's order): sluice_dane_total by result."""
    import urllib.request
    port = int(lab.mta.options["metrics_listen"])
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    got = {}
    for line in text.splitlines():
        if line.startswith("sluice_dane_total{"):
            got[line.split('result="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    assert got.get("verified", 0) >= 4 and got.get("failed", 0) >= 3 and got.get("skipped", 0) >= 2, got


def test_check_accepts_dane_levels(harness):
    mta = harness.sluice(start=False, options={"tls_policy_file": "tls_policy"})
    mta.write("tls_policy", "a.test dane\n.b.test dane-only\n")
    p = subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
