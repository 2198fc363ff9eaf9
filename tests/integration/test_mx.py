"""test_mx.py - the SMTP client channel against real peers: MX preference and fallback over a
refusing host and a "421 busy" host, DSN parameters passed on intact, null MX (RFC 7505)
bounces, retry after every MX refused, and per-recipient failures at the next hop.

DNS comes from our own dnsmasq on a free port; every MX host is a loopback address of a random
127.X.Y triple owned by this module, all on one free port (the channel's "port N").
"""
import re
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message


def uid():
    return uuid.uuid4().hex[:16]


@pytest.fixture(scope="module")
def lab(module_harness):
    lab = st.Lab(module_harness, mx={
        "mxtest.test": [2, 3, 4],  # mx1..mx3, preferences 10..30: .2 refuses, .3 says 421, .4 is the sink
        "nullmx.test": None,       # "MX 0 ." (RFC 7505)
        "retry.test": 5,           # nobody listens until the test starts a sink there
        "split.test": 6,           # a sink that refuses one recipient
    })
    lab.busy = lab.start_busy(3)
    lab.sink = lab.start_sink(4, name="sink-mx3")
    lab.split_sink = lab.start_sink(6, name="sink-split", reject=["bad@split.test"])
    lab.mta = lab.sluice(tcp_local="smtp mx port %d" % lab.port)
    return lab


def no_bare_eol(data):
    return not st.BARE_CR.search(data) and not st.BARE_LF.search(data)


def option_map(options):
    """option_map - {"NAME": "value"} of ESMTP parameters (names upper-cased, values kept)."""
    out = {}
    for o in options:
        k, _, v = o.partition("=")
        out[k.upper()] = v
    return out


def find_bounce(mta, addr, needle, timeout=30):
    files = mta.wait_message(addr, needle, timeout=timeout)
    return files


def check_bounce_form(data):
    """check_bounce_form - assert the RFC 3464 shape of a delivered bounce; returns its recipient blocks."""
    prefix_fields = st.header_fields(st.split_header(data)[0])
    rp = [v for n, v in prefix_fields if n.lower() == "return-path"]
    assert rp and rp[0] == b"<>", "bounce envelope sender is not <>: %r" % rp
    msg = st.parse_mail(data)
    assert "mailer-daemon" in (msg.get("From") or "").lower(), "bounce From: %r" % msg.get("From")
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert (msg.get_param("report-type") or "").lower() == "delivery-status", msg.get("Content-Type")
    blocks = st.dsn_recipient_blocks(data)
    assert blocks, "no message/delivery-status part with a Final-Recipient in:\n%r" % data[:3000]
    return blocks


def test_mx_fallback_delivers_once_with_dsn_parameters(lab):
    mta, sink = lab.mta, lab.sink
    mid = "mx-%s@test" % uid()
    msg = make_message(mid, to="user@mxtest.test", body=b"Line one.\r\n.dot line\r\n..two dots\r\nend\r\n")
    final, rr = send_message(mta.port, "alice@example.test", ["user@mxtest.test"], msg,
                             mail_params="RET=HDRS ENVID=abc+2Bdef",
                             rcpt_params="NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;user+2Bx@mxtest.test")
    assert rr[0].code == 250, rr
    assert final.code == 250, final
    qid = st.queue_id(final)
    got = sink.wait(mid.encode(), timeout=40)
    assert got, "message never reached the third MX (%s); busy server saw %d connections; log:\n%s" % (
        lab.addr[4], lab.busy.connections(), mta.log_excerpt(qid, "user@mxtest.test"))
    time.sleep(4)  # longer than retry_max: a second delivery would show up now
    got = sink.find(mid.encode())
    assert len(got) == 1, "delivered %d times to the sink; log:\n%s" % (len(got), mta.log_excerpt(qid))
    env, content = got[0]
    assert lab.busy.connections() >= 1, "the preference-20 MX (421 busy) was never tried"
    assert env["mail_from"] == "alice@example.test", env
    mo = option_map(env["mail_options"])
    assert mo.get("RET", "").upper() == "HDRS", "RET lost: %r" % env["raw_mail"]
    assert mo.get("ENVID") == "abc+2Bdef", "ENVID not intact: %r" % env["raw_mail"]
    assert env["rcpt_tos"] == ["user@mxtest.test"], env
    ro = option_map(env["rcpt_options"][0])
    assert set(ro.get("NOTIFY", "").upper().split(",")) == {"SUCCESS", "FAILURE"}, "NOTIFY: %r" % env["raw_rcpts"]
    orcpt_type, _, orcpt_addr = ro.get("ORCPT", "").partition(";")
    assert orcpt_type.lower() == "rfc822" and orcpt_addr == "user+2Bx@mxtest.test", "ORCPT: %r" % env["raw_rcpts"]
    assert no_bare_eol(content), "bare CR or LF in what the next hop received: %r" % content
    assert content.endswith(msg), "message changed on the way: %r" % content


