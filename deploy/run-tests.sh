#!/usr/bin/env bash
# The body of `make test`: bring the local stack up, run ruff, mypy and pytest against it,
# and always stop again what this run started (trap on EXIT), even when a step fails.
#
# - Services that were already running (an earlier `make up`, another engineer's stack, or a
#   service of the user's own on the configured port) are used and left running.
# - Services this run started are tagged owner=test; the last concurrent test run to finish
#   stops them (leases in <runtime dir>/run/test-leases/), so two `make test` runs sharing
#   one machine do not pull the stack from under each other.
# - All three checks run; the exit status is the first failing one's (0 if all pass).
# Extra arguments go to pytest, e.g. deploy/run-tests.sh -k kafka -x
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$PWD"
STACK_SH="$REPO/deploy/stack.sh"
STACK="${RIVERGUARD_STACK_DIR:-$REPO/.stack}"
VENV="${VENV:-$REPO/.venv}"
LEASES="$STACK/run/test-leases"

mkdir -p "$LEASES"
LEASE="$LEASES/$$"
echo $$ >"$LEASE"

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	local rc=$? other=""
	rm -f "$LEASE"
	for f in "$LEASES"/*; do
		[[ -e "$f" ]] || continue
		if kill -0 "$(basename "$f")" 2>/dev/null; then other=1; else rm -f "$f"; fi
	done
	if [[ -n "$other" ]]; then
		echo "[run-tests] another test run is still using the stack: leaving it up" >&2
	else
		"$STACK_SH" down --owner test || echo "[run-tests] WARNING: stack.sh down failed" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

RIVERGUARD_STACK_OWNER='test' "$STACK_SH" up
eval "$("$STACK_SH" env)"

status=0
step() {
	local name="$1" rc=0
	shift
	echo "[run-tests] $name: $*" >&2
	"$@" || rc=$?
	if ((rc != 0)); then
		echo "[run-tests] $name FAILED (exit $rc)" >&2
		((status != 0)) || status=$rc
	fi
}

step ruff "$VENV/bin/ruff" check .
step mypy "$VENV/bin/mypy"
step rustfmt cargo fmt --manifest-path native/Cargo.toml --check
step clippy cargo clippy --quiet --release --manifest-path native/Cargo.toml -- -D warnings
step rustfmt-plume cargo fmt --manifest-path native/plume/Cargo.toml --check
step clippy-plume cargo clippy --quiet --release --manifest-path native/plume/Cargo.toml -- -D warnings
step pytest "$VENV/bin/pytest" "$@"

exit "$status"
