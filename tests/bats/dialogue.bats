#!/usr/bin/env bats
# The SMTP dialogue, command by command, and the connection-level rules:
# greet_delay and early talkers, max_connections_per_ip, pipelining
# (SPEC 3.1, 3.2).

load common

setup() {
	common_setup
	start_sink
}

@test "greeting names the server and the software; QUIT closes" {
	start_daemon
	run smtp QUIT '!eof'
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: QUIT
S: 221 2.0.0 gw.test closing connection
-- closed
EOF
}

@test "serverid is the software named in the greeting" {
	write_conf 'serverid = "mx-proxy"'
	start_daemon
	run smtp QUIT
	expect_transcript <<EOF
S: 220 gw.test ESMTP mx-proxy
C: QUIT
S: 221 2.0.0 gw.test closing connection
EOF
}

@test "EHLO: hello line, PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES" {
	start_daemon
	run smtp "EHLO client.example" QUIT
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
S: 250-gw.test Hello client.example [127.0.0.1]
S: 250-PIPELINING
S: 250-SIZE 26214400
S: 250-8BITMIME
S: 250 ENHANCEDSTATUSCODES
C: QUIT
S: 221 2.0.0 gw.test closing connection
EOF
}

@test "EHLO announces max_message_size as SIZE" {
	write_conf "max_message_size = 2048"
	start_daemon
	run smtp "EHLO client.example"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example 2048)
EOF
}

@test "HELO: a one-line hello" {
	start_daemon
	run smtp "HELO client.example" QUIT
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: HELO client.example
S: 250 gw.test Hello client.example [127.0.0.1]
C: QUIT
S: 221 2.0.0 gw.test closing connection
EOF
}

@test "EHLO with an address literal" {
	start_daemon
	run smtp "EHLO [127.0.0.1]"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO [127.0.0.1]
$(ehlo_reply '[127.0.0.1]')
EOF
}

@test "EHLO and HELO without an argument: 501 5.5.4" {
	start_daemon
	run smtp "EHLO" "HELO" "MAIL FROM:<alice@example.com>" "HELO client.example"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO
S: 501 5.5.4 Syntax: EHLO hostname
C: HELO
S: 501 5.5.4 Syntax: HELO hostname
C: MAIL FROM:<alice@example.com>
S: 503 5.5.1 Error: send HELO/EHLO first
C: HELO client.example
S: 250 gw.test Hello client.example [127.0.0.1]
EOF
}

@test "EHLO and HELO with an invalid host name: 501 5.5.4" {
	start_daemon
	run smtp "EHLO foo..example" "HELO foo..example"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO foo..example
S: 501 5.5.4 Syntax: EHLO hostname
C: HELO foo..example
S: 501 5.5.4 Syntax: HELO hostname
EOF
}

@test "verbs are case-insensitive" {
	start_daemon
	run smtp "ehlo client.example" "mail from:<alice@example.com>" \
		"Rcpt To:<bob@example.org>" "rset" "nOoP" "quit"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: ehlo client.example
$(ehlo_reply client.example)
C: mail from:<alice@example.com>
S: 250 2.1.0 OK
C: Rcpt To:<bob@example.org>
S: 250 2.1.5 OK
C: rset
S: 250 2.0.0 OK
C: nOoP
S: 250 2.0.0 OK
C: quit
S: 221 2.0.0 gw.test closing connection
EOF
}

@test "MAIL before HELO/EHLO: 503 5.5.1" {
	start_daemon
	run smtp "MAIL FROM:<alice@example.com>"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: MAIL FROM:<alice@example.com>
S: 503 5.5.1 Error: send HELO/EHLO first
EOF
}

@test "MAIL inside a transaction: 503 5.5.1 nested" {
	start_daemon
	run smtp "HELO client.example" "MAIL FROM:<alice@example.com>" "MAIL FROM:<carol@example.com>"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: HELO client.example
S: 250 gw.test Hello client.example [127.0.0.1]
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: MAIL FROM:<carol@example.com>
S: 503 5.5.1 Error: nested MAIL command
EOF
}

@test "MAIL with bad syntax: 501 5.1.7" {
	start_daemon
	run smtp "HELO client.example" \
		"MAIL FROM: <alice@example.com>" \
		"MAIL FROM:alice@example.com" \
		"MAIL FROM:<alice@example.com" \
		"MAIL FROM:<alice@@example.com>" \
		"MAIL FROM:<alice@example.com>"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: HELO client.example
S: 250 gw.test Hello client.example [127.0.0.1]
C: MAIL FROM: <alice@example.com>
S: 501 5.1.7 Bad sender address syntax
C: MAIL FROM:alice@example.com
S: 501 5.1.7 Bad sender address syntax
C: MAIL FROM:<alice@example.com
S: 501 5.1.7 Bad sender address syntax
C: MAIL FROM:<alice@@example.com>
S: 501 5.1.7 Bad sender address syntax
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
EOF
}

