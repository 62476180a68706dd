#!/usr/bin/env bats
# Several MX hosts, one greylist (issue 7): greygated instances sharing a
# Redis store, a Redis outage and its recovery, greygatectl on Redis.
# Each test starts its own redis-server on a free loopback port in $T
# (nothing saved) and stops it in teardown.  Clients come from 127.0.0.2
# and neighbours, outside allowed_senders.

load common

GREY="451 4.7.1 Greylisted, please try again later"
UNAVAIL="451 4.7.1 Greylisting unavailable, try again later"

setup() {
	common_setup
	REDIS_BIN=${REDIS_SERVER:-}
	[ -n "$REDIS_BIN" ] && [ "$REDIS_BIN" != no ] || REDIS_BIN=$(command -v redis-server || true)
	[ -n "$REDIS_BIN" ] && [ -x "$REDIS_BIN" ] ||
		skip "no redis-server (install Debian's redis-server)"
	read -r REDIS_PORT PORT_B <<<"$(free_ports 2)"
	REDIS_PID=
	B_PID=
	# is the Redis store built in?  the config check says so
	write_conf 'policy = "greylist"' \
		"greylist { store = \"redis://127.0.0.1:$REDIS_PORT/0\" }"
	run "$top_builddir/src/greygatectl" -f "$CONF" expire
	if [[ "$output" == *"built without the Redis store"* ]]; then
		skip "greygate was built without the Redis store (hiredis)"
	fi
}

teardown() {
	if [ -n "$B_PID" ]; then
		kill -TERM "$B_PID" 2>/dev/null || true
		wait "$B_PID" 2>/dev/null || true
		if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
			echo "# ---- instance B log"
			sed 's/^/# /' "$T/b.log" 2>/dev/null || true
		fi
	fi
	common_teardown
	stop_redis
}

# start_redis - redis-server on $REDIS_PORT, its files in $T/redis
start_redis() {
	mkdir -p "$T/redis"
	"$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
		--appendonly no --daemonize no --dir "$T/redis" \
		>"$T/redis/log" 2>&1 </dev/null &
	REDIS_PID=$!
	wait_listening "$REDIS_PORT" 10 && return 0
	cat "$T/redis/log"
	fail "redis-server is not listening on $REDIS_PORT"
}

stop_redis() {
	[ -n "$REDIS_PID" ] || return 0
	kill -TERM "$REDIS_PID" 2>/dev/null || true
	wait "$REDIS_PID" 2>/dev/null || true
	REDIS_PID=
}

# redis_conf [-o FILE] [LINE...] - greylisting through the test's Redis
redis_conf() {
	local out=()
	if [ "${1:-}" = -o ]; then
		out=(-o "$2")
		shift 2
	fi
	write_conf "${out[@]}" 'policy = "greylist"' \
		'allowed_senders = {"127.0.0.1/32"}' \
		'allowed_domains = {"example.org"}' \
		"$(printf 'greylist {\n\tstore = "redis://127.0.0.1:%s/0"\n\tdelay = 2\n\tauto_whitelist = 2\n}' "$REDIS_PORT")" \
		"$@"
}

# start_b - a second greygated ("MX B") on $PORT_B with the same store
start_b() {
	mkdir -p "$T/spool_b"
	[ "$(id -u)" != 0 ] || chown greygate:greygate "$T/spool_b"
	redis_conf -o "$T/b.conf" "port = $PORT_B" \
		"pidfile = \"$T/run/b.pid\"" "spool_dir = \"$T/spool_b\"" \
		'serverid = "mx-b"'
	"$GREYGATED" -d -f "$T/b.conf" >"$T/b.log" 2>&1 3>&- </dev/null &
	B_PID=$!
	wait_listening "$PORT_B" 10 && return 0
	cat "$T/b.log"
	fail "instance B is not listening on $PORT_B"
}

