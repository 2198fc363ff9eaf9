"""test_queue_tools.py - the queue tools for scripts (issue 14, item 4), on a live daemon (control
socket) and on a stopped one (files), every JSON output read with json.loads:

- `list --json` with the selections --from, --to, --domain, --channel, --older-than, --reply
  (the last remote reply: a 421 greeting at c.test's MX, a refused connection at a.test's);
- `summary --json` per destination domain: messages, recipients, oldest age, next retry, last
  reply, channels;
- bulk hold / release / retry / delete / return on a selection (text and --json reports);
- the last replies survive a stop (QUEUE/replies): offline listing and the next start show them;
- unknown flags and malformed requests exit 2 with usage, never taken as a channel name;
- `sendmail -q` is `retry --all`.

Destinations: a.test and b.test have MX hosts where nothing listens, c.test's MX greets 421;
sender.test's MX is a sink that receives the DSN of a returned message. The channel backs off an
hour, so nothing is retried unless a tool asks.
"""
import json
import os
import subprocess
import time

import pytest

import sluicetest as st

DOMAINS = {"sender.test": 2, "a.test": 3, "b.test": 4, "c.test": 5}


@pytest.fixture(scope="module")
def lab(module_harness):
    lab = st.Lab(module_harness, mx=DOMAINS)
    lab.sender_mx = lab.start_sink(2, name="sender-mx")
    lab.busy = lab.start_busy(5)
    lab.mta = lab.sluice(tcp_local='smtp mx backoff "PT1H" port %d' % lab.port)
    mta = lab.mta
    lab.ids = {}
    for name, frm, rcpts in (("m1", "x@sender.test", ["u1@a.test"]),
                             ("m2", "y@sender.test", ["u2@a.test", "v@b.test"]),
                             ("m3", "x@sender.test", ["w@c.test"])):
        final, rr = st.send_message(mta.port, frm, rcpts, st.make_message("qt-%s@test" % name, frm=frm, to=rcpts[0]))
        assert final.code == 250, (final, rr)
        lab.ids[name] = st.queue_id(final)
    for name, qid in lab.ids.items():
        n = 2 if name == "m2" else 1
        assert st.wait_until(lambda: len([l for l in mta.events("deferred") if l.id == qid]) >= n, 20), \
            mta.log_excerpt(qid)
    return lab


def q(mta, *args, rc=0):
    r = mta.queue(*args)
    assert r.returncode == rc, "sluice queue %s: exit %d\n%s\n%s" % (" ".join(args), r.returncode, r.stdout, r.stderr)
    return r


def qjson(mta, *args):
    return json.loads(q(mta, *args, "--json").stdout)


def ids_of(items):
    return sorted(o["id"] for o in items)


def want(lab, *names):
    return sorted(lab.ids[n] for n in names)


def test_list_json_and_selections(lab):
    mta = lab.mta
    items = qjson(mta, "list")
    assert ids_of(items) == want(lab, "m1", "m2", "m3"), items
    m2 = [o for o in items if o["id"] == lab.ids["m2"]][0]
    assert m2["channel"] == "tcp_local" and m2["state"] == "queued" and m2["from"] == "y@sender.test", m2
    assert m2["pending"] == 2 and m2["age_seconds"] >= 0 and m2["arrived"].endswith("Z"), m2
    assert sorted(r["domain"] for r in m2["recipients"]) == ["a.test", "b.test"], m2
    assert all(r["status"] == "pending" and r["attempts"] == 1 for r in m2["recipients"]), m2
    assert m2["next_attempt_in_seconds"] > 3000, m2  # backoff PT1H
    m3 = [o for o in items if o["id"] == lab.ids["m3"]][0]
    assert "421" in m3["last_reply"] and m3["last_reply_at"].endswith("Z"), m3

    assert ids_of(qjson(mta, "list", "--domain", "a.test")) == want(lab, "m1", "m2")
    assert ids_of(qjson(mta, "list", "--domain", "A.TEST", "--from", "y@")) == want(lab, "m2")
    assert ids_of(qjson(mta, "list", "--to", "u2@")) == want(lab, "m2")
    assert ids_of(qjson(mta, "list", "--from", "x@sender.test")) == want(lab, "m1", "m3")
    assert ids_of(qjson(mta, "list", "--channel", "tcp_local")) == want(lab, "m1", "m2", "m3")
    assert qjson(mta, "list", "--channel", "l") == []
    assert ids_of(qjson(mta, "list", "--reply", "421")) == want(lab, "m3")
    assert ids_of(qjson(mta, "list", "--reply=421", "--domain", "a.test")) == []
    assert qjson(mta, "list", "--older-than", "1h") == []
    assert ids_of(qjson(mta, "list", "--older-than", "1s")) == want(lab, "m1", "m2", "m3")
    # the text listing takes the same selection
    out = q(mta, "list", "--domain", "b.test").stdout
    assert out.split() and out.split()[0] == lab.ids["m2"] and len(out.splitlines()) == 1, out
    shown = qjson(mta, "show", lab.ids["m3"])
    assert len(shown) == 1 and shown[0]["id"] == lab.ids["m3"], shown


