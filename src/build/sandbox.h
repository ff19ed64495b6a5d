/*
 * sandbox: runs one build command (npm ci, npm run build, ...) in a
 * bubblewrap sandbox:
 *
 *   - its own mount, PID, IPC, UTS and cgroup namespaces, and its own
 *     network namespace holding only "lo" unless the command needs the
 *     network (dependency install); a user namespace only where bwrap
 *     needs one (the server not running as root);
 *   - a read-only view of the system (/usr, the /bin and /lib links, a
 *     short list of files from /etc), the workspace the only writable
 *     place, a private /tmp, a minimal /dev and the sandbox's own /proc
 *     with /proc/sys read-only;
 *   - no view of the data dir, other builds, /root, /home, /var, or the
 *     server's environment: the environment is exactly what the caller
 *     passes;
 *   - every capability dropped, rlimits on CPU time, processes, file
 *     size and core dumps; memory and process count capped by a cgroup
 *     made for the run where the machine lets us write one (cgroup v1
 *     memory and pids controllers, or a delegated cgroup v2 subtree),
 *     else not, and the result says so;
 *   - a wall-clock limit, after which (or on cancel) the whole process
 *     tree is killed: the session, bwrap, the PID namespace and
 *     whatever is left in the run's cgroup;
 *   - stdout and stderr captured together and handed to a callback
 *     line by line, with a cap on the total.
 *
 * docs/sandbox.md explains the mechanism and how to read the limits
 * line a build log shows.
 *
 * Where bubblewrap is missing, sandbox_run refuses unless the caller
 * allowed running unsandboxed (WHARF_SANDBOX=none).
 *
 * Threads: sandbox_run may run in several threads at once, one command
 * each.  The process must not ignore SIGCHLD nor reap children it did
 * not start (waitpid(-1)): the exit status is collected by pid.
 */
#ifndef WHARF_SANDBOX_H
#define WHARF_SANDBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults for struct sandbox_limits, see sandbox_limits_default(). */
#define SANDBOX_DEFAULT_TIMEOUT_SEC     900
#define SANDBOX_DEFAULT_CPU_SEC         1800
#define SANDBOX_DEFAULT_MAX_PROCS       512
#define SANDBOX_DEFAULT_FILE_BYTES      (UINT64_C(1) << 30)     /* 1 GiB */
#define SANDBOX_DEFAULT_MEMORY_BYTES    (UINT64_C(2) << 30)     /* 2 GiB */
#define SANDBOX_DEFAULT_OUTPUT_MAX      ((size_t)1 << 20)       /* 1 MiB */

/* A line longer than this reaches on_line in pieces of this size. */
#define SANDBOX_LINE_MAX                8192

enum sandbox_mode {
	SANDBOX_BWRAP = 0,      /* default */
	SANDBOX_NONE,           /* explicit opt-out: no isolation at all */
};

/* A zero field means "no limit", except timeout_sec and output_max. */
struct sandbox_limits {
	int      timeout_sec;           /* wall clock; required, > 0 */
	int      cpu_sec;               /* RLIMIT_CPU, per process */
	int      max_procs;             /* pids cgroup, and RLIMIT_NPROC */
	uint64_t max_file_bytes;        /* RLIMIT_FSIZE */
	uint64_t memory_bytes;          /* cgroup memory cap */
	size_t   output_max;            /* bytes of output passed on */
};

struct sandbox_cmd {
	const char  *workspace;         /* absolute; the writable root */
	const char  *cwd;               /* absolute, inside workspace */
	const char *const *argv;        /* argv[0] looked up in envp's PATH */
	/* The whole environment, "K=V"; bwrap adds PWD (the cwd). */
	const char *const *envp;
	bool         network;           /* share the host network */
	enum sandbox_mode mode;
	struct sandbox_limits limits;
	/*
	 * Output, one line at a time, without the newline; line[len] is a
	 * NUL, and line may hold other NULs.  Valid during the call only.
	 * Called from the thread running sandbox_run.
	 */
	void       (*on_line)(void *ctx, const char *line, size_t len);
	void        *ctx;
	/* Polled a few times a second: true stops the command. May be NULL. */
	atomic_bool *cancel;
};

enum sandbox_status {
	SANDBOX_EXITED = 0,             /* see exit_code */
	SANDBOX_SIGNALED,               /* see signal */
	SANDBOX_TIMEOUT,
	SANDBOX_CANCELLED,
	SANDBOX_FAILED,                 /* could not start: see message */
};

/*
 * Under bwrap, a command killed by a signal n shows as SANDBOX_EXITED
 * with exit_code 128 + n (bwrap reports it so); SANDBOX_SIGNALED means
 * bwrap itself, or the command in SANDBOX_NONE mode, died of a signal.
 */
struct sandbox_result {
	enum sandbox_status status;
	int      exit_code;
	int      signal;
	int64_t  duration_ms;
	bool     output_truncated;
	bool     memory_capped;         /* the cgroup memory cap applied */
	bool     memory_exceeded;       /* the kernel killed for memory */
	char     applied[256];          /* limits applied, for the log */
	char     message[512];          /* why it failed, else the outcome */
};

/* Fills limits with the SANDBOX_DEFAULT_* values. */
void sandbox_limits_default(struct sandbox_limits *limits);

/*
 * True when bwrap is installed (/usr/bin/bwrap, else the server's PATH)
 * and a trial sandbox starts on this machine.  Probed once, then
 * cached; safe from any thread.
 */
bool sandbox_available(void);

/*
 * Runs cmd to its end (or its limit) and fills res.  Returns 0 when the
 * command ran (whatever its exit status; res->message then sums up the
 * outcome in words, e.g. "exited with code 1"), -1 when it could not
 * start (res->status SANDBOX_FAILED, res->message says why; in
 * SANDBOX_BWRAP mode without bwrap the message names
 * WHARF_SANDBOX=none).
 *
 * Nothing the command started is still running when it returns, with
 * one exception: in SANDBOX_NONE mode on a machine without a writable
 * cgroup, a process that left the command's session survives.  In
 * SANDBOX_NONE mode res->applied starts with "sandbox=none": the caller
 * logs that warning.  Blocks for the whole run; on_line is called from
 * this thread.
 */
int sandbox_run(const struct sandbox_cmd *cmd, struct sandbox_result *res);

#endif
