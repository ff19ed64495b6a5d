#!/bin/sh
# bench/soak: the edge of `wharf serve` under `wrk -t2 -c256` for
# DURATION seconds (default 600) while the tenant's deployment flips
# between v1 and v2 every second through the API.  Reports the lowest
# per-second rate next to the median (so a stall cannot hide), non-2xx
# responses, socket errors, the flips, and bodies that are not v1 or v2
# in full (bench/soak/soak.lua checks every one).
#
#   bench/soak/run.sh                   # 600 s
#   DURATION=20 bench/soak/run.sh
#   DURATION=15 STOP_AT=6 bench/soak/run.sh   # dry run: the server is
#       # SIGSTOPped 6 s in for 2 s; the report must show the collapse
#
# Runs build/wharf (or $WHARF): build it first.  Installs wrk when
# missing (as root).  Writes serve.log, wrk.txt,
# per-second.txt and flips.txt to a temp folder under $BENCH_DIR
# (default $TMPDIR, else /tmp), removed at the end unless KEEP=1 or the
# soak failed.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
WHARF=${WHARF:-$ROOT/build/wharf}
DURATION=${DURATION:-600}
CONNS=${CONNS:-256}

if ! command -v wrk >/dev/null 2>&1; then
	if [ "$(id -u)" != 0 ]; then
		echo "bench/soak: wrk missing; as root: apt-get install -y wrk" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q wrk >/dev/null 2>&1 ||
	    { apt-get update -q >/dev/null && apt-get install -y -q wrk \
	      >/dev/null; }
fi
# The network the edge and wrk share (see bench/lib/net.sh).
. "$HERE/../lib/net.sh"
bench_net "$0" "$@"
if [ ! -x "$WHARF" ]; then
	echo "bench/soak: no $WHARF: build it first (ninja -C build)" >&2
	exit 1
fi
WORK=$(mktemp -d "$BENCH_DIR/wharf-bench-soak.XXXXXX")
echo "bench/soak: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
    "$(free -m | awk '/^Mem:/ { print $2 }') MiB, $(uname -r)," \
    "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "$BENCH_NET_DESC"
set -- "$WHARF" "$WORK" --duration "$DURATION" --conns "$CONNS"
if [ -n "${STOP_AT:-}" ]; then
	set -- "$@" --stop-at "$STOP_AT" --stop-for "${STOP_FOR:-2}"
fi
status=0
python3 "$HERE/soak.py" "$@" || status=$?
if [ "${KEEP:-0}" = 1 ] || [ "$status" -ne 0 ]; then
	echo "bench/soak: kept $WORK"
else
	rm -rf "$WORK"
fi
exit "$status"
