# postfix_instance.bash: a private Postfix instance (postfix -c DIR/etc),
# the real second MTA of relay_tls.bats and the anchor of
# tests/bench/tls.sh.  Nothing outside DIR is written; the machine's own
# Postfix, if any, is not touched.  Needs root (Postfix's master).
#
#   pf_init DIR DOMAIN        main.cf and master.cf in DIR/etc: no chroot,
#                             the log in DIR/maillog, mail for any address
#                             of DOMAIN appended to the mbox DIR/mail/inbox
#                             (virtual(8), as nobody), no smtpd yet
#   pf_conf DIR 'name = value'...   more main.cf settings
#   pf_listen DIR ADDR PORT [-o name=value...]   an smtpd on ADDR:PORT
#   pf_start DIR              start it; waits until every smtpd listens
#   pf_stop DIR               stop it (a teardown may call it twice)

pf_init() {
	local dir=$1 domain=$2
	mkdir -p "$dir/etc" "$dir/queue" "$dir/data" "$dir/mail"
	cp /etc/postfix/master.cf /etc/postfix/postfix-files "$dir/etc/"
	cp -r /etc/postfix/postfix-files.d /etc/postfix/dynamicmaps.cf /etc/postfix/dynamicmaps.cf.d \
		"$dir/etc/" 2>/dev/null || true
	chown postfix "$dir/data"
	chown nobody "$dir/mail"
	cat >"$dir/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
meta_directory = $dir/etc
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
inet_interfaces = all
inet_protocols = ipv4
myhostname = postfix.test
mydestination =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = $domain
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = static:inbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
EOF
	postconf -c "$dir/etc" -F '*/*/chroot = n'
	postconf -c "$dir/etc" -M# smtp/inet
	postconf -c "$dir/etc" -M postlog/unix-dgram >/dev/null
}

pf_conf() {
	local dir=$1
	shift
	postconf -c "$dir/etc" "$@"
}

pf_listen() {
	local dir=$1 addr=$2 port=$3
	shift 3
	postconf -c "$dir/etc" -M "$addr:$port/inet = $addr:$port inet n - n - - smtpd $*"
	echo "$addr:$port" >>"$dir/listens"
}

pf_start() {
	local dir=$1 want
	postfix -c "$dir/etc" start >/dev/null 2>&1 || {
		echo "Postfix did not start: $(tail -2 "$dir/maillog" 2>/dev/null)" >&2
		return 1
	}
	while read -r want; do
		for _ in $(seq 100); do
			ss -Hltn | awk -v w="$want" '$4 == w { f = 1 } END { exit !f }' && continue 2
			sleep 0.05
		done
		echo "Postfix does not listen on $want" >&2
		return 1
	done <"$dir/listens"
}

pf_stop() {
	[ -f "$1/etc/main.cf" ] || return 0
	postfix -c "$1/etc" stop >/dev/null 2>&1 || true
}
