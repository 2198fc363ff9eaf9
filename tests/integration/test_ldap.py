"""test_ldap.py - the LDAP directory backend through the real daemon, against a real slapd loaded
with etc/sluice.schema (doc/directory.md, "The LDAP backend"):

- the same entries in directory.ldif (embedded backend) and in slapd (ldap_uri): every RCPT probe
  (each value of inetUserStatus / mailUserStatus / inetGroupStatus / inetMailGroupStatus /
  inetDomainStatus / mailDomainStatus, unknown users, alternate and equivalent addresses, a
  dc=-named domain, forwarding, groups, mailRejectText, a block limit against SIZE=) gets the very
  same reply from both daemons; a nested group with uniqueMember, a disabled member and an
  external member expands to the same mailboxes;
- a local user's mail is delivered to its Maildir; an unknown user is 550 5.1.1;
- AUTH PLAIN against a {CRYPT} userPassword read from LDAP (only the bind DN may read it);
- a second RCPT to the same domain costs no domain search (`sluice queue stats` counters);
- slapd stopped (SIGSTOP): a RCPT that needs a search is answered 451 4.3.0 within ldap_timeout
  while another session whose domain and address are cached is answered at once; SIGCONT: answers
  resume without restarting Sluice;
- two URIs, the first a closed port: answers come from the second;
- a search that finds nothing but returns a continuation reference is a 451, not a 550;
- a wrong bind password: 451 4.3.0, and a log line naming the error;
- SIGHUP while a session waits for a search: the session gets its 451, the new directory answers;
- StartTLS and ldaps:// to a slapd with a certificate (ldap_tls_ca_file); a certificate the CA file
  does not vouch for, and StartTLS to a slapd without one, are 451;
- `sluice check` does not contact the server and says so; the schema loads into slapd with the
  shipped etc/directory.ldif.

Each slapd runs on a free loopback port in the test's directory and is stopped at teardown.
"""
import os
import signal
import subprocess
import threading
import time

import pytest

import sluicetest as st
import tlsauth

STATUS_VALUES = ["active", "inactive", "deleted", "removed", "disabled", "hold", "overquota", "bogus"]


def entry(dn, *lines):
    return "dn: %s\n%s\n" % (dn, "".join(ln + "\n" for ln in lines))


def user(uid, mail, *extra, ou="people", base="dc=example,dc=test"):
    return entry("uid=%s,ou=%s,%s" % (uid, ou, base), "objectClass: inetOrgPerson", "objectClass: mailUser",
                 "uid: " + uid, "cn: " + uid, "sn: Test", "mail: " + mail, *extra)


def group(cn, mail, *extra):
    return entry("cn=%s,ou=groups,dc=example,dc=test" % cn, "objectClass: groupOfNames", "objectClass: mailGroup",
                 "cn: " + cn, "mail: " + mail, *extra)


