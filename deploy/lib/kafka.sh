# Kafka for deploy/stack.sh (sourced): one KRaft node, or a cluster of KAFKA_NODES combined
# broker+controller nodes, each with its own ports and data dir; SASL/SCRAM over TLS for clients,
# mutual TLS between the nodes, ACLs from deploy/kafka/acls.txt.
#
# Node i (1-based) listens on the configured client, controller and inter-broker ports + 3*(i-1).

KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
JAVA=""
KAFKA_PRINCIPAL="riverguard-kafka" # the brokers' certificate CN = their principal (a super user)

kafka_node() { # service name -> node number (kafka -> 1, kafka-2 -> 2)
	local n="${1#kafka}"
	echo "${n#-}" | sed 's/^$/1/'
}

kafka_port() { # node kind(client|controller|broker)
	local offset=$((3 * ($1 - 1)))
	case "$2" in
	client) echo $((KAFKA_PORT + offset)) ;;
	controller) echo $((KAFKA_CONTROLLER_PORT + offset)) ;;
	broker) echo $((KAFKA_BROKER_PORT + offset)) ;;
	esac
}

kafka_dir() { # node -> its directory under the runtime dir
	if ((KAFKA_NODES == 1)); then echo "$STACK/kafka"; else echo "$STACK/kafka-$1"; fi
}

kafka_logs() {
	if ((KAFKA_NODES == 1)); then echo "$LOGS/kafka"; else echo "$LOGS/kafka-$1"; fi
}

kafka_bootstrap() { # every node's client address, comma-separated
	local i out=""
	for ((i = 1; i <= KAFKA_NODES; i++)); do out="${out:+$out,}$KAFKA_HOST:$(kafka_port "$i" client)"; done
	echo "$out"
}

ensure_java() {
	JAVA="$(command -v java 2>/dev/null)" || { apt_install openjdk-17-jdk-headless; JAVA="$(command -v java)"; }
	local v
	v="$("$JAVA" -version 2>&1 | awk -F'"' '/version/ { print $2; exit }')"
	[[ "${v%%.*}" -ge 17 ]] 2>/dev/null || die "kafka $KAFKA_VERSION needs Java 17+, found '$v' at $JAVA"
}

