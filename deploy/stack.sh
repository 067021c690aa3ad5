#!/usr/bin/env bash
# riverguard native service stack (no Docker): Mosquitto, Kafka (KRaft), InfluxDB 1.8.
#
#   deploy/stack.sh up        install/fetch/build what is missing, start, wait until healthy
#   deploy/stack.sh down      stop the services this script started (never external ones)
#   deploy/stack.sh status    service, up/down, pid, address
#   deploy/stack.sh env       `export ...` lines for the Python settings (eval "$(deploy/stack.sh env)")
#   deploy/stack.sh logs [mosquitto|kafka|influxdb] [-f]
#
# Measured on the 2-core dev VM (Debian 12, Java 17, Go 1.26.8), seconds:
#   cold `up`, nothing cached (empty RIVERGUARD_CACHE, Go module/build caches, ~/.m2):  285
#        (240 of it compiling influxd; Maven fetch 25; other engineers' jobs were running)
#   cold `up`, empty RIVERGUARD_CACHE + runtime dir, Go/Maven caches warm:           22 (37 busy)
#   warm `up` (cache filled; services stopped):             10 on an idle machine, 16-22 with
#                                                           both cores busy (Kafka dominates)
#   `up` when everything is already running:                                          1
#
# Environment (defaults in brackets):
#   RIVERGUARD_CACHE                    [~/.cache/riverguard]  kafka jars, influxd binary
#   RIVERGUARD_STACK_DIR                [<repo>/.stack]        data, pid files, configs, logs/
#   RIVERGUARD_MQTT__HOST               [127.0.0.1]
#   RIVERGUARD_MQTT__PORT               [1883]
#   RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS [127.0.0.1:9092]       first host:port is served
#   RIVERGUARD_KAFKA_CONTROLLER_PORT    [kafka port + 1]
#   RIVERGUARD_INFLUX__URL              [http://127.0.0.1:8086]
#   RIVERGUARD_INFLUX_RPC_PORT          [influx port + 2]      backup/restore RPC
#   RIVERGUARD_MQTT_USERS_FILE          [unset]                extra user:password lines
#   RIVERGUARD_KAFKA_VERSION            [4.1.1]   RIVERGUARD_INFLUXDB_VERSION [1.8.10]
#   RIVERGUARD_KAFKA_HEAP_OPTS          [-Xms256m -Xmx768m]
#   RIVERGUARD_STACK_TIMEOUT            [90]      seconds to wait for each service to be healthy
#   RIVERGUARD_STACK_OWNER              [manual]  tag recorded for services started by this `up`;
#                                                 `down --owner TAG` stops only those
#
# A service already reachable at its configured address is used as is: not started, not
# stopped by `down`. Services this script starts have a pid file in <runtime dir>/run/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY="$REPO/deploy"
CACHE="${RIVERGUARD_CACHE:-$HOME/.cache/riverguard}"
STACK="${RIVERGUARD_STACK_DIR:-$REPO/.stack}"
LOGS="$STACK/logs"
RUN="$STACK/run"
TIMEOUT="${RIVERGUARD_STACK_TIMEOUT:-90}"
OWNER="${RIVERGUARD_STACK_OWNER:-manual}"

KAFKA_VERSION="${RIVERGUARD_KAFKA_VERSION:-4.1.1}"
INFLUXDB_VERSION="${RIVERGUARD_INFLUXDB_VERSION:-1.8.10}"
KAFKA_HEAP_OPTS="${RIVERGUARD_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"

MQTT_HOST="${RIVERGUARD_MQTT__HOST:-127.0.0.1}"
MQTT_PORT="${RIVERGUARD_MQTT__PORT:-1883}"
KAFKA_BOOTSTRAP="${RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS:-127.0.0.1:9092}"
_kafka_first="${KAFKA_BOOTSTRAP%%,*}"
KAFKA_HOST="${_kafka_first%:*}"
KAFKA_PORT="${_kafka_first##*:}"
KAFKA_CONTROLLER_PORT="${RIVERGUARD_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
INFLUX_URL="${RIVERGUARD_INFLUX__URL:-http://127.0.0.1:8086}"
_influx_hostport="${INFLUX_URL#*://}"
_influx_hostport="${_influx_hostport%%/*}"
INFLUX_HOST="${_influx_hostport%:*}"
INFLUX_PORT="${_influx_hostport##*:}"
[[ "$INFLUX_PORT" == "$_influx_hostport" ]] && INFLUX_PORT=8086
INFLUX_RPC_PORT="${RIVERGUARD_INFLUX_RPC_PORT:-$((INFLUX_PORT + 2))}"
INFLUX_DB="riverguard"

