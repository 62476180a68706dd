#!/usr/bin/env bats
# The upstream boundary (SPEC 3.4): every answer the client hears is a
# complete SMTP reply built from the upstream's own, refusals converge,
# and no replay is cut or duplicated.

load common

TX_SUBJECT="boundary test"

# expect_whole_reply CODE LAST - the reply to the dot is one complete
# reply: every line CODE-..., the last one exactly LAST, each line at
# most 512 octets with its CRLF, the whole at most 4096
expect_whole_reply() {
	final_reply | awk -v code="$1" -v last="$2" '
		{ sub(/^S: /, ""); n++; total += length($0) + 2; line[n] = $0
		  if (length($0) + 2 > 512) { print "line over 512 octets: " n; bad = 1 } }
		END {
			if (n < 2) { print "not multi-line: " n " lines"; exit 1 }
			for (i = 1; i < n; i++)
				if (substr(line[i], 1, 4) != code "-") { print "line " i ": " line[i]; bad = 1 }
			if (line[n] != last) { print "last line: " line[n]; bad = 1 }
			if (total > 4096) { print "reply of " total " octets"; bad = 1 }
			exit bad
		}' || { printf '%s\n' "$output" | head -c 3000; return 1; }
}

@test "a 64 KiB multi-line reply at every step: delivered once, the client hears a whole reply" {
	start_sink huge
	start_daemon
	run transaction bob@example.org
	expect_whole_reply 250 "250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
	grep -q 'action=pass' "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
}

@test "a 64 KiB multi-line rejection of the data: relayed whole, its final line kept" {
	start_sink huge reject-data
	start_daemon
	run transaction bob@example.org
	expect_whole_reply 554 "554 5.7.1 Error: message content rejected"
	expect_delivered 0
}

@test "64 KiB multi-line refusals of every recipient: the first, whole" {
	start_sink huge reject-all-rcpt
	start_daemon
	run transaction bob@example.org carol@example.org
	expect_whole_reply 550 "550 5.1.1 <bob@example.org>: User unknown"
	expect_delivered 0
}

@test "a 64 KiB multi-line refusal of MAIL and of DATA: relayed whole" {
	start_sink huge reject-mail
	start_daemon
	run transaction bob@example.org
	expect_whole_reply 550 "550 5.7.1 <alice@example.com>: Sender address rejected: Access denied"
	stop_daemon
	kill "$SINK_PID"
	wait "$SINK_PID" || true
	start_sink huge reject-datacmd
	start_daemon
	run transaction bob@example.org
	expect_whole_reply 554 "554 5.5.1 Error: DATA refused by sink"
	expect_delivered 0
}

@test "every recipient refused, one with 4xx: the client gets a 4xx, never a bounce" {
	start_sink reject-rcpt=carol@example.org tempfail-rcpt=bob@example.org
	start_daemon
	run transaction carol@example.org bob@example.org
	expect_final_reply "452 4.2.2 <bob@example.org>: Mailbox full"
	# the retry: the 5xx is remembered, the 4xx asked again
	run transaction carol@example.org bob@example.org
	expect_line "S: 550 5.1.1 <carol@example.org>: User unknown"
	expect_final_reply "452 4.2.2 <bob@example.org>: Mailbox full"
	expect_delivered 0
}

@test "some accepted, some refused with 4xx and 5xx: 451 4.3.0, only the 5xx remembered" {
	start_sink reject-rcpt=carol@example.org tempfail-rcpt=bob@example.org
	start_daemon
	run transaction dave@example.org carol@example.org bob@example.org
	expect_final_reply "451 4.3.0 Try again later"
	expect_delivered 0
	run transaction dave@example.org carol@example.org bob@example.org
	expect_transcript_has_rcpt_reply carol@example.org "550 5.1.1 <carol@example.org>: User unknown"
	expect_transcript_has_rcpt_reply bob@example.org "250 2.1.5 OK"
	expect_final_reply "451 4.3.0 Try again later"
	[ "$(grep -c '^RCPT TO:<bob@example.org>' "$SINK_DIR/transcript")" -eq 2 ] ||
		fail "bob was not asked again: $(cat "$SINK_DIR/transcript")"
	[ "$(grep -c '^RCPT TO:<carol@example.org>' "$SINK_DIR/transcript")" -eq 1 ] ||
		fail "carol was asked again: $(cat "$SINK_DIR/transcript")"
}