# send PORT FROM-ADDR SENDER - one message to bob@example.org
send() {
	SMTP_PORT=$1 smtp_from "$2" "EHLO client.example" "MAIL FROM:<$3>" \
		"RCPT TO:<bob@example.org>" "DATA" "+Subject: grey" "+" "+body" "." QUIT
}

ctl() {
	"$top_builddir/src/greygatectl" -f "$CONF" "$@"
}

@test "two instances share one Redis: deferred at A, passed at B, auto_whitelist counts both" {
	start_redis
	start_sink
	redis_conf
	start_daemon
	start_b
	# first attempt at MX A
	run send "$PORT" 127.0.0.2 alice@example.com
	echo "$output" | sed 's/^/# A: /' >&3
	expect_line "S: $GREY"
	# the early retry at MX B knows the first attempt: still too early
	run send "$PORT_B" 127.0.0.2 alice@example.com
	expect_line "S: $GREY"
	expect_delivered 0
	sleep 2.2
	# the retry at MX B after the delay passes
	run send "$PORT_B" 127.0.0.2 alice@example.com
	echo "$output" | sed 's/^/# B: /' >&3
	expect_line "S: 250 2.1.5 OK"
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
	grep -q 'client=127.0.0.2 .*action=greylist' "$DAEMON_LOG" || fail "A: $(cat "$DAEMON_LOG")"
	grep -q 'client=127.0.0.2 .*action=pass' "$T/b.log" || fail "B: $(cat "$T/b.log")"
	grep 'client=127.0.0.2' "$DAEMON_LOG" | sed 's/^/# A log: /' >&3
	grep 'client=127.0.0.2' "$T/b.log" | sed 's/^/# B log: /' >&3
	# a second triplet of the /24: first at B, retried at A
	run send "$PORT_B" 127.0.0.3 carol@example.com
	expect_line "S: $GREY"
	sleep 2.2
	run send "$PORT" 127.0.0.3 carol@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0002"
	# two passed triplets, one at each host: the network is whitelisted
	run send "$PORT" 127.0.0.4 dave@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0003"
	run send "$PORT_B" 127.0.0.5 erin@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0004"
	run ctl list
	[ "$status" -eq 0 ] || fail "$output"
	[[ "$output" == *"CLIENT	127.0.0.0/24	-	-	"* ]] || fail "$output"
	echo "$output" | sed 's/^/# list: /' >&3
}

@test "Redis stopped mid-run: 451 4.7.1, one log line, then recovery without a restart" {
	start_redis
	start_sink
	redis_conf
	start_daemon
	run send "$PORT" 127.0.0.2 alice@example.com
	expect_line "S: $GREY"
	stop_redis
	local i
	for i in 1 2 3 4; do
		run send "$PORT" 127.0.0.2 alice@example.com
		expect_line "S: $UNAVAIL"
	done
	daemon_alive || fail "greygated died"
	[ "$(grep -c 'greylist store failing' "$DAEMON_LOG")" -eq 1 ] ||
		fail "not one 'store failing' line: $(cat "$DAEMON_LOG")"
	grep 'greylist store failing' "$DAEMON_LOG" | sed 's/^/# log: /' >&3
	start_redis
	# the back-off is at most 5 s
	for ((i = 0; i < 40; i++)); do
		run send "$PORT" 127.0.0.2 alice@example.com
		[[ "$output" != *"S: $UNAVAIL"* ]] && break
		sleep 0.25
	done
	# a new server, an empty store: the triplet is new again
	expect_line "S: $GREY"
	wait_for_grep 'greylist store recovered' "$DAEMON_LOG" 5 || fail "$(cat "$DAEMON_LOG")"
	grep 'greylist store recovered' "$DAEMON_LOG" | sed 's/^/# log: /' >&3
	[ "$(grep -c 'greylist store failing' "$DAEMON_LOG")" -eq 1 ] || fail "$(cat "$DAEMON_LOG")"
	sleep 2.2
	run send "$PORT" 127.0.0.2 alice@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	daemon_alive
}

