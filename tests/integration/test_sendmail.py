"""test_sendmail.py - the sendmail interface (issue 14, item 1): `sluice sendmail` and the binary
called as sendmail / mailq / newaliases, against a live daemon over its local submission socket and,
while no daemon runs, through the pickup directory.

- -t takes To/Cc/Bcc, drops Bcc, adds From/Date/Message-ID; the Received: header says "via
  sendmail" with the submitter's uid (root, and `nobody` through setpriv: the socket is open to
  local users); sendmail exits only after the daemon logged the commit;
- -f, -F, -N, -R, -V reach the next hop as MAIL/RCPT parameters (a sink behind MX);
- a refused recipient: exit 67 (EX_NOUSER) and the reply on stderr, the other recipient served;
  a 452 (max_recipients) recipient waits in the pickup directory and is delivered from there;
- -bv prints deliverable / undeliverable per address; -bs speaks SMTP through the daemon;
- -bp / mailq list the queue, -q retries it, newaliases says there is nothing to do;
- daemon down: exit 0, the message waits in QUEUE/pickup and is delivered at the next start;
  a file that is not a valid pickup file, or a symbolic link, goes to QUEUE/pickup-failed;
- usage errors exit 64.
"""
import os
import re
import subprocess
import time

import pytest

import sluicetest as st

REMOTE = "remote.test"


@pytest.fixture(scope="module")
def lab(module_harness):
    lab = st.Lab(module_harness, mx={REMOTE: 2, "down.test": 3})
    lab.sink = lab.start_sink(2, name="sink-remote")
    lab.mta = lab.sluice(tcp_local='smtp mx backoff "PT1H" port %d' % lab.port,
                         options={"pickup_interval": "1", "max_recipients": "3"})
    # local users must reach the configuration (option.dat) and the queue's public parts
    path = lab.mta.confdir
    while path != "/":
        os.chmod(path, os.stat(path).st_mode | 0o711)
        path = os.path.dirname(path)
    os.chmod(lab.mta.confdir, 0o755)
    lab.links = os.path.join(module_harness.dir, "bin")
    os.makedirs(lab.links, exist_ok=True)
    for name in ("sendmail", "mailq", "newaliases"):
        os.symlink(st.BIN, os.path.join(lab.links, name))
    return lab


def run(lab, args, data=b"", argv0=None, user=None, timeout=30):
    """run - `sluice sendmail ARGS` (or the link argv0 with ARGS), stdin data, SLUICE_CONFIG_DIR set."""
    cmd = [os.path.join(lab.links, argv0)] if argv0 else [st.BIN, "sendmail"]
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
    env = dict(os.environ, SLUICE_CONFIG_DIR=lab.mta.confdir)
    return subprocess.run(cmd + list(args), input=data, capture_output=True, env=env, timeout=timeout)


def tag():
    return "sm-%d-%d" % (os.getpid(), time.monotonic_ns())


def accepted_for(mta, needle_id):
    return [ln for ln in mta.events("accepted") if ln.id == needle_id]


def test_t_extracts_recipients_and_drops_bcc(lab):
    mta, t = lab.mta, tag()
    msg = ("To: Alice <alice@example.test>\nCc: bob@example.test\nBcc: carol@example.test\n"
           "Subject: %s\n\nline one\n.\nline after a dot\n" % t).encode()
    r = run(lab, ["-t", "-i"], msg)
    assert r.returncode == 0, r
    # the commit was logged before sendmail returned (250 after the queue commit)
    acc = [ln for ln in mta.events("accepted") if ln.kv.get("from") == "<root@mx.example.test>"]
    assert acc, mta.log_excerpt("accepted")
    for rcpt in ("alice@example.test", "bob@example.test", "carol@example.test"):
        got = mta.wait_message(rcpt, t.encode())
        assert got, "nothing for %s:\n%s" % (rcpt, mta.log_excerpt())
    data = mta.find_messages("carol@example.test", t.encode())[0]
    head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    assert not [ln for ln in head.split(b"\r\n") if (b"carol" in ln or b"Bcc" in ln) and
                not ln.startswith(b"Delivered-To")], head
    assert re.search(rb"Received: from local \(uid 0\)\r\n\tby mx\.example\.test \(Sluice\) via sendmail", data), data
    assert re.search(rb"\r\nFrom: root <root@mx\.example\.test>\r\n", head), head
    assert re.search(rb"\r\nDate: ", head) and re.search(rb"\r\nMessage-ID: <[^>]+@mx\.example\.test>\r\n", head), head
    assert b"\r\n.\r\nline after a dot\r\n" in data, data
    conn = [ln for ln in mta.events("connect") if ln.kv.get("service") == "local"]
    assert conn and conn[-1].kv.get("uid") == "0" and conn[-1].kv.get("channel") == "l", conn


