#!/usr/bin/env bats
# Replay to the upstream server and what the client is told (SPEC 3.4).

load common

UNAVAILABLE="451 4.4.1 Upstream server unavailable, try again later"

TX_SUBJECT="upstream test"

@test "delivered: the client gets upstream's own 250, the envelope is replayed" {
	start_sink
	start_daemon
	run transaction
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
C: Subject: upstream test
C: 
C: body
C: .
S: 250 2.0.0 Ok: queued as 0001
C: QUIT
S: 221 2.0.0 gw.test closing connection
EOF
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>"
	grep -qx QUIT "$SINK_DIR/transcript" || fail "greygate did not QUIT upstream: $(cat "$SINK_DIR/transcript")"
}

@test "the client's EHLO and MAIL parameters are replayed as sent" {
	start_sink
	start_daemon
	run smtp "EHLO Client.Example" "MAIL FROM:<alice@example.com> SIZE=42 BODY=8BITMIME" \
		"RCPT TO:<bob@example.org>" "DATA" "+x" "." QUIT
	expect_final_reply "250 2.0.0 Ok: queued as 0001"
	local env
	env=$(cat "$SINK_DIR/0001.env")
	[ "$(sed -n 1p <<<"$env")" = "EHLO Client.Example" ] || fail "envelope: $env"
	sed -n 2p <<<"$env" | grep -iqx 'MAIL FROM:<alice@example.com> SIZE=42 BODY=8BITMIME' ||
		fail "envelope: $env"
}

@test "a HELO client is replayed with HELO" {
	start_sink
	start_daemon
	run smtp "HELO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+x" "."
	expect_line "S: 250 2.0.0 Ok: queued as 0001"
	expect_sink_env 1 "HELO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>"
}

@test "upstream down: 451 4.4.1, and the session goes on" {
	write_conf "smtp_port = $DEAD_PORT"
	start_daemon
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+Subject: nowhere" "+" "+body" "." "MAIL FROM:<alice@example.com>" QUIT
	expect_transcript <<EOF
S: 220 gw.test ESMTP greygate
C: EHLO client.example
$(ehlo_reply_conservative client.example)
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: RCPT TO:<bob@example.org>
S: 250 2.1.5 OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: nowhere
C: 
C: body
C: .
S: $UNAVAILABLE
C: MAIL FROM:<alice@example.com>
S: 250 2.1.0 OK
C: QUIT
S: 221 2.0.0 gw.test closing connection
EOF
	grep -q 'action=tempfail' "$DAEMON_LOG" || fail "no action=tempfail in the log"
}

@test "upstream rejects MAIL: its 550 5.7.1 is relayed at the end of data" {
	start_sink reject-mail
	start_daemon
	run transaction
	expect_line "S: 250 2.1.0 OK"
	expect_final_reply "550 5.7.1 <alice@example.com>: Sender address rejected: Access denied"
	expect_delivered 0
}

@test "upstream rejects DATA: its 554 is relayed" {
	start_sink reject-datacmd
	start_daemon
	run transaction
	expect_final_reply "554 5.5.1 Error: DATA refused by sink"
	expect_delivered 0
}

@test "upstream rejects the data: its 554 5.7.1 is relayed" {
	start_sink reject-data
	start_daemon
	run transaction
	expect_final_reply "554 5.7.1 Error: message content rejected"
	expect_delivered 0
}

@test "upstream tempfails the data: its 451 4.3.0 is relayed" {
	start_sink tempfail-data
	start_daemon
	run transaction
	expect_final_reply "451 4.3.0 Error: queue file write error"
	expect_delivered 0
}

@test "upstream closes at the final dot: 451 4.4.1" {
	start_sink close-at-dot
	start_daemon
	run transaction
	expect_final_reply "$UNAVAILABLE"
	expect_delivered 0
}

@test "upstream closes after MAIL: 451 4.4.1" {
	start_sink close-after-mail
	start_daemon
	run transaction
	expect_final_reply "$UNAVAILABLE"
	expect_delivered 0
}

