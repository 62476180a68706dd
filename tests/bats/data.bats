#!/usr/bin/env bats
# Message data: end-of-data framing, SMTP smuggling, limits, byte-exact
# delivery, and bounded memory for a large message (SPEC 3.3).

load common

setup() {
	common_setup
	start_sink
	start_daemon
}

# smuggle ENDING REPLY - embed ENDING and a second transaction in a message
# that really ends later with CRLF.CRLF; the client must get REPLY and
# nothing may reach the sink
smuggle() {
	local ending=$1 reply=$2
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" \
		"!raw Subject: smuggling\r\n\r\nhello${ending}MAIL FROM:<mallory@evil.test>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nowned\r\n" \
		"." QUIT '!eof'
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
C: Subject: smuggling\\r\\n\\r\\nhello${ending}MAIL FROM:<mallory@evil.test>\\r\\nRCPT TO:<victim@example.org>\\r\\nDATA\\r\\nSubject: smuggled\\r\\n\\r\\nowned\\r\\n
C: .
S: $reply
C: QUIT
S: 221 2.0.0 gw.test closing connection
-- closed
EOF
	expect_nothing_upstream
}

# vmhwm PID - peak resident set size of PID in kB (empty if it is gone)
vmhwm() {
	awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

# sanitized - greygated is built with AddressSanitizer (RSS means nothing)
sanitized() {
	ldd "$GREYGATED" 2>/dev/null | grep -q 'lib[at]san' ||
		nm "$GREYGATED" 2>/dev/null | grep -q '__asan_init'
}

BARE="554 5.6.0 Message contains bare CR or LF"
NUL="554 5.6.0 Message contains NUL character"

@test 'smuggling: \n.\n does not end the data: 554 5.6.0, nothing upstream' {
	smuggle '\n.\n' "$BARE"
}

@test 'smuggling: \n.\r does not end the data: 554 5.6.0, nothing upstream' {
	smuggle '\n.\r' "$BARE"
}

@test 'smuggling: \r.\n does not end the data: 554 5.6.0, nothing upstream' {
	smuggle '\r.\n' "$BARE"
}

@test 'smuggling: \r.\r does not end the data: 554 5.6.0, nothing upstream' {
	smuggle '\r.\r' "$BARE"
}

@test 'smuggling: \n.\r\n does not end the data: 554 5.6.0, nothing upstream' {
	smuggle '\n.\r\n' "$BARE"
}

@test 'smuggling: \r.\r\n does not end the data: 554 5.6.0, nothing upstream' {
	smuggle '\r.\r\n' "$BARE"
}

@test 'smuggling: \r\n\x00.\r\n does not end the data: 554 5.6.0, nothing upstream' {
	smuggle '\r\n\x00.\r\n' "$NUL"
}

@test 'smuggling: \r\n.\r\r\n does not end the data: 554 5.6.0, nothing upstream' {
	smuggle '\r\n.\r\r\n' "$BARE"
}

@test "bare LF inside a line: 554 5.6.0" {
	smuggle '\nX-Injected: 1\r\n' "$BARE"
}

@test "bare CR inside a line: 554 5.6.0" {
	smuggle ' and \r carriage\r\n' "$BARE"
}

@test "NUL inside a line: 554 5.6.0 Message contains NUL character" {
	smuggle ' and \x00 nul\r\n' "$NUL"
}

@test "after a smuggling attempt the session goes on and the next message is clean" {
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" '!raw hello\n.\nMAIL FROM:<mallory@evil.test>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nowned\r\n' \
		"." \
		"MAIL FROM:<carol@example.com>" "RCPT TO:<dave@example.org>" "DATA" "+clean" "."
	expect_line "S: $BARE"
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<carol@example.com>" "RCPT TO:<dave@example.org>"
	printf 'clean\r\n' >"$T/want"
	expect_same_bytes "$T/want" "$SINK_DIR/0001.msg"
	refute_grep mallory "$SINK_DIR/transcript"
}

@test "byte-exact delivery: dot-stuffed lines, 8-bit bytes, long lines, empty lines" {
	{
		printf 'Subject: exact\r\nFrom: <alice@example.com>\r\nContent-Type: text/plain; charset=latin1\r\n\r\n'
		printf '..\r\n'
		printf '...three dots\r\n'
		printf '..leading dot\r\n'
		printf '.. \r\n'
		printf 'trailing spaces   \r\n'
		printf '\ttab\r\n'
		printf '8bit: caf\xe9 \xc3\xa9 \xff\x80 \x01\x7f\x1b\r\n'
		printf '\r\n'
		printf '\r\n'
		printf '%0998d\r\n' 7
		printf 'last line\r\n'
	} >"$T/message"
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com> BODY=8BITMIME" \
		"RCPT TO:<bob@example.org>" "DATA" "!file $T/message" "." QUIT
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
	expect_same_bytes "$T/message" "$SINK_DIR/0001.msg"
}

@test "an empty message is delivered as such" {
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "." QUIT
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
	[ ! -s "$SINK_DIR/0001.msg" ] || fail "0001.msg is not empty: $(od -c "$SINK_DIR/0001.msg")"
}

@test "the end of data split across writes" {
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" '!raw line one\r' '!drained' '!raw \nline two\r\n.' '!drained' \
		'!raw \r' '!drained' '!raw \n' '!read' QUIT
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	printf 'line one\r\nline two\r\n' >"$T/want"
	expect_same_bytes "$T/want" "$SINK_DIR/0001.msg"
}

@test "several messages in one session" {
	run smtp "EHLO client.example" \
		"MAIL FROM:<a1@example.com>" "RCPT TO:<b1@example.org>" "DATA" "+one" "." \
		"MAIL FROM:<a2@example.com>" "RCPT TO:<b2@example.org>" "RCPT TO:<c2@example.org>" \
		"DATA" "+two" "." \
		"MAIL FROM:<a3@example.com>" "RSET" \
		"MAIL FROM:<a4@example.com>" "RCPT TO:<b4@example.org>" "DATA" "+four" "." QUIT
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_line "S: 250 2.0.0 Ok: queued as 0002"
	expect_line "S: 250 2.0.0 Ok: queued as 0003"
	expect_delivered 3
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<a1@example.com>" "RCPT TO:<b1@example.org>"
	expect_sink_env 2 "EHLO client.example" "MAIL FROM:<a2@example.com>" \
		"RCPT TO:<b2@example.org>" "RCPT TO:<c2@example.org>"
	expect_sink_env 3 "EHLO client.example" "MAIL FROM:<a4@example.com>" "RCPT TO:<b4@example.org>"
	[ "$(cat "$SINK_DIR/0002.msg")" = $'two\r' ]
	refute_grep 'a3@example.com' "$SINK_DIR/transcript"
}

@test "a text line of exactly max_text_line octets is delivered" {
	local line
	line=$(printf '%0998d' 1) # 998 + CRLF = 1000 octets
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+$line" "."
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
}

@test "a text line longer than max_text_line: 554 5.6.0 Line too long, nothing upstream" {
	local line
	line=$(printf '%0999d' 1) # 1001 octets
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+Subject: long" "+" "+$line" "+short again" "." "NOOP"
	expect_line "S: 554 5.6.0 Line too long"
	[ "${lines[${#lines[@]} - 1]}" = "S: 250 2.0.0 OK" ] || fail "$output"
	expect_nothing_upstream
}

@test "a very long line (1 MB without CRLF) is read to the end and refused" {
	python3 -c 'import sys; sys.stdout.buffer.write(b"Subject: big line\r\n\r\n" + b"x" * 1048576 + b"\r\nend\r\n")' >"$T/message"
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "!file $T/message" "." "NOOP"
	expect_line "S: 554 5.6.0 Line too long"
	expect_line "S: 250 2.0.0 OK"
	expect_nothing_upstream
}

@test "max_text_line is configurable" {
	stop_daemon
	write_conf "max_text_line = 2000"
	start_daemon
	local line
	line=$(printf '%01500d' 1)
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+$line" "."
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
}

@test "over max_message_size: 552 5.3.4 at the end of the data, nothing upstream" {
	stop_daemon
	write_conf "max_message_size = 2048"
	start_daemon
	python3 -c 'import sys; sys.stdout.buffer.write(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 60)' >"$T/message"
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "!file $T/message" "." \
		"MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" "DATA" "+small" "."
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply client.example 2048)
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: [4336 bytes from message]
C: .
S: 552 5.3.4 Message size exceeds fixed limit
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: small
C: .
S: 250 2.0.0 Ok: queued as 0001
EOF
	expect_delivered 1
	refute_grep '^# data 4336' "$SINK_DIR/transcript"
}

