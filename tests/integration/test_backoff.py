"""test_backoff.py - channel backoff and notices with seconds-long values (issue 3), on the seed
configuration with tcp_local given `backoff "PT2S" "PT4S" notices PT6S PT14S`:

- a message whose only MX greets "421" is attempted at arrival + 0, 2, 6, 10, 14 s (the first
  retry waits 2 s, then every 4 s; times read from the log's "deferred" lines, within a
  tolerance);
- at the attempt at age 6 s a delay warning (Action: delayed) is sent, at age 14 s the message is
  returned (Action: failed, the last 4xx status or 4.4.7); both arrive at the sender domain's MX
  through process_dsn -> tcp_notify as proper RFC 3464 reports;
- a daemon restarted in the middle of a backoff interval keeps the stored schedule: the next
  attempt is at the stored time, not at start-up.

Peers (a random 127.X.Y triple): .2 sender.test's MX (sink), .5 down.test's MX (greets 421).
"""
import calendar
import re
import time
import uuid


import sluicetest as st
from sluicetest import make_message, send_message

SENDER = "someone@sender.test"
EARLY = 1.05  # arrival is stored in whole seconds, so an attempt may come up to 1 s "early"
LATE = 1.6    # scheduling slack


def uid():
    return uuid.uuid4().hex[:12]


def make_lab(h, tcp_local):
    lab = st.Lab(h, mx={"sender.test": 2, "down.test": 5})
    lab.sender_mx = lab.start_sink(2, name="sender-mx")
    lab.busy = lab.start_busy(5)
    lab.mta = lab.seed_sluice(tcp_local=tcp_local)
    return lab


def send_down(lab, tag, **kw):
    mid = "backoff-%s@test" % tag
    final, rr = send_message(lab.mta.port, SENDER, ["user@down.test"],
                             make_message(mid, frm=SENDER, to="user@down.test"), **kw)
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    acc = [ln for ln in lab.mta.events("accepted") if ln.id == qid]
    assert acc, lab.mta.log_excerpt(qid)
    return mid, qid, acc[0].time


def attempts(mta, qid):
    """attempts - (time, attempts=N, status) of each deferred/failed line of qid on tcp_local."""
    return [(ln.time, int(ln.kv.get("attempts", "-1")), ln.event, ln.kv.get("status"))
            for ln in mta.log() if ln.id == qid and ln.event in ("deferred", "failed")
            and ln.kv.get("channel") == "tcp_local"]


def check_times(got, arrival, offsets, what):
    times = [t for t, *_ in got]
    assert len(times) == len(offsets), "%s: %d attempts at %r, expected %d at arrival+%r" % (
        what, len(times), [round(t - arrival, 2) for t in times], len(offsets), offsets)
    for t, off in zip(times, offsets):
        rel = t - arrival
        assert off - EARLY <= rel <= off + LATE, "%s: attempts at arrival+%r s, expected +%r s" % (
            what, [round(x - arrival, 2) for x in times], offsets)


def one_dsn(lab, needle, action, timeout):
    """one_dsn - the DSN about needle with the given Action at the sender's MX (waits)."""
    def find():
        out = []
        for env, content in lab.sender_mx.find(needle):
            d = st.DSN(content)
            if action in d.actions():
                out.append((env, d))
        return out
    got = st.wait_until(find, timeout)
    assert got, "no %s DSN about %r at the sender's MX; log:\n%s" % (action, needle, lab.mta.log_excerpt(
        "bounce", "deferred", "failed"))
    assert len(got) == 1, "%d %s DSNs" % (len(got), action)
    env, d = got[0]
    assert st.null_sender(env) and env["rcpt_tos"] == [SENDER], env
    assert d.content_type == "multipart/report" and d.report_type == "delivery-status", d
    assert d.per_message.get("reporting-mta"), d.per_message
    assert len(d.recipients) == 1, d.recipients
    r = d.recipients[0]
    assert "user@down.test" in r.get("final-recipient", "").lower(), r
    return d, r


