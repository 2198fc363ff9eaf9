"""test_package.py - the Debian package (issue 14, item 6): scripts/package.sh builds a .deb of the
binary under test; the test checks its control fields (Provides/Conflicts mail-transport-agent,
Depends from the shared libraries), its files (the sendmail/mailq/newaliases links, the conffiles,
the systemd unit, the man pages), lets systemd-analyze verify the unit and rate its hardening, then
installs it in a throw-away root with `dpkg-deb -x` (no maintainer scripts run, nothing touches
this machine) and runs the binary as the unit would: `sluice check`, then `sluice serve` as root
switching to run_as, and a message sent with the package's /usr/sbin/sendmail -t lands in the
Maildir; mailq answers.
"""
import gzip
import os
import re
import shutil
import signal
import subprocess

import pytest

import sluicetest as st

pytestmark = pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="needs dpkg-deb")


@pytest.fixture(scope="module")
def pkg(module_harness):
    out = module_harness.subdir("dist")
    r = subprocess.run(["bash", os.path.join(st.SRC, "scripts", "package.sh"), "--binary", st.BIN, "--out", out],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r
    deb = r.stdout.strip().splitlines()[-1]
    root = module_harness.subdir("root")
    subprocess.run(["dpkg-deb", "-x", deb, root], check=True, timeout=60)
    return deb, root


def field(deb, name):
    return subprocess.run(["dpkg-deb", "-f", deb, name], capture_output=True, text=True, check=True).stdout.strip()


def test_control_fields(pkg):
    deb, _ = pkg
    assert field(deb, "Package") == "sluice"
    assert re.fullmatch(r"\d+\.\d+\.\d+-1", field(deb, "Version")), field(deb, "Version")
    for f in ("Provides", "Conflicts", "Replaces"):
        assert field(deb, f) == "mail-transport-agent", f
    deps = [d.strip() for d in field(deb, "Depends").split(",")]
    for d in ("libevent-extra-2.1-7", "libevent-openssl-2.1-7", "libc-ares2", "libssl3", "libcurl4", "libc6", "adduser"):
        assert d in deps, deps
    conffiles = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], capture_output=True, check=True).stdout
    assert b"./conffiles" in conffiles and b"./postinst" in conffiles


def test_files(pkg):
    deb, root = pkg
    assert os.access(os.path.join(root, "usr/sbin/sluice"), os.X_OK)
    links = {"usr/sbin/sendmail": "sluice", "usr/lib/sendmail": "../sbin/sluice",
             "usr/bin/mailq": "../sbin/sluice", "usr/bin/newaliases": "../sbin/sluice"}
    for path, target in links.items():
        assert os.readlink(os.path.join(root, path)) == target, path
    for name in ("option.dat", "dispatcher.cnf", "sluice.cnf", "job_controller.cnf", "directory.ldif"):
        assert os.path.isfile(os.path.join(root, "etc/sluice", name)), name
    opt = open(os.path.join(root, "etc/sluice/option.dat")).read()
    assert "queue_dir=/var/spool/sluice" in opt and "run_as=sluice" in opt, opt
    assert "INTERFACE_ADDRESS=127.0.0.1" in open(os.path.join(root, "etc/sluice/dispatcher.cnf")).read()
    for page, title in (("man8/sluice.8.gz", ".TH SLUICE 8"), ("man8/sendmail.8.gz", ".TH SENDMAIL 8"),
                        ("man5/sluice.cnf.5.gz", ".TH SLUICE.CNF 5")):
        text = gzip.open(os.path.join(root, "usr/share/man", page)).read().decode()
        assert text.startswith(title) and ".SH" in text and len(text) > 2000, page
    assert os.path.isfile(os.path.join(root, "usr/share/doc/sluice/operations.md"))
    subprocess.run(["dpkg-deb", "-e", deb, os.path.join(root, "..", "ctrl")], check=True)
    for script in ("postinst", "prerm", "postrm"):
        path = os.path.join(root, "..", "ctrl", script)
        assert os.access(path, os.X_OK) and subprocess.run(["sh", "-n", path]).returncode == 0, script


