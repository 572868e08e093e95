# nspawn.bash: a real systemd (the machine's own, 252 on Debian 12) booted
# as PID 1 in systemd-nspawn, with mailslot installed into it as
# `make install` lays it out.  Shared by tests/systemd.bats and
# tests/bench/systemd.sh; plain bash, no bats function, so that the bench
# can source it too.  Functions return non-zero with one line on stderr.
#
# The container runs over the host's own tree, read-only, on a volatile
# root:
#   /              tmpfs, an empty /etc but for what is bound below
#   /usr           the host's, read-only (binaries, python3, dnsmasq ...)
#   /usr/local/sbin   the installed programs (the path the units name)
#   /etc/systemd/system   the installed units, with the wants links that
#                  `systemctl enable` would make for the sockets
#   /etc/mailslot  the installed configuration, writable from the host
#   /etc/passwd, /etc/group   the host's, read-only
#   /var/spool/mail            a spool laid out as Debian's /var/mail
#   /var/spool/mailslot/queue  the queue `make install` made
# and a private network namespace with only a loopback interface: nothing
# in it can reach anything outside, DNS included (there is no
# /etc/resolv.conf either).
#
# Layout of the host side, under NS_DIR (ns_install makes it):
#   $NS_DIR/root     DESTDIR of make install
#   $NS_DIR/units    the units bound to /etc/systemd/system
#   $NS_DIR/spool    bound to /var/spool/mail
#   $NS_DIR/console.log  what the container's console printed
#
# Set after ns_boot: NS_NSPAWN (the nspawn process), NS_PID1 (the
# container's PID 1, as the host numbers it), NS_NAME (the machine name,
# also the container's host name).

NS_REPO=${NS_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
NS_CONF=/etc/mailslot/mailslot.conf
NS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ns_cannot: why this machine cannot boot a container, or nothing (and
# status 1) when it can.  Missing programs are not such a reason: they are
# installed by tests/install-deps.sh, so ns_missing reports them apart.
ns_cannot() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "booting a container needs root"
	elif ! unshare --mount --pid --fork --net --uts --ipc true 2>/dev/null; then
		echo "the kernel does not let this process create mount, PID, network, UTS and IPC namespaces"
	elif [ ! -d /sys/fs/cgroup ] || [ -z "$(ls -A /sys/fs/cgroup 2>/dev/null)" ]; then
		echo "no cgroup file system at /sys/fs/cgroup for the container's systemd"
	else
		return 1
	fi
}

ns_missing() {
	local m=""
	command -v systemd-nspawn >/dev/null || m+=" systemd-container(systemd-nspawn)"
	command -v nsenter >/dev/null || m+=" util-linux(nsenter)"
	[ -x /usr/lib/systemd/systemd ] || m+=" systemd"
	[ -z "$m" ] || { echo "missing:$m; run: sh tests/install-deps.sh test" >&2; return 1; }
}

# ns_install DIR: make install DESTDIR=DIR/root, and the host side of the
# container's binds under DIR.  The programs must be built already (the
# suite runs after make all, also with the ASan build): -o all keeps make
# from rebuilding them with other flags.
ns_install() {
	NS_DIR=$1
	mkdir -p "$NS_DIR"
	make -s -C "$NS_REPO" -o all install DESTDIR="$NS_DIR/root" >"$NS_DIR/install.log" 2>&1 || {
		echo "make install failed: $(tail -3 "$NS_DIR/install.log")" >&2
		return 1
	}
	NS_UNITDIR=$NS_DIR/root/usr/local/lib/systemd/system
	NS_SBIN=$NS_DIR/root/usr/local/sbin
	NS_ETC=$NS_DIR/root/etc/mailslot
	NS_QUEUE=$NS_DIR/root/var/spool/mailslot/queue
	# Debian's /var/mail: root:mail 2775, mailboxes user:mail 0660
	NS_SPOOL=$NS_DIR/spool
	install -d -o root -g mail -m 2775 "$NS_SPOOL"
	# The units as installed, and the links `systemctl enable` makes from
	# each socket's [Install] section (the unit directory is read-only
	# in the container, so they are made here).
	NS_UNITS=$NS_DIR/units
	rm -rf "$NS_UNITS"
	cp -a "$NS_UNITDIR" "$NS_UNITS"
	local u t
	for u in "$NS_UNITS"/mailslot-*.socket; do
		[ -e "$u" ] || continue
		# WantedBy= takes a list: one target a word
		# shellcheck disable=SC2013
		for t in $(sed -n 's/^WantedBy=//p' "$u"); do
			mkdir -p "$NS_UNITS/$t.wants"
			ln -sf "../${u##*/}" "$NS_UNITS/$t.wants/${u##*/}"
		done
	done
}

# ns_unit_files GLOB: the names of the installed unit files matching GLOB
ns_unit_files() {
	local f
	for f in "$NS_UNITDIR"/$1; do
		[ -e "$f" ] && echo "${f##*/}"
	done
}

# ns_exec_start FILE: the ExecStart= of a unit file, as one line (a line
# ending in a backslash goes on in the next)
ns_exec_start() {
	awk '/^ExecStart=/ { on = 1; sub(/^ExecStart=/, "") }
		on { line = line $0; if (sub(/\\$/, "", line)) next; print line; exit }' "$1"
}

# ns_dropin_config UNITFILE...: a drop-in for each that runs its ExecStart=
# with -c /etc/mailslot/mailslot.conf, as mailslot-smtpd(8) shows for an
# administrator's configuration; nothing else of the unit changes.  A unit
# that already reads a configuration file is left alone.
ns_dropin_config() {
	local u exec
	for u; do
		exec=$(ns_exec_start "$NS_UNITDIR/$u")
		[ -n "$exec" ] || { echo "$u has no ExecStart=" >&2; return 1; }
		case " $exec " in *" -c "* | *" --config"*) continue ;; esac
		mkdir -p "$NS_UNITS/$u.d"
		printf '[Service]\nExecStart=\nExecStart=%s -c %s\n' "$exec" "$NS_CONF" \
			>"$NS_UNITS/$u.d/50-config.conf"
	done
}

