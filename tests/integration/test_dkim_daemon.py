"""test_dkim_daemon.py - DKIM in the daemon (policy/dkim_stage.c, doc/sender-checks.md).

Signing: with dkim_sign and a keys table (dkim_keys_file: an RSA and an Ed25519 selector for
example.test), the message the daemon delivers carries one DKIM-Signature per selector, and an
independent verifier (python3-dkim, dkimpy) says both are good; dkim_sign=local leaves a
stranger's mail unsigned; a bad key line is a file:line error of `sluice check`.
Verifying: with dkim_verify=yes, dnsmasq serving the public key of a message dkimpy signed, the
delivered message's Authentication-Results: says dkim=pass header.d=... header.s=...; a tampered
copy says dkim=fail; with the DNS server down the result is temperror and the message is still
accepted (250, never a 5xx).
"""
import base64
import re
import subprocess

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

import sluicetest as st

NOT_INTERNAL = "10.255.255.255/32"  # loopback clients are strangers


def rsa_key():
    """rsa_key - (private PEM bytes, key record bytes) of a new RSA-2048 key."""
    r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = r.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
    pub = r.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub)


def ed_key():
    """ed_key - (private PEM bytes, key record bytes) of a new Ed25519 key."""
    e = ed25519.Ed25519PrivateKey.generate()
    pem = e.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    raw = e.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pem, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)


def signer(harness, tmp_path, mode, keys_text=None):
    """signer - a started daemon signing with mode; (mta, {selector: key record})."""
    rpem, rrec = rsa_key()
    epem, erec = ed_key()
    (tmp_path / "rsa.pem").write_bytes(rpem)
    (tmp_path / "ed.pem").write_bytes(epem)
    mta = harness.sluice(start=False, options={"dkim_sign": mode, "dkim_keys_file": "dkim_keys",
                                               "internal_networks": NOT_INTERNAL})
    mta.write("dkim_keys", keys_text or (
        "# domain selector algorithm keyfile [headers=...]\n"
        "example.test  rsa1  rsa-sha256      %s\n"
        "\n"
        "example.test  ed1   ed25519-sha256  %s\n" % (tmp_path / "rsa.pem", tmp_path / "ed.pem")))
    mta.start()
    return mta, {b"rsa1": rrec, b"ed1": erec}


def send(mta, msg, sender="alice@example.test", source=None):
    """send - one message to bob@example.test (from source, an address); the reply to the end of data."""
    with st.Client(mta.port, **({"source": source} if source else {})) as c:
        c.ehlo("client.example.net")
        assert c.cmd("MAIL FROM:<%s>" % sender).code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        end = c.data(msg)
        c.quit()
    return end


def test_signed_mail_verifies_with_dkimpy(harness, tmp_path):
    mta, records = signer(harness, tmp_path, "all")
    msg = st.make_message("dkim-sign-1@x", frm="Alice <alice@sub.example.test>",
                          extra=b"Date: Sat, 05 Dec 2026 20:00:00 +0000\r\n",
                          body=b"Hello  Bob,\r\n\r\n  with  spaces \t\r\n\r\n")
    assert send(mta, msg).code == 250
    got = mta.wait_message("bob@example.test", b"dkim-sign-1@x")
    assert got, "not delivered"
    raw = got[0]
    assert raw.count(b"DKIM-Signature:") == 2
    names = []

    def dnsfunc(name, timeout=5):
        names.append(name)
        sel = name.split(b".")[0]
        assert name == sel + b"._domainkey.example.test."
        return records[sel]
    d = dkim.DKIM(raw)
    for i in range(2):
        assert d.verify(idx=i, dnsfunc=dnsfunc), "signature %d fails" % i
    head = re.sub(rb"\r\n[ \t]+", b" ", raw.split(b"\r\n\r\n", 1)[0])
    assert re.search(rb"c=relaxed/relaxed", head)
    # oversigned: From is named once more than it occurs
    h = re.search(rb"DKIM-Signature:[^\r]*[; ]h=([^;]+);", head).group(1).replace(b" ", b"").lower().split(b":")
    assert h.count(b"from") == 2 and b"subject" in h
    ev = mta.events("dkim_signed")
    assert {e.kv.get("selector") for e in ev} == {"rsa1", "ed1"}, ev
    # a changed body no longer verifies (the verifier is not saying yes to everything)
    bad = raw.replace(b"Hello  Bob", b"Hello  Eve")
    with pytest.raises(dkim.ValidationError):
        dkim.DKIM(bad).verify(idx=0, dnsfunc=dnsfunc)


