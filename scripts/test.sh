#!/bin/bash
# test.sh - install what Sluice needs, build it with AddressSanitizer and UBSan, and run every
# test (cmocka unit tests and pytest integration tests against real peers) with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The package install test's Debian root is cached per machine; where it is not yet, debootstrap
# (minutes of downloads) runs meanwhile, and the test waits for it on the cache's lock.
mkdir -p build
bash scripts/debian_root.sh >build/debian_root.log 2>&1 &
cmake -S . -B build -DSLUICE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
make -C build -j2
cd build
ctest -j2 --output-on-failure --timeout 900
