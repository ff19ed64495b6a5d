#!/usr/bin/env bash
# `make check`: every test, ending with one line "N passed, N failed".
#
#   1. unit tests (cmocka, TAP output) of the normal build;
#   2. the same unit tests built with ASan + UBSan;
#   3. the fuzz targets' seed corpora (fuzz/), replayed in the
#      sanitizer build;
#   4. end-to-end tests (pytest) against the real build/wharf.
#
# Each program's cases are counted one by one; a program that crashes
# before reporting counts as one failure.
set -u
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
passed=0
failed=0
failures=()

unit_run() {                    # unit_run BUILDDIR LABEL
	local dir=$1 label=$2 t out rc ok nok
	for t in "$dir"/tests/unit/test_*; do
		[ -x "$t" ] && [ -f "$t" ] || continue
		out=$(CMOCKA_MESSAGE_OUTPUT=tap timeout 600 "$t" 2>&1)
		rc=$?
		ok=$(grep -c '^ok ' <<<"$out")
		nok=$(grep -c '^not ok ' <<<"$out")
		if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
			nok=1
		fi
		passed=$((passed + ok))
		failed=$((failed + nok))
		if [ "$nok" -gt 0 ]; then
			failures+=("$label $(basename "$t")")
			printf '%s\n' "$out"
		fi
		printf '%-6s %-24s %3d passed, %d failed\n' "$label" \
		    "$(basename "$t")" "$ok" "$nok"
	done
}

echo "== unit tests"
unit_run build unit

echo "== unit tests under ASan + UBSan"
if [ ! -f build-asan/build.ninja ]; then
	meson setup build-asan --buildtype=debug -Dwerror=true \
	    -Db_sanitize=address,undefined -Db_lundef=false >/dev/null ||
	    { echo "asan: meson setup failed"; failed=$((failed + 1)); }
fi
if ninja -C build-asan >/dev/null; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    unit_run build-asan asan
else
	ninja -C build-asan | tail -30
	failures+=("asan build")
	failed=$((failed + 1))
fi

# fuzz_replay BUILDDIR LABEL: each fuzz target of BUILDDIR over its
# seed corpus (fuzz/corpus/<target>/; tests/data/zips/ for extract).
# One test per target: it passes when every input does.
fuzz_replay() {
	local dir=$1 label=$2 t name out rc n corpus
	for t in "$dir"/fuzz/fuzz_*; do
		[ -x "$t" ] && [ -f "$t" ] || continue
		name=$(basename "$t")
		corpus=()
		[ -d "fuzz/corpus/${name#fuzz_}" ] &&
		    corpus+=("fuzz/corpus/${name#fuzz_}")
		[ "$name" = fuzz_extract ] && corpus+=(tests/data/zips)
		if [ "${#corpus[@]}" -eq 0 ]; then
			printf '%-6s %-24s no corpus\n' "$label" "$name"
			failures+=("$label $name: no corpus")
			failed=$((failed + 1))
			continue
		fi
		out=$(timeout 600 "$t" "${corpus[@]}" 2>&1)
		rc=$?
		n=$(grep -c '^ok ' <<<"$out")
		if [ "$rc" -eq 0 ] && ! grep -q '^not ok ' <<<"$out"; then
			passed=$((passed + 1))
			printf '%-6s %-24s %3d inputs, passed\n' "$label" \
			    "$name" "$n"
		else
			failed=$((failed + 1))
			failures+=("$label $name")
			tail -20 <<<"$out"
			printf '%-6s %-24s %3d inputs, FAILED (exit %d)\n' \
			    "$label" "$name" "$n" "$rc"
		fi
	done
}

echo "== fuzz corpora replayed under ASan + UBSan"
fuzz_replay build-asan fuzz

echo "== end-to-end tests"
junit=$(mktemp)
WHARF_BIN="$PWD/build/wharf" $PY -m pytest tests/e2e -q -rfE \
    -p no:cacheprovider --junitxml="$junit"
read -r e2e_pass e2e_fail < <($PY - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = 0
for s in suites:
    t += int(s.get("tests", 0)) - int(s.get("skipped", 0))
    f += int(s.get("failures", 0)) + int(s.get("errors", 0))
print(t - f, f)
PY
)
rm -f "$junit"
passed=$((passed + e2e_pass))
failed=$((failed + e2e_fail))
[ "$e2e_fail" -gt 0 ] && failures+=("e2e: $e2e_fail")

echo
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
