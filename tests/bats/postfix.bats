#!/usr/bin/env bats
# A real Postfix as the sending MTA, relaying through greygate to an
# upstream that refuses one recipient (issue 12): the good recipients are
# delivered once, the bad one bounces with the upstream's own words.
# Postfix runs as its own instance (postfix -c DIR) with its queue and
# configuration under the test's directory, on high loopback ports, its
# retry timers shortened so that the whole test takes seconds.

load common

setup() {
	command -v postfix >/dev/null || skip "postfix is not installed"
	[ "$(id -u)" -eq 0 ] || skip "a Postfix instance needs root"
	id postfix >/dev/null 2>&1 || skip "no postfix user"
	getent group postdrop >/dev/null || skip "no postdrop group"
	common_setup
	PF=$T/pf
	read -r PF_PORT <<<"$(free_ports 1)"
}

teardown() {
	if [ -n "${PF:-}" ] && [ -f "$PF/queue/pid/master.pid" ]; then
		postfix -c "$PF/conf" abort >/dev/null 2>&1 || true
		local p
		p=$(tr -d ' ' <"$PF/queue/pid/master.pid" 2>/dev/null)
		[ -z "$p" ] || kill -KILL "$p" 2>/dev/null || true
	fi
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -f "$PF/maillog" ]; then
		echo "# ---- postfix maillog"
		sed 's/^/# /' "$PF/maillog"
	fi
	common_teardown
}

# start_postfix - a sending Postfix: smtpd on $PF_PORT, relayhost greygate
start_postfix() {
	mkdir -p "$PF/conf" "$PF/queue" "$PF/data"
	chown postfix "$PF/data"
	cat >"$PF/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = sender.test
mydomain = sender.test
myorigin = sender.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:$PORT
smtp_dns_support_level = disabled
maillog_file = $PF/maillog
maillog_file_prefixes = $T
alias_maps =
alias_database =
local_transport = error:no local delivery
# the retries come fast, later than nothing else
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
EOF
	cat >"$PF/conf/master.cf" <<EOF
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
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	postfix -c "$PF/conf" start >"$T/postfix-start.log" 2>&1 ||
		fail "postfix did not start: $(cat "$T/postfix-start.log" "$PF/maillog" 2>/dev/null)"
	wait_listening "$PF_PORT" 10 || fail "postfix does not listen: $(cat "$PF/maillog")"
}

@test "a real Postfix sender: the good recipients delivered once, the bad one bounces with the upstream's text" {
	start_sink reject-rcpt=bad@example.org
	# before, a refusal lived an hour and Postfix retried every 4000 s;
	# here it lives 60 s, the shortest, and Postfix retries within 2 s
	write_conf "$(greylist_block 'refusal_expire = 60')"
	start_daemon
	start_postfix
	SMTP_PORT=$PF_PORT run smtp "EHLO client.example" "MAIL FROM:<alice@sender.test>" \
		"RCPT TO:<good1@example.org>" "RCPT TO:<bad@example.org>" "RCPT TO:<good2@example.org>" \
		"DATA" "+Subject: through a real Postfix" "+" "+body" "." QUIT
	expect_line "S: 221 2.0.0 Bye"
	wait_for_grep 'to=<bad@example.org>.*status=bounced' "$PF/maillog" 50 ||
		fail "no bounce: $(cat "$PF/maillog")"
	wait_for_grep 'to=<good2@example.org>.*status=sent' "$PF/maillog" 30 ||
		fail "good2 not sent: $(cat "$PF/maillog")"
	grep -E 'to=<good1@example.org>.*status=sent' "$PF/maillog" || fail "good1 not sent"
	# the bounce carries the upstream's own words
	grep -E 'to=<bad@example.org>.*status=bounced .*said: 550 5.1.1 <bad@example.org>: User unknown' \
		"$PF/maillog" || fail "bounce text: $(grep bounced "$PF/maillog")"
	# first attempt: 451 4.3.0; then delivered, to the good ones only
	grep -E 'to=<good1@example.org>.*status=deferred.*451 4.3.0' "$PF/maillog" ||
		fail "no partial refusal first: $(cat "$PF/maillog")"
	local n
	n=$(grep -l 'RCPT TO:<good1@example.org>' "$SINK_DIR"/*.env | wc -l)
	[ "$n" -eq 1 ] || fail "good1 delivered $n times"
	n=$(grep -l 'RCPT TO:<good2@example.org>' "$SINK_DIR"/*.env | wc -l)
	[ "$n" -eq 1 ] || fail "good2 delivered $n times"
	refute_grep 'RCPT TO:<bad@example.org>' "$(grep -l 'RCPT TO:<good1@example.org>' "$SINK_DIR"/*.env)"
	grep -q 'action=reject reason=upstream-cached' "$DAEMON_LOG" || fail "$(cat "$DAEMON_LOG")"
}
