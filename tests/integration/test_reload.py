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