@test "inactivity in the middle of the data: 421 4.4.2, nothing upstream" {
	stop_daemon
	write_conf "inactivity_timeout = 2"
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+Subject: slow" '!eof'
	expect_line "S: 421 4.4.2 Timeout"
	[ "${lines[${#lines[@]} - 1]}" = "-- closed" ]
	expect_nothing_upstream
}

@test "a 50 MB message is delivered byte-exact; the worker's peak RSS stays below 16 MiB" {
	stop_daemon
	write_conf "max_message_size = 104857600" "inactivity_timeout = 60" "upstream_timeout = 60"
	start_daemon
	# 50 MiB of 80-octet lines; every 100th line is dot-stuffed
	python3 - "$T/big" <<'PYEOF'
import sys
size = 50 * 1024 * 1024
with open(sys.argv[1], "wb") as f:
    f.write(b"Subject: fifty megabytes\r\n\r\n")
    n, i = 28, 0
    while n < size:
        head = b".." if i % 100 == 0 else b"x"
        line = head + (b"%08d " % i) + b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        line = line[:78] + b"\r\n"
        f.write(line)
        n += len(line)
        i += 1
PYEOF
	SMTP_TIMEOUT=60 smtp_bg big "EHLO client.example" \
		"MAIL FROM:<alice@example.com> SIZE=$(stat -c %s "$T/big")" "RCPT TO:<bob@example.org>" \
		"DATA" "!file $T/big" "." "!wait $T/go" QUIT
	local peak=0 who= p hwm sampled=0 replied=
	while kill -0 "$BG_big" 2>/dev/null; do
		# the session ends once a sample was taken after the reply
		[ -z "$replied" ] || release "$T/go"
		grep -q '^S: 250 2.0.0' "$T/big.out" && replied=1
		for p in $(session_pids); do
			[ "$p" != "$DAEMON_PID" ] || continue
			hwm=$(vmhwm "$p")
			[ -n "$hwm" ] || continue
			sampled=1
			if [ "$hwm" -gt "$peak" ]; then
				peak=$hwm
				who=$p
			fi
		done
		sleep 0.1
	done
	wait_bg big
	run cat "$T/big.out"
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_delivered 1
	[ "$(sha256sum <"$T/big")" = "$(sha256sum <"$SINK_DIR/0001.msg")" ] ||
		fail "the message at the sink differs ($(stat -c %s "$SINK_DIR/0001.msg") octets, sent $(stat -c %s "$T/big"))"
	[ "$sampled" -eq 1 ] || fail "could not sample the worker's memory"
	echo "# worker $who peak RSS ${peak} kB" >&3
	if sanitized; then
		echo "# (sanitizer build: the 16 MiB bound is not checked)" >&3
	else
		[ "$peak" -lt 16384 ] || fail "worker $who peak RSS ${peak} kB >= 16 MiB"
	fi
}
