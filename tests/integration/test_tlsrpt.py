"""test_tlsrpt.py - TLS-RPT (RFC 8460, issue 15 section 2, doc/tls.md) against real peers: our
own dnsmasq serves the MX, A and `_smtp._tls` TXT records; aiosmtpd sinks offer STARTTLS with
certificates from a test CA made with the `openssl` CLI (tls_ca_file); an https report endpoint
is Python's http.server behind TLS with a certificate of the same CA.

- mixed.test has two MX hosts: the first shows a certificate for another name (verify fails:
  certificate-host-mismatch), the second a good one (success). One message: 1 success and 1
  failure recorded for mixed.test; good.test: 1 success; norec.test: 1 success but no TLS-RPT
  record; web.test: 1 success, its rua is https.
- The daemon is restarted between the deliveries and `sluice tlsrpt send` (the day file is the
  only memory), then the report reaches the rua mailbox sink as multipart/report;
  report-type="tlsrpt" with the RFC 8460 5.3 headers and a gzipped JSON attachment whose counts,
  policy and date range are checked; the https endpoint gets a POST of application/tlsrpt+gzip;
  norec.test gets no report (logged); a second send sends nothing (never twice).
- plain.test is `encrypt` but its MX offers no STARTTLS: starttls-not-supported.
"""
import datetime
import email
import email.policy
import gzip
import http.server
import json
import os
import ssl
import subprocess
import threading
import uuid

import pytest

import sluicetest as st
from sluicetest import make_message, send_message


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "openssl %s failed: %s" % (" ".join(args), r.stderr)


def make_ca(d):
    """make_ca - a test CA (EC P-256) in d; returns (cert, key)."""
    cert, key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=Sluice TLS-RPT Test CA", "-keyout", key, "-out", cert,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_leaf(d, name, ca, san):
    """make_leaf - a server certificate (subjectAltName san, e.g. DNS:x or IP:a) signed by ca."""
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    csr, ext = os.path.join(d, name + ".csr"), os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n" % san)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=" + name, "-keyout", key, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-days", "2",
            "-extfile", ext, "-out", cert)
    return cert, key


