# bench/lib/net.sh: the network a loopback benchmark runs on.  Sourced
# (POSIX sh) by the run.sh of bench/edge, bench/edge-core, bench/soak,
# bench/upload and bench/deploy, which call, before anything else:
#
#   . "$HERE/../lib/net.sh"
#   bench_net "$0" "$@"
#
# NET=private (the default, as root): the script runs again inside a
# network namespace of its own (unshare --net).  Its loopback gets the
# host's TCP settings (buffer sizes, backlogs, autocorking and the
# others in BENCH_NET_SYSCTLS) with one change: the congestion control
# is NET_CC (default cubic, Debian's default).
# NET=host: the host's network as it is.  Also what a non-root run gets.
#
# Why: with bbr on a loopback device that has no queueing discipline
# (the kind of VM these figures come from: bbr, and lo with `noqueue`),
# TCP paces every connection with its own high-resolution timers: a
# response of more than one segment leaves in pieces, each from a timer
# interrupt.  Measured on the same machine and hour (docs/benchmarks.md,
# "The loopback's congestion control"): the upload's loopback ceiling
# (tcp-null) took 0.048 s with bbr and 0.024 s with cubic; nginx and the
# edge both served the 200 KiB image 5 to 25% slower with bbr, and their
# rounds spread several times wider.  Neither server chooses this; the
# benchmark compares servers, so it fixes the network they share.
#
# The host keeps its settings; only its list of allowed congestion
# controls gains NET_CC for the length of the run, since a namespace may
# pick no other.
#
# After bench_net, BENCH_NET_DESC says which network the run is on, for
# the script's header.

BENCH_NET_SYSCTLS="net.core.somaxconn net.ipv4.tcp_rmem net.ipv4.tcp_wmem
net.ipv4.tcp_autocorking net.ipv4.tcp_limit_output_bytes
net.ipv4.tcp_notsent_lowat net.ipv4.tcp_slow_start_after_idle
net.ipv4.tcp_max_syn_backlog net.ipv4.tcp_tw_reuse net.ipv4.tcp_fin_timeout
net.ipv4.tcp_timestamps net.ipv4.tcp_sack net.ipv4.tcp_window_scaling
net.ipv4.tcp_moderate_rcvbuf net.ipv4.tcp_no_metrics_save
net.ipv4.tcp_fastopen net.ipv4.ip_local_port_range"

# /proc/sys's file for a sysctl's name.
bench_net_file() {
	echo "/proc/sys/$(echo "$1" | tr . /)"
}

# The host's values of BENCH_NET_SYSCTLS, "name=value" joined by ';'.
bench_net_host_values() {
	for s in $BENCH_NET_SYSCTLS; do
		v=$(tr '\t' ' ' < "$(bench_net_file "$s")" 2>/dev/null) ||
		    continue
		printf '%s=%s;' "$s" "$v"
	done
}

# Inside the namespace: loopback up, the host's values, then NET_CC.
bench_net_setup() {
	ip link set lo up || return 1
	old_ifs=$IFS
	IFS=';'
	for kv in $BENCH_NET_HOST; do
		[ -n "$kv" ] || continue
		# A setting this kernel's namespaces do not have stays out.
		echo "${kv#*=}" > "$(bench_net_file "${kv%%=*}")" 2>/dev/null ||
		    true
	done
	IFS=$old_ifs
	if ! echo "$NET_CC" > /proc/sys/net/ipv4/tcp_congestion_control \
	    2>/dev/null; then
		echo "bench: cannot set the congestion control to $NET_CC" \
		    "(available: $(cat \
		    /proc/sys/net/ipv4/tcp_available_congestion_control))" >&2
		return 1
	fi
	BENCH_NET_DESC="network: a private namespace, loopback with the host's TCP settings and congestion control $NET_CC (the host's: $BENCH_NET_HOST_CC; NET=host to use it)"
}

bench_net() {
	bench_net_script=$1
	shift
	NET=${NET:-private}
	NET_CC=${NET_CC:-cubic}
	host_cc=$(cat /proc/sys/net/ipv4/tcp_congestion_control 2>/dev/null ||
	    echo unknown)
	case $NET in
	private) ;;
	host)
		BENCH_NET_DESC="network: the host's, congestion control $host_cc"
		export BENCH_NET_DESC
		return 0 ;;
	*)
		echo "bench: NET=$NET: use private or host" >&2
		exit 2 ;;
	esac
	if [ -n "${BENCH_NET_INSIDE:-}" ]; then
		bench_net_setup || exit 2
		export BENCH_NET_DESC
		return 0
	fi
	if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null ||
	    ! command -v ip >/dev/null; then
		echo "bench: NET=private needs root, unshare and ip;" \
		    "running on the host's network (NET=host)" >&2
		BENCH_NET_DESC="network: the host's, congestion control $host_cc"
		export BENCH_NET_DESC
		return 0
	fi
	BENCH_NET_INSIDE=1
	BENCH_NET_HOST=$(bench_net_host_values)
	BENCH_NET_HOST_CC=$host_cc
	export BENCH_NET_INSIDE BENCH_NET_HOST BENCH_NET_HOST_CC NET NET_CC
	# A namespace other than the host's may only pick a congestion
	# control the host allows (tcp_allowed_congestion_control): NET_CC
	# is allowed for the run and the list put back after it.
	allowed_file=/proc/sys/net/ipv4/tcp_allowed_congestion_control
	allowed=$(cat "$allowed_file")
	# The list goes back however this shell ends, Ctrl-C included.
	case " $allowed " in
	*" $NET_CC "*) allowed= ;;
	*) echo "$allowed $NET_CC" > "$allowed_file" || allowed= ;;
	esac
	trap '[ -z "$allowed" ] || echo "$allowed" > "$allowed_file"' EXIT
	trap 'exit 130' INT TERM
	rc=0
	unshare --net -- "$bench_net_script" "$@" || rc=$?
	exit "$rc"
}
