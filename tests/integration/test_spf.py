"""test_spf.py - the SPF evaluator (RFC 7208 check_host(), src/spf/) against a real DNS server:
dnsmasq on a free port serves the test's TXT, A/AAAA, MX and PTR records, and `sluice test spf IP
MAILFROM [--helo NAME] -C CONFDIR` (whose option.dat dns_servers points at that dnsmasq) prints
the result and the Received-SPF: header. Every result is reached: pass, fail (with an exp=
explanation), softfail, neutral, none, permerror (syntax, two records, more than 10 lookups,
more than 2 void lookups, include/redirect of a domain without a record) and temperror (the DNS
server stopped); include, redirect, exists with macros, a/mx with CIDR lengths, ptr, ip6 and the
HELO identity.
"""
import re
import socket
import subprocess
import time

import pytest

import sluicetest as st

DOM = "spf.test"

RECORDS = [
    # probe for the lab's readiness check, and the hosts the records name
    "mx-host=probe.spf.test,mail.spf.test,10",
    "host-record=mail.spf.test,192.0.2.20,2001:db8:1::20",
    "ptr-record=20.2.0.192.in-addr.arpa,mail.spf.test",
    # one record in two character-strings, joined without a space (RFC 7208 §3.3)
    'txt-record=pass.spf.test,"v=spf1 ip4:192.0.2.0/24"," -all"',
    'txt-record=pass.spf.test,"some-site-verification=abc"',
    'txt-record=exp.spf.test,"v=spf1 ip4:192.0.2.1 -all exp=why.spf.test"',
    'txt-record=why.spf.test,"%{i} may not send mail for %{d} (see %{r})"',
    'txt-record=soft.spf.test,"v=spf1 ip4:192.0.2.1 ~all"',
    'txt-record=neutral.spf.test,"v=spf1 ?all"',
    'txt-record=default.spf.test,"v=spf1 ip4:192.0.2.1"',
    "host-record=nospf.spf.test,192.0.2.30",
    'txt-record=nospf.spf.test,"just text"',
    'txt-record=syntax.spf.test,"v=spf1 ip4:192.0.2.300 -all"',
    'txt-record=unknown.spf.test,"v=spf1 frob:x.spf.test -all"',
    'txt-record=two.spf.test,"v=spf1 -all"',
    'txt-record=two.spf.test,"v=spf1 +all"',
    'txt-record=inc.spf.test,"v=spf1 include:pass.spf.test -all"',
    'txt-record=incnone.spf.test,"v=spf1 include:nospf.spf.test -all"',
    'txt-record=red.spf.test,"v=spf1 redirect=pass.spf.test"',
    'txt-record=rednone.spf.test,"v=spf1 redirect=nospf.spf.test"',
    'txt-record=ex.spf.test,"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all"',
    "host-record=77.2.0.192.joe._spf.ex.spf.test,127.0.0.2",
    'txt-record=v6.spf.test,"v=spf1 ip6:2001:db8::/32 -all"',
    'txt-record=amx.spf.test,"v=spf1 a:mail.spf.test mx:probe.spf.test/24 -all"',
    'txt-record=mx6.spf.test,"v=spf1 mx:probe.spf.test//48 -all"',
    'txt-record=ptr.spf.test,"v=spf1 ptr:spf.test -all"',
    'txt-record=helo.spf.test,"v=spf1 a:mail.spf.test -all"',
    # 11 terms that query DNS: the 11th is one too many
    'txt-record=many.spf.test,"v=spf1 a:h1.spf.test a:h2.spf.test a:h3.spf.test a:h4.spf.test '
    'a:h5.spf.test a:h6.spf.test a:h7.spf.test a:h8.spf.test a:h9.spf.test a:h10.spf.test '
    'a:h11.spf.test -all"',
    # 3 void lookups: the third is one too many
    'txt-record=void.spf.test,"v=spf1 a:n1.spf.test a:n2.spf.test a:n3.spf.test -all"',
    'txt-record=void2.spf.test,"v=spf1 a:n1.spf.test a:n2.spf.test -all"',
] + ["host-record=h%d.spf.test,10.9.9.%d" % (i, i) for i in range(1, 12)]


