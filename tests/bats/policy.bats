#!/usr/bin/env bats
# The policy process (SPEC 4, 5) end to end: greylisting through it, its
# death and restart, greylist_log, and greygatectl on the same store.
# Clients come from 127.0.0.2 and neighbours, outside allowed_senders.

load common

GREY="451 4.7.1 Greylisted, please try again later"
UNAVAIL="451 4.7.1 Greylisting unavailable, try again later"

grey_conf() {
	write_conf 'policy = "greylist"' 'allowed_senders = {"127.0.0.1/32"}' \
		'allowed_domains = {"example.org"}' "$@"
}

# send FROM-ADDR SENDER - one message to bob@example.org from address FROM
send() {
	smtp_from "$1" "EHLO client.example" "MAIL FROM:<$2>" \
		"RCPT TO:<bob@example.org>" "DATA" "+Subject: grey" "+" "+body" "." QUIT
}

ctl() {
	"$top_builddir/src/greygatectl" -f "$CONF" "$@"
}

policy_pid() {
	local p
	for p in $(descendants "$DAEMON_PID"); do
		if grep -q 'policy' "/proc/$p/cmdline" 2>/dev/null; then
			echo "$p"
		fi
	done
	return 0
}

@test "first try 451, early retry 451, retry after the delay delivered" {
	start_sink
	# the early retry must come within the delay even on a loaded machine
	grey_conf "$(greylist_block 'delay = 4')"
	start_daemon
	local t0
	t0=$(now)
	run send 127.0.0.2 alice@example.com
	expect_line "S: $GREY"
	expect_nothing_upstream
	grep -q 'action=greylist reason=new' "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
	run send 127.0.0.2 alice@example.com
	elapsed_between "$t0" "$(now)" 0 4 || skip "the machine is too slow for the early retry"
	expect_line "S: $GREY"
	expect_delivered 0
	sleep 4.2
	run send 127.0.0.2 alice@example.com
	expect_line "S: 250 2.1.5 OK"
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
	grep -q 'client=127.0.0.2 .*action=pass reason=delivered' "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
}

@test "a neighbour in the same /24 passes; another /24 and a normalised sender" {
	start_sink
	grey_conf "$(greylist_block 'delay = 1')"
	start_daemon
	run send 127.0.0.2 alice+tag@Example.COM
	expect_line "S: $GREY"
	sleep 1.2
	run send 127.0.0.77 alice@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	run send 127.0.1.5 alice@example.com
	expect_line "S: $GREY"
	expect_delivered 1
}

@test "whitelists and allowed_senders pass on the first try; relay control stays" {
	start_sink
	grey_conf 'whitelist_clients = {"127.0.3.0/24"}' \
		'whitelist_senders = {"@friend.example"}' \
		'whitelisted_triples = {"127.0.4.1 carol@example.com bob@example.org"}'
	start_daemon
	run send 127.0.3.9 alice@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	run send 127.0.0.2 dave@friend.example
	expect_line "S: 250 2.0.0 Ok: queued as 0002"
	run send 127.0.4.1 carol@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0003"
	run send 127.0.0.1 alice@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0004"
	run smtp_from 127.0.3.9 "EHLO client.example" "MAIL FROM:<a@example.com>" "RCPT TO:<x@elsewhere.example>" QUIT
	expect_line "S: 550 5.7.1 Relaying denied"
	expect_delivered 4
}