class ReportEndpoint:
    """An https server (http.server with TLS) on addr that records every POST: (path, headers, body)."""

    def __init__(self, addr, cert):
        self.posts = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                n = int(self.headers.get("Content-Length", "0"))
                outer.posts.append((self.path, dict(self.headers), self.rfile.read(n)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = st.free_port(addr)
        self.httpd = http.server.HTTPServer((addr, self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert[0], cert[1])
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.timeout = 5
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


POLICY = """mixed.test  verify  match=mx.good.test
good.test   verify
norec.test  verify  match=mx.good.test
web.test    verify  match=mx.good.test
plain.test  encrypt
"""


@pytest.fixture
def lab(harness, request):
    d = harness.subdir("pki")
    os.makedirs(d, exist_ok=True)
    ca = make_ca(d)
    lab = st.Lab(harness, hosts=[2, 3, 4, 5])
    lab.web = ReportEndpoint(lab.addr[5], make_leaf(d, "reports", ca, "IP:" + lab.addr[5]))
    request.addfinalizer(lab.web.stop)
    records = [
        'txt-record=_smtp._tls.mixed.test,"v=TLSRPTv1; rua=mailto:tls-reports@rua.test"',
        'txt-record=_smtp._tls.good.test,"v=TLSRPTv1;rua=mailto:tls-reports@rua.test;"',
        'txt-record=_smtp._tls.web.test,"v=TLSRPTv1; rua=https://%s:%d/tlsrpt"' % (lab.addr[5], lab.web.port),
        'txt-record=_smtp._tls.plain.test,"v=TLSRPTv1; rua=mailto:tls-reports@rua.test"',
        'txt-record=norec.test,"v=spf1 -all"',  # a TXT record, but none at _smtp._tls.norec.test
    ]
    mx = {"mixed.test": [3, 2],  # mx1: a certificate for mx.other.example.net; mx2: one for mx.good.test
          "good.test": 2, "norec.test": 2, "web.test": 2,
          "plain.test": 4,       # encrypt, but the sink there offers no STARTTLS
          "rua.test": 4}         # the rua mailbox: a plain sink
    lab.dns = harness.dnsmasq([x for dom, w in mx.items() for x in lab.mx_records(dom, w)] + records,
                              probe="mixed.test")
    lab.good = lab.start_sink(2, name="sink-good", tls=make_leaf(d, "mx.good.test", ca, "DNS:mx.good.test"))
    lab.wrong = lab.start_sink(3, name="sink-wrong",
                               tls=make_leaf(d, "mx.other.example.net", ca, "DNS:mx.other.example.net"))
    lab.rua = lab.start_sink(4, name="sink-rua")
    lab.mta = lab.sluice(tcp_local='smtp mx port %d backoff "PT1H"' % lab.port, start=False,
                         options={"tls_ca_file": ca[0], "tls_policy_file": "tls_policy", "tlsrpt": "1",
                                  "tlsrpt_org": "Sluice Test Org", "tlsrpt_contact": "tls-team@example.test"})
    lab.mta.write("tls_policy", POLICY)
    lab.mta.write("tcp_local_option", "MAX_MESSAGES_PER_CONNECTION=1\n")
    lab.mta.start()
    return lab


def send(lab, rcpt):
    mid = "tlsrpt-%s@test" % uuid.uuid4().hex[:16]
    final, rr = send_message(lab.mta.port, "alice@example.test", [rcpt], make_message(mid, to=rcpt))
    assert rr[0].code == 250 and final.code == 250, (rr, final)
    return st.queue_id(final), mid


def cli(lab, *args):
    return subprocess.run([st.BIN, "tlsrpt"] + list(args) + ["-C", lab.mta.confdir], capture_output=True,
                          text=True, timeout=60)


def report_of(raw):
    """report_of - (message, JSON report) of a report message as the rua sink got it."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [p for p in msg.walk() if p.get_content_type() == "application/tlsrpt+gzip"]
    assert len(parts) == 1, raw[:2000]
    return msg, parts[0], json.loads(gzip.decompress(parts[0].get_payload(decode=True)))


def test_reports_after_restart_by_mail_and_https(lab):
    today = datetime.datetime.now(datetime.timezone.utc).date()
    delivered = []
    for rcpt, sink in [("bob@mixed.test", lab.good), ("carol@good.test", lab.good), ("dan@norec.test", lab.good),
                       ("erin@web.test", lab.good)]:
        qid, mid = send(lab, rcpt)
        assert sink.wait(mid.encode(), timeout=30), lab.mta.log_excerpt(qid)
        delivered.append(qid)
    mixed_qid = delivered[0]
    plain_qid, plain_mid = send(lab, "fred@plain.test")
    d = lab.mta.wait_event(lambda ln: ln.event == "delivery" and ln.id == plain_qid, timeout=30)
    assert d and d.kv.get("status") == "4.7.4" and d.kv.get("result") == "deferred", lab.mta.log_excerpt(plain_qid)
    failed = [ln for ln in lab.mta.events("tls_failed") if ln.id == mixed_qid]
    assert failed and "does not match" in failed[0].kv.get("reason", ""), lab.mta.log_excerpt(mixed_qid)
    if datetime.datetime.now(datetime.timezone.utc).date() != today:
        pytest.skip("the UTC day changed during the deliveries")

    # durability: the counts survive a restart (written at stop, read back at start)
    lab.mta.stop()
    dayfile = os.path.join(lab.mta.queue_dir, "tlsrpt", today.isoformat())
    assert os.path.exists(dayfile), os.listdir(os.path.join(lab.mta.queue_dir, "tlsrpt"))
    lab.mta.start()

    r = cli(lab, "send", "--day", today.isoformat())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sent mixed.test" in r.stdout and "sent good.test" in r.stdout and "sent web.test" in r.stdout, r.stdout
    assert "dropped norec.test" in r.stdout, r.stdout

    # mixed.test: 1 success, 1 certificate-host-mismatch
    got = lab.rua.wait(b"TLS-Report-Domain: mixed.test", timeout=30)
    assert got, lab.mta.log_excerpt("tlsrpt")
    env, raw = got[0]
    assert env["rcpt_tos"] == ["tls-reports@rua.test"], env
    msg, part, rep = report_of(raw)
    assert msg.get_content_type() == "multipart/report" and msg.get_param("report-type") == "tlsrpt", msg["Content-Type"]
    assert msg["TLS-Report-Submitter"] == "mx.example.test"
    assert msg["Subject"] == "Report Domain: mixed.test Submitter: mx.example.test Report-ID: <%s>" % rep["report-id"]
    fname = part.get_filename()
    assert fname.startswith("mx.example.test!mixed.test!") and fname.endswith(".json.gz"), fname
    start = int(datetime.datetime(today.year, today.month, today.day, tzinfo=datetime.timezone.utc).timestamp())
    assert fname.split("!")[2:4] == [str(start), str(start + 86399)], fname
    assert rep["organization-name"] == "Sluice Test Org" and rep["contact-info"] == "tls-team@example.test", rep
    assert rep["date-range"] == {"start-datetime": "%sT00:00:00Z" % today, "end-datetime": "%sT23:59:59Z" % today}, rep
    assert len(rep["policies"]) == 1, rep
    pol = rep["policies"][0]
    assert pol["policy"]["policy-type"] == "no-policy-found" and pol["policy"]["policy-domain"] == "mixed.test", pol
    assert pol["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 1}, pol
    fd = pol["failure-details"]
    assert len(fd) == 1 and fd[0]["result-type"] == "certificate-host-mismatch", fd
    assert fd[0]["receiving-mx-hostname"] == "mx1.mixed.test" and fd[0]["receiving-ip"] == lab.addr[3], fd
    assert fd[0]["failed-session-count"] == 1 and fd[0]["sending-mta-ip"].startswith("127."), fd

    # good.test: 1 success, no failures
    got = lab.rua.wait(b"TLS-Report-Domain: good.test", timeout=30)
    assert got
    _, _, rep = report_of(got[0][1])
    assert rep["policies"][0]["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}
    assert rep["policies"][0]["failure-details"] == []

    # plain.test: encrypt without STARTTLS on offer
    got = lab.rua.wait(b"TLS-Report-Domain: plain.test", timeout=30)
    assert got
    _, _, rep = report_of(got[0][1])
    pol = rep["policies"][0]
    assert pol["summary"]["total-successful-session-count"] == 0, pol
    assert pol["summary"]["total-failure-session-count"] >= 1, pol
    assert {f["result-type"] for f in pol["failure-details"]} == {"starttls-not-supported"}, pol
    assert pol["failure-details"][0]["receiving-mx-hostname"] == "mx.plain.test", pol

    # web.test: the https rua got a POST
    assert st.wait_until(lambda: lab.web.posts, 30), lab.mta.log_excerpt("tlsrpt")
    path, headers, body = lab.web.posts[0]
    assert path == "/tlsrpt" and headers.get("Content-Type") == "application/tlsrpt+gzip", headers
    rep = json.loads(gzip.decompress(body))
    assert rep["policies"][0]["policy"]["policy-domain"] == "web.test"
    assert rep["policies"][0]["summary"]["total-successful-session-count"] == 1

    # norec.test: no record, no report; logged
    assert lab.mta.events("tlsrpt_no_record", domain="norec.test")
    assert not lab.rua.find(b"TLS-Report-Domain: norec.test")

    # never twice: a second run has nothing to send, even after another restart
    lab.mta.stop()
    lab.mta.start()
    r = cli(lab, "send", "--day", today.isoformat())
    assert r.returncode == 0 and "no reports pending" in r.stdout, r.stdout + r.stderr
    assert len(lab.rua.find(b"TLS-Report-Domain: mixed.test")) == 1
    assert len(lab.web.posts) == 1


def test_command_when_off_and_usage(harness):
    mta = harness.sluice()
    r = subprocess.run([st.BIN, "tlsrpt", "send", "-C", mta.confdir], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "TLS-RPT is off" in r.stderr, r.stdout + r.stderr
    r = subprocess.run([st.BIN, "tlsrpt", "bogus", "-C", mta.confdir], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "usage: sluice tlsrpt send" in r.stderr, r.stdout + r.stderr


def test_overdue_day_is_reported_at_start_and_damaged_file_set_aside(harness):
    """A day file of yesterday (as a daemon stopped before midnight left it) goes out by itself
    after the start (tlsrpt_delay=0), without any command; a damaged day file is moved aside."""
    lab = st.Lab(harness, mx={"rua.test": 2}, records=[
        'txt-record=_smtp._tls.late.test,"v=TLSRPTv1; rua=mailto:tls-reports@rua.test"'])
    lab.rua = lab.start_sink(2, name="sink-rua")
    lab.mta = lab.sluice(tcp_local='smtp mx port %d backoff "PT1H"' % lab.port, start=False,
                         options={"tlsrpt": "1", "tlsrpt_delay": "0"})
    today = datetime.datetime.now(datetime.timezone.utc).date()
    yesterday = today - datetime.timedelta(days=1)
    d = os.path.join(lab.mta.queue_dir, "tlsrpt")
    os.makedirs(d)
    with open(os.path.join(d, yesterday.isoformat()), "w") as f:
        f.write("tlsrpt 1 %s\ndropped 0\n" % yesterday)
        for i in range(40):  # more than are looked up at once (TLSRPT_PARALLEL): they wait their turn
            f.write("domain nr%d.test 0\npolicy 2 1 0 0 0 0\n" % i)
        f.write("domain late.test 0\npolicy 2 5 2 0 0 0\n"
                "detail 5 2 127.0.0.1 mx.late.test 192.0.2.9 - handshake%20failure\nend\n")
    damaged = (today - datetime.timedelta(days=2)).isoformat()
    with open(os.path.join(d, damaged), "w") as f:
        f.write("tlsrpt 1 %s\ndomain x.test 0\npolicy 2 1\n" % damaged)  # truncated: no end line
    lab.mta.start()
    got = lab.rua.wait(b"TLS-Report-Domain: late.test", timeout=30)
    assert got, lab.mta.log_excerpt("tlsrpt")
    _, _, rep = report_of(got[0][1])
    assert rep["date-range"]["start-datetime"] == "%sT00:00:00Z" % yesterday, rep
    pol = rep["policies"][0]
    assert pol["summary"] == {"total-successful-session-count": 5, "total-failure-session-count": 2}, pol
    assert pol["failure-details"][0]["result-type"] == "validation-failure", pol
    assert pol["failure-details"][0]["failure-reason-code"] == "handshake failure", pol
    assert lab.mta.events("tlsrpt_corrupt"), lab.mta.log_excerpt("tlsrpt")
    assert os.path.exists(os.path.join(d, damaged + ".corrupt"))
    assert lab.mta.wait_event(lambda ln: ln.event == "tlsrpt_sent" and ln.kv.get("domain") == "late.test", 10)
    assert st.wait_until(lambda: len(lab.mta.events("tlsrpt_no_record")) == 40, 30), lab.mta.log_excerpt("tlsrpt")
    # the mark is durable: after a restart nothing goes out again
    lab.mta.stop()
    lab.mta.start()
    r = cli(lab, "send")
    assert r.returncode == 0 and "no reports pending" in r.stdout, r.stdout + r.stderr
    assert len(lab.rua.find(b"TLS-Report-Domain: late.test")) == 1
