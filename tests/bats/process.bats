#!/usr/bin/env bats
# The program: options, pidfile, signals, worker pool, privileges and
# logging (SPEC 1, 5, 6, 7).

bats_require_minimum_version 1.5.0

load common

version() {
	sed -n 's/^AC_INIT(\[greygate\], *\[\([^]]*\)\].*/\1/p' "$top_srcdir/configure.ac"
}

@test "-V prints the version" {
	run --separate-stderr "$GREYGATED" -V
	expect_status 0
	[ "$output" = "greygated $(version)" ] || fail "got: $output"
}

@test "-h prints the usage on stdout and exits 0" {
	run --separate-stderr "$GREYGATED" -h
	expect_status 0
	printf '%s\n' "$output" | grep -qi usage || fail "no usage: $output"
	printf '%s\n' "$output" | grep -q -- '-f' || fail "usage does not mention -f: $output"
}

@test "an unknown option prints the usage on stderr and exits 64" {
	run --separate-stderr "$GREYGATED" -Z
	expect_status 64
	[ -z "$output" ] || fail "stdout: $output"
	printf '%s\n' "$stderr" | grep -qi usage || fail "no usage on stderr: $stderr"
}

@test "start: log lines, pidfile with the master's pid, its directory created" {
	write_conf "pidfile = \"$T/newdir/greygated.pid\""
	start_daemon
	wait_for_file "$T/newdir/greygated.pid" 5
	[ "$(cat "$T/newdir/greygated.pid")" = "$DAEMON_PID" ]
	grep -q "greygated $(version) starting" "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
	grep -q "listening on 127.0.0.1 port $PORT" "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
	stop_daemon
	[ ! -e "$T/newdir/greygated.pid" ]
}

@test "start: spool_dir and the store's directory created with their missing parents" {
	write_conf "spool_dir = \"$T/var/spool/greygate\"" 'policy = "greylist"' \
		"greylist { store = \"sqlite:$T/var/lib/greygate/greylist.db\" }"
	start_daemon
	local want=
	[ "$(id -u)" -ne 0 ] || want=greygate
	[ "$(stat -c %a "$T/var/spool/greygate")" = 700 ] ||
		fail "spool_dir mode $(stat -c %a "$T/var/spool/greygate")"
	[ "$(stat -c %a "$T/var/lib/greygate")" = 750 ] ||
		fail "store directory mode $(stat -c %a "$T/var/lib/greygate")"
	[ "$(stat -c %a "$T/var/spool")" = 755 ] && [ "$(stat -c %a "$T/var/lib")" = 755 ] ||
		fail "parents: $(stat -c '%n %a' "$T/var/spool" "$T/var/lib")"
	if [ -n "$want" ]; then
		# the spool is the workers', the store's directory the policy's
		[ "$(stat -c %U "$T/var/spool/greygate")" = greygate-worker ] &&
			[ "$(stat -c %U "$T/var/lib/greygate")" = greygate ] &&
			[ "$(stat -c %U "$T/var/spool")" = root ] ||
			fail "owners: $(stat -c '%n %U' "$T/var/spool/greygate" "$T/var/lib/greygate" "$T/var/spool")"
	fi
	run smtp QUIT
	expect_line "S: 221 2.0.0 gw.test closing connection"
	stop_daemon
}

@test "start: a spool_dir that cannot be created is one clear line" {
	touch "$T/file"
	write_conf "spool_dir = \"$T/file/spool\""
	run "$GREYGATED" -d -f "$CONF"
	[ "$status" -eq 1 ] || fail "status $status: $output"
	[ "$output" = "greygated: fatal: cannot create $T/file/spool: Not a directory" ] ||
		grep -qx ".*fatal: cannot create $T/file/spool: Not a directory" <<<"$output" ||
		fail "$output"
}

@test "SIGTERM when idle: exit 0, pidfile removed, no process left" {
	start_daemon
	wait_for_file "$PIDFILE" 5
	local kids i
	for ((i = 0; i < 100; i++)); do
		kids=$(descendants "$DAEMON_PID")
		[ -z "$kids" ] || break
		sleep 0.1
	done
	[ -n "$kids" ] || fail "the master has no children after 10 s"
	stop_daemon
	[ ! -e "$PIDFILE" ] || fail "pidfile left behind"
	grep -q "shutting down" "$DAEMON_LOG"
	wait_gone $kids
}

