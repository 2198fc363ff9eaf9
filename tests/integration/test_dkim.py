"""test_dkim.py - DKIM signing and verification (src/dkim/) against an independent implementation,
python3-dkim (dkimpy): messages signed by `sluice test dkim sign` (RSA-SHA256 and Ed25519-SHA256
of RFC 8463, relaxed and simple canonicalisation, oversigning) verify with dkimpy, and messages
signed by dkimpy verify with `sluice test dkim verify`; a changed body or header, a wrong key, a
revoked key and a signature without From fail. The key record is handed over directly (dkimpy's
dnsfunc, sluice's --key-record): this tests the crypto and canonicalisation, not DNS.
"""
import base64
import subprocess

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

import sluicetest as st

MSG = (b"From: Alice <alice@example.test>\r\n"
       b"To: bob@example.net\r\n"
       b"Subject:  a   test\r\n"
       b"\tfolded\r\n"
       b"Date: Sat, 05 Dec 2026 20:00:00 +0000\r\n"
       b"Message-ID: <dkim-1@example.test>\r\n"
       b"\r\n"
       b"Hello  Bob,\r\n"
       b"\r\n"
       b"  indented line\t \r\n"
       b"\r\n"
       b"\r\n")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    out = {}
    r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = r.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
    pub = r.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    out["rsa"] = (str(d / "rsa.pem"), pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub))
    e = ed25519.Ed25519PrivateKey.generate()
    pem = e.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    raw_priv = e.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    raw_pub = e.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    out["ed25519"] = (str(d / "ed.pem"), pem, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw_pub), raw_priv)
    for k in ("rsa", "ed25519"):
        with open(out[k][0], "wb") as f:
            f.write(out[k][1])
    return out


