#!/usr/bin/env bats
# A compromised worker (ARCHITECTURE.md, "Who writes what"): the helper
# tests/privsep/evil_worker takes a worker's own channel to the master
# (pidfd_getfd) or connects to the policy socket, becomes the workers'
# uid, and writes what an attacker who owns a worker could write.  The
# master and the policy process must survive, kill nothing they did not
# fork, log the abuse and go on serving.  Also here: kill -9 of the
# master, the store out of a worker's reach without a chroot, and
# max_connections_per_ip per IPv6 network.  Root only.

bats_require_minimum_version 1.5.0

load common

EVIL="$top_builddir/tests/privsep/evil_worker"

setup() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (CI runs as root)"
	common_setup
	[ -x "$EVIL" ] || skip "evil_worker is not built ($EVIL)"
}

teardown() {
	common_teardown
	if [ -n "${NETNS:-}" ]; then
		ip netns pids "$NETNS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
		ip netns del "$NETNS" 2>/dev/null || true
	fi
}

# alive PID - PID runs (a zombie does not)
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# policy_pid - the policy process among the master's children
policy_pid() {
	local p
	for p in $(workers); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q policy && echo "$p"
	done
	return 0
}

# idle_worker - one idle worker of the master
idle_worker() {
	local p
	for p in $(workers); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'worker: idle' &&
			{ echo "$p"; return 0; }
	done
	return 0
}

# wait_idle_worker - until there is one (5 s)
wait_idle_worker() {
	local i w
	for ((i = 0; i < 50; i++)); do
		w=$(idle_worker)
		[ -n "$w" ] && { echo "$w"; return 0; }
		sleep 0.1
	done
	return 1
}

# slot_of PID - the slot the master gave it ("worker PID started (slot N)")
slot_of() {
	sed -n "s/.*worker $1 started (slot \([0-9]*\)).*/\1/p" "$DAEMON_LOG" | tail -1
}

# gone PID [SECONDS] - until PID is no more (or a zombie), 5 s default
gone() {
	local i st
	for ((i = 0; i < ${2:-5} * 10; i++)); do
		st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
		[ "$st" = Z ] && return 0
		sleep 0.1
	done
	return 1
}

# policy_socket - the policy socket's name, "@greygated.MASTER.RANDOM"
policy_socket() {
	awk -v m="@greygated.$DAEMON_PID." 'index($NF, m) == 1 { print $NF }' /proc/net/unix | head -1
}

@test "compromised worker: nonsense on its channel kills only that worker; master and policy go on" {
	start_sink
	start_daemon -v
	local policy bystander kind w slot n=0
	policy=$(policy_pid)
	[ -n "$policy" ] || fail "no policy process"
	# a process the master did not fork, of another uid
	setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 600 &
	bystander=$!
	BG_PIDS+=("$bystander")

	# no writable shared memory left in a worker: the board is r--s
	w=$(wait_idle_worker) || fail "no idle worker"
	! awk '$2 ~ /^.w.s/' "/proc/$w/maps" | grep . ||
		fail "worker $w has a writable shared mapping"
	grep -q 'r--s.*greygate-board' "/proc/$w/maps" ||
		fail "worker $w: no read-only board: $(grep -- '-s ' "/proc/$w/maps")"

	for kind in garbage short long magic pid=1 pid=-1 "pid=$bystander" \
		slot=100000000 slot=-1 state=77 state=0 family sessions messages flags; do
		w=$(wait_idle_worker) || fail "no idle worker before $kind"
		slot=$(slot_of "$w")
		[ -n "$slot" ] || fail "no slot for worker $w in the log"
		run "$EVIL" chan "$w" "$DAEMON_PID" greygate-worker "$kind" "$slot"
		[ "$status" -eq 0 ] || fail "evil_worker chan $kind: $output"
		wait_for_grep "worker $w \\(slot $slot\\): bad message on its channel" "$DAEMON_LOG" 5 ||
			fail "$kind: not logged"
		gone "$w" || fail "$kind: worker $w still alive"
		n=$((n + 1))
	done
	grep -q "bad message on its channel (wrong pid)" "$DAEMON_LOG"
	grep -q "bad message on its channel (impossible session count)" "$DAEMON_LOG"
	grep -q "bad message on its channel (wrong slot)" "$DAEMON_LOG"

	# nobody else was hurt
	kill -0 "$bystander" || fail "the bystander $bystander was killed"
	kill -0 1
	daemon_alive || fail "the master died"
	[ "$(policy_pid)" = "$policy" ] || fail "the policy process changed: $policy -> $(policy_pid)"
	# and the daemon goes on serving, with workers replaced
	run simple_session
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	stop_daemon
}

