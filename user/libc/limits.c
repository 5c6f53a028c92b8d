/*
 * limits: resource limits and random bytes. getrlimit/setrlimit/prlimit64
 * on RLIMIT_STACK, RLIMIT_NOFILE and RLIMIT_MEMLOCK (read back, old values
 * from prlimit64, lowering the soft limit and the effect of RLIMIT_NOFILE on
 * open, EINVAL for soft above hard, inheritance across fork); getrandom
 * (fills the buffer, differs between calls, GRND_NONBLOCK, EINVAL for
 * unknown flags, EFAULT for a bad buffer).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "check.h"

static void limits(void)
{
	int resources[] = { RLIMIT_STACK, RLIMIT_NOFILE, RLIMIT_MEMLOCK };
	const char *names[] = { "RLIMIT_STACK", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK" };
	for (int i = 0; i < 3; i++) {
		struct rlimit lim, via_prlimit;
		int r = getrlimit(resources[i], &lim);
		int r2 = prlimit(0, resources[i], NULL, &via_prlimit);
		check(r == 0 && r2 == 0 && lim.rlim_cur <= lim.rlim_max && lim.rlim_cur == via_prlimit.rlim_cur &&
			      lim.rlim_max == via_prlimit.rlim_max,
		      names[i], "getrlimit %d, prlimit %d; soft %llu hard %llu", r, r2,
		      (unsigned long long)lim.rlim_cur, (unsigned long long)lim.rlim_max);
	}

	struct rlimit stack;
	getrlimit(RLIMIT_STACK, &stack);
	struct rlimit smaller = { 4 << 20, stack.rlim_max }, old, now;
	int r = prlimit(getpid(), RLIMIT_STACK, &smaller, &old);
	getrlimit(RLIMIT_STACK, &now);
	check(r == 0 && old.rlim_cur == stack.rlim_cur && now.rlim_cur == 4 << 20,
	      "prlimit64 sets RLIMIT_STACK and returns the old value", "returned %d, old %llu, now %llu", r,
	      (unsigned long long)old.rlim_cur, (unsigned long long)now.rlim_cur);
	CHECK_CALL(setrlimit(RLIMIT_STACK, &stack));

	struct rlimit files;
	getrlimit(RLIMIT_NOFILE, &files);
	struct rlimit few = { 8, files.rlim_max };
	CHECK_CALL(setrlimit(RLIMIT_NOFILE, &few));
	int fds[16], opened = 0, err = 0, highest = -1;
	for (; opened < 16; opened++) {
		fds[opened] = open("/proc/self/stat", O_RDONLY);
		if (fds[opened] < 0) {
			err = errno;
			break;
		}
		highest = fds[opened];
	}
	for (int i = 0; i < opened; i++)
		close(fds[i]);
	check(err == EMFILE && highest == 7, "with RLIMIT_NOFILE 8, open fails with EMFILE once fds 0..7 are taken",
	      "highest fd %d, then errno %d", highest, err);

	pid_t pid = fork();
	if (pid == 0) {
		struct rlimit inherited;
		getrlimit(RLIMIT_NOFILE, &inherited);
		_exit(inherited.rlim_cur == 8 ? 0 : 1);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a forked child inherits the limits", "status %#x",
	      status);
	CHECK_CALL(setrlimit(RLIMIT_NOFILE, &files));

	struct rlimit memlock;
	getrlimit(RLIMIT_MEMLOCK, &memlock);
	struct rlimit inverted = { memlock.rlim_max == RLIM_INFINITY ? RLIM_INFINITY : memlock.rlim_max + 1,
				   memlock.rlim_max == RLIM_INFINITY ? 1 << 20 : memlock.rlim_max };
	CHECK_ERRNO(setrlimit(RLIMIT_MEMLOCK, &inverted), EINVAL);
	struct rlimit lowered = { 64 << 10, memlock.rlim_max };
	CHECK_CALL(setrlimit(RLIMIT_MEMLOCK, &lowered));
	getrlimit(RLIMIT_MEMLOCK, &now);
	check(now.rlim_cur == 64 << 10, "RLIMIT_MEMLOCK lowered to 64 KiB is read back", "soft %llu",
	      (unsigned long long)now.rlim_cur);
	CHECK_CALL(setrlimit(RLIMIT_MEMLOCK, &memlock));
}

static void randomness(void)
{
	unsigned char a[64], b[64];
	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	ssize_t n = getrandom(a, sizeof a, 0);
	ssize_t m = getrandom(b, sizeof b, GRND_NONBLOCK);
	int zeros = 0;
	for (size_t i = 0; i < sizeof a; i++)
		zeros += a[i] == 0;
	check(n == sizeof a && zeros < 8, "getrandom fills the buffer", "returned %zd, %d zero bytes", n, zeros);
	check(m == sizeof b && memcmp(a, b, sizeof a) != 0, "getrandom(GRND_NONBLOCK) gives different bytes",
	      "returned %zd", m);
	CHECK_ERRNO(getrandom(a, sizeof a, 0x1000), EINVAL);
	CHECK_ERRNO(syscall(SYS_getrandom, 8UL, 16UL, 0), EFAULT);
	n = getrandom(a, 0, 0);
	check(n == 0, "getrandom of 0 bytes returns 0", "returned %zd", n);
}

int main(void)
{
	start("limits");
	limits();
	randomness();
	return done();
}
