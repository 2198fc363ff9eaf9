"""test_scanning.py - content scanning end to end through the daemon, with Debian's spamd and clamd
(issue 11, doc/scanning.md):

- one message to three recipients: alice (opted in through mailAntiUBEService, her own filter
  files spam into Junk) finds it in her Maildir's .Junk folder, bob (not opted in) in his inbox
  untouched, carol (the same opt-in string, a filter that tags the subject) in her inbox with
  "[SPAM]" in the subject; spamd scanned once for alice and carol, not once per recipient;
- the EICAR test string (clamd, opted in by the source channel's sourcespamfilter2, verdict
  action reject) is refused with 550 at the end of data, and nothing is delivered;
- a scanner that does not answer: required -> 451 4.7.1 at the end of data, optional -> the
  message is delivered with an X-Sluice-Scan header noting the skip;
- a clean message passes the scanners and arrives untouched;
- Sieve vacation (mailSieveRuleSource): the autoreply leaves through the dispositionchannel to
  the sender, once per period, and never to the null sender.
"""
import os
import subprocess
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import Client

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

JUNK_FILTER = ('require ["fileinto", "spamtest", "relational", "comparator-i;ascii-numeric"]; '
               'if spamtest :value "ge" :comparator "i;ascii-numeric" "6" { fileinto "Junk"; }')
TAG_FILTER = ('require ["addtag", "spamtest", "relational", "comparator-i;ascii-numeric"]; '
              'if spamtest :value "ge" :comparator "i;ascii-numeric" "6" { addtag "[SPAM]"; }')
VACATION = 'require "vacation"; vacation :days 7 :subject "Away" "I am away until Monday.";'

LDIF = st.DEFAULT_LDIF.replace(
    "mail: alice@example.test\n",
    "mail: alice@example.test\nmailAntiUBEService: spam\nmailSieveRuleSource: %s\n" % JUNK_FILTER, 1).replace(
    "mail: carol@example.test\n",
    "mail: carol@example.test\nmailAntiUBEService: spam\nmailSieveRuleSource: %s\n" % TAG_FILTER, 1).replace(
    "mail: dave@example.test\n",
    "mail: dave@example.test\nmailSieveRuleSource: %s\n" % VACATION, 1) + """
dn: uid=erin,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: mailUser
uid: erin
cn: Erin
sn: Test
mail: erin@example.test
mailSieveRuleSource: require "reject"; if header :contains "Subject" "newsletter" { reject "I do not read newsletters."; }
"""

PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers")


class Spamd(st.Peer):
    """peers/spamd-start.sh: spamd in the foreground; scans() counts the scans in its log."""

    def __init__(self, workdir):
        self.port = st.free_port()
        self.dir = os.path.join(workdir, "spamd")
        # spamd started as root scans as nobody: its configuration must be reachable
        d = workdir
        while d.startswith(os.path.join(os.sep, "tmp", "")) or d.startswith(os.environ.get("TMPDIR", "/tmp") + os.sep):
            os.chmod(d, os.stat(d).st_mode | 0o711)
            d = os.path.dirname(d)
        super().__init__(["/bin/bash", os.path.join(PEERS, "spamd-start.sh"), self.dir, str(self.port)], workdir,
                         "spamd")

        def ready():
            r = subprocess.run(["spamc", "-d", "127.0.0.1", "-p", str(self.port), "-K"], capture_output=True,
                               stdin=subprocess.DEVNULL, timeout=10)
            return r.stdout.startswith(b"SPAMD/1.5 0")
        if not st.wait_until(lambda: self.proc.poll() is not None or ready(), 60, 0.2) or self.proc.poll() is not None:
            self.stop()
            raise AssertionError("spamd did not start: %s" % open(self.log, "rb").read()[-2000:])

    def scans(self):
        try:
            with open(os.path.join(self.dir, "spamd.log"), "rb") as f:
                return f.read().count(b"spamd: result:")
        except FileNotFoundError:
            return 0


