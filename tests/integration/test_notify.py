"""test_notify.py - issue 3's seed configuration, typed in as the Messaging Server documentation
writes it: a permanent failure at the local store (Dovecot LMTP, carol's 1K quota: 552 5.2.2
after DATA) produces a DSN that goes l/lmtp -> process_dsn -> tcp_notify -> the MX of the
sender's domain (an aiosmtpd sink), and ordinary mail to a remote domain still leaves by
tcp_local.

Peers (one random 127.X.Y triple for this module): .2 the sender domain's MX (sink), .3 Dovecot
LMTP, .4 a remote domain's MX (sink), .5 the MX of a second sender domain that is down until the
test starts a sink there (so the DSN can be seen waiting in tcp_notify's queue, with the seed's
backoff); dnsmasq on 127.0.0.1 serves the MX records.
"""
import calendar
import re
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message

SENDER = "someone@sender.test"


def uid():
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def lab(module_harness):
    lab = st.Lab(module_harness, mx={"sender.test": 2, "remote.test": 4, "late.test": 5})
    lab.sender_mx = lab.start_sink(2, name="sender-mx")
    lab.remote_mx = lab.start_sink(4, name="remote-mx")
    lab.store = lab.start_dovecot(3)
    lab.mta = lab.seed_sluice(lmtp=(lab.store.host, lab.store.port))
    return lab


