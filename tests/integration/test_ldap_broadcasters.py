"""test_ldap_broadcasters.py - dynamic broadcaster lists: mgrpAllowedBroadcaster and
mgrpDisallowedBroadcaster values that are LDAP URLs (doc/recipient-policy.md, "Groups"), through
the real daemon against a real slapd loaded with etc/sluice.schema, and through the embedded
backend on the same entries:

- a group whose allowed broadcasters are "the people of the sales department" (an LDAP URL)
  accepts a sender of that department (by mail and by mailAlternateAddress) and refuses another
  one with the group's mailRejectText; the same for a disallowed list; both backends answer alike;
- an URL whose filter the embedded backend cannot evaluate is a 451 with a log line, never a guess;
- an answer about a URL is cached (a second identical question costs no search); slapd stopped
  while the group's entry is still cached: a URL question not asked before cannot be evaluated,
  the answer is 451 4.3.0 and the log names the URL and the backend;
- the AUTH identity is compared as well as the envelope sender;
- a dynamic group (groupOfURLs + mailGroup with memberURL, dyngroup.schema in slapd): a message to
  it reaches exactly the entries the URL selects, with both backends; a memberURL the embedded
  backend cannot evaluate is a 451.

Each slapd runs on a free loopback port in the test's directory and is stopped at teardown.
"""
import pytest

import sluicetest as st
import tlsauth
from test_ldap import counters, entry, ldap_sluice, rcpt, sluice_cnf, user, wait_connected

SALES = "ldap:///ou=people,dc=example,dc=test??sub?(departmentNumber=sales)"
SUPPORT = "ldap:///ou=people,dc=example,dc=test??sub?(departmentNumber=support)"
REJECT_TEXT = "Only the sales department may write to this list"


def group(cn, *extra):
    return entry("cn=%s,ou=groups,dc=example,dc=test" % cn, "objectClass: groupOfNames", "objectClass: mailGroup",
                 "cn: " + cn, "mail: %s@example.test" % cn, "member: uid=bob,ou=people,dc=example,dc=test", *extra)


def build_ldif():
    return "\n".join([
        entry("dc=example,dc=test", "objectClass: top", "objectClass: domain", "objectClass: mailDomain",
              "dc: example", "associatedDomain: example.test"),
        entry("ou=people,dc=example,dc=test", "objectClass: organizationalUnit", "ou: people"),
        entry("ou=groups,dc=example,dc=test", "objectClass: organizationalUnit", "ou: groups"),
        user("ann", "ann@example.test", "mailAlternateAddress: a.n@example.test", "departmentNumber: sales"),
        user("bob", "bob@example.test", "departmentNumber: support"),
        user("cy", "cy@example.test"),
        group("sales-only", "mgrpAllowedBroadcaster: " + SALES, "mailRejectText: " + REJECT_TEXT),
        group("no-support", "mgrpDisallowedBroadcaster: " + SUPPORT),
        group("sales-or-cy", "mgrpAllowedBroadcaster: " + SALES, "mgrpAllowedBroadcaster: cy@example.test"),
        group("ranged", "mgrpAllowedBroadcaster: ldap:///ou=people,dc=example,dc=test??sub?(uidNumber>=100)"),
        entry("cn=sales-dyn,ou=groups,dc=example,dc=test", "objectClass: groupOfURLs", "objectClass: mailGroup",
              "cn: sales-dyn", "mail: sales-dyn@example.test", "memberURL: " + SALES,
              "mgrpRFC822MailMember: cy@example.test"),
        entry("cn=ranged-dyn,ou=groups,dc=example,dc=test", "objectClass: groupOfURLs", "objectClass: mailGroup",
              "cn: ranged-dyn", "mail: ranged-dyn@example.test",
              "memberURL: ldap:///ou=people,dc=example,dc=test??sub?(uidNumber>=100)"),
    ])


@pytest.fixture(scope="module")
def both(module_harness):
    """both - slapd, a daemon with the LDAP backend and one with the embedded backend, same entries."""
    h = module_harness
    ldif = build_ldif()
    slapd = h.slapd(ldif)
    emb = h.sluice(start=False, ldif=ldif)
    emb.write("sluice.cnf", sluice_cnf())
    emb.start()
    lda = ldap_sluice(h, slapd)
    return slapd, emb, lda


CASES = [
    # (sender, group, code)
    ("ann@example.test", "sales-only", 250),
    ("a.n@example.test", "sales-only", 250),      # her alternate address
    ("bob@example.test", "sales-only", 550),      # support
    ("cy@example.test", "sales-only", 550),       # no department
    ("stranger@client.test", "sales-only", 550),  # not in the directory at all
    ("bob@example.test", "no-support", 550),
    ("ann@example.test", "no-support", 250),
    ("stranger@client.test", "no-support", 250),
    ("cy@example.test", "sales-or-cy", 250),      # a static value beside the URL
    ("ann@example.test", "sales-or-cy", 250),
    ("bob@example.test", "sales-or-cy", 550),
]


