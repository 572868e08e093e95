#!/usr/bin/env bats
# starttls.bats: the server's TLS: STARTTLS (RFC 3207) and implicit TLS
# (--smtps, RFC 8314) with AUTH inside, driven by swaks, msmtp, Python's
# smtplib, curl and openssl s_client; the CVE-2011-0411 injection; the
# session reset after the handshake; a bad certificate or key.

load test_helper

setup_file() {
	local dir=$BATS_FILE_TMPDIR/pki
	mkdir -p "$dir"
	# a test CA and a server certificate for mx.test signed by it
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=test-ca \
		-keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=mx.test \
		-keyout "$dir/key.pem" -out "$dir/req.pem" 2>/dev/null
	printf 'subjectAltName=DNS:mx.test,DNS:localhost,IP:127.0.0.1\n' >"$dir/ext"
	openssl x509 -req -in "$dir/req.pem" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
		-extfile "$dir/ext" -out "$dir/cert.pem" 2>/dev/null
	chmod 600 "$dir/key.pem"
}

setup() {
	setup_spool
	PKI=$BATS_FILE_TMPDIR/pki
	PASSWD=$BATS_TEST_TMPDIR/passwd
	printf 'alice:%s\n' "$(openssl passwd -6 'alice secret')" >"$PASSWD"
	TLS=(--tls-cert "$PKI/cert.pem" --tls-key "$PKI/key.pem" --passwd "$PASSWD")
}

b64() { printf '%b' "$1" | base64 -w0; }

@test "EHLO offers STARTTLS with a certificate; after the handshake it offers AUTH and no STARTTLS" {
	start_listener "${TLS[@]}"
	run swaks --server "127.0.0.1:$PORT" --tls --tls-ca-path "$PKI/ca.pem" --tls-verify --auth PLAIN \
		--auth-user alice --auth-password 'alice secret' --from alice@example.org --to bob@example.org \
		--helo swaks.test --body starttls-token
	assert_success
	assert_line '<-  250-STARTTLS'
	assert_line '<-  220 2.0.0 Ready to start TLS'
	assert_line --regexp '^=== TLS started with cipher TLSv1\.[23]'
	refute_line '<~  250-STARTTLS'
	assert_line '<~  235 2.7.0 Authentication successful'
	run grep -A3 '^Received:' "$SPOOL/bob"
	assert_output --partial 'with ESMTPSA id'
	assert_output --regexp '\(using TLSv1\.[23] TLS_'
}