def test_backoff_times_delay_warning_and_return(harness):
    lab = make_lab(harness, 'smtp mx backoff "PT2S" "PT4S" notices PT6S PT14S')
    mta = lab.mta
    mid, qid, arrival = send_down(lab, uid())

    # The return comes at age 14 s; wait for it (bounded).
    ln = mta.wait_event(lambda l: l.event == "failed" and l.id == qid, timeout=30)
    assert ln, "never returned; attempts so far at %r; log:\n%s" % (
        [round(t - arrival, 2) for t, *_ in attempts(mta, qid)], mta.log_excerpt(qid))
    got = attempts(mta, qid)
    check_times(got, arrival, [0, 2, 6, 10, 14], "backoff PT2S PT4S")
    assert [n for _, n, *_ in got] == [1, 2, 3, 4, 5], "attempt counters: %r" % got
    assert [e for _, _, e, _ in got] == ["deferred"] * 4 + ["failed"], got
    assert all(s and s.startswith("4.") for _, _, e, s in got[:4]), got
    ret_status = got[-1][3]
    assert ret_status in ("4.3.2", "4.4.7"), "return status %r: expected the last 4xx (4.3.2) or 4.4.7" % ret_status

    # Notices: a delay warning at the attempt at age 6 s, the return at 14 s (log and DSNs).
    # The bounce line is logged once the DSN is committed, just after the "failed" line.
    mta.wait_event(lambda l: l.event == "bounce" and l.id == qid and l.kv.get("kind") == "failed", timeout=10)
    bounces = [(ln.time - arrival, ln.kv.get("kind")) for ln in mta.events("bounce") if ln.id == qid]
    assert [k for _, k in bounces] == ["delayed", "failed"], "bounce lines: %r" % bounces
    assert 6 - EARLY <= bounces[0][0] <= 6 + LATE + 0.5, "delay warning at age %.2f s" % bounces[0][0]
    assert 14 - EARLY <= bounces[1][0] <= 14 + LATE + 0.5, "return at age %.2f s" % bounces[1][0]

    d, r = one_dsn(lab, mid.encode(), "delayed", 15)
    assert r.get("action", "").lower() == "delayed", r
    assert r.get("status", "").startswith("4."), "delay DSN status %r" % r
    assert "421" in r.get("diagnostic-code", ""), "delay DSN does not carry the 421: %r" % r
    d, r = one_dsn(lab, mid.encode(), "failed", 15)
    assert r.get("status") == ret_status, "returned DSN status %r, the log said %r" % (r.get("status"), ret_status)
    assert lab.addr[5] in r.get("remote-mta", "") or "mx.down.test" in r.get("remote-mta", "").lower() \
        or "421" in r.get("diagnostic-code", ""), "the return does not report the real attempt: %r" % r

    # Both DSNs left through tcp_notify; after the return nothing is tried any more.
    for env, content in lab.sender_mx.find(mid.encode()):
        assert st.null_sender(env)
    dsn_ids = [ln.kv.get("id") for ln in mta.events("requeued") if ln.kv.get("from_channel") == "process_dsn"]
    notify_queued = [ln for ln in mta.events("queued", channel="tcp_notify") if ln.id in dsn_ids]
    assert len(notify_queued) >= 2, "the DSNs did not go through process_dsn -> tcp_notify:\n%s" % \
        mta.log_excerpt("requeued", "tcp_notify")
    conns = lab.busy.connections()
    assert conns == 5, "the 421 server saw %d connections for 5 attempts" % conns
    time.sleep(3)
    assert lab.busy.connections() == conns, "attempts after the message was returned"
    assert not [f for f in mta.queue_files() if f.endswith(qid)], "the returned message is still queued"


def test_restart_keeps_the_backoff_schedule(harness):
    lab = make_lab(harness, 'smtp mx backoff "PT8S" notices PT60S')
    mta = lab.mta
    mid, qid, arrival = send_down(lab, uid())
    first = mta.wait_event(lambda l: l.event == "deferred" and l.id == qid, timeout=10)
    assert first, "no first attempt; log:\n%s" % mta.log_excerpt(qid)
    assert first.time - arrival < LATE, "first attempt at +%.2f s" % (first.time - arrival)
    time.sleep(max(0.0, arrival + 2.5 - time.time()))
    mta.stop()
    assert not mta.problems, mta.problems

    # Offline, the queue shows the stored next attempt: arrival + 8 s.
    r = mta.queue("show", qid)
    assert r.returncode == 0, "queue show (offline): %r %r" % (r.stdout, r.stderr)
    m = re.search(r"^rcpt: <user@down.test>.*\battempts=1\b.*\bnext=(\S+)", r.stdout, re.M)
    assert m, "queue show does not list the recipient with attempts=1:\n%s" % r.stdout
    stored = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ"))
    assert 8 - EARLY <= stored - arrival <= 8 + 1, "stored next attempt %s is arrival+%.2f s" % (
        m.group(1), stored - arrival)

    conns = lab.busy.connections()
    mta.start()
    restarted = time.time()
    assert restarted < arrival + 6, "restart took too long to test anything (%.1f s)" % (restarted - arrival)
    nxt = mta.wait_event(lambda l: l.event == "deferred" and l.id == qid
                         and l.time > first.time, timeout=15)
    assert nxt, "no attempt after the restart; log:\n%s" % mta.log_excerpt(qid)
    assert nxt.time >= stored - 0.05, "attempt at +%.2f s after a restart at +%.2f s: the stored time was +%d s" % (
        nxt.time - arrival, restarted - arrival, stored - arrival)
    assert nxt.time <= stored + LATE, "attempt at +%.2f s, stored for +%d s" % (nxt.time - arrival, stored - arrival)
    assert nxt.kv.get("attempts") == "2", "the attempt counter did not survive the restart: %s" % nxt.raw
    assert lab.busy.connections() == conns + 1, "connections: %d before restart, %d after" % (
        conns, lab.busy.connections())
    assert not lab.sender_mx.find(mid.encode()), "a DSN was sent (notices PT60S)"
