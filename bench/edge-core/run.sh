#!/bin/sh
# bench/edge-core/run.sh: the edge's HTTP/1.1 core (edge_bench, from
# memory and with sendfile) against Debian's nginx, tuned for speed,
# serving the same three files: a 2 KiB HTML page, a 30 KiB script and
# a 200 KiB image.  For each file and each connection count, wrk runs
# against each server in turn, ROUNDS times, alternating; the medians
# of requests/s and of p99 latency are printed with the ratios.
#
#   bench/edge-core/run.sh                  # 3 rounds of 10 s
#   DURATION=5s ROUNDS=1 CONNS=256 bench/edge-core/run.sh
#
# Installs nginx-light and wrk when missing (as root), or says how.
# Everything it writes goes under $WORK (default /tmp/wharf-edge-core).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-/tmp/wharf-bench-build}
WORK=${WORK:-/tmp/wharf-edge-core}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"64 256"}
THREADS=${THREADS:-2}
NGINX_PORT=${NGINX_PORT:-18480}
EDGE_MEM_PORT=${EDGE_MEM_PORT:-18481}
EDGE_FD_PORT=${EDGE_FD_PORT:-18482}
FILES="index.html app.js image.png"

need_tools() {
	missing=""
	command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] ||
	    missing="$missing nginx-light"
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "run.sh: missing:$missing" >&2
		echo "run.sh: sudo apt-get install -y$missing" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	apt-get install -y -q $missing >/dev/null ||
	    { apt-get update -q >/dev/null &&
	      apt-get install -y -q $missing >/dev/null; }
}

make_site() {
	mkdir -p "$WORK/site"
	# Text that looks like text, so sizes are exact and stable.
	awk 'BEGIN { s = "<!doctype html><html><head><title>bench</title>" \
	    "</head><body>"; while (length(s) < 2048 - 15) \
	    s = s "<p>lorem ipsum dolor sit amet</p>"; \
	    s = substr(s, 1, 2048 - 15) "</body></html>\n"; printf "%s", s }' \
	    > "$WORK/site/index.html"
	awk 'BEGIN { s = ""; i = 0; while (length(s) < 30720) \
	    s = s "function f" i++ "(a,b){return a*b+" i ";}\n"; \
	    printf "%s", substr(s, 1, 30720) }' > "$WORK/site/app.js"
	head -c 204800 /dev/urandom > "$WORK/site/image.png"
}

nginx_conf() {
	mkdir -p "$WORK/nginx"
	cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes $THREADS;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events {
	worker_connections 8192;
	use epoll;
}
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	tcp_nodelay on;
	keepalive_timeout 65;
	keepalive_requests 1000000;
	open_file_cache max=1000 inactive=60s;
	open_file_cache_valid 60s;
	open_file_cache_errors on;
	types {
		text/html html;
		text/javascript js;
		image/png png;
	}
	client_body_temp_path $WORK/nginx/body;
	proxy_temp_path $WORK/nginx/proxy;
	fastcgi_temp_path $WORK/nginx/fastcgi;
	uwsgi_temp_path $WORK/nginx/uwsgi;
	scgi_temp_path $WORK/nginx/scgi;
	server {
		listen 127.0.0.1:$NGINX_PORT reuseport backlog=4096;
		root $WORK/site;
	}
}
EOF
}

start_servers() {
	nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
	NGINX_PID=$!
	"$BUILD/edge_bench" -l "127.0.0.1:$EDGE_MEM_PORT" -t "$THREADS" \
	    -m mem "$WORK/site" 2>"$WORK/edge-mem.log" &
	EDGE_MEM_PID=$!
	"$BUILD/edge_bench" -l "127.0.0.1:$EDGE_FD_PORT" -t "$THREADS" \
	    -m fd "$WORK/site" 2>"$WORK/edge-fd.log" &
	EDGE_FD_PID=$!
	trap stop_servers EXIT INT TERM
	sleep 1
	for port in $NGINX_PORT $EDGE_MEM_PORT $EDGE_FD_PORT; do
		if ! wrk -t1 -c1 -d1s "http://127.0.0.1:$port/index.html" \
		    >/dev/null; then
			echo "run.sh: nothing answers on port $port" >&2
			exit 1
		fi
	done
}

stop_servers() {
	kill "$NGINX_PID" "$EDGE_MEM_PID" "$EDGE_FD_PID" 2>/dev/null || true
	wait 2>/dev/null || true
}

# One wrk run: prints "requests/s p99_ms".
measure() {
	wrk -t2 -c"$2" -d"$DURATION" --latency "http://127.0.0.1:$1/$3" |
	    awk '/Requests\/sec/ { rps = $2 }
	    $1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u);
	        sub(/[a-z]+$/, "", v);
	        p99 = u == "us" ? v / 1000 : u == "s" ? v * 1000 : v }
	    END { printf "%.0f %.3f\n", rps, p99 }'
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

need_tools
# The network both servers and wrk share (see bench/lib/net.sh).
. "$HERE/../lib/net.sh"
bench_net "$0" "$@"
make -s -C "$HERE" BUILD="$BUILD" >/dev/null
make_site
nginx_conf
start_servers

RESULTS="$WORK/results.txt"
: > "$RESULTS"
echo "wrk -t2 -d$DURATION, $ROUNDS rounds, $THREADS server threads," \
    "$(nproc) CPUs, $(uname -r)"
echo "$BENCH_NET_DESC"
for file in $FILES; do
	for conns in $CONNS; do
		round=1
		while [ "$round" -le "$ROUNDS" ]; do
			for server in nginx:$NGINX_PORT mem:$EDGE_MEM_PORT \
			    fd:$EDGE_FD_PORT; do
				name=${server%%:*}
				port=${server##*:}
				echo "$file $conns $name $(measure "$port" \
				    "$conns" "$file")" >> "$RESULTS"
			done
			round=$((round + 1))
		done
	done
done

printf '\n%-11s %5s | %9s %8s | %9s %8s %5s %5s | %9s %8s %5s %5s\n' \
    file conns nginx p99ms edge-mem p99ms rps× p99× edge-fd p99ms rps× \
    p99×
for file in $FILES; do
	for conns in $CONNS; do
		row="$file $conns"
		for name in nginx mem fd; do
			rps=$(awk -v f="$file" -v c="$conns" -v n="$name" \
			    '$1 == f && $2 == c && $3 == n { print $4 }' \
			    "$RESULTS" | median)
			p99=$(awk -v f="$file" -v c="$conns" -v n="$name" \
			    '$1 == f && $2 == c && $3 == n { print $5 }' \
			    "$RESULTS" | median)
			row="$row $rps $p99"
		done
		echo "$row" | awk '{ printf "%-11s %5s | %9s %8s | " \
		    "%9s %8s %5.2f %5.2f | %9s %8s %5.2f %5.2f\n", \
		    $1, $2, $3, $4, $5, $6, $5 / $3, $6 / $4, \
		    $7, $8, $7 / $3, $8 / $4 }'
	done
done
echo "(rps× above 1 and p99× below 1 favour the edge; raw runs in" \
    "$RESULTS)"
