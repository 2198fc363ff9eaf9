"""test_shaping.py - issue 15 section 3: traffic shaping that reacts (doc/delivery.md "Traffic shaping").

Each test has its own lab (a random 127.X.Y net, dnsmasq with the test's MX records, sinks on
.2/.3) and a daemon whose option.dat names a shaping_file. The sink counts its sessions (open
now, most open at once, messages per closed session) and can answer "421 4.7.28" to the next K
MAIL commands once it has accepted N messages (a provider's rate limit).

- connections=1: a burst of 20 messages never has more than one session open at the sink.
- per_connection=3 (with connections=1): sessions carry at most 3 messages, and some carry 3.
- per_hour=3600 (one a second): messages are held back (`sluice queue shaping` shows them
  waiting), arrive spread over at least (n-1) seconds less a margin, all of them.
- a sink that answers 421 4.7.28 after 3 messages: the destination is suspended (log line,
  `queue shaping --json` says suspended and the sink has still 3 while it is), the message that
  got the 421 is deferred, not bounced, then after the 4 s period it resumes and every message
  arrives exactly once.
- a 421 matching a halve rule halves the rate (log line with the new rate), and two successful
  messages later (ramp=2) the configured rate is back (restore).
- a reload (SIGHUP) that lifts a per_hour of one message in 10 s lets the waiting messages go at once.
- two domains on one MX provider (mx:prov.test connections=1): once their MX hosts are known,
  a burst to both never has two sessions open at once, and `queue shaping` lists the provider.
"""
import json
import os
import signal
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message


def uid():
    return uuid.uuid4().hex[:10]


def shaped_mta(lab, table, backoff="PT1S"):
    """shaped_mta - a daemon routing every domain by MX to lab.port, with shaping_file=shaping."""
    mta = lab.sluice(start=False, tcp_local='smtp mx port %d backoff "%s"' % (lab.port, backoff),
                     options={"shaping_file": "shaping"})
    mta.write("shaping", table)
    mta.start()
    return mta


def burst(mta, rcpts, tag):
    """burst - one message per recipient, over one SMTP session; their Message-IDs."""
    mids = []
    with st.Client(mta.port) as c:
        c.ehlo()
        for i, rcpt in enumerate(rcpts):
            mid = "<%s-%d@test>" % (tag, i)
            assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
            assert c.cmd("RCPT TO:<%s>" % rcpt).code == 250
            final = c.data(make_message(mid, to=rcpt))
            assert final.code == 250, final
            mids.append(mid)
        c.quit()
    return mids


def arrived(sink, mids):
    """arrived - how many times each Message-ID reached the sink."""
    got = {m: 0 for m in mids}
    for _env, content in sink.received():
        for m in mids:
            if m.encode() in content:
                got[m] += 1
    return got


def wait_all(sink, mids, timeout):
    ok = st.wait_until(lambda: all(n >= 1 for n in arrived(sink, mids).values()), timeout, 0.2)
    return ok


