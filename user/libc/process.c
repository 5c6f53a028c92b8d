/*
 * process: making processes. fork from a threaded process (the child has
 * only the forking thread, and can make threads and allocate; the parent's
 * other threads keep running), vfork (the parent waits, and sees what the
 * child wrote in the shared memory), posix_spawn of a program with argv (and
 * of a missing one), execve from a thread that is not the first while other
 * threads wait (they end; the new program runs as the same process, with the
 * process's id as its thread id), and waitpid's statuses: exit codes, death
 * by a signal, WNOHANG.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>

#include "check.h"

extern char **environ;

#define SPINNERS 3

static volatile long spins[SPINNERS];
static volatile int stop;

static void *spinner(void *arg)
{
	long i = (long)arg;
	while (!stop) {
		spins[i]++;
		sleep_ms(1);
	}
	return NULL;
}

static long total_spins(void)
{
	long sum = 0;
	for (int i = 0; i < SPINNERS; i++)
		sum += spins[i];
	return sum;
}

static void *return_arg(void *arg)
{
	return arg;
}

/* In the child of a threaded process: exits 0 when only this thread runs and threads and malloc work. */
static int forked_child(void)
{
	long before = total_spins();
	sleep_ms(100);
	if (total_spins() != before)
		return 1; /* the parent's spinners run here too */
	pthread_t t;
	void *ret = NULL;
	if (pthread_create(&t, NULL, return_arg, (void *)5) != 0 || pthread_join(t, &ret) != 0 || ret != (void *)5)
		return 2;
	char *p = malloc(1 << 20);
	if (!p)
		return 3;
	memset(p, 1, 1 << 20);
	free(p);
	return 0;
}

static void fork_threaded(void)
{
	pthread_t t[SPINNERS];
	for (long i = 0; i < SPINNERS; i++)
		start_thread(&t[i], spinner, (void *)i);
	sleep_ms(50);
	pid_t pid = fork();
	if (pid == 0)
		_exit(forked_child());
	long before = total_spins();
	int status = -1;
	waitpid(pid, &status, 0);
	sleep_ms(50);
	long after = total_spins();
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "fork in a threaded process: the child runs alone, creates a thread, allocates",
	      "child status %#x (exit 1: other threads ran in the child, 2: pthread_create, 3: malloc)", status);
	check(after > before, "the parent's other threads keep running", "spins %ld before, %ld after", before,
	      after);
	stop = 1;
	for (int i = 0; i < SPINNERS; i++)
		pthread_join(t[i], NULL);
}

static volatile int vfork_mark;

static void vfork_shares(void)
{
	vfork_mark = 0;
	pid_t pid = vfork();
	if (pid == 0) {
		sleep_ms(50);
		vfork_mark = 1234;
		_exit(9);
	}
	int seen = vfork_mark;
	int status = -1;
	waitpid(pid, &status, 0);
	check(pid > 0 && seen == 1234 && WIFEXITED(status) && WEXITSTATUS(status) == 9,
	      "vfork: the parent resumes after the child's _exit and sees its store", "pid %d, saw %d, status %#x",
	      pid, seen, status);
}

static void spawn(const char *self)
{
	pid_t pid = -1;
	char *argv[] = { (char *)self, "--spawned", "two words", "3", NULL };
	int r = posix_spawn(&pid, self, NULL, NULL, argv, environ);
	int status = -1;
	if (r == 0)
		waitpid(pid, &status, 0);
	check(r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 42,
	      "posix_spawn runs a program with its argv; waitpid gets its exit code",
	      "posix_spawn returned %d (%s), status %#x (exit 1: argv differed)", r, strerror(r), status);

	char *missing[] = { "/nonexistent/program", NULL };
	r = posix_spawn(&pid, missing[0], NULL, NULL, missing, environ);
	if (r == 0)
		waitpid(pid, &status, 0);
	check(r == ENOENT, "posix_spawn of a missing program returns ENOENT", "returned %d (%s)", r, strerror(r));
}

static const char *self_path;

/* The Threads: line of /proc/self/status (-1 if unreadable). */
static int thread_count(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	int n = -1;
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "Threads:", 8) == 0)
			n = atoi(line + 8);
	if (f)
		fclose(f);
	return n;
}

static void *block_forever(void *arg)
{
	(void)arg;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t c = PTHREAD_COND_INITIALIZER;
	pthread_mutex_lock(&m);
	for (;;)
		pthread_cond_wait(&c, &m);
	return NULL;
}

static void *exec_self(void *arg)
{
	char pid[16];
	snprintf(pid, sizeof pid, "%ld", (long)(intptr_t)arg);
	char *argv[] = { (char *)self_path, "--execed", pid, NULL };
	execve(self_path, argv, environ);
	_exit(99);
}

/* In a child: two threads wait on condition variables, a third execs. */
static int exec_from_thread(void)
{
	pthread_t t;
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t, NULL, block_forever, NULL) != 0)
			return 97;
	sleep_ms(20);
	if (pthread_create(&t, NULL, exec_self, (void *)(intptr_t)getpid()) != 0)
		return 98;
	pthread_join(t, NULL);
	return 96;
}

static void exec_in_threads(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(exec_from_thread());
	int status = -1;
	pid_t r = waitpid(pid, &status, 0);
	check(r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 43,
	      "execve from a thread ends the other threads; the program runs as the same process",
	      "status %#x (exit 1: the new program is not alone or has another id; 99: execve failed)", status);
}

static void statuses(void)
{
	int codes[] = { 0, 1, 255 };
	for (int i = 0; i < 3; i++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(codes[i]);
		int status = -1;
		pid_t r = waitpid(pid, &status, 0);
		check(r == pid && WIFEXITED(status) && WEXITSTATUS(status) == codes[i], "waitpid: exit code",
		      "exit %d came back as status %#x", codes[i], status);
	}

	pid_t pid = fork();
	if (pid == 0) {
		sleep_ms(10000); /* SIGKILL ends it first */
		_exit(0);
	}
	int status = -1;
	pid_t early = waitpid(pid, &status, WNOHANG);
	kill(pid, SIGKILL);
	pid_t r = waitpid(pid, &status, 0);
	check(early == 0 && r == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "waitpid: WNOHANG on a running child returns 0; killed by SIGKILL",
	      "WNOHANG returned %d, then status %#x", early, status);
	CHECK_ERRNO(waitpid(-1, &status, 0), ECHILD);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--spawned") == 0)
		return argc == 4 && strcmp(argv[2], "two words") == 0 && strcmp(argv[3], "3") == 0 ? 42 : 1;
	if (argc == 3 && strcmp(argv[1], "--execed") == 0)
		return getpid() == atol(argv[2]) && gettid() == getpid() && thread_count() == 1 ? 43 : 1;
	self_path = argv[0];
	start("process");
	fork_threaded();
	vfork_shares();
	spawn(argv[0]);
	exec_in_threads();
	statuses();
	return done();
}
