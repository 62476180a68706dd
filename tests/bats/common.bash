# common.bash - helpers shared by greygate's bats tests.
#
# Every test gets its own directory ($T = $BATS_TEST_TMPDIR), its own free
# loopback ports ($PORT for greygated, $SINK_PORT for the upstream sink,
# $DEAD_PORT where nothing listens), a config written by write_conf, and a
# teardown that stops everything the test started.  Nothing here knows what
# the daemon should answer: the .bats files say that, as transcripts.
#
# The raw client ("smtp") prints a transcript: "C: " for what it sent,
# "S: " for what the server said (CRLF stripped; other control bytes shown
# as \r, \n, \xNN), "-- closed" when the server closed the connection.
# Its arguments are steps:
#   TEXT          send TEXT CRLF (with anything queued) and read one reply
#   +TEXT         queue TEXT CRLF; queued bytes go out in one write
#   !raw BYTES    queue BYTES, with \r \n \t \xNN \\ escapes
#   !file PATH    queue the contents of PATH
#   !flush        send what is queued
#   !read [N]     read N replies (default 1)
#   !readline     read one line
#   !sleep S      send what is queued, then sleep S seconds (only where
#                 the time itself is tested: to hold a session open
#                 until the test has looked, use !wait)
#   !wait PATH    send what is queued, then wait until PATH exists (the
#                 test creates it: release PATH); "-- no PATH" and the
#                 end of the script if it does not within SMTP_WAIT
#                 seconds (60)
#   !drained      send what is queued, then wait until the server has
#                 read all of it (its socket's receive queue is empty in
#                 /proc/net/tcp): the next bytes arrive in a later read
#   !eof          read until the server closes ("-- closed") or
#                 SMTP_TIMEOUT passes ("-- still open")
#   !nogreet      (first step only) do not wait for the greeting
# The greeting is read before the first step.  A step that finds the
# connection closed prints "-- closed" and ends the script.

: "${top_srcdir:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
GREYGATED="$top_builddir/src/greygated"
SINK_PY="$top_srcdir/tests/sink.py"
SERVERNAME=gw.test

