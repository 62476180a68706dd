#!/usr/bin/env bats
# greygate in front of a real Postfix (issue 13): the upstream sees the
# real client (XCLIENT, XFORWARD), routing operators never reach it,
# recipients are verified at RCPT, and only the extensions Postfix
# announces are announced.  Each test starts its own Postfix instance
# (postfix -c $PF/etc, its own queue, data directory and log file,
# loopback high port) that delivers to mailbox files under $PF/mail
# through the virtual delivery agent, and stops it in teardown.

load common

setup() {
	command -v postfix >/dev/null || skip "postfix is not installed"
	[ "$(id -u)" -eq 0 ] || skip "a private Postfix needs root"
	common_setup
	PF=$T/pf
	PF_PORT=$SINK_PORT
	PF_STARTED=
	MAILLOG=$PF/maillog
}

teardown() {
	stop_postfix
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		echo "# ---- postfix log"
		sed 's/^/# /' "$MAILLOG" 2>/dev/null || true
	fi
	common_teardown
}

# postfix_conf [LINE...] - write $PF/etc/main.cf with LINEs added
postfix_conf() {
	mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$PF/mail"
	chown postfix "$PF/data"
	chown greygate:greygate "$PF/mail"
	cat >"$PF/etc/main.cf" <<EOC
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.good.example
mydomain = good.example
myorigin = good.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
maillog_file_prefixes = $T
maillog_file = $MAILLOG
virtual_mailbox_domains = good.example
virtual_mailbox_base = $PF/mail
virtual_mailbox_maps = texthash:$PF/etc/vmailbox
virtual_uid_maps = static:$(id -u greygate)
virtual_gid_maps = static:$(id -g greygate)
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_client_restrictions = check_client_access texthash:$PF/etc/client_access
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
disable_dns_lookups = yes
biff = no
alias_maps =
alias_database =
relayhost =
default_transport = error:no outbound mail in tests
EOC
	[ $# -eq 0 ] || printf '%s\n' "$@" >>"$PF/etc/main.cf"
	printf '%s\n' 'alice@good.example alice' 'bob@good.example bob' \
		'carol@good.example carol' 'jörg@good.example joerg' >"$PF/etc/vmailbox"
	printf '%s\n' '127.0.0.66 REJECT test client refused' >"$PF/etc/client_access"
	cat >"$PF/etc/master.cf" <<EOC
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOC
}

start_postfix() {
	postfix -c "$PF/etc" start >"$T/postfix-start.log" 2>&1 </dev/null 3>&- || {
		cat "$T/postfix-start.log" "$MAILLOG" 2>/dev/null
		fail "postfix did not start"
		return 1
	}
	PF_STARTED=1
	wait_listening "$PF_PORT" 10 || fail "postfix does not listen on $PF_PORT"
}

# reload_postfix - after postfix_conf changed main.cf
reload_postfix() {
	postfix -c "$PF/etc" reload >/dev/null 2>&1 </dev/null 3>&-
}

stop_postfix() {
	[ -n "$PF_STARTED" ] || return 0
	local pid i
	pid=$(tr -d ' ' <"$PF/queue/pid/master.pid" 2>/dev/null) || true
	postfix -c "$PF/etc" stop >/dev/null 2>&1 </dev/null 3>&- || true
	for ((i = 0; i < 100; i++)); do
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
	PF_STARTED=
}

# gw_conf [LINE...] - greygate in front of this Postfix
gw_conf() {
	write_conf 'allowed_senders = {"127.0.0.1/32"}' \
		'allowed_domains = {"good.example"}' "$@"
}

# mailbox USER - the file the virtual agent delivers USER's mail to
mailbox() {
	echo "$PF/mail/$1"
}

# wait_delivered USER [N] - until USER's mailbox holds N messages (1)
wait_delivered() {
	local i n=0
	for ((i = 0; i < 100; i++)); do
		n=$(grep -c '^From ' "$(mailbox "$1")" 2>/dev/null) || n=0
		[ "$n" -ge "${2:-1}" ] && return 0
		sleep 0.1
	done
	fail "$1 has $n message(s), expected ${2:-1}"
}

# queue_empty - nothing in Postfix's queue and nothing ever queued
queue_empty() {
	local f
	f=$(find "$PF/queue/incoming" "$PF/queue/active" "$PF/queue/deferred" \
		"$PF/queue/maildrop" "$PF/queue/hold" -type f 2>/dev/null)
	[ -z "$f" ] || fail "in Postfix's queue: $f"
	refute_grep 'postfix/cleanup.*message-id=' "$MAILLOG"
}

# msg_from ADDR HELO RCPT... - one message from client address ADDR
msg_from() {
	local src=$1 helo=$2 r rcpts=()
	shift 2
	for r in "$@"; do
		rcpts+=("RCPT TO:<$r>")
	done
	smtp_from "$src" "EHLO $helo" "MAIL FROM:<sender@outside.example>" "${rcpts[@]}" \
		DATA "+Subject: through greygate" "+" "+body" "." QUIT
}

# expect_queued - the client's dot got Postfix's "queued as"
expect_queued() {
	printf '%s\n' "$output" | grep -q '^S: 250 2.0.0 Ok: queued as' ||
		fail "not queued: $output"
}

@test "XCLIENT: Postfix's Received header and log name the real client and HELO" {
	postfix_conf 'smtpd_authorized_xclient_hosts = 127.0.0.1'
	start_postfix
	gw_conf 'policy = "accept"' 'verify_recipients = no'
	start_daemon
	run msg_from 127.0.0.5 client5.example alice@good.example
	expect_queued
	wait_delivered alice
	grep -q '^Received: from client5.example (unknown \[127.0.0.5\])' "$(mailbox alice)" ||
		fail "Received header: $(grep -A1 '^Received:' "$(mailbox alice)")"
	grep -Eq 'postfix/smtpd.*client=unknown\[127\.0\.0\.5\]' "$MAILLOG" || fail "maillog"
	grep -q 'action=pass reason=delivered .*client_info=xclient' "$DAEMON_LOG" ||
		fail "decisive line: $(grep action= "$DAEMON_LOG")"
	# Postfix's own client restriction refuses 127.0.0.66 through greygate
	run msg_from 127.0.0.66 bad.example bob@good.example
	expect_line "S: 554 5.7.1 <unknown[127.0.0.66]>: Client host rejected: test client refused"
	grep -Eq 'reject: RCPT from unknown\[127\.0\.0\.66\]: 554 5.7.1.*helo=<bad.example>' "$MAILLOG" ||
		fail "maillog"
	[ ! -e "$(mailbox bob)" ] || fail "bob got mail"
}

@test "XFORWARD: Postfix logs and records the real client address and HELO" {
	postfix_conf 'smtpd_authorized_xforward_hosts = 127.0.0.1'
	start_postfix
	gw_conf 'policy = "accept"' 'verify_recipients = no'
	start_daemon
	run msg_from 127.0.0.7 client7.example alice@good.example
	expect_queued
	wait_delivered alice
	# Postfix logs the forwarded client and greygate's session id; its
	# Received header keeps the forwarded HELO (XFORWARD_README)
	local id
	id=$(sed -n 's/.*session=\([0-9a-f]*\) .*action=pass.*/\1/p' "$DAEMON_LOG" | head -1)
	grep -Eq "postfix/smtpd.*orig_queue_id=$id, orig_client=unknown\[127\.0\.0\.7\]" "$MAILLOG" ||
		fail "maillog: no orig_client with session $id"
	grep -q '^Received: from client7.example ' "$(mailbox alice)" ||
		fail "Received header: $(grep -A1 '^Received:' "$(mailbox alice)")"
	grep -q 'action=pass reason=delivered .*client_info=xforward' "$DAEMON_LOG" ||
		fail "decisive line: $(grep action= "$DAEMON_LOG")"
}

@test "upstream_client_info = off: nothing is sent, Postfix sees greygate" {
	postfix_conf 'smtpd_authorized_xclient_hosts = 127.0.0.1'
	start_postfix
	gw_conf 'policy = "accept"' 'verify_recipients = no' 'upstream_client_info = "off"'
	start_daemon
	run msg_from 127.0.0.5 client5.example alice@good.example
	expect_queued
	wait_delivered alice
	grep -Eq 'postfix/smtpd.*client=localhost\[127\.0\.0\.1\]|postfix/smtpd.*client=unknown\[127\.0\.0\.1\]' "$MAILLOG" ||
		fail "maillog"
	grep -q 'client_info=none' "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
}

@test "routing operators: refused from outside, allowed from allowed_senders; nothing queued" {
	postfix_conf 'smtpd_authorized_xclient_hosts = 127.0.0.1'
	start_postfix
	gw_conf 'policy = "accept"' 'verify_recipients = no'
	start_daemon
	local r
	for r in 'victim%external.example@good.example' 'external.example!victim@good.example' \
		'"victim@external.example"@good.example' '@a.example,@b.example:alice@good.example'; do
		run msg_from 127.0.0.5 client5.example "$r"
		expect_line "S: 550 5.7.1 Relaying denied"
		expect_line "S: 554 5.5.1 No valid recipients"
	done
	queue_empty
	refute_grep 'RCPT from' "$MAILLOG"
	# from allowed_senders the recipient reaches Postfix, which decides
	run msg_from 127.0.0.1 client.example 'alice%good.example@good.example'
	expect_line "S: 250 2.1.5 OK"
	grep -q 'alice%good.example@good.example' "$MAILLOG" || fail "not replayed"
}

# ehlo_lines - the EHLO reply greygate gives a client from 127.0.0.5
ehlo_lines() {
	smtp_from 127.0.0.5 "EHLO client5.example" QUIT
}

@test "SMTPUTF8 and DSN: announced as Postfix does, replayed intact" {
	postfix_conf 'smtpd_authorized_xclient_hosts = 127.0.0.1'
	start_postfix
	gw_conf 'policy = "accept"' 'verify_recipients = no'
	start_daemon
	run ehlo_lines
	expect_line "S: 250-8BITMIME"
	expect_line "S: 250-DSN"
	expect_line "S: 250-SMTPUTF8"
	run smtp_from 127.0.0.5 "EHLO client5.example" \
		"MAIL FROM:<carol@good.example> SMTPUTF8 RET=HDRS ENVID=env+2Bid1" \
		"RCPT TO:<jörg@good.example>" \
		"RCPT TO:<alice@good.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Alice.Original@good.example" \
		DATA "+Subject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?=" "+" "+grüße" "." QUIT
	expect_queued
	wait_delivered joerg
	wait_delivered alice
	grep -q 'grüße' "$(mailbox joerg)" || fail "body: $(cat "$(mailbox joerg)")"
	grep -Eq 'to=<jörg@good.example>, relay=virtual.*status=sent' "$MAILLOG" || fail "maillog"
	grep -Eq 'to=<alice@good.example>, relay=virtual.*status=sent' "$MAILLOG" || fail "maillog"
	# NOTIFY=SUCCESS: Postfix tells the sender, carol, with the ORCPT,
	# the ENVID and (RET=HDRS) the headers only
	wait_delivered carol
	local dsn
	dsn=$(cat "$(mailbox carol)")
	grep -q '^Action: delivered' <<<"$dsn" || fail "no success DSN: $dsn"
	grep -q '^Original-Recipient: rfc822;Alice.Original@good.example' <<<"$dsn" ||
		fail "ORCPT did not arrive: $dsn"
	# (Postfix decodes the xtext; an SMTPUTF8 message's report is
	# message/global-*)
	grep -q '^Original-Envelope-Id: env+id1$' <<<"$dsn" || fail "ENVID did not arrive: $dsn"
	grep -q '^Content-Type: message/global-delivery-status' <<<"$dsn" ||
		fail "SMTPUTF8 did not arrive: $dsn"
	grep -q '^Content-Type: message/global-headers' <<<"$dsn" ||
		fail "RET=HDRS did not arrive: $dsn"
	# jörg had no NOTIFY: no notification for him
	[ "$(grep -c '^Action: delivered' <<<"$dsn")" -eq 1 ] || fail "$dsn"
	# a UTF-8 address without SMTPUTF8, a bad NOTIFY: refused here
	run smtp_from 127.0.0.5 "EHLO client5.example" "MAIL FROM:<jörg@good.example>" \
		"MAIL FROM:<a@outside.example>" "RCPT TO:<alice@good.example> NOTIFY=NEVER,SUCCESS" QUIT
	expect_line "S: 501 5.1.7 Bad sender address syntax"
	expect_line "S: 501 5.1.3 Bad recipient address syntax"
}

@test "extensions turned off in Postfix: greygate stops announcing them within upstream_ehlo_refresh" {
	postfix_conf 'smtpd_authorized_xclient_hosts = 127.0.0.1'
	start_postfix
	gw_conf 'policy = "accept"' 'verify_recipients = no' 'upstream_ehlo_refresh = 2'
	start_daemon
	run ehlo_lines
	expect_line "S: 250-DSN"
	expect_line "S: 250-SMTPUTF8"
	echo 'smtpd_discard_ehlo_keywords = dsn, smtputf8, 8bitmime' >>"$PF/etc/main.cf"
	reload_postfix
	local t0 i gone=
	t0=$(now)
	for ((i = 0; i < 100; i++)); do
		run ehlo_lines
		if ! printf '%s\n' "$output" | grep -q '^S: 250-DSN'; then
			gone=1
			break
		fi
		sleep 0.1
	done
	[ -n "$gone" ] || fail "DSN still announced: $output"
	# the refresh interval (2 s), plus Postfix's reload and the client
	# sessions of a loaded machine
	elapsed_between "$t0" "$(now)" 0 30
	refute_line "S: 250-SMTPUTF8"
	refute_line "S: 250-8BITMIME"
	expect_line "S: 250 ENHANCEDSTATUSCODES"
	# what was not announced is not taken, and 8-bit data is refused
	run smtp_from 127.0.0.5 "EHLO client5.example" \
		"MAIL FROM:<a@outside.example> BODY=8BITMIME" \
		"MAIL FROM:<a@outside.example> SMTPUTF8" \
		"MAIL FROM:<a@outside.example> RET=FULL" \
		"MAIL FROM:<a@outside.example>" "RCPT TO:<alice@good.example>" \
		DATA "+Subject: 8 bit" "+" "+grüße" "." QUIT
	expect_line "S: 555 5.5.4 Unsupported parameter"
	expect_line "S: 554 5.6.3 Conversion required but not supported: 8-bit data, no 8BITMIME upstream"
	[ "$(printf '%s\n' "$output" | grep -c '^S: 555 5.5.4')" -eq 3 ] || fail "$output"
	queue_empty
}

@test "verification: an unknown recipient gets Postfix's own 550 at RCPT, the first time and from the cache" {
	postfix_conf 'smtpd_authorized_xclient_hosts = 127.0.0.1'
	start_postfix
	gw_conf 'policy = "greylist"' 'verify_recipients = yes' "$(greylist_block 'delay = 1')"
	start_daemon
	local unknown="550 5.1.1 <nobody@good.example>: Recipient address rejected: User unknown in virtual mailbox table"
	run smtp_from 127.0.0.5 "EHLO client5.example" "MAIL FROM:<sender@outside.example>" \
		"RCPT TO:<nobody@good.example>" QUIT
	expect_line "S: $unknown"
	# the probe came with XCLIENT: Postfix names the real client
	grep -Eq "NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.5\]: 550 5.1.1 <nobody@good.example>.*from=<> " \
		"$MAILLOG" || fail "no probe in Postfix's log"
	grep -q 'to=<nobody@good.example> action=reject reason=unverified ' "$DAEMON_LOG" || fail "log"
	# a second message to the same recipient: from the cache, no probe
	run smtp_from 127.0.0.6 "EHLO client6.example" "MAIL FROM:<other@outside.example>" \
		"RCPT TO:<nobody@good.example>" QUIT
	expect_line "S: $unknown"
	grep -q 'reason=unverified-cached' "$DAEMON_LOG" || fail "not from the cache"
	[ "$(grep -c 'RCPT from .*to=<nobody@good.example>' "$MAILLOG")" -eq 1 ] ||
		fail "Postfix saw another probe: $(grep 'RCPT from' "$MAILLOG")"
	# not a client error, nothing queued, nothing greylisted for it
	queue_empty
	run "$top_builddir/src/greygatectl" -f "$CONF" list
	printf '%s\n' "$output" | grep -Eq "^VERIFY	verify	<>	nobody@good.example	.*	550 5.1.1" ||
		fail "greygatectl list: $output"
	if printf '%s\n' "$output" | grep -q '^GREY.*nobody'; then
		fail "greylisted: $output"
	fi
	run "$top_builddir/src/greygatectl" -f "$CONF" check 127.0.0.9 x@outside.example nobody@good.example
	[ "$output" = "reject	$unknown" ] || fail "greygatectl check: $output"
}

@test "verification: two good and one unknown recipient are delivered to the two on the first retry, no 451 4.3.0" {
	postfix_conf 'smtpd_authorized_xclient_hosts = 127.0.0.1'
	start_postfix
	gw_conf 'policy = "greylist"' 'verify_recipients = yes' "$(greylist_block 'delay = 1')"
	start_daemon
	run msg_from 127.0.0.5 client5.example alice@good.example bob@good.example nobody@good.example
	[ "$(printf '%s\n' "$output" | grep -c '^S: 451 4.7.1 Greylisted')" -eq 2 ] || fail "$output"
	expect_line "S: 550 5.1.1 <nobody@good.example>: Recipient address rejected: User unknown in virtual mailbox table"
	# probes are no greylisting pass: the good ones are still grey now
	run "$top_builddir/src/greygatectl" -f "$CONF" list
	printf '%s\n' "$output" | grep -q '^GREY.*alice@good.example.*	0	' || fail "$output"
	printf '%s\n' "$output" | grep -q '^VERIFY.*alice@good.example.*250 2.1.5' || fail "$output"
	# the retry after the delay
	local t
	t=$(($(date +%s) + 2))
	while [ "$(date +%s)" -lt "$t" ]; do sleep 0.2; done
	run msg_from 127.0.0.5 client5.example alice@good.example bob@good.example nobody@good.example
	expect_queued
	refute_line "S: 451 4.3.0 Try again later"
	wait_delivered alice
	wait_delivered bob
	[ "$(grep -c 'RCPT from .*to=<nobody@good.example>' "$MAILLOG")" -eq 1 ] ||
		fail "a second probe of nobody: $(grep 'RCPT from' "$MAILLOG")"
}

@test "verification: while one probe of a recipient runs, another session does not probe it again" {
	# Postfix takes 3 s to answer each RCPT: the first probe is slow
	postfix_conf 'smtpd_authorized_xclient_hosts = 127.0.0.1' \
		'smtpd_recipient_restrictions = sleep 3, permit'
	start_postfix
	gw_conf 'policy = "greylist"' 'verify_recipients = yes'
	start_daemon
	# the EHLO probe first, so that the next connection is the RCPT probe
	run ehlo_lines
	wait_for_grep 'disconnect from' "$MAILLOG" 10 || fail "no EHLO probe"
	SMTP_TIMEOUT=20 smtp_from 127.0.0.5 "EHLO a.example" "MAIL FROM:<a@outside.example>" \
		"RCPT TO:<carol@good.example>" QUIT >"$T/first.out" 2>&1 &
	BG_PIDS+=($!)
	local first=$!
	# the first session's probe has connected: its claim is held
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c ' connect from' "$MAILLOG")" -ge 2 ] && break
		sleep 0.1
	done
	[ "$i" -lt 100 ] || fail "no probe connected"
	run smtp_from 127.0.0.6 "EHLO b.example" "MAIL FROM:<b@outside.example>" \
		"RCPT TO:<carol@good.example>" QUIT
	expect_line "S: 451 4.7.1 Greylisted, please try again later"
	wait "$first" || true
	grep -q '^S: 451 4.7.1 Greylisted' "$T/first.out" || fail "first: $(cat "$T/first.out")"
	[ "$(grep -c 'verify to=<carol@good.example>' "$DAEMON_LOG")" -eq 1 ] ||
		fail "probes: $(grep 'verify to=' "$DAEMON_LOG")"
}
