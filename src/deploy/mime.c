/*
 * mime: an open-addressing hash table, extension -> content type.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "deploy/mime.h"

#define MIME_CHARSET            "; charset=utf-8"
#define MIME_INITIAL_SLOTS      1024    /* a power of two */

struct mime_entry {
	char       *ext;        /* lowercase; NULL for a free slot */
	const char *type;       /* one of the table's types */
};

struct mime_table {
	struct mime_entry *slots;
	size_t             nslots;      /* a power of two */
	unsigned           count;
	char             **types;       /* owned type strings */
	size_t             ntypes;
	size_t             typecap;
};

/* What a site needs even when the system table lacks it. */
static const struct {
	const char *ext;
	const char *type;
} mime_builtin[] = {
	{ "html",        "text/html" },
	{ "htm",         "text/html" },
	{ "css",         "text/css" },
	{ "js",          "text/javascript" },
	{ "mjs",         "text/javascript" },
	{ "json",        "application/json" },
	{ "map",         "application/json" },
	{ "webmanifest", "application/manifest+json" },
	{ "txt",         "text/plain" },
	{ "xml",         "application/xml" },
	{ "svg",         "image/svg+xml" },
	{ "png",         "image/png" },
	{ "jpg",         "image/jpeg" },
	{ "jpeg",        "image/jpeg" },
	{ "gif",         "image/gif" },
	{ "webp",        "image/webp" },
	{ "avif",        "image/avif" },
	{ "ico",         "image/vnd.microsoft.icon" },
	{ "wasm",        "application/wasm" },
	{ "woff",        "font/woff" },
	{ "woff2",       "font/woff2" },
	{ "ttf",         "font/ttf" },
	{ "otf",         "font/otf" },
	{ "pdf",         "application/pdf" },
	{ "mp4",         "video/mp4" },
	{ "webm",        "video/webm" },
	{ "mp3",         "audio/mpeg" },
};

#define MIME_NBUILTIN (sizeof(mime_builtin) / sizeof(mime_builtin[0]))

static pthread_once_t    mime_once = PTHREAD_ONCE_INIT;
static struct mime_table *mime_shared;
static int               mime_shared_rc;

static uint32_t
mime_hash(const char *s)
{
	uint32_t h = 2166136261u;       /* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static void
mime_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* The slot of ext, or the free slot where it would go. */
static struct mime_entry *
mime_slot(const struct mime_entry *slots, size_t nslots, const char *ext)
{
	size_t i = mime_hash(ext) & (nslots - 1);

	while (slots[i].ext != NULL && strcmp(slots[i].ext, ext) != 0)
		i = (i + 1) & (nslots - 1);
	return (struct mime_entry *)&slots[i];
}

/* Doubles the slots once they are half full. */
static int
mime_grow(struct mime_table *t)
{
	size_t nslots = t->nslots * 2;
	struct mime_entry *slots;

	if (2 * (t->count + 1) <= t->nslots)
		return 0;
	slots = calloc(nslots, sizeof(*slots));
	if (slots == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < t->nslots; i++)
		if (t->slots[i].ext != NULL)
			*mime_slot(slots, nslots, t->slots[i].ext) =
			    t->slots[i];
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return 0;
}

/* Maps ext (lowercased here) to type unless it is mapped already. */
static int
mime_put(struct mime_table *t, char *ext, const char *type)
{
	struct mime_entry *e;

	mime_lower(ext);
	if (strlen(ext) > MIME_EXT_MAX || t->count >= MIME_ENTRIES_MAX)
		return 0;
	if (mime_slot(t->slots, t->nslots, ext)->ext != NULL)
		return 0;
	if (mime_grow(t) < 0)
		return -ENOMEM;
	e = mime_slot(t->slots, t->nslots, ext);
	e->ext = strdup(ext);
	if (e->ext == NULL)
		return -ENOMEM;
	e->type = type;
	t->count++;
	return 0;
}

/* Whether type (lowercase, no parameters) is sent with a charset. */
static bool
mime_is_text(const char *type)
{
	size_t len = strlen(type);

	return strncmp(type, "text/", 5) == 0 ||
	    strcmp(type, "application/javascript") == 0 ||
	    strcmp(type, "application/json") == 0 ||
	    strcmp(type, "application/xml") == 0 ||
	    (len > 5 && strcmp(type + len - 5, "+json") == 0) ||
	    (len > 4 && strcmp(type + len - 4, "+xml") == 0);
}

static bool
mime_type_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$&-^_.+", c) != NULL);
}

/* Whether type is "major/minor", both tokens; lowercases it. */
static bool
mime_type_valid(char *type)
{
	char *slash = strchr(type, '/');

	mime_lower(type);
	if (slash == NULL || slash == type || slash[1] == '\0' ||
	    strlen(type) > MIME_TYPE_MAX)
		return false;
	for (char *p = type; *p != '\0'; p++)
		if (p != slash && !mime_type_char(*p))
			return false;
	return true;
}

/* A new owned string for type, charset added when it is text. */
static const char *
mime_intern(struct mime_table *t, const char *type)
{
	size_t len = strlen(type) + sizeof(MIME_CHARSET);
	char *s;

	if (t->ntypes == t->typecap) {
		size_t cap = t->typecap == 0 ? 256 : t->typecap * 2;
		char **grown = realloc(t->types, cap * sizeof(*grown));

		if (grown == NULL)
			return NULL;
		t->types = grown;
		t->typecap = cap;
	}
	s = malloc(len);
	if (s == NULL)
		return NULL;
	snprintf(s, len, "%s%s", type, mime_is_text(type) ? MIME_CHARSET : "");
	t->types[t->ntypes++] = s;
	return s;
}

