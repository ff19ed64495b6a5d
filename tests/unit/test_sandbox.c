/*
 * test_sandbox: build commands under bubblewrap, for real.  Each test
 * gets a folder /tmp/wharf-sbx-XXXXXX holding the workspace (ws/, with
 * ws/home as HOME) and, beside it, a folder the command must not see.
 * The bwrap tests skip, saying so, only where bwrap cannot run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/sandbox.h"
#include "core/core.h"

#define TEST_OUT_MAX            (1 << 20)       /* bytes kept per run */
#define TEST_LINES_MAX          1024

struct test_env {
	char dir[64];                   /* mkdtemp folder */
	char ws[96];                    /* dir/ws: the workspace */
	char home[128];                 /* dir/ws/home */
	char secret_dir[96];            /* dir/secret, beside ws */
	char secret[128];               /* dir/secret/secret.txt */
	char env_home[160];             /* "HOME=..." */
	const char *envp[4];
};

/* What on_line received. */
struct test_out {
	char   text[TEST_OUT_MAX];      /* lines joined by '\n' */
	size_t len;
	size_t line_len[TEST_LINES_MAX];
	int    lines;
	atomic_bool *cancel_on_first;   /* set at the first line */
};

static struct test_out test_out;

/* Helpers */

static void
test_on_line(void *ctx, const char *line, size_t len)
{
	struct test_out *out = ctx;

	assert_int_equal(line[len], '\0');
	if (out->lines < TEST_LINES_MAX)
		out->line_len[out->lines] = len;
	out->lines++;
	if (out->len + len + 1 < sizeof(out->text)) {
		memcpy(out->text + out->len, line, len);
		out->len += len;
		out->text[out->len++] = '\n';
		out->text[out->len] = '\0';
	}
	if (out->cancel_on_first != NULL)
		atomic_store(out->cancel_on_first, true);
}

static void
test_cmd_init(struct sandbox_cmd *cmd, struct test_env *env,
    const char *const *argv)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->workspace = env->ws;
	cmd->cwd = env->ws;
	cmd->argv = argv;
	cmd->envp = env->envp;
	cmd->mode = SANDBOX_BWRAP;
	sandbox_limits_default(&cmd->limits);
	cmd->limits.timeout_sec = 60;
	cmd->on_line = test_on_line;
	cmd->ctx = &test_out;
	memset(&test_out, 0, sizeof(test_out));
}

/* Runs sh -c script in the sandbox with the default command setup. */
static int
test_sh(struct test_env *env, const char *script, bool network,
    struct sandbox_result *res)
{
	const char *argv[] = { "sh", "-c", script, NULL };
	struct sandbox_cmd cmd;

	test_cmd_init(&cmd, env, argv);
	cmd.network = network;
	return sandbox_run(&cmd, res);
}

static void
test_assert_exit(const struct sandbox_result *res, int code)
{
	if (res->status != SANDBOX_EXITED || res->exit_code != code)
		print_message("status=%d code=%d msg=%s output:\n%s\n",
		    res->status, res->exit_code, res->message, test_out.text);
	assert_int_equal(res->status, SANDBOX_EXITED);
	assert_int_equal(res->exit_code, code);
}

