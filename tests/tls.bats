#!/usr/bin/env bats
# tls.bats: the server half of src/tls.c, through tests/helpers/tls_server.c
# (tls_start over standard input and output, as mailslot-smtpd will run
# it), against openssl s_client and Python's ssl module: the profile
# (TLS 1.2 and 1.3, forward-secret suites only, no resumption, no
# renegotiation), a certificate chain, the one-line errors for a bad or
# mismatched pair, a key only root can read, the handshake's deadline,
# the STARTTLS injection rule, descriptors that are pipes rather than a
# socket, and every handshake and TLS read and write under the session's
# real sandbox (sandbox.c's seccomp allow-list and Landlock).

load test_helper
load helpers/tls_helper

setup() {
	command -v openssl >/dev/null || fail "openssl is not installed"
	PKI=$BATS_TEST_TMPDIR/pki
	tls_ca "$PKI"
	tls_cert "$PKI" srv "DNS:mx.test,IP:127.0.0.1"
	build_tls_server
	SLOG=$BATS_TEST_TMPDIR/server.log
	: >"$SLOG"
}

teardown() {
	stop_listeners
	[ ! -f "$BATS_TEST_TMPDIR/shared-dir" ] || rm -rf -- "$(cat "$BATS_TEST_TMPDIR/shared-dir")"
}

# From the sources, as the product links (static PIE) unless this is the
# sanitizer run, whose runtime cannot be linked statically.
build_tls_server() {
	local src=$BATS_TEST_DIRNAME/../src cc=cc flags=(-static-pie -Wno-format-truncation)
	if [ "${SUITE_LABEL:-}" = asan ]; then
		cc=clang
		flags=(-fsanitize=address,undefined -fno-omit-frame-pointer)
	fi
	TLS_SERVER=$BATS_TEST_TMPDIR/tls_server
	$cc -D_GNU_SOURCE -std=c17 -Wall -Wextra -Werror -O1 -g "${flags[@]}" \
		-o "$TLS_SERVER" "$BATS_TEST_DIRNAME/helpers/tls_server.c" \
		"$src"/{tls,conn,lineio,fileio,sandbox}.c -lssl -lcrypto 2>"$BATS_TEST_TMPDIR/cc.log" ||
		fail "cannot build tls_server: $(cat "$BATS_TEST_TMPDIR/cc.log")"
}

# serve [tls_server options]: the helper under systemd-socket-activate, a
# process per connection, forked and sandboxed as a session is.  Sets PORT.
serve() {
	PORT=$(free_port)
	systemd-socket-activate --inetd -a -l "127.0.0.1:$PORT" \
		"$TLS_SERVER" --fork --sandbox "$@" 2>>"$SLOG" >/dev/null &
	echo $! >>"$BATS_TEST_TMPDIR/pids"
	for _ in $(seq 1 100); do
		ss -Hltn | awk -v w="127.0.0.1:$PORT" '$4 == w { f = 1 } END { exit !f }' && return 0
		sleep 0.05
	done
	fail "tls_server does not listen on $PORT"
}

# client [s_client options] < lines: openssl s_client on $PORT trusting the
# test CA, the lines sent with CRLF, the replies on standard output.
client() {
	timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$PKI/ca.pem" -verify_return_error \
		-quiet -crlf "$@" 2>"$BATS_TEST_TMPDIR/s_client.err" | tr -d '\r'
}

# No session died of a forbidden call (the parent reports the signal).
assert_no_signal() {
	sleep 0.2
	run grep 'killed by signal' "$SLOG"
	assert_output ''
}

@test "implicit TLS: TLS 1.3, the certificate verified with the host name, lines echoed, under the sandbox" {
	serve "$PKI/srv.pem" "$PKI/srv.key"
	run client -verify_hostname mx.test <<<$'hello\nTLS?\nQUIT'
	assert_success
	assert_line --index 0 --partial '220 tls-server.test'
	assert_line --index 1 '250 echo: hello'
	assert_line --index 2 --regexp '^250 TLSv1\.3 TLS_(AES_256_GCM_SHA384|AES_128_GCM_SHA256|CHACHA20_POLY1305_SHA256)$'
	assert_line --index 3 --partial '221 '
	assert_no_signal
	run grep -c 'established TLSv1.3' "$SLOG"
	assert_output 1
}

@test "STARTTLS: openssl s_client -starttls smtp and Python smtplib, under the sandbox" {
	serve --starttls "$PKI/srv.pem" "$PKI/srv.key"
	run client -starttls smtp -verify_hostname mx.test <<<$'TLS?\nQUIT'
	assert_success
	assert_line --regexp '^250 TLSv1\.3 '
	assert_line --partial '221 '
	run python3 - "$PORT" "$PKI/ca.pem" <<'PY'
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.test", timeout=10)
s.ehlo()
assert s.has_extn("starttls"), s.esmtp_features
s.starttls(context=ctx)    # the name checked is the address, in the certificate
code, msg = s.ehlo()
print(code, "starttls" in s.esmtp_features, s.has_extn("auth"))
print(*s.docmd("TLS?"))
s.quit()
PY
	assert_success
	assert_line --index 0 '250 False True'
	assert_line --index 1 --regexp "^250 b'TLSv1\.3 "
	assert_no_signal
}

