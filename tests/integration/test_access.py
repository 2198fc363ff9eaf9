"""test_access.py - the access mapping tables on a live daemon (doc/mappings.md): FROM_ACCESS at
MAIL, ORIG_SEND_ACCESS and ORIG_MAIL_ACCESS at RCPT before alias expansion, SEND_ACCESS and
MAIL_ACCESS after it. Each rejection must come at the right command with the configured text and
the right code: permanent ($N, 550 5.7.1), temporary ($W, 450 4.7.1), an explicit enhanced code
($X, whose class 4 makes the rejection temporary), a $D delay, and entries with input flags
($:A: only for authenticated sessions, over STARTTLS with a {CRYPT} password).

One daemon on 127.0.0.1 for the module; the client is internal (relaying itself is test_relay.py).
"""
import time

import pytest

import sluicetest as st
import tlsauth

MAPPINGS = r"""! test_access.py
FROM_ACCESS

  TCP|*|*|*|*|SMTP/worm.example|MAIL|*|*|*   $NHELO$ worm.example$ refused$ (client$ $2)
  TCP|*|*|*|*|SMTP*|MAIL|*|*@spam.test|*       $NNo$ mail$ from$ spam.test
  TCP|*|*|*|*|SMTP*|MAIL|*|*@busy.test|*       $WSender$ domain$ busy,$ come$ back$ later
  TCP|*|*|*|*|SMTP*|MAIL|*|*@coded.test|*      $N$X5.7.26|Unauthenticated$ mail$ from$ $6@coded.test
  TCP|*|*|*|*|SMTP*|MAIL|*|*@coded4.test|*     $N$X4.7.26|Check$ your$ DNS,$ then$ retry
  TCP|*|*|*|*|SMTP*|MAIL|*|*@slow.test|*       $D150|$Y
  TCP|*|*|*|*|SMTP*|MAIL|*|*@members.test|*    $C$:A$Y$E
  TCP|*|*|*|*|SMTP*|MAIL|*|*@members.test|*    $NMembers$ must$ authenticate$ first

ORIG_SEND_ACCESS

  *|*|*|*@blocked.test          $NNo$ mail$ to$ blocked.test
  *|*|*|*@later.test            $WTry$ later.test$ later
  *|*|l|ali@example.test        $N$X5.7.2|The$ address$ ali$ is$ closed

SEND_ACCESS

  *|*|l|dave@example.test       $N$X5.2.1|Dave$ is$ away
  *|*|*|staff@example.test      $NSEND_ACCESS$ saw$ the$ group$ address
  *|*|*|ali@example.test        $NSEND_ACCESS$ saw$ the$ alternate$ address

ORIG_MAIL_ACCESS

  TCP|*|*|*|*|SMTP*|MAIL|*|*|*|*@nomail.test       $NNo$ mail$ for$ nomail.test$ from$ $2

MAIL_ACCESS

  TCP|*|*|*|*|SMTP*|MAIL|*|*|l|carol@example.test  $WCarol's$ mailbox$ is$ busy
"""


class Lab:
    pass


@pytest.fixture(scope="module")
def lab(module_harness):
    h = module_harness
    lab = Lab()
    certdir = h.subdir("cert")
    cert, key = tlsauth.make_cert(certdir)
    lab.mta = h.sluice(start=False, ldif=tlsauth.ldif_with_submitter(),
                       options={"tls_certificate": cert, "tls_key": key, "max_errors": "100"})
    lab.mta.write("mappings", MAPPINGS)
    lab.mta.start()
    return lab


def session(lab):
    c = st.Client(lab.mta.port)
    c.ehlo()
    return c


def reject_logged(mta, cmd, reply_start):
    """reject_logged - the "reject" log line of cmd whose reply starts with reply_start (waits briefly)."""
    return mta.wait_event(lambda ln: ln.event == "reject" and ln.kv.get("cmd") == cmd
                          and ln.kv.get("reply", "").startswith(reply_start), timeout=5)


# FROM_ACCESS: (sender, expected MAIL reply code, enhanced code, text)
FROM_CASES = [
    ("x@spam.test", 550, "5.7.1", "No mail from spam.test"),
    ("x@busy.test", 450, "4.7.1", "Sender domain busy, come back later"),
    ("jim@coded.test", 550, "5.7.26", "Unauthenticated mail from jim@coded.test"),
    ("x@coded4.test", 450, "4.7.26", "Check your DNS, then retry"),
    ("x@members.test", 550, "5.7.1", "Members must authenticate first"),
]