class Clamd(st.Peer):
    """peers/clamd-start.sh: clamd in the foreground with its EICAR test signatures."""

    def __init__(self, workdir):
        self.port = st.free_port()
        self.dir = os.path.join(workdir, "clamd")
        super().__init__(["/bin/bash", os.path.join(PEERS, "clamd-start.sh"), self.dir, str(self.port)], workdir,
                         "clamd")

        def ready():
            import socket
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                    s.sendall(b"zPING\0")
                    return s.recv(16).strip(b"\0") == b"PONG"
            except OSError:
                return False
        if not st.wait_until(lambda: self.proc.poll() is not None or ready(), 60, 0.2) or self.proc.poll() is not None:
            self.stop()
            raise AssertionError("clamd did not start: %s" % open(self.log, "rb").read()[-2000:])


@pytest.fixture(scope="module")
def lab(module_harness):
    h = module_harness
    spamd = Spamd(h.subdir("spamd"))
    h.peers.append(spamd)
    clamd = Clamd(h.subdir("clamd"))
    h.peers.append(clamd)
    sink_port = st.free_port()
    sink = h.sink("127.0.0.1", sink_port)
    options = {
        "spamfilter1_type": "spamd",
        "spamfilter1_address": "127.0.0.1:%d" % spamd.port,
        "spamfilter1_timeout": "60",
        # the verdict's own action only marks the copy: the users' filters decide where it goes
        "spamfilter1_verdict_0": "spam",
        "spamfilter1_action_0": 'data:,require "editheader"; addheader "X-Spam-Flag" "YES";',
        "ldap_optin1": "mailAntiUBEService",
        "spamfilter2_type": "clamd",
        "spamfilter2_address": "127.0.0.1:%d" % clamd.port,
        "spamfilter2_verdict_0": "virus",
        "spamfilter2_action_0": 'data:,require "reject"; reject "Virus found, message refused";',
    }
    tcp_local = "smtp nomx daemon 127.0.0.1 port %d sourcespamfilter2" % sink_port
    s = h.sluice(options=options, ldif=LDIF, tcp_local=tcp_local)
    return h, s, spamd, clamd, sink


def message(subject, body, frm="ext@other.test", to="alice@example.test, bob@example.test, carol@example.test"):
    mid = "<%s@other.test>" % uuid.uuid4().hex
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n\r\n" % (frm, to, subject, mid)).encode() \
        + body + b"\r\n", mid


def folder_messages(s, addr, folder):
    local, domain = addr.split("@")
    d = os.path.join(s.maildir_root, domain, local, "." + folder, "new")
    out = []
    if os.path.isdir(d):
        for n in sorted(os.listdir(d)):
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
    return out


