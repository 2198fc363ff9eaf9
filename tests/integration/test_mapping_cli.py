"""test_mapping_cli - `sluice test mapping` against a real mappings file: the issue's seed
PORT_ACCESS/BE_IP tables allow a back-end (127.0.0.2) on port 2025 and reject anyone else, every
entry tried is shown with its file:line, input flags drive $:x tests, includes are read from the
configuration directory, and parse errors exit 2 with file:line. No daemon is started."""
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("SLUICE_SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("SLUICE_BIN") or os.path.join(SRC, "build", "sluice")

# The seed, verbatim (PORT_ACCESS entries on lines 3 and 4).
SEED = """\
PORT_ACCESS

  *|*|2025|*|*   $C$|BE_IP;$2|$Y$E
  *|*|2025|*|*   $N

BE_IP

  127.0.0.2   $Y
  *           $N
"""

EXTRA = """\
! access by TLS and authentication; the entries come from an include
<access_tables
"""

ACCESS_TABLES = """\
FROM_ACCESS

  *|*@spam.test     $N$X5.7.1|Go$ away
  *|*@slow.test     $W$X4.7.0|Try$ later
  *                 $C$:A$Y$E
  *|*               $C$;T$NTLS$ required$E
  *                 $Y
"""


@pytest.fixture()
def confdir(tmp_path):
    d = tmp_path / "conf"
    d.mkdir()
    (d / "mappings").write_text(SEED + "\n" + EXTRA)
    (d / "access_tables").write_text(ACCESS_TABLES)
    return str(d)


def run(*args):
    p = subprocess.run([BIN, "test", "mapping"] + list(args), capture_output=True, text=True, timeout=60)
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


def test_seed_backend_allowed(confdir):
    p = run("PORT_ACCESS", "TCP|127.0.0.3|2025|127.0.0.2|40001", "-C", confdir)
    assert p.returncode == 0, p.stdout + p.stderr
    f = fields(p.stdout)
    assert f["result"] == "allow"
    assert f["flags"] == "allow($Y)"
    assert f["entry"] == "%s/mappings:3 '*|*|2025|*|*'" % confdir
    # the saved wildcards are shown: $2 is the client IP
    assert "$0='TCP' $1='127.0.0.3' $2='127.0.0.2' $3='40001'" in p.stdout
    assert "BE_IP: probe '127.0.0.2'" in p.stdout


def test_seed_other_client_rejected(confdir):
    p = run("PORT_ACCESS", "TCP|127.0.0.3|2025|127.0.0.9|40001", "-C", confdir)
    assert p.returncode == 0, p.stdout + p.stderr
    f = fields(p.stdout)
    assert f["result"] == "reject"
    assert f["entry"] == "%s/mappings:4 '*|*|2025|*|*'" % confdir
    out = p.stdout
    # both entries were tried, in order, and the first failed through its nested probe
    first = out.index("%s/mappings:3: '*|*|2025|*|*' matches" % confdir)
    inner = out.index("%s/mappings:9: '*' matches" % confdir)
    failed = out.index("$|BE_IP;127.0.0.9| failed (rejected)")
    second = out.index("%s/mappings:4: '*|*|2025|*|*' matches" % confdir)
    assert first < inner < failed < second


def test_seed_other_port_no_match(confdir):
    p = run("PORT_ACCESS", "TCP|127.0.0.3|25|127.0.0.9|40001", "-C", confdir)
    assert p.returncode == 1, p.stdout + p.stderr
    f = fields(p.stdout)
    assert f["result"] == "no match"
    assert f["entry"] == "(none)"
    assert p.stdout.count("does not match") == 2


def test_flags_and_include(confdir):
    tables = os.path.join(confdir, "access_tables")
    p = run("FROM_ACCESS", "tcp_local|u@example.org", "--flags", "TE", "-C", confdir)
    assert p.returncode == 0, p.stdout + p.stderr
    assert fields(p.stdout)["result"] == "allow"
    assert fields(p.stdout)["entry"].startswith(tables + ":7 ")
    p = run("FROM_ACCESS", "tcp_local|u@example.org", "--flags=E", "-C", confdir)
    f = fields(p.stdout)
    assert (f["result"], f["output"]) == ("reject", "TLS required")
    assert f["entry"].startswith(tables + ":6 ")
    p = run("FROM_ACCESS", "tcp_local|u@example.org", "--flags", "A", "-C", confdir)
    assert fields(p.stdout)["entry"].startswith(tables + ":5 ")
    p = run("FROM_ACCESS", "tcp_local|x@slow.test", "-C", confdir)
    f = fields(p.stdout)
    assert (f["result"], f["output"], f["status code"]) == ("temporary reject", "Try later", "4.7.0")
    p = run("FROM_ACCESS", "tcp_local|x@SPAM.test", "-C", confdir)
    f = fields(p.stdout)
    assert (f["result"], f["output"], f["status code"]) == ("reject", "Go away", "5.7.1")


def test_usage_errors(confdir):
    assert run("PORT_ACCESS", "-C", confdir).returncode == 2
    assert run("PORT_ACCESS", "a", "b", "-C", confdir).returncode == 2
    assert run("PORT_ACCESS", "a", "--flags", "-C", confdir).returncode == 2
    assert run("PORT_ACCESS", "a", "--flags", "T!", "-C", confdir).returncode == 2


def test_parse_errors_exit_2(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "mappings").write_text("PORT_ACCESS\n\n  *|*  $Q\n  $(10.0.0.0/40)  $Y\n\nPORT_ACCESS\n<missing\n")
    p = run("PORT_ACCESS", "x", "-C", str(d))
    assert p.returncode == 2
    m = str(d / "mappings")
    assert m + ":3: unknown metacharacter '$Q' in the template" in p.stderr
    assert m + ":4: bad IP pattern '$(10.0.0.0/40)'" in p.stderr
    assert m + ":6: duplicate table 'PORT_ACCESS' (first defined at %s:1)" % m in p.stderr
    assert m + ":7: cannot read include file" in p.stderr
    p = run("PORT_ACCESS", "x", "-C", str(tmp_path / "nonexistent"))
    assert p.returncode == 2
    assert "mappings: cannot read" in p.stderr
