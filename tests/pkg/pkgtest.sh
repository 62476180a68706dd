#!/bin/bash
# pkgtest.sh - the Debian package, for real, as root on a Debian machine:
# build it from a copy of the tree in a temporary directory, lint it,
# install it, check the user, directories, conffile and man pages, run
# the daemon through /etc/init.d/greygate in front of Postfix's smtp-sink
# (start, mail over IPv4 and IPv6, a message large enough to spill in the
# chroot, status, reload refused on a bad file, reload, restart, stop),
# upgrade to a rebuilt higher version keeping an edited conffile, then
# remove and purge and check that nothing is left.
#
# Loopback high ports only, never port 25.  A greygate package left by an
# earlier run is purged first; everything is cleaned up on exit.  Exits
# non-zero with "FAIL: ..." at the first thing that is wrong.
# GREYGATE_PKGTEST_KEEP=1 keeps the temporary directory.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
started=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C.UTF-8
CONF=/etc/greygate/greygate.conf
PIDFILE=/run/greygate/greygated.pid
INIT=/etc/init.d/greygate
EXCLUDES=/etc/dpkg/dpkg.cfg.d/excludes

step() { printf '\n=== %s\n' "$*"; }
say() { printf '    %s\n' "$*"; }
fail() {
	printf '\nFAIL: %s\n' "$*" >&2
	exit 1
}
# run CMD... - show the command and its output; fail when it fails
run() {
	printf '  $ %s\n' "$*"
	"$@" 2>&1 | sed 's/^/    /'
	local rc=${PIPESTATUS[0]}
	[ "$rc" = 0 ] || fail "exit status $rc: $*"
}
# runrc CMD... - show the command and its output; status in $rc
runrc() {
	printf '  $ %s\n' "$*"
	set +e
	out=$("$@" 2>&1)
	rc=$?
	set -e
	[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/    /'
	say "(exit status $rc)"
}

[ "$(id -u)" = 0 ] || fail "run me as root: I install and purge a package"
for c in dpkg-buildpackage dh lintian apt-get swaks smtp-sink python3 man \
    start-stop-daemon ss; do
	command -v "$c" >/dev/null 2>&1 ||
		fail "$c is missing (tests/ci.sh installs what is needed)"
done

work=$(mktemp -d /tmp/greygate-pkgtest.XXXXXX)
chmod 755 "$work"
SINK_PID=
WILD_PID=
excludes_moved=

# installed_pids - processes running the packaged /usr/sbin/greygated
# (an upgraded binary shows as deleted); never anybody else's greygated
installed_pids() {
	local p e
	for p in /proc/[0-9]*; do
		e=$(readlink "$p/exe" 2>/dev/null) || continue
		case $e in
		/usr/sbin/greygated | "/usr/sbin/greygated (deleted)")
			echo "${p#/proc/}" ;;
		esac
	done
}

