"""test_queue_admin.py - `sluice queue` (issue 3) changes what is delivered, on a live daemon
(through QUEUE/control.sock) and on a stopped one (on the files):

- hold keeps a deferred message from being delivered once its MX is up, release lets it go;
- delete drops a message (the others of the channel still go);
- return bounces a message at once (a failed DSN to the sender);
- retry ID / retry CHANNEL make a message backed off for an hour go now;
- offline: hold/release move the file to and from QUEUE/.held/, return moves it to
  QUEUE/.return/ and the daemon bounces it at its next start, retry makes it due at once,
  delete removes it; list, show and summary read the files.

The configuration is issue 3's seed plus a channel tcp_slow (`backoff "PT1H"`) for the domains
retry.test, delete.test, return.test and offline.test; hold.test goes by tcp_local
(`backoff "PT2S"`). Every destination MX is a loopback address of this test's 127.X.Y triple
where nothing listens until the test starts a sink there; DSNs go to sender.test's MX (.2).
"""
import calendar
import os
import re
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message

SENDER = "someone@sender.test"
DOMAINS = {"hold.test": 6, "retry.test": 7, "delete.test": 8, "return.test": 9, "offline.test": 10}


def uid():
    return uuid.uuid4().hex[:12]


def make_lab(h):
    lab = st.Lab(h, mx={"sender.test": 2, **DOMAINS})
    lab.sender_mx = lab.start_sink(2, name="sender-mx")
    lab.sinks = {}
    rules = "".join("%s  $U%%$D@tcp_slow-daemon\n" % d for d in DOMAINS if d != "hold.test")
    lab.mta = lab.seed_sluice(tcp_local='smtp mx backoff "PT2S"', extra_rules=rules,
                              extra_channels='tcp_slow smtp mx backoff "PT1H" port %d\ntcp_slow-daemon\n' % lab.port)
    return lab


def sink_up(lab, domain):
    """sink_up - start the MX of domain (nothing listened there so far)."""
    if domain not in lab.sinks:
        lab.sinks[domain] = lab.start_sink(DOMAINS[domain], name="mx-" + domain)
    return lab.sinks[domain]


@pytest.fixture(scope="module")
def lab(module_harness):
    return make_lab(module_harness)


def send_deferred(lab, rcpt, tag):
    """send_deferred - send one message to rcpt and wait for its first (failed) attempt; (message-id, queue id)."""
    mta = lab.mta
    mid = "qadm-%s@test" % tag
    final, rr = send_message(mta.port, SENDER, [rcpt], make_message(mid, frm=SENDER, to=rcpt))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    ln = mta.wait_event(lambda l: l.event == "deferred" and l.id == qid, timeout=15)
    assert ln, "no deferred attempt for %s; log:\n%s" % (rcpt, mta.log_excerpt(qid))
    return mid, qid


def queue_ok(mta, *args, retries=20):
    """queue_ok - run `sluice queue ARGS`, retrying (bounded) while the message is busy; assert exit 0."""
    for _ in range(retries):
        r = mta.queue(*args)
        if r.returncode == 1 and "busy" in r.stdout:
            time.sleep(0.25)
            continue
        break
    assert r.returncode == 0, "sluice queue %s: exit %d\nstdout: %s\nstderr: %s\nlog:\n%s" % (
        " ".join(args), r.returncode, r.stdout, r.stderr, mta.log_excerpt("admin", "control"))
    return r.stdout


def admin_lines(mta, qid, action):
    """admin_lines - the "admin action=..." log lines of qid (waits briefly for the first)."""
    return st.wait_until(lambda: [ln for ln in mta.events("admin", action=action) if ln.id == qid], 3) or []


def files_of(mta, qid):
    """files_of - every file of qid under the queue directory (queued, .held, .return)."""
    out = []
    for dirpath, _dirs, files in os.walk(mta.queue_dir):
        out.extend(os.path.join(dirpath, f) for f in files if f == qid or f.endswith("." + qid))
    return out


def list_states(mta, *args):
    """list_states - {id: state} from `sluice queue list` (lines "ID CHANNEL STATE ...")."""
    out = {}
    for line in queue_ok(mta, "list", *args).splitlines():
        f = line.split()
        if len(f) >= 3:
            out[f[0]] = (f[1], f[2])
    return out


