"""test_ldap_replication.py - Sluice pointed at a replica (issue 10, part 4): two real slapd, a
provider and a syncrepl consumer (refreshAndPersist). The daemon asks the consumer only:

- a user that exists on the provider is accepted (replicated at start);
- a user added on the provider afterwards is accepted once replication brought it over (a
  bounded wait), without restarting Sluice;
- with the provider stopped, the consumer keeps answering and Sluice keeps accepting.
"""
import sluicetest as st
import test_ldap as tl

NEWBIE = """\
dn: uid=newbie,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
objectClass: mailUser
uid: newbie
cn: newbie
sn: Test
mail: newbie@example.test
"""


def replicated(slapd, uid):
    r = slapd.search("(uid=%s)" % uid, "mail")
    return r.returncode == 0 and ("uid=%s," % uid) in r.stdout


def test_sluice_follows_a_replica(harness):
    provider = harness.slapd(tl.build_ldif("{CRYPT}x"), name="provider", role="provider")
    consumer = harness.slapd("", name="consumer", role="consumer", provider=provider)
    assert st.wait_until(lambda: replicated(consumer, "alice"), 20, 0.2), "the consumer did not replicate"
    mta = tl.ldap_sluice(harness, consumer)
    assert tl.rcpt(mta.port, "alice@example.test").code == 250
    r = provider.modify(NEWBIE)
    assert r.returncode == 0, r.stdout + r.stderr
    assert st.wait_until(lambda: replicated(consumer, "newbie"), 20, 0.2), "newbie did not reach the consumer"
    assert tl.rcpt(mta.port, "newbie@example.test").code == 250
    provider.stop()
    assert tl.rcpt(mta.port, "bob@example.test").code == 250, "the replica stopped answering without its provider"
    assert tl.rcpt(mta.port, "nobody@example.test").code == 550
