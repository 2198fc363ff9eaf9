"""test_local.py - the SMTP server and local (Maildir) delivery: byte-exact storage, directory
lookups (alternate addresses, groups, unknown users), relay policy, limits, protocol errors and
hostile clients, CHUNKING, and `sluice check`."""
import os
import re
import subprocess
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import Client, make_message, send_message

MAX_RCPTS = 5
MAX_ERRORS = 3


def uid():
    return uuid.uuid4().hex[:16]


@pytest.fixture(scope="module")
def mta(module_harness):
    """The daemon for most tests; loopback clients are internal."""
    return module_harness.sluice(options={"max_recipients": str(MAX_RCPTS), "max_errors": str(MAX_ERRORS)})


@pytest.fixture(scope="module")
def outside_mta(module_harness):
    """A daemon for which loopback clients are outside internal_networks."""
    return module_harness.sluice(options={"internal_networks": "10.0.0.0/8"})


@pytest.fixture(scope="module")
def pregreet_mta(module_harness):
    """A daemon that waits before its greeting, so that a client talking first is caught."""
    return module_harness.sluice(options={"greeting_delay": "500"})


def session(mta):
    c = Client(mta.port)
    assert c.greeting.code == 220, c.greeting
    c.ehlo()
    return c


def assert_no_bare_eol(data, what):
    assert not st.BARE_CR.search(data), "%s holds a bare CR at %d" % (what, st.BARE_CR.search(data).start())
    assert not st.BARE_LF.search(data), "%s holds a bare LF at %d" % (what, st.BARE_LF.search(data).start())


# ---------------------------------------------------------------- delivery

def test_local_delivery_is_byte_exact_after_trace_header(mta):
    mid = "exact-%s@test" % uid()
    body = (b"First line\r\n"
            b".leading dot\r\n"
            b"..two leading dots\r\n"
            b".\r\n"
            b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x80\x94 8-bit UTF-8\r\n"
            b"latin-1 octets \xe9\xe8\xff\r\n"
            + b"L" * 998 + b"\r\n"
            + b"x" * 500 + b" " + b"y" * 497 + b"\r\n"
            b"trailing spaces   \r\n"
            b"\ttab first\r\n"
            b"\r\n"
            b"last line\r\n")
    msg = make_message(mid, subject="byte exact", to="bob@example.test",
                       extra=b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                             b"Content-Transfer-Encoding: 8bit\r\n",
                       body=body)
    final, _ = send_message(mta.port, "alice@example.test", ["bob@example.test"], msg, mail_params="BODY=8BITMIME")
    assert final.code == 250, final
    assert final.enhanced() == "2.0.0", final
    qid = st.queue_id(final)
    assert qid, "no 'queued as ID' in %r" % final
    files = mta.wait_message("bob@example.test", mid.encode())
    assert len(files) == 1, "expected one copy for bob, found %d; log:\n%s" % (len(files), mta.log_excerpt(qid))
    data = files[0]
    assert data.endswith(msg), ("the stored message is not byte-exact; stored tail:\n%r" % data[-len(msg) - 200:])
    prefix = data[:-len(msg)]
    assert prefix.endswith(b"\r\n")
    names = [n.lower() for n, _ in st.header_fields(prefix)]
    assert names == ["return-path", "delivered-to", "received"], "trace fields before the message: %r\n%r" % (
        names, prefix)
    fields = st.header_fields(prefix)
    assert fields[0][1] == b"<alice@example.test>", prefix
    assert b"bob@example.test" in fields[1][1].lower(), prefix
    assert mta.host_name.encode() in fields[2][1], "our Received: does not name %s: %r" % (mta.host_name, prefix)
    assert_no_bare_eol(data, "the delivered file")


def test_alternate_address_lands_in_primary_mailbox(mta):
    mid = "alt-%s@test" % uid()
    final, rr = send_message(mta.port, "bob@example.test", ["ali@example.test"], make_message(mid, to="ali@example.test"))
    assert rr[0].code == 250, rr
    assert final.code == 250, final
    files = mta.wait_message("alice@example.test", mid.encode())
    assert len(files) == 1, "alice has %d copies; log:\n%s" % (len(files), mta.log_excerpt(st.queue_id(final)))
    assert not os.path.exists(mta.mailbox("ali@example.test")), "a Maildir was made for the alternate address"