def build_ldif(password_hash):
    """build_ldif - one directory for both backends: parents first (slapd needs them, the embedded
    backend ignores them)."""
    out = [entry("dc=example,dc=test", "objectClass: top", "objectClass: domain", "objectClass: mailDomain",
                 "dc: example", "associatedDomain: example.test"),
           entry("ou=people,dc=example,dc=test", "objectClass: organizationalUnit", "ou: people"),
           entry("ou=groups,dc=example,dc=test", "objectClass: organizationalUnit", "ou: groups"),
           user("alice", "alice@example.test", "mailAlternateAddress: ali@example.test"),
           user("bob", "bob@example.test"),
           user("erin", "erin@example.test", "mailEquivalentAddress: e.equiv@example.test"),
           user("carol", "carol@example.test", "mailForwardingAddress: carol@elsewhere.test",
                "mailDeliveryOption: forward", "mailDeliveryOption: mailbox"),
           user("fred", "fred@example.test", "mailForwardingAddress: fred@elsewhere.test"),
           user("off", "off@example.test", "mailUserStatus: disabled"),
           user("sub", "sub@example.test", "userPassword: " + password_hash),
           user("rej", "rej@example.test", "mailUserStatus: inactive", "mailRejectText: Gone fishing, back Monday"),
           user("small", "small@example.test", "mailMsgMaxBlocks: 10"),
           group("staff", "staff@example.test", "member: uid=alice,ou=people,dc=example,dc=test",
                 "member: uid=bob,ou=people,dc=example,dc=test"),
           entry("cn=all,ou=groups,dc=example,dc=test", "objectClass: groupOfUniqueNames", "objectClass: mailGroup",
                 "cn: all", "mail: all@example.test",
                 "uniqueMember: cn=staff,ou=groups,dc=example,dc=test",
                 "uniqueMember: uid=erin,ou=people,dc=example,dc=test#'0101'B",
                 "uniqueMember: uid=off,ou=people,dc=example,dc=test",
                 "mgrpRFC822MailMember: dave@partner.test", "mgrpRFC822MailMember: carol@example.test"),
           group("closed", "closed@example.test", "member: uid=off,ou=people,dc=example,dc=test"),
           group("loop", "loop@example.test", "member: cn=loop,ou=groups,dc=example,dc=test",
                 "member: uid=bob,ou=people,dc=example,dc=test"),
           # a domain named only by its dc= components
           entry("dc=sub,dc=example,dc=test", "objectClass: domain", "objectClass: mailDomain", "dc: sub"),
           user("zed", "zed@sub.example.test", base="dc=sub,dc=example,dc=test", ou="people"),
           ]
    out.insert(len(out) - 1, entry("ou=people,dc=sub,dc=example,dc=test", "objectClass: organizationalUnit",
                                   "ou: people"))
    for attr in ("inetUserStatus", "mailUserStatus"):
        for v in STATUS_VALUES:
            out.append(user("u-%s-%s" % (attr.lower(), v), "u-%s-%s@example.test" % (attr.lower(), v),
                            "%s: %s" % (attr, v)))
    for attr in ("inetGroupStatus", "inetMailGroupStatus"):
        for v in STATUS_VALUES:
            out.append(group("g-%s-%s" % (attr.lower(), v), "g-%s-%s@example.test" % (attr.lower(), v),
                             "%s: %s" % (attr, v), "member: uid=bob,ou=people,dc=example,dc=test"))
    for attr in ("inetDomainStatus", "mailDomainStatus"):
        for v in STATUS_VALUES:
            d = "%s-%s" % (attr.lower(), v)
            base = "dc=%s,dc=example,dc=test" % d
            out.append(entry(base, "objectClass: domain", "objectClass: mailDomain", "dc: " + d,
                             "associatedDomain: %s.status.test" % d, "%s: %s" % (attr, v)))
            out.append(entry("ou=people," + base, "objectClass: organizationalUnit", "ou: people"))
            out.append(user("u", "u@%s.status.test" % d, base=base))
    return "\n".join(out)


def probes():
    """probes - RCPT addresses whose replies must not depend on the backend."""
    p = ["alice@example.test", "ALI@Example.TEST", "e.equiv@example.test", "erin@example.test", "nobody@example.test",
         "carol@example.test", "fred@example.test", "off@example.test", "rej@example.test", "staff@example.test",
         "all@example.test", "closed@example.test", "loop@example.test", "zed@sub.example.test",
         "nobody@sub.example.test", "postmaster@example.test", "someone@elsewhere.test"]
    for attr in ("inetuserstatus", "mailuserstatus", "inetgroupstatus", "inetmailgroupstatus"):
        kind = "u" if "user" in attr else "g"
        p += ["%s-%s-%s@example.test" % (kind, attr, v) for v in STATUS_VALUES]
    for attr in ("inetdomainstatus", "maildomainstatus"):
        p += ["u@%s-%s.status.test" % (attr, v) for v in STATUS_VALUES]
    return p


def sluice_cnf():
    """sluice_cnf - example.test and sub.example.test delivered locally; a hold channel for 'hold'."""
    return ("example.test      $U%$D@local-daemon\n"
            "sub.example.test  $U%$D@local-daemon\n"
            ".                 $U%$H@tcp_local-daemon\n"
            "\n"
            "defaults\n"
            "\n"
            "l\nlocal-daemon\n"
            "\n"
            "hold\nhold-daemon\n"
            "\n"
            "tcp_local smtp mx port " + str(st.free_port()) + "\ntcp_local-daemon\n")


