#!/bin/bash
# dnsmasq-start.sh - a tiny DNS server for one test on 127.0.0.1:PORT, in the foreground.
# Usage: dnsmasq-start.sh DIR PORT RECORDS-FILE
#   RECORDS-FILE holds dnsmasq option lines (mx-host=, host-record=, dns-rr=, ...) appended to
#   the generated DIR/dnsmasq.conf. Names under "test." that are not configured get NXDOMAIN;
#   names outside "test." get REFUSED (no upstream). Not DNSSEC, not authoritative.
# The script execs dnsmasq with --keep-in-foreground, so the caller's process (group) IS the
# server: stop it with SIGTERM. Adapted from the project's shared dnsmasq recipe.
# Package: dnsmasq-base.
set -euo pipefail
DIR=$(mkdir -p "$1" && cd "$1" && pwd)
PORT=${2:?port}
RECORDS=${3:?records file}
{
  echo "port=$PORT"
  echo "listen-address=127.0.0.1"
  echo "bind-interfaces"
  echo "no-resolv"
  echo "no-hosts"
  echo "no-poll"
  echo "no-negcache"
  # As root dnsmasq would otherwise switch to the user "nobody".
  [ "$(id -u)" = 0 ] && { echo "user=root"; echo "group=root"; }
  echo "pid-file="
  echo "log-queries"
  echo "log-facility=$DIR/dnsmasq.log"
  echo "local=/test/"
  cat "$RECORDS"
} > "$DIR/dnsmasq.conf"
dnsmasq --conf-file="$DIR/dnsmasq.conf" --test
exec dnsmasq --conf-file="$DIR/dnsmasq.conf" --keep-in-foreground
