# tls_helper.bash: a test CA and certificates, made with openssl by each
# test in its own directory (nothing is shipped, nothing expires between
# runs).  EC P-256 keys: instant to make, and the ECDSA suites of the
# profile; tls_cert_rsa gives an RSA one, tls_cert_ed25519 an Ed25519 one.
#
#   tls_ca DIR [NAME]            DIR/NAME.pem and DIR/NAME.key (default "ca"),
#                                a self-signed CA
#   tls_cert DIR NAME SAN [CA]   DIR/NAME.pem (the leaf, then the CA's
#                                certificate unless CA is a root: the chain a
#                                server sends) and DIR/NAME.key, signed by
#                                DIR/CA (default "ca"); SAN as openssl takes
#                                it: "DNS:smtp.test,IP:127.0.0.6"
#   tls_intermediate DIR NAME CA an intermediate CA signed by DIR/CA

# the extensions go through files: process substitution is not a file
# openssl can always reopen
tls_ca() {
	local dir=$1 name=${2:-ca}
	mkdir -p "$dir"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=mailslot test $name" -keyout "$dir/$name.key" -out "$dir/$name.pem" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

# _tls_sign DIR NAME CA EXTFILE: DIR/NAME.csr signed by DIR/CA into DIR/NAME.crt
_tls_sign() {
	openssl x509 -req -in "$1/$2.csr" -CA "$1/$3.pem" -CAkey "$1/$3.key" -CAcreateserial \
		-days 2 -out "$1/$2.crt" -extfile "$4" 2>/dev/null
}

tls_intermediate() {
	local dir=$1 name=$2 ca=$3
	printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$dir/$name.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mailslot test $name" \
		-keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
	_tls_sign "$dir" "$name" "$ca" "$dir/$name.ext"
	cat "$dir/$name.crt" >"$dir/$name.pem"
}

# _tls_leaf DIR NAME SAN CA KEYOPTS...
_tls_leaf() {
	local dir=$1 name=$2 san=$3 ca=$4
	shift 4
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" >"$dir/$name.ext"
	openssl req -new -newkey "$@" -nodes -subj "/CN=${san#*:}" \
		-keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
	_tls_sign "$dir" "$name" "$ca" "$dir/$name.ext"
	# the chain a server sends: the leaf, then any intermediate
	if [ "$ca" = ca ]; then
		cat "$dir/$name.crt" >"$dir/$name.pem"
	else
		cat "$dir/$name.crt" "$dir/$ca.pem" >"$dir/$name.pem"
	fi
}

tls_cert() {
	_tls_leaf "$1" "$2" "$3" "${4:-ca}" ec -pkeyopt ec_paramgen_curve:P-256
}

tls_cert_rsa() {
	_tls_leaf "$1" "$2" "$3" "${4:-ca}" rsa:2048
}

tls_cert_ed25519() {
	_tls_leaf "$1" "$2" "$3" "${4:-ca}" ed25519
}
