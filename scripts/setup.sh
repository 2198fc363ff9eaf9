#!/bin/bash
# setup.sh - install every Debian 12 package Sluice needs to build, run and test.
# Idempotent; run as root. Installs nothing from outside Debian's archive.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# Keep package postinst scripts from starting daemons that would grab test ports.
[ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
BUILD="build-essential cmake pkg-config libevent-dev libssl-dev libc-ares-dev libldap-dev libcmocka-dev libcrypt-dev"
BUILD="$BUILD zlib1g-dev libcurl4-openssl-dev"  # src/tlsrpt/: TLS-RPT reports gzipped (zlib) and posted to https: (libcurl)
TEST="dnsmasq-base bind9-dnsutils python3-pytest python3-aiosmtpd python3-dnspython swaks openssl dovecot-core dovecot-lmtpd"
TEST="$TEST postfix"  # bench/: smtp-source, smtp-sink and the Postfix measured against (never started as a service)
TEST="$TEST curl"  # test_metrics.py scrapes the metrics endpoint with curl
TEST="$TEST iproute2"  # bench/storm.py --sink-kind blackhole: ip link/addr/neigh in its own network namespace
TEST="$TEST slapd ldap-utils"  # tests/integration/test_ldap.py: slapd per test (never started as a service)
TEST="$TEST postfix-ldap"  # bench/directory.py (benchmark 6): Postfix's ldap: tables against the same slapd
TEST="$TEST clang libclang-rt-14-dev"  # fuzz/: libFuzzer targets (scripts/fuzz.sh, CTest fuzz_smoke)
TEST="$TEST fiu-utils libfiu0 libfiu-dev"  # scripts/stress.sh: fault injection (fiu-run; scripts/fiu_files.c links libfiu)
TEST="$TEST spamd spamc clamav-daemon"  # tests/integration/test_scanning.py: real spamd and clamd (own signatures, no downloads)
TEST="$TEST python3-dkim python3-nacl python3-cryptography"  # tests/integration/test_dkim.py: dkimpy signs and verifies against sluice; keys made with cryptography
TEST="$TEST publicsuffix"  # dmarc_check (doc/sender-checks.md): the public suffix list; tests/unit/test_dmarc.c, test_dkim_daemon.py
TEST="$TEST strace"  # tests/integration/test_durability_order.py: the order of the daemon's system calls
TEST="$TEST libidn12 libgnutls-dane0 libnsl2 libpcre2-8-0 libdb5.3 libevent-2.1-7 libpam0g adduser"  # the libraries of the private Exim and OpenSMTPD below
TEST="$TEST python3-milter opendkim opendkim-tools python3-dkim"  # tests/integration/test_milter_client.py: a pymilter test milter, opendkim signing, dkimpy verifying; bench/ benchmark 7 (opendkim as the milter)
BUILD="$BUILD ca-certificates"  # the system CA store (/etc/ssl/certs) the SMTP client verifies against (doc/tls.md)
TEST="$TEST knot unbound bind9-dnsutils"  # tests/integration/test_dane.py: knot signs the test zones, unbound validates (AD bit), dig checks readiness
TEST="$TEST debootstrap"  # tests/integration/test_package_install.py: the .deb installed in a Debian 12 root (scripts/debian_root.sh)
missing=""
for p in $BUILD $TEST; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  [ "${1:-}" = "--run-only" ] && { echo "setup: missing packages:$missing" >&2; exit 1; }
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing
fi
# bench/ and tests/integration/test_interop.py: Exim 4 (exim4-daemon-light) and OpenSMTPD. Both
# packages conflict with postfix (Debian's MTAs all provide and conflict with mail-transport-agent),
# so they are not installed: their .deb files are fetched with apt-get download and unpacked with
# dpkg -x under $PEERS, and the binaries run from there with configurations the harness writes.
# Their system services never exist. Only the system users and the chroot directory their
# maintainer scripts would create are made here (the binaries look them up by name).
PEERS=/opt/sluice-peers
if [ ! -x $PEERS/exim4/usr/sbin/exim4 ] || [ ! -x $PEERS/opensmtpd/usr/sbin/smtpd ]; then
  [ "${1:-}" = "--run-only" ] && { echo "setup: $PEERS (Exim and OpenSMTPD) missing" >&2; exit 1; }
  tmp=$(mktemp -d)
  chmod 755 "$tmp"  # apt-get download runs as _apt
  (cd "$tmp" && apt-get -o DPkg::Lock::Timeout=600 download -qq exim4-daemon-light opensmtpd) || {
    apt-get -o DPkg::Lock::Timeout=600 update -qq  # package lists never fetched on this machine
    (cd "$tmp" && apt-get -o DPkg::Lock::Timeout=600 download -qq exim4-daemon-light opensmtpd)
  }
  mkdir -p $PEERS
  rm -rf $PEERS/exim4 $PEERS/opensmtpd
  dpkg -x "$tmp"/exim4-daemon-light_*.deb $PEERS/exim4
  dpkg -x "$tmp"/opensmtpd_*.deb $PEERS/opensmtpd
  dpkg-deb -f "$tmp"/exim4-daemon-light_*.deb Version > $PEERS/exim4/VERSION
  dpkg-deb -f "$tmp"/opensmtpd_*.deb Version > $PEERS/opensmtpd/VERSION
  rm -rf "$tmp"
fi
id Debian-exim >/dev/null 2>&1 || adduser --system --group --quiet --allow-bad-names --home /var/spool/exim4 \
  --no-create-home --disabled-password Debian-exim
for name in opensmtpd opensmtpq; do
  id -g $name >/dev/null 2>&1 || addgroup --system --quiet $name
  id $name >/dev/null 2>&1 || adduser --system --quiet --home /var/lib/opensmtpd/empty --no-create-home \
    --disabled-password --ingroup $name $name
done
mkdir -p /var/lib/opensmtpd/empty  # OpenSMTPD's compiled-in chroot
echo "setup: all packages present"
