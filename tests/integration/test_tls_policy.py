"""test_tls_policy.py - outbound TLS policy (issue 15 section 2, doc/tls.md) against real peers:
aiosmtpd sinks offering STARTTLS with certificates from a test CA that the test makes with the
`openssl` CLI, found through our own dnsmasq as the MX hosts of test domains.

- verify: a certificate from the CA (tls_ca_file) naming the MX host is delivered (tls=verified)
  and the client sent the MX host name as SNI; a certificate for another name, or one that no
  trusted CA signed, defers with 4.7.5 and nothing reaches the sink (never clear text);
  match= names accept a certificate that does not carry the MX host name.
- encrypt: an untrusted certificate is fine (tls=encrypted); a sink without STARTTLS defers 4.7.4.
- none: no STARTTLS even when offered; the channel's maytls without an entry logs tls=none when
  the peer offers no STARTTLS.
- a reload re-reads tls_ca_file: a verify destination whose CA was not trusted is deferred, then
  delivered verified once the CA is in the file, SIGHUP and `sluice queue retry`; a file that does not
  load at a reload is refused (reload_failed) and the old trust kept.
- sluice check reports a malformed table as file:line (the levels dane, dane-only and sts are
  test_dane.py's and test_mta_sts.py's).
"""
import os
import signal
import subprocess
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message


def uid():
    return uuid.uuid4().hex[:16]


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "openssl %s failed: %s" % (" ".join(args), r.stderr)


def make_ca(d):
    """make_ca - a test CA (EC P-256) in d; returns (cert, key)."""
    cert, key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=Sluice Test CA", "-keyout", key, "-out", cert,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_leaf(d, name, ca):
    """make_leaf - a server certificate for DNS name `name` signed by ca (or self-signed when ca is None)."""
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    if ca is None:
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name, "-keyout", key, "-out", cert)
        return cert, key
    csr, ext = os.path.join(d, name + ".csr"), os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n" % name)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=" + name, "-keyout", key, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-days", "2",
            "-extfile", ext, "-out", cert)
    return cert, key


POLICY = """# outbound TLS policy for the tests
good.test        verify
wrong.test       verify
untrusted.test   verify
matchn.test      verify   match=mx9.nowhere.test:.example.net
.enc.test        encrypt
plain.test       encrypt
off.test         none
"""


@pytest.fixture(scope="module")
def lab(module_harness):
    d = module_harness.subdir("pki")
    os.makedirs(d, exist_ok=True)
    ca = make_ca(d)
    lab = st.Lab(module_harness, mx={
        "good.test": 2,        # mx.good.test: a CA certificate for mx.good.test
        "wrong.test": 3,       # mx.wrong.test: a CA certificate for mx.other.example.net
        "matchn.test": 3,      # the same sink, accepted through match=.example.net
        "untrusted.test": 4,   # mx.untrusted.test: self-signed
        "sub.enc.test": 4,     # encrypt: the self-signed one is good enough
        "plain.test": 5,       # no STARTTLS at all
        "may.test": 5,         # no entry: the channel's maytls
        "off.test": 2,         # none: TLS offered but not used
    })
    lab.good = lab.start_sink(2, name="sink-good", tls=make_leaf(d, "mx.good.test", ca))
    lab.wrong = lab.start_sink(3, name="sink-wrong", tls=make_leaf(d, "mx.other.example.net", ca))
    lab.selfsigned = lab.start_sink(4, name="sink-self", tls=make_leaf(d, "mx.untrusted.test", None))
    lab.plain = lab.start_sink(5, name="sink-plain")
    lab.mta = lab.sluice(tcp_local='smtp mx port %d backoff "PT1H"' % lab.port, start=False,
                         options={"tls_ca_file": ca[0], "tls_policy_file": "tls_policy"})
    lab.mta.write("tls_policy", POLICY)
    # Connections are reused, so outbound TLS connections are still parked when the daemon
    # stops: the stop frees them without a sanitizer report (it once leaked their bufferevents).
    lab.mta.start()
    return lab


def send(lab, rcpt):
    """send - one message to rcpt through the daemon; returns (queue id, message id)."""
    mid = "tlspol-%s@test" % uid()
    final, rr = send_message(lab.mta.port, "alice@example.test", [rcpt], make_message(mid, to=rcpt))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    return st.queue_id(final), mid


def delivery(lab, qid, timeout=30):
    """delivery - the first "delivery" log line of qid."""
    ln = lab.mta.wait_event(lambda l: l.event == "delivery" and l.id == qid, timeout=timeout)
    assert ln, "no delivery line for %s:\n%s" % (qid, lab.mta.log_excerpt(qid))
    return ln


def tls_lines(lab, qid, event="tls"):
    return [ln for ln in lab.mta.events(event) if ln.id == qid]


def test_verify_passes_with_ca_certificate_and_sends_sni(lab):
    qid, mid = send(lab, "bob@good.test")
    got = lab.good.wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    t = tls_lines(lab, qid)
    assert t and t[0].kv.get("tls") == "verified" and t[0].kv.get("policy") == "verify", lab.mta.log_excerpt(qid)
    assert "mx.good.test" in lab.good.sni(), lab.good.sni()
    assert delivery(lab, qid).kv.get("result") == "sent"