def test_sign_local_leaves_strangers_unsigned(harness, tmp_path):
    mta, _ = signer(harness, tmp_path, "local")
    assert send(mta, st.make_message("dkim-local-1@x")).code == 250
    got = mta.wait_message("bob@example.test", b"dkim-local-1@x")
    assert got and b"DKIM-Signature:" not in got[0]
    assert not mta.events("dkim_signed")


def test_unknown_domain_unsigned(harness, tmp_path):
    mta, _ = signer(harness, tmp_path, "all")
    assert send(mta, st.make_message("dkim-other-1@x", frm="carol@example.org"), sender="carol@example.org").code == 250
    got = mta.wait_message("bob@example.test", b"dkim-other-1@x")
    assert got and b"DKIM-Signature:" not in got[0]
    assert mta.events("dkim_unsigned")


def test_check_reports_bad_key_lines(harness, tmp_path):
    (tmp_path / "notakey.pem").write_text("hello\n")
    epem, _ = ed_key()
    (tmp_path / "ed.pem").write_bytes(epem)
    mta = harness.sluice(start=False, options={"dkim_sign": "local", "dkim_keys_file": "dkim_keys"})
    mta.write("dkim_keys", "example.test s1 rsa-sha256 %s\n"
                           "example.test s2 rsa-sha256 %s\n"
                           "example.test s3 sha1 %s\n"
                           "example.test s4 ed25519-sha256 %s headers=to:subject\n"
                           "example.test s5\n"
                           "example.test s6 ed25519-sha256 %s\n"
              % (tmp_path / "notakey.pem", tmp_path / "ed.pem", tmp_path / "ed.pem", tmp_path / "ed.pem",
                 tmp_path / "ed.pem"))
    r = subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    for line in (1, 2, 3, 4, 5):
        assert "dkim_keys:%d:" % line in r.stderr, r.stderr
    assert "dkim_keys:6:" not in r.stderr
    assert "an Ed25519 key does not fit rsa-sha256" in r.stderr and "unknown algorithm 'sha1'" in r.stderr
    assert "not a private key" in r.stderr and "naming From" in r.stderr


# ---------------------------------------------------------------------------------- verifying

def txt_line(name, record):
    """txt_line - a dnsmasq txt-record line, the record cut into character-strings of 200 octets."""
    parts = [record[i:i + 200].decode() for i in range(0, len(record), 200)]
    return "txt-record=%s,%s" % (name, ",".join('"%s"' % p for p in parts))


def dkimpy_signed(pem, msgid, dom="example.net"):
    msg = st.make_message(msgid, frm="Dave <dave@%s>" % dom, to="bob@example.test",
                          extra=b"Date: Sat, 05 Dec 2026 20:00:00 +0000\r\n", body=b"Signed by dkimpy.\r\n")
    sig = dkim.sign(msg, b"sel", dom.encode(), pem, canonicalize=(b"relaxed", b"simple"),
                    include_headers=[b"from", b"to", b"subject", b"message-id", b"date"])
    return sig + msg


def ar_of(raw):
    head = re.sub(rb"\r\n[ \t]+", b" ", raw.split(b"\r\n\r\n", 1)[0]).decode()
    return [line for line in head.split("\r\n") if line.startswith("Authentication-Results:")]


def test_verify_pass_and_fail(harness):
    pem, rec = rsa_key()
    lab = st.Lab(harness, records=["mx-host=probe.example.net,mail.example.net,10",
                                   txt_line("sel._domainkey.example.net", rec)], probe="probe.example.net")
    mta = lab.sluice(options={"dkim_verify": "yes", "internal_networks": NOT_INTERNAL})
    good = dkimpy_signed(pem, "dkim-verify-1@x")
    assert send(mta, good, sender="dave@example.net").code == 250
    got = mta.wait_message("bob@example.test", b"dkim-verify-1@x")
    ar = ar_of(got[0])
    assert any("dkim=pass header.d=example.net header.s=sel header.a=rsa-sha256" in a for a in ar), ar
    assert all(a.startswith("Authentication-Results: mx.example.test;") for a in ar), ar

    bad = dkimpy_signed(pem, "dkim-verify-2@x").replace(b"Signed by dkimpy.", b"Signed by Mallory")
    assert send(mta, bad, sender="dave@example.net").code == 250
    got = mta.wait_message("bob@example.test", b"dkim-verify-2@x")
    ar = ar_of(got[0])
    assert any("dkim=fail" in a and "header.d=example.net" in a for a in ar), ar
    assert {e.kv.get("result") for e in mta.events("dkim")} == {"pass", "fail"}

    assert send(mta, st.make_message("dkim-verify-3@x"), sender="dave@example.net").code == 250
    got = mta.wait_message("bob@example.test", b"dkim-verify-3@x")
    assert any("dkim=none" in a for a in ar_of(got[0]))


