#!/bin/bash
# test.sh - install what Sluice needs, build it with AddressSanitizer and UBSan, run every test
# (cmocka unit tests and pytest integration tests against real peers) with CTest, then the
# benchmark harness in smoke mode (a few hundred messages through Sluice and Postfix) so that
# bench/ cannot rot. Timings are never assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DSLUICE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
make -C build -j2
(cd build && ctest -j2 --output-on-failure --timeout 900)
bash bench/run.sh --smoke
