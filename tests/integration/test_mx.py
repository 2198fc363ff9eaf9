"""test_mx.py - the SMTP client channel against real peers: MX preference and fallback over a
refusing host and a "421 busy" host, DSN parameters passed on intact, null MX (RFC 7505)
bounces, retry after every MX refused, per-recipient failures at the next hop, and seed 002:
a 4xx to RCPT at one MX sends that recipient to the next MX in the same attempt, and attempts
do not keep beginning at the same failing host among MX hosts of equal preference.

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
    net = st.loopback_net()
    lab = st.Lab(module_harness, net=net, mx={
        "mxtest.test": [2, 3, 4],  # mx1..mx3, preferences 10..30: .2 refuses, .3 says 421, .4 is the sink
        "nullmx.test": None,       # "MX 0 ." (RFC 7505)
        "retry.test": 5,           # nobody listens until the test starts a sink there
        "split.test": 6,           # a sink that refuses one recipient
        "soft.test": [7, 8],       # seed 002: MX 10 soft-fails some recipients (450), MX 20 may take them
    }, hosts=(9, 10, 11, 12), records=[
        # eq.test: two MX 10, a.eq.test always busy (421), b.eq.test a sink.
        "mx-host=eq.test,a.eq.test,10",
        "mx-host=eq.test,b.eq.test,10",
        "host-record=a.eq.test,%s.9" % net,
        "host-record=b.eq.test,%s.10" % net,
        # rot.test: two MX 10, both always busy.
        "mx-host=rot.test,x.rot.test,10",
        "mx-host=rot.test,y.rot.test,10",
        "host-record=x.rot.test,%s.11" % net,
        "host-record=y.rot.test,%s.12" % net,
    ], probe="mxtest.test")
    lab.busy = lab.start_busy(3)
    lab.sink = lab.start_sink(4, name="sink-mx3")
    lab.split_sink = lab.start_sink(6, name="sink-split", reject=["bad@split.test"])
    lab.soft1 = lab.start_sink(7, name="sink-soft1", tempfail=["b@soft.test", "c@soft.test"], reject=["d@soft.test"])
    lab.soft2 = lab.start_sink(8, name="sink-soft2", tempfail=["c@soft.test"])
    lab.eq_busy = lab.start_busy(9)
    lab.eq_sink = lab.start_sink(10, name="sink-eq")
    lab.rot_x = lab.start_busy(11)
    lab.rot_y = lab.start_busy(12)
    lab.mta = lab.sluice(tcp_local="smtp mx port %d" % lab.port, start=False)
    # eq.test has a channel of its own whose connections carry one message each, so that every
    # message to it is a new attempt (MX lookup and ordering) rather than a kept connection.
    lab.mta.write("sluice.cnf", st.sluice_cnf("smtp mx port %d" % lab.port).replace(
        ".              $U%$H@tcp_local-daemon\n",
        "eq.test        $U%$D@tcp_eq-daemon\n.              $U%$H@tcp_local-daemon\n") +
        "\ntcp_eq smtp mx port %d\ntcp_eq-daemon\n" % lab.port)
    lab.mta.write("tcp_eq_option", "MAX_MESSAGES_PER_CONNECTION=1\n")
    lab.mta.start()
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


def test_4xx_to_rcpt_goes_to_the_next_mx_in_the_same_attempt(lab):
    """Seed 002: MX 10 answers 450 to b and c and 550 to d; MX 20 takes b and answers 450 to c.
    a is delivered by MX 10, b by MX 20 in the same attempt (no deferral first), c is deferred
    once both said 450, and d bounces without ever being offered to MX 20."""
    mta = lab.mta
    mid = "soft-%s@test" % uid()
    rcpts = ["a@soft.test", "b@soft.test", "c@soft.test", "d@soft.test"]
    final, rr = send_message(mta.port, "bob@example.test", rcpts,
                             make_message(mid, frm="bob@example.test", to="a@soft.test"))
    assert [r.code for r in rr] == [250] * 4, rr
    assert final.code == 250, final
    qid = st.queue_id(final)
    got1 = lab.soft1.wait(mid.encode(), timeout=30)
    got2 = lab.soft2.wait(mid.encode(), timeout=30)
    assert got1 and got2, "MX 10 got %d, MX 20 got %d copies; log:\n%s" % (len(got1 or []), len(got2 or []),
                                                                      mta.log_excerpt(qid))
    assert got1[0][0]["rcpt_tos"] == ["a@soft.test"], got1[0][0]
    assert got2[0][0]["rcpt_tos"] == ["b@soft.test"], got2[0][0]

    def deliveries(rcpt):
        return [ln for ln in mta.events("delivery") if ln.id == qid and ln.kv.get("rcpt") == "<%s>" % rcpt]

    ok = st.wait_until(lambda: deliveries("c@soft.test") and deliveries("b@soft.test"), 20)
    assert ok, "no delivery lines for b and c; log:\n%s" % mta.log_excerpt(qid)
    b = deliveries("b@soft.test")
    assert b[0].kv.get("result") == "sent" and b[0].kv.get("relay") == "mx2.soft.test", \
        "b was not delivered by MX 20 in the first attempt:\n%s" % mta.log_excerpt(qid)
    c = deliveries("c@soft.test")[0]
    assert c.kv.get("result") == "deferred" and c.kv.get("relay") == "mx2.soft.test", c.raw
    assert c.kv.get("status") == "4.2.0", c.raw
    a = deliveries("a@soft.test")
    assert a[0].kv.get("result") == "sent" and a[0].kv.get("relay") == "mx1.soft.test", a
    moved = [ln.kv.get("rcpt") for ln in mta.events("next_host") if ln.id == qid]
    assert moved[:2] == ["<b@soft.test>", "<c@soft.test>"], "next_host lines: %r" % moved
    assert "<d@soft.test>" not in moved and "<a@soft.test>" not in moved, moved

    bounces = find_bounce(mta, "bob@example.test", mid.encode())
    assert bounces, "no bounce to bob for d@soft.test; log:\n%s" % mta.log_excerpt(qid)
    blocks = check_bounce_form(bounces[0])
    assert [b["final-recipient"].lower().split(";")[-1].strip() for b in blocks] == ["d@soft.test"], blocks
    assert blocks[0].get("status") == "5.1.1", blocks
    time.sleep(3)  # longer than retry_max: c is retried meanwhile, nothing is delivered twice
    assert [e["rcpt_tos"] for e, _ in lab.soft1.find(mid.encode())] == [["a@soft.test"]]
    assert [e["rcpt_tos"] for e, _ in lab.soft2.find(mid.encode())] == [["b@soft.test"]]
    assert ("550", "d@soft.test") not in [(str(c), a) for c, a in lab.soft2.refused()]
    assert (550, "d@soft.test") in lab.soft1.refused()
    assert lab.soft2.refused().count((450, "c@soft.test")) >= 2, "c was not retried at MX 20: %r" % lab.soft2.refused()


def test_a_failing_mx_is_not_tried_first_again(lab):
    """Seed 002 (retries): a.eq.test and b.eq.test are both MX 10, a always answers 421. Once a
    has failed, the next messages to eq.test begin at b: in 8 messages (one connection each) a
    sees at most one connection (with a random order, about 4; at most one has a chance of 9 in
    256), and every attempt after a's failure logs the order b, a."""
    mta = lab.mta
    mids = []
    for n in range(8):
        mid = "eq%d-%s@test" % (n, uid())
        final, _ = send_message(mta.port, "alice@example.test", ["user@eq.test"], make_message(mid, to="user@eq.test"))
        assert final.code == 250, final
        got = lab.eq_sink.wait(mid.encode(), timeout=20)
        assert got, "message %d not delivered by b.eq.test; log:\n%s" % (n, mta.log_excerpt(st.queue_id(final)))
        mids.append(mid)
    assert lab.eq_busy.connections() <= 1, "a.eq.test was tried first %d times; log:\n%s" % (
        lab.eq_busy.connections(), mta.log_excerpt("eq.test"))
    starts = [ln for ln in mta.events("job_start") if ln.kv.get("host") == "eq.test"]
    assert len(starts) == 8, "not one job per message: %r" % starts
    failed = [ln for ln in mta.events("session_failed") if ln.kv.get("host") == "a.eq.test"]
    orders = [ln for ln in mta.events("mx_order") if ln.kv.get("host") == "eq.test"]
    assert len(failed) == lab.eq_busy.connections(), failed
    assert failed or not orders, "reordered although a.eq.test never failed: %r" % orders
    if failed:
        after = [ln for ln in starts if ln.time > failed[0].time]
        assert len(orders) == len(after), "attempts after a.eq.test failed: %d, reordered: %r" % (len(after), orders)
        assert all(ln.kv.get("order") == "b.eq.test,a.eq.test" for ln in orders), orders
        assert all(ln.kv.get("failing") == "a.eq.test" for ln in orders), orders


