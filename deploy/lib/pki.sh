# Dev certificates and passwords for deploy/stack.sh (sourced; uses say/die from stack.sh).
#
# One dev CA and one set of service passwords per user, in $SECRETS (default
# $RIVERGUARD_CACHE/dev-secrets, mode 0700), the way mkcert keeps one CA per user: every stack of
# this user - the shared dev stack, a private test stack, a three-broker cluster - is trusted by
# the same CA file and reached with the same credentials, so `stack.sh env` of any of them works
# for all. The servers' certificates are per stack (their names and addresses differ), signed by
# that CA, in <runtime dir>/tls. Nothing here is ever committed; nothing secret is ever put on a
# command line (openssl reads keys from files; passwords go through files and stdin).
#
#   $SECRETS/ca.pem, ca.key           the dev CA (EC P-256, 825 days)
#   $SECRETS/kafka/<user>             Kafka SCRAM password of principal User:<user>
#   $SECRETS/influx/<user>            InfluxDB token "<user>:<password>" (1.8 accepts it as a v2 token)
#   $SECRETS/mqtt/<user>              MQTT password, written from deploy/mosquitto/dev-users.txt
#   <runtime>/tls/mqtt.pem, mqtt.key  Mosquitto's server certificate
#   <runtime>/tls/kafka.pem           the brokers' key + certificate (server and inter-broker client)
#   <runtime>/tls/clients/<cn>.pem/.key  station client certificates (`stack.sh cert <station id>`)

PKI_DAYS=825                  # the CA/Browser Forum's former maximum; plenty for a dev machine
PKI_RENEW_S=$((30 * 24 * 3600)) # renew what expires within 30 days

KAFKA_USERS=(riverguard-admin riverguard-ingest riverguard-detect riverguard-alerts riverguard-sink riverguard-gateway)
INFLUX_USERS=(riverguard-admin riverguard-sink riverguard-reader)

pki_lock() { # serialise CA/secret creation between stacks of this user
	mkdir -p "$SECRETS"
	chmod 700 "$SECRETS"
	exec 8>"$SECRETS/.lock"
	flock -w 120 8 || die "another deploy/stack.sh holds $SECRETS/.lock"
}

pki_unlock() { exec 8>&-; }

new_password() { # 32 url-safe random characters: safe inside InfluxQL and curl config quotes
	head -c 24 /dev/urandom | base64 | tr '+/' '-_'
}

# write_secret file content: 0600, replaced atomically, left alone when unchanged
write_secret() {
	local file="$1" content="$2"
	mkdir -p "$(dirname "$file")"
	chmod 700 "$(dirname "$file")"
	[[ -f "$file" && "$(cat "$file")" == "$content" ]] && return 0
	(umask 077 && printf '%s\n' "$content" >"$file.tmp")
	mv "$file.tmp" "$file"
}

secret() { head -n 1 "$1"; }

ensure_ca() {
	local ca="$SECRETS/ca.pem" key="$SECRETS/ca.key"
	if [[ -f "$ca" && -f "$key" ]] && openssl x509 -in "$ca" -noout -checkend "$PKI_RENEW_S" >/dev/null 2>&1; then
		return 0
	fi
	say "tls: creating the dev CA in $SECRETS (trust it only on this machine)"
	(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$key.tmp" -out "$ca.tmp" -days "$PKI_DAYS" \
		-subj "/O=riverguard dev/CN=riverguard dev CA $(hostname) $(id -un)" \
		-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1) || die "tls: openssl could not create the dev CA"
	mv "$key.tmp" "$key"
	mv "$ca.tmp" "$ca"
}

# san_entry host -> IP:host or DNS:host
san_entry() {
	if [[ "$1" =~ ^[0-9.]+$ || "$1" == *:* ]]; then echo "IP:$1"; else echo "DNS:$1"; fi
}

# issue out_cert out_key subject-CN extended-key-usage [host...]: a leaf signed by the dev CA,
# re-issued when missing, expiring, not signed by the current CA, or missing one of the hosts
issue() {
	local cert="$1" key="$2" cn="$3" usage="$4"
	shift 4
	local sans="" h
	for h in 127.0.0.1 localhost "$@"; do
		[[ ",$sans," == *",$(san_entry "$h"),"* ]] || sans="${sans:+$sans,}$(san_entry "$h")"
	done
	if [[ -f "$cert" && -f "$key" ]] \
		&& openssl verify -CAfile "$SECRETS/ca.pem" "$cert" >/dev/null 2>&1 \
		&& openssl x509 -in "$cert" -noout -checkend "$PKI_RENEW_S" >/dev/null 2>&1 \
		&& [[ "$(openssl x509 -in "$cert" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' ' | tr ',' '\n' | sed 's/IPAddress/IP/' | sort | tr '\n' ',')" == "$(tr ',' '\n' <<<"$sans" | sort | tr '\n' ',')" ]]; then
		return 0
	fi
	mkdir -p "$(dirname "$cert")" "$(dirname "$key")"
	(umask 077 && openssl req -x509 -CA "$SECRETS/ca.pem" -CAkey "$SECRETS/ca.key" \
		-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$key.tmp" -out "$cert.tmp" \
		-days "$PKI_DAYS" -subj "/CN=$cn" \
		-addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
		-addext "extendedKeyUsage=$usage" -addext "subjectAltName=$sans" >/dev/null 2>&1) \
		|| die "tls: openssl could not issue a certificate for $cn"
	mv "$key.tmp" "$key"
	mv "$cert.tmp" "$cert"
}

# issue_client cn: a station's client certificate (CN = station id) in <runtime>/tls/clients
issue_client() {
	local cn="$1" dir="$STACK/tls/clients"
	[[ "$cn" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "cert: '$cn' is not a station id (letters, digits, . _ -)"
	pki_lock
	ensure_ca
	pki_unlock
	# a client certificate has no host names; 127.0.0.1/localhost SANs are harmless and keep issue() simple
	issue "$dir/$cn.pem" "$dir/$cn.key" "$cn" clientAuth
}

ensure_secrets() {
	local user
	pki_lock
	ensure_ca
	for user in "${KAFKA_USERS[@]}"; do
		[[ -s "$SECRETS/kafka/$user" ]] || write_secret "$SECRETS/kafka/$user" "$(new_password)"
	done
	for user in "${INFLUX_USERS[@]}"; do
		[[ -s "$SECRETS/influx/$user" ]] || write_secret "$SECRETS/influx/$user" "$user:$(new_password)"
	done
	pki_unlock
	write_mqtt_secrets
	# the servers' certificates: every configured host name is in them (clients verify it)
	issue "$STACK/tls/mqtt.pem" "$STACK/tls/mqtt.key" riverguard-mqtt serverAuth "$MQTT_HOST"
	issue "$STACK/tls/kafka.crt" "$STACK/tls/kafka.key" "$KAFKA_PRINCIPAL" serverAuth,clientAuth "$KAFKA_HOST"
	if [[ ! -f "$STACK/tls/kafka.pem" || "$STACK/tls/kafka.crt" -nt "$STACK/tls/kafka.pem" ]]; then
		(umask 077 && cat "$STACK/tls/kafka.key" "$STACK/tls/kafka.crt" >"$STACK/tls/kafka.pem")
	fi
	cp "$SECRETS/ca.pem" "$STACK/tls/ca.pem" # what the servers trust (a copy: the servers may read only their runtime dir)
}

write_mqtt_secrets() { # one password file per dev MQTT user, for the *_FILE settings
	local line
	while IFS= read -r line; do
		write_secret "$SECRETS/mqtt/${line%%:*}" "${line#*:}"
	done < <(mqtt_users)
}
