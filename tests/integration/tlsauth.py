"""tlsauth - helpers shared by test_access.py, test_relay.py, test_tls_auth.py and test_two_tier.py:
a self-signed certificate made with the `openssl` CLI at test time, {CRYPT} passwords made with
`openssl passwd -6`, a directory with a user who has a password, dispatcher.cnf text for several
services bound to chosen loopback addresses, and STARTTLS / AUTH on sluicetest.Client.

Nothing here starts a process that outlives its call; every subprocess and socket wait is bounded.
"""
import base64
import os
import ssl
import subprocess

import sluicetest as st

PASSWORD = "s3cret-Pa55"


def make_cert(directory, cn="mx.example.test", rsa=False):
    """make_cert - a self-signed EC (or RSA 2048) certificate and key (PEM) in directory; returns (cert, key) paths."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    newkey = ["-newkey", "rsa:2048"] if rsa else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    r = subprocess.run(["openssl", "req", "-x509"] + newkey +
                       ["-nodes", "-days", "2", "-subj", "/CN=" + cn, "-keyout", key, "-out", cert],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "openssl req failed: %s" % r.stderr
    return cert, key


def crypt_password(password):
    """crypt_password - "{CRYPT}$6$..." for password (SHA-512 crypt by `openssl passwd -6`)."""
    r = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n", capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("$6$"), "openssl passwd failed: %r" % (r.stdout + r.stderr)
    return "{CRYPT}" + r.stdout.strip()


def ldif_with_submitter(password=PASSWORD, extra=""):
    """ldif_with_submitter - sluicetest's directory plus sub@example.test with a {CRYPT} password
    and a disabled user off@example.test with the same password."""
    h = crypt_password(password)
    return (st.DEFAULT_LDIF + "\n"
            "dn: uid=sub,ou=people,dc=example,dc=test\n"
            "objectClass: inetOrgPerson\nobjectClass: mailUser\n"
            "uid: sub\ncn: Submitter\nsn: Test\nmail: sub@example.test\n"
            "userPassword: %s\n\n"
            "dn: uid=off,ou=people,dc=example,dc=test\n"
            "objectClass: inetOrgPerson\nobjectClass: mailUser\n"
            "uid: off\ncn: Off\nsn: Test\nmail: off@example.test\nmailUserStatus: inactive\n"
            "userPassword: %s\n" % (h, h)) + extra


def dispatcher(services):
    """dispatcher - dispatcher.cnf text; services is [(NAME, {KEY: value})] (values written as given)."""
    out = ["! written by the integration tests"]
    for name, keys in services:
        out.append("[SERVICE=%s]" % name)
        for k, v in keys.items():
            out.append("%s=%s" % (k, v))
        out.append("")
    return "\n".join(out) + "\n"


def client_context():
    """client_context - a TLS client context that accepts the test's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def starttls(client, ehlo="client.example.test"):
    """starttls - STARTTLS on a sluicetest.Client (after EHLO), the handshake, then EHLO again.
    Returns the EHLO reply under TLS; client.sock becomes the TLS socket."""
    r = client.cmd("STARTTLS")
    assert r.code == 220, "STARTTLS refused: %r" % r
    assert client.buf == b"", "bytes after the 220 to STARTTLS: %r" % client.buf
    timeout = client.sock.gettimeout()
    client.sock = client_context().wrap_socket(client.sock)
    client.sock.settimeout(timeout)
    return client.ehlo(ehlo)


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def auth_plain(client, user, password):
    """auth_plain - AUTH PLAIN with an initial response; returns the reply."""
    return client.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, password)))


def auth_login(client, user, password):
    """auth_login - AUTH LOGIN in three steps; returns the final reply (or the first non-334)."""
    r = client.cmd("AUTH LOGIN")
    if r.code != 334:
        return r
    r = client.cmd(b64(user))
    if r.code != 334:
        return r
    return client.cmd(b64(password))


def ehlo_keywords(reply):
    """ehlo_keywords - the upper-cased first words of an EHLO reply's lines after the greeting line."""
    return [ln.split()[0].upper() for ln in reply.lines[1:] if ln.split()]
