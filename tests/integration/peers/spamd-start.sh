#!/bin/bash
# spamd-start.sh DIR PORT - SpamAssassin's spamd in the foreground on 127.0.0.1:PORT, offline
# (the rules of Debian's package, no network tests, no Bayes): GTUBE scores 1000. Its log is
# DIR/spamd.log ("spamd: result: Y 1000 - GTUBE,..." once per scan). Stop: SIGTERM to the group.
set -euo pipefail
DIR=$(mkdir -p "$1" && cd "$1" && pwd); PORT=$2
mkdir -p "$DIR/site" "$DIR/home"
cp /etc/spamassassin/*.pre "$DIR/site/"   # plugin loading (.pre files) must come along
cat > "$DIR/site/local.cf" <<'C'
use_bayes 0
bayes_auto_learn 0
skip_rbl_checks 1
dns_available no
use_razor2 0
use_pyzor 0
required_score 5.0
C
exec spamd --listen="127.0.0.1:$PORT" --allowed-ips=127.0.0.1 --local --nouser-config \
     --siteconfigpath="$DIR/site" --helper-home-dir="$DIR/home" \
     --max-children=2 --min-children=1 --pidfile="$DIR/spamd.pid" --syslog="$DIR/spamd.log"
