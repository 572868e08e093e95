# tests/bench/common.sh - what every bench script shares: the tree's
# place, messages, tool checks, the work directory and its removal, free
# ports, medians, building the bench's own C clients.
#
# Sourced (bash, after set -euo pipefail) by run.sh, tls.sh, stat.sh,
# sendmail.sh, pop3.sh and systemd.sh; BENCH, set before, names the
# script in its messages.  Exit status convention of those scripts:
# 0 measured, 1 a step failed (fail), 2 a tool or a right is missing
# (bench_need, bench_need_root).

# shellcheck shell=bash disable=SC2034 # here and top: for the scripts that source this
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
BENCH=${BENCH:-bench}

say() { printf '%s\n' "$*" >&2; }
fail() { say "$BENCH: fatal: $*"; exit 1; }

# bench_need TOOL...: each a command in PATH (or an executable path)
bench_need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 ||
			{ say "$BENCH: $t is missing; run: sh tests/install-deps.sh bench"; exit 2; }
	done
}

bench_need_root() { # WHY
	[ "$(id -u)" = 0 ] || { say "$BENCH: run as root ($1)"; exit 2; }
}

# bench_workdir: WORK, a fresh directory every account can enter (the
# servers may drop to nobody or mail), removed at exit unless BENCH_KEEP=1.
# A script's own bench_cleanup, when it defines one, runs first (it stops
# what it started).  INT and TERM exit, so that the EXIT trap runs.
bench_workdir() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/mailslot-$BENCH.XXXXXX")
	chmod 755 "$WORK"
	trap bench_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# shellcheck disable=SC2317 # runs from the EXIT trap
bench_exit() {
	if declare -F bench_cleanup >/dev/null; then bench_cleanup || true; fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then say "$BENCH: work directory kept: $WORK"; else rm -rf "$WORK"; fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT: something listens on 127.0.0.1:PORT within 10 s (seen by
# ss, without a connection that would count as a session)
wait_port() {
	local i
	for ((i = 0; i < 200; i++)); do
		ss -Hltn | awk -v w="127.0.0.1:$1" '$4 == w { f = 1 } END { exit !f }' && return 0
		sleep 0.05
	done
	fail "nothing listens on port $1"
}

# median [N...]: of the arguments, or of the numbers on standard input
# (separated by blanks or newlines); the mean of the middle two for an
# even count, "nan" for none.
median() {
	{ if [ $# -gt 0 ]; then printf '%s\n' "$@"; else tr -s ' \t' '\n'; fi; } | sed '/^$/d' | sort -g |
		awk '{ a[NR] = $1 }
		END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2];
		      else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# bench_build OUT SRC [cc flags]: compile one of the bench's C programs
# when OUT is missing or older than SRC
bench_build() {
	local out=$1 src=$2
	shift 2
	mkdir -p "$(dirname "$out")"
	if [ ! -x "$out" ] || [ "$src" -nt "$out" ]; then
		"${CC:-cc}" -std=c17 -O2 -Wall -Wextra "$@" -o "$out" "$src" || fail "cannot build $out"
	fi
}