@test "SIGINT stops the daemon like SIGTERM" {
	start_daemon
	wait_for_file "$PIDFILE" 5
	kill -INT "$DAEMON_PID"
	wait_daemon_exit 10
	[ ! -e "$PIDFILE" ]
}

@test "SIGTERM with a session in flight: the session completes, exit 0" {
	start_sink
	# held sessions outlast the look on a loaded machine
	write_conf "inactivity_timeout = 120"
	start_daemon
	smtp_bg inflight "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>" "!wait $T/go" "DATA" "+Subject: in flight" "+" "+body" "." QUIT '!eof'
	wait_for_grep '^S: 250 2.1.5' "$T/inflight.out" 5 || fail "$(cat "$T/inflight.out")"
	kill -TERM "$DAEMON_PID"
	# the rest of the session only once the daemon is shutting down
	wait_for_grep 'shutting down' "$DAEMON_LOG" 10 || fail "no 'shutting down' in the log"
	release "$T/go"
	wait_bg inflight
	wait_daemon_exit 10
	[ ! -e "$PIDFILE" ] || fail "pidfile left behind"
	run cat "$T/inflight.out"
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_line "S: 221 2.0.0 gw.test closing connection"
	expect_delivered 1
}

@test "SIGTERM: new connections are not served while sessions finish" {
	start_sink
	write_conf "shutdown_timeout = 5" "inactivity_timeout = 120"
	start_daemon
	smtp_bg inflight "EHLO client.example" "!wait $T/go" QUIT
	wait_for_grep '^S: 250 ENHANCEDSTATUSCODES' "$T/inflight.out" 5
	kill -TERM "$DAEMON_PID"
	# the listener goes while the session is still open
	local i
	for ((i = 0; i < 100; i++)); do
		port_listening "$PORT" || break
		sleep 0.1
	done
	! port_listening "$PORT" || fail "still listening 10 s after SIGTERM"
	SMTP_TIMEOUT=2 run smtp QUIT
	[ "$output" = "-- connection refused" ] || [ "$output" = "-- closed" ] ||
		fail "a connection during shutdown got: $output"
	daemon_alive || fail "the daemon did not wait for the open session"
	release "$T/go"
	wait_bg inflight
	grep -q '^S: 221 ' "$T/inflight.out" || fail "the open session: $(cat "$T/inflight.out")"
	wait_daemon_exit 10
}

@test "SIGTERM: a session still open after shutdown_timeout gets 421 4.3.2" {
	write_conf "shutdown_timeout = 2" "inactivity_timeout = 30"
	start_daemon
	smtp_bg idle "EHLO client.example" '!eof'
	wait_for_grep '^S: 250 ENHANCEDSTATUSCODES' "$T/idle.out" 5
	local t0 t1
	t0=$(now)
	kill -TERM "$DAEMON_PID"
	wait_daemon_exit 10
	t1=$(now)
	wait_bg idle
	run cat "$T/idle.out"
	[ "${lines[${#lines[@]} - 2]}" = "S: 421 4.3.2 Service shutting down" ] || fail "$output"
	[ "${lines[${#lines[@]} - 1]}" = "-- closed" ] || fail "$output"
	# the grace period is shutdown_timeout, give or take the master's
	# one-second clock
	elapsed_between "$t0" "$t1" 0.9 6
}

@test "SIGHUP with a good config: new setting used, a session across the reload completes" {
	start_sink
	# held sessions outlast the look on a loaded machine
	write_conf "inactivity_timeout = 120"
	start_daemon
	smtp_bg old "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>" "!wait $T/go" "DATA" "+Subject: across reload" "+" "+body" "." QUIT '!eof'
	wait_for_grep '^S: 250 2.1.5' "$T/old.out" 5
	write_conf 'serverid = "reloaded"'
	kill -HUP "$DAEMON_PID"
	wait_for_grep 'reloaded configuration' "$DAEMON_LOG" 5 || fail "no 'reloaded configuration' in the log"
	local i
	for ((i = 0; i < 30; i++)); do
		run smtp QUIT
		[ "${lines[0]}" = "S: 220 gw.test ESMTP reloaded" ] && break
		sleep 0.1
	done
	[ "${lines[0]}" = "S: 220 gw.test ESMTP reloaded" ] || fail "greeting after reload: ${lines[0]}"
	release "$T/go"
	wait_bg old
	run cat "$T/old.out"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: across reload
C: 
C: body
C: .
S: 250 2.0.0 Ok: queued as 0001
C: QUIT
S: 221 2.0.0 gw.test closing connection
-- closed
EOF
	daemon_alive
}

