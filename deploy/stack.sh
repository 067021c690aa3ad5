#!/usr/bin/env bash
# riverguard native service stack (no Docker): Mosquitto, Kafka (KRaft), InfluxDB 1.8 - with TLS
# and authentication on every hop (see README "Security").
#
#   deploy/stack.sh up [--cluster]  install/fetch/build what is missing, start, wait until healthy
#                                   (--cluster: Kafka as three nodes, replication 3, min ISR 2)
#   deploy/stack.sh down            stop the services this script started (never external ones)
#   deploy/stack.sh status          service, up/down, pid, address
#   deploy/stack.sh env [WHO]       `export ...` lines for the Python settings (eval "$(deploy/stack.sh env)");
#                                   WHO: admin (default: may do everything, for a developer's shell and
#                                   the tests), or the least-privilege identity of one service:
#                                   ingest | detect | alert | sink | reader (`riverguard history`, Grafana)
#   deploy/stack.sh cert STATION    a client certificate (CN = STATION) for the MQTT certificate
#                                   listener; prints the settings of a station that uses it
#   deploy/stack.sh logs [mosquitto|kafka|influxdb] [-f]
#   deploy/stack.sh secrets         certificates and passwords only, for deploy/docker-compose.yml
#   deploy/stack.sh kafka-access    apply Kafka principals and ACLs to a running Kafka (docker-compose)
#
# Measured on the 2-core dev VM (Debian 12, Java 17, Go 1.26.8), seconds:
#   cold `up`, nothing cached (empty RIVERGUARD_CACHE, Go module/build caches, ~/.m2):  285
#        (240 of it compiling influxd; Maven fetch 25; other engineers' jobs were running)
#   cold `up`, empty RIVERGUARD_CACHE + runtime dir, Go/Maven caches warm:           22 (37 busy)
#   warm `up` (cache filled; services stopped):             10 on an idle machine, 16-22 with
#                                                           both cores busy (Kafka dominates)
#   first `up` of a runtime dir adds ~4 s: Kafka principals and ACLs (deploy/kafka/Access.java)
#   `up` when everything is already running:                                          1
#
# Environment (defaults in brackets):
#   RIVERGUARD_CACHE                    [~/.cache/riverguard]  kafka jars, influxd binary
#   RIVERGUARD_SECRETS_DIR              [$RIVERGUARD_CACHE/dev-secrets]  dev CA and passwords of
#                                                              this user, shared by all its stacks
#   RIVERGUARD_STACK_DIR                [<repo>/.stack]        data, pid files, configs, certificates, logs/
#   RIVERGUARD_MQTT__HOST               [127.0.0.1]
#   RIVERGUARD_MQTT__PORT               [8883]    MQTT over TLS, username + password
#   RIVERGUARD_MQTT_CERT_PORT           [mqtt port + 1]        MQTT over TLS, client certificate
#   RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS [127.0.0.1:9092]       first host:port is served (SASL_SSL)
#   RIVERGUARD_KAFKA_CONTROLLER_PORT    [kafka port + 1]       KRaft quorum (mutual TLS)
#   RIVERGUARD_KAFKA_BROKER_PORT        [kafka port + 2]       replication between nodes (mutual TLS)
#   RIVERGUARD_KAFKA_NODES              [1]       3 with --cluster; node i uses the three ports + 3*(i-1)
#   RIVERGUARD_INFLUX__URL              [http://127.0.0.1:8086]
#   RIVERGUARD_INFLUX_RPC_PORT          [influx port + 2]      backup/restore RPC
#   RIVERGUARD_MQTT_USERS_FILE          [unset]                extra user:password lines
#   RIVERGUARD_KAFKA_VERSION            [4.1.1]   RIVERGUARD_INFLUXDB_VERSION [1.8.10]
#   RIVERGUARD_KAFKA_HEAP_OPTS          [-Xms256m -Xmx768m; per node of a cluster -Xms128m -Xmx384m]
#   RIVERGUARD_STACK_TIMEOUT            [90]      seconds to wait for each service to be healthy
#   RIVERGUARD_STACK_OWNER              [manual]  tag recorded for services started by this `up`;
#                                                 `down --owner TAG` stops only those
#
# A service already reachable at its configured address is used as is: not started, not
# stopped by `down` - if it is one this script could have started (TLS with the dev CA, the dev
# credentials); a plaintext one (an older stack.sh) is reported, never used. Services this script
# starts have a pid file in <runtime dir>/run/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY="$REPO/deploy"
CACHE="${RIVERGUARD_CACHE:-$HOME/.cache/riverguard}"
SECRETS="${RIVERGUARD_SECRETS_DIR:-$CACHE/dev-secrets}"
STACK="${RIVERGUARD_STACK_DIR:-$REPO/.stack}"
LOGS="$STACK/logs"
RUN="$STACK/run"
TIMEOUT="${RIVERGUARD_STACK_TIMEOUT:-90}"
OWNER="${RIVERGUARD_STACK_OWNER:-manual}"
#: Written beside each pid file: services started by a stack.sh without TLS/auth have none.
STACK_FORMAT="tls-auth-1"

