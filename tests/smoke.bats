#!/usr/bin/env bats
# The shortest path through the handler: one message, terminal and socket.

load test_helper

setup() {
	setup_spool
}

@test "terminal: a message to a local user lands in the mbox" {
	run smtpd_stdin <<'EOF2'
HELO client.test
MAIL FROM:<sender@remote.example>
RCPT TO:<alice@example.org>
DATA
Subject: smoke

hello
.
QUIT
EOF2
	assert_success
	assert_line --partial "250 2.0.0 Ok: queued as"
	run read_mailbox mbox "$SPOOL/alice"
	assert_output "smoke|6"
}

@test "socket: a message through systemd-socket-activate" {
	start_listener
	run chat <<'EOF2'
EHLO client.test
MAIL FROM:<sender@remote.example>
RCPT TO:<bob@example.org>
DATA
<<DATA
Subject: over tcp

body
.
>>
QUIT
EOF2
	assert_line --partial "250 2.0.0 Ok: queued as"
	run read_mailbox mbox "$SPOOL/bob"
	assert_output "over tcp|5"
}
