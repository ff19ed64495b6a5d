#!/usr/bin/env bash
# bench/extract: Wharf's extractor, build_extract(), against `bsdtar -xf`
# on the same archives (issue 4).
#
#   bench/extract/run.sh           # 5 rounds per archive
#   ROUNDS=9 bench/extract/run.sh
#
# Settings (environment):
#   ROUNDS      timed rounds per archive (default 5); medians are reported
#   BENCH_DIR   where the temp folder goes (default $TMPDIR or /tmp); the
#               archives and every output folder live in it, on one disk
#   CC          the C compiler (default cc)
#   NICE        niceness of the timed commands (default -20 as root, else
#               unchanged); a shared machine's other load then delays them
#               less.  NICE= (empty) leaves it unchanged.
#
# What it does:
#   1. builds extract_main.c (a driver that calls build_extract() with the
#      default limits) against the static libraries in build/ (run
#      `ninja -C build` first);
#   2. writes small.zip and large.zip with make_archives.py (deterministic;
#      see its header for what they hold);
#   3. per archive: one untimed extraction with each tool, whose trees
#      must be the same (diff -r), then ROUNDS rounds, alternating which
#      tool goes first; every extraction goes into a fresh empty folder
#      (probed, see below), after a `sync`, and is timed with bash's
#      `time` (wall, user and system seconds of the whole process);
#   4. prints the medians, the ratio wharf/bsdtar of the wall times (and
#      of the CPU times) and PASS/FAIL against the goal: Wharf within 10%
#      of bsdtar (wall ratio <= 1.10).
#
# File creation on ext4 without a journal (the machine of
# docs/benchmarks.md) is slow near recently deleted files: for each new
# inode the allocator skips, one by one, the inodes of its group freed in
# the last 60 seconds, or 360 while their inode table block is dirty
# (recently_deleted() in fs/ext4/ialloc.c).  In a group where 10,000 files
# had just been deleted (a previous round, a previous run's cleanup, or
# another program's), extracting small.zip took 5 to 10 s instead of 0.4
# to 0.7 s, with either tool, almost all of it system time; where fewer
# had been, from a third more to twice the system time.  So:
#   - no output folder is deleted before the end of the run (about 3 GiB
#     with the default 5 rounds);
#   - the temp folder gets ext4's "top directory" flag (chattr +T), so
#     that each folder made in it is placed like a top-level one, in a
#     group with few folders;
#   - each output folder is probed first: probe.py makes a folder P and
#     creates 2,000 empty files in it, and P is used only when that cost
#     at most 1.25 times the lowest probe of the run (3 probes at the
#     start set that floor); otherwise P is left aside and another one is
#     tried, and the number left aside is printed.  The extraction goes
#     into P/out, which ext4 places in P's group.
#
# Exit status: 0 the goal is met on both archives, 1 it is missed, 2 the
# benchmark failed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD="$ROOT/build"
ROUNDS=${ROUNDS:-5}
BASE=${BENCH_DIR:-${TMPDIR:-/tmp}}
CC=${CC:-cc}
GOAL=1.10

die() { echo "bench/extract: $*" >&2; exit 2; }

# What else the machine is doing: figures taken under load are noisy.
machine_state() {
	printf 'load average %s' "$(cut -d' ' -f1-3 /proc/loadavg)"
	[ -r /proc/pressure/cpu ] &&
	    printf ', CPU pressure %s' "$(awk '/^some/ { print $2 }' /proc/pressure/cpu)"
	echo
}

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS=$ROUNDS is not a number"
command -v python3 >/dev/null || die "python3 is missing"
if ! command -v bsdtar >/dev/null; then
	[ "$(id -u)" = 0 ] || die "bsdtar is missing: apt-get install libarchive-tools"
	echo "installing libarchive-tools (bsdtar)"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get install -y -q libarchive-tools ||
	    { apt-get update -q && apt-get install -y -q libarchive-tools; }; } \
	    >/dev/null || die "cannot install libarchive-tools"
fi
for lib in build core; do
	[ -f "$BUILD/src/$lib/libwharf_$lib.a" ] ||
	    die "$BUILD/src/$lib/libwharf_$lib.a is missing: run ninja -C build"
done

# Both tools run at the same priority: high, when allowed.
if [ -z "${NICE+set}" ]; then
	if [ "$(id -u)" = 0 ]; then NICE=-20; else NICE=; fi
fi
PRIO=()
[ -z "$NICE" ] || PRIO=(nice -n "$NICE")

