#!/bin/bash
# run.sh - run the Sluice-vs-Postfix benchmarks (bench/README.md); all options go to bench.py.
#
#   bash bench/run.sh --smoke          CI: a few hundred messages, one repetition, both MTAs (< 2 min)
#   bash bench/run.sh                  benchmarks 1 and 5 in full (long: see README)
#   bash bench/run.sh --help           every option
#
# Builds the release binary (build-release/, never the sanitizer build) when it is missing or
# stale. Everything the harness starts runs in process groups recorded in a pid file; the EXIT
# trap below ends any group still alive (checking each one's start time, so a recycled pid is
# never signalled), whatever way the run ends.
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)

smoke=0
for arg in "$@"; do [ "$arg" = "--smoke" ] && smoke=1; done

PIDFILE=$(mktemp /tmp/sluice-bench-pids.XXXXXX)
export BENCH_PIDFILE=$PIDFILE
export PYTHONDONTWRITEBYTECODE=1  # keep bench/ free of __pycache__

cleanup() {
  local pgid start now
  while read -r pgid start; do
    [ -n "$pgid" ] || continue
    now=$(awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[20] }' "/proc/$pgid/stat" 2>/dev/null)
    if [ -n "$now" ] && { [ "$start" = "?" ] || [ "$now" = "$start" ]; }; then
      kill -TERM -- "-$pgid" 2>/dev/null
    fi
  done < "$PIDFILE"
  sleep 0.5
  while read -r pgid start; do
    [ -n "$pgid" ] || continue
    now=$(awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[20] }' "/proc/$pgid/stat" 2>/dev/null)
    if [ -n "$now" ] && { [ "$start" = "?" ] || [ "$now" = "$start" ]; }; then
      kill -KILL -- "-$pgid" 2>/dev/null
    fi
  done < "$PIDFILE"
  rm -f "$PIDFILE"
}
trap cleanup EXIT

for tool in smtp-source smtp-sink postfix; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install postfix, see scripts/setup.sh)" >&2; exit 1; }
done

# The release build; make is a no-op when it is up to date.
if ! { [ -f build-release/CMakeCache.txt ] || cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null; } \
   || ! make -s -C build-release -j2 sluice >/dev/null; then
  echo "bench: cannot build build-release/sluice" >&2
  exit 1
fi

# The harness runs in the background so that a signal reaches this script at once: it is passed
# on as SIGTERM (bench.py then stops its MTAs and the sink), and the EXIT trap sweeps up the rest.
if [ $smoke = 1 ]; then
  # bounded: the smoke run takes about 55 s (benchmarks 1 and 5, a small storm, a small queue-scale run); 180 s is the hard limit
  timeout -s TERM -k 5 180 /usr/bin/python3 bench/bench.py "$@" &
else
  /usr/bin/python3 bench/bench.py "$@" &
fi
child=$!
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 130' INT
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 143' TERM HUP
wait "$child"
exit $?