@test "MAIL with the null sender" {
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<>" "RCPT TO:<bob@example.org>" \
		"DATA" "+Subject: bounce" "+" "+x" "."
	expect_line "S: 250 2.1.0 OK"
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<>" "RCPT TO:<bob@example.org>"
}

@test "MAIL with SIZE and BODY parameters" {
	start_daemon
	run smtp "EHLO client.example" \
		"MAIL FROM:<alice@example.com> SIZE=1000 BODY=8BITMIME" "RSET" \
		"MAIL FROM:<alice@example.com> BODY=7BIT" "RSET" \
		"MAIL FROM:<alice@example.com> size=10 body=8bitmime"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com> SIZE=1000 BODY=8BITMIME
S: 250 2.1.0 OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<alice@example.com> BODY=7BIT
S: 250 2.1.0 OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<alice@example.com> size=10 body=8bitmime
S: 250 2.1.0 OK
EOF
}

@test "MAIL with an unknown parameter: 555 5.5.4" {
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com> FOO=BAR" \
		"MAIL FROM:<alice@example.com> SMTPUTF8X"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com> FOO=BAR
S: 555 5.5.4 Unsupported parameter
C: MAIL FROM:<alice@example.com> SMTPUTF8X
S: 555 5.5.4 Unsupported parameter
EOF
}

@test "MAIL with SIZE over max_message_size: 552 5.3.4" {
	write_conf "max_message_size = 2048"
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com> SIZE=2049" \
		"MAIL FROM:<alice@example.com> SIZE=2048"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example 2048)
C: MAIL FROM:<alice@example.com> SIZE=2049
S: 552 5.3.4 Message size exceeds fixed limit
C: MAIL FROM:<alice@example.com> SIZE=2048
S: 250 2.1.0 OK
EOF
}

@test "RCPT before MAIL: 503 5.5.1" {
	start_daemon
	run smtp "EHLO client.example" "RCPT TO:<bob@example.org>"
	expect_line "C: RCPT TO:<bob@example.org>"
	expect_line "S: 503 5.5.1 Error: need MAIL command"
}

@test "RCPT with bad syntax: 501 5.1.3" {
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:bob@example.org" "RCPT TO: <bob@example.org>" "RCPT TO:<>" \
		"RCPT TO:<bob@example.org>"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:bob@example.org
S: 501 5.1.3 Bad recipient address syntax
C: RCPT TO: <bob@example.org>
S: 501 5.1.3 Bad recipient address syntax
C: RCPT TO:<>
S: 501 5.1.3 Bad recipient address syntax
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 OK
EOF
}

@test "RCPT from a client outside allowed_senders: 550 5.7.1 Relaying denied" {
	write_conf 'allowed_senders = {"10.0.0.0/8"}'
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>" "DATA" QUIT
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:<bob@example.org>
S: 550 5.7.1 Relaying denied
C: DATA
S: 554 5.5.1 No valid recipients
C: QUIT
S: 221 2.0.0 gw.test closing connection
EOF
	expect_nothing_upstream
}

@test "allowed_domains: exact domain and .sub entry for subdomains, nothing else" {
	write_conf 'allowed_senders = {"10.0.0.0/8"}' \
		'allowed_domains = {"example.org", ".sub.example.net"}'
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>" \
		"RCPT TO:<carol@EXAMPLE.ORG>" \
		"RCPT TO:<dave@mx.sub.example.net>" \
		"RCPT TO:<erin@a.b.sub.example.net>" \
		"RCPT TO:<frank@other.example.org>" \
		"RCPT TO:<grace@notexample.org>" \
		"RCPT TO:<heidi@example.org.evil.test>" \
		"RCPT TO:<ivan@xsub.example.net>"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 OK
C: RCPT TO:<carol@EXAMPLE.ORG>
S: 250 2.1.5 OK
C: RCPT TO:<dave@mx.sub.example.net>
S: 250 2.1.5 OK
C: RCPT TO:<erin@a.b.sub.example.net>
S: 250 2.1.5 OK
C: RCPT TO:<frank@other.example.org>
S: 550 5.7.1 Relaying denied
C: RCPT TO:<grace@notexample.org>
S: 550 5.7.1 Relaying denied
C: RCPT TO:<heidi@example.org.evil.test>
S: 550 5.7.1 Relaying denied
C: RCPT TO:<ivan@xsub.example.net>
S: 550 5.7.1 Relaying denied
EOF
}

