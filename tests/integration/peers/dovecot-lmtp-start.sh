#!/bin/bash
# dovecot-lmtp-start.sh - Dovecot as an LMTP-only server for one test, in the foreground.
# Usage: dovecot-lmtp-start.sh DIR ADDRESS PORT
#   Listens on ADDRESS:PORT and stores mail in Maildirs under DIR/mail/<domain>/<user>/Maildir
#   (as nobody:nogroup; every directory above DIR must be searchable by nobody).
#   Users (passwd-file DIR/users): alice@example.test, bob@example.test (10 MB quota),
#   carol@example.test (1 KB quota: a larger message gets "552 5.2.2 ... Quota exceeded" after
#   DATA). Unknown users get "550 5.1.1" at RCPT. One reply per recipient after DATA.
# The script execs `dovecot -F`, so the caller's process (group) IS the server: stop it with
# SIGTERM. Must be started as root. Adapted from the project's shared Dovecot LMTP recipe.
# Packages: dovecot-core dovecot-lmtpd.
set -euo pipefail
DIR=$(mkdir -p "$1" && cd "$1" && pwd)
ADDR=${2:?address}
PORT=${3:?port}
mkdir -p "$DIR/run" "$DIR/state" "$DIR/mail"
chown nobody:nogroup "$DIR/mail"
cat > "$DIR/users" <<U
alice@example.test:{PLAIN}alicepw::::::
bob@example.test:{PLAIN}bobpw::::::
carol@example.test:{PLAIN}carolpw::::::userdb_quota_rule=*:storage=1K
U
cat > "$DIR/dovecot.conf" <<C
base_dir = $DIR/run
state_dir = $DIR/state
instance_name = dovecot-sluice-$PORT
log_path = $DIR/dovecot.log
protocols = lmtp
listen = $ADDR
ssl = no
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 1
auth_mechanisms = plain
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DIR/users
  default_fields = uid=nobody gid=nogroup home=$DIR/mail/%d/%n
}
mail_location = maildir:~/Maildir
mail_plugins = quota
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=10M
}
service lmtp {
  inet_listener lmtp {
    address = $ADDR
    port = $PORT
  }
}
C
doveconf -c "$DIR/dovecot.conf" -n >/dev/null
exec dovecot -F -c "$DIR/dovecot.conf"
