"""test_queue_scale.py - a queue larger than memory (queue_cache_size) and a large queue at
start-up (background recovery), on a real daemon with real peers:

- queue_cache_size=0: no message content stays in memory, every delivery reads it back from the
  queue file; local (Maildir) and relayed (sink) copies are byte-exact, none is lost or doubled,
  and no queue_read_error is logged;
- a restart with 3000 messages queued for a `hold` channel: the daemon is ready and accepts new
  mail at once while it reads the queue back in the background, logs `recovered messages=3000`,
  and the live `queue summary` then counts every message exactly once (the scan never adds a
  message this process committed during the scan);
- a message returned offline (`queue return` while stopped) is bounced at the next start and not
  also added back by the background scan;
- a queue file damaged while its content is not in memory: the attempt logs queue_read_error and
  is deferred; nothing damaged is sent and the daemon keeps running.
- `queue return` of a message in a hold channel, live or offline (then a start): the sender gets
  exactly one DSN, the message leaves the queue, the other held messages stay held (and the
  offline case is recovered N-1, not handed over twice);
- SIGTERM while the start-up scan waits at a gate: the daemon exits at once (status 0, no
  sanitizer report) and the next start recovers every message exactly once.

Channels: example.test is local (channel l); hold.test goes to channel hold_q (kept until
released); everything else goes by tcp_local to this test's sink (or a closed port).
"""
import os
import random
import re
import signal
import subprocess
import threading
import time
import uuid

import sluicetest as st
from sluicetest import make_message, send_message


def uid():
    return uuid.uuid4().hex[:12]


def scale_cnf(tcp_local):
    return ("example.test   $U%$D@local-daemon\n"
            "hold.test      $U%$D@hold-daemon\n"
            ".              $U%$H@tcp_local-daemon\n"
            "\n"
            "defaults\n"
            "\n"
            "l\n"
            "local-daemon\n"
            "\n"
            "hold_q subdirs 16\n"
            "hold-daemon\n"
            "\n"
            "tcp_local " + tcp_local + "\n"
            "tcp_local-daemon\n")


def make_mta(harness, options, tcp_local):
    mta = harness.sluice(start=False, options=options, tcp_local=tcp_local)
    mta.write("sluice.cnf", scale_cnf(tcp_local))
    mta.start()
    return mta


def queue_out(mta, *args, retries=20):
    """queue_out - stdout of `sluice queue ARGS` (exit 0 asserted; retried while a message is busy)."""
    for _ in range(retries):
        r = mta.queue(*args)
        if r.returncode == 1 and "busy" in r.stdout:
            time.sleep(0.25)
            continue
        break
    assert r.returncode == 0, "sluice queue %s: exit %d\nstdout: %s\nstderr: %s" % (
        " ".join(map(str, args)), r.returncode, r.stdout, r.stderr)
    return r.stdout


def last_start_events(mta, event):
    """last_start_events - the log lines of one event written by the daemon's latest start."""
    return [ln for ln in st.parse_log(mta.read_log(mta.logfiles[-1])) if ln.event == event]


def summary_total(mta):
    out = queue_out(mta, "summary")
    m = re.search(r"^total (\d+)$", out, re.M)
    assert m, "no total in queue summary:\n%s" % out
    return int(m.group(1)), out


def stats(mta):
    return queue_out(mta, "stats")


def big_body(seed, size):
    """big_body - size bytes or so of CRLF lines that vary with seed (leading dots, 8-bit octets)."""
    rnd = random.Random(seed)
    lines, n = [], 0
    while n < size:
        k = rnd.randint(0, 200)
        ln = bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 .,-\xe9\xfc") for _ in range(k))
        if rnd.random() < 0.1:
            ln = b"." + ln
        lines.append(ln)
        n += len(ln) + 2
    return b"\r\n".join(lines) + b"\r\nend of %s\r\n" % seed.encode()