# Dev-only MQTT credentials used for the health check and printed by `env`.
MQTT_BRIDGE_USER="riverguard-bridge"
# retained broker topic the bridge may read (acl); a literal MQTT topic, not a shell variable
# shellcheck disable=SC2016
MQTT_HEALTH_TOPIC='$SYS/broker/version'

SERVICES=(mosquitto kafka influxdb)

# ---------------------------------------------------------------------------------------
# helpers

say() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

as_root() {
	if [[ $(id -u) -eq 0 ]]; then "$@"
	elif command -v sudo >/dev/null; then sudo "$@"
	else die "need root (or sudo) to run: $*"; fi
}

# apt-get install, running `apt-get update` only when the install fails without it.
apt_install() {
	command -v apt-get >/dev/null || die "cannot install $* automatically (no apt-get); install it and re-run"
	say "installing $* (apt)"
	local log="$LOGS/apt.log"
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1; then
		as_root apt-get update >>"$log" 2>&1 || true
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1 \
			|| { tail -n 20 "$log" >&2; die "apt-get install $* failed (log: $log)"; }
	fi
}

find_bin() { # name -> path (also looks in sbin, which is not on a normal user's PATH)
	local p
	p="$(command -v "$1" 2>/dev/null)" && { echo "$p"; return 0; }
	for p in /usr/sbin/"$1" /usr/local/sbin/"$1" /sbin/"$1"; do [[ -x "$p" ]] && { echo "$p"; return 0; }; done
	return 1
}

port_open() { # host port
	timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

pidfile() { echo "$RUN/$1.pid"; }

# pid of a service this script started and that is still alive, else non-zero
our_pid() {
	local f pid pattern
	f="$(pidfile "$1")"
	[[ -f "$f" ]] || return 1
	pid="$(cat "$f")"
	[[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
	case "$1" in
	mosquitto) pattern="mosquitto" ;;
	kafka) pattern="kafka.Kafka" ;;
	influxdb) pattern="influxd" ;;
	esac
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern" || return 1
	echo "$pid"
}

address() {
	case "$1" in
	mosquitto) echo "mqtt://$MQTT_HOST:$MQTT_PORT" ;;
	kafka) echo "$KAFKA_HOST:$KAFKA_PORT (controller $KAFKA_HOST:$KAFKA_CONTROLLER_PORT)" ;;
	influxdb) echo "http://$INFLUX_HOST:$INFLUX_PORT" ;;
	esac
}

is_reachable() {
	case "$1" in
	mosquitto) port_open "$MQTT_HOST" "$MQTT_PORT" ;;
	kafka) port_open "$KAFKA_HOST" "$KAFKA_PORT" ;;
	influxdb) curl -fsS -o /dev/null -m 2 "http://$INFLUX_HOST:$INFLUX_PORT/ping" 2>/dev/null ;;
	esac
}

main_log() {
	case "$1" in
	mosquitto) echo "$LOGS/mosquitto.log" ;;
	kafka) echo "$LOGS/kafka/server.log" ;;
	influxdb) echo "$LOGS/influxdb.log" ;;
	esac
}

fail_service() { # svc message
	local svc="$1" msg="$2" log
	log="$(main_log "$svc")"
	printf '[stack] ERROR: %s: %s\n' "$svc" "$msg" >&2
	for f in "$log" "$LOGS/$svc.out"; do
		if [[ -s "$f" && ( "$f" == "$log" || "$svc" != influxdb ) ]]; then
			printf '[stack] ---- last lines of %s ----\n' "$f" >&2
			tail -n 30 "$f" >&2
			printf '[stack] ---- end of %s ----\n' "$f" >&2
		fi
	done
	printf '[stack] %s log: %s (all logs: %s)\n' "$svc" "$log" "$LOGS" >&2
	exit 1
}

# spawn svc outfile cmd...: start cmd detached (own session, no tty, without our lock fd),
# stdout+stderr appended to outfile, pid recorded in run/<svc>.pid
spawn() {
	local svc="$1" out="$2"
	shift 2
	[[ -e "$out" ]] && mv -f "$out" "$out.prev"
	printf '%s stack.sh: starting %s\n' "$(date -Is)" "$*" >"$out"
	(cd "$STACK" && exec setsid nohup "$@" >>"$out" 2>&1 </dev/null 9>&-) &
	local pid=$!
	echo "$pid" >"$(pidfile "$svc")"
	echo "$OWNER" >"$RUN/$svc.owner"
	rm -f "$RUN/$svc.external"
	STARTED_NOW+=("$svc")
	say "$svc: started (pid $pid) at $(address "$svc")"
}