# ns_boot NAME [NSPAWN-OPTION...]: boot the container (the recipe of the
# systemd issue), with further binds given as options, and wait until its
# systemd has finished starting up; 30 s at most.
# ASAN_OPTIONS and UBSAN_OPTIONS, when set, become the manager's
# environment (systemd.setenv=), which every service inherits: the
# sanitizer build of make test-asan runs under the units with the options
# the rest of the suite has (LeakSanitizer, which needs ptrace, cannot
# work under the units' seccomp filters and NoNewPrivileges=).
ns_boot() {
	local name=$1 i pid state v setenv=()
	shift
	for v in ASAN_OPTIONS UBSAN_OPTIONS; do
		[ -z "${!v:-}" ] || setenv+=("systemd.setenv=$v=${!v}")
	done
	# shellcheck disable=SC2034 # for the callers
	NS_NAME=$name
	NS_PID1=
	setsid systemd-nspawn -D / --volatile=yes --boot --register=no --keep-unit \
		--private-network -M "$name" --console=read-only \
		--bind-ro="$NS_UNITS:/etc/systemd/system" \
		--bind-ro="$NS_SBIN:/usr/local/sbin" \
		--bind="$NS_ETC:/etc/mailslot" \
		--bind-ro=/etc/passwd --bind-ro=/etc/group \
		--bind="$NS_SPOOL:/var/spool/mail" \
		--bind="$NS_QUEUE:/var/spool/mailslot/queue" "$@" \
		-- systemd.unit=multi-user.target systemd.firstboot=off "${setenv[@]}" \
		</dev/null >"$NS_DIR/console.log" 2>&1 3>&- 4>&- &
	NS_NSPAWN=$!
	echo "$NS_NSPAWN" >"$NS_DIR/nspawn.pid"
	# PID 1 of the container is the nspawn process's child (a grandchild
	# when setsid had to fork): the process whose innermost PID is 1.
	for ((i = 0; i < 100; i++)); do
		for pid in $(pgrep -P "$NS_NSPAWN") $(pgrep -P "$(pgrep -P "$NS_NSPAWN" | head -1)" 2>/dev/null); do
			if [ "$(awk '/^NSpid:/ { print $NF }' "/proc/$pid/status" 2>/dev/null)" = 1 ]; then
				NS_PID1=$pid
				break 2
			fi
		done
		ns_alive || break
		sleep 0.1
	done
	if [ -z "$NS_PID1" ]; then
		echo "systemd-nspawn started no PID 1: $(tail -3 "$NS_DIR/console.log" | tr '\n' ' ')" >&2
		return 1
	fi
	echo "$NS_PID1" >"$NS_DIR/pid1"
	# is-system-running --wait answers once start-up is over; before the
	# manager's private socket exists it fails at once, hence the loop.
	for ((i = 0; i < 300; i++)); do
		state=$(ns timeout 30 systemctl is-system-running --wait 2>/dev/null)
		case $state in
		running | degraded) return 0 ;;
		esac
		ns_alive || break
		sleep 0.1
	done
	echo "the container's systemd did not finish booting (state '$state'):" \
		"$(tail -3 "$NS_DIR/console.log" | tr '\n' ' ')" >&2
	return 1
}