@test "relay-denied recipients are dropped, accepted ones are delivered" {
	write_conf 'allowed_senders = {"10.0.0.0/8"}' 'allowed_domains = {"example.org"}'
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>" "RCPT TO:<mallory@elsewhere.test>" \
		"DATA" "+Subject: partly relayed" "+" "+hi" "."
	expect_line "S: 550 5.7.1 Relaying denied"
	expect_line "S: 354 End data with <CR><LF>.<CR><LF>"
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>"
}

@test "postmaster without a domain is always accepted" {
	write_conf 'allowed_senders = {"10.0.0.0/8"}'
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<postmaster>" "RCPT TO:<postmaster@elsewhere.test>" \
		"DATA" "+Subject: to postmaster" "+" "+hi" "." \
		"MAIL FROM:<alice@example.com>" "RCPT TO:<Postmaster>" "RSET"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:<postmaster>
S: 250 2.1.5 OK
C: RCPT TO:<postmaster@elsewhere.test>
S: 550 5.7.1 Relaying denied
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: to postmaster
C: 
C: hi
C: .
S: 250 2.0.0 Ok: queued as 0001
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:<Postmaster>
S: 250 2.1.5 OK
C: RSET
S: 250 2.0.0 OK
EOF
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<postmaster>"
}

@test "allowed_sender_nets is merged with allowed_senders" {
	write_conf 'allowed_senders = {"10.0.0.0/8"}' 'allowed_sender_nets = {"127.0.0.0/8"}'
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@anywhere.test>"
	expect_line "S: 250 2.1.5 OK"
}

@test "allowed_senders: a plain address, and a CIDR with host bits set" {
	write_conf 'allowed_senders = {"127.0.0.1"}'
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@anywhere.test>"
	expect_line "S: 250 2.1.5 OK"
	stop_daemon
	write_conf 'allowed_senders = {"127.255.255.255/8"}'
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@anywhere.test>"
	expect_line "S: 250 2.1.5 OK"
}

@test "RCPT beyond max_recipients: 452 4.5.3, the others are delivered" {
	write_conf "max_recipients = 2"
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<r1@example.org>" "RCPT TO:<r2@example.org>" "RCPT TO:<r3@example.org>" \
		"DATA" "+Subject: many" "+" "+x" "."
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:<r1@example.org>
S: 250 2.1.5 OK
C: RCPT TO:<r2@example.org>
S: 250 2.1.5 OK
C: RCPT TO:<r3@example.org>
S: 452 4.5.3 Too many recipients
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: many
C: 
C: x
C: .
S: 250 2.0.0 Ok: queued as 0001
EOF
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<r1@example.org>" "RCPT TO:<r2@example.org>"
}

@test "DATA without MAIL or without RCPT: 503 5.5.1" {
	start_daemon
	run smtp "EHLO client.example" "DATA" "MAIL FROM:<alice@example.com>" "DATA"
	[ "${lines[7]}" = "C: DATA" ]
	[[ "${lines[8]}" == "S: 503 5.5.1 "* ]] || fail "got: ${lines[8]}"
	[ "${lines[11]}" = "C: DATA" ]
	[ "${lines[12]}" = "S: 503 5.5.1 Error: need RCPT command" ] || fail "got: ${lines[12]}"
	[ "${#lines[@]}" -eq 13 ]
}

@test "policy reject: 550 5.7.1 for every RCPT and nothing upstream" {
	write_conf 'policy = "reject"'
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>" "RCPT TO:<postmaster@example.org>" "DATA" QUIT
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:<bob@example.org>
S: 550 5.7.1 Recipient rejected by policy
C: RCPT TO:<postmaster@example.org>
S: 550 5.7.1 Recipient rejected by policy
C: DATA
S: 554 5.5.1 No valid recipients
C: QUIT
S: 221 2.0.0 gw.test closing connection
EOF
	expect_nothing_upstream
	grep -q 'action=reject' "$DAEMON_LOG" || fail "no action=reject in the log"
}

@test "policy greylist: allowed_senders skip greylisting" {
	write_conf 'policy = "greylist"'
	start_daemon
	run simple_session
	expect_line "S: 250 2.1.5 OK"
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
}

@test "RSET clears the transaction and keeps the HELO" {
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"RSET" "RCPT TO:<bob@example.org>" "MAIL FROM:<carol@example.com>" "RSET x"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 OK
C: RSET
S: 250 2.0.0 OK
C: RCPT TO:<bob@example.org>
S: 503 5.5.1 Error: need MAIL command
C: MAIL FROM:<carol@example.com>
S: 250 2.1.0 OK
C: RSET x
S: 501 5.5.4 Syntax error
EOF
}