# slow_dot MODE MAX: a sink in MODE that is slow to answer the final
# dot; with replay_timeout = 2 (the dot waits for what is left of the
# replay's deadline, not for upstream_timeout) the client gets 451
# 4.4.1 at least 1.5 s after it started and at most MAX seconds after
# the dot reached the sink (a loaded machine may take long before), and
# nothing is delivered
slow_dot() {
	start_sink "$1"
	write_conf "replay_timeout = 2" "upstream_timeout = 1"
	start_daemon
	local t0 t1
	t0=$(now)
	run smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>" \
		"DATA" "+Subject: $1" "+" "+body" "." QUIT
	t1=$(now)
	expect_final_reply "$UNAVAILABLE"
	expect_delivered 0
	elapsed_between "$t0" "$t1" 1.5 60
	elapsed_between "$(stat -c %.3Y "$SINK_DIR/0001.rejected")" "$t1" 0 "$2"
}

@test "upstream never answers the final dot: 451 4.4.1 at the replay's deadline" {
	slow_dot hang-at-dot 5
}

@test "upstream drips its reply to the dot: 451 4.4.1 at the replay's deadline, not later" {
	# the sink would take 22 s to finish its reply
	slow_dot drip-at-dot 6
	grep -q 'timed out waiting for a reply' "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
}

@test "upstream greets with 554: 451 4.4.1" {
	start_sink banner-fail
	start_daemon
	run transaction
	expect_final_reply "$UNAVAILABLE"
	expect_delivered 0
}

@test "upstream rejects every recipient: the first rejection is relayed" {
	start_sink reject-all-rcpt
	start_daemon
	run transaction bob@example.org carol@example.org
	expect_final_reply "550 5.1.1 <bob@example.org>: User unknown"
	expect_delivered 0
}

@test "upstream rejects one of two recipients: 451 4.3.0, nothing delivered" {
	start_sink reject-rcpt=carol@example.org
	start_daemon
	run transaction bob@example.org carol@example.org
	expect_final_reply "451 4.3.0 Try again later"
	expect_delivered 0
}

@test "after a partial rejection the retry gets upstream's rejection at RCPT" {
	start_sink reject-rcpt=carol@example.org
	start_daemon
	run transaction bob@example.org carol@example.org
	expect_final_reply "451 4.3.0 Try again later"
	run transaction bob@example.org carol@example.org
	expect_line "S: 550 5.1.1 <carol@example.org>: User unknown"
	expect_delivered 1
	local n
	n=$(basename "$(sink_msgs)" .msg)
	expect_final_reply "250 2.0.0 Ok: queued as $n"
	expect_sink_env "$((10#$n))" "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>"
}

# policy_pid - the policy process among the master's children
policy_pid() {
	local p
	for p in $(workers); do
		if grep -q 'policy' "/proc/$p/cmdline" 2>/dev/null; then
			echo "$p"
		fi
	done
	return 0
}

# frozen_transaction RCPT... - transaction with the policy process
# stopped (SIGSTOP) meanwhile; its start and end times in $t0, $t1
frozen_transaction() {
	local pp
	pp=$(policy_pid)
	[ -n "$pp" ] || fail "no policy process"
	kill -STOP "$pp"
	t0=$(now)
	run transaction "$@"
	t1=$(now)
	kill -CONT "$pp"
}

@test "RCPT asks about remembered refusals only when one can be live" {
	start_sink reject-rcpt=carol@example.org
	start_daemon
	local t0 t1
	# nothing refused yet: a frozen policy process delays nobody
	frozen_transaction bob@example.org
	expect_final_reply "250 2.0.0 Ok: queued as 0001"
	elapsed_between "$t0" "$t1" 0 3
	run transaction bob@example.org carol@example.org
	expect_final_reply "451 4.3.0 Try again later"
	# a refusal is remembered now: every RCPT asks, and waits for a
	# frozen policy process (5 s at most) before it goes on
	frozen_transaction dave@example.org
	expect_final_reply "250 2.0.0 Ok: queued as 0002"
	elapsed_between "$t0" "$t1" 4.5 12
	# a daemon started anew learns it from the store
	stop_daemon
	start_daemon
	frozen_transaction erin@example.org
	expect_final_reply "250 2.0.0 Ok: queued as 0003"
	elapsed_between "$t0" "$t1" 4.5 12
	run transaction bob@example.org carol@example.org
	expect_line "S: 550 5.1.1 <carol@example.org>: User unknown"
}