cleanup() {
	local rc=$? p
	set +e
	trap - EXIT
	[ -n "$WILD_PID" ] && kill "$WILD_PID" 2>/dev/null
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
	if dpkg-query -W -f='${db:Status-Status}' greygate 2>/dev/null |
	    grep -qv '^not-installed$'; then
		echo "=== cleanup: purging greygate"
		[ -x /usr/sbin/greygated ] && "$INIT" stop >/dev/null 2>&1
		apt-get purge -y -qq greygate >/dev/null 2>&1 ||
			dpkg --purge greygate >/dev/null 2>&1
	fi
	for p in $(installed_pids); do
		echo "=== cleanup: killing leftover greygated $p"
		kill -KILL "$p" 2>/dev/null
	done
	if [ -n "$excludes_moved" ]; then
		mv "$work/excludes.saved" "$EXCLUDES" &&
			echo "=== cleanup: $EXCLUDES restored"
	fi
	wait 2>/dev/null
	if [ "$rc" != 0 ] || [ "${GREYGATE_PKGTEST_KEEP:-}" = 1 ]; then
		echo "=== kept $work"
	else
		rm -rf "$work"
	fi
	echo "=== pkgtest $( [ "$rc" = 0 ] && echo passed || echo FAILED) in $(($(date +%s) - started)) s"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port - a TCP port free on 127.0.0.1, 0.0.0.0 and ::
free_port() {
	python3 - <<'EOF'
import socket
for _ in range(50):
    s4 = socket.socket(socket.AF_INET)
    s4.bind(("0.0.0.0", 0))
    port = s4.getsockname()[1]
    try:
        s6 = socket.socket(socket.AF_INET6)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s6.bind(("::", port))
        s6.close()
    except OSError as e:
        if e.errno not in (97, 99):	# no IPv6 at all: fine
            s4.close()
            continue
    s4.close()
    if port != 25:
        print(port)
        break
EOF
}

# copy_tree DIR - the source as checked out, with uncommitted changes,
# without build outputs
copy_tree() {
	mkdir -p "$1"
	if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
		git -C "$top" ls-files -z -co --exclude-standard |
			(cd "$top" && tar --null --ignore-failed-read -T - -cf -) |
			tar -C "$1" -xf -
	else
		tar -C "$top" --exclude=./_build --exclude=./debian/greygate \
		    --exclude=./debian/.debhelper -cf - . | tar -C "$1" -xf -
	fi
}

# build DIR LOG - dpkg-buildpackage -b in DIR, quietly unless it fails
build() {
	printf '  $ (cd %s && DEB_BUILD_OPTIONS="nocheck noautodbgsym" dpkg-buildpackage -us -uc -b) >%s\n' "$1" "$2"
	if ! (cd "$1" && DEB_BUILD_OPTIONS="nocheck noautodbgsym" \
	    dpkg-buildpackage -us -uc -b) >"$2" 2>&1; then
		tail -40 "$2" | sed 's/^/    /'
		fail "dpkg-buildpackage failed in $1 (log: $2)"
	fi
	grep -E '^dpkg-deb: building package' "$2" | sed 's/^/    /'
}

# wait_for WHAT SECONDS CMD... - poll CMD every 0.1 s
wait_for() {
	local what=$1 n=$(($2 * 10))
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || fail "timed out waiting for $what"
		sleep 0.1
	done
}

listening() { ss -ltnH "sport = :$2" | grep -qF "$1:$2"; }

# send ADDR TOKEN [swaks options] - one message through greygate; the
# sink must have it
send() {
	local addr=$1 token=$2
	shift 2
	case $addr in
	*:*)	# swaks needs IO::Socket::INET6 for IPv6
		if ! perl -MIO::Socket::INET6 -e 1 2>/dev/null; then
			say "(swaks has no IPv6 here: python3 smtplib sends instead)"
			run python3 -c 'import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]),
    local_hostname="pkgtest.example.net", timeout=30)
s.set_debuglevel(1)
s.sendmail("alice@example.net", ["bob@example.org"],
    "From: alice@example.net\r\nTo: bob@example.org\r\n"
    "Subject: pkgtest %s\r\n\r\ntest\r\n" % sys.argv[3])
s.quit()' "$addr" "$PORT" "$token"
			wait_for "the message $token at the sink" 10 \
			    grep -rqF "$token" "$work/sink"
			say "the sink has the message $token"
			return
		fi ;;
	esac
	run swaks --server "$addr" --port "$PORT" --from alice@example.net \
	    --to bob@example.org --helo pkgtest.example.net \
	    --header "Subject: pkgtest $token" --suppress-data "$@"
	wait_for "the message $token at the sink" 10 grep -rqF "$token" "$work/sink"
	say "the sink has the message $token: $(grep -rlF "$token" "$work/sink" | head -1)"
}

master_pid() { cat "$PIDFILE" 2>/dev/null; }

# alive PID - running, not a zombie (PID 1 of a container may be slow to
# reap the daemon's master, whose parent it is)
alive() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# policy_pid - the running policy process of the installed daemon
policy_pid() {
	local p
	for p in $(installed_pids); do
		case "$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)" in
		"greygated: policy"*) alive "$p" && echo "$p" ;;
		esac
	done | head -n 1
}