def test_unit(pkg):
    _, root = pkg
    unit = open(os.path.join(root, "lib/systemd/system/sluice.service")).read()
    for directive in ("ExecStart=/usr/sbin/sluice serve -C /etc/sluice", "ExecStartPre=/usr/sbin/sluice check",
                      "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes", "ProtectSystem=strict",
                      "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "ReadWritePaths=/var/spool/sluice",
                      "WantedBy=multi-user.target"):
        assert directive in unit, directive
    if not shutil.which("systemd-analyze"):
        pytest.skip("no systemd-analyze")
    # verify needs the binaries where the unit names them: a copy pointing into the root
    copy = os.path.join(root, "..", "sluice.service")
    with open(copy, "w") as f:
        f.write(unit.replace("/usr/sbin/sluice", os.path.join(root, "usr/sbin/sluice"))
                .replace("man:sluice(8) ", ""))
    r = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", os.path.join(root, "lib/systemd/system/sluice.service")],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for sluice\.service: ([\d.]+)", r.stdout)
    assert m and float(m.group(1)) <= 5.0, r.stdout[-500:]


def test_runs_as_the_unit_would(pkg, module_harness):
    _, root = pkg
    conf = os.path.join(root, "etc/sluice")
    port = st.free_port()
    # the unit's paths, moved into the throw-away root; nobody stands in for the sluice user
    # that postinst would create
    opt = open(os.path.join(conf, "option.dat")).read()
    opt = opt.replace("/var/spool/sluice", os.path.join(root, "var/spool/sluice"))
    opt = opt.replace("/var/mail/sluice", os.path.join(root, "var/mail/sluice")).replace("run_as=sluice", "run_as=nobody")
    opt += "host_name=mail.example.com\ndns_servers=127.0.0.1:%d\n" % st.free_port()
    with open(os.path.join(conf, "option.dat"), "w") as f:
        f.write(opt)
    with open(os.path.join(conf, "dispatcher.cnf"), "w") as f:
        f.write("[SERVICE=SMTP]\nPORT=%d\nINTERFACE_ADDRESS=127.0.0.1\nPARAMETER=CHANNEL=tcp_local\n" % port)
    path = root
    while path != "/":  # nobody must pass through to the spool and the Maildirs
        os.chmod(path, os.stat(path).st_mode | 0o755)
        path = os.path.dirname(path)
    for d in ("var/spool/sluice", "var/mail/sluice"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    sluice = os.path.join(root, "usr/sbin/sluice")
    r = subprocess.run([sluice, "check", "-C", conf], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "configuration ok" in r.stdout, r
    log = os.path.join(module_harness.dir, "pkg-daemon.log")
    with open(log, "wb") as err:
        proc = subprocess.Popen([sluice, "serve", "-C", conf], stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                start_new_session=True)
    try:
        ready = st.wait_until(lambda: any(l.event == "ready" for l in st.parse_log(st.Sluice.read_log(log))), 20)
        assert ready, st.Sluice.read_log(log)
        assert [l for l in st.parse_log(st.Sluice.read_log(log)) if l.event == "privileges_dropped"]
        env = dict(os.environ, SLUICE_CONFIG_DIR=conf)
        msg = b"To: Alice <alice@example.com>\nSubject: from the package\n\nhello from /usr/sbin/sendmail\n"
        r = subprocess.run([os.path.join(root, "usr/sbin/sendmail"), "-t"], input=msg, capture_output=True, env=env,
                           timeout=30)
        assert r.returncode == 0, r
        box = os.path.join(root, "var/mail/sluice/example.com/alice/new")
        got = st.wait_until(lambda: os.path.isdir(box) and os.listdir(box), 20)
        assert got, st.Sluice.read_log(log)
        data = open(os.path.join(box, got[0]), "rb").read()
        assert b"hello from /usr/sbin/sendmail" in data and b"via sendmail" in data, data
        r = subprocess.run([os.path.join(root, "usr/bin/mailq")], capture_output=True, env=env, timeout=30)
        assert r.returncode == 0, r
    finally:
        rc = st.kill_group(proc, signal.SIGTERM, 20)
    text = st.Sluice.read_log(log)
    assert rc == 0 and "stopped clean=yes" in text, text[-2000:]
    for marker in st.SANITIZER_MARKERS:
        assert marker not in text, text
