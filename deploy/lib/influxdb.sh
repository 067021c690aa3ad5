# InfluxDB 1.8 for deploy/stack.sh (sourced): authentication on, one user per writer/reader.

INFLUXD="$CACHE/influxd-$INFLUXDB_VERSION/influxd"

ensure_influxd() {
	[[ -x "$INFLUXD" ]] && return 0
	command -v go >/dev/null || { [[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH"; }
	command -v go >/dev/null || apt_install golang-go
	local t0 log="$LOGS/build-influxd.log" gobin="$CACHE/influxd-$INFLUXDB_VERSION/.gobin"
	t0="$(now)"
	rm -rf "$gobin"
	mkdir -p "$gobin"
	local pkg="github.com/influxdata/influxdb/cmd/influxd@v$INFLUXDB_VERSION"
	local ldflags="-s -w -X main.version=$INFLUXDB_VERSION -X main.branch=$INFLUXDB_VERSION -X main.commit=v$INFLUXDB_VERSION"
	say "influxdb: building influxd $INFLUXDB_VERSION with $(go version | awk '{print $3}') (go install $pkg; a few minutes the first time)"
	if ! GOBIN="$gobin" GOFLAGS=-mod=mod go install -ldflags "$ldflags" "$pkg" >"$log" 2>&1; then
		if [[ -z "${GOTOOLCHAIN:-}" ]]; then
			# the current Go may be too new for InfluxDB 1.8's dependencies; the module proxy serves older toolchains
			say "influxdb: build failed with $(go version | awk '{print $3}'); retrying with GOTOOLCHAIN=go1.21.13"
			GOTOOLCHAIN=go1.21.13 GOBIN="$gobin" GOFLAGS=-mod=mod go install -ldflags "$ldflags" "$pkg" >>"$log" 2>&1 \
				|| { tail -n 30 "$log" >&2; die "influxdb: go install failed (log: $log)"; }
		else
			tail -n 30 "$log" >&2
			die "influxdb: go install failed (log: $log)"
		fi
	fi
	mv "$gobin/influxd" "$INFLUXD"
	rm -rf "$gobin"
	say "influxdb: built $INFLUXD in $(elapsed "$t0")s"
}

start_influxdb() {
	local dir="$STACK/influxdb"
	mkdir -p "$dir"
	render "$DEPLOY/influxdb/influxdb.conf.template" "$dir/influxdb.conf" \
		"s#@INFLUX_HOST@#$INFLUX_HOST#g" "s#@INFLUX_PORT@#$INFLUX_PORT#g" \
		"s#@INFLUX_RPC_PORT@#$INFLUX_RPC_PORT#g" "s#@INFLUX_DATA_DIR@#$dir#g" "s#@LOG_DIR@#$LOGS#g"
	# influxd logs to stderr
	spawn influxdb "$LOGS/influxdb.log" "$INFLUXD" run -config "$dir/influxdb.conf"
}

wait_influxdb() {
	local deadline=$((SECONDS + TIMEOUT))
	while ! curl -fsS -o /dev/null -m 2 "http://$INFLUX_HOST:$INFLUX_PORT/ping" 2>/dev/null; do
		our_pid influxdb >/dev/null || fail_service influxdb "process exited during startup"
		((SECONDS < deadline)) || fail_service influxdb "GET /ping did not return 204 after ${TIMEOUT}s"
		sleep 0.3
	done
}

# influx_query user|- statement: POST /query; prints the JSON answer, fails on an HTTP error. The
# credentials and the statement (which may hold a password) reach curl on stdin, not as arguments.
influx_query() {
	local user="$1" statement="$2" token=""
	[[ "$user" == - ]] || token="$(secret "$SECRETS/influx/$user")"
	{
		[[ -n "$token" ]] && printf 'user = "%s"\n' "$token"
		printf 'data-urlencode = "q=%s"\n' "${statement//\"/\\\"}"
	} | curl -sS -m 10 -K - -w '\n%{http_code}' "http://$INFLUX_HOST:$INFLUX_PORT/query" 2>&1
}

redact() { sed "s/'[^']*'/'***'/g" <<<"$1"; } # InfluxQL string literals: the passwords

influx_ok() { # answer -> success when HTTP 200 and no "error" in the body
	[[ "$(tail -n 1 <<<"$1")" == 200 ]] && ! grep -q '"error"' <<<"$1"
}

# The admin (created without credentials while InfluxDB has no user, which 1.8 allows exactly
# once), the database, the sink (WRITE) and the reader (READ). Idempotent; a password changed in
# $SECRETS is set again.
influx_setup() {
	local answer user password
	answer="$(influx_query riverguard-admin "SHOW USERS")"
	if ! influx_ok "$answer"; then
		if [[ "$(tail -n 1 <<<"$answer")" == 200 ]] || influx_ok "$(influx_query - "SHOW DATABASES")"; then
			fail_service influxdb "InfluxDB at $INFLUX_HOST:$INFLUX_PORT runs with authentication off - started by an older deploy/stack.sh? Stop it and run up again"
		fi
		password="$(secret "$SECRETS/influx/riverguard-admin")"
		answer="$(influx_query - "CREATE USER \"riverguard-admin\" WITH PASSWORD '${password#*:}' WITH ALL PRIVILEGES")"
		influx_ok "$answer" || fail_service influxdb "InfluxDB at $INFLUX_HOST:$INFLUX_PORT refuses the admin password in $SECRETS/influx/riverguard-admin and already has an admin user (its data was set up with other secrets: restore them, or delete $STACK/influxdb/meta to start over)"
		say "influxdb: created the admin user riverguard-admin"
	fi
	local statements=("CREATE DATABASE $INFLUX_DB")
	for user in riverguard-sink riverguard-reader; do
		password="$(secret "$SECRETS/influx/$user")"
		password="${password#*:}"
		statements+=("CREATE USER \"$user\" WITH PASSWORD '$password'" "SET PASSWORD FOR \"$user\" = '$password'")
	done
	statements+=("GRANT WRITE ON \"$INFLUX_DB\" TO \"riverguard-sink\"" "GRANT READ ON \"$INFLUX_DB\" TO \"riverguard-reader\"")
	local statement
	for statement in "${statements[@]}"; do
		answer="$(influx_query riverguard-admin "$statement")"
		# CREATE USER of an existing user fails ("user already exists"); SET PASSWORD right after fixes the password
		if ! influx_ok "$answer" && ! grep -q 'user already exists' <<<"$answer"; then
			fail_service influxdb "$(redact "$statement") failed: $(redact "$(head -n 1 <<<"$answer")")"
		fi
	done
}