def sluice_sign(key, msg, canon="relaxed/relaxed", extra=()):
    p = subprocess.run([st.BIN, "test", "dkim", "sign", "--key", key, "--domain", "example.test",
                        "--selector", "sel", "--canon", canon] + list(extra), input=msg, capture_output=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    assert b"Sanitizer" not in p.stderr
    return p.stdout


def sluice_verify(record, msg):
    p = subprocess.run([st.BIN, "test", "dkim", "verify", "--key-record", record.decode()], input=msg,
                       capture_output=True, timeout=30)
    assert b"Sanitizer" not in p.stderr and b"runtime error" not in p.stderr, p.stderr
    fields = dict(line.split(" = ", 1) for line in p.stdout.decode().splitlines() if " = " in line)
    assert (p.returncode == 0) == (fields.get("result") == "pass"), fields
    return fields


def dkimpy_verify(record, msg):
    def dnsfunc(name, timeout=5):
        assert name == b"sel._domainkey.example.test."
        return record
    return dkim.verify(msg, dnsfunc=dnsfunc)


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"])
def test_sluice_signs_dkimpy_verifies(keys, alg, canon):
    signed = sluice_sign(keys[alg][0], MSG, canon)
    assert signed.startswith(b"DKIM-Signature: v=1;")
    head = signed.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert len(line) <= 78, line
    assert dkimpy_verify(keys[alg][2], signed)
    assert sluice_verify(keys[alg][2], signed)["result"] == "pass"
    # a changed body and a changed signed header fail, with both verifiers
    changed = signed.replace(b"Hello  Bob", b"Hello  Eve")
    assert not dkimpy_verify(keys[alg][2], changed)
    f = sluice_verify(keys[alg][2], changed)
    assert f["result"] == "fail" and "body hash" in f["reason"]
    changed = signed.replace(b"To: bob@example.net", b"To: eve@example.net")
    assert not dkimpy_verify(keys[alg][2], changed)
    f = sluice_verify(keys[alg][2], changed)
    assert f["result"] == "fail" and f["reason"] == "signature did not verify"


def test_oversigning(keys):
    signed = sluice_sign(keys["rsa"][0], MSG, extra=["--oversign"])
    assert dkimpy_verify(keys["rsa"][2], signed)
    # a second From or Subject added above the signed ones breaks the signature
    added = signed.replace(b"From: Alice", b"Subject: forged\r\nFrom: Alice", 1)
    assert sluice_verify(keys["rsa"][2], added)["result"] == "fail"
    assert not dkimpy_verify(keys["rsa"][2], added)
    # without oversigning dkimpy and sluice both still accept an added header not signed
    plain = sluice_sign(keys["rsa"][0], MSG)
    added = plain.replace(b"\r\n\r\n", b"\r\nX-Added: yes\r\n\r\n", 1)
    assert sluice_verify(keys["rsa"][2], added)["result"] == "pass"


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", [(b"relaxed", b"relaxed"), (b"simple", b"simple"), (b"relaxed", b"simple")])
def test_dkimpy_signs_sluice_verifies(keys, alg, canon):
    if alg == "rsa":
        sig = dkim.sign(MSG, b"sel", b"example.test", keys["rsa"][1], canonicalize=canon)
    else:
        sig = dkim.sign(MSG, b"sel", b"example.test", base64.b64encode(keys["ed25519"][3]), canonicalize=canon,
                        signature_algorithm=b"ed25519-sha256")
    signed = sig + MSG
    f = sluice_verify(keys[alg][2], signed)
    assert f["result"] == "pass", f
    assert f["d"] == "example.test" and f["s"] == "sel" and f["key"] == "sel._domainkey.example.test"
    # l= (body length) from dkimpy: content appended after the signed length still passes
    if alg == "rsa" and canon == (b"relaxed", b"relaxed"):
        sig = dkim.sign(MSG, b"sel", b"example.test", keys["rsa"][1], canonicalize=canon, length=True)
        assert b" l=" in sig or b";l=" in sig or b"\tl=" in sig
        assert sluice_verify(keys["rsa"][2], sig + MSG + b"appended\r\n")["result"] == "pass"


def test_bad_keys_and_signatures(keys):
    signed = sluice_sign(keys["rsa"][0], MSG)
    f = sluice_verify(keys["ed25519"][2], signed)          # key type does not match a=
    assert f["result"] == "permerror" and "does not match" in f["reason"]
    f = sluice_verify(b"v=DKIM1; k=rsa; p=", signed)        # revoked
    assert f["result"] == "permerror" and "revoked" in f["reason"]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    f = sluice_verify(b"v=DKIM1; p=" + base64.b64encode(other), signed)  # another key
    assert f["result"] == "fail"
    f = sluice_verify(keys["rsa"][2], MSG)                  # no signature
    assert f["result"] == "permerror" and f["signatures"] == "0"
    p = subprocess.run([st.BIN, "test", "dkim", "sign", "--key", keys["rsa"][0], "--domain", "example.test",
                        "--selector", "sel", "--headers", "to:subject"], input=MSG, capture_output=True, timeout=30)
    assert p.returncode == 1 and b"From is not among" in p.stderr
    broken = signed.replace(b"v=1;", b"v=2;", 1)
    f = sluice_verify(keys["rsa"][2], broken)
    assert f["result"] == "permerror" and "version" in f["reason"]


# ---------------------------------------------------------------- key records from DNS

def txt_line(name, record):
    """txt_line - a dnsmasq txt-record= line, the record cut into strings of at most 200 octets."""
    parts = [record[i:i + 200] for i in range(0, len(record), 200)]
    return "txt-record=%s,%s" % (name, ",".join('"%s"' % p.decode() for p in parts))


def verify_dns(mta, msg):
    p = subprocess.run([st.BIN, "test", "dkim", "verify", "--dns", "-C", mta.confdir], input=msg,
                       capture_output=True, timeout=90)
    assert b"Sanitizer" not in p.stderr and b"runtime error" not in p.stderr, p.stderr
    return p.returncode, p.stdout.decode()


def test_verify_with_dns(harness, keys):
    lab = st.Lab(harness, records=[
        "mx-host=probe.example.test,mx.example.test,10",
        txt_line("rsa._domainkey.example.test", keys["rsa"][2]),
        txt_line("ed._domainkey.example.test", keys["ed25519"][2]),
    ], probe="probe.example.test")
    mta = lab.sluice(start=False)
    signed = MSG
    for sel, key in (("rsa", keys["rsa"][0]), ("ed", keys["ed25519"][0])):
        p = subprocess.run([st.BIN, "test", "dkim", "sign", "--key", key, "--domain", "example.test",
                            "--selector", sel], input=signed, capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        signed = p.stdout
    rc, out = verify_dns(mta, signed)
    assert rc == 0, out
    assert "signatures = 2" in out
    assert "0: result = pass; d = example.test; s = ed; a = ed25519-sha256" in out
    assert "1: result = pass; d = example.test; s = rsa; a = rsa-sha256" in out
    # a selector without a record
    p = subprocess.run([st.BIN, "test", "dkim", "sign", "--key", keys["rsa"][0], "--domain", "example.test",
                        "--selector", "gone"], input=MSG, capture_output=True, timeout=30)
    rc, out = verify_dns(mta, p.stdout)
    assert rc == 1 and "0: result = permerror" in out and "no key record" in out
    # no signature at all
    rc, out = verify_dns(mta, MSG)
    assert rc == 1 and "signatures = 0" in out
    # the DNS server stopped: temperror, never a fail
    lab.dns.stop()
    rc, out = verify_dns(mta, signed)
    assert rc == 1 and "0: result = temperror" in out and "1: result = temperror" in out, out