def test_unprivileged_user_and_argv0(lab):
    mta, t = lab.mta, tag()
    r = run(lab, ["alice@example.test"], ("Subject: %s\n\nfrom nobody\n" % t).encode(), argv0="sendmail", user=65534)
    assert r.returncode == 0, r
    assert mta.wait_message("alice@example.test", t.encode()), mta.log_excerpt()
    data = mta.find_messages("alice@example.test", t.encode())[0]
    assert b"Received: from local (uid 65534)" in data, data[:400]
    assert b"Return-Path: <nobody@mx.example.test>" in data, data[:400]
    # the public parts are open to local users, the queue itself is not listable
    q = os.stat(mta.queue_dir).st_mode & 0o777
    assert q == 0o711, oct(q)
    assert os.stat(os.path.join(mta.queue_dir, "public", "submit.sock")).st_mode & 0o777 == 0o666
    assert os.stat(os.path.join(mta.queue_dir, "pickup")).st_mode & 0o7777 == 0o1733


def test_dsn_options_reach_the_next_hop(lab):
    t = tag()
    r = run(lab, ["-f", "<sender@example.test>", "-F", "Sen Der", "-N", "success,failure", "-R", "hdrs",
                  "-V", "env%s" % t, "user@" + REMOTE], ("Subject: %s\n\nx\n" % t).encode())
    assert r.returncode == 0, r
    got = lab.sink.wait(t.encode())
    assert got, lab.mta.log_excerpt()
    env, content = got[0]
    mail = " ".join(env["mail_options"]).upper()
    assert "RET=HDRS" in mail and ("ENVID=ENV" + t.upper()) in mail, env
    assert env["mail_from"] == "sender@example.test", env
    rcpt = " ".join(env["rcpt_options"][0]).upper()
    assert "NOTIFY=SUCCESS,FAILURE" in rcpt, env
    assert b"From: Sen Der <sender@example.test>" in content, content[:500]


def test_refused_recipient_exit_67_and_others_served(lab):
    mta, t = lab.mta, tag()
    r = run(lab, ["alice@example.test", "nobody@example.test"], ("Subject: %s\n\nx\n" % t).encode())
    assert r.returncode == 67, r
    assert b"<nobody@example.test>: 550 5.1.1" in r.stderr, r.stderr
    assert mta.wait_message("alice@example.test", t.encode()), mta.log_excerpt()


def test_452_recipient_waits_in_pickup_and_is_delivered(lab):
    mta, t = lab.mta, tag()
    rcpts = ["alice@example.test", "bob@example.test", "carol@example.test", "dave@example.test"]
    r = run(lab, rcpts, ("Subject: %s\n\nx\n" % t).encode())  # max_recipients=3: the fourth gets 452
    assert r.returncode == 0, r
    assert b"<dave@example.test>: 452" in r.stderr and b"retried" in r.stderr, r.stderr
    for rc in rcpts:
        assert mta.wait_message(rc, t.encode(), timeout=20), "%s:\n%s" % (rc, mta.log_excerpt("pickup"))
    assert mta.wait_event(lambda l: l.event == "pickup"), mta.log_excerpt("pickup")
    assert len(mta.find_messages("dave@example.test", t.encode())) == 1


def test_verify(lab):
    r = run(lab, ["-bv", "alice@example.test", "nobody@example.test", "bob"])
    out = r.stdout.decode()
    assert "alice@example.test... deliverable: 250" in out, out
    assert "bob@mx.example.test... deliverable: 250" in out, out  # unqualified: @host_name added
    assert "nobody@example.test... undeliverable: 550 5.1.1" in out, out
    assert r.returncode == 67, r
    r = run(lab, ["-bv", "alice@example.test"])
    assert r.returncode == 0, r