no_daemon() {
	local p
	p=$(installed_pids)
	[ -z "$p" ] || fail "greygated still running: $p"
	say "no /usr/sbin/greygated process"
}

have_v6=
[ -r /proc/net/if_inet6 ] && grep -q '^0\{31\}1 ' /proc/net/if_inet6 && have_v6=1

# ----------------------------------------------------------------------
step "clean slate"
if dpkg-query -W -f='${db:Status-Status}' greygate 2>/dev/null |
    grep -qv '^not-installed$'; then
	say "greygate is installed (an earlier run?): purging it"
	[ -x /usr/sbin/greygated ] && "$INIT" stop >/dev/null 2>&1 || true
	run apt-get purge -y -qq greygate
fi
[ -z "$(installed_pids)" ] || fail "a /usr/sbin/greygated runs without the package: $(installed_pids)"
say "no greygate package, no /usr/sbin/greygated process"
if [ -f "$EXCLUDES" ] && grep -q '^path-exclude=*/usr/share/man' "$EXCLUDES"; then
	say "$EXCLUDES keeps dpkg from installing man pages: moved aside for the test"
	mv "$EXCLUDES" "$work/excludes.saved"
	excludes_moved=1
fi
if getent passwd greygate >/dev/null; then
	user_before=1
	say "the greygate user exists already ($(getent passwd greygate)): postinst must keep it"
else
	user_before=
	say "no greygate user: postinst must create it"
fi
PORT=$(free_port)
SINK_PORT=$(free_port)
[ -n "$PORT" ] && [ -n "$SINK_PORT" ] && [ "$PORT" != "$SINK_PORT" ] ||
	fail "no free ports"
say "greygate on port $PORT, smtp-sink on 127.0.0.1:$SINK_PORT, IPv6: ${have_v6:-no}"

# ----------------------------------------------------------------------
step "build the package from a copy of $top"
copy_tree "$work/v1/src"
build "$work/v1/src" "$work/v1/build.log"
deb1=$(ls "$work"/v1/greygate_*.deb)
[ -f "$deb1" ] || fail "no .deb built"
run dpkg-deb --info "$deb1"
run dpkg-deb --contents "$deb1"
for f in greygate greygate/ .debhelper debhelper-build-stamp files; do
	[ ! -e "$top/debian/$f" ] || say "note: $top/debian/$f exists (not from this run)"
done

step "lintian: no errors, no warnings"
printf '  $ lintian --display-info %s\n' "$(basename "$deb1")"
lint=$(lintian --display-info "$deb1" 2>&1 | grep -v 'running with root privileges' || true)
printf '%s\n' "${lint:-(no output)}" | sed 's/^/    /'
if printf '%s\n' "$lint" | grep -q '^[EW]:'; then
	fail "lintian reports errors or warnings"
fi

# ----------------------------------------------------------------------
step "install"
(cd "$work/v1" && run apt-get install -y -q "./$(basename "$deb1")")
run dpkg-query -W -f='${Package} ${Version} ${db:Status-Status}\n' greygate
if master_pid >/dev/null && "$INIT" status >/dev/null 2>&1; then
	say "the maintainer scripts started greygated (no policy-rc.d here): stopping it to configure the test"
	run "$INIT" stop
fi

step "user, group, directories, conffile"
run getent passwd greygate
run getent group greygate
[ "$(id -gn greygate)" = greygate ] || fail "greygate's primary group is not greygate"
if [ -z "$user_before" ]; then
	[ "$(getent passwd greygate | cut -d: -f6)" = /var/lib/greygate ] ||
		fail "greygate's home is not /var/lib/greygate"
fi
uid=$(id -u greygate)
[ "$uid" -lt 1000 ] || fail "greygate is not a system user (uid $uid)"
run stat -c '%n %U:%G %a' /var/lib/greygate /var/spool/greygate /var/spool/greygate/spool "$CONF"
[ "$(stat -c '%U:%G %a' /var/lib/greygate)" = "greygate:greygate 750" ] ||
	fail "/var/lib/greygate is not greygate:greygate 0750"