KAFKA_VERSION="${RIVERGUARD_KAFKA_VERSION:-4.1.1}"
INFLUXDB_VERSION="${RIVERGUARD_INFLUXDB_VERSION:-1.8.10}"

MQTT_HOST="${RIVERGUARD_MQTT__HOST:-127.0.0.1}"
MQTT_PORT="${RIVERGUARD_MQTT__PORT:-8883}"
MQTT_CERT_PORT="${RIVERGUARD_MQTT_CERT_PORT:-$((MQTT_PORT + 1))}"
KAFKA_BOOTSTRAP="${RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS:-127.0.0.1:9092}"
_kafka_first="${KAFKA_BOOTSTRAP%%,*}"
KAFKA_HOST="${_kafka_first%:*}"
KAFKA_PORT="${_kafka_first##*:}"
KAFKA_CONTROLLER_PORT="${RIVERGUARD_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_BROKER_PORT="${RIVERGUARD_KAFKA_BROKER_PORT:-$((KAFKA_PORT + 2))}"
KAFKA_NODES="${RIVERGUARD_KAFKA_NODES:-1}"
KAFKA_NODES_ASKED="${RIVERGUARD_KAFKA_NODES:-}"
INFLUX_URL="${RIVERGUARD_INFLUX__URL:-http://127.0.0.1:8086}"
_influx_hostport="${INFLUX_URL#*://}"
_influx_hostport="${_influx_hostport%%/*}"
INFLUX_HOST="${_influx_hostport%:*}"
INFLUX_PORT="${_influx_hostport##*:}"
[[ "$INFLUX_PORT" == "$_influx_hostport" ]] && INFLUX_PORT=8086
INFLUX_RPC_PORT="${RIVERGUARD_INFLUX_RPC_PORT:-$((INFLUX_PORT + 2))}"
INFLUX_DB="riverguard"

# The bridge's dev MQTT login: the health check uses it, `env` prints it.
MQTT_BRIDGE_USER="riverguard-bridge"
# retained broker topic the bridge may read (acl); a literal MQTT topic, not a shell variable
# shellcheck disable=SC2016
MQTT_HEALTH_TOPIC='$SYS/broker/version'

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

kafka_service() { # node -> service name
	if ((KAFKA_NODES == 1)); then echo kafka; else echo "kafka-$1"; fi
}

services() { # every service of this stack, in start order
	local i
	echo mosquitto
	for ((i = 1; i <= KAFKA_NODES; i++)); do kafka_service "$i"; done
	echo influxdb
}

# pid of a service this script started and that is still alive, else non-zero
our_pid() {
	local f pid pattern
	f="$(pidfile "$1")"
	[[ -f "$f" ]] || return 1
	pid="$(cat "$f")"
	[[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
	case "$1" in
	mosquitto) pattern="mosquitto" ;;
	kafka*) pattern="kafka.Kafka" ;;
	influxdb) pattern="influxd" ;;
	esac
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern" || return 1
	echo "$pid"
}

# a running service of ours without a format stamp was started by a stack.sh without TLS/auth
old_format() { our_pid "$1" >/dev/null && [[ "$(cat "$RUN/$1.format" 2>/dev/null)" != "$STACK_FORMAT" ]]; }

address() {
	local node
	case "$1" in
	mosquitto) echo "mqtts://$MQTT_HOST:$MQTT_PORT (password), :$MQTT_CERT_PORT (certificate)" ;;
	kafka*)
		node="$(kafka_node "$1")"
		echo "$KAFKA_HOST:$(kafka_port "$node" client) (SASL_SSL; controller :$(kafka_port "$node" controller), inter-broker :$(kafka_port "$node" broker))" ;;
	influxdb) echo "http://$INFLUX_HOST:$INFLUX_PORT (authentication on)" ;;
	esac
}