# The raw SMTP client, run with python3 -c.
SMTP_CLIENT_PY=$(
	cat <<'PYEOF'
import codecs, os, select, socket, sys, time

port = int(sys.argv[1])
steps = sys.argv[2:]
timeout = float(os.environ.get("SMTP_TIMEOUT", "10"))


class Done(Exception):
    pass


def say(s):
    sys.stdout.write(s + "\n")
    sys.stdout.flush()


def esc(b):
    out = []
    for c in b:
        if c == 0x5C:
            out.append("\\\\")
        elif c == 0x0D:
            out.append("\\r")
        elif c == 0x0A:
            out.append("\\n")
        elif c == 0x09:
            out.append("\\t")
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


try:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
except ConnectionRefusedError:
    say("-- connection refused")
    sys.exit(0)
except OSError as e:
    say("-- connect failed: %s" % e)
    sys.exit(0)

buf = bytearray()
pend = bytearray()


def closed():
    if buf:
        say("S: " + esc(bytes(buf)) + " [unterminated]")
        buf.clear()
    say("-- closed")
    raise Done()


def flush():
    if pend:
        try:
            s.sendall(bytes(pend))
        except OSError:
            pend.clear()
            closed()
        pend.clear()


def fill(deadline, quiet=False):
    left = deadline - time.monotonic()
    if left <= 0:
        return False
    r, _, _ = select.select([s], [], [], left)
    if not r:
        return False
    try:
        data = s.recv(65536)
    except OSError:
        data = b""
    if not data:
        closed()
    buf.extend(data)
    return True


def readline():
    flush()
    deadline = time.monotonic() + timeout
    while True:
        i = buf.find(b"\n")
        if i >= 0:
            line = bytes(buf[: i + 1])
            del buf[: i + 1]
            if line.endswith(b"\r\n"):
                say("S: " + esc(line[:-2]))
            else:
                say("S: " + esc(line[:-1]) + " [bare LF]")
            return line
        if not fill(deadline):
            say("-- timeout")
            raise Done()


def readreply():
    while True:
        line = readline()
        if line[3:4] != b"-":
            return


def queues():
    """(our send queue, the server's receive queue) for this connection"""
    me = "%04X" % s.getsockname()[1]
    srv = "%04X" % port
    mine = theirs = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fld = line.split()
            lp = fld[1].split(":")[1]
            rp = fld[2].split(":")[1]
            tx, rx = (int(x, 16) for x in fld[4].split(":"))
            if lp == me and rp == srv:
                mine = tx
            elif lp == srv and rp == me:
                theirs = rx
    return mine, theirs


def drained():
    flush()
    deadline = time.monotonic() + timeout
    while queues() != (0, 0):
        if time.monotonic() > deadline:
            say("-- not read by the server after %g s" % timeout)
            raise Done()
        time.sleep(0.01)


def queue(data, shown):
    pend.extend(data)
    say("C: " + shown)


try:
    if steps and steps[0] == "!nogreet":
        steps = steps[1:]
    else:
        readreply()
    for step in steps:
        if step.startswith("!"):
            op, _, arg = step[1:].partition(" ")
            if op == "raw":
                data = codecs.escape_decode(arg.encode("latin-1"))[0]
                queue(data, esc(data))
            elif op == "file":
                with open(arg, "rb") as f:
                    data = f.read()
                queue(data, "[%d bytes from %s]" % (len(data), os.path.basename(arg)))
            elif op == "flush":
                flush()
            elif op == "drained":
                drained()
            elif op == "read":
                for _ in range(int(arg or "1")):
                    readreply()
            elif op == "readline":
                readline()
            elif op == "sleep":
                flush()
                time.sleep(float(arg))
            elif op == "wait":
                flush()
                deadline = time.monotonic() + float(os.environ.get("SMTP_WAIT", "60"))
                while not os.path.exists(arg):
                    if time.monotonic() > deadline:
                        say("-- no %s" % arg)
                        raise Done()
                    time.sleep(0.05)
            elif op == "eof":
                flush()
                deadline = time.monotonic() + timeout
                while True:
                    i = buf.find(b"\n")
                    if i >= 0:
                        readline()
                        continue
                    if not fill(deadline):
                        say("-- still open")
                        raise Done()
            else:
                say("-- bad step %r" % step)
                sys.exit(2)
        elif step.startswith("+"):
            queue(step[1:].encode("utf-8") + b"\r\n", step[1:])
        else:
            queue(step.encode("utf-8") + b"\r\n", step)
            readreply()
except Done:
    pass
finally:
    try:
        s.close()
    except OSError:
        pass
PYEOF
)

# fail MESSAGE - print MESSAGE and fail the test
# Debian's own python3 first: a python3 of a version manager (a pyenv
# shim) on PATH costs seconds a start on a loaded machine, and the
# tests start one for every SMTP session.
if [ -x /usr/bin/python3 ]; then
	PATH=/usr/bin:$PATH
fi

fail() {
	printf '%s\n' "$@" >&2
	return 1
}

# free_ports N - print N distinct loopback TCP ports that are free right now,
# below the ephemeral range so that no outgoing connection takes one first
free_ports() {
	python3 "$top_srcdir/tests/free_ports.py" "$1"
}

# ensure_greygate_user - the daemon drops to greygate:greygate (policy
# process) and greygate-worker:greygate-worker (workers) when root
ensure_greygate_user() {
	[ "$(id -u)" -eq 0 ] || return 0
	local u
	for u in greygate greygate-worker; do
		id "$u" >/dev/null 2>&1 ||
			adduser --system --group --no-create-home --quiet "$u" >/dev/null 2>&1 ||
			id "$u" >/dev/null 2>&1 || return 1
	done
}

common_setup() {
	[ -x "$GREYGATED" ] || skip "greygated is not built ($GREYGATED)"
	T=$BATS_TEST_TMPDIR
	ensure_greygate_user
	# the unprivileged workers must reach the spool under $T
	local d=$T
	while [ -n "$d" ] && [ "$d" != / ] && [ "$d" != /tmp ]; do
		chmod a+rx "$d"
		d=$(dirname "$d")
	done
	read -r PORT SINK_PORT DEAD_PORT <<<"$(free_ports 3)"
	CONF=$T/greygate.conf
	DAEMON_LOG=$T/daemon.log
	SINK_DIR=$T/sink
	PIDFILE=$T/run/greygated.pid
	STORE=$T/db/greylist.db
	DAEMON_PID=
	DAEMON_STOPPED=
	SINK_PID=
	BG_PIDS=()
	mkdir -p "$T/spool" "$T/run" "$SINK_DIR"
	if [ "$(id -u)" -eq 0 ]; then
		chown greygate-worker:greygate-worker "$T/spool"
	fi
	write_conf
}

