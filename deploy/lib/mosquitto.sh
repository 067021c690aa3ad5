# Mosquitto for deploy/stack.sh (sourced): TLS listeners for password and certificate logins.

MOSQUITTO=""
MOSQ_PASSWD=""
MOSQ_SUB=""

mosquitto_bins() {
	MOSQUITTO="$(find_bin mosquitto)" || return 1
	MOSQ_PASSWD="$(find_bin mosquitto_passwd)" || return 1
	MOSQ_SUB="$(find_bin mosquitto_sub)" || return 1
}

ensure_mosquitto() {
	mosquitto_bins && return 0
	apt_install mosquitto mosquitto-clients
	mosquitto_bins || die "mosquitto installed but binaries not found"
}

mqtt_users() { # merged user:password lines; later files override earlier ones
	local files=("$DEPLOY/mosquitto/dev-users.txt")
	if [[ -n "${RIVERGUARD_MQTT_USERS_FILE:-}" ]]; then
		[[ -r "$RIVERGUARD_MQTT_USERS_FILE" ]] || die "RIVERGUARD_MQTT_USERS_FILE=$RIVERGUARD_MQTT_USERS_FILE is not readable"
		files+=("$RIVERGUARD_MQTT_USERS_FILE")
	fi
	cat "${files[@]}" | sed -e 's/\r$//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' \
		| grep -v -e '^#' -e '^$' \
		| awk -F: 'NF >= 2 && $1 != "" { pw[$1] = substr($0, length($1) + 2); if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
		           END { for (i = 1; i <= n; i++) print order[i] ":" pw[order[i]] }'
}

# mqtt_sub [--plain] args...: mosquitto_sub as the bridge. Its password and the CA come from an
# options file (mosquitto_sub reads $XDG_CONFIG_HOME/mosquitto_sub), not from the command line.
mqtt_sub() {
	local dir="$STACK/mosquitto/client" tls=1
	[[ "${1:-}" == --plain ]] && { tls=""; shift; }
	write_secret "$dir/mosquitto_sub" "$(printf -- '-u %s\n-P %s\n' "$MQTT_BRIDGE_USER" "$(secret "$SECRETS/mqtt/$MQTT_BRIDGE_USER")"
		[[ -n "$tls" ]] && printf -- '--cafile %s\n' "$SECRETS/ca.pem")"
	XDG_CONFIG_HOME="$dir" timeout 5 "$MOSQ_SUB" "$@"
}

mqtt_check() { # authenticated check over TLS: the bridge reads the retained $SYS/broker/version
	mqtt_sub -h "$MQTT_HOST" -p "$MQTT_PORT" -i "riverguard-stack-health-$$" -t "$MQTT_HEALTH_TOPIC" \
		-C 1 -W 4 >/dev/null 2>&1
}

start_mosquitto() {
	local dir="$STACK/mosquitto" run_user
	mkdir -p "$dir/data"
	run_user="$(id -un)"
	mqtt_users >"$dir/passwd.tmp"
	chmod 600 "$dir/passwd.tmp"
	"$MOSQ_PASSWD" -U "$dir/passwd.tmp" >/dev/null
	mv "$dir/passwd.tmp" "$dir/passwd"
	cp "$DEPLOY/mosquitto/acl" "$dir/acl"
	render "$DEPLOY/mosquitto/mosquitto.conf.template" "$dir/mosquitto.conf" \
		"s#@MQTT_HOST@#$MQTT_HOST#g" "s#@MQTT_PORT@#$MQTT_PORT#g" "s#@MQTT_CERT_PORT@#$MQTT_CERT_PORT#g" \
		"s#@TLS_DIR@#$STACK/tls#g" "s#@RUN_DIR@#$dir#g" \
		"s#@LOG_DEST@#file $LOGS/mosquitto.log#g" "s#@RUN_USER@#$run_user#g"
	[[ -e "$LOGS/mosquitto.log" ]] && mv -f "$LOGS/mosquitto.log" "$LOGS/mosquitto.log.prev"
	spawn mosquitto "$LOGS/mosquitto.out" "$MOSQUITTO" -c "$dir/mosquitto.conf"
}

wait_mosquitto() {
	local deadline=$((SECONDS + TIMEOUT))
	while ! mqtt_check; do
		our_pid mosquitto >/dev/null || fail_service mosquitto "process exited during startup"
		((SECONDS < deadline)) || fail_service mosquitto "not healthy after ${TIMEOUT}s (authenticated subscribe over TLS as $MQTT_BRIDGE_USER failed)"
		sleep 0.2
	done
}

check_external_mosquitto() {
	if ! mqtt_check; then
		if mqtt_sub --plain -h "$MQTT_HOST" -p "$MQTT_PORT" -t "$MQTT_HEALTH_TOPIC" -C 1 -W 3 >/dev/null 2>&1; then
			die "mosquitto: the broker at $MQTT_HOST:$MQTT_PORT speaks MQTT without TLS - started by an older deploy/stack.sh? Stop it (deploy/stack.sh down in the runtime dir that started it) or set RIVERGUARD_MQTT__PORT"
		fi
		die "mosquitto: something listens on $MQTT_HOST:$MQTT_PORT but refuses a TLS login as $MQTT_BRIDGE_USER with the dev CA ($SECRETS/ca.pem); stop it or set RIVERGUARD_MQTT__PORT"
	fi
}