def send_many(port, sender, rcpt, msgs, threads=4, timeout=600.0):
    """send_many - send every (msgid, bytes) over a few parallel sessions (several transactions each).
    Returns {msgid: queue id}; asserts every message got 250."""
    out, errors, lock = {}, [], threading.Lock()
    chunks = [msgs[i::threads] for i in range(threads)]
    deadline = time.monotonic() + timeout

    def worker(chunk):
        c = None
        try:
            for mid, data in chunk:
                if time.monotonic() > deadline:
                    raise AssertionError("sending took longer than %d s" % timeout)
                for attempt in range(3):
                    try:
                        if c is None:
                            c = st.Client(port, timeout=30)
                            c.ehlo()
                        r = c.cmd("MAIL FROM:<%s>" % sender)
                        assert r.code == 250, r
                        r = c.cmd("RCPT TO:<%s>" % rcpt)
                        assert r.code == 250, r
                        final = c.data(data)
                        assert final.code == 250, (mid, final)
                        with lock:
                            out[mid] = st.queue_id(final)
                        break
                    except (st.SMTPError, OSError):
                        # the server may close a long session: reconnect (bounded)
                        if c:
                            c.close()
                        c = None
                        if attempt == 2:
                            raise
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append(repr(e))
        finally:
            if c:
                c.quit()

    ts = [threading.Thread(target=worker, args=(ch,)) for ch in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout + 30)
    assert not errors, errors[:5]
    assert len(out) == len(msgs)
    return out


# ---------------------------------------------------------------- queue_cache_size=0

def test_cache_size_zero_reads_every_body_back(harness):
    sink_port = st.free_port()
    sink = harness.sink("127.0.0.1", sink_port)
    mta = make_mta(harness, {"queue_cache_size": "0"}, "smtp nomx daemon 127.0.0.1 port %d" % sink_port)
    assert "queue_cache_size 0)" in stats(mta), stats(mta)
    tag = uid()
    local, remote = [], []
    for i in range(12):
        mid = "cache0-l%d-%s@test" % (i, tag)
        local.append((mid, make_message(mid, to="bob@example.test", body=big_body(mid, 2000 + i * 9000))))
        mid = "cache0-r%d-%s@test" % (i, tag)
        remote.append((mid, make_message(mid, to="someone@remote.test", body=big_body(mid, 1000 + i * 11000))))
    qids = send_many(mta.port, "alice@example.test", "bob@example.test", local, threads=2)
    qids.update(send_many(mta.port, "alice@example.test", "someone@remote.test", remote, threads=2))
    # a message to both at once: one file per channel, both read back
    mid = "cache0-both-%s@test" % tag
    both = make_message(mid, to="bob@example.test", body=big_body(mid, 40000))
    final, _ = send_message(mta.port, "alice@example.test", ["bob@example.test", "x@remote.test"], both)
    assert final.code == 250, final
    local.append((mid, both))
    remote.append((mid, both))

    for mid, data in local:
        got = mta.wait_message("bob@example.test", mid.encode(), timeout=30)
        assert len(got) == 1, "%s: %d copies in bob's Maildir; log:\n%s" % (
            mid, len(got), mta.log_excerpt(qids.get(mid), "queue_read_error"))
        assert got[0].endswith(data), "%s not byte-exact in the Maildir: tail %r" % (mid, got[0][-300:])
    for mid, data in remote:
        got = sink.wait(mid.encode(), timeout=30)
        assert len(got) == 1, "%s: %d copies at the sink; log:\n%s" % (
            mid, len(got), mta.log_excerpt(qids.get(mid), "queue_read_error"))
        assert got[0][1].endswith(data), "%s not byte-exact at the sink: tail %r" % (mid, got[0][1][-300:])
    assert len(sink.received()) == len(remote)
    assert len(mta.messages("bob@example.test")) == len(local)
    assert not mta.events("queue_read_error"), mta.log_excerpt("queue_read_error")
    assert st.wait_until(lambda: not mta.queue_files(), 15), mta.queue_files()
    s = stats(mta)
    assert re.search(r"^bodies in memory: 0 bytes", s, re.M), s


