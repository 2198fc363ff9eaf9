#!/bin/bash
# setup.sh - install every Debian 12 package Sluice needs to build, run and test.
# Idempotent; run as root. Installs nothing from outside Debian's archive.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# Keep package postinst scripts from starting daemons that would grab test ports.
[ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
BUILD="build-essential cmake pkg-config libevent-dev libssl-dev libc-ares-dev libldap-dev libcmocka-dev libcrypt-dev"
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
TEST="$TEST python3-milter opendkim opendkim-tools python3-dkim"  # tests/integration/test_milter_client.py: a pymilter test milter, opendkim signing, dkimpy verifying
missing=""
for p in $BUILD $TEST; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  [ "${1:-}" = "--run-only" ] && { echo "setup: missing packages:$missing" >&2; exit 1; }
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing
fi
echo "setup: all packages present"