def test_null_mx_bounces_5_1_10(lab):
    mta = lab.mta
    mid = "nullmx-%s@test" % uid()
    final, rr = send_message(mta.port, "alice@example.test", ["user@nullmx.test"],
                             make_message(mid, to="user@nullmx.test"))
    assert rr[0].code == 250, rr
    assert final.code == 250, final
    qid = st.queue_id(final)
    bounces = find_bounce(mta, "alice@example.test", mid.encode())
    assert bounces, "no bounce for a null-MX domain in alice's Maildir; log:\n%s" % mta.log_excerpt(qid)
    time.sleep(2)
    bounces = mta.find_messages("alice@example.test", mid.encode())
    assert len(bounces) == 1, "%d bounces" % len(bounces)
    blocks = check_bounce_form(bounces[0])
    assert len(blocks) == 1, blocks
    b = blocks[0]
    assert "user@nullmx.test" in b["final-recipient"].lower(), b
    assert b.get("action", "").lower() == "failed", b
    assert b.get("status") == "5.1.10", b


def test_all_mx_refuse_then_retried_and_delivered(lab):
    mta = lab.mta
    mid = "retry-%s@test" % uid()
    rcpt = "user@retry.test"
    final, _ = send_message(mta.port, "alice@example.test", [rcpt], make_message(mid, to=rcpt))
    assert final.code == 250, final
    qid = st.queue_id(final)
    ln = mta.wait_event(lambda l: l.event == "deferred" and (l.id == qid or qid in l.raw or rcpt in l.raw),
                        timeout=20)
    assert ln, "no 'deferred' event while every MX refused; log:\n%s" % mta.log_excerpt(qid, rcpt)
    assert ln.kv.get("status", "4.").startswith("4."), "deferral with a non-temporary status: %s" % ln.raw
    assert not mta.find_messages("alice@example.test", mid.encode()), "a refused connection caused a bounce"
    sink = lab.start_sink(5, name="sink-retry")
    got = sink.wait(mid.encode(), timeout=30)
    assert got, "not delivered after the MX came up; log:\n%s" % mta.log_excerpt(qid, rcpt)
    time.sleep(4)
    got = sink.find(mid.encode())
    assert len(got) == 1, "delivered %d times" % len(got)
    assert got[0][0]["rcpt_tos"] == [rcpt]
    assert no_bare_eol(got[0][1])


def test_next_hop_550_for_one_of_two_recipients(lab):
    mta, sink = lab.mta, lab.split_sink
    mid = "split-%s@test" % uid()
    final, rr = send_message(mta.port, "bob@example.test", ["good@split.test", "bad@split.test"],
                             make_message(mid, frm="bob@example.test", to="good@split.test"))
    assert [r.code for r in rr] == [250, 250], rr
    assert final.code == 250, final
    qid = st.queue_id(final)
    got = sink.wait(mid.encode(), timeout=30)
    assert got, "good@split.test never got the message; log:\n%s" % mta.log_excerpt(qid)
    bounces = find_bounce(mta, "bob@example.test", mid.encode())
    assert bounces, "no bounce to bob for bad@split.test; log:\n%s" % mta.log_excerpt(qid)
    time.sleep(4)
    got = sink.find(mid.encode())
    assert len(got) == 1, "sink got %d copies" % len(got)
    assert got[0][0]["rcpt_tos"] == ["good@split.test"], got[0][0]
    bounces = mta.find_messages("bob@example.test", mid.encode())
    assert len(bounces) == 1, "%d bounces" % len(bounces)
    blocks = check_bounce_form(bounces[0])
    assert len(blocks) == 1, "the bounce reports more than the refused recipient: %r" % blocks
    b = blocks[0]
    assert "bad@split.test" in b["final-recipient"].lower(), b
    assert b.get("action", "").lower() == "failed", b
    assert b.get("status") == "5.1.1", b
    diag = b.get("diagnostic-code", "")
    assert not diag or re.search(r"\b550\b", diag), "Diagnostic-Code does not carry the 550: %r" % b
