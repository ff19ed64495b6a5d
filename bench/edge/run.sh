#!/bin/sh
# bench/edge: the edge of `wharf serve` against Debian's nginx, tuned for
# speed, on the same three files: a 2 KiB HTML page, a 30 KiB
# fingerprinted script and a 200 KiB incompressible image.  The edge
# serves them from a deployment made through the API (tenant `bench`,
# Host: bench.localhost); nginx from a plain folder of the same files,
# hard links to the edge's objects (PLAIN=link, the default: both send
# from the same page-cache pages) or copies (PLAIN=copy).  Both get the
# same request, with `Accept-Encoding: identity`, so both send the
# uncompressed file.  As root, the run is in a network namespace of its
# own with the congestion control cubic (bench/lib/net.sh; NET=host for
# the host's network).
#
# For each file and connection count, `wrk -t2 --latency` runs ROUNDS
# times against each server, alternating (which one goes first changes
# every round).  The medians of requests/s and of p99 are printed with
# the ratios, and PASS or FAIL against the goal: the edge at or above
# nginx's requests/s and at or below its p99.
#
#   bench/edge/run.sh                           # 3 rounds of 10 s
#   DURATION=5 ROUNDS=1 CONNS=256 bench/edge/run.sh
#   ROUNDS=9 CONNS=256 FILES=/img/photo.png bench/edge/run.sh  # one cell
#
# Runs build/wharf (or $WHARF): build it first.  Both servers get 2
# threads/processes (the edge one per CPU, nginx WORKERS).  Installs nginx-light and wrk when missing (as root).
# Everything it writes goes to a temp folder under $BENCH_DIR (default
# $TMPDIR, else /tmp), removed at the end unless KEEP=1.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
WHARF=${WHARF:-$ROOT/build/wharf}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"64 256"}
WORKERS=${WORKERS:-2}
NGINX_PORT=${NGINX_PORT:-18490}
FILES=${FILES:-"/index.html /assets/app-3f9a2c1b.js /img/photo.png"}
PLAIN=${PLAIN:-link}
case $PLAIN in
link|copy) ;;
*) echo "bench/edge: PLAIN=$PLAIN: use link or copy" >&2; exit 1 ;;
esac
# The objects the links point at are the server's, mode 0600: nginx's
# workers then run as the user that owns them.
NGINX_USER=
[ "$PLAIN" = link ] && [ "$(id -u)" = 0 ] && NGINX_USER="user root;"