@test "SIGHUP with a bad config: the old one stays, the log says why" {
	start_sink
	start_daemon
	write_conf 'serverid = "reloaded"' "port = 70000"
	kill -HUP "$DAEMON_PID"
	wait_for_grep "configuration error, keeping the old one: $CONF:[0-9]+: " "$DAEMON_LOG" 5 ||
		fail "log: $(cat "$DAEMON_LOG")"
	run simple_session
	[ "${lines[0]}" = "S: 220 gw.test ESMTP greygate" ] || fail "$output"
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	daemon_alive
}

@test "SIGUSR1 logs the counters" {
	start_daemon
	kill -USR1 "$DAEMON_PID"
	wait_for_grep 'sessions' "$DAEMON_LOG" 5 || fail "log: $(cat "$DAEMON_LOG")"
	grep 'sessions' "$DAEMON_LOG" | grep -q 'workers' || fail "log: $(cat "$DAEMON_LOG")"
	daemon_alive
}

@test "kill -9 of a worker: logged, replaced, and the daemon keeps serving" {
	start_sink
	# held sessions outlast the look on a loaded machine
	write_conf "inactivity_timeout = 120"
	start_daemon
	smtp_bg victim "EHLO client.example" "!wait $T/never" QUIT
	wait_for_grep '^S: 250 ENHANCEDSTATUSCODES' "$T/victim.out" 5
	local wpid before
	wpid=$(session_pids | head -1)
	[ -n "$wpid" ] || fail "no process holds the session"
	before=$(workers)
	kill -KILL "$wpid"
	wait_for_grep "worker $wpid died on signal 9" "$DAEMON_LOG" 5 || fail "log: $(cat "$DAEMON_LOG")"
	local i new=
	for ((i = 0; i < 50; i++)); do
		for p in $(workers); do
			grep -qx "$p" <<<"$before" || new=$p
		done
		[ -z "$new" ] || break
		sleep 0.1
	done
	[ -n "$new" ] ||
		fail "no new worker within 5 s of the kill (before: $(echo $before), after: $(echo $(workers)))"
	run simple_session
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	daemon_alive
}

@test "the master stays root, its children do not run as root (policy: user, workers: worker_user)" {
	[ "$(id -u)" -eq 0 ] || skip "not root"
	start_daemon
	local uid gid kids p i u
	grep -q "^Uid:[[:space:]]*0[[:space:]]" "/proc/$DAEMON_PID/status"
	# a child just forked is root until it drops: wait (10 s at most)
	# until none is, then look at each
	for ((i = 0; i < 100; i++)); do
		kids=$(workers)
		[ -n "$kids" ] || { sleep 0.1; continue; }
		for p in $kids; do
			grep -q "^Uid:[[:space:]]*0[[:space:]]" "/proc/$p/status" 2>/dev/null && break
			p=
		done
		[ -n "$p" ] || break
		sleep 0.1
	done
	kids=$(workers)
	[ -n "$kids" ] || fail "no children"
	for p in $kids; do
		# the policy process is user, the workers worker_user
		u=greygate-worker
		tr '\0' ' ' <"/proc/$p/cmdline" | grep -q policy && u=greygate
		uid=$(id -u $u)
		gid=$(id -g $u)
		awk -v u="$uid" '/^Uid:/ { exit !($2 == u && $3 == u && $4 == u && $5 == u) }' "/proc/$p/status" ||
			fail "child $p: $(grep '^Uid:' "/proc/$p/status")"
		awk -v g="$gid" '/^Gid:/ { exit !($2 == g && $3 == g && $4 == g && $5 == g) }' "/proc/$p/status" ||
			fail "child $p: $(grep '^Gid:' "/proc/$p/status")"
		! grep -Eq '^Groups:.*(^|[[:space:]])0([[:space:]]|$)' "/proc/$p/status" ||
			fail "child $p keeps group 0: $(grep '^Groups:' "/proc/$p/status")"
	done
}