setup() {
	common_setup
}

teardown() {
	common_teardown
}

# descendants PID - every process below PID, deepest first
descendants() {
	local c
	for c in $(pgrep -P "$1" 2>/dev/null); do
		descendants "$c"
		echo "$c"
	done
}

# pids_mentioning DIR - processes whose command line names DIR (ours)
pids_mentioning() {
	local p cmd
	for p in /proc/[0-9]*; do
		cmd=$( (tr '\0' ' ' <"$p/cmdline") 2>/dev/null) || continue
		case $cmd in *"$1"/*) echo "${p#/proc/}" ;; esac
	done
}

common_teardown() {
	local died= p i
	for p in "${BG_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	if [ -n "$DAEMON_PID" ] && [ -z "$DAEMON_STOPPED" ]; then
		if ! daemon_alive; then
			died=1
		else
			local kids
			kids=$(descendants "$DAEMON_PID")
			kill -TERM "$DAEMON_PID" 2>/dev/null || true
			for ((i = 0; i < 60; i++)); do
				daemon_alive || break
				sleep 0.1
			done
			if daemon_alive; then
				echo "# greygated did not stop on SIGTERM within 6 s; killing it"
				kill -KILL $kids "$DAEMON_PID" 2>/dev/null || true
			fi
			wait "$DAEMON_PID" 2>/dev/null || true
		fi
	fi
	if [ -n "$SINK_PID" ]; then
		kill -TERM "$SINK_PID" 2>/dev/null || true
		wait "$SINK_PID" 2>/dev/null || true
	fi
	# workers orphaned by a crashed master, and anything else still
	# running from this test's directory
	[ -n "${T:-}" ] || return 0	# skipped before anything started
	for p in $(pids_mentioning "$T"); do
		kill -KILL "$p" 2>/dev/null || true
	done
	# a failed test shows what the daemon and the sink saw
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		dump_logs
	fi
	if [ -n "$died" ]; then
		dump_logs
		fail "greygated (pid $DAEMON_PID) died during the test"
	fi
}

dump_logs() {
	echo "# ---- $CONF"
	sed 's/^/# /' "$CONF" 2>/dev/null || true
	echo "# ---- daemon log"
	sed 's/^/# /' "$DAEMON_LOG" 2>/dev/null || true
	echo "# ---- sink transcript"
	sed 's/^/# /' "$SINK_DIR/transcript" 2>/dev/null || true
}

# base_conf - the config every test starts from
base_conf() {
	cat <<EOF
servername = "$SERVERNAME"
listen = {"127.0.0.1"}
port = $PORT
smtp_ip = "127.0.0.1"
smtp_port = $SINK_PORT
pidfile = "$PIDFILE"
spool_dir = "$T/spool"
policy = "accept"
user = "greygate"
group = "greygate"
inactivity_timeout = 5
upstream_connect_timeout = 3
upstream_timeout = 5
shutdown_timeout = 3
start_workers = 3
min_spare_workers = 1
max_spare_workers = 5
verify_recipients = no
greylist { store = "sqlite:$STORE" }
EOF
}

# greylist_block [LINE...] - a greylist { } section with the test store and
# LINEs, for write_conf (it replaces the base section)
greylist_block() {
	printf 'greylist {\n\tstore = "sqlite:%s"\n' "$STORE"
	[ $# -eq 0 ] || printf '\t%s\n' "$@"
	printf '}'
}

# write_conf [LINE...] - base config with LINEs added; a LINE "key = ..."
# replaces the base line for that key.  Writes $CONF (or $1 with -o FILE).
write_conf() {
	local out=$CONF keys= l k
	if [ "${1:-}" = -o ]; then
		out=$2
		shift 2
	fi
	for l in "$@"; do
		case $l in
		greylist*)
			keys="$keys greylist"
			;;
		*=*)
			k=${l%%=*}
			k=${k// /}
			keys="$keys $k"
			;;
		esac
	done
	{
		base_conf | awk -v keys="$keys" '
			BEGIN { n = split(keys, a, " "); for (i = 1; i <= n; i++) drop[a[i]] = 1 }
			{ k = $1; if (!(k in drop)) print }'
		[ $# -eq 0 ] || printf '%s\n' "$@"
	} >"$out"
}

daemon_alive() {
	[ -n "$DAEMON_PID" ] || return 1
	local st
	st=$(awk '{print $3}' "/proc/$DAEMON_PID/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# port_listening PORT - something listens on TCP PORT (no ss needed)
port_listening() {
	awk -v p="$(printf '%04X' "$1")" '
		$4 == "0A" && substr($2, index($2, ":") + 1) == p { found = 1 }
		END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# wait_listening PORT [SECONDS] - until something listens on PORT (5 s)
wait_listening() {
	local i
	for ((i = 0; i < ${2:-5} * 10; i++)); do
		port_listening "$1" && return 0
		sleep 0.1
	done
	return 1
}

# start_daemon [OPTION...] - run greygated -d -f $CONF in the background,
# stderr to $DAEMON_LOG; wait until it listens on $PORT (10 s at most)
start_daemon() {
	"$GREYGATED" -d -f "$CONF" "$@" >"$DAEMON_LOG" 2>&1 3>&- </dev/null &
	DAEMON_PID=$!
	DAEMON_STOPPED=
	local i st
	for ((i = 0; i < 100; i++)); do
		if port_listening "$PORT"; then
			return 0
		fi
		if ! daemon_alive; then
			wait "$DAEMON_PID" 2>/dev/null && st=0 || st=$?
			DAEMON_STOPPED=1
			cat "$DAEMON_LOG"
			fail "greygated exited with status $st before listening on port $PORT"
			return 1
		fi
		sleep 0.1
	done
	cat "$DAEMON_LOG"
	fail "greygated is not listening on port $PORT after 10 s"
}

# wait_daemon_exit [SECONDS] - wait for the master to exit (10 s default),
# fail unless it exits 0; $DAEMON_STATUS holds the status
wait_daemon_exit() {
	local i limit=$((${1:-10} * 10))
	for ((i = 0; i < limit; i++)); do
		daemon_alive || break
		sleep 0.1
	done
	if daemon_alive; then
		cat "$DAEMON_LOG"
		fail "greygated did not exit within ${1:-10} s of SIGTERM"
		return 1
	fi
	DAEMON_STATUS=0
	wait "$DAEMON_PID" || DAEMON_STATUS=$?
	DAEMON_STOPPED=1
	if [ "$DAEMON_STATUS" -ne 0 ]; then
		cat "$DAEMON_LOG"
		fail "greygated exited with status $DAEMON_STATUS after SIGTERM (expected 0)"
		return 1
	fi
}

# stop_daemon [SECONDS] - SIGTERM the master and wait_daemon_exit
stop_daemon() {
	kill -TERM "$DAEMON_PID"
	wait_daemon_exit "$@"
}

# workers - the master's child processes (workers and the policy process)
workers() {
	pgrep -P "$DAEMON_PID" 2>/dev/null || true
}

# start_sink [MODE...] - run the recording sink on $SINK_PORT
start_sink() {
	local args=() m
	for m in "$@"; do
		args+=(--mode "$m")
	done
	rm -f "$SINK_DIR/ready"
	python3 "$SINK_PY" --port "$SINK_PORT" --dir "$SINK_DIR" "${args[@]}" \
		>"$T/sink.log" 2>&1 3>&- </dev/null &
	SINK_PID=$!
	wait_for_file "$SINK_DIR/ready" 5 || {
		cat "$T/sink.log"
		fail "sink did not start"
	}
}

# smtp STEP... - talk to greygated on $PORT (see the top of this file)
smtp() {
	python3 -c "$SMTP_CLIENT_PY" "${SMTP_PORT:-$PORT}" "$@"
}

# smtp_bg NAME STEP... - smtp in the background, transcript in $T/NAME.out
smtp_bg() {
	local name=$1
	shift
	smtp "$@" >"$T/$name.out" 2>&1 3>&- </dev/null &
	BG_PIDS+=($!)
	eval "BG_$name=$!"
}

# wait_bg NAME - wait for a background session to end (15 s at most)
wait_bg() {
	local var="BG_$1" i
	local pid=${!var}
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	wait "$pid" 2>/dev/null || true
}

# release PATH - let a session waiting at "!wait PATH" go on
release() {
	touch "$1"
}

# wait_gone PID... - until no PID runs (a zombie counts as gone), 10 s
# at most; fails naming the ones left
wait_gone() {
	local i p left
	for ((i = 0; i < 100; i++)); do
		left=
		for p in "$@"; do
			[ ! -d "/proc/$p" ] ||
				[ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ] ||
				left="$left $p"
		done
		[ -n "$left" ] || return 0
		sleep 0.1
	done
	fail "still running after 10 s:$left"
}

# wait_for_file FILE [SECONDS]
wait_for_file() {
	local i
	for ((i = 0; i < ${2:-5} * 10; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# wait_for_grep PATTERN FILE [SECONDS] - wait until FILE has a line
# matching the extended regexp PATTERN
wait_for_grep() {
	local i
	for ((i = 0; i < ${3:-5} * 10; i++)); do
		grep -Eq -- "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# expect_transcript - $output must equal stdin, line for line
expect_transcript() {
	local want
	want=$(cat)
	if [ "$output" != "$want" ]; then
		echo "transcript differs (-expected +got):"
		diff -u <(printf '%s\n' "$want") <(printf '%s\n' "$output") | tail -n +3
		return 1
	fi
}

# expect_line TEXT - $output has a line equal to TEXT
expect_line() {
	if ! printf '%s\n' "$output" | grep -Fxq -- "$1"; then
		printf 'expected a line "%s" in:\n%s\n' "$1" "$output"
		return 1
	fi
}

# refute_line TEXT - $output has no line equal to TEXT
refute_line() {
	if printf '%s\n' "$output" | grep -Fxq -- "$1"; then
		printf 'unexpected line "%s" in:\n%s\n' "$1" "$output"
		return 1
	fi
}

# expect_status N - the last run exited N
expect_status() {
	if [ "$status" -ne "$1" ]; then
		printf 'expected exit status %s, got %s; output:\n%s\n' "$1" "$status" "$output"
		return 1
	fi
}

# greeting/ehlo transcript fragments
GREETING="S: 220 $SERVERNAME ESMTP greygate"

# ehlo_reply NAME [SIZE] - the expected EHLO reply lines
ehlo_reply() {
	cat <<EOF
S: 250-$SERVERNAME Hello $1 [127.0.0.1]
S: 250-PIPELINING
S: 250-SIZE ${2:-26214400}
S: 250-8BITMIME
S: 250 ENHANCEDSTATUSCODES
EOF
}

# ehlo_reply_conservative - the same for an upstream never reached: no
# 8BITMIME (the sink announces it, so ehlo_reply has it)
ehlo_reply_conservative() {
	ehlo_reply "$@" | grep -v '^S: 250-8BITMIME$'
}

# sink_msgs - the accepted messages' .msg files, in order
sink_msgs() {
	ls "$SINK_DIR"/*.msg 2>/dev/null | sort || true
}

sink_count() {
	sink_msgs | wc -l
}

# expect_delivered N - the sink accepted exactly N messages
expect_delivered() {
	local n
	n=$(sink_count)
	if [ "$n" -ne "$1" ]; then
		echo "expected $1 message(s) at the sink, found $n"
		echo "sink transcript:"
		cat "$SINK_DIR/transcript" 2>/dev/null || echo "(none)"
		return 1
	fi
}

# expect_nothing_upstream - no message and no MAIL reached the sink
expect_nothing_upstream() {
	expect_delivered 0
	if grep -Eiq '^MAIL' "$SINK_DIR/transcript" 2>/dev/null; then
		echo "a MAIL command reached the sink:"
		cat "$SINK_DIR/transcript"
		return 1
	fi
}

# expect_sink_env N TEXT... - message N's envelope is exactly the TEXT lines
expect_sink_env() {
	local f
	f=$(printf '%s/%04d.env' "$SINK_DIR" "$1")
	shift
	if [ "$(cat "$f" 2>/dev/null)" != "$(printf '%s\n' "$@")" ]; then
		echo "envelope $f differs (-expected +got):"
		diff -u <(printf '%s\n' "$@") "$f" | tail -n +3
		return 1
	fi
}

# expect_same_bytes EXPECTED GOT - byte-for-byte comparison of two files
expect_same_bytes() {
	if ! cmp -s "$1" "$2"; then
		echo "$2 differs from $1:"
		cmp "$1" "$2" || true
		diff <(od -c "$1") <(od -c "$2") | head -20
		return 1
	fi
}

# now - seconds since the epoch with decimals
now() {
	echo "$EPOCHREALTIME"
}

# elapsed_between T0 T1 LO HI - LO <= T1-T0 <= HI
elapsed_between() {
	if ! awk -v a="$1" -v b="$2" -v lo="$3" -v hi="$4" \
		'BEGIN { d = b - a; exit !(d >= lo && d <= hi) }'; then
		echo "elapsed $(awk -v a="$1" -v b="$2" 'BEGIN{print b-a}') s, expected between $3 and $4 s"
		return 1
	fi
}

# simple_session [STEP...] - one plain message; extra STEPs go before QUIT
simple_session() {
	smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" \
		"RCPT TO:<bob@example.org>" "DATA" "+Subject: hi" "+" "+hello" "." "$@" "QUIT"
}

# session_pids - the daemon's processes holding an established connection
# on $PORT (the workers serving sessions)
session_pids() {
	local inodes p fd
	inodes=$(awk -v p="$(printf '%04X' "$PORT")" '
		$4 == "01" && substr($2, index($2, ":") + 1) == p { print "socket:[" $10 "]" }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null)
	[ -n "$inodes" ] || return 0
	for p in $(descendants "$DAEMON_PID"); do
		for fd in /proc/"$p"/fd/*; do
			if grep -qxF -- "$(readlink "$fd" 2>/dev/null)" <<<"$inodes"; then
				echo "$p"
				break
			fi
		done
	done
}

# refute_grep ERE FILE - no line of FILE matches ERE (a missing FILE has none)
refute_grep() {
	if grep -Eq -- "$1" "$2" 2>/dev/null; then
		echo "unexpected match for '$1' in $2:"
		cat "$2"
		return 1
	fi
}

# The raw client, connecting from the address in $SMTP_SOURCE (another
# loopback address, so that the client is not in allowed_senders).
SMTP_CLIENT_FROM_PY=${SMTP_CLIENT_PY/'socket.create_connection(("127.0.0.1", port), timeout=timeout)'/'socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(os.environ.get("SMTP_SOURCE", "127.0.0.1"), 0))'}

# smtp_from ADDR STEP... - smtp, from the local address ADDR (127.x.y.z)
smtp_from() {
	local src=$1
	shift
	SMTP_SOURCE=$src python3 -c "$SMTP_CLIENT_FROM_PY" "${SMTP_PORT:-$PORT}" "$@"
}

# The replay tests (upstream.bats, boundary.bats): one message and its
# reply to the final dot.  TX_SUBJECT: its Subject.
# transaction [RCPT...] - one message from alice; prints the transcript
transaction() {
	local rcpts=() r
	for r in "${@:-bob@example.org}"; do
		rcpts+=("RCPT TO:<$r>")
	done
	smtp "EHLO client.example" "MAIL FROM:<alice@example.com>" "${rcpts[@]}" \
		"DATA" "+Subject: ${TX_SUBJECT:-test}" "+" "+body" "." QUIT
}

# final_reply - the lines the client got for its final dot
final_reply() {
	printf '%s\n' "$output" | sed -n '/^C: \.$/,/^C: QUIT$/p' | sed '1d;$d'
}

# expect_final_reply LINE... - the client's reply to its dot is exactly LINEs
expect_final_reply() {
	local want got
	want=$(printf 'S: %s\n' "$@")
	got=$(final_reply)
	if [ "$got" != "$want" ]; then
		printf 'reply to the final dot:\n%s\nexpected:\n%s\nwhole transcript:\n%s\n' \
			"$got" "$want" "$output"
		return 1
	fi
}