def test_attempts_begin_at_each_failing_mx_in_turn(lab):
    """Seed 002 (retries): x.rot.test and y.rot.test are both MX 10 and both answer 421. The
    message is retried every second or two; each attempt begins at the host the previous one
    did not begin at (with a random order, 5 alternating attempts have a chance of 1 in 16)."""
    mta = lab.mta
    mid = "rot-%s@test" % uid()
    final, _ = send_message(mta.port, "alice@example.test", ["user@rot.test"], make_message(mid, to="user@rot.test"))
    assert final.code == 250, final
    qid = st.queue_id(final)

    def attempts():
        """attempts - the hosts each finished attempt tried, in order (session_failed, then delivery)."""
        out, cur = [], []
        for ln in mta.log():
            if ln.id != qid:
                continue
            if ln.event == "session_failed":
                cur.append(ln.kv.get("host"))
            elif ln.event == "delivery":
                out.append(cur)
                cur = []
        return out

    got = st.wait_until(lambda: len(attempts()) >= 5 and attempts(), 40)
    assert got, "fewer than 5 attempts; log:\n%s" % mta.log_excerpt(qid)
    firsts = [a[0] for a in got[:5]]
    assert all(sorted(a) == ["x.rot.test", "y.rot.test"] for a in got[:5]), got
    assert all(firsts[i] != firsts[i + 1] for i in range(4)), "attempts began at %r; log:\n%s" % (
        firsts, mta.log_excerpt(qid))
    deferred = [ln for ln in mta.events("delivery") if ln.id == qid]
    assert all(ln.kv.get("result") == "deferred" for ln in deferred), deferred