@test "upstream without PIPELINING: delivered, no pipelining towards it" {
	start_sink no-pipelining
	start_daemon
	run transaction bob@example.org carol@example.org
	expect_final_reply "250 2.0.0 Ok: queued as 0001"
	refute_grep VIOLATION "$SINK_DIR/transcript"
	expect_sink_env 1 "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>" "RCPT TO:<carol@example.org>"
}

@test "upstream with PIPELINING: delivered, DATA waits for the 354" {
	start_sink
	start_daemon
	run transaction bob@example.org carol@example.org dave@example.org
	expect_final_reply "250 2.0.0 Ok: queued as 0001"
	refute_grep VIOLATION "$SINK_DIR/transcript"
}

@test "upstream refuses EHLO: greygate falls back to HELO" {
	start_sink reject-ehlo
	start_daemon
	run transaction
	expect_final_reply "250 2.0.0 Ok: queued as 0001"
	expect_sink_env 1 "EHLO client.example" "HELO client.example" \
		"MAIL FROM:<alice@example.com>" "RCPT TO:<bob@example.org>"
}

@test "multi-line upstream replies are read whole and relayed whole" {
	start_sink multiline
	start_daemon
	run transaction
	expect_final_reply "250-2.0.0 Ok: queued as 0001" "250 2.0.0 sink.test multiline end"
	expect_delivered 1
}

@test "a multi-line upstream rejection is relayed whole" {
	start_sink multiline reject-data
	start_daemon
	run transaction
	expect_final_reply "554-5.7.1 Error: message content rejected" "554 5.7.1 sink.test multiline end"
	expect_delivered 0
}

@test "Postfix smtp-sink upstream, swaks client" {
	command -v smtp-sink >/dev/null || skip "smtp-sink is not installed"
	command -v swaks >/dev/null || skip "swaks is not installed"
	mkdir -p "$T/dump"
	chmod 777 "$T/dump"
	local u=()
	[ "$(id -u)" -ne 0 ] || u=(-u nobody)
	smtp-sink "${u[@]}" -d "$T/dump/%Y%m%d%H%M%S." "127.0.0.1:$SINK_PORT" 10 \
		>"$T/smtp-sink.log" 2>&1 3>&- </dev/null &
	SINK_PID=$!
	wait_listening "$SINK_PORT" || fail "smtp-sink does not listen: $(cat "$T/smtp-sink.log")"
	start_daemon
	run swaks --server "127.0.0.1:$PORT" --helo client.example \
		--from alice@example.com --to bob@example.org --timeout 10 \
		--header "Subject: swaks through greygate" --body "hello from swaks"
	expect_status 0
	printf '%s\n' "$output" | grep -q '^<-  250 2.0.0 Ok' || fail "$output"
	wait_for_grep 'X-Rcpt-Args: <bob@example.org>' "$(ls "$T"/dump/* 2>/dev/null | head -1)" 3 ||
		fail "nothing dumped by smtp-sink"
	grep -q '^X-Mail-Args: <alice@example.com>' "$T"/dump/*
	grep -q '^X-Helo-Args: client.example' "$T"/dump/*
	grep -q '^hello from swaks' "$T"/dump/*
}

@test "Postfix smtp-sink upstream, swaks client with pipelining" {
	command -v smtp-sink >/dev/null || skip "smtp-sink is not installed"
	command -v swaks >/dev/null || skip "swaks is not installed"
	local u=()
	[ "$(id -u)" -ne 0 ] || u=(-u nobody)
	smtp-sink "${u[@]}" "127.0.0.1:$SINK_PORT" 10 >"$T/smtp-sink.log" 2>&1 3>&- </dev/null &
	SINK_PID=$!
	wait_listening "$SINK_PORT" || fail "smtp-sink does not listen: $(cat "$T/smtp-sink.log")"
	start_daemon
	run swaks --server "127.0.0.1:$PORT" --helo client.example --pipeline \
		--from alice@example.com --to bob@example.org,carol@example.org --timeout 10
	expect_status 0
	printf '%s\n' "$output" | grep -q '^<-  250 2.0.0 Ok' || fail "$output"
}