@test "compromised worker: the policy process refuses what no worker would ask, and goes on" {
	start_sink
	touch "$T/grey.log"
	chown greygate:greygate "$T/grey.log"
	write_conf "$(greylist_block)" "greylist_log = \"$T/grey.log\""
	start_daemon
	local policy name kind
	policy=$(policy_pid)
	name=$(policy_socket)
	[ -n "$name" ] || fail "no policy socket in /proc/net/unix"

	# structurally malformed: the connection is closed
	for kind in garbage short long version op; do
		run "$EVIL" policy "$name" greygate-worker "$kind"
		[ "$status" -eq 0 ] || fail "$kind: $output"
		[ "$output" = closed ] || fail "$kind: $output"
	done
	# field by field: answered PP_ERROR (7), nothing stored or logged
	for kind in family v4pad nonul sender rcpt checktext put250 putcrlf putlong lognl logrcpt; do
		run "$EVIL" policy "$name" greygate-worker "$kind"
		[ "$status" -eq 0 ] || fail "$kind: $output"
		[ "$output" = "status 7" ] || [ "$output" = closed ] || fail "$kind: $output"
	done
	wait_for_grep 'policy request refused: reply text is not one 4xx/5xx line' "$DAEMON_LOG" 5 ||
		fail "the refused put is not logged"
	grep -q 'policy request refused: log line not printable ASCII' "$DAEMON_LOG" ||
		fail "the refused log line is not logged"
	# a well-formed log line is written: the control
	run "$EVIL" policy "$name" greygate-worker log
	[ "$output" = "status 6" ] || fail "log: $output"
	wait_for_grep 'control=line' "$T/grey.log" 5 || fail "greylist_log: $(cat "$T/grey.log")"
	! grep -q 'forged' "$T/grey.log" || fail "a forged line in greylist_log: $(cat "$T/grey.log")"

	# the next client gets the upstream's own answer for bob: no cached
	# 250 kept it from the replay, no injected reply reached it
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>" "DATA" "+Subject: hi" "+" "+hello" "." QUIT
	expect_line "S: 250 2.1.5 OK"
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	! grep -q injected <<<"$output" || fail "injected reply: $output"
	grep -q 'RCPT TO:<bob@example.org>' "$SINK_DIR/transcript" ||
		fail "bob was not replayed upstream: $(cat "$SINK_DIR/transcript")"

	daemon_alive || fail "the master died"
	[ "$(policy_pid)" = "$policy" ] || fail "the policy process changed"
	stop_daemon
}

@test "compromised worker: a well-formed refusal is kept, so the test above could fail" {
	start_sink
	start_daemon
	local name
	name=$(policy_socket)
	run "$EVIL" policy "$name" greygate-worker putok 127.0.0.1 alice@example.com carol@example.org
	[ "$output" = "status 6" ] || fail "putok: $output"
	# the horizon reaches the board through the master: the worker asks
	local i
	for ((i = 0; i < 20; i++)); do
		run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
			"RCPT TO:<carol@example.org>" QUIT
		grep -q '^S: 550 5.1.1 refused' <<<"$output" && break
		sleep 0.1
	done
	expect_line "S: 550 5.1.1 refused"
}

