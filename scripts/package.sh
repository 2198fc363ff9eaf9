#!/bin/bash
# package.sh - build the Debian package sluice_<version>-1_<arch>.deb with dpkg-deb.
#
#   bash scripts/package.sh [--binary PATH] [--out DIR]
#
# Without --binary it builds a release binary in build-release/ (RelWithDebInfo, no sanitizers)
# and strips it; --binary packages an existing one as it is (the tests package their sanitizer
# build). The package holds /usr/sbin/sluice, the sendmail/mailq/newaliases links, /etc/sluice
# (conffiles: packaging/etc and etc/), the systemd unit, man pages generated from the docs
# (scripts/md2man.py) and the docs; postinst adds the sluice system user and /var/spool/sluice.
# Depends is computed from the binary's shared libraries (ldd, dpkg-query). Prints the .deb path.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
BIN=""
OUT="$SRC/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BIN=$(realpath "$2"); shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: package.sh [--binary PATH] [--out DIR]" >&2; exit 2 ;;
  esac
done
STRIP=no
if [ -z "$BIN" ]; then
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_SANITIZE=OFF >/dev/null
  make -C build-release -j2 sluice >/dev/null
  BIN=$SRC/build-release/sluice
  STRIP=yes
fi
VERSION=$(sed -n 's/^#define SLUICE_VERSION "\(.*\)"/\1/p' src/cli/cli.h)-1
ARCH=$(dpkg --print-architecture)
ROOT=$(mktemp -d)
chmod 0755 "$ROOT"
trap 'rm -rf "$ROOT"' EXIT

# depends - the packages of the binary's shared libraries, "a, b, c", in ldd's order. One
# dpkg-query for every library's path spellings (/lib vs /usr/lib, symbolic links): a query
# each costs most of a second.
depends() {
  local lib p pkg out="" libs
  declare -A owner=()
  libs=$(ldd "$BIN" | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}')
  while IFS= read -r line; do
    case "$line" in diversion*) continue ;; esac
    owner["${line#*: }"]=${line%%:*}
  done < <(for lib in $libs; do printf '%s\n' "$lib" "$(realpath "$lib")" "${lib#/usr}" "/usr$lib"; done |
           sort -u | xargs dpkg-query -S 2>/dev/null || true)
  for lib in $libs; do
    pkg=""
    for p in "$lib" "$(realpath "$lib")" "${lib#/usr}" "/usr$lib"; do
      pkg=${owner[$p]:-} && [ -n "$pkg" ] && break
    done
    [ -n "$pkg" ] && case ", $out, " in *", $pkg, "*) ;; *) out="${out:+$out, }$pkg" ;; esac
  done
  echo "$out"
}

# the binary and the names it answers to
install -D -m 0755 "$BIN" "$ROOT/usr/sbin/sluice"
[ "$STRIP" = yes ] && strip --strip-unneeded "$ROOT/usr/sbin/sluice"
mkdir -p "$ROOT/usr/lib" "$ROOT/usr/bin"
ln -s sluice "$ROOT/usr/sbin/sendmail"
ln -s ../sbin/sluice "$ROOT/usr/lib/sendmail"
ln -s ../sbin/sluice "$ROOT/usr/bin/mailq"
ln -s ../sbin/sluice "$ROOT/usr/bin/newaliases"

# configuration: the package's option.dat and dispatcher.cnf, the example's routing and directory
install -d -m 0755 "$ROOT/etc/sluice"
install -m 0644 packaging/etc/option.dat packaging/etc/dispatcher.cnf "$ROOT/etc/sluice/"
install -m 0644 etc/sluice.cnf etc/job_controller.cnf etc/directory.ldif "$ROOT/etc/sluice/"
install -D -m 0644 packaging/sluice.service "$ROOT/lib/systemd/system/sluice.service"

# documentation and man pages
DOC=$ROOT/usr/share/doc/sluice
install -d "$DOC"
install -m 0644 README.md doc/*.md etc/sluice.schema "$DOC/"
install -m 0644 packaging/debian/copyright "$DOC/copyright"
install -d "$ROOT/usr/share/man/man8" "$ROOT/usr/share/man/man5"
man() { /usr/bin/python3 scripts/md2man.py "$@" | gzip -9n; }
man sluice 8 "mail transfer agent" "README.md#Commands" "README.md#Logs" "doc/operations.md#Reload" \
  "doc/operations.md#Queue tools for scripts" "doc/operations.md#Metrics" "doc/operations.md#JSON logs" \
  > "$ROOT/usr/share/man/man8/sluice.8.gz"
man sendmail 8 "the sendmail interface of Sluice" "doc/operations.md#The sendmail interface" \
  > "$ROOT/usr/share/man/man8/sendmail.8.gz"
man sluice.cnf 5 "Sluice configuration files" doc/configuration.md > "$ROOT/usr/share/man/man5/sluice.cnf.5.gz"

# control files
install -d -m 0755 "$ROOT/DEBIAN"
install -m 0644 packaging/debian/conffiles "$ROOT/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$ROOT/DEBIAN/"
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@DEPENDS@/$(depends)/" -e "s/@SIZE@/$SIZE/" \
  packaging/debian/control > "$ROOT/DEBIAN/control"

mkdir -p "$OUT"
DEB=$(realpath "$OUT")/sluice_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