# expect_transcript_has_rcpt_reply RCPT REPLY - RCPT TO:<RCPT> got REPLY
expect_transcript_has_rcpt_reply() {
	printf '%s\n' "$output" | grep -A1 -Fx "C: RCPT TO:<$1>" | tail -1 | grep -Fxq "S: $2" ||
		fail "RCPT TO:<$1> did not get $2:" "$output"
}

@test "15 refused recipients and 1 good one, max_errors = 10: the good one is delivered on the retry, from another network" {
	local bad=() i
	for i in $(seq -w 1 15); do
		bad+=("u$i@example.org")
	done
	local modes
	modes=$(printf 'reject-rcpt=%s,' "${bad[@]}")
	start_sink "${modes%,}"
	write_conf "max_errors = 10"
	start_daemon
	run transaction "${bad[@]}" good@example.org
	expect_final_reply "451 4.3.0 Try again later"
	expect_delivered 0
	# the retry comes from another /24: refusals are kept by sender and
	# recipient alone
	local rcpts=() r
	for r in "${bad[@]}" good@example.org; do
		rcpts+=("RCPT TO:<$r>")
	done
	run smtp_from 127.0.9.9 "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"${rcpts[@]}" "DATA" "+Subject: retry" "+" "+body" "." QUIT
	refute_line "S: 421 4.7.0 Too many errors"
	expect_transcript_has_rcpt_reply u15@example.org "550 5.1.1 <u15@example.org>: User unknown"
	expect_transcript_has_rcpt_reply good@example.org "250 2.1.5 OK"
	expect_final_reply "250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<good@example.org>"
}

@test "the upstream hangs up after its 20th RCPT refusal: 25 unknown and 2 known settle on the next retry" {
	local bad=() i
	for i in $(seq -w 1 25); do
		bad+=("u$i@example.org")
	done
	local modes
	modes=$(printf 'reject-rcpt=%s,' "${bad[@]}")
	start_sink "${modes%,}" hangup-after-refusals=20
	write_conf "max_recipients = 100"
	start_daemon
	run transaction "${bad[@]}" k1@example.org k2@example.org
	expect_final_reply "451 4.3.0 Try again later"
	expect_delivered 0
	grep -q '^# hanging up after 20 refusals' "$SINK_DIR/transcript" ||
		fail "the sink did not hang up: $(cat "$SINK_DIR/transcript")"
	run transaction "${bad[@]}" k1@example.org k2@example.org
	expect_transcript_has_rcpt_reply u01@example.org "550 5.1.1 <u01@example.org>: User unknown"
	expect_transcript_has_rcpt_reply u25@example.org "550 5.1.1 <u25@example.org>: User unknown"
	expect_final_reply "250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<k1@example.org>" "RCPT TO:<k2@example.org>"
}

@test "SIGTERM during a slow dot: the client gets the upstream's reply, the line is logged, one copy" {
	start_sink slow-dot=5
	write_conf "shutdown_timeout = 1"
	start_daemon
	smtp_bg c "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+Subject: slow" "+" "+body" "." QUIT
	wait_for_grep '^# slow dot' "$SINK_DIR/transcript" 10 || fail "no dot reached the sink"
	kill -TERM "$DAEMON_PID"
	wait_bg c
	output=$(cat "$T/c.out")
	expect_final_reply "250 2.0.0 Ok: queued as 0001"
	grep -q 'action=pass reason=delivered' "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
	wait_daemon_exit 15 || fail "greygated did not exit"
	DAEMON_STOPPED=1
	expect_delivered 1
	refute_grep 'died on signal 9' "$DAEMON_LOG"
}