def test_per_recipient_verdicts(lab):
    h, s, spamd, clamd, sink = lab
    before = spamd.scans()
    msg, mid = message("cheap pills", b"Buy now.\r\n" + GTUBE)
    with Client(s.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<ext@other.test>").code == 250
        for r in ("alice", "bob", "carol"):
            assert c.cmd("RCPT TO:<%s@example.test>" % r).code == 250
        assert c.data(msg).code == 250
    st.wait_until(lambda: folder_messages(s, "alice@example.test", "Junk"), 20, what="alice's Junk")
    junk = folder_messages(s, "alice@example.test", "Junk")
    assert len(junk) == 1 and mid.encode() in junk[0] and b"X-Spam-Flag: YES" in junk[0]
    assert not s.find_messages("alice@example.test", mid.encode()), "alice's copy is in Junk, not in her inbox"
    bob = s.wait_message("bob@example.test", mid.encode())[0]
    assert b"X-Spam-Flag" not in bob and b"Subject: cheap pills\r\n" in bob, "bob did not opt in: untouched"
    carol = s.wait_message("carol@example.test", mid.encode())[0]
    assert b"Subject: [SPAM] cheap pills" in carol and b"X-Spam-Flag: YES" in carol
    # one scan for the opt-in string alice and carol share
    scans = [e for e in s.events("scan") if "scanner=1" in e.rest]
    assert len(scans) == 1 and "nrcpt=2" in scans[0].rest and "verdict=spam" in scans[0].rest, scans
    assert st.wait_until(lambda: spamd.scans() == before + 1, 10), (before, spamd.scans())
    time.sleep(0.5)
    assert spamd.scans() == before + 1


def test_clean_message_untouched(lab):
    h, s, spamd, clamd, sink = lab
    msg, mid = message("lunch", b"See you at noon.")
    st.send_message(s.port, "ext@other.test", ["alice@example.test", "bob@example.test"], msg)
    got = s.wait_message("alice@example.test", mid.encode())[0]
    assert got.endswith(msg), "a clean message arrives as sent (after our trace lines)"
    assert s.wait_message("bob@example.test", mid.encode())[0].endswith(msg)


def test_virus_rejected_at_end_of_data(lab):
    h, s, spamd, clamd, sink = lab
    msg, mid = message("invoice", b"See the attachment:\r\n" + EICAR)
    with Client(s.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<ext@other.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        r = c.data(msg)
        assert r.code == 550 and "5.7.1" in r.text and "Virus found" in r.text, r
        assert c.cmd("NOOP").code == 250, "the session goes on"
    scans = [e for e in s.events("scan") if "scanner=2" in e.rest and "verdict=virus" in e.rest]
    assert scans and "Test.EICAR" in scans[-1].rest
    time.sleep(1)
    assert not s.find_messages("bob@example.test", mid.encode())


def test_vacation_once_never_to_null_sender(lab):
    h, s, spamd, clamd, sink = lab
    msg, mid = message("meeting", b"Shall we meet?", to="dave@example.test")
    st.send_message(s.port, "ext@other.test", ["dave@example.test"], msg)
    s.wait_message("dave@example.test", mid.encode())
    replies = st.wait_until(lambda: sink.find(b"Subject: Away"), 20, what="the vacation reply")
    env, content = replies[0]
    assert env["rcpt_tos"] == ["ext@other.test"] and env["mail_from"] in ("", "<>")
    assert b"Auto-Submitted: auto-replied" in content and ("In-Reply-To: %s" % mid).encode() in content
    ev = s.events("autoreply")
    assert ev, "the reply's log line"
    # a second message from the same sender within the period: no second reply
    msg2, mid2 = message("again", b"Hello?", to="dave@example.test")
    st.send_message(s.port, "ext@other.test", ["dave@example.test"], msg2)
    s.wait_message("dave@example.test", mid2.encode())
    # and none to the null sender
    msg3, mid3 = message("bounce", b"A notice.", frm="mailer-daemon@other.test", to="dave@example.test")
    st.send_message(s.port, "", ["dave@example.test"], msg3)
    s.wait_message("dave@example.test", mid3.encode())
    time.sleep(1.5)
    assert len(sink.find(b"Subject: Away")) == 1
    reasons = [e.rest for e in s.events("vacation_skipped")]
    assert any("replied within the period" in r for r in reasons) and any("null sender" in r for r in reasons), reasons


def test_sieve_reject_mdn(lab):
    """A Sieve reject of one recipient while another takes the message: that recipient only is
    refused, and the sender gets an MDN (RFC 8098, deleted) through the dispositionchannel."""
    h, s, spamd, clamd, sink = lab
    msg, mid = message("weekly newsletter", b"News.", to="erin@example.test, bob@example.test")
    st.send_message(s.port, "news@other.test", ["erin@example.test", "bob@example.test"], msg)
    s.wait_message("bob@example.test", mid.encode())
    mdns = st.wait_until(lambda: sink.find(b"report-type=disposition-notification"), 20, what="the MDN")
    env, content = mdns[0]
    assert env["rcpt_tos"] == ["news@other.test"] and env["mail_from"] in ("", "<>")
    assert b"Disposition: automatic-action/MDN-sent-automatically; deleted" in content
    assert b"Final-Recipient: rfc822; erin@example.test" in content and b"I do not read newsletters." in content
    assert ("Original-Message-ID: %s" % mid).encode() in content
    assert not s.find_messages("erin@example.test", mid.encode())
    # every recipient rejects: 550 at the end of data, no MDN
    before = len(sink.find(b"report-type=disposition-notification"))
    msg2, mid2 = message("another newsletter", b"More news.", to="erin@example.test")
    with Client(s.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<news@other.test>").code == 250
        assert c.cmd("RCPT TO:<erin@example.test>").code == 250
        r = c.data(msg2)
        assert r.code == 550 and "I do not read newsletters." in r.text, r
    time.sleep(1)
    assert len(sink.find(b"report-type=disposition-notification")) == before


@pytest.mark.parametrize("optional", [False, True])
def test_scanner_down(harness, optional):
    options = {
        "spamfilter1_type": "clamd",
        "spamfilter1_address": "127.0.0.1:%d" % st.free_port(),  # nothing listens there
        "spamfilter1_timeout": "5",
        "spamfilter1_optional": "yes" if optional else "no",
    }
    s = harness.sluice(options=options, tcp_local="smtp nomx daemon 127.0.0.1 port %d sourcespamfilter1" % st.free_port())
    msg, mid = message("hello", b"Hi.", to="bob@example.test")
    with Client(s.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<ext@other.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        r = c.data(msg)
        if optional:
            assert r.code == 250, r
        else:
            assert r.code == 451 and "4.7.1" in r.text, r
    if optional:
        got = s.wait_message("bob@example.test", mid.encode())[0]
        assert b"X-Sluice-Scan: spamfilter1 not scanned" in got
    else:
        assert s.events("scan_required_failed")
        time.sleep(0.5)
        assert not s.find_messages("bob@example.test", mid.encode())


def test_check_refuses_bad_scanner_options(harness):
    s = harness.sluice(start=False, options={"spamfilter1_type": "spamd", "spamfilter9_type": "spamd",
                                             "spamfilter2_type": "bogus", "spamfilter3_type": "clamd",
                                             "spamfilter3_address": "localhost:783"})
    r = subprocess.run([st.BIN, "check", "-C", s.confdir], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    err = r.stdout + r.stderr
    assert "spamfilter1_type needs spamfilter1_address" in err
    assert "unknown option 'spamfilter9_type'" in err
    assert "spamfilter2_type: bad value 'bogus'" in err
    assert "spamfilter3_address: bad value 'localhost:783'" in err


class ScanBox(st.Peer):
    """peers/scanbox.py: a scanning box that writes its verdict into X-Spam-Flag / X-Spam-Score and
    relays each message back to return_port."""

    def __init__(self, workdir, return_port):
        self.port = st.free_port()
        self.dir = os.path.join(workdir, "box")
        os.makedirs(self.dir)
        super().__init__(["/usr/bin/python3", os.path.join(PEERS, "scanbox.py"), str(self.port), str(return_port),
                          self.dir], workdir, "scanbox")
        self.wait_file(os.path.join(self.dir, "ready"))

    def seen(self):
        try:
            with open(os.path.join(self.dir, "seen")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []


def test_scanning_box_verdict_from_header(harness):
    """Seed document 001's second approach: mail for example.test goes to a scanning box first
    (rule with $Ntcp_scanned), comes back on a service whose source channel tcp_scanned is not
    sent there again, and the box's X-Spam-Flag is the verdict of scanner 1 (type header), acted
    on like any scanner's; a forged X-Spam-Flag from the sender does not count (the box rewrites it)."""
    return_port = st.free_port()
    box = ScanBox(harness.subdir("box"), return_port)
    harness.peers.append(box)
    options = {
        "spamfilter1_type": "header",
        "spamfilter1_header": "X-Spam-Flag",
        "spamfilter1_score_header": "X-Spam-Score",
        "spamfilter1_verdict_0": "YES",
        "spamfilter1_action_0": 'data:,require "fileinto"; fileinto "Junk";',
    }
    s = harness.sluice(start=False, options=options)
    s.write("dispatcher.cnf", "[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\nPARAMETER=CHANNEL=tcp_local\n\n"
            "[SERVICE=RETURN]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\nPARAMETER=CHANNEL=tcp_scanned\n"
            % (s.port, return_port))
    s.write("sluice.cnf", "example.test   $U%$D@scan-daemon$Ntcp_scanned\n"
            "example.test   $U%$D@local-daemon\n"
            ".              $U%$H@tcp_local-daemon\n\n"
            "defaults\n\nl\nlocal-daemon\n\n"
            "tcp_local smtp nomx daemon 127.0.0.1 port SINKPORT\ntcp_local-daemon\n\n"
            "tcp_scan smtp nomx daemon 127.0.0.1 port BOXPORT\nscan-daemon\n\n"
            "tcp_scanned smtp sourcespamfilter1\ntcp_scanned-daemon\n"
            .replace("SINKPORT", str(st.free_port())).replace("BOXPORT", str(box.port)))
    s.start()
    spam, spam_id = message("offer", b"Great SPAMWORD deal", to="alice@example.test")
    st.send_message(s.port, "ext@other.test", ["alice@example.test"], spam)
    forged, forged_id = message("hello", b"Nothing to see.", to="bob@example.test")
    forged = b"X-Spam-Flag: YES\r\n" + forged  # a sender's own verdict must not count
    st.send_message(s.port, "ext@other.test", ["bob@example.test"], forged)
    st.wait_until(lambda: folder_messages(s, "alice@example.test", "Junk"), 30, what="the box's spam in Junk")
    junk = folder_messages(s, "alice@example.test", "Junk")
    assert spam_id.encode() in junk[0] and b"X-Spam-Flag: YES" in junk[0]
    bob = s.wait_message("bob@example.test", forged_id.encode(), timeout=30)[0]
    assert b"X-Spam-Flag: NO" in bob and b"X-Spam-Flag: YES" not in bob
    assert not folder_messages(s, "bob@example.test", "Junk")
    assert len(box.seen()) == 2, "each message went through the box once: %r" % box.seen()
    scans = [e.rest for e in s.events("scan") if "type=header" in e.rest]
    assert any("verdict=YES" in r and "score=9.5" in r for r in scans) and any("verdict=-" in r for r in scans), scans


class Garbage(st.Peer):
    """peers/garbage.py: answers anything with bytes of no protocol."""

    def __init__(self, workdir):
        self.port = st.free_port()
        self.dir = os.path.join(workdir, "garbage")
        os.makedirs(self.dir)
        super().__init__(["/usr/bin/python3", os.path.join(PEERS, "garbage.py"), str(self.port), self.dir], workdir,
                         "garbage")
        self.wait_file(os.path.join(self.dir, "ready"))


@pytest.mark.parametrize("kind", ["spamd", "clamd"])
@pytest.mark.parametrize("fault", ["hang", "garbage"])
def test_scanner_hangs_or_speaks_garbage(harness, kind, fault):
    """A scanner that accepts and never answers, or answers garbage: the required scanner's
    message gets 451 4.7.1 within its timeout, and the daemon goes on serving."""
    port = st.free_port()
    if fault == "hang":
        harness.tarpit("127.0.0.1", port)
    else:
        g = Garbage(harness.subdir("garbage"))
        harness.peers.append(g)
        port = g.port
    options = {"spamfilter1_type": kind, "spamfilter1_address": "127.0.0.1:%d" % port, "spamfilter1_timeout": "2"}
    s = harness.sluice(options=options, tcp_local="smtp nomx daemon 127.0.0.1 port %d sourcespamfilter1" % st.free_port())
    msg, mid = message("faulty scanner", b"Hi.", to="bob@example.test")
    with Client(s.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<ext@other.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        t0 = time.monotonic()
        r = c.data(msg)
        took = time.monotonic() - t0
        assert r.code == 451 and "4.7.1" in r.text, r
        assert took < 15, "the scanner's 2 s timeout took %.1f s" % took
        assert c.cmd("NOOP").code == 250
    fails = [e.rest for e in s.events("scan") if "result=failed" in e.rest]
    assert fails, s.log_excerpt("scan")
    if fault == "hang":
        assert "no answer within 2s" in fails[0]
