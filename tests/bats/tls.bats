#!/usr/bin/env bats
# STARTTLS (RFC 3207) with real TLS peers: swaks, openssl s_client,
# Python's smtplib and ssl; the plaintext injection attack; the
# certificate checks of -t; rotation on SIGHUP; garbage in place of a
# ClientHello; the log and the counters.  Certificates are made here with
# openssl, never committed.

load common

TLSCLIENT="python3 $top_srcdir/tests/tlsclient.py"

# make_cert NAME [CN] - a self-signed certificate $T/NAME.pem and its key
# $T/NAME.key (0600), for CN (gw.test) and 127.0.0.1
make_cert() {
	local cn=${2:-gw.test}
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$cn" \
		-addext "subjectAltName=DNS:$cn,IP:127.0.0.1" \
		-keyout "$T/$1.key" -out "$T/$1.pem" 2>/dev/null ||
		fail "openssl req failed"
	chmod 600 "$T/$1.key"
}

# fingerprint NAME - the SHA-256 fingerprint of $T/NAME.pem, lower case hex
fingerprint() {
	openssl x509 -in "$T/$1.pem" -outform DER | sha256sum | cut -d' ' -f1
}

# tls_conf [LINE...] - write_conf with $T/server.pem and $T/server.key
tls_conf() {
	write_conf "tls_cert_file = \"$T/server.pem\"" \
		"tls_key_file = \"$T/server.key\"" "$@"
}

teardown() {
	stop_postfix_sender
	common_teardown
}

# asan_build - greygated was built with AddressSanitizer
asan_build() {
	nm "$GREYGATED" 2>/dev/null | grep -q __asan_init
}

setup() {
	common_setup
	make_cert server
	tls_conf
	printf 'Subject: over TLS\r\nFrom: alice@example.com\r\n\r\nline one\r\nline two\r\n' \
		>"$T/message"
}

@test "EHLO announces STARTTLS when a certificate is set (tls unset: may)" {
	start_sink
	start_daemon
	run smtp "EHLO client.example" QUIT
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
S: 250-gw.test Hello client.example [127.0.0.1]
S: 250-PIPELINING
S: 250-SIZE 26214400
S: 250-8BITMIME
S: 250-STARTTLS
S: 250 ENHANCEDSTATUSCODES
C: QUIT
S: 221 2.0.0 gw.test closing connection
EOF
}

@test "tls = off: no STARTTLS announced, 502 5.5.1" {
	tls_conf 'tls = off'
	start_sink
	start_daemon
	run smtp "EHLO client.example" STARTTLS QUIT
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: STARTTLS
S: 502 5.5.1 Command not implemented
C: QUIT
S: 221 2.0.0 gw.test closing connection
EOF
}

@test "STARTTLS: 501 with an argument, 503 before EHLO and in a transaction" {
	start_sink
	start_daemon
	run smtp STARTTLS "HELO client.example" STARTTLS "EHLO client.example" \
		"STARTTLS now" "MAIL FROM:<alice@example.com>" STARTTLS QUIT
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: STARTTLS
S: 503 5.5.1 Error: send EHLO first
C: HELO client.example
S: 250 gw.test Hello client.example [127.0.0.1]
C: STARTTLS
S: 503 5.5.1 Error: send EHLO first
C: EHLO client.example
S: 250-gw.test Hello client.example [127.0.0.1]
S: 250-PIPELINING
S: 250-SIZE 26214400
S: 250-8BITMIME
S: 250-STARTTLS
S: 250 ENHANCEDSTATUSCODES
C: STARTTLS now
S: 501 5.5.4 Syntax error
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: STARTTLS
S: 503 5.5.1 Error: MAIL transaction in progress
C: QUIT
S: 221 2.0.0 gw.test closing connection
EOF
}

