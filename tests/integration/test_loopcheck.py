"""test_loopcheck.py - routing loops back into the same Sluice fail at once with 5.4.6 instead of
looping: (1) a channel with `loopcheck` (and `selfmx`, so the address check stays out of the
way) connects to a server that announces its own XLOOP token in EHLO; (2) a channel without
`selfmx` finds that the MX resolves to one of Sluice's own listening addresses and never
connects. Either way the sender gets one failure DSN with Status 5.4.6 and no message is ever
accepted twice.

The configuration is issue 3's seed; example.test is the `l` channel (Maildirs), so the DSNs go
process_dsn -> l. The loop domains' MX records point at 127.0.0.1, where this test's Sluice
listens on its own free port (the channels' `port`).
"""
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message


def uid():
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def mta(module_harness):
    lab = st.Lab(module_harness, mx={"xloop.test": "127.0.0.1", "selfmx.test": "127.0.0.1"})
    mta = lab.sluice(start=False)
    st.configure_seed(
        mta, st.free_port(), local_port=mta.port,
        tcp_local="smtp mx loopcheck selfmx",
        extra_rules="selfmx.test  $U%$D@tcp_plain-daemon\n",
        extra_channels="tcp_plain smtp mx port %d\ntcp_plain-daemon\n" % mta.port)
    mta.start()
    return mta


def check_loop_dsn(mta, sender, rcpt, mid, qid):
    got = mta.wait_message(sender, mid.encode(), timeout=20)
    assert got, "no DSN to %s; log:\n%s" % (sender, mta.log_excerpt(qid, "loop", "bounce"))
    time.sleep(3)  # a retry or a second DSN would show up now
    got = mta.find_messages(sender, mid.encode())
    assert len(got) == 1, "%d DSNs" % len(got)
    d = st.DSN(got[0])
    assert d.content_type == "multipart/report", got[0][:2000]
    assert len(d.recipients) == 1, d.recipients
    r = d.recipients[0]
    assert rcpt in r.get("final-recipient", "").lower(), r
    assert r.get("action", "").lower() == "failed", r
    assert r.get("status") == "5.4.6", "a routing loop must be reported as 5.4.6: %r" % r
    failed = [ln for ln in mta.events("failed") if ln.id == qid]
    assert len(failed) == 1 and failed[0].kv.get("status") == "5.4.6", failed
    assert not [ln for ln in mta.events("deferred") if ln.id == qid], \
        "a loop was treated as a temporary failure:\n%s" % mta.log_excerpt(qid)
    assert st.wait_until(lambda: not [f for f in mta.queue_files() if f.endswith(qid)], 10), \
        "the looping message is still queued"


def test_loopcheck_sees_own_xloop_token_and_fails_5_4_6(mta):
    sender, rcpt = "alice@example.test", "user@xloop.test"
    mid = "xloop-%s@test" % uid()
    final, rr = send_message(mta.port, sender, [rcpt], make_message(mid, to=rcpt))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    ln = mta.wait_event(lambda l: l.event == "loop_detected" and l.id == qid, timeout=20)
    assert ln, "no loop_detected event; log:\n%s" % mta.log_excerpt(qid)
    assert ln.kv.get("how") == "xloop", "expected the XLOOP check (selfmx is on): %s" % ln.raw
    check_loop_dsn(mta, sender, rcpt, mid, qid)
    # The loop connection reached our own server (that is how the token was seen), but the
    # message was never handed over: only the original transaction from alice was accepted.
    accepted = mta.events("accepted", **{"from": "<%s>" % sender})
    assert len(accepted) == 1, "accepted %d times:\n%s" % (len(accepted), "\n".join(map(repr, accepted)))


def test_mx_resolving_to_own_address_fails_5_4_6_without_connecting(mta):
    sender, rcpt = "bob@example.test", "user@selfmx.test"
    mid = "selfmx-%s@test" % uid()
    connects_before = len(mta.events("connect"))
    final, rr = send_message(mta.port, sender, [rcpt], make_message(mid, frm=sender, to=rcpt))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    ln = mta.wait_event(lambda l: l.event == "loop_detected" and l.id == qid, timeout=20)
    assert ln, "no loop_detected event; log:\n%s" % mta.log_excerpt(qid)
    assert ln.kv.get("how") == "self_mx", ln.raw
    check_loop_dsn(mta, sender, rcpt, mid, qid)
    assert len(mta.events("connect")) == connects_before + 1, \
        "Sluice connected to itself although the MX is its own address:\n%s" % mta.log_excerpt("connect")
    assert len(mta.events("accepted", **{"from": "<%s>" % sender})) == 1
