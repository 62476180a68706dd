#!/usr/bin/env bats
# Configuration checking: greygated -t, and refusing to start on a bad
# config (SPEC 1, 2).

bats_require_minimum_version 1.5.0

load common

# expect_config_error FILE LINE [TEXT] - greygated -t refuses FILE with
# "FILE:LINE: ..." on stderr (containing TEXT) and exit 1
expect_config_error() {
	local f=$1 line=$2 text=${3:-}
	run --separate-stderr "$GREYGATED" -t -f "$f"
	if [ "$status" -ne 1 ]; then
		printf 'exit %s (expected 1)\nstdout: %s\nstderr: %s\n' "$status" "$output" "$stderr"
		return 1
	fi
	if ! printf '%s\n' "$stderr" | grep -q -- "^$f:$line: .*$text"; then
		printf 'expected "%s:%s: ...%s" on stderr, got:\n%s\n' "$f" "$line" "$text" "$stderr"
		return 1
	fi
}

@test "-t on a valid config: configuration OK, exit 0" {
	run "$GREYGATED" -t -f "$CONF"
	expect_status 0
	expect_line "configuration OK"
}

@test "-t on an empty config: configuration OK" {
	: >"$T/empty.conf"
	run "$GREYGATED" -t -f "$T/empty.conf"
	expect_status 0
	expect_line "configuration OK"
}

@test "-t on the shipped config" {
	[ -f "$top_srcdir/etc/greygate.conf" ] || skip "no etc/greygate.conf"
	run "$GREYGATED" -t -f "$top_srcdir/etc/greygate.conf"
	expect_status 0
	expect_line "configuration OK"
}

@test "-t on a missing file: exit 1, the file is named" {
	run --separate-stderr "$GREYGATED" -t -f "$T/nonexistent.conf"
	expect_status 1
	printf '%s\n' "$stderr" | grep -q "$T/nonexistent.conf" || fail "stderr: $stderr"
}

@test "-t: an unknown key is refused with FILE:LINE" {
	cat >"$T/bad.conf" <<EOF
# greygate test config
port = 31025
bogus_key = 1
policy = "accept"
EOF
	expect_config_error "$T/bad.conf" 3 bogus_key
}

@test "-t: line numbers count comment lines once" {
	cat >"$T/bad.conf" <<EOF
# a comment
// another
/* and another */
port = 70000
EOF
	expect_config_error "$T/bad.conf" 4 port
}

@test "-t: a value of the wrong type is refused with FILE:LINE" {
	cat >"$T/bad.conf" <<EOF
servername = "gw.test"
port = "smtp"
EOF
	expect_config_error "$T/bad.conf" 2
}

@test "-t: port 70000 is out of range" {
	cat >"$T/bad.conf" <<EOF
servername = "gw.test"

port = 70000
EOF
	expect_config_error "$T/bad.conf" 3 port
}

@test "-t: an out-of-range value inside the greylist section" {
	cat >"$T/bad.conf" <<EOF
policy = "accept"
greylist {
	delay = 300
	ipv4_prefix = 40
}
EOF
	expect_config_error "$T/bad.conf" 4 ipv4_prefix
}

@test "-t: a bad policy name is refused with FILE:LINE" {
	cat >"$T/bad.conf" <<EOF
port = 31025
policy = "maybe"
EOF
	expect_config_error "$T/bad.conf" 2 policy
}

@test "-t: a prefix-style network points to the CIDR form" {
	cat >"$T/bad.conf" <<EOF
port = 31025
allowed_senders = {"127.0.0.1/8", "192.168.2"}
EOF
	expect_config_error "$T/bad.conf" 2
	[ "$stderr" = "$T/bad.conf:2: 192.168.2 is not a valid address or CIDR network; did you mean 192.168.2.0/24?" ] ||
		fail "stderr: $stderr"
}

@test "-t: '10.' as a network points to 10.0.0.0/8" {
	cat >"$T/bad.conf" <<EOF
allowed_sender_nets = {"10."}
EOF
	expect_config_error "$T/bad.conf" 1 "10.0.0.0/8"
}

@test "-t: an invalid CIDR is refused" {
	cat >"$T/bad.conf" <<EOF
port = 31025
allowed_senders = {"10.0.0.0/33"}
EOF
	expect_config_error "$T/bad.conf" 2
}

@test "-t: a syntax error is refused with FILE:LINE" {
	cat >"$T/bad.conf" <<EOF
port = 31025
policy = "accept
servername = "gw.test"
EOF
	run --separate-stderr "$GREYGATED" -t -f "$T/bad.conf"
	expect_status 1
	printf '%s\n' "$stderr" | grep -q "^$T/bad.conf:[0-9][0-9]*: " || fail "stderr: $stderr"
}

@test "nothing starts on a bad config" {
	write_conf "bogus_key = 1"
	run --separate-stderr timeout 10 "$GREYGATED" -d -f "$CONF"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || fail "exit status $status"
	printf '%s\n' "$stderr" | grep -q "^$CONF:[0-9]*: .*bogus_key" || fail "stderr: $stderr"
	if port_listening "$PORT"; then fail "greygated is listening on $PORT"; fi
	[ ! -e "$PIDFILE" ]
}

@test "an address that cannot be bound stops the start" {
	write_conf 'listen = {"192.0.2.1"}'
	run timeout 10 "$GREYGATED" -d -f "$CONF"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || fail "exit status $status"
	printf '%s\n' "$output" | grep -q '192.0.2.1' || fail "the address is not named: $output"
}
