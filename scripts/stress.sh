#!/bin/bash
# stress.sh - crash and fault durability: kill -9 the daemon under load, and run it under libfiu
# (random failures of write, fsync, fdatasync, rename, open), then check that every message
# answered 250 reached the sink once or more. Prints per phase
#   kill: rounds=N acknowledged=A lost=L duplicated=D
#   fiu: rounds=M acknowledged=A lost=L duplicated=D
# and exits non-zero if anything acknowledged was lost (or a queue file was declared corrupt, or
# a sanitizer report appeared). The driver is scripts/stress.py (Debian's /usr/bin/python3).
#
# Usage: scripts/stress.sh [--rounds N] [--fiu-rounds M] [--fiu-seconds S] [--fiu-probability P]
#                          [--clients C] [--bin PATH] [--keep]
#   --rounds N        kill -9 rounds (default 5; 0 skips the phase)
#   --fiu-rounds M    rounds under libfiu, each S seconds of load ended by kill -9 (default 3)
# The daemon is build/sluice unless --bin or SLUICE_BIN says otherwise (build it first:
# cmake -S . -B build -DSLUICE_SANITIZE=ON && make -C build -j2).
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 scripts/stress.py "$@"
