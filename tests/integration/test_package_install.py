"""test_package_install.py - the Debian package installed for real (issue 14, "Done when"): in a
throw-away Debian 12 root made by debootstrap (scripts/debian_root.sh: cached as a tarball, since
debootstrap takes minutes), `dpkg -i` installs the .deb of the binary under test, its maintainer
scripts run (the sluice user, /var/spool/sluice, /etc/sluice), the daemon starts as the unit's
ExecStartPre/ExecStart lines say (no systemd in a chroot), and then what a new operator does:
`echo test | mail -s hi alice@example.com` with Debian's bsd-mailx (which calls /usr/sbin/sendmail,
ours) lands in the Maildir, `curl` on the metrics endpoint shows it, and
`sluice queue list --json --domain X | jq` finds a deferred message. The host is never touched:
installing the package there would remove its MTA (Conflicts: mail-transport-agent).

Needs root, chroot and debootstrap; skips with the reason only when debootstrap cannot reach the
Debian mirror. Mounts /proc in the root (the sanitizer runtime reads it) and unmounts it; the
chroot shares the host's network, so the daemon listens on free loopback ports.
"""
import os
import re
import shutil
import signal
import subprocess

import pytest

import sluicetest as st

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chroot") or not shutil.which("dpkg-deb"),
                                reason="needs root, chroot and dpkg-deb")


def mounts_under(root):
    """mounts_under - the mount points inside root, deepest first."""
    prefix = os.path.realpath(root) + "/"
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f]
    return sorted((p for p in points if p.startswith(prefix)), reverse=True)