@test "Redis down with on_error = accept: recipients pass" {
	start_sink
	redis_conf "$(printf 'greylist {\n\tstore = "redis://127.0.0.1:%s/0"\n\ton_error = "accept"\n}' "$REDIS_PORT")"
	start_daemon
	run send "$PORT" 127.0.0.2 alice@example.com
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	grep -q 'greylist store failing: redis 127.0.0.1:' "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
}

@test "greygatectl on Redis: add, list, check, stats, delete, expire" {
	start_redis
	redis_conf
	run ctl add 192.0.2.7 alice@example.com bob@example.org
	[ "$status" -eq 0 ] && [ "$output" = "added	192.0.2.0/24	alice@example.com	bob@example.org" ] || fail "$output"
	run ctl add 198.51.100.9
	[ "$status" -eq 0 ] || fail "$output"
	run ctl check 192.0.2.99 alice@example.com bob@example.org
	[ "$output" = "pass	250 2.1.5 OK" ] || fail "$output"
	run ctl check 192.0.2.99 carol@example.com bob@example.org
	[ "$output" = "greylist	451 4.7.1 Greylisted, please try again later" ] || fail "$output"
	run ctl check 198.51.100.1 carol@example.com bob@example.org
	[ "$output" = "whitelist	250 2.1.5 OK" ] || fail "$output"
	run ctl list
	[ "${#lines[@]}" -eq 2 ] || fail "$output"
	[[ "${lines[0]}" == "WHITE	192.0.2.0/24	alice@example.com	bob@example.org	"*"	1	"* ]] || fail "$output"
	[[ "${lines[1]}" == "CLIENT	198.51.100.0/24	-	-	"* ]] || fail "$output"
	run ctl stats
	[ "$output" = "$(printf 'grey\t0\nwhite\t1\nclients\t1\nreplies\t0')" ] || fail "$output"
	run ctl expire
	[ "$status" -eq 0 ] && [ "$output" = "expired	0" ] || fail "$output"
	run ctl delete 192.0.2.7 alice@example.com bob@example.org
	[ "$status" -eq 0 ] || fail "$output"
	run ctl delete 192.0.2.7 alice@example.com bob@example.org
	[ "$status" -eq 1 ] && [[ "$output" == *"no such entry"* ]] || fail "$output"
	run ctl delete 198.51.100.9
	[ "$status" -eq 0 ] || fail "$output"
	run ctl stats
	[ "$output" = "$(printf 'grey\t0\nwhite\t0\nclients\t0\nreplies\t0')" ] || fail "$output"
	# keys under another prefix are someone else's
	redis_conf "$(printf 'greylist {\n\tstore = "redis://127.0.0.1:%s/0"\n\tredis_prefix = "other:"\n}' "$REDIS_PORT")"
	run ctl add 192.0.2.7
	run ctl list
	[ "${#lines[@]}" -eq 1 ] || fail "$output"
	redis_conf
	run ctl list
	[ "${#lines[@]}" -eq 0 ] || fail "$output"
}

@test "greygatectl with Redis unreachable: an error, exit 1" {
	redis_conf
	run ctl stats
	[ "$status" -eq 1 ] || fail "$output"
	[[ "$output" == *"redis 127.0.0.1:$REDIS_PORT/0"*"refused"* ]] || fail "$output"
}

@test "a redis store spec with credentials or a bad port is refused at config check" {
	write_conf 'policy = "greylist"' 'greylist { store = "redis://user:pw@127.0.0.1:6379/0" }'
	run "$GREYGATED" -t -f "$CONF"
	[ "$status" -ne 0 ] || fail "$output"
	[[ "$output" == *"redis_username and redis_password"* ]] || fail "$output"
	[[ "$output" != *"pw@"* ]] || fail "the spec was repeated: $output"
	write_conf 'policy = "greylist"' 'greylist { store = "redis://127.0.0.1:0/0" }'
	run "$GREYGATED" -t -f "$CONF"
	[ "$status" -ne 0 ] && [[ "$output" == *"port must be 1-65535"* ]] || fail "$output"
}
