"""test_dsn_kinds.py - the kinds and parts of DSNs (RFC 3461/3464) on the seed configuration of
issue 3: NOTIFY=SUCCESS gives a "delivered" DSN after final delivery (Dovecot LMTP) and a
"relayed" DSN when the next hop lacks the DSN extension (and none when it has it); RET=HDRS
returns text/rfc822-headers, RET=FULL message/rfc822; ENVID and ORCPT come back as
Original-Envelope-Id and Original-Recipient; NOTIFY=NEVER suppresses the failure DSN.

Every DSN travels process_dsn -> tcp_notify -> the sender domain's MX (a sink), and is parsed
with Python's email package.

Peers (a random 127.X.Y triple): .2 sender.test's MX (sink), .3 Dovecot LMTP, .4 nodsn.test's
MX (sink without DSN), .5 dsn.test's MX (sink with DSN).
"""
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message

SENDER = "someone@sender.test"


def uid():
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def lab(module_harness):
    lab = st.Lab(module_harness, mx={"sender.test": 2, "nodsn.test": 4, "dsn.test": 5})
    lab.sender_mx = lab.start_sink(2, name="sender-mx")
    lab.nodsn_mx = lab.start_sink(4, name="nodsn-mx", dsn=False)
    lab.dsn_mx = lab.start_sink(5, name="dsn-mx")
    lab.store = lab.start_dovecot(3)
    lab.mta = lab.seed_sluice(lmtp=(lab.store.host, lab.store.port))
    return lab


