/*
 * sandbox: one build command under bubblewrap, with limits.
 *
 * A run, top to bottom (sandbox_run):
 *
 *   1. the parent builds bwrap's command line (sandbox_bwrap_args): the
 *      one place that says what the command can see and do;
 *   2. it makes a cgroup for the run (sandbox_cg_open) holding the
 *      memory and pids caps, where the machine lets it;
 *   3. fork; the child (sandbox_child) resets its signals, starts a
 *      session, joins the cgroup, sets its rlimits and descriptors and
 *      execs bwrap.  Only async-signal-safe calls run between fork and
 *      exec: the server has threads.  A failure there comes back on a
 *      close-on-exec pipe, whose EOF says the exec happened;
 *   4. the parent reads the output and bwrap's info (the host pid of the
 *      sandbox's pid 1) with poll(), watches the clock and the cancel
 *      flag, and kills the tree at the limit (sandbox_kill_tree);
 *   5. once bwrap has exited, the rest of the tree is killed and waited
 *      for (session, PID namespace, cgroup), bwrap is reaped, the pipe
 *      drained and the cgroup removed (sandbox_finish).
 *
 * Why the PID namespace is enough to end a daemon that left the
 * session: bwrap runs a small pid 1 in the sandbox; --die-with-parent
 * kills it when bwrap dies, and when a namespace's pid 1 dies the
 * kernel kills every process in the namespace before that pid 1 is
 * reported gone.  We hold a pidfd on that pid 1 and wait for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "build/sandbox.h"
#include "core/core.h"
#include "core/log.h"

#define SANDBOX_BWRAP_PATH      "/usr/bin/bwrap"
#define SANDBOX_DEFAULT_PATH    "/usr/local/bin:/usr/bin:/bin"
#define SANDBOX_POLL_MS         200     /* clock and cancel checks */
#define SANDBOX_GRACE_MS        3000    /* for the tree to go after bwrap */
#define SANDBOX_DRAIN_MS        1000    /* for the pipe's last bytes */
#define SANDBOX_PROBE_MS        10000
#define SANDBOX_NAP_MS          20
#define SANDBOX_READ_CHUNK      16384
#define SANDBOX_INFO_MAX        1024    /* bwrap's --info-fd JSON */
#define SANDBOX_INFO_FD         3       /* its number in the child */
#define SANDBOX_FD_LOW          10      /* kept fds move above this first */
#define SANDBOX_FD_SCAN_MAX     4096    /* without close_range() */
#define SANDBOX_CPU_GRACE_SEC   5       /* SIGXCPU, then SIGKILL */
#define SANDBOX_TMP_BYTES       (UINT64_C(1) << 30)     /* private /tmp */
#define SANDBOX_CG_MAX          2       /* v1: memory and pids groups */
#define SANDBOX_CG_PARENT       "wharf" /* v1: <controller>/wharf/<id> */

/* Overridable at build time, to try the other cgroup version. */
#ifndef SANDBOX_CG_V1_ROOT
#define SANDBOX_CG_V1_ROOT      "/sys/fs/cgroup"
#endif
#ifndef SANDBOX_CG_V2_ROOT
#define SANDBOX_CG_V2_ROOT      "/sys/fs/cgroup"
#endif
#define SANDBOX_CG2_MAGIC       0x63677270      /* CGROUP2_SUPER_MAGIC */

#define SANDBOX_STR_(x)         #x
#define SANDBOX_STR(x)          SANDBOX_STR_(x)

/* Read-only in the sandbox, where present: what npm, node and git
 * need from /etc, and nothing else (no shadow, no keys). */
static const char *const sandbox_etc[] = {
	"/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
	"/etc/hosts", "/etc/host.conf", "/etc/resolv.conf", "/etc/gai.conf",
	"/etc/services", "/etc/protocols", "/etc/networks",
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
	"/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/alternatives",
	"/etc/localtime", "/etc/timezone", "/etc/mime.types",
	"/etc/os-release", "/etc/npmrc", "/etc/gitconfig", "/etc/fonts",
	NULL,
};

/* Top-level folders that merged-/usr systems make links into /usr. */
static const char *const sandbox_root_dirs[] = {
	"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", NULL,
};

/* What the child was doing when it failed, for the message. */
enum sandbox_step {
	SANDBOX_STEP_SESSION = 0,
	SANDBOX_STEP_CGROUP,
	SANDBOX_STEP_RLIMIT,
	SANDBOX_STEP_FDS,
	SANDBOX_STEP_CHDIR,
	SANDBOX_STEP_EXEC,
};

static const char *const sandbox_step_names[] = {
	"starting a session", "joining the cgroup", "setting rlimits",
	"setting up descriptors", "entering the working folder",
	"starting the command",
};

/* What a failing child writes on the error pipe. */
struct sandbox_child_err {
	int step;
	int err;
};

/* A NULL-terminated argv that owns its strings; nomem is sticky. */
struct sandbox_args {
	char  **v;
	size_t  n;
	size_t  cap;
	bool    nomem;
};

/* The run's cgroup: one folder per controller (v1) or one (v2). */
struct sandbox_cgroup {
	int  version;                   /* 0: none, 1 or 2 */
	int  n;                         /* folders made */
	char dir[SANDBOX_CG_MAX][WHARF_PATH_MAX];
	char procs[SANDBOX_CG_MAX][WHARF_PATH_MAX];     /* for the child */
	int  memory;                    /* index of the capped folder, -1 */
	bool pids_capped;
};

/* Output being cut into lines. */
struct sandbox_lines {
	char   buf[SANDBOX_LINE_MAX + 1];
	size_t len;
	size_t passed;                  /* bytes handed to on_line */
};

/* Everything one run holds; freed by sandbox_run_free. */
struct sandbox_run {
	const struct sandbox_cmd *cmd;
	struct sandbox_result    *res;
	struct sandbox_args       args;         /* bwrap's argv */
	char                      path[WHARF_PATH_MAX];  /* what to exec */
	char *const              *exec_argv;
	char *const              *exec_envp;
	struct sandbox_cgroup     cg;
	struct sandbox_lines      lines;
	char                      info[SANDBOX_INFO_MAX];
	size_t                    info_len;
	pid_t                     pid;          /* bwrap, or the command */
	pid_t                     parent;       /* the server, for the child */
	int                       out_r, out_w; /* stdout and stderr */
	int                       info_r, info_w;
	int                       err_r, err_w; /* the child's failure */
	int                       pidfd;        /* on pid, or -1 */
	int                       ns_pidfd;     /* on the sandbox's pid 1 */
	int64_t                   start_ns;
	int64_t                   deadline_ns;
	bool                      stopped;      /* killed at a limit */
	enum sandbox_status       stop;         /* TIMEOUT or CANCELLED */
	int                       wstatus;
	bool                      reaped;
};

