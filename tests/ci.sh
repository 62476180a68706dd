#!/bin/sh
# ci.sh - install what is needed (Debian, as root), build, and run the
# whole test suite: a -Werror build with `make check` (unit + bats),
# the unit tests under valgrind, the man pages through mandoc -Tlint,
# `make distcheck`, the suite again under AddressSanitizer + UBSan,
# src/ through cppcheck and clang-tidy, `make coverage` (at least 85 %
# of the lines of src/), every libFuzzer target on its
# seed corpus for a bounded time, the chaos soak, and, as root with
# dpkg-buildpackage, the Debian package (tests/pkg/pkgtest.sh).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	# Postfix is installed for smtp-sink only: no MTA configuration,
	# and it is never left running.
	echo "postfix postfix/main_mailer_type select No configuration" |
	    debconf-set-selections
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends \
	    build-essential autoconf automake pkg-config \
	    libbsd-dev libconfuse-dev libsqlite3-dev libhiredis-dev libssl-dev \
	    openssl ssl-cert testssl.sh libio-socket-ssl-perl \
	    bats swaks postfix python3 valgrind mandoc procps sqlite3 lcov \
	    redis-server \
	    adduser clang libclang-rt-14-dev cppcheck clang-tidy \
	    debhelper dpkg-dev fakeroot lintian man-db iproute2 \
	    libio-socket-inet6-perl >/dev/null
	if command -v postfix >/dev/null 2>&1; then
		postfix status >/dev/null 2>&1 && postfix stop || true
	fi
	# redis-server is installed for its binary: the tests start their
	# own on loopback high ports; the system service is not needed
	if command -v service >/dev/null 2>&1; then
		service redis-server stop >/dev/null 2>&1 || true
	fi
	id greygate >/dev/null 2>&1 ||
	    adduser --system --group --no-create-home greygate
	# the workers' own user (worker_user), apart from the store's
	id greygate-worker >/dev/null 2>&1 ||
	    adduser --system --group --no-create-home greygate-worker
fi