@pytest.mark.parametrize("backend", ["ldap", "embedded"])
@pytest.mark.parametrize("sender,grp,code", CASES)
def test_url_broadcasters(both, backend, sender, grp, code):
    _, emb, lda = both
    mta = lda if backend == "ldap" else emb
    r = rcpt(mta.port, "%s@example.test" % grp, mail_from=sender)
    assert r.code == code, (r, mta.log_excerpt("group", "url"))
    if grp == "sales-only" and code == 550:
        assert REJECT_TEXT in r.text, r
    if code == 550:
        assert mta.wait_event(lambda ln: ln.event == "group_refused" and ln.kv.get("from") == "<%s>" % sender, 5), \
            mta.log_excerpt("group")


def test_unevaluable_filter(both):
    """A filter the embedded backend cannot evaluate (>=) is a 451 with a log line; slapd evaluates it."""
    _, emb, lda = both
    r = rcpt(emb.port, "ranged@example.test", mail_from="ann@example.test")
    assert r.code == 451 and r.enhanced() == "4.3.0", r
    assert emb.wait_event(lambda ln: ln.event == "group_url_failed" and "cannot evaluate" in ln.kv.get("error", ""), 5), \
        emb.log_excerpt("group")
    r = rcpt(lda.port, "ranged@example.test", mail_from="ann@example.test")
    assert r.code == 550, r  # ann has no uidNumber: a definite no from the server


def test_slapd_stopped_is_temporary(harness):
    slapd = harness.slapd(build_ldif())
    mta = ldap_sluice(harness, slapd)
    assert rcpt(mta.port, "sales-only@example.test", mail_from="ann@example.test").code == 250
    searches = counters(mta)["searches.url"]
    # the same question again is answered from the cache: no search
    assert rcpt(mta.port, "sales-only@example.test", mail_from="ann@example.test").code == 250
    assert counters(mta)["searches.url"] == searches
    slapd.stop()  # the group's entry stays cached; a URL question not asked before needs the server
    r = rcpt(mta.port, "sales-only@example.test", mail_from="a.n@example.test")
    assert r.code == 451 and r.enhanced() == "4.3.0", r
    ok = mta.wait_event(lambda ln: ln.event == "group_url_failed" and ln.kv.get("backend") == "ldap"
                        and "departmentNumber=sales" in ln.kv.get("url", ""), 10)
    assert ok, mta.log_excerpt("group", "ldap")
    # a refusal needs the directory too: never a 5xx while it cannot answer
    assert rcpt(mta.port, "sales-only@example.test", mail_from="bob@example.test").code == 451


def test_dynamic_group(both):
    """memberURL: the sales department (ann) plus a static member (cy); never bob."""
    _, emb, lda = both
    for n, mta in enumerate((emb, lda)):
        mid = b"dyn-%d@client.test" % n
        final, _ = st.send_message(mta.port, "sender@client.test", ["sales-dyn@example.test"],
                                   st.make_message(mid.decode(), to="sales-dyn@example.test"))
        assert final.code == 250, (final, mta.log_excerpt("expand", "ldap_"))
        assert mta.wait_message("ann@example.test", mid, timeout=20), mta.log_excerpt("ann")
        assert mta.wait_message("cy@example.test", mid, timeout=20), mta.log_excerpt("cy")
        assert not mta.find_messages("bob@example.test", mid)
    assert not lda.events("ldap_data_error"), lda.log_excerpt("ldap_")


def test_dynamic_group_unevaluable(both):
    _, emb, lda = both
    r = rcpt(emb.port, "ranged-dyn@example.test")
    assert r.code == 451 and r.enhanced() == "4.3.0", r
    r = rcpt(lda.port, "ranged-dyn@example.test")  # nobody has a uidNumber: no deliverable member
    assert r.code == 550, r


def test_auth_identity_matches(harness):
    """The AUTH identity is compared too: a stranger's envelope, authenticated as ann, may submit."""
    ldif = build_ldif().replace("departmentNumber: sales", "departmentNumber: sales\nuserPassword: "
                                + tlsauth.crypt_password(tlsauth.PASSWORD), 1)
    slapd = harness.slapd(ldif)
    mta = ldap_sluice(harness, slapd, start=False)
    mta.write("dispatcher.cnf", tlsauth.dispatcher([("SMTP", {"PORT": mta.port, "INTERFACE_ADDRESS": "127.0.0.1",
                                                             "PARAMETER": "CHANNEL=tcp_local",
                                                             "AUTH_WITHOUT_TLS": "yes"})]))
    mta.start()
    wait_connected(mta)
    with st.Client(mta.port) as c:
        c.ehlo()
        assert tlsauth.auth_plain(c, "ann@example.test", tlsauth.PASSWORD).code == 235
        assert c.cmd("MAIL FROM:<stranger@client.test>").code == 250
        r = c.cmd("RCPT TO:<sales-only@example.test>")
        assert r.code == 250, (r, mta.log_excerpt("group"))
        c.quit()
    with st.Client(mta.port) as c:  # the same envelope without AUTH is refused
        c.ehlo()
        assert c.cmd("MAIL FROM:<stranger@client.test>").code == 250
        assert c.cmd("RCPT TO:<sales-only@example.test>").code == 550
        c.quit()
