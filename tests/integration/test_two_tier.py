"""test_two_tier.py - issue 4's two-tier notification path with the seed configuration: a
back-end Sluice hands its DSNs to the front-end's notify port, which the dispatcher binds to
`tcp_notify` and PORT_ACCESS reserves for the back-ends; the front-end's notification rule
(`$Mprocess_dsn$Mtcp_notify`) sends them on by its own `tcp_notify` to the sender domain's MX.

    sender --SMTP--> back-end --LMTP--> Dovecot (carol's 1K quota: 552 5.2.2 after DATA)
    back-end: DSN -> process_dsn -> tcp_notify (daemon [front-end] port NOTIFY)
    front-end NOTIFY service (channel tcp_notify, PORT_ACCESS/BE_IP) -> tcp_notify -> MX sink

Addresses, for a random 127.X.Y of this module: front-end 127.X.Y.3, the sender domain's MX (an
aiosmtpd sink) 127.X.Y.4, Dovecot LMTP 127.X.Y.5, the stranger 127.X.Y.9; dnsmasq on 127.0.0.1.
The back-end is 127.X.Y.2: its tcp_notify channel binds that source address (channel keyword
interfaceaddress), so that is the address the front-end's PORT_ACCESS sees. The seed's tables are
used verbatim with 127.0.0.2 replaced by that address and 2025 by the notify port (both must be
free per test).
"""
import re
import time
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message

SENDER = "someone@sender.test"

SEED_MAPPINGS = """\
! mappings (issue 4 seed; the back-end's address and the notify port filled in)
PORT_ACCESS

  *|*|{port}|*|*   $C$|BE_IP;$2|$Y$E
  *|*|{port}|*|*   $N

BE_IP

  {be}   $Y
  *           $N
"""


def front_end_sluice_cnf(mx_port):
    """The front-end: the seed's rule with $Mtcp_notify, and tcp_notify to the sender's MX."""
    return ("! front-end (issue 4 seed)\n"
            ". $U%$H$,$H@tcp_notify-daemon$Mprocess_dsn$Mtcp_notify\n"
            ".             $U%$H@tcp_local-daemon\n"
            "\n"
            "defaults notificationchannel process_dsn dispositionchannel process_dsn\n"
            "\n"
            "process_dsn\nprocess_dsn-daemon\n"
            "\n"
            "tcp_local smtp mx port " + str(mx_port) + "\ntcp_local-daemon\n"
            "\n"
            "tcp_notify " + st.SEED_TCP_NOTIFY + " port " + str(mx_port) + "\ntcp_notify-daemon\n")


def uid():
    return uuid.uuid4().hex[:12]


