"""test_directory_policy.py - the directory's recipient policy end to end through the daemon
(embedded LDIF backend, Messaging Server attribute names):

- statuses of domains and entries: inactive/overquota 4xx, deleted/removed/disabled 5xx, hold
  accepted and kept in the hold channel (nothing delivered), mailRejectText as the reply text;
- size limits: a declared SIZE over mailMsgMaxBlocks is 552 at RCPT; without SIZE, after the
  data the recipient over its limit gets a DSN (5.3.4) while the others are delivered, and a
  message every recipient is too small for is refused 552 at the end of data.
"""
import uuid

import pytest

import sluicetest as st
from sluicetest import Client

LDIF = st.DEFAULT_LDIF + """
dn: uid=small,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: mailUser
uid: small
cn: Small
sn: Test
mail: small@example.test
mailMsgMaxBlocks: 1

dn: uid=away,ou=people,dc=example,dc=test
objectClass: mailUser
mail: away@example.test
mailUserStatus: overquota

dn: uid=gone,ou=people,dc=example,dc=test
objectClass: mailUser
mail: gone@example.test
inetUserStatus: removed
mailRejectText: gone@example.test left the company; write to bob@example.test

dn: uid=paused,ou=people,dc=example,dc=test
objectClass: mailUser
mail: paused@example.test
mailUserStatus: hold

dn: dc=closed,dc=test
objectClass: mailDomain
inetDomainStatus: inactive

dn: uid=u,dc=closed,dc=test
objectClass: mailUser
mail: u@closed.test
"""

CNF = ("example.test $U%$D@local-daemon\n"
       "closed.test  $U%$D@local-daemon\n"
       ".            $U%$H@tcp_local-daemon\n"
       "\n"
       "defaults\n\n"
       "l\nlocal-daemon\n\n"
       "hold\nhold-daemon\n\n"
       "tcp_local smtp mx\ntcp_local-daemon\n")


@pytest.fixture(scope="module")
def mta(module_harness):
    m = module_harness.sluice(start=False, ldif=LDIF, options={"max_message_size": "1M"})
    m.write("sluice.cnf", CNF)
    m.start()
    return m


@pytest.mark.parametrize("rcpt,code,enh,text", [
    ("away@example.test", 450, "4.2.1", "mailbox overquota"),
    ("gone@example.test", 550, "5.2.1", "left the company"),
    ("u@closed.test", 450, "4.1.2", "domain inactive"),
    ("nobody@example.test", 550, "5.1.1", "User unknown"),
])
def test_status_replies(mta, rcpt, code, enh, text):
    with Client(mta.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        assert (r.code, r.enhanced()) == (code, enh) and text in r.text, r
        c.quit()


def test_hold_status_keeps_the_message(mta):
    mid = "hold-%s@test" % uuid.uuid4().hex[:10]
    r, _ = st.send_message(mta.port, "alice@example.test", ["paused@example.test"], st.make_message(mid, to="paused@example.test"))
    assert r.code == 250, r
    qid = st.queue_id(r)
    mta.wait_event(lambda ln: ln.event == "queued" and ln.id == qid and ln.kv.get("channel") == "hold")
    assert not mta.find_messages("paused@example.test", mid.encode()), "a held recipient was delivered"


def test_size_declared_refused_at_rcpt(mta):
    with Client(mta.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.test> SIZE=3000").code == 250
        r = c.cmd("RCPT TO:<small@example.test>")
        assert (r.code, r.enhanced()) == (552, "5.3.4"), r
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        c.quit()


def test_size_after_data_dsn_for_the_small_one(mta):
    mid = "big-%s@test" % uuid.uuid4().hex[:10]
    body = b"x" * 70 + b"\r\n"
    msg = st.make_message(mid, to="bob@example.test", body=body * 40)  # about 2.9 kB, over 1 block
    r, rr = st.send_message(mta.port, "alice@example.test", ["small@example.test", "bob@example.test"], msg)
    assert [x.code for x in rr] == [250, 250] and r.code == 250, (r, rr)
    mta.wait_message("bob@example.test", mid.encode())
    dsn = mta.wait_message("alice@example.test", b"5.3.4")
    assert dsn, "no DSN for the recipient over its size limit"
    assert b"small@example.test" in dsn[0] and b"Action: failed" in dsn[0], dsn[0][:2000]
    assert not mta.find_messages("small@example.test", mid.encode())


def test_size_after_data_all_too_small(mta):
    mid = "big2-%s@test" % uuid.uuid4().hex[:10]
    msg = st.make_message(mid, to="small@example.test", body=(b"y" * 70 + b"\r\n") * 40)
    r, _ = st.send_message(mta.port, "alice@example.test", ["small@example.test"], msg)
    assert (r.code, r.enhanced()) == (552, "5.3.4"), r


def test_dry_run_cli(mta):
    """sluice test address: the daemon's decisions for one recipient, without a daemon."""
    import subprocess
    def run(*args):
        r = subprocess.run([st.BIN, "test", "address"] + list(args) + ["-C", mta.confdir],
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout
    rc, out = run("gone@example.test", "--from", "alice@example.test")
    assert rc == 1, out
    assert "rcpt_entry" in out and "inetUserStatus" not in out, out
    assert "< 550 5.2.1 <gone@example.test>: Recipient address rejected: gone@example.test left the company" in out, out
    rc, out = run("small@example.test")
    assert rc == 0 and "< 250 2.1.5 Ok" in out and "max_size=1024" in out, out
    rc, out = run("x@elsewhere.test", "--client", "192.0.2.7")
    assert rc == 1 and "Relay access denied" in out and "(outside)" in out, out
    rc, out = run()
    assert rc == 2
