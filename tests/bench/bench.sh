#!/usr/bin/env bash
# bench.sh - what one greygated hop costs, measured beside the direct path.
#
# Starts its own Postfix smtp-sink on a loopback port and greygated (-d,
# the built binary, a generated configuration) in front of it, then:
#   1. throughput: smtp-source over {1 KiB, 100 KiB} x {1, 20, 100}
#      sessions, straight into the sink ("direct") and through greygated,
#      interleaved, REPS times; median msg/s and the ratio to direct.  A run
#      counts only if the sink received exactly the messages sent.  The
#      1 KiB / 20 sessions cell also runs through a second greygated with
#      policy "greylist" whose only triplet has already passed, so every
#      RCPT makes the round trip to the policy process and its store.
#   2. CPU: user+system time of greygated's whole process tree (master,
#      policy process, workers, reaped workers) per message, per cell.
#   3. latency: one sequential client (python3 smtplib), one connection
#      per message, direct and through greygated in interleaved rounds;
#      median and p99, and the hop's overhead.
#   4. memory: an idle worker's Private_Dirty, and the peak RSS (VmHWM)
#      of the worker that relays one 50 MB message.
#   5. STARTTLS: N sessions of one 1 KiB message each, so one handshake
#      a message, from a Python ssl client (smtpclient.py tls, TLS_CONC
#      processes), through greygated with a 2048-bit RSA certificate and,
#      beside it (as root), through a private Postfix smtpd with
#      smtpd_tls_security_level = may and the same certificate, relaying
#      to the same sink; handshakes (messages) per second and the CPU us
#      per message of each server's process tree.
#   6. many slow sessions: a greygated with max_workers 200; 200 clients
#      connect at once, each waits for its greeting, sends EHLO and holds
#      on; all must be answered.  The master's own CPU time is printed.
#
# Usage: tests/bench/bench.sh [--quick] [--tls-only] [--reps R] [--greygated PATH]
#   --quick      smaller counts, one repetition, 100 latency samples (~1 min)
#   --tls-only   only the STARTTLS cell (5.)
#   --greygated  the daemon to test [$top_builddir/src/greygated, else
#                ./src/greygated, else _build/rel/src/greygated]
# Exit status: 0 when every run delivered exactly, 1 otherwise, 2 on a
# setup error.  Only 127.0.0.1 is ever contacted; every load is bounded
# in count and in time; everything started here is killed on exit.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$HERE/../.." && pwd)
QUICK=0
TLS_ONLY=0
REPS=3
GREYGATED=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1; shift ;;
	--tls-only) TLS_ONLY=1; shift ;;
	--reps) REPS=$2; shift 2 ;;
	--greygated) GREYGATED=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

die() { echo "bench.sh: $*" >&2; exit 2; }
note() { echo "# $*" >&2; }

if [ -z "$GREYGATED" ]; then
	for g in "${top_builddir:-/nonexistent}/src/greygated" \
	    "$PWD/src/greygated" "$SRCDIR/_build/rel/src/greygated" \
	    "$SRCDIR/src/greygated"; do
		[ -x "$g" ] && { GREYGATED=$g; break; }
	done
fi
[ -x "$GREYGATED" ] || die "greygated not found; build it or pass --greygated"
GREYGATECTL=$(dirname "$GREYGATED")/greygatectl
SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
SMTP_SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[ -x "$SMTP_SOURCE" ] && [ -x "$SMTP_SINK" ] ||
	die "smtp-source/smtp-sink missing (apt-get install postfix; then postfix stop)"
command -v python3 >/dev/null || die "python3 is needed"
CLIENT="python3 $HERE/smtpclient.py"

if [ $QUICK = 1 ]; then
	REPS=1; N1K=400; N100K=100; LAT_N=100; BIG=$((20 * 1024 * 1024)); NTLS=200
else
	N1K=2000; N100K=500; LAT_N=500; BIG=$((50 * 1024 * 1024)); NTLS=1000
fi
TLS_CONC=${TLS_CONC:-10}
CELL_TIMEOUT=120
HZ=$(getconf CLK_TCK)

