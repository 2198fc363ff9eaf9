"""test_tls_sni.py - issue 15 section 2: the server's certificates by SNI name (option
tls_sni_file). Certificates for the default name, for a.test and for *.b.test are made by the test
with openssl; a Python ssl client does STARTTLS asking for each name (and for an unknown one, and
for none) and checks that the certificate presented is the right one byte for byte, then sends a
message over that connection to a local Maildir. A reload with a broken table keeps the old set;
a good reload changes it; `sluice check` reports a bad line and an unloadable certificate with
file:line.
"""
import os
import signal
import ssl
import subprocess
import uuid

import pytest

import sluicetest as st
import tlsauth

NAMES = {"default": "mx.example.test", "a": "a.test", "b": "*.b.test", "c": "c.test"}


def make_cert(directory, name, cn):
    """make_cert - a self-signed EC certificate for cn (also its subjectAltName) in directory/name.pem + .key."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:" + cn,
                        "-keyout", key, "-out", cert],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "openssl req failed: %s" % r.stderr
    return cert, key


def der(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


@pytest.fixture(scope="module")
def mta(module_harness):
    m = module_harness.sluice(start=False)
    certs = os.path.join(m.confdir, "certs")
    os.makedirs(certs)
    m.certs = {k: make_cert(certs, k, cn) for k, cn in NAMES.items()}
    m.der = {k: der(v[0]) for k, v in m.certs.items()}
    # relative paths (to the configuration directory); *.b.test's key in a file of its own too
    m.write("sni.table", "# name   certificate   key\n"
                         "a.test     certs/a.pem   certs/a.key\n"
                         "*.b.test   certs/b.pem   certs/b.key\n")
    with open(os.path.join(m.confdir, "option.dat"), "a") as f:
        f.write("tls_certificate=%s\ntls_key=%s\ntls_sni_file=sni.table\n" % m.certs["default"])
    m.implicit_port = st.free_port()
    m.write("dispatcher.cnf", tlsauth.dispatcher([
        ("SMTP", {"PORT": m.port, "INTERFACE_ADDRESS": "127.0.0.1", "PARAMETER": "CHANNEL=tcp_local"}),
        ("SMTPS", {"PORT": m.implicit_port, "INTERFACE_ADDRESS": "127.0.0.1", "PARAMETER": "CHANNEL=tcp_local",
                   "TLS_MODE": "implicit"}),
    ]))
    m.start()
    return m


def starttls_cert(port, server_name, send_tag=None):
    """starttls_cert - STARTTLS asking for server_name (None: no SNI); the DER certificate the
    server presented. With send_tag, a message to alice@example.test goes over the connection."""
    with st.Client(port) as c:
        c.ehlo()
        r = c.cmd("STARTTLS")
        assert r.code == 220, r
        timeout = c.sock.gettimeout()
        c.sock = tlsauth.client_context().wrap_socket(c.sock, server_hostname=server_name)
        c.sock.settimeout(timeout)
        cert = c.sock.getpeercert(binary_form=True)
        c.ehlo()
        if send_tag:
            assert c.cmd("MAIL FROM:<sender@example.test>").code == 250
            assert c.cmd("RCPT TO:<alice@example.test>").code == 250
            msg = st.make_message(send_tag, to="alice@example.test", subject="sni " + str(server_name))
            assert c.data(msg).code == 250
        c.quit()
        return cert


@pytest.mark.parametrize("server_name,want", [
    ("a.test", "a"),
    ("A.Test", "a"),
    ("mx.b.test", "b"),
    ("other.B.test", "b"),
    ("deep.mx.b.test", "default"),  # a wildcard covers one label
    ("unknown.test", "default"),
    (None, "default"),
])
def test_certificate_by_name(mta, server_name, want):
    tag = uuid.uuid4().hex[:12]
    cert = starttls_cert(mta.port, server_name, send_tag=tag)
    assert cert == mta.der[want], "asked for %s, got another certificate than %s's" % (server_name, want)
    mta.wait_message("alice@example.test", tag.encode())
    if server_name:
        ev = mta.events("tls_sni", name=server_name)
        assert ev and ev[-1].kv["certificate"] == ("default" if want == "default" else "by_name"), ev


@pytest.mark.parametrize("server_name,want", [("mx.b.test", "b"), ("nothing.test", "default"), (None, "default")])
def test_implicit_tls_by_name(mta, server_name, want):
    """The same choice on a TLS_MODE=implicit service (TLS from the first byte)."""
    import socket
    raw = socket.create_connection(("127.0.0.1", mta.implicit_port), timeout=10)
    with tlsauth.client_context().wrap_socket(raw, server_hostname=server_name) as s:
        assert s.getpeercert(binary_form=True) == mta.der[want]
        assert s.recv(512).startswith(b"220 ")
        s.sendall(b"QUIT\r\n")
        assert s.recv(512).startswith(b"221 ")


def reload_and_wait(mta, n):
    """reload_and_wait - SIGHUP, then wait for the n-th reloaded or reload_failed line."""
    os.kill(mta.proc.pid, signal.SIGHUP)
    assert st.wait_until(lambda: len([l for l in mta.log() if l.event in ("reloaded", "reload_failed")]) >= n, 10), \
        "no reload outcome logged"


def test_reload(mta):
    """A table naming a certificate that does not load is refused at reload (logged, the old set
    stays); a good table is in use after the reload."""
    n = len([l for l in mta.log() if l.event in ("reloaded", "reload_failed")])
    mta.write("sni.table", "a.test  certs/missing.pem\n*.b.test certs/b.pem certs/b.key\n")
    reload_and_wait(mta, n + 1)
    failed = mta.events("reload_failed")
    assert failed and "missing.pem" in failed[-1].raw and "sni.table:1" in failed[-1].raw, failed
    assert starttls_cert(mta.port, "a.test") == mta.der["a"]
    mta.write("sni.table", "a.test  certs/c.pem  certs/c.key\nc.test  certs/c.pem  certs/c.key\n")
    reload_and_wait(mta, n + 2)
    outcomes = [l.event for l in mta.log() if l.event in ("reloaded", "reload_failed")]
    assert outcomes[n + 1] == "reloaded", outcomes
    assert st.wait_until(lambda: starttls_cert(mta.port, "c.test") == mta.der["c"], 10)
    assert starttls_cert(mta.port, "a.test") == mta.der["c"]
    assert starttls_cert(mta.port, "mx.b.test") == mta.der["default"]  # no longer in the table


def test_check_reports_bad_table(module_harness):
    m = module_harness.sluice(start=False)
    cert, key = make_cert(m.confdir, "d", "mx.example.test")
    with open(os.path.join(m.confdir, "option.dat"), "a") as f:
        f.write("tls_certificate=%s\ntls_key=%s\ntls_sni_file=sni.table\n" % (cert, key))
    m.write("sni.table", "ok.test d.pem d.key\nbad_name!.test d.pem\nlonely.test\n")
    p = subprocess.run([st.BIN, "check", "-C", m.confdir], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    table = os.path.join(m.confdir, "sni.table")
    assert "%s:2:" % table in p.stderr and "%s:3:" % table in p.stderr, p.stderr
    m.write("sni.table", "ok.test d.pem d.key\nx.test nothere.pem\n")
    p = subprocess.run([st.BIN, "check", "-C", m.confdir], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "%s:2: x.test:" % table in p.stderr and "nothere.pem" in p.stderr, p.stderr
    m.write("sni.table", "ok.test d.pem d.key\n")
    p = subprocess.run([st.BIN, "check", "-C", m.confdir], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
