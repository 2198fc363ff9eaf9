"""test_fleet.py - reject codes for fleets of MX hosts (reject_mode, seed document 002).

A real dnsmasq serves the MX records; the daemon's host_name is mx.example.test. It is the last
MX (highest preference number) of last.test and the first of first.test; nobody.test's MX
records do not exist (dnsmasq answers NXDOMAIN, and the domain is not our host name, so we are
not its implicit MX either). The same unknown recipient, the same
relay attempt and the same disabled mailbox are answered:

- reject_mode=hard: 5xx everywhere;
- reject_mode=soft: the 4xx counterpart everywhere (450 4.1.1, 450 4.7.1, 450 4.2.1);
- reject_mode=auto: 5xx for last.test, 4xx for first.test and where DNS cannot tell.

Refusals that do not rest on local data (the fixed SIZE limit) stay 5xx in every mode.
"""
import pytest

import sluicetest as st
from sluicetest import Client

LDIF = """\
dn: dc=last,dc=test
objectClass: mailDomain

dn: uid=alice,dc=last,dc=test
objectClass: mailUser
mail: alice@last.test

dn: uid=gone,dc=last,dc=test
objectClass: mailUser
mail: gone@last.test
mailUserStatus: deleted

dn: dc=first,dc=test
objectClass: mailDomain

dn: uid=gone,dc=first,dc=test
objectClass: mailUser
mail: gone@first.test
mailUserStatus: deleted

dn: dc=nomx,dc=test
objectClass: mailDomain
"""

CNF = ("last.test   $U%$D@local-daemon\n"
       "first.test  $U%$D@local-daemon\n"
       "nomx.test   $U%$D@local-daemon\n"
       ".           $U%$H@tcp_local-daemon\n"
       "\n"
       "defaults\n\n"
       "l\nlocal-daemon\n\n"
       "tcp_local smtp mx\ntcp_local-daemon\n")


@pytest.fixture(scope="module")
def dns(module_harness):
    records = [
        "mx-host=last.test,mx1.example.test,10",
        "mx-host=last.test,mx.example.test,20",
        "mx-host=first.test,mx.example.test,10",
        "mx-host=first.test,mx9.example.test,40",
        "host-record=mx.example.test,127.0.0.1",
    ]
    return module_harness.dnsmasq(records, probe="last.test")


def mta_in_mode(harness, dns, mode):
    mta = harness.sluice(start=False, ldif=LDIF, options={"reject_mode": mode,
                                                          "dns_servers": "127.0.0.1:%d" % dns.port,
                                                          "internal_networks": "192.0.2.0/24"})
    mta.write("sluice.cnf", CNF)
    mta.start()
    return mta


def replies(mta):
    """replies - {recipient: (code, enhanced)} for the probes, one outside client session."""
    out = {}
    with Client(mta.port, source="127.0.0.2") as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<someone@elsewhere.test>").code == 250
        for rcpt in ("nobody@last.test", "nobody@first.test", "nobody@nomx.test", "gone@last.test",
                     "gone@first.test", "x@relay.elsewhere.test"):
            r = c.cmd("RCPT TO:<%s>" % rcpt)
            out[rcpt] = (r.code, r.enhanced())
        assert c.cmd("RSET").code == 250
        r = c.cmd("MAIL FROM:<someone@elsewhere.test> SIZE=%d" % (5 * 1024 * 1024))
        out["size"] = (r.code, r.enhanced())
        c.quit()
    return out


EXPECT = {
    "hard": {"nobody@last.test": (550, "5.1.1"), "nobody@first.test": (550, "5.1.1"),
             "nobody@nomx.test": (550, "5.1.1"), "gone@last.test": (550, "5.2.1"),
             "gone@first.test": (550, "5.2.1"), "x@relay.elsewhere.test": (550, "5.7.1"), "size": (552, "5.3.4")},
    "soft": {"nobody@last.test": (450, "4.1.1"), "nobody@first.test": (450, "4.1.1"),
             "nobody@nomx.test": (450, "4.1.1"), "gone@last.test": (450, "4.2.1"),
             "gone@first.test": (450, "4.2.1"), "x@relay.elsewhere.test": (450, "4.7.1"), "size": (552, "5.3.4")},
    "auto": {"nobody@last.test": (550, "5.1.1"), "nobody@first.test": (450, "4.1.1"),
             "nobody@nomx.test": (450, "4.1.1"), "gone@last.test": (550, "5.2.1"),
             "gone@first.test": (450, "4.2.1"), "x@relay.elsewhere.test": (450, "4.7.1"), "size": (552, "5.3.4")},
}


@pytest.mark.parametrize("mode", ["hard", "soft", "auto"])
def test_reject_mode(harness, dns, mode):
    mta = mta_in_mode(harness, dns, mode)
    got = replies(mta)
    assert got == EXPECT[mode], got
    if mode == "auto":
        # a second unknown recipient of the same domain is answered from the cache: no new MX lookup
        lookups = [ln for ln in mta.events("fleet_mx") if ln.kv.get("domain") == "last.test"]
        assert len(lookups) == 1 and lookups[0].kv.get("last") == "yes", lookups
        assert replies(mta)["nobody@last.test"] == (550, "5.1.1")
        assert len([ln for ln in mta.events("fleet_mx") if ln.kv.get("domain") == "last.test"]) == 1