[ "$(stat -c '%U:%G %a' /var/spool/greygate)" = "root:root 755" ] ||
	fail "/var/spool/greygate (the chroot) is not root:root 0755"
[ "$(stat -c '%U:%G %a' /var/spool/greygate/spool)" = "greygate-worker:greygate-worker 700" ] ||
	fail "/var/spool/greygate/spool is not greygate-worker:greygate-worker 0700"
getent passwd greygate-worker >/dev/null || fail "no greygate-worker user"
[ "$(stat -c '%U:%G' "$CONF")" = "root:root" ] || fail "$CONF is not root's"
printf "  \$ dpkg-query -W -f='\${Conffiles}' greygate\n"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' greygate)
printf '%s\n' "$conffiles" | sed 's/^/    /'
for f in "$CONF" /etc/default/greygate /etc/init.d/greygate; do
	printf '%s\n' "$conffiles" | grep -q "^ $f " || fail "$f is not a conffile"
done
run ls -l /etc/init.d/greygate /etc/default/greygate /lib/systemd/system/greygate.service \
    /usr/sbin/greygated /usr/sbin/greygatectl
run grep -E '^(listen|port|smtp_ip|smtp_port|chroot|spool_dir|pidfile|policy) ' "$CONF"
grep -qx 'listen = {"0.0.0.0", "::"}' "$CONF" || fail "packaged listen is not every address"
grep -qx 'chroot = "/var/spool/greygate"' "$CONF" || fail "packaged chroot is not /var/spool/greygate"
run /usr/sbin/greygated -t -f "$CONF"
run /usr/sbin/greygated -V
if command -v systemd-analyze >/dev/null 2>&1; then
	printf '  $ systemd-analyze verify greygate.service\n'
	sa=$(systemd-analyze verify /lib/systemd/system/greygate.service 2>&1 || true)
	printf '%s\n' "${sa:-(no output)}" | sed 's/^/    /'
	printf '%s\n' "$sa" | grep -q 'greygate.service' &&
		fail "systemd-analyze verify complains about greygate.service"
else
	say "systemd-analyze not installed: unit not verified"
fi

step "man pages render"
for page in greygated greygate.conf greygatectl; do
	printf '  $ man -P cat %s | head -3\n' "$page"
	txt=$(MANWIDTH=80 man -P cat "$page" 2>&1) || fail "man $page failed: $txt"
	printf '%s\n' "$txt" | head -3 | sed 's/^/    /'
	printf '%s\n' "$txt" | grep -q 'SYNOPSIS\|DESCRIPTION' || fail "man $page has no SYNOPSIS/DESCRIPTION"
done

# ----------------------------------------------------------------------
step "upstream: smtp-sink on 127.0.0.1:$SINK_PORT"
mkdir -p "$work/sink"
chown nobody "$work/sink"
printf '  $ smtp-sink -u nobody -d %s/%%M. 127.0.0.1:%s 10 &\n' "$work/sink" "$SINK_PORT"
smtp-sink -u nobody -d "$work/sink/%M." "127.0.0.1:$SINK_PORT" 10 &
SINK_PID=$!
wait_for "smtp-sink to listen" 10 listening 127.0.0.1 "$SINK_PORT"
say "smtp-sink pid $SINK_PID listening"

step "the packaged listen line binds IPv4 and IPv6 wildcards together (V6ONLY)"
cp "$CONF" "$work/wild.conf"
sed -i -e "s/^port = .*/port = $PORT/" -e "s/^smtp_port = .*/smtp_port = $SINK_PORT/" \
    -e "s|^pidfile = .*|pidfile = \"$work/wild/greygated.pid\"|" "$work/wild.conf"
