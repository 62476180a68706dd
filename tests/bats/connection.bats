#!/usr/bin/env bats
# Connection-level rules: greet_delay and early talkers,
# max_connections_per_ip, and pipelining (SPEC 3.1, 3.2).

load common

setup() {
	common_setup
	start_sink
}

@test "greet_delay: a patient client gets the full greeting after the delay" {
	write_conf "greet_delay = 2"
	start_daemon
	local t0 t1
	t0=$(now)
	run smtp QUIT
	t1=$(now)
	expect_transcript <<EOF
S: 220-gw.test ESMTP
S: 220 gw.test ESMTP greygate
C: QUIT
S: 221 2.0.0 gw.test closing connection
EOF
	elapsed_between "$t0" "$t1" 1.8 4
}

@test "greet_delay: a patient client delivers mail" {
	write_conf "greet_delay = 2"
	start_daemon
	run simple_session
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
}

@test "greet_delay: talking after the 220- line is early talking: 554 5.5.1 and close" {
	write_conf "greet_delay = 2"
	start_daemon
	run smtp '!nogreet' '!readline' "+EHLO early.example" '!read' '!eof'
	expect_transcript <<EOF
S: 220-gw.test ESMTP
C: EHLO early.example
S: 554 5.5.1 Protocol error: talked before greeting
-- closed
EOF
	grep -q 'action=early-talker' "$DAEMON_LOG" || fail "no action=early-talker in the log"
}

@test "greet_delay: talking at once is early talking" {
	write_conf "greet_delay = 2"
	start_daemon
	run smtp '!nogreet' "+EHLO early.example" "+MAIL FROM:<spam@example.com>" '!eof'
	expect_transcript <<EOF
C: EHLO early.example
C: MAIL FROM:<spam@example.com>
S: 220-gw.test ESMTP
S: 554 5.5.1 Protocol error: talked before greeting
-- closed
EOF
	expect_nothing_upstream
}

@test "max_connections_per_ip: the third concurrent connection gets 421 4.7.0" {
	write_conf "max_connections_per_ip = 2"
	start_daemon
	smtp_bg one '!sleep 3' QUIT
	smtp_bg two '!sleep 3' QUIT
	wait_for_grep '^S: 220 ' "$T/one.out" 5
	wait_for_grep '^S: 220 ' "$T/two.out" 5
	run smtp '!eof'
	expect_transcript <<EOF
S: 421 4.7.0 Too many connections from your address
-- closed
EOF
	wait_bg one
	wait_bg two
	for f in one two; do
		grep -qx 'S: 221 2.0.0 gw.test closing connection' "$T/$f.out" ||
			fail "session $f: $(cat "$T/$f.out")"
	done
	sleep 0.5
	run smtp QUIT
	expect_line "S: 220 gw.test ESMTP greygate"
}

@test "pipelining after EHLO: MAIL, RCPT, RCPT, DATA in one write" {
	start_daemon
	run smtp "EHLO client.example" "+MAIL FROM:<alice@example.com>" \
		"+RCPT TO:<bob@example.org>" "+RCPT TO:<carol@example.org>" "+DATA" '!read 4' \
		"+Subject: pipelined" "+" "+body" "." QUIT '!eof'
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<bob@example.org>
C: RCPT TO:<carol@example.org>
C: DATA
S: 250 2.1.0 OK
S: 250 2.1.5 OK
S: 250 2.1.5 OK
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: pipelined
C: 
C: body
C: .
S: 250 2.0.0 Ok: queued as 0001
C: QUIT
S: 221 2.0.0 gw.test closing connection
-- closed
EOF
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>" "RCPT TO:<carol@example.org>"
}

@test "pipelining: a refused RCPT in the group does not stop the others" {
	write_conf 'allowed_senders = {"10.0.0.0/8"}' 'allowed_domains = {"example.org"}'
	start_daemon
	run smtp "EHLO client.example" "+MAIL FROM:<alice@example.com>" \
		"+RCPT TO:<mallory@elsewhere.test>" "+RCPT TO:<bob@example.org>" "+DATA" '!read 4' \
		"+Subject: pipelined" "+" "+body" "."
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<mallory@elsewhere.test>
C: RCPT TO:<bob@example.org>
C: DATA
S: 250 2.1.0 OK
S: 550 5.7.1 Relaying denied
S: 250 2.1.5 OK
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: pipelined
C: 
C: body
C: .
S: 250 2.0.0 Ok: queued as 0001
EOF
}

@test "pipelined QUIT after the final dot" {
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+Subject: quit" "+" "+body" "+." "+QUIT" '!read 2' '!eof'
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
C: Subject: quit
C: 
C: body
C: .
C: QUIT
S: 250 2.0.0 Ok: queued as 0001
S: 221 2.0.0 gw.test closing connection
-- closed
EOF
	expect_delivered 1
}

@test "pipelined QUIT after the final dot is fine after HELO too" {
	start_daemon
	run smtp "HELO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+Subject: quit" "+" "+body" "+." "+QUIT" '!read 2' '!eof'
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_line "S: 221 2.0.0 gw.test closing connection"
	expect_delivered 1
}

@test "pipelining after HELO: 503 5.5.0 and close" {
	start_daemon
	run smtp "HELO client.example" "+MAIL FROM:<alice@example.com>" "+RCPT TO:<bob@example.org>" \
		'!read' '!eof'
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: HELO client.example
S: 250 gw.test Hello client.example [127.0.0.1]
C: MAIL FROM:<alice@example.com>
C: RCPT TO:<bob@example.org>
S: 503 5.5.0 Improper use of pipelining
-- closed
EOF
	expect_nothing_upstream
}

@test "pipelining before the EHLO reply: 503 5.5.0 and close" {
	start_daemon
	run smtp "+EHLO client.example" "+MAIL FROM:<alice@example.com>" '!read' '!eof'
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
C: MAIL FROM:<alice@example.com>
S: 503 5.5.0 Improper use of pipelining
-- closed
EOF
}

@test "bytes after DATA before the 354: 503 5.5.0 and close, nothing upstream" {
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"+DATA" "+Subject: too early" "+" "+body" "+." '!read' '!eof'
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 OK
C: DATA
C: Subject: too early
C: 
C: body
C: .
S: 503 5.5.0 Improper use of pipelining
-- closed
EOF
	expect_nothing_upstream
	grep -q 'action=protocol-error' "$DAEMON_LOG" || fail "no action=protocol-error in the log"
}

@test "a client that disconnects in the middle of the data sends nothing upstream" {
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" '!raw Subject: cut\r\n\r\nhalf a mess'
	sleep 1
	expect_nothing_upstream
	run simple_session
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>"
}