# ------------------------------------------------------------ work area --
WORK=$(mktemp -d -t ggbench.XXXXXX) || die "mktemp failed"
chmod 755 "$WORK"
# the unprivileged workers (root: user greygate) must reach the spool
d=$WORK
while [ "$d" != / ] && [ "$d" != /tmp ]; do chmod a+x "$d" 2>/dev/null; d=$(dirname "$d"); done
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free ports below the ephemeral range, which outgoing connections use
read -r SINK_PORT P_ACC P_GREY P_SLOW P_TLS P_PF < <(python3 "$SRCDIR/tests/free_ports.py" 6)

port_up() { python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $1)))"; }

# ------------------------------------------------------------------ sink --
AS_ROOT=0; [ "$(id -u)" = 0 ] && AS_ROOT=1
SINK_OUT=$WORK/sink.out
sinkargs=(-c)
[ $AS_ROOT = 1 ] && sinkargs+=(-u nobody)
"$SMTP_SINK" "${sinkargs[@]}" "127.0.0.1:$SINK_PORT" 1024 > "$SINK_OUT" 2> "$WORK/sink.err" &
PIDS+=($!)
for i in $(seq 100); do port_up "$SINK_PORT" && break; sleep 0.05; done
port_up "$SINK_PORT" || { cat "$WORK/sink.err" >&2; die "smtp-sink did not start"; }