@test "the dot waits longer than upstream_timeout; the client is answered before the upstream's QUIT" {
	start_sink slow-dot=3 slow-quit=30
	write_conf "upstream_timeout = 1"
	start_daemon
	local t0 t1
	t0=$(now)
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+Subject: slow" "+" "+body" "."
	t1=$(now)
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	# 3 s for the dot (more than upstream_timeout), not the 30 s of the
	# QUIT's reply
	elapsed_between "$t0" "$t1" 2.5 25
	expect_delivered 1
}

@test "the client closes while the upstream is slow to answer DATA: no dot reaches the upstream" {
	start_sink slow-data=3
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+Subject: gone" "+" "+body" "+." "!flush"
	wait_for_grep 'action=tempfail reason=client-gone' "$DAEMON_LOG" 15 ||
		fail "no client-gone: $(cat "$DAEMON_LOG")"
	wait_for_grep '^# close' "$SINK_DIR/transcript" 5 || fail "upstream not closed"
	refute_grep '^# data' "$SINK_DIR/transcript"
	refute_grep 'action=pass' "$DAEMON_LOG"
	expect_delivered 0
}

@test "a text line of 998 characters starting with a dot is delivered; 999 and the dot are refused" {
	start_sink
	start_daemon
	local l998 l999
	l998=$(printf '.%0997d' 0)
	l999=$(printf '.%0998d' 0)
	# on the wire each gets a transparency dot more
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+Subject: dots" "+" "+.$l998" "." \
		"MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+Subject: dots" "+" "+.$l999" "." QUIT
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_line "S: 554 5.6.0 Line too long"
	expect_delivered 1
	grep -qx -- ".$l998"$'\r' "$SINK_DIR/0001.msg" || fail "the line was not relayed as sent"
}

@test "after HELO, every pipelined pair of commands in every segment split: never overwritten" {
	start_daemon
	run python3 - "$PORT" <<'PYEOF'
import socket, sys
port = int(sys.argv[1])
cmds = {
    b"NOOP": b"250 2.0.0 OK",
    b"RSET": b"250 2.0.0 OK",
    b"VRFY bob": b"252 2.5.0 Cannot VRFY user",
    b"MAIL FROM:<alice@example.com>": b"250 2.1.0 OK",
    b"QUIT": b"221 2.0.0 gw.test closing connection",
}
def replies(s):
    buf = b""
    out = []
    while True:
        try:
            d = s.recv(65536)
        except OSError:
            d = b""
        if not d:
            break
        buf += d
    return [l for l in buf.split(b"\r\n") if l]
bad = 0
runs = 0
for a, ra in cmds.items():
    for b, rb in cmds.items():
        data = a + b"\r\n" + b + b"\r\n"
        for cut in range(1, len(data)):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"HELO client.example\r\n")
            f.readline()
            s.sendall(data[:cut])
            s.sendall(data[cut:])
            got = []
            while True:
                l = f.readline()
                if not l:
                    break
                got.append(l.rstrip(b"\r\n"))
                if l.startswith(b"221 ") or l.startswith(b"503 5.5.0"):
                    break
                if len(got) == 2:
                    s.sendall(b"QUIT\r\n")
            s.close()
            runs += 1
            # a violation is refused before A runs; a pipelined QUIT is fine
            viol = b"503 5.5.0 Improper use of pipelining"
            if a.startswith(b"MAIL") and b.startswith(b"MAIL"):
                rb = b"503 5.5.1 Error: nested MAIL command"
            if got == [viol]:
                ok = b != b"QUIT"
            elif a == b"QUIT":
                ok = got == [ra]
            elif b == b"QUIT":
                ok = got == [ra, rb]
            else:
                ok = got[:1] == [ra] and len(got) >= 2 and got[1] in (rb, viol)
            if not ok:
                bad += 1
                print("FAIL %r cut %d: %r" % (data, cut, got))
print("runs=%d bad=%d" % (runs, bad))
sys.exit(1 if bad else 0)
PYEOF
	printf '%s\n' "$output" | tail -5
	expect_status 0
}