@pytest.fixture(scope="module")
def lab(module_harness):
    lab = st.Lab(module_harness, records=RECORDS, probe="probe.spf.test")
    lab.mta = lab.sluice(start=False)
    return lab


def spf(lab, ip, mail_from, helo=None, timeout=60):
    """spf - run `sluice test spf`; (fields {key: value}, header text, exit code)."""
    argv = [st.BIN, "test", "spf", ip, mail_from, "-C", lab.mta.confdir]
    if helo:
        argv += ["--helo", helo]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    fields = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^(identity|domain|result|mechanism|explanation|problem) = (.*)$", line)
        if m:
            fields[m.group(1)] = m.group(2)
    header = p.stdout[p.stdout.find("Received-SPF:"):] if "Received-SPF:" in p.stdout else ""
    return fields, header, p.returncode


def result(lab, ip, mail_from, **kw):
    f, _, rc = spf(lab, ip, mail_from, **kw)
    assert rc == 0, f
    return f["result"]


def test_pass_and_fail(lab):
    f, h, rc = spf(lab, "192.0.2.9", "joe@pass.spf.test", helo="client.example.org")
    assert rc == 0
    assert f["result"] == "pass" and f["mechanism"] == "ip4:192.0.2.0/24"
    assert h.startswith("Received-SPF: pass (mx.example.test: domain of joe@pass.spf.test designates")
    assert "client-ip=192.0.2.9;" in h and 'envelope-from="joe@pass.spf.test";' in h
    assert "helo=client.example.org;" in h and "identity=mailfrom;" in h
    assert "Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=joe@pass.spf.test" in h
    f, h, _ = spf(lab, "198.51.100.1", "joe@pass.spf.test")
    assert f["result"] == "fail" and f["mechanism"] == "-all"
    assert f["explanation"] == "pass.spf.test does not designate 198.51.100.1 as permitted sender"
    assert h.startswith("Received-SPF: fail ")


def test_fail_explanation(lab):
    f, _, _ = spf(lab, "198.51.100.1", "joe@exp.spf.test")
    assert f["result"] == "fail"
    assert f["explanation"] == "198.51.100.1 may not send mail for exp.spf.test (see mx.example.test)"


def test_softfail_neutral_none(lab):
    assert result(lab, "198.51.100.1", "a@soft.spf.test") == "softfail"
    assert result(lab, "192.0.2.1", "a@soft.spf.test") == "pass"
    assert result(lab, "198.51.100.1", "a@neutral.spf.test") == "neutral"
    f, _, _ = spf(lab, "198.51.100.1", "a@default.spf.test")  # no directive matched, no redirect
    assert f["result"] == "neutral" and "mechanism" not in f
    assert result(lab, "198.51.100.1", "a@nospf.spf.test") == "none"     # TXT, but no SPF record
    assert result(lab, "198.51.100.1", "a@nothere.spf.test") == "none"   # NXDOMAIN
    assert result(lab, "198.51.100.1", "a@bad..name.test") == "none"     # malformed domain: no query


def test_permerrors(lab):
    for domain, problem in [("syntax", "invalid mechanism"), ("unknown", "unknown mechanism"),
                            ("two", "2 SPF records"), ("many", "more than 10 DNS lookups"),
                            ("void", "more than 2 void DNS lookups"),
                            ("incnone", "include"), ("rednone", "redirect")]:
        f, h, rc = spf(lab, "198.51.100.1", "a@%s.spf.test" % domain)
        assert rc == 0
        assert f["result"] == "permerror", (domain, f)
        assert problem in f["problem"], (domain, f)
        assert h.startswith("Received-SPF: permerror ") and "problem=" in h
    # two void lookups are still allowed
    assert result(lab, "198.51.100.1", "a@void2.spf.test") == "fail"