is_reachable() {
	case "$1" in
	mosquitto) port_open "$MQTT_HOST" "$MQTT_PORT" ;;
	kafka*) port_open "$KAFKA_HOST" "$(kafka_port "$(kafka_node "$1")" client)" ;;
	influxdb) curl -fsS -o /dev/null -m 2 "http://$INFLUX_HOST:$INFLUX_PORT/ping" 2>/dev/null ;;
	esac
}

main_log() {
	case "$1" in
	mosquitto) echo "$LOGS/mosquitto.log" ;;
	kafka*) echo "$(kafka_logs "$(kafka_node "$1")")/server.log" ;;
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
	(cd "$STACK" && exec setsid nohup "$@" >>"$out" 2>&1 </dev/null 8>&- 9>&-) &
	local pid=$!
	echo "$pid" >"$(pidfile "$svc")"
	echo "$OWNER" >"$RUN/$svc.owner"
	echo "$STACK_FORMAT" >"$RUN/$svc.format"
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
# the services

# shellcheck source=deploy/lib/pki.sh
source "$DEPLOY/lib/pki.sh"
# shellcheck source=deploy/lib/mosquitto.sh
source "$DEPLOY/lib/mosquitto.sh"
# shellcheck source=deploy/lib/kafka.sh
source "$DEPLOY/lib/kafka.sh"
# shellcheck source=deploy/lib/influxdb.sh
source "$DEPLOY/lib/influxdb.sh"

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
		stop_services "${STARTED_NOW[@]}" || true
	fi
	exit "$rc"
}

