#!/bin/bash
# clamd-start.sh DIR PORT - ClamAV's clamd in the foreground on 127.0.0.1:PORT with only two
# self-written signatures (no freshclam, no downloaded databases): the EICAR test file by its MD5,
# and a body signature on "EICAR-STANDARD-ANTIVIRUS-TEST-FILE" that also matches inside MIME
# parts. StreamMaxLength 1M (INSTREAM's cap). Stop: SIGTERM to the group.
set -euo pipefail
DIR=$(mkdir -p "$1" && cd "$1" && pwd); PORT=$2
mkdir -p "$DIR/db" "$DIR/tmp"
echo "44d88612fea8a8f36de82e1278abb02f:68:Test.EICAR.HDB" > "$DIR/db/test.hdb"
echo "Test.EICAR.NDB:0:*:45494341522d5354414e444152442d414e544956495255532d544553542d46494c45" > "$DIR/db/test.ndb"
cat > "$DIR/clamd.conf" <<C
Foreground yes
TCPSocket $PORT
TCPAddr 127.0.0.1
DatabaseDirectory $DIR/db
TemporaryDirectory $DIR/tmp
LogFile $DIR/clamd.log
LogTime yes
PidFile $DIR/clamd.pid
StreamMaxLength 1M
SelfCheck 0
C
exec clamd -c "$DIR/clamd.conf"