def ldap_options(mta_dir, slapd, **extra):
    """ldap_options - option.dat keys pointing a daemon at slapd (the password in a file)."""
    pw = os.path.join(mta_dir, "ldap.pw")
    with open(pw, "w") as f:
        f.write(extra.pop("password", slapd.ROOT_PW) + "\n")
    opts = {"ldap_uri": slapd.uri, "ldap_base_dn": slapd.suffix, "ldap_bind_dn": slapd.root_dn,
            "ldap_bind_password_file": pw, "ldap_timeout": "2"}
    opts.update(extra)
    return opts


def ldap_sluice(h, slapd, ldif="", start=True, **extra):
    """ldap_sluice - a daemon whose directory is slapd (its directory.ldif is empty and unused)."""
    mta = h.sluice(start=False, ldif=ldif)
    mta.options.update(ldap_options(mta.workdir, slapd, **extra))
    mta.write("option.dat", "".join("%s=%s\n" % (k, v) for k, v in mta.options.items() if v is not None))
    mta.write("sluice.cnf", sluice_cnf())
    if start:
        mta.start()
        wait_connected(mta)
    return mta


def wait_connected(mta, timeout=15):
    """wait_connected - wait for the first ldap_connected log line."""
    assert mta.wait_event(lambda ln: ln.event == "ldap_connected", timeout), mta.log_excerpt("ldap")


