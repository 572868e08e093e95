#!/usr/bin/env bats
# lint.bats: static analysis of src/ with cppcheck and clang-tidy; any
# finding fails.  The check sets and the reasons for what is left out are in
# tests/lint/ (clang-tidy.yml; cppcheck.supp and clang-tidy.supp hold the
# single false positives, each with its reason).  A tool that is not
# installed skips its test (tests/install-deps.sh test installs both).  The
# sanitizer pass of make test skips them: the sources are the same.

TOP="$BATS_TEST_DIRNAME/.."
LINT="$BATS_TEST_DIRNAME/lint"

setup() {
	[ "${SUITE_LABEL:-}" != asan ] || skip "static analysis ran in the first pass"
	cd "$TOP" || return 1
}

@test "cppcheck: no warning, style, performance or portability finding in src/" {
	command -v cppcheck >/dev/null || skip "cppcheck is not installed"
	run cppcheck --enable=warning,style,performance,portability --std=c11 --error-exitcode=1 \
		-D_GNU_SOURCE --suppressions-list="$LINT/cppcheck.supp" --quiet src/
	if [ "$status" -ne 0 ]; then
		echo "$output"
		return 1
	fi
}

# The findings of clang-tidy over src/*.c, one "file:line:col: warning: text
# [check]" a line, paths relative to the top.
tidy_findings() {
	printf '%s\n' src/*.c | xargs -P "$(nproc)" -I{} clang-tidy --quiet --config-file="$LINT/clang-tidy.yml" {} \
		-- -std=c17 -D_GNU_SOURCE -DMAILSLOT_STATIC -Isrc 2>/dev/null |
		grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error): .*\]$' | sed "s|^$PWD/||" | sort -u
}

@test "clang-tidy: no bugprone, clang-analyzer or cert finding in src/" {
	command -v clang-tidy >/dev/null || skip "clang-tidy is not installed"
	tidy_findings >"$BATS_TEST_TMPDIR/findings"
	# drop the listed false positives; an entry that matched nothing is stale
	python3 - "$LINT/clang-tidy.supp" "$BATS_TEST_TMPDIR/findings" <<'PY'
import re, sys
supp = []
for line in open(sys.argv[1]):
    if line.strip() and not line.startswith("#"):
        f, check, text = line.rstrip("\n").split(" ", 2)
        supp.append([f, check, text, 0])
left = []
for finding in open(sys.argv[2]):
    m = re.match(r"([^:]+):(\d+):\d+: \w+: .*\[([^\]]+)\]$", finding.strip())
    src = open(m.group(1), errors="replace").read().split("\n")[int(m.group(2)) - 1]
    for s in supp:
        if s[0] == m.group(1) and s[1] in m.group(3).split(",") and s[2] in src:
            s[3] += 1
            break
    else:
        left.append(finding.strip())
for f in left:
    print(f)
for s in supp:
    if not s[3]:
        print("stale suppression in tests/lint/clang-tidy.supp: %s %s %s" % tuple(s[:3]))
sys.exit(1 if left or any(not s[3] for s in supp) else 0)
PY
}
