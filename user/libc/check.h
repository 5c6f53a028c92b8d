/*
 * check.h: what every test program in user/libc shares. Each check prints
 * one line, "ok <what>" or "FAIL <what>: <details>", with a single write(2)
 * (so lines from threads and forked children never mix and nothing sits in a
 * stdio buffer across fork); done() prints the summary and gives the exit
 * status: 0 only when every check passed.
 */
#ifndef ASPEN_CHECK_H
#define ASPEN_CHECK_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int check_failures;
static const char *check_program = "test";

/* Prints a whole line with one write(2). */
__attribute__((format(printf, 1, 2))) static inline void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	ssize_t unused = write(1, line, n);
	(void)unused;
}

/* Records one check: `what` names it, the format after it says why it failed. */
__attribute__((format(printf, 3, 4))) static inline int check(int ok, const char *what, const char *fmt, ...)
{
	char why[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (ok) {
		say("ok %s: %s", check_program, what);
	} else {
		__atomic_add_fetch(&check_failures, 1, __ATOMIC_SEQ_CST);
		say("FAIL %s: %s: %s", check_program, what, why);
	}
	return ok;
}

/* A check of a call that returns -1 and sets errno on failure. */
#define CHECK_CALL(call) check((call) != -1, #call, "errno %d (%s)", errno, strerror(errno))

/* A check that a call failed with the errno `want`. */
#define CHECK_ERRNO(call, want)                                                                        \
	do {                                                                                           \
		errno = 0;                                                                             \
		long r_ = (long)(call);                                                                \
		int e_ = errno;                                                                        \
		check(r_ == -1 && e_ == (want), #call " fails with " #want, "returned %ld, errno %d (%s)", \
		      r_, e_, strerror(e_));                                                           \
	} while (0)

/* Sets the program's name for the report lines. */
static inline void start(const char *name)
{
	check_program = name;
}

/* Prints the summary; the program's exit status. */
static inline int done(void)
{
	if (check_failures)
		say("FAIL %s: %d check(s) failed", check_program, check_failures);
	else
		say("ok %s: all checks passed", check_program);
	return check_failures ? 1 : 0;
}

/*
 * pthread_create with default attributes, or the end of the program: later
 * checks would join a thread that does not exist.
 */
static inline void start_thread(pthread_t *thread, void *(*body)(void *), void *arg)
{
	int r = pthread_create(thread, NULL, body, arg);
	if (r != 0) {
		check(0, "pthread_create", "%s; cannot go on", strerror(r));
		_exit(done());
	}
}

/* Monotonic time in nanoseconds. */
static inline long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sleeps `ms` milliseconds. */
static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

#endif