install_tools() {
	want=""
	command -v wrk >/dev/null 2>&1 || want="$want wrk"
	[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 ||
	    want="$want nginx-light"
	[ -n "$want" ] || return 0
	if [ "$(id -u)" != 0 ]; then
		echo "bench/edge: missing:$want; as root: apt-get install" \
		    "-y$want" >&2
		exit 1
	fi
	echo "bench/edge: installing$want" >&2
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	apt-get install -y -q $want >/dev/null 2>&1 ||
	    { apt-get update -q >/dev/null && apt-get install -y -q $want \
	      >/dev/null; }
}

write_nginx_conf() {
	mkdir -p "$WORK/nginx/tmp"
	cat > "$WORK/nginx/nginx.conf" <<EOF
# bench/edge: nginx set up for speed, serving a plain folder of the site.
$NGINX_USER
worker_processes $WORKERS;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events {
	use epoll;
	worker_connections 16384;
	multi_accept on;
}
http {
	include /etc/nginx/mime.types;
	access_log off;
	sendfile on;
	tcp_nopush on;
	tcp_nodelay on;
	keepalive_timeout 75s;
	keepalive_requests 10000000;
	open_file_cache max=10000 inactive=120s;
	open_file_cache_valid 120s;
	open_file_cache_min_uses 1;
	open_file_cache_errors on;
	client_body_temp_path $WORK/nginx/tmp/body;
	proxy_temp_path $WORK/nginx/tmp/proxy;
	fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
	uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
	scgi_temp_path $WORK/nginx/tmp/scgi;
	server {
		listen 127.0.0.1:$NGINX_PORT reuseport backlog=4096;
		server_name _;
		root $WORK/plain;
	}
}
EOF
}

cleanup() {
	status=$?
	[ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null
	[ -n "${HELPER_PID:-}" ] && kill "$HELPER_PID" 2>/dev/null
	wait 2>/dev/null
	if [ "${KEEP:-0}" = 1 ] || [ "$status" -ne 0 ]; then
		echo "bench/edge: kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	return 0
}

# nginx's folder, plain/: each file of the site a hard link to the object
# the edge sends for it (PLAIN=link, the default), so both servers send
# from the same page-cache pages; or a copy (PLAIN=copy).  On these VMs
# the same nginx served the 200 KiB image 15% faster from the edge's
# object than from a copy made a moment before, in alternated rounds:
# which guest pages hold a file matters as much as the server (see
# docs/benchmarks.md, "Same pages").
make_plain() {
	(cd "$WORK/site" && find . -type f) | while read -r f; do
		mkdir -p "$WORK/plain/$(dirname "$f")"
		sha=$(sha256sum "$WORK/site/$f" | cut -d' ' -f1)
		obj="$WORK/data/blobs/tenants/$TENANT/objects/$sha"
		if [ "$PLAIN" = copy ]; then
			cp "$WORK/site/$f" "$WORK/plain/$f"
		elif ! ln "$obj" "$WORK/plain/$f"; then
			echo "bench/edge: cannot link $obj (PLAIN=copy to" \
			    "give nginx copies)" >&2
			exit 1
		fi
	done
}

# "load average 1.00 2.00 3.00, CPU pressure avg10=12.34"
machine_load() {
	printf 'load average %s' "$(cut -d' ' -f1-3 /proc/loadavg)"
	[ -r /proc/pressure/cpu ] && printf ', CPU pressure %s' \
	    "$(awk '/^some/ { print $2 }' /proc/pressure/cpu)"
	echo
}

# wrk_once PORT CONNS PATH SECONDS: prints "requests/s p99_ms".
wrk_once() {
	wrk -t2 -c"$2" -d"$4"s --latency -H "Host: $TENANT.localhost" \
	    -H 'Accept-Encoding: identity' "http://127.0.0.1:$1$3" |
	    awk '
	    /Requests\/sec:/ { rps = $2 }
	    /Non-2xx or 3xx/ { bad = $NF }
	    /Socket errors/ { errs = $0 }
	    $1 == "99%" {
		n = $2; unit = $2
		sub(/[a-z]+$/, "", n); sub(/^[0-9.]+/, "", unit)
		p99 = n
		if (unit == "us") p99 = n / 1000
		else if (unit == "s") p99 = n * 1000
		else if (unit == "m") p99 = n * 60000
	    }
	    END {
		if (bad != "" || errs != "")
			printf "bench/edge: %s %s\n", bad, errs > "/dev/stderr"
		printf "%.0f %.3f\n", rps, p99
	    }'
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

install_tools
# The network both servers and wrk share (see bench/lib/net.sh).
. "$HERE/../lib/net.sh"
bench_net "$0" "$@"
if [ ! -x "$WHARF" ]; then
	echo "bench/edge: no $WHARF: build it first (ninja -C build)" >&2
	exit 1
fi
WORK=$(mktemp -d "$BENCH_DIR/wharf-bench-edge.XXXXXX")
chmod 755 "$WORK"       # nginx's workers (www-data) read plain/ in it
trap cleanup EXIT
trap 'exit 1' INT TERM
LOAD_START=$(machine_load)

# The edge: wharf serve, the site deployed through the API.
python3 "$HERE/wharf_site.py" edge "$WHARF" "$WORK" &
HELPER_PID=$!
i=0
while [ ! -f "$WORK/ready" ]; do
	i=$((i + 1))
	if [ "$i" -gt 600 ] || ! kill -0 "$HELPER_PID" 2>/dev/null; then
		echo "bench/edge: the site was not deployed; see" \
		    "$WORK/serve.log" >&2
		exit 1
	fi
	sleep 0.1
done
read -r EDGE_PORT API_PORT TENANT WHARF_PID < "$WORK/ready"

make_plain
write_nginx_conf
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
sleep 0.5

# Both answer every file with the same bytes.
for path in $FILES; do
	for port in "$EDGE_PORT" "$NGINX_PORT"; do
		curl -sf -H "Host: $TENANT.localhost" \
		    -H 'Accept-Encoding: identity' -o "$WORK/check" \
		    "http://127.0.0.1:$port$path" ||
		    { echo "bench/edge: port $port fails $path" >&2; exit 1; }
		cmp -s "$WORK/check" "$WORK/site$path" ||
		    { echo "bench/edge: port $port sends other bytes for" \
		      "$path" >&2; exit 1; }
	done
done
hdr() {
	curl -s -o /dev/null -w '%{size_header}' -H "Host: $TENANT.localhost" \
	    -H 'Accept-Encoding: identity' "http://127.0.0.1:$1$2"
}
echo "bench/edge: wharf edge :$EDGE_PORT (pid $WHARF_PID), nginx" \
    "$(nginx -v 2>&1 | sed 's/.*\///') :$NGINX_PORT; both send the same" \
    "bytes (Accept-Encoding: identity)"
echo "response head bytes, edge/nginx: html $(hdr "$EDGE_PORT" /index.html)/$(hdr "$NGINX_PORT" /index.html)," \
    "js $(hdr "$EDGE_PORT" /assets/app-3f9a2c1b.js)/$(hdr "$NGINX_PORT" /assets/app-3f9a2c1b.js)," \
    "png $(hdr "$EDGE_PORT" /img/photo.png)/$(hdr "$NGINX_PORT" /img/photo.png)"
echo "wrk -t2 -d${DURATION}s --latency, $ROUNDS rounds, alternating;" \
    "$(nproc) CPUs, $(free -m | awk '/^Mem:/ { print $2 }') MiB," \
    "$(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')," \
    "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "$BENCH_NET_DESC"
if [ "$PLAIN" = link ]; then
	echo "nginx's files: hard links to the edge's objects (PLAIN=link)"
else
	echo "nginx's files: copies (PLAIN=copy)"
fi
echo "at start: $LOAD_START"

# Warm both up (first touches, caches, TCP).
for port in "$EDGE_PORT" "$NGINX_PORT"; do
	for path in $FILES; do
		wrk_once "$port" 64 "$path" 1 >/dev/null
	done
done

RESULTS="$WORK/results.txt"
: > "$RESULTS"
for path in $FILES; do
	for conns in $CONNS; do
		round=1
		while [ "$round" -le "$ROUNDS" ]; do
			if [ $((round % 2)) -eq 1 ]; then
				order="edge:$EDGE_PORT nginx:$NGINX_PORT"
			else
				order="nginx:$NGINX_PORT edge:$EDGE_PORT"
			fi
			for server in $order; do
				r=$(wrk_once "${server#*:}" "$conns" "$path" \
				    "$DURATION")
				echo "$path $conns ${server%%:*} $round $r" |
				    tee -a "$RESULTS" >&2
			done
			round=$((round + 1))
		done
	done
done
LOAD_END=$(machine_load)

echo
printf '%-24s %5s | %9s %9s | %9s %9s | %6s %6s | %s\n' file conns \
    "edge r/s" "edge p99" "nginx r/s" "nginx p99" "rps×" "p99×" goal
for path in $FILES; do
	for conns in $CONNS; do
		row="$path $conns"
		for name in edge nginx; do
			for col in 5 6; do
				v=$(awk -v p="$path" -v c="$conns" \
				    -v n="$name" -v k="$col" \
				    '$1 == p && $2 == c && $3 == n { print $k }' \
				    "$RESULTS" | median)
				row="$row $v"
			done
		done
		echo "$row"
	done
done | awk '{
	rr = $3 / $5; pr = $6 > 0 ? $4 / $6 : 0
	ok = ($3 >= $5 && $4 <= $6) ? "PASS" : "FAIL"
	if (ok == "FAIL") bad[$1] = 1
	seen[$1] = 1; order[++n] = $1
	printf "%-24s %5s | %9s %7.2fms | %9s %7.2fms | %6.2f %6.2f | %s%s\n",
	    $1, $2, $3, $4, $5, $6, rr, pr, ok,
	    ($3 >= $5 ? "" : " (req/s)") ($4 <= $6 ? "" : " (p99)")
    } END {
	printf "\nper file (all its connection counts):"
	for (i = 1; i <= n; i++) if (!(order[i] in done)) {
		done[order[i]] = 1
		printf " %s %s", order[i], bad[order[i]] ? "FAIL" : "PASS"
	}
	printf "\n"
    }'
echo "(medians of $ROUNDS; rps× = edge/nginx requests/s, above 1 favours" \
    "the edge; p99× = edge/nginx p99, below 1 favours the edge)"
echo "at end: $LOAD_END"