printf '  $ greygated -d -f %s (packaged file, port and smtp_port changed) &\n' "$work/wild.conf"
/usr/sbin/greygated -d -f "$work/wild.conf" 2>"$work/wild.log" &
WILD_PID=$!
wait_for "greygated on 0.0.0.0:$PORT" 10 listening 0.0.0.0 "$PORT"
if [ -n "$have_v6" ]; then
	wait_for "greygated on [::]:$PORT" 10 listening '[::]' "$PORT"
fi
run ss -ltnH "sport = :$PORT"
send 127.0.0.1 "wild-v4-$$"
[ -z "$have_v6" ] || send ::1 "wild-v6-$$"
run kill -TERM "$WILD_PID"
wait "$WILD_PID" || fail "greygated -d did not exit 0 on SIGTERM"
WILD_PID=
sed 's/^/    log: /' "$work/wild.log"

# ----------------------------------------------------------------------
step "configure: loopback only, port $PORT, upstream 127.0.0.1:$SINK_PORT"
listen='{"127.0.0.1"}'
[ -z "$have_v6" ] || listen='{"127.0.0.1", "::1"}'
sed -i -e "s/^listen = .*/listen = $listen/" -e "s/^port = .*/port = $PORT/" \
    -e "s/^smtp_port = .*/smtp_port = $SINK_PORT/" "$CONF"
echo "# edited by pkgtest $$" >>"$CONF"
run grep -E '^(listen|port|smtp_ip|smtp_port|chroot|spool_dir|policy) |^# edited' "$CONF"

step "init script: start"
run "$INIT" start
pid1=$(master_pid) || fail "no pidfile $PIDFILE after start"
say "master pid $pid1"
alive "$pid1" || fail "master $pid1 is not running"
run "$INIT" status
run ps -o pid,ppid,user,group,args --ppid "$pid1" -p "$pid1"
[ "$(ps -o user= -p "$pid1")" = root ] || fail "the master does not run as root"
nworkers=0
for c in $(pgrep -P "$pid1"); do
	args=$(ps -o args= -p "$c")
	root=$(readlink "/proc/$c/root")
	case $args in
	*worker*)
		[ "$(ps -o uid= -p "$c" | tr -d ' ')" = "$(id -u greygate-worker)" ] ||
			fail "worker $c ($args) does not run as greygate-worker"
		[ "$root" = /var/spool/greygate ] || fail "worker $c is not chrooted (root $root)"
		nworkers=$((nworkers + 1)) ;;
	*policy*)
		[ "$(ps -o user= -p "$c")" = greygate ] || fail "policy process $c does not run as greygate"
		[ "$root" = / ] || fail "policy process $c is chrooted" ;;
	esac
done
[ "$nworkers" -gt 0 ] || fail "no workers"
say "$nworkers workers as greygate-worker chrooted to /var/spool/greygate; policy process as greygate, not chrooted"

step "mail through greygate"
send 127.0.0.1 "small-$$"
[ -z "$have_v6" ] || send ::1 "v6-$$"
python3 -c 'import sys
for i in range(6000): sys.stdout.write("line %05d of a message large enough to spill to the spool in the chroot\n" % i)' >"$work/big.txt"
say "a $(stat -c %s "$work/big.txt")-octet body, over spill_threshold (262144)"
send 127.0.0.1 "big-$$" --body "@$work/big.txt"
big=$(grep -rlF "big-$$" "$work/sink" | head -1)
[ "$(grep -c '^line [0-9]* of a message large' "$big")" = 6000 ] ||
	fail "the large message did not arrive whole"
say "all 6000 lines arrived: spilled to and replayed from the chroot's spool"
say "STARTTLS is on after install, with the snakeoil certificate"
printf '  $ swaks --tls --server 127.0.0.1 --port %s ...\n' "$PORT"
tlsout=$(swaks --server 127.0.0.1 --port "$PORT" --tls --from alice@example.net \
    --to bob@example.org --helo pkgtest.example.net \
    --header "Subject: pkgtest tls-$$" --suppress-data 2>&1) ||
	fail "swaks --tls failed: $tlsout"
