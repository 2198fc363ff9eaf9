#!/bin/bash
# slapd-start.sh - a throw-away OpenLDAP slapd for one test, in the foreground on 127.0.0.1:PORT.
# Usage: slapd-start.sh DIR PORT SUFFIX LDIF [CERT KEY [LDAPS_PORT]]
#   DIR     private directory (configuration, database, pid file)
#   SUFFIX  the database suffix, e.g. dc=example,dc=test; root DN cn=admin,SUFFIX, password "secret"
#   LDIF    entries loaded with slapadd before the server starts (parents first; the suffix entry
#           included)
#   CERT KEY  PEM certificate and key: the server then offers StartTLS (and ldaps:// on
#           127.0.0.1:LDAPS_PORT when that is given)
# Schemas: core, cosine, inetorgperson, dyngroup (memberURL, groupOfURLs: dynamic groups) and the
# project's etc/sluice.schema (unchanged).
# userPassword is readable by the root DN only (others may bind with it). The script execs slapd
# with -d 0, so the caller's process (group) IS the server: SIGSTOP/SIGCONT/SIGTERM reach it.
# Replication (syncrepl): SLAPD_ROLE=provider loads the syncprov overlay; SLAPD_ROLE=consumer with
# SLAPD_PROVIDER=ldap://... replicates the provider's SUFFIX (refreshAndPersist, bound as its root
# DN); a consumer's LDIF may be empty.
# SLAPD_MONITOR=1 adds the cn=Monitor database (readable by anyone: operation counters, used by
# bench/directory.py to count searches); SLAPD_MAXSIZE overrides the mdb map size (bytes).
# Adapted from the project's shared slapd recipe. Packages: slapd ldap-utils.
set -euo pipefail
DIR=$(mkdir -p "$1" && cd "$1" && pwd)
PORT=${2:?port}
SUFFIX=${3:?suffix}
LDIF=${4:?ldif}
CERT=${5:-}
KEY=${6:-}
LDAPS_PORT=${7:-}
HERE=$(cd "$(dirname "$0")" && pwd)
SCHEMA="$HERE/../../../etc/sluice.schema"
mkdir -p "$DIR/db"
{
  echo "include /etc/ldap/schema/core.schema"
  echo "include /etc/ldap/schema/cosine.schema"
  echo "include /etc/ldap/schema/inetorgperson.schema"
  echo "include /etc/ldap/schema/dyngroup.schema"
  echo "include $SCHEMA"
  echo "pidfile  $DIR/slapd.pid"
  echo "argsfile $DIR/slapd.args"
  echo "modulepath /usr/lib/ldap"
  echo "moduleload back_mdb"
  [ "${SLAPD_ROLE:-}" = provider ] && echo "moduleload syncprov"
  if [ -n "$CERT" ]; then
    echo "TLSCertificateFile $CERT"
    echo "TLSCertificateKeyFile $KEY"
  fi
  echo "database mdb"
  echo "maxsize ${SLAPD_MAXSIZE:-104857600}"
  echo "suffix \"$SUFFIX\""
  echo "rootdn \"cn=admin,$SUFFIX\""
  echo "rootpw secret"
  echo "directory $DIR/db"
  echo "index objectClass,mail,mailAlternateAddress,mailEquivalentAddress,associatedDomain eq"
  if [ "${SLAPD_ROLE:-}" = provider ]; then
    echo "index entryCSN,entryUUID eq"
    echo "overlay syncprov"
    echo "syncprov-checkpoint 10 1"
  elif [ "${SLAPD_ROLE:-}" = consumer ]; then
    echo "index entryCSN,entryUUID eq"
    echo "syncrepl rid=001 provider=${SLAPD_PROVIDER:?provider} type=refreshAndPersist retry=\"1 +\""
    echo "  searchbase=\"$SUFFIX\" bindmethod=simple binddn=\"cn=admin,$SUFFIX\" credentials=secret"
  fi
  echo "access to attrs=userPassword by anonymous auth by * none"
  echo "access to * by * read"
  if [ "${SLAPD_MONITOR:-}" = 1 ]; then
    echo "database monitor"
    echo "access to * by * read"
  fi
} > "$DIR/slapd.conf"
slaptest -Q -u -f "$DIR/slapd.conf"
[ -s "$LDIF" ] && slapadd -q -f "$DIR/slapd.conf" -l "$LDIF"
URLS="ldap://127.0.0.1:$PORT/"
[ -n "$LDAPS_PORT" ] && URLS="$URLS ldaps://127.0.0.1:$LDAPS_PORT/"
exec slapd -d 0 -f "$DIR/slapd.conf" -h "$URLS"
