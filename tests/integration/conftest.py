"""conftest.py - fixtures for Sluice's integration tests.

`harness` (one test) and `module_harness` (one test module) give a Harness: a private temporary
directory plus factories for the daemon under test and its peers. Everything a harness started is
stopped at teardown (SIGTERM to the process group, SIGKILL after a bounded wait). The daemon must
exit cleanly on SIGTERM and its log must hold no sanitizer report, or the teardown fails.
When a test fails, the tail of every daemon log of its harnesses is added to the report.
"""
import os

import pytest

import sluicetest as st

_ACTIVE = []  # harnesses alive now, for failure reports


class Harness:
    """A test's temporary directory and everything started in it."""

    def __init__(self, tag):
        self.dir = st.make_tmpdir(tag)
        self.daemons = []
        self.peers = []
        self._n = 0

    def subdir(self, name):
        self._n += 1
        d = os.path.join(self.dir, "%s-%d" % (name, self._n))
        os.makedirs(d)
        return d

    def sluice(self, start=True, **kw):
        """sluice - a configured daemon (see sluicetest.Sluice), started unless start=False."""
        s = st.Sluice(self.subdir("sluice"), **kw)
        self.daemons.append(s)
        if start:
            s.start()
        return s

    def sink(self, host, port, **kw):
        p = st.Sink(self.subdir("sink"), host, port, **kw)
        self.peers.append(p)
        return p

    def chunking(self, host, port, **kw):
        p = st.ChunkingServer(self.subdir("chunking"), host, port, **kw)
        self.peers.append(p)
        return p

    def busy(self, host, port):
        p = st.BusyServer(self.subdir("busy"), host, port)
        self.peers.append(p)
        return p

    def tarpit(self, host, port):
        p = st.Tarpit(self.subdir("tarpit"), host, port)
        self.peers.append(p)
        return p

    def dovecot(self, host, port):
        p = st.Dovecot(self.subdir("dovecot"), host, port)
        self.peers.append(p)
        return p

    def dnsmasq(self, records, probe):
        p = st.Dnsmasq(self.subdir("dns"), records, probe)
        self.peers.append(p)
        return p

    def slapd(self, ldif, **kw):
        """slapd - an OpenLDAP server with etc/sluice.schema and these entries (see sluicetest.Slapd)."""
        p = st.Slapd(self.subdir("slapd"), ldif, **kw)
        self.peers.append(p)
        return p

    def finish(self):
        """finish - stop everything; return the problems found (unclean daemon exits, sanitizer reports)."""
        problems = []
        for s in reversed(self.daemons):
            try:
                s.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the rest
                problems.append("stopping sluice: %r" % e)
            problems.extend(s.problems)
        for p in reversed(self.peers):
            try:
                p.stop()
            except Exception as e:  # noqa: BLE001
                problems.append("stopping %s: %r" % (p.name, e))
        if problems:
            # Keep the evidence for a human.
            problems.append("files kept in %s" % self.dir)
        else:
            st.remove_tmpdir(self.dir)
        return problems

    def log_tails(self, lines=80):
        out = []
        for s in self.daemons:
            tail = "\n".join(s.log_text().splitlines()[-lines:])
            out.append(("sluice log %s (port %d)" % (s.workdir, s.port), tail))
        return out


def _harness(request, tag):
    h = Harness(tag)
    _ACTIVE.append(h)

    def fin():
        _ACTIVE.remove(h)
        problems = h.finish()
        if problems:
            pytest.fail("teardown: " + "\n".join(problems), pytrace=False)

    request.addfinalizer(fin)
    return h


@pytest.fixture
def harness(request):
    """harness - a Harness for one test."""
    return _harness(request, request.node.name[:40].replace("/", "_").replace("[", "_").replace("]", ""))


@pytest.fixture(scope="module")
def module_harness(request):
    """module_harness - a Harness shared by the tests of one module."""
    return _harness(request, request.module.__name__)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for h in list(_ACTIVE):
            for title, text in h.log_tails():
                rep.sections.append((title, text))
