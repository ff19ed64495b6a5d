#!/bin/sh
# bench/deploy: upload to first byte for a 247-file, 25 MB site, and a
# redeploy with one file changed, next to cp -r + sync of the same folder.
# Usage: bench/deploy/run.sh [ROUNDS]   (builds wharf first)
set -eu
# The network the client and the server share (see bench/lib/net.sh).
. "$(dirname "$0")/../lib/net.sh"
bench_net "$0" "$@"
echo "bench/deploy: $BENCH_NET_DESC"
cd "$(dirname "$0")/../.."
ninja -C build >/dev/null
exec /usr/bin/python3 bench/deploy/bench_deploy.py "$PWD/build/wharf" "${1:-3}"
