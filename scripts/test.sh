#!/bin/bash
# test.sh - install what Sluice needs, build it with AddressSanitizer and UBSan, and run every
# test (cmocka unit tests and pytest integration tests against real peers) with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DSLUICE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
make -C build -j2
cd build
ctest -j2 --output-on-failure --timeout 900
