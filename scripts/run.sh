#!/bin/bash
# run.sh - install what Sluice needs, build it, and run it in the foreground on the embedded
# default configuration in etc/ (listening on 127.0.0.1:2525, Maildirs under run/maildir).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
make -C build-release -j2 sluice
mkdir -p run
echo "sluice: Maildirs will be under $(pwd)/run/maildir, the queue under $(pwd)/run/queue"
exec build-release/sluice serve -C etc