@pytest.mark.parametrize("sender,code,enh,text", FROM_CASES, ids=[c[0] for c in FROM_CASES])
def test_from_access_rejects_at_mail(lab, sender, code, enh, text):
    with session(lab) as c:
        r = c.cmd("MAIL FROM:<%s>" % sender)
        assert (r.code, r.enhanced(), r.text) == (code, enh, "%s %s" % (enh, text)), r
        # The transaction did not start: RCPT needs a MAIL first.
        r = c.cmd("RCPT TO:<bob@example.test>")
        assert r.code == 503, "RCPT after a rejected MAIL: %r" % r
        # Another sender is fine in the same session.
        r = c.cmd("MAIL FROM:<ok@fine.test>")
        assert r.code == 250, r
        c.quit()
    assert reject_logged(lab.mta, "MAIL", "%d %s %s" % (code, enh, text)), \
        "no reject line for MAIL:\n%s" % lab.mta.log_excerpt("cmd=MAIL")


def test_helo_name_in_probe(lab):
    """Messaging Server's app-info field is SMTP/claimed-HELO-name: a table can refuse by the
    name a client claims (worms that say the same name everywhere), and only that name."""
    from sluicetest import Client
    with Client(lab.mta.port) as c:
        assert c.cmd("EHLO worm.example").code == 250
        r = c.cmd("MAIL FROM:<ok@fine.test>")
        assert r.code == 550 and "HELO worm.example refused" in r.text, r
        assert c.cmd("EHLO client.example.test").code == 250
        assert c.cmd("MAIL FROM:<ok@fine.test>").code == 250
        c.quit()


def test_from_access_delay(lab):
    """$D150 holds the MAIL reply back 1.5 s; the mail is then allowed ($Y)."""
    with session(lab) as c:
        t0 = time.monotonic()
        r = c.cmd("MAIL FROM:<x@slow.test>")
        took = time.monotonic() - t0
        assert r.code == 250, r
        assert 1.3 <= took <= 6, "the $D150 delay took %.2f s" % took
        t0 = time.monotonic()
        r = c.cmd("RSET")
        assert r.code == 250 and time.monotonic() - t0 < 1.0
        c.quit()


def test_from_access_authenticated_only_entry(lab):
    """$:A: the same sender is refused before AUTH and accepted after it (over STARTTLS)."""
    with session(lab) as c:
        r = c.cmd("MAIL FROM:<x@members.test>")
        assert r.code == 550 and "Members must authenticate first" in r.text, r
        tlsauth.starttls(c)
        r = c.cmd("MAIL FROM:<x@members.test>")
        assert r.code == 550, "TLS alone is not authentication: %r" % r
        r = tlsauth.auth_plain(c, "sub@example.test", tlsauth.PASSWORD)
        assert r.code == 235, r
        r = c.cmd("MAIL FROM:<x@members.test>")
        assert r.code == 250, "authenticated sender refused by the $:A entry: %r" % r
        r = c.cmd("RCPT TO:<bob@example.test>")
        assert r.code == 250, r
        c.quit()


# RCPT-time tables: (recipient, expected RCPT reply code, enhanced code, text or None for 250)
RCPT_CASES = [
    # ORIG_SEND_ACCESS, before the address is expanded
    ("u@blocked.test", 550, "5.7.1", "No mail to blocked.test"),
    ("u@later.test", 450, "4.7.1", "Try later.test later"),
    ("ali@example.test", 550, "5.7.2", "The address ali is closed"),
    # the same user under the primary address: ORIG_SEND_ACCESS does not match, and SEND_ACCESS
    # sees alice@example.test (the expansion), never ali@example.test
    ("alice@example.test", 250, "2.1.5", None),
    # SEND_ACCESS, after expansion
    ("dave@example.test", 550, "5.2.1", "Dave is away"),
    # a group: SEND_ACCESS sees its members, not the group address
    ("staff@example.test", 250, "2.1.5", None),
    # ORIG_MAIL_ACCESS with the connection fields ($2 = client IP)
    ("u@nomail.test", 550, "5.7.1", "No mail for nomail.test from 127.0.0.1"),
    # MAIL_ACCESS after expansion, temporary
    ("carol@example.test", 450, "4.7.1", "Carol's mailbox is busy"),
]


@pytest.mark.parametrize("rcpt,code,enh,text", RCPT_CASES, ids=[c[0] for c in RCPT_CASES])
def test_rcpt_access_tables(lab, rcpt, code, enh, text):
    with session(lab) as c:
        r = c.cmd("MAIL FROM:<someone@sender.test>")
        assert r.code == 250, "MAIL refused (the RCPT tables must not act at MAIL): %r" % r
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        assert r.code == code and r.enhanced() == enh, r
        if text:
            assert r.text == "%s %s" % (enh, text), r
            # A rejected RCPT leaves the transaction open for the next recipient.
            r2 = c.cmd("RCPT TO:<bob@example.test>")
            assert r2.code == 250, r2
        c.cmd("RSET")
        c.quit()
    if text:
        assert reject_logged(lab.mta, "RCPT", "%d %s %s" % (code, enh, text)), \
            "no reject line for RCPT:\n%s" % lab.mta.log_excerpt("cmd=RCPT")
