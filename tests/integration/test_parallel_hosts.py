"""test_parallel_hosts.py - issue 15: one message for several domains on one SMTP channel goes to
their hosts in parallel, one job per destination host, within the channel's maxjobs and the
pool's job_limit, not one host at a time.

Each message (to slow1.C.test, slow2.C.test and fast.C.test, C the channel) names two domains whose MX is a tarpit (accepts, never greets) first, then a domain
whose MX is a sink. tcp_par (maxjobs 10) starts a job per host at once: the sink has its copy
while both tarpits hold a connection. tcp_lim (maxjobs 2) and tcp_pool (pool SMALL_POOL,
job_limit=2) run two jobs at most: the tarpits take both slots and the sink's copy waits until
their greeting timeout (4 s) frees them. Peers: 127.X.Y.2/.3 tarpits, .4 sink.
"""
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message

CNF = """\
example.test   $U%$D@local-daemon
{rules}.              $U%$H@tcp_local-daemon

defaults

l
local-daemon

tcp_local smtp mx port {port}
tcp_local-daemon

tcp_par smtp mx port {port} maxjobs 10
tcp_par-daemon

tcp_lim smtp mx port {port} maxjobs 2
tcp_lim-daemon

tcp_pool smtp mx port {port} maxjobs 10 pool SMALL_POOL
tcp_pool-daemon
"""

GREETING = 4


def uid():
    return uuid.uuid4().hex[:12]


CHANNELS = ("par", "lim", "pool")


def domains(ch):
    return ["slow1.%s.test" % ch, "slow2.%s.test" % ch, "fast.%s.test" % ch]


@pytest.fixture(scope="module")
def lab(module_harness):
    mx = {}
    for ch in CHANNELS:
        for d, n in zip(domains(ch), (2, 3, 4)):
            mx[d] = n
    lab = st.Lab(module_harness, mx=mx, probe="fast.par.test")
    lab.tarpits = [lab.start_tarpit(2), lab.start_tarpit(3)]
    lab.sink = lab.start_sink(4, name="sink")
    lab.mta = lab.sluice(start=False)
    rules = "".join("%-14s $U%%$D@tcp_%s-daemon\n" % (d, ch) for ch in CHANNELS for d in domains(ch))
    lab.mta.write("sluice.cnf", CNF.format(port=lab.port, rules=rules))
    lab.mta.write("job_controller.cnf", "[POOL=DEFAULT]\njob_limit=10\n\n[POOL=SMALL_POOL]\njob_limit=2\n")
    for ch in CHANNELS:
        lab.mta.write("tcp_%s_option" % ch, "GREETING_TIMEOUT=%d\n" % GREETING)
    lab.mta.start()
    return lab


def open_total(lab):
    return sum(t.stats()["open"] for t in lab.tarpits)


@pytest.mark.parametrize("channel,parallel", [("par", True), ("lim", False), ("pool", False)])
def test_hosts_in_parallel_within_limits(lab, channel, parallel):
    tag = uid()
    rcpts = ["u@" + d for d in domains(channel)]
    st.wait_until(lambda: open_total(lab) == 0, GREETING + 10, what="the tarpits idle")
    t0 = time.monotonic()
    final, _ = send_message(lab.mta.port, "alice@example.test", rcpts, make_message(tag, to=rcpts[0]))
    assert final.code == 250
    if parallel:
        # both tarpits hold a connection at the same time as the sink gets its copy
        st.wait_until(lambda: open_total(lab) == 2, GREETING - 1, what="both tarpits connected")
    st.wait_until(lambda: lab.sink.find(tag.encode()), GREETING * 3 + 10, what="the sink's copy")
    took = time.monotonic() - t0
    if parallel:
        assert took < GREETING - 1, took
        assert open_total(lab) == 2
    else:
        assert took >= GREETING - 0.5, took
    env = lab.sink.find(tag.encode())[0][0]
    assert env["rcpt_tos"] == [rcpts[2]]
