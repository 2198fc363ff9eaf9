"""test_milter_daemon.py - milters in the daemon's SMTP sessions (issue 11, doc/scanning.md):

- a chain of two milters on the source channel (sourcespamfilter1, sourcespamfilter2): the
  pymilter test filter (peers/testmilter.py), which changes the Subject, adds and deletes
  headers, replaces the body and adds a recipient, then opendkim signing; the delivered copy
  carries both milters' changes and a DKIM signature that verifies over the changed message;
- a milter's reject at RCPT refuses that recipient only, with the milter's own reply;
- a milter's tempfail (at a header) answers 451 at the end of data, nothing is queued;
- a milter that is down: optional -> the message is delivered with the skip noted in an
  X-Sluice-Scan header; required -> the connection is refused with 421 4.7.1 (try again later).
"""
import os
import re
import socket
import subprocess
import sys
import uuid

import pytest

import sluicetest as st
from sluicetest import Client

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")

LDIF = st.DEFAULT_LDIF + """
dn: uid=added,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: mailUser
uid: added
cn: Added
sn: Test
mail: added@example.test

dn: uid=reject,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: mailUser
uid: reject
cn: Reject
sn: Test
mail: reject@example.test
"""


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


class FilterMilter(st.Peer):
    """peers/testmilter.py in filter mode on a free port."""

    def __init__(self, workdir, mode="filter"):
        self.port = st.free_port()
        super().__init__(["/usr/bin/python3", os.path.join(PEERS, "testmilter.py"), mode, str(self.port)], workdir,
                         "testmilter-" + mode)
        if not st.wait_until(lambda: listening(self.port), 15):
            self.stop()
            raise AssertionError("testmilter did not start")


class OpenDKIM:
    """peers/opendkim-start.sh: opendkim signing for example.test (it daemonizes; stop() kills its pid)."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "opendkim")
        self.port = st.free_port()
        r = subprocess.run(["bash", os.path.join(PEERS, "opendkim-start.sh"), self.dir, str(self.port),
                            str(st.free_port())], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()

    def key(self):
        with open(os.path.join(self.dir, "sel1.zone-line")) as f:
            return "".join(re.findall(r'"([^"]*)"', f.read())).encode()

    def stop(self):
        try:
            with open(os.path.join(self.dir, "opendkim.pid")) as f:
                os.kill(int(f.read().strip()), 15)
        except (OSError, ValueError):
            pass


@pytest.fixture(scope="module")
def lab(module_harness):
    h = module_harness
    filt = FilterMilter(h.subdir("milter"))
    h.peers.append(filt)
    dk = OpenDKIM(h.subdir("dkim"))
    h.peers.append(dk)
    options = {
        "spamfilter1_type": "milter",
        "spamfilter1_address": "inet:%d@127.0.0.1" % filt.port,
        "spamfilter1_timeout": "20",
        "spamfilter2_type": "milter",
        "spamfilter2_address": "127.0.0.1:%d" % dk.port,
    }
    s = h.sluice(options=options, ldif=LDIF,
                 tcp_local="smtp nomx daemon 127.0.0.1 port %d sourcespamfilter1 sourcespamfilter2" % st.free_port())
    return h, s, filt, dk


def message(subject, body=b"Original body.\r\n", to="bob@example.test"):
    mid = "<%s@example.test>" % uuid.uuid4().hex
    head = ("From: <alice@example.test>\r\nTo: <%s>\r\nSubject: %s\r\nDate: Sat, 05 Dec 2026 20:00:00 +0000\r\n"
            "Message-ID: %s\r\nX-Drop: remove me\r\n\r\n" % (to, subject, mid))
    return head.encode() + body, mid


def test_chain_changes_and_signature(lab):
    import dkim
    h, s, filt, dk = lab
    msg, mid = message("hello")
    with Client(s.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        r = c.cmd("RCPT TO:<reject@example.test>")
        assert r.code == 550 and "custom reject for reject@example.test" in r.text, r
        assert c.data(msg).code == 250
    got = s.wait_message("bob@example.test", mid.encode())[0]
    assert b"Subject: changed: hello" in got and b"X-Test-Milter: seen by testmilter" in got
    assert b"X-Drop" not in got and b"Replaced body." in got and b"Original body." not in got
    assert b"X-First: top" in got
    # opendkim signed what the first milter left (the chain order), and the signature verifies
    assert re.search(rb"(?m)^DKIM-Signature: v=1; a=rsa-sha256;", got), got[:800]
    start = got.index(b"DKIM-Signature")  # our Return-Path/Delivered-To lines come before what was signed
    key = dk.key()
    assert dkim.verify(got[start:], dnsfunc=lambda name, timeout=5: key if name.startswith(b"sel1._domainkey") else None)
    # the recipient the milter added got its copy; the refused one did not
    assert s.wait_message("added@example.test", mid.encode())
    assert not s.find_messages("reject@example.test", mid.encode())
    assert s.events("milter_addrcpt")


def test_tempfail_at_end_of_data(lab):
    h, s, filt, dk = lab
    msg, mid = message("please tempfail this")
    with Client(s.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        r = c.data(msg)
        assert r.code == 451 and "4.7.1" in r.text, r
        assert c.cmd("RSET").code == 250
    import time
    time.sleep(1)
    assert not s.find_messages("bob@example.test", mid.encode())


@pytest.mark.parametrize("optional", [True, False])
def test_milter_down(harness, optional):
    options = {"spamfilter1_type": "milter", "spamfilter1_address": "inet:%d@127.0.0.1" % st.free_port(),
               "spamfilter1_timeout": "5", "spamfilter1_optional": "yes" if optional else "no"}
    s = harness.sluice(options=options,
                       tcp_local="smtp nomx daemon 127.0.0.1 port %d sourcespamfilter1" % st.free_port())
    msg, mid = message("down")
    if not optional:  # a required milter that cannot be reached: the connection is refused for now
        with Client(s.port, read_greeting=False) as c:
            r = c.reply()
            assert r.code == 421 and "4.7.1" in r.text, r
            assert c.is_closed()
        assert s.events("milter_unavailable")
        return
    with Client(s.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.data(msg).code == 250
    got = s.wait_message("bob@example.test", mid.encode())[0]
    assert b"X-Sluice-Scan: spamfilter1 not scanned" in got