# Services running from a runtime dir of a stack.sh without TLS/auth: say what to do, never mix.
refuse_old_stack() {
	local svc old=()
	for svc in $(services); do old_format "$svc" && old+=("$svc (pid $(our_pid "$svc"))"); done
	((${#old[@]})) || return 0
	die "${old[*]} in $STACK were started by an older deploy/stack.sh, without TLS and authentication. Stop them with \`$0 down\` (this version stops them too; data is kept) and run \`$0 up\` again: the same data then runs with TLS and authentication. Clients need the new settings: eval \"\$($0 env)\" after that."
}

cmd_up() {
	local t0 svc
	while (($#)); do
		case "$1" in
		--cluster) KAFKA_NODES=3; KAFKA_NODES_ASKED=3; shift ;;
		*) die "up: unknown argument $1 (usage: up [--cluster])" ;;
		esac
	done
	t0="$(now)"
	mkdir -p "$STACK" "$LOGS" "$RUN" "$CACHE"
	lock
	trap up_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	check_kafka_shape
	refuse_old_stack
	ensure_secrets

	# 1. decide what to start; install/fetch/build only what is needed
	local -A start=()
	local kafka_starts=""
	for svc in $(services); do
		if our_pid "$svc" >/dev/null; then
			say "$svc: already running (pid $(our_pid "$svc")) at $(address "$svc")"
		elif is_reachable "$svc"; then
			rm -f "$(pidfile "$svc")" "$RUN/$svc.owner" "$RUN/$svc.format"
			touch "$RUN/$svc.external"
			say "$svc: using the service already reachable at $(address "$svc") (not started, will not be stopped)"
		else
			rm -f "$(pidfile "$svc")" "$RUN/$svc.owner" "$RUN/$svc.format" "$RUN/$svc.external"
			start[$svc]=1
			[[ "$svc" == kafka* ]] && kafka_starts=1
		fi
	done
	# 2. start each service as soon as its binaries are there (Kafka boots while influxd
	#    builds on a cold cache), then wait for each
	ensure_mosquitto # the clients are also needed to check an external broker
	[[ -n "${start[mosquitto]:-}" ]] && start_mosquitto
	if [[ -n "$kafka_starts" ]]; then
		ensure_java
		ensure_kafka_jars
		prepare_kafka
		for svc in $(services); do
			[[ "$svc" == kafka* && -n "${start[$svc]:-}" ]] && start_kafka "$svc"
		done
	fi
	if [[ -n "${start[influxdb]:-}" ]]; then
		ensure_influxd
		start_influxdb
	fi

	if [[ -f "$RUN/mosquitto.external" ]]; then check_external_mosquitto; else wait_mosquitto; fi
	say "mosquitto: healthy after $(elapsed "$t0")s (login over TLS as $MQTT_BRIDGE_USER; certificate logins on :$MQTT_CERT_PORT)"
	[[ -f "$RUN/influxdb.external" ]] || wait_influxdb
	influx_setup
	say "influxdb: healthy after $(elapsed "$t0")s (/ping 204; users riverguard-admin, -sink (write), -reader (read); database '$INFLUX_DB')"
	if [[ -n "$kafka_starts" ]]; then
		[[ -n "$JAVA" ]] || ensure_java
		wait_kafka
		say "kafka: healthy after $(elapsed "$t0")s ($KAFKA_NODES node(s) registered; SCRAM login of riverguard-admin over TLS at $KAFKA_HOST:$KAFKA_PORT)"
	else
		# running already, or external: checked with the stdlib client only (no JVM needed)
		check_external_kafka
		say "kafka: healthy at $(kafka_bootstrap) (SCRAM login of riverguard-admin over TLS)"
	fi

	say "stack up in $(elapsed "$t0")s; logs in $LOGS; settings: eval \"\$($0 env)\""
}

any_alive() { # pid... -> success if one of them still runs
	local pid
	for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done
	return 1
}

# stop_services svc...: SIGTERM to all of them at once, then wait (the nodes of a Kafka cluster
# shut down together in seconds; one by one, each waits for the others to take its partitions)
stop_services() {
	local svc pid i pids=() names=()
	for svc in "$@"; do
		if pid="$(our_pid "$svc")"; then
			say "$svc: stopping pid $pid"
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			names+=("$svc")
		fi
	done
	for ((i = 0; i < 300; i++)); do # up to 30 s (Kafka's controlled shutdown takes a few)
		any_alive "${pids[@]}" || break
		sleep 0.1
	done
	for ((i = 0; i < ${#pids[@]}; i++)); do
		if kill -0 "${pids[i]}" 2>/dev/null; then
			say "${names[i]}: still running after 30s, sending SIGKILL"
			kill -KILL "${pids[i]}" 2>/dev/null || true
			sleep 0.5
		fi
	done
	for svc in "$@"; do rm -f "$(pidfile "$svc")" "$RUN/$svc.owner" "$RUN/$svc.format"; done
}

cmd_down() {
	local only_owner="" svcs=() svc all
	check_kafka_shape
	all="$(services | tac)"
	while (($#)); do
		case "$1" in
		--owner) only_owner="$2"; shift 2 ;;
		kafka) for svc in $all; do [[ "$svc" == kafka* ]] && svcs+=("$svc"); done; shift ;;
		*)
			grep -qx -- "$1" <<<"$all" || die "down: unknown argument $1 (usage: down [--owner TAG] [$(tr '\n' '|' <<<"$all")kafka]...)"
			svcs+=("$1")
			shift ;;
		esac
	done
	((${#svcs[@]})) || read -r -d '' -a svcs <<<"$all" || true
	[[ -d "$STACK" ]] || return 0
	lock
	local stop=()
	for svc in "${svcs[@]}"; do
		if [[ -n "$only_owner" && -f "$RUN/$svc.owner" && "$(cat "$RUN/$svc.owner")" != "$only_owner" ]]; then
			say "$svc: started by '$(cat "$RUN/$svc.owner")', not '$only_owner': left running"
			continue
		fi
		if [[ -f "$(pidfile "$svc")" ]]; then
			stop+=("$svc")
		elif [[ -f "$RUN/$svc.external" ]]; then
			say "$svc: external service at $(address "$svc"): not stopped"
			rm -f "$RUN/$svc.external"
		fi
	done
	((${#stop[@]} == 0)) || stop_services "${stop[@]}"
}

cmd_status() {
	local svc pid state rc=0
	check_kafka_shape
	printf '%-10s %-9s %-8s %-9s %s\n' SERVICE STATE PID OWNER ADDRESS
	for svc in $(services); do
		if pid="$(our_pid "$svc")"; then
			if old_format "$svc"; then state=old; rc=1
			elif is_reachable "$svc"; then state=up
			else state=starting; rc=1; fi
			printf '%-10s %-9s %-8s %-9s %s\n' "$svc" "$state" "$pid" "$(cat "$RUN/$svc.owner" 2>/dev/null || echo '?')" "$(address "$svc")"
		elif is_reachable "$svc"; then
			printf '%-10s %-9s %-8s %-9s %s\n' "$svc" up - external "$(address "$svc")"
		else
			printf '%-10s %-9s %-8s %-9s %s\n' "$svc" down - - "$(address "$svc")"
			rc=1
		fi
	done
	if ((rc)) && [[ -n "$(for svc in $(services); do old_format "$svc" && echo "$svc"; done)" ]]; then
		echo "old: started by an older deploy/stack.sh without TLS and authentication; restart with: $0 down && $0 up"
	fi
	echo "logs: $LOGS"
	return $rc
}

# The settings one identity needs. Every secret comes as a *_FILE path into $SECRETS (never the
# secret itself, so it appears in no shell history, process list or CI log); the variables of
# the secrets this identity does not get are unset, so switching identities in one shell works.
cmd_env() {
	local who="${1:-admin}" kafka_user="" influx_user="" mqtt_user=""
	case "$who" in
	admin) kafka_user=riverguard-admin; influx_user=riverguard-admin; mqtt_user="$MQTT_BRIDGE_USER" ;;
	ingest) kafka_user=riverguard-ingest; mqtt_user="$MQTT_BRIDGE_USER" ;;
	detect) kafka_user=riverguard-detect ;;
	alert | alerts) kafka_user=riverguard-alerts; influx_user=riverguard-reader ;; # the console's station board reads
	sink) kafka_user=riverguard-sink; influx_user=riverguard-sink ;;
	gateway) kafka_user=riverguard-gateway ;; # riverguard run hj212-gateway
	reader) influx_user=riverguard-reader ;;
	*) die "env: unknown identity '$who' (admin, ingest, detect, alert, sink, gateway, reader)" ;;
	esac
	check_kafka_shape
	if [[ -n "$(for svc in $(services); do old_format "$svc" && echo "$svc"; done)" ]]; then
		say "WARNING: the stack in $STACK was started by an older deploy/stack.sh, without TLS and authentication; these settings will not reach it. Restart it: $0 down && $0 up"
	fi
	[[ -f "$SECRETS/ca.pem" ]] || say "WARNING: no dev secrets in $SECRETS yet: run \`$0 up\` first"
	[[ -z "$mqtt_user" || ! -d "$SECRETS" ]] || write_mqtt_secrets
	echo "# riverguard settings for the stack in $STACK as '$who' (TLS + authentication; deploy/stack.sh env)"
	echo "unset RIVERGUARD_MQTT__PASSWORD RIVERGUARD_MQTT__PASSWORD_FILE RIVERGUARD_MQTT__CERTFILE RIVERGUARD_MQTT__KEYFILE RIVERGUARD_KAFKA__SASL_PASSWORD RIVERGUARD_KAFKA__SASL_PASSWORD_FILE RIVERGUARD_INFLUX__TOKEN RIVERGUARD_INFLUX__TOKEN_FILE"
	local -a vars=(
		RIVERGUARD_MQTT__HOST "$MQTT_HOST"
		RIVERGUARD_MQTT__PORT "$MQTT_PORT"
		RIVERGUARD_MQTT__TLS true
		RIVERGUARD_MQTT__CA_FILE "$SECRETS/ca.pem"
	)
	[[ -n "$mqtt_user" ]] && vars+=(RIVERGUARD_MQTT__USERNAME "$mqtt_user" RIVERGUARD_MQTT__PASSWORD_FILE "$SECRETS/mqtt/$mqtt_user")
	vars+=(RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS "$(kafka_bootstrap)")
	if [[ -n "$kafka_user" ]]; then
		vars+=(
			RIVERGUARD_KAFKA__SECURITY_PROTOCOL SASL_SSL
			RIVERGUARD_KAFKA__SASL_MECHANISM SCRAM-SHA-512
			RIVERGUARD_KAFKA__SASL_USERNAME "$kafka_user"
			RIVERGUARD_KAFKA__SASL_PASSWORD_FILE "$SECRETS/kafka/$kafka_user"
			RIVERGUARD_KAFKA__SSL_CA_FILE "$SECRETS/ca.pem"
		)
	fi
	((KAFKA_NODES > 1)) && vars+=(RIVERGUARD_KAFKA__REPLICATION_FACTOR 3)
	vars+=(RIVERGUARD_INFLUX__URL "$INFLUX_URL" RIVERGUARD_INFLUX__ORG "-" RIVERGUARD_INFLUX__BUCKET "$INFLUX_DB/autogen")
	[[ -n "$influx_user" ]] && vars+=(RIVERGUARD_INFLUX__TOKEN_FILE "$SECRETS/influx/$influx_user")
	local i
	for ((i = 0; i < ${#vars[@]}; i += 2)); do
		printf 'export %s=%q\n' "${vars[i]}" "${vars[i + 1]}"
	done
}

cmd_cert() {
	local cn="${1:-}"
	[[ -n "$cn" ]] || die "cert: usage: cert STATION_ID"
	mkdir -p "$STACK"
	issue_client "$cn"
	say "cert: $STACK/tls/clients/$cn.pem (CN=$cn, signed by $SECRETS/ca.pem); the station logs in on port $MQTT_CERT_PORT with it, no password"
	local -a vars=(
		RIVERGUARD_MQTT__HOST "$MQTT_HOST"
		RIVERGUARD_MQTT__PORT "$MQTT_CERT_PORT"
		RIVERGUARD_MQTT__TLS true
		RIVERGUARD_MQTT__CA_FILE "$SECRETS/ca.pem"
		RIVERGUARD_MQTT__CERTFILE "$STACK/tls/clients/$cn.pem"
		RIVERGUARD_MQTT__KEYFILE "$STACK/tls/clients/$cn.key"
		RIVERGUARD_MQTT__USERNAME "$cn"
	)
	local i
	echo "unset RIVERGUARD_MQTT__PASSWORD RIVERGUARD_MQTT__PASSWORD_FILE"
	for ((i = 0; i < ${#vars[@]}; i += 2)); do
		printf 'export %s=%q\n' "${vars[i]}" "${vars[i + 1]}"
	done
}

# For deploy/docker-compose.yml: the dev CA, passwords and the servers' certificates, and the
# InfluxDB image's first-start users in <runtime dir>/compose.env (0600); then, with the
# containers up, `kafka-access` applies the Kafka principals and ACLs from this machine.
cmd_secrets() {
	mkdir -p "$STACK"
	ensure_secrets
	local admin sink reader
	admin="$(secret "$SECRETS/influx/riverguard-admin")"
	sink="$(secret "$SECRETS/influx/riverguard-sink")"
	reader="$(secret "$SECRETS/influx/riverguard-reader")"
	write_secret "$STACK/compose.env" "INFLUXDB_ADMIN_USER=${admin%%:*}
INFLUXDB_ADMIN_PASSWORD=${admin#*:}
INFLUXDB_WRITE_USER=${sink%%:*}
INFLUXDB_WRITE_USER_PASSWORD=${sink#*:}
INFLUXDB_READ_USER=${reader%%:*}
INFLUXDB_READ_USER_PASSWORD=${reader#*:}"
	say "secrets: certificates in $STACK/tls, InfluxDB users in $STACK/compose.env, CA and passwords in $SECRETS"
}

cmd_kafka_access() {
	check_kafka_shape
	ensure_java
	ensure_kafka_jars
	apply_kafka_access
	check_external_kafka
	say "kafka: principals and ACLs applied; riverguard-admin logs in at $(kafka_bootstrap)"
}

cmd_logs() {
	local follow="" svcs=() svc files=() all
	check_kafka_shape
	all="$(services)"
	for a in "$@"; do
		case "$a" in
		-f | --follow) follow=1 ;;
		kafka) for svc in $all; do [[ "$svc" == kafka* ]] && svcs+=("$svc"); done ;;
		*)
			grep -qx -- "$a" <<<"$all" || die "logs: unknown argument $a (usage: logs [$(tr '\n' '|' <<<"$all")kafka] [-f])"
			svcs+=("$a") ;;
		esac
	done
	((${#svcs[@]})) || read -r -d '' -a svcs <<<"$all" || true
	for svc in "${svcs[@]}"; do
		for f in "$(main_log "$svc")" "$LOGS/$svc.out"; do
			[[ -s "$f" ]] && ! [[ " ${files[*]:-} " == *" $(readlink -f "$f") "* ]] && files+=("$(readlink -f "$f")")
		done
	done
	((${#files[@]})) || { echo "no logs yet in $LOGS"; return 0; }
	if [[ -n "$follow" ]]; then tail -n 50 -F "${files[@]}"; else tail -n 50 "${files[@]}"; fi
}

usage() {
	sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

verb="${1:-}"
[[ $# -gt 0 ]] && shift
case "$verb" in
up) cmd_up "$@" ;;
down) cmd_down "$@" ;;
status) cmd_status "$@" ;;
env) cmd_env "$@" ;;
cert) cmd_cert "$@" ;;
secrets) cmd_secrets "$@" ;;
kafka-access) cmd_kafka_access "$@" ;;
logs) cmd_logs "$@" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
