#!/bin/sh
# bench/edge-core/stall.sh: looks for stalls.  Runs `wrk -t2 -c256` RUNS
# times against edge_bench and reads the requests the server answered
# in each second (edge_bench -r), so that a stall shows as a collapsed
# second even when wrk's average hides it.  A run whose lowest full
# second is under a tenth of its median, or whose wrk had to be killed,
# counts as a stall.
#
#   RUNS=100 DURATION=10 bench/edge-core/stall.sh [mem|fd] [FILE]
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-/tmp/wharf-bench-build}
WORK=${WORK:-/tmp/wharf-edge-core}
RUNS=${RUNS:-50}
DURATION=${DURATION:-10}
CONNS=${CONNS:-256}
PORT=${PORT:-18483}
MODE=${1:-mem}
FILE=${2:-index.html}

command -v wrk >/dev/null 2>&1 || {
	echo "stall.sh: wrk missing: apt-get install -y wrk" >&2; exit 1; }
make -s -C "$HERE" BUILD="$BUILD" >/dev/null
[ -f "$WORK/site/$FILE" ] || {
	echo "stall.sh: run run.sh once first (it makes $WORK/site)" >&2
	exit 1; }

RATES="$WORK/stall-rates.txt"
"$BUILD/edge_bench" -r -l "127.0.0.1:$PORT" -m "$MODE" "$WORK/site" \
    > "$RATES" 2>"$WORK/stall-edge.log" &
EDGE_PID=$!
trap 'kill $EDGE_PID 2>/dev/null || true' EXIT INT TERM
sleep 1

stalls=0
lowest=""
run=1
while [ "$run" -le "$RUNS" ]; do
	first=$(wc -l < "$RATES")
	killed=0
	timeout $((DURATION + 20)) wrk -t2 -c"$CONNS" -d"${DURATION}s" \
	    "http://127.0.0.1:$PORT/$FILE" > "$WORK/stall-wrk.txt" 2>&1 ||
	    killed=1
	last=$(wc -l < "$RATES")
	# Full seconds only: drop the first and the last of the run.
	stats=$(sed -n "$((first + 2)),$((last - 1))p" "$RATES" |
	    sort -n | awk '{ v[NR] = $1 } END {
	        if (NR == 0) { print "0 0"; exit }
	        print v[1], v[int((NR + 1) / 2)] }')
	min=${stats% *}
	med=${stats#* }
	flag=""
	if [ "$killed" -eq 1 ] || [ $((min * 10)) -lt "$med" ]; then
		stalls=$((stalls + 1))
		flag=" STALL"
	fi
	echo "run $run: lowest second $min, median $med req/s$flag"
	if [ -z "$lowest" ] || [ "$min" -lt "$lowest" ]; then
		lowest=$min
	fi
	run=$((run + 1))
done
echo "runs=$RUNS stalls=$stalls lowest_second=$lowest req/s" \
    "(wrk -t2 -c$CONNS -d${DURATION}s, $MODE, $FILE)"