printf '%s\n' "$tlsout" | grep '^===' | sed 's/^/    /'
printf '%s\n' "$tlsout" | grep -q 'TLS started with cipher TLSv1\.3' ||
	fail "swaks --tls did not start TLS"
wait_for "the message tls-$$ at the sink" 10 grep -rqF "tls-$$" "$work/sink"
id -nG greygate | grep -qw ssl-cert && fail "greygate was added to ssl-cert"
[ "$(stat -c '%U:%G' /etc/ssl/private/ssl-cert-snakeoil.key)" = root:ssl-cert ] ||
	fail "the snakeoil key is not root:ssl-cert"
say "greygate is not in ssl-cert; the key stays root:ssl-cert"
run stat -c '%n %U:%G %a' /var/lib/greygate/greylist.db
[ "$(stat -c '%U %a' /var/lib/greygate/greylist.db)" = "greygate 640" ] ||
	fail "greylist.db is not greygate's, 0640"
run /usr/sbin/greygatectl list

step "reload refuses a bad file and keeps the daemon"
cp "$CONF" "$work/conf.good"
echo 'bogus_key = 1' >>"$CONF"
runrc "$INIT" reload
[ "$rc" != 0 ] || fail "reload with a bad file exited 0"
printf '%s\n' "$out" | grep -q 'bogus_key' || fail "reload did not say what is wrong"
printf '%s\n' "$out" | grep -qi 'not reloading' || fail "reload did not say it refused"
[ "$(master_pid)" = "$pid1" ] && alive "$pid1" || fail "the daemon did not survive a refused reload"
runrc "$INIT" restart
[ "$rc" != 0 ] || fail "restart with a bad file exited 0"
[ "$(master_pid)" = "$pid1" ] && alive "$pid1" || fail "restart with a bad file stopped the daemon"
run "$INIT" status
say "still running as $pid1"
cp "$work/conf.good" "$CONF"

step "reload, then restart"
pol1=$(policy_pid)
[ -n "$pol1" ] || fail "no policy process before the reload"
run "$INIT" reload
# a reload spawns a new policy process with the new rules and stops the
# old one: wait for that (deadline 60 s) before looking and sending
for ((i = 0; i < 600; i++)); do
	pol2=$(policy_pid)
	[ -n "$pol2" ] && [ "$pol2" != "$pol1" ] && ! alive "$pol1" && break
	sleep 0.1
done
[ -n "$pol2" ] && [ "$pol2" != "$pol1" ] ||
	fail "the reload did not replace the policy process $pol1 within 60 s"
say "policy process $pol1 -> $pol2"
[ "$(master_pid)" = "$pid1" ] && alive "$pid1" || fail "reload changed the master"
send 127.0.0.1 "reloaded-$$"
run "$INIT" restart
pid2=$(master_pid) || fail "no pidfile after restart"
[ "$pid2" != "$pid1" ] || fail "restart kept pid $pid1"
! alive "$pid1" || fail "old master $pid1 still running"
say "master pid $pid1 -> $pid2"
run "$INIT" status
send 127.0.0.1 "restarted-$$"

step "stop"
run "$INIT" stop
no_daemon
[ ! -e "$PIDFILE" ] || fail "$PIDFILE left behind"
say "no pidfile"
runrc "$INIT" status
[ "$rc" = 3 ] || fail "status after stop exited $rc, not 3"
run "$INIT" stop
echo 'bogus_key = 1' >>"$CONF"
runrc "$INIT" start
[ "$rc" != 0 ] || fail "start with a bad file exited 0"
no_daemon
cp "$work/conf.good" "$CONF"

