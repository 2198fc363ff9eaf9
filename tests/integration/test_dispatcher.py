"""test_dispatcher.py - dispatcher services: a privileged port bound before switching to run_as,
per-client connection limits, and an IPv6 service address.
"""
import os
import socket
import time

import sluicetest as st
from sluicetest import make_message, send_message


def proc_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[2])  # effective uid
    return None


def test_privileged_port_then_run_as_nobody(harness):
    if os.geteuid() != 0:
        import pytest
        pytest.skip("needs root to bind port 25")
    addr = st.loopback_net() + ".25"
    mta = harness.sluice(start=False, options={"run_as": "nobody"})
    # the unprivileged user must be able to reach its queue and Maildirs (operator's duty, see docs)
    d = mta.workdir
    while d not in ("/", "/tmp", ""):
        os.chmod(d, 0o755)
        d = os.path.dirname(d)
    mta.write("dispatcher.cnf", "[SERVICE=SMTP]\nPORT=25\nINTERFACE_ADDRESS=%s\nPARAMETER=CHANNEL=tcp_local\n" % addr)
    mta.start()
    assert any(ln.event == "privileges_dropped" for ln in mta.log()), mta.log_text()[-2000:]
    import pwd
    assert proc_uid(mta.proc.pid) == pwd.getpwnam("nobody").pw_uid
    mid = "runas-%d@test" % int(time.time() * 1000)
    with st.Client(25, host=addr) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<someone@sender.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        r = c.data(make_message(mid))
        assert r.code == 250, r
        c.quit()
    # the unprivileged daemon can still write its queue and the Maildir
    assert mta.wait_message("bob@example.test", mid.encode(), timeout=20)


def test_max_per_client(harness):
    # internal_networks are exempt from the per-client limit (as Postfix exempts mynetworks)
    mta = harness.sluice(start=False, options={"internal_networks": "192.0.2.0/24"})
    mta.write("dispatcher.cnf", "[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\nMAX_PER_CLIENT=2\n"
              "PARAMETER=CHANNEL=tcp_local\n" % mta.port)
    mta.start()
    keep = [st.Client(mta.port), st.Client(mta.port)]
    try:
        third = socket.create_connection(("127.0.0.1", mta.port), timeout=5)
        data = third.recv(200)
        assert data.startswith(b"421 4.7.0"), data
        assert third.recv(10) == b""  # closed
        third.close()
        keep[0].quit()
        keep[0].close()
        keep.pop(0)
        # a slot freed: a new session is served again
        def served():
            try:
                with st.Client(mta.port) as c:
                    return c.ehlo().code == 250
            except Exception:
                return False
        assert st.wait_until(served, 5)
    finally:
        for k in keep:
            k.close()


def test_ipv6_service(harness):
    mta = harness.sluice(start=False)
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    mta.write("dispatcher.cnf", "[SERVICE=SMTP6]\nPORT=%d\nINTERFACE_ADDRESS=::1\nPARAMETER=CHANNEL=tcp_local\n" % port)
    mta.start()
    s = socket.create_connection(("::1", port), timeout=5)
    assert s.recv(200).startswith(b"220 ")
    s.sendall(b"QUIT\r\n")
    assert s.recv(200).startswith(b"221")
    s.close()