def rcpt(port, addr, mail_from="sender@client.test", size=None):
    """rcpt - one session: EHLO, MAIL (with SIZE=), RCPT addr; the RCPT reply."""
    with st.Client(port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<%s>%s" % (mail_from, " SIZE=%d" % size if size else ""))
        assert r.code == 250, r
        reply = c.cmd("RCPT TO:<%s>" % addr)
        c.quit()
        return reply


def counters(mta):
    """counters - the key=value figures of the "directory ..." lines of `sluice queue stats`."""
    r = mta.queue("stats")
    assert r.returncode == 0, r.stdout + r.stderr
    out = {}
    for line in r.stdout.splitlines():
        if not line.startswith("directory "):
            continue
        for kv in line.split(":", 1)[1].split():
            if "=" in kv:
                k, v = kv.split("=", 1)
                out["%s.%s" % (line.split(":")[0].split()[1], k)] = int(v)
    return out


@pytest.fixture(scope="module")
def pair(module_harness):
    """pair - slapd, an embedded daemon and an LDAP daemon on the same entries."""
    h = module_harness
    hash_ = tlsauth.crypt_password(tlsauth.PASSWORD)
    ldif = build_ldif(hash_)
    slapd = h.slapd(ldif)
    emb = h.sluice(start=False, ldif=ldif)
    emb.write("sluice.cnf", sluice_cnf())
    emb.start()
    lda = ldap_sluice(h, slapd)
    return slapd, emb, lda


def test_same_replies_as_embedded(pair):
    _, emb, lda = pair
    diffs, codes = [], set()
    for addr in probes():
        a, b = rcpt(emb.port, addr), rcpt(lda.port, addr)
        codes.add(b.code)
        if a.raw != b.raw:
            diffs.append("%s: embedded %r, ldap %r" % (addr, a.raw, b.raw))
    assert not diffs, "\n".join(diffs) + "\n" + lda.log_excerpt("ldap_")
    # the probes cover accepted, temporary and permanent answers; none was a lookup failure
    assert {250, 450, 550}.issubset(codes) and 451 not in codes, codes
    assert not lda.events("ldap_search_failed") and not lda.events("ldap_data_error"), lda.log_excerpt("ldap_")


def test_statuses_are_interpreted(pair):
    _, _, lda = pair
    assert rcpt(lda.port, "u-mailuserstatus-active@example.test").code == 250
    assert rcpt(lda.port, "u-mailuserstatus-disabled@example.test").code // 100 == 5
    assert rcpt(lda.port, "u-inetuserstatus-inactive@example.test").code // 100 == 4
    assert rcpt(lda.port, "u@maildomainstatus-deleted.status.test").code // 100 == 5
    r = rcpt(lda.port, "rej@example.test")
    assert "Gone fishing" in r.text, r


def test_size_limit_same(pair):
    _, emb, lda = pair
    a = rcpt(emb.port, "small@example.test", size=50000)
    b = rcpt(lda.port, "small@example.test", size=50000)
    assert a.raw == b.raw and a.code == 552, (a, b)
    assert rcpt(lda.port, "small@example.test", size=5000).code == 250


def test_local_delivery_and_unknown_user(pair):
    _, _, lda = pair
    final, rr = st.send_message(lda.port, "sender@client.test", ["alice@example.test"],
                                st.make_message("ldap-local-1@client.test", to="alice@example.test"))
    assert final.code == 250, final
    assert lda.wait_message("alice@example.test", b"ldap-local-1@client.test"), lda.log_excerpt("alice")
    r = rcpt(lda.port, "nobody@example.test")
    assert r.code == 550 and r.enhanced() == "5.1.1", r


def test_group_expansion_same(pair):
    _, emb, lda = pair
    for mta in (emb, lda):
        final, _ = st.send_message(mta.port, "sender@client.test", ["all@example.test"],
                                   st.make_message("ldap-group-1@client.test", to="all@example.test"))
        assert final.code == 250, final
    boxes = ["alice@example.test", "bob@example.test", "erin@example.test", "carol@example.test", "off@example.test"]
    got = {}
    for mta in (emb, lda):
        for b in boxes[:4]:
            mta.wait_message(b, b"ldap-group-1@client.test", timeout=20)
        got[mta] = [b for b in boxes if mta.find_messages(b, b"ldap-group-1@client.test")]
    assert got[emb] == got[lda] == boxes[:4], got
    # dave@partner.test (external) and carol's forwarding address went to tcp_local in both
    for mta in (emb, lda):
        qid = [ln for ln in mta.log() if ln.event == "queued" and ln.kv.get("channel") == "tcp_local"]
        assert qid and qid[-1].kv.get("nrcpt") == "2", mta.log_excerpt("queued")


def test_auth_with_ldap_password(harness):
    hash_ = tlsauth.crypt_password(tlsauth.PASSWORD)
    slapd = harness.slapd(build_ldif(hash_))
    mta = ldap_sluice(harness, slapd, start=False)
    disp = tlsauth.dispatcher([("SMTP", {"PORT": mta.port, "INTERFACE_ADDRESS": "127.0.0.1",
                                         "PARAMETER": "CHANNEL=tcp_local", "AUTH_WITHOUT_TLS": "yes"})])
    mta.write("dispatcher.cnf", disp)
    mta.start()
    wait_connected(mta)
    with st.Client(mta.port) as c:
        c.ehlo()
        assert tlsauth.auth_plain(c, "sub@example.test", "wrong-password").code == 535
        r = tlsauth.auth_plain(c, "sub@example.test", tlsauth.PASSWORD)
        assert r.code == 235, r
        c.quit()


def test_domain_cached(harness):
    slapd = harness.slapd(build_ldif("{CRYPT}x"))
    mta = ldap_sluice(harness, slapd)
    before = counters(mta)
    assert rcpt(mta.port, "alice@example.test").code == 250
    mid = counters(mta)
    # the recipient's domain, and the sender's (looked up at MAIL FROM for its recipient limits;
    # not ours, so negatively cached): then no more domain searches
    assert mid["searches.domain"] == before["searches.domain"] + 2, (before, mid)
    with st.Client(mta.port) as c:  # a second RCPT to the same domain, and another session
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@client.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.cmd("RCPT TO:<erin@example.test>").code == 250
        c.quit()
    after = counters(mta)
    assert after["searches.domain"] == mid["searches.domain"], (mid, after)
    assert after["cache.domain_hits"] >= mid["cache.domain_hits"] + 2, (mid, after)
    assert after["searches.address"] == mid["searches.address"] + 2, (mid, after)
    # a repeated address costs no search either (lookup and expansion from the cache)
    assert rcpt(mta.port, "bob@example.test").code == 250
    assert counters(mta)["searches.address"] == after["searches.address"]


def test_stopped_server(harness):
    slapd = harness.slapd(build_ldif("{CRYPT}x"))
    mta = ldap_sluice(harness, slapd)
    assert rcpt(mta.port, "alice@example.test").code == 250  # example.test and alice now cached
    slapd.pause()
    try:
        result = {}

        def slow():
            t0 = time.monotonic()
            result["reply"] = rcpt(mta.port, "bob@example.test")
            result["secs"] = time.monotonic() - t0

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        fast = rcpt(mta.port, "alice@example.test")  # answered from the cache while bob waits
        fast_secs = time.monotonic() - t0
        t.join(15)
        assert not t.is_alive()
        assert fast.code == 250 and fast_secs < 1.0, (fast, fast_secs)
        r = result["reply"]
        assert r.code == 451 and r.enhanced() == "4.3.0", r
        assert result["secs"] < 2.0 + 1.5, result
    finally:
        slapd.resume()
    # answers resume without restarting the daemon (its connections come back by themselves)
    r = st.wait_until(lambda: (lambda x: x if x.code == 250 else None)(rcpt(mta.port, "bob@example.test")), 30, 0.5)
    assert r is not None, mta.log_excerpt("ldap_")
    assert mta.running()
    assert mta.events("ldap_search_failed"), mta.log_excerpt("ldap_")


def test_reload_during_a_lookup(harness):
    slapd = harness.slapd(build_ldif("{CRYPT}x"))
    mta = ldap_sluice(harness, slapd)
    assert rcpt(mta.port, "alice@example.test").code == 250
    # a session waits for a search on the old directory while SIGHUP brings a new one
    slapd.pause()
    try:
        result = {}
        t = threading.Thread(target=lambda: result.update(r=rcpt(mta.port, "bob@example.test")))
        t.start()
        time.sleep(0.3)
        os.kill(mta.proc.pid, signal.SIGHUP)
        assert mta.wait_event(lambda ln: ln.event == "reloaded", 10), mta.log_excerpt()
        t.join(15)
        assert not t.is_alive() and result["r"].code == 451, result
    finally:
        slapd.resume()
    # the new directory (its own connections and caches) answers; the old one was freed cleanly
    r = st.wait_until(lambda: (lambda x: x if x.code == 250 else None)(rcpt(mta.port, "bob@example.test")), 30, 0.5)
    assert r is not None, mta.log_excerpt("ldap_")
    assert len(mta.events("ldap_connected")) >= 8, mta.log_excerpt("ldap_")
    assert counters(mta)["cache.entries"] == 1  # a new cache: bob only (the old one also had alice)


def test_failover_to_second_uri(harness):
    slapd = harness.slapd(build_ldif("{CRYPT}x"))
    dead = "ldap://127.0.0.1:%d" % st.free_port()
    mta = ldap_sluice(harness, slapd, ldap_uri="%s %s" % (dead, slapd.uri))
    assert rcpt(mta.port, "alice@example.test").code == 250
    failed = [ln for ln in mta.events("ldap_connect_failed") if ln.kv.get("uri") == dead]
    assert failed and "connect" in failed[0].kv.get("error", ""), mta.log_excerpt("ldap_")
    assert all(ln.kv.get("uri") == slapd.uri for ln in mta.events("ldap_connected")), mta.log_excerpt("ldap_")


def test_bad_bind_password(harness):
    slapd = harness.slapd(build_ldif("{CRYPT}x"))
    mta = ldap_sluice(harness, slapd, start=False, password="not-the-password")
    mta.start()
    assert mta.wait_event(lambda ln: ln.event == "ldap_connect_failed", 15), mta.log_excerpt()
    r = rcpt(mta.port, "alice@example.test")
    assert r.code == 451 and r.enhanced() == "4.3.0", r
    line = mta.events("ldap_connect_failed")[0]
    assert "Invalid credentials" in line.kv.get("error", ""), line
    assert line.kv.get("uri") == slapd.uri


def test_references_are_not_a_sure_no(harness):
    referral = entry("ou=remote,dc=example,dc=test", "objectClass: referral", "objectClass: extensibleObject",
                     "ou: remote", "ref: ldap://127.0.0.1:%d/ou=remote,dc=example,dc=test" % st.free_port())
    slapd = harness.slapd(build_ldif("{CRYPT}x") + "\n" + referral)
    mta = ldap_sluice(harness, slapd)
    assert rcpt(mta.port, "alice@example.test").code == 250  # found here: the reference does not matter
    r = rcpt(mta.port, "nobody@example.test")  # not found here, but maybe over there
    assert r.code == 451 and r.enhanced() == "4.3.0", r
    assert "references" in mta.events("ldap_search_failed")[0].kv.get("error", ""), mta.log_excerpt("ldap_")


def make_ip_cert(directory):
    """make_ip_cert - a self-signed certificate for 127.0.0.1 (IP SAN, as libldap checks the URI's host)."""
    cert, key = os.path.join(directory, "ldap-cert.pem"), os.path.join(directory, "ldap-key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return cert, key


def test_starttls(harness):
    cert, key = make_ip_cert(harness.dir)
    slapd = harness.slapd(build_ldif("{CRYPT}x"), tls=(cert, key))
    mta = ldap_sluice(harness, slapd, ldap_starttls="yes", ldap_tls_ca_file=cert)
    assert rcpt(mta.port, "alice@example.test").code == 250
    assert not mta.events("ldap_connect_failed"), mta.log_excerpt("ldap_")
    # ldaps:// (TLS from the first byte, set up on the dial thread like the rest)
    ldaps = ldap_sluice(harness, slapd, ldap_uri="ldaps://127.0.0.1:%d" % slapd.ldaps_port, ldap_tls_ca_file=cert)
    assert rcpt(ldaps.port, "bob@example.test").code == 250
    assert not ldaps.events("ldap_connect_failed"), ldaps.log_excerpt("ldap_")
    # a certificate the CA file does not vouch for is a failed connection, not a clear-text one
    other, _ = make_ip_cert(harness.subdir("other-ca"))
    bad = ldap_sluice(harness, slapd, start=False, ldap_starttls="yes", ldap_tls_ca_file=other)
    bad.start()
    assert bad.wait_event(lambda ln: ln.event == "ldap_connect_failed", 15), bad.log_excerpt()
    assert rcpt(bad.port, "alice@example.test").code == 451


def test_starttls_refused(harness):
    slapd = harness.slapd(build_ldif("{CRYPT}x"))  # no certificate: StartTLS fails, and so does the lookup
    mta = ldap_sluice(harness, slapd, start=False, ldap_starttls="yes")
    mta.start()
    assert mta.wait_event(lambda ln: ln.event == "ldap_connect_failed", 15), mta.log_excerpt()
    assert "StartTLS" in mta.events("ldap_connect_failed")[0].kv.get("error", "")
    r = rcpt(mta.port, "alice@example.test")
    assert r.code == 451, r


def test_check_does_not_connect(harness):
    mta = harness.sluice(start=False)
    pw = os.path.join(mta.workdir, "pw")
    with open(pw, "w") as f:
        f.write("secret\n")
    port = st.free_port()
    mta.options.update({"ldap_uri": "ldap://127.0.0.1:%d" % port, "ldap_base_dn": "dc=example,dc=test",
                        "ldap_bind_dn": "cn=admin,dc=example,dc=test", "ldap_bind_password_file": pw})
    mta.write("option.dat", "".join("%s=%s\n" % (k, v) for k, v in mta.options.items()))
    r = subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "LDAP directory ldap://127.0.0.1:%d" % port in r.stdout and "not contacted" in r.stdout, r.stdout
    # a missing password file is an option.dat error with its line
    mta.options["ldap_bind_password_file"] = pw + ".missing"
    mta.write("option.dat", "".join("%s=%s\n" % (k, v) for k, v in mta.options.items()))
    r = subprocess.run([st.BIN, "check", "-C", mta.confdir], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "option.dat:" in r.stderr and "ldap_bind_password_file: cannot read" in r.stderr, \
        r.stderr


def test_shipped_schema_and_directory_load_into_slapd(harness):
    with open(os.path.join(st.SRC, "etc", "directory.ldif")) as f:
        ldif = f.read()
    slapd = harness.slapd(ldif, suffix="dc=example,dc=com")
    r = slapd.search("(mail=alice@example.com)", "mailAlternateAddress")
    assert r.returncode == 0 and "a@example.com" in r.stdout, r.stdout + r.stderr