def in_root(root, cmd, timeout=120, **kw):
    """in_root - run the shell command cmd inside root as root, with a clean environment."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
           "DEBIAN_FRONTEND": "noninteractive", "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "")}
    return subprocess.run(["chroot", root, "/bin/sh", "-c", cmd], capture_output=True, text=True, env=env,
                          timeout=timeout, **kw)


@pytest.fixture(scope="module")
def root(module_harness):
    if not shutil.which("debootstrap"):
        pytest.fail("debootstrap is not installed (scripts/setup.sh installs it)")
    r = subprocess.run(["bash", os.path.join(st.SRC, "scripts", "debian_root.sh")], capture_output=True, text=True,
                       timeout=2400)
    if r.returncode == 3:
        pytest.skip("debootstrap cannot reach the Debian mirror: " + r.stderr.strip()[-300:])
    assert r.returncode == 0, r
    tarball = r.stdout.strip().splitlines()[-1]
    r = subprocess.run(["bash", os.path.join(st.SRC, "scripts", "package.sh"), "--binary", st.BIN,
                        "--out", module_harness.subdir("dist")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r
    deb = r.stdout.strip().splitlines()[-1]
    path = module_harness.subdir("root")
    os.chmod(path, 0o755)
    subprocess.run(["tar", "-C", path, "-xf", tarball], check=True, timeout=300)
    shutil.copy(deb, os.path.join(path, "opt/sluice-test/"))
    subprocess.run(["mount", "-t", "proc", "proc", os.path.join(path, "proc")], check=True, timeout=30)
    try:
        yield path
    finally:
        for point in mounts_under(path):
            subprocess.run(["umount", point], timeout=30)
        for point in mounts_under(path):
            subprocess.run(["umount", "-l", point], timeout=30)
        assert not mounts_under(path), mounts_under(path)
        subprocess.run(["rm", "-rf", "--one-file-system", path], timeout=300)


def test_install_and_operate(root, module_harness):
    # dpkg -i, and apt-get -f install should the cached root lack a dependency (it downloads)
    r = in_root(root, "dpkg -i /opt/sluice-test/sluice_*.deb", timeout=300)
    if r.returncode != 0:
        r = in_root(root, "apt-get -qq -y -f install", timeout=600)
    assert r.returncode == 0, r
    assert in_root(root, "dpkg-query -W -f '${Status}' sluice").stdout == "install ok installed"
    # bsd-mailx needs a mail-transport-agent: ours satisfies it
    r = in_root(root, "dpkg -i /opt/sluice-test/bsd-mailx_*.deb", timeout=300)
    assert r.returncode == 0, r
    assert os.path.realpath(os.path.join(root, "usr/sbin/sendmail")) == os.path.join(root, "usr/sbin/sluice")

    # what postinst did
    pw = in_root(root, "getent passwd sluice").stdout.split(":")
    assert len(pw) == 7 and pw[6].strip() in ("/usr/sbin/nologin", "/bin/false"), pw
    uid = int(pw[2])
    assert 0 < uid < 1000, pw
    spool = os.stat(os.path.join(root, "var/spool/sluice"))
    assert spool.st_uid == uid and spool.st_mode & 0o7777 == 0o711, spool
    assert os.stat(os.path.join(root, "var/mail/sluice")).st_uid == uid
    for name in ("option.dat", "dispatcher.cnf", "sluice.cnf", "job_controller.cnf", "directory.ldif"):
        assert os.path.isfile(os.path.join(root, "etc/sluice", name)), name

    # the operator's edits: a host name, the metrics on, ports that are free on this (shared) host,
    # and a DNS server that answers nothing (the chroot has no network beyond loopback)
    smtp, metrics, dns = st.free_port(), st.free_port(), st.free_port()
    opt = os.path.join(root, "etc/sluice/option.dat")
    text = open(opt).read().replace("!metrics_listen=127.0.0.1:9465", "metrics_listen=127.0.0.1:%d" % metrics)
    text += "host_name=mail.example.com\ndns_servers=127.0.0.1:%d\n" % dns
    with open(opt, "w") as f:
        f.write(text)
    disp = os.path.join(root, "etc/sluice/dispatcher.cnf")
    text = open(disp).read()
    assert "PORT=25\n" in text, text
    with open(disp, "w") as f:
        f.write(text.replace("PORT=25\n", "PORT=%d\n" % smtp))

    # start it as the unit would: ExecStartPre, then ExecStart
    unit = open(os.path.join(root, "lib/systemd/system/sluice.service")).read()
    pre = re.search(r"^ExecStartPre=(.*)$", unit, re.M).group(1)
    start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1)
    r = in_root(root, pre)
    assert r.returncode == 0 and "configuration ok" in r.stdout, r
    log = os.path.join(module_harness.dir, "installed-daemon.log")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "")}
    with open(log, "wb") as err:
        proc = subprocess.Popen(["chroot", root] + start.split(), stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                env=env, start_new_session=True)

    def events(name):
        return [l for l in st.parse_log(st.Sluice.read_log(log)) if l.event == name]

    try:
        assert st.wait_until(lambda: events("ready") or proc.poll() is not None, 30) and events("ready"), \
            st.Sluice.read_log(log)
        assert events("privileges_dropped"), st.Sluice.read_log(log)

        # mail(1) -> /usr/sbin/sendmail -> the daemon -> the Maildir
        r = in_root(root, "echo test | mail -s hi alice@example.com", timeout=60)
        assert r.returncode == 0, r
        box = os.path.join(root, "var/mail/sluice/example.com/alice/new")
        got = st.wait_until(lambda: os.path.isdir(box) and os.listdir(box), 30)
        assert got, st.Sluice.read_log(log)
        data = open(os.path.join(box, got[0]), "rb").read()
        assert b"Subject: hi" in data and b"\ntest\n" in data.replace(b"\r\n", b"\n"), data
        assert os.stat(os.path.join(box, got[0])).st_uid == uid

        # a message for a domain nobody can resolve stays queued, deferred
        r = in_root(root, "echo later | mail -s queued carol@remote.example", timeout=60)
        assert r.returncode == 0, r
        assert st.wait_until(lambda: [l for l in events("deferred") if "remote.example" in l.raw], 90), \
            st.Sluice.read_log(log)[-3000:]

        # curl the metrics: the local submissions and the Maildir delivery are counted
        r = in_root(root, "curl -sf http://127.0.0.1:%d/metrics" % metrics, timeout=30)
        assert r.returncode == 0, r
        received = re.findall(r'^sluice_messages_received_total\{channel="[^"]+"\} (\d+)', r.stdout, re.M)
        assert received and sum(map(int, received)) >= 2, r.stdout[:3000]
        delivered = re.findall(r'^sluice_deliveries_total\{[^}]*result="delivered"[^}]*\} (\d+)', r.stdout, re.M)
        assert delivered and sum(map(int, delivered)) >= 1, r.stdout[:3000]
        assert re.search(r'^sluice_sessions_total\{service="local"\} [1-9]', r.stdout, re.M), r.stdout[:3000]

        # sluice queue list --json --domain X | jq
        r = in_root(root, "sluice queue list --json --domain remote.example | jq -r '.[].recipients[].address'")
        assert r.returncode == 0 and r.stdout.split() == ["carol@remote.example"], r
        r = in_root(root, "sluice queue list --json --domain example.com | jq length")
        assert r.returncode == 0 and r.stdout.strip() == "0", r
    finally:
        rc = st.kill_group(proc, signal.SIGTERM, 20)
    text = st.Sluice.read_log(log)
    assert rc == 0 and "stopped clean=yes" in text, text[-2000:]
    for marker in st.SANITIZER_MARKERS:
        assert marker not in text, text