ensure_java_compiler() { # deploy/kafka/Access.java runs from source (JEP 330): needs the JDK's compiler
	"$JAVA" --list-modules 2>/dev/null | grep -q '^jdk.compiler' && return 0
	apt_install openjdk-17-jdk-headless
	"$JAVA" --list-modules 2>/dev/null | grep -q '^jdk.compiler' \
		|| die "kafka: $JAVA has no jdk.compiler module (a JRE); install a JDK 17+ (openjdk-17-jdk-headless)"
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

kafka_tool() { # a short-lived JVM with the broker jars: main-class-or-source args...
	"$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
		-Dlog4j2.configurationFile="$DEPLOY/kafka/log4j2.yaml" -Dkafka.logs.dir="$LOGS/kafka-tools" \
		-cp "$KAFKA_LIBS/*" "$@"
}

kafka_voters() {
	local i out=""
	for ((i = 1; i <= KAFKA_NODES; i++)); do out="${out:+$out,}$i@$KAFKA_HOST:$(kafka_port "$i" controller)"; done
	echo "$out"
}

# The runtime dir remembers how many nodes its Kafka has: the data of a single node and of a
# cluster are not interchangeable.
check_kafka_shape() {
	local recorded
	[[ -f "$STACK/kafka.nodes" ]] || return 0
	recorded="$(cat "$STACK/kafka.nodes")"
	[[ "$recorded" == "$KAFKA_NODES" ]] && return 0
	if [[ -n "$KAFKA_NODES_ASKED" ]]; then
		die "kafka: $STACK holds a $recorded-node Kafka, not $KAFKA_NODES: use another RIVERGUARD_STACK_DIR, or stop it and delete its data (make clean-stack)"
	fi
	KAFKA_NODES="$recorded"
}

new_cluster_id() {
	# Kafka cluster ids are 16 random bytes, url-safe base64 without padding. Like Kafka's own
	# Uuid.randomUuid, draw again when it starts with '-': the storage tool's argument parser
	# takes "-t -Xthu..." for a missing value (one stack in 64 failed to format before).
	local id="-"
	while [[ "$id" == -* ]]; do
		id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
	done
	echo "$id"
}

prepare_kafka_node() { # node cluster-id: config rendered, data dir formatted if new
	local node="$1" cluster_id="$2" dir replication=1 min_isr=1
	dir="$(kafka_dir "$node")"
	if ((KAFKA_NODES > 1)); then replication=3; min_isr=2; fi
	((replication <= KAFKA_NODES)) || replication="$KAFKA_NODES"
	mkdir -p "$dir/data" "$(kafka_logs "$node")"
	render "$DEPLOY/kafka/server.properties.template" "$dir/server.properties" \
		"s#@NODE_ID@#$node#g" "s#@QUORUM_VOTERS@#$(kafka_voters)#g" "s#@KAFKA_HOST@#$KAFKA_HOST#g" \
		"s#@CLIENT_PORT@#$(kafka_port "$node" client)#g" "s#@CONTROLLER_PORT@#$(kafka_port "$node" controller)#g" \
		"s#@BROKER_PORT@#$(kafka_port "$node" broker)#g" "s#@KAFKA_DATA_DIR@#$dir/data#g" \
		"s#@TLS_DIR@#$STACK/tls#g" "s#@KAFKA_PRINCIPAL@#$KAFKA_PRINCIPAL#g" \
		"s#@REPLICATION@#$replication#g" "s#@MIN_ISR@#$min_isr#g"
	if [[ ! -f "$dir/data/meta.properties" ]]; then
		say "kafka: formatting $dir/data (node $node of $KAFKA_NODES, cluster id $cluster_id)"
		kafka_tool kafka.tools.StorageTool format --cluster-id="$cluster_id" -c "$dir/server.properties" \
			>>"$LOGS/kafka-format.log" 2>&1 \
			|| { tail -n 20 "$LOGS/kafka-format.log" >&2; die "kafka: storage format failed (log: $LOGS/kafka-format.log)"; }
	fi
}

start_kafka() { # svc: start one node
	local svc="$1" node dir logs f heap="${RIVERGUARD_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
	# three nodes on one machine: a smaller heap each (the dev cluster holds little data)
	((KAFKA_NODES == 1)) || heap="${RIVERGUARD_KAFKA_HEAP_OPTS:--Xms128m -Xmx384m}"
	node="$(kafka_node "$svc")"
	dir="$(kafka_dir "$node")"
	logs="$(kafka_logs "$node")"
	for f in server controller state-change; do # keep the previous run's logs as *.prev
		[[ -e "$logs/$f.log" ]] && mv -f "$logs/$f.log" "$logs/$f.log.prev"
	done
	# shellcheck disable=SC2086
	spawn "$svc" "$LOGS/$svc.out" "$JAVA" $heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$DEPLOY/kafka/log4j2.yaml" -Dkafka.logs.dir="$logs" \
		-cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties"
}

# Every node's config, every new data dir formatted with one cluster id (that of an existing
# node when some are already formatted).
prepare_kafka() {
	local i cluster_id="" meta
	for ((i = 1; i <= KAFKA_NODES; i++)); do
		meta="$(kafka_dir "$i")/data/meta.properties"
		[[ -f "$meta" ]] && cluster_id="$(sed -n 's/^cluster.id=//p' "$meta")"
	done
	[[ -n "$cluster_id" ]] || cluster_id="$(new_cluster_id)"
	for ((i = 1; i <= KAFKA_NODES; i++)); do prepare_kafka_node "$i" "$cluster_id"; done
	echo "$KAFKA_NODES" >"$STACK/kafka.nodes"
}

# kafka_health node listener [--admin]: a real client round trip (deploy/kafka/healthcheck.py,
# stdlib, ~0.1 s): TLS with the dev CA; on the inter-broker listener with the brokers'
# certificate, on the client listener SCRAM as the admin. Healthy = all nodes registered.
kafka_health() {
	local node="$1" listener="$2" args=()
	if [[ "$listener" == broker ]]; then
		args=(--cert "$STACK/tls/kafka.pem")
	else
		args=(--user riverguard-admin --password-file "$SECRETS/kafka/riverguard-admin")
	fi
	python3 "$DEPLOY/kafka/healthcheck.py" "$KAFKA_HOST:$(kafka_port "$node" "$listener")" 5 \
		--ca "$SECRETS/ca.pem" --brokers "$KAFKA_NODES" "${args[@]}"
}

# Principals (SCRAM credentials) and ACLs, through the inter-broker listener; skipped when the
# ACL file, the passwords and the cluster are what was applied last time.
apply_kafka_access() {
	local stamp meta want log="$LOGS/kafka-acls.log"
	mkdir -p "$(kafka_dir 1)" "$LOGS"
	stamp="$(kafka_dir 1)/access.applied"
	meta="$(kafka_dir 1)/data/meta.properties" # its cluster id: a new cluster gets them again
	[[ -f "$meta" ]] || meta=/dev/null          # a Kafka in a container (docker-compose)
	want="$(cat "$meta" "$DEPLOY/kafka/acls.txt" "$DEPLOY/kafka/Access.java" "$SECRETS"/kafka/* | sha256sum | cut -c1-32)"
	[[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return 0
	ensure_java_compiler
	local t0
	t0="$(now)"
	if ! kafka_tool "$DEPLOY/kafka/Access.java" "$KAFKA_HOST:$(kafka_port 1 broker)" "$STACK/tls" \
		"$DEPLOY/kafka/acls.txt" "$SECRETS/kafka" >"$log" 2>&1; then
		fail_service kafka "could not apply principals and ACLs (deploy/kafka/Access.java): $(tail -n 5 "$log")"
	fi
	echo "$want" >"$stamp"
	say "kafka: $(tail -n 1 "$log") in $(elapsed "$t0")s"
}

wait_kafka() { # wait until every node is up, then apply access and check a client login
	local deadline=$((SECONDS + TIMEOUT)) i svc
	for ((i = 1; i <= KAFKA_NODES; i++)); do
		svc="$(kafka_service "$i")"
		while ! kafka_health "$i" broker >/dev/null 2>&1; do
			our_pid "$svc" >/dev/null || fail_service "$svc" "process exited during startup"
			((SECONDS < deadline)) || fail_service "$svc" "no healthy broker at $KAFKA_HOST:$(kafka_port "$i" broker) after ${TIMEOUT}s: $(kafka_health "$i" broker 2>&1)"
			sleep 0.3
		done
	done
	apply_kafka_access
	while ! kafka_health 1 client >/dev/null 2>&1; do
		((SECONDS < deadline)) || fail_service "$(kafka_service 1)" "SCRAM login of riverguard-admin at $KAFKA_HOST:$KAFKA_PORT failed after ${TIMEOUT}s: $(kafka_health 1 client 2>&1)"
		sleep 0.3
	done
}

check_external_kafka() { # running already (ours or not): usable with the dev CA and the admin's login?
	local out rc deadline=$((SECONDS + TIMEOUT))
	while true; do
		rc=0
		out="$(kafka_health 1 client 2>&1)" || rc=$?
		case "$rc" in
		0) return 0 ;;
		3) die "kafka: the broker at $KAFKA_HOST:$KAFKA_PORT speaks Kafka without TLS - started by an older deploy/stack.sh? Stop it (deploy/stack.sh down in the runtime dir that started it) or set RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS" ;;
		esac
		((SECONDS < deadline)) || die "kafka: the service at $KAFKA_HOST:$KAFKA_PORT is not one this script can use after ${TIMEOUT}s ($out)"
		sleep 0.5
	done
}
