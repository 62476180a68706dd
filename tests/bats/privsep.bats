#!/usr/bin/env bats
# Privilege separation, read from /proc while a real session is in
# progress (SPEC 5, ARCHITECTURE.md): started as root with chroot and
# user = "greygate", the workers run as greygate-worker (worker_user)
# inside the chroot with no capabilities and no way to the store, the
# policy process runs as greygate outside it, and the master stays root but never holds a
# client's connection.  Root only: skipped otherwise.

bats_require_minimum_version 1.5.0

load common

setup() {
	[ "$(id -u)" -eq 0 ] || skip "privilege separation needs root (CI runs as root)"
	common_setup
	# the chroot holds the spool and nothing else; the store is outside
	ROOTDIR=$T/chroot
	mkdir -p "$ROOTDIR/spool"
	chown root:root "$ROOTDIR"
	chmod 755 "$ROOTDIR"
	chown greygate-worker:greygate-worker "$ROOTDIR/spool"
	write_conf "chroot = \"$ROOTDIR\"" "spool_dir = \"$ROOTDIR/spool\"" \
		"spill_threshold = 4096" "inactivity_timeout = 120"
}

teardown() {
	common_teardown
}

# status_field PID FIELD - the values of a /proc/PID/status line,
# separated by single spaces
status_field() {
	awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"
}

# socket_inodes PID - "socket:[N]" for each socket the process holds
socket_inodes() {
	local fd
	for fd in /proc/"$1"/fd/*; do
		readlink "$fd" 2>/dev/null
	done | grep '^socket:' || true
}

# tcp_inodes STATE - inodes of TCP sockets on local port $PORT in STATE
# (01 established, 0A listening), as "socket:[N]"
tcp_inodes() {
	awk -v p="$(printf '%04X' "$PORT")" -v st="$1" '
		$4 == st && substr($2, index($2, ":") + 1) == p { print "socket:[" $10 "]" }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# check_unprivileged PID [USER] - uid and gid of USER (greygate; real,
# effective, saved, fs), USER's group only, no capabilities (none in the
# bounding set either), no_new_privs, not dumpable (no ptrace by its uid)
check_unprivileged() {
	local p=$1 uid gid
	uid=$(id -u "${2:-greygate}")
	gid=$(id -g "${2:-greygate}")
	[ "$(status_field "$p" Uid)" = "$uid $uid $uid $uid" ] ||
		fail "$p: Uid $(status_field "$p" Uid), want $uid x4"
	[ "$(status_field "$p" Gid)" = "$gid $gid $gid $gid" ] ||
		fail "$p: Gid $(status_field "$p" Gid), want $gid x4"
	[ "$(status_field "$p" Groups)" = "$gid" ] ||
		fail "$p: Groups '$(status_field "$p" Groups)', want only $gid"
	local cap
	for cap in CapInh CapPrm CapEff CapAmb CapBnd; do
		[ "$(status_field "$p" $cap)" = 0000000000000000 ] ||
			fail "$p: $cap $(status_field "$p" $cap)"
	done
	# nothing executed could bring privileges back
	[ "$(status_field "$p" NoNewPrivs)" = 1 ] ||
		fail "$p: NoNewPrivs $(status_field "$p" NoNewPrivs)"
	# not dumpable: /proc/PID/environ is root's, not its uid's
	[ "$(stat -c %u "/proc/$p/environ")" = 0 ] ||
		fail "$p: dumpable (/proc/$p/environ owned by $(stat -c %U "/proc/$p/environ"))"
	# root cannot come back: setuid(0) would need CAP_SETUID
	[ "$(status_field "$p" Uid | cut -d' ' -f1)" != 0 ]
}

@test "privsep: workers are greygate-worker in the chroot, policy greygate at /, master root without clients" {
	start_sink
	start_daemon
	local uid master=$DAEMON_PID kids p policy= workers=() w
	uid=$(id -u greygate)

	# a session in progress, held open by the client (inactivity_timeout
	# is 120 s: looking at every process takes long on a loaded machine)
	smtp_bg s "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>" "!wait $T/go" QUIT
	wait_for_grep '^S: 250 2.1.5' "$T/s.out" 5 || fail "session: $(cat "$T/s.out")"

	kids=$(workers)
	[ -n "$kids" ] || fail "no children"
	for p in $kids; do
		if tr '\0' ' ' <"/proc/$p/cmdline" | grep -q 'policy'; then
			policy=$p
		else
			workers+=("$p")
		fi
	done
	[ -n "$policy" ] || fail "no policy process among $kids"
	[ "${#workers[@]}" -ge 1 ] || fail "no workers among $kids"

	# master: root, the listener, and no client connection
	[ "$(status_field "$master" Uid | cut -d' ' -f1-3)" = "0 0 0" ] ||
		fail "master: Uid $(status_field "$master" Uid)"
	local listen est msock
	listen=$(tcp_inodes 0A)
	est=$(tcp_inodes 01)
	[ -n "$est" ] || fail "no established connection on port $PORT"
	msock=$(socket_inodes "$master")
	grep -qxF -f <(printf '%s\n' "$listen") <<<"$msock" ||
		fail "master does not hold the listener ($listen): $msock"
	! grep -qxF -f <(printf '%s\n' "$est") <<<"$msock" ||
		fail "master holds a client connection: $(grep -xF -f <(printf '%s\n' "$est") <<<"$msock")"

	# the session is held by a worker
	local holder
	holder=$(session_pids | head -1)
	[ -n "$holder" ] || fail "no process holds the session"
	[ "$holder" != "$master" ] && [ "$holder" != "$policy" ] ||
		fail "the session is held by $holder (master $master, policy $policy)"

	# workers: greygate-worker, chrooted, no capability, no store
	for w in "${workers[@]}"; do
		check_unprivileged "$w" greygate-worker
		[ "$(readlink "/proc/$w/root")" = "$ROOTDIR" ] ||
			fail "worker $w: root $(readlink "/proc/$w/root"), want $ROOTDIR"
		[ ! -e "/proc/$w/root$STORE" ] && [ ! -e "/proc/$w/root$(dirname "$STORE")" ] ||
			fail "worker $w can reach the store's directory"
		! ls -l "/proc/$w/fd" | grep -q "$(dirname "$STORE")" ||
			fail "worker $w holds the store open: $(ls -l "/proc/$w/fd")"
	done

	# the policy process: greygate, not chrooted, holds the store
	check_unprivileged "$policy"
	[ "$(readlink "/proc/$policy/root")" = / ] ||
		fail "policy $policy: root $(readlink "/proc/$policy/root")"
	ls -l "/proc/$policy/fd" | grep -qF "$STORE" ||
		fail "policy process does not hold $STORE: $(ls -l "/proc/$policy/fd")"

	release "$T/go"
	wait_bg s
	grep -q '^S: 221' "$T/s.out" || fail "session: $(cat "$T/s.out")"
}

@test "privsep: a message larger than spill_threshold is delivered from the chroot" {
	start_sink
	start_daemon
	local body=$T/big.txt
	{
		printf 'Subject: big\r\n\r\n'
		for ((i = 0; i < 200; i++)); do
			printf 'line %04d of a message that spills to the spool inside the chroot\r\n' "$i"
		done
		printf '.\r\n'
	} >"$body"
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>" "DATA" "!file $body" '!read' QUIT
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
}