def big_body(marker, n=4000):
    """big_body - a body over carol's 1K quota with a marker line that only the full message carries."""
    line = b"y" * 70 + b"\r\n"
    return b"BODY-MARKER " + marker.encode() + b"\r\n" + line * (n // len(line) + 1)


def wait_dsn(lab, needle, timeout=30):
    """wait_dsn - the single DSN about needle at the sender's MX, parsed (asserts exactly one)."""
    got = lab.sender_mx.wait(needle, timeout=timeout)
    assert got, "no DSN about %r reached the sender's MX; log:\n%s" % (
        needle, lab.mta.log_excerpt("bounce", "failed", "delivered", "requeued"))
    time.sleep(1)  # a duplicate would show up now
    got = lab.sender_mx.find(needle)
    assert len(got) == 1, "%d DSNs about %r" % (len(got), needle)
    env, content = got[0]
    assert st.null_sender(env), "DSN envelope sender is not <>: %r" % env["raw_mail"]
    assert env["rcpt_tos"] == [SENDER], env
    d = st.DSN(content)
    assert d.content_type == "multipart/report" and d.report_type == "delivery-status", content[:2000]
    assert d.report is not None, "no message/delivery-status part: %r" % content[:3000]
    assert d.per_message.get("reporting-mta"), "no Reporting-MTA: %r" % d.per_message
    assert d.per_message.get("arrival-date"), "no Arrival-Date: %r" % d.per_message
    assert len(d.recipients) == 1, "expected one recipient group: %r" % d.recipients
    return d


def bounce_kinds(mta, qid):
    return [ln.kv.get("kind") for ln in mta.events("bounce") if ln.id == qid]


def test_notify_success_local_gives_delivered_dsn_with_envid_and_orcpt(lab):
    mta = lab.mta
    mid = "delivered-%s@test" % uid()
    envid = "envid-%s" % uid()
    final, rr = send_message(mta.port, SENDER, ["alice@example.test"],
                             make_message(mid, frm=SENDER, to="alice@example.test"),
                             mail_params="RET=HDRS ENVID=%s" % envid,
                             rcpt_params="NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;ali.orig@example.test")
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    assert lab.store.wait("alice@example.test", mid.encode(), timeout=20), \
        "not delivered to alice; log:\n%s" % mta.log_excerpt(qid)
    d = wait_dsn(lab, mid.encode())
    kinds = bounce_kinds(mta, qid)
    assert kinds == ["delivered"], "final delivery by LMTP must give a 'delivered' DSN, got %r; log:\n%s" % (
        kinds, mta.log_excerpt(qid))
    r = d.recipients[0]
    assert r.get("action", "").lower() == "delivered", r
    assert r.get("status", "").startswith("2."), r
    assert "alice@example.test" in r.get("final-recipient", "").lower(), r
    orig = r.get("original-recipient", "")
    assert orig.lower().startswith("rfc822;") and orig.split(";", 1)[1].strip() == "ali.orig@example.test", \
        "ORCPT not echoed as Original-Recipient: %r" % r
    assert d.per_message.get("original-envelope-id") == envid, \
        "ENVID not echoed as Original-Envelope-Id: %r" % d.per_message
    assert d.returned is not None and d.returned.get_content_type() == "text/rfc822-headers", \
        "RET=HDRS but the returned part is %r" % (d.returned and d.returned.get_content_type())


def test_notify_success_next_hop_without_dsn_gives_relayed_dsn(lab):
    mta = lab.mta
    mid = "relayed-%s@test" % uid()
    envid = "relay-%s" % uid()
    final, rr = send_message(mta.port, SENDER, ["user@nodsn.test"], make_message(mid, frm=SENDER, to="user@nodsn.test"),
                             mail_params="ENVID=%s" % envid,
                             rcpt_params="NOTIFY=SUCCESS ORCPT=rfc822;user.orig@nodsn.test")
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    got = lab.nodsn_mx.wait(mid.encode(), timeout=20)
    assert got, "not relayed to nodsn.test; log:\n%s" % mta.log_excerpt(qid)
    env, _ = got[0]
    assert not any(o.upper().startswith(("NOTIFY=", "ORCPT=")) for o in env["rcpt_options"][0]), \
        "DSN parameters sent to a server that does not offer DSN: %r" % env["raw_rcpts"]
    d = wait_dsn(lab, mid.encode())
    kinds = bounce_kinds(mta, qid)
    assert kinds == ["relayed"], "expected a 'relayed' DSN, got %r; log:\n%s" % (kinds, mta.log_excerpt(qid))
    r = d.recipients[0]
    assert r.get("action", "").lower() == "relayed", r
    assert r.get("status", "").startswith("2."), r
    assert "user@nodsn.test" in r.get("final-recipient", "").lower(), r
    assert r.get("original-recipient", "").split(";", 1)[-1].strip() == "user.orig@nodsn.test", r
    assert d.per_message.get("original-envelope-id") == envid, d.per_message
    assert lab.addr[4] in r.get("remote-mta", "") or "mx.nodsn.test" in r.get("remote-mta", "").lower(), \
        "Remote-MTA does not name the next hop: %r" % r


def test_notify_success_next_hop_with_dsn_gets_the_request_and_no_dsn_is_sent(lab):
    mta = lab.mta
    mid = "passon-%s@test" % uid()
    final, rr = send_message(mta.port, SENDER, ["user@dsn.test"], make_message(mid, frm=SENDER, to="user@dsn.test"),
                             rcpt_params="NOTIFY=SUCCESS")
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    got = lab.dsn_mx.wait(mid.encode(), timeout=20)
    assert got, "not relayed to dsn.test; log:\n%s" % mta.log_excerpt(qid)
    env, _ = got[0]
    assert any(o.upper() == "NOTIFY=SUCCESS" for o in env["rcpt_options"][0]), \
        "NOTIFY=SUCCESS not passed on to a DSN-capable next hop: %r" % env["raw_rcpts"]
    time.sleep(3)
    assert not lab.sender_mx.find(mid.encode()), "a DSN was sent although the next hop took over DSN duty"
    kinds = bounce_kinds(mta, qid)
    assert kinds == [], "no DSN expected, got %r; log:\n%s" % (kinds, mta.log_excerpt(qid))


@pytest.mark.parametrize("ret", ["HDRS", "FULL"])
def test_failure_dsn_returns_headers_or_full_message(lab, ret):
    mta = lab.mta
    tag = uid()
    mid = "ret-%s-%s@test" % (ret.lower(), tag)
    msg = make_message(mid, frm=SENDER, to="carol@example.test", subject="ret-%s" % tag, body=big_body(tag))
    final, rr = send_message(mta.port, SENDER, ["carol@example.test"], msg, mail_params="RET=%s" % ret)
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    d = wait_dsn(lab, ("ret-%s" % tag).encode())
    kinds = bounce_kinds(mta, qid)
    assert kinds == ["failed"], "expected a 'failed' DSN, got %r; log:\n%s" % (kinds, mta.log_excerpt(qid))
    r = d.recipients[0]
    assert r.get("action", "").lower() == "failed" and r.get("status") == "5.2.2", r
    assert d.returned is not None, "no returned part in the DSN: %r" % d.data[:3000]
    returned = d.returned_bytes()
    assert b"ret-%s" % tag.encode() in returned, "the returned part lacks the Subject: %r" % returned[:1000]
    if ret == "HDRS":
        assert d.returned.get_content_type() == "text/rfc822-headers", d.returned.get_content_type()
        assert b"BODY-MARKER" not in d.data, "RET=HDRS but the body came back"
    else:
        assert d.returned.get_content_type() == "message/rfc822", d.returned.get_content_type()
        assert b"BODY-MARKER " + tag.encode() in returned, "RET=FULL but the body is missing: %r" % returned[:1500]


def test_notify_never_suppresses_the_failure_dsn(lab):
    mta = lab.mta
    tag = uid()
    mid = "never-%s@test" % tag
    msg = make_message(mid, frm=SENDER, to="carol@example.test", body=big_body(tag))
    final, rr = send_message(mta.port, SENDER, ["carol@example.test"], msg, rcpt_params="NOTIFY=NEVER")
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    ln = mta.wait_event(lambda l: l.event == "failed" and l.id == qid, timeout=20)
    assert ln, "carol's over-quota delivery never failed; log:\n%s" % mta.log_excerpt(qid)
    time.sleep(3)
    assert not lab.sender_mx.find(mid.encode()), "NOTIFY=NEVER but a DSN was sent"
    kinds = bounce_kinds(mta, qid)
    assert kinds == [], "no DSN expected, got %r; log:\n%s" % (kinds, mta.log_excerpt(qid))
    assert st.wait_until(lambda: not [f for f in mta.queue_files() if f.endswith(qid)], 10), \
        "the failed message stays queued"