summary() {
	# "N passed, N failed" from automake's .trs files
	if [ $# = 0 ]; then
		echo "0 passed, 0 failed, 0 skipped"
		return
	fi
	p=$(cat "$@" 2>/dev/null | grep -c '^:test-result: \(PASS\|XFAIL\)' || true)
	f=$(cat "$@" 2>/dev/null | grep -c '^:test-result: \(FAIL\|XPASS\|ERROR\)' || true)
	s=$(cat "$@" 2>/dev/null | grep -c '^:test-result: SKIP' || true)
	echo "$p passed, $f failed, $s skipped"
}

run_check() {
	# $1: build directory; the rest: configure arguments
	dir=$1
	shift
	rm -rf "$dir"
	mkdir -p "$dir"
	cd "$dir"
	"$top/configure" --enable-werror "$@" >/dev/null
	make -j"$jobs" >/dev/null
	if ! make -j"$jobs" check; then
		cat test-suite.log || true
		for f in tests/bats/*.log; do
			echo "=== $f"; cat "$f"
		done
		exit 1
	fi
}

# stage NAME COMMAND... - run COMMAND in a subshell under set -e; a
# failure is recorded (and named in the summary), the next stages run
failed=
stage() {
	name=$1
	shift
	echo "=== $name"
	set +e
	(set -e; "$@")
	rc=$?
	set -e
	if [ "$rc" != 0 ]; then
		echo "=== FAILED (exit status $rc): $name"
		failed="${failed:+$failed; }$name"
	fi
}

stage_autoreconf() {
	# an in-tree build (README quick start (a)) would make every
	# out-of-tree configure below refuse; remove it first
	if [ -f "$top/config.status" ]; then
		echo "removing the in-tree build (make distclean)"
		make -C "$top" distclean >/dev/null
	fi
	autoreconf -fi >/dev/null 2>&1
}

stage_plain() {
	run_check "$top/_build/plain"
}

stage_soak() {
	cd "$top/_build/plain" && make soak
}

stage_valgrind() {
	cd "$top/_build/plain" && make check-valgrind
}

stage_mandoc() {
	out=$(mandoc -Tlint "$top/man/greygated.8" "$top/man/greygatectl.8" "$top/man/greygate.conf.5" 2>&1 || true)
	if [ -n "$out" ]; then
		echo "$out"
		exit 1
	fi
}


stage_lint() {
	cd "$top/_build/plain" && make lint
}

# Debian's hardening flags (as the package is built: _FORTIFY_SOURCE,
# -fstack-protector-strong, ...) with -Werror: the build and the unit
# tests
stage_hardened() {
	if ! command -v dpkg-buildflags >/dev/null 2>&1; then
		echo "dpkg-buildflags is missing (dpkg-dev): not run"
		return
	fi
	rm -rf "$top/_build/hardened"
	mkdir -p "$top/_build/hardened"
	cd "$top/_build/hardened"
	DEB_BUILD_MAINT_OPTIONS=hardening=+all
	export DEB_BUILD_MAINT_OPTIONS
	"$top/configure" --enable-werror \
	    CFLAGS="$(dpkg-buildflags --get CFLAGS)" \
	    CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS)" \
	    LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" >/dev/null
	make -j"$jobs" >/dev/null
	units=$(cd "$top" && ls tests/unit/test_*.c | sed 's/\.c$//' | tr '\n' ' ')
	if ! make -j"$jobs" check TESTS="$units"; then
		cat test-suite.log || true
		exit 1
	fi
}

stage_coverage() {
	rm -rf "$top/_build/cov"
	mkdir -p "$top/_build/cov"
	cd "$top/_build/cov"
	"$top/configure" --enable-coverage >/dev/null
	make -j"$jobs" >/dev/null
	make -j"$jobs" coverage >coverage.log 2>&1 || {
		cat coverage.log
		cat test-suite.log 2>/dev/null || true
		exit 1
	}
	grep -E '^(  lines|make coverage)' coverage.log
}

stage_asan() {
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    run_check "$top/_build/asan" \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined"
}

# the tarball builds, installs and passes its unit tests (the whole
# suite has run three times above: plain, coverage, ASan)
stage_distcheck() {
	units=$(cd "$top" && ls tests/unit/test_*.c | sed 's/\.c$//' | tr '\n' ' ')
	cd "$top/_build/plain" && make distcheck TESTS="$units" >/dev/null
}

stage_fuzz() {
	rm -rf "$top/_build/fuzz"
	mkdir -p "$top/_build/fuzz"
	cd "$top/_build/fuzz"
	"$top/configure" CC=clang --enable-fuzzing >/dev/null
	make -j"$jobs" fuzz >/dev/null
	# any crash, leak, timeout or sanitizer report fails the run
	make fuzz-run FUZZ_TIME="${FUZZ_TIME:-30}"
}

stage autoreconf stage_autoreconf
stage "plain build, make check" stage_plain
trs_plain=$(find "$top/_build/plain" -name '*.trs' 2>/dev/null || true)
stage "chaos soak: 2000 messages, workers killed, SIGHUP; nothing lost" stage_soak
stage "unit tests under valgrind" stage_valgrind
stage "mandoc -Tlint" stage_mandoc
stage "cppcheck and clang-tidy on src/ (make lint)" stage_lint
stage "Debian hardening flags (dpkg-buildflags) and -Werror: build, unit tests" stage_hardened
trs_hard=$(find "$top/_build/hardened" -name '*.trs' 2>/dev/null || true)
stage "line coverage of src/ by make check (make coverage, at least 85 %)" stage_coverage
stage "AddressSanitizer + UBSan build, make check" stage_asan
trs_asan=$(find "$top/_build/asan" -name '*.trs' 2>/dev/null || true)
stage "make distcheck" stage_distcheck
stage "fuzzing: every libFuzzer target on its corpus, ${FUZZ_TIME:-30} s each" stage_fuzz

# The package test: one test in the summary; its failure fails CI.
pkg_pass=0
pkg_fail=0
pkg_skip=0
if [ "$(id -u)" = 0 ] && [ -f "$top/debian/control" ] &&
    command -v dpkg-buildpackage >/dev/null 2>&1; then
	stage "Debian package (tests/pkg/pkgtest.sh)" bash "$top/tests/pkg/pkgtest.sh"
	if [ "$rc" = 0 ]; then
		pkg_pass=1
	else
		pkg_fail=1
	fi
else
	echo "=== Debian package: skipped (needs root, debian/ and dpkg-buildpackage)"
	pkg_skip=1
fi

echo "=== summary"
echo "plain:" $(summary $trs_plain)
echo "hardened:" $(summary $trs_hard)
echo "asan:" $(summary $trs_asan)
echo "package: $pkg_pass passed, $pkg_fail failed, $pkg_skip skipped"
set -- $(summary $trs_plain $trs_hard $trs_asan)
if [ -n "$failed" ]; then
	echo "$(($1 + pkg_pass)) passed, $(($3 + pkg_fail)) failed, $(($5 + pkg_skip)) skipped; failed stages: $failed"
	exit 1
fi
echo "$(($1 + pkg_pass)) passed, $(($3 + pkg_fail)) failed, $(($5 + pkg_skip)) skipped"