@test "routing operators: refused from a client that may not relay, kept for allowed_senders" {
	start_sink
	grey_conf 'policy = "accept"' 'allowed_senders = {"127.0.0.1/32"}'
	start_daemon
	local r
	for r in 'victim%external.example@example.org' 'external.example!victim@example.org' \
		'"victim@external.example"@example.org' '@a.example,@b.example:victim@example.org' \
		'@relay.example:victim@example.org'; do
		run smtp_from 127.0.0.2 "EHLO client.example" "MAIL FROM:<a@example.com>" "RCPT TO:<$r>" QUIT
		expect_line "S: 550 5.7.1 Relaying denied"
		grep -Fq "to=<" "$DAEMON_LOG" || fail "no log line"
	done
	grep -c 'action=relay-denied reason=relay' "$DAEMON_LOG" | grep -qx 5 ||
		fail "expected 5 relay-denied lines: $(cat "$DAEMON_LOG")"
	# a plain local part and postmaster still pass from outside
	run smtp_from 127.0.0.2 "EHLO client.example" "MAIL FROM:<a@example.com>" \
		"RCPT TO:<bob@example.org>" "RCPT TO:<postmaster>" "RCPT TO:<b.o-b+x@example.org>" QUIT
	refute_line "S: 550 5.7.1 Relaying denied"
	expect_nothing_upstream
	# allowed_senders keep what they had: accepted and replayed
	for r in 'victim%external.example@example.org' 'external.example!victim@example.org' \
		'"victim@external.example"@example.org'; do
		run smtp_from 127.0.0.1 "EHLO client.example" "MAIL FROM:<a@example.com>" "RCPT TO:<$r>" \
			DATA "+x" "." QUIT
		expect_line "S: 250 2.1.5 OK"
	done
	run smtp_from 127.0.0.1 "EHLO client.example" "MAIL FROM:<a@example.com>" \
		"RCPT TO:<@a.example,@b.example:victim@example.org>" DATA "+x" "." QUIT
	expect_line "S: 250 2.1.5 OK"
	expect_delivered 4
	expect_sink_env 4 "EHLO client.example" "MAIL FROM:<a@example.com>" "RCPT TO:<victim@example.org>"
}

@test "auto_whitelist: after 2 passed triplets the network passes at once" {
	start_sink
	grey_conf "$(greylist_block 'delay = 1' 'auto_whitelist = 2')"
	start_daemon
	run send 127.0.0.2 a1@example.com
	run send 127.0.0.2 a2@example.com
	sleep 1.2
	run send 127.0.0.2 a1@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	run send 127.0.0.2 a2@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0002"
	run send 127.0.0.3 newcomer@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0003"
	run ctl list
	[[ "$output" == *"CLIENT	127.0.0.0/24"* ]] || fail "$output"
}

@test "the null sender is decided at DATA" {
	start_sink
	grey_conf "$(greylist_block 'delay = 1')"
	start_daemon
	run send 127.0.0.2 ""
	expect_line "S: 250 2.1.5 OK"
	expect_line "S: $GREY"
	refute_line "S: 354 End data with <CR><LF>.<CR><LF>"
	grep -q 'reason=null-sender' "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
	sleep 1.2
	run send 127.0.0.2 ""
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
}

@test "a retry served by another worker passes; the store survives a restart" {
	start_sink
	grey_conf "$(greylist_block 'delay = 1')" 'max_sessions_per_worker = 1'
	start_daemon
	run send 127.0.0.2 alice@example.com
	expect_line "S: $GREY"
	sleep 1.2
	run send 127.0.0.2 alice@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	kill -TERM "$DAEMON_PID"
	wait_daemon_exit 10
	start_daemon
	run send 127.0.0.2 alice@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0002"
}

@test "policy process killed: 451 4.7.1 while it is down, then recovered" {
	start_sink
	grey_conf "$(greylist_block 'delay = 1')"
	start_daemon
	run send 127.0.0.2 alice@example.com
	sleep 1.2
	local pp
	pp=$(policy_pid)
	[ -n "$pp" ] || fail "no policy process"
	kill -STOP "$pp"
	kill -KILL "$pp"
	run send 127.0.0.2 alice@example.com
	expect_line "S: $UNAVAIL"
	wait_for_grep "policy process $pp died on signal 9" "$DAEMON_LOG" 5 || fail "$(cat "$DAEMON_LOG")"
	local i
	for ((i = 0; i < 30; i++)); do
		[ -n "$(policy_pid)" ] && break
		sleep 0.2
	done
	[ -n "$(policy_pid)" ] || fail "the policy process was not restarted"
	# it answers once it has opened the store
	for ((i = 0; i < 20; i++)); do
		run send 127.0.0.2 alice@example.com
		[[ "$output" != *"S: $UNAVAIL"* ]] && break
		sleep 0.5
	done
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	daemon_alive
}

@test "policy process down with on_error = accept: recipients pass" {
	start_sink
	grey_conf "$(greylist_block 'on_error = "accept"')"
	start_daemon
	local pp
	pp=$(policy_pid)
	kill -STOP "$pp"
	run send 127.0.0.2 alice@example.com
	kill -KILL "$pp"
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
}