def failed_dsn(lab, mid, timeout=20):
    got = lab.sender_mx.wait(mid.encode(), timeout=timeout)
    assert got, "no DSN about %s at the sender's MX; log:\n%s" % (mid, lab.mta.log_excerpt("bounce", "admin"))
    assert len(got) == 1, "%d DSNs" % len(got)
    env, content = got[0]
    assert st.null_sender(env) and env["rcpt_tos"] == [SENDER], env
    d = st.DSN(content)
    assert d.content_type == "multipart/report" and d.actions() == ["failed"], content[:3000]
    return d


# ---------------------------------------------------------------- live daemon

def test_live_hold_prevents_delivery_and_release_allows_it(lab):
    mta = lab.mta
    mid, qid = send_deferred(lab, "user@hold.test", uid())
    queue_ok(mta, "hold", qid)
    assert admin_lines(mta, qid, "hold"), mta.log_excerpt(qid)
    held = os.path.join(mta.queue_dir, ".held", "tcp_local." + qid)
    assert files_of(mta, qid) == [held], "held file not (only) in QUEUE/.held: %r" % files_of(mta, qid)
    st_ = list_states(mta).get(qid)
    assert st_ is None or st_[1] == "held", "a held message is listed as %r" % (st_,)

    sink = sink_up(lab, "hold.test")
    deferred_before = len([ln for ln in mta.events("deferred") if ln.id == qid])
    time.sleep(6)  # three backoff intervals of tcp_local
    assert not sink.find(mid.encode()), "a held message was delivered"
    assert len([ln for ln in mta.events("deferred") if ln.id == qid]) == deferred_before, \
        "a held message was attempted:\n%s" % mta.log_excerpt(qid)

    queue_ok(mta, "release", qid)
    assert admin_lines(mta, qid, "release"), mta.log_excerpt(qid)
    got = sink.wait(mid.encode(), timeout=10)
    assert got, "a released message was not delivered; log:\n%s" % mta.log_excerpt(qid)
    assert st.wait_until(lambda: not files_of(mta, qid), 5), files_of(mta, qid)
    time.sleep(1)
    assert len(sink.find(mid.encode())) == 1


def test_live_retry_id_sends_a_backed_off_message_now(lab):
    mta = lab.mta
    mid, qid = send_deferred(lab, "user@retry.test", uid())
    out = queue_ok(mta, "show", qid)
    m = re.search(r"^rcpt: <user@retry.test>.*\bstatus=pending\b.*\battempts=1\b.*\bnext=(\S+)", out, re.M)
    assert m, "queue show:\n%s" % out
    nxt = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ"))
    assert 3500 < nxt - time.time() < 3700, "next attempt %s is not an hour away (backoff PT1H)" % m.group(1)
    summary = queue_ok(mta, "summary")
    rows = [ln.split() for ln in summary.splitlines()]
    assert any(r[:3] == ["tcp_slow", "retry.test", "1"] for r in rows if len(r) >= 3), \
        "no summary row 'tcp_slow retry.test 1':\n%s" % summary
    assert list_states(mta, "tcp_slow").get(qid, (None,))[0] == "tcp_slow"

    sink = sink_up(lab, "retry.test")
    time.sleep(2)
    assert not sink.find(mid.encode()), "delivered before the retry (backoff PT1H)"
    t0 = time.monotonic()
    queue_ok(mta, "retry", qid)
    assert admin_lines(mta, qid, "retry"), mta.log_excerpt(qid)
    got = sink.wait(mid.encode(), timeout=5)
    assert got, "retry did not send the message now; log:\n%s" % mta.log_excerpt(qid)
    assert time.monotonic() - t0 < 5
    assert st.wait_until(lambda: not files_of(mta, qid), 5), files_of(mta, qid)


def test_live_delete_drops_a_message_and_retry_channel_sends_the_rest(lab):
    mta = lab.mta
    tag = uid()
    mid_a, qid_a = send_deferred(lab, "a@delete.test", tag + "-a")
    mid_b, qid_b = send_deferred(lab, "b@delete.test", tag + "-b")
    queue_ok(mta, "delete", qid_a)
    assert admin_lines(mta, qid_a, "delete"), mta.log_excerpt(qid_a)
    assert not files_of(mta, qid_a), "deleted message still on disk: %r" % files_of(mta, qid_a)
    r = mta.queue("show", qid_a)
    assert r.returncode == 1, "show of a deleted message: exit %d %r" % (r.returncode, r.stdout)
    assert qid_a not in list_states(mta)

    sink = sink_up(lab, "delete.test")
    queue_ok(mta, "retry", "tcp_slow")
    got = sink.wait(mid_b.encode(), timeout=5)
    assert got, "retry tcp_slow did not send the other message; log:\n%s" % mta.log_excerpt(qid_b)
    time.sleep(2)
    assert not sink.find(mid_a.encode()), "a deleted message was delivered"
    assert not lab.sender_mx.find(mid_a.encode()), "a deleted message was bounced"