# ns_alive: the nspawn process is still there (and not a zombie)
ns_alive() {
	[ -n "${NS_NSPAWN:-}" ] && [ -e "/proc/$NS_NSPAWN" ] &&
		[ "$(awk '{ print $3 }' "/proc/$NS_NSPAWN/stat" 2>/dev/null)" != Z ]
}

# ns COMMAND...: run COMMAND in the container, in all its namespaces, with
# a clean environment.
ns() {
	nsenter -t "$NS_PID1" -a env -i PATH="$NS_PATH" LC_ALL=C.UTF-8 "$@"
}

# ns_poweroff: SIGRTMIN+4 asks the container's systemd for a clean
# poweroff; if it is not over in 20 s, SIGKILL to PID 1 ends every process
# of the container's PID namespace, and with them its mounts.  Safe to
# call more than once, and when nothing was booted.
ns_poweroff() {
	local i
	[ -n "${NS_NSPAWN:-}" ] || return 0
	if ns_alive && [ -n "${NS_PID1:-}" ]; then
		kill -s SIGRTMIN+4 "$NS_PID1" 2>/dev/null || true
		for ((i = 0; i < 200; i++)); do
			ns_alive || break
			sleep 0.1
		done
	fi
	if ns_alive; then
		echo "the container did not power off in 20 s: killing it" >&2
		[ -z "${NS_PID1:-}" ] || kill -KILL "$NS_PID1" 2>/dev/null || true
		sleep 1
		kill -KILL "$NS_NSPAWN" 2>/dev/null || true
	fi
	wait "$NS_NSPAWN" 2>/dev/null || true
	NS_NSPAWN=
	NS_PID1=
}

# ns_wait_listen ADDR:PORT [tcp|udp]: until something in the container
# listens there (ss, so that no probe connection starts a session); 10 s.
ns_wait_listen() {
	local i proto=${2:-tcp}
	for ((i = 0; i < 200; i++)); do
		ns ss -Hln --"$proto" | awk -v w="$1" '$4 == w { f = 1 } END { exit !f }' && return 0
		sleep 0.05
	done
	echo "nothing listens on $1 ($proto) in the container after 10 s" >&2
	return 1
}

# ns_smtp TO TOKEN [PORT]: one message with TOKEN in its body from a
# client in the container to 127.0.0.1:PORT (25).  Prints "sent CODE",
# "refused CODE TEXT" (a greeting or reply of 4xx/5xx) or "closed" (the
# connection ended without a reply).
ns_smtp() {
	ns /usr/bin/python3 - "$1" "$2" "${3:-25}" <<'EOF'
import smtplib, sys
from email.message import EmailMessage
to, token, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
msg = EmailMessage()
msg["From"] = "sender@client.example"
msg["To"] = to
msg["Subject"] = "test " + token
msg.set_content("body line\n" + token + "\n")
try:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=20) as s:
        s.send_message(msg)
        print("sent 250")