@test "a store that cannot be opened stops the start" {
	mkdir -p "$T/ro"
	touch "$T/ro/notadir"
	write_conf 'policy = "greylist"' "greylist { store = \"sqlite:$T/ro/notadir/x.db\" }"
	run "$GREYGATED" -d -f "$CONF"
	[ "$status" -eq 1 ] || fail "status $status: $output"
	[[ "$output" == *"fatal:"* ]] || fail "$output"
}

@test "greylist_log: one line a transaction, reopened on SIGUSR2" {
	start_sink
	# written by the policy process, as the daemon's user
	mkdir -p "$T/log"
	[ "$(id -u)" != 0 ] || chown greygate "$T/log"
	grey_conf "$(greylist_block 'delay = 1')" "greylist_log = \"$T/log/grey.log\""
	start_daemon
	run send 127.0.0.2 alice@example.com
	wait_for_grep 'action=greylist' "$T/log/grey.log" 5 || fail "$(cat "$T/log/grey.log" 2>&1)"
	mv "$T/log/grey.log" "$T/log/grey.log.1"
	kill -USR2 "$DAEMON_PID"
	# reopened: the policy process creates the file again
	wait_for_file "$T/log/grey.log" 10 || fail "greylist_log not reopened on SIGUSR2"
	# past the delay
	sleep 1.2
	run send 127.0.0.2 alice@example.com
	wait_for_grep 'action=pass' "$T/log/grey.log" 5 || fail "$(cat "$T/log/grey.log" 2>&1)"
	refute_grep 'action=pass' "$T/log/grey.log.1"
}

@test "greygatectl: a real session in list, then add, check, delete, expire, stats" {
	start_sink
	grey_conf "$(greylist_block 'delay = 3')"
	start_daemon
	run send 127.0.0.2 Alice@Example.com
	run ctl list
	[[ "$output" == "GREY	127.0.0.0/24	alice@example.com	bob@example.org	"*"	0	"* ]] || fail "$output"
	run ctl check 127.0.0.2 alice@example.com bob@example.org
	[ "$output" = "greylist	$GREY" ] || fail "$output"
	sleep 3.2
	run send 127.0.0.2 alice@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	run ctl list
	[[ "$output" == "WHITE	127.0.0.0/24	alice@example.com	bob@example.org	"*"	1	"* ]] || fail "$output"
	run ctl add 127.0.9.1 carol@example.com bob@example.org
	[ "$output" = "added	127.0.9.0/24	carol@example.com	bob@example.org" ] || fail "$output"
	run ctl check 127.0.9.1 carol@example.com bob@example.org
	[ "$output" = "pass	250 2.1.5 OK" ] || fail "$output"
	run send 127.0.9.1 carol@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0002"
	run ctl stats
	[[ "$output" == *"white	2"* ]] || fail "$output"
	run ctl delete 127.0.9.1 carol@example.com bob@example.org
	[ "$status" -eq 0 ] || fail "$output"
	run ctl delete 127.0.9.1 carol@example.com bob@example.org
	[ "$status" -eq 1 ] || fail "deleted twice: $output"
	run ctl check 127.0.9.1 carol@example.com bob@example.org
	[ "$output" = "greylist	$GREY" ] || fail "$output"
	run ctl expire
	[ "$output" = "expired	0" ] || fail "$output"
	run ctl check 127.0.0.1 x@example.com bob@example.org
	[ "$output" = "whitelist	250 2.1.5 OK" ] || fail "$output"
	run ctl check 127.0.0.2 x@example.com y@elsewhere.example
	[[ "$output" == "relay-denied	550 5.7.1 Relaying denied" ]] || fail "$output"
	run ctl bogus
	[ "$status" -eq 64 ] || fail "status $status"
	run ctl check 127.0.0.2 only-two@example.com
	[ "$status" -eq 64 ] || fail "status $status"
}

