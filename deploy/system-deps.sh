#!/usr/bin/env bash
# System packages riverguard itself needs beyond Python (the services come with stack.sh):
# a CJK font so the playbook map (一图) can draw Chinese labels. Without one the map falls back
# to ASCII labels, so a failed install is a warning, not an error.
set -euo pipefail

if command -v fc-list >/dev/null && fc-list :lang=zh 2>/dev/null | grep -q .; then
	exit 0
fi
if ! command -v apt-get >/dev/null; then
	echo "[system-deps] no CJK font and no apt-get: maps will use ASCII labels" >&2
	exit 0
fi
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
echo "[system-deps] installing a CJK font for the playbook map (fonts-wqy-zenhei)" >&2
log="$(mktemp)"
if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-wqy-zenhei fontconfig >"$log" 2>&1; then
	as_root apt-get update >>"$log" 2>&1 || true
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-wqy-zenhei fontconfig >>"$log" 2>&1 \
		|| { tail -n 5 "$log" >&2; echo "[system-deps] WARNING: font install failed; maps will use ASCII labels" >&2; }
fi
rm -f "$log"
