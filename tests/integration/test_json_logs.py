"""test_json_logs.py - log_format=json (issue 14, item 3): a daemon that accepts, refuses, relays,
defers, bounces, takes local submissions and reloads writes a log in which every line is one JSON
object (json.loads on each line, nothing else in the file), with the stable members ts, level,
id, event first, the session and queue ids where they exist, every field a string, and:

- hostile client text (quotes, backslashes, bytes that are not UTF-8) stays inside its value;
- the accepted line carries both the queue id and the session;
- the bounce line carries the message reported on (id, queue_id) and the DSN's own id (dsn_id),
  and the DSN's later lines carry that dsn_id as their id;
- a bad log_format value is a configuration error; text stays the default.
"""
import base64
import json
import os
import re
import signal
import subprocess
import time

import sluicetest as st

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
QID = re.compile(r"[0-9A-F]{16}\Z")


def json_lines(mta):
    """json_lines - every line of the daemon's log, each parsed with json.loads (any other line fails)."""
    out = []
    for n, raw in enumerate(mta.log_text().encode().split(b"\n")[:-1], 1):
        text = raw.decode("utf-8")  # strict: the log must be valid UTF-8
        obj = json.loads(text)
        assert isinstance(obj, dict), (n, text)
        assert list(obj)[:4] == ["ts", "level", "id", "event"], (n, text)
        assert TS.match(obj["ts"]) and obj["level"] in ("error", "warn", "info", "debug"), (n, text)
        assert obj["id"] is None or isinstance(obj["id"], str), (n, text)
        assert all(isinstance(v, str) for k, v in obj.items() if k != "id"), (n, text)
        out.append(obj)
    assert out, "empty log"
    return out


def test_every_line_is_json(harness):
    mta = harness.sluice(start=False, options={"log_format": "json", "internal_networks": "10.9.9.0/24",
                                               "retry_interval": "1", "retry_max": "1"})
    mta.write("dispatcher.cnf", "[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\nPARAMETER=CHANNEL=tcp_local\n"
              "AUTH_WITHOUT_TLS=yes\n" % mta.port)
    mta.start()
    final, rr = st.send_message(mta.port, "someone@example.test", ["alice@example.test"], st.make_message("j1@test"))
    assert final.code == 250
    qid = st.queue_id(final)
    with st.Client(mta.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@example.test>").code == 250
        assert c.cmd('RCPT TO:<"q\\"uo\\\\te"@elsewhere.test>').code == 550  # relay denied, quotes in the log
        c.send(b"RCPT TO:<caf\xe9\xff@example.test>\r\n")  # not UTF-8
        c.reply()
        c.send(b"NOOP \"\\\x7f\r\n")
        c.reply()
        # the user name of a failed AUTH is logged: quotes, a backslash, a control byte and bytes that are not UTF-8
        user = b'ev"il\\us\x01er\xff\xfe'
        assert c.cmd("RSET").code == 250
        c.send(b"AUTH PLAIN " + base64.b64encode(b"\0" + user + b"\0secret") + b"\r\n")
        assert c.reply().code == 535
        c.quit()
    env = dict(os.environ, SLUICE_CONFIG_DIR=mta.confdir)
    r = subprocess.run([st.BIN, "sendmail", "-f", "alice@example.test", "user@dead.test"], input=b"Subject: j\n\nx\n",
                       env=env, capture_output=True, timeout=30)
    assert r.returncode == 0, r
    ln = mta.wait_event(lambda l: l.event == "deferred" and l.kv.get("rcpt") == "<user@dead.test>")
    assert ln, mta.log_text()[-3000:]
    dead = ln.id
    assert mta.queue("return", dead).returncode == 0
    assert mta.wait_message("alice@example.test", b"user@dead.test"), mta.log_text()[-3000:]
    os.kill(mta.proc.pid, signal.SIGHUP)
    assert mta.wait_event(lambda l: l.event == "reloaded")
    assert mta.wait_message("alice@example.test", b"j1@test")
    time.sleep(0.5)

    lines = json_lines(mta)
    events = {o["event"] for o in lines}
    for e in ("listen", "ready", "connect", "rcpt", "reject", "accepted", "queued", "delivered", "deferred",
              "bounce", "removed", "disconnect", "reloaded"):
        assert e in events, (e, sorted(events))
    # session lines carry their session; queue lines their queue id
    for o in lines:
        if o["id"] and re.fullmatch(r"S\d+", o["id"]):
            assert o.get("session") == o["id"], o
        if o["id"] and QID.match(o["id"]):
            assert o.get("queue_id") == o["id"], o
    acc = [o for o in lines if o["event"] == "accepted" and o["id"] == qid]
    assert len(acc) == 1 and re.fullmatch(r"S\d+", acc[0]["session"]) and acc[0]["queue_id"] == qid, acc
    conn = [o for o in lines if o["event"] == "connect" and o["session"] == acc[0]["session"]]
    assert conn and conn[0]["client"] == "[127.0.0.1]", conn
    # hostile text stays inside its value
    rej = [o for o in lines if o["event"] == "reject" and "elsewhere.test" in o.get("reply", "")]
    assert rej and rej[0]["reply"].startswith('550 5.7.1 <"q\\"uo\\\\te"@elsewhere.test>'), rej
    assert rej[0]["class"] == "relay_denied", rej
    auth = [o for o in lines if o["event"] == "auth"]
    assert len(auth) == 1 and auth[0]["user"] == '<ev"il\\us?er\ufffd\ufffd>' and auth[0]["result"] == "failed", auth
    # the bounce links the DSN to the message it reports on
    b = [o for o in lines if o["event"] == "bounce"]
    assert len(b) == 1 and b[0]["id"] == dead and b[0]["queue_id"] == dead and QID.match(b[0]["dsn_id"]), b
    dsn = b[0]["dsn_id"]
    assert [o for o in lines if o["event"] == "delivered" and o["id"] == dsn], "no delivered line for the DSN"
    # a local submission
    assert [o for o in lines if o["event"] == "connect" and o.get("service") == "local" and o.get("uid") == "0"]


def test_bad_value_and_text_default(harness):
    mta = harness.sluice()
    assert mta.log_text().startswith("20"), mta.log_text()[:200]  # text by default
    mta.stop()
    mta.write("option.dat", "log_format=yaml\nqueue_dir=%s\n" % mta.queue_dir)
    r = subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "log_format: bad value 'yaml' (expected text or json)" in r.stderr, r