@test "swaks --tls: the message arrives byte-exact; the log says tls=TLSv1.3/CIPHER" {
	command -v swaks >/dev/null || skip "swaks is not installed"
	start_sink
	start_daemon
	# swaks ends the data with CRLF . CRLF: it gets the message without
	# its last CRLF
	head -c -2 "$T/message" >"$T/swaks-data"
	run swaks --server "127.0.0.1:$PORT" --tls --helo client.example \
		--from alice@example.com --to bob@example.org --data "$T/swaks-data"
	expect_status 0
	[[ "$output" == *"TLS started with cipher TLSv1.3"* ]] || fail "$output"
	expect_delivered 1
	expect_same_bytes "$T/message" "$SINK_DIR/0001.msg"
	wait_for_grep 'action=pass .* tls=TLSv1\.3/TLS_[A-Z0-9_]+$' "$DAEMON_LOG" ||
		fail "no action=pass with tls=TLSv1.3/...: $(cat "$DAEMON_LOG")"
	# EHLO was sent again over TLS: the replay upstream has it once
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>"
}

@test "openssl s_client -starttls smtp: the message arrives byte-exact" {
	start_sink
	start_daemon
	run $TLSCLIENT s_client "$PORT" alice@example.com bob@example.org "$T/message"
	expect_status 0
	expect_line "T: 250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
	expect_same_bytes "$T/message" "$SINK_DIR/0001.msg"
}

@test "Python smtplib starttls(): the message arrives byte-exact, TLSv1.2 when the client asks" {
	start_sink
	start_daemon
	run $TLSCLIENT smtplib "$PORT" alice@example.com bob@example.org "$T/message"
	expect_status 0
	expect_line "starttls: 220 2.0.0 Ready to start TLS"
	expect_line "data: 250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
	expect_same_bytes "$T/message" "$SINK_DIR/0001.msg"
	# a client that stops at TLSv1.2 gets it, with a forward-secret cipher
	run openssl s_client -starttls smtp -connect "127.0.0.1:$PORT" -tls1_2 \
		-brief </dev/null
	[[ "$output" == *"Protocol version: TLSv1.2"* ]] || fail "$output"
	[[ "$output" == *"Ciphersuite: ECDHE-"* ]] || fail "$output"
}

@test "after the handshake the session starts over; a second STARTTLS gets 503" {
	start_sink
	start_daemon
	run $TLSCLIENT after "$PORT"
	expect_status 0
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
S: 250-gw.test Hello client.example [127.0.0.1]
S: 250-PIPELINING
S: 250-SIZE 26214400
S: 250-8BITMIME
S: 250-STARTTLS
S: 250 ENHANCEDSTATUSCODES
S: 220 2.0.0 Ready to start TLS
cert $(fingerprint server)
T: 503 5.5.1 Error: send HELO/EHLO first
T: 250-gw.test Hello client.example [127.0.0.1]
T: 250-PIPELINING
T: 250-SIZE 26214400
T: 250-8BITMIME
T: 250 ENHANCEDSTATUSCODES
T: 503 5.5.1 Error: TLS already active
T: 221 2.0.0 gw.test closing connection
EOF
}

@test "injection: a command behind STARTTLS in its segment is never executed" {
	start_sink
	start_daemon
	run $TLSCLIENT inject "$PORT"
	expect_status 0
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
S: 250-gw.test Hello client.example [127.0.0.1]
S: 250-PIPELINING
S: 250-SIZE 26214400
S: 250-8BITMIME
S: 250-STARTTLS
S: 250 ENHANCEDSTATUSCODES
C: STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n (one segment)
S: 554 5.5.1 Error: command pipelined after STARTTLS
-- closed
EOF
	wait_for_grep 'action=protocol-error reason=starttls-pipelining tls=none' "$DAEMON_LOG" ||
		fail "not logged: $(cat "$DAEMON_LOG")"
	expect_nothing_upstream
	refute_grep 'evil@example.com' "$DAEMON_LOG"
}

