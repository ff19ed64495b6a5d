/*
 * nextjs: the wrapper written around a Next.js project's config.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "build/nextjs.h"
#include "core/core.h"

/* Next.js reads the first of these that exists. */
static const char *const nextjs_names[] = {
	"next.config.js", "next.config.mjs", "next.config.ts",
};

static const char nextjs_body[] =
"\n"
"export default async function wharfNextConfig(phase, context) {\n"
"  const own = typeof user === 'function'\n"
"    ? await user(phase, context) : await user;\n"
"  const config = own || {};\n"
"  return {\n"
"    ...config,\n"
"    output: 'export',\n"
"    trailingSlash: true,\n"
"    images: { ...(config.images || {}), unoptimized: true },\n"
"  };\n"
"}\n";

static int
nextjs_write(const char *path, const char *import_line, char *err,
    size_t errlen)
{
	static const char head[] =
	    "// Written by Wharf for a static export.  Your own config, if\n"
	    "// you had one, is next.config.wharf-user.*: every setting of\n"
	    "// it is kept; only output, trailingSlash and\n"
	    "// images.unoptimized are set on top.\n";
	FILE *f;
	int ok;

	f = fopen(path, "wx");
	if (f == NULL) {
		snprintf(err, errlen, "cannot write %s: %s", path,
		    strerror(errno));
		return -1;
	}
	ok = fputs(head, f) >= 0 && fputs(import_line, f) >= 0 &&
	    fputs(nextjs_body, f) >= 0;
	if (fclose(f) != 0 || !ok) {
		snprintf(err, errlen, "cannot write %s", path);
		return -1;
	}
	return 0;
}

int
build_nextjs_wrap(const char *project_dir, char *what, size_t whatlen,
    char *err, size_t errlen)
{
	char from[WHARF_PATH_MAX], to[WHARF_PATH_MAX], out[WHARF_PATH_MAX];
	char import_line[128];
	const char *ext, *name = NULL;

	for (size_t i = 0; i < 3 && name == NULL; i++) {
		if (util_fmt(from, sizeof(from), "%s/%s", project_dir,
		    nextjs_names[i]) == 0 && access(from, F_OK) == 0)
			name = nextjs_names[i];
	}
	if (name == NULL) {
		snprintf(import_line, sizeof(import_line),
		    "const user = {};\n");
		snprintf(what, whatlen, "no next.config: wrote next.config.mjs");
		if (util_fmt(out, sizeof(out), "%s/next.config.mjs",
		    project_dir) != 0)
			goto toolong;
		return nextjs_write(out, import_line, err, errlen);
	}

	ext = strrchr(name, '.') + 1;
	if (util_fmt(to, sizeof(to), "%s/next.config.wharf-user.%s",
	    project_dir, ext) != 0 ||
	    util_fmt(out, sizeof(out), "%s/next.config.%s", project_dir,
	    strcmp(ext, "ts") == 0 ? "ts" : "mjs") != 0)
		goto toolong;
	if (rename(from, to) != 0) {
		snprintf(err, errlen, "cannot rename %s: %s", name,
		    strerror(errno));
		return -1;
	}
	/* TypeScript resolves the module without its extension. */
	if (strcmp(ext, "ts") == 0)
		snprintf(import_line, sizeof(import_line),
		    "import user from './next.config.wharf-user';\n");
	else
		snprintf(import_line, sizeof(import_line),
		    "import user from './next.config.wharf-user.%s';\n", ext);
	snprintf(what, whatlen, "wrapped your %s (kept as "
	    "next.config.wharf-user.%s)", name, ext);
	return nextjs_write(out, import_line, err, errlen);
toolong:
	snprintf(err, errlen, "project path too long");
	return -1;
}
