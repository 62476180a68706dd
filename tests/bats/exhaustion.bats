#!/usr/bin/env bats
# Resource exhaustion on loopback, bounded in count and time: idle
# connections from one address, a flood beyond max_workers, and a client
# that drips one byte a second (SPEC 2, 3.1, 3.2, 5).

bats_require_minimum_version 1.5.0

load common

# hold_idle N FILE - open N connections from 127.0.0.1 to $PORT, send
# nothing, keep them open until FILE exists (120 s at most), then close;
# prints how many opened
hold_idle() {
	exec python3 - "$PORT" "$1" "$2" <<'PYEOF'
import os, socket, sys, time
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = []
for _ in range(n):
    try:
        s = socket.socket()
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    except OSError:
        break
print(len(socks), flush=True)
end = time.monotonic() + 120
while not os.path.exists(path) and time.monotonic() < end:
    time.sleep(0.1)
for s in socks:
    s.close()
PYEOF
}

# greet_from ADDR - connect from ADDR, print the first line the server says
greet_from() {
	python3 - "$PORT" "$1" <<'PYEOF'
import socket, sys
# SMTP clients wait 5 minutes for a greeting (RFC 5321 4.5.3.2.1)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30,
                             source_address=(sys.argv[2], 0))
f = s.makefile("rb")
print(f.readline().decode("latin-1").rstrip("\r\n"))
s.sendall(b"QUIT\r\n")
print(f.readline().decode("latin-1").rstrip("\r\n"))
PYEOF
}

@test "exhaustion: 500 idle connections from one address do not keep another client out" {
	# the idle ones outlast the test; the pool grows by min_spare_workers
	# a second until the per-address limit makes the rest cheap refusals
	write_conf "max_connections_per_ip = 20" "max_workers = 40" \
		"start_workers = 5" "min_spare_workers = 5" "max_spare_workers = 30" \
		"inactivity_timeout = 60" "backlog = 1024"
	start_daemon
	hold_idle 500 "$T/go" >"$T/idle.out" 2>&1 3>&- &
	local holder=$!
	BG_PIDS+=($holder)
	wait_for_grep '^[0-9]+$' "$T/idle.out" 10 || fail "idle: $(cat "$T/idle.out")"
	[ "$(cat "$T/idle.out")" -eq 500 ] || fail "only $(cat "$T/idle.out") idle connections opened"
	# another address is served while the idle ones are all still open
	local t0 t1
	t0=$(now)
	run greet_from 127.0.0.2
	t1=$(now)
	[ "${lines[0]}" = "220 $SERVERNAME ESMTP greygate" ] || fail "$output"
	[ "${lines[1]}" = "221 2.0.0 $SERVERNAME closing connection" ] || fail "$output"
	elapsed_between "$t0" "$t1" 0 20
	kill -0 "$holder" || fail "the idle connections were closed before the check"
	grep -q 'reason=too-many-connections' "$DAEMON_LOG" ||
		fail "no connection was refused for its address"
	# once they close (and the workers see it), 127.0.0.1 is served again
	release "$T/go"
	wait "$holder" 2>/dev/null || true
	local i
	for ((i = 0; i < 20; i++)); do
		run smtp NOOP QUIT
		grep -qxF "S: 221 2.0.0 $SERVERNAME closing connection" <<<"$output" && break
		sleep 0.5
	done
	expect_line "S: 221 2.0.0 $SERVERNAME closing connection"
}

@test "exhaustion: a flood beyond max_workers waits in the backlog and is served" {
	start_sink
	write_conf "max_workers = 2" "start_workers = 2" "min_spare_workers = 0" \
		"max_spare_workers = 2" "max_connections_per_ip = 0"
	start_daemon
	local i
	# two sessions hold both workers until the other four are waiting
	for i in 0 1 2 3 4 5; do
		SMTP_TIMEOUT=60 smtp_bg "c$i" "EHLO client$i.example" "MAIL FROM:<alice$i@example.com>" \
			"RCPT TO:<bob$i@example.org>" "!wait $T/go" "DATA" "+Subject: $i" "+" "+body $i" "." QUIT
	done
	local held=0 greeted=0 j
	for ((j = 0; j < 200; j++)); do
		held=$(cat "$T"/c?.out 2>/dev/null | grep -c '^S: 250 2.1.5' || true)
		[ "$held" -lt 2 ] || break
		sleep 0.1
	done
	[ "$held" -eq 2 ] || fail "$held sessions reached RCPT, expected the two workers' ($(cat "$T"/c?.out))"
	greeted=$(cat "$T"/c?.out | grep -c '^S: 220 ' || true)
	[ "$greeted" -eq 2 ] || fail "$greeted sessions greeted with two workers busy"
	release "$T/go"
	for i in 0 1 2 3 4 5; do
		wait_bg "c$i"
		grep -q '^S: 250 2.0.0 Ok: queued as ' "$T/c$i.out" || fail "session $i: $(cat "$T/c$i.out")"
	done
	expect_delivered 6
	# never more than two workers
	local n
	n=$(workers | wc -l)
	[ "$n" -le 3 ] || fail "$n children (2 workers + policy expected)"
}

# drip SECONDS - after the greeting, send "NOOP\r\n" over and over one
# byte a second, reading what the server says, until it closes or
# SECONDS pass; prints the server's lines, then "closed after N s" or
# "still open"
drip() {
	python3 - "$PORT" "$1" <<'PYEOF'
import select, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
limit = float(sys.argv[2])
t0 = time.monotonic()
data = b"NOOP\r\n" * 100
i = 0
buf = b""
while time.monotonic() - t0 < limit:
    r, _, _ = select.select([s], [], [], 1.0)
    if r:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            # our next byte met the closed socket: what came before
            # the reset was read already
            chunk = b""
        if not chunk:
            for line in buf.split(b"\r\n"):
                if line:
                    print(line.decode("latin-1"))
            print("closed after %d s" % round(time.monotonic() - t0))
            sys.exit(0)
        buf += chunk
        continue
    try:
        s.send(data[i:i + 1])
    except OSError:
        pass
    i += 1
for line in buf.split(b"\r\n"):
    if line:
        print(line.decode("latin-1"))
print("still open")
PYEOF
}

@test "exhaustion: a client dripping one byte a second is cut by session_timeout" {
	write_conf "inactivity_timeout = 3" "session_timeout = 5"
	start_daemon
	run drip 15
	# a NOOP completes every 6 s: at most one answer, then the cut
	expect_line "220 $SERVERNAME ESMTP greygate"
	expect_line "421 4.4.2 Timeout"
	local secs
	secs=$(sed -n 's/^closed after \([0-9]*\) s$/\1/p' <<<"$output")
	[ -n "$secs" ] || fail "not closed: $output"
	# session_timeout is 5 s; inactivity (3 s) never expires; room for load
	[ "$secs" -ge 4 ] && [ "$secs" -le 10 ] || fail "closed after $secs s: $output"
}