@test "garbage in place of a ClientHello: the session ends, logged once, the worker goes on" {
	start_sink
	start_daemon
	run $TLSCLIENT garbage "$PORT"
	expect_status 0
	expect_line "-- closed"
	wait_for_grep 'reason=tls-handshake error=' "$DAEMON_LOG" ||
		fail "no tls-handshake line: $(cat "$DAEMON_LOG")"
	[ "$(grep -c 'reason=tls-handshake' "$DAEMON_LOG")" -eq 1 ] ||
		fail "logged more than once: $(cat "$DAEMON_LOG")"
	refute_grep 'died on signal|exited with status' "$DAEMON_LOG"
	run $TLSCLIENT smtplib "$PORT" alice@example.com bob@example.org "$T/message"
	expect_line "data: 250 2.0.0 Ok: queued as 0001"
}

@test "the handshake is bounded by inactivity_timeout" {
	tls_conf "inactivity_timeout = 2"
	start_sink
	start_daemon
	local t0 t1
	t0=$(now)
	SMTP_TIMEOUT=10 run smtp "EHLO client.example" STARTTLS '!eof'
	t1=$(now)
	expect_line "S: 220 2.0.0 Ready to start TLS"
	expect_line "-- closed"
	elapsed_between "$t0" "$t1" 1.5 6
	wait_for_grep 'reason=tls-handshake error="handshake timeout"' "$DAEMON_LOG" ||
		fail "$(cat "$DAEMON_LOG")"
}

@test "-t: the pair loads; a key that is not the certificate's, a missing or broken file, named" {
	run "$GREYGATED" -t -f "$CONF"
	expect_status 0
	expect_line "configuration OK"

	make_cert other
	tls_conf "tls_key_file = \"$T/other.key\""
	run "$GREYGATED" -t -f "$CONF"
	expect_status 1
	[[ "$output" == "tls_key_file $T/other.key does not match the certificate of tls_cert_file $T/server.pem" ]] ||
		fail "$output"

	tls_conf "tls_cert_file = \"$T/missing.pem\""
	run "$GREYGATED" -t -f "$CONF"
	expect_status 1
	[[ "$output" == "tls_cert_file $T/missing.pem: "* ]] || fail "$output"

	printf 'not a key\n' >"$T/broken.key"
	tls_conf "tls_key_file = \"$T/broken.key\""
	run "$GREYGATED" -t -f "$CONF"
	expect_status 1
	[[ "$output" == "tls_key_file $T/broken.key: "* ]] || fail "$output"

	tls_conf 'tls_ciphers = "NO-SUCH-CIPHER"'
	run "$GREYGATED" -t -f "$CONF"
	expect_status 1
	[[ "$output" == 'tls_ciphers "NO-SUCH-CIPHER": '* ]] || fail "$output"

	printf 'junk\n' >"$T/dh.pem"
	tls_conf "tls_dh = \"$T/dh.pem\""
	run "$GREYGATED" -t -f "$CONF"
	expect_status 1
	[[ "$output" == "tls_dh $T/dh.pem: "* ]] || fail "$output"

	# and a bad pair stops the start
	tls_conf "tls_key_file = \"$T/other.key\""
	run "$GREYGATED" -d -f "$CONF"
	expect_status 1
}

@test "config: tls keys are checked" {
	write_conf "tls_cert_file = \"$T/server.pem\""
	run "$GREYGATED" -t -f "$CONF"
	expect_status 1
	[[ "$output" == *"tls_cert_file and tls_key_file are set together"* ]] || fail "$output"
	write_conf 'tls = may'
	run "$GREYGATED" -t -f "$CONF"
	expect_status 1
	[[ "$output" == *"tls = may needs tls_cert_file and tls_key_file"* ]] || fail "$output"
	tls_conf 'tls = maybe'
	run "$GREYGATED" -t -f "$CONF"
	expect_status 1
	[[ "$output" == *'tls must be off or may, not "maybe"'* ]] || fail "$output"
	tls_conf 'tls_protocols = {"SSLv3"}'
	run "$GREYGATED" -t -f "$CONF"
	expect_status 1
	[[ "$output" == *'tls_protocols: "SSLv3" is not TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3'* ]] || fail "$output"
	tls_conf 'tls_cert_file = "relative.pem"'
	run "$GREYGATED" -t -f "$CONF"
	expect_status 1
	[[ "$output" == *"tls_cert_file must be an absolute path"* ]] || fail "$output"
}

