#!/usr/bin/env bash
# System packages riverguard itself needs beyond Python (the services come with stack.sh):
# - a CJK font so the playbook map (一图) can draw Chinese labels. Without one the map falls back
#   to ASCII labels, so a failed install is a warning, not an error.
# - Debian's chromium and chromium-driver for the console's browser tests (tests/console): the
#   tests drive the system browser through the system driver, never a downloaded browser. Without
#   them those tests fail naming this script, so a failed install is a warning here too.
set -euo pipefail

wanted=()
if ! { command -v fc-list >/dev/null && fc-list :lang=zh 2>/dev/null | grep -q .; }; then
	wanted+=(fonts-wqy-zenhei fontconfig)
fi
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
	wanted+=(chromium chromium-driver)
fi
if [[ ${#wanted[@]} -eq 0 ]]; then
	exit 0
fi
if ! command -v apt-get >/dev/null; then
	echo "[system-deps] no apt-get to install ${wanted[*]}: maps use ASCII labels without a CJK font, and the console's browser tests need chromium + chromium-driver" >&2
	exit 0
fi
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
echo "[system-deps] installing ${wanted[*]}" >&2
log="$(mktemp)"
if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${wanted[@]}" >"$log" 2>&1; then
	as_root apt-get update >>"$log" 2>&1 || true
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${wanted[@]}" >>"$log" 2>&1 \
		|| { tail -n 5 "$log" >&2; echo "[system-deps] WARNING: installing ${wanted[*]} failed" >&2; }
fi
rm -f "$log"