# ---------------------------------------------------------------- restart with a big queue

N_BIG = 3000


def fill_hold(mta, n, tag):
    msgs = [("big%d-%s@test" % (i, tag), make_message("big%d-%s@test" % (i, tag), to="u@hold.test"))
            for i in range(n)]
    return send_many(mta.port, "alice@example.test", "u%s@hold.test" % tag, msgs, threads=4)


def make_gates(mta, channel):
    """make_gates - a FIFO in every subdirectory of channel's queue: the start-up scan stops in
    open() at each until release_gates() opens it for writing (it then reads an empty file and
    moves it to corrupt/). So the test decides when the scan may go on, whatever the machine's speed."""
    gates = []
    cdir = os.path.join(mta.queue_dir, channel)
    for sub in sorted(os.listdir(cdir)):
        g = os.path.join(cdir, sub, "GATE" + sub)
        os.mkfifo(g, 0o600)
        gates.append(g)
    return gates


def release_gates(mta, gates, timeout=120.0):
    """release_gates - open every gate as the scan reaches it (bounded); True when all were opened."""
    left = list(gates)
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline and mta.running():
        for g in list(left):
            if not os.path.exists(g):  # already read and moved aside
                left.remove(g)
                continue
            try:
                fd = os.open(g, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: the scan is not waiting there (yet)
                continue
            os.close(fd)
            left.remove(g)
        time.sleep(0.01)
    return not left


def test_restart_with_big_queue_recovers_in_background(harness):
    sink_port = st.free_port()
    mta = make_mta(harness, {}, "smtp nomx daemon 127.0.0.1 port %d" % sink_port)
    tag = uid()
    t0 = time.monotonic()
    qids = fill_hold(mta, N_BIG, tag)
    fill_secs = time.monotonic() - t0
    assert len(set(qids.values())) == N_BIG
    total, out = summary_total(mta)
    assert total == N_BIG, out
    mta.stop()
    assert not mta.problems, mta.problems
    assert len(mta.queue_files("hold_q")) == N_BIG
    gates = make_gates(mta, "hold_q")
    assert len(gates) == 16

    mta.start()
    try:
        # the scan waits at its first gate: new mail is accepted and delivered meanwhile
        t1 = time.monotonic()
        mid = "after-restart-%s@test" % tag
        final, _ = send_message(mta.port, "alice@example.test", ["bob@example.test"], make_message(mid))
        accept_secs = time.monotonic() - t1
        assert final.code == 250, final
        assert accept_secs < 10, "the first message after the restart took %.1f s to be accepted" % accept_secs
        assert mta.wait_message("bob@example.test", mid.encode(), timeout=30), \
            "the new message was not delivered during recovery; log:\n%s" % mta.log_excerpt("recovered", "error")
        assert re.search(r"^recovery: running", stats(mta), re.M), stats(mta)
        assert not last_start_events(mta, "recovered")
        # more messages for the hold channel, committed by this process into directories the
        # scan has not listed yet: it must not add them a second time
        during = [("during%d-%s@test" % (i, tag), make_message("during%d-%s@test" % (i, tag), to="u@hold.test"))
                  for i in range(40)]
        qids_during = send_many(mta.port, "alice@example.test", "u%s@hold.test" % tag, during, threads=2)
    finally:
        released = release_gates(mta, gates)
    assert released, "the start-up scan did not reach every gate; log:\n%s" % mta.log_excerpt("corrupt", "recovered")

    recs = st.wait_until(lambda: last_start_events(mta, "recovered"), 120)
    assert recs, "no recovered event within 120 s of the restart"
    assert len(recs) == 1, recs
    assert recs[0].kv.get("messages") == str(N_BIG), recs[0]
    assert "secs" in recs[0].kv, recs[0]
    # every queued message once: the 3000 recovered and the 40 committed meanwhile
    want = N_BIG + len(during)
    total, out = summary_total(mta)
    assert total == want, "queue summary counts %d, expected %d (duplicates?):\n%s" % (total, want, out)
    every = set(qids.values()) | set(qids_during.values())
    listed = [ln.split()[0] for ln in queue_out(mta, "list", "hold_q").splitlines() if ln.strip()]
    ids = [x for x in listed if x in every]
    assert len(ids) == len(set(ids)) == want, "queue list: %d lines, %d distinct, %d expected" % (
        len(ids), len(set(ids)), want)
    s = stats(mta)
    assert re.search(r"^messages: %d$" % want, s, re.M), s
    assert re.search(r"^recovery: done \(%d messages" % N_BIG, s, re.M), s
    assert not mta.events("queue_read_error"), mta.log_excerpt("queue_read_error")
    assert len(mta.queue_files("hold_q")) == want
    print("filled %d in %.1f s; first message after the restart accepted in %.2f s; recovery %s s" % (
        N_BIG, fill_secs, accept_secs, recs[0].kv.get("secs")))


def test_offline_return_is_not_recovered_twice(harness):
    """A message returned while the daemon is stopped is moved back into its channel directory
    by the next start (and bounced); the background scan must not add it a second time."""
    mta = make_mta(harness, {}, 'smtp nomx daemon 127.0.0.1 port %d backoff "PT1H"' % st.free_port())
    tag = uid()
    msgs = [("ret%d-%s@test" % (i, tag), make_message("ret%d-%s@test" % (i, tag), to="u@remote.test"))
            for i in range(30)]
    qids = send_many(mta.port, "alice@example.test", "u@remote.test", msgs, threads=2)
    # every message tried once (the next hop is down) and waiting an hour
    assert st.wait_until(lambda: len({ln.id for ln in mta.events("deferred")} & set(qids.values())) == 30, 60), \
        mta.log_excerpt("deferred")
    mta.stop()
    victim = sorted(qids.values())[7]
    queue_out(mta, "return", victim)
    mta.start()
    recs = st.wait_until(lambda: last_start_events(mta, "recovered"), 60)
    assert recs, "no recovered event"
    # the bounce reaches the sender (alice, local); the victim leaves the queue
    assert st.wait_until(lambda: alice_dsns(mta), 30), "no DSN for %s; log:\n%s" % (
        victim, mta.log_excerpt(victim))
    assert st.wait_until(lambda: not [p for p in mta.queue_files() if p.endswith("/" + victim)], 15), \
        mta.log_excerpt(victim)
    time.sleep(2)
    total, out = summary_total(mta)
    assert recs[0].kv.get("messages") == "29", "the scan handed over the returned message again: %s\nlog:\n%s" % (
        recs[0], mta.log_excerpt(victim))
    assert total == 29, "queue summary counts %d, expected 29:\n%s\nlog:\n%s" % (total, out, mta.log_excerpt(victim))
    assert len(alice_dsns(mta)) == 1, "%d DSNs for one returned message" % len(alice_dsns(mta))


def alice_dsns(mta):
    return [d for d in mta.messages("alice@example.test").values() if b"multipart/report" in d]


# ---------------------------------------------------------------- a damaged file, body on disk

def test_damaged_file_with_body_on_disk_is_deferred(harness):
    sink_port = st.free_port()
    mta = make_mta(harness, {"queue_cache_size": "0"},
                   'smtp nomx daemon 127.0.0.1 port %d backoff "PT1H"' % sink_port)
    mid = "damaged-%s@test" % uid()
    msg = make_message(mid, to="someone@remote.test", body=b"MARKER-" + b"z" * 900 + b"\r\n" + (b"w" * 70 + b"\r\n") * 40)
    final, _ = send_message(mta.port, "alice@example.test", ["someone@remote.test"], msg)
    assert final.code == 250, final
    qid = st.queue_id(final)
    # first attempt: the next hop is down, the message waits an hour
    assert mta.wait_event(lambda ln: ln.event == "deferred" and ln.id == qid, timeout=20), mta.log_excerpt(qid)
    files = [p for p in mta.queue_files("tcp_local") if p.endswith("/" + qid)]
    assert len(files) == 1, mta.queue_files()
    s = stats(mta)
    assert re.search(r"^bodies in memory: 0 bytes", s, re.M), s
    # damage the content on disk (one byte of the body) and bring the next hop up
    with open(files[0], "r+b") as f:
        data = f.read()
        at = data.find(b"MARKER-")
        assert at > 0
        f.seek(at + 100)
        f.write(b"Y")
    sink = harness.sink("127.0.0.1", sink_port)
    n_deferred = len([ln for ln in mta.log() if ln.event == "deferred" and ln.id == qid])
    queue_out(mta, "retry", qid)
    err = mta.wait_event(lambda ln: ln.event == "queue_read_error" and ln.id == qid, timeout=20)
    assert err, "no queue_read_error for %s; log:\n%s" % (qid, mta.log_excerpt(qid))
    assert st.wait_until(lambda: len([ln for ln in mta.log() if ln.event == "deferred" and ln.id == qid])
                         > n_deferred, 20), "the attempt was not deferred; log:\n%s" % mta.log_excerpt(qid)
    d = [ln for ln in mta.log() if ln.event == "deferred" and ln.id == qid][-1]
    assert "4.3.0" in d.raw, d
    time.sleep(1)
    assert mta.running()
    assert not sink.find(mid.encode()), "damaged content was sent"
    assert not sink.received()
    # not lost: still queued, still listed
    assert os.path.exists(files[0])
    assert qid in queue_out(mta, "list")
    assert mta.wait_event(lambda ln: ln.event == "ready", timeout=1)


# ---------------------------------------------------------------- returns in a hold channel

N_HOLD = 6


def hold_batch(mta, tag, n=N_HOLD):
    """hold_batch - n messages from alice (local, so her DSNs land in her Maildir) to the hold
    channel; returns [(msgid, queue id)] in sending order."""
    out = []
    for i in range(n):
        mid = "held%d-%s@test" % (i, tag)
        final, _ = send_message(mta.port, "alice@example.test", ["h%d-%s@hold.test" % (i, tag)],
                                make_message(mid, to="h%d-%s@hold.test" % (i, tag)))
        assert final.code == 250, final
        out.append((mid, st.queue_id(final)))
    return out


def hold_ids(mta):
    """hold_ids - the queue ids `queue list hold_q` shows (in order, repeats kept)."""
    return [ln.split()[0] for ln in queue_out(mta, "list", "hold_q").splitlines() if ln.strip()]


def check_one_return(mta, held, victim_mid, victim, rcpt):
    """check_one_return - after `queue return victim`: alice gets exactly one DSN (failed, for
    rcpt, about victim_mid), victim leaves the queue, every other held message stays held."""
    dsns = st.wait_until(lambda: alice_dsns(mta), 30)
    assert dsns, "no DSN for the returned %s; log:\n%s" % (victim, mta.log_excerpt(victim))
    assert st.wait_until(lambda: not [p for p in mta.queue_files() if p.endswith("/" + victim)], 15), \
        "the returned message is still queued: %r\nlog:\n%s" % (mta.queue_files(), mta.log_excerpt(victim))
    time.sleep(2)  # room for a second (duplicate) bounce or an unwanted attempt of the others
    dsns = alice_dsns(mta)
    assert len(dsns) == 1, "%d DSNs for one returned message; log:\n%s" % (len(dsns), mta.log_excerpt(victim))
    d = st.DSN(dsns[0])
    assert d.report_type == "delivery-status", d
    assert d.actions() == ["failed"], d.recipients
    assert rcpt in d.recipients[0].get("final-recipient", "").lower(), d.recipients
    assert victim_mid.encode() in d.returned_bytes(), "the DSN does not carry the returned message's headers"
    assert [ln.kv.get("kind") for ln in mta.events("bounce") if ln.id == victim] == ["failed"], \
        mta.log_excerpt(victim)
    # the others: untouched, still held, each listed once
    others = [q for _, q in held if q != victim]
    listed = hold_ids(mta)
    assert victim not in listed, listed
    assert sorted(listed) == sorted(others), "queue list hold_q: %r, expected %r" % (listed, others)
    total, out = summary_total(mta)
    assert total == len(others), "queue summary counts %d, expected %d:\n%s" % (total, len(others), out)
    assert sorted(os.path.basename(p) for p in mta.queue_files("hold_q")) == sorted(others), mta.queue_files()
    for q in others:
        assert not [ln for ln in mta.log() if ln.id == q and ln.event in ("job_start", "bounce", "delivered",
                                                                          "deferred", "removed")], \
            "a held message was worked on:\n%s" % mta.log_excerpt(q)


def test_live_return_in_hold_channel_bounces_once(harness):
    mta = make_mta(harness, {}, "smtp nomx daemon 127.0.0.1 port %d" % st.free_port())
    tag = uid()
    held = hold_batch(mta, tag)
    # held: nothing happens to them, they stay listed
    time.sleep(3)
    assert sorted(hold_ids(mta)) == sorted(q for _, q in held), queue_out(mta, "list")
    assert not alice_dsns(mta)
    assert not [ln for ln in mta.log() if ln.event in ("job_start", "bounce", "delivered", "deferred")
                and ln.id in {q for _, q in held}], mta.log_excerpt("job_start", "bounce", "deferred")
    victim_mid, victim = held[2]
    out = queue_out(mta, "return", victim)
    assert "%s hold_q: return" % victim in out, out
    check_one_return(mta, held, victim_mid, victim, "h2-%s@hold.test" % tag)
    assert [ln for ln in mta.events("admin", action="return") if ln.id == victim], mta.log_excerpt(victim)
    # a second return of another held message works the same (the channel is not left "kicking")
    victim2_mid, victim2 = held[4]
    queue_out(mta, "return", victim2)
    assert st.wait_until(lambda: len(alice_dsns(mta)) >= 2, 30), mta.log_excerpt(victim2)
    assert st.wait_until(lambda: victim2 not in hold_ids(mta), 15), mta.log_excerpt(victim2)
    time.sleep(1)
    assert len(alice_dsns(mta)) == 2, "%d DSNs for two returns" % len(alice_dsns(mta))
    assert sorted(hold_ids(mta)) == sorted(q for _, q in held if q not in (victim, victim2))


def test_offline_return_in_hold_channel_bounces_once_at_start(harness):
    mta = make_mta(harness, {}, "smtp nomx daemon 127.0.0.1 port %d" % st.free_port())
    tag = uid()
    held = hold_batch(mta, tag)
    mta.stop()
    assert not mta.problems, mta.problems
    victim_mid, victim = held[3]
    queue_out(mta, "return", victim)
    assert [p for p in mta.queue_files() if p.endswith("/" + victim)] == [], "still in hold_q after the return"
    assert os.path.exists(os.path.join(mta.queue_dir, ".return", "hold_q." + victim))
    mta.start()
    recs = st.wait_until(lambda: last_start_events(mta, "recovered"), 60)
    assert recs, "no recovered event; log:\n%s" % mta.log_excerpt("recovered")
    assert len(recs) == 1, recs
    check_one_return(mta, held, victim_mid, victim, "h3-%s@hold.test" % tag)
    assert recs[0].kv.get("messages") == str(N_HOLD - 1), \
        "recovered %s, expected %d (the returned message handed over again?)\nlog:\n%s" % (
            recs[0].kv.get("messages"), N_HOLD - 1, mta.log_excerpt(victim, "recovered"))
    assert [ln for ln in mta.events("admin", action="return", when="start-up") if ln.id == victim], \
        mta.log_excerpt(victim)
    assert not os.listdir(os.path.join(mta.queue_dir, ".return"))
    s = stats(mta)
    assert re.search(r"^messages: %d$" % (N_HOLD - 1), s, re.M), s


# ---------------------------------------------------------------- SIGTERM during the start-up scan

N_TERM = 600


def sigterm(mta, timeout):
    """sigterm - SIGTERM the daemon; its exit status, or None if it is still running after timeout
    seconds (left running: the caller decides)."""
    os.killpg(mta.proc.pid, signal.SIGTERM)
    try:
        return mta.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def release_some(mta, gates, k, timeout=60.0):
    """release_some - open the first k gates the scan reaches (bounded); True when k were opened."""
    left, opened = list(gates), 0
    deadline = time.monotonic() + timeout
    while opened < k and time.monotonic() < deadline and mta.running():
        for g in list(left):
            try:
                fd = os.open(g, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            os.close(fd)
            left.remove(g)
            opened += 1
            break
        time.sleep(0.01)
    return opened == k


def test_sigterm_during_startup_scan(harness):
    mta = make_mta(harness, {}, "smtp nomx daemon 127.0.0.1 port %d" % st.free_port())
    tag = uid()
    qids = fill_hold(mta, N_TERM, tag)
    mta.stop()
    assert not mta.problems, mta.problems
    gates = make_gates(mta, "hold_q")
    mta.start()
    # let the scan through a few directories (more than one batch of 256 handed over), then it
    # waits at the next gate; SIGTERM now
    assert release_some(mta, gates, 9), "the start-up scan did not reach 9 gates"
    time.sleep(1)
    assert re.search(r"^recovery: running", stats(mta), re.M), stats(mta)
    assert not last_start_events(mta, "recovered")
    rc = sigterm(mta, 20)
    note = ""
    if rc is None:
        # still running: does opening the gates let it go? (evidence for the report)
        released = release_gates(mta, gates, 20)
        try:
            rc2 = mta.proc.wait(timeout=20)
            note = "it exited (status %s) only once the gates were opened (all reached: %s)" % (rc2, released)
        except subprocess.TimeoutExpired:
            st.kill_group(mta.proc, signal.SIGKILL, 5)
            note = "it did not exit even with the gates open; SIGKILLed"
    mta.stopped = True  # stopped here, by hand: the teardown must not signal it again
    mta.check_sanitizers()
    problems, mta.problems = list(mta.problems), []
    assert rc is not None, "sluice did not exit within 20 s of SIGTERM while the start-up scan waited; " + note + \
        "\nlog:\n" + mta.log_excerpt(limit=30)
    assert rc == 0, "exit status %s after SIGTERM; log:\n%s" % (rc, mta.log_excerpt(limit=30))
    assert not problems, problems
    assert mta.events("stopped"), mta.log_excerpt("stopped")

    # next start without the gates: every message exactly once
    for g in gates:
        if os.path.exists(g):
            os.unlink(g)
    mta.start()
    recs = st.wait_until(lambda: last_start_events(mta, "recovered"), 120)
    assert recs, "no recovered event within 120 s"
    assert len(recs) == 1, recs
    assert recs[0].kv.get("messages") == str(N_TERM), recs[0]
    total, out = summary_total(mta)
    assert total == N_TERM, "queue summary counts %d, expected %d:\n%s" % (total, N_TERM, out)
    ids = [x for x in hold_ids(mta) if x in set(qids.values())]
    assert len(ids) == len(set(ids)) == N_TERM, "queue list: %d lines, %d distinct, %d expected" % (
        len(ids), len(set(ids)), N_TERM)
    assert sorted(os.path.basename(p) for p in mta.queue_files("hold_q")) == sorted(qids.values())
    assert not mta.events("queue_read_error"), mta.log_excerpt("queue_read_error")