render() { # template output sed-expressions...
	local tpl="$1" out="$2"
	shift 2
	local args=()
	for e in "$@"; do args+=(-e "$e"); done
	sed "${args[@]}" "$tpl" >"$out.tmp"
	if grep -q '@[A-Z_]*@' "$out.tmp"; then
		die "unsubstituted placeholder in $out: $(grep -o '@[A-Z_]*@' "$out.tmp" | sort -u | tr '\n' ' ')"
	fi
	mv "$out.tmp" "$out"
}

# ---------------------------------------------------------------------------------------
# mosquitto

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

user_password() { mqtt_users | awk -F: -v u="$1" '$1 == u { print substr($0, length($1) + 2) }'; }

mqtt_check() { # authenticated check: the bridge reads the retained $SYS/broker/version
	local pw
	pw="$(user_password "$MQTT_BRIDGE_USER")"
	timeout 5 "$MOSQ_SUB" -h "$MQTT_HOST" -p "$MQTT_PORT" -u "$MQTT_BRIDGE_USER" -P "$pw" \
		-i "riverguard-stack-health-$$" -t "$MQTT_HEALTH_TOPIC" -C 1 -W 4 >/dev/null 2>&1
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
		"s#@MQTT_HOST@#$MQTT_HOST#g" "s#@MQTT_PORT@#$MQTT_PORT#g" "s#@RUN_DIR@#$dir#g" \
		"s#@LOG_DEST@#file $LOGS/mosquitto.log#g" "s#@RUN_USER@#$run_user#g"
	[[ -e "$LOGS/mosquitto.log" ]] && mv -f "$LOGS/mosquitto.log" "$LOGS/mosquitto.log.prev"
	spawn mosquitto "$LOGS/mosquitto.out" "$MOSQUITTO" -c "$dir/mosquitto.conf"
}

wait_mosquitto() {
	local deadline=$((SECONDS + TIMEOUT))
	while ! mqtt_check; do
		our_pid mosquitto >/dev/null || fail_service mosquitto "process exited during startup"
		((SECONDS < deadline)) || fail_service mosquitto "not healthy after ${TIMEOUT}s (authenticated subscribe as $MQTT_BRIDGE_USER failed)"
		sleep 0.2
	done
}

check_external_mosquitto() {
	mqtt_check || die "mosquitto: something listens on $MQTT_HOST:$MQTT_PORT but rejects the dev credentials of $MQTT_BRIDGE_USER; stop it or set RIVERGUARD_MQTT__PORT"
	# a broker that also accepts a wrong password is not ours (e.g. Debian's default
	# mosquitto.service with anonymous access): usable, but the ACL tests will not hold.
	if timeout 5 "$MOSQ_SUB" -h "$MQTT_HOST" -p "$MQTT_PORT" -u "$MQTT_BRIDGE_USER" -P "wrong-$$" \
		-t "$MQTT_HEALTH_TOPIC" -C 1 -W 3 >/dev/null 2>&1; then
		say "WARNING: the broker at $MQTT_HOST:$MQTT_PORT accepts wrong passwords: it is not configured with deploy/mosquitto (auth/ACL tests will fail). Stop it (e.g. systemctl stop mosquitto) or set RIVERGUARD_MQTT__PORT."
	fi
}

# ---------------------------------------------------------------------------------------
# kafka

KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
JAVA=""

ensure_java() {
	JAVA="$(command -v java 2>/dev/null)" || { apt_install openjdk-17-jre-headless; JAVA="$(command -v java)"; }
	local v
	v="$("$JAVA" -version 2>&1 | awk -F'"' '/version/ { print $2; exit }')"
	[[ "${v%%.*}" -ge 17 ]] 2>/dev/null || die "kafka $KAFKA_VERSION needs Java 17+, found '$v' at $JAVA"
}