@test "tls_protocols = {\"TLSv1.3\"} refuses a TLSv1.2 client; tls_dh loads a DH file" {
	openssl dhparam -dsaparam -out "$T/dh.pem" 2048 2>/dev/null || fail "dhparam"
	tls_conf 'tls_protocols = {"TLSv1.3"}' "tls_dh = \"$T/dh.pem\""
	start_sink
	start_daemon
	run openssl s_client -starttls smtp -connect "127.0.0.1:$PORT" -tls1_2 \
		-brief </dev/null
	[[ "$output" != *"Protocol version: TLSv1.2"* ]] || fail "$output"
	wait_for_grep 'reason=tls-handshake error=' "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
	run openssl s_client -starttls smtp -connect "127.0.0.1:$PORT" -brief </dev/null
	[[ "$output" == *"Protocol version: TLSv1.3"* ]] || fail "$output"
}

@test "rotation: SIGHUP serves the new certificate to new sessions, an open TLS session goes on; a broken pair keeps the old" {
	# the held session waits through a key generation and a reload
	tls_conf "inactivity_timeout = 60"
	start_sink
	start_daemon
	local old new
	old=$(fingerprint server)
	mkfifo "$T/go"
	exec 5<>"$T/go"
	$TLSCLIENT hold "$PORT" <&5 >"$T/hold.out" 2>&1 &
	BG_PIDS+=($!)
	local hold=$!
	wait_for_grep '^cert ' "$T/hold.out" 10 || fail "no TLS session: $(cat "$T/hold.out")"
	expect_line_in "$T/hold.out" "cert $old"

	# renewal: new files in place, SIGHUP
	make_cert new
	cp "$T/new.pem" "$T/server.pem"
	cp "$T/new.key" "$T/server.key"
	new=$(fingerprint new)
	kill -HUP "$DAEMON_PID"
	wait_for_grep 'reloaded configuration' "$DAEMON_LOG" 10 || fail "$(cat "$DAEMON_LOG")"
	wait_for_new_cert "$new"

	# the session opened before goes on, over the old certificate
	echo go >&5
	wait "$hold" || true
	exec 5>&-
	expect_line_in "$T/hold.out" "T: 250 2.0.0 Ok: queued as 0001"
	expect_delivered 1

	# a certificate without its key: the old pair stays
	make_cert third
	cp "$T/third.pem" "$T/server.pem"
	kill -HUP "$DAEMON_PID"
	wait_for_grep 'TLS error, keeping the old configuration and certificate: tls_key_file .* does not match' \
		"$DAEMON_LOG" 10 || fail "$(cat "$DAEMON_LOG")"
	run $TLSCLIENT fingerprint "$PORT"
	expect_line "cert $new"
}

# expect_line_in FILE TEXT - FILE has a line equal to TEXT
expect_line_in() {
	grep -Fxq -- "$2" "$1" || fail "no line \"$2\" in $1:" "$(cat "$1")"
}

# wait_for_new_cert FP - until a new session is served FP (old workers
# drain after SIGHUP; 10 s at most)
wait_for_new_cert() {
	local i
	for ((i = 0; i < 50; i++)); do
		run $TLSCLIENT fingerprint "$PORT"
		[[ "$output" == *"cert $1"* ]] && return 0
		sleep 0.2
	done
	fail "the new certificate is not served: $output"
}

@test "SIGUSR1 counts the TLS sessions" {
	start_sink
	start_daemon
	run $TLSCLIENT fingerprint "$PORT"
	run $TLSCLIENT fingerprint "$PORT"
	run smtp QUIT
	local i
	# a worker counts a session once it has closed it
	for ((i = 0; i < 10; i++)); do
		kill -USR1 "$DAEMON_PID"
		wait_for_grep 'counters: .* sessions=3 .*tls_sessions=2$' "$DAEMON_LOG" 1 && return 0
	done
	fail "$(grep counters "$DAEMON_LOG")"
}

