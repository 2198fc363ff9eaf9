#!/bin/bash
# unbound-start.sh - unbound as a DNSSEC-validating resolver on 127.0.0.1:PORT, in the foreground
# (the caller's process group is the server: stop it with SIGTERM). It sends the given zones to an
# authoritative server on 127.0.0.1:AUTHPORT (knot-start.sh) and validates them with the trust
# anchors in TAFILE: answers carry the AD bit when secure, none for an unsigned zone, SERVFAIL for
# a bogus one. DIR/ready appears once it answers.
# Usage: unbound-start.sh DIR PORT AUTHPORT TAFILE ZONE...
# Adapted from the project's shared unbound recipe (which daemonizes).   Package: unbound.
set -euo pipefail
DIR=$(mkdir -p "$1" && cd "$1" && pwd)
PORT=${2:?port}; AUTH=${3:?authport}; TA=$(readlink -f "${4:?tafile}")
shift 4
{
cat <<C
server:
    interface: 127.0.0.1@$PORT
    port: $PORT
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "$DIR"
    pidfile: "$DIR/unbound.pid"
    logfile: "$DIR/unbound.log"
    use-syslog: no
    verbosity: 1
    val-log-level: 2
    do-not-query-localhost: no
    # the RFC 6761 default local zone would answer NXDOMAIN for everything under test.
    local-zone: "test." nodefault
    trust-anchor-file: "$TA"
    module-config: "validator iterator"
    cache-max-ttl: 5
    cache-max-negative-ttl: 1
    num-threads: 1
remote-control:
    control-enable: no
C
for z in "$@"; do printf 'stub-zone:\n    name: "%s"\n    stub-addr: 127.0.0.1@%s\n' "$z" "$AUTH"; done
} > "$DIR/unbound.conf"
unbound-checkconf "$DIR/unbound.conf" >/dev/null
unbound -d -c "$DIR/unbound.conf" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0' TERM INT
for i in $(seq 100); do
  if dig @127.0.0.1 -p "$PORT" +time=1 +tries=1 SOA "$1" >/dev/null 2>&1; then
    echo "$pid" > "$DIR/ready"
    wait $pid
    exit 0
  fi
  kill -0 $pid 2>/dev/null || { echo "unbound exited" >&2; exit 1; }
  sleep 0.1
done
echo "unbound did not answer" >&2; kill $pid; exit 1
