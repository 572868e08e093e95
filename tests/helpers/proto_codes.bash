# Shared by protocol.bats and hostile.bats: proto_raw on the listener, and
# the reply codes of a transcript.

RAW="python3 $BATS_TEST_DIRNAME/helpers/proto_raw.py"

# raw [options] < script: proto_raw on the listener (see its docstring)
raw() {
	$RAW "$PORT" "$@"
}

# The final line of every reply in $output as "CODE" or "CODE X.Y.Z", plus
# proto_raw's end markers (<EOF>, <timeout>, <ConnectionResetError> ...);
# continuation lines are dropped, and "<stopped after N>" from trickle is
# left to the tests that trickle.
codes() {
	printf '%s\n' "$output" | tr -d '\r' | awk '
		/^[0-9][0-9][0-9]( |$)/ {
			if ($2 ~ /^[245]\.[0-9]+\.[0-9]+$/) print $1, $2; else print $1
			next
		}
		/^<stopped after / { next }
		/^</ { print }'
}

# assert_codes <<EOF: the reply codes in $output are exactly these
assert_codes() {
	assert_equal "$(codes)" "$(cat)"
}