sink_count() { # messages received so far: smtp-sink -c writes "... mesg=N\r"
	local s; s=$(tail -c 300 "$SINK_OUT" 2>/dev/null)
	s=${s%$'\r'*}; s=${s##*$'\r'}
	[[ $s =~ mesg=([0-9]+) ]] && echo "${BASH_REMATCH[1]}" || echo 0
}
quiesce() { # until the count stands still for 0.3 s (at most 15 s)
	local a b i
	a=$(sink_count)
	for i in $(seq 50); do
		sleep 0.3; b=$(sink_count)
		[ "$a" = "$b" ] && break
		a=$b
	done
	echo "$a"
}
wait_count() { # N deadline_s: 0 once the sink has N messages
	local end=$(( $(date +%s%N) + $2 * 1000000000 ))
	while [ "$(sink_count)" -lt "$1" ]; do
		[ "$(date +%s%N)" -ge $end ] && return 1
		sleep 0.01
	done
}

# ------------------------------------------------------------- greygated --
# start_gg NAME PORT POLICY MAX_WORKERS [extra config lines]
declare -A GGPID=()
start_gg() {
	local name=$1 port=$2 policy=$3 maxw=$4 extra=${5:-} dir=$WORK/$1
	mkdir -p "$dir/spool"
	[ $AS_ROOT = 1 ] && chown greygate:greygate "$dir/spool" 2>/dev/null
	cat > "$dir/greygate.conf" <<-EOF
	listen = {"127.0.0.1"}
	port = $port
	backlog = 512
	smtp_ip = "127.0.0.1"
	smtp_port = $SINK_PORT
	pidfile = "$dir/greygated.pid"
	spool_dir = "$dir/spool"
	policy = "$policy"
	max_connections_per_ip = 1000
	max_message_size = 104857600
	max_sessions_per_worker = 100000
	start_workers = 20
	min_spare_workers = 10
	max_spare_workers = $maxw
	max_workers = $maxw
	$extra
	greylist {
		store = "sqlite:$dir/db/greylist.db"
		delay = 1
		auto_whitelist = 0
	}
	EOF
	"$GREYGATED" -d -f "$dir/greygate.conf" > "$dir/log" 2>&1 &
	GGPID[$name]=$!
	PIDS+=($!)
	for i in $(seq 100); do port_up "$port" && return 0; sleep 0.05; done
	cat "$dir/log" >&2
	die "greygated ($name) did not start"
}
stop_gg() {
	local p=${GGPID[$1]}
	kill -TERM "$p" 2>/dev/null
	for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	wait "$p" 2>/dev/null
}
tree_ticks() { # PID: utime+stime (+ reaped children) of PID and descendants
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
	{ pid = $1; l = $0; sub(/^.*\) /, "", l); split(l, f, " ")
	  pp[pid] = f[2]; t[pid] = f[12] + f[13] + f[14] + f[15] }
	END { s = 0; for (p in t) { q = p; d = 0
		while (q != "" && q != 0 && q != root && d < 16) { q = pp[q]; d++ }
		if (q == root) s += t[p] }
	      print s }'
}
own_ticks() { awk '{ l = $0; sub(/^.*\) /, "", l); split(l, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
workers_of() { # master PID -> its workers' PIDs
	local c
	for c in $(pgrep -P "$1"); do
		tr '\0' ' ' < "/proc/$c/cmdline" 2>/dev/null | grep -q 'worker' && echo "$c"
	done
}

# ----------------------------------------------------------- throughput --
RUNS=$WORK/runs.tsv
: > "$RUNS"
FAILED=0
declare -A TPORT=([direct]=$SINK_PORT [greygated]=$P_ACC [greylist]=$P_GREY)
declare -A TROOT=([direct]="" [greygated]=acc [greylist]=grey)
# run_one TARGET SIZE CONC N
run_one() {
	local t=$1 size=$2 conc=$3 n=$4 base t0 t1 rc got status=ok k0=0 k1=0 root=""
	[ -n "${TROOT[$t]}" ] && root=${GGPID[${TROOT[$t]}]}
	base=$(quiesce)
	[ -n "$root" ] && k0=$(tree_ticks "$root")
	t0=$(date +%s%N)
	timeout -k 2 "$CELL_TIMEOUT" "$SMTP_SOURCE" -s "$conc" -m "$n" -l "$size" \
	    -f "bench.$t@bench.example" -t sink@bench.example \
	    "127.0.0.1:${TPORT[$t]}" > /dev/null 2> "$WORK/src.err" &
	local sp=$!; PIDS+=($sp); wait $sp; rc=$?
	wait_count $((base + n)) 30 || status=LOST
	t1=$(date +%s%N)
	[ -n "$root" ] && k1=$(tree_ticks "$root")
	got=$(( $(quiesce) - base ))
	[ $rc != 0 ] && status=FAIL-src$rc
	[ "$got" -gt "$n" ] && status=DUP
	[ "$got" -lt "$n" ] && [ $status = ok ] && status=LOST
	[ $status = ok ] || { FAILED=1; head -c 300 "$WORK/src.err" | sed 's/^/#   smtp-source: /' >&2; }
	awk -v t="$t" -v s="$size" -v c="$conc" -v n="$n" -v g="$got" -v st="$status" \
	    -v a="$t0" -v b="$t1" -v dk=$((k1 - k0)) -v hz="$HZ" -v root="$root" 'BEGIN {
		w = (b - a) / 1e9
		printf "%s\t%s\t%s\t%d\t%d\t%s\t%.3f\t%.1f\t%s\n", t, s, c, n, g, st, w,
		    g / w, root == "" ? "-" : sprintf("%.0f", dk * 1e6 / hz / (g ? g : 1)) }' >> "$RUNS"
	tail -n1 "$RUNS" | awk -F'\t' '{ printf "#   %-9s %6sB c=%-3s %s sent=%s at-sink=%s %.1f msg/s\n", $1, $2, $3, $6, $4, $5, $8 }' >&2
}
summary() { # SIZE CONC: one line per target
	awk -F'\t' -v s="$1" -v c="$2" '
	function med(str,   a, n, i, j, t) { n = split(str, a, " ")
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
	$2 == s && $3 == c { r[$1] = r[$1] " " $8; if ($9 != "-") u[$1] = u[$1] " " $9
		if ($6 != "ok") bad[$1] = $6; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
	END { d = med(r["direct"])
		for (i = 1; i <= k; i++) { t = order[i]; m = med(r[t])
			printf "%7s %4s  %-10s %-5s %9.1f %7s %8s\n", (s == 1024 ? "1 KiB" : "100 KiB"), c, t,
			    (t in bad) ? bad[t] : "ok", m, (d > 0 && !(t in bad)) ? sprintf("%.3f", m / d) : "-",
			    (t in u) ? med(u[t]) : "-" } }' "$RUNS"
}

echo "# greygate bench.sh  $(date -u '+%Y-%m-%d %H:%M:%S UTC')  $(nproc) cpu, $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "# greygated: $GREYGATED ($(git -C "$SRCDIR" describe --always --dirty 2>/dev/null || echo '?'))"
echo "# sink: smtp-sink -c 127.0.0.1:$SINK_PORT; load: smtp-source -s CONC -m N -l SIZE, 1 recipient, one message per session"
echo "# reps=$REPS; N=$N1K at 1 KiB, $N100K at 100 KiB; msg/s = messages counted at the sink / (smtp-source start .. sink has all N)"

if [ $TLS_ONLY = 0 ]; then
start_gg acc "$P_ACC" accept 150
start_gg grey "$P_GREY" greylist 150 'allowed_senders = {}
	allowed_domains = {"bench.example"}'
# the greylist instance: the triplet of its load passes; a new one does not
GGCTL=("$GREYGATECTL")
"${GGCTL[@]}" -f "$WORK/grey/greygate.conf" add 127.0.0.1 bench.greylist@bench.example \
    sink@bench.example > "$WORK/ctl.out" 2>&1 || { cat "$WORK/ctl.out" >&2; die "greygatectl add failed"; }
base=$(quiesce)
"$SMTP_SOURCE" -m 1 -f fresh@bench.example -t sink@bench.example "127.0.0.1:$P_GREY" > /dev/null 2>&1
sleep 0.3
if [ "$(quiesce)" != "$base" ] || ! grep -q 'action=greylist' "$WORK/grey/log"; then
	echo "# greylist instance: a new triplet was NOT greylisted" >&2; FAILED=1
fi
"${GGCTL[@]}" -f "$WORK/grey/greygate.conf" check 127.0.0.1 bench.greylist@bench.example \
    sink@bench.example 2>&1 | sed 's/^/# greylist instance, greygatectl check of the load triplet: /'

echo
echo "# throughput (median of $REPS; ratio = median / median of direct in the same cell; cpu_us = CPU us per message of greygated's tree)"
printf '%7s %4s  %-10s %-5s %9s %7s %8s\n' size conc target status msg/s ratio cpu_us
for size in 1024 102400; do
	n=$N1K; [ "$size" = 102400 ] && n=$N100K
	for conc in 1 20 100; do
		for rep in $(seq "$REPS"); do
			run_one direct "$size" "$conc" "$n"
			run_one greygated "$size" "$conc" "$n"
			[ "$size" = 1024 ] && [ "$conc" = 20 ] && run_one greylist "$size" "$conc" "$n"
		done
		summary "$size" "$conc"
	done
done
stop_gg grey

# --------------------------------------------------------------- latency --
echo
echo "# sequential latency: $LAT_N messages of 1 KiB, one connection each (python3 smtplib, connect .. QUIT reply), 5 interleaved rounds"
: > "$WORK/lat.direct"; : > "$WORK/lat.greygated"
for r in 1 2 3 4 5; do
	w=0; [ $r = 1 ] && w=20
	for t in direct greygated; do
		$CLIENT latency 127.0.0.1 "${TPORT[$t]}" --n $((LAT_N / 5)) --warmup $w \
		    --out "$WORK/lat.$t" || { FAILED=1; note "latency client failed ($t)"; }
	done
done
printf '%-10s %s\n' direct "$($CLIENT stats "$WORK/lat.direct")"
printf '%-10s %s\n' greygated "$($CLIENT stats "$WORK/lat.greygated" "$WORK/lat.direct")"

# ---------------------------------------------------------------- memory --
echo
echo "# memory of greygated's workers (kB)"
pd=""
for w in $(workers_of "${GGPID[acc]}"); do
	tr '\0' ' ' < "/proc/$w/cmdline" | grep -q idle || continue
	pd="$pd $(awk '/^Private_Dirty/ { print $2 }' "/proc/$w/smaps_rollup")"
done
echo "$pd" | awk '{ n = split($0, a, " "); for (i = 1; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	if (n) printf "idle worker Private_Dirty: median %d kB, min %d, max %d over %d idle workers\n", a[int((n + 1) / 2)], a[1], a[n], n }'
base=$(quiesce)
timeout -k 2 "$CELL_TIMEOUT" "$SMTP_SOURCE" -m 1 -l "$BIG" -f big@bench.example -t sink@bench.example \
    "127.0.0.1:$P_ACC" > /dev/null 2> "$WORK/src.err" || { FAILED=1; cat "$WORK/src.err" >&2; }
wait_count $((base + 1)) 60 || { FAILED=1; note "the big message did not reach the sink"; }
# the worker that logged a transaction at least that big (the size counts headers too)
bigpid=$(awk -v big="$BIG" 'match($0, / size=[0-9]+/) && substr($0, RSTART + 6, RLENGTH - 6) + 0 >= big {
	p = $1; sub(/^greygated\[/, "", p); sub(/\].*/, "", p); pid = p } END { print pid }' "$WORK/acc/log")
if [ -n "$bigpid" ] && [ -r "/proc/$bigpid/status" ]; then
	echo "worker that relayed a $((BIG / 1048576)) MiB message: VmHWM $(awk '/^VmHWM/ { print $2 }' "/proc/$bigpid/status") kB (pid $bigpid, $(grep -o 'action=[a-z-]*' "$WORK/acc/log" | tail -n1))"
else
	echo "worker that relayed a $((BIG / 1048576)) MiB message: not found"; FAILED=1
fi
stop_gg acc
fi

# -------------------------------------------------------------- STARTTLS --
# tls_run NAME PORT ROOTPID: one load through STARTTLS; one result line
tls_run() {
	local name=$1 port=$2 root=$3 base k0 k1 t0 t1 got out status=ok
	base=$(quiesce)
	k0=$(tree_ticks "$root")
	t0=$(date +%s%N)
	out=$(timeout -k 2 $((CELL_TIMEOUT * 3)) $CLIENT tls 127.0.0.1 "$port" --n "$NTLS" \
	    --conc "$TLS_CONC" --deadline $((CELL_TIMEOUT * 2))) || status=FAIL
	wait_count $((base + NTLS)) 60 || status=LOST
	t1=$(date +%s%N)
	k1=$(tree_ticks "$root")
	got=$(( $(quiesce) - base ))
	[ "$got" -ne "$NTLS" ] && [ $status = ok ] && status=LOST
	[ $status = ok ] || { FAILED=1; note "$name: $out"; }
	awk -v t="$name" -v n="$NTLS" -v g="$got" -v st="$status" -v a="$t0" -v b="$t1" \
	    -v dk=$((k1 - k0)) -v hz="$HZ" 'BEGIN { w = (b - a) / 1e9
		printf "%-16s %-5s %6d %6d %12.1f %10.0f\n", t, st, n, g, g / w, dk * 1e6 / hz / (g ? g : 1) }'
}
echo
echo "# STARTTLS: $NTLS sessions x 1 KiB, one handshake per message, $TLS_CONC client processes (python3 ssl + smtplib, TLSv1.3), RSA 2048"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench.example \
    -keyout "$WORK/tls.key" -out "$WORK/tls.pem" 2>/dev/null || die "openssl req failed"
chmod 600 "$WORK/tls.key"
printf '%-16s %-5s %6s %6s %12s %10s\n' server status sent sink handshakes/s cpu_us
start_gg tls "$P_TLS" accept 150 "tls_cert_file = \"$WORK/tls.pem\"
	tls_key_file = \"$WORK/tls.key\""
tls_run greygated-tls "$P_TLS" "${GGPID[tls]}"
stop_gg tls
PF=$WORK/pf
if [ $AS_ROOT = 1 ] && command -v postfix >/dev/null; then
	mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
	chown postfix "$PF/data"
	cat > "$PF/etc/main.cf" <<-EOF
	compatibility_level = 3.6
	queue_directory = $PF/queue
	data_directory = $PF/data
	mail_owner = postfix
	setgid_group = postdrop
	myhostname = pf.bench.example
	mydestination =
	inet_interfaces = 127.0.0.1
	inet_protocols = ipv4
	mynetworks = 127.0.0.0/8
	maillog_file_prefixes = $WORK
	maillog_file = $PF/maillog
	relayhost = [127.0.0.1]:$SINK_PORT
	smtp_dns_support_level = disabled
	disable_dns_lookups = yes
	alias_maps =
	local_recipient_maps =
	smtpd_tls_security_level = may
	smtpd_tls_cert_file = $WORK/tls.pem
	smtpd_tls_key_file = $WORK/tls.key
	smtpd_client_connection_count_limit = 0
	smtpd_client_connection_rate_limit = 0
	smtpd_peername_lookup = no
	default_process_limit = 150
	relay_destination_concurrency_limit = 20
	in_flow_delay = 0
	EOF
	cat > "$PF/etc/master.cf" <<-EOF
	127.0.0.1:$P_PF inet n - n - - smtpd
	pickup    unix  n       -       n       60      1       pickup
	cleanup   unix  n       -       n       -       0       cleanup
	qmgr      unix  n       -       n       300     1       qmgr
	rewrite   unix  -       -       n       -       -       trivial-rewrite
	bounce    unix  -       -       n       -       0       bounce
	defer     unix  -       -       n       -       0       bounce
	trace     unix  -       -       n       -       0       bounce
	smtp      unix  -       -       n       -       -       smtp
	relay     unix  -       -       n       -       -       smtp
	error     unix  -       -       n       -       -       error
	retry     unix  -       -       n       -       -       error
	showq     unix  n       -       n       -       -       showq
	tlsmgr    unix  -       -       n       1000?   1       tlsmgr
	proxymap  unix  -       -       n       -       -       proxymap
	anvil     unix  -       -       n       -       1       anvil
	scache    unix  -       -       n       -       1       scache
	postlog   unix-dgram n  -       n       -       1       postlogd
	EOF
	if postfix -c "$PF/etc" start > "$WORK/pf.start" 2>&1; then
		for i in $(seq 100); do port_up "$P_PF" && break; sleep 0.05; done
		pfpid=$(tr -d ' ' < "$PF/queue/pid/master.pid")
		tls_run postfix-smtpd-tls "$P_PF" "$pfpid"
		postfix -c "$PF/etc" stop > /dev/null 2>&1
		for i in $(seq 100); do kill -0 "$pfpid" 2>/dev/null || break; sleep 0.05; done
	else
		FAILED=1; note "postfix did not start: $(cat "$WORK/pf.start" "$PF/maillog" 2>/dev/null)"
	fi
else
	echo "postfix-smtpd-tls skipped (needs root and postfix)"
fi

# ---------------------------------------------------------- slow sessions --
if [ $TLS_ONLY = 0 ]; then
echo
echo "# 200 concurrent slow sessions (EHLO, then hold 2 s); max_workers 200, start_workers 20, min_spare_workers 10"
start_gg slow "$P_SLOW" accept 200
sleep 1
m0=$(own_ticks "${GGPID[slow]}"); t0=$(date +%s%N)
$CLIENT slow 127.0.0.1 "$P_SLOW" --n 200 --hold 2 --deadline 60 || FAILED=1
m1=$(own_ticks "${GGPID[slow]}"); t1=$(date +%s%N)
echo "master CPU during the phase: $(( (m1 - m0) * 1000 / HZ )) ms in $(( (t1 - t0) / 1000000 )) ms; workers now: $(workers_of "${GGPID[slow]}" | wc -l)"
stop_gg slow
fi

echo
echo "# elapsed ${SECONDS}s"
if [ $FAILED = 0 ]; then echo "# all runs delivered exactly"; else echo "# SOME RUNS FAILED"; fi
exit $FAILED