@test "--smtps: implicit TLS from the first octet; the greeting comes inside TLS" {
	start_listener "${TLS[@]}" --smtps --submission
	run swaks --server "127.0.0.1:$PORT" --tlsc --tls-ca-path "$PKI/ca.pem" --tls-verify --auth LOGIN \
		--auth-user alice --auth-password 'alice secret' --from alice@example.org --to someone@remote.example \
		--helo swaks.test --body smtps-token
	assert_success
	assert_line '<~  220 mx.test ESMTP mailslot'
	assert_line '<~  235 2.7.0 Authentication successful'
	run grep -l smtps-token "$QUEUE"/msg/*
	assert_success
	# a client that talks in clear gets nothing it could read as SMTP
	run python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"EHLO clear.test\r\n")
data = s.recv(100)
print("got", data[:20])' "$PORT"
	refute_output --partial '220'
	refute_output --partial '250'
}

@test "Python smtplib: starttls() then login(), and SMTP_SSL, with the test CA verified" {
	start_listener "${TLS[@]}"
	run python3 - "$PORT" "$PKI/ca.pem" <<'EOF'
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="py.test") as s:
    s.starttls(context=ctx)
    s.ehlo()
    print("version", s.sock.version())
    print(s.login("alice", "alice secret"))
    print(s.sendmail("alice@example.org", ["bob@example.org"], "Subject: py\r\n\r\npy-starttls\r\n"))
EOF
	assert_success
	assert_output --partial "(235, b'2.7.0 Authentication successful')"
	assert_output --regexp 'version TLSv1\.[23]'
	stop_listeners
	start_listener "${TLS[@]}" --smtps
	run python3 - "$PORT" "$PKI/ca.pem" <<'EOF'
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with smtplib.SMTP_SSL("127.0.0.1", int(sys.argv[1]), context=ctx, local_hostname="py.test") as s:
    print(s.login("alice", "alice secret"))
    print(s.sendmail("alice@example.org", ["bob@example.org"], "Subject: py\r\n\r\npy-smtps\r\n"))
EOF
	assert_success
	run grep -c -e py-starttls -e py-smtps "$SPOOL/bob"
	assert_output 2
}

@test "msmtp with tls_starttls on and off (implicit), and curl --ssl-reqd, deliver" {
	command -v msmtp >/dev/null || fail "msmtp missing (tests/install-deps.sh test)"
	command -v curl >/dev/null || fail "curl missing (tests/install-deps.sh test)"
	start_listener "${TLS[@]}"
	local starttls_port=$PORT
	start_listener "${TLS[@]}" --smtps
	local smtps_port=$PORT
	for mode in on off; do
		local port=$starttls_port
		[ "$mode" = off ] && port=$smtps_port
		run msmtp --host=127.0.0.1 --port="$port" --tls=on --tls-starttls="$mode" \
			--tls-trust-file="$PKI/ca.pem" --tls-host-override=mx.test --auth=plain --user=alice \
			--passwordeval="echo 'alice secret'" --from=alice@example.org bob@example.org \
			<<<"Subject: msmtp $mode

msmtp-$mode-token"
		assert_success
	done
	printf 'Subject: curl\r\n\r\ncurl-token\r\n' >"$BATS_TEST_TMPDIR/curl.txt"
	run curl -sS --ssl-reqd --cacert "$PKI/ca.pem" --resolve "mx.test:$starttls_port:127.0.0.1" \
		"smtp://mx.test:$starttls_port" --user 'alice:alice secret' --mail-from alice@example.org \
		--mail-rcpt bob@example.org --upload-file "$BATS_TEST_TMPDIR/curl.txt"
	assert_success
	run grep -c -e msmtp-on-token -e msmtp-off-token -e curl-token "$SPOOL/bob"
	assert_output 3
}

@test "s-nail with smtp-use-starttls and smtp-auth=plain delivers, ESMTPSA in the trace field" {
	command -v s-nail >/dev/null || fail "s-nail missing (tests/install-deps.sh test)"
	start_listener "${TLS[@]}"
	run env HOME="$BATS_TEST_TMPDIR" timeout 20 s-nail -:/ -S v15-compat \
		-S "mta=smtp://alice:alice%20secret@localhost:$PORT" -S smtp-use-starttls -S smtp-auth=plain -S nosave \
		-S tls-ca-file="$PKI/ca.pem" -S tls-verify=strict \
		-S from=alice@example.org -s "snail" bob@example.org <<<"snail-token"
	assert_success
	run grep -c snail-token "$SPOOL/bob"
	assert_output 1
	run grep -A1 '^Received: from ' "$SPOOL/bob"
	assert_output --partial 'with ESMTPSA id'
}

@test "openssl s_client -starttls smtp: TLS 1.2 and 1.3 work, 1.1 and a non-forward-secret suite are refused" {
	start_listener "${TLS[@]}"
	run sh -c "echo QUIT | openssl s_client -starttls smtp -connect 127.0.0.1:$PORT -tls1_3 -brief 2>&1"
	assert_output --partial 'Protocol version: TLSv1.3'
	run sh -c "echo QUIT | openssl s_client -starttls smtp -connect 127.0.0.1:$PORT -tls1_2 -brief 2>&1"
	assert_output --partial 'Protocol version: TLSv1.2'
	assert_output --regexp 'Ciphersuite: ECDHE-'
	run sh -c "echo QUIT | openssl s_client -starttls smtp -connect 127.0.0.1:$PORT -tls1_1 -brief 2>&1"
	refute_output --partial 'Protocol version'
	run sh -c "echo QUIT | openssl s_client -starttls smtp -connect 127.0.0.1:$PORT -tls1_2 -cipher AES128-GCM-SHA256 -brief 2>&1"
	refute_output --partial 'Protocol version'
}

@test "CVE-2011-0411: commands pipelined in clear after STARTTLS are discarded, never answered" {
	start_listener "${TLS[@]}"
	run python3 - "$PORT" <<'EOF'
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        line = f.readline().decode()
        lines.append(line.strip())
        if line[3:4] != "-":
            return lines
print(reply())
s.sendall(b"EHLO c.test\r\n")
print(reply())
# STARTTLS and an injected command in the same packet
s.sendall(b"STARTTLS\r\nRSET\r\n")
print(reply())
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname="mx.test")
tf = t.makefile("rb")
t.sendall(b"NOOP\r\n")
print("after:", tf.readline().decode().strip())
t.sendall(b"MAIL FROM:<a@example.org>\r\n")
print("after:", tf.readline().decode().strip())
EOF
	assert_success
	assert_line --partial "['220 2.0.0 Ready to start TLS']"
	# the first reply inside TLS answers NOOP, not the injected RSET
	assert_line --index 3 "after: 250 2.0.0 Ok"
	# and the session was reset: MAIL needs a new EHLO
	assert_line --index 4 --regexp '^after: 503 5\.5\.1 '
}

@test "STARTTLS twice, with an argument, inside a transaction, after AUTH, or without a certificate: refused" {
	start_listener "${TLS[@]}"
	run sh -c "printf 'EHLO c.test\nSTARTTLS now\nMAIL FROM:<alice@example.org>\nSTARTTLS\nRSET\nAUTH PLAIN %s\nSTARTTLS\nQUIT\n' '$(b64 '\0alice\0alice secret')' | $CHAT 127.0.0.1 $PORT"
	assert_line '501 5.5.4 Syntax: STARTTLS'
	assert_line '503 5.5.1 Error: MAIL transaction in progress'
	assert_line '503 5.5.1 Error: already authenticated'
	run python3 - "$PORT" <<'EOF'
import smtplib, ssl, sys
ctx = ssl._create_unverified_context()
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.starttls(context=ctx)
s.ehlo()
print(s.docmd("STARTTLS"))
EOF
	assert_output --partial "(503, b'5.5.1 Error: TLS already active')"
	stop_listeners
	start_listener
	run sh -c "printf 'EHLO c.test\nSTARTTLS\nQUIT\n' | $CHAT 127.0.0.1 $PORT"
	refute_line '250-STARTTLS'
	assert_line '502 5.5.1 Error: command not implemented'
}

@test "AUTH off loopback: refused in clear (538), accepted inside TLS" {
	unshare -n true 2>/dev/null || skip "cannot create a network namespace here"
	# a network-class listener: a non-loopback address on lo in a private namespace
	run unshare -n sh -c "
		ip link set lo up && ip addr add 192.0.2.25/32 dev lo || exit 1
		systemd-socket-activate --accept --inetd -l 192.0.2.25:2525 '$SMTPD' $(smtpd_args) ${TLS[*]} \
			2>>'$LOG' >/dev/null &
		listener=\$!
		sleep 0.5
		printf 'EHLO c.test\nAUTH PLAIN %s\nQUIT\n' '$(b64 '\0alice\0alice secret')' | $CHAT 192.0.2.25 2525
		swaks --server 192.0.2.25:2525 --tls --auth PLAIN --auth-user alice --auth-password 'alice secret' \
			--from alice@example.org --to someone@remote.example --helo swaks.test --body network-token
		kill \$listener"
	assert_line '538 5.7.11 Encryption required for requested authentication mechanism'
	assert_line '<~  235 2.7.0 Authentication successful'
	assert_line --regexp '^<~  250 2\.0\.0 Ok: queued as '
}

@test "a bad certificate or a mismatched key: one line, exit 78; a root-only key works when started as root" {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=other \
		-keyout "$BATS_TEST_TMPDIR/other.key" -out "$BATS_TEST_TMPDIR/other.pem" 2>/dev/null
	run "$SMTPD" $(smtpd_args) --tls-cert "$PKI/cert.pem" --tls-key "$BATS_TEST_TMPDIR/other.key" </dev/null
	assert_failure 78
	assert_equal "${#lines[@]}" 1
	assert_output --regexp '^mailslot-smtpd: .*key'
	run "$SMTPD" $(smtpd_args) --tls-cert "$BATS_TEST_TMPDIR/missing.pem" --tls-key "$PKI/key.pem" </dev/null
	assert_failure 78
	assert_equal "${#lines[@]}" 1
	run "$SMTPD" $(smtpd_args) --tls-cert "$PKI/cert.pem" </dev/null
	assert_failure 64
	assert_output 'mailslot-smtpd: --tls-cert and --tls-key go together'
	run "$SMTPD" $(smtpd_args) --smtps </dev/null
	assert_failure 64
	[ "$(id -u)" -eq 0 ] && getent passwd mail >/dev/null || skip "needs root and the account mail"
	# root-only key, then the switch to mail: the key was read before
	install -m 0600 -o root "$PKI/key.pem" "$BATS_TEST_TMPDIR/root.key"
	run sh -c "printf 'EHLO c.test\r\nQUIT\r\n' | '$SMTPD' --spool '$SPOOL' --queue /tmp --users '$MS/users' \
		--domain example.org --hostname mx.test --user mail --log stderr \
		--tls-cert '$PKI/cert.pem' --tls-key '$BATS_TEST_TMPDIR/root.key'"
	assert_line --regexp '^250 STARTTLS'
}

# testssl_clean ARGS...: testssl.sh's protocols, cipher categories, forward
# secrecy and vulnerabilities; no finding above LOW or INFO/OK.
testssl_clean() {
	command -v testssl >/dev/null || fail "testssl.sh missing (tests/install-deps.sh test)"
	rm -f "$BATS_TEST_TMPDIR/testssl.json"
	run timeout 300 testssl --quiet --color 0 --warnings off --fast -p -s -f -U \
		--jsonfile "$BATS_TEST_TMPDIR/testssl.json" "$@"
	run python3 - "$BATS_TEST_TMPDIR/testssl.json" <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
ids = {f["id"]: f for f in findings}
# WARN is about testssl's own openssl (no GOST engine, no RC4): not the server
bad = [f"{f['id']}: {f['severity']}: {f['finding']}" for f in findings
       if f["severity"] in ("MEDIUM", "HIGH", "CRITICAL")]
print("\n".join(bad) or "clean")
for pid in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"):
    print(pid, ids[pid]["finding"] if pid in ids else "missing")
print("PFS", ids.get("PFS", {}).get("finding", "missing"))
PY
	assert_success
	assert_line --index 0 clean
	assert_line 'SSLv2 not offered'
	assert_line 'SSLv3 not offered'
	assert_line 'TLS1 not offered'
	assert_line 'TLS1_1 not offered'
	assert_line --regexp '^TLS1_2 offered'
	assert_line --regexp '^TLS1_3 offered'
	assert_line "PFS offered"
}

@test "testssl.sh: implicit TLS (465) and STARTTLS (587): no vulnerability, nothing below TLS 1.2, forward secrecy only" {
	# a minute of probes; the suites and protocols refused are also
	# checked one by one with openssl s_client here and in tls.bats
	slow_scan "testssl.sh on 465 and STARTTLS"
	start_listener "${TLS[@]}" --smtps
	testssl_clean "127.0.0.1:$PORT"
	stop_listeners
	start_listener "${TLS[@]}" --submission
	testssl_clean -t smtp "127.0.0.1:$PORT"
}

# Python's smtplib sends EHLO right after its Finished, and Nagle holds it
# until that is acknowledged: without an immediate ACK from the server
# the first command inside TLS waited for the delayed ACK, 40 ms.
@test "the first command after STARTTLS is answered at once, not after a delayed ACK" {
	start_listener "${TLS[@]}"
	run python3 - "$PORT" <<'EOF2'
import smtplib, ssl, statistics, sys, time
ctx = ssl._create_unverified_context()
waits = []
for _ in range(5):
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="c.test")
    s.starttls(context=ctx)
    t = time.perf_counter()
    s.ehlo()
    waits.append((time.perf_counter() - t) * 1000)
    s.quit()
print("median_ms %.1f" % statistics.median(waits))
EOF2
	assert_success
	local ms=${output#median_ms }
	awk -v m="$ms" 'BEGIN { exit !(m < 20) }' || fail "EHLO inside TLS took $ms ms (a delayed ACK is 40)"
}

@test "an RSA key, signed for by the monitor: TLS 1.3 (RSA-PSS) and TLS 1.2 (PKCS#1 and PSS) handshakes" {
	local dir=$BATS_TEST_TMPDIR/rsa
	mkdir -p "$dir"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.test -addext subjectAltName=DNS:mx.test \
		-keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
	start_listener --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem"
	local args
	for args in "-tls1_3" "-tls1_2 -sigalgs RSA+SHA256" "-tls1_2 -sigalgs RSA-PSS+SHA256"; do
		# shellcheck disable=SC2086 # the options are words
		run openssl s_client -starttls smtp -connect "127.0.0.1:$PORT" -CAfile "$dir/cert.pem" \
			-verify_return_error $args </dev/null
		assert_success
		assert_output --partial 'Verify return code: 0 (ok)'
	done
	run grep -c 'cannot sign' "$LOG"
	assert_output 0
}