@pytest.mark.parametrize("rcpt,reason", [
    ("bob@wrong.test", "certificate name does not match mx.wrong.test"),
    ("bob@untrusted.test", "certificate not trusted"),
])
def test_verify_failure_defers_4_7_5_never_clear_text(lab, rcpt, reason):
    sink = lab.wrong if "wrong" in rcpt else lab.selfsigned
    qid, mid = send(lab, rcpt)
    d = delivery(lab, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.5", d.raw
    f = tls_lines(lab, qid, "tls_failed")
    assert f and reason in f[0].kv.get("reason", ""), lab.mta.log_excerpt(qid)
    assert not sink.find(mid.encode()), "the message reached the sink after a failed verification"


def test_verify_match_names_accept_other_certificate_name(lab):
    qid, mid = send(lab, "carol@matchn.test")
    assert lab.wrong.wait(mid.encode(), timeout=30), lab.mta.log_excerpt(qid)
    t = tls_lines(lab, qid)
    assert t and t[0].kv.get("tls") == "verified", lab.mta.log_excerpt(qid)


def test_encrypt_accepts_untrusted_certificate(lab):
    qid, mid = send(lab, "dave@sub.enc.test")
    got = lab.selfsigned.wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is True, lab.mta.log_excerpt(qid)
    t = tls_lines(lab, qid)
    assert t and t[0].kv.get("tls") == "encrypted" and t[0].kv.get("policy") == "encrypt", lab.mta.log_excerpt(qid)


def test_encrypt_without_starttls_defers_4_7_4(lab):
    qid, mid = send(lab, "erin@plain.test")
    d = delivery(lab, qid)
    assert d.kv.get("result") == "deferred" and d.kv.get("status") == "4.7.4", d.raw
    assert not lab.plain.find(mid.encode())


def test_may_default_logs_clear_text_and_none_skips_offered_tls(lab):
    qid, mid = send(lab, "fred@may.test")
    got = lab.plain.wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is False
    t = tls_lines(lab, qid)
    assert t and t[0].kv.get("tls") == "none" and t[0].kv.get("policy") == "may" and \
        t[0].kv.get("reason") == "not offered", lab.mta.log_excerpt(qid)
    qid, mid = send(lab, "gina@off.test")
    got = lab.good.wait(mid.encode(), timeout=30)
    assert got and got[0][0]["tls"] is False, lab.mta.log_excerpt(qid)
    t = tls_lines(lab, qid)
    assert t and t[0].kv.get("tls") == "none" and t[0].kv.get("policy") == "none", lab.mta.log_excerpt(qid)


def test_reload_rereads_tls_ca_file(harness):
    d = harness.subdir("pki")
    for sub in ("old", "new"):
        os.makedirs(os.path.join(d, sub))
    old_ca, new_ca = make_ca(os.path.join(d, "old")), make_ca(os.path.join(d, "new"))
    lab = st.Lab(harness, mx={"later.test": 2})
    lab.sink = lab.start_sink(2, name="sink-later", tls=make_leaf(d, "mx.later.test", new_ca))
    ca_file = os.path.join(d, "trusted.pem")
    with open(ca_file, "w") as f:
        f.write(open(old_ca[0]).read())
    lab.mta = lab.sluice(tcp_local='smtp mx port %d backoff "PT1H"' % lab.port, start=False,
                         options={"tls_ca_file": ca_file, "tls_policy_file": "tls_policy"})
    lab.mta.write("tls_policy", "later.test verify\n")
    lab.mta.write("tcp_local_option", "MAX_MESSAGES_PER_CONNECTION=1\n")
    lab.mta.start()
    qid, mid = send(lab, "bob@later.test")
    d1 = delivery(lab, qid)
    assert d1.kv.get("result") == "deferred" and d1.kv.get("status") == "4.7.5", d1.raw
    assert not lab.sink.find(mid.encode())

    def reload(event, n):
        os.kill(lab.mta.proc.pid, signal.SIGHUP)
        assert st.wait_until(lambda: len(lab.mta.events(event)) >= n, 10), lab.mta.log_text()[-2000:]

    with open(ca_file, "a") as f:
        f.write(open(new_ca[0]).read())
    reload("reloaded", 1)
    r = lab.mta.queue("retry", qid)
    assert r.returncode == 0, r.stdout + r.stderr
    assert lab.sink.wait(mid.encode(), timeout=30), lab.mta.log_excerpt(qid)
    t = tls_lines(lab, qid)
    assert t and t[-1].kv.get("tls") == "verified", lab.mta.log_excerpt(qid)

    with open(ca_file, "w") as f:
        f.write("not a certificate\n")
    reload("reload_failed", 1)
    bad = lab.mta.events("reload_failed")[0]
    assert "tls_ca_file" in bad.kv.get("error", ""), bad.raw
    assert lab.mta.running()
    qid2, mid2 = send(lab, "carol@later.test")  # the old trust (both CAs) is kept
    assert lab.sink.wait(mid2.encode(), timeout=30), lab.mta.log_excerpt(qid2)
    assert tls_lines(lab, qid2)[0].kv.get("tls") == "verified", lab.mta.log_excerpt(qid2)


@pytest.mark.parametrize("text,want", [
    ("ok.test may\nbad.test secure\n", "tls_policy:2: unknown TLS level \"secure\""),
    ("a.test may match=x.test\n", "tls_policy:1: match= is given once and only with verify"),
])
def test_check_reports_bad_policy_file(harness, text, want):
    mta = harness.sluice(start=False, options={"tls_policy_file": "tls_policy"})
    mta.write("tls_policy", text)
    p = subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert want in p.stderr, p.stderr