def big_body(n=4000):
    line = b"x" * 70 + b"\r\n"
    return line * (n // len(line) + 1)


@pytest.fixture(scope="module")
def lab(module_harness):
    lab = st.Lab(module_harness, mx={"sender.test": 4})
    lab.fe_addr, lab.mx_addr, lab.lmtp_addr, lab.stranger = (lab.host(3), lab.host(4), lab.host(5), lab.host(9))
    lab.be_addr = lab.host(2)
    lab.mx_port = lab.port
    lab.notify_port = st.free_port(lab.fe_addr)
    lab.fe_smtp_port = st.free_port(lab.fe_addr)
    lab.mx = lab.start_sink(4, name="sender-mx")
    lab.store = lab.start_dovecot(lab.lmtp_addr)

    # The front-end first: the back-end's first attempt must find it (backoff "pt4h" after that).
    fe = lab.sluice(start=False, host_name="fe.example.test")
    fe.write("dispatcher.cnf",
             "! front-end\n"
             "[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=%s\nPARAMETER=CHANNEL=tcp_local\n\n"
             "[SERVICE=SMTP_NOTIFY]\nPORT=%d\nINTERFACE_ADDRESS=%s\nPARAMETER=CHANNEL=tcp_notify\n"
             % (lab.fe_smtp_port, lab.fe_addr, lab.notify_port, lab.fe_addr))
    fe.write("sluice.cnf", front_end_sluice_cnf(lab.mx_port))
    fe.write("job_controller.cnf", st.SEED_JOB_CONTROLLER)
    fe.write("mappings", SEED_MAPPINGS.format(port=lab.notify_port, be=lab.be_addr))
    fe.port = lab.fe_smtp_port
    fe.start()
    lab.fe = fe

    # The back-end: issue 3's seed with Dovecot as the store; tcp_notify goes to the front-end.
    be = lab.seed_sluice(lab.notify_port, host_name="be.example.test", lmtp=(lab.lmtp_addr, lab.store.port),
                         local_port=st.free_port(),
                         tcp_notify=st.SEED_TCP_NOTIFY + " daemon [%s] interfaceaddress %s" % (lab.fe_addr, lab.be_addr))
    lab.be = be
    return lab


def test_configurations_check_clean(lab):
    import subprocess
    for mta in (lab.fe, lab.be):
        r = subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, "sluice check refused %s:\n%s" % (mta.confdir, r.stdout + r.stderr)
        assert "warning" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr


def test_port_access_seed_verdicts_in_sluice_test_mapping(lab):
    """The front-end's PORT_ACCESS as `sluice test mapping` sees it, for the back-end and a stranger."""
    import subprocess

    def probe(client):
        s = "TCP|%s|%d|%s|40000" % (lab.fe_addr, lab.notify_port, client)
        return subprocess.run([st.BIN, "test", "mapping", "PORT_ACCESS", s, "-C", lab.fe.confdir],
                              capture_output=True, text=True, timeout=30)
    r = probe(lab.be_addr)
    assert r.returncode == 0 and re.search(r"^result\s*=\s*allow$", r.stdout, re.M), r.stdout + r.stderr
    r = probe(lab.stranger)
    assert r.returncode == 0 and re.search(r"^result\s*=\s*reject$", r.stdout, re.M), r.stdout + r.stderr


def test_backend_failure_dsn_reaches_sender_mx_through_front_end(lab):
    be, fe = lab.be, lab.fe
    mid = "twotier-%s@test" % uid()
    msg = make_message(mid, frm=SENDER, to="carol@example.test", subject="over quota", body=big_body())
    final, rr = send_message(be.port, SENDER, ["carol@example.test", "alice@example.test"], msg)
    assert [r.code for r in rr] == [250, 250] and final.code == 250, (rr, final)
    qid = st.queue_id(final)

    got = lab.mx.wait(mid.encode(), timeout=45)
    assert got, ("no DSN reached the sender's MX.\nback-end log:\n%s\nfront-end log:\n%s" %
                 (be.log_excerpt(qid, "bounce", "requeued", "tcp_notify"), fe.log_excerpt()))

    # The sender's MX got one DSN from <> about carol only.
    time.sleep(1)
    got = lab.mx.find(mid.encode())
    assert len(got) == 1, "the sender's MX got %d DSNs" % len(got)
    env, content = got[0]
    assert st.null_sender(env), "DSN envelope sender is not <>: %r" % env["raw_mail"]
    assert env["rcpt_tos"] == [SENDER], env
    d = st.DSN(content)
    assert d.content_type == "multipart/report" and d.report_type == "delivery-status", content[:2000]
    assert len(d.recipients) == 1, d.recipients
    r = d.recipients[0]
    assert "carol@example.test" in r.get("final-recipient", "").lower(), r
    assert r.get("action", "").lower() == "failed" and r.get("status") == "5.2.2", r
    assert "be.example.test" in d.per_message.get("reporting-mta", ""), d.per_message
    # The DSN was made on the back-end and passed through the front-end, which received it from there.
    rcvd = [re.sub(r"\s+", " ", x) for x in st.parse_mail(content).get_all("Received") or []]
    assert rcvd and "from be.example.test ([%s])" % lab.be_addr in rcvd[0] and "by fe.example.test" in rcvd[0], rcvd

    # Back-end log: bounce -> process_dsn -> requeued -> tcp_notify -> delivered to the front-end.
    bounces = [ln for ln in be.events("bounce") if ln.id == qid]
    assert len(bounces) == 1 and bounces[0].kv.get("channel") == "process_dsn", be.log_excerpt(qid)
    dsn_id = bounces[0].kv.get("id")
    req = [ln for ln in be.events("requeued") if ln.id == dsn_id]
    assert len(req) == 1 and req[0].kv.get("from_channel") == "process_dsn", be.log_excerpt(dsn_id)
    notify_id = req[0].kv.get("id")
    assert st.queued_channels(be, notify_id) == ["tcp_notify"], be.log_excerpt(notify_id)
    done = st.wait_until(lambda: [ln for ln in be.events("delivered") if ln.id == notify_id], 10)
    assert done and done[0].kv.get("channel") == "tcp_notify", be.log_excerpt(notify_id)
    assert lab.fe_addr in done[0].kv.get("relay", ""), \
        "the back-end's tcp_notify did not deliver to the front-end: %s" % done[0].raw
    # ... and the front-end queued it under the id it answered on its notify port.
    m = re.search(r"queued as (\S+)", done[0].kv.get("diag", ""))
    assert m, done[0].raw

    # Front-end log: the back-end connected to the notify service (channel tcp_notify), the DSN was
    # accepted from <>, queued to tcp_notify (the $Mtcp_notify rule) and delivered to the MX.
    sess = [ln for ln in fe.events("connect") if ln.kv.get("channel") == "tcp_notify"
            and ln.kv.get("client") == "[%s]" % lab.be_addr]
    assert sess, "no connection from the back-end on the notify service:\n%s" % fe.log_excerpt("connect")
    sids = {ln.id for ln in sess}
    acc = [ln for ln in fe.events("accepted") if ln.kv.get("session") in sids and ln.kv.get("from") == "<>"]
    assert len(acc) == 1, "front-end accepted %d notifications:\n%s" % (len(acc), fe.log_excerpt("accepted"))
    fid = acc[0].id
    assert fid == m.group(1), "the front-end's notify-port message is not the back-end's DSN: %s vs %s" % (
        fid, m.group(1))
    assert st.queued_channels(fe, fid) == ["tcp_notify"], fe.log_excerpt(fid)
    jobs = [ln for ln in fe.events("job_start") if ln.id == fid]
    assert jobs and all(ln.kv.get("channel") == "tcp_notify" and ln.kv.get("pool") == "NOTIFY_POOL"
                        for ln in jobs), fe.log_excerpt(fid)
    fdone = st.wait_until(lambda: [ln for ln in fe.events("delivered") if ln.id == fid], 10)
    assert fdone and fdone[0].kv.get("channel") == "tcp_notify" and lab.mx_addr in fdone[0].kv.get("relay", ""), \
        fe.log_excerpt(fid)
    assert not [ln for ln in fe.events("reject") if ln.id in sids], fe.log_excerpt(*sids)
    assert st.wait_until(lambda: not fe.queue_files() and not be.queue_files(), 10), \
        (fe.queue_files(), be.queue_files())


def test_stranger_refused_on_notify_port_and_nothing_queued(lab):
    fe = lab.fe
    before = len(fe.events("accepted"))
    c = st.Client(lab.notify_port, host=lab.fe_addr, source=lab.stranger, read_greeting=False)
    try:
        # Talk at once, as a client that ignores the answer would; none of it may be acted on.
        try:
            c.send(b"EHLO stranger.test\r\nMAIL FROM:<>\r\nRCPT TO:<" + SENDER.encode() + b">\r\nDATA\r\n")
        except OSError:
            pass
        replies, closed = c.replies_until_close(timeout=5)
    finally:
        c.close()
    assert replies, "no reply at all from the notify port"
    first = replies[0]
    assert first.code == 554 and first.enhanced() == "5.7.1", "not the PORT_ACCESS rejection: %r" % replies
    assert first.text == "5.7.1 Connection refused by access policy", first
    assert len(replies) == 1, "the session went on after the rejection: %r" % replies
    assert closed, "the connection stayed open after the PORT_ACCESS rejection"

    ln = fe.wait_event(lambda l: l.event == "reject" and l.kv.get("table") == "PORT_ACCESS"
                       and l.kv.get("client") == "[%s]" % lab.stranger, timeout=5)
    assert ln and ln.kv.get("cmd") == "connect", fe.log_excerpt("reject")
    assert ln.kv.get("reply") == first.raw.decode().strip(), (ln.raw, first)
    time.sleep(1)
    assert len(fe.events("accepted")) == before, "something was accepted:\n%s" % fe.log_excerpt("accepted")
    assert not [x for x in fe.log() if x.id == ln.id and x.event in ("mail", "rcpt", "queued")], \
        fe.log_excerpt(ln.id)
    assert not fe.queue_files(), "queued on the front-end: %r" % fe.queue_files()


def test_stranger_may_use_the_ordinary_port(lab):
    """PORT_ACCESS restricts only the notify port: the same stranger gets a greeting on the SMTP port."""
    with st.Client(lab.fe_smtp_port, host=lab.fe_addr, source=lab.stranger) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo()
        c.quit()
