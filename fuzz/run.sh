#!/usr/bin/env bash
# fuzz/run.sh: fuzzes Wharf's parsers of untrusted input with libFuzzer.
#
#   fuzz/run.sh                     # every target, 60 s each
#   SECONDS_EACH=600 fuzz/run.sh multipart rules
#
# Builds build-fuzz/ with clang (-fsanitize=fuzzer, ASan, UBSan;
# installs clang and its runtime when missing, as root), then runs each
# target from its seed corpus (fuzz/corpus/<target>/; tests/data/zips/
# for extract), reading the seeds and writing what it finds to
# build-fuzz/corpus/<target>/, never to the committed corpus.  A crash,
# leak, timeout or failed property leaves its input in
# build-fuzz/crashes/ and makes the script exit 1; replay it with the
# normal build's build/fuzz/fuzz_<target> FILE.
#
# Settings (environment): SECONDS_EACH (default 60), FUZZ_BUILD
# (default build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${SECONDS_EACH:-60}
B=${FUZZ_BUILD:-build-fuzz}
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(multipart rules httputil http1 extract)

command -v clang >/dev/null && [ -n "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null | grep /)" ] ||
    ./scripts/install-deps.sh clang libclang-rt-14-dev

if [ ! -f "$B/build.ninja" ]; then
	CC=clang meson setup "$B" --buildtype=debugoptimized -Dfuzz=true \
	    -Db_sanitize=address,undefined -Db_lundef=false \
	    -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$B" $(printf 'fuzz/fuzz_%s ' "${targets[@]}") >/dev/null

mkdir -p "$B/crashes"
rc=0
for t in "${targets[@]}"; do
	seeds=()
	[ -d "fuzz/corpus/$t" ] && seeds+=("fuzz/corpus/$t")
	[ "$t" = extract ] && seeds+=(tests/data/zips)
	mkdir -p "$B/corpus/$t"
	log="$B/fuzz-$t.log"
	echo "fuzz/run.sh: $t for ${SECONDS_EACH}s (log $log)"
	if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    "$B/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 \
	    -rss_limit_mb=2048 \
	    -artifact_prefix="$B/crashes/$t-" \
	    "$B/corpus/$t" "${seeds[@]}" >"$log" 2>&1; then
		echo "fuzz/run.sh: $t FAILED:"
		grep -E 'ERROR|property failed|SUMMARY|artifact' "$log" | head -10
		rc=1
	else
		grep -E '^#[0-9]+.*DONE|Done [0-9]+ runs' "$log" | tail -1 ||
		    tail -1 "$log"
	fi
done
exit $rc