@test "kill -9 of the master: its children are gone within 3 s, a fresh start on the port succeeds" {
	start_sink
	start_daemon
	local kids p i left
	kids=$(workers)
	[ -n "$kids" ] || fail "no children"
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_STOPPED=1
	for ((i = 0; i < 30; i++)); do
		left=
		for p in $kids; do
			alive "$p" && left="$left $p"
		done
		[ -z "$left" ] && break
		sleep 0.1
	done
	[ -z "$left" ] || fail "still alive 3 s after the master's death:$left"
	start_daemon
	run simple_session
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
}

@test "without a chroot a worker (its uid, from /proc) cannot open greylist.db" {
	write_conf 'chroot = ""'
	start_daemon
	local w uid
	w=$(wait_idle_worker) || fail "no idle worker"
	uid=$(id -u greygate-worker)
	[ "$(awk '/^Uid:/ { print $2 }' "/proc/$w/status")" = "$uid" ] ||
		fail "worker $w: $(grep '^Uid:' "/proc/$w/status")"
	[ "$(readlink "/proc/$w/root")" = / ] || fail "worker $w is chrooted"
	[ -f "$STORE" ] || fail "no store at $STORE"
	# as the worker's uid and groups, from /proc/$w/status
	local gid groups
	gid=$(awk '/^Gid:/ { print $2 }' "/proc/$w/status")
	groups=$(awk '/^Groups:/ { $1 = ""; gsub(/^ | $/, ""); gsub(/ /, ","); print }' "/proc/$w/status")
	run setpriv --reuid="$uid" --regid="$gid" --groups="${groups:-$gid}" \
		/bin/cat -- "$STORE"
	[ "$status" -ne 0 ] || fail "the worker's uid opened $STORE"
	grep -qF "$STORE: Permission denied" <<<"$output" || fail "$output"
	# the control: the policy process's uid can
	run setpriv --reuid=greygate --regid=greygate --clear-groups \
		/bin/cat -- "$STORE"
	[ "$status" -eq 0 ] || fail "greygate cannot open $STORE: $output"
}

# in a network namespace of its own: 2001:db8:14::/64 and one address
# of 2001:db8:15::/64 on its loopback
@test "max_connections_per_ip counts one IPv6 /64 as one client" {
	command -v unshare >/dev/null || skip "no unshare"
	local ns=gg14.$$.${BATS_TEST_NUMBER:-0}
	ip netns add "$ns" || skip "cannot create a network namespace"
	NETNS=$ns
	ip -n "$ns" link set lo up
	ip -n "$ns" -6 addr add 2001:db8:14::1/64 dev lo nodad
	ip -n "$ns" -6 addr add 2001:db8:14::2/64 dev lo nodad
	ip -n "$ns" -6 addr add 2001:db8:14:0:ffff::3/64 dev lo nodad
	ip -n "$ns" -6 addr add 2001:db8:15::2/64 dev lo nodad
	write_conf 'listen = {"2001:db8:14::1"}' "max_connections_per_ip = 1"
	ip netns exec "$ns" "$GREYGATED" -d -f "$CONF" >"$DAEMON_LOG" 2>&1 3>&- </dev/null &
	DAEMON_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do
		awk -v p="$(printf '%04X' "$PORT")" '$4 == "0A" && substr($2, index($2, ":") + 1) == p { f = 1 } END { exit !f }' \
			"/proc/$DAEMON_PID/net/tcp6" 2>/dev/null && break
		sleep 0.1
	done
	[ "$i" -lt 100 ] || fail "not listening: $(cat "$DAEMON_LOG")"
	# three clients; the first holds its session while the others come
	run ip netns exec "$ns" python3 -c '
import socket, sys
port = int(sys.argv[1])
def conn(src):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((src, 0))
    s.connect(("2001:db8:14::1", port))
    f = s.makefile("rb")
    return s, f.readline().decode().strip()
a, ga = conn("2001:db8:14::2")
print("A", ga)
b, gb = conn("2001:db8:14:0:ffff::3")
print("B", gb)
c, gc = conn("2001:db8:15::2")
print("C", gc)
' "$PORT"
	expect_line "A 220 gw.test ESMTP greygate"
	expect_line "B 421 4.7.0 Too many connections from your address"
	expect_line "C 220 gw.test ESMTP greygate"
}