@test "EHLO and HELO reset the transaction" {
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"HELO client.example" "RCPT TO:<bob@example.org>" "MAIL FROM:<carol@example.com>"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: HELO client.example
S: 250 gw.test Hello client.example [127.0.0.1]
C: RCPT TO:<bob@example.org>
S: 503 5.5.1 Error: need MAIL command
C: MAIL FROM:<carol@example.com>
S: 250 2.1.0 OK
EOF
}

@test "NOOP, VRFY" {
	start_daemon
	run smtp "NOOP" "NOOP anything at all" "VRFY bob" "EHLO client.example" "VRFY <bob@example.org>"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: NOOP
S: 250 2.0.0 OK
C: NOOP anything at all
S: 250 2.0.0 OK
C: VRFY bob
S: 252 2.5.0 Cannot VRFY user
C: EHLO client.example
$(ehlo_reply client.example)
C: VRFY <bob@example.org>
S: 252 2.5.0 Cannot VRFY user
EOF
}

@test "EXPN, HELP, TURN, ETRN, AUTH, STARTTLS: 502 5.5.1" {
	start_daemon
	run smtp "EHLO client.example" "EXPN staff" "HELP" "TURN" "ETRN example.org" \
		"AUTH PLAIN AGFsaWNlAHNlY3JldA==" "STARTTLS" "NOOP"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: EXPN staff
S: 502 5.5.1 Command not implemented
C: HELP
S: 502 5.5.1 Command not implemented
C: TURN
S: 502 5.5.1 Command not implemented
C: ETRN example.org
S: 502 5.5.1 Command not implemented
C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
S: 502 5.5.1 Command not implemented
C: STARTTLS
S: 502 5.5.1 Command not implemented
C: NOOP
S: 250 2.0.0 OK
EOF
}

@test "QUIT with an argument: 501 5.5.4" {
	start_daemon
	run smtp "QUIT now" "QUIT" '!eof'
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: QUIT now
S: 501 5.5.4 Syntax error
C: QUIT
S: 221 2.0.0 gw.test closing connection
-- closed
EOF
}

@test "unknown verb: 500 5.5.2, the session goes on" {
	start_daemon
	run smtp "FOO bar" "MAILFROM:<alice@example.com>" "X-UNKNOWN" "NOOP"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: FOO bar
S: 500 5.5.2 Command unrecognized
C: MAILFROM:<alice@example.com>
S: 500 5.5.2 Command unrecognized
C: X-UNKNOWN
S: 500 5.5.2 Command unrecognized
C: NOOP
S: 250 2.0.0 OK
EOF
}

@test "command line longer than max_command_line: 500 5.5.2 Line too long, the session goes on" {
	start_daemon
	local ok510 long513 huge
	ok510=$(printf 'NOOP %0505d' 0)     # 510 + CRLF = 512 octets
	long513=$(printf 'NOOP %0506d' 0)   # 513 octets
	huge=$(printf 'NOOP %0100000d' 0)  # 100 kB
	run smtp "$ok510" "$long513" "$huge" "NOOP"
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: $ok510
S: 250 2.0.0 OK
C: $long513
S: 500 5.5.2 Line too long
C: $huge
S: 500 5.5.2 Line too long
C: NOOP
S: 250 2.0.0 OK
EOF
}

@test "bare LF in a command: 500 5.5.2 Bad line ending and close" {
	start_daemon
	run smtp '!raw NOOP\n' '!eof'
	expect_transcript <<'EOF'
S: 220 gw.test ESMTP greygate
C: NOOP\n
S: 500 5.5.2 Bad line ending
-- closed
EOF
}

@test "bare CR in a command: 500 5.5.2 Bad line ending and close" {
	start_daemon
	run smtp "EHLO client.example" '!raw MAIL FROM:<alice@example.com>\rRCPT TO:<bob@example.org>\r\n' '!eof'
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
C: MAIL FROM:<alice@example.com>\\rRCPT TO:<bob@example.org>\\r\\n
S: 500 5.5.2 Bad line ending
-- closed
EOF
}

@test "NUL in a command: 500 5.5.2 and close" {
	start_daemon
	run smtp '!raw NO\x00OP\r\n' '!eof'
	expect_transcript <<'EOF'
S: 220 gw.test ESMTP greygate
C: NO\x00OP\r\n
S: 500 5.5.2 NUL character in command
-- closed
EOF
}