@test "a plaintext session logs tls=none" {
	start_sink
	start_daemon
	run simple_session
	wait_for_grep 'action=pass .* tls=none$' "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
}

@test "workers never read the key: it stays root's, 0600, and TLS works" {
	[ "$(id -u)" -eq 0 ] || skip "needs root: the workers must be another user"
	start_sink
	start_daemon
	[ "$(stat -c %U:%a "$T/server.key")" = root:600 ] || fail "key mode"
	run $TLSCLIENT fingerprint "$PORT"
	expect_line "cert $(fingerprint server)"
	local p
	for p in $(workers); do
		[ "$(awk '/^Uid:/ {print $2}' "/proc/$p/status")" != 0 ] ||
			continue	# only the master is root
		! ls -l "/proc/$p/fd" 2>/dev/null | grep -q server.key ||
			fail "worker $p has the key open"
	done
}

@test "memory: a TLS session adds at most 400 KiB to a worker" {
	tls_conf "start_workers = 1" "min_spare_workers = 0" "max_spare_workers = 1" \
		"max_workers = 1" "inactivity_timeout = 60"
	start_sink
	start_daemon
	run simple_session
	# the worker, idle after one plaintext session
	local w before during
	w=$(pgrep -P "$DAEMON_PID" -f 'worker: idle' | head -1)
	[ -n "$w" ] || fail "no idle worker: $(ps -o pid,args --ppid "$DAEMON_PID")"
	before=$(awk '/^Anonymous:/ {print $2}' "/proc/$w/smaps_rollup")
	mkfifo "$T/go"
	exec 5<>"$T/go"
	$TLSCLIENT hold "$PORT" <&5 >"$T/hold.out" 2>&1 &
	BG_PIDS+=($!)
	wait_for_grep '^cert ' "$T/hold.out" 10 || fail "$(cat "$T/hold.out")"
	during=$(awk '/^Anonymous:/ {print $2}' "/proc/$w/smaps_rollup")
	echo go >&5
	exec 5>&-
	echo "# worker $w: Anonymous ${before} kB idle, ${during} kB in a TLS session: +$((during - before)) kB" >&3
	# ASan's redzones and quarantine make every allocation bigger
	asan_build || [ $((during - before)) -le 400 ] ||
		fail "a TLS session costs $((during - before)) kB"
}

# postfix_sender - a private Postfix instance under $T/pf (postfix -c)
# whose only route is greygate on $PORT, with smtp_tls_security_level
# = encrypt; its log is $T/pf/maillog
postfix_sender() {
	PF=$T/pf
	mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
	chown postfix "$PF/data"
	cat >"$PF/etc/main.cf" <<EOC
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = sender.example
mydomain = sender.example
myorigin = sender.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file_prefixes = $T
maillog_file = $PF/maillog
smtp_dns_support_level = disabled
disable_dns_lookups = yes
alias_maps =
alias_database =
relayhost = [127.0.0.1]:$PORT
smtp_tls_security_level = encrypt
smtp_tls_loglevel = 1
smtp_helo_name = sender.example
EOC
	cat >"$PF/etc/master.cf" <<EOC
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
showq     unix  n       -       n       -       -       showq
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOC
	postfix -c "$PF/etc" start >"$T/postfix-start.log" 2>&1 </dev/null 3>&- || {
		cat "$T/postfix-start.log" "$PF/maillog" 2>/dev/null
		fail "postfix did not start"
	}
	PF_STARTED=1
}

stop_postfix_sender() {
	[ -n "${PF_STARTED:-}" ] || return 0
	local pid i
	pid=$(tr -d ' ' <"$PF/queue/pid/master.pid" 2>/dev/null) || true
	postfix -c "$PF/etc" stop >/dev/null 2>&1 </dev/null 3>&- || true
	for ((i = 0; i < 100; i++)); do
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
	PF_STARTED=
}

