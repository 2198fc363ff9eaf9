#!/bin/bash
# knot-start.sh - Knot DNS as the authoritative server of a test's zones on 127.0.0.1:PORT, in the
# foreground (the caller's process group is the server: stop it with SIGTERM).
# Usage: knot-start.sh DIR PORT ZONE:MODE...
#   The test writes each zone file as DIR/ZONE.zone first. MODE is
#     signed    knot makes the keys and signs the zone itself (ECDSA P-256); its KSK goes to DIR/ta.key
#     unsigned  served as written (an "insecure" zone for a validating resolver)
#     bogus     signed, but DIR/ta.key gets a WRONG anchor for it (the first signed zone's KSK under
#               its name), so a validating resolver calls its answers bogus (SERVFAIL)
#   DIR/ta.key (DNSKEY lines: trust anchors for unbound-start.sh) and then DIR/ready appear once
#   every signed zone answers with its DNSKEY.
# Adapted from the project's shared knot recipe (which starts fixed zones and daemonizes).
# Packages: knot (knotd, knotc), bind9-dnsutils (dig).
set -euo pipefail
DIR=$(mkdir -p "$1" && cd "$1" && pwd)
PORT=${2:?port}
shift 2
mkdir -p "$DIR/db" "$DIR/keys"
{
cat <<C
server:
    rundir: "$DIR"
    listen: 127.0.0.1@$PORT
    pidfile: "$DIR/knot.pid"
database:
    storage: "$DIR/db"
keystore:
  - id: default
    config: "$DIR/keys"
log:
  - target: "$DIR/knot.log"
    any: info
template:
  - id: default
    storage: "$DIR"
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
zone:
C
for spec in "$@"; do
  z=${spec%%:*}; mode=${spec#*:}
  echo "  - domain: $z"
  echo "    file: \"$DIR/$z.zone\""
  [ "$mode" = unsigned ] || echo "    dnssec-signing: on"
done
} > "$DIR/knot.conf"
knotc -c "$DIR/knot.conf" conf-check >/dev/null
knotd -c "$DIR/knot.conf" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0' TERM INT
ksk() { dig @127.0.0.1 -p "$PORT" +noall +answer +time=1 +tries=1 DNSKEY "$1" 2>/dev/null | awk '$5==257'; }
: > "$DIR/ta.key.tmp"
first=
for spec in "$@"; do
  z=${spec%%:*}; mode=${spec#*:}
  [ "$mode" = unsigned ] && continue
  k=
  for i in $(seq 100); do
    k=$(ksk "$z") && [ -n "$k" ] && break
    kill -0 $pid 2>/dev/null || { echo "knotd exited" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$k" ] || { echo "knot did not sign $z" >&2; kill $pid; exit 1; }
  if [ "$mode" = signed ]; then
    echo "$k" >> "$DIR/ta.key.tmp"
    [ -n "$first" ] || first=$k
  fi
done
for spec in "$@"; do
  z=${spec%%:*}; mode=${spec#*:}
  [ "$mode" = bogus ] || continue
  [ -n "$first" ] || { echo "a bogus zone needs a signed one first" >&2; kill $pid; exit 1; }
  echo "$first" | awk -v z="$z." '{ $1=z; print }' >> "$DIR/ta.key.tmp"
done
mv "$DIR/ta.key.tmp" "$DIR/ta.key"
echo "$pid" > "$DIR/ready"
wait $pid