def test_include_and_redirect(lab):
    f, _, _ = spf(lab, "192.0.2.9", "a@inc.spf.test")
    assert f["result"] == "pass" and f["mechanism"] == "include:pass.spf.test"
    f, _, _ = spf(lab, "198.51.100.1", "a@inc.spf.test")  # the included fail is only "no match"
    assert f["result"] == "fail" and f["mechanism"] == "-all"
    f, _, _ = spf(lab, "192.0.2.9", "a@red.spf.test")
    assert f["result"] == "pass" and f["mechanism"] == "ip4:192.0.2.0/24"
    f, _, _ = spf(lab, "198.51.100.1", "a@red.spf.test")
    assert f["result"] == "fail" and f["explanation"].startswith("pass.spf.test does not designate")


def test_exists_with_macros(lab):
    # %{ir}.%{l1r+-}._spf.%{d}: 77.2.0.192.joe._spf.ex.spf.test exists
    f, _, _ = spf(lab, "192.0.2.77", "joe@ex.spf.test")
    assert f["result"] == "pass" and f["mechanism"].startswith("exists:")
    assert result(lab, "192.0.2.78", "joe@ex.spf.test") == "fail"
    assert result(lab, "192.0.2.77", "ann@ex.spf.test") == "fail"
    assert result(lab, "192.0.2.77", "joe+tag@ex.spf.test") == "pass"  # l1r+-: the part before "+"
    assert result(lab, "192.0.2.77", "tag+joe@ex.spf.test") == "fail"


def test_ip6_a_mx_ptr(lab):
    assert result(lab, "2001:db8::cb01", "a@v6.spf.test") == "pass"
    assert result(lab, "2001:db9::1", "a@v6.spf.test") == "fail"
    assert result(lab, "192.0.2.1", "a@v6.spf.test") == "fail"
    f, h, _ = spf(lab, "2001:db8::cb01", "a@v6.spf.test")
    assert 'client-ip="2001:db8::cb01";' in h  # not a dot-atom: quoted (RFC 7208 §9.1)
    f, _, _ = spf(lab, "192.0.2.20", "a@amx.spf.test")
    assert f["result"] == "pass" and f["mechanism"] == "a:mail.spf.test"
    f, _, _ = spf(lab, "2001:db8:1::20", "a@amx.spf.test")
    assert f["result"] == "pass" and f["mechanism"] == "a:mail.spf.test"
    f, _, _ = spf(lab, "192.0.2.200", "a@amx.spf.test")  # mx with /24
    assert f["result"] == "pass" and f["mechanism"] == "mx:probe.spf.test/24"
    assert result(lab, "192.0.3.20", "a@amx.spf.test") == "fail"
    assert result(lab, "2001:db8:1:ffff::1", "a@mx6.spf.test") == "pass"  # //48
    assert result(lab, "2001:db8:2::1", "a@mx6.spf.test") == "fail"
    f, _, _ = spf(lab, "192.0.2.20", "a@ptr.spf.test")
    assert f["result"] == "pass" and f["mechanism"] == "ptr:spf.test"
    assert result(lab, "192.0.2.21", "a@ptr.spf.test") == "fail"  # no PTR


def test_helo_identity(lab):
    f, h, _ = spf(lab, "192.0.2.20", "<>", helo="helo.spf.test")
    assert f["identity"] == "helo" and f["result"] == "pass"
    assert "identity=helo;" in h and "smtp.helo=helo.spf.test" in h
    assert result(lab, "192.0.2.21", "", helo="helo.spf.test") == "fail"
    # an address literal or a bare IP as HELO is no domain: none, without a query
    for helo in ("[192.0.2.20]", "192.0.2.20", "localhost", "bad_name..test"):
        f, _, _ = spf(lab, "192.0.2.20", "<>", helo=helo)
        assert f["result"] == "none" and f["identity"] == "helo", (helo, f)