@test "greygatectl expire removes what expired" {
	grey_conf "$(greylist_block 'delay = 1' 'retry_window = 2')"
	start_sink
	start_daemon
	run send 127.0.0.2 alice@example.com
	expect_line "S: $GREY"
	# with the daemon gone, only greygatectl can expire it
	stop_daemon
	run ctl list
	[[ "$output" == "GREY	127.0.0.0/24	alice@example.com	"* ]] || fail "$output"
	sleep 3.2
	run ctl expire
	[ "$output" = "expired	1" ] || fail "$output"
	run ctl list
	[ -z "$output" ] || fail "$output"
}

@test "the policy process deletes expired entries by itself" {
	grey_conf "$(greylist_block 'delay = 1' 'retry_window = 2')"
	start_sink
	start_daemon
	run send 127.0.0.2 alice@example.com
	expect_line "S: $GREY"
	run ctl list
	[[ "$output" == "GREY	127.0.0.0/24	alice@example.com	"* ]] || fail "$output"
	local i
	for ((i = 0; i < 30; i++)); do
		run ctl list
		[ -z "$output" ] && break
		sleep 0.2
	done
	[ -z "$output" ] || fail "still listed 6 s after it expired: $output"
	daemon_alive
}

@test "kill -9 of the policy process in the middle of writes: the store opens and answers" {
	start_sink
	grey_conf "$(greylist_block 'delay = 1')" 'max_connections_per_ip = 0'
	start_daemon
	local pp i j steps
	pp=$(policy_pid)
	[ -n "$pp" ] || fail "no policy process"
	# eight clients, each pipelining 90 first-sight recipients: 720 writes
	for ((i = 1; i <= 8; i++)); do
		steps=("EHLO client.example" "+MAIL FROM:<sender$i@example.com>")
		for ((j = 1; j <= 90; j++)); do
			steps+=("+RCPT TO:<r$i.$j@example.org>")
		done
		steps+=('!flush' '!read 91' QUIT)
		SMTP_SOURCE=127.0.$i.2 python3 -c "$SMTP_CLIENT_FROM_PY" "$PORT" "${steps[@]}" \
			>"$T/c$i.out" 2>&1 3>&- </dev/null &
		BG_PIDS+=($!)
	done
	# kill it once it has written some of them
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c "$GREY" "$T"/c*.out 2>/dev/null | awk -F: '{ n += $2 } END { print n + 0 }')" -ge 50 ] && break
		sleep 0.05
	done
	kill -KILL "$pp"
	local p
	for p in "${BG_PIDS[@]}"; do
		wait "$p" || true
	done
	# every recipient got an answer: greylisted, or the policy outage
	local grey=0 unavail=0 n
	for ((i = 1; i <= 8; i++)); do
		n=$(grep -c "^S: $GREY" "$T/c$i.out" || true)
		grey=$((grey + n))
		n=$(grep -c "^S: $UNAVAIL" "$T/c$i.out" || true)
		unavail=$((unavail + n))
		n=$(grep -c "^S: 451 4.7.1 " "$T/c$i.out" || true)
		[ "$n" -eq 90 ] || fail "client $i: $n of 90 RCPTs answered 451 4.7.1: $(cat "$T/c$i.out")"
	done
	# the kill came in the middle: some recipients were decided, some not
	[ "$grey" -gt 0 ] && [ "$unavail" -gt 0 ] || fail "greylisted $grey, unavailable $unavail"
	echo "# greylisted $grey, unavailable $unavail" >&3
	wait_for_grep "policy process $pp died on signal 9" "$DAEMON_LOG" 5 || fail "$(cat "$DAEMON_LOG")"
	# the restarted policy process opens the store and answers from it
	for ((i = 0; i < 20; i++)); do
		run send 127.0.0.2 alice@example.com
		[[ "$output" == *"S: $GREY"* ]] && break
		sleep 0.5
	done
	expect_line "S: $GREY"
	# greygatectl reads the store: what was committed before the kill
	run ctl list
	[ "$status" -eq 0 ] || fail "list: $output"
	n=$(grep -c '^GREY	127\.0\.[1-8]\.0/24	sender' <<<"$output" || true)
	[ "$n" -ge 1 ] && [ "$n" -le 720 ] || fail "$n entries of the killed run in: $output"
	if command -v sqlite3 >/dev/null 2>&1; then
		run sqlite3 "$STORE" 'PRAGMA integrity_check'
		[ "$output" = ok ] || fail "integrity_check: $output"
	fi
	daemon_alive
}