static void
test_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* True when a process on the host has this exact command line. */
static bool
test_host_has(const char *const *args)
{
	char path[300], buf[512], want[512];
	size_t want_len = 0;
	struct dirent *de;
	bool found = false;
	DIR *d;

	for (const char *const *a = args; *a != NULL; a++) {
		size_t n = strlen(*a) + 1;
		memcpy(want + want_len, *a, n);
		want_len += n;
	}
	d = opendir("/proc");
	assert_non_null(d);
	while (!found && (de = readdir(d)) != NULL) {
		int fd;
		ssize_t n;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		if ((fd = open(path, O_RDONLY)) < 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		close(fd);
		found = n == (ssize_t)want_len && memcmp(buf, want, n) == 0;
	}
	closedir(d);
	return found;
}

/* A socket listening on 127.0.0.1; its port in *port. */
static int
test_listen(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* The kernel completes a connection into the backlog: no accept. */
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Setup and teardown */

static int
test_setup(void **state)
{
	struct test_env *env = calloc(1, sizeof(*env));

	if (env == NULL)
		return -1;
	snprintf(env->dir, sizeof(env->dir), "/tmp/wharf-sbx-XXXXXX");
	if (mkdtemp(env->dir) == NULL)
		return -1;
	snprintf(env->ws, sizeof(env->ws), "%s/ws", env->dir);
	snprintf(env->home, sizeof(env->home), "%s/home", env->ws);
	snprintf(env->secret_dir, sizeof(env->secret_dir), "%s/secret",
	    env->dir);
	snprintf(env->secret, sizeof(env->secret), "%s/secret.txt",
	    env->secret_dir);
	if (mkdir(env->ws, 0700) != 0 || mkdir(env->home, 0700) != 0 ||
	    mkdir(env->secret_dir, 0700) != 0)
		return -1;
	test_write(env->secret, "top secret\n");

	snprintf(env->env_home, sizeof(env->env_home), "HOME=%s", env->home);
	env->envp[0] = "PATH=/usr/bin:/bin";
	env->envp[1] = env->env_home;
	env->envp[2] = "LANG=C.UTF-8";
	env->envp[3] = NULL;
	*state = env;
	return 0;
}

static int
test_rm(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(path);
}

static int
test_teardown(void **state)
{
	struct test_env *env = *state;

	nftw(env->dir, test_rm, 16, FTW_DEPTH | FTW_PHYS);
	free(env);
	return 0;
}

static void
test_need_bwrap(void)
{
	if (!sandbox_available()) {
		print_message("SKIP: bwrap is missing or cannot run here\n");
		skip();
	}
}

/* Tests */

static void
test_exit_code(void **state)
{
	struct sandbox_result res;

	test_need_bwrap();
	assert_int_equal(test_sh(*state, "exit 3", false, &res), 0);
	test_assert_exit(&res, 3);
	assert_non_null(strstr(res.applied, "sandbox=bwrap network=none"));
	assert_int_equal(test_sh(*state, "true", false, &res), 0);
	test_assert_exit(&res, 0);
	print_message("applied: %s\n", res.applied);
}

static void
test_output_lines(void **state)
{
	struct sandbox_result res;

	test_need_bwrap();
	assert_int_equal(test_sh(*state, "echo one; echo two >&2; "
	    "echo three; printf 'no newline'", false, &res), 0);
	test_assert_exit(&res, 0);
	assert_string_equal(test_out.text, "one\ntwo\nthree\nno newline\n");
	assert_false(res.output_truncated);
}

static void
test_output_cap(void **state)
{
	const char *argv[] = { "sh", "-c", "seq 1 100000", NULL };
	struct sandbox_result res;
	struct sandbox_cmd cmd;

	test_need_bwrap();
	test_cmd_init(&cmd, *state, argv);
	cmd.limits.output_max = 20;     /* "1\n" .. "9\n", "10\n" ... */
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	/* Past the cap the output is drained, never blocking the command. */
	test_assert_exit(&res, 0);
	assert_true(res.output_truncated);
	assert_string_equal(test_out.text, "1\n2\n3\n4\n5\n6\n7\n8\n9\n");
}

static void
test_long_line(void **state)
{
	struct sandbox_result res;

	test_need_bwrap();
	assert_int_equal(test_sh(*state, "head -c 20000 /dev/zero | "
	    "tr '\\0' y; echo; echo end", false, &res), 0);
	test_assert_exit(&res, 0);
	assert_int_equal(test_out.lines, 4);
	assert_int_equal(test_out.line_len[0], SANDBOX_LINE_MAX);
	assert_int_equal(test_out.line_len[1], SANDBOX_LINE_MAX);
	assert_int_equal(test_out.line_len[2], 20000 - 2 * SANDBOX_LINE_MAX);
	assert_int_equal(test_out.line_len[3], 3);
}

static void
test_env_exact(void **state)
{
	struct test_env *env = *state;
	char want[512];
	struct sandbox_result res;

	test_need_bwrap();
	setenv("JWT_SECRET", "fake-secret-for-the-sandbox-test-0123456789", 1);
	assert_int_equal(test_sh(env, "env | sort", false, &res), 0);
	unsetenv("JWT_SECRET");
	test_assert_exit(&res, 0);
	/* bwrap adds PWD, the working folder; nothing else. */
	snprintf(want, sizeof(want), "%s\nLANG=C.UTF-8\n"
	    "PATH=/usr/bin:/bin\nPWD=%s\n", env->env_home, env->ws);
	assert_string_equal(test_out.text, want);
}

static void
test_cannot_read_outside(void **state)
{
	struct test_env *env = *state;
	char script[512];
	struct sandbox_result res;

	test_need_bwrap();
	snprintf(script, sizeof(script), "cat %s 2>&1 && echo LEAK; "
	    "cat /etc/shadow 2>&1 && echo LEAK; "
	    "for d in /root /home /var /srv /work /data /run %s; do "
	    "ls -A $d 2>/dev/null | grep -q . && echo LEAK $d; done; "
	    "echo listing; ls -A %s", env->secret, env->secret_dir,
	    env->dir);
	assert_int_equal(test_sh(env, script, false, &res), 0);
	test_assert_exit(&res, 0);
	assert_null(strstr(test_out.text, "LEAK"));
	assert_null(strstr(test_out.text, "top secret"));
	/* Above the workspace: an empty mount point, not the host folder. */
	assert_non_null(strstr(test_out.text, "\nlisting\nws\n"));
}

static void
test_cannot_write_outside(void **state)
{
	struct test_env *env = *state;
	char script[512], host_tmp[64], inside[160];
	struct sandbox_result res;

	test_need_bwrap();
	snprintf(host_tmp, sizeof(host_tmp), "/tmp/wharf-sbx-mark-%d",
	    (int)getpid());
	snprintf(script, sizeof(script), "for f in /usr/x /etc/x /x "
	    "/proc/sys/kernel/domainname %s/secret/x; do "
	    "echo x > $f 2>/dev/null && echo WROTE $f; done; "
	    "echo private > %s && echo ok-tmp; echo mine > %s/out.txt && "
	    "echo ok-ws", env->dir, host_tmp, env->ws);
	assert_int_equal(test_sh(env, script, false, &res), 0);
	test_assert_exit(&res, 0);
	assert_null(strstr(test_out.text, "WROTE"));
	assert_non_null(strstr(test_out.text, "ok-tmp\nok-ws\n"));
	/* The sandbox's /tmp is its own; the workspace is the host's. */
	assert_int_equal(access(host_tmp, F_OK), -1);
	snprintf(inside, sizeof(inside), "%s/out.txt", env->ws);
	assert_int_equal(access(inside, F_OK), 0);
}

static void
test_network(void **state)
{
	char script[256];
	struct sandbox_result res;
	int fd, port;

	test_need_bwrap();
	fd = test_listen(&port);
	snprintf(script, sizeof(script), "exec 3<>/dev/tcp/127.0.0.1/%d "
	    "&& echo connected", port);
	const char *argv[] = { "bash", "-c", script, NULL };
	struct sandbox_cmd cmd;

	/* Without network: its own loopback, where nothing listens. */
	test_cmd_init(&cmd, *state, argv);
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	assert_true(res.status == SANDBOX_EXITED && res.exit_code != 0);
	assert_null(strstr(test_out.text, "connected"));

	test_cmd_init(&cmd, *state, argv);
	cmd.network = true;
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	test_assert_exit(&res, 0);
	assert_string_equal(test_out.text, "connected\n");
	assert_non_null(strstr(res.applied, "network=host"));
	close(fd);
}

static void
test_pid_namespace(void **state)
{
	struct sandbox_result res;
	int pid = 0, procs = 0;

	test_need_bwrap();
	assert_int_equal(test_sh(*state, "echo $$; ls /proc | grep -c "
	    "'^[0-9]'", false, &res), 0);
	test_assert_exit(&res, 0);
	assert_int_equal(sscanf(test_out.text, "%d\n%d", &pid, &procs), 2);
	assert_true(pid > 0 && pid < 10);
	assert_true(procs > 0 && procs < 10);
}

static void
test_timeout(void **state)
{
	const char *argv[] = { "sleep", "1000", NULL };
	struct sandbox_result res;
	struct sandbox_cmd cmd;

	test_need_bwrap();
	test_cmd_init(&cmd, *state, argv);
	cmd.limits.timeout_sec = 1;
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	assert_int_equal(res.status, SANDBOX_TIMEOUT);
	print_message("timeout after %lld ms\n", (long long)res.duration_ms);
}

/*
 * A process that left the session must be dead once sandbox_run
 * returns.  Pids inside differ from the host's: the daemon carries a
 * unique marker in its argv, looked for in the host's /proc.
 */
static void
test_no_survivor_mode(struct test_env *env, enum sandbox_mode mode)
{
	char marker[32], marker2[40], script[256], pidfile[160];
	const char *args[] = { "sleep", marker, NULL };
	const char *args2[] = { "sleep", marker2, NULL };
	const char *argv[] = { "sh", "-c", script, NULL };
	struct sandbox_result res;
	struct sandbox_cmd cmd;

	snprintf(marker, sizeof(marker), "1001.%d%d", (int)getpid(), mode);
	snprintf(marker2, sizeof(marker2), "%s1", marker);
	snprintf(script, sizeof(script), "(setsid sleep %s & echo $! > "
	    "daemon.pid) ; sleep %s & sleep 0.3; echo started",
	    marker, marker2);
	test_cmd_init(&cmd, env, argv);
	cmd.mode = mode;
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	test_assert_exit(&res, 0);
	assert_string_equal(test_out.text, "started\n");
	snprintf(pidfile, sizeof(pidfile), "%s/daemon.pid", env->ws);
	assert_int_equal(access(pidfile, F_OK), 0);
	assert_false(test_host_has(args));
	assert_false(test_host_has(args2));
}

static void
test_no_survivor(void **state)
{
	test_need_bwrap();
	test_no_survivor_mode(*state, SANDBOX_BWRAP);
}

static void
test_cancel(void **state)
{
	atomic_bool cancel = false;
	struct sandbox_result res;
	struct sandbox_cmd cmd;
	const char *argv[] = { "sh", "-c", "echo go; sleep 1000", NULL };

	test_need_bwrap();
	test_cmd_init(&cmd, *state, argv);
	cmd.cancel = &cancel;
	test_out.cancel_on_first = &cancel;
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	assert_int_equal(res.status, SANDBOX_CANCELLED);
	assert_string_equal(test_out.text, "go\n");
}

static void
test_memory_cap(void **state)
{
	const char *argv[] = { "python3", "-c",
	    "b = b'x' * (300 << 20); print(len(b))", NULL };
	struct sandbox_result res;
	struct sandbox_cmd cmd;

	test_need_bwrap();
	test_cmd_init(&cmd, *state, argv);
	cmd.limits.memory_bytes = 100 << 20;
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	print_message("applied: %s\nresult: %s\n", res.applied, res.message);
	if (!res.memory_capped) {
		assert_non_null(strstr(res.applied, "memory=uncapped"));
		print_message("SKIP: no writable memory cgroup here\n");
		skip();
	}
	assert_true(res.memory_exceeded);
	assert_true(res.status == SANDBOX_SIGNALED ||
	    (res.status == SANDBOX_EXITED && res.exit_code != 0));
	assert_null(strstr(test_out.text, "314572800"));
}

static void
test_process_cap(void **state)
{
	const char *argv[] = { "python3", "-c",
	    "import os, time\n"
	    "n = 0\n"
	    "for i in range(50):\n"
	    "    try:\n"
	    "        pid = os.fork()\n"
	    "    except OSError:\n"
	    "        break\n"
	    "    if pid == 0:\n"
	    "        time.sleep(60)\n"
	    "        os._exit(0)\n"
	    "    n += 1\n"
	    "print(n)\n", NULL };
	struct sandbox_result res;
	struct sandbox_cmd cmd;

	test_need_bwrap();
	test_cmd_init(&cmd, *state, argv);
	cmd.limits.max_procs = 20;
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	if (strstr(res.applied, "pids cgroup") == NULL) {
		print_message("SKIP: no pids cgroup here (%s)\n", res.applied);
		skip();
	}
	test_assert_exit(&res, 0);
	assert_true(atoi(test_out.text) < 20);
}

static void
test_cpu_and_file_limits(void **state)
{
	const char *spin[] = { "sh", "-c", "while :; do :; done", NULL };
	struct sandbox_result res;
	struct sandbox_cmd cmd;

	test_need_bwrap();
	test_cmd_init(&cmd, *state, spin);
	cmd.limits.cpu_sec = 1;
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	/* bwrap reports a command killed by signal n as 128 + n. */
	test_assert_exit(&res, 128 + SIGXCPU);

	const char *big[] = { "sh", "-c", "head -c 2000000 /dev/zero > big;"
	    " echo $?; wc -c < big", NULL };
	test_cmd_init(&cmd, *state, big);
	cmd.limits.max_file_bytes = 1 << 20;
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	test_assert_exit(&res, 0);
	/* head died of SIGXFSZ (sh says so) after the first MiB. */
	assert_non_null(strstr(test_out.text, "\n153\n1048576\n"));
}

static void
test_node(void **state)
{
	struct test_env *env = *state;
	const char *argv[] = { "node", "-e", "console.log(1+1)", NULL };
	struct sandbox_result res;
	struct sandbox_cmd cmd;

	test_need_bwrap();
	if (access("/usr/bin/node", X_OK) != 0) {
		print_message("SKIP: node is not installed\n");
		skip();
	}
	test_cmd_init(&cmd, env, argv);
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	test_assert_exit(&res, 0);
	assert_string_equal(test_out.text, "2\n");
}

static void
test_none_mode(void **state)
{
	struct test_env *env = *state;
	const char *argv[] = { "sh", "-c", "env | sort; pwd; exit 5", NULL };
	char want[512];
	struct sandbox_result res;
	struct sandbox_cmd cmd;

	test_cmd_init(&cmd, env, argv);
	cmd.mode = SANDBOX_NONE;
	setenv("JWT_SECRET", "fake-secret-for-the-sandbox-test-0123456789", 1);
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	unsetenv("JWT_SECRET");
	test_assert_exit(&res, 5);
	/* sh itself adds PWD. */
	snprintf(want, sizeof(want), "%s\nLANG=C.UTF-8\n"
	    "PATH=/usr/bin:/bin\nPWD=%s\n%s\n", env->env_home, env->ws,
	    env->ws);
	assert_string_equal(test_out.text, want);
	assert_int_equal(strncmp(res.applied, "sandbox=none", 12), 0);
}

static void
test_none_mode_timeout(void **state)
{
	const char *argv[] = { "sleep", "1000", NULL };
	struct sandbox_result res;
	struct sandbox_cmd cmd;

	test_cmd_init(&cmd, *state, argv);
	cmd.mode = SANDBOX_NONE;
	cmd.limits.timeout_sec = 1;
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	assert_int_equal(res.status, SANDBOX_TIMEOUT);
}

static void
test_none_mode_no_survivor(void **state)
{
	struct sandbox_result res;
	const char *argv[] = { "true", NULL };
	struct sandbox_cmd cmd;

	/* Without the PID namespace only the cgroup catches a daemon. */
	test_cmd_init(&cmd, *state, argv);
	cmd.mode = SANDBOX_NONE;
	assert_int_equal(sandbox_run(&cmd, &res), 0);
	if (strstr(res.applied, "cgroup v") == NULL) {
		print_message("SKIP: no cgroup here (%s)\n", res.applied);
		skip();
	}
	test_no_survivor_mode(*state, SANDBOX_NONE);
}

static void
test_refused(void **state)
{
	struct test_env *env = *state;
	const char *argv[] = { "true", NULL };
	const char *bad_env[] = { "PATH=/usr/bin", "NOEQUALS", NULL };
	struct sandbox_result res;
	struct sandbox_cmd cmd;

	test_cmd_init(&cmd, env, argv);
	cmd.cwd = "/tmp";
	assert_int_equal(sandbox_run(&cmd, &res), -1);
	assert_int_equal(res.status, SANDBOX_FAILED);

	test_cmd_init(&cmd, env, argv);
	cmd.workspace = "/";
	cmd.cwd = "/";
	assert_int_equal(sandbox_run(&cmd, &res), -1);

	test_cmd_init(&cmd, env, argv);
	cmd.envp = bad_env;
	assert_int_equal(sandbox_run(&cmd, &res), -1);

	/* Not found in SANDBOX_NONE: refused before anything starts. */
	const char *missing[] = { "no-such-command-wharf", NULL };
	test_cmd_init(&cmd, env, missing);
	cmd.mode = SANDBOX_NONE;
	assert_int_equal(sandbox_run(&cmd, &res), -1);
	assert_non_null(strstr(res.message, "not found"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)
		T(test_exit_code),
		T(test_output_lines),
		T(test_output_cap),
		T(test_long_line),
		T(test_env_exact),
		T(test_cannot_read_outside),
		T(test_cannot_write_outside),
		T(test_network),
		T(test_pid_namespace),
		T(test_timeout),
		T(test_no_survivor),
		T(test_cancel),
		T(test_memory_cap),
		T(test_process_cap),
		T(test_cpu_and_file_limits),
		T(test_node),
		T(test_none_mode),
		T(test_none_mode_timeout),
		T(test_none_mode_no_survivor),
		T(test_refused),
#undef T
	};

	if (!sandbox_available())
		print_message("NOTE: bwrap is unavailable: its tests skip\n");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
