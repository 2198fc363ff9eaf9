"""test_smuggling.py - SMTP smuggling: only <CRLF>.<CRLF> ends DATA.

For each look-alike end-of-data sequence, one connection sends a legitimate message whose text
goes on, after the look-alike, with a complete second transaction ("MAIL ... RCPT ... DATA ...
second message ... CRLF.CRLF"), then QUIT. The daemon must answer exactly one reply for the data
(250, or 5xx), never execute the smuggled commands, and never queue or deliver more than the one
legitimate message, neither into a local Maildir nor to the next hop (an SMTP sink reached through
the tcp_local channel's smart host). No delivered file may hold a bare CR or a bare LF. Both
bare_lf policies are tested; with bare_lf=reject a message with a bare LF gets a 5xx and is not
delivered.
"""
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import Client

VARIANTS = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CR": b"\r.\r",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.CR": b"\r\n.\r",
    "NUL-before-dot": b"\r\n\x00.\r\n",
    "NUL-after-dot": b"\r\n.\x00\r\n",
    "dot-mid-line": b".\r\n",
}

LOCAL_LEGIT, LOCAL_SMUGGLED = "bob@example.test", "carol@example.test"
REMOTE_LEGIT, REMOTE_SMUGGLED = "legit@relay.test", "evil@relay.test"


@pytest.fixture(scope="module", params=["normalise", "reject"])
def smug(request, module_harness):
    mode = request.param
    net = st.loopback_net()
    host = net + ".2"
    port = st.free_port(host)
    sink = module_harness.sink(host, port, name="sink-" + mode)
    mta = module_harness.sluice(options={"bare_lf": mode},
                                tcp_local="smtp daemon %s port %d" % (host, port))
    yield mta, sink, mode
    mta.stop()
    sink.stop()