def test_verify_dns_down_is_temperror_not_refused(harness):
    pem, _ = rsa_key()
    mta = harness.sluice(options={"dkim_verify": "yes", "internal_networks": NOT_INTERNAL})
    end = send(mta, dkimpy_signed(pem, "dkim-verify-4@x"), sender="dave@example.net")
    assert end.code == 250, end  # DKIM alone never refuses, a temperror least of all
    got = mta.wait_message("bob@example.test", b"dkim-verify-4@x")
    assert any("dkim=temperror" in a for a in ar_of(got[0])), ar_of(got[0])


def test_verify_off_by_default(harness):
    pem, _ = rsa_key()
    mta = harness.sluice(options={"internal_networks": NOT_INTERNAL})
    assert send(mta, dkimpy_signed(pem, "dkim-verify-5@x"), sender="dave@example.net").code == 250
    got = mta.wait_message("bob@example.test", b"dkim-verify-5@x")
    assert not ar_of(got[0]) and not mta.events("dkim")


# ---------------------------------------------------------------------------------- DMARC
# (names under .test: the lab's dnsmasq answers NXDOMAIN there, the org-domain fallback needs it)

def dmarc_lab(harness, action, rec_key):
    lab = st.Lab(harness, records=[
        "mx-host=probe.dmarcd.test,mail.dmarcd.test,10",
        txt_line("sel._domainkey.dmarcd.test", rec_key),
        'txt-record=_dmarc.dmarcd.test,"v=DMARC1; p=reject; sp=none; adkim=r"',
        'txt-record=_dmarc.quar.dmarco.test,"v=DMARC1; p=quarantine"',
        'txt-record=_dmarc.dmarco.test,"not a dmarc record"',
        'txt-record=dmarcs.test,"v=spf1 ip4:127.0.0.5 -all"',
        'txt-record=_dmarc.dmarcs.test,"v=DMARC1; p=reject"',
    ], probe="probe.dmarcd.test")
    return lab.sluice(options={"dmarc_check": "yes", "dmarc_action": action, "internal_networks": NOT_INTERNAL,
                               "spf_check": "yes"})


def test_dmarc_reject_quarantine_pass(harness):
    pem, rec = rsa_key()
    mta = dmarc_lab(harness, "reject", rec)
    # signed by an aligned domain: pass
    assert send(mta, dkimpy_signed(pem, "dmarc-1@x", "dmarcd.test"), sender="dave@dmarcd.test").code == 250
    got = mta.wait_message("bob@example.test", b"dmarc-1@x")
    assert any("dmarc=pass (p=reject dis=none) header.from=dmarcd.test" in a for a in ar_of(got[0])), ar_of(got[0])
    # unsigned, p=reject: refused at the end of data
    end = send(mta, st.make_message("dmarc-2@x", frm="dave@dmarcd.test"), sender="dave@dmarcd.test")
    assert end.code == 550 and end.enhanced() == "5.7.1", end
    assert not mta.find_messages("bob@example.test", b"dmarc-2@x")
    # a tampered signature is no better
    bad = dkimpy_signed(pem, "dmarc-3@x", "dmarcd.test").replace(b"Signed by dkimpy.", b"Signed by Mallory")
    assert send(mta, bad, sender="dave@dmarcd.test").code == 550
    # a subdomain without its own record: the organizational domain's sp=none applies
    assert send(mta, st.make_message("dmarc-4@x", frm="dave@sub.dmarcd.test"), sender="dave@dmarcd.test").code == 250
    got = mta.wait_message("bob@example.test", b"dmarc-4@x")
    assert any("dmarc=fail (p=none dis=none) header.from=sub.dmarcd.test" in a for a in ar_of(got[0])), ar_of(got[0])
    # p=quarantine: delivered with the mark Sieve can test
    assert send(mta, st.make_message("dmarc-5@x", frm="eve@quar.dmarco.test"), sender="eve@quar.dmarco.test").code == 250
    got = mta.wait_message("bob@example.test", b"dmarc-5@x")
    assert b"\r\nX-Sluice-DMARC: quarantine\r\n" in got[0]
    assert any("dmarc=fail (p=quarantine dis=quarantine)" in a for a in ar_of(got[0]))
    # no DMARC record (only a TXT that is not one): none
    assert send(mta, st.make_message("dmarc-6@x", frm="eve@dmarco.test"), sender="eve@dmarco.test").code == 250
    got = mta.wait_message("bob@example.test", b"dmarc-6@x")
    assert any("dmarc=none header.from=dmarco.test" in a for a in ar_of(got[0])), ar_of(got[0])
    ev = mta.events("dmarc")
    assert {e.kv.get("result") for e in ev} == {"pass", "fail", "none"}, ev