@test "TLS 1.2: only forward-secret AEAD suites; TLS 1.1, RSA key exchange and CBC suites refused" {
	tls_cert_rsa "$PKI" rsa "DNS:mx.test"
	serve "$PKI/rsa.pem" "$PKI/rsa.key"
	run client -tls1_2 <<<$'TLS?\nQUIT'
	assert_success
	assert_line --regexp '^250 TLSv1\.2 ECDHE-RSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$'
	run client -tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305 <<<$'TLS?\nQUIT'
	assert_line '250 TLSv1.2 ECDHE-RSA-CHACHA20-POLY1305'
	local refused
	for refused in "-tls1_1 -cipher DEFAULT@SECLEVEL=0" "-tls1_2 -cipher AES128-GCM-SHA256" \
		"-tls1_2 -cipher ECDHE-RSA-AES128-SHA256" "-tls1_2 -cipher ECDHE-RSA-AES128-SHA" \
		"-tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256"; do
		# shellcheck disable=SC2086 # the options, word by word
		run client $refused <<<'QUIT'
		refute_output --partial '220 ' || fail "accepted: $refused"
	done
	run grep -c 'TLS handshake failed' "$SLOG"
	assert_output 5
	assert_no_signal
}

@test "no session tickets, no resumption, no compression; renegotiation refused" {
	serve "$PKI/srv.pem" "$PKI/srv.key"
	run python3 - "$PORT" "$PKI/ca.pem" <<'PY'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
    ctx.maximum_version = version
    with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as raw:
        with ctx.wrap_socket(raw, server_hostname="mx.test") as s:
            f = s.makefile("rwb")
            f.readline()                      # the greeting, after any ticket
            f.write(b"QUIT\r\n"); f.flush()
            f.readline()
            sess = s.session
            print(s.version(), "ticket" if sess is not None and sess.has_ticket else "no-ticket",
                  s.compression())
PY
	assert_success
	assert_line 'TLSv1.3 no-ticket None'
	assert_line 'TLSv1.2 no-ticket None'
	# s_client's "R" asks for a TLS 1.2 renegotiation: the server says no
	run bash -c "{ sleep 0.5; printf 'R\n'; sleep 0.5; printf 'TLS?\r\n'; sleep 0.5; } |
		timeout 5 openssl s_client -connect 127.0.0.1:$PORT -tls1_2 -CAfile '$PKI/ca.pem' 2>&1"
	assert_output --partial 'RENEGOTIATING'
	refute_line --regexp '^250 TLSv1\.2'
	assert_no_signal
}

@test "a chain file: the leaf and its intermediate, the client trusting only the root" {
	tls_intermediate "$PKI" inter ca
	tls_cert "$PKI" leaf "DNS:mx.test" inter
	serve "$PKI/leaf.pem" "$PKI/leaf.key"
	run client -verify_hostname mx.test <<<$'TLS?\nQUIT'
	assert_success
	assert_line --regexp '^250 TLSv1\.3 '
	grep -q 'depth=2 CN = mailslot test ca' "$BATS_TEST_TMPDIR/s_client.err" || true
}

@test "a mismatched certificate and key, a missing file, a file that is no PEM: one line each, exit 78" {
	tls_cert "$PKI" other "DNS:other.test"
	run "$TLS_SERVER" "$PKI/srv.pem" "$PKI/other.key" </dev/null
	assert_failure 78
	assert_output "tls_server: TLS key $PKI/other.key does not match the certificate $PKI/srv.pem"
	run "$TLS_SERVER" "$PKI/missing.pem" "$PKI/srv.key" </dev/null
	assert_failure 78
	assert_output "tls_server: TLS certificate $PKI/missing.pem: No such file or directory"
	printf 'not a certificate\n' >"$PKI/junk.pem"
	run "$TLS_SERVER" "$PKI/junk.pem" "$PKI/srv.key" </dev/null
	assert_failure 78
	assert_output --regexp "^tls_server: cannot load the TLS certificate $PKI/junk\.pem: .+$"
	run "$TLS_SERVER" "$PKI/srv.pem" "$PKI/junk.pem" </dev/null
	assert_failure 78
	assert_output --regexp "^tls_server: cannot load the TLS key $PKI/junk\.pem: .+$"
	run "$TLS_SERVER" "$PKI/srv.pem" "$PKI" </dev/null
	assert_failure 78
	assert_output "tls_server: TLS key $PKI: not a regular file"
}

