"""test_rewrite_cli - `sluice test rewrite` against a real configuration directory: the issue's seed
rule routes to tcp_notify only from process_dsn, skipped rules are shown, $? errors exit 1,
--from rewrites the sender with the recipient's channel as destination ($Q), usage errors exit 2.
No daemon is started."""
import os
import shutil
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("SLUICE_SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("SLUICE_BIN") or os.path.join(SRC, "build", "sluice")

SLUICE_CNF = """\
! sluice.cnf, rewrite rules, above the ordinary "." rule
. $U%$H$,$H@tcp_notify-daemon$Mprocess_dsn
blocked.test       $?No-mail-here
from.test          $U%rewritten.test@tcp_local-daemon$Qtcp_notify$R
from.test          $U%$D@tcp_local-daemon
example.com        $U%$D@local-daemon
.                  $U%$H@tcp_local-daemon

! after the blank line, channel blocks
defaults notificationchannel process_dsn dispositionchannel process_dsn

process_dsn
process_dsn-daemon

tcp_notify smtp mx single_sys remotehost inner subdirs 20 maxjobs 10 pool NOTIFY_POOL backoff "pt4h" "pt8h" notices 1 loopcheck
tcp_notify-daemon

l
local-daemon

tcp_local smtp mx
tcp_local-daemon
"""

JOB_CONTROLLER = "[POOL=DEFAULT]\njob_limit=10\n[POOL=NOTIFY_POOL]\njob_limit=10\n"


@pytest.fixture(scope="module")
def confdir():
    d = tempfile.mkdtemp(prefix="sluice-rwcli-")
    for name in ("option.dat", "dispatcher.cnf", "directory.ldif"):
        shutil.copy(os.path.join(SRC, "etc", name), d)
    with open(os.path.join(d, "sluice.cnf"), "w") as f:
        f.write(SLUICE_CNF)
    with open(os.path.join(d, "job_controller.cnf"), "w") as f:
        f.write(JOB_CONTROLLER)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run(*args):
    p = subprocess.run([BIN, "test", "rewrite"] + list(args), capture_output=True, text=True, timeout=60)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


def fields(out):
    """fields - the 'key = value' lines of the output."""
    res = {}
    for line in out.splitlines():
        if " = " in line and not line.startswith(" "):
            k, v = line.split(" = ", 1)
            res[k.strip()] = v
    return res


def test_seed_rule_from_process_dsn(confdir):
    p = run("user@example.org", "--source-channel", "process_dsn", "-C", confdir)
    assert p.returncode == 0, p.stdout + p.stderr
    f = fields(p.stdout)
    assert f["channel"] == "tcp_notify"
    assert f["address"] == "user@example.org"
    assert f["routing host"] == "tcp_notify-daemon"
    assert "match '.' -> '$U%$H$,$H@tcp_notify-daemon$Mprocess_dsn' -> user@example.org via tcp_notify-daemon" \
        in p.stdout
    # the search order is shown, most specific first
    lines = [l.strip() for l in p.stdout.splitlines()]
    tries = [l for l in lines if l.startswith("try ")]
    assert tries == ["try 'example.org' -> no rule", "try '*.org' -> no rule", "try '.org' -> no rule",
                     "try '*.*' -> no rule"]
    # and how '$,' is read is said, with the file and line
    assert os.path.join(confdir, "sluice.cnf") + ":2: note: '$,' read as the end of the host part" in p.stderr


def test_seed_rule_skipped_from_tcp_local(confdir):
    for args in (["--source-channel", "tcp_local"], []):  # tcp_local is the default source
        p = run("Someone@Mail.Example.ORG", "-C", confdir, *args)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "from channel tcp_local" in p.stdout
        assert "skip '.' (line 2) '$U%$H$,$H@tcp_notify-daemon$Mprocess_dsn': " \
               "$M: source channel tcp_local is not process_dsn" in p.stdout
        f = fields(p.stdout)
        assert (f["channel"], f["address"], f["routing host"]) == \
            ("tcp_local", "Someone@Mail.Example.ORG", "tcp_local-daemon")


def test_local_domain(confdir):
    p = run("alice@example.com", "--source-channel", "process_dsn", "-C", confdir)
    assert p.returncode == 0
    assert fields(p.stdout)["channel"] == "l"


def test_error_text_exits_1(confdir):
    p = run("u@blocked.test", "-C", confdir)
    assert p.returncode == 1, p.stdout + p.stderr
    f = fields(p.stdout)
    assert f["error"] == "No-mail-here"
    assert f["status"] == "permanent 5.1.2"
    assert "channel" not in f


def test_from_rewritten_with_destination(confdir):
    # recipient to tcp_notify: the $Qtcp_notify$R rule applies to the envelope From
    p = run("user@example.org", "--source-channel", "process_dsn", "--from", "s@from.test", "-C", confdir)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "rewriting <s@from.test> (envelope From) from channel process_dsn to channel tcp_notify" in p.stdout
    f = fields(p.stdout)
    assert f["channel"] == "tcp_notify"
    assert f["from address"] == "s@rewritten.test"
    # recipient to tcp_local: the $Q rule is skipped, the next from.test rule keeps the address
    p = run("user@example.org", "--from=s@from.test", "-C", confdir)
    assert p.returncode == 0
    f = fields(p.stdout)
    assert f["channel"] == "tcp_local"
    assert f["from address"] == "s@from.test"
    assert "$Q: destination channel tcp_local is not tcp_notify" in p.stdout


def test_usage_errors(confdir):
    assert run("-C", confdir).returncode == 2
    assert run("a@b.test", "c@d.test", "-C", confdir).returncode == 2
    assert run("a@b.test", "--from", "-C", confdir).returncode == 2
    p = run("a@b.test", "--source-channel", "nosuch", "-C", confdir)
    assert p.returncode == 2
    assert "no channel 'nosuch'" in p.stderr
    p = subprocess.run([BIN, "test", "nosuch"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2


def test_bad_configuration_exits_2(tmp_path):
    d = str(tmp_path)
    for name in ("option.dat", "dispatcher.cnf", "directory.ldif"):
        shutil.copy(os.path.join(SRC, "etc", name), d)
    with open(os.path.join(d, "job_controller.cnf"), "w") as f:
        f.write(JOB_CONTROLLER)
    with open(os.path.join(d, "sluice.cnf"), "w") as f:
        f.write(".  $U%$H$,$H@tcp_local-daemon$M\n\ntcp_local smtp\ntcp_local-daemon\n")
    p = run("a@b.test", "-C", d)
    assert p.returncode == 2
    assert "'$M' without a channel name" in p.stderr