def has_bare(data):
    return bool(st.BARE_CR.search(data) or st.BARE_LF.search(data))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_end_of_data_lookalike(smug, variant):
    mta, sink, mode = smug
    term = VARIANTS[variant]
    tag = "%s-%s-%s" % (mode, variant, uuid.uuid4().hex[:10])
    legit_mid, smug_mid = "legit-%s@test" % tag, "smuggled-%s@test" % tag
    first = (b"From: <alice@example.test>\r\nTo: <%s>, <%s>\r\nSubject: legit %s\r\nMessage-ID: <%s>\r\n\r\n"
             b"body text" % (LOCAL_LEGIT.encode(), REMOTE_LEGIT.encode(), tag.encode(), legit_mid.encode()))
    smuggled = (b"MAIL FROM:<alice@example.test>\r\n"
                b"RCPT TO:<%s>\r\nRCPT TO:<%s>\r\n"
                b"DATA\r\n"
                b"From: <alice@example.test>\r\nSubject: smuggled %s\r\nMessage-ID: <%s>\r\n\r\n"
                b"smuggled body\r\n.\r\n" % (LOCAL_SMUGGLED.encode(), REMOTE_SMUGGLED.encode(), tag.encode(),
                                             smug_mid.encode()))
    bare_lf = bool(st.BARE_LF.search(b"x" + term + b"M"))
    accepted_before = len(mta.events("accepted"))

    with Client(mta.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<%s>" % LOCAL_LEGIT).code == 250
        assert c.cmd("RCPT TO:<%s>" % REMOTE_LEGIT).code == 250
        assert c.cmd("DATA").code == 354
        c.send(first + term + smuggled + b"QUIT\r\n")
        replies, _closed = c.replies_until_close(timeout=15)

    print("%s %s -> %r" % (mode, variant, replies))
    assert replies, "no reply at all to the data"
    final = replies[0]
    assert final.code == 250 or 500 <= final.code < 600, "reply to the data: %r" % final
    assert len(replies) <= 2 and all(r.code == 221 for r in replies[1:]), \
        "the daemon answered the smuggled commands: %r" % replies
    if mode == "reject" and bare_lf:
        assert 500 <= final.code < 600, "bare_lf=reject accepted a message with a bare LF: %r" % final

    qid = st.queue_id(final) if final.code == 250 else None
    if final.code == 250:
        assert mta.wait_message(LOCAL_LEGIT, legit_mid.encode()), \
            "legitimate message not delivered locally; log:\n%s" % mta.log_excerpt(qid)
        assert sink.wait(legit_mid.encode()), "legitimate message not relayed; log:\n%s" % mta.log_excerpt(qid)
    time.sleep(2.5)  # anything smuggled would be delivered by now (retry_max=2)

    local = mta.find_messages(LOCAL_LEGIT, tag.encode())
    remote = sink.find(tag.encode())
    smuggled_local = mta.find_messages(LOCAL_SMUGGLED, tag.encode())
    smuggled_remote = [e for e, _ in sink.received() if REMOTE_SMUGGLED in e["rcpt_tos"]]
    assert not smuggled_local, "smuggled message delivered to %s: %r" % (LOCAL_SMUGGLED, smuggled_local[0][:600])
    assert not smuggled_remote, "smuggled message relayed to the next hop: %r" % smuggled_remote
    accepted = len(mta.events("accepted")) - accepted_before
    assert accepted <= 1, "%d messages accepted on one connection; log:\n%s" % (accepted, mta.log_excerpt("accepted"))
    if final.code == 250:
        assert len(local) == 1, "%d local copies" % len(local)
        assert len(remote) == 1, "%d copies at the next hop" % len(remote)
        assert remote[0][0]["rcpt_tos"] == [REMOTE_LEGIT], remote[0][0]
    else:
        assert not local and not remote, "a refused message was delivered"
    for data in local:
        assert not has_bare(data), "bare CR/LF in the local Maildir file: %r" % data
        head = st.split_header(data[data.find(b"From: <alice"):])[0]
        assert smug_mid.encode() not in head, "smuggled header became a real header: %r" % head
    for env, data in remote:
        assert not has_bare(data), "bare CR/LF in what the next hop received: %r" % data
        assert smug_mid.encode() not in st.split_header(data)[0]


# BDAT content is not dot-stuffed, so any byte may reach the queue through it: bare CR and bare LF,
# and a '.' line that only a bare CR sets apart. Relayed, such content must go out with CRLF lines
# and the dot doubled, or the next hop may see "<CR>.<CRLF>" as the end of data and run the rest
# as commands.
BDAT_CHUNKS = [b"Subject: bdat %s\r\nMessage-ID: <%s>\r\n\r\nSTART\r.\r\nmail FROM:<x@evil.test>\r",
               b"\nrcpt TO:<%s>\nDATA\nsmuggled\n.\nend\r"]


def test_bdat_bare_eol_relayed(smug):
    mta, sink, mode = smug
    tag = "bdat-%s-%s" % (mode, uuid.uuid4().hex[:10])
    mid = "%s@test" % tag
    chunks = [BDAT_CHUNKS[0] % (tag.encode(), mid.encode()), BDAT_CHUNKS[1] % REMOTE_SMUGGLED.encode()]
    with Client(mta.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<%s>" % REMOTE_LEGIT).code == 250
        c.send(b"BDAT %d\r\n" % len(chunks[0]) + chunks[0])
        assert c.reply().code == 250
        c.send(b"BDAT %d LAST\r\n" % len(chunks[1]) + chunks[1])
        final = c.reply()
        assert c.cmd("QUIT").code == 221
    if mode == "reject":
        assert final.code == 550 and final.enhanced() == "5.6.0", final
        return
    assert final.code == 250, final
    got = sink.wait(mid.encode())
    assert len(got) == 1, "%d copies at the next hop" % len(got)
    env, data = got[0]
    assert env["rcpt_tos"] == [REMOTE_LEGIT], env
    assert not has_bare(data), "bare CR/LF in what the next hop received: %r" % data
    # the lone '.' arrived as a line of text (sent as "..") and everything after it as text too
    assert b"\r\nSTART\r\n.\r\nmail FROM:<x@evil.test>\r\nrcpt TO:<%s>\r\nDATA\r\nsmuggled\r\n.\r\nend\r\n" \
        % REMOTE_SMUGGLED.encode() in data, data
    time.sleep(2.5)  # anything smuggled would be delivered by now (retry_max=2)
    assert not [e for e, _ in sink.received() if REMOTE_SMUGGLED in e["rcpt_tos"] or
                e["mail_from"] == "x@evil.test"], sink.received()