@test "Postfix with smtp_tls_security_level = encrypt delivers through greygate over TLS" {
	command -v postfix >/dev/null || skip "postfix is not installed"
	[ "$(id -u)" -eq 0 ] || skip "a private Postfix needs root"
	start_sink
	start_daemon
	postfix_sender
	printf 'Subject: from Postfix\r\n\r\nencrypted or not at all\r\n' |
		sendmail -C "$PF/etc" -f alice@sender.example bob@example.org ||
		{ stop_postfix_sender; fail "sendmail failed"; }
	local ok=
	wait_for_grep 'status=sent' "$PF/maillog" 30 && ok=1
	stop_postfix_sender
	[ -n "$ok" ] || fail "not sent: $(cat "$PF/maillog")"
	grep -Eq "(Verified|Untrusted|Anonymous) TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:$PORT: TLSv1\.[23]" \
		"$PF/maillog" || fail "no TLS in the Postfix log: $(cat "$PF/maillog")"
	expect_delivered 1
	grep -q '^encrypted or not at all' "$SINK_DIR/0001.msg" || fail "$(cat "$SINK_DIR/0001.msg")"
	grep -Eq 'helo=sender.example from=<alice@sender.example> .* action=pass .* tls=TLSv1\.[23]/' \
		"$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
}

@test "valgrind: a TLS session, garbage for a ClientHello and the injection, no memory error" {
	command -v valgrind >/dev/null || skip "valgrind is not installed"
	! asan_build || skip "an AddressSanitizer build does not run under valgrind"
	tls_conf "start_workers = 1" "min_spare_workers = 1" "max_spare_workers = 2" \
		"inactivity_timeout = 30"
	start_sink
	mkdir -p "$T/vg"
	chmod 777 "$T/vg"
	# every process of the daemon, one log each; the workers are not
	# root and cannot remove vgdb's fifos: no vgdb
	valgrind -q --trace-children=yes --child-silent-after-fork=no --vgdb=no \
		--leak-check=no --error-exitcode=99 --log-file="$T/vg/%p.log" \
		"$GREYGATED" -d -f "$CONF" >"$DAEMON_LOG" 2>&1 3>&- </dev/null &
	DAEMON_PID=$!
	DAEMON_STOPPED=
	wait_listening "$PORT" 60 || fail "not listening under valgrind: $(cat "$DAEMON_LOG")"
	TLSCLIENT_TIMEOUT=60 run $TLSCLIENT smtplib "$PORT" alice@example.com bob@example.org "$T/message"
	expect_line "data: 250 2.0.0 Ok: queued as 0001"
	TLSCLIENT_TIMEOUT=60 run $TLSCLIENT garbage "$PORT"
	expect_line "-- closed"
	TLSCLIENT_TIMEOUT=60 run $TLSCLIENT inject "$PORT"
	expect_line "-- closed"
	stop_daemon 60
	expect_same_bytes "$T/message" "$SINK_DIR/0001.msg"
	local f
	for f in "$T"/vg/*.log; do
		[ ! -s "$f" ] || fail "valgrind: $(cat "$f")"
	done
}

@test "chrooted workers as greygate: STARTTLS works with nothing of OpenSSL in the chroot" {
	[ "$(id -u)" -eq 0 ] || skip "chroot needs root"
	local root=$T/chroot
	mkdir -p "$root/spool"
	chmod 755 "$root"
	chown greygate:greygate "$root/spool"
	tls_conf "chroot = \"$root\"" "spool_dir = \"$root/spool\""
	start_sink
	start_daemon
	run $TLSCLIENT smtplib "$PORT" alice@example.com bob@example.org "$T/message"
	expect_line "data: 250 2.0.0 Ok: queued as 0001"
	expect_same_bytes "$T/message" "$SINK_DIR/0001.msg"
	[ "$(ls -A "$root")" = spool ] || fail "the chroot holds: $(ls -A "$root")"
}
