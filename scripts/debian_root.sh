#!/bin/bash
# debian_root.sh - a throw-away Debian 12 root for the package install test
# (tests/integration/test_package_install.py), made with debootstrap and cached as a tarball.
#
#   bash scripts/debian_root.sh [--adopt DIR]
#
# Prints the tarball's path. debootstrap takes about 13 minutes here (the downloads), so the
# tarball is kept in $SLUICE_DEBIAN_ROOT_CACHE (default /var/cache/sluice-test: outside the
# checkout, so that CI's fresh clone on the same machine reuses it) and made again only when the
# package list below changes. Concurrent callers wait on a lock. --adopt DIR finishes and packs a
# root that the same debootstrap command already made (no second download).
# Exit 3: the Debian mirror cannot be reached (the test skips and says so); other non-zero: error.
set -euo pipefail
SUITE=bookworm
MIRROR=${SLUICE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# jq and curl for the operator's commands; the libraries of a sanitizer build of sluice; the
# dependencies of bsd-mailx, whose own .deb is only downloaded (it needs a mail-transport-agent,
# which our package provides, so it is installed after it)
INCLUDE=jq,curl,adduser,libbsd0,liblockfile1,libevent-2.1-7,libevent-extra-2.1-7,libevent-openssl-2.1-7
INCLUDE=$INCLUDE,libevent-pthreads-2.1-7,libc-ares2,libssl3,libldap-2.5-0,libasan8,libubsan1
CACHE=${SLUICE_DEBIAN_ROOT_CACHE:-/var/cache/sluice-test}
KEY=$(echo "$SUITE $INCLUDE bsd-mailx v1" | sha256sum | cut -c1-12)
TAR=$CACHE/debian-$SUITE-$KEY.tar
ADOPT=""
[ "${1:-}" = --adopt ] && ADOPT=$(realpath "$2")

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w 1800 9
if [ -s "$TAR" ]; then
  echo "$TAR"
  exit 0
fi
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
ROOT=${ADOPT:-$WORK/root}
# unmount_all - whatever debootstrap left mounted under the root, before anything is removed.
unmount_all() {
  local m
  for m in $(awk -v r="$ROOT/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
}
trap 'unmount_all; rm -rf --one-file-system "$WORK"' EXIT
if [ -z "$ADOPT" ]; then
  if ! timeout 1800 debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOT" "$MIRROR" >"$WORK/log" 2>&1; then
    if grep -qiE "Failed getting release file|Couldn't download|Could not resolve|Temporary failure|unreachable" "$WORK/log"; then
      echo "debootstrap cannot reach $MIRROR:" >&2
      tail -3 "$WORK/log" >&2
      exit 3
    fi
    tail -20 "$WORK/log" >&2
    exit 1
  fi
fi
unmount_all
# bsd-mailx's .deb waits in /opt/sluice-test; the package lists stay for apt-get -f install
chroot "$ROOT" apt-get -qq update >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; exit 3; }
mkdir -p "$ROOT/opt/sluice-test"
(cd "$ROOT/opt/sluice-test" && chroot "$ROOT" sh -c 'cd /opt/sluice-test && apt-get -qq download bsd-mailx') \
  >>"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; exit 1; }
chroot "$ROOT" apt-get -qq clean
tar -C "$ROOT" --numeric-owner -cf "$TAR.tmp" .
mv "$TAR.tmp" "$TAR"
echo "$TAR"