def test_temperror_when_dns_is_down(harness):
    lab = st.Lab(harness, records=['txt-record=pass.spf.test,"v=spf1 -all"',
                                   "mx-host=probe.spf.test,mail.spf.test,10"], probe="probe.spf.test")
    lab.mta = lab.sluice(start=False)
    assert result(lab, "192.0.2.9", "a@pass.spf.test") == "fail"
    lab.dns.stop()
    f, h, rc = spf(lab, "192.0.2.9", "a@pass.spf.test")
    assert rc == 0
    assert f["result"] == "temperror" and "DNS TXT lookup of pass.spf.test" in f["problem"]
    assert h.startswith("Received-SPF: temperror ")


# ---------------------------------------------------------------- SPF in the daemon, at MAIL FROM

DAEMON_RECORDS = [
    "mx-host=probe.spf.test,mail.spf.test,10",
    "host-record=mail.spf.test,192.0.2.20",
    'txt-record=daemon.spf.test,"v=spf1 ip4:127.0.0.5 -all exp=why.daemon.spf.test"',
    'txt-record=why.daemon.spf.test,"%{i} is not a mail server of %{d}"',
    'txt-record=soft.daemon.spf.test,"v=spf1 ip4:127.0.0.5 ~all"',
]


def daemon(harness, action, dns=True):
    """daemon - a started Sluice with spf_check on (loopback clients are not internal here)."""
    opts = {"spf_check": "yes", "spf_fail_action": action, "internal_networks": "10.255.255.255/32"}
    if dns:
        lab = st.Lab(harness, records=DAEMON_RECORDS, probe="probe.spf.test")
        return lab.sluice(options=opts)
    return harness.sluice(options=opts)  # dns_servers: a port where nothing answers


def session(mta, source, sender, body_id):
    """session - one message from source to bob@example.test; the replies to MAIL and to the end of data."""
    with st.Client(mta.port, source=source) as c:
        c.ehlo("client.spf.test")
        mail = c.cmd("MAIL FROM:<%s>" % sender)
        end = None
        if mail.code == 250:
            assert c.cmd("RCPT TO:<bob@example.test>").code == 250
            end = c.data(st.make_message(body_id, frm=sender))
        c.quit()
    return mail, end


def test_daemon_pass_and_reject(harness):
    mta = daemon(harness, "reject")
    mail, end = session(mta, "127.0.0.5", "alice@daemon.spf.test", "spf-pass@x")
    assert mail.code == 250 and end.code == 250
    msg = mta.wait_message("bob@example.test", b"spf-pass@x")
    assert msg, "message not delivered"
    raw = msg[0].split(b"\r\n\r\n", 1)[0]
    assert b"\r\n\tclient-ip=" in raw or b"\r\n\t" in raw.split(b"Received-SPF:", 1)[1]  # folded
    head = re.sub(rb"\r\n[ \t]", b" ", raw)  # unfolded
    # Received-SPF above our Received: (RFC 7208 section 9.1), one field, folded
    assert b"Received-SPF: pass (mx.example.test: domain of alice@daemon.spf.test designates" in head
    assert head.index(b"Received-SPF:") < head.index(b"Received: from client.spf.test")
    assert b"client-ip=127.0.0.5;" in head and b"helo=client.spf.test;" in head
    assert head.count(b"Received-SPF:") == 1
    assert b"Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=alice@daemon.spf.test" in head
    ev = mta.events("spf")
    assert any(e.kv.get("result") == "pass" and e.kv.get("client") == "127.0.0.5" for e in ev), ev

    mail, _ = session(mta, "127.0.0.6", "alice@daemon.spf.test", "spf-fail@x")
    assert mail.code == 550
    assert mail.enhanced() == "5.7.23"
    assert "127.0.0.6 is not a mail server of daemon.spf.test" in mail.text
    assert not mta.find_messages("bob@example.test", b"spf-fail@x")

    # softfail is recorded, not refused
    mail, end = session(mta, "127.0.0.6", "alice@soft.daemon.spf.test", "spf-soft@x")
    assert mail.code == 250 and end.code == 250
    msg = mta.wait_message("bob@example.test", b"spf-soft@x")
    assert msg and b"\nReceived-SPF: softfail " in b"\n" + msg[0]


