"""test_reload.py - SIGHUP reloads the configuration (a broken one is refused and the old one kept,
with the reason logged); SIGTERM stops cleanly and leaves undelivered mail queued for the next start.
"""
import os
import signal
import time

import sluicetest as st
from sluicetest import make_message, send_message

NEW_USER = """
dn: uid=erin,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: mailUser
uid: erin
cn: Erin Test
sn: Test
mail: erin@example.test
"""


def rcpt_code(port, rcpt):
    with st.Client(port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<someone@sender.test>").code == 250
        code = c.cmd("RCPT TO:<%s>" % rcpt).code
        c.quit()
        return code


def test_sighup_reload_and_broken_config_kept(harness):
    mta = harness.sluice()
    assert rcpt_code(mta.port, "erin@example.test") == 550
    # a good change: a new user appears after SIGHUP
    with open(os.path.join(mta.confdir, "directory.ldif"), "a") as f:
        f.write(NEW_USER)
    os.kill(mta.proc.pid, signal.SIGHUP)
    mta.wait_event(lambda ln: ln.event == "reloaded", timeout=10)
    assert rcpt_code(mta.port, "erin@example.test") == 250
    # a broken change: refused with file:line, the old configuration stays in force
    with open(os.path.join(mta.confdir, "sluice.cnf"), "a") as f:
        f.write("\nbogus_channel frobnicate\nbogus-daemon\n")
    os.kill(mta.proc.pid, signal.SIGHUP)
    mta.wait_event(lambda ln: ln.event == "reload_failed", timeout=10)
    errs = [ln.raw for ln in mta.log() if ln.event == "reload_error"]
    assert any("sluice.cnf:" in e and "frobnicate" in e for e in errs), errs
    assert mta.running()
    assert rcpt_code(mta.port, "erin@example.test") == 250
    assert rcpt_code(mta.port, "bob@example.test") == 250


def test_sigterm_keeps_queue_for_next_start(harness):
    sink_port = st.free_port()
    # the next hop is down: the message stays queued
    mta = harness.sluice(tcp_local="smtp nomx daemon 127.0.0.1 port %d" % sink_port)
    mid = "reload-%d@test" % int(time.time() * 1000)
    final, rr = send_message(mta.port, "alice@example.test", ["someone@remote.test"],
                             make_message(mid, to="someone@remote.test"))
    assert final.code == 250, final
    qid = st.queue_id(final)
    mta.wait_event(lambda ln: ln.event == "deferred" and ln.id == qid, timeout=15)
    mta.stop()  # SIGTERM: a clean exit
    assert any(ln.event == "stopped" for ln in mta.log())
    assert any(qid in path for path in mta.queue_files()), mta.queue_files()
    # the next start recovers it and delivers it once the next hop is up
    sink = harness.sink("127.0.0.1", sink_port, name="late-sink")
    mta.start()
    # the queue is read back in the background: "recovered" may follow "ready"
    assert mta.wait_event(lambda ln: ln.event == "recovered" and "messages=1" in ln.raw, timeout=10), \
        mta.log_excerpt("recovered")
    assert sink.wait(mid.encode(), timeout=30)


def dispatcher(*services):
    """dispatcher - dispatcher.cnf text for (name, port, channel) services on 127.0.0.1."""
    return "".join("[SERVICE=%s]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\nPARAMETER=CHANNEL=%s\n" % s for s in services)


def refused(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def reload_and_wait(mta, n):
    """reload_and_wait - SIGHUP, then wait for the n-th reloaded or reload_failed line."""
    os.kill(mta.proc.pid, signal.SIGHUP)
    assert st.wait_until(lambda: len([l for l in mta.log() if l.event in ("reloaded", "reload_failed")]) >= n, 10), \
        mta.log_text()[-2000:]


def test_sighup_applies_dispatcher_changes(harness):
    mta = harness.sluice()
    extra = st.free_port()
    assert refused(extra)
    # a new service is bound
    mta.write("dispatcher.cnf", dispatcher(("SMTP", mta.port, "tcp_local"), ("SUBMIT", extra, "tcp_local")))
    reload_and_wait(mta, 1)
    assert [l for l in mta.events("listen", service="SUBMIT", port=str(extra))], mta.log_text()[-2000:]
    assert rcpt_code(extra, "bob@example.test") == 250
    # a session open on it when it goes away still finishes its message
    c = st.Client(extra)
    c.ehlo()
    assert c.cmd("MAIL FROM:<someone@sender.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    # the kept service changes its source channel; the extra one is removed
    mta.write("dispatcher.cnf", dispatcher(("SMTP", mta.port, "l")))
    reload_and_wait(mta, 2)
    gone = mta.events("unlisten", service="SUBMIT", port=str(extra))
    assert gone and gone[0].kv.get("sessions") == "1", mta.log_text()[-2000:]
    assert [l for l in mta.events("listen_changed", service="SMTP", channel="l")], mta.log_text()[-2000:]
    assert refused(extra)
    final = c.data(make_message("kept-session@test"))
    assert final.code == 250, final
    c.quit()
    assert mta.wait_message("bob@example.test", b"kept-session@test")
    conn = [l for l in mta.events("connect") if l.kv.get("channel") == "l"]
    assert not conn
    assert rcpt_code(mta.port, "bob@example.test") == 250
    assert [l for l in mta.events("connect") if l.kv.get("channel") == "l"], "the new channel is not in use"


def test_sighup_says_what_needs_a_restart(harness):
    mta = harness.sluice()
    opts = open(os.path.join(mta.confdir, "option.dat")).read()
    mta.write("option.dat", opts.replace("dns_servers=", "dns_servers=127.0.0.1:9,") + "metrics_listen=%d\n" % st.free_port())
    reload_and_wait(mta, 1)
    need = sorted(l.kv.get("option") for l in mta.events("reload_restart_needed"))
    assert need == ["dns_servers", "metrics_listen"], mta.log_text()[-2000:]
    assert mta.events("reloaded")
    # another queue directory is refused: the old configuration stays
    mta.write("option.dat", opts.replace("queue_dir=", "queue_dir=/nonexistent"))
    reload_and_wait(mta, 2)
    failed = mta.events("reload_failed")
    assert failed and "queue_dir" in failed[-1].kv.get("error", ""), mta.log_text()[-2000:]
    assert rcpt_code(mta.port, "bob@example.test") == 250