def big_body(n=4000):
    """big_body - a body well over carol's 1K quota."""
    line = b"x" * 70 + b"\r\n"
    return line * (n // len(line) + 1)


def test_seed_configuration_loads_as_written(lab):
    """sluice check accepts the seed configuration and says how it reads `$,`."""
    import subprocess
    r = subprocess.run([st.BIN, "check", "-C", lab.mta.confdir], capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode == 0, "sluice check refused the seed configuration:\n%s" % out
    assert "$," in out, "sluice check does not say how it reads '$,':\n%s" % out


def test_local_permanent_failure_dsn_goes_process_dsn_then_tcp_notify(lab):
    mta = lab.mta
    mid = "quota-%s@test" % uid()
    msg = make_message(mid, frm=SENDER, to="carol@example.test", subject="over quota", body=big_body())
    final, rr = send_message(mta.port, SENDER, ["carol@example.test", "alice@example.test"], msg)
    assert [r.code for r in rr] == [250, 250], rr
    assert final.code == 250, final
    qid = st.queue_id(final)
    assert st.queued_channels(mta, qid) == ["lmtp_local"], \
        "the message was not queued to lmtp_local only; log:\n%s" % mta.log_excerpt(qid)

    got = lab.sender_mx.wait(mid.encode(), timeout=40)
    assert got, "no DSN reached the sender domain's MX; log:\n%s" % mta.log_excerpt(qid, "bounce", "requeued")
    # alice's copy was stored; carol's was refused by the store after DATA.
    assert lab.store.wait("alice@example.test", mid.encode(), timeout=10), "alice's copy is not in her Maildir"
    assert not lab.store.find("carol@example.test", mid.encode()), "carol got the message despite her quota"

    failed = [ln for ln in mta.events("failed") if ln.id == qid]
    assert len(failed) == 1 and failed[0].kv.get("rcpt") == "<carol@example.test>", \
        "expected one failed line for carol: %r" % failed
    assert failed[0].kv.get("status") == "5.2.2", failed[0].raw

    # The log: bounce -> queued to process_dsn -> requeued -> queued to tcp_notify -> delivered there.
    bounces = [ln for ln in mta.events("bounce") if ln.id == qid]
    assert len(bounces) == 1, "expected one bounce line for %s: %r" % (qid, bounces)
    b = bounces[0]
    assert b.kv.get("kind") == "failed", b.raw
    assert b.kv.get("channel") == "process_dsn", "the DSN did not go to the notificationchannel: %s" % b.raw
    dsn_id = b.kv.get("id")
    q1 = [ln for ln in mta.events("queued") if ln.id == dsn_id]
    assert q1 and q1[0].kv.get("channel") == "process_dsn", "DSN %s not queued to process_dsn: %r" % (dsn_id, q1)
    assert re.search(r"/process_dsn/\d{3}/%s$" % re.escape(dsn_id), q1[0].kv.get("path", "")), q1[0].raw
    req = [ln for ln in mta.events("requeued") if ln.id == dsn_id]
    assert len(req) == 1 and req[0].kv.get("from_channel") == "process_dsn", \
        "process_dsn did not requeue the DSN: %s" % mta.log_excerpt(dsn_id)
    new_id = req[0].kv.get("id")
    q2 = [ln for ln in mta.events("queued") if ln.id == new_id]
    assert [ln.kv.get("channel") for ln in q2] == ["tcp_notify"], \
        "the requeued DSN did not go to tcp_notify: %s" % mta.log_excerpt(new_id)
    m = re.search(r"/tcp_notify/(\d{3})/%s$" % re.escape(new_id), q2[0].kv.get("path", ""))
    assert m and 0 <= int(m.group(1)) < 20, "not in one of tcp_notify's 20 subdirectories: %s" % q2[0].raw
    jobs = [ln for ln in mta.events("job_start") if ln.id == new_id]
    assert jobs and all(ln.kv.get("channel") == "tcp_notify" and ln.kv.get("pool") == "NOTIFY_POOL"
                        for ln in jobs), "the DSN was not sent by a tcp_notify job in NOTIFY_POOL: %r" % jobs
    done = st.wait_until(lambda: [ln for ln in mta.events("delivered") if ln.id == new_id], 10)
    assert done and done[0].kv.get("channel") == "tcp_notify", "no delivered line on tcp_notify: %r" % done
    assert lab.addr[2] in done[0].kv.get("relay", ""), done[0].raw

    # What the sender's MX received: one proper DSN, from <>, to the sender.
    time.sleep(1)
    got = lab.sender_mx.find(mid.encode())
    assert len(got) == 1, "the sender's MX got %d DSNs" % len(got)
    env, content = got[0]
    assert st.null_sender(env), "DSN envelope sender is not <>: %r" % env["raw_mail"]
    assert env["rcpt_tos"] == [SENDER], env
    assert not lab.remote_mx.find(mid.encode()), "the DSN went to the wrong MX"
    d = st.DSN(content)
    assert d.content_type == "multipart/report" and d.report_type == "delivery-status", content[:2000]
    assert len(d.recipients) == 1, "the DSN reports %d recipients (only carol failed): %r" % (
        len(d.recipients), d.recipients)
    r = d.recipients[0]
    assert "carol@example.test" in r.get("final-recipient", "").lower(), r
    assert r.get("action", "").lower() == "failed", r
    assert r.get("status") == "5.2.2", r
    assert "552" in r.get("diagnostic-code", ""), "Diagnostic-Code does not carry the store's 552: %r" % r
    assert d.per_message.get("reporting-mta"), "no Reporting-MTA: %r" % d.per_message

    # Nothing is left in the queue.
    assert st.wait_until(lambda: not mta.queue_files(), 10), "files left in the queue: %r" % mta.queue_files()


def test_ordinary_mail_still_leaves_by_tcp_local(lab):
    mta = lab.mta
    mid = "ordinary-%s@test" % uid()
    final, rr = send_message(mta.port, SENDER, ["user@remote.test"], make_message(mid, frm=SENDER,
                                                                                  to="user@remote.test"))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    got = lab.remote_mx.wait(mid.encode(), timeout=20)
    assert got, "ordinary mail not delivered to the remote MX; log:\n%s" % mta.log_excerpt(qid)
    env, _ = got[0]
    assert env["mail_from"] == SENDER and env["rcpt_tos"] == ["user@remote.test"], env
    assert st.queued_channels(mta, qid) == ["tcp_local"], mta.log_excerpt(qid)
    jobs = [ln for ln in mta.events("job_start") if ln.id == qid]
    assert jobs and all(ln.kv.get("channel") == "tcp_local" and ln.kv.get("pool") == "DEFAULT" for ln in jobs), \
        "ordinary mail did not run as a tcp_local job in the DEFAULT pool: %r" % jobs
    done = st.wait_until(lambda: [ln for ln in mta.events("delivered") if ln.id == qid], 5)
    assert done and done[0].kv.get("channel") == "tcp_local", done
    assert not lab.sender_mx.find(mid.encode()), "ordinary mail produced a notification"


def test_dsn_waits_in_tcp_notify_queue_with_the_seed_backoff(lab):
    """While the sender's MX is down the DSN sits in tcp_notify's queue: `sluice queue` shows it
    (source channel process_dsn, sender <>, next attempt 4 hours on: backoff "pt4h"), and a retry
    sends it once the MX is up."""
    mta = lab.mta
    sender = "someone@late.test"
    mid = "late-%s@test" % uid()
    final, rr = send_message(mta.port, sender, ["carol@example.test"],
                             make_message(mid, frm=sender, to="carol@example.test", body=big_body()))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    b = mta.wait_event(lambda l: l.event == "bounce" and l.id == qid, timeout=20)
    assert b, "no DSN for carol's failure; log:\n%s" % mta.log_excerpt(qid)
    req = mta.wait_event(lambda l: l.event == "requeued" and l.id == b.kv.get("id"), timeout=10)
    assert req, "process_dsn did not requeue the DSN; log:\n%s" % mta.log_excerpt(b.kv.get("id"))
    dsn_id = req.kv.get("id")
    d = mta.wait_event(lambda l: l.event == "deferred" and l.id == dsn_id, timeout=20)
    assert d, "the DSN to a down MX was not deferred; log:\n%s" % mta.log_excerpt(dsn_id)
    assert d.kv.get("channel") == "tcp_notify", d.raw

    files = mta.queue_files("tcp_notify")
    assert any(f.endswith("/" + dsn_id) for f in files), "DSN %s not in QUEUE/tcp_notify: %r" % (dsn_id, files)
    r = mta.queue("list", "tcp_notify")
    assert r.returncode == 0, (r.stdout, r.stderr)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith(dsn_id + " ")]
    assert line and line[0].split()[1] == "tcp_notify" and "from=<>" in line[0], \
        "queue list tcp_notify does not show the DSN:\n%s" % r.stdout
    r = mta.queue("show", dsn_id)
    assert r.returncode == 0, (r.stdout, r.stderr)
    show = r.stdout
    assert re.search(r"^channel: tcp_notify$", show, re.M), show
    assert re.search(r"^source-channel: process_dsn$", show, re.M), show
    assert re.search(r"^sender: <>$", show, re.M), show
    m = re.search(r"^rcpt: <%s>.*\battempts=1\b.*\bnext=(\S+)" % re.escape(sender), show, re.M)
    assert m, show
    nxt = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(nxt - time.time() - 4 * 3600) < 120, \
        "next attempt %s is not 4 hours away (backoff \"pt4h\")" % m.group(1)

    sink = lab.start_sink(5, name="late-mx")
    r = mta.queue("retry", dsn_id)
    assert r.returncode == 0, (r.stdout, r.stderr)
    got = sink.wait(mid.encode(), timeout=10)
    assert got, "the DSN was not sent after retry; log:\n%s" % mta.log_excerpt(dsn_id)
    env, content = got[0]
    assert st.null_sender(env) and env["rcpt_tos"] == [sender], env
    dsn = st.DSN(content)
    assert dsn.actions() == ["failed"] and dsn.recipients[0].get("status") == "5.2.2", dsn.recipients