T=$(mktemp -d "$BASE/wharf-bench-extract.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 2' INT TERM
chattr +T "$T" 2>/dev/null || true

# The driver, against the project's static libraries (a group, so their
# order does not matter).
DRIVER="$T/extract_main"
# shellcheck disable=SC2046
"$CC" -O2 -Wall -Wextra -I "$ROOT/src" -o "$DRIVER" \
    "$HERE/extract_main.c" \
    -Wl,--start-group "$BUILD"/src/*/libwharf_*.a -Wl,--end-group \
    $(pkg-config --libs libarchive) -lpthread ||
    die "cannot build extract_main against $BUILD"

echo "bench/extract: $ROUNDS rounds, in $T ($(df --output=source "$T" | tail -1)), timed commands at nice ${NICE:-unchanged}"
bsdtar --version
STATE_START=$(machine_state)
echo "at start: $STATE_START"
echo "writing the archives..."
python3 "$HERE/make_archives.py" "$T"
for z in small large; do
	echo "  $z.zip $(stat -c %s "$T/$z.zip") bytes, sha256 $(sha256sum "$T/$z.zip" | cut -c1-16)..."
done

RESULTS="$T/results.tsv"
: >"$RESULTS"
n=0
SKIPPED=0
FLOOR=

# probe DIR: the CPU milliseconds of creating 2,000 files in a new DIR;
# keeps FLOOR, the lowest seen.
probe() {
	local cost
	cost=$("${PRIO[@]}" python3 "$HERE/probe.py" "$1") || die "probe.py failed in $1"
	FLOOR=$(awk -v c="$cost" -v f="${FLOOR:-}" \
	    'BEGIN { print (f == "" || c < f) ? c : f }')
	COST=$cost
}

# fresh_dest TOOL: makes an empty output folder where creating files is
# not slowed down by recently deleted inodes; sets DEST.
fresh_dest() {
	local dir
	for _ in $(seq 50); do
		n=$((n + 1))
		dir="$T/d.$n.$1"
		probe "$dir"
		if awk -v c="$COST" -v f="$FLOOR" 'BEGIN { exit !(c <= 1.25 * f) }'; then
			DEST="$dir/out"
			mkdir "$DEST"
			return
		fi
		SKIPPED=$((SKIPPED + 1))
	done
	die "no folder found where creating files is fast (tried 50)"
}

# run TOOL ZIP: one extraction into a fresh folder; sets TIMING to
# "wall user sys" and LAST_DEST to the folder.
run() {
	local tool=$1 zip=$2 dest
	local TIMEFORMAT='%3R %3U %3S'
	fresh_dest "$tool"
	dest=$DEST
	sync
	if [ "$tool" = wharf ]; then
		TIMING=$( { time "${PRIO[@]}" "$DRIVER" "$zip" "$dest" >"$dest.log" 2>&1; } 2>&1 ) ||
		    { cat "$dest.log" >&2; die "wharf failed on $zip"; }
	else
		TIMING=$( { time "${PRIO[@]}" bsdtar -xf "$zip" -C "$dest" >"$dest.log" 2>&1; } 2>&1 ) ||
		    { cat "$dest.log" >&2; die "bsdtar failed on $zip"; }
	fi
	LAST_DEST=$dest
}

for i in 1 2 3; do
	probe "$T/calibrate.$i"
done
echo "probe floor: $FLOOR ms of CPU for 2,000 empty files"

for z in small large; do
	zip="$T/$z.zip"
	run wharf "$zip"
	first_wharf=$LAST_DEST
	echo "  $z: $(cat "$first_wharf.log")"
	run bsdtar "$zip"
	first_bsdtar=$LAST_DEST
	diff -r "$first_wharf" "$first_bsdtar" >/dev/null ||
	    die "$z: wharf and bsdtar wrote different trees"
	echo "  $z: both tools wrote the same tree (diff -r)"

	printf '%-6s %-6s %-7s %8s %8s %8s\n' archive round tool wall_s user_s sys_s
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then order="wharf bsdtar"; else order="bsdtar wharf"; fi
		for tool in $order; do
			run "$tool" "$zip"
			read -r wall user sys <<<"$TIMING"
			printf '%-6s %-6s %-7s %8s %8s %8s\n' "$z" "$r" "$tool" \
			    "$wall" "$user" "$sys"
			printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$z" "$r" "$tool" \
			    "$wall" "$user" "$sys" >>"$RESULTS"
		done
	done
done
STATE_END=$(machine_state)
echo "at end: $STATE_END"
echo "output folders left aside by the probe (slow file creation): $SKIPPED; probe floor $FLOOR ms"

python3 - "$RESULTS" "$GOAL" "$STATE_START" "$STATE_END" <<'EOF'
import re
import statistics
import sys

path, goal = sys.argv[1], float(sys.argv[2])
pressure = [float(m) for m in re.findall(r"avg10=([0-9.]+)", " ".join(sys.argv[3:]))]
rows = [line.split("\t") for line in open(path).read().splitlines()]
ok = True
print()
print(f"medians (seconds)      wall    user     sys  user+sys")
for z in ("small", "large"):
    med = {}
    for tool in ("wharf", "bsdtar"):
        rs = [r for r in rows if r[0] == z and r[2] == tool]
        wall = statistics.median(float(r[3]) for r in rs)
        user = statistics.median(float(r[4]) for r in rs)
        sys_ = statistics.median(float(r[5]) for r in rs)
        cpu = statistics.median(float(r[4]) + float(r[5]) for r in rs)
        med[tool] = (wall, cpu)
        print(f"  {z:5} {tool:7} {wall:8.3f} {user:7.3f} {sys_:7.3f} "
              f"{cpu:8.3f}")
    ratio = med["wharf"][0] / med["bsdtar"][0]
    cpu_ratio = med["wharf"][1] / med["bsdtar"][1]
    good = ratio <= goal
    ok = ok and good
    print(f"  {z}: ratio wharf/bsdtar wall {ratio:.2f} -> "
          f"{'PASS' if good else 'FAIL'} (goal <= {goal:.2f}); CPU time "
          f"ratio {cpu_ratio:.2f}")
if pressure and max(pressure) > 20:
    print(f"note: the machine was busy (CPU pressure up to {max(pressure):.0f}%):"
          " the wall times include waiting for a CPU, which the CPU time "
          "ratio does not; rerun on a quiet machine before trusting a wall "
          "ratio near the goal")
sys.exit(0 if ok else 1)
EOF