@test "a key only root can read: loaded before the switch to another account, used after it" {
	[ "$(id -u)" -eq 0 ] || skip "needs root"
	# a directory every account can search (the test's own is private)
	local dir
	dir=$(mktemp -d /tmp/mailslot-tls.XXXXXX)
	echo "$dir" >"$BATS_TEST_TMPDIR/shared-dir"
	chmod 755 "$dir"
	cp "$PKI/ca.pem" "$PKI/srv.pem" "$PKI/srv.key" "$dir/"
	chmod 644 "$dir/srv.pem"
	chmod 400 "$dir/srv.key"
	PKI=$dir
	serve --user 65534:65534 "$PKI/srv.pem" "$PKI/srv.key"
	run client -verify_hostname mx.test <<<$'TLS?\nQUIT'
	assert_success
	assert_line --regexp '^250 TLSv1\.3 '
	assert_no_signal
	# the same file, opened by that account itself: refused, in one line
	run setpriv --reuid 65534 --regid 65534 --clear-groups "$TLS_SERVER" "$PKI/srv.pem" "$PKI/srv.key" </dev/null
	assert_failure 78
	assert_output "tls_server: cannot load the TLS key $PKI/srv.key: Permission denied"
}

@test "the handshake has a deadline: a silent client, a trickling one, garbage" {
	serve --timeout 700 "$PKI/srv.pem" "$PKI/srv.key"
	local start=$SECONDS
	run python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.1', $PORT))
s.settimeout(5)
t = time.monotonic()
print(s.recv(10), round(time.monotonic() - t))
"
	assert_output "b'' 1"
	# one octet of a ClientHello every 200 ms never completes it in time
	run python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.1', $PORT))
s.settimeout(5)
try:
    for b in b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03':
        s.send(bytes([b])); time.sleep(0.2)
except OSError:
    pass
print(s.recv(100))
"
	printf 'EHLO plain text\r\n' | timeout 5 nc -q 2 127.0.0.1 "$PORT" >/dev/null || true
	sleep 0.3
	run grep -c 'tls_server: TLS handshake timed out' "$SLOG"
	assert_output 2
	run grep -c 'tls_server: TLS handshake failed: ' "$SLOG"
	assert_output 1
	[ $((SECONDS - start)) -lt 10 ]
	assert_no_signal
}

@test "STARTTLS: commands pipelined in clear after it are discarded, never answered inside TLS" {
	serve --starttls "$PKI/srv.pem" "$PKI/srv.key"
	run python3 - "$PORT" "$PKI/ca.pem" <<'PY'
import socket, ssl, sys
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = raw.makefile("rb")
f.readline()
raw.sendall(b"EHLO c\r\n")
while f.readline()[3:4] == b"-":
    pass
raw.sendall(b"STARTTLS\r\nNOOP injected\r\n")   # one segment: the CVE-2011-0411 attack
print(f.readline().decode().strip())
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(raw, server_hostname="mx.test")
s.sendall(b"TLS?\r\n")
g = s.makefile("rb")
print(g.readline().decode().strip()[:12])
s.sendall(b"QUIT\r\n")
print(g.readline().decode().strip())
PY
	assert_success
	assert_line --index 0 '220 2.0.0 Ready to start TLS'
	assert_line --index 1 '250 TLSv1.3 '
	assert_line --index 2 '221 2.0.0 bye'
	refute_output --partial injected
	run grep -c 'discarded 15 octets sent after STARTTLS' "$SLOG"
	assert_output 1
}

@test "over pipes rather than a socket: the handshake and 200 KB of replies (partial writes, many records)" {
	run python3 - "$TLS_SERVER" "$PKI/srv.pem" "$PKI/srv.key" "$PKI/ca.pem" <<'PY'
import os, select, ssl, subprocess, sys
p = subprocess.Popen([sys.argv[1], "--sandbox", sys.argv[2], sys.argv[3]], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
ctx = ssl.create_default_context(cafile=sys.argv[4])
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname="mx.test")
def pump(want=None):
    data = out.read()
    if data:
        p.stdin.write(data); p.stdin.flush()
    if want is not None:
        r, _, _ = select.select([p.stdout], [], [], 5)
        if not r:
            raise SystemExit("timeout")
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            raise SystemExit("eof")
        inc.write(chunk)
while True:
    try:
        tls.do_handshake(); break
    except ssl.SSLWantReadError:
        pump(True)
pump()
def read_until(end):
    buf = b""
    while end not in buf:
        try:
            buf += tls.read(65536)
        except ssl.SSLWantReadError:
            pump(True)
    return buf
read_until(b"\r\n")
tls.write(b"BIG 200000\r\n"); pump()
big = read_until(b"\r\n250 ")
big += read_until(b"\r\n") if not big.endswith(b"\r\n") else b""
text = b"".join(l[4:] for l in big.split(b"\r\n") if l)
tls.write(b"QUIT\r\n"); pump()
print(len(text), read_until(b"\r\n").decode().strip())
p.stdin.close()
print("exit", p.wait(5))
PY
	assert_success
	assert_line --index 0 '200000 221 2.0.0 bye'
	assert_line --index 1 'exit 0'
}
