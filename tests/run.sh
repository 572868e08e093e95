#!/bin/sh
# Run the bats suite with TAP output and close with one summary line,
# "N passed, N failed, N skipped", which CI reads.  Extra arguments name
# .bats files; the default is every one in tests/.
# Exit status: 0 when nothing failed.
set -u
cd "$(dirname "$0")/.." || exit 1
label="${SUITE_LABEL:-tests}"
out="${TMPDIR:-/tmp}/mailslot-tap.$$"
if [ $# -eq 0 ]; then
	set -- tests/*.bats
fi
{ bats --tap "$@"; echo "$?" > "$out.status"; } | tee "$out"
status=$(cat "$out.status")
planned=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$out" | head -1)
passed=$(grep -c '^ok .*' "$out" | head -1)
skipped=$(grep -c '^ok .* # skip' "$out" | head -1)
failed=$(grep -c '^not ok ' "$out" | head -1)
passed=$((passed - skipped))
rm -f "$out" "$out.status"
ran=$((passed + skipped + failed))
if [ "${planned:-0}" -ne "$ran" ]; then
	echo "$label: bats planned ${planned:-?} tests but reported $ran" >&2
	failed=$((failed + 1))
fi
echo "$label: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