ensure_kafka_jars() {
	local stamp="$KAFKA_HOME/.complete" want
	want="$(sha256sum "$DEPLOY/kafka/pom.xml" | cut -c1-16) $KAFKA_VERSION"
	[[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return 0
	command -v mvn >/dev/null || apt_install maven
	say "kafka: fetching kafka_2.13 $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
	local t0 log="$LOGS/build-kafka-mvn.log"
	t0="$(now)"
	rm -rf "$KAFKA_LIBS.tmp"
	mkdir -p "$KAFKA_HOME"
	if ! mvn -B -f "$DEPLOY/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS.tmp" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		die "kafka: maven could not fetch the broker jars (log: $log)"
	fi
	rm -rf "$KAFKA_LIBS"
	mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
	echo "$want" >"$stamp"
	say "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $(elapsed "$t0")s"
}

kafka_java() { # main-class args...
	"$JAVA" -Dlog4j2.configurationFile="$DEPLOY/kafka/log4j2.yaml" -Dkafka.logs.dir="$LOGS/kafka" \
		-cp "$KAFKA_LIBS/*" "$@"
}

start_kafka() {
	local dir="$STACK/kafka"
	mkdir -p "$dir/data" "$LOGS/kafka"
	render "$DEPLOY/kafka/server.properties.template" "$dir/server.properties" \
		"s#@KAFKA_HOST@#$KAFKA_HOST#g" "s#@KAFKA_PORT@#$KAFKA_PORT#g" \
		"s#@KAFKA_CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" "s#@KAFKA_DATA_DIR@#$dir/data#g"
	if [[ ! -f "$dir/data/meta.properties" ]]; then
		local cluster_id
		# Kafka cluster ids are 16 random bytes, url-safe base64 without padding. Like Kafka's own
		# Uuid.randomUuid, draw again when it starts with '-': the storage tool's argument parser
		# takes "-t -Xthu..." for a missing value (one stack in 64 failed to format before).
		cluster_id="-"
		while [[ "$cluster_id" == -* ]]; do
			cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
		done
		say "kafka: formatting $dir/data (cluster id $cluster_id)"
		kafka_java -Xmx256m -XX:TieredStopAtLevel=1 kafka.tools.StorageTool format \
			--cluster-id="$cluster_id" -c "$dir/server.properties" >>"$LOGS/kafka-format.log" 2>&1 \
			|| { tail -n 20 "$LOGS/kafka-format.log" >&2; die "kafka: storage format failed (log: $LOGS/kafka-format.log)"; }
	fi
	local f
	for f in server controller state-change; do # keep the previous run's logs as *.prev
		[[ -e "$LOGS/kafka/$f.log" ]] && mv -f "$LOGS/kafka/$f.log" "$LOGS/kafka/$f.log.prev"
	done
	# shellcheck disable=SC2086
	spawn kafka "$LOGS/kafka.out" "$JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$DEPLOY/kafka/log4j2.yaml" -Dkafka.logs.dir="$LOGS/kafka" \
		-cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties"
}

# A real client round trip: ApiVersions + Metadata (is a broker registered and unfenced?).
# deploy/kafka/healthcheck.py speaks the protocol with the stdlib (~0.1 s); without python3
# Kafka's own BrokerApiVersionsCommand does the same in a JVM (~2-3 s).
kafka_check() {
	if command -v python3 >/dev/null; then
		python3 "$DEPLOY/kafka/healthcheck.py" "$KAFKA_HOST:$KAFKA_PORT" 5 >/dev/null 2>&1
		return
	fi
	local out
	out="$(timeout 30 "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
		-Dlog4j2.configurationFile="$DEPLOY/kafka/log4j2.yaml" -Dkafka.logs.dir="$LOGS/kafka" \
		-cp "$KAFKA_LIBS/*" org.apache.kafka.tools.BrokerApiVersionsCommand \
		--bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" 2>&1)" || return 1
	grep -q "isFenced: false" <<<"$out"
}

wait_kafka() { # [external]
	local deadline=$((SECONDS + TIMEOUT)) external="${1:-}"
	while ! port_open "$KAFKA_HOST" "$KAFKA_PORT"; do
		[[ -n "$external" ]] || our_pid kafka >/dev/null || fail_service kafka "process exited during startup"
		((SECONDS < deadline)) || fail_service kafka "port $KAFKA_HOST:$KAFKA_PORT not open after ${TIMEOUT}s"
		sleep 0.3
	done
	while ! kafka_check; do
		[[ -n "$external" ]] || our_pid kafka >/dev/null || fail_service kafka "process exited during startup"
		((SECONDS < deadline)) || fail_service kafka "no healthy broker behind $KAFKA_HOST:$KAFKA_PORT after ${TIMEOUT}s (BrokerApiVersionsCommand)"
		sleep 0.3
	done
}

# ---------------------------------------------------------------------------------------
# influxdb

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

influx_create_db() {
	local out
	out="$(curl -fsS -m 10 -XPOST "http://$INFLUX_HOST:$INFLUX_PORT/query" --data-urlencode "q=CREATE DATABASE $INFLUX_DB" 2>&1)" \
		|| fail_service influxdb "CREATE DATABASE $INFLUX_DB failed: $out"
	grep -q '"error"' <<<"$out" && fail_service influxdb "CREATE DATABASE $INFLUX_DB failed: $out"
	return 0
}

# ---------------------------------------------------------------------------------------
# verbs

lock() { # serialise up/down between concurrent callers
	mkdir -p "$STACK"
	exec 9>"$STACK/.lock"
	flock -w 600 9 || die "another deploy/stack.sh holds $STACK/.lock"
}

STARTED_NOW=()

# a failed or interrupted `up` stops what it started itself, so no half stack is left behind
up_exit() {
	local rc=$? svc
	trap - EXIT INT TERM
	if ((rc != 0 && ${#STARTED_NOW[@]})); then
		say "up failed: stopping what this run started (${STARTED_NOW[*]})"
		for svc in "${STARTED_NOW[@]}"; do stop_service "$svc" || true; done
	fi
	exit "$rc"
}

cmd_up() {
	local t0 svc
	t0="$(now)"
	mkdir -p "$STACK" "$LOGS" "$RUN" "$CACHE"
	lock
	trap up_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	# 1. decide what to start; install/fetch/build only what is needed
	local -A start=()
	for svc in "${SERVICES[@]}"; do
		if our_pid "$svc" >/dev/null; then
			say "$svc: already running (pid $(our_pid "$svc")) at $(address "$svc")"
		elif is_reachable "$svc"; then
			rm -f "$(pidfile "$svc")" "$RUN/$svc.owner"
			touch "$RUN/$svc.external"
			say "$svc: using the service already reachable at $(address "$svc") (not started, will not be stopped)"
		else
			rm -f "$(pidfile "$svc")" "$RUN/$svc.owner" "$RUN/$svc.external"
			start[$svc]=1
		fi
	done
	# 2. start each service as soon as its binaries are there (Kafka boots while influxd
	#    builds on a cold cache), then wait for each
	ensure_mosquitto # the clients are also needed to check an external broker
	[[ -n "${start[mosquitto]:-}" ]] && start_mosquitto
	if [[ ! -f "$RUN/kafka.external" ]]; then
		ensure_java
		ensure_kafka_jars
	fi
	[[ -n "${start[kafka]:-}" ]] && start_kafka
	if [[ -n "${start[influxdb]:-}" ]]; then
		ensure_influxd
		start_influxdb
	fi

	if [[ -f "$RUN/mosquitto.external" ]]; then check_external_mosquitto; else wait_mosquitto; fi
	say "mosquitto: healthy after $(elapsed "$t0")s (authenticated subscribe as $MQTT_BRIDGE_USER)"
	[[ -f "$RUN/influxdb.external" ]] || wait_influxdb
	influx_create_db
	say "influxdb: healthy after $(elapsed "$t0")s (/ping 204, database '$INFLUX_DB' exists)"
	if [[ -f "$RUN/kafka.external" ]]; then
		# an external broker is checked with the stdlib client only (no JVM/jars needed for it)
		if command -v python3 >/dev/null; then
			wait_kafka external
			say "kafka: healthy external broker at $KAFKA_HOST:$KAFKA_PORT (not started, will not be stopped)"
		else
			say "kafka: external broker at $KAFKA_HOST:$KAFKA_PORT (port open; not checked further)"
		fi
	else
		wait_kafka
		say "kafka: healthy after $(elapsed "$t0")s (ApiVersions + Metadata list an unfenced broker at $KAFKA_HOST:$KAFKA_PORT)"
	fi

	say "stack up in $(elapsed "$t0")s; logs in $LOGS; settings: eval \"\$($0 env)\""
}

stop_service() {
	local svc="$1" pid i
	pid="$(our_pid "$svc")" || { rm -f "$(pidfile "$svc")" "$RUN/$svc.owner"; return 0; }
	say "$svc: stopping pid $pid"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do # up to 30 s (Kafka's controlled shutdown takes a few)
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "$svc: still running after 30s, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.5
	fi
	rm -f "$(pidfile "$svc")" "$RUN/$svc.owner"
}

cmd_down() {
	local only_owner="" svcs=() svc
	while (($#)); do
		case "$1" in
		--owner) only_owner="$2"; shift 2 ;;
		mosquitto | kafka | influxdb) svcs+=("$1"); shift ;;
		*) die "down: unknown argument $1 (usage: down [--owner TAG] [mosquitto|kafka|influxdb]...)" ;;
		esac
	done
	((${#svcs[@]})) || svcs=(influxdb kafka mosquitto)
	[[ -d "$STACK" ]] || return 0
	lock
	for svc in "${svcs[@]}"; do
		if [[ -n "$only_owner" && -f "$RUN/$svc.owner" && "$(cat "$RUN/$svc.owner")" != "$only_owner" ]]; then
			say "$svc: started by '$(cat "$RUN/$svc.owner")', not '$only_owner': left running"
			continue
		fi
		if [[ -f "$(pidfile "$svc")" ]]; then
			stop_service "$svc"
		elif [[ -f "$RUN/$svc.external" ]]; then
			say "$svc: external service at $(address "$svc"): not stopped"
			rm -f "$RUN/$svc.external"
		fi
	done
}

cmd_status() {
	local svc pid state rc=0
	printf '%-10s %-9s %-8s %-9s %s\n' SERVICE STATE PID OWNER ADDRESS
	for svc in "${SERVICES[@]}"; do
		if pid="$(our_pid "$svc")"; then
			if is_reachable "$svc"; then state=up; else state=starting; rc=1; fi
			printf '%-10s %-9s %-8s %-9s %s\n' "$svc" "$state" "$pid" "$(cat "$RUN/$svc.owner" 2>/dev/null || echo '?')" "$(address "$svc")"
		elif is_reachable "$svc"; then
			printf '%-10s %-9s %-8s %-9s %s\n' "$svc" up - external "$(address "$svc")"
		else
			printf '%-10s %-9s %-8s %-9s %s\n' "$svc" down - - "$(address "$svc")"
			rc=1
		fi
	done
	echo "logs: $LOGS"
	return $rc
}

cmd_env() {
	local bridge_pw
	bridge_pw="$(user_password "$MQTT_BRIDGE_USER" 2>/dev/null || true)"
	local -a vars=(
		RIVERGUARD_MQTT__HOST "$MQTT_HOST"
		RIVERGUARD_MQTT__PORT "$MQTT_PORT"
		RIVERGUARD_MQTT__USERNAME "$MQTT_BRIDGE_USER"
		RIVERGUARD_MQTT__PASSWORD "$bridge_pw"
		RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS "$KAFKA_BOOTSTRAP"
		RIVERGUARD_INFLUX__URL "$INFLUX_URL"
		RIVERGUARD_INFLUX__ORG "-"
		RIVERGUARD_INFLUX__BUCKET "$INFLUX_DB/autogen"
		RIVERGUARD_INFLUX__TOKEN "riverguard:riverguard"
	)
	local i
	for ((i = 0; i < ${#vars[@]}; i += 2)); do
		printf 'export %s=%q\n' "${vars[i]}" "${vars[i + 1]}"
	done
}

cmd_logs() {
	local follow="" svcs=() svc files=()
	for a in "$@"; do
		case "$a" in
		-f | --follow) follow=1 ;;
		mosquitto | kafka | influxdb) svcs+=("$a") ;;
		*) die "logs: unknown argument $a (usage: logs [mosquitto|kafka|influxdb] [-f])" ;;
		esac
	done
	((${#svcs[@]})) || svcs=("${SERVICES[@]}")
	for svc in "${svcs[@]}"; do
		for f in "$(main_log "$svc")" "$LOGS/$svc.out"; do
			[[ -s "$f" ]] && ! [[ " ${files[*]:-} " == *" $(readlink -f "$f") "* ]] && files+=("$(readlink -f "$f")")
		done
	done
	((${#files[@]})) || { echo "no logs yet in $LOGS"; return 0; }
	if [[ -n "$follow" ]]; then tail -n 50 -F "${files[@]}"; else tail -n 50 "${files[@]}"; fi
}

usage() {
	sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

verb="${1:-}"
[[ $# -gt 0 ]] && shift
case "$verb" in
up) cmd_up "$@" ;;
down) cmd_down "$@" ;;
status) cmd_status "$@" ;;
env) cmd_env "$@" ;;
logs) cmd_logs "$@" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