@test "max_errors: 421 4.7.0 Too many errors and close" {
	write_conf "max_errors = 3"
	start_daemon
	run smtp "FOO" "BAR" "BAZ" "QUX" '!eof'
	# The third error reaches max_errors: either its reply is followed by
	# the 421, or the 421 answers the next command.  Nothing after it.
	[ "${lines[1]}" = "C: FOO" ]
	[ "${lines[2]}" = "S: 500 5.5.2 Command unrecognized" ]
	[ "${lines[3]}" = "C: BAR" ]
	[ "${lines[4]}" = "S: 500 5.5.2 Command unrecognized" ]
	[ "${lines[5]}" = "C: BAZ" ]
	local n=${#lines[@]}
	[ "${lines[n - 1]}" = "-- closed" ] || fail "$output"
	[ "${lines[n - 2]}" = "S: 421 4.7.0 Too many errors" ] || fail "$output"
	[ "$(printf '%s\n' "$output" | grep -c '^S: 500 ')" -le 3 ] || fail "$output"
	[ "$(printf '%s\n' "$output" | grep -c '^S: 421 ')" -eq 1 ] || fail "$output"
}

@test "max_errors counts every 4xx/5xx reply, not only unknown verbs" {
	write_conf "max_errors = 4" 'allowed_senders = {"10.0.0.0/8"}'
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<a@elsewhere.test>" "RCPT TO:<b@elsewhere.test>" \
		"VRFY x" "EXPN x" "RCPT TO:bad" "NOOP" "NOOP" '!eof'
	expect_line "S: 421 4.7.0 Too many errors"
	[ "${lines[${#lines[@]} - 1]}" = "-- closed" ] || fail "$output"
	refute_line "S: 250 2.0.0 OK"
}

@test "inactivity_timeout: 421 4.4.2 Timeout and close" {
	write_conf "inactivity_timeout = 2"
	start_daemon
	local t0 t1
	t0=$(now)
	run smtp "EHLO client.example" '!eof'
	t1=$(now)
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example)
S: 421 4.4.2 Timeout
-- closed
EOF
	elapsed_between "$t0" "$t1" 1.5 4.5
}

@test "inactivity_timeout before any command" {
	write_conf "inactivity_timeout = 2"
	start_daemon
	run smtp '!eof'
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
S: 421 4.4.2 Timeout
-- closed
EOF
}

@test "session_timeout: an active session is closed with 421 4.4.2 after 3 s" {
	write_conf "inactivity_timeout = 2" "session_timeout = 3"
	start_daemon
	local t0 t1
	t0=$(now)
	run smtp "EHLO client.example" \
		NOOP '!sleep 1.3' NOOP '!sleep 1.3' NOOP '!sleep 1.3' NOOP '!sleep 1.3' \
		NOOP '!sleep 1.3' NOOP '!eof'
	t1=$(now)
	# what the server said, without the client's lines
	local said
	said=$(printf '%s\n' "$output" | grep -v '^C: ')
	[ "$(tail -2 <<<"$said")" = "$(printf 'S: 421 4.4.2 Timeout\n-- closed')" ] || fail "$output"
	local oks
	oks=$(grep -c '^S: 250 2.0.0 OK' <<<"$said")
	[ "$oks" -ge 2 ] && [ "$oks" -le 3 ] || fail "$oks NOOPs answered in: $output"
	# the client's sleeps add up to 6.5 s: less proves the cut, and the
	# upper bound leaves room for a loaded machine
	elapsed_between "$t0" "$t1" 2.5 6.4
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
	smtp_bg one "!wait $T/go" QUIT
	smtp_bg two "!wait $T/go" QUIT
	wait_for_grep '^S: 220 ' "$T/one.out" 5 || fail "session one: $(cat "$T/one.out")"
	wait_for_grep '^S: 220 ' "$T/two.out" 5 || fail "session two: $(cat "$T/two.out")"
	run smtp '!eof'
	expect_transcript <<EOF
S: 421 4.7.0 Too many connections from your address
-- closed
EOF
	release "$T/go"
	wait_bg one
	wait_bg two
	for f in one two; do
		grep -qx 'S: 221 2.0.0 gw.test closing connection' "$T/$f.out" ||
			fail "session $f: $(cat "$T/$f.out")"
	done
	# the slots are free once the master has seen both sessions end
	local i
	for ((i = 0; i < 100; i++)); do
		run smtp QUIT
		[ "${lines[0]}" = "S: 220 gw.test ESMTP greygate" ] && break
		sleep 0.1
	done
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
	wait_for_grep 'action=tempfail reason=lost-connection' "$DAEMON_LOG" 10 ||
		fail "no lost-connection in the log"
	expect_nothing_upstream
	run simple_session
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>"
}