def shaping_view(mta):
    r = mta.queue("shaping", "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    return {d["dest"]: d for d in json.loads(r.stdout)}


def test_one_connection_under_a_burst(harness):
    lab = st.Lab(harness, mx={"one.test": 2})
    sink = lab.start_sink(2, delay=0.3)  # slow, so that deliveries would overlap without the limit
    mta = shaped_mta(lab, "one.test connections=1\n")
    mids = burst(mta, ["u%d@one.test" % i for i in range(20)], uid())
    assert wait_all(sink, mids, 60), "delivered %r; log:\n%s" % (arrived(sink, mids), mta.log_excerpt("shaping"))
    assert set(arrived(sink, mids).values()) == {1}
    stats = sink.sessions()
    assert stats["max_at_mail"] == 1, stats
    view = shaping_view(mta)
    assert view["one.test"]["max_connections"] == 1
    assert view["one.test"]["last_hour"] == 20
    assert view["one.test"]["entry"] == "one.test"


def test_messages_per_connection(harness):
    lab = st.Lab(harness, mx={"three.test": 2})
    sink = lab.start_sink(2)
    mta = shaped_mta(lab, "three.test connections=1 per_connection=3\n")
    mids = burst(mta, ["u%d@three.test" % i for i in range(12)], uid())
    assert wait_all(sink, mids, 60), "delivered %r" % arrived(sink, mids)
    st.wait_until(lambda: sink.sessions()["open"] == 0, 15)  # the last connection is parked for 2 s
    per = sink.sessions()["per_session"]
    assert sum(per) == 12, per
    assert max(per) == 3, per  # connections are reused ...
    assert all(n <= 3 for n in per), per  # ... up to per_connection
    assert len([n for n in per if n]) >= 4, per


def test_per_hour_spreads_messages(harness):
    lab = st.Lab(harness, mx={"slow.test": 2})
    sink = lab.start_sink(2)
    mta = shaped_mta(lab, "slow.test per_hour=3600\n")
    n = 6
    t0 = time.monotonic()
    mids = burst(mta, ["u%d@slow.test" % i for i in range(n)], uid())
    # held back, visible as waiting in the shaping view (and the text view names the destination)
    seen = st.wait_until(lambda: shaping_view(mta).get("slow.test", {}).get("waiting", 0) >= 1, 5, 0.1)
    assert seen, mta.queue("shaping").stdout
    text = mta.queue("shaping").stdout
    assert "slow.test" in text and "3600" in text, text
    assert wait_all(sink, mids, 40), "delivered %r" % arrived(sink, mids)
    took = time.monotonic() - t0
    assert set(arrived(sink, mids).values()) == {1}
    times = sorted(os.path.getmtime(os.path.join(sink.dir, f)) for f in os.listdir(sink.dir) if f.endswith(".json"))
    assert len(times) == n
    assert times[-1] - times[0] >= (n - 1) - 0.6, times  # one a second, never in a burst
    assert took >= (n - 1) - 0.6
    assert len(mta.events("shaping_wait")) >= n - 1


def test_421_suspends_then_resumes(harness):
    lab = st.Lab(harness, mx={"burst.test": 2})
    # after 3 messages the next two MAILs (the reused connection, then a fresh one) get 421 4.7.28
    sink = lab.start_sink(2, throttle_after=3, throttle_count=2)
    mta = shaped_mta(lab, "burst.test connections=1\n"
                          "on 421 4.7.28 action=suspend period=4s\n"
                          "on 4xx /rate limit/ action=halve\n")
    n = 8
    mids = burst(mta, ["u%d@burst.test" % i for i in range(n)], uid())
    line = mta.wait_event(lambda ln: ln.event == "shaping" and ln.kv.get("action") == "suspend", 20)
    assert line, mta.log_excerpt("shaping", "delivery")
    assert line.kv["dest"] == "burst.test"
    assert "4.7.28" in line.kv["reply"] and line.kv["until"].endswith("Z")
    view = shaping_view(mta)["burst.test"]
    if view["state"] == "suspended":  # (the 4 s may be over on a very slow machine)
        assert len(sink.received()) == 3
        assert view["until"] is not None
        assert view["waiting"] >= 1 or len(mta.queue_files("tcp_local")) == n - 3
    # the message that met the 421 is deferred, not bounced
    deferred = [ln for ln in mta.events("delivery") if ln.kv.get("result") == "deferred"]
    assert deferred and "4.7.28" in deferred[0].kv["reply"], mta.log_excerpt("delivery")
    assert mta.wait_event(lambda ln: ln.event == "shaping" and ln.kv.get("action") == "resume", 20), \
        mta.log_excerpt("shaping")
    assert wait_all(sink, mids, 40), "delivered %r; log:\n%s" % (arrived(sink, mids), mta.log_excerpt("shaping"))
    assert set(arrived(sink, mids).values()) == {1}  # exactly once
    assert not [ln for ln in mta.log() if ln.event in ("bounce", "dsn")], mta.log_excerpt("bounce", "dsn")
    assert [c for c, _a in sink.refused()] == [421, 421]
    assert sink.sessions()["max_at_mail"] == 1
    # suspended the whole time: nothing arrived between the suspension and the resume
    resume = mta.events("shaping", action="resume")[0]
    assert resume.time - line.time >= 3.5


def test_halve_then_ramp_back(harness):
    lab = st.Lab(harness, mx={"half.test": 2})
    sink = lab.start_sink(2, throttle_after=2, throttle_count=2)
    mta = shaped_mta(lab, "half.test per_hour=36000 floor=3600 ramp=2\n"
                          "on 421 /rate limited/ action=halve\n")
    mids = burst(mta, ["u%d@half.test" % i for i in range(6)], uid())
    assert wait_all(sink, mids, 40), "delivered %r; log:\n%s" % (arrived(sink, mids), mta.log_excerpt("shaping"))
    assert set(arrived(sink, mids).values()) == {1}
    halve = mta.events("shaping", action="halve")
    assert len(halve) == 1 and halve[0].kv["rate"] == "18000" and halve[0].kv["dest"] == "half.test", \
        mta.log_excerpt("shaping")
    restore = mta.wait_event(lambda ln: ln.event == "shaping" and ln.kv.get("action") == "restore", 10)
    assert restore and restore.kv["rate"] == "36000", mta.log_excerpt("shaping")
    assert restore.time >= halve[0].time
    view = shaping_view(mta)["half.test"]
    assert view["state"] == "active" and view["rate"] == 36000 and view["halvings"] == 0


def test_reload_lifts_the_limit(harness):
    lab = st.Lab(harness, mx={"r.test": 2})
    sink = lab.start_sink(2)
    mta = shaped_mta(lab, "r.test per_hour=360\n")  # one message every 10 s
    mids = burst(mta, ["u%d@r.test" % i for i in range(3)], uid())
    assert st.wait_until(lambda: shaping_view(mta).get("r.test", {}).get("waiting", 0) == 2, 10, 0.1), \
        mta.queue("shaping").stdout
    assert len(sink.received()) == 1
    mta.write("shaping", "r.test connections=5\n")
    os.kill(mta.proc.pid, signal.SIGHUP)
    assert mta.wait_event(lambda ln: ln.event == "reloaded", 10)
    t0 = time.monotonic()
    assert wait_all(sink, mids, 8), "delivered %r" % arrived(sink, mids)
    assert time.monotonic() - t0 < 8  # not the 10 s spacing of the old table
    view = shaping_view(mta)["r.test"]
    assert view["rate"] == 0 and view["max_connections"] == 5 and view["waiting"] == 0


def test_mx_provider_shares_connections(harness):
    net = st.loopback_net()
    lab = st.Lab(harness, net=net, hosts=[2],
                 records=["host-record=mx1.prov.test,%s.2" % net, "host-record=mx2.prov.test,%s.2" % net,
                          "mx-host=a.test,mx1.prov.test,10", "mx-host=b.test,mx2.prov.test,10"],
                 probe="a.test")
    sink = lab.start_sink(2, delay=0.3)
    mta = shaped_mta(lab, "mx:.prov.test connections=1\n")
    # the first message to each domain teaches the scheduler its MX hosts
    warm = []
    for d in ("a.test", "b.test"):  # one after the other: until then they are separate destinations
        warm += burst(mta, ["w@" + d], uid())
        assert wait_all(sink, warm, 30)
        assert st.wait_until(lambda: sink.sessions()["open"] == 0, 15)
    view = shaping_view(mta)
    assert "mx:prov.test" in view, view
    before = sink.sessions()["max_at_mail"]
    rcpts = ["u%d@%s" % (i, d) for i in range(8) for d in ("a.test", "b.test")]
    mids = burst(mta, rcpts, uid())
    assert wait_all(sink, mids, 60), "delivered %r" % arrived(sink, mids)
    assert set(arrived(sink, mids).values()) == {1}
    assert before == 1 and sink.sessions()["max_at_mail"] == 1, sink.sessions()
    view = shaping_view(mta)
    assert view["mx:prov.test"]["last_hour"] >= 16
    assert view["mx:prov.test"]["entry"] == "prov.test"


def test_check_reports_bad_lines(harness):
    mta = harness.sluice(start=False, options={"shaping_file": "shaping"})
    mta.write("shaping", "good.test connections=2\nbad..test connections=1\non 421 action=explode\n")
    r = st.subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "shaping:2:" in r.stdout + r.stderr and "shaping:3:" in r.stdout + r.stderr, r.stdout + r.stderr
    mta.write("shaping", "good.test connections=2\n")
    r = mta.queue("shaping")
    assert r.returncode == 1 and "not running" in r.stdout + r.stderr
