"""test_pools.py - pool isolation (issue 3): with the seed configuration and
job_controller.cnf "[POOL=DEFAULT] job_limit=10, [POOL=NOTIFY_POOL] job_limit=2", twenty DSNs
queued to an MX that accepts TCP and never greets (a tarpit) hold at most two connections open
at once, while ordinary mail through tcp_local (DEFAULT pool) is still delivered promptly.

The DSNs come from twenty messages sent by someone@tarpitN.test (N = 0..19, twenty destination
domains whose MX is the tarpit, so tcp_notify has work for up to maxjobs 10 jobs) to a null-MX
domain (RFC 7505: an immediate permanent failure); each DSN goes process_dsn -> tcp_notify -> the
tarpit.
tcp_notify_option gives long greeting/command timeouts so that the tarpit's connections stay
open for the whole test.

Peers (a random 127.X.Y triple): .4 remote.test's MX (sink), .5 the tarpitN.test MX (tarpit), both
on one free port (the channels' `port`).
"""
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message

N_DSNS = 20
PROMPT = 10.0  # seconds within which ordinary mail must be delivered


def uid():
    return uuid.uuid4().hex[:12]


@pytest.fixture
def lab(harness):
    net = st.loopback_net()
    # The twenty tarpitN.test domains share one MX host, the tarpit.
    lab = st.Lab(harness, net=net, mx={"remote.test": 4, "nullmx.test": None}, hosts=[5],
                 records=["host-record=mx.tarpit.test,%s.5" % net] +
                         ["mx-host=tarpit%d.test,mx.tarpit.test,10" % i for i in range(N_DSNS)])
    lab.remote_mx = lab.start_sink(4, name="remote-mx")
    lab.tarpit = lab.start_tarpit(5)
    lab.mta = lab.seed_sluice(start=False)
    lab.mta.write("tcp_notify_option", "! keep the tarpit's connections open for the whole test\n"
                                       "CONNECT_TIMEOUT=2\nGREETING_TIMEOUT=120\nCOMMAND_TIMEOUT=120\n")
    lab.mta.start()
    return lab


def test_notify_pool_limits_tarpit_connections_and_ordinary_mail_flows(lab):
    mta, tarpit = lab.mta, lab.tarpit
    tag = uid()
    with st.Client(mta.port) as c:
        c.ehlo()
        for i in range(N_DSNS):
            sender = "someone@tarpit%d.test" % i
            assert c.cmd("MAIL FROM:<%s>" % sender).code == 250
            r = c.cmd("RCPT TO:<user%d@nullmx.test>" % i)
            assert r.code == 250, r
            final = c.data(make_message("pool-%s-%d@test" % (tag, i), frm=sender, to="user@nullmx.test"))
            assert final.code == 250, final
        c.quit()

    # Every message fails at once; its DSN ends up queued for tcp_notify.
    def dsns_queued():
        return len([ln for ln in mta.events("queued", channel="tcp_notify")]) >= N_DSNS or None
    assert st.wait_until(dsns_queued, 40), "not all %d DSNs reached tcp_notify; log:\n%s" % (
        N_DSNS, mta.log_excerpt("bounce", "requeued", "tcp_notify"))
    assert st.wait_until(lambda: tarpit.stats()["open"] >= 2, 15), \
        "tcp_notify did not open two connections to the tarpit: %r; log:\n%s" % (
            tarpit.stats(), mta.log_excerpt("job_start"))

    # The notification pool is saturated by the tarpit; ordinary mail must not wait for it.
    mid = "ordinary-%s@test" % tag
    t0 = time.monotonic()
    final, rr = send_message(mta.port, "alice@example.test", ["user@remote.test"],
                             make_message(mid, to="user@remote.test"))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    qid = st.queue_id(final)
    got = lab.remote_mx.wait(mid.encode(), timeout=PROMPT)
    elapsed = time.monotonic() - t0
    assert got, "ordinary mail not delivered within %.0f s while tcp_notify sat in the tarpit; log:\n%s" % (
        PROMPT, mta.log_excerpt(qid))
    assert elapsed < PROMPT, elapsed

    # Keep watching a little: the limit must hold while the DSNs wait.
    time.sleep(3)
    stats = tarpit.stats()
    assert stats["max_open"] <= 2, "the tarpit saw %d concurrent connections (NOTIFY_POOL job_limit=2)" % \
        stats["max_open"]
    assert stats["open"] >= 1, "no connection to the tarpit is open any more: %r" % stats
    jobs = mta.events("job_start", channel="tcp_notify")
    assert jobs, "no tcp_notify job_start lines (log_level=debug)"
    assert all(ln.kv.get("pool") == "NOTIFY_POOL" for ln in jobs), jobs
    over = [ln for ln in jobs if int(ln.kv.get("pool_jobs", "0")) > 2 or int(ln.kv.get("channel_jobs", "0")) > 2]
    assert not over, "NOTIFY_POOL ran more than 2 jobs:\n%s" % "\n".join(map(repr, over))
    ordinary = [ln for ln in mta.events("job_start") if ln.id == qid]
    assert ordinary and all(ln.kv.get("pool") == "DEFAULT" for ln in ordinary), ordinary
    # The DSNs are still waiting in tcp_notify's queue, none lost and none delivered.
    assert len(mta.queue_files("tcp_notify")) >= N_DSNS - 2, \
        "only %d DSNs left in tcp_notify's queue" % len(mta.queue_files("tcp_notify"))