/* One line of mime.types: a type, then its extensions. */
static int
mime_line(struct mime_table *t, char *line)
{
	char *save = NULL, *type, *ext;
	const char *interned = NULL;

	line[strcspn(line, "#")] = '\0';
	type = strtok_r(line, " \t\r\n", &save);
	if (type == NULL || !mime_type_valid(type))
		return 0;
	while ((ext = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
		if (interned == NULL)
			interned = mime_intern(t, type);
		if (interned == NULL || mime_put(t, ext, interned) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Reads file into t; 0 or a negative errno. */
static int
mime_read(struct mime_table *t, const char *file)
{
	FILE *f = fopen(file, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;

	if (f == NULL)
		return -errno;
	while (rc == 0 && (len = getline(&line, &cap, f)) >= 0)
		if (len <= MIME_LINE_MAX && memchr(line, '\0', len) == NULL)
			rc = mime_line(t, line);
	if (rc == 0 && ferror(f))
		rc = -EIO;
	free(line);
	fclose(f);
	return rc;
}

/* The built-in types, where the table lacks them. */
static int
mime_builtins(struct mime_table *t)
{
	for (size_t i = 0; i < MIME_NBUILTIN; i++) {
		char ext[MIME_EXT_MAX + 1];
		const char *type;

		snprintf(ext, sizeof(ext), "%s", mime_builtin[i].ext);
		if (mime_slot(t->slots, t->nslots, ext)->ext != NULL)
			continue;
		type = mime_intern(t, mime_builtin[i].type);
		if (type == NULL || mime_put(t, ext, type) < 0)
			return -ENOMEM;
	}
	return 0;
}

void
mime_table_free(struct mime_table *table)
{
	if (table == NULL)
		return;
	for (size_t i = 0; i < table->nslots; i++)
		free(table->slots[i].ext);
	for (size_t i = 0; i < table->ntypes; i++)
		free(table->types[i]);
	free(table->slots);
	free(table->types);
	free(table);
}

int
mime_table_load(const char *file, struct mime_table **out)
{
	struct mime_table *t = calloc(1, sizeof(*t));
	int rc = -ENOMEM, readrc;

	*out = NULL;
	if (t == NULL)
		goto out;
	t->nslots = MIME_INITIAL_SLOTS;
	t->slots = calloc(t->nslots, sizeof(*t->slots));
	if (t->slots == NULL)
		goto out;

	readrc = mime_read(t, file);
	if (readrc == -ENOMEM || mime_builtins(t) < 0)
		goto out;
	*out = t;
	t = NULL;
	rc = readrc;
out:
	mime_table_free(t);
	return rc;
}

unsigned
mime_table_count(const struct mime_table *table)
{
	return table == NULL ? 0 : table->count;
}

const char *
mime_table_lookup(const struct mime_table *table, const char *path)
{
	const char *name = strrchr(path, '/');
	const char *dot;
	char ext[MIME_EXT_MAX + 1];
	struct mime_entry *e;

	name = name != NULL ? name + 1 : path;
	dot = strrchr(name, '.');
	if (table == NULL || dot == NULL || dot == name || dot[1] == '\0' ||
	    strlen(dot + 1) > MIME_EXT_MAX)
		return MIME_DEFAULT;
	snprintf(ext, sizeof(ext), "%s", dot + 1);
	mime_lower(ext);
	e = mime_slot(table->slots, table->nslots, ext);
	return e->ext != NULL ? e->type : MIME_DEFAULT;
}

static void
mime_init_once(void)
{
	mime_shared_rc = mime_table_load(MIME_TYPES_FILE, &mime_shared);
	if (mime_shared_rc < 0) {
		errno = -mime_shared_rc;
		log_warn("mime.load", "file=%s builtin=%s", MIME_TYPES_FILE,
		    mime_shared != NULL ? "yes" : "no");
	}
}

int
mime_init(void)
{
	pthread_once(&mime_once, mime_init_once);
	return mime_shared_rc;
}

const char *
mime_type_for(const char *path)
{
	mime_init();
	return mime_table_lookup(mime_shared, path);
}

/* Types outside the families of mime_is_compressible's rule. */
static const char *const mime_compressible_extra[] = {
	"application/javascript",
	"application/x-javascript",
	"application/ecmascript",
	"application/json",
	"application/xml",
	"application/wasm",
	"application/vnd.ms-fontobject",
	"application/x-font-ttf",
	"font/ttf",
	"font/otf",
	"font/collection",
	"image/vnd.microsoft.icon",
	"image/x-icon",
	"image/bmp",
};

bool
mime_is_compressible(const char *type)
{
	size_t len = strcspn(type, "; \t");
	size_t n = sizeof(mime_compressible_extra) /
	    sizeof(mime_compressible_extra[0]);

	if (len >= 5 && strncasecmp(type, "text/", 5) == 0)
		return len > 5;
	if ((len > 5 && strncasecmp(type + len - 5, "+json", 5) == 0) ||
	    (len > 4 && strncasecmp(type + len - 4, "+xml", 4) == 0))
		return true;
	for (size_t i = 0; i < n; i++)
		if (strlen(mime_compressible_extra[i]) == len &&
		    strncasecmp(type, mime_compressible_extra[i], len) == 0)
			return true;
	return false;
}