# ----------------------------------------------------------------------
step "upgrade to a rebuilt package with a higher version, while running"
copy_tree "$work/v2/src"
v2=0.1.0+pkgtest1
{
	printf 'greygate (%s) unstable; urgency=medium\n\n' "$v2"
	printf '  * Rebuilt by tests/pkg/pkgtest.sh to test upgrades.\n\n'
	printf ' -- greygate developers <greygate@localhost>  %s\n\n' "$(date -R)"
	cat "$work/v2/src/debian/changelog"
} >"$work/changelog.new"
mv "$work/changelog.new" "$work/v2/src/debian/changelog"
build "$work/v2/src" "$work/v2/build.log"
deb2=$(ls "$work"/v2/greygate_"$v2"_*.deb)
run "$INIT" start
pid3=$(master_pid)
(cd "$work/v2" && run apt-get install -y -q -o Dpkg::Options::=--force-confold "./$(basename "$deb2")")
run dpkg-query -W -f='${Package} ${Version} ${db:Status-Status}\n' greygate
[ "$(dpkg-query -W -f='${Version}' greygate)" = "$v2" ] || fail "not upgraded to $v2"
grep -q "^# edited by pkgtest $$\$" "$CONF" || fail "the edited conffile was not kept"
say "the edited $CONF was kept"
[ ! -e "$CONF.dpkg-dist" ] && [ ! -e "$CONF.dpkg-new" ] || fail "conffile prompt leftovers"
[ "$(stat -c '%U:%G %a' /var/lib/greygate)" = "greygate:greygate 750" ] ||
	fail "/var/lib/greygate changed on upgrade"
[ -f /var/lib/greygate/greylist.db ] || fail "the greylist store was lost on upgrade"
say "/var/lib/greygate and greylist.db kept"
if pid=$(master_pid) && alive "$pid"; then
	if [ "$pid" = "$pid3" ]; then
		say "still the old master $pid3 (maintainer scripts may not restart services here): restarting"
		run ls -l "/proc/$pid3/exe"
		run "$INIT" restart
		[ "$(master_pid)" != "$pid3" ] || fail "restart after upgrade kept $pid3"
		! alive "$pid3" || fail "the old master $pid3 survived restart"
	else
		say "the maintainer scripts restarted greygated: $pid3 -> $pid"
	fi
else
	say "the upgrade stopped greygated and did not start it: starting"
	run "$INIT" start
fi
run ls -l "/proc/$(master_pid)/exe"
run "$INIT" status
send 127.0.0.1 "upgraded-$$"

# ----------------------------------------------------------------------
step "remove"
if [ -x /usr/sbin/policy-rc.d ] && { /usr/sbin/policy-rc.d greygate stop >/dev/null 2>&1; [ $? = 101 ]; }; then
	say "/usr/sbin/policy-rc.d forbids maintainer scripts to stop services: stopping first"
	run "$INIT" stop
else
	say "leaving greygated running: prerm must stop it"
fi
run apt-get remove -y -q greygate
no_daemon
[ ! -e /usr/sbin/greygated ] || fail "/usr/sbin/greygated is still there"
[ -f "$CONF" ] || fail "remove (not purge) removed $CONF"
[ -d /var/lib/greygate ] || fail "remove (not purge) removed /var/lib/greygate"
run dpkg-query -W -f='${Package} ${Version} ${db:Status-Status}\n' greygate
say "binaries gone; conffiles and /var/lib/greygate kept until purge"

step "purge"
run apt-get purge -y -q greygate
no_daemon
for f in /etc/greygate /etc/default/greygate /etc/init.d/greygate \
    /lib/systemd/system/greygate.service /var/lib/greygate \
    /var/spool/greygate /run/greygate /usr/sbin/greygated \
    /usr/sbin/greygatectl /usr/share/doc/greygate \
    /usr/share/man/man8/greygated.8.gz; do
	[ ! -e "$f" ] || fail "$f is left after purge"
done
say "nothing left in /etc, /var/lib, /var/spool, /run, /usr"
st=$(dpkg-query -W -f='${db:Status-Status}' greygate 2>/dev/null || echo not-installed)
[ "$st" = not-installed ] || fail "dpkg still knows greygate: $st"
say "dpkg: greygate not installed"
if getent passwd greygate >/dev/null; then
	say "the greygate system user is kept, as postrm says (remove it with deluser --system greygate)"
fi