def test_group_delivers_to_each_member(mta):
    mid = "group-%s@test" % uid()
    final, rr = send_message(mta.port, "carol@example.test", ["staff@example.test"],
                             make_message(mid, to="staff@example.test"))
    assert rr[0].code == 250, rr
    assert final.code == 250, final
    for member in ("alice@example.test", "bob@example.test"):
        files = mta.wait_message(member, mid.encode())
        assert len(files) == 1, "%s has %d copies; log:\n%s" % (member, len(files),
                                                               mta.log_excerpt(st.queue_id(final)))
    time.sleep(1)
    assert not mta.find_messages("carol@example.test", mid.encode()), "a non-member got the group's mail"
    assert not os.path.exists(mta.mailbox("staff@example.test")), "a Maildir was made for the group itself"


def test_bdat_chunking_delivery(mta):
    mid = "bdat-%s@test" % uid()
    head = b"Message-ID: <%s>\r\nSubject: bdat\r\n\r\n.not stuffed\r\n" % mid.encode()
    payload = head + b"z" * (100 - len(head) - 2) + b"\r\n"
    assert len(payload) == 100
    with session(mta) as c:
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        c.send(b"BDAT 100\r\n" + payload)
        r1 = c.reply()
        assert r1.code == 250, r1
        r2 = c.cmd("BDAT 0 LAST")
        assert r2.code == 250, r2
        assert st.queue_id(r2), r2
        c.quit()
    files = mta.wait_message("bob@example.test", mid.encode())
    assert len(files) == 1, mta.log_excerpt(st.queue_id(r2))
    assert files[0].endswith(payload), "BDAT content not stored byte-exact: %r" % files[0][-150:]


# ---------------------------------------------------------------- recipient policy

def test_unknown_local_user_550_511(mta):
    with session(mta) as c:
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        r = c.cmd("RCPT TO:<nosuchuser@example.test>")
        assert r.code == 550, r
        assert r.enhanced() == "5.1.1", r
        c.quit()


def test_relay_denied_for_outside_client(outside_mta):
    with session(outside_mta) as c:
        assert c.cmd("MAIL FROM:<someone@elsewhere.test>").code == 250
        r = c.cmd("RCPT TO:<victim@relay-target.test>")
        assert r.code == 550, r
        assert r.enhanced() == "5.7.1", r
        # Local mail from the same client is still welcome: the denial is about relaying.
        r = c.cmd("RCPT TO:<bob@example.test>")
        assert r.code == 250, r
        c.quit()


def test_relay_allowed_for_internal_client(mta):
    with session(mta) as c:
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        r = c.cmd("RCPT TO:<someone@relay-target.test>")
        assert r.code == 250, "an internal client may relay: %r" % r
        assert c.cmd("RSET").code == 250
        c.quit()


@pytest.mark.parametrize("which", ["internal", "outside"])
def test_postmaster_always_accepted(mta, outside_mta, which):
    d = mta if which == "internal" else outside_mta
    with session(d) as c:
        assert c.cmd("MAIL FROM:<someone@elsewhere.test>").code == 250
        r = c.cmd("RCPT TO:<postmaster@example.test>")
        assert r.code == 250, r
        c.quit()


def test_bare_postmaster_accepted(mta):
    """RFC 5321 4.5.1: <Postmaster> without a domain must be accepted."""
    with session(mta) as c:
        assert c.cmd("MAIL FROM:<someone@elsewhere.test>").code == 250
        r = c.cmd("RCPT TO:<Postmaster>")
        assert r.code == 250, r
        c.quit()


# ---------------------------------------------------------------- limits

def test_size_parameter_over_max_552_at_mail(mta):
    with session(mta) as c:
        r = c.cmd("MAIL FROM:<alice@example.test> SIZE=%d" % (2 * 1024 * 1024))
        assert r.code == 552, r
        # Within the limit is fine.
        r = c.cmd("MAIL FROM:<alice@example.test> SIZE=1000")
        assert r.code == 250, r
        c.quit()


