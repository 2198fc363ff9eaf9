"""test_diskfull.py - a full queue file system: the client gets 452 4.3.1, nothing partial is left
in the queue, the daemon keeps serving, and mail is accepted again once there is room.
The queue lives on a small tmpfs mounted by the test (needs root)."""
import os
import subprocess
import time

import pytest

import sluicetest as st
from sluicetest import make_message


@pytest.fixture
def small_queue(harness):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = st.make_tmpdir("diskfull")
    q = os.path.join(d, "queue")
    os.makedirs(q)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", q], check=True, timeout=20)
    yield q
    subprocess.run(["umount", "-l", q], timeout=20)
    st.remove_tmpdir(d)


def send(port, msg):
    with st.Client(port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<someone@sender.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        r = c.data(msg)
        c.quit()
        return r


def test_full_disk_gives_452_and_leaves_nothing(harness, small_queue):
    mta = harness.sluice(start=False, options={"queue_dir": small_queue, "max_message_size": "2M"})
    mta.start()
    big = make_message("big-%d@test" % int(time.time() * 1000), body=(b"z" * 70 + b"\r\n") * 6000)
    r = send(mta.port, big)
    assert r.code == 452 and r.enhanced() == "4.3.1", r
    tmp = os.path.join(small_queue, "tmp")
    assert os.listdir(tmp) == [], os.listdir(tmp)
    assert any(ln.event == "queue_error" for ln in mta.log())
    # the daemon is still there and a message that fits is accepted and delivered
    mid = "small-%d@test" % int(time.time() * 1000)
    r = send(mta.port, make_message(mid))
    assert r.code == 250, r
    assert mta.wait_message("bob@example.test", mid.encode(), timeout=20)
