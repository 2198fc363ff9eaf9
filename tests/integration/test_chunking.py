"""test_chunking.py - the SMTP client's BDAT (RFC 3030). A channel with the `chunking` keyword
sends the message to a next hop that offers CHUNKING as one `BDAT n LAST` chunk of CRLF lines,
not dot-stuffed, after the RCPT replies (a refused recipient never holds up or receives it); a
channel without it sends DATA to the same next hop. A next hop that closes the connection right
after accepting the message neither loses nor repeats it.

The next hop is peers/chunking.py on 127.X.Y.4 (random X.Y); chunk.test goes through tcp_chunk
(`chunking`) and plain.test through tcp_local, both `daemon [127.X.Y.4]`; close.test goes
through tcp_close to a second instance on 127.X.Y.5 that closes after each message.
"""
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message

CNF = """\
example.test   $U%$D@local-daemon
chunk.test     $U%$D@tcp_chunk-daemon
close.test     $U%$D@tcp_close-daemon
.              $U%$H@tcp_local-daemon

defaults

l
local-daemon

tcp_chunk smtp nomx daemon [{addr}] port {port} chunking
tcp_chunk-daemon

tcp_local smtp nomx daemon [{addr}] port {port}
tcp_local-daemon

tcp_close smtp nomx daemon [{close_addr}] port {port} chunking
tcp_close-daemon
"""

BODY = b"Line one.\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n"


def uid():
    return uuid.uuid4().hex[:12]


class Lab:
    pass


@pytest.fixture(scope="module")
def lab(module_harness):
    h = module_harness
    lab = Lab()
    net = st.loopback_net()
    lab.addr, lab.close_addr = net + ".4", net + ".5"
    lab.port = st.free_port(lab.addr, also=[lab.close_addr])
    lab.peer = h.chunking(lab.addr, lab.port, reject=["nobody@chunk.test"])
    lab.closer = h.chunking(lab.close_addr, lab.port, close_after_message=True)
    lab.mta = h.sluice(start=False)
    lab.mta.write("sluice.cnf", CNF.format(addr=lab.addr, close_addr=lab.close_addr, port=lab.port))
    lab.mta.start()
    return lab


def verbs(env):
    return [c.split()[0].upper() for c in env["commands"] if c.strip()]


def test_chunking_channel_sends_one_bdat_chunk(lab):
    mta = lab.mta
    mid = "bdat-%s@test" % uid()
    msg = make_message(mid, to="user@chunk.test", body=BODY)
    final, rr = send_message(mta.port, "alice@example.test", ["user@chunk.test", "nobody@chunk.test"], msg)
    assert [r.code for r in rr] == [250, 250] and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    got = lab.peer.wait(mid.encode(), timeout=20)
    assert got, "not delivered; log:\n%s" % mta.log_excerpt(qid)
    env, content = got[0]
    assert env["how"] == "BDAT", env
    assert env["chunks"] == [len(content)], env
    assert env["rcpt_tos"] == ["user@chunk.test"], env
    assert content.endswith(msg), "content changed (dot-stuffed?): %r" % content[-200:]
    assert not st.BARE_CR.search(content) and not st.BARE_LF.search(content)
    v = verbs(env)
    last_bdat = len(v) - 1 - v[::-1].index("BDAT")
    assert v[last_bdat - 3:last_bdat] == ["MAIL", "RCPT", "RCPT"], v
    assert "DATA" not in v, v
    bounces = mta.wait_message("alice@example.test", mid.encode())
    assert bounces, "no bounce for nobody@chunk.test; log:\n%s" % mta.log_excerpt(qid)
    assert b"5.1.1" in bounces[0]


def test_channel_without_chunking_sends_data(lab):
    mta = lab.mta
    mid = "data-%s@test" % uid()
    msg = make_message(mid, to="user@plain.test", body=BODY)
    final, _ = send_message(mta.port, "alice@example.test", ["user@plain.test"], msg)
    assert final.code == 250, final
    got = lab.peer.wait(mid.encode(), timeout=20)
    assert got, "not delivered; log:\n%s" % mta.log_excerpt(st.queue_id(final))
    env, content = got[0]
    assert env["how"] == "DATA" and env["chunks"] == [], env
    assert content.endswith(msg), "content changed: %r" % content[-200:]
    assert "BDAT" not in verbs(env)


def test_next_hop_closing_after_the_message(lab):
    """The 250 and the close arrive together: the delivery stands, the closed connection is not
    mistaken for a failure of the next message, and nothing is sent twice."""
    mta = lab.mta
    mids = ["close%d-%s@test" % (n, uid()) for n in range(3)]
    for mid in mids:
        final, _ = send_message(mta.port, "alice@example.test", ["user@close.test"],
                                make_message(mid, to="user@close.test"))
        assert final.code == 250, final
    for mid in mids:
        assert lab.closer.wait(mid.encode(), timeout=20), "%s not delivered; log:\n%s" % (mid, mta.log_excerpt())
    time.sleep(3)  # longer than retry_max: a repeated delivery would show now
    for mid in mids:
        assert len(lab.closer.find(mid.encode())) == 1, "%s delivered %d times" % (mid, len(lab.closer.find(mid.encode())))
    sent = [ln for ln in mta.events("delivery") if ln.kv.get("rcpt") == "<user@close.test>"]
    assert len(sent) == 3 and all(ln.kv.get("result") == "sent" for ln in sent), sent