def test_daemon_fail_recorded_only(harness):
    mta = daemon(harness, "none")
    mail, end = session(mta, "127.0.0.6", "alice@daemon.spf.test", "spf-none@x")
    assert mail.code == 250 and end.code == 250
    msg = mta.wait_message("bob@example.test", b"spf-none@x")
    assert msg and b"\nReceived-SPF: fail " in b"\n" + msg[0]
    assert b"spf=fail smtp.mailfrom=alice@daemon.spf.test" in msg[0]


def test_daemon_temperror_is_4xx(harness):
    mta = daemon(harness, "reject", dns=False)
    mail, _ = session(mta, "127.0.0.5", "alice@daemon.spf.test", "spf-temp@x")
    assert mail.code == 451, mail
    assert mail.enhanced() == "4.7.24"
    assert any(e.kv.get("result") == "temperror" for e in mta.events("spf"))


def test_daemon_spf_off_by_default(harness):
    mta = harness.sluice(options={"internal_networks": "10.255.255.255/32"})
    mail, end = session(mta, "127.0.0.6", "alice@daemon.spf.test", "spf-off@x")
    assert mail.code == 250 and end.code == 250
    msg = mta.wait_message("bob@example.test", b"spf-off@x")
    assert msg and b"Received-SPF" not in msg[0]
    assert not mta.events("spf")


def test_daemon_client_leaves_during_check(harness):
    """A DNS server that never answers: the client gives up during the check; the daemon drops the
    check (no crash, no sanitizer report: the teardown checks) and serves the next client."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        mta = harness.sluice(options={"spf_check": "yes", "spf_fail_action": "reject",
                                      "internal_networks": "10.255.255.255/32",
                                      "dns_servers": "127.0.0.1:%d" % silent.getsockname()[1]})
        c = st.Client(mta.port, source="127.0.0.5")
        c.ehlo("client.spf.test")
        c.send(b"MAIL FROM:<alice@daemon.spf.test>\r\n")
        assert st.wait_until(lambda: silent.recv(512, socket.MSG_DONTWAIT) if _readable(silent) else None, 10)
        c.close()
        assert st.wait_until(lambda: mta.events("disconnect"), 10)
        with st.Client(mta.port) as c2:
            c2.ehlo("client.spf.test")
            c2.quit()
    finally:
        silent.close()


def _readable(sock):
    import select
    r, _, _ = select.select([sock], [], [], 0)
    return bool(r)


def test_daemon_spf_result_as_access_flag(harness):
    """The SPF result is an input of the access mappings: the flags of MAIL_ACCESS probes carry
    it (P pass, F fail, S softfail, N neutral/none, X errors), so a table can refuse a fail for
    one destination only while spf_fail_action stays none."""
    lab = st.Lab(harness, records=DAEMON_RECORDS, probe="probe.spf.test")
    mta = lab.sluice(options={"spf_check": "yes", "spf_fail_action": "none",
                              "internal_networks": "10.255.255.255/32"}, start=False)
    mta.write("mappings", "MAIL_ACCESS\n\n"
              "  TCP|*|*|*|*|SMTP*|MAIL|*|*|l|bob@example.test  $:F$NSPF$ fail$ not$ accepted$ for$ bob\n")
    mta.start()
    mail, end = session(mta, "127.0.0.5", "alice@daemon.spf.test", "spf-flag-pass@x")
    assert mail.code == 250 and end.code == 250
    with st.Client(mta.port, source="127.0.0.6") as c:
        c.ehlo("client.spf.test")
        assert c.cmd("MAIL FROM:<alice@daemon.spf.test>").code == 250
        r = c.cmd("RCPT TO:<bob@example.test>")
        assert r.code == 550 and "SPF fail not accepted for bob" in r.text, r
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        c.quit()