def test_bs_speaks_smtp_through_the_daemon(lab):
    mta, t = lab.mta, tag()
    env = dict(os.environ, SLUICE_CONFIG_DIR=mta.confdir)
    p = subprocess.Popen([st.BIN, "sendmail", "-bs"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    lines = []

    def say(cmd, expect):
        if cmd is not None:
            p.stdin.write(cmd + b"\r\n")
            p.stdin.flush()
        while True:
            ln = p.stdout.readline()
            lines.append(ln)
            assert ln, lines
            if ln[3:4] != b"-":
                break
        assert ln.startswith(expect), lines

    say(None, b"220 ")
    say(b"EHLO client", b"250 ")
    say(b"MAIL FROM:<root@example.test>", b"250 ")
    say(b"RCPT TO:<bob@example.test>", b"250 ")
    say(b"DATA", b"354 ")
    say(b"Subject: " + t.encode() + b"\r\n\r\nbody\r\n.", b"250 2.0.0 Ok: queued as ")
    say(b"QUIT", b"221 ")
    p.stdin.close()
    assert p.wait(10) == 0
    data = mta.wait_message("bob@example.test", t.encode())
    assert data, mta.log_excerpt()
    assert b"via sendmail" in mta.find_messages("bob@example.test", t.encode())[0]


def test_mailq_q_and_newaliases(lab):
    mta, t = lab.mta, tag()
    r = run(lab, ["user@down.test"], ("Subject: %s\n\nx\n" % t).encode())
    assert r.returncode == 0, r
    ln = mta.wait_event(lambda l: l.event == "deferred" and l.kv.get("rcpt") == "<user@down.test>", timeout=20)
    assert ln, mta.log_excerpt("down.test")
    qid = ln.id
    for args, argv0 in ((["-bp"], None), ([], "mailq")):
        r = run(lab, args, argv0=argv0)
        assert r.returncode == 0 and qid.encode() in r.stdout, r
    before = len([l for l in mta.events("deferred") if l.id == qid])
    r = run(lab, ["-q"])
    assert r.returncode == 0 and qid.encode() in r.stdout, r
    assert st.wait_until(lambda: len([l for l in mta.events("deferred") if l.id == qid]) > before, 15), \
        mta.log_excerpt(qid)
    r = run(lab, [], argv0="newaliases")
    assert r.returncode == 0 and b"Nothing to do" in r.stdout, r


def test_usage_errors(lab):
    assert run(lab, ["-Z", "a@example.test"]).returncode == 64
    r = run(lab, [], b"Subject: x\n\nno recipient\n")
    assert r.returncode == 64 and b"no recipients" in r.stderr, r
    assert run(lab, ["-N", "sometimes", "a@example.test"]).returncode == 64
    assert run(lab, ["-bd"]).returncode == 64
    # unknown -o options are ignored as sendmail does
    t = tag()
    r = run(lab, ["-odb", "-oem", "-o", "X", "alice@example.test"], ("Subject: %s\n\nx\n" % t).encode())
    assert r.returncode == 0, r
    assert lab.mta.wait_message("alice@example.test", t.encode())


def test_daemon_down_pickup_directory(harness):
    mta = harness.sluice(options={"pickup_interval": "1"})
    # a real queue file, planted under pickup/ by a local user, must never be read as a queued message
    final, _ = st.send_message(mta.port, "a@example.test", ["user@dead.test"], st.make_message("planted@test"))
    planted = st.queue_id(final)
    assert mta.wait_event(lambda l: l.event == "deferred" and l.id == planted)
    mta.stop()
    [qfile] = mta.queue_files("tcp_local")
    os.makedirs(os.path.join(mta.queue_dir, "pickup", "000"))  # as if "pickup" were a channel
    os.rename(qfile, os.path.join(mta.queue_dir, "pickup", "000", planted))
    assert planted not in mta.queue("list").stdout  # the offline tools walk the queue as recovery does
    env = dict(os.environ, SLUICE_CONFIG_DIR=mta.confdir)
    t = tag()
    r = subprocess.run([st.BIN, "sendmail", "carol@example.test"], input=("Subject: %s\n\nlater\n" % t).encode(),
                       capture_output=True, env=env, timeout=30)
    assert r.returncode == 0 and r.stderr == b"", r
    pickup = os.path.join(mta.queue_dir, "pickup")
    files = [f for f in os.listdir(pickup) if not f.startswith(".") and f != "000"]
    assert len(files) == 1, files
    # hostile and broken files beside it
    with open(os.path.join(pickup, "0000-garbage"), "w") as f:
        f.write("not a pickup file\n")
    secret = os.path.join(harness.dir, "secret")
    with open(secret, "w") as f:
        f.write("SLUICE-PICKUP 1\nfrom a@example.test\nrcpt alice@example.test\n\nSubject: secret-%s\n\nx\n" % t)
    os.symlink(secret, os.path.join(pickup, "0001-link"))
    mta.stopped = False
    mta.start()
    assert mta.wait_message("carol@example.test", t.encode()), mta.log_excerpt("pickup")
    data = mta.find_messages("carol@example.test", t.encode())[0]
    assert b"Received: from local (uid 0)" in data and b"via sendmail" in data, data[:300]
    assert st.wait_until(lambda: not [f for f in os.listdir(pickup)], 10), os.listdir(pickup)
    failed = sorted(os.listdir(os.path.join(mta.queue_dir, "pickup-failed")))
    assert failed == ["000", "0000-garbage", "0001-link"], failed
    assert planted not in mta.queue("list").stdout
    assert planted not in mta.read_log(mta.logfiles[-1]), mta.read_log(mta.logfiles[-1])
    reasons = {ln.kv.get("file"): ln.kv.get("reason") for ln in mta.events("pickup_failed")}
    assert "not a pickup file" in reasons.get("0000-garbage", ""), reasons
    assert "cannot open" in reasons.get("0001-link", ""), reasons
    assert not mta.find_messages("alice@example.test", b"secret-" + t.encode())
    assert [ln for ln in mta.events("pickup") if ln.kv.get("file") == files[0]], mta.log_excerpt("pickup")
