/*
 * fuzz: what every fuzz target shares.
 *
 * A target defines LLVMFuzzerTestOneInput, libFuzzer's entry point.
 * Built with clang and -fsanitize=fuzzer (fuzz/run.sh), libFuzzer
 * drives it; in the normal and sanitizer builds, replay.c's main feeds
 * it the files of a corpus instead, which is how `make check` runs the
 * corpora under fuzz/corpus/.
 *
 * A target checks properties, not only the absence of crashes; a
 * property that fails calls fuzz_fail, which aborts, so that both
 * libFuzzer and the replay report the input.
 */
#ifndef WHARF_FUZZ_H
#define WHARF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define fuzz_check(cond) do {                                          \
	if (!(cond))                                                   \
		fuzz_fail(__FILE__, __LINE__, #cond);                  \
} while (0)

static inline void
fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: property failed: %s\n", file, line, what);
	abort();
}

#endif