static pthread_once_t sandbox_once = PTHREAD_ONCE_INIT;
static bool sandbox_ok;
static char sandbox_bwrap[WHARF_PATH_MAX];
static char *const sandbox_no_env[] = { NULL };

/* Small helpers */

static int64_t
sandbox_ms_left(int64_t until_ns)
{
	int64_t left = until_ns - util_mono_ns();

	return left <= 0 ? 0 : (left + 999999) / 1000000;
}

static void
sandbox_nap(void)
{
	struct timespec ts = { 0, SANDBOX_NAP_MS * 1000000L };

	nanosleep(&ts, NULL);
}

static void
sandbox_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Writes s to the file at path: 0 or -errno. */
static int
sandbox_write_file(const char *path, const char *s)
{
	int fd, rc = 0;
	size_t len = strlen(s);

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, s, len) != (ssize_t)len)
		rc = -errno;
	close(fd);
	return rc;
}

/* Reads the file at path into buf (NUL-terminated): length or -errno. */
static ssize_t
sandbox_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return n;
}

/* The value of name in a "K=V" list, or NULL. */
static const char *
sandbox_env_get(const char *const *envp, const char *name)
{
	size_t len = strlen(name);

	for (; *envp != NULL; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

/*
 * Finds name in the absolute folders of path_list, as execvp would;
 * a name with a slash is taken as is.  0 with out set, or -1.
 */
static int
sandbox_which(const char *name, const char *path_list, char *out,
    size_t len)
{
	struct stat st;
	const char *p, *end;

	if (strchr(name, '/') != NULL)
		return util_fmt(out, len, "%s", name);
	for (p = path_list; *p != '\0'; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		if (*p != '/')
			continue;
		if (util_fmt(out, len, "%.*s/%s", (int)(end - p), p, name))
			continue;
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* Argument vectors */

static void
sandbox_args_addn(struct sandbox_args *a, const char *s, size_t len)
{
	char **v;
	char *copy;

	if (a->nomem)
		return;
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 64;
		v = realloc(a->v, cap * sizeof(*v));
		if (v == NULL)
			goto fail;
		a->v = v;
		a->cap = cap;
	}
	if ((copy = strndup(s, len)) == NULL)
		goto fail;
	a->v[a->n++] = copy;
	a->v[a->n] = NULL;
	return;
fail:
	a->nomem = true;
}

static void
sandbox_args_add(struct sandbox_args *a, const char *s)
{
	sandbox_args_addn(a, s, strlen(s));
}

static void
sandbox_args_add2(struct sandbox_args *a, const char *opt, const char *x)
{
	sandbox_args_add(a, opt);
	sandbox_args_add(a, x);
}

static void
sandbox_args_add3(struct sandbox_args *a, const char *opt, const char *x,
    const char *y)
{
	sandbox_args_add(a, opt);
	sandbox_args_add(a, x);
	sandbox_args_add(a, y);
}

static void
sandbox_args_free(struct sandbox_args *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* Probe */

/* Runs a trial sandbox with the options every run relies on. */
static bool
sandbox_probe_bwrap(const char *bwrap)
{
	static const char *const argv[] = {
		"bwrap", "--unshare-all", "--die-with-parent",
		"--new-session", "--cap-drop", "ALL", "--ro-bind", "/", "/",
		"--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys",
		"--dev", "/dev", "--size", "1048576", "--perms", "1777",
		"--tmpfs", "/tmp", "--remount-ro", "/", "--", "/bin/true",
		NULL,
	};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	int64_t until;
	pid_t pid = -1;
	int st = -1;

	sigfillset(&all);
	sigemptyset(&none);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
	posix_spawn_file_actions_adddup2(&fa, 0, 1);
	posix_spawn_file_actions_adddup2(&fa, 0, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);

	if (posix_spawn(&pid, bwrap, &fa, &attr, (char *const *)argv,
	    sandbox_no_env) != 0)
		goto out;
	until = util_mono_ns() + (int64_t)SANDBOX_PROBE_MS * 1000000;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (sandbox_ms_left(until) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			st = -1;
			break;
		}
		sandbox_nap();
	}
out:
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void
sandbox_probe(void)
{
	char quoted[WHARF_PATH_MAX];
	const char *path = getenv("PATH");

	if (access(SANDBOX_BWRAP_PATH, X_OK) == 0)
		snprintf(sandbox_bwrap, sizeof(sandbox_bwrap), "%s",
		    SANDBOX_BWRAP_PATH);
	else if (sandbox_which("bwrap", path ? path : SANDBOX_DEFAULT_PATH,
	    sandbox_bwrap, sizeof(sandbox_bwrap)) != 0) {
		log_warnx("sandbox.probe", "bwrap=missing");
		return;
	}

	sandbox_ok = sandbox_probe_bwrap(sandbox_bwrap);
	log_q(quoted, sizeof(quoted), sandbox_bwrap);
	if (sandbox_ok)
		log_info("sandbox.probe", "bwrap=%s works=yes", quoted);
	else
		log_warnx("sandbox.probe", "bwrap=%s works=no hint=\"run "
		    "'bwrap --ro-bind / / /bin/true' to see why\"", quoted);
}

bool
sandbox_available(void)
{
	pthread_once(&sandbox_once, sandbox_probe);
	return sandbox_ok;
}

void
sandbox_limits_default(struct sandbox_limits *limits)
{
	limits->timeout_sec = SANDBOX_DEFAULT_TIMEOUT_SEC;
	limits->cpu_sec = SANDBOX_DEFAULT_CPU_SEC;
	limits->max_procs = SANDBOX_DEFAULT_MAX_PROCS;
	limits->max_file_bytes = SANDBOX_DEFAULT_FILE_BYTES;
	limits->memory_bytes = SANDBOX_DEFAULT_MEMORY_BYTES;
	limits->output_max = SANDBOX_DEFAULT_OUTPUT_MAX;
}

/* The command line: what the sandbox holds */

/* /bin, /lib...: the same link as on the host, or a read-only bind. */
static void
sandbox_bwrap_root_dirs(struct sandbox_args *a)
{
	char target[WHARF_PATH_MAX];
	struct stat st;
	ssize_t n;

	for (const char *const *d = sandbox_root_dirs; *d != NULL; d++) {
		if (lstat(*d, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			sandbox_args_add3(a, "--ro-bind", *d, *d);
			continue;
		}
		n = readlink(*d, target, sizeof(target) - 1);
		if (!S_ISLNK(st.st_mode) || n <= 0)
			continue;
		target[n] = '\0';
		sandbox_args_add3(a, "--symlink", target, *d);
	}
}

/* --setenv for each "K=V" (checked by sandbox_check_cmd). */
static void
sandbox_bwrap_env(struct sandbox_args *a, const char *const *envp)
{
	const char *eq;

	sandbox_args_add(a, "--clearenv");
	for (; *envp != NULL; envp++) {
		eq = strchr(*envp, '=');
		sandbox_args_add(a, "--setenv");
		sandbox_args_addn(a, *envp, (size_t)(eq - *envp));
		sandbox_args_add(a, eq + 1);
	}
}

/*
 * The sandbox, in one block: bwrap's options in the order it applies
 * them.  Everything not named here stays out of the command's view.
 */
static int
sandbox_bwrap_args(struct sandbox_run *run)
{
	const struct sandbox_cmd *cmd = run->cmd;
	struct sandbox_args *a = &run->args;
	char tmp_size[32];

	snprintf(tmp_size, sizeof(tmp_size), "%llu",
	    (unsigned long long)SANDBOX_TMP_BYTES);
	sandbox_args_add(a, sandbox_bwrap);

	/* Namespaces: all of them; the host network only when asked. */
	sandbox_args_add(a, "--unshare-all");
	if (cmd->network)
		sandbox_args_add(a, "--share-net");
	sandbox_args_add(a, "--die-with-parent");
	sandbox_args_add(a, "--new-session");
	sandbox_args_add2(a, "--cap-drop", "ALL");

	/* The system, read-only; from /etc only what tools need. */
	sandbox_args_add3(a, "--ro-bind", "/usr", "/usr");
	sandbox_bwrap_root_dirs(a);
	sandbox_args_add2(a, "--dir", "/etc");         /* 0755, not 0700 */
	sandbox_args_add2(a, "--dir", "/etc/ssl");
	for (const char *const *f = sandbox_etc; *f != NULL; f++)
		sandbox_args_add3(a, "--ro-bind-try", *f, *f);

	/*
	 * Its own /proc and /dev.  The command may run as uid 0 (without
	 * capabilities), and uid 0 may write sysctls: /proc/sys and
	 * /proc/sysrq-trigger are covered read-only.
	 */
	sandbox_args_add2(a, "--proc", "/proc");
	sandbox_args_add3(a, "--ro-bind", "/proc/sys", "/proc/sys");
	sandbox_args_add3(a, "--ro-bind-try", "/proc/sysrq-trigger",
	    "/proc/sysrq-trigger");
	sandbox_args_add2(a, "--dev", "/dev");

	/* A private /tmp, then the workspace: the one writable host folder. */
	sandbox_args_add2(a, "--size", tmp_size);
	sandbox_args_add2(a, "--perms", "1777");
	sandbox_args_add2(a, "--tmpfs", "/tmp");
	sandbox_args_add3(a, "--bind", cmd->workspace, cmd->workspace);
	/* bwrap's own root (a tmpfs holding the mount points) read-only. */
	sandbox_args_add2(a, "--remount-ro", "/");
	sandbox_args_add2(a, "--chdir", cmd->cwd);

	/* Exactly the caller's environment. */
	sandbox_bwrap_env(a, cmd->envp);

	/* The host pid of the sandbox's pid 1, for sandbox_kill_tree. */
	sandbox_args_add2(a, "--info-fd", SANDBOX_STR(SANDBOX_INFO_FD));
	sandbox_args_add(a, "--");
	for (const char *const *v = cmd->argv; *v != NULL; v++)
		sandbox_args_add(a, *v);

	run->exec_argv = a->v;
	run->exec_envp = sandbox_no_env;
	return util_fmt(run->path, sizeof(run->path), "%s", sandbox_bwrap);
}

/* SANDBOX_NONE: the command itself, found in its own PATH. */
static int
sandbox_direct_args(struct sandbox_run *run)
{
	const struct sandbox_cmd *cmd = run->cmd;
	const char *path = sandbox_env_get(cmd->envp, "PATH");
	struct sandbox_result *res = run->res;

	if (sandbox_which(cmd->argv[0], path ? path : SANDBOX_DEFAULT_PATH,
	    run->path, sizeof(run->path)) != 0) {
		util_fmt(res->message, sizeof(res->message),
		    "command not found in PATH: %.200s", cmd->argv[0]);
		return -1;
	}
	run->exec_argv = (char *const *)cmd->argv;
	run->exec_envp = (char *const *)cmd->envp;
	return 0;
}

/* The run's cgroup */

/* True when path holds a filesystem with magic number magic. */
static bool
sandbox_fs_is(const char *path, long magic)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

static bool
sandbox_exists(const char *dir, const char *name)
{
	char path[WHARF_PATH_MAX];

	return util_fmt(path, sizeof(path), "%s/%s", dir, name) == 0 &&
	    access(path, F_OK) == 0;
}

/* Writes value to dir/name: 0 or -errno. */
static int
sandbox_cg_set(const char *dir, const char *name, uint64_t value)
{
	char path[WHARF_PATH_MAX], text[32];

	if (util_fmt(path, sizeof(path), "%s/%s", dir, name) != 0)
		return -ENAMETOOLONG;
	snprintf(text, sizeof(text), "%llu", (unsigned long long)value);
	return sandbox_write_file(path, text);
}

/* Records dir as the run's folder number cg->n; -1 when full. */
static int
sandbox_cg_add(struct sandbox_cgroup *cg, const char *dir)
{
	int i = cg->n;

	if (i >= SANDBOX_CG_MAX ||
	    util_fmt(cg->dir[i], WHARF_PATH_MAX, "%s", dir) != 0 ||
	    util_fmt(cg->procs[i], WHARF_PATH_MAX, "%s/cgroup.procs", dir))
		return -1;
	cg->n++;
	return i;
}

/* Makes <v1 root>/<ctrl>/wharf/<id>: its index in cg, or -1. */
static int
sandbox_cg_v1_make(struct sandbox_cgroup *cg, const char *ctrl,
    const char *probe, const char *id)
{
	char base[WHARF_PATH_MAX], dir[WHARF_PATH_MAX];

	if (util_fmt(base, sizeof(base), "%s/%s", SANDBOX_CG_V1_ROOT, ctrl) ||
	    !sandbox_exists(base, probe) ||
	    util_fmt(base, sizeof(base), "%s/%s/%s", SANDBOX_CG_V1_ROOT, ctrl,
	    SANDBOX_CG_PARENT) ||
	    util_fmt(dir, sizeof(dir), "%s/%s", base, id))
		return -1;
	if ((mkdir(base, 0755) != 0 && errno != EEXIST) ||
	    mkdir(dir, 0755) != 0) {
		log_debug("sandbox.cgroup", "controller=%s err=%d", ctrl,
		    errno);
		return -1;
	}
	return sandbox_cg_add(cg, dir);
}

/* cgroup v1: a memory group and a pids group, each with its cap. */
static void
sandbox_cg_open_v1(struct sandbox_cgroup *cg,
    const struct sandbox_limits *l, const char *id)
{
	int i;

	cg->version = 1;
	i = sandbox_cg_v1_make(cg, "memory", "memory.limit_in_bytes", id);
	if (i >= 0 && l->memory_bytes > 0 && sandbox_cg_set(cg->dir[i],
	    "memory.limit_in_bytes", l->memory_bytes) == 0) {
		/* With swap accounting, swap may not stretch the cap. */
		if (!sandbox_exists(cg->dir[i], "memory.memsw.limit_in_bytes") ||
		    sandbox_cg_set(cg->dir[i], "memory.memsw.limit_in_bytes",
		    l->memory_bytes) == 0)
			cg->memory = i;
	}

	i = sandbox_cg_v1_make(cg, "pids", "cgroup.procs", id);
	if (i >= 0 && l->max_procs > 0)
		cg->pids_capped = sandbox_cg_set(cg->dir[i], "pids.max",
		    (uint64_t)l->max_procs) == 0;
}

/*
 * The folder a v2 run group goes in: the parent of our own group, as a
 * group that holds processes cannot hand controllers to children; the
 * root when we are in it.
 */
static int
sandbox_cg_v2_base(char *base, size_t len)
{
	char text[WHARF_PATH_MAX], *own, *end, *slash;

	if (sandbox_read_file("/proc/self/cgroup", text, sizeof(text)) <= 0)
		return -1;
	own = strstr(text, "0::");
	if (own == NULL || (own != text && own[-1] != '\n'))
		return -1;
	own += 3;
	if ((end = strchr(own, '\n')) != NULL)
		*end = '\0';
	if ((slash = strrchr(own, '/')) != NULL)
		*slash = '\0';
	return util_fmt(base, len, "%s%s", SANDBOX_CG_V2_ROOT, own);
}

/* cgroup v2: one group; capped where the parent enabled controllers. */
static void
sandbox_cg_open_v2(struct sandbox_cgroup *cg,
    const struct sandbox_limits *l, const char *id)
{
	char base[WHARF_PATH_MAX], dir[WHARF_PATH_MAX];
	int i;

	cg->version = 2;
	if (sandbox_cg_v2_base(base, sizeof(base)) != 0 ||
	    util_fmt(dir, sizeof(dir), "%s/wharf-%s", base, id) != 0)
		return;
	if (mkdir(dir, 0755) != 0) {
		log_debug("sandbox.cgroup", "version=2 err=%d", errno);
		return;
	}
	if ((i = sandbox_cg_add(cg, dir)) < 0)
		return;

	if (l->memory_bytes > 0 && sandbox_cg_set(dir, "memory.max",
	    l->memory_bytes) == 0) {
		if (!sandbox_exists(dir, "memory.swap.max") ||
		    sandbox_cg_set(dir, "memory.swap.max", 0) == 0)
			cg->memory = i;
	}
	if (l->max_procs > 0)
		cg->pids_capped = sandbox_cg_set(dir, "pids.max",
		    (uint64_t)l->max_procs) == 0;
}

/*
 * Makes the run's cgroup where we may: v1 when its memory controller
 * is mounted, else v2 when /sys/fs/cgroup is the unified hierarchy.
 * Best effort: cg->n is 0 when nothing could be made.
 */
static void
sandbox_cg_open(struct sandbox_cgroup *cg, const struct sandbox_limits *l)
{
	char id[WHARF_ID_LEN + 1];

	memset(cg, 0, sizeof(*cg));
	cg->memory = -1;
	util_uuid(id);
	if (sandbox_exists(SANDBOX_CG_V1_ROOT "/memory", "cgroup.procs"))
		sandbox_cg_open_v1(cg, l, id);
	else if (sandbox_fs_is(SANDBOX_CG_V2_ROOT, SANDBOX_CG2_MAGIC))
		sandbox_cg_open_v2(cg, l, id);
}

/* One pass of SIGKILL over the group's processes. */
static void
sandbox_cg_kill(const struct sandbox_cgroup *cg)
{
	char path[WHARF_PATH_MAX], text[8192], *p, *nl, *end;
	long pid;

	for (int i = 0; i < cg->n; i++) {
		/* v2 kills the whole group in one write. */
		if (cg->version == 2 && util_fmt(path, sizeof(path),
		    "%s/cgroup.kill", cg->dir[i]) == 0 &&
		    sandbox_write_file(path, "1") == 0)
			continue;
		if (sandbox_read_file(cg->procs[i], text, sizeof(text)) <= 0)
			continue;
		/* Whole lines only: the cut end of a long list is not a pid
		 * of ours.  The next pass sees the rest. */
		for (p = text; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
			pid = strtol(p, &end, 10);
			if (end == nl && pid > 0)
				kill((pid_t)pid, SIGKILL);
		}
	}
}

static bool
sandbox_cg_empty(const struct sandbox_cgroup *cg)
{
	char text[64];

	for (int i = 0; i < cg->n; i++)
		if (sandbox_read_file(cg->procs[i], text, sizeof(text)) > 0)
			return false;
	return true;
}

/* Kills what is left in the group and waits, a while, for it to go. */
static void
sandbox_cg_drain(const struct sandbox_cgroup *cg)
{
	int64_t until = util_mono_ns() + (int64_t)SANDBOX_GRACE_MS * 1000000;
	char quoted[WHARF_PATH_MAX];

	while (!sandbox_cg_empty(cg)) {
		if (sandbox_ms_left(until) == 0) {
			log_warnx("sandbox.cgroup", "left=nonempty dir=%s",
			    log_q(quoted, sizeof(quoted), cg->dir[0]));
			return;
		}
		sandbox_cg_kill(cg);
		sandbox_nap();
	}
}

/* True when the kernel killed a process of the group for memory. */
static bool
sandbox_cg_oom(const struct sandbox_cgroup *cg)
{
	char path[WHARF_PATH_MAX], text[2048], *p;
	const char *file;

	if (cg->memory < 0)
		return false;
	file = cg->version == 2 ? "memory.events" : "memory.oom_control";
	if (util_fmt(path, sizeof(path), "%s/%s", cg->dir[cg->memory], file)
	    || sandbox_read_file(path, text, sizeof(text)) <= 0)
		return false;
	p = strstr(text, "oom_kill ");
	return p != NULL && strtol(p + strlen("oom_kill "), NULL, 10) > 0;
}

/* Removes the group's folders; a dying process may hold them a moment. */
static void
sandbox_cg_close(struct sandbox_cgroup *cg)
{
	char quoted[WHARF_PATH_MAX];
	int tries, rc;

	for (int i = 0; i < cg->n; i++) {
		for (tries = 0; (rc = rmdir(cg->dir[i])) != 0 &&
		    errno == EBUSY && tries < SANDBOX_GRACE_MS / SANDBOX_NAP_MS;
		    tries++)
			sandbox_nap();
		if (rc != 0)
			log_warn("sandbox.cgroup_rmdir", "dir=%s",
			    log_q(quoted, sizeof(quoted), cg->dir[i]));
	}
	cg->n = 0;
}

/* The limits line for the build log */

/* How the process cap holds, for the limits line. */
static const char *
sandbox_nproc_how(const struct sandbox_cgroup *cg)
{
	if (cg->pids_capped)
		return cg->version == 2 ? "pids cgroup v2" : "pids cgroup v1";
	/* The kernel does not apply RLIMIT_NPROC to uid 0. */
	return geteuid() == 0 ? "rlimit, not enforced for root" :
	    "rlimit, per user";
}

static void
sandbox_applied(struct sandbox_run *run)
{
	const struct sandbox_limits *l = &run->cmd->limits;
	const struct sandbox_cgroup *cg = &run->cg;
	char cpu[32] = "unlimited", nproc[96] = "unlimited";
	char fsize[32] = "unlimited", memory[64] = "unlimited";

	if (l->cpu_sec > 0)
		snprintf(cpu, sizeof(cpu), "%ds", l->cpu_sec);
	if (l->max_procs > 0)
		snprintf(nproc, sizeof(nproc), "%d (%s)", l->max_procs,
		    sandbox_nproc_how(cg));
	if (l->max_file_bytes > 0)
		snprintf(fsize, sizeof(fsize), "%llu",
		    (unsigned long long)l->max_file_bytes);
	if (l->memory_bytes > 0 && cg->memory >= 0)
		snprintf(memory, sizeof(memory), "%llu (cgroup v%d)",
		    (unsigned long long)l->memory_bytes, cg->version);
	else if (l->memory_bytes > 0)
		snprintf(memory, sizeof(memory),
		    "uncapped (no writable memory cgroup)");

	/* Fits in practice; a cut line would still read right. */
	util_fmt(run->res->applied, sizeof(run->res->applied),
	    "sandbox=%s network=%s timeout=%ds cpu=%s nproc=%s fsize=%s "
	    "memory=%s", run->cmd->mode == SANDBOX_NONE ? "none" : "bwrap",
	    run->cmd->network || run->cmd->mode == SANDBOX_NONE ? "host" :
	    "none", l->timeout_sec, cpu, nproc, fsize, memory);
	run->res->memory_capped = cg->memory >= 0;
}

/* The child, between fork and exec: async-signal-safe calls only */

static void __attribute__((noreturn))
sandbox_child_fail(int err_fd, enum sandbox_step step)
{
	struct sandbox_child_err e = { (int)step, errno };

	if (write(err_fd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

/* Default dispositions, then nothing blocked: the server's own signal
 * setup (an ignored SIGPIPE, a blocked SIGTERM) must not leak in. */
static void
sandbox_child_signals(void)
{
	struct sigaction dfl;
	sigset_t none;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static int
sandbox_child_join(const struct sandbox_cgroup *cg)
{
	int fd;

	for (int i = 0; i < cg->n; i++) {
		fd = open(cg->procs[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		if (write(fd, "0", 1) != 1) {
			close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

static int
sandbox_child_rlimit(int resource, uint64_t soft, uint64_t hard)
{
	struct rlimit cur, want;

	if (getrlimit(resource, &cur) != 0)
		return -1;
	want.rlim_cur = soft;
	want.rlim_max = hard;
	/* Never ask for more than we have: that needs privilege. */
	if (cur.rlim_max != RLIM_INFINITY && want.rlim_max > cur.rlim_max)
		want.rlim_max = cur.rlim_max;
	if (want.rlim_cur > want.rlim_max)
		want.rlim_cur = want.rlim_max;
	return setrlimit(resource, &want);
}

static int
sandbox_child_rlimits(const struct sandbox_limits *l, bool pids_capped)
{
	uint64_t n;

	if (l->cpu_sec > 0 && sandbox_child_rlimit(RLIMIT_CPU,
	    (uint64_t)l->cpu_sec, (uint64_t)l->cpu_sec +
	    SANDBOX_CPU_GRACE_SEC) != 0)
		return -1;
	/* The pids cgroup counts this tree alone; RLIMIT_NPROC counts all
	 * of the user's processes, so it stands in only without one. */
	n = (uint64_t)l->max_procs;
	if (l->max_procs > 0 && !pids_capped &&
	    sandbox_child_rlimit(RLIMIT_NPROC, n, n) != 0)
		return -1;
	n = l->max_file_bytes;
	if (n > 0 && sandbox_child_rlimit(RLIMIT_FSIZE, n, n) != 0)
		return -1;
	return sandbox_child_rlimit(RLIMIT_CORE, 0, 0);
}

/*
 * stdin from /dev/null, stdout and stderr into the output pipe, bwrap's
 * info pipe as fd 3; every other descriptor closes at exec.  The kept
 * ones move above SANDBOX_FD_LOW first, so no dup2 lands on another.
 */
static int
sandbox_child_fds(struct sandbox_run *run)
{
	int null_fd, out, err, info = -1, first = SANDBOX_INFO_FD;

	if ((err = fcntl(run->err_w, F_DUPFD_CLOEXEC, SANDBOX_FD_LOW)) < 0)
		return -1;
	run->err_w = err;
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0)
		return -1;
	null_fd = fcntl(null_fd, F_DUPFD_CLOEXEC, SANDBOX_FD_LOW);
	out = fcntl(run->out_w, F_DUPFD_CLOEXEC, SANDBOX_FD_LOW);
	if (run->info_w >= 0)
		info = fcntl(run->info_w, F_DUPFD_CLOEXEC, SANDBOX_FD_LOW);
	if (null_fd < 0 || out < 0 || (run->info_w >= 0 && info < 0))
		return -1;

	if (dup2(null_fd, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		return -1;
	if (info >= 0) {
		if (dup2(info, SANDBOX_INFO_FD) < 0)
			return -1;
		first = SANDBOX_INFO_FD + 1;
	}
	if (close_range((unsigned)first, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
		for (int fd = first; fd < SANDBOX_FD_SCAN_MAX; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

/*
 * Where a build command starts: the limits and the separation from the
 * server are applied here, in this order, then bwrap takes over (or,
 * in SANDBOX_NONE mode, the command itself).  Never returns.
 */
static void __attribute__((noreturn))
sandbox_child(struct sandbox_run *run)
{
	const struct sandbox_cmd *cmd = run->cmd;

	sandbox_child_signals();
	/* A session of its own: one kill(-pid) reaches its group; and
	 * death with the server thread that waits for it. */
	if (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		sandbox_child_fail(run->err_w, SANDBOX_STEP_SESSION);
	if (getppid() != run->parent)
		_exit(127);
	umask(022);
	/* Into the run's cgroup before anything else can start. */
	if (sandbox_child_join(&run->cg) != 0)
		sandbox_child_fail(run->err_w, SANDBOX_STEP_CGROUP);
	if (sandbox_child_rlimits(&cmd->limits, run->cg.pids_capped) != 0)
		sandbox_child_fail(run->err_w, SANDBOX_STEP_RLIMIT);
	if (sandbox_child_fds(run) != 0)
		sandbox_child_fail(run->err_w, SANDBOX_STEP_FDS);
	if (cmd->mode == SANDBOX_NONE && chdir(cmd->cwd) != 0)
		sandbox_child_fail(run->err_w, SANDBOX_STEP_CHDIR);
	execve(run->path, run->exec_argv, run->exec_envp);
	sandbox_child_fail(run->err_w, SANDBOX_STEP_EXEC);
}

/* The parent: output, bwrap's info, limits */

static void
sandbox_lines_emit(struct sandbox_run *run)
{
	const struct sandbox_cmd *cmd = run->cmd;
	struct sandbox_lines *ln = &run->lines;
	size_t len = ln->len;

	ln->len = 0;
	/* Counted with its newline, as the command wrote it. */
	if (ln->passed + len + 1 > cmd->limits.output_max) {
		run->res->output_truncated = true;
		return;
	}
	ln->passed += len + 1;
	ln->buf[len] = '\0';
	if (cmd->on_line != NULL)
		cmd->on_line(cmd->ctx, ln->buf, len);
}

/* Cuts data into lines; a line longer than the buffer goes in pieces. */
static void
sandbox_lines_feed(struct sandbox_run *run, const char *data, size_t n)
{
	struct sandbox_lines *ln = &run->lines;
	const char *nl;
	size_t take;

	while (n > 0 && !run->res->output_truncated) {
		nl = memchr(data, '\n', n);
		take = nl != NULL ? (size_t)(nl - data) : n;
		if (take > SANDBOX_LINE_MAX - ln->len)
			take = SANDBOX_LINE_MAX - ln->len;
		memcpy(ln->buf + ln->len, data, take);
		ln->len += take;
		data += take;
		n -= take;

		if (n > 0 && *data == '\n') {
			data++;
			n--;
			sandbox_lines_emit(run);
		} else if (ln->len == SANDBOX_LINE_MAX) {
			sandbox_lines_emit(run);
		}
	}
}

/* Reads what the pipe holds; closes it at EOF.  Past the cap the bytes
 * are still read, so that the command never blocks on a full pipe. */
static void
sandbox_read_output(struct sandbox_run *run)
{
	char chunk[SANDBOX_READ_CHUNK];
	ssize_t n;

	n = read(run->out_r, chunk, sizeof(chunk));
	if (n > 0)
		sandbox_lines_feed(run, chunk, (size_t)n);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		sandbox_close(&run->out_r);
}

/*
 * Opens a pidfd on pid if it is bwrap's child, the sandbox's pid 1.
 * The /proc entry read is that of the pidfd's process as long as the
 * pidfd still finds it alive afterwards: the pid cannot have been
 * reused in between.
 */
static void
sandbox_open_ns(struct sandbox_run *run, long pid)
{
	char path[64], text[2048], *p;
	int fd;

	if (pid <= 0 || (fd = pidfd_open((pid_t)pid, 0)) < 0)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if (sandbox_read_file(path, text, sizeof(text)) > 0 &&
	    (p = strstr(text, "\nPPid:")) != NULL &&
	    strtol(p + strlen("\nPPid:"), NULL, 10) == run->pid &&
	    pidfd_send_signal(fd, 0, NULL, 0) == 0) {
		run->ns_pidfd = fd;
		return;
	}
	close(fd);
}

/* Reads bwrap's info JSON; once whole, finds the sandbox's pid 1. */
static void
sandbox_read_info(struct sandbox_run *run)
{
	char scratch[256], *p;
	size_t room = sizeof(run->info) - 1 - run->info_len;
	ssize_t n;

	if (room == 0)
		n = read(run->info_r, scratch, sizeof(scratch));
	else
		n = read(run->info_r, run->info + run->info_len, room);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		sandbox_close(&run->info_r);
	if (n <= 0 || room == 0)
		return;
	run->info_len += (size_t)n;
	run->info[run->info_len] = '\0';

	if (run->ns_pidfd >= 0 || strchr(run->info, '}') == NULL)
		return;
	if ((p = strstr(run->info, "\"child-pid\"")) == NULL ||
	    (p = strchr(p, ':')) == NULL)
		return;
	sandbox_open_ns(run, strtol(p + 1, NULL, 10));
}

/* Waits up to one poll interval (or the deadline) for something. */
static void
sandbox_poll(struct sandbox_run *run)
{
	struct pollfd p[3];
	nfds_t n = 0;
	int64_t timeout = SANDBOX_POLL_MS, left;

	if (run->out_r >= 0)
		p[n++] = (struct pollfd){ .fd = run->out_r, .events = POLLIN };
	if (run->info_r >= 0)
		p[n++] = (struct pollfd){ .fd = run->info_r, .events = POLLIN };
	if (run->pidfd >= 0)
		p[n++] = (struct pollfd){ .fd = run->pidfd, .events = POLLIN };
	if (!run->stopped &&
	    (left = sandbox_ms_left(run->deadline_ns)) < timeout)
		timeout = left;

	if (poll(p, n, (int)timeout) <= 0)
		return;
	for (nfds_t i = 0; i < n; i++) {
		if (p[i].revents == 0)
			continue;
		if (p[i].fd == run->out_r)
			sandbox_read_output(run);
		else if (p[i].fd == run->info_r)
			sandbox_read_info(run);
	}
}

/* True once the child has exited; it stays a zombie until reaped. */
static bool
sandbox_exited(const struct sandbox_run *run)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)run->pid, &si,
	    WEXITED | WNOHANG | WNOWAIT) != 0)
		return errno != EINTR;
	return si.si_pid != 0;
}

/*
 * SIGKILL to the whole tree: the session the child leads, the
 * sandbox's pid 1 (the kernel then ends its PID namespace), and
 * whatever is in the run's cgroup, escaped or not.
 */
static void
sandbox_kill_tree(struct sandbox_run *run)
{
	kill(-run->pid, SIGKILL);
	if (run->ns_pidfd >= 0)
		pidfd_send_signal(run->ns_pidfd, SIGKILL, NULL, 0);
	sandbox_cg_kill(&run->cg);
}

static void
sandbox_stop(struct sandbox_run *run, enum sandbox_status why)
{
	run->stopped = true;
	run->stop = why;
	sandbox_kill_tree(run);
}

/* Until the child exits: output in, limits and cancel checked. */
static void
sandbox_watch(struct sandbox_run *run)
{
	const struct sandbox_cmd *cmd = run->cmd;

	while (!sandbox_exited(run)) {
		sandbox_poll(run);
		if (run->stopped)
			continue;
		if (cmd->cancel != NULL && atomic_load(cmd->cancel))
			sandbox_stop(run, SANDBOX_CANCELLED);
		else if (util_mono_ns() >= run->deadline_ns)
			sandbox_stop(run, SANDBOX_TIMEOUT);
	}
}

/* The sandbox's pid 1 is reported gone only once its namespace is. */
static void
sandbox_wait_ns(struct sandbox_run *run)
{
	struct pollfd p = { .fd = run->ns_pidfd, .events = POLLIN };
	int64_t until = util_mono_ns() + (int64_t)SANDBOX_GRACE_MS * 1000000;
	int n;

	if (run->ns_pidfd < 0)
		return;
	do
		n = poll(&p, 1, (int)sandbox_ms_left(until));
	while (n < 0 && errno == EINTR);
	if (n == 0)
		log_warnx("sandbox.pidns", "left=alive after_ms=%d",
		    SANDBOX_GRACE_MS);
}

static void
sandbox_reap(struct sandbox_run *run)
{
	pid_t r;

	do
		r = waitpid(run->pid, &run->wstatus, 0);
	while (r < 0 && errno == EINTR);
	run->reaped = r == run->pid;
	run->pid = -1;
	run->res->duration_ms = (util_mono_ns() - run->start_ns) / 1000000;
}

/* The last bytes in the pipe, for a short while: a process that escaped
 * everything (SANDBOX_NONE without a cgroup) may hold it open. */
static void
sandbox_drain(struct sandbox_run *run)
{
	int64_t until = util_mono_ns() + (int64_t)SANDBOX_DRAIN_MS * 1000000;
	struct pollfd p;

	while (run->out_r >= 0 && sandbox_ms_left(until) > 0) {
		p = (struct pollfd){ .fd = run->out_r, .events = POLLIN };
		if (poll(&p, 1, (int)sandbox_ms_left(until)) > 0)
			sandbox_read_output(run);
	}
	if (run->lines.len > 0 && !run->res->output_truncated)
		sandbox_lines_emit(run);
}

static void
sandbox_outcome(struct sandbox_run *run)
{
	struct sandbox_result *res = run->res;
	size_t len = sizeof(res->message);
	int st = run->wstatus;
	const char *name;

	res->memory_exceeded = sandbox_cg_oom(&run->cg);
	if (!run->reaped) {
		res->status = SANDBOX_EXITED;
		res->exit_code = -1;
	} else if (WIFSIGNALED(st)) {
		res->status = SANDBOX_SIGNALED;
		res->signal = WTERMSIG(st);
	} else {
		res->status = SANDBOX_EXITED;
		res->exit_code = WEXITSTATUS(st);
	}
	if (run->stopped)
		res->status = run->stop;

	if (res->status == SANDBOX_TIMEOUT)
		snprintf(res->message, len, "killed at the time limit (%d s)",
		    run->cmd->limits.timeout_sec);
	else if (res->status == SANDBOX_CANCELLED)
		snprintf(res->message, len, "cancelled");
	else if (res->memory_exceeded)
		snprintf(res->message, len, "out of memory: killed at the "
		    "cap of %llu bytes",
		    (unsigned long long)run->cmd->limits.memory_bytes);
	else if (res->status == SANDBOX_SIGNALED)
		snprintf(res->message, len, "killed by signal %d (SIG%s)",
		    res->signal, (name = sigabbrev_np(res->signal)) ? name :
		    "?");
	else if (!run->reaped)
		snprintf(res->message, len, "exit status lost: is SIGCHLD "
		    "ignored?");
	/* Shells and bwrap report death by signal n as 128 + n. */
	else if (res->exit_code > 128 &&
	    (name = sigabbrev_np(res->exit_code - 128)) != NULL)
		snprintf(res->message, len, "exited with code %d (128 + "
		    "SIG%s)", res->exit_code, name);
	else
		snprintf(res->message, len, "exited with code %d",
		    res->exit_code);
}

/*
 * bwrap (or the command) has exited.  Nothing it started may outlive
 * it: the tree is killed and waited for, then bwrap reaped, the pipe
 * drained and the outcome written.
 */
static void
sandbox_finish(struct sandbox_run *run)
{
	sandbox_kill_tree(run);
	sandbox_wait_ns(run);
	sandbox_cg_drain(&run->cg);
	sandbox_reap(run);
	sandbox_drain(run);
	sandbox_outcome(run);
}

/* Starting */

static int
sandbox_pipes(struct sandbox_run *run)
{
	int out[2], err[2], info[2];

	if (pipe2(out, O_CLOEXEC) != 0)
		return -1;
	run->out_r = out[0];
	run->out_w = out[1];
	if (pipe2(err, O_CLOEXEC) != 0)
		return -1;
	run->err_r = err[0];
	run->err_w = err[1];
	if (run->cmd->mode == SANDBOX_BWRAP) {
		if (pipe2(info, O_CLOEXEC | O_NONBLOCK) != 0)
			return -1;
		run->info_r = info[0];
		run->info_w = info[1];
	}
	return fcntl(run->out_r, F_SETFL, O_NONBLOCK);
}

/*
 * Forks the child with every signal blocked (it resets them before
 * unblocking), then waits for its exec: EOF on the error pipe.
 */
static int
sandbox_start(struct sandbox_run *run)
{
	struct sandbox_result *res = run->res;
	struct sandbox_child_err e;
	sigset_t all, old;
	char buf[128];
	ssize_t n;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	run->start_ns = util_mono_ns();
	run->parent = getpid();
	run->pid = fork();
	if (run->pid == 0)
		sandbox_child(run);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (run->pid < 0) {
		snprintf(res->message, sizeof(res->message), "fork: %s",
		    strerror_r(errno, buf, sizeof(buf)));
		return -1;
	}

	/* Our copies of the child's ends go, so that EOF means EOF. */
	sandbox_close(&run->out_w);
	sandbox_close(&run->info_w);
	sandbox_close(&run->err_w);
	do
		n = read(run->err_r, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	sandbox_close(&run->err_r);

	if (n == (ssize_t)sizeof(e)) {
		sandbox_reap(run);
		if (e.step < 0 || e.step > SANDBOX_STEP_EXEC)
			e.step = SANDBOX_STEP_EXEC;
		snprintf(res->message, sizeof(res->message), "%s: %.200s: %s",
		    sandbox_step_names[e.step], run->path,
		    strerror_r(e.err, buf, sizeof(buf)));
		return -1;
	}
	run->pidfd = pidfd_open(run->pid, 0);
	run->deadline_ns = run->start_ns +
	    (int64_t)run->cmd->limits.timeout_sec * 1000000000;
	return 0;
}

/* What the child execs, the cgroup, the limits line, the pipes. */
static int
sandbox_prepare(struct sandbox_run *run)
{
	struct sandbox_result *res = run->res;
	char buf[128];
	int rc;

	if (run->cmd->mode == SANDBOX_NONE)
		rc = sandbox_direct_args(run);
	else
		rc = sandbox_bwrap_args(run);
	if (rc != 0 || run->args.nomem) {
		if (res->message[0] == '\0')
			snprintf(res->message, sizeof(res->message),
			    "could not build the command line");
		return -1;
	}

	sandbox_cg_open(&run->cg, &run->cmd->limits);
	sandbox_applied(run);
	if (sandbox_pipes(run) != 0) {
		snprintf(res->message, sizeof(res->message), "pipe: %s",
		    strerror_r(errno, buf, sizeof(buf)));
		return -1;
	}
	return 0;
}

/* Checks what the caller passed; -1 with res->message set. */
static int
sandbox_check_cmd(const struct sandbox_cmd *cmd, struct sandbox_result *res)
{
	size_t ws_len = cmd->workspace ? strlen(cmd->workspace) : 0;
	const char *why = NULL;

	if (cmd->argv == NULL || cmd->argv[0] == NULL || cmd->envp == NULL)
		why = "no command or no environment";
	else if (ws_len < 2 || cmd->workspace[0] != '/')
		why = "the workspace must be an absolute folder other than /";
	else if (cmd->cwd == NULL || strncmp(cmd->cwd, cmd->workspace,
	    ws_len) != 0 || (cmd->cwd[ws_len] != '\0' &&
	    cmd->cwd[ws_len] != '/'))
		why = "the working folder must be inside the workspace";
	else if (cmd->limits.timeout_sec <= 0)
		why = "the time limit must be positive";
	for (const char *const *e = cmd->envp; why == NULL && *e; e++)
		if ((*e)[0] == '=' || strchr(*e, '=') == NULL)
			why = "an environment entry is not NAME=value";
	if (why == NULL && cmd->mode == SANDBOX_BWRAP && !sandbox_available())
		why = "bubblewrap (bwrap) is missing or does not work here: "
		    "install it (apt-get install bubblewrap), or set "
		    "WHARF_SANDBOX=none to build without any isolation";
	if (why != NULL)
		snprintf(res->message, sizeof(res->message), "%s", why);
	return why != NULL ? -1 : 0;
}

static struct sandbox_run *
sandbox_run_new(const struct sandbox_cmd *cmd, struct sandbox_result *res)
{
	struct sandbox_run *run = calloc(1, sizeof(*run));

	if (run == NULL)
		return NULL;
	run->cmd = cmd;
	run->res = res;
	run->pid = -1;
	run->out_r = run->out_w = run->info_r = run->info_w = -1;
	run->err_r = run->err_w = run->pidfd = run->ns_pidfd = -1;
	run->cg.memory = -1;
	return run;
}

static void
sandbox_run_free(struct sandbox_run *run)
{
	if (run == NULL)
		return;
	sandbox_close(&run->out_r);
	sandbox_close(&run->out_w);
	sandbox_close(&run->info_r);
	sandbox_close(&run->info_w);
	sandbox_close(&run->err_r);
	sandbox_close(&run->err_w);
	sandbox_close(&run->pidfd);
	sandbox_close(&run->ns_pidfd);
	sandbox_cg_close(&run->cg);
	sandbox_args_free(&run->args);
	free(run);
}

int
sandbox_run(const struct sandbox_cmd *cmd, struct sandbox_result *res)
{
	struct sandbox_run *run = NULL;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	res->status = SANDBOX_FAILED;
	if (sandbox_check_cmd(cmd, res) != 0)
		goto out;
	if ((run = sandbox_run_new(cmd, res)) == NULL) {
		snprintf(res->message, sizeof(res->message), "out of memory");
		goto out;
	}
	if (sandbox_prepare(run) != 0 || sandbox_start(run) != 0)
		goto out;

	sandbox_watch(run);
	sandbox_finish(run);
	rc = 0;
out:
	if (rc != 0)
		res->status = SANDBOX_FAILED;
	sandbox_run_free(run);
	return rc;
}