def test_summary_json(lab):
    rows = {r["domain"]: r for r in qjson(lab.mta, "summary")}
    assert set(rows) == {"a.test", "b.test", "c.test"}, rows
    a = rows["a.test"]
    assert a["messages"] == 2 and a["recipients"] == 2 and a["held"] == 0 and a["channels"] == ["tcp_local"], a
    assert a["oldest_age_seconds"] >= 0 and a["next_attempt_in_seconds"] > 3000 and a["last_reply"], a
    assert rows["b.test"]["messages"] == 1 and "421" in rows["c.test"]["last_reply"], rows
    only = qjson(lab.mta, "summary", "--domain", "c.test")
    assert [r["domain"] for r in only] == ["c.test"], only


def test_usage_errors(lab):
    mta = lab.mta
    for args in (["list", "--bogus"], ["list", "-x"], ["hold"], ["hold", lab.ids["m1"], "--domain", "a.test"],
                 ["show"], ["stats", "--all"], ["list", "--older-than", "soon"], ["list", "--from"],
                 ["frobnicate"], ["list", "a", "b"], ["summary", "--json=yes"]):
        r = mta.queue(*args)
        assert r.returncode == 2, (args, r)
        assert "usage: sluice queue" in r.stderr and not r.stdout, (args, r)


def test_bulk_actions_live(lab):
    mta = lab.mta
    acts = qjson(mta, "hold", "--domain", "a.test")
    assert sorted((a["id"], a["action"], a["result"]) for a in acts) == \
        sorted((i, "hold", "done") for i in want(lab, "m1", "m2")), acts
    states = {o["id"]: o["state"] for o in qjson(mta, "list")}
    assert states == {lab.ids["m1"]: "held", lab.ids["m2"]: "held", lab.ids["m3"]: "queued"}, states
    assert ids_of(qjson(mta, "list", "--domain", "a.test")) == want(lab, "m1", "m2")
    assert qjson(mta, "summary", "--domain", "a.test")[0]["held"] == 2
    out = q(mta, "release", "--from", "y@sender.test").stdout
    assert out == "%s tcp_local: release\n" % lab.ids["m2"], out
    assert ids_of(qjson(mta, "list", "--channel", "tcp_local", "--domain", "b.test")) == want(lab, "m2")
    # retry by reply: only c.test's message is attempted again
    before = len([l for l in mta.events("deferred") if l.id == lab.ids["m3"]])
    acts = qjson(mta, "retry", "--reply", "421")
    assert [(a["id"], a["result"]) for a in acts] == [(lab.ids["m3"], "done")], acts
    assert st.wait_until(lambda: len([l for l in mta.events("deferred") if l.id == lab.ids["m3"]]) > before, 15)
    # delete by sender, return by domain (a failed DSN to the sender's MX)
    assert ids_of(qjson(mta, "delete", "--from", "y@")) == want(lab, "m2")
    assert ids_of(qjson(mta, "return", "--domain", "c.test")) == want(lab, "m3")
    got = lab.sender_mx.wait(b"qt-m3@test", timeout=20)
    assert got and st.null_sender(got[0][0]), mta.log_excerpt("bounce")
    assert st.wait_until(lambda: ids_of(qjson(mta, "list")) == want(lab, "m1"), 10), qjson(mta, "list")
    # a selection that matches nothing is not an error
    assert qjson(mta, "hold", "--domain", "nowhere.test") == []


def test_stopped_daemon_and_saved_replies(lab):
    mta = lab.mta
    m1 = lab.ids["m1"]
    live_reply = [o for o in qjson(mta, "list") if o["id"] == m1][0]["last_reply"]
    assert live_reply, "no last reply for m1"
    mta.stop()
    assert os.path.exists(os.path.join(mta.queue_dir, "replies"))
    items = qjson(mta, "list")
    assert [(o["id"], o["state"], o["last_reply"]) for o in items] == [(m1, "held", live_reply)], items
    assert ids_of(qjson(mta, "list", "--reply", live_reply[:12])) == [m1]
    rows = qjson(mta, "summary")
    assert [(r["domain"], r["messages"], r["held"], r["last_reply"]) for r in rows] == \
        [("a.test", 1, 1, live_reply)], rows
    assert [a["result"] for a in qjson(mta, "release", "--domain", "a.test")] == ["done"]
    assert [a["result"] for a in qjson(mta, "retry", "--all")] == ["done"]
    assert [o["state"] for o in qjson(mta, "list")] == ["queued"]
    for args in (["list", "--bogus"], ["retry"], ["delete", "--older-than", "-1"]):
        r = mta.queue(*args)
        assert r.returncode == 2 and "usage: sluice queue" in r.stderr, (args, r)
    mta.stopped = False
    mta.start()
    # the next start takes the saved reply back (until the next attempt replaces it)
    items = qjson(mta, "list")
    assert [o["id"] for o in items] == [m1] and items[0]["last_reply"], items


def test_sendmail_q_is_retry_all(lab):
    mta = lab.mta
    m1 = lab.ids["m1"]
    st.wait_until(lambda: [l for l in mta.events("deferred") if l.id == m1 and mta.starts > 1], 10)
    before = len([l for l in mta.events("deferred") if l.id == m1])
    env = dict(os.environ, SLUICE_CONFIG_DIR=mta.confdir)
    r = subprocess.run([st.BIN, "sendmail", "-q"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0 and "%s tcp_local: retry" % m1 in r.stdout, r
    assert st.wait_until(lambda: len([l for l in mta.events("deferred") if l.id == m1]) > before, 15)
    assert json.loads(q(mta, "delete", "--all", "--json").stdout)[0]["id"] == m1
    time.sleep(0.2)
    assert qjson(mta, "list") == []
