#!/bin/sh
# testssl.sh - testssl.sh (Debian's testssl) against greygated's STARTTLS
# with the default TLS configuration: a throw-away CA and a server
# certificate for 127.0.0.1 made with openssl, greygated on a free
# loopback port, testssl -t smtp with that CA added.  Fails when a
# finding is rated MEDIUM, HIGH or CRITICAL; prints testssl's summary.
# Usage: tests/testssl.sh GREYGATED [TIMEOUT_SECONDS]
set -eu
greygated=$1
limit=${2:-3600}
srcdir=$(cd "$(dirname "$0")/.." && pwd)
command -v testssl >/dev/null || { echo "testssl is not installed" >&2; exit 77; }
d=$(mktemp -d /tmp/greygate-testssl.XXXXXX)
chmod 755 "$d"
pid=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	[ -z "$pid" ] || wait "$pid" 2>/dev/null || true
	rm -rf "$d"
}
trap cleanup EXIT INT TERM
set -- $(python3 "$srcdir/tests/free_ports.py" 2)
port=$1 upstream=$2

# a certificate as a public CA would issue it (a year, revocation URIs
# that nothing fetches): testssl then judges greygate, not the test CA
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=greygate test CA" \
	-keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
	-keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'extendedKeyUsage=serverAuth' \
	'crlDistributionPoints=URI:http://crl.example.invalid/ca.crl' \
	'authorityInfoAccess=OCSP;URI:http://ocsp.example.invalid/' >"$d/ext"
openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
	-CAcreateserial -days 365 -sha256 -extfile "$d/ext" -out "$d/server.pem" 2>/dev/null
chmod 600 "$d/server.key"
mkdir -p "$d/spool"
[ "$(id -u)" -ne 0 ] || chown greygate "$d/spool"
cat >"$d/greygate.conf" <<EOC
servername = "localhost"
listen = {"127.0.0.1"}
port = $port
smtp_port = $upstream
pidfile = "$d/greygated.pid"
spool_dir = "$d/spool"
policy = "accept"
max_connections_per_ip = 0
greylist { store = "sqlite:$d/db/greylist.db" }
tls_cert_file = "$d/server.pem"
tls_key_file = "$d/server.key"
EOC
"$greygated" -d -f "$d/greygate.conf" >"$d/daemon.log" 2>&1 &
pid=$!
i=0
until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { cat "$d/daemon.log"; exit 1; }
	sleep 0.1
done
rc=0
timeout "$limit" testssl --quiet --color 0 --warnings off --add-ca "$d/ca.pem" \
	--openssl-timeout 10 --connect-timeout 10 --jsonfile "$d/testssl.json" \
	-t smtp "127.0.0.1:$port" >"$d/testssl.out" 2>&1 || rc=$?
cat "$d/testssl.out"
[ $rc -ne 124 ] || { echo "testssl: timed out after $limit s" >&2; exit 1; }
bad=$(python3 - "$d/testssl.json" <<'PYEOF'
import json, sys
for f in json.load(open(sys.argv[1])):
    if f.get("severity") in ("MEDIUM", "HIGH", "CRITICAL"):
        print("%s %s: %s" % (f["severity"], f["id"], f.get("finding", "")))
PYEOF
)
if [ -n "$bad" ]; then
	echo "testssl: findings rated MEDIUM or worse:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "testssl: no finding rated MEDIUM or worse"