def test_live_return_bounces_now(lab):
    mta = lab.mta
    mid, qid = send_deferred(lab, "user@return.test", uid())
    queue_ok(mta, "return", qid)
    assert admin_lines(mta, qid, "return"), mta.log_excerpt(qid)
    d = failed_dsn(lab, mid)
    assert "user@return.test" in d.recipients[0].get("final-recipient", "").lower(), d.recipients
    assert [ln.kv.get("kind") for ln in mta.events("bounce") if ln.id == qid] == ["failed"]
    assert st.wait_until(lambda: not files_of(mta, qid), 5), files_of(mta, qid)
    sink = sink_up(lab, "return.test")
    mta.queue("retry", "tcp_slow")
    time.sleep(2)
    assert not sink.find(mid.encode()), "a returned message was delivered"


def test_queue_unknown_id_and_usage(lab):
    r = lab.mta.queue("show", "NOSUCHID")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    r = lab.mta.queue("frobnicate")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)


# ---------------------------------------------------------------- stopped daemon

def test_offline_hold_delete_return_retry_then_start(harness):
    lab = make_lab(harness)
    mta = lab.mta
    tag = uid()
    msgs = [send_deferred(lab, "u%d@offline.test" % i, "%s-%d" % (tag, i)) for i in range(4)]
    (mid_h, q_h), (mid_d, q_d), (mid_r, q_r), (mid_t, q_t) = msgs
    mta.stop()
    assert not mta.problems, mta.problems
    assert not os.path.exists(os.path.join(mta.queue_dir, "control.sock")), "control.sock left behind"

    states = list_states(mta)
    for _, q in msgs:
        assert states.get(q) == ("tcp_slow", "queued"), "offline list: %r" % states
    summary = queue_ok(mta, "summary")
    assert any(ln.split()[:3] == ["tcp_slow", "offline.test", "4"] for ln in summary.splitlines()), summary

    queue_ok(mta, "hold", q_h)
    assert files_of(mta, q_h) == [os.path.join(mta.queue_dir, ".held", "tcp_slow." + q_h)], files_of(mta, q_h)
    queue_ok(mta, "delete", q_d)
    assert not files_of(mta, q_d), files_of(mta, q_d)
    queue_ok(mta, "return", q_r)
    assert files_of(mta, q_r) == [os.path.join(mta.queue_dir, ".return", "tcp_slow." + q_r)], files_of(mta, q_r)
    queue_ok(mta, "retry", q_t)
    out = queue_ok(mta, "show", q_t)
    assert re.search(r"^rcpt: <u3@offline.test>.*\bnext=now\b", out, re.M), "retry did not make it due:\n" + out

    states = list_states(mta)
    assert states.get(q_h) == ("tcp_slow", "held"), states
    assert states.get(q_r) == ("tcp_slow", "returning"), states
    assert states.get(q_t) == ("tcp_slow", "queued"), states
    assert q_d not in states, states

    # Release and hold again work offline too (file moves both ways).
    queue_ok(mta, "release", q_h)
    assert [f for f in files_of(mta, q_h) if "/tcp_slow/" in f], files_of(mta, q_h)
    queue_ok(mta, "hold", q_h)

    sink = sink_up(lab, "offline.test")
    mta.start()
    got = sink.wait(mid_t.encode(), timeout=8)
    assert got, "the message made due offline was not sent at start; log:\n%s" % mta.log_excerpt(q_t)
    d = failed_dsn(lab, mid_r)
    assert "u2@offline.test" in d.recipients[0].get("final-recipient", "").lower(), d.recipients
    assert admin_lines(mta, q_r, "return"), mta.log_excerpt(q_r)
    time.sleep(2)
    assert not sink.find(mid_h.encode()), "a held message was delivered after the restart"
    assert not sink.find(mid_d.encode()) and not lab.sender_mx.find(mid_d.encode()), "the deleted message came back"
    assert not sink.find(mid_r.encode()), "the returned message was delivered"

    # Live release, then retry (its stored next attempt is an hour away).
    queue_ok(mta, "release", q_h)
    queue_ok(mta, "retry", q_h)
    assert sink.wait(mid_h.encode(), timeout=8), "released message not delivered; log:\n%s" % mta.log_excerpt(q_h)
    assert st.wait_until(lambda: not mta.queue_files(), 10), "left in the queue: %r" % mta.queue_files()