@test "a worker serving a session does not run as root" {
	[ "$(id -u)" -eq 0 ] || skip "not root"
	# held sessions outlast the look on a loaded machine
	write_conf "inactivity_timeout = 120"
	start_daemon
	# the session stays open until the test has looked
	smtp_bg s "EHLO client.example" "!wait $T/go" QUIT
	wait_for_grep '^S: 250 ENHANCEDSTATUSCODES' "$T/s.out" 5 || fail "$(cat "$T/s.out")"
	local p
	p=$(session_pids | head -1)
	[ -n "$p" ] || fail "no process holds the session"
	awk '/^Uid:/ { exit !($2 != 0 && $3 != 0 && $4 != 0 && $5 != 0) }' "/proc/$p/status" ||
		fail "worker $p: $(grep '^Uid:' "/proc/$p/status")"
	release "$T/go"
	wait_bg s
	grep -q '^S: 221 ' "$T/s.out" || fail "$(cat "$T/s.out")"
}

@test "log: a delivered message gives one line with action=pass and upstream's reply" {
	start_sink
	start_daemon
	printf 'Subject: logged\r\n\r\nbody\r\n' >"$T/message"
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "!file $T/message" "." QUIT
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	wait_for_grep 'action=pass' "$DAEMON_LOG" 10 || true
	local line
	line=$(grep 'action=pass' "$DAEMON_LOG") || fail "no action=pass: $(cat "$DAEMON_LOG")"
	[ "$(wc -l <<<"$line")" -eq 1 ] || fail "more than one line: $line"
	local kv
	for kv in 'session=' ' client=127.0.0.1 ' ' helo=client.example ' ' from=<alice@example.com> ' \
		' to=<bob@example.org> ' ' reason=' ' upstream="250 2.0.0 Ok: queued as 0001"' \
		" size=$(stat -c %s "$T/message")"; do
		[[ "$line" == *"$kv"* ]] || fail "no '$kv' in: $line"
	done
}

@test "log: a relay-denied RCPT gives a line with action=relay-denied" {
	write_conf 'allowed_senders = {"10.0.0.0/8"}'
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" QUIT
	expect_line "S: 550 5.7.1 Relaying denied"
	wait_for_grep 'action=relay-denied' "$DAEMON_LOG" 10 || true
	local line
	line=$(grep 'action=relay-denied' "$DAEMON_LOG") || fail "no action=relay-denied: $(cat "$DAEMON_LOG")"
	[[ "$line" == *" client=127.0.0.1 "* ]] || fail "$line"
	[[ "$line" == *" to=<bob@example.org> "* ]] || fail "$line"
	[[ "$line" == *" from=<alice@example.com> "* ]] || fail "$line"
}

@test "max_sessions_per_worker = 1: workers are replaced, every session is served" {
	start_sink
	write_conf "max_sessions_per_worker = 1" "start_workers = 1" "min_spare_workers = 1" "max_spare_workers = 2"
	start_daemon
	local i
	for i in 1 2 3 4 5; do
		run simple_session
		expect_line "S: 250 2.0.0 Ok: queued as 000$i"
	done
	expect_delivered 5
}

@test "ten concurrent sessions are all delivered" {
	start_sink
	# held sessions outlast the look on a loaded machine
	write_conf "inactivity_timeout = 120"
	start_daemon
	local i
	for i in 0 1 2 3 4 5 6 7 8 9; do
		smtp_bg "c$i" "EHLO client$i.example" "MAIL FROM:<alice$i@example.com>" \
			"RCPT TO:<bob$i@example.org>" "!wait $T/go" "DATA" "+Subject: $i" "+" "+body $i" "." QUIT
	done
	# all ten open at once, then all go on
	for i in 0 1 2 3 4 5 6 7 8 9; do
		wait_for_grep '^S: 250 2.1.5' "$T/c$i.out" 20 || fail "session $i: $(cat "$T/c$i.out")"
	done
	release "$T/go"
	for i in 0 1 2 3 4 5 6 7 8 9; do
		wait_bg "c$i"
		grep -q '^S: 250 2.0.0 Ok: queued as ' "$T/c$i.out" || fail "session $i: $(cat "$T/c$i.out")"
	done
	expect_delivered 10
}
