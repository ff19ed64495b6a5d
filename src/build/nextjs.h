/*
 * nextjs: step 10, a static export wrapped around the user's own
 * next.config.  The user's file is renamed next.config.wharf-user.<ext>
 * and a new next.config imports it, keeps every setting it makes
 * (a function config, sync or async, included) and adds only what a
 * static export needs: output 'export', trailing slashes, unoptimized
 * images.
 */
#ifndef WHARF_BUILD_NEXTJS_H
#define WHARF_BUILD_NEXTJS_H

#include <stddef.h>

/*
 * Wraps the config in project_dir.  Writes what it did ("wrapped
 * next.config.mjs", "no next.config: wrote one") into what.  Returns 0,
 * or -1 with a message in err.
 */
int build_nextjs_wrap(const char *project_dir, char *what, size_t whatlen,
    char *err, size_t errlen);

#endif
