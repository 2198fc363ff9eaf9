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


FLEET_LDIF = """\
dn: dc=fleet,dc=test
objectClass: mailDomain

dn: uid=valid,dc=fleet,dc=test
objectClass: mailUser
mail: valid@fleet.test
"""

# MX 10 lacks the user (a replica behind, or its directory unreachable): it must not hard-fail.
FLEET_LDIF_BEHIND = """\
dn: dc=fleet,dc=test
objectClass: mailDomain
"""

SENDER_LDIF = """\
dn: dc=sender,dc=test
objectClass: mailDomain

dn: uid=alice,dc=sender,dc=test
objectClass: mailUser
mail: alice@sender.test
"""


@pytest.mark.parametrize("mx10", ["behind", "ldap_down"])
def test_fleet_of_four(harness, mx10):
    """Four Sluice MX hosts of fleet.test (MX 10/20/30/40, reject_mode=auto) and a Sluice sender:
    a valid recipient arrives even though MX 10 lacks its entry (behind: 450 there) or cannot ask
    its LDAP server (ldap_down: 451 there), because MX 20 takes it in the same attempt; an unknown
    recipient is refused 4xx by MX 10-30 and 5xx by MX 40, and the sender gets exactly one bounce,
    without waiting for a retry."""
    import uuid
    lab = st.Lab(harness, mx={"fleet.test": [2, 3, 4, 5]})
    mxs = {}
    for i, n in enumerate((2, 3, 4, 5), 1):
        opts = {"reject_mode": "auto"}
        if i == 1 and mx10 == "ldap_down":  # nothing listens there
            opts.update({"ldap_uri": "ldap://127.0.0.1:%d" % st.free_port(), "ldap_base_dn": "dc=fleet,dc=test",
                         "ldap_timeout": "2"})
        m = lab.sluice(start=False, host_name="mx%d.fleet.test" % i, ldif=FLEET_LDIF_BEHIND if i == 1 else FLEET_LDIF,
                       options=opts)
        m.write("dispatcher.cnf", "[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=%s\nPARAMETER=CHANNEL=tcp_local\n"
                % (lab.port, lab.addr[n]))
        m.write("sluice.cnf", "fleet.test $U%$D@local-daemon\n. $U%$H@tcp_local-daemon\n\ndefaults\n\n"
                              "l\nlocal-daemon\n\ntcp_local smtp mx\ntcp_local-daemon\n")
        m.start()
        mxs[i] = m
    sender = lab.sluice(start=False, host_name="mx.sender.test", ldif=SENDER_LDIF,
                        tcp_local="smtp mx port %d" % lab.port, options={"retry_interval": "60", "retry_max": "60"})
    sender.write("sluice.cnf", "sender.test $U%$D@local-daemon\n. $U%$H@tcp_local-daemon\n\ndefaults\n\n"
                               "l\nlocal-daemon\n\ntcp_local smtp mx port " + str(lab.port) + "\ntcp_local-daemon\n")
    sender.start()
    mid = "fleet-%s@test" % uuid.uuid4().hex[:10]
    r, rr = st.send_message(sender.port, "alice@sender.test", ["valid@fleet.test", "unknown@fleet.test"],
                            st.make_message(mid, to="valid@fleet.test", frm="alice@sender.test"))
    assert r.code == 250 and [x.code for x in rr] == [250, 250], (r, rr)
    got = mxs[2].wait_message("valid@fleet.test", mid.encode(), timeout=30)
    assert got, "the valid recipient did not arrive at MX 20"
    assert not mxs[1].find_messages("valid@fleet.test", mid.encode())
    bounce = sender.wait_message("alice@sender.test", b"unknown@fleet.test", timeout=30)
    assert len(bounce) == 1 and b"Action: failed" in bounce[0] and b"5.1.1" in bounce[0], bounce
    codes = {i: [ln.kv.get("code") for ln in mxs[i].events("rcpt_rejected") if "unknown@fleet.test" in ln.raw]
             for i in mxs}
    first = "451" if mx10 == "ldap_down" else "450"
    assert codes[1] == [first] and codes[2] == ["450"] and codes[3] == ["450"] and codes[4] == ["550"], codes
    assert not [ln for ln in sender.events("deferred") if "unknown@fleet.test" in ln.raw], "waited for a retry"