def test_oversize_data_552_534_not_delivered(mta):
    mid = "big-%s@test" % uid()
    line = b"0123456789" * 7 + b"abcdef\r\n"
    body = line * (1300 * 1024 // len(line))
    msg = make_message(mid, body=body)
    assert len(msg) > 1024 * 1024 + 100 * 1024
    with session(mta) as c:
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        r = c.data(msg)
        assert r.code == 552, r
        assert r.enhanced() == "5.3.4", r
        # The session goes on.
        assert c.cmd("NOOP").code == 250
        c.quit()
    time.sleep(2)
    assert not mta.find_messages("bob@example.test", mid.encode()), "an oversize message was delivered"


def test_too_many_recipients_452_453(mta):
    mid = "many-%s@test" % uid()
    rcpts = ["alice@example.test", "bob@example.test", "carol@example.test", "dave@example.test",
             "postmaster@example.test"]
    assert len(rcpts) == MAX_RCPTS
    with session(mta) as c:
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        for a in rcpts:
            r = c.cmd("RCPT TO:<%s>" % a)
            assert r.code == 250, (a, r)
        r = c.cmd("RCPT TO:<ali@example.test>")
        assert r.code == 452, r
        assert r.enhanced() == "4.5.3", r
        final = c.data(make_message(mid, to="many@example.test"))
        assert final.code == 250, final
        c.quit()
    files = mta.wait_message("dave@example.test", mid.encode())
    assert len(files) == 1, mta.log_excerpt(st.queue_id(final))


# ---------------------------------------------------------------- protocol errors

def test_unknown_command_500_551(mta):
    with session(mta) as c:
        r = c.cmd("FROBNICATE now")
        assert r.code == 500, r
        assert r.enhanced() == "5.5.1", r
        assert c.cmd("NOOP").code == 250
        c.quit()


def test_bad_sequence_503_551(mta):
    with session(mta) as c:
        r = c.cmd("RCPT TO:<bob@example.test>")
        assert r.code == 503, r
        assert r.enhanced() == "5.5.1", r
        r = c.cmd("DATA")
        assert r.code == 503, r
        c.quit()


@pytest.mark.parametrize("line", ["MAIL FROM:<alice@example.test", "MAIL FROM:<alice@@example.test>",
                                  "RCPT"], ids=["unclosed", "double-at", "rcpt-without-arg"])
def test_bad_syntax_501(mta, line):
    with session(mta) as c:
        if line.startswith("RCPT"):
            assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        r = c.cmd(line)
        assert r.code == 501, r
        c.quit()


def test_pipelining_before_greeting_554_and_closed(pregreet_mta):
    c = Client(pregreet_mta.port, read_greeting=False)
    try:
        c.send(b"EHLO early.example.test\r\nMAIL FROM:<alice@example.test>\r\n")
        replies, closed = c.replies_until_close(timeout=15)
    finally:
        c.close()
    codes = [r.code for r in replies]
    assert 554 in codes, "no 554 for a client that talked first: %r" % replies
    assert 250 not in codes, "commands sent before the greeting were executed: %r" % replies
    assert closed, "session not closed after 554: %r" % replies


def test_patient_client_greeted_after_delay(pregreet_mta):
    t0 = time.monotonic()
    with Client(pregreet_mta.port) as c:
        assert c.greeting.code == 220, c.greeting
        assert c.ehlo().code == 250
        c.quit()
    assert time.monotonic() - t0 >= 0.4, "greeting_delay=500 not honoured"


def test_http_request_closes_session(mta):
    c = session(mta)
    try:
        c.send(b"GET / HTTP/1.0\r\n")
        replies, closed = c.replies_until_close(timeout=5)
    finally:
        c.close()
    assert closed, "an HTTP request did not close the session; replies %r" % replies
    assert all(r.code >= 400 for r in replies), replies


def test_too_many_errors_421(mta):
    c = session(mta)
    got = []
    try:
        for _ in range(MAX_ERRORS + 2):
            try:
                r = c.cmd("BOGUS%d" % len(got))
            except (st.SMTPError, OSError):
                break
            got.append(r)
            if r.code == 421:
                break
        closed = c.is_closed(5)
    finally:
        c.close()
    codes = [r.code for r in got]
    assert 421 in codes, "no 421 after %d errors with max_errors=%d: %r" % (len(got), MAX_ERRORS, got)
    assert codes.index(421) <= MAX_ERRORS, "421 came too late: %r" % got
    assert closed, "connection not closed after 421"


@pytest.mark.parametrize("k", [508, 510, 512, 600])
def test_overlong_command_refused_tail_not_executed(mta, k):
    mid = "long-%d-%s@test" % (k, uid())
    line = b"NOOP " + b"x" * (k - 5) + b"RSET\r\n"
    assert len(line) > 512
    with session(mta) as c:
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        c.send(line)
        r = c.reply()
        assert 500 <= r.code < 600, "a %d-octet command line was not refused: %r" % (len(line), r)
        # Exactly one reply for the long line: the next reply belongs to this NOOP.
        r = c.cmd("NOOP")
        assert r.code == 250, "extra reply after the over-long line (its tail was executed?): %r" % r
        # The transaction survived: the "RSET" in the tail was not executed.
        final = c.data(make_message(mid))
        assert final.code == 250, "transaction lost after the over-long line (tail executed as RSET?): %r" % final
        c.quit()


def test_vrfy_252(mta):
    with session(mta) as c:
        r = c.cmd("VRFY alice")
        assert r.code == 252, r
        c.quit()


def test_help_214(mta):
    with session(mta) as c:
        r = c.cmd("HELP")
        assert r.code == 214, r
        c.quit()


def test_ehlo_keywords(mta):
    with Client(mta.port) as c:
        r = c.ehlo()
        c.quit()
    assert r.lines[0].split()[0] == mta.host_name, r
    kw = {}
    for ln in r.lines[1:]:
        parts = ln.split()
        kw[parts[0].upper()] = parts[1:]
    for need in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN", "SMTPUTF8", "CHUNKING"):
        assert need in kw, "EHLO does not list %s: %r" % (need, r)
    assert kw["SIZE"] and int(kw["SIZE"][0]) in (1000000, 1048576), "SIZE does not say max_message_size=1M: %r" % r


# ---------------------------------------------------------------- sluice check

def run_check(confdir):
    p = subprocess.run([st.BIN, "check", "-C", confdir], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def test_check_good_config_exit_0(harness):
    s = harness.sluice(start=False)
    rc, out, err = run_check(s.confdir)
    assert rc == 0, "sluice check refused a good configuration (exit %d):\n%s%s" % (rc, out, err)


BROKEN = {
    "option.dat": ("option.dat", 3, "! broken\nlog_level=debug\nno_such_option=1\n"),
    "option.dat-value": ("option.dat", 2, "! broken\nmax_message_size=lots\n"),
    "dispatcher.cnf": ("dispatcher.cnf", 3, "[SERVICE=SMTP]\nPORT=2525\nFROBNICATE=yes\n"),
    "sluice.cnf": ("sluice.cnf", 9, st.sluice_cnf("smtp frobnicate_keyword")),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_check_broken_config_file_line_exit_1(harness, case):
    fname, line, text = BROKEN[case]
    s = harness.sluice(start=False)
    if case == "option.dat" or case == "option.dat-value":
        # Keep the absolute paths so that only the broken line is wrong.
        text = text + "queue_dir=%s\nmaildir_root=%s\n" % (s.queue_dir, s.maildir_root)
    s.write(fname, text)
    rc, out, err = run_check(s.confdir)
    assert rc == 1, "exit %d for a broken %s:\n%s%s" % (rc, fname, out, err)
    assert re.search(r"(^|/)%s:%d: \S" % (re.escape(fname), line), err, re.M), \
        "no '%s:%d: message' on stderr:\n%s" % (fname, line, err)