except (smtplib.SMTPConnectError, smtplib.SMTPResponseException) as e:
    print("refused %d %s" % (e.smtp_code, e.smtp_error.decode("latin-1", "replace")))
except smtplib.SMTPRecipientsRefused as e:
    code, text = list(e.recipients.values())[0]
    print("refused %d %s" % (code, text.decode("latin-1", "replace")))
except (smtplib.SMTPServerDisconnected, ConnectionError):
    print("closed")
EOF
}

# ns_session_status [PORT [USER PASSWORD [CA]]]: connect to 127.0.0.1:PORT
# (25) in the container (with CA, in TLS from the first octet, CA the
# only trust anchor), read the greeting, say EHLO (or, with USER, log
# in over POP3 with USER and PASS), then find every process that
# holds the server's end of this connection (its socket inode in
# /proc/net/tcp{,6}, matched against /proc/*/fd), other than systemd:
# that is the process that reads the client, whatever unit layout
# started it.  Prints
# "holders N", then for each "session FIELD VALUE" for the credential
# lines of /proc/PID/status, "session exe PATH" and "session unit NAME"
# (from /proc/PID/cgroup), and the replies as "greeting CODE", "ehlo
# CODE" or "login CODE", "quit CODE" (a POP3 CODE is +OK or -ERR).
ns_session_status() {
	ns /usr/bin/python3 - "${1:-25}" "${2:-}" "${3:-}" "${4:-}" <<'EOF'
import os, re, socket, ssl, sys
port, user, password, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
c = socket.create_connection(("127.0.0.1", port), timeout=10)
if ca:
    c = ssl.create_default_context(cafile=ca).wrap_socket(c, server_hostname="127.0.0.1")
rf = c.makefile("rb")
def reply():
    while True:
        line = rf.readline().decode("latin-1")
        if user:
            return line.split(" ", 1)[0].strip() or "none"
        if len(line) < 4 or line[3] != "-":
            return line[:3] or "none"
print("greeting " + reply())
if user:
    c.sendall(b"USER %s\r\n" % user.encode())
    reply()
    c.sendall(b"PASS %s\r\n" % password.encode())
    print("login " + reply())
else:
    c.sendall(b"EHLO probe.example\r\n")
    print("ehlo " + reply())
cport = c.getsockname()[1]
inodes = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    with open(table) as f:
        next(f)
        for row in f:
            col = row.split()
            lport = int(col[1].rsplit(":", 1)[1], 16)
            rport = int(col[2].rsplit(":", 1)[1], 16)
            if lport == port and rport == cport and col[3] == "01":
                inodes.add("socket:[%s]" % col[9])
holders = set()
for pid in filter(str.isdigit, os.listdir("/proc")):
    # systemd itself keeps each connection it accepted (Accept=yes) until
    # the instance ends; it never reads it
    if int(pid) in (1, os.getpid()):
        continue
    try:
        for fd in os.listdir("/proc/%s/fd" % pid):
            if os.readlink("/proc/%s/fd/%s" % (pid, fd)) in inodes:
                holders.add(int(pid))
    except OSError:
        pass
print("holders %d" % len(holders))
for pid in sorted(holders):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapAmb",
                       "CapBnd", "NoNewPrivs", "Seccomp"):
                print("session %s %s" % (key, " ".join(value.split())))
    print("session exe " + os.readlink("/proc/%d/exe" % pid))
    with open("/proc/%d/cgroup" % pid) as f:
        units = re.findall(r"/([^/]+\.service)", f.read())
    print("session unit " + (units[-1] if units else "none"))
c.sendall(b"QUIT\r\n")
print("quit " + reply())
EOF
}
