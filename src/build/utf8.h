/*
 * utf8: decoding shared by the build component's checks (entry names,
 * environment values).  Private to src/build.
 */
#ifndef WHARF_BUILD_UTF8_H
#define WHARF_BUILD_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the character at s, of at most len bytes, into *cp (may be
 * NULL).  Returns its length in bytes, or 0 when it is not valid UTF-8:
 * a stray continuation byte, a cut sequence, an overlong form (such as
 * 0xC0 0xAE for '.'), a surrogate or a value past U+10FFFF.
 */
size_t build_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* Whether the len bytes at s are valid UTF-8 as above. */
bool build_utf8_valid(const char *s, size_t len);

#endif