def test_dmarc_action_none_records_only(harness):
    _, rec = rsa_key()
    mta = dmarc_lab(harness, "none", rec)
    assert send(mta, st.make_message("dmarc-7@x", frm="dave@dmarcd.test"), sender="dave@dmarcd.test").code == 250
    got = mta.wait_message("bob@example.test", b"dmarc-7@x")
    assert any("dmarc=fail (p=reject dis=none)" in a for a in ar_of(got[0])), ar_of(got[0])


def test_dmarc_dns_down_never_5xx(harness):
    mta = harness.sluice(options={"dmarc_check": "yes", "dmarc_action": "reject", "internal_networks": NOT_INTERNAL})
    end = send(mta, st.make_message("dmarc-8@x", frm="dave@dmarcd.test"), sender="dave@dmarcd.test")
    assert end.code == 250, end
    got = mta.wait_message("bob@example.test", b"dmarc-8@x")
    assert any("dmarc=temperror" in a for a in ar_of(got[0])), ar_of(got[0])


def test_dmarc_spf_alignment(harness):
    _, rec = rsa_key()
    mta = dmarc_lab(harness, "reject", rec)
    # SPF passes for the MAIL FROM domain, the From: is a subdomain of it: relaxed alignment
    end = send(mta, st.make_message("dmarc-9@x", frm="b@mail.dmarcs.test"), sender="a@dmarcs.test", source="127.0.0.5")
    assert end.code == 250, end
    got = mta.wait_message("bob@example.test", b"dmarc-9@x")
    assert any("dmarc=pass" in a and "header.from=mail.dmarcs.test" in a for a in ar_of(got[0])), ar_of(got[0])
    # another client: SPF fails, nothing else aligns, p=reject
    end = send(mta, st.make_message("dmarc-10@x", frm="b@mail.dmarcs.test"), sender="a@dmarcs.test", source="127.0.0.6")
    assert end.code == 550, end


@pytest.mark.parametrize("phase", ["dkim", "dmarc"])
def test_client_leaves_during_check(harness, phase):
    """A DNS server that never answers: the client gives up while the key (or the _dmarc record)
    is looked up; the daemon drops the check (no crash, no sanitizer report: the teardown checks)
    and serves the next client."""
    import select
    import socket
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        opts = {"dkim_verify": "yes"} if phase == "dkim" else {"dmarc_check": "yes", "dmarc_action": "reject"}
        opts.update({"internal_networks": NOT_INTERNAL, "dns_servers": "127.0.0.1:%d" % silent.getsockname()[1]})
        mta = harness.sluice(options=opts)
        pem, _ = rsa_key()
        # dkim: a signature whose key is looked up; dmarc: no signature, so the _dmarc lookup is the first
        msg = dkimpy_signed(pem, "leave-1@x") if phase == "dkim" else st.make_message("leave-1@x", frm="d@x.test")
        c = st.Client(mta.port)
        c.ehlo("client.example.net")
        assert c.cmd("MAIL FROM:<dave@example.net>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(msg + b".\r\n")
        asked = st.wait_until(lambda: select.select([silent], [], [], 0)[0] and silent.recv(512), 10)
        assert asked, "no DNS question"
        assert (b"_domainkey" if phase == "dkim" else b"_dmarc") in asked
        c.close()
        assert st.wait_until(lambda: mta.events("disconnect"), 10)
        with st.Client(mta.port) as c2:
            c2.ehlo("client.example.net")
            c2.quit()
    finally:
        silent.close()
