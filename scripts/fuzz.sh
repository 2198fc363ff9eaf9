#!/bin/bash
# fuzz.sh - build the libFuzzer targets of fuzz/ with clang in build-fuzz/ and run each one for a
# while, starting from a copy of its committed corpus (fuzz/corpus/<target>/).
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  how long each target runs (default 10)
#   TARGET              names as in fuzz/fuzz_<name>.c (default: every target)
#
# A crash, a sanitizer report, a leak or a broken property stops that target; its input is
# saved in build-fuzz/crashes/<target>-crash-<sha1> (reproduce: build-fuzz/fuzz/fuzz_<target>
# FILE) and the script exits 1 after running the other targets. Each target's output is in
# build-fuzz/logs/<target>.log; one summary line per target is printed (executions, seconds,
# corpus size). Inputs found that add coverage stay in build-fuzz/corpus/<target>/ (not
# committed; copy the useful ones to fuzz/corpus/ by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
secs=${1:-10}
if [ $# -gt 0 ]; then shift; fi
case "$secs" in '' | *[!0-9]*) echo "fuzz.sh: SECONDS_PER_TARGET must be a number, got '$secs'" >&2; exit 2 ;; esac

all=$(cd fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')
targets=${*:-$all}
for t in $targets; do
  [ -f "fuzz/fuzz_$t.c" ] || { echo "fuzz.sh: no target '$t' (have: $(echo $all))" >&2; exit 2; }
done

command -v clang >/dev/null || { echo "fuzz.sh: clang is missing (scripts/setup.sh installs it)" >&2; exit 2; }
B=$SRC/build-fuzz
# -O1 -g as libFuzzer recommends; no NDEBUG, so nothing is compiled out.
cmake -S "$SRC" -B "$B" -DCMAKE_C_COMPILER=clang -DSLUICE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
make -C "$B" -j2 $(for t in $targets; do echo "fuzz_$t"; done) >"$B/build.log" 2>&1 || {
  tail -50 "$B/build.log" >&2
  echo "fuzz.sh: build failed (build-fuzz/build.log)" >&2
  exit 2
}

mkdir -p "$B/crashes" "$B/logs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=""
total_start=$(date +%s)
for t in $targets; do
  work=$B/corpus/$t
  rm -rf "$work"
  mkdir -p "$work"
  [ -d "fuzz/corpus/$t" ] && cp fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  log=$B/logs/$t.log
  start=$(date +%s)
  rc=0
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: runaway memory is a finding too.
  "$B/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$B/crashes/$t-" "$work" >"$log" 2>&1 || rc=$?
  took=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  units=$(ls "$work" | wc -l)
  if [ "$rc" -ne 0 ]; then
    failed="$failed $t"
    crash=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
    printf 'fuzz %-22s FAILED (exit %d) after %ss: %s\n' "$t" "$rc" "$took" "${crash:-see $log}"
    grep -m3 -E 'ERROR: |fuzz property failed|runtime error' "$log" | sed 's/^/    /' || true
  else
    printf 'fuzz %-22s ok  execs=%-9s secs=%-4s corpus=%s\n' "$t" "${execs:-?}" "$took" "$units"
  fi
done
echo "fuzz: $(echo $targets | wc -w) targets, $(($(date +%s) - total_start)) s"
if [ -n "$failed" ]; then
  echo "fuzz: FAILED:$failed (inputs in build-fuzz/crashes/, logs in build-fuzz/logs/)" >&2
  exit 1
fi
